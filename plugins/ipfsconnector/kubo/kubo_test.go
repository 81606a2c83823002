package kubo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/kubo/kubotest"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// These tests drive real kubo daemons (see kubotest): they skip when kubo
// is not installed, and fail instead when CI is set.

func TestConformance(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	cfg := node.ConnectorConfig(nil)
	t.Run("InProcess", func(t *testing.T) {
		conformance.TestIPFSConnector(t, func(t *testing.T) core.IPFSConnector { return configured(t, string(cfg)) })
	})
	t.Run("ThroughGRPC", func(t *testing.T) {
		conformance.TestIPFSConnector(t, func(t *testing.T) core.IPFSConnector {
			return sdktest.ConnectIPFSConnector(t, New(), cfg, nil)
		})
	})
}

// TestConformanceOnline runs the suite against a kubo that is online (with
// no peers): a pin of missing content then waits for the blocks, and it is
// the connector's progress timeout that ends it.
func TestConformanceOnline(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{Online: true})
	cfg := string(node.ConnectorConfig(nil))
	conformance.TestIPFSConnector(t, func(t *testing.T) core.IPFSConnector { return configured(t, cfg) })
}

func TestID(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{Online: true})
	c := configured(t, string(node.ConnectorConfig(nil)))
	id, err := c.ID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := node.IPFS("id", "-f", "<id>"); id.ID.String() != want {
		t.Fatalf("ID %s, ipfs id says %s", id.ID, want)
	}
	found := false
	for _, a := range id.Addresses {
		found = found || strings.Contains(a, fmt.Sprintf("/tcp/%d/p2p/", node.SwarmPort))
	}
	if !found {
		t.Fatalf("addresses %v lack the swarm port %d", id.Addresses, node.SwarmPort)
	}
}

func TestPinOfflineKuboError(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	c := configured(t, string(node.ConnectorConfig(nil)))
	missing := conformance.MissingCid(t)
	e, took := pinOne(t, c, core.IPFSPinRequest{Cid: missing, MaxDepth: -1})
	want := "kubo pin/add: pin: block was not found locally (offline)"
	if !strings.HasPrefix(e, want) || took > 10*time.Second {
		t.Fatalf("pin of a missing block on an offline kubo: %q after %s, want %q…", e, took, want)
	}
}

func TestPinTimeoutOnline(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{Online: true})
	c := configured(t, string(node.ConnectorConfig(map[string]any{"pin_timeout": "800ms"})))
	e, took := pinOne(t, c, core.IPFSPinRequest{Cid: conformance.MissingCid(t), MaxDepth: -1})
	if !strings.HasPrefix(e, "pin timed out: kubo made no progress for 800ms") {
		t.Fatalf("error %q", e)
	}
	if took < 800*time.Millisecond || took > 10*time.Second {
		t.Fatalf("timed out after %s (pin_timeout 800ms)", took)
	}
}

// TestKuboDownThenUp: the connector configures while kubo is down, says
// so on every call, and works once kubo is up, without reconfiguration.
func TestKuboDownThenUp(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	node.Stop()
	c := sdktest.ConnectIPFSConnector(t, New(), node.ConnectorConfig(nil), nil)
	ctx := context.Background()
	want := "kubo is not reachable at " + node.APIMultiaddr() + ": "
	if _, err := c.ID(ctx); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("ID with kubo down: %v", err)
	}
	if _, err := core.Collect(c.PinLs(ctx)); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("PinLs with kubo down: %v", err)
	}
	b := conformance.NewDAG(t).A
	if err := c.BlockPut(ctx, []core.Block{b}); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("BlockPut with kubo down: %v", err)
	}
	node.Start()
	if _, err := c.ID(ctx); err != nil {
		t.Fatalf("ID once kubo is up: %v", err)
	}
	if err := c.BlockPut(ctx, []core.Block{b}); err != nil {
		t.Fatal(err)
	}
	for r, err := range c.Pin(ctx, []core.IPFSPinRequest{{Cid: b.Cid, MaxDepth: -1}}) {
		if err != nil || r.Error != "" {
			t.Fatal(err, r.Error)
		}
	}
	// And again across a restart of kubo, with keep-alive connections
	// pooled from before.
	node.Stop()
	if _, err := c.RepoStat(ctx); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("RepoStat with kubo stopped: %v", err)
	}
	node.Start()
	if got := node.PinLs()[b.Cid.String()]; got != "recursive" {
		t.Fatalf("ipfs pin ls has %s as %q", b.Cid, got)
	}
	infos, err := c.PinLsCids(ctx, []core.Cid{b.Cid})
	if err != nil || infos[0].Type != core.IPFSPinStatusRecursive {
		t.Fatalf("PinLsCids after the restart: %+v %v", infos, err)
	}
}

