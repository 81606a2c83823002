package raftstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Default values of Config fields. The raft timings and thresholds mirror
// IPFS Cluster's raft configuration defaults.
const (
	DefaultHeartbeatTimeout     = 1 * time.Second
	DefaultElectionTimeout      = 1 * time.Second
	DefaultCommitTimeout        = 50 * time.Millisecond
	DefaultMaxAppendEntries     = 64
	DefaultTrailingLogs         = 10240
	DefaultSnapshotInterval     = 2 * time.Minute
	DefaultSnapshotThreshold    = 8192
	DefaultLeaderLeaseTimeout   = 500 * time.Millisecond
	DefaultWaitForLeaderTimeout = 15 * time.Second
	DefaultSnapshotRetain       = 6
	DefaultMaxBatchOps          = 1024
	DefaultMaxBatchBytes        = 1 << 20
	DefaultSubscriberBuffer     = 1024
)

// Config configures a Store. Zero values are replaced by the defaults above
// when the Store is opened (see DefaultConfig), so a Config only needs
// DataFolder and LocalID.
type Config struct {
	// DataFolder holds the raft log, the snapshots and the map. It is
	// created if missing. Required.
	DataFolder string

	// LocalID is the raft server ID of this peer (the peer ID). Required.
	// With a nil transport it is also this peer's address.
	LocalID string

	// InitPeerset lists the server IDs of the voters the cluster is
	// bootstrapped with on first start. It defaults to LocalID alone and
	// must contain LocalID. It is ignored when the peer already has raft
	// state.
	InitPeerset []string

	// InitAddresses gives the raft addresses of servers of InitPeerset
	// (server ID -> address). A server without an entry gets, for LocalID,
	// the transport's local address, and for the others its ID as address
	// (which is what an in-memory transport expects).
	InitAddresses map[string]string

	// NoBootstrap disables bootstrapping on first start: the peer then waits
	// to be added to an existing cluster by its leader (see Store.AddVoter),
	// and Open does not wait for a leader.
	NoBootstrap bool

	// HeartbeatTimeout is the time in follower state without contact from a
	// leader before attempting an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is the time in candidate state without contact from a
	// leader before attempting a new election.
	ElectionTimeout time.Duration
	// CommitTimeout is the time without an Apply operation before the leader
	// sends an AppendEntries RPC to followers, to ensure a timely commit.
	CommitTimeout time.Duration
	// MaxAppendEntries bounds the number of log entries sent at once
	// (and written at once to the log store). At most 1024.
	MaxAppendEntries int
	// TrailingLogs is the number of log entries kept after a snapshot so
	// that slightly lagging followers catch up without a full snapshot.
	TrailingLogs uint64
	// SnapshotInterval is how often raft checks whether a snapshot should
	// be taken (raft adds some jitter).
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many log entries beyond the last snapshot
	// trigger a new snapshot.
	SnapshotThreshold uint64
	// LeaderLeaseTimeout is how long a leader stays leader without being
	// able to contact a quorum. At most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// WaitForLeaderTimeout is how long Open waits for a leader to be elected
	// (it is also the time limit to hand an entry to raft). A negative
	// value makes Open return without waiting.
	WaitForLeaderTimeout time.Duration
	// NoWaitForLeader makes Open return without waiting for a leader while
	// keeping WaitForLeaderTimeout as the time limit to hand an entry to
	// raft. The caller can wait itself with WaitForLeader and Barrier.
	NoWaitForLeader bool

	// SnapshotRetain is the number of snapshots kept on disk.
	SnapshotRetain int

	// MaxBatchOps bounds the number of operations that concurrent Apply
	// calls are coalesced into before a log entry is submitted. A single
	// Apply call with more operations is submitted on its own.
	MaxBatchOps int
	// MaxBatchBytes bounds the encoded size of a coalesced log entry, as
	// MaxBatchOps does for its number of operations.
	MaxBatchBytes int

	// SubscriberBuffer is the number of applied batches buffered per
	// subscriber before the subscriber is considered lagging and dropped.
	SubscriberBuffer int

	// BadgerOptions, when set, can adjust the options the map's badger
	// database is opened with (memory use, compression...). The directory,
	// logger and conflict detection are set by the Store.
	BadgerOptions func(badger.Options) badger.Options `json:"-"`
}

