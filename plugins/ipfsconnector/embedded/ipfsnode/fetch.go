package ipfsnode

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
)

// maxReportedMissing bounds FetchError.Missing.
const maxReportedMissing = 8

// errExchangeStopped is the cause of a FetchError when the exchange stops
// delivering blocks before the context is done.
var errExchangeStopped = errors.New("the exchange stopped before delivering them")

// FetchError is returned (wrapped) by Pin when blocks missing locally could
// not be fetched through the exchange. It unwraps to the cause, usually the
// context's error.
type FetchError struct {
	// Missing are the first blocks (at most a few) that were requested and
	// never arrived, in walk order.
	Missing []cid.Cid
	// MissingCount is how many requested blocks never arrived. Blocks
	// below them in the DAG are not known yet and not counted.
	MissingCount int
	// Fetched is how many blocks did arrive.
	Fetched int
	// Err is why fetching stopped.
	Err error
}

func (e *FetchError) Error() string {
	var b strings.Builder
	b.WriteString("fetching blocks: ")
	switch {
	case e.MissingCount == 1 && len(e.Missing) == 1:
		fmt.Fprintf(&b, "block %s not found", e.Missing[0])
	case len(e.Missing) > 0:
		fmt.Fprintf(&b, "%d blocks not found (the first is %s)", e.MissingCount, e.Missing[0])
	default:
		b.WriteString("interrupted")
	}
	fmt.Fprintf(&b, ", %d fetched: %v", e.Fetched, e.Err)
	return b.String()
}

func (e *FetchError) Unwrap() error { return e.Err }

// fetchGraph makes the whole DAG under root local, fetching what is missing
// through the exchange within one session (so that the exchange asks the
// peers that already answered first). The DAG is walked level by level:
// the local blocks of a level are read from the blockstore, its missing
// blocks are requested together, and the links of both make the next
// level. It fails with a *FetchError when blocks never arrive.
func (n *Node) fetchGraph(parent context.Context, root cid.Cid) error {
	// Cancelled on return so that the exchange stops sending when the walk
	// gives up early.
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	sess := blockservice.NewSession(ctx, n.bserv)

	seen := cid.NewSet()
	seen.Add(root)
	addLinks := func(next []cid.Cid, c cid.Cid, data []byte) ([]cid.Cid, error) {
		links, err := appendLinks(nil, c, data)
		if err != nil {
			return next, fmt.Errorf("decoding block %s: %w", c, err)
		}
		for _, l := range links {
			if seen.Visit(l) {
				next = append(next, l)
			}
		}
		return next, nil
	}

	fetched := 0
	level := []cid.Cid{root}
	for len(level) > 0 {
		var next, want []cid.Cid
		for _, c := range level {
			if err := parent.Err(); err != nil {
				return &FetchError{Fetched: fetched, Err: err}
			}
			if c.Type() == cid.Raw {
				has, err := n.bstore.Has(ctx, c)
				if err != nil {
					return fmt.Errorf("reading block %s: %w", c, err)
				}
				if !has {
					want = append(want, c)
				}
				continue
			}
			blk, err := n.bstore.Get(ctx, c)
			if format.IsNotFound(err) {
				want = append(want, c)
				continue
			}
			if err != nil {
				return fmt.Errorf("reading block %s: %w", c, err)
			}
			if next, err = addLinks(next, c, blk.RawData()); err != nil {
				return err
			}
		}

		if len(want) > 0 {
			// Blocks are matched by multihash: the exchange may answer
			// with another CID version of the same block.
			pending := make(map[string][]cid.Cid, len(want))
			for _, c := range want {
				pending[string(c.Hash())] = append(pending[string(c.Hash())], c)
			}
			left := len(want)
			for blk := range sess.GetBlocks(ctx, want) {
				h := string(blk.Cid().Hash())
				cs, ok := pending[h]
				if !ok {
					continue
				}
				delete(pending, h)
				for _, c := range cs {
					left--
					fetched++
					var err error
					if next, err = addLinks(next, c, blk.RawData()); err != nil {
						return err
					}
				}
			}
			if left > 0 {
				fe := &FetchError{MissingCount: left, Fetched: fetched, Err: parent.Err()}
				if fe.Err == nil {
					fe.Err = errExchangeStopped
				}
				for _, c := range want {
					if _, ok := pending[string(c.Hash())]; ok && len(fe.Missing) < maxReportedMissing {
						fe.Missing = append(fe.Missing, c)
					}
				}
				return fe
			}
		}
		level = next
	}
	return nil
}
