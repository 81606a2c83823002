package adder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/ipfs/boxo/files"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/verifcid"
	cid "github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	mh "github.com/multiformats/go-multihash"
)

// maxCARHeaderSize bounds the CARv1 header of an imported CAR file. A
// header naming one root takes about 60 bytes; the bound keeps a few bytes
// of garbage from making the reader allocate go-car's default of 32 MiB.
const maxCARHeaderSize = 1 << 20

// Errors returned by Add for a format=car request it cannot import. Like
// every error about the body, they come wrapped in a *RequestError.
var (
	// ErrInvalidCAR is wrapped by the errors about a file that cannot be
	// read as a CAR: not a CAR file, truncated, or holding a block whose
	// data does not match its CID.
	ErrInvalidCAR = errors.New("invalid CAR file")
	// ErrCARRoots is returned for a CAR file whose header does not name
	// exactly one root. The text is IPFS Cluster's.
	ErrCARRoots = errors.New("only CAR files with a single root are supported")
	// ErrCARRootMissing is wrapped by the error returned for a CAR file
	// whose root is not among its blocks.
	ErrCARRootMissing = errors.New("the root block is not in the CAR file")
	// ErrCARNotFile is wrapped by the error returned when the part sent
	// is a directory or a symlink.
	ErrCARNotFile = errors.New("format=car expects a CAR file, not a directory or a symlink")
	// ErrCARParts is wrapped by the error returned when the body holds
	// more than one part.
	ErrCARParts = errors.New("format=car takes exactly one CAR file per request")
)

// importCAR imports the CAR file sent as the only part of the body (a CARv1
// or a CARv2). Its blocks are handed to bat as they are read, each checked
// against its CID, so that memory use does not depend on the size of the
// file. The returned Output names the root of the file; Add emits it once
// the sink has every block, and no progress events are emitted (IPFS
// Cluster emits none for a CAR file either).
func importCAR(ctx context.Context, top files.Directory, bat *batcher) (Output, error) {
	it := top.Entries()
	if !it.Next() {
		if err := iterErr(it); err != nil {
			return Output{}, err
		}
		return Output{}, badRequest(fmt.Errorf("%w: format=car expects one CAR file", ErrNoFiles))
	}
	name, node := it.Name(), it.Node()
	out, err := readCAR(ctx, name, node, bat)
	node.Close()
	if err != nil {
		return Output{}, err
	}
	// IPFS Cluster reads the first part and ignores the others: refusing
	// them tells the client that they were not imported.
	if it.Next() {
		it.Node().Close()
		return Output{}, badRequest(fmt.Errorf("%w: %s was sent after %s, nothing was pinned (send each CAR file in its own request)", ErrCARParts, it.Name(), name))
	}
	if err := iterErr(it); err != nil {
		return Output{}, err
	}
	return out, nil
}

