package pluginhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// newSupervisor returns a supervisor whose plugins all get the same
// environment, stopped at the end of the test.
func newSupervisor(t *testing.T, opts Options) *Supervisor {
	t.Helper()
	env := sdktest.Environment(t)
	sup := NewSupervisor(launcher(), nil, func(config.PluginChoice) core.Environment { return env }, opts)
	t.Cleanup(func() { sup.Stop(context.Background()) })
	return sup
}

func start(t *testing.T, sup *Supervisor, kind core.Kind, name string, cfg string, ext *config.ExternalPlugin) config.PluginChoice {
	t.Helper()
	choice := config.PluginChoice{Kind: kind, Name: name, External: ext}
	if cfg != "" {
		choice.Config = json.RawMessage(cfg)
	}
	if err := sup.Start(context.Background(), choice); err != nil {
		t.Fatal(err)
	}
	return choice
}

func infoOf(t *testing.T, sup *Supervisor, kind core.Kind) Info {
	t.Helper()
	for _, i := range sup.Plugins() {
		if i.Kind == kind {
			return i
		}
	}
	t.Fatalf("no %s plugin in %+v", kind, sup.Plugins())
	return Info{}
}

// waitFor polls cond until it holds, at most d.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
	return !strings.HasPrefix(rest, "Z")
}

func kill(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func running(t *testing.T, sup *Supervisor, kind core.Kind, restarts int) func() bool {
	return func() bool {
		i := infoOf(t, sup, kind)
		return i.State == StateRunning && i.Restarts == restarts
	}
}

func TestSupervisorRestartsKilledPlugin(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t, Options{BackoffBase: 10 * time.Millisecond})
	ext := testPlugin(t, "balanced")
	start(t, sup, core.KindAllocator, "balanced", "", ext)
	before := infoOf(t, sup, core.KindAllocator)
	if before.State != StateRunning || before.Restarts != 0 || before.Pid == 0 || before.Path != ext.Path ||
		before.Version == "" || before.ProtocolVersion != core.ProtocolVersion || before.StartedAt.IsZero() || before.Uptime == "" {
		t.Fatalf("before: %+v", before)
	}

	kill(t, before.Pid)
	// The call finds the plugin dead (or restarting) and is answered by the
	// restarted one.
	if _, err := sup.Allocator().Allocate(context.Background(), core.AllocateRequest{}); err != nil {
		t.Fatalf("allocate after kill: %v", err)
	}
	waitFor(t, "restart", 10*time.Second, running(t, sup, core.KindAllocator, 1))
	after := infoOf(t, sup, core.KindAllocator)
	if after.Pid == before.Pid || !strings.Contains(after.LastError, "killed") {
		t.Fatalf("after: %+v", after)
	}
	waitFor(t, "old process gone", 5*time.Second, func() bool { return !alive(before.Pid) })
	if d, err := sup.Allocator().Describe(context.Background()); err != nil || d.Name != "balanced" {
		t.Fatalf("describe: %+v %v", d, err)
	}
}

func TestSupervisorRetriesInFlightCalls(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t, Options{BackoffBase: 10 * time.Millisecond})
	start(t, sup, core.KindAllocator, "slow", "", testPlugin(t, "allocator", "slow", "700ms"))

	// An idempotent call in flight when the plugin dies is made again on
	// the restarted plugin.
	pid := infoOf(t, sup, core.KindAllocator).Pid
	began := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := sup.Allocator().Allocate(context.Background(), core.AllocateRequest{})
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	kill(t, pid)
	if err := <-errc; err != nil {
		t.Fatalf("retried call: %v", err)
	}
	if time.Since(began) < 900*time.Millisecond {
		t.Fatalf("the call was not made again on the restarted plugin (%s)", time.Since(began))
	}
	waitFor(t, "first restart", 10*time.Second, running(t, sup, core.KindAllocator, 1))

	// A call that is not idempotent fails with a clear error.
	sl := sup.slot(core.KindAllocator)
	pid = infoOf(t, sup, core.KindAllocator).Pid
	go func() {
		errc <- do(context.Background(), sl, "Allocate", false, func(ctx context.Context, a core.Allocator) error {
			_, err := a.Allocate(ctx, core.AllocateRequest{})
			return err
		})
	}()
	time.Sleep(200 * time.Millisecond)
	kill(t, pid)
	err := <-errc
	var ue *UnavailableError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), `plugin allocator "slow" is restarting: Allocate: `) || ue.HTTPStatus() != 503 {
		t.Fatalf("non-idempotent call: %v", err)
	}
	t.Log(err)
	waitFor(t, "second restart", 10*time.Second, running(t, sup, core.KindAllocator, 2))
}

