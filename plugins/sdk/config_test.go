package sdk

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConfigKeys(t *testing.T) {
	for _, empty := range []string{"", "  ", "null", " null "} {
		if keys, err := ConfigKeys("allocator.x", json.RawMessage(empty)); keys != nil || err != nil {
			t.Errorf("%q: %v %v", empty, keys, err)
		}
	}
	keys, err := ConfigKeys("allocator.x", json.RawMessage(`{"a":1,"b":"two"}`))
	if err != nil || len(keys) != 2 || string(keys["a"]) != "1" || string(keys["b"]) != `"two"` {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if keys, err := ConfigKeys("allocator.x", json.RawMessage(`{}`)); err != nil || len(keys) != 0 {
		t.Fatalf("{}: %v %v", keys, err)
	}
	for _, bad := range []string{`[1]`, `"s"`, `{`} {
		_, err := ConfigKeys("allocator.x", json.RawMessage(bad))
		if err == nil || !strings.HasPrefix(err.Error(), "allocator.x: config must be a JSON object: ") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if got := string(ConfigJSON(struct {
		A int `json:"a"`
	}{3})); got != `{"a":3}` {
		t.Errorf("ConfigJSON: %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("ConfigJSON of a channel did not panic")
		}
	}()
	ConfigJSON(make(chan int))
}
