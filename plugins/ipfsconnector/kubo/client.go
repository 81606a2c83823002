package kubo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// client calls kubo's RPC API. Every command is a POST to
// <base><command>?<query>; kubo answers JSON (one value, or a stream of
// values for streaming commands). An error before any output comes as a
// non-200 status with a JSON body {"Message":…,"Code":…,"Type":"error"};
// an error after output has started comes in the X-Stream-Error trailer.
type client struct {
	ep   *endpoint
	http *http.Client
	// pinSem bounds the pin/add and pin/rm calls in flight, over every
	// batch (pin_concurrency).
	pinSem chan struct{}
}

// streamErrTrailer is the trailer kubo sets when a streamed command fails
// after output has started.
const streamErrTrailer = "X-Stream-Error"

// UnreachableError says that kubo's API could not be reached at all.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("kubo is not reachable at %s: %v", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Error is an error answered by kubo.
type Error struct {
	// Command is the RPC command, for example "pin/add".
	Command string
	// Message is kubo's error message.
	Message string
	// Status is the HTTP status (200 for an error in a stream's trailer).
	Status int
}

func (e *Error) Error() string { return fmt.Sprintf("kubo %s: %s", e.Command, e.Message) }

// timeoutError is the cause of a context ended by one of the connector's
// own timeouts; its text names the configuration key.
type timeoutError struct {
	what string
	d    time.Duration
	key  string
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s timed out after %s (%s)", e.what, e.d, e.key)
}

// Is makes a connector timeout a context.DeadlineExceeded for callers.
func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// withTimeout bounds ctx by d; an expiry is reported as a timeoutError.
func withTimeout(ctx context.Context, d time.Duration, what, key string) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, &timeoutError{what: what, d: d, key: key})
}

// response is an answer of kubo with status 200.
type response struct {
	cmd  string
	resp *http.Response
	c    *client
	ctx  context.Context
}

// post calls a command. The caller must close the response.
func (c *client) post(ctx context.Context, cmd string, q url.Values, body io.Reader, contentType string, getBody func() (io.ReadCloser, error)) (*response, error) {
	u := c.ep.base + cmd
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, fmt.Errorf("kubo %s: %w", cmd, err)
	}
	if getBody != nil {
		req.GetBody = getBody
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.ep.authorization != "" {
		req.Header.Set("Authorization", c.ep.authorization)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, cmd, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, c.statusError(cmd, resp)
	}
	return &response{cmd: cmd, resp: resp, c: c, ctx: ctx}, nil
}

// transportError explains a failed HTTP exchange: our own timeout, the
// caller's cancellation, kubo not listening, or a broken connection.
func (c *client) transportError(ctx context.Context, cmd string, err error) error {
	if ctxErr := ctxError(ctx); ctxErr != nil {
		return ctxErr
	}
	if isDialError(err) {
		return &UnreachableError{Addr: c.ep.addr, Err: unwrapURLError(err)}
	}
	return fmt.Errorf("kubo %s at %s: %w", cmd, c.ep.addr, unwrapURLError(err))
}

// ctxError returns why ctx ended, preferring the connector's own timeout
// (with its explanation) over the bare context error; nil if ctx is live.
func ctxError(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(ctx)
	var te *timeoutError
	if errors.As(cause, &te) {
		return te
	}
	if cause != nil {
		return cause
	}
	return ctx.Err()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// isDialError reports whether err happened while connecting.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// kuboErrorBody is the JSON body of a failed command.
type kuboErrorBody struct {
	Message string
	Code    int
	Type    string
}

func (c *client) statusError(cmd string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var kerr kuboErrorBody
	if json.Unmarshal(b, &kerr) == nil && kerr.Message != "" {
		return &Error{Command: cmd, Message: kerr.Message, Status: resp.StatusCode}
	}
	text := strings.TrimSpace(string(b))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	msg := resp.Status
	if text != "" {
		msg += ": " + text
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (check basic_auth / authorization against kubo's API.Authorizations)"
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		msg += fmt.Sprintf(" (is %s kubo's RPC API?)", c.ep.addr)
	}
	return &Error{Command: cmd, Message: msg, Status: resp.StatusCode}
}

// Close releases the connection (for reuse when the body was read whole).
func (r *response) Close() { _ = r.resp.Body.Close() }

// readError explains an error while reading the body of an answer.
func (r *response) readError(err error) error {
	if ctxErr := ctxError(r.ctx); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("kubo %s at %s: reading the answer: %w", r.cmd, r.c.ep.addr, err)
}

// trailerError returns the error kubo put in the trailer, once the body
// has been read to its end.
func (r *response) trailerError() error {
	if msg := r.resp.Trailer.Get(streamErrTrailer); msg != "" {
		return &Error{Command: r.cmd, Message: msg, Status: http.StatusOK}
	}
	return nil
}

// decodeOne reads a single JSON value (with the trailer checked).
func (r *response) decodeOne(v any) error {
	defer r.Close()
	dec := json.NewDecoder(r.resp.Body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if terr := r.trailerError(); terr != nil {
				return terr
			}
			return fmt.Errorf("kubo %s: empty answer", r.cmd)
		}
		return r.readError(err)
	}
	// Read to the end so that the trailer is known and the connection is
	// reused.
	if _, err := io.Copy(io.Discard, r.resp.Body); err != nil {
		return r.readError(err)
	}
	return r.trailerError()
}

// stream decodes every JSON value of a streamed answer, calling each for
// every one; each returns false to stop early. The error kubo reports at
// the end (trailer) is returned.
func stream[T any](r *response, each func(T) bool) error {
	defer r.Close()
	dec := json.NewDecoder(r.resp.Body)
	for {
		var v T
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return r.trailerError()
			}
			return r.readError(err)
		}
		if !each(v) {
			return nil
		}
	}
}

// call posts a command and decodes its single answer into v (v may be
// nil).
func (c *client) call(ctx context.Context, cmd string, q url.Values, v any) error {
	r, err := c.post(ctx, cmd, q, nil, "", nil)
	if err != nil {
		return err
	}
	if v == nil {
		var discard json.RawMessage
		v = &discard
	}
	return r.decodeOne(v)
}
