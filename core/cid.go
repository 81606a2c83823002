package core

import (
	"encoding/json"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Cid is a content identifier as it travels on the wire: a JSON string
// (base58btc for CIDv0, base32 for CIDv1) or null when undefined.
type Cid struct {
	cid.Cid
}

// UndefCid is the undefined CID (null on the wire).
var UndefCid = Cid{}

// NewCid wraps a go-cid value.
func NewCid(c cid.Cid) Cid { return Cid{c} }

// DecodeCid parses a CID in any multibase encoding.
func DecodeCid(s string) (Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return UndefCid, err
	}
	return Cid{c}, nil
}

// CastCid parses the binary form of a CID.
func CastCid(b []byte) (Cid, error) {
	if len(b) == 0 {
		return UndefCid, nil
	}
	c, err := cid.Cast(b)
	if err != nil {
		return UndefCid, err
	}
	return Cid{c}, nil
}

// Bytes returns the binary form of the CID, or nil when undefined.
func (c Cid) Bytes() []byte {
	if !c.Defined() {
		return nil
	}
	return c.Cid.Bytes()
}

// Equals reports whether two CIDs are the same.
func (c Cid) Equals(o Cid) bool { return c.Cid.Equals(o.Cid) }

// MarshalJSON encodes the CID as a string, or null when undefined.
func (c Cid) MarshalJSON() ([]byte, error) {
	if !c.Defined() {
		return []byte("null"), nil
	}
	return json.Marshal(c.Cid.String())
}

// UnmarshalJSON accepts a CID string or null. The empty string is an error,
// as it is for IPFS Cluster's clients.
func (c *Cid) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = UndefCid
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("cid must be a string: %w", err)
	}
	d, err := DecodeCid(s)
	if err != nil {
		return fmt.Errorf("error decoding cid %q: %w", s, err)
	}
	*c = d
	return nil
}
