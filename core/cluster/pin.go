package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// Pin adds a CID to the pinset with the given options and returns the pin as
// committed, with its effective replication factors and allocations.
func (c *Cluster) Pin(ctx context.Context, ci core.Cid, opts core.PinOptions) (core.Pin, error) {
	pin := core.Pin{PinOptions: opts, Cid: ci, Type: core.DataType, MaxDepth: maxDepth(opts.Mode)}
	return c.pin(ctx, pin, nil)
}

// PinPath resolves an /ipfs, /ipns or /ipld path and pins the result.
func (c *Cluster) PinPath(ctx context.Context, path string, opts core.PinOptions) (core.Pin, error) {
	ci, err := c.resolve(ctx, path)
	if err != nil {
		return core.Pin{}, err
	}
	return c.Pin(ctx, ci, opts)
}

// Unpin removes a CID from the pinset and returns the pin as it was.
func (c *Cluster) Unpin(ctx context.Context, ci core.Cid) (core.Pin, error) {
	pin, err := c.consensus().GetPin(ctx, ci)
	if err != nil {
		return core.Pin{}, err
	}
	switch pin.Type {
	case core.ShardType:
		return core.Pin{}, errors.New("cannot unpin a shard directly. Unpin content root CID instead")
	case core.ClusterDAGType:
		return core.Pin{}, errors.New("cannot unpin a Cluster DAG directly. Unpin content root CID instead")
	}
	if err := c.consensus().Commit(ctx, []core.PinOp{{Remove: true, Pin: core.Pin{Cid: ci}}}); err != nil {
		return core.Pin{}, err
	}
	return pin, nil
}

// UnpinPath resolves a path and unpins the result.
func (c *Cluster) UnpinPath(ctx context.Context, path string) (core.Pin, error) {
	ci, err := c.resolve(ctx, path)
	if err != nil {
		return core.Pin{}, err
	}
	return c.Unpin(ctx, ci)
}

// resolve turns a path into a CID; /ipfs/<cid> needs no IPFS call.
func (c *Cluster) resolve(ctx context.Context, path string) (core.Cid, error) {
	rest, ok := strings.CutPrefix(path, "/ipfs/")
	if ok && !strings.Contains(strings.TrimSuffix(rest, "/"), "/") {
		if ci, err := core.DecodeCid(strings.TrimSuffix(rest, "/")); err == nil {
			return ci, nil
		}
	}
	return c.ipfs().Resolve(ctx, path)
}

func maxDepth(m core.PinMode) int {
	if m == core.PinModeDirect {
		return 0
	}
	return -1
}

// pin validates, allocates and commits a pin. preset, when not nil, are
// allocations already decided (by /add, which sent the blocks there).
func (c *Cluster) pin(ctx context.Context, pin core.Pin, preset []core.PeerID) (core.Pin, error) {
	if !pin.Cid.Defined() {
		return core.Pin{}, errors.New("cannot pin an undefined CID")
	}
	if pin.PinUpdate.Defined() && !pin.PinUpdate.Equals(pin.Cid) {
		from, err := c.consensus().GetPin(ctx, pin.PinUpdate)
		if err != nil {
			return core.Pin{}, err
		}
		if from.Type != core.DataType {
			return core.Pin{}, errors.New("pin-update only works on pins of type pin")
		}
		pin = updatedFrom(from, pin)
		preset = from.Allocations
	}
	if pin.ReplicationFactorMin == 0 {
		pin.ReplicationFactorMin = c.cfg.ReplicationFactorMin
	}
	if pin.ReplicationFactorMax == 0 {
		pin.ReplicationFactorMax = c.cfg.ReplicationFactorMax
	}
	if err := config.ValidateReplication(pin.ReplicationFactorMin, pin.ReplicationFactorMax); err != nil {
		return core.Pin{}, fmt.Errorf("cluster.%w", err)
	}
	if !pin.ExpireAt.IsZero() && pin.ExpireAt.Before(time.Now()) {
		return core.Pin{}, errors.New("pin.ExpireAt set before current time")
	}

	existing, err := c.consensus().GetPin(ctx, pin.Cid)
	exists := err == nil
	if err != nil && !errors.Is(err, core.ErrPinNotFound) {
		return core.Pin{}, err
	}
	if exists && existing.MaxDepth != 0 && pin.MaxDepth == 0 {
		return core.Pin{}, errors.New("cannot repin a CID which is already pinned in recursive mode (new pin is pinned as direct). Unpin it first.")
	}

	switch {
	case preset != nil:
		pin.Allocations = preset
	case pin.ReplicationFactorMin == -1:
		pin.Allocations = nil
	default:
		var current []core.PeerID
		if exists {
			current = existing.Allocations
		}
		allocs, err := c.allocate(ctx, pin.Cid, pin.ReplicationFactorMin, pin.ReplicationFactorMax, current, pin.UserAllocations)
		if err != nil {
			return core.Pin{}, err
		}
		pin.Allocations = allocs
	}
	pin.Timestamp = time.Now()
	if err := c.consensus().Commit(ctx, []core.PinOp{{Pin: pin}}); err != nil {
		return core.Pin{}, err
	}
	return pin, nil
}

// updatedFrom builds the pin that replaces from: everything is copied but
// the CID and the name and expiry the user gave.
func updatedFrom(from, to core.Pin) core.Pin {
	out := from
	out.Cid = to.Cid
	out.PinUpdate = from.Cid
	out.UserAllocations = to.UserAllocations
	if to.Name != "" {
		out.Name = to.Name
	}
	if !to.ExpireAt.IsZero() {
		out.ExpireAt = to.ExpireAt
	}
	return out
}

// allocate chooses the peers of a pin: it keeps the current allocations that
// are still alive, asks the allocator for the rest and checks the result
// against the replication factors.
func (c *Cluster) allocate(ctx context.Context, ci core.Cid, rmin, rmax int, current, priority []core.PeerID) ([]core.PeerID, error) {
	metrics := c.monitor.allValid(time.Now())
	alive := make(map[core.PeerID]bool)
	for _, m := range metrics {
		alive[m.Peer] = true
	}
	var kept []core.PeerID
	for _, p := range current {
		if alive[p] {
			kept = append(kept, p)
		}
	}
	needed, wanted := rmin-len(kept), rmax-len(kept)
	if wanted < 0 {
		return kept[:rmax], nil
	}
	if needed <= 0 {
		return kept, nil
	}
	res, err := c.allocator().Allocate(ctx, core.AllocateRequest{
		Metrics: metrics,
		Pins: []core.PinAllocation{{
			Cid: ci, Current: kept, Priority: priority, Needed: needed, Wanted: wanted,
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("allocator: %w", err)
	}
	if len(res) != 1 {
		return nil, fmt.Errorf("allocator: answered %d results for 1 pin", len(res))
	}
	if res[0].Error != "" {
		return nil, errors.New(res[0].Error)
	}
	if len(res[0].Peers) < needed {
		return nil, fmt.Errorf("not enough peers to allocate CID. Needed at least: %d. Wanted at most: %d. Available candidates: %d. See logs for more info.", needed, wanted, len(res[0].Peers))
	}
	if len(res[0].Peers) > wanted {
		res[0].Peers = res[0].Peers[:wanted]
	}
	return append(kept, res[0].Peers...), nil
}
