package kubo

import (
	"bytes"
	"context"
	"crypto/rand"
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

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/internal/cputime"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/kubo/kubotest"
)

// BenchmarkPinRate compares the end-to-end pin rate of pincluster with
// kubo's own. N blocks (10,000; PINCLUSTER_BENCH_N overrides) are put into
// a kubo daemon twice over, as two sets. One set is pinned through a
// pincluster-service daemon's REST API (POST /pins/{cid}, 16 at a time),
// timed until every pin reports pinned; the other with N pin/add calls
// sent straight to kubo, 16 at a time, half before and half after the
// pincluster run (kubo's pin/add slows down as its pinset grows: this way
// both see the same pinset size on average). It prints both rates, their
// ratio (the target is at least 0.8) and, on Linux, the CPU time each
// process used. Run it with
//
//	go test -run '^$' -bench PinRate -benchtime 1x -count 3 ./plugins/ipfsconnector/kubo/
func BenchmarkPinRate(b *testing.B) {
	n := servicetest.EnvInt(b, "PINCLUSTER_BENCH_N", 10_000, 2)
	const concurrency = 16
	node := kubotest.Start(b, kubotest.Options{})
	dir, api := newPeerDir(b, node.ConnectorConfig(nil), nil)
	d := startPeer(b, dir, api)
	direct := configured(b, string(node.ConnectorConfig(nil)))
	procs := func() map[string][]int {
		m := map[string][]int{"kubo": {node.PID()}, "pincluster core": {d.Cmd.Process.Pid}}
		for pid, name := range childProcesses(d.Cmd.Process.Pid) {
			m["pincluster "+name] = append(m["pincluster "+name], pid)
		}
		return m
	}

	for range b.N {
		b.StopTimer()
		viaKubo, viaCluster := benchBlocks(b, direct, n), benchBlocks(b, direct, n)
		half := n / 2

		b.StartTimer()
		cpu0 := cpuTimes(procs())
		kuboTook := pinStraight(b, node, viaKubo[:half], concurrency)
		cpu1 := cpuTimes(procs())
		clusterTook := pinThroughCluster(b, d, viaCluster, concurrency)
		cpu2 := cpuTimes(procs())
		kuboTook += pinStraight(b, node, viaKubo[half:], concurrency)
		cpu3 := cpuTimes(procs())
		b.StopTimer()

		kuboRate := float64(n) / kuboTook.Seconds()
		clusterRate := float64(n) / clusterTook.Seconds()
		b.ReportMetric(kuboRate, "kubo-pins/s")
		b.ReportMetric(clusterRate, "pincluster-pins/s")
		b.ReportMetric(clusterRate/kuboRate, "ratio")
		fmt.Printf("pin rate, %d pins at concurrency %d (%d CPUs): kubo pin/add %.0f pins/s (%s); pincluster POST /pins %.0f pins/s (%s); ratio %.2f\n",
			n, concurrency, runtime.NumCPU(), kuboRate, kuboTook.Round(time.Millisecond), clusterRate, clusterTook.Round(time.Millisecond), clusterRate/kuboRate)
		if cpu0 != nil {
			fmt.Printf("CPU seconds per 1,000 pins:\n")
			for _, name := range slices.Sorted(maps.Keys(cpu0)) {
				straight := (cpu1[name] - cpu0[name] + cpu3[name] - cpu2[name]) / float64(n) * 1000
				cluster := (cpu2[name] - cpu1[name]) / float64(n) * 1000
				fmt.Printf("  %-42s straight to kubo %5.2f   through pincluster %5.2f\n", name, straight, cluster)
			}
		}
	}
}

