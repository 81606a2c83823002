package stateless

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/pincluster/pincluster/core"
)

// This file derives statuses (spec §5.1, "Status semantics"): an operation
// in the tracker gives pin_queued, pinning, pin_error, unpin_queued,
// unpinning or unpin_error; otherwise the pinset and IPFS decide: a meta-pin
// is sharded, a pin allocated elsewhere is remote, a pin IPFS holds (direct
// or recursive) is pinned, any other pin is unexpectedly_unpinned, and a CID
// outside the pinset is unpinned.

const errUnexpectedlyUnpinned = "the item should be pinned but it is not"

// derivedStatuses are the statuses that need the pinset.
const derivedStatuses = core.TrackerStatusPinned | core.TrackerStatusUnexpectedlyUnpinned |
	core.TrackerStatusSharded | core.TrackerStatusRemote

func (e *engine) pinInfo(p core.Pin, st core.TrackerStatus, ts time.Time) core.PinInfo {
	allocs := p.Allocations
	if allocs == nil {
		allocs = []core.PeerID{}
	}
	return core.PinInfo{
		Cid:         p.Cid,
		Name:        p.Name,
		Peer:        e.env.PeerID,
		Allocations: allocs,
		Origins:     p.Origins,
		Created:     p.Timestamp,
		Metadata:    p.Metadata,
		PinInfoShort: core.PinInfoShort{
			PeerName: e.env.PeerName,
			Status:   st,
			TS:       ts,
		},
	}
}

func (e *engine) opInfoLocked(op *operation) core.PinInfo {
	info := e.pinInfo(op.pin, op.status(), op.ts)
	info.Error = op.err
	info.AttemptCount = op.attempts
	info.PriorityPin = op.priority
	return info
}

// derive gives the status of a pin of the pinset that has no operation;
// held reports whether IPFS holds it (only asked for pins allocated here).
func (e *engine) derive(p core.Pin, held func() bool) core.PinInfo {
	switch {
	case p.Type == core.MetaType:
		return e.pinInfo(p, core.TrackerStatusSharded, p.Timestamp)
	case !p.IsAllocatedTo(e.env.PeerID):
		return e.pinInfo(p, core.TrackerStatusRemote, p.Timestamp)
	case held():
		return e.pinInfo(p, core.TrackerStatusPinned, p.Timestamp)
	default:
		info := e.pinInfo(p, core.TrackerStatusUnexpectedlyUnpinned, p.Timestamp)
		info.Error = errUnexpectedlyUnpinned
		return info
	}
}

// needsIPFS reports whether derive would ask about IPFS.
func (e *engine) needsIPFS(p core.Pin) bool {
	return p.Type != core.MetaType && p.IsAllocatedTo(e.env.PeerID)
}

func (e *engine) unpinnedInfo(c core.Cid, now time.Time) core.PinInfo {
	return e.pinInfo(core.Pin{Cid: c, Timestamp: now}, core.TrackerStatusUnpinned, now)
}

func clusterError(info core.PinInfo, err error, now time.Time) core.PinInfo {
	info.Status = core.TrackerStatusClusterError
	info.Error = err.Error()
	info.TS = now
	return info
}

// status reports each CID's status and, for those found in the pinset
// without an operation, their pin. When held is nil, IPFS is asked with one
// PinLsCids call for the CIDs that need it.
func (e *engine) status(ctx context.Context, cids []core.Cid, held map[string]struct{}) ([]core.PinInfo, []core.Pin, error) {
	infos := make([]core.PinInfo, len(cids))
	pins := make([]core.Pin, len(cids))
	var todo []int
	e.mu.Lock()
	for i, c := range cids {
		if op := e.ops[c]; op != nil {
			infos[i] = e.opInfoLocked(op)
		} else {
			todo = append(todo, i)
		}
	}
	e.mu.Unlock()

	now := time.Now()
	var ask []int
	for _, i := range todo {
		c := cids[i]
		p, err := e.host.GetPin(ctx, c)
		switch {
		case errors.Is(err, core.ErrPinNotFound):
			infos[i] = e.unpinnedInfo(c, now)
		case err != nil:
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			infos[i] = clusterError(e.pinInfo(core.Pin{Cid: c}, 0, now), fmt.Errorf("reading the pinset: %w", err), now)
		case held == nil && e.needsIPFS(p):
			pins[i] = p
			ask = append(ask, i)
		default:
			pins[i] = p
			infos[i] = e.derive(p, func() bool { _, ok := held[mhKey(c)]; return ok })
		}
	}
	if len(ask) > 0 {
		q := make([]core.Cid, len(ask))
		for j, i := range ask {
			q[j] = cids[i]
		}
		res, err := e.host.PinLsCids(ctx, q)
		if err == nil && len(res) != len(q) {
			err = fmt.Errorf("PinLsCids answered %d entries for %d CIDs", len(res), len(q))
		}
		if err != nil && ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		for j, i := range ask {
			if err != nil {
				infos[i] = clusterError(e.pinInfo(pins[i], 0, now), fmt.Errorf("asking IPFS: %w", err), now)
				continue
			}
			infos[i] = e.derive(pins[i], res[j].Type.IsPinned)
		}
	}
	// An operation that started meanwhile is the newer truth.
	e.mu.Lock()
	for _, i := range todo {
		if op := e.ops[cids[i]]; op != nil {
			infos[i] = e.opInfoLocked(op)
		}
	}
	e.mu.Unlock()
	return infos, pins, nil
}

