package stateless

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

// fast is a config for tests: quick retries, one retry.
const fast = `{"retry_backoff_base":"5ms","max_retries":1}`

func track(t testing.TB, tr core.PinTracker, h *testHost, pins ...core.Pin) {
	t.Helper()
	h.addPins(pins...)
	if err := tr.Track(context.Background(), pins); err != nil {
		t.Fatal(err)
	}
}

func untrack(t testing.TB, tr core.PinTracker, h *testHost, cids ...core.Cid) {
	t.Helper()
	h.removePins(cids...)
	if err := tr.Untrack(context.Background(), cids); err != nil {
		t.Fatal(err)
	}
}

// connector returns a configured tracker for self over h: the
// implementation itself, or its client adapter across the plugin boundary
// (see sdk_test.go).
type connector func(t testing.TB, h *testHost, cfg string) core.PinTracker

func direct(t testing.TB, h *testHost, cfg string) core.PinTracker { return newTracker(t, h, cfg) }

// scenarios run both directly and through the plugin boundary.
var scenarios = []struct {
	name string
	run  func(*testing.T, connector)
}{
	{"PinFlow", scenarioPinFlow},
	{"ConcurrencyIsBounded", scenarioConcurrencyIsBounded},
	{"FailureRetriesThenErrorThenRecover", scenarioFailureRetriesThenErrorThenRecover},
	{"RetryShowsErrorUntilRetried", scenarioRetryShowsErrorUntilRetried},
	{"UnpinFlow", scenarioUnpinFlow},
	{"RemotePins", scenarioRemotePins},
	{"MetaPinIsSharded", scenarioMetaPinIsSharded},
	{"UnknownCidIsUnpinned", scenarioUnknownCidIsUnpinned},
	{"UnexpectedlyUnpinnedAndRecover", scenarioUnexpectedlyUnpinnedAndRecover},
	{"RecoverAllRequeuesErrors", scenarioRecoverAllRequeuesErrors},
	{"PinThenUnpinWhileQueuedCancelsThePin", scenarioPinThenUnpinWhileQueuedCancelsThePin},
	{"PinThenUnpinWhileInFlight", scenarioPinThenUnpinWhileInFlight},
	{"UnpinWaitsForPinInSameBatch", scenarioUnpinWaitsForPinInSameBatch},
	{"PriorityPinsFirst", scenarioPriorityPinsFirst},
	{"StatusAllFilters", scenarioStatusAllFilters},
	{"SyncClearsStaleErrors", scenarioSyncClearsStaleErrors},
	{"PinTimeout", scenarioPinTimeout},
	{"Batching10k", scenarioBatching10k},
	{"CloseWithPinsInFlight", scenarioCloseWithPinsInFlight},
	{"QueueFull", scenarioQueueFull},
	{"ReconcileAtStart", scenarioReconcileAtStart},
	{"TrackNeverWaitsForIPFS", scenarioTrackNeverWaitsForIPFS},
	{"ReconcileRetries", scenarioReconcileRetries},
}

func TestScenarios(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) { s.run(t, direct) })
	}
}

