package embedded

import (
	"context"
	"testing"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// TestConformance runs the connector suite shared with every IPFS
// connector, in process and through the real gRPC boundary.
func TestConformance(t *testing.T) {
	t.Run("InProcess", func(t *testing.T) {
		conformance.TestIPFSConnector(t, func(t *testing.T) core.IPFSConnector {
			c := New()
			if err := c.Configure(context.Background(), nil, sdktest.Environment(t), nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			return c
		})
	})
	t.Run("ThroughGRPC", func(t *testing.T) {
		conformance.TestIPFSConnector(t, func(t *testing.T) core.IPFSConnector {
			return sdktest.ConnectIPFSConnector(t, New(), nil, nil)
		})
	})
}
