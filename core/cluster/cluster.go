// Package cluster is the orchestrator of a pincluster peer: it routes every
// API call to the plugins service.json configures (allocator, consensus, pin
// tracker, IPFS connector), feeds the pin tracker with the operations the
// consensus commits, and answers the plugins' callbacks as their core.Host.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/network"
)

// Plugins are the four plugins the cluster routes to.
type Plugins struct {
	Consensus core.Consensus
	Allocator core.Allocator
	Tracker   core.PinTracker
	IPFS      core.IPFSConnector
}

// Cluster is one peer's orchestrator.
type Cluster struct {
	cfg      config.ClusterConfig
	self     core.PeerID
	peername string
	logger   hclog.Logger

	mu      sync.RWMutex
	plugins Plugins

	monitor   *monitor
	informers []informer
	members   *members
	// known holds how the other members last described themselves.
	known *knownPeers

	// OnRemoved, when set before Start, is called once if this peer is
	// removed from the peerset by another: the daemon then shuts down.
	OnRemoved func()

	// net is this peer's libp2p host and rpc the calls between the cores
	// of the cluster's peers over it (nil: the cluster has no network).
	net *network.Host
	rpc *network.RPC
	// peerMetrics sends this peer's metrics to the other peers and
	// receives theirs into the monitor.
	peerMetrics *network.Metrics

	// writes queues pin and unpin requests for the batched writer.
	writes   chan *writeRequest
	stopping chan struct{}
	// lead is the leader followers forward their writes to (forward.go).
	lead leaderCache

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// UseNetwork gives the cluster its peer's libp2p host and the RPC over it,
// before Start, and serves the cluster's calls there (ID, PeerAdd,
// PeerRemove, the local statuses, the IPFS node and its repo GC, and the
// metrics other peers publish). The host's addresses are the ones /id
// reports; this peer's metrics go to every other peer of the consensus
// peerset.
func (c *Cluster) UseNetwork(h *network.Host, rpc *network.RPC) error {
	c.net, c.rpc = h, rpc
	m, err := network.NewMetrics(rpc, c.onMetric)
	if err != nil {
		return err
	}
	c.peerMetrics = m
	return errors.Join(
		network.RegisterCluster(rpc, clusterService{c}),
		network.RegisterTracker(rpc, localTracker{c}),
		network.RegisterIPFS(rpc, localIPFS{c}),
	)
}

// New returns a cluster that is not started. Plugins are attached with Use
// as they start (each may call back into the cluster as its core.Host), and
// Start begins the background work.
func New(cfg *config.Service, self core.PeerID, logger hclog.Logger) (*Cluster, error) {
	infs, err := newInformers(cfg.Informer)
	if err != nil {
		return nil, err
	}
	infs = append([]informer{&pingInformer{interval: cfg.Cluster.MonitorPingInterval.D()}}, infs...)
	return &Cluster{
		cfg:       cfg.Cluster,
		self:      self,
		peername:  cfg.Cluster.Peername,
		logger:    logger,
		monitor:   newMonitor(),
		members:   newMembers(),
		known:     newKnownPeers(),
		informers: infs,
		writes:    make(chan *writeRequest, maxWriteBatch),
		stopping:  make(chan struct{}),
	}, nil
}

// Use attaches the plugin of one kind.
func (c *Cluster) Use(k core.Kind, p core.Plugin) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ok bool
	switch k {
	case core.KindConsensus:
		c.plugins.Consensus, ok = p.(core.Consensus)
	case core.KindAllocator:
		c.plugins.Allocator, ok = p.(core.Allocator)
	case core.KindPinTracker:
		c.plugins.Tracker, ok = p.(core.PinTracker)
	case core.KindIPFSConnector:
		c.plugins.IPFS, ok = p.(core.IPFSConnector)
	}
	if !ok {
		return fmt.Errorf("plugin does not implement the %s kind", k)
	}
	return nil
}

func (c *Cluster) consensus() core.Consensus {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.plugins.Consensus
}
func (c *Cluster) allocator() core.Allocator {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.plugins.Allocator
}
func (c *Cluster) tracker() core.PinTracker {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.plugins.Tracker
}
func (c *Cluster) ipfs() core.IPFSConnector {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.plugins.IPFS
}

// errNotStarted is returned by host callbacks made before a plugin is attached.
var errNotStarted = errors.New("the plugin serving this call is not started")

// Start begins feeding the tracker from the consensus and publishing metrics.
// All four plugins must be attached.
func (c *Cluster) Start(ctx context.Context) error {
	if c.consensus() == nil || c.allocator() == nil || c.tracker() == nil || c.ipfs() == nil {
		return errNotStarted
	}
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	// Metrics must exist before the first allocation.
	c.publishMetrics(ctx)
	ready := make(chan struct{})
	c.wg.Add(4)
	go func() { defer c.wg.Done(); c.runWriter(ctx) }()
	go func() { defer c.wg.Done(); c.watchPinset(ctx, ready) }()
	go func() { defer c.wg.Done(); c.runInformers(ctx) }()
	go func() { defer c.wg.Done(); c.runMaintenance(ctx) }()
	c.refreshMembers(ctx)
	if c.rpc != nil {
		// A restarted peer dials the peers it remembers, so that they learn
		// its current addresses before they need them.
		c.wg.Add(3)
		go func() {
			defer c.wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c.net.ConnectKnown(cctx)
		}()
		go func() { defer c.wg.Done(); c.runIPFSConnect(ctx) }()
		go func() { defer c.wg.Done(); c.runPeerWatch(ctx) }()
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		c.logger.Warn("the consensus watch stream is slow to open")
	}
	return nil
}

