package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

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
	var bootstrap string
	var leave bool
	const bootstrapUsage = "join the cluster of these peers: comma-separated multiaddrs ending with /p2p/<peer ID>"
	const leaveUsage = "leave the cluster's peerset on shutdown (as cluster.leave_on_shutdown)"
	fs.StringVar(&bootstrap, "bootstrap", "", bootstrapUsage)
	fs.StringVar(&bootstrap, "j", "", bootstrapUsage+" (short for --bootstrap)")
	fs.BoolVar(&leave, "leave", false, leaveUsage)
	fs.BoolVar(&leave, "x", false, leaveUsage+" (short for --leave)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	var join []ma.Multiaddr
	if bootstrap != "" {
		var err error
		if join, err = network.ParseAddrs(strings.Split(bootstrap, ",")); err != nil {
			return usageError{"--bootstrap: " + err.Error()}
		}
	}
	logger := newLogger(g.logLevel)
	svc, ident, err := loadOrInit(g.configDir)
	if err != nil {
		return err
	}
	logNotices(logger, svc)
	svc.Cluster.LeaveOnShutdown = svc.Cluster.LeaveOnShutdown || leave
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A peer removed from the peerset by another shuts down.
	ctx, removed := context.WithCancel(ctx)
	defer removed()
	// SIGHUP reloads the plugin configuration; it is caught before the
	// peer starts so that an early one does not kill the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	defer sdk.StartCPUProfile("core")()

	p, err := startPeer(ctx, g.configDir, svc, ident, logger, join, removed)
	if err != nil {
		return err
	}
	var apiAddrs []net.Addr
	if p.api != nil {
		apiAddrs = p.api.Addrs()
	}
	logger.Info("peer ready", "id", ident.ID, "api", apiAddrs)
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
	api     *rest.Server // nil without an api.restapi section
	net     *network.Host
	// leave: remove this peer from the peerset on shutdown.
	leave bool
	// started: every part of the peer started.
	started bool
}

// newLauncher returns a launcher that serves built-in plugins from this
// binary, for the peer that svc configures.
func newLauncher(logger hclog.Logger, svc *config.Service) (*pluginhost.Launcher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the service binary to start built-in plugins: %w", err)
	}
	return &pluginhost.Launcher{Executable: exe, Builtin: builtin.Has, Logger: logger,
		GOMAXPROCS: svc.Cluster.PluginGOMAXPROCS}, nil
}

// environment is what a plugin is told about its peer. InitPeers are this
// peer and the peers it joins (--bootstrap): a consensus without state yet
// joins their cluster instead of starting one of its own.
func environment(dir string, svc *config.Service, ident *config.Identity, pluginName string, join []ma.Multiaddr) core.Environment {
	secret, _ := hex.DecodeString(svc.Cluster.Secret) // validated with the config
	env := core.Environment{
		Secret:    secret,
		PeerID:    ident.ID,
		PeerName:  svc.Cluster.Peername,
		DataDir:   filepath.Join(dir, pluginName),
		InitPeers: []core.PeerID{ident.ID},
	}
	for _, a := range join {
		if info, err := libp2ppeer.AddrInfoFromP2pAddr(a); err == nil && info.ID != ident.ID {
			env.InitPeers = append(env.InitPeers, info.ID)
		}
	}
	return env
}

// startPeer starts the peer of the config folder dir. join are the peers
// of --bootstrap; without them, a peer whose consensus has no peerset yet
// (a new peer made with `init --peers`) joins through the peers of its
// peerstore file. onRemoved is called if another peer removes this one from
// the peerset.
func startPeer(ctx context.Context, dir string, svc *config.Service, ident *config.Identity, logger hclog.Logger, join []ma.Multiaddr, onRemoved func()) (*peer, error) {
	restRaw, serveREST, err := apiSections(svc, logger)
	if err != nil {
		return nil, err
	}
	c, err := cluster.New(svc, ident.ID, logger.Named("cluster"))
	if err != nil {
		return nil, err
	}
	c.OnRemoved = onRemoved
	launcher, err := newLauncher(logger, svc)
	if err != nil {
		return nil, err
	}
	explicit := len(join) > 0
	env := func(choice config.PluginChoice) core.Environment {
		return environment(dir, svc, ident, choice.Name, join)
	}
	sup := pluginhost.NewSupervisor(launcher, c.Host(), env, pluginhost.Options{
		CallTimeout: svc.Cluster.PluginCallTimeout.D(),
	})
	p := &peer{logger: logger, cluster: c, plugins: sup, leave: svc.Cluster.LeaveOnShutdown,
		admin: &pluginAdmin{dir: dir, sup: sup, logger: logger.Named("plugins")}}
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
	rpc, err := network.NewRPC(p.net, network.RPCConfig{Logger: logger.Named("rpc")})
	if err != nil {
		return nil, fmt.Errorf("cluster RPC: %w", err)
	}
	if err := c.UseNetwork(p.net, rpc); err != nil {
		return nil, fmt.Errorf("cluster RPC: %w", err)
	}
	if !explicit {
		join = p.net.KnownAddrs()
	}
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
	if explicit || (len(join) > 0 && !hasPeerset(ctx, sup.Consensus(), ident.ID, logger)) {
		if err := joinCluster(ctx, p.net, rpc, sup.Consensus(), ident.ID, join, logger); err != nil {
			return nil, err
		}
		c.PublishMetrics(ctx)
	}
	if serveREST {
		restCfg := rest.DefaultConfig()
		restCfg.ConfigDir = dir
		if err := json.Unmarshal(restRaw, &restCfg); err != nil {
			return nil, fmt.Errorf("service.json: api.restapi: %w", err)
		}
		// CLUSTER_RESTAPI_* variables override the section, as in IPFS
		// Cluster.
		if err := restCfg.ApplyEnvVars(os.Getenv); err != nil {
			return nil, fmt.Errorf("environment: %w", err)
		}
		api, err := rest.NewServer(restCfg, c, logger.Named("restapi"), rest.WithPluginAdmin(p.admin))
		if err != nil {
			return nil, fmt.Errorf("service.json: api.restapi: %w", err)
		}
		if err := api.Start(); err != nil {
			return nil, fmt.Errorf("REST API: %w", err)
		}
		p.api = api
	}
	ok, p.started = true, true
	return p, nil
}

