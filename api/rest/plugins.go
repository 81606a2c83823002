package rest

import (
	"context"
	"net/http"

	"github.com/pincluster/pincluster/core/pluginhost"
)

// PluginAdmin is what the plugin endpoints need from the peer:
//
//	GET  /plugins         the loaded plugins (a JSON array of pluginhost.Info)
//	POST /plugins/reload  re-read service.json and swap what can be swapped
//	                      (a JSON array of pluginhost.ReloadResult, one per kind)
//
// These endpoints are pincluster's own; IPFS Cluster has no equivalent.
type PluginAdmin interface {
	// Plugins describes every loaded plugin.
	Plugins(ctx context.Context) ([]pluginhost.Info, error)
	// ReloadPlugins applies service.json's plugin sections. It returns an
	// error (answered 500) when it applied nothing because of one: the
	// configuration could not be read, or every change failed.
	ReloadPlugins(ctx context.Context) ([]pluginhost.ReloadResult, error)
}

// ServerOption configures optional parts of a Server.
type ServerOption func(*Server)

// WithPluginAdmin serves the plugin endpoints with a. Without it they
// answer 501.
func WithPluginAdmin(a PluginAdmin) ServerOption {
	return func(s *Server) { s.plugins = a }
}

var errPluginsNotSupported = &httpError{
	status: http.StatusNotImplemented,
	msg:    "not supported: this server does not manage plugins",
}

func (s *Server) pluginsHandler(w http.ResponseWriter, r *http.Request) {
	if s.plugins == nil {
		s.sendError(w, statusAuto, errPluginsNotSupported)
		return
	}
	infos, err := s.plugins.Plugins(r.Context())
	if infos == nil {
		infos = []pluginhost.Info{}
	}
	s.sendResponse(w, statusAuto, err, infos)
}

func (s *Server) pluginsReloadHandler(w http.ResponseWriter, r *http.Request) {
	if s.plugins == nil {
		s.sendError(w, statusAuto, errPluginsNotSupported)
		return
	}
	results, err := s.plugins.ReloadPlugins(r.Context())
	if err != nil {
		s.sendError(w, http.StatusInternalServerError, err)
		return
	}
	if results == nil {
		results = []pluginhost.ReloadResult{}
	}
	s.sendResponse(w, statusAuto, nil, results)
}
