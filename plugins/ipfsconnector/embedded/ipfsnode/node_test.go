package ipfsnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/path/resolver"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
)

func TestPutGetHasBlocks(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	tree := buildTree(t, 1)
	blks := tree.dag.blocks()
	putBlocks(t, n, blks)
	// Putting the same blocks again is fine.
	putBlocks(t, n, blks)

	for _, b := range blks {
		has, err := n.HasBlock(ctx, b.Cid())
		if err != nil || !has {
			t.Fatalf("HasBlock(%s) = %v, %v", b.Cid(), has, err)
		}
		got, err := n.GetBlock(ctx, b.Cid())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("GetBlock(%s) returned other data", b.Cid())
		}
	}

	missing := rawBlock(t, []byte("never stored"))
	has, err := n.HasBlock(ctx, missing.Cid())
	if err != nil || has {
		t.Fatalf("HasBlock(missing) = %v, %v", has, err)
	}
	if _, err := n.GetBlock(ctx, missing.Cid()); !format.IsNotFound(err) {
		t.Fatalf("GetBlock(missing): want a not-found error, got %v", err)
	}

	// The DAG service reads what PutBlocks wrote.
	nd, err := n.DAGService().Get(ctx, tree.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(nd.Links()) != 2 {
		t.Fatalf("root has %d links, want 2", len(nd.Links()))
	}
}

func TestPutBlocksRejectsCorruptBlock(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	good := rawBlock(t, []byte("good"))
	bad, err := blocks.NewBlockWithCid([]byte("tampered"), rawBlock(t, []byte("original")).Cid())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PutBlocks(ctx, []blocks.Block{good, bad}); err == nil {
		t.Fatal("PutBlocks accepted a block whose data does not match its CID")
	}
	for _, b := range []blocks.Block{good, bad} {
		if has, _ := n.HasBlock(ctx, b.Cid()); has {
			t.Fatalf("block %s stored despite the failed PutBlocks", b.Cid())
		}
	}
}

func TestPinRecursiveDirectAndIsPinned(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	tree := buildTree(t, 2)
	putBlocks(t, n, tree.dag.blocks())
	loose := rawBlock(t, []byte("loose block"))
	putBlocks(t, n, []blocks.Block{loose})

	if err := n.Pin(ctx, tree.sub, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Pin(ctx, loose.Cid(), false); err != nil {
		t.Fatal(err)
	}
	// No-ops: already pinned the same way, or direct on a recursive pin.
	if err := n.Pin(ctx, tree.sub, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Pin(ctx, tree.sub, false); err != nil {
		t.Fatal(err)
	}
	if err := n.Pin(ctx, loose.Cid(), false); err != nil {
		t.Fatal(err)
	}

	want := map[cid.Cid]PinType{tree.sub: Recursive, loose.Cid(): Direct}
	if got := listPins(t, n); !mapsEqual(got, want) {
		t.Fatalf("PinLs = %v, want %v", got, want)
	}

	bLeaf := tree.dag.blocksUnder(t, tree.b)[1].Cid() // a raw leaf of b.bin
	query := []cid.Cid{tree.sub, loose.Cid(), tree.b, bLeaf, tree.c, tree.root, tree.a, tree.sub}
	got, err := n.IsPinned(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []PinType{Recursive, Direct, Indirect, Indirect, Indirect, NotPinned, NotPinned, Recursive}
	if !slices.Equal(got, wantTypes) {
		t.Fatalf("IsPinned = %q, want %q", got, wantTypes)
	}
	got, err = n.IsPinnedSkipIndirect(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes = []PinType{Recursive, Direct, NotPinned, NotPinned, NotPinned, NotPinned, NotPinned, Recursive}
	if !slices.Equal(got, wantTypes) {
		t.Fatalf("IsPinnedSkipIndirect = %q, want %q", got, wantTypes)
	}
	// Indirect pins are matched by multihash: the CIDv1 of c.txt (stored
	// under CIDv0) is indirect too.
	cV1 := cid.NewCidV1(cid.DagProtobuf, tree.c.Hash())
	if got, err := n.IsPinned(ctx, []cid.Cid{cV1}); err != nil || got[0] != Indirect {
		t.Fatalf("IsPinned(CIDv1 of c.txt) = %q, %v", got, err)
	}

	// Upgrade a direct pin to a recursive one.
	if err := n.Pin(ctx, tree.a, false); err != nil {
		t.Fatal(err)
	}
	if got := listPins(t, n)[tree.a]; got != Direct {
		t.Fatalf("a.txt pinned %q, want direct", got)
	}
	if err := n.Pin(ctx, tree.a, true); err != nil {
		t.Fatal(err)
	}
	want[tree.a] = Recursive
	if got := listPins(t, n); !mapsEqual(got, want) {
		t.Fatalf("after upgrade PinLs = %v, want %v", got, want)
	}
}

func TestPinDagCBOR(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	leaf1 := rawBlock(t, []byte("leaf 1"))
	leaf2 := rawBlock(t, []byte("leaf 2"))
	root := cborBlock(t, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "one", cborLink(leaf1.Cid()))
		qp.MapEntry(ma, "nested", qp.Map(-1, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "two", cborLink(leaf2.Cid()))
		}))
	})
	putBlocks(t, n, []blocks.Block{root, leaf1})

	// leaf2 is missing: the recursive pin must fail.
	if err := n.Pin(ctx, root.Cid(), true); !errors.Is(err, ErrOffline) {
		t.Fatalf("Pin with a missing dag-cbor child: want ErrOffline, got %v", err)
	}
	putBlocks(t, n, []blocks.Block{leaf2})
	if err := n.Pin(ctx, root.Cid(), true); err != nil {
		t.Fatal(err)
	}
	got, err := n.IsPinned(ctx, []cid.Cid{leaf2.Cid()})
	if err != nil || got[0] != Indirect {
		t.Fatalf("IsPinned(nested dag-cbor link) = %q, %v", got, err)
	}
}

