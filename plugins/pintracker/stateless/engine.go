package stateless

import (
	"container/list"
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// This file holds the operation tracker, the queue and the workers.
//
// Every CID with a pin or unpin that is queued, in progress or failed has
// one current operation in engine.ops. A newer operation for the same CID
// replaces the current one: a queued one is simply dropped; one whose IPFS
// call is in flight is cancelled (its result is ignored, and its batch call
// is cancelled once nothing in it is wanted any more) and the new operation
// is held back until that call has answered for the CID, so that IPFS sees
// the pin and the unpin in the order they were asked for. A successful
// operation is forgotten: the status then derives from the pinset and IPFS.
//
// Workers take up to batch_size ready operations of one kind and send them
// in one Pin or Unpin call; results stream back in completion order. Pins
// young enough and with few enough attempts (IPFS Cluster's priority pins)
// go before other pins; when both pins and unpins wait, workers alternate.

type opType int

const (
	opPin opType = iota
	opUnpin
)

type phase int

const (
	phaseQueued     phase = iota // waiting for a worker, held, or waiting to retry
	phaseInProgress              // sent to the IPFS connector
	phaseError                   // failed; waits for Recover, Track or Untrack
	numPhases
)

type operation struct {
	typ      opType
	phase    phase
	pin      core.Pin
	attempts int // attempts for this CID and kind, carried over by re-queues
	retries  int // automatic retries used by this operation
	err      string
	ts       time.Time // last phase change
	priority bool

	cancelled bool          // replaced by a newer operation
	held      bool          // queued behind an older call in flight for its CID
	elem      *list.Element // position in a ready queue, if in one
	queue     *list.List
	batch     *batch // while in progress
}

var opStatuses = [2][numPhases]core.TrackerStatus{
	opPin:   {core.TrackerStatusPinQueued, core.TrackerStatusPinning, core.TrackerStatusPinError},
	opUnpin: {core.TrackerStatusUnpinQueued, core.TrackerStatusUnpinning, core.TrackerStatusUnpinError},
}

// status is the tracker status the operation stands for.
func (op *operation) status() core.TrackerStatus { return opStatuses[op.typ][op.phase] }

// batch is one Pin or Unpin call to the IPFS connector.
type batch struct {
	ctx      context.Context
	cancel   context.CancelFunc
	live     int // operations in it that are still wanted
	timedOut atomic.Bool
}

// remoteCheck is a pin allocated elsewhere whose CID is being looked up in
// IPFS; valid turns false when a newer Track or Untrack of the CID arrives.
type remoteCheck struct {
	pin   core.Pin
	valid bool
}

type engine struct {
	cfg  Config
	env  core.Environment
	host core.Host
	log  hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // ready operations may be waiting
	check  chan struct{} // remote pins may be waiting for a check
	// reconciled is closed when the start-up reconciliation has ended.
	reconciled chan struct{}

	mu        sync.Mutex
	closed    bool
	ops       map[core.Cid]*operation
	inflight  map[core.Cid]*operation // operation whose IPFS call has not answered
	prio      list.List               // ready priority pins
	pins      list.List               // ready pins
	unpins    list.List               // ready unpins
	unpinNext bool                    // whose turn it is when pins and unpins wait
	counts    [2][numPhases]int
	remote    map[core.Cid]core.Pin // remote pins waiting for an IPFS check
	checking  map[core.Cid]*remoteCheck
	touched   map[core.Cid]struct{} // CIDs tracked during a reconciliation
}

func newEngine(cfg Config, env core.Environment, host core.Host) *engine {
	ctx, cancel := context.WithCancel(context.Background())
	return &engine{
		cfg:        cfg,
		env:        env,
		host:       host,
		log:        sdk.Logger(),
		ctx:        ctx,
		cancel:     cancel,
		wake:       make(chan struct{}, 1),
		check:      make(chan struct{}, 1),
		reconciled: make(chan struct{}),
		ops:        make(map[core.Cid]*operation),
		inflight:   make(map[core.Cid]*operation),
		remote:     make(map[core.Cid]core.Pin),
		checking:   make(map[core.Cid]*remoteCheck),
	}
}

// start launches the workers, the remote checker and the reconciliation.
func (e *engine) start() {
	for range e.cfg.ConcurrentPins {
		e.wg.Go(e.worker)
	}
	e.wg.Go(e.remoteChecker)
	e.wg.Go(e.reconcile)
}

// close stops everything; operations in flight are cancelled.
func (e *engine) close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pin_tracker.stateless: close: calls to the IPFS connector still running: %w", ctx.Err())
	}
}

