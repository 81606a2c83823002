package network

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	lpnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// PeerstoreFile is the name of the persisted peerstore in the config folder.
const PeerstoreFile = "peerstore"

// SecretSize is the length in bytes of the cluster secret (the private
// network key).
const SecretSize = 32

// Connection manager defaults (the values IPFS Cluster ships with). The high
// watermark is lowered to the resource manager's connection limit when that
// is smaller.
const (
	DefaultConnMgrLow   = 100
	DefaultConnMgrHigh  = 400
	DefaultConnMgrGrace = 2 * time.Minute
)

// Config configures a Host.
type Config struct {
	// PrivateKey is the peer's identity (identity.json). Required.
	PrivateKey crypto.PrivKey
	// Secret is the 32-byte cluster secret. It keys the libp2p private
	// network: a process without it cannot complete a connection to the
	// host. Required.
	Secret []byte
	// ListenAddrs are the multiaddrs to listen on (service.json's
	// cluster.listen_multiaddress). Required.
	ListenAddrs []string
	// PeerAddrs are cluster peer multiaddrs (with /p2p/) added to the
	// peerstore at start without dialing them (cluster.peer_addresses).
	PeerAddrs []string
	// PeerstorePath is the file the known peer addresses are loaded from at
	// start and saved to when they change and at Close. Empty disables
	// persistence.
	PeerstorePath string
	// ConnMgrLow, ConnMgrHigh and ConnMgrGrace configure the connection
	// manager; zero values take the defaults.
	ConnMgrLow, ConnMgrHigh int
	ConnMgrGrace            time.Duration
	// Logger receives the host's logs; nil discards them.
	Logger hclog.Logger
}

// ConfigFrom builds a host Config from a peer's configuration folder, its
// cluster section and its identity.
func ConfigFrom(configDir string, c *config.ClusterConfig, id *config.Identity) (Config, error) {
	secret, err := DecodeSecret(c.Secret)
	if err != nil {
		return Config{}, err
	}
	return Config{
		PrivateKey:    id.PrivateKey,
		Secret:        secret,
		ListenAddrs:   c.ListenMultiaddress,
		PeerAddrs:     c.PeerAddresses,
		PeerstorePath: filepath.Join(configDir, PeerstoreFile),
	}, nil
}

// DecodeSecret decodes the hexadecimal cluster secret of service.json.
func DecodeSecret(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != SecretSize {
		return nil, fmt.Errorf("the cluster secret must be %d hexadecimal characters", 2*SecretSize)
	}
	return b, nil
}

