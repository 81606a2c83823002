package network

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core/config"
)

func TestConfigFrom(t *testing.T) {
	cc := config.DefaultClusterConfig()
	cc.ListenMultiaddress = []string{"/ip4/127.0.0.1/tcp/0"}
	id, err := config.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, err := ConfigFrom(dir, &cc, id)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(cc.Secret)
	if string(cfg.Secret) != string(want) || cfg.PeerstorePath != filepath.Join(dir, "peerstore") || !cfg.PrivateKey.Equals(id.PrivateKey) {
		t.Fatalf("unexpected config %+v", cfg)
	}
	h := startHost(t, cfg)
	if h.ID() != id.ID {
		t.Fatalf("host ID %s, identity %s", h.ID(), id.ID)
	}
	cc.Secret = "abcd"
	if _, err := ConfigFrom(dir, &cc, id); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

func TestNewHostRefusesBadConfig(t *testing.T) {
	good := testConfig(t, newSecret(t))
	cases := map[string]func(*Config){
		"no key":       func(c *Config) { c.PrivateKey = nil },
		"short secret": func(c *Config) { c.Secret = c.Secret[:16] },
		"no listen":    func(c *Config) { c.ListenAddrs = nil },
		"bad listen":   func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/udp/x"} },
		"bad peer":     func(c *Config) { c.PeerAddrs = []string{"/ip4/127.0.0.1/tcp/1"} },
	}
	for name, mutate := range cases {
		cfg := good
		mutate(&cfg)
		if h, err := NewHost(cfg); err == nil {
			_ = h.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHostBasics(t *testing.T) {
	secret := newSecret(t)
	a, b := startHost(t, testConfig(t, secret)), startHost(t, testConfig(t, secret))
	for _, addr := range a.Addrs() {
		if _, id := peer.SplitAddr(addr); id != a.ID() {
			t.Fatalf("address %s does not end with /p2p/%s", addr, a.ID())
		}
		if !strings.HasPrefix(addr.String(), "/ip4/127.0.0.1/tcp/") {
			t.Fatalf("unexpected address %s", addr)
		}
	}
	if len(a.Peers()) != 0 {
		t.Fatalf("peers before any connection: %v", a.Peers())
	}
	if _, err := a.Connect(ctxT(t), a.Addrs()[0]); err == nil {
		t.Fatal("connecting to self succeeded")
	}
	if _, err := a.Connect(ctxT(t), p2pAddr(t, "/ip4/127.0.0.1/tcp/1")); err == nil {
		t.Fatal("an address without /p2p/ was accepted")
	}
	connect(t, a, b)
	if got := a.Peers(); !slices.Equal(got, []peer.ID{b.ID()}) {
		t.Fatalf("a.Peers() = %v", got)
	}
	waitFor(t, "b to see a", func() bool { return slices.Equal(b.Peers(), []peer.ID{a.ID()}) })
	if len(a.PeerAddrs(b.ID())) == 0 {
		t.Fatal("no address of b in a's peerstore")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestParseAddrs(t *testing.T) {
	h := startHost(t, testConfig(t, newSecret(t)))
	good := h.Addrs()[0].String()
	if as, err := ParseAddrs([]string{good}); err != nil || len(as) != 1 || !as[0].Equal(h.Addrs()[0]) {
		t.Fatalf("ParseAddrs(%q) = %v, %v", good, as, err)
	}
	for _, bad := range []string{"", "/ip4/127.0.0.1/tcp/9096", "not a multiaddr", "/p2p/notapeer"} {
		if _, err := ParseAddrs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestOtherSecretCannotConnect checks the private network: a host with
// another secret reaches neither the host nor its RPC, in either direction.
func TestOtherSecretCannotConnect(t *testing.T) {
	secret := newSecret(t)
	a := startPeer(t, secret)
	b := startPeer(t, secret)
	stranger := startPeer(t, newSecret(t))
	var calls sync.Map
	for _, p := range []testPeer{a, b, stranger} {
		if err := Handle(p.rpc, "Test", "Echo", func(ctx context.Context, in string) (string, error) {
			from, _ := RemotePeer(ctx)
			calls.Store(from, true)
			return in, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, a.Host, b.Host)

	// The private network has no explicit refusal: a handshake under
	// another key never completes, and the context ends the attempt.
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	if _, err := stranger.Connect(short(), a.Addrs()[0]); err == nil {
		t.Fatal("a host with another secret connected")
	} else {
		t.Logf("stranger → a: %v", err)
	}
	if _, err := a.Connect(short(), stranger.Addrs()[0]); err == nil {
		t.Fatal("connected to a host with another secret")
	}
	stranger.LibP2P().Peerstore().AddAddrs(a.ID(), a.LibP2P().Addrs(), time.Hour)
	var out string
	err := stranger.rpc.Call(short(), a.ID(), "Test", "Echo", "hello", &out)
	if err == nil || IsRemote(err) {
		t.Fatalf("call from a stranger: %v (answer %q)", err, out)
	}
	t.Logf("stranger's call: %v", err)
	if err := a.rpc.Call(short(), stranger.ID(), "Test", "Echo", "hello", &out); err == nil || IsRemote(err) {
		t.Fatalf("call to a stranger: %v (answer %q)", err, out)
	}
	if _, ok := calls.Load(stranger.ID()); ok {
		t.Fatal("a handler served the stranger")
	}
	if slices.Contains(a.Peers(), stranger.ID()) || slices.Contains(stranger.Peers(), a.ID()) {
		t.Fatal("the stranger is listed as connected")
	}
	// The cluster itself still works.
	if err := a.rpc.Call(ctxT(t), b.ID(), "Test", "Echo", "hi", &out); err != nil || out != "hi" {
		t.Fatalf("a → b: %q %v", out, err)
	}
}

func TestBootstrap(t *testing.T) {
	secret := newSecret(t)
	seed := startHost(t, testConfig(t, secret))
	other := startHost(t, testConfig(t, secret))
	joiner := startHost(t, testConfig(t, secret))
	dead := startHost(t, testConfig(t, secret))
	deadAddr := dead.Addrs()[0]
	_ = dead.Close()

	if ids, err := joiner.Bootstrap(ctxT(t), nil); err != nil || ids != nil {
		t.Fatalf("empty bootstrap: %v %v", ids, err)
	}
	if _, err := joiner.Bootstrap(ctxT(t), []ma.Multiaddr{deadAddr}); err == nil {
		t.Fatal("bootstrapping to a dead peer succeeded")
	}
	ids, err := joiner.Bootstrap(ctxT(t), []ma.Multiaddr{seed.Addrs()[0], deadAddr, other.Addrs()[0]})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	want := []peer.ID{seed.ID(), other.ID()}
	slices.Sort(want)
	if !slices.Equal(ids, want) || !slices.Equal(joiner.Peers(), want) {
		t.Fatalf("bootstrap reached %v, connected %v, want %v", ids, joiner.Peers(), want)
	}
}

func TestNotify(t *testing.T) {
	secret := newSecret(t)
	a, b := startHost(t, testConfig(t, secret)), startHost(t, testConfig(t, secret))
	events := make(chan PeerEvent, 16)
	stop, err := a.Notify(func(e PeerEvent) { events <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	next := func() PeerEvent {
		select {
		case e := <-events:
			return e
		case <-time.After(waitBound):
			t.Fatal("no peer event")
			return PeerEvent{}
		}
	}
	connect(t, a, b)
	if e := next(); e != (PeerEvent{Peer: b.ID(), Connected: true}) {
		t.Fatalf("event %+v", e)
	}
	_ = b.Close()
	if e := next(); e != (PeerEvent{Peer: b.ID(), Connected: false}) {
		t.Fatalf("event %+v", e)
	}
	stop()
	stop()
}

// TestPeerstorePersisted checks that the addresses of the peers a host met
// (dialed, or dialing it and identified) are saved, reloaded at the next
// start, and used to rejoin them.
func TestPeerstorePersisted(t *testing.T) {
	secret := newSecret(t)
	dir := t.TempDir()
	path := filepath.Join(dir, PeerstoreFile)
	cfg := testConfig(t, secret)
	cfg.PeerstorePath = path
	a := startHost(t, cfg)
	b := startHost(t, testConfig(t, secret))
	c := startHost(t, testConfig(t, secret))
	connect(t, a, b) // a dials b
	connect(t, c, a) // c dials a: a learns c's listen address through identify

	hasLines := func(data []byte, hosts ...*Host) bool {
		for _, h := range hosts {
			if !strings.Contains(string(data), h.Addrs()[0].String()+"\n") {
				return false
			}
		}
		return true
	}
	waitFor(t, "the peerstore file", func() bool {
		data, _ := os.ReadFile(path)
		return hasLines(data, b, c)
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !hasLines(data, b, c) || strings.Contains(string(data), a.ID().String()) {
		t.Fatalf("peerstore file:\n%s", data)
	}

	// Comments, blank and invalid lines are skipped; an own address too.
	extra := "# cluster peers\n\nnot-a-multiaddr\n/ip4/127.0.0.1/tcp/1\n" + a.Addrs()[0].String() + "\n"
	if err := os.WriteFile(path, append(data, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	a2 := startHost(t, cfg) // same key, same file
	want := []peer.ID{b.ID(), c.ID()}
	slices.Sort(want)
	if got := a2.KnownPeers(); !slices.Equal(got, want) {
		t.Fatalf("reloaded peers %v, want %v", got, want)
	}
	if len(a2.PeerAddrs(b.ID())) == 0 {
		t.Fatal("b's address is not in the peerstore after a restart")
	}
	if n := a2.ConnectKnown(ctxT(t)); n != 2 {
		t.Fatalf("rejoined %d known peers, want 2", n)
	}
	a2.Forget(c.ID())
	if got := a2.KnownPeers(); !slices.Equal(got, []peer.ID{b.ID()}) {
		t.Fatalf("known peers after Forget: %v", got)
	}
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if !hasLines(data, b) || hasLines(data, c) || strings.Contains(string(data), "#") {
		t.Fatalf("peerstore file after Forget:\n%s", data)
	}
}

func TestPeerstoreSeededFromConfig(t *testing.T) {
	secret := newSecret(t)
	b := startHost(t, testConfig(t, secret))
	cfg := testConfig(t, secret)
	cfg.PeerAddrs = []string{b.Addrs()[0].String()}
	cfg.PeerstorePath = filepath.Join(t.TempDir(), "sub", PeerstoreFile)
	a := startHost(t, cfg)
	if !slices.Equal(a.KnownPeers(), []peer.ID{b.ID()}) {
		t.Fatalf("known peers %v", a.KnownPeers())
	}
	if n := a.ConnectKnown(ctxT(t)); n != 1 {
		t.Fatalf("connected to %d peers", n)
	}
	if err := a.SavePeerstore(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cfg.PeerstorePath)
	if err != nil || !strings.Contains(string(data), b.ID().String()) {
		t.Fatalf("peerstore %q %v", data, err)
	}
}

func TestNoPeerstoreFileWhenNothingKnown(t *testing.T) {
	cfg := testConfig(t, newSecret(t))
	cfg.PeerstorePath = filepath.Join(t.TempDir(), PeerstoreFile)
	h := startHost(t, cfg)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.PeerstorePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an empty peerstore was written: %v", err)
	}
}
