package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/adder"
	"github.com/pincluster/pincluster/core/cluster"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/allocator/balanced"
	"github.com/pincluster/pincluster/plugins/consensus/raft"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/embedded"
	"github.com/pincluster/pincluster/plugins/pintracker/stateless"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// newCluster runs the orchestrator with the built-in plugins in process:
// the real components, without the process boundary, which the daemon's
// end-to-end tests cover.
func newCluster(t *testing.T, svcJSON string) (*cluster.Cluster, core.PeerID) {
	t.Helper()
	svc, err := config.ParseService([]byte(svcJSON))
	if err != nil {
		t.Fatal(err)
	}
	env := sdktest.Environment(t)
	c, err := cluster.New(svc, env.PeerID, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plugins := map[core.Kind]core.Plugin{
		core.KindIPFSConnector: embedded.New(),
		core.KindConsensus:     raft.New(),
		core.KindAllocator:     balanced.New(),
		core.KindPinTracker:    stateless.New(),
	}
	for _, k := range core.Kinds {
		p := plugins[k]
		choice, err := svc.Plugin(k)
		if err != nil {
			t.Fatal(err)
		}
		kenv := env
		kenv.DataDir = t.TempDir()
		if err := p.Configure(ctx, choice.Config, kenv, c.Host()); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		t.Cleanup(func() { _ = p.Close(ctx) })
		if err := c.Use(k, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return c, env.PeerID
}

const baseConfig = `{
  "cluster": {"secret": "` + "0000000000000000000000000000000000000000000000000000000000000000" + `"},
  "consensus": {"raft": {"heartbeat_timeout":"100ms","election_timeout":"100ms","leader_lease_timeout":"100ms","commit_timeout":"5ms"}},
  "api": {},
  "ipfs_connector": {"embedded": {}},
  "pin_tracker": {"stateless": {}},
  "allocator": {"balanced": {}}
}`

func add(t *testing.T, c *cluster.Cluster, name, data string, params adder.Params, opts core.PinOptions) (core.Cid, []core.AddedOutput) {
	t.Helper()
	root, out, err := tryAdd(c, name, data, params, opts)
	if err != nil {
		t.Fatal(err)
	}
	return root, out
}

func tryAdd(c *cluster.Cluster, name, data string, params adder.Params, opts core.PinOptions) (core.Cid, []core.AddedOutput, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile("file", name)
	fw.Write([]byte(data))
	w.Close()
	var out []core.AddedOutput
	root, err := c.Add(context.Background(), multipart.NewReader(&buf, w.Boundary()), params, opts, func(o core.AddedOutput) error {
		out = append(out, o)
		return nil
	})
	return root, out, err
}

func waitStatus(t *testing.T, c *cluster.Cluster, ci core.Cid, want core.TrackerStatus) core.PinInfoShort {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		g, err := c.Status(context.Background(), ci, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range g.PeerMap {
			if p.Status == want {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is %s (%s), want %s", ci, p.Status, p.Error, want)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPinFlow(t *testing.T) {
	c, self := newCluster(t, baseConfig)
	ctx := context.Background()

	root, out := add(t, c, "hello.txt", "hello\n", adder.DefaultParams(), core.PinOptions{})
	if root.String() != "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN" || len(out) != 1 || out[0].Allocations[0] != self {
		t.Fatalf("add: %s %+v", root, out)
	}
	info := waitStatus(t, c, root, core.TrackerStatusPinned)
	if info.PeerName == "" || info.IPFS == "" {
		t.Fatalf("status without peer details: %+v", info)
	}

	// Replication 1: allocated to this peer by the balanced allocator.
	pin, err := c.Pin(ctx, root, core.PinOptions{ReplicationFactorMin: 1, ReplicationFactorMax: 1, Name: "again"})
	if err != nil || len(pin.Allocations) != 1 || pin.Allocations[0] != self {
		t.Fatalf("pin: %+v %v", pin, err)
	}
	// Two peers wanted at least: only one exists.
	_, err = c.Pin(ctx, root, core.PinOptions{ReplicationFactorMin: 2, ReplicationFactorMax: 2})
	if err == nil || !strings.Contains(err.Error(), "not enough peers to allocate") {
		t.Fatalf("over-replication: %v", err)
	}
	_, err = c.Pin(ctx, root, core.PinOptions{ReplicationFactorMin: 3, ReplicationFactorMax: 2})
	if err == nil || err.Error() != "cluster.replication_factor_min is larger than max" {
		t.Fatalf("bad factors: %v", err)
	}
	// An add checks them as a pin does, before anything is allocated.
	for _, opts := range []core.PinOptions{
		{ReplicationFactorMin: -5, ReplicationFactorMax: -5},
		{ReplicationFactorMin: 1, ReplicationFactorMax: -2},
		{ReplicationFactorMin: 3, ReplicationFactorMax: 2},
	} {
		if _, _, err := tryAdd(c, "x.txt", "x", adder.DefaultParams(), opts); err == nil || !strings.HasPrefix(err.Error(), "cluster.replication_factor_min") {
			t.Fatalf("add with replication %d..%d: %v", opts.ReplicationFactorMin, opts.ReplicationFactorMax, err)
		}
	}
	_, err = c.Pin(ctx, root, core.PinOptions{ExpireAt: time.Now().Add(-time.Hour)})
	if err == nil || err.Error() != "pin.ExpireAt set before current time" {
		t.Fatalf("expired: %v", err)
	}
	_, err = c.PinPath(ctx, "/ipfs/"+root.String(), core.PinOptions{Mode: core.PinModeDirect})
	if err == nil || !strings.Contains(err.Error(), "already pinned in recursive mode") {
		t.Fatalf("direct over recursive: %v", err)
	}
	// Pin (POST /pins/{cid}) pins recursively whatever the mode, as IPFS
	// Cluster: re-pinning as direct that way succeeds, and stays recursive.
	again, err := c.Pin(ctx, root, core.PinOptions{Name: "again", Mode: core.PinModeDirect, ReplicationFactorMin: 1, ReplicationFactorMax: 1})
	if err != nil || again.MaxDepth != -1 || again.Mode != core.PinModeDirect {
		t.Fatalf("direct through Pin: %+v %v", again, err)
	}

	// pin-update copies the options of the pin it updates.
	root2, _ := add(t, c, "other.txt", "other\n", noPin(), core.PinOptions{})
	updated, err := c.Pin(ctx, root2, core.PinOptions{PinUpdate: root})
	if err != nil || updated.Name != "again" || !updated.PinUpdate.Equals(root) || updated.ReplicationFactorMin != 1 {
		t.Fatalf("pin update: %+v %v", updated, err)
	}
	waitStatus(t, c, root2, core.TrackerStatusPinned)

	pins, err := core.Collect(c.Allocations(ctx, core.AllType))
	if err != nil || len(pins) != 2 {
		t.Fatalf("allocations: %d %v", len(pins), err)
	}
	// Times in the pinset are to the second, as in IPFS Cluster's; the
	// answer to the pin request has the instant itself.
	for _, p := range pins {
		if p.Timestamp.IsZero() || p.Timestamp.Nanosecond() != 0 {
			t.Errorf("pin %s timestamp %s", p.Cid, p.Timestamp)
		}
		if p.Cid.Equals(updated.Cid) && !p.Timestamp.Equal(updated.Timestamp.Truncate(time.Second)) {
			t.Errorf("pin %s: %s in the pinset, %s in the answer", p.Cid, p.Timestamp, updated.Timestamp)
		}
	}
	if _, err := c.Unpin(ctx, root); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, root, core.TrackerStatusUnpinned)
	if _, err := c.Unpin(ctx, root); !errors.Is(err, core.ErrPinNotFound) {
		t.Fatalf("second unpin: %v", err)
	}
	if _, err := c.Allocation(ctx, root); !errors.Is(err, core.ErrPinNotFound) {
		t.Fatalf("allocation of an unpinned CID: %v", err)
	}
}

func TestStatusRecoverSync(t *testing.T) {
	c, self := newCluster(t, baseConfig)
	ctx := context.Background()
	root, _ := add(t, c, "a.txt", "aaa\n", adder.DefaultParams(), core.PinOptions{})
	waitStatus(t, c, root, core.TrackerStatusPinned)

	all, err := core.Collect(c.StatusAll(ctx, core.TrackerStatusPinned, true))
	if err != nil || len(all) != 1 || all[0].PeerMap[self.String()].Status != core.TrackerStatusPinned {
		t.Fatalf("status all: %+v %v", all, err)
	}
	none, err := core.Collect(c.StatusAll(ctx, core.TrackerStatusError, false))
	if err != nil || len(none) != 0 {
		t.Fatalf("errors: %+v %v", none, err)
	}
	g, err := c.Sync(ctx, root, false)
	if err != nil || g.PeerMap[self.String()].Status != core.TrackerStatusPinned {
		t.Fatalf("sync: %+v %v", g, err)
	}
	g, err = c.Recover(ctx, root, false)
	if err != nil || g.PeerMap[self.String()].Status != core.TrackerStatusPinned {
		t.Fatalf("recover: %+v %v", g, err)
	}
	// A CID outside the pinset is unpinned, never an error.
	other, _ := core.DecodeCid("bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am")
	g, err = c.Status(ctx, other, false)
	if err != nil || g.PeerMap[self.String()].Status != core.TrackerStatusUnpinned || !g.Cid.Equals(other) {
		t.Fatalf("status of an unknown CID: %+v %v", g, err)
	}
}

func TestPathsPeersMetricsGraph(t *testing.T) {
	c, self := newCluster(t, baseConfig)
	ctx := context.Background()
	root, _ := add(t, c, "a.txt", "path\n", adder.DefaultParams(), core.PinOptions{})
	pin, err := c.PinPath(ctx, "/ipfs/"+root.String(), core.PinOptions{Name: "p"})
	if err != nil || !pin.Cid.Equals(root) {
		t.Fatalf("pin path: %+v %v", pin, err)
	}
	if _, err := c.PinPath(ctx, "/ipns/example.org", core.PinOptions{}); err == nil {
		t.Fatal("ipns resolved by the embedded node")
	}
	if _, err := c.UnpinPath(ctx, "/ipfs/"+root.String()); err != nil {
		t.Fatal(err)
	}

	id := c.ID(ctx)
	if id.ID != self || len(id.ClusterPeers) != 1 || id.IPFS.ID == "" {
		t.Fatalf("id %+v", id)
	}
	peers, err := core.Collect(c.Peers(ctx))
	if err != nil || len(peers) != 1 || peers[0].ID != self {
		t.Fatalf("peers %+v %v", peers, err)
	}
	names, _ := c.MetricNames(ctx)
	if strings.Join(names, ",") != "freespace,ping,pinqueue,tag:group" {
		t.Fatalf("metric names %v", names)
	}
	// The ping metric says who this peer is, as IPFS Cluster's (its IPFS
	// addresses: the public ones only, none here).
	pings, _ := c.Metrics(ctx, "ping")
	want := `{"peer_name":"` + c.ID(ctx).Peername + `","ipfs_id":"` + id.IPFS.ID.String() + `","ipfs_addresses":[]}`
	if len(pings) != 1 || pings[0].Peer != self || !pings[0].Valid || pings[0].Value != want ||
		time.Duration(pings[0].Expire-pings[0].ReceivedAt) != 30*time.Second {
		t.Fatalf("ping %+v, want the value %s", pings, want)
	}
	ms, _ := c.Metrics(ctx, "freespace")
	if len(ms) != 1 || ms[0].Peer != self || !ms[0].Valid {
		t.Fatalf("freespace %+v", ms)
	}
	g, err := c.ConnectGraph(ctx)
	if err != nil || g.ClusterID != self || g.ClustertoIPFS[self.String()] != id.IPFS.ID {
		t.Fatalf("graph %+v %v", g, err)
	}
	gc, err := c.RepoGC(ctx, false)
	if err != nil || len(gc.PeerMap) != 1 {
		t.Fatalf("gc %+v %v", gc, err)
	}
	b, _ := json.Marshal(gc)
	if !strings.Contains(string(b), `"keys":[`) {
		t.Fatalf("gc keys must be a list: %s", b)
	}
}

func TestInformerConfig(t *testing.T) {
	svc, err := config.ParseService([]byte(strings.Replace(baseConfig, `"api": {}`, `"api": {}, "informer": {"disk": {"metric_type": "nope"}}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.New(svc, sdktest.NewPeerID(t), hclog.NewNullLogger()); err == nil {
		t.Fatal("a bad informer config was accepted")
	}
	svc.Informer = config.Sections{"weather": nil}
	if _, err := cluster.New(svc, sdktest.NewPeerID(t), hclog.NewNullLogger()); err == nil {
		t.Fatal("an unknown informer was accepted")
	}
	// An error names the key by its full path.
	for raw, want := range map[string]string{
		`{"metric_tll": "30s"}`:  "informer.disk.metric_tll",
		`{"metric_ttl": "soon"}`: "informer.disk.metric_ttl",
	} {
		svc.Informer = config.Sections{"disk": json.RawMessage(raw)}
		if _, err := cluster.New(svc, sdktest.NewPeerID(t), hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("informer.disk %s: %v", raw, err)
		}
	}
}

func noPin() adder.Params {
	p := adder.DefaultParams()
	p.NoPin = true
	return p
}

func TestExpiredPinsAreRemoved(t *testing.T) {
	cfg := strings.Replace(baseConfig, `"cluster": {`, `"cluster": {"state_sync_interval": "200ms", `, 1)
	c, _ := newCluster(t, cfg)
	ctx := context.Background()
	root, _ := add(t, c, "a.txt", "expiring\n", noPin(), core.PinOptions{})
	if _, err := c.Pin(ctx, root, core.PinOptions{ExpireAt: time.Now().Add(500 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, root, core.TrackerStatusPinned)
	waitStatus(t, c, root, core.TrackerStatusUnpinned)
	if _, err := c.Allocation(ctx, root); !errors.Is(err, core.ErrPinNotFound) {
		t.Fatalf("expired pin still in the pinset: %v", err)
	}
}

func TestConcurrentWritesAreBatchedAndOrdered(t *testing.T) {
	c, _ := newCluster(t, baseConfig)
	ctx := context.Background()
	root, _ := add(t, c, "a.txt", "concurrent\n", noPin(), core.PinOptions{})

	// Many writers at once, several of them on the same CID.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := c.Pin(ctx, root, core.PinOptions{Name: fmt.Sprintf("w%d", i)})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pin, err := c.Allocation(ctx, root)
	if err != nil || !strings.HasPrefix(pin.Name, "w") {
		t.Fatalf("after concurrent pins: %+v %v", pin, err)
	}
	// An unpin queued right after a pin of the same CID sees it.
	done := make(chan error, 1)
	go func() { _, err := c.Pin(ctx, root, core.PinOptions{Name: "last"}); done <- err }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	removed, err := c.Unpin(ctx, root)
	if err != nil || removed.Name != "last" {
		t.Fatalf("unpin returned %+v %v", removed, err)
	}
	// It is the pin as read from the pinset: origins is a list.
	if removed.Origins == nil {
		t.Errorf("unpin returned origins nil, want []")
	}
}