// backoff returns base doubled n times, at most limit (but never less than
// base).
func backoff(base time.Duration, n int, limit time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return max(min(d, limit), base)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// queuedLocked counts what max_pin_queue_size bounds.
func (e *engine) queuedLocked() int {
	return e.counts[opPin][phaseQueued] + e.counts[opUnpin][phaseQueued] + len(e.remote) + len(e.checking)
}

func (e *engine) setPhaseLocked(op *operation, ph phase, now time.Time) {
	e.counts[op.typ][op.phase]--
	op.phase = ph
	e.counts[op.typ][ph]++
	op.ts = now
}

func (e *engine) stats() core.TrackerStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return core.TrackerStats{
		PinQueued: int64(e.counts[opPin][phaseQueued]),
		Pinning:   int64(e.counts[opPin][phaseInProgress]),
		PinErrors: int64(e.counts[opPin][phaseError]),
	}
}

// --- queueing ---------------------------------------------------------------

// track queues pins; see Tracker.Track.
func (e *engine) track(ctx context.Context, pins []core.Pin) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errClosed
	}
	rejected := 0
	for _, p := range pins {
		if !p.Cid.Defined() || p.Type == core.MetaType {
			// A meta-pin is never pinned in IPFS: its status is sharded.
			continue
		}
		if p.IsAllocatedTo(e.env.PeerID) {
			if e.enqueueLocked(p, opPin, now) != nil {
				e.rejectLocked(p, opPin, now)
				rejected++
			}
			continue
		}
		// Allocated elsewhere. An operation on the CID means this peer was
		// working on it: unpin. Otherwise unpin only what IPFS holds, which
		// the remote checker finds out without making Track wait.
		if e.ops[p.Cid] != nil {
			if e.enqueueLocked(p, opUnpin, now) != nil {
				e.rejectLocked(p, opUnpin, now)
				rejected++
			}
			continue
		}
		e.forgetRemoteLocked(p.Cid)
		e.touchLocked(p.Cid)
		if e.queuedLocked() >= e.cfg.MaxPinQueueSize {
			rejected++
			continue
		}
		e.remote[p.Cid] = p
		signal(e.check)
	}
	if rejected > 0 {
		return fmt.Errorf("%w (%d of %d pins not queued)", ErrQueueFull, rejected, len(pins))
	}
	return nil
}

// untrack queues unpins; see Tracker.Untrack.
func (e *engine) untrack(ctx context.Context, cids []core.Cid) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errClosed
	}
	rejected := 0
	for _, c := range cids {
		if !c.Defined() {
			continue
		}
		p := core.Pin{Cid: c}
		if old := e.ops[c]; old != nil {
			p = old.pin // keep the name and allocations for the status
		}
		if e.enqueueLocked(p, opUnpin, now) != nil {
			e.rejectLocked(p, opUnpin, now)
			rejected++
		}
	}
	if rejected > 0 {
		return fmt.Errorf("%w (%d of %d unpins not queued)", ErrQueueFull, rejected, len(cids))
	}
	return nil
}

// enqueueLocked makes a queued operation of typ the current one for p.Cid,
// unless one of the same kind is already queued or in progress. With the
// queue full it fails with ErrQueueFull and leaves the current operation
// as it was.
func (e *engine) enqueueLocked(p core.Pin, typ opType, now time.Time) error {
	c := p.Cid
	e.forgetRemoteLocked(c)
	e.touchLocked(c)
	old := e.ops[c]
	if old != nil && old.typ == typ && old.phase != phaseError {
		// The same operation is under way; keep the newest pin for the
		// status (and for the request, if not sent yet). A bare CID from
		// Untrack does not replace a full pin.
		if typ == opPin || p.Type != 0 {
			old.pin = p
		}
		return nil
	}
	if (old == nil || old.phase != phaseQueued) && e.queuedLocked() >= e.cfg.MaxPinQueueSize {
		return ErrQueueFull
	}
	op := &operation{typ: typ, pin: p, ts: now}
	if old != nil {
		if old.typ == typ {
			op.attempts = old.attempts
		}
		e.cancelLocked(old)
	}
	e.ops[c] = op
	e.counts[typ][phaseQueued]++
	if e.inflight[c] != nil {
		op.held = true
	} else {
		e.pushLocked(op, now)
	}
	return nil
}