// readCAR reads the CAR file of the part name and hands its blocks to bat.
func readCAR(ctx context.Context, name string, node files.Node, bat *batcher) (Output, error) {
	f, ok := node.(files.File)
	if _, link := node.(*files.Symlink); link || !ok {
		return Output{}, badRequest(fmt.Errorf("%s: %w", name, ErrCARNotFile))
	}
	src := &fileReader{ctx: ctx, r: f, name: name}
	invalid := func(format string, args ...any) error {
		if src.err != nil {
			// A truncated body or a cancelled request explains the
			// failure better than what go-car made of it.
			return src.err
		}
		return badRequest(fmt.Errorf("%s: %w: %s", name, ErrInvalidCAR, fmt.Sprintf(format, args...)))
	}

	// A CARv2 tells in its header where its CARv1 payload ends, which
	// lets a truncated CARv2 be told from a complete one. A CARv1 has no
	// such length: one cut between two blocks reads as a shorter CAR
	// (and then usually fails the root check below).
	head := make([]byte, car.PragmaSize+car.HeaderSize)
	n, _ := io.ReadFull(src, head)
	if src.err != nil {
		return Output{}, src.err
	}
	if n == 0 {
		return Output{}, invalid("the file is empty (format=car expects a CARv1 or CARv2 file)")
	}
	var dataEnd uint64 // end of the CARv2 payload, 0 for a CARv1
	if n == len(head) && bytes.Equal(head[:car.PragmaSize], car.Pragma) {
		var h car.Header
		if _, err := h.ReadFrom(bytes.NewReader(head[car.PragmaSize:])); err == nil && h.DataSize <= math.MaxUint64-h.DataOffset {
			dataEnd = h.DataOffset + h.DataSize
		}
	}
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(head[:n]), src)}
	br, err := car.NewBlockReader(cr,
		car.WithTrustedCAR(false), // check every block against its CID
		car.MaxAllowedHeaderSize(maxCARHeaderSize),
	)
	if err != nil {
		return Output{}, invalid("cannot read its header: %v (format=car expects a CARv1 or CARv2 file)", err)
	}
	if len(br.Roots) != 1 {
		return Output{}, badRequest(ErrCARRoots)
	}
	root := br.Roots[0]
	out := Output{Name: name, Cid: root}

	// The root block is looked for by multihash, as IPFS stores blocks.
	// An identity root holds its data in its CID (CAR writers leave such
	// blocks out).
	haveRoot := false
	if dm, err := mh.Decode(root.Hash()); err == nil && dm.Code == mh.IDENTITY {
		haveRoot = true
		out.Size = unixfsFileSize(root, dm.Digest)
	}

	for i := 1; ; i++ {
		start := cr.n
		blk, err := br.Next()
		if err == io.EOF && cr.n != start {
			// go-car reads a section cut right after its length
			// as the end of the file.
			err = io.ErrUnexpectedEOF
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return Output{}, invalid("it ends in the middle of block %d (byte %d): the file is truncated", i, start)
			}
			return Output{}, invalid("block %d (byte %d): %v", i, start, err)
		}
		c := blk.Cid()
		if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
			return Output{}, badRequest(fmt.Errorf("%s: block %d (%s) cannot be stored in IPFS: %w", name, i, c, err))
		}
		out.Bytes += uint64(len(blk.RawData()))
		if !haveRoot && bytes.Equal(c.Hash(), root.Hash()) {
			haveRoot = true
			out.Size = unixfsFileSize(root, blk.RawData())
		}
		if c.Prefix().MhType == mh.IDENTITY {
			continue // IPFS does not store identity blocks either
		}
		if err := bat.addBlock(ctx, blk); err != nil {
			return Output{}, err
		}
	}
	if src.err != nil {
		return Output{}, src.err
	}
	if dataEnd > 0 && cr.n < dataEnd {
		return Output{}, invalid("its CARv2 header announces %d bytes, the file ends after %d: the file is truncated", dataEnd, cr.n)
	}

	// IPFS Cluster does not look for the root: it pins it anyway, and
	// IPFS then searches the network for the missing block (the pin
	// usually ends in pin_error). kubo's "dag import" keeps the blocks
	// but refuses to pin a root it does not have ("unable to pin all
	// roots"). This follows kubo: Add hands every block to the sink, but
	// returns no root, so nothing is pinned.
	if !haveRoot {
		return Output{}, badRequest(fmt.Errorf("%s: %w: the header names %s but no block of the file has it (the blocks were stored, nothing was pinned)", name, ErrCARRootMissing, root))
	}
	return out, nil
}

// unixfsFileSize returns the file size recorded in a UnixFS node: the data
// of block c when c is a dag-pb CID. It returns 0 for anything else, and
// for directories.
func unixfsFileSize(c cid.Cid, data []byte) uint64 {
	if c.Prefix().Codec != cid.DagProtobuf {
		return 0
	}
	nd, err := dag.DecodeProtobuf(data)
	if err != nil {
		return 0
	}
	fsn, err := ft.FSNodeFromBytes(nd.Data())
	if err != nil {
		return 0
	}
	return fsn.FileSize()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}
