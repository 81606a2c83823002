// Package kubo is an IPFS connector that drives a kubo daemon over its
// HTTP RPC API (POST /api/v0/...), as IPFS Cluster's ipfshttp connector
// does. It is tested against kubo 0.43.1 (scripts/install-kubo.sh builds
// it).
//
// The connector needs kubo only when it is called: it configures without
// contacting kubo, so a peer starts while kubo is down; calls then fail with
// "kubo is not reachable at <addr>: …" and work again, without a restart,
// as soon as kubo answers.
package kubo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// Name is the plugin's name in service.json.
const Name = "kubo"

// Version is the plugin's version.
const Version = "0.1.0"

// Connector serves the IPFS connector kind with a kubo daemon.
type Connector struct {
	// name is the plugin's name in service.json: Name, or IPFSHTTPName.
	name string

	mu     sync.RWMutex
	cfg    Config
	c      *client
	cancel context.CancelFunc // ends background work at Close
}

// New returns an unconfigured connector.
func New() *Connector { return &Connector{name: Name} }

// NewIPFSHTTP returns an unconfigured connector named IPFSHTTPName, the
// name of IPFS Cluster's kubo connector: it is configured by
// ipfs_connector.ipfshttp and says so in its errors.
func NewIPFSHTTP() *Connector { return &Connector{name: IPFSHTTPName} }

// pluginName is the connector's name in service.json.
func (k *Connector) pluginName() string {
	if k.name == "" {
		return Name
	}
	return k.name
}

// section is the connector's section of service.json.
func (k *Connector) section() string { return "ipfs_connector." + k.pluginName() }

// Describe implements core.Plugin.
func (k *Connector) Describe(context.Context) (core.Description, error) {
	def, err := json.Marshal(DefaultConfig())
	if err != nil {
		return core.Description{}, err
	}
	return core.Description{
		Kind:             core.KindIPFSConnector,
		Name:             k.pluginName(),
		Version:          Version,
		ProtocolVersions: []int{core.ProtocolVersion},
		DefaultConfig:    def,
	}, nil
}

// Configure reads the configuration. It does not need kubo to be up: it
// checks in the background whether kubo answers and logs the outcome.
func (k *Connector) Configure(_ context.Context, raw json.RawMessage, _ core.Environment, _ core.Host) error {
	cfg, ep, err := parseConfig(raw, k.section())
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		return fmt.Errorf("%s is already configured", k.section())
	}
	k.cfg = cfg
	k.c = &client{ep: ep, http: newHTTPClient(ep, cfg.PinConcurrency), pinSem: make(chan struct{}, cfg.PinConcurrency)}
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	log := sdk.Logger().Named(k.pluginName())
	if cfg.InformerTriggerInterval > 0 {
		log.Warn(k.section() + ".informer_trigger_interval is kept but not used: the informers send their metrics every half of their metric_ttl")
	}
	go k.probe(ctx, log, cfg.NodeMultiaddress)
	return nil
}

// probe logs whether kubo answers, once, right after Configure.
func (k *Connector) probe(ctx context.Context, log hclog.Logger, addr string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := k.ID(ctx)
	switch {
	case errors.Is(err, context.Canceled):
	case err != nil:
		log.Warn("kubo does not answer yet; IPFS calls fail until it does", "node_multiaddress", addr, "error", err)
	default:
		log.Info("connected to kubo", "node_multiaddress", addr, "ipfs_id", id.ID.String())
	}
}

// Close releases idle connections.
func (k *Connector) Close(context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c == nil {
		return nil
	}
	k.cancel()
	k.c.http.CloseIdleConnections()
	k.c = nil
	return nil
}

// client returns the RPC client and the configuration.
func (k *Connector) client() (*client, Config, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.c == nil {
		return nil, Config{}, fmt.Errorf("%s is not configured", k.section())
	}
	return k.c, k.cfg, nil
}

// ID returns kubo's peer ID and addresses.
func (k *Connector) ID(ctx context.Context) (core.IPFSID, error) {
	c, cfg, err := k.client()
	if err != nil {
		return core.IPFSID{}, err
	}
	var out struct {
		ID        string
		Addresses []string
	}
	if err := k.request(ctx, c, cfg, "id", nil, &out); err != nil {
		return core.IPFSID{}, err
	}
	id, err := core.DecodePeerID(out.ID)
	if err != nil {
		return core.IPFSID{}, fmt.Errorf("kubo id: bad peer ID %q: %w", out.ID, err)
	}
	if out.Addresses == nil {
		out.Addresses = []string{}
	}
	return core.IPFSID{ID: id, Addresses: out.Addresses}, nil
}

// RepoStat reports the repository size and kubo's Datastore.StorageMax
// (repo/stat with size-only: kubo does not count the objects, which would
// cost a walk of the whole blockstore, so NumObjects is 0).
func (k *Connector) RepoStat(ctx context.Context) (core.IPFSRepoStat, error) {
	c, cfg, err := k.client()
	if err != nil {
		return core.IPFSRepoStat{}, err
	}
	var out struct {
		RepoSize   uint64
		StorageMax uint64
		NumObjects uint64
	}
	if err := k.request(ctx, c, cfg, "repo/stat", url.Values{"size-only": {"true"}}, &out); err != nil {
		return core.IPFSRepoStat{}, err
	}
	return core.IPFSRepoStat{RepoSize: out.RepoSize, StorageMax: out.StorageMax, NumObjects: out.NumObjects}, nil
}

