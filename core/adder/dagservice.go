package adder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Batching limits: a batch is handed to the sink as soon as it holds
// DefaultBatchBlocks blocks or DefaultBatchBytes bytes of block data,
// whichever comes first (a single block larger than DefaultBatchBytes makes
// a batch of its own).
const (
	DefaultBatchBlocks = 64
	DefaultBatchBytes  = 4 << 20
)

// recentWindow is how many CIDs of blocks already handed to the sink are
// remembered to avoid sending the same block twice (identical chunks,
// nodes re-added by the directory code).
const recentWindow = 1024

// BlockSink receives the blocks produced by an import.
//
// PutBlocks is called by a goroutine of Add (not the caller's), one call at a
// time, with batches in the order the blocks were produced; the sink owns the
// slice it receives. It should return when ctx is cancelled. An error aborts
// the import, and Add returns it.
type BlockSink interface {
	PutBlocks(ctx context.Context, blks []blocks.Block) error
}

// BlockGetter may be implemented by a BlockSink that can read back blocks it
// has stored. The importer does not need to read blocks back with the
// current boxo importers; when it asks for a block that is no longer
// buffered, it is read through GetBlock if the sink implements it.
type BlockGetter interface {
	GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error)
}

// errBatcherClosed is returned when blocks are added after the import ended.
var errBatcherClosed = errors.New("adder: block batcher is closed")

// batcher is the format.DAGService given to the importers. Added nodes are
// buffered and handed to the sink in batches by a writer goroutine, so that
// building the next batch overlaps with the sink storing the previous one.
// The hand-over is unbuffered: while the sink stores a batch, the importer
// fills at most one more before it waits, which bounds the memory held by
// blocks to about two batches.
type batcher struct {
	ctx       context.Context
	sink      BlockSink
	getter    BlockGetter
	maxBlocks int
	maxBytes  int

	mu       sync.Mutex
	buf      []blocks.Block
	bufBytes int
	inBuf    map[cid.Cid]int // index in buf
	inflight [][]blocks.Block
	recent   cidWindow
	closed   bool

	queue  chan []blocks.Block
	failed chan struct{} // closed by the writer when the sink fails
	done   chan struct{} // closed when the writer exits
	err    error         // sink error, set before failed is closed
}

var _ ipld.DAGService = (*batcher)(nil)

func newBatcher(ctx context.Context, sink BlockSink, maxBlocks, maxBytes int) *batcher {
	if maxBlocks <= 0 {
		maxBlocks = DefaultBatchBlocks
	}
	if maxBytes <= 0 {
		maxBytes = DefaultBatchBytes
	}
	b := &batcher{
		ctx:       ctx,
		sink:      sink,
		maxBlocks: maxBlocks,
		maxBytes:  maxBytes,
		inBuf:     make(map[cid.Cid]int),
		recent:    newCidWindow(recentWindow),
		queue:     make(chan []blocks.Block),
		failed:    make(chan struct{}),
		done:      make(chan struct{}),
	}
	if g, ok := sink.(BlockGetter); ok {
		b.getter = g
	}
	go b.writer()
	return b
}

// writer hands queued batches to the sink until the queue is closed. After
// the sink fails, the remaining batches are dropped.
func (b *batcher) writer() {
	defer close(b.done)
	failed := false
	for batch := range b.queue {
		if !failed {
			if err := b.sink.PutBlocks(b.ctx, batch); err != nil {
				b.err = err
				failed = true
				close(b.failed)
			}
		}
		b.mu.Lock()
		for i, f := range b.inflight {
			if &f[0] == &batch[0] {
				b.inflight = slices.Delete(b.inflight, i, i+1)
				break
			}
		}
		b.mu.Unlock()
	}
}

// sinkErr returns the error of the sink, if it failed.
func (b *batcher) sinkErr() error {
	select {
	case <-b.failed:
		return b.err
	default:
		return nil
	}
}

// Add buffers a node, flushing the buffer when it is full.
func (b *batcher) Add(ctx context.Context, nd ipld.Node) error {
	blk, err := blocks.NewBlockWithCid(nd.RawData(), nd.Cid())
	if err != nil {
		return err
	}
	return b.addBlock(ctx, blk)
}

// addBlock buffers a block, flushing the buffer when it is full. Blocks
// still buffered or recently handed to the sink are not added again.
func (b *batcher) addBlock(ctx context.Context, blk blocks.Block) error {
	if err := b.sinkErr(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errBatcherClosed
	}
	c := blk.Cid()
	if _, ok := b.inBuf[c]; ok || b.recent.has(c) {
		b.mu.Unlock()
		return nil
	}
	b.inBuf[c] = len(b.buf)
	b.buf = append(b.buf, blk)
	b.bufBytes += len(blk.RawData())
	var batch []blocks.Block
	if len(b.buf) >= b.maxBlocks || b.bufBytes >= b.maxBytes {
		batch = b.takeLocked()
	}
	b.mu.Unlock()

	if batch == nil {
		return nil
	}
	return b.send(ctx, batch)
}

