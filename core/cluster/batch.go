package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// The pinset writer: concurrent pin and unpin requests are queued and
// handled in batches by one goroutine, so that each batch costs one pinset
// lookup, one allocation and one commit across the plugin boundary however
// many requests it holds. Requests arriving while a batch is in flight form
// the next one, which waits a moment for the clients the last batch
// answered when they are likely to come back (linger); a lone request is
// not delayed.

// maxWriteBatch bounds the requests handled together.
const maxWriteBatch = 1024

type writeRequest struct {
	ctx    context.Context
	remove bool
	pin    core.Pin
	// preset are allocations decided by the caller (nil: allocate).
	preset []core.PeerID
	// forwarded requests come from another peer's writer, prepared: they
	// are written here, never forwarded again.
	forwarded bool
	// queued is when the request joined the writer's queue.
	queued time.Time
	done   chan writeResult
}

type writeResult struct {
	pin core.Pin
	err error
}

var errShuttingDown = errors.New("the peer is shutting down")

// write queues a request and waits for its result.
func (c *Cluster) write(ctx context.Context, req *writeRequest) (core.Pin, error) {
	res := c.writeAll(ctx, []*writeRequest{req})[0]
	return res.pin, res.err
}

// writeAll queues requests and waits for their results, in order.
func (c *Cluster) writeAll(ctx context.Context, reqs []*writeRequest) []writeResult {
	out := make([]writeResult, len(reqs))
	queued := 0
queue:
	for _, req := range reqs {
		req.ctx = ctx
		req.done = make(chan writeResult, 1)
		req.queued = time.Now()
		select {
		case c.writes <- req:
			queued++
		case <-ctx.Done():
			break queue
		case <-c.stopping:
			break queue
		}
	}
	for i, req := range reqs {
		if i >= queued {
			out[i].err = ctx.Err()
			if out[i].err == nil {
				out[i].err = errShuttingDown
			}
			continue
		}
		select {
		case out[i] = <-req.done:
		case <-ctx.Done():
			out[i].err = ctx.Err()
		}
	}
	return out
}

// writeWorkers is how many batches this peer may commit at once. One is
// fastest on one peer, with the plugins in process or not and the raft log
// on disk or in memory: requests that arrive while a batch is committed all
// join the next one, twice as many as with two in flight, and every batch
// costs three calls across the plugin boundary (BenchmarkPluginBoundary;
// docs/performance.md).
const writeWorkers = 1

// forwardWorkers is how many batches a follower may have at the leader at
// once. The leader's writer joins them with its own requests, so they wait
// there rather than in the follower's queue (BenchmarkClusterPins).
const forwardWorkers = 4

