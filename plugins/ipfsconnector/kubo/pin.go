package kubo

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// Pin pins every request and streams the results as they complete. At most
// pin_concurrency pin/add calls are in flight to kubo, over every batch.
//
// Each pin follows kubo's progress stream (pin/add?progress=true): the
// request's timeout (pin_timeout when it has none) bounds the time without
// progress, not the whole pin, so a large pin that keeps fetching blocks
// is never cut short, while one whose blocks cannot be found fails once
// nothing new arrived for that long.
func (k *Connector) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		c, cfg, err := k.client()
		if err != nil {
			yield(core.IPFSPinResult{}, err)
			return
		}
		run := func(ctx context.Context, r core.IPFSPinRequest) error {
			timeout := r.Timeout
			if timeout <= 0 {
				timeout = cfg.PinTimeout.D()
			}
			return pinAdd(ctx, c, r, timeout)
		}
		sdk.PinEach(ctx, reqs, len(reqs), c.pinSem, func(r core.IPFSPinRequest) core.Cid { return r.Cid }, run, yield)
	}
}

// pinStalled is the cause of a pin cancelled for making no progress.
type pinStalled struct {
	timeout time.Duration
	nodes   int
}

func (e *pinStalled) Error() string {
	return fmt.Sprintf("pin timed out: kubo made no progress for %s (%d blocks fetched or checked); the content may be unavailable", e.timeout, e.nodes)
}

func (e *pinStalled) Is(target error) bool { return target == context.DeadlineExceeded }

// pinArgs are the pin/add options for a depth: -1 recursive, 0 direct, n
// depth-limited (kubo 0.43 ignores max-depth and pins the whole DAG).
func pinArgs(ci core.Cid, maxDepth int) url.Values {
	q := url.Values{"arg": {ci.String()}, "progress": {"true"}}
	switch {
	case maxDepth < 0:
		q.Set("recursive", "true")
	case maxDepth == 0:
		q.Set("recursive", "false")
	default:
		q.Set("recursive", "true")
		q.Set("max-depth", strconv.Itoa(maxDepth))
	}
	return q
}

// pinAdd pins one CID, following kubo's progress.
func pinAdd(ctx context.Context, c *client, r core.IPFSPinRequest, timeout time.Duration) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stalled := &pinStalled{timeout: timeout}
	watchdog := time.AfterFunc(timeout, func() { cancel(stalled) })
	defer watchdog.Stop()

	resp, err := c.post(pctx, "pin/add", pinArgs(r.Cid, r.MaxDepth), nil, "", nil)
	if err != nil {
		return pinError(ctx, pctx, err)
	}
	type pinLine struct {
		Pins     []string
		Progress int
	}
	done := false
	err = stream(resp, func(l pinLine) bool {
		if l.Progress > stalled.nodes {
			// Progress: the quiet period starts again.
			stalled.nodes = l.Progress
			watchdog.Reset(timeout)
		}
		if l.Pins != nil {
			done = true
		}
		return true
	})
	if err != nil {
		return pinError(ctx, pctx, err)
	}
	if !done {
		return fmt.Errorf("kubo pin/add: the answer ended without confirming the pin")
	}
	return nil
}

// pinError prefers the stall explanation when the watchdog ended the call.
func pinError(parent, pctx context.Context, err error) error {
	if parent.Err() != nil {
		return parent.Err()
	}
	var st *pinStalled
	if errors.As(context.Cause(pctx), &st) {
		return st
	}
	return err
}