func TestDescribeAndUnconfigured(t *testing.T) {
	tr := New()
	d, err := tr.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != core.KindPinTracker || d.Name != Name || d.Version != "1.0.0" ||
		!slices.Equal(d.ProtocolVersions, []int{core.ProtocolVersion}) {
		t.Fatalf("unexpected description %+v", d)
	}
	if _, err := ParseConfig(d.DefaultConfig); err != nil {
		t.Fatalf("default config does not parse: %v", err)
	}
	if err := tr.Track(context.Background(), nil); err == nil {
		t.Fatal("Track before Configure must fail")
	}
	for _, err := range tr.StatusAll(context.Background(), 0) {
		if err == nil {
			t.Fatal("StatusAll before Configure must fail")
		}
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := core.Environment{PeerID: self}
	if err := tr.Configure(context.Background(), json.RawMessage(`{"batch":1}`), env, newTestHost()); err == nil ||
		!strings.Contains(err.Error(), `"batch"`) {
		t.Fatalf("bad config: got %v", err)
	}
	if err := tr.Configure(context.Background(), nil, env, nil); err == nil {
		t.Fatal("Configure without host must fail")
	}
}

func scenarioPinFlow(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"concurrent_pins":1,"batch_size":1}`)
	a, b := localPin("a"), localPin("b")
	gate := make(chan struct{})
	h.do(func() { h.pinGate[a.Cid] = gate })
	a.Metadata = map[string]string{"k": "v"}
	a.Origins = []string{"/ip4/1.2.3.4/tcp/4001/p2p/" + other.String()}
	track(t, tr, h, a, b)

	eventually(t, "a pinning", hasStatus(t, tr, a.Cid, core.TrackerStatusPinning))
	info := status(t, tr, b.Cid)
	if info.Status != core.TrackerStatusPinQueued || !info.PriorityPin {
		t.Fatalf("b: got %s priority=%v, want a queued priority pin", info.Status, info.PriorityPin)
	}
	if st, _ := tr.Stats(context.Background()); st != (core.TrackerStats{PinQueued: 1, Pinning: 1}) {
		t.Fatalf("stats %+v", st)
	}
	info = status(t, tr, a.Cid)
	if info.Name != "a" || info.Peer != self || info.PeerName != "self-name" || info.AttemptCount != 1 ||
		!slices.Equal(info.Allocations, a.Allocations) || !slices.Equal(info.Origins, a.Origins) ||
		!info.Created.Equal(a.Timestamp) || !maps.Equal(info.Metadata, a.Metadata) || info.TS.IsZero() {
		t.Fatalf("pinning info: %+v", info)
	}

	close(gate)
	eventually(t, "a pinned", hasStatus(t, tr, a.Cid, core.TrackerStatusPinned))
	eventually(t, "b pinned", hasStatus(t, tr, b.Cid, core.TrackerStatusPinned))
	info = status(t, tr, a.Cid)
	if info.Error != "" || info.Name != "a" || !info.Created.Equal(a.Timestamp) || !maps.Equal(info.Metadata, a.Metadata) {
		t.Fatalf("pinned info: %+v", info)
	}
	if st, _ := tr.Stats(context.Background()); st != (core.TrackerStats{}) {
		t.Fatalf("stats %+v", st)
	}
	h.do(func() {
		if h.ipfs[a.Cid] != core.IPFSPinStatusRecursive {
			t.Errorf("a pinned as %q", h.ipfs[a.Cid])
		}
	})

	// A direct pin is sent with MaxDepth 0.
	d := localPin("direct")
	d.MaxDepth = 0
	track(t, tr, h, d)
	eventually(t, "direct pinned", hasStatus(t, tr, d.Cid, core.TrackerStatusPinned))
	h.do(func() {
		if h.ipfs[d.Cid] != core.IPFSPinStatusDirect {
			t.Errorf("direct pinned as %q", h.ipfs[d.Cid])
		}
	})

	// Pin everywhere (no allocations) is pinned too.
	e := localPin("everywhere")
	e.Allocations = nil
	track(t, tr, h, e)
	eventually(t, "everywhere pinned", hasStatus(t, tr, e.Cid, core.TrackerStatusPinned))
}

// scenarioConcurrencyIsBounded: with concurrent_pins 3 and batches of one,
// three pins reach IPFS at a time and the others wait in the queue.
func scenarioConcurrencyIsBounded(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"concurrent_pins":3,"batch_size":1}`)
	gate := make(chan struct{})
	var pins []core.Pin
	for i := range 7 {
		p := localPin(fmt.Sprintf("bounded-%d", i))
		h.do(func() { h.pinGate[p.Cid] = gate })
		pins = append(pins, p)
	}
	track(t, tr, h, pins...)
	inIPFS := func() int {
		n := 0
		for _, p := range pins {
			if reqs, _ := h.requests(p.Cid); reqs > 0 {
				n++
			}
		}
		return n
	}
	eventually(t, "three pins at IPFS", func() bool { return inIPFS() == 3 })
	// And no more while they are held.
	time.Sleep(200 * time.Millisecond)
	if n := inIPFS(); n != 3 {
		t.Fatalf("%d pins at IPFS with concurrent_pins 3", n)
	}
	if st, _ := tr.Stats(context.Background()); st != (core.TrackerStats{PinQueued: 4, Pinning: 3}) {
		t.Fatalf("stats %+v", st)
	}
	close(gate)
	for _, p := range pins {
		eventually(t, p.Name+" pinned", hasStatus(t, tr, p.Cid, core.TrackerStatusPinned))
	}
}

