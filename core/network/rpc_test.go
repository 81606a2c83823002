package network

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
)

type echoIn struct {
	Text string `json:"text"`
}

type echoOut struct {
	Text string  `json:"text"`
	From peer.ID `json:"from"`
	By   peer.ID `json:"by"`
}

// startCluster starts n peers with the same secret, all connected, each
// serving Test.Echo, Test.Fail, Test.Block (unary) and Test.Count (stream).
func startCluster(t testing.TB, n int) []testPeer {
	t.Helper()
	secret := newSecret(t)
	peers := make([]testPeer, n)
	for i := range peers {
		peers[i] = startPeer(t, secret)
		serveTest(t, peers[i])
	}
	for i := range peers {
		for j := i + 1; j < n; j++ {
			connect(t, peers[i].Host, peers[j].Host)
		}
	}
	return peers
}

func serveTest(t testing.TB, p testPeer) {
	t.Helper()
	self := p.ID()
	err := errors.Join(
		Handle(p.rpc, "Test", "Echo", func(ctx context.Context, in echoIn) (echoOut, error) {
			from, _ := RemotePeer(ctx)
			return echoOut{Text: in.Text, From: from, By: self}, nil
		}),
		Handle(p.rpc, "Test", "Fail", func(ctx context.Context, in string) (Empty, error) {
			if in == "notfound" {
				return Empty{}, core.ErrPinNotFound
			}
			if in == "panic" {
				panic("handler bug")
			}
			return Empty{}, errors.New(in)
		}),
		Handle(p.rpc, "Test", "Block", func(ctx context.Context, _ Empty) (Empty, error) {
			<-ctx.Done()
			return Empty{}, ctx.Err()
		}),
		HandleStream(p.rpc, "Test", "Count", func(ctx context.Context, n int) iter.Seq2[core.PinInfo, error] {
			infos := pinInfos(t, self, n)
			return func(yield func(core.PinInfo, error) bool) {
				for _, pi := range infos {
					if !yield(pi, nil) {
						return
					}
				}
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
}

func TestThreePeersCallEachOther(t *testing.T) {
	peers := startCluster(t, 3)
	for _, from := range peers {
		for _, to := range peers {
			var out echoOut
			err := from.rpc.Call(ctxT(t), to.ID(), "Test", "Echo", echoIn{Text: "hi"}, &out)
			if err != nil {
				t.Fatalf("%s → %s: %v", from.ID(), to.ID(), err)
			}
			if out != (echoOut{Text: "hi", From: from.ID(), By: to.ID()}) {
				t.Fatalf("%s → %s answered %+v", from.ID(), to.ID(), out)
			}
		}
		if got := len(from.Peers()); got != 2 {
			t.Fatalf("%s is connected to %d peers", from.ID(), got)
		}
	}
	// "" is this peer.
	var out echoOut
	if err := peers[0].rpc.Call(ctxT(t), "", "Test", "Echo", echoIn{Text: "me"}, &out); err != nil || out.By != peers[0].ID() {
		t.Fatalf("local call: %+v %v", out, err)
	}
	// A nil out discards the answer.
	if err := peers[0].rpc.Call(ctxT(t), peers[1].ID(), "Test", "Echo", echoIn{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestMultiCallOnePeerDown(t *testing.T) {
	peers := startCluster(t, 3)
	down := peers[2]
	_ = down.Close()
	waitFor(t, "the peer to be seen down", func() bool { return len(peers[0].Peers()) == 1 })

	targets := []peer.ID{peers[0].ID(), peers[1].ID(), down.ID()}
	outs := make([]echoOut, len(targets))
	start := time.Now()
	errs := peers[0].rpc.MultiCall(ctxT(t), targets, "Test", "Echo", echoIn{Text: "all"}, Outs(outs))
	t.Logf("multi-call with one peer down took %v: %v", time.Since(start), errs[2])
	for i := range 2 {
		if errs[i] != nil || outs[i].By != targets[i] || outs[i].Text != "all" {
			t.Fatalf("peer %d: %+v %v", i, outs[i], errs[i])
		}
	}
	var ce *CallError
	if !errors.As(errs[2], &ce) || ce.Peer != down.ID() || ce.Service != "Test" || ce.Method != "Echo" || IsRemote(errs[2]) {
		t.Fatalf("the down peer's error: %#v", errs[2])
	}
	if outs[2] != (echoOut{}) {
		t.Fatalf("the down peer has an answer: %+v", outs[2])
	}

	// Mismatched outs fail every peer without calling.
	errs = peers[0].rpc.MultiCall(ctxT(t), targets, "Test", "Echo", echoIn{}, make([]any, 1))
	for _, err := range errs {
		if err == nil {
			t.Fatal("a mismatched outs slice was accepted")
		}
	}
	// Without outs.
	errs = peers[0].rpc.MultiCall(ctxT(t), targets[:2], "Test", "Echo", echoIn{}, nil)
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
}

func TestCallTimeout(t *testing.T) {
	secret := newSecret(t)
	a := startPeerConfig(t, testConfig(t, secret), RPCConfig{CallTimeout: 200 * time.Millisecond})
	b := startPeer(t, secret)
	serveTest(t, a)
	serveTest(t, b)
	connect(t, a.Host, b.Host)
	for _, to := range []peer.ID{a.ID(), b.ID()} {
		start := time.Now()
		err := a.rpc.Call(context.Background(), to, "Test", "Block", Empty{}, nil)
		took := time.Since(start)
		if err == nil || took > 5*time.Second {
			t.Fatalf("blocked call to %s: %v after %v", to, err, took)
		}
		t.Logf("timeout after %v: %v", took, err)
	}
	// The caller's context bounds a call too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.rpc.Call(ctx, a.ID(), "Test", "Block", Empty{}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its context: %v", err)
	}
}

func TestRemoteErrors(t *testing.T) {
	peers := startCluster(t, 2)
	a, b := peers[0], peers[1]
	for _, to := range []peer.ID{a.ID(), b.ID()} {
		err := a.rpc.Call(ctxT(t), to, "Test", "Fail", "boom", nil)
		if !IsRemote(err) || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("handler error: %v", err)
		}
		err = a.rpc.Call(ctxT(t), to, "Test", "Fail", "notfound", nil)
		if !errors.Is(err, core.ErrPinNotFound) {
			t.Fatalf("sentinel error did not survive: %v", err)
		}
		err = a.rpc.Call(ctxT(t), to, "Test", "Fail", "panic", nil)
		if !IsRemote(err) || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("panicking handler: %v", err)
		}
		err = a.rpc.Call(ctxT(t), to, "Test", "Nope", Empty{}, nil)
		if !IsRemote(err) || !strings.Contains(err.Error(), "unknown method Test.Nope") {
			t.Fatalf("unknown method: %v", err)
		}
		err = a.rpc.Call(ctxT(t), to, "Test", "Count", 1, nil)
		if !IsRemote(err) || !strings.Contains(err.Error(), "not a method of this kind") {
			t.Fatalf("stream method called as unary: %v", err)
		}
		// An argument of the wrong type is refused by the handler.
		err = a.rpc.Call(ctxT(t), to, "Test", "Echo", 42, nil)
		if !IsRemote(err) || !strings.Contains(err.Error(), "decoding the argument") {
			t.Fatalf("wrong argument type: %v", err)
		}
		// An answer of the wrong type is refused by the caller.
		var wrong int
		err = a.rpc.Call(ctxT(t), to, "Test", "Echo", echoIn{}, &wrong)
		if err == nil || IsRemote(err) {
			t.Fatalf("wrong answer type: %v", err)
		}
		// Unencodable argument.
		if err := a.rpc.Call(ctxT(t), to, "Test", "Echo", make(chan int), nil); err == nil {
			t.Fatal("a channel was sent")
		}
	}
	if err := Handle(a.rpc, "Test", "Echo", func(context.Context, Empty) (Empty, error) { return Empty{}, nil }); err == nil {
		t.Fatal("a method was registered twice")
	}
	// After Close, the peer no longer answers.
	a.rpc.Close()
	if err := b.rpc.Call(ctxT(t), a.ID(), "Test", "Echo", echoIn{}, nil); err == nil || IsRemote(err) {
		t.Fatalf("call after Close: %v", err)
	}
}

func checkInfos(t testing.TB, got []core.PinInfo, p peer.ID, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d items, want %d", len(got), n)
	}
	want := pinInfos(t, p, n)
	for i := range got {
		g, w := got[i], want[i]
		if !g.Cid.Equals(w.Cid) || g.Name != w.Name || g.Peer != w.Peer || !g.Created.Equal(w.Created) ||
			g.Status != w.Status || !slices.Equal(g.Allocations, w.Allocations) || g.Metadata["k"] != "v" {
			t.Fatalf("item %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestStream10k(t *testing.T) {
	const n = 10_000
	peers := startCluster(t, 3)
	for _, to := range peers {
		start := time.Now()
		var got []core.PinInfo
		for pi, err := range Stream[core.PinInfo](ctxT(t), peers[0].rpc, to.ID(), "Test", "Count", n) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, pi)
		}
		t.Logf("streamed %d statuses from %s in %v", len(got), to.ID(), time.Since(start))
		checkInfos(t, got, to.ID(), n)
	}

	// An empty stream.
	for _, err := range Stream[core.PinInfo](ctxT(t), peers[0].rpc, peers[1].ID(), "Test", "Count", 0) {
		t.Fatalf("empty stream yielded (%v)", err)
	}
}

func TestMultiStreamOnePeerDown(t *testing.T) {
	const n = 10_000
	peers := startCluster(t, 3)
	_ = peers[2].Close()
	targets := []peer.ID{peers[0].ID(), peers[1].ID(), peers[2].ID()}
	got := map[peer.ID][]core.PinInfo{}
	errs := MultiStream(ctxT(t), peers[0].rpc, targets, "Test", "Count", n, func(p peer.ID, pi core.PinInfo) error {
		got[p] = append(got[p], pi) // calls never overlap
		return nil
	})
	for i := range 2 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		checkInfos(t, got[targets[i]], targets[i], n)
	}
	if errs[2] == nil || IsRemote(errs[2]) || len(got[targets[2]]) != 0 {
		t.Fatalf("down peer: %v, %d items", errs[2], len(got[targets[2]]))
	}
	// fn's error stops that peer's stream.
	stop := errors.New("enough")
	errs = MultiStream(ctxT(t), peers[0].rpc, targets[:2], "Test", "Count", n, func(peer.ID, core.PinInfo) error { return stop })
	if !errors.Is(errs[0], stop) || !errors.Is(errs[1], stop) {
		t.Fatal(errs)
	}
}

// TestStreamCancel checks that a consumer that stops reading, or whose
// context ends, cancels the handler on the peer.
func TestStreamCancel(t *testing.T) {
	peers := startCluster(t, 2)
	a, b := peers[0], peers[1]
	var produced, running atomic.Int64
	cancelled := make(chan struct{}, 4)
	infinite := func(ctx context.Context, _ Empty) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			running.Add(1)
			defer running.Add(-1)
			for i := 0; ; i++ {
				if ctx.Err() != nil {
					cancelled <- struct{}{}
					return
				}
				produced.Add(1)
				if !yield(i, nil) {
					cancelled <- struct{}{}
					return
				}
			}
		}
	}
	for _, p := range peers {
		if err := HandleStream(p.rpc, "Test", "Infinite", infinite); err != nil {
			t.Fatal(err)
		}
	}
	for _, to := range []peer.ID{a.ID(), b.ID()} {
		seen := 0
		for v, err := range Stream[int](ctxT(t), a.rpc, to, "Test", "Infinite", Empty{}) {
			if err != nil {
				t.Fatal(err)
			}
			if v != seen {
				t.Fatalf("item %d is %d", seen, v)
			}
			if seen++; seen == 100 {
				break
			}
		}
		select {
		case <-cancelled:
		case <-time.After(waitBound):
			t.Fatalf("the handler on %s was not cancelled (%d produced)", to, produced.Load())
		}

		ctx, cancel := context.WithCancel(context.Background())
		var last error
		seen = 0
		for _, err := range Stream[int](ctx, a.rpc, to, "Test", "Infinite", Empty{}) {
			if err != nil {
				last = err
				break
			}
			if seen++; seen == 100 {
				cancel()
			}
		}
		cancel()
		if !errors.Is(last, context.Canceled) {
			t.Fatalf("stream after its context ended: %v", last)
		}
		select {
		case <-cancelled:
		case <-time.After(waitBound):
			t.Fatalf("the handler on %s was not cancelled by the context", to)
		}
	}
	waitFor(t, "handlers to return", func() bool { return running.Load() == 0 })
}

func TestStreamErrors(t *testing.T) {
	peers := startCluster(t, 2)
	for _, p := range peers {
		err := HandleStream(p.rpc, "Test", "FailAfter", func(ctx context.Context, n int) iter.Seq2[int, error] {
			return func(yield func(int, error) bool) {
				for i := range n {
					if !yield(i, nil) {
						return
					}
				}
				yield(0, core.ErrPinNotFound)
			}
		})
		if err == nil {
			err = HandleStream(p.rpc, "Test", "Panic", func(ctx context.Context, _ Empty) iter.Seq2[int, error] {
				return func(yield func(int, error) bool) {
					yield(1, nil)
					panic("stream bug")
				}
			})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, to := range []peer.ID{peers[0].ID(), peers[1].ID()} {
		var items []int
		var last error
		for v, err := range Stream[int](ctxT(t), peers[0].rpc, to, "Test", "FailAfter", 3000) {
			if err != nil {
				last = err
				continue
			}
			if last != nil {
				t.Fatal("an item after the error")
			}
			items = append(items, v)
		}
		if len(items) != 3000 || !errors.Is(last, core.ErrPinNotFound) || !IsRemote(last) {
			t.Fatalf("%d items then %v", len(items), last)
		}

		last = nil
		for _, err := range Stream[int](ctxT(t), peers[0].rpc, to, "Test", "Panic", Empty{}) {
			last = err
		}
		if !IsRemote(last) || !strings.Contains(last.Error(), "panicked") {
			t.Fatalf("panicking stream: %v", last)
		}

		for _, tc := range []struct{ method, want string }{
			{"Nope", "unknown method"},
			{"Echo", "not a method of this kind"},
		} {
			last = nil
			for _, err := range Stream[int](ctxT(t), peers[0].rpc, to, "Test", tc.method, Empty{}) {
				last = err
			}
			if !IsRemote(last) || !strings.Contains(last.Error(), tc.want) {
				t.Fatalf("stream of %s: %v", tc.method, last)
			}
		}
		// Items of the wrong type.
		last = nil
		for _, err := range Stream[string](ctxT(t), peers[0].rpc, to, "Test", "FailAfter", 5) {
			last = err
			break
		}
		if last == nil || IsRemote(last) {
			t.Fatalf("wrong item type: %v", last)
		}
	}
	// A stream to a peer that is down fails at once.
	down := startPeer(t, newSecret(t))
	_ = down.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	peers[0].LibP2P().Peerstore().AddAddrs(down.ID(), down.LibP2P().Addrs(), time.Minute)
	n := 0
	for _, err := range Stream[int](ctx, peers[0].rpc, down.ID(), "Test", "FailAfter", 1) {
		if err == nil || IsRemote(err) {
			t.Fatalf("stream to a down peer: %v", err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d results from a down peer", n)
	}
}

func TestRemotePeerOutsideHandler(t *testing.T) {
	if p, ok := RemotePeer(context.Background()); ok || p != "" {
		t.Fatalf("RemotePeer outside a handler: %v %v", p, ok)
	}
}

func ExampleOuts() {
	ids := make([]core.ID, 2)
	outs := Outs(ids)
	fmt.Println(len(outs), outs[1] == any(&ids[1]))
	// Output: 2 true
}

// TestConcurrentCalls checks that a burst of calls between two peers is not
// refused by the resource manager (its default allows 64 concurrent
// inbound streams per peer and protocol).
func TestConcurrentCalls(t *testing.T) {
	const n = 200
	peers := startCluster(t, 2)
	release := make(chan struct{})
	var inside atomic.Int64
	if err := Handle(peers[1].rpc, "Test", "Wait", func(ctx context.Context, _ Empty) (Empty, error) {
		inside.Add(1)
		select {
		case <-release:
			return Empty{}, nil
		case <-ctx.Done():
			return Empty{}, ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	for range n {
		go func() { errs <- peers[0].rpc.Call(ctxT(t), peers[1].ID(), "Test", "Wait", Empty{}, nil) }()
	}
	waitFor(t, "every call to be served at once", func() bool { return inside.Load() == n })
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestLargeUnaryReply checks a unary answer of several chunks: the status
// of 10,000 CIDs at once.
func TestLargeUnaryReply(t *testing.T) {
	const n = 10_000
	peers := startCluster(t, 2)
	for _, p := range peers {
		infos := pinInfos(t, p.ID(), n)
		if err := Handle(p.rpc, "Test", "Many", func(ctx context.Context, in CidsRequest) ([]core.PinInfo, error) {
			return infos[:len(in.Cids)], nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	req := CidsRequest{Cids: make([]core.Cid, n)}
	for i := range req.Cids {
		req.Cids[i] = testCid(t, i)
	}
	for _, p := range peers {
		var got []core.PinInfo
		if err := peers[0].rpc.Call(ctxT(t), p.ID(), "Test", "Many", req, &got); err != nil {
			t.Fatal(err)
		}
		checkInfos(t, got, p.ID(), n)
	}
}

// TestNoGoroutinesLeft checks that hosts, calls, abandoned streams and
// notifications leave nothing running once closed.
func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	peers := startCluster(t, 3)
	for range 3 {
		n := 0
		for _, err := range Stream[core.PinInfo](ctxT(t), peers[0].rpc, peers[1].ID(), "Test", "Count", 5000) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 100 {
				break
			}
		}
		if err := peers[0].rpc.Call(ctxT(t), peers[2].ID(), "Test", "Echo", echoIn{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	stop, err := peers[0].Notify(func(PeerEvent) {})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		_ = p.Close()
	}
	stop()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}