func TestAuthorizations(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{Authorizations: map[string]any{
		"alice": map[string]any{"AuthSecret": "basic:alice:wonder:land", "AllowedPaths": []string{"/api/v0"}},
		"bot":   map[string]any{"AuthSecret": "bearer:t0ken", "AllowedPaths": []string{"/api/v0"}},
	}})
	ctx := context.Background()
	anon := configured(t, string(node.ConnectorConfig(nil)))
	if _, err := anon.ID(ctx); err == nil || !strings.Contains(err.Error(), "API.Authorizations") {
		t.Fatalf("ID without credentials: %v", err)
	}
	wrong := configured(t, string(node.ConnectorConfig(map[string]any{"basic_auth": "alice:nope"})))
	if _, err := wrong.ID(ctx); err == nil || !strings.Contains(err.Error(), "API.Authorizations") {
		t.Fatalf("ID with a wrong password: %v", err)
	}
	for _, extra := range []map[string]any{{"basic_auth": "alice:wonder:land"}, {"authorization": "Bearer t0ken"}} {
		c := configured(t, string(node.ConnectorConfig(extra)))
		if _, err := c.ID(ctx); err != nil {
			t.Fatalf("ID with %v: %v", extra, err)
		}
		b := conformance.NewDAG(t).A
		if err := c.BlockPut(ctx, []core.Block{b}); err != nil {
			t.Fatalf("BlockPut with %v: %v", extra, err)
		}
	}
}

func TestUnixSocket(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{UnixSocket: true})
	cfg := node.ConnectorConfig(nil)
	if !strings.HasPrefix(node.APIMultiaddr(), "/unix/") {
		t.Fatalf("API at %s", node.APIMultiaddr())
	}
	conformance.TestIPFSConnector(t, func(t *testing.T) core.IPFSConnector { return configured(t, string(cfg)) })
}

func TestConfigKeyAndRepoStat(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{Config: map[string]any{"Datastore.StorageMax": "3GB"}})
	c := configured(t, string(node.ConnectorConfig(nil)))
	ctx := context.Background()
	v, err := c.ConfigKey(ctx, "Datastore.StorageMax")
	if err != nil || string(v) != `"3GB"` {
		t.Fatalf("ConfigKey: %s %v", v, err)
	}
	v, err = c.ConfigKey(ctx, "Addresses.API")
	if err != nil || string(v) != fmt.Sprintf("%q", node.APIMultiaddr()) {
		t.Fatalf("ConfigKey(Addresses.API): %s %v", v, err)
	}
	if _, err := c.ConfigKey(ctx, "No.Such.Key"); err == nil || !strings.HasPrefix(err.Error(), "kubo config: ") {
		t.Fatalf("ConfigKey of a missing key: %v", err)
	}
	st, err := c.RepoStat(ctx)
	if err != nil || st.StorageMax != 3_000_000_000 || st.RepoSize == 0 {
		t.Fatalf("RepoStat: %+v %v", st, err)
	}
}

func TestResolveIPNS(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	c := configured(t, string(node.ConnectorConfig(nil)))
	ctx := context.Background()
	d := conformance.NewDAG(t)
	if err := c.BlockPut(ctx, d.Blocks()); err != nil {
		t.Fatal(err)
	}
	self := node.IPFS("id", "-f", "<id>")
	node.IPFS("name", "publish", "--allow-offline", "/ipfs/"+d.Root.Cid.String())
	for p, want := range map[string]core.Cid{
		"/ipns/" + self:                d.Root.Cid,
		"/ipns/" + self + "/sub/b.bin": d.B.Cid,
		d.Root.Cid.String() + "/a.txt": d.A.Cid,
	} {
		got, err := c.Resolve(ctx, p)
		if err != nil || !got.Equals(want) {
			t.Errorf("Resolve(%s) = %s, %v; want %s", p, got, err, want)
		}
	}
	// A path into the fields of a block does not name a block.
	if _, err := c.Resolve(ctx, "/ipld/"+d.Root.Cid.String()+"/Links/0/Name"); err == nil {
		t.Error("a path to a field inside a block resolved to a CID")
	}
}

