package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/cluster"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/pluginhost"
	"github.com/pincluster/pincluster/internal/cputime"
	"github.com/pincluster/pincluster/plugins/builtin"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// The cost of the plugin boundary: the path of a pin through the four
// built-in plugins (allocate, commit, watch, track, IPFS pin, status),
// with the plugins attached to the orchestrator in three ways:
//
//   - in-process: the plugins' Go values, called directly;
//   - grpc: each plugin served by go-plugin in the test process and called
//     through the SDK's gRPC adapters over a local socket (sdktest), with
//     the host callbacks over the broker;
//   - processes: each plugin a child process of the service binary, as the
//     daemon runs them (pluginhost).
//
// The workload is the same in every mode: pinConcurrency goroutines pin
// fresh CIDs (raw blocks already in the IPFS node) with replication 1
// until n pins are committed, then the pins' statuses are read until
// every one is pinned. The figures are the wall time over n (microseconds
// per pin, amortised) and the CPU time over n of every process involved.
// docs/performance.md records them.

// pinConcurrency is how many pin requests are in flight at once.
const pinConcurrency = 16

type boundaryMode string

const (
	modeInProcess boundaryMode = "in-process"
	modeGRPC      boundaryMode = "grpc"
	modeProcesses boundaryMode = "processes"
)

var boundaryModes = []boundaryMode{modeInProcess, modeGRPC, modeProcesses}

const boundaryService = `{
  "cluster": {"secret": "0000000000000000000000000000000000000000000000000000000000000000"},
  "consensus": {"raft": {"heartbeat_timeout":"100ms","election_timeout":"100ms","leader_lease_timeout":"100ms","commit_timeout":"5ms"}},
  "api": {},
  "ipfs_connector": {"embedded": {"offline": true}},
  "pin_tracker": {"stateless": {}},
  "allocator": {"balanced": {}}
}`

// boundaryRig is an orchestrator with its four plugins attached one way.
type boundaryRig struct {
	c       *cluster.Cluster
	ipfs    core.IPFSConnector
	tracker core.PinTracker
	// pids are the plugin processes (processes mode).
	pids map[core.Kind]int
	// commits counts the orchestrator's commits, to know the batch size.
	commits  *countingConsensus
	ipfsPins *countingIPFS
	// ipfsEndpoint is the connector process's (processes mode).
	ipfsEndpoint core.Endpoint
}

// countingIPFS counts the IPFS connector's Pin calls made through the core
// and the pins they carry.
type countingIPFS struct {
	core.IPFSConnector
	calls, items atomic.Int64
	// endpoint is the connector process's, named to the tracker as the
	// daemon names it: the tracker's pins then go there directly, and only
	// those sent through the core are counted.
	endpoint core.Endpoint
}

func (c *countingIPFS) IPFSEndpoint(context.Context) (core.Endpoint, error) { return c.endpoint, nil }

func (c *countingIPFS) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	c.calls.Add(1)
	c.items.Add(int64(len(reqs)))
	return c.IPFSConnector.Pin(ctx, reqs)
}

// countingConsensus counts Commit calls and the operations they carry.
type countingConsensus struct {
	core.Consensus
	calls, ops atomic.Int64
}

func (c *countingConsensus) Commit(ctx context.Context, ops []core.PinOp) error {
	c.calls.Add(1)
	c.ops.Add(int64(len(ops)))
	return c.Consensus.Commit(ctx, ops)
}

