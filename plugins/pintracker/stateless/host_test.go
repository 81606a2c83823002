package stateless

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
)

// testHost plays the core for the tracker: an in-memory pinset and an
// in-memory IPFS pin set whose pins and unpins can be delayed, held at a
// gate, made to hang or to fail.
type testHost struct {
	mu        sync.Mutex
	pinset    map[core.Cid]core.Pin
	ipfs      map[core.Cid]core.IPFSPinStatus
	failPin   map[core.Cid]string
	failUnpin map[core.Cid]string
	pinGate   map[core.Cid]chan struct{} // a pin waits until the channel closes
	unpinGate map[core.Cid]chan struct{}
	hang      bool          // pins never finish (the Timeout field is ignored)
	delay     time.Duration // each pin and unpin takes this long
	// pinLsFailures is how many PinLs calls fail from now on.
	pinLsFailures int
	pinReqs       map[core.Cid]int
	unpinReqs     map[core.Cid]int
	order         []core.Cid // CIDs in the order their pins succeeded

	pinCalls, unpinCalls, pinLsCalls, pinLsCidsCalls atomic.Int64
}

func newTestHost() *testHost {
	return &testHost{
		pinset:    map[core.Cid]core.Pin{},
		ipfs:      map[core.Cid]core.IPFSPinStatus{},
		failPin:   map[core.Cid]string{},
		failUnpin: map[core.Cid]string{},
		pinGate:   map[core.Cid]chan struct{}{},
		unpinGate: map[core.Cid]chan struct{}{},
		pinReqs:   map[core.Cid]int{},
		unpinReqs: map[core.Cid]int{},
	}
}

// do runs f under the host's lock.
func (h *testHost) do(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

func (h *testHost) addPins(pins ...core.Pin) {
	h.do(func() {
		for _, p := range pins {
			h.pinset[p.Cid] = p
		}
	})
}

func (h *testHost) removePins(cids ...core.Cid) {
	h.do(func() {
		for _, c := range cids {
			delete(h.pinset, c)
		}
	})
}

func (h *testHost) inIPFS(c core.Cid) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ipfs[c].IsPinned()
}

func (h *testHost) requests(c core.Cid) (pins, unpins int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pinReqs[c], h.unpinReqs[c]
}

func (h *testHost) GetPin(_ context.Context, c core.Cid) (core.Pin, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.pinset[c]
	if !ok {
		return core.Pin{}, core.ErrPinNotFound
	}
	return p, nil
}

