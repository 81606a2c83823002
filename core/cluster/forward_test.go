package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/network"
)

// mapConsensus is a pinset in memory with a fixed leader. Only what the
// writer calls is implemented.
type mapConsensus struct {
	core.Consensus
	leader core.PeerID

	mu      sync.Mutex
	pins    map[string]core.Pin
	commits int
}

func (m *mapConsensus) Leader(context.Context) (core.PeerID, error) { return m.leader, nil }

func (m *mapConsensus) GetPins(_ context.Context, cids []core.Cid) ([]core.Pin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]core.Pin, len(cids))
	for i, c := range cids {
		out[i] = m.pins[c.KeyString()]
	}
	return out, nil
}

func (m *mapConsensus) Commit(_ context.Context, ops []core.PinOp) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commits++
	for _, op := range ops {
		if op.Remove {
			delete(m.pins, op.Pin.Cid.KeyString())
		} else {
			m.pins[op.Pin.Cid.KeyString()] = op.Pin
		}
	}
	return nil
}

func (m *mapConsensus) state() (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commits, len(m.pins)
}

// forwardPeer is a cluster with only its network and its writer running.
// testHost is a libp2p host on loopback with a fresh key, in the private
// network of secret, and the RPC over it; both end with the test.
func testHost(t *testing.T, secret []byte) (*network.Host, *network.RPC) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := network.NewHost(network.Config{PrivateKey: key, Secret: secret, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	rpc, err := network.NewRPC(h, network.RPCConfig{CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return h, rpc
}

func forwardPeer(t *testing.T, secret []byte, leader func(self core.PeerID) core.PeerID) (*Cluster, *mapConsensus, *network.Host) {
	t.Helper()
	h, rpc := testHost(t, secret)
	c, err := New(&config.Service{Cluster: config.DefaultClusterConfig()}, h.ID(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	cons := &mapConsensus{leader: leader(h.ID()), pins: make(map[string]core.Pin)}
	c.plugins.Consensus = cons
	if err := c.UseNetwork(h, rpc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.runWriter(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, cons, h
}

func testCid(t *testing.T, i byte) core.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte{i}, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return core.NewCid(cid.NewCidV1(cid.Raw, mh))
}

// TestFollowersForwardWrites checks that a follower's pins and unpins are
// committed by the leader's writer, errors included, and that the
// follower writes locally once the leader cannot be reached.
func TestFollowersForwardWrites(t *testing.T) {
	secret := make([]byte, network.SecretSize)
	leader, leaderCons, leaderHost := forwardPeer(t, secret, func(self core.PeerID) core.PeerID { return self })
	follower, followerCons, followerHost := forwardPeer(t, secret, func(core.PeerID) core.PeerID { return leader.self })
	followerHost.LibP2P().Peerstore().AddAddrs(leaderHost.ID(), leaderHost.LibP2P().Addrs(), time.Hour)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	everywhere := core.PinOptions{ReplicationFactorMin: -1, ReplicationFactorMax: -1, Name: "n"}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			p, err := follower.write(ctx, &writeRequest{pin: core.Pin{Cid: testCid(t, byte(i)), MaxDepth: -1, PinOptions: everywhere}})
			if err == nil && (p.Name != "n" || p.Timestamp.IsZero()) {
				err = errors.New("the answer is not the committed pin")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if commits, pins := leaderCons.state(); pins != 8 || commits == 0 || commits > 8 {
		t.Fatalf("leader: %d commits, %d pins", commits, pins)
	}
	if commits, _ := followerCons.state(); commits != 0 {
		t.Fatalf("the follower committed %d batches itself", commits)
	}
	if _, err := follower.write(ctx, &writeRequest{remove: true, pin: core.Pin{Cid: testCid(t, 100)}}); !errors.Is(err, core.ErrPinNotFound) {
		t.Fatalf("unpin of an unknown CID through the leader: %v", err)
	}
	// An unpin answers the pin it removed, as on the leader.
	if removed, err := follower.write(ctx, &writeRequest{remove: true, pin: core.Pin{Cid: testCid(t, 0)}}); err != nil || removed.Name != "n" || removed.Timestamp.IsZero() {
		t.Fatalf("unpin through the leader: %+v %v", removed, err)
	}
	if _, pins := leaderCons.state(); pins != 7 {
		t.Fatalf("leader holds %d pins after an unpin", pins)
	}

	// The leader goes away: the follower writes locally (its consensus
	// would forward to the new leader).
	_ = leaderHost.Close()
	follower.leaderFailed()
	if _, err := follower.write(ctx, &writeRequest{pin: core.Pin{Cid: testCid(t, 50), MaxDepth: -1, PinOptions: everywhere}}); err != nil {
		t.Fatal(err)
	}
	if commits, pins := followerCons.state(); commits != 1 || pins != 1 {
		t.Fatalf("follower after the leader left: %d commits, %d pins", commits, pins)
	}
}
