package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	blocks "github.com/ipfs/go-block-format"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/network"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// sharedPinset is the pinset and the peerset every test peer reads (one
// consensus, as raft gives every peer the same state).
type sharedPinset struct {
	core.Consensus
	peers []core.PeerID

	mu   sync.Mutex
	pins map[string]core.Pin
}

func (s *sharedPinset) Peers(context.Context) ([]core.PeerID, error) {
	return slices.Clone(s.peers), nil
}

func (s *sharedPinset) GetPin(_ context.Context, ci core.Cid) (core.Pin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pins[ci.KeyString()]
	if !ok {
		return core.Pin{}, core.ErrPinNotFound
	}
	return p, nil
}

func (s *sharedPinset) add(p core.Pin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins[p.Cid.KeyString()] = p
}

func (s *sharedPinset) list() []core.Pin {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []core.Pin
	for _, p := range s.pins {
		out = append(out, p)
	}
	return out
}

// countingTracker derives its statuses from the shared pinset (pinned
// where allocated, remote elsewhere, unpinned outside it) and counts the
// calls it gets, by method.
type countingTracker struct {
	core.PinTracker
	self   core.PeerID
	pinset *sharedPinset

	mu    sync.Mutex
	calls map[string]int
}

func (t *countingTracker) count(method string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls[method]
}

func (t *countingTracker) info(p core.Pin) core.PinInfo {
	st := core.TrackerStatusRemote
	if p.IsAllocatedTo(t.self) {
		st = core.TrackerStatusPinned
	}
	return core.PinInfo{Cid: p.Cid, Name: p.Name, Allocations: p.Allocations, Created: p.Timestamp,
		PinInfoShort: core.PinInfoShort{Status: st, TS: p.Timestamp}}
}

func (t *countingTracker) answer(ctx context.Context, method string, cids []core.Cid) ([]core.PinInfo, error) {
	t.mu.Lock()
	t.calls[method]++
	t.mu.Unlock()
	out := make([]core.PinInfo, len(cids))
	for i, ci := range cids {
		p, err := t.pinset.GetPin(ctx, ci)
		if err != nil {
			now := time.Now()
			out[i] = core.PinInfo{Cid: ci, Created: now, PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusUnpinned, TS: now}}
			continue
		}
		out[i] = t.info(p)
	}
	return out, nil
}

func (t *countingTracker) Status(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return t.answer(ctx, "Status", cids)
}

func (t *countingTracker) Recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return t.answer(ctx, "Recover", cids)
}

func (t *countingTracker) StatusAll(_ context.Context, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error] {
	return func(yield func(core.PinInfo, error) bool) {
		for _, p := range t.pinset.list() {
			if pi := t.info(p); (filter == 0 || pi.Status.Match(filter)) && !yield(pi, nil) {
				return
			}
		}
	}
}

// RecoverAll lists the pins allocated to this peer, as recovered.
func (t *countingTracker) RecoverAll(context.Context) iter.Seq2[core.PinInfo, error] {
	return func(yield func(core.PinInfo, error) bool) {
		for _, p := range t.pinset.list() {
			if pi := t.info(p); pi.Status == core.TrackerStatusPinned && !yield(pi, nil) {
				return
			}
		}
	}
}

// gcIPFS is an IPFS node with an identity and a repo GC that removes keys
// or fails.
type gcIPFS struct {
	core.IPFSConnector
	id    core.IPFSID
	keys  []core.IPFSRepoGCKey
	gcErr error

	mu  sync.Mutex
	put int // blocks stored by BlockPut
}

func (n *gcIPFS) ID(context.Context) (core.IPFSID, error) { return n.id, nil }

func (n *gcIPFS) BlockPut(_ context.Context, bs []core.Block) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.put += len(bs)
	return nil
}

func (n *gcIPFS) stored() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.put
}

func (n *gcIPFS) RepoGC(context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	return func(yield func(core.IPFSRepoGCKey, error) bool) {
		for _, k := range n.keys {
			if !yield(k, nil) {
				return
			}
		}
		if n.gcErr != nil {
			yield(core.IPFSRepoGCKey{}, n.gcErr)
		}
	}
}

