package raftstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSingleVoterBasic(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), "peer1"))

	if id, addr := s.Leader(); id != "peer1" || addr != "peer1" {
		t.Fatalf("Leader() = %q, %q", id, addr)
	}
	if !s.IsLeader() {
		t.Fatal("single voter is not leader")
	}
	peers, err := s.Peers()
	if err != nil || !slices.Equal(peers, []string{"peer1"}) {
		t.Fatalf("Peers() = %v, %v", peers, err)
	}

	i1 := mustApply(t, s, put("a/1", "one"), put("a/2", "two"), put("b/1", "bee"))
	mustGet(t, s, "a/1", "one")
	mustGet(t, s, "a/2", "two")
	mustGet(t, s, "b/1", "bee")
	mustMissing(t, s, "c")
	if s.AppliedIndex() != i1 {
		t.Fatalf("AppliedIndex() = %d, Apply returned %d", s.AppliedIndex(), i1)
	}

	// Later operations of a batch win.
	i2 := mustApply(t, s, put("a/1", "uno"), del("a/2"), put("a/3", "x"), put("a/3", "tres"))
	if i2 <= i1 {
		t.Fatalf("index did not grow: %d then %d", i1, i2)
	}
	mustGet(t, s, "a/1", "uno")
	mustMissing(t, s, "a/2")
	mustGet(t, s, "a/3", "tres")

	// Deleting a missing key is fine.
	mustApply(t, s, del("nope"))

	var keys []string
	if err := s.Iterate([]byte("a/"), func(k, v []byte) error {
		keys = append(keys, string(k)+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/1=uno", "a/3=tres"}; !slices.Equal(keys, want) {
		t.Fatalf("Iterate(a/) = %v, want %v", keys, want)
	}
	equalMaps(t, contents(t, s), map[string]string{"a/1": "uno", "a/3": "tres", "b/1": "bee"})

	// fn errors stop the iteration; nested reads work.
	stop := errors.New("stop")
	n := 0
	err = s.Iterate(nil, func(k, v []byte) error {
		if _, err := s.Get(k); err != nil {
			return err
		}
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Fatalf("Iterate returned %v after %d calls", err, n)
	}

	if l, err := s.Len(); err != nil || l != 3 {
		t.Fatalf("Len() = %d, %v", l, err)
	}
	if ok, err := s.Has([]byte("b/1")); !ok || err != nil {
		t.Fatalf("Has(b/1) = %v, %v", ok, err)
	}
	if ok, err := s.Has([]byte("b/2")); ok || err != nil {
		t.Fatalf("Has(b/2) = %v, %v", ok, err)
	}
	idx, err := s.IterateIndexed(nil, func(k, v []byte) error { return nil })
	if err != nil || idx != s.AppliedIndex() {
		t.Fatalf("IterateIndexed index = %d, %v; applied %d", idx, err, s.AppliedIndex())
	}
	if st := s.Stats(); st["applied_entries"] != "3" || st["applied_ops"] != "8" {
		t.Fatalf("stats: entries %s ops %s", st["applied_entries"], st["applied_ops"])
	}
}

func TestGetEach(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), "peer1"))
	mustApply(t, s, put("a", "1"), put("c", "3"), Op{Key: []byte("e"), Value: nil})

	keys := [][]byte{[]byte("c"), []byte("b"), []byte("a"), []byte("e"), []byte("a")}
	var got []string
	err := s.GetEach(keys, func(i int, v []byte) error {
		got = append(got, fmt.Sprintf("%d=%s", i, v))
		return nil
	})
	// Missing keys are skipped; a key asked twice is found twice; an empty
	// value is a value.
	if want := []string{"0=3", "2=1", "3=", "4=1"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("GetEach = %q, %v; want %q", got, err, want)
	}

	stop := errors.New("stop")
	calls := 0
	err = s.GetEach(keys, func(int, []byte) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("GetEach returned %v after %d calls; want the callback's error after 1", err, calls)
	}
	if err := s.GetEach(nil, func(int, []byte) error { return stop }); err != nil {
		t.Fatalf("GetEach of no keys: %v", err)
	}
}

func TestBinaryKeysAndValues(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), "peer1"))
	k := []byte{0x01, 0x55, 0x12, 0x20, 0x00, 0xff}
	v := []byte{0x00, 0x00, 0x01}
	mustApply(t, s, Op{Key: k, Value: v}, Op{Key: []byte{0x00}, Value: nil})
	got, err := s.Get(k)
	if err != nil || string(got) != string(v) {
		t.Fatalf("Get = %x, %v", got, err)
	}
	got, err = s.Get([]byte{0x00})
	if err != nil || len(got) != 0 {
		t.Fatalf("Get(empty value) = %x, %v", got, err)
	}
}

