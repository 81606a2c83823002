package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Badger key layout. User keys are stored under dataPrefix so that metadata
// never shows up in iterations.
const (
	dataPrefix byte = 'd'
)

// appliedKey holds the big-endian index of the last log entry applied.
var appliedKey = []byte("m/applied")

func dataKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = dataPrefix
	copy(k[1:], key)
	return k
}

func encodeIndex(idx uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, idx)
}

// readApplied returns the applied index stored in the view of txn (0 when
// none).
func readApplied(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get(appliedKey)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var idx uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("raftstore: corrupt applied index (%d bytes)", len(v))
		}
		idx = binary.BigEndian.Uint64(v)
		return nil
	})
	return idx, err
}

// fsm is the raft.FSM: a badger database holding the map and the index of
// the last applied entry. Apply, Snapshot and Restore are only called from
// raft's FSM goroutine; reads come from any goroutine.
type fsm struct {
	db     *badger.DB
	logger hclog.Logger

	// maxTxnCount and maxTxnSize are badger's limits for one transaction.
	maxTxnCount int64
	maxTxnSize  int64

	// Reader accounting, so that Close does not close the database under
	// a running read (badger does not allow it). Readers never wait, so
	// nested reads (a Get from an Iterate callback) cannot deadlock.
	usersMu   sync.Mutex
	usersCond *sync.Cond
	users     int
	closed    bool

	// applied is the index of the last applied entry, with a channel that
	// is closed and replaced whenever it changes.
	idxMu     sync.Mutex
	applied   uint64
	appliedCh chan struct{}

	// fatal is set when a write to badger failed: later entries are not
	// applied (they are replayed at next start) and snapshots are refused,
	// so that raft never compacts entries the map does not reflect.
	fatalMu sync.Mutex
	fatal   error

	subs *subscriptions
}

func newFSM(db *badger.DB, logger hclog.Logger, subscriberBuffer int) (*fsm, error) {
	f := &fsm{
		db:          db,
		logger:      logger,
		maxTxnCount: db.MaxBatchCount(),
		maxTxnSize:  db.MaxBatchSize(),
		appliedCh:   make(chan struct{}),
		subs:        newSubscriptions(subscriberBuffer),
	}
	f.usersCond = sync.NewCond(&f.usersMu)
	err := db.View(func(txn *badger.Txn) error {
		idx, err := readApplied(txn)
		f.applied = idx
		return err
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// enter registers a reader; it fails once the FSM is closed.
func (f *fsm) enter() error {
	f.usersMu.Lock()
	defer f.usersMu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.users++
	return nil
}

func (f *fsm) exit() {
	f.usersMu.Lock()
	f.users--
	if f.users == 0 {
		f.usersCond.Broadcast()
	}
	f.usersMu.Unlock()
}

// close refuses new readers, waits for running ones and closes the
// database. Subscribers are ended with ErrClosed.
func (f *fsm) close() error {
	f.usersMu.Lock()
	if f.closed {
		f.usersMu.Unlock()
		return nil
	}
	f.closed = true
	for f.users > 0 {
		f.usersCond.Wait()
	}
	f.usersMu.Unlock()
	f.subs.closeAll(ErrClosed)
	return f.db.Close()
}

// view runs fn in a read-only badger transaction.
func (f *fsm) view(fn func(txn *badger.Txn) error) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.exit()
	txn := f.db.NewTransaction(false)
	defer txn.Discard()
	return fn(txn)
}

func (f *fsm) appliedIndex() uint64 {
	f.idxMu.Lock()
	defer f.idxMu.Unlock()
	return f.applied
}

// appliedState returns the applied index and a channel closed when it
// changes.
func (f *fsm) appliedState() (uint64, <-chan struct{}) {
	f.idxMu.Lock()
	defer f.idxMu.Unlock()
	return f.applied, f.appliedCh
}

func (f *fsm) setApplied(idx uint64) {
	f.idxMu.Lock()
	f.applied = idx
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.idxMu.Unlock()
}

func (f *fsm) fatalErr() error {
	f.fatalMu.Lock()
	defer f.fatalMu.Unlock()
	return f.fatal
}

func (f *fsm) setFatal(err error) {
	f.fatalMu.Lock()
	defer f.fatalMu.Unlock()
	if f.fatal == nil {
		f.fatal = err
	}
}

// Apply implements raft.FSM. It returns nil or an error, which is handed to
// the Apply caller on the leader.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if err := f.fatalErr(); err != nil {
		return err
	}
	if l.Index <= f.appliedIndex() {
		// Already in the durable map: a replay after restart.
		return nil
	}
	ops, err := decodeOps(l.Data)
	if err != nil {
		// Deterministic on every peer: record the entry as applied so that
		// it is not looked at again.
		f.logger.Error("skipping undecodable log entry", "index", l.Index, "error", err)
		return f.skipEntry(l.Index, err)
	}
	err = f.applyOps(l.Index, ops)
	if errors.Is(err, badger.ErrTxnTooBig) {
		f.logger.Error("skipping log entry too large for one transaction", "index", l.Index, "ops", len(ops))
		return f.skipEntry(l.Index, fmt.Errorf("%w: %d operations do not fit in one transaction", ErrBatchTooLarge, len(ops)))
	}
	if err != nil {
		err = fmt.Errorf("raftstore: applying log entry %d: %w", l.Index, err)
		f.logger.Error("state machine stopped: storage failure", "index", l.Index, "error", err)
		f.setFatal(err)
		return err
	}
	f.setApplied(l.Index)
	f.subs.publish(Applied{Index: l.Index, Ops: ops})
	return nil
}

