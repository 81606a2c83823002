package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"iter"
	"net/http"

	"github.com/pincluster/pincluster/core"
)

// statusAuto lets sendResponse choose the status code.
const statusAuto = -1

// streamErrorTrailer carries errors that happen after a streamed response
// has started.
const streamErrorTrailer = "X-Stream-Error"

// httpError is an error with an explicit HTTP status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// errBadRequest returns an error answered with 400 and msg.
func errBadRequest(msg string) error { return &httpError{status: http.StatusBadRequest, msg: msg} }

// errorStatus is the status an error is answered with when the handler
// leaves the choice to the server: 404 iff the text is exactly the
// "pin is not part of the pinset" message, the code of a core.Error (or an
// internal httpError, or an error with an HTTPStatus method, such as a
// plugin that is restarting) when it is a 4xx or 5xx code, else 500.
func errorStatus(err error) int {
	if err.Error() == core.ErrPinNotFound.Error() {
		return http.StatusNotFound
	}
	var he *httpError
	if errors.As(err, &he) && he.status >= 400 && he.status <= 599 {
		return he.status
	}
	var hs interface{ HTTPStatus() int }
	if errors.As(err, &hs) && hs.HTTPStatus() >= 400 && hs.HTTPStatus() <= 599 {
		return hs.HTTPStatus()
	}
	var ce core.Error
	if errors.As(err, &ce) && ce.Code >= 400 && ce.Code <= 599 {
		return ce.Code
	}
	var cep *core.Error
	if errors.As(err, &cep) && cep != nil && cep.Code >= 400 && cep.Code <= 599 {
		return cep.Code
	}
	return http.StatusInternalServerError
}

// setHeaders adds the configured headers and the JSON content type.
func (s *Server) setHeaders(w http.ResponseWriter) {
	h := w.Header()
	for name, values := range s.cfg.Headers {
		for _, v := range values {
			h.Add(name, v)
		}
	}
	h.Add("Content-Type", "application/json")
}

// encodeJSON returns v as JSON followed by a newline, like json.Encoder.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sendError answers with the JSON error body {"code":N,"message":"..."}.
// status may be statusAuto.
func (s *Server) sendError(w http.ResponseWriter, status int, err error) {
	if status == statusAuto || status < 400 {
		status = errorStatus(err)
	}
	s.setHeaders(w)
	w.WriteHeader(status)
	s.logError(status, err)
	body, _ := encodeJSON(core.Error{Code: status, Message: err.Error()})
	_, _ = w.Write(body)
}

// sendResponse answers with err (as sendError), or resp as JSON (200 unless
// status says otherwise), or 204 when both are nil.
func (s *Server) sendResponse(w http.ResponseWriter, status int, err error, resp any) {
	if err != nil {
		s.sendError(w, status, err)
		return
	}
	if resp == nil {
		if status == statusAuto {
			status = http.StatusNoContent
		}
		s.setHeaders(w)
		w.WriteHeader(status)
		return
	}
	body, err := encodeJSON(resp)
	if err != nil {
		s.sendError(w, http.StatusInternalServerError, err)
		return
	}
	if status == statusAuto {
		status = http.StatusOK
	}
	s.setHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// streamResponse writes seq as NDJSON. The status is decided when the first
// element is pulled: an error answers 500 with a JSON error body; an empty
// stream answers 204 (or 500 with the first of deferred's errors, if any);
// otherwise 200, every item is written and flushed on its own, and errors
// met afterwards (from seq or deferred) are sent in the X-Stream-Error
// trailer, which is sent with an empty value on success. deferred may be
// nil; it is called once seq is exhausted.
func streamResponse[T any](s *Server, w http.ResponseWriter, seq iter.Seq2[T, error], deferred func() []error) {
	s.setHeaders(w)
	w.Header().Set("Trailer", streamErrorTrailer)
	rc := http.NewResponseController(w)

	total := 0
	var errs []error
	for item, err := range seq {
		if err != nil {
			if total == 0 {
				s.sendStreamError(w, err)
				return
			}
			errs = append(errs, err)
			continue
		}
		line, err := encodeJSON(item)
		if err != nil {
			if total == 0 {
				s.sendStreamError(w, err)
				return
			}
			errs = append(errs, err)
			continue
		}
		if total == 0 {
			w.WriteHeader(http.StatusOK)
		}
		total++
		if _, err := w.Write(line); err != nil {
			// The client is gone: stop pulling from the producer.
			s.logger.Debug("stream aborted", "error", err)
			return
		}
		_ = rc.Flush()
	}
	var later []error
	if deferred != nil {
		later = deferred()
	}
	if total == 0 {
		if len(later) > 0 {
			s.sendStreamError(w, later[0])
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The trailer is set even on success, with an empty value (browsers
	// want every declared trailer).
	if len(errs) > 0 {
		w.Header().Set(streamErrorTrailer, errs[0].Error())
		errs = errs[1:]
	} else {
		w.Header().Set(streamErrorTrailer, "")
	}
	for _, err := range append(errs, later...) {
		w.Header().Add(streamErrorTrailer, err.Error())
	}
}

func (s *Server) sendStreamError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	w.WriteHeader(status)
	s.logError(status, err)
	body, _ := encodeJSON(core.Error{Code: status, Message: err.Error()})
	_, _ = w.Write(body)
}

// logError logs an error answer: server errors at ERROR, client errors at
// DEBUG.
func (s *Server) logError(status int, err error) {
	if status >= 500 {
		s.logger.Error("sending error response", "status", status, "error", err.Error())
		return
	}
	s.logger.Debug("sending error response", "status", status, "error", err.Error())
}
