// Command pincluster-ctl is the command-line client of a pincluster peer's
// REST API. Its commands, flags, output formats and exit codes are those of
// ipfs-cluster-ctl v1.1, so it also drives IPFS Cluster peers, and scripts
// written for ipfs-cluster-ctl work with it.
//
//	pincluster-ctl [global options] <command> [command options] [arguments...]
//
// Run `pincluster-ctl help` for the commands, and see docs/ctl.md.
//
// Exit codes: 0 success; 1 the peer could not be reached, or the command
// was misused; 2 the peer answered with an error (printed as
// "An error occurred:" with its code and message); 62 a timeout; 125 the
// command was interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli"

	"github.com/pincluster/pincluster/api/client"
	"github.com/pincluster/pincluster/core"
)

const programName = "pincluster-ctl"

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitServerError = 2
	exitDeadline    = 62
	exitCanceled    = 125
)

const description = `pincluster-ctl is a tool to manage a pincluster (or IPFS Cluster) peer
through its REST API: it adds content, pins and unpins CIDs, and shows the
status of the pinset, the peers and their health.

The address of the API is given with --host (default /ip4/127.0.0.1/tcp/9094):
a multiaddress (/ip4/…/tcp/…, /dns4/…/tcp/…, /unix/<socket>) or a URL
(http://host:port, https://host:port). Several addresses may be given
separated by commas: the next is tried when one cannot be reached.

Use --debug to print every HTTP request the command makes (method and URL
with its query) and the raw answer of the peer: it is the quickest way to
learn the REST API.

Exit codes: 0 success; 1 the peer cannot be reached or the command was
misused; 2 the peer answered with an error; 62 timeout; 125 interrupted.`

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// ctl holds the state of one invocation.
type ctl struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	mu     sync.Mutex // serialises writes to stderr
	enc    string
	client *client.Client
}

// exitError ends the program with a code after its message was printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageErr reports a misuse of the command (exit code 1).
func usageErr(format string, args ...any) error {
	return &exitError{code: exitFailure, msg: fmt.Sprintf(format, args...)}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &ctl{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	app := c.newApp()
	err := app.Run(reorderArgs(app, args))
	if err == nil {
		return exitOK
	}
	return c.report(err)
}

// report prints an error the way ipfs-cluster-ctl does and returns the
// exit code.
func (c *ctl) report(err error) int {
	var ee *exitError
	var se core.Error
	var ce *client.ConnectionError
	var coder cli.ExitCoder
	switch {
	case errors.As(err, &ee):
		if ee.msg != "" {
			c.errorf("%s", ee.msg)
		}
		return ee.code
	case errors.As(err, &se):
		c.printServerError(se)
		return exitServerError
	// What did not reach the peer, or got no answer, is printed as
	// ipfs-cluster-ctl prints its client's transport errors: an error
	// with code 0.
	case errors.Is(err, context.DeadlineExceeded):
		c.printServerError(core.Error{Code: 0, Message: err.Error() + " (timed out)"})
		return exitDeadline
	case errors.Is(err, context.Canceled):
		c.printServerError(core.Error{Code: 0, Message: err.Error() + " (interrupted)"})
		return exitCanceled
	case errors.As(err, &ce):
		msg := ce.Error()
		if ce.Refused() {
			msg += " — is the daemon running?"
		}
		c.printServerError(core.Error{Code: 0, Message: msg})
		return exitFailure
	case errors.As(err, &coder):
		c.errorf("error: %v", err)
		return exitFailure
	default:
		c.errorf("error: %v", err)
		return exitFailure
	}
}

// printServerError prints an error on standard output, in the chosen
// encoding, as ipfs-cluster-ctl does: an error answer of the peer, or
// (code 0) the failure to get one.
func (c *ctl) printServerError(e core.Error) {
	if c.enc == "json" {
		c.printJSON(e)
		return
	}
	fmt.Fprintf(c.stdout, "An error occurred:\n  Code: %d\n  Message: %s\n", e.Code, e.Message)
}

func (c *ctl) errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.stderr, format+"\n", args...)
}