// rejectLocked records what a full queue could not take. An unpin becomes
// an unpin_error so it is not lost once the CID has left the pinset; a pin
// needs no record: without an operation it shows as unexpectedly_unpinned,
// which RecoverAll re-queues.
func (e *engine) rejectLocked(p core.Pin, typ opType, now time.Time) {
	old := e.ops[p.Cid]
	if typ == opPin {
		if old != nil && old.typ != opPin {
			e.cancelLocked(old)
			delete(e.ops, p.Cid)
		}
		return
	}
	op := &operation{typ: typ, pin: p, phase: phaseError, err: ErrQueueFull.Error(), ts: now}
	if old != nil {
		if old.typ == typ {
			op.attempts = old.attempts
		}
		e.cancelLocked(old)
	}
	e.ops[p.Cid] = op
	e.counts[typ][phaseError]++
}

// cancelLocked takes a replaced operation out of the queues and counts. If
// it is in flight, its call is cancelled once nothing in it is wanted.
func (e *engine) cancelLocked(op *operation) {
	op.cancelled = true
	if op.elem != nil {
		op.queue.Remove(op.elem)
		op.elem, op.queue = nil, nil
	}
	if op.batch != nil {
		op.batch.live--
		if op.batch.live == 0 {
			op.batch.cancel()
		}
		op.batch = nil
	}
	e.counts[op.typ][op.phase]--
}

// pushLocked puts a queued operation in its ready queue.
func (e *engine) pushLocked(op *operation, now time.Time) {
	switch {
	case op.typ == opUnpin:
		op.queue = &e.unpins
	case !op.pin.Timestamp.IsZero() &&
		now.Before(op.pin.Timestamp.Add(e.cfg.PriorityPinMaxAge)) &&
		op.attempts <= e.cfg.PriorityPinMaxRetries:
		op.priority = true
		op.queue = &e.prio
	default:
		op.priority = false
		op.queue = &e.pins
	}
	op.elem = op.queue.PushBack(op)
	signal(e.wake)
}

func (e *engine) touchLocked(c core.Cid) {
	if e.touched != nil {
		e.touched[c] = struct{}{}
	}
}

func (e *engine) forgetRemoteLocked(c core.Cid) {
	delete(e.remote, c)
	if chk := e.checking[c]; chk != nil {
		chk.valid = false
	}
}

// --- workers ----------------------------------------------------------------

func (e *engine) worker() {
	for {
		typ, ops, b := e.take()
		if ops == nil {
			select {
			case <-e.wake:
				continue
			case <-e.ctx.Done():
				return
			}
		}
		e.execute(typ, ops, b)
	}
}

// take removes up to batch_size ready operations of one kind from the
// queues and marks them in progress.
func (e *engine) take() (opType, []*operation, *batch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, nil, nil
	}
	pinsReady := e.prio.Len()+e.pins.Len() > 0
	unpinsReady := e.unpins.Len() > 0
	var typ opType
	var queues []*list.List
	switch {
	case pinsReady && unpinsReady:
		if e.unpinNext {
			typ, queues = opUnpin, []*list.List{&e.unpins}
		} else {
			typ, queues = opPin, []*list.List{&e.prio, &e.pins}
		}
		e.unpinNext = !e.unpinNext
	case pinsReady:
		typ, queues = opPin, []*list.List{&e.prio, &e.pins}
	case unpinsReady:
		typ, queues = opUnpin, []*list.List{&e.unpins}
	default:
		return 0, nil, nil
	}
	ctx, cancel := context.WithCancel(e.ctx)
	b := &batch{ctx: ctx, cancel: cancel}
	now := time.Now()
	var ops []*operation
	for _, q := range queues {
		for len(ops) < e.cfg.BatchSize && q.Len() > 0 {
			op := q.Remove(q.Front()).(*operation)
			op.elem, op.queue = nil, nil
			e.setPhaseLocked(op, phaseInProgress, now)
			op.attempts++
			op.batch = b
			e.inflight[op.pin.Cid] = op
			ops = append(ops, op)
		}
	}
	b.live = len(ops)
	if e.prio.Len()+e.pins.Len()+e.unpins.Len() > 0 {
		signal(e.wake) // let another worker take the rest
	}
	return typ, ops, b
}

