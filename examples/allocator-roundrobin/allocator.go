package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pincluster/pincluster/plugins/sdk"
)

// Config is the allocator.roundrobin section of service.json.
type Config struct {
	// Metric names the metric a peer must publish, valid and unexpired,
	// to receive pins.
	Metric string `json:"metric"`
}

// Allocator places pins on a ring: the candidate peers sorted by peer ID.
// Each pin starts at a position of the ring that its CID determines and
// takes the next peers around it, so consecutive positions, like
// consecutive turns of a round robin, go to consecutive peers. It keeps
// no state: the same request always gets the same answer.
type Allocator struct {
	mu  sync.Mutex
	cfg Config
}

// New returns an unconfigured allocator.
func New() *Allocator { return &Allocator{} }

// Describe says what this plugin is. The core may call it before Configure.
func (a *Allocator) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Kind:             sdk.KindAllocator,
		Name:             "roundrobin",
		Version:          "0.1.0",
		ProtocolVersions: []int{sdk.ProtocolVersion},
		DefaultConfig:    json.RawMessage(`{"metric":"freespace"}`),
	}, nil
}

// Configure receives the plugin's section of service.json.
func (a *Allocator) Configure(_ context.Context, raw json.RawMessage, env sdk.Environment, _ sdk.Host) error {
	cfg := Config{Metric: "freespace"}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return fmt.Errorf("allocator.roundrobin: %w", err)
		}
	}
	if cfg.Metric == "" {
		return fmt.Errorf("allocator.roundrobin.metric: must name a metric")
	}
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	sdk.Logger().Info("roundrobin allocator configured", "metric", cfg.Metric, "peer", env.PeerName)
	return nil
}

// Close has nothing to release.
func (a *Allocator) Close(context.Context) error { return nil }

// Allocate answers each pin of the request, in order.
func (a *Allocator) Allocate(_ context.Context, req sdk.AllocateRequest) ([]sdk.AllocateResult, error) {
	a.mu.Lock()
	metric := a.cfg.Metric
	a.mu.Unlock()

	// The ring: peers with a valid, unexpired metric of our name.
	now := time.Now()
	var ring []sdk.PeerID
	for _, m := range req.Metrics {
		if m.Name == metric && m.Valid && !m.Expired(now) && !slices.Contains(ring, m.Peer) {
			ring = append(ring, m.Peer)
		}
	}
	slices.Sort(ring)

	out := make([]sdk.AllocateResult, len(req.Pins))
	for i, pin := range req.Pins {
		out[i] = allocate(pin, ring)
	}
	return out, nil
}

func allocate(pin sdk.PinAllocation, ring []sdk.PeerID) sdk.AllocateResult {
	usable := func(p sdk.PeerID, chosen []sdk.PeerID) bool {
		return slices.Contains(ring, p) && !slices.Contains(pin.Current, p) && !slices.Contains(chosen, p)
	}
	// The user's preferred peers first, then around the ring.
	var peers []sdk.PeerID
	for _, p := range pin.Priority {
		if usable(p, peers) {
			peers = append(peers, p)
		}
	}
	if len(ring) > 0 {
		sum := sha256.Sum256(pin.Cid.Bytes())
		start := int(binary.BigEndian.Uint64(sum[:8]) % uint64(len(ring)))
		for k := range ring {
			if p := ring[(start+k)%len(ring)]; usable(p, peers) {
				peers = append(peers, p)
			}
		}
	}
	if len(peers) < pin.Needed {
		return sdk.AllocateResult{Error: fmt.Sprintf("not enough peers to allocate CID. Needed at least: %d. Wanted at most: %d. Available candidates: %d.", pin.Needed, pin.Wanted, len(peers))}
	}
	return sdk.AllocateResult{Peers: peers[:min(len(peers), pin.Wanted)]}
}
