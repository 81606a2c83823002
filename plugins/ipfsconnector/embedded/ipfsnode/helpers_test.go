package ipfsnode

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	basicnode "github.com/ipld/go-ipld-prime/node/basic"
	mh "github.com/multiformats/go-multihash"
)

// memDAG is an in-memory DAG service that records the nodes added to it, in
// order. Tests build DAGs into it, then copy its blocks into a Node.
type memDAG struct {
	mu    sync.Mutex
	nodes map[cid.Cid]format.Node
	order []cid.Cid
}

var _ format.DAGService = (*memDAG)(nil)

func newMemDAG() *memDAG {
	return &memDAG{nodes: make(map[cid.Cid]format.Node)}
}

func (m *memDAG) Get(_ context.Context, c cid.Cid) (format.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	nd, ok := m.nodes[c]
	if !ok {
		return nil, format.ErrNotFound{Cid: c}
	}
	return nd, nil
}

func (m *memDAG) GetMany(ctx context.Context, cids []cid.Cid) <-chan *format.NodeOption {
	out := make(chan *format.NodeOption, len(cids))
	for _, c := range cids {
		nd, err := m.Get(ctx, c)
		out <- &format.NodeOption{Node: nd, Err: err}
	}
	close(out)
	return out
}

func (m *memDAG) Add(_ context.Context, nd format.Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nodes[nd.Cid()]; !ok {
		m.nodes[nd.Cid()] = nd
		m.order = append(m.order, nd.Cid())
	}
	return nil
}

func (m *memDAG) AddMany(ctx context.Context, nds []format.Node) error {
	for _, nd := range nds {
		if err := m.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

func (m *memDAG) Remove(context.Context, cid.Cid) error {
	return fmt.Errorf("memDAG: remove not supported")
}

func (m *memDAG) RemoveMany(context.Context, []cid.Cid) error {
	return fmt.Errorf("memDAG: remove not supported")
}

// blocks returns every block added so far.
func (m *memDAG) blocks() []blocks.Block {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]blocks.Block, 0, len(m.order))
	for _, c := range m.order {
		out = append(out, m.nodes[c])
	}
	return out
}

