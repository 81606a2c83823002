package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/api/client"
	"github.com/pincluster/pincluster/core"
)

const (
	peerA = "12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"
	peerB = "12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri"

	bodyStatus  = `{"cid":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN","name":"","allocations":[],"origins":[],"created":"2026-11-23T18:59:51Z","metadata":null,"peer_map":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":{"peername":"vm","ipfs_peer_id":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","status":"pinned","timestamp":"2026-11-23T18:59:51Z","error":"","attempt_count":0,"priority_pin":false}}}` + "\n"
	bodyPin     = `{"replication_factor_min":-1,"replication_factor_max":-1,"name":"","mode":"recursive","shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":{},"pin_update":null,"origins":null,"cid":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN","type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2024-05-06T12:00:00.123456789+02:00"}` + "\n"
	bodyVersion = `{"version":"1.1.6"}` + "\n"
)

// fakePeer serves canned answers keyed by "METHOD /path".
func fakePeer(t testing.TB, handlers map[string]http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := handlers[r.Method+" "+r.URL.Path]; ok {
			w.Header().Set("Content-Type", "application/json")
			h(w, r)
			return
		}
		w.WriteHeader(404)
		io.WriteString(w, `{"code":404,"message":"not found"}`+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func respond(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }
}

func maddrOf(srv *httptest.Server) string {
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", srv.Listener.Addr().(*net.TCPAddr).Port)
}

func TestTimeoutExitCode(t *testing.T) {
	srv := fakePeer(t, map[string]http.HandlerFunc{
		"GET /version": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
		},
	})
	start := time.Now()
	res := runner{t: t}.fails(62, "--host", srv.URL, "--timeout", "1", "version")
	if time.Since(start) > 10*time.Second {
		t.Fatalf("--timeout 1 took %s", time.Since(start))
	}
	if !strings.Contains(res.stdout, "Code: 0\n  Message: ") || !strings.Contains(res.stdout, "timed out") {
		t.Fatalf("timeout message:\n%s", res)
	}
}

func TestStreamTrailerError(t *testing.T) {
	stream := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Stream-Error")
		io.WriteString(w, bodyStatus)
		io.WriteString(w, bodyStatus)
		w.Header().Set("X-Stream-Error", "peer gone away")
	}
	srv := fakePeer(t, map[string]http.HandlerFunc{"GET /pins": stream})
	res := runner{t: t}.fails(2, "--host", srv.URL, "status")
	if strings.Count(res.stdout, "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN:\n") != 2 ||
		!strings.HasSuffix(res.stdout, "An error occurred:\n  Code: 500\n  Message: peer gone away\n") {
		t.Fatalf("items then the trailer error:\n%s", res)
	}
	res = runner{t: t}.fails(2, "--host", srv.URL, "--enc=json", "status")
	objs := jsonObjects[map[string]any](t, res.stdout)
	if len(objs) != 3 || objs[2]["code"] != 500.0 || objs[2]["message"] != "peer gone away" {
		t.Fatalf("json items then the error: %v", objs)
	}
}

func TestBasicAuthFlags(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := fakePeer(t, map[string]http.HandlerFunc{
		"GET /version": func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			mu.Lock()
			seen = append(seen, u+":"+p)
			mu.Unlock()
			if !ok || u != "user" || p != "secret" {
				w.WriteHeader(401)
				io.WriteString(w, `{"code":401,"message":"unauthorized: access denied"}`+"\n")
				return
			}
			io.WriteString(w, bodyVersion)
		},
	})
	ctl := runner{t: t}.with("--host", maddrOf(srv))

	res := ctl.ok("--basic-auth", "user:secret", "--force-http", "version")
	if res.stdout != "1.1.6\n" || res.stderr != "" {
		t.Fatalf("--basic-auth --force-http:\n%s", res)
	}
	res = ctl.fails(2, "--basic-auth", "user:wrong", "-f", "version")
	if res.stdout != "An error occurred:\n  Code: 401\n  Message: unauthorized: access denied\n" {
		t.Fatalf("wrong credentials:\n%s", res)
	}
	// Credentials from the environment imply HTTPS, with a warning: the
	// plain HTTP peer cannot answer.
	res = ctl.withEnv("CLUSTER_CREDENTIALS=user:secret").fails(1, "version")
	if !regexp.MustCompile("\tWARN\tcluster-ctl\tpincluster-ctl/main.go:\\d+\tSSL automatically enabled with basic auth credentials. Set \"force-http\" to disable\n").MatchString(res.stderr) ||
		!strings.Contains(res.stdout, "cannot reach the pincluster peer at https://") {
		t.Fatalf("credentials imply https:\n%s", res)
	}
	ctl.withEnv("CLUSTER_CREDENTIALS=user:secret").ok("--force-http", "version")
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(seen, []string{"user:secret", "user:wrong", "user:secret"}) {
		t.Fatalf("credentials received: %v", seen)
	}
}

