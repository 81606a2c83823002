package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// TestConsensus runs the consensus suite. newImpl returns a new,
// unconfigured implementation; each subtest serves one behind the real
// gRPC adapters (package sdktest) and configures it with cfg (nil or empty
// means the plugin's defaults) and an environment of its own: a new peer
// ID, which is the only initial peer, and a new data folder.
//
// What it checks:
//
//   - Describe, before Configure: kind consensus, a name, protocol version
//     1, a default config that is valid JSON and that Configure accepts;
//     Close succeeds.
//   - Commit, then GetPin, GetPins and ListPins: every field of a pin is
//     kept; a pin committed again replaces the old one; a removed pin is
//     gone; a CID outside the pinset is core.ErrPinNotFound for GetPin (as
//     errors.Is sees it across the boundary) and an undefined CID in the
//     answer of GetPins, which answers in request order; a pin without a
//     CID is refused; a batch of 2,000 operations is one Commit.
//   - Watch: once a consWatcher has seen one operation, it sees every later
//     one, in commit order, flattened across events (an implementation may
//     merge commits into one event, and may send events without
//     operations, for instance a first one to say that the stream is
//     open); several watchers each see everything; a consWatcher stops when
//     its consumer stops.
//   - Peers includes this peer; Leader, when it answers, is one of Peers.
//   - The pinset survives a Close and a new instance on the same data
//     folder.
func TestConsensus(t *testing.T, newImpl func() sdk.Consensus, cfg json.RawMessage) {
	s := &consensusSuite{newImpl: newImpl, cfg: cfg}
	t.Run("Describe", s.testDescribe)
	t.Run("CommitAndRead", s.testCommitRead)
	t.Run("NotFound", s.testNotFound)
	t.Run("ReplaceAndRemove", s.testReplaceRemove)
	t.Run("LargeBatch", s.testLargeBatch)
	t.Run("WatchInOrder", s.testWatch)
	t.Run("WatchStops", s.testWatchStops)
	t.Run("PeersIncludeSelf", s.testPeers)
	t.Run("SurvivesRestart", s.testRestart)
}

type consensusSuite struct {
	newImpl func() sdk.Consensus
	cfg     json.RawMessage
}

func (s *consensusSuite) connect(t *testing.T, env sdk.Environment) sdk.Consensus {
	t.Helper()
	return sdktest.ConnectConsensus(t, s.newImpl(), s.cfg, nil, sdktest.WithEnvironment(env))
}

// consensusPin returns a pin with every field set.
func consensusPin(t testing.TB, name string, allocs ...sdk.PeerID) sdk.Pin {
	t.Helper()
	return sdk.Pin{
		PinOptions: sdk.PinOptions{
			ReplicationFactorMin: 1,
			ReplicationFactorMax: 3,
			Name:                 name,
			Mode:                 sdk.PinModeRecursive,
			UserAllocations:      allocs,
			ExpireAt:             time.Unix(1_900_000_000, 0),
			Metadata:             map[string]string{"owner": name, "k": "v"},
			Origins:              []string{"/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWGzBcBj3qXGxfnpAQDdqVnmSxz5Cbb1uhWPQiUxfaFQ4f"},
		},
		Cid:         kitCid(t),
		Type:        sdk.DataType,
		Allocations: allocs,
		MaxDepth:    -1,
		Timestamp:   time.Unix(1_700_000_000, 123_000_000),
	}
}

// pinDiff describes how got differs from want in the fields the pinset
// keeps, or returns "".
func pinDiff(got, want sdk.Pin) string {
	var d []string
	check := func(field string, ok bool) {
		if !ok {
			d = append(d, field)
		}
	}
	check("cid", got.Cid.Equals(want.Cid))
	check("name", got.Name == want.Name)
	check("type", got.Type == want.Type)
	check("mode", got.Mode == want.Mode)
	check("max_depth", got.MaxDepth == want.MaxDepth)
	check("replication_factor_min", got.ReplicationFactorMin == want.ReplicationFactorMin)
	check("replication_factor_max", got.ReplicationFactorMax == want.ReplicationFactorMax)
	check("allocations", slices.Equal(got.Allocations, want.Allocations))
	check("user_allocations", slices.Equal(got.UserAllocations, want.UserAllocations))
	check("metadata", maps.Equal(got.Metadata, want.Metadata))
	check("origins", slices.Equal(got.Origins, want.Origins))
	check("timestamp", got.Timestamp.Equal(want.Timestamp))
	check("expire_at", got.ExpireAt.Equal(want.ExpireAt))
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprintf("fields %v differ: got %+v, want %+v", d, got, want)
}

func consCommit(t *testing.T, ctx context.Context, c sdk.Consensus, ops ...sdk.PinOp) {
	t.Helper()
	if err := c.Commit(ctx, ops); err != nil {
		t.Fatalf("Commit of %d operations: %v", len(ops), err)
	}
}

