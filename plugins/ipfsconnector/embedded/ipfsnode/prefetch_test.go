package ipfsnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// TestPrefetchServesABatch checks that the pins of a prefetched batch wait
// for the prefetch instead of fetching on their own, that a block that
// never arrives fails its pin at the pin's deadline without holding up the
// others, and that a pin after the prefetch fetches by itself again.
func TestPrefetchServesABatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const count = 20
	var blks []blocks.Block
	var cids []cid.Cid
	for i := range count {
		b := rawBlock(t, fmt.Appendf(nil, "prefetched block %d", i))
		blks = append(blks, b)
		cids = append(cids, b.Cid())
	}
	absent := blks[count-1] // no one provides it during the batch
	// The exchange has the blocks only once the prefetch is counted, so
	// that none arrives before.
	ex := newTestExchange()
	n := openNode(t, Options{Exchange: ex})
	// One block is local already: it is not asked for.
	putBlocks(t, n, blks[:1])

	stop := n.Prefetch(ctx, cids)
	if got := n.prefetch.pendingCount(); got != count-1 {
		t.Fatalf("%d blocks pending after Prefetch, want %d", got, count-1)
	}
	// A second Prefetch of the same blocks asks for nothing more.
	n.Prefetch(ctx, cids)()
	ex.provide(blks[:count-1]...)

	errs := make([]error, count)
	var wg sync.WaitGroup
	for i, c := range cids {
		wg.Go(func() {
			timeout := 10 * time.Second
			if c.Equals(absent.Cid()) {
				timeout = 300 * time.Millisecond
			}
			pctx, pcancel := context.WithTimeout(ctx, timeout)
			defer pcancel()
			errs[i] = n.Pin(pctx, c, i%2 == 0) // recursive and direct
		})
	}
	wg.Wait()
	for i, err := range errs[:count-1] {
		if err != nil {
			t.Fatalf("pin %d: %v", i, err)
		}
	}
	var fe *FetchError
	if err := errs[count-1]; !errors.As(err, &fe) || !errors.Is(err, context.DeadlineExceeded) ||
		len(fe.Missing) != 1 || !fe.Missing[0].Equals(absent.Cid()) {
		t.Fatalf("pin of the absent block: want a FetchError naming it at the deadline, got %v", err)
	}
	gets, batches := ex.calls()
	if gets != 0 || batches != 1 {
		t.Fatalf("exchange saw %d GetBlock and %d GetBlocks calls, want 0 and 1", gets, batches)
	}

	stop()
	if got := n.prefetch.pendingCount(); got != 0 {
		t.Fatalf("%d blocks still pending after stop", got)
	}
	// Once provided, the absent block is fetched by its own pin.
	ex.provide(absent)
	if err := n.Pin(ctx, absent.Cid(), false); err != nil {
		t.Fatal(err)
	}
	if gets, _ := ex.calls(); gets != 1 {
		t.Fatalf("%d GetBlock calls after the batch, want 1", gets)
	}
	if got := len(listPins(t, n)); got != count {
		t.Fatalf("%d pins, want %d", got, count)
	}
}

// TestPrefetchDoesNothing lists the cases where Prefetch asks for nothing.
func TestPrefetchDoesNothing(t *testing.T) {
	ctx := context.Background()
	a, b := rawBlock(t, []byte("a")), rawBlock(t, []byte("b"))
	both := []cid.Cid{a.Cid(), b.Cid()}

	offline := openNode(t, Options{})
	offline.Prefetch(ctx, both)()

	ex := newTestExchange(a, b)
	n := openNode(t, Options{Exchange: ex})
	n.Prefetch(ctx, both[:1])() // a single CID
	putBlocks(t, n, []blocks.Block{a, b})
	n.Prefetch(ctx, both)() // everything local
	if _, batches := ex.calls(); batches != 0 {
		t.Fatalf("%d GetBlocks calls, want none", batches)
	}

	closed := openNode(t, Options{Exchange: newTestExchange()})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	closed.Prefetch(ctx, both)()
}

// pendingCount returns how many blocks are being prefetched.
func (p *prefetches) pendingCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}
