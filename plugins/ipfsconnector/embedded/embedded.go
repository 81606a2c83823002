// Package embedded is the built-in IPFS connector: an IPFS node that lives
// inside the plugin process (see ipfsnode), storing blocks and pins in
// badger v4. It needs no external daemon, which makes it the default.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/embedded/ipfsnode"
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
		Capabilities:     []string{"offline"},
		DefaultConfig:    def,
	}, nil
}

// Configure opens the node's repository in the plugin's data folder.
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
	id, err := loadOrCreateNodeID(filepath.Join(dir, "identity.json"))
	if err != nil {
		return err
	}
	node, err := ipfsnode.Open(ctx, ipfsnode.Options{Path: dir, StorageMax: cfg.StorageMax})
	if err != nil {
		return fmt.Errorf("opening the IPFS repository in %s: %w", dir, err)
	}
	c.cfg, c.node, c.id = cfg, node, id
	return nil
}

// loadOrCreateNodeID gives the embedded node an identity of its own,
// distinct from the cluster peer's, as a kubo daemon would have.
func loadOrCreateNodeID(path string) (core.PeerID, error) {
	if ident, err := config.LoadIdentity(path); err == nil {
		return ident.ID, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	ident, err := config.NewIdentity()
	if err != nil {
		return "", err
	}
	if err := ident.Save(path); err != nil {
		return "", err
	}
	return ident.ID, nil
}

// Close closes the repository.
func (c *Connector) Close(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node == nil {
		return nil
	}
	err := c.node.Close()
	c.node = nil
	return err
}

var errNotConfigured = errors.New("ipfs_connector.embedded is not configured")

func (c *Connector) n() (*ipfsnode.Node, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.node == nil {
		return nil, errNotConfigured
	}
	return c.node, nil
}

// ID returns the node's identity. The embedded node has no network
// addresses.
func (c *Connector) ID(context.Context) (core.IPFSID, error) {
	if _, err := c.n(); err != nil {
		return core.IPFSID{}, err
	}
	return core.IPFSID{ID: c.id, Addresses: []string{}}, nil
}

// Pin pins every request, PinConcurrency at a time, and streams the results
// as they complete. A pin whose blocks cannot be found fails when its
// timeout expires (at once while the node is offline).
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
				return fmt.Errorf("pin timed out after %s: %w", timeout, err)
			}
			return err
		}
		parallel(ctx, reqs, c.cfg.PinConcurrency, func(r core.IPFSPinRequest) core.Cid { return r.Cid }, run, yield)
	}
}

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
		parallel(ctx, cids, c.cfg.PinConcurrency, func(ci core.Cid) core.Cid { return ci }, run, yield)
	}
}

// parallel runs fn over items with bounded concurrency and yields one
// result per item in completion order. It stops early, cancelling the rest,
// when the consumer stops.
func parallel[T any](ctx context.Context, items []T, workers int, key func(T) core.Cid,
	fn func(context.Context, T) error, yield func(core.IPFSPinResult, error) bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if workers > len(items) {
		workers = len(items)
	}
	work := make(chan T)
	results := make(chan core.IPFSPinResult, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				res := core.IPFSPinResult{Cid: key(it)}
				if err := fn(ctx, it); err != nil {
					res.Error = err.Error()
				}
				select {
				case results <- res:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(work)
		for _, it := range items {
			select {
			case work <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	delivered := 0
	for res := range results {
		delivered++
		if !yield(res, nil) {
			cancel()
			for range results {
			}
			return
		}
	}
	if delivered < len(items) {
		yield(core.IPFSPinResult{}, ctx.Err())
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

// Resolve resolves an /ipfs or /ipld path within the local DAG.
func (c *Connector) Resolve(ctx context.Context, path string) (core.Cid, error) {
	node, err := c.n()
	if err != nil {
		return core.UndefCid, err
	}
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

// BlockGet returns a block's data.
func (c *Connector) BlockGet(ctx context.Context, ci core.Cid) ([]byte, error) {
	node, err := c.n()
	if err != nil {
		return nil, err
	}
	b, err := node.GetBlock(ctx, ci.Cid)
	if err != nil {
		return nil, err
	}
	return b.RawData(), nil
}

// SwarmPeers lists connected IPFS peers: the embedded node has no network
// yet, so none.
func (c *Connector) SwarmPeers(context.Context) ([]core.PeerID, error) {
	if _, err := c.n(); err != nil {
		return nil, err
	}
	return []core.PeerID{}, nil
}

// SwarmConnect is refused: the embedded node has no network.
func (c *Connector) SwarmConnect(context.Context, []string) error {
	return errors.New("ipfs_connector.embedded: the embedded IPFS node has no network to connect")
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
