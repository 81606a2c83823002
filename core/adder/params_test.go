package adder

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func parse(t *testing.T, query string) (Params, error) {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	return ParseParams(q)
}

func TestDefaultParams(t *testing.T) {
	p, err := parse(t, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		Chunker:        "size-262144",
		HashFunc:       "sha2-256",
		StreamChannels: true,
		ShardSize:      100 << 20,
	}
	if p != want || DefaultParams() != want {
		t.Errorf("defaults:\n got %+v\n    %+v\nwant %+v", p, DefaultParams(), want)
	}
	// Empty values keep the defaults.
	p, err = parse(t, "layout=&chunker=&hash=&cid-version=&raw-leaves=&stream-channels=&shard-size=")
	if err != nil || p != want {
		t.Errorf("empty values: %+v %v", p, err)
	}
}

func TestParseParams(t *testing.T) {
	p, err := parse(t, "layout=trickle&chunker=rabin-16-32-64&raw-leaves=true&cid-version=1&hash=SHA2-512"+
		"&wrap-with-directory=1&hidden=true&progress=true&format=unixfs&local=true&recursive=true"+
		"&stream-channels=false&nocopy=true&no-pin=true&shard=true&shard-size=1024")
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		Layout: "trickle", Chunker: "rabin-16-32-64", RawLeaves: true, RawLeavesSet: true,
		CidVersion: 1, HashFunc: "SHA2-512", Wrap: true, Hidden: true, Progress: true,
		Format: "unixfs", Local: true, Recursive: true, StreamChannels: false, NoCopy: true,
		NoPin: true, Shard: true, ShardSize: 1024, CidVersionSet: true,
	}
	if p != want {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}

	cases := []struct {
		query                string
		version              int
		rawLeaves, rawLvsSet bool
	}{
		{"cid-version=0", 0, false, false},
		{"cid-version=1", 1, true, false},
		{"cid-version=1&raw-leaves=false", 1, false, true},
		{"raw-leaves=true", 0, true, true},
		{"hash=blake2b-256", 1, true, false},
		{"hash=blake2b-256&raw-leaves=false", 1, false, true},
		{"hash=sha2-256&cid-version=0", 0, false, false},
		{"hash=sha3-256&cid-version=1", 1, true, false},
	}
	for _, tc := range cases {
		p, err := parse(t, tc.query)
		if err != nil {
			t.Errorf("%s: %s", tc.query, err)
			continue
		}
		if p.CidVersion != tc.version || p.RawLeaves != tc.rawLeaves || p.RawLeavesSet != tc.rawLvsSet {
			t.Errorf("%s: version %d raw-leaves %v (set %v)", tc.query, p.CidVersion, p.RawLeaves, p.RawLeavesSet)
		}
	}
	for _, f := range []string{"", "unixfs", "car"} {
		if _, err := parse(t, "format="+f); err != nil {
			t.Errorf("format=%s: %s", f, err)
		}
	}
	for _, l := range []string{"", "balanced", "trickle"} {
		if _, err := parse(t, "layout="+l); err != nil {
			t.Errorf("layout=%s: %s", l, err)
		}
	}
}

