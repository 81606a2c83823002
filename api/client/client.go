package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core"
)

// DefaultHost is the address of the REST API of a peer started with the
// default configuration.
const DefaultHost = "/ip4/127.0.0.1/tcp/9094"

// unixHost is the host name shown in the URLs of requests sent over a unix
// socket, as IPFS Cluster's client does (http+unix://restapi/...).
const unixHost = "restapi"

// Config configures a Client. The zero value talks to DefaultHost over
// plain HTTP without authentication.
type Config struct {
	// Host is the address of the REST API. Accepted forms:
	//
	//	http://host:port, https://host:port (a path prefix is kept)
	//	/ip4/1.2.3.4/tcp/9094, /ip6/::1/tcp/9094
	//	/dns/example.org/tcp/9094 (also /dns4, /dns6)
	//	/unix/path/to/socket
	//	host:port
	//
	// A multiaddress may end with /https (or /tls/http) to ask for HTTPS.
	// Several addresses may be given, separated by commas: a request that
	// cannot reach one address (a network error, before any answer) is
	// retried on the next, as IPFS Cluster's failover client does.
	// Empty means DefaultHost.
	Host string

	// SSL makes requests use HTTPS when Host does not name a scheme (a
	// multiaddress or host:port).
	SSL bool
	// NoVerifyCert skips the verification of the server's TLS
	// certificate.
	NoVerifyCert bool

	// Username and Password are sent with HTTP Basic authentication on
	// every request when Username is not empty.
	Username string
	Password string

	// Timeout bounds each request, from sending it to reading the last
	// byte of its answer (for streams: of the whole stream). 0 means no
	// limit. WaitFor is bounded by its context only.
	Timeout time.Duration

	// Debug, when set, receives the lines IPFS Cluster's client logs at
	// debug level: "retrying <n> times" before each attempt of a call (n
	// counts the addresses tried), "<METHOD>: <URL>" for every request,
	// "Response body: <raw body>" for an answer that is not a stream and
	// for the error answer of a stream (the body as received, trailing
	// newline included), "Request accepted" (202), "Request succeeded.
	// Response has no content" (204), "could not cast error into
	// api.Error" for an error answer that is not an error object, and
	// "Response trailer X-Stream-Error: ..." for a stream that failed. It
	// may be called from several goroutines at once.
	Debug func(msg string)
	// DebugError, when set, receives the line IPFS Cluster's client logs
	// at error level when no address could be reached: "reached maximum
	// number of retries without success, retries: <n>". When it is nil
	// and Debug is set, Debug receives it.
	DebugError func(msg string)

	// Transport, when set, replaces the HTTP transport (TLS and unix
	// socket settings are then up to it).
	Transport http.RoundTripper
}

// Client talks to the REST API of a pincluster (or IPFS Cluster) peer. It
// is safe for concurrent use.
type Client struct {
	cfg       Config
	endpoints []*endpoint
}

// endpoint is one address of the API.
type endpoint struct {
	base  string // scheme://host[/prefix], no trailing slash
	httpc *http.Client
}

// ConnectionError reports that the peer could not be reached, or that the
// connection failed before an answer was read.
type ConnectionError struct {
	// URL is the base URL of the API that was tried.
	URL string
	// Err is the network error.
	Err error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("cannot reach the pincluster peer at %s: %s", e.URL, describeNetError(e.Err))
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// Refused reports whether the peer actively refused the connection (no
// process listening on the address), the usual sign of a daemon that is
// not running.
func (e *ConnectionError) Refused() bool {
	return errors.Is(e.Err, syscall.ECONNREFUSED) || errors.Is(e.Err, syscall.ENOENT)
}

// describeNetError returns the innermost useful text of a network error:
// "connection refused" rather than `Get "http://...": dial tcp ...: connect:
// connection refused`.
func describeNetError(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ENOENT):
		return "no such socket"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// New returns a client for the API described by cfg.
func New(cfg Config) (*Client, error) {
	hosts := strings.Split(cfg.Host, ",")
	c := &Client{cfg: cfg}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			if len(hosts) > 1 {
				continue
			}
			h = DefaultHost
		}
		ep, err := newEndpoint(h, cfg)
		if err != nil {
			return nil, err
		}
		c.endpoints = append(c.endpoints, ep)
	}
	if len(c.endpoints) == 0 {
		return nil, errors.New("no API address given")
	}
	return c, nil
}

// BaseURL returns the base URL of the first API address (for messages).
func (c *Client) BaseURL() string { return c.endpoints[0].base }