// execute sends one batch and applies each result as it arrives. A call
// that stops making progress for longer than the pin (or unpin) timeout,
// with some slack for a connector that enforces the timeout itself, is
// cancelled and its unanswered operations fail.
func (e *engine) execute(typ opType, ops []*operation, b *batch) {
	timeout := e.cfg.PinTimeout
	// Track may replace an operation's pin while it is in flight: read
	// what the call needs under the lock.
	cids := make([]core.Cid, len(ops))
	depths := make([]int, len(ops))
	e.mu.Lock()
	for i, op := range ops {
		cids[i], depths[i] = op.pin.Cid, op.pin.MaxDepth
	}
	e.mu.Unlock()
	var results iter.Seq2[core.IPFSPinResult, error]
	if typ == opPin {
		reqs := make([]core.IPFSPinRequest, len(ops))
		for i := range ops {
			reqs[i] = core.IPFSPinRequest{Cid: cids[i], MaxDepth: depths[i], Timeout: timeout}
		}
		results = e.host.Pin(b.ctx, reqs)
	} else {
		timeout = e.cfg.UnpinTimeout
		results = e.host.Unpin(b.ctx, cids)
	}
	idle := timeout + timeout/4
	watchdog := time.AfterFunc(idle, func() {
		b.timedOut.Store(true)
		b.cancel()
	})
	pending := make(map[core.Cid]*operation, len(ops))
	for i, op := range ops {
		pending[cids[i]] = op
	}
	var callErr error
	for r, err := range results {
		if err != nil {
			callErr = err
			break
		}
		op, ok := pending[r.Cid]
		if !ok {
			continue
		}
		delete(pending, r.Cid)
		watchdog.Reset(idle)
		e.finish(op, r.Error)
		if len(pending) == 0 {
			break
		}
	}
	watchdog.Stop()
	b.cancel()
	if len(pending) == 0 {
		return
	}
	kind := "pin"
	if typ == opUnpin {
		kind = "unpin"
	}
	var msg string
	switch {
	case b.timedOut.Load():
		msg = fmt.Sprintf("%s timed out: the IPFS connector gave no result within %s (pin_tracker.%s.%s_timeout)", kind, timeout, Name, kind)
	case e.ctx.Err() != nil:
		msg = kind + " cancelled: the pin tracker is shutting down"
	case callErr != nil:
		msg = fmt.Sprintf("%s failed: IPFS connector: %v", kind, callErr)
	default:
		msg = kind + " failed: the IPFS connector returned no result for this CID"
	}
	for _, op := range pending {
		e.finish(op, msg)
	}
}

// finish applies the result of one operation's IPFS call.
func (e *engine) finish(op *operation, errText string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := op.pin.Cid
	if e.inflight[c] == op {
		delete(e.inflight, c)
	}
	now := time.Now()
	if op.cancelled {
		// Replaced while in flight: the newer operation may go now.
		if cur := e.ops[c]; cur != nil && cur.held {
			cur.held = false
			if !e.closed {
				e.pushLocked(cur, now)
			}
		}
		return
	}
	if op.batch != nil {
		op.batch.live--
		op.batch = nil
	}
	if errText == "" {
		e.counts[op.typ][op.phase]--
		delete(e.ops, c)
		return
	}
	op.err = errText
	if e.closed {
		e.setPhaseLocked(op, phaseError, now)
		return
	}
	if op.retries >= e.cfg.MaxRetries {
		e.setPhaseLocked(op, phaseError, now)
		e.log.Warn("operation failed", "op", map[opType]string{opPin: "pin", opUnpin: "unpin"}[op.typ],
			"cid", c.String(), "attempts", op.attempts, "error", errText)
		return
	}
	// Until its retry, the operation is in error, as a failed pin is in
	// IPFS Cluster until it is recovered: a client waiting for the pin
	// learns at once that it failed. The retry is an automatic recover;
	// a Recover, Track, Untrack or Sync before it replaces or ends it.
	op.retries++
	e.setPhaseLocked(op, phaseError, now)
	delay := backoff(e.cfg.RetryBackoffBase, op.retries-1, time.Hour)
	time.AfterFunc(delay, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if !e.closed && !op.cancelled && e.ops[c] == op && op.phase == phaseError && op.elem == nil && !op.held {
			now := time.Now()
			e.setPhaseLocked(op, phaseQueued, now)
			e.pushLocked(op, now)
		}
	})
}

// --- pins allocated elsewhere -----------------------------------------------

// remoteCheckBatch is how many CIDs one PinLsCids call checks.
const remoteCheckBatch = 1024

// remoteChecker unpins the remote pins that IPFS holds.
func (e *engine) remoteChecker() {
	failures := 0
	for {
		select {
		case <-e.check:
		case <-e.ctx.Done():
			return
		}
		for {
			cids := e.takeRemote()
			if len(cids) == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(e.ctx, e.cfg.PinTimeout)
			infos, err := e.host.PinLsCids(ctx, cids)
			cancel()
			if err == nil && len(infos) != len(cids) {
				err = fmt.Errorf("PinLsCids answered %d entries for %d CIDs", len(infos), len(cids))
			}
			e.applyRemote(cids, infos, err)
			if err == nil {
				failures = 0
				continue
			}
			failures++
			delay := backoff(e.cfg.RetryBackoffBase, failures-1, time.Minute)
			e.log.Warn("cannot check pins allocated to other peers against IPFS; retrying",
				"cids", len(cids), "retry_in", delay, "error", err)
			select {
			case <-time.After(delay):
			case <-e.ctx.Done():
				return
			}
		}
	}
}

