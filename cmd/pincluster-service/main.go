// Command pincluster-service runs a pincluster peer.
//
//	pincluster-service [--config DIR] init [-f] [--peers MULTIADDR[,MULTIADDR…]] [--randomports]
//	pincluster-service [--config DIR] daemon [--bootstrap MULTIADDR[,MULTIADDR…]] [--leave]
//	pincluster-service [--config DIR] state export [-f FILE]
//	pincluster-service [--config DIR] state import [-f] FILE
//	pincluster-service [--config DIR] state cleanup [-f]
//
// The same binary serves the built-in plugins: the daemon starts each one
// as `pincluster-service plugin <kind> <name>` in a process of its own,
// restarts it if it dies, and reloads the plugin configuration on SIGHUP
// (see docs/operations.md).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/pluginhost"
	"github.com/pincluster/pincluster/plugins/builtin"
	"github.com/pincluster/pincluster/plugins/sdk"
)

const usage = `pincluster-service runs a pincluster peer.

Usage:
  pincluster-service [global options] <command> [options]

Commands:
  init             write service.json and identity.json into the config folder;
                   -f overwrites them; --peers <multiaddr>[,…] writes those
                   peers to the peerstore file, and the first daemon start
                   joins their cluster; --randomports picks free ports
  daemon           run the peer (initialises the config folder on first run;
                   SIGHUP reloads the plugin sections of service.json);
                   --bootstrap, -j /ip4/…/tcp/9096/p2p/<peer ID>[,…] joins
                   the cluster of those peers (same cluster secret);
                   --leave, -x leaves the peerset on shutdown
  state export     write the pinset as one JSON pin per line
  state import     replace the pinset with an exported one
  state cleanup    delete the pinset and the consensus data
  version          print the version

Global options:
  -c, --config DIR   config folder (default $PINCLUSTER_PATH or ~/.pincluster)
  --log-level LEVEL  trace, debug, info, warn or error (default info)
`

func main() {
	// The daemon re-executes this binary to serve its built-in plugins.
	if len(os.Args) == 4 && os.Args[1] == pluginhost.BuiltinCommand {
		servePlugin(core.Kind(os.Args[2]), os.Args[3])
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func servePlugin(kind core.Kind, name string) {
	impl, ok := builtin.New(kind, name)
	if !ok {
		fmt.Fprintf(os.Stderr, "no built-in %s plugin named %q\n", kind, name)
		os.Exit(1)
	}
	sdk.Serve(impl)
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

type globals struct {
	configDir string
	logLevel  string
}

func run(args []string) error {
	fs := flag.NewFlagSet("pincluster-service", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	var g globals
	fs.StringVar(&g.configDir, "config", "", "")
	fs.StringVar(&g.configDir, "c", "", "")
	fs.StringVar(&g.logLevel, "log-level", "info", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if g.configDir == "" {
		g.configDir = defaultConfigDir()
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return usageError{"a command is required"}
	}
	switch rest[0] {
	case "init":
		return cmdInit(g, rest[1:])
	case "daemon":
		return cmdDaemon(g, rest[1:])
	case "state":
		return cmdState(g, rest[1:])
	case "version":
		fmt.Println(core.SoftwareVersion)
		return nil
	case "help":
		fs.Usage()
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q (see --help)", rest[0])}
}

func defaultConfigDir() string {
	if p := os.Getenv("PINCLUSTER_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".pincluster"
	}
	return filepath.Join(home, ".pincluster")
}

func newLogger(level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "pincluster",
		Level:  hclog.LevelFromString(level),
		Output: os.Stderr,
	})
}
