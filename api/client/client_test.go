package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

// reply is a canned answer of the fake server.
type reply struct {
	status  int
	body    string   // written at once
	lines   []string // written one by one, flushed after each
	trailer []string // X-Stream-Error values; nil: no trailer declared
	header  map[string]string
}

// recorded is a request the fake server received.
type recorded struct {
	method, uri, contentType string
	body                     []byte
	chunked                  bool
	user, pass               string
	auth                     bool
}

// fake replays canned answers, keyed by "METHOD /path?query" first and
// "METHOD /path" second, and records the requests.
type fake struct {
	t      testing.TB
	mu     sync.Mutex
	routes map[string]reply
	reqs   []recorded
	srv    *httptest.Server
}

func newFake(t testing.TB, routes map[string]reply) *fake {
	f := &fake{t: t, routes: routes}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	user, pass, ok := r.BasicAuth()
	chunked := len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{method: r.Method, uri: r.URL.RequestURI(), contentType: r.Header.Get("Content-Type"), body: body, chunked: chunked, user: user, pass: pass, auth: ok})
	rep, found := f.routes[r.Method+" "+r.URL.RequestURI()]
	if !found {
		rep, found = f.routes[r.Method+" "+r.URL.Path]
	}
	f.mu.Unlock()
	if !found {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		io.WriteString(w, `{"code":404,"message":"not found"}`+"\n")
		return
	}
	writeReply(w, rep)
}

func writeReply(w http.ResponseWriter, rep reply) {
	w.Header().Set("Content-Type", "application/json")
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.trailer != nil {
		w.Header().Set("Trailer", StreamErrorTrailer)
	}
	status := rep.status
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	io.WriteString(w, rep.body)
	for _, l := range rep.lines {
		io.WriteString(w, l)
		w.(http.Flusher).Flush()
	}
	for i, v := range rep.trailer {
		if i == 0 {
			w.Header().Set(StreamErrorTrailer, v)
		} else {
			w.Header().Add(StreamErrorTrailer, v)
		}
	}
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fake) last() recorded {
	r := f.requests()
	if len(r) == 0 {
		f.t.Fatal("no request received")
	}
	return r[len(r)-1]
}

// debugLog collects the messages of Config.Debug.
type debugLog struct {
	mu   sync.Mutex
	msgs []string
}

func (d *debugLog) add(m string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, m)
}

func (d *debugLog) all() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.msgs...)
}

func (d *debugLog) has(t testing.TB, want string) {
	t.Helper()
	for _, m := range d.all() {
		if m == want {
			return
		}
	}
	t.Errorf("debug log lacks %q; got:\n%s", want, strings.Join(d.all(), "\n"))
}

