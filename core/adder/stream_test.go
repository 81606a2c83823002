package adder

import (
	"bytes"
	"context"
	"mime/multipart"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	blocks "github.com/ipfs/go-block-format"
)

// countingSink counts what it receives and keeps nothing.
type countingSink struct {
	blocks, bytes, calls atomic.Int64
	onPut                func()
}

func (s *countingSink) PutBlocks(ctx context.Context, blks []blocks.Block) error {
	s.calls.Add(1)
	s.blocks.Add(int64(len(blks)))
	for _, b := range blks {
		s.bytes.Add(int64(len(b.RawData())))
	}
	if s.onPut != nil {
		s.onPut()
	}
	return nil
}

// TestStreamingMemory imports a 64 MiB file streamed through a pipe and
// checks that the heap in use stays far below the file size, both as the
// program sees it (garbage included) and as live data (measured after a
// collection at each batch).
func TestStreamingMemory(t *testing.T) {
	const size = 64 << 20
	for _, collect := range []bool{false, true} {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse

		var mu sync.Mutex
		peak := base
		sink := &countingSink{}
		sink.onPut = func() {
			if collect {
				runtime.GC()
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
		}
		root, err := Add(context.Background(),
			streamBody(t, []entry{stream("big", newPseudoRandom(size, 5))}),
			DefaultParams(), sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !collect {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		if !root.Defined() {
			t.Fatal("no root")
		}
		// 256 leaves of 256 KiB plus headers, 2 intermediate nodes, a root.
		if got := sink.bytes.Load(); got < size || got > size+size/50 {
			t.Errorf("sink received %d bytes for a %d-byte file", got, size)
		}
		if got := sink.blocks.Load(); got != 259 {
			t.Errorf("sink received %d blocks, want 259", got)
		}
		if sink.calls.Load() < size/DefaultBatchBytes {
			t.Errorf("only %d batches", sink.calls.Load())
		}
		growth := int64(peak) - int64(base)
		limit := int64(32 << 20)
		what := "heap in use (garbage included)"
		if collect {
			limit = 24 << 20
			what = "live heap"
		}
		t.Logf("%s: base %d MiB, peak %d MiB, growth %.1f MiB for a %d MiB file",
			what, base>>20, peak>>20, float64(growth)/(1<<20), size>>20)
		if growth > limit {
			t.Errorf("%s grew by %.1f MiB while importing %d MiB (limit %d MiB)",
				what, float64(growth)/(1<<20), size>>20, limit>>20)
		}
	}
}

// BenchmarkAdd64MiB measures the import of a 64 MiB file with the default
// parameters (256 KiB chunks, CIDv0) into a sink that drops blocks.
func BenchmarkAdd64MiB(b *testing.B) {
	const size = 64 << 20
	body, boundary := bodyBytes(b, []entry{stream("big", newPseudoRandom(size, 11))})
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, err := Add(context.Background(), multipart.NewReader(bytes.NewReader(body), boundary),
			DefaultParams(), &countingSink{}, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdd64MiBRawLeaves is BenchmarkAdd64MiB with CIDv1 and raw leaves.
func BenchmarkAdd64MiBRawLeaves(b *testing.B) {
	const size = 64 << 20
	body, boundary := bodyBytes(b, []entry{stream("big", newPseudoRandom(size, 11))})
	p := DefaultParams()
	p.CidVersion = 1
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, err := Add(context.Background(), multipart.NewReader(bytes.NewReader(body), boundary),
			p, &countingSink{}, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
}