// ParseAddrs parses peer multiaddrs, each of which must end with /p2p/<id>
// (a --bootstrap flag, cluster.peer_addresses).
func ParseAddrs(ss []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			return nil, fmt.Errorf("%q: not a peer address (it must end with /p2p/<peer id>): %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// PeerEvent reports that a peer connected or disconnected.
type PeerEvent struct {
	Peer      peer.ID
	Connected bool
}

// Host is the libp2p host of a cluster peer: TCP, Noise, Yamux, inside the
// private network of the cluster secret, with a connection manager, the
// default resource manager (with room for the peer RPC's streams) and a
// persisted peerstore.
type Host struct {
	h      host.Host
	logger hclog.Logger
	book   *addrBook

	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// NewHost starts a host listening on cfg.ListenAddrs. The peerstore file,
// when configured, is loaded before it returns.
func NewHost(cfg Config) (*Host, error) {
	if cfg.PrivateKey == nil {
		return nil, errors.New("network: no private key")
	}
	if len(cfg.Secret) != SecretSize {
		return nil, fmt.Errorf("network: the cluster secret must be %d bytes, not %d", SecretSize, len(cfg.Secret))
	}
	if len(cfg.ListenAddrs) == 0 {
		return nil, errors.New("network: no listen address")
	}
	peerAddrs, err := ParseAddrs(cfg.PeerAddrs)
	if err != nil {
		return nil, fmt.Errorf("network: peer_addresses: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}

	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	setRPCLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		return nil, fmt.Errorf("network: resource manager: %w", err)
	}
	low, high, grace := cfg.ConnMgrLow, cfg.ConnMgrHigh, cfg.ConnMgrGrace
	if high <= 0 {
		high = DefaultConnMgrHigh
	}
	if low <= 0 {
		low = DefaultConnMgrLow
	}
	if grace <= 0 {
		grace = DefaultConnMgrGrace
	}
	if l, ok := rm.(interface{ GetConnLimit() int }); ok && l.GetConnLimit() < high {
		high = l.GetConnLimit()
	}
	if low >= high {
		low = high / 2
	}
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(grace))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("network: connection manager: %w", err)
	}

	h, err := libp2p.New(
		libp2p.Identity(cfg.PrivateKey),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.PrivateNetwork(pnet.PSK(slices.Clone(cfg.Secret))),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("pincluster/"+core.SoftwareVersion),
	)
	if err != nil {
		// libp2p.New does not close the managers on every failure; closing
		// them twice is harmless.
		_ = cm.Close()
		_ = rm.Close()
		return nil, fmt.Errorf("network: starting the libp2p host: %w", err)
	}

	nh := &Host{h: h, logger: logger}
	nh.book = newAddrBook(cfg.PeerstorePath, h.ID(), logger)
	if err := nh.book.load(); err != nil {
		_ = h.Close()
		return nil, err
	}
	for _, a := range peerAddrs {
		ai, _ := peer.AddrInfoFromP2pAddr(a) // checked by ParseAddrs
		if ai.ID != h.ID() {
			nh.book.add(ai.ID, ai.Addrs)
		}
	}
	for p, addrs := range nh.book.snapshot() {
		h.Peerstore().AddAddrs(p, addrs, peerstore.PermanentAddrTTL)
	}

	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted), eventbus.BufSize(64))
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("network: event bus: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nh.cancel = cancel
	nh.wg.Add(2)
	go func() {
		defer nh.wg.Done()
		defer sub.Close()
		nh.learnAddrs(ctx, sub)
	}()
	go func() {
		defer nh.wg.Done()
		nh.book.run(ctx)
	}()
	logger.Info("libp2p host started", "id", h.ID(), "addrs", h.Addrs(), "known_peers", len(nh.book.snapshot()))
	return nh, nil
}

// setRPCLimits raises the resource manager's limits of the peer RPC
// protocol: by default a protocol may have only 64 streams from one peer
// at once, and every RPC call is a stream, so a burst of requests fanned
// out to every peer would be refused. The limits of each peer (256 inbound
// streams and more, scaled with memory) and of the whole system still
// apply.
func setRPCLimits(limits *rcmgr.ScalingLimitConfig) {
	limits.AddProtocolLimit(ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: 4096, StreamsOutbound: 4096, Streams: 8192, Memory: 256 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: 256 << 20})
	limits.AddProtocolPeerLimit(ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 64 << 20})
}

// learnAddrs keeps the address book up to date with the listen addresses
// each peer announces through identify once connected.
func (nh *Host) learnAddrs(ctx context.Context, sub event.Subscription) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerIdentificationCompleted)
			if ev.Peer == nh.h.ID() || len(ev.ListenAddrs) == 0 || ev.Conn == nil || ev.Conn.IsClosed() {
				// A connection closed since teaches nothing.
				continue
			}
			stale, ok := nh.book.replace(ev.Peer, ev.ListenAddrs)
			if !ok {
				continue // a forgotten peer stays forgotten
			}
			ps := nh.h.Peerstore()
			if len(stale) > 0 {
				ps.SetAddrs(ev.Peer, stale, 0)
			}
			ps.AddAddrs(ev.Peer, ev.ListenAddrs, peerstore.PermanentAddrTTL)
		}
	}
}

// ID returns the peer's ID.
func (nh *Host) ID() peer.ID { return nh.h.ID() }

// Addrs returns the addresses the host can be reached at, each ending with
// /p2p/<id> (unspecified listen addresses such as 0.0.0.0 are expanded to
// the interfaces' addresses).
func (nh *Host) Addrs() []ma.Multiaddr {
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: nh.h.ID(), Addrs: nh.h.Addrs()})
	return out
}