// Unpin unpins every CID (pin/rm, recursive or direct); one that kubo does
// not hold as a recursive or direct pin is not an error. With
// unpin_disable, every CID fails and kubo is not called.
func (k *Connector) Unpin(ctx context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		c, cfg, err := k.client()
		if err != nil {
			yield(core.IPFSPinResult{}, err)
			return
		}
		if cfg.UnpinDisable {
			msg := "ipfs unpinning is disallowed by configuration on this peer (" + k.section() + ".unpin_disable)"
			for _, ci := range cids {
				if !yield(core.IPFSPinResult{Cid: ci, Error: msg}, nil) {
					return
				}
			}
			return
		}
		sdk.PinEach(ctx, cids, len(cids), c.pinSem, func(ci core.Cid) core.Cid { return ci }, func(ctx context.Context, ci core.Cid) error {
			uctx, cancel := withTimeout(ctx, cfg.UnpinTimeout.D(), "unpin", "unpin_timeout")
			defer cancel()
			err := c.call(uctx, "pin/rm", url.Values{"arg": {ci.String()}, "recursive": {"true"}}, nil)
			if isNotPinned(err) {
				return nil
			}
			return err
		}, yield)
	}
}

// isNotPinned recognises kubo's answer to the removal of a pin it does not
// have ("not pinned or pinned indirectly").
func isNotPinned(err error) bool {
	var ke *Error
	return errors.As(err, &ke) && strings.Contains(ke.Message, "not pinned")
}

// pinLsLine is one line of a streamed pin/ls.
type pinLsLine struct {
	Cid  string
	Type string
}

// pinListTypes are the listings that make up PinLs: kubo has no type that
// covers recursive and direct pins without also walking every recursive
// DAG for indirect ones.
var pinListTypes = []string{"recursive", "direct"}

// PinLs streams every recursive and direct pin: one streamed pin/ls call
// per type (pin/ls?type=recursive&stream=true, then type=direct), never a
// call per CID. The whole listing is bounded by ipfs_request_timeout.
func (k *Connector) PinLs(ctx context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	return func(yield func(core.IPFSPinInfo, error) bool) {
		c, cfg, err := k.client()
		if err != nil {
			yield(core.IPFSPinInfo{}, err)
			return
		}
		ctx, cancel := withTimeout(ctx, cfg.IPFSRequestTimeout.D(), "kubo pin/ls", "ipfs_request_timeout")
		defer cancel()
		for _, typ := range pinListTypes {
			stopped, err := listPins(ctx, c, typ, func(pi core.IPFSPinInfo) bool { return yield(pi, nil) })
			if stopped {
				return
			}
			if err != nil {
				yield(core.IPFSPinInfo{}, err)
				return
			}
		}
	}
}

// listPins streams the pins of one type; stopped reports that each
// returned false.
func listPins(ctx context.Context, c *client, typ string, each func(core.IPFSPinInfo) bool) (stopped bool, err error) {
	r, err := c.post(ctx, "pin/ls", url.Values{"type": {typ}, "stream": {"true"}}, nil, "", nil)
	if err != nil {
		return false, err
	}
	var convErr error
	err = stream(r, func(l pinLsLine) bool {
		ci, err := core.DecodeCid(l.Cid)
		if err != nil {
			convErr = fmt.Errorf("kubo pin/ls: bad CID %q: %w", l.Cid, err)
			return false
		}
		if !each(core.IPFSPinInfo{Cid: ci, Type: core.IPFSPinStatus(l.Type)}) {
			stopped = true
			return false
		}
		return true
	})
	if err == nil {
		err = convErr
	}
	return stopped, err
}

// pinLsArgsPerCall bounds the CIDs of one pin/ls call (the URL grows by
// about 65 bytes per CID).
const pinLsArgsPerCall = 512

// maxProbeMisses is how many CIDs found unpinned make PinLsCids give up
// asking about the given CIDs and read the whole listing instead.
const maxProbeMisses = 4

// errTooManyMisses makes PinLsCids switch to the whole listing.
var errTooManyMisses = errors.New("too many unpinned CIDs to ask one by one")

