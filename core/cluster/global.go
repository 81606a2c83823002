package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"slices"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pincluster/pincluster/core"
)

// The status of pins on every peer of the cluster. Each peer serves its
// own statuses to the others (localTracker, ServiceTracker); a peer asked
// for the cluster-wide form asks the members concerned, itself included
// (answered in process), and merges the answers. For one CID those are the
// peers the pin is allocated to, or every member for a pin allocated
// everywhere; the other members are written in as remote, and every member
// as unpinned for a CID outside the pinset, without being asked (spec
// §6.9). The status of the whole pinset asks every member. A peer asked
// that does not answer appears as cluster_error. The entries written in
// name each peer as it last described itself (knownPeers).

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
	answers, errs := askPeers(ctx, peers, cids, call)
	now := time.Now()
	failed := make([]core.PinInfoShort, len(peers))
	for i, p := range peers {
		if errs[i] != nil {
			failed[i] = c.peerEntry(ctx, p, core.TrackerStatusClusterError, now)
			failed[i].Error = errs[i].Error()
		}
	}
	out := make([]core.GlobalPinInfo, len(cids))
	for j, ci := range cids {
		if mine != nil {
			out[j].Add(mine[j])
		}
		for i, p := range peers {
			if errs[i] != nil {
				out[j].Add(entryOf(core.PinInfo{Cid: ci, Peer: p, Allocations: []core.PeerID{}, Origins: []string{}}, failed[i]))
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

// askPeers makes call about cids on every peer at once, each bounded by
// peerStatusTimeout; the answers and errors are in the order of peers. An
// answer without one entry per CID is an error.
func askPeers(ctx context.Context, peers []core.PeerID, cids []core.Cid, call peerCall) ([][]core.PinInfo, []error) {
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
	return answers, errs
}

// clusterOne makes call about one CID on the peers concerned and merges
// the answers (spec §6.9, §6.13): for a pin of the pinset, the peers it is
// allocated to, or every member when it is allocated everywhere; the
// members it is not allocated to are remote, and are not asked. A CID
// outside the pinset is unpinned on every member, none of them asked.
// Asked peers that fail are cluster_error.
func (c *Cluster) clusterOne(ctx context.Context, ci core.Cid, call peerCall) (core.GlobalPinInfo, error) {
	members, err := c.consensus().Peers(ctx)
	if err != nil {
		return core.GlobalPinInfo{}, err
	}
	pin, err := c.consensus().GetPin(ctx, ci)
	if errors.Is(err, core.ErrPinNotFound) {
		return c.unpinnedEverywhere(ctx, ci, members), nil
	}
	if err != nil {
		return core.GlobalPinInfo{}, err
	}
	pin = fromState(pin)
	asked, remote := members, []core.PeerID(nil)
	if !allocatedEverywhere(pin) {
		asked = pin.Allocations
		remote = slices.DeleteFunc(slices.Clone(members), func(p core.PeerID) bool { return slices.Contains(asked, p) })
	}
	answers, errs := askPeers(ctx, asked, []core.Cid{ci}, call)
	now := time.Now()
	base := core.PinInfo{
		Cid:         ci,
		Name:        pin.Name,
		Allocations: pin.Allocations,
		Origins:     pin.Origins,
		Created:     pin.Timestamp,
		Metadata:    pin.Metadata,
	}
	if base.Allocations == nil {
		base.Allocations = []core.PeerID{}
	}
	var g core.GlobalPinInfo
	for i, p := range asked {
		if errs[i] == nil {
			g.Add(answers[i][0])
			continue
		}
		e := c.peerEntry(ctx, p, core.TrackerStatusClusterError, now)
		e.Error = errs[i].Error()
		base.Peer = p
		g.Add(entryOf(base, e))
	}
	for _, p := range remote {
		base.Peer = p
		g.Add(entryOf(base, c.peerEntry(ctx, p, core.TrackerStatusRemote, now)))
	}
	if !g.Cid.Defined() {
		g.Cid = ci
	}
	if g.Created.IsZero() {
		g.Created = now
	}
	return g, nil
}

// allocatedEverywhere reports whether every member holds pin: it has no
// allocations, or its replication factor is -1.
func allocatedEverywhere(pin core.Pin) bool {
	return len(pin.Allocations) == 0 || pin.ReplicationFactorMin == -1
}

// unpinnedEverywhere is the status of a CID outside the pinset: unpinned on
// every member, created now, with no name nor allocations.
func (c *Cluster) unpinnedEverywhere(ctx context.Context, ci core.Cid, members []core.PeerID) core.GlobalPinInfo {
	now := time.Now()
	base := core.PinInfo{Cid: ci, Allocations: []core.PeerID{}, Origins: []string{}, Created: now}
	g := core.GlobalPinInfo{Cid: ci, Allocations: base.Allocations, Origins: base.Origins, Created: now}
	for _, p := range members {
		base.Peer = p
		g.Add(entryOf(base, c.peerEntry(ctx, p, core.TrackerStatusUnpinned, now)))
	}
	return g
}

// entryOf is base (the pin's fields and the peer) with the entry e.
func entryOf(base core.PinInfo, e core.PinInfoShort) core.PinInfo {
	base.PinInfoShort = e
	return base
}

// peerEntry is the entry of p in a peer_map written without p's answer,
// with status st at now: p's name and IPFS node as p last described
// itself to this peer (the IPFS addresses that are public only, as IPFS
// Cluster's ping metric carries them, spec §10), or p's ID as its name
// when p never did. This peer's own entry has its name and its IPFS node.
func (c *Cluster) peerEntry(ctx context.Context, p core.PeerID, st core.TrackerStatus, now time.Time) core.PinInfoShort {
	e := core.PinInfoShort{PeerName: p.String(), Status: st, TS: now}
	var ipfs core.IPFSID
	if p == c.self {
		e.PeerName = c.peername
		ipfs = c.ipfsID(ctx)
	} else if id, ok := c.known.get(p); ok {
		e.PeerName = id.Peername
		ipfs = id.IPFS
	}
	if ipfs.Error == "" {
		e.IPFS = ipfs.ID
		e.IPFSAddresses = publicAddrs(ipfs.Addresses)
	}
	return e
}

// publicAddrs keeps the multiaddrs of addrs that are publicly routable.
func publicAddrs(addrs []string) []string {
	var out []string
	for _, s := range addrs {
		if a, err := ma.NewMultiaddr(s); err == nil && manet.IsPublicAddr(a) {
			out = append(out, s)
		}
	}
	return out
}

// knownPeers holds the description each member last gave of itself to
// this peer, for the entries of the members that are not asked or do not
// answer: from the ping metrics the members publish, and whenever this
// peer asks them for their IDs (every ipfsConnectInterval, and at each
// GET /peers and GET /health/graph).
type knownPeers struct {
	mu  sync.RWMutex
	ids map[core.PeerID]core.ID
}

func newKnownPeers() *knownPeers { return &knownPeers{ids: map[core.PeerID]core.ID{}} }

// remember records the IDs of the peers that answered (errs[i] == nil).
func (k *knownPeers) remember(peers []core.PeerID, ids []core.ID, errs []error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, p := range peers {
		if errs[i] == nil && ids[i].ID == p {
			k.ids[p] = ids[i]
		}
	}
}

// ping records how the peer of a ping metric describes itself; a value
// that is not a ping's is ignored.
func (k *knownPeers) ping(m core.Metric) {
	var v pingValue
	if json.Unmarshal([]byte(m.Value), &v) != nil {
		return
	}
	id := core.ID{ID: m.Peer, Peername: v.PeerName, IPFS: core.IPFSID{Addresses: v.IPFSAddresses}}
	if v.IPFSID != "" {
		ipfs, err := core.DecodePeerID(v.IPFSID)
		if err != nil {
			return
		}
		id.IPFS.ID = ipfs
	} else {
		id.IPFS.Error = "no IPFS node ID in the ping metric"
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ids[m.Peer] = id
}

func (k *knownPeers) get(p core.PeerID) (core.ID, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	id, ok := k.ids[p]
	return id, ok
}

// retain forgets the peers keep refuses.
func (k *knownPeers) retain(keep func(core.PeerID) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for p := range k.ids {
		if !keep(p) {
			delete(k.ids, p)
		}
	}
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
				if filter != 0 && !keepMatching(&g, filter) {
					continue
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

// keepMatching keeps the entries of g that match filter and reports
// whether any does. As in IPFS Cluster, where a member that does not answer
// has a cluster_error entry on every CID the others list, the cluster_error
// entries of a CID that is listed are kept, and they alone do not list it.
func keepMatching(g *core.GlobalPinInfo, filter core.TrackerStatus) bool {
	listed := false
	for p, st := range g.PeerMap {
		switch {
		case st.Status == core.TrackerStatusClusterError:
		case st.Status.Match(filter):
			listed = true
		default:
			delete(g.PeerMap, p)
		}
	}
	return listed
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
// operations (status of queued or failed pins, recover all). A member
// whose stream fails has a cluster_error entry on every CID listed, as in
// IPFS Cluster.
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
		failed := map[core.PeerID]error{}
		var wg sync.WaitGroup
		for _, p := range peers {
			wg.Go(func() {
				for pi, err := range stream(ctx, p) {
					if err != nil {
						mu.Lock()
						failed[p] = err
						mu.Unlock()
						return
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
		now := time.Now()
		for p, err := range failed {
			e := c.peerEntry(ctx, p, core.TrackerStatusClusterError, now)
			e.Error = err.Error()
			for _, g := range merged {
				g.Add(entryOf(core.PinInfo{Cid: g.Cid, Peer: p, Allocations: []core.PeerID{}, Origins: []string{}}, e))
			}
		}
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
