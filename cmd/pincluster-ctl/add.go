package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli"

	"github.com/pincluster/pincluster/api/client"
	"github.com/pincluster/pincluster/core"
)

func (c *ctl) addCommand() cli.Command {
	def := client.DefaultAddParams()
	return cli.Command{
		Name:      "add",
		Usage:     "Add a file or directory to ipfs and pin it in the cluster",
		ArgsUsage: "<path|url|->...",
		Description: `This command adds content to the cluster (POST /add): the files are
chunked into an IPFS DAG by the peer, whose blocks go to the IPFS daemons
of the allocated peers, and the root is pinned in the cluster. It prints
one line per file and directory added ("added <CID> <name>"), the root
last.

Directories need -r (hidden files are skipped unless --hidden). With no
path, or with "-", the content is read from standard input. http:// and
https:// URLs are fetched and their bodies added. Several paths are
wrapped in a directory (as with -w).

On a terminal, a progress bar shows the bytes sent and the rate on
standard error. -q prints only the CIDs, -Q only the root's.
--no-stream collects the results before printing them (a JSON array with
--enc=json). --wait waits until the root is pinned.

The pin options are those of "pin add"; the import options (--layout,
--chunker, --raw-leaves, --cid-version, --hash) are kubo's.`,
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "recursive, r", Usage: "add directories recursively"},
			cli.BoolFlag{Name: "quiet, q", Usage: "write only the CIDs"},
			cli.BoolFlag{Name: "quieter, Q", Usage: "write only the final CID"},
			cli.BoolFlag{Name: "no-stream", Usage: "buffer the output and print it once the add is done"},
			cli.BoolFlag{Name: "local", Usage: "send the blocks only to the answering peer's IPFS daemon"},
			cli.StringFlag{Name: "name, n", Usage: "name of the pin"},
			cli.IntFlag{Name: "replication-min, rmin", Usage: "minimum replication factor (0: cluster default, -1: every peer)"},
			cli.IntFlag{Name: "replication-max, rmax", Usage: "maximum replication factor (0: cluster default, -1: every peer)"},
			cli.StringFlag{Name: "expire-in", Usage: "duration after which the pin expires, e.g. 24h"},
			cli.StringSliceFlag{Name: "metadata", Usage: "metadata key=value (repeatable)"},
			cli.StringFlag{Name: "allocations, allocs", Usage: "comma-separated peer IDs to allocate the pin to first"},
			cli.BoolFlag{Name: "no-pin", Usage: "do not pin the content once added"},
			cli.BoolFlag{Name: "wait", Usage: "wait until the root is pinned"},
			cli.DurationFlag{Name: "wait-timeout, wt", Usage: "how long to --wait at most, e.g. 30s (0: no limit)"},
			cli.BoolFlag{Name: "wrap-with-directory, w", Usage: "wrap the added content in a directory"},
			cli.StringFlag{Name: "format", Value: def.Format, Usage: "'unixfs' (add files) or 'car' (import a CAR file with one root)"},
			cli.StringFlag{Name: "layout", Usage: "DAG layout: '' (balanced) or 'trickle'"},
			cli.BoolFlag{Name: "hidden, H", Usage: "include hidden files of directories"},
			cli.StringFlag{Name: "chunker, s", Value: def.Chunker, Usage: "chunker: size-<bytes>, rabin-<min>-<avg>-<max> or buzhash"},
			cli.BoolFlag{Name: "raw-leaves", Usage: "use raw blocks for the leaves"},
			cli.IntFlag{Name: "cid-version", Value: def.CidVersion, Usage: "CID version (1 implies --raw-leaves)"},
			cli.StringFlag{Name: "hash", Value: def.HashFun, Usage: "hash function (anything but sha2-256 implies --cid-version=1)"},
			cli.BoolFlag{Name: "nocopy", Usage: "add URLs without copying their data (implies --raw-leaves; pincluster peers refuse it, IPFS Cluster peers with a filestore accept it)"},
			cli.StringFlag{Name: "stdin-name", Value: "stdin", Usage: "name of the content read from standard input"},
		},
		Action: c.cmdAdd,
	}
}

