package cluster

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"mime/multipart"
	"slices"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/adder"
	"github.com/pincluster/pincluster/core/network"
)

// ID describes this peer.
func (c *Cluster) ID(ctx context.Context) core.ID {
	id := core.ID{
		ID:                    c.self,
		Addresses:             []string{},
		ClusterPeers:          []core.PeerID{c.self},
		ClusterPeersAddresses: []string{},
		Version:               core.SoftwareVersion,
		RPCProtocolVersion:    core.RPCProtocolVersion,
		Peername:              c.peername,
	}
	if c.net != nil {
		for _, a := range c.net.Addrs() {
			id.Addresses = append(id.Addresses, a.String())
		}
	}
	if peers, err := c.consensus().Peers(ctx); err == nil && len(peers) > 0 {
		id.ClusterPeers = peers
		if c.net != nil {
			for _, p := range peers {
				if p == c.self {
					continue
				}
				for _, a := range c.net.PeerAddrs(p) {
					id.ClusterPeersAddresses = append(id.ClusterPeersAddresses, a.String())
				}
			}
		}
	} else if err != nil {
		id.Error = err.Error()
	}
	id.IPFS = c.ipfsID(ctx)
	return id
}

func (c *Cluster) ipfsID(ctx context.Context) core.IPFSID {
	iid, err := c.ipfs().ID(ctx)
	if err != nil {
		return core.IPFSID{Error: err.Error()}
	}
	return iid
}

// Version returns pincluster's version.
func (c *Cluster) Version() string { return core.SoftwareVersion }

// Peers streams the ID of every peer of the peerset.
func (c *Cluster) Peers(ctx context.Context) iter.Seq2[core.ID, error] {
	return func(yield func(core.ID, error) bool) {
		peers, err := c.consensus().Peers(ctx)
		if err != nil {
			yield(core.ID{}, err)
			return
		}
		var ids []core.ID
		var errs []error
		if c.rpc != nil {
			ids, errs = c.peerIDs(ctx, peers)
		} else {
			ids, errs = make([]core.ID, len(peers)), make([]error, len(peers))
			for i, p := range peers {
				if p == c.self {
					ids[i] = c.ID(ctx)
				} else {
					errs[i] = errors.New("peer not reachable: this peer has no cluster network")
				}
			}
		}
		for i, p := range peers {
			id := ids[i]
			if errs[i] != nil {
				id = core.ID{ID: p, Error: errs[i].Error()}
			}
			if !yield(id, nil) {
				return
			}
		}
	}
}

// peerIDs asks each peer to describe itself (this one answers in process).
// A peer this one has no address for is looked up in the
// cluster_peers_addresses of the peers that answered, connected to, and
// asked again.
func (c *Cluster) peerIDs(ctx context.Context, peers []core.PeerID) ([]core.ID, []error) {
	client := c.rpc.Client()
	ids, errs := client.IDs(ctx, peers)
	defer func() { c.known.remember(peers, ids, errs) }()
	known := map[core.PeerID][]ma.Multiaddr{}
	for i := range peers {
		if errs[i] != nil {
			continue
		}
		for _, s := range ids[i].ClusterPeersAddresses {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				continue
			}
			if info, err := libp2ppeer.AddrInfoFromP2pAddr(a); err == nil {
				known[info.ID] = append(known[info.ID], a)
			}
		}
	}
	for i, p := range peers {
		if errs[i] == nil || len(known[p]) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, peerConnectTimeout)
		for _, a := range known[p] {
			if _, err := c.net.Connect(cctx, a); err == nil {
				ids[i], errs[i] = client.ID(cctx, p)
				break
			}
		}
		cancel()
	}
	return ids, errs
}

// peerConnectTimeout bounds connecting to a peer learnt from another.
const peerConnectTimeout = 5 * time.Second

