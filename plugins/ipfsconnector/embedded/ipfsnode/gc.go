package ipfsnode

import (
	"context"
	"fmt"
	"math"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"golang.org/x/sync/semaphore"
)

// GC removes from the blockstore every block that is not reachable from a
// recursive pin and is not pinned directly, calling fn with the CID of each
// removed block as it goes. Removed CIDs are reported as CIDv1 with the raw
// codec: the blockstore is keyed by multihash and does not keep codecs.
//
// GC waits for running pins to finish and blocks new ones until it returns;
// it gives up with ctx's error if ctx is done while waiting. fn runs under
// that lock: it must not call Pin (or IsPinned), which would deadlock.
//
// GC aborts without deleting anything if a block reachable from a recursive
// pin is missing or unreadable, since the set of live blocks is then
// unknown. It stops at the first error returned by fn and returns it; blocks
// removed so far stay removed.
//
// Disk space is given back by badger's compactions and its periodic value
// log GC, not immediately. fn may be nil.
func (n *Node) GC(ctx context.Context, fn func(cid.Cid) error) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	release, err := n.gate.gcLock(ctx)
	if err != nil {
		return fmt.Errorf("ipfsnode: gc: waiting for pins: %w", err)
	}
	defer release()

	live, err := n.markLive(ctx)
	if err != nil {
		return fmt.Errorf("ipfsnode: gc: marking live blocks: %w", err)
	}
	return n.sweep(ctx, live, fn)
}

// markLive returns the set of blocks that GC must keep.
func (n *Node) markLive(ctx context.Context) (*markSet, error) {
	live := newMarkSet()
	walk := walkOptions{
		visit: live.visit,
		onMissing: func(c cid.Cid) error {
			return fmt.Errorf("block %s, reachable from a recursive pin, is missing", c)
		},
	}
	err := forEachPin(ctx, n.recIndex, func(root cid.Cid) error {
		if err := n.walkLocal(ctx, root, walk); err != nil {
			return fmt.Errorf("recursive pin %s: %w", root, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = forEachPin(ctx, n.dirIndex, func(c cid.Cid) error {
		live.visit(c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// dspinner keeps its state in the datastore, not in blocks, so it has
	// no internal pins today; honour them should that change.
	for p := range n.pinner.InternalPins(ctx, false) {
		if p.Err != nil {
			return nil, fmt.Errorf("listing internal pins: %w", p.Err)
		}
		if err := n.walkLocal(ctx, p.Pin.Key, walk); err != nil {
			return nil, fmt.Errorf("internal pin %s: %w", p.Pin.Key, err)
		}
	}
	return live, nil
}

// sweep deletes every stored block missing from live.
func (n *Node) sweep(ctx context.Context, live *markSet, fn func(cid.Cid) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		keys    <-chan cid.Cid
		iterErr = func() error { return nil }
		err     error
	)
	if ke, ok := n.bstore.(blockstore.AllKeysChanWithErrer); ok {
		keys, iterErr, err = ke.AllKeysChanWithErr(ctx)
	} else {
		keys, err = n.bstore.AllKeysChan(ctx)
	}
	if err != nil {
		return fmt.Errorf("ipfsnode: gc: listing blocks: %w", err)
	}
	drain := func() {
		cancel()
		for range keys {
		}
	}

	for k := range keys {
		if live.hasHash(k.Hash()) {
			continue
		}
		if err := n.bstore.DeleteBlock(ctx, k); err != nil {
			drain()
			return fmt.Errorf("ipfsnode: gc: deleting block %s: %w", k, err)
		}
		if fn != nil {
			if err := fn(k); err != nil {
				drain()
				return err
			}
		}
	}
	if err := iterErr(); err != nil {
		return fmt.Errorf("ipfsnode: gc: listing blocks: %w", err)
	}
	return ctx.Err()
}

// markSet records visited blocks. Blocks are stored by multihash, which is
// what the sweep compares with. The codec of the first visit is kept so that
// a block reached again under another codec (and so possibly with other
// links) is still explored; those rare cases go to extra.
type markSet struct {
	byHash map[string]uint64   // multihash -> codec of the first visit
	extra  map[string]struct{} // full CIDs of later visits with other codecs
}

func newMarkSet() *markSet {
	return &markSet{byHash: make(map[string]uint64)}
}

// visit records c and reports whether it was not recorded before.
func (m *markSet) visit(c cid.Cid) bool {
	h := string(c.Hash())
	codec, ok := m.byHash[h]
	if !ok {
		m.byHash[h] = c.Type()
		return true
	}
	if codec == c.Type() {
		return false
	}
	if m.extra == nil {
		m.extra = make(map[string]struct{})
	}
	k := c.KeyString()
	if _, ok := m.extra[k]; ok {
		return false
	}
	m.extra[k] = struct{}{}
	return true
}

// hasHash reports whether a block with multihash h was recorded.
func (m *markSet) hasHash(h []byte) bool {
	_, ok := m.byHash[string(h)]
	return ok
}

// gcGate is a readers-writer lock whose acquisition honours contexts: any
// number of pins (readers) or one garbage collection (writer). A waiting
// GC blocks new pins, so that GC cannot starve.
type gcGate struct {
	sem *semaphore.Weighted
}

// gcWeight is the weight taken by GC: all of it.
const gcWeight = math.MaxInt64

func newGCGate() *gcGate {
	return &gcGate{sem: semaphore.NewWeighted(gcWeight)}
}

// pinLock takes the shared side of the gate.
func (g *gcGate) pinLock(ctx context.Context) (func(), error) {
	if err := g.sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	return func() { g.sem.Release(1) }, nil
}

// gcLock takes the exclusive side of the gate.
func (g *gcGate) gcLock(ctx context.Context) (func(), error) {
	if err := g.sem.Acquire(ctx, gcWeight); err != nil {
		return nil, err
	}
	return func() { g.sem.Release(gcWeight) }, nil
}
