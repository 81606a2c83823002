package adder

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	chunker "github.com/ipfs/boxo/chunker"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/verifcid"
	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Default values of the add parameters.
const (
	// DefaultChunker is the chunker used when none is given: fixed-size
	// chunks of 256 KiB, as kubo.
	DefaultChunker = "size-262144"
	// DefaultHashFunc is the multihash function used when none is given.
	DefaultHashFunc = "sha2-256"
	// DefaultShardSize is the shard size reported when none is given
	// (100 MiB, as IPFS Cluster).
	DefaultShardSize uint64 = 100 * 1024 * 1024
)

// Accepted values of Params.Layout.
const (
	LayoutBalanced = "balanced"
	LayoutTrickle  = "trickle"
)

// Accepted values of Params.Format.
const (
	FormatUnixFS = "unixfs"
	FormatCAR    = "car"
)

// Errors returned for invalid parameters. ParseParams and Add return them
// wrapped in a *RequestError (errors.Is still matches them); callers serving
// HTTP answer them, like any *RequestError, with 400 Bad Request.
var (
	// ErrInvalidLayout is returned for a layout other than "", "balanced"
	// or "trickle".
	ErrInvalidLayout = errors.New("layout parameter is invalid")
	// ErrInvalidFormat is returned for a format other than "", "unixfs"
	// or "car".
	ErrInvalidFormat = errors.New("format parameter is invalid")
	// ErrUnknownHash is returned for a hash function name that is not a
	// known multihash name.
	ErrUnknownHash = errors.New("hash function name not known")
	// ErrCidV0Hash is returned when cid-version=0 is requested together
	// with a hash function other than sha2-256, which CIDv0 cannot carry.
	ErrCidV0Hash = errors.New("CIDv0 only supports sha2-256")
	// ErrCARWrap is returned by Add for format=car together with
	// wrap-with-directory=true: a CAR file is imported as it is, under its
	// own root. The text is IPFS Cluster's.
	ErrCARWrap = errors.New("cannot wrap a CAR file upload")
	// ErrNoCopyNotSupported is returned by Add for nocopy=true: the data
	// added is always stored (there is no filestore or urlstore).
	ErrNoCopyNotSupported = errors.New("nocopy is not supported: pincluster stores the blocks of what it adds (it has no filestore or urlstore)")
	// ErrShardNotSupported is returned by Add for shard=true.
	ErrShardNotSupported = errors.New("shard is not supported yet: content is added as one DAG and pinned whole")
)

// RequestError is an error caused by the request: invalid parameters or a
// malformed body. An HTTP handler answers it with 400 Bad Request. Its text
// is the text of the error it wraps.
type RequestError struct {
	Err error
}

// Error returns the text of the wrapped error.
func (e *RequestError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *RequestError) Unwrap() error { return e.Err }

// IsRequestError reports whether err (or an error it wraps) is a
// *RequestError.
func IsRequestError(err error) bool {
	var re *RequestError
	return errors.As(err, &re)
}

func badRequest(err error) error {
	if err == nil || IsRequestError(err) {
		return err
	}
	return &RequestError{Err: err}
}

// Params are the options of an add request. Only the options that are
// specific to adding are here; the pin options (name, replication factors,
// ...) are parsed elsewhere.
type Params struct {
	// Layout of file DAGs: "" or "balanced" (default), or "trickle".
	Layout string
	// Chunker specification in kubo syntax: "size-N",
	// "rabin[-min-avg-max]" or "buzhash". Default DefaultChunker.
	Chunker string
	// RawLeaves makes file leaves raw blocks instead of dag-pb UnixFS
	// nodes.
	RawLeaves bool
	// RawLeavesSet tells that RawLeaves was given explicitly. When it is
	// false and the CID version is above 0, raw leaves are used.
	RawLeavesSet bool
	// CidVersion is 0 (default) or 1.
	CidVersion int
	// CidVersionSet tells that CidVersion was given explicitly: a hash
	// function other than sha2-256 then conflicts with version 0
	// (ErrCidV0Hash) instead of implying version 1.
	CidVersionSet bool
	// HashFunc is the multihash function name (default "sha2-256"). Any
	// other function implies CID version 1.
	HashFunc string
	// Wrap puts all top-level entries under one directory, whose CID
	// becomes the root.
	Wrap bool
	// Hidden is the client-side "include hidden files" flag. It is
	// exposed but has no effect here: clients filter hidden files before
	// sending them, and every entry that is sent is imported.
	Hidden bool
	// Progress adds progress events while files are read.
	Progress bool
	// Format is "" or "unixfs" (default), to import files as UnixFS, or
	// "car", to import the blocks of one CAR file. With "car", Wrap is
	// refused (ErrCARWrap) and the options that shape a UnixFS import
	// (layout, chunker, raw leaves, CID version, hash, progress) are
	// ignored.
	Format string
	// Local, Recursive, StreamChannels, NoPin and ShardSize are parsed and
	// exposed for the caller; the import itself does not act on them.
	// NoCopy and Shard are refused by Add (ErrNoCopyNotSupported,
	// ErrShardNotSupported).
	Local          bool
	Recursive      bool
	StreamChannels bool
	NoCopy         bool
	NoPin          bool
	Shard          bool
	ShardSize      uint64
}

// DefaultParams returns the parameters used for a request without query
// string.
func DefaultParams() Params {
	return Params{
		Chunker:        DefaultChunker,
		HashFunc:       DefaultHashFunc,
		StreamChannels: true,
		ShardSize:      DefaultShardSize,
	}
}

