package raftstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// benchApply applies b.N single-operation Apply calls from concurrency
// goroutines and reports operations per second and operations per log
// entry.
func benchApply(b *testing.B, concurrency int) {
	s := openTest(b, testConfig(b.TempDir(), "peer1"))
	value := make([]byte, 200) // about the size of a serialized pin
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if _, err := s.Apply(context.Background(), []Op{{Key: []byte(key(int(i))), Value: value}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	entries := s.entries.Load()
	if entries > 0 {
		b.ReportMetric(float64(s.ops.Load())/float64(entries), "ops/entry")
	}
}

// BenchmarkApplyConcurrent measures single-operation Apply calls from 16
// goroutines, which the store coalesces into shared log entries.
func BenchmarkApplyConcurrent(b *testing.B) { benchApply(b, 16) }

// BenchmarkApplySerial measures single-operation Apply calls one at a time
// (one log entry, and one disk sync, per call).
func BenchmarkApplySerial(b *testing.B) { benchApply(b, 1) }

// BenchmarkApplyConcurrent256 is BenchmarkApplyConcurrent with 256
// goroutines.
func BenchmarkApplyConcurrent256(b *testing.B) { benchApply(b, 256) }

// BenchmarkLookup16 looks up 16 keys, half of them missing, as the pinset
// lookup of a 16-pin commit batch does: one Get at a time against one
// GetEach.
func BenchmarkLookup16(b *testing.B) {
	s := openTest(b, testConfig(b.TempDir(), "peer1"))
	value := make([]byte, 200)
	var keys [][]byte
	var ops []Op
	for i := range 16 {
		keys = append(keys, []byte(key(i)))
		if i%2 == 0 {
			ops = append(ops, Op{Key: keys[i], Value: value})
		}
	}
	if _, err := s.Apply(context.Background(), ops); err != nil {
		b.Fatal(err)
	}
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			for _, k := range keys {
				if _, err := s.Get(k); err != nil && !errors.Is(err, ErrNotFound) {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("GetEach", func(b *testing.B) {
		for b.Loop() {
			if err := s.GetEach(keys, func(int, []byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