func sortedKeys[V any](m map[core.Cid]V) []core.Cid {
	keys := make([]core.Cid, 0, len(m))
	for c := range m {
		keys = append(keys, c)
	}
	slices.SortFunc(keys, func(a, b core.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return keys
}

func (h *testHost) ListPins(ctx context.Context) iter.Seq2[core.Pin, error] {
	return func(yield func(core.Pin, error) bool) {
		h.mu.Lock()
		pins := make([]core.Pin, 0, len(h.pinset))
		for _, c := range sortedKeys(h.pinset) {
			pins = append(pins, h.pinset[c])
		}
		h.mu.Unlock()
		for _, p := range pins {
			if ctx.Err() != nil {
				yield(core.Pin{}, ctx.Err())
				return
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

// each runs op for every index concurrently and streams the results in
// completion order, as a connector does.
func each(ctx context.Context, n int, op func(i int) core.IPFSPinResult, yield func(core.IPFSPinResult, error) bool) {
	done := make(chan struct{})
	defer close(done)
	results := make(chan core.IPFSPinResult)
	for i := range n {
		go func() {
			r := op(i)
			select {
			case results <- r:
			case <-done:
			}
		}()
	}
	for range n {
		select {
		case r := <-results:
			if !yield(r, nil) {
				return
			}
		case <-ctx.Done():
			yield(core.IPFSPinResult{}, ctx.Err())
			return
		}
	}
}

// wait blocks for d or until gate closes (nil: no gate), or ctx ends.
func wait(ctx context.Context, gate chan struct{}, d time.Duration) error {
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (h *testHost) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		h.pinCalls.Add(1)
		each(ctx, len(reqs), func(i int) core.IPFSPinResult {
			req := reqs[i]
			h.mu.Lock()
			h.pinReqs[req.Cid]++
			gate, hang, delay := h.pinGate[req.Cid], h.hang, h.delay
			h.mu.Unlock()
			if hang {
				<-ctx.Done()
				return core.IPFSPinResult{Cid: req.Cid, Error: ctx.Err().Error()}
			}
			if err := wait(ctx, gate, delay); err != nil {
				return core.IPFSPinResult{Cid: req.Cid, Error: err.Error()}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if msg := h.failPin[req.Cid]; msg != "" {
				return core.IPFSPinResult{Cid: req.Cid, Error: msg}
			}
			h.ipfs[req.Cid] = core.IPFSPinStatusRecursive
			if req.MaxDepth == 0 {
				h.ipfs[req.Cid] = core.IPFSPinStatusDirect
			}
			h.order = append(h.order, req.Cid)
			return core.IPFSPinResult{Cid: req.Cid}
		}, yield)
	}
}

func (h *testHost) Unpin(ctx context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		h.unpinCalls.Add(1)
		each(ctx, len(cids), func(i int) core.IPFSPinResult {
			c := cids[i]
			h.mu.Lock()
			h.unpinReqs[c]++
			gate, delay := h.unpinGate[c], h.delay
			h.mu.Unlock()
			if err := wait(ctx, gate, delay); err != nil {
				return core.IPFSPinResult{Cid: c, Error: err.Error()}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if msg := h.failUnpin[c]; msg != "" {
				return core.IPFSPinResult{Cid: c, Error: msg}
			}
			delete(h.ipfs, c)
			return core.IPFSPinResult{Cid: c}
		}, yield)
	}
}

func (h *testHost) PinLs(ctx context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	return func(yield func(core.IPFSPinInfo, error) bool) {
		h.pinLsCalls.Add(1)
		h.mu.Lock()
		if h.pinLsFailures > 0 {
			h.pinLsFailures--
			h.mu.Unlock()
			yield(core.IPFSPinInfo{}, errors.New("IPFS is not answering"))
			return
		}
		infos := make([]core.IPFSPinInfo, 0, len(h.ipfs))
		for _, c := range sortedKeys(h.ipfs) {
			infos = append(infos, core.IPFSPinInfo{Cid: c, Type: h.ipfs[c]})
		}
		h.mu.Unlock()
		for _, info := range infos {
			if ctx.Err() != nil {
				yield(core.IPFSPinInfo{}, ctx.Err())
				return
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

func (h *testHost) PinLsCids(_ context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	h.pinLsCidsCalls.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]core.IPFSPinInfo, len(cids))
	for i, c := range cids {
		out[i] = core.IPFSPinInfo{Cid: c, Type: h.ipfs[c]}
	}
	return out, nil
}

var _ core.Host = (*testHost)(nil)

// --- helpers ----------------------------------------------------------------

// testPeer returns a valid peer ID (an identity multihash) for a name.
func testPeer(name string) core.PeerID {
	mh, err := multihash.Sum([]byte(name), multihash.IDENTITY, -1)
	if err != nil {
		panic(err)
	}
	return peer.ID(mh)
}

var (
	self  = testPeer("self")
	other = testPeer("other")
)

func testCid(name string) core.Cid {
	mh, err := multihash.Sum([]byte(name), multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return core.NewCid(cid.NewCidV1(cid.Raw, mh))
}

// localPin is a recursive pin allocated to this peer.
func localPin(name string) core.Pin {
	p := core.Pin{Cid: testCid(name), Type: core.DataType, MaxDepth: -1, Timestamp: time.Now(),
		Allocations: []core.PeerID{self, other}}
	p.Name = name
	return p
}

// remotePin is allocated to another peer only.
func remotePin(name string) core.Pin {
	p := localPin(name)
	p.Allocations = []core.PeerID{other}
	return p
}

// newTracker configures a tracker for self over h and waits for its
// start-up reconciliation to end.
func newTracker(t testing.TB, h core.Host, cfg string) *Tracker {
	t.Helper()
	tr := New()
	env := core.Environment{PeerID: self, PeerName: "self-name"}
	if err := tr.Configure(context.Background(), []byte(cfg), env, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	waitReconciled(t, tr)
	return tr
}

// waitReconciled waits for the start-up reconciliation of tr to end.
func waitReconciled(t testing.TB, tr *Tracker) {
	t.Helper()
	e, err := tr.engine()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.reconciled:
	case <-time.After(10 * time.Second):
		t.Fatal("start-up reconciliation did not end")
	}
}

// eventually polls cond until it holds, failing the test after 10 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func status(t testing.TB, tr core.PinTracker, c core.Cid) core.PinInfo {
	t.Helper()
	infos, err := tr.Status(context.Background(), []core.Cid{c})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 {
		t.Fatalf("%d infos for one CID", len(infos))
	}
	return infos[0]
}

func hasStatus(t testing.TB, tr core.PinTracker, c core.Cid, want core.TrackerStatus) func() bool {
	return func() bool { return status(t, tr, c).Status == want }
}

func collect(t testing.TB, seq iter.Seq2[core.PinInfo, error]) map[string]core.TrackerStatus {
	t.Helper()
	out := map[string]core.TrackerStatus{}
	for info, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out[info.Name+"|"+info.Cid.String()] = info.Status
	}
	return out
}

// byName reduces collect's keys to pin names (unnamed entries keep the CID).
func byName(m map[string]core.TrackerStatus) map[string]core.TrackerStatus {
	out := map[string]core.TrackerStatus{}
	for k, v := range m {
		name, c, _ := strings.Cut(k, "|")
		if name == "" {
			name = c
		}
		out[name] = v
	}
	return out
}

func describe(m map[string]core.TrackerStatus) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s ", k, m[k])
	}
	return b.String()
}
