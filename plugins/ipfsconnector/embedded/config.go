package embedded

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/embedded/ipfsnode"
)

// DefaultListenMultiaddress is where the node listens for other IPFS nodes
// unless configured otherwise. It is not kubo's 4001, so that a kubo daemon
// and a peer using the embedded connector can run on the same host.
const DefaultListenMultiaddress = "/ip4/0.0.0.0/tcp/4011"

// Config is the plugin's section of service.json (ipfs_connector.embedded).
type Config struct {
	// StorageMax is the repository size limit in bytes reported by repo
	// stat (the freespace metric is StorageMax minus the repository size).
	StorageMax uint64 `json:"storage_max"`
	// PinTimeout bounds a pin when the tracker does not give a timeout.
	PinTimeout config.Duration `json:"pin_timeout"`
	// UnpinTimeout bounds an unpin.
	UnpinTimeout config.Duration `json:"unpin_timeout"`
	// PinConcurrency is how many pins of one batch run at the same time.
	PinConcurrency int `json:"pin_concurrency"`
	// ListenMultiaddress is where the node accepts connections from the
	// IPFS nodes of the other cluster peers: one multiaddr, or a list.
	ListenMultiaddress Multiaddrs `json:"listen_multiaddress"`
	// NoPeersTimeout is how long a pin that needs blocks from the network
	// waits for a first IPFS peer when none is connected before it fails
	// (instead of waiting for its whole timeout for blocks nobody can
	// send). Zero makes such pins wait for their whole timeout.
	NoPeersTimeout config.Duration `json:"no_peers_timeout"`
	// Offline runs the node without any network: no listening port, no
	// connections, only the blocks stored locally.
	Offline bool `json:"offline"`
	// DataFolder overrides the folder the core assigns to the plugin.
	DataFolder string `json:"data_folder,omitempty"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		StorageMax:         ipfsnode.DefaultStorageMax,
		PinTimeout:         config.Duration(2 * time.Minute),
		UnpinTimeout:       config.Duration(3 * time.Hour),
		PinConcurrency:     16,
		ListenMultiaddress: Multiaddrs{DefaultListenMultiaddress},
		NoPeersTimeout:     config.Duration(2 * time.Second),
	}
}

func parseConfig(raw json.RawMessage) (Config, error) {
	cfg := DefaultConfig()
	if err := config.Decode(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("ipfs_connector.embedded: %w", err)
	}
	switch {
	case cfg.StorageMax == 0:
		return cfg, fmt.Errorf("ipfs_connector.embedded.storage_max must be positive")
	case cfg.PinTimeout <= 0 || cfg.UnpinTimeout <= 0:
		return cfg, fmt.Errorf("ipfs_connector.embedded: pin_timeout and unpin_timeout must be positive")
	case cfg.PinConcurrency < 1:
		return cfg, fmt.Errorf("ipfs_connector.embedded.pin_concurrency must be at least 1")
	case cfg.NoPeersTimeout < 0:
		return cfg, fmt.Errorf("ipfs_connector.embedded.no_peers_timeout cannot be negative")
	}
	if !cfg.Offline {
		if len(cfg.ListenMultiaddress) == 0 {
			return cfg, errors.New("ipfs_connector.embedded.listen_multiaddress is empty (set offline to run without a network)")
		}
		if _, err := cfg.ListenMultiaddress.parse(); err != nil {
			return cfg, fmt.Errorf("ipfs_connector.embedded.listen_multiaddress: %w", err)
		}
	}
	return cfg, nil
}

// Multiaddrs is a list of multiaddrs written in JSON as one string when it
// holds a single address, as a list otherwise. Both forms are read.
type Multiaddrs []string

// MarshalJSON writes a single address as a string.
func (m Multiaddrs) MarshalJSON() ([]byte, error) {
	if len(m) == 1 {
		return json.Marshal(m[0])
	}
	return json.Marshal([]string(m))
}

// UnmarshalJSON reads a string or a list of strings.
func (m *Multiaddrs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*m = Multiaddrs{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("must be a multiaddr string or a list of them")
	}
	*m = l
	return nil
}

func (m Multiaddrs) parse() ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(m))
	for _, s := range m {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}
