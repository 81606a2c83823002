package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/allocator/balanced"
	"github.com/pincluster/pincluster/plugins/allocator/rendezvous"
)

// useAllocator makes the allocator of the peer in dir the plugin name,
// with config cfg, loaded from ext when it is not built in.
func useAllocator(t testing.TB, dir, name string, cfg json.RawMessage, ext *config.ExternalPlugin) {
	t.Helper()
	servicetest.EditService(t, dir, func(svc *config.Service) {
		svc.SetPlugin(core.KindAllocator, name, cfg)
		if ext != nil {
			if svc.Plugins == nil {
				svc.Plugins = map[string]config.ExternalPlugin{}
			}
			svc.Plugins[name] = *ext
		}
	})
}

// addUnpinned adds a file of the given content without pinning it and
// returns its CID.
func addUnpinned(t testing.TB, d *daemon, content string) string {
	t.Helper()
	body, ct := multipartBody(t, part{Name: "f.txt", Data: []byte(content)})
	r := do(t, "POST", d.URL+"/add?no-pin=true", body, ct)
	out := ndjson[core.AddedOutput](t, r)
	if r.Status != 200 || len(out) != 1 {
		t.Fatalf("add: %s", r)
	}
	return out[0].Cid.String()
}

// pinOnce pins c with replication factor 1 and checks that the pin was
// allocated to this peer alone and ends pinned.
func pinOnce(t testing.TB, d *daemon, c, self string) core.Pin {
	t.Helper()
	var pin core.Pin
	expect(t, d.Post("/pins/"+c+"?replication-min=1&replication-max=1"), 200, &pin)
	if pin.ReplicationFactorMin != 1 || pin.ReplicationFactorMax != 1 {
		t.Fatalf("pin: replication %d..%d", pin.ReplicationFactorMin, pin.ReplicationFactorMax)
	}
	if len(pin.Allocations) != 1 || pin.Allocations[0].String() != self {
		t.Fatalf("pin allocated to %v, want [%s]", pin.Allocations, self)
	}
	var alloc core.Pin
	expect(t, d.Get("/allocations/"+c), 200, &alloc)
	if len(alloc.Allocations) != 1 || alloc.Allocations[0].String() != self {
		t.Fatalf("GET /allocations: %v, want [%s]", alloc.Allocations, self)
	}
	d.waitStatus(c, core.TrackerStatusPinned)
	return pin
}

// stoppedLog stops the daemon and returns its whole log.
func stoppedLog(d *daemon) string {
	d.TB.Helper()
	d.Stop()
	return d.Logs()
}

// startedLine is the line the core logs when a plugin of kind k named
// name has started.
func startedLine(k core.Kind, name string) string {
	return fmt.Sprintf("pincluster.%s.%s: plugin started", k, name)
}

func expectLogLine(t testing.TB, log, line string) string {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, line) {
			return l
		}
	}
	t.Fatalf("the daemon did not log %q:\n%s", line, log)
	return ""
}

// TestSwapAllocatorByConfig starts a peer with the balanced allocator,
// pins, changes the allocator section of service.json to rendezvous,
// restarts the peer and pins again.
func TestSwapAllocatorByConfig(t *testing.T) {
	dir, api := newDaemonDir(t)
	self := servicetest.PeerID(t, dir)

	d := startDaemon(t, dir, api)
	before := addUnpinned(t, d, "pinned while the balanced allocator runs\n")
	pinOnce(t, d, before, self)
	log := stoppedLog(d)
	expectLogLine(t, log, startedLine(core.KindAllocator, balanced.Name))

	// The swap: one line of service.json.
	useAllocator(t, dir, rendezvous.Name, json.RawMessage(`{"metric":"freespace"}`), nil)
	raw, err := config.LoadService(filepath.Join(dir, config.ServiceFile))
	if err != nil {
		t.Fatal(err)
	}
	if choice, err := raw.Plugin(core.KindAllocator); err != nil || choice.Name != rendezvous.Name {
		t.Fatalf("service.json names allocator %q (%v)", choice.Name, err)
	}

	d = startDaemon(t, dir, api)
	d.waitStatus(before, core.TrackerStatusPinned) // the pinset survived the swap
	after := addUnpinned(t, d, "pinned while the rendezvous allocator runs\n")
	pinOnce(t, d, after, self)
	log = stoppedLog(d)
	line := expectLogLine(t, log, startedLine(core.KindAllocator, rendezvous.Name))
	if !strings.Contains(line, "version="+rendezvous.Version) || !strings.Contains(line, "path=built-in") {
		t.Errorf("start line: %s", line)
	}
	if strings.Contains(log, startedLine(core.KindAllocator, balanced.Name)) {
		t.Errorf("the balanced allocator started after the swap:\n%s", log)
	}

	// The new allocator's config is in effect: with a metric that no
	// informer publishes, no peer is a candidate.
	useAllocator(t, dir, rendezvous.Name, json.RawMessage(`{"metric":"numpin"}`), nil)
	d = startDaemon(t, dir, api)
	third := addUnpinned(t, d, "no candidate for this one\n")
	r := d.Post("/pins/" + third + "?replication-min=1&replication-max=1")
	if r.Status == 200 || !strings.Contains(string(r.Body), "not enough peers to allocate CID. Needed at least: 1. Wanted at most: 1. Available candidates: 0") {
		t.Fatalf("pin without candidates: %s", r)
	}
	d.Stop()
}
