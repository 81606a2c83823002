package rest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

func TestStreamSuccess(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	for _, c := range []struct {
		method, target string
		lines          int
	}{
		{"GET", "/peers", 1},
		{"GET", "/allocations", 1},
		{"GET", "/pins", 1},
		{"POST", "/pins/recover", 1},
		{"POST", "/pins/sync", 2},
		{"GET", "/pins?cids=" + cidA + "," + cidB, 2},
	} {
		r := do(t, ts, c.method, c.target, nil, nil)
		if r.status != 200 {
			t.Fatalf("%s %s: %d %s", c.method, c.target, r.status, r.body)
		}
		if got := r.header.Values("Content-Type"); !reflect.DeepEqual(got, []string{"application/json"}) {
			t.Errorf("%s: Content-Type %v", c.target, got)
		}
		if lines := ndjson(t, r.body); len(lines) != c.lines {
			t.Errorf("%s: %d lines, want %d", c.target, len(lines), c.lines)
		}
		v, ok := r.trailer["X-Stream-Error"]
		if !ok || !reflect.DeepEqual(v, []string{""}) {
			t.Errorf("%s: trailer %v, want one empty X-Stream-Error", c.target, r.trailer)
		}
	}
	// Exact bodies of the captured streams.
	if r := do(t, ts, "GET", "/peers", nil, nil); r.body != bodyID {
		t.Errorf("peers body %s", r.body)
	}
	if r := do(t, ts, "GET", "/allocations?filter=all", nil, nil); r.body != bodyAllocation {
		t.Errorf("allocations body %s", r.body)
	}
	if r := do(t, ts, "GET", "/pins?local=false&filter=&cids=", nil, nil); r.body != bodyStatus {
		t.Errorf("pins body %s", r.body)
	}
}

func seqOf[T any](items []T, errAt int, err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for i, it := range items {
			if i == errAt {
				var zero T
				if !yield(zero, err) {
					return
				}
			}
			if !yield(it, nil) {
				return
			}
		}
		if errAt == len(items) {
			var zero T
			yield(zero, err)
		}
	}
}

func TestStreamStatusDecision(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	id := fixtureID()
	boom := errors.New("boom")

	// Error before the first item: 500 JSON error.
	f.peersFn = func(context.Context) iter.Seq2[core.ID, error] { return seqOf([]core.ID{id}, 0, boom) }
	r := do(t, ts, "GET", "/peers", nil, nil)
	if r.status != 500 || r.body != errBody(500, "boom") {
		t.Errorf("error first: %d %q", r.status, r.body)
	}
	if r.trailer.Get("X-Stream-Error") != "" {
		t.Errorf("error first: trailer %v", r.trailer)
	}

	// Even the not-found text answers 500 in a stream.
	f.peersFn = func(context.Context) iter.Seq2[core.ID, error] { return core.ErrSeq[core.ID](core.ErrPinNotFound) }
	if r := do(t, ts, "GET", "/peers", nil, nil); r.status != 500 {
		t.Errorf("not found first: %d", r.status)
	}

	// Error after the first item: 200 and the trailer.
	f.peersFn = func(context.Context) iter.Seq2[core.ID, error] { return seqOf([]core.ID{id, id}, 1, boom) }
	r = do(t, ts, "GET", "/peers", nil, nil)
	if r.status != 200 || len(ndjson(t, r.body)) != 2 || !reflect.DeepEqual(r.trailer.Values("X-Stream-Error"), []string{"boom"}) {
		t.Errorf("error later: %d %q %v", r.status, r.body, r.trailer)
	}

	// Error at the end.
	f.peersFn = func(context.Context) iter.Seq2[core.ID, error] { return seqOf([]core.ID{id}, 1, boom) }
	r = do(t, ts, "GET", "/peers", nil, nil)
	if r.status != 200 || r.trailer.Get("X-Stream-Error") != "boom" {
		t.Errorf("error at end: %d %v", r.status, r.trailer)
	}

	// Several errors: several trailer values.
	f.peersFn = func(context.Context) iter.Seq2[core.ID, error] {
		return func(yield func(core.ID, error) bool) {
			_ = yield(id, nil) && yield(core.ID{}, errors.New("e1")) && yield(id, nil) && yield(core.ID{}, errors.New("e2"))
		}
	}
	r = do(t, ts, "GET", "/peers", nil, nil)
	if got := r.trailer.Values("X-Stream-Error"); !reflect.DeepEqual(got, []string{"e1", "e2"}) || len(ndjson(t, r.body)) != 2 {
		t.Errorf("two errors: trailer %v body %q", got, r.body)
	}

	// Empty: 204, no body, headers still declared.
	f.peersFn = func(context.Context) iter.Seq2[core.ID, error] { return core.SliceSeq[core.ID](nil) }
	r = do(t, ts, "GET", "/peers", nil, nil)
	if r.status != 204 || r.body != "" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("empty: %d %q %v", r.status, r.body, r.header)
	}
	// Empty with a filter that matches nothing (Appendix C).
	r = do(t, ts, "GET", "/pins?filter=pin_error", nil, nil)
	if r.status != 204 {
		t.Errorf("filtered empty: %d", r.status)
	}
}

