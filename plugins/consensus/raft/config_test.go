package raft

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// IPFS Cluster v1.1's consensus.raft section, with its defaults and its
// omitempty keys (rest-api.md 13.3), is accepted as written.
func TestIPFSClusterRaftSection(t *testing.T) {
	const section = `{
      "init_peerset": [],
      "wait_for_leader_timeout": "15s",
      "network_timeout": "10s",
      "commit_retries": 1,
      "commit_retry_delay": "200ms",
      "backups_rotate": 6,
      "heartbeat_timeout": "1s",
      "election_timeout": "1s",
      "commit_timeout": "50ms",
      "max_append_entries": 64,
      "trailing_logs": 10240,
      "snapshot_interval": "2m0s",
      "snapshot_threshold": 8192,
      "leader_lease_timeout": "500ms",
      "data_folder": "/var/lib/ipfs-cluster/raft",
      "datastore_namespace": "/r"
    }`
	cfg, err := parseConfig(json.RawMessage(section))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.DataFolder = "/var/lib/ipfs-cluster/raft"
	want.DatastoreNamespace = "/r"
	got, _ := json.Marshal(cfg)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Fatalf("parsed as %s, want %s", got, wantJSON)
	}
	if cfg.SnapshotInterval.D() != 2*time.Minute || cfg.LeaderLeaseTimeout.D() != 500*time.Millisecond {
		t.Fatalf("%+v", cfg)
	}
	// datastore_namespace is omitted by default, as in IPFS Cluster: a new
	// service.json does not gain it.
	def, _ := json.Marshal(DefaultConfig())
	if strings.Contains(string(def), "datastore_namespace") {
		t.Fatalf("default config: %s", def)
	}
}

// Errors name their key by its full path.
func TestConfigErrorsNameTheKey(t *testing.T) {
	for raw, want := range map[string]string{
		`{"nope": 1}`:                         "consensus.raft.nope: unknown key",
		`{"network_timeout": 10}`:             `consensus.raft.network_timeout: want a duration such as "30s", got 10`,
		`{"trailing_logs": -1}`:               "consensus.raft.trailing_logs: want a non-negative integer, got number -1",
		`{"datastore_namespace": 1}`:          "consensus.raft.datastore_namespace: want a string, got number",
		`{"init_peerset": "12D3KooW"}`:        "consensus.raft.init_peerset: want a list, got string",
		`{"init_peerset": [1]}`:               "consensus.raft.init_peerset[0]: want a string, got number",
		`{"backups_rotate": 0}`:               "consensus.raft.backups_rotate must be at least 1",
		`{"listen_multiaddress": "tcp/9098"}`: "consensus.raft.listen_multiaddress",
	} {
		_, err := parseConfig(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", raw, err, want)
		}
	}
}