func TestParseParamsErrors(t *testing.T) {
	cases := []struct{ query, err string }{
		{"layout=zigzag", "layout parameter is invalid"},
		{"layout=Trickle", "layout parameter is invalid"},
		{"format=tar", "format parameter is invalid"},
		{"cid-version=2", "parameter cid-version invalid"},
		{"cid-version=-1", "parameter cid-version invalid"},
		{"cid-version=one", "parameter cid-version invalid"},
		{"shard-size=-5", "parameter shard-size invalid"},
		{"shard-size=big", "parameter shard-size invalid"},
		{"raw-leaves=yes", "parameter raw-leaves invalid"},
		{"wrap-with-directory=2", "parameter wrap-with-directory invalid"},
		{"hidden=maybe", "parameter hidden invalid"},
		{"progress=x", "parameter progress invalid"},
		{"local=x", "parameter local invalid"},
		{"recursive=x", "parameter recursive invalid"},
		{"stream-channels=x", "parameter stream-channels invalid"},
		{"nocopy=x", "parameter nocopy invalid"},
		{"no-pin=x", "parameter no-pin invalid"},
		{"shard=x", "parameter shard invalid"},
	}
	for _, tc := range cases {
		_, err := parse(t, tc.query)
		if err == nil || err.Error() != tc.err {
			t.Errorf("%s: got error %v, want %q", tc.query, err, tc.err)
		}
		if !IsRequestError(err) {
			t.Errorf("%s: %T is not a request error", tc.query, err)
		}
	}
	if _, err := parse(t, "layout=x"); !errors.Is(err, ErrInvalidLayout) {
		t.Errorf("layout error is not ErrInvalidLayout")
	}
	if _, err := parse(t, "format=x"); !errors.Is(err, ErrInvalidFormat) {
		t.Errorf("format error is not ErrInvalidFormat")
	}

	for _, c := range []string{"size-0", "size--1", "size-x", "foo", "rabin-12-512-1024", "size-99999999", "rabin-1-2"} {
		_, err := parse(t, "chunker="+c)
		if err == nil || !strings.HasPrefix(err.Error(), "parameter chunker invalid") {
			t.Errorf("chunker=%s: got %v", c, err)
		}
	}
	for _, c := range []string{"size-1", "size-2096896", "rabin", "rabin-262144", "rabin-16-32-64", "buzhash", "default"} {
		if _, err := parse(t, "chunker="+c); err != nil {
			t.Errorf("chunker=%s: %v", c, err)
		}
	}
}

func TestCidPrefix(t *testing.T) {
	p := DefaultParams()
	pre, err := p.CidPrefix()
	if err != nil {
		t.Fatal(err)
	}
	if pre.Version != 0 || pre.Codec != cid.DagProtobuf || pre.MhType != mh.SHA2_256 || pre.MhLength != -1 {
		t.Errorf("v0 prefix: %+v", pre)
	}
	p.HashFunc = "blake2b-256"
	pre, err = p.CidPrefix()
	if err != nil {
		t.Fatal(err)
	}
	if pre.Version != 1 || pre.MhType != mh.BLAKE2B_MIN+31 {
		t.Errorf("blake2b prefix: %+v", pre)
	}
}

// The hash function is Add's to check, as in IPFS Cluster, where a bad one
// is an error of the add stream: ParseParams accepts it, Add refuses it
// before reading anything.
func TestHashErrorsAreAddErrors(t *testing.T) {
	cases := []struct{ query, err string }{
		{"hash=sha2-257", "hash function name not known"},
		{"hash=nope", "hash function name not known"},
		{"hash=sha2-512&cid-version=0", "CIDv0 only supports sha2-256"},
		{"hash=md5", "hash function md5 is not allowed"},
		{"hash=identity", "hash function identity is not allowed"},
		{"hash=murmur3-x64-64", "hash function murmur3-x64-64 is not allowed"},
	}
	for _, tc := range cases {
		if _, err := parse(t, tc.query); err != nil {
			t.Errorf("ParseParams(%s): %v", tc.query, err)
		}
		_, err := add(t, tc.query, file("a.txt", "whatever"))
		if err == nil || err.Error() != tc.err {
			t.Errorf("Add(%s): got error %v, want %q", tc.query, err, tc.err)
		}
	}
	if _, err := add(t, "hash=x", file("a.txt", "whatever")); !errors.Is(err, ErrUnknownHash) {
		t.Errorf("hash error is not ErrUnknownHash: %v", err)
	}
	if _, err := add(t, "hash=sha2-512&cid-version=0", file("a.txt", "whatever")); !errors.Is(err, ErrCidV0Hash) {
		t.Errorf("CIDv0 error is not ErrCidV0Hash: %v", err)
	}
	// A known hash still implies its settings in what ParseParams returns.
	p, err := parse(t, "hash=sha2-512")
	if err != nil || p.CidVersion != 1 || !p.RawLeaves {
		t.Errorf("hash=sha2-512: %+v %v", p, err)
	}
}
