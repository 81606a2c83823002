package rest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/adder"
)

// goClientAddQuery is the query string the IPFS Cluster Go client sends
// (spec §7.2).
const goClientAddQuery = "chunker=size-262144&cid-version=0&format=unixfs&hash=sha2-256&hidden=false&layout=&local=false&mode=recursive&name=&no-pin=false&nocopy=false&progress=false&raw-leaves=false&recursive=false&replication-max=0&replication-min=0&shard=false&shard-size=104857600&stream-channels=true&user-allocations=&wrap-with-directory=false"

func TestAddStreaming(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))

	body, ct := multipartBody(t, map[string]string{"hello.txt": "hello\n"})
	r := do(t, ts, "POST", "/add?"+goClientAddQuery, body, map[string]string{"Content-Type": ct})
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	want := `{"name":"hello.txt","cid":"` + cidA + `","size":14,"allocations":["` + peerA + `"]}` + "\n"
	if r.body != want {
		t.Errorf("body %q, want %q", r.body, want)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-cache", "X-Chunked-Output": "1"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if v, ok := r.trailer["X-Stream-Error"]; ok && len(v) > 0 && v[0] != "" {
		t.Errorf("trailer on success: %v", r.trailer)
	}

	a := f.args("Add")
	params, opts := a[0].(adder.Params), a[1].(core.PinOptions)
	wantParams, err := adder.ParseParams(mustQuery(goClientAddQuery))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(params, wantParams) {
		t.Errorf("params %+v, want %+v", params, wantParams)
	}
	if opts.ShardSize != 104857600 || opts.Mode != core.PinModeRecursive || opts.ReplicationFactorMin != 0 || opts.Metadata == nil {
		t.Errorf("opts %+v", opts)
	}

	// Options reach the cluster; pin-update is dropped for adds.
	body, ct = multipartBody(t, map[string]string{"a": "x"})
	r = do(t, ts, "POST", "/add?name=n&replication-min=2&replication-max=3&meta-k=v&pin-update="+cidB+"&cid-version=1&layout=trickle&no-pin=true", body, map[string]string{"Content-Type": ct})
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	a = f.args("Add")
	params, opts = a[0].(adder.Params), a[1].(core.PinOptions)
	if opts.Name != "n" || opts.ReplicationFactorMin != 2 || opts.ReplicationFactorMax != 3 || opts.Metadata["k"] != "v" || opts.PinUpdate.Defined() {
		t.Errorf("opts %+v", opts)
	}
	if params.CidVersion != 1 || !params.RawLeaves || params.Layout != "trickle" || !params.NoPin || !params.StreamChannels {
		t.Errorf("params %+v", params)
	}
}

func mustQuery(q string) url.Values {
	v, err := url.ParseQuery(q)
	if err != nil {
		panic(err)
	}
	return v
}

func TestAddErrors(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	body, ct := multipartBody(t, map[string]string{"a": "x"})
	raw := body.String()

	cases := []struct {
		query, ctype string
		status       int
		msg          string
	}{
		{"", "text/plain", 400, "request Content-Type isn't multipart/form-data"},
		{"", "", 400, "request Content-Type isn't multipart/form-data"},
		{"", "application/json", 400, "request Content-Type isn't multipart/form-data"},
		{"", "multipart/form-data", 400, "no multipart boundary param in Content-Type"},
		{"?layout=foo", ct, 400, "layout parameter is invalid"},
		{"?format=tar", ct, 400, "format parameter is invalid"},
		{"?replication-min=x", ct, 400, "parameter replication-min invalid"},
		{"?wrap-with-directory=maybe", ct, 400, "parameter wrap-with-directory invalid"},
		{"?stream-channels=nope", ct, 400, "parameter stream-channels invalid"},
		{"?expire-in=1ms", ct, 400, "expire-in duration too short"},
	}
	for _, c := range cases {
		hdr := map[string]string{}
		if c.ctype != "" {
			hdr["Content-Type"] = c.ctype
		}
		r := do(t, ts, "POST", "/add"+c.query, strings.NewReader(raw), hdr)
		if r.status != c.status || r.body != errBody(c.status, c.msg) {
			t.Errorf("%s %s: %d %q, want %d %q", c.query, c.ctype, r.status, r.body, c.status, c.msg)
		}
	}
	// multipart/mixed is accepted too.
	r := do(t, ts, "POST", "/add", strings.NewReader(raw), map[string]string{"Content-Type": strings.Replace(ct, "form-data", "mixed", 1)})
	if r.status != 200 {
		t.Errorf("multipart/mixed: %d %s", r.status, r.body)
	}
}

