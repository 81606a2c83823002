package network

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
)

type metricLog struct {
	mu  sync.Mutex
	got []core.Metric
}

func (l *metricLog) add(m core.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, m)
}

func (l *metricLog) all() []core.Metric {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]core.Metric(nil), l.got...)
}

func TestMetricsBroadcast(t *testing.T) {
	peers := startCluster(t, 3)
	logs := make([]*metricLog, len(peers))
	ms := make([]*Metrics, len(peers))
	for i, p := range peers {
		logs[i] = &metricLog{}
		m, err := NewMetrics(p.rpc, logs[i].add)
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	if _, err := NewMetrics(peers[0].rpc, func(core.Metric) {}); err == nil {
		t.Fatal("the monitor service was registered twice")
	}

	before := time.Now().UnixNano()
	expire := time.Now().Add(time.Minute).UnixNano()
	sent := []core.Metric{
		{Name: "freespace", Value: "1000", Valid: true, Expire: expire},
		{Name: "numpin", Value: "7", Valid: true, Expire: expire},
	}
	errs := ms[0].Publish(ctxT(t), sent...)
	if len(errs) != 2 || errs[peers[1].ID()] != nil || errs[peers[2].ID()] != nil {
		t.Fatalf("publish errors: %v", errs)
	}
	if sent[0].Peer != "" {
		t.Fatal("Publish changed the caller's metrics")
	}
	// Publish returns once every peer logged the metrics.
	for i := 1; i < 3; i++ {
		got := logs[i].all()
		if len(got) != 2 {
			t.Fatalf("peer %d received %d metrics", i, len(got))
		}
		for j, m := range got {
			if m.Name != sent[j].Name || m.Value != sent[j].Value || m.Peer != peers[0].ID() || !m.Valid ||
				m.Expire != expire || m.ReceivedAt < before {
				t.Fatalf("peer %d received %+v", i, m)
			}
		}
	}
	if len(logs[0].all()) != 0 {
		t.Fatal("Publish delivered to the publisher")
	}

	// Every peer publishes, the publisher included through PublishTo.
	all := []peer.ID{peers[0].ID(), peers[1].ID(), peers[2].ID()}
	for i := range peers {
		for j, err := range ms[i].PublishTo(ctxT(t), all, core.Metric{Name: "tag", Value: "x", Valid: true, Expire: expire}) {
			if err != nil {
				t.Fatalf("%d → %d: %v", i, j, err)
			}
		}
	}
	for i := range peers {
		from := map[peer.ID]bool{}
		for _, m := range logs[i].all() {
			if m.Name == "tag" {
				from[m.Peer] = true
			}
		}
		if len(from) != 3 {
			t.Fatalf("peer %d received tags from %v", i, from)
		}
	}
}

func TestMetricsSpoofAndDownPeer(t *testing.T) {
	peers := startCluster(t, 3)
	logs := make([]*metricLog, len(peers))
	ms := make([]*Metrics, len(peers))
	for i, p := range peers {
		logs[i] = &metricLog{}
		var err error
		if ms[i], err = NewMetrics(p.rpc, logs[i].add); err != nil {
			t.Fatal(err)
		}
	}
	// A peer cannot publish another's metrics.
	errs := ms[0].PublishTo(ctxT(t), []peer.ID{peers[1].ID()}, core.Metric{Name: "freespace", Peer: peers[2].ID(), Valid: true})
	if !IsRemote(errs[0]) {
		t.Fatalf("spoofed metric: %v", errs[0])
	}
	if len(logs[1].all()) != 0 {
		t.Fatal("a spoofed metric was delivered")
	}

	// A down peer gets an error; the others get the metric, within bounds.
	_ = peers[2].Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	errs = ms[0].PublishTo(ctx, []peer.ID{peers[1].ID(), peers[2].ID()}, core.Metric{Name: "numpin", Valid: true})
	if errs[0] != nil || errs[1] == nil || IsRemote(errs[1]) {
		t.Fatalf("errors %v", errs)
	}
	t.Logf("publish with a down peer took %v: %v", time.Since(start), errs[1])
	if got := logs[1].all(); len(got) != 1 || got[0].Peer != peers[0].ID() {
		t.Fatalf("received %+v", got)
	}
}
