// Package servicetest runs real pincluster-service daemons for tests: it
// builds the service binary once, prepares config folders whose every
// listener is on a loopback port of its own (so that daemons run side by
// side), starts and stops daemons, and talks to their REST API.
//
// A test package builds the binary in its TestMain:
//
//	var bin string
//	func TestMain(m *testing.M) { os.Exit(servicetest.MainWithService(m, &bin)) }
//
// and starts a daemon on the embedded defaults with StartDaemon(t, bin), or
// prepares its folder first with NewPeerDir and starts it with Start.
package servicetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
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
)

// ServicePackage is the import path of the daemon's main package.
const ServicePackage = "github.com/pincluster/pincluster/cmd/pincluster-service"

// StartTimeout bounds how long Start waits for the API to answer.
const StartTimeout = 60 * time.Second

// StopTimeout bounds how long Stop waits for a clean exit before killing.
const StopTimeout = 40 * time.Second

// BuildService builds the pincluster-service binary into dir and returns
// its path.
func BuildService(dir string) (string, error) {
	bin := filepath.Join(dir, "pincluster-service")
	cmd := exec.Command("go", "build", "-o", bin, ServicePackage)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", ServicePackage, err, out.String())
	}
	return bin, nil
}

// MainWithService is a TestMain helper: it builds the service binary into
// a temporary directory, stores its path in *bin, runs the tests and
// removes the directory. It returns the exit code for os.Exit.
func MainWithService(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "pincluster-servicetest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin, err = BuildService(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out by FreePort
)

// FreePort returns a loopback TCP port nothing listens on, for a daemon to
// listen on later. It is picked below the kernel's range of ephemeral ports
// (32768 and up on Linux), so that no outgoing connection takes it in the
// meantime, and never twice in one test process.
func FreePort(tb testing.TB) int {
	tb.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	p, err := config.FreePort(func(p int) bool { return ports[p] })
	if err != nil {
		tb.Fatal(err)
	}
	ports[p] = true
	return p
}

// NewPeerDir initialises a config folder in a temporary directory with
// `pincluster-service init`, points every listener at a free loopback port,
// lets edit change the configuration (when not nil) and saves it. It
// returns the folder and the REST API's base URL.
func NewPeerDir(tb testing.TB, bin string, edit func(*config.Service)) (dir, url string) {
	tb.Helper()
	return NewPeerDirInit(tb, bin, nil, edit)
}

// NewPeerDirInit is NewPeerDir with more arguments for init (--peers …).
func NewPeerDirInit(tb testing.TB, bin string, initArgs []string, edit func(*config.Service)) (dir, url string) {
	tb.Helper()
	dir = tb.TempDir()
	if out, err := exec.Command(bin, append([]string{"--config", dir, "init"}, initArgs...)...).CombinedOutput(); err != nil {
		tb.Fatalf("pincluster-service init: %v\n%s", err, out)
	}
	var api string
	EditService(tb, dir, func(svc *config.Service) {
		var err error
		if api, err = svc.ListenOnLoopback(func() int { return FreePort(tb) }); err != nil {
			tb.Fatal(err)
		}
		if edit != nil {
			edit(svc)
		}
	})
	return dir, "http://" + api
}

// EditService loads dir's service.json, lets edit change it and saves it.
func EditService(tb testing.TB, dir string, edit func(*config.Service)) {
	tb.Helper()
	path := filepath.Join(dir, config.ServiceFile)
	svc, err := config.LoadService(path)
	if err != nil {
		tb.Fatal(err)
	}
	edit(svc)
	if err := svc.Save(path); err != nil {
		tb.Fatal(err)
	}
}

// PeerID is the peer ID of the peer whose config folder is dir.
func PeerID(tb testing.TB, dir string) string {
	tb.Helper()
	ident, err := config.LoadIdentity(filepath.Join(dir, config.IdentityFile))
	if err != nil {
		tb.Fatal(err)
	}
	return ident.ID.String()
}

// Daemon is a running pincluster-service process.
type Daemon struct {
	TB testing.TB
	// Dir is the config folder.
	Dir string
	// URL is the base URL of the REST API (http://127.0.0.1:<port>).
	URL string
	// Multiaddr is the REST API's address as a multiaddress.
	Multiaddr string
	// Port is the REST API's port.
	Port int
	// PeerID is the daemon's cluster peer ID.
	PeerID string
	// Cmd is the daemon's process.
	Cmd *exec.Cmd

	logs *syncBuffer
	done chan struct{}
}

// StartDaemon starts a daemon on the embedded defaults in a new config
// folder (NewPeerDir, then Start).
func StartDaemon(tb testing.TB, bin string) *Daemon {
	tb.Helper()
	dir, url := NewPeerDir(tb, bin, nil)
	return Start(tb, bin, dir, url)
}

