package balanced

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"github.com/pincluster/pincluster/core"
)

// This file holds the ordering of IPFS Cluster's balanced allocator
// (spec §13.10). IPFS Cluster hands out peers with a rotation over the
// sorted partitions: one peer from the current partition (recursively from
// its sub-partitions), then the next partition, skipping exhausted ones. The
// sequence a partition gives out does not depend on when it is asked, so the
// rotation is computed here as a merge: a partition's sequence is one peer
// from each of its sorted sub-partitions' sequences in turn.
//
// A request carries the metrics of every peer once and asks for many pins,
// so the partition tree is built once per request over every peer that has
// all the metrics, with the sequence of every partition. Each pin then needs
// the order of a subset of those peers (the tree without the pin's current
// and priority peers, or only its priority peers): partitions with none of
// their members in the subset disappear, partitions with all of them keep
// their precomputed sequence, and only the partitions holding an excluded
// peer are weighed, sorted and merged again. The result is exactly the order
// a tree built from the subset's metrics alone would give. Orders are
// memoised per subset because most pins of a batch exclude the same peers
// (usually none).

// tree is the partition tree of one request.
type tree struct {
	peers []core.PeerID       // eligible peers, sorted by ID
	index map[core.PeerID]int // position in peers
	top   []*node             // partitions by the first metric
	memo  map[string][]core.PeerID
}

// node is one partition: the peers sharing a value of a partitionable metric,
// or the single peer of a non-partitionable one.
type node struct {
	value    string
	members  []int   // indexes into tree.peers, ascending
	weights  []int64 // the weight each member contributes at this level
	children []*node // partitions by the next metric; nil at the last level
	full     *view   // the partition with all its members (see complete)
}

// newTree keeps, for every peer, the latest valid and unexpired metric of
// each name in by, and partitions the peers that have all of them.
func newTree(by []string, metrics []core.Metric, now time.Time) *tree {
	level := make(map[string]int, len(by))
	for i, n := range by {
		level[n] = i
	}
	latest := make(map[core.PeerID][]*core.Metric)
	for i := range metrics {
		m := &metrics[i]
		l, ok := level[m.Name]
		if !ok || !m.Valid || m.Expired(now) || m.Peer == "" {
			continue
		}
		per := latest[m.Peer]
		if per == nil {
			per = make([]*core.Metric, len(by))
			latest[m.Peer] = per
		}
		if old := per[l]; old == nil || newer(m, old) {
			per[l] = m
		}
	}

	t := &tree{index: make(map[core.PeerID]int), memo: make(map[string][]core.PeerID)}
	for p, per := range latest {
		if !slices.Contains(per, nil) {
			t.peers = append(t.peers, p)
		}
	}
	slices.SortFunc(t.peers, func(a, b core.PeerID) int { return strings.Compare(string(a), string(b)) })
	rows := make([][]*core.Metric, len(t.peers))
	all := make([]int, len(t.peers))
	for i, p := range t.peers {
		t.index[p] = i
		rows[i] = latest[p]
		all[i] = i
	}
	t.top = partition(rows, all, 0, len(by))
	everyone := make([]bool, len(t.peers))
	for i := range everyone {
		everyone[i] = true
	}
	complete(t.top, everyone)
	return t
}

// newer reports whether a should replace b as the latest metric of a peer.
func newer(a, b *core.Metric) bool {
	if a.ReceivedAt != b.ReceivedAt {
		return a.ReceivedAt > b.ReceivedAt
	}
	return a.Expire > b.Expire
}

