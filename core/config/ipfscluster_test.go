package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

// ipfsClusterFile is a service.json as IPFS Cluster v1.1 writes it for a
// raft peer with the ipfshttp connector, with the defaults of
// rest-api.md section 13 and every key of the cluster (13.2), raft (13.3)
// and ipfshttp (13.5) sections, the omitempty ones included.
const ipfsClusterFile = "testdata/ipfs-cluster-v1.1-raft.json"

func readIPFSClusterFile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(ipfsClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit returns the JSON document b with the value at the dotted path set
// to v (removed when v is nil).
func edit(t *testing.T, b []byte, path string, v any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keys := strings.Split(path, ".")
	m := doc
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
	} else {
		m[keys[len(keys)-1]] = v
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIPFSClusterServiceJSON(t *testing.T) {
	b := readIPFSClusterFile(t)
	s, err := ParseService(b)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Cluster
	if c.Peername != "ipfs-cluster-peer" || c.ReplicationFactorMin != -1 || c.MonitorPingInterval.D() != 15*time.Second {
		t.Fatalf("cluster section: %+v", c)
	}
	if want := (Multiaddrs{"/ip4/0.0.0.0/tcp/9096", "/ip4/0.0.0.0/udp/9096/quic"}); !slices.Equal(c.ListenMultiaddress, want) {
		t.Fatalf("listen_multiaddress %v", c.ListenMultiaddress)
	}
	if c.EnableRelayHop == nil || !*c.EnableRelayHop || c.DialPeerTimeout == nil || c.DialPeerTimeout.D() != 3*time.Second ||
		c.MDNSInterval == nil || c.MDNSInterval.D() != 10*time.Second || c.FollowerMode == nil || *c.FollowerMode ||
		c.PeerstoreFile == nil || *c.PeerstoreFile != "peerstore" || c.AnnounceMultiaddress == nil || len(c.AnnounceMultiaddress) != 0 {
		t.Fatalf("IPFS Cluster keys of the cluster section: %+v", c)
	}
	for kind, want := range map[core.Kind]string{
		core.KindConsensus:     "raft",
		core.KindIPFSConnector: "ipfshttp",
		core.KindPinTracker:    "stateless",
		core.KindAllocator:     "balanced",
	} {
		pc, err := s.Plugin(kind)
		if err != nil || pc.Name != want || pc.External != nil {
			t.Fatalf("%s: %+v %v", kind, pc, err)
		}
	}
	for name, sec := range map[string]Sections{"monitor": s.Monitor, "observations": s.Observations, "datastore": s.Datastore} {
		if len(sec) == 0 {
			t.Errorf("section %s was not kept", name)
		}
	}
	if !bytes.Contains(s.Datastore["pebble"], []byte(`"l0_compaction_file_threshold": 750`)) {
		t.Fatalf("datastore.pebble not kept as written: %s", s.Datastore["pebble"])
	}
	// Every setting is at IPFS Cluster's default: nothing to report.
	if n := s.Notices(); len(n) != 0 {
		t.Fatalf("notices for a file of defaults: %q", n)
	}

	// Save writes back every key of the file with its value, and adds
	// only pincluster's own cluster keys.
	path := filepath.Join(t.TempDir(), ServiceFile)
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(path)
	var in, out map[string]any
	_ = json.Unmarshal(b, &in)
	if err := json.Unmarshal(saved, &out); err != nil {
		t.Fatal(err)
	}
	outCluster := out["cluster"].(map[string]any)
	for _, k := range []string{"plugin_call_timeout", "plugin_gomaxprocs"} {
		if _, ok := outCluster[k]; !ok {
			t.Errorf("saved cluster section lacks %s", k)
		}
		delete(outCluster, k)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("Save changed the file:\n%s\nsaved:\n%s", b, saved)
	}
	s2, err := LoadService(path)
	if err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(s)
	j2, _ := json.Marshal(s2)
	if !bytes.Equal(j1, j2) {
		t.Fatalf("round trip changed the config:\n%s\n%s", j1, j2)
	}
}

// Multiaddress lists take a single string, as in IPFS Cluster, and are
// written back as lists.
func TestMultiaddressListAsString(t *testing.T) {
	b := readIPFSClusterFile(t)
	b = edit(t, b, "cluster.listen_multiaddress", "/ip4/0.0.0.0/tcp/9096")
	b = edit(t, b, "cluster.announce_multiaddress", "/ip4/1.2.3.4/tcp/9096")
	b = edit(t, b, "cluster.no_announce_multiaddress", []string{"/ip4/10.0.0.0/ipcidr/8"})
	b = edit(t, b, "cluster.peer_addresses", "/ip4/1.2.3.5/tcp/9096/p2p/12D3KooWD4hmmG9zS3mYwqvmu5ecwkLYxpGgiqBS3QvGRPJVMjBS")
	s, err := ParseService(b)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Cluster
	if len(c.ListenMultiaddress) != 1 || c.ListenMultiaddress[0] != "/ip4/0.0.0.0/tcp/9096" ||
		len(c.AnnounceMultiaddress) != 1 || len(c.NoAnnounceMultiaddress) != 1 || len(c.PeerAddresses) != 1 {
		t.Fatalf("%+v", c)
	}
	out, _ := json.Marshal(c)
	if !bytes.Contains(out, []byte(`"listen_multiaddress":["/ip4/0.0.0.0/tcp/9096"]`)) ||
		!bytes.Contains(out, []byte(`"announce_multiaddress":["/ip4/1.2.3.4/tcp/9096"]`)) {
		t.Fatalf("written back as %s", out)
	}
	if n := strings.Join(s.Notices(), "\n"); !strings.Contains(n, "cluster.announce_multiaddress is kept but not used") ||
		!strings.Contains(n, "cluster.no_announce_multiaddress is kept but not used") {
		t.Fatalf("notices: %s", n)
	}
}

// pincluster's own configuration, as init writes it, gains none of the
// IPFS Cluster keys.
func TestDefaultClusterKeys(t *testing.T) {
	out, err := json.Marshal(DefaultClusterConfig())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"disable_repinning", "leave_on_shutdown", "listen_multiaddress", "monitor_ping_interval",
		"peer_addresses", "peer_watch_interval", "peername", "pin_recover_interval", "plugin_call_timeout",
		"plugin_gomaxprocs", "replication_factor_max", "replication_factor_min", "secret", "state_sync_interval"}
	if !slices.Equal(keys, want) {
		t.Fatalf("default cluster keys %v, want %v", keys, want)
	}
	if !bytes.Contains(out, []byte(`"listen_multiaddress":["/ip4/0.0.0.0/tcp/9096"]`)) || !bytes.Contains(out, []byte(`"peer_addresses":[]`)) {
		t.Fatalf("default lists: %s", out)
	}
}

// Values pincluster would have to ignore are refused, and every error
// names its key by its full path.
func TestIPFSClusterRefusals(t *testing.T) {
	b := readIPFSClusterFile(t)
	for _, tc := range []struct {
		path string
		v    any
		want string
	}{
		{"cluster.follower_mode", true, "cluster.follower_mode: pincluster has no follower mode"},
		{"cluster.pin_only_on_untrusted_peers", true, "cluster.pin_only_on_untrusted_peers: pincluster trusts every peer"},
		{"cluster.peerstore_file", "/elsewhere/peers", "cluster.peerstore_file: pincluster keeps the peerstore"},
		{"cluster.announce_multiaddresses", []string{}, "cluster.announce_multiaddresses: unknown key"},
		{"cluster.announce_multiaddress", "1.2.3.4:9096", `cluster.announce_multiaddress: "1.2.3.4:9096" is not a multiaddress`},
		{"cluster.listen_multiaddress", 9096, "cluster.listen_multiaddress: want a multiaddress or a list of multiaddresses, got 9096"},
		{"cluster.no_announce_multiaddress", []any{"/ip4/1.2.3.4", 5}, "cluster.no_announce_multiaddress: want a multiaddress"},
		{"cluster.enable_relay_hop", "yes", "cluster.enable_relay_hop: want true or false, got string"},
		{"cluster.dial_peer_timeout", "3", `cluster.dial_peer_timeout: want a duration such as "30s"`},
		{"cluster.dial_peer_timeout", "0s", "cluster.dial_peer_timeout must be positive"},
		{"cluster.mdns_interval", "-1s", "cluster.mdns_interval must not be negative"},
		{"cluster.connection_manager.high_watermark", 400, "cluster.connection_manager.high_watermark: unknown key"},
		{"cluster.connection_manager.high_water", "400", "cluster.connection_manager.high_water: want an integer, got string"},
		{"cluster.connection_manager.grace_period", 120, `cluster.connection_manager.grace_period: want a duration such as "30s"`},
		{"cluster.resource_manager.memory_limit_bytes", -1, "cluster.resource_manager.memory_limit_bytes: want a non-negative integer, got number -1"},
		{"cluster.resource_manager.limits", map[string]any{}, "cluster.resource_manager.limits: unknown key"},
		{"cluster.pubsub.d_factor", 1.5, "cluster.pubsub.d_factor: want an integer, got number 1.5"},
		{"cluster.pubsub.flood_publish", "no", "cluster.pubsub.flood_publish: want true or false"},
		{"cluster.pin_only_on_trusted_peers", "true", "cluster.pin_only_on_trusted_peers: want true or false"},
		{"cluster.peerstore_file", 1, "cluster.peerstore_file: want a string, got number"},
		{"monitor.pubsub", map[string]any{}, "monitor.pubsub: unknown section (IPFS Cluster's are pubsubmon)"},
		{"observations.metrics", 1, "observations.metrics must be a JSON object"},
		{"datastore.badger4", map[string]any{}, "datastore.badger4: unknown section"},
		{"monitors", map[string]any{}, "monitors: unknown key"},
		{"source", "https://example.com/service.json", "source: pincluster does not fetch its configuration from a URL"},
		{"plugins", map[string]any{"x": map[string]any{"path": "/x", "checksum": "ab"}}, "plugins.x.checksum: unknown key"},
	} {
		_, err := ParseService(edit(t, b, tc.path, tc.v))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s = %v: error %v, want one containing %q", tc.path, tc.v, err, tc.want)
		}
	}
	both := edit(t, edit(t, b, "cluster.pin_only_on_trusted_peers", true), "cluster.pin_only_on_untrusted_peers", true)
	if _, err := ParseService(both); err == nil || !strings.Contains(err.Error(),
		"cluster.pin_only_on_trusted_peers and cluster.pin_only_on_untrusted_peers cannot both be true") {
		t.Errorf("trusted and untrusted: %v", err)
	}
	// Refused through the environment too.
	t.Setenv("CLUSTER_FOLLOWERMODE", "true")
	if _, err := ParseService(b); err == nil || !strings.Contains(err.Error(), "cluster.follower_mode") {
		t.Errorf("CLUSTER_FOLLOWERMODE=true: %v", err)
	}
}

