// Package clienttest runs real pincluster-service daemons for the tests of
// REST API clients: it builds the service binary and starts daemons with
// the embedded defaults, each in a temporary config folder with its REST
// API and cluster listener on free loopback ports.
package clienttest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core/config"
)

// ServicePackage is the import path of the daemon's main package.
const ServicePackage = "github.com/pincluster/pincluster/cmd/pincluster-service"

// StartTimeout bounds how long StartDaemon waits for the API to answer.
const StartTimeout = 60 * time.Second

// BuildService builds the pincluster-service binary into dir and returns
// its path. Call it once, from TestMain.
func BuildService(dir string) (string, error) {
	bin := filepath.Join(dir, "pincluster-service")
	cmd := exec.Command("go", "build", "-o", bin, ServicePackage)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", ServicePackage, err, out.String())
	}
	return bin, nil
}

// Daemon is a running pincluster-service process.
type Daemon struct {
	// Dir is the config folder.
	Dir string
	// URL is the base URL of the REST API (http://127.0.0.1:<port>).
	URL string
	// Multiaddr is the REST API's address as a multiaddress.
	Multiaddr string
	// Port is the REST API's port.
	Port int
	// PeerID is the daemon's cluster peer ID.
	PeerID string

	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logs returns what the daemon printed so far.
func (d *Daemon) Logs() string { return d.logs.String() }

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartDaemon initialises a config folder in a temporary directory, starts
// a daemon on it and waits (at most StartTimeout) until its API answers.
// The daemon is killed when the test ends; its logs are printed if the
// test failed.
func StartDaemon(tb testing.TB, serviceBinary string) *Daemon {
	tb.Helper()
	dir := tb.TempDir()
	out, err := exec.Command(serviceBinary, "--config", dir, "init").CombinedOutput()
	if err != nil {
		tb.Fatalf("pincluster-service init: %v\n%s", err, out)
	}
	svc, err := config.LoadService(filepath.Join(dir, config.ServiceFile))
	if err != nil {
		tb.Fatal(err)
	}
	api, err := svc.ListenOnLoopback(func() int { return FreePort(tb) })
	if err != nil {
		tb.Fatal(err)
	}
	_, portStr, _ := strings.Cut(api, ":")
	port, _ := strconv.Atoi(portStr)
	maddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
	if err := svc.Save(filepath.Join(dir, config.ServiceFile)); err != nil {
		tb.Fatal(err)
	}
	ident, err := config.LoadIdentity(filepath.Join(dir, config.IdentityFile))
	if err != nil {
		tb.Fatal(err)
	}

	d := &Daemon{
		Dir:       dir,
		URL:       fmt.Sprintf("http://127.0.0.1:%d", port),
		Multiaddr: maddr,
		Port:      port,
		PeerID:    ident.ID.String(),
		logs:      &syncBuffer{},
		done:      make(chan struct{}),
	}
	d.cmd = exec.Command(serviceBinary, "--config", dir, "daemon")
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	tb.Cleanup(func() {
		d.Stop()
		if tb.Failed() {
			tb.Logf("daemon log:\n%s", d.Logs())
		}
	})

	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(StartTimeout)
	for {
		resp, err := hc.Get(d.URL + "/id")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case <-d.done:
			tb.Fatalf("daemon exited while starting:\n%s", d.Logs())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("daemon API did not answer within %s:\n%s", StartTimeout, d.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the daemon and waits (at most 10s) for it to exit.
func (d *Daemon) Stop() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// MainWithService is a TestMain helper: it builds the service binary into
// a temporary directory, stores its path in *bin, runs the tests and
// removes the directory. It returns the exit code for os.Exit.
func MainWithService(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "pincluster-clienttest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin, err = BuildService(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
