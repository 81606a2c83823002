package raftstore

import "testing"

func BenchmarkZZ(b *testing.B) {
	StoreLogsCalls.Store(0)
	benchApply(b, 16)
	b.ReportMetric(float64(b.N)/float64(StoreLogsCalls.Load()), "ops/fsync")
}
