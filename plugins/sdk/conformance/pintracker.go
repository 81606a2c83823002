package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// trackerWait bounds how long the pin tracker suite waits for a pin or an
// unpin to happen, and trackerErrorWait for a failed pin to show as
// pin_error (after the tracker's own retries).
const (
	trackerWait      = 30 * time.Second
	trackerErrorWait = 60 * time.Second
)

// TestPinTracker runs the pin tracker suite. newImpl returns a new,
// unconfigured implementation; each subtest serves one behind the real
// gRPC adapters (package sdktest) and configures it with cfg (nil or empty
// means the plugin's defaults) and a Host of the suite's: an in-memory
// pinset and an in-memory IPFS node, which pins at once, or fails the pins
// of the CIDs a subtest chooses.
//
// A failed pin must end in pin_error within a minute: configure the
// tracker with few retries and short waits between them.
//
// As the core does, the suite puts a pin into the host's pinset before it
// calls Track, and takes it out before it calls Untrack. What it checks:
//
//   - Describe, before Configure: kind pin_tracker, a name, protocol
//     version 1, a default config that is valid JSON and that Configure
//     accepts; Close succeeds.
//   - Track of pins allocated to this peer, or to every peer (no
//     allocations): they end pinned, and IPFS holds them recursively, or
//     directly for max_depth 0.
//   - Untrack: the CID ends unpinned and IPFS no longer holds it; untracking
//     a CID that was never tracked is not an error.
//   - A pin allocated to other peers only is remote, and IPFS is never
//     asked to pin it.
//   - A pin that IPFS fails ends in pin_error with an error message; once
//     IPFS works again, Recover (one CID) and RecoverAll (which streams
//     what it re-queued) bring it to pinned.
//   - Status answers one PinInfo per CID in request order; a CID outside
//     the pinset is unpinned.
//   - StatusAll lists each pin once, with the statuses above, and only the
//     statuses that pass its filter.
//   - Sync reports pinned for a pin IPFS holds, and something else once
//     IPFS lost it; Stats answers.
func TestPinTracker(t *testing.T, newImpl func() sdk.PinTracker, cfg json.RawMessage) {
	s := &trackerSuite{newImpl: newImpl, cfg: cfg}
	t.Run("Describe", s.testDescribe)
	t.Run("TrackPins", s.testTrack)
	t.Run("Untrack", s.testUntrack)
	t.Run("RemotePins", s.testRemote)
	t.Run("ErrorAndRecover", s.testErrorRecover)
	t.Run("ErrorAndRecoverAll", s.testErrorRecoverAll)
	t.Run("StatusOrderAndUnknown", s.testStatusOrder)
	t.Run("StatusAllFilter", s.testStatusAll)
	t.Run("SyncAndStats", s.testSync)
}

type trackerSuite struct {
	newImpl func() sdk.PinTracker
	cfg     json.RawMessage
}

// trackerRig is one tracker under test with its host.
type trackerRig struct {
	t    *testing.T
	ctx  context.Context
	self sdk.PeerID
	host *trackerHost
	pt   sdk.PinTracker
}

func (s *trackerSuite) rig(t *testing.T) *trackerRig {
	t.Helper()
	env := sdktest.Environment(t)
	h := newTrackerHost()
	pt := sdktest.ConnectPinTracker(t, s.newImpl(), s.cfg, h, sdktest.WithEnvironment(env))
	return &trackerRig{t: t, ctx: kitContext(t), self: env.PeerID, host: h, pt: pt}
}

// pin returns a new pin allocated to allocs (none: every peer).
func (r *trackerRig) pin(name string, allocs ...sdk.PeerID) sdk.Pin {
	return sdk.Pin{
		PinOptions:  sdk.PinOptions{ReplicationFactorMin: -1, ReplicationFactorMax: -1, Name: name},
		Cid:         kitCid(r.t),
		Type:        sdk.DataType,
		MaxDepth:    -1,
		Timestamp:   time.Now(),
		Allocations: allocs,
	}
}

// track adds pins to the pinset and tracks them, as the core does.
func (r *trackerRig) track(pins ...sdk.Pin) {
	r.t.Helper()
	r.host.setPins(pins...)
	if err := r.pt.Track(r.ctx, pins); err != nil {
		r.t.Fatalf("Track: %v", err)
	}
}

// untrack removes CIDs from the pinset and untracks them.
func (r *trackerRig) untrack(cids ...sdk.Cid) {
	r.t.Helper()
	r.host.dropPins(cids...)
	if err := r.pt.Untrack(r.ctx, cids); err != nil {
		r.t.Fatalf("Untrack: %v", err)
	}
}