func newClient(t testing.TB, host string, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{Host: host, Timeout: 30 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustCid(t testing.TB, s string) core.Cid {
	t.Helper()
	c, err := core.DecodeCid(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustPeer(t testing.TB, s string) core.PeerID {
	t.Helper()
	p, err := core.DecodePeerID(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// collect reads a whole stream (tests only: the streams are small).
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	return core.Collect(seq)
}

func TestDecodeFixtures(t *testing.T) {
	f := newFake(t, map[string]reply{
		"GET /id":                        {body: fixtureID},
		"GET /version":                   {body: fixtureVersion},
		"GET /allocations/" + helloV0:    {body: fixtureAllocation},
		"GET /pins/" + helloV0:           {body: fixtureStatus},
		"GET /monitor/metrics/freespace": {body: fixtureMetrics},
		"GET /monitor/metrics":           {body: fixtureMetricNames},
		"GET /health/alerts":             {body: fixtureAlerts},
		"GET /health/graph":              {body: fixtureGraph},
		"GET /health/bandwidth":          {body: fixtureBandwidth},
		"POST /ipfs/gc":                  {body: fixtureRepoGC},
		"POST /pins/ipfs/" + helloV0:     {body: fixturePinResponse},
		"POST /token":                    {body: fixtureToken},
		"GET /health":                    {status: 204},
	})
	c := newClient(t, f.srv.URL)
	ctx := ctx(t)

	id, err := c.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.ID.String() != peerA || id.Peername != "vm" || id.Version != "1.1.6" || id.RPCProtocolVersion != "/ipfscluster/1.0/rpc" ||
		len(id.ClusterPeers) != 1 || id.IPFS.ID.String() != peerB || len(id.Addresses) != 1 || id.ClusterPeersAddresses == nil {
		t.Errorf("ID decoded as %+v", id)
	}

	v, err := c.Version(ctx)
	if err != nil || v.Version != "1.1.6" {
		t.Errorf("Version: %v %v", v, err)
	}

	pin, err := c.Allocation(ctx, mustCid(t, helloV0))
	if err != nil {
		t.Fatal(err)
	}
	if pin.Cid.String() != helloV0 || pin.PinUpdate.String() != otherV0 || pin.Type != core.DataType || pin.MaxDepth != -1 ||
		pin.ReplicationFactorMin != -1 || pin.ShardSize != 104857600 || pin.Reference.Defined() || pin.Metadata != nil ||
		!pin.Timestamp.Equal(time.Date(2026, 11, 23, 18, 59, 51, 0, time.UTC)) {
		t.Errorf("Allocation decoded as %+v", pin)
	}

	gpi, err := c.Status(ctx, mustCid(t, helloV0), false)
	if err != nil {
		t.Fatal(err)
	}
	info := gpi.PeerMap[peerA]
	if gpi.Cid.String() != helloV0 || info.Status != core.TrackerStatusPinned || info.PeerName != "vm" || info.IPFS.String() != peerB {
		t.Errorf("Status decoded as %+v", gpi)
	}

	metrics, err := c.Metrics(ctx, "freespace")
	if err != nil || len(metrics) != 1 || metrics[0].Weight != 9146652128 || metrics[0].Peer.String() != peerA || metrics[0].Expire != 1795460427323146357 {
		t.Errorf("Metrics: %+v %v", metrics, err)
	}
	names, err := c.MetricNames(ctx)
	if err != nil || !reflect.DeepEqual(names, []string{"ping", "freespace", "tag:group", "pinqueue"}) {
		t.Errorf("MetricNames: %v %v", names, err)
	}
	alerts, err := c.Alerts(ctx)
	if err != nil || len(alerts) != 1 || alerts[0].Name != "ping" || alerts[0].TriggeredAt.IsZero() {
		t.Errorf("Alerts: %+v %v", alerts, err)
	}
	g, err := c.ConnectGraph(ctx)
	if err != nil || g.ClusterID.String() != peerA || g.ClustertoIPFS[peerA].String() != peerB || !g.ClusterTrustLinks[peerA] || g.IDtoPeername[peerA] != "vm" {
		t.Errorf("ConnectGraph: %+v %v", g, err)
	}
	bw, err := c.BandwidthByProtocol(ctx)
	if err != nil || bw["/ipfscluster/1.0/rpc"] != (Bandwidth{1024, 2048, 1.5, 2.25}) || len(bw) != 2 {
		t.Errorf("Bandwidth: %+v %v", bw, err)
	}
	gc, err := c.RepoGC(ctx, false)
	if err != nil || len(gc.PeerMap[peerA].Keys) != 2 || gc.PeerMap[peerA].Keys[1].Key.Defined() || gc.PeerMap[peerA].Keys[1].Error != "block in use" {
		t.Errorf("RepoGC: %+v %v", gc, err)
	}
	pp, err := c.PinPath(ctx, helloV0, core.PinOptions{})
	if err != nil || pp.Mode != core.PinModeDirect || pp.ReplicationFactorMin != 2 || len(pp.UserAllocations) != 1 || pp.Metadata["kind"] != "text" || pp.ExpireAt.Year() != 2027 {
		t.Errorf("PinPath: %+v %v", pp, err)
	}
	tok, err := c.Token(ctx)
	if err != nil || !strings.HasPrefix(tok, "eyJhbGciOiJIUzI1NiIs") {
		t.Errorf("Token: %q %v", tok, err)
	}
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
}

func TestBandwidthNull(t *testing.T) {
	f := newFake(t, map[string]reply{"GET /health/bandwidth": {body: "null\n"}})
	bw, err := newClient(t, f.srv.URL).BandwidthByProtocol(ctx(t))
	if err != nil || bw != nil {
		t.Fatalf("null bandwidth: %v %v", bw, err)
	}
}

func TestStreams(t *testing.T) {
	f := newFake(t, map[string]reply{
		"GET /peers": {lines: []string{fixtureID, fixtureIDError}, trailer: []string{""}},
		// Appendix C: nothing matches → 204 with the trailer declared.
		"GET /pins?local=false&filter=pin_error&cids=": {status: 204, trailer: []string{}},
		"GET /pins?local=true&filter=&cids=":           {lines: []string{fixtureStatus, fixtureStatusB}, trailer: []string{"peer X: context canceled"}},
		"POST /pins/recover?local=false":               {lines: []string{fixtureStatus}, trailer: []string{"first", "second"}},
		"GET /allocations?filter=all":                  {status: 500, body: `{"code":500,"message":"state unavailable"}` + "\n"},
		"POST /pins/sync?local=false":                  {lines: []string{fixtureStatus, fixtureStatusB}, trailer: []string{""}},
		"GET /allocations?filter=pin%2Cmeta-pin":       {status: 400, body: fixtureErrFilter},
	})
	c := newClient(t, f.srv.URL)
	ctx := ctx(t)

	peers, err := collect(c.Peers(ctx))
	if err != nil || len(peers) != 2 || peers[1].Error != "context deadline exceeded" || peers[1].ID.String() != peerB {
		t.Fatalf("Peers: %+v %v", peers, err)
	}

	// 204: an empty stream, no error.
	n := 0
	for _, err := range c.StatusAll(ctx, core.TrackerStatusPinError, false) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 0 {
		t.Fatalf("204 stream yielded %d items", n)
	}

	// Items, then the trailer's error.
	var got []string
	var streamErr error
	for gpi, err := range c.StatusAll(ctx, 0, true) {
		if err != nil {
			streamErr = err
			break
		}
		got = append(got, gpi.Cid.String())
	}
	if !reflect.DeepEqual(got, []string{helloV0, helloV1}) {
		t.Fatalf("items before the trailer error: %v", got)
	}
	var ce core.Error
	if !errors.As(streamErr, &ce) || ce.Code != 500 || ce.Message != "peer X: context canceled" {
		t.Fatalf("trailer error: %#v", streamErr)
	}

	// Several trailer values are joined.
	_, err = collect(c.RecoverAll(ctx, false))
	if !errors.As(err, &ce) || ce.Message != "first; second" {
		t.Fatalf("joined trailer errors: %v", err)
	}

	// An error before the first item is a normal error answer.
	_, err = collect(c.Allocations(ctx, core.AllType))
	if !errors.As(err, &ce) || ce.Code != 500 || ce.Message != "state unavailable" {
		t.Fatalf("stream error answer: %v", err)
	}
	_, err = collect(c.Allocations(ctx, core.DataType|core.MetaType))
	if !errors.As(err, &ce) || ce.Code != 400 || ce.Message != "invalid filter value" {
		t.Fatalf("stream 400: %v", err)
	}

	synced, err := collect(c.SyncAll(ctx, false))
	if err != nil || len(synced) != 2 || synced[1].PeerMap[peerA].Status != core.TrackerStatusPinError || synced[1].PeerMap[peerA].AttemptCount != 3 {
		t.Fatalf("SyncAll: %+v %v", synced, err)
	}
}

func TestAddStreamDecoding(t *testing.T) {
	f := newFake(t, map[string]reply{
		"POST /add": {lines: []string{fixtureAddV1, fixtureAddProgr, fixtureAddV0}, header: map[string]string{"X-Chunked-Output": "1"}},
	})
	c := newClient(t, f.srv.URL)
	out, err := collect(c.AddFiles(ctx(t), []File{{Name: "hello.txt", Reader: strings.NewReader("hello\n")}}, DefaultAddParams()))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0].Cid.String() != helloV1 || out[0].Size != 6 || out[1].Cid.Defined() || out[1].Bytes != 6 || out[2].Cid.String() != helloV0 || out[2].Allocations[0].String() != peerA {
		t.Fatalf("add outputs %+v", out)
	}
}

func TestAddArrayAnswer(t *testing.T) {
	// stream-channels=false: one JSON array.
	f := newFake(t, map[string]reply{
		"POST /add": {body: "[" + strings.TrimSpace(fixtureAddV1) + "," + strings.TrimSpace(fixtureAddV0) + "]\n"},
	})
	p := DefaultAddParams()
	p.StreamChannels = false
	out, err := collect(newClient(t, f.srv.URL).AddFiles(ctx(t), []File{{Name: "a", Reader: strings.NewReader("a")}}, p))
	if err != nil || len(out) != 2 || out[1].Cid.String() != helloV0 {
		t.Fatalf("array answer: %+v %v", out, err)
	}
	if !strings.Contains(f.last().uri, "stream-channels=false") {
		t.Errorf("query %s", f.last().uri)
	}
}

func TestAddTrailerError(t *testing.T) {
	f := newFake(t, map[string]reply{
		"POST /add": {lines: []string{fixtureAddV0}, trailer: []string{"failed to put block on all destinations"}},
	})
	var n int
	var last error
	for _, err := range newClient(t, f.srv.URL).AddFiles(ctx(t), []File{{Name: "a", Reader: strings.NewReader("a")}}, DefaultAddParams()) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	var ce core.Error
	if n != 1 || !errors.As(last, &ce) || ce.Code != 500 || ce.Message != "failed to put block on all destinations" {
		t.Fatalf("add trailer error: %d items, %v", n, last)
	}
}

func TestErrorBodies(t *testing.T) {
	f := newFake(t, map[string]reply{
		"GET /allocations/" + helloV0: {status: 404, body: fixtureErrNotPin},
		"GET /version":                {status: 502, body: "bad gateway\n", header: map[string]string{"Content-Type": "text/plain"}},
		"GET /id":                     {status: 405},
		"DELETE /peers/" + peerB:      {status: 204},
		"POST /peers":                 {status: 501, body: `{"code":501,"message":"not supported: peers join the cluster by bootstrapping to a member"}` + "\n"},
		"GET /health/graph":           {body: `{"cluster_id":""}`},
	})
	c := newClient(t, f.srv.URL)
	ctx := ctx(t)
	check := func(err error, code int, msg string) {
		t.Helper()
		var ce core.Error
		if !errors.As(err, &ce) || ce.Code != code || ce.Message != msg {
			t.Errorf("got %#v, want core.Error{%d, %q}", err, code, msg)
		}
	}
	_, err := c.Allocation(ctx, mustCid(t, helloV0))
	check(err, 404, "pin is not part of the pinset")
	_, err = c.Version(ctx)
	check(err, 502, "bad gateway")
	_, err = c.ID(ctx)
	check(err, 405, "Method Not Allowed")
	_, err = c.PeerAdd(ctx, mustPeer(t, peerB))
	check(err, 501, "not supported: peers join the cluster by bootstrapping to a member")
	if r := f.last(); r.body == nil || string(r.body) != `{"peer_id":"`+peerB+`"}` || !r.chunked {
		t.Errorf("POST /peers body %q chunked=%v", r.body, r.chunked)
	}
	if err := c.PeerRm(ctx, mustPeer(t, peerB)); err != nil {
		t.Errorf("PeerRm: %v", err)
	}
	// The empty string is not a peer ID: a decoding error, not a crash.
	_, err = c.ConnectGraph(ctx)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Errorf("undecodable body: %v", err)
	}
}

// TestRequests checks the exact requests, as IPFS Cluster's client and
// ipfs-cluster-ctl send them.
func TestRequests(t *testing.T) {
	f := newFake(t, map[string]reply{
		"POST /pins/ipfs/" + helloV0:          {body: fixtureAllocation},
		"POST /pins/" + helloV0:               {body: fixtureAllocation},
		"POST /pins/ipfs/" + helloV0 + "/a/b": {body: fixtureAllocation},
		"DELETE /pins/ipfs/" + helloV0:        {body: fixtureAllocation},
		"DELETE /pins/" + helloV0:             {body: fixtureAllocation},
		"GET /pins":                           {status: 204},
		"GET /allocations":                    {status: 204},
		"GET /pins/" + helloV0:                {body: fixtureStatus},
		"POST /pins/" + helloV0 + "/recover":  {body: fixtureStatus},
		"POST /pins/" + helloV0 + "/sync":     {body: fixtureStatus},
		"POST /pins/recover":                  {status: 204},
		"POST /pins/sync":                     {status: 204},
		"POST /ipfs/gc":                       {body: fixtureRepoGC},
		"GET /monitor/metrics/tag:group":      {body: "[]\n"},
	})
	c := newClient(t, f.srv.URL)
	ctx := ctx(t)
	ci := mustCid(t, helloV0)
	expire := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	steps := []struct {
		call func() error
		want string
	}{
		{func() error { _, err := c.PinPath(ctx, helloV0, core.PinOptions{}); return err },
			"POST /pins/ipfs/" + helloV0 + "?mode=recursive&name=&replication-max=0&replication-min=0&shard-size=0&user-allocations="},
		{func() error {
			_, err := c.PinPath(ctx, "/ipfs/"+helloV0+"/a/b/", core.PinOptions{
				ReplicationFactorMin: 1, ReplicationFactorMax: 2, Name: "my name", Mode: core.PinModeDirect,
				UserAllocations: []core.PeerID{mustPeer(t, peerA), mustPeer(t, peerB)}, ExpireAt: expire,
				Metadata: map[string]string{"kind": "text", "a b": "c&d"},
			})
			return err
		}, "POST /pins/ipfs/" + helloV0 + "/a/b?expire-at=2030-01-02T03%3A04%3A05Z&meta-a+b=c%26d&meta-kind=text&mode=direct&name=my+name&replication-max=2&replication-min=1&shard-size=0&user-allocations=" + peerA + "%2C" + peerB},
		{func() error {
			_, err := c.PinUpdate(ctx, mustCid(t, otherV0), helloV0, core.PinOptions{Name: "n"})
			return err
		}, "POST /pins/ipfs/" + helloV0 + "?mode=recursive&name=n&pin-update=" + otherV0 + "&replication-max=0&replication-min=0&shard-size=0&user-allocations="},
		{func() error {
			_, err := c.Pin(ctx, ci, core.PinOptions{ReplicationFactorMin: -1, ReplicationFactorMax: -1})
			return err
		},
			"POST /pins/" + helloV0 + "?mode=recursive&name=&replication-max=-1&replication-min=-1&shard-size=0&user-allocations="},
		{func() error { _, err := c.UnpinPath(ctx, helloV0); return err }, "DELETE /pins/ipfs/" + helloV0},
		{func() error { _, err := c.Unpin(ctx, ci); return err }, "DELETE /pins/" + helloV0},
		{func() error { _, err := collect(c.StatusAll(ctx, 0, false)); return err }, "GET /pins?local=false&filter=&cids="},
		{func() error { _, err := collect(c.StatusAll(ctx, core.TrackerStatusError, true)); return err }, "GET /pins?local=true&filter=error&cids="},
		{func() error {
			_, err := collect(c.StatusAll(ctx, core.TrackerStatusPinned|core.TrackerStatusRemote, false))
			return err
		}, "GET /pins?local=false&filter=pinned%2Cremote&cids="},
		{func() error {
			_, err := collect(c.StatusCids(ctx, []core.Cid{ci, mustCid(t, helloV1)}, false))
			return err
		}, "GET /pins?local=false&filter=&cids=" + helloV0 + "%2C" + helloV1},
		{func() error { _, err := collect(c.Allocations(ctx, core.AllType)); return err }, "GET /allocations?filter=all"},
		{func() error { _, err := collect(c.Allocations(ctx, core.DataType|core.MetaType)); return err }, "GET /allocations?filter=pin%2Cmeta-pin"},
		{func() error { _, err := c.Status(ctx, ci, false); return err }, "GET /pins/" + helloV0 + "?local=false"},
		{func() error { _, err := c.Status(ctx, ci, true); return err }, "GET /pins/" + helloV0 + "?local=true"},
		{func() error { _, err := c.Recover(ctx, ci, false); return err }, "POST /pins/" + helloV0 + "/recover?local=false"},
		{func() error { _, err := collect(c.RecoverAll(ctx, true)); return err }, "POST /pins/recover?local=true"},
		{func() error { _, err := c.Sync(ctx, ci, true); return err }, "POST /pins/" + helloV0 + "/sync?local=true"},
		{func() error { _, err := collect(c.SyncAll(ctx, false)); return err }, "POST /pins/sync?local=false"},
		{func() error { _, err := c.RepoGC(ctx, true); return err }, "POST /ipfs/gc?local=true"},
		{func() error { _, err := c.Metrics(ctx, "tag:group"); return err }, "GET /monitor/metrics/tag:group"},
	}
	for i, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.want, err)
		}
		r := f.last()
		if got := r.method + " " + r.uri; got != s.want {
			t.Errorf("step %d:\n got %s\nwant %s", i, got, s.want)
		}
	}

	if _, err := c.PinPath(ctx, "notacid", core.PinOptions{}); err == nil {
		t.Error("PinPath accepted a path that is neither a CID nor an IPFS path")
	}
}

