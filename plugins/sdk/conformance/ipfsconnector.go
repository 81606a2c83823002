// Package conformance holds the test suites that check an implementation
// of a plugin kind against the semantics the core relies on. A plugin's
// tests run the suite of its kind on their own implementation, in process
// and through the real plugin boundary (package sdktest).
package conformance

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
)

// ipfsCallTimeout bounds each subtest's calls.
const ipfsCallTimeout = 60 * time.Second

// ipfsUnavailableTimeout is the Timeout of pin requests for content that does
// not exist anywhere.
const ipfsUnavailableTimeout = 2 * time.Second

// ipfsUnavailableSlack is how much later than its timeout such a pin may fail.
const ipfsUnavailableSlack = 20 * time.Second

// TestIPFSConnector runs the IPFS connector suite:
//
//	func TestConformance(t *testing.T) {
//		conformance.TestIPFSConnector(t, func(t *testing.T) core.IPFSConnector {
//			return sdktest.ConnectIPFSConnector(t, myconnector.New(), cfg, nil)
//		})
//	}
//
// newConnector returns a configured connector (possibly through sdktest);
// it is called once per subtest, and the connectors it returns may share
// one IPFS node, which may hold other content: the suite creates its own
// (random, so that runs never collide) and asserts only about it.
//
// What it checks, with DAGs built of dag-pb (CIDv0 and CIDv1), raw and
// sha2-512 blocks: block put and get (and that a block whose data does not
// match its CID is refused); recursive and direct pins; that pin results
// stream back one per request, in completion order, and that a consumer
// may stop early; that PinLs and PinLsCids agree; unpin, including of CIDs
// that are not pinned; repo stat; that repo GC removes unpinned blocks and
// only them; resolution of paths inside a directory; and that a pin of
// content that exists nowhere fails within its timeout.
func TestIPFSConnector(t *testing.T, newConnector func(t *testing.T) core.IPFSConnector) {
	t.Run("ID", func(t *testing.T) { ipfsTestID(t, newConnector(t)) })
	t.Run("BlockPutGet", func(t *testing.T) { ipfsTestBlockPutGet(t, newConnector(t)) })
	t.Run("BlockPutRefusesMismatch", func(t *testing.T) { ipfsTestBlockPutMismatch(t, newConnector(t)) })
	t.Run("PinRecursive", func(t *testing.T) { ipfsTestPinRecursive(t, newConnector(t)) })
	t.Run("PinDirect", func(t *testing.T) { ipfsTestPinDirect(t, newConnector(t)) })
	t.Run("PinResultsStream", func(t *testing.T) { ipfsTestPinStream(t, newConnector(t)) })
	t.Run("PinStopEarly", func(t *testing.T) { ipfsTestPinStopEarly(t, newConnector(t)) })
	t.Run("PinLsAgrees", func(t *testing.T) { ipfsTestPinLsAgrees(t, newConnector(t)) })
	t.Run("Unpin", func(t *testing.T) { ipfsTestUnpin(t, newConnector(t)) })
	t.Run("RepoStat", func(t *testing.T) { ipfsTestRepoStat(t, newConnector(t)) })
	t.Run("RepoGC", func(t *testing.T) { ipfsTestRepoGC(t, newConnector(t)) })
	t.Run("Resolve", func(t *testing.T) { ipfsTestResolve(t, newConnector(t)) })
	t.Run("PinUnavailableFailsInTime", func(t *testing.T) { ipfsTestPinUnavailable(t, newConnector(t)) })
	t.Run("SwarmPeers", func(t *testing.T) { ipfsTestSwarmPeers(t, newConnector(t)) })
}

func ipfsCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ipfsCallTimeout)
	t.Cleanup(cancel)
	return ctx
}

func ipfsRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func ipfsRawBlock(t *testing.T, data []byte, hash uint64) core.Block {
	t.Helper()
	sum, err := mh.Sum(data, hash, -1)
	if err != nil {
		t.Fatal(err)
	}
	return core.Block{Cid: core.NewCid(cid.NewCidV1(cid.Raw, sum)), Data: data}
}

func ipfsProtoBlock(nd *merkledag.ProtoNode) core.Block {
	return core.Block{Cid: core.NewCid(nd.Cid()), Data: nd.RawData()}
}

