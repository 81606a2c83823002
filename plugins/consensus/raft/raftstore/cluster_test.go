package raftstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// inmemNet connects in-memory transports with each other.
type inmemNet struct {
	transports map[string]*raft.InmemTransport
}

func newInmemNet() *inmemNet {
	return &inmemNet{transports: map[string]*raft.InmemTransport{}}
}

// add creates a transport for id (its address) connected both ways to the
// existing ones.
func (n *inmemNet) add(id string) *raft.InmemTransport {
	_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	for otherID, other := range n.transports {
		tr.Connect(raft.ServerAddress(otherID), other)
		other.Connect(raft.ServerAddress(id), tr)
	}
	n.transports[id] = tr
	return tr
}

// clusterConfig is testConfig with timeouts loose enough for several
// peers on a slow (race-instrumented, two-core) machine.
func clusterConfig(dir, id string) Config {
	cfg := testConfig(dir, id)
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	cfg.ElectionTimeout = 300 * time.Millisecond
	cfg.LeaderLeaseTimeout = 150 * time.Millisecond
	return cfg
}

// openCluster opens n peers bootstrapped together, concurrently (Open
// waits for a leader, which needs a quorum).
func openCluster(t *testing.T, n int, modify func(*Config)) ([]*Store, *inmemNet) {
	t.Helper()
	net := newInmemNet()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("peer%d", i+1)
		net.add(ids[i])
	}
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		cfg := clusterConfig(t.TempDir(), id)
		cfg.InitPeerset = ids
		if modify != nil {
			modify(&cfg)
		}
		wg.Go(func() {
			stores[i], errs[i] = Open(cfg, net.transports[id], testLogger(id))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opening %s: %v", ids[i], err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	return stores, net
}

// leaderOf waits until all running stores agree on a leader and returns it
// and the followers.
func leaderOf(t *testing.T, stores []*Store) (*Store, []*Store) {
	t.Helper()
	var leader *Store
	eventually(t, "a leader", func() bool {
		leader = nil
		for _, s := range stores {
			if s.IsLeader() {
				leader = s
			}
		}
		if leader == nil {
			return false
		}
		for _, s := range stores {
			if id, _ := s.Leader(); id != leader.cfg.LocalID {
				return false
			}
		}
		return true
	})
	var followers []*Store
	for _, s := range stores {
		if s != leader {
			followers = append(followers, s)
		}
	}
	return leader, followers
}

func TestThreeNodeCluster(t *testing.T) {
	stores, _ := openCluster(t, 3, nil)
	leader, followers := leaderOf(t, stores)
	leaderID, leaderAddr := leader.Leader()

	want := map[string]string{}
	var last uint64
	for i := range 50 {
		last = mustApply(t, leader, put(key(i), value(i)))
		want[key(i)] = value(i)
	}
	last = mustApply(t, leader, del(key(7)))
	delete(want, key(7))

	for _, f := range followers {
		if err := f.WaitForIndex(ctxT(t), last); err != nil {
			t.Fatal(err)
		}
		equalMaps(t, contents(t, f), want)
		mustMissing(t, f, key(7))

		_, err := f.Apply(context.Background(), []Op{put("x", "y")})
		var nle *NotLeaderError
		if !errors.As(err, &nle) {
			t.Fatalf("Apply on follower: %v, want *NotLeaderError", err)
		}
		if !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("%v does not wrap raft.ErrNotLeader", err)
		}
		if nle.LeaderID != leaderID || nle.LeaderAddr != leaderAddr {
			t.Fatalf("NotLeaderError names %q/%q, leader is %q/%q", nle.LeaderID, nle.LeaderAddr, leaderID, leaderAddr)
		}
		// Membership changes too must go to the leader.
		if err := f.RemovePeer(context.Background(), leaderID); !errors.As(err, &nle) {
			t.Fatalf("RemovePeer on follower: %v", err)
		}
	}
	mustMissing(t, leader, "x")

	// Subscribers on a follower see the leader's writes.
	ch := followers[0].Subscribe(ctxT(t))
	idx := mustApply(t, leader, put("sub", "scribed"))
	a := <-ch
	if a.Err != nil || a.Index != idx || string(a.Ops[0].Key) != "sub" {
		t.Fatalf("follower subscription got %+v, want index %d", a, idx)
	}
}

