package sdk

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

// MaxMessageSize bounds every gRPC message between the core and a plugin,
// in both directions. A unary batch (Track, BlockPut, ...) must encode to
// less than this.
const MaxMessageSize = 64 << 20

// Handshake is the go-plugin handshake shared by the core and every
// plugin. A binary started without the cookie refuses to run.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  core.ProtocolVersion,
	MagicCookieKey:   "PINCLUSTER_PLUGIN",
	MagicCookieValue: "7c2f0e9b5a14d6e3b8a1f4c0d9e27b36",
}

// Flow-control windows of every connection across the plugin boundary,
// fixed rather than grown by gRPC's bandwidth estimation (which, on a local
// socket, grows a stream's window to several MiB): a stream's producer is
// held back once streamWindow bytes wait for a consumer that is not
// reading, and connWindow is shared by the streams of one connection. A
// local socket needs no more to run at full speed.
const (
	streamWindow = 1 << 20
	connWindow   = 16 << 20
)

// NewGRPCServer creates the gRPC server of a plugin (or of the Host
// service on the broker) with the message limits raised to MaxMessageSize
// and fixed flow-control windows. Use it as plugin.ServeConfig.GRPCServer.
func NewGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts[:len(opts):len(opts)],
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
	)
	return plugin.DefaultGRPCServer(opts)
}

// ClientGRPCDialOptions are the dial options of the core's side of the
// connection (plugin.ClientConfig.GRPCDialOptions), also used by a plugin
// dialling the host or another plugin: message limits of MaxMessageSize,
// fixed flow-control windows.
func ClientGRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageSize),
			grpc.MaxCallSendMsgSize(MaxMessageSize),
		),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(connWindow),
	}
}

// NewClientConfig returns the go-plugin client configuration the core uses
// to start the plugin binary cmd: Handshake, VersionedPlugins(nil), gRPC
// only, ClientGRPCDialOptions, and logger for the plugin's log lines.
// Dispense the plugin with the name string(kind) to get a core.Consensus,
// core.Allocator, core.PinTracker or core.IPFSConnector.
func NewClientConfig(cmd *exec.Cmd, logger hclog.Logger) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  ClientGRPCDialOptions(),
		Logger:           logger,
	}
}

// VersionedPlugins returns the plugin sets of every protocol version this
// package speaks, keyed by version, with plugin names string(kind).
//
// On the core side pass nil: the set holds every kind, and dispensing a
// kind returns its client adapter. On the plugin side pass the
// implementation: the set holds the kinds it implements.
func VersionedPlugins(impl core.Plugin) map[int]plugin.PluginSet {
	set := plugin.PluginSet{}
	calls := newCallTable()
	for _, k := range core.Kinds {
		if impl == nil || implements(impl, k) {
			set[string(k)] = &GRPCPlugin{Kind: k, Impl: impl, calls: calls}
		}
	}
	return map[int]plugin.PluginSet{core.ProtocolVersion: set}
}

func implements(impl core.Plugin, k core.Kind) bool {
	switch k {
	case core.KindConsensus:
		_, ok := impl.(core.Consensus)
		return ok
	case core.KindAllocator:
		_, ok := impl.(core.Allocator)
		return ok
	case core.KindPinTracker:
		_, ok := impl.(core.PinTracker)
		return ok
	case core.KindIPFSConnector:
		_, ok := impl.(core.IPFSConnector)
		return ok
	}
	return false
}

// GRPCPlugin is the go-plugin plugin of one kind. On the plugin side Impl
// is the implementation served; on the core side it is nil and GRPCClient
// returns the kind's client adapter.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin

	Kind core.Kind
	Impl core.Plugin

	base *pluginServer
	// calls holds the unary methods the Calls stream runs; the plugins of
	// one set share it, as they share one gRPC server.
	calls *callTable
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the kind's service and the base Plugin service of
// Impl on s. The base service is registered once per server, whatever the
// number of kinds served.
func (p *GRPCPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return fmt.Errorf("no implementation to serve as %s", p.Kind)
	}
	if p.calls == nil {
		p.calls = newCallTable()
	}
	r := p.calls.registrar(s)
	switch p.Kind {
	case core.KindConsensus:
		impl, ok := p.Impl.(core.Consensus)
		if !ok {
			return fmt.Errorf("%T does not implement core.Consensus", p.Impl)
		}
		pluginv1.RegisterConsensusServer(r, &consensusServer{impl: impl})
	case core.KindAllocator:
		impl, ok := p.Impl.(core.Allocator)
		if !ok {
			return fmt.Errorf("%T does not implement core.Allocator", p.Impl)
		}
		pluginv1.RegisterAllocatorServer(r, &allocatorServer{impl: impl})
	case core.KindPinTracker:
		impl, ok := p.Impl.(core.PinTracker)
		if !ok {
			return fmt.Errorf("%T does not implement core.PinTracker", p.Impl)
		}
		pluginv1.RegisterPinTrackerServer(r, &pinTrackerServer{impl: impl})
	case core.KindIPFSConnector:
		impl, ok := p.Impl.(core.IPFSConnector)
		if !ok {
			return fmt.Errorf("%T does not implement core.IPFSConnector", p.Impl)
		}
		pluginv1.RegisterIPFSConnectorServer(r, &ipfsConnectorServer{impl: impl})
	default:
		return fmt.Errorf("unknown plugin kind %q", p.Kind)
	}
	if _, done := s.GetServiceInfo()[pluginv1.Plugin_ServiceDesc.ServiceName]; !done {
		p.base = newPluginServer(p.Impl, broker, p.calls)
		pluginv1.RegisterPluginServer(r, p.base)
	}
	return nil
}

// GRPCClient returns the client adapter of the kind: a core.Consensus,
// core.Allocator, core.PinTracker or core.IPFSConnector.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, grpcConn *grpc.ClientConn) (any, error) {
	conn := newCallConn(grpcConn)
	base := newPluginClient(conn, broker)
	switch p.Kind {
	case core.KindConsensus:
		return newConsensusClient(conn, base), nil
	case core.KindAllocator:
		return newAllocatorClient(conn, base), nil
	case core.KindPinTracker:
		return newPinTrackerClient(conn, base), nil
	case core.KindIPFSConnector:
		return newIPFSConnectorClient(conn, base), nil
	}
	return nil, fmt.Errorf("unknown plugin kind %q", p.Kind)
}

// Shutdown closes Impl if the core configured it and did not close it
// through the protocol: Serve calls it once the core has gone away so
// that the implementation can still flush its state.
func (p *GRPCPlugin) Shutdown(ctx context.Context) error {
	if p.base == nil {
		return nil
	}
	return p.base.shutdown(ctx)
}
