package cluster

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// rotatingAllocator answers the candidates in a new order at every call,
// so that a pin allocated twice would likely move, and records what it
// was asked.
type rotatingAllocator struct {
	core.Allocator
	mu    sync.Mutex
	calls int
	asked []core.PinAllocation
}

func (a *rotatingAllocator) Allocate(_ context.Context, req core.AllocateRequest) ([]core.AllocateResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	var peers []core.PeerID
	for _, m := range req.Metrics {
		if !slices.Contains(peers, m.Peer) {
			peers = append(peers, m.Peer)
		}
	}
	slices.Sort(peers)
	out := make([]core.AllocateResult, len(req.Pins))
	for i, p := range req.Pins {
		a.asked = append(a.asked, p)
		k := (a.calls + i) % len(peers)
		rotated := append(slices.Clone(peers[k:]), peers[:k]...)
		out[i].Peers = slices.DeleteFunc(rotated, func(id core.PeerID) bool { return slices.Contains(p.Current, id) })
	}
	return out, nil
}

func (a *rotatingAllocator) log() (int, []core.PinAllocation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, slices.Clone(a.asked)
}

// TestAllocateAhead checks the writer's allocation asked while the pinset
// is looked up: a new pin is allocated in that one call; a pin already
// allocated is allocated again from its current peers, which it keeps; a
// pin with preset allocations or pinned everywhere asks nothing.
func TestAllocateAhead(t *testing.T) {
	c, err := New(&config.Service{Cluster: config.DefaultClusterConfig()}, "self", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	cons := &mapConsensus{leader: "self", pins: make(map[string]core.Pin)}
	alloc := &rotatingAllocator{}
	c.plugins.Consensus, c.plugins.Allocator = cons, alloc
	peers := []core.PeerID{"peer-a", "peer-b", "peer-c", "peer-d"}
	c.members.set(peers, "peer-a")
	expire := time.Now().Add(time.Hour).UnixNano()
	for _, p := range peers {
		c.monitor.put(core.Metric{Name: "freespace", Peer: p, Value: "1000", Valid: true, Expire: expire})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); c.runWriter(ctx) }()
	defer func() { cancel(); <-done }()
	two := core.PinOptions{ReplicationFactorMin: 2, ReplicationFactorMax: 2}

	first, err := c.write(ctx, &writeRequest{pin: core.Pin{Cid: testCid(t, 1), MaxDepth: -1, PinOptions: two}})
	if err != nil || len(first.Allocations) != 2 {
		t.Fatalf("new pin: %+v %v", first, err)
	}
	if calls, asked := alloc.log(); calls != 1 || len(asked) != 1 || len(asked[0].Current) != 0 {
		t.Fatalf("new pin: %d allocator calls, asked %+v", calls, asked)
	}

	// Pinned again (a new name): it stays where it is.
	two.Name = "renamed"
	again, err := c.write(ctx, &writeRequest{pin: core.Pin{Cid: testCid(t, 1), MaxDepth: -1, PinOptions: two}})
	if err != nil || again.Name != "renamed" || !slices.Equal(again.Allocations, first.Allocations) {
		t.Fatalf("pinned again: %+v (was on %v) %v", again, first.Allocations, err)
	}
	// One more replica wanted: the current two are kept and one is added.
	three := core.PinOptions{ReplicationFactorMin: 3, ReplicationFactorMax: 3}
	grown, err := c.write(ctx, &writeRequest{pin: core.Pin{Cid: testCid(t, 1), MaxDepth: -1, PinOptions: three}})
	if err != nil || len(grown.Allocations) != 3 || !slices.Equal(grown.Allocations[:2], first.Allocations) {
		t.Fatalf("grown to three: %+v (was on %v) %v", grown, first.Allocations, err)
	}
	_, asked := alloc.log()
	if last := asked[len(asked)-1]; !slices.Equal(last.Current, first.Allocations) || last.Needed != 1 {
		t.Fatalf("the last allocation was asked %+v, want the current peers and one more", last)
	}

	// Preset allocations and pins on every peer ask the allocator nothing.
	before, _ := alloc.log()
	everywhere := core.PinOptions{ReplicationFactorMin: -1, ReplicationFactorMax: -1}
	if _, err := c.write(ctx, &writeRequest{pin: core.Pin{Cid: testCid(t, 2), MaxDepth: -1, PinOptions: everywhere}}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.write(ctx, &writeRequest{pin: core.Pin{Cid: testCid(t, 3), MaxDepth: -1, PinOptions: two}, preset: peers[:1]}); err != nil || !slices.Equal(p.Allocations, peers[:1]) {
		t.Fatalf("preset: %+v %v", p, err)
	}
	if after, _ := alloc.log(); after != before {
		t.Fatalf("%d allocator calls for pins that need none", after-before)
	}
}
