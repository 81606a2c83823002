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
// batch to fill, and are pulled lazily by the receiver: a producer is
// suspended while the consumer is not reading, and its context is
// cancelled when the consumer stops early. A producer must honour that
// context. Unary calls carry whole batches in one message, which must stay
// under MaxMessageSize.
//
// Errors keep their message across the boundary. core.ErrPinNotFound and
// the context errors are recognised on the other side by errors.Is; any
// other error comes back as an opaque error with the same text.
// IsUnavailable tells a call that failed because the other process is gone.
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
