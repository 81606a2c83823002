package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/pluginhost"
	"github.com/pincluster/pincluster/plugins/allocator/balanced"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// serveTestPlugin serves a plugin from the test binary (see TestMain):
//
//	hang-allocator <cid>   the balanced allocator, whose Allocate never
//	                       answers for a request that holds <cid>
func serveTestPlugin(mode string, args []string) {
	switch mode {
	case "hang-allocator":
		sdk.Serve(&hangAllocator{Allocator: balanced.New(), cid: args[0]})
	default:
		fmt.Fprintf(os.Stderr, "unknown test plugin %q\n", mode)
		os.Exit(2)
	}
}

type hangAllocator struct {
	*balanced.Allocator
	cid string
}

func (a *hangAllocator) Allocate(ctx context.Context, req core.AllocateRequest) ([]core.AllocateResult, error) {
	for _, p := range req.Pins {
		if p.Cid.String() == a.cid {
			select {} // stuck, deaf to cancellation
		}
	}
	return a.Allocator.Allocate(ctx, req)
}

// plugins returns GET /plugins by kind.
func (d *daemon) plugins() map[core.Kind]pluginhost.Info {
	d.TB.Helper()
	var list []pluginhost.Info
	expect(d.TB, d.Get("/plugins"), 200, &list)
	out := make(map[core.Kind]pluginhost.Info, len(list))
	for _, p := range list {
		out[p.Kind] = p
	}
	return out
}

// waitPlugin polls GET /plugins until the plugin of kind k satisfies ok.
func (d *daemon) waitPlugin(k core.Kind, what string, ok func(pluginhost.Info) bool) pluginhost.Info {
	d.TB.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p := d.plugins()[k]
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			d.TB.Fatalf("%s plugin: %s not within 60s: %+v", k, what, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d is still alive", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addFiles adds n small files (one directory, one request) without
// pinning them and returns the files' CIDs.
func addFiles(t testing.TB, d *daemon, n int) []string {
	t.Helper()
	parts := []part{{Name: "d", Dir: true}}
	for i := range n {
		parts = append(parts, part{Name: fmt.Sprintf("d/f%04d", i), Data: fmt.Appendf(nil, "%s file %d\n", t.Name(), i)})
	}
	body, ct := multipartBody(t, parts...)
	r := do(t, "POST", d.URL+"/add?no-pin=true", body, ct)
	out := ndjson[core.AddedOutput](t, r)
	var cids []string
	for _, o := range out {
		if strings.HasPrefix(o.Name, "d/f") {
			cids = append(cids, o.Cid.String())
		}
	}
	if r.Status != 200 || len(cids) != n || r.Trailer.Get("X-Stream-Error") != "" {
		t.Fatalf("add: status %d, %d files, trailer %q", r.Status, len(cids), r.Trailer.Get("X-Stream-Error"))
	}
	return cids
}

// countLines counts the items of an NDJSON answer (0 for 204).
func countLines(t testing.TB, d *daemon, path string) int {
	t.Helper()
	r := d.Get(path)
	switch r.Status {
	case 204:
		return 0
	case 200:
		return strings.Count(string(r.Body), "\n")
	}
	t.Fatalf("GET %s: %s", path, r)
	return 0
}

// TestPluginKilledDuringPins kills each kind of plugin (kill -9) while
// 1,000 pin requests are under way: the plugin is restarted once, every
// acknowledged pin is in the pinset and every pin ends pinned.
func TestPluginKilledDuringPins(t *testing.T) {
	t.Parallel()
	for _, k := range core.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			killDuringPins(t, k)
		})
	}
}

