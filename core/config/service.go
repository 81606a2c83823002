// Package config reads and writes a peer's configuration folder:
// service.json (the cluster section and one raw JSON section per component)
// and identity.json (the peer's key).
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pincluster/pincluster/core"
)

// ServiceFile is the name of the service configuration in the config folder.
const ServiceFile = "service.json"

// ClusterConfig is the "cluster" section of service.json.
type ClusterConfig struct {
	Peername        string `json:"peername"`
	Secret          string `json:"secret"`
	LeaveOnShutdown bool   `json:"leave_on_shutdown"`
	// ListenMultiaddress is where the peer's libp2p host listens (a single
	// multiaddress may be written as a string).
	ListenMultiaddress   Multiaddrs `json:"listen_multiaddress"`
	ReplicationFactorMin int        `json:"replication_factor_min"`
	ReplicationFactorMax int        `json:"replication_factor_max"`
	StateSyncInterval    Duration   `json:"state_sync_interval"`
	PinRecoverInterval   Duration   `json:"pin_recover_interval"`
	MonitorPingInterval  Duration   `json:"monitor_ping_interval"`
	// PeerWatchInterval is how often the peerset is read again (to notice
	// joins, removals, and this peer's own removal).
	PeerWatchInterval Duration   `json:"peer_watch_interval"`
	DisableRepinning  bool       `json:"disable_repinning"`
	PeerAddresses     Multiaddrs `json:"peer_addresses"`
	// PluginCallTimeout bounds every unary call to a plugin.
	PluginCallTimeout Duration `json:"plugin_call_timeout"`
	// PluginGOMAXPROCS is the GOMAXPROCS of the plugin processes; 0 leaves
	// it to each plugin's runtime (every CPU).
	PluginGOMAXPROCS int `json:"plugin_gomaxprocs"`

	// The keys below are IPFS Cluster's, accepted so that its service.json
	// loads, and kept as written (a key that is absent stays absent, so
	// Save writes back what it read). pincluster does not use them; the
	// values it could not ignore without surprise are refused (see
	// validateIPFSClusterKeys), and values other than IPFS Cluster's
	// defaults are reported by Notices.

	AnnounceMultiaddress   Multiaddrs `json:"announce_multiaddress,omitzero"`
	NoAnnounceMultiaddress Multiaddrs `json:"no_announce_multiaddress,omitzero"`
	EnableRelayHop         *bool      `json:"enable_relay_hop,omitempty"`
	// ConnectionManager, ResourceManager and PubSub are JSON objects,
	// checked against IPFS Cluster's keys and types (connManagerConfig,
	// resourceManagerConfig, pubSubConfig).
	ConnectionManager       json.RawMessage `json:"connection_manager,omitempty"`
	ResourceManager         json.RawMessage `json:"resource_manager,omitempty"`
	PubSub                  json.RawMessage `json:"pubsub,omitempty"`
	DialPeerTimeout         *Duration       `json:"dial_peer_timeout,omitempty"`
	MDNSInterval            *Duration       `json:"mdns_interval,omitempty"`
	PinOnlyOnTrustedPeers   *bool           `json:"pin_only_on_trusted_peers,omitempty"`
	PinOnlyOnUntrustedPeers *bool           `json:"pin_only_on_untrusted_peers,omitempty"`
	FollowerMode            *bool           `json:"follower_mode,omitempty"`
	PeerstoreFile           *string         `json:"peerstore_file,omitempty"`
}

// connManagerConfig is IPFS Cluster's cluster.connection_manager.
type connManagerConfig struct {
	HighWater   int      `json:"high_water"`
	LowWater    int      `json:"low_water"`
	GracePeriod Duration `json:"grace_period"`
}

// resourceManagerConfig is IPFS Cluster's cluster.resource_manager.
type resourceManagerConfig struct {
	Enabled              bool   `json:"enabled"`
	MemoryLimitBytes     uint64 `json:"memory_limit_bytes"`
	FileDescriptorsLimit uint64 `json:"file_descriptors_limit"`
}

