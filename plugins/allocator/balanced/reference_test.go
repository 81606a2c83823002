package balanced

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pincluster/pincluster/core"
)

// This file checks the merge-based ordering against a direct rendition of
// IPFS Cluster's stateful rotation (partitionMetrics / chooseNext), built
// from scratch for each peer set. Where IPFS Cluster leaves ties to map
// order, the reference uses the same deterministic rule as the allocator:
// partitions in the order of their lowest peer ID, peers of a partition in
// ID order.

type refPartition struct {
	value       string
	weight, agg int64
	peers       []core.PeerID // sorted; used[i] marks peers handed out
	used        []bool
	sub         *refMetric
}

type refMetric struct {
	partitions []*refPartition
	cur        int
	noMore     bool
}

// refPartitionMetrics takes, per metric name, one metric per peer.
func refPartitionMetrics(set map[string][]core.Metric, by []string) *refMetric {
	pm := &refMetric{}
	ms := slices.Clone(set[by[0]])
	sort.Slice(ms, func(i, j int) bool { return ms[i].Peer < ms[j].Peer })
	byValue := map[string]*refPartition{}
	for _, m := range ms {
		if m.Partitionable {
			if p, ok := byValue[m.Value]; ok {
				p.peers = append(p.peers, m.Peer)
				p.used = append(p.used, false)
				p.weight += m.Weight
				p.agg += m.Weight
				continue
			}
		}
		p := &refPartition{value: m.Value, weight: m.Weight, agg: m.Weight, peers: []core.PeerID{m.Peer}, used: []bool{false}}
		if m.Partitionable {
			byValue[m.Value] = p
		}
		pm.partitions = append(pm.partitions, p)
	}
	if len(by) > 1 {
		for _, p := range pm.partitions {
			filtered := map[string][]core.Metric{}
			for name, list := range set {
				if name == by[0] {
					continue
				}
				for _, m := range list {
					if slices.Contains(p.peers, m.Peer) {
						filtered[name] = append(filtered[name], m)
					}
				}
			}
			p.sub = refPartitionMetrics(filtered, by[1:])
			for _, sp := range p.sub.partitions {
				p.agg += sp.agg
			}
		}
	}
	sort.SliceStable(pm.partitions, func(i, j int) bool {
		a, b := pm.partitions[i], pm.partitions[j]
		if a.weight == b.weight {
			if a.agg == b.agg {
				return a.value < b.value
			}
			return b.agg < a.agg
		}
		return b.weight < a.weight
	})
	return pm
}

func (pm *refMetric) chooseNext() core.PeerID {
	lenp := len(pm.partitions)
	if lenp == 0 || pm.noMore {
		return ""
	}
	var chosen core.PeerID
	cur := pm.partitions[pm.cur]
	done := 0
	for {
		if cur.sub != nil {
			chosen = cur.sub.chooseNext()
		} else {
			for i, u := range cur.used {
				if !u {
					chosen = cur.peers[i]
					cur.used[i] = true
					break
				}
			}
		}
		pm.cur = (pm.cur + 1) % lenp
		cur = pm.partitions[pm.cur]
		done++
		if chosen != "" {
			break
		}
		if done == lenp {
			pm.noMore = true
			break
		}
	}
	return chosen
}

func (pm *refMetric) sortedPeers() []core.PeerID {
	var out []core.PeerID
	for {
		p := pm.chooseNext()
		if p == "" {
			return out
		}
		out = append(out, p)
	}
}

func TestOrderMatchesRotation(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 13))
	for round := range 300 {
		levels := 1 + rng.IntN(3)
		by := []string{"tag:a", "tag:b", "freespace"}[3-levels:]
		set := map[string][]core.Metric{}
		var all []core.Metric
		for i := range 1 + rng.IntN(25) {
			p := fmt.Sprintf("q%d-%d", round, i)
			for _, name := range by {
				var m core.Metric
				if strings.HasPrefix(name, "tag:") {
					m = metric(name, p, fmt.Sprint(rng.IntN(4)), int64(rng.IntN(3)), rng.IntN(8) != 0)
				} else {
					n := int64(rng.IntN(6) * 10)
					m = metric(name, p, fmt.Sprint(n), n, rng.IntN(8) == 0)
				}
				set[name] = append(set[name], m)
				all = append(all, m)
			}
		}
		want := refPartitionMetrics(set, by).sortedPeers()
		got := newTree(by, all, testNow).order('c', nil)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d (%v): got %v, rotation gives %v", round, by, nameList(got), nameList(want))
		}
	}
}