func (r *trackerRig) status(cids ...sdk.Cid) []sdk.PinInfo {
	r.t.Helper()
	infos, err := r.pt.Status(r.ctx, cids)
	if err != nil {
		r.t.Fatalf("Status: %v", err)
	}
	if len(infos) != len(cids) {
		r.t.Fatalf("Status of %d CIDs answered %d infos", len(cids), len(infos))
	}
	for i, pi := range infos {
		if !pi.Cid.Equals(cids[i]) {
			r.t.Fatalf("Status entry %d is for %s, want %s (request order)", i, pi.Cid, cids[i])
		}
	}
	return infos
}

// await polls Status until every CID has status want.
func (r *trackerRig) await(want sdk.TrackerStatus, within time.Duration, cids ...sdk.Cid) []sdk.PinInfo {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		infos := r.status(cids...)
		ok := true
		for _, pi := range infos {
			ok = ok && pi.Status == want
		}
		if ok {
			return infos
		}
		if time.Now().After(deadline) {
			var got []string
			for _, pi := range infos {
				got = append(got, fmt.Sprintf("%s: %s %q", pi.Cid, pi.Status, pi.Error))
			}
			r.t.Fatalf("not %s within %s: %s", want, within, strings.Join(got, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusAll reads StatusAll(filter) into CID key -> PinInfo, failing on a
// CID listed twice or a status that does not pass the filter.
func (r *trackerRig) statusAll(filter sdk.TrackerStatus) map[string]sdk.PinInfo {
	r.t.Helper()
	out := map[string]sdk.PinInfo{}
	for pi, err := range r.pt.StatusAll(r.ctx, filter) {
		if err != nil {
			r.t.Fatalf("StatusAll(%s): %v", filter, err)
		}
		k := pi.Cid.KeyString()
		if _, dup := out[k]; dup {
			r.t.Fatalf("StatusAll(%s) lists %s twice", filter, pi.Cid)
		}
		if filter != 0 && pi.Status&filter == 0 {
			r.t.Errorf("StatusAll(%s) lists %s with status %s, which the filter excludes", filter, pi.Cid, pi.Status)
		}
		out[k] = pi
	}
	return out
}

func (s *trackerSuite) testDescribe(t *testing.T) {
	describeAndConfigure(t, s.newImpl(), sdk.KindPinTracker, sdktest.Environment(t), newTrackerHost())
}

func (s *trackerSuite) testTrack(t *testing.T) {
	r := s.rig(t)
	other := sdktest.NewPeerID(t)
	mine := r.pin("mine", r.self, other)
	everywhere := r.pin("everywhere")
	direct := r.pin("direct", r.self)
	direct.MaxDepth = 0
	direct.Mode = sdk.PinModeDirect
	r.track(mine, everywhere, direct)
	infos := r.await(sdk.TrackerStatusPinned, trackerWait, mine.Cid, everywhere.Cid, direct.Cid)
	for _, pi := range infos {
		if pi.Error != "" {
			t.Errorf("%s is pinned with an error: %q", pi.Cid, pi.Error)
		}
	}
	want := map[sdk.Cid]sdk.IPFSPinStatus{
		mine.Cid:       sdk.IPFSPinStatusRecursive,
		everywhere.Cid: sdk.IPFSPinStatusRecursive,
		direct.Cid:     sdk.IPFSPinStatusDirect,
	}
	for c, st := range want {
		if got := r.host.ipfsStatus(c); got != st {
			t.Errorf("IPFS holds %s as %q, want %q", c, got, st)
		}
	}
	// Tracking again changes nothing.
	r.track(mine)
	r.await(sdk.TrackerStatusPinned, trackerWait, mine.Cid)
}

func (s *trackerSuite) testUntrack(t *testing.T) {
	r := s.rig(t)
	a, b := r.pin("a", r.self), r.pin("b")
	r.track(a, b)
	r.await(sdk.TrackerStatusPinned, trackerWait, a.Cid, b.Cid)
	r.untrack(a.Cid)
	r.await(sdk.TrackerStatusUnpinned, trackerWait, a.Cid)
	deadline := time.Now().Add(trackerWait)
	for r.host.ipfsStatus(a.Cid).IsPinned() {
		if time.Now().After(deadline) {
			t.Fatal("IPFS still holds an untracked pin")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := r.status(b.Cid)[0].Status; st != sdk.TrackerStatusPinned {
		t.Errorf("untracking a CID changed the status of another to %s", st)
	}
	never := kitCid(t)
	if err := r.pt.Untrack(r.ctx, []sdk.Cid{never}); err != nil {
		t.Errorf("Untrack of a CID that was never tracked: %v", err)
	}
	r.await(sdk.TrackerStatusUnpinned, trackerWait, never)
}

func (s *trackerSuite) testRemote(t *testing.T) {
	r := s.rig(t)
	remote := r.pin("remote", sdktest.NewPeerID(t), sdktest.NewPeerID(t))
	local := r.pin("local", r.self)
	r.track(remote, local)
	r.await(sdk.TrackerStatusPinned, trackerWait, local.Cid)
	r.await(sdk.TrackerStatusRemote, trackerWait, remote.Cid)
	if n := r.host.pinRequests(remote.Cid); n != 0 {
		t.Errorf("IPFS was asked %d times to pin a pin allocated to other peers", n)
	}
	if r.host.ipfsStatus(remote.Cid).IsPinned() {
		t.Error("IPFS holds a pin allocated to other peers")
	}
}

// failedPin tracks a pin that IPFS fails and waits for pin_error.
func (r *trackerRig) failedPin(name string) sdk.Pin {
	r.t.Helper()
	p := r.pin(name, r.self)
	r.host.failPins(p.Cid)
	r.track(p)
	pi := r.await(sdk.TrackerStatusPinError, trackerErrorWait, p.Cid)[0]
	if pi.Error == "" {
		r.t.Errorf("%s is pin_error without an error message", p.Cid)
	}
	return p
}

func (s *trackerSuite) testErrorRecover(t *testing.T) {
	r := s.rig(t)
	p := r.failedPin("fails")
	if r.host.ipfsStatus(p.Cid).IsPinned() {
		t.Fatal("IPFS holds a pin it failed")
	}
	r.host.healPins(p.Cid)
	infos, err := r.pt.Recover(r.ctx, []sdk.Cid{p.Cid})
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(infos) != 1 || !infos[0].Cid.Equals(p.Cid) {
		t.Fatalf("Recover of one CID answered %+v", infos)
	}
	r.await(sdk.TrackerStatusPinned, trackerWait, p.Cid)
	if !r.host.ipfsStatus(p.Cid).IsPinned() {
		t.Error("pinned after Recover, but IPFS does not hold it")
	}
}

func (s *trackerSuite) testErrorRecoverAll(t *testing.T) {
	r := s.rig(t)
	ok := r.pin("ok", r.self)
	r.track(ok)
	r.await(sdk.TrackerStatusPinned, trackerWait, ok.Cid)
	p1, p2 := r.failedPin("fails 1"), r.failedPin("fails 2")
	r.host.healPins(p1.Cid, p2.Cid)
	requeued := map[string]bool{}
	for pi, err := range r.pt.RecoverAll(r.ctx) {
		if err != nil {
			t.Fatalf("RecoverAll: %v", err)
		}
		requeued[pi.Cid.KeyString()] = true
	}
	if !requeued[p1.Cid.KeyString()] || !requeued[p2.Cid.KeyString()] {
		t.Errorf("RecoverAll did not list both pins in error: listed %d items", len(requeued))
	}
	if requeued[ok.Cid.KeyString()] {
		t.Error("RecoverAll listed a pinned CID: it lists only what it re-queued")
	}
	r.await(sdk.TrackerStatusPinned, trackerWait, p1.Cid, p2.Cid)
}

func (s *trackerSuite) testStatusOrder(t *testing.T) {
	r := s.rig(t)
	a := r.pin("a", r.self)
	r.track(a)
	r.await(sdk.TrackerStatusPinned, trackerWait, a.Cid)
	u1, u2 := kitCid(t), kitCid(t)
	infos := r.status(u1, a.Cid, u2, a.Cid)
	want := []sdk.TrackerStatus{sdk.TrackerStatusUnpinned, sdk.TrackerStatusPinned, sdk.TrackerStatusUnpinned, sdk.TrackerStatusPinned}
	for i, pi := range infos {
		if pi.Status != want[i] {
			t.Errorf("Status entry %d (%s): %s, want %s", i, pi.Cid, pi.Status, want[i])
		}
	}
	if infos, err := r.pt.Status(r.ctx, nil); err != nil || len(infos) != 0 {
		t.Errorf("Status of no CIDs: %v, %v", infos, err)
	}
}

func (s *trackerSuite) testStatusAll(t *testing.T) {
	r := s.rig(t)
	pinned := r.pin("pinned", r.self)
	remote := r.pin("remote", sdktest.NewPeerID(t))
	r.track(pinned, remote)
	r.await(sdk.TrackerStatusPinned, trackerWait, pinned.Cid)
	r.await(sdk.TrackerStatusRemote, trackerWait, remote.Cid)
	failed := r.failedPin("failed")
	outside := kitCid(t)

	all := r.statusAll(0)
	for _, c := range []struct {
		cid  sdk.Cid
		want sdk.TrackerStatus
	}{{pinned.Cid, sdk.TrackerStatusPinned}, {remote.Cid, sdk.TrackerStatusRemote}, {failed.Cid, sdk.TrackerStatusPinError}} {
		pi, ok := all[c.cid.KeyString()]
		if !ok {
			t.Errorf("StatusAll(everything) does not list %s (%s)", c.cid, c.want)
		} else if pi.Status != c.want {
			t.Errorf("StatusAll(everything) lists %s as %s, want %s", c.cid, pi.Status, c.want)
		}
	}
	if _, ok := all[outside.KeyString()]; ok {
		t.Error("StatusAll lists a CID outside the pinset")
	}

	for _, f := range []struct {
		filter sdk.TrackerStatus
		in     []sdk.Cid
		out    []sdk.Cid
	}{
		{sdk.TrackerStatusPinned, []sdk.Cid{pinned.Cid}, []sdk.Cid{remote.Cid, failed.Cid}},
		{sdk.TrackerStatusRemote, []sdk.Cid{remote.Cid}, []sdk.Cid{pinned.Cid, failed.Cid}},
		{sdk.TrackerStatusPinError, []sdk.Cid{failed.Cid}, []sdk.Cid{pinned.Cid, remote.Cid}},
		{sdk.TrackerStatusError, []sdk.Cid{failed.Cid}, []sdk.Cid{pinned.Cid, remote.Cid}},
		{sdk.TrackerStatusPinned | sdk.TrackerStatusRemote, []sdk.Cid{pinned.Cid, remote.Cid}, []sdk.Cid{failed.Cid}},
		{sdk.TrackerStatusQueued, nil, []sdk.Cid{pinned.Cid, remote.Cid, failed.Cid}},
	} {
		got := r.statusAll(f.filter)
		for _, c := range f.in {
			if _, ok := got[c.KeyString()]; !ok {
				t.Errorf("StatusAll(%s) does not list %s", f.filter, c)
			}
		}
		for _, c := range f.out {
			if _, ok := got[c.KeyString()]; ok {
				t.Errorf("StatusAll(%s) lists %s", f.filter, c)
			}
		}
	}
}

func (s *trackerSuite) testSync(t *testing.T) {
	r := s.rig(t)
	a, b := r.pin("a", r.self), r.pin("b", r.self)
	r.track(a, b)
	r.await(sdk.TrackerStatusPinned, trackerWait, a.Cid, b.Cid)
	infos, err := r.pt.Sync(r.ctx, []sdk.Cid{a.Cid, b.Cid})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if len(infos) != 2 || !infos[0].Cid.Equals(a.Cid) || !infos[1].Cid.Equals(b.Cid) {
		t.Fatalf("Sync of 2 CIDs answered %+v", infos)
	}
	for _, pi := range infos {
		if pi.Status != sdk.TrackerStatusPinned {
			t.Errorf("Sync reports %s as %s, want pinned", pi.Cid, pi.Status)
		}
	}
	// IPFS loses b behind the tracker's back.
	r.host.forget(b.Cid)
	infos, err = r.pt.Sync(r.ctx, []sdk.Cid{b.Cid})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if len(infos) != 1 || infos[0].Status == sdk.TrackerStatusPinned {
		t.Errorf("Sync reports %+v for a CID IPFS no longer holds; want anything but pinned", infos)
	}
	if _, err := r.pt.Stats(r.ctx); err != nil {
		t.Errorf("Stats: %v", err)
	}
}

// trackerHost is the core as a pin tracker sees it: an in-memory pinset
// and an in-memory IPFS node that pins at once, or fails the pins of the
// CIDs in fail.
type trackerHost struct {
	mu     sync.Mutex
	pinset map[string]sdk.Pin
	ipfs   map[string]sdk.IPFSPinStatus
	fail   map[string]bool
	asked  map[string]int
}

func newTrackerHost() *trackerHost {
	return &trackerHost{
		pinset: map[string]sdk.Pin{},
		ipfs:   map[string]sdk.IPFSPinStatus{},
		fail:   map[string]bool{},
		asked:  map[string]int{},
	}
}

var _ sdk.Host = (*trackerHost)(nil)

func (h *trackerHost) setPins(pins ...sdk.Pin) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range pins {
		h.pinset[p.Cid.KeyString()] = p
	}
}

func (h *trackerHost) dropPins(cids ...sdk.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cids {
		delete(h.pinset, c.KeyString())
	}
}

func (h *trackerHost) failPins(cids ...sdk.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cids {
		h.fail[c.KeyString()] = true
	}
}

func (h *trackerHost) healPins(cids ...sdk.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cids {
		delete(h.fail, c.KeyString())
	}
}

// forget drops a CID from IPFS, as a manual `ipfs pin rm` would.
func (h *trackerHost) forget(c sdk.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.ipfs, c.KeyString())
}

func (h *trackerHost) ipfsStatus(c sdk.Cid) sdk.IPFSPinStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ipfs[c.KeyString()]
}

func (h *trackerHost) pinRequests(c sdk.Cid) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.asked[c.KeyString()]
}

func (h *trackerHost) GetPin(_ context.Context, c sdk.Cid) (sdk.Pin, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.pinset[c.KeyString()]
	if !ok {
		return sdk.Pin{}, sdk.ErrPinNotFound
	}
	return p, nil
}

func (h *trackerHost) ListPins(ctx context.Context) iter.Seq2[sdk.Pin, error] {
	return func(yield func(sdk.Pin, error) bool) {
		h.mu.Lock()
		keys := slices.Sorted(maps.Keys(h.pinset))
		pins := make([]sdk.Pin, len(keys))
		for i, k := range keys {
			pins[i] = h.pinset[k]
		}
		h.mu.Unlock()
		for _, p := range pins {
			if err := ctx.Err(); err != nil {
				yield(sdk.Pin{}, err)
				return
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

var errTrackerHostFailure = errors.New("pin failed: the suite's IPFS node refuses this CID")

func (h *trackerHost) Pin(ctx context.Context, reqs []sdk.IPFSPinRequest) iter.Seq2[sdk.IPFSPinResult, error] {
	return func(yield func(sdk.IPFSPinResult, error) bool) {
		for _, req := range reqs {
			if err := ctx.Err(); err != nil {
				yield(sdk.IPFSPinResult{}, err)
				return
			}
			k := req.Cid.KeyString()
			h.mu.Lock()
			h.asked[k]++
			res := sdk.IPFSPinResult{Cid: req.Cid}
			switch {
			case h.fail[k]:
				res.Error = errTrackerHostFailure.Error()
			case req.MaxDepth == 0:
				if h.ipfs[k] != sdk.IPFSPinStatusRecursive {
					h.ipfs[k] = sdk.IPFSPinStatusDirect
				}
			default:
				h.ipfs[k] = sdk.IPFSPinStatusRecursive
			}
			h.mu.Unlock()
			if !yield(res, nil) {
				return
			}
		}
	}
}

func (h *trackerHost) Unpin(ctx context.Context, cids []sdk.Cid) iter.Seq2[sdk.IPFSPinResult, error] {
	return func(yield func(sdk.IPFSPinResult, error) bool) {
		for _, c := range cids {
			if err := ctx.Err(); err != nil {
				yield(sdk.IPFSPinResult{}, err)
				return
			}
			h.forget(c)
			if !yield(sdk.IPFSPinResult{Cid: c}, nil) {
				return
			}
		}
	}
}

func (h *trackerHost) PinLs(ctx context.Context) iter.Seq2[sdk.IPFSPinInfo, error] {
	return func(yield func(sdk.IPFSPinInfo, error) bool) {
		h.mu.Lock()
		var out []sdk.IPFSPinInfo
		for k, st := range h.ipfs {
			c, err := sdk.CastCid([]byte(k))
			if err != nil {
				h.mu.Unlock()
				yield(sdk.IPFSPinInfo{}, err)
				return
			}
			out = append(out, sdk.IPFSPinInfo{Cid: c, Type: st})
		}
		h.mu.Unlock()
		for _, pi := range out {
			if err := ctx.Err(); err != nil {
				yield(sdk.IPFSPinInfo{}, err)
				return
			}
			if !yield(pi, nil) {
				return
			}
		}
	}
}

func (h *trackerHost) PinLsCids(_ context.Context, cids []sdk.Cid) ([]sdk.IPFSPinInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]sdk.IPFSPinInfo, len(cids))
	for i, c := range cids {
		out[i] = sdk.IPFSPinInfo{Cid: c, Type: h.ipfs[c.KeyString()]}
	}
	return out, nil
}