// The values that change nothing are accepted; those that differ from IPFS
// Cluster's defaults are reported.
func TestIPFSClusterAcceptedValues(t *testing.T) {
	b := readIPFSClusterFile(t)
	b = edit(t, b, "cluster.pin_only_on_trusted_peers", true)
	b = edit(t, b, "cluster.peerstore_file", "./peerstore")
	b = edit(t, b, "cluster.follower_mode", nil)
	b = edit(t, b, "cluster.mdns_interval", "0s")
	b = edit(t, b, "cluster.enable_relay_hop", false)
	b = edit(t, b, "cluster.connection_manager.high_water", 500)
	b = edit(t, b, "cluster.dial_peer_timeout", "10s")
	b = edit(t, b, "observations.metrics.enable_stats", true)
	s, err := ParseService(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster.FollowerMode != nil {
		t.Fatal("an absent follower_mode was set")
	}
	notices := strings.Join(s.Notices(), "\n")
	for _, want := range []string{
		"cluster.pin_only_on_trusted_peers is kept but not used",
		"cluster.connection_manager is kept but not used",
		"cluster.dial_peer_timeout is kept but not used",
		"observations.metrics.enable_stats is true",
	} {
		if !strings.Contains(notices, want) {
			t.Errorf("notices lack %q:\n%s", want, notices)
		}
	}
	for _, not := range []string{"mdns_interval", "enable_relay_hop", "peerstore_file", "resource_manager"} {
		if strings.Contains(notices, not) {
			t.Errorf("notice about %s:\n%s", not, notices)
		}
	}
	out, _ := json.Marshal(s)
	if !bytes.Contains(out, []byte(`"high_water":500`)) || bytes.Contains(out, []byte("follower_mode")) ||
		!bytes.Contains(out, []byte(`"enable_relay_hop":false`)) {
		t.Fatalf("not written back as read: %s", out)
	}
}

// Without an allocator section the peer uses the balanced allocator by
// free space, as IPFS Cluster does, and LoadService logs that it does.
func TestMissingAllocator(t *testing.T) {
	for name, b := range map[string][]byte{
		"absent": edit(t, readIPFSClusterFile(t), "allocator", nil),
		"empty":  edit(t, readIPFSClusterFile(t), "allocator", map[string]any{}),
	} {
		s, err := ParseService(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pc, err := s.Plugin(core.KindAllocator)
		if err != nil || pc.Name != "balanced" || pc.External != nil || string(pc.Config) != `{"allocate_by":["freespace"]}` {
			t.Fatalf("%s: allocator %+v %v", name, pc, err)
		}
		// The file stays without one.
		out, _ := json.Marshal(s)
		if bytes.Contains(out, []byte(`"allocator"`)) {
			t.Fatalf("%s: an allocator section was added: %s", name, out)
		}
	}

	path := filepath.Join(t.TempDir(), ServiceFile)
	if err := os.WriteFile(path, edit(t, readIPFSClusterFile(t), "allocator", nil), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadService(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Join(s.Notices(), "\n"); !strings.Contains(n, `the allocator section is missing: using allocator.balanced with {"allocate_by":["freespace"]}`) {
		t.Fatalf("notices: %q", n)
	}
}

func TestDecodeSection(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	type section struct {
		Timeout Duration         `json:"timeout"`
		Inner   inner            `json:"inner"`
		List    []inner          `json:"list"`
		ByName  map[string]inner `json:"by_name"`
	}
	for raw, want := range map[string]string{
		`{"timeout": "1m", "inner": {"n": 1}}`: "",
		`{"Timeout": "1m"}`:                    "", // as encoding/json: case is ignored
		`null`:                                 "",
		`{"timeout": 3}`:                       `x.y.timeout: want a duration such as "30s", got 3`,
		`{"inner": {"m": 1}}`:                  "x.y.inner.m: unknown key",
		`{"inner": {"n": "1"}}`:                "x.y.inner.n: want an integer, got string",
		`{"list": [{"n": 1}, {"o": 2}]}`:       "x.y.list[1].o: unknown key",
		`{"by_name": {"a": {"p": 1}}}`:         "x.y.by_name.a.p: unknown key",
		`{"by_name": {"a": {"n": true}}}`:      "x.y.by_name.a.n: want an integer, got bool",
		`[1]`:                                  "x.y: want an object, got array",
		`{"timeout": "1m"} {}`:                 "x.y: unexpected data after the JSON value",
		"{\n  \"timeout\": \"1m\",\n}":         "x.y: invalid JSON at line 3, column 1",
	} {
		v := section{Timeout: Duration(time.Second)}
		err := DecodeSection("x.y", json.RawMessage(raw), &v)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", raw, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want one containing %q", raw, err, want)
		}
	}
}
