package rest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/pluginhost"
)

// fakeAdmin is a scriptable PluginAdmin.
type fakeAdmin struct {
	infos     []pluginhost.Info
	results   []pluginhost.ReloadResult
	reloadErr error
	reloads   int
}

func (a *fakeAdmin) Plugins(context.Context) ([]pluginhost.Info, error) { return a.infos, nil }

func (a *fakeAdmin) ReloadPlugins(context.Context) ([]pluginhost.ReloadResult, error) {
	a.reloads++
	return a.results, a.reloadErr
}

func pluginsServer(t *testing.T, a PluginAdmin) *Server {
	t.Helper()
	var opts []ServerOption
	if a != nil {
		opts = append(opts, WithPluginAdmin(a))
	}
	s, err := NewServer(testConfig(), newFake(), hclog.NewNullLogger(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.onPanic = func(v any) { t.Errorf("handler panicked: %v", v) }
	return s
}

var infoKeys = []string{"kind", "name", "version", "protocol_version", "path", "pid", "state",
	"restarts", "last_error", "uptime", "started_at", "capabilities"}

func TestPluginsList(t *testing.T) {
	started := time.Date(2026, 11, 23, 18, 59, 51, 0, time.UTC)
	admin := &fakeAdmin{infos: []pluginhost.Info{
		{Kind: core.KindConsensus, Name: "raft", Version: "0.1.0", ProtocolVersion: 1, Path: "built-in",
			Pid: 4242, State: pluginhost.StateRunning, Restarts: 1, LastError: "the plugin process exited (signal: killed)",
			Uptime: "1m2s", StartedAt: started, Capabilities: []string{"persistent", "watch"}},
		{Kind: core.KindAllocator, Name: "mine", Version: "2.0.0", ProtocolVersion: 1, Path: "/opt/plugins/mine",
			State: pluginhost.StateFailed, Restarts: 3, LastError: "executable not found", Uptime: "0s", Capabilities: []string{}},
	}}
	ts := startHTTP(t, pluginsServer(t, admin))

	r := do(t, ts, "GET", "/plugins", nil, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /plugins: %d %s", r.status, r.body)
	}
	want := `[{"kind":"consensus","name":"raft","version":"0.1.0","protocol_version":1,"path":"built-in","pid":4242,"state":"running","restarts":1,"last_error":"the plugin process exited (signal: killed)","uptime":"1m2s","started_at":"2026-11-23T18:59:51Z","capabilities":["persistent","watch"]},` +
		`{"kind":"allocator","name":"mine","version":"2.0.0","protocol_version":1,"path":"/opt/plugins/mine","pid":0,"state":"failed","restarts":3,"last_error":"executable not found","uptime":"0s","started_at":"0001-01-01T00:00:00Z","capabilities":[]}]` + "\n"
	if r.body != want {
		t.Fatalf("body\n got %s\nwant %s", r.body, want)
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &items); err != nil {
		t.Fatal(err)
	}
	if keys := jsonKeys(t, string(items[0])); !slices.Equal(keys, infoKeys) {
		t.Fatalf("keys %v", keys)
	}

	// No plugin loaded: an empty array, not null.
	ts = startHTTP(t, pluginsServer(t, &fakeAdmin{}))
	if r := do(t, ts, "GET", "/plugins", nil, nil); r.status != 200 || r.body != "[]\n" {
		t.Fatalf("empty: %d %q", r.status, r.body)
	}
}

func TestPluginsReload(t *testing.T) {
	admin := &fakeAdmin{results: []pluginhost.ReloadResult{
		{Kind: core.KindIPFSConnector, Result: pluginhost.ReloadUnchanged, Name: "embedded"},
		{Kind: core.KindConsensus, Result: pluginhost.ReloadRestartNeeded, Name: "raft", Requested: "raft",
			Error: "a consensus keeps state and cannot be swapped on a running peer: restart the peer to apply the change"},
		{Kind: core.KindAllocator, Result: pluginhost.ReloadSwapped, Name: "rendezvous", Requested: "rendezvous", Previous: "balanced"},
	}}
	ts := startHTTP(t, pluginsServer(t, admin))

	r := do(t, ts, "POST", "/plugins/reload", nil, nil)
	want := `[{"kind":"ipfs_connector","result":"unchanged","name":"embedded"},` +
		`{"kind":"consensus","result":"restart-needed","name":"raft","requested":"raft","error":"a consensus keeps state and cannot be swapped on a running peer: restart the peer to apply the change"},` +
		`{"kind":"allocator","result":"swapped","name":"rendezvous","requested":"rendezvous","previous":"balanced"}]` + "\n"
	if r.status != 200 || r.body != want {
		t.Fatalf("POST /plugins/reload: %d\n got %s\nwant %s", r.status, r.body, want)
	}
	if admin.reloads != 1 {
		t.Fatalf("%d reloads", admin.reloads)
	}

	// Nothing applied because of an error: 500 in IPFS Cluster's format.
	admin.reloadErr = errors.New(`reload failed, nothing was changed: plugin allocator "balanced": configure: allocator.balanced.allocate_by: must be a list of metric names`)
	r = do(t, ts, "POST", "/plugins/reload", nil, nil)
	if r.status != 500 || r.body != errBody(500, admin.reloadErr.Error()) {
		t.Fatalf("failed reload: %d %s", r.status, r.body)
	}

	// Other methods are not routed (404 or 405, as gorilla/mux decides).
	for _, c := range []struct{ method, target string }{{"GET", "/plugins/reload"}, {"DELETE", "/plugins"}, {"POST", "/plugins"}} {
		if r := do(t, ts, c.method, c.target, nil, nil); r.status != 404 && r.status != 405 {
			t.Fatalf("%s %s: %d %s", c.method, c.target, r.status, r.body)
		}
	}
	if admin.reloads != 2 {
		t.Fatalf("%d reloads", admin.reloads)
	}
}

func TestPluginsWithoutAdmin(t *testing.T) {
	ts := startHTTP(t, pluginsServer(t, nil))
	for _, c := range []struct{ method, target string }{{"GET", "/plugins"}, {"POST", "/plugins/reload"}} {
		r := do(t, ts, c.method, c.target, nil, nil)
		if r.status != http.StatusNotImplemented || r.body != errBody(501, "not supported: this server does not manage plugins") {
			t.Fatalf("%s %s: %d %s", c.method, c.target, r.status, r.body)
		}
	}
}

func TestPluginsNeedAuthentication(t *testing.T) {
	cfg := testConfig()
	cfg.BasicAuthCredentials = map[string]string{"user": "pass"}
	s, err := NewServer(cfg, newFake(), hclog.NewNullLogger(), WithPluginAdmin(&fakeAdmin{}))
	if err != nil {
		t.Fatal(err)
	}
	ts := startHTTP(t, s)
	for _, c := range []struct{ method, target string }{{"GET", "/plugins"}, {"POST", "/plugins/reload"}} {
		if r := do(t, ts, c.method, c.target, nil, nil); r.status != 401 {
			t.Fatalf("%s %s without credentials: %d", c.method, c.target, r.status)
		}
	}
}

// A call that failed because its plugin is restarting answers 503.
func TestRestartingPluginAnswers503(t *testing.T) {
	f := newFake()
	f.pinFn = func(context.Context, core.Cid, core.PinOptions) (core.Pin, error) {
		return core.Pin{}, &pluginhost.UnavailableError{Kind: core.KindConsensus, Name: "raft", Op: "Commit",
			Err: errors.New("error reading from server: EOF")}
	}
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	r := do(t, ts, "POST", "/pins/"+cidA, nil, nil)
	want := `plugin consensus "raft" is restarting: Commit: error reading from server: EOF`
	if r.status != 503 || r.body != errBody(503, want) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	f.pinFn = func(context.Context, core.Cid, core.PinOptions) (core.Pin, error) {
		return core.Pin{}, errors.New("boom")
	}
	if r := do(t, ts, "POST", "/pins/"+cidA, nil, nil); r.status != 500 {
		t.Fatalf("other errors: %d", r.status)
	}
}
