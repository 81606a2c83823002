package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

const bigStream = 10_000

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type result[T any] struct {
	v   T
	err error
}

// must(f()).of(t) is the value of f, or the end of the test.
func must[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) of(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func noError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErrText(t *testing.T, err error, text string) {
	t.Helper()
	if err == nil || err.Error() != text {
		t.Errorf("error %v, want %q", err, text)
	}
}

func peers(t *testing.T, n int) []core.PeerID {
	out := make([]core.PeerID, n)
	for i := range out {
		out[i] = sdktest.NewPeerID(t)
	}
	return out
}

func mkPin(i int, ps []core.PeerID) core.Pin {
	p := core.Pin{
		Cid:       testCid(i),
		Type:      core.DataType,
		MaxDepth:  -1,
		Timestamp: ts(1_700_000_000_000_000_000 + int64(i)),
	}
	if n := i % len(ps); n > 0 {
		p.Allocations = ps[:n]
	}
	p.Name = fmt.Sprint("pin ", i)
	p.ReplicationFactorMin, p.ReplicationFactorMax = -1, -1
	if i%7 == 0 {
		p.Metadata = map[string]string{"i": fmt.Sprint(i)}
	}
	return p
}

// waitClosed fails the test if ch is not closed soon.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not stop", what)
	}
}

// checkEarlyBreak reads a few items of an endless stream, checks that the
// producer is held back while the consumer is not reading, stops reading,
// and checks that the producer was stopped.
func checkEarlyBreak[T any](t *testing.T, e *endless, seq func() func(func(T, error) bool)) {
	t.Helper()
	n := 0
	for _, err := range seq() {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 1 {
			time.Sleep(300 * time.Millisecond)
			if p := e.produced.Load(); p > 100_000 {
				t.Errorf("producer ran %d items ahead of a stalled consumer", p)
			}
		}
		if n == 10 {
			break
		}
	}
	waitClosed(t, e.stopped, "the producer of a stream abandoned by its consumer")
}

func TestPluginBase(t *testing.T) {
	ctx := testCtx(t)
	impl := newFakeAllocator()
	env := sdktest.Environment(t)
	a := sdktest.ConnectAllocator(t, impl, json.RawMessage(`{"by":["tag:region"]}`), nil, sdktest.WithEnvironment(env))

	if d := must(a.Describe(ctx)).of(t); !reflect.DeepEqual(d, impl.desc) {
		t.Errorf("describe: %#v", d)
	}
	impl.base.mu.Lock()
	if string(impl.cfg) != `{"by":["tag:region"]}` || !reflect.DeepEqual(impl.env, env) || impl.host != nil {
		t.Errorf("configure got %s %#v %v", impl.cfg, impl.env, impl.host)
	}
	impl.base.mu.Unlock()

	// Empty configuration: nil for the plugin.
	if err := a.Configure(ctx, nil, env, nil); err != nil {
		t.Fatal(err)
	}
	impl.base.mu.Lock()
	if impl.cfg != nil || impl.configures != 2 {
		t.Errorf("empty configure: %q, %d calls", impl.cfg, impl.configures)
	}
	impl.base.mu.Unlock()

	wantErrText(t, a.Configure(ctx, json.RawMessage(`{"fail":true}`), env, nil), "invalid configuration: fail is true")

	if err := a.Close(ctx); err != nil || impl.closeCount() != 1 {
		t.Errorf("close: %v, %d closes", err, impl.closeCount())
	}
	// The harness does not close it again at the end.
}

func TestCleanupClosesConfiguredPlugin(t *testing.T) {
	impl := newFakeAllocator()
	t.Run("connect", func(t *testing.T) {
		sdktest.ConnectAllocator(t, impl, nil, nil)
	})
	if impl.closeCount() != 1 {
		t.Errorf("%d closes after the test", impl.closeCount())
	}
	unconfigured := newFakeAllocator()
	t.Run("unconfigured", func(t *testing.T) {
		sdktest.ConnectAllocator(t, unconfigured, nil, nil, sdktest.WithoutConfigure())
	})
	if unconfigured.closeCount() != 0 {
		t.Errorf("an unconfigured plugin was closed")
	}
}

