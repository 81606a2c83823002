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

// TestLinger checks how long a batch waits for more requests: for as many
// as the last batch held plus those that queued behind it, and no longer
// than the last batch took to answer.
func TestLinger(t *testing.T) {
	c, err := New(&config.Service{Cluster: config.DefaultClusterConfig()}, "self", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	done := time.Now()
	requests := func(n int, queued time.Time) []*writeRequest {
		out := make([]*writeRequest, n)
		for i := range out {
			out[i] = &writeRequest{queued: queued}
		}
		return out
	}
	before, after := done.Add(-time.Millisecond), done.Add(time.Millisecond)
	for _, tc := range []struct {
		name          string
		last          batchPace
		batch, queued int
		queuedAt      time.Time
		want          int
	}{
		// 8 answered, 8 that queued behind them: the 8 answered come back.
		{"clients come back", batchPace{size: 8, done: done, took: time.Second}, 8, 8, before, 16},
		// A lone client does not wait for anything.
		{"lone client", batchPace{size: 1, done: done, took: time.Second}, 1, 1, after, 1},
		// Never more than the last batch and those behind it.
		{"no more than expected", batchPace{size: 4, done: done, took: time.Second}, 6, 20, before, 10},
		// Fewer clients than before: the batch leaves when the wait is over.
		{"clients left", batchPace{size: 16, done: done, took: time.Millisecond}, 1, 0, after, 1},
		{"first batch", batchPace{}, 1, 3, after, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range requests(tc.queued, after) {
				c.writes <- req
			}
			defer func() {
				for len(c.writes) > 0 {
					<-c.writes
				}
			}()
			got := c.linger(ctx, requests(tc.batch, tc.queuedAt), tc.last)
			if len(got) != tc.want {
				t.Fatalf("batch of %d, want %d", len(got), tc.want)
			}
			if left := len(c.writes); left != tc.batch+tc.queued-tc.want {
				t.Fatalf("%d requests left queued, want %d", left, tc.batch+tc.queued-tc.want)
			}
		})
	}
}

// slowConsensus takes a while to commit, as a replicated log does.
type slowConsensus struct {
	*mapConsensus
	took time.Duration
}

func (s slowConsensus) Commit(ctx context.Context, ops []core.PinOp) error {
	time.Sleep(s.took)
	return s.mapConsensus.Commit(ctx, ops)
}

// Clients that each have one request in flight are answered together: the
// writer waits for the clients of the last batch to come back instead of
// starting a batch with the requests that queued behind it alone.
func TestWriterBatchesReturningClients(t *testing.T) {
	c, err := New(&config.Service{Cluster: config.DefaultClusterConfig()}, "self", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	cons := &mapConsensus{leader: "", pins: make(map[string]core.Pin)}
	c.plugins.Consensus = slowConsensus{mapConsensus: cons, took: 4 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); c.runWriter(ctx) }()
	defer func() { cancel(); <-done }()

	const clients, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			for j := range each {
				ci := testCid(t, byte(i*each+j))
				if _, err := c.write(ctx, &writeRequest{pin: core.Pin{Cid: ci, MaxDepth: -1, PinOptions: everywhere}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	commits, pins := cons.state()
	if pins != clients*each {
		t.Fatalf("%d pins in the pinset, want %d", pins, clients*each)
	}
	// Batches of 8 would take 25 commits; batches of 4 taking turns, 50.
	if commits > 38 {
		t.Fatalf("%d commits for %d pins from %d clients: the batches did not wait for the returning clients", commits, pins, clients)
	}
	t.Logf("%d commits for %d pins", commits, pins)
}

var everywhere = core.PinOptions{ReplicationFactorMin: -1, ReplicationFactorMax: -1}
