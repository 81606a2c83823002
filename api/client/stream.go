package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"

	"github.com/pincluster/pincluster/core"
)

// StreamErrorTrailer is the HTTP trailer in which the server reports errors
// that happen after a streamed answer has started.
const StreamErrorTrailer = "X-Stream-Error"

// stream performs a call whose answer is a stream of JSON values of type
// T and yields them as they are decoded. See the package documentation for
// the rules.
func stream[T any](c *Client, ctx context.Context, r *request) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		resp, err := c.send(ctx, r)
		if err != nil {
			yield(zero, err)
			return
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode >= 400 && resp.StatusCode <= 599:
			yield(zero, c.readError(resp))
			return
		case resp.StatusCode == http.StatusNoContent:
			c.debug("Request succeeded. Response has no content")
			return
		case resp.StatusCode != http.StatusOK:
			data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			c.debug("Response body: %s", data)
			yield(zero, fmt.Errorf("%s %s: expected streaming response with code 200/204, got %s", r.method, r.path, resp.Status))
			return
		}

		dec := json.NewDecoder(resp.Body)
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var se *json.SyntaxError
				var ute *json.UnmarshalTypeError
				if errors.As(err, &se) || errors.As(err, &ute) {
					yield(zero, &DecodeError{Method: r.method, Path: r.path, Body: raw, Err: err})
				} else {
					yield(zero, c.bodyError(resp, err))
				}
				return
			}
			// A server asked not to stream (stream-channels=false)
			// answers one JSON array: yield its elements.
			if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
				var items []T
				if err := json.Unmarshal(raw, &items); err != nil {
					yield(zero, &DecodeError{Method: r.method, Path: r.path, Body: raw, Err: err})
					return
				}
				for _, it := range items {
					if !yield(it, nil) {
						return
					}
				}
				continue
			}
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				yield(zero, &DecodeError{Method: r.method, Path: r.path, Body: raw, Err: err})
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		// Trailers are known once the body has been read to its end.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			yield(zero, c.bodyError(resp, err))
			return
		}
		if err := trailerError(resp.Trailer); err != nil {
			c.debug("Response trailer %s: %s", StreamErrorTrailer, err.Error())
			yield(zero, err)
		}
	}
}

// trailerError returns the errors of the X-Stream-Error trailer as one
// core.Error with code 500, or nil when every value is empty.
func trailerError(tr http.Header) error {
	var msgs []string
	for _, v := range tr.Values(StreamErrorTrailer) {
		if v != "" {
			msgs = append(msgs, v)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return core.Error{Code: http.StatusInternalServerError, Message: strings.Join(msgs, "; ")}
}
