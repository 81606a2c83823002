package ipfsnode

import (
	"context"
	"fmt"
	"strings"

	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
)

// Resolve returns the CID designated by an immutable IPFS path:
// "/ipfs/<cid>[/name...]" ("/ipld/" is accepted too, and so is a bare
// "<cid>[/name...]"). Path segments are looked up as UnixFS directory entries
// (including HAMT-sharded directories), as link names of plain dag-pb nodes,
// or as fields of dag-cbor / dag-json nodes.
//
// When the path ends inside a block (on a dag-cbor field that is not a
// link, for instance), the CID of that block is returned; ResolvePath also
// returns the remaining segments.
//
// Blocks missing locally are fetched through the exchange (so with the
// offline exchange, only local DAGs resolve). "/ipns/" paths return
// ErrIPNSNotSupported; malformed paths return an error wrapping
// ErrInvalidPath.
func (n *Node) Resolve(ctx context.Context, p string) (cid.Cid, error) {
	c, _, err := n.ResolvePath(ctx, p)
	return c, err
}

// ResolvePath is like Resolve but also returns the path segments left to
// follow inside the block of the returned CID (nil when the path designates
// the block itself).
func (n *Node) ResolvePath(ctx context.Context, p string) (cid.Cid, []string, error) {
	if err := n.checkOpen(); err != nil {
		return cid.Undef, nil, err
	}
	ip, err := parsePath(p)
	if err != nil {
		return cid.Undef, nil, err
	}
	if err := n.gateFetch(ctx, ip.RootCid()); err != nil {
		return cid.Undef, nil, fmt.Errorf("ipfsnode: resolving %s: %w", p, err)
	}
	c, rest, err := n.resolver.ResolveToLastNode(ctx, ip)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("ipfsnode: resolving %s: %w", p, err)
	}
	if len(rest) == 0 {
		rest = nil
	}
	return c, rest, nil
}

// parsePath turns p into an immutable path.
func parsePath(p string) (path.ImmutablePath, error) {
	invalid := func(err error) error {
		return fmt.Errorf("ipfsnode: %w %q: %w", ErrInvalidPath, p, err)
	}
	if p == "" {
		return path.ImmutablePath{}, fmt.Errorf("ipfsnode: %w: empty path", ErrInvalidPath)
	}
	if !strings.HasPrefix(p, "/") {
		// A bare CID, optionally followed by segments.
		root, _, _ := strings.Cut(p, "/")
		if _, err := cid.Decode(root); err != nil {
			return path.ImmutablePath{}, invalid(fmt.Errorf("not a path (should start with /ipfs/) nor a CID: %w", err))
		}
		p = "/" + path.IPFSNamespace + "/" + p
	}
	segs := path.StringToSegments(p)
	if len(segs) > 0 && segs[0] == path.IPNSNamespace {
		return path.ImmutablePath{}, ErrIPNSNotSupported
	}
	pp, err := path.NewPath(p)
	if err != nil {
		return path.ImmutablePath{}, invalid(err)
	}
	ip, err := path.NewImmutablePath(pp)
	if err != nil {
		return path.ImmutablePath{}, invalid(err)
	}
	return ip, nil
}