// DAG is a small UnixFS tree:
//
//	root (directory, dag-pb CIDv0)
//	├── a.txt  raw leaf (CIDv1, sha2-256)
//	├── c.txt  file node with its data inline (dag-pb CIDv0)
//	└── sub    directory (dag-pb CIDv1)
//	    └── b.bin  file node (dag-pb CIDv1) over two raw leaves, one
//	               hashed with sha2-512
type DAG struct {
	Root, A, C, Sub, B core.Block
	Leaves             []core.Block
}

// Blocks returns every block, children before parents.
func (d DAG) Blocks() []core.Block {
	return append(slices.Clone(d.Leaves), d.A, d.C, d.B, d.Sub, d.Root)
}

// Cids returns the CIDs of every block.
func (d DAG) Cids() []core.Cid {
	var out []core.Cid
	for _, b := range d.Blocks() {
		out = append(out, b.Cid)
	}
	return out
}

// NewDAG builds a DAG of random content.
func NewDAG(t *testing.T) DAG {
	t.Helper()
	v1 := cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}
	var d DAG

	d.A = ipfsRawBlock(t, ipfsRandom(300), mh.SHA2_256)

	cData := ipfsRandom(50)
	cNode := merkledag.NodeWithData(unixfs.FilePBData(cData, uint64(len(cData))))
	d.C = ipfsProtoBlock(cNode)

	l1 := ipfsRawBlock(t, ipfsRandom(1000), mh.SHA2_256)
	l2 := ipfsRawBlock(t, ipfsRandom(700), mh.SHA2_512)
	d.Leaves = []core.Block{l1, l2}
	fsn := unixfs.NewFSNode(unixfspb.Data_File)
	fsn.AddBlockSize(uint64(len(l1.Data)))
	fsn.AddBlockSize(uint64(len(l2.Data)))
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	bNode := merkledag.NodeWithData(data)
	if err := bNode.SetCidBuilder(v1); err != nil {
		t.Fatal(err)
	}
	for _, l := range []core.Block{l1, l2} {
		if err := bNode.AddRawLink("", &format.Link{Cid: l.Cid.Cid, Size: uint64(len(l.Data))}); err != nil {
			t.Fatal(err)
		}
	}
	d.B = ipfsProtoBlock(bNode)

	sub := merkledag.NodeWithData(unixfs.FolderPBData())
	if err := sub.SetCidBuilder(v1); err != nil {
		t.Fatal(err)
	}
	if err := sub.AddNodeLink("b.bin", bNode); err != nil {
		t.Fatal(err)
	}
	d.Sub = ipfsProtoBlock(sub)

	root := merkledag.NodeWithData(unixfs.FolderPBData())
	if err := root.AddRawLink("a.txt", &format.Link{Cid: d.A.Cid.Cid, Size: uint64(len(d.A.Data))}); err != nil {
		t.Fatal(err)
	}
	if err := root.AddNodeLink("c.txt", cNode); err != nil {
		t.Fatal(err)
	}
	if err := root.AddNodeLink("sub", sub); err != nil {
		t.Fatal(err)
	}
	d.Root = ipfsProtoBlock(root)
	return d
}

// MissingCid returns the CID of content that exists nowhere.
func MissingCid(t *testing.T) core.Cid {
	return ipfsRawBlock(t, ipfsRandom(64), mh.SHA2_256).Cid
}

func ipfsPut(t *testing.T, ctx context.Context, c core.IPFSConnector, blocks ...core.Block) {
	t.Helper()
	if err := c.BlockPut(ctx, blocks); err != nil {
		t.Fatalf("BlockPut: %v", err)
	}
}

// ipfsPinAll pins and fails the test on any error.
func ipfsPinAll(t *testing.T, ctx context.Context, c core.IPFSConnector, reqs ...core.IPFSPinRequest) {
	t.Helper()
	res := ipfsCollect(t, c.Pin(ctx, reqs))
	for _, r := range reqs {
		if e, ok := res[r.Cid.String()]; !ok || e != "" {
			t.Fatalf("pin of %s: answered %t, error %q", r.Cid, ok, e)
		}
	}
}

// ipfsCollect reads a result stream into CID -> error text, checking that
// every CID is answered once.
func ipfsCollect(t *testing.T, seq func(func(core.IPFSPinResult, error) bool)) map[string]string {
	t.Helper()
	out := map[string]string{}
	for r, err := range seq {
		if err != nil {
			t.Fatalf("stream error: %v", err)
		}
		if _, dup := out[r.Cid.String()]; dup {
			t.Fatalf("%s answered twice", r.Cid)
		}
		out[r.Cid.String()] = r.Error
	}
	return out
}

