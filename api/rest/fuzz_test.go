package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pincluster/pincluster/core"
)

var fuzzSegments = []string{
	"", "id", "version", "peers", "add", "allocations", "pins", "recover", "sync",
	"ipfs", "ipns", "ipld", "gc", "health", "graph", "alerts", "bandwidth", "monitor",
	"metrics", "token", "freespace", cidA, cidB, cidV1, peerA, "abcd", "..", ".", "%",
	"a b", "Qm", "\x00", "é", "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8",
}

var fuzzKeys = []string{
	"local", "filter", "cids", "name", "mode", "replication", "replication-min",
	"replication-max", "shard-size", "user-allocations", "expire-at", "expire-in",
	"meta-", "meta-x", "pin-update", "origins", "layout", "format", "chunker",
	"stream-channels", "cid-version", "hash", "raw-leaves", "progress", "no-pin",
	"wrap-with-directory",
}

var fuzzValues = []string{
	"", "true", "false", "1", "-1", "x", "999999999999999999999", "pinned", "pin,foo",
	cidA, cidA + "," + cidB, peerA + ",x", "1h", "1ms", "2030-01-01T00:00:00Z",
	"/ip4/1.2.3.4/tcp/1/p2p/" + peerA, "/ip4/1.2.3.4", "trickle", "car", "size-0",
	"rabin-1-2-3", "blake2b-256", "%00", "\xff",
}

var fuzzTemplates = []string{
	"/id", "/version", "/peers", "/peers/{x}", "/add", "/allocations", "/allocations/{x}",
	"/pins", "/pins/sync", "/pins/{x}/sync", "/pins/{x}/recover", "/pins/recover", "/pins/{x}",
	"/pins/{kt}/{x}", "/pins/{kt}/{x}/{x}", "/ipfs/gc", "/health/graph", "/health/alerts",
	"/health/bandwidth", "/monitor/metrics/{x}", "/monitor/metrics", "/token", "/health",
}

var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"}

func randomRequest(rng *rand.Rand) (*http.Request, bool) {
	var segs []string
	for range rng.IntN(5) {
		if rng.IntN(8) == 0 {
			b := make([]byte, rng.IntN(12))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			segs = append(segs, string(b))
		} else {
			segs = append(segs, fuzzSegments[rng.IntN(len(fuzzSegments))])
		}
	}
	p := "/" + strings.Join(segs, "/")
	if rng.IntN(3) != 0 {
		p = fuzzTemplates[rng.IntN(len(fuzzTemplates))]
		for strings.Contains(p, "{x}") {
			p = strings.Replace(p, "{x}", fuzzSegments[rng.IntN(len(fuzzSegments))], 1)
		}
		p = strings.ReplaceAll(p, "{kt}", []string{"ipfs", "ipns", "ipld"}[rng.IntN(3)])
	}
	q := url.Values{}
	for range rng.IntN(6) {
		q.Add(fuzzKeys[rng.IntN(len(fuzzKeys))], fuzzValues[rng.IntN(len(fuzzValues))])
	}
	u := url.URL{Path: p, RawQuery: q.Encode()}
	if rng.IntN(10) == 0 {
		u.RawQuery = "%zz&=&&a=%"
	}

	var body io.Reader = http.NoBody
	ctype := ""
	switch rng.IntN(5) {
	case 0:
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		body = bytes.NewReader(b)
		ctype = []string{"", "text/plain", "multipart/form-data; boundary=xyz", "application/json"}[rng.IntN(4)]
	case 1:
		var buf bytes.Buffer
		buf.WriteString("--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nhello\r\n")
		if rng.IntN(2) == 0 {
			buf.WriteString("--xyz--\r\n")
		}
		body = &buf
		ctype = "multipart/form-data; boundary=xyz"
	case 2:
		body = strings.NewReader(`{"peer_id":"` + fuzzSegments[rng.IntN(len(fuzzSegments))] + `"}`)
	}
	req, err := http.NewRequest(fuzzMethods[rng.IntN(len(fuzzMethods))], "http://example.com"+u.String(), body)
	if err != nil {
		return nil, false
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	switch rng.IntN(6) {
	case 0:
		req.SetBasicAuth("user", "pass")
	case 1:
		req.Header.Set("Authorization", "Bearer "+fuzzValues[rng.IntN(len(fuzzValues))])
	case 2:
		req.Header.Set("Origin", "http://x")
		req.Header.Set("Access-Control-Request-Method", fuzzMethods[rng.IntN(len(fuzzMethods))])
	}
	return req, true
}

// checkResponse verifies what every answer must satisfy.
func checkResponse(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	code := rec.Code
	if code < 200 || code > 599 {
		t.Fatalf("%s %s: status %d", req.Method, req.URL, code)
	}
	if code >= 400 && code != 405 && rec.Body.Len() > 0 {
		var e core.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != code || e.Message == "" {
			t.Fatalf("%s %s: %d with body %q", req.Method, req.URL, code, rec.Body.String())
		}
	}
}

// TestRandomRequests sends many random requests (paths, queries, bodies,
// auth headers) to servers with and without authentication: none may make
// a handler panic, and every error answer is a well-formed error body.
func TestRandomRequests(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	rng := rand.New(rand.NewPCG(1, 2))
	plain := newTestServer(t, testConfig(), newFake())
	cfg := testConfig()
	cfg.BasicAuthCredentials = map[string]string{"user": "pass"}
	authed := newTestServer(t, cfg, newFake())
	seen := map[int]int{}
	for i := range n {
		req, ok := randomRequest(rng)
		if !ok {
			continue
		}
		s := plain
		if i%3 == 0 {
			s = authed
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		checkResponse(t, req, rec)
		seen[rec.Code]++
	}
	// The generator must reach the handlers, not only the router.
	for _, code := range []int{200, 204, 307, 400, 401, 404, 405} {
		if seen[code] == 0 {
			t.Errorf("no %d answer among %v", code, seen)
		}
	}
	t.Logf("statuses: %v", seen)
}

// FuzzHandler feeds arbitrary method, target, content type and body to the
// handler. Run with: go test -fuzz=FuzzHandler ./api/rest/
func FuzzHandler(f *testing.F) {
	seeds := [][4]string{
		{"GET", "/id", "", ""},
		{"POST", "/pins/" + cidA + "?replication=x", "", ""},
		{"POST", "/pins/ipfs/" + cidA + "/a/b?origins=/ip4/1.2.3.4", "", ""},
		{"DELETE", "/pins/ipns/x.eth/", "", ""},
		{"GET", "/pins?cids=" + cidA + ",x&filter=pinned", "", ""},
		{"POST", "/add?layout=trickle", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nx\r\n--b--\r\n"},
		{"POST", "/peers", "", `{"peer_id":"` + peerA + `"}`},
		{"GET", "/allocations?filter=pin,meta-pin", "", ""},
		{"POST", "/token", "", ""},
		{"OPTIONS", "/pins", "", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	srv, err := NewServer(testConfig(), newFake(), nil)
	if err != nil {
		f.Fatal(err)
	}
	srv.onPanic = func(v any) { panic(v) } // a recovered panic is a crash
	f.Fuzz(func(t *testing.T, method, target, ctype, body string) {
		u, err := url.Parse(target)
		if err != nil || method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") {
			return
		}
		req, err := http.NewRequest(method, "http://example.com"+u.RequestURI(), strings.NewReader(body))
		if err != nil {
			return
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		checkResponse(t, req, rec)
	})
}
