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
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pincluster/pincluster/core"
)

// ServiceFile is the name of the service configuration in the config folder.
const ServiceFile = "service.json"

// ClusterConfig is the "cluster" section of service.json.
type ClusterConfig struct {
	Peername             string   `json:"peername"`
	Secret               string   `json:"secret"`
	LeaveOnShutdown      bool     `json:"leave_on_shutdown"`
	ListenMultiaddress   []string `json:"listen_multiaddress"`
	ReplicationFactorMin int      `json:"replication_factor_min"`
	ReplicationFactorMax int      `json:"replication_factor_max"`
	StateSyncInterval    Duration `json:"state_sync_interval"`
	PinRecoverInterval   Duration `json:"pin_recover_interval"`
	MonitorPingInterval  Duration `json:"monitor_ping_interval"`
	// PeerWatchInterval is how often the peerset is read again (to notice
	// joins, removals, and this peer's own removal).
	PeerWatchInterval Duration `json:"peer_watch_interval"`
	DisableRepinning  bool     `json:"disable_repinning"`
	PeerAddresses     []string `json:"peer_addresses"`
	// PluginCallTimeout bounds every unary call to a plugin.
	PluginCallTimeout Duration `json:"plugin_call_timeout"`
	// PluginGOMAXPROCS is the GOMAXPROCS of the plugin processes; 0 leaves
	// it to each plugin's runtime (every CPU).
	PluginGOMAXPROCS int `json:"plugin_gomaxprocs"`
}

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
	return nil
}

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
// one component, the plugin to run for that kind.
type Service struct {
	Cluster       ClusterConfig             `json:"cluster"`
	Consensus     Sections                  `json:"consensus"`
	API           Sections                  `json:"api"`
	IPFSConnector Sections                  `json:"ipfs_connector"`
	PinTracker    Sections                  `json:"pin_tracker"`
	Allocator     Sections                  `json:"allocator"`
	Informer      Sections                  `json:"informer,omitempty"`
	Plugins       map[string]ExternalPlugin `json:"plugins,omitempty"`
}

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

// Plugin returns the plugin configured for kind k.
func (s *Service) Plugin(k core.Kind) (PluginChoice, error) {
	sec := s.KindSection(k)
	if len(sec) != 1 {
		names := make([]string, 0, len(sec))
		for n := range sec {
			names = append(names, n)
		}
		sort.Strings(names)
		return PluginChoice{}, fmt.Errorf("service.json: section %q must name exactly one plugin (found %d: %v)", k, len(sec), names)
	}
	for name, raw := range sec {
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

// LoadService reads and validates service.json.
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
// cluster keys keep their defaults; unknown keys are errors. Environment
// variables named by envKey override cluster keys.
func ParseService(b []byte) (*Service, error) {
	s := &Service{Cluster: DefaultClusterConfig()}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("invalid service configuration: %w", err)
	}
	if err := s.Cluster.applyEnv(environment); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
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

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

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