func TestAddQuery(t *testing.T) {
	// The exact query of IPFS Cluster's client (spec section 7.2).
	want := "chunker=size-262144&cid-version=0&format=unixfs&hash=sha2-256&hidden=false&layout=&local=false&mode=recursive&name=&no-pin=false&nocopy=false&progress=false&raw-leaves=false&recursive=false&replication-max=0&replication-min=0&shard=false&shard-size=104857600&stream-channels=true&user-allocations=&wrap-with-directory=false"
	if got := DefaultAddParams().Query().Encode(); got != want {
		t.Errorf("default add query:\n got %s\nwant %s", got, want)
	}
	p := DefaultAddParams()
	p.PinUpdate = mustCid(t, otherV0)
	p.Metadata = map[string]string{"k": "v"}
	if q := p.Query(); q.Has("pin-update") || q.Get("meta-k") != "v" {
		t.Errorf("add query %v", q)
	}
}

// part is a multipart part as the server sees it.
type part struct {
	formName, filename, contentType, abspath, body string
}

func readParts(t testing.TB, contentType string, body []byte) []part {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("content type %q: %v", contentType, err)
	}
	mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
	var out []part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		_, dparams, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if err != nil {
			t.Fatal(err)
		}
		fn, _ := url.QueryUnescape(dparams["filename"])
		ap, _ := url.QueryUnescape(p.Header.Get("Abspath-Encoded"))
		b, _ := io.ReadAll(p)
		out = append(out, part{formName: dparams["name"], filename: fn, contentType: p.Header.Get("Content-Type"), abspath: ap, body: string(b)})
	}
}

