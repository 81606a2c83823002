package balanced

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
)

var testNow = time.Unix(1_800_000_000, 0)

// names maps the peer IDs made by pid back to their test names.
var names = map[core.PeerID]string{}

// pid returns a valid peer ID (an identity multihash) for a test name.
func pid(name string) core.PeerID {
	mh, err := multihash.Sum([]byte(name), multihash.IDENTITY, -1)
	if err != nil {
		panic(err)
	}
	id := peer.ID(mh)
	names[id] = name
	return id
}

func pids(ns ...string) []core.PeerID {
	out := make([]core.PeerID, len(ns))
	for i, n := range ns {
		out[i] = pid(n)
	}
	return out
}

func nameList(ps []core.PeerID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = names[p]
	}
	return out
}

func metric(name, p, value string, weight int64, partitionable bool) core.Metric {
	return core.Metric{
		Name: name, Peer: pid(p), Value: value, Weight: weight, Partitionable: partitionable,
		Valid: true, Expire: testNow.Add(30 * time.Second).UnixNano(), ReceivedAt: testNow.UnixNano(),
	}
}

func tag(p, group string) core.Metric { return metric("tag:group", p, group, 0, true) }

func free(p string, n int64) core.Metric {
	return metric("freespace", p, strconv.FormatInt(n, 10), n, false)
}

func newAllocator(t testing.TB, cfg string) *Allocator {
	t.Helper()
	a := New()
	a.now = func() time.Time { return testNow }
	if err := a.Configure(context.Background(), json.RawMessage(cfg), core.Environment{}, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

func allocate(t *testing.T, a core.Allocator, metrics []core.Metric, pins ...core.PinAllocation) []core.AllocateResult {
	t.Helper()
	res, err := a.Allocate(context.Background(), core.AllocateRequest{Metrics: metrics, Pins: pins})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(pins) {
		t.Fatalf("%d results for %d pins", len(res), len(pins))
	}
	return res
}

// connector returns a configured allocator: the implementation itself, or
// its client adapter across the plugin boundary (see sdk_test.go).
type connector func(t testing.TB, cfg string) core.Allocator

func direct(t testing.TB, cfg string) core.Allocator { return newAllocator(t, cfg) }

// scenarios run both directly and through the plugin boundary.
var scenarios = []struct {
	name string
	run  func(*testing.T, connector)
}{
	{"GroupsAlternateByTotalFreeSpace", scenarioGroupsAlternateByTotalFreeSpace},
	{"PartitionWeightBeforeAggregatedWeight", scenarioPartitionWeightBeforeAggregatedWeight},
	{"ValueBreaksTies", scenarioValueBreaksTies},
	{"PartitionableLastLevelGroupsPeers", scenarioPartitionableLastLevelGroupsPeers},
	{"SingleNonPartitionableMetric", scenarioSingleNonPartitionableMetric},
	{"ThreeLevels", scenarioThreeLevels},
	{"InvalidExpiredAndIncompleteMetricsAreIgnored", scenarioInvalidExpiredAndIncompleteMetricsAreIgnored},
	{"LatestMetricOfAPeerWins", scenarioLatestMetricOfAPeerWins},
	{"PriorityPeersFirst", scenarioPriorityPeersFirst},
	{"CurrentPeersAreExcluded", scenarioCurrentPeersAreExcluded},
	{"ExclusionReordersGroups", scenarioExclusionReordersGroups},
	{"NeededAndWanted", scenarioNeededAndWanted},
	{"NoMetrics", scenarioNoMetrics},
	{"Deterministic", scenarioDeterministic},
	{"BatchEqualsSeparateRequests", scenarioBatchEqualsSeparateRequests},
}

func TestScenarios(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) { s.run(t, direct) })
	}
}

func want(n int) core.PinAllocation { return core.PinAllocation{Needed: 1, Wanted: n} }

