package ipfsnode

import (
	"context"
	"errors"
	"fmt"

	ipfspinner "github.com/ipfs/boxo/pinning/pinner"
	"github.com/ipfs/boxo/pinning/pinner/dsindex"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
)

// PinType is the way a CID is pinned.
type PinType string

// Pin types. NotPinned is the zero value.
const (
	// Recursive pins protect a block and everything reachable from it.
	Recursive PinType = "recursive"
	// Direct pins protect a single block.
	Direct PinType = "direct"
	// Indirect blocks are reachable from a recursive pin.
	Indirect PinType = "indirect"
	// NotPinned means the CID is not pinned in any way.
	NotPinned PinType = ""
)

// PinInfo describes a recursive or direct pin.
type PinInfo struct {
	Cid  cid.Cid
	Type PinType
}

// Pin pins c. When recursive is true, the whole DAG under c is walked and
// every missing block is fetched through the exchange before the pin is
// recorded; otherwise only the root block is fetched (direct pin).
//
// Pinning something already pinned the same way (or pinning directly a
// recursively pinned CID) is a no-op. Pinning recursively a CID pinned
// directly turns the direct pin into a recursive one.
//
// Missing blocks that cannot be fetched make Pin fail: at once with the
// offline exchange (the error wraps ErrOffline and satisfies
// format.IsNotFound), or when ctx is done with a network exchange (the
// error wraps a *FetchError naming the blocks still missing, and ctx's
// error). Pin also
// gives up, with ctx's error, if ctx is done while it waits for a running GC.
// When fetching fails, nothing is recorded.
//
// With Options.SyncPins, Pin returns once the new pin is on stable storage.
//
// Depth-limited pins are not supported.
func (n *Node) Pin(ctx context.Context, c cid.Cid, recursive bool) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	if !c.Defined() {
		return errors.New("ipfsnode: cannot pin an undefined CID")
	}

	release, err := n.gate.pinLock(ctx)
	if err != nil {
		return fmt.Errorf("ipfsnode: pin %s: waiting for garbage collection: %w", c, err)
	}
	defer release()

	gen := n.pinGen.Load()
	done, err := n.alreadyPinned(ctx, c, recursive)
	if err != nil || done {
		return err
	}

	// Make the blocks local. No pin lock is held here: concurrent pins
	// fetch in parallel.
	if recursive {
		err = n.fetchDAG(ctx, c)
	} else {
		err = n.fetchBlock(ctx, c)
	}
	if err != nil {
		return fmt.Errorf("ipfsnode: pin %s: %w", c, err)
	}

	n.pinMu.Lock()
	if !recursive && n.pinGen.Load() != gen {
		// The pin set changed while fetching: look again, as a recursive
		// pin made meanwhile makes this direct one a no-op. A recursive
		// pin needs no second look: PinWithMode checks the recursive index
		// itself.
		done, err := n.alreadyPinned(ctx, c, recursive)
		if err != nil || done {
			n.pinMu.Unlock()
			return err
		}
	}
	mode := ipfspinner.Direct
	if recursive {
		mode = ipfspinner.Recursive
	}
	// The DAG is complete locally, so PinWithMode does not fetch anything.
	// For a recursive pin it also drops a direct pin on the same CID.
	err = n.pinner.PinWithMode(ctx, c, mode, "")
	n.pinGen.Add(1)
	n.pinMu.Unlock()
	if err != nil {
		return fmt.Errorf("ipfsnode: pin %s: recording pin: %w", c, err)
	}
	if err := n.syncPins(); err != nil {
		return fmt.Errorf("ipfsnode: pin %s: %w", c, err)
	}
	return nil
}

// syncPins flushes pin changes to stable storage when Options.SyncPins is
// set.
func (n *Node) syncPins() error {
	if n.syncer == nil {
		return nil
	}
	if err := n.syncer.sync(); err != nil {
		return fmt.Errorf("flushing pins to disk: %w", err)
	}
	return nil
}

// alreadyPinned reports whether pinning c (recursively or not) has nothing
// to do: c is pinned recursively, or c is pinned directly and the new pin
// is direct. A recursive pin looks at the recursive index alone.
func (n *Node) alreadyPinned(ctx context.Context, c cid.Cid, recursive bool) (bool, error) {
	typ, err := n.rootPin(ctx, c, !recursive)
	if err != nil {
		return false, fmt.Errorf("ipfsnode: pin %s: checking pin state: %w", c, err)
	}
	return typ != NotPinned, nil
}

// rootPinType returns Recursive, Direct or NotPinned for c, looking only at
// the pin indexes.
func (n *Node) rootPinType(ctx context.Context, c cid.Cid) (PinType, error) {
	return n.rootPin(ctx, c, true)
}

