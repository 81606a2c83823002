package ipfsnode

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
)

func TestSyncerSharesFlushes(t *testing.T) {
	var (
		flushes atomic.Int32
		fail    atomic.Bool
		release = make(chan struct{})
	)
	boom := errors.New("boom")
	s := newSyncer(func() error {
		flushes.Add(1)
		<-release
		if fail.Load() {
			return boom
		}
		return nil
	})

	// The first caller starts a flush; the next ones, arriving while it
	// runs, must all be served by one more flush.
	first := make(chan error, 1)
	go func() { first <- s.sync() }()
	waitFor(t, func() bool { return flushes.Load() == 1 })

	const callers = 10
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() { errs <- s.sync() })
	}
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.next != nil
	})
	time.Sleep(10 * time.Millisecond) // let the other callers queue
	fail.Store(true)
	close(release)
	if err := <-first; !errors.Is(err, boom) {
		t.Fatalf("first sync: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("queued sync returned %v, want the error of the shared flush", err)
		}
	}
	if got := flushes.Load(); got != 2 {
		t.Fatalf("%d flushes for %d callers, want 2", got, callers+1)
	}
	// The syncer is idle again and starts new flushes.
	fail.Store(false)
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	if got := flushes.Load(); got != 3 {
		t.Fatalf("%d flushes, want 3", got)
	}
}

func TestSyncPins(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := Open(ctx, Options{Path: dir, SyncPins: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	var roots []blocks.Block
	for i := range 16 {
		b := rawBlock(t, []byte{byte(i)})
		roots = append(roots, b)
		wg.Go(func() {
			if err := n.PutBlocks(ctx, []blocks.Block{b}); err != nil {
				errs <- err
				return
			}
			if err := n.Pin(ctx, b.Cid(), i%2 == 0); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := n.Unpin(ctx, roots[0].Cid()); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, Options{Path: dir})
	pins := listPins(t, n)
	if len(pins) != 15 {
		t.Fatalf("%d pins after reopen, want 15", len(pins))
	}
	if _, ok := pins[roots[0].Cid()]; ok {
		t.Fatal("unpinned CID still pinned after reopen")
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}
