// Package sdk connects the core of pincluster to its out-of-process
// plugins over hashicorp/go-plugin and gRPC (protocol v1, package
// pluginv1).
//
// # Writing a plugin
//
// This package is the only one of pincluster a plugin imports: besides
// Serve and Logger it re-exports, as aliases, the types of package core a
// plugin needs (Pin, Cid, PeerID, Metric, the four kind interfaces
// Consensus, Allocator, PinTracker and IPFSConnector, Description,
// Environment, Host, AllocateRequest, ..., the statuses and kinds, and
// ProtocolVersion). A plugin is a binary whose main hands an
// implementation of one kind to Serve. A complete allocator, which gives
// each pin the peers with a valid metric in peer ID order:
//
//	package main
//
//	import (
//		"context"
//		"encoding/json"
//		"slices"
//		"time"
//
//		"github.com/pincluster/pincluster/plugins/sdk"
//	)
//
//	type firstPeers struct{}
//
//	func (firstPeers) Describe(context.Context) (sdk.Description, error) {
//		return sdk.Description{
//			Kind:             sdk.KindAllocator,
//			Name:             "first",
//			Version:          "0.1.0",
//			ProtocolVersions: []int{sdk.ProtocolVersion},
//			DefaultConfig:    json.RawMessage(`{}`),
//		}, nil
//	}
//
//	func (firstPeers) Configure(context.Context, json.RawMessage, sdk.Environment, sdk.Host) error {
//		return nil
//	}
//
//	func (firstPeers) Close(context.Context) error { return nil }
//
//	func (firstPeers) Allocate(_ context.Context, req sdk.AllocateRequest) ([]sdk.AllocateResult, error) {
//		var usable []sdk.PeerID
//		for _, m := range req.Metrics {
//			if m.Valid && !m.Expired(time.Now()) && !slices.Contains(usable, m.Peer) {
//				usable = append(usable, m.Peer)
//			}
//		}
//		slices.Sort(usable)
//		out := make([]sdk.AllocateResult, len(req.Pins))
//		for i, pin := range req.Pins {
//			var peers []sdk.PeerID
//			for _, p := range append(slices.Clone(pin.Priority), usable...) {
//				if slices.Contains(usable, p) && !slices.Contains(pin.Current, p) && !slices.Contains(peers, p) {
//					peers = append(peers, p)
//				}
//			}
//			if len(peers) < pin.Needed {
//				out[i].Error = "not enough peers to allocate CID"
//				continue
//			}
//			out[i].Peers = peers[:min(len(peers), pin.Wanted)]
//		}
//		return out, nil
//	}
//
//	func main() { sdk.Serve(firstPeers{}) }
//
// Its test runs the conformance suite of its kind through the real gRPC
// boundary (package conformance, which uses package sdktest):
//
//	func TestConformance(t *testing.T) {
//		conformance.TestAllocator(t, func() sdk.Allocator { return firstPeers{} }, nil)
//	}
//
// Serve asks the implementation's Describe for its kind, serves it, and
// returns once the core is done with it. Log through Logger(): its JSON
// lines on standard error reach the core's log under the plugin's name.
// Never write to standard output before Serve: it carries the handshake.
// docs/plugins.md is the tutorial (build, configure, test, debug) and the
// reference of the protocol.
//
// The core calls Configure before anything else, with the plugin's config
// section, its environment and a core.Host (or nil) that calls back into
// the core. The context of each call ends with the call: work that
// outlives Configure needs a context of its own, ended by Close. The Host
// stays usable until Close. Its IPFS calls go straight to the IPFS
// connector's process when the core names where it serves
// (Host.IPFSEndpoint), and through the core otherwise or when a direct
// call fails.
//
// A plugin whose only state is its configuration can embed Configured,
// which implements Describe, Configure and Close from a Description and a
// function that parses the config section.
//
// Streams (iter.Seq2 results) cross the boundary in batches of up to
// MaxBatchItems items or about MaxBatchBytes bytes, without waiting for a
// batch to fill, and are pulled lazily by the receiver: a producer is held
// back, after a bounded amount of buffering (a flow-control window of 1 MiB
// in transit, and a batch on each side), while the consumer is not
// reading, and its context is cancelled when the consumer stops early (so
// a stream is a call per iteration: ranging over it twice calls twice).
// A producer must honour that context. Unary calls carry whole batches in
// one message, which must stay under MaxMessageSize. The core's side of
// the SDK sends unary calls as messages on the plugin's Calls stream
// rather than as gRPC calls of their own, and Serve answers them there;
// a plugin whose server leaves Calls out is called the usual way.
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
