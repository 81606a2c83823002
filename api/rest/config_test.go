package rest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
)

// defaultConfigJSON is the restapi section IPFS Cluster writes (spec §13.4).
const defaultConfigJSON = `{
  "http_listen_multiaddress": "/ip4/127.0.0.1/tcp/9094",
  "read_timeout": "0s",
  "read_header_timeout": "5s",
  "write_timeout": "0s",
  "idle_timeout": "2m0s",
  "max_header_bytes": 4096,
  "basic_auth_credentials": null,
  "http_log_file": "",
  "headers": {},
  "cors_allowed_origins": [
    "*"
  ],
  "cors_allowed_methods": [
    "GET"
  ],
  "cors_allowed_headers": [],
  "cors_exposed_headers": [
    "Content-Type",
    "X-Stream-Output",
    "X-Chunked-Output",
    "X-Content-Length"
  ],
  "cors_allow_credentials": true,
  "cors_max_age": "0s"
}`

func TestDefaultConfigJSON(t *testing.T) {
	b, err := DefaultConfig().ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != defaultConfigJSON {
		t.Errorf("default config\n%s\nwant\n%s", b, defaultConfigJSON)
	}
	var cfg Config
	if err := cfg.LoadJSON([]byte(defaultConfigJSON)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("round trip %+v", cfg)
	}
	// Empty object: all defaults.
	if err := cfg.LoadJSON([]byte(`{}`)); err != nil || !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("empty object: %v %+v", err, cfg)
	}
}

func TestConfigLoad(t *testing.T) {
	raw := `{
		"http_listen_multiaddress": ["/ip4/0.0.0.0/tcp/9094", "/ip6/::1/tcp/9094", "/dns4/localhost/tcp/9094", "/dns/localhost/tcp/9094", "/unix/tmp/api.sock"],
		"read_timeout": "30s",
		"idle_timeout": "1m",
		"max_header_bytes": 8192,
		"basic_auth_credentials": {"user": "pass"},
		"headers": {"X-A": ["1"]},
		"cors_allowed_origins": ["http://x"],
		"cors_max_age": "10m",
		"ssl_cert_file": "cert.pem",
		"ssl_key_file": "key.pem"
	}`
	cfg := Config{ConfigDir: "/etc/cluster"}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.HTTPListenAddr) != 5 || cfg.ReadTimeout != 30*time.Second || cfg.IdleTimeout != time.Minute ||
		cfg.ReadHeaderTimeout != 5*time.Second || cfg.MaxHeaderBytes != 8192 || cfg.BasicAuthCredentials["user"] != "pass" ||
		cfg.Headers["X-A"][0] != "1" || cfg.CORSAllowedOrigins[0] != "http://x" || cfg.CORSMaxAge != 10*time.Minute ||
		!reflect.DeepEqual(cfg.CORSAllowedMethods, []string{"GET"}) || cfg.ConfigDir != "/etc/cluster" ||
		cfg.resolvePath(cfg.SSLCertFile) != "/etc/cluster/cert.pem" {
		t.Errorf("loaded %+v", cfg)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	back.ConfigDir = "/etc/cluster"
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip %v\n%+v\n%+v", err, back, cfg)
	}
	if !strings.Contains(string(b), `"http_listen_multiaddress":["/ip4/0.0.0.0/tcp/9094",`) {
		t.Errorf("list form lost: %s", b)
	}

	// max_header_bytes 0 means the default.
	if err := cfg.LoadJSON([]byte(`{"max_header_bytes":0}`)); err != nil || cfg.MaxHeaderBytes != 4096 {
		t.Errorf("max_header_bytes 0: %v %d", err, cfg.MaxHeaderBytes)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		`{"read_timeout":"soon"}`:                                  "restapi.read_timeout:",
		`{"read_header_timeout":5}`:                                "restapi.read_header_timeout:",
		`{"write_timeout":"-1s"}`:                                  "restapi.write_timeout:",
		`{"idle_timeout":"x"}`:                                     "restapi.idle_timeout:",
		`{"cors_max_age":"-5s"}`:                                   "restapi.cors_max_age:",
		`{"max_header_bytes":100}`:                                 "restapi.max_header_bytes:",
		`{"max_header_bytes":"big"}`:                               "restapi.max_header_bytes:",
		`{"basic_auth_credentials":{}}`:                            "restapi.basic_auth_credentials:",
		`{"basic_auth_credentials":{"":"x"}}`:                      "restapi.basic_auth_credentials:",
		`{"basic_auth_credentials":{"u":"p","u2":""}}`:             "restapi.basic_auth_credentials: user \"u2\" has an empty password",
		`{"read_timout":"1s"}`:                                     "restapi.read_timout: unknown key",
		`{"basic_auth_credentials":[1]}`:                           "restapi.basic_auth_credentials:",
		`{"http_listen_multiaddress":"garbage"}`:                   "restapi.http_listen_multiaddress:",
		`{"http_listen_multiaddress":5}`:                           "restapi.http_listen_multiaddress:",
		`{"http_listen_multiaddress":["/ip4/127.0.0.1/udp/9094"]}`: "restapi.http_listen_multiaddress:",
		`{"http_listen_multiaddress":"/ip4/127.0.0.1"}`:            "restapi.http_listen_multiaddress:",
		`{"ssl_cert_file":"c.pem"}`:                                "restapi.ssl_key_file:",
		`{"ssl_key_file":"k.pem"}`:                                 "restapi.ssl_cert_file:",
		`{"id":"12D3KooW"}`:                                        "restapi.libp2p_listen_multiaddress:",
		`{"libp2p_listen_multiaddress":"nope"}`:                    "restapi.libp2p_listen_multiaddress:",
		`{"headers":{"X":"y"}}`:                                    "restapi.headers:",
		`{"cors_allow_credentials":"yes"}`:                         "restapi.cors_allow_credentials:",
		`[]`:                                                       "restapi:",
		`{`:                                                        "restapi:",
	}
	for raw, prefix := range cases {
		var cfg Config
		err := cfg.LoadJSON([]byte(raw))
		if err == nil || !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("%s: error %v, want prefix %q", raw, err, prefix)
		}
	}
}