// ParseParams reads the add-specific parameters from a request's query
// string, starting from DefaultParams. Parameters that are absent or empty
// keep their default value. Errors are *RequestError values.
//
// The hash function is not checked here but by Add, once the answer has
// started, as IPFS Cluster does: an unknown hash function, or one that
// cid-version=0 cannot carry, is an error of the add stream (Add returns
// ErrUnknownHash or ErrCidV0Hash). When the hash function is known, its
// implied settings are applied to the returned Params.
func ParseParams(q url.Values) (Params, error) {
	p, err := parseParams(q)
	if err != nil {
		return p, badRequest(err)
	}
	if withHash, err := p.applyHash(); err == nil {
		p = withHash
	}
	return p, nil
}

func parseParams(q url.Values) (Params, error) {
	p := DefaultParams()

	switch l := q.Get("layout"); l {
	case "", LayoutBalanced, LayoutTrickle:
		p.Layout = l
	default:
		return p, ErrInvalidLayout
	}

	switch f := q.Get("format"); f {
	case "", FormatUnixFS, FormatCAR:
		p.Format = f
	default:
		return p, ErrInvalidFormat
	}

	if c := q.Get("chunker"); c != "" {
		if err := checkChunker(c); err != nil {
			return p, err
		}
		p.Chunker = c
	}

	bools := []struct {
		name string
		dest *bool
	}{
		{"wrap-with-directory", &p.Wrap},
		{"hidden", &p.Hidden},
		{"progress", &p.Progress},
		{"local", &p.Local},
		{"recursive", &p.Recursive},
		{"stream-channels", &p.StreamChannels},
		{"nocopy", &p.NoCopy},
		{"no-pin", &p.NoPin},
		{"shard", &p.Shard},
	}
	for _, b := range bools {
		if _, err := parseBool(q, b.name, b.dest); err != nil {
			return p, err
		}
	}

	set, err := parseBool(q, "raw-leaves", &p.RawLeaves)
	if err != nil {
		return p, err
	}
	p.RawLeavesSet = set

	if v := q.Get("cid-version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && n != 1) {
			return p, errors.New("parameter cid-version invalid")
		}
		p.CidVersion = n
		p.CidVersionSet = true
	}

	if h := q.Get("hash"); h != "" {
		p.HashFunc = h
	}

	if v := q.Get("shard-size"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return p, errors.New("parameter shard-size invalid")
		}
		p.ShardSize = n
	}

	return p.checkOptions()
}

// parseBool sets *dest from the named boolean query parameter when it is
// present and not empty, and reports whether it was.
func parseBool(q url.Values, name string, dest *bool) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("parameter %s invalid", name)
	}
	*dest = b
	return true, nil
}

// checkChunker verifies that a chunker specification is understood.
func checkChunker(spec string) error {
	if _, err := chunker.FromString(bytes.NewReader(nil), spec); err != nil {
		return fmt.Errorf("parameter chunker invalid: %w", err)
	}
	return nil
}

// hashCode returns the multihash code of a hash function name, checking
// that blocks hashed with it can be computed and are accepted by IPFS.
func hashCode(name string) (uint64, error) {
	code, ok := mh.Names[strings.ToLower(name)]
	if !ok {
		return 0, ErrUnknownHash
	}
	if code == mh.IDENTITY || !verifcid.DefaultAllowlist.IsAllowed(code) {
		return 0, fmt.Errorf("hash function %s is not allowed", name)
	}
	if _, err := mh.GetHasher(code); err != nil {
		return 0, fmt.Errorf("hash function %s is not supported", name)
	}
	return code, nil
}

// normalize validates p and applies kubo's implied settings: a hash function
// other than sha2-256 implies CID version 1, and a CID version above 0
// implies raw leaves unless RawLeaves was set explicitly.
func (p Params) normalize() (Params, error) {
	p, err := p.checkOptions()
	if err != nil {
		return p, err
	}
	return p.applyHash()
}

// checkOptions validates every parameter but the hash function and fills
// in the defaults of the empty ones.
func (p Params) checkOptions() (Params, error) {
	switch p.Layout {
	case "", LayoutBalanced, LayoutTrickle:
	default:
		return p, ErrInvalidLayout
	}
	switch p.Format {
	case "", FormatUnixFS, FormatCAR:
	default:
		return p, ErrInvalidFormat
	}
	if p.Chunker == "" {
		p.Chunker = DefaultChunker
	}
	if err := checkChunker(p.Chunker); err != nil {
		return p, err
	}
	if p.HashFunc == "" {
		p.HashFunc = DefaultHashFunc
	}
	if p.CidVersion != 0 && p.CidVersion != 1 {
		return p, errors.New("parameter cid-version invalid")
	}
	return p, nil
}

// applyHash checks the hash function and applies the settings it and the
// CID version imply.
func (p Params) applyHash() (Params, error) {
	code, err := hashCode(p.HashFunc)
	if err != nil {
		return p, err
	}
	if code != mh.SHA2_256 {
		if p.CidVersion == 0 && p.CidVersionSet {
			return p, ErrCidV0Hash
		}
		p.CidVersion = 1
	}
	if p.CidVersion > 0 && !p.RawLeavesSet {
		p.RawLeaves = true
	}
	return p, nil
}

// CidPrefix returns the CID prefix used for dag-pb nodes with these
// parameters (raw leaves use the same prefix with the raw codec and CID
// version 1). p is validated, and the implied settings applied, as Add
// does.
func (p Params) CidPrefix() (cid.Prefix, error) {
	p, err := p.normalize()
	if err != nil {
		return cid.Prefix{}, err
	}
	prefix, err := dag.PrefixForCidVersion(p.CidVersion)
	if err != nil {
		return cid.Prefix{}, err
	}
	code, err := hashCode(p.HashFunc)
	if err != nil {
		return cid.Prefix{}, err
	}
	prefix.MhType = code
	prefix.MhLength = -1
	return prefix, nil
}
