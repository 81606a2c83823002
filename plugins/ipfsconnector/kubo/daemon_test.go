package kubo

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
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

// serviceBinary builds cmd/pincluster-service once per test binary, the
// first time a test needs it.
func serviceBinary(t testing.TB) string {
	t.Helper()
	serviceOnce.Do(func() {
		serviceBinDir, serviceErr = os.MkdirTemp("", "pincluster-kubo-e2e")
		if serviceErr == nil {
			serviceBin, serviceErr = servicetest.BuildService(serviceBinDir)
		}
	})
	if serviceErr != nil {
		t.Fatal(serviceErr)
	}
	return serviceBin
}

// peerDaemon is a pincluster-service daemon process.
type peerDaemon struct{ *servicetest.Daemon }

type (
	answer   = servicetest.Response
	filePart = servicetest.Part
)

var (
	call    = servicetest.Do
	decode  = servicetest.Expect
	addBody = servicetest.Multipart
)

func ndjsonOf[T any](t testing.TB, a answer) []T {
	t.Helper()
	return servicetest.NDJSON[T](t, a)
}

// newPeerDir initialises a config folder whose listeners are on free
// loopback ports and whose IPFS connector is kubo with connector; tracker
// sets keys of pin_tracker.stateless.
func newPeerDir(t testing.TB, connector json.RawMessage, tracker map[string]any) (dir, api string) {
	t.Helper()
	return servicetest.NewPeerDir(t, serviceBinary(t), func(svc *config.Service) {
		svc.SetPlugin(core.KindIPFSConnector, Name, connector)
		if tracker == nil {
			return
		}
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
	})
}

// setInformer replaces the configuration of one informer in dir's
// service.json.
func setInformer(t testing.TB, dir, name string, cfg map[string]any) {
	t.Helper()
	servicetest.EditService(t, dir, func(svc *config.Service) {
		if svc.Informer == nil {
			svc.Informer = config.Sections{}
		}
		svc.Informer[name], _ = json.Marshal(cfg)
	})
}

// startPeer runs the daemon on dir and waits until its API answers.
func startPeer(t testing.TB, dir, api string) *peerDaemon {
	t.Helper()
	return &peerDaemon{servicetest.Start(t, serviceBinary(t), dir, api)}
}

// add uploads parts through POST /add?query and returns name -> CID.
func (d *peerDaemon) add(query string, parts ...filePart) map[string]string {
	d.TB.Helper()
	body, ct := addBody(d.TB, parts...)
	a := call(d.TB, "POST", d.URL+"/add?"+query, body, ct)
	if a.Status != 200 || a.Trailer.Get("X-Stream-Error") != "" {
		d.TB.Fatalf("add: %s (trailer error %q)", a, a.Trailer.Get("X-Stream-Error"))
	}
	out := map[string]string{}
	for _, o := range ndjsonOf[core.AddedOutput](d.TB, a) {
		out[o.Name] = o.Cid.String()
	}
	return out
}

// status returns this peer's status of a CID.
func (d *peerDaemon) status(c string) core.PinInfoShort {
	d.TB.Helper()
	var g core.GlobalPinInfo
	decode(d.TB, d.Get("/pins/"+c+"?local=true"), 200, &g)
	for _, p := range g.PeerMap {
		return p
	}
	d.TB.Fatalf("no status for %s: %+v", c, g)
	return core.PinInfoShort{}
}

// waitStatus polls until the CID has status want on this peer.
func (d *peerDaemon) waitStatus(c string, want core.TrackerStatus, within time.Duration) core.PinInfoShort {
	d.TB.Helper()
	for _, p := range d.WaitStatus(c, want, true, within).PeerMap {
		return p
	}
	return core.PinInfoShort{}
}
