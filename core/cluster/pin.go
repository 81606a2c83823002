package cluster

import (
	"context"
	"strings"

	"github.com/pincluster/pincluster/core"
)

// Pin adds a CID to the pinset with the given options and returns the pin as
// committed, with its effective replication factors and allocations.
//
// It is IPFS Cluster's POST /pins/{cid}: the pin is recursive (max_depth
// -1) even when opts.Mode is direct, which the pin's mode still says.
// PinPath, IPFS Cluster's POST /pins/ipfs/{cid}, is the one that makes
// direct pins.
func (c *Cluster) Pin(ctx context.Context, ci core.Cid, opts core.PinOptions) (core.Pin, error) {
	pin := core.Pin{PinOptions: opts, Cid: ci, Type: core.DataType, MaxDepth: -1}
	return c.pin(ctx, pin, nil)
}

// PinPath resolves an /ipfs, /ipns or /ipld path and pins the result, to
// the depth opts.Mode says (direct: the root block only).
func (c *Cluster) PinPath(ctx context.Context, path string, opts core.PinOptions) (core.Pin, error) {
	ci, err := c.resolve(ctx, path)
	if err != nil {
		return core.Pin{}, err
	}
	pin := core.Pin{PinOptions: opts, Cid: ci, Type: core.DataType, MaxDepth: maxDepth(opts.Mode)}
	return c.pin(ctx, pin, nil)
}

// Unpin removes a CID from the pinset and returns the pin as it was (as
// read from the pinset, see fromState).
func (c *Cluster) Unpin(ctx context.Context, ci core.Cid) (core.Pin, error) {
	p, err := c.write(ctx, &writeRequest{remove: true, pin: core.Pin{Cid: ci}})
	if err != nil {
		return core.Pin{}, err
	}
	return fromState(p), nil
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

// pin validates, allocates and commits a pin through the batched writer.
// preset, when not nil, are allocations already decided (by /add, which sent
// the blocks there).
func (c *Cluster) pin(ctx context.Context, pin core.Pin, preset []core.PeerID) (core.Pin, error) {
	return c.write(ctx, &writeRequest{pin: pin, preset: preset})
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
