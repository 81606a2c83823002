package sdk

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"google.golang.org/grpc"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/internal/cputime"
)

// BenchmarkCallsStream compares a unary call to a plugin process made as
// a unary gRPC call with the same call made on the Calls stream: an
// Allocate of 16 pins to an allocator process that runs Go code on one
// thread, as plugin processes do, one call at a time and 16 in flight.
// cpu-µs/op is the CPU time of both processes per call.
//
//	go test -run '^$' -bench CallsStream -benchtime 10000x -count 3 ./plugins/sdk/
func BenchmarkCallsStream(b *testing.B) {
	// The test binary serves the allocator (TestMain, serve_test.go).
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"SDK_TEST_ROLE=allocator", "GOMAXPROCS=1"}
	client := plugin.NewClient(NewClientConfig(cmd, hclog.NewNullLogger()))
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		b.Fatal(err)
	}
	conn := rpc.(*plugin.GRPCClient).Conn
	pid := client.ReattachConfig().Pid

	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	req := core.AllocateRequest{Metrics: []core.Metric{{Name: "freespace", Peer: self, Value: "1000", Valid: true, Weight: 1000}}}
	for i := range 16 {
		c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(fmt.Append(nil, i))
		if err != nil {
			b.Fatal(err)
		}
		req.Pins = append(req.Pins, core.PinAllocation{Cid: core.NewCid(c), Needed: 1, Wanted: 1})
	}
	for _, way := range []struct {
		name string
		conn grpc.ClientConnInterface
	}{{"unary", conn}, {"calls-stream", newCallConn(conn)}} {
		alloc := newAllocatorClient(way.conn, nil)
		for _, inFlight := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/in-flight-%d", way.name, inFlight), func(b *testing.B) {
				ctx := context.Background()
				if _, err := alloc.Allocate(ctx, req); err != nil { // warm up
					b.Fatal(err)
				}
				cpu0, err := cputime.SelfAnd(pid)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				var left atomic.Int64
				left.Store(int64(b.N))
				var wg sync.WaitGroup
				for range inFlight {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							if _, err := alloc.Allocate(ctx, req); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				cpu1, err := cputime.SelfAnd(pid)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
			})
		}
	}
}
