package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pincluster/pincluster/core"
)

// DefaultShardSize is the shard-size IPFS Cluster's client sends with /add
// (100 MiB).
const DefaultShardSize uint64 = 100 * 1024 * 1024

// AddParams are the options of an /add request: the pin options, the
// import options, and client-side settings that are not sent.
type AddParams struct {
	// PinOptions: name, replication factors, user allocations, expiry,
	// metadata, shard size and origins (PinUpdate is not sent).
	core.PinOptions

	Local          bool   // send the blocks only to the answering peer's IPFS daemon
	Recursive      bool   // allow directories (checked by the client)
	Hidden         bool   // include hidden files (names starting with ".") of directories
	Wrap           bool   // wrap-with-directory
	Shard          bool   // sharded add
	NoPin          bool   // add the blocks without pinning the root
	NoCopy         bool   // filestore/urlstore add
	RawLeaves      bool   // raw leaf blocks
	Progress       bool   // ask the server for progress items (cid null, bytes set)
	StreamChannels bool   // stream the outputs (false: the server answers one array)
	Layout         string // "" (balanced), "balanced" or "trickle"
	Chunker        string // e.g. size-262144, rabin-min-avg-max, buzhash
	Format         string // unixfs or car
	HashFun        string // multihash name
	CidVersion     int

	// OnProgress, when set, is called from the upload goroutine with the
	// number of bytes of file data sent so far.
	OnProgress func(sent int64)
}

// DefaultAddParams returns the defaults of IPFS Cluster's client.
func DefaultAddParams() AddParams {
	p := AddParams{
		Chunker:        "size-262144",
		Format:         "unixfs",
		HashFun:        "sha2-256",
		StreamChannels: true,
	}
	p.ShardSize = DefaultShardSize
	return p
}

// Query encodes the parameters as the query string of POST /add, with
// every parameter present, as IPFS Cluster's client sends it.
func (p AddParams) Query() url.Values {
	q := PinQuery(p.PinOptions)
	q.Del("pin-update")
	b := strconv.FormatBool
	q.Set("local", b(p.Local))
	q.Set("recursive", b(p.Recursive))
	q.Set("hidden", b(p.Hidden))
	q.Set("wrap-with-directory", b(p.Wrap))
	q.Set("shard", b(p.Shard))
	q.Set("no-pin", b(p.NoPin))
	q.Set("nocopy", b(p.NoCopy))
	q.Set("raw-leaves", b(p.RawLeaves))
	q.Set("progress", b(p.Progress))
	q.Set("stream-channels", b(p.StreamChannels))
	q.Set("layout", p.Layout)
	q.Set("chunker", p.Chunker)
	q.Set("format", p.Format)
	q.Set("hash", p.HashFun)
	q.Set("cid-version", strconv.Itoa(p.CidVersion))
	return q
}

// File is one top-level entry of an upload. Exactly one of Path, URL and
// Reader is set.
type File struct {
	// Name is the entry's name in the upload; when empty, the base name
	// of Path or URL.
	Name string
	// Path is a file, directory or symbolic link on disk. Directories
	// need AddParams.Recursive; their hidden entries are skipped unless
	// AddParams.Hidden.
	Path string
	// URL is fetched with GET and its body uploaded.
	URL string
	// Reader supplies the contents of a file (e.g. standard input).
	Reader io.Reader
}

// Add uploads files and directories from disk, or the bodies of http://
// and https:// URLs (POST /add), and streams the outputs: one per file and
// directory added, the root last. See AddFiles.
func (c *Client) Add(ctx context.Context, paths []string, p AddParams) iter.Seq2[core.AddedOutput, error] {
	files := make([]File, len(paths))
	for i, s := range paths {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			files[i] = File{URL: s}
		} else {
			files[i] = File{Path: s}
		}
	}
	return c.AddFiles(ctx, files, p)
}

// AddFiles uploads files (POST /add) and streams the outputs as the peer
// sends them.
//
// The body is multipart/form-data, built as IPFS Cluster's client builds
// it: the entries sit in a virtual top directory, so each top-level part
// is named by the entry's name, and the parts of a directory's children
// follow the directory's part with their path below it; directories are
// application/x-directory parts, symbolic links application/symlink and
// files application/octet-stream. The body is produced while it is sent
// (chunked), so files of any size are never held in memory.
func (c *Client) AddFiles(ctx context.Context, files []File, p AddParams) iter.Seq2[core.AddedOutput, error] {
	return func(yield func(core.AddedOutput, error) bool) {
		var zero core.AddedOutput
		if len(files) == 0 {
			yield(zero, errors.New("nothing to add: give at least one file"))
			return
		}
		files := slices.Clone(files) // names are filled in below
		for i := range files {
			if err := checkFile(&files[i], p.Recursive); err != nil {
				yield(zero, err)
				return
			}
		}

		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		up := &uploader{ctx: ctx, mw: mw, p: p, debug: c.debug}
		// written is closed once the body is written or failed; upErr is
		// then the reason it failed.
		written := make(chan struct{})
		var upErr error
		go func() {
			err := up.writeAll(files)
			if err == nil {
				err = mw.Close()
			}
			upErr = err
			close(written) // before the pipe tells the transport
			pw.CloseWithError(err)
		}()
		defer pr.CloseWithError(errors.New("upload ended"))

		r := &request{
			method:      "POST",
			path:        "/add",
			query:       p.Query().Encode(),
			stream:      &uploadBody{r: pr},
			contentType: "multipart/form-data; boundary=" + mw.Boundary(),
		}
		for out, err := range stream[core.AddedOutput](c, ctx, r) {
			if err != nil {
				// A file that could not be read, or a URL that could
				// not be fetched, is not the peer's failure.
				select {
				case <-written:
					if upErr != nil {
						err = upErr
					}
				default:
				}
			}
			if !yield(out, err) || err != nil {
				return
			}
		}
	}
}

