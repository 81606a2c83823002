// Package sdktest runs a plugin implementation behind the real gRPC
// adapters of package sdk, inside the test process, so that tests exercise
// the plugin boundary exactly as the core does: go-plugin serves the
// implementation on a local socket, the core side connects to it with the
// go-plugin client, and the Host callback is served over the go-plugin
// broker.
//
//	func TestMyTracker(t *testing.T) {
//		tracker := sdktest.ConnectPinTracker(t, mytracker.New(), nil, myHost)
//		err := tracker.Track(ctx, pins) // a gRPC call into the plugin
//		...
//	}
package sdktest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// timeout bounds the harness's own calls (start, Configure, stop).
const timeout = 30 * time.Second

// Plugin is an implementation served in the test process.
type Plugin struct {
	t      testing.TB
	kind   core.Kind
	served *sdk.GRPCPlugin
	cancel context.CancelFunc
	closed chan struct{}
	client *plugin.Client
	rpc    plugin.ClientProtocol
	addr   core.Endpoint
}

// Start serves impl, as the kind its Describe reports, and connects a
// go-plugin client to it. Everything is stopped at the end of the test,
// and impl is closed then if it was configured and not closed.
func Start(t testing.TB, impl core.Plugin) *Plugin {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	desc, err := impl.Describe(ctx)
	cancel()
	if err != nil {
		t.Fatalf("sdktest: describe: %v", err)
	}
	p := &Plugin{
		t:      t,
		kind:   desc.Kind,
		served: &sdk.GRPCPlugin{Kind: desc.Kind, Impl: impl},
		closed: make(chan struct{}),
	}
	serveCtx, stop := context.WithCancel(context.Background())
	p.cancel = stop
	reattach := make(chan *plugin.ReattachConfig, 1)
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{core.ProtocolVersion: {string(desc.Kind): p.served}},
		GRPCServer:       sdk.NewGRPCServer,
		Logger:           hclog.NewNullLogger(),
		Test: &plugin.ServeTestConfig{
			Context:          serveCtx,
			ReattachConfigCh: reattach,
			CloseCh:          p.closed,
		},
	})
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-p.closed:
		t.Fatalf("sdktest: serving %s failed", desc.Kind)
	case <-time.After(timeout):
		stop()
		t.Fatalf("sdktest: %s plugin did not start", desc.Kind)
	}
	p.addr = core.Endpoint{Network: rc.Addr.Network(), Address: rc.Addr.String()}
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return attached{p}, nil }

	p.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.VersionedPlugins(nil)[core.ProtocolVersion],
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  sdk.ClientGRPCDialOptions(),
		Logger:           hclog.NewNullLogger(),
	})
	t.Cleanup(p.cleanup)
	p.rpc, err = p.client.Client()
	if err != nil {
		t.Fatalf("sdktest: connect to %s plugin: %v", desc.Kind, err)
	}
	return p
}

// Endpoint is where the plugin serves its gRPC services, as a host names
// it in IPFSEndpoint (see core.IPFSEndpointer).
func (p *Plugin) Endpoint() core.Endpoint { return p.addr }

// Kind is the kind the plugin is served as.
func (p *Plugin) Kind() core.Kind { return p.kind }

// Dispense returns a new client adapter of the plugin: a core.Consensus,
// core.Allocator, core.PinTracker or core.IPFSConnector. It is not
// configured.
func (p *Plugin) Dispense() core.Plugin {
	p.t.Helper()
	raw, err := p.rpc.Dispense(string(p.kind))
	if err != nil {
		p.t.Fatalf("sdktest: dispense %s: %v", p.kind, err)
	}
	return raw.(core.Plugin)
}

// Kill stops serving the plugin abruptly, as if its process had died:
// calls in flight and later calls through its adapters fail with an error
// for which sdk.IsUnavailable is true. The implementation is not closed.
func (p *Plugin) Kill() {
	p.cancel()
	select {
	case <-p.closed:
	case <-time.After(timeout):
		p.t.Errorf("sdktest: %s plugin did not stop", p.kind)
	}
}

