package embedded

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// loopbackConfig makes a node listen on a free loopback port.
var loopbackConfig = json.RawMessage(`{"listen_multiaddress": "/ip4/127.0.0.1/tcp/0"}`)

func newSecret(t testing.TB) []byte {
	t.Helper()
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// netEnv is an environment in dir with the given cluster secret.
func netEnv(t testing.TB, dir string, secret []byte) core.Environment {
	env := sdktest.Environment(t)
	env.DataDir = dir
	env.Secret = secret
	return env
}

// openInProcess configures a connector in this process.
func openInProcess(t testing.TB, cfg json.RawMessage, env core.Environment) *Connector {
	t.Helper()
	c := New()
	if err := c.Configure(context.Background(), cfg, env, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// openGRPC configures a connector behind the real plugin boundary.
func openGRPC(t testing.TB, cfg json.RawMessage, env core.Environment) core.IPFSConnector {
	t.Helper()
	return sdktest.ConnectIPFSConnector(t, New(), cfg, nil, sdktest.WithEnvironment(env))
}

// recordingDAG is a DAG service that keeps the nodes added to it.
type recordingDAG struct {
	mu    sync.Mutex
	nodes map[cid.Cid]format.Node
}

func (d *recordingDAG) Get(_ context.Context, c cid.Cid) (format.Node, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if nd, ok := d.nodes[c]; ok {
		return nd, nil
	}
	return nil, format.ErrNotFound{Cid: c}
}

func (d *recordingDAG) GetMany(ctx context.Context, cids []cid.Cid) <-chan *format.NodeOption {
	out := make(chan *format.NodeOption, len(cids))
	for _, c := range cids {
		nd, err := d.Get(ctx, c)
		out <- &format.NodeOption{Node: nd, Err: err}
	}
	close(out)
	return out
}

func (d *recordingDAG) Add(_ context.Context, nd format.Node) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes[nd.Cid()] = nd
	return nil
}

func (d *recordingDAG) AddMany(ctx context.Context, nds []format.Node) error {
	for _, nd := range nds {
		_ = d.Add(ctx, nd)
	}
	return nil
}

func (d *recordingDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (d *recordingDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }
func (d *recordingDAG) blocks() (out []core.Block) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c, nd := range d.nodes {
		out = append(out, core.Block{Cid: core.NewCid(c), Data: nd.RawData()})
	}
	return out
}

// unixfsFile imports size random bytes as a UnixFS file (balanced layout,
// 16 KiB raw leaves, 8 links per node: 64 leaves under 8 inner nodes for
// 1 MiB) and returns its root and every block.
func unixfsFile(t testing.TB, size int) (core.Cid, []core.Block) {
	t.Helper()
	dag := &recordingDAG{nodes: map[cid.Cid]format.Node{}}
	params := helpers.DagBuilderParams{
		Dagserv:    dag,
		Maxlinks:   8,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256},
	}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(randomBytes(size)), 16<<10))
	if err != nil {
		t.Fatal(err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return core.NewCid(root.Cid()), dag.blocks()
}

func pinOne(t testing.TB, ctx context.Context, c core.IPFSConnector, req core.IPFSPinRequest) string {
	t.Helper()
	var out []core.IPFSPinResult
	for r, err := range c.Pin(ctx, []core.IPFSPinRequest{req}) {
		if err != nil {
			t.Fatalf("pin stream: %v", err)
		}
		out = append(out, r)
	}
	if len(out) != 1 || !out[0].Cid.Equals(req.Cid) {
		t.Fatalf("pin results %+v", out)
	}
	return out[0].Error
}

func peerOf(t testing.TB, addr string) core.PeerID {
	t.Helper()
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.ValueForProtocol(ma.P_P2P)
	if err != nil {
		t.Fatalf("%s has no /p2p part: %v", addr, err)
	}
	id, err := core.DecodePeerID(v)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// checkID checks that every address ends with the node's peer ID and that
// a loopback address is among them.
func checkID(t testing.TB, id core.IPFSID) {
	t.Helper()
	if len(id.Addresses) == 0 {
		t.Fatalf("ID lists no address: %+v", id)
	}
	loopback := false
	for _, a := range id.Addresses {
		if peerOf(t, a) != id.ID {
			t.Fatalf("address %s does not end with the node's ID %s", a, id.ID)
		}
		loopback = loopback || strings.HasPrefix(a, "/ip4/127.0.0.1/")
	}
	if !loopback {
		t.Fatalf("no loopback address in %v", id.Addresses)
	}
}

// waitPeers waits (bounded) until SwarmPeers of c includes or excludes p.
func waitPeers(t testing.TB, ctx context.Context, c core.IPFSConnector, p core.PeerID, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		peers, err := c.SwarmPeers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(peers, p) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("SwarmPeers = %v; want %s listed: %t", peers, p, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBitswapBetweenNodes is the cluster case: a node allocated a pin
// fetches its blocks from the node that has them. A runs in this process,
// B behind the plugin boundary; both are configured with the cluster's
// secret.
func TestBitswapBetweenNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	secret := newSecret(t)
	a := openInProcess(t, loopbackConfig, netEnv(t, t.TempDir(), secret))
	bDir := t.TempDir()
	b := openGRPC(t, loopbackConfig, netEnv(t, bDir, secret))

	idA, err := a.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkID(t, idA)
	idB, err := b.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkID(t, idB)

	root, blks := unixfsFile(t, 1<<20)
	if len(blks) != 64+8+1 {
		t.Fatalf("the file has %d blocks, want 73", len(blks))
	}
	if err := a.BlockPut(ctx, blks); err != nil {
		t.Fatal(err)
	}
	if e := pinOne(t, ctx, a, core.IPFSPinRequest{Cid: root, MaxDepth: -1}); e != "" {
		t.Fatalf("pin on A: %s", e)
	}

	start := time.Now()
	if err := b.SwarmConnect(ctx, idA.Addresses); err != nil {
		t.Fatalf("SwarmConnect B -> A: %v", err)
	}
	t.Logf("SwarmConnect B -> A: %s", time.Since(start))
	waitPeers(t, ctx, b, idA.ID, true)
	waitPeers(t, ctx, a, idB.ID, true)
	// Connecting again, with B's own addresses in the list, is fine.
	if err := b.SwarmConnect(ctx, append(slices.Clone(idA.Addresses), idB.Addresses...)); err != nil {
		t.Fatalf("second SwarmConnect: %v", err)
	}

	before, err := b.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if e := pinOne(t, ctx, b, core.IPFSPinRequest{Cid: root, MaxDepth: -1, Timeout: 30 * time.Second}); e != "" {
		t.Fatalf("pin on B: %s", e)
	}
	t.Logf("pin on B fetched %d blocks (1 MiB) in %s", len(blks), time.Since(start))
	infos, err := b.PinLsCids(ctx, []core.Cid{root})
	if err != nil || infos[0].Type != core.IPFSPinStatusRecursive {
		t.Fatalf("PinLsCids on B: %+v %v", infos, err)
	}
	all, err := core.Collect(b.PinLs(ctx))
	if err != nil || len(all) != 1 || !all[0].Cid.Equals(root) {
		t.Fatalf("PinLs on B: %+v %v", all, err)
	}
	after, err := b.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.NumObjects - before.NumObjects; got != uint64(len(blks)) {
		t.Fatalf("B stored %d new blocks, want %d", got, len(blks))
	}

	// A direct pin fetches its block too.
	single := rawBlock(t, randomBytes(1000))
	if err := a.BlockPut(ctx, []core.Block{single}); err != nil {
		t.Fatal(err)
	}
	if e := pinOne(t, ctx, b, core.IPFSPinRequest{Cid: single.Cid, MaxDepth: 0, Timeout: 30 * time.Second}); e != "" {
		t.Fatalf("direct pin on B: %s", e)
	}

	// A batch of small pins, one of which nobody has: the others are
	// fetched together and pinned; that one times out alone.
	var batch []core.Block
	var reqs []core.IPFSPinRequest
	for i := range 12 {
		bl := rawBlock(t, randomBytes(200+i))
		batch = append(batch, bl)
		reqs = append(reqs, core.IPFSPinRequest{Cid: bl.Cid, MaxDepth: -1, Timeout: 30 * time.Second})
	}
	if err := a.BlockPut(ctx, batch[:len(batch)-1]); err != nil {
		t.Fatal(err)
	}
	reqs[len(reqs)-1].Timeout = time.Second
	start = time.Now()
	results := 0
	for r, err := range b.Pin(ctx, reqs) {
		if err != nil {
			t.Fatalf("pin stream: %v", err)
		}
		results++
		nobody := r.Cid.Equals(batch[len(batch)-1].Cid)
		if nobody != (r.Error != "") || nobody && !strings.Contains(r.Error, "pin timed out after 1s") {
			t.Fatalf("batch pin of %s (held by A: %v): error %q", r.Cid, !nobody, r.Error)
		}
	}
	if results != len(reqs) {
		t.Fatalf("%d results for %d pins", results, len(reqs))
	}
	t.Logf("batch of %d pins on B (one missing everywhere) in %s", len(reqs), time.Since(start))

	// Without A, B still serves every block: they are local.
	blks = append(blks, single)
	blks = append(blks, batch[:len(batch)-1]...)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, ctx, b, idA.ID, false)
	for _, bl := range blks {
		gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
		data, err := b.BlockGet(gctx, bl.Cid)
		gcancel()
		if err != nil || !bytes.Equal(data, bl.Data) {
			t.Fatalf("BlockGet %s on B: %d bytes, %v", bl.Cid, len(data), err)
		}
	}
}

// TestPinNobodyHasTimesOut checks that a pin of content no connected node
// has fails at its timeout, naming the missing block.
func TestPinNobodyHasTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	secret := newSecret(t)
	a := openInProcess(t, loopbackConfig, netEnv(t, t.TempDir(), secret))
	b := openGRPC(t, loopbackConfig, netEnv(t, t.TempDir(), secret))
	idA, _ := a.ID(ctx)
	if err := b.SwarmConnect(ctx, idA.Addresses); err != nil {
		t.Fatal(err)
	}

	// A directory whose root A has, with one file that exists nowhere.
	present := rawBlock(t, randomBytes(200))
	absent := rawBlock(t, randomBytes(200))
	nd := merkledag.NodeWithData(unixfs.FolderPBData())
	for name, bl := range map[string]core.Block{"present": present, "absent": absent} {
		if err := nd.AddRawLink(name, &format.Link{Cid: bl.Cid.Cid, Size: 200}); err != nil {
			t.Fatal(err)
		}
	}
	dir := core.Block{Cid: core.NewCid(nd.Cid()), Data: nd.RawData()}
	if err := a.BlockPut(ctx, []core.Block{dir, present}); err != nil {
		t.Fatal(err)
	}
	nowhere := rawBlock(t, randomBytes(64)).Cid

	const timeout = time.Second
	const slack = 5 * time.Second
	for _, tc := range []struct {
		name     string
		req      core.IPFSPinRequest
		mentions string
	}{
		{"recursive, nothing anywhere", core.IPFSPinRequest{Cid: nowhere, MaxDepth: -1, Timeout: timeout}, nowhere.String()},
		{"direct, nothing anywhere", core.IPFSPinRequest{Cid: nowhere, MaxDepth: 0, Timeout: timeout}, nowhere.String()},
		{"recursive, one leaf nowhere", core.IPFSPinRequest{Cid: dir.Cid, MaxDepth: -1, Timeout: timeout}, absent.Cid.String()},
	} {
		start := time.Now()
		e := pinOne(t, ctx, b, tc.req)
		took := time.Since(start)
		t.Logf("%s: failed after %s: %s", tc.name, took, e)
		if e == "" {
			t.Fatalf("%s: pin succeeded", tc.name)
		}
		if took < timeout || took > timeout+slack {
			t.Fatalf("%s: failed after %s with a %s timeout", tc.name, took, timeout)
		}
		for _, want := range []string{"timed out after 1s fetching blocks", tc.mentions, "1 IPFS peers connected"} {
			if !strings.Contains(e, want) {
				t.Fatalf("%s: error %q does not say %q", tc.name, e, want)
			}
		}
	}
	infos, err := b.PinLsCids(ctx, []core.Cid{nowhere, dir.Cid})
	if err != nil || infos[0].Type != core.IPFSPinStatusUnpinned || infos[1].Type != core.IPFSPinStatusUnpinned {
		t.Fatalf("failed pins recorded: %+v %v", infos, err)
	}
	// What could be fetched was: the directory and its present file.
	for _, bl := range []core.Block{dir, present} {
		gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := b.BlockGet(gctx, bl.Cid)
		gcancel()
		if err != nil {
			t.Fatalf("BlockGet %s: %v", bl.Cid, err)
		}
	}
}

// TestPrivateNetwork checks that only nodes keyed with the same cluster
// secret connect.
func TestPrivateNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := openInProcess(t, loopbackConfig, netEnv(t, t.TempDir(), newSecret(t)))
	stranger := openGRPC(t, loopbackConfig, netEnv(t, t.TempDir(), newSecret(t)))
	public := openInProcess(t, loopbackConfig, netEnv(t, t.TempDir(), nil))
	idA, _ := a.ID(ctx)
	idS, _ := stranger.ID(ctx)
	idP, _ := public.ID(ctx)

	// A refused handshake can take a few seconds to fail: the cases run
	// in parallel.
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			from     core.IPFSConnector
			to       core.IPFSID
			observer core.IPFSConnector
		}{
			{"other secret to A", stranger, idA, a},
			{"A to other secret", a, idS, stranger},
			{"no secret to A", public, idA, a},
			{"A to no secret", a, idP, public},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				err := tc.from.SwarmConnect(ctx, tc.to.Addresses)
				took := time.Since(start)
				t.Logf("refused after %s: %v", took, err)
				if err == nil {
					t.Fatal("SwarmConnect succeeded")
				}
				if !strings.Contains(err.Error(), tc.to.ID.String()) {
					t.Fatalf("the error does not name the peer: %v", err)
				}
				if took > dialTimeout+5*time.Second {
					t.Fatalf("SwarmConnect took %s", took)
				}
			})
		}
	})
	for _, c := range []core.IPFSConnector{a, stranger, public} {
		peers, err := c.SwarmPeers(ctx)
		if err != nil || len(peers) != 0 {
			t.Fatalf("SwarmPeers %v %v", peers, err)
		}
	}

	// Addresses that are not multiaddrs, or lack the peer ID, are named.
	err := a.SwarmConnect(ctx, []string{"not-an-address", "/ip4/127.0.0.1/tcp/1"})
	if err == nil || !strings.Contains(err.Error(), "not-an-address") || !strings.Contains(err.Error(), "/ip4/127.0.0.1/tcp/1") {
		t.Fatalf("bad addresses: %v", err)
	}
}

