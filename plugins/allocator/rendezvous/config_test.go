package rendezvous

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseConfigDefaults(t *testing.T) {
	for _, raw := range []string{"", "null", "{}", "  {} "} {
		cfg, err := ParseConfig(json.RawMessage(raw))
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if cfg != DefaultConfig() {
			t.Fatalf("%q: got %+v, want the defaults", raw, cfg)
		}
	}
	if got := string(DefaultConfigJSON()); got != `{"metric":"freespace"}` {
		t.Fatalf("default JSON: %s", got)
	}
}

func TestParseConfigValues(t *testing.T) {
	cfg, err := ParseConfig(json.RawMessage(`{"metric":"tag:region"}`))
	if err != nil || cfg.Metric != "tag:region" {
		t.Fatalf("got %+v, %v", cfg, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for raw, want := range map[string]string{
		`{"metric":"freespace","metrics":"x"}`: `unknown key "metrics"`,
		`{"metric":""}`:                        "must name a metric",
		`{"metric":"  "}`:                      "must name a metric",
		`{"metric":3}`:                         "must be a metric name",
		`["freespace"]`:                        "must be a JSON object",
	} {
		_, err := ParseConfig(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v, want it to contain %q", raw, err, want)
		}
	}
}