func (p *Plugin) cleanup() {
	if p.rpc != nil {
		// Closing the client shuts the server down; wait for that before
		// cancelling the serving context, as go-plugin's two ways of
		// stopping a server must not run at the same time.
		_ = p.rpc.Close()
		select {
		case <-p.closed:
		case <-time.After(timeout):
		}
	}
	p.Kill()
	p.client.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.served.Shutdown(ctx); err != nil {
		p.t.Errorf("sdktest: closing %s plugin: %v", p.kind, err)
	}
}

// attached stands for the plugin "process" go-plugin reattaches to: the
// serving goroutine of the test process.
type attached struct{ p *Plugin }

func (a attached) Wait(ctx context.Context) error {
	select {
	case <-a.p.closed:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (a attached) Kill(context.Context) error {
	a.p.Kill()
	return nil
}

func (a attached) ID() string { return "sdktest-" + string(a.p.kind) }

func (a attached) PluginToHost(n, addr string) (string, string, error) { return n, addr, nil }
func (a attached) HostToPlugin(n, addr string) (string, string, error) { return n, addr, nil }

// Option changes what Connect does.
type Option func(*options)

type options struct {
	env         *core.Environment
	noConfigure bool
}

// WithEnvironment sets the Environment passed to Configure instead of the
// one of Environment(t).
func WithEnvironment(env core.Environment) Option {
	return func(o *options) { o.env = &env }
}

// WithoutConfigure returns the client adapter without calling Configure.
func WithoutConfigure() Option {
	return func(o *options) { o.noConfigure = true }
}

// Environment returns an environment for tests: a fresh peer ID, the peer
// name "sdktest", a temporary data folder and the peer itself as the only
// initial peer.
func Environment(t testing.TB) core.Environment {
	t.Helper()
	id := NewPeerID(t)
	return core.Environment{
		PeerID:    id,
		PeerName:  "sdktest",
		DataDir:   t.TempDir(),
		InitPeers: []core.PeerID{id},
	}
}

// NewPeerID returns a new random peer ID.
func NewPeerID(t testing.TB) core.PeerID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Connect serves impl in the test process and returns its client adapter
// as T (the kind's core interface), configured with cfg, the environment
// and host, which the plugin reaches through the broker (nil gives the
// plugin a nil Host). Everything is closed at the end of the test.
func Connect[T core.Plugin](t testing.TB, impl core.Plugin, cfg json.RawMessage, host core.Host, opts ...Option) T {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	env := o.env
	if env == nil && !o.noConfigure {
		// Made before Start so that the data folder outlives the plugin.
		e := Environment(t)
		env = &e
	}
	p := Start(t, impl)
	c, ok := p.Dispense().(T)
	if !ok {
		t.Fatalf("sdktest: a %s plugin does not implement %s", p.kind, reflect.TypeFor[T]())
	}
	if o.noConfigure {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Configure(ctx, cfg, *env, host); err != nil {
		t.Fatalf("sdktest: configure %s plugin: %v", p.kind, err)
	}
	return c
}

// ConnectConsensus is Connect for a consensus implementation.
func ConnectConsensus(t testing.TB, impl core.Consensus, cfg json.RawMessage, host core.Host, opts ...Option) core.Consensus {
	t.Helper()
	return Connect[core.Consensus](t, impl, cfg, host, opts...)
}

// ConnectAllocator is Connect for an allocator implementation.
func ConnectAllocator(t testing.TB, impl core.Allocator, cfg json.RawMessage, host core.Host, opts ...Option) core.Allocator {
	t.Helper()
	return Connect[core.Allocator](t, impl, cfg, host, opts...)
}

// ConnectPinTracker is Connect for a pin tracker implementation.
func ConnectPinTracker(t testing.TB, impl core.PinTracker, cfg json.RawMessage, host core.Host, opts ...Option) core.PinTracker {
	t.Helper()
	return Connect[core.PinTracker](t, impl, cfg, host, opts...)
}

// ConnectIPFSConnector is Connect for an IPFS connector implementation.
func ConnectIPFSConnector(t testing.TB, impl core.IPFSConnector, cfg json.RawMessage, host core.Host, opts ...Option) core.IPFSConnector {
	t.Helper()
	return Connect[core.IPFSConnector](t, impl, cfg, host, opts...)
}
