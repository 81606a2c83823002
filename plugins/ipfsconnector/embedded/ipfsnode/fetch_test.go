package ipfsnode

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

func TestPinReportsMissingBlocks(t *testing.T) {
	tree := buildTree(t, 21)
	var avail []blocks.Block
	for _, b := range tree.dag.blocks() {
		if !b.Cid().Equals(tree.c) {
			avail = append(avail, b)
		}
	}
	n := openNode(t, Options{Exchange: newTestExchange(avail...)})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := n.Pin(ctx, tree.root, true)
	var fe *FetchError
	if !errors.As(err, &fe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a FetchError from the deadline, got %v", err)
	}
	if !slices.ContainsFunc(fe.Missing, tree.c.Equals) || fe.MissingCount < 1 || fe.Fetched == 0 {
		t.Fatalf("FetchError %+v does not name %s", fe, tree.c)
	}
	if !strings.Contains(err.Error(), tree.c.String()) {
		t.Fatalf("error text %q does not name %s", err, tree.c)
	}
	if got := listPins(t, n); len(got) != 0 {
		t.Fatalf("failed pin recorded: %v", got)
	}
	// The blocks that arrived were kept.
	kept := 0
	for _, b := range avail {
		if has, _ := n.HasBlock(context.Background(), b.Cid()); has {
			kept++
		}
	}
	if kept != fe.Fetched {
		t.Fatalf("%d blocks fetched but %d kept", fe.Fetched, kept)
	}

	// An exchange that gives up reports the missing block without waiting
	// for the deadline.
	n2 := openNode(t, Options{Exchange: quitterExchange{newTestExchange(avail...)}})
	start := time.Now()
	err = n2.Pin(context.Background(), tree.root, true)
	if !errors.As(err, &fe) || !errors.Is(err, errExchangeStopped) || !slices.ContainsFunc(fe.Missing, tree.c.Equals) {
		t.Fatalf("exchange giving up: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("pin took %s", time.Since(start))
	}
}

// quitterExchange stops delivering blocks shortly after a request instead
// of waiting for its context.
type quitterExchange struct{ *testExchange }

func (q quitterExchange) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan blocks.Block, error) {
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	ch, err := q.testExchange.GetBlocks(ctx, cids)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan blocks.Block)
	go func() {
		defer cancel()
		defer close(out)
		for b := range ch {
			out <- b
		}
	}()
	return out, nil
}

func TestBeforeFetch(t *testing.T) {
	ctx := context.Background()
	tree := buildTree(t, 22)
	var calls []cid.Cid
	refuse := errors.New("nobody to ask")
	n := openNode(t, Options{
		Exchange: newTestExchange(tree.dag.blocks()...),
		BeforeFetch: func(_ context.Context, missing cid.Cid) error {
			calls = append(calls, missing)
			return refuse
		},
	})
	// Only the root is local: the hook sees the first missing block and
	// its error aborts the pin.
	putBlocks(t, n, []blocks.Block{mustGet(t, tree.dag, tree.root)})
	if err := n.Pin(ctx, tree.root, true); !errors.Is(err, refuse) {
		t.Fatalf("pin: %v", err)
	}
	if len(calls) != 1 || calls[0].Equals(tree.root) {
		t.Fatalf("hook calls %v", calls)
	}
	if err := n.Pin(ctx, tree.c, false); !errors.Is(err, refuse) || !calls[1].Equals(tree.c) {
		t.Fatalf("direct pin: %v, calls %v", err, calls)
	}
	if got := listPins(t, n); len(got) != 0 {
		t.Fatalf("pins recorded: %v", got)
	}
	// Local content never calls it.
	putBlocks(t, n, tree.dag.blocks())
	if err := n.Pin(ctx, tree.root, true); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Fatalf("hook called for local content: %v", calls)
	}
}
