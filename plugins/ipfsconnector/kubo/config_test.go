package kubo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

func TestParseNodeAddress(t *testing.T) {
	for in, want := range map[string]string{
		"/ip4/127.0.0.1/tcp/5001":             "http://127.0.0.1:5001/api/v0/",
		"/ip4/10.0.0.2/tcp/5001/http":         "http://10.0.0.2:5001/api/v0/",
		"/ip6/::1/tcp/5001":                   "http://[::1]:5001/api/v0/",
		"/dns/kubo.local/tcp/5001":            "http://kubo.local:5001/api/v0/",
		"/dns4/kubo.local/tcp/443/https":      "https://kubo.local:443/api/v0/",
		"/dns6/kubo.local/tcp/443/tls/http":   "https://kubo.local:443/api/v0/",
		"http://127.0.0.1:5001":               "http://127.0.0.1:5001/api/v0/",
		"https://ipfs.example.com/api/v0/":    "https://ipfs.example.com/api/v0/",
		"https://example.com/kubo?x=1":        "https://example.com/kubo/api/v0/",
		"/unix/var/run/kubo/api.sock":         "http://unix/api/v0/",
		" /ip4/127.0.0.1/tcp/5001 ":           "http://127.0.0.1:5001/api/v0/",
		"/ip4/127.0.0.1/tcp/5001/http/":       "http://127.0.0.1:5001/api/v0/",
		"/ip4/127.0.0.1/udp/5001":             "",
		"/ip4/127.0.0.1":                      "",
		"/ip4/127.0.0.1/tcp/5001/ws":          "",
		"/unix/a.sock/tcp/1":                  "http://unix/api/v0/", // the path is /a.sock/tcp/1
		"/ip4/127.0.0.1/tcp/5001/p2p/x":       "",
		"/p2p/12D3KooWD4hmmG9zS3mYwqvmu5ecwk": "",
		"127.0.0.1:5001":                      "",
		"":                                    "",
		"http://":                             "",
	} {
		ep, err := parseNodeAddress(in)
		if want == "" {
			if err == nil {
				t.Errorf("%q accepted as %s", in, ep.base)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if ep.base != want {
			t.Errorf("%q: base %s, want %s", in, ep.base, want)
		}
	}
	ep, _ := parseNodeAddress("/unix/var/run/kubo/api.sock")
	if ep.unixPath != "/var/run/kubo/api.sock" {
		t.Errorf("unix path %q", ep.unixPath)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, ep, err := parseConfig(nil, "ipfs_connector.kubo")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != DefaultConfig() || ep.base != "http://127.0.0.1:5001/api/v0/" || ep.authorization != "" {
		t.Fatalf("defaults: %+v %+v", cfg, ep)
	}
	if cfg.PinTimeout.D() != 2*time.Minute || cfg.UnpinTimeout.D() != 3*time.Hour ||
		cfg.IPFSRequestTimeout.D() != 5*time.Minute || cfg.RepoGCTimeout.D() != 24*time.Hour {
		t.Fatalf("default timeouts: %+v", cfg)
	}

	_, ep, err = parseConfig(json.RawMessage(`{"basic_auth":"alice:s3cret:x"}`), "ipfs_connector.kubo")
	if err != nil {
		t.Fatal(err)
	}
	if ep.authorization != "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:s3cret:x")) {
		t.Fatalf("basic auth header %q", ep.authorization)
	}
	_, ep, err = parseConfig(json.RawMessage(`{"authorization":"Bearer tok"}`), "ipfs_connector.kubo")
	if err != nil || ep.authorization != "Bearer tok" {
		t.Fatalf("authorization: %v %+v", err, ep)
	}

	for bad, msg := range map[string]string{
		`{"pin_timeout":"0s"}`:                            "pin_timeout",
		`{"unpin_timeout":"-1s"}`:                         "unpin_timeout",
		`{"repogc_timeout":"0s"}`:                         "repogc_timeout",
		`{"ipfs_request_timeout":"0s"}`:                   "ipfs_request_timeout",
		`{"pin_timeout":"soon"}`:                          "invalid",
		`{"pin_concurrency":0}`:                           "pin_concurrency",
		`{"basic_auth":"nocolon"}`:                        "basic_auth",
		`{"basic_auth":"a:b","authorization":"Bearer x"}`: "not both",
		`{"node_multiaddress":"/ip4/1.2.3.4/udp/1"}`:      "node_multiaddress",
		`{"what":1}`:                                      "ipfs_connector.kubo.what: unknown key",
	} {
		_, _, err := parseConfig(json.RawMessage(bad), "ipfs_connector.kubo")
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want one mentioning %q", bad, err, msg)
		}
	}
}

func TestDescribe(t *testing.T) {
	desc, err := New().Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if desc.Kind != core.KindIPFSConnector || desc.Name != Name {
		t.Fatalf("describe: %+v", desc)
	}
	var cfg Config
	if err := json.Unmarshal(desc.DefaultConfig, &cfg); err != nil || cfg != DefaultConfig() {
		t.Fatalf("default config %s: %v", desc.DefaultConfig, err)
	}
	for _, key := range []string{"node_multiaddress", "ipfs_request_timeout", "pin_timeout", "unpin_timeout", "repogc_timeout", "pin_concurrency"} {
		if !strings.Contains(string(desc.DefaultConfig), `"`+key+`"`) {
			t.Errorf("default config lacks %s: %s", key, desc.DefaultConfig)
		}
	}
}

func TestNotConfigured(t *testing.T) {
	c := New()
	if _, err := c.ID(context.Background()); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("ID before Configure: %v", err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
