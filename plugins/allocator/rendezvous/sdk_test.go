package rendezvous

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// overGRPC serves a new allocator behind the real gRPC adapters and returns
// the core's client adapter to it.
func overGRPC(t testing.TB, cfg string) sdk.Allocator {
	impl := New()
	impl.now = func() time.Time { return testNow }
	return sdktest.ConnectAllocator(t, impl, json.RawMessage(cfg), nil)
}

func TestSameAnswersOverGRPC(t *testing.T) {
	direct, remote := newAllocator(t, ""), overGRPC(t, "")
	peers := pids(20)
	m := metricsFor(peers)
	var pins []sdk.PinAllocation
	for i := range 500 {
		pa := sdk.PinAllocation{Cid: testCid(i), Needed: 1 + i%4, Wanted: 2 + i%4}
		if i%3 == 0 {
			pa.Current = peers[i%20 : i%20+1]
			pa.Priority = peers[(i+7)%20 : (i+7)%20+1]
		}
		if i%50 == 0 {
			pa.Needed, pa.Wanted = 30, 30
		}
		pins = append(pins, pa)
	}
	want := ask(t, direct, m, pins...)
	got := ask(t, remote, m, pins...)
	for i := range want {
		if got[i].Error != want[i].Error || !slices.Equal(got[i].Peers, want[i].Peers) {
			t.Fatalf("pin %d: %+v over gRPC, %+v in process", i, got[i], want[i])
		}
	}
}

func TestConfigErrorOverGRPC(t *testing.T) {
	a := sdktest.ConnectAllocator(t, New(), nil, nil, sdktest.WithoutConfigure())
	err := a.Configure(t.Context(), json.RawMessage(`{"metric":""}`), sdktest.Environment(t), nil)
	if err == nil || err.Error() != `allocator.rendezvous.metric: must name a metric, e.g. "freespace"` {
		t.Fatalf("configure error: %v", err)
	}
}

// BenchmarkAllocate10kPins100PeersOverGRPC is the same batch through the
// plugin boundary.
func BenchmarkAllocate10kPins100PeersOverGRPC(b *testing.B) { benchmarkAllocate(b, overGRPC) }