func TestSupervisorKillsHungPlugin(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t, Options{CallTimeout: 300 * time.Millisecond, BackoffBase: 10 * time.Millisecond})
	start(t, sup, core.KindAllocator, "hang", "", testPlugin(t, "allocator", "hang"))
	alloc := sup.Allocator()
	ctx := context.Background()

	pid := infoOf(t, sup, core.KindAllocator).Pid
	began := time.Now()
	_, err := alloc.Allocate(ctx, core.AllocateRequest{})
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), `plugin allocator "hang" is restarting: Allocate: no answer within 300ms`) {
		t.Fatalf("hung call: %v", err)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("hung call took %s", took)
	}
	waitFor(t, "restart of the hung plugin", 10*time.Second, running(t, sup, core.KindAllocator, 1))
	info := infoOf(t, sup, core.KindAllocator)
	if info.Pid == pid || !strings.Contains(info.LastError, "Allocate did not answer within 300ms") {
		t.Fatalf("after the hang: %+v", info)
	}
	waitFor(t, "hung process killed", 5*time.Second, func() bool { return !alive(pid) })
	// What does not hang still works on the restarted plugin.
	if _, err := alloc.Describe(ctx); err != nil {
		t.Fatal(err)
	}

	// A caller whose deadline is shorter gets its deadline error at its
	// deadline; the plugin is still found hung at the call timeout.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	began = time.Now()
	_, err = alloc.Allocate(short, core.AllocateRequest{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) > 250*time.Millisecond {
		t.Fatalf("short deadline: %v after %s", err, time.Since(began))
	}
	waitFor(t, "restart after the caller gave up", 10*time.Second, running(t, sup, core.KindAllocator, 2))

	// A caller's deadline that is the timeout, give or take a little,
	// counts as the timeout.
	almost, cancel2 := context.WithTimeout(ctx, 290*time.Millisecond)
	defer cancel2()
	_, err = alloc.Allocate(almost, core.AllocateRequest{})
	if err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("deadline close to the timeout: %v", err)
	}
	waitFor(t, "restart after the second hang", 10*time.Second, running(t, sup, core.KindAllocator, 3))

	// WithCallTimeout sets the limit of one call.
	_, err = alloc.Allocate(WithCallTimeout(ctx, 150*time.Millisecond), core.AllocateRequest{})
	if err == nil || !strings.Contains(err.Error(), "no answer within 150ms") {
		t.Fatalf("WithCallTimeout: %v", err)
	}
	waitFor(t, "fourth restart", 10*time.Second, running(t, sup, core.KindAllocator, 4))
}