func ipfsPinTypes(t *testing.T, ctx context.Context, c core.IPFSConnector, cids ...core.Cid) []core.IPFSPinStatus {
	t.Helper()
	infos, err := c.PinLsCids(ctx, cids)
	if err != nil {
		t.Fatalf("PinLsCids: %v", err)
	}
	if len(infos) != len(cids) {
		t.Fatalf("PinLsCids answered %d entries for %d CIDs", len(infos), len(cids))
	}
	out := make([]core.IPFSPinStatus, len(infos))
	for i, in := range infos {
		if !in.Cid.Equals(cids[i]) {
			t.Fatalf("PinLsCids entry %d is %s, want %s (request order)", i, in.Cid, cids[i])
		}
		out[i] = in.Type
	}
	return out
}

func ipfsExpectTypes(t *testing.T, ctx context.Context, c core.IPFSConnector, cids []core.Cid, want []core.IPFSPinStatus) {
	t.Helper()
	got := ipfsPinTypes(t, ctx, c, cids...)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("PinLsCids(%s) = %q, want %q", cids[i], got[i], want[i])
		}
	}
}

func ipfsTestID(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	id, err := c.ID(ctx)
	if err != nil {
		t.Fatalf("ID: %v", err)
	}
	if id.ID == "" || id.ID.Validate() != nil {
		t.Fatalf("ID returned no valid peer ID: %+v", id)
	}
	again, err := c.ID(ctx)
	if err != nil || again.ID != id.ID {
		t.Fatalf("second ID: %s %v, first %s", again.ID, err, id.ID)
	}
}

func ipfsTestBlockPutGet(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	d := NewDAG(t)
	blocks := d.Blocks()
	ipfsPut(t, ctx, c, blocks...)
	ipfsPut(t, ctx, c, blocks[:2]...) // again: nothing changes
	if err := c.BlockPut(ctx, nil); err != nil {
		t.Fatalf("BlockPut of no blocks: %v", err)
	}
	for _, b := range blocks {
		data, err := c.BlockGet(ctx, b.Cid)
		if err != nil {
			t.Fatalf("BlockGet %s: %v", b.Cid, err)
		}
		if string(data) != string(b.Data) {
			t.Fatalf("BlockGet %s returned %d bytes that differ from the %d put", b.Cid, len(data), len(b.Data))
		}
	}
}

func ipfsTestBlockPutMismatch(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	bad := ipfsRawBlock(t, ipfsRandom(32), mh.SHA2_256)
	bad.Data = ipfsRandom(32)
	if err := c.BlockPut(ctx, []core.Block{bad}); err == nil {
		t.Fatal("a block whose data does not match its CID was accepted")
	}
}

func ipfsTestPinRecursive(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	d := NewDAG(t)
	ipfsPut(t, ctx, c, d.Blocks()...)
	ipfsPinAll(t, ctx, c, core.IPFSPinRequest{Cid: d.Root.Cid, MaxDepth: -1})
	ipfsPinAll(t, ctx, c, core.IPFSPinRequest{Cid: d.Root.Cid, MaxDepth: -1}) // again: still fine
	cids := d.Cids()
	want := make([]core.IPFSPinStatus, len(cids))
	want[len(want)-1] = core.IPFSPinStatusRecursive // the root; the rest is indirect
	ipfsExpectTypes(t, ctx, c, cids, want)

	// A recursive pin needs the whole DAG: with a block missing it fails.
	d2 := NewDAG(t)
	ipfsPut(t, ctx, c, d2.Root, d2.A, d2.C, d2.Sub, d2.B) // no leaves of b.bin
	res := ipfsCollect(t, c.Pin(ctx, []core.IPFSPinRequest{{Cid: d2.Root.Cid, MaxDepth: -1, Timeout: ipfsUnavailableTimeout}}))
	if res[d2.Root.Cid.String()] == "" {
		t.Fatal("a recursive pin of a DAG with missing blocks succeeded")
	}
	ipfsExpectTypes(t, ctx, c, []core.Cid{d2.Root.Cid}, []core.IPFSPinStatus{core.IPFSPinStatusUnpinned})
}