func expectPeers(t *testing.T, r core.AllocateResult, want ...string) {
	t.Helper()
	if r.Error != "" {
		t.Fatalf("unexpected error: %s", r.Error)
	}
	if got := nameList(r.Peers); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// groupedMetrics: three groups; C has the most free space in total (200),
// then A (160), then B (150).
func groupedMetrics() []core.Metric {
	return []core.Metric{
		tag("a1", "A"), free("a1", 100),
		tag("a2", "A"), free("a2", 50),
		tag("a3", "A"), free("a3", 10),
		tag("b1", "B"), free("b1", 120),
		tag("b2", "B"), free("b2", 30),
		tag("c1", "C"), free("c1", 200),
	}
}

func TestDescribe(t *testing.T) {
	d, err := New().Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != core.KindAllocator || d.Name != "balanced" || d.Version != "1.0.0" ||
		!slices.Equal(d.ProtocolVersions, []int{core.ProtocolVersion}) {
		t.Fatalf("unexpected description %+v", d)
	}
	if _, err := ParseConfig(d.DefaultConfig); err != nil {
		t.Fatalf("default config does not parse: %v", err)
	}
}

func TestNotConfigured(t *testing.T) {
	if _, err := New().Allocate(context.Background(), core.AllocateRequest{}); err == nil {
		t.Fatal("Allocate before Configure must fail")
	}
}

func TestConfigureRejectsBadConfig(t *testing.T) {
	err := New().Configure(context.Background(), json.RawMessage(`{"allocate":["x"]}`), core.Environment{}, nil)
	if err == nil || !strings.Contains(err.Error(), `"allocate"`) {
		t.Fatalf("got %v", err)
	}
}

// The effect described in spec §13.10: groups are ordered by their total
// free space, consecutive allocations alternate between groups and within a
// group the peer with most free space goes first.
func scenarioGroupsAlternateByTotalFreeSpace(t *testing.T, connect connector) {
	a := connect(t, "")
	r := allocate(t, a, groupedMetrics(), want(10))
	expectPeers(t, r[0], "c1", "a1", "b1", "a2", "b2", "a3")

	// Three replicas of a pin land in three different groups.
	r = allocate(t, a, groupedMetrics(), core.PinAllocation{Needed: 3, Wanted: 3})
	expectPeers(t, r[0], "c1", "a1", "b1")
}

func scenarioPartitionWeightBeforeAggregatedWeight(t *testing.T, connect connector) {
	// A partitionable metric with weights: its partitions sort by their
	// own weight first, the free space below them only breaks ties.
	m := []core.Metric{
		metric("tag:tier", "x1", "fast", 5, true), free("x1", 1),
		metric("tag:tier", "y1", "slow", 1, true), free("y1", 1000),
		metric("tag:tier", "y2", "slow", 1, true), free("y2", 2000),
	}
	a := connect(t, `{"allocate_by":["tag:tier","freespace"]}`)
	// fast weighs 5, slow 2: fast first, then slow's peers by free space.
	expectPeers(t, allocate(t, a, m, want(3))[0], "x1", "y2", "y1")
}

func scenarioValueBreaksTies(t *testing.T, connect connector) {
	// Equal weight and equal aggregated weight: value ascending.
	m := []core.Metric{
		tag("p1", "zeta"), free("p1", 10),
		tag("p2", "alpha"), free("p2", 10),
		tag("p3", "mid"), free("p3", 10),
	}
	a := connect(t, "")
	expectPeers(t, allocate(t, a, m, want(3))[0], "p2", "p3", "p1")
}

func scenarioPartitionableLastLevelGroupsPeers(t *testing.T, connect connector) {
	// With a partitionable metric last, peers of equal value share one
	// partition and come out in peer ID order.
	m := []core.Metric{
		metric("tag:rack", "r1", "r", 0, true),
		metric("tag:rack", "r2", "r", 0, true),
		metric("tag:rack", "s1", "s", 0, true),
	}
	a := connect(t, `{"allocate_by":["tag:rack"]}`)
	expectPeers(t, allocate(t, a, m, want(3))[0], "r1", "s1", "r2")
}

func scenarioSingleNonPartitionableMetric(t *testing.T, connect connector) {
	m := []core.Metric{free("p1", 10), free("p2", 30), free("p3", 20)}
	a := connect(t, `{"allocate_by":["freespace"]}`)
	expectPeers(t, allocate(t, a, m, want(3))[0], "p2", "p3", "p1")
}

func scenarioThreeLevels(t *testing.T, connect connector) {
	m := []core.Metric{}
	add := func(p, region, group string, fs int64) {
		m = append(m, metric("tag:region", p, region, 0, true), tag(p, group), free(p, fs))
	}
	add("eu-a-1", "eu", "a", 100)
	add("eu-a-2", "eu", "a", 90)
	add("eu-b-1", "eu", "b", 500)
	add("us-a-1", "us", "a", 50)
	add("us-c-1", "us", "c", 40)
	a := connect(t, `{"allocate_by":["tag:region","tag:group","freespace"]}`)
	// eu (690) before us (90); within eu, b (500) before a (190); within
	// us, a (50) before c (40).
	expectPeers(t, allocate(t, a, m, want(5))[0], "eu-b-1", "us-a-1", "eu-a-1", "us-c-1", "eu-a-2")
}

func scenarioInvalidExpiredAndIncompleteMetricsAreIgnored(t *testing.T, connect connector) {
	m := groupedMetrics()
	invalid := free("d1", 1000)
	invalid.Valid = false
	expired := free("d2", 1000)
	expired.Expire = testNow.Add(-time.Second).UnixNano()
	m = append(m,
		tag("d1", "D"), invalid, // invalid freespace
		tag("d2", "D"), expired, // expired freespace
		free("d3", 1000),                                       // no tag metric
		tag("d4", "D"),                                         // no freespace metric
		metric("other", "d5", "9", 9, false), free("d5", 1000), // wrong metric name, no tag
		core.Metric{Name: "freespace", Value: "5", Valid: true}, // no peer
	)
	a := connect(t, "")
	expectPeers(t, allocate(t, a, m, want(10))[0], "c1", "a1", "b1", "a2", "b2", "a3")
}

func scenarioLatestMetricOfAPeerWins(t *testing.T, connect connector) {
	old := free("a3", 10_000)
	old.ReceivedAt = testNow.Add(-10 * time.Second).UnixNano()
	// a3's old metric says it has most space; its newer one (10) wins.
	m := append([]core.Metric{old}, groupedMetrics()...)
	a := connect(t, "")
	expectPeers(t, allocate(t, a, m, want(10))[0], "c1", "a1", "b1", "a2", "b2", "a3")
}

func scenarioPriorityPeersFirst(t *testing.T, connect connector) {
	a := connect(t, "")
	pa := core.PinAllocation{
		Priority: pids("b2", "a3", "nometrics"),
		Needed:   2, Wanted: 10,
	}
	// Priority peers are ordered among themselves (group A weighs 10, B
	// 30: b2 first), the peer without metrics is ignored, then the others.
	r := allocate(t, a, groupedMetrics(), pa)
	expectPeers(t, r[0], "b2", "a3", "c1", "a1", "b1", "a2")

	// Wanted cuts into the priority peers too.
	pa.Wanted = 1
	expectPeers(t, allocate(t, a, groupedMetrics(), pa)[0], "b2")
}

func scenarioCurrentPeersAreExcluded(t *testing.T, connect connector) {
	a := connect(t, "")
	pa := core.PinAllocation{Current: pids("c1", "a1"), Priority: pids("a1", "b2"), Needed: 1, Wanted: 10}
	// a1 is current, so not a priority peer; b2 is the only priority peer.
	// The candidates left are a2, a3 (group A, 60) and b1 (group B, 120).
	expectPeers(t, allocate(t, a, groupedMetrics(), pa)[0], "b2", "b1", "a2", "a3")
}

func scenarioExclusionReordersGroups(t *testing.T, connect connector) {
	// The order of the remaining peers is computed as if the excluded ones
	// did not exist: without a1, group A (60) falls behind B (150).
	a := connect(t, "")
	r := allocate(t, a, groupedMetrics(),
		want(10),
		core.PinAllocation{Current: pids("a1"), Needed: 1, Wanted: 10},
		want(10),
	)
	expectPeers(t, r[0], "c1", "a1", "b1", "a2", "b2", "a3")
	expectPeers(t, r[1], "c1", "b1", "a2", "b2", "a3")
	expectPeers(t, r[2], "c1", "a1", "b1", "a2", "b2", "a3")
}

func scenarioNeededAndWanted(t *testing.T, connect connector) {
	a := connect(t, "")
	m := groupedMetrics()
	r := allocate(t, a, m,
		core.PinAllocation{Needed: 2, Wanted: 4},
		core.PinAllocation{Needed: 6, Wanted: 6},
		core.PinAllocation{Needed: 7, Wanted: 9},
		core.PinAllocation{Current: pids("a1", "b1"), Needed: 5, Wanted: 5},
		core.PinAllocation{Needed: 0, Wanted: 0},
	)
	expectPeers(t, r[0], "c1", "a1", "b1", "a2")
	expectPeers(t, r[1], "c1", "a1", "b1", "a2", "b2", "a3")
	if want := "not enough peers to allocate CID. Needed at least: 7. Wanted at most: 9. Available candidates: 6. See logs for more info."; r[2].Error != want || len(r[2].Peers) != 0 {
		t.Fatalf("got %+v, want error %q", r[2], want)
	}
	if want := "not enough peers to allocate CID. Needed at least: 5. Wanted at most: 5. Available candidates: 4. See logs for more info."; r[3].Error != want {
		t.Fatalf("got %+v, want error %q", r[3], want)
	}
	expectPeers(t, r[4])
}

func scenarioNoMetrics(t *testing.T, connect connector) {
	a := connect(t, "")
	r := allocate(t, a, nil, core.PinAllocation{Needed: 1, Wanted: 2})
	if !strings.Contains(r[0].Error, "Available candidates: 0.") {
		t.Fatalf("got %+v", r[0])
	}
}

func scenarioDeterministic(t *testing.T, connect connector) {
	a := connect(t, "")
	// Peers tied on every key: the order must not depend on the order of
	// the metrics in the request.
	var m []core.Metric
	for i := range 12 {
		p := fmt.Sprintf("p%02d", i)
		m = append(m, tag(p, []string{"x", "y", "z"}[i%3]), free(p, int64(100*(i%2))))
	}
	first := allocate(t, a, m, want(12))[0]
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		rng.Shuffle(len(m), func(i, j int) { m[i], m[j] = m[j], m[i] })
		if r := allocate(t, a, m, want(12))[0]; !slices.Equal(r.Peers, first.Peers) {
			t.Fatalf("order changed with metric order: %v vs %v", nameList(r.Peers), nameList(first.Peers))
		}
	}
}