// TestStatusCids checks GET /pins?cids=: per-CID errors go to the trailer,
// a 500 answers when nothing succeeded, results come in completion order,
// and parallelism is bounded.
func TestStatusCids(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))

	f.statusFn = func(_ context.Context, c core.Cid, _ bool) (core.GlobalPinInfo, error) {
		if c.Equals(mustCid(cidB)) {
			return core.GlobalPinInfo{}, errors.New("peer unreachable")
		}
		return f.info(c), nil
	}
	r := do(t, ts, "GET", "/pins?local=true&filter=pinned&cids="+cidA+","+cidB, nil, nil)
	if r.status != 200 || r.body != bodyStatus || !reflect.DeepEqual(r.trailer.Values("X-Stream-Error"), []string{"", "peer unreachable"}) {
		t.Errorf("mixed: %d %q %v", r.status, r.body, r.trailer)
	}
	if a := f.args("Status"); a[1] != true {
		t.Errorf("local not passed: %v", a)
	}
	if f.args("StatusAll") != nil {
		t.Error("filter used in cids mode")
	}

	r = do(t, ts, "GET", "/pins?cids="+cidB+","+cidB, nil, nil)
	if r.status != 500 || r.body != errBody(500, "peer unreachable") {
		t.Errorf("all failed: %d %q", r.status, r.body)
	}

	for _, q := range []string{"bad", cidA + ",bad", cidA + ",", "%20" + cidA} {
		r = do(t, ts, "GET", "/pins?cids="+q, nil, nil)
		if r.status != 400 || !strings.HasPrefix(decodeError(t, r.body).Message, "error decoding Cid: ") {
			t.Errorf("cids=%q: %d %q", q, r.status, r.body)
		}
	}

	// Completion order and bounded parallelism: the first CID is slow.
	var running, peak atomic.Int32
	release := make(chan struct{})
	f.statusFn = func(ctx context.Context, c core.Cid, _ bool) (core.GlobalPinInfo, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if c.Equals(mustCid(cidB)) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		} else {
			time.Sleep(time.Millisecond)
		}
		return f.info(c), nil
	}
	cids := []string{cidB}
	for range 40 {
		cids = append(cids, cidA)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		close(release)
	}()
	r = do(t, ts, "GET", "/pins?cids="+strings.Join(cids, ","), nil, nil)
	lines := ndjson(t, r.body)
	if r.status != 200 || len(lines) != 41 {
		t.Fatalf("parallel: %d, %d lines", r.status, len(lines))
	}
	if !strings.Contains(lines[40], cidB) {
		t.Errorf("slow CID not last: %s", lines[40])
	}
	if p := peak.Load(); p > statusCidsParallelism || p < 2 {
		t.Errorf("peak parallelism %d", p)
	}
}

