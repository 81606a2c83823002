package balanced

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// overGRPC serves a new allocator behind the real gRPC adapters and returns
// the core's client adapter to it.
func overGRPC(t testing.TB, cfg string) core.Allocator {
	impl := New()
	impl.now = func() time.Time { return testNow }
	return sdktest.ConnectAllocator(t, impl, json.RawMessage(cfg), nil)
}

func TestScenariosOverGRPC(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) { s.run(t, overGRPC) })
	}
}

// BenchmarkAllocate10kPins100PeersOverGRPC is the same batch through the
// plugin boundary: one Allocate call carrying 200 metrics and 10,000 pins.
func BenchmarkAllocate10kPins100PeersOverGRPC(b *testing.B) { benchmarkAllocate(b, overGRPC) }
