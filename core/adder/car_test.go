package adder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"mime/multipart"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"
)

// carV1 writes a CARv1 with go-car's streaming writer: the roots in the
// header, then the blocks in order (duplicates included). The blocks are
// written as given, so a block's data need not match its CID.
func carV1(t testing.TB, roots []cid.Cid, blks ...blocks.Block) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, roots, car.WriteAsCarV1(true), car.AllowDuplicatePuts(true), car.StoreIdentityCIDs(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blks {
		if err := w.Put(context.Background(), b.Cid().KeyString(), b.RawData()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finalize(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// carV2 wraps a CARv1 into a CARv2 (with an index after the data).
func carV2(t testing.TB, v1 []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := car.WrapV1(bytes.NewReader(v1), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawBlock returns a raw block (CIDv1) holding data.
func rawBlock(t testing.TB, data string) blocks.Block {
	t.Helper()
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocks.NewBlockWithCid([]byte(data), c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exportDAG returns the blocks of the DAG under root read back from s,
// each once, depth first: parents before their children when rootFirst
// (the order of "ipfs dag export"), after them otherwise (the order in
// which the importer produces them).
func exportDAG(t testing.TB, s *memSink, root cid.Cid, rootFirst bool) []blocks.Block {
	t.Helper()
	seen := make(map[cid.Cid]bool)
	var out []blocks.Block
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		if seen[c] {
			return
		}
		seen[c] = true
		b, err := s.GetBlock(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if rootFirst {
			out = append(out, b)
		}
		nd, err := decodeNode(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range nd.Links() {
			walk(l.Cid)
		}
		if !rootFirst {
			out = append(out, b)
		}
	}
	walk(root)
	return out
}

func blockBytes(blks []blocks.Block) uint64 {
	var n uint64
	for _, b := range blks {
		n += uint64(len(b.RawData()))
	}
	return n
}

// addCAR imports data as a CAR file named name with the given query.
func addCAR(t testing.TB, query, name string, data []byte) (result, error) {
	t.Helper()
	if query == "" {
		query = "format=car"
	} else {
		query = "format=car&" + query
	}
	return add(t, query, entry{path: name, kind: kindFile, data: data})
}

// wantCARError checks that err is a *RequestError matching target.
func wantCARError(t *testing.T, what string, err, target error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	if !errors.Is(err, target) || !IsRequestError(err) {
		t.Errorf("%s: got %v (%T), want a request error matching %q", what, err, err, target)
	}
}

// TestCARRoundTrip imports DAGs made by this package, exported as CAR
// files: the import gives the same root and stores every block.
func TestCARRoundTrip(t *testing.T) {
	// kubo's test/sharness/t0116-gateway-cache fixture: "ipfs add -Qrw
	// --cid-version 1 root2" with root2/root3/root4/index.html = "hello\n".
	fixture := []entry{dir("root2"), dir("root2/root3"), dir("root2/root3/root4"), file("root2/root3/root4/index.html", "hello\n")}
	const fixtureRoot = "bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui"
	const bigSize = 1<<20 + 1000

	cases := []struct {
		name     string
		query    string
		entries  []entry
		wantRoot string
		wantSize uint64 // UnixFS file size of the root
	}{
		{"kubo fixture", "wrap-with-directory=true&cid-version=1", fixture, fixtureRoot, 0},
		{"directory", "", append(planets(), file("planets/big", "")), "", 0},
		{"multi-block file", "", []entry{stream("big", newPseudoRandom(bigSize, 5))}, "", bigSize},
		{"multi-block file, raw leaves", "raw-leaves=true&chunker=size-1000", []entry{stream("big", newPseudoRandom(bigSize, 6))}, "", bigSize},
		{"trickle file", "layout=trickle&chunker=size-4096&cid-version=1&raw-leaves=false", []entry{stream("t", newPseudoRandom(100000, 7))}, "", 100000},
		{"raw leaf", "cid-version=1", []entry{file("hello.txt", "hello\n")}, helloV1, 0},
		{"symlink", "", []entry{symlink("l", "target")}, "", uint64(len("target"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := mustAdd(t, tc.query, tc.entries...)
			if tc.wantRoot != "" {
				checkCid(t, "source root", src.root, tc.wantRoot)
			}
			for _, order := range []struct {
				name      string
				rootFirst bool
				v2        bool
			}{{"v1 root first", true, false}, {"v1 root last", false, false}, {"v2", true, true}} {
				blks := exportDAG(t, src.sink, src.root, order.rootFirst)
				data := carV1(t, []cid.Cid{src.root}, blks...)
				if order.v2 {
					data = carV2(t, data)
				}
				// Import options do not apply to a CAR file.
				res, err := addCAR(t, "progress=true&cid-version=1&hash=sha2-512&chunker=size-10", "dag.car", data)
				if err != nil {
					t.Fatalf("%s: %v", order.name, err)
				}
				if !res.root.Equals(src.root) {
					t.Errorf("%s: root %s, want %s", order.name, res.root, src.root)
				}
				want := []Output{{Name: "dag.car", Cid: src.root, Bytes: blockBytes(blks), Size: tc.wantSize}}
				if !slices.Equal(res.outputs, want) {
					t.Errorf("%s: outputs %v, want %v", order.name, res.outputs, want)
				}
				if len(res.progress) != 0 {
					t.Errorf("%s: progress events for a CAR file: %v", order.name, res.progress)
				}
				if len(res.sink.blocks) != len(src.sink.blocks) {
					t.Errorf("%s: %d blocks stored, want %d", order.name, len(res.sink.blocks), len(src.sink.blocks))
				}
				for c, d := range src.sink.blocks {
					if !bytes.Equal(res.sink.blocks[c], d) {
						t.Errorf("%s: block %s missing or different", order.name, c)
					}
				}
			}
		})
	}
}

func TestCARSingleRoot(t *testing.T) {
	a, b := rawBlock(t, "a"), rawBlock(t, "b")
	for _, roots := range [][]cid.Cid{nil, {}, {a.Cid(), b.Cid()}, {a.Cid(), a.Cid()}} {
		res, err := addCAR(t, "", "x.car", carV1(t, roots, a, b))
		wantCARError(t, fmt.Sprintf("%d roots", len(roots)), err, ErrCARRoots)
		if err != nil && err.Error() != "only CAR files with a single root are supported" {
			t.Errorf("%d roots: error text %q", len(roots), err)
		}
		if res.sink.received != 0 {
			t.Errorf("%d roots: %d blocks stored", len(roots), res.sink.received)
		}
	}
	// The same with a CARv2.
	_, err := addCAR(t, "", "x.car", carV2(t, carV1(t, []cid.Cid{a.Cid(), b.Cid()}, a, b)))
	wantCARError(t, "CARv2 with 2 roots", err, ErrCARRoots)

	// One root: a raw block, its size is not a UnixFS file size.
	res, err := addCAR(t, "", "one.car", carV1(t, []cid.Cid{a.Cid()}, b, a, a))
	if err != nil {
		t.Fatal(err)
	}
	want := []Output{{Name: "one.car", Cid: a.Cid(), Bytes: 3}}
	if !slices.Equal(res.outputs, want) || !res.root.Equals(a.Cid()) {
		t.Errorf("outputs %v root %s, want %v", res.outputs, res.root, want)
	}
	// Duplicates count in Bytes, as IPFS Cluster counts them, but are
	// stored once.
	if res.sink.received != 2 {
		t.Errorf("%d blocks stored, want 2", res.sink.received)
	}
}

func TestCARWrapRefused(t *testing.T) {
	a := rawBlock(t, "a")
	res, err := addCAR(t, "wrap-with-directory=true", "x.car", carV1(t, []cid.Cid{a.Cid()}, a))
	wantCARError(t, "wrap", err, ErrCARWrap)
	if err != nil && err.Error() != "cannot wrap a CAR file upload" {
		t.Errorf("error text %q", err)
	}
	if res.sink.received != 0 {
		t.Errorf("%d blocks stored", res.sink.received)
	}
}

func TestCARGarbage(t *testing.T) {
	a := rawBlock(t, "a")
	valid := carV1(t, []cid.Cid{a.Cid()}, a)
	rng := rand.New(rand.NewSource(2))
	noise := make([]byte, 5000)
	rng.Read(noise)
	// A header length of 32 MiB followed by nothing.
	hugeHeader := []byte{0x80, 0x80, 0x80, 0x10}

	cases := map[string][]byte{
		"empty":             {},
		"text":              []byte("hello\n"),
		"noise":             noise,
		"huge header":       hugeHeader,
		"CARv2 pragma only": car.Pragma,
		"CARv2 bad header":  append(bytes.Clone(car.Pragma), bytes.Repeat([]byte{0xff}, 40)...),
		"CARv3":             bytes.Replace(bytes.Clone(valid), []byte("version\x01"), []byte("version\x03"), 1),
		"trailing noise":    append(bytes.Clone(valid), noise[:100]...),
		"zero section":      append(bytes.Clone(valid), 0),
		"bad block CID":     append(bytes.Clone(valid), 3, 0xff, 0xff, 0xff),
	}
	for name, data := range cases {
		res, err := addCAR(t, "", "g.car", data)
		wantCARError(t, name, err, ErrInvalidCAR)
		if err != nil && !strings.HasPrefix(err.Error(), "g.car: invalid CAR file: ") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
		if res.root.Defined() || len(res.outputs) != 0 {
			t.Errorf("%s: root %s, outputs %v", name, res.root, res.outputs)
		}
	}
	// The hint names the format, for clients that sent a plain file.
	_, err := addCAR(t, "", "hello.txt", []byte("hello\n"))
	if err == nil || !strings.Contains(err.Error(), "format=car expects a CARv1 or CARv2 file") {
		t.Errorf("plain file: %v", err)
	}
}

// TestCARTruncated cuts CAR files at every offset: the cut must be
// detected whenever the file format allows it.
func TestCARTruncated(t *testing.T) {
	src := mustAdd(t, "chunker=size-100", append(planets(), stream("planets/big", newPseudoRandom(400, 3)))...)

	// Root last (the order of this package's import): every cut is an
	// error, either in the middle of a section or because the root
	// block is missing.
	v1 := carV1(t, []cid.Cid{src.root}, exportDAG(t, src.sink, src.root, false)...)
	for cut := range len(v1) {
		_, err := addCAR(t, "", "cut.car", v1[:cut])
		if err == nil || !IsRequestError(err) || !(errors.Is(err, ErrInvalidCAR) || errors.Is(err, ErrCARRootMissing)) {
			t.Fatalf("CARv1 cut at %d/%d: got %v", cut, len(v1), err)
		}
	}

	// Root first (the order of "ipfs dag export"): a CARv1 cut between
	// two blocks after the root is a valid, shorter CAR file (the format
	// has no length); every other cut is an error.
	first := exportDAG(t, src.sink, src.root, true)
	v1 = carV1(t, []cid.Cid{src.root}, first...)
	boundaries := map[int]bool{}
	off := len(carV1(t, []cid.Cid{src.root}))
	for _, b := range first {
		off += len(carV1(t, []cid.Cid{src.root}, b)) - len(carV1(t, []cid.Cid{src.root}))
		boundaries[off] = true
	}
	for cut := range len(v1) {
		_, err := addCAR(t, "", "cut.car", v1[:cut])
		if boundaries[cut] {
			if err != nil {
				t.Errorf("CARv1 cut at block boundary %d: %v", cut, err)
			}
		} else if err == nil || !IsRequestError(err) {
			t.Fatalf("CARv1 cut at %d/%d: got %v", cut, len(v1), err)
		}
	}

	// A CARv2 records the length of its data: every cut before the end
	// of the data is an error, whatever the order; the index after it is
	// not needed.
	v2 := carV2(t, v1)
	var h car.Header
	if _, err := h.ReadFrom(bytes.NewReader(v2[car.PragmaSize:])); err != nil {
		t.Fatal(err)
	}
	dataEnd := int(h.DataOffset + h.DataSize)
	if dataEnd >= len(v2) {
		t.Fatalf("CARv2 without an index: data ends at %d of %d", dataEnd, len(v2))
	}
	for cut := range len(v2) + 1 {
		res, err := addCAR(t, "", "cut.car", v2[:cut])
		switch {
		case cut < dataEnd && (err == nil || !IsRequestError(err)):
			t.Fatalf("CARv2 cut at %d/%d (data ends at %d): got %v", cut, len(v2), dataEnd, err)
		case cut >= dataEnd && (err != nil || !res.root.Equals(src.root)):
			t.Fatalf("CARv2 cut at %d, after the data: %v", cut, err)
		}
	}

	// A multipart body cut in the middle of the CAR part.
	body, boundary := bodyBytes(t, []entry{{path: "x.car", kind: kindFile, data: v1}})
	start := bytes.Index(body, v1)
	for _, cut := range []int{len(body) - 1, len(body) - 10, start + len(v1), start + len(v1)/2, start + 60, start + 1} {
		_, err := Add(context.Background(), multipart.NewReader(bytes.NewReader(body[:cut]), boundary), mustParse(t, "format=car"), newMemSink(), nil)
		if !errors.Is(err, ErrTruncated) || !IsRequestError(err) {
			t.Errorf("body cut at %d/%d: got %v", cut, len(body), err)
		}
	}
}

func TestCARBadBlock(t *testing.T) {
	a, b, c := rawBlock(t, "a"), rawBlock(t, "b"), rawBlock(t, "c")
	forged, err := blocks.NewBlockWithCid([]byte("not b"), b.Cid())
	if err != nil {
		t.Fatal(err)
	}
	res, err := addCAR(t, "", "bad.car", carV1(t, []cid.Cid{c.Cid()}, a, forged, c))
	wantCARError(t, "forged block", err, ErrInvalidCAR)
	if err != nil && !strings.Contains(err.Error(), "block 2") {
		t.Errorf("error does not tell which block: %v", err)
	}
	// The sink (which checks hashes) never saw the forged block.
	if _, ok := res.sink.blocks[b.Cid()]; ok || res.root.Defined() {
		t.Errorf("forged block stored, root %s", res.root)
	}
	// The same in a CARv2.
	_, err = addCAR(t, "", "bad.car", carV2(t, carV1(t, []cid.Cid{c.Cid()}, a, forged, c)))
	wantCARError(t, "forged block in a CARv2", err, ErrInvalidCAR)

	// A block hashed with a function IPFS refuses (a digest too short).
	short, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: 16}.Sum([]byte("short"))
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := blocks.NewBlockWithCid([]byte("short"), short)
	_, err = addCAR(t, "", "short.car", carV1(t, []cid.Cid{short}, sb))
	if err == nil || !IsRequestError(err) || !strings.Contains(err.Error(), "cannot be stored in IPFS") {
		t.Errorf("short digest: got %v", err)
	}
}

func TestCARMissingRoot(t *testing.T) {
	a, b, missing := rawBlock(t, "a"), rawBlock(t, "b"), rawBlock(t, "missing")
	for _, v2 := range []bool{false, true} {
		data := carV1(t, []cid.Cid{missing.Cid()}, a, b)
		if v2 {
			data = carV2(t, data)
		}
		res, err := addCAR(t, "", "partial.car", data)
		wantCARError(t, fmt.Sprintf("v2=%v", v2), err, ErrCARRootMissing)
		if err != nil && !strings.Contains(err.Error(), missing.Cid().String()) {
			t.Errorf("error does not name the root: %v", err)
		}
		// The blocks are stored, as kubo's dag import keeps them; no
		// root is returned, so nothing gets pinned.
		if res.root.Defined() || len(res.outputs) != 0 || res.sink.received != 2 {
			t.Errorf("root %s, outputs %v, %d blocks stored", res.root, res.outputs, res.sink.received)
		}
	}

	// The root is found by multihash: a CIDv0 root whose block is
	// written under its CIDv1 is there.
	src := mustAdd(t, "", file("hello.txt", "hello\n"))
	v1 := cid.NewCidV1(cid.DagProtobuf, src.root.Hash())
	blk, _ := blocks.NewBlockWithCid(src.sink.blocks[src.root], v1)
	res, err := addCAR(t, "", "v1.car", carV1(t, []cid.Cid{src.root}, blk))
	if err != nil || !res.root.Equals(src.root) || res.outputs[0].Size != 6 {
		t.Errorf("root under another CID version: %v %v", res.outputs, err)
	}

	// An identity root carries its data: it needs no block, and identity
	// blocks are not sent to IPFS.
	id, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}.Sum([]byte("inline"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = addCAR(t, "", "id.car", carV1(t, []cid.Cid{id}, a))
	if err != nil || !res.root.Equals(id) || res.sink.received != 1 {
		t.Errorf("identity root: %v, %d blocks stored, %v", res.outputs, res.sink.received, err)
	}
	idBlock, _ := blocks.NewBlockWithCid([]byte("inline"), id)
	res, err = addCAR(t, "", "id.car", carV1(t, []cid.Cid{id}, idBlock))
	if err != nil || res.sink.received != 0 || res.outputs[0].Bytes != 6 {
		t.Errorf("identity block: %v, %d blocks stored, %v", res.outputs, res.sink.received, err)
	}
}

func TestCARParts(t *testing.T) {
	a := rawBlock(t, "a")
	data := carV1(t, []cid.Cid{a.Cid()}, a)
	carEntry := func(name string) entry { return entry{path: name, kind: kindFile, data: data} }

	_, err := add(t, "format=car", carEntry("a.car"), carEntry("b.car"))
	wantCARError(t, "two CAR files", err, ErrCARParts)
	if err != nil && !strings.Contains(err.Error(), "b.car") {
		t.Errorf("error does not name the extra part: %v", err)
	}
	_, err = add(t, "format=car", carEntry("a.car"), file("notes.txt", "x"))
	wantCARError(t, "CAR file and a file", err, ErrCARParts)

	_, err = add(t, "format=car", dir("d"), carEntry("d/a.car"))
	wantCARError(t, "directory", err, ErrCARNotFile)
	_, err = add(t, "format=car", symlink("l", "a.car"))
	wantCARError(t, "symlink", err, ErrCARNotFile)

	_, err = add(t, "format=car")
	wantCARError(t, "no parts", err, ErrNoFiles)
	_, err = add(t, "format=car", file("empty.car", ""))
	wantCARError(t, "empty part", err, ErrInvalidCAR)

	// The name reported is the part's file name, unescaped.
	res, err := add(t, "format=car", carEntry("my file.car"))
	if err != nil || res.outputs[0].Name != "my file.car" {
		t.Errorf("name: %v %v", res.outputs, err)
	}
}

// slowReader hands out data in small reads and counts what it handed out.
type slowReader struct {
	data []byte
	read atomic.Int64
}

func (r *slowReader) Read(p []byte) (int, error) {
	off := int(r.read.Load())
	if off == len(r.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 16<<10)], r.data[off:])
	r.read.Add(int64(n))
	return n, nil
}

// TestCARStreaming checks that blocks reach the sink in batches while the
// CAR file is still being sent, and that the output comes after them.
func TestCARStreaming(t *testing.T) {
	src := mustAdd(t, "chunker=size-65536", stream("big", newPseudoRandom(20<<20, 8)))
	blks := exportDAG(t, src.sink, src.root, true)
	data := carV1(t, []cid.Cid{src.root}, blks...)
	r := &slowReader{data: data}

	sink := &watchSink{memSink: newMemSink(), progress: func() int64 { return r.read.Load() }}
	var outputs []Output
	root, err := Add(context.Background(), streamBody(t, []entry{stream("big.car", r)}), mustParse(t, "format=car"), sink, func(o Output) error {
		if sink.received != len(blks) {
			t.Errorf("output emitted with %d of %d blocks in the sink", sink.received, len(blks))
		}
		outputs = append(outputs, o)
		return nil
	})
	if err != nil || !root.Equals(src.root) || len(outputs) != 1 {
		t.Fatalf("root %s, outputs %v: %v", root, outputs, err)
	}
	// While the sink has not started on the first batch, the import can
	// fill a second one before it waits.
	if limit := int64(2*DefaultBatchBytes + 1<<20); sink.firstAt <= 0 || sink.firstAt > limit {
		t.Errorf("first batch reached the sink after %d of %d bytes were sent, want at most %d", sink.firstAt, len(data), limit)
	}
	if sink.maxBlocks > DefaultBatchBlocks || sink.maxBytes > DefaultBatchBytes+(64<<10) {
		t.Errorf("batches of up to %d blocks, %d bytes", sink.maxBlocks, sink.maxBytes)
	}
	if sink.calls < 3 {
		t.Errorf("%d calls to the sink", sink.calls)
	}
}

// watchSink records how much of the body had been sent when the first
// batch arrived.
type watchSink struct {
	*memSink
	progress func() int64
	firstAt  int64
}

func (s *watchSink) PutBlocks(ctx context.Context, blks []blocks.Block) error {
	if s.firstAt == 0 {
		s.firstAt = s.progress()
	}
	return s.memSink.PutBlocks(ctx, blks)
}

func TestCARSinkAndEmitErrors(t *testing.T) {
	src := mustAdd(t, "chunker=size-65536", stream("big", newPseudoRandom(6<<20, 9)))
	data := carV1(t, []cid.Cid{src.root}, exportDAG(t, src.sink, src.root, true)...)
	raw := validBody(t, []entry{{path: "x.car", kind: kindFile, data: data}})
	body := func() *multipart.Reader { return multipart.NewReader(bytes.NewReader(raw), fuzzBoundary) }
	p := mustParse(t, "format=car")

	sink := newMemSink()
	sink.failOnCall = 2
	_, err := Add(context.Background(), body(), p, sink, nil)
	if !errors.Is(err, errSinkFull) || IsRequestError(err) {
		t.Errorf("sink error: got %v", err)
	}

	errStop := errors.New("client went away")
	root, err := Add(context.Background(), body(), p, newMemSink(), func(Output) error { return errStop })
	if !errors.Is(err, errStop) || root.Defined() {
		t.Errorf("emit error: got %v, root %s", err, root)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sink = newMemSink()
	_, err = Add(ctx, body(), p, cancelSink{sink, cancel}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
}

// cancelSink cancels the import when it receives its first batch.
type cancelSink struct {
	*memSink
	cancel func()
}

func (s cancelSink) PutBlocks(ctx context.Context, blks []blocks.Block) error {
	s.cancel()
	return s.memSink.PutBlocks(ctx, blks)
}