// linkOrCopy makes a file at dst with the contents of src.
func linkOrCopy(t *testing.T, src, dst string) {
	t.Helper()
	if os.Link(src, dst) == nil {
		return
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSupervisorKeepsTryingWhenRestartsFail(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t, Options{BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, RestartWait: 300 * time.Millisecond})
	ext := testPlugin(t, "balanced")
	exe := filepath.Join(t.TempDir(), "plugin")
	linkOrCopy(t, ext.Path, exe)
	ext.Path = exe
	start(t, sup, core.KindAllocator, "balanced", "", ext)

	// The executable disappears, then the plugin dies: restarts fail.
	if err := os.Rename(exe, exe+".away"); err != nil {
		t.Fatal(err)
	}
	kill(t, infoOf(t, sup, core.KindAllocator).Pid)
	waitFor(t, "failed state", 10*time.Second, func() bool {
		i := infoOf(t, sup, core.KindAllocator)
		return i.State == StateFailed && strings.Contains(i.LastError, "not found") && i.Pid == 0
	})
	_, err := sup.Allocator().Allocate(context.Background(), core.AllocateRequest{})
	if err == nil || !strings.Contains(err.Error(), `plugin allocator "balanced" is restarting: Allocate: not back after 300ms (last error: `) {
		t.Fatalf("call while the plugin cannot start: %v", err)
	}

	// Once the executable is back, the next attempt succeeds.
	if err := os.Rename(exe+".away", exe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart once the executable is back", 10*time.Second, running(t, sup, core.KindAllocator, 1))
	if _, err := sup.Allocator().Allocate(context.Background(), core.AllocateRequest{}); err != nil {
		t.Fatal(err)
	}
}

func randomCids(t *testing.T, n int) []core.Cid {
	t.Helper()
	out := make([]core.Cid, n)
	for i := range out {
		buf := make([]byte, 32)
		_, _ = rand.Read(buf)
		mh, err := multihash.Sum(buf, multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = core.NewCid(cid.NewCidV1(cid.Raw, mh))
	}
	return out
}

// Resolve may wait for the network longer than the call timeout: it is
// not taken for a hang.
func TestSupervisorLetsResolveWait(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t, Options{CallTimeout: 100 * time.Millisecond, BackoffBase: 10 * time.Millisecond})
	start(t, sup, core.KindIPFSConnector, "test", "", testPlugin(t, "ipfs", filepath.Join(t.TempDir(), "unused"), "1000"))
	pid := infoOf(t, sup, core.KindIPFSConnector).Pid
	_, err := sup.IPFSConnector().Resolve(context.Background(), "/wait/400ms")
	if err == nil || !strings.Contains(err.Error(), "nothing found within 400ms") {
		t.Fatalf("long resolve: %v", err)
	}
	if i := infoOf(t, sup, core.KindIPFSConnector); i.Pid != pid || i.Restarts != 0 {
		t.Fatalf("after a long resolve: %+v", i)
	}
}

func TestSupervisorResumesIPFSStreams(t *testing.T) {
	t.Parallel()
	t.Run("pin goes on with the requests left", func(t *testing.T) {
		t.Parallel()
		sup := newSupervisor(t, Options{BackoffBase: 10 * time.Millisecond})
		marker := filepath.Join(t.TempDir(), "crashed")
		start(t, sup, core.KindIPFSConnector, "test", "", testPlugin(t, "ipfs", marker, "2"))
		cids := randomCids(t, 6)
		reqs := make([]core.IPFSPinRequest, len(cids))
		for i, c := range cids {
			reqs[i] = core.IPFSPinRequest{Cid: c, MaxDepth: -1}
		}
		seen := map[string]int{}
		for r, err := range sup.IPFSConnector().Pin(context.Background(), reqs) {
			if err != nil {
				t.Fatalf("pin: %v", err)
			}
			seen[r.Cid.KeyString()]++
		}
		for _, c := range cids {
			if seen[c.KeyString()] != 1 {
				t.Fatalf("results %v for %d requests", seen, len(cids))
			}
		}
		if i := infoOf(t, sup, core.KindIPFSConnector); i.Restarts != 1 {
			t.Fatalf("%+v", i)
		}
	})
	t.Run("a stream that yielded nothing is opened again", func(t *testing.T) {
		t.Parallel()
		sup := newSupervisor(t, Options{BackoffBase: 10 * time.Millisecond})
		marker := filepath.Join(t.TempDir(), "crashed")
		start(t, sup, core.KindIPFSConnector, "test", "", testPlugin(t, "ipfs", marker))
		n := 0
		for _, err := range sup.IPFSConnector().PinLs(context.Background()) {
			if err != nil {
				t.Fatalf("pin ls: %v", err)
			}
			n++
		}
		if n != 3 {
			t.Fatalf("%d items", n)
		}
		if i := infoOf(t, sup, core.KindIPFSConnector); i.Restarts != 1 {
			t.Fatalf("%+v", i)
		}
	})
}

func TestSupervisorReload(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t, Options{BackoffBase: 10 * time.Millisecond})
	ext := testPlugin(t, "allocator", "slow", "400ms")
	start(t, sup, core.KindAllocator, "balanced", `{"allocate_by":["tag:group","freespace"]}`, ext)
	svc := func(name, cfg string, ext *config.ExternalPlugin) *config.Service {
		s := &config.Service{Allocator: config.Sections{name: json.RawMessage(cfg)}}
		if ext != nil {
			s.Plugins = map[string]config.ExternalPlugin{name: *ext}
		}
		return s
	}
	ctx := context.Background()
	one := func(res []ReloadResult) ReloadResult {
		t.Helper()
		if len(res) != 1 || res[0].Kind != core.KindAllocator {
			t.Fatalf("results %+v", res)
		}
		return res[0]
	}

	// Same section, formatted differently: nothing to do.
	r := one(sup.Reload(ctx, svc("balanced", `{ "allocate_by": ["tag:group", "freespace"] }`, ext)))
	if r.Result != ReloadUnchanged || r.Name != "balanced" || r.Requested != "" || r.Error != "" {
		t.Fatalf("unchanged: %+v", r)
	}

	// A new config while a call is in flight: the call ends on the old
	// plugin, then it is stopped.
	old := infoOf(t, sup, core.KindAllocator)
	errc := make(chan error, 1)
	go func() {
		_, err := sup.Allocator().Allocate(ctx, core.AllocateRequest{})
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	fast := testPlugin(t, "balanced")
	r = one(sup.Reload(ctx, svc("balanced", `{"allocate_by":["freespace"]}`, fast)))
	if r.Result != ReloadSwapped || r.Name != "balanced" || r.Previous != "balanced" || r.Requested != "balanced" {
		t.Fatalf("swap: %+v", r)
	}
	if err := <-errc; err != nil {
		t.Fatalf("call in flight during the swap: %v", err)
	}
	now := infoOf(t, sup, core.KindAllocator)
	if now.Pid == old.Pid || now.Restarts != 0 || now.State != StateRunning {
		t.Fatalf("after the swap: %+v", now)
	}
	waitFor(t, "old plugin stopped", 10*time.Second, func() bool { return !alive(old.Pid) })
	began := time.Now()
	if _, err := sup.Allocator().Allocate(ctx, core.AllocateRequest{}); err != nil || time.Since(began) > 300*time.Millisecond {
		t.Fatalf("the new plugin does not answer calls: %v (%s)", err, time.Since(began))
	}

	// A config the plugin refuses, and a plugin that does not exist: the
	// running plugin stays and the result says why.
	for _, bad := range []struct {
		svc  *config.Service
		want string
	}{
		{svc("balanced", `{"allocate_by": 3}`, fast), "configure"},
		{svc("nope", `{}`, nil), "unknown plugin"},
	} {
		res := sup.Reload(ctx, bad.svc)
		r = one(res)
		if r.Result != ReloadFailed || r.Name != "balanced" || !strings.Contains(r.Error, bad.want) {
			t.Fatalf("bad reload: %+v", r)
		}
		if err := ReloadError(res); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("ReloadError: %v", err)
		}
		if i := infoOf(t, sup, core.KindAllocator); i.Pid != now.Pid || i.State != StateRunning {
			t.Fatalf("the running plugin changed: %+v", i)
		}
	}

	// A crash after a swap restarts the new plugin, with its config.
	kill(t, now.Pid)
	waitFor(t, "restart after the swap", 10*time.Second, running(t, sup, core.KindAllocator, 1))
	if c := sup.slot(core.KindAllocator).choice; string(c.Config) != `{"allocate_by":["freespace"]}` {
		t.Fatalf("restarted with %s", c.Config)
	}
}

func TestSupervisorSwapsStatelessConnector(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t, Options{})
	marker := filepath.Join(t.TempDir(), "crashed")
	if err := os.WriteFile(marker, nil, 0o600); err != nil { // no crash
		t.Fatal(err)
	}
	start(t, sup, core.KindIPFSConnector, "test", "", testPlugin(t, "ipfs", marker))
	svc := &config.Service{
		IPFSConnector: config.Sections{"test": json.RawMessage(`{}`)},
		Plugins:       map[string]config.ExternalPlugin{"test": *testPlugin(t, "ipfs", marker, "5")},
	}
	res := sup.Reload(context.Background(), svc)
	if len(res) != 1 || res[0].Result != ReloadSwapped {
		t.Fatalf("%+v", res)
	}
	if err := ReloadError(res); err != nil {
		t.Fatal(err)
	}
}