func ipfsTestPinDirect(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	d := NewDAG(t)
	// Only the root: a direct pin does not need the children.
	ipfsPut(t, ctx, c, d.Root)
	// (With a timeout: a connector that pins recursively would wait for
	// the missing children.)
	ipfsPinAll(t, ctx, c, core.IPFSPinRequest{Cid: d.Root.Cid, MaxDepth: 0, Timeout: 10 * time.Second})
	ipfsExpectTypes(t, ctx, c, []core.Cid{d.Root.Cid, d.A.Cid}, []core.IPFSPinStatus{core.IPFSPinStatusDirect, core.IPFSPinStatusUnpinned})
}

func ipfsTestPinStream(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	var reqs []core.IPFSPinRequest
	var avail []core.Block
	for i := range 12 {
		b := ipfsRawBlock(t, ipfsRandom(100+i), mh.SHA2_256)
		avail = append(avail, b)
		reqs = append(reqs, core.IPFSPinRequest{Cid: b.Cid, MaxDepth: -1 + i%2})
	}
	ipfsPut(t, ctx, c, avail...)
	missing := MissingCid(t)
	reqs = append([]core.IPFSPinRequest{{Cid: missing, MaxDepth: -1, Timeout: ipfsUnavailableTimeout}}, reqs...)

	start := time.Now()
	type arrival struct {
		at  time.Duration
		err string
	}
	got := map[string]arrival{}
	for r, err := range c.Pin(ctx, reqs) {
		if err != nil {
			t.Fatalf("stream error: %v", err)
		}
		if _, dup := got[r.Cid.String()]; dup {
			t.Fatalf("%s answered twice", r.Cid)
		}
		got[r.Cid.String()] = arrival{time.Since(start), r.Error}
	}
	if len(got) != len(reqs) {
		t.Fatalf("%d results for %d requests", len(got), len(reqs))
	}
	m := got[missing.String()]
	if m.err == "" {
		t.Fatal("the pin of unavailable content succeeded")
	}
	for _, b := range avail {
		a := got[b.Cid.String()]
		if a.err != "" {
			t.Fatalf("pin of %s failed: %s", b.Cid, a.err)
		}
		// A pin that took a while to fail must not have held back the
		// others: results come in completion order, as pins complete.
		if m.at > time.Second && a.at > m.at/2 {
			t.Errorf("the result of %s came after %s, the failed pin's after %s: results are not in completion order (they must stream as pins complete)", b.Cid, a.at, m.at)
		}
	}
	want := make([]core.IPFSPinStatus, len(avail))
	cids := make([]core.Cid, len(avail))
	for i, b := range avail {
		cids[i] = b.Cid
		want[i] = core.IPFSPinStatusRecursive
		if i%2 == 1 {
			want[i] = core.IPFSPinStatusDirect
		}
	}
	ipfsExpectTypes(t, ctx, c, cids, want)
}

