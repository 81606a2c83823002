package cluster

import (
	"context"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/pincluster/pincluster/core"
)

// The status of pins on every peer of the cluster. Each peer serves its
// own statuses to the others (localTracker, ServiceTracker); a peer asked
// for the cluster-wide form asks every member of the consensus peerset,
// itself included (answered in process), and merges the answers. A member
// that does not answer appears as cluster_error.

// localTracker serves this peer's statuses to the other peers, completed
// with what only the core knows (peer name, IPFS identity).
type localTracker struct{ c *Cluster }

func (t localTracker) complete(ctx context.Context, infos []core.PinInfo, err error) ([]core.PinInfo, error) {
	if err != nil {
		return nil, err
	}
	iid := t.c.ipfsID(ctx)
	for i := range infos {
		infos[i] = t.c.withPeer(infos[i], iid)
	}
	return infos, nil
}

func (t localTracker) completeStream(ctx context.Context, seq iter.Seq2[core.PinInfo, error]) iter.Seq2[core.PinInfo, error] {
	return func(yield func(core.PinInfo, error) bool) {
		iid := t.c.ipfsID(ctx)
		for pi, err := range seq {
			if err != nil {
				yield(core.PinInfo{}, err)
				return
			}
			if !yield(t.c.withPeer(pi, iid), nil) {
				return
			}
		}
	}
}

func (t localTracker) Status(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	infos, err := t.c.tracker().Status(ctx, cids)
	return t.complete(ctx, infos, err)
}

func (t localTracker) StatusAll(ctx context.Context, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error] {
	return t.completeStream(ctx, t.c.tracker().StatusAll(ctx, filter))
}

func (t localTracker) Recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	infos, err := t.c.tracker().Recover(ctx, cids)
	return t.complete(ctx, infos, err)
}

func (t localTracker) RecoverAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	return t.completeStream(ctx, t.c.tracker().RecoverAll(ctx))
}

func (t localTracker) Sync(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	infos, err := t.c.tracker().Sync(ctx, cids)
	return t.complete(ctx, infos, err)
}

func (t localTracker) SyncAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	return t.completeStream(ctx, t.c.tracker().SyncAll(ctx))
}

// peerStatusTimeout bounds one member's answer to a status request.
const peerStatusTimeout = 15 * time.Second

// clusterStatus asks every member for the status of cids and returns, for
// each CID, the merged answers. The answers of a member that fails are
// cluster_error entries. When mine is not nil it holds this peer's
// entries, in the order of cids, and only the other members are asked.
func (c *Cluster) clusterStatus(ctx context.Context, cids []core.Cid, mine []core.PinInfo) ([]core.GlobalPinInfo, error) {
	return c.clusterCall(ctx, cids, mine, c.rpc.Client().Status)
}

// peerCall is a call of ServiceTracker about some CIDs on one peer.
type peerCall func(ctx context.Context, p core.PeerID, cids []core.Cid) ([]core.PinInfo, error)

// clusterCall makes call on every member (but this peer when mine is
// given) and merges the answers, as clusterStatus describes.
func (c *Cluster) clusterCall(ctx context.Context, cids []core.Cid, mine []core.PinInfo, call peerCall) ([]core.GlobalPinInfo, error) {
	peers, err := c.consensus().Peers(ctx)
	if err != nil {
		return nil, err
	}
	if mine != nil {
		peers = slices.DeleteFunc(peers, func(p core.PeerID) bool { return p == c.self })
	}
	answers := make([][]core.PinInfo, len(peers))
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, peerStatusTimeout)
			defer cancel()
			answers[i], errs[i] = call(pctx, p, cids)
			if errs[i] == nil && len(answers[i]) != len(cids) {
				errs[i] = errUnexpectedCount(len(answers[i]))
			}
		})
	}
	wg.Wait()
	now := time.Now()
	out := make([]core.GlobalPinInfo, len(cids))
	for j, ci := range cids {
		if mine != nil {
			out[j].Add(mine[j])
		}
		for i, p := range peers {
			if errs[i] != nil {
				out[j].Add(clusterError(ci, p, errs[i], now))
				continue
			}
			out[j].Add(answers[i][j])
		}
		if !out[j].Cid.Defined() {
			out[j].Cid = ci
		}
	}
	return out, nil
}

func clusterError(ci core.Cid, p core.PeerID, err error, now time.Time) core.PinInfo {
	pi := core.PinInfo{Cid: ci, Peer: p, Allocations: []core.PeerID{}, Origins: []string{}}
	pi.PeerName = p.String()
	pi.Status = core.TrackerStatusClusterError
	pi.Error = err.Error()
	pi.TS = now
	return pi
}

// clusterStatusBatch is how many pins of the pinset one status request
// to the other members carries.
const clusterStatusBatch = 256

