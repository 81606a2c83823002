package rest

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/mux"
	gopath "github.com/ipfs/boxo/path"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/adder"
)

// statusCidsParallelism bounds the concurrent Status calls of
// GET /pins?cids=...
const statusCidsParallelism = 8

// errPeerAddNotSupported answers POST /peers.
var errPeerAddNotSupported = &httpError{
	status: http.StatusNotImplemented,
	msg:    "not supported: peers join the cluster by bootstrapping to a member",
}

// route is one REST endpoint.
type route struct {
	name    string
	method  string
	pattern string
	handler http.HandlerFunc
}

// routes lists the endpoints in registration order. gorilla/mux picks the
// first match, so the order is part of the API: the sync routes and the
// recover routes must precede the generic POST /pins/{hash}. pincluster's
// own routes come first: a route registered after IPFS Cluster's would
// change which of their wrong-method requests answer 405 and which 404.
func (s *Server) routes() []route {
	return []route{
		{"Plugins", "GET", "/plugins", s.pluginsHandler},
		{"PluginsReload", "POST", "/plugins/reload", s.pluginsReloadHandler},
		{"ID", "GET", "/id", s.idHandler},
		{"Version", "GET", "/version", s.versionHandler},
		{"Peers", "GET", "/peers", s.peersHandler},
		{"PeerAdd", "POST", "/peers", s.peerAddHandler},
		{"PeerRemove", "DELETE", "/peers/{peer}", s.peerRemoveHandler},
		{"Add", "POST", "/add", s.addHandler},
		{"Allocations", "GET", "/allocations", s.allocationsHandler},
		{"Allocation", "GET", "/allocations/{hash}", s.allocationHandler},
		{"StatusAll", "GET", "/pins", s.statusAllHandler},
		{"SyncAll", "POST", "/pins/sync", s.syncAllHandler},
		{"Sync", "POST", "/pins/{hash}/sync", s.syncHandler},
		{"Recover", "POST", "/pins/{hash}/recover", s.recoverHandler},
		{"RecoverAll", "POST", "/pins/recover", s.recoverAllHandler},
		{"Status", "GET", "/pins/{hash}", s.statusHandler},
		{"Pin", "POST", "/pins/{hash}", s.pinHandler},
		{"PinPath", "POST", "/pins/{keyType:ipfs|ipns|ipld}/{path:.*}", s.pinPathHandler},
		{"Unpin", "DELETE", "/pins/{hash}", s.unpinHandler},
		{"UnpinPath", "DELETE", "/pins/{keyType:ipfs|ipns|ipld}/{path:.*}", s.unpinPathHandler},
		{"RepoGC", "POST", "/ipfs/gc", s.repoGCHandler},
		{"ConnectionGraph", "GET", "/health/graph", s.graphHandler},
		{"Alerts", "GET", "/health/alerts", s.alertsHandler},
		{"Bandwidth", "GET", "/health/bandwidth", s.bandwidthHandler},
		{"Metrics", "GET", "/monitor/metrics/{name}", s.metricsHandler},
		{"MetricNames", "GET", "/monitor/metrics", s.metricNamesHandler},
		{"Token", "POST", "/token", s.tokenHandler},
		{"Health", "GET", "/health", s.healthHandler},
	}
}

func (s *Server) newRouter() *mux.Router {
	r := mux.NewRouter()
	for _, rt := range s.routes() {
		r.Methods(rt.method).Path(rt.pattern).Name(rt.name).Handler(rt.handler)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.sendError(w, http.StatusNotFound, errors.New("not found"))
	})
	return r
}

// isLocal reports whether the request asks for local-only results: the
// "local" parameter must be exactly "true".
func isLocal(r *http.Request) bool { return r.URL.Query().Get("local") == "true" }

// parseCid decodes the {hash} route variable.
func parseCid(r *http.Request) (core.Cid, error) {
	c, err := core.DecodeCid(mux.Vars(r)["hash"])
	if err != nil {
		return core.UndefCid, errBadRequest("error decoding Cid: " + err.Error())
	}
	return c, nil
}

