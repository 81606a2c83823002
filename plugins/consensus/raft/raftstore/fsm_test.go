package raftstore

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func openTestFSM(t *testing.T) *fsm {
	t.Helper()
	opts := badger.DefaultOptions(t.TempDir()).WithLogger(nil).
		WithMemTableSize(8 << 20).WithBlockCacheSize(4 << 20).WithDetectConflicts(false)
	db, err := badger.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFSM(db, hclog.NewNullLogger(), 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.close() })
	return f
}

func command(index uint64, ops ...Op) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: encodeOps(ops)}
}

func fsmGet(t *testing.T, f *fsm, k string) (string, bool) {
	t.Helper()
	var v []byte
	err := f.view(func(txn *badger.Txn) error {
		item, err := txn.Get(dataKey([]byte(k)))
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v), true
}

func fsmContents(t *testing.T, f *fsm) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := f.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{dataPrefix}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			m[string(it.Item().Key()[1:])] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFSMSkipsReplayedEntries(t *testing.T) {
	f := openTestFSM(t)
	if r := f.Apply(command(5, put("a", "1"))); r != nil {
		t.Fatal(r)
	}
	// Same or lower index: already applied, ignored.
	if r := f.Apply(command(5, put("a", "2"))); r != nil {
		t.Fatal(r)
	}
	if r := f.Apply(command(3, del("a"))); r != nil {
		t.Fatal(r)
	}
	if v, _ := fsmGet(t, f, "a"); v != "1" {
		t.Fatalf("a = %q", v)
	}
	if f.appliedIndex() != 5 {
		t.Fatalf("applied %d", f.appliedIndex())
	}
	if r := f.Apply(command(6, put("a", "3"))); r != nil {
		t.Fatal(r)
	}
	if v, _ := fsmGet(t, f, "a"); v != "3" {
		t.Fatalf("a = %q", v)
	}
	// Entries that are not commands do not touch the map.
	if r := f.Apply(&raft.Log{Index: 7, Type: raft.LogNoop}); r != nil {
		t.Fatal(r)
	}
	if f.appliedIndex() != 6 {
		t.Fatalf("applied %d after noop", f.appliedIndex())
	}
}

func TestFSMSkipsBadEntries(t *testing.T) {
	f := openTestFSM(t)
	r := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{9, 9, 9}})
	if err, ok := r.(error); !ok || err == nil {
		t.Fatalf("undecodable entry returned %v", r)
	}
	if f.appliedIndex() != 1 {
		t.Fatalf("undecodable entry not recorded: applied %d", f.appliedIndex())
	}

	// An entry too large for one badger transaction (8 MiB memtable:
	// about 1.2 MB) is skipped on every peer alike.
	var big []Op
	for i := range 20 {
		big = append(big, Op{Key: []byte(key(i)), Value: make([]byte, 100<<10)})
	}
	r = f.Apply(command(2, big...))
	if err, ok := r.(error); !ok || !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("huge entry returned %v", r)
	}
	if f.appliedIndex() != 2 || len(fsmContents(t, f)) != 0 {
		t.Fatalf("huge entry: applied %d, %d keys", f.appliedIndex(), len(fsmContents(t, f)))
	}
	if r := f.Apply(command(3, put("ok", "yes"))); r != nil {
		t.Fatal(r)
	}
	if v, _ := fsmGet(t, f, "ok"); v != "yes" {
		t.Fatal("entry after skipped ones not applied")
	}
}

func TestFSMFatalStopsApplyAndSnapshots(t *testing.T) {
	f := openTestFSM(t)
	f.setFatal(errors.New("disk on fire"))
	if r := f.Apply(command(1, put("a", "1"))); r == nil {
		t.Fatal("applied after a fatal error")
	}
	if _, ok := fsmGet(t, f, "a"); ok || f.appliedIndex() != 0 {
		t.Fatal("state changed after a fatal error")
	}
	if _, err := f.Snapshot(); err == nil {
		t.Fatal("snapshot after a fatal error")
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	fail      bool
	cancelled bool
	closed    bool
}

func (m *memSink) Write(p []byte) (int, error) {
	if m.fail {
		return 0, errors.New("write failed")
	}
	return m.Buffer.Write(p)
}
func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) Close() error  { m.closed = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	f := openTestFSM(t)
	want := map[string]string{}
	for i := range 500 {
		if r := f.Apply(command(uint64(i+1), put(key(i), value(i)))); r != nil {
			t.Fatal(r)
		}
		want[key(i)] = value(i)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after Snapshot() are not in the snapshot.
	if r := f.Apply(command(501, del(key(0)), put("late", "x"))); r != nil {
		t.Fatal(r)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	snap.Release() // idempotent
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}

	// Restore into a store holding other data: it is replaced.
	g := openTestFSM(t)
	if r := g.Apply(command(1000, put("stale", "gone"), put(key(1), "old"))); r != nil {
		t.Fatal(r)
	}
	sub := g.subs.add(t.Context())
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	equalMaps(t, fsmContents(t, g), want)
	if g.appliedIndex() != 500 {
		t.Fatalf("restored applied index %d", g.appliedIndex())
	}
	if a := <-sub; !errors.Is(a.Err, ErrStateRestored) {
		t.Fatalf("subscriber got %+v", a)
	}
	if r := g.Apply(command(501, put("next", "entry"))); r != nil {
		t.Fatal(r)
	}
	if v, _ := fsmGet(t, g, "next"); v != "entry" {
		t.Fatal("entry after restore not applied")
	}

	// A corrupt stream fails without touching the data.
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte("garbage")))); err == nil {
		t.Fatal("garbage restored")
	}
	if v, _ := fsmGet(t, g, "next"); v != "entry" {
		t.Fatal("failed restore touched the data")
	}
	// A truncated stream fails, leaving the index at 0 so that the next
	// start restores again.
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()[:sink.Len()/2]))); err == nil {
		t.Fatal("truncated snapshot restored")
	}
	if g.appliedIndex() != 0 {
		t.Fatalf("applied index %d after failed restore", g.appliedIndex())
	}
}

func TestFSMPersistFailureCancelsSink(t *testing.T) {
	f := openTestFSM(t)
	if r := f.Apply(command(1, put("a", "1"))); r != nil {
		t.Fatal(r)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := memSink{fail: true}
	if err := snap.Persist(&sink); err == nil {
		t.Fatal("Persist succeeded on a failing sink")
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
}
