package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Names of the files and folders under Config.DataFolder (raft's file
// snapshot store adds a "snapshots" folder).
const (
	raftDBFile  = "raft.db"
	stateFolder = "state"
)

// logCacheSize is the number of recent log entries kept in memory in front
// of the log store. Entries can be up to MaxBatchBytes large, so it is
// small.
const logCacheSize = 64

// Store is a replicated, durable key/value map. All methods are safe for
// concurrent use.
type Store struct {
	cfg    Config
	logger hclog.Logger

	raft *raft.Raft
	fsm  *fsm
	bolt *raftboltdb.BoltStore

	applyCh     chan *applyReq
	closing     chan struct{}
	batcherDone chan struct{}

	// Coalescing statistics (see Stats).
	entries atomic.Uint64
	ops     atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the store in cfg.DataFolder and starts raft.
//
// transport connects this peer to the others; when nil an in-memory
// transport whose address is cfg.LocalID is used, which is enough for a
// single voter. Open takes ownership of the transport: it is closed by
// Close, or before Open returns an error.
//
// On first start (no raft state on disk) the cluster is bootstrapped with
// cfg.InitPeerset unless cfg.NoBootstrap is set. Open then waits up to
// cfg.WaitForLeaderTimeout for a leader to be known (unless
// cfg.NoWaitForLeader is set), and fails with ErrNoLeader when none is.
// When this peer is the leader, Open also waits for the committed log
// entries to be applied, so that reads see all of them (see Barrier); a
// follower catches up in the background (see WaitForIndex).
//
// logger receives the logs of raft and of the storage; nil discards them.
func Open(cfg Config, transport raft.Transport, logger hclog.Logger) (_ *Store, err error) {
	raftStarted := false
	defer func() {
		// Once started, raft closes the transport when shut down.
		if err != nil && !raftStarted && transport != nil {
			if c, ok := transport.(raft.WithClose); ok {
				_ = c.Close()
			}
		}
	}()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if transport == nil {
		_, transport = raft.NewInmemTransport(raft.ServerAddress(cfg.LocalID))
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(cfg.DataFolder, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: creating data folder: %w", err)
	}

	s := &Store{
		cfg:         cfg,
		logger:      logger,
		applyCh:     make(chan *applyReq),
		closing:     make(chan struct{}),
		batcherDone: make(chan struct{}),
	}
	// On failure, undo what was opened.
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	s.bolt, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(cfg.DataFolder, raftDBFile),
		BoltOptions: &bbolt.Options{
			Timeout: 5 * time.Second,
			// The freelist is rebuilt when opening instead of being written
			// at every commit: less I/O per log write.
			NoFreelistSync: true,
			FreelistType:   bbolt.FreelistMapType,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: opening raft log store: %w", err)
	}
	cleanup = append(cleanup, func() { _ = s.bolt.Close() })

	logs, err := raft.NewLogCache(logCacheSize, s.bolt)
	if err != nil {
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataFolder, cfg.SnapshotRetain, logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("raftstore: opening snapshot store: %w", err)
	}

	db, err := openBadger(cfg, logger.Named("badger"))
	if err != nil {
		return nil, err
	}
	s.fsm, err = newFSM(db, logger.Named("fsm"), cfg.SubscriberBuffer)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftstore: reading state: %w", err)
	}
	cleanup = append(cleanup, func() { _ = s.fsm.close() })

	rcfg := raft.DefaultConfig()
	rcfg.LocalID = raft.ServerID(cfg.LocalID)
	rcfg.Logger = logger.Named("raft")
	rcfg.HeartbeatTimeout = cfg.HeartbeatTimeout
	rcfg.ElectionTimeout = cfg.ElectionTimeout
	rcfg.CommitTimeout = cfg.CommitTimeout
	rcfg.MaxAppendEntries = cfg.MaxAppendEntries
	rcfg.TrailingLogs = cfg.TrailingLogs
	rcfg.SnapshotInterval = cfg.SnapshotInterval
	rcfg.SnapshotThreshold = cfg.SnapshotThreshold
	rcfg.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	if err := raft.ValidateConfig(rcfg); err != nil {
		return nil, fmt.Errorf("raftstore: invalid config: %w", err)
	}

	hasState, err := raft.HasExistingState(logs, s.bolt, snaps)
	if err != nil {
		return nil, fmt.Errorf("raftstore: checking raft state: %w", err)
	}
	restoreOnStart, err := checkConsistency(s.fsm.appliedIndex(), hasState, logs, snaps)
	if err != nil {
		return nil, err
	}
	// The map is durable: when it already holds the latest snapshot, raft
	// only needs to replay the log entries after it.
	rcfg.NoSnapshotRestoreOnStart = !restoreOnStart

	if !hasState && !cfg.NoBootstrap {
		var conf raft.Configuration
		for _, id := range cfg.InitPeerset {
			addr := raft.ServerAddress(id)
			if a, ok := cfg.InitAddresses[id]; ok && a != "" {
				addr = raft.ServerAddress(a)
			} else if id == cfg.LocalID {
				addr = transport.LocalAddr()
			}
			conf.Servers = append(conf.Servers, raft.Server{
				Suffrage: raft.Voter,
				ID:       raft.ServerID(id),
				Address:  addr,
			})
		}
		if err := raft.BootstrapCluster(rcfg, logs, s.bolt, snaps, transport, conf); err != nil {
			return nil, fmt.Errorf("raftstore: bootstrapping cluster: %w", err)
		}
		logger.Info("bootstrapped raft cluster", "peers", cfg.InitPeerset)
	}

	s.raft, err = raft.NewRaft(rcfg, s.fsm, logs, s.bolt, snaps, transport)
	if err != nil {
		return nil, fmt.Errorf("raftstore: starting raft: %w", err)
	}
	raftStarted = true
	cleanup = append(cleanup, func() { _ = s.raft.Shutdown().Error() })

	go s.runBatcher()
	cleanup = append(cleanup, func() {
		close(s.closing)
		<-s.batcherDone
	})

	if cfg.WaitForLeaderTimeout > 0 && !cfg.NoWaitForLeader && (hasState || !cfg.NoBootstrap) {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.WaitForLeaderTimeout)
		defer cancel()
		if err := s.WaitForLeader(ctx); err != nil {
			return nil, err
		}
		// On the leader, make sure every committed entry is applied
		// (replayed after a restart) before the map is read.
		if err := s.Barrier(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Barrier waits, on the leader, until every entry committed so far is
// applied to the local map (after a restart, the log is replayed once the
// leader commits a new entry). On a follower, or when leadership is lost
// meanwhile, it returns nil at once: followers catch up in the background
// (see WaitForIndex).
func (s *Store) Barrier(ctx context.Context) error {
	if !s.IsLeader() {
		return nil
	}
	err := s.waitFuture(ctx, s.raft.Barrier(timeoutFrom(ctx)))
	if err != nil && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("raftstore: waiting for the log to be applied: %w", err)
	}
	return nil
}

// checkConsistency compares the durable map with the raft state. It returns
// whether raft must restore the latest snapshot into the map on start (the
// map is behind it, after an interrupted restore or a crash), and fails
// when the map is ahead of everything raft knows.
func checkConsistency(applied uint64, hasState bool, logs raft.LogStore, snaps raft.SnapshotStore) (bool, error) {
	metas, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("raftstore: listing snapshots: %w", err)
	}
	var snapIndex uint64
	if len(metas) > 0 {
		snapIndex = metas[0].Index
	}
	lastLog, err := logs.LastIndex()
	if err != nil {
		return false, fmt.Errorf("raftstore: reading raft log: %w", err)
	}
	if applied > 0 && (!hasState || applied > max(lastLog, snapIndex)) {
		return false, fmt.Errorf("%w: map at index %d, raft log at %d, snapshot at %d",
			ErrInconsistentState, applied, lastLog, snapIndex)
	}
	return snapIndex > applied, nil
}

// openBadger opens the badger database holding the map.
func openBadger(cfg Config, logger hclog.Logger) (*badger.DB, error) {
	opts := badger.DefaultOptions(filepath.Join(cfg.DataFolder, stateFolder))
	if cfg.BadgerOptions != nil {
		opts = cfg.BadgerOptions(opts)
	}
	opts.Dir = filepath.Join(cfg.DataFolder, stateFolder)
	opts.ValueDir = opts.Dir
	opts.InMemory = false
	// A single writer (raft's FSM goroutine): no conflicts to detect.
	opts.DetectConflicts = false
	opts.Logger = badgerLogger{logger}
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("raftstore: opening state database: %w", err)
	}
	return db, nil
}

// Close shuts raft down (closing the transport) and closes the stores.
// Pending Apply calls fail with ErrClosed or a raft error. It is safe to call
// Close more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		<-s.batcherDone
		if err := s.fsm.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing state: %w", err))
		}
		if err := s.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing raft log: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("raftstore: %w", err)
		}
	})
	return s.closeErr
}

