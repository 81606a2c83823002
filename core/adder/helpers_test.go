package adder

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"

	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Kinds of multipart entries.
const (
	kindFile = iota
	kindDir
	kindSymlink
)

// entry is one part of a test request body.
type entry struct {
	path string
	kind int
	data []byte    // file contents or symlink target
	r    io.Reader // file contents, streamed, when set
}

func file(path, data string) entry { return entry{path: path, kind: kindFile, data: []byte(data)} }
func dir(path string) entry        { return entry{path: path, kind: kindDir} }
func symlink(path, target string) entry {
	return entry{path: path, kind: kindSymlink, data: []byte(target)}
}
func stream(path string, r io.Reader) entry { return entry{path: path, kind: kindFile, r: r} }

// writeBody writes entries as the IPFS Cluster Go client does (boxo's
// MultiFileReader in form mode): one part per entry, named "file", with the
// escaped path as filename and the entry type as Content-Type.
func writeBody(w *multipart.Writer, entries []entry) error {
	for _, e := range entries {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, url.QueryEscape(e.path)))
		switch e.kind {
		case kindDir:
			h.Set("Content-Type", "application/x-directory")
		case kindSymlink:
			h.Set("Content-Type", "application/symlink")
		default:
			h.Set("Content-Type", "application/octet-stream")
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			return err
		}
		switch {
		case e.r != nil:
			if _, err := io.Copy(pw, e.r); err != nil {
				return err
			}
		case e.data != nil:
			if _, err := pw.Write(e.data); err != nil {
				return err
			}
		}
	}
	return w.Close()
}

// bodyBytes returns a complete request body and its boundary.
func bodyBytes(t testing.TB, entries []entry) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := writeBody(w, entries); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.Boundary()
}

// streamBody returns a multipart reader fed by a goroutine writing the
// entries through a pipe, so that large bodies are never held in memory.
func streamBody(t testing.TB, entries []entry) *multipart.Reader {
	t.Helper()
	pr, pw := io.Pipe()
	w := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeBody(w, entries))
	}()
	t.Cleanup(func() { pr.Close() })
	return multipart.NewReader(pr, w.Boundary())
}

// memSink stores blocks in memory and checks every batch.
type memSink struct {
	mu          sync.Mutex
	blocks      map[cid.Cid][]byte
	calls       int
	received    int
	maxBlocks   int
	maxBytes    int
	failOnCall  int // fail the n-th call (1-based) when > 0
	checkHashes bool
	gets        int // GetBlock calls
}

func newMemSink() *memSink {
	return &memSink{blocks: make(map[cid.Cid][]byte), checkHashes: true}
}

var errSinkFull = errors.New("sink is full")

func (s *memSink) PutBlocks(ctx context.Context, blks []blocks.Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failOnCall > 0 && s.calls == s.failOnCall {
		return errSinkFull
	}
	if len(blks) == 0 {
		return errors.New("empty batch")
	}
	size := 0
	for _, b := range blks {
		size += len(b.RawData())
		if s.checkHashes {
			c, err := b.Cid().Prefix().Sum(b.RawData())
			if err != nil {
				return err
			}
			if !c.Equals(b.Cid()) {
				return fmt.Errorf("block %s does not match its data", b.Cid())
			}
		}
		s.blocks[b.Cid()] = b.RawData()
	}
	s.received += len(blks)
	s.maxBlocks = max(s.maxBlocks, len(blks))
	if len(blks) > 1 {
		s.maxBytes = max(s.maxBytes, size)
	}
	return nil
}

func (s *memSink) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	data, ok := s.blocks[c]
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return blocks.NewBlockWithCid(data, c)
}

// sinkDAG reads the nodes stored in a memSink.
type sinkDAG struct{ s *memSink }

func (d sinkDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	b, err := d.s.GetBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	return decodeNode(b)
}

