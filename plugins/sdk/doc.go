// Package sdk connects the core of pincluster to its out-of-process
// plugins over hashicorp/go-plugin and gRPC (protocol v1, package
// pluginv1).
//
// # Writing a plugin
//
// A plugin is a binary whose main hands an implementation of one of the
// kinds (core.Consensus, core.Allocator, core.PinTracker or
// core.IPFSConnector) to Serve:
//
//	func main() {
//		sdk.Serve(myallocator.New())
//	}
//
// Serve asks the implementation's Describe for its kind, serves it, and
// returns once the core is done with it. Log through Logger(): its JSON
// lines on standard error reach the core's log under the plugin's name.
// Never write to standard output before Serve: it carries the handshake.
//
// The core calls Configure before anything else, with the plugin's config
// section, its environment and a core.Host (or nil) that calls back into
// the core. The context of each call ends with the call: work that
// outlives Configure needs a context of its own, ended by Close. The Host
// stays usable until Close.
//
// Streams (iter.Seq2 results) cross the boundary in batches of up to
// MaxBatchItems items or about MaxBatchBytes bytes, without waiting for a
// batch to fill, and are pulled lazily by the receiver: a producer is held
// back, after a bounded amount of buffering, while the consumer is not
// reading, and its context is cancelled when the consumer stops early (so
// a stream is a call per iteration: ranging over it twice calls twice).
// A producer must honour that context. Unary calls carry whole batches in one message, which must stay
// under MaxMessageSize.
//
// Errors keep their message across the boundary. core.ErrPinNotFound and
// the context errors are recognised on the other side by errors.Is; any
// other error comes back as an opaque error with the same text.
// IsUnavailable tells a call that failed because the other process is gone.
//
// # Conversions
//
// The XToProto and XFromProto functions convert between the core types and
// the messages of protocol v1, for the adapters and for plugins that store
// core values as protobuf:
//
//   - CIDs travel in their binary form; empty bytes are the undefined CID.
//   - Peer IDs travel as the bytes of the peer.ID string (its multihash).
//   - Times travel as unix nanoseconds, 0 being the zero time.Time. Decoded
//     times are in the local zone without a monotonic reading; a time at
//     exactly the unix epoch decodes as the zero time, and times outside
//     roughly the years 1678-2262 are clamped into that range.
//   - Durations travel as nanoseconds.
//   - proto3 cannot tell an empty list or map from an absent one: nil and
//     empty slices and maps both decode as nil.
//   - Ints that travel as 32-bit protobuf integers are clamped to the
//     int32 range rather than wrapped.
//
// ToProto functions never fail. FromProto functions fail only on malformed
// CIDs and take a nil message as the zero value.
//
// # Running plugins from the core
//
// The core starts a plugin with plugin.NewClient(NewClientConfig(cmd,
// logger)), and dispenses string(kind) from the client's protocol to get
// the client adapter: a value implementing the kind's core interface on
// which every call is a gRPC call to the plugin. The Host passed to the
// adapter's Configure is served to the plugin over the go-plugin broker.
//
// Package sdktest runs an implementation behind the real adapters inside
// a test.
package sdk