func TestHTTPSFlags(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, bodyVersion)
	}))
	defer srv.Close()
	ctl := runner{t: t}.with("--host", maddrOf(srv))
	if res := ctl.ok("--https", "--no-check-certificate", "version"); res.stdout != "1.1.6\n" {
		t.Fatalf("https:\n%s", res)
	}
	res := ctl.fails(1, "-s", "version")
	if !strings.Contains(res.stdout, "certificate") {
		t.Fatalf("unverified certificate:\n%s", res)
	}
	r := runner{t: t}
	if res := r.ok("--host", srv.URL, "--no-check-certificate", "version"); res.stdout != "1.1.6\n" {
		t.Fatalf("https URL:\n%s", res)
	}
}

func TestWaitErrors(t *testing.T) {
	status := func(st string) http.HandlerFunc {
		return respond(strings.Replace(bodyStatus, `"status":"pinned"`, `"status":"`+st+`"`, 1))
	}
	pinPath := "POST /pins/ipfs/QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
	statusPath := "GET /pins/QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"

	srv := fakePeer(t, map[string]http.HandlerFunc{pinPath: respond(bodyPin), statusPath: status("pin_error")})
	res := runner{t: t}.fails(1, "--host", srv.URL, "pin", "add", "--wait", "--wait-timeout", "10s", "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN")
	if !strings.Contains(res.stdout, ": PIN_ERROR |") || !strings.Contains(res.stderr, "error waiting for pin status: error has occurred while attempting to reach status pinned: peer vm reports pin_error") {
		t.Fatalf("wait with an error status:\n%s", res)
	}

	srv = fakePeer(t, map[string]http.HandlerFunc{pinPath: respond(bodyPin), statusPath: status("pinning")})
	start := time.Now()
	runner{t: t}.fails(62, "--host", srv.URL, "pin", "add", "--wait", "--wait-timeout", "1500ms", "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN")
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("--wait-timeout 1500ms took %s", d)
	}
}