// logLine writes a line in go-log's console format: time, level, logger,
// the caller's file (its folder and name) and line, message. skip counts
// the frames between logLine's caller and the caller to name.
func (c *ctl) logLine(level, logger string, skip int, msg string) {
	caller := "?"
	if _, file, line, ok := runtime.Caller(skip + 1); ok {
		caller = filepath.Base(filepath.Dir(file)) + "/" + filepath.Base(file) + ":" + strconv.Itoa(line)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := time.Now().Format("2006-01-02T15:04:05.000Z0700")
	// As go-log: a message that ends with a newline (a raw answer body)
	// is followed by an empty line.
	fmt.Fprintf(c.stderr, "%s\t%s\t%s\t%s\t%s\n", ts, level, logger, caller, msg)
}

// debugLog writes a debug line of the command itself.
func (c *ctl) debugLog(msg string) { c.logLine("DEBUG", "cluster-ctl", 1, msg) }

func (c *ctl) warn(msg string) { c.logLine("WARN", "cluster-ctl", 1, msg) }

// stderrIsTerminal reports whether standard error is a terminal (the
// progress bar is only drawn there).
func (c *ctl) stderrIsTerminal() bool {
	f, ok := c.stderr.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func (c *ctl) stdinIsTerminal() bool {
	f, ok := c.stdin.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// setup reads the global options; it runs before every command.
func (c *ctl) setup(cc *cli.Context) error {
	c.enc = cc.GlobalString("encoding")
	if c.enc != "text" && c.enc != "json" {
		return usageErr("error: unsupported encoding %q (use text or json)", c.enc)
	}
	if cc.GlobalBool("debug") {
		c.debugLog("debug level enabled")
	}
	return nil
}

// api returns the client, built from the global options on first use.
func (c *ctl) api(cc *cli.Context) (*client.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	host := cc.GlobalString("host")
	cfg := client.Config{
		Host:         host,
		SSL:          cc.GlobalBool("https"),
		NoVerifyCert: cc.GlobalBool("no-check-certificate"),
		Timeout:      time.Duration(cc.GlobalInt("timeout")) * time.Second,
	}
	if cc.GlobalString("secret") != "" {
		c.warn("--secret is only used with libp2p API endpoints, which pincluster-ctl does not support: ignored")
	}
	if creds := cc.GlobalString("basic-auth"); creds != "" {
		user, pass, _ := strings.Cut(creds, ":")
		cfg.Username, cfg.Password = user, pass
		explicitHTTP := strings.HasPrefix(host, "http://")
		switch {
		case cfg.SSL || cc.GlobalBool("force-http"):
		case explicitHTTP:
			c.warn("sending basic auth credentials over plain HTTP (the --host URL says http://)")
		default:
			c.warn(`SSL automatically enabled with basic auth credentials. Set "force-http" to disable`)
			cfg.SSL = true
		}
	}
	if cc.GlobalBool("debug") {
		// The client's lines name where the client logged them: the
		// caller of its debug helper, two frames up from here.
		cfg.Debug = func(msg string) { c.logLine("DEBUG", "apiclient", 2, msg) }
		cfg.DebugError = func(msg string) { c.logLine("ERROR", "apiclient", 2, msg) }
	}
	cl, err := client.New(cfg)
	if err != nil {
		return nil, usageErr("error: %v", err)
	}
	c.client = cl
	return cl, nil
}

func (c *ctl) newApp() *cli.App {
	app := cli.NewApp()
	app.Name = programName
	app.HelpName = programName
	app.Usage = "CLI for a pincluster (or IPFS Cluster) peer"
	app.Description = description
	app.Version = core.SoftwareVersion
	app.Writer = c.stdout
	app.ErrWriter = c.stderr
	app.EnableBashCompletion = false
	// Errors are reported by run, which knows the exit codes.
	app.ExitErrHandler = func(*cli.Context, error) {}
	cli.VersionPrinter = func(cc *cli.Context) {
		fmt.Fprintf(cc.App.Writer, "%s version %s\n", programName, cc.App.Version)
	}
	app.Flags = []cli.Flag{
		cli.StringFlag{
			Name:  "host, l",
			Value: client.DefaultHost,
			Usage: "API address: multiaddress (/ip4/…/tcp/…, /dns4/…, /unix/…) or URL (http://…, https://…); comma-separated for failover",
		},
		cli.StringFlag{
			Name:  "secret",
			Usage: "cluster secret (libp2p API endpoints only; not supported, ignored)",
		},
		cli.BoolFlag{
			Name:  "https, s",
			Usage: "use HTTPS for multiaddress hosts",
		},
		cli.BoolFlag{
			Name:  "no-check-certificate",
			Usage: "do not verify the server's TLS certificate",
		},
		cli.StringFlag{
			Name:  "encoding, enc",
			Value: "text",
			Usage: "output format encoding [text, json]",
		},
		cli.IntFlag{
			Name:  "timeout, t",
			Value: 0,
			Usage: "number of seconds to wait for each response (0: no limit)",
		},
		cli.BoolFlag{
			Name:  "debug, d",
			Usage: "print every request and the raw answers on standard error",
		},
		cli.StringFlag{
			Name:   "basic-auth",
			Usage:  "user[:password] for HTTP Basic authentication (implies --https unless --force-http)",
			EnvVar: "CLUSTER_CREDENTIALS",
		},
		cli.BoolFlag{
			Name:  "force-http, f",
			Usage: "keep plain HTTP when sending basic auth credentials",
		},
	}
	app.Before = c.setup
	app.Commands = c.commands()
	app.Action = groupAction
	prepareCommands(app.Commands)
	return app
}

// prepareCommands makes command groups reject unknown subcommands and
// turns off the library's own argument reordering, which reorderArgs does
// instead.
func prepareCommands(cmds []cli.Command) {
	for i := range cmds {
		if len(cmds[i].Subcommands) > 0 {
			cmds[i].Action = groupAction
			prepareCommands(cmds[i].Subcommands)
			continue
		}
		cmds[i].SkipArgReorder = true
	}
}

// reorderArgs moves the options of the command line's command before its
// arguments, so that options may be given after the arguments
// ("pin add <cid> --name x"). Unlike the library's reordering, it knows
// which options take a value, so "pin add --no-status <cid>" keeps <cid>
// as an argument. Arguments after "--" are left alone.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// Global options: they come before the command.
	for i < len(args) && isOption(args[i]) {
		a := args[i]
		out = append(out, a)
		i++
		if takesValue(app.Flags, a) && i < len(args) {
			out = append(out, args[i])
			i++
		}
	}
	// The command path.
	cmds := app.Commands
	var leaf *cli.Command
	for i < len(args) {
		cmd := findCommand(cmds, args[i])
		if cmd == nil {
			break
		}
		out = append(out, args[i])
		i++
		if len(cmd.Subcommands) == 0 {
			leaf = cmd
			break
		}
		cmds = cmd.Subcommands
	}
	if leaf == nil {
		return append(out, args[i:]...)
	}
	var opts, pos []string
	rest := args[i:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			pos = append(pos, rest[j+1:]...)
			break
		}
		if !isOption(a) {
			pos = append(pos, a)
			continue
		}
		opts = append(opts, a)
		if takesValue(leaf.Flags, a) && j+1 < len(rest) {
			j++
			opts = append(opts, rest[j])
		}
	}
	out = append(out, opts...)
	out = append(out, "--")
	return append(out, pos...)
}

func isOption(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// takesValue reports whether the option a (like "--name" or "-n") is one of
// flags that needs a value in the next argument.
func takesValue(flags []cli.Flag, a string) bool {
	name := strings.TrimLeft(a, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range strings.Split(f.GetName(), ",") {
			if strings.TrimSpace(n) != name {
				continue
			}
			switch f.(type) {
			case cli.BoolFlag, cli.BoolTFlag:
				return false
			default:
				return true
			}
		}
	}
	return false
}

func findCommand(cmds []cli.Command, name string) *cli.Command {
	for i := range cmds {
		if cmds[i].HasName(name) {
			return &cmds[i]
		}
	}
	return nil
}

// groupAction runs for the program or a command group given no valid
// command: it shows the help, or rejects an unknown command.
func groupAction(cc *cli.Context) error {
	if cc.NArg() > 0 {
		name := cc.App.HelpName
		return usageErr("error: unknown command %q (see %s help)", cc.Args().First(), name)
	}
	return cli.ShowAppHelp(cc)
}
