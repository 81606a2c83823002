package raft

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p"
	gostream "github.com/libp2p/go-libp2p-gostream"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Protocols spoken by the plugin's libp2p host.
const (
	// raftProtocol carries raft's RPCs (hashicorp/raft's network
	// transport over libp2p streams).
	raftProtocol protocol.ID = "/pincluster/raft/1.0.0"
	// forwardProtocol carries writes from followers to the leader (see
	// forward.go).
	forwardProtocol protocol.ID = "/pincluster/raft-forward/1.0.0"
)

// hostKeyFile holds the private key of the plugin's libp2p host, in the
// raft data folder. It is not the cluster peer's identity.
const hostKeyFile = "host.key"

// loadOrCreateKey reads the host key of dir, creating it on first use.
func loadOrCreateKey(dir string) (crypto.PrivKey, error) {
	path := filepath.Join(dir, hostKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("reading the raft host key %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return k, nil
}

// newHost starts the plugin's libp2p host: TCP, Noise and Yamux only,
// inside the private network keyed by the cluster secret, without relay,
// NAT traversal or resource limits (the only peers it can ever talk to are
// the cluster's).
func newHost(key crypto.PrivKey, listen string, secret []byte) (host.Host, error) {
	if len(secret) != 32 {
		return nil, fmt.Errorf("the cluster secret must be 32 bytes, got %d", len(secret))
	}
	laddr, err := ma.NewMultiaddr(listen)
	if err != nil {
		return nil, fmt.Errorf("listen_multiaddress: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrs(laddr),
		libp2p.PrivateNetwork(pnet.PSK(secret)),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(&connmgr.NullConnMgr{}),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
		libp2p.UserAgent("pincluster-raft/"+Version),
	)
	if err != nil {
		return nil, fmt.Errorf("starting the raft host on %s: %w", listen, err)
	}
	return h, nil
}

// announceAddr returns the full multiaddr (with /p2p/) other peers use to
// reach h: the announce address when configured, else the address h
// listens on, with an unspecified IP replaced by the one this machine uses
// to reach other networks.
func announceAddr(h host.Host, announce string) (string, error) {
	self, err := ma.NewComponent("p2p", h.ID().String())
	if err != nil {
		return "", err
	}
	if announce != "" {
		a, err := ma.NewMultiaddr(announce)
		if err != nil {
			return "", fmt.Errorf("announce_multiaddress: %w", err)
		}
		tpt, id := peer.SplitAddr(a)
		switch {
		case id == "":
		case id != h.ID():
			return "", fmt.Errorf("announce_multiaddress names peer %s, the raft host is %s", id, h.ID())
		default:
			a = tpt
		}
		return a.Encapsulate(self.Multiaddr()).String(), nil
	}
	listening := h.Network().ListenAddresses()
	if len(listening) == 0 {
		return "", errors.New("the raft host listens nowhere")
	}
	a := listening[0]
	if manet.IsIPUnspecified(a) {
		first, rest := ma.SplitFirst(a)
		ip := outboundIP(first.Protocol().Code == ma.P_IP6)
		c, err := ma.NewComponent(first.Protocol().Name, ip.String())
		if err != nil {
			return "", err
		}
		a = c.Multiaddr().Encapsulate(rest)
	}
	return a.Encapsulate(self.Multiaddr()).String(), nil
}

// outboundIP is the source address this machine uses to reach other
// networks (no packet is sent), or the loopback address when it has none.
func outboundIP(v6 bool) net.IP {
	network, target, loopback := "udp4", "192.0.2.1:9", net.IPv4(127, 0, 0, 1)
	if v6 {
		network, target, loopback = "udp6", "[2001:db8::1]:9", net.IPv6loopback
	}
	conn, err := net.Dial(network, target)
	if err != nil {
		return loopback
	}
	defer conn.Close()
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
		return ua.IP
	}
	return loopback
}

// parseRaftAddr parses a raft server address: a multiaddr ending with
// /p2p/<raft host ID>.
func parseRaftAddr(s string) (*peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a multiaddr: %w", s, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return nil, fmt.Errorf("%q does not end with /p2p/<peer ID>: %w", s, err)
	}
	return info, nil
}

// learn records the transport addresses of a raft server address in the
// peerstore and returns its host ID.
func learn(h host.Host, addr string) (peer.ID, error) {
	info, err := parseRaftAddr(addr)
	if err != nil {
		return "", err
	}
	if info.ID == h.ID() {
		return "", errors.New("that is this peer's own raft address")
	}
	h.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
	return info.ID, nil
}

// directDial marks a dial as one that ignores libp2p's dial backoff: raft
// paces its own retries, and a peer that comes back must be reached at
// once, not minutes later.
func directDial(ctx context.Context) context.Context {
	return network.WithForceDirectDial(ctx, "raft")
}

// raftAddr is the net.Addr of the stream layer: the announce address.
type raftAddr string

func (a raftAddr) Network() string { return "libp2p" }
func (a raftAddr) String() string  { return string(a) }

// streamLayer is a raft.StreamLayer over libp2p streams: raft's network
// transport runs its RPCs over them. Server addresses are full multiaddrs
// with /p2p/, so that any peer can dial a server from the configuration
// alone.
type streamLayer struct {
	host host.Host
	addr raftAddr
	l    net.Listener
}

func newStreamLayer(h host.Host, addr string) (*streamLayer, error) {
	l, err := gostream.Listen(h, raftProtocol)
	if err != nil {
		return nil, err
	}
	return &streamLayer{host: h, addr: raftAddr(addr), l: l}, nil
}

// Dial implements raft.StreamLayer.
func (sl *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	id, err := learn(sl.host, string(address))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(directDial(context.Background()), timeout)
	defer cancel()
	return gostream.Dial(ctx, sl.host, id, raftProtocol)
}

// Accept implements net.Listener.
func (sl *streamLayer) Accept() (net.Conn, error) { return sl.l.Accept() }

// Close implements net.Listener.
func (sl *streamLayer) Close() error { return sl.l.Close() }

// Addr implements net.Listener: raft advertises it as this server's
// address.
func (sl *streamLayer) Addr() net.Addr { return sl.addr }
