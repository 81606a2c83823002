package raft

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/consensus/raft/raftstore"
)

// Config is the plugin's section of service.json (consensus.raft). Its keys
// and defaults follow IPFS Cluster's raft consensus.
type Config struct {
	// InitPeerset are the peer IDs of the voters of a new cluster; empty
	// means this peer alone.
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
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
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
	if err := config.Decode(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("consensus.raft: %w", err)
	}
	if cfg.CommitRetries < 0 {
		return cfg, fmt.Errorf("consensus.raft.commit_retries must not be negative")
	}
	if cfg.BackupsRotate < 1 {
		return cfg, fmt.Errorf("consensus.raft.backups_rotate must be at least 1")
	}
	return cfg, nil
}

// storeConfig maps the plugin config to the raft store's.
func (c Config) storeConfig(dataDir, self string) raftstore.Config {
	sc := raftstore.DefaultConfig()
	sc.DataFolder = dataDir
	if c.DataFolder != "" {
		sc.DataFolder = c.DataFolder
	}
	sc.LocalID = self
	if len(c.InitPeerset) > 0 {
		sc.InitPeerset = c.InitPeerset
	}
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