func (d sinkDAG) GetMany(ctx context.Context, cids []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cids))
	for _, c := range cids {
		nd, err := d.Get(ctx, c)
		out <- &ipld.NodeOption{Node: nd, Err: err}
	}
	close(out)
	return out
}

func (d sinkDAG) Add(context.Context, ipld.Node) error        { return errors.New("read only") }
func (d sinkDAG) AddMany(context.Context, []ipld.Node) error  { return errors.New("read only") }
func (d sinkDAG) Remove(context.Context, cid.Cid) error       { return errors.New("read only") }
func (d sinkDAG) RemoveMany(context.Context, []cid.Cid) error { return errors.New("read only") }
func (s *memSink) dag() ipld.DAGService                       { return sinkDAG{s} }
func (s *memSink) node(t testing.TB, c cid.Cid) ipld.Node {
	t.Helper()
	nd, err := s.dag().Get(context.Background(), c)
	if err != nil {
		t.Fatalf("reading back %s: %s", c, err)
	}
	return nd
}

// cat reads a UnixFS file back from the sink.
func (s *memSink) cat(t testing.TB, c cid.Cid) []byte {
	t.Helper()
	r, err := uio.NewDagReader(context.Background(), s.node(t, c), s.dag())
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// result is what an Add call produced.
type result struct {
	root     cid.Cid
	outputs  []Output // non-progress events
	progress []Output
	sink     *memSink
}

func (r result) names() []string {
	var out []string
	for _, o := range r.outputs {
		out = append(out, o.Name)
	}
	return out
}

func (r result) String() string {
	var sb strings.Builder
	for _, o := range r.outputs {
		fmt.Fprintf(&sb, "%s %s %d\n", o.Cid, o.Name, o.Size)
	}
	return sb.String()
}

// add runs Add on the entries with the given query string.
func add(t testing.TB, query string, entries ...entry) (result, error) {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseParams(q)
	if err != nil {
		t.Fatalf("ParseParams(%q): %s", query, err)
	}
	return addParams(t, p, entries...)
}

func addParams(t testing.TB, p Params, entries ...entry) (result, error) {
	t.Helper()
	res := result{sink: newMemSink()}
	root, err := Add(context.Background(), streamBody(t, entries), p, res.sink, func(o Output) error {
		if o.IsProgress() {
			res.progress = append(res.progress, o)
		} else {
			res.outputs = append(res.outputs, o)
		}
		return nil
	})
	res.root = root
	// The importer never needs to read back what it wrote.
	if res.sink.gets != 0 {
		t.Errorf("the import read %d blocks back from the sink", res.sink.gets)
	}
	return res, err
}

// mustAdd is add that fails the test on error.
func mustAdd(t testing.TB, query string, entries ...entry) result {
	t.Helper()
	res, err := add(t, query, entries...)
	if err != nil {
		t.Fatalf("Add: %s", err)
	}
	return res
}

// pseudoRandom is the byte stream of the "random" tool used by kubo's test
// suite (go-random's WritePseudoRandomBytes): little-endian uint32 values
// from math/rand seeded with seed.
type pseudoRandom struct {
	r    *rand.Rand
	left int64
	buf  [4]byte
	n    int // unread bytes at the end of buf
}

func newPseudoRandom(count, seed int64) *pseudoRandom {
	return &pseudoRandom{r: rand.New(rand.NewSource(seed)), left: count}
}

func (p *pseudoRandom) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) && p.n > 0 {
		b[n] = p.buf[4-p.n]
		p.n--
		n++
	}
	for len(b)-n >= 4 {
		binary.LittleEndian.PutUint32(b[n:], p.r.Uint32())
		n += 4
	}
	if n < len(b) {
		binary.LittleEndian.PutUint32(p.buf[:], p.r.Uint32())
		p.n = 4
		for n < len(b) {
			b[n] = p.buf[4-p.n]
			p.n--
			n++
		}
	}
	p.left -= int64(n)
	return n, nil
}