// pubSubConfig is IPFS Cluster's cluster.pubsub.
type pubSubConfig struct {
	SeenMessagesTTL   Duration `json:"seen_messages_ttl"`
	HeartbeatInterval Duration `json:"heartbeat_interval"`
	DFactor           int      `json:"d_factor"`
	HistoryGossip     int      `json:"history_gossip"`
	HistoryLength     int      `json:"history_length"`
	FloodPublish      bool     `json:"flood_publish"`
}

// IPFS Cluster's defaults of the keys pincluster keeps without using them.
var (
	ipfsClusterConnManager = connManagerConfig{HighWater: 400, LowWater: 100, GracePeriod: Duration(2 * time.Minute)}
	ipfsClusterResourceMgr = resourceManagerConfig{Enabled: true}
	ipfsClusterPubSub      = pubSubConfig{SeenMessagesTTL: Duration(30 * time.Minute), HeartbeatInterval: Duration(10 * time.Second),
		DFactor: 4, HistoryGossip: 2, HistoryLength: 6}
	ipfsClusterDialPeerTimeout = Duration(3 * time.Second)
	ipfsClusterMDNSInterval    = Duration(10 * time.Second)
)

// peerstoreFile is the name of the peerstore file in the config folder
// (network.PeerstoreFile), which is also IPFS Cluster's.
const peerstoreFile = "peerstore"

// DefaultPluginGOMAXPROCS is the default of cluster.plugin_gomaxprocs. A
// peer is five processes (the core and four plugins), each a Go runtime
// that by default runs Go code on every CPU. A plugin does little work per
// message, and an idle runtime with spare Ps wakes other threads to look
// for the goroutines each message readies: with one P the plugins spend
// less CPU per pin and the peer pins faster (docs/performance.md).
// Blocking system calls still run beside the P, as they always do.
const DefaultPluginGOMAXPROCS = 1

// DefaultClusterConfig returns the cluster section with its defaults and a
// new random secret.
func DefaultClusterConfig() ClusterConfig {
	host, _ := os.Hostname()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return ClusterConfig{
		Peername:             host,
		Secret:               hex.EncodeToString(secret),
		ListenMultiaddress:   []string{"/ip4/0.0.0.0/tcp/9096"},
		ReplicationFactorMin: -1,
		ReplicationFactorMax: -1,
		StateSyncInterval:    Duration(5 * 60e9),
		PinRecoverInterval:   Duration(12 * 60e9),
		MonitorPingInterval:  Duration(15e9),
		PeerWatchInterval:    Duration(5e9),
		DisableRepinning:     true,
		PeerAddresses:        []string{},
		PluginCallTimeout:    Duration(60e9),
		PluginGOMAXPROCS:     DefaultPluginGOMAXPROCS,
	}
}

// Validate checks the cluster section.
func (c *ClusterConfig) Validate() error {
	if err := ValidateReplication(c.ReplicationFactorMin, c.ReplicationFactorMax); err != nil {
		return fmt.Errorf("cluster.%w", err)
	}
	if c.ReplicationFactorMin == 0 || c.ReplicationFactorMax == 0 {
		return fmt.Errorf("cluster.replication_factor_min and max must be set (non-zero)")
	}
	if _, err := hex.DecodeString(c.Secret); err != nil || len(c.Secret) != 64 {
		return fmt.Errorf("cluster.secret must be 64 hexadecimal characters")
	}
	if c.PeerWatchInterval <= 0 {
		return fmt.Errorf("cluster.peer_watch_interval must be positive")
	}
	if c.PluginCallTimeout <= 0 {
		return fmt.Errorf("cluster.plugin_call_timeout must be positive")
	}
	if c.MonitorPingInterval <= 0 {
		return fmt.Errorf("cluster.monitor_ping_interval must be positive")
	}
	if c.PluginGOMAXPROCS < 0 {
		return fmt.Errorf("cluster.plugin_gomaxprocs must be 0 (every CPU) or positive")
	}
	for _, l := range []struct {
		key   string
		addrs Multiaddrs
	}{
		{"listen_multiaddress", c.ListenMultiaddress},
		{"announce_multiaddress", c.AnnounceMultiaddress},
		{"no_announce_multiaddress", c.NoAnnounceMultiaddress},
	} {
		if err := l.addrs.validate("cluster." + l.key); err != nil {
			return err
		}
	}
	return c.validateIPFSClusterKeys()
}

