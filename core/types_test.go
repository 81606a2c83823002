package core

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func testPeer(tb testing.TB) PeerID {
	tb.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func TestGlobalPinInfoAddKeysByPeerID(t *testing.T) {
	a, b := testPeer(t), testPeer(t)
	var g GlobalPinInfo
	// Twice each, so that the second Add of a peer reads its cached key.
	for range 2 {
		g.Add(PinInfo{Peer: a, PinInfoShort: PinInfoShort{Status: TrackerStatusPinned}})
		g.Add(PinInfo{Peer: b, PinInfoShort: PinInfoShort{Status: TrackerStatusPinning}})
	}
	if len(g.PeerMap) != 2 || g.PeerMap[a.String()].Status != TrackerStatusPinned || g.PeerMap[b.String()].Status != TrackerStatusPinning {
		t.Fatalf("peer_map = %+v", g.PeerMap)
	}
}

func TestPeerKeyCacheIsBounded(t *testing.T) {
	before := peerKeyCount.Load()
	peerKeyCount.Store(maxPeerKeys)
	defer peerKeyCount.Store(before)
	p := testPeer(t)
	if got := peerKey(p); got != p.String() {
		t.Fatalf("peerKey = %q, want %q", got, p.String())
	}
	if _, cached := peerKeys.Load(p); cached {
		t.Fatal("a full cache took one more key")
	}
}

// BenchmarkGlobalPinInfoAdd is the core's part of a status line: wrapping a
// peer's PinInfo as a GlobalPinInfo.
func BenchmarkGlobalPinInfoAdd(b *testing.B) {
	pi := PinInfo{Peer: testPeer(b), PinInfoShort: PinInfoShort{Status: TrackerStatusPinned}}
	for b.Loop() {
		_ = pi.ToGlobal()
	}
}