func newBoundaryRig(tb testing.TB, mode boundaryMode) *boundaryRig {
	tb.Helper()
	svc, err := config.ParseService([]byte(boundaryService))
	if err != nil {
		tb.Fatal(err)
	}
	env := sdktest.Environment(tb)
	c, err := cluster.New(svc, env.PeerID, hclog.NewNullLogger())
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	// Every mode logs as a daemon does, at info: the plugins in this process
	// through the SDK's logger (LogLevelEnv, set in TestMain), the plugin
	// processes at the launcher's level.
	launcher := &pluginhost.Launcher{Executable: serviceBinary, Builtin: builtin.Has,
		Logger:     hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: io.Discard}),
		GOMAXPROCS: svc.Cluster.PluginGOMAXPROCS}
	r := &boundaryRig{c: c}
	for _, k := range core.Kinds {
		choice, err := svc.Plugin(k)
		if err != nil {
			tb.Fatal(err)
		}
		kenv := env
		kenv.DataDir = tb.TempDir()
		var p core.Plugin
		switch mode {
		case modeInProcess:
			p, _ = builtin.New(k, choice.Name)
			if err := p.Configure(ctx, choice.Config, kenv, c.Host()); err != nil {
				tb.Fatalf("%s: %v", k, err)
			}
			tb.Cleanup(func() { _ = p.Close(ctx) })
		case modeGRPC:
			impl, _ := builtin.New(k, choice.Name)
			p = sdktest.Connect[core.Plugin](tb, impl, choice.Config, c.Host(), sdktest.WithEnvironment(kenv))
		case modeProcesses:
			pl, err := launcher.Launch(ctx, choice, kenv, c.Host())
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { pl.Stop(ctx) })
			p = pl.Impl()
			if k == core.KindIPFSConnector {
				r.ipfsEndpoint = pl.Endpoint
			}
			if r.pids == nil {
				r.pids = map[core.Kind]int{}
			}
			r.pids[k] = pl.Pid
		}
		if k == core.KindConsensus {
			r.commits = &countingConsensus{Consensus: p.(core.Consensus)}
			p = r.commits
		}
		if k == core.KindIPFSConnector {
			r.ipfsPins = &countingIPFS{IPFSConnector: p.(core.IPFSConnector), endpoint: r.ipfsEndpoint}
			p = r.ipfsPins
		}
		if err := c.Use(k, p); err != nil {
			tb.Fatal(err)
		}
		switch k {
		case core.KindIPFSConnector:
			r.ipfs = p.(core.IPFSConnector)
		case core.KindPinTracker:
			r.tracker = p.(core.PinTracker)
		}
	}
	if err := c.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Shutdown)
	// Allocation needs this peer's freespace metric.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ms, err := c.Metrics(ctx, "freespace"); err == nil && len(ms) > 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("no freespace metric within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// content puts n new raw blocks into the IPFS node and returns their CIDs.
func (r *boundaryRig) content(tb testing.TB, n int) []core.Cid {
	tb.Helper()
	cids := make([]core.Cid, n)
	blocks := make([]core.Block, 0, 1024)
	flush := func() {
		if err := r.ipfs.BlockPut(context.Background(), blocks); err != nil {
			tb.Fatal(err)
		}
		blocks = blocks[:0]
	}
	for i := range cids {
		data := make([]byte, 256)
		_, _ = rand.Read(data)
		mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
		if err != nil {
			tb.Fatal(err)
		}
		cids[i] = core.NewCid(cid.NewCidV1(cid.Raw, mh))
		blocks = append(blocks, core.Block{Cid: cids[i], Data: data})
		if len(blocks) == cap(blocks) {
			flush()
		}
	}
	if len(blocks) > 0 {
		flush()
	}
	return cids
}