func TestAddMultipartLayout(t *testing.T) {
	dir := t.TempDir()
	top := filepath.Join(dir, "testFolder")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(top, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(top, "abc.txt"), []byte("abc"), 0o644))
	must(os.WriteFile(filepath.Join(top, "sub", "d e.txt"), []byte("de"), 0o644))
	must(os.WriteFile(filepath.Join(top, ".hidden"), []byte("h"), 0o644))
	must(os.Symlink("abc.txt", filepath.Join(top, "link")))
	single := filepath.Join(dir, "myfile.txt")
	must(os.WriteFile(single, []byte("hello\n"), 0o644))

	f := newFake(t, map[string]reply{"POST /add": {lines: []string{fixtureAddV0}}})
	dbg := &debugLog{}
	c := newClient(t, f.srv.URL, func(c *Config) { c.Debug = dbg.add })
	p := DefaultAddParams()
	p.Recursive = true
	var progress []int64
	p.OnProgress = func(n int64) { progress = append(progress, n) }
	if _, err := collect(c.Add(ctx(t), []string{single, top + "/"}, p)); err != nil {
		t.Fatal(err)
	}
	r := f.last()
	if !r.chunked {
		t.Error("the /add body was not sent chunked")
	}
	parts := readParts(t, r.contentType, r.body)
	type short struct{ name, ct, body string }
	var got []short
	for _, p := range parts {
		got = append(got, short{p.filename, p.contentType, p.body})
		if !strings.HasPrefix(p.formName, "file?mode=") || !strings.Contains(p.formName, "mtime=") {
			t.Errorf("part name %q", p.formName)
		}
	}
	want := []short{
		{"myfile.txt", "application/octet-stream", "hello\n"},
		{"testFolder", "application/x-directory", ""},
		{"testFolder/abc.txt", "application/octet-stream", "abc"},
		{"testFolder/link", "application/symlink", "abc.txt"},
		{"testFolder/sub", "application/x-directory", ""},
		{"testFolder/sub/d e.txt", "application/octet-stream", "de"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parts:\n got %+v\nwant %+v", got, want)
	}
	if parts[0].abspath != single {
		t.Errorf("abspath %q", parts[0].abspath)
	}
	if len(progress) == 0 || progress[len(progress)-1] != int64(len("hello\nabcde")) {
		t.Errorf("progress %v", progress)
	}
	// The debug log of an upload is IPFS Cluster's: the attempt and the
	// request line, nothing of the body nor of the successful stream.
	dbg.has(t, "retrying 1 times")
	dbg.has(t, "POST: "+f.srv.URL+"/add?"+p.Query().Encode())
	if n := len(dbg.all()); n != 2 {
		t.Errorf("%d debug lines, want 2:\n%s", n, strings.Join(dbg.all(), "\n"))
	}
	for _, m := range dbg.all() {
		if strings.Contains(m, "hello\n") {
			t.Errorf("file data in the debug log: %q", m)
		}
	}

	// Hidden files on request.
	p.Hidden = true
	if _, err := collect(c.Add(ctx(t), []string{top}, p)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pt := range readParts(t, f.last().contentType, f.last().body) {
		names = append(names, pt.filename)
	}
	if !reflect.DeepEqual(names[:2], []string{"testFolder", "testFolder/.hidden"}) {
		t.Errorf("hidden: %v", names)
	}

	// A directory without Recursive fails before anything is sent.
	n := len(f.requests())
	_, err := collect(c.Add(ctx(t), []string{top}, DefaultAddParams()))
	if err == nil || !strings.Contains(err.Error(), "is a directory") || len(f.requests()) != n {
		t.Errorf("directory without -r: %v", err)
	}
	if _, err := collect(c.Add(ctx(t), []string{filepath.Join(dir, "missing")}, p)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestAddReaderAndURL(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "web content")
	}))
	defer web.Close()
	f := newFake(t, map[string]reply{"POST /add": {lines: []string{fixtureAddV0}}})
	c := newClient(t, f.srv.URL)
	files := []File{{Name: "stdin", Reader: strings.NewReader("piped")}, {URL: web.URL + "/dir/page.html"}}
	if _, err := collect(c.AddFiles(ctx(t), files, DefaultAddParams())); err != nil {
		t.Fatal(err)
	}
	parts := readParts(t, f.last().contentType, f.last().body)
	if len(parts) != 2 || parts[0].filename != "stdin" || parts[0].body != "piped" || parts[0].formName != "file" ||
		parts[1].filename != "page.html" || parts[1].body != "web content" || parts[1].abspath != web.URL+"/dir/page.html" {
		t.Errorf("parts %+v", parts)
	}
}

