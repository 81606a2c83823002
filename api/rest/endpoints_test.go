package rest

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

var pinKeys = []string{
	"replication_factor_min", "replication_factor_max", "name", "mode", "shard_size",
	"user_allocations", "expire_at", "metadata", "pin_update", "origins",
	"cid", "type", "allocations", "max_depth", "reference", "timestamp",
}

var gpiKeys = []string{"cid", "name", "allocations", "origins", "created", "metadata", "peer_map"}

// TestSuccessShapes checks the body of every non-streaming endpoint, byte
// for byte against the captured Appendix C bodies where there is one.
func TestSuccessShapes(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))

	cases := []struct {
		method, target string
		status         int
		body           string   // exact body, when not empty
		keys           []string // top-level keys in order, when not nil
	}{
		{"GET", "/id", 200, bodyID, nil},
		{"GET", "/version", 200, bodyVersion, nil},
		{"GET", "/allocations/" + cidA, 200, bodyAllocation, pinKeys},
		{"GET", "/pins/" + cidA, 200, bodyStatus, gpiKeys},
		{"GET", "/pins/" + cidA + "?local=true", 200, bodyStatus, gpiKeys},
		{"GET", "/monitor/metrics/freespace", 200, bodyFreespace, nil},
		{"GET", "/monitor/metrics/nonexistent", 200, "[]\n", nil},
		{"GET", "/monitor/metrics/tag:group", 200, "[]\n", nil},
		{"GET", "/monitor/metrics", 200, `["ping","freespace"]` + "\n", nil},
		{"GET", "/health/graph", 200, bodyGraph, nil},
		{"GET", "/health/alerts", 200, "[]\n", nil},
		{"GET", "/health/bandwidth", 200, "null\n", nil},
		{"GET", "/health", 204, "", nil},
		{"POST", "/ipfs/gc", 200, bodyRepoGC, nil},
		{"POST", "/ipfs/gc?local=true", 200, bodyRepoGC, nil},
		{"DELETE", "/peers/" + peerA, 204, "", nil},
		{"POST", "/pins/" + cidA + "/recover", 200, bodyStatus, gpiKeys},
		{"POST", "/pins/" + cidA + "/sync?local=true", 200, bodyStatus, gpiKeys},
		{"POST", "/pins/" + cidA, 200, "", pinKeys},
		{"POST", "/pins/ipfs/" + cidA, 200, "", pinKeys},
		{"DELETE", "/pins/" + cidA, 200, bodyAllocation, pinKeys},
		{"DELETE", "/pins/ipfs/" + cidA, 200, bodyAllocation, pinKeys},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			r := do(t, ts, c.method, c.target, nil, nil)
			if r.status != c.status {
				t.Fatalf("status %d, want %d (body %q)", r.status, c.status, r.body)
			}
			if ct := r.header.Values("Content-Type"); !reflect.DeepEqual(ct, []string{"application/json"}) {
				t.Errorf("Content-Type %q", ct)
			}
			if c.body != "" && r.body != c.body {
				t.Errorf("body\n got %s\nwant %s", r.body, c.body)
			}
			if c.status == 204 && r.body != "" {
				t.Errorf("204 with body %q", r.body)
			}
			if c.keys != nil {
				if got := jsonKeys(t, r.body); !reflect.DeepEqual(got, c.keys) {
					t.Errorf("keys %v, want %v", got, c.keys)
				}
			}
		})
	}

	// Arguments that reached the cluster.
	if a := f.args("Status"); len(a) != 2 || a[1] != true {
		t.Errorf("Status args %v: local=true not passed", a)
	}
	if a := f.args("Sync"); len(a) != 2 || a[1] != true {
		t.Errorf("Sync args %v", a)
	}
	if a := f.args("RepoGC"); len(a) != 1 || a[0] != true {
		t.Errorf("RepoGC args %v", a)
	}
	if a := f.args("PeerRemove"); len(a) != 1 || a[0] != mustPeer(peerA) {
		t.Errorf("PeerRemove args %v", a)
	}
	if a := f.args("UnpinPath"); len(a) != 1 || a[0] != "/ipfs/"+cidA {
		t.Errorf("UnpinPath args %v", a)
	}
	if a := f.args("Metrics"); a[0] != "tag:group" && a[0] != "freespace" && a[0] != "nonexistent" {
		t.Errorf("Metrics args %v", a)
	}
}