func TestConfigEnv(t *testing.T) {
	env := map[string]string{
		"CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS": "/ip4/0.0.0.0/tcp/9094, /unix/tmp/s.sock",
		"CLUSTER_RESTAPI_READTIMEOUT":            "1m",
		"CLUSTER_RESTAPI_BASICAUTHCREDENTIALS":   "a:b,c:d:e",
		"CLUSTER_RESTAPI_CORSALLOWEDMETHODS":     "GET,POST",
		"CLUSTER_RESTAPI_CORSALLOWCREDENTIALS":   "false",
		"CLUSTER_RESTAPI_MAXHEADERBYTES":         "10000",
	}
	cfg := DefaultConfig()
	if err := cfg.ApplyEnvVars(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.HTTPListenAddr, []string{"/ip4/0.0.0.0/tcp/9094", "/unix/tmp/s.sock"}) || cfg.ReadTimeout != time.Minute ||
		!reflect.DeepEqual(cfg.BasicAuthCredentials, map[string]string{"a": "b", "c": "d:e"}) ||
		!reflect.DeepEqual(cfg.CORSAllowedMethods, []string{"GET", "POST"}) || cfg.CORSAllowCredentials || cfg.MaxHeaderBytes != 10000 {
		t.Errorf("env %+v", cfg)
	}
	bad := map[string]string{"CLUSTER_RESTAPI_IDLETIMEOUT": "forever"}
	if err := cfg.ApplyEnvVars(func(k string) string { return bad[k] }); err == nil || !strings.HasPrefix(err.Error(), "restapi.idle_timeout") {
		t.Errorf("bad env: %v", err)
	}
}

func TestNewServerErrors(t *testing.T) {
	if _, err := NewServer(DefaultConfig(), nil, nil); err == nil {
		t.Error("nil cluster accepted")
	}
	cfg := testConfig()
	cfg.MaxHeaderBytes = 10
	if _, err := NewServer(cfg, newFake(), nil); err == nil {
		t.Error("invalid config accepted")
	}
	cfg = testConfig()
	cfg.SSLCertFile, cfg.SSLKeyFile = "/nonexistent/c.pem", "/nonexistent/k.pem"
	if _, err := NewServer(cfg, newFake(), nil); err == nil || !strings.HasPrefix(err.Error(), "restapi.ssl_cert_file") {
		t.Errorf("missing cert: %v", err)
	}
	cfg = testConfig()
	cfg.HTTPLogFile = "/nonexistent/dir/log"
	if _, err := NewServer(cfg, newFake(), nil); err == nil || !strings.HasPrefix(err.Error(), "restapi.http_log_file") {
		t.Errorf("bad log file: %v", err)
	}
	s := newTestServer(t, testConfig(), newFake())
	if err := s.Start(); err == nil {
		t.Error("Start without addresses succeeded")
	}
}