// blocksUnder returns the blocks of the DAG under root.
func (m *memDAG) blocksUnder(t testing.TB, root cid.Cid) []blocks.Block {
	t.Helper()
	var out []blocks.Block
	seen := cid.NewSet()
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		if !seen.Visit(c) {
			return
		}
		nd, err := m.Get(context.Background(), c)
		if err != nil {
			t.Fatalf("memDAG: %s", err)
		}
		out = append(out, nd)
		for _, l := range nd.Links() {
			walk(l.Cid)
		}
	}
	walk(root)
	return out
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// addFile imports data as a UnixFS file (balanced layout, chunks of
// chunkSize bytes) into dag. rawLeaves selects raw leaves and CIDv1.
func addFile(t testing.TB, dag format.DAGService, data []byte, chunkSize int64, rawLeaves bool) format.Node {
	t.Helper()
	params := helpers.DagBuilderParams{
		Dagserv:   dag,
		Maxlinks:  helpers.DefaultLinksPerBlock,
		RawLeaves: rawLeaves,
	}
	if rawLeaves {
		params.CidBuilder = merkledag.V1CidPrefix()
	}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

// testTree is a small UnixFS tree:
//
//	/a.txt        multi-block file, dag-pb leaves, CIDv0
//	/sub/b.bin    multi-block file, raw leaves, CIDv1
//	/sub/c.txt    single-block file
type testTree struct {
	dag                *memDAG
	root, sub, a, b, c cid.Cid
}

func buildTree(t testing.TB, seed uint64) *testTree {
	t.Helper()
	ctx := context.Background()
	dag := newMemDAG()
	a := addFile(t, dag, randomBytes(seed, 10_000), 1024, false)
	b := addFile(t, dag, randomBytes(seed+1, 5_000), 1000, true)
	c := addFile(t, dag, fmt.Appendf(nil, "hello %d", seed), 1024, false)

	sub, err := uio.NewDirectory(dag)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.AddChild(ctx, "b.bin", b); err != nil {
		t.Fatal(err)
	}
	if err := sub.AddChild(ctx, "c.txt", c); err != nil {
		t.Fatal(err)
	}
	subNd, err := sub.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dag.Add(ctx, subNd); err != nil {
		t.Fatal(err)
	}

	root, err := uio.NewDirectory(dag)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.AddChild(ctx, "a.txt", a); err != nil {
		t.Fatal(err)
	}
	if err := root.AddChild(ctx, "sub", subNd); err != nil {
		t.Fatal(err)
	}
	rootNd, err := root.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dag.Add(ctx, rootNd); err != nil {
		t.Fatal(err)
	}
	return &testTree{
		dag:  dag,
		root: rootNd.Cid(),
		sub:  subNd.Cid(),
		a:    a.Cid(),
		b:    b.Cid(),
		c:    c.Cid(),
	}
}

// cborBlock encodes a dag-cbor block built by fn.
func cborBlock(t testing.TB, fn func(ma datamodel.MapAssembler)) blocks.Block {
	t.Helper()
	nd, err := qp.BuildMap(basicnode.Prototype.Any, -1, fn)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(nd, &buf); err != nil {
		t.Fatal(err)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	blk, err := blocks.NewBlockWithCid(buf.Bytes(), c)
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

func cborLink(c cid.Cid) qp.Assemble {
	return qp.Link(cidlink.Link{Cid: c})
}

// rawBlock returns a raw block holding data.
func rawBlock(t testing.TB, data []byte) blocks.Block {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

// openNode opens a node on dir (a fresh temporary folder when empty) and
// closes it at the end of the test.
func openNode(t testing.TB, opts Options) *Node {
	t.Helper()
	if opts.Path == "" && !opts.InMemory {
		opts.Path = t.TempDir()
	}
	n, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func putBlocks(t testing.TB, n *Node, blks []blocks.Block) {
	t.Helper()
	if err := n.PutBlocks(context.Background(), blks); err != nil {
		t.Fatal(err)
	}
}

// listPins returns every recursive and direct pin, by CID.
func listPins(t testing.TB, n *Node) map[cid.Cid]PinType {
	t.Helper()
	pins := make(map[cid.Cid]PinType)
	err := n.PinLs(context.Background(), func(p PinInfo) error {
		if prev, dup := pins[p.Cid]; dup {
			t.Errorf("PinLs reported %s twice (%s, %s)", p.Cid, prev, p.Type)
		}
		pins[p.Cid] = p.Type
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pins
}

// testExchange is an exchange serving blocks from a map. Requests for other
// blocks wait until their context is done, like a network exchange that
// cannot find providers. Blocks can be added later with provide.
type testExchange struct {
	mu      sync.Mutex
	blocks  map[string]blocks.Block // by multihash
	added   chan struct{}           // closed and replaced on each provide
	closed  bool
	fetches int // blocks served
	gets    int // GetBlock calls
	batches int // GetBlocks calls
}

var _ exchange.Interface = (*testExchange)(nil)

func newTestExchange(blks ...blocks.Block) *testExchange {
	e := &testExchange{blocks: make(map[string]blocks.Block), added: make(chan struct{})}
	e.provide(blks...)
	return e
}

func (e *testExchange) provide(blks ...blocks.Block) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range blks {
		e.blocks[string(b.Cid().Hash())] = b
	}
	close(e.added)
	e.added = make(chan struct{})
}

func (e *testExchange) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	e.mu.Lock()
	e.gets++
	e.mu.Unlock()
	return e.get(ctx, c)
}

func (e *testExchange) get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	for {
		e.mu.Lock()
		b, ok := e.blocks[string(c.Hash())]
		added := e.added
		if ok {
			e.fetches++
		}
		e.mu.Unlock()
		if ok {
			return blocks.NewBlockWithCid(b.RawData(), c)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-added:
		}
	}
}

// GetBlocks serves each block as soon as it is provided, in any order.
func (e *testExchange) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan blocks.Block, error) {
	e.mu.Lock()
	e.batches++
	e.mu.Unlock()
	out := make(chan blocks.Block)
	var wg sync.WaitGroup
	for _, c := range cids {
		wg.Go(func() {
			b, err := e.get(ctx, c)
			if err != nil {
				return
			}
			select {
			case out <- b:
			case <-ctx.Done():
			}
		})
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}

func (e *testExchange) NotifyNewBlocks(context.Context, ...blocks.Block) error { return nil }

func (e *testExchange) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
}

func (e *testExchange) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func (e *testExchange) fetchCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fetches
}

// calls returns how many GetBlock and GetBlocks calls were made.
func (e *testExchange) calls() (gets, batches int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gets, e.batches
}

// buildHAMTDir builds a HAMT-sharded UnixFS directory of count small files
// into dag. It returns the directory CID, the file names and the file CIDs.
func buildHAMTDir(t testing.TB, dag format.DAGService, count int) (cid.Cid, []string, []cid.Cid) {
	t.Helper()
	ctx := context.Background()
	dir, err := uio.NewHAMTDirectory(dag, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, count)
	files := make([]cid.Cid, count)
	for i := range count {
		nd := addFile(t, dag, fmt.Appendf(nil, "file number %d", i), 1024, false)
		names[i] = fmt.Sprintf("file-%03d.txt", i)
		files[i] = nd.Cid()
		if err := dir.AddChild(ctx, names[i], nd); err != nil {
			t.Fatal(err)
		}
	}
	root, err := dir.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dag.Add(ctx, root); err != nil {
		t.Fatal(err)
	}
	return root.Cid(), names, files
}