// validateIPFSClusterKeys checks the keys pincluster keeps from IPFS
// Cluster without using them: their types, IPFS Cluster's own rules, and
// the values that would change what the peer does if pincluster used them,
// which it refuses rather than ignore.
func (c *ClusterConfig) validateIPFSClusterKeys() error {
	if _, _, _, err := c.ipfsClusterObjects(); err != nil {
		return err
	}
	if c.DialPeerTimeout != nil && *c.DialPeerTimeout <= 0 {
		return fmt.Errorf("cluster.dial_peer_timeout must be positive")
	}
	if c.MDNSInterval != nil && *c.MDNSInterval < 0 {
		return fmt.Errorf("cluster.mdns_interval must not be negative (0 disables mDNS)")
	}
	trusted, untrusted := isTrue(c.PinOnlyOnTrustedPeers), isTrue(c.PinOnlyOnUntrustedPeers)
	switch {
	case trusted && untrusted:
		return fmt.Errorf("cluster.pin_only_on_trusted_peers and cluster.pin_only_on_untrusted_peers cannot both be true")
	case untrusted:
		return fmt.Errorf("cluster.pin_only_on_untrusted_peers: pincluster trusts every peer of its cluster, so no peer could be allocated a pin; set it to false")
	}
	if isTrue(c.FollowerMode) {
		return fmt.Errorf("cluster.follower_mode: pincluster has no follower mode (a peer that follows the pinset without being able to change it); remove the key or set it to false")
	}
	if c.PeerstoreFile != nil && *c.PeerstoreFile != "" && filepath.Clean(*c.PeerstoreFile) != peerstoreFile {
		return fmt.Errorf("cluster.peerstore_file: pincluster keeps the peerstore in the file %q of the config folder and cannot use %q; move the file there and remove the key (or set it to %q)",
			peerstoreFile, *c.PeerstoreFile, peerstoreFile)
	}
	return nil
}

// ipfsClusterObjects decodes connection_manager, resource_manager and
// pubsub over IPFS Cluster's defaults.
func (c *ClusterConfig) ipfsClusterObjects() (connManagerConfig, resourceManagerConfig, pubSubConfig, error) {
	cm, rm, ps := ipfsClusterConnManager, ipfsClusterResourceMgr, ipfsClusterPubSub
	for _, o := range []struct {
		key string
		raw json.RawMessage
		v   any
	}{
		{"connection_manager", c.ConnectionManager, &cm},
		{"resource_manager", c.ResourceManager, &rm},
		{"pubsub", c.PubSub, &ps},
	} {
		if err := DecodeSection("cluster."+o.key, o.raw, o.v); err != nil {
			return cm, rm, ps, err
		}
	}
	return cm, rm, ps, nil
}

// notices lists the IPFS Cluster keys whose values differ from IPFS
// Cluster's defaults: pincluster keeps them and does not use them, which
// the operator should know.
func (c *ClusterConfig) notices() []string {
	var out []string
	note := func(key, what string) {
		out = append(out, fmt.Sprintf("cluster.%s is kept but not used: %s", key, what))
	}
	if len(c.AnnounceMultiaddress) > 0 {
		note("announce_multiaddress", "pincluster announces the addresses it listens on (cluster.listen_multiaddress)")
	}
	if len(c.NoAnnounceMultiaddress) > 0 {
		note("no_announce_multiaddress", "pincluster announces every address it listens on (cluster.listen_multiaddress)")
	}
	cm, rm, ps, err := c.ipfsClusterObjects()
	if err == nil {
		if c.ConnectionManager != nil && cm != ipfsClusterConnManager {
			note("connection_manager", "pincluster's connection manager keeps 100 to 400 connections, with a grace period of 2m0s")
		}
		if c.ResourceManager != nil && rm != ipfsClusterResourceMgr {
			note("resource_manager", "pincluster's libp2p resource manager is always on, with libp2p's default limits for this machine")
		}
		if c.PubSub != nil && ps != ipfsClusterPubSub {
			note("pubsub", "pincluster does not use pubsub (metrics are sent to the other peers by RPC)")
		}
	}
	if c.DialPeerTimeout != nil && *c.DialPeerTimeout != ipfsClusterDialPeerTimeout {
		note("dial_peer_timeout", "pincluster dials peers with libp2p's own timeout")
	}
	if c.MDNSInterval != nil && *c.MDNSInterval != ipfsClusterMDNSInterval && *c.MDNSInterval != 0 {
		note("mdns_interval", "pincluster does not discover peers with mDNS")
	}
	if isTrue(c.PinOnlyOnTrustedPeers) {
		note("pin_only_on_trusted_peers", "pincluster trusts every peer of its cluster, so pins are allocated as without it")
	}
	return out
}