// TestNetworkIdentitySurvivesRestart checks that the node keeps its peer ID
// (and so the ID in its addresses) across restarts, and reconnects.
func TestNetworkIdentitySurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	secret := newSecret(t)
	a := openInProcess(t, loopbackConfig, netEnv(t, t.TempDir(), secret))
	idA, _ := a.ID(ctx)

	env := netEnv(t, t.TempDir(), secret)
	b := New()
	if err := b.Configure(ctx, loopbackConfig, env, nil); err != nil {
		t.Fatal(err)
	}
	id1, _ := b.ID(ctx)
	checkID(t, id1)
	if err := b.SwarmConnect(ctx, idA.Addresses); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, ctx, a, id1.ID, true)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, ctx, a, id1.ID, false)

	b2 := openGRPC(t, loopbackConfig, env)
	id2, err := b2.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id2.ID != id1.ID {
		t.Fatalf("peer ID changed across restarts: %s then %s", id1.ID, id2.ID)
	}
	checkID(t, id2)
	// A dials B this time.
	if err := a.SwarmConnect(ctx, id2.Addresses); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, ctx, b2, idA.ID, true)
}

// TestOffline checks that offline: true keeps the node off the network.
func TestOffline(t *testing.T) {
	ctx := context.Background()
	c := openInProcess(t, json.RawMessage(`{"offline": true}`), netEnv(t, t.TempDir(), newSecret(t)))
	id, err := c.ID(ctx)
	if err != nil || id.ID == "" || len(id.Addresses) != 0 {
		t.Fatalf("ID: %+v %v", id, err)
	}
	if err := c.SwarmConnect(ctx, []string{"/ip4/127.0.0.1/tcp/4011/p2p/" + id.ID.String()}); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("SwarmConnect offline: %v", err)
	}
	peers, err := c.SwarmPeers(ctx)
	if err != nil || len(peers) != 0 {
		t.Fatalf("SwarmPeers: %v %v", peers, err)
	}
	start := time.Now()
	e := pinOne(t, ctx, c, core.IPFSPinRequest{Cid: rawBlock(t, randomBytes(8)).Cid, MaxDepth: -1, Timeout: time.Minute})
	if e == "" || !strings.Contains(e, "offline") || time.Since(start) > 5*time.Second {
		t.Fatalf("offline pin of missing content: %q after %s", e, time.Since(start))
	}
}

