package kubo

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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/kubo/kubotest"
)

// Helpers to run pincluster-service daemons configured with the kubo
// connector, for the end-to-end tests and the benchmark.

var (
	serviceOnce   sync.Once
	serviceBinDir string
	serviceBin    string
	serviceErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if serviceBinDir != "" {
		os.RemoveAll(serviceBinDir)
	}
	os.Exit(code)
}

// serviceBinary builds cmd/pincluster-service once per test binary.
func serviceBinary(t testing.TB) string {
	t.Helper()
	serviceOnce.Do(func() {
		serviceBinDir, serviceErr = os.MkdirTemp("", "pincluster-kubo-e2e")
		if serviceErr != nil {
			return
		}
		serviceBin = filepath.Join(serviceBinDir, "pincluster-service")
		out, err := exec.Command("go", "build", "-o", serviceBin, "github.com/pincluster/pincluster/cmd/pincluster-service").CombinedOutput()
		if err != nil {
			serviceErr = fmt.Errorf("building pincluster-service: %v\n%s", err, out)
		}
	})
	if serviceErr != nil {
		t.Fatal(serviceErr)
	}
	return serviceBin
}

// peerDaemon is a pincluster-service daemon process.
type peerDaemon struct {
	t    testing.TB
	dir  string
	api  string
	cmd  *exec.Cmd
	logs *bytes.Buffer
	mu   sync.Mutex
	done chan struct{}
}

// newPeerDir initialises a config folder whose REST API listens on a free
// loopback port and whose IPFS connector is kubo with connector; tracker
// sets keys of pin_tracker.stateless.
func newPeerDir(t testing.TB, connector json.RawMessage, tracker map[string]any) (dir, api string) {
	t.Helper()
	bin := serviceBinary(t)
	dir = t.TempDir()
	if out, err := exec.Command(bin, "--config", dir, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	path := filepath.Join(dir, config.ServiceFile)
	svc, err := config.LoadService(path)
	if err != nil {
		t.Fatal(err)
	}
	api, err = svc.ListenOnLoopback(func() int { return kubotest.FreePort(t) })
	if err != nil {
		t.Fatal(err)
	}
	svc.SetPlugin(core.KindIPFSConnector, Name, connector)
	if tracker != nil {
		name := "stateless"
		var cfg map[string]any
		if err := json.Unmarshal(svc.PinTracker[name], &cfg); err != nil {
			t.Fatalf("pin_tracker section: %v", err)
		}
		for k, v := range tracker {
			cfg[k] = v
		}
		raw, _ := json.Marshal(cfg)
		svc.SetPlugin(core.KindPinTracker, name, raw)
	}
	if err := svc.Save(path); err != nil {
		t.Fatal(err)
	}
	return dir, "http://" + api
}

// setInformer replaces the configuration of one informer in dir's
// service.json.
func setInformer(t testing.TB, dir, name string, cfg map[string]any) {
	t.Helper()
	path := filepath.Join(dir, config.ServiceFile)
	svc, err := config.LoadService(path)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Informer == nil {
		svc.Informer = config.Sections{}
	}
	svc.Informer[name], _ = json.Marshal(cfg)
	if err := svc.Save(path); err != nil {
		t.Fatal(err)
	}
}

// startPeer runs the daemon on dir and waits until its API answers.
func startPeer(t testing.TB, dir, api string) *peerDaemon {
	t.Helper()
	d := &peerDaemon{t: t, dir: dir, api: api, logs: &bytes.Buffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(serviceBinary(t), "--config", dir, "daemon")
	w := &lockedWriter{mu: &d.mu, w: d.logs}
	d.cmd.Stdout, d.cmd.Stderr = w, w
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("pincluster daemon log:\n%s", d.log())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(api + "/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited during start:\n%s", d.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon API did not answer within 60s:\n%s", d.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *peerDaemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

func (d *peerDaemon) stop() {
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// answer is an HTTP answer read whole.
type answer struct {
	status  int
	body    []byte
	trailer http.Header
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

var apiClient = &http.Client{Timeout: 2 * time.Minute}

func call(t testing.TB, method, url string, body io.Reader, contentType string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, body: b, trailer: resp.Trailer}
}

func (d *peerDaemon) get(path string) answer    { return call(d.t, "GET", d.api+path, nil, "") }
func (d *peerDaemon) post(path string) answer   { return call(d.t, "POST", d.api+path, nil, "") }
func (d *peerDaemon) delete(path string) answer { return call(d.t, "DELETE", d.api+path, nil, "") }

func decode(t testing.TB, a answer, status int, v any) {
	t.Helper()
	if a.status != status {
		t.Fatalf("expected status %d, got %s", status, a)
	}
	if v != nil {
		if err := json.Unmarshal(a.body, v); err != nil {
			t.Fatalf("decoding %s: %v", a.body, err)
		}
	}
}

func ndjsonOf[T any](t testing.TB, a answer) []T {
	t.Helper()
	var out []T
	dec := json.NewDecoder(bytes.NewReader(a.body))
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decoding stream %s: %v", a.body, err)
		}
		out = append(out, v)
	}
	return out
}

// filePart is one part of an /add upload; a directory part precedes its
// children, as IPFS Cluster's client sends them.
type filePart struct {
	name string
	dir  bool
	data []byte
}

func addBody(t testing.TB, parts ...filePart) (io.Reader, string) {
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
		_, _ = pw.Write(p.data)
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

// add uploads parts through POST /add?query and returns name -> CID.
func (d *peerDaemon) add(query string, parts ...filePart) map[string]string {
	d.t.Helper()
	body, ct := addBody(d.t, parts...)
	a := call(d.t, "POST", d.api+"/add?"+query, body, ct)
	if a.status != 200 || a.trailer.Get("X-Stream-Error") != "" {
		d.t.Fatalf("add: %s (trailer error %q)", a, a.trailer.Get("X-Stream-Error"))
	}
	out := map[string]string{}
	for _, o := range ndjsonOf[core.AddedOutput](d.t, a) {
		out[o.Name] = o.Cid.String()
	}
	return out
}

// status returns this peer's status of a CID.
func (d *peerDaemon) status(c string) core.PinInfoShort {
	d.t.Helper()
	var g core.GlobalPinInfo
	decode(d.t, d.get("/pins/"+c+"?local=true"), 200, &g)
	for _, p := range g.PeerMap {
		return p
	}
	d.t.Fatalf("no status for %s: %+v", c, g)
	return core.PinInfoShort{}
}

// waitStatus polls until the CID has status want.
func (d *peerDaemon) waitStatus(c string, want core.TrackerStatus, within time.Duration) core.PinInfoShort {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := d.status(c)
		if st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s did not reach %s within %s: %+v", c, want, within, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