// partition splits members by the metric at level, then each part by the
// following levels. Partitions come out in the order of their first member,
// which makes ties in the final sort deterministic.
func partition(rows [][]*core.Metric, members []int, level, levels int) []*node {
	var out []*node
	byValue := make(map[string]*node)
	for _, p := range members {
		m := rows[p][level]
		if m.Partitionable {
			if n, ok := byValue[m.Value]; ok {
				n.members = append(n.members, p)
				n.weights = append(n.weights, m.Weight)
				continue
			}
		}
		n := &node{value: m.Value, members: []int{p}, weights: []int64{m.Weight}}
		if m.Partitionable {
			byValue[m.Value] = n
		}
		out = append(out, n)
	}
	if level+1 < levels {
		for _, n := range out {
			n.children = partition(rows, n.members, level+1, levels)
		}
	}
	return out
}

// order returns the peers of a subset in allocation order. For kind 'p' the
// subset is the listed peers, for kind 'c' every peer but the listed ones;
// idx holds indexes into tree.peers, sorted.
func (t *tree) order(kind byte, idx []int) []core.PeerID {
	key := subsetKey(kind, idx)
	if o, ok := t.memo[key]; ok {
		return o
	}
	listed := kind == 'p'
	in := make([]bool, len(t.peers))
	for i := range in {
		in[i] = !listed
	}
	for _, i := range idx {
		in[i] = listed
	}
	seq, _ := arrange(t.top, in)
	o := make([]core.PeerID, len(seq))
	for i, p := range seq {
		o[i] = t.peers[p]
	}
	t.memo[key] = o
	return o
}

// subsetKey encodes a sorted list of peer indexes, prefixed by kind.
func subsetKey(kind byte, idx []int) string {
	b := make([]byte, 1, 1+len(idx)*2)
	b[0] = kind
	for _, i := range idx {
		b = binary.AppendUvarint(b, uint64(i))
	}
	return string(b)
}

// view is a partition seen through a subset of its members.
type view struct {
	value       string
	weight, agg int64
	seq         []int // the partition's peers in the order it gives them out
}

// see returns the view of n for the peers in the subset; ok is false when
// none of its members is in it. A partition whose members are all in the
// subset is the one of the full tree, computed once by complete.
func see(n *node, in []bool) (v view, ok bool) {
	v.value = n.value
	all := true
	for i, m := range n.members {
		if in[m] {
			ok = true
			v.weight += n.weights[i]
		} else {
			all = false
		}
	}
	switch {
	case !ok:
		return v, false
	case all && n.full != nil:
		return *n.full, true
	case n.children == nil:
		v.agg = v.weight
		v.seq = make([]int, 0, len(n.members))
		for _, m := range n.members {
			if in[m] {
				v.seq = append(v.seq, m)
			}
		}
	default:
		var sub int64
		v.seq, sub = arrange(n.children, in)
		v.agg = v.weight + sub
	}
	return v, true
}

// complete computes and keeps the full view of every partition, bottom up.
func complete(nodes []*node, all []bool) {
	for _, n := range nodes {
		complete(n.children, all)
		v, _ := see(n, all)
		n.full = &v
	}
}

// arrange sorts the partitions of one level as seen through the subset and
// merges their sequences: one peer from each partition in turn, skipping
// exhausted ones, until every peer is out. It also returns the sum of the
// partitions' aggregated weights.
func arrange(nodes []*node, in []bool) (seq []int, agg int64) {
	views := make([]view, 0, len(nodes))
	total := 0
	for _, n := range nodes {
		if v, ok := see(n, in); ok {
			views = append(views, v)
			agg += v.agg
			total += len(v.seq)
		}
	}
	// Weight descending, then aggregated weight descending, then value
	// ascending. The sort is stable so that partitions tied on all three
	// keep the order of their lowest peer ID.
	slices.SortStableFunc(views, func(a, b view) int {
		if c := cmp.Compare(b.weight, a.weight); c != 0 {
			return c
		}
		if c := cmp.Compare(b.agg, a.agg); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	seq = make([]int, 0, total)
	for round := 0; len(seq) < total; round++ {
		for _, v := range views {
			if round < len(v.seq) {
				seq = append(seq, v.seq[round])
			}
		}
	}
	return seq, agg
}
