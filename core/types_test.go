package core

import "testing"

// testPeers are peer IDs in the string form that keys a peer_map.
var testPeers = []string{
	"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri",
	"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX",
	"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
}

func testPeer(tb testing.TB, i int) PeerID {
	tb.Helper()
	id, err := DecodePeerID(testPeers[i])
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func TestGlobalPinInfoAddKeysByPeerID(t *testing.T) {
	a, b := testPeer(t, 0), testPeer(t, 1)
	var g GlobalPinInfo
	// Twice each, so that the second Add of a peer reads its cached key.
	for range 2 {
		g.Add(PinInfo{Peer: a, PinInfoShort: PinInfoShort{Status: TrackerStatusPinned}})
		g.Add(PinInfo{Peer: b, PinInfoShort: PinInfoShort{Status: TrackerStatusPinning}})
	}
	if len(g.PeerMap) != 2 || g.PeerMap[testPeers[0]].Status != TrackerStatusPinned || g.PeerMap[testPeers[1]].Status != TrackerStatusPinning {
		t.Fatalf("peer_map = %+v", g.PeerMap)
	}
}

func TestPeerKeyCacheIsBounded(t *testing.T) {
	before := peerKeyCount.Load()
	peerKeyCount.Store(maxPeerKeys)
	defer peerKeyCount.Store(before)
	p := testPeer(t, 2)
	if got := peerKey(p); got != testPeers[2] {
		t.Fatalf("peerKey = %q, want %q", got, testPeers[2])
	}
	if _, cached := peerKeys.Load(p); cached {
		t.Fatal("a full cache took one more key")
	}
}

// BenchmarkGlobalPinInfoAdd is the core's part of a status line: wrapping a
// peer's PinInfo as a GlobalPinInfo.
func BenchmarkGlobalPinInfoAdd(b *testing.B) {
	pi := PinInfo{Peer: testPeer(b, 0), PinInfoShort: PinInfoShort{Status: TrackerStatusPinned}}
	for b.Loop() {
		_ = pi.ToGlobal()
	}
}