// checkFile validates a top-level entry before anything is sent and fills
// in its name.
func checkFile(f *File, recursive bool) error {
	set := 0
	for _, ok := range []bool{f.Path != "", f.URL != "", f.Reader != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return errors.New("an entry to add needs exactly one of a path, a URL or a reader")
	}
	switch {
	case f.Path != "":
		fi, err := os.Lstat(f.Path)
		if err != nil {
			return err
		}
		if fi.IsDir() && !recursive {
			return fmt.Errorf("%s is a directory: add directories with the recursive option (-r)", f.Path)
		}
		if t := fi.Mode().Type(); t != 0 && !fi.IsDir() && t != os.ModeSymlink {
			return fmt.Errorf("%s: unsupported file type %s (add regular files, directories and symbolic links)", f.Path, t)
		}
		if f.Name == "" {
			abs, err := filepath.Abs(f.Path)
			if err != nil {
				return err
			}
			f.Name = filepath.Base(abs)
		}
	case f.URL != "":
		u, err := url.Parse(f.URL)
		if err != nil {
			return err
		}
		if f.Name == "" {
			f.Name = path.Base(u.Path)
			if f.Name == "/" || f.Name == "." {
				f.Name = u.Host
			}
		}
	default:
		if f.Name == "" {
			return errors.New("an entry read from a reader needs a name")
		}
	}
	if strings.Contains(f.Name, "/") {
		return fmt.Errorf("invalid entry name %q: it must not contain a slash", f.Name)
	}
	return nil
}

// uploader writes the multipart body of an /add request.
type uploader struct {
	ctx   context.Context
	mw    *multipart.Writer
	p     AddParams
	debug func(format string, args ...any)
	sent  atomic.Int64
}

func (u *uploader) writeAll(files []File) error {
	for _, f := range files {
		var err error
		switch {
		case f.Path != "":
			err = u.writePath(f.Name, f.Path, true)
		case f.URL != "":
			err = u.writeURL(f.Name, f.URL)
		default:
			err = u.writeFile(f.Name, "", nil, f.Reader)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// createPart starts a part with the headers IPFS Cluster's client sends.
func (u *uploader) createPart(name, contentType, abspath string, fi os.FileInfo) (io.Writer, error) {
	if err := u.ctx.Err(); err != nil {
		return nil, err
	}
	params := url.Values{}
	if fi != nil {
		params.Set("mode", "0"+strconv.FormatUint(uint64(fi.Mode()), 8))
		mt := fi.ModTime()
		params.Set("mtime", strconv.FormatInt(mt.Unix(), 10))
		if n := mt.Nanosecond(); n > 0 {
			params.Set("mtime-nsecs", strconv.Itoa(n))
		}
	}
	disp := `form-data; name="file`
	if len(params) > 0 {
		disp += "?" + params.Encode()
	}
	disp += `"; filename="` + url.QueryEscape(name) + `"`
	h := textproto.MIMEHeader{}
	if abspath != "" {
		h.Set("Abspath-Encoded", url.QueryEscape(abspath))
	}
	h.Set("Content-Disposition", disp)
	h.Set("Content-Type", contentType)
	return u.mw.CreatePart(h)
}

// writePath writes a file, symbolic link or directory tree from disk.
func (u *uploader) writePath(name, p string, top bool) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		w, err := u.createPart(name, "application/symlink", abs, fi)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, target)
		return err
	case fi.IsDir():
		if !u.p.Recursive {
			return fmt.Errorf("%s is a directory: add directories with the recursive option (-r)", p)
		}
		if _, err := u.createPart(name, "application/x-directory", abs, fi); err != nil {
			return err
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !u.p.Hidden && strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if err := u.writePath(name+"/"+e.Name(), filepath.Join(p, e.Name()), false); err != nil {
				return err
			}
		}
		return nil
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return u.writeFile(name, abs, fi, f)
	default:
		if top {
			return fmt.Errorf("%s: unsupported file type %s", p, fi.Mode().Type())
		}
		u.debug("skipping %s: unsupported file type %s", p, fi.Mode().Type())
		return nil
	}
}

// writeURL uploads the body of a URL as a file.
func (u *uploader) writeURL(name, rawURL string) error {
	req, err := http.NewRequestWithContext(u.ctx, "GET", rawURL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	return u.writeFile(name, rawURL, nil, resp.Body)
}

// writeFile writes one file part and counts its bytes.
func (u *uploader) writeFile(name, abspath string, fi os.FileInfo, r io.Reader) error {
	w, err := u.createPart(name, "application/octet-stream", abspath, fi)
	if err != nil {
		return err
	}
	buf := make([]byte, 256*1024)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			total := u.sent.Add(int64(n))
			if u.p.OnProgress != nil {
				u.p.OnProgress(total)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		if err := u.ctx.Err(); err != nil {
			return err
		}
	}
}
