package rendezvous

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/plugins/sdk"
)

var testNow = time.Unix(1_800_000_000, 0)

// pid returns a valid peer ID (an identity multihash) for a test name.
func pid(name string) sdk.PeerID {
	mh, err := multihash.Sum([]byte(name), multihash.IDENTITY, -1)
	if err != nil {
		panic(err)
	}
	return peer.ID(mh)
}

func pids(n int) []sdk.PeerID {
	out := make([]sdk.PeerID, n)
	for i := range out {
		out[i] = pid("peer-" + strconv.Itoa(i))
	}
	return out
}

// testCid returns the i-th test CID.
func testCid(i int) sdk.Cid {
	mh, err := multihash.Sum([]byte("content "+strconv.Itoa(i)), multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	c, err := sdk.CastCid(cid.NewCidV1(cid.Raw, mh).Bytes())
	if err != nil {
		panic(err)
	}
	return c
}

func freespace(p sdk.PeerID, n int64) sdk.Metric {
	return sdk.Metric{
		Name: "freespace", Peer: p, Value: strconv.FormatInt(n, 10), Weight: n, Valid: true,
		Expire: testNow.Add(30 * time.Second).UnixNano(), ReceivedAt: testNow.UnixNano(),
	}
}

func metricsFor(peers []sdk.PeerID) []sdk.Metric {
	out := make([]sdk.Metric, len(peers))
	for i, p := range peers {
		out[i] = freespace(p, int64(1000*(i+1)))
	}
	return out
}

func newAllocator(t testing.TB, cfg string) *Allocator {
	t.Helper()
	a := New()
	a.now = func() time.Time { return testNow }
	if err := a.Configure(context.Background(), json.RawMessage(cfg), sdk.Environment{}, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

func ask(t testing.TB, a sdk.Allocator, metrics []sdk.Metric, pins ...sdk.PinAllocation) []sdk.AllocateResult {
	t.Helper()
	res, err := a.Allocate(context.Background(), sdk.AllocateRequest{Metrics: metrics, Pins: pins})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(pins) {
		t.Fatalf("%d results for %d pins", len(res), len(pins))
	}
	return res
}

// byScore is the reference: every candidate, best score first.
func byScore(c sdk.Cid, peers []sdk.PeerID) []sdk.PeerID {
	out := slices.Clone(peers)
	ch := hashOf(c.Bytes())
	slices.SortFunc(out, func(x, y sdk.PeerID) int {
		sx, sy := Score(ch, hashOf([]byte(x))), Score(ch, hashOf([]byte(y)))
		switch {
		case sx > sy:
			return -1
		case sx < sy:
			return 1
		}
		return 0
	})
	return out
}

func TestDescribe(t *testing.T) {
	d, err := New().Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != sdk.KindAllocator || d.Name != "rendezvous" || d.Version != Version ||
		!slices.Equal(d.ProtocolVersions, []int{sdk.ProtocolVersion}) || string(d.DefaultConfig) != `{"metric":"freespace"}` {
		t.Fatalf("%+v", d)
	}
}

func TestAllocateBeforeConfigure(t *testing.T) {
	if _, err := New().Allocate(context.Background(), sdk.AllocateRequest{}); err == nil {
		t.Fatal("Allocate before Configure succeeded")
	}
}

// The answer is the candidates by decreasing score, whatever their metric
// values.
func TestHighestScoresWin(t *testing.T) {
	a := newAllocator(t, "")
	peers := pids(7)
	for i := range 50 {
		c := testCid(i)
		res := ask(t, a, metricsFor(peers), sdk.PinAllocation{Cid: c, Needed: 1, Wanted: 3})
		if want := byScore(c, peers)[:3]; !slices.Equal(res[0].Peers, want) {
			t.Fatalf("pin %d: got %v, want %v", i, res[0].Peers, want)
		}
	}
	// Other metric values, same answer.
	c := testCid(1)
	m := metricsFor(peers)
	slices.Reverse(m)
	for i := range m {
		m[i].Weight = int64(i)
	}
	if got, want := ask(t, a, m, sdk.PinAllocation{Cid: c, Needed: 1, Wanted: 7})[0].Peers, byScore(c, peers); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestOnlyPeersWithTheMetric(t *testing.T) {
	a := newAllocator(t, `{"metric":"tag:zone"}`)
	peers := pids(6)
	var metrics []sdk.Metric
	for i, p := range peers {
		m := freespace(p, 100)
		metrics = append(metrics, m) // every peer has freespace
		m.Name, m.Value, m.Partitionable = "tag:zone", "z1", true
		switch i {
		case 0, 1, 2:
			metrics = append(metrics, m)
		case 3:
			m.Valid = false
			metrics = append(metrics, m)
		case 4:
			m.Expire = testNow.Add(-time.Second).UnixNano()
			metrics = append(metrics, m)
		}
	}
	res := ask(t, a, metrics, sdk.PinAllocation{Cid: testCid(0), Needed: 1, Wanted: 6})
	if want := byScore(testCid(0), peers[:3]); !slices.Equal(res[0].Peers, want) {
		t.Fatalf("got %v, want %v", res[0].Peers, want)
	}
}

func TestLatestMetricOfAPeerWins(t *testing.T) {
	a := newAllocator(t, "")
	p := pids(2)
	old := freespace(p[0], 10)
	newer := old
	newer.Valid = false
	newer.ReceivedAt++
	res := ask(t, a, []sdk.Metric{newer, old, freespace(p[1], 5)}, sdk.PinAllocation{Cid: testCid(0), Needed: 1, Wanted: 2})
	if !slices.Equal(res[0].Peers, []sdk.PeerID{p[1]}) {
		t.Fatalf("got %v: the latest metric of %s is invalid", res[0].Peers, p[0])
	}
}

func TestCurrentPriorityAndLimits(t *testing.T) {
	a := newAllocator(t, "")
	peers := pids(8)
	m := metricsFor(peers)
	c := testCid(3)
	order := byScore(c, peers)
	last, secondLast := order[7], order[6]

	res := ask(t, a, m,
		// Current peers are left out.
		sdk.PinAllocation{Cid: c, Current: order[:2], Needed: 1, Wanted: 3},
		// Priority peers first, by score among themselves.
		sdk.PinAllocation{Cid: c, Priority: []sdk.PeerID{last, secondLast}, Needed: 1, Wanted: 3},
		// A priority peer that is current stays out; one without metric too.
		sdk.PinAllocation{Cid: c, Priority: []sdk.PeerID{last, pid("stranger")}, Current: []sdk.PeerID{last}, Needed: 1, Wanted: 2},
		// Not enough peers.
		sdk.PinAllocation{Cid: c, Current: order[:3], Needed: 6, Wanted: 6},
		// Wanted beyond the candidates: every candidate.
		sdk.PinAllocation{Cid: c, Needed: 2, Wanted: 20},
	)
	want := [][]sdk.PeerID{
		order[2:5],
		{secondLast, last, order[0]},
		order[:2],
		nil,
		order,
	}
	for i, r := range res {
		if i == 3 {
			if r.Error == "" || len(r.Peers) != 0 {
				t.Fatalf("pin %d: want an error, got %+v", i, r)
			}
			if r.Error != "not enough peers to allocate CID. Needed at least: 6. Wanted at most: 6. Available candidates: 5. See logs for more info." {
				t.Fatalf("pin %d: error %q", i, r.Error)
			}
			continue
		}
		if r.Error != "" || !slices.Equal(r.Peers, want[i]) {
			t.Fatalf("pin %d: got %+v, want %v", i, r, want[i])
		}
	}
}

// With replication 1, every peer gets about its share of pins.
func TestSpreadsEvenly(t *testing.T) {
	a := newAllocator(t, "")
	peers := pids(10)
	const n = 20000
	var pins []sdk.PinAllocation
	for i := range n {
		pins = append(pins, sdk.PinAllocation{Cid: testCid(i), Needed: 1, Wanted: 1})
	}
	count := map[sdk.PeerID]int{}
	for _, r := range ask(t, a, metricsFor(peers), pins...) {
		count[r.Peers[0]]++
	}
	share := float64(n) / float64(len(peers))
	sd := math.Sqrt(share * (1 - 1/float64(len(peers))))
	for _, p := range peers {
		if d := math.Abs(float64(count[p]) - share); d > 5*sd {
			t.Errorf("peer %s got %d pins, expected %.0f ± %.0f", p, count[p], share, 5*sd)
		}
	}
}

// A peer leaving moves only the pins it held; a peer joining takes pins
// only for itself.
func TestStableUnderChurn(t *testing.T) {
	a := newAllocator(t, "")
	peers := pids(12)
	const n = 3000
	var pins []sdk.PinAllocation
	for i := range n {
		pins = append(pins, sdk.PinAllocation{Cid: testCid(i), Needed: 3, Wanted: 3})
	}
	before := ask(t, a, metricsFor(peers), pins...)

	gone := peers[4]
	without := slices.DeleteFunc(slices.Clone(peers), func(p sdk.PeerID) bool { return p == gone })
	after := ask(t, a, metricsFor(without), pins...)
	moved := 0
	for i := range pins {
		b, c := before[i].Peers, after[i].Peers
		if !slices.Contains(b, gone) {
			if !slices.Equal(b, c) {
				t.Fatalf("pin %d did not use the leaving peer but moved: %v -> %v", i, b, c)
			}
			continue
		}
		moved++
		kept := slices.DeleteFunc(slices.Clone(b), func(p sdk.PeerID) bool { return p == gone })
		if !slices.Equal(c[:2], kept) {
			t.Fatalf("pin %d: its other peers changed: %v -> %v", i, b, c)
		}
	}
	if want := n * 3 / len(peers); moved < want*8/10 || moved > want*12/10 {
		t.Errorf("%d pins moved when one of %d peers left, expected about %d", moved, len(peers), want)
	}

	joined := pid("newcomer")
	grown := append(slices.Clone(peers), joined)
	after = ask(t, a, metricsFor(grown), pins...)
	for i := range pins {
		b, c := before[i].Peers, after[i].Peers
		if slices.Contains(c, joined) {
			continue
		}
		if !slices.Equal(b, c) {
			t.Fatalf("pin %d: changed without using the new peer: %v -> %v", i, b, c)
		}
	}
}

func TestBatchEqualsSeparateRequests(t *testing.T) {
	a := newAllocator(t, "")
	peers := pids(9)
	m := metricsFor(peers)
	var pins []sdk.PinAllocation
	for i := range 200 {
		pa := sdk.PinAllocation{Cid: testCid(i), Needed: 1 + i%3, Wanted: 1 + i%3 + i%4}
		if i%5 == 0 {
			pa.Current = peers[i%9 : i%9+1]
		}
		if i%7 == 0 {
			pa.Priority = peers[(i+2)%9 : (i+2)%9+1]
		}
		pins = append(pins, pa)
	}
	batch := ask(t, a, m, pins...)
	for i, pa := range pins {
		alone := ask(t, a, m, pa)
		if fmt.Sprint(alone[0]) != fmt.Sprint(batch[i]) {
			t.Fatalf("pin %d: %v in the batch, %v alone", i, batch[i], alone[0])
		}
	}
}

func TestCancelled(t *testing.T) {
	a := newAllocator(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Allocate(ctx, sdk.AllocateRequest{Pins: []sdk.PinAllocation{{Cid: testCid(0)}}}); err == nil {
		t.Fatal("a cancelled request succeeded")
	}
}

func benchmarkAllocate(b *testing.B, connect func(testing.TB, string) sdk.Allocator) {
	a := connect(b, "")
	peers := pids(100)
	var pins []sdk.PinAllocation
	for i := range 10000 {
		pa := sdk.PinAllocation{Cid: testCid(i), Needed: 2, Wanted: 3}
		if i%5 == 0 {
			pa.Current = peers[i%100 : i%100+1]
		}
		pins = append(pins, pa)
	}
	req := sdk.AllocateRequest{Metrics: metricsFor(peers), Pins: pins}
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Allocate(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocate10kPins100Peers answers one request of 10,000 pins
// (a fifth of them with a current peer) over 100 candidates.
func BenchmarkAllocate10kPins100Peers(b *testing.B) {
	benchmarkAllocate(b, func(t testing.TB, cfg string) sdk.Allocator { return newAllocator(t, cfg) })
}