func scenarioFailureRetriesThenErrorThenRecover(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"retry_backoff_base":"20ms","max_retries":2}`)
	a := localPin("a")
	h.do(func() { h.failPin[a.Cid] = "boom" })
	track(t, tr, h, a)

	// In error after each attempt; the last after the two retries.
	eventually(t, "pin_error after the retries", func() bool {
		info := status(t, tr, a.Cid)
		return info.Status == core.TrackerStatusPinError && info.AttemptCount == 3
	})
	if info := status(t, tr, a.Cid); info.Error != "boom" {
		t.Fatalf("after retries: %+v", info.PinInfoShort)
	}
	if n, _ := h.requests(a.Cid); n != 3 {
		t.Fatalf("%d pin requests, want 3 (one try and two retries)", n)
	}
	if st, _ := tr.Stats(context.Background()); st != (core.TrackerStats{PinErrors: 1}) {
		t.Fatalf("stats %+v", st)
	}
	// The error stays until something is done about it.
	time.Sleep(100 * time.Millisecond)
	if n, _ := h.requests(a.Cid); n != 3 {
		t.Fatalf("retried past max_retries: %d requests", n)
	}

	h.do(func() { delete(h.failPin, a.Cid) })
	infos, err := tr.Recover(context.Background(), []core.Cid{a.Cid})
	if err != nil {
		t.Fatal(err)
	}
	if st := infos[0].Status; st != core.TrackerStatusPinQueued && st != core.TrackerStatusPinning {
		t.Fatalf("recover answered %s", st)
	}
	if infos[0].AttemptCount < 3 {
		t.Fatalf("attempt count not carried over: %d", infos[0].AttemptCount)
	}
	eventually(t, "pinned after recover", hasStatus(t, tr, a.Cid, core.TrackerStatusPinned))

	// Recover on a healthy pin changes nothing.
	infos, err = tr.Recover(context.Background(), []core.Cid{a.Cid})
	if err != nil || infos[0].Status != core.TrackerStatusPinned {
		t.Fatalf("recover of a pinned CID: %v %+v", err, infos)
	}
}

// A failed pin waiting for its automatic retry is pin_error, as a failed
// pin is in IPFS Cluster until recovered; the retry then pins it.
func scenarioRetryShowsErrorUntilRetried(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"retry_backoff_base":"300ms","max_retries":1}`)
	a := localPin("a")
	h.do(func() { h.failPin[a.Cid] = "transient" })
	track(t, tr, h, a)
	eventually(t, "first attempt", func() bool { n, _ := h.requests(a.Cid); return n == 1 })
	eventually(t, "in error until the retry", func() bool {
		info := status(t, tr, a.Cid)
		return info.Status == core.TrackerStatusPinError && info.Error == "transient" && info.AttemptCount == 1
	})
	if st, _ := tr.Stats(context.Background()); st.PinErrors != 1 || st.PinQueued+st.Pinning != 0 {
		t.Fatalf("stats while waiting for the retry: %+v", st)
	}
	h.do(func() { delete(h.failPin, a.Cid) })
	eventually(t, "pinned by the retry", hasStatus(t, tr, a.Cid, core.TrackerStatusPinned))
	if n, _ := h.requests(a.Cid); n != 2 {
		t.Fatalf("%d pin requests, want 2 (one try, one retry)", n)
	}
}

func scenarioUnpinFlow(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, fast)
	a := localPin("a")
	track(t, tr, h, a)
	eventually(t, "pinned", hasStatus(t, tr, a.Cid, core.TrackerStatusPinned))

	gate := make(chan struct{})
	h.do(func() { h.unpinGate[a.Cid] = gate })
	untrack(t, tr, h, a.Cid)
	eventually(t, "unpinning", hasStatus(t, tr, a.Cid, core.TrackerStatusUnpinning))
	if info := status(t, tr, a.Cid); !info.Cid.Equals(a.Cid) || info.Peer != self || info.AttemptCount != 1 {
		t.Fatalf("unpinning info: %+v", info)
	}
	close(gate)
	eventually(t, "unpinned", hasStatus(t, tr, a.Cid, core.TrackerStatusUnpinned))
	if h.inIPFS(a.Cid) {
		t.Fatal("still pinned in IPFS")
	}
	info := status(t, tr, a.Cid)
	if info.Peer != self || len(info.Allocations) != 0 || info.TS.IsZero() {
		t.Fatalf("unpinned info: %+v", info)
	}

	// A failing unpin ends as unpin_error.
	b := localPin("b")
	track(t, tr, h, b)
	eventually(t, "b pinned", hasStatus(t, tr, b.Cid, core.TrackerStatusPinned))
	h.do(func() { h.failUnpin[b.Cid] = "cannot unpin" })
	untrack(t, tr, h, b.Cid)
	eventually(t, "unpin_error", hasStatus(t, tr, b.Cid, core.TrackerStatusUnpinError))
	h.do(func() { delete(h.failUnpin, b.Cid) })
	infos, err := tr.Recover(context.Background(), []core.Cid{b.Cid})
	if err != nil || (infos[0].Status != core.TrackerStatusUnpinQueued && infos[0].Status != core.TrackerStatusUnpinning) {
		t.Fatalf("recover of unpin_error: %v %+v", err, infos)
	}
	eventually(t, "b unpinned", hasStatus(t, tr, b.Cid, core.TrackerStatusUnpinned))
	if h.inIPFS(b.Cid) {
		t.Fatal("b still pinned in IPFS")
	}
}