// Peers returns the peers the host is connected to, sorted.
func (nh *Host) Peers() []peer.ID {
	ps := nh.h.Network().Peers()
	out := make([]peer.ID, 0, len(ps))
	for _, p := range ps {
		if p != nh.h.ID() && nh.h.Network().Connectedness(p) == lpnet.Connected {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// KnownPeers returns the peers of the address book (the persisted
// peerstore), connected or not, sorted.
func (nh *Host) KnownPeers() []peer.ID {
	snap := nh.book.snapshot()
	out := make([]peer.ID, 0, len(snap))
	for p := range snap {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// KnownAddrs returns the addresses of the address book, each ending with
// /p2p/<id>, sorted by peer.
func (nh *Host) KnownAddrs() []ma.Multiaddr {
	snap := nh.book.snapshot()
	var out []ma.Multiaddr
	for _, p := range slices.Sorted(maps.Keys(snap)) {
		full, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: p, Addrs: snap[p]})
		out = append(out, full...)
	}
	return out
}

// PeerAddrs returns the addresses the peerstore holds for p, each ending
// with /p2p/<p>.
func (nh *Host) PeerAddrs(p peer.ID) []ma.Multiaddr {
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: p, Addrs: nh.h.Peerstore().Addrs(p)})
	return out
}

// Connect connects to the peer at addr, which must end with /p2p/<id>, and
// returns its ID. On success the address is remembered (and persisted).
//
// A process with another secret cannot complete the handshake. The
// private network has no explicit refusal: such a connection fails when
// the garbled handshake is rejected or, at worst, when ctx or libp2p's
// dial timeout ends it, so pass a ctx with a deadline.
func (nh *Host) Connect(ctx context.Context, addr ma.Multiaddr) (peer.ID, error) {
	ai, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return "", fmt.Errorf("%s: not a peer address (it must end with /p2p/<peer id>): %w", addr, err)
	}
	if ai.ID == nh.h.ID() {
		return "", fmt.Errorf("%s: this is the address of this peer", addr)
	}
	if err := nh.h.Connect(ctx, *ai); err != nil {
		return "", fmt.Errorf("connecting to %s: %w", addr, err)
	}
	if len(ai.Addrs) > 0 {
		nh.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
		nh.book.add(ai.ID, ai.Addrs)
	}
	return ai.ID, nil
}

// Bootstrap connects to every address in parallel (the --bootstrap flag)
// and returns the peers it reached. It fails only when none was reached;
// the error then joins every address's error.
func (nh *Host) Bootstrap(ctx context.Context, addrs []ma.Multiaddr) ([]peer.ID, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	ids := make([]peer.ID, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = nh.Connect(ctx, a)
		}()
	}
	wg.Wait()
	var out []peer.ID
	for i, id := range ids {
		if errs[i] == nil && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bootstrap: no peer reached: %w", errors.Join(errs...))
	}
	for _, err := range errs {
		if err != nil {
			nh.logger.Warn("bootstrap address unreachable", "error", err)
		}
	}
	return out, nil
}

// ConnectKnown dials, in parallel, every peer of the address book that is
// not connected and returns how many are connected afterwards. A restarted
// peer uses it to rejoin the peers it knew.
func (nh *Host) ConnectKnown(ctx context.Context) int {
	var wg sync.WaitGroup
	for _, p := range nh.KnownPeers() {
		if nh.h.Network().Connectedness(p) == lpnet.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nh.h.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
				nh.logger.Debug("known peer unreachable", "peer", p, "error", err)
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, p := range nh.KnownPeers() {
		if nh.h.Network().Connectedness(p) == lpnet.Connected {
			n++
		}
	}
	return n
}

// Forget removes a peer from the address book and the peerstore, for a
// peer removed from the cluster; what it announces is not learnt again
// until Connect reaches it explicitly. Its open connections stay (the
// answer to its own request to leave may still be on its way); it does not
// stop the peer from connecting again: only the cluster secret gates the
// network.
func (nh *Host) Forget(p peer.ID) {
	nh.h.Peerstore().ClearAddrs(p)
	nh.book.remove(p)
}

// Remember undoes Forget, for a peer added to the cluster again: the
// addresses the peerstore holds for it now go into the address book, and
// what it announces is learnt again.
func (nh *Host) Remember(p peer.ID) {
	nh.book.add(p, nh.h.Peerstore().Addrs(p))
}

// Notify calls fn, from one goroutine and in order, each time a peer
// becomes connected or disconnected, until stop is called (before or after
// Close). fn must not block for long: events queue behind it.
func (nh *Host) Notify(fn func(PeerEvent)) (stop func(), err error) {
	sub, err := nh.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.BufSize(256))
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range sub.Out() {
			ev := e.(event.EvtPeerConnectednessChanged)
			switch ev.Connectedness {
			case lpnet.Connected:
				fn(PeerEvent{Peer: ev.Peer, Connected: true})
			case lpnet.NotConnected:
				fn(PeerEvent{Peer: ev.Peer, Connected: false})
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = sub.Close() // closes sub.Out()
			<-done
		})
	}, nil
}

// SavePeerstore writes the peerstore file now (it is also written when the
// known addresses change and at Close).
func (nh *Host) SavePeerstore() error { return nh.book.save() }

// LibP2P returns the underlying libp2p host, for protocols of the core's
// own (it is closed by Close).
func (nh *Host) LibP2P() host.Host { return nh.h }

// Close saves the peerstore and stops the host. It is safe to call twice.
func (nh *Host) Close() error {
	nh.closeOnce.Do(func() {
		nh.cancel()
		nh.wg.Wait()
		saveErr := nh.book.save()
		nh.closeErr = errors.Join(saveErr, nh.h.Close())
	})
	return nh.closeErr
}