// Allocations streams the pins of the pinset whose type matches filter.
func (c *Cluster) Allocations(ctx context.Context, filter core.PinType) iter.Seq2[core.Pin, error] {
	return func(yield func(core.Pin, error) bool) {
		for p, err := range c.consensus().ListPins(ctx) {
			if err != nil {
				yield(core.Pin{}, err)
				return
			}
			if p.Type&filter == 0 {
				continue
			}
			if !yield(fromState(p), nil) {
				return
			}
		}
	}
}

// Allocation returns one pin of the pinset.
func (c *Cluster) Allocation(ctx context.Context, ci core.Cid) (core.Pin, error) {
	p, err := c.consensus().GetPin(ctx, ci)
	return fromState(p), err
}

// fromState shapes a pin read from the pinset as IPFS Cluster does: origins
// is a list, never null, and user_allocations is null (IPFS Cluster does
// not keep them; the pinset here does, for re-allocations, but does not
// show them).
func fromState(p core.Pin) core.Pin {
	if p.Origins == nil {
		p.Origins = []string{}
	}
	p.UserAllocations = nil
	return p
}

// withPeer completes a local PinInfo with what the tracker cannot know.
func (c *Cluster) withPeer(pi core.PinInfo, iid core.IPFSID) core.PinInfo {
	pi.Peer = c.self
	pi.PeerName = c.peername
	pi.IPFS = iid.ID
	pi.IPFSAddresses = iid.Addresses
	if pi.Allocations == nil {
		pi.Allocations = []core.PeerID{}
	}
	if pi.Origins == nil {
		pi.Origins = []string{}
	}
	return pi
}

func (c *Cluster) globalOne(ctx context.Context, infos []core.PinInfo, err error) (core.GlobalPinInfo, error) {
	if err != nil {
		return core.GlobalPinInfo{}, err
	}
	if len(infos) != 1 {
		return core.GlobalPinInfo{}, errUnexpectedCount(len(infos))
	}
	return c.withPeer(infos[0], c.ipfsID(ctx)).ToGlobal(), nil
}

func (c *Cluster) globalStream(ctx context.Context, seq iter.Seq2[core.PinInfo, error]) iter.Seq2[core.GlobalPinInfo, error] {
	return func(yield func(core.GlobalPinInfo, error) bool) {
		iid := c.ipfsID(ctx)
		for pi, err := range seq {
			if err != nil {
				yield(core.GlobalPinInfo{}, err)
				return
			}
			if !yield(c.withPeer(pi, iid).ToGlobal(), nil) {
				return
			}
		}
	}
}

// Status reports the status of one CID: this peer's (local, or a cluster
// without network) or every member's, as clusterOne asks for it.
func (c *Cluster) Status(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
	if !local && c.rpc != nil {
		return c.clusterOne(ctx, ci, c.rpc.Client().Status)
	}
	infos, err := c.tracker().Status(ctx, []core.Cid{ci})
	g, err := c.globalOne(ctx, infos, err)
	if err == nil && g.PeerMap != nil && !g.Cid.Defined() {
		g.Cid = ci
	}
	if err == nil && g.Created.IsZero() {
		g.Created = time.Now()
	}
	return g, err
}

// StatusAll streams the status of every pin matching filter: this peer's
// (local, or a cluster without network) or every member's.
func (c *Cluster) StatusAll(ctx context.Context, filter core.TrackerStatus, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	if !local && c.rpc != nil {
		return c.clusterStatusAll(ctx, filter)
	}
	return c.globalStream(ctx, c.tracker().StatusAll(ctx, filter))
}

// Recover re-queues a CID in error, on this peer (local) or on the
// members it is allocated to (clusterOne).
func (c *Cluster) Recover(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
	if !local && c.rpc != nil {
		return c.clusterOne(ctx, ci, c.rpc.Client().Recover)
	}
	infos, err := c.tracker().Recover(ctx, []core.Cid{ci})
	return c.globalOne(ctx, infos, err)
}

