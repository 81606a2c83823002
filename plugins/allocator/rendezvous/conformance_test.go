package rendezvous

import (
	"encoding/json"
	"testing"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// TestConformance runs the SDK's allocator suite through the plugin
// boundary, with the default configuration and with another metric.
func TestConformance(t *testing.T) {
	conformance.TestAllocator(t, func() sdk.Allocator { return New() }, nil)
	t.Run("OtherMetric", func(t *testing.T) {
		conformance.TestAllocator(t, func() sdk.Allocator { return New() }, json.RawMessage(`{"metric":"numpin"}`))
	})
}