// TestStreamClientGone checks that the producer is stopped when the client
// goes away, and that the cids workers exit.
func TestStreamClientGone(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	stopped := make(chan struct{})
	f.statusAllFn = func(ctx context.Context, _ core.TrackerStatus, _ bool) iter.Seq2[core.GlobalPinInfo, error] {
		return func(yield func(core.GlobalPinInfo, error) bool) {
			defer close(stopped)
			gpi := f.info(mustCid(cidA))
			for {
				if ctx.Err() != nil || !yield(gpi, nil) {
					return
				}
			}
		}
	}
	resp, err := http.Get(ts.URL + "/pins")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("producer not stopped after the client left")
	}
}

// TestLargeStream serves 100k items and checks that the handler streams
// them: the first line reaches the client while the producer is still
// running, and the heap does not grow with the number of items.
func TestLargeStream(t *testing.T) {
	const total = 100_000
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))

	firstSeen := make(chan struct{})
	var producerErr atomic.Value
	var peakHeap atomic.Uint64
	f.statusAllFn = func(ctx context.Context, _ core.TrackerStatus, _ bool) iter.Seq2[core.GlobalPinInfo, error] {
		return func(yield func(core.GlobalPinInfo, error) bool) {
			var ms runtime.MemStats
			base := fixtureStatus(mustCid(cidA), core.TrackerStatusPinned)
			for i := range total {
				gpi := base
				gpi.Name = fmt.Sprintf("item-%d", i)
				if !yield(gpi, nil) {
					return
				}
				if i == 10 {
					select {
					case <-firstSeen:
					case <-time.After(10 * time.Second):
						producerErr.Store("first line not delivered while streaming")
						return
					}
				}
				if i%10_000 == 0 {
					runtime.ReadMemStats(&ms)
					if ms.HeapAlloc > peakHeap.Load() {
						peakHeap.Store(ms.HeapAlloc)
					}
				}
			}
		}
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	resp, err := http.Get(ts.URL + "/pins")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	n := 0
	var once sync.Once
	for {
		line, err := br.ReadSlice('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && !strings.Contains(string(line), `"item-0"`) {
			t.Fatalf("first line %q", line)
		}
		n++
		once.Do(func() { close(firstSeen) })
	}
	if v := producerErr.Load(); v != nil {
		t.Fatal(v)
	}
	if n != total {
		t.Fatalf("%d lines, want %d", n, total)
	}
	if resp.Trailer.Get("X-Stream-Error") != "" {
		t.Errorf("trailer %v", resp.Trailer)
	}
	// Buffering 100k items (~40 MB of JSON) would show here.
	if grow := int64(peakHeap.Load()) - int64(base.HeapAlloc); grow > 24<<20 {
		t.Errorf("heap grew by %d MiB while streaming", grow>>20)
	}
}

// rawExchange sends a raw HTTP/1.1 request and returns the raw response.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStreamWire checks the bytes on the wire: the Trailer declaration, the
// chunked body and the empty X-Stream-Error trailer (spec Appendix C).
func TestStreamWire(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	addr := strings.TrimPrefix(ts.URL, "http://")

	raw := rawExchange(t, addr, "GET /peers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	for _, want := range []string{"HTTP/1.1 200 OK", "\r\nContent-Type: application/json", "\r\nTrailer: X-Stream-Error", "\r\nTransfer-Encoding: chunked"} {
		if !strings.Contains(head, want) {
			t.Errorf("head lacks %q:\n%s", want, head)
		}
	}
	if !strings.HasSuffix(body, "0\r\nX-Stream-Error: \r\n\r\n") {
		t.Errorf("body does not end with an empty trailer: %q", body)
	}
	if !strings.Contains(body, bodyID) {
		t.Errorf("body lacks the item: %q", body)
	}

	f.peersFn = func(context.Context) iter.Seq2[core.ID, error] { return core.SliceSeq[core.ID](nil) }
	raw = rawExchange(t, addr, "GET /peers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(raw, "HTTP/1.1 204 No Content\r\n") || !strings.Contains(raw, "\r\nTrailer: X-Stream-Error\r\n") || !strings.HasSuffix(raw, "\r\n\r\n") {
		t.Errorf("204 stream: %q", raw)
	}
}