// TestPinResponse checks the POST pin response and the options the cluster
// receives (spec Appendix A.3).
func TestPinResponse(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	q := "?mode=recursive&name=&replication-max=0&replication-min=0&shard-size=0&user-allocations="
	r := do(t, ts, "POST", "/pins/ipfs/"+cidB+q, nil, nil)
	want := `{"replication_factor_min":0,"replication_factor_max":0,"name":"","mode":"recursive","shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":{},"pin_update":null,"origins":null,"cid":"` + cidB + `","type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2026-11-23T18:59:51Z"}` + "\n"
	if r.status != 200 || r.body != want {
		t.Fatalf("got %d %s\nwant %s", r.status, r.body, want)
	}
	a := f.args("PinPath")
	if a[0] != "/ipfs/"+cidB {
		t.Errorf("path %v", a[0])
	}

	r = do(t, ts, "POST", "/pins/ipfs/"+cidB+"/a/b/c?mode=direct&replication=2&meta-k=v&name=n", nil, nil)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	a = f.args("PinPath")
	opts := a[1].(core.PinOptions)
	if a[0] != "/ipfs/"+cidB+"/a/b/c" || opts.Mode != core.PinModeDirect || opts.ReplicationFactorMin != 2 ||
		opts.ReplicationFactorMax != 2 || opts.Metadata["k"] != "v" || opts.Name != "n" {
		t.Errorf("PinPath args %v", a)
	}

	r = do(t, ts, "POST", "/pins/"+cidB+"?pin-update="+cidA+"&user-allocations="+peerA+",bad", nil, nil)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	opts = f.args("Pin")[1].(core.PinOptions)
	if !opts.PinUpdate.Equals(mustCid(cidA)) || len(opts.UserAllocations) != 1 || opts.UserAllocations[0] != mustPeer(peerA) {
		t.Errorf("Pin opts %+v", opts)
	}

	for _, kt := range []string{"ipns", "ipld"} {
		target := "/pins/" + kt + "/" + cidB
		r = do(t, ts, "POST", target, nil, nil)
		if r.status != 200 {
			t.Errorf("%s: %d %s", target, r.status, r.body)
		}
	}
}

// TestAppendixB replays the status-code vectors of spec Appendix B. The two
// sync vectors differ on purpose: this server implements the sync routes.
func TestAppendixB(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	multipartCT := "multipart/form-data; boundary=xyz"
	emptyMultipart := "--xyz--\r\n"

	cases := []struct {
		method, target string
		body           string
		ctype          string
		status         int
		msg            string // exact error message; "" = no check
		msgPrefix      string // error message prefix; "" = no check
	}{
		{"GET", "/id", "", "", 200, "", ""},
		{"GET", "/idx", "", "", 404, "not found", ""},
		{"PUT", "/id", "", "", 405, "", ""},
		{"GET", "/id/", "", "", 307, "", ""},
		{"GET", "/health", "", "", 204, "", ""},
		{"POST", "/token", "", "", 401, "unauthorized", ""},
		{"GET", "/allocations?filter=invalid", "", "", 400, "invalid filter value", ""},
		{"GET", "/allocations?filter=pin,meta-pin", "", "", 200, "", ""},
		{"GET", "/allocations/" + cidB, "", "", 404, "pin is not part of the pinset", ""},
		{"GET", "/allocations/abcd", "", "", 400, "error decoding Cid: invalid cid: selected encoding not supported", ""},
		{"GET", "/pins?filter=foo", "", "", 400, "invalid filter value", ""},
		{"GET", "/pins?cids=bad", "", "", 400, "", "error decoding Cid: "},
		{"GET", "/pins/" + cidB, "", "", 200, "", ""},
		{"POST", "/pins/" + cidA + "?replication-min=x", "", "", 400, "parameter replication-min invalid", ""},
		{"POST", "/pins/ipfs/invalidhash", "", "", 400, "", "error parsing path: "},
		{"DELETE", "/pins/" + cidB, "", "", 404, "pin is not part of the pinset", ""},
		{"DELETE", "/pins/abcd", "", "", 400, "", "error decoding Cid: "},
		{"DELETE", "/peers/abc", "", "", 400, "", "error decoding Peer ID: "},
		{"POST", "/peers", "oeoe", "", 400, "error decoding request body", ""},
		{"POST", "/peers", `{"peer_id":"ab"}`, "", 400, "error decoding peer_id", ""},
		{"POST", "/add", "hello", "text/plain", 400, "request Content-Type isn't multipart/form-data", ""},
		{"POST", "/add?layout=foo", emptyMultipart, multipartCT, 400, "layout parameter is invalid", ""},
		// Deliberate difference: v1.1.6 has no sync routes (400 / 404 there).
		{"POST", "/pins/sync", "", "", 200, "", ""},
		{"POST", "/pins/" + cidA + "/sync", "", "", 200, "", ""},
		{"GET", "/monitor/metrics/nonexistent", "", "", 200, "", ""},
		{"GET", "/health/alerts", "", "", 200, "", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			var hdr map[string]string
			if c.ctype != "" {
				hdr = map[string]string{"Content-Type": c.ctype}
			}
			r := do(t, ts, c.method, c.target, strings.NewReader(c.body), hdr)
			if r.status != c.status {
				t.Fatalf("status %d, want %d (body %q)", r.status, c.status, r.body)
			}
			if c.status >= 400 && c.status != 405 {
				e := decodeError(t, r.body)
				if e.Code != c.status {
					t.Errorf("code %d in body, status %d", e.Code, c.status)
				}
				if c.msg != "" && e.Message != c.msg {
					t.Errorf("message %q, want %q", e.Message, c.msg)
				}
				if c.msgPrefix != "" && !strings.HasPrefix(e.Message, c.msgPrefix) {
					t.Errorf("message %q, want prefix %q", e.Message, c.msgPrefix)
				}
			}
			if c.status == 405 && r.body != "" {
				t.Errorf("405 with body %q", r.body)
			}
			if c.status == 307 && r.header.Get("Location") != "/id" {
				t.Errorf("Location %q", r.header.Get("Location"))
			}
		})
	}

	// GET /pins/<unpinned cid>: every peer says unpinned.
	r := do(t, ts, "GET", "/pins/"+cidB, nil, nil)
	if !strings.Contains(r.body, `"status":"unpinned"`) {
		t.Errorf("unpinned status body %s", r.body)
	}
}

