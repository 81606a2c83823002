// Package balanced is the allocator of IPFS Cluster's "balanced" kind: it
// partitions the candidate peers by the metrics named in allocate_by (for
// example by tag:group, then by freespace) and orders them so that
// consecutive allocations alternate between partitions, the heaviest
// partition first.
package balanced

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// Name is the name of this allocator in service.json.
const Name = "balanced"

// Version is the version of this plugin.
const Version = "1.0.0"

// Allocator orders candidate peers for pins. It keeps no state between
// requests: sdk.Configured implements its Describe, Configure (of the
// allocator.balanced section; it needs nothing from the host) and Close.
type Allocator struct {
	sdk.Configured[Config]
	now func() time.Time
}

// New returns an unconfigured allocator; Configure makes it usable.
func New() *Allocator {
	return &Allocator{
		Configured: sdk.Configured[Config]{
			Description: sdk.Description{
				Kind:             sdk.KindAllocator,
				Name:             Name,
				Version:          Version,
				ProtocolVersions: []int{sdk.ProtocolVersion},
				DefaultConfig:    DefaultConfigJSON(),
			},
			Parse: ParseConfig,
		},
		now: time.Now,
	}
}

// Allocate answers every pin of the request in order. For each pin the
// usable peers are those with a valid, unexpired metric for every
// allocate_by name; its priority peers come first, ordered among themselves,
// then the other usable peers that are not current allocations. At most
// Wanted peers are returned; fewer than Needed usable peers is an error for
// that pin only.
func (a *Allocator) Allocate(ctx context.Context, req core.AllocateRequest) ([]core.AllocateResult, error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, err
	}
	t := newTree(cfg.AllocateBy, req.Metrics, a.now())
	out := make([]core.AllocateResult, len(req.Pins))
	for i, pa := range req.Pins {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out[i] = t.allocate(pa)
	}
	return out, nil
}

// allocate answers one pin.
func (t *tree) allocate(pa core.PinAllocation) core.AllocateResult {
	// Current peers are left out; priority peers are ordered apart.
	var excluded, priority []int
	for _, p := range pa.Current {
		if i, ok := t.index[p]; ok && !slices.Contains(excluded, i) {
			excluded = append(excluded, i)
		}
	}
	for _, p := range pa.Priority {
		if i, ok := t.index[p]; ok && !slices.Contains(excluded, i) {
			priority = append(priority, i)
			excluded = append(excluded, i)
		}
	}
	slices.Sort(excluded)
	slices.Sort(priority)

	var first []core.PeerID
	if len(priority) > 0 {
		first = t.order('p', priority)
	}
	rest := t.order('c', excluded)

	available := len(first) + len(rest)
	if available < pa.Needed {
		err := fmt.Sprintf("not enough peers to allocate CID. Needed at least: %d. Wanted at most: %d. Available candidates: %d. See logs for more info.",
			pa.Needed, pa.Wanted, available)
		sdk.Logger().Warn("not enough peers to allocate",
			"cid", pa.Cid.String(), "needed", pa.Needed, "wanted", pa.Wanted,
			"priority_with_metrics", len(first), "candidates_with_metrics", len(rest),
			"current", len(pa.Current), "peers_with_all_metrics", len(t.peers))
		return core.AllocateResult{Error: err}
	}
	n := min(max(pa.Wanted, 0), available)
	peers := make([]core.PeerID, 0, n)
	peers = append(peers, first[:min(n, len(first))]...)
	peers = append(peers, rest[:n-len(peers)]...)
	return core.AllocateResult{Peers: peers}
}

var _ core.Allocator = (*Allocator)(nil)