// cpuTimes is the CPU time used so far by the test process ("core")
// and by each plugin process.
func (r *boundaryRig) cpuTimes(tb testing.TB) map[string]time.Duration {
	tb.Helper()
	self, err := cputime.Self()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]time.Duration{"core": self}
	for k, pid := range r.pids {
		if out[string(k)], err = cputime.Process(pid); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// measurement is one run of the workload.
type measurement struct {
	pins      int
	wall, cpu time.Duration
	// committed is how long the Pin calls took: from there to settled,
	// the tracking that the last commits still had ahead of them.
	committed time.Duration
	// settled is when the tracker first had nothing queued or pinning:
	// from there to wall, the statuses are read and checked.
	settled time.Duration
	// cpuBy is the CPU time of each process: "core" and, in processes
	// mode, each plugin kind.
	cpuBy map[string]time.Duration
	// commits are the orchestrator's Commit calls: pins/commits is the
	// size of its batches. ipfsCalls are the IPFS connector's Pin calls made
	// through the core (none when the tracker calls the connector's
	// process directly).
	commits, ipfsCalls int64
}

// perPin is d in microseconds per pin of m.
func (m measurement) perPin(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1e3 / float64(m.pins)
}
func (m measurement) wallPerPin() float64 { return m.perPin(m.wall) }
func (m measurement) cpuPerPin() float64  { return m.perPin(m.cpu) }
func (m measurement) batch() float64      { return float64(m.pins) / float64(max(m.commits, 1)) }

// pinAll runs the measured workload on cids with concurrency pin requests
// in flight, and measures it.
func (r *boundaryRig) pinAll(tb testing.TB, cids []core.Cid, concurrency int) measurement {
	tb.Helper()
	cpu0 := r.cpuTimes(tb)
	commits0, ipfs0 := r.commits.calls.Load(), r.ipfsPins.calls.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := core.PinOptions{ReplicationFactorMin: 1, ReplicationFactorMax: 1}
	start := time.Now()

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cids) {
					return
				}
				if _, err := r.c.Pin(ctx, cids[i], opts); err != nil {
					errs <- fmt.Errorf("pin %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	committed := time.Since(start)
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}

	// Every pin is committed; wait until the tracker is idle and the
	// statuses say pinned.
	want := make(map[string]bool, len(cids))
	for _, c := range cids {
		want[c.KeyString()] = true
	}
	var settled time.Duration
	for {
		st, err := r.tracker.Stats(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if st.PinQueued+st.Pinning > 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if settled == 0 {
			settled = time.Since(start)
		}
		pinned := 0
		for g, err := range r.c.StatusAll(ctx, core.TrackerStatusPinned, true) {
			if err != nil {
				tb.Fatal(err)
			}
			if want[g.Cid.KeyString()] {
				pinned++
			}
		}
		if pinned == len(cids) {
			break
		}
		if ctx.Err() != nil {
			tb.Fatalf("%d of %d pins pinned", pinned, len(cids))
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := measurement{
		pins:      len(cids),
		wall:      time.Since(start),
		committed: committed,
		settled:   settled,
		cpuBy:     r.cpuTimes(tb),
		commits:   r.commits.calls.Load() - commits0,
		ipfsCalls: r.ipfsPins.calls.Load() - ipfs0,
	}
	for p, d := range m.cpuBy {
		m.cpuBy[p] = d - cpu0[p]
		m.cpu += m.cpuBy[p]
	}
	return m
}

// BenchmarkPluginBoundary runs b.N pins through each mode at concurrency
// 16. µs/pin is the wall time per pin, cpu-µs/pin the CPU time of every
// process involved.
func BenchmarkPluginBoundary(b *testing.B) {
	for _, mode := range boundaryModes {
		b.Run(string(mode), func(b *testing.B) {
			r := newBoundaryRig(b, mode)
			cids := r.content(b, b.N)
			runtime.GC()
			b.ResetTimer()
			m := r.pinAll(b, cids, pinConcurrency)
			b.StopTimer()
			b.ReportMetric(m.wallPerPin(), "µs/pin")
			b.ReportMetric(m.cpuPerPin(), "cpu-µs/pin")
			b.ReportMetric(m.batch(), "pins/commit")
		})
	}
}

// The pin tracker's process pins through the IPFS connector's process
// directly, at the endpoint the core names, not through the core: the
// pins end pinned and no Pin call reaches the core's side of the
// connector.
func TestTrackerPinsThroughConnectorEndpoint(t *testing.T) {
	t.Parallel()
	r := newBoundaryRig(t, modeProcesses)
	if r.ipfsEndpoint.Address == "" {
		t.Fatal("the connector process has no endpoint")
	}
	m := r.pinAll(t, r.content(t, 64), 4)
	if m.ipfsCalls != 0 {
		t.Fatalf("%d IPFS Pin calls went through the core", m.ipfsCalls)
	}
}

// TestPluginBoundaryReport measures each mode several times and logs the
// medians, the ratio to in-process and the boundary overhead per pin, in
// wall time and in CPU time (of the test process and, in processes mode,
// of the plugin processes), with the average batch the orchestrator
// committed. PINCLUSTER_BOUNDARY_REPORT=<rounds>[,<pins>[,<concurrency>]]
// runs it (defaults: 4000 pins, concurrency 16);
// PINCLUSTER_BOUNDARY_PLUGIN_GOMAXPROCS sets GOMAXPROCS in the plugin
// processes. For example:
//
//	PINCLUSTER_BOUNDARY_REPORT=5 go test -run TestPluginBoundaryReport -v ./cmd/pincluster-service
func TestPluginBoundaryReport(t *testing.T) {
	spec := os.Getenv("PINCLUSTER_BOUNDARY_REPORT")
	if spec == "" {
		t.Skip("set PINCLUSTER_BOUNDARY_REPORT=<rounds>[,<pins>[,<concurrency>]] to measure the plugin boundary")
	}
	params := []int{0, 4000, pinConcurrency}
	for i, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || i >= len(params) || n <= 0 {
			t.Fatalf("PINCLUSTER_BOUNDARY_REPORT=%s: want <rounds>[,<pins>[,<concurrency>]]", spec)
		}
		params[i] = n
	}
	rounds, pins, concurrency := params[0], params[1], params[2]
	// The plugin processes inherit the environment, where a GOMAXPROCS
	// wins over cluster.plugin_gomaxprocs (the test process has read its
	// own already).
	if n := os.Getenv("PINCLUSTER_BOUNDARY_PLUGIN_GOMAXPROCS"); n != "" {
		t.Setenv("GOMAXPROCS", n)
		t.Logf("plugin processes run with GOMAXPROCS=%s", n)
	}
	t.Logf("load average before: %s", loadAverage())
	runs := map[boundaryMode][]measurement{}
	for round := range rounds {
		for _, mode := range boundaryModes {
			t.Run(fmt.Sprintf("%s/%d", mode, round), func(t *testing.T) {
				r := newBoundaryRig(t, mode)
				cids := r.content(t, pins)
				runtime.GC()
				m := r.pinAll(t, cids, concurrency)
				runs[mode] = append(runs[mode], m)
				t.Logf("%.1f µs/pin (committed after %.1f, settled after %.1f), %.1f CPU µs/pin, %.1f pins/commit, %d IPFS Pin calls through the core",
					m.wallPerPin(), m.perPin(m.committed), m.perPin(m.settled), m.cpuPerPin(), m.batch(), m.ipfsCalls)
			})
		}
	}
	of := func(mode boundaryMode, f func(measurement) float64) []float64 {
		var out []float64
		for _, m := range runs[mode] {
			out = append(out, f(m))
		}
		return out
	}
	wall := func(mode boundaryMode) []float64 { return of(mode, measurement.wallPerPin) }
	cpu := func(mode boundaryMode) []float64 { return of(mode, measurement.cpuPerPin) }
	baseWall, baseCPU := median(wall(modeInProcess)), median(cpu(modeInProcess))
	t.Logf("load average after: %s", loadAverage())
	t.Logf("%d pins, concurrency %d, %d rounds, GOMAXPROCS %d, NumCPU %d, TMPDIR %q", pins, concurrency, rounds, runtime.GOMAXPROCS(0), runtime.NumCPU(), os.TempDir())
	t.Logf("%-10s | %9s %6s %9s | %9s %6s %9s | %s", "mode", "wall/pin", "ratio", "overhead", "CPU/pin", "ratio", "overhead", "pins/commit")
	for _, mode := range boundaryModes {
		w, c := median(wall(mode)), median(cpu(mode))
		t.Logf("%-10s | %6.1f µs %5.2f× %6.1f µs | %6.1f µs %5.2f× %6.1f µs | %.1f",
			mode, w, w/baseWall, w-baseWall, c, c/baseCPU, c-baseCPU, median(of(mode, measurement.batch)))
	}
	var parts []string
	for _, k := range core.Kinds {
		parts = append(parts, string(k))
	}
	line := "CPU µs/pin by process (processes mode): core " + fmt.Sprintf("%.1f", median(of(modeProcesses, func(m measurement) float64 {
		return m.perPin(m.cpuBy["core"])
	})))
	for _, p := range parts {
		line += fmt.Sprintf(", %s %.1f", p, median(of(modeProcesses, func(m measurement) float64 {
			return m.perPin(m.cpuBy[p])
		})))
	}
	t.Log(line)
	all := map[string]map[string][]float64{}
	for _, mode := range boundaryModes {
		all[string(mode)] = map[string][]float64{"wall": wall(mode), "cpu": cpu(mode)}
	}
	raw, _ := json.Marshal(all)
	t.Logf("every run (µs/pin): %s", raw)
}

// loadAverage is the first three fields of /proc/loadavg: other work on
// the machine shows in the figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
