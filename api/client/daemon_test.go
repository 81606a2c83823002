package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
)

// serviceBinary is built once by TestMain for the tests against a real
// daemon.
var serviceBinary string

func TestMain(m *testing.M) {
	os.Exit(servicetest.MainWithService(m, &serviceBinary))
}

// waitStatus waits (at most 30s) until every peer reports target.
func waitStatus(t *testing.T, c *Client, ci core.Cid, target core.TrackerStatus) core.GlobalPinInfo {
	t.Helper()
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gpi, err := c.WaitFor(wctx, WaitParams{Cid: ci, Target: target, CheckFreq: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("waiting for %s to be %s: %v (last %+v)", ci, target, err, gpi)
	}
	return gpi
}

func TestAgainstDaemon(t *testing.T) {
	d := servicetest.StartDaemon(t, serviceBinary)
	dbg := &debugLog{}
	// The API as a multiaddress, as ipfs-cluster-ctl takes it.
	c := newClient(t, d.Multiaddr, func(c *Config) { c.Debug = dbg.add })
	ctx := ctx(t)

	t.Run("id version peers health", func(t *testing.T) {
		id, err := c.ID(ctx)
		if err != nil || id.ID.String() != d.PeerID || len(id.ClusterPeers) != 1 || id.IPFS.ID == "" {
			t.Fatalf("ID: %+v %v", id, err)
		}
		v, err := c.Version(ctx)
		if err != nil || v.Version != core.SoftwareVersion {
			t.Fatalf("Version: %v %v", v, err)
		}
		peers, err := collect(c.Peers(ctx))
		if err != nil || len(peers) != 1 || peers[0].ID.String() != d.PeerID {
			t.Fatalf("Peers: %+v %v", peers, err)
		}
		if err := c.Health(ctx); err != nil {
			t.Fatalf("Health: %v", err)
		}
		_, err = c.Token(ctx)
		var ce core.Error
		if !errors.As(err, &ce) || ce.Code != 401 {
			t.Fatalf("Token without credentials configured: %v", err)
		}
		_, err = c.PeerAdd(ctx, id.IPFS.ID)
		if !errors.As(err, &ce) || ce.Code != 501 {
			t.Fatalf("PeerAdd: %v", err)
		}
	})

	dir := t.TempDir()
	hello := filepath.Join(dir, "hello.txt")
	if err := os.WriteFile(hello, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree, "a.txt"), []byte("file a\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "sub", "b.txt"), []byte("file b\n"), 0o644)

	var treeRoot, aCid core.Cid
	t.Run("add", func(t *testing.T) {
		out, err := collect(c.Add(ctx, []string{hello}, DefaultAddParams()))
		if err != nil || len(out) != 1 || out[0].Cid.String() != helloV0 || out[0].Name != "hello.txt" || out[0].Size != 14 {
			t.Fatalf("add file: %+v %v", out, err)
		}
		p := DefaultAddParams()
		p.CidVersion, p.RawLeaves = 1, true
		out, err = collect(c.Add(ctx, []string{hello}, p))
		if err != nil || len(out) != 1 || out[0].Cid.String() != helloV1 {
			t.Fatalf("add cid-version=1: %+v %v", out, err)
		}
		p = DefaultAddParams()
		p.Recursive = true
		p.Name = "tree"
		p.Metadata = map[string]string{"kind": "dir"}
		out, err = collect(c.Add(ctx, []string{tree}, p))
		var names []string
		for _, o := range out {
			names = append(names, o.Name)
		}
		if err != nil || strings.Join(names, ",") != "tree/a.txt,tree/sub/b.txt,tree/sub,tree" {
			t.Fatalf("add directory: %v %v", names, err)
		}
		treeRoot, aCid = out[3].Cid, out[0].Cid
		p = DefaultAddParams()
		p.NoPin = true
		out, err = collect(c.AddFiles(ctx, []File{{Name: "stdin", Reader: strings.NewReader("from a reader\n")}}, p))
		if err != nil || len(out) != 1 || out[0].Name != "stdin" {
			t.Fatalf("add from a reader: %+v %v", out, err)
		}
		gpi, err := c.Status(ctx, out[0].Cid, false)
		if err != nil || gpi.PeerMap[d.PeerID].Status != core.TrackerStatusUnpinned {
			t.Fatalf("no-pin content: %+v %v", gpi, err)
		}
		p = DefaultAddParams()
		p.Layout = "foo"
		_, err = collect(c.AddFiles(ctx, []File{{Name: "x", Reader: strings.NewReader("x")}}, p))
		var ce core.Error
		if !errors.As(err, &ce) || ce.Code != 400 || ce.Message != "layout parameter is invalid" {
			t.Fatalf("add with a bad layout: %v", err)
		}
		for _, ci := range []core.Cid{mustCid(t, helloV0), mustCid(t, helloV1), treeRoot} {
			waitStatus(t, c, ci, core.TrackerStatusPinned)
		}
	})

	t.Run("pin by path and by cid, wait", func(t *testing.T) {
		pin, err := c.PinPath(ctx, "/ipfs/"+treeRoot.String()+"/a.txt", core.PinOptions{
			Name: "afile", Metadata: map[string]string{"kind": "text"}, ReplicationFactorMin: 1, ReplicationFactorMax: 1,
		})
		if err != nil || !pin.Cid.Equals(aCid) || pin.Name != "afile" || pin.ReplicationFactorMin != 1 {
			t.Fatalf("PinPath: %+v %v", pin, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		gpi, err := c.WaitFor(wctx, WaitParams{Cid: pin.Cid, Target: core.TrackerStatusPinned, Limit: WaitLimit(pin, core.TrackerStatusPinned, 0), CheckFreq: 50 * time.Millisecond})
		if err != nil || gpi.PeerMap[d.PeerID].Status != core.TrackerStatusPinned {
			t.Fatalf("WaitFor: %+v %v", gpi, err)
		}
		alloc, err := c.Allocation(ctx, aCid)
		if err != nil || alloc.Name != "afile" || alloc.Metadata["kind"] != "text" {
			t.Fatalf("Allocation: %+v %v", alloc, err)
		}
		dbg.has(t, "POST: "+d.URL+"/pins/ipfs/"+treeRoot.String()+"/a.txt?meta-kind=text&mode=recursive&name=afile&replication-max=1&replication-min=1&shard-size=0&user-allocations=")

		pin, err = c.Pin(ctx, mustCid(t, helloV0), core.PinOptions{Name: "hello"})
		if err != nil || pin.Name != "hello" {
			t.Fatalf("Pin: %+v %v", pin, err)
		}
		_, err = c.PinPath(ctx, "/ipfs/invalidhash", core.PinOptions{})
		var ce core.Error
		if !errors.As(err, &ce) || ce.Code != 400 || !strings.Contains(ce.Message, "error parsing path") {
			t.Fatalf("PinPath of an invalid path: %v", err)
		}
	})

	t.Run("pinset and status", func(t *testing.T) {
		pins, err := collect(c.Allocations(ctx, core.AllType))
		if err != nil || len(pins) != 4 {
			t.Fatalf("Allocations: %d %v", len(pins), err)
		}
		none, err := collect(c.Allocations(ctx, core.MetaType))
		if err != nil || len(none) != 0 {
			t.Fatalf("Allocations of meta-pins (204): %v %v", none, err)
		}
		all, err := collect(c.StatusAll(ctx, core.TrackerStatusPinned, false))
		if err != nil || len(all) != 4 {
			t.Fatalf("StatusAll pinned: %d %v", len(all), err)
		}
		errs, err := collect(c.StatusAll(ctx, core.TrackerStatusError, true))
		if err != nil || len(errs) != 0 {
			t.Fatalf("StatusAll error (204): %v %v", errs, err)
		}
		two, err := collect(c.StatusCids(ctx, []core.Cid{mustCid(t, helloV0), treeRoot}, false))
		if err != nil || len(two) != 2 {
			t.Fatalf("StatusCids: %v %v", two, err)
		}
		_, err = c.Allocation(ctx, mustCid(t, otherV0))
		var ce core.Error
		if !errors.As(err, &ce) || ce.Code != 404 || ce.Message != "pin is not part of the pinset" {
			t.Fatalf("Allocation of an unpinned CID: %v", err)
		}
		gpi, err := c.Status(ctx, mustCid(t, otherV0), true)
		if err != nil || gpi.PeerMap[d.PeerID].Status != core.TrackerStatusUnpinned {
			t.Fatalf("Status of an unpinned CID: %+v %v", gpi, err)
		}
	})

	t.Run("recover and sync", func(t *testing.T) {
		gpi, err := c.Recover(ctx, mustCid(t, helloV0), false)
		if err != nil || gpi.PeerMap[d.PeerID].Status != core.TrackerStatusPinned {
			t.Fatalf("Recover: %+v %v", gpi, err)
		}
		rec, err := collect(c.RecoverAll(ctx, true))
		if err != nil || len(rec) != 0 {
			t.Fatalf("RecoverAll with nothing to recover: %v %v", rec, err)
		}
		gpi, err = c.Sync(ctx, mustCid(t, helloV0), true)
		if err != nil || gpi.PeerMap[d.PeerID].Status != core.TrackerStatusPinned {
			t.Fatalf("Sync: %+v %v", gpi, err)
		}
		synced, err := collect(c.SyncAll(ctx, false))
		if err != nil || len(synced) != 4 {
			t.Fatalf("SyncAll: %d %v", len(synced), err)
		}
	})

	t.Run("health metrics gc", func(t *testing.T) {
		g, err := c.ConnectGraph(ctx)
		if err != nil || g.ClusterID.String() != d.PeerID {
			t.Fatalf("ConnectGraph: %+v %v", g, err)
		}
		names, err := c.MetricNames(ctx)
		if err != nil || !strings.Contains(strings.Join(names, ","), "freespace") {
			t.Fatalf("MetricNames: %v %v", names, err)
		}
		m, err := c.Metrics(ctx, "freespace")
		if err != nil || len(m) != 1 || m[0].Peer.String() != d.PeerID {
			t.Fatalf("Metrics: %+v %v", m, err)
		}
		if m, err := c.Metrics(ctx, "nonexistent"); err != nil || len(m) != 0 {
			t.Fatalf("Metrics of an unknown name: %v %v", m, err)
		}
		if _, err := c.Alerts(ctx); err != nil {
			t.Fatalf("Alerts: %v", err)
		}
		if bw, err := c.BandwidthByProtocol(ctx); err != nil || bw != nil {
			t.Fatalf("Bandwidth: %v %v", bw, err)
		}
		gc, err := c.RepoGC(ctx, true)
		if _, ok := gc.PeerMap[d.PeerID]; err != nil || !ok {
			t.Fatalf("RepoGC: %+v %v", gc, err)
		}
	})

	t.Run("unpin", func(t *testing.T) {
		pin, err := c.UnpinPath(ctx, aCid.String())
		if err != nil || !pin.Cid.Equals(aCid) {
			t.Fatalf("UnpinPath: %+v %v", pin, err)
		}
		waitStatus(t, c, aCid, core.TrackerStatusUnpinned)
		if _, err := c.Unpin(ctx, mustCid(t, helloV1)); err != nil {
			t.Fatalf("Unpin: %v", err)
		}
		waitStatus(t, c, mustCid(t, helloV1), core.TrackerStatusUnpinned)
		_, err = c.Unpin(ctx, mustCid(t, helloV1))
		var ce core.Error
		if !errors.As(err, &ce) || ce.Code != 404 {
			t.Fatalf("Unpin of an unpinned CID: %v", err)
		}
	})
}
