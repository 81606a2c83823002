package sdk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// The test binary doubles as a plugin binary: with SDK_TEST_ROLE set it
// does not run tests but plays the role named.
const roleEnv = "SDK_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "plugin":
		sdk.Serve(&procAllocator{fakeAllocator: newFakeAllocator()})
		os.Exit(0)
	case "allocator":
		sdk.Serve(newFakeAllocator())
		os.Exit(0)
	case "parent":
		os.Exit(runParent())
	}
	os.Exit(m.Run())
}

// procAllocator is the allocator served by the plugin process. It logs,
// calls its host while allocating, and leaves a file in its data folder
// when closed.
type procAllocator struct {
	*fakeAllocator
}

func (a *procAllocator) Configure(ctx context.Context, cfg json.RawMessage, env core.Environment, host core.Host) error {
	if err := a.fakeAllocator.Configure(ctx, cfg, env, host); err != nil {
		return err
	}
	sdk.Logger().Info("configured", "peer_name", env.PeerName)
	log.Printf("[WARN] a line of the standard logger")
	return nil
}

// Allocate reports, as the error of each pin, the name the host gives it.
func (a *procAllocator) Allocate(ctx context.Context, req core.AllocateRequest) ([]core.AllocateResult, error) {
	out := make([]core.AllocateResult, len(req.Pins))
	for i, p := range req.Pins {
		pin, err := a.getHost().GetPin(ctx, p.Cid)
		if err != nil {
			out[i].Error = "host: " + err.Error()
			continue
		}
		out[i].Error = "name: " + pin.Name
	}
	return out, nil
}

func (a *procAllocator) Close(ctx context.Context) error {
	a.base.mu.Lock()
	dir := a.env.DataDir
	a.base.mu.Unlock()
	if err := os.WriteFile(filepath.Join(dir, "closed"), []byte("closed"), 0o600); err != nil {
		return err
	}
	return a.fakeAllocator.Close(ctx)
}

// syncBuffer is a log output safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProcessPlugin(t *testing.T, logs *syncBuffer) (*plugin.Client, core.Allocator) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{roleEnv + "=plugin"}
	logger := hclog.New(&hclog.LoggerOptions{Name: "core", Output: logs, Level: hclog.Trace})
	client := plugin.NewClient(sdk.NewClientConfig(cmd, logger))
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin process: %v\n%s", err, logs)
	}
	raw, err := rpc.Dispense(string(core.KindAllocator))
	if err != nil {
		t.Fatal(err)
	}
	return client, raw.(core.Allocator)
}

func TestServeInProcess(t *testing.T) {
	ctx := testCtx(t)
	logs := &syncBuffer{}
	client, a := startProcessPlugin(t, logs)
	if v := client.NegotiatedVersion(); v != core.ProtocolVersion {
		t.Errorf("negotiated version %d", v)
	}
	d := must(a.Describe(ctx)).of(t)
	if d.Kind != core.KindAllocator || d.Name != "fake-allocator" {
		t.Errorf("describe: %#v", d)
	}

	host := newFakeHost(3)
	env := sdktest.Environment(t)
	env.PeerName = "peer-under-test"
	noError(t, a.Configure(ctx, json.RawMessage(`{}`), env, host))
	got := must(a.Allocate(ctx, core.AllocateRequest{Pins: []core.PinAllocation{{Cid: testCid(1)}, {Cid: testCid(-1)}}})).of(t)
	want := []string{"name: host pin 1", "host: " + core.ErrPinNotFound.Error()}
	if len(got) != 2 || got[0].Error != want[0] || got[1].Error != want[1] {
		t.Errorf("allocate through the host: %#v", got)
	}

	// The plugin's JSON log lines are logged again by the core, under the
	// plugin's name, with their level and fields.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "a line of the standard logger") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var sawInfo, sawWarn bool
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "[INFO]") && strings.Contains(line, "configured") && strings.Contains(line, "peer_name=peer-under-test") {
			sawInfo = true
		}
		if strings.Contains(line, "[WARN]") && strings.Contains(line, "a line of the standard logger") {
			sawWarn = true
		}
	}
	if !sawInfo || !sawWarn {
		t.Errorf("plugin log lines not relayed (info %v, warn %v):\n%s", sawInfo, sawWarn, logs)
	}

	noError(t, a.Close(ctx))
	if _, err := os.Stat(filepath.Join(env.DataDir, "closed")); err != nil {
		t.Errorf("close did not reach the plugin: %v", err)
	}
	client.Kill()
	if !client.Exited() {
		t.Error("plugin process still running after Kill")
	}
	if _, err := a.Allocate(ctx, core.AllocateRequest{}); !sdk.IsUnavailable(err) {
		t.Errorf("call to a killed plugin: %#v", err)
	}
}

// A core that stops a plugin without calling Close still gets it closed.
func TestServeClosesOnKill(t *testing.T) {
	ctx := testCtx(t)
	client, a := startProcessPlugin(t, &syncBuffer{})
	env := sdktest.Environment(t)
	noError(t, a.Configure(ctx, nil, env, nil))
	client.Kill()
	if _, err := os.Stat(filepath.Join(env.DataDir, "closed")); err != nil {
		t.Errorf("plugin not closed when the core went away: %v", err)
	}
}

// runParent starts a plugin process, waits for its handshake, prints its
// pid and exits without stopping it.
func runParent() int {
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{
		roleEnv + "=plugin",
		sdk.Handshake.MagicCookieKey + "=" + sdk.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1",
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 2
	}
	if err := cmd.Start(); err != nil {
		return 2
	}
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		return 3
	}
	fmt.Println(cmd.Process.Pid)
	return 0
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func TestPluginDiesWithCore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{roleEnv + "=parent"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("parent: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("parent output %q", out)
	}
	t.Cleanup(func() {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin %d outlived its core", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
