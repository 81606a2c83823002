package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

func TestErrorMapping(t *testing.T) {
	wrappedNF := fmt.Errorf("get pin bafy...: %w", core.ErrPinNotFound)
	cases := []struct {
		name     string
		err      error
		code     codes.Code
		is       error
		same     bool // the exact sentinel comes back
		unavail  bool
		wantText string
	}{
		{"not found", core.ErrPinNotFound, codes.NotFound, core.ErrPinNotFound, true, false, core.ErrPinNotFound.Error()},
		{"wrapped not found", wrappedNF, codes.NotFound, core.ErrPinNotFound, false, false, wrappedNF.Error()},
		{"canceled", context.Canceled, codes.Canceled, context.Canceled, true, false, "context canceled"},
		{"wrapped canceled", fmt.Errorf("pinning: %w", context.Canceled), codes.Canceled, context.Canceled, false, false, "pinning: context canceled"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, context.DeadlineExceeded, true, false, "context deadline exceeded"},
		{"other", errors.New("ipfs: connection refused"), codes.Unknown, nil, false, false, "ipfs: connection refused"},
		{"empty text", errors.New(""), codes.Unknown, nil, false, false, ""},
		// A plugin that lost its host returns a generic error, not
		// "unavailable": that would say the plugin itself is gone.
		{"remote unavailable", &remoteError{code: codes.Unavailable, msg: "host gone"}, codes.Unknown, nil, false, false, "host gone"},
	}
	for _, c := range cases {
		st := toStatus(c.err)
		if got := status.Code(st); got != c.code {
			t.Errorf("%s: code %v, want %v", c.name, got, c.code)
		}
		back := fromStatus(st)
		if back.Error() != c.wantText {
			t.Errorf("%s: text %q, want %q", c.name, back.Error(), c.wantText)
		}
		if c.is != nil && !errors.Is(back, c.is) {
			t.Errorf("%s: errors.Is(%v) false", c.name, c.is)
		}
		if c.same && back != c.is {
			t.Errorf("%s: got %#v, want the sentinel itself", c.name, back)
		}
		if c.is == nil && (errors.Is(back, core.ErrPinNotFound) || errors.Is(back, context.Canceled)) {
			t.Errorf("%s: matches a sentinel it should not", c.name)
		}
		if IsUnavailable(back) != c.unavail {
			t.Errorf("%s: IsUnavailable = %v", c.name, !c.unavail)
		}
		// Crossing a second boundary keeps the meaning.
		again := fromStatus(toStatus(back))
		if again.Error() != c.wantText || (c.is != nil && !errors.Is(again, c.is)) {
			t.Errorf("%s: second crossing gave %#v", c.name, again)
		}
	}
	if toStatus(nil) != nil || fromStatus(nil) != nil {
		t.Error("nil errors must stay nil")
	}
	plain := errors.New("not a status")
	if fromStatus(plain) != plain {
		t.Error("non-status errors must pass through")
	}
}

func TestIsUnavailable(t *testing.T) {
	gone := fromStatus(status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing\""))
	if !IsUnavailable(gone) || !IsUnavailable(fmt.Errorf("wrapped: %w", gone)) {
		t.Error("unavailable not detected")
	}
	if gone.Error() != "connection error: desc = \"transport: Error while dialing\"" {
		t.Errorf("text: %q", gone.Error())
	}
	if !IsUnavailable(status.Error(codes.Unavailable, "raw")) {
		t.Error("raw unavailable status not detected")
	}
	if !IsUnavailable(grpc.ErrClientConnClosing) || !IsUnavailable(fromStatus(grpc.ErrClientConnClosing)) {
		t.Error("closed connection not detected")
	}
	for _, err := range []error{nil, errors.New("x"), context.Canceled, fromStatus(status.Error(codes.Internal, "y"))} {
		if IsUnavailable(err) {
			t.Errorf("%v reported unavailable", err)
		}
	}
}

// batches runs serveBatchedSized over seq with items of the given size and
// returns the batches sent and the final error.
func batches(seq iter.Seq2[int, error], size int) ([][]int, error) {
	var out [][]int
	err := serveBatchedSized(context.Background(), 0,
		func(context.Context) iter.Seq2[int, error] { return seq },
		func(i int) int { return i },
		func(int) int { return size },
		func(b []int) []int { return b },
		func(b []int) error { out = append(out, b); return nil })
	return out, err
}