// Start runs `pincluster-service daemon [args]` on dir and waits (at most
// StartTimeout) until its API at url answers. The daemon is stopped when
// the test ends; its logs are printed if the test failed.
func Start(tb testing.TB, bin, dir, url string, args ...string) *Daemon {
	tb.Helper()
	port, err := strconv.Atoi(url[strings.LastIndexByte(url, ':')+1:])
	if err != nil {
		tb.Fatalf("REST API URL %q: %v", url, err)
	}
	d := &Daemon{
		TB:        tb,
		Dir:       dir,
		URL:       url,
		Multiaddr: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port),
		Port:      port,
		PeerID:    PeerID(tb, dir),
		logs:      &syncBuffer{},
		done:      make(chan struct{}),
	}
	d.Cmd = exec.Command(bin, append([]string{"--config", dir, "daemon"}, args...)...)
	d.Cmd.Stdout, d.Cmd.Stderr = d.logs, d.logs
	if err := d.Cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = d.Cmd.Wait(); close(d.done) }()
	tb.Cleanup(func() {
		d.Stop()
		if tb.Failed() {
			tb.Logf("daemon %s log:\n%s", dir, d.Logs())
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(StartTimeout)
	for {
		resp, err := hc.Get(url + "/id")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case <-d.done:
			tb.Fatalf("daemon exited while starting:\n%s", d.Logs())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("daemon API did not answer within %s:\n%s", StartTimeout, d.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Done is closed when the daemon process has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Logs returns what the daemon printed so far.
func (d *Daemon) Logs() string { return d.logs.String() }

// Stop sends SIGTERM and waits for the daemon to exit, at most StopTimeout,
// then kills it. A daemon that did not stop in time fails the test.
func (d *Daemon) Stop() {
	if d.Cmd.Process == nil {
		return
	}
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(StopTimeout):
		d.Kill()
		d.TB.Errorf("daemon did not stop within %s:\n%s", StopTimeout, d.Logs())
	}
}

// Kill kills the daemon (SIGKILL) and waits, at most 10s, for it to exit.
func (d *Daemon) Kill() {
	if d.Cmd.Process != nil {
		_ = d.Cmd.Process.Kill()
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
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

// Response is an HTTP answer read whole.
type Response struct {
	Status  int
	Body    []byte
	Header  http.Header
	Trailer http.Header
}

func (r Response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

var httpClient = &http.Client{
	Timeout:       2 * time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Do sends one request and reads the whole answer.
func Do(tb testing.TB, method, url string, body io.Reader, contentType string) Response {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return Response{Status: resp.StatusCode, Body: b, Header: resp.Header, Trailer: resp.Trailer}
}

// Get, Post and Delete send a request without body to the daemon's API;
// path includes the query.
func (d *Daemon) Get(path string) Response    { return Do(d.TB, "GET", d.URL+path, nil, "") }
func (d *Daemon) Post(path string) Response   { return Do(d.TB, "POST", d.URL+path, nil, "") }
func (d *Daemon) Delete(path string) Response { return Do(d.TB, "DELETE", d.URL+path, nil, "") }

// Expect checks the status and decodes the body into v (when not nil).
func Expect(tb testing.TB, r Response, status int, v any) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("expected status %d, got %s", status, r)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			tb.Fatalf("decoding %s: %v", r.Body, err)
		}
	}
}

// ExpectError checks an error answer in IPFS Cluster's format.
func ExpectError(tb testing.TB, r Response, status int, contains string) {
	tb.Helper()
	var e core.Error
	Expect(tb, r, status, &e)
	if e.Code != status || !strings.Contains(e.Message, contains) {
		tb.Fatalf("expected error %d containing %q, got %s", status, contains, r.Body)
	}
}

// NDJSON decodes a stream of JSON objects.
func NDJSON[T any](tb testing.TB, r Response) []T {
	tb.Helper()
	var out []T
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			tb.Fatalf("decoding stream %s: %v", r.Body, err)
		}
		out = append(out, v)
	}
	return out
}

// Part is one part of an /add upload.
type Part struct {
	Name string
	Dir  bool
	Data []byte
}

// Multipart builds an /add body as IPFS Cluster's client does (a
// directory part precedes its children) and returns it with its content
// type.
func Multipart(tb testing.TB, parts ...Part) (io.Reader, string) {
	tb.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, p.Name))
		if p.Dir {
			h.Set("Content-Type", "application/x-directory")
		} else {
			h.Set("Content-Type", "application/octet-stream")
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = pw.Write(p.Data)
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

// WaitStatus polls GET /pins/{cid} (local=true with local) until every
// peer reports want, at most within.
func (d *Daemon) WaitStatus(cid string, want core.TrackerStatus, local bool, within time.Duration) core.GlobalPinInfo {
	d.TB.Helper()
	path := "/pins/" + cid
	if local {
		path += "?local=true"
	}
	deadline := time.Now().Add(within)
	for {
		var g core.GlobalPinInfo
		Expect(d.TB, d.Get(path), 200, &g)
		ok := len(g.PeerMap) > 0
		for _, p := range g.PeerMap {
			ok = ok && p.Status == want
		}
		if ok {
			return g
		}
		if time.Now().After(deadline) {
			d.TB.Fatalf("%s did not reach %s within %s: %+v", cid, want, within, g.PeerMap)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// EnvInt returns the integer in the environment variable name, or def
// when it is unset; a value that is not an integer of at least min fails
// the benchmark or test (PINCLUSTER_BENCH_N and the like).
func EnvInt(tb testing.TB, name string, def, min int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min {
		tb.Fatalf("%s=%q: want an integer of at least %d", name, s, min)
	}
	return v
}

// AnyStatus reports whether the status listing at url (GET /pins?…) has
// at least one item; it reads no further than the first. A first item in
// pin_error, or an answer other than 200 or 204, fails the benchmark or
// test.
func AnyStatus(b testing.TB, hc *http.Client, url string) bool {
	b.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case 204:
		return false
	case 200:
		var first core.GlobalPinInfo
		if err := json.NewDecoder(resp.Body).Decode(&first); err != nil {
			b.Fatalf("GET %s: %v", url, err)
		}
		for _, p := range first.PeerMap {
			if p.Status == core.TrackerStatusPinError {
				b.Fatalf("%s: pin_error: %s", first.Cid, p.Error)
			}
		}
		return true
	default:
		body, _ := io.ReadAll(resp.Body)
		b.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return false
}
