package sdk

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/pincluster/pincluster/core"
)

// stderr is the process's standard error as it was at start. plugin.Serve
// later points os.Stderr at a pipe that the core does not parse as log
// lines, so the logger must keep the original.
var stderr = os.Stderr

// LogLevelEnv names the environment variable through which the core tells
// a plugin the level of its log (trace, debug, info, warn, error).
const LogLevelEnv = "PINCLUSTER_PLUGIN_LOG_LEVEL"

var logger = sync.OnceValue(func() hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Trace
	}
	return hclog.New(&hclog.LoggerOptions{
		Level:      level,
		Output:     stderr,
		JSONFormat: true,
	})
})

// Logger returns the logger plugin authors should use. It writes JSON
// lines to the plugin's standard error, which go-plugin reads in the core
// and logs again, with their level and fields, under the plugin's name.
// It emits the levels the core keeps (LogLevelEnv; every level when the
// plugin runs without a core).
func Logger() hclog.Logger { return logger() }

// parentPollInterval is how often a plugin checks that the core is alive.
const parentPollInterval = 500 * time.Millisecond

// Serve serves impl as a plugin of the kind its Describe reports, and
// returns when the core has closed the connection. Call it from main.
//
// Serve writes nothing to standard output but the go-plugin handshake, and
// sends the standard library's log output through Logger. The plugin dies
// with the core: on Linux it asks for SIGKILL when its parent dies, and on
// every system it exits when its parent process changes. If the core goes
// away without calling Close, Serve closes impl before returning.
//
// Started by a core, the plugin ignores SIGTERM (go-plugin already ignores
// SIGINT): its life is the core's to end, so a signal sent to the whole
// process group (Ctrl-C, a service manager stopping the daemon) lets the
// core close its plugins in order instead of losing them under its feet.
func Serve(impl core.Plugin) {
	lg := Logger()
	if os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue {
		dieWithParent(lg)
		signal.Ignore(syscall.SIGTERM)
	}
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(lg.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))

	p, err := servedPlugin(impl)
	if err != nil {
		lg.Error("cannot serve plugin", "error", err)
		os.Exit(1)
	}
	stopProfile := StartCPUProfile(string(p.Kind))
	defer stopProfile()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{core.ProtocolVersion: {string(p.Kind): p}},
		GRPCServer:       NewGRPCServer,
		Logger:           lg.Named("go-plugin"),
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		lg.Error("closing plugin", "error", err)
	}
}

// servedPlugin asks impl what it is and returns the go-plugin plugin that
// serves it.
func servedPlugin(impl core.Plugin) (*GRPCPlugin, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desc, err := impl.Describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	if !implements(impl, desc.Kind) {
		return nil, fmt.Errorf("%T describes itself as kind %q but does not implement it", impl, desc.Kind)
	}
	if len(desc.ProtocolVersions) > 0 && !slices.Contains(desc.ProtocolVersions, core.ProtocolVersion) {
		return nil, fmt.Errorf("plugin speaks protocol versions %v, this SDK speaks %d", desc.ProtocolVersions, core.ProtocolVersion)
	}
	return &GRPCPlugin{Kind: desc.Kind, Impl: impl}, nil
}

// dieWithParent makes the process exit when the core that started it dies.
func dieWithParent(lg hclog.Logger) {
	ppid := os.Getppid()
	if err := setParentDeathSignal(); err != nil {
		lg.Warn("cannot set the parent death signal", "error", err)
	}
	exit := func() {
		lg.Error("the core process is gone, exiting", "ppid", ppid)
		os.Exit(1)
	}
	go watchParent(ppid, parentPollInterval, os.Getppid, exit)
}

// watchParent calls exit once getppid stops returning ppid. The parent
// death signal alone is not enough: it is tied to the thread that started
// the process, and it is lost if the parent died before it was set.
func watchParent(ppid int, every time.Duration, getppid func() int, exit func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if getppid() != ppid {
			exit()
			return
		}
		<-t.C
	}
}
