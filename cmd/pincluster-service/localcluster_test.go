package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
)

// localClusterScript is the one-command local cluster of the examples.
var localClusterScript = filepath.Join("..", "..", "examples", "local-cluster", "cluster.sh")

// lcPeer is one peer of the script's cluster, as the test reaches it.
type lcPeer struct {
	url, id, dir string
	pid          int
}

// TestLocalCluster runs examples/local-cluster/cluster.sh for real (on
// the binary TestMain built): it reports ready with three REST URLs,
// every peer lists the three, a pin with replication 2 made on one peer
// is allocated to two peers and seen in another peer's pinset, and a
// SIGTERM to the script stops it and the three daemons, with their
// plugins, cleanly.
func TestLocalCluster(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "script.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("bash", localClusterScript)
	// CLUSTER_* variables of the test's environment would override the
	// peers' service.json.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CLUSTER_") && !strings.HasPrefix(kv, "PINCLUSTER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"PINCLUSTER_LOCAL_DIR="+dir,
		"PINCLUSTER_BIN="+filepath.Dir(serviceBinary),
		"PINCLUSTER_LOCAL_TIMEOUT=90",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A process group of its own, so that a failed test can kill the
	// script and everything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	scriptDone := false
	t.Cleanup(func() {
		if !scriptDone {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
			}
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("cluster.sh output:\n%s", out)
			for n := 1; n <= 3; n++ {
				log, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("peer%d", n), "daemon.log"))
				t.Logf("peer %d log:\n%s", n, log)
			}
		}
	})

	// Ready: <dir>/ready holds the three REST URLs.
	var urls []string
	deadline := time.Now().Add(100 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "ready")); err == nil {
			urls = strings.Fields(string(b))
			break
		}
		select {
		case err := <-exited:
			scriptDone = true
			t.Fatalf("cluster.sh exited before it was ready: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster.sh was not ready within 100s")
		}
	}
	t.Logf("cluster ready after %v", time.Since(start).Round(time.Millisecond))
	if len(urls) != 3 {
		t.Fatalf("ready lists %q, want three URLs", urls)
	}
	out, _ := os.ReadFile(logPath)
	if !strings.Contains(string(out), "cluster ready") {
		t.Fatalf("no \"cluster ready\" line in:\n%s", out)
	}

	peers := make([]lcPeer, 3)
	var want []string
	for i, u := range urls {
		p := &peers[i]
		p.url = u
		p.dir = filepath.Join(dir, fmt.Sprintf("peer%d", i+1))
		p.id = servicetest.PeerID(t, p.dir)
		want = append(want, p.id)
		pidText, err := os.ReadFile(filepath.Join(p.dir, "daemon.pid"))
		if err != nil {
			t.Fatal(err)
		}
		if p.pid, err = strconv.Atoi(strings.TrimSpace(string(pidText))); err != nil {
			t.Fatalf("peer %d's daemon.pid: %v", i+1, err)
		}
		port := u[strings.LastIndexByte(u, ':')+1:]
		line := fmt.Sprintf("--host /ip4/127.0.0.1/tcp/%s peers ls", port)
		if !strings.Contains(string(out), line) {
			t.Errorf("the output has no %q line for peer %d", line, i+1)
		}
		if !strings.Contains(string(out), p.id) {
			t.Errorf("the output does not name peer %d's ID %s", i+1, p.id)
		}
	}
	slices.Sort(want)

	// Every peer lists the three, none with an error (the script waited
	// for peer 1 only).
	for i, p := range peers {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, failed := listedPeers(t, do(t, "GET", p.url+"/peers", nil, ""))
			if slices.Equal(got, want) && len(failed) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /peers on peer %d: %v (errors %v), want %v", i+1, got, failed, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Peer 2 (a raft follower) knows every peer's metrics, so that it can
	// allocate to any.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var metrics []core.Metric
		expect(t, do(t, "GET", peers[1].url+"/monitor/metrics/freespace", nil, ""), 200, &metrics)
		if len(metrics) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("freespace metrics on peer 2: %+v", metrics)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A pin with replication 2, made on peer 2: two peers allocated, and
	// the same pin in peer 3's pinset. (The CID is nowhere: it stays
	// pinning, which is enough here.)
	ci := randomCid(t)
	var pin core.Pin
	expect(t, do(t, "POST", peers[1].url+"/pins/"+ci+"?replication-min=2&replication-max=2", nil, ""), 200, &pin)
	allocs := pinPeers(pin)
	if len(allocs) != 2 || allocs[0] == allocs[1] {
		t.Fatalf("allocated to %v, want two peers", allocs)
	}
	for _, a := range allocs {
		if !slices.Contains(want, a) {
			t.Fatalf("allocated to %s, not a peer of the cluster %v", a, want)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		r := do(t, "GET", peers[2].url+"/allocations/"+ci, nil, "")
		if r.Status == 200 {
			var there core.Pin
			expect(t, r, 200, &there)
			if got := pinPeers(there); slices.Equal(got, allocs) {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("peer 3's pinset allocates %s to %v, want %v", ci, got, allocs)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("GET /allocations/%s on peer 3: %s", ci, r)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// SIGTERM to the script stops the daemons and their plugins, and then
	// the script.
	var procs []int
	for _, p := range peers {
		if !alive(p.pid) {
			t.Fatalf("the daemon of %s (pid %d) is not running", p.dir, p.pid)
		}
		procs = append(procs, p.pid)
		children := childrenOf(t, p.pid)
		if len(children) != len(core.Kinds) {
			t.Fatalf("the daemon of %s has children %v, want one plugin per kind", p.dir, children)
		}
		for c := range children {
			procs = append(procs, c)
		}
	}
	stopAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		scriptDone = true
		if err != nil {
			t.Fatalf("cluster.sh exited with %v after SIGTERM", err)
		}
	case <-time.After(70 * time.Second):
		t.Fatal("cluster.sh did not exit within 70s of SIGTERM")
	}
	t.Logf("cluster.sh stopped %v after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	// The daemons were waited for; their plugins may take a moment more.
	deadline = time.Now().Add(10 * time.Second)
	for {
		var left []int
		for _, p := range procs {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still running after the script stopped: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ = os.ReadFile(logPath)
	for _, p := range peers {
		if !strings.Contains(string(out), p.dir) {
			t.Errorf("the script's last words do not say where %s is", p.dir)
		}
		if _, err := os.Stat(filepath.Join(p.dir, "daemon.pid")); err == nil {
			t.Errorf("%s/daemon.pid is left behind", p.dir)
		}
		log, _ := os.ReadFile(filepath.Join(p.dir, "daemon.log"))
		if !strings.Contains(string(log), "shutting down") {
			t.Errorf("peer %s did not shut down cleanly:\n%s", p.dir, log)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		t.Error("the ready file is left behind after the stop")
	}
}

// pinPeers returns the allocations of pin as sorted strings.
func pinPeers(pin core.Pin) []string {
	out := make([]string, len(pin.Allocations))
	for i, p := range pin.Allocations {
		out[i] = p.String()
	}
	slices.Sort(out)
	return out
}