// TestRouteOrder checks the routing consequences listed in spec §0.
func TestRouteOrder(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	cases := []struct {
		method, target string
		status         int
		call           string // cluster method expected to be called
	}{
		{"POST", "/pins/recover", 200, "RecoverAll"},
		{"GET", "/pins/recover", 400, ""},
		{"POST", "/pins/ipfs/recover", 400, ""},
		{"POST", "/pins/ipfs", 400, ""},
		{"POST", "/pins/" + cidA + "/recover", 200, "Recover"},
		{"POST", "/pins/sync?local=true", 200, "SyncAll"},
		{"POST", "/pins/" + cidA + "/sync", 200, "Sync"},
		{"HEAD", "/id", 405, ""},
		// gorilla/mux 1.8.1 forgets the method mismatch once a later
		// route's method matches, so this is 404 (as on IPFS Cluster).
		{"DELETE", "/id", 404, ""},
		{"GET", "/pins/ipfs/" + cidA, 404, ""},
		{"PUT", "/pins/" + cidA, 405, ""},
		{"GET", "/", 307, ""},
	}
	for _, c := range cases {
		r := do(t, ts, c.method, c.target, nil, nil)
		if r.status != c.status {
			t.Errorf("%s %s: status %d, want %d (%s)", c.method, c.target, r.status, c.status, r.body)
		}
		if c.call != "" && f.args(c.call) == nil {
			t.Errorf("%s %s: %s not called", c.method, c.target, c.call)
		}
	}
	if a := f.args("SyncAll"); a[0] != true {
		t.Errorf("SyncAll local %v", a)
	}
	if r := do(t, ts, "GET", "/id//", nil, nil); r.status != 307 {
		t.Errorf("double slash: %d", r.status)
	}
}

