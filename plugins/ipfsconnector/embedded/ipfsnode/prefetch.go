package ipfsnode

import (
	"context"
	"sync"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/go-cid"
)

// prefetches are the blocks that Prefetch calls are fetching, by
// multihash; each channel is closed when its block arrived or its
// Prefetch ended.
type prefetches struct {
	mu      sync.Mutex
	pending map[string]chan struct{}
}

// Prefetch starts fetching, through one exchange session and in one
// request, those of cids whose block is missing locally, and returns a
// function that stops it and waits for it to end. It serves a batch of
// pins: a Pin that needs one of these blocks waits for it rather than
// asking the network on its own, so that a batch of small pins costs the
// exchange a few messages instead of a few per pin. Prefetch reports
// nothing: a block that does not arrive is left to the Pin that needs it,
// which fails or fetches it as it would have without Prefetch. Only the
// blocks named are fetched, not the DAGs under them.
//
// With the offline exchange, or with fewer than two CIDs, Prefetch does
// nothing.
func (n *Node) Prefetch(ctx context.Context, cids []cid.Cid) (stop func()) {
	stop = func() {}
	if n.offline || len(cids) < 2 || n.checkOpen() != nil {
		return stop
	}
	var want []cid.Cid
	for _, c := range cids {
		if has, err := n.bstore.Has(ctx, c); err == nil && !has {
			want = append(want, c)
		}
	}
	want = n.prefetch.claim(want)
	if len(want) == 0 {
		return stop
	}
	ctx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer n.prefetch.release(want)
		sess := blockservice.NewSession(ctx, n.bserv)
		for blk := range sess.GetBlocks(ctx, want) {
			n.prefetch.arrived(string(blk.Cid().Hash()))
		}
	}()
	return func() {
		cancel()
		<-ended
	}
}

// claim registers the blocks of cids that no other Prefetch is fetching
// and returns them, each once.
func (p *prefetches) claim(cids []cid.Cid) []cid.Cid {
	if len(cids) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == nil {
		p.pending = make(map[string]chan struct{})
	}
	mine := cids[:0:0]
	for _, c := range cids {
		h := string(c.Hash())
		if _, busy := p.pending[h]; busy {
			continue
		}
		p.pending[h] = make(chan struct{})
		mine = append(mine, c)
	}
	return mine
}

// arrived wakes the pins waiting for the block of multihash h.
func (p *prefetches) arrived(h string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.pending[h]; ok {
		close(ch)
		delete(p.pending, h)
	}
}

// release ends the claims on cids that are still pending: the pins waiting
// for them look again and fetch on their own.
func (p *prefetches) release(cids []cid.Cid) {
	for _, c := range cids {
		p.arrived(string(c.Hash()))
	}
}

// await waits while a Prefetch is fetching c's block. It reports whether
// it waited, and ctx's error if ctx ended first.
func (p *prefetches) await(ctx context.Context, c cid.Cid) (bool, error) {
	p.mu.Lock()
	ch, ok := p.pending[string(c.Hash())]
	p.mu.Unlock()
	if !ok {
		return false, nil
	}
	select {
	case <-ch:
		return true, nil
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// awaitPrefetch waits while a Prefetch is fetching c's block and reports
// whether the block is local now. It fails, as a fetch of c would, when
// ctx ends first.
func (n *Node) awaitPrefetch(ctx context.Context, c cid.Cid) (arrived bool, err error) {
	waited, err := n.prefetch.await(ctx, c)
	if !waited {
		return false, nil
	}
	if err != nil {
		return false, &FetchError{Missing: []cid.Cid{c}, MissingCount: 1, Err: err}
	}
	has, err := n.bstore.Has(ctx, c)
	if err != nil {
		return false, err
	}
	return has, nil
}
