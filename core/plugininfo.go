package core

import "time"

// The state of the plugins a peer runs, as GET /plugins and
// POST /plugins/reload report it. These endpoints are pincluster's own.

// PluginState is the state of a supervised plugin.
type PluginState string

// The states of a supervised plugin.
const (
	// PluginRunning: the plugin serves calls.
	PluginRunning PluginState = "running"
	// PluginRestarting: the plugin died or hung; it is being started again.
	PluginRestarting PluginState = "restarting"
	// PluginFailed: starting it again failed; attempts go on with backoff
	// (last_error says why).
	PluginFailed PluginState = "failed"
	// PluginStopped: the peer is shutting down.
	PluginStopped PluginState = "stopped"
)

// PluginInfo describes one supervised plugin (GET /plugins).
type PluginInfo struct {
	Kind            Kind   `json:"kind"`
	Name            string `json:"name"`
	Version         string `json:"version"`
	ProtocolVersion int    `json:"protocol_version"`
	// Path is the executable, or "built-in".
	Path string `json:"path"`
	// Pid is the plugin process, 0 while it is down.
	Pid      int         `json:"pid"`
	State    PluginState `json:"state"`
	Restarts int         `json:"restarts"`
	// LastError is why the plugin last failed or could not be started.
	LastError string `json:"last_error"`
	// Uptime is how long the current process has run, as a Go duration.
	Uptime string `json:"uptime"`
	// StartedAt is when the current process started (zero while down).
	StartedAt    time.Time `json:"started_at"`
	Capabilities []string  `json:"capabilities"`
}

// PluginReloadOutcome is what a reload did for one kind.
type PluginReloadOutcome string

// The outcomes of a reload for one kind.
const (
	// PluginReloadUnchanged: the kind's section of service.json did not change.
	PluginReloadUnchanged PluginReloadOutcome = "unchanged"
	// PluginReloadSwapped: the new plugin (or configuration) now serves the kind.
	PluginReloadSwapped PluginReloadOutcome = "swapped"
	// PluginReloadRestartNeeded: the kind keeps state and cannot be swapped on a
	// running peer; the change applies at the next start.
	PluginReloadRestartNeeded PluginReloadOutcome = "restart-needed"
	// PluginReloadFailed: the new plugin did not start or was refused; the old
	// one still runs.
	PluginReloadFailed PluginReloadOutcome = "failed"
)

// PluginReload reports the reload of one kind (POST /plugins/reload).
type PluginReload struct {
	Kind   Kind                `json:"kind"`
	Result PluginReloadOutcome `json:"result"`
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