func TestFilters(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))

	alloc := []struct {
		q    string
		want core.PinType
	}{
		{"", core.AllType},
		{"?filter=", core.AllType},
		{"?filter=all", core.AllType},
		{"?filter=pin", core.DataType},
		{"?filter=pin%2Cmeta-pin", core.DataType | core.MetaType},
		{"?filter=pin,foo", core.DataType},
		{"?filter=shard-pin,clusterdag-pin", core.ShardType | core.ClusterDAGType},
	}
	for _, c := range alloc {
		r := do(t, ts, "GET", "/allocations"+c.q, nil, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", c.q, r.status, r.body)
		}
		if got := f.args("Allocations")[0].(core.PinType); got != c.want {
			t.Errorf("allocations%s: filter %v, want %v", c.q, got, c.want)
		}
	}
	for _, q := range []string{"?filter=foo", "?filter=foo,bar", "?filter=bad-type"} {
		if r := do(t, ts, "GET", "/allocations"+q, nil, nil); r.status != 400 {
			t.Errorf("allocations%s: %d", q, r.status)
		}
	}

	status := []struct {
		q     string
		want  core.TrackerStatus
		local bool
	}{
		{"?local=false&filter=&cids=", 0, false},
		{"?filter=pinned", core.TrackerStatusPinned, false},
		{"?filter=error", core.TrackerStatusError, false},
		{"?filter=pin_error,%20unpin_error&local=true", core.TrackerStatusPinError | core.TrackerStatusUnpinError, true},
		{"?filter=queued,foo&local=1", core.TrackerStatusQueued, false},
		{"?local=True", 0, false},
	}
	for _, c := range status {
		r := do(t, ts, "GET", "/pins"+c.q, nil, nil)
		if r.status != 200 && r.status != 204 {
			t.Fatalf("%s: %d %s", c.q, r.status, r.body)
		}
		a := f.args("StatusAll")
		if a[0].(core.TrackerStatus) != c.want || a[1].(bool) != c.local {
			t.Errorf("pins%s: args %v, want %v %v", c.q, a, c.want, c.local)
		}
	}
	for _, q := range []string{"?filter=undefined", "?filter=foo,bar", "?filter=,"} {
		r := do(t, ts, "GET", "/pins"+q, nil, nil)
		if r.status != 400 || decodeError(t, r.body).Message != "invalid filter value" {
			t.Errorf("pins%s: %d %s", q, r.status, r.body)
		}
	}
}

func TestPeers(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	r := do(t, ts, "POST", "/peers", strings.NewReader(`{"peer_id":"`+peerA+`"}`), nil)
	if r.status != http.StatusNotImplemented || !strings.HasPrefix(decodeError(t, r.body).Message, "not supported") {
		t.Errorf("POST /peers: %d %s", r.status, r.body)
	}
	r = do(t, ts, "DELETE", "/peers/"+ipfsA, nil, nil)
	if r.status != 500 || decodeError(t, r.body).Message != "peer not in the peerset" {
		t.Errorf("DELETE unknown peer: %d %s", r.status, r.body)
	}
	// CIDv1 libp2p-key form of a peer ID is accepted.
	r = do(t, ts, "DELETE", "/peers/"+mustPeer(peerA).String(), nil, nil)
	if r.status != 204 {
		t.Errorf("DELETE peer: %d %s", r.status, r.body)
	}
}

func TestErrorStatus(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{core.ErrPinNotFound, 404},
		{errorString("pin is not part of the pinset"), 404},
		{errorString("pin is not part of the pinset: x"), 500},
		{errorString("boom"), 500},
		{core.Error{Code: 409, Message: "conflict"}, 409},
		{&core.Error{Code: 503, Message: "later"}, 503},
		{core.Error{Code: 200, Message: "odd"}, 500},
		{errBadRequest("bad"), 400},
	}
	for _, c := range cases {
		if got := errorStatus(c.err); got != c.want {
			t.Errorf("%v: %d, want %d", c.err, got, c.want)
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestPinOptions(t *testing.T) {
	now := time.Date(2024, 5, 6, 12, 0, 0, 0, time.UTC)
	parse := func(q string) (core.PinOptions, error) {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		return parsePinOptions(v, func() time.Time { return now })
	}
	errCases := map[string]string{
		"replication-min=x":                "parameter replication-min invalid",
		"replication-max=1.5":              "parameter replication-max invalid",
		"replication=x":                    "parameter replication-min invalid",
		"shard-size=-1":                    "parameter shard_size is invalid",
		"expire-in=1ms":                    "expire-in duration too short",
		"pin-update=nope":                  "error decoding update option parameter: ",
		"expire-at=yesterday":              "expire-at cannot be parsed: ",
		"expire-in=soon":                   "expire-in cannot be parsed: ",
		"origins=/ip4/1.2.3.4/tcp/4001":    "multiaddress does not contain peer ID: ",
		"origins=garbage":                  "error decoding multiaddress: ",
		"origins=/ip4/1.2.3.4/tcp/1/p2p/x": "error decoding multiaddress: ",
	}
	for q, want := range errCases {
		_, err := parse(q)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", q, err, want)
		}
		if err != nil && errorStatus(err) != 400 {
			t.Errorf("%s: status %d", q, errorStatus(err))
		}
	}

	po, err := parse("replication=3&replication-min=1&replication-max=2&name=x&mode=direct&shard-size=10" +
		"&expire-in=1h&meta-a=1&meta-=skip&meta-b=&origins=/ip4/1.2.3.4/tcp/4001/p2p/" + peerA + "&user-allocations=bad")
	if err != nil {
		t.Fatal(err)
	}
	if po.ReplicationFactorMin != 3 || po.ReplicationFactorMax != 3 || po.Name != "x" || po.Mode != core.PinModeDirect ||
		po.ShardSize != 10 || !po.ExpireAt.Equal(now.Add(time.Hour)) ||
		!reflect.DeepEqual(po.Metadata, map[string]string{"a": "1", "b": ""}) ||
		!reflect.DeepEqual(po.Origins, []string{"/ip4/1.2.3.4/tcp/4001/p2p/" + peerA}) ||
		po.UserAllocations == nil || len(po.UserAllocations) != 0 {
		t.Errorf("options %+v", po)
	}

	po, err = parse("expire-at=2030-01-02T03:04:05Z&expire-in=bad&mode=weird")
	if err != nil {
		t.Fatal(err)
	}
	if !po.ExpireAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) || po.Mode != core.PinModeRecursive {
		t.Errorf("options %+v", po)
	}

	po, err = parse("")
	if err != nil || po.Metadata == nil || po.UserAllocations != nil || po.Origins != nil || po.PinUpdate.Defined() {
		t.Errorf("empty options %+v %v", po, err)
	}
}