func scenarioRemotePins(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, fast)
	// Never here: nothing is pinned or unpinned.
	r1 := remotePin("r1")
	// Allocated elsewhere but left in IPFS (e.g. from before): unpinned.
	r2 := remotePin("r2")
	h.do(func() { h.ipfs[r2.Cid] = core.IPFSPinStatusRecursive })
	before := h.pinLsCidsCalls.Load()
	track(t, tr, h, r1, r2)
	if st := status(t, tr, r1.Cid).Status; st != core.TrackerStatusRemote {
		t.Fatalf("r1: %s", st)
	}
	eventually(t, "r2 unpinned from IPFS", func() bool { return !h.inIPFS(r2.Cid) })
	eventually(t, "r2 remote", hasStatus(t, tr, r2.Cid, core.TrackerStatusRemote))
	if h.pinLsCidsCalls.Load()-before < 1 {
		t.Fatal("remote pins were not checked against IPFS")
	}
	if p, u := h.requests(r1.Cid); p != 0 || u != 0 {
		t.Fatalf("r1: %d pins, %d unpins requested", p, u)
	}
	if p, _ := h.requests(r2.Cid); p != 0 {
		t.Fatalf("r2 was pinned")
	}

	// Re-allocated away from this peer after being pinned here.
	m := localPin("moved")
	track(t, tr, h, m)
	eventually(t, "moved pinned", hasStatus(t, tr, m.Cid, core.TrackerStatusPinned))
	m.Allocations = []core.PeerID{other}
	track(t, tr, h, m)
	eventually(t, "moved unpinned", func() bool { return !h.inIPFS(m.Cid) })
	eventually(t, "moved remote", hasStatus(t, tr, m.Cid, core.TrackerStatusRemote))
}

func scenarioMetaPinIsSharded(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, fast)
	m := localPin("meta")
	m.Type = core.MetaType
	track(t, tr, h, m)
	if st := status(t, tr, m.Cid).Status; st != core.TrackerStatusSharded {
		t.Fatalf("meta-pin: %s", st)
	}
	time.Sleep(20 * time.Millisecond)
	if p, _ := h.requests(m.Cid); p != 0 {
		t.Fatal("a meta-pin was pinned in IPFS")
	}
}

func scenarioUnknownCidIsUnpinned(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, fast)
	c := testCid("nowhere")
	info := status(t, tr, c)
	if info.Status != core.TrackerStatusUnpinned || !info.Cid.Equals(c) || info.Name != "" ||
		info.Peer != self || len(info.Allocations) != 0 {
		t.Fatalf("got %+v", info)
	}
}

func scenarioUnexpectedlyUnpinnedAndRecover(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, fast)
	a, b := localPin("a"), localPin("b")
	track(t, tr, h, a, b)
	eventually(t, "a pinned", hasStatus(t, tr, a.Cid, core.TrackerStatusPinned))
	eventually(t, "b pinned", hasStatus(t, tr, b.Cid, core.TrackerStatusPinned))

	// Someone unpins them behind the tracker's back.
	h.do(func() {
		delete(h.ipfs, a.Cid)
		delete(h.ipfs, b.Cid)
	})
	info := status(t, tr, a.Cid)
	if info.Status != core.TrackerStatusUnexpectedlyUnpinned || info.Error != "the item should be pinned but it is not" {
		t.Fatalf("got %+v", info.PinInfoShort)
	}

	// Recover one by CID.
	infos, err := tr.Recover(context.Background(), []core.Cid{a.Cid})
	if err != nil {
		t.Fatal(err)
	}
	if st := infos[0].Status; st != core.TrackerStatusPinQueued && st != core.TrackerStatusPinning {
		t.Fatalf("recover answered %s", st)
	}
	eventually(t, "a pinned again", hasStatus(t, tr, a.Cid, core.TrackerStatusPinned))

	// RecoverAll streams only what it re-queued: b, not a.
	got := byName(collect(t, tr.RecoverAll(context.Background())))
	if len(got) != 1 || (got["b"] != core.TrackerStatusPinQueued && got["b"] != core.TrackerStatusPinning) {
		t.Fatalf("RecoverAll streamed %s", describe(got))
	}
	eventually(t, "b pinned again", hasStatus(t, tr, b.Cid, core.TrackerStatusPinned))
	if got := collect(t, tr.RecoverAll(context.Background())); len(got) != 0 {
		t.Fatalf("nothing to recover, yet RecoverAll streamed %s", describe(got))
	}
}