// PinLsCids reports how each CID is pinned (recursive, direct, or "").
//
// It asks kubo about the CIDs themselves: one pin/ls call with every CID
// as an argument, first with type=recursive, then type=direct for those
// that were not recursive. Kubo stops such a call at the first CID that is
// not pinned that way ("path '…' is not pinned"), so the call is repeated
// for the CIDs after it; when more than a few CIDs turn out unpinned, one
// streamed listing of all pins answers the rest instead.
func (k *Connector) PinLsCids(ctx context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	c, cfg, err := k.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, cfg.IPFSRequestTimeout.D(), "kubo pin/ls", "ipfs_request_timeout")
	defer cancel()
	out := make([]core.IPFSPinInfo, len(cids))
	pending := make([]int, 0, len(cids))
	for i, ci := range cids {
		out[i] = core.IPFSPinInfo{Cid: ci, Type: core.IPFSPinStatusUnpinned}
		if ci.Defined() {
			pending = append(pending, i)
		}
	}
	misses := 0
	for _, typ := range pinListTypes {
		var err error
		pending, err = probePins(ctx, c, typ, cids, pending, out, &misses)
		if errors.Is(err, errTooManyMisses) {
			return out, listInto(ctx, c, cids, pending, out)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// probePins asks pin/ls?type=typ about the CIDs at pending, records those
// pinned that way in out, and returns the others.
func probePins(ctx context.Context, c *client, typ string, cids []core.Cid, pending []int, out []core.IPFSPinInfo, misses *int) ([]int, error) {
	var rest []int
	for len(pending) > 0 {
		batch := pending[:min(len(pending), pinLsArgsPerCall)]
		args := make([]string, len(batch))
		for j, i := range batch {
			args[j] = cids[i].String()
		}
		r, err := c.post(ctx, "pin/ls", url.Values{"type": {typ}, "stream": {"true"}, "arg": args}, nil, "", nil)
		answered := 0
		var convErr error
		if err == nil {
			err = stream(r, func(l pinLsLine) bool {
				if answered >= len(batch) {
					convErr = fmt.Errorf("kubo pin/ls: more answers than CIDs asked")
					return false
				}
				ci, err := core.DecodeCid(l.Cid)
				i := batch[answered]
				if err != nil || !ci.Equals(cids[i]) {
					convErr = fmt.Errorf("kubo pin/ls: answered %q for %s", l.Cid, cids[i])
					return false
				}
				out[i].Type = core.IPFSPinStatus(typ)
				answered++
				return true
			})
			if err == nil {
				err = convErr
			}
		}
		switch {
		case err == nil && answered == len(batch):
			pending = pending[len(batch):]
			continue
		case err == nil:
			return nil, fmt.Errorf("kubo pin/ls: %d answers for %d CIDs", answered, len(batch))
		case answered >= len(batch) || !isNotPinnedArg(err, args[answered]):
			return nil, err
		}
		// CIDs before the one kubo stopped at are pinned; that one is not.
		rest = append(rest, batch[answered])
		pending = pending[answered+1:]
		*misses++
		if *misses > maxProbeMisses && len(pending) > 0 {
			return append(rest, pending...), errTooManyMisses
		}
	}
	return rest, nil
}

// isNotPinnedArg recognises "path '<arg>' is not pinned".
func isNotPinnedArg(err error, arg string) bool {
	var ke *Error
	return errors.As(err, &ke) && strings.Contains(ke.Message, "'"+arg+"' is not pinned")
}

// listInto answers the CIDs at pending from the whole listing of
// recursive and direct pins.
func listInto(ctx context.Context, c *client, cids []core.Cid, pending []int, out []core.IPFSPinInfo) error {
	want := make(map[string][]int, len(pending))
	for _, i := range pending {
		key := cids[i].KeyString()
		want[key] = append(want[key], i)
	}
	for _, typ := range pinListTypes {
		_, err := listPins(ctx, c, typ, func(pi core.IPFSPinInfo) bool {
			for _, i := range want[pi.Cid.KeyString()] {
				if out[i].Type == core.IPFSPinStatusUnpinned {
					out[i].Type = pi.Type
				}
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}
