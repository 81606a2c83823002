package stateless

import (
	"encoding/json"
	"testing"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// TestConformance runs the SDK's pin tracker suite through the plugin
// boundary. One retry after 50ms keeps failed pins quick to reach
// pin_error.
func TestConformance(t *testing.T) {
	cfg := json.RawMessage(`{"max_retries":1,"retry_backoff_base":"50ms"}`)
	conformance.TestPinTracker(t, func() sdk.PinTracker { return New() }, cfg)
}