func scenarioRecoverAllRequeuesErrors(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"max_retries":0}`)
	a, u := localPin("a"), localPin("u")
	track(t, tr, h, u)
	eventually(t, "u pinned", hasStatus(t, tr, u.Cid, core.TrackerStatusPinned))
	h.do(func() {
		h.failPin[a.Cid] = "no"
		h.failUnpin[u.Cid] = "no"
	})
	track(t, tr, h, a)
	untrack(t, tr, h, u.Cid)
	eventually(t, "a pin_error", hasStatus(t, tr, a.Cid, core.TrackerStatusPinError))
	eventually(t, "u unpin_error", hasStatus(t, tr, u.Cid, core.TrackerStatusUnpinError))
	h.do(func() {
		delete(h.failPin, a.Cid)
		delete(h.failUnpin, u.Cid)
	})
	got := byName(collect(t, tr.RecoverAll(context.Background())))
	if len(got) != 2 || !got["a"].Match(core.TrackerStatusPinQueued|core.TrackerStatusPinning) ||
		!got["u"].Match(core.TrackerStatusUnpinQueued|core.TrackerStatusUnpinning) {
		t.Fatalf("RecoverAll streamed %s", describe(got))
	}
	eventually(t, "a pinned", hasStatus(t, tr, a.Cid, core.TrackerStatusPinned))
	eventually(t, "u unpinned", hasStatus(t, tr, u.Cid, core.TrackerStatusUnpinned))
}

func scenarioPinThenUnpinWhileQueuedCancelsThePin(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"concurrent_pins":1,"batch_size":1}`)
	blocker, a := localPin("blocker"), localPin("a")
	gate := make(chan struct{})
	h.do(func() { h.pinGate[blocker.Cid] = gate })
	track(t, tr, h, blocker)
	eventually(t, "blocker pinning", hasStatus(t, tr, blocker.Cid, core.TrackerStatusPinning))

	track(t, tr, h, a)
	if st := status(t, tr, a.Cid).Status; st != core.TrackerStatusPinQueued {
		t.Fatalf("a: %s", st)
	}
	untrack(t, tr, h, a.Cid)
	if st := status(t, tr, a.Cid).Status; st != core.TrackerStatusUnpinQueued {
		t.Fatalf("a after untrack: %s", st)
	}
	if st, _ := tr.Stats(context.Background()); st.PinQueued != 0 {
		t.Fatalf("the cancelled pin is still counted: %+v", st)
	}
	close(gate)
	eventually(t, "a unpinned", hasStatus(t, tr, a.Cid, core.TrackerStatusUnpinned))
	if p, _ := h.requests(a.Cid); p != 0 {
		t.Fatalf("the cancelled pin reached IPFS (%d requests)", p)
	}
}

func scenarioPinThenUnpinWhileInFlight(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, fast)
	a := localPin("a")
	gate := make(chan struct{})
	h.do(func() { h.pinGate[a.Cid] = gate })
	track(t, tr, h, a)
	eventually(t, "a pinning", func() bool { n, _ := h.requests(a.Cid); return n == 1 })

	// The unpin waits for the pin call to answer; the batch holds nothing
	// else, so the call is cancelled.
	untrack(t, tr, h, a.Cid)
	st := status(t, tr, a.Cid).Status
	if !st.Match(core.TrackerStatusUnpinQueued | core.TrackerStatusUnpinning | core.TrackerStatusUnpinned) {
		t.Fatalf("a after untrack: %s", st)
	}
	eventually(t, "a unpinned", hasStatus(t, tr, a.Cid, core.TrackerStatusUnpinned))
	if h.inIPFS(a.Cid) {
		t.Fatal("a is pinned in IPFS")
	}
	close(gate)
}

func scenarioUnpinWaitsForPinInSameBatch(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"concurrent_pins":2}`)
	blocker, a, b := localPin("blocker"), localPin("a"), localPin("b")
	hold := make(chan struct{})
	gate := make(chan struct{})
	h.do(func() {
		h.pinGate[blocker.Cid] = hold
		h.pinGate[a.Cid] = gate
		h.pinGate[b.Cid] = gate
	})
	// Occupy one worker so that a and b go in one batch to the other.
	track(t, tr, h, blocker)
	eventually(t, "blocker pinning", func() bool { n, _ := h.requests(blocker.Cid); return n == 1 })
	track(t, tr, h, a, b)
	eventually(t, "a and b sent", func() bool {
		na, _ := h.requests(a.Cid)
		nb, _ := h.requests(b.Cid)
		return na == 1 && nb == 1
	})
	untrack(t, tr, h, a.Cid)
	time.Sleep(20 * time.Millisecond)
	if _, u := h.requests(a.Cid); u != 0 {
		t.Fatal("the unpin went out while the pin was in flight")
	}
	close(gate) // a's pin completes (b is still wanted), then a is unpinned
	eventually(t, "b pinned", hasStatus(t, tr, b.Cid, core.TrackerStatusPinned))
	eventually(t, "a unpinned", hasStatus(t, tr, a.Cid, core.TrackerStatusUnpinned))
	if h.inIPFS(a.Cid) || !h.inIPFS(b.Cid) {
		t.Fatalf("IPFS holds a=%v b=%v, want false true", h.inIPFS(a.Cid), h.inIPFS(b.Cid))
	}
	close(hold)
}

func scenarioPriorityPinsFirst(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"concurrent_pins":1,"batch_size":1}`)
	blocker, old, young := localPin("blocker"), localPin("old"), localPin("young")
	old.Timestamp = time.Now().Add(-48 * time.Hour)
	gate := make(chan struct{})
	h.do(func() { h.pinGate[blocker.Cid] = gate })
	track(t, tr, h, blocker)
	eventually(t, "blocker pinning", hasStatus(t, tr, blocker.Cid, core.TrackerStatusPinning))
	track(t, tr, h, old, young)
	if status(t, tr, old.Cid).PriorityPin || !status(t, tr, young.Cid).PriorityPin {
		t.Fatal("priority flags wrong")
	}
	close(gate)
	eventually(t, "all pinned", func() bool { return h.inIPFS(old.Cid) && h.inIPFS(young.Cid) })
	h.do(func() {
		if len(h.order) != 3 || !h.order[1].Equals(young.Cid) || !h.order[2].Equals(old.Cid) {
			t.Errorf("pin order %v, want blocker, young, old", h.order)
		}
	})
}