func consAdd(pins ...sdk.Pin) []sdk.PinOp {
	ops := make([]sdk.PinOp, len(pins))
	for i, p := range pins {
		ops[i] = sdk.PinOp{Pin: p}
	}
	return ops
}

func consRemove(cids ...sdk.Cid) []sdk.PinOp {
	ops := make([]sdk.PinOp, len(cids))
	for i, c := range cids {
		ops[i] = sdk.PinOp{Remove: true, Pin: sdk.Pin{Cid: c}}
	}
	return ops
}

// listed reads the whole pinset into CID key -> pin, failing on a CID
// listed twice.
func consListed(t *testing.T, ctx context.Context, c sdk.Consensus) map[string]sdk.Pin {
	t.Helper()
	out := map[string]sdk.Pin{}
	for p, err := range c.ListPins(ctx) {
		if err != nil {
			t.Fatalf("ListPins: %v", err)
		}
		k := p.Cid.KeyString()
		if _, dup := out[k]; dup {
			t.Fatalf("ListPins lists %s twice", p.Cid)
		}
		out[k] = p
	}
	return out
}

func (s *consensusSuite) testDescribe(t *testing.T) {
	describeAndConfigure(t, s.newImpl(), sdk.KindConsensus, sdktest.Environment(t), nil)
}

