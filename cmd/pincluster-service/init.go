package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/api/rest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/cluster"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/network"
	"github.com/pincluster/pincluster/plugins/builtin"
)

func cmdInit(g globals, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	var opts initOptions
	fs.BoolVar(&opts.force, "f", false, "overwrite an existing configuration")
	fs.BoolVar(&opts.force, "force", false, "overwrite an existing configuration")
	peers := fs.String("peers", "", "cluster peers to join at the first start: comma-separated multiaddrs ending with /p2p/<peer ID>, written to the peerstore file")
	fs.BoolVar(&opts.randomPorts, "randomports", false, "listen on random free ports instead of the defaults")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *peers != "" {
		addrs, err := network.ParseAddrs(strings.Split(*peers, ","))
		if err != nil {
			return usageError{"--peers: " + err.Error()}
		}
		opts.peers = addrs
	}
	if err := initConfig(g.configDir, opts); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "configuration written to %s\n", g.configDir)
	return nil
}

// initOptions are the flags of init.
type initOptions struct {
	force       bool
	randomPorts bool
	// peers are written to the peerstore file: a new peer joins the
	// cluster through them at its first start.
	peers []ma.Multiaddr
}

// initConfig writes a default service.json, a new identity.json and, with
// opts.peers, the peerstore file.
func initConfig(dir string, opts initOptions) error {
	svcPath := filepath.Join(dir, config.ServiceFile)
	idPath := filepath.Join(dir, config.IdentityFile)
	if !opts.force {
		for _, p := range []string{svcPath, idPath} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s exists (use init -f to overwrite)", p)
			}
		}
	}
	svc, err := defaultService()
	if err != nil {
		return err
	}
	if err := svc.Cluster.ApplyEnv(); err != nil {
		return err
	}
	if err := svc.Cluster.Validate(); err != nil {
		return err
	}
	ident, err := config.NewIdentity()
	if err != nil {
		return err
	}
	if opts.randomPorts {
		given := map[int]bool{}
		var portErr error
		port := func() int {
			p, err := config.FreePort(func(p int) bool { return given[p] })
			portErr = errors.Join(portErr, err)
			given[p] = true
			return p
		}
		if _, err := svc.RandomPorts(port); err != nil {
			return err
		}
		if portErr != nil {
			return fmt.Errorf("--randomports: %w", portErr)
		}
	}
	storePath := filepath.Join(dir, network.PeerstoreFile)
	if err := os.Remove(storePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err // the peers of another identity's cluster
	}
	if err := network.WritePeerstore(storePath, ident.ID, opts.peers); err != nil {
		return fmt.Errorf("--peers: %w", err)
	}
	if err := svc.Save(svcPath); err != nil {
		return err
	}
	return ident.Save(idPath)
}

// defaultService builds service.json from each built-in plugin's defaults.
func defaultService() (*config.Service, error) {
	svc := &config.Service{
		Cluster:  config.DefaultClusterConfig(),
		API:      config.Sections{},
		Informer: cluster.DefaultInformers(),
	}
	restCfg := rest.DefaultConfig()
	// What CLUSTER_RESTAPI_* variables say is written, as IPFS Cluster's
	// init does.
	if err := restCfg.ApplyEnvVars(os.Getenv); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	restDefaults, err := json.Marshal(restCfg)
	if err != nil {
		return nil, err
	}
	svc.API["restapi"] = restDefaults
	for _, k := range core.Kinds {
		name := builtin.Defaults[k]
		p, ok := builtin.New(k, name)
		if !ok {
			return nil, fmt.Errorf("no built-in %s plugin %q", k, name)
		}
		desc, err := p.Describe(context.Background())
		if err != nil {
			return nil, err
		}
		svc.SetPlugin(k, name, desc.DefaultConfig)
	}
	return svc, nil
}

// loadOrInit reads the config folder, initialising it when it is empty.
func loadOrInit(dir string) (*config.Service, *config.Identity, error) {
	svcPath := filepath.Join(dir, config.ServiceFile)
	if _, err := os.Stat(svcPath); errors.Is(err, os.ErrNotExist) {
		if err := initConfig(dir, initOptions{}); err != nil {
			return nil, nil, err
		}
	}
	svc, err := config.LoadService(svcPath)
	if err != nil {
		return nil, nil, err
	}
	ident, err := config.LoadIdentity(filepath.Join(dir, config.IdentityFile))
	if err != nil {
		return nil, nil, err
	}
	return svc, ident, nil
}
