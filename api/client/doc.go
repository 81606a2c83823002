// Package client is a Go client of the REST API of a pincluster peer.
//
// The REST API is wire-compatible with IPFS Cluster v1.1, and so is this
// client: it sends the requests that IPFS Cluster's own Go client sends
// (same paths, same query parameters in the same order, the same multipart
// layout for /add) and decodes every response shape that a real IPFS
// Cluster v1.1 peer returns. It can therefore drive either.
//
// # Endpoints
//
// Every endpoint has a method: ID, Version, Peers, PeerAdd, PeerRm, Add,
// AddFiles, Pin, PinPath, PinUpdate, Unpin, UnpinPath, Allocations,
// Allocation, Status, StatusCids, StatusAll, Recover, RecoverAll, Sync,
// SyncAll, ConnectGraph, Alerts, Metrics, MetricNames,
// BandwidthByProtocol, RepoGC, Health and Token. WaitFor polls the status of a CID until it reaches a
// target status.
//
// # Streams
//
// Endpoints that answer with a stream of JSON objects (GET /peers,
// GET /allocations, GET /pins, POST /pins/recover, POST /pins/sync and
// POST /add) return an iter.Seq2[T, error]. The request is sent when the
// iteration starts and items are decoded one at a time as they arrive: a
// stream is never held in memory as a whole. Breaking out of the loop
// closes the connection. A 204 No Content answer is an empty stream. An
// error the server reports after the first item (the X-Stream-Error HTTP
// trailer) is yielded as a core.Error with code 500 after the items that
// preceded it. Any error ends the iteration.
//
// # Errors
//
// An error answer of the server (status 400 to 599) is returned as a
// core.Error holding the code and message of the JSON error body (or the
// raw body when it is not JSON). A peer that cannot be reached gives a
// *ConnectionError. A request that runs out of time (Config.Timeout or
// the context's deadline) gives an error for which
// errors.Is(err, context.DeadlineExceeded) holds.
//
// # Debugging
//
// Config.Debug, when set, receives the lines IPFS Cluster's client logs
// at debug level: the attempt of every call, its method and full URL, and
// the raw body of every answer that is not a stream (and of error
// answers). Reading it is a quick way to learn the REST API: every call of
// this package shows the exact request it makes.
package client