func (e *engine) takeRemote() []core.Cid {
	e.mu.Lock()
	defer e.mu.Unlock()
	cids := make([]core.Cid, 0, min(len(e.remote), remoteCheckBatch))
	for c, p := range e.remote {
		if len(cids) == remoteCheckBatch {
			break
		}
		cids = append(cids, c)
		e.checking[c] = &remoteCheck{pin: p, valid: true}
		delete(e.remote, c)
	}
	return cids
}

// applyRemote queues the unpin of checked CIDs that IPFS holds, unless the
// CID was tracked again meanwhile. After an error the checks are put back.
func (e *engine) applyRemote(cids []core.Cid, infos []core.IPFSPinInfo, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	for i, c := range cids {
		chk := e.checking[c]
		delete(e.checking, c)
		if chk == nil || !chk.valid || e.closed {
			continue
		}
		if err != nil {
			e.remote[c] = chk.pin
			continue
		}
		if infos[i].Type.IsPinned() && e.enqueueLocked(chk.pin, opUnpin, now) != nil {
			e.rejectLocked(chk.pin, opUnpin, now)
		}
	}
}

// --- reconciliation ---------------------------------------------------------

// reconcileBatch is how many missing pins are queued at a time.
const reconcileBatch = 1024

// reconcile queues the pin of every pin allocated here that IPFS does not
// hold: the pinset may have changed while this process was not running. A
// pass that cannot read IPFS or the pinset is tried again with backoff.
func (e *engine) reconcile() {
	defer close(e.reconciled)
	for attempt := 0; ; attempt++ {
		err := e.reconcileOnce()
		if err == nil || e.ctx.Err() != nil {
			return
		}
		delay := backoff(e.cfg.RetryBackoffBase, attempt, time.Minute)
		e.log.Error("start-up reconciliation failed; retrying", "retry_in", delay, "error", err)
		select {
		case <-time.After(delay):
		case <-e.ctx.Done():
			return
		}
	}
}

// reconcileOnce keeps only the set of CIDs IPFS holds and streams the
// pinset. CIDs tracked or untracked while it runs are left to those calls.
func (e *engine) reconcileOnce() error {
	e.mu.Lock()
	e.touched = make(map[core.Cid]struct{})
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.touched = nil
		e.mu.Unlock()
	}()
	held, err := e.ipfsPinned(e.ctx)
	if err != nil {
		return err
	}
	queued, missing := 0, 0
	var todo []core.Pin
	flush := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		now := time.Now()
		for _, p := range todo {
			if _, ok := e.touched[p.Cid]; ok || e.ops[p.Cid] != nil || e.closed {
				continue
			}
			if e.enqueueLocked(p, opPin, now) != nil {
				e.log.Warn("start-up reconciliation stopped: pin queue full; RecoverAll re-queues the rest",
					"queued", queued)
				return false
			}
			queued++
		}
		todo = todo[:0]
		return true
	}
	for p, err := range e.host.ListPins(e.ctx) {
		if err != nil {
			return fmt.Errorf("listing the pinset: %w", err)
		}
		if !e.needsIPFS(p) {
			continue
		}
		if _, ok := held[mhKey(p.Cid)]; ok {
			continue
		}
		missing++
		todo = append(todo, p)
		if len(todo) == reconcileBatch && !flush() {
			return nil
		}
	}
	if flush() && missing > 0 {
		e.log.Info("start-up reconciliation queued pins missing from IPFS", "missing", missing, "queued", queued)
	}
	return nil
}

// ipfsPinned reads IPFS's direct and recursive pins into a set keyed by
// multihash, so that a CIDv0 and a CIDv1 of the same content match.
func (e *engine) ipfsPinned(ctx context.Context) (map[string]struct{}, error) {
	set := make(map[string]struct{})
	for info, err := range e.host.PinLs(ctx) {
		if err != nil {
			return nil, fmt.Errorf("listing IPFS pins: %w", err)
		}
		if info.Type.IsPinned() && info.Cid.Defined() {
			set[mhKey(info.Cid)] = struct{}{}
		}
	}
	return set, nil
}

func mhKey(c core.Cid) string { return string(c.Hash()) }
