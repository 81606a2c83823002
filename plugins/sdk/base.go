package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

var empty = &pluginv1.Empty{}

// pluginServer serves the base Plugin service of an implementation, on the
// plugin side.
type pluginServer struct {
	pluginv1.UnimplementedPluginServer
	impl   core.Plugin
	broker *plugin.GRPCBroker
	calls  *callTable

	mu       sync.Mutex
	hostID   uint32
	hostConn *grpc.ClientConn
	host     hostClient // over hostConn

	configured atomic.Bool
	closed     atomic.Bool
}

func newPluginServer(impl core.Plugin, broker *plugin.GRPCBroker, calls *callTable) *pluginServer {
	return &pluginServer{impl: impl, broker: broker, calls: calls}
}

func (s *pluginServer) Calls(st grpc.BidiStreamingServer[pluginv1.Call, pluginv1.Call]) error {
	return s.calls.serve(st)
}

func (s *pluginServer) Describe(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.Description, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return DescriptionToProto(d), nil
}

func (s *pluginServer) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.Empty, error) {
	host, err := s.dialHost(req.GetHostBrokerId())
	if err != nil {
		return nil, toStatus(err)
	}
	env := EnvironmentFromProto(req.GetEnv())
	if err := s.impl.Configure(ctx, rawJSON(req.GetConfig()), env, host); err != nil {
		return nil, toStatus(err)
	}
	s.closed.Store(false)
	s.configured.Store(true)
	Logger().Info("configured", "config_bytes", len(req.GetConfig()))
	return empty, nil
}

func (s *pluginServer) Close(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.Empty, error) {
	err := s.impl.Close(ctx)
	s.closed.Store(true)
	s.dropHost()
	if err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

// dialHost returns a Host client over the broker connection id, dialling
// it the first time the id is seen. Id 0 means no host.
func (s *pluginServer) dialHost(id uint32) (core.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 {
		s.dropHostLocked()
		return nil, nil
	}
	if id != s.hostID || s.hostConn == nil {
		if s.broker == nil {
			return nil, errors.New("plugin served without a broker: cannot reach the host")
		}
		s.dropHostLocked()
		conn, err := s.broker.DialWithOptions(id, ClientGRPCDialOptions()...)
		if err != nil {
			return nil, err
		}
		s.hostID, s.hostConn, s.host = id, conn, newHostClient(conn)
	}
	return s.host, nil
}

func (s *pluginServer) dropHost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropHostLocked()
}

func (s *pluginServer) dropHostLocked() {
	if s.hostConn != nil {
		s.host.close()
		_ = s.hostConn.Close()
	}
	s.hostID, s.hostConn, s.host = 0, nil, hostClient{}
}

// shutdown closes the implementation if it was configured and has not been
// closed through the protocol since.
func (s *pluginServer) shutdown(ctx context.Context) error {
	if !s.configured.Load() || s.closed.Swap(true) {
		return nil
	}
	err := s.impl.Close(ctx)
	s.dropHost()
	return err
}

// pluginClient implements the base core.Plugin over the Plugin service, on
// the core side. It serves the Host handed to Configure on the broker.
type pluginClient struct {
	rpc    pluginv1.PluginClient
	broker *plugin.GRPCBroker

	mu   sync.Mutex
	host *hostListener
}

func newPluginClient(conn grpc.ClientConnInterface, broker *plugin.GRPCBroker) *pluginClient {
	return &pluginClient{rpc: pluginv1.NewPluginClient(conn), broker: broker}
}

func (c *pluginClient) Describe(ctx context.Context) (core.Description, error) {
	d, err := c.rpc.Describe(ctx, empty)
	if err != nil {
		return core.Description{}, fromStatus(err)
	}
	return DescriptionFromProto(d), nil
}

func (c *pluginClient) Configure(ctx context.Context, cfg json.RawMessage, env core.Environment, host core.Host) error {
	id, err := c.serveHost(host)
	if err != nil {
		return err
	}
	_, err = c.rpc.Configure(ctx, &pluginv1.ConfigureRequest{
		Config:       bytesOrNil(cfg),
		Env:          EnvironmentToProto(env),
		HostBrokerId: id,
	})
	return fromStatus(err)
}

func (c *pluginClient) Close(ctx context.Context) error {
	_, err := c.rpc.Close(ctx, empty)
	c.mu.Lock()
	if c.host != nil {
		c.host.stop()
		c.host = nil
	}
	c.mu.Unlock()
	return fromStatus(err)
}

// serveHost makes host reachable by the plugin and returns the broker id
// to pass in ConfigureRequest (0 for a nil host). The broker server is
// started once and then only pointed at the latest host.
func (c *pluginClient) serveHost(host core.Host) (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if host == nil {
		if c.host != nil {
			c.host.impl.Store(nil)
		}
		return 0, nil
	}
	if c.host == nil {
		if c.broker == nil {
			return 0, errors.New("plugin client has no broker: cannot serve the host")
		}
		c.host = &hostListener{id: c.broker.NextId()}
		go c.broker.AcceptAndServe(c.host.id, c.host.newServer)
	}
	c.host.impl.Store(&hostBox{host})
	return c.host.id, nil
}

type hostBox struct{ core.Host }

// hostListener is the Host service served on one broker id.
type hostListener struct {
	id   uint32
	impl atomic.Pointer[hostBox]

	mu      sync.Mutex
	srv     *grpc.Server
	stopped bool
}

func (l *hostListener) newServer(opts []grpc.ServerOption) *grpc.Server {
	s := NewGRPCServer(opts)
	pluginv1.RegisterHostServer(s, &hostServer{current: func() core.Host {
		if b := l.impl.Load(); b != nil {
			return b.Host
		}
		return nil
	}})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		s.Stop()
	}
	l.srv = s
	return s
}

func (l *hostListener) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.srv != nil {
		l.srv.Stop()
	}
}
