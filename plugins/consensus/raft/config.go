package raft

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/consensus/raft/raftstore"
)

// Config is the plugin's section of service.json (consensus.raft). Its keys
// and defaults follow IPFS Cluster's raft consensus.
type Config struct {
	// ListenMultiaddress is where the plugin's own libp2p host listens for
	// the raft traffic of the other peers (TCP). Empty disables the
	// network: the peer can then only be a cluster of one.
	ListenMultiaddress string `json:"listen_multiaddress"`
	// AnnounceMultiaddress, when set, is the address other peers use to
	// reach this one (behind NAT or port mapping), instead of one derived
	// from ListenMultiaddress.
	AnnounceMultiaddress string `json:"announce_multiaddress"`
	// Join makes a peer without raft state wait to be added to an existing
	// cluster (AddPeer on a member) instead of starting a cluster of its
	// own.
	Join bool `json:"join"`
	// InitPeerset are the voters of a new cluster, each "<peer ID>" (this
	// peer) or "<peer ID>=<raft multiaddr>" (the others, as their
	// Address() reports it); empty means this peer alone.
	InitPeerset          []string        `json:"init_peerset"`
	WaitForLeaderTimeout config.Duration `json:"wait_for_leader_timeout"`
	NetworkTimeout       config.Duration `json:"network_timeout"`
	CommitRetries        int             `json:"commit_retries"`
	CommitRetryDelay     config.Duration `json:"commit_retry_delay"`
	BackupsRotate        int             `json:"backups_rotate"`
	HeartbeatTimeout     config.Duration `json:"heartbeat_timeout"`
	ElectionTimeout      config.Duration `json:"election_timeout"`
	CommitTimeout        config.Duration `json:"commit_timeout"`
	MaxAppendEntries     int             `json:"max_append_entries"`
	TrailingLogs         uint64          `json:"trailing_logs"`
	SnapshotInterval     config.Duration `json:"snapshot_interval"`
	SnapshotThreshold    uint64          `json:"snapshot_threshold"`
	LeaderLeaseTimeout   config.Duration `json:"leader_lease_timeout"`
	// DataFolder overrides the folder the core assigns to the plugin.
	DataFolder string `json:"data_folder,omitempty"`
	// DatastoreNamespace is IPFS Cluster's namespace of the raft state in
	// its datastore ("/r"). Accepted and kept, not used: the pinset has a
	// database of its own in the data folder.
	DatastoreNamespace string `json:"datastore_namespace,omitempty"`
}

// DefaultListenMultiaddress is where the raft host listens by default.
const DefaultListenMultiaddress = "/ip4/0.0.0.0/tcp/9098"

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ListenMultiaddress:   DefaultListenMultiaddress,
		InitPeerset:          []string{},
		WaitForLeaderTimeout: config.Duration(raftstore.DefaultWaitForLeaderTimeout),
		NetworkTimeout:       config.Duration(10 * time.Second),
		CommitRetries:        1,
		CommitRetryDelay:     config.Duration(200 * time.Millisecond),
		BackupsRotate:        raftstore.DefaultSnapshotRetain,
		HeartbeatTimeout:     config.Duration(raftstore.DefaultHeartbeatTimeout),
		ElectionTimeout:      config.Duration(raftstore.DefaultElectionTimeout),
		CommitTimeout:        config.Duration(raftstore.DefaultCommitTimeout),
		MaxAppendEntries:     raftstore.DefaultMaxAppendEntries,
		TrailingLogs:         raftstore.DefaultTrailingLogs,
		SnapshotInterval:     config.Duration(raftstore.DefaultSnapshotInterval),
		SnapshotThreshold:    raftstore.DefaultSnapshotThreshold,
		LeaderLeaseTimeout:   config.Duration(raftstore.DefaultLeaderLeaseTimeout),
	}
}

