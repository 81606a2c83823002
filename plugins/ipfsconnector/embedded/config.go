package embedded

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/embedded/ipfsnode"
)

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
	// DataFolder overrides the folder the core assigns to the plugin.
	DataFolder string `json:"data_folder,omitempty"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		StorageMax:     ipfsnode.DefaultStorageMax,
		PinTimeout:     config.Duration(2 * time.Minute),
		UnpinTimeout:   config.Duration(3 * time.Hour),
		PinConcurrency: 16,
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
	}
	return cfg, nil
}