// runWriter forms batches of queued writes until the cluster stops. A CID
// is in at most one batch in flight, so that a later request for it sees
// the result of an earlier one.
func (c *Cluster) runWriter(ctx context.Context) {
	var (
		mu       sync.Mutex
		inFlight = make(map[string]bool)
		local    = make(chan struct{}, writeWorkers)
		forward  = make(chan struct{}, forwardWorkers)
		wg       sync.WaitGroup
		carry    []*writeRequest
		// pace is the last batch answered (guarded by mu).
		pace batchPace
	)
	defer wg.Wait()
	for {
		var batch []*writeRequest
		if len(carry) > 0 {
			batch, carry = carry, nil
		} else {
			select {
			case <-ctx.Done():
				c.failQueued()
				return
			case req := <-c.writes:
				batch = append(batch, req)
			}
		}
		// Wait for a free slot; requests keep queuing meanwhile.
		leader := c.leader(ctx)
		slots := local
		if leader != "" {
			slots = forward
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			for _, req := range batch {
				req.done <- writeResult{err: errShuttingDown}
			}
			c.failQueued()
			return
		}
	drain:
		for len(batch) < maxWriteBatch {
			select {
			case req := <-c.writes:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		if leader == "" {
			mu.Lock()
			last := pace
			mu.Unlock()
			batch = c.linger(ctx, batch, last)
		}
		mu.Lock()
		kept := batch[:0]
		for _, req := range batch {
			k := req.pin.Cid.KeyString()
			if inFlight[k] {
				carry = append(carry, req)
				continue
			}
			inFlight[k] = true
			kept = append(kept, req)
		}
		mu.Unlock()
		if len(kept) == 0 {
			<-slots
			// Everything waits for batches in flight: let one finish.
			time.Sleep(time.Millisecond)
			continue
		}
		wg.Add(1)
		go func(batch []*writeRequest) {
			defer wg.Done()
			start := time.Now()
			keys := make([]string, len(batch))
			for i, req := range batch {
				keys[i] = req.pin.Cid.KeyString()
			}
			live := c.validate(batch)
			if len(live) > 0 && (leader == "" || !c.forwardBatch(ctx, leader, live)) {
				if leader != "" {
					// Forwarding failed: commit here, in a local slot.
					local <- struct{}{}
				}
				c.commitBatch(ctx, live)
				if leader != "" {
					<-local
				}
			}
			mu.Lock()
			for _, k := range keys {
				delete(inFlight, k)
			}
			now := time.Now()
			pace = batchPace{size: len(batch), done: now, took: now.Sub(start)}
			mu.Unlock()
			<-slots
		}(kept)
	}
}

// batchPace describes the last batch the writer answered.
type batchPace struct {
	size int
	done time.Time
	took time.Duration
}

// maxLinger bounds how long a batch waits for more requests.
const maxLinger = 2 * time.Millisecond

// linger lets a batch wait a little for the clients the last batch
// answered. Without it, N clients each with one request in flight settle
// into two batches of N/2 taking turns: the requests that queued behind a
// batch start the next one as soon as it ends, a moment before the clients
// it answered come back. Every batch costs the same calls across the
// plugin boundary whatever its size, so one batch of N is cheaper than two
// of N/2. The batch waits while it holds fewer requests than the last
// batch and the requests that queued behind it did, for at most half as
// long as the last batch took (and maxLinger): a lone client, or fewer
// clients than before, waits at most once.
func (c *Cluster) linger(ctx context.Context, batch []*writeRequest, last batchPace) []*writeRequest {
	want := last.size
	for _, req := range batch {
		if req.queued.Before(last.done) {
			want++
		}
	}
	want = min(want, maxWriteBatch)
	if len(batch) >= want {
		return batch
	}
	timer := time.NewTimer(min(last.took/2, maxLinger))
	defer timer.Stop()
	for len(batch) < want {
		select {
		case req := <-c.writes:
			batch = append(batch, req)
		case <-timer.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// failQueued answers the requests still queued when the writer stops.
func (c *Cluster) failQueued() {
	for {
		select {
		case req := <-c.writes:
			req.done <- writeResult{err: errShuttingDown}
		default:
			return
		}
	}
}

// validate answers the requests whose context is done or whose pin is
// invalid, and returns the others with defaults applied.
func (c *Cluster) validate(batch []*writeRequest) []*writeRequest {
	live := batch[:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.done <- writeResult{err: err}
			continue
		}
		if !req.remove && !req.forwarded {
			if err := c.prepare(req.ctx, req); err != nil {
				req.done <- writeResult{err: err}
				continue
			}
		}
		live = append(live, req)
	}
	return live
}

// commitBatch looks up, allocates and commits a batch of valid requests.
func (c *Cluster) commitBatch(ctx context.Context, live []*writeRequest) {
	fail := func(reqs []*writeRequest, err error) {
		for _, req := range reqs {
			req.done <- writeResult{err: err}
		}
	}

	cctx, cancel := context.WithTimeout(ctx, c.cfg.PluginCallTimeout.D())
	defer cancel()
	cids := make([]core.Cid, len(live))
	for i, req := range live {
		cids[i] = req.pin.Cid
	}
	guesses := c.allocateAhead(cctx, live)
	existing, err := c.consensus().GetPins(cctx, cids)
	if err == nil && len(existing) != len(cids) {
		err = fmt.Errorf("consensus answered %d pins for %d CIDs", len(existing), len(cids))
	}
	ahead := guesses()
	if err != nil {
		fail(live, err)
		return
	}

	// Check each request against the pin it replaces.
	var toAllocate []int
	ok := live[:0]
	okExisting := existing[:0]
	for i, req := range live {
		ex := existing[i]
		if req.remove {
			if !ex.Cid.Defined() {
				req.done <- writeResult{err: core.ErrPinNotFound}
				continue
			}
			if err := checkRemovable(ex); err != nil {
				req.done <- writeResult{err: err}
				continue
			}
			req.pin = ex
		} else {
			if ex.Cid.Defined() && ex.MaxDepth != 0 && req.pin.MaxDepth == 0 {
				req.done <- writeResult{err: errors.New("cannot repin a CID which is already pinned in recursive mode (new pin is pinned as direct). Unpin it first.")}
				continue
			}
			switch {
			case req.preset != nil:
				req.pin.Allocations = req.preset
			case req.pin.ReplicationFactorMin == -1:
				req.pin.Allocations = nil
			case ahead[i] != nil && len(ex.Allocations) == 0:
				// New, or allocated nowhere: what was asked ahead holds.
				if err := ahead[i].err; err != nil {
					req.done <- writeResult{err: err}
					continue
				}
				req.pin.Allocations = ahead[i].result
			default:
				toAllocate = append(toAllocate, len(ok))
			}
		}
		ok = append(ok, req)
		okExisting = append(okExisting, ex)
	}
	live = ok

	// One allocation request for every pin that needs one.
	if len(toAllocate) > 0 {
		errs := c.allocateBatch(cctx, live, okExisting, toAllocate)
		failed := make(map[int]bool)
		for j, err := range errs {
			if err != nil {
				failed[toAllocate[j]] = true
				live[toAllocate[j]].done <- writeResult{err: err}
			}
		}
		if len(failed) > 0 {
			kept := live[:0]
			for i, req := range live {
				if !failed[i] {
					kept = append(kept, req)
				}
			}
			live = kept
		}
	}
	if len(live) == 0 {
		return
	}

	// The pinset keeps times to the second, as IPFS Cluster's does (in
	// the local time zone); the answer to the request shows the instant
	// the pin was made, as IPFS Cluster's does.
	now := time.Now()
	ops := make([]core.PinOp, len(live))
	for i, req := range live {
		if req.remove {
			ops[i] = core.PinOp{Remove: true, Pin: core.Pin{Cid: req.pin.Cid}}
			continue
		}
		req.pin.Timestamp = now
		stored := req.pin
		stored.Timestamp, stored.ExpireAt = toSecond(now), toSecond(req.pin.ExpireAt)
		ops[i] = core.PinOp{Pin: stored}
	}
	if err := c.consensus().Commit(cctx, ops); err != nil {
		fail(live, err)
		return
	}
	for _, req := range live {
		req.done <- writeResult{pin: req.pin}
	}
}

// allocateAhead asks the allocator for the pins of batch that need an
// allocation, as if none of them were pinned yet, while the caller looks
// the batch up in the pinset: for a new pin, which is the common case, the
// answer does not depend on the lookup, and the batch saves one round
// trip. The returned function waits for the answers, indexed like batch
// (nil where nothing was asked). A pin found already allocated is
// allocated again from its current peers.
func (c *Cluster) allocateAhead(ctx context.Context, batch []*writeRequest) func() []*allocation {
	out := make([]*allocation, len(batch))
	var as []*allocation
	for i, req := range batch {
		if req.remove || req.preset != nil || req.pin.ReplicationFactorMin == -1 {
			continue
		}
		p := req.pin
		out[i] = &allocation{cid: p.Cid, rmin: p.ReplicationFactorMin, rmax: p.ReplicationFactorMax, priority: p.UserAllocations}
		as = append(as, out[i])
	}
	if len(as) == 0 {
		return func() []*allocation { return out }
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.allocateAll(ctx, as)
	}()
	return func() []*allocation {
		<-done
		return out
	}
}

// prepare applies defaults and checks a pin before it is looked up.
func (c *Cluster) prepare(ctx context.Context, req *writeRequest) error {
	pin := &req.pin
	if !pin.Cid.Defined() {
		return errors.New("cannot pin an undefined CID")
	}
	if pin.PinUpdate.Defined() && !pin.PinUpdate.Equals(pin.Cid) {
		from, err := c.consensus().GetPin(ctx, pin.PinUpdate)
		if err != nil {
			return err
		}
		if from.Type != core.DataType {
			return errors.New("pin-update only works on pins of type pin")
		}
		*pin = updatedFrom(from, *pin)
		req.preset = from.Allocations
	}
	var err error
	if pin.ReplicationFactorMin, pin.ReplicationFactorMax, err = c.replication(pin.PinOptions); err != nil {
		return err
	}
	if !pin.ExpireAt.IsZero() && pin.ExpireAt.Before(time.Now()) {
		return errors.New("pin.ExpireAt set before current time")
	}
	return nil
}

// replication returns the replication factors of opts, the configured
// ones where opts has none, once checked.
func (c *Cluster) replication(opts core.PinOptions) (rmin, rmax int, err error) {
	rmin, rmax = opts.ReplicationFactorMin, opts.ReplicationFactorMax
	if rmin == 0 {
		rmin = c.cfg.ReplicationFactorMin
	}
	if rmax == 0 {
		rmax = c.cfg.ReplicationFactorMax
	}
	if err := config.ValidateReplication(rmin, rmax); err != nil {
		return 0, 0, fmt.Errorf("cluster.%w", err)
	}
	return rmin, rmax, nil
}

func checkRemovable(p core.Pin) error {
	switch p.Type {
	case core.ShardType:
		return errors.New("cannot unpin a shard directly. Unpin content root CID instead")
	case core.ClusterDAGType:
		return errors.New("cannot unpin a Cluster DAG directly. Unpin content root CID instead")
	}
	return nil
}

// toSecond is t without its fraction of a second; the zero time stays zero.
func toSecond(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.Unix(t.Unix(), 0)
}
