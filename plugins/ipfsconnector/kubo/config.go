package kubo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core/config"
)

// DefaultNodeMultiaddress is kubo's default RPC API address.
const DefaultNodeMultiaddress = "/ip4/127.0.0.1/tcp/5001"

// IPFSHTTPName is the name IPFS Cluster gives its kubo connector. A
// service.json written for IPFS Cluster names it (ipfs_connector.ipfshttp):
// the plugin is built in under both names, and under this one it names its
// section ipfs_connector.ipfshttp in its errors.
const IPFSHTTPName = "ipfshttp"

// Config is the plugin's section of service.json (ipfs_connector.kubo or
// ipfs_connector.ipfshttp). Its keys follow IPFS Cluster's ipfshttp
// connector where they exist there, and every key of that connector is
// accepted.
type Config struct {
	// NodeMultiaddress is where kubo's RPC API listens: a multiaddr
	// (/ip4, /ip6, /dns, /dns4, /dns6 with /tcp, optionally ending in
	// /http or /https; or /unix/<path>) or an http(s) URL.
	NodeMultiaddress string `json:"node_multiaddress"`
	// BasicAuth is "user:password" for kubo's API.Authorizations with a
	// basic: secret.
	BasicAuth string `json:"basic_auth,omitempty"`
	// Authorization is a whole Authorization header value, for example
	// "Bearer <token>" for an API.Authorizations bearer: secret.
	Authorization string `json:"authorization,omitempty"`
	// IPFSRequestTimeout bounds every call to kubo except pins, unpins and
	// repo GC.
	IPFSRequestTimeout config.Duration `json:"ipfs_request_timeout"`
	// PinTimeout is how long a pin may go without progress when the
	// request gives no timeout of its own.
	PinTimeout config.Duration `json:"pin_timeout"`
	// UnpinTimeout bounds an unpin.
	UnpinTimeout config.Duration `json:"unpin_timeout"`
	// RepoGCTimeout bounds a repo GC.
	RepoGCTimeout config.Duration `json:"repogc_timeout"`
	// PinConcurrency is how many pin/add and pin/rm calls may be in flight
	// to kubo at the same time, over every batch.
	PinConcurrency int `json:"pin_concurrency"`
	// UnpinDisable refuses every unpin, as IPFS Cluster's unpin_disable
	// does: the CIDs stay pinned in kubo and their unpins fail.
	UnpinDisable bool `json:"unpin_disable,omitempty"`
	// ConnectSwarmsDelay is IPFS Cluster's delay before it connects kubo to
	// the other peers' IPFS nodes at start. Accepted and not used: the core
	// connects them from the start, every few seconds.
	ConnectSwarmsDelay config.Duration `json:"connect_swarms_delay,omitempty"`
	// InformerTriggerInterval is IPFS Cluster's number of pins after which
	// the informers send their metrics again (0: never). Accepted and not
	// used: the informers send their metrics every half of their TTL.
	InformerTriggerInterval int `json:"informer_trigger_interval,omitempty"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		NodeMultiaddress:   DefaultNodeMultiaddress,
		IPFSRequestTimeout: config.Duration(5 * time.Minute),
		PinTimeout:         config.Duration(2 * time.Minute),
		UnpinTimeout:       config.Duration(3 * time.Hour),
		RepoGCTimeout:      config.Duration(24 * time.Hour),
		PinConcurrency:     16,
	}
}

// parseConfig decodes the section named section ("ipfs_connector.kubo",
// "ipfs_connector.ipfshttp") over the defaults and validates it; its
// errors name their key by its full path.
func parseConfig(raw json.RawMessage, section string) (Config, *endpoint, error) {
	cfg := DefaultConfig()
	if err := config.DecodeSection(section, raw, &cfg); err != nil {
		return cfg, nil, err
	}
	switch {
	case cfg.IPFSRequestTimeout <= 0:
		return cfg, nil, fmt.Errorf("%s.ipfs_request_timeout must be positive", section)
	case cfg.PinTimeout <= 0:
		return cfg, nil, fmt.Errorf("%s.pin_timeout must be positive", section)
	case cfg.UnpinTimeout <= 0:
		return cfg, nil, fmt.Errorf("%s.unpin_timeout must be positive", section)
	case cfg.RepoGCTimeout <= 0:
		return cfg, nil, fmt.Errorf("%s.repogc_timeout must be positive", section)
	case cfg.PinConcurrency < 1:
		return cfg, nil, fmt.Errorf("%s.pin_concurrency must be at least 1", section)
	case cfg.ConnectSwarmsDelay < 0:
		return cfg, nil, fmt.Errorf("%s.connect_swarms_delay must not be negative", section)
	case cfg.InformerTriggerInterval < 0:
		return cfg, nil, fmt.Errorf("%s.informer_trigger_interval must not be negative", section)
	case cfg.BasicAuth != "" && cfg.Authorization != "":
		return cfg, nil, fmt.Errorf("%s: set basic_auth or authorization, not both", section)
	case cfg.BasicAuth != "" && !strings.Contains(cfg.BasicAuth, ":"):
		return cfg, nil, fmt.Errorf("%s.basic_auth must be \"user:password\"", section)
	}
	ep, err := parseNodeAddress(cfg.NodeMultiaddress)
	if err != nil {
		return cfg, nil, fmt.Errorf("%s.node_multiaddress: %w", section, err)
	}
	switch {
	case cfg.BasicAuth != "":
		ep.authorization = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.BasicAuth))
	case cfg.Authorization != "":
		ep.authorization = cfg.Authorization
	}
	return cfg, ep, nil
}

// endpoint is where and how to reach kubo's RPC API.
type endpoint struct {
	// addr is the configured address, as written in errors.
	addr string
	// base is the URL of the API root ("http://127.0.0.1:5001/api/v0/").
	base string
	// unixPath is set for a unix socket; the URL host is then a placeholder.
	unixPath string
	// authorization is the Authorization header value, if any.
	authorization string
}

// dialer returns the DialContext of the endpoint's transport.
func (e *endpoint) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if e.unixPath == "" {
		return d.DialContext
	}
	path := e.unixPath
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}
}

// parseNodeAddress accepts a multiaddr or an http(s) URL.
func parseNodeAddress(s string) (*endpoint, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty address")
	}
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		if u.Host == "" {
			return nil, fmt.Errorf("%q has no host", s)
		}
		p := strings.TrimRight(u.Path, "/")
		if !strings.HasSuffix(p, "/api/v0") {
			p += "/api/v0"
		}
		u.Path = p + "/"
		u.RawQuery, u.Fragment = "", ""
		return &endpoint{addr: s, base: u.String()}, nil
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%q is neither a multiaddr nor an http(s) URL: %w", s, err)
	}
	if m[0].Protocol().Code == ma.P_UNIX {
		if len(m) != 1 {
			return nil, fmt.Errorf("%q: a /unix address takes nothing after its path", s)
		}
		return &endpoint{addr: s, base: "http://unix/api/v0/", unixPath: m[0].Value()}, nil
	}
	unsupported := fmt.Errorf("%q: unsupported multiaddr: use /ip4|/ip6|/dns|/dns4|/dns6/<host>/tcp/<port>[/http|/https|/tls/http] or /unix/<path>", s)
	if len(m) < 2 || m[1].Protocol().Code != ma.P_TCP {
		return nil, unsupported
	}
	var host string
	switch m[0].Protocol().Code {
	case ma.P_IP4, ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
		host = m[0].Value()
	case ma.P_IP6:
		host = "[" + m[0].Value() + "]"
	default:
		return nil, unsupported
	}
	port := m[1].Value()
	var rest []string
	for _, c := range m[2:] {
		rest = append(rest, c.Protocol().Name)
	}
	scheme := ""
	switch strings.Join(rest, "/") {
	case "", "http":
		scheme = "http"
	case "https", "tls/http":
		scheme = "https"
	default:
		return nil, unsupported
	}
	return &endpoint{addr: s, base: scheme + "://" + host + ":" + port + "/api/v0/"}, nil
}

// newHTTPClient returns a pooled client for the endpoint: enough idle
// keep-alive connections for every pin in flight plus the other calls.
func newHTTPClient(ep *endpoint, concurrency int) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           ep.dialer(),
		MaxIdleConns:          concurrency + 16,
		MaxIdleConnsPerHost:   concurrency + 16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// kubo's streams are long-lived; only the headers are bounded here.
		ResponseHeaderTimeout: 0,
		DisableCompression:    true,
	}
	return &http.Client{Transport: tr}
}