func TestTextFormats(t *testing.T) {
	var buf bytes.Buffer
	ts := time.Date(2024, 5, 6, 12, 0, 0, 123456789, time.FixedZone("", 2*3600))
	pin := core.Pin{
		PinOptions: core.PinOptions{ReplicationFactorMin: 2, ReplicationFactorMax: 3, Name: "myfile", Mode: core.PinModeDirect,
			Metadata: map[string]string{"z": "1", "a": "2"}, ExpireAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		Cid: mustCid(t, "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"), Type: core.DataType, MaxDepth: 0,
		Allocations: []core.PeerID{mustPeer(t, peerB), mustPeer(t, peerA)}, Timestamp: ts,
	}
	textPin(&buf, pin)
	want := "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN | myfile | PIN-DIRECT | Repl. Factor: 2--3 | Allocations: [" + peerB + " " + peerA + "] | Direct | Metadata: a:2 z:1 | Exp: 2030-01-02 03:04:05 | Added: 2024-05-06 12:00:00\n"
	if buf.String() != want {
		t.Errorf("pin:\n got %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	pin.MaxDepth = 2
	pin.Mode = core.PinModeRecursive
	pin.ReplicationFactorMin, pin.ReplicationFactorMax = -1, -1
	pin.Metadata = nil
	pin.ExpireAt = time.Time{}
	textPin(&buf, pin)
	want = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN | myfile | PIN | Repl. Factor: -1 | Allocations: [everywhere] | Recursive-2 | Metadata: no | Exp: ∞ | Added: 2024-05-06 12:00:00\n"
	if buf.String() != want {
		t.Errorf("pin everywhere:\n got %q\nwant %q", buf.String(), want)
	}

	buf.Reset()
	gpi := core.GlobalPinInfo{Cid: pin.Cid, Name: "myfile", PeerMap: map[string]core.PinInfoShort{
		peerB: {PeerName: "", Status: core.TrackerStatusPinError, Error: "boom", TS: ts, AttemptCount: 3, PriorityPin: true},
		peerA: {PeerName: "node1", Status: core.TrackerStatusUnexpectedlyUnpinned, TS: ts},
	}}
	textGPInfo(&buf, gpi)
	want = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN | myfile:\n" +
		"    > " + peerB + " : PIN_ERROR: boom | 2024-05-06T12:00:00.123456789+02:00 | Attempts: 3 | Priority: true\n" +
		"    > node1                : UNEXPECTEDLY_UNPINNED | 2024-05-06T12:00:00.123456789+02:00 | Attempts: 0 | Priority: false\n"
	if buf.String() != want {
		t.Errorf("status:\n got %q\nwant %q", buf.String(), want)
	}

	buf.Reset()
	textID(&buf, core.ID{ID: mustPeer(t, peerA), Peername: "node1", ClusterPeers: []core.PeerID{mustPeer(t, peerA), mustPeer(t, peerB)},
		Addresses: []string{"/ip4/127.0.0.1/tcp/9096/p2p/" + peerA, "/ip4/10.0.0.1/tcp/9096/p2p/" + peerA},
		IPFS:      core.IPFSID{ID: mustPeer(t, peerB), Addresses: []string{"/ip4/127.0.0.1/tcp/4001"}}})
	want = peerA + " | node1 | Sees 1 other peers\n  > Addresses:\n    - /ip4/10.0.0.1/tcp/9096/p2p/" + peerA + "\n    - /ip4/127.0.0.1/tcp/9096/p2p/" + peerA + "\n  > IPFS: " + peerB + "\n    - /ip4/127.0.0.1/tcp/4001\n"
	if buf.String() != want {
		t.Errorf("id:\n got %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	textID(&buf, core.ID{ID: mustPeer(t, peerB), Error: "context deadline exceeded"})
	textID(&buf, core.ID{ID: mustPeer(t, peerA), ClusterPeers: []core.PeerID{mustPeer(t, peerA)}, IPFS: core.IPFSID{Error: "connection refused"}})
	want = peerB + " | ERROR: context deadline exceeded\n" + peerA + " |  | Sees 0 other peers\n  > Addresses:\n  > IPFS ERROR: connection refused\n"
	if buf.String() != want {
		t.Errorf("id errors:\n got %q\nwant %q", buf.String(), want)
	}

	buf.Reset()
	textRepoGC(&buf, core.GlobalRepoGC{PeerMap: map[string]core.RepoGC{peerA: {Peer: mustPeer(t, peerA), Peername: "node1",
		Keys: []core.IPFSRepoGCKey{{Key: pin.Cid}, {Error: "in use"}}}}})
	want = "node1          \n  > CIDs:\n    - QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN\n    - ERROR: in use\n"
	if buf.String() != want {
		t.Errorf("gc:\n got %q\nwant %q", buf.String(), want)
	}

	buf.Reset()
	textMetric(&buf, core.Metric{Name: "freespace", Peer: mustPeer(t, peerA), Value: "9146652128", Weight: 9146652128, Expire: time.Now().Add(time.Hour).UnixNano()})
	if got := buf.String(); !strings.HasPrefix(got, peerA+" | freespace: 9.1 GB | Expires in: ") {
		t.Errorf("metric %q", got)
	}
	buf.Reset()
	textAlert(&buf, core.Alert{Metric: core.Metric{Name: "ping", Peer: mustPeer(t, peerB), Expire: time.Now().Add(-time.Minute).UnixNano()}, TriggeredAt: time.Now()})
	if got := buf.String(); !strings.HasPrefix(got, peerB+": ping. Expired at: 1 minute ago. Triggered at: ") {
		t.Errorf("alert %q", got)
	}
	buf.Reset()
	textBandwidth(&buf, client.BandwidthByProtocol{"/b": {TotalIn: 2048, TotalOut: 1000, RateIn: 10, RateOut: 0}, "/a": {}})
	want = "/a | In: 0 B (0 B/s) | Out: 0 B (0 B/s)\n/b | In: 2.0 kB (10 B/s) | Out: 1.0 kB (0 B/s)\n"
	if buf.String() != want {
		t.Errorf("bandwidth:\n got %q\nwant %q", buf.String(), want)
	}
}

// testPeer returns a valid peer ID (a sha2-256 multihash of s).
func testPeer(t testing.TB, s string) core.PeerID {
	t.Helper()
	h, err := multihash.Sum([]byte(s), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return core.PeerID(h)
}

func TestDotGraph(t *testing.T) {
	a, b, c := testPeer(t, "a"), testPeer(t, "b"), testPeer(t, "c")
	ia, ib, ix := testPeer(t, "ipfs a"), testPeer(t, "ipfs b"), testPeer(t, "ipfs x")
	g := core.ConnectGraph{
		ClusterID:         a,
		IDtoPeername:      map[string]string{a.String(): `node "one"`, b.String(): `node\two`},
		ClusterLinks:      map[string][]core.PeerID{a.String(): {b}, b.String(): {a}, c.String(): {}},
		ClusterTrustLinks: map[string]bool{a.String(): true, b.String(): false, c.String(): true},
		ClustertoIPFS:     map[string]core.PeerID{a.String(): ia, b.String(): ib},
		IPFSLinks:         map[string][]core.PeerID{ia.String(): {ib, ix}, ib.String(): {ia}},
	}
	dot := makeDot(g, false)
	checkDot(t, dot)
	mustContain(t, dot, `label="node \"one\"\n…`+a.String()[len(a.String())-8:]+`"`, `label="node\\two\n…`)
	if strings.Contains(dot, ix.String()) {
		t.Errorf("an IPFS peer without cluster peer is drawn without --all-ipfs-peers:\n%s", dot)
	}
	// 2 links among cluster peers, 2 to their IPFS daemons, 2 among those.
	if n := strings.Count(dot, " -> "); n != 6 {
		t.Errorf("%d edges:\n%s", n, dot)
	}
	all := makeDot(g, true)
	checkDot(t, all)
	if !strings.Contains(all, ix.String()) || strings.Count(all, " -> ") != 7 {
		t.Errorf("--all-ipfs-peers does not draw %s:\n%s", ix, all)
	}
	// The graph of appendix C: one peer and its IPFS daemon.
	one := core.ConnectGraph{ClusterID: mustPeer(t, peerA), IDtoPeername: map[string]string{peerA: "vm"},
		IPFSLinks: map[string][]core.PeerID{peerB: {}}, ClusterLinks: map[string][]core.PeerID{peerA: {}},
		ClusterTrustLinks: map[string]bool{peerA: true}, ClustertoIPFS: map[string]core.PeerID{peerA: mustPeer(t, peerB)}}
	dot = makeDot(one, false)
	checkDot(t, dot)
	if !strings.Contains(dot, "C0 -> I0\n") || strings.Count(dot, " -> ") != 1 || !strings.Contains(dot, `tooltip="`+peerB+`"`) {
		t.Errorf("one-peer graph:\n%s", dot)
	}
}

func TestReorderArgs(t *testing.T) {
	c := &ctl{}
	app := c.newApp()
	for _, tc := range []struct{ in, want string }{
		{"pincluster-ctl pin add --no-status Qm --name x", "pincluster-ctl pin add --no-status --name x -- Qm"},
		{"pincluster-ctl --host /ip4/1.2.3.4/tcp/1 -d pin add Qm -r 2 --metadata=a=b", "pincluster-ctl --host /ip4/1.2.3.4/tcp/1 -d pin add -r 2 --metadata=a=b -- Qm"},
		{"pincluster-ctl add -r dir -q", "pincluster-ctl add -r -q -- dir"},
		{"pincluster-ctl add -- -weird-name", "pincluster-ctl add -- -weird-name"},
		{"pincluster-ctl add -", "pincluster-ctl add -- -"},
		{"pincluster-ctl pin add Qm --rmin -1 --rmax -1", "pincluster-ctl pin add --rmin -1 --rmax -1 -- Qm"},
		{"pincluster-ctl nosuch x --y", "pincluster-ctl nosuch x --y"},
		{"pincluster-ctl pin", "pincluster-ctl pin"},
	} {
		got := strings.Join(reorderArgs(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	b := &progressBar{total: 1000}
	if got := b.line(500, time.Second); got != "500 B / 1.0 kB [===============>              ]  50% 500 B/s" {
		t.Errorf("progress line %q", got)
	}
	b = &progressBar{}
	if got := b.line(2_000_000, 2*time.Second); got != "2.0 MB sent, 1.0 MB/s" {
		t.Errorf("progress line without total %q", got)
	}
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
