package pluginhost

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pincluster/pincluster/core"
)

// Info describes one supervised plugin (GET /plugins).
type Info struct {
	Kind            core.Kind `json:"kind"`
	Name            string    `json:"name"`
	Version         string    `json:"version"`
	ProtocolVersion int       `json:"protocol_version"`
	// Path is the executable, or "built-in".
	Path string `json:"path"`
	// Pid is the plugin process, 0 while it is down.
	Pid      int   `json:"pid"`
	State    State `json:"state"`
	Restarts int   `json:"restarts"`
	// LastError is why the plugin last failed or could not be started.
	LastError string `json:"last_error"`
	// Uptime is how long the current process has run, as a Go duration.
	Uptime string `json:"uptime"`
	// StartedAt is when the current process started (zero while down).
	StartedAt    time.Time `json:"started_at"`
	Capabilities []string  `json:"capabilities"`
}

// ReloadOutcome is what a reload did for one kind.
type ReloadOutcome string

// The outcomes of a reload for one kind.
const (
	// ReloadUnchanged: the kind's section of service.json did not change.
	ReloadUnchanged ReloadOutcome = "unchanged"
	// ReloadSwapped: the new plugin (or configuration) now serves the kind.
	ReloadSwapped ReloadOutcome = "swapped"
	// ReloadRestartNeeded: the kind keeps state and cannot be swapped on a
	// running peer; the change applies at the next start.
	ReloadRestartNeeded ReloadOutcome = "restart-needed"
	// ReloadFailed: the new plugin did not start or was refused; the old
	// one still runs.
	ReloadFailed ReloadOutcome = "failed"
)

// ReloadResult reports the reload of one kind (POST /plugins/reload).
type ReloadResult struct {
	Kind   core.Kind     `json:"kind"`
	Result ReloadOutcome `json:"result"`
	// Name is the plugin serving the kind after the reload.
	Name string `json:"name"`
	// Requested is the plugin service.json names now, when its section
	// changed.
	Requested string `json:"requested,omitempty"`
	// Previous is the plugin that was replaced, when swapped.
	Previous string `json:"previous,omitempty"`
	// Error says why the change was not applied (failed, restart-needed).
	Error string `json:"error,omitempty"`
}

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