func isTrue(b *bool) bool { return b != nil && *b }

// ValidateReplication checks a min/max pair once defaults are applied.
func ValidateReplication(rmin, rmax int) error {
	switch {
	case rmin < -1 || rmax < -1:
		return fmt.Errorf("replication_factor_min and max must be -1 or positive")
	case (rmin == -1) != (rmax == -1):
		return fmt.Errorf("replication_factor_min and max must be -1 when one of them is")
	case rmax != -1 && rmin > rmax:
		return fmt.Errorf("replication_factor_min is larger than max")
	}
	return nil
}

// ExternalPlugin locates a plugin executable that is not built in.
type ExternalPlugin struct {
	Path string `json:"path"`
	// SHA256 is the hex checksum of the executable; when set, a different
	// file is refused.
	SHA256 string   `json:"sha256,omitempty"`
	Args   []string `json:"args,omitempty"`
}

// Sections is a service.json section: component name -> its raw config.
type Sections map[string]json.RawMessage

// Service is the whole service.json. Each plugin-kind section names exactly
// one plugin, the plugin to run for that kind. The fields follow the order
// of IPFS Cluster's sections, in which Save writes them.
type Service struct {
	Cluster       ClusterConfig `json:"cluster"`
	Consensus     Sections      `json:"consensus"`
	API           Sections      `json:"api"`
	IPFSConnector Sections      `json:"ipfs_connector"`
	// State, Monitor, Observations and Datastore are IPFS Cluster's
	// sections of those names, kept as written and not used: the consensus
	// plugin keeps the pinset, the peer checks its peers' metrics itself,
	// it exports no metrics or traces, and each plugin keeps its own data.
	State      Sections `json:"state,omitempty"`
	PinTracker Sections `json:"pin_tracker"`
	Monitor    Sections `json:"monitor,omitempty"`
	// Allocator may be left out, as in IPFS Cluster: Plugin then gives
	// the balanced allocator by free space (DefaultAllocator).
	Allocator    Sections                  `json:"allocator,omitempty"`
	Informer     Sections                  `json:"informer,omitempty"`
	Observations Sections                  `json:"observations,omitempty"`
	Datastore    Sections                  `json:"datastore,omitempty"`
	Plugins      map[string]ExternalPlugin `json:"plugins,omitempty"`

	// notices are what ParseService found worth telling the operator.
	notices []string
}

// keptSections are IPFS Cluster's sections that pincluster keeps without
// using them, with the components IPFS Cluster v1.1 knows in each (nil:
// any).
var keptSections = []struct {
	key   string
	names []string
	get   func(*Service) Sections
}{
	{"state", nil, func(s *Service) Sections { return s.State }},
	{"monitor", []string{"pubsubmon"}, func(s *Service) Sections { return s.Monitor }},
	{"observations", []string{"metrics", "tracing"}, func(s *Service) Sections { return s.Observations }},
	{"datastore", []string{"badger", "badger3", "leveldb", "pebble"}, func(s *Service) Sections { return s.Datastore }},
}

// DefaultAllocator is the allocator of a service.json without an
// allocator section: IPFS Cluster then allocates by free space alone with
// its balanced allocator, and so does pincluster.
const DefaultAllocator = "balanced"

// DefaultAllocatorConfig is the configuration DefaultAllocator gets.
var DefaultAllocatorConfig = json.RawMessage(`{"allocate_by":["freespace"]}`)

// KindSection returns the section of a plugin kind.
func (s *Service) KindSection(k core.Kind) Sections {
	switch k {
	case core.KindConsensus:
		return s.Consensus
	case core.KindAllocator:
		return s.Allocator
	case core.KindPinTracker:
		return s.PinTracker
	case core.KindIPFSConnector:
		return s.IPFSConnector
	}
	return nil
}

