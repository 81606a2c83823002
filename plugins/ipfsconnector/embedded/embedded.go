// Package embedded is the built-in IPFS connector: an IPFS node that lives
// inside the plugin process (see ipfsnode), storing blocks and pins in
// badger v4. It needs no external daemon, which makes it the default.
//
// Unless configured offline, the node runs a libp2p host (TCP, Noise,
// Yamux; inside the cluster's private network when the cluster has a
// secret) with bitswap as its block exchange, so that a peer allocated a
// pin fetches the blocks from the nodes of the other peers it is connected
// to. There is no DHT: the core connects the nodes with SwarmConnect.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/embedded/ipfsnode"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// Name is the plugin's name in service.json.
const Name = "embedded"

// Version is the plugin's version.
const Version = "0.1.0"

// Connector serves the IPFS connector kind with an embedded node.
type Connector struct {
	mu   sync.RWMutex
	cfg  Config
	node *ipfsnode.Node
	host host.Host // nil when offline
	id   core.PeerID
}

// New returns an unconfigured connector.
func New() *Connector { return &Connector{} }

// Describe implements core.Plugin.
func (c *Connector) Describe(context.Context) (core.Description, error) {
	def, err := json.Marshal(DefaultConfig())
	if err != nil {
		return core.Description{}, err
	}
	return core.Description{
		Kind:             core.KindIPFSConnector,
		Name:             Name,
		Version:          Version,
		ProtocolVersions: []int{core.ProtocolVersion},
		Capabilities:     []string{"bitswap"},
		DefaultConfig:    def,
	}, nil
}

// Configure opens the node's repository in the plugin's data folder and,
// unless the node is offline, starts its libp2p host and bitswap.
func (c *Connector) Configure(ctx context.Context, raw json.RawMessage, env core.Environment, _ core.Host) error {
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	dir := env.DataDir
	if cfg.DataFolder != "" {
		dir = cfg.DataFolder
	}
	if dir == "" {
		return errors.New("ipfs_connector.embedded needs a data folder")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node != nil {
		return errors.New("ipfs_connector.embedded is already configured")
	}
	log := sdk.Logger().Named(Name)
	ident, err := loadOrCreateIdentity(filepath.Join(dir, "identity.json"))
	if err != nil {
		return err
	}
	opts := ipfsnode.Options{Path: dir, StorageMax: cfg.StorageMax}
	var h host.Host
	if !cfg.Offline {
		listen, err := cfg.ListenMultiaddress.parse()
		if err != nil {
			return err
		}
		h, err = newHost(hostOptions{
			key:          ident.PrivateKey,
			listen:       listen,
			portFallback: slices.Equal(cfg.ListenMultiaddress, Multiaddrs{DefaultListenMultiaddress}),
			secret:       env.Secret,
			log:          log,
		})
		if err != nil {
			return fmt.Errorf("ipfs_connector.embedded: %w", err)
		}
		opts.NewExchange = bitswapExchange(h)
		opts.BeforeFetch = waitForPeers(h, cfg.NoPeersTimeout.D())
	}
	node, err := ipfsnode.Open(ctx, opts)
	if err != nil {
		if h != nil {
			_ = h.Close()
		}
		return fmt.Errorf("opening the IPFS repository in %s: %w", dir, err)
	}
	c.cfg, c.node, c.host, c.id = cfg, node, h, ident.ID
	if h != nil {
		addrs, _ := hostAddrs(h)
		log.Info("embedded IPFS node online", "id", ident.ID.String(), "addresses", strings.Join(addrs, " "), "private_network", len(env.Secret) > 0)
	}
	return nil
}

// loadOrCreateIdentity gives the embedded node an identity of its own,
// distinct from the cluster peer's, as a kubo daemon would have. It is
// also the key of the node's libp2p host.
func loadOrCreateIdentity(path string) (*config.Identity, error) {
	if ident, err := config.LoadIdentity(path); err == nil {
		return ident, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ident, err := config.NewIdentity()
	if err != nil {
		return nil, err
	}
	if err := ident.Save(path); err != nil {
		return nil, err
	}
	return ident, nil
}

// Close stops bitswap, closes the repository and stops the host.
func (c *Connector) Close(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node == nil {
		return nil
	}
	err := c.node.Close()
	if c.host != nil {
		err = errors.Join(err, c.host.Close())
	}
	c.node, c.host = nil, nil
	return err
}

var errNotConfigured = errors.New("ipfs_connector.embedded is not configured")

var errOffline = errors.New("ipfs_connector.embedded: the node is offline (offline: true in its configuration)")

func (c *Connector) n() (*ipfsnode.Node, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.node == nil {
		return nil, errNotConfigured
	}
	return c.node, nil
}

// h returns the host, or nil when the node is offline.
func (c *Connector) h() (host.Host, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.node == nil {
		return nil, errNotConfigured
	}
	return c.host, nil
}

// ID returns the node's peer ID and the addresses it listens on, each
// ending with /p2p/<peer id> (none when offline).
func (c *Connector) ID(context.Context) (core.IPFSID, error) {
	h, err := c.h()
	if err != nil {
		return core.IPFSID{}, err
	}
	id := core.IPFSID{ID: c.id, Addresses: []string{}}
	if h != nil {
		if id.Addresses, err = hostAddrs(h); err != nil {
			return core.IPFSID{}, fmt.Errorf("ipfs_connector.embedded: listing addresses: %w", err)
		}
	}
	return id, nil
}

// Pin pins every request, PinConcurrency at a time, and streams the results
// as they complete. Missing blocks are fetched with bitswap from the
// connected nodes; the root blocks of a batch are asked for together, in
// one session (see ipfsnode.Node.Prefetch). A pin whose blocks cannot be
// found fails when its timeout expires (at once while the node is offline).
func (c *Connector) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		node, err := c.n()
		if err != nil {
			yield(core.IPFSPinResult{}, err)
			return
		}
		run := func(ctx context.Context, r core.IPFSPinRequest) error {
			timeout := r.Timeout
			if timeout <= 0 {
				timeout = c.cfg.PinTimeout.D()
			}
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := node.Pin(pctx, r.Cid.Cid, r.MaxDepth != 0)
			if err != nil && pctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
				return c.timeoutError(timeout, err)
			}
			return err
		}
		if len(reqs) > 1 {
			roots := make([]cid.Cid, len(reqs))
			for i, r := range reqs {
				roots[i] = r.Cid.Cid
			}
			stop := node.Prefetch(ctx, roots)
			defer stop()
		}
		sdk.PinEach(ctx, reqs, c.cfg.PinConcurrency, nil, func(r core.IPFSPinRequest) core.Cid { return r.Cid }, run, yield)
	}
}