// Reusing the request's tree for a subset must give the order a tree built
// from the subset's metrics alone gives.
func TestSubsetOrderEqualsFreshTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	by := []string{"tag:region", "tag:group", "freespace"}
	for round := range 200 {
		var m []core.Metric
		var all []core.PeerID
		n := 1 + rng.IntN(30)
		for i := range n {
			p := fmt.Sprintf("r%d-p%d", round, i)
			all = append(all, pid(p))
			m = append(m,
				metric("tag:region", p, fmt.Sprint(rng.IntN(3)), int64(rng.IntN(3)), true),
				metric("tag:group", p, fmt.Sprint(rng.IntN(4)), 0, true),
				metric("freespace", p, "", int64(rng.IntN(5)*100), rng.IntN(4) == 0),
			)
		}
		full := newTree(by, m, testNow)
		var excluded []int
		var keep []core.Metric
		drop := map[core.PeerID]bool{}
		for _, p := range all {
			if rng.IntN(3) == 0 {
				excluded = append(excluded, full.index[p])
				drop[p] = true
			}
		}
		for _, mm := range m {
			if !drop[mm.Peer] {
				keep = append(keep, mm)
			}
		}
		slices.Sort(excluded)
		got := full.order('c', excluded)
		wantOrder := newTree(by, keep, testNow).order('c', nil)
		if !slices.Equal(got, wantOrder) {
			t.Fatalf("round %d: subset order %v, fresh tree %v", round, nameList(got), nameList(wantOrder))
		}
		// The priority form (only the listed peers) is the complement.
		var listed []int
		for i := range full.peers {
			if !slices.Contains(excluded, i) {
				listed = append(listed, i)
			}
		}
		if got := full.order('p', listed); !slices.Equal(got, wantOrder) {
			t.Fatalf("round %d: listed order %v, fresh tree %v", round, nameList(got), nameList(wantOrder))
		}
	}
}

