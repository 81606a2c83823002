// Package rest implements the HTTP REST API of a pincluster peer.
//
// The API is wire-compatible with the REST API of IPFS Cluster v1.1, so
// existing clients (ipfs-cluster-ctl, the IPFS Cluster Go client) work
// against it unchanged. The wire contract is described in the project's
// REST API specification; this package follows it for routes and their
// order, JSON bodies, status codes, error bodies, NDJSON streaming with the
// X-Stream-Error trailer, authentication (HTTP Basic and JWT bearer tokens),
// CORS, configured extra headers and the Apache common log format access
// log.
//
// The server does not implement any cluster logic itself: every handler
// decodes its request, calls the Cluster interface and encodes the answer.
//
// Errors returned by Cluster methods are mapped to HTTP statuses as
// follows: an error whose text is exactly "pin is not part of the pinset"
// (core.ErrPinNotFound) answers 404; an error that is (or wraps) a
// core.Error with a Code between 400 and 599 answers that code; an error
// with an HTTPStatus() int method answers that status (a plugin that is
// restarting answers 503); any other error answers 500. The body is always
// {"code":N,"message":"..."}.
//
// One deliberate difference: POST /pins/{cid}?mode=direct stores a direct
// pin (max_depth 0), as the path route does, where IPFS Cluster v1.1 says
// "direct" in its answer but stores the pin recursive.
//
// Besides IPFS Cluster's routes the server answers GET /plugins and
// POST /plugins/reload when given a PluginAdmin (WithPluginAdmin).
package rest
