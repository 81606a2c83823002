package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// serviceBinary is built once by TestMain for the tests that run real
// daemon processes.
var serviceBinary string

func TestMain(m *testing.M) {
	// The test binary doubles as an external plugin for the fault tests:
	// `<test binary> serve-test-plugin <mode> [args]`.
	if len(os.Args) >= 3 && os.Args[1] == "serve-test-plugin" {
		serveTestPlugin(os.Args[2], os.Args[3:])
		return
	}
	// Plugins served inside the test process log at a daemon's level.
	os.Setenv(sdk.LogLevelEnv, "info")
	dir, err := os.MkdirTemp("", "pincluster-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if serviceBinary, err = servicetest.BuildService(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a pincluster-service daemon process started by a test.
type daemon struct{ *servicetest.Daemon }

type (
	response = servicetest.Response
	part     = servicetest.Part
)

var (
	do            = servicetest.Do
	expect        = servicetest.Expect
	expectError   = servicetest.ExpectError
	multipartBody = servicetest.Multipart
	freePort      = servicetest.FreePort
)

func ndjson[T any](t testing.TB, r response) []T {
	t.Helper()
	return servicetest.NDJSON[T](t, r)
}

// newDaemonDir initialises a config folder on the embedded defaults, every
// listener on a loopback port of its own.
func newDaemonDir(t testing.TB) (dir, api string) {
	t.Helper()
	return servicetest.NewPeerDir(t, serviceBinary, nil)
}

// startDaemon runs the daemon on dir and waits until its API answers.
func startDaemon(t testing.TB, dir, api string) *daemon {
	t.Helper()
	return &daemon{servicetest.Start(t, serviceBinary, dir, api)}
}

// waitStatus polls GET /pins/{cid} until every peer reports want.
func (d *daemon) waitStatus(c string, want core.TrackerStatus) core.GlobalPinInfo {
	d.TB.Helper()
	return d.WaitStatus(c, want, false, 30*time.Second)
}

// children returns the pids and command lines of the daemon's child processes.
func childrenOf(t testing.TB, pid int) map[int]string {
	t.Helper()
	out := map[int]string{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc on this system")
	}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out[p] = strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		}
	}
	return out
}

func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
	return !strings.HasPrefix(rest, "Z")
}

func readLines(r io.Reader) []string {
	var out []string
	s := bufio.NewScanner(r)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}