// childProcesses returns the child processes of pid (Linux), by pid, named
// after the plugin they serve ("plugin <kind> <name>").
func childProcesses(pid int) map[int]string {
	out := map[int]string{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
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
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid != pid {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		name := "process"
		if i := slices.Index(args, "plugin"); i >= 0 {
			name = strings.Join(args[i:], " ")
		}
		out[p] = name
	}
	return out
}

// cpuTimes returns the CPU seconds of each group of processes (Linux), or
// nil when they cannot be read.
func cpuTimes(groups map[string][]int) map[string]float64 {
	out := map[string]float64{}
	for name, pids := range groups {
		for _, pid := range pids {
			d, err := cputime.Process(pid)
			if err != nil {
				return nil
			}
			out[name] += d.Seconds()
		}
	}
	return out
}

// benchBlocks puts n small random raw blocks into kubo.
func benchBlocks(b *testing.B, c core.IPFSConnector, n int) []core.Cid {
	b.Helper()
	cids := make([]core.Cid, 0, n)
	const batch = 1000
	for len(cids) < n {
		var blocks []core.Block
		for range min(batch, n-len(cids)) {
			data := make([]byte, 256)
			_, _ = rand.Read(data)
			sum, _ := mh.Sum(data, mh.SHA2_256, -1)
			ci := core.NewCid(cid.NewCidV1(cid.Raw, sum))
			blocks = append(blocks, core.Block{Cid: ci, Data: data})
			cids = append(cids, ci)
		}
		if err := c.BlockPut(context.Background(), blocks); err != nil {
			b.Fatal(err)
		}
	}
	return cids
}

// runConcurrently calls fn for every CID, concurrency at a time.
func runConcurrently(cids []core.Cid, concurrency int, fn func(core.Cid) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cids) {
					return
				}
				if err := fn(cids[i]); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

func benchClient(concurrency int) *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency,
	}}
}

// postOK posts to url and fails unless the answer is 200.
func postOK(c *http.Client, url string) error {
	resp, err := c.Post(url, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	return nil
}

// pinStraight sends one pin/add call per CID to kubo.
func pinStraight(b *testing.B, node *kubotest.Node, cids []core.Cid, concurrency int) time.Duration {
	b.Helper()
	hc := benchClient(concurrency)
	defer hc.CloseIdleConnections()
	start := time.Now()
	err := runConcurrently(cids, concurrency, func(ci core.Cid) error {
		return postOK(hc, node.APIURL()+"/pin/add?arg="+ci.String())
	})
	took := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	return took
}

// pinThroughCluster pins every CID with POST /pins/{cid} and waits until
// all of them report pinned.
func pinThroughCluster(b *testing.B, d *peerDaemon, cids []core.Cid, concurrency int) time.Duration {
	b.Helper()
	hc := benchClient(concurrency)
	defer hc.CloseIdleConnections()
	want := map[string]bool{}
	for _, ci := range cids {
		want[ci.String()] = true
	}
	start := time.Now()
	if err := runConcurrently(cids, concurrency, func(ci core.Cid) error {
		return postOK(hc, d.URL+"/pins/"+ci.String())
	}); err != nil {
		b.Fatal(err)
	}
	posted := time.Since(start)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		// Cheap check first: the tracker answers queued and in-progress
		// pins without asking kubo, and reading stops at the first one.
		if !servicetest.AnyStatus(b, hc, d.URL+"/pins?local=true&filter=pin_queued,pinning,pin_error") {
			// Then the statuses of every pin. The tracker reads kubo's pin
			// list when this request starts: if every pin is pinned, it was
			// by then, so the clock stops at the request, not at the end of
			// streaming 10,000 statuses back.
			asked := time.Since(start)
			listStart := time.Now()
			pinned := 0
			for _, g := range ndjsonOf[core.GlobalPinInfo](b, call(b, "GET", d.URL+"/pins?local=true&filter=pinned", nil, "")) {
				if want[g.Cid.String()] {
					pinned++
				}
			}
			if pinned == len(cids) {
				fmt.Printf("pincluster: every POST /pins answered after %s, every pin pinned after %s (the status listing that shows it took %s)\n",
					posted.Round(time.Millisecond), asked.Round(time.Millisecond), time.Since(listStart).Round(time.Millisecond))
				return asked
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("not every pin reported pinned within 10 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
