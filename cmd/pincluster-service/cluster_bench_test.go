package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/internal/cputime"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// BenchmarkClusterPins measures the pin rate of a three-peer cluster of
// real daemons (built-in plugins as child processes: raft, balanced,
// stateless, embedded IPFS connector, its node online), against a single
// peer of the same binary and plugins measured in the same run.
//
// In each setting, N small files (5,000; PINCLUSTER_BENCH_N overrides) are
// first added to one peer's IPFS node without being pinned (POST
// /add?no-pin=true with CIDv1 raw leaves: every file is one raw block), and
// in the first round one more file is pinned and waited for, so that
// everything the measured pins need is up (in the cluster: the IPFS nodes
// of the other peers are connected to the one holding the blocks and fetch
// from it over bitswap).
// Then the N CIDs are pinned by 16 concurrent clients with POST
// /pins/{cid}:
//
//   - single peer: replication 1, every request to the one peer;
//   - three peers: replication 2, the requests spread round-robin over the
//     three peers' REST APIs (the two that are not the raft leader forward
//     their commits to it); the blocks are on the second peer, so every pin
//     allocated elsewhere is fetched from it.
//
// Two figures each: the acknowledged rate (N over the time until the last
// 200 answer) and the time until every pin is pinned on every peer it was
// allocated to (by the allocations in the answers). The latter is read on
// each peer with GET /pins?local=true&filter=pinned once no peer has
// anything queued or pinning: the tracker takes its snapshot of the IPFS
// pins before the answer starts, so when every peer lists all of its
// allocations the clock stops at the latest of the answers' headers.
//
// It prints both settings' figures, the ratio three-peer / single-peer of
// the acknowledged rates, whether the target (at least 1,000 acknowledged
// pins/s with three peers) is met, how the pins were allocated, and the
// CPU time of every process per 1,000 pins, how busy the machine was and
// the warnings the peers logged during the runs. With
// PINCLUSTER_CPU_PROFILE_DIR set, every process writes a CPU profile into
// <dir>/single or <dir>/cluster; PINCLUSTER_BENCH_CONCURRENCY changes the
// number of clients (16). Run it with
//
//	go test -run '^$' -bench ClusterPins -benchtime 1x -count 3 ./cmd/pincluster-service/
func BenchmarkClusterPins(b *testing.B) {
	n := servicetest.EnvInt(b, "PINCLUSTER_BENCH_N", 5000, 1)
	concurrency := servicetest.EnvInt(b, "PINCLUSTER_BENCH_CONCURRENCY", pinConcurrency, 1)
	b.StopTimer()
	loadBefore := loadAverage()
	profiles := os.Getenv(sdk.CPUProfileDirEnv)
	profileInto := func(sub string) {
		if profiles == "" {
			return
		}
		dir := filepath.Join(profiles, sub)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		b.Setenv(sdk.CPUProfileDirEnv, dir)
	}

	// The reference: one peer, alone on the machine while it runs.
	profileInto("single")
	dir, api := newBenchPeerDir(b)
	single := startDaemon(b, dir, api)
	singleRuns := benchRounds(b, []*daemon{single}, single, n, 1, concurrency)
	single.Stop()

	// Three peers.
	profileInto("cluster")
	peers := startCluster(b, 3, nil)
	holder := peers[1]
	clusterRuns := benchRounds(b, peers, holder, n, 2, concurrency)
	loadAfter := loadAverage()

	med := func(runs []pinRun, f func(pinRun) float64) float64 {
		var xs []float64
		for _, r := range runs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	ackRate := func(r pinRun) float64 { return r.ackRate() }
	toPinned := func(r pinRun) float64 { return r.pinned.Seconds() }
	cRate, sRate := med(clusterRuns, ackRate), med(singleRuns, ackRate)
	b.ReportMetric(cRate, "acked-pins/s")
	b.ReportMetric(med(clusterRuns, toPinned), "s-to-pinned")
	b.ReportMetric(sRate, "single-acked-pins/s")
	b.ReportMetric(med(singleRuns, toPinned), "single-s-to-pinned")
	b.ReportMetric(cRate/sRate, "ratio")

	fmt.Printf("cluster pins: %d pins at concurrency %d, %d CPUs, load average %s before, %s after\n",
		n, concurrency, runtime.NumCPU(), loadBefore, loadAfter)
	for i, d := range peers {
		role := "joined the first"
		if i == 0 {
			role = "first, started alone"
		}
		if raftLeader(d.Logs()) {
			role += ", raft leader"
		}
		if d == holder {
			role += ", holds the blocks"
		}
		fmt.Printf("  peer %d %s pid %d: %s\n", i+1, d.PeerID, d.Cmd.Process.Pid, role)
	}
	for i := range singleRuns {
		s, c := singleRuns[i], clusterRuns[i]
		fmt.Printf("single peer, replication 1: %.0f pins/s acknowledged (%s), all pinned after %s (%.0f pins/s)\n",
			s.ackRate(), s.acked.Round(time.Millisecond), s.pinned.Round(time.Millisecond), s.pinnedRate())
		fmt.Printf("three peers, replication 2: %.0f pins/s acknowledged (%s), all pinned on both allocations after %s (%.0f pins/s)\n",
			c.ackRate(), c.acked.Round(time.Millisecond), c.pinned.Round(time.Millisecond), c.pinnedRate())
		fmt.Printf("ratio three peers / single peer, acknowledged rate: %.2f\n", c.ackRate()/s.ackRate())
		verdict := "met"
		if c.ackRate() < 1000 {
			verdict = "NOT met"
		}
		fmt.Printf("target, at least 1,000 acknowledged pins/s with three peers: %s (%.0f pins/s)\n", verdict, c.ackRate())
		var alloc []string
		for j, d := range peers {
			alloc = append(alloc, fmt.Sprintf("peer %d %d", j+1, c.allocated[d.PeerID]))
		}
		fmt.Printf("  allocations: %s; status checks: single %d (last listing %s), three peers %d (last listing %s)\n",
			strings.Join(alloc, ", "), s.checks, s.listing.Round(time.Millisecond), c.checks, c.listing.Round(time.Millisecond))
		fmt.Printf("  CPU ms per 1,000 pins (sum over the peers), until all pinned:\n")
		kinds := maps.Clone(s.cpu)
		maps.Copy(kinds, c.cpu)
		names := slices.Sorted(maps.Keys(kinds))
		perK := func(r pinRun, k string) float64 { return float64(r.cpu[k].Microseconds()) / float64(r.n) }
		var sTotal, cTotal time.Duration
		for _, k := range names {
			sTotal += s.cpu[k]
			cTotal += c.cpu[k]
			fmt.Printf("    %-34s single %7.1f   three peers %7.1f\n", k, perK(s, k), perK(c, k))
		}
		fmt.Printf("    %-34s single %7.1f   three peers %7.1f   (CPUs busy on average: %.2f and %.2f)\n", "total",
			float64(sTotal.Microseconds())/float64(s.n), float64(cTotal.Microseconds())/float64(c.n),
			sTotal.Seconds()/s.window.Seconds(), cTotal.Seconds()/c.window.Seconds())
		for _, x := range []struct {
			name string
			r    pinRun
			ours time.Duration
		}{{"single peer", s, sTotal}, {"three peers", c, cTotal}} {
			if x.r.machine > 0 {
				fmt.Printf("  machine during the %s run: CPUs busy %.2f on average, %.2f of it other processes than the benchmark's; iowait %.2f\n",
					x.name, x.r.machine.Seconds()/x.r.window.Seconds(), max(0, (x.r.machine-x.ours).Seconds())/x.r.window.Seconds(),
					x.r.iowait.Seconds()/x.r.window.Seconds())
			}
			for _, l := range x.r.problems {
				fmt.Printf("  logged during the %s run: %s\n", x.name, l)
			}
		}
	}
}

// benchRounds runs b.N measured rounds on peers: each adds n fresh blocks
// to holder, warms up in the first round, and pins them with replication
// rf.
func benchRounds(b *testing.B, peers []*daemon, holder *daemon, n, rf, concurrency int) []pinRun {
	b.Helper()
	var runs []pinRun
	for round := range b.N {
		cids := benchContent(b, holder, n)
		if round == 0 {
			benchWarmUp(b, peers, holder, cids[n], rf)
		}
		runtime.GC()
		b.StartTimer()
		runs = append(runs, benchPins(b, peers, cids[:n], rf, concurrency))
		b.StopTimer()
	}
	return runs
}

// pinRun is one measured run of N pins.
type pinRun struct {
	n int
	// acked is the time until the last POST /pins answered, pinned until
	// every pin was pinned on each peer it was allocated to.
	acked, pinned time.Duration
	// checks is how many rounds of status listings it took to see every
	// pin pinned, listing how long the last one took.
	checks  int
	listing time.Duration
	// allocated counts the allocations of each peer.
	allocated map[string]int
	// cpu is the CPU time of each kind of process (the core, each plugin,
	// the benchmark's clients) during the run, summed over the peers.
	cpu map[string]time.Duration
	// machine is the CPU time the whole machine was busy during the run,
	// iowait the time CPUs were idle waiting for I/O (from /proc/stat).
	machine, iowait time.Duration
	// window is the time over which cpu, machine and iowait were measured:
	// from the first request to the end of the last status listing.
	window time.Duration
	// problems are the warning and error lines the peers logged during
	// the run.
	problems []string
}

func (r pinRun) ackRate() float64    { return float64(r.n) / r.acked.Seconds() }
func (r pinRun) pinnedRate() float64 { return float64(r.n) / r.pinned.Seconds() }

// newBenchPeerDir prepares the config folder of a lone peer configured as
// startCluster configures the cluster's.
func newBenchPeerDir(b *testing.B) (dir, api string) {
	b.Helper()
	return servicetest.NewPeerDir(b, serviceBinary, fastMetrics(b))
}

// benchContent adds n+1 distinct files of 256 random bytes to d's IPFS
// node without pinning them, as raw blocks, and returns their CIDs in
// order (the last one is for the warm-up).
func benchContent(b *testing.B, d *daemon, n int) []string {
	b.Helper()
	parts := make([]part, n+1)
	for i := range parts {
		data := make([]byte, 256)
		_, _ = rand.Read(data)
		parts[i] = part{Name: fmt.Sprintf("f%07d", i), Data: data}
	}
	body, ct := multipartBody(b, parts...)
	r := do(b, "POST", d.URL+"/add?no-pin=true&cid-version=1&raw-leaves=true", body, ct)
	if r.Status != 200 || r.Trailer.Get("X-Stream-Error") != "" {
		b.Fatalf("add: %d %s (%s)", r.Status, r.Trailer.Get("X-Stream-Error"), r.Body[:min(len(r.Body), 300)])
	}
	byName := map[string]string{}
	for _, o := range ndjson[core.AddedOutput](b, r) {
		if o.Cid.Defined() {
			byName[o.Name] = o.Cid.String()
		}
	}
	cids := make([]string, len(parts))
	for i, p := range parts {
		cids[i] = byName[p.Name]
		if want := rawCid(b, p.Data); cids[i] != want {
			b.Fatalf("add: %s is %q, want the raw block %s", p.Name, cids[i], want)
		}
	}
	return cids
}

// benchWarmUp pins c (held by holder) with replication rf on the peers
// that do not hold it (on holder alone when it is the only peer) and waits
// until it is pinned there: the path from a pin request to the IPFS nodes,
// and between the IPFS nodes, is up.
func benchWarmUp(b *testing.B, peers []*daemon, holder *daemon, c string, rf int) {
	b.Helper()
	var to []string
	for _, d := range peers {
		if d != holder || len(peers) == 1 {
			to = append(to, d.PeerID)
		}
	}
	var pin struct {
		Allocations []string `json:"allocations"`
	}
	expect(b, holder.Post(fmt.Sprintf("/pins/%s?replication-min=%d&replication-max=%d&user-allocations=%s",
		c, rf, rf, strings.Join(to, ","))), 200, &pin)
	for _, d := range peers {
		if slices.Contains(pin.Allocations, d.PeerID) {
			d.WaitStatus(c, core.TrackerStatusPinned, true, 60*time.Second)
		}
	}
}

// benchPins pins cids with replication rf, concurrency requests in
// flight, the i-th to peers[i % len(peers)], and waits until every pin is
// pinned on each peer it was allocated to.
func benchPins(b *testing.B, peers []*daemon, cids []string, rf, concurrency int) pinRun {
	b.Helper()
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: 4 * concurrency, MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency,
	}}
	defer hc.CloseIdleConnections()
	query := fmt.Sprintf("?replication-min=%d&replication-max=%d", rf, rf)
	allocs := make([][]string, len(cids))
	cpu0 := benchCPU(b, peers)
	machine0, iowait0 := machineCPU()
	logged := make([]int, len(peers))
	for i, d := range peers {
		logged[i] = len(d.Logs())
	}

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var failed error
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cids) {
					return
				}
				a, err := postPin(hc, peers[i%len(peers)].URL+"/pins/"+cids[i]+query)
				if err == nil && len(a) != rf {
					err = fmt.Errorf("pin %s allocated to %v, want %d peers", cids[i], a, rf)
				}
				if err != nil {
					once.Do(func() { failed = err })
					next.Store(int64(len(cids)))
					return
				}
				allocs[i] = a
			}
		})
	}
	wg.Wait()
	acked := time.Since(start)
	if failed != nil {
		b.Fatal(failed)
	}

	// What each peer must list as pinned.
	want := map[string]map[string]bool{}
	for _, d := range peers {
		want[d.PeerID] = map[string]bool{}
	}
	for i, a := range allocs {
		for _, p := range a {
			if want[p] == nil {
				b.Fatalf("pin %s allocated to %s, not a peer", cids[i], p)
			}
			want[p][cids[i]] = true
		}
	}
	run := pinRun{n: len(cids), acked: acked, allocated: map[string]int{}}
	for p, set := range want {
		run.allocated[p] = len(set)
	}

	// Bounded: two minutes and 10 ms per pin.
	deadline := start.Add(2*time.Minute + time.Duration(len(cids))*10*time.Millisecond)
	for {
		busy := false
		for _, d := range peers {
			if servicetest.AnyStatus(b, hc, d.URL+"/pins?local=true&filter=pin_queued,pinning,pin_error") {
				busy = true
				break
			}
		}
		if !busy {
			run.checks++
			done, at, took, counts := allListPinned(b, hc, peers, want)
			if done {
				run.pinned, run.listing = at.Sub(start), took
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("not every pin pinned on its allocations after %s: pinned/allocated by peer %v",
					time.Since(start).Round(time.Second), counts)
			}
		} else if time.Now().After(deadline) {
			b.Fatalf("pins still queued or pinning after %s", time.Since(start).Round(time.Second))
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu1 := benchCPU(b, peers)
	machine1, iowait1 := machineCPU()
	run.window = time.Since(start)
	run.machine, run.iowait = machine1-machine0, iowait1-iowait0
	for i, d := range peers {
		for _, l := range logProblems(d.Logs()[logged[i]:]) {
			run.problems = append(run.problems, fmt.Sprintf("peer %d: %s", i+1, l))
		}
	}
	run.cpu = map[string]time.Duration{}
	for k, v := range cpu1 {
		run.cpu[k] = v - cpu0[k]
	}
	return run
}

// postPin sends one POST /pins and returns the allocations it answered.
func postPin(hc *http.Client, url string) ([]string, error) {
	resp, err := hc.Post(url, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	var pin struct {
		Allocations []string `json:"allocations"`
	}
	if err := json.Unmarshal(body, &pin); err != nil {
		return nil, fmt.Errorf("POST %s: %v: %s", url, err, body)
	}
	return pin.Allocations, nil
}

// allListPinned asks every peer at once for its pinned pins and reports
// whether each listed every pin allocated to it; at is when the last
// answer's headers arrived (each peer's listing is of the IPFS pins as they
// were before its headers were sent), took how long the slowest listing
// took, counts the pinned / allocated of each peer.
func allListPinned(b *testing.B, hc *http.Client, peers []*daemon, want map[string]map[string]bool) (done bool, at time.Time, took time.Duration, counts map[string]string) {
	b.Helper()
	type answer struct {
		headers time.Time
		took    time.Duration
		pinned  int
		err     error
	}
	answers := make([]answer, len(peers))
	var wg sync.WaitGroup
	for i, d := range peers {
		wg.Go(func() {
			a := &answers[i]
			start := time.Now()
			resp, err := hc.Get(d.URL + "/pins?local=true&filter=pinned")
			a.headers = time.Now()
			if err != nil {
				a.err = err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 && resp.StatusCode != 204 {
				body, _ := io.ReadAll(resp.Body)
				a.err = fmt.Errorf("GET /pins on %s: %d %s", d.PeerID, resp.StatusCode, body)
				return
			}
			dec := json.NewDecoder(resp.Body)
			for dec.More() {
				var g core.GlobalPinInfo
				if err := dec.Decode(&g); err != nil {
					a.err = fmt.Errorf("GET /pins on %s: %v", d.PeerID, err)
					return
				}
				if st, ok := g.PeerMap[d.PeerID]; ok && st.Status == core.TrackerStatusPinned && want[d.PeerID][g.Cid.String()] {
					a.pinned++
				}
			}
			if t := resp.Trailer.Get("X-Stream-Error"); t != "" {
				a.err = fmt.Errorf("GET /pins on %s: %s", d.PeerID, t)
			}
			a.took = time.Since(start)
		})
	}
	wg.Wait()
	done = true
	counts = map[string]string{}
	for i, d := range peers {
		a := answers[i]
		if a.err != nil {
			b.Fatal(a.err)
		}
		counts[d.PeerID] = fmt.Sprintf("%d/%d", a.pinned, len(want[d.PeerID]))
		done = done && a.pinned == len(want[d.PeerID])
		if a.headers.After(at) {
			at = a.headers
		}
		took = max(took, a.took)
	}
	return done, at, took, counts
}

// benchCPU is the CPU time used so far by each kind of process of the
// peers (the core, each plugin), summed over the peers, and by this test
// process (the benchmark's HTTP clients).
func benchCPU(b *testing.B, peers []*daemon) map[string]time.Duration {
	b.Helper()
	out := map[string]time.Duration{}
	add := func(name string, pid int) {
		d, err := cputime.Process(pid)
		if err != nil {
			b.Fatal(err)
		}
		out[name] += d
	}
	for _, d := range peers {
		pid := d.Cmd.Process.Pid
		add("core", pid)
		for child, cmdline := range childrenOf(b, pid) {
			name := "other child process"
			if _, after, ok := strings.Cut(cmdline, " plugin "); ok {
				name = "plugin " + after
			}
			add(name, child)
		}
	}
	self, err := cputime.Self()
	if err != nil {
		b.Fatal(err)
	}
	out["benchmark (HTTP clients)"] = self
	return out
}

// logProblems returns the lines of a daemon's log at warning level or
// above.
func logProblems(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "[WARN]") || strings.Contains(l, "[ERROR]") {
			out = append(out, l)
		}
	}
	return out
}

// machineCPU is the time the machine's CPUs have been busy (user, nice,
// system, irq, softirq, steal) and waiting for I/O since boot, from
// /proc/stat; zero when it cannot be read.
func machineCPU() (busy, iowait time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	tick := func(i int) time.Duration {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(v) * time.Second / clockTicks
	}
	// user nice system idle iowait irq softirq steal
	return tick(1) + tick(2) + tick(3) + tick(6) + tick(7) + tick(8), tick(5)
}

// clockTicks is USER_HZ, the unit of /proc/stat (100 on Linux for every
// architecture Go supports).
const clockTicks = 100

// raftLeader reports whether a daemon's log says that its raft node is the
// leader: it entered the leader state and did not leave it since.
func raftLeader(log string) bool {
	leader := strings.LastIndex(log, "entering leader state")
	return leader >= 0 && leader > strings.LastIndex(log, "entering follower state") &&
		leader > strings.LastIndex(log, "entering candidate state")
}