// statusAll streams the pinset's statuses that match filter. A filter that
// excludes every status derived from the pinset lists the operation
// tracker alone, which includes operations on CIDs no longer in the pinset.
// Pinned and unexpectedly_unpinned need IPFS's pin list: it is read once
// into a set (memory proportional to the number of IPFS pins) unless held
// is given, then the pinset is streamed.
func (e *engine) statusAll(ctx context.Context, filter core.TrackerStatus, held map[string]struct{}) iter.Seq2[core.PinInfo, error] {
	return func(yield func(core.PinInfo, error) bool) {
		if !filter.Match(derivedStatuses) {
			for info := range e.opInfos(filter) {
				if !yield(info, nil) {
					return
				}
			}
			return
		}
		if held == nil && filter.Match(core.TrackerStatusPinned|core.TrackerStatusUnexpectedlyUnpinned) {
			var err error
			if held, err = e.ipfsPinned(ctx); err != nil {
				yield(core.PinInfo{}, err)
				return
			}
		}
		for p, err := range e.host.ListPins(ctx) {
			if err != nil {
				yield(core.PinInfo{}, fmt.Errorf("listing the pinset: %w", err))
				return
			}
			e.mu.Lock()
			op := e.ops[p.Cid]
			var info core.PinInfo
			if op != nil {
				info = e.opInfoLocked(op)
			}
			e.mu.Unlock()
			if op == nil {
				if held == nil && e.needsIPFS(p) {
					continue // pinned or unexpectedly_unpinned: not asked for
				}
				info = e.derive(p, func() bool { _, ok := held[mhKey(p.Cid)]; return ok })
			}
			if !info.Status.Match(filter) {
				continue
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// opInfos streams the operations matching filter, each as it is when it
// is sent, in no particular order. The lock is held to pick them and then
// for one at a time only, so that a reader that stops early (is anything
// queued?) costs little however long the queue.
func (e *engine) opInfos(filter core.TrackerStatus) iter.Seq[core.PinInfo] {
	return func(yield func(core.PinInfo) bool) {
		e.mu.Lock()
		var picked []*operation
		for _, op := range e.ops {
			if op.status().Match(filter) {
				picked = append(picked, op)
			}
		}
		e.mu.Unlock()
		for _, op := range picked {
			e.mu.Lock()
			current := e.ops[op.pin.Cid] == op
			info := e.opInfoLocked(op)
			e.mu.Unlock()
			if !current || !info.Status.Match(filter) {
				continue // finished or changed since it was picked
			}
			if !yield(info) {
				return
			}
		}
	}
}

// recover re-queues the CIDs whose status is an error; see Tracker.Recover.
func (e *engine) recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	infos, pins, err := e.status(ctx, cids, nil)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClosed
	}
	now := time.Now()
	var full error
	for i, c := range cids {
		var p core.Pin
		var typ opType
		op := e.ops[c]
		switch st := infos[i].Status; {
		case st == core.TrackerStatusPinError || st == core.TrackerStatusUnpinError:
			if op == nil || op.phase != phaseError {
				continue // changed meanwhile
			}
			p, typ = op.pin, op.typ
		case st == core.TrackerStatusUnexpectedlyUnpinned && op == nil:
			p, typ = pins[i], opPin
		default:
			continue
		}
		if err := e.enqueueLocked(p, typ, now); err != nil {
			full = fmt.Errorf("%w (recovering %s)", err, c)
			continue
		}
		infos[i] = e.opInfoLocked(e.ops[c])
	}
	return infos, full
}

// recoverAll re-queues every errored operation, then every pin allocated
// here that IPFS does not hold, and streams what it re-queued.
func (e *engine) recoverAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	return func(yield func(core.PinInfo, error) bool) {
		e.mu.Lock()
		var errored []core.Cid
		for c, op := range e.ops {
			if op.phase == phaseError {
				errored = append(errored, c)
			}
		}
		e.mu.Unlock()
		slices.SortFunc(errored, func(a, b core.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })

		// requeue re-queues one CID with what decide answers for its
		// current operation; ok reports whether it did.
		requeue := func(c core.Cid, decide func(op *operation) (core.Pin, opType, bool)) (core.PinInfo, bool, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.closed {
				return core.PinInfo{}, false, errClosed
			}
			pin, typ, ok := decide(e.ops[c])
			if !ok {
				return core.PinInfo{}, false, nil
			}
			if err := e.enqueueLocked(pin, typ, time.Now()); err != nil {
				return core.PinInfo{}, false, err
			}
			return e.opInfoLocked(e.ops[c]), true, nil
		}
		for _, c := range errored {
			info, ok, err := requeue(c, func(op *operation) (core.Pin, opType, bool) {
				if op == nil || op.phase != phaseError {
					return core.Pin{}, 0, false
				}
				return op.pin, op.typ, true
			})
			if err != nil {
				yield(core.PinInfo{}, err)
				return
			}
			if ok && !yield(info, nil) {
				return
			}
		}

		held, err := e.ipfsPinned(ctx)
		if err != nil {
			yield(core.PinInfo{}, err)
			return
		}
		// A pin that completes after IPFS's list was read is missing from
		// held: the candidates are asked about again, in batches, before
		// they are re-queued.
		var missing []core.Pin
		flush := func() bool {
			defer func() { missing = missing[:0] }()
			if len(missing) == 0 {
				return true
			}
			cids := make([]core.Cid, len(missing))
			for i, p := range missing {
				cids[i] = p.Cid
			}
			res, err := e.host.PinLsCids(ctx, cids)
			if err == nil && len(res) != len(cids) {
				err = fmt.Errorf("PinLsCids answered %d entries for %d CIDs", len(res), len(cids))
			}
			if err != nil {
				yield(core.PinInfo{}, fmt.Errorf("asking IPFS: %w", err))
				return false
			}
			for i, p := range missing {
				if res[i].Type.IsPinned() {
					continue
				}
				info, ok, err := requeue(p.Cid, func(op *operation) (core.Pin, opType, bool) {
					return p, opPin, op == nil
				})
				if err != nil {
					yield(core.PinInfo{}, err)
					return false
				}
				if ok && !yield(info, nil) {
					return false
				}
			}
			return true
		}
		for p, err := range e.host.ListPins(ctx) {
			if err != nil {
				yield(core.PinInfo{}, fmt.Errorf("listing the pinset: %w", err))
				return
			}
			if !e.needsIPFS(p) {
				continue
			}
			if _, ok := held[mhKey(p.Cid)]; ok {
				continue
			}
			e.mu.Lock()
			busy := e.ops[p.Cid] != nil
			e.mu.Unlock()
			if busy {
				continue
			}
			if missing = append(missing, p); len(missing) == recoverCheckBatch && !flush() {
				return
			}
		}
		flush()
	}
}

// recoverCheckBatch is how many CIDs recoverAll asks IPFS about at once
// before re-queueing them.
const recoverCheckBatch = 256

// clearStaleLocked forgets a failed operation that IPFS proves moot: a
// failed pin of a CID IPFS holds, a failed unpin of one it does not.
func (e *engine) clearStaleLocked(op *operation, held bool) {
	if op == nil || op.phase != phaseError || (op.typ == opPin) != held {
		return
	}
	e.counts[op.typ][op.phase]--
	delete(e.ops, op.pin.Cid)
}

// sync checks the CIDs against IPFS now; see Tracker.Sync.
func (e *engine) sync(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	res, err := e.host.PinLsCids(ctx, cids)
	if err != nil {
		return nil, fmt.Errorf("asking IPFS: %w", err)
	}
	if len(res) != len(cids) {
		return nil, fmt.Errorf("asking IPFS: PinLsCids answered %d entries for %d CIDs", len(res), len(cids))
	}
	held := make(map[string]struct{})
	e.mu.Lock()
	for i, c := range cids {
		pinned := res[i].Type.IsPinned()
		if pinned {
			held[mhKey(c)] = struct{}{}
		}
		e.clearStaleLocked(e.ops[c], pinned)
	}
	e.mu.Unlock()
	infos, _, err := e.status(ctx, cids, held)
	return infos, err
}

// syncAll reads IPFS's pins once, clears the failed operations it proves
// moot and streams the status of every pin.
func (e *engine) syncAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	return func(yield func(core.PinInfo, error) bool) {
		held, err := e.ipfsPinned(ctx)
		if err != nil {
			yield(core.PinInfo{}, err)
			return
		}
		e.mu.Lock()
		for c, op := range e.ops {
			_, ok := held[mhKey(c)]
			e.clearStaleLocked(op, ok)
		}
		e.mu.Unlock()
		for info, err := range e.statusAll(ctx, 0, held) {
			if !yield(info, err) {
				return
			}
		}
	}
}