// skipEntry records idx as applied without changing the map and returns
// cause.
func (f *fsm) skipEntry(idx uint64, cause error) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.exit()
	err := f.db.Update(func(txn *badger.Txn) error {
		return txn.Set(appliedKey, encodeIndex(idx))
	})
	if err != nil {
		err = fmt.Errorf("raftstore: applying log entry %d: %w", idx, err)
		f.setFatal(err)
		return err
	}
	f.setApplied(idx)
	return cause
}

// applyOps applies ops and the new applied index in one transaction.
func (f *fsm) applyOps(idx uint64, ops []Op) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.exit()
	txn := f.db.NewTransaction(true)
	defer txn.Discard()
	for _, op := range ops {
		var err error
		if op.Delete {
			err = txn.Delete(dataKey(op.Key))
		} else {
			err = txn.Set(dataKey(op.Key), op.Value)
		}
		if err != nil {
			return err
		}
	}
	if err := txn.Set(appliedKey, encodeIndex(idx)); err != nil {
		return err
	}
	return txn.Commit()
}

// txnCost estimates what ops take in a badger transaction (see badger's
// Txn.checkSize), with a margin.
func txnCost(ops []Op) int64 {
	var size int64
	for _, op := range ops {
		size += int64(len(op.Key)) + 1 + 16
		if !op.Delete {
			size += int64(len(op.Value))
		}
	}
	return size
}

// fitsInTxn reports whether nops operations costing cost (see txnCost) can
// be applied in one badger transaction together with the applied index.
func (f *fsm) fitsInTxn(nops int, cost int64) bool {
	return int64(nops)+2 < f.maxTxnCount && cost+64 < f.maxTxnSize
}

// Snapshot implements raft.FSM. The returned snapshot reads from a badger
// read transaction opened here, so it reflects exactly the applied state
// while later entries keep being applied.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.fatalErr(); err != nil {
		return nil, err
	}
	if err := f.enter(); err != nil {
		return nil, err
	}
	// Make the map durable up to this point: raft may discard the log
	// entries covered by the snapshot once it is persisted.
	if err := f.db.Sync(); err != nil {
		f.exit()
		return nil, err
	}
	txn := f.db.NewTransaction(false)
	idx, err := readApplied(txn)
	if err != nil {
		txn.Discard()
		f.exit()
		return nil, err
	}
	// The reader registration is released by Release.
	return &fsmSnapshot{f: f, txn: txn, index: idx}, nil
}

// Restore implements raft.FSM: it deletes every key of the map and loads the
// snapshot stream in batches. Readers may observe the intermediate state;
// subscribers are ended with ErrStateRestored.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.enter(); err != nil {
		return err
	}
	defer f.exit()

	sr, err := newSnapshotReader(rc)
	if err != nil {
		return err
	}
	f.logger.Info("restoring state from snapshot", "index", sr.index)

	// Forget the applied index first: if the restore is interrupted, the
	// map is incomplete and the next start must restore the snapshot again
	// (see Open).
	if err := f.db.Update(func(txn *badger.Txn) error { return txn.Delete(appliedKey) }); err != nil {
		return err
	}
	f.setApplied(0)
	f.subs.closeAll(ErrStateRestored)

	if err := f.deleteAll(); err != nil {
		return fmt.Errorf("raftstore: clearing state before restore: %w", err)
	}

	wb := f.db.NewWriteBatch()
	defer wb.Cancel()
	var n int
	for {
		key, value, err := sr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := wb.Set(dataKey(key), value); err != nil {
			return err
		}
		n++
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	if err := f.db.Update(func(txn *badger.Txn) error {
		return txn.Set(appliedKey, encodeIndex(sr.index))
	}); err != nil {
		return err
	}
	if err := f.db.Sync(); err != nil {
		return err
	}
	f.setApplied(sr.index)
	f.subs.closeAll(ErrStateRestored)
	f.logger.Info("restored state from snapshot", "index", sr.index, "keys", n)
	return nil
}

// deleteAll deletes every key of the map, in batches.
func (f *fsm) deleteAll() error {
	wb := f.db.NewWriteBatch()
	defer wb.Cancel()
	txn := f.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{dataPrefix}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// fsmSnapshot implements raft.FSMSnapshot over a badger read transaction.
type fsmSnapshot struct {
	f     *fsm
	txn   *badger.Txn
	index uint64
	once  sync.Once
}

// Persist streams every pair of the map into sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) write(w io.Writer) error {
	sw, err := newSnapshotWriter(w, s.index)
	if err != nil {
		return err
	}
	it := s.txn.NewIterator(badger.IteratorOptions{
		PrefetchValues: true,
		PrefetchSize:   256,
		Prefix:         []byte{dataPrefix},
	})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()[1:]
		if err := item.Value(func(v []byte) error { return sw.writePair(key, v) }); err != nil {
			return err
		}
	}
	return sw.finish()
}

// Release discards the read transaction.
func (s *fsmSnapshot) Release() {
	s.once.Do(func() {
		s.txn.Discard()
		s.f.exit()
	})
}
