package raft

import (
	"bytes"
	"os"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestMain routes the plugin's logs to stderr when RAFT_TEST_LOG names a
// level; otherwise their info-level lines are kept in memory and printed
// for a test that fails (see keepLogs).
func TestMain(m *testing.M) {
	level := os.Getenv("RAFT_TEST_LOG")
	newLogger = func() hclog.Logger {
		if level != "" {
			return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.LevelFromString(level), Output: os.Stderr})
		}
		return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: &testLogs})
	}
	os.Exit(m.Run())
}

// logBuffer is the in-memory log of the plugin instances of the tests.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

var (
	testLogs logBuffer
	keeping  sync.Map // testing.TB -> struct{}
)

// keepLogs prints the logs written from now on if t fails (the last 256 KiB
// of them). Only the first call of a test counts.
func keepLogs(t testing.TB) {
	if _, dup := keeping.LoadOrStore(t, struct{}{}); dup {
		return
	}
	testLogs.mu.Lock()
	from := testLogs.buf.Len()
	testLogs.mu.Unlock()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		testLogs.mu.Lock()
		defer testLogs.mu.Unlock()
		out := testLogs.buf.Bytes()[from:]
		if len(out) > 256<<10 {
			out = out[len(out)-256<<10:]
		}
		t.Logf("plugin logs:\n%s", out)
	})
}
