package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli"

	"github.com/pincluster/pincluster/api/client"
	"github.com/pincluster/pincluster/core"
)

// waitCheckFreq is how often --wait polls the status.
const waitCheckFreq = time.Second

// statusDelay is how long pin add/rm/update wait before reading the
// status they print, as ipfs-cluster-ctl does.
const statusDelay = time.Second

func (c *ctl) commands() []cli.Command {
	return []cli.Command{
		{
			Name:      "id",
			Usage:     "Retrieve peer information",
			ArgsUsage: " ",
			Description: `This command displays information about the peer that the tool is
contacting (GET /id).`,
			Action: c.cmdID,
		},
		{
			Name:        "peers",
			Usage:       "List and manage cluster peers",
			Description: `This command can be used to list and manage cluster peers.`,
			Subcommands: []cli.Command{
				{
					Name:      "ls",
					Usage:     "list the cluster peers",
					ArgsUsage: " ",
					Description: `This command lists the cluster peers with the information that each of
them reports about itself (GET /peers).`,
					Action: c.cmdPeersLs,
				},
				{
					Name:      "rm",
					Usage:     "remove a peer from the cluster",
					ArgsUsage: "<peer ID>",
					Description: `This command removes a peer from the cluster
(DELETE /peers/<peer ID>). The peer shuts down when removed.`,
					Action: c.cmdPeersRm,
				},
			},
		},
		c.addCommand(),
		{
			Name:        "pin",
			Usage:       "Pin and unpin and list items in the cluster",
			Description: `This command groups the commands that manage the pinset.`,
			Subcommands: []cli.Command{
				c.pinAddCommand(),
				c.pinRmCommand(),
				c.pinUpdateCommand(),
				{
					Name:      "ls",
					Usage:     "List items in the cluster pinset",
					ArgsUsage: "[CID]",
					Description: `This command lists the pinset (GET /allocations?filter=...) or, given a
CID, its pin (GET /allocations/<CID>): options, replication factors and
allocations. To see the status of the pins on the peers, use "status".

--filter takes a comma-separated list of pin types: pin, meta-pin,
clusterdag-pin, shard-pin, or all.`,
					Flags: []cli.Flag{
						cli.StringFlag{Name: "filter", Value: "all", Usage: "comma-separated list of pin types"},
					},
					Action: c.cmdPinLs,
				},
			},
		},
		{
			Name:      "status",
			Usage:     "Retrieve the status of tracked items",
			ArgsUsage: "[CID...]",
			Description: `This command retrieves the status of the CIDs on every peer of the cluster:
of one CID (GET /pins/<CID>), of several (GET /pins?cids=...), or of the
whole pinset (GET /pins?filter=...). With --local, only the answering
peer's status is shown.

--filter (without CIDs) keeps the items whose status on some peer is one of
a comma-separated list: ` + strings.Join(statusNames(), ", ") + `.`,
			Flags: []cli.Flag{
				localFlag(),
				cli.StringFlag{Name: "filter", Usage: "comma-separated list of statuses"},
			},
			Action: c.cmdStatus,
		},
		{
			Name:      "recover",
			Usage:     "Recover tracked items in error state",
			ArgsUsage: "[CID]",
			Description: `This command re-queues the pin or unpin of items in an error state, for
one CID (POST /pins/<CID>/recover) or for every failed item
(POST /pins/recover), and shows their status.`,
			Flags:  []cli.Flag{localFlag()},
			Action: c.cmdRecover,
		},
		{
			Name:      "sync",
			Usage:     "Re-check tracked items against IPFS",
			ArgsUsage: "[CID]",
			Description: `This command re-checks the status of one CID (POST /pins/<CID>/sync) or
of every pin (POST /pins/sync) against the IPFS daemons and shows it.
These endpoints are pincluster's: IPFS Cluster v1.1 peers answer them with
an error.`,
			Flags:  []cli.Flag{localFlag()},
			Action: c.cmdSync,
		},
		{
			Name:      "version",
			Usage:     "Retrieve the peer's software version",
			ArgsUsage: " ",
			Description: `This command shows the software version of the peer (GET /version). The
version of pincluster-ctl itself is shown by --version.`,
			Action: c.cmdVersion,
		},
		{
			Name:        "health",
			Usage:       "Cluster monitoring information",
			Description: "This command groups the commands that show the health of the cluster.",
			Subcommands: []cli.Command{
				{
					Name:      "graph",
					Usage:     "create a graph displaying connectivity of the cluster peers",
					ArgsUsage: " ",
					Description: `This command queries the connectivity graph of the cluster
(GET /health/graph) and prints it in the DOT language, which graphviz
renders, e.g.:

  pincluster-ctl health graph | dot -Tsvg > cluster.svg

With --enc=json the graph is printed as the peer returned it.`,
					Flags: []cli.Flag{
						cli.StringFlag{Name: "file, f", Usage: "write the graph to this file instead of standard output"},
						cli.BoolFlag{Name: "all-ipfs-peers", Usage: "also show the IPFS peers that are not attached to a cluster peer"},
					},
					Action: c.cmdHealthGraph,
				},
				{
					Name:      "metrics",
					Usage:     "List latest metrics logged by this peer",
					ArgsUsage: "[metric name]",
					Description: `This command lists the names of the metrics the peer knows
(GET /monitor/metrics) or, given a name, the latest valid metric of that
name of every peer (GET /monitor/metrics/<name>).`,
					Action: c.cmdHealthMetrics,
				},
				{
					Name:        "alerts",
					Usage:       "List the latest expired metric alerts",
					ArgsUsage:   " ",
					Description: `This command lists the alerts raised when a peer's metric expired (GET /health/alerts).`,
					Action:      c.cmdHealthAlerts,
				},
				{
					Name:        "bandwidth",
					Usage:       "List the libp2p traffic by protocol",
					ArgsUsage:   " ",
					Description: `This command shows the libp2p traffic of the peer by protocol (GET /health/bandwidth).`,
					Action:      c.cmdHealthBandwidth,
				},
			},
		},
		{
			Name:        "ipfs",
			Usage:       "Manage IPFS daemon",
			Description: "This command groups the commands that act on the IPFS daemons.",
			Subcommands: []cli.Command{
				{
					Name:      "gc",
					Usage:     "run garbage collection on the IPFS repos of the cluster peers",
					ArgsUsage: " ",
					Description: `This command runs a garbage collection on the IPFS daemons of every peer
(POST /ipfs/gc), or only on the answering peer's with --local, and lists
the CIDs that were removed.`,
					Flags:  []cli.Flag{localFlag()},
					Action: c.cmdIPFSGC,
				},
			},
		},
		{
			Name:        "plugins",
			Usage:       "List and reload the peer's plugins",
			Description: "This command groups the commands about the plugins a pincluster peer runs.\nIPFS Cluster peers have no plugins and answer these with an error.",
			Subcommands: []cli.Command{
				{
					Name:      "ls",
					Usage:     "list the plugins of the peer, their processes and restarts",
					ArgsUsage: " ",
					Description: `This command lists each plugin the peer runs (GET /plugins): its kind,
name and version, the protocol version it speaks, where it comes from
(built-in or an executable), its process, state, restarts, last error and
uptime.`,
					Action: c.cmdPluginsLs,
				},
				{
					Name:      "reload",
					Usage:     "apply service.json's plugin sections on the running peer",
					ArgsUsage: " ",
					Description: `This command makes the peer re-read the plugin sections of its
service.json (POST /plugins/reload). A plugin kind that keeps no state
(allocator, IPFS connector) is swapped at once: the new plugin is started
and checked before the old one stops, and a failed start leaves the old
one in place. A change to a kind that keeps state (consensus, pin
tracker) applies at the next start. The same happens on SIGHUP.`,
					Action: c.cmdPluginsReload,
				},
			},
		},
		{
			Name:   "commands",
			Usage:  "List all commands",
			Hidden: true,
			Action: c.cmdCommands,
		},
	}
}