// timeoutError explains a pin that ran out of time: which block it was
// still waiting for and how many nodes it could have come from.
func (c *Connector) timeoutError(timeout time.Duration, err error) error {
	var fe *ipfsnode.FetchError
	if !errors.As(err, &fe) {
		return fmt.Errorf("pin timed out after %s: %w", timeout, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pin timed out after %s fetching blocks", timeout)
	if len(fe.Missing) > 0 {
		fmt.Fprintf(&b, ": block %s not found", fe.Missing[0])
		if more := fe.MissingCount - 1; more > 0 {
			fmt.Fprintf(&b, " (and %d more)", more)
		}
	}
	fmt.Fprintf(&b, "; %d blocks fetched", fe.Fetched)
	if h, _ := c.h(); h != nil {
		fmt.Fprintf(&b, "; %d IPFS peers connected", len(connectedPeers(h)))
	}
	return &pinTimeoutError{msg: b.String(), err: err}
}

// pinTimeoutError keeps the node's error for errors.Is and errors.As but
// shows only the summary.
type pinTimeoutError struct {
	msg string
	err error
}

func (e *pinTimeoutError) Error() string { return e.msg }
func (e *pinTimeoutError) Unwrap() error { return e.err }

// Unpin unpins every CID; one that was not pinned is not an error.
func (c *Connector) Unpin(ctx context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		node, err := c.n()
		if err != nil {
			yield(core.IPFSPinResult{}, err)
			return
		}
		run := func(ctx context.Context, ci core.Cid) error {
			uctx, cancel := context.WithTimeout(ctx, c.cfg.UnpinTimeout.D())
			defer cancel()
			return node.Unpin(uctx, ci.Cid)
		}
		sdk.PinEach(ctx, cids, c.cfg.PinConcurrency, nil, func(ci core.Cid) core.Cid { return ci }, run, yield)
	}
}

// PinLs streams every recursive and direct pin.
func (c *Connector) PinLs(ctx context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	return func(yield func(core.IPFSPinInfo, error) bool) {
		node, err := c.n()
		if err != nil {
			yield(core.IPFSPinInfo{}, err)
			return
		}
		errStop := errors.New("stop")
		err = node.PinLs(ctx, func(pi ipfsnode.PinInfo) error {
			if !yield(core.IPFSPinInfo{Cid: core.NewCid(pi.Cid), Type: core.IPFSPinStatus(pi.Type)}, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(core.IPFSPinInfo{}, err)
		}
	}
}

// PinLsCids reports how each CID is pinned (direct, recursive or not at all).
func (c *Connector) PinLsCids(ctx context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	node, err := c.n()
	if err != nil {
		return nil, err
	}
	raw := make([]cid.Cid, len(cids))
	for i, ci := range cids {
		raw[i] = ci.Cid
	}
	types, err := node.IsPinnedSkipIndirect(ctx, raw)
	if err != nil {
		return nil, err
	}
	out := make([]core.IPFSPinInfo, len(cids))
	for i, ci := range cids {
		out[i] = core.IPFSPinInfo{Cid: ci, Type: core.IPFSPinStatus(types[i])}
	}
	return out, nil
}

// RepoStat reports the repository size.
func (c *Connector) RepoStat(ctx context.Context) (core.IPFSRepoStat, error) {
	node, err := c.n()
	if err != nil {
		return core.IPFSRepoStat{}, err
	}
	st, err := node.RepoStat(ctx)
	if err != nil {
		return core.IPFSRepoStat{}, err
	}
	return core.IPFSRepoStat{RepoSize: st.RepoSize, StorageMax: st.StorageMax, NumObjects: st.NumObjects}, nil
}

// RepoGC removes every block no pin needs and streams the removed keys.
func (c *Connector) RepoGC(ctx context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	return func(yield func(core.IPFSRepoGCKey, error) bool) {
		node, err := c.n()
		if err != nil {
			yield(core.IPFSRepoGCKey{}, err)
			return
		}
		errStop := errors.New("stop")
		err = node.GC(ctx, func(ci cid.Cid) error {
			if !yield(core.IPFSRepoGCKey{Key: core.NewCid(ci)}, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(core.IPFSRepoGCKey{}, err)
		}
	}
}

// boundNetwork bounds by pin_timeout a call that may wait for blocks from
// the network when the caller gave it no deadline.
func (c *Connector) boundNetwork(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.PinTimeout.D())
}

// Resolve resolves an /ipfs or /ipld path, fetching the blocks it crosses
// from connected nodes when they are not local.
func (c *Connector) Resolve(ctx context.Context, path string) (core.Cid, error) {
	node, err := c.n()
	if err != nil {
		return core.UndefCid, err
	}
	ctx, cancel := c.boundNetwork(ctx)
	defer cancel()
	ci, err := node.Resolve(ctx, path)
	if err != nil {
		return core.UndefCid, err
	}
	return core.NewCid(ci), nil
}

// BlockPut stores a batch of blocks, checking that each matches its CID.
func (c *Connector) BlockPut(ctx context.Context, bs []core.Block) error {
	node, err := c.n()
	if err != nil {
		return err
	}
	blks := make([]blocks.Block, len(bs))
	for i, b := range bs {
		sum, err := b.Cid.Prefix().Sum(b.Data)
		if err != nil {
			return fmt.Errorf("block %s: %w", b.Cid, err)
		}
		if !sum.Equals(b.Cid.Cid) {
			return fmt.Errorf("block %s: data does not match its CID", b.Cid)
		}
		if blks[i], err = blocks.NewBlockWithCid(b.Data, b.Cid.Cid); err != nil {
			return err
		}
	}
	return node.PutBlocks(ctx, blks)
}

// BlockGet returns a block's data, fetching it from connected nodes when
// it is not local.
func (c *Connector) BlockGet(ctx context.Context, ci core.Cid) ([]byte, error) {
	node, err := c.n()
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.boundNetwork(ctx)
	defer cancel()
	b, err := node.GetBlock(ctx, ci.Cid)
	if err != nil {
		return nil, err
	}
	return b.RawData(), nil
}

// SwarmPeers lists the IPFS nodes this node is connected to.
func (c *Connector) SwarmPeers(context.Context) ([]core.PeerID, error) {
	h, err := c.h()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return []core.PeerID{}, nil
	}
	return connectedPeers(h), nil
}

// SwarmConnect connects the node to the IPFS nodes at addrs (multiaddrs
// ending with /p2p/<peer id>, as ID returns them). The node's own
// addresses are skipped. The error names each address or peer that
// failed; the others are connected all the same.
func (c *Connector) SwarmConnect(ctx context.Context, addrs []string) error {
	h, err := c.h()
	if err != nil {
		return err
	}
	if h == nil {
		return errOffline
	}
	return connect(ctx, h, addrs)
}

// ConfigKey returns a key of the connector's configuration, by its JSON
// name (for example "storage_max").
func (c *Connector) ConfigKey(_ context.Context, key string) (json.RawMessage, error) {
	if _, err := c.n(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(c.cfg)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	v, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("ipfs_connector.embedded: no configuration key %q", key)
	}
	return v, nil
}

var _ core.IPFSConnector = (*Connector)(nil)
