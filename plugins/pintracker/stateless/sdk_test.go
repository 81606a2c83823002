package stateless

import (
	"encoding/json"
	"testing"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// overGRPC serves a new tracker behind the real gRPC adapters, with h
// reached through the go-plugin broker, and returns the core's client
// adapter to it.
func overGRPC(t testing.TB, h *testHost, cfg string) core.PinTracker {
	impl := New()
	env := core.Environment{PeerID: self, PeerName: "self-name"}
	tr := sdktest.ConnectPinTracker(t, impl, json.RawMessage(cfg), h, sdktest.WithEnvironment(env))
	waitReconciled(t, impl)
	return tr
}

func TestScenariosOverGRPC(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) { s.run(t, overGRPC) })
	}
}

// BenchmarkTrack10kOverGRPC is BenchmarkTrack10k through the plugin
// boundary: Track, Stats and the tracker's Pin calls back to the host all
// cross it.
func BenchmarkTrack10kOverGRPC(b *testing.B) { benchmarkTrack10k(b, overGRPC) }
