package embedded

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lp2pswarm "github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core"
)

// dialTimeout bounds the connection to one peer in SwarmConnect.
const dialTimeout = 20 * time.Second

// hostOptions describes the libp2p host of the node.
type hostOptions struct {
	key    crypto.PrivKey
	listen []ma.Multiaddr
	// portFallback lets a listen address whose TCP port is taken fall back
	// to a port chosen by the system (only for the default address).
	portFallback bool
	// secret, when set, keys the private network (32 bytes).
	secret []byte
	log    hclog.Logger
}

// newHost starts the node's libp2p host: TCP, Noise and Yamux only, no
// relay, no DHT, no NAT traversal. Cluster peers connect their nodes to
// each other explicitly (SwarmConnect). With a secret, the host lives in a
// private network keyed by it: a node without the same key cannot even
// finish the connection handshake.
func newHost(o hostOptions) (host.Host, error) {
	opts := []libp2p.Option{
		libp2p.Identity(o.key),
		libp2p.NoListenAddrs, // listeners are added below, one by one
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("pincluster-embedded/" + Version),
	}
	if len(o.secret) > 0 {
		if len(o.secret) != 32 {
			return nil, fmt.Errorf("the cluster secret is %d bytes; the private network needs 32", len(o.secret))
		}
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(o.secret)))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting the libp2p host: %w", err)
	}
	for _, a := range o.listen {
		err := listen(h, a)
		if err != nil && o.portFallback && errors.Is(err, syscall.EADDRINUSE) {
			alt := withTCPPort(a, "0")
			if err2 := listen(h, alt); err2 == nil {
				o.log.Warn("the default IPFS listen port is taken (another peer on this host?): listening on a port chosen by the system instead; set listen_multiaddress to choose it",
					"wanted", a.String(), "error", err)
				err = nil
			}
		}
		if err != nil {
			_ = h.Close()
			return nil, fmt.Errorf("listening on %s: %w", a, err)
		}
	}
	return h, nil
}

// listen adds one listener, keeping the transport's error intact (the
// network's Listen flattens it into text).
func listen(h host.Host, a ma.Multiaddr) error {
	if sw, ok := h.Network().(interface{ AddListenAddr(ma.Multiaddr) error }); ok {
		return sw.AddListenAddr(a)
	}
	return h.Network().Listen(a)
}

// withTCPPort returns a with its TCP port replaced.
func withTCPPort(a ma.Multiaddr, port string) ma.Multiaddr {
	out := make(ma.Multiaddr, 0, len(a))
	for _, c := range a {
		if c.Code() == ma.P_TCP {
			if nc, err := ma.NewComponent("tcp", port); err == nil {
				out = append(out, *nc)
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// bitswapExchange returns the node's exchange constructor: bitswap over
// the host, serving the node's blockstore to the peers it is connected to
// and fetching from them. There is no content routing: wants are sent to
// connected peers.
func bitswapExchange(h host.Host) func(blockstore.Blockstore) (exchange.Interface, error) {
	return func(bs blockstore.Blockstore) (exchange.Interface, error) {
		return bitswap.New(context.Background(), bsnet.NewFromIpfsHost(h), nil, bs), nil
	}
}

// waitForPeers returns the node's BeforeFetch hook: a pin that needs
// blocks while no IPFS peer is connected waits up to wait for one (the core
// may not have connected the nodes yet), then fails: nobody could send the
// blocks. Once a peer is connected, the pin waits for the blocks until its
// own timeout. A wait of zero disables the check.
func waitForPeers(h host.Host, wait time.Duration) func(context.Context, cid.Cid) error {
	return func(ctx context.Context, missing cid.Cid) error {
		if wait <= 0 || len(connectedPeers(h)) > 0 {
			return nil
		}
		timer := time.NewTimer(wait)
		defer timer.Stop()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				// The fetch reports the pin's own timeout.
				return nil
			case <-timer.C:
				return fmt.Errorf("block %s is not stored here and no IPFS peer is connected to fetch it from (waited %s)", missing, wait)
			case <-tick.C:
				if len(connectedPeers(h)) > 0 {
					return nil
				}
			}
		}
	}
}

// hostAddrs returns the addresses the host listens on, unspecified
// addresses expanded to every interface (loopback included), each ending
// with /p2p/<peer id>.
func hostAddrs(h host.Host) ([]string, error) {
	addrs, err := h.Network().InterfaceListenAddresses()
	if err != nil {
		return nil, err
	}
	full, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: addrs})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(full))
	for _, a := range full {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// connectedPeers lists the peers the host has a connection with.
func connectedPeers(h host.Host) []core.PeerID {
	peers := h.Network().Peers()
	out := make([]core.PeerID, 0, len(peers))
	for _, p := range peers {
		if p != h.ID() {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// connect connects the host to every peer named in addrs (each multiaddr
// must end with /p2p/<peer id>; addresses of one peer are tried together).
// The host's own addresses are skipped. Peers are dialled in parallel;
// the error names every address that could not be parsed and every peer
// that could not be reached.
func connect(ctx context.Context, h host.Host, addrs []string) error {
	var errs []error
	infos := map[peer.ID]*peer.AddrInfo{}
	var order []peer.ID
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q is not a multiaddr: %w", s, err))
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: needs a /p2p/<peer id> part: %w", s, err))
			continue
		}
		if ai.ID == h.ID() {
			continue
		}
		if prev, ok := infos[ai.ID]; ok {
			prev.Addrs = append(prev.Addrs, ai.Addrs...)
			continue
		}
		infos[ai.ID] = ai
		order = append(order, ai.ID)
	}

	dialErrs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, p := range order {
		ai := *infos[p]
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			// The caller asks for this connection now: earlier failures
			// must not hold it back.
			if sw, ok := h.Network().(*lp2pswarm.Swarm); ok {
				sw.Backoff().Clear(ai.ID)
			}
			if err := h.Connect(dctx, ai); err != nil {
				dialErrs[i] = fmt.Errorf("connecting to %s at %s: %w", ai.ID, joinAddrs(ai.Addrs), err)
				return
			}
			// Keep the addresses so that bitswap can dial again if the
			// connection drops between two SwarmConnect calls.
			h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.AddressTTL)
		}()
	}
	wg.Wait()
	errs = append(errs, dialErrs...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ipfs_connector.embedded: swarm connect: %w", err)
	}
	return nil
}

func joinAddrs(addrs []ma.Multiaddr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
