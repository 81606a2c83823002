// Package stateless is a pin tracker that behaves like IPFS Cluster's
// stateless pin tracker: it keeps no copy of the pinset. Pins and unpins in
// flight live in an in-memory operation tracker; every other status is
// derived, when asked, from the shared pinset and the IPFS node.
package stateless

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"sync"

	"github.com/pincluster/pincluster/core"
)

// Name is the name of this pin tracker in service.json.
const Name = "stateless"

// Version is the version of this plugin.
const Version = "1.0.0"

// ErrQueueFull is returned by Track, Untrack and the recover calls when
// max_pin_queue_size operations are already waiting.
var ErrQueueFull = errors.New("pin queue is full: wait for the queued pins to be processed, or raise pin_tracker.stateless.max_pin_queue_size")

var (
	errNotConfigured = errors.New("pin_tracker.stateless: called before Configure")
	errClosed        = errors.New("pin_tracker.stateless: the tracker is closed")
)

// Tracker is the stateless pin tracker plugin.
type Tracker struct {
	mu  sync.Mutex
	eng *engine
}

// New returns an unconfigured tracker; Configure starts it.
func New() *Tracker { return &Tracker{} }

// Describe reports what this plugin is.
func (t *Tracker) Describe(context.Context) (core.Description, error) {
	return core.Description{
		Kind:             core.KindPinTracker,
		Name:             Name,
		Version:          Version,
		ProtocolVersions: []int{core.ProtocolVersion},
		DefaultConfig:    DefaultConfigJSON(),
	}, nil
}

// Configure reads the pin_tracker.stateless section, starts the workers and
// schedules a reconciliation with IPFS in the background. Configuring a
// running tracker stops it first; its queued operations are dropped.
func (t *Tracker) Configure(ctx context.Context, raw json.RawMessage, env core.Environment, host core.Host) error {
	cfg, err := ParseConfig(raw)
	if err != nil {
		return err
	}
	if host == nil {
		return errors.New("pin_tracker.stateless: Configure needs a host to reach the pinset and IPFS")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.eng != nil {
		if err := t.eng.close(ctx); err != nil {
			return err
		}
	}
	t.eng = newEngine(cfg, env, host)
	t.eng.start()
	return nil
}

// Close stops the workers and cancels the operations in flight. It returns
// when they have stopped or when ctx ends.
func (t *Tracker) Close(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.eng == nil {
		return nil
	}
	return t.eng.close(ctx)
}

func (t *Tracker) engine() (*engine, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.eng == nil {
		return nil, errNotConfigured
	}
	return t.eng, nil
}

// Track queues the pin of every pin allocated to this peer, and the unpin of
// pins allocated elsewhere that IPFS still holds. It never waits for IPFS.
func (t *Tracker) Track(ctx context.Context, pins []core.Pin) error {
	e, err := t.engine()
	if err != nil {
		return err
	}
	return e.track(ctx, pins)
}

// Untrack queues the unpin of CIDs removed from the pinset.
func (t *Tracker) Untrack(ctx context.Context, cids []core.Cid) error {
	e, err := t.engine()
	if err != nil {
		return err
	}
	return e.untrack(ctx, cids)
}

// Status reports the local status of each CID, in request order.
func (t *Tracker) Status(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	e, err := t.engine()
	if err != nil {
		return nil, err
	}
	infos, _, err := e.status(ctx, cids, nil)
	return infos, err
}

// StatusAll streams the status of every pin of the pinset that matches
// filter; see the README for which in-flight items are listed.
func (t *Tracker) StatusAll(ctx context.Context, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error] {
	e, err := t.engine()
	if err != nil {
		return core.ErrSeq[core.PinInfo](err)
	}
	return e.statusAll(ctx, filter, nil)
}

// Recover re-queues the CIDs that are pin_error, unexpectedly_unpinned or
// unpin_error and reports their status.
func (t *Tracker) Recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	e, err := t.engine()
	if err != nil {
		return nil, err
	}
	return e.recover(ctx, cids)
}

// RecoverAll re-queues every errored item and streams those re-queued.
func (t *Tracker) RecoverAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	e, err := t.engine()
	if err != nil {
		return core.ErrSeq[core.PinInfo](err)
	}
	return e.recoverAll(ctx)
}

// Sync checks the CIDs against IPFS now, clears errors IPFS proves stale and
// reports their status.
func (t *Tracker) Sync(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	e, err := t.engine()
	if err != nil {
		return nil, err
	}
	return e.sync(ctx, cids)
}

// SyncAll does Sync for every pin and streams every pin's status.
func (t *Tracker) SyncAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	e, err := t.engine()
	if err != nil {
		return core.ErrSeq[core.PinInfo](err)
	}
	return e.syncAll(ctx)
}

// Stats reports the queued, in-progress and failed pins.
func (t *Tracker) Stats(context.Context) (core.TrackerStats, error) {
	e, err := t.engine()
	if err != nil {
		return core.TrackerStats{}, err
	}
	return e.stats(), nil
}

var _ core.PinTracker = (*Tracker)(nil)
