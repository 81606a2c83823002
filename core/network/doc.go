// Package network is the cluster networking of a pincluster core: the
// libp2p host of the peer, the RPC between the cores of the cluster's
// peers, and the broadcast of metrics.
//
// # Host
//
// NewHost starts a libp2p host with the peer's identity (identity.json),
// listening on the cluster's listen multiaddrs (service.json), with TCP,
// Noise and Yamux only, a connection manager and libp2p's default resource
// manager (with more room for the streams of the peer RPC, one per call).
// The host lives inside a private network keyed by the 32-byte
// cluster secret (libp2p pnet): every byte on the wire is encrypted with
// it before any handshake, so a process without the secret cannot complete
// a connection, reach any protocol, or be reached. There is no explicit
// refusal: a connection attempt across secrets fails when the garbled
// handshake is rejected or, at worst, at its deadline, so give Connect a
// context with one.
//
// The host remembers the addresses of the peers it meets (those it dials,
// and the listen addresses every connected peer announces through
// identify) in a peerstore file, IPFS Cluster's format: one multiaddr
// ending with /p2p/<id> per line. The file is loaded at start, written
// shortly after each change and at Close. ConfigFrom builds the Config
// from a config folder; Bootstrap joins the peers of --bootstrap;
// ConnectKnown rejoins the remembered peers after a restart; Forget drops
// a peer removed from the cluster; Notify reports connections and
// disconnections.
//
// # RPC
//
// NewRPC serves ProtocolID ("/pincluster/rpc/0.1") on the host with
// go-libp2p-gorpc: each call is a new libp2p stream, so calls to one peer
// run in parallel. Handlers are registered by service and method name:
//
//	network.Handle(r, "Svc", "Method", func(ctx context.Context, in In) (Out, error) {...})
//	network.HandleStream(r, "Svc", "List", func(ctx context.Context, in In) iter.Seq2[Out, error] {...})
//
// and called with RPC.Call (one peer), RPC.MultiCall (several peers in
// parallel, one error per peer), Stream (an iter.Seq2 of the items a peer
// streams) and MultiStream (several peers, items handed to one callback
// whose calls never overlap). A unary call is bounded by its context and
// by RPCConfig.CallTimeout; a stream by its context. A call to the host's
// own ID is served in-process, with the same encoding, so the core can
// include itself when it asks every peer. RemotePeer tells a handler who
// called. Errors are *CallError, wrapping a *RemoteError when the peer's
// handler failed (errors.Is matches a remote error with a local error of
// the same text, such as core.ErrPinNotFound) or the transport's error
// when the peer was not reached.
//
// The cluster's own calls are defined here with their wire
// types: ServiceCluster (ID, PeerAdd, PeerRemove, Write), ServiceTracker (Status,
// StatusAll, Recover, RecoverAll, Sync, SyncAll), ServiceIPFS (ID,
// BlockPut) and ServiceMonitor (LogMetrics). RegisterCluster,
// RegisterTracker and RegisterIPFS serve implementations of the matching
// interfaces (core.PinTracker and core.IPFSConnector already satisfy
// theirs); RPC.Client returns a typed client of all of them.
//
// # Wire format
//
// gorpc frames messages with msgpack. Every message of this protocol is a
// single byte slice (see codec.go): a request names the service and the
// method and carries the argument; a unary reply carries the answer or the
// error text; a stream sends batches of items, as many as the handler has
// produced when the previous batch left (up to 1024 items or 256 KiB), and
// then an end or an error frame, so that a stream cut short is never taken
// for a complete one. Payloads are JSON, the format of the REST API the
// core types are written for, except for three types: core.PinInfo and
// []core.PinInfo (the bulk of global status) travel in a compact binary
// form, and BlockPutRequest in its own binary form (WireMarshaler) so that
// block data is not base64-encoded. Msgpack is not used for the payloads:
// it cannot carry an undefined core.Cid.
//
// # Metrics
//
// NewMetrics registers ServiceMonitor; Metrics.Publish sends metrics to
// every connected peer and Metrics.PublishTo to given peers, with one
// error per peer; the receiving peer checks the metrics are the caller's
// own and hands them to its callback. The Metrics type's documentation
// explains why a call per peer was chosen over gossipsub.
package network