func TestConfiguredHeaders(t *testing.T) {
	cfg := testConfig()
	cfg.Headers = map[string][]string{"X-Custom": {"a", "b"}}
	ts := startHTTP(t, newTestServer(t, cfg, newFake()))
	for _, target := range []string{"/id", "/peers", "/idx", "/health"} {
		r := do(t, ts, "GET", target, nil, nil)
		if got := r.header.Values("X-Custom"); !reflect.DeepEqual(got, []string{"a", "b"}) {
			t.Errorf("%s: X-Custom %v", target, got)
		}
	}
}

// TestPanicRecovery checks that a handler panic answers 500 and the server
// keeps serving; a panic mid-stream ends up in the trailer.
func TestPanicRecovery(t *testing.T) {
	f := newFake()
	s, err := NewServer(testConfig(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	var panics atomic.Int32
	s.onPanic = func(any) { panics.Add(1) }
	ts := startHTTP(t, s)

	f.idFn = func(context.Context) core.ID { panic("kaboom") }
	r := do(t, ts, "GET", "/id", nil, nil)
	if r.status != 500 || r.body != errBody(500, "internal server error") {
		t.Errorf("panic: %d %q", r.status, r.body)
	}
	f.idFn = nil
	if r := do(t, ts, "GET", "/id", nil, nil); r.status != 200 {
		t.Errorf("after panic: %d", r.status)
	}

	f.peersFn = func(context.Context) iter.Seq2[core.ID, error] {
		return func(yield func(core.ID, error) bool) {
			yield(fixtureID(), nil)
			panic("mid-stream")
		}
	}
	r = do(t, ts, "GET", "/peers", nil, nil)
	if r.status != 200 || len(ndjson(t, r.body)) != 1 || r.trailer.Get("X-Stream-Error") != "internal server error" {
		t.Errorf("mid-stream panic: %d %q trailer %v", r.status, r.body, r.trailer)
	}
	if n := panics.Load(); n != 2 {
		t.Errorf("%d panics recorded", n)
	}
}

// TestClusterErrors checks that every non-streaming endpoint maps cluster
// errors: the not-found text to 404, a core.Error to its code, others to 500.
func TestClusterErrors(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	targets := [][2]string{
		{"DELETE", "/peers/" + peerA},
		{"GET", "/allocations/" + cidA},
		{"GET", "/pins/" + cidA},
		{"POST", "/pins/" + cidA + "/recover"},
		{"POST", "/pins/" + cidA + "/sync"},
		{"POST", "/pins/" + cidA},
		{"POST", "/pins/ipfs/" + cidA},
		{"DELETE", "/pins/" + cidA},
		{"DELETE", "/pins/ipfs/" + cidA},
		{"POST", "/ipfs/gc"},
		{"GET", "/health/graph"},
		{"GET", "/health/alerts"},
		{"GET", "/monitor/metrics"},
		{"GET", "/monitor/metrics/freespace"},
	}
	for _, e := range []struct {
		err    error
		status int
	}{
		{errors.New("boom"), 500},
		{core.ErrPinNotFound, 404},
		{core.Error{Code: 503, Message: "busy"}, 503},
	} {
		f.fail = e.err
		for _, tg := range targets {
			r := do(t, ts, tg[0], tg[1], nil, nil)
			if r.status != e.status || r.body != errBody(e.status, e.err.Error()) {
				t.Errorf("%s %s with %v: %d %q", tg[0], tg[1], e.err, r.status, r.body)
			}
		}
	}
}
