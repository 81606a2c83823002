package main

import (
	"testing"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// TestConformance checks the allocator against the SDK's suite, through
// the same gRPC boundary the core uses.
func TestConformance(t *testing.T) {
	conformance.TestAllocator(t, func() sdk.Allocator { return New() }, nil)
}
