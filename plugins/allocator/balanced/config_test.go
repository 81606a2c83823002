package balanced

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfigDefaults(t *testing.T) {
	for _, raw := range []string{"", "null", "{}", "  {}  "} {
		cfg, err := ParseConfig(json.RawMessage(raw))
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if !reflect.DeepEqual(cfg, DefaultConfig()) {
			t.Fatalf("%q: got %+v, want defaults", raw, cfg)
		}
	}
	if got := string(DefaultConfigJSON()); got != `{"allocate_by":["tag:group","freespace"]}` {
		t.Fatalf("default JSON: %s", got)
	}
}

func TestParseConfigValues(t *testing.T) {
	cfg, err := ParseConfig(json.RawMessage(`{"allocate_by":["tag:region","pinqueue","freespace"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tag:region", "pinqueue", "freespace"}; !reflect.DeepEqual(cfg.AllocateBy, want) {
		t.Fatalf("got %v", cfg.AllocateBy)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := map[string]string{
		`{"allocate_by":["freespace"],"alocate_by":[]}`: `unknown key "alocate_by"`,
		`{"allocate_by":[]}`:                            "at least one metric",
		`{"allocate_by":null}`:                          "at least one metric",
		`{"allocate_by":["freespace",""]}`:              "entry 1 is an empty metric name",
		`{"allocate_by":["freespace","freespace"]}`:     `"freespace" is listed twice`,
		`{"allocate_by":"freespace"}`:                   "allocate_by: must be a list",
		`["freespace"]`:                                 "must be a JSON object",
	}
	for raw, want := range cases {
		_, err := ParseConfig(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v, want it to contain %q", raw, err, want)
		}
	}
}