// TestListenAddress checks the listen address handling: a taken address
// set in the configuration fails clearly; the default one falls back to a
// free port.
func TestListenAddress(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := "/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(l.Addr().String(), "127.0.0.1:")
	cfg, _ := json.Marshal(map[string]any{"listen_multiaddress": taken})
	err = New().Configure(ctx, cfg, netEnv(t, t.TempDir(), nil), nil)
	if err == nil || !strings.Contains(err.Error(), "listening on "+taken) {
		t.Fatalf("configure on a taken address: %v", err)
	}

	// Hold the default port if nobody does yet; either way it is taken.
	if l2, err := net.Listen("tcp4", "0.0.0.0:4011"); err == nil {
		defer l2.Close()
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Skipf("cannot probe the default port: %v", err)
	}
	c := openInProcess(t, nil, netEnv(t, t.TempDir(), nil))
	id, err := c.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkID(t, id)
	for _, a := range id.Addresses {
		if strings.Contains(a, "/tcp/4011/") {
			t.Fatalf("listening on the taken default port: %v", id.Addresses)
		}
	}

	// Several addresses, as a list.
	cfg = json.RawMessage(`{"listen_multiaddress": ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0"]}`)
	c2 := openInProcess(t, cfg, netEnv(t, t.TempDir(), nil))
	id, _ = c2.ID(ctx)
	if len(id.Addresses) != 2 {
		t.Fatalf("two listen addresses give %v", id.Addresses)
	}
}

