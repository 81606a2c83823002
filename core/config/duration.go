package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("2m0s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string such as "30s". Its errors are
// *json.UnmarshalTypeError values, which the JSON decoder completes with
// the key they belong to.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: string(b) + ` (a duration is a string such as "30s")`, Type: durationType}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: fmt.Sprintf("%q (%v)", s, err), Type: durationType}
	}
	*d = Duration(v)
	return nil
}

var durationType = reflect.TypeFor[Duration]()

// Decode decodes raw JSON into v, refusing unknown keys. Empty input leaves
// v untouched, so callers decode over their defaults. Its errors name keys
// relative to raw; DecodeSection names them by their full path.
func Decode(raw json.RawMessage, v any) error {
	if err := DecodeSection("", raw, v); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	return nil
}