func TestSupervisorStop(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t, Options{})
	start(t, sup, core.KindAllocator, "balanced", "", testPlugin(t, "balanced"))
	pid := infoOf(t, sup, core.KindAllocator).Pid
	sup.Stop(context.Background())
	if i := infoOf(t, sup, core.KindAllocator); i.State != StateStopped || i.Pid != 0 {
		t.Fatalf("%+v", i)
	}
	waitFor(t, "plugin process gone", 5*time.Second, func() bool { return !alive(pid) })
	_, err := sup.Allocator().Allocate(context.Background(), core.AllocateRequest{})
	if err == nil || err.Error() != `plugin allocator "balanced" is stopped: Allocate` {
		t.Fatalf("call after stop: %v", err)
	}
	if err := sup.Start(context.Background(), config.PluginChoice{Kind: core.KindConsensus, Name: "x"}); err == nil {
		t.Fatal("start after stop")
	}
}

func TestProxyBeforeStart(t *testing.T) {
	sup := newSupervisor(t, Options{})
	_, err := sup.Allocator().Allocate(context.Background(), core.AllocateRequest{})
	if err == nil || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("%v", err)
	}
	for _, k := range core.Kinds {
		if sup.Proxy(k) == nil {
			t.Fatalf("no proxy for %s", k)
		}
	}
}