func ipfsTestPinStopEarly(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	var reqs []core.IPFSPinRequest
	var blocks []core.Block
	for range 40 {
		b := ipfsRawBlock(t, ipfsRandom(64), mh.SHA2_256)
		blocks = append(blocks, b)
		reqs = append(reqs, core.IPFSPinRequest{Cid: b.Cid, MaxDepth: -1})
	}
	ipfsPut(t, ctx, c, blocks...)
	done := make(chan int)
	go func() {
		n := 0
		for _, err := range c.Pin(ctx, reqs) {
			if err != nil {
				t.Errorf("stream error: %v", err)
			}
			n++
			break
		}
		done <- n
	}()
	select {
	case n := <-done:
		if n != 1 {
			t.Fatalf("read %d results before stopping", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stopping after the first result did not return")
	}
	// The connector still works.
	ipfsPinAll(t, ctx, c, reqs[len(reqs)-1])
}

func ipfsTestPinLsAgrees(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	d := NewDAG(t)
	direct := ipfsRawBlock(t, ipfsRandom(80), mh.SHA2_256)
	ipfsPut(t, ctx, c, append(d.Blocks(), direct)...)
	ipfsPinAll(t, ctx, c,
		core.IPFSPinRequest{Cid: d.Root.Cid, MaxDepth: -1},
		core.IPFSPinRequest{Cid: direct.Cid, MaxDepth: 0})
	missing := MissingCid(t)
	cids := []core.Cid{d.A.Cid, d.Root.Cid, missing, direct.Cid, d.Sub.Cid, d.Root.Cid}
	want := []core.IPFSPinStatus{"", core.IPFSPinStatusRecursive, "", core.IPFSPinStatusDirect, "", core.IPFSPinStatusRecursive}
	ipfsExpectTypes(t, ctx, c, cids, want)

	listed := map[string]core.IPFSPinStatus{}
	for pi, err := range c.PinLs(ctx) {
		if err != nil {
			t.Fatalf("PinLs: %v", err)
		}
		if !pi.Type.IsPinned() {
			t.Fatalf("PinLs listed %s as %q: only recursive and direct pins belong there", pi.Cid, pi.Type)
		}
		if _, dup := listed[pi.Cid.String()]; dup {
			t.Fatalf("PinLs listed %s twice", pi.Cid)
		}
		listed[pi.Cid.String()] = pi.Type
	}
	for i, ci := range cids {
		if listed[ci.String()] != want[i] {
			t.Errorf("PinLs has %s as %q, PinLsCids as %q", ci, listed[ci.String()], want[i])
		}
	}
	// Every listed pin is confirmed by PinLsCids (a sample, to keep it short
	// on a node with many pins).
	var sample []core.Cid
	for s := range listed {
		if len(sample) == 64 {
			break
		}
		ci, err := core.DecodeCid(s)
		if err != nil {
			t.Fatal(err)
		}
		sample = append(sample, ci)
	}
	types := ipfsPinTypes(t, ctx, c, sample...)
	for i, ci := range sample {
		if types[i] != listed[ci.String()] {
			t.Errorf("PinLs has %s as %q, PinLsCids as %q", ci, listed[ci.String()], types[i])
		}
	}
}

func ipfsTestUnpin(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	d := NewDAG(t)
	direct := ipfsRawBlock(t, ipfsRandom(80), mh.SHA2_256)
	ipfsPut(t, ctx, c, append(d.Blocks(), direct)...)
	ipfsPinAll(t, ctx, c,
		core.IPFSPinRequest{Cid: d.Root.Cid, MaxDepth: -1},
		core.IPFSPinRequest{Cid: direct.Cid, MaxDepth: 0})

	// A child pinned only through its parent: nothing to unpin, no error,
	// and the parent's pin stays.
	res := ipfsCollect(t, c.Unpin(ctx, []core.Cid{d.Sub.Cid}))
	if e, ok := res[d.Sub.Cid.String()]; !ok || e != "" {
		t.Errorf("unpin of an indirectly pinned CID: answered %t, error %q", ok, e)
	}
	ipfsExpectTypes(t, ctx, c, []core.Cid{d.Root.Cid}, []core.IPFSPinStatus{core.IPFSPinStatusRecursive})

	never := MissingCid(t)
	cids := []core.Cid{d.Root.Cid, direct.Cid, never}
	res = ipfsCollect(t, c.Unpin(ctx, cids))
	for _, ci := range cids {
		e, ok := res[ci.String()]
		if !ok || e != "" {
			t.Errorf("unpin of %s: answered %t, error %q", ci, ok, e)
		}
	}
	ipfsExpectTypes(t, ctx, c, cids, []core.IPFSPinStatus{"", "", ""})
	// Unpinning again is not an error either.
	res = ipfsCollect(t, c.Unpin(ctx, []core.Cid{d.Root.Cid, direct.Cid}))
	if len(res) != 2 || res[d.Root.Cid.String()] != "" || res[direct.Cid.String()] != "" {
		t.Errorf("second unpin: %v", res)
	}
	if n := len(ipfsCollect(t, c.Unpin(ctx, nil))); n != 0 {
		t.Errorf("unpin of nothing gave %d results", n)
	}
}

func ipfsTestRepoStat(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	ipfsPut(t, ctx, c, ipfsRawBlock(t, ipfsRandom(4096), mh.SHA2_256))
	st, err := c.RepoStat(ctx)
	if err != nil {
		t.Fatalf("RepoStat: %v", err)
	}
	if st.StorageMax == 0 || st.RepoSize == 0 {
		t.Fatalf("RepoStat: %+v: want a positive size and limit", st)
	}
}

func ipfsMhKey(c core.Cid) string { return string(c.Hash()) }

func ipfsTestRepoGC(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	d := NewDAG(t)
	direct := ipfsRawBlock(t, ipfsRandom(90), mh.SHA2_256)
	loose := []core.Block{ipfsRawBlock(t, ipfsRandom(91), mh.SHA2_256), ipfsRawBlock(t, ipfsRandom(92), mh.SHA2_512)}
	looseNode := merkledag.NodeWithData(unixfs.FilePBData(ipfsRandom(20), 20))
	loose = append(loose, ipfsProtoBlock(looseNode))
	ipfsPut(t, ctx, c, append(append(d.Blocks(), direct), loose...)...)
	ipfsPinAll(t, ctx, c,
		core.IPFSPinRequest{Cid: d.Root.Cid, MaxDepth: -1},
		core.IPFSPinRequest{Cid: direct.Cid, MaxDepth: 0})

	removed := map[string]bool{}
	for k, err := range c.RepoGC(ctx) {
		if err != nil {
			t.Fatalf("RepoGC: %v", err)
		}
		if k.Error != "" {
			t.Errorf("RepoGC reported an error for %s: %s", k.Key, k.Error)
			continue
		}
		removed[ipfsMhKey(k.Key)] = true
	}
	for _, b := range loose {
		if !removed[ipfsMhKey(b.Cid)] {
			t.Errorf("RepoGC did not remove the unpinned block %s", b.Cid)
		}
	}
	for _, b := range append(d.Blocks(), direct) {
		if removed[ipfsMhKey(b.Cid)] {
			t.Errorf("RepoGC removed the pinned block %s", b.Cid)
		}
		if _, err := c.BlockGet(ctx, b.Cid); err != nil {
			t.Errorf("pinned block %s is gone after GC: %v", b.Cid, err)
		}
	}
}

func ipfsTestResolve(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	d := NewDAG(t)
	ipfsPut(t, ctx, c, d.Blocks()...)
	root := d.Root.Cid.String()
	for p, want := range map[string]core.Cid{
		"/ipfs/" + root:                d.Root.Cid,
		"/ipfs/" + root + "/a.txt":     d.A.Cid,
		"/ipfs/" + root + "/c.txt":     d.C.Cid,
		"/ipfs/" + root + "/sub":       d.Sub.Cid,
		"/ipfs/" + root + "/sub/":      d.Sub.Cid,
		"/ipfs/" + root + "/sub/b.bin": d.B.Cid,
		"/ipld/" + root:                d.Root.Cid,
	} {
		got, err := c.Resolve(ctx, p)
		if err != nil {
			t.Errorf("Resolve(%s): %v", p, err)
			continue
		}
		if !got.Equals(want) {
			t.Errorf("Resolve(%s) = %s, want %s", p, got, want)
		}
	}
	for _, p := range []string{"/ipfs/" + root + "/nope", "/ipfs/" + root + "/sub/nope", "not-a-path"} {
		if got, err := c.Resolve(ctx, p); err == nil {
			t.Errorf("Resolve(%s) = %s, want an error", p, got)
		}
	}
}

func ipfsTestPinUnavailable(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	missing := MissingCid(t)
	start := time.Now()
	res := ipfsCollect(t, c.Pin(ctx, []core.IPFSPinRequest{{Cid: missing, MaxDepth: -1, Timeout: ipfsUnavailableTimeout}}))
	took := time.Since(start)
	if e, ok := res[missing.String()]; !ok || e == "" {
		t.Fatalf("pin of unavailable content: answered %t, error %q", ok, e)
	}
	if took > ipfsUnavailableTimeout+ipfsUnavailableSlack {
		t.Fatalf("pin of unavailable content failed after %s; its timeout was %s", took, ipfsUnavailableTimeout)
	}
	ipfsExpectTypes(t, ctx, c, []core.Cid{missing}, []core.IPFSPinStatus{""})
}

func ipfsTestSwarmPeers(t *testing.T, c core.IPFSConnector) {
	ctx := ipfsCtx(t)
	peers, err := c.SwarmPeers(ctx)
	if err != nil {
		t.Fatalf("SwarmPeers: %v", err)
	}
	seen := map[core.PeerID]bool{}
	for _, p := range peers {
		if seen[p] {
			t.Errorf("SwarmPeers lists %s twice", p)
		}
		seen[p] = true
	}
}