func TestConsensus(t *testing.T) {
	ctx := testCtx(t)
	ps := peers(t, 3)
	impl := newFakeConsensus(slices.Clone(ps))
	c := sdktest.ConnectConsensus(t, impl, nil, nil)

	pins := make([]core.Pin, bigStream)
	ops := make([]core.PinOp, bigStream)
	for i := range pins {
		pins[i] = mkPin(i, ps)
		ops[i] = core.PinOp{Pin: pins[i]}
	}
	if err := c.Commit(ctx, ops); err != nil {
		t.Fatal(err)
	}

	t.Run("ListPins", func(t *testing.T) {
		got := must(core.Collect(c.ListPins(ctx))).of(t)
		if len(got) != bigStream || !reflect.DeepEqual(got, pins) {
			t.Fatalf("got %d pins, not the %d committed in order", len(got), bigStream)
		}
	})
	t.Run("GetPin", func(t *testing.T) {
		if p := must(c.GetPin(ctx, testCid(42))).of(t); !reflect.DeepEqual(p, pins[42]) {
			t.Errorf("got %#v", p)
		}
		_, err := c.GetPin(ctx, testCid(-1))
		if err != core.ErrPinNotFound {
			t.Errorf("missing pin: %#v", err)
		}
		_, err = c.GetPin(ctx, testCid(-2))
		if !errors.Is(err, core.ErrPinNotFound) {
			t.Errorf("wrapped not found lost: %#v", err)
		}
		wantErrText(t, err, fmt.Sprintf("lookup %s: pin is not part of the pinset", testCid(-2)))
	})
	t.Run("Commit", func(t *testing.T) {
		err := c.Commit(ctx, []core.PinOp{{Pin: core.Pin{Cid: testCid(-3), PinOptions: core.PinOptions{Name: "boom"}}}})
		wantErrText(t, err, "commit rejected: pin named boom")
		if errors.Is(err, core.ErrPinNotFound) || sdk.IsUnavailable(err) {
			t.Error("an ordinary error matches a sentinel")
		}
		if err := c.Commit(ctx, []core.PinOp{{Remove: true, Pin: core.Pin{Cid: testCid(0)}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetPin(ctx, testCid(0)); err != core.ErrPinNotFound {
			t.Errorf("removed pin: %v", err)
		}
	})
	t.Run("Watch", func(t *testing.T) {
		const events = 300
		got := make(chan core.PinEvent, events)
		done := make(chan error, 1)
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			n := 0
			for ev, err := range c.Watch(wctx) {
				if err != nil {
					done <- err
					return
				}
				got <- ev
				if n++; n == events {
					break
				}
			}
			done <- nil
		}()
		select {
		case <-impl.watching:
		case <-time.After(10 * time.Second):
			t.Fatal("watch did not subscribe")
		}
		sent := make([]core.PinEvent, events)
		for i := range events {
			sent[i] = core.PinEvent{Ops: []core.PinOp{{Pin: mkPin(bigStream+i, ps)}}}
			if i%3 == 0 {
				sent[i].Ops = append(sent[i].Ops, core.PinOp{Remove: true, Pin: core.Pin{Cid: testCid(i)}})
			}
			if err := c.Commit(ctx, sent[i].Ops); err != nil {
				t.Fatal(err)
			}
			if i < 10 {
				// A live stream delivers each event on its own, at once.
				select {
				case ev := <-got:
					if !reflect.DeepEqual(ev, sent[i]) {
						t.Fatalf("event %d: %#v", i, ev)
					}
				case <-time.After(2 * time.Second):
					t.Fatalf("event %d not delivered", i)
				}
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for i := 10; i < events; i++ {
			if ev := <-got; !reflect.DeepEqual(ev, sent[i]) {
				t.Fatalf("event %d: %#v", i, ev)
			}
		}
		// Breaking out unsubscribed the watcher in the plugin.
		deadline := time.Now().Add(10 * time.Second)
		for {
			impl.mu.Lock()
			n := len(impl.watchers)
			impl.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("watcher still subscribed")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("Peers", func(t *testing.T) {
		if got := must(c.Peers(ctx)).of(t); !reflect.DeepEqual(got, ps) {
			t.Errorf("peers %v", got)
		}
		if l := must(c.Leader(ctx)).of(t); l != ps[0] {
			t.Errorf("leader %v", l)
		}
		if err := c.RemovePeer(ctx, ps[2]); err != nil {
			t.Fatal(err)
		}
		wantErrText(t, c.RemovePeer(ctx, ps[2]), fmt.Sprintf("peer %s is not in the peerset", ps[2]))
		if got := must(c.Peers(ctx)).of(t); !reflect.DeepEqual(got, ps[:2]) {
			t.Errorf("peers after removal %v", got)
		}
		for _, p := range ps[:2] {
			noError(t, c.RemovePeer(ctx, p))
		}
		if got := must(c.Peers(ctx)).of(t); got != nil {
			t.Errorf("no peers should be nil: %#v", got)
		}
		// No leader: the call ends with the caller's deadline.
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := c.Leader(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("leader without peers: %#v", err)
		}
	})
	t.Run("StreamError", func(t *testing.T) {
		impl.listErr = errors.New("state corrupted at index 9999")
		defer func() { impl.listErr = nil }()
		n := 0
		var last error
		for _, err := range c.ListPins(ctx) {
			if err != nil {
				last = err
				break
			}
			n++
		}
		impl.mu.Lock()
		want := len(impl.pins)
		impl.mu.Unlock()
		if n != want {
			t.Errorf("got %d pins before the error, want %d", n, want)
		}
		wantErrText(t, last, "state corrupted at index 9999")
	})
	t.Run("EarlyBreak", func(t *testing.T) {
		impl.listEnd = newEndless()
		defer func() { impl.listEnd = nil }()
		checkEarlyBreak(t, impl.listEnd, func() func(func(core.Pin, error) bool) { return c.ListPins(ctx) })
	})
	t.Run("CallerCancels", func(t *testing.T) {
		impl.listEnd = newEndless()
		defer func() { impl.listEnd = nil }()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		n := 0
		var last error
		for _, err := range c.ListPins(cctx) {
			if err != nil {
				last = err
				break
			}
			if n++; n == 100 {
				cancel()
			}
		}
		if !errors.Is(last, context.Canceled) {
			t.Errorf("stream of a cancelled caller ended with %#v", last)
		}
		waitClosed(t, impl.listEnd.stopped, "the producer of a cancelled stream")
	})
}

func TestAllocator(t *testing.T) {
	ctx := testCtx(t)
	ps := peers(t, 5)
	a := sdktest.ConnectAllocator(t, newFakeAllocator(), nil, nil)
	req := core.AllocateRequest{}
	for i, p := range ps {
		req.Metrics = append(req.Metrics, core.Metric{Name: "freespace", Peer: p, Value: fmt.Sprint(i), Weight: int64(i), Valid: i != 0, Expire: 1})
	}
	req.Pins = []core.PinAllocation{
		{Cid: testCid(1), Needed: 2, Wanted: 3},
		{Cid: testCid(2), Current: []core.PeerID{ps[4]}, Needed: 1, Wanted: 1},
		{Cid: testCid(3), Needed: 5, Wanted: 5},
	}
	got := must(a.Allocate(ctx, req)).of(t)
	want := []core.AllocateResult{
		{Peers: []core.PeerID{ps[4], ps[3], ps[2]}},
		{Peers: []core.PeerID{ps[3]}},
		{Error: fmt.Sprintf("not enough peers to allocate %s: 4 of 5", testCid(3))},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("allocate:\n got %#v\nwant %#v", got, want)
	}
	_, err := a.Allocate(ctx, core.AllocateRequest{Metrics: req.Metrics})
	wantErrText(t, err, "nothing to allocate")
}

func TestPinTracker(t *testing.T) {
	ctx := testCtx(t)
	host := newFakeHost(bigStream)
	impl := newFakeTracker()
	impl.statusN = bigStream
	env := sdktest.Environment(t)
	tr := sdktest.ConnectPinTracker(t, impl, json.RawMessage(`{}`), host, sdktest.WithEnvironment(env))
	ps := peers(t, 2)

	t.Run("TrackStatusUntrack", func(t *testing.T) {
		pins := []core.Pin{mkPin(1, ps), mkPin(2, ps), mkPin(3, ps)}
		noError(t, tr.Track(ctx, pins))
		cids := []core.Cid{testCid(1), testCid(2), testCid(3), testCid(-1)}
		got := must(tr.Status(ctx, cids)).of(t)
		if len(got) != 4 {
			t.Fatalf("%d statuses", len(got))
		}
		for i, pi := range got {
			if !pi.Cid.Equals(cids[i]) || pi.Peer != env.PeerID {
				t.Errorf("status %d: %#v", i, pi)
			}
			if i < 3 && (pi.Status != core.TrackerStatusPinQueued || pi.Name != pins[i].Name || !reflect.DeepEqual(pi.Allocations, pins[i].Allocations)) {
				t.Errorf("status %d: %#v", i, pi)
			}
		}
		if got[3].Status != core.TrackerStatusUnpinned {
			t.Errorf("unknown cid: %v", got[3].Status)
		}
		host.mu.Lock()
		host.ipfs[testCid(1).KeyString()] = core.IPFSPinStatusRecursive
		host.mu.Unlock()
		noError(t, tr.Untrack(ctx, cids[:2]))
		host.mu.Lock()
		_, still := host.ipfs[testCid(1).KeyString()]
		host.mu.Unlock()
		if still || host.unpinCalls.Load() != 1 {
			t.Errorf("untrack did not unpin through the host")
		}
		impl.mu.Lock()
		if !reflect.DeepEqual(impl.untracked, cids[:2]) {
			t.Errorf("untracked %v", impl.untracked)
		}
		impl.mu.Unlock()
		if st := must(tr.Stats(ctx)).of(t); st != (core.TrackerStats{PinQueued: 1, Pinning: 2, PinErrors: 3}) {
			t.Errorf("stats %#v", st)
		}
		wantErrText(t, tr.Track(ctx, []core.Pin{{PinOptions: core.PinOptions{Name: "fail"}}}), "queue full: 1 pins refused")
		if got := must(tr.Status(ctx, nil)).of(t); got != nil {
			t.Errorf("status of nothing: %#v", got)
		}
	})
	t.Run("StatusAll", func(t *testing.T) {
		got := must(core.Collect(tr.StatusAll(ctx, 0))).of(t)
		if len(got) != bigStream {
			t.Fatalf("%d statuses", len(got))
		}
		for i, pi := range got {
			if !reflect.DeepEqual(pi, statusItem(i)) {
				t.Fatalf("status %d: %#v", i, pi)
			}
		}
		errs := must(core.Collect(tr.StatusAll(ctx, core.TrackerStatusError))).of(t)
		if len(errs) != (bigStream+2)/3 || !errs[1].Cid.Equals(testCid(3)) {
			t.Errorf("filtered: %d", len(errs))
		}
	})
	t.Run("HostCallbacks", func(t *testing.T) {
		host.mu.Lock()
		host.failPin[testCid(1).KeyString()] = "ipfs: pin timed out"
		host.mu.Unlock()
		gets, pinCalls := host.getCalls.Load(), host.pinCalls.Load()
		got := must(tr.Recover(ctx, []core.Cid{testCid(0), testCid(1), testCid(-5)})).of(t)
		want := []core.PinInfo{
			{Cid: testCid(-5), PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusUnpinned, Error: core.ErrPinNotFound.Error()}},
			{Cid: testCid(0), PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusPinned}},
			{Cid: testCid(1), PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusPinError, Error: "ipfs: pin timed out"}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("recover:\n got %#v\nwant %#v", got, want)
		}
		if host.getCalls.Load()-gets != 3 || host.pinCalls.Load()-pinCalls != 1 {
			t.Errorf("host saw %d GetPin and %d Pin calls", host.getCalls.Load()-gets, host.pinCalls.Load()-pinCalls)
		}
		synced := must(tr.Sync(ctx, []core.Cid{testCid(0), testCid(1)})).of(t)
		if synced[0].Status != core.TrackerStatusPinned || synced[1].Status != core.TrackerStatusUnpinned {
			t.Errorf("sync: %#v", synced)
		}
	})
	t.Run("RecoverAllThroughHostListPins", func(t *testing.T) {
		got := must(core.Collect(tr.RecoverAll(ctx))).of(t)
		if len(got) != bigStream {
			t.Fatalf("%d items", len(got))
		}
		for i, pi := range got {
			if !pi.Cid.Equals(testCid(i)) || pi.Name != fmt.Sprint("host pin ", i) || pi.Status != core.TrackerStatusPinQueued {
				t.Fatalf("item %d: %#v", i, pi)
			}
		}
	})
	t.Run("SyncAllThroughHostPinLs", func(t *testing.T) {
		host.mu.Lock()
		for i := range bigStream {
			host.ipfs[testCid(i).KeyString()] = core.IPFSPinStatusRecursive
		}
		host.mu.Unlock()
		got := must(core.Collect(tr.SyncAll(ctx))).of(t)
		if len(got) != bigStream {
			t.Fatalf("%d items", len(got))
		}
		for i, pi := range got {
			if !pi.Cid.Equals(testCid(i)) || pi.Status != core.TrackerStatusPinned {
				t.Fatalf("item %d: %#v", i, pi)
			}
		}
	})
	t.Run("EarlyBreak", func(t *testing.T) {
		impl.statusEnd = newEndless()
		defer func() { impl.statusEnd = nil }()
		checkEarlyBreak(t, impl.statusEnd, func() func(func(core.PinInfo, error) bool) { return tr.StatusAll(ctx, 0) })
	})
	t.Run("EarlyBreakAcrossHost", func(t *testing.T) {
		// The consumer in the core stops reading the plugin's stream; the
		// plugin stops reading the host's stream; the host's producer in
		// the core stops.
		host.listEnd = newEndless()
		defer func() { host.listEnd = nil }()
		checkEarlyBreak(t, host.listEnd, func() func(func(core.PinInfo, error) bool) { return tr.RecoverAll(ctx) })
	})
}

func TestHostLifecycle(t *testing.T) {
	ctx := testCtx(t)
	impl := newFakeTracker()
	env := sdktest.Environment(t)
	tr := sdktest.ConnectPinTracker(t, impl, nil, nil, sdktest.WithEnvironment(env))

	// No host: the plugin gets a nil Host.
	if impl.getHost() != nil {
		t.Fatal("the plugin received a host")
	}
	_, err := tr.Recover(ctx, []core.Cid{testCid(1)})
	wantErrText(t, err, "no host")

	h1, h2 := newFakeHost(10), newFakeHost(10)
	for range 3 {
		// Configuring again reuses the host connection.
		noError(t, tr.Configure(ctx, nil, env, h1))
		must(tr.Recover(ctx, []core.Cid{testCid(1)})).of(t)
	}
	if h1.getCalls.Load() != 3 {
		t.Errorf("first host saw %d calls", h1.getCalls.Load())
	}
	// A new host replaces the old one.
	noError(t, tr.Configure(ctx, nil, env, h2))
	must(tr.Recover(ctx, []core.Cid{testCid(1)})).of(t)
	if h1.getCalls.Load() != 3 || h2.getCalls.Load() != 1 {
		t.Errorf("hosts saw %d and %d calls", h1.getCalls.Load(), h2.getCalls.Load())
	}
	// Back to no host.
	noError(t, tr.Configure(ctx, nil, env, nil))
	if impl.getHost() != nil {
		t.Error("the plugin kept a host")
	}
	// After Close, a new Configure serves the host again.
	noError(t, tr.Close(ctx))
	noError(t, tr.Configure(ctx, nil, env, h1))
	must(tr.Recover(ctx, []core.Cid{testCid(2)})).of(t)
	if h1.getCalls.Load() != 4 {
		t.Errorf("host after close saw %d calls", h1.getCalls.Load())
	}
}

func TestIPFSConnector(t *testing.T) {
	ctx := testCtx(t)
	impl := newFakeIPFS()
	impl.lsN, impl.gcN = bigStream, bigStream
	env := sdktest.Environment(t)
	ipfs := sdktest.ConnectIPFSConnector(t, impl, nil, newFakeHost(0), sdktest.WithEnvironment(env))

	t.Run("PinUnpin", func(t *testing.T) {
		reqs := make([]core.IPFSPinRequest, bigStream)
		cids := make([]core.Cid, bigStream)
		for i := range reqs {
			reqs[i] = core.IPFSPinRequest{Cid: testCid(i), MaxDepth: i%2 - 1, Timeout: time.Duration(i)}
			if i%1000 == 5 {
				reqs[i].Timeout = -1
			}
			cids[i] = testCid(i)
		}
		got := must(core.Collect(ipfs.Pin(ctx, reqs))).of(t)
		if len(got) != bigStream {
			t.Fatalf("%d results", len(got))
		}
		for j, r := range got {
			i := bigStream - 1 - j // completion order is reversed
			want := core.IPFSPinResult{Cid: testCid(i)}
			if i%1000 == 5 {
				want.Error = "invalid timeout"
			}
			if !reflect.DeepEqual(r, want) {
				t.Fatalf("result %d: %#v", j, r)
			}
		}
		infos := must(ipfs.PinLsCids(ctx, []core.Cid{testCid(0), testCid(1), testCid(5), testCid(-1)})).of(t)
		wantInfos := []core.IPFSPinInfo{
			{Cid: testCid(0), Type: core.IPFSPinStatusRecursive},
			{Cid: testCid(1), Type: core.IPFSPinStatusDirect},
			{Cid: testCid(5)},
			{Cid: testCid(-1)},
		}
		if !reflect.DeepEqual(infos, wantInfos) {
			t.Errorf("pin ls cids: %#v", infos)
		}
		un := must(core.Collect(ipfs.Unpin(ctx, cids))).of(t)
		if len(un) != bigStream || !un[bigStream-1].Cid.Equals(testCid(bigStream-1)) {
			t.Fatalf("%d unpin results", len(un))
		}
		for i, r := range un {
			if !r.Cid.Equals(cids[i]) || r.Error != "" {
				t.Fatalf("unpin result %d: %#v", i, r)
			}
		}
	})
	t.Run("PinResultsArrivePromptly", func(t *testing.T) {
		const delay = 150 * time.Millisecond
		impl.pinDelay = delay
		defer func() { impl.pinDelay = 0 }()
		start := time.Now()
		var at []time.Duration
		for _, err := range ipfs.Pin(ctx, []core.IPFSPinRequest{{Cid: testCid(1)}, {Cid: testCid(2)}, {Cid: testCid(3)}, {Cid: testCid(4)}}) {
			if err != nil {
				t.Fatal(err)
			}
			at = append(at, time.Since(start))
		}
		// Each result is delivered when it completes, not with the last.
		if len(at) != 4 || at[3]-at[0] < 2*delay {
			t.Errorf("results arrived at %v", at)
		}
	})
	t.Run("PinLs", func(t *testing.T) {
		got := must(core.Collect(ipfs.PinLs(ctx))).of(t)
		if len(got) != bigStream {
			t.Fatalf("%d items", len(got))
		}
		for i, in := range got {
			if in != lsItem(i) {
				t.Fatalf("item %d: %#v", i, in)
			}
		}
	})
	t.Run("RepoGC", func(t *testing.T) {
		got := must(core.Collect(ipfs.RepoGC(ctx))).of(t)
		if len(got) != bigStream {
			t.Fatalf("%d keys", len(got))
		}
		for i, k := range got {
			if k != gcItem(i) {
				t.Fatalf("key %d: %#v", i, k)
			}
		}
	})
	t.Run("Node", func(t *testing.T) {
		id := must(ipfs.ID(ctx)).of(t)
		if id.ID != env.PeerID || !reflect.DeepEqual(id.Addresses, []string{"/ip4/127.0.0.1/tcp/4001"}) {
			t.Errorf("id %#v", id)
		}
		if sp := must(ipfs.SwarmPeers(ctx)).of(t); !reflect.DeepEqual(sp, []core.PeerID{env.PeerID}) {
			t.Errorf("swarm peers %v", sp)
		}
		addrs := []string{"/ip4/10.0.0.1/tcp/4001/p2p/" + env.PeerID.String(), "/dns/x/tcp/1"}
		noError(t, ipfs.SwarmConnect(ctx, addrs))
		impl.mu.Lock()
		if !reflect.DeepEqual(impl.connected, addrs) {
			t.Errorf("connected %v", impl.connected)
		}
		impl.mu.Unlock()
		if v := must(ipfs.ConfigKey(ctx, "Datastore.StorageMax")).of(t); string(v) != `"10GB"` {
			t.Errorf("config key %s", v)
		}
		if v := must(ipfs.ConfigKey(ctx, "Empty")).of(t); v != nil {
			t.Errorf("empty config key %q", v)
		}
		_, err := ipfs.ConfigKey(ctx, "Nope")
		wantErrText(t, err, `key "Nope" has no value`)
		p := "/ipfs/" + testCid(1).String() + "/a"
		if c := must(ipfs.Resolve(ctx, p)).of(t); !c.Equals(testCid(2)) {
			t.Errorf("resolve %s", c)
		}
		if c := must(ipfs.Resolve(ctx, "/ipns/none")).of(t); c.Defined() {
			t.Errorf("undefined resolve gave %s", c)
		}
		_, err = ipfs.Resolve(ctx, "/ipfs/x/a")
		wantErrText(t, err, `cannot resolve /ipfs/x/a: no link named "a"`)
	})
	t.Run("LargeBlocks", func(t *testing.T) {
		// A 20 MiB batch of five 4 MiB blocks, then a single 20 MiB block
		// each way.
		var blocks []core.Block
		for i := range 5 {
			blocks = append(blocks, core.Block{Cid: testCid(100 + i), Data: bytes.Repeat([]byte{byte(i + 1)}, 4<<20)})
		}
		noError(t, ipfs.BlockPut(ctx, blocks))
		for _, b := range blocks {
			if got := must(ipfs.BlockGet(ctx, b.Cid)).of(t); !bytes.Equal(got, b.Data) {
				t.Fatalf("block %s: %d bytes", b.Cid, len(got))
			}
		}
		big := core.Block{Cid: testCid(200), Data: bytes.Repeat([]byte("0123456789abcdef"), 20<<20/16)}
		noError(t, ipfs.BlockPut(ctx, []core.Block{big}))
		if got := must(ipfs.BlockGet(ctx, big.Cid)).of(t); !bytes.Equal(got, big.Data) {
			t.Fatalf("20 MiB block: %d bytes", len(got))
		}
		st := must(ipfs.RepoStat(ctx)).of(t)
		if st != (core.IPFSRepoStat{RepoSize: 40 << 20, StorageMax: 10 << 30, NumObjects: 6}) {
			t.Errorf("repo stat %#v", st)
		}
		_, err := ipfs.BlockGet(ctx, testCid(-1))
		wantErrText(t, err, fmt.Sprintf("block %s not found", testCid(-1)))
		// Above the limit, the call fails cleanly.
		huge := core.Block{Cid: testCid(300), Data: make([]byte, sdk.MaxMessageSize)}
		if err := ipfs.BlockPut(ctx, []core.Block{huge}); err == nil || sdk.IsUnavailable(err) {
			t.Errorf("oversized batch: %v", err)
		}
	})
	t.Run("EarlyBreak", func(t *testing.T) {
		impl.pinLsEnd = newEndless()
		defer func() { impl.pinLsEnd = nil }()
		checkEarlyBreak(t, impl.pinLsEnd, func() func(func(core.IPFSPinInfo, error) bool) { return ipfs.PinLs(ctx) })
	})
}

func TestUnavailable(t *testing.T) {
	ctx := testCtx(t)
	p := sdktest.Start(t, newFakeTracker())
	tr := p.Dispense().(core.PinTracker)
	noError(t, tr.Configure(ctx, nil, sdktest.Environment(t), nil))
	must(tr.Stats(ctx)).of(t)
	p.Kill()
	if _, err := tr.Stats(ctx); !sdk.IsUnavailable(err) {
		t.Errorf("unary call to a dead plugin: %#v", err)
	}
	for _, err := range tr.StatusAll(ctx, 0) {
		if !sdk.IsUnavailable(err) {
			t.Errorf("stream from a dead plugin: %#v", err)
		}
	}
}

func TestVersionedPlugins(t *testing.T) {
	all := sdk.VersionedPlugins(nil)
	if len(all) != 1 || len(all[core.ProtocolVersion]) != 4 {
		t.Fatalf("client side plugin sets: %v", all)
	}
	for _, k := range core.Kinds {
		if p, ok := all[core.ProtocolVersion][string(k)].(*sdk.GRPCPlugin); !ok || p.Kind != k || p.Impl != nil {
			t.Errorf("kind %s: %#v", k, all[core.ProtocolVersion][string(k)])
		}
	}
	one := sdk.VersionedPlugins(newFakeIPFS())[core.ProtocolVersion]
	if len(one) != 1 || one[string(core.KindIPFSConnector)] == nil {
		t.Errorf("server side plugin set: %v", one)
	}
	if err := (&sdk.GRPCPlugin{Kind: core.KindAllocator}).GRPCServer(nil, nil); err == nil {
		t.Error("serving no implementation succeeded")
	}
	if _, err := (&sdk.GRPCPlugin{Kind: "nope"}).GRPCClient(context.Background(), nil, nil); err == nil {
		t.Error("a client for an unknown kind was made")
	}
}
