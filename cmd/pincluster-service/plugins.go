package main

import (
	"context"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/core/pluginhost"
)

// pluginAdmin serves the REST API's plugin endpoints and SIGHUP: it lists
// the supervised plugins and reloads their configuration from service.json.
type pluginAdmin struct {
	dir    string
	sup    *pluginhost.Supervisor
	logger hclog.Logger
}

// Plugins implements rest.PluginAdmin.
func (a *pluginAdmin) Plugins(context.Context) ([]pluginhost.Info, error) {
	return a.sup.Plugins(), nil
}

// ReloadPlugins implements rest.PluginAdmin: it re-reads service.json,
// applies its plugin sections and logs the outcome of each kind.
func (a *pluginAdmin) ReloadPlugins(ctx context.Context) ([]pluginhost.ReloadResult, error) {
	svc, err := config.LoadService(filepath.Join(a.dir, config.ServiceFile))
	if err != nil {
		a.logger.Error("plugin reload: service.json cannot be read; nothing was changed", "error", err)
		return nil, &reloadConfigError{err}
	}
	logNotices(a.logger, svc)
	results := a.sup.Reload(ctx, svc)
	for _, r := range results {
		switch r.Result {
		case pluginhost.ReloadSwapped:
			a.logger.Info("plugin reload: swapped", "kind", r.Kind, "name", r.Name, "previous", r.Previous)
		case pluginhost.ReloadRestartNeeded:
			a.logger.Warn("plugin reload: restart needed", "kind", r.Kind, "name", r.Name, "requested", r.Requested, "reason", r.Error)
		case pluginhost.ReloadFailed:
			a.logger.Error("plugin reload: failed; the running plugin stays", "kind", r.Kind, "name", r.Name, "requested", r.Requested, "error", r.Error)
		}
	}
	return results, pluginhost.ReloadError(results)
}

// reloadConfigError is a reload refused because service.json is unreadable.
type reloadConfigError struct{ err error }

func (e *reloadConfigError) Error() string {
	return "reload failed, nothing was changed: " + e.err.Error()
}

func (e *reloadConfigError) Unwrap() error { return e.err }