func count(n int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i := range n {
			if !yield(i, nil) {
				return
			}
		}
	}
}

func checkBatches(t *testing.T, bs [][]int, n, maxItems int) {
	t.Helper()
	next := 0
	for _, b := range bs {
		if len(b) == 0 || len(b) > maxItems {
			t.Fatalf("batch of %d items", len(b))
		}
		for _, v := range b {
			if v != next {
				t.Fatalf("got %d, want %d", v, next)
			}
			next++
		}
	}
	if next != n {
		t.Fatalf("got %d items, want %d", next, n)
	}
}

func TestBatching(t *testing.T) {
	bs, err := batches(count(10_000), 10)
	if err != nil {
		t.Fatal(err)
	}
	checkBatches(t, bs, 10_000, MaxBatchItems)
	if len(bs) >= 10_000/4 {
		t.Errorf("a fast producer should fill batches: %d batches", len(bs))
	}

	// 300 KiB items: at most 3 per ~1 MiB message.
	bs, err = batches(count(20), 300<<10)
	if err != nil {
		t.Fatal(err)
	}
	checkBatches(t, bs, 20, 3)

	// An item above the byte limit travels alone.
	bs, err = batches(count(3), 2*MaxBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	checkBatches(t, bs, 3, 1)

	bs, err = batches(count(0), 1)
	if err != nil || len(bs) != 0 {
		t.Errorf("empty stream: %v %v", bs, err)
	}
}

func TestBatchingError(t *testing.T) {
	boom := errors.New("boom")
	seq := func(yield func(int, error) bool) {
		for i := range 1000 {
			if !yield(i, nil) {
				return
			}
		}
		if yield(0, boom) {
			panic("yield of an error should return false")
		}
	}
	bs, err := batches(seq, 1)
	checkBatches(t, bs, 1000, MaxBatchItems)
	if status.Code(err) != codes.Unknown || status.Convert(err).Message() != "boom" {
		t.Errorf("final error: %v", err)
	}
}

// A slow producer's items are sent as soon as they exist, not held for a
// fuller batch.
func TestBatchingSlowProducer(t *testing.T) {
	const delay = 150 * time.Millisecond
	var sent []time.Time
	seq := func(yield func(int, error) bool) {
		for i := range 4 {
			if !yield(i, nil) {
				return
			}
			time.Sleep(delay)
		}
	}
	err := serveBatchedSized(context.Background(), 0,
		func(context.Context) iter.Seq2[int, error] { return seq },
		func(i int) int { return i }, func(int) int { return 1 },
		func(b []int) []int { return b },
		func(b []int) error { sent = append(sent, time.Now()); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) < 3 || sent[len(sent)-1].Sub(sent[0]) < 2*delay {
		t.Errorf("slow items should go one by one as produced: %d messages over %v", len(sent), sent[len(sent)-1].Sub(sent[0]))
	}
}

// The producer stops when the call ends, and a stuck send does not leak
// the producer.
func TestBatchingCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	var produced atomic.Int64
	seq := func(yield func(int, error) bool) {
		defer close(stopped)
		for i := 0; ; i++ {
			produced.Add(1)
			if !yield(i, nil) {
				return
			}
		}
	}
	sends := 0
	err := serveBatchedSized(ctx, 0,
		func(context.Context) iter.Seq2[int, error] { return seq },
		func(i int) int { return i }, func(int) int { return 1 },
		func(b []int) []int { return b },
		func(b []int) error {
			sends++
			if sends == 3 {
				cancel()
				return status.Error(codes.Canceled, "gone")
			}
			return nil
		})
	if status.Code(err) != codes.Canceled {
		t.Errorf("error: %v", err)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("producer not stopped")
	}
	if n := produced.Load(); n > 10*MaxBatchItems {
		t.Errorf("producer ran ahead by %d items", n)
	}
}

func TestWatchParent(t *testing.T) {
	var ppid atomic.Int64
	ppid.Store(42)
	exited := make(chan struct{})
	go watchParent(42, time.Millisecond, func() int { return int(ppid.Load()) }, func() { close(exited) })
	select {
	case <-exited:
		t.Fatal("exited while the parent lives")
	case <-time.After(20 * time.Millisecond):
	}
	ppid.Store(1)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("did not exit when the parent changed")
	}
}

