package balanced

import (
	"testing"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// TestConformance runs the SDK's allocator suite through the plugin
// boundary, with the default configuration.
func TestConformance(t *testing.T) {
	conformance.TestAllocator(t, func() sdk.Allocator { return New() }, nil)
}