func localFlag() cli.Flag {
	return cli.BoolFlag{Name: "local", Usage: "only the answering peer's information"}
}

func statusNames() []string {
	var names []string
	for s := core.TrackerStatusClusterError; s <= core.TrackerStatusUnexpectedlyUnpinned; s <<= 1 {
		names = append(names, s.String())
	}
	return append(names, "error", "queued")
}

// checkArgs fails unless the command got between lo and hi arguments
// (hi < 0: no upper bound).
func checkArgs(cc *cli.Context, lo, hi int) error {
	n := cc.NArg()
	if n < lo || (hi >= 0 && n > hi) {
		usage := strings.TrimSpace(cc.Command.ArgsUsage)
		if usage == "" {
			return usageErr("error: %s takes no arguments", cc.Command.HelpName)
		}
		return usageErr("error: wrong number of arguments. Usage: %s %s", cc.Command.HelpName, usage)
	}
	return nil
}

// optionalArg returns the one optional argument of a command, "" when
// there is none. An empty argument counts as none, as ipfs-cluster-ctl
// reads it (pin ls "" lists everything).
func optionalArg(cc *cli.Context) string { return cc.Args().First() }

func parseCid(s string) (core.Cid, error) {
	ci, err := core.DecodeCid(s)
	if err != nil {
		return core.UndefCid, usageErr("error: invalid CID %q: %v", s, err)
	}
	return ci, nil
}

