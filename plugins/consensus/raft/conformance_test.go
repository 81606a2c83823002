package raft

import (
	"testing"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// TestConformance runs the SDK's consensus suite through the plugin
// boundary, with short raft timeouts.
func TestConformance(t *testing.T) {
	conformance.TestConsensus(t, func() sdk.Consensus { return New() }, fastConfig())
}