// clusterStatusAll streams the cluster-wide status of every pin of the
// pinset, each keeping the entries that match filter (0: all). This
// peer's statuses come from its tracker's stream (one read of IPFS's pins);
// the other members are asked a batch of those pins at a time (one request
// per member per batch), so memory does not grow with the pinset.
// Operations on CIDs no longer in the pinset are listed only by a filter
// that names operation statuses alone (clusterOpsStatus).
func (c *Cluster) clusterStatusAll(ctx context.Context, filter core.TrackerStatus) iter.Seq2[core.GlobalPinInfo, error] {
	if filter != 0 && !filter.Match(pinsetStatuses) {
		return c.clusterOpsStatus(ctx, filter)
	}
	return func(yield func(core.GlobalPinInfo, error) bool) {
		mine := make([]core.PinInfo, 0, clusterStatusBatch)
		cids := make([]core.Cid, 0, clusterStatusBatch)
		flush := func() bool {
			defer func() { mine, cids = mine[:0], cids[:0] }()
			if len(mine) == 0 {
				return true
			}
			gs, err := c.clusterStatus(ctx, cids, mine)
			if err != nil {
				yield(core.GlobalPinInfo{}, err)
				return false
			}
			for _, g := range gs {
				if filter != 0 {
					for p, st := range g.PeerMap {
						if !st.Status.Match(filter) {
							delete(g.PeerMap, p)
						}
					}
					if len(g.PeerMap) == 0 {
						continue
					}
				}
				if !yield(g, nil) {
					return false
				}
			}
			return true
		}
		for pi, err := range (localTracker{c}).StatusAll(ctx, 0) {
			if err != nil {
				yield(core.GlobalPinInfo{}, err)
				return
			}
			mine, cids = append(mine, pi), append(cids, pi.Cid)
			if len(mine) == clusterStatusBatch && !flush() {
				return
			}
		}
		flush()
	}
}

// pinsetStatuses are the statuses a pin of the pinset can have without an
// operation in flight. (A filter of errors alone lists the failed
// operations of the members that answer.)
const pinsetStatuses = core.TrackerStatusPinned | core.TrackerStatusUnexpectedlyUnpinned |
	core.TrackerStatusRemote | core.TrackerStatusSharded

// clusterOpsStatus merges the operations matching filter of every member
// (queued, in progress or failed pins and unpins: few, and held here until
// every member has answered).
func (c *Cluster) clusterOpsStatus(ctx context.Context, filter core.TrackerStatus) iter.Seq2[core.GlobalPinInfo, error] {
	return c.clusterMerge(ctx, func(ctx context.Context, p core.PeerID) iter.Seq2[core.PinInfo, error] {
		return c.rpc.Client().StatusAll(ctx, p, filter)
	})
}

// clusterMerge runs stream on every member and merges the items by CID,
// holding them until every member has answered: for the short lists of
// operations (status of queued or failed pins, recover all).
func (c *Cluster) clusterMerge(ctx context.Context, stream func(context.Context, core.PeerID) iter.Seq2[core.PinInfo, error]) iter.Seq2[core.GlobalPinInfo, error] {
	return func(yield func(core.GlobalPinInfo, error) bool) {
		peers, err := c.consensus().Peers(ctx)
		if err != nil {
			yield(core.GlobalPinInfo{}, err)
			return
		}
		var mu sync.Mutex
		merged := map[string]*core.GlobalPinInfo{}
		var order []string
		var wg sync.WaitGroup
		for _, p := range peers {
			wg.Go(func() {
				for pi, err := range stream(ctx, p) {
					if err != nil {
						return // an unreachable member has no operations to list
					}
					mu.Lock()
					k := pi.Cid.KeyString()
					g := merged[k]
					if g == nil {
						g = &core.GlobalPinInfo{}
						merged[k] = g
						order = append(order, k)
					}
					g.Add(pi)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, k := range order {
			if !yield(*merged[k], nil) {
				return
			}
		}
	}
}

// ipfsConnectInterval is how often this peer's IPFS node is connected to
// the IPFS nodes of the other members it is not connected to.
const ipfsConnectInterval = 5 * time.Second

// runIPFSConnect keeps this peer's IPFS node connected to the other
// members', so that a peer allocated a pin fetches its blocks from the
// peers that hold them.
func (c *Cluster) runIPFSConnect(ctx context.Context) {
	tick := time.NewTicker(ipfsConnectInterval)
	defer tick.Stop()
	for {
		c.connectIPFS(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *Cluster) connectIPFS(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, ipfsConnectInterval)
	defer cancel()
	peers, err := c.consensus().Peers(ctx)
	if err != nil {
		return
	}
	peers = slices.DeleteFunc(peers, func(p core.PeerID) bool { return p == c.self })
	if len(peers) == 0 {
		return
	}
	linked := map[core.PeerID]bool{}
	if ps, err := c.ipfs().SwarmPeers(ctx); err == nil {
		for _, p := range ps {
			linked[p] = true
		}
	}
	ids, errs := c.peerIDs(ctx, peers)
	var addrs []string
	for i, id := range ids {
		if errs[i] == nil && id.IPFS.ID != "" && !linked[id.IPFS.ID] {
			addrs = append(addrs, id.IPFS.Addresses...)
		}
	}
	if len(addrs) == 0 {
		return
	}
	if err := c.ipfs().SwarmConnect(ctx, addrs); err != nil {
		c.logger.Debug("connecting to the other peers' IPFS nodes", "error", err)
	}
}

// clusterSyncAll has every member re-check all its pins against IPFS, then
// streams the cluster-wide status (as GET /pins does, so that memory does
// not grow with the pinset). A member that cannot sync shows in that
// status as it is.
func (c *Cluster) clusterSyncAll(ctx context.Context) iter.Seq2[core.GlobalPinInfo, error] {
	return func(yield func(core.GlobalPinInfo, error) bool) {
		peers, err := c.consensus().Peers(ctx)
		if err != nil {
			yield(core.GlobalPinInfo{}, err)
			return
		}
		var wg sync.WaitGroup
		for _, p := range peers {
			wg.Go(func() {
				for _, err := range c.rpc.Client().SyncAll(ctx, p) {
					if err != nil {
						c.logger.Debug("sync on a member failed", "peer", p, "error", err)
						return
					}
				}
			})
		}
		wg.Wait()
		for g, err := range c.clusterStatusAll(ctx, 0) {
			if !yield(g, err) || err != nil {
				return
			}
		}
	}
}