// printStream prints every item of a stream, stopping at the first error.
func printStream[T any](c *ctl, seq iter.Seq2[T, error]) error {
	for v, err := range seq {
		if err != nil {
			return err
		}
		c.print(v)
	}
	return nil
}

func (c *ctl) cmdID(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	id, err := api.ID(c.ctx)
	if err != nil {
		return err
	}
	c.print(id)
	return nil
}

func (c *ctl) cmdPeersLs(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	return printStream(c, api.Peers(c.ctx))
}

func (c *ctl) cmdPeersRm(cc *cli.Context) error {
	if err := checkArgs(cc, 1, 1); err != nil {
		return err
	}
	pid, err := core.DecodePeerID(cc.Args().First())
	if err != nil {
		return usageErr("error: invalid peer ID %q: %v", cc.Args().First(), err)
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	return api.PeerRm(c.ctx, pid)
}

func (c *ctl) cmdPinLs(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 1); err != nil {
		return err
	}
	var filter core.PinType
	for _, name := range strings.Split(cc.String("filter"), ",") {
		t := core.PinTypeFromString(strings.TrimSpace(name))
		if t == core.BadType {
			return usageErr("error: invalid pin type %q in --filter (use pin, meta-pin, clusterdag-pin, shard-pin or all)", name)
		}
		filter |= t
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	if arg := optionalArg(cc); arg != "" {
		ci, err := parseCid(arg)
		if err != nil {
			return err
		}
		pin, err := api.Allocation(c.ctx, ci)
		if err != nil {
			return err
		}
		c.print(pin)
		return nil
	}
	return printStream(c, api.Allocations(c.ctx, filter))
}

func (c *ctl) cmdStatus(cc *cli.Context) error {
	filterStr := cc.String("filter")
	filter := core.ParseStatusFilter(filterStr)
	if filter == core.TrackerStatusUndefined && filterStr != "" {
		return usageErr("error: invalid --filter %q (use a comma-separated list of: %s)", filterStr, strings.Join(statusNames(), ", "))
	}
	cids := make([]core.Cid, 0, cc.NArg())
	for _, a := range cc.Args() {
		ci, err := parseCid(a)
		if err != nil {
			return err
		}
		cids = append(cids, ci)
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	local := cc.Bool("local")
	switch len(cids) {
	case 0:
		return printStream(c, api.StatusAll(c.ctx, filter, local))
	case 1:
		gpi, err := api.Status(c.ctx, cids[0], local)
		if err != nil {
			return err
		}
		c.print(gpi)
		return nil
	default:
		return printStream(c, api.StatusCids(c.ctx, cids, local))
	}
}

// cidOrAll runs one of the commands that take an optional CID.
func (c *ctl) cidOrAll(cc *cli.Context,
	one func(context.Context, core.Cid, bool) (core.GlobalPinInfo, error),
	all func(context.Context, bool) iter.Seq2[core.GlobalPinInfo, error]) error {
	if err := checkArgs(cc, 0, 1); err != nil {
		return err
	}
	local := cc.Bool("local")
	if arg := optionalArg(cc); arg != "" {
		ci, err := parseCid(arg)
		if err != nil {
			return err
		}
		gpi, err := one(c.ctx, ci, local)
		if err != nil {
			return err
		}
		c.print(gpi)
		return nil
	}
	return printStream(c, all(c.ctx, local))
}

func (c *ctl) cmdRecover(cc *cli.Context) error {
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	return c.cidOrAll(cc, api.Recover, api.RecoverAll)
}

func (c *ctl) cmdSync(cc *cli.Context) error {
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	return c.cidOrAll(cc, api.Sync, api.SyncAll)
}

func (c *ctl) cmdVersion(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	v, err := api.Version(c.ctx)
	if err != nil {
		return err
	}
	c.print(v)
	return nil
}

func (c *ctl) cmdHealthGraph(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	g, err := api.ConnectGraph(c.ctx)
	if err != nil {
		return err
	}
	var w io.Writer = c.stdout
	if name := cc.String("file"); name != "" {
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if c.enc == "json" {
		return writeJSON(w, g)
	}
	_, err = io.WriteString(w, makeDot(g, cc.Bool("all-ipfs-peers")))
	return err
}

func (c *ctl) cmdHealthMetrics(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 1); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	name := optionalArg(cc)
	if name == "" {
		names, err := api.MetricNames(c.ctx)
		if err != nil {
			return err
		}
		c.print(names)
		return nil
	}
	metrics, err := api.Metrics(c.ctx, name)
	if err != nil {
		return err
	}
	c.print(metrics)
	return nil
}

func (c *ctl) cmdHealthAlerts(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	alerts, err := api.Alerts(c.ctx)
	if err != nil {
		return err
	}
	c.print(alerts)
	return nil
}

func (c *ctl) cmdHealthBandwidth(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	bw, err := api.BandwidthByProtocol(c.ctx)
	if err != nil {
		return err
	}
	if bw == nil && c.enc == "text" {
		fmt.Fprintln(c.stdout, "Bandwidth statistics are not available: the peer does not measure its libp2p traffic (GET /health/bandwidth answered null).")
		return nil
	}
	c.print(bw)
	return nil
}

func (c *ctl) cmdIPFSGC(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	gc, err := api.RepoGC(c.ctx, cc.Bool("local"))
	if err != nil {
		return err
	}
	c.print(gc)
	return nil
}

func (c *ctl) cmdPluginsLs(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	infos, err := api.Plugins(c.ctx)
	if err != nil {
		return err
	}
	c.print(infos)
	return nil
}

func (c *ctl) cmdPluginsReload(cc *cli.Context) error {
	if err := checkArgs(cc, 0, 0); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	results, err := api.ReloadPlugins(c.ctx)
	if err != nil {
		return err
	}
	c.print(results)
	return nil
}

func (c *ctl) cmdCommands(cc *cli.Context) error {
	var walk func(prefix string, cmds []cli.Command)
	walk = func(prefix string, cmds []cli.Command) {
		for _, cmd := range cmds {
			if cmd.Hidden || cmd.Name == "help" {
				continue
			}
			name := prefix + " " + cmd.Name
			if len(cmd.Subcommands) > 0 {
				walk(name, cmd.Subcommands)
				continue
			}
			fmt.Fprintln(c.stdout, name)
		}
	}
	walk(programName, cc.App.Commands)
	return nil
}

// ---- pin add / rm / update ----

func waitFlags(withLimit bool) []cli.Flag {
	flags := []cli.Flag{
		cli.BoolFlag{Name: "no-status, ns", Usage: "print the pin instead of fetching and printing its status"},
		cli.BoolFlag{Name: "wait, w", Usage: "wait until the target status is reached on the peers"},
		cli.DurationFlag{Name: "wait-timeout, wt", Usage: "how long to --wait at most, e.g. 30s (0: no limit)"},
	}
	if withLimit {
		flags = append(flags, cli.IntFlag{Name: "wait-limit, wl", Usage: "number of peers that must reach the status (default: the pin's replication_factor_min, or every peer)"})
	}
	return flags
}

func (c *ctl) pinAddCommand() cli.Command {
	return cli.Command{
		Name:      "add",
		Usage:     "Pin an item in the cluster",
		ArgsUsage: "<CID|path>",
		Description: `This command pins a CID or an IPFS path (/ipfs/<CID>/a/b, /ipns/...) in the
cluster (POST /pins/ipfs/<CID>?...): the peers chosen by the allocator
pin it on their IPFS daemons. Then, unless --no-status, it waits a second
and prints the status (GET /pins/<CID>).

--replication sets both factors; --rmin/--rmax set them separately (0: the
cluster's defaults; -1: every peer). --allocations gives peers to use
first. --metadata k=v may be repeated. --expire-in (e.g. 24h) makes the
pin expire. --wait waits until the pin is pinned on --wait-limit peers
(default: replication_factor_min of the pin).`,
		Flags: append([]cli.Flag{
			cli.IntFlag{Name: "replication, r", Usage: "replication factor, sets both min and max (0: cluster default)"},
			cli.IntFlag{Name: "replication-min, rmin", Usage: "minimum replication factor (0: cluster default, -1: every peer)"},
			cli.IntFlag{Name: "replication-max, rmax", Usage: "maximum replication factor (0: cluster default, -1: every peer)"},
			cli.StringFlag{Name: "allocations, allocs", Usage: "comma-separated peer IDs to allocate the pin to first"},
			cli.StringFlag{Name: "name, n", Usage: "name of the pin"},
			cli.StringFlag{Name: "mode", Value: "recursive", Usage: "pin mode: recursive or direct"},
			cli.StringFlag{Name: "expire-in", Usage: "duration after which the pin expires, e.g. 1h30m"},
			cli.StringSliceFlag{Name: "metadata", Usage: "metadata key=value (repeatable)"},
		}, waitFlags(true)...),
		Action: c.cmdPinAdd,
	}
}

func (c *ctl) pinRmCommand() cli.Command {
	return cli.Command{
		Name:      "rm",
		Usage:     "Unpin an item from the cluster",
		ArgsUsage: "<CID|path>",
		Description: `This command unpins a CID or an IPFS path from the cluster
(DELETE /pins/ipfs/<CID>). Then, unless --no-status, it waits a second
and prints the status (GET /pins/<CID>). --wait waits until every peer
reports it unpinned.`,
		Flags:  waitFlags(true),
		Action: c.cmdPinRm,
	}
}

func (c *ctl) pinUpdateCommand() cli.Command {
	return cli.Command{
		Name:      "update",
		Usage:     "Pin a new item based on an existing one",
		ArgsUsage: "<existing CID> <new CID|path>",
		Description: `This command pins a new CID with the options and allocations of an existing
pin (POST /pins/ipfs/<new>?pin-update=<existing>). The existing pin is
kept: remove it with "pin rm" when the new one is pinned.`,
		Flags: append([]cli.Flag{
			cli.StringFlag{Name: "name, n", Usage: "name of the new pin (default: the existing pin's)"},
			cli.StringFlag{Name: "expire-in", Usage: "duration after which the new pin expires"},
		}, waitFlags(true)...),
		Action: c.cmdPinUpdate,
	}
}

func parseExpireIn(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, usageErr("error: invalid --expire-in %q: %v", s, err)
	}
	return time.Now().Add(d), nil
}

func parseMetadata(items []string) (map[string]string, error) {
	m := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, usageErr("error: invalid --metadata %q: metadata must be in the format key=value", it)
		}
		m[k] = v
	}
	return m, nil
}