// TestAddFailure checks that add errors after the 200 only appear in the
// trailer, and that stream-channels=false buffers into an array or a 500.
func TestAddFailure(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	body, ct := multipartBody(t, map[string]string{"a": "x"})
	raw := body.String()
	hdr := map[string]string{"Content-Type": ct}

	f.addFn = func(_ context.Context, _ *multipart.Reader, _ adder.Params, _ core.PinOptions, emit func(core.AddedOutput) error) (core.Cid, error) {
		if err := emit(core.AddedOutput{Name: "a", Cid: mustCid(cidA), Size: 9}); err != nil {
			return core.UndefCid, err
		}
		return core.UndefCid, errors.New("failed to put block on all destinations")
	}
	r := do(t, ts, "POST", "/add", strings.NewReader(raw), hdr)
	if r.status != 200 || len(ndjson(t, r.body)) != 1 || r.trailer.Get("X-Stream-Error") != "failed to put block on all destinations" {
		t.Errorf("error after output: %d %q %v", r.status, r.body, r.trailer)
	}

	r = do(t, ts, "POST", "/add?stream-channels=false", strings.NewReader(raw), hdr)
	if r.status != 500 || r.body != errBody(500, "failed to put block on all destinations") {
		t.Errorf("buffered error: %d %q", r.status, r.body)
	}

	f.addFn = func(context.Context, *multipart.Reader, adder.Params, core.PinOptions, func(core.AddedOutput) error) (core.Cid, error) {
		return core.UndefCid, errors.New("not enough peers to allocate CID")
	}
	r = do(t, ts, "POST", "/add", strings.NewReader(raw), hdr)
	if r.status != 200 || r.body != "" || r.trailer.Get("X-Stream-Error") != "not enough peers to allocate CID" {
		t.Errorf("error before output: %d %q %v", r.status, r.body, r.trailer)
	}

	// An unknown hash function is an error of the stream, as in IPFS
	// Cluster: the adder finds it (CidPrefix checks the parameters as
	// adder.Add does).
	f.addFn = func(_ context.Context, _ *multipart.Reader, p adder.Params, _ core.PinOptions, _ func(core.AddedOutput) error) (core.Cid, error) {
		_, err := p.CidPrefix()
		return core.UndefCid, err
	}
	r = do(t, ts, "POST", "/add?hash=nohash", strings.NewReader(raw), hdr)
	if r.status != 200 || r.body != "" || r.trailer.Get("X-Stream-Error") != "hash function name not known" {
		t.Errorf("unknown hash: %d %q %v", r.status, r.body, r.trailer)
	}

	f.addFn = nil
	body, ct = multipartBody(t, map[string]string{"a": "x", "b": "yy"})
	r = do(t, ts, "POST", "/add?stream-channels=false", body, map[string]string{"Content-Type": ct})
	var outs []core.AddedOutput
	if r.status != 200 || json.Unmarshal([]byte(r.body), &outs) != nil || len(outs) != 2 || !strings.HasPrefix(r.body, "[{") {
		t.Errorf("buffered: %d %q", r.status, r.body)
	}
	if r.header.Get("X-Chunked-Output") != "" {
		t.Error("buffered answer has X-Chunked-Output")
	}
}

// TestAddLargeUploadFullDuplex uploads a multi-megabyte file with chunked
// transfer encoding while the server has already answered 200 and emits
// outputs before the body has been read: the body must arrive intact.
func TestAddLargeUploadFullDuplex(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))

	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)

	f.addFn = func(_ context.Context, body *multipart.Reader, _ adder.Params, _ core.PinOptions, emit func(core.AddedOutput) error) (core.Cid, error) {
		// Progress before reading anything.
		if err := emit(core.AddedOutput{Name: "", Bytes: 1}); err != nil {
			return core.UndefCid, err
		}
		part, err := body.NextPart()
		if err != nil {
			return core.UndefCid, err
		}
		h := sha256.New()
		n, err := io.Copy(h, part)
		if err != nil {
			return core.UndefCid, err
		}
		if !bytes.Equal(h.Sum(nil), sum[:]) {
			return core.UndefCid, errors.New("body corrupted")
		}
		return mustCid(cidA), emit(core.AddedOutput{Name: part.FileName(), Cid: mustCid(cidA), Size: uint64(n)})
	}

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", "big.bin")
		if err == nil {
			_, err = part.Write(data)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequest("POST", ts.URL+"/add?progress=true", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Trailer.Get("X-Stream-Error") != "" {
		t.Fatalf("status %d trailer %v body %q", resp.StatusCode, resp.Trailer, b)
	}
	lines := ndjson(t, string(b))
	if len(lines) != 2 || lines[0] != `{"name":"","cid":null,"bytes":1}`+"\n" || !strings.Contains(lines[1], `"size":3145728`) {
		t.Errorf("outputs %q", lines)
	}
}
