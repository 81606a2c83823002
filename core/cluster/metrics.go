package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// monitor keeps the latest metric of each name for each peer and the alerts
// raised when a peer's metrics expire.
type monitor struct {
	mu      sync.RWMutex
	metrics map[string]map[core.PeerID]core.Metric
	alerts  []core.Alert
}

func newMonitor() *monitor {
	return &monitor{metrics: make(map[string]map[core.PeerID]core.Metric)}
}

const maxAlerts = 1000

func (m *monitor) put(metric core.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byPeer := m.metrics[metric.Name]
	if byPeer == nil {
		byPeer = make(map[core.PeerID]core.Metric)
		m.metrics[metric.Name] = byPeer
	}
	byPeer[metric.Peer] = metric
}

// forget drops every metric of p.
func (m *monitor) forget(p core.PeerID) {
	m.retain(func(q core.PeerID) bool { return q != p })
}

// retain drops the metrics of every peer keep refuses, without alerts.
func (m *monitor) retain(keep func(core.PeerID) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, byPeer := range m.metrics {
		for p := range byPeer {
			if !keep(p) {
				delete(byPeer, p)
			}
		}
	}
}

// names returns every metric name seen.
func (m *monitor) names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.metrics))
	for n := range m.metrics {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// latest returns the valid, unexpired metrics of one name, sorted by peer.
func (m *monitor) latest(name string, now time.Time) []core.Metric {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []core.Metric{}
	for _, metric := range m.metrics[name] {
		if metric.Valid && !metric.Expired(now) {
			out = append(out, metric)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// allValid returns every valid, unexpired metric of every name.
func (m *monitor) allValid(now time.Time) []core.Metric {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []core.Metric
	for _, byPeer := range m.metrics {
		for _, metric := range byPeer {
			if metric.Valid && !metric.Expired(now) {
				out = append(out, metric)
			}
		}
	}
	return out
}

// putIfAbsent records metric unless a metric of its name is already held
// for its peer.
func (m *monitor) putIfAbsent(metric core.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byPeer := m.metrics[metric.Name]
	if byPeer == nil {
		byPeer = make(map[core.PeerID]core.Metric)
		m.metrics[metric.Name] = byPeer
	}
	if _, ok := byPeer[metric.Peer]; !ok {
		byPeer[metric.Peer] = metric
	}
}

// checkExpired raises one alert per expired metric, this peer's included
// (its own metrics expire when an informer keeps failing, for example while
// IPFS is unreachable), and forgets the metric.
// It returns the peers whose metrics expired.
func (m *monitor) checkExpired(now time.Time) []core.PeerID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var expired []core.PeerID
	for _, byPeer := range m.metrics {
		for p, metric := range byPeer {
			if !metric.Expired(now) {
				continue
			}
			if len(m.alerts) >= maxAlerts {
				m.alerts = m.alerts[:0]
			}
			m.alerts = append(m.alerts, core.Alert{Metric: metric, TriggeredAt: now})
			delete(byPeer, p)
			if !slices.Contains(expired, p) {
				expired = append(expired, p)
			}
		}
	}
	return expired
}

// recentAlerts returns the alerts, most recent first.
func (m *monitor) recentAlerts() []core.Alert {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]core.Alert, len(m.alerts))
	for i, a := range m.alerts {
		out[len(out)-1-i] = a
	}
	return out
}

// informer measures one aspect of this peer.
type informer interface {
	// measure returns the metrics without peer or times. When they cannot
	// be taken it returns an error and the metrics it failed to take, with
	// only their names set.
	measure(ctx context.Context, c *Cluster) ([]core.Metric, error)
	ttl() time.Duration
}

type diskInformer struct {
	MetricTTL  config.Duration `json:"metric_ttl"`
	MetricType string          `json:"metric_type"`
}

func (d *diskInformer) ttl() time.Duration { return d.MetricTTL.D() }

func (d *diskInformer) measure(ctx context.Context, c *Cluster) ([]core.Metric, error) {
	st, err := c.ipfs().RepoStat(ctx)
	if err != nil {
		return []core.Metric{{Name: d.MetricType}}, err
	}
	var w int64
	switch d.MetricType {
	case "reposize":
		w = -int64(st.RepoSize)
		return []core.Metric{{Name: "reposize", Value: strconv.FormatUint(st.RepoSize, 10), Weight: w, Valid: true}}, nil
	default:
		if st.StorageMax > st.RepoSize {
			w = int64(st.StorageMax - st.RepoSize)
		}
		return []core.Metric{{Name: "freespace", Value: strconv.FormatInt(w, 10), Weight: w, Valid: w > 0}}, nil
	}
}

type tagsInformer struct {
	MetricTTL config.Duration   `json:"metric_ttl"`
	Tags      map[string]string `json:"tags"`
}

func (t *tagsInformer) ttl() time.Duration { return t.MetricTTL.D() }

func (t *tagsInformer) measure(context.Context, *Cluster) ([]core.Metric, error) {
	if len(t.Tags) == 0 {
		return []core.Metric{{Name: "tag:none", Valid: false}}, nil
	}
	out := make([]core.Metric, 0, len(t.Tags))
	for k, v := range t.Tags {
		out = append(out, core.Metric{Name: "tag:" + k, Value: v, Partitionable: true, Valid: true})
	}
	return out, nil
}

type pinqueueInformer struct {
	MetricTTL        config.Duration `json:"metric_ttl"`
	WeightBucketSize int64           `json:"weight_bucket_size"`
}

func (p *pinqueueInformer) ttl() time.Duration { return p.MetricTTL.D() }

func (p *pinqueueInformer) measure(ctx context.Context, c *Cluster) ([]core.Metric, error) {
	st, err := c.tracker().Stats(ctx)
	if err != nil {
		return []core.Metric{{Name: "pinqueue"}}, err
	}
	bucket := p.WeightBucketSize
	if bucket <= 0 {
		bucket = 1
	}
	return []core.Metric{{Name: "pinqueue", Value: strconv.FormatInt(st.PinQueued, 10), Weight: -st.PinQueued / bucket, Valid: true}}, nil
}

type numpinInformer struct {
	MetricTTL config.Duration `json:"metric_ttl"`
}

func (n *numpinInformer) ttl() time.Duration { return n.MetricTTL.D() }

func (n *numpinInformer) measure(ctx context.Context, c *Cluster) ([]core.Metric, error) {
	var count int64
	for _, err := range c.ipfs().PinLs(ctx) {
		if err != nil {
			return []core.Metric{{Name: "numpin"}}, err
		}
		count++
	}
	return []core.Metric{{Name: "numpin", Value: strconv.FormatInt(count, 10), Valid: true}}, nil
}

// pingMetric is the metric every peer publishes to say it is alive and
// how it is named, as IPFS Cluster's peers do (spec §10). It is not an
// informer of the configuration: there is always one, every
// cluster.monitor_ping_interval, valid for twice that.
const pingMetric = "ping"

// pingValue is the value of a ping metric, a JSON object.
type pingValue struct {
	PeerName string `json:"peer_name"`
	IPFSID   string `json:"ipfs_id"`
	// IPFSAddresses are the IPFS node's public addresses only.
	IPFSAddresses []string `json:"ipfs_addresses"`
}

type pingInformer struct{ interval time.Duration }

func (p *pingInformer) ttl() time.Duration { return 2 * p.interval }

// measure always gives a valid metric: a peer whose IPFS node does not
// answer is alive all the same (its ipfs_id is then empty).
func (p *pingInformer) measure(ctx context.Context, c *Cluster) ([]core.Metric, error) {
	v := pingValue{PeerName: c.peername, IPFSAddresses: []string{}}
	if iid := c.ipfsID(ctx); iid.Error == "" {
		v.IPFSID = iid.ID.String()
		if pub := publicAddrs(iid.Addresses); pub != nil {
			v.IPFSAddresses = pub
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []core.Metric{{Name: pingMetric}}, err
	}
	return []core.Metric{{Name: pingMetric, Value: string(b), Valid: true}}, nil
}

// DefaultInformers is the informer section written by init.
func DefaultInformers() config.Sections {
	mk := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	return config.Sections{
		"disk":     mk(diskInformer{MetricTTL: config.Duration(30 * time.Second), MetricType: "freespace"}),
		"tags":     mk(tagsInformer{MetricTTL: config.Duration(30 * time.Second), Tags: map[string]string{"group": "default"}}),
		"pinqueue": mk(pinqueueInformer{MetricTTL: config.Duration(30 * time.Second), WeightBucketSize: 100000}),
	}
}

func newInformers(sec config.Sections) ([]informer, error) {
	if sec == nil {
		sec = DefaultInformers()
	}
	var out []informer
	for name, raw := range sec {
		var inf informer
		switch name {
		case "disk":
			inf = &diskInformer{MetricTTL: config.Duration(30 * time.Second), MetricType: "freespace"}
		case "tags":
			inf = &tagsInformer{MetricTTL: config.Duration(30 * time.Second), Tags: map[string]string{"group": "default"}}
		case "pinqueue":
			inf = &pinqueueInformer{MetricTTL: config.Duration(30 * time.Second), WeightBucketSize: 100000}
		case "numpin":
			inf = &numpinInformer{MetricTTL: config.Duration(10 * time.Second)}
		default:
			return nil, fmt.Errorf("service.json: informer.%s: unknown informer (known: disk, tags, pinqueue, numpin)", name)
		}
		if err := config.DecodeSection("informer."+name, raw, inf); err != nil {
			return nil, fmt.Errorf("service.json: %w", err)
		}
		if inf.ttl() <= 0 {
			return nil, fmt.Errorf("service.json: informer.%s.metric_ttl must be positive", name)
		}
		if d, ok := inf.(*diskInformer); ok && d.MetricType != "freespace" && d.MetricType != "reposize" {
			return nil, fmt.Errorf("service.json: informer.disk.metric_type must be freespace or reposize")
		}
		out = append(out, inf)
	}
	return out, nil
}

// PublishMetrics measures every informer now, records the metrics and
// sends them to the other peers: a peer that joined the cluster need not
// wait for the next round to be allocated pins, nor to know the others'.
func (c *Cluster) PublishMetrics(ctx context.Context) { c.publishMetrics(ctx) }

// publishMetrics measures every informer once and records the metrics.
func (c *Cluster) publishMetrics(ctx context.Context) {
	for _, inf := range c.informers {
		c.publish(ctx, inf)
	}
}

func (c *Cluster) publish(ctx context.Context, inf informer) {
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ms, err := inf.measure(mctx, c)
	now := time.Now()
	var valid []core.Metric
	for _, m := range ms {
		m.Peer = c.self
		m.ReceivedAt = now.UnixNano()
		m.Expire = now.Add(inf.ttl()).UnixNano()
		switch {
		case err != nil:
			// The last valid metric stays until it expires and raises an
			// alert; with none, an invalid one stands in, so that a peer
			// that never measured (IPFS down since the start) alerts too.
			m.Valid = false
			c.monitor.putIfAbsent(m)
		case m.Valid:
			c.monitor.put(m)
			valid = append(valid, m)
		}
	}
	if err != nil {
		c.logger.Warn("informer failed: its metrics are not refreshed", "metrics", metricNames(ms), "error", err)
		return
	}
	c.sendMetrics(ctx, valid, inf.ttl())
}

// sendMetrics sends this peer's metrics to the other peers of the
// consensus peerset, in the background: a peer that does not answer
// delays nothing (the sending is bounded by the metrics' TTL).
func (c *Cluster) sendMetrics(ctx context.Context, valid []core.Metric, ttl time.Duration) {
	if c.peerMetrics == nil || len(valid) == 0 {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ttl)
		defer cancel()
		peers, err := c.consensus().Peers(sctx)
		if err != nil {
			return
		}
		others := slices.DeleteFunc(peers, func(p core.PeerID) bool { return p == c.self })
		for i, err := range c.peerMetrics.PublishTo(sctx, others, valid...) {
			if err != nil {
				c.logger.Debug("metrics not delivered", "peer", others[i], "error", err)
			}
		}
	}()
}

// runInformers republishes each informer's metrics every half TTL and checks
// for expired metrics.
func (c *Cluster) runInformers(ctx context.Context) {
	next := make([]time.Time, len(c.informers))
	now := time.Now()
	for i, inf := range c.informers {
		next[i] = now.Add(inf.ttl() / 2)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now = <-tick.C:
		}
		for i, inf := range c.informers {
			if now.After(next[i]) {
				c.publish(ctx, inf)
				next[i] = now.Add(inf.ttl() / 2)
			}
		}
		if expired := slices.DeleteFunc(c.monitor.checkExpired(now), func(p core.PeerID) bool { return p == c.self }); len(expired) > 0 {
			c.wg.Add(1)
			go func() { defer c.wg.Done(); c.repinFrom(ctx, expired) }()
		}
	}
}