// RepoGC runs kubo's garbage collection and streams the removed keys (and
// the errors kubo reports for single keys). Kubo names the removed blocks
// by multihash: their keys come back as CIDv1 with the raw codec.
func (k *Connector) RepoGC(ctx context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	return func(yield func(core.IPFSRepoGCKey, error) bool) {
		c, cfg, err := k.client()
		if err != nil {
			yield(core.IPFSRepoGCKey{}, err)
			return
		}
		ctx, cancel := withTimeout(ctx, cfg.RepoGCTimeout.D(), "kubo repo/gc", "repogc_timeout")
		defer cancel()
		r, err := c.post(ctx, "repo/gc", url.Values{"stream-errors": {"true"}}, nil, "", nil)
		if err != nil {
			yield(core.IPFSRepoGCKey{}, err)
			return
		}
		type gcLine struct {
			Key *struct {
				Cid string `json:"/"`
			}
			Error string
		}
		var convErr error
		stopped := false
		err = stream(r, func(l gcLine) bool {
			out := core.IPFSRepoGCKey{Error: l.Error}
			if l.Key != nil && l.Key.Cid != "" {
				ci, err := core.DecodeCid(l.Key.Cid)
				if err != nil {
					convErr = fmt.Errorf("kubo repo/gc: bad key %q: %w", l.Key.Cid, err)
					return false
				}
				out.Key = ci
			}
			if !out.Key.Defined() && out.Error == "" {
				return true
			}
			if !yield(out, nil) {
				stopped = true
				return false
			}
			return true
		})
		if stopped {
			return
		}
		if err == nil {
			err = convErr
		}
		if err != nil {
			yield(core.IPFSRepoGCKey{}, err)
		}
	}
}

// Resolve resolves an /ipfs, /ipns or /ipld path (or a bare CID, optionally
// followed by a path) to the CID it names.
func (k *Connector) Resolve(ctx context.Context, p string) (core.Cid, error) {
	c, cfg, err := k.client()
	if err != nil {
		return core.UndefCid, err
	}
	if p == "" {
		return core.UndefCid, errors.New("cannot resolve an empty path")
	}
	var out struct{ Path string }
	q := url.Values{"arg": {p}, "recursive": {"true"}}
	if err := k.request(ctx, c, cfg, "resolve", q, &out); err != nil {
		return core.UndefCid, err
	}
	rest, ok := strings.CutPrefix(out.Path, "/ipfs/")
	if !ok {
		rest, ok = strings.CutPrefix(out.Path, "/ipld/")
	}
	if !ok {
		return core.UndefCid, fmt.Errorf("kubo resolve: %q resolved to %q, not an /ipfs or /ipld path", p, out.Path)
	}
	cidStr, remainder, _ := strings.Cut(rest, "/")
	if remainder != "" {
		return core.UndefCid, fmt.Errorf("kubo resolve: %q resolves inside block %s (at /%s), not to a block of its own", p, cidStr, remainder)
	}
	ci, err := core.DecodeCid(cidStr)
	if err != nil {
		return core.UndefCid, fmt.Errorf("kubo resolve: bad CID in %q: %w", out.Path, err)
	}
	return ci, nil
}

// SwarmPeers lists the peers kubo is connected to (none when kubo runs
// offline).
func (k *Connector) SwarmPeers(ctx context.Context) ([]core.PeerID, error) {
	c, cfg, err := k.client()
	if err != nil {
		return nil, err
	}
	var out struct {
		Peers []struct{ Peer string }
	}
	if err := k.request(ctx, c, cfg, "swarm/peers", nil, &out); err != nil {
		var ke *Error
		if errors.As(err, &ke) && strings.Contains(ke.Message, "online mode") {
			// kubo runs offline (ipfs daemon --offline): no peers.
			return []core.PeerID{}, nil
		}
		return nil, err
	}
	peers := make([]core.PeerID, 0, len(out.Peers))
	seen := make(map[core.PeerID]bool, len(out.Peers))
	for _, p := range out.Peers {
		id, err := core.DecodePeerID(p.Peer)
		if err != nil {
			return nil, fmt.Errorf("kubo swarm/peers: bad peer ID %q: %w", p.Peer, err)
		}
		if !seen[id] {
			seen[id] = true
			peers = append(peers, id)
		}
	}
	return peers, nil
}

// SwarmConnect asks kubo to connect to every multiaddr (each with /p2p/).
func (k *Connector) SwarmConnect(ctx context.Context, addrs []string) error {
	c, cfg, err := k.client()
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return nil
	}
	return k.request(ctx, c, cfg, "swarm/connect", url.Values{"arg": addrs}, nil)
}

// ConfigKey returns the value of one key of kubo's configuration, for
// example "Datastore.StorageMax".
func (k *Connector) ConfigKey(ctx context.Context, key string) (json.RawMessage, error) {
	c, cfg, err := k.client()
	if err != nil {
		return nil, err
	}
	var out struct {
		Key   string
		Value json.RawMessage
	}
	if err := k.request(ctx, c, cfg, "config", url.Values{"arg": {key}}, &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}

// request calls a command bounded by ipfs_request_timeout.
func (k *Connector) request(ctx context.Context, c *client, cfg Config, cmd string, q url.Values, v any) error {
	ctx, cancel := withTimeout(ctx, cfg.IPFSRequestTimeout.D(), "kubo "+cmd, "ipfs_request_timeout")
	defer cancel()
	return c.call(ctx, cmd, q, v)
}

var _ core.IPFSConnector = (*Connector)(nil)
