package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/adder"
)

// Identifiers and bodies captured from a live IPFS Cluster 1.1.6 peer
// (spec Appendix C).
const (
	peerA  = "12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"
	ipfsA  = "12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri"
	cidA   = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN" // pinned
	cidUpd = "Qmb3HYrshA4Bdd5gC4soLTt13Lq6gscZ8VdDWz5zWmzvy8"
	cidB   = "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB" // not pinned
	cidV1  = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"

	bodyID         = `{"id":"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX","addresses":["/ip4/127.0.0.1/tcp/9096/p2p/12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"],"cluster_peers":["12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"],"cluster_peers_addresses":[],"version":"1.1.6","commit":"","rpc_protocol_version":"/ipfscluster/1.0/rpc","error":"","ipfs":{"id":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","addresses":[],"error":""},"peername":"vm"}` + "\n"
	bodyVersion    = `{"version":"1.1.6"}` + "\n"
	bodyAllocation = `{"replication_factor_min":-1,"replication_factor_max":-1,"name":"","mode":"recursive","shard_size":104857600,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":null,"pin_update":"Qmb3HYrshA4Bdd5gC4soLTt13Lq6gscZ8VdDWz5zWmzvy8","origins":[],"cid":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN","type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2026-11-23T18:59:51Z"}` + "\n"
	bodyStatus     = `{"cid":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN","name":"","allocations":[],"origins":[],"created":"2026-11-23T18:59:51Z","metadata":null,"peer_map":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":{"peername":"vm","ipfs_peer_id":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","status":"pinned","timestamp":"2026-11-23T18:59:51Z","error":"","attempt_count":0,"priority_pin":false}}}` + "\n"
	bodyFreespace  = `[{"name":"freespace","peer":"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX","value":"9146652128","expire":1795460427323146357,"valid":true,"weight":9146652128,"partitionable":false,"received_at":1795460397323379946}]` + "\n"
	bodyGraph      = `{"cluster_id":"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX","id_to_peername":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":"vm"},"ipfs_links":{"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri":[]},"cluster_links":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":[]},"cluster_trust_links":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":true},"cluster_to_ipfs":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri"}}` + "\n"
	bodyRepoGC     = `{"peer_map":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":{"peer":"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX","peername":"vm","keys":[{"key":"QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB"},{"key":null,"error":"boom"}]}}}` + "\n"
)

var fixtureTime = time.Date(2026, 11, 23, 18, 59, 51, 0, time.UTC)

func mustCid(s string) core.Cid {
	c, err := core.DecodeCid(s)
	if err != nil {
		panic(err)
	}
	return c
}

func mustPeer(s string) core.PeerID {
	p, err := core.DecodePeerID(s)
	if err != nil {
		panic(err)
	}
	return p
}

func fixtureID() core.ID {
	return core.ID{
		ID:                    mustPeer(peerA),
		Addresses:             []string{"/ip4/127.0.0.1/tcp/9096/p2p/" + peerA},
		ClusterPeers:          []core.PeerID{mustPeer(peerA)},
		ClusterPeersAddresses: []string{},
		Version:               "1.1.6",
		Commit:                "",
		RPCProtocolVersion:    "/ipfscluster/1.0/rpc",
		IPFS:                  core.IPFSID{ID: mustPeer(ipfsA), Addresses: []string{}},
		Peername:              "vm",
	}
}

func fixturePin() core.Pin {
	return core.Pin{
		PinOptions: core.PinOptions{
			ReplicationFactorMin: -1,
			ReplicationFactorMax: -1,
			ShardSize:            104857600,
			PinUpdate:            mustCid(cidUpd),
			Origins:              []string{},
		},
		Cid:       mustCid(cidA),
		Type:      core.DataType,
		MaxDepth:  -1,
		Timestamp: fixtureTime,
	}
}