func (c *ctl) cmdAdd(cc *cli.Context) error {
	paths := []string(cc.Args())
	if len(paths) == 0 {
		if c.stdinIsTerminal() {
			return usageErr("error: need at least one path (or data on standard input)")
		}
		paths = []string{"-"}
	}

	p := client.DefaultAddParams()
	p.ReplicationFactorMin = cc.Int("replication-min")
	p.ReplicationFactorMax = cc.Int("replication-max")
	var err error
	if p.ExpireAt, err = parseExpireIn(cc.String("expire-in")); err != nil {
		return err
	}
	if p.Metadata, err = parseMetadata(cc.StringSlice("metadata")); err != nil {
		return err
	}
	if p.UserAllocations, err = parseAllocations(cc.String("allocations")); err != nil {
		return err
	}
	p.Name = cc.String("name")
	p.Format = cc.String("format")
	p.Recursive = cc.Bool("recursive")
	p.Local = cc.Bool("local")
	p.Layout = cc.String("layout")
	p.Chunker = cc.String("chunker")
	p.RawLeaves = cc.Bool("raw-leaves")
	p.Hidden = cc.Bool("hidden")
	p.Wrap = cc.Bool("wrap-with-directory") || len(paths) > 1
	p.CidVersion = cc.Int("cid-version")
	p.HashFun = cc.String("hash")
	if p.HashFun != client.DefaultAddParams().HashFun {
		p.CidVersion = 1
	}
	if p.CidVersion > 0 {
		p.RawLeaves = true
	}
	p.NoCopy = cc.Bool("nocopy")
	if p.NoCopy {
		p.RawLeaves = true
	}
	p.NoPin = cc.Bool("no-pin")

	files := make([]client.File, 0, len(paths))
	stdinUsed := false
	for _, path := range paths {
		isURL := strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://")
		if p.NoCopy && !isURL {
			return usageErr("error: --nocopy only works with URLs (%s is not one)", path)
		}
		switch {
		case path == "-":
			if stdinUsed {
				return usageErr("error: standard input (-) can only be added once")
			}
			stdinUsed = true
			files = append(files, client.File{Name: cc.String("stdin-name"), Reader: c.stdin})
		case isURL:
			files = append(files, client.File{URL: path})
		default:
			fi, err := os.Lstat(path)
			if err != nil {
				return usageErr("error: %v", err)
			}
			if fi.IsDir() && !p.Recursive {
				return usageErr("error: %s is a directory: use -r to add directories", path)
			}
			files = append(files, client.File{Path: path})
		}
	}

	qq := cc.Bool("quieter")
	q := cc.Bool("quiet") || qq
	buffer := cc.Bool("no-stream")

	var bar *progressBar
	if !qq && c.stderrIsTerminal() {
		bar = newProgressBar(c, totalSize(paths, p.Hidden))
		p.OnProgress = bar.set
		defer bar.stop()
	}

	api, err := c.api(cc)
	if err != nil {
		return err
	}
	var buffered []core.AddedOutput
	var last core.AddedOutput
	for out, err := range api.AddFiles(c.ctx, files, p) {
		if err != nil {
			if bar != nil {
				bar.stop()
			}
			return err
		}
		if !out.Cid.Defined() { // a progress item
			continue
		}
		last = out
		if buffer {
			buffered = append(buffered, out)
			continue
		}
		if !qq {
			if bar != nil {
				bar.clear()
			}
			c.printAdded(out, q)
		}
	}
	if bar != nil {
		bar.stop()
	}
	if !last.Cid.Defined() {
		return errors.New("the peer answered without any added item")
	}
	switch {
	case buffer && qq:
		c.printAddedList([]core.AddedOutput{last}, true)
	case buffer:
		c.printAddedList(buffered, q)
	case qq:
		c.printAdded(last, true)
	}

	if cc.Bool("wait") && !p.NoPin {
		// The limit is the pin's effective replication_factor_min, read
		// back from the pinset; failing that, the one we asked for.
		rmin := p.ReplicationFactorMin
		if pin, err := api.Allocation(c.ctx, last.Cid); err == nil {
			rmin = pin.ReplicationFactorMin
		}
		limit := client.WaitLimit(core.Pin{PinOptions: core.PinOptions{ReplicationFactorMin: rmin}}, core.TrackerStatusPinned, 0)
		if _, err := c.wait(api, last.Cid, core.TrackerStatusPinned, limit, cc.Duration("wait-timeout")); err != nil {
			return err
		}
	}
	return nil
}

// totalSize is the number of bytes of the files to add, for the progress
// bar (0 when unknown: standard input or URLs).
func totalSize(paths []string, hidden bool) int64 {
	var total int64
	for _, p := range paths {
		if p == "-" || strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
			return 0
		}
		_ = filepath.Walk(p, func(path string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			if path != p && !hidden && strings.HasPrefix(fi.Name(), ".") {
				if fi.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if fi.Mode().IsRegular() {
				total += fi.Size()
			}
			return nil
		})
	}
	return total
}