func TestRemovePeer(t *testing.T) {
	stores, _ := openCluster(t, 3, nil)
	leader, followers := leaderOf(t, stores)
	peers, err := leader.Peers()
	if err != nil || len(peers) != 3 {
		t.Fatalf("Peers() = %v, %v", peers, err)
	}
	gone := followers[0]
	if err := leader.RemovePeer(ctxT(t), gone.cfg.LocalID); err != nil {
		t.Fatal(err)
	}
	peers, err = leader.Peers()
	if err != nil || len(peers) != 2 || slices.Contains(peers, gone.cfg.LocalID) {
		t.Fatalf("Peers() after removal = %v, %v", peers, err)
	}
	eventually(t, "remaining follower sees the new peerset", func() bool {
		p, err := followers[1].Peers()
		return err == nil && len(p) == 2
	})
	// The removed peer may never learn that it was removed (the leader
	// stops replicating to it), so nothing is checked on its side.

	// The two remaining peers still form a working cluster.
	idx := mustApply(t, leader, put("after", "removal"))
	if err := followers[1].WaitForIndex(ctxT(t), idx); err != nil {
		t.Fatal(err)
	}
	mustGet(t, followers[1], "after", "removal")
	if err := gone.Close(); err != nil {
		t.Fatalf("closing removed peer: %v", err)
	}
}

// TestJoinThroughSnapshot adds a fresh peer to a single-voter cluster whose
// log was compacted: it receives the state as a snapshot (Restore), then
// follows the log.
func TestJoinThroughSnapshot(t *testing.T) {
	net := newInmemNet()
	cfg1 := clusterConfig(t.TempDir(), "peer1")
	cfg1.TrailingLogs = 2
	s1, err := Open(cfg1, net.add("peer1"), testLogger("peer1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s1.Close() })

	want := map[string]string{}
	for i := range 300 {
		mustApply(t, s1, put(key(i), value(i)))
		want[key(i)] = value(i)
	}
	if err := s1.Snapshot(); err != nil {
		t.Fatal(err)
	}

	cfg2 := clusterConfig(t.TempDir(), "peer2")
	cfg2.NoBootstrap = true
	s2, err := Open(cfg2, net.add("peer2"), testLogger("peer2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	if id, _ := s2.Leader(); id != "" {
		t.Fatalf("joining peer already has leader %q", id)
	}
	sub := s2.Subscribe(ctxT(t))

	if err := s1.AddVoter(ctxT(t), "peer2", "peer2"); err != nil {
		t.Fatal(err)
	}
	peers, _ := s1.Peers()
	if !slices.Equal(peers, []string{"peer1", "peer2"}) {
		t.Fatalf("Peers() = %v", peers)
	}
	idx := mustApply(t, s1, put("after", "join"))
	want["after"] = "join"
	if err := s2.WaitForIndex(ctxT(t), idx); err != nil {
		t.Fatal(err)
	}
	equalMaps(t, contents(t, s2), want)

	// The subscriber was told that the state was replaced.
	a := <-sub
	if !errors.Is(a.Err, ErrStateRestored) {
		t.Fatalf("subscriber got %+v, want ErrStateRestored", a)
	}
	if _, ok := <-sub; ok {
		t.Fatal("subscription not closed")
	}

	// The restored peer restarts from its durable state.
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err = Open(cfg2, net.add("peer2"), testLogger("peer2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	equalMaps(t, contents(t, s2), want)
}

// TestServersAndAddresses: bootstrap addresses come from InitAddresses,
// the local one from the transport; Open can leave the wait for a leader
// to the caller.
func TestServersAndAddresses(t *testing.T) {
	net := newInmemNet()
	tr1 := net.add("addr-of-peer1")
	net.add("peer2") // a peer that will never start: no quorum
	cfg := clusterConfig(t.TempDir(), "peer1")
	cfg.InitPeerset = []string{"peer1", "peer2"}
	cfg.InitAddresses = map[string]string{"peer2": "addr-of-peer2"}
	cfg.NoWaitForLeader = true
	start := time.Now()
	s, err := Open(cfg, tr1, testLogger("peer1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open waited %v", d)
	}
	servers, err := s.Servers()
	if err != nil {
		t.Fatal(err)
	}
	want := []Server{{ID: "peer1", Address: "addr-of-peer1", Voter: true}, {ID: "peer2", Address: "addr-of-peer2", Voter: true}}
	if !slices.Equal(servers, want) {
		t.Fatalf("Servers() = %+v, want %+v", servers, want)
	}
	// Without a quorum there is no leader, and Barrier on a follower
	// returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.WaitForLeader(ctx); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("WaitForLeader: %v", err)
	}
	if err := s.Barrier(context.Background()); err != nil {
		t.Fatalf("Barrier on a follower: %v", err)
	}

	ops := []Op{put("a", "1"), del("b")}
	got, err := DecodeOps(EncodeOps(ops))
	if err != nil || len(got) != 2 || string(got[0].Value) != "1" || !got[1].Delete {
		t.Fatalf("DecodeOps(EncodeOps) = %+v, %v", got, err)
	}
}
