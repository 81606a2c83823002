package config

import (
	"strings"
	"testing"
	"time"
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