// RecoverAll re-queues every pin in error, on this peer (local) or on
// every member, and streams those re-queued.
func (c *Cluster) RecoverAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	if !local && c.rpc != nil {
		return c.clusterMerge(ctx, c.rpc.Client().RecoverAll)
	}
	return c.globalStream(ctx, c.tracker().RecoverAll(ctx))
}

// Sync re-checks a CID against IPFS, on this peer (local) or on the
// members it is allocated to (clusterOne).
func (c *Cluster) Sync(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
	if !local && c.rpc != nil {
		return c.clusterOne(ctx, ci, c.rpc.Client().Sync)
	}
	infos, err := c.tracker().Sync(ctx, []core.Cid{ci})
	return c.globalOne(ctx, infos, err)
}

// SyncAll re-checks every pin against IPFS, on this peer (local) or on
// every member, and streams the result.
func (c *Cluster) SyncAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	if !local && c.rpc != nil {
		return c.clusterSyncAll(ctx)
	}
	return c.globalStream(ctx, c.tracker().SyncAll(ctx))
}

// RepoGC runs a garbage collection on the IPFS node of this peer (local,
// or a cluster without network) or of every member at once (spec §4.8,
// §6.15). A member that cannot run it, or does not answer, has an entry
// with the error and the keys it removed before failing ([] if none).
func (c *Cluster) RepoGC(ctx context.Context, local bool) (core.GlobalRepoGC, error) {
	if local || c.rpc == nil {
		gc := collectRepoGC(c.self, c.peername, c.ipfs().RepoGC(ctx))
		return core.GlobalRepoGC{PeerMap: map[string]core.RepoGC{c.self.String(): gc}}, nil
	}
	peers, err := c.consensus().Peers(ctx)
	if err != nil {
		return core.GlobalRepoGC{}, err
	}
	gcs := make([]core.RepoGC, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			if p == c.self {
				gcs[i] = collectRepoGC(p, c.peername, c.ipfs().RepoGC(ctx))
				return
			}
			name := p.String()
			if id, ok := c.known.get(p); ok {
				name = id.Peername
			}
			gcs[i] = collectRepoGC(p, name, c.rpc.Client().RepoGC(ctx, p))
		})
	}
	wg.Wait()
	out := core.GlobalRepoGC{PeerMap: make(map[string]core.RepoGC, len(peers))}
	for i, p := range peers {
		out.PeerMap[p.String()] = gcs[i]
	}
	return out, nil
}

// collectRepoGC is the RepoGC entry of peer p from the keys a GC streams.
func collectRepoGC(p core.PeerID, name string, keys iter.Seq2[core.IPFSRepoGCKey, error]) core.RepoGC {
	gc := core.RepoGC{Peer: p, Peername: name, Keys: []core.IPFSRepoGCKey{}}
	for k, err := range keys {
		if err != nil {
			gc.Error = err.Error()
			break
		}
		gc.Keys = append(gc.Keys, k)
	}
	return gc
}

