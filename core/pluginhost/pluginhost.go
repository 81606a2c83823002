// Package pluginhost launches plugins as child processes over go-plugin's
// gRPC protocol, negotiates the protocol version, configures them and stops
// them. Built-in plugins are served by the service binary itself, started
// again with the "plugin <kind> <name>" sub-command; external plugins are
// any executable named in service.json, optionally checked by sha256.
//
// A Supervisor keeps one plugin of each kind running for the core: it hands
// out a stable proxy per kind, restarts a plugin that dies or hangs, and
// swaps stateless plugins on a running peer (see supervisor.go).
package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// BuiltinCommand is the sub-command of the service binary that serves a
// built-in plugin: `<binary> plugin <kind> <name>`.
const BuiltinCommand = "plugin"

// Launcher starts plugins.
type Launcher struct {
	// Executable is the service binary, re-executed for built-in plugins.
	Executable string
	// Builtin reports whether a plugin of that kind and name is built in.
	Builtin func(kind core.Kind, name string) bool
	Logger  hclog.Logger
	// StartTimeout bounds the handshake, Describe and Configure.
	StartTimeout time.Duration
	// GOMAXPROCS, when positive, is set in the environment of the plugin
	// processes; a GOMAXPROCS in the core's own environment wins over it.
	GOMAXPROCS int
}

// Plugin is one running plugin process.
type Plugin struct {
	Choice config.PluginChoice
	Desc   core.Description
	Pid    int
	// Protocol is the protocol version negotiated in the handshake.
	Protocol int
	Started  time.Time
	// Endpoint is where the process serves its gRPC services.
	Endpoint core.Endpoint

	client *plugin.Client
	cmd    *exec.Cmd
	impl   core.Plugin

	stopOnce sync.Once
}

// Impl returns the plugin's client, which implements the interface of its kind.
func (p *Plugin) Impl() core.Plugin { return p.impl }

// Exited reports whether the plugin process has exited.
func (p *Plugin) Exited() bool { return p.client.Exited() }

// Path describes where the plugin comes from: "built-in" or its executable.
func (p *Plugin) Path() string {
	if p.Choice.External != nil {
		return p.Choice.External.Path
	}
	return "built-in"
}

// Launch starts the plugin chosen for a kind, checks what it says it is and
// configures it. On error the process is gone.
func (l *Launcher) Launch(ctx context.Context, choice config.PluginChoice, env core.Environment, host core.Host) (*Plugin, error) {
	p, err := l.launch(ctx, choice, env, host)
	if err != nil {
		return nil, fmt.Errorf("plugin %s %q: %w", choice.Kind, choice.Name, err)
	}
	return p, nil
}