func scenarioBatchEqualsSeparateRequests(t *testing.T, connect connector) {
	a := connect(t, "")
	m := groupedMetrics()
	all := pids("a1", "a2", "a3", "b1", "b2", "c1")
	rng := rand.New(rand.NewPCG(3, 4))
	var pins []core.PinAllocation
	for range 300 {
		var cur, prio []core.PeerID
		for _, p := range all {
			switch rng.IntN(6) {
			case 0:
				cur = append(cur, p)
			case 1:
				prio = append(prio, p)
			}
		}
		pins = append(pins, core.PinAllocation{Current: cur, Priority: prio, Needed: rng.IntN(4), Wanted: 1 + rng.IntN(6)})
	}
	batch := allocate(t, a, m, pins...)
	for i, pa := range pins {
		if one := allocate(t, a, m, pa); !reflect.DeepEqual(one[0], batch[i]) {
			t.Fatalf("pin %d: batch %+v, alone %+v", i, batch[i], one[0])
		}
	}
}

func TestAllocateHonoursContext(t *testing.T) {
	a := newAllocator(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Allocate(ctx, core.AllocateRequest{Pins: []core.PinAllocation{want(1)}}); err == nil {
		t.Fatal("expected the context error")
	}
}

// BenchmarkAllocate10kPins100Peers allocates a batch of 10,000 pins over 100
// peers in 10 groups; one pin in five already has one or two allocations.
func BenchmarkAllocate10kPins100Peers(b *testing.B) { benchmarkAllocate(b, direct) }

func benchmarkAllocate(b *testing.B, connect connector) {
	var m []core.Metric
	var all []core.PeerID
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 100 {
		p := fmt.Sprintf("bench-%03d", i)
		all = append(all, pid(p))
		m = append(m, tag(p, fmt.Sprintf("g%d", i%10)), free(p, int64(rng.IntN(1<<30))))
	}
	pins := make([]core.PinAllocation, 10_000)
	for i := range pins {
		pins[i] = core.PinAllocation{Cid: testCid(i), Needed: 2, Wanted: 3}
		if i%5 == 0 {
			pins[i].Current = []core.PeerID{all[rng.IntN(100)], all[rng.IntN(100)]}
			pins[i].Needed, pins[i].Wanted = 1, 1
		}
	}
	a := connect(b, "")
	req := core.AllocateRequest{Metrics: m, Pins: pins}
	b.ReportAllocs()
	for b.Loop() {
		res, err := a.Allocate(context.Background(), req)
		if err != nil || len(res) != len(pins) || res[0].Error != "" {
			b.Fatal(err, len(res))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pins)), "ns/pin")
}

func testCid(i int) core.Cid {
	mh, err := multihash.Sum([]byte(fmt.Sprint(i)), multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return core.NewCid(cid.NewCidV1(cid.Raw, mh))
}
