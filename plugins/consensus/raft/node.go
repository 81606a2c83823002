package raft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/consensus/raft/raftstore"
)

// node is a configured plugin: the raft store and, when networked, the
// libp2p host that carries raft and the forwarded writes.
type node struct {
	cfg    Config
	self   string // the cluster peer ID: the raft server ID
	store  *raftstore.Store
	host   host.Host // nil without network
	addr   string    // this peer's raft address; "" without network
	logger hclog.Logger

	// ctx ends when the node closes; background work and forwarded
	// requests run under it.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

var errNoNetwork = errors.New("consensus.raft runs without network (it needs the cluster secret and a listen_multiaddress): it cannot have other peers")

// maxPool is the number of idle raft connections kept per peer.
const maxPool = 3

// startNode opens the store as cfg and env say: networked when env carries
// the cluster secret and a listen address is configured; bootstrapped as a
// new cluster on first start unless this peer is joining one.
func startNode(ctx context.Context, cfg Config, env core.Environment, logger hclog.Logger) (_ *node, err error) {
	n := &node{cfg: cfg, self: env.PeerID.String(), logger: logger}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.cancel()
			if n.store != nil {
				_ = n.store.Close()
			}
			if n.host != nil {
				_ = n.host.Close()
			}
		}
	}()

	sc := cfg.storeConfig(env.DataDir, n.self)
	// Only a cluster of one waits for its leader in Configure (below):
	// other peers may not be up yet.
	sc.NoWaitForLeader = true

	var transport hraft.Transport
	networked := len(env.Secret) > 0 && cfg.ListenMultiaddress != ""
	if networked {
		key, err := loadOrCreateKey(sc.DataFolder)
		if err != nil {
			return nil, err
		}
		if n.host, err = newHost(key, cfg.ListenMultiaddress, env.Secret); err != nil {
			return nil, err
		}
		if n.addr, err = announceAddr(n.host, cfg.AnnounceMultiaddress); err != nil {
			return nil, err
		}
		sl, err := newStreamLayer(n.host, n.addr)
		if err != nil {
			return nil, err
		}
		transport = hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
			Stream:  sl,
			MaxPool: maxPool,
			Timeout: cfg.NetworkTimeout.D(),
			Logger:  logger.Named("transport"),
		})
		logger.Info("raft host listening", "address", n.addr)
	} else {
		logger.Info("raft runs without network: this peer is a cluster of one",
			"secret", len(env.Secret) > 0, "listen_multiaddress", cfg.ListenMultiaddress)
	}

	if err := n.bootstrapConfig(&sc, env, networked); err != nil {
		return nil, err
	}
	n.store, err = raftstore.Open(sc, transport, logger)
	if err != nil {
		return nil, fmt.Errorf("opening the raft store in %s: %w", sc.DataFolder, err)
	}
	if n.host != nil {
		n.host.SetStreamHandler(forwardProtocol, n.serveForward)
	}

	// A cluster of one elects itself at once: wait for that, and for the
	// log to be replayed, so that the pinset is complete when Configure
	// returns (as a single peer always did).
	if n.alone() {
		wctx, cancel := context.WithTimeout(ctx, cfg.leaderTimeout())
		defer cancel()
		if err := n.store.WaitForLeader(wctx); err != nil {
			return nil, err
		}
		if err := n.store.Barrier(wctx); err != nil {
			return nil, err
		}
	}
	if n.host != nil {
		n.bg.Go(n.maintain)
	}
	return n, nil
}

// bootstrapConfig decides how a peer without raft state starts: joining an
// existing cluster (join, or other peers among env.InitPeers) or
// bootstrapping a new one with init_peerset (this peer alone by default).
func (n *node) bootstrapConfig(sc *raftstore.Config, env core.Environment, networked bool) error {
	peers, err := n.cfg.initPeers()
	if err != nil {
		return err
	}
	joining := n.cfg.Join
	if len(peers) == 0 && !joining {
		joining = slices.ContainsFunc(env.InitPeers, func(p core.PeerID) bool { return p != env.PeerID })
	}
	if joining {
		if !networked {
			return fmt.Errorf("cannot join a cluster: %w", errNoNetwork)
		}
		sc.NoBootstrap = true
		return nil
	}
	if len(peers) == 0 {
		return nil
	}
	sc.InitAddresses = map[string]string{}
	for _, p := range peers {
		id := p.id.String()
		sc.InitPeerset = append(sc.InitPeerset, id)
		switch {
		case p.id == env.PeerID:
			// Our own address is the one the host answers.
		case !networked:
			return fmt.Errorf("consensus.raft.init_peerset lists other peers: %w", errNoNetwork)
		case p.addr == "":
			return fmt.Errorf("consensus.raft.init_peerset: %s needs its raft address (\"<peer ID>=<multiaddr>\")", id)
		default:
			sc.InitAddresses[id] = p.addr
		}
	}
	if !slices.Contains(sc.InitPeerset, n.self) {
		return fmt.Errorf("consensus.raft.init_peerset must list this peer (%s), or set join to be added to a running cluster", n.self)
	}
	return nil
}