// rootPin returns Recursive if c is pinned recursively, else Direct if
// direct is true and c is pinned directly, else NotPinned. Each index
// lookup is a prefix query, so the recursive one is made first and the
// direct one only when asked for.
func (n *Node) rootPin(ctx context.Context, c cid.Cid, direct bool) (PinType, error) {
	if !c.Defined() {
		// An empty key would match every entry of the indexes.
		return NotPinned, nil
	}
	// A pinned root is always in the blockstore (pins are recorded once the
	// blocks are local, and GC keeps them): a missing block answers at the
	// cost of one key lookup, where the indexes need prefix queries. That
	// is the common case of a new pin, and of the pins allocated to other
	// peers that the tracker checks.
	if has, err := n.bstore.Has(ctx, c); err == nil && !has {
		return NotPinned, nil
	}
	_, ok, err := n.pinner.IsPinnedWithType(ctx, c, ipfspinner.Recursive)
	if err != nil || ok || !direct {
		return pinTypeIf(ok, Recursive), err
	}
	_, ok, err = n.pinner.IsPinnedWithType(ctx, c, ipfspinner.Direct)
	return pinTypeIf(ok, Direct), err
}

// pinTypeIf is typ if ok, else NotPinned.
func pinTypeIf(ok bool, typ PinType) PinType {
	if ok {
		return typ
	}
	return NotPinned
}

// fetchBlock makes the block c local.
func (n *Node) fetchBlock(ctx context.Context, c cid.Cid) error {
	has, err := n.bstore.Has(ctx, c)
	if err != nil {
		return err
	}
	if has {
		return nil
	}
	if n.offline {
		return offlineError(c)
	}
	if n.beforeFetch != nil {
		if err := n.beforeFetch(ctx, c); err != nil {
			return err
		}
	}
	if arrived, err := n.awaitPrefetch(ctx, c); err != nil || arrived {
		return err
	}
	if _, err := n.bserv.GetBlock(ctx, c); err != nil {
		return &FetchError{Missing: []cid.Cid{c}, MissingCount: 1, Err: err}
	}
	return nil
}

// fetchDAG makes the whole DAG under root local. A sequential walk of the
// local blockstore handles the common case (everything already local)
// cheaply; if a block is missing, the DAG is fetched through the exchange
// (see fetchGraph).
func (n *Node) fetchDAG(ctx context.Context, root cid.Cid) error {
	missing, err := n.firstMissing(ctx, root)
	if err != nil {
		return err
	}
	if !missing.Defined() {
		return nil
	}
	if n.offline {
		return offlineError(missing)
	}
	if n.beforeFetch != nil {
		if err := n.beforeFetch(ctx, missing); err != nil {
			return err
		}
	}
	if arrived, err := n.awaitPrefetch(ctx, missing); err != nil {
		return err
	} else if arrived {
		// The DAG may be complete now (a single-block pin always is).
		if missing, err = n.firstMissing(ctx, root); err != nil || !missing.Defined() {
			return err
		}
	}
	return n.fetchGraph(ctx, root)
}

func offlineError(c cid.Cid) error {
	return fmt.Errorf("block %s: %w: %w", c, ErrOffline, format.ErrNotFound{Cid: c})
}

// errStopWalk stops a walk early without reporting an error.
var errStopWalk = errors.New("stop walk")

// firstMissing walks the local DAG under root and returns the first block
// found missing, or cid.Undef when the DAG is complete.
func (n *Node) firstMissing(ctx context.Context, root cid.Cid) (cid.Cid, error) {
	var missing cid.Cid
	seen := cid.NewSet()
	err := n.walkLocal(ctx, root, walkOptions{
		visit:       seen.Visit,
		checkLeaves: true,
		onMissing: func(c cid.Cid) error {
			missing = c
			return errStopWalk
		},
	})
	if errors.Is(err, errStopWalk) {
		err = nil
	}
	return missing, err
}

// Unpin removes the recursive or direct pin on c. Unpinning a CID that is
// not pinned (or only indirectly pinned) is not an error. The blocks stay in
// the blockstore until the next GC.
func (n *Node) Unpin(ctx context.Context, c cid.Cid) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	if !c.Defined() {
		return errors.New("ipfsnode: cannot unpin an undefined CID")
	}
	n.pinMu.Lock()
	err := n.pinner.Unpin(ctx, c, true)
	n.pinGen.Add(1)
	n.pinMu.Unlock()
	if errors.Is(err, ipfspinner.ErrNotPinned) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipfsnode: unpin %s: %w", c, err)
	}
	if err := n.syncPins(); err != nil {
		return fmt.Errorf("ipfsnode: unpin %s: %w", c, err)
	}
	return nil
}

