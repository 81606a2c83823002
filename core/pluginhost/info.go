package pluginhost

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/pincluster/pincluster/core"
)

// Info describes one supervised plugin (GET /plugins).
type Info = core.PluginInfo

// ReloadOutcome is what a reload did for one kind.
type ReloadOutcome = core.PluginReloadOutcome

// The outcomes of a reload for one kind.
const (
	ReloadUnchanged     = core.PluginReloadUnchanged
	ReloadSwapped       = core.PluginReloadSwapped
	ReloadRestartNeeded = core.PluginReloadRestartNeeded
	ReloadFailed        = core.PluginReloadFailed
)

// ReloadResult reports the reload of one kind (POST /plugins/reload).
type ReloadResult = core.PluginReload

// ReloadError is the error of a reload that applied nothing because of a
// failure: at least one kind failed and none was swapped. It is nil
// otherwise, including when nothing changed or changes need a restart.
func ReloadError(results []ReloadResult) error {
	var failed []string
	for _, r := range results {
		switch r.Result {
		case ReloadSwapped:
			return nil
		case ReloadFailed:
			failed = append(failed, r.Error)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("reload failed, nothing was changed: %s", strings.Join(failed, "; "))
}

// UnavailableError is the error of a call that a plugin could not answer
// because it died, hung or is being restarted (or the peer is stopping).
type UnavailableError struct {
	Kind core.Kind
	Name string
	// Op is the call, e.g. "Allocate".
	Op string
	// Err is the cause: the transport error, the caller's context error or
	// why the restart is late.
	Err error
	// Stopped is set when the peer is shutting down.
	Stopped bool
}

func (e *UnavailableError) Error() string {
	if e.Stopped {
		return fmt.Sprintf("plugin %s %q is stopped: %s", e.Kind, e.Name, e.Op)
	}
	return fmt.Sprintf("plugin %s %q is restarting: %s: %v", e.Kind, e.Name, e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// HTTPStatus is the status the REST API answers this error with: 503, the
// request may be tried again once the plugin is back.
func (e *UnavailableError) HTTPStatus() int { return http.StatusServiceUnavailable }
