package sdk

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Streams carry items in batches of at most MaxBatchItems items and about
// MaxBatchBytes bytes per message (a single larger item travels alone).
// A batch holds whatever items are ready when the previous message has
// been sent: a slow producer gets its items delivered one by one at once,
// a fast one gets full batches. The streams of pin and unpin results
// linger up to ResultLinger after their first ready item for more, since
// their items come one by one as IPFS completes them and every message
// costs a crossing.
const (
	MaxBatchItems = 512
	MaxBatchBytes = 1 << 20
	ResultLinger  = time.Millisecond
)

type streamItem[P any] struct {
	v    P
	size int
	err  error
}

// serveBatched runs the stream opened by open in its own goroutine and
// sends its items in batches. The stream's context is cancelled when the
// call ends, including when the client goes away.
func serveBatched[T any, P proto.Message, M any](
	parent context.Context,
	open func(context.Context) iter.Seq2[T, error],
	conv func(T) P,
	wrap func([]P) M,
	send func(M) error,
) error {
	return serveBatchedSized(parent, 0, open, conv, func(p P) int { return proto.Size(p) }, wrap, send)
}

// serveBatchedLinger is serveBatched for streams whose items come one by
// one: after the first item of a batch it waits up to linger for more.
func serveBatchedLinger[T any, P proto.Message, M any](
	parent context.Context,
	linger time.Duration,
	open func(context.Context) iter.Seq2[T, error],
	conv func(T) P,
	wrap func([]P) M,
	send func(M) error,
) error {
	return serveBatchedSized(parent, linger, open, conv, func(p P) int { return proto.Size(p) }, wrap, send)
}

func serveBatchedSized[T, P, M any](
	parent context.Context,
	linger time.Duration,
	open func(context.Context) iter.Seq2[T, error],
	conv func(T) P,
	size func(P) int,
	wrap func([]P) M,
	send func(M) error,
) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	ch := make(chan streamItem[P], MaxBatchItems)
	go func() {
		defer close(ch)
		for v, err := range open(ctx) {
			var it streamItem[P]
			if err != nil {
				it.err = err
			} else {
				it.v = conv(v)
				it.size = size(it.v)
			}
			select {
			case ch <- it:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	var carry *streamItem[P]
	for {
		var first streamItem[P]
		if carry != nil {
			first, carry = *carry, nil
		} else {
			select {
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			case it, ok := <-ch:
				if !ok {
					return nil
				}
				first = it
			}
		}
		if first.err != nil {
			return toStatus(first.err)
		}

		batch := make([]P, 1, min(1+len(ch), MaxBatchItems))
		batch[0] = first.v
		bytes := first.size
		done, endErr := false, error(nil)
		var wait <-chan time.Time // set once the batch has waited for more
		var timer *time.Timer
	fill:
		for len(batch) < MaxBatchItems {
			var (
				it streamItem[P]
				ok bool
			)
			select {
			case it, ok = <-ch:
			default:
				if linger <= 0 {
					break fill
				}
				if timer == nil {
					timer = time.NewTimer(linger)
					wait = timer.C
				}
				select {
				case it, ok = <-ch:
				case <-wait:
					break fill
				case <-ctx.Done():
					break fill
				}
			}
			switch {
			case !ok:
				done = true
				break fill
			case it.err != nil:
				done, endErr = true, it.err
				break fill
			case bytes+it.size > MaxBatchBytes:
				carry = &it
				break fill
			}
			batch = append(batch, it.v)
			bytes += it.size
		}
		if timer != nil {
			timer.Stop()
		}
		if err := send(wrap(batch)); err != nil {
			return err
		}
		if done {
			return toStatus(endErr)
		}
	}
}

// serveEach sends every item of the stream opened by open in a message of
// its own, as soon as it is produced.
func serveEach[T any, M any](
	parent context.Context,
	open func(context.Context) iter.Seq2[T, error],
	conv func(T) M,
	send func(M) error,
) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	for v, err := range open(ctx) {
		if err != nil {
			return toStatus(err)
		}
		if err := send(conv(v)); err != nil {
			return err
		}
	}
	return nil
}

// recvStream returns a stream that opens the call when it is iterated,
// reads one message at a time and cancels the call when the consumer stops
// early. each yields the items of one message and reports whether to go on.
func recvStream[M any, T any](
	ctx context.Context,
	open func(context.Context) (grpc.ServerStreamingClient[M], error),
	each func(m *M, yield func(T) bool) (bool, error),
) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := open(ctx)
		if err != nil {
			yield(zero, fromStatus(err))
			return
		}
		emit := func(v T) bool { return yield(v, nil) }
		for {
			m, err := st.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(zero, fromStatus(err))
				return
			}
			more, err := each(m, emit)
			if err != nil {
				yield(zero, err)
				return
			}
			if !more {
				return
			}
		}
	}
}

// eachOf builds the each function of recvStream for messages holding a
// list of items.
func eachOf[M, P, T any](items func(*M) []P, conv func(P) (T, error)) func(*M, func(T) bool) (bool, error) {
	return func(m *M, yield func(T) bool) (bool, error) {
		for _, p := range items(m) {
			v, err := conv(p)
			if err != nil {
				return false, err
			}
			if !yield(v) {
				return false, nil
			}
		}
		return true, nil
	}
}

// one builds the each function of recvStream for messages that are one
// item each.
func one[M, T any](conv func(*M) (T, error)) func(*M, func(T) bool) (bool, error) {
	return func(m *M, yield func(T) bool) (bool, error) {
		v, err := conv(m)
		if err != nil {
			return false, err
		}
		return yield(v), nil
	}
}
