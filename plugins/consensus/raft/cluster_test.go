package raft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// Multi-peer tests: every peer is a plugin instance of this process with
// its own data folder and its own libp2p host on a loopback port.

var (
	testSecret  = bytes.Repeat([]byte{0x42}, 32)
	otherSecret = bytes.Repeat([]byte{0x17}, 32)
)

// clusterConfig has raft timings loose enough for several peers on a slow,
// race-instrumented machine, and a loopback listen address (port 0 unless
// given).
func clusterConfig(t testing.TB, extra map[string]any) json.RawMessage {
	t.Helper()
	cfg := map[string]any{
		"listen_multiaddress":     "/ip4/127.0.0.1/tcp/0",
		"heartbeat_timeout":       "300ms",
		"election_timeout":        "300ms",
		"leader_lease_timeout":    "150ms",
		"commit_timeout":          "5ms",
		"network_timeout":         "2s",
		"wait_for_leader_timeout": "10s",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func networkEnv(t testing.TB, secret []byte, initPeers ...core.PeerID) core.Environment {
	t.Helper()
	env := sdktest.Environment(t)
	env.Secret = secret
	env.InitPeers = append(env.InitPeers, initPeers...)
	return env
}

// testPeer is one plugin instance of a test cluster.
type testPeer struct {
	env core.Environment
	cfg json.RawMessage
	*Consensus
}

func startTestPeer(t testing.TB, env core.Environment, cfg json.RawMessage) *testPeer {
	t.Helper()
	keepLogs(t)
	c := New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Configure(ctx, cfg, env, nil); err != nil {
		t.Fatalf("configure %s: %v", env.PeerID, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &testPeer{env: env, cfg: cfg, Consensus: c}
}

func (p *testPeer) id() core.PeerID { return p.env.PeerID }

func (p *testPeer) address(t testing.TB) string {
	t.Helper()
	a, err := p.Address(context.Background())
	if err != nil || !strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") || !strings.Contains(a, "/p2p/") {
		t.Fatalf("Address() = %q, %v", a, err)
	}
	return a
}

// port is the TCP port of the peer's raft address.
func (p *testPeer) port(t testing.TB) string {
	t.Helper()
	a, err := ma.NewMultiaddr(p.address(t))
	if err != nil {
		t.Fatal(err)
	}
	port, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// within retries cond until it holds or d passed.
func within(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still not %s: %v", d, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func samePeers(want ...core.PeerID) func(core.Consensus) error {
	return func(c core.Consensus) error {
		got, err := c.Peers(context.Background())
		if err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("peers %v, want %v", got, want)
		}
		for _, p := range want {
			if !slices.Contains(got, p) {
				return fmt.Errorf("peers %v, want %v", got, want)
			}
		}
		return nil
	}
}

func leaderIs(want core.PeerID) func(core.Consensus) error {
	return func(c core.Consensus) error {
		got, err := c.Leader(context.Background())
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("leader %s, want %s", got, want)
		}
		return nil
	}
}

// hasPins checks that every pin is in c's pinset.
func hasPins(pins ...core.Pin) func(core.Consensus) error {
	return func(c core.Consensus) error {
		cids := make([]core.Cid, len(pins))
		for i, p := range pins {
			cids[i] = p.Cid
		}
		got, err := c.GetPins(context.Background(), cids)
		if err != nil {
			return err
		}
		missing := 0
		for i, p := range got {
			if !p.Cid.Defined() || p.Name != pins[i].Name {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d pins missing", missing, len(pins))
		}
		return nil
	}
}

func onAll(t testing.TB, d time.Duration, what string, check func(core.Consensus) error, peers ...core.Consensus) {
	t.Helper()
	within(t, d, what, func() error {
		for i, p := range peers {
			if err := check(p); err != nil {
				return fmt.Errorf("peer #%d: %w", i, err)
			}
		}
		return nil
	})
}

// leaderAmong waits until the peers agree on a leader that is one of them.
func leaderAmong(t testing.TB, peers ...*testPeer) (*testPeer, []*testPeer) {
	t.Helper()
	var leader *testPeer
	within(t, 15*time.Second, "agreeing on a leader", func() error {
		leader = nil
		var first core.PeerID
		for i, p := range peers {
			l, err := p.Leader(context.Background())
			if err != nil {
				return err
			}
			if i == 0 {
				first = l
			} else if l != first {
				return fmt.Errorf("leaders %s and %s", first, l)
			}
		}
		for _, p := range peers {
			if p.id() == first {
				leader = p
			}
		}
		if leader == nil {
			return fmt.Errorf("leader %s is not running", first)
		}
		return nil
	})
	var followers []*testPeer
	for _, p := range peers {
		if p != leader {
			followers = append(followers, p)
		}
	}
	return leader, followers
}

// watcher collects the operations a peer's Watch delivers.
type watcher struct {
	mu  sync.Mutex
	ops []core.PinOp
}

func watch(t testing.TB, c core.Consensus) *watcher {
	t.Helper()
	w := &watcher{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opened := make(chan struct{})
	go func() {
		first := true
		for ev, err := range c.Watch(ctx) {
			if first {
				close(opened)
				first = false
			}
			if err != nil {
				return
			}
			w.mu.Lock()
			w.ops = append(w.ops, ev.Ops...)
			w.mu.Unlock()
		}
	}()
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not open")
	}
	return w
}

func (w *watcher) saw(pins ...core.Pin) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range pins {
		if !slices.ContainsFunc(w.ops, func(op core.PinOp) bool { return !op.Remove && op.Pin.Cid.Equals(p.Cid) }) {
			return fmt.Errorf("no watch event for %s (%d ops seen)", p.Name, len(w.ops))
		}
	}
	return nil
}

func commitPins(t testing.TB, c core.Consensus, pins ...core.Pin) {
	t.Helper()
	ops := make([]core.PinOp, len(pins))
	for i, p := range pins {
		ops[i] = core.PinOp{Pin: p}
	}
	if err := c.Commit(ctxFor(t, 20*time.Second), ops); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// writer commits one pin at a time until stopped, keeping the pins whose
// commit was acknowledged.
type writer struct {
	mu     sync.Mutex
	acked  []core.Pin
	starts []time.Time // when each acknowledged commit started
	times  []time.Time // and when it was acknowledged
	errs   int
	stop   chan struct{}
	done   chan struct{}
}

func startWriter(t testing.TB, c core.Consensus, name string) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			p := testPin(t, fmt.Sprintf("%s-%d", name, i))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			started := time.Now()
			err := c.Commit(ctx, []core.PinOp{{Pin: p}})
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, p)
				w.starts = append(w.starts, started)
				w.times = append(w.times, time.Now())
			} else {
				w.errs++
			}
			w.mu.Unlock()
			if err != nil {
				if errors.Is(err, errNotConfigured) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	return w
}

func (w *writer) halt() []core.Pin {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// ackedAfter counts the acknowledged commits started after t0 and returns
// when the first was acknowledged.
func (w *writer) ackedAfter(t0 time.Time) (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, first := 0, time.Time{}
	for i, at := range w.starts {
		if at.After(t0) {
			if n == 0 {
				first = w.times[i]
			}
			n++
		}
	}
	return n, first
}

// TestCluster runs three peers over libp2p: a bootstrapping peer, two
// joining ones, writes on leader and followers, a leader failure under
// load, the old leader's return (through a snapshot), and a removal.
func TestCluster(t *testing.T) {
	start := time.Now()
	// A small trailing log makes the returning leader catch up from a
	// snapshot.
	cfg := clusterConfig(t, map[string]any{"trailing_logs": 8, "snapshot_threshold": 16})
	p1 := startTestPeer(t, networkEnv(t, testSecret), cfg)
	// p2 joins because the core lists another peer at start; p3 because
	// its configuration says so.
	p2 := startTestPeer(t, networkEnv(t, testSecret, p1.id()), cfg)
	p3 := startTestPeer(t, networkEnv(t, testSecret), clusterConfig(t, map[string]any{"join": true, "trailing_logs": 8, "snapshot_threshold": 16}))
	for _, p := range []*testPeer{p2, p3} {
		if l, err := p.Leader(context.Background()); err == nil {
			t.Fatalf("a joining peer has leader %s before being added", l)
		}
	}
	ctx := ctxFor(t, 50*time.Second)

	// The leader adds p2; p3 is added through a follower, which forwards.
	if err := p1.AddPeer(ctx, p2.id(), p2.address(t)); err != nil {
		t.Fatal(err)
	}
	if err := p2.AddPeer(ctx, p3.id(), p3.address(t)); err != nil {
		t.Fatalf("AddPeer through a follower: %v", err)
	}
	// The follower that forwarded the change sees it at once.
	if err := samePeers(p1.id(), p2.id(), p3.id())(p2); err != nil {
		t.Fatal(err)
	}
	// Adding a member again changes nothing.
	if err := p3.AddPeer(ctx, p2.id(), p2.address(t)); err != nil {
		t.Fatal(err)
	}
	all := []core.Consensus{p1, p2, p3}
	onAll(t, 10*time.Second, "three peers", samePeers(p1.id(), p2.id(), p3.id()), all...)
	onAll(t, 10*time.Second, "led by the first peer", leaderIs(p1.id()), all...)
	t.Logf("cluster formed in %v", time.Since(start).Round(time.Millisecond))

	// Writes on a follower are forwarded, and readable there at once.
	w3 := watch(t, p3)
	w1 := watch(t, p1)
	a, b := testPin(t, "on-follower"), testPin(t, "on-leader")
	commitPins(t, p2, a)
	if err := hasPins(a)(p2); err != nil {
		t.Fatalf("read after write on the follower: %v", err)
	}
	commitPins(t, p1, b)
	onAll(t, 10*time.Second, "replicated", hasPins(a, b), all...)
	within(t, 10*time.Second, "watched on a follower", func() error { return w3.saw(a, b) })
	within(t, 10*time.Second, "watched on the leader", func() error { return w1.saw(a, b) })
	// Many concurrent commits through a follower.
	var wg sync.WaitGroup
	burst := make([]core.Pin, 64)
	for i := range burst {
		burst[i] = testPin(t, fmt.Sprintf("burst-%d", i))
		wg.Go(func() { commitPins(t, p3, burst[i]) })
	}
	wg.Wait()
	onAll(t, 10*time.Second, "burst replicated", hasPins(burst...), all...)

	// Stop the leader while every peer writes.
	writers := []*writer{startWriter(t, p1, "w1"), startWriter(t, p2, "w2"), startWriter(t, p3, "w3")}
	time.Sleep(500 * time.Millisecond)
	port1 := p1.port(t)
	if err := p1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	survivors := []*testPeer{p2, p3}
	within(t, 15*time.Second, "writes resuming after the leader stopped", func() error {
		for _, w := range writers[1:] {
			if n, _ := w.ackedAfter(stopped); n < 5 {
				return fmt.Errorf("%d commits acknowledged since the leader stopped", n)
			}
		}
		return nil
	})
	var resumed time.Duration
	for _, w := range writers[1:] {
		_, first := w.ackedAfter(stopped)
		resumed = max(resumed, first.Sub(stopped))
	}
	newLeader, _ := leaderAmong(t, survivors...)
	t.Logf("leader %s stopped; %s leads; commits resumed on both survivors after %v",
		p1.id().ShortString(), newLeader.id().ShortString(), resumed.Round(time.Millisecond))
	var acked []core.Pin
	for _, w := range writers {
		acked = append(acked, w.halt()...)
	}
	// Every acknowledged commit survived.
	onAll(t, 10*time.Second, "holding every acknowledged pin", hasPins(acked...), p2, p3)
	t.Logf("%d commits acknowledged across the failure, all present on the survivors", len(acked))

	// Compact the log so that the old leader needs a snapshot.
	after := make([]core.Pin, 40)
	for i := range after {
		after[i] = testPin(t, fmt.Sprintf("after-%d", i))
	}
	commitPins(t, newLeader, after...)
	for i := range after {
		commitPins(t, survivors[i%2], testPin(t, fmt.Sprintf("filler-%d", i)))
	}
	// Leadership may have moved meanwhile on a loaded machine: compact
	// both survivors' logs.
	for _, p := range survivors {
		if err := p.n.store.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}

	// The old leader comes back on its port and catches up.
	back := time.Now()
	p1 = startTestPeer(t, p1.env, clusterConfig(t, map[string]any{
		"listen_multiaddress": "/ip4/127.0.0.1/tcp/" + port1, "trailing_logs": 8, "snapshot_threshold": 16,
	}))
	all = []core.Consensus{p1, p2, p3}
	onAll(t, 15*time.Second, "caught up", hasPins(append(acked, after...)...), p1)
	// raft makes the restored state readable a moment before it records
	// the snapshot it came from.
	within(t, 5*time.Second, "the snapshot recorded on the returning peer", func() error {
		if st := p1.n.store.Stats(); st["last_snapshot_index"] == "0" {
			return fmt.Errorf("the returning peer did not receive a snapshot: %v", st)
		}
		return nil
	})
	onAll(t, 10*time.Second, "following the new leader", leaderIs(newLeader.id()), all...)
	t.Logf("the old leader caught up in %v", time.Since(back).Round(time.Millisecond))
	c := testPin(t, "on-returned")
	commitPins(t, p1, c)
	onAll(t, 10*time.Second, "replicated from the returned peer", hasPins(c), all...)

	// Remove the leader through a follower: the two others go on.
	var rest []*testPeer
	for _, p := range []*testPeer{p1, p2, p3} {
		if p != newLeader {
			rest = append(rest, p)
		}
	}
	if err := rest[0].RemovePeer(ctx, newLeader.id()); err != nil {
		t.Fatalf("RemovePeer of the leader through a follower: %v", err)
	}
	if err := samePeers(rest[0].id(), rest[1].id())(rest[0]); err != nil {
		t.Fatalf("after RemovePeer on the same peer: %v", err)
	}
	onAll(t, 10*time.Second, "two peers", samePeers(rest[0].id(), rest[1].id()), rest[0], rest[1])
	if err := rest[1].RemovePeer(ctx, newLeader.id()); err == nil {
		t.Fatal("removing a removed peer succeeded")
	}
	d := testPin(t, "after-removal")
	commitPins(t, rest[1], d)
	onAll(t, 10*time.Second, "replicated by the two peers left", hasPins(d), rest[0], rest[1])
	leaderAmong(t, rest...)
	t.Logf("whole scenario: %v", time.Since(start).Round(time.Millisecond))
}

// TestStrangerCannotJoin: a peer with another secret can neither be added
// nor reach the cluster.
func TestStrangerCannotJoin(t *testing.T) {
	p1 := startTestPeer(t, networkEnv(t, testSecret), clusterConfig(t, nil))
	stranger := startTestPeer(t, networkEnv(t, otherSecret), clusterConfig(t, map[string]any{"join": true}))
	ctx := ctxFor(t, 30*time.Second)

	err := p1.AddPeer(ctx, stranger.id(), stranger.address(t))
	if err == nil {
		t.Fatal("a peer with another secret was added")
	}
	t.Logf("AddPeer of the stranger: %v", err)
	if err := samePeers(p1.id())(p1); err != nil {
		t.Fatal(err)
	}
	// Its host cannot connect either.
	info, err := parseRaftAddr(p1.address(t))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := stranger.n.host.Connect(cctx, *info); err == nil {
		t.Fatal("a host with another secret connected to the raft host")
	}
	if _, err := stranger.n.call(ctx, p1.address(t), []byte{fwdHello}); err == nil {
		t.Fatal("a host with another secret reached the forwarding protocol")
	}
	// An address that is not the peer's own is refused too.
	other := startTestPeer(t, networkEnv(t, testSecret), clusterConfig(t, map[string]any{"join": true}))
	if err := p1.AddPeer(ctx, stranger.id(), other.address(t)); err == nil || !strings.Contains(err.Error(), "belongs to") {
		t.Fatalf("adding a peer at another peer's address: %v", err)
	}
	if err := p1.AddPeer(ctx, other.id(), "/ip4/127.0.0.1/tcp/1"); err == nil {
		t.Fatal("an address without /p2p/ was accepted")
	}
	// A peer that bootstrapped a cluster of its own is refused.
	loner := startTestPeer(t, networkEnv(t, testSecret), clusterConfig(t, nil))
	if err := p1.AddPeer(ctx, loner.id(), loner.address(t)); err == nil || !strings.Contains(err.Error(), "cluster of its own") {
		t.Fatalf("adding a peer with a cluster of its own: %v", err)
	}
	if err := samePeers(p1.id())(p1); err != nil {
		t.Fatal(err)
	}
	// The one that joined properly is accepted.
	if err := p1.AddPeer(ctx, other.id(), other.address(t)); err != nil {
		t.Fatal(err)
	}
	commitPins(t, p1, testPin(t, "still-working"))
}

// TestInitPeerset bootstraps three peers together from init_peerset,
// which lists the others' raft addresses.
func TestInitPeerset(t *testing.T) {
	type planned struct {
		env  core.Environment
		port int
		addr string
	}
	var ps []planned
	var entries []string
	for range 3 {
		env := networkEnv(t, testSecret)
		key, err := loadOrCreateKey(env.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		hostID, err := peer.IDFromPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, hostID)
		ps = append(ps, planned{env: env, port: port, addr: addr})
		entries = append(entries, env.PeerID.String()+"="+addr)
	}
	// This peer's own entry may leave the address out.
	var peers []*testPeer
	for i, p := range ps {
		own := slices.Clone(entries)
		own[i] = p.env.PeerID.String()
		cfg := clusterConfig(t, map[string]any{"listen_multiaddress": fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.port), "init_peerset": own})
		peers = append(peers, startTestPeer(t, p.env, cfg))
		if got := peers[i].address(t); got != p.addr {
			t.Fatalf("Address() = %s, want %s", got, p.addr)
		}
	}
	all := []core.Consensus{peers[0], peers[1], peers[2]}
	onAll(t, 10*time.Second, "three peers", samePeers(peers[0].id(), peers[1].id(), peers[2].id()), all...)
	_, followers := leaderAmong(t, peers...)
	a := testPin(t, "init")
	commitPins(t, followers[0], a)
	onAll(t, 10*time.Second, "replicated", hasPins(a), all...)
}

// TestThroughSDKBoundary runs the follower-forwarding case through the
// plugin's gRPC boundary, as the core drives it.
func TestThroughSDKBoundary(t *testing.T) {
	cfg := clusterConfig(t, nil)
	envs := []core.Environment{networkEnv(t, testSecret), networkEnv(t, testSecret), networkEnv(t, testSecret)}
	envs[1].InitPeers = append(envs[1].InitPeers, envs[0].PeerID)
	envs[2].InitPeers = append(envs[2].InitPeers, envs[0].PeerID)
	var cs []core.Consensus
	for _, env := range envs {
		cs = append(cs, sdktest.ConnectConsensus(t, New(), cfg, nil, sdktest.WithEnvironment(env)))
	}
	ctx := ctxFor(t, 30*time.Second)
	for i := 1; i < 3; i++ {
		addr, err := cs[i].Address(ctx)
		if err != nil || addr == "" {
			t.Fatalf("Address: %q %v", addr, err)
		}
		// The second joiner is added through the first, a follower.
		if err := cs[i-1].AddPeer(ctx, envs[i].PeerID, addr); err != nil {
			t.Fatalf("AddPeer on peer #%d: %v", i-1, err)
		}
	}
	onAll(t, 10*time.Second, "three peers", samePeers(envs[0].PeerID, envs[1].PeerID, envs[2].PeerID), cs...)
	onAll(t, 10*time.Second, "led by the first", leaderIs(envs[0].PeerID), cs...)

	w := watch(t, cs[1])
	a := testPin(t, "through-grpc")
	commitPins(t, cs[2], a)
	if err := hasPins(a)(cs[2]); err != nil {
		t.Fatalf("read after write on the follower: %v", err)
	}
	onAll(t, 10*time.Second, "replicated", hasPins(a), cs...)
	within(t, 10*time.Second, "watched on a follower", func() error { return w.saw(a) })
	if err := cs[2].RemovePeer(ctx, envs[1].PeerID); err != nil {
		t.Fatal(err)
	}
	onAll(t, 10*time.Second, "two peers", samePeers(envs[0].PeerID, envs[2].PeerID), cs[0], cs[2])
}

// TestSinglePeerNetworked: a peer with the network (the daemon's case)
// behaves as a standalone one.
func TestSinglePeerNetworked(t *testing.T) {
	env := networkEnv(t, testSecret)
	start := time.Now()
	p := startTestPeer(t, env, clusterConfig(t, nil))
	t.Logf("started in %v", time.Since(start).Round(time.Millisecond))
	p.address(t)
	exercise(t, p, env.PeerID)
}

// TestAddressUpdated: a peer whose raft address changed (here, a peer
// that ran without network before) puts its new address in the raft
// configuration.
func TestAddressUpdated(t *testing.T) {
	env := sdktest.Environment(t)
	p := startTestPeer(t, env, fastConfig())
	if a, _ := p.Address(context.Background()); a != "" {
		t.Fatalf("a peer without network has address %q", a)
	}
	if err := p.AddPeer(context.Background(), sdktest.NewPeerID(t), "/ip4/127.0.0.1/tcp/1/p2p/"+sdktest.NewPeerID(t).String()); !errors.Is(err, errNoNetwork) {
		t.Fatalf("AddPeer without network: %v", err)
	}
	a := testPin(t, "before")
	commitPins(t, p, a)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	env.Secret = testSecret
	p = startTestPeer(t, env, clusterConfig(t, nil))
	addr := p.address(t)
	within(t, 10*time.Second, "the new address in the configuration", func() error {
		servers, err := p.n.store.Servers()
		if err != nil {
			return err
		}
		if len(servers) != 1 || servers[0].Address != addr {
			return fmt.Errorf("configuration %+v", servers)
		}
		return nil
	})
	if err := hasPins(a)(p); err != nil {
		t.Fatal(err)
	}
	// And it can take a second peer.
	q := startTestPeer(t, networkEnv(t, testSecret, env.PeerID), clusterConfig(t, nil))
	if err := p.AddPeer(ctxFor(t, 20*time.Second), q.id(), q.address(t)); err != nil {
		t.Fatal(err)
	}
	onAll(t, 10*time.Second, "replicated to the new peer", hasPins(a), q)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkClusterCommit commits single pins concurrently (16 goroutines per
// CPU) through every peer of a three-peer cluster, two thirds of them
// forwarded by followers.
func BenchmarkClusterCommit(b *testing.B) {
	cfg := clusterConfig(b, map[string]any{"commit_timeout": "1ms"})
	p1 := startTestPeer(b, networkEnv(b, testSecret), cfg)
	peers := []*testPeer{p1}
	for range 2 {
		p := startTestPeer(b, networkEnv(b, testSecret, p1.id()), cfg)
		if err := p1.AddPeer(ctxFor(b, 20*time.Second), p.id(), p.address(b)); err != nil {
			b.Fatal(err)
		}
		peers = append(peers, p)
	}
	leaderAmong(b, peers...)
	var next sync.Mutex
	i := 0
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		p := peers[i%len(peers)]
		i++
		next.Unlock()
		for pb.Next() {
			if err := p.Commit(context.Background(), []core.PinOp{{Pin: testPin(b, "x")}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