func TestUnpin(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	tree := buildTree(t, 3)
	putBlocks(t, n, tree.dag.blocks())

	if err := n.Pin(ctx, tree.root, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Pin(ctx, tree.c, false); err != nil {
		t.Fatal(err)
	}
	// Unpinning something not pinned, or only indirectly pinned, is fine.
	if err := n.Unpin(ctx, rawBlock(t, []byte("x")).Cid()); err != nil {
		t.Fatalf("Unpin(not pinned) = %v", err)
	}
	if err := n.Unpin(ctx, tree.a); err != nil {
		t.Fatalf("Unpin(indirect) = %v", err)
	}
	if err := n.Unpin(ctx, tree.root); err != nil {
		t.Fatal(err)
	}
	want := map[cid.Cid]PinType{tree.c: Direct}
	if got := listPins(t, n); !mapsEqual(got, want) {
		t.Fatalf("PinLs = %v, want %v", got, want)
	}
	if err := n.Unpin(ctx, tree.c); err != nil {
		t.Fatal(err)
	}
	if err := n.Unpin(ctx, tree.c); err != nil {
		t.Fatal(err)
	}
	if got := listPins(t, n); len(got) != 0 {
		t.Fatalf("PinLs = %v, want nothing", got)
	}
	got, err := n.IsPinned(ctx, []cid.Cid{tree.root, tree.a, tree.c})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []PinType{NotPinned, NotPinned, NotPinned}) {
		t.Fatalf("IsPinned after unpin = %q", got)
	}
	// Blocks stay until GC.
	if has, _ := n.HasBlock(ctx, tree.root); !has {
		t.Fatal("Unpin removed the block")
	}
}

