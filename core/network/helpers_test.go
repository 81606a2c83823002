package network

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
)

// waitBound bounds every wait of the tests.
const waitBound = 10 * time.Second

func newSecret(tb testing.TB) []byte {
	tb.Helper()
	s := make([]byte, SecretSize)
	if _, err := rand.Read(s); err != nil {
		tb.Fatal(err)
	}
	return s
}

func newKey(tb testing.TB) crypto.PrivKey {
	tb.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// testConfig returns the config of a loopback host.
func testConfig(tb testing.TB, secret []byte) Config {
	return Config{PrivateKey: newKey(tb), Secret: secret, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}
}

func startHost(tb testing.TB, cfg Config) *Host {
	tb.Helper()
	h, err := NewHost(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

// testPeer is a host with its RPC.
type testPeer struct {
	*Host
	rpc *RPC
}

func startPeer(tb testing.TB, secret []byte) testPeer {
	tb.Helper()
	return startPeerConfig(tb, testConfig(tb, secret), RPCConfig{})
}

func startPeerConfig(tb testing.TB, cfg Config, rcfg RPCConfig) testPeer {
	tb.Helper()
	h := startHost(tb, cfg)
	r, err := NewRPC(h, rcfg)
	if err != nil {
		tb.Fatal(err)
	}
	return testPeer{h, r}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	tb.Cleanup(cancel)
	return ctx
}

func connect(tb testing.TB, a, b *Host) {
	tb.Helper()
	id, err := a.Connect(ctxT(tb), b.Addrs()[0])
	if err != nil {
		tb.Fatal(err)
	}
	if id != b.ID() {
		tb.Fatalf("connected to %s, want %s", id, b.ID())
	}
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	cidsMu sync.Mutex
	cids   = map[int]core.Cid{}
)

// testCid returns the i-th test CID (a CIDv0), computed once.
func testCid(tb testing.TB, i int) core.Cid {
	tb.Helper()
	cidsMu.Lock()
	defer cidsMu.Unlock()
	if c, ok := cids[i]; ok {
		return c
	}
	h, err := multihash.Sum(fmt.Appendf(nil, "block %d", i), multihash.SHA2_256, -1)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := core.CastCid(cid.NewCidV0(h).Bytes())
	if err != nil {
		tb.Fatal(err)
	}
	cids[i] = c
	return c
}

// pinInfos makes n statuses as a tracker of peer p would report them.
func pinInfos(tb testing.TB, p peer.ID, n int) []core.PinInfo {
	out := make([]core.PinInfo, n)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range out {
		out[i] = core.PinInfo{
			Cid:         testCid(tb, i),
			Name:        fmt.Sprintf("pin-%d", i),
			Peer:        p,
			Allocations: []peer.ID{p},
			Created:     ts,
			Metadata:    map[string]string{"k": "v"},
			PinInfoShort: core.PinInfoShort{
				PeerName: "peer",
				Status:   core.TrackerStatusPinned,
				TS:       ts,
			},
		}
	}
	return out
}

func p2pAddr(tb testing.TB, s string) ma.Multiaddr {
	tb.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}