// Shutdown stops the background work. Plugins are stopped by their owner.
func (c *Cluster) Shutdown() {
	c.stopOnce.Do(func() { close(c.stopping) })
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
}

// watchPinset forwards every operation the consensus applies to the pin
// tracker, in batches, and reopens the stream if it breaks.
func (c *Cluster) watchPinset(ctx context.Context, ready chan struct{}) {
	resync := false
	for ctx.Err() == nil {
		opened := false
		for ev, err := range c.consensus().Watch(ctx) {
			if !opened {
				opened = true
				if ready != nil {
					close(ready)
					ready = nil
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					c.logger.Warn("pinset watch stream broke; reopening", "error", err)
				}
				resync = true
				break
			}
			if ev.Resync || resync {
				resync = false
				c.resyncTracker(ctx)
			}
			c.applyToTracker(ctx, ev.Ops)
		}
		if ready != nil && !opened {
			// A stream that ended before its first event still counts as open.
			close(ready)
			ready = nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
			resync = true
		}
	}
}

func (c *Cluster) applyToTracker(ctx context.Context, ops []core.PinOp) {
	if len(ops) == 0 {
		return
	}
	var track []core.Pin
	var untrack []core.Cid
	flush := func() {
		if len(track) > 0 {
			if err := c.tracker().Track(ctx, track); err != nil {
				c.logger.Error("tracker refused pins", "count", len(track), "error", err)
			}
			track = nil
		}
		if len(untrack) > 0 {
			if err := c.tracker().Untrack(ctx, untrack); err != nil {
				c.logger.Error("tracker refused unpins", "count", len(untrack), "error", err)
			}
			untrack = nil
		}
	}
	// Keep the order of operations on the same CID: flush whenever the
	// kind of operation changes.
	for _, op := range ops {
		if op.Remove {
			if len(track) > 0 {
				flush()
			}
			untrack = append(untrack, op.Pin.Cid)
		} else {
			if len(untrack) > 0 {
				flush()
			}
			track = append(track, op.Pin)
		}
	}
	flush()
}

// resyncTracker hands the whole pinset to the tracker after missed events.
func (c *Cluster) resyncTracker(ctx context.Context) {
	const batch = 1024
	var pins []core.Pin
	for p, err := range c.consensus().ListPins(ctx) {
		if err != nil {
			c.logger.Error("resync: listing the pinset failed", "error", err)
			return
		}
		pins = append(pins, p)
		if len(pins) == batch {
			c.applyToTracker(ctx, opsOf(pins))
			pins = pins[:0]
		}
	}
	c.applyToTracker(ctx, opsOf(pins))
}

func opsOf(pins []core.Pin) []core.PinOp {
	ops := make([]core.PinOp, len(pins))
	for i, p := range pins {
		ops[i] = core.PinOp{Pin: p}
	}
	return ops
}

// host answers the plugins' callbacks: they read the pinset and drive IPFS
// through the core.
type host struct{ c *Cluster }

// Host returns the core.Host to hand to plugins.
func (c *Cluster) Host() core.Host { return host{c} }

// GetPin implements core.Host.
func (h host) GetPin(ctx context.Context, ci core.Cid) (core.Pin, error) {
	cons := h.c.consensus()
	if cons == nil {
		return core.Pin{}, errNotStarted
	}
	return cons.GetPin(ctx, ci)
}

// ListPins implements core.Host.
func (h host) ListPins(ctx context.Context) iter.Seq2[core.Pin, error] {
	cons := h.c.consensus()
	if cons == nil {
		return core.ErrSeq[core.Pin](errNotStarted)
	}
	return cons.ListPins(ctx)
}

// Pin implements core.Host (IPFS pins requested by the tracker).
func (h host) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	ipfs := h.c.ipfs()
	if ipfs == nil {
		return core.ErrSeq[core.IPFSPinResult](errNotStarted)
	}
	return ipfs.Pin(ctx, reqs)
}

// Unpin implements core.Host.
func (h host) Unpin(ctx context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	ipfs := h.c.ipfs()
	if ipfs == nil {
		return core.ErrSeq[core.IPFSPinResult](errNotStarted)
	}
	return ipfs.Unpin(ctx, cids)
}

// PinLs implements core.Host.
func (h host) PinLs(ctx context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	ipfs := h.c.ipfs()
	if ipfs == nil {
		return core.ErrSeq[core.IPFSPinInfo](errNotStarted)
	}
	return ipfs.PinLs(ctx)
}

// PinLsCids implements core.Host.
func (h host) PinLsCids(ctx context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	ipfs := h.c.ipfs()
	if ipfs == nil {
		return nil, errNotStarted
	}
	return ipfs.PinLsCids(ctx, cids)
}

// IPFSEndpoint implements core.IPFSEndpointer: the endpoint of the IPFS
// connector's process, when it runs in one.
func (h host) IPFSEndpoint(ctx context.Context) (core.Endpoint, error) {
	if e, ok := h.c.ipfs().(core.IPFSEndpointer); ok {
		return e.IPFSEndpoint(ctx)
	}
	return core.Endpoint{}, nil
}

var (
	_ core.Host           = host{}
	_ core.IPFSEndpointer = host{}
)
