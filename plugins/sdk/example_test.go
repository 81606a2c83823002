package sdk_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// firstPeers is the allocator of the package documentation: each pin gets
// the peers with a valid metric in peer ID order, its priority peers first.
// It imports nothing of pincluster but this package.
type firstPeers struct{}

func (firstPeers) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Kind:             sdk.KindAllocator,
		Name:             "first",
		Version:          "0.1.0",
		ProtocolVersions: []int{sdk.ProtocolVersion},
		DefaultConfig:    json.RawMessage(`{}`),
	}, nil
}

func (firstPeers) Configure(context.Context, json.RawMessage, sdk.Environment, sdk.Host) error {
	return nil
}

func (firstPeers) Close(context.Context) error { return nil }

func (firstPeers) Allocate(_ context.Context, req sdk.AllocateRequest) ([]sdk.AllocateResult, error) {
	var usable []sdk.PeerID
	for _, m := range req.Metrics {
		if m.Valid && !m.Expired(time.Now()) && !slices.Contains(usable, m.Peer) {
			usable = append(usable, m.Peer)
		}
	}
	slices.Sort(usable)
	out := make([]sdk.AllocateResult, len(req.Pins))
	for i, pin := range req.Pins {
		var peers []sdk.PeerID
		for _, p := range append(slices.Clone(pin.Priority), usable...) {
			if slices.Contains(usable, p) && !slices.Contains(pin.Current, p) && !slices.Contains(peers, p) {
				peers = append(peers, p)
			}
		}
		if len(peers) < pin.Needed {
			out[i].Error = "not enough peers to allocate CID"
			continue
		}
		out[i].Peers = peers[:min(len(peers), pin.Wanted)]
	}
	return out, nil
}

// The example of the package documentation keeps the contract of its kind.
func TestDocumentationExample(t *testing.T) {
	conformance.TestAllocator(t, func() sdk.Allocator { return firstPeers{} }, nil)
}

// The re-exported names are the core's: a value of one is a value of the
// other, so an implementation written against the SDK is served as is.
func TestAliases(t *testing.T) {
	var a sdk.Allocator = firstPeers{}
	var p sdk.Plugin = a
	if _, ok := p.(sdk.Allocator); !ok {
		t.Fatal("an sdk.Allocator is not an sdk.Plugin")
	}
	c, err := sdk.DecodeCid("bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am")
	if err != nil {
		t.Fatal(err)
	}
	if back, err := sdk.CastCid(c.Bytes()); err != nil || !back.Equals(c) {
		t.Fatalf("CastCid: %v %v", back, err)
	}
	pins, err := sdk.Collect(sdk.SliceSeq([]sdk.Pin{{Cid: c}}))
	if err != nil || len(pins) != 1 || !pins[0].Cid.Equals(c) {
		t.Fatalf("Collect(SliceSeq): %v %v", pins, err)
	}
	if _, err := sdk.Collect(sdk.ErrSeq[sdk.Pin](sdk.ErrPinNotFound)); err != sdk.ErrPinNotFound {
		t.Fatalf("ErrSeq: %v", err)
	}
	if sdk.TrackerStatusPinned.String() != "pinned" || sdk.KindPinTracker != "pin_tracker" || sdk.ProtocolVersion != 1 {
		t.Fatal("constants differ from the core's")
	}
}
