package network

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
)

// Metrics broadcasts the metrics a peer publishes about itself and hands
// those other peers publish to a callback.
//
// Metrics travel as one RPC call per peer (ServiceMonitor.LogMetrics, a
// MultiCall) rather than over a gossipsub topic:
//   - delivery is immediate and confirmed: a call returns once the peer
//     logged the metrics, while gossipsub only delivers once its mesh has
//     formed (a heartbeat or more after a connection), which would lose the
//     metrics a peer publishes right at start, when allocations need them;
//   - the publisher learns, per peer, which ones did not receive them;
//   - the receiver knows which peer called, so a peer cannot publish
//     metrics in another peer's name;
//   - a raft cluster has a few peers, and each publishes a handful of
//     metrics every few seconds: a call per peer is cheap, and no extra
//     library or protocol is needed.
type Metrics struct {
	r       *RPC
	receive func(core.Metric)
}

// NewMetrics registers ServiceMonitor on r. receive is called with each
// metric another peer publishes (and with this peer's own when it is among
// the destinations of PublishTo); ReceivedAt is set to the time of
// reception. receive may be called concurrently and must not block long.
func NewMetrics(r *RPC, receive func(core.Metric)) (*Metrics, error) {
	m := &Metrics{r: r, receive: receive}
	err := Handle(r, ServiceMonitor, MethodLogMetrics, func(ctx context.Context, in MetricsRequest) (Empty, error) {
		from, ok := RemotePeer(ctx)
		if !ok {
			return Empty{}, fmt.Errorf("unknown sender")
		}
		for _, metric := range in.Metrics {
			if metric.Peer != "" && metric.Peer != from {
				return Empty{}, fmt.Errorf("peer %s cannot publish metric %q of peer %s", from, metric.Name, metric.Peer)
			}
		}
		now := time.Now().UnixNano()
		for _, metric := range in.Metrics {
			metric.Peer = from
			metric.ReceivedAt = now
			m.receive(metric)
		}
		return Empty{}, nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Publish sends the metrics to every connected peer and returns each
// peer's error (nil when it received them).
func (m *Metrics) Publish(ctx context.Context, metrics ...core.Metric) map[peer.ID]error {
	peers := m.r.Host().Peers()
	errs := m.PublishTo(ctx, peers, metrics...)
	out := make(map[peer.ID]error, len(peers))
	for i, p := range peers {
		out[p] = errs[i]
	}
	return out
}

// PublishTo sends the metrics to the given peers (the consensus peerset,
// say, connected or not) and returns one error per peer.
func (m *Metrics) PublishTo(ctx context.Context, peers []peer.ID, metrics ...core.Metric) []error {
	self := m.r.Host().ID()
	ms := make([]core.Metric, len(metrics))
	for i, metric := range metrics {
		if metric.Peer == "" {
			metric.Peer = self
		}
		ms[i] = metric
	}
	return m.r.MultiCall(ctx, peers, ServiceMonitor, MethodLogMetrics, MetricsRequest{Metrics: ms}, nil)
}