func parseAllocations(s string) ([]core.PeerID, error) {
	if s == "" {
		return nil, nil
	}
	var out []core.PeerID
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		pid, err := core.DecodePeerID(p)
		if err != nil {
			return nil, usageErr("error: invalid peer ID %q in --allocations: %v", p, err)
		}
		out = append(out, pid)
	}
	return out, nil
}

func (c *ctl) cmdPinAdd(cc *cli.Context) error {
	if err := checkArgs(cc, 1, 1); err != nil {
		return err
	}
	rmin, rmax := cc.Int("replication-min"), cc.Int("replication-max")
	if r := cc.Int("replication"); r != 0 {
		rmin, rmax = r, r
	}
	mode := cc.String("mode")
	if mode != "recursive" && mode != "direct" {
		return usageErr("error: invalid --mode %q (use recursive or direct)", mode)
	}
	expireAt, err := parseExpireIn(cc.String("expire-in"))
	if err != nil {
		return err
	}
	meta, err := parseMetadata(cc.StringSlice("metadata"))
	if err != nil {
		return err
	}
	allocs, err := parseAllocations(cc.String("allocations"))
	if err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	opts := core.PinOptions{
		ReplicationFactorMin: rmin,
		ReplicationFactorMax: rmax,
		Name:                 cc.String("name"),
		Mode:                 core.PinModeFromString(mode),
		UserAllocations:      allocs,
		ExpireAt:             expireAt,
		Metadata:             meta,
	}
	pin, err := api.PinPath(c.ctx, cc.Args().First(), opts)
	if err != nil {
		return err
	}
	return c.afterPin(cc, api, pin, core.TrackerStatusPinned)
}