func killDuringPins(t *testing.T, kind core.Kind) {
	const (
		pins        = 1000
		concurrency = 16
		killAfter   = 200 // acknowledged pins
	)
	dir, api := newDaemonDir(t)
	d := startDaemon(t, dir, api)
	cids := addFiles(t, d, pins)
	before := d.plugins()
	victim := before[kind]
	if victim.State != pluginhost.StateRunning || victim.Pid == 0 || victim.Restarts != 0 {
		t.Fatalf("before: %+v", victim)
	}

	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	pin := func(c string) (int, string, error) {
		resp, err := client.Post(api+"/pins/"+c+"?replication-min=1&replication-max=1", "", nil)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var e core.Error
		if resp.StatusCode != 200 {
			_ = json.NewDecoder(resp.Body).Decode(&e)
		}
		return resp.StatusCode, e.Message, nil
	}

	var (
		acked    sync.Map
		nAcked   atomic.Int64
		retried  atomic.Int64
		killOnce sync.Once
		killedAt time.Time
		jobs     = make(chan string)
		wg       sync.WaitGroup
	)
	began := time.Now()
	for range concurrency {
		wg.Go(func() {
			for c := range jobs {
				status, msg, err := pin(c)
				if err == nil && status != 200 {
					// Only a clear error of the restart window may be
					// tried again, once.
					if !strings.Contains(msg, "is restarting") {
						t.Errorf("pin %s: %d %s", c, status, msg)
						continue
					}
					retried.Add(1)
					status, msg, err = pin(c)
				}
				if err != nil || status != 200 {
					t.Errorf("pin %s: %d %s %v", c, status, msg, err)
					continue
				}
				acked.Store(c, true)
				if nAcked.Add(1) == killAfter {
					killOnce.Do(func() {
						killedAt = time.Now()
						if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
							t.Errorf("kill: %v", err)
						}
					})
				}
			}
		})
	}
	for _, c := range cids {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	pinned := time.Now()
	if t.Failed() {
		t.FailNow()
	}
	if killedAt.IsZero() {
		t.Fatal("the plugin was not killed")
	}

	// None lost: every acknowledged pin is in the pinset.
	inPinset := map[string]bool{}
	for _, p := range ndjson[core.Pin](t, d.Get("/allocations")) {
		inPinset[p.Cid.String()] = true
	}
	acked.Range(func(k, _ any) bool {
		if !inPinset[k.(string)] {
			t.Errorf("acknowledged pin %s is not in the pinset", k)
		}
		return true
	})
	if len(inPinset) != pins || nAcked.Load() != pins {
		t.Fatalf("%d pins in the pinset, %d acknowledged, want %d", len(inPinset), nAcked.Load(), pins)
	}

	// Every pin ends pinned.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := countLines(t, d, "/pins?filter=pinned")
		if n == pins {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pins pinned after 2m; not pinned: %d items", n, pins, countLines(t, d, "/pins?filter=pin_error,pin_queued,pinning,unexpectedly_unpinned"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	done := time.Now()

	// The plugin was restarted once, and nothing else was.
	after := d.plugins()
	for _, k := range core.Kinds {
		p, want := after[k], 0
		if k == kind {
			want = 1
		}
		if p.State != pluginhost.StateRunning || p.Restarts != want {
			t.Errorf("%s plugin after the test: %+v (want %d restarts)", k, p, want)
		}
	}
	if p := after[kind]; p.Pid == victim.Pid || !strings.Contains(p.LastError, "signal: killed") {
		t.Errorf("restarted plugin: %+v", p)
	}
	waitGone(t, victim.Pid)
	if !strings.Contains(d.Logs(), "plugin restarted: kind="+string(kind)) {
		t.Errorf("no restart in the log")
	}
	t.Logf("%s killed after %s; %d pins acknowledged in %s (%d tried twice), all pinned %s later",
		kind, killedAt.Sub(began).Round(time.Millisecond), pins, pinned.Sub(began).Round(time.Millisecond),
		retried.Load(), done.Sub(pinned).Round(time.Millisecond))
}

// TestPluginHangIsRestarted runs an external allocator that never answers
// for one CID: the call fails at the call deadline, the plugin is killed
// and restarted, and the peer goes on serving.
func TestPluginHangIsRestarted(t *testing.T) {
	t.Parallel()
	dir, api := newDaemonDir(t)
	stuck := randomCid(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	servicetest.EditService(t, dir, func(svc *config.Service) {
		svc.Cluster.PluginCallTimeout = config.Duration(2 * time.Second)
		svc.SetPlugin(core.KindAllocator, "hang", balanced.DefaultConfigJSON())
		svc.Plugins = map[string]config.ExternalPlugin{"hang": {Path: exe, Args: []string{"serve-test-plugin", "hang-allocator", stuck}}}
	})
	d := startDaemon(t, dir, api)
	self := servicetest.PeerID(t, dir)
	hung := d.plugins()[core.KindAllocator]
	if hung.Name != "hang" || hung.Path != exe || hung.State != pluginhost.StateRunning {
		t.Fatalf("allocator: %+v", hung)
	}

	began := time.Now()
	r := d.Post("/pins/" + stuck + "?replication-min=1&replication-max=1")
	took := time.Since(began)
	expectError(t, r, 503, `plugin allocator "hang" is restarting: Allocate: no answer within 2s: the plugin hangs and was killed`)
	if took < 1800*time.Millisecond || took > 20*time.Second {
		t.Fatalf("pin of the CID the allocator hangs on: answered after %s", took)
	}
	t.Logf("answer after %s: %s", took.Round(time.Millisecond), r)
	p := d.waitPlugin(core.KindAllocator, "restarted", func(p pluginhost.Info) bool {
		return p.State == pluginhost.StateRunning && p.Restarts == 1
	})
	if p.Pid == hung.Pid || !strings.Contains(p.LastError, "Allocate did not answer within 2s") {
		t.Fatalf("after the hang: %+v", p)
	}
	waitGone(t, hung.Pid)

	// The restarted allocator answers, and the rest of the peer never
	// stopped.
	var id core.ID
	expect(t, d.Get("/id"), 200, &id)
	c := addUnpinned(t, d, "pinned after the hang\n")
	var pin core.Pin
	expect(t, d.Post("/pins/"+c+"?replication-min=1&replication-max=1"), 200, &pin)
	if len(pin.Allocations) != 1 || pin.Allocations[0].String() != self {
		t.Fatalf("pin after the restart: %+v", pin)
	}
	d.waitStatus(c, core.TrackerStatusPinned)
	if !strings.Contains(d.Logs(), "plugin restarted: kind=allocator name=hang") {
		t.Error("no restart in the log")
	}
}

// TestReloadPluginsLive swaps the allocator of a running peer, by SIGHUP
// and by POST /plugins/reload, and checks what cannot be swapped.
func TestReloadPluginsLive(t *testing.T) {
	t.Parallel()
	dir, api := newDaemonDir(t)
	d := startDaemon(t, dir, api)
	self := servicetest.PeerID(t, dir)

	// GET /plugins lists the four plugins, in start order.
	var list []pluginhost.Info
	expect(t, d.Get("/plugins"), 200, &list)
	kids := childrenOf(t, d.Cmd.Process.Pid)
	if len(list) != len(core.Kinds) {
		t.Fatalf("GET /plugins: %+v", list)
	}
	for i, p := range list {
		if p.Kind != core.Kinds[i] || p.State != pluginhost.StateRunning || p.Restarts != 0 || p.Path != "built-in" ||
			p.ProtocolVersion != core.ProtocolVersion || p.Version == "" || p.StartedAt.IsZero() || p.LastError != "" {
			t.Errorf("plugin %d: %+v", i, p)
		}
		if _, ok := kids[p.Pid]; !ok {
			t.Errorf("%s: pid %d is not a child of the daemon (%v)", p.Kind, p.Pid, kids)
		}
		if _, err := time.ParseDuration(p.Uptime); err != nil {
			t.Errorf("%s: uptime %q: %v", p.Kind, p.Uptime, err)
		}
	}
	old := d.plugins()[core.KindAllocator]

	// SIGHUP after switching to the rendezvous allocator.
	servicetest.EditService(t, dir, func(svc *config.Service) {
		svc.SetPlugin(core.KindAllocator, "rendezvous", json.RawMessage(`{"metric":"freespace"}`))
	})
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	swapped := d.waitPlugin(core.KindAllocator, "swapped to rendezvous", func(p pluginhost.Info) bool {
		return p.Name == "rendezvous" && p.State == pluginhost.StateRunning
	})
	if swapped.Pid == old.Pid || swapped.Restarts != 0 {
		t.Fatalf("after SIGHUP: %+v", swapped)
	}
	waitGone(t, old.Pid)
	c := addUnpinned(t, d, "pinned after the swap\n")
	pinOnce(t, d, c, self)

	// A config the new plugin refuses: nothing changes, and the answer
	// says why.
	servicetest.EditService(t, dir, func(svc *config.Service) {
		svc.SetPlugin(core.KindAllocator, "rendezvous", json.RawMessage(`{"metric":"freespace","nope":1}`))
	})
	r := d.Post("/plugins/reload")
	expectError(t, r, 500, `reload failed, nothing was changed: plugin allocator "rendezvous": configure: `)
	if p := d.plugins()[core.KindAllocator]; p.Pid != swapped.Pid || p.Name != "rendezvous" || p.State != pluginhost.StateRunning {
		t.Fatalf("after a bad reload: %+v", p)
	}

	// Back to balanced, with a changed tracker and connector: the
	// allocator is swapped, the others need a restart.
	servicetest.EditService(t, dir, func(svc *config.Service) {
		svc.SetPlugin(core.KindAllocator, "balanced", json.RawMessage(`{"allocate_by":["freespace"]}`))
		svc.SetPlugin(core.KindPinTracker, "stateless", json.RawMessage(`{"concurrent_pins": 4}`))
		for name, raw := range svc.IPFSConnector {
			var sec map[string]any
			_ = json.Unmarshal(raw, &sec)
			sec["pin_concurrency"] = 4
			b, _ := json.Marshal(sec)
			svc.SetPlugin(core.KindIPFSConnector, name, b)
		}
	})
	var results []pluginhost.ReloadResult
	expect(t, d.Post("/plugins/reload"), 200, &results)
	want := map[core.Kind]pluginhost.ReloadOutcome{
		core.KindIPFSConnector: pluginhost.ReloadRestartNeeded,
		core.KindConsensus:     pluginhost.ReloadUnchanged,
		core.KindAllocator:     pluginhost.ReloadSwapped,
		core.KindPinTracker:    pluginhost.ReloadRestartNeeded,
	}
	if len(results) != len(want) {
		t.Fatalf("results %+v", results)
	}
	for _, res := range results {
		if res.Result != want[res.Kind] {
			t.Errorf("%s: %+v, want %s", res.Kind, res, want[res.Kind])
		}
		if res.Result == pluginhost.ReloadRestartNeeded && !strings.Contains(res.Error, "restart the peer") {
			t.Errorf("%s: %+v", res.Kind, res)
		}
	}
	if p := d.plugins()[core.KindAllocator]; p.Name != "balanced" || p.Pid == swapped.Pid {
		t.Fatalf("after the second swap: %+v", p)
	}
	pinOnce(t, d, addUnpinned(t, d, "pinned after the second swap\n"), self)

	// An unreadable service.json changes nothing, whether by SIGHUP or by
	// the API.
	if err := os.WriteFile(filepath.Join(dir, config.ServiceFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectError(t, d.Post("/plugins/reload"), 500, "reload failed, nothing was changed: ")
	for k, p := range d.plugins() {
		if p.State != pluginhost.StateRunning {
			t.Errorf("%s: %+v", k, p)
		}
	}
	d.Stop()
	for _, line := range []string{
		"pincluster.allocator.rendezvous: plugin swapped: kind=allocator name=rendezvous previous=balanced",
		"pincluster.plugins: plugin reload: swapped: kind=allocator name=rendezvous previous=balanced",
		"pincluster.plugins: plugin reload: service.json cannot be read; nothing was changed",
	} {
		if !strings.Contains(d.Logs(), line) {
			t.Errorf("the daemon did not log %q", line)
		}
	}
}

// TestPeerServesWhileAPluginIsDown makes the allocator impossible to
// restart (its executable is gone) and kills it: GET /plugins says so and
// why, what does not need the allocator goes on working, and the allocator
// comes back once its executable does.
func TestPeerServesWhileAPluginIsDown(t *testing.T) {
	t.Parallel()
	dir, api := newDaemonDir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "allocator")
	if err := os.Symlink(self, exe); err != nil {
		t.Fatal(err)
	}
	servicetest.EditService(t, dir, func(svc *config.Service) {
		svc.SetPlugin(core.KindAllocator, "ext", balanced.DefaultConfigJSON())
		// The allocator hangs for no CID in use.
		svc.Plugins = map[string]config.ExternalPlugin{"ext": {Path: exe, Args: []string{"serve-test-plugin", "hang-allocator", randomCid(t)}}}
	})
	d := startDaemon(t, dir, api)
	c := addUnpinned(t, d, "pinned while the allocator is down\n")

	if err := os.Rename(exe, exe+".away"); err != nil {
		t.Fatal(err)
	}
	victim := d.plugins()[core.KindAllocator]
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	down := d.waitPlugin(core.KindAllocator, "failed", func(p pluginhost.Info) bool {
		return p.State == pluginhost.StateFailed
	})
	if down.Pid != 0 || down.Uptime != "0s" || !strings.Contains(down.LastError, "executable not found") {
		t.Fatalf("allocator down: %+v", down)
	}

	// What does not need the allocator works: reads, and a pin that needs
	// no allocation (replication -1: every peer).
	var id core.ID
	expect(t, d.Get("/id"), 200, &id)
	var pin core.Pin
	expect(t, d.Post("/pins/"+c+"?replication=-1"), 200, &pin)
	d.waitStatus(c, core.TrackerStatusPinned)
	if n := countLines(t, d, "/allocations"); n != 1 {
		t.Fatalf("%d pins", n)
	}
	for k, p := range d.plugins() {
		if k != core.KindAllocator && (p.State != pluginhost.StateRunning || p.Restarts != 0) {
			t.Errorf("%s: %+v", k, p)
		}
	}

	// The executable is back: the next attempt starts the allocator.
	if err := os.Rename(exe+".away", exe); err != nil {
		t.Fatal(err)
	}
	back := d.waitPlugin(core.KindAllocator, "running again", func(p pluginhost.Info) bool {
		return p.State == pluginhost.StateRunning
	})
	if back.Restarts != 1 {
		t.Fatalf("allocator back: %+v", back)
	}
	c2 := addUnpinned(t, d, "pinned once the allocator is back\n")
	pinOnce(t, d, c2, servicetest.PeerID(t, dir))
	if !strings.Contains(d.Logs(), "plugin restart failed: kind=allocator name=ext") {
		t.Error("the failed restarts were not logged")
	}
}