func scenarioStatusAllFilters(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"max_retries":0}`)
	pinned, remote, meta, lost, failed, leaving := localPin("pinned"), remotePin("remote"), localPin("meta"),
		localPin("lost"), localPin("failed"), localPin("leaving")
	meta.Type = core.MetaType
	h.do(func() { h.failPin[failed.Cid] = "nope" })
	track(t, tr, h, pinned, remote, meta, failed, leaving)
	eventually(t, "pinned", hasStatus(t, tr, pinned.Cid, core.TrackerStatusPinned))
	eventually(t, "leaving pinned", hasStatus(t, tr, leaving.Cid, core.TrackerStatusPinned))
	eventually(t, "failed", hasStatus(t, tr, failed.Cid, core.TrackerStatusPinError))
	h.addPins(lost) // in the pinset, allocated here, never pinned
	gate := make(chan struct{})
	defer close(gate)
	h.do(func() { h.unpinGate[leaving.Cid] = gate })
	untrack(t, tr, h, leaving.Cid) // in flight, no longer in the pinset
	eventually(t, "leaving unpinning", hasStatus(t, tr, leaving.Cid, core.TrackerStatusUnpinning))

	all := map[string]core.TrackerStatus{
		"pinned": core.TrackerStatusPinned, "remote": core.TrackerStatusRemote,
		"meta": core.TrackerStatusSharded, "lost": core.TrackerStatusUnexpectedlyUnpinned,
		"failed": core.TrackerStatusPinError,
	}
	pick := func(names ...string) map[string]core.TrackerStatus {
		out := map[string]core.TrackerStatus{}
		for _, n := range names {
			out[n] = all[n]
		}
		return out
	}
	cases := []struct {
		filter  string
		want    map[string]core.TrackerStatus
		listsIP bool // whether IPFS's pin list is read
	}{
		{"", all, true},
		{"pinned", pick("pinned"), true},
		{"unexpectedly_unpinned", pick("lost"), true},
		{"remote,sharded", pick("remote", "meta"), false},
		{"error", pick("failed"), false},
		{"pin_error,remote", pick("failed", "remote"), false},
		// Untrack only has the CID: the unpin is listed under it.
		{"unpinning", map[string]core.TrackerStatus{leaving.Cid.String(): core.TrackerStatusUnpinning}, false},
		{"pinned,unpinning", pick("pinned"), true},
		{"queued", map[string]core.TrackerStatus{}, false},
	}
	for _, c := range cases {
		before := h.pinLsCalls.Load()
		got := byName(collect(t, tr.StatusAll(context.Background(), core.ParseStatusFilter(c.filter))))
		if !maps.Equal(got, c.want) {
			t.Errorf("filter %q: got %s, want %s", c.filter, describe(got), describe(c.want))
		}
		if listed := h.pinLsCalls.Load() > before; listed != c.listsIP {
			t.Errorf("filter %q: IPFS pin list read = %v, want %v", c.filter, listed, c.listsIP)
		}
	}

	// Stopping the stream early is fine.
	for range tr.StatusAll(context.Background(), 0) {
		break
	}
}

func scenarioSyncClearsStaleErrors(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{"max_retries":0}`)
	a, still, u := localPin("a"), localPin("still"), localPin("u")
	h.do(func() {
		h.failPin[a.Cid] = "timeout"
		h.failPin[still.Cid] = "timeout"
	})
	track(t, tr, h, a, still, u)
	eventually(t, "a pin_error", hasStatus(t, tr, a.Cid, core.TrackerStatusPinError))
	eventually(t, "still pin_error", hasStatus(t, tr, still.Cid, core.TrackerStatusPinError))
	eventually(t, "u pinned", hasStatus(t, tr, u.Cid, core.TrackerStatusPinned))

	// IPFS finished the pin after all (e.g. after the timeout).
	h.do(func() { h.ipfs[a.Cid] = core.IPFSPinStatusRecursive })
	if st := status(t, tr, a.Cid).Status; st != core.TrackerStatusPinError {
		t.Fatalf("status without sync: %s", st)
	}
	infos, err := tr.Sync(context.Background(), []core.Cid{a.Cid, still.Cid})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].Status != core.TrackerStatusPinned || infos[0].Error != "" || infos[1].Status != core.TrackerStatusPinError {
		t.Fatalf("sync: %s %s", infos[0].Status, infos[1].Status)
	}
	if st, _ := tr.Stats(context.Background()); st.PinErrors != 1 {
		t.Fatalf("stats after sync %+v", st)
	}

	// A failed unpin of something IPFS no longer holds.
	h.do(func() { h.failUnpin[u.Cid] = "busy" })
	untrack(t, tr, h, u.Cid)
	eventually(t, "u unpin_error", hasStatus(t, tr, u.Cid, core.TrackerStatusUnpinError))
	h.do(func() { delete(h.ipfs, u.Cid) })
	got := byName(collect(t, tr.SyncAll(context.Background())))
	want := map[string]core.TrackerStatus{"a": core.TrackerStatusPinned, "still": core.TrackerStatusPinError}
	if !maps.Equal(got, want) {
		t.Fatalf("SyncAll: %s", describe(got))
	}
	if st := status(t, tr, u.Cid).Status; st != core.TrackerStatusUnpinned {
		t.Fatalf("u after SyncAll: %s", st)
	}
}

