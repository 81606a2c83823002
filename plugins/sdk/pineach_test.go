package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
)

func pinEachCids(t *testing.T, n int) []core.Cid {
	out := make([]core.Cid, n)
	for i := range out {
		mh, err := multihash.Sum(fmt.Appendf(nil, "item %d", i), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = core.Cid{Cid: cid.NewCidV1(cid.Raw, mh)}
	}
	return out
}

func TestPinEach(t *testing.T) {
	items := pinEachCids(t, 40)
	id := func(c core.Cid) core.Cid { return c }
	slots := make(chan struct{}, 3)
	var running, most atomic.Int64
	op := func(_ context.Context, c core.Cid) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		if c.Equals(items[7]) {
			return errors.New("item 7 fails")
		}
		return nil
	}

	// Every item once, its error carried; at most min(workers, slots) at a time.
	seen := map[string]string{}
	PinEach(context.Background(), items, 8, slots, id, op, func(r core.IPFSPinResult, err error) bool {
		if err != nil {
			t.Fatalf("stream error %v", err)
		}
		if _, dup := seen[r.Cid.String()]; dup {
			t.Fatalf("%s twice", r.Cid)
		}
		seen[r.Cid.String()] = r.Error
		return true
	})
	if len(seen) != len(items) || seen[items[7].String()] != "item 7 fails" || seen[items[0].String()] != "" {
		t.Fatalf("results %v", seen)
	}
	if m := most.Load(); m > 3 {
		t.Fatalf("%d ran at once with 3 slots", m)
	}
	most.Store(0)
	PinEach(context.Background(), items, 2, nil, id, op, func(core.IPFSPinResult, error) bool { return true })
	if m := most.Load(); m > 2 {
		t.Fatalf("%d ran at once with 2 workers", m)
	}

	// A consumer that stops early cancels the rest.
	var ran atomic.Int64
	slow := func(ctx context.Context, _ core.Cid) error {
		ran.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
			return nil
		}
	}
	got := 0
	PinEach(context.Background(), items, 4, nil, id, slow, func(core.IPFSPinResult, error) bool { got++; return got < 2 })
	if got != 2 || ran.Load() >= int64(len(items)) {
		t.Fatalf("after stopping at 2: %d yielded, %d ran", got, ran.Load())
	}

	// A context that ends first ends the stream with its error.
	ctx, cancel := context.WithCancel(context.Background())
	var last error
	n := 0
	PinEach(ctx, items, 2, nil, id, slow, func(_ core.IPFSPinResult, err error) bool {
		if n++; n == 3 {
			cancel()
		}
		last = err
		return true
	})
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("stream ended with %v after cancel", last)
	}
	PinEach(context.Background(), []core.Cid{}, 2, nil, id, slow, func(core.IPFSPinResult, error) bool {
		t.Fatal("yield for no items")
		return false
	})
}
