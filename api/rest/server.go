package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/cors"
)

// Server is the REST API server.
type Server struct {
	cfg     Config
	cluster Cluster
	plugins PluginAdmin // nil: the plugin endpoints answer 501
	logger  hclog.Logger

	handler http.Handler
	srv     *http.Server
	tlsCfg  *tls.Config

	accessLog io.Writer
	logMu     sync.Mutex
	logFile   *os.File

	baseCtx context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	listeners []net.Listener
	wg        sync.WaitGroup
	closed    bool

	// onPanic, when set, is called with the value of every recovered
	// handler panic (used by tests).
	onPanic func(any)
}

// NewServer validates cfg and builds a server answering with cluster. A
// nil logger discards logs. The server does not listen until Start or
// Serve is called.
func NewServer(cfg Config, cluster Cluster, logger hclog.Logger, opts ...ServerOption) (*Server, error) {
	if cluster == nil {
		return nil, errors.New("rest: cluster must not be nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Server{
		cfg:     cfg,
		cluster: cluster,
		logger:  logger,
	}
	for _, o := range opts {
		o(s)
	}

	if cfg.SSLCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.resolvePath(cfg.SSLCertFile), cfg.resolvePath(cfg.SSLKeyFile))
		if err != nil {
			return nil, fmt.Errorf("%s.ssl_cert_file: error loading TLS certificate/key: %w", ConfigKey, err)
		}
		s.tlsCfg = &tls.Config{
			MinVersion:       tls.VersionTLS12,
			CurvePreferences: []tls.CurveID{tls.CurveP521, tls.CurveP384, tls.CurveP256},
			CipherSuites: []uint16{
				tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
				tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_RSA_WITH_AES_256_CBC_SHA,
			},
			Certificates: []tls.Certificate{cert},
		}
	}

	if cfg.HTTPLogFile != "" {
		f, err := os.OpenFile(cfg.resolvePath(cfg.HTTPLogFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("%s.http_log_file: %w", ConfigKey, err)
		}
		s.logFile = f
		s.accessLog = f
	} else {
		s.accessLog = logWriter{logger: logger.Named("restapilog")}
	}

	if len(cfg.Libp2pListenAddr) > 0 {
		logger.Warn("restapi.libp2p_listen_multiaddress is set but the REST API is only served over HTTP listeners")
	}

	s.handler = s.buildHandler()
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadTimeout:       cfg.ReadTimeout,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	s.srv.SetKeepAlivesEnabled(true)
	return s, nil
}

// buildHandler assembles the middleware chain, outermost first: access log
// and panic recovery, authentication, CORS, trailing-slash redirect, router.
func (s *Server) buildHandler() http.Handler {
	c := cors.New(cors.Options{
		AllowedOrigins:   s.cfg.CORSAllowedOrigins,
		AllowedMethods:   s.cfg.CORSAllowedMethods,
		AllowedHeaders:   s.cfg.CORSAllowedHeaders,
		ExposedHeaders:   s.cfg.CORSExposedHeaders,
		AllowCredentials: s.cfg.CORSAllowCredentials,
		MaxAge:           int(s.cfg.CORSMaxAge / time.Second),
	})
	var h http.Handler = s.newRouter()
	h = strictSlash(h)
	h = c.Handler(h)
	h = s.authMiddleware(h)
	return s.logAndRecover(h)
}

// Handler returns the complete HTTP handler (middleware and routes), for
// tests and for embedding the API in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on every configured http_listen_multiaddress and serves
// each in the background. It returns once all listeners are open, or the
// first error (closing the listeners already opened).
func (s *Server) Start() error {
	if len(s.cfg.HTTPListenAddr) == 0 {
		return fmt.Errorf("%s.http_listen_multiaddress: no address to listen on", ConfigKey)
	}
	var opened []net.Listener
	for _, addr := range s.cfg.HTTPListenAddr {
		l, err := listen(addr)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return fmt.Errorf("%s.http_listen_multiaddress: %w", ConfigKey, err)
		}
		opened = append(opened, l)
	}
	for i, l := range opened {
		l, ok := s.register(l)
		if !ok {
			for _, o := range opened[i:] {
				o.Close()
			}
			return errors.New("rest: server is shut down")
		}
		proto := "HTTP"
		if s.tlsCfg != nil {
			proto = "HTTPS"
		}
		auth := ""
		if s.cfg.BasicAuthCredentials != nil {
			auth = " - authenticated"
		}
		s.logger.Info(fmt.Sprintf("REST API (%s%s): %s", proto, auth, s.cfg.HTTPListenAddr[i]), "address", l.Addr().String())
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.serve(l); err != nil {
				s.logger.Error("REST API server stopped", "address", l.Addr().String(), "error", err)
			}
		}()
	}
	return nil
}

// listen opens a listener for a listen multiaddress. A stale unix socket
// file (nothing accepting on it) is removed first.
func listen(addr string) (net.Listener, error) {
	network, address, err := listenArgs(addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if fi, err := os.Lstat(address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", address, time.Second); err == nil {
				c.Close()
			} else {
				_ = os.Remove(address)
			}
		}
	}
	return net.Listen(network, address)
}

// Serve serves the API on l (wrapped in TLS when configured) until
// Shutdown. It returns nil after Shutdown and the listener's error
// otherwise.
func (s *Server) Serve(l net.Listener) error {
	l, ok := s.register(l)
	if !ok {
		return nil
	}
	return s.serve(l)
}

// register wraps l in TLS when configured and records it for Addrs. It
// closes l and returns false once the server is shut down.
func (s *Server) register(l net.Listener) (net.Listener, bool) {
	if s.tlsCfg != nil {
		l = tls.NewListener(l, s.tlsCfg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		l.Close()
		return nil, false
	}
	s.listeners = append(s.listeners, l)
	return l, true
}

func (s *Server) serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Addrs returns the addresses the server listens on (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		addrs = append(addrs, l.Addr())
	}
	return addrs
}

// Shutdown stops the listeners and waits for in-flight requests to finish.
// When ctx ends first, the remaining requests are cancelled and their
// connections closed, and ctx's error is returned. It is safe to call more
// than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.logger.Info("stopping REST API")
	s.srv.SetKeepAlivesEnabled(false)
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.cancel()
		_ = s.srv.Close()
	}
	s.wg.Wait()
	s.cancel()
	if s.logFile != nil {
		s.logMu.Lock()
		_ = s.logFile.Close()
		s.logMu.Unlock()
	}
	return err
}
