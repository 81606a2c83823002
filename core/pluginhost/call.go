package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// How a proxy call goes:
//
//  1. It takes the running instance of its kind, waiting (RestartWait at
//     most) while the plugin is being restarted.
//  2. A unary call runs under the call timeout (Options.CallTimeout, or the
//     one WithCallTimeout put in the context). If the plugin has not
//     answered when it expires, the plugin is deemed hung: it is killed and
//     restarted, and the call fails. The timeout runs from the start of the
//     call even when the caller's own deadline is earlier: the caller gets
//     its deadline error at its deadline, and the call is watched on. A
//     caller's deadline that falls within a tenth of the timeout (1s at
//     most) of the timeout's end counts as the timeout. Streams have no
//     timeout.
//  3. When the call fails because the plugin is gone (sdk.IsUnavailable,
//     or the process has exited), the watcher is told at once. A call
//     marked idempotent is then made once more on the restarted plugin
//     (for a stream: only if nothing was yielded yet; IPFS Pin and Unpin
//     go on with the requests that have no result yet). Otherwise, or if
//     the second attempt fails too, the caller gets an *UnavailableError:
//     `plugin <kind> "<name>" is restarting: <call>: <cause>`.
//
// Errors of the plugin itself are returned untouched.

type callTimeoutKey struct{}

// WithCallTimeout returns a context in which unary plugin calls made through
// a Supervisor's proxies are bounded by d instead of the configured call
// timeout; d <= 0 removes the bound (for calls known to be long).
func WithCallTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, callTimeoutKey{}, d)
}

func (s *Supervisor) callTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(callTimeoutKey{}).(time.Duration); ok {
		return d
	}
	return s.opts.CallTimeout
}

// dead reports whether err says the instance is gone.
func dead(inst *instance, err error) bool {
	return sdk.IsUnavailable(err) || inst.p.Exited()
}

func (s *slot) unavailable(op string, err error) error {
	return &UnavailableError{Kind: s.kind, Name: s.name(), Op: op, Err: err}
}

// failed handles an error of a call on inst: it reports whether the call
// may be made again on another instance; otherwise err is what the caller
// gets.
func (s *slot) failed(ctx context.Context, inst *instance, op string, err error) (retryable bool, out error) {
	if ctx.Err() != nil || !dead(inst, err) {
		return false, err
	}
	s.report(inst, fmt.Sprintf("%s failed: %v", op, err), false)
	return true, s.unavailable(op, err)
}

// unary makes a unary call through the slot. fn gets the instance's client
// as the kind's interface I.
func unary[I, T any](ctx context.Context, s *slot, op string, idempotent bool, fn func(context.Context, I) (T, error)) (T, error) {
	var zero T
	var after *instance
	for attempt := 0; ; attempt++ {
		inst, err := s.acquire(ctx, op, after)
		if err != nil {
			return zero, err
		}
		v, err, hung := invoke(ctx, s, inst, op, fn)
		if err == nil {
			return v, nil
		}
		if hung != 0 {
			return zero, s.unavailable(op, fmt.Errorf("no answer within %s: the plugin hangs and was killed", hung))
		}
		retry, err := s.failed(ctx, inst, op, err)
		if !retry || !idempotent || attempt > 0 {
			return zero, err
		}
		after = inst
	}
}

