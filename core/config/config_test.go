package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pincluster/pincluster/core"
)

const minimal = `{
  "cluster": {},
  "consensus": {"raft": {}},
  "api": {"restapi": {}},
  "ipfs_connector": {"embedded": {}},
  "pin_tracker": {"stateless": {}},
  "allocator": {"balanced": {"allocate_by": ["freespace"]}}
}`

func TestParseService(t *testing.T) {
	s, err := ParseService([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster.ReplicationFactorMin != -1 || len(s.Cluster.Secret) != 64 || s.Cluster.PluginGOMAXPROCS != 1 {
		t.Fatalf("cluster defaults not applied: %+v", s.Cluster)
	}
	// plugin_gomaxprocs 0 leaves the plugins' runtimes their default.
	s, err = ParseService([]byte(strings.Replace(minimal, `"cluster": {}`, `"cluster": {"plugin_gomaxprocs": 0}`, 1)))
	if err != nil || s.Cluster.PluginGOMAXPROCS != 0 {
		t.Fatalf("plugin_gomaxprocs 0: %v %v", s, err)
	}
	pc, err := s.Plugin(core.KindAllocator)
	if err != nil || pc.Name != "balanced" || pc.External != nil || !strings.Contains(string(pc.Config), "freespace") {
		t.Fatalf("allocator choice %+v %v", pc, err)
	}
}

func TestParseServiceErrors(t *testing.T) {
	cases := map[string]string{
		"unknown top-level key": strings.Replace(minimal, `"cluster": {}`, `"cluster": {}, "colour": 1`, 1),
		"unknown cluster key":   strings.Replace(minimal, `"cluster": {}`, `"cluster": {"peer_name": "x"}`, 1),
		"two allocators":        strings.Replace(minimal, `"allocator": {`, `"allocator": {"other": {}, `, 1),
		"no consensus":          strings.Replace(minimal, `"consensus": {"raft": {}},`, ``, 1),
		"bad replication":       strings.Replace(minimal, `"cluster": {}`, `"cluster": {"replication_factor_min": 3, "replication_factor_max": 2}`, 1),
		"mixed -1":              strings.Replace(minimal, `"cluster": {}`, `"cluster": {"replication_factor_min": -1, "replication_factor_max": 2}`, 1),
		"bad secret":            strings.Replace(minimal, `"cluster": {}`, `"cluster": {"secret": "xyz"}`, 1),
		"bad duration":          strings.Replace(minimal, `"cluster": {}`, `"cluster": {"state_sync_interval": "soon"}`, 1),
		"plugin without path":   strings.Replace(minimal, `"cluster": {}`, `"cluster": {}, "plugins": {"x": {}}`, 1),
		"bad sha256":            strings.Replace(minimal, `"cluster": {}`, `"cluster": {}, "plugins": {"x": {"path": "/x", "sha256": "zz"}}`, 1),
		"negative gomaxprocs":   strings.Replace(minimal, `"cluster": {}`, `"cluster": {"plugin_gomaxprocs": -1}`, 1),
		"no ping interval":      strings.Replace(minimal, `"cluster": {}`, `"cluster": {"monitor_ping_interval": "0s"}`, 1),
		"not json":              `{"cluster": `,
	}
	for name, doc := range cases {
		if _, err := ParseService([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestExternalPlugin(t *testing.T) {
	doc := strings.Replace(minimal, `"allocator": {"balanced": {"allocate_by": ["freespace"]}}`,
		`"allocator": {"mine": {"k": 1}}, "plugins": {"mine": {"path": "/opt/mine", "sha256": "`+strings.Repeat("ab", 32)+`"}}`, 1)
	s, err := ParseService([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := s.Plugin(core.KindAllocator)
	if err != nil || pc.External == nil || pc.External.Path != "/opt/mine" || string(pc.Config) != `{"k": 1}` {
		t.Fatalf("%+v %v", pc, err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := ParseService([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ServiceFile)
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	s2, err := LoadService(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(s2)
	if string(a) != string(b) {
		t.Fatalf("round trip changed the config:\n%s\n%s", a, b)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), "\n  \"cluster\": {") || !strings.Contains(string(raw), `"state_sync_interval": "5m0s"`) {
		t.Fatalf("unexpected layout:\n%s", raw)
	}
}

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.ID.String(), "12D3KooW") {
		t.Fatalf("ed25519 peer IDs start with 12D3KooW: %s", id.ID)
	}
	path := filepath.Join(dir, IdentityFile)
	if err := id.Save(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `"private_key": "CAES`) {
		t.Fatalf("identity.json layout: %s", raw)
	}
	id2, err := LoadIdentity(path)
	if err != nil || id2.ID != id.ID {
		t.Fatalf("reload: %v %v", id2, err)
	}
	other, _ := NewIdentity()
	bad := strings.Replace(string(raw), id.ID.String(), other.ID.String(), 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(path); err == nil {
		t.Fatal("an identity whose ID does not match its key was accepted")
	}
}
