package sdk

import (
	"context"
	"sync"

	"github.com/pincluster/pincluster/core"
)

// PinEach is the body of an IPFS connector's Pin or Unpin stream: it runs
// fn for every item, at most workers at a time and, when slots is not nil,
// each holding one of its slots while fn runs (a limit shared by all the
// calls of one connector), and yields one result per item in completion
// order: the item's CID (key) with fn's error, if any, as its Error. When
// the consumer stops, the items not yet done are cancelled; when ctx ends
// first, the last item yielded is ctx's error.
func PinEach[T any](ctx context.Context, items []T, workers int, slots chan struct{},
	key func(T) core.Cid, fn func(context.Context, T) error, yield func(core.IPFSPinResult, error) bool) {
	if len(items) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers = max(1, min(workers, len(items)))
	if slots != nil {
		workers = min(workers, cap(slots))
	}
	work := make(chan T)
	results := make(chan core.IPFSPinResult, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for it := range work {
				res := core.IPFSPinResult{Cid: key(it)}
				if err := runInSlot(ctx, slots, func() error { return fn(ctx, it) }); err != nil {
					res.Error = err.Error()
				}
				select {
				case results <- res:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(work)
		for _, it := range items {
			select {
			case work <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	delivered := 0
	for res := range results {
		delivered++
		if !yield(res, nil) {
			cancel()
			for range results {
			}
			return
		}
	}
	if delivered < len(items) {
		yield(core.IPFSPinResult{}, ctx.Err())
	}
}

// runInSlot runs fn holding a slot of slots (nil: no limit), or returns
// ctx's error if it ends before a slot is free.
func runInSlot(ctx context.Context, slots chan struct{}, fn func() error) error {
	if slots == nil {
		return fn()
	}
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
		return fn()
	case <-ctx.Done():
		return ctx.Err()
	}
}