// TestServerLifecycle starts the server on TCP and a unix socket, with an
// access log file, and shuts it down.
func TestServerLifecycle(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	cfg := DefaultConfig()
	cfg.ConfigDir = dir
	cfg.HTTPListenAddr = []string{"/ip4/127.0.0.1/tcp/0", "/unix" + sock}
	cfg.HTTPLogFile = "access.log"
	s := newTestServer(t, cfg, newFake())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("addrs %v", addrs)
	}

	resp, err := http.Get("http://" + addrs[0].String() + "/version?x=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != bodyVersion {
		t.Errorf("tcp: %q", b)
	}

	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest("GET", "http://restapi/id", nil)
	req.SetBasicAuth("someone", "x")
	resp, err = uc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != bodyID {
		t.Errorf("unix: %q", b)
	}
	uc.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
	if _, err := http.Get("http://" + addrs[0].String() + "/version"); err == nil {
		t.Error("still serving after shutdown")
	}

	logData, err := os.ReadFile(filepath.Join(dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(logData)), "\n")
	if len(lines) != 2 {
		t.Fatalf("access log %q", logData)
	}
	// 127.0.0.1 - - [23/Nov/2026:18:59:51 +0000] "GET /version?x=1 HTTP/1.1" 200 20
	if !strings.HasPrefix(lines[0], "127.0.0.1 - - [") || !strings.HasSuffix(lines[0], `] "GET /version?x=1 HTTP/1.1" 200 20`) {
		t.Errorf("access log line %q", lines[0])
	}
	if !strings.Contains(lines[1], ` - someone [`) || !strings.HasSuffix(lines[1], `"GET /id HTTP/1.1" 200 `+itoa(len(bodyID))) {
		t.Errorf("access log line %q", lines[1])
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestAccessLogToLogger checks that without http_log_file the access log
// goes to the "restapilog" logger at INFO.
func TestAccessLogToLogger(t *testing.T) {
	buf := &lockedBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "cluster", Output: buf, Level: hclog.Info})
	s, err := NewServer(testConfig(), newFake(), logger)
	if err != nil {
		t.Fatal(err)
	}
	ts := startHTTP(t, s)
	do(t, ts, "GET", "/idx", nil, nil)
	ts.Close()
	out := buf.String()
	if !strings.Contains(out, "[INFO]  cluster.restapilog: 127.0.0.1 - - [") || !strings.Contains(out, `"GET /idx HTTP/1.1" 404 35`) {
		t.Errorf("log output %q", out)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTLS serves HTTPS with a generated certificate.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	_ = os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)

	cfg := DefaultConfig()
	cfg.ConfigDir = dir
	cfg.HTTPListenAddr = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.SSLCertFile, cfg.SSLKeyFile = "cert.pem", "key.pem"
	s := newTestServer(t, cfg, newFake())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get("https://" + s.Addrs()[0].String() + "/version")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != bodyVersion || resp.TLS == nil {
		t.Errorf("https: %q", b)
	}
	c.CloseIdleConnections()
}

// TestShutdownForced checks that Shutdown cancels requests still running
// when its context ends.
func TestShutdownForced(t *testing.T) {
	f := newFake()
	started := make(chan struct{})
	f.statusFn = func(ctx context.Context, _ core.Cid, _ bool) (core.GlobalPinInfo, error) {
		close(started)
		<-ctx.Done()
		return core.GlobalPinInfo{}, ctx.Err()
	}
	cfg := DefaultConfig()
	cfg.HTTPListenAddr = []string{"/ip4/127.0.0.1/tcp/0"}
	s := newTestServer(t, cfg, f)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.Get("http://" + s.Addrs()[0].String() + "/pins/" + cidA)
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error)
	go func() { done <- s.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("forced shutdown returned nil")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown hung")
	}
}

// TestServeListener serves on a caller-provided listener, and checks that a
// stale unix socket file is replaced on Start.
func TestServeListener(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatal("stale socket not left behind")
	}

	cfg := DefaultConfig()
	cfg.HTTPListenAddr = []string{"/unix" + sock}
	s := newTestServer(t, cfg, newFake())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Addrs()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	resp, err := http.Get("http://" + l.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("health: %d", resp.StatusCode)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v", err)
	}
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.Serve(l2); err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Error("Start after Shutdown succeeded")
	}

	// A failing listen closes what was opened and reports the key.
	cfg.HTTPListenAddr = []string{"/ip4/127.0.0.1/tcp/0", "/unix" + filepath.Join(dir, "nodir", "x.sock")}
	s2 := newTestServer(t, cfg, newFake())
	if err := s2.Start(); err == nil {
		t.Error("listening in a missing folder succeeded")
	}
}