// ConnectGraph describes the links of every member: each one's view of
// the peerset (cluster_links) and its IPFS node's swarm peers
// (ipfs_links), asked of every member at once. A member that does not
// answer keeps an empty list of links and has no peer name nor IPFS node.
func (c *Cluster) ConnectGraph(ctx context.Context) (core.ConnectGraph, error) {
	g := core.ConnectGraph{
		ClusterID:         c.self,
		IDtoPeername:      map[string]string{},
		IPFSLinks:         map[string][]core.PeerID{},
		ClusterLinks:      map[string][]core.PeerID{},
		ClusterTrustLinks: map[string]bool{},
		ClustertoIPFS:     map[string]core.PeerID{},
	}
	var (
		peers     []core.PeerID
		ids       []core.ID
		errs      []error
		swarms    [][]core.PeerID
		swarmErrs []error
	)
	if c.rpc != nil {
		var err error
		if peers, err = c.consensus().Peers(ctx); err != nil {
			return g, err
		}
		ids, errs = c.peerIDs(ctx, peers)
		swarms, swarmErrs = c.rpc.Client().SwarmPeers(ctx, peers)
	} else {
		swarm, err := c.ipfs().SwarmPeers(ctx)
		peers, ids, errs = []core.PeerID{c.self}, []core.ID{c.ID(ctx)}, []error{nil}
		swarms, swarmErrs = [][]core.PeerID{swarm}, []error{err}
	}
	for i, p := range peers {
		key := p.String()
		g.ClusterTrustLinks[key] = true // raft trusts every member
		g.ClusterLinks[key] = []core.PeerID{}
		if errs[i] != nil {
			continue
		}
		id := ids[i]
		for _, q := range id.ClusterPeers {
			if q != p {
				g.ClusterLinks[key] = append(g.ClusterLinks[key], q)
			}
		}
		if !slices.Contains(id.ClusterPeers, p) {
			continue
		}
		g.IDtoPeername[key] = id.Peername
		if id.IPFS.ID == "" || id.IPFS.Error != "" {
			continue
		}
		g.ClustertoIPFS[key] = id.IPFS.ID
		links := swarms[i]
		if swarmErrs[i] != nil || links == nil {
			links = []core.PeerID{}
		}
		g.IPFSLinks[id.IPFS.ID.String()] = links
	}
	return g, nil
}

// Alerts returns the recent alerts, most recent first.
func (c *Cluster) Alerts(ctx context.Context) ([]core.Alert, error) {
	return c.monitor.recentAlerts(), nil
}

// MetricNames lists the names of the metrics seen.
func (c *Cluster) MetricNames(ctx context.Context) ([]string, error) {
	return c.monitor.names(), nil
}

// Metrics returns the latest valid metric of a name for each peer.
func (c *Cluster) Metrics(ctx context.Context, name string) ([]core.Metric, error) {
	return c.monitor.latest(name, time.Now()), nil
}

// Add imports a multipart upload, stores its blocks on the IPFS node and
// pins the root (unless params.NoPin).
func (c *Cluster) Add(ctx context.Context, body *multipart.Reader, params adder.Params, opts core.PinOptions, emit func(core.AddedOutput) error) (core.Cid, error) {
	pin := core.Pin{PinOptions: opts, Type: core.DataType, MaxDepth: maxDepth(opts.Mode)}
	// Allocate first so that the blocks go where the pin will be.
	rmin, rmax, err := c.replication(opts)
	if err != nil {
		return core.UndefCid, err
	}
	var allocs []core.PeerID
	if rmin != -1 {
		a, err := c.allocate(ctx, core.UndefCid, rmin, rmax, nil, opts.UserAllocations)
		if err != nil {
			return core.UndefCid, err
		}
		allocs = a
	}
	// Where the content goes, as IPFS Cluster tells it in the answer: the
	// allocations, or for a pin to be everywhere every peer that is alive
	// (a valid ping metric). The blocks are sent there, or with local=true
	// to this peer's IPFS node only, which then takes the place of the
	// last allocation unless the user chose them.
	dests := allocs
	if rmin == -1 {
		for _, m := range c.monitor.latest(pingMetric, time.Now()) {
			dests = append(dests, m.Peer)
		}
	}
	if len(dests) == 0 {
		dests = []core.PeerID{c.self}
	}
	sendTo := dests
	if params.Local {
		sendTo = []core.PeerID{c.self}
		if len(allocs) > 0 && !slices.Contains(allocs, c.self) && len(opts.UserAllocations) == 0 {
			allocs[len(allocs)-1] = c.self
		}
	}
	sink := &blockSink{c: c, dests: sendTo}
	root, err := adder.Add(ctx, body, params, sink, func(o adder.Output) error {
		out := core.AddedOutput{Name: o.Name, Cid: core.NewCid(o.Cid), Size: o.Size, Bytes: o.Bytes}
		if o.Cid.Defined() {
			out.Allocations = dests
		}
		return emit(out)
	})
	if err != nil {
		return core.UndefCid, err
	}
	pin.Cid = core.NewCid(root)
	if params.NoPin {
		return pin.Cid, nil
	}
	if _, err := c.pin(ctx, pin, allocs); err != nil {
		return pin.Cid, err
	}
	return pin.Cid, nil
}