func TestStreamIsLazy(t *testing.T) {
	release := make(chan struct{})
	var lazy bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", StreamErrorTrailer)
		io.WriteString(w, fixtureStatus)
		w.(http.Flusher).Flush()
		select {
		case <-release:
			lazy = true
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, fixtureStatusB)
		w.Header().Set(StreamErrorTrailer, "")
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	n := 0
	for _, err := range c.StatusAll(ctx(t), 0, false) {
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			close(release)
		}
		n++
	}
	if n != 2 || !lazy {
		t.Fatalf("the first item was not yielded before the stream ended (items %d)", n)
	}
}

func TestStreamBreakClosesConnection(t *testing.T) {
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 1000; i++ {
			io.WriteString(w, fixtureStatus)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(gone)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	for range newClient(t, srv.URL).StatusAll(ctx(t), 0, false) {
		break
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept streaming after the loop ended")
	}
}

func TestDebugHook(t *testing.T) {
	f := newFake(t, map[string]reply{
		"GET /version":                {body: fixtureVersion},
		"GET /peers":                  {lines: []string{fixtureID, fixtureIDError}, trailer: []string{"peer gone"}},
		"GET /pins":                   {status: 204},
		"POST /pins/ipfs/" + helloV0:  {body: fixturePinResponse},
		"GET /allocations/" + helloV0: {status: 404, body: fixtureErrNotPin},
		"GET /health/alerts":          {status: 500, body: "gateway broke"},
	})
	dbg := &debugLog{}
	c := newClient(t, f.srv.URL, func(c *Config) { c.Debug = dbg.add })
	ctx := ctx(t)
	_, _ = c.Version(ctx)
	_, _ = collect(c.Peers(ctx))
	_, _ = collect(c.StatusAll(ctx, 0, false))
	_, _ = c.PinPath(ctx, helloV0, core.PinOptions{Name: "x"})
	_, _ = c.Allocation(ctx, mustCid(t, helloV0))
	_, _ = c.PeerAdd(ctx, mustPeer(t, peerA))

	_, _ = c.Alerts(ctx) // a 500 whose body is not an error object

	dbg.has(t, "retrying 1 times")
	dbg.has(t, "GET: "+f.srv.URL+"/version")
	dbg.has(t, "Response body: "+fixtureVersion) // raw, newline included
	dbg.has(t, "GET: "+f.srv.URL+"/peers")
	dbg.has(t, "Response trailer X-Stream-Error: peer gone")
	dbg.has(t, "GET: "+f.srv.URL+"/pins?local=false&filter=&cids=")
	dbg.has(t, "Request succeeded. Response has no content")
	dbg.has(t, "POST: "+f.srv.URL+"/pins/ipfs/"+helloV0+"?mode=recursive&name=x&replication-max=0&replication-min=0&shard-size=0&user-allocations=")
	dbg.has(t, "Response body: "+fixturePinResponse)
	dbg.has(t, "Response body: "+fixtureErrNotPin)
	dbg.has(t, "Response body: gateway broke")
	dbg.has(t, "could not cast error into api.Error")
	// As in IPFS Cluster's client: no status lines, no request bodies,
	// nothing for the items of a successful stream, one attempt line per
	// call.
	attempts := 0
	for _, m := range dbg.all() {
		switch {
		case m == "retrying 1 times":
			attempts++
		case strings.HasPrefix(m, "Response:"), strings.HasPrefix(m, "Request body"),
			m == "Response body: "+fixtureID, m == "Response body: "+fixtureIDError:
			t.Errorf("unexpected debug line %q", m)
		}
	}
	if attempts != 7 {
		t.Errorf("%d attempt lines for 7 calls", attempts)
	}
}

func TestBasicAuth(t *testing.T) {
	f := newFake(t, map[string]reply{"GET /version": {body: fixtureVersion}})
	c := newClient(t, f.srv.URL, func(c *Config) { c.Username, c.Password = "user", "p:ss" })
	if _, err := c.Version(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if r := f.last(); !r.auth || r.user != "user" || r.pass != "p:ss" {
		t.Fatalf("basic auth %+v", r)
	}
	c = newClient(t, f.srv.URL)
	_, _ = c.Version(ctx(t))
	if f.last().auth {
		t.Fatal("credentials sent without being configured")
	}
}

func TestHosts(t *testing.T) {
	for _, c := range []struct {
		host string
		ssl  bool
		want string
	}{
		{"", false, "http://127.0.0.1:9094"},
		{"/ip4/127.0.0.1/tcp/9094", false, "http://127.0.0.1:9094"},
		{"/ip4/10.0.0.1/tcp/80", true, "https://10.0.0.1:80"},
		{"/ip6/::1/tcp/9094", false, "http://[::1]:9094"},
		{"/dns4/example.org/tcp/9094", false, "http://example.org:9094"},
		{"/dns/example.org/tcp/443/https", false, "https://example.org:443"},
		{"/ip4/1.2.3.4/tcp/443/tls/http", false, "https://1.2.3.4:443"},
		{"/unix/tmp/api.sock", false, "http+unix://restapi"},
		{"http://localhost:9094", true, "http://localhost:9094"},
		{"https://cluster.example.org/api/", false, "https://cluster.example.org/api"},
		{"localhost:9094", false, "http://localhost:9094"},
	} {
		cl, err := New(Config{Host: c.host, SSL: c.ssl})
		if err != nil {
			t.Errorf("%q: %v", c.host, err)
			continue
		}
		if got := cl.BaseURL(); got != c.want {
			t.Errorf("%q (ssl %v): %s, want %s", c.host, c.ssl, got, c.want)
		}
	}
	for _, bad := range []string{
		"/ip4/127.0.0.1/tcp/9096/p2p/" + peerA,
		"/dnsaddr/cluster.example.org",
		"/ip4/127.0.0.1",
		"/ip4/127.0.0.1/udp/9094",
		"/nonsense",
		"ftp://host:21",
		"justahost",
	} {
		if _, err := New(Config{Host: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no unix sockets: %v", err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, fixtureVersion)
	})}}
	srv.Start()
	defer srv.Close()
	dbg := &debugLog{}
	c := newClient(t, "/unix"+sock, func(c *Config) { c.Debug = dbg.add })
	v, err := c.Version(ctx(t))
	if err != nil || v.Version != "1.1.6" {
		t.Fatalf("over a unix socket: %v %v", v, err)
	}
	dbg.has(t, "GET: http+unix://restapi/version")
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, fixtureVersion)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	maddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)

	c := newClient(t, maddr, func(c *Config) { c.SSL = true })
	_, err := c.Version(ctx(t))
	var ce *ConnectionError
	if !errors.As(err, &ce) {
		t.Fatalf("unverifiable certificate accepted: %v", err)
	}
	c = newClient(t, maddr, func(c *Config) { c.SSL, c.NoVerifyCert = true, true })
	if v, err := c.Version(ctx(t)); err != nil || v.Version != "1.1.6" {
		t.Fatalf("https without verification: %v %v", v, err)
	}
}

func closedPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestUnreachable(t *testing.T) {
	port := closedPort(t)
	c := newClient(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	_, err := c.ID(ctx(t))
	var ce *ConnectionError
	if !errors.As(err, &ce) || !ce.Refused() {
		t.Fatalf("unreachable peer: %#v", err)
	}
	want := fmt.Sprintf("cannot reach the pincluster peer at http://127.0.0.1:%d: connection refused", port)
	if err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	// Streams report it as their only item.
	_, err = collect(c.Peers(ctx(t)))
	if !errors.As(err, &ce) {
		t.Errorf("stream: %v", err)
	}
}

func TestFailover(t *testing.T) {
	f := newFake(t, map[string]reply{"GET /version": {body: fixtureVersion}})
	dbg := &debugLog{}
	port := closedPort(t)
	c := newClient(t, fmt.Sprintf("http://127.0.0.1:%d,%s", port, f.srv.URL), func(c *Config) { c.Debug = dbg.add })
	if v, err := c.Version(ctx(t)); err != nil || v.Version != "1.1.6" {
		t.Fatalf("failover: %v %v", v, err)
	}
	dbg.has(t, "retrying 1 times")
	dbg.has(t, "GET: http://127.0.0.1:"+strconv.Itoa(port)+"/version")
	dbg.has(t, "retrying 2 times")
	dbg.has(t, "GET: "+f.srv.URL+"/version")

	// No address answers: the error line, to DebugError when it is set.
	var errLines []string
	c = newClient(t, fmt.Sprintf("http://127.0.0.1:%d,http://127.0.0.1:%d", port, port), func(c *Config) {
		c.DebugError = func(m string) { errLines = append(errLines, m) }
	})
	var ce *ConnectionError
	if _, err := c.Version(ctx(t)); !errors.As(err, &ce) {
		t.Fatalf("no address: %v", err)
	}
	if want := []string{"reached maximum number of retries without success, retries: 2"}; !reflect.DeepEqual(errLines, want) {
		t.Errorf("error lines %q, want %q", errLines, want)
	}
}

// An upload whose first address cannot be reached is sent whole to the
// next one, files and standard input alike.
func TestAddFailover(t *testing.T) {
	f := newFake(t, map[string]reply{"POST /add": {lines: []string{fixtureAddV0}}})
	c := newClient(t, fmt.Sprintf("http://127.0.0.1:%d,%s", closedPort(t), f.srv.URL))
	file := filepath.Join(t.TempDir(), "myfile.txt")
	if err := os.WriteFile(file, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []File{{Path: file}, {Name: "stdin", Reader: strings.NewReader("from stdin")}}
	outs, err := collect(c.AddFiles(ctx(t), files, DefaultAddParams()))
	if err != nil || len(outs) != 1 {
		t.Fatalf("failover: %v %v", outs, err)
	}
	r := f.last()
	parts := readParts(t, r.contentType, r.body)
	if len(parts) != 2 || parts[0].body != "hello\n" || parts[1].body != "from stdin" {
		t.Errorf("parts received: %+v", parts)
	}
}

// What fails on the client's side of an upload (a URL that cannot be
// fetched, a file that is not a file) is reported as such, not as the
// peer being unreachable.
func TestAddLocalErrors(t *testing.T) {
	f := newFake(t, map[string]reply{"POST /add": {lines: []string{fixtureAddV0}}})
	c := newClient(t, f.srv.URL)
	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	for _, path := range []string{missing.URL + "/x", fmt.Sprintf("http://127.0.0.1:%d/x", closedPort(t)), os.DevNull} {
		_, err := collect(c.Add(ctx(t), []string{path}, DefaultAddParams()))
		var ce *ConnectionError
		if err == nil || errors.As(err, &ce) {
			t.Errorf("add %s: %v (%T)", path, err, err)
		}
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *Config) { c.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := c.Version(ctx(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("timeout took %s", time.Since(start))
	}
}

func gpiWith(statuses ...core.TrackerStatus) core.GlobalPinInfo {
	g := core.GlobalPinInfo{Cid: core.UndefCid, PeerMap: map[string]core.PinInfoShort{}}
	for i, s := range statuses {
		g.PeerMap[fmt.Sprintf("peer%d", i)] = core.PinInfoShort{Status: s, PeerName: fmt.Sprintf("p%d", i)}
	}
	return g
}

func TestStatusReached(t *testing.T) {
	P, R, Q, U := core.TrackerStatusPinned, core.TrackerStatusRemote, core.TrackerStatusPinning, core.TrackerStatusUnpinned
	for i, c := range []struct {
		target core.TrackerStatus
		gpi    core.GlobalPinInfo
		limit  int
		ok     bool
		err    bool
	}{
		{P, gpiWith(P, P), 0, true, false},
		{P, gpiWith(P, R), 0, true, false},
		{P, gpiWith(P, Q), 0, false, false},
		{P, gpiWith(P, Q), 1, true, false},
		{P, gpiWith(P, Q, Q), 2, false, false},
		{P, gpiWith(P, core.TrackerStatusPinError), 1, false, true},
		{P, gpiWith(P, core.TrackerStatusClusterError), 0, false, true},
		{P, gpiWith(P, core.TrackerStatusUndefined), 0, false, true},
		{U, gpiWith(U, core.TrackerStatusUnpinError), 0, false, true},
		{U, gpiWith(U, U), 0, true, false},
		{U, gpiWith(U, R), 0, false, false},
		{P, gpiWith(), 0, false, false},
	} {
		ok, err := StatusReached(c.target, c.gpi, c.limit)
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("case %d: %v %v", i, ok, err)
		}
	}
	if WaitLimit(core.Pin{PinOptions: core.PinOptions{ReplicationFactorMin: 2}}, core.TrackerStatusPinned, 0) != 2 ||
		WaitLimit(core.Pin{PinOptions: core.PinOptions{ReplicationFactorMin: -1}}, core.TrackerStatusPinned, 0) != 0 ||
		WaitLimit(core.Pin{PinOptions: core.PinOptions{ReplicationFactorMin: 2}}, core.TrackerStatusUnpinned, 0) != 0 ||
		WaitLimit(core.Pin{}, core.TrackerStatusPinned, 3) != 3 {
		t.Error("WaitLimit")
	}
}

// statusSequence serves GET /pins/{cid} with a status that changes at
// each call.
func statusSequence(t testing.TB, seq ...string) (*httptest.Server, *int) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := min(calls, len(seq)-1)
		calls++
		mu.Unlock()
		body := strings.Replace(fixtureStatus, `"status":"pinned"`, `"status":"`+seq[i]+`"`, 1)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestWaitFor(t *testing.T) {
	srv, calls := statusSequence(t, "pin_queued", "pinning", "pinned")
	c := newClient(t, srv.URL)
	gpi, err := c.WaitFor(ctx(t), WaitParams{Cid: mustCid(t, helloV0), Target: core.TrackerStatusPinned, CheckFreq: 10 * time.Millisecond})
	if err != nil || gpi.PeerMap[peerA].Status != core.TrackerStatusPinned || *calls != 3 {
		t.Fatalf("WaitFor: %v after %d calls: %+v", err, *calls, gpi)
	}

	// The first check comes one period after the call, as with IPFS
	// Cluster's client.
	srv, calls = statusSequence(t, "pinned")
	c = newClient(t, srv.URL)
	began := time.Now()
	if _, err := c.WaitFor(ctx(t), WaitParams{Cid: mustCid(t, helloV0), Target: core.TrackerStatusPinned, CheckFreq: 200 * time.Millisecond}); err != nil || *calls != 1 {
		t.Fatalf("WaitFor of a pinned CID: %v after %d calls", err, *calls)
	}
	if took := time.Since(began); took < 200*time.Millisecond {
		t.Fatalf("the first check came %s after the call, before the period", took)
	}

	srv, _ = statusSequence(t, "pinning", "pin_error")
	c = newClient(t, srv.URL)
	_, err = c.WaitFor(ctx(t), WaitParams{Cid: mustCid(t, helloV0), Target: core.TrackerStatusPinned, CheckFreq: 10 * time.Millisecond})
	var we *WaitError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "peer vm reports pin_error") {
		t.Fatalf("WaitFor with an error status: %v", err)
	}

	srv, _ = statusSequence(t, "pinning")
	c = newClient(t, srv.URL)
	wctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.WaitFor(wctx, WaitParams{Cid: mustCid(t, helloV0), Target: core.TrackerStatusPinned, CheckFreq: 10 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor past its deadline: %v", err)
	}
}

func TestStatusFilterEncoding(t *testing.T) {
	for _, c := range []struct {
		f    core.TrackerStatus
		want string
	}{
		{0, ""},
		{core.TrackerStatusPinned, "pinned"},
		{core.TrackerStatusError, "error"},
		{core.TrackerStatusQueued, "queued"},
		{core.TrackerStatusPinned | core.TrackerStatusPinError, "pin_error,pinned"},
	} {
		if got := StatusFilter(c.f); got != c.want {
			t.Errorf("StatusFilter(%d) = %q, want %q", c.f, got, c.want)
		}
		if c.f != 0 && core.ParseStatusFilter(StatusFilter(c.f)) != c.f {
			t.Errorf("StatusFilter(%d) does not parse back", c.f)
		}
	}
	if PinTypeFilter(core.AllType) != "all" || PinTypeFilter(core.ShardType|core.DataType) != "pin,shard-pin" {
		t.Error("PinTypeFilter")
	}
}
