package adder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"path"
	"strings"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/files"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	ihelper "github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/boxo/ipld/unixfs/importer/trickle"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// ProgressInterval is the number of bytes read from a file between two
// progress events, as kubo.
const ProgressInterval = 256 << 10

// MaxDepth is the deepest directory nesting accepted in a request.
const MaxDepth = 1024

// Errors returned by Add for requests it cannot import.
var (
	// ErrNoFiles is returned when the body holds no entry to add (and
	// Params.Wrap is not set).
	ErrNoFiles = errors.New("no files to add were found in the request")
	// ErrTooDeep is returned when directories are nested deeper than
	// MaxDepth.
	ErrTooDeep = fmt.Errorf("directories are nested deeper than %d levels", MaxDepth)
	// ErrTruncated is returned when the body ends in the middle of a
	// file.
	ErrTruncated = errors.New("unexpected end of the multipart body")
)

// Output is an event reported by Add. For an imported file, symlink or
// directory, Cid is its CID, Name its path (as sent by the client; "" for
// the wrapping directory) and Size its cumulative DAG size (for a dag-pb
// node, the size of the serialized node plus the sizes of the DAGs it links
// to; for a raw leaf, its length).
//
// For a progress event Cid is cid.Undef, Bytes is the number of bytes of a
// file read so far and Name is, as IPFS Cluster reports it, the path of
// the file relative to the top-level entry it belongs to: "" for a
// top-level file, "b.txt" for "dir/b.txt", and the whole path when
// wrapping (the wrapping directory is then the top-level entry).
//
// A CAR import reports one event: Name is the name of the CAR file part,
// Cid the root, Bytes the sum of the sizes of the blocks in the file and
// Size the file size recorded in the root when it is a UnixFS (dag-pb)
// node, 0 otherwise.
type Output struct {
	Name  string
	Cid   cid.Cid
	Size  uint64
	Bytes uint64
}

// IsProgress reports whether o is a progress event.
func (o Output) IsProgress() bool { return !o.Cid.Defined() }