func fixtureStatus(c core.Cid, st core.TrackerStatus) core.GlobalPinInfo {
	return core.GlobalPinInfo{
		Cid:         c,
		Allocations: []core.PeerID{},
		Origins:     []string{},
		Created:     fixtureTime,
		PeerMap: map[string]core.PinInfoShort{
			peerA: {PeerName: "vm", IPFS: mustPeer(ipfsA), Status: st, TS: fixtureTime},
		},
	}
}

// fakeCluster is a scriptable Cluster. Methods without an override answer
// from the Appendix C fixtures; every call records its arguments.
type fakeCluster struct {
	mu   sync.Mutex
	last map[string][]any

	idFn          func(ctx context.Context) core.ID
	peersFn       func(ctx context.Context) iter.Seq2[core.ID, error]
	addFn         func(ctx context.Context, body *multipart.Reader, params adder.Params, opts core.PinOptions, emit func(core.AddedOutput) error) (core.Cid, error)
	statusAllFn   func(ctx context.Context, filter core.TrackerStatus, local bool) iter.Seq2[core.GlobalPinInfo, error]
	statusFn      func(ctx context.Context, c core.Cid, local bool) (core.GlobalPinInfo, error)
	allocationsFn func(ctx context.Context, filter core.PinType) iter.Seq2[core.Pin, error]
	recoverAllFn  func(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error]
	pinFn         func(ctx context.Context, c core.Cid, opts core.PinOptions) (core.Pin, error)
	alerts        []core.Alert
	// fail, when set, is returned by every method that can fail.
	fail error
}

func newFake() *fakeCluster { return &fakeCluster{last: map[string][]any{}} }

func (f *fakeCluster) record(method string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last[method] = args
}

// args returns the arguments of the last call of method (nil if none).
func (f *fakeCluster) args(method string) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[method]
}

func (f *fakeCluster) ID(ctx context.Context) core.ID {
	f.record("ID")
	if f.idFn != nil {
		return f.idFn(ctx)
	}
	return fixtureID()
}

func (f *fakeCluster) Version() string { return "1.1.6" }

func (f *fakeCluster) Peers(ctx context.Context) iter.Seq2[core.ID, error] {
	f.record("Peers")
	if f.peersFn != nil {
		return f.peersFn(ctx)
	}
	return core.SliceSeq([]core.ID{fixtureID()})
}

func (f *fakeCluster) PeerRemove(_ context.Context, p core.PeerID) error {
	f.record("PeerRemove", p)
	if f.fail != nil {
		return f.fail
	}
	if p == mustPeer(ipfsA) {
		return errors.New("peer not in the peerset")
	}
	return nil
}

func (f *fakeCluster) Add(ctx context.Context, body *multipart.Reader, params adder.Params, opts core.PinOptions, emit func(core.AddedOutput) error) (core.Cid, error) {
	f.record("Add", params, opts)
	if f.addFn != nil {
		return f.addFn(ctx, body, params, opts, emit)
	}
	var root core.Cid
	for {
		part, err := body.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return core.UndefCid, err
		}
		n, err := io.Copy(io.Discard, part)
		if err != nil {
			return core.UndefCid, err
		}
		root = mustCid(cidA)
		if err := emit(core.AddedOutput{Name: part.FileName(), Cid: root, Size: uint64(n) + 8, Allocations: []core.PeerID{mustPeer(peerA)}}); err != nil {
			return core.UndefCid, err
		}
	}
	return root, nil
}

func (f *fakeCluster) Allocations(ctx context.Context, filter core.PinType) iter.Seq2[core.Pin, error] {
	f.record("Allocations", filter)
	if f.allocationsFn != nil {
		return f.allocationsFn(ctx, filter)
	}
	return core.SliceSeq([]core.Pin{fixturePin()})
}

func (f *fakeCluster) Allocation(_ context.Context, c core.Cid) (core.Pin, error) {
	f.record("Allocation", c)
	if f.fail != nil {
		return core.Pin{}, f.fail
	}
	if c.Equals(mustCid(cidA)) {
		return fixturePin(), nil
	}
	return core.Pin{}, core.ErrPinNotFound
}