func (s *consensusSuite) testCommitRead(t *testing.T) {
	ctx := kitContext(t)
	env := sdktest.Environment(t)
	c := s.connect(t, env)
	other := sdktest.NewPeerID(t)
	a := consensusPin(t, "a", env.PeerID, other)
	b := consensusPin(t, "b")
	b.MaxDepth = 0
	b.Mode = sdk.PinModeDirect
	consCommit(t, ctx, c, consAdd(a, b)...)
	consCommit(t, ctx, c) // no operations: nothing happens

	for _, want := range []sdk.Pin{a, b} {
		got, err := c.GetPin(ctx, want.Cid)
		if err != nil {
			t.Fatalf("GetPin(%s): %v", want.Cid, err)
		}
		if d := pinDiff(got, want); d != "" {
			t.Errorf("GetPin(%s): %s", want.Cid, d)
		}
	}
	got, err := c.GetPins(ctx, []sdk.Cid{b.Cid, a.Cid, b.Cid})
	if err != nil {
		t.Fatalf("GetPins: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("GetPins of 3 CIDs answered %d pins", len(got))
	}
	for i, want := range []sdk.Pin{b, a, b} {
		if d := pinDiff(got[i], want); d != "" {
			t.Errorf("GetPins entry %d: %s", i, d)
		}
	}
	all := consListed(t, ctx, c)
	if len(all) != 2 {
		t.Errorf("ListPins lists %d pins, want 2", len(all))
	}
	for _, want := range []sdk.Pin{a, b} {
		if d := pinDiff(all[want.Cid.KeyString()], want); d != "" {
			t.Errorf("ListPins: %s", d)
		}
	}
	if err := c.Commit(ctx, []sdk.PinOp{{Pin: sdk.Pin{PinOptions: sdk.PinOptions{Name: "no cid"}}}}); err == nil {
		t.Error("Commit accepted a pin without a CID")
	}
}

func (s *consensusSuite) testNotFound(t *testing.T) {
	ctx := kitContext(t)
	c := s.connect(t, sdktest.Environment(t))
	a := consensusPin(t, "a")
	consCommit(t, ctx, c, consAdd(a)...)
	missing := kitCid(t)
	if _, err := c.GetPin(ctx, missing); !errors.Is(err, sdk.ErrPinNotFound) {
		t.Errorf("GetPin of a CID outside the pinset: %v, want ErrPinNotFound", err)
	}
	got, err := c.GetPins(ctx, []sdk.Cid{missing, a.Cid, kitCid(t)})
	if err != nil {
		t.Fatalf("GetPins with missing CIDs: %v (they are not an error)", err)
	}
	if len(got) != 3 || got[0].Cid.Defined() || !got[1].Cid.Equals(a.Cid) || got[2].Cid.Defined() {
		t.Errorf("GetPins(missing, a, missing) = %+v: want an undefined CID for each missing one, in order", got)
	}
	if got, err := c.GetPins(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("GetPins of no CIDs: %v, %v", got, err)
	}
}

func (s *consensusSuite) testReplaceRemove(t *testing.T) {
	ctx := kitContext(t)
	c := s.connect(t, sdktest.Environment(t))
	a, b, d := consensusPin(t, "a"), consensusPin(t, "b"), consensusPin(t, "d")
	consCommit(t, ctx, c, consAdd(a, b, d)...)

	a2 := a
	a2.Name = "a, renamed"
	a2.Metadata = map[string]string{"new": "yes"}
	a2.ReplicationFactorMin, a2.ReplicationFactorMax = 2, 2
	consCommit(t, ctx, c, consAdd(a2)...)
	got, err := c.GetPin(ctx, a.Cid)
	if err != nil {
		t.Fatalf("GetPin after replacing: %v", err)
	}
	if diff := pinDiff(got, a2); diff != "" {
		t.Errorf("a pin committed again must replace the old one: %s", diff)
	}

	// A removal and an addition in one commit.
	consCommit(t, ctx, c, append(consRemove(b.Cid), consAdd(consensusPin(t, "e"))...)...)
	consCommit(t, ctx, c, consRemove(d.Cid)...)
	for _, gone := range []sdk.Cid{b.Cid, d.Cid} {
		if _, err := c.GetPin(ctx, gone); !errors.Is(err, sdk.ErrPinNotFound) {
			t.Errorf("GetPin of a removed pin: %v, want ErrPinNotFound", err)
		}
	}
	all := consListed(t, ctx, c)
	if len(all) != 2 {
		t.Errorf("ListPins lists %d pins, want 2 (a, e)", len(all))
	}
	if _, ok := all[b.Cid.KeyString()]; ok {
		t.Error("ListPins lists a removed pin")
	}
	if all[a.Cid.KeyString()].Name != a2.Name {
		t.Errorf("ListPins lists the old version of a replaced pin: %+v", all[a.Cid.KeyString()])
	}
}

func (s *consensusSuite) testLargeBatch(t *testing.T) {
	ctx := kitContext(t)
	c := s.connect(t, sdktest.Environment(t))
	const n = 2000
	pins := make([]sdk.Pin, n)
	cids := make([]sdk.Cid, n)
	for i := range pins {
		pins[i] = consensusPin(t, fmt.Sprintf("p%d", i))
		cids[i] = pins[i].Cid
	}
	consCommit(t, ctx, c, consAdd(pins...)...)
	got, err := c.GetPins(ctx, cids)
	if err != nil || len(got) != n {
		t.Fatalf("GetPins of %d CIDs: %d pins, %v", n, len(got), err)
	}
	for i := range got {
		if d := pinDiff(got[i], pins[i]); d != "" {
			t.Fatalf("GetPins entry %d: %s", i, d)
		}
	}
	consCommit(t, ctx, c, consRemove(cids[:n/2]...)...)
	all := consListed(t, ctx, c)
	if len(all) != n/2 {
		t.Fatalf("ListPins lists %d pins, want %d", len(all), n/2)
	}
	for _, p := range pins[n/2:] {
		if _, ok := all[p.Cid.KeyString()]; !ok {
			t.Fatalf("ListPins misses %s", p.Cid)
		}
	}
}

// consWatcher collects what one Watch stream delivers.
type consWatcher struct {
	ops    chan sdk.PinOp
	resync chan struct{}
	done   chan error
	cancel context.CancelFunc
}

func startConsWatcher(ctx context.Context, c sdk.Consensus) *consWatcher {
	wctx, cancel := context.WithCancel(ctx)
	w := &consWatcher{
		ops:    make(chan sdk.PinOp, 4096),
		resync: make(chan struct{}, 16),
		done:   make(chan error, 1),
		cancel: cancel,
	}
	go func() {
		for ev, err := range c.Watch(wctx) {
			if err != nil {
				if wctx.Err() != nil {
					err = nil
				}
				w.done <- err
				return
			}
			if ev.Resync {
				select {
				case w.resync <- struct{}{}:
				default:
				}
			}
			for _, op := range ev.Ops {
				select {
				case w.ops <- op:
				case <-wctx.Done():
					w.done <- nil
					return
				}
			}
		}
		w.done <- nil
	}()
	return w
}

// next returns the next operation on one of the CIDs of interest,
// skipping the others.
func (w *consWatcher) next(t *testing.T, of map[string]bool) sdk.PinOp {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case op := <-w.ops:
			if of[op.Pin.Cid.KeyString()] {
				return op
			}
		case <-w.resync:
			t.Fatal("Watch sent a resync event during a handful of commits: a consWatcher must not fall behind so easily")
		case err := <-w.done:
			t.Fatalf("Watch ended early: %v", err)
		case <-timeout:
			t.Fatal("Watch delivered nothing within 20s of a commit")
		}
	}
}

// sync commits marker pins until the consWatcher delivers one: from then on
// the consWatcher sees every commit.
func (w *consWatcher) sync(t *testing.T, ctx context.Context, c sdk.Consensus) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		marker := consensusPin(t, "marker")
		consCommit(t, ctx, c, consAdd(marker)...)
		wait := time.After(500 * time.Millisecond)
	drain:
		for {
			select {
			case op := <-w.ops:
				if op.Pin.Cid.Equals(marker.Cid) {
					return
				}
			case err := <-w.done:
				t.Fatalf("Watch ended early: %v", err)
			case <-wait:
				break drain
			}
		}
	}
	t.Fatal("Watch delivered none of the operations committed during 30s")
}