func TestBackoff(t *testing.T) {
	base, limit := 100*time.Millisecond, 30*time.Second
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	for n, w := range want {
		if got := backoff(base, n, limit); got != w {
			t.Errorf("backoff(%d) = %s, want %s", n, got, w)
		}
	}
	if got := backoff(base, 100, limit); got != limit {
		t.Errorf("backoff(100) = %s", got)
	}
}

func TestSameChoice(t *testing.T) {
	a := config.PluginChoice{Kind: core.KindAllocator, Name: "x", Config: json.RawMessage(`{"a":1,"b":[1,2]}`)}
	b := a
	b.Config = json.RawMessage(` {"b":[1, 2], "a":1}`)
	if !sameChoice(a, b) {
		t.Error("same JSON, other formatting")
	}
	b.Config = json.RawMessage(`{"a":2,"b":[1,2]}`)
	if sameChoice(a, b) {
		t.Error("different config")
	}
	c, d := config.PluginChoice{Name: "x"}, config.PluginChoice{Name: "x", Config: json.RawMessage("null")}
	if !sameChoice(c, d) {
		t.Error("absent and null config")
	}
	d.External = &config.ExternalPlugin{Path: "/p"}
	if sameChoice(c, d) {
		t.Error("built-in and external")
	}
}

func TestReloadError(t *testing.T) {
	ok := ReloadResult{Result: ReloadSwapped}
	bad := ReloadResult{Result: ReloadFailed, Error: "boom"}
	restart := ReloadResult{Result: ReloadRestartNeeded, Error: "restart"}
	for _, tc := range []struct {
		res  []ReloadResult
		fail bool
	}{
		{nil, false},
		{[]ReloadResult{{Result: ReloadUnchanged}}, false},
		{[]ReloadResult{restart}, false},
		{[]ReloadResult{ok, bad}, false},
		{[]ReloadResult{bad, restart}, true},
	} {
		if err := ReloadError(tc.res); (err != nil) != tc.fail {
			t.Errorf("%+v: %v", tc.res, err)
		}
	}
}

// BenchmarkAllocate measures what the proxy adds to a call: the same
// allocator plugin called through its client directly and through the
// supervisor's proxy.
func BenchmarkAllocate(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	env := core.Environment{PeerID: "bench", DataDir: b.TempDir()}
	sup := NewSupervisor(launcher(), nil, func(config.PluginChoice) core.Environment { return env }, Options{})
	defer sup.Stop(context.Background())
	ext := &config.ExternalPlugin{Path: exe, Args: []string{"serve-test-plugin", "balanced"}}
	if err := sup.Start(context.Background(), config.PluginChoice{Kind: core.KindAllocator, Name: "balanced", External: ext}); err != nil {
		b.Fatal(err)
	}
	direct := sup.slot(core.KindAllocator).current().p.Impl().(core.Allocator)
	for _, bc := range []struct {
		name  string
		alloc core.Allocator
	}{{"direct", direct}, {"proxy", sup.Allocator()}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := bc.alloc.Allocate(ctx, core.AllocateRequest{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// The connector proxy names the endpoint of the running process, a new one
// after a restart, and none for a connector that is not started.
func TestSupervisorNamesIPFSEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sup := newSupervisor(t, Options{BackoffBase: 10 * time.Millisecond})
	endpoint := func() core.Endpoint {
		t.Helper()
		ep, err := sup.IPFSConnector().(core.IPFSEndpointer).IPFSEndpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	if ep := endpoint(); ep != (core.Endpoint{}) {
		t.Fatalf("endpoint before start: %+v", ep)
	}
	start(t, sup, core.KindIPFSConnector, "test", "", testPlugin(t, "ipfs", filepath.Join(t.TempDir(), "crashed")))
	before := endpoint()
	if before.Network != "unix" || before.Address == "" {
		t.Fatalf("endpoint: %+v", before)
	}
	// The endpoint is the connector process's own gRPC server.
	conn, err := grpc.NewClient("unix://"+before.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	desc, err := pluginv1.NewPluginClient(conn).Describe(ctx, &pluginv1.Empty{})
	if err != nil || desc.GetKind() != string(core.KindIPFSConnector) || desc.GetName() != "test" {
		t.Fatalf("Describe at the endpoint: %v %v", desc, err)
	}

	kill(t, infoOf(t, sup, core.KindIPFSConnector).Pid)
	waitFor(t, "restart", 10*time.Second, running(t, sup, core.KindIPFSConnector, 1))
	if after := endpoint(); after.Address == "" || after == before {
		t.Fatalf("endpoint after the restart: %+v (before %+v)", after, before)
	}
}