// parseConfig decodes the section over the defaults and validates it.
func parseConfig(raw json.RawMessage) (Config, error) {
	cfg := DefaultConfig()
	if err := config.DecodeSection("consensus."+Name, raw, &cfg); err != nil {
		return cfg, err
	}
	if cfg.CommitRetries < 0 {
		return cfg, fmt.Errorf("consensus.raft.commit_retries must not be negative")
	}
	if cfg.BackupsRotate < 1 {
		return cfg, fmt.Errorf("consensus.raft.backups_rotate must be at least 1")
	}
	if cfg.NetworkTimeout <= 0 {
		return cfg, fmt.Errorf("consensus.raft.network_timeout must be positive")
	}
	if cfg.ListenMultiaddress != "" {
		if _, err := ma.NewMultiaddr(cfg.ListenMultiaddress); err != nil {
			return cfg, fmt.Errorf("consensus.raft.listen_multiaddress: %w", err)
		}
	}
	if cfg.AnnounceMultiaddress != "" {
		if _, err := ma.NewMultiaddr(cfg.AnnounceMultiaddress); err != nil {
			return cfg, fmt.Errorf("consensus.raft.announce_multiaddress: %w", err)
		}
	}
	if _, err := cfg.initPeers(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// initPeer is one entry of init_peerset.
type initPeer struct {
	id   core.PeerID
	addr string // empty for this peer
}

// initPeers parses init_peerset.
func (c Config) initPeers() ([]initPeer, error) {
	out := make([]initPeer, 0, len(c.InitPeerset))
	seen := map[core.PeerID]bool{}
	for _, e := range c.InitPeerset {
		idStr, addr, _ := strings.Cut(strings.TrimSpace(e), "=")
		id, err := core.DecodePeerID(strings.TrimSpace(idStr))
		if err != nil {
			return nil, fmt.Errorf("consensus.raft.init_peerset: %q is not \"<peer ID>\" or \"<peer ID>=<multiaddr>\": %w", e, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("consensus.raft.init_peerset lists %s twice", id)
		}
		seen[id] = true
		addr = strings.TrimSpace(addr)
		if addr != "" {
			if _, err := parseRaftAddr(addr); err != nil {
				return nil, fmt.Errorf("consensus.raft.init_peerset: address of %s: %w", id, err)
			}
		}
		out = append(out, initPeer{id: id, addr: addr})
	}
	return out, nil
}

// storeConfig maps the plugin config to the raft store's.
func (c Config) storeConfig(dataDir, self string) raftstore.Config {
	sc := raftstore.DefaultConfig()
	sc.DataFolder = dataDir
	if c.DataFolder != "" {
		sc.DataFolder = c.DataFolder
	}
	sc.LocalID = self
	sc.HeartbeatTimeout = c.HeartbeatTimeout.D()
	sc.ElectionTimeout = c.ElectionTimeout.D()
	sc.CommitTimeout = c.CommitTimeout.D()
	sc.MaxAppendEntries = c.MaxAppendEntries
	sc.TrailingLogs = c.TrailingLogs
	sc.SnapshotInterval = c.SnapshotInterval.D()
	sc.SnapshotThreshold = c.SnapshotThreshold
	sc.LeaderLeaseTimeout = c.LeaderLeaseTimeout.D()
	sc.WaitForLeaderTimeout = c.WaitForLeaderTimeout.D()
	sc.SnapshotRetain = c.BackupsRotate
	return sc
}

// leaderTimeout bounds the waits for a leader (and for a write to be
// handed to raft).
func (c Config) leaderTimeout() time.Duration {
	if d := c.WaitForLeaderTimeout.D(); d > 0 {
		return d
	}
	return raftstore.DefaultWaitForLeaderTimeout
}

// applyTimeout bounds a write forwarded to the leader, on the leader.
func (c Config) applyTimeout() time.Duration { return c.leaderTimeout() }

// heartbeat is raft's heartbeat timeout.
func (c Config) heartbeat() time.Duration {
	if d := c.HeartbeatTimeout.D(); d > 0 {
		return d
	}
	return raftstore.DefaultHeartbeatTimeout
}
