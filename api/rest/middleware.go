package rest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// responseWriter records the status and size of a response for the access
// log and the panic handler. It forwards Flush and exposes the underlying
// writer through Unwrap for http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	status      int
	size        int64
	wroteHeader bool
}

func (rw *responseWriter) WriteHeader(code int) {
	if !rw.wroteHeader && code >= 200 {
		rw.status = code
		rw.wroteHeader = true
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.status = http.StatusOK
		rw.wroteHeader = true
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.size += int64(n)
	return n, err
}

// Flush sends buffered data to the client.
func (rw *responseWriter) Flush() {
	if !rw.wroteHeader {
		rw.status = http.StatusOK
		rw.wroteHeader = true
	}
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the wrapped writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// logWriter sends each access-log line to an hclog logger at INFO.
type logWriter struct{ logger hclog.Logger }

func (lw logWriter) Write(b []byte) (int, error) {
	lw.logger.Info(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// logAndRecover is the outermost middleware: it writes one Apache common
// log format line per request and turns handler panics into a 500 JSON
// error (or, when the response had already started, into an
// X-Stream-Error trailer value), so a panic never takes the server down.
func (s *Server) logAndRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &responseWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.Error("panic serving request", "method", r.Method, "url", r.URL.String(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if s.onPanic != nil {
					s.onPanic(v)
				}
				if !rw.wroteHeader {
					// Drop whatever headers the handler had set.
					for k := range rw.Header() {
						delete(rw.Header(), k)
					}
					s.sendError(rw, http.StatusInternalServerError, errors.New("internal server error"))
				} else {
					rw.Header().Add(streamErrorTrailer, "internal server error")
				}
			}
			s.writeAccessLog(r, rw, start)
		}()
		next.ServeHTTP(rw, r)
	})
}

// writeAccessLog writes an Apache common log format line:
// host ident authuser [date] "request" status bytes.
func (s *Server) writeAccessLog(r *http.Request, rw *responseWriter, ts time.Time) {
	if s.accessLog == nil {
		return
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if host == "" {
		host = "-"
	}
	user := "-"
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		user = u
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	status := rw.status
	if !rw.wroteHeader {
		status = http.StatusOK
	}
	var b strings.Builder
	b.Grow(128)
	b.WriteString(host)
	b.WriteString(" - ")
	b.WriteString(user)
	b.WriteString(" [")
	b.WriteString(ts.Format("02/Jan/2006:15:04:05 -0700"))
	b.WriteString(`] "`)
	b.WriteString(r.Method)
	b.WriteByte(' ')
	quoted := strconv.Quote(uri)
	b.WriteString(quoted[1 : len(quoted)-1])
	b.WriteByte(' ')
	b.WriteString(r.Proto)
	b.WriteString(`" `)
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(rw.size, 10))
	b.WriteByte('\n')
	s.logMu.Lock()
	_, _ = io.WriteString(s.accessLog, b.String())
	s.logMu.Unlock()
}

// strictSlash answers 307 Temporary Redirect for any path ending in "/",
// pointing at the same URL with that slash removed (query kept, relative
// Location). A 307 keeps the method and body. Leading slashes are folded
// into one, so that the Location never names another host ("//host").
func strictSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/") {
			next.ServeHTTP(w, r)
			return
		}
		u := *r.URL
		u.Scheme, u.Host, u.User, u.Opaque = "", "", nil, ""
		u.Path = oneLeadingSlash(strings.TrimSuffix(u.Path, "/"))
		u.RawPath = oneLeadingSlash(strings.TrimSuffix(u.RawPath, "/"))
		http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
	})
}

func oneLeadingSlash(p string) string {
	if !strings.HasPrefix(p, "//") {
		return p
	}
	return "/" + strings.TrimLeft(p, "/")
}
