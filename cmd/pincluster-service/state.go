package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

func cmdState(g globals, args []string) error {
	if len(args) == 0 {
		return usageError{"state needs a sub-command: export, import or cleanup"}
	}
	switch args[0] {
	case "export":
		return stateExport(g, args[1:])
	case "import":
		return stateImport(g, args[1:])
	case "cleanup":
		return stateCleanup(g, args[1:])
	}
	return usageError{fmt.Sprintf("unknown state sub-command %q", args[0])}
}

// withConsensus starts only the consensus plugin of the peer, which must not
// be running, and hands it to fn.
func withConsensus(g globals, fn func(ctx context.Context, cons core.Consensus) error) error {
	logger := newLogger(g.logLevel)
	svc, err := config.LoadService(filepath.Join(g.configDir, config.ServiceFile))
	if err != nil {
		return err
	}
	ident, err := config.LoadIdentity(filepath.Join(g.configDir, config.IdentityFile))
	if err != nil {
		return err
	}
	choice, err := svc.Plugin(core.KindConsensus)
	if err != nil {
		return err
	}
	launcher, err := newLauncher(logger, svc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	pl, err := launcher.Launch(ctx, choice, environment(g.configDir, svc, ident, choice.Name, nil), nil)
	if err != nil {
		return fmt.Errorf("%w (is the daemon running? stop it first)", err)
	}
	defer pl.Stop(ctx)
	return fn(ctx, pl.Impl().(core.Consensus))
}

func stateExport(g globals, args []string) error {
	fs := flag.NewFlagSet("state export", flag.ContinueOnError)
	file := fs.String("f", "", "write to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	out := io.Writer(os.Stdout)
	if *file != "" {
		f, err := os.Create(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	w := bufio.NewWriter(out)
	err := withConsensus(g, func(ctx context.Context, cons core.Consensus) error {
		return exportPins(ctx, cons, w)
	})
	if err != nil {
		return err
	}
	return w.Flush()
}

// exportPins writes one JSON pin a line, as IPFS Cluster's export does.
func exportPins(ctx context.Context, cons core.Consensus, w io.Writer) error {
	enc := json.NewEncoder(w)
	for p, err := range cons.ListPins(ctx) {
		if err != nil {
			return err
		}
		if err := enc.Encode(p); err != nil {
			return err
		}
	}
	return nil
}

func stateImport(g globals, args []string) error {
	fs := flag.NewFlagSet("state import", flag.ContinueOnError)
	force := fs.Bool("f", false, "do not ask for confirmation")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"state import needs the file to import (- for stdin)"}
	}
	if !*force && !confirm("The current pinset will be replaced. Continue?") {
		return errors.New("aborted")
	}
	in := io.Reader(os.Stdin)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	return withConsensus(g, func(ctx context.Context, cons core.Consensus) error {
		n, err := importPins(ctx, cons, in)
		if err == nil {
			fmt.Fprintf(os.Stderr, "imported %d pins\n", n)
		}
		return err
	})
}

// importPins replaces the pinset with the pins read from r (one JSON pin a
// line), committing in batches.
func importPins(ctx context.Context, cons core.Consensus, r io.Reader) (int, error) {
	keep := make(map[string]bool)
	var batch []core.PinOp
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := cons.Commit(ctx, batch)
		batch = batch[:0]
		return err
	}
	dec := json.NewDecoder(r)
	for line := 1; ; line++ {
		var p core.Pin
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("pin %d: %w", line, err)
		}
		if !p.Cid.Defined() {
			return n, fmt.Errorf("pin %d: no cid", line)
		}
		if p.Type == 0 {
			p.Type = core.DataType
		}
		keep[p.Cid.KeyString()] = true
		batch = append(batch, core.PinOp{Pin: p})
		n++
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	for p, err := range cons.ListPins(ctx) {
		if err != nil {
			return n, err
		}
		if !keep[p.Cid.KeyString()] {
			batch = append(batch, core.PinOp{Remove: true, Pin: core.Pin{Cid: p.Cid}})
			if len(batch) == importBatch {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, flush()
}

// importBatch is how many pins state import commits at once.
const importBatch = 1000

func stateCleanup(g globals, args []string) error {
	fs := flag.NewFlagSet("state cleanup", flag.ContinueOnError)
	force := fs.Bool("f", false, "do not ask for confirmation")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	svc, err := config.LoadService(filepath.Join(g.configDir, config.ServiceFile))
	if err != nil {
		return err
	}
	choice, err := svc.Plugin(core.KindConsensus)
	if err != nil {
		return err
	}
	dir := filepath.Join(g.configDir, choice.Name)
	// The consensus cannot start while a daemon holds its data: starting it
	// is how a running daemon is told apart.
	if err := withConsensus(g, func(context.Context, core.Consensus) error { return nil }); err != nil {
		return fmt.Errorf("not cleaning up: %w", err)
	}
	if !*force && !confirm(fmt.Sprintf("%s (the pinset and the consensus data) will be deleted. Continue?", dir)) {
		return errors.New("aborted")
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "removed %s\n", dir)
	return nil
}

func confirm(q string) bool {
	fmt.Fprintf(os.Stderr, "%s [y/N]: ", q)
	ans, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	return len(ans) > 0 && (ans[0] == 'y' || ans[0] == 'Y')
}