func (s *Service) setKindSection(k core.Kind, sec Sections) {
	switch k {
	case core.KindConsensus:
		s.Consensus = sec
	case core.KindAllocator:
		s.Allocator = sec
	case core.KindPinTracker:
		s.PinTracker = sec
	case core.KindIPFSConnector:
		s.IPFSConnector = sec
	}
}

// PluginChoice is the plugin configured for one kind.
type PluginChoice struct {
	Kind   core.Kind
	Name   string
	Config json.RawMessage
	// External is set when service.json's "plugins" section names the
	// plugin's executable; otherwise the plugin must be built in.
	External *ExternalPlugin
}

// Plugin returns the plugin configured for kind k. Without an allocator
// section (or with an empty one) the allocator is DefaultAllocator with
// DefaultAllocatorConfig, as in IPFS Cluster.
func (s *Service) Plugin(k core.Kind) (PluginChoice, error) {
	sec := s.KindSection(k)
	if k == core.KindAllocator && len(sec) == 0 {
		sec = Sections{DefaultAllocator: DefaultAllocatorConfig}
	}
	if len(sec) != 1 {
		return PluginChoice{}, fmt.Errorf("service.json: section %q must name exactly one plugin (found %d: %v)", k, len(sec), sortedNames(sec))
	}
	for name, raw := range sec {
		raw, err := sectionEnv(k, name, raw, environment)
		if err != nil {
			return PluginChoice{}, err
		}
		pc := PluginChoice{Kind: k, Name: name, Config: raw}
		if ext, ok := s.Plugins[name]; ok {
			ext := ext
			pc.External = &ext
		}
		return pc, nil
	}
	panic("unreachable")
}

// SetPlugin makes name (with config raw) the plugin of kind k.
func (s *Service) SetPlugin(k core.Kind, name string, raw json.RawMessage) {
	s.setKindSection(k, Sections{name: raw})
}

// Validate checks what can be checked without starting plugins.
func (s *Service) Validate() error {
	if err := s.Cluster.Validate(); err != nil {
		return err
	}
	for _, k := range core.Kinds {
		if _, err := s.Plugin(k); err != nil {
			return err
		}
	}
	for _, ks := range keptSections {
		sec := ks.get(s)
		for _, name := range sortedNames(sec) {
			if ks.names != nil && !slices.Contains(ks.names, name) {
				return fmt.Errorf("service.json: %s.%s: unknown section (IPFS Cluster's are %s)", ks.key, name, strings.Join(ks.names, ", "))
			}
			if raw := bytes.TrimSpace(sec[name]); string(raw) != "null" {
				if _, ok := objectMembers(raw); !ok {
					return fmt.Errorf("service.json: %s.%s must be a JSON object", ks.key, name)
				}
			}
		}
	}
	for name, p := range s.Plugins {
		if p.Path == "" {
			return fmt.Errorf("service.json: plugins.%s.path is empty", name)
		}
		if p.SHA256 != "" {
			if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 {
				return fmt.Errorf("service.json: plugins.%s.sha256 must be 64 hexadecimal characters", name)
			}
		}
	}
	return nil
}