// blockSink writes the adder's block batches to the IPFS node of every
// destination peer: this peer's through its connector, the others' through
// the cluster RPC, all at once. A peer that fails a batch is sent no more
// (the adder calls PutBlocks one batch at a time): it would fetch the
// whole DAG when it pins anyway, and each later batch would wait on it.
type blockSink struct {
	c     *Cluster
	dests []core.PeerID
}

func (s *blockSink) PutBlocks(ctx context.Context, blks []blocks.Block) error {
	out := make([]core.Block, len(blks))
	for i, b := range blks {
		out[i] = core.Block{Cid: core.NewCid(b.Cid()), Data: b.RawData()}
	}
	errs := make([]error, len(s.dests))
	var wg sync.WaitGroup
	for i, p := range s.dests {
		wg.Go(func() {
			if p == s.c.self || s.c.rpc == nil {
				errs[i] = s.c.ipfs().BlockPut(ctx, out)
				return
			}
			if err := s.c.rpc.Client().BlockPut(ctx, p, out); err != nil {
				errs[i] = fmt.Errorf("sending blocks to %s: %w", p, err)
			}
		})
	}
	wg.Wait()
	// As IPFS Cluster: the add fails only when no destination took the
	// blocks; the pin then has its other peers fetch them.
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	switch {
	case failed == len(errs):
		return fmt.Errorf("failed to put block on all destinations: %w", errors.Join(errs...))
	case failed > 0:
		s.c.logger.Warn("some peers did not take the blocks of an add: they are sent no more of it", "error", errors.Join(errs...))
		kept := s.dests[:0:0]
		for i, p := range s.dests {
			if errs[i] == nil {
				kept = append(kept, p)
			}
		}
		s.dests = kept
	}
	return nil
}

// localIPFS serves this peer's IPFS node to the other peers (ServiceIPFS):
// its identity, and the blocks of an /add made on another peer.
type localIPFS struct{ c *Cluster }

func (l localIPFS) ID(ctx context.Context) (core.IPFSID, error) { return l.c.ipfs().ID(ctx) }

func (l localIPFS) BlockPut(ctx context.Context, blks []core.Block) error {
	return l.c.ipfs().BlockPut(ctx, blks)
}

func (l localIPFS) SwarmPeers(ctx context.Context) ([]core.PeerID, error) {
	return l.c.ipfs().SwarmPeers(ctx)
}

// RepoGC runs a GC on the IPFS node for another peer.
func (l localIPFS) RepoGC(ctx context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	return l.c.ipfs().RepoGC(ctx)
}

// clusterService serves the cluster's calls to other peers (ServiceCluster).
type clusterService struct{ c *Cluster }

func (s clusterService) ID(ctx context.Context) (core.ID, error) { return s.c.ID(ctx), nil }

// PeerAdd adds the calling peer (or req.Peer) to the consensus peerset, at
// the consensus address it gives, and answers this peer's ID.
func (s clusterService) PeerAdd(ctx context.Context, req network.PeerAddRequest) (core.ID, error) {
	p := req.Peer
	if p == "" {
		caller, ok := network.RemotePeer(ctx)
		if !ok {
			return core.ID{}, errors.New("PeerAdd: no peer to add")
		}
		p = caller
	}
	if err := s.c.consensus().AddPeer(ctx, p, req.ConsensusAddress); err != nil {
		return core.ID{}, err
	}
	s.c.members.stale()
	if s.c.net != nil {
		s.c.net.Remember(p)
	}
	s.c.publishMetrics(ctx) // the new peer learns this one's metrics now
	return s.c.ID(ctx), nil
}

func (s clusterService) PeerRemove(ctx context.Context, p core.PeerID) error {
	return s.c.PeerRemove(ctx, p)
}