func TestSwarm(t *testing.T) {
	a := kubotest.Start(t, kubotest.Options{Online: true})
	b := kubotest.Start(t, kubotest.Options{Online: true})
	ca := configured(t, string(a.ConnectorConfig(nil)))
	cb := configured(t, string(b.ConnectorConfig(nil)))
	ctx := context.Background()
	idB, err := cb.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", b.SwarmPort, idB.ID)
	if err := ca.SwarmConnect(ctx, []string{addr}); err != nil {
		t.Fatalf("SwarmConnect: %v", err)
	}
	peers, err := ca.SwarmPeers(ctx)
	if err != nil || len(peers) != 1 || peers[0] != idB.ID {
		t.Fatalf("SwarmPeers: %v %v, want [%s]", peers, err, idB.ID)
	}
	// Content of one is pinned by the other through the connection.
	d := conformance.NewDAG(t)
	if err := cb.BlockPut(ctx, d.Blocks()); err != nil {
		t.Fatal(err)
	}
	if e, _ := pinOne(t, ca, core.IPFSPinRequest{Cid: d.Root.Cid, MaxDepth: -1, Timeout: 30 * time.Second}); e != "" {
		t.Fatalf("pin over the swarm: %s", e)
	}
	if err := ca.SwarmConnect(ctx, []string{"/ip4/127.0.0.1/tcp/1/p2p/" + sdktest.NewPeerID(t).String()}); err == nil || !strings.HasPrefix(err.Error(), "kubo swarm/connect: ") {
		t.Fatalf("SwarmConnect to a closed port: %v", err)
	}
}

// countingProxy sits between the connector and kubo and counts the calls
// of each command.
type countingProxy struct {
	mu    sync.Mutex
	calls map[string]int
	args  map[string][]int // command -> number of args of each call
	url   string
}