func sortedNames(sec Sections) []string {
	names := make([]string, 0, len(sec))
	for n := range sec {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LoadService reads and validates service.json. What it found worth
// telling the operator is in the result's Notices, for the caller to log.
func LoadService(path string) (*Service, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseService(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseService decodes and validates a service.json document. Missing
// cluster keys keep their defaults; unknown keys are errors, and every
// error names its key by its full path (cluster.secret,
// ipfs_connector.kubo). Environment variables named by envKey override
// cluster keys.
func ParseService(b []byte) (*Service, error) {
	if m, ok := objectMembers(b); ok {
		for _, e := range m {
			if e.key == "source" {
				return nil, fmt.Errorf("invalid service configuration: source: pincluster does not fetch its configuration from a URL; put that configuration in service.json instead")
			}
		}
	}
	s := &Service{Cluster: DefaultClusterConfig()}
	if err := decodeAt("", b, s); err != nil {
		return nil, fmt.Errorf("invalid service configuration: %w", err)
	}
	if err := s.Cluster.applyEnv(environment); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.notices = s.findNotices()
	return s, nil
}

// Notices are what the operator should know about the configuration
// ParseService read, one sentence each: the default allocator used for a
// missing allocator section, and IPFS Cluster settings that pincluster
// keeps without using whose values are not IPFS Cluster's defaults.
func (s *Service) Notices() []string { return slices.Clone(s.notices) }

func (s *Service) findNotices() []string {
	var out []string
	if len(s.Allocator) == 0 {
		out = append(out, fmt.Sprintf("the allocator section is missing: using allocator.%s with %s, as IPFS Cluster does", DefaultAllocator, DefaultAllocatorConfig))
	}
	out = append(out, s.Cluster.notices()...)
	for _, o := range []struct{ name, key, what string }{
		{"metrics", "enable_stats", "pincluster exports no Prometheus metrics"},
		{"tracing", "enable_tracing", "pincluster exports no traces"},
	} {
		var sec map[string]any
		if json.Unmarshal(s.Observations[o.name], &sec) == nil && sec[o.key] == true {
			out = append(out, fmt.Sprintf("observations.%s.%s is true, but %s", o.name, o.key, o.what))
		}
	}
	return out
}

// Save writes service.json with two-space indentation.
func (s *Service) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ListenOnLoopback points every listening address of s at 127.0.0.1 on a
// port that port returns: the REST API, the cluster's listen addresses and
// the listen_multiaddress of every plugin section that has one (the
// embedded IPFS node, raft). Several peers configured this way run side by
// side on one machine, as tests and local clusters need. It returns the
// REST API's address (host:port).
func (s *Service) ListenOnLoopback(port func() int) (string, error) {
	return s.rewriteListenAddrs(func(string) (string, string) {
		p := port()
		return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p), fmt.Sprintf("127.0.0.1:%d", p)
	})
}

// RandomPorts gives every listening address of s (the same ones as
// ListenOnLoopback) a port that port returns, keeping its IP, as
// `init --randomports` does. It returns the REST API's address.
func (s *Service) RandomPorts(port func() int) (string, error) {
	return s.rewriteListenAddrs(func(addr string) (string, string) {
		ip := "/ip4/0.0.0.0"
		if parts := strings.Split(addr, "/"); len(parts) >= 3 && (parts[1] == "ip4" || parts[1] == "ip6") {
			ip = "/" + parts[1] + "/" + parts[2]
		}
		p := port()
		hostport := ip[strings.LastIndex(ip, "/")+1:]
		return fmt.Sprintf("%s/tcp/%d", ip, p), fmt.Sprintf("%s:%d", hostport, p)
	})
}

// rewriteListenAddrs replaces every listening address of s by the
// multiaddr f returns for it, and returns the REST API's host:port as f
// gave it.
func (s *Service) rewriteListenAddrs(f func(addr string) (multiaddr, hostport string)) (string, error) {
	api := ""
	if raw, ok := s.API["restapi"]; ok {
		var rest map[string]any
		if err := json.Unmarshal(raw, &rest); err != nil {
			return "", fmt.Errorf("api.restapi: %w", err)
		}
		old, _ := rest["http_listen_multiaddress"].(string)
		rest["http_listen_multiaddress"], api = f(old)
		s.API["restapi"], _ = json.Marshal(rest)
	}
	for i, a := range s.Cluster.ListenMultiaddress {
		s.Cluster.ListenMultiaddress[i], _ = f(a)
	}
	if len(s.Cluster.ListenMultiaddress) == 0 {
		a, _ := f("")
		s.Cluster.ListenMultiaddress = []string{a}
	}
	for _, k := range core.Kinds {
		for name, raw := range s.KindSection(k) {
			var sec map[string]any
			if json.Unmarshal(raw, &sec) != nil {
				continue
			}
			if old, ok := sec["listen_multiaddress"]; ok {
				oldAddr, _ := old.(string)
				sec["listen_multiaddress"], _ = f(oldAddr)
				s.KindSection(k)[name], _ = json.Marshal(sec)
			}
		}
	}
	return api, nil
}