func TestServedPlugin(t *testing.T) {
	if _, err := servedPlugin(describeOnly{d: core.Description{Kind: core.KindAllocator}}); err == nil {
		t.Error("an implementation that is not of its kind was accepted")
	}
	if _, err := servedPlugin(describeOnly{err: errors.New("broken")}); err == nil {
		t.Error("a describe error was ignored")
	}
	p, err := servedPlugin(allocOnly{describeOnly{d: core.Description{Kind: core.KindAllocator, ProtocolVersions: []int{1}}}})
	if err != nil || p.Kind != core.KindAllocator {
		t.Errorf("%v %v", p, err)
	}
	if _, err := servedPlugin(allocOnly{describeOnly{d: core.Description{Kind: core.KindAllocator, ProtocolVersions: []int{2}}}}); err == nil {
		t.Error("a v2-only plugin was accepted")
	}
}

type describeOnly struct {
	d   core.Description
	err error
}

func (d describeOnly) Describe(context.Context) (core.Description, error) { return d.d, d.err }
func (describeOnly) Configure(context.Context, json.RawMessage, core.Environment, core.Host) error {
	return nil
}
func (describeOnly) Close(context.Context) error { return nil }

type allocOnly struct{ describeOnly }

func (allocOnly) Allocate(context.Context, core.AllocateRequest) ([]core.AllocateResult, error) {
	return nil, nil
}

// Requests that cannot be decoded are refused with InvalidArgument, and
// the text reaches the caller.
func TestMalformedRequests(t *testing.T) {
	ctx := context.Background()
	bad := &pluginv1.Cids{Cids: [][]byte{{0x01, 0x02}}}
	tracker := &pinTrackerServer{impl: stubTracker{}}
	ipfs := &ipfsConnectorServer{impl: nil}
	cons := &consensusServer{impl: nil}
	calls := map[string]func() error{
		"Track": func() error {
			_, err := tracker.Track(ctx, &pluginv1.Pins{Pins: []*pluginv1.Pin{{Cid: []byte("x")}}})
			return err
		},
		"Untrack": func() error { _, err := tracker.Untrack(ctx, bad); return err },
		"Status":  func() error { _, err := tracker.Status(ctx, bad); return err },
		"Commit": func() error {
			_, err := cons.Commit(ctx, &pluginv1.PinOps{Ops: []*pluginv1.PinOp{{Pin: &pluginv1.Pin{Reference: []byte{9}}}}})
			return err
		},
		"GetPin":    func() error { _, err := cons.GetPin(ctx, &pluginv1.CidRequest{Cid: []byte{7}}); return err },
		"PinLsCids": func() error { _, err := ipfs.PinLsCids(ctx, bad); return err },
		"BlockPut": func() error {
			_, err := ipfs.BlockPut(ctx, &pluginv1.Blocks{Blocks: []*pluginv1.Block{{Cid: []byte{1}}}})
			return err
		},
		"BlockGet": func() error { _, err := ipfs.BlockGet(ctx, &pluginv1.CidRequest{Cid: []byte{1}}); return err },
		"Allocate": func() error {
			_, err := (&allocatorServer{}).Allocate(ctx, &pluginv1.AllocateRequest{Pins: []*pluginv1.PinAllocation{{Cid: []byte{1}}}})
			return err
		},
		"Pin": func() error {
			return servePin(nil, &pluginv1.IPFSPinRequests{Requests: []*pluginv1.IPFSPinRequest{{Cid: []byte{1}}}}, nil)
		},
		"Unpin": func() error { return serveUnpin(nil, bad, nil) },
	}
	for name, call := range calls {
		err := call()
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
			continue
		}
		back := fromStatus(err)
		if back.Error() == "" || status.Code(back) != codes.InvalidArgument || IsUnavailable(back) {
			t.Errorf("%s: client sees %#v", name, back)
		}
	}
}

// stubTracker is never called: requests fail to decode first.
type stubTracker struct{ core.PinTracker }

func (stubTracker) Status(context.Context, []core.Cid) ([]core.PinInfo, error) {
	panic("called with a malformed request")
}
