package sdk_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// BenchmarkTrackBatch measures Track calls of 1000 pins across the plugin
// boundary; ns/pin is the cost per pin. "plain" pins have a CID, a name,
// allocations and a timestamp; "rich" pins add metadata and an origin.
func BenchmarkTrackBatch(b *testing.B) {
	const batch = 1000
	ps := []core.PeerID{sdktest.NewPeerID(b), sdktest.NewPeerID(b), sdktest.NewPeerID(b)}
	for _, rich := range []bool{false, true} {
		name := "plain"
		if rich {
			name = "rich"
		}
		b.Run(name, func(b *testing.B) {
			pins := make([]core.Pin, batch)
			for i := range pins {
				pins[i] = mkPin(i, ps)
				pins[i].Name = "bench" // the fake tracker drops these
				pins[i].Metadata = nil
				if rich {
					pins[i].Metadata = map[string]string{"source": fmt.Sprint("bench ", i), "owner": "team-a"}
					pins[i].Origins = []string{"/ip4/10.0.0.1/tcp/4001/p2p/" + ps[0].String()}
				}
			}
			impl := newFakeTracker()
			tr := sdktest.ConnectPinTracker(b, impl, nil, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := tr.Track(ctx, pins); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/pin")
			b.ReportMetric(float64(proto.Size(&pluginv1.Pins{Pins: sdk.PinsToProto(pins)}))/batch, "wire-B/pin")
			if impl.trackN.Load() < int64(b.N*batch) {
				b.Fatalf("the plugin saw %d pins", impl.trackN.Load())
			}
		})
	}
}

// BenchmarkUnaryRoundTrip measures the smallest call across the plugin
// boundary: a Stats call and its answer.
func BenchmarkUnaryRoundTrip(b *testing.B) {
	tr := sdktest.ConnectPinTracker(b, newFakeTracker(), nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Stats(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream measures the per-item cost of a long StatusAll stream.
func BenchmarkStream(b *testing.B) {
	impl := newFakeTracker()
	impl.statusN = 10_000
	tr := sdktest.ConnectPinTracker(b, impl, nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, err := range tr.StatusAll(ctx, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != impl.statusN {
			b.Fatalf("%d items", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*impl.statusN), "ns/item")
}