// newEndpoint parses one API address.
func newEndpoint(host string, cfg Config) (*endpoint, error) {
	scheme := "http"
	if cfg.SSL {
		scheme = "https"
	}
	var hostport, prefix, socket string
	switch {
	case strings.HasPrefix(host, "http://"), strings.HasPrefix(host, "https://"):
		u, err := url.Parse(host)
		if err != nil {
			return nil, fmt.Errorf("invalid API address %q: %w", host, err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("invalid API address %q: no host", host)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("invalid API address %q: a query or fragment is not allowed", host)
		}
		scheme, hostport, prefix = u.Scheme, u.Host, strings.TrimSuffix(u.EscapedPath(), "/")
	case strings.HasPrefix(host, "/"):
		var err error
		var tlsAsked bool
		hostport, socket, tlsAsked, err = parseMultiaddr(host)
		if err != nil {
			return nil, err
		}
		if tlsAsked {
			scheme = "https"
		}
	case strings.Contains(host, "://"):
		return nil, fmt.Errorf("invalid API address %q: only http:// and https:// URLs are supported", host)
	default:
		if _, _, err := net.SplitHostPort(host); err != nil {
			return nil, fmt.Errorf("invalid API address %q: expected a URL, a multiaddress or host:port", host)
		}
		hostport = host
	}

	var rt http.RoundTripper
	if cfg.Transport != nil {
		rt = cfg.Transport
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: cfg.NoVerifyCert} //nolint:gosec // asked for explicitly
		if socket != "" {
			t.Proxy = nil
			t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			}
			rt = unixTransport{t}
		} else {
			rt = t
		}
	}
	base := scheme + "://" + hostport + prefix
	if socket != "" {
		base = "http+unix://" + unixHost
	}
	return &endpoint{base: base, httpc: &http.Client{Transport: rt}}, nil
}

// parseMultiaddr reads an API multiaddress. It returns host:port, or the
// path of a unix socket, and whether the address asks for TLS.
func parseMultiaddr(s string) (hostport, socket string, tlsAsked bool, err error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return "", "", false, fmt.Errorf("invalid API multiaddress %q: %w", s, err)
	}
	var host, port string
	var bad error
	ma.ForEach(m, func(c ma.Component) bool {
		switch c.Protocol().Code {
		case ma.P_IP4, ma.P_IP6, ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
			host = c.Value()
		case ma.P_TCP:
			port = c.Value()
		case ma.P_UNIX:
			socket = c.Value()
		case ma.P_HTTPS, ma.P_TLS:
			tlsAsked = true
		case ma.P_HTTP:
		case ma.P_P2P, ma.P_DNSADDR:
			bad = fmt.Errorf("API address %q is a libp2p address: libp2p-http endpoints are not supported by this client; use the HTTP address of the REST API (restapi.http_listen_multiaddress)", s)
			return false
		default:
			bad = fmt.Errorf("API address %q: protocol /%s is not supported (use /ip4, /ip6, /dns, /dns4, /dns6 with /tcp, or /unix)", s, c.Protocol().Name)
			return false
		}
		return true
	})
	if bad != nil {
		return "", "", false, bad
	}
	if socket != "" {
		return "", socket, false, nil
	}
	if host == "" || port == "" {
		return "", "", false, fmt.Errorf("API address %q: need a host (/ip4, /ip6, /dns...) and a /tcp port", s)
	}
	return net.JoinHostPort(host, port), "", tlsAsked, nil
}

// unixTransport sends http+unix:// requests as plain HTTP over the socket
// its transport dials.
type unixTransport struct{ t *http.Transport }

func (u unixTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http+unix" {
		r2 := req.Clone(req.Context())
		r2.URL.Scheme = "http"
		return u.t.RoundTrip(r2)
	}
	return u.t.RoundTrip(req)
}

func (c *Client) debug(format string, args ...any) {
	if c.cfg.Debug != nil {
		c.cfg.Debug(fmt.Sprintf(format, args...))
	}
}

func (c *Client) debugError(format string, args ...any) {
	switch {
	case c.cfg.DebugError != nil:
		c.cfg.DebugError(fmt.Sprintf(format, args...))
	case c.cfg.Debug != nil:
		c.cfg.Debug(fmt.Sprintf(format, args...))
	}
}

// request describes one HTTP call.
type request struct {
	method string
	path   string // escaped path, starting with /
	query  string // encoded query, without "?"

	body        []byte      // a body that can be re-sent (retries)
	stream      *uploadBody // a body produced while it is sent; wins over body
	contentType string
}

