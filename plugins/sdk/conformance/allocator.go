package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// AllocatorOption changes what TestAllocator feeds the allocator.
type AllocatorOption func(*allocatorSuite)

// WithMetricNames adds metric names that every candidate peer of the suite
// publishes, besides those the core's informers publish (freespace,
// reposize, pinqueue, numpin and tag:group). Use it for an allocator that
// orders peers by a metric of its own. The metrics it adds are numeric,
// non-partitionable and of positive weight, like freespace.
func WithMetricNames(names ...string) AllocatorOption {
	return func(s *allocatorSuite) { s.extra = append(s.extra, names...) }
}

// TestAllocator runs the allocator suite. newImpl returns a new,
// unconfigured implementation; each subtest serves one behind the real
// gRPC adapters (package sdktest) and configures it with cfg (nil or empty
// means the plugin's defaults).
//
// The candidate peers of the suite publish valid metrics of every name the
// core's informers publish (and of WithMetricNames); other peers publish
// only invalid or expired metrics, or none at all. What it checks:
//
//   - Describe, before Configure: kind allocator, a name, protocol version
//     1 among those listed, a default config that is valid JSON and that
//     Configure accepts; Configure may be called again; Close succeeds.
//   - For every pin: no more than Wanted peers, no peer twice, never one of
//     the pin's Current peers, never a peer without a valid, unexpired
//     metric; at least Needed peers when there are enough candidates, and
//     otherwise an error for that pin alone (the other pins of the request
//     are answered normally); the pin's Priority peers that are candidates
//     come before any other peer.
//   - One result per pin, in request order: a batch gets the answers its
//     pins get one at a time, and an empty request an empty answer.
//   - Determinism: equal requests get equal answers, whatever the order of
//     the metrics in the request.
func TestAllocator(t *testing.T, newImpl func() sdk.Allocator, cfg json.RawMessage, opts ...AllocatorOption) {
	s := &allocatorSuite{newImpl: newImpl, cfg: cfg}
	for _, o := range opts {
		o(s)
	}
	t.Run("Describe", s.testDescribe)
	t.Run("ConfigureAndClose", s.testConfigureClose)
	t.Run("Limits", s.testLimits)
	t.Run("NeverCurrentPeers", s.testNeverCurrent)
	t.Run("OnlyPeersWithValidMetrics", s.testOnlyValid)
	t.Run("NotEnoughPeersIsAPerPinError", s.testNotEnough)
	t.Run("PriorityPeersFirst", s.testPriority)
	t.Run("BatchInOrder", s.testBatch)
	t.Run("EmptyRequest", s.testEmpty)
	t.Run("Deterministic", s.testDeterministic)
}

type allocatorSuite struct {
	newImpl func() sdk.Allocator
	cfg     json.RawMessage
	extra   []string
}

// kitTimeout bounds the calls of one subtest of the allocator, consensus
// and pin tracker suites.
const kitTimeout = 60 * time.Second