func scenarioPinTimeout(t *testing.T, connect connector) {
	h := newTestHost()
	h.hang = true
	tr := connect(t, h, `{"pin_timeout":"200ms","max_retries":0}`)
	a := localPin("a")
	start := time.Now()
	track(t, tr, h, a)
	eventually(t, "pin_error after timeout", hasStatus(t, tr, a.Cid, core.TrackerStatusPinError))
	took := time.Since(start)
	info := status(t, tr, a.Cid)
	if !strings.Contains(info.Error, "timed out") || !strings.Contains(info.Error, "200ms") {
		t.Fatalf("error %q", info.Error)
	}
	if took < 200*time.Millisecond || took > 5*time.Second {
		t.Fatalf("pin_error after %s, want just after pin_timeout", took)
	}
}

func scenarioBatching10k(t *testing.T, connect connector) {
	h := newTestHost()
	tr := connect(t, h, `{}`)
	pins := make([]core.Pin, 10_000)
	for i := range pins {
		pins[i] = localPin(fmt.Sprintf("p%d", i))
	}
	track(t, tr, h, pins...)
	eventually(t, "all pinned", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.ipfs) == len(pins)
	})
	eventually(t, "queue empty", func() bool {
		st, _ := tr.Stats(context.Background())
		return st == core.TrackerStats{}
	})
	got := collect(t, tr.StatusAll(context.Background(), core.TrackerStatusPinned))
	if len(got) != len(pins) {
		t.Fatalf("%d pinned, want %d", len(got), len(pins))
	}
	calls := h.pinCalls.Load()
	t.Logf("10,000 pins in %d Pin calls", calls)
	if calls > 400 {
		t.Fatalf("%d Pin calls for 10,000 pins: not batched", calls)
	}
}

