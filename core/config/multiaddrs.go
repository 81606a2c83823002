package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	ma "github.com/multiformats/go-multiaddr"
)

// Multiaddrs is a list of multiaddresses in service.json. As in IPFS
// Cluster, a single one may be written as a plain string; the list is
// written back as a list.
type Multiaddrs []string

var multiaddrsType = reflect.TypeFor[Multiaddrs]()

// UnmarshalJSON reads a string or a list of strings. Its errors are
// *json.UnmarshalTypeError values, which the decoder completes with their
// key.
func (m *Multiaddrs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*m = Multiaddrs{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: multiaddrsType}
	}
	*m = list
	return nil
}

// validate checks that every entry is a multiaddress; key names the list
// in errors.
func (m Multiaddrs) validate(key string) error {
	for _, a := range m {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%s: %q is not a multiaddress: %v", key, a, err)
		}
	}
	return nil
}