func (s *consensusSuite) testWatch(t *testing.T) {
	ctx := kitContext(t)
	c := s.connect(t, sdktest.Environment(t))
	w1, w2 := startConsWatcher(ctx, c), startConsWatcher(ctx, c)
	defer w1.cancel()
	defer w2.cancel()
	w1.sync(t, ctx, c)
	w2.sync(t, ctx, c)

	a, b, cc, d := consensusPin(t, "a"), consensusPin(t, "b"), consensusPin(t, "c"), consensusPin(t, "d")
	a2 := a
	a2.Name = "a again"
	batches := [][]sdk.PinOp{
		consAdd(a, b),
		consAdd(cc),
		consRemove(a.Cid),
		consAdd(a2),
		append(consRemove(b.Cid), consAdd(d)...),
		consRemove(cc.Cid, d.Cid),
	}
	var want []sdk.PinOp
	of := map[string]bool{}
	for _, ops := range batches {
		consCommit(t, ctx, c, ops...)
		want = append(want, ops...)
		for _, op := range ops {
			of[op.Pin.Cid.KeyString()] = true
		}
	}
	for wi, w := range []*consWatcher{w1, w2} {
		for i, exp := range want {
			got := w.next(t, of)
			if got.Remove != exp.Remove || !got.Pin.Cid.Equals(exp.Pin.Cid) || (!exp.Remove && got.Pin.Name != exp.Pin.Name) {
				t.Fatalf("watcher %d, operation %d: got remove=%t %s %q, want remove=%t %s %q (operations must arrive in commit order)",
					wi+1, i, got.Remove, got.Pin.Cid, got.Pin.Name, exp.Remove, exp.Pin.Cid, exp.Pin.Name)
			}
			if !exp.Remove {
				if d := pinDiff(got.Pin, exp.Pin); d != "" {
					t.Errorf("watcher %d, operation %d: %s", wi+1, i, d)
				}
			}
		}
	}
}

func (s *consensusSuite) testWatchStops(t *testing.T) {
	ctx := kitContext(t)
	c := s.connect(t, sdktest.Environment(t))
	w := startConsWatcher(ctx, c)
	w.sync(t, ctx, c)
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("Watch ended with %v after its consumer's context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not end within 10s of its consumer's context ending")
	}
	// Stopping early by breaking out of the loop ends the stream too.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for range c.Watch(ctx) {
			break
		}
	}()
	consCommit(t, ctx, c, consAdd(consensusPin(t, "x"))...)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("a consumer that stopped reading a Watch stream was not let go within 10s")
	}
	// The consensus still works.
	consCommit(t, ctx, c, consAdd(consensusPin(t, "y"))...)
}

func (s *consensusSuite) testPeers(t *testing.T) {
	ctx := kitContext(t)
	env := sdktest.Environment(t)
	c := s.connect(t, env)
	peers, err := c.Peers(ctx)
	if err != nil {
		t.Fatalf("Peers: %v", err)
	}
	if !slices.Contains(peers, env.PeerID) {
		t.Errorf("Peers = %v: does not include this peer (%s)", peers, env.PeerID)
	}
	for i, p := range peers {
		if slices.Contains(peers[:i], p) {
			t.Errorf("Peers lists %s twice", p)
		}
	}
	if leader, err := c.Leader(ctx); err == nil && leader != "" && !slices.Contains(peers, leader) {
		t.Errorf("Leader %s is not one of Peers %v", leader, peers)
	}
}

func (s *consensusSuite) testRestart(t *testing.T) {
	ctx := kitContext(t)
	env := sdktest.Environment(t)
	c := s.connect(t, env)
	pins := []sdk.Pin{consensusPin(t, "a"), consensusPin(t, "b"), consensusPin(t, "c")}
	consCommit(t, ctx, c, consAdd(pins...)...)
	consCommit(t, ctx, c, consRemove(pins[1].Cid)...)
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	c2 := s.connect(t, env)
	all := consListed(t, ctx, c2)
	if len(all) != 2 {
		t.Fatalf("after a restart on the same data folder ListPins lists %d pins, want 2", len(all))
	}
	for _, want := range []sdk.Pin{pins[0], pins[2]} {
		got, err := c2.GetPin(ctx, want.Cid)
		if err != nil {
			t.Fatalf("GetPin after a restart: %v", err)
		}
		if d := pinDiff(got, want); d != "" {
			t.Errorf("GetPin after a restart: %s", d)
		}
	}
	// And it keeps working.
	consCommit(t, ctx, c2, consAdd(consensusPin(t, "d"))...)
}