func TestApplyValidation(t *testing.T) {
	cfg := testConfig(t.TempDir(), "peer1")
	s := openTest(t, cfg)
	ctx := ctxT(t)

	if idx, err := s.Apply(ctx, nil); idx != 0 || err != nil {
		t.Fatalf("Apply(nil) = %d, %v", idx, err)
	}
	if _, err := s.Apply(ctx, []Op{{Key: nil, Value: []byte("x")}}); !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := s.Apply(ctx, []Op{{Key: make([]byte, MaxKeySize+1)}}); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("large key: %v", err)
	}
	// The test badger config has 8 MiB memtables: batches are limited to
	// about 1.2 MB.
	big := make([]Op, 0, 20)
	for i := range 20 {
		big = append(big, Op{Key: []byte(key(i)), Value: make([]byte, 100<<10)})
	}
	if _, err := s.Apply(ctx, big); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("large batch: %v", err)
	}
	// A large batch that fits is applied atomically as one entry.
	mustApply(t, s, big[:5]...)
	if l, _ := s.Len(); l != 5 {
		t.Fatalf("Len = %d", l)
	}
}

func TestCoalescedBatchesRespectBadgerLimit(t *testing.T) {
	cfg := testConfig(t.TempDir(), "peer1")
	cfg.MaxBatchBytes = 64 << 20 // above badger's limit: the batcher must split
	s := openTest(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			_, err := s.Apply(context.Background(), []Op{{Key: []byte(key(i)), Value: make([]byte, 200<<10)}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := s.Len(); l != 40 {
		t.Fatalf("Len = %d", l)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), "peer1"))
	mustApply(t, s, put("k", "v"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Apply(context.Background(), []Op{put("k", "w")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if _, err := s.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Iterate(nil, func(k, v []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Iterate after Close: %v", err)
	}
	if err := s.GetEach([][]byte{[]byte("k")}, func(int, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetEach after Close: %v", err)
	}
	a, ok := <-s.Subscribe(context.Background())
	if !ok || !errors.Is(a.Err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %+v %v", a, ok)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no folder":        {LocalID: "p"},
		"no id":            {DataFolder: t.TempDir()},
		"self not in init": {DataFolder: t.TempDir(), LocalID: "p", InitPeerset: []string{"q"}},
		"duplicate peer":   {DataFolder: t.TempDir(), LocalID: "p", InitPeerset: []string{"p", "p"}},
		"bad retain":       {DataFolder: t.TempDir(), LocalID: "p", SnapshotRetain: -1},
		"lease > hb": {DataFolder: t.TempDir(), LocalID: "p",
			HeartbeatTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: time.Second},
	} {
		if s, err := Open(cfg, nil, nil); err == nil {
			_ = s.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
	if err := (Config{DataFolder: "x", LocalID: "p", InitPeerset: []string{"q"}, NoBootstrap: true}).Validate(); err != nil {
		t.Errorf("NoBootstrap with foreign peerset: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{DataFolder: "d", LocalID: "p"}.withDefaults()
	if c.HeartbeatTimeout != time.Second || c.ElectionTimeout != time.Second ||
		c.CommitTimeout != 50*time.Millisecond || c.MaxAppendEntries != 64 ||
		c.TrailingLogs != 10240 || c.SnapshotInterval != 2*time.Minute ||
		c.SnapshotThreshold != 8192 || c.LeaderLeaseTimeout != 500*time.Millisecond ||
		c.WaitForLeaderTimeout != 15*time.Second || c.SnapshotRetain != 6 ||
		!slices.Equal(c.InitPeerset, []string{"p"}) {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestDefaultTimeoutsSingleVoter(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for an election with default timeouts")
	}
	cfg := Config{DataFolder: t.TempDir(), LocalID: "peer1"}
	s, err := Open(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustApply(t, s, put("k", "v"))
	mustGet(t, s, "k", "v")
}

func TestReopenReplaysLog(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, "peer1")
	s := openTest(t, cfg)
	want := map[string]string{}
	for i := range 100 {
		mustApply(t, s, put(key(i), value(i)))
		want[key(i)] = value(i)
	}
	for i := 0; i < 100; i += 3 {
		mustApply(t, s, del(key(i)))
		delete(want, key(i))
	}
	applied := s.AppliedIndex()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, cfg)
	equalMaps(t, contents(t, s), want)
	// The map was durable: the replayed entries were skipped and the new
	// leader's entries come after.
	if s.AppliedIndex() < applied {
		t.Fatalf("applied index went back: %d < %d", s.AppliedIndex(), applied)
	}
	idx := mustApply(t, s, put("after", "restart"))
	if idx <= applied {
		t.Fatalf("new entry index %d <= %d", idx, applied)
	}
	mustGet(t, s, "after", "restart")
}

func TestReopenAfterSnapshot(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, "peer1")
	cfg.TrailingLogs = 5
	s := openTest(t, cfg)
	want := map[string]string{}
	for i := range 200 {
		mustApply(t, s, put(key(i), value(i)))
		want[key(i)] = value(i)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := s.Snapshot(); err != nil { // nothing new: not an error
		t.Fatal(err)
	}
	// More changes after the snapshot, replayed from the log.
	for i := 150; i < 250; i++ {
		if i%2 == 0 {
			mustApply(t, s, del(key(i)))
			delete(want, key(i))
		} else {
			mustApply(t, s, put(key(i), "v2"))
			want[key(i)] = "v2"
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}

	s = openTest(t, cfg)
	equalMaps(t, contents(t, s), want)
}

// TestRecoverLostState removes the map: Open must have raft restore the
// latest snapshot into it and replay the log after it.
func TestRecoverLostState(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, "peer1")
	cfg.TrailingLogs = 5
	s := openTest(t, cfg)
	want := map[string]string{}
	for i := range 100 {
		mustApply(t, s, put(key(i), value(i)))
		want[key(i)] = value(i)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := 50; i < 120; i++ {
		mustApply(t, s, put(key(i), "v2"))
		want[key(i)] = "v2"
	}
	mustApply(t, s, del(key(0)))
	delete(want, key(0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, stateFolder)); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, cfg)
	equalMaps(t, contents(t, s), want)
}

func TestInconsistentStateRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, "peer1")
	s := openTest(t, cfg)
	mustApply(t, s, put("k", "v"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, raftDBFile)); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(cfg, nil, nil); !errors.Is(err, ErrInconsistentState) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("Open = %v, want ErrInconsistentState", err)
	}
}

func TestSubscribeInOrder(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), "peer1"))
	mustApply(t, s, put("before", "x")) // not delivered
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Subscribe(ctx)

	var indexes []uint64
	for i := range 50 {
		indexes = append(indexes, mustApply(t, s, put(key(i), value(i)), del(key(i-1))))
	}
	for i := range 50 {
		select {
		case a := <-ch:
			if a.Err != nil {
				t.Fatalf("batch %d: %v", i, a.Err)
			}
			if a.Index != indexes[i] {
				t.Fatalf("batch %d has index %d, want %d", i, a.Index, indexes[i])
			}
			if len(a.Ops) != 2 || string(a.Ops[0].Key) != key(i) || string(a.Ops[0].Value) != value(i) ||
				a.Ops[0].Delete || !a.Ops[1].Delete || string(a.Ops[1].Key) != key(i-1) {
				t.Fatalf("batch %d: unexpected ops %+v", i, a.Ops)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %d not received", i)
		}
	}
	cancel()
	eventually(t, "subscription closed", func() bool {
		select {
		case a, ok := <-ch:
			if ok {
				t.Fatalf("unexpected value after cancel: %+v", a)
			}
			return true
		default:
			return false
		}
	})
}

func TestSubscribeLaggingIsDropped(t *testing.T) {
	cfg := testConfig(t.TempDir(), "peer1")
	cfg.SubscriberBuffer = 4
	s := openTest(t, cfg)
	ch := s.Subscribe(context.Background())
	fast := s.Subscribe(context.Background())
	got := make(chan int)
	go func() {
		n := 0
		for a := range fast {
			if a.Err != nil {
				break
			}
			n++
		}
		got <- n
	}()

	for i := range 10 {
		mustApply(t, s, put(key(i), value(i)))
	}
	var n int
	var last Applied
	for a := range ch {
		if a.Err != nil {
			last = a
			continue
		}
		if last.Err != nil {
			t.Fatal("value after the final error")
		}
		n++
	}
	if n != 4 || !errors.Is(last.Err, ErrSubscriberLagged) {
		t.Fatalf("lagging subscriber got %d batches then %v", n, last.Err)
	}
	// The fast subscriber was unaffected, and gets ErrClosed at Close.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 10 {
		t.Fatalf("fast subscriber got %d batches", n)
	}
}

func TestConcurrentApply(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), "peer1"))
	const workers, perWorker = 64, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k := key(w*perWorker + i)
				if _, err := s.Apply(context.Background(), []Op{put(k, k)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l, err := s.Len(); err != nil || l != workers*perWorker {
		t.Fatalf("Len() = %d, %v", l, err)
	}
	for i := range workers * perWorker {
		mustGet(t, s, key(i), key(i))
	}
	st := s.Stats()
	t.Logf("%s ops in %s log entries", st["applied_ops"], st["applied_entries"])
	if st["applied_entries"] == st["applied_ops"] {
		t.Errorf("no coalescing happened")
	}
}

func TestApplyContextCancelled(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), "peer1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either outcome is allowed, but it must return promptly.
	_, err := s.Apply(ctx, []Op{put("k", "v")})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestWaitForIndex(t *testing.T) {
	s := openTest(t, testConfig(t.TempDir(), "peer1"))
	idx := mustApply(t, s, put("k", "v"))
	if err := s.WaitForIndex(ctxT(t), idx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.WaitForIndex(ctx, idx+1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForIndex(future) = %v", err)
	}
}

func TestNotLeaderErrorMessage(t *testing.T) {
	err := error(&NotLeaderError{LeaderID: "p2", LeaderAddr: "/ip4/1.2.3.4"})
	if !strings.Contains(err.Error(), "p2") {
		t.Fatal(err)
	}
	if (&NotLeaderError{}).Error() == "" {
		t.Fatal("empty message")
	}
}
