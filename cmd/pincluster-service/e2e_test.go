package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/pluginhost"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// Known kubo CIDs of a file holding "hello\n".
const (
	helloV0 = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
	helloV1 = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
)

func randomCid(t testing.TB) string {
	buf := make([]byte, 64)
	_, _ = rand.Read(buf)
	return rawCid(t, buf)
}

// rawCid is the CIDv1 of data as one raw block: what POST /add answers
// for a small file with cid-version=1.
func rawCid(t testing.TB, data []byte) string {
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh).String()
}

func TestDaemonEndToEnd(t *testing.T) {
	t.Parallel()
	dir, api := newDaemonDir(t)
	d := startDaemon(t, dir, api)
	self := d.PeerID

	t.Run("plugins run as separate processes", func(t *testing.T) {
		kids := childrenOf(t, d.Cmd.Process.Pid)
		for _, k := range core.Kinds {
			found := false
			for _, cmdline := range kids {
				if strings.Contains(cmdline, " plugin "+string(k)+" ") {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s plugin process among %v", k, kids)
			}
		}
	})

	t.Run("id version peers", func(t *testing.T) {
		var v core.Version
		expect(t, d.Get("/version"), 200, &v)
		if v.Version != core.SoftwareVersion {
			t.Errorf("version %q", v.Version)
		}
		var id core.ID
		expect(t, d.Get("/id"), 200, &id)
		if id.ID.String() != self || len(id.ClusterPeers) != 1 || id.ClusterPeers[0].String() != self {
			t.Errorf("unexpected id %+v", id)
		}
		if id.IPFS.ID == "" || id.IPFS.Error != "" {
			t.Errorf("ipfs id missing: %+v", id.IPFS)
		}
		// The cluster's libp2p host listens where service.json says.
		svc, err := config.LoadService(filepath.Join(dir, config.ServiceFile))
		if err != nil {
			t.Fatal(err)
		}
		want := svc.Cluster.ListenMultiaddress[0] + "/p2p/" + self
		if !slices.Contains(id.Addresses, want) {
			t.Errorf("/id addresses %v, want %s among them", id.Addresses, want)
		}
		for _, a := range id.Addresses {
			if !strings.HasSuffix(a, "/p2p/"+self) {
				t.Errorf("/id address %s is not this peer's", a)
			}
		}
		peers := ndjson[core.ID](t, d.Get("/peers"))
		if len(peers) != 1 || peers[0].ID.String() != self {
			t.Errorf("peers %+v", peers)
		}
	})

	t.Run("add a file", func(t *testing.T) {
		body, ct := multipartBody(t, part{Name: "hello.txt", Data: []byte("hello\n")})
		r := do(t, "POST", d.URL+"/add", body, ct)
		out := ndjson[core.AddedOutput](t, r)
		if r.Status != 200 || len(out) != 1 || out[0].Cid.String() != helloV0 || out[0].Size != 14 || out[0].Name != "hello.txt" {
			t.Fatalf("add: %s", r)
		}
		if len(out[0].Allocations) != 1 || out[0].Allocations[0].String() != self {
			t.Errorf("allocations %v", out[0].Allocations)
		}
		if te := r.Trailer.Get("X-Stream-Error"); te != "" {
			t.Errorf("trailer error %q", te)
		}
		d.waitStatus(helloV0, core.TrackerStatusPinned)

		body, ct = multipartBody(t, part{Name: "hello.txt", Data: []byte("hello\n")})
		out = ndjson[core.AddedOutput](t, do(t, "POST", d.URL+"/add?cid-version=1", body, ct))
		if len(out) != 1 || out[0].Cid.String() != helloV1 || out[0].Size != 6 {
			t.Fatalf("add cid-version=1: %+v", out)
		}
		d.waitStatus(helloV1, core.TrackerStatusPinned)
	})

	var dirCid, aCid string
	t.Run("add a directory and pin a path inside it", func(t *testing.T) {
		body, ct := multipartBody(t,
			part{Name: "dir", Dir: true},
			part{Name: "dir/a.txt", Data: []byte("file a\n")},
			part{Name: "dir/sub", Dir: true},
			part{Name: "dir/sub/b.txt", Data: []byte("file b\n")},
		)
		out := ndjson[core.AddedOutput](t, do(t, "POST", d.URL+"/add?no-pin=false", body, ct))
		var names []string
		for _, o := range out {
			names = append(names, o.Name)
		}
		if strings.Join(names, ",") != "dir/a.txt,dir/sub/b.txt,dir/sub,dir" {
			t.Fatalf("add output order: %v", names)
		}
		dirCid, aCid = out[3].Cid.String(), out[0].Cid.String()
		d.waitStatus(dirCid, core.TrackerStatusPinned)

		var pin core.Pin
		expect(t, d.Post("/pins/ipfs/"+dirCid+"/a.txt?name=afile&meta-kind=text&replication=-1"), 200, &pin)
		if pin.Cid.String() != aCid || pin.Name != "afile" || pin.Metadata["kind"] != "text" {
			t.Fatalf("path pin: %+v", pin)
		}
		d.waitStatus(aCid, core.TrackerStatusPinned)
	})

	t.Run("pin by CID and allocations", func(t *testing.T) {
		body, ct := multipartBody(t, part{Name: "loose.txt", Data: []byte("not pinned at first\n")})
		out := ndjson[core.AddedOutput](t, do(t, "POST", d.URL+"/add?no-pin=true", body, ct))
		loose := out[0].Cid.String()
		var g core.GlobalPinInfo
		expect(t, d.Get("/pins/"+loose), 200, &g)
		if g.PeerMap[self].Status != core.TrackerStatusUnpinned {
			t.Fatalf("no-pin content is %s", g.PeerMap[self].Status)
		}
		expectError(t, d.Get("/allocations/"+loose), 404, "pin is not part of the pinset")

		var pin core.Pin
		expect(t, d.Post("/pins/"+loose+"?name=loose&replication-min=1&replication-max=1"), 200, &pin)
		if pin.ReplicationFactorMin != 1 || len(pin.Allocations) != 1 || pin.Allocations[0].String() != self {
			t.Fatalf("pin: %+v", pin)
		}
		d.waitStatus(loose, core.TrackerStatusPinned)
		expect(t, d.Get("/allocations/"+loose), 200, &pin)
		if pin.Name != "loose" {
			t.Fatalf("allocation: %+v", pin)
		}
		pins := ndjson[core.Pin](t, d.Get("/allocations?filter=pin"))
		if len(pins) != 5 {
			t.Fatalf("allocations: %d pins", len(pins))
		}
		r := d.Get("/allocations?filter=meta-pin")
		if r.Status != 204 {
			t.Fatalf("allocations of meta-pins: %s", r)
		}
	})

	t.Run("status streams", func(t *testing.T) {
		all := ndjson[core.GlobalPinInfo](t, d.Get("/pins"))
		if len(all) != 5 {
			t.Fatalf("GET /pins: %d items", len(all))
		}
		local := ndjson[core.GlobalPinInfo](t, d.Get("/pins?local=true&filter=pinned"))
		if len(local) != 5 {
			t.Fatalf("GET /pins?local=true&filter=pinned: %d items", len(local))
		}
		for _, g := range local {
			if len(g.PeerMap) != 1 || g.PeerMap[self].Status != core.TrackerStatusPinned || g.PeerMap[self].PeerName == "" {
				t.Fatalf("local status %+v", g)
			}
		}
		if r := d.Get("/pins?filter=pin_error"); r.Status != 204 {
			t.Fatalf("filter=pin_error: %s", r)
		}
		two := ndjson[core.GlobalPinInfo](t, d.Get("/pins?cids="+helloV0+","+dirCid))
		if len(two) != 2 {
			t.Fatalf("cids mode: %d items", len(two))
		}
		var one core.GlobalPinInfo
		expect(t, d.Get("/pins/"+dirCid+"?local=true"), 200, &one)
		if one.Cid.String() != dirCid || len(one.PeerMap) != 1 || one.PeerMap[self].Status != core.TrackerStatusPinned {
			t.Fatalf("GET /pins/{cid}?local=true: %+v", one)
		}
	})

	t.Run("recover and sync", func(t *testing.T) {
		var g core.GlobalPinInfo
		expect(t, d.Post("/pins/"+helloV0+"/recover"), 200, &g)
		if g.PeerMap[self].Status != core.TrackerStatusPinned {
			t.Fatalf("recover of a pinned CID: %+v", g)
		}
		if r := d.Post("/pins/recover"); r.Status != 204 {
			t.Fatalf("recover all with nothing to recover: %s", r)
		}
		expect(t, d.Post("/pins/"+helloV0+"/sync"), 200, &g)
		if g.PeerMap[self].Status != core.TrackerStatusPinned {
			t.Fatalf("sync: %+v", g)
		}
		synced := ndjson[core.GlobalPinInfo](t, d.Post("/pins/sync"))
		if len(synced) != 5 {
			t.Fatalf("sync all: %d items", len(synced))
		}
	})

	// Pins of content that is nowhere, two of which arrives later.
	one, all := []byte("arrives after its pin\n"), []byte("arrives after its pin too\n")
	late, later := rawCid(t, one), rawCid(t, all)
	t.Run("unavailable content ends in pin_error", func(t *testing.T) {
		missing := randomCid(t)
		var pin core.Pin
		for _, c := range []string{missing, late, later} {
			expect(t, d.Post("/pins/"+c), 200, &pin)
		}
		for _, c := range []string{missing, late, later} {
			if g := d.waitStatus(c, core.TrackerStatusPinError); g.PeerMap[self].Error == "" {
				t.Errorf("pin_error without an error message")
			}
		}
		expect(t, d.Delete("/pins/"+missing), 200, &pin)
		d.waitStatus(missing, core.TrackerStatusUnpinned)
	})

	t.Run("failed pins recover once their content is there", func(t *testing.T) {
		for _, data := range [][]byte{one, all} {
			body, ct := multipartBody(t, part{Name: "late.txt", Data: data})
			out := ndjson[core.AddedOutput](t, do(t, "POST", d.URL+"/add?no-pin=true&cid-version=1", body, ct))
			if len(out) != 1 || out[0].Cid.String() != rawCid(t, data) {
				t.Fatalf("add: %+v", out)
			}
		}
		// One CID...
		var g core.GlobalPinInfo
		expect(t, d.Post("/pins/"+late+"/recover"), 200, &g)
		if st := g.PeerMap[self].Status; st != core.TrackerStatusPinQueued && st != core.TrackerStatusPinning && st != core.TrackerStatusPinned {
			t.Fatalf("recover answered %+v", g)
		}
		d.waitStatus(late, core.TrackerStatusPinned)
		// ... and every failed pin.
		recovered := ndjson[core.GlobalPinInfo](t, d.Post("/pins/recover"))
		if len(recovered) != 1 || recovered[0].Cid.String() != later {
			t.Fatalf("recover all: %+v", recovered)
		}
		d.waitStatus(later, core.TrackerStatusPinned)
		if r := d.Get("/pins?filter=error"); r.Status != 204 {
			t.Fatalf("errors left after recovering: %s", r)
		}
		for _, c := range []string{late, later} {
			expect(t, d.Delete("/pins/"+c), 200, nil)
			d.waitStatus(c, core.TrackerStatusUnpinned)
		}
	})

	t.Run("unpin", func(t *testing.T) {
		var pin core.Pin
		expect(t, d.Delete("/pins/"+helloV1), 200, &pin)
		if pin.Cid.String() != helloV1 {
			t.Fatalf("unpin returned %+v", pin)
		}
		d.waitStatus(helloV1, core.TrackerStatusUnpinned)
		expect(t, d.Delete("/pins/ipfs/"+aCid), 200, &pin)
		d.waitStatus(aCid, core.TrackerStatusUnpinned)
		expectError(t, d.Delete("/pins/"+aCid), 404, "pin is not part of the pinset")
	})

	t.Run("health, metrics, gc", func(t *testing.T) {
		var graph core.ConnectGraph
		expect(t, d.Get("/health/graph"), 200, &graph)
		if graph.ClusterID.String() != self || graph.ClustertoIPFS[self] == "" {
			t.Fatalf("graph %+v", graph)
		}
		var names []string
		expect(t, d.Get("/monitor/metrics"), 200, &names)
		if !strings.Contains(strings.Join(names, ","), "freespace") {
			t.Fatalf("metric names %v", names)
		}
		var metrics []core.Metric
		expect(t, d.Get("/monitor/metrics/freespace"), 200, &metrics)
		if len(metrics) != 1 || metrics[0].Peer.String() != self || metrics[0].Weight <= 0 {
			t.Fatalf("freespace %+v", metrics)
		}
		var alerts []core.Alert
		expect(t, d.Get("/health/alerts"), 200, &alerts)
		var gc core.GlobalRepoGC
		expect(t, d.Post("/ipfs/gc"), 200, &gc)
		if _, ok := gc.PeerMap[self]; !ok {
			t.Fatalf("gc %+v", gc)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		expectError(t, d.Get("/idx"), 404, "not found")
		if r := do(t, "PUT", d.URL+"/id", nil, ""); r.Status != 405 {
			t.Fatalf("PUT /id: %s", r)
		}
		expectError(t, d.Get("/allocations?filter=invalid"), 400, "invalid filter value")
		expectError(t, d.Get("/allocations/abcd"), 400, "error decoding Cid")
		expectError(t, d.Get("/pins?filter=foo"), 400, "invalid filter value")
		expectError(t, d.Get("/pins?cids=bad"), 400, "error decoding Cid")
		expectError(t, d.Get("/pins/notacid"), 400, "error decoding Cid")
		expectError(t, d.Post("/pins/"+helloV0+"?replication-min=x"), 400, "parameter replication-min invalid")
		expectError(t, d.Post("/pins/ipfs/invalidhash"), 400, "error parsing path")
		expectError(t, d.Delete("/pins/abcd"), 400, "error decoding Cid")
		expectError(t, d.Delete("/pins/ipfs/invalidhash"), 400, "error parsing path")
		expectError(t, d.Post("/pins/ipld/invalidhash"), 400, "error parsing path")
		expectError(t, d.Post("/pins/notacid/recover"), 400, "error decoding Cid")
		expectError(t, d.Post("/pins/notacid/sync"), 400, "error decoding Cid")
		expectError(t, d.Post("/pins/"+helloV0+"?expire-at=yesterday"), 400, "expire-at cannot be parsed")
		expectError(t, d.Post("/pins/"+helloV0+"?expire-in=1ms"), 400, "expire-in duration too short")
		expectError(t, d.Post("/pins/"+helloV0+"?pin-update=notacid"), 400, "error decoding update option parameter")
		expectError(t, d.Post("/pins/"+helloV0+"?origins=/ip4/1.2.3.4/tcp/1"), 400, "multiaddress does not contain peer ID")
		expectError(t, d.Post("/pins/"+helloV0+"?replication-min=2&replication-max=1"), 500, "cluster.replication_factor_min is larger than max")
		expectError(t, d.Delete("/peers/abc"), 400, "error decoding Peer ID")
		expectError(t, d.Delete("/peers/"+d.PeerID), 400, "is the last peer of the cluster: it cannot be removed")
		expectError(t, d.Delete("/peers/"+sdktest.NewPeerID(t).String()), 500, "is not a cluster peer")
		expectError(t, do(t, "POST", d.URL+"/add", strings.NewReader("hello"), "text/plain"), 400, "request Content-Type isn't multipart/form-data")
		body, ct := multipartBody(t, part{Name: "x", Data: []byte("x")})
		expectError(t, do(t, "POST", d.URL+"/add?layout=foo", body, ct), 400, "layout parameter is invalid")
		r := do(t, "POST", d.URL+"/add", strings.NewReader("--garbage\r\nbroken"), "multipart/form-data; boundary=garbage")
		if r.Status != 200 || r.Trailer.Get("X-Stream-Error") == "" {
			t.Fatalf("malformed multipart: %s (trailer %v)", r, r.Trailer)
		}
		var id core.ID
		expect(t, d.Get("/id"), 200, &id)
	})

	t.Run("state survives a restart", func(t *testing.T) {
		// What each plugin process logs reaches the core's log under the
		// plugin's name.
		log := stoppedLog(d)
		for _, choice := range [][2]string{{"consensus", "raft"}, {"allocator", "balanced"}, {"pin_tracker", "stateless"}, {"ipfs_connector", "embedded"}} {
			expectLogLine(t, log, fmt.Sprintf("[INFO]  pincluster.%s.%s.pincluster-service: configured: config_bytes=", choice[0], choice[1]))
		}
		d2 := startDaemon(t, dir, api)
		for _, c := range []string{helloV0, dirCid} {
			d2.waitStatus(c, core.TrackerStatusPinned)
		}
		pins := ndjson[core.Pin](t, d2.Get("/allocations"))
		if len(pins) != 3 {
			t.Fatalf("%d pins after restart, want 3", len(pins))
		}
		var g core.GlobalPinInfo
		expect(t, d2.Post("/pins/"+helloV0+"/sync"), 200, &g)
		if g.PeerMap[self].Status != core.TrackerStatusPinned {
			t.Fatalf("content lost after restart: %+v", g)
		}
	})
}

func TestDaemonKillLeavesNoPlugins(t *testing.T) {
	t.Parallel()
	dir, api := newDaemonDir(t)
	d := startDaemon(t, dir, api)
	// Plugins started again after a crash die with their core too.
	alloc := d.plugins()[core.KindAllocator]
	if err := syscall.Kill(alloc.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.waitPlugin(core.KindAllocator, "restarted", func(p pluginhost.Info) bool {
		return p.State == pluginhost.StateRunning && p.Restarts == 1
	})
	kids := childrenOf(t, d.Cmd.Process.Pid)
	if len(kids) < 4 {
		t.Fatalf("expected 4 plugin processes, found %v", kids)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pid := range kids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("plugin process %d (%s) outlived its core", pid, kids[pid])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// CLUSTER_RESTAPI_* variables override api.restapi, as in IPFS Cluster:
// here the address the REST API listens on.
func TestRESTAPIEnvironment(t *testing.T) {
	dir, _ := newDaemonDir(t)
	port := freePort(t)
	t.Setenv("CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	d := startDaemon(t, dir, fmt.Sprintf("http://127.0.0.1:%d", port))
	var id core.ID
	expect(t, d.Get("/id"), 200, &id)
	if id.ID.String() != d.PeerID {
		t.Fatalf("id %+v", id)
	}
}

// The api section is read as IPFS Cluster reads it: only what it names is
// started; IPFS Cluster's other APIs are accepted and not served.
func TestAPISections(t *testing.T) {
	var logs strings.Builder
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	svc := func(api string) *config.Service {
		s := &config.Service{}
		if err := json.Unmarshal([]byte(`{"api": `+api+`}`), s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	raw, serve, err := apiSections(svc(`{"restapi": {"read_timeout": "1s"}, "pinsvcapi": {}, "ipfsproxy": {}}`), logger)
	if err != nil || !serve || string(raw) != `{"read_timeout": "1s"}` {
		t.Fatalf("restapi with the others: %s %v %v", raw, serve, err)
	}
	if !strings.Contains(logs.String(), "api.ipfsproxy is not served") || !strings.Contains(logs.String(), "api.pinsvcapi is not served") {
		t.Fatalf("no warning for the APIs not served:\n%s", logs.String())
	}
	if _, serve, err := apiSections(svc(`{}`), logger); err != nil || serve {
		t.Fatalf("no restapi: %v %v", serve, err)
	}
	if _, _, err := apiSections(svc(`{"restapj": {}}`), logger); err == nil || !strings.Contains(err.Error(), "api.restapj: unknown API") {
		t.Fatalf("misspelt API: %v", err)
	}
}