// apiSections reads the api section of service.json as IPFS Cluster does:
// only the APIs it names are started. The REST API (restapi) is served;
// IPFS Cluster's pinning service API and IPFS proxy are accepted, with a
// warning, and not served; any other name is an error.
func apiSections(svc *config.Service, logger hclog.Logger) (rest json.RawMessage, serve bool, err error) {
	for _, name := range slices.Sorted(maps.Keys(svc.API)) {
		switch name {
		case "restapi":
		case "pinsvcapi", "ipfsproxy":
			logger.Warn("service.json: api." + name + " is not served by pincluster: only restapi is started")
		default:
			return nil, false, fmt.Errorf("service.json: api.%s: unknown API (pincluster serves restapi; IPFS Cluster's pinsvcapi and ipfsproxy are accepted and not served)", name)
		}
	}
	rest, serve = svc.API["restapi"]
	if !serve {
		logger.Warn("service.json has no api.restapi section: the REST API is not started")
	}
	return rest, serve, nil
}

// shutdown stops the API, leaves the peerset when configured to, then
// stops the orchestrator and the plugins, in that order.
func (p *peer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p.api != nil {
		_ = p.api.Shutdown(ctx)
	}
	if p.started && p.leave {
		switch left, err := p.cluster.Leave(ctx); {
		case err != nil:
			p.logger.Error("leaving the cluster's peerset failed", "error", err)
		case left:
			p.logger.Info("left the cluster's peerset")
		}
	}
	p.cluster.Shutdown()
	p.plugins.Stop(ctx)
	if p.net != nil {
		if err := p.net.Close(); err != nil {
			p.logger.Warn("closing the libp2p host", "error", err)
		}
	}
}

// hasPeerset reports whether the consensus already knows a peerset. A new
// raft peer that is to join a cluster has none until a member adds it; one
// that was removed or left has one without itself, and is told how to come
// back.
func hasPeerset(ctx context.Context, cons core.Consensus, self core.PeerID, logger hclog.Logger) bool {
	peers, err := cons.Peers(ctx)
	if err != nil || len(peers) == 0 {
		return false
	}
	if !slices.Contains(peers, self) {
		logger.Warn("this peer is not in its cluster's peerset (it was removed, or left): start it with --bootstrap to join again")
	}
	return true
}

// joinTimeout bounds joining the cluster of --bootstrap at start.
const joinTimeout = time.Minute

// joinCluster connects to the peers of --bootstrap and asks the first that
// answers to add this peer to the consensus peerset, at this peer's
// consensus address. A peer already in the peerset is added again without
// change, so a restart with the same flag is harmless.
func joinCluster(ctx context.Context, h *network.Host, rpc *network.RPC, cons core.Consensus, self core.PeerID, addrs []ma.Multiaddr, logger hclog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	peers, err := h.Bootstrap(ctx, addrs)
	if len(peers) == 0 {
		return fmt.Errorf("--bootstrap: no peer could be reached (is the cluster secret the same?): %w", err)
	}
	addr, err := cons.Address(ctx)
	if err != nil {
		return fmt.Errorf("joining: the consensus has no address for the other peers: %w", err)
	}
	var errs []error
	for _, p := range peers {
		id, err := rpc.Client().PeerAdd(ctx, p, network.PeerAddRequest{Peer: self, ConsensusAddress: addr})
		if err == nil {
			logger.Info("joined the cluster", "through", p, "peers", len(id.ClusterPeers))
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
	}
	return fmt.Errorf("--bootstrap: no peer added this one to the cluster: %w", errors.Join(errs...))
}

// logNotices logs what reading service.json found worth telling.
func logNotices(logger hclog.Logger, svc *config.Service) {
	for _, n := range svc.Notices() {
		logger.Warn("service.json: " + n)
	}
}