// AddMany adds several nodes.
func (b *batcher) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := b.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

// takeLocked removes the buffered blocks and records them as in flight.
func (b *batcher) takeLocked() []blocks.Block {
	if len(b.buf) == 0 {
		return nil
	}
	batch := b.buf
	for _, blk := range batch {
		b.recent.add(blk.Cid())
	}
	b.buf = make([]blocks.Block, 0, min(b.maxBlocks, 64))
	b.bufBytes = 0
	clear(b.inBuf)
	b.inflight = append(b.inflight, batch)
	return batch
}

// send hands a batch to the writer, waiting while the previous one is
// being written.
func (b *batcher) send(ctx context.Context, batch []blocks.Block) error {
	if ctx == nil {
		ctx = b.ctx
	}
	select {
	case b.queue <- batch:
		return nil
	case <-b.failed:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

// Flush queues the buffered blocks for the sink.
func (b *batcher) Flush(ctx context.Context) error {
	if err := b.sinkErr(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errBatcherClosed
	}
	batch := b.takeLocked()
	b.mu.Unlock()
	if batch == nil {
		return nil
	}
	return b.send(ctx, batch)
}

// Close flushes the buffer when flush is true, waits until the writer has
// handed every queued batch to the sink and returns the sink's error, if
// any. It must be called exactly once.
func (b *batcher) Close(flush bool) error {
	var err error
	if flush {
		err = b.Flush(b.ctx)
	}
	b.mu.Lock()
	b.closed = true
	b.buf = nil
	clear(b.inBuf)
	b.mu.Unlock()
	close(b.queue)
	<-b.done
	if serr := b.sinkErr(); serr != nil {
		return serr
	}
	return err
}

// Get returns a node that is still buffered or in flight, or reads it back
// from the sink when the sink implements BlockGetter.
func (b *batcher) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	b.mu.Lock()
	blk := b.lookupLocked(c)
	b.mu.Unlock()
	if blk == nil {
		if b.getter == nil {
			return nil, ipld.ErrNotFound{Cid: c}
		}
		var err error
		blk, err = b.getter.GetBlock(ctx, c)
		if err != nil {
			return nil, err
		}
		if blk == nil {
			return nil, ipld.ErrNotFound{Cid: c}
		}
	}
	return decodeNode(blk)
}

func (b *batcher) lookupLocked(c cid.Cid) blocks.Block {
	if i, ok := b.inBuf[c]; ok {
		return b.buf[i]
	}
	for _, batch := range b.inflight {
		for _, blk := range batch {
			if blk.Cid().Equals(c) {
				return blk
			}
		}
	}
	return nil
}

// GetMany returns the requested nodes through a channel.
func (b *batcher) GetMany(ctx context.Context, cids []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cids))
	go func() {
		defer close(out)
		for _, c := range cids {
			nd, err := b.Get(ctx, c)
			select {
			case out <- &ipld.NodeOption{Node: nd, Err: err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Remove drops a node from the buffer if it has not been handed to the sink
// yet. Blocks already handed to the sink are not removed from it.
func (b *batcher) Remove(ctx context.Context, c cid.Cid) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, ok := b.inBuf[c]
	if !ok {
		return nil
	}
	b.bufBytes -= len(b.buf[i].RawData())
	b.buf = append(b.buf[:i], b.buf[i+1:]...)
	clear(b.inBuf)
	for j, blk := range b.buf {
		b.inBuf[blk.Cid()] = j
	}
	return nil
}

// RemoveMany calls Remove for each CID.
func (b *batcher) RemoveMany(ctx context.Context, cids []cid.Cid) error {
	for _, c := range cids {
		if err := b.Remove(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// decodeNode turns a block into a node of the codecs produced by the
// importer.
func decodeNode(blk blocks.Block) (ipld.Node, error) {
	switch codec := blk.Cid().Prefix().Codec; codec {
	case cid.DagProtobuf:
		return dag.DecodeProtobufBlock(blk)
	case cid.Raw:
		return dag.DecodeRawBlock(blk)
	default:
		return nil, fmt.Errorf("adder: cannot decode block %s with codec 0x%x", blk.Cid(), codec)
	}
}

// cidWindow remembers the last n CIDs added to it.
type cidWindow struct {
	ring []cid.Cid
	next int
	set  map[cid.Cid]struct{}
}

func newCidWindow(n int) cidWindow {
	return cidWindow{ring: make([]cid.Cid, n), set: make(map[cid.Cid]struct{}, n)}
}

func (w *cidWindow) has(c cid.Cid) bool {
	_, ok := w.set[c]
	return ok
}

func (w *cidWindow) add(c cid.Cid) {
	if w.has(c) {
		return
	}
	if old := w.ring[w.next]; old.Defined() {
		delete(w.set, old)
	}
	w.ring[w.next] = c
	w.set[c] = struct{}{}
	w.next = (w.next + 1) % len(w.ring)
}