func (f *fakeCluster) StatusAll(ctx context.Context, filter core.TrackerStatus, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	f.record("StatusAll", filter, local)
	if f.statusAllFn != nil {
		return f.statusAllFn(ctx, filter, local)
	}
	gpi := fixtureStatus(mustCid(cidA), core.TrackerStatusPinned)
	if !gpi.Match(filter) {
		return core.SliceSeq[core.GlobalPinInfo](nil)
	}
	return core.SliceSeq([]core.GlobalPinInfo{gpi})
}

func (f *fakeCluster) Status(ctx context.Context, c core.Cid, local bool) (core.GlobalPinInfo, error) {
	f.record("Status", c, local)
	if f.fail != nil {
		return core.GlobalPinInfo{}, f.fail
	}
	if f.statusFn != nil {
		return f.statusFn(ctx, c, local)
	}
	return f.info(c), nil
}

func (f *fakeCluster) info(c core.Cid) core.GlobalPinInfo {
	if c.Equals(mustCid(cidA)) {
		return fixtureStatus(c, core.TrackerStatusPinned)
	}
	return fixtureStatus(c, core.TrackerStatusUnpinned)
}

func (f *fakeCluster) Recover(_ context.Context, c core.Cid, local bool) (core.GlobalPinInfo, error) {
	f.record("Recover", c, local)
	if f.fail != nil {
		return core.GlobalPinInfo{}, f.fail
	}
	return f.info(c), nil
}

func (f *fakeCluster) RecoverAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	f.record("RecoverAll", local)
	if f.recoverAllFn != nil {
		return f.recoverAllFn(ctx, local)
	}
	return core.SliceSeq([]core.GlobalPinInfo{f.info(mustCid(cidA))})
}

func (f *fakeCluster) Sync(_ context.Context, c core.Cid, local bool) (core.GlobalPinInfo, error) {
	f.record("Sync", c, local)
	if f.fail != nil {
		return core.GlobalPinInfo{}, f.fail
	}
	return f.info(c), nil
}

func (f *fakeCluster) SyncAll(_ context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	f.record("SyncAll", local)
	return core.SliceSeq([]core.GlobalPinInfo{f.info(mustCid(cidA)), f.info(mustCid(cidB))})
}

func pinFromOpts(c core.Cid, opts core.PinOptions) core.Pin {
	depth := -1
	if opts.Mode == core.PinModeDirect {
		depth = 0
	}
	return core.Pin{PinOptions: opts, Cid: c, Type: core.DataType, MaxDepth: depth, Timestamp: fixtureTime}
}

func (f *fakeCluster) Pin(ctx context.Context, c core.Cid, opts core.PinOptions) (core.Pin, error) {
	f.record("Pin", c, opts)
	if f.fail != nil {
		return core.Pin{}, f.fail
	}
	if f.pinFn != nil {
		return f.pinFn(ctx, c, opts)
	}
	return pinFromOpts(c, opts), nil
}

func (f *fakeCluster) PinPath(_ context.Context, path string, opts core.PinOptions) (core.Pin, error) {
	f.record("PinPath", path, opts)
	if f.fail != nil {
		return core.Pin{}, f.fail
	}
	seg := strings.Split(path, "/")
	c, err := core.DecodeCid(seg[2])
	if err != nil {
		return core.Pin{}, errors.New("could not resolve " + path)
	}
	return pinFromOpts(c, opts), nil
}

func (f *fakeCluster) Unpin(_ context.Context, c core.Cid) (core.Pin, error) {
	f.record("Unpin", c)
	if f.fail != nil {
		return core.Pin{}, f.fail
	}
	if c.Equals(mustCid(cidA)) {
		return fixturePin(), nil
	}
	return core.Pin{}, core.ErrPinNotFound
}

func (f *fakeCluster) UnpinPath(_ context.Context, path string) (core.Pin, error) {
	f.record("UnpinPath", path)
	if f.fail != nil {
		return core.Pin{}, f.fail
	}
	if path == "/ipfs/"+cidA {
		return fixturePin(), nil
	}
	return core.Pin{}, core.ErrPinNotFound
}

