package stateless

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pincluster/pincluster/plugins/sdk"
)

// Config is the pin_tracker.stateless section of service.json.
type Config struct {
	// ConcurrentPins is the number of workers, each with at most one
	// Pin or Unpin call to the IPFS connector in flight.
	ConcurrentPins int
	// PriorityPinMaxAge: pins younger than this (by pin timestamp) and
	// attempted at most PriorityPinMaxRetries times go before other pins.
	PriorityPinMaxAge     time.Duration
	PriorityPinMaxRetries int
	// MaxPinQueueSize bounds the operations waiting for a worker.
	MaxPinQueueSize int
	// PinTimeout bounds one pin attempt; UnpinTimeout one unpin attempt.
	PinTimeout   time.Duration
	UnpinTimeout time.Duration
	// MaxRetries is how many times a failed operation is retried
	// automatically, after RetryBackoffBase, then twice that, and so on.
	MaxRetries       int
	RetryBackoffBase time.Duration
	// BatchSize is how many queued operations of one kind a worker sends to
	// the IPFS connector in one call.
	BatchSize int
}

// DefaultConfig returns the configuration a new service.json gets.
func DefaultConfig() Config {
	return Config{
		ConcurrentPins:        10,
		PriorityPinMaxAge:     24 * time.Hour,
		PriorityPinMaxRetries: 5,
		MaxPinQueueSize:       1_000_000,
		PinTimeout:            2 * time.Minute,
		UnpinTimeout:          3 * time.Hour,
		MaxRetries:            3,
		RetryBackoffBase:      time.Second,
		BatchSize:             64,
	}
}

// maxBatchSize caps batch_size: a batch travels in one message.
const maxBatchSize = 10_000

// jsonConfig is the config as written in service.json.
type jsonConfig struct {
	ConcurrentPins        int    `json:"concurrent_pins"`
	PriorityPinMaxAge     string `json:"priority_pin_max_age"`
	PriorityPinMaxRetries int    `json:"priority_pin_max_retries"`
	MaxPinQueueSize       int    `json:"max_pin_queue_size"`
	PinTimeout            string `json:"pin_timeout"`
	UnpinTimeout          string `json:"unpin_timeout"`
	MaxRetries            int    `json:"max_retries"`
	RetryBackoffBase      string `json:"retry_backoff_base"`
	BatchSize             int    `json:"batch_size"`
}

// MarshalJSON writes the config as in service.json (durations as Go
// duration strings).
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonConfig{
		ConcurrentPins:        c.ConcurrentPins,
		PriorityPinMaxAge:     c.PriorityPinMaxAge.String(),
		PriorityPinMaxRetries: c.PriorityPinMaxRetries,
		MaxPinQueueSize:       c.MaxPinQueueSize,
		PinTimeout:            c.PinTimeout.String(),
		UnpinTimeout:          c.UnpinTimeout.String(),
		MaxRetries:            c.MaxRetries,
		RetryBackoffBase:      c.RetryBackoffBase.String(),
		BatchSize:             c.BatchSize,
	})
}

// DefaultConfigJSON returns DefaultConfig encoded as in service.json.
func DefaultConfigJSON() json.RawMessage { return sdk.ConfigJSON(DefaultConfig()) }

// ParseConfig decodes a config section. An empty section (absent, null or
// {}) gives the defaults; keys that are present replace the default value.
// Unknown keys and bad values are errors naming the key.
func ParseConfig(raw json.RawMessage) (Config, error) {
	cfg := DefaultConfig()
	keys, err := sdk.ConfigKeys("pin_tracker."+Name, raw)
	if err != nil {
		return Config{}, err
	}
	ints := map[string]*int{
		"concurrent_pins":          &cfg.ConcurrentPins,
		"priority_pin_max_retries": &cfg.PriorityPinMaxRetries,
		"max_pin_queue_size":       &cfg.MaxPinQueueSize,
		"max_retries":              &cfg.MaxRetries,
		"batch_size":               &cfg.BatchSize,
	}
	durations := map[string]*time.Duration{
		"priority_pin_max_age": &cfg.PriorityPinMaxAge,
		"pin_timeout":          &cfg.PinTimeout,
		"unpin_timeout":        &cfg.UnpinTimeout,
		"retry_backoff_base":   &cfg.RetryBackoffBase,
	}
	for k, v := range keys {
		if p, ok := ints[k]; ok {
			if err := json.Unmarshal(v, p); err != nil {
				return Config{}, fmt.Errorf("pin_tracker.%s.%s: must be an integer, got %s", Name, k, v)
			}
			continue
		}
		if p, ok := durations[k]; ok {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return Config{}, fmt.Errorf("pin_tracker.%s.%s: must be a duration string such as \"2m0s\", got %s", Name, k, v)
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return Config{}, fmt.Errorf("pin_tracker.%s.%s: %w", Name, k, err)
			}
			*p = d
			continue
		}
		known := make([]string, 0, len(ints)+len(durations))
		for n := range ints {
			known = append(known, n)
		}
		for n := range durations {
			known = append(known, n)
		}
		sort.Strings(known)
		return Config{}, fmt.Errorf("pin_tracker.%s: unknown key %q (known keys: %s)", Name, k, strings.Join(known, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks that every value is in range.
func (c Config) Validate() error {
	bad := func(key, rule string, v any) error {
		return fmt.Errorf("pin_tracker.%s.%s: must be %s, got %v", Name, key, rule, v)
	}
	switch {
	case c.ConcurrentPins < 1:
		return bad("concurrent_pins", "at least 1", c.ConcurrentPins)
	case c.PriorityPinMaxAge < 0:
		return bad("priority_pin_max_age", "zero or positive", c.PriorityPinMaxAge)
	case c.PriorityPinMaxRetries < 0:
		return bad("priority_pin_max_retries", "zero or positive", c.PriorityPinMaxRetries)
	case c.MaxPinQueueSize < 1:
		return bad("max_pin_queue_size", "at least 1", c.MaxPinQueueSize)
	case c.PinTimeout <= 0:
		return bad("pin_timeout", "positive", c.PinTimeout)
	case c.UnpinTimeout <= 0:
		return bad("unpin_timeout", "positive", c.UnpinTimeout)
	case c.MaxRetries < 0:
		return bad("max_retries", "zero or positive", c.MaxRetries)
	case c.RetryBackoffBase <= 0:
		return bad("retry_backoff_base", "positive", c.RetryBackoffBase)
	case c.BatchSize < 1 || c.BatchSize > maxBatchSize:
		return bad("batch_size", fmt.Sprintf("between 1 and %d", maxBatchSize), c.BatchSize)
	}
	return nil
}