func scenarioCloseWithPinsInFlight(t *testing.T, connect connector) {
	h := newTestHost()
	h.hang = true
	tr := connect(t, h, "")
	pins := make([]core.Pin, 100)
	for i := range pins {
		pins[i] = localPin(fmt.Sprintf("c%d", i))
	}
	track(t, tr, h, pins...)
	eventually(t, "pins in flight", func() bool { return h.pinCalls.Load() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %s", took)
	}
	if err := tr.Track(context.Background(), pins[:1]); err == nil {
		t.Fatal("Track after Close must fail")
	}
}

func scenarioQueueFull(t *testing.T, connect connector) {
	h := newTestHost()
	h.hang = true
	tr := connect(t, h, `{"concurrent_pins":1,"batch_size":1,"max_pin_queue_size":5}`)
	first := localPin("first")
	track(t, tr, h, first)
	eventually(t, "first pinning", hasStatus(t, tr, first.Cid, core.TrackerStatusPinning))
	pins := make([]core.Pin, 8)
	for i := range pins {
		pins[i] = localPin(fmt.Sprintf("q%d", i))
	}
	h.addPins(pins...)
	err := tr.Track(context.Background(), pins)
	if err == nil || !strings.Contains(err.Error(), "pin queue is full") || !strings.Contains(err.Error(), "3 of 8") {
		t.Fatalf("got %v", err)
	}
	if st, _ := tr.Stats(context.Background()); st.PinQueued != 5 {
		t.Fatalf("stats %+v", st)
	}
	// A pin that did not fit shows as unexpectedly unpinned: RecoverAll
	// picks it up later.
	if st := status(t, tr, pins[7].Cid).Status; st != core.TrackerStatusUnexpectedlyUnpinned {
		t.Fatalf("rejected pin: %s", st)
	}
	// An unpin that does not fit is kept as unpin_error.
	gone := testCid("gone")
	if err := tr.Untrack(context.Background(), []core.Cid{gone}); err == nil {
		t.Fatal("Untrack into a full queue must fail")
	}
	if info := status(t, tr, gone); info.Status != core.TrackerStatusUnpinError || !strings.Contains(info.Error, "pin queue is full") {
		t.Fatalf("rejected unpin: %+v", info.PinInfoShort)
	}
}

func scenarioReconcileAtStart(t *testing.T, connect connector) {
	h := newTestHost()
	missing1, missing2, held, remote, meta := localPin("m1"), localPin("m2"), localPin("held"),
		remotePin("remote"), localPin("meta")
	meta.Type = core.MetaType
	h.addPins(missing1, missing2, held, remote, meta)
	h.do(func() { h.ipfs[held.Cid] = core.IPFSPinStatusRecursive })

	tr := connect(t, h, fast)
	eventually(t, "m1 pinned", hasStatus(t, tr, missing1.Cid, core.TrackerStatusPinned))
	eventually(t, "m2 pinned", hasStatus(t, tr, missing2.Cid, core.TrackerStatusPinned))
	for _, c := range []core.Cid{held.Cid, remote.Cid, meta.Cid} {
		if p, _ := h.requests(c); p != 0 {
			t.Errorf("%s pinned by reconciliation", c)
		}
	}
}

func scenarioReconcileRetries(t *testing.T, connect connector) {
	h := newTestHost()
	a := localPin("a")
	h.addPins(a)
	h.do(func() { h.pinLsFailures = 2 })
	tr := connect(t, h, `{"retry_backoff_base":"5ms"}`)
	eventually(t, "a pinned", hasStatus(t, tr, a.Cid, core.TrackerStatusPinned))
	if n := h.pinLsCalls.Load(); n < 3 {
		t.Fatalf("%d PinLs calls, want two failures and a success", n)
	}
}

func scenarioTrackNeverWaitsForIPFS(t *testing.T, connect connector) {
	h := newTestHost()
	h.hang = true // every pin waits forever (pin_timeout is an hour)
	tr := connect(t, h, `{"pin_timeout":"1h"}`)
	pins := make([]core.Pin, 1000)
	for i := range pins {
		pins[i] = localPin(fmt.Sprintf("w%d", i))
		if i%2 == 0 {
			pins[i].Allocations = []core.PeerID{other}
		}
	}
	h.addPins(pins...)
	done := make(chan error, 1)
	go func() { done <- tr.Track(context.Background(), pins) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Track is waiting for a stuck IPFS")
	}
	eventually(t, "pins in flight", func() bool { return h.pinCalls.Load() > 0 })
	// Status answers too: the queued and in-flight pins come from memory.
	if st := status(t, tr, pins[1].Cid).Status; !st.Match(core.TrackerStatusQueued | core.TrackerStatusPinning) {
		t.Fatalf("status %s", st)
	}
}

// BenchmarkTrack10k tracks 10,000 pins and waits until IPFS holds them all,
// with the default configuration (10 workers, batches of 64).
func BenchmarkTrack10k(b *testing.B) { benchmarkTrack10k(b, direct) }

func benchmarkTrack10k(b *testing.B, connect connector) {
	h := newTestHost()
	tr := connect(b, h, "")
	round := 0
	for b.Loop() {
		b.StopTimer()
		round++
		pins := make([]core.Pin, 10_000)
		for i := range pins {
			pins[i] = localPin(fmt.Sprintf("bench%d-%d", round, i))
		}
		h.addPins(pins...)
		calls := h.pinCalls.Load()
		b.StartTimer()
		if err := tr.Track(context.Background(), pins); err != nil {
			b.Fatal(err)
		}
		for {
			st, err := tr.Stats(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if st.PinQueued+st.Pinning+st.PinErrors == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(h.pinCalls.Load()-calls), "pin-calls/op")
		b.StartTimer()
	}
}