// parsePinPath builds /<keyType>/<path without trailing slash> from the
// route variables and validates it as a content path.
func parsePinPath(r *http.Request) (string, error) {
	vars := mux.Vars(r)
	p := "/" + vars["keyType"] + "/" + strings.TrimSuffix(vars["path"], "/")
	parsed, err := gopath.NewPath(p)
	if err != nil {
		return "", errBadRequest("error parsing path: " + err.Error())
	}
	return parsed.String(), nil
}

func (s *Server) idHandler(w http.ResponseWriter, r *http.Request) {
	s.sendResponse(w, statusAuto, nil, s.cluster.ID(r.Context()))
}

func (s *Server) versionHandler(w http.ResponseWriter, _ *http.Request) {
	s.sendResponse(w, statusAuto, nil, core.Version{Version: s.cluster.Version()})
}

func (s *Server) healthHandler(w http.ResponseWriter, _ *http.Request) {
	s.sendResponse(w, http.StatusNoContent, nil, nil)
}

func (s *Server) peersHandler(w http.ResponseWriter, r *http.Request) {
	streamResponse(s, w, s.cluster.Peers(r.Context()), nil)
}

// peerAddHandler validates the body like IPFS Cluster and then answers 501:
// peers join by bootstrapping, not through the API.
func (s *Server) peerAddHandler(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PeerID string `json:"peer_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		s.sendError(w, http.StatusBadRequest, errors.New("error decoding request body"))
		return
	}
	if _, err := core.DecodePeerID(body.PeerID); err != nil {
		s.sendError(w, http.StatusBadRequest, errors.New("error decoding peer_id"))
		return
	}
	s.sendError(w, statusAuto, errPeerAddNotSupported)
}

func (s *Server) peerRemoveHandler(w http.ResponseWriter, r *http.Request) {
	pid, err := core.DecodePeerID(mux.Vars(r)["peer"])
	if err != nil {
		s.sendError(w, http.StatusBadRequest, errors.New("error decoding Peer ID: "+err.Error()))
		return
	}
	err = s.cluster.PeerRemove(r.Context(), pid)
	s.sendResponse(w, statusAuto, err, nil)
}

// allocationsHandler streams the pinset. filter is a comma-separated list
// of pin types; it is rejected only when every name is unknown.
func (s *Server) allocationsHandler(w http.ResponseWriter, r *http.Request) {
	var filter core.PinType
	for _, f := range strings.Split(r.URL.Query().Get("filter"), ",") {
		filter |= core.PinTypeFromString(f)
	}
	if filter == core.BadType {
		s.sendError(w, http.StatusBadRequest, errors.New("invalid filter value"))
		return
	}
	filter &= core.AllType
	streamResponse(s, w, s.cluster.Allocations(r.Context(), filter), nil)
}

func (s *Server) allocationHandler(w http.ResponseWriter, r *http.Request) {
	c, err := parseCid(r)
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	pin, err := s.cluster.Allocation(r.Context(), c)
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	s.sendResponse(w, statusAuto, nil, pin)
}

// statusAllHandler serves GET /pins: the status of every pin (filtered),
// or with cids=c1,c2,... the status of those CIDs.
func (s *Server) statusAllHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	local := q.Get("local") == "true"

	if cidsStr := q.Get("cids"); cidsStr != "" {
		parts := strings.Split(cidsStr, ",")
		cids := make([]core.Cid, 0, len(parts))
		for _, p := range parts {
			c, err := core.DecodeCid(p)
			if err != nil {
				s.sendError(w, http.StatusBadRequest, errors.New("error decoding Cid: "+err.Error()))
				return
			}
			cids = append(cids, c)
		}
		seq, errs := s.statusCids(r.Context(), cids, local)
		streamResponse(s, w, seq, errs)
		return
	}

	filterStr := q.Get("filter")
	filter := core.ParseStatusFilter(filterStr)
	if filter == core.TrackerStatusUndefined && filterStr != "" {
		s.sendError(w, http.StatusBadRequest, errors.New("invalid filter value"))
		return
	}
	streamResponse(s, w, s.cluster.StatusAll(r.Context(), filter, local), nil)
}

// statusCids queries the status of every CID with bounded parallelism. The
// returned sequence yields the answers in completion order; the errors of
// the CIDs that failed are returned by the second function once the
// sequence is exhausted.
func (s *Server) statusCids(ctx context.Context, cids []core.Cid, local bool) (iter.Seq2[core.GlobalPinInfo, error], func() []error) {
	var errs []error
	seq := func(yield func(core.GlobalPinInfo, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		type result struct {
			gpi core.GlobalPinInfo
			err error
		}
		jobs := make(chan core.Cid)
		results := make(chan result)
		var wg sync.WaitGroup
		workers := min(len(cids), statusCidsParallelism)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range jobs {
					gpi, err := s.cluster.Status(ctx, c, local)
					select {
					case results <- result{gpi, err}:
					case <-ctx.Done():
						return
					}
				}
			}()
		}
		go func() {
			defer close(jobs)
			for _, c := range cids {
				select {
				case jobs <- c:
				case <-ctx.Done():
					return
				}
			}
		}()
		go func() {
			wg.Wait()
			close(results)
		}()
		defer func() {
			cancel()
			for range results { // let every worker finish
			}
		}()
		for res := range results {
			if res.err != nil {
				errs = append(errs, res.err)
				continue
			}
			if !yield(res.gpi, nil) {
				return
			}
		}
	}
	return seq, func() []error { return errs }
}

func (s *Server) statusHandler(w http.ResponseWriter, r *http.Request) {
	s.cidInfo(w, r, s.cluster.Status)
}

func (s *Server) recoverHandler(w http.ResponseWriter, r *http.Request) {
	s.cidInfo(w, r, s.cluster.Recover)
}

func (s *Server) syncHandler(w http.ResponseWriter, r *http.Request) {
	s.cidInfo(w, r, s.cluster.Sync)
}

// cidInfo serves the single-CID GlobalPinInfo endpoints.
func (s *Server) cidInfo(w http.ResponseWriter, r *http.Request, call func(context.Context, core.Cid, bool) (core.GlobalPinInfo, error)) {
	c, err := parseCid(r)
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	gpi, err := call(r.Context(), c, isLocal(r))
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	s.sendResponse(w, statusAuto, nil, gpi)
}

func (s *Server) recoverAllHandler(w http.ResponseWriter, r *http.Request) {
	streamResponse(s, w, s.cluster.RecoverAll(r.Context(), isLocal(r)), nil)
}

func (s *Server) syncAllHandler(w http.ResponseWriter, r *http.Request) {
	streamResponse(s, w, s.cluster.SyncAll(r.Context(), isLocal(r)), nil)
}

func (s *Server) pinHandler(w http.ResponseWriter, r *http.Request) {
	c, err := parseCid(r)
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	opts, err := ParsePinOptions(r.URL.Query())
	if err != nil {
		s.sendError(w, http.StatusBadRequest, err)
		return
	}
	s.logger.Debug("pin request", "cid", c.String())
	pin, err := s.cluster.Pin(r.Context(), c, opts)
	s.sendPin(w, pin, err)
}

func (s *Server) pinPathHandler(w http.ResponseWriter, r *http.Request) {
	p, err := parsePinPath(r)
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	opts, err := ParsePinOptions(r.URL.Query())
	if err != nil {
		s.sendError(w, http.StatusBadRequest, err)
		return
	}
	s.logger.Debug("pin path request", "path", p)
	pin, err := s.cluster.PinPath(r.Context(), p, opts)
	s.sendPin(w, pin, err)
}

func (s *Server) unpinHandler(w http.ResponseWriter, r *http.Request) {
	c, err := parseCid(r)
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	s.logger.Debug("unpin request", "cid", c.String())
	pin, err := s.cluster.Unpin(r.Context(), c)
	s.sendPin(w, pin, err)
}

func (s *Server) unpinPathHandler(w http.ResponseWriter, r *http.Request) {
	p, err := parsePinPath(r)
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	s.logger.Debug("unpin path request", "path", p)
	pin, err := s.cluster.UnpinPath(r.Context(), p)
	s.sendPin(w, pin, err)
}

func (s *Server) sendPin(w http.ResponseWriter, pin core.Pin, err error) {
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	s.sendResponse(w, statusAuto, nil, pin)
}

func (s *Server) repoGCHandler(w http.ResponseWriter, r *http.Request) {
	gc, err := s.cluster.RepoGC(r.Context(), isLocal(r))
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	s.sendResponse(w, statusAuto, nil, gc)
}

func (s *Server) graphHandler(w http.ResponseWriter, r *http.Request) {
	g, err := s.cluster.ConnectGraph(r.Context())
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	s.sendResponse(w, statusAuto, nil, g)
}

func (s *Server) alertsHandler(w http.ResponseWriter, r *http.Request) {
	alerts, err := s.cluster.Alerts(r.Context())
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	if alerts == nil {
		alerts = []core.Alert{}
	}
	s.sendResponse(w, statusAuto, nil, alerts)
}

// bandwidthHandler answers null: this peer has no libp2p bandwidth
// reporter.
func (s *Server) bandwidthHandler(w http.ResponseWriter, _ *http.Request) {
	s.sendResponse(w, statusAuto, nil, json.RawMessage("null"))
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	metrics, err := s.cluster.Metrics(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	if metrics == nil {
		metrics = []core.Metric{}
	}
	s.sendResponse(w, statusAuto, nil, metrics)
}

func (s *Server) metricNamesHandler(w http.ResponseWriter, r *http.Request) {
	names, err := s.cluster.MetricNames(r.Context())
	if err != nil {
		s.sendError(w, statusAuto, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	s.sendResponse(w, statusAuto, nil, names)
}

// addHandler serves POST /add. Query parameters are checked before anything
// is written. By default the answer streams: 200 is sent at once, then
// each AddedOutput as one JSON line, and a failure is reported only in the
// X-Stream-Error trailer. With stream-channels=false the outputs are
// collected and sent as one JSON array, or a 500 error.
func (s *Server) addHandler(w http.ResponseWriter, r *http.Request) {
	reader, err := r.MultipartReader()
	if err != nil {
		s.sendError(w, http.StatusBadRequest, err)
		return
	}
	q := r.URL.Query()
	opts, err := ParsePinOptions(q)
	if err != nil {
		s.sendError(w, http.StatusBadRequest, err)
		return
	}
	opts.PinUpdate = core.UndefCid // meaningless when adding
	params, err := adder.ParseParams(q)
	if err != nil {
		s.sendError(w, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()

	if !params.StreamChannels {
		out := []core.AddedOutput{}
		_, err := s.cluster.Add(ctx, reader, params, opts, func(o core.AddedOutput) error {
			out = append(out, o)
			return nil
		})
		if err != nil {
			s.sendError(w, http.StatusInternalServerError, err)
			return
		}
		s.sendResponse(w, statusAuto, nil, out)
		return
	}

	rc := http.NewResponseController(w)
	// Keep reading the request body after the response has started.
	_ = rc.EnableFullDuplex()
	s.setHeaders(w)
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "close")
	h.Set("X-Chunked-Output", "1")
	h.Set("Trailer", streamErrorTrailer)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	_, err = s.cluster.Add(ctx, reader, params, opts, func(o core.AddedOutput) error {
		line, err := encodeJSON(o)
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil {
		s.logger.Debug("add failed", "error", err)
		h.Set(streamErrorTrailer, err.Error())
	}
}
