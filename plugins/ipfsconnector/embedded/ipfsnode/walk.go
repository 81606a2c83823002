package ipfsnode

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	dagpb "github.com/ipld/go-codec-dagpb"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/multicodec"
	basicnode "github.com/ipld/go-ipld-prime/node/basic"
	"github.com/ipld/go-ipld-prime/traversal"
)

// walkOptions parameterizes walkLocal.
type walkOptions struct {
	// visit is called before a CID is explored. Returning false skips it
	// and its descendants (already visited, for instance).
	visit func(cid.Cid) bool
	// onMissing is called for blocks absent from the blockstore. Returning
	// nil skips the block; an error aborts the walk and is returned.
	onMissing func(cid.Cid) error
	// checkLeaves makes the walk check that raw blocks (which have no links
	// and so need not be read) are present.
	checkLeaves bool
}

// walkLocal walks, depth first, the DAG under root using only the local
// blockstore. Blocks are read straight from the blockstore and only their
// links are decoded: this is the hot path of Pin, GC and IsPinned.
func (n *Node) walkLocal(ctx context.Context, root cid.Cid, o walkOptions) error {
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !o.visit(c) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.Type() == cid.Raw {
			if !o.checkLeaves {
				continue
			}
			has, err := n.bstore.Has(ctx, c)
			if err != nil {
				return fmt.Errorf("reading block %s: %w", c, err)
			}
			if !has {
				if err := o.onMissing(c); err != nil {
					return err
				}
			}
			continue
		}
		blk, err := n.bstore.Get(ctx, c)
		if err != nil {
			if format.IsNotFound(err) {
				if err := o.onMissing(c); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("reading block %s: %w", c, err)
		}
		first := len(stack)
		stack, err = appendLinks(stack, c, blk.RawData())
		if err != nil {
			return fmt.Errorf("decoding block %s: %w", c, err)
		}
		// Reverse the new links so that they are explored in order.
		for i, j := first, len(stack)-1; i < j; i, j = i+1, j-1 {
			stack[i], stack[j] = stack[j], stack[i]
		}
	}
	return nil
}

// appendLinks decodes the block data of c and appends the CIDs it links to.
func appendLinks(dst []cid.Cid, c cid.Cid, data []byte) ([]cid.Cid, error) {
	switch codec := c.Type(); codec {
	case cid.Raw:
		return dst, nil
	case cid.DagProtobuf:
		nb := dagpb.Type.PBNode.NewBuilder()
		if err := dagpb.DecodeBytes(nb, data); err != nil {
			return dst, err
		}
		pbn, ok := nb.Build().(dagpb.PBNode)
		if !ok {
			return dst, fmt.Errorf("unexpected dag-pb node type")
		}
		for it := pbn.FieldLinks().Iterator(); !it.Done(); {
			_, l := it.Next()
			lnk, ok := l.FieldHash().Link().(cidlink.Link)
			if !ok {
				return dst, fmt.Errorf("dag-pb link is not a CID")
			}
			dst = append(dst, lnk.Cid)
		}
		return dst, nil
	default:
		decode, err := multicodec.LookupDecoder(codec)
		if err != nil {
			return dst, err
		}
		nb := basicnode.Prototype.Any.NewBuilder()
		if err := decode(nb, bytes.NewReader(data)); err != nil {
			return dst, err
		}
		links, err := traversal.SelectLinks(nb.Build())
		if err != nil {
			return dst, err
		}
		for _, l := range links {
			lnk, ok := l.(cidlink.Link)
			if !ok {
				return dst, fmt.Errorf("link %s is not a CID", l)
			}
			dst = append(dst, lnk.Cid)
		}
		return dst, nil
	}
}
