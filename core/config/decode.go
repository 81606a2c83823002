package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// DecodeSection decodes raw, the section of service.json at path (for
// example "consensus.raft"), into v over what v holds, so that callers
// decode over their defaults. Unknown keys and values of the wrong type are
// errors, and every error names its key by its full path
// ("consensus.raft.network_timeout: want a duration such as "30s", got
// 10"). Empty input (absent or null) leaves v untouched.
func DecodeSection(path string, raw json.RawMessage, v any) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return nil
	}
	return decodeAt(path, raw, v)
}

// decodeAt decodes the JSON document b, found at path (empty for a whole
// file), into v. Keys are matched as encoding/json matches them (exactly,
// else ignoring case); keys that match no field are refused.
func decodeAt(path string, b []byte, v any) error {
	if err := check(path, b, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return decodeError(path, b, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%sunexpected data after the JSON value (at byte %d)", where(path), dec.InputOffset())
	}
	return nil
}

// where prefixes a message with its key path, if any.
func where(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// joinPath appends a key to a key path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeError rewrites an error of encoding/json so that it names the key
// (by its full path) or the place in the document.
func decodeError(path string, b []byte, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		key := path
		if te.Field != "" {
			key = joinPath(path, te.Field)
		}
		return fmt.Errorf("%swant %s, got %s", where(key), describeType(te.Type), te.Value)
	case errors.As(err, &se):
		line, col := position(b, se.Offset-1) // the offset is past the bad byte
		return fmt.Errorf("%sinvalid JSON at line %d, column %d: %v", where(path), line, col, se)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%sthe JSON document is incomplete", where(path))
	}
	return fmt.Errorf("%s%w", where(path), err)
}

// position gives the line and the column, from 1, of the byte of b at
// index i.
func position(b []byte, i int64) (line, col int) {
	i = max(0, min(i, int64(len(b))))
	before := b[:i]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(i) - bytes.LastIndexByte(before, '\n')
	return line, col
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
)

// describeType says in words what a value of type t is written as.
func describeType(t reflect.Type) string {
	switch t {
	case durationType:
		return `a duration such as "30s"`
	case multiaddrsType:
		return "a multiaddress or a list of multiaddresses"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// member is one key of a JSON object and its value.
type member struct {
	key   string
	value json.RawMessage
}

// objectMembers returns the members of the JSON object b in document
// order; ok is false when b is not an object.
func objectMembers(b []byte) (members []member, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		members = append(members, member{key, v})
	}
	return members, true
}

// check reports the first key of the JSON value b (at path) that a Go
// value of type t has no place for, naming it by its full path. Types
// that decode themselves (json.Unmarshaler) are left to the decoder, and
// so are values of the wrong type, except inside maps and lists: those
// are decoded here, item by item, since the decoder's errors do not name
// the map key or the index of the item they are about.
func check(path string, b []byte, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		members, ok := objectMembers(b)
		if !ok {
			return nil
		}
		for _, m := range members {
			f, ok := structField(t, m.key)
			if !ok {
				return fmt.Errorf("%s: unknown key", joinPath(path, m.key))
			}
			if err := check(joinPath(path, m.key), m.value, f.Type); err != nil {
				return err
			}
		}
	case reflect.Map:
		members, ok := objectMembers(b)
		if !ok || t.Elem() == rawMessageType {
			return nil
		}
		for _, m := range members {
			if err := decodeAt(joinPath(path, m.key), m.value, reflect.New(t.Elem()).Interface()); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if t.Elem().Kind() == reflect.Uint8 || json.Unmarshal(b, &items) != nil {
			return nil
		}
		for i, item := range items {
			if err := decodeAt(fmt.Sprintf("%s[%d]", path, i), item, reflect.New(t.Elem()).Interface()); err != nil {
				return err
			}
		}
	}
	return nil
}

// structField finds the field of struct type t that encoding/json decodes
// key into: the exact name first, else one that differs only in case.
func structField(t reflect.Type, key string) (reflect.StructField, bool) {
	var folded reflect.StructField
	found := false
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if !found && strings.EqualFold(name, key) {
			folded, found = f, true
		}
	}
	return folded, found
}
