package sdk

import (
	"context"
	"encoding/json"
	"errors"
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

// Configured keeps the last configuration that parsed, and says which
// plugin was called before its first one.
func TestConfigured(t *testing.T) {
	type cfg struct{ N int }
	p := &Configured[cfg]{
		Description: Description{Kind: KindAllocator, Name: "counting"},
		Parse: func(raw json.RawMessage) (cfg, error) {
			var c cfg
			err := json.Unmarshal(raw, &c)
			if err == nil && c.N < 0 {
				err = errors.New("allocator.counting.n: must not be negative")
			}
			return c, err
		},
	}
	var _ Plugin = p
	ctx := context.Background()
	if d, _ := p.Describe(ctx); d.Name != "counting" {
		t.Fatalf("Describe: %+v", d)
	}
	if _, err := p.Config(); err == nil || err.Error() != "allocator.counting: called before Configure" {
		t.Fatalf("Config before Configure: %v", err)
	}
	if err := p.Configure(ctx, json.RawMessage(`{"N":1}`), Environment{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Configure(ctx, json.RawMessage(`{"N":-1}`), Environment{}, nil); err == nil {
		t.Fatal("a bad config was accepted")
	}
	if c, err := p.Config(); err != nil || c.N != 1 {
		t.Fatalf("after a failed Configure: %+v %v, want the previous config", c, err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