// kitContext returns a context that ends with the subtest.
func kitContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), kitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// kitCid returns the CID of random content.
func kitCid(t testing.TB) sdk.Cid {
	t.Helper()
	buf := make([]byte, 32)
	for i := range buf {
		buf[i] = byte(rand.Uint32())
	}
	sum, err := mh.Sum(buf, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.CastCid(cid.NewCidV1(cid.Raw, sum).Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kitPeers returns n new peer IDs.
func kitPeers(t testing.TB, n int) []sdk.PeerID {
	t.Helper()
	out := make([]sdk.PeerID, n)
	for i := range out {
		out[i] = sdktest.NewPeerID(t)
	}
	return out
}

// checkDescription checks what every kind's Describe must say.
func checkDescription(t *testing.T, d sdk.Description, kind sdk.Kind) {
	t.Helper()
	if d.Kind != kind {
		t.Errorf("Describe: kind %q, want %q", d.Kind, kind)
	}
	if d.Name == "" {
		t.Error("Describe: empty name")
	}
	if !slices.Contains(d.ProtocolVersions, sdk.ProtocolVersion) {
		t.Errorf("Describe: protocol versions %v do not include %d", d.ProtocolVersions, sdk.ProtocolVersion)
	}
	if len(bytes.TrimSpace(d.DefaultConfig)) > 0 && !json.Valid(d.DefaultConfig) {
		t.Errorf("Describe: the default config is not valid JSON: %s", d.DefaultConfig)
	}
}

// describeAndConfigure serves p without configuring it, checks its
// Describe, then configures it with its default config. It returns the
// description.
func describeAndConfigure(t *testing.T, p sdk.Plugin, kind sdk.Kind, env sdk.Environment, host sdk.Host) sdk.Description {
	t.Helper()
	ctx := kitContext(t)
	c := sdktest.Connect[sdk.Plugin](t, p, nil, nil, sdktest.WithoutConfigure())
	d, err := c.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe before Configure: %v", err)
	}
	checkDescription(t, d, kind)
	if err := c.Configure(ctx, d.DefaultConfig, env, host); err != nil {
		t.Fatalf("Configure with the default config of Describe (%s): %v", d.DefaultConfig, err)
	}
	again, err := c.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe after Configure: %v", err)
	}
	if again.Kind != d.Kind || again.Name != d.Name {
		t.Errorf("Describe changed after Configure: %s %q, then %s %q", d.Kind, d.Name, again.Kind, again.Name)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return d
}

func (s *allocatorSuite) connect(t *testing.T) sdk.Allocator {
	t.Helper()
	return sdktest.ConnectAllocator(t, s.newImpl(), s.cfg, nil)
}

// metricNames are the names every candidate peer publishes.
func (s *allocatorSuite) metricNames() []string {
	return append([]string{"freespace", "reposize", "pinqueue", "numpin", "tag:group"}, s.extra...)
}

// metricsOf returns valid metrics of every name for each peer, with values
// that differ between peers (i is the peer's rank) so that ordering
// allocators have something to order by.
func (s *allocatorSuite) metricsOf(peers []sdk.PeerID) []sdk.Metric {
	now := time.Now()
	var out []sdk.Metric
	for i, p := range peers {
		for _, name := range s.metricNames() {
			m := sdk.Metric{
				Name: name, Peer: p, Valid: true,
				Expire:     now.Add(10 * time.Minute).UnixNano(),
				ReceivedAt: now.UnixNano(),
			}
			switch name {
			case "tag:group":
				m.Value = "group-" + strconv.Itoa(i%3)
				m.Partitionable = true
			case "pinqueue", "reposize":
				m.Value = strconv.Itoa(i * 10)
				m.Weight = -int64(i * 10)
			case "numpin":
				m.Value = strconv.Itoa(i)
			default:
				w := int64(1_000_000 + 7919*((i*31)%len(peers)))
				m.Value = strconv.FormatInt(w, 10)
				m.Weight = w
			}
			out = append(out, m)
		}
	}
	return out
}

// unusableMetrics returns, for each peer, metrics of every name that are
// invalid (even index) or expired (odd index).
func (s *allocatorSuite) unusableMetrics(peers []sdk.PeerID) []sdk.Metric {
	out := s.metricsOf(peers)
	now := time.Now()
	for i := range out {
		if slices.Index(peers, out[i].Peer)%2 == 0 {
			out[i].Valid = false
		} else {
			out[i].Expire = now.Add(-time.Minute).UnixNano()
			out[i].ReceivedAt = now.Add(-2 * time.Minute).UnixNano()
		}
	}
	return out
}

func allocateOK(t *testing.T, a sdk.Allocator, req sdk.AllocateRequest) []sdk.AllocateResult {
	t.Helper()
	res, err := a.Allocate(kitContext(t), req)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	if len(res) != len(req.Pins) {
		t.Fatalf("Allocate answered %d results for %d pins", len(res), len(req.Pins))
	}
	return res
}

// checkResult checks one result against its pin: the rules that hold
// whatever the allocator's policy. candidates are the peers with valid
// metrics.
func checkResult(t *testing.T, i int, pa sdk.PinAllocation, r sdk.AllocateResult, candidates []sdk.PeerID) {
	t.Helper()
	if r.Error != "" {
		if len(r.Peers) > 0 {
			t.Errorf("pin %d: an error (%q) and peers %v", i, r.Error, r.Peers)
		}
		return
	}
	if len(r.Peers) > pa.Wanted {
		t.Errorf("pin %d: %d peers, more than Wanted (%d)", i, len(r.Peers), pa.Wanted)
	}
	if len(r.Peers) < pa.Needed {
		t.Errorf("pin %d: %d peers, fewer than Needed (%d), without an error", i, len(r.Peers), pa.Needed)
	}
	for j, p := range r.Peers {
		if slices.Contains(r.Peers[:j], p) {
			t.Errorf("pin %d: peer %s returned twice", i, p)
		}
		if slices.Contains(pa.Current, p) {
			t.Errorf("pin %d: peer %s is one of the pin's Current peers", i, p)
		}
		if !slices.Contains(candidates, p) {
			t.Errorf("pin %d: peer %s has no valid metric in the request", i, p)
		}
	}
}

func (s *allocatorSuite) testDescribe(t *testing.T) {
	describeAndConfigure(t, s.newImpl(), sdk.KindAllocator, sdktest.Environment(t), nil)
}

func (s *allocatorSuite) testConfigureClose(t *testing.T) {
	ctx := kitContext(t)
	a := s.connect(t)
	peers := kitPeers(t, 4)
	req := sdk.AllocateRequest{Metrics: s.metricsOf(peers), Pins: []sdk.PinAllocation{{Cid: kitCid(t), Needed: 1, Wanted: 2}}}
	first := allocateOK(t, a, req)
	// The core configures a plugin again after restarting it.
	if err := a.Configure(ctx, s.cfg, sdktest.Environment(t), nil); err != nil {
		t.Fatalf("second Configure: %v", err)
	}
	again := allocateOK(t, a, req)
	checkResult(t, 0, req.Pins[0], again[0], peers)
	if !resultsEqual(first, again) {
		t.Errorf("the same request got %v, then %v after Configure with the same config", first, again)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func (s *allocatorSuite) testLimits(t *testing.T) {
	a := s.connect(t)
	peers := kitPeers(t, 8)
	req := sdk.AllocateRequest{Metrics: s.metricsOf(peers)}
	for _, nw := range [][2]int{{1, 1}, {1, 3}, {2, 2}, {3, 8}, {8, 8}, {1, 20}, {5, 20}} {
		req.Pins = append(req.Pins, sdk.PinAllocation{Cid: kitCid(t), Needed: nw[0], Wanted: nw[1]})
	}
	res := allocateOK(t, a, req)
	for i, r := range res {
		pa := req.Pins[i]
		if r.Error != "" {
			t.Errorf("pin %d (needed %d, wanted %d of 8 candidates): unexpected error %q", i, pa.Needed, pa.Wanted, r.Error)
			continue
		}
		checkResult(t, i, pa, r, peers)
	}
}

func (s *allocatorSuite) testNeverCurrent(t *testing.T) {
	a := s.connect(t)
	peers := kitPeers(t, 6)
	req := sdk.AllocateRequest{Metrics: s.metricsOf(peers)}
	for k := 1; k <= 4; k++ {
		// Each pin holds k of the peers already; every other peer is wanted.
		current := slices.Clone(peers[len(peers)-k:])
		req.Pins = append(req.Pins, sdk.PinAllocation{Cid: kitCid(t), Current: current, Needed: len(peers) - k, Wanted: len(peers)})
	}
	res := allocateOK(t, a, req)
	for i, r := range res {
		pa := req.Pins[i]
		if r.Error != "" {
			t.Errorf("pin %d: unexpected error %q", i, r.Error)
			continue
		}
		checkResult(t, i, pa, r, peers)
		if len(r.Peers) != len(peers)-len(pa.Current) {
			t.Errorf("pin %d: %d peers, want every one of the %d that are not current", i, len(r.Peers), len(peers)-len(pa.Current))
		}
	}
}

func (s *allocatorSuite) testOnlyValid(t *testing.T) {
	a := s.connect(t)
	good := kitPeers(t, 3)
	bad := kitPeers(t, 4)
	absent := kitPeers(t, 2) // no metrics at all
	metrics := append(s.metricsOf(good), s.unusableMetrics(bad)...)
	rand.Shuffle(len(metrics), func(i, j int) { metrics[i], metrics[j] = metrics[j], metrics[i] })
	req := sdk.AllocateRequest{Metrics: metrics, Pins: []sdk.PinAllocation{
		{Cid: kitCid(t), Needed: 1, Wanted: 9},
		// Peers without valid metrics asked for by the user are still
		// not usable.
		{Cid: kitCid(t), Priority: append(slices.Clone(bad), absent...), Needed: 1, Wanted: 9},
	}}
	res := allocateOK(t, a, req)
	for i, r := range res {
		if r.Error != "" {
			t.Errorf("pin %d: unexpected error %q (3 usable peers)", i, r.Error)
			continue
		}
		checkResult(t, i, req.Pins[i], r, good)
		if len(r.Peers) != len(good) {
			t.Errorf("pin %d: %d peers, want the %d usable ones", i, len(r.Peers), len(good))
		}
	}
}

func (s *allocatorSuite) testNotEnough(t *testing.T) {
	a := s.connect(t)
	peers := kitPeers(t, 3)
	other := kitPeers(t, 2)
	req := sdk.AllocateRequest{Metrics: append(s.metricsOf(peers), s.unusableMetrics(other)...), Pins: []sdk.PinAllocation{
		{Cid: kitCid(t), Needed: 1, Wanted: 2},
		{Cid: kitCid(t), Needed: 4, Wanted: 5},                                      // 3 candidates only
		{Cid: kitCid(t), Current: peers[:2], Needed: 2, Wanted: 2},                  // 1 left
		{Cid: kitCid(t), Priority: other, Current: peers[:1], Needed: 3, Wanted: 3}, // the priority peers are unusable
		{Cid: kitCid(t), Current: peers[:1], Needed: 2, Wanted: 3},                  // exactly enough
		{Cid: kitCid(t), Needed: 1, Wanted: 1},
	}}
	res := allocateOK(t, a, req)
	for i, r := range res {
		pa := req.Pins[i]
		switch i {
		case 1, 2, 3:
			if r.Error == "" {
				t.Errorf("pin %d: needed %d peers of %d candidates (%d current), got %v and no error",
					i, pa.Needed, len(peers), len(pa.Current), r.Peers)
			}
		default:
			if r.Error != "" {
				t.Errorf("pin %d: unexpected error %q: another pin of the request lacked peers, not this one", i, r.Error)
				continue
			}
			checkResult(t, i, pa, r, peers)
		}
	}
}

func (s *allocatorSuite) testPriority(t *testing.T) {
	a := s.connect(t)
	peers := kitPeers(t, 8)
	req := sdk.AllocateRequest{Metrics: s.metricsOf(peers)}
	// Each pin prefers another pair of peers, so that no policy puts
	// every pair first by itself.
	for k := range peers {
		prio := []sdk.PeerID{peers[k], peers[(k+3)%len(peers)]}
		req.Pins = append(req.Pins, sdk.PinAllocation{Cid: kitCid(t), Priority: prio, Needed: 1, Wanted: 1 + k%4})
	}
	// A current peer among the priority peers stays out.
	req.Pins = append(req.Pins, sdk.PinAllocation{
		Cid: kitCid(t), Priority: []sdk.PeerID{peers[7], peers[5]}, Current: []sdk.PeerID{peers[7]}, Needed: 1, Wanted: 3,
	})
	res := allocateOK(t, a, req)
	for i, r := range res {
		pa := req.Pins[i]
		if r.Error != "" {
			t.Errorf("pin %d: unexpected error %q", i, r.Error)
			continue
		}
		checkResult(t, i, pa, r, peers)
		var usable []sdk.PeerID
		for _, p := range pa.Priority {
			if !slices.Contains(pa.Current, p) {
				usable = append(usable, p)
			}
		}
		n := min(len(usable), len(r.Peers))
		for _, p := range r.Peers[:n] {
			if !slices.Contains(usable, p) {
				t.Errorf("pin %d: got %v: the priority peers %v must come first", i, r.Peers, usable)
				break
			}
		}
	}
}

func (s *allocatorSuite) testBatch(t *testing.T) {
	a := s.connect(t)
	peers := kitPeers(t, 12)
	req := sdk.AllocateRequest{Metrics: s.metricsOf(peers)}
	for i := range 300 {
		pa := sdk.PinAllocation{Cid: kitCid(t), Needed: 1 + i%3}
		pa.Wanted = pa.Needed + i%5
		if i%4 == 1 {
			pa.Current = []sdk.PeerID{peers[i%len(peers)], peers[(i+5)%len(peers)]}
		}
		if i%7 == 2 {
			pa.Priority = []sdk.PeerID{peers[(i+3)%len(peers)]}
		}
		if i%50 == 7 {
			pa.Needed, pa.Wanted = 20, 20 // an error among the answers
		}
		req.Pins = append(req.Pins, pa)
	}
	res := allocateOK(t, a, req)
	for i, r := range res {
		checkResult(t, i, req.Pins[i], r, peers)
		if (r.Error != "") != (req.Pins[i].Needed == 20) {
			t.Errorf("pin %d: error %q with %d candidates for %d needed", i, r.Error, len(peers), req.Pins[i].Needed)
		}
	}
	// One result per pin, in order: each pin asked alone gets the answer
	// it got in the batch.
	for _, i := range []int{0, 1, 2, 7, 57, 98, 150, 299} {
		alone := allocateOK(t, a, sdk.AllocateRequest{Metrics: req.Metrics, Pins: req.Pins[i : i+1]})
		if !resultsEqual(alone, res[i:i+1]) {
			t.Errorf("pin %d: got %v in the batch, %v alone: results must be in request order, and a pin's answer must not depend on the other pins", i, res[i], alone[0])
		}
	}
}

func (s *allocatorSuite) testEmpty(t *testing.T) {
	a := s.connect(t)
	res, err := a.Allocate(kitContext(t), sdk.AllocateRequest{Metrics: s.metricsOf(kitPeers(t, 2))})
	if err != nil || len(res) != 0 {
		t.Fatalf("a request without pins: %v, %v; want no results and no error", res, err)
	}
	res = allocateOK(t, a, sdk.AllocateRequest{Pins: []sdk.PinAllocation{{Cid: kitCid(t), Needed: 1, Wanted: 1}}})
	if res[0].Error == "" {
		t.Errorf("a request without metrics got peers %v: there is no usable peer", res[0].Peers)
	}
}

func (s *allocatorSuite) testDeterministic(t *testing.T) {
	a := s.connect(t)
	peers := kitPeers(t, 10)
	req := sdk.AllocateRequest{Metrics: s.metricsOf(peers)}
	for i := range 40 {
		pa := sdk.PinAllocation{Cid: kitCid(t), Needed: 1, Wanted: 1 + i%4}
		if i%3 == 0 {
			pa.Current = []sdk.PeerID{peers[i%len(peers)]}
		}
		req.Pins = append(req.Pins, pa)
	}
	first := allocateOK(t, a, req)
	for round := range 3 {
		shuffled := req
		shuffled.Metrics = slices.Clone(req.Metrics)
		rand.Shuffle(len(shuffled.Metrics), func(i, j int) {
			shuffled.Metrics[i], shuffled.Metrics[j] = shuffled.Metrics[j], shuffled.Metrics[i]
		})
		got := allocateOK(t, a, shuffled)
		if !resultsEqual(first, got) {
			t.Fatalf("round %d: the same request (metrics in another order) got different answers:\n%v\n%v", round, first, got)
		}
	}
	// A new instance answers the same.
	other := allocateOK(t, s.connect(t), req)
	if !resultsEqual(first, other) {
		t.Fatalf("two instances with the same config answer the same request differently:\n%v\n%v", first, other)
	}
}

func resultsEqual(a, b []sdk.AllocateResult) bool {
	return slices.EqualFunc(a, b, func(x, y sdk.AllocateResult) bool {
		return x.Error == y.Error && slices.Equal(x.Peers, y.Peers)
	})
}
