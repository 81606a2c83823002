package raftstore

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
)

// testLogger discards logs unless RAFTSTORE_TEST_LOG names a level.
func testLogger(name string) hclog.Logger {
	level := os.Getenv("RAFTSTORE_TEST_LOG")
	if level == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.LevelFromString(level), Output: os.Stderr})
}

// testConfig returns a Config with short raft timeouts and a small badger
// footprint.
func testConfig(dir, id string) Config {
	cfg := DefaultConfig()
	cfg.DataFolder = dir
	cfg.LocalID = id
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.WaitForLeaderTimeout = 10 * time.Second
	cfg.BadgerOptions = func(o badger.Options) badger.Options {
		return o.WithMemTableSize(8 << 20).WithBlockCacheSize(4 << 20).WithNumCompactors(2)
	}
	return cfg
}

func openTest(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg, nil, testLogger(cfg.LocalID))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func put(k, v string) Op { return Op{Key: []byte(k), Value: []byte(v)} }
func del(k string) Op    { return Op{Delete: true, Key: []byte(k)} }
func key(i int) string   { return fmt.Sprintf("key-%06d", i) }
func value(i int) string { return fmt.Sprintf("value-%d", i) }
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustApply(t testing.TB, s *Store, ops ...Op) uint64 {
	t.Helper()
	idx, err := s.Apply(ctxT(t), ops)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return idx
}

func mustGet(t testing.TB, s *Store, k, want string) {
	t.Helper()
	v, err := s.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	if string(v) != want {
		t.Fatalf("Get(%q) = %q, want %q", k, v, want)
	}
}

func mustMissing(t testing.TB, s *Store, k string) {
	t.Helper()
	if v, err := s.Get([]byte(k)); err != ErrNotFound {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", k, v, err)
	}
}

// contents returns the whole map.
func contents(t testing.TB, s *Store) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := s.Iterate(nil, func(k, v []byte) error {
		m[string(k)] = string(v)
		return nil
	}); err != nil {
		t.Fatalf("Iterate: %v", err)
	}
	return m
}

func equalMaps(t testing.TB, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("map has %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %q = %q, want %q", k, got[k], v)
		}
	}
}

// eventually retries cond until it holds or 10s passed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
