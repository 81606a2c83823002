package kubo

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// ipfsHTTPSection is IPFS Cluster v1.1's ipfs_connector.ipfshttp with its
// defaults and every key (rest-api.md 13.5).
const ipfsHTTPSection = `{
  "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
  "connect_swarms_delay": "30s",
  "ipfs_request_timeout": "5m0s",
  "pin_timeout": "2m0s",
  "unpin_timeout": "3h0m0s",
  "repogc_timeout": "24h0m0s",
  "informer_trigger_interval": 0,
  "unpin_disable": false
}`

func TestIPFSHTTPSection(t *testing.T) {
	cfg, ep, err := parseConfig(json.RawMessage(ipfsHTTPSection), "ipfs_connector.ipfshttp")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.ConnectSwarmsDelay = 30e9
	if cfg != want || ep.base != "http://127.0.0.1:5001/api/v0/" {
		t.Fatalf("parsed as %+v, want %+v", cfg, want)
	}
	cfg, _, err = parseConfig(json.RawMessage(`{"unpin_disable": true, "informer_trigger_interval": 100}`), "ipfs_connector.ipfshttp")
	if err != nil || !cfg.UnpinDisable || cfg.InformerTriggerInterval != 100 {
		t.Fatalf("%+v %v", cfg, err)
	}

	// The errors of the section name it.
	for raw, msg := range map[string]string{
		`{"pin_timeout": "0s"}`:                 "ipfs_connector.ipfshttp.pin_timeout must be positive",
		`{"pin_timeout": 120}`:                  `ipfs_connector.ipfshttp.pin_timeout: want a duration such as "30s", got 120`,
		`{"connect_swarms_delay": "-1s"}`:       "ipfs_connector.ipfshttp.connect_swarms_delay must not be negative",
		`{"informer_trigger_interval": -1}`:     "ipfs_connector.ipfshttp.informer_trigger_interval must not be negative",
		`{"informer_trigger_interval": "10"}`:   "ipfs_connector.ipfshttp.informer_trigger_interval: want an integer, got string",
		`{"unpin_disable": "yes"}`:              "ipfs_connector.ipfshttp.unpin_disable: want true or false, got string",
		`{"node_multiaddress": "/ip4/1.2.3.4"}`: "ipfs_connector.ipfshttp.node_multiaddress",
		`{"proxy_multiaddress": ""}`:            "ipfs_connector.ipfshttp.proxy_multiaddress: unknown key",
	} {
		_, _, err := parseConfig(json.RawMessage(raw), "ipfs_connector.ipfshttp")
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want one containing %q", raw, err, msg)
		}
	}
}

// Under IPFS Cluster's name the connector describes itself by that name
// and names its section ipfs_connector.ipfshttp.
func TestIPFSHTTPName(t *testing.T) {
	c := NewIPFSHTTP()
	desc, err := c.Describe(context.Background())
	if err != nil || desc.Name != IPFSHTTPName || desc.Kind != core.KindIPFSConnector {
		t.Fatalf("describe: %+v %v", desc, err)
	}
	if _, err := c.ID(context.Background()); err == nil || !strings.Contains(err.Error(), "ipfs_connector.ipfshttp is not configured") {
		t.Fatalf("ID before Configure: %v", err)
	}
	err = c.Configure(context.Background(), json.RawMessage(`{"pin_timeout": "soon"}`), sdktest.Environment(t), nil)
	if err == nil || !strings.Contains(err.Error(), "ipfs_connector.ipfshttp.pin_timeout") {
		t.Fatalf("configure: %v", err)
	}
	if err := New().Configure(context.Background(), json.RawMessage(`{"pin_timeout": "soon"}`), sdktest.Environment(t), nil); err == nil ||
		!strings.Contains(err.Error(), "ipfs_connector.kubo.pin_timeout") {
		t.Fatalf("configure as kubo: %v", err)
	}
}

// With unpin_disable, unpins fail without a call to kubo, as with IPFS
// Cluster's ipfshttp; pins still work.
func TestUnpinDisable(t *testing.T) {
	var unpins atomic.Int32
	srv := fakeKubo(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v0/pin/add":
			_, _ = w.Write([]byte(`{"Pins":["` + r.URL.Query().Get("arg") + `"]}`))
		case "/api/v0/id":
			_, _ = w.Write([]byte(`{"ID":"12D3KooWD4hmmG9zS3mYwqvmu5ecwkLYxpGgiqBS3QvGRPJVMjBS","Addresses":[]}`))
		case "/api/v0/pin/rm":
			unpins.Add(1)
			fallthrough
		default:
			http.Error(w, "unexpected "+r.URL.String(), 400)
		}
	})
	c := configured(t, `{"node_multiaddress": "`+srv.URL+`", "unpin_disable": true}`)
	a, b := testCid(t, "a"), testCid(t, "b")
	var res []core.IPFSPinResult
	for r, err := range c.Unpin(context.Background(), []core.Cid{a, b}) {
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	if len(res) != 2 || !res[0].Cid.Equals(a) || !res[1].Cid.Equals(b) {
		t.Fatalf("results %+v", res)
	}
	for _, r := range res {
		if !strings.Contains(r.Error, "ipfs unpinning is disallowed by configuration on this peer (ipfs_connector.kubo.unpin_disable)") {
			t.Fatalf("unpin result %+v", r)
		}
	}
	if n := unpins.Load(); n != 0 {
		t.Fatalf("%d pin/rm calls to kubo for a disabled unpin", n)
	}
	if msg, _ := pinOne(t, c, core.IPFSPinRequest{Cid: a, MaxDepth: -1, Timeout: time.Second}); msg != "" {
		t.Fatalf("pin: %s", msg)
	}
}