// invoke calls fn on inst under the call timeout and releases inst. hung is
// the timeout when the plugin did not answer within it.
func invoke[I, T any](ctx context.Context, s *slot, inst *instance, op string, fn func(context.Context, I) (T, error)) (T, error, time.Duration) {
	var zero T
	impl := any(inst.p.Impl()).(I)
	limit := s.sup.callTimeout(ctx)
	if limit <= 0 {
		defer inst.release()
		v, err := fn(ctx, impl)
		return v, err, 0
	}
	// The timeout is enforced here, by a timer, so that it is known for
	// sure whether it fired; the plugin gets a slightly later deadline, as
	// a hint for its own work, which cannot expire first.
	//
	// When the caller's deadline comes first, the call is detached from it
	// (it still ends when the caller cancels): the caller gets its deadline
	// error at its deadline, and the call goes on until it answers or
	// times out, so that a plugin that does not answer within the timeout
	// is found hung even if its caller gave up first.
	start := time.Now()
	slack := limit/8 + 100*time.Millisecond
	parent, inline := ctx, true
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= limit+slack {
		parent, inline = context.WithoutCancel(ctx), false
	}
	hint, cancelHint := context.WithTimeout(parent, limit+slack)
	cctx, cancel := context.WithCancelCause(hint)
	timer := time.AfterFunc(limit, func() { cancel(errCallTimeout) })
	type result struct {
		v    T
		err  error
		hung time.Duration
	}
	run := func() result {
		defer inst.release()
		defer cancelHint()
		v, err := fn(cctx, impl)
		timer.Stop()
		var hung time.Duration
		if err != nil && errors.Is(context.Cause(cctx), errCallTimeout) {
			hung = limit
			s.report(inst, fmt.Sprintf("%s did not answer within %s", op, limit), true)
		}
		cancel(nil)
		return result{v, err, hung}
	}
	if inline {
		r := run()
		return r.v, r.err, r.hung
	}
	done := make(chan result, 1)
	go func() { done <- run() }()
	select {
	case r := <-done:
		return r.v, r.err, r.hung
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel(ctx.Err())
			return zero, ctx.Err(), 0
		}
		if time.Until(start.Add(limit)) <= min(limit/10, time.Second) {
			// The caller's deadline is the call timeout give or take a
			// little (a caller bounding a series of plugin calls by it):
			// the plugin did not answer in time.
			cancel(errCallTimeout)
			r := <-done
			return r.v, r.err, r.hung
		}
		return zero, ctx.Err(), 0
	}
}

// errCallTimeout is the cause of a call cancelled by the call timeout.
var errCallTimeout = errors.New("plugin call timeout")

// do is unary for calls that return only an error.
func do[I any](ctx context.Context, s *slot, op string, idempotent bool, fn func(context.Context, I) error) error {
	_, err := unary(ctx, s, op, idempotent, func(ctx context.Context, impl I) (struct{}, error) {
		return struct{}{}, fn(ctx, impl)
	})
	return err
}

// stream makes a streaming call through the slot. An idempotent stream
// that fails because the plugin died before yielding anything is opened
// again once on the restarted plugin.
func stream[I, T any](ctx context.Context, s *slot, op string, idempotent bool, fn func(context.Context, I) iter.Seq2[T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		var after *instance
		for attempt := 0; ; attempt++ {
			inst, err := s.acquire(ctx, op, after)
			if err != nil {
				yield(zero, err)
				return
			}
			yielded, stopped, err := drain(inst, fn(ctx, any(inst.p.Impl()).(I)), yield)
			if stopped || err == nil {
				return
			}
			retry, err := s.failed(ctx, inst, op, err)
			if !retry || !idempotent || yielded || attempt > 0 {
				yield(zero, err)
				return
			}
			after = inst
		}
	}
}

// drain forwards the items of seq to yield until seq ends, fails or yield
// stops, and releases inst.
func drain[T any](inst *instance, seq iter.Seq2[T, error], yield func(T, error) bool) (yielded, stopped bool, err error) {
	defer inst.release()
	for v, e := range seq {
		if e != nil {
			return yielded, false, e
		}
		yielded = true
		if !yield(v, nil) {
			return yielded, true, nil
		}
	}
	return yielded, false, nil
}

// resumable makes an IPFS Pin or Unpin call, which is idempotent per CID:
// when the connector dies, the requests that have no result yet are sent
// once more to the restarted connector.
func resumable[R any](ctx context.Context, s *slot, op string, reqs []R, cidOf func(R) core.Cid,
	fn func(context.Context, core.IPFSConnector, []R) iter.Seq2[core.IPFSPinResult, error]) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		todo := reqs
		var after *instance
		for attempt := 0; ; attempt++ {
			inst, err := s.acquire(ctx, op, after)
			if err != nil {
				yield(core.IPFSPinResult{}, err)
				return
			}
			answered := core.PinResultTally{}
			record := func(r core.IPFSPinResult, err error) bool {
				if err == nil {
					answered.Add(r.Cid)
				}
				return yield(r, err)
			}
			_, stopped, err := drain(inst, fn(ctx, inst.p.Impl().(core.IPFSConnector), todo), record)
			if stopped || err == nil {
				return
			}
			retry, err := s.failed(ctx, inst, op, err)
			if !retry || attempt > 0 {
				yield(core.IPFSPinResult{}, err)
				return
			}
			rest := core.Unanswered(answered, todo, cidOf)
			if len(rest) == 0 {
				return
			}
			todo, after = rest, inst
		}
	}
}