type statusPeer struct {
	c       *Cluster
	host    *network.Host
	tracker *countingTracker
	ipfs    *gcIPFS
}

// statusPeers starts one cluster peer per name on the network (without
// Start: the status calls need only the network and the plugins), all
// reading pinset, each knowing the addresses of the others.
func statusPeers(t *testing.T, pinset *sharedPinset, names ...string) []*statusPeer {
	t.Helper()
	secret := make([]byte, network.SecretSize)
	var peers []*statusPeer
	for _, name := range names {
		h, rpc := testHost(t, secret)
		cfg := config.DefaultClusterConfig()
		cfg.Peername = name
		c, err := New(&config.Service{Cluster: cfg}, h.ID(), hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		tr := &countingTracker{self: h.ID(), pinset: pinset, calls: map[string]int{}}
		ipfs := &gcIPFS{id: core.IPFSID{
			ID:        sdktest.NewPeerID(t),
			Addresses: []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/8.8.8.8/tcp/4001"},
		}}
		c.plugins = Plugins{Consensus: pinset, Tracker: tr, IPFS: ipfs}
		if err := c.UseNetwork(h, rpc); err != nil {
			t.Fatal(err)
		}
		pinset.peers = append(pinset.peers, h.ID())
		peers = append(peers, &statusPeer{c: c, host: h, tracker: tr, ipfs: ipfs})
	}
	for _, p := range peers {
		for _, q := range peers {
			if p != q {
				p.host.LibP2P().Peerstore().AddAddrs(q.host.ID(), q.host.LibP2P().Addrs(), time.Hour)
			}
		}
	}
	return peers
}

// TestStatusAsksTheAllocatedPeers: the status and the recover of a pin ask
// the peers it is allocated to and write the others in as remote (with
// the name and IPFS node they last gave) without asking them, so that a
// member that is down but holds nothing is no error; a pin allocated
// everywhere asks every member; a CID outside the pinset asks no one.
func TestStatusAsksTheAllocatedPeers(t *testing.T) {
	pinset := &sharedPinset{pins: map[string]core.Pin{}}
	peers := statusPeers(t, pinset, "self", "a", "b", "down")
	self, a, b, down := peers[0], peers[1], peers[2], peers[3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// This peer learns how the others describe themselves, as every
	// ipfsConnectInterval; then one goes down.
	if _, errs := self.c.peerIDs(ctx, pinset.peers); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	_ = down.host.Close()

	ts := time.Now().Add(-time.Hour).Truncate(time.Second)
	one := core.Pin{Cid: testCid(t, 1), Type: core.DataType, Allocations: []core.PeerID{a.c.self}, Timestamp: ts,
		PinOptions: core.PinOptions{Name: "one", ReplicationFactorMin: 1, ReplicationFactorMax: 1, Metadata: map[string]string{"k": "v"}}}
	pinset.add(one)

	for _, method := range []string{"Status", "Recover"} {
		var g core.GlobalPinInfo
		var err error
		if method == "Status" {
			g, err = self.c.Status(ctx, one.Cid, false)
		} else {
			g, err = self.c.Recover(ctx, one.Cid, false)
		}
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if len(g.PeerMap) != 4 || !g.Cid.Equals(one.Cid) || g.Name != "one" || !slices.Equal(g.Allocations, one.Allocations) ||
			!g.Created.Equal(ts) || g.Metadata["k"] != "v" {
			t.Fatalf("%s: %+v", method, g)
		}
		if st := g.PeerMap[a.c.self.String()]; st.Status != core.TrackerStatusPinned || st.PeerName != "a" || st.IPFS != a.ipfs.id.ID {
			t.Fatalf("%s: the allocated peer's entry: %+v", method, st)
		}
		for _, p := range []*statusPeer{self, b, down} {
			st := g.PeerMap[p.c.self.String()]
			if st.Status != core.TrackerStatusRemote || st.Error != "" || st.PeerName != p.c.peername || st.IPFS != p.ipfs.id.ID ||
				!slices.Equal(st.IPFSAddresses, []string{"/ip4/8.8.8.8/tcp/4001"}) || st.TS.IsZero() {
				t.Fatalf("%s: the entry of %s, not allocated: %+v", method, p.c.peername, st)
			}
		}
		if n := a.tracker.count(method); n != 1 {
			t.Fatalf("%s: the allocated peer was asked %d times", method, n)
		}
		if n := b.tracker.count(method) + self.tracker.count(method); n != 0 {
			t.Fatalf("%s: the peers not allocated were asked %d times", method, n)
		}
	}

	// Allocated to the peer that is down: it is the error.
	lost := core.Pin{Cid: testCid(t, 2), Type: core.DataType, Allocations: []core.PeerID{down.c.self}, Timestamp: ts,
		PinOptions: core.PinOptions{Name: "lost", ReplicationFactorMin: 1, ReplicationFactorMax: 1}}
	pinset.add(lost)
	g, err := self.c.Status(ctx, lost.Cid, false)
	if err != nil {
		t.Fatal(err)
	}
	if st := g.PeerMap[down.c.self.String()]; st.Status != core.TrackerStatusClusterError || !strings.Contains(st.Error, "PinTracker.Status on peer") ||
		st.PeerName != "down" || st.IPFS != down.ipfs.id.ID {
		t.Fatalf("the allocated peer that is down: %+v", st)
	}
	if g.Name != "lost" || len(g.PeerMap) != 4 || g.PeerMap[b.c.self.String()].Status != core.TrackerStatusRemote {
		t.Fatalf("status of a pin allocated to a peer that is down: %+v", g)
	}

	// Allocated everywhere: every member is asked.
	bCalls := b.tracker.count("Status")
	everywhere := core.Pin{Cid: testCid(t, 3), Type: core.DataType, Allocations: []core.PeerID{}, Timestamp: ts,
		PinOptions: core.PinOptions{Name: "all", ReplicationFactorMin: -1, ReplicationFactorMax: -1}}
	pinset.add(everywhere)
	g, err = self.c.Status(ctx, everywhere.Cid, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*statusPeer{self, a, b} {
		if st := g.PeerMap[p.c.self.String()]; st.Status != core.TrackerStatusPinned {
			t.Fatalf("pinned everywhere, the entry of %s: %+v", p.c.peername, st)
		}
	}
	if st := g.PeerMap[down.c.self.String()]; st.Status != core.TrackerStatusClusterError || st.Error == "" {
		t.Fatalf("pinned everywhere, the peer that is down: %+v", st)
	}
	if b.tracker.count("Status") != bCalls+1 || g.Name != "all" {
		t.Fatalf("pinned everywhere: %+v", g)
	}

	// Outside the pinset: unpinned on every member, no one asked.
	asked := a.tracker.count("Status") + b.tracker.count("Status") + self.tracker.count("Status")
	unknown := testCid(t, 4)
	g, err = self.c.Status(ctx, unknown, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.PeerMap) != 4 || !g.Cid.Equals(unknown) || g.Name != "" || g.Created.IsZero() || g.Allocations == nil || len(g.Allocations) != 0 {
		t.Fatalf("status of a CID outside the pinset: %+v", g)
	}
	for p, st := range g.PeerMap {
		if st.Status != core.TrackerStatusUnpinned || st.Error != "" {
			t.Fatalf("outside the pinset, the entry of %s: %+v", p, st)
		}
	}
	if n := a.tracker.count("Status") + b.tracker.count("Status") + self.tracker.count("Status"); n != asked {
		t.Fatalf("a CID outside the pinset asked %d peers", n-asked)
	}

	// The status of the whole pinset asks every member, and a member that
	// does not answer is an error on every pin (spec §4.4), named as it
	// last described itself.
	all, err := core.Collect(self.c.StatusAll(ctx, 0, false))
	if err != nil || len(all) != 3 {
		t.Fatalf("status of every pin: %+v %v", all, err)
	}
	for _, g := range all {
		if st := g.PeerMap[down.c.self.String()]; st.Status != core.TrackerStatusClusterError || st.PeerName != "down" || st.IPFS != down.ipfs.id.ID {
			t.Fatalf("status of every pin, %s on the peer that is down: %+v", g.Name, st)
		}
		if st := g.PeerMap[b.c.self.String()]; st.Status.IsError() {
			t.Fatalf("status of every pin, %s on a live peer: %+v", g.Name, st)
		}
	}

	// Filtered, as IPFS Cluster filters: the pins some live member has
	// pinned, with only the entries that are pinned and the member that is
	// down in error on each; a pin that only its error would list is not.
	pinned, err := core.Collect(self.c.StatusAll(ctx, core.TrackerStatusPinned, false))
	if err != nil || len(pinned) != 2 {
		t.Fatalf("status of the pinned pins: %+v %v", pinned, err)
	}
	for _, g := range pinned {
		for p, st := range g.PeerMap {
			if p == down.c.self.String() && st.Status != core.TrackerStatusClusterError || p != down.c.self.String() && st.Status != core.TrackerStatusPinned {
				t.Fatalf("pinned pins, %s: the entry of %s is %s", g.Name, p, st.Status)
			}
		}
		if _, ok := g.PeerMap[down.c.self.String()]; !ok {
			t.Fatalf("pinned pins, %s: no entry for the member that is down", g.Name)
		}
	}
	// The lists merged from every member (recover all) have the member
	// that is down in error on every CID listed.
	recovered, err := core.Collect(self.c.RecoverAll(ctx, false))
	if err != nil || len(recovered) != 2 {
		t.Fatalf("recover all: %+v %v", recovered, err)
	}
	for _, g := range recovered {
		if st := g.PeerMap[down.c.self.String()]; st.Status != core.TrackerStatusClusterError || st.PeerName != "down" || st.Error == "" || g.Name == "" {
			t.Fatalf("recover all, %s: the entry of the member that is down: %+v", g.Name, st)
		}
	}
}

// TestRepoGCListsFailingPeers: a cluster-wide GC has an entry for every
// member, those whose GC failed or that are down with their error and
// the keys removed before it ([] when none).
func TestRepoGCListsFailingPeers(t *testing.T) {
	pinset := &sharedPinset{pins: map[string]core.Pin{}}
	peers := statusPeers(t, pinset, "self", "a", "broken", "down")
	self, a, broken, down := peers[0], peers[1], peers[2], peers[3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, errs := self.c.peerIDs(ctx, pinset.peers); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	self.ipfs.keys = []core.IPFSRepoGCKey{{Key: testCid(t, 1)}}
	a.ipfs.keys = []core.IPFSRepoGCKey{{Key: testCid(t, 2)}, {Key: core.UndefCid, Error: "block in use"}}
	broken.ipfs.keys = []core.IPFSRepoGCKey{{Key: testCid(t, 3)}}
	broken.ipfs.gcErr = errors.New("repo is locked")
	_ = down.host.Close()

	gc, err := self.c.RepoGC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(gc.PeerMap) != 4 {
		t.Fatalf("gc has %d entries: %+v", len(gc.PeerMap), gc)
	}
	for _, p := range []*statusPeer{self, a, broken, down} {
		e := gc.PeerMap[p.c.self.String()]
		if e.Peer != p.c.self || e.Peername != p.c.peername || e.Keys == nil {
			t.Fatalf("the entry of %s: %+v", p.c.peername, e)
		}
	}
	if e := gc.PeerMap[self.c.self.String()]; e.Error != "" || len(e.Keys) != 1 || !e.Keys[0].Key.Equals(testCid(t, 1)) {
		t.Fatalf("this peer's gc: %+v", e)
	}
	if e := gc.PeerMap[a.c.self.String()]; e.Error != "" || len(e.Keys) != 2 || !e.Keys[0].Key.Equals(testCid(t, 2)) ||
		e.Keys[1].Key.Defined() || e.Keys[1].Error != "block in use" {
		t.Fatalf("another peer's gc: %+v", e)
	}
	if e := gc.PeerMap[broken.c.self.String()]; !strings.Contains(e.Error, "repo is locked") || len(e.Keys) != 1 {
		t.Fatalf("a gc that failed: %+v", e)
	}
	e := gc.PeerMap[down.c.self.String()]
	if e.Error == "" || len(e.Keys) != 0 {
		t.Fatalf("the peer that is down: %+v", e)
	}
	b, _ := json.Marshal(e)
	want := `{"peer":"` + down.c.self.String() + `","peername":"down","keys":[],"error":"`
	if !strings.HasPrefix(string(b), want) {
		t.Fatalf("the peer that is down, as JSON: %s, want %s…", b, want)
	}
	if b, _ := json.Marshal(gc.PeerMap[self.c.self.String()]); strings.Contains(string(b), `"error"`) {
		t.Fatalf("an entry without error has one: %s", b)
	}

	local, err := self.c.RepoGC(ctx, true)
	if err != nil || len(local.PeerMap) != 1 || len(local.PeerMap[self.c.self.String()].Keys) != 1 {
		t.Fatalf("local gc: %+v %v", local, err)
	}
}

// A member's ping metric tells this peer its name and IPFS node, for the
// entries written in for it; a value that is not a ping's changes nothing.
func TestPingMetricNamesTheMember(t *testing.T) {
	member, err := core.DecodePeerID("12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX")
	if err != nil {
		t.Fatal(err)
	}
	ipfs, err := core.DecodePeerID("12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri")
	if err != nil {
		t.Fatal(err)
	}
	k := newKnownPeers()
	k.ping(core.Metric{Name: pingMetric, Peer: member, Valid: true,
		Value: `{"peer_name":"peer2","ipfs_id":"` + ipfs.String() + `","ipfs_addresses":["/ip4/1.2.3.4/tcp/4001"]}`})
	id, ok := k.get(member)
	if !ok || id.Peername != "peer2" || id.IPFS.ID != ipfs || !slices.Equal(id.IPFS.Addresses, []string{"/ip4/1.2.3.4/tcp/4001"}) {
		t.Fatalf("after a ping: %+v %v", id, ok)
	}
	for _, bad := range []string{"", "not json", `{"peer_name":"x","ipfs_id":"garbage"}`} {
		k.ping(core.Metric{Name: pingMetric, Peer: member, Valid: true, Value: bad})
		if got, _ := k.get(member); got.Peername != "peer2" {
			t.Fatalf("value %q replaced the description: %+v", bad, got)
		}
	}
}

// The blocks of an add go to every destination; one that fails a batch is
// sent no more of it, and the add fails only when no destination takes a
// batch.
func TestAddBlocksSkipAPeerThatFailed(t *testing.T) {
	pinset := &sharedPinset{pins: map[string]core.Pin{}}
	peers := statusPeers(t, pinset, "self", "a", "down")
	self, a, down := peers[0], peers[1], peers[2]
	_ = down.host.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := func(n int) []blocks.Block {
		out := make([]blocks.Block, n)
		for i := range out {
			out[i] = blocks.NewBlock([]byte(fmt.Sprintf("block %d of %d", i, n)))
		}
		return out
	}

	sink := &blockSink{c: self.c, dests: []core.PeerID{self.c.self, a.c.self, down.c.self}}
	if err := sink.PutBlocks(ctx, batch(2)); err != nil {
		t.Fatalf("a batch that two of three took: %v", err)
	}
	if !slices.Equal(sink.dests, []core.PeerID{self.c.self, a.c.self}) {
		t.Fatalf("destinations after a failure: %v", sink.dests)
	}
	if err := sink.PutBlocks(ctx, batch(3)); err != nil {
		t.Fatal(err)
	}
	if self.ipfs.stored() != 5 || a.ipfs.stored() != 5 {
		t.Fatalf("blocks stored: this peer %d, a %d; want 5 each", self.ipfs.stored(), a.ipfs.stored())
	}

	alone := &blockSink{c: self.c, dests: []core.PeerID{down.c.self}}
	if err := alone.PutBlocks(ctx, batch(1)); err == nil || !strings.Contains(err.Error(), "failed to put block on all destinations") {
		t.Fatalf("no destination took the batch: %v", err)
	}
}