// DefaultConfig returns a Config with every tunable set to its default. The
// caller must still set DataFolder and LocalID.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:     DefaultHeartbeatTimeout,
		ElectionTimeout:      DefaultElectionTimeout,
		CommitTimeout:        DefaultCommitTimeout,
		MaxAppendEntries:     DefaultMaxAppendEntries,
		TrailingLogs:         DefaultTrailingLogs,
		SnapshotInterval:     DefaultSnapshotInterval,
		SnapshotThreshold:    DefaultSnapshotThreshold,
		LeaderLeaseTimeout:   DefaultLeaderLeaseTimeout,
		WaitForLeaderTimeout: DefaultWaitForLeaderTimeout,
		SnapshotRetain:       DefaultSnapshotRetain,
		MaxBatchOps:          DefaultMaxBatchOps,
		MaxBatchBytes:        DefaultMaxBatchBytes,
		SubscriberBuffer:     DefaultSubscriberBuffer,
	}
}

// withDefaults returns a copy of c where zero values are replaced by
// defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = d.HeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = d.ElectionTimeout
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = d.CommitTimeout
	}
	if c.MaxAppendEntries == 0 {
		c.MaxAppendEntries = d.MaxAppendEntries
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = d.SnapshotInterval
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = d.LeaderLeaseTimeout
	}
	if c.WaitForLeaderTimeout == 0 {
		c.WaitForLeaderTimeout = d.WaitForLeaderTimeout
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = d.SnapshotRetain
	}
	if c.MaxBatchOps == 0 {
		c.MaxBatchOps = d.MaxBatchOps
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.SubscriberBuffer == 0 {
		c.SubscriberBuffer = d.SubscriberBuffer
	}
	if len(c.InitPeerset) == 0 && c.LocalID != "" {
		c.InitPeerset = []string{c.LocalID}
	}
	return c
}

// Validate reports configuration errors that Open would reject. Zero values
// are valid (they select defaults); raft's own limits between timeouts are
// checked by Open.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.DataFolder == "" {
		errs = append(errs, errors.New("DataFolder is required"))
	}
	if c.LocalID == "" {
		errs = append(errs, errors.New("LocalID is required"))
	}
	if c.HeartbeatTimeout < 0 || c.ElectionTimeout < 0 || c.CommitTimeout < 0 ||
		c.SnapshotInterval < 0 || c.LeaderLeaseTimeout < 0 {
		errs = append(errs, errors.New("timeouts and intervals cannot be negative"))
	}
	if c.MaxAppendEntries < 0 || c.MaxAppendEntries > 1024 {
		errs = append(errs, fmt.Errorf("MaxAppendEntries must be between 1 and 1024, got %d", c.MaxAppendEntries))
	}
	if c.SnapshotRetain < 1 {
		errs = append(errs, fmt.Errorf("SnapshotRetain must be at least 1, got %d", c.SnapshotRetain))
	}
	if c.MaxBatchOps < 1 {
		errs = append(errs, fmt.Errorf("MaxBatchOps must be positive, got %d", c.MaxBatchOps))
	}
	if c.MaxBatchBytes < 1 {
		errs = append(errs, fmt.Errorf("MaxBatchBytes must be positive, got %d", c.MaxBatchBytes))
	}
	if c.SubscriberBuffer < 1 {
		errs = append(errs, fmt.Errorf("SubscriberBuffer must be positive, got %d", c.SubscriberBuffer))
	}
	if !c.NoBootstrap && c.LocalID != "" {
		seen := make(map[string]bool, len(c.InitPeerset))
		for _, p := range c.InitPeerset {
			if p == "" {
				errs = append(errs, errors.New("InitPeerset contains an empty ID"))
			}
			if seen[p] {
				errs = append(errs, fmt.Errorf("InitPeerset contains %q twice", p))
			}
			seen[p] = true
		}
		if !seen[c.LocalID] {
			errs = append(errs, fmt.Errorf("InitPeerset must contain LocalID %q (use NoBootstrap to join an existing cluster)", c.LocalID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("raftstore: invalid config: %w", err)
	}
	return nil
}