func (l *Launcher) launch(ctx context.Context, choice config.PluginChoice, env core.Environment, host core.Host) (*Plugin, error) {
	cmd, secure, err := l.command(choice)
	if err != nil {
		return nil, err
	}
	dieWithCore(cmd)
	// The plugin formats no log line the core would drop, and runs Go code
	// on l.GOMAXPROCS threads. go-plugin adds the core's own environment
	// after these, where the same variables, if set, override them.
	if level := l.Logger.GetLevel(); level != hclog.NoLevel {
		cmd.Env = append(cmd.Env, sdk.LogLevelEnv+"="+level.String())
	}
	if l.GOMAXPROCS > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(l.GOMAXPROCS))
	}

	logger := l.Logger.Named(string(choice.Kind) + "." + choice.Name)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.VersionedPlugins(nil),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		GRPCDialOptions:  sdk.ClientGRPCDialOptions(),
		StartTimeout:     l.startTimeout(),
	})
	p := &Plugin{Choice: choice, client: client, cmd: cmd, Started: time.Now()}
	ok := false
	defer func() {
		if !ok {
			client.Kill()
		}
	}()

	rpc, err := client.Client()
	if err != nil {
		return nil, explainStartError(err)
	}
	if rc := client.ReattachConfig(); rc != nil {
		p.Pid = rc.Pid
		if rc.Addr != nil {
			p.Endpoint = core.Endpoint{Network: rc.Addr.Network(), Address: rc.Addr.String()}
		}
	}
	p.Protocol = client.NegotiatedVersion()
	raw, err := rpc.Dispense(string(choice.Kind))
	if err != nil {
		return nil, fmt.Errorf("plugin does not serve the %s kind: %w", choice.Kind, err)
	}
	impl, ok2 := raw.(core.Plugin)
	if !ok2 {
		return nil, fmt.Errorf("plugin does not serve the %s kind", choice.Kind)
	}
	p.impl = impl

	cctx, cancel := context.WithTimeout(ctx, l.startTimeout())
	defer cancel()
	desc, err := impl.Describe(cctx)
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	if desc.Kind != choice.Kind {
		return nil, fmt.Errorf("the executable serves the %s kind (plugin %q), not the %s kind", desc.Kind, desc.Name, choice.Kind)
	}
	if !supports(desc.ProtocolVersions, core.ProtocolVersion) {
		return nil, fmt.Errorf("plugin speaks protocol versions %v, this peer speaks version %d", desc.ProtocolVersions, core.ProtocolVersion)
	}
	p.Desc = desc
	if err := impl.Configure(cctx, choice.Config, env, host); err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	ok = true
	logger.Info("plugin started", "version", desc.Version, "pid", p.Pid, "path", p.Path())
	return p, nil
}

func (l *Launcher) startTimeout() time.Duration {
	if l.StartTimeout > 0 {
		return l.StartTimeout
	}
	return 30 * time.Second
}

func (l *Launcher) command(choice config.PluginChoice) (*exec.Cmd, *plugin.SecureConfig, error) {
	if ext := choice.External; ext != nil {
		cmd := exec.Command(ext.Path, ext.Args...)
		var secure *plugin.SecureConfig
		if ext.SHA256 != "" {
			sum, err := hex.DecodeString(ext.SHA256)
			if err != nil {
				return nil, nil, fmt.Errorf("sha256 is not hexadecimal: %w", err)
			}
			secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
		}
		return cmd, secure, nil
	}
	if l.Builtin == nil || !l.Builtin(choice.Kind, choice.Name) {
		return nil, nil, fmt.Errorf("unknown plugin: it is not built in and service.json's \"plugins\" section does not name its executable")
	}
	return exec.Command(l.Executable, BuiltinCommand, string(choice.Kind), choice.Name), nil, nil
}

// explainStartError turns go-plugin's start errors into messages that say
// what to do.
func explainStartError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("the executable's sha256 does not match service.json: %w", err)
	case strings.Contains(strings.ToLower(msg), "incompatible api version"):
		return fmt.Errorf("protocol version mismatch (this peer speaks version %d): %w", core.ProtocolVersion, err)
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file"):
		return fmt.Errorf("executable not found: %w", err)
	case strings.Contains(msg, "Unrecognized remote plugin message"), strings.Contains(msg, "plugin exited before we could connect"):
		return fmt.Errorf("the executable did not start as a pincluster plugin (one serves with the SDK's Serve, which prints the handshake line on standard output; check its path and arguments in service.json): %w", err)
	}
	return fmt.Errorf("start: %w", err)
}

func supports(versions []int, v int) bool {
	for _, x := range versions {
		if x == v {
			return true
		}
	}
	return false
}

// Stop closes the plugin and ends its process.
func (p *Plugin) Stop(ctx context.Context) {
	p.stopOnce.Do(func() {
		if p.impl != nil && !p.client.Exited() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = p.impl.Close(cctx)
			cancel()
		}
		p.client.Kill()
	})
}

// Kill ends the plugin process at once (SIGKILL), without asking it to
// close: for a plugin that died or hangs.
func (p *Plugin) Kill() {
	p.stopOnce.Do(func() {
		// os.Process knows when the process has been reaped, so this never
		// signals a recycled pid.
		if p.cmd != nil && p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
		}
		p.client.Kill()
	})
}