func TestPinLsStreamsAndStops(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	var all []cid.Cid
	for i := range 20 {
		b := rawBlock(t, fmt.Appendf(nil, "block %d", i))
		putBlocks(t, n, []blocks.Block{b})
		if err := n.Pin(ctx, b.Cid(), i%2 == 0); err != nil {
			t.Fatal(err)
		}
		all = append(all, b.Cid())
	}
	got := listPins(t, n)
	if len(got) != len(all) {
		t.Fatalf("PinLs returned %d pins, want %d", len(got), len(all))
	}
	for i, c := range all {
		want := Direct
		if i%2 == 0 {
			want = Recursive
		}
		if got[c] != want {
			t.Fatalf("pin %d: %q, want %q", i, got[c], want)
		}
	}

	stop := errors.New("stop")
	calls := 0
	err := n.PinLs(ctx, func(PinInfo) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("PinLs = %v after %d calls, want the callback's error after 3", err, calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := n.PinLs(cctx, func(PinInfo) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("PinLs with a cancelled context = %v", err)
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	kept := buildTree(t, 4)
	dropped := buildTree(t, 5)
	direct := rawBlock(t, []byte("direct pin"))
	putBlocks(t, n, kept.dag.blocks())
	putBlocks(t, n, dropped.dag.blocks())
	putBlocks(t, n, []blocks.Block{direct})

	if err := n.Pin(ctx, kept.root, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Pin(ctx, direct.Cid(), false); err != nil {
		t.Fatal(err)
	}
	// Pin then unpin part of the dropped tree: unpinned content is garbage.
	if err := n.Pin(ctx, dropped.sub, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Unpin(ctx, dropped.sub); err != nil {
		t.Fatal(err)
	}
	// The direct pin of dropped's root keeps only that block.
	if err := n.Pin(ctx, dropped.root, false); err != nil {
		t.Fatal(err)
	}

	before, err := n.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}

	wantRemoved := make(map[string]bool)
	for _, b := range dropped.dag.blocks() {
		if b.Cid() != dropped.root {
			wantRemoved[string(b.Cid().Hash())] = true
		}
	}
	removed := make(map[string]bool)
	err = n.GC(ctx, func(c cid.Cid) error {
		removed[string(c.Hash())] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(removed, wantRemoved) {
		t.Fatalf("GC removed %d blocks, want %d", len(removed), len(wantRemoved))
	}

	for _, b := range kept.dag.blocks() {
		if has, _ := n.HasBlock(ctx, b.Cid()); !has {
			t.Fatalf("GC removed block %s of a recursive pin", b.Cid())
		}
	}
	for _, c := range []cid.Cid{direct.Cid(), dropped.root} {
		if has, _ := n.HasBlock(ctx, c); !has {
			t.Fatalf("GC removed directly pinned block %s", c)
		}
	}
	for _, b := range dropped.dag.blocks() {
		has, _ := n.HasBlock(ctx, b.Cid())
		if has != (b.Cid() == dropped.root) {
			t.Fatalf("block %s: HasBlock = %v after GC", b.Cid(), has)
		}
	}

	after, err := n.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.NumObjects != before.NumObjects-uint64(len(wantRemoved)) || after.RepoSize >= before.RepoSize {
		t.Fatalf("RepoStat before GC %+v, after %+v", before, after)
	}

	// A second GC has nothing to do.
	err = n.GC(ctx, func(c cid.Cid) error {
		t.Errorf("second GC removed %s", c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGCStopsOnCallbackError(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	tree := buildTree(t, 6)
	blks := tree.dag.blocks()
	putBlocks(t, n, blks)

	stop := errors.New("stop")
	calls := 0
	err := n.GC(ctx, func(cid.Cid) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("GC = %v after %d calls", err, calls)
	}
	st, err := n.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.NumObjects != uint64(len(blks)-2) {
		t.Fatalf("NumObjects = %d after removing 2 of %d blocks", st.NumObjects, len(blks))
	}
	// GC can run again and finish the job.
	if err := n.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := n.RepoStat(ctx); st.NumObjects != 0 {
		t.Fatalf("NumObjects = %d after full GC", st.NumObjects)
	}
}

func TestGCAbortsWhenPinnedBlockIsMissing(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	tree := buildTree(t, 7)
	blks := tree.dag.blocks()
	putBlocks(t, n, blks)
	if err := n.Pin(ctx, tree.root, true); err != nil {
		t.Fatal(err)
	}
	garbage := rawBlock(t, []byte("garbage"))
	putBlocks(t, n, []blocks.Block{garbage})
	// Corrupt the repository behind the node's back.
	if err := n.Blockstore().DeleteBlock(ctx, tree.sub); err != nil {
		t.Fatal(err)
	}
	if err := n.GC(ctx, nil); err == nil {
		t.Fatal("GC succeeded although a pinned block is missing")
	}
	if has, _ := n.HasBlock(ctx, garbage.Cid()); !has {
		t.Fatal("the aborted GC deleted blocks")
	}
}

func TestRepoStat(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	st, err := n.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st != (RepoStat{StorageMax: DefaultStorageMax}) {
		t.Fatalf("empty repo: %+v", st)
	}

	tree := buildTree(t, 8)
	blks := tree.dag.blocks()
	putBlocks(t, n, blks)
	var size uint64
	for _, b := range blks {
		size += uint64(len(b.RawData()))
	}
	st, err = n.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := RepoStat{RepoSize: size, StorageMax: DefaultStorageMax, NumObjects: uint64(len(blks))}
	if st != want {
		t.Fatalf("RepoStat = %+v, want %+v", st, want)
	}

	m := openNode(t, Options{StorageMax: 12345})
	if st, err := m.RepoStat(ctx); err != nil || st.StorageMax != 12345 {
		t.Fatalf("RepoStat = %+v, %v; want StorageMax 12345", st, err)
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	tree := buildTree(t, 9)
	putBlocks(t, n, tree.dag.blocks())

	// A plain dag-pb node (no UnixFS data) with named links.
	plain := merkledag.NodeWithData(nil)
	if err := plain.AddNodeLink("tree", mustGet(t, tree.dag, tree.root)); err != nil {
		t.Fatal(err)
	}
	// A dag-cbor node.
	leaf := rawBlock(t, []byte("cbor leaf"))
	cbor := cborBlock(t, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "name", qp.String("cbor"))
		qp.MapEntry(ma, "dir", cborLink(tree.root))
		qp.MapEntry(ma, "nested", qp.Map(-1, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "leaf", cborLink(leaf.Cid()))
		}))
	})
	putBlocks(t, n, []blocks.Block{plain, cbor, leaf})

	cases := []struct {
		path string
		want cid.Cid
		rest []string
	}{
		{"/ipfs/" + tree.root.String(), tree.root, nil},
		{"/ipfs/" + tree.root.String() + "/", tree.root, nil},
		{"/ipfs/" + tree.root.String() + "/a.txt", tree.a, nil},
		{"/ipfs/" + tree.root.String() + "/sub", tree.sub, nil},
		{"/ipfs/" + tree.root.String() + "/sub/b.bin", tree.b, nil},
		{"/ipfs/" + tree.root.String() + "//sub/./c.txt", tree.c, nil},
		{"/ipld/" + tree.root.String() + "/sub/c.txt", tree.c, nil},
		{tree.root.String() + "/sub/c.txt", tree.c, nil},
		{tree.root.String(), tree.root, nil},
		{"/ipfs/" + plain.Cid().String() + "/tree/sub/c.txt", tree.c, nil},
		{"/ipfs/" + cbor.Cid().String() + "/dir/a.txt", tree.a, nil},
		{"/ipfs/" + cbor.Cid().String() + "/nested/leaf", leaf.Cid(), nil},
		{"/ipfs/" + cbor.Cid().String() + "/name", cbor.Cid(), []string{"name"}},
	}
	for _, tc := range cases {
		got, rest, err := n.ResolvePath(ctx, tc.path)
		if err != nil {
			t.Errorf("ResolvePath(%s): %v", tc.path, err)
			continue
		}
		if got != tc.want || !slices.Equal(rest, tc.rest) {
			t.Errorf("ResolvePath(%s) = %s %q, want %s %q", tc.path, got, rest, tc.want, tc.rest)
		}
		if got2, err := n.Resolve(ctx, tc.path); err != nil || got2 != got {
			t.Errorf("Resolve(%s) = %s, %v", tc.path, got2, err)
		}
	}

	_, err := n.Resolve(ctx, "/ipfs/"+tree.root.String()+"/nope")
	var noLink *resolver.ErrNoLink
	if !errors.As(err, &noLink) {
		t.Errorf("Resolve(missing name): want ErrNoLink, got %v", err)
	}

	for _, p := range []string{"/ipns/example.com", "/ipns/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8/x"} {
		if _, err := n.Resolve(ctx, p); !errors.Is(err, ErrIPNSNotSupported) {
			t.Errorf("Resolve(%s): want ErrIPNSNotSupported, got %v", p, err)
		}
	}
	for _, p := range []string{"", "/", "/ipfs", "/ipfs/", "/ipfs/notacid", "/foo/" + tree.root.String(), "notacid/a", "ipfs/" + tree.root.String()} {
		_, err := n.Resolve(ctx, p)
		if !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Resolve(%q): want ErrInvalidPath, got %v", p, err)
		}
	}

	// Unknown root, offline: fails fast.
	start := time.Now()
	if _, err := n.Resolve(ctx, "/ipfs/"+rawBlock(t, []byte("absent")).Cid().String()+"/x"); err == nil {
		t.Error("Resolve of a missing root succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Resolve of a missing root took %s offline", d)
	}
}

func TestResolveHAMTDirectory(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	dag := newMemDAG()
	root, names, files := buildHAMTDir(t, dag, 300)
	putBlocks(t, n, dag.blocks())
	for _, i := range []int{0, 17, 299} {
		got, err := n.Resolve(ctx, "/ipfs/"+root.String()+"/"+names[i])
		if err != nil {
			t.Fatal(err)
		}
		if got != files[i] {
			t.Fatalf("Resolve(%s) = %s, want %s", names[i], got, files[i])
		}
	}
}

func TestPinMissingBlocksOffline(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	if !n.Offline() {
		t.Fatal("node without exchange should be offline")
	}
	tree := buildTree(t, 10)
	// Store everything but one leaf of a.txt.
	missing := tree.dag.blocksUnder(t, tree.a)[1].Cid()
	var blks []blocks.Block
	for _, b := range tree.dag.blocks() {
		if b.Cid() != missing {
			blks = append(blks, b)
		}
	}
	putBlocks(t, n, blks)

	start := time.Now()
	err := n.Pin(ctx, tree.root, true)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("recursive pin of an incomplete DAG succeeded offline")
	}
	if !errors.Is(err, ErrOffline) || !format.IsNotFound(err) {
		t.Fatalf("want ErrOffline and a not-found error, got %v", err)
	}
	if elapsed > 500*time.Millisecond {
		t.Fatalf("offline pin failure took %s", elapsed)
	}
	t.Logf("offline recursive pin failure in %s: %v", elapsed, err)

	// Direct pin of an absent block fails the same way.
	absent := rawBlock(t, []byte("absent")).Cid()
	if err := n.Pin(ctx, absent, false); !errors.Is(err, ErrOffline) {
		t.Fatalf("direct pin of an absent block: %v", err)
	}
	// Nothing was recorded.
	if got := listPins(t, n); len(got) != 0 {
		t.Fatalf("failed pins were recorded: %v", got)
	}
	// A direct pin of the root only needs the root block.
	if err := n.Pin(ctx, tree.root, false); err != nil {
		t.Fatal(err)
	}
}

func TestPinMissingBlocksHonoursDeadline(t *testing.T) {
	tree := buildTree(t, 11)
	ex := newTestExchange() // has nothing: fetches wait for ctx
	n := openNode(t, Options{Exchange: ex})
	if n.Offline() {
		t.Fatal("node with an exchange reports offline")
	}
	// Only the root is local.
	putBlocks(t, n, []blocks.Block{mustGet(t, tree.dag, tree.root)})

	const timeout = 200 * time.Millisecond
	for _, recursive := range []bool{true, false} {
		target := tree.root
		if !recursive {
			target = tree.c
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		err := n.Pin(ctx, target, recursive)
		elapsed := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("recursive=%v: want a deadline error, got %v", recursive, err)
		}
		if elapsed < timeout || elapsed > timeout+time.Second {
			t.Fatalf("recursive=%v: Pin returned after %s with a %s deadline", recursive, elapsed, timeout)
		}
		t.Logf("recursive=%v: Pin gave up after %s", recursive, elapsed)
	}
	if got := listPins(t, n); len(got) != 0 {
		t.Fatalf("failed pins were recorded: %v", got)
	}

	// The caller's exchange is not closed by the node.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if ex.isClosed() {
		t.Fatal("Close closed the caller's exchange")
	}
}

func TestPinFetchesThroughExchange(t *testing.T) {
	ctx := context.Background()
	tree := buildTree(t, 12)
	ex := newTestExchange(tree.dag.blocks()...)
	var created exchange.Interface
	n := openNode(t, Options{NewExchange: func(bs blockstore.Blockstore) (exchange.Interface, error) {
		if bs == nil {
			return nil, errors.New("nil blockstore")
		}
		created = ex
		return ex, nil
	}})
	if created == nil {
		t.Fatal("NewExchange not called")
	}
	if err := n.Pin(ctx, tree.root, true); err != nil {
		t.Fatal(err)
	}
	for _, b := range tree.dag.blocks() {
		if has, _ := n.HasBlock(ctx, b.Cid()); !has {
			t.Fatalf("block %s not fetched", b.Cid())
		}
	}
	fetched := ex.fetchCount()
	if fetched < len(tree.dag.blocks()) {
		t.Fatalf("%d fetches for %d blocks", fetched, len(tree.dag.blocks()))
	}
	// Everything is local now: pinning again fetches nothing.
	if err := n.Unpin(ctx, tree.root); err != nil {
		t.Fatal(err)
	}
	if err := n.Pin(ctx, tree.root, true); err != nil {
		t.Fatal(err)
	}
	if ex.fetchCount() != fetched {
		t.Fatal("pin of a local DAG used the exchange")
	}
	// The node owns exchanges made by NewExchange.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if !ex.isClosed() {
		t.Fatal("Close did not close the exchange built by NewExchange")
	}
}

func TestGCWaitsForRunningPin(t *testing.T) {
	ctx := context.Background()
	tree := buildTree(t, 13)
	ex := newTestExchange()
	n := openNode(t, Options{Exchange: ex})
	putBlocks(t, n, []blocks.Block{mustGet(t, tree.dag, tree.root)})

	pinErr := make(chan error, 1)
	go func() { pinErr <- n.Pin(ctx, tree.root, true) }()
	// Wait for the pin to be fetching.
	deadline := time.Now().Add(5 * time.Second)
	for n.gate.sem.TryAcquire(gcWeight) {
		n.gate.sem.Release(gcWeight)
		if time.Now().After(deadline) {
			t.Fatal("pin did not start")
		}
		time.Sleep(time.Millisecond)
	}

	gcCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := n.GC(gcCtx, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GC during a pin: want a deadline error, got %v", err)
	}

	ex.provide(tree.dag.blocks()...)
	if err := <-pinErr; err != nil {
		t.Fatal(err)
	}
	if err := n.GC(ctx, func(c cid.Cid) error {
		return fmt.Errorf("GC removed %s, part of the pinned DAG", c)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentPinsAndGC(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	const trees = 8
	var all []*testTree
	for i := range trees {
		all = append(all, buildTree(t, uint64(100+i)))
	}
	garbage := buildTree(t, 99)
	putBlocks(t, n, garbage.dag.blocks())

	var wg sync.WaitGroup
	errs := make(chan error, 2*trees+1)
	for _, tree := range all {
		wg.Go(func() {
			// Blocks stored but not yet pinned are garbage: a GC running
			// between PutBlocks and Pin removes them and the (offline) pin
			// fails. Start over until the pin sticks.
			for {
				if err := n.PutBlocks(ctx, tree.dag.blocks()); err != nil {
					errs <- err
					return
				}
				err := n.Pin(ctx, tree.root, true)
				if err == nil {
					return
				}
				if !errors.Is(err, ErrOffline) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := n.GC(ctx, nil); err != nil {
				errs <- err
				return
			}
		}
	})
	for _, tree := range all {
		wg.Go(func() {
			if _, err := n.IsPinned(ctx, []cid.Cid{tree.a, tree.root}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	if err := n.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, tree := range all {
		for _, b := range tree.dag.blocks() {
			if has, _ := n.HasBlock(ctx, b.Cid()); !has {
				t.Fatalf("pinned block %s missing after GC", b.Cid())
			}
		}
	}
	if has, _ := n.HasBlock(ctx, garbage.root); has {
		t.Fatal("garbage survived GC")
	}
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tree := buildTree(t, 14)
	direct := rawBlock(t, []byte("persisted direct pin"))

	n, err := Open(ctx, Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	putBlocks(t, n, tree.dag.blocks())
	putBlocks(t, n, []blocks.Block{direct})
	if err := n.Pin(ctx, tree.root, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Pin(ctx, direct.Cid(), false); err != nil {
		t.Fatal(err)
	}
	before, err := n.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := n.Pin(ctx, tree.root, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pin after Close: %v", err)
	}

	n = openNode(t, Options{Path: dir})
	want := map[cid.Cid]PinType{tree.root: Recursive, direct.Cid(): Direct}
	if got := listPins(t, n); !mapsEqual(got, want) {
		t.Fatalf("PinLs after reopen = %v, want %v", got, want)
	}
	after, err := n.RepoStat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("RepoStat after reopen %+v, before %+v", after, before)
	}
	got, err := n.IsPinned(ctx, []cid.Cid{tree.root, direct.Cid(), tree.b})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []PinType{Recursive, Direct, Indirect}) {
		t.Fatalf("IsPinned after reopen = %q", got)
	}
	if got, err := n.Resolve(ctx, "/ipfs/"+tree.root.String()+"/sub/c.txt"); err != nil || got != tree.c {
		t.Fatalf("Resolve after reopen = %s, %v", got, err)
	}
	if err := n.GC(ctx, func(c cid.Cid) error {
		return fmt.Errorf("GC removed pinned block %s after reopen", c)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestInMemory(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{InMemory: true})
	tree := buildTree(t, 15)
	putBlocks(t, n, tree.dag.blocks())
	if err := n.Pin(ctx, tree.root, true); err != nil {
		t.Fatal(err)
	}
	if got := listPins(t, n); got[tree.root] != Recursive {
		t.Fatalf("PinLs = %v", got)
	}
	if err := n.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	st, err := n.RepoStat(ctx)
	if err != nil || st.NumObjects != uint64(len(tree.dag.blocks())) || st.RepoSize == 0 {
		t.Fatalf("RepoStat = %+v, %v", st, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Options{}); err == nil {
		t.Error("Open without Path succeeded")
	}
	ex := newTestExchange()
	_, err := Open(ctx, Options{
		Path:        t.TempDir(),
		Exchange:    ex,
		NewExchange: func(blockstore.Blockstore) (exchange.Interface, error) { return ex, nil },
	})
	if err == nil {
		t.Error("Open with Exchange and NewExchange succeeded")
	}
	dir := t.TempDir()
	_, err = Open(ctx, Options{
		Path:        dir,
		NewExchange: func(blockstore.Blockstore) (exchange.Interface, error) { return nil, errors.New("boom") },
	})
	if err == nil {
		t.Error("Open ignored the NewExchange error")
	}
	// The failed Open released the database.
	n, err := Open(ctx, Options{Path: dir})
	if err != nil {
		t.Fatalf("reopening after a failed Open: %v", err)
	}
	_ = n.Close()
}

func TestClosedNode(t *testing.T) {
	ctx := context.Background()
	n, err := Open(ctx, Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	c := rawBlock(t, []byte("x")).Cid()
	checks := map[string]error{
		"PutBlocks": n.PutBlocks(ctx, []blocks.Block{rawBlock(t, []byte("x"))}),
		"Pin":       n.Pin(ctx, c, true),
		"Unpin":     n.Unpin(ctx, c),
		"PinLs":     n.PinLs(ctx, func(PinInfo) error { return nil }),
		"GC":        n.GC(ctx, nil),
	}
	_, checks["GetBlock"] = n.GetBlock(ctx, c)
	_, checks["HasBlock"] = n.HasBlock(ctx, c)
	_, checks["IsPinned"] = n.IsPinned(ctx, []cid.Cid{c})
	_, checks["RepoStat"] = n.RepoStat(ctx)
	_, checks["Resolve"] = n.Resolve(ctx, "/ipfs/"+c.String())
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

func mustGet(t testing.TB, dag format.DAGService, c cid.Cid) format.Node {
	t.Helper()
	nd, err := dag.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