// PinLs calls fn for every recursive pin, then for every direct pin. Pins
// are streamed from the datastore: memory use does not grow with the number
// of pins. PinLs stops at the first error returned by fn and returns it
// unchanged. Pins added or removed while PinLs runs may or may not be
// reported.
func (n *Node) PinLs(ctx context.Context, fn func(PinInfo) error) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	err := forEachPin(ctx, n.recIndex, func(c cid.Cid) error {
		return fn(PinInfo{Cid: c, Type: Recursive})
	})
	if err == nil {
		err = forEachPin(ctx, n.dirIndex, func(c cid.Cid) error {
			return fn(PinInfo{Cid: c, Type: Direct})
		})
	}
	var lerr *listError
	if errors.As(err, &lerr) {
		return fmt.Errorf("ipfsnode: %w", err)
	}
	return err
}

// listError is returned by forEachPin when reading the index fails, as
// opposed to fn failing.
type listError struct{ err error }

func (e *listError) Error() string { return "listing pins: " + e.err.Error() }
func (e *listError) Unwrap() error { return e.err }

// forEachPin streams the CIDs of a dspinner index, calling fn once per CID.
// Errors returned by fn are returned unchanged; index errors are
// *listError.
func forEachPin(ctx context.Context, index dsindex.Indexer, fn func(cid.Cid) error) error {
	var (
		prev  string
		fnErr error
	)
	err := index.ForEach(ctx, "", func(key, _ string) bool {
		// The index is sorted by key: entries for the same CID (several pin
		// records) are adjacent.
		if key == prev {
			return true
		}
		prev = key
		c, err := cid.Cast([]byte(key))
		if err != nil {
			fnErr = &listError{fmt.Errorf("corrupt pin index entry: %w", err)}
			return false
		}
		fnErr = fn(c)
		return fnErr == nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return &listError{err}
	}
	return nil
}

// IsPinned reports, for each CID of cids, how it is pinned: Recursive,
// Direct, Indirect (reachable from a recursive pin) or NotPinned. The result
// has the same length and order as cids. A CID is reported with the first
// type that applies, in that order. Indirect blocks are matched by multihash.
//
// Finding indirect pins walks the DAGs of the recursive pins (local blocks
// only; missing blocks are skipped) until every CID is found; it can be
// costly on large pin sets and waits while a GC runs. Use
// IsPinnedSkipIndirect when only recursive and direct pins matter.
func (n *Node) IsPinned(ctx context.Context, cids []cid.Cid) ([]PinType, error) {
	return n.isPinned(ctx, cids, true)
}

// IsPinnedSkipIndirect is like IsPinned but only looks at recursive and
// direct pins: it never walks DAGs and never reports Indirect.
func (n *Node) IsPinnedSkipIndirect(ctx context.Context, cids []cid.Cid) ([]PinType, error) {
	return n.isPinned(ctx, cids, false)
}

func (n *Node) isPinned(ctx context.Context, cids []cid.Cid, indirect bool) ([]PinType, error) {
	if err := n.checkOpen(); err != nil {
		return nil, err
	}
	out := make([]PinType, len(cids))
	// Positions of the CIDs that are neither recursive nor direct, by
	// multihash.
	var pending map[string][]int
	for i, c := range cids {
		typ, err := n.rootPinType(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("ipfsnode: checking pin state of %s: %w", c, err)
		}
		out[i] = typ
		if typ == NotPinned && indirect && c.Defined() {
			if pending == nil {
				pending = make(map[string][]int)
			}
			h := string(c.Hash())
			pending[h] = append(pending[h], i)
		}
	}
	if len(pending) == 0 {
		return out, nil
	}

	// Keep GC from deleting blocks under the walk.
	release, err := n.gate.pinLock(ctx)
	if err != nil {
		return nil, fmt.Errorf("ipfsnode: checking indirect pins: %w", err)
	}
	defer release()

	visited := newMarkSet()
	walk := walkOptions{
		visit: func(c cid.Cid) bool {
			if !visited.visit(c) {
				return false
			}
			h := string(c.Hash())
			if idx, ok := pending[h]; ok {
				for _, i := range idx {
					out[i] = Indirect
				}
				delete(pending, h)
			}
			return true
		},
		onMissing: func(cid.Cid) error { return nil },
	}
	err = forEachPin(ctx, n.recIndex, func(root cid.Cid) error {
		if err := n.walkLocal(ctx, root, walk); err != nil {
			return err
		}
		if len(pending) == 0 {
			return errStopWalk
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopWalk) {
		return nil, fmt.Errorf("ipfsnode: checking indirect pins: %w", err)
	}
	return out, nil
}
