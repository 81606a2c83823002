package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/api/rest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/cluster"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/network"
	"github.com/pincluster/pincluster/core/pluginhost"
	"github.com/pincluster/pincluster/plugins/builtin"
	"github.com/pincluster/pincluster/plugins/sdk"
)

func cmdDaemon(g globals, args []string) error {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	logger := newLogger(g.logLevel)
	svc, ident, err := loadOrInit(g.configDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the plugin configuration; it is caught before the
	// peer starts so that an early one does not kill the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	defer sdk.StartCPUProfile("core")()

	p, err := startPeer(ctx, g.configDir, svc, ident, logger)
	if err != nil {
		return err
	}
	logger.Info("peer ready", "id", ident.ID, "api", p.api.Addrs())
	for ctx.Err() == nil {
		select {
		case <-hup:
			logger.Info("SIGHUP: reloading the plugin configuration")
			_, _ = p.admin.ReloadPlugins(ctx) // the outcome is logged
		case <-ctx.Done():
		}
	}
	logger.Info("shutting down")
	p.shutdown()
	return nil
}

// peer is a running pincluster peer: its plugins, orchestrator and API.
type peer struct {
	logger  hclog.Logger
	plugins *pluginhost.Supervisor
	admin   *pluginAdmin
	cluster *cluster.Cluster
	api     *rest.Server
	net     *network.Host
}

// newLauncher returns a launcher that serves built-in plugins from this binary.
func newLauncher(logger hclog.Logger) (*pluginhost.Launcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the service binary to start built-in plugins: %w", err)
	}
	return &pluginhost.Launcher{Executable: exe, Builtin: builtin.Has, Logger: logger}, nil
}

func environment(dir string, svc *config.Service, ident *config.Identity, pluginName string) core.Environment {
	secret, _ := hex.DecodeString(svc.Cluster.Secret) // validated with the config
	return core.Environment{
		Secret:    secret,
		PeerID:    ident.ID,
		PeerName:  svc.Cluster.Peername,
		DataDir:   filepath.Join(dir, pluginName),
		InitPeers: []core.PeerID{ident.ID},
	}
}

func startPeer(ctx context.Context, dir string, svc *config.Service, ident *config.Identity, logger hclog.Logger) (*peer, error) {
	c, err := cluster.New(svc, ident.ID, logger.Named("cluster"))
	if err != nil {
		return nil, err
	}
	launcher, err := newLauncher(logger)
	if err != nil {
		return nil, err
	}
	env := func(choice config.PluginChoice) core.Environment {
		return environment(dir, svc, ident, choice.Name)
	}
	sup := pluginhost.NewSupervisor(launcher, c.Host(), env, pluginhost.Options{
		CallTimeout: svc.Cluster.PluginCallTimeout.D(),
	})
	p := &peer{logger: logger, cluster: c, plugins: sup, admin: &pluginAdmin{dir: dir, sup: sup, logger: logger.Named("plugins")}}
	ok := false
	defer func() {
		if !ok {
			p.shutdown()
		}
	}()
	// The peer's libp2p host, inside the private network of the cluster
	// secret, with the identity of identity.json.
	netCfg, err := network.ConfigFrom(dir, &svc.Cluster, ident)
	if err != nil {
		return nil, fmt.Errorf("service.json: cluster: %w", err)
	}
	netCfg.Logger = logger.Named("network")
	if p.net, err = network.NewHost(netCfg); err != nil {
		return nil, fmt.Errorf("cluster listener (service.json cluster.listen_multiaddress): %w", err)
	}
	c.UseNetwork(p.net)
	// Each kind is started and attached before the next, which may call
	// back into it; the orchestrator holds the supervisor's proxies, which
	// survive plugin restarts and swaps.
	for _, k := range core.Kinds {
		choice, err := svc.Plugin(k)
		if err != nil {
			return nil, err
		}
		if err := sup.Start(ctx, choice); err != nil {
			return nil, err
		}
		if err := c.Use(k, sup.Proxy(k)); err != nil {
			return nil, fmt.Errorf("plugin %s %q: %w", k, choice.Name, err)
		}
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	restCfg := rest.DefaultConfig()
	restCfg.ConfigDir = dir
	if raw, ok := svc.API["restapi"]; ok {
		if err := json.Unmarshal(raw, &restCfg); err != nil {
			return nil, fmt.Errorf("service.json: api.restapi: %w", err)
		}
	}
	api, err := rest.NewServer(restCfg, c, logger.Named("restapi"), rest.WithPluginAdmin(p.admin))
	if err != nil {
		return nil, fmt.Errorf("service.json: api.restapi: %w", err)
	}
	if err := api.Start(); err != nil {
		return nil, fmt.Errorf("REST API: %w", err)
	}
	p.api = api
	ok = true
	return p, nil
}

// shutdown stops the API, the orchestrator and the plugins, in that order.
func (p *peer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.api != nil {
		_ = p.api.Shutdown(ctx)
	}
	p.cluster.Shutdown()
	p.plugins.Stop(ctx)
	if p.net != nil {
		if err := p.net.Close(); err != nil {
			p.logger.Warn("closing the libp2p host", "error", err)
		}
	}
}
