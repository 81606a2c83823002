package kubo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/kubo/kubotest"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// These tests put a scripted HTTP server in place of kubo, to check what a
// real daemon cannot be made to do on demand: pins that progress slowly or
// stall, errors in a stream's trailer, refusals and hangs.

func testCid(t testing.TB, s string) core.Cid {
	t.Helper()
	sum, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return core.NewCid(cid.NewCidV1(cid.Raw, sum))
}

// configured returns a connector configured with cfg, closed at the end.
func configured(t testing.TB, cfg string) *Connector {
	t.Helper()
	c := New()
	if err := c.Configure(context.Background(), json.RawMessage(cfg), sdktest.Environment(t), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func fakeKubo(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func pinOne(t testing.TB, c core.IPFSConnector, r core.IPFSPinRequest) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	var res []core.IPFSPinResult
	for r, err := range c.Pin(context.Background(), []core.IPFSPinRequest{r}) {
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	if len(res) != 1 || !res[0].Cid.Equals(r.Cid) {
		t.Fatalf("results %+v", res)
	}
	return res[0].Error, time.Since(start)
}

// progressHandler answers pin/add with a progress line every tick: the
// count rises `rising` times, then stays (as kubo's ticker does while it
// waits for blocks), and the pin completes after `total` ticks (never if
// total is 0).
func progressHandler(tick time.Duration, rising, total int, cancelled *atomic.Bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v0/pin/add" || r.URL.Query().Get("progress") != "true" {
			http.Error(w, "unexpected "+r.URL.String(), 400)
			return
		}
		w.Header().Set("Trailer", "X-Stream-Error")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		enc := json.NewEncoder(w)
		for i := 1; total == 0 || i <= total; i++ {
			select {
			case <-time.After(tick):
			case <-r.Context().Done():
				cancelled.Store(true)
				return
			}
			_ = enc.Encode(map[string]int{"Progress": min(i, rising)})
			w.(http.Flusher).Flush()
		}
		_ = enc.Encode(map[string][]string{"Pins": {r.URL.Query().Get("arg")}})
	}
}

func TestSlowPinWithProgressIsNotCut(t *testing.T) {
	var cancelled atomic.Bool
	// 12 ticks of 100ms, progress on each: 1.2s in all, far beyond the
	// 400ms pin timeout, which bounds only the time without progress.
	srv := fakeKubo(t, progressHandler(100*time.Millisecond, 100, 12, &cancelled))
	c := configured(t, `{"node_multiaddress":"`+srv.URL+`","pin_timeout":"400ms"}`)
	errText, took := pinOne(t, c, core.IPFSPinRequest{Cid: testCid(t, "slow"), MaxDepth: -1})
	if errText != "" {
		t.Fatalf("a slow pin that kept progressing failed after %s: %s", took, errText)
	}
	if took < time.Second {
		t.Fatalf("the pin took %s, the fake kubo needs 1.2s", took)
	}
}

func TestStalledPinTimesOut(t *testing.T) {
	var cancelled atomic.Bool
	// Progress rises to 3, then stays: the pin never completes.
	srv := fakeKubo(t, progressHandler(50*time.Millisecond, 3, 0, &cancelled))
	c := configured(t, `{"node_multiaddress":"`+srv.URL+`","pin_timeout":"1h"}`)
	// The request's timeout replaces pin_timeout.
	errText, took := pinOne(t, c, core.IPFSPinRequest{Cid: testCid(t, "stalled"), MaxDepth: -1, Timeout: 400 * time.Millisecond})
	if !strings.Contains(errText, "pin timed out: kubo made no progress for 400ms (3 blocks") {
		t.Fatalf("error %q", errText)
	}
	if took < 500*time.Millisecond || took > 5*time.Second {
		t.Fatalf("the stalled pin failed after %s (3 progress ticks of 50ms, then 400ms without progress)", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !cancelled.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !cancelled.Load() {
		t.Fatal("the pin/add request to kubo was not cancelled")
	}
}

func TestPinArgs(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	srv := fakeKubo(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", 405)
			return
		}
		if r.URL.Path != "/api/v0/pin/add" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		mu.Lock()
		seen[q.Get("arg")] = "recursive=" + q.Get("recursive") + " max-depth=" + q.Get("max-depth")
		mu.Unlock()
		fmt.Fprintf(w, `{"Pins":[%q]}`, q.Get("arg"))
	})
	c := configured(t, `{"node_multiaddress":"`+srv.URL+`"}`)
	rec, dir, depth := testCid(t, "r"), testCid(t, "d"), testCid(t, "m")
	for r, err := range c.Pin(context.Background(), []core.IPFSPinRequest{{Cid: rec, MaxDepth: -1}, {Cid: dir, MaxDepth: 0}, {Cid: depth, MaxDepth: 3}}) {
		if err != nil || r.Error != "" {
			t.Fatal(err, r.Error)
		}
	}
	want := map[string]string{
		rec.String():   "recursive=true max-depth=",
		dir.String():   "recursive=false max-depth=",
		depth.String(): "recursive=true max-depth=3",
	}
	mu.Lock()
	defer mu.Unlock()
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%s: sent %q, want %q", k, seen[k], v)
		}
	}
}

