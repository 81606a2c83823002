package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestListenOnLoopback(t *testing.T) {
	s, err := ParseService([]byte(`{
		"cluster": {"secret": "` + strings.Repeat("ab", 32) + `", "listen_multiaddress": ["/ip4/0.0.0.0/tcp/9096"]},
		"api": {"restapi": {"http_listen_multiaddress": "/ip4/127.0.0.1/tcp/9094", "read_timeout": "0s"}},
		"consensus": {"raft": {"listen_multiaddress": "/ip4/0.0.0.0/tcp/9098", "trailing_logs": 8}},
		"ipfs_connector": {"embedded": {"listen_multiaddress": "/ip4/0.0.0.0/tcp/4011"}},
		"pin_tracker": {"stateless": {}},
		"allocator": {"balanced": {"allocate_by": ["freespace"]}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	next := 20000
	api, err := s.ListenOnLoopback(func() int { next++; return next })
	if err != nil {
		t.Fatal(err)
	}
	if api != "127.0.0.1:20001" {
		t.Fatalf("api address %q", api)
	}
	if got := s.Cluster.ListenMultiaddress; len(got) != 1 || got[0] != "/ip4/127.0.0.1/tcp/20002" {
		t.Fatalf("cluster listen %v", got)
	}
	seen := map[string]bool{}
	for _, sec := range []Sections{s.Consensus, s.IPFSConnector} {
		for name, raw := range sec {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			addr, _ := m["listen_multiaddress"].(string)
			if !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/2000") || seen[addr] {
				t.Fatalf("%s listens on %q", name, addr)
			}
			seen[addr] = true
		}
	}
	// Other settings are kept.
	var raft map[string]any
	_ = json.Unmarshal(s.Consensus["raft"], &raft)
	if raft["trailing_logs"] != float64(8) {
		t.Fatalf("raft section lost a setting: %v", raft)
	}
	var rest map[string]any
	_ = json.Unmarshal(s.API["restapi"], &rest)
	if rest["read_timeout"] != "0s" {
		t.Fatalf("restapi section lost a setting: %v", rest)
	}
}

func TestRandomPortsKeepsTheIP(t *testing.T) {
	s, err := ParseService([]byte(`{
		"cluster": {"secret": "` + strings.Repeat("ab", 32) + `", "listen_multiaddress": ["/ip4/0.0.0.0/tcp/9096"]},
		"api": {"restapi": {"http_listen_multiaddress": "/ip4/127.0.0.1/tcp/9094"}},
		"consensus": {"raft": {"listen_multiaddress": "/ip6/::/tcp/9098"}},
		"ipfs_connector": {"embedded": {}},
		"pin_tracker": {"stateless": {}},
		"allocator": {"balanced": {}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	next := 30000
	api, err := s.RandomPorts(func() int { next++; return next })
	if err != nil {
		t.Fatal(err)
	}
	if api != "127.0.0.1:30001" {
		t.Fatalf("api address %q", api)
	}
	if got := s.Cluster.ListenMultiaddress; len(got) != 1 || got[0] != "/ip4/0.0.0.0/tcp/30002" {
		t.Fatalf("cluster listen %v", got)
	}
	var raft map[string]any
	_ = json.Unmarshal(s.Consensus["raft"], &raft)
	if raft["listen_multiaddress"] != "/ip6/::/tcp/30003" {
		t.Fatalf("raft listens on %v", raft["listen_multiaddress"])
	}
}
