// Package rendezvous is an allocator that places each pin by rendezvous
// (highest random weight) hashing: every candidate peer gets a score that
// is a hash of the pair (CID, peer), and a pin goes to the peers with the
// highest scores. The choice depends only on the CID and on which peers
// are candidates, never on metric values or on earlier pins: pins spread
// evenly over the peers, and a peer joining or leaving moves only the pins
// that it gains or loses.
package rendezvous

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/pincluster/pincluster/plugins/sdk"
)

// Name is the name of this allocator in service.json.
const Name = "rendezvous"

// Version is the version of this plugin.
const Version = "1.0.0"

// Allocator places pins by rendezvous hashing. It keeps no state between
// requests: sdk.Configured implements its Describe, Configure (of the
// allocator.rendezvous section; it needs nothing from the host) and Close.
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

// candidate is a peer that may receive pins, with the hash of its ID.
type candidate struct {
	peer sdk.PeerID
	hash uint64
}

// Allocate answers every pin of the request in order. The candidates are
// the peers whose latest metric of the configured name is valid and
// unexpired. For each pin, its priority peers that are candidates come
// first, then the other candidates, each group by decreasing score; the
// pin's current peers are left out. At most Wanted peers are returned;
// fewer than Needed candidates is an error for that pin only.
func (a *Allocator) Allocate(ctx context.Context, req sdk.AllocateRequest) ([]sdk.AllocateResult, error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, err
	}
	cands := candidates(cfg.Metric, req.Metrics, a.now())
	index := make(map[sdk.PeerID]int, len(cands))
	for i, c := range cands {
		index[c.peer] = i
	}
	out := make([]sdk.AllocateResult, len(req.Pins))
	var scratch []scored
	for i, pa := range req.Pins {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out[i], scratch = allocate(pa, cands, index, scratch)
	}
	return out, nil
}

// candidates returns the peers whose latest metric named name is valid and
// not expired at now, in peer ID order.
func candidates(name string, metrics []sdk.Metric, now time.Time) []candidate {
	latest := map[sdk.PeerID]sdk.Metric{}
	for _, m := range metrics {
		if m.Name != name {
			continue
		}
		if prev, ok := latest[m.Peer]; !ok || m.ReceivedAt > prev.ReceivedAt {
			latest[m.Peer] = m
		}
	}
	out := make([]candidate, 0, len(latest))
	for p, m := range latest {
		if m.Valid && !m.Expired(now) {
			out = append(out, candidate{peer: p, hash: hashOf([]byte(p))})
		}
	}
	slices.SortFunc(out, func(x, y candidate) int { return cmp.Compare(x.peer, y.peer) })
	return out
}

// hashOf is the first 8 bytes, big-endian, of the SHA-256 of b.
func hashOf(b []byte) uint64 {
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// Score is the rendezvous weight of a peer for a CID, given the hashOf
// their binary forms: the SplitMix64 finaliser of their XOR.
func Score(cidHash, peerHash uint64) uint64 {
	z := cidHash ^ peerHash
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// scored is a candidate (by index) with its score for one pin.
type scored struct {
	i     int
	score uint64
}

// before orders by decreasing score, then by peer ID.
func before(cands []candidate) func(x, y scored) int {
	return func(x, y scored) int {
		if c := cmp.Compare(y.score, x.score); c != 0 {
			return c
		}
		return cmp.Compare(cands[x.i].peer, cands[y.i].peer)
	}
}

// allocate answers one pin. scratch is reused between pins.
func allocate(pa sdk.PinAllocation, cands []candidate, index map[sdk.PeerID]int, scratch []scored) (sdk.AllocateResult, []scored) {
	// The candidates left out of the ranking: current and priority
	// peers. A pin names few of them: a slice beats a map.
	var excluded []int
	for _, p := range pa.Current {
		if i, ok := index[p]; ok && !slices.Contains(excluded, i) {
			excluded = append(excluded, i)
		}
	}
	ch := hashOf(pa.Cid.Bytes())
	order := before(cands)

	// Priority peers first, among themselves by score.
	var first []scored
	for _, p := range pa.Priority {
		if i, ok := index[p]; ok && !slices.Contains(excluded, i) {
			excluded = append(excluded, i)
			first = append(first, scored{i, Score(ch, cands[i].hash)})
		}
	}
	slices.SortFunc(first, order)

	available := len(first) + len(cands) - len(excluded)
	if available < pa.Needed {
		sdk.Logger().Warn("not enough peers to allocate",
			"cid", pa.Cid.String(), "needed", pa.Needed, "wanted", pa.Wanted,
			"candidates", len(cands), "current", len(pa.Current), "usable_priority", len(first))
		return sdk.AllocateResult{Error: fmt.Sprintf(
			"not enough peers to allocate CID. Needed at least: %d. Wanted at most: %d. Available candidates: %d. See logs for more info.",
			pa.Needed, pa.Wanted, available)}, scratch
	}
	n := min(max(pa.Wanted, 0), available)
	peers := make([]sdk.PeerID, 0, n)
	for _, s := range first[:min(n, len(first))] {
		peers = append(peers, cands[s.i].peer)
	}

	// The rest: the k best of the other candidates, kept sorted in
	// scratch by insertion (k is a replication factor: small).
	k := n - len(peers)
	top := scratch[:0]
	for i, c := range cands {
		if k == 0 {
			break
		}
		if len(excluded) > 0 && slices.Contains(excluded, i) {
			continue
		}
		s := scored{i, Score(ch, c.hash)}
		if len(top) == k && order(s, top[k-1]) >= 0 {
			continue
		}
		at, _ := slices.BinarySearchFunc(top, s, order)
		if len(top) < k {
			top = append(top, scored{})
		}
		copy(top[at+1:], top[at:len(top)-1])
		top[at] = s
	}
	for _, s := range top {
		peers = append(peers, cands[s.i].peer)
	}
	return sdk.AllocateResult{Peers: peers}, top
}

var _ sdk.Allocator = (*Allocator)(nil)
