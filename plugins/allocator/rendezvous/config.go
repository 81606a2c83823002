package rendezvous

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pincluster/pincluster/plugins/sdk"
)

// Config is the allocator.rendezvous section of service.json.
type Config struct {
	// Metric names the metric a peer must publish (valid and unexpired)
	// to be a candidate. Its value plays no part in the choice.
	Metric string `json:"metric"`
}

// DefaultMetric is the metric of the default configuration: every peer
// with a disk informer publishes it.
const DefaultMetric = "freespace"

// DefaultConfig returns the configuration a new service.json gets.
func DefaultConfig() Config { return Config{Metric: DefaultMetric} }

// DefaultConfigJSON returns DefaultConfig encoded as in service.json.
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
		case "metric":
			if err := json.Unmarshal(v, &cfg.Metric); err != nil {
				return Config{}, fmt.Errorf("allocator.%s.metric: must be a metric name (a string): %w", Name, err)
			}
		default:
			return Config{}, fmt.Errorf("allocator.%s: unknown key %q (known keys: metric)", Name, k)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks that the configuration can be used.
func (c Config) Validate() error {
	if strings.TrimSpace(c.Metric) == "" {
		return fmt.Errorf("allocator.%s.metric: must name a metric, e.g. %q", Name, DefaultMetric)
	}
	return nil
}
