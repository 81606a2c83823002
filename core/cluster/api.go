package cluster

import (
	"context"
	"iter"
	"mime/multipart"
	"time"

	blocks "github.com/ipfs/go-block-format"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/adder"
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
		for _, p := range peers {
			id := core.ID{ID: p, Error: "peer not reachable: this peer runs standalone"}
			if p == c.self {
				id = c.ID(ctx)
			}
			if !yield(id, nil) {
				return
			}
		}
	}
}

// PeerRemove removes a peer from the peerset.
func (c *Cluster) PeerRemove(ctx context.Context, p core.PeerID) error {
	return c.consensus().RemovePeer(ctx, p)
}

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
// is a list, never null.
func fromState(p core.Pin) core.Pin {
	if p.Origins == nil {
		p.Origins = []string{}
	}
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

// Status reports the status of one CID. With one peer the local and global
// forms carry the same single entry.
func (c *Cluster) Status(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
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

// StatusAll streams the status of every pin matching filter.
func (c *Cluster) StatusAll(ctx context.Context, filter core.TrackerStatus, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	return c.globalStream(ctx, c.tracker().StatusAll(ctx, filter))
}

// Recover re-queues a CID in error.
func (c *Cluster) Recover(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
	infos, err := c.tracker().Recover(ctx, []core.Cid{ci})
	return c.globalOne(ctx, infos, err)
}

// RecoverAll re-queues every pin in error and streams those re-queued.
func (c *Cluster) RecoverAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	return c.globalStream(ctx, c.tracker().RecoverAll(ctx))
}

// Sync re-checks a CID against IPFS.
func (c *Cluster) Sync(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
	infos, err := c.tracker().Sync(ctx, []core.Cid{ci})
	return c.globalOne(ctx, infos, err)
}

// SyncAll re-checks every pin against IPFS and streams the result.
func (c *Cluster) SyncAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	return c.globalStream(ctx, c.tracker().SyncAll(ctx))
}

// RepoGC runs a garbage collection on the IPFS node.
func (c *Cluster) RepoGC(ctx context.Context, local bool) (core.GlobalRepoGC, error) {
	gc := core.RepoGC{Peer: c.self, Peername: c.peername, Keys: []core.IPFSRepoGCKey{}}
	for k, err := range c.ipfs().RepoGC(ctx) {
		if err != nil {
			gc.Error = err.Error()
			break
		}
		gc.Keys = append(gc.Keys, k)
	}
	return core.GlobalRepoGC{PeerMap: map[string]core.RepoGC{c.self.String(): gc}}, nil
}

// ConnectGraph describes the cluster's and the IPFS nodes' links.
func (c *Cluster) ConnectGraph(ctx context.Context) (core.ConnectGraph, error) {
	self := c.self.String()
	g := core.ConnectGraph{
		ClusterID:         c.self,
		IDtoPeername:      map[string]string{self: c.peername},
		IPFSLinks:         map[string][]core.PeerID{},
		ClusterLinks:      map[string][]core.PeerID{self: {}},
		ClusterTrustLinks: map[string]bool{self: true},
		ClustertoIPFS:     map[string]core.PeerID{},
	}
	iid, err := c.ipfs().ID(ctx)
	if err == nil && iid.ID != "" {
		g.ClustertoIPFS[self] = iid.ID
		links, err := c.ipfs().SwarmPeers(ctx)
		if err != nil || links == nil {
			links = []core.PeerID{}
		}
		g.IPFSLinks[iid.ID.String()] = links
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
	rmin, rmax := opts.ReplicationFactorMin, opts.ReplicationFactorMax
	if rmin == 0 {
		rmin = c.cfg.ReplicationFactorMin
	}
	if rmax == 0 {
		rmax = c.cfg.ReplicationFactorMax
	}
	var allocs []core.PeerID
	if rmin != -1 {
		a, err := c.allocate(ctx, core.UndefCid, rmin, rmax, nil, opts.UserAllocations)
		if err != nil {
			return core.UndefCid, err
		}
		allocs = a
	}
	dests := allocs
	if len(dests) == 0 {
		dests = []core.PeerID{c.self}
	}
	sink := blockSink{ipfs: c.ipfs()}
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

// blockSink writes the adder's block batches to the IPFS connector.
type blockSink struct{ ipfs core.IPFSConnector }

func (s blockSink) PutBlocks(ctx context.Context, blks []blocks.Block) error {
	out := make([]core.Block, len(blks))
	for i, b := range blks {
		out[i] = core.Block{Cid: core.NewCid(b.Cid()), Data: b.RawData()}
	}
	return s.ipfs.BlockPut(ctx, out)
}
