package network

import (
	"context"
	"iter"
	"testing"

	"github.com/pincluster/pincluster/core"
)

// BenchmarkUnaryRoundTrip measures one unary call between two peers over
// loopback TCP (a new yamux stream per call), and to the peer itself.
func BenchmarkUnaryRoundTrip(b *testing.B) {
	peers := startCluster(b, 2)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		to   int
	}{{"remote", 1}, {"local", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			to := peers[bc.to].ID()
			var out echoOut
			b.ReportAllocs()
			for b.Loop() {
				if err := peers[0].rpc.Call(ctx, to, "Test", "Echo", echoIn{Text: "ping"}, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamStatus10k measures streaming the local status of 10,000
// pins (core.PinInfo) from another peer, and from the peer itself.
func BenchmarkStreamStatus10k(b *testing.B) {
	const n = 10_000
	peers := startCluster(b, 2)
	for _, p := range peers {
		infos := pinInfos(b, p.ID(), n)
		err := HandleStream(p.rpc, "Bench", "StatusAll", func(ctx context.Context, _ StatusAllRequest) iter.Seq2[core.PinInfo, error] {
			return core.SliceSeq(infos)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		to   int
	}{{"remote", 1}, {"local", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			to := peers[bc.to].ID()
			b.ReportAllocs()
			for b.Loop() {
				got := 0
				for _, err := range Stream[core.PinInfo](ctx, peers[0].rpc, to, "Bench", "StatusAll", StatusAllRequest{}) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("%d items", got)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
}

// BenchmarkBlockPut measures sending a batch of 16 blocks of 256 KiB (4 MiB)
// to another peer's BlockPut.
func BenchmarkBlockPut(b *testing.B) {
	peers := startCluster(b, 2)
	if err := Handle(peers[1].rpc, ServiceIPFS, MethodBlockPut, func(ctx context.Context, in BlockPutRequest) (Empty, error) {
		return Empty{}, nil
	}); err != nil {
		b.Fatal(err)
	}
	blocks := make([]core.Block, 16)
	for i := range blocks {
		blocks[i] = core.Block{Cid: testCid(b, i), Data: make([]byte, 256<<10)}
	}
	c := peers[0].rpc.Client()
	ctx := context.Background()
	b.SetBytes(16 * 256 << 10)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.BlockPut(ctx, peers[1].ID(), blocks); err != nil {
			b.Fatal(err)
		}
	}
}
