package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// serviceBinary is built once by TestMain for the tests that run real
// daemon processes.
var serviceBinary string

func TestMain(m *testing.M) {
	// The test binary doubles as an external plugin for the fault tests:
	// `<test binary> serve-test-plugin <mode> [args]`.
	if len(os.Args) >= 3 && os.Args[1] == "serve-test-plugin" {
		serveTestPlugin(os.Args[2], os.Args[3:])
		return
	}
	// Plugins served inside the test process log at a daemon's level.
	os.Setenv(sdk.LogLevelEnv, "info")
	dir, err := os.MkdirTemp("", "pincluster-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serviceBinary = filepath.Join(dir, "pincluster-service")
	build := exec.Command("go", "build", "-o", serviceBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the service binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out by freePort
)

// freePort returns a loopback TCP port nothing listens on, for a daemon to
// listen on later. It is picked below the kernel's range of ephemeral ports
// (32768 and up on Linux), so that no outgoing connection takes it in the
// meantime, and never twice in one run.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if ports[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		ports[p] = true
		return p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// daemon is a pincluster-service daemon process started by a test.
type daemon struct {
	t    testing.TB
	dir  string
	api  string
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{}
}

// logBuffer collects a daemon's output; tests may read it while the daemon
// writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newDaemonDir initialises a config folder whose API listens on a free
// loopback port.
func newDaemonDir(t testing.TB) (dir, api string) {
	t.Helper()
	dir = t.TempDir()
	out, err := exec.Command(serviceBinary, "--config", dir, "init").CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	svc, err := config.LoadService(filepath.Join(dir, config.ServiceFile))
	if err != nil {
		t.Fatal(err)
	}
	// Each test daemon listens on loopback ports of its own, so that
	// daemons can run side by side.
	api, err = svc.ListenOnLoopback(func() int { return freePort(t) })
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Save(filepath.Join(dir, config.ServiceFile)); err != nil {
		t.Fatal(err)
	}
	return dir, "http://" + api
}

// startDaemon runs the daemon on dir and waits until its API answers.
func startDaemon(t testing.TB, dir, api string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir, api: api, logs: &logBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(serviceBinary, "--config", dir, "daemon")
	d.cmd.Stdout = d.logs
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(api + "/id")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited during start:\n%s", d.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon API did not answer within 60s:\n%s", d.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		d.t.Fatalf("daemon did not stop within 40s:\n%s", d.logs.String())
	}
}

func (d *daemon) kill() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// children returns the pids and command lines of the daemon's child processes.
func childrenOf(t testing.TB, pid int) map[int]string {
	t.Helper()
	out := map[int]string{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc on this system")
	}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out[p] = strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		}
	}
	return out
}

func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
	return !strings.HasPrefix(rest, "Z")
}

// response is an HTTP answer read whole.
type response struct {
	status  int
	body    []byte
	header  http.Header
	trailer http.Header
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

func do(t testing.TB, method, url string, body io.Reader, contentType string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, body: b, header: resp.Header, trailer: resp.Trailer}
}

func (d *daemon) get(path string) response { return do(d.t, "GET", d.api+path, nil, "") }
func (d *daemon) post(path string) response {
	return do(d.t, "POST", d.api+path, nil, "")
}
func (d *daemon) delete(path string) response { return do(d.t, "DELETE", d.api+path, nil, "") }

// expect checks the status and decodes the body into v (when not nil).
func expect(t testing.TB, r response, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("expected status %d, got %s", status, r)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
	}
}

// expectError checks an error answer in IPFS Cluster's format.
func expectError(t testing.TB, r response, status int, contains string) {
	t.Helper()
	var e core.Error
	expect(t, r, status, &e)
	if e.Code != status || !strings.Contains(e.Message, contains) {
		t.Fatalf("expected error %d containing %q, got %s", status, contains, r.body)
	}
}

// ndjson decodes a stream of JSON objects.
func ndjson[T any](t testing.TB, r response) []T {
	t.Helper()
	var out []T
	dec := json.NewDecoder(bytes.NewReader(r.body))
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decoding stream %s: %v", r.body, err)
		}
		out = append(out, v)
	}
	return out
}

// multipartFiles builds an /add body as IPFS Cluster's client does: a
// directory part precedes its children.
type part struct {
	name string
	dir  bool
	data string
}

func multipartBody(t testing.TB, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, p.name))
		if p.dir {
			h.Set("Content-Type", "application/x-directory")
		} else {
			h.Set("Content-Type", "application/octet-stream")
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write([]byte(p.data))
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

// waitStatus polls GET /pins/{cid} until every peer reports want.
func (d *daemon) waitStatus(c string, want core.TrackerStatus) core.GlobalPinInfo {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var g core.GlobalPinInfo
		expect(d.t, d.get("/pins/"+c), 200, &g)
		ok := len(g.PeerMap) > 0
		for _, p := range g.PeerMap {
			ok = ok && p.Status == want
		}
		if ok {
			return g
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s did not reach %s within 30s: %+v", c, want, g.PeerMap)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readLines(r io.Reader) []string {
	var out []string
	s := bufio.NewScanner(r)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}