func TestKuboErrors(t *testing.T) {
	srv := fakeKubo(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v0/pin/add":
			// Fails after output started: the error is in the trailer.
			w.Header().Set("Trailer", "X-Stream-Error")
			w.WriteHeader(200)
			fmt.Fprintln(w, `{"Progress":1}`)
			w.Header().Set("X-Stream-Error", "pin: merkledag: not found")
		case "/api/v0/id":
			w.WriteHeader(500)
			fmt.Fprintln(w, `{"Message":"something broke","Code":0,"Type":"error"}`)
		case "/api/v0/repo/stat":
			http.Error(w, "403 - Forbidden", http.StatusForbidden)
		case "/api/v0/pin/rm":
			w.WriteHeader(500)
			fmt.Fprintln(w, `{"Message":"not pinned or pinned indirectly","Code":0,"Type":"error"}`)
		case "/api/v0/swarm/peers":
			w.WriteHeader(500)
			fmt.Fprintln(w, `{"Message":"this action must be run in online mode, try running 'ipfs daemon' first","Code":0,"Type":"error"}`)
		default:
			http.NotFound(w, r)
		}
	})
	c := configured(t, `{"node_multiaddress":"`+srv.URL+`"}`)
	ctx := context.Background()

	if e, _ := pinOne(t, c, core.IPFSPinRequest{Cid: testCid(t, "x"), MaxDepth: -1}); e != "kubo pin/add: pin: merkledag: not found" {
		t.Errorf("trailer error: %q", e)
	}
	if _, err := c.ID(ctx); err == nil || err.Error() != "kubo id: something broke" {
		t.Errorf("error answer: %v", err)
	}
	if _, err := c.RepoStat(ctx); err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "API.Authorizations") {
		t.Errorf("refusal: %v", err)
	}
	if _, err := c.BlockGet(ctx, testCid(t, "x")); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "RPC API") {
		t.Errorf("not kubo: %v", err)
	}
	for r, err := range c.Unpin(ctx, []core.Cid{testCid(t, "x")}) {
		if err != nil || r.Error != "" {
			t.Errorf("unpin of what kubo does not hold: %v %q", err, r.Error)
		}
	}
	if peers, err := c.SwarmPeers(ctx); err != nil || len(peers) != 0 {
		t.Errorf("swarm peers of an offline kubo: %v %v", peers, err)
	}
}

func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := fakeKubo(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := configured(t, `{"node_multiaddress":"`+srv.URL+`","ipfs_request_timeout":"300ms"}`)
	start := time.Now()
	_, err := c.ID(context.Background())
	if err == nil || err.Error() != "kubo id timed out after 300ms (ipfs_request_timeout)" {
		t.Fatalf("error %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("timed out after %s", took)
	}
	// The caller's own cancellation is reported as such.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.ID(ctx); err == nil || err.Error() != context.DeadlineExceeded.Error() {
		t.Fatalf("caller deadline: %v", err)
	}
}

func TestPinConcurrencyIsGlobal(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := fakeKubo(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v0/pin/add" {
			http.NotFound(w, r)
			return
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		fmt.Fprintf(w, `{"Pins":[%q]}`, r.URL.Query().Get("arg"))
	})
	c := configured(t, `{"node_multiaddress":"`+srv.URL+`","pin_concurrency":4}`)
	var wg sync.WaitGroup
	for call := range 3 {
		wg.Go(func() {
			var reqs []core.IPFSPinRequest
			for i := range 20 {
				reqs = append(reqs, core.IPFSPinRequest{Cid: testCid(t, fmt.Sprint(call, i)), MaxDepth: -1})
			}
			n := 0
			for r, err := range c.Pin(context.Background(), reqs) {
				if err != nil || r.Error != "" {
					t.Error(err, r.Error)
				}
				n++
			}
			if n != 20 {
				t.Errorf("%d results", n)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 4 {
		t.Fatalf("peak of %d pin/add calls in flight, want pin_concurrency (4)", p)
	}
}

func TestUnreachable(t *testing.T) {
	port := kubotest.FreePort(t)
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
	c := configured(t, `{"node_multiaddress":"`+addr+`"}`)
	want := "kubo is not reachable at " + addr + ": "
	if _, err := c.ID(context.Background()); err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("ID with kubo down: %v", err)
	}
	if e, _ := pinOne(t, c, core.IPFSPinRequest{Cid: testCid(t, "u"), MaxDepth: -1}); !strings.HasPrefix(e, want) {
		t.Fatalf("pin with kubo down: %q", e)
	}
	sock := "/unix" + t.TempDir() + "/none.sock"
	c2 := configured(t, `{"node_multiaddress":"`+sock+`"}`)
	if _, err := c2.RepoStat(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "kubo is not reachable at "+sock+": ") {
		t.Fatalf("RepoStat with no socket: %v", err)
	}
}
