package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pincluster/pincluster/core"
)

// allocation is one pin to allocate: its replication factors, the peers it
// is on now and the user's preferred peers.
type allocation struct {
	cid               core.Cid
	rmin, rmax        int
	current, priority []core.PeerID
	result            []core.PeerID
	err               error
}

// allocateAll chooses the peers of every allocation. It keeps the current
// allocations that are still alive, asks the allocator for the rest in one
// request and checks the answers against the replication factors.
func (c *Cluster) allocateAll(ctx context.Context, as []*allocation) {
	// The candidates are the members of the peerset with valid metrics.
	metrics := slices.DeleteFunc(c.monitor.allValid(time.Now()), func(m core.Metric) bool { return !c.members.has(m.Peer) })
	alive := make(map[core.PeerID]bool)
	for _, m := range metrics {
		alive[m.Peer] = true
	}
	type pending struct {
		a      *allocation
		kept   []core.PeerID
		needed int
		wanted int
	}
	var asks []pending
	req := core.AllocateRequest{Metrics: metrics}
	for _, a := range as {
		var kept []core.PeerID
		for _, p := range a.current {
			if alive[p] {
				kept = append(kept, p)
			}
		}
		needed, wanted := a.rmin-len(kept), a.rmax-len(kept)
		switch {
		case wanted < 0:
			a.result = kept[:a.rmax]
		case needed <= 0:
			a.result = kept
		default:
			asks = append(asks, pending{a, kept, needed, wanted})
			req.Pins = append(req.Pins, core.PinAllocation{
				Cid: a.cid, Current: kept, Priority: a.priority, Needed: needed, Wanted: wanted,
			})
		}
	}
	if len(asks) == 0 {
		return
	}
	res, err := c.allocator().Allocate(ctx, req)
	if err == nil && len(res) != len(asks) {
		err = fmt.Errorf("answered %d results for %d pins", len(res), len(asks))
	}
	for i, p := range asks {
		switch {
		case err != nil:
			p.a.err = fmt.Errorf("allocator: %w", err)
		case res[i].Error != "":
			p.a.err = errors.New(res[i].Error)
		case len(res[i].Peers) < p.needed:
			p.a.err = fmt.Errorf("not enough peers to allocate CID. Needed at least: %d. Wanted at most: %d. Available candidates: %d. See logs for more info.", p.needed, p.wanted, len(res[i].Peers))
		default:
			peers := res[i].Peers
			if len(peers) > p.wanted {
				peers = peers[:p.wanted]
			}
			p.a.result = append(p.kept, peers...)
		}
	}
}

// allocate chooses the peers of one pin.
func (c *Cluster) allocate(ctx context.Context, ci core.Cid, rmin, rmax int, current, priority []core.PeerID) ([]core.PeerID, error) {
	a := &allocation{cid: ci, rmin: rmin, rmax: rmax, current: current, priority: priority}
	c.allocateAll(ctx, []*allocation{a})
	return a.result, a.err
}

// allocateBatch allocates the write requests at the given indexes, whose
// current pins are in existing, and returns one error per index.
func (c *Cluster) allocateBatch(ctx context.Context, reqs []*writeRequest, existing []core.Pin, idx []int) []error {
	as := make([]*allocation, len(idx))
	for j, i := range idx {
		p := reqs[i].pin
		as[j] = &allocation{cid: p.Cid, rmin: p.ReplicationFactorMin, rmax: p.ReplicationFactorMax,
			current: existing[i].Allocations, priority: p.UserAllocations}
	}
	c.allocateAll(ctx, as)
	errs := make([]error, len(idx))
	for j, i := range idx {
		reqs[i].pin.Allocations = as[j].result
		errs[j] = as[j].err
	}
	return errs
}
