package stateless

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseConfigDefaults(t *testing.T) {
	for _, raw := range []string{"", "null", "{}"} {
		cfg, err := ParseConfig(json.RawMessage(raw))
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if cfg != DefaultConfig() {
			t.Fatalf("%q: got %+v", raw, cfg)
		}
	}
	want := `{"concurrent_pins":10,"priority_pin_max_age":"24h0m0s","priority_pin_max_retries":5,` +
		`"max_pin_queue_size":1000000,"pin_timeout":"2m0s","unpin_timeout":"3h0m0s","max_retries":3,` +
		`"retry_backoff_base":"1s","batch_size":64}`
	if got := string(DefaultConfigJSON()); got != want {
		t.Fatalf("default JSON:\n%s\nwant\n%s", got, want)
	}
	// What is written reads back the same.
	cfg, err := ParseConfig(DefaultConfigJSON())
	if err != nil || cfg != DefaultConfig() {
		t.Fatalf("round trip: %+v %v", cfg, err)
	}
}

func TestParseConfigValues(t *testing.T) {
	cfg, err := ParseConfig(json.RawMessage(`{"concurrent_pins":3,"priority_pin_max_age":"1h30m",
		"priority_pin_max_retries":0,"max_pin_queue_size":7,"pin_timeout":"200ms","unpin_timeout":"1m",
		"max_retries":0,"retry_backoff_base":"10ms","batch_size":1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{ConcurrentPins: 3, PriorityPinMaxAge: 90 * time.Minute, PriorityPinMaxRetries: 0,
		MaxPinQueueSize: 7, PinTimeout: 200 * time.Millisecond, UnpinTimeout: time.Minute, MaxRetries: 0,
		RetryBackoffBase: 10 * time.Millisecond, BatchSize: 1}
	if cfg != want {
		t.Fatalf("got %+v", cfg)
	}
	// Keys left out keep their default.
	cfg, err = ParseConfig(json.RawMessage(`{"batch_size":8}`))
	if err != nil || cfg.BatchSize != 8 || cfg.ConcurrentPins != 10 || cfg.PinTimeout != 2*time.Minute {
		t.Fatalf("partial: %+v %v", cfg, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := map[string]string{
		`{"concurent_pins":3}`:            `unknown key "concurent_pins"`,
		`{"pin_timeout":120}`:             `pin_timeout: must be a duration string`,
		`{"pin_timeout":"2 minutes"}`:     `pin_timeout: time: unknown unit`,
		`{"concurrent_pins":"10"}`:        `concurrent_pins: must be an integer`,
		`{"concurrent_pins":0}`:           `concurrent_pins: must be at least 1`,
		`{"max_pin_queue_size":0}`:        `max_pin_queue_size: must be at least 1`,
		`{"pin_timeout":"0s"}`:            `pin_timeout: must be positive`,
		`{"unpin_timeout":"-1s"}`:         `unpin_timeout: must be positive`,
		`{"retry_backoff_base":"0s"}`:     `retry_backoff_base: must be positive`,
		`{"max_retries":-1}`:              `max_retries: must be zero or positive`,
		`{"priority_pin_max_age":"-1h"}`:  `priority_pin_max_age: must be zero or positive`,
		`{"priority_pin_max_retries":-2}`: `priority_pin_max_retries: must be zero or positive`,
		`{"batch_size":0}`:                `batch_size: must be between 1 and 10000`,
		`{"batch_size":10001}`:            `batch_size: must be between 1 and 10000`,
		`[1]`:                             `must be a JSON object`,
	}
	for raw, want := range cases {
		_, err := ParseConfig(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", raw, err, want)
		}
	}
}