// alone reports whether this peer is the only voter of its configuration.
func (n *node) alone() bool {
	servers, err := n.store.Servers()
	return err == nil && len(servers) == 1 && servers[0].ID == n.self && servers[0].Voter
}

func (n *node) close() error {
	n.cancel()
	if n.host != nil {
		n.host.RemoveStreamHandler(forwardProtocol)
	}
	err := n.store.Close() // closes the raft transport
	n.bg.Wait()
	if n.host != nil {
		err = errors.Join(err, n.host.Close())
	}
	return err
}

// maintain runs in the background of a networked peer: it connects to the
// other members (so that they learn this host's current addresses), and
// makes sure the raft configuration holds this peer's current address.
func (n *node) maintain() {
	if servers, err := n.store.Servers(); err == nil {
		for _, s := range servers {
			if s.ID == n.self {
				continue
			}
			n.bg.Go(func() {
				id, err := learn(n.host, s.Address)
				if err != nil {
					return
				}
				ctx, cancel := context.WithTimeout(directDial(n.ctx), n.cfg.NetworkTimeout.D())
				defer cancel()
				if err := n.host.Connect(ctx, n.host.Peerstore().PeerInfo(id)); err != nil {
					n.logger.Debug("cannot connect to raft peer", "peer", s.ID, "address", s.Address, "error", err)
				}
			})
		}
	}

	wait := 10 * time.Millisecond
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = time.Second
		servers, err := n.store.Servers()
		if errors.Is(err, raftstore.ErrClosed) || errors.Is(err, hraft.ErrRaftShutdown) {
			return
		}
		i := slices.IndexFunc(servers, func(s raftstore.Server) bool { return s.ID == n.self })
		switch {
		case err != nil || i < 0:
			// Not a member (yet): waiting to be added.
			continue
		case servers[i].Address == n.addr:
			return
		}
		n.logger.Info("updating this peer's raft address", "from", servers[i].Address, "to", n.addr)
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.leaderTimeout())
		err = n.leaderWrite(ctx, func(ctx context.Context) (uint64, error) {
			return 0, n.addVoter(ctx, n.self, n.addr)
		}, func() [][]byte {
			return [][]byte{{fwdAddPeer}, []byte(n.self), []byte(n.addr)}
		})
		cancel()
		if err != nil && n.ctx.Err() == nil {
			n.logger.Warn("cannot update this peer's raft address", "error", err)
		}
	}
}

// addVoter adds (or updates) a voter on the leader, after checking that the
// raft host at addr answers as id.
func (n *node) addVoter(ctx context.Context, id, addr string) error {
	if !n.store.IsLeader() {
		return n.store.AddVoter(ctx, id, addr) // a *NotLeaderError
	}
	servers, err := n.store.Servers()
	if err != nil {
		return err
	}
	if slices.ContainsFunc(servers, func(s raftstore.Server) bool { return s.ID == id && s.Address == addr && s.Voter }) {
		return nil
	}
	if id != n.self {
		a, err := n.call(ctx, addr, []byte{fwdHello})
		if err != nil {
			// Not retryable: the new peer is the problem, not the leader.
			return fmt.Errorf("cannot add %s: its raft host at %s does not answer (down, or outside the private network of this cluster's secret): %v", id, addr, err)
		}
		remote, members := parseHello(a.msg)
		if remote != id {
			return fmt.Errorf("cannot add %s: the raft host at %s belongs to %s", id, addr, remote)
		}
		// A peer that started a cluster of its own would bring a
		// conflicting log: it must have joined (no configuration yet), or
		// be a member of this cluster already (returning, or moved).
		if len(members) > 0 && !slices.Contains(members, n.self) {
			return fmt.Errorf("cannot add %s: it runs a raft cluster of its own (members %v); it must start with join set, with an empty raft data folder", id, members)
		}
	}
	return n.store.AddVoter(ctx, id, addr)
}

// applyEncoded applies ops forwarded by a follower.
func (n *node) applyEncoded(ctx context.Context, enc []byte) (uint64, error) {
	ops, err := raftstore.DecodeOps(enc)
	if err != nil {
		return 0, err
	}
	return n.store.Apply(ctx, ops)
}

