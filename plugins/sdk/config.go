package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ConfigKeys splits a plugin's config section into its keys, for a plugin
// that decodes each key itself (and names the key in its errors). An empty
// section (absent, null or {}) has no keys: the plugin keeps its defaults.
// section names the section in errors, e.g. "allocator.balanced".
func ConfigKeys(section string, raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, fmt.Errorf("%s: config must be a JSON object: %w", section, err)
	}
	return keys, nil
}

// ConfigJSON encodes a plugin's default configuration for Describe. It
// panics when v cannot be encoded, which only a programming error causes.
func ConfigJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding a default configuration: %v", err))
	}
	return b
}
