package balanced

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pincluster/pincluster/plugins/sdk"
)

// Config is the allocator.balanced section of service.json.
type Config struct {
	// AllocateBy lists the metric names peers are partitioned and ordered
	// by, most significant first.
	AllocateBy []string `json:"allocate_by"`
}

// DefaultConfig returns the configuration a new service.json gets.
func DefaultConfig() Config {
	return Config{AllocateBy: []string{"tag:group", "freespace"}}
}

// DefaultConfigJSON returns DefaultConfig encoded as it is written in
// service.json.
func DefaultConfigJSON() json.RawMessage { return sdk.ConfigJSON(DefaultConfig()) }

// ParseConfig decodes a config section. An empty section (absent, null or
// {}) gives the defaults; keys that are present replace the default value.
// Unknown keys are an error naming the key.
func ParseConfig(raw json.RawMessage) (Config, error) {
	cfg := DefaultConfig()
	keys, err := sdk.ConfigKeys("allocator."+Name, raw)
	if err != nil {
		return Config{}, err
	}
	for k, v := range keys {
		switch k {
		case "allocate_by":
			var by []string
			if err := json.Unmarshal(v, &by); err != nil {
				return Config{}, fmt.Errorf("allocator.%s.allocate_by: must be a list of metric names: %w", Name, err)
			}
			cfg.AllocateBy = by
		default:
			return Config{}, fmt.Errorf("allocator.%s: unknown key %q (known keys: allocate_by)", Name, k)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks that the configuration can be used.
func (c Config) Validate() error {
	if len(c.AllocateBy) == 0 {
		return fmt.Errorf("allocator.%s.allocate_by: must name at least one metric, e.g. [\"freespace\"]", Name)
	}
	for i, n := range c.AllocateBy {
		if strings.TrimSpace(n) == "" {
			return fmt.Errorf("allocator.%s.allocate_by: entry %d is an empty metric name", Name, i)
		}
		if slices.Contains(c.AllocateBy[:i], n) {
			return fmt.Errorf("allocator.%s.allocate_by: metric %q is listed twice", Name, n)
		}
	}
	return nil
}