// repinFrom re-allocates the pins allocated to peers whose metrics expired
// (they are down, or cut off): on the consensus leader only, so that one
// peer does it, and unless cluster.disable_repinning is set.
func (c *Cluster) repinFrom(ctx context.Context, gone []core.PeerID) {
	if c.cfg.DisableRepinning || c.rpc == nil {
		return
	}
	if leader, err := c.consensus().Leader(ctx); err != nil || leader != c.self {
		return
	}
	c.reallocate(ctx, gone)
}

// reallocate allocates again the pins allocated to any of gone, so that
// each keeps its replication factor minimum on live peers (allocation
// keeps the current peers that are alive and members). Pins to be on every
// peer are left alone.
func (c *Cluster) reallocate(ctx context.Context, gone []core.PeerID) {
	var affected []core.Pin
	for p, err := range c.consensus().ListPins(ctx) {
		if err != nil {
			c.logger.Warn("re-allocation: listing the pinset", "error", err)
			return
		}
		if p.Type == core.DataType && p.ReplicationFactorMin != -1 &&
			slices.ContainsFunc(p.Allocations, func(a core.PeerID) bool { return slices.Contains(gone, a) }) {
			affected = append(affected, p)
		}
	}
	names := make([]string, len(gone))
	for i, p := range gone {
		names[i] = p.String()
	}
	for _, p := range affected {
		if _, err := c.pin(ctx, p, nil); err != nil {
			c.logger.Warn("re-allocation failed", "cid", p.Cid, "from", names, "error", err)
			continue
		}
		c.logger.Info("pin re-allocated", "cid", p.Cid, "from", names)
	}
}

func metricNames(ms []core.Metric) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}