func TestNetworkConfig(t *testing.T) {
	def := DefaultConfig()
	if def.Offline || len(def.ListenMultiaddress) != 1 || def.ListenMultiaddress[0] != "/ip4/0.0.0.0/tcp/4011" || def.NoPeersTimeout.D() != 2*time.Second {
		t.Fatalf("defaults: %+v", def)
	}
	b, _ := json.Marshal(def)
	if !strings.Contains(string(b), `"listen_multiaddress":"/ip4/0.0.0.0/tcp/4011"`) || !strings.Contains(string(b), `"offline":false`) {
		t.Fatalf("default config JSON: %s", b)
	}
	for _, bad := range []string{
		`{"listen_multiaddress": "nope"}`,
		`{"listen_multiaddress": []}`,
		`{"listen_multiaddress": 4011}`,
		`{"listen_multiaddress": ["/ip4/127.0.0.1/tcp/0", "x"]}`,
		`{"no_peers_timeout": "-1s"}`,
	} {
		if _, err := parseConfig(json.RawMessage(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	cfg, err := parseConfig(json.RawMessage(`{"offline": true, "listen_multiaddress": []}`))
	if err != nil || !cfg.Offline {
		t.Fatalf("offline without addresses: %+v %v", cfg, err)
	}
	cfg, err = parseConfig(json.RawMessage(`{"listen_multiaddress": ["/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/1"]}`))
	if err != nil || len(cfg.ListenMultiaddress) != 2 {
		t.Fatalf("list: %+v %v", cfg, err)
	}
	b, _ = json.Marshal(cfg.ListenMultiaddress)
	if string(b) != `["/ip4/127.0.0.1/tcp/1","/ip6/::1/tcp/1"]` {
		t.Fatalf("list JSON: %s", b)
	}
	if err := New().Configure(context.Background(), nil, core.Environment{DataDir: t.TempDir(), Secret: []byte("short")}, nil); err == nil || !strings.Contains(err.Error(), "32") {
		t.Fatalf("a short secret: %v", err)
	}
}

// TestPinBeforeConnect checks that a pin started before the node that has
// the blocks is connected completes once it is: the core may connect the
// nodes after the tracker has started pinning. Here B first has no peer,
// then the test runs again with B connected to C, which lacks the blocks,
// while the pin starts.
func TestPinBeforeConnect(t *testing.T) {
	t.Run("no peer yet", func(t *testing.T) { testPinBeforeConnect(t, false) })
	t.Run("another peer", func(t *testing.T) { testPinBeforeConnect(t, true) })
}

func testPinBeforeConnect(t *testing.T, viaOther bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	secret := newSecret(t)
	a := openInProcess(t, loopbackConfig, netEnv(t, t.TempDir(), secret))
	b := openInProcess(t, loopbackConfig, netEnv(t, t.TempDir(), secret))
	root, blks := unixfsFile(t, 256<<10)
	if err := a.BlockPut(ctx, blks); err != nil {
		t.Fatal(err)
	}
	if viaOther {
		c := openInProcess(t, loopbackConfig, netEnv(t, t.TempDir(), secret))
		idC, _ := c.ID(ctx)
		if err := b.SwarmConnect(ctx, idC.Addresses); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	done := make(chan string, 1)
	go func() {
		res := "no result"
		for r, err := range b.Pin(ctx, []core.IPFSPinRequest{{Cid: root, MaxDepth: -1, Timeout: 30 * time.Second}}) {
			if res = r.Error; err != nil {
				res = err.Error()
			}
		}
		done <- res
	}()
	time.Sleep(300 * time.Millisecond)
	idA, _ := a.ID(ctx)
	if err := b.SwarmConnect(ctx, idA.Addresses); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-done:
		if e != "" {
			t.Fatalf("pin: %s", e)
		}
		t.Logf("pin started %s before the connection; completed after %s", 300*time.Millisecond, time.Since(start))
	case <-ctx.Done():
		t.Fatal("pin did not complete")
	}
}

// TestPinWithoutPeers checks that a pin needing blocks while no IPFS peer
// is connected fails after no_peers_timeout rather than at its timeout,
// and at its timeout when that comes first.
func TestPinWithoutPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := json.RawMessage(`{"listen_multiaddress": "/ip4/127.0.0.1/tcp/0", "no_peers_timeout": "500ms"}`)
	c := openGRPC(t, cfg, netEnv(t, t.TempDir(), newSecret(t)))
	missing := rawBlock(t, randomBytes(64)).Cid

	start := time.Now()
	e := pinOne(t, ctx, c, core.IPFSPinRequest{Cid: missing, MaxDepth: -1, Timeout: 30 * time.Second})
	took := time.Since(start)
	t.Logf("no peers: failed after %s: %s", took, e)
	if !strings.Contains(e, "no IPFS peer is connected") || !strings.Contains(e, missing.String()) {
		t.Fatalf("error %q", e)
	}
	if took < 500*time.Millisecond || took > 5*time.Second {
		t.Fatalf("failed after %s with no_peers_timeout 500ms", took)
	}

	start = time.Now()
	e = pinOne(t, ctx, c, core.IPFSPinRequest{Cid: missing, MaxDepth: 0, Timeout: 200 * time.Millisecond})
	took = time.Since(start)
	t.Logf("timeout first: failed after %s: %s", took, e)
	if !strings.Contains(e, "timed out after 200ms fetching blocks") || !strings.Contains(e, "0 IPFS peers connected") {
		t.Fatalf("error %q", e)
	}
	if took > 5*time.Second {
		t.Fatalf("failed after %s with a 200ms timeout", took)
	}

	// Resolving a path and reading a block that are not here fail the
	// same way, whatever the caller's deadline.
	for name, call := range map[string]func() error{
		"resolve": func() error {
			_, err := c.Resolve(ctx, "/ipfs/"+missing.String()+"/a/b")
			return err
		},
		"block get": func() error {
			_, err := c.BlockGet(ctx, missing)
			return err
		},
	} {
		start = time.Now()
		err := call()
		took = time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "no IPFS peer is connected") || took > 5*time.Second {
			t.Fatalf("%s without peers: %v after %s", name, err, took)
		}
	}

	// Content that is local needs no peer.
	b := rawBlock(t, randomBytes(64))
	if err := c.BlockPut(ctx, []core.Block{b}); err != nil {
		t.Fatal(err)
	}
	if e := pinOne(t, ctx, c, core.IPFSPinRequest{Cid: b.Cid, MaxDepth: -1}); e != "" {
		t.Fatalf("local pin: %s", e)
	}
	if got, err := c.BlockGet(ctx, b.Cid); err != nil || len(got) != 64 {
		t.Fatalf("local block get: %d bytes, %v", len(got), err)
	}
}
