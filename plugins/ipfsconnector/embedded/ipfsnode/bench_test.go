package ipfsnode

import (
	"context"
	"sync/atomic"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// BenchmarkPinSmallDAG measures pins of small, fully local UnixFS DAGs (a
// directory tree of 20 blocks) on a badger repository on disk. Every
// iteration pins a DAG never pinned before.
func BenchmarkPinSmallDAG(b *testing.B) {
	b.Run("nosync", func(b *testing.B) { benchmarkPinSmallDAG(b, Options{}) })
	b.Run("syncpins", func(b *testing.B) { benchmarkPinSmallDAG(b, Options{SyncPins: true}) })
}

func benchmarkPinSmallDAG(b *testing.B, opts Options) {
	ctx := context.Background()
	n := openNode(b, opts)
	seed := uint64(1000)
	// prepare stores count fresh DAGs and returns their roots.
	prepare := func(b *testing.B, count int) []cid.Cid {
		b.Helper()
		roots := make([]cid.Cid, count)
		for i := range roots {
			tree := buildTree(b, seed)
			seed++
			putBlocks(b, n, tree.dag.blocks())
			roots[i] = tree.root
		}
		return roots
	}

	b.Run("recursive", func(b *testing.B) {
		roots := prepare(b, b.N)
		b.ResetTimer()
		for i := range b.N {
			if err := n.Pin(ctx, roots[i], true); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("direct", func(b *testing.B) {
		roots := prepare(b, b.N)
		b.ResetTimer()
		for i := range b.N {
			if err := n.Pin(ctx, roots[i], false); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("already-pinned", func(b *testing.B) {
		root := prepare(b, 1)[0]
		if err := n.Pin(ctx, root, true); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := n.Pin(ctx, root, true); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("parallel-recursive", func(b *testing.B) {
		roots := prepare(b, b.N)
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c := roots[next.Add(1)-1]
				if err := n.Pin(ctx, c, true); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPutBlocks measures batched writes of 20-block DAGs.
func BenchmarkPutBlocks(b *testing.B) {
	ctx := context.Background()
	n := openNode(b, Options{})
	var dags [][]blocks.Block
	for i := range 64 {
		dags = append(dags, buildTree(b, uint64(5000+i)).dag.blocks())
	}
	i := 0
	for b.Loop() {
		if i == len(dags) {
			b.StopTimer()
			if err := n.GC(ctx, nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			i = 0
		}
		if err := n.PutBlocks(ctx, dags[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