// Add reads the multipart body of an add request and imports it as UnixFS,
// or, with format=car, imports the blocks of the CAR file it carries (see
// importCAR).
//
// Top-level entries are imported in order, each as its own DAG, and the
// returned root is the one of the last entry; with p.Wrap they all go under
// one directory, which is the root. emit is called for every output event,
// in order, from the calling goroutine; an error from emit aborts the
// import. Blocks are handed to sink in batches while the body is read; when
// Add returns without error every block of the DAG has been handed to the
// sink (events may be emitted before the sink has received the blocks they
// name, except the one event of a CAR import, emitted once the sink has
// them all). On error, blocks of a partial import may have reached the
// sink.
//
// p is validated (and kubo's implied settings applied) as by ParseParams;
// nocopy, shard and format=car with wrap-with-directory return
// ErrNoCopyNotSupported, ErrShardNotSupported and ErrCARWrap before anything
// is read. Errors about the parameters and about a malformed body or CAR
// file are *RequestError values (HTTP 400, see IsRequestError); errors of
// the sink, of emit and of ctx are returned as they are.
func Add(ctx context.Context, body *multipart.Reader, p Params, sink BlockSink, emit func(Output) error) (root cid.Cid, err error) {
	isCAR := p.Format == FormatCAR
	if isCAR {
		// The hash function and CID version do not apply to the
		// blocks of a CAR file, which keep their CIDs.
		p, err = p.checkOptions()
	} else {
		p, err = p.normalize()
	}
	if err != nil {
		return cid.Undef, badRequest(err)
	}
	switch {
	case p.NoCopy:
		return cid.Undef, badRequest(ErrNoCopyNotSupported)
	case p.Shard:
		return cid.Undef, badRequest(ErrShardNotSupported)
	case isCAR && p.Wrap:
		return cid.Undef, badRequest(ErrCARWrap)
	}
	if body == nil {
		return cid.Undef, errors.New("no multipart body")
	}
	if sink == nil {
		return cid.Undef, errors.New("no block sink")
	}
	if emit == nil {
		emit = func(Output) error { return nil }
	}
	var prefix cid.Prefix
	if !isCAR {
		if prefix, err = p.CidPrefix(); err != nil {
			return cid.Undef, err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	top, err := files.NewFileFromPartReader(body, "multipart/form-data")
	if err != nil {
		return cid.Undef, err
	}
	defer top.Close()

	bat := newBatcher(ctx, sink, DefaultBatchBlocks, DefaultBatchBytes)
	var carOut Output
	if isCAR {
		carOut, err = importCAR(ctx, top, bat)
		root = carOut.Cid
	} else {
		im := &importer{ctx: ctx, p: p, prefix: prefix, dag: bat, emit: emit}
		root, err = im.run(top)
	}
	if errors.Is(err, ErrCARRootMissing) {
		// The blocks of a CAR file without its root block are
		// stored all the same (see readCAR).
		if cerr := bat.Close(true); cerr != nil {
			return cid.Undef, cerr
		}
		return cid.Undef, err
	}
	if err != nil {
		cancel()
		bat.Close(false)
		return cid.Undef, err
	}
	if err := bat.Close(true); err != nil {
		return cid.Undef, err
	}
	if isCAR {
		if err := emit(carOut); err != nil {
			return cid.Undef, err
		}
	}
	return root, nil
}

// importer holds the state of one Add call.
type importer struct {
	ctx    context.Context
	p      Params
	prefix cid.Prefix
	dag    *batcher
	emit   func(Output) error
	top    string // path of the top-level entry being imported
}

// dirResult records an imported directory, to report it after the files.
type dirResult struct {
	path    string
	cid     cid.Cid
	size    uint64
	subdirs []*dirResult // in the order of the directory's links
}

// run imports every top-level entry and returns the root.
func (im *importer) run(top files.Directory) (cid.Cid, error) {
	if im.p.Wrap {
		nd, res, err := im.addDir(top, "", 0)
		if err != nil {
			return cid.Undef, err
		}
		if err := im.emitDirs(res); err != nil {
			return cid.Undef, err
		}
		return nd.Cid(), nil
	}

	root := cid.Undef
	it := top.Entries()
	for it.Next() {
		if err := im.ctx.Err(); err != nil {
			return cid.Undef, err
		}
		name := it.Name()
		node := it.Node()
		im.top = name
		var nd ipld.Node
		var err error
		if d, ok := node.(files.Directory); ok {
			var res *dirResult
			nd, res, err = im.addDir(d, name, 1)
			if err == nil {
				err = im.emitDirs(res)
			}
		} else {
			nd, err = im.addLeafEntry(node, name)
		}
		node.Close()
		if err != nil {
			return cid.Undef, err
		}
		root = nd.Cid()
	}
	if err := iterErr(it); err != nil {
		return cid.Undef, err
	}
	if !root.Defined() {
		return cid.Undef, badRequest(ErrNoFiles)
	}
	return root, nil
}

// addLeafEntry imports a file or a symlink and reports it under outPath.
func (im *importer) addLeafEntry(node files.Node, outPath string) (ipld.Node, error) {
	var nd ipld.Node
	var err error
	switch n := node.(type) {
	case *files.Symlink:
		nd, err = im.addSymlink(n)
	case files.File:
		nd, err = im.addFile(n, outPath)
	default:
		err = badRequest(fmt.Errorf("%s: unknown entry type", outPath))
	}
	if err != nil {
		return nil, err
	}
	if err := im.report(outPath, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

// report emits the event of an imported node.
func (im *importer) report(name string, nd ipld.Node) error {
	size, err := nd.Size()
	if err != nil {
		return err
	}
	return im.emit(Output{Name: name, Cid: nd.Cid(), Size: size})
}

// addFile chunks a file and builds its DAG with the configured layout.
func (im *importer) addFile(f files.File, outPath string) (ipld.Node, error) {
	r := &fileReader{ctx: im.ctx, r: f, name: outPath}
	if im.p.Progress {
		r.emit = im.emit
		r.progressName = im.progressName(outPath)
	}
	spl, err := chunker.FromString(r, im.p.Chunker)
	if err != nil {
		return nil, err
	}
	dbp := ihelper.DagBuilderParams{
		Dagserv:    im.dag,
		RawLeaves:  im.p.RawLeaves,
		Maxlinks:   ihelper.DefaultLinksPerBlock,
		CidBuilder: im.prefix,
	}
	db, err := dbp.New(spl)
	if err != nil {
		return nil, err
	}
	var nd ipld.Node
	if im.p.Layout == LayoutTrickle {
		nd, err = trickle.Layout(db)
	} else {
		nd, err = balanced.Layout(db)
	}
	if r.err != nil {
		// The reader's own error (emit, context, truncated body)
		// explains the failure better than what the chunker made of it.
		return nil, r.err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", outPath, err)
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return nd, nil
}

// progressName returns the name carried by the progress events of the file
// at outPath: its path relative to the top-level entry it belongs to, which
// is the wrapping directory when wrapping.
func (im *importer) progressName(outPath string) string {
	switch {
	case im.p.Wrap:
		return outPath
	case outPath == im.top:
		return ""
	default:
		return strings.TrimPrefix(outPath, im.top+"/")
	}
}

// addSymlink stores a UnixFS symlink node.
func (im *importer) addSymlink(l *files.Symlink) (ipld.Node, error) {
	data, err := ft.SymlinkData(l.Target)
	if err != nil {
		return nil, err
	}
	nd := dag.NodeWithData(data)
	if err := nd.SetCidBuilder(im.prefix); err != nil {
		return nil, err
	}
	if err := im.dag.Add(im.ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

// addDir imports a directory and everything under it. Files and symlinks
// are reported as they are imported; the returned dirResult tree is
// reported by emitDirs once the whole directory is done.
func (im *importer) addDir(d files.Directory, outPath string, depth int) (ipld.Node, *dirResult, error) {
	if depth > MaxDepth {
		return nil, nil, badRequest(ErrTooDeep)
	}
	udir, err := uio.NewDirectory(im.dag, uio.WithCidBuilder(im.prefix))
	if err != nil {
		return nil, nil, err
	}
	names := make(map[string]struct{})
	subdirs := make(map[string]*dirResult)

	it := d.Entries()
	for it.Next() {
		if err := im.ctx.Err(); err != nil {
			return nil, nil, err
		}
		name := it.Name()
		node := it.Node()
		if name != "" {
			if _, dup := names[name]; dup {
				node.Close()
				return nil, nil, badRequest(fmt.Errorf("%s: duplicate entry in directory", path.Join(outPath, name)))
			}
		}
		childPath := path.Join(outPath, name)

		var child ipld.Node
		if sub, ok := node.(files.Directory); ok {
			if name == "" {
				node.Close()
				return nil, nil, badRequest(fmt.Errorf("%s: directory entry without a name", outPath))
			}
			var res *dirResult
			child, res, err = im.addDir(sub, childPath, depth+1)
			subdirs[name] = res
		} else {
			child, err = im.addLeafEntry(node, childPath)
		}
		node.Close()
		if err != nil {
			return nil, nil, err
		}
		if name == "" {
			// A nameless top-level file under the wrapping
			// directory is linked under its CID, as kubo does.
			name = child.Cid().String()
			if _, dup := names[name]; dup {
				return nil, nil, badRequest(fmt.Errorf("%s: duplicate entry in directory", name))
			}
		}
		names[name] = struct{}{}
		if err := udir.AddChild(im.ctx, name, child); err != nil {
			return nil, nil, err
		}
	}
	if err := iterErr(it); err != nil {
		return nil, nil, err
	}

	nd, err := udir.GetNode()
	if err != nil {
		return nil, nil, err
	}
	if err := im.dag.Add(im.ctx, nd); err != nil {
		return nil, nil, err
	}
	size, err := nd.Size()
	if err != nil {
		return nil, nil, err
	}
	res := &dirResult{path: outPath, cid: nd.Cid(), size: size}
	if len(subdirs) > 0 {
		res.subdirs = make([]*dirResult, 0, len(subdirs))
		err := udir.ForEachLink(im.ctx, func(l *ipld.Link) error {
			if s, ok := subdirs[l.Name]; ok {
				res.subdirs = append(res.subdirs, s)
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return nd, res, nil
}

// emitDirs reports a directory tree bottom-up: the subdirectories first, in
// the order of the links, then the directory itself.
func (im *importer) emitDirs(res *dirResult) error {
	for _, s := range res.subdirs {
		if err := im.emitDirs(s); err != nil {
			return err
		}
	}
	return im.emit(Output{Name: res.path, Cid: res.cid, Size: res.size})
}

// iterErr returns the error of a directory iterator, turning the errors of
// a body that ends too early into ErrTruncated.
func iterErr(it files.DirIterator) error {
	err := it.Err()
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest(fmt.Errorf("%w: %v", ErrTruncated, err))
	}
	return badRequest(err)
}

// fileReader wraps the contents of a file: it stops on context
// cancellation, emits progress events and hides io.ErrUnexpectedEOF from
// the chunker (which would otherwise take a truncated body for the normal
// end of the file).
type fileReader struct {
	ctx          context.Context
	r            io.Reader
	name         string             // path of the file, for errors
	emit         func(Output) error // nil without progress
	progressName string             // Name of the progress events

	read     uint64
	reported uint64
	eof      bool
	err      error
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.eof {
		return 0, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, err
	}
	n, err := r.r.Read(p)
	r.read += uint64(n)
	switch {
	case err == nil:
	case err == io.EOF:
		r.eof = true
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		r.err = badRequest(fmt.Errorf("%w while reading %s", ErrTruncated, r.name))
		return n, r.err
	default:
		r.err = badRequest(fmt.Errorf("reading %s: %w", r.name, err))
		return n, r.err
	}
	// Report every ProgressInterval bytes, and at the end of the file
	// unless the last event already gave its final size.
	final := r.eof && (r.read != r.reported || r.read == 0)
	if r.emit != nil && (final || r.read-r.reported >= ProgressInterval) {
		r.reported = r.read
		if eerr := r.emit(Output{Name: r.progressName, Bytes: r.read}); eerr != nil {
			r.err = eerr
			return n, eerr
		}
	}
	return n, err
}

// finish emits the final progress event of a file whose end was not seen
// through Read (never the case with the current chunkers, kept as a
// safeguard so that every file ends with a progress event).
func (r *fileReader) finish() error {
	if r.emit == nil || r.eof {
		return nil
	}
	r.eof = true
	return r.emit(Output{Name: r.progressName, Bytes: r.read})
}
