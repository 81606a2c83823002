package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

func TestClusterKeysFromTheEnvironment(t *testing.T) {
	env := map[string]string{
		"CLUSTER_SECRET":               strings.Repeat("cd", 32),
		"CLUSTER_PEERNAME":             "from-env",
		"CLUSTER_LEAVEONSHUTDOWN":      "true",
		"CLUSTER_REPLICATIONFACTORMIN": "2",
		"CLUSTER_REPLICATIONFACTORMAX": "3",
		"CLUSTER_PEERWATCHINTERVAL":    "2s",
		"CLUSTER_LISTENMULTIADDRESS":   "/ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/tcp/2",
		"CLUSTER_PEERADDRESSES":        `["/ip4/127.0.0.1/tcp/3/p2p/x"]`,
	}
	c := DefaultClusterConfig()
	if err := c.applyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.Secret != env["CLUSTER_SECRET"] || c.Peername != "from-env" || !c.LeaveOnShutdown ||
		c.ReplicationFactorMin != 2 || c.ReplicationFactorMax != 3 || c.PeerWatchInterval.D() != 2*time.Second {
		t.Fatalf("%+v", c)
	}
	if got := c.ListenMultiaddress; len(got) != 2 || got[1] != "/ip4/127.0.0.1/tcp/2" {
		t.Fatalf("listen %v", got)
	}
	if got := c.PeerAddresses; len(got) != 1 {
		t.Fatalf("peer addresses %v", got)
	}

	bad := DefaultClusterConfig()
	err := bad.applyEnv(func(k string) (string, bool) { return "soon", k == "CLUSTER_DISABLEREPINNING" })
	if err == nil || !strings.Contains(err.Error(), "CLUSTER_DISABLEREPINNING (cluster.disable_repinning)") {
		t.Fatalf("a bad value: %v", err)
	}
}

// The IPFS Cluster keys kept without being used take their variables too.
func TestIPFSClusterKeysFromTheEnvironment(t *testing.T) {
	env := map[string]string{
		"CLUSTER_DIALPEERTIMEOUT":      "5s",
		"CLUSTER_ENABLERELAYHOP":       "false",
		"CLUSTER_PEERSTOREFILE":        "peerstore",
		"CLUSTER_ANNOUNCEMULTIADDRESS": "/ip4/1.2.3.4/tcp/9096,/ip4/1.2.3.4/tcp/9097",
		"CLUSTER_CONNECTIONMANAGER":    `{"high_water": 500, "low_water": 50, "grace_period": "1m"}`,
	}
	c := DefaultClusterConfig()
	if err := c.applyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.DialPeerTimeout == nil || c.DialPeerTimeout.D() != 5*time.Second || c.EnableRelayHop == nil || *c.EnableRelayHop ||
		c.PeerstoreFile == nil || *c.PeerstoreFile != "peerstore" || len(c.AnnounceMultiaddress) != 2 ||
		!strings.Contains(string(c.ConnectionManager), `"high_water": 500`) {
		t.Fatalf("%+v", c)
	}
	bad := DefaultClusterConfig()
	err := bad.applyEnv(func(k string) (string, bool) { return "{", k == "CLUSTER_RESOURCEMANAGER" })
	if err == nil || !strings.Contains(err.Error(), "CLUSTER_RESOURCEMANAGER (cluster.resource_manager)") {
		t.Fatalf("a bad object: %v", err)
	}
}

// A plugin's section is overridden by CLUSTER_<PLUGIN>_<KEY> variables, as
// every component section of IPFS Cluster is, for the keys it has.
func TestPluginSectionFromTheEnvironment(t *testing.T) {
	env := map[string]string{
		"CLUSTER_IPFSHTTP_NODEMULTIADDRESS": "/dns4/ipfs0/tcp/5001",
		"CLUSTER_IPFSHTTP_PINCONCURRENCY":   "4",
		"CLUSTER_IPFSHTTP_PEERS":            "a, b",
		"CLUSTER_IPFSHTTP_ABSENTKEY":        "ignored",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	raw := json.RawMessage(`{"node_multiaddress":"/ip4/127.0.0.1/tcp/5001","pin_concurrency":16,"peers":[],"pin_timeout":"2m0s"}`)
	out, err := sectionEnv(core.KindIPFSConnector, "ipfshttp", raw, lookup)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got["node_multiaddress"] != "/dns4/ipfs0/tcp/5001" || got["pin_concurrency"] != float64(4) ||
		len(got["peers"].([]any)) != 2 || got["pin_timeout"] != "2m0s" || got["absent_key"] != nil || len(got) != 4 {
		t.Fatalf("overridden section: %s", out)
	}
	env["CLUSTER_IPFSHTTP_PINCONCURRENCY"] = "many"
	if _, err := sectionEnv(core.KindIPFSConnector, "ipfshttp", raw, lookup); err == nil ||
		!strings.Contains(err.Error(), "CLUSTER_IPFSHTTP_PINCONCURRENCY (ipfs_connector.ipfshttp.pin_concurrency)") {
		t.Fatalf("a bad value: %v", err)
	}
	// Through the service: the plugin gets the overridden section.
	t.Setenv("CLUSTER_RAFT_HEARTBEATTIMEOUT", "3s")
	s, err := ParseService([]byte(`{"cluster":{"secret":"` + strings.Repeat("ab", 32) + `"},"consensus":{"raft":{"heartbeat_timeout":"1s"}},"api":{},"ipfs_connector":{"embedded":{}},"pin_tracker":{"stateless":{}},"allocator":{"balanced":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := s.Plugin(core.KindConsensus)
	if err != nil || string(pc.Config) != `{"heartbeat_timeout":"3s"}` {
		t.Fatalf("raft from the environment: %s %v", pc.Config, err)
	}
}
