package kubo

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strconv"

	"github.com/ipfs/go-cid"
	mc "github.com/multiformats/go-multicodec"
	mh "github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
)

// maxBlockGetSize bounds what BlockGet reads (kubo refuses to store blocks
// over 1 MiB unless told to).
const maxBlockGetSize = 8 << 20

// BlockPut stores a batch of blocks with block/put. Kubo computes each
// block's CID from its data and the request's cid-codec, mhtype and mhlen,
// which apply to the whole request: the blocks are grouped by CID prefix
// (usually one or two groups: dag-pb nodes and raw leaves) and each group
// goes in one multipart request, written as it is sent. Every CID kubo
// answers is checked against the block's.
func (k *Connector) BlockPut(ctx context.Context, blocks []core.Block) error {
	c, cfg, err := k.client()
	if err != nil {
		return err
	}
	if len(blocks) == 0 {
		return nil
	}
	ctx, cancel := withTimeout(ctx, cfg.IPFSRequestTimeout.D(), "kubo block/put", "ipfs_request_timeout")
	defer cancel()
	var order []cid.Prefix
	groups := map[cid.Prefix][]core.Block{}
	for _, b := range blocks {
		if !b.Cid.Defined() {
			return fmt.Errorf("block/put: a block has no CID")
		}
		p := b.Cid.Prefix()
		if _, ok := groups[p]; !ok {
			order = append(order, p)
		}
		groups[p] = append(groups[p], b)
	}
	for _, p := range order {
		if err := blockPut(ctx, c, p, groups[p]); err != nil {
			return err
		}
	}
	return nil
}

// blockPutArgs are the block/put options that make kubo compute CIDs with
// prefix p.
func blockPutArgs(p cid.Prefix) (url.Values, error) {
	hashName, ok := mh.Codes[p.MhType]
	if !ok {
		return nil, fmt.Errorf("block/put: unknown multihash function 0x%x", p.MhType)
	}
	q := url.Values{"mhtype": {hashName}, "mhlen": {strconv.Itoa(p.MhLength)}}
	if p.Version == 0 {
		// The deprecated format=v0 is the only way to get a CIDv0 back.
		q.Set("format", "v0")
		return q, nil
	}
	q.Set("cid-codec", mc.Code(p.Codec).String())
	return q, nil
}

func blockPut(ctx context.Context, c *client, p cid.Prefix, blocks []core.Block) error {
	q, err := blockPutArgs(p)
	if err != nil {
		return err
	}
	// The body is written while it is sent; GetBody lets the transport
	// send it again on a fresh connection.
	boundary := multipart.NewWriter(io.Discard).Boundary()
	newBody := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			mw := multipart.NewWriter(pw)
			if err := mw.SetBoundary(boundary); err != nil {
				pw.CloseWithError(err)
				return
			}
			for i, b := range blocks {
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="block%d"`, i))
				h.Set("Content-Type", "application/octet-stream")
				w, err := mw.CreatePart(h)
				if err == nil {
					_, err = w.Write(b.Data)
				}
				if err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.CloseWithError(mw.Close())
		}()
		return pr, nil
	}
	body, _ := newBody()
	r, err := c.post(ctx, "block/put", q, body, "multipart/form-data; boundary="+boundary, newBody)
	if err != nil {
		_ = body.Close()
		return err
	}
	n := 0
	var mismatch error
	err = stream(r, func(l struct {
		Key  string
		Size int
	}) bool {
		if n >= len(blocks) {
			mismatch = fmt.Errorf("kubo block/put: more answers than blocks sent")
			return false
		}
		want := blocks[n].Cid
		n++
		got, err := cid.Decode(l.Key)
		if err != nil {
			mismatch = fmt.Errorf("kubo block/put: bad CID %q: %w", l.Key, err)
			return false
		}
		if !got.Equals(want.Cid) {
			mismatch = fmt.Errorf("kubo block/put: kubo stored the block of %s as %s: the data does not match its CID", want, got)
			return false
		}
		return true
	})
	_ = body.Close()
	if err != nil {
		return err
	}
	if mismatch != nil {
		return mismatch
	}
	if n != len(blocks) {
		return fmt.Errorf("kubo block/put: %d answers for %d blocks", n, len(blocks))
	}
	return nil
}

// BlockGet returns the data of one block (kubo fetches it from its peers
// when it does not have it, within ipfs_request_timeout).
func (k *Connector) BlockGet(ctx context.Context, ci core.Cid) ([]byte, error) {
	c, cfg, err := k.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, cfg.IPFSRequestTimeout.D(), "kubo block/get", "ipfs_request_timeout")
	defer cancel()
	r, err := c.post(ctx, "block/get", url.Values{"arg": {ci.String()}}, nil, "", nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r.resp.Body, maxBlockGetSize+1))
	if err != nil {
		return nil, r.readError(err)
	}
	if len(data) > maxBlockGetSize {
		return nil, fmt.Errorf("kubo block/get: block %s is larger than %d bytes", ci, maxBlockGetSize)
	}
	if err := r.trailerError(); err != nil {
		return nil, err
	}
	return data, nil
}