func (f *fakeCluster) RepoGC(_ context.Context, local bool) (core.GlobalRepoGC, error) {
	f.record("RepoGC", local)
	if f.fail != nil {
		return core.GlobalRepoGC{}, f.fail
	}
	return core.GlobalRepoGC{PeerMap: map[string]core.RepoGC{
		peerA: {Peer: mustPeer(peerA), Peername: "vm", Keys: []core.IPFSRepoGCKey{{Key: mustCid(cidB)}, {Error: "boom"}}},
	}}, nil
}

func (f *fakeCluster) ConnectGraph(context.Context) (core.ConnectGraph, error) {
	f.record("ConnectGraph")
	if f.fail != nil {
		return core.ConnectGraph{}, f.fail
	}
	return core.ConnectGraph{
		ClusterID:         mustPeer(peerA),
		IDtoPeername:      map[string]string{peerA: "vm"},
		IPFSLinks:         map[string][]core.PeerID{ipfsA: {}},
		ClusterLinks:      map[string][]core.PeerID{peerA: {}},
		ClusterTrustLinks: map[string]bool{peerA: true},
		ClustertoIPFS:     map[string]core.PeerID{peerA: mustPeer(ipfsA)},
	}, nil
}

func (f *fakeCluster) Alerts(context.Context) ([]core.Alert, error) {
	f.record("Alerts")
	if f.fail != nil {
		return nil, f.fail
	}
	return f.alerts, nil
}

func (f *fakeCluster) MetricNames(context.Context) ([]string, error) {
	f.record("MetricNames")
	if f.fail != nil {
		return nil, f.fail
	}
	return []string{"ping", "freespace"}, nil
}

func (f *fakeCluster) Metrics(_ context.Context, name string) ([]core.Metric, error) {
	f.record("Metrics", name)
	if f.fail != nil {
		return nil, f.fail
	}
	if name != "freespace" {
		return nil, nil
	}
	return []core.Metric{{
		Name: "freespace", Peer: mustPeer(peerA), Value: "9146652128",
		Expire: 1795460427323146357, Valid: true, Weight: 9146652128,
		ReceivedAt: 1795460397323379946,
	}}, nil
}

// testConfig returns a default configuration that listens nowhere.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.HTTPListenAddr = nil
	return cfg
}

// newTestServer builds a Server whose recovered panics fail the test.
func newTestServer(t testing.TB, cfg Config, c Cluster) *Server {
	t.Helper()
	s, err := NewServer(cfg, c, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.onPanic = func(v any) { t.Errorf("handler panicked: %v", v) }
	return s
}

// startHTTP serves s on a loopback httptest server.
func startHTTP(t testing.TB, s *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// noRedirect is a client that returns redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type result struct {
	status  int
	header  http.Header
	body    string
	trailer http.Header
}

// do sends one request and reads the whole answer, trailers included.
func do(t testing.TB, ts *httptest.Server, method, target string, body io.Reader, hdr map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), trailer: resp.Trailer}
}

// errBody is the JSON error body for status and msg.
func errBody(status int, msg string) string {
	b, _ := json.Marshal(core.Error{Code: status, Message: msg})
	return string(b) + "\n"
}

// decodeError parses a JSON error body.
func decodeError(t testing.TB, body string) core.Error {
	t.Helper()
	var e core.Error
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q is not {code,message}: %v", body, err)
	}
	return e
}

// jsonKeys returns the top-level keys of a JSON object in order.
func jsonKeys(t testing.TB, body string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", body)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// ndjson splits a stream body into its JSON lines.
func ndjson(t testing.TB, body string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.SplitAfter(body, "\n") {
		if l == "" {
			continue
		}
		if !json.Valid([]byte(l)) {
			t.Fatalf("invalid NDJSON line %q", l)
		}
		out = append(out, l)
	}
	return out
}

// multipartBody builds an add request body with one file per name.
func multipartBody(t testing.TB, files map[string]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, content := range files {
		h := make(map[string][]string)
		h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + name + `"`}
		h["Content-Type"] = []string{"application/octet-stream"}
		pw, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(pw, content); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}
