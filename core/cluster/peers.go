package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pincluster/pincluster/core"
)

// members caches the consensus peerset, so that allocation (on the hot
// path of every pin) need not ask the consensus plugin for it. It is
// refreshed every cluster.peer_watch_interval, at once when a metric comes
// from a peer it does not hold, and when this peer adds or removes one.
type members struct {
	mu    sync.RWMutex
	peers []core.PeerID // sorted; nil until first read
	// wasMember records that this peer has been in the peerset, so that
	// leaving it is seen as a removal.
	wasMember bool
	refresh   chan struct{}
}

func newMembers() *members { return &members{refresh: make(chan struct{}, 1)} }

// has reports whether p is in the cached peerset; every peer is while the
// peerset is unknown.
func (m *members) has(p core.PeerID) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.peers == nil {
		return true
	}
	_, found := slices.BinarySearch(m.peers, p)
	return found
}

// set replaces the cached peerset and reports whether self just left it.
func (m *members) set(peers []core.PeerID, self core.PeerID) (removed bool) {
	peers = slices.Clone(peers)
	slices.Sort(peers)
	if peers == nil {
		peers = []core.PeerID{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peers = peers
	_, in := slices.BinarySearch(peers, self)
	removed = m.wasMember && !in && len(peers) > 0
	if in {
		m.wasMember = true
	}
	return removed
}

// drop removes p from the cached peerset.
func (m *members) drop(p core.PeerID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i, found := slices.BinarySearch(m.peers, p); found {
		m.peers = slices.Delete(slices.Clone(m.peers), i, i+1)
	}
}

// stale asks for a refresh soon (a metric came from a peer not held).
func (m *members) stale() {
	select {
	case m.refresh <- struct{}{}:
	default:
	}
}

// onMetric is the monitor's hook for every metric received from a peer.
func (c *Cluster) onMetric(metric core.Metric) {
	c.monitor.put(metric)
	if metric.Name == pingMetric && metric.Valid {
		c.known.ping(metric)
	}
	if !c.members.has(metric.Peer) {
		c.members.stale()
	}
}

// refreshMembers reads the peerset from the consensus, forgets the
// metrics and descriptions of peers no longer in it and reports whether
// this peer was removed from it.
func (c *Cluster) refreshMembers(ctx context.Context) (removed bool) {
	peers, err := c.consensus().Peers(ctx)
	if err != nil {
		c.logger.Debug("reading the peerset", "error", err)
		return false
	}
	removed = c.members.set(peers, c.self)
	c.monitor.retain(c.members.has)
	c.known.retain(c.members.has)
	return removed
}

// runPeerWatch keeps the cached peerset current. A peer removed from the
// peerset (DELETE /peers on another peer) calls OnRemoved, which shuts the
// daemon down, as IPFS Cluster's peers do.
func (c *Cluster) runPeerWatch(ctx context.Context) {
	tick := time.NewTicker(c.cfg.PeerWatchInterval.D())
	defer tick.Stop()
	for {
		if c.refreshMembers(ctx) && c.OnRemoved != nil {
			c.logger.Warn("this peer was removed from the cluster's peerset: shutting down")
			c.OnRemoved()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.members.refresh:
		}
	}
}

// PeerRemove removes a peer from the peerset. Its pins are first
// re-allocated to the other peers (whatever cluster.disable_repinning
// says: the removal is the user's decision), then it is removed from the
// consensus and forgotten by this peer's host and monitor.
func (c *Cluster) PeerRemove(ctx context.Context, p core.PeerID) error {
	peers, err := c.consensus().Peers(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(peers, p) {
		return fmt.Errorf("%s is not a cluster peer", p)
	}
	if len(peers) == 1 {
		// Raft without voters could not even take this peer back.
		return core.Error{Code: 400, Message: fmt.Sprintf("%s is the last peer of the cluster: it cannot be removed", p)}
	}
	c.members.drop(p)
	c.monitor.forget(p)
	c.known.retain(func(q core.PeerID) bool { return q != p })
	c.reallocate(ctx, []core.PeerID{p})
	if err := c.consensus().RemovePeer(ctx, p); err != nil {
		c.members.stale()
		return err
	}
	if c.net != nil && p != c.self {
		c.net.Forget(p)
	}
	c.members.stale()
	return nil
}

// Leave removes this peer from the peerset, for cluster.leave_on_shutdown
// and `daemon --leave`, and reports whether it did: its pins are
// re-allocated to the others first. The raft leader does both, as its
// pinset is the most recent. A peer alone in its peerset, or no longer in
// it, has nothing to leave.
func (c *Cluster) Leave(ctx context.Context) (bool, error) {
	peers, err := c.consensus().Peers(ctx)
	if err != nil {
		return false, err
	}
	if !slices.Contains(peers, c.self) || len(peers) == 1 {
		return false, nil
	}
	leader, err := c.consensus().Leader(ctx)
	if err != nil {
		return false, err
	}
	if leader == c.self || c.rpc == nil {
		return true, c.PeerRemove(ctx, c.self)
	}
	if err := c.rpc.Client().PeerRemove(ctx, leader, c.self); err != nil {
		return false, fmt.Errorf("asking the leader %s to remove this peer: %w", leader, err)
	}
	return true, nil
}