func newCountingProxy(t *testing.T, node *kubotest.Node) *countingProxy {
	target, err := url.Parse(node.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	target.Path = ""
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &countingProxy{calls: map[string]int{}, args: map[string][]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cmd := strings.TrimPrefix(r.URL.Path, "/api/v0/")
		p.mu.Lock()
		p.calls[cmd]++
		p.args[cmd] = append(p.args[cmd], len(r.URL.Query()["arg"]))
		p.mu.Unlock()
		// kubo answers block/put while it still reads the request: relay
		// both directions at once.
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = map[string]int{}
	p.args = map[string][]int{}
}

func (p *countingProxy) count(cmd string) (int, []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[cmd], append([]int(nil), p.args[cmd]...)
}

func TestCallsPerOperation(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	proxy := newCountingProxy(t, node)
	c := configured(t, `{"node_multiaddress":"`+proxy.url+`"}`)
	ctx := context.Background()

	// A DAG of three CID prefixes (dag-pb v0, dag-pb v1, raw sha2-256 and
	// raw sha2-512): one block/put per prefix.
	d := conformance.NewDAG(t)
	proxy.reset()
	if err := c.BlockPut(ctx, d.Blocks()); err != nil {
		t.Fatal(err)
	}
	if n, _ := proxy.count("block/put"); n != 4 {
		t.Errorf("%d block/put calls for 4 CID prefixes", n)
	}

	var pinned, direct, unpinned []core.Cid
	var blocks []core.Block
	for i := range 60 {
		b := conformance.NewDAG(t).A
		blocks = append(blocks, b)
		switch i % 3 {
		case 0:
			pinned = append(pinned, b.Cid)
		case 1:
			direct = append(direct, b.Cid)
		default:
			unpinned = append(unpinned, b.Cid)
		}
	}
	if err := c.BlockPut(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	var reqs []core.IPFSPinRequest
	for _, ci := range pinned {
		reqs = append(reqs, core.IPFSPinRequest{Cid: ci, MaxDepth: -1})
	}
	for _, ci := range direct {
		reqs = append(reqs, core.IPFSPinRequest{Cid: ci, MaxDepth: 0})
	}
	for r, err := range c.Pin(ctx, reqs) {
		if err != nil || r.Error != "" {
			t.Fatal(err, r.Error)
		}
	}

	// The whole listing: one streamed call per pin type.
	proxy.reset()
	all, err := core.Collect(c.PinLs(ctx))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]core.IPFSPinStatus{}
	for _, pi := range all {
		listed[pi.Cid.String()] = pi.Type
	}
	// kubo init pins the empty directory: one more.
	if len(all) != len(pinned)+len(direct)+1 {
		t.Fatalf("PinLs listed %d pins, want %d", len(all), len(pinned)+len(direct)+1)
	}
	for _, ci := range pinned {
		if listed[ci.String()] != core.IPFSPinStatusRecursive {
			t.Fatalf("PinLs has %s as %q", ci, listed[ci.String()])
		}
	}
	for _, ci := range direct {
		if listed[ci.String()] != core.IPFSPinStatusDirect {
			t.Fatalf("PinLs has %s as %q", ci, listed[ci.String()])
		}
	}
	if n, _ := proxy.count("pin/ls"); n != 2 {
		t.Errorf("PinLs made %d pin/ls calls, want 2 (recursive, direct)", n)
	}

	// Pinned CIDs: one call with every CID as an argument.
	proxy.reset()
	infos, err := c.PinLsCids(ctx, pinned)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Type != core.IPFSPinStatusRecursive {
			t.Fatalf("%s is %q", in.Cid, in.Type)
		}
	}
	if n, args := proxy.count("pin/ls"); n != 1 || args[0] != len(pinned) {
		t.Errorf("PinLsCids of %d recursive pins: %d calls with %v args, want one with all", len(pinned), n, args)
	}

	// A mix with many unpinned CIDs: right answers, and a bounded number
	// of calls (a few probes, then the listing).
	mixed := append(append(append([]core.Cid{}, unpinned...), direct...), pinned...)
	proxy.reset()
	infos, err = c.PinLsCids(ctx, mixed)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range infos {
		want := core.IPFSPinStatusRecursive
		switch {
		case i < len(unpinned):
			want = core.IPFSPinStatusUnpinned
		case i < len(unpinned)+len(direct):
			want = core.IPFSPinStatusDirect
		}
		if !in.Cid.Equals(mixed[i]) || in.Type != want {
			t.Fatalf("entry %d: %+v, want %s %q", i, in, mixed[i], want)
		}
	}
	if n, _ := proxy.count("pin/ls"); n > maxProbeMisses+1+len(pinListTypes) {
		t.Errorf("PinLsCids of %d CIDs made %d pin/ls calls", len(mixed), n)
	}
	// One direct pin among unpinned ones: recursive probe, direct probe.
	proxy.reset()
	infos, err = c.PinLsCids(ctx, []core.Cid{unpinned[0], direct[0]})
	if err != nil || infos[0].Type != "" || infos[1].Type != core.IPFSPinStatusDirect {
		t.Fatalf("PinLsCids: %+v %v", infos, err)
	}
	if n, _ := proxy.count("pin/ls"); n > 4 {
		t.Errorf("PinLsCids of 2 CIDs made %d calls", n)
	}
}

func TestMaxDepthPinsRecursively(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	c := configured(t, string(node.ConnectorConfig(nil)))
	ctx := context.Background()
	d := conformance.NewDAG(t)
	if err := c.BlockPut(ctx, d.Blocks()); err != nil {
		t.Fatal(err)
	}
	if e, _ := pinOne(t, c, core.IPFSPinRequest{Cid: d.Root.Cid, MaxDepth: 1}); e != "" {
		t.Fatal(e)
	}
	if got := node.PinLs()[d.Root.Cid.String()]; got != "recursive" {
		t.Fatalf("kubo holds the depth-limited pin as %q", got)
	}
}

func TestBlockPutMatchesKubo(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	c := configured(t, string(node.ConnectorConfig(nil)))
	ctx := context.Background()
	d := conformance.NewDAG(t)
	if err := c.BlockPut(ctx, d.Blocks()); err != nil {
		t.Fatal(err)
	}
	// kubo sees the same DAG: its own walk finds every block.
	refs := node.IPFS("refs", "-r", "--unique", d.Root.Cid.String())
	for _, b := range d.Blocks()[:len(d.Blocks())-1] {
		if !strings.Contains(refs, b.Cid.String()) {
			t.Errorf("ipfs refs -r does not list %s:\n%s", b.Cid, refs)
		}
	}
	var stat struct{ Size int }
	if err := json.Unmarshal([]byte(node.IPFS("block", "stat", "--enc=json", d.Root.Cid.String())), &stat); err != nil || stat.Size != len(d.Root.Data) {
		t.Fatalf("ipfs block stat: %+v %v", stat, err)
	}
}