// resendable reports whether the request may be sent to another address
// after err: always when its body is held in memory; for an upload, only
// when the connection was never made and nothing of the body was read.
func (r *request) resendable(err error) bool {
	if r.stream == nil {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && r.stream.read.Load() == 0
}

// uploadBody is the body of an upload. It counts what the transport read
// and has no Close method, so that a transport that fails to connect does
// not close the pipe the body is written into: the next address can still
// be sent all of it.
type uploadBody struct {
	r    io.Reader
	read atomic.Int64
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (r *request) target() string {
	if r.query == "" {
		return r.path
	}
	return r.path + "?" + r.query
}

// cancelBody cancels a request's context once its answer is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// send performs the request, trying the next API address when one cannot
// be reached, as long as the body can be sent again (an upload can, if
// the failed attempt did not read any of it). The caller closes the
// answer's body.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	var lastErr error
	for i, ep := range c.endpoints {
		c.debug("retrying %d times", i+1)
		resp, err := c.sendTo(ctx, ep, r)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		var ce *ConnectionError
		if !errors.As(err, &ce) || ctx.Err() != nil || !r.resendable(err) {
			return nil, err
		}
	}
	c.debugError("reached maximum number of retries without success, retries: %d", len(c.endpoints))
	return nil, lastErr
}

func (c *Client) sendTo(ctx context.Context, ep *endpoint, r *request) (*http.Response, error) {
	cancel := context.CancelFunc(func() {})
	if c.cfg.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
	}
	u := ep.base + r.target()
	var body io.Reader
	switch {
	case r.stream != nil:
		body = r.stream
	case r.body != nil:
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("building request %s %s: %w", r.method, u, err)
	}
	if body != nil {
		// Sent chunked, as IPFS Cluster's client does.
		req.ContentLength = -1
		if r.contentType != "" {
			req.Header.Set("Content-Type", r.contentType)
		}
	}
	if c.cfg.Username != "" {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	c.debug("%s: %s", r.method, u)
	resp, err := ep.httpc.Do(req)
	if err != nil {
		ctxErr := ctx.Err()
		cancel()
		if ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, u, ctxErr)
		}
		return nil, &ConnectionError{URL: ep.base, Err: err}
	}
	resp.Body = cancelBody{resp.Body, cancel}
	return resp, nil
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// readError turns an error answer (400 to 599) into a core.Error.
func (c *Client) readError(resp *http.Response) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	c.debug("Response body: %s", data)
	if err != nil {
		return c.bodyError(resp, err)
	}
	e, ok := decodeError(resp.StatusCode, data)
	if !ok {
		c.debug("could not cast error into api.Error")
	}
	return e
}

// decodeError decodes an error body {"code":N,"message":"..."}; a body
// that is not one becomes the message, with the HTTP status as code, and
// ok is false.
func decodeError(status int, data []byte) (e core.Error, ok bool) {
	if err := json.Unmarshal(data, &e); err == nil && (e.Code != 0 || e.Message != "") {
		if e.Code == 0 {
			e.Code = status
		}
		return e, true
	}
	msg := strings.TrimSpace(string(data))
	if msg == "" {
		msg = http.StatusText(status)
	}
	return core.Error{Code: status, Message: msg}, false
}

// bodyError wraps an error met while reading an answer.
func (c *Client) bodyError(resp *http.Response, err error) error {
	if ctxErr := resp.Request.Context().Err(); ctxErr != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", resp.Request.Method, resp.Request.URL, ctxErr)
	}
	return &ConnectionError{URL: c.endpointOf(resp), Err: err}
}

func (c *Client) endpointOf(resp *http.Response) string {
	u := *resp.Request.URL
	if u.Host == unixHost {
		u.Scheme = "http+unix"
	}
	return u.Scheme + "://" + u.Host
}

// do performs a call whose answer is one JSON value (or nothing), decoded
// into out when out is not nil.
func (c *Client) do(ctx context.Context, r *request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 && resp.StatusCode <= 599 {
		return c.readError(resp)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return c.bodyError(resp, err)
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
		c.debug("Request accepted")
		return nil
	case http.StatusNoContent:
		c.debug("Request succeeded. Response has no content")
		return nil
	}
	c.debug("Response body: %s", data)
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &DecodeError{Method: r.method, Path: r.path, Body: data, Err: err}
	}
	return nil
}

// DecodeError reports an answer that could not be decoded.
type DecodeError struct {
	Method, Path string
	Body         []byte
	Err          error
}

func (e *DecodeError) Error() string {
	body := e.Body
	if len(body) > 200 {
		body = append(body[:200:200], "…"...)
	}
	return fmt.Sprintf("cannot decode the answer of %s %s: %v (body: %s)", e.Method, e.Path, e.Err, bytes.TrimSpace(body))
}

func (e *DecodeError) Unwrap() error { return e.Err }

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
