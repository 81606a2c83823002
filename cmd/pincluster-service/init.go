package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pincluster/pincluster/api/rest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/cluster"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/builtin"
)

func cmdInit(g globals, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	force := fs.Bool("f", false, "overwrite an existing configuration")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if err := initConfig(g.configDir, *force); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "configuration written to %s\n", g.configDir)
	return nil
}

// initConfig writes a default service.json and a new identity.json.
func initConfig(dir string, force bool) error {
	svcPath := filepath.Join(dir, config.ServiceFile)
	idPath := filepath.Join(dir, config.IdentityFile)
	if !force {
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
	ident, err := config.NewIdentity()
	if err != nil {
		return err
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
	restDefaults, err := json.Marshal(rest.DefaultConfig())
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
		if err := initConfig(dir, false); err != nil {
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