// leaderWrite runs a write on the leader: local when this peer leads,
// otherwise sent to the leader as the request fields() returns. After a
// failure caused by the leadership (no leader, a leader that stepped down
// or cannot be reached), it waits for a leader (preferably a new one) and
// tries again, up to commit_retries times. When the leader returns the
// index of a log entry, leaderWrite waits for this peer to apply it.
func (n *node) leaderWrite(ctx context.Context, local func(context.Context) (uint64, error), fields func() [][]byte) error {
	var failed string
	for attempt := 0; ; attempt++ {
		id, addr, err := n.leader(ctx)
		if err != nil {
			return err
		}
		var index uint64
		if id == n.self || n.host == nil {
			index, err = local(ctx)
		} else {
			if addr == "" {
				addr = n.addressOf(id)
			}
			if addr == "" {
				err = &unreachableError{addr: id, err: errors.New("the leader's address is unknown")}
			} else {
				var a answer
				a, err = n.call(ctx, addr, fields()...)
				index = a.index
			}
		}
		if err == nil {
			return n.waitApplied(ctx, index)
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= n.cfg.CommitRetries {
			return err
		}
		n.logger.Debug("write failed, retrying once a leader is known", "leader", id, "error", err)
		failed = id
		if werr := n.waitLeaderChange(ctx, failed, leaderGone(err)); werr != nil {
			return err
		}
	}
}

// leader returns the leader, waiting up to wait_for_leader_timeout for one.
func (n *node) leader(ctx context.Context) (id, addr string, err error) {
	if id, addr = n.store.Leader(); id != "" {
		return id, addr, nil
	}
	wctx, cancel := context.WithTimeout(ctx, n.cfg.leaderTimeout())
	defer cancel()
	if err := n.store.WaitForLeader(wctx); err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return "", "", err
	}
	id, addr = n.store.Leader()
	if id == "" {
		return "", "", raftstore.ErrNoLeader
	}
	return id, addr, nil
}

// addressOf returns the address of a member from the configuration.
func (n *node) addressOf(id string) string {
	servers, _ := n.store.Servers()
	for _, s := range servers {
		if s.ID == id {
			return s.Address
		}
	}
	return ""
}

// waitLeaderChange waits commit_retry_delay, then until a leader other
// than failed is known. When the failed leader may still be the leader
// (gone is false: it lost an election, or was slow), it is accepted again
// once it has kept the leadership for two heartbeat timeouts (followers
// drop a leader that stays silent that long). When it is known not to
// lead (it could not be reached, or answered that it does not lead), only
// a change is waited for, up to wait_for_leader_timeout, after which
// whoever leads is tried.
func (n *node) waitLeaderChange(ctx context.Context, failed string, gone bool) error {
	delay := n.cfg.CommitRetryDelay.D()
	now := time.Now()
	deadline := now.Add(delay + n.cfg.leaderTimeout())
	settle := now.Add(max(delay, 2*n.cfg.heartbeat()))
	if gone {
		settle = deadline
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return raftstore.ErrClosed
		case <-t.C:
		}
		id, _ := n.store.Leader()
		now := time.Now()
		if id != "" && (id != failed || !now.Before(settle)) {
			return nil
		}
		if now.After(deadline) {
			return raftstore.ErrNoLeader
		}
		t.Reset(10 * time.Millisecond)
	}
}

// leaderGone reports whether err shows that the peer a write was sent to
// is not the leader any more.
func leaderGone(err error) bool {
	var re *remoteError
	var ue *unreachableError
	return errors.As(err, &ue) || (errors.As(err, &re) && re.retry)
}

// waitApplied waits until this peer applied the log entry at index, for
// read-your-writes on followers.
func (n *node) waitApplied(ctx context.Context, index uint64) error {
	if index == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, n.cfg.leaderTimeout())
	defer cancel()
	if err := n.store.WaitForIndex(wctx, index); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("committed at index %d, but not applied on this peer yet: %w", index, err)
	}
	return nil
}

// waitMembership waits, for a bounded time, until this peer's view of the
// raft configuration satisfies ok. A membership change is applied to the
// configuration when its entry reaches a peer, not through the state
// machine, so this is how a follower sees its own change. It gives up
// quietly: the change is committed anyway.
func (n *node) waitMembership(ctx context.Context, ok func([]raftstore.Server) bool) {
	deadline := time.Now().Add(n.cfg.leaderTimeout())
	for {
		if servers, err := n.store.Servers(); err != nil || ok(servers) {
			return
		}
		if time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// retryable reports whether err comes from the leadership (no leader, a
// leader that stepped down or that cannot be reached), so that the write
// may succeed on the next leader.
func retryable(err error) bool {
	var re *remoteError
	var ue *unreachableError
	switch {
	case errors.As(err, &re):
		return re.retry
	case errors.As(err, &ue):
		return true
	}
	for _, e := range []error{
		hraft.ErrNotLeader, hraft.ErrLeadershipLost, hraft.ErrEnqueueTimeout,
		hraft.ErrLeadershipTransferInProgress, hraft.ErrAbortedByRestore, raftstore.ErrNoLeader,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