// Get returns a copy of the value stored under key, or ErrNotFound.
//
// Reads are served by the local copy of the map: on a follower they may lag
// behind the leader (see WaitForIndex).
func (s *Store) Get(key []byte) ([]byte, error) {
	var out []byte
	found := false
	err := s.GetEach([][]byte{key}, func(_ int, v []byte) error {
		out, found = bytes.Clone(v), true
		return nil
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	return out, err
}

// GetEach looks up keys in one read of the map, all of them as it was at
// one moment, and calls found with the position and the value of each key
// present, in the order of keys. The value is valid only during the call.
// An error from found ends the lookups and is returned.
func (s *Store) GetEach(keys [][]byte, found func(i int, value []byte) error) error {
	return s.fsm.view(func(txn *badger.Txn) error {
		for i, key := range keys {
			item, err := txn.Get(dataKey(key))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := item.Value(func(v []byte) error { return found(i, v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// Has reports whether key is in the map.
func (s *Store) Has(key []byte) (bool, error) {
	err := s.fsm.view(func(txn *badger.Txn) error {
		_, err := txn.Get(dataKey(key))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Iterate calls fn for every pair whose key starts with prefix (every pair
// when prefix is empty), in ascending key order, streaming from disk. It
// sees a consistent view of the map as of the call. Iteration stops at the
// first error returned by fn, which Iterate returns.
//
// The key and value slices are only valid during the call to fn: copy them
// to keep them. fn may read the store (Get, Iterate) but should not block
// for long, as it holds the read view open.
func (s *Store) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	_, err := s.IterateIndexed(prefix, fn)
	return err
}

// IterateIndexed is Iterate, and also returns the index of the last log
// entry reflected by the state it iterated over. It is the way to (re)load
// the state consistently with a subscription: Subscribe first, load with
// IterateIndexed, then ignore the subscribed batches whose Index is not
// greater than the returned index.
func (s *Store) IterateIndexed(prefix []byte, fn func(key, value []byte) error) (uint64, error) {
	var index uint64
	err := s.fsm.view(func(txn *badger.Txn) error {
		var err error
		if index, err = readApplied(txn); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{
			PrefetchValues: true,
			PrefetchSize:   100,
			Prefix:         dataKey(prefix),
		})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()[1:]
			if err := item.Value(func(v []byte) error { return fn(key, v) }); err != nil {
				return err
			}
		}
		return nil
	})
	return index, err
}

// Len returns the number of keys in the map. It walks every key (without
// reading values), so it costs O(n).
func (s *Store) Len() (int, error) {
	var n int
	err := s.fsm.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{dataPrefix}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// AppliedIndex returns the index of the last log entry applied to the local
// map.
func (s *Store) AppliedIndex() uint64 {
	return s.fsm.appliedIndex()
}

// WaitForIndex waits until the local map reflects the log entry at index
// (as returned by Apply on the leader), for read-your-writes on followers.
func (s *Store) WaitForIndex(ctx context.Context, index uint64) error {
	for {
		applied, changed := s.fsm.appliedState()
		if applied >= index {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		}
	}
}

// Subscribe returns a channel receiving every batch applied to the map after
// the call, in log order, until ctx is done (the channel is then closed) or
// the subscription ends with an error value (see Applied). Each subscriber
// has a buffer of Config.SubscriberBuffer batches; one that falls behind is
// dropped with ErrSubscriberLagged rather than slowing raft down.
//
// Entries replayed from the log at start are not delivered again.
func (s *Store) Subscribe(ctx context.Context) <-chan Applied {
	return s.fsm.subs.add(ctx)
}

// Leader returns the server ID and address of the current leader, as known
// by this peer; both are empty when no leader is known.
func (s *Store) Leader() (id string, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this peer is the raft leader.
func (s *Store) IsLeader() bool {
	return s.raft.State() == raft.Leader
}

// State returns the raft state of this peer (follower, candidate, leader
// or shutdown).
func (s *Store) State() raft.RaftState {
	return s.raft.State()
}

// Stats returns raft's statistics plus counters of this store:
// "applied_entries" and "applied_ops" count the log entries submitted by
// Apply on this peer and the operations they carried, which shows how well
// concurrent writes are coalesced.
func (s *Store) Stats() map[string]string {
	st := s.raft.Stats()
	st["applied_entries"] = fmt.Sprint(s.entries.Load())
	st["applied_ops"] = fmt.Sprint(s.ops.Load())
	return st
}

// WaitForLeader waits until a leader is known to this peer.
func (s *Store) WaitForLeader(ctx context.Context) error {
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for {
		if addr, _ := s.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ticker.C:
		case <-s.closing:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		}
	}
}

// Peers returns the server IDs of the current raft configuration.
func (s *Store) Peers() ([]string, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.wrapRaftErr(err)
	}
	servers := f.Configuration().Servers
	ids := make([]string, 0, len(servers))
	for _, srv := range servers {
		ids = append(ids, string(srv.ID))
	}
	return ids, nil
}

// Server is one member of the raft configuration.
type Server struct {
	// ID is the raft server ID (the peer ID).
	ID string
	// Address is where the transport reaches it.
	Address string
	// Voter is false for a non-voting member.
	Voter bool
}

// Servers returns the members of the current raft configuration (the
// latest one, possibly not committed yet).
func (s *Store) Servers() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.wrapRaftErr(err)
	}
	servers := f.Configuration().Servers
	out := make([]Server, 0, len(servers))
	for _, srv := range servers {
		out = append(out, Server{ID: string(srv.ID), Address: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddVoter adds (or updates) a voting server to the cluster. It must be
// called on the leader, otherwise it fails with a *NotLeaderError. The new
// peer should be started with NoBootstrap and the same transport kind.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	if !s.IsLeader() {
		return s.notLeader()
	}
	f := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutFrom(ctx))
	return s.waitFuture(ctx, f)
}

// RemovePeer removes a server from the cluster. It must be called on the
// leader, otherwise it fails with a *NotLeaderError. The removed peer shuts
// its raft down if it learns of its removal, which is not guaranteed: it
// should be closed by its owner.
func (s *Store) RemovePeer(ctx context.Context, id string) error {
	if !s.IsLeader() {
		return s.notLeader()
	}
	f := s.raft.RemoveServer(raft.ServerID(id), 0, timeoutFrom(ctx))
	return s.waitFuture(ctx, f)
}

// Snapshot makes raft take a snapshot now and compact its log. Having
// nothing new to snapshot is not an error.
func (s *Store) Snapshot() error {
	err := s.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("raftstore: snapshot: %w", s.wrapRaftErr(err))
	}
	return nil
}

// waitFuture waits for f or ctx (the raft operation itself cannot be
// cancelled and may still complete).
func (s *Store) waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return s.wrapRaftErr(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wrapRaftErr turns raft.ErrNotLeader into a *NotLeaderError and
// raft.ErrRaftShutdown after Close into ErrClosed.
func (s *Store) wrapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return s.notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		select {
		case <-s.closing:
			return ErrClosed
		default:
		}
	}
	return err
}

func (s *Store) notLeader() error {
	id, addr := s.Leader()
	return &NotLeaderError{LeaderID: id, LeaderAddr: addr}
}

// timeoutFrom converts the deadline of ctx to a raft timeout (0: none).
func timeoutFrom(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if t := time.Until(d); t > 0 {
			return t
		}
		return time.Millisecond
	}
	return 0
}