func (c *ctl) cmdPinRm(cc *cli.Context) error {
	if err := checkArgs(cc, 1, 1); err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	pin, err := api.UnpinPath(c.ctx, cc.Args().First())
	if err != nil {
		return err
	}
	return c.afterPin(cc, api, pin, core.TrackerStatusUnpinned)
}

func (c *ctl) cmdPinUpdate(cc *cli.Context) error {
	if err := checkArgs(cc, 2, 2); err != nil {
		return err
	}
	from, err := parseCid(cc.Args().Get(0))
	if err != nil {
		return err
	}
	expireAt, err := parseExpireIn(cc.String("expire-in"))
	if err != nil {
		return err
	}
	api, err := c.api(cc)
	if err != nil {
		return err
	}
	opts := core.PinOptions{Name: cc.String("name"), ExpireAt: expireAt}
	pin, err := api.PinUpdate(c.ctx, from, cc.Args().Get(1), opts)
	if err != nil {
		return err
	}
	return c.afterPin(cc, api, pin, core.TrackerStatusPinned)
}

// afterPin handles --wait and --no-status after a pin or an unpin, as
// ipfs-cluster-ctl does: wait for the target if asked; print the pin with
// --no-status, else the status (read after a second unless waiting
// already read it).
func (c *ctl) afterPin(cc *cli.Context, api *client.Client, pin core.Pin, target core.TrackerStatus) error {
	var status core.GlobalPinInfo
	if cc.Bool("wait") {
		limit := client.WaitLimit(pin, target, cc.Int("wait-limit"))
		var err error
		status, err = c.wait(api, pin.Cid, target, limit, cc.Duration("wait-timeout"))
		if err != nil {
			return err
		}
	}
	if cc.Bool("no-status") {
		c.print(pin)
		return nil
	}
	if !status.Cid.Defined() {
		select {
		case <-time.After(statusDelay):
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
		var err error
		status, err = api.Status(c.ctx, pin.Cid, false)
		if err != nil {
			return err
		}
	}
	c.print(status)
	return nil
}

// wait polls the status of ci until target is reached on limit peers (0:
// every peer), bounded by timeout when it is not 0.
func (c *ctl) wait(api *client.Client, ci core.Cid, target core.TrackerStatus, limit int, timeout time.Duration) (core.GlobalPinInfo, error) {
	ctx := c.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	gpi, err := api.WaitFor(ctx, client.WaitParams{Cid: ci, Target: target, Limit: limit, CheckFreq: waitCheckFreq})
	if err != nil {
		var we *client.WaitError
		if errors.As(err, &we) {
			c.print(we.Status)
			return gpi, &exitError{code: exitFailure, msg: "error waiting for pin status: " + we.Error()}
		}
		return gpi, fmt.Errorf("waiting for pin status: %w", err)
	}
	return gpi, nil
}
