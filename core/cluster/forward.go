package cluster

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/network"
)

// Forwarding writes to the leader. A follower's pinset writer hands each
// batch to the raft leader's writer (network.MethodWrite), where it joins
// the requests of every other peer: the pinset lookup, the allocation and
// the commit are paid once for all of them, instead of once per peer and
// batch, and followers make no plugin calls for it at all.
//
// The follower answers as soon as the leader has committed, as IPFS
// Cluster's followers do: its own copy of the pinset shows the change once
// raft has replicated it, a few milliseconds later (the next batch or
// heartbeat). Waiting for that on the follower held each request about one
// more leader batch, and with 16 clients cost a quarter of the rate
// (docs/performance.md).
//
// Forwarding is an optimisation only: the consensus still forwards a
// follower's commits by itself. Whenever the leader is unknown, is this
// peer, or cannot be reached, the batch is written locally.

// leaderTTL is how long the answer of Consensus.Leader is reused.
const leaderTTL = time.Second

// leaderCache remembers the consensus leader between batches.
type leaderCache struct {
	mu sync.Mutex
	id core.PeerID
	at time.Time
}

// leader returns the leader to forward writes to, or "" to write locally.
func (c *Cluster) leader(ctx context.Context) core.PeerID {
	if c.rpc == nil {
		return ""
	}
	c.lead.mu.Lock()
	defer c.lead.mu.Unlock()
	if time.Since(c.lead.at) > leaderTTL {
		id, err := c.consensus().Leader(ctx)
		if err != nil {
			id = ""
		}
		c.lead.id, c.lead.at = id, time.Now()
	}
	if c.lead.id == c.self {
		return ""
	}
	return c.lead.id
}

// leaderFailed forgets the cached leader.
func (c *Cluster) leaderFailed() {
	c.lead.mu.Lock()
	c.lead.at = time.Time{}
	c.lead.mu.Unlock()
}

// forwardBatch has the leader write batch (validated requests). It returns
// false, having answered nothing, when the batch must be written locally:
// the leader was not reached, or the batch holds requests forwarded here
// (this peer was the leader when they were sent).
func (c *Cluster) forwardBatch(ctx context.Context, leader core.PeerID, batch []*writeRequest) bool {
	if slices.ContainsFunc(batch, func(r *writeRequest) bool { return r.forwarded }) {
		return false
	}
	ops := make([]network.WriteOp, len(batch))
	for i, req := range batch {
		ops[i] = network.WriteOp{Remove: req.remove, Pin: req.pin, Preset: req.preset}
		if req.remove {
			ops[i].Pin = core.Pin{Cid: req.pin.Cid}
		}
	}

	cctx, cancel := context.WithTimeout(ctx, c.cfg.PluginCallTimeout.D())
	defer cancel()
	res, err := c.rpc.Client().Write(cctx, leader, ops)
	if err != nil {
		// Unreached, or gone before it answered: the consensus finds the
		// leader by itself. A batch the leader did commit is committed
		// again, which a pin does not mind; an unpin then finds no pin.
		c.logger.Debug("forwarding writes to the leader failed; writing locally", "leader", leader, "error", err)
		c.leaderFailed()
		return false
	}
	for i, r := range res {
		if err := r.Err(); err != nil {
			batch[i].done <- writeResult{err: err}
			continue
		}
		// For an unpin, the pin that was removed.
		batch[i].done <- writeResult{pin: r.Pin}
	}
	return true
}

// Write serves a batch forwarded by another peer: it goes through this
// peer's writer with the requests of every other peer, and is never
// forwarded again.
func (s clusterService) Write(ctx context.Context, ops []network.WriteOp) ([]network.WriteResult, error) {
	reqs := make([]*writeRequest, len(ops))
	for i, op := range ops {
		reqs[i] = &writeRequest{remove: op.Remove, pin: op.Pin, preset: op.Preset, forwarded: true}
	}
	out := make([]network.WriteResult, len(ops))
	for i, res := range s.c.writeAll(ctx, reqs) {
		out[i] = network.NewWriteResult(res.pin, res.err)
	}
	return out, nil
}
