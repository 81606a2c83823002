// Package raft is the built-in consensus plugin: the pinset is the state of
// a hashicorp/raft state machine (see raftstore), persisted on disk, so it
// survives restarts. Peers form a raft cluster over the plugin's own libp2p
// host, inside the private network of the cluster secret; followers send
// writes to the leader (see node.go and forward.go).
package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/consensus/raft/raftstore"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// Name is the plugin's name in service.json.
const Name = "raft"

// Version is the plugin's version.
const Version = "0.2.0"

// Consensus keeps the pinset in a raft store.
type Consensus struct {
	mu sync.RWMutex
	n  *node
}

// newLogger returns the logger of a configured plugin (tests replace it).
var newLogger = func() hclog.Logger { return sdk.Logger().Named("raft") }

// New returns an unconfigured plugin.
func New() *Consensus { return &Consensus{} }

// Describe implements core.Plugin.
func (c *Consensus) Describe(context.Context) (core.Description, error) {
	def, err := json.Marshal(DefaultConfig())
	if err != nil {
		return core.Description{}, err
	}
	return core.Description{
		Kind:             core.KindConsensus,
		Name:             Name,
		Version:          Version,
		ProtocolVersions: []int{core.ProtocolVersion},
		Capabilities:     []string{"persistent", "watch"},
		DefaultConfig:    def,
	}, nil
}

// Configure opens (or creates) the raft store in the plugin's data folder
// and, when the environment carries the cluster secret, starts the libp2p
// host other peers reach it on.
func (c *Consensus) Configure(ctx context.Context, raw json.RawMessage, env core.Environment, _ core.Host) error {
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	if env.PeerID == "" || env.DataDir == "" {
		return errors.New("consensus.raft needs the peer ID and a data folder")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n != nil {
		return errors.New("consensus.raft is already configured")
	}
	n, err := startNode(ctx, cfg, env, newLogger())
	if err != nil {
		return err
	}
	c.n = n
	return nil
}

// Close shuts raft and the raft host down.
func (c *Consensus) Close(context.Context) error {
	c.mu.Lock()
	n := c.n
	c.n = nil
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	return n.close()
}

var errNotConfigured = errors.New("consensus.raft is not configured")

func (c *Consensus) node() (*node, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.n == nil {
		return nil, errNotConfigured
	}
	return c.n, nil
}

func (c *Consensus) st() (*raftstore.Store, error) {
	n, err := c.node()
	if err != nil {
		return nil, err
	}
	return n.store, nil
}

func encodePin(p core.Pin) ([]byte, error) { return proto.Marshal(sdk.PinToProto(p)) }

func decodePin(b []byte) (core.Pin, error) {
	var m pluginv1.Pin
	if err := proto.Unmarshal(b, &m); err != nil {
		return core.Pin{}, fmt.Errorf("corrupt pin in the state: %w", err)
	}
	return sdk.PinFromProto(&m)
}

// GetPin implements core.PinsetReader.
func (c *Consensus) GetPin(ctx context.Context, ci core.Cid) (core.Pin, error) {
	s, err := c.st()
	if err != nil {
		return core.Pin{}, err
	}
	b, err := s.Get(ci.Bytes())
	if errors.Is(err, raftstore.ErrNotFound) {
		return core.Pin{}, core.ErrPinNotFound
	}
	if err != nil {
		return core.Pin{}, err
	}
	return decodePin(b)
}

// GetPins looks up several CIDs in one read of the state; missing ones
// give a Pin without Cid.
func (c *Consensus) GetPins(ctx context.Context, cids []core.Cid) ([]core.Pin, error) {
	s, err := c.st()
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(cids))
	for i, ci := range cids {
		keys[i] = ci.Bytes()
	}
	out := make([]core.Pin, len(cids))
	err = s.GetEach(keys, func(i int, v []byte) error {
		// decodePin copies what it keeps: v may be reused after this call.
		p, err := decodePin(v)
		out[i] = p
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListPins streams the pinset straight from disk.
func (c *Consensus) ListPins(ctx context.Context) iter.Seq2[core.Pin, error] {
	return func(yield func(core.Pin, error) bool) {
		s, err := c.st()
		if err != nil {
			yield(core.Pin{}, err)
			return
		}
		errStop := errors.New("stop")
		err = s.Iterate(nil, func(_, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			p, err := decodePin(v)
			if err != nil {
				return err
			}
			if !yield(p, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(core.Pin{}, err)
		}
	}
}

// Commit applies the operations as one log entry. On a follower they are
// sent to the leader, and Commit returns once this peer has applied them
// too. A failure caused by a leader change is retried (commit_retries)
// once a leader is known again.
func (c *Consensus) Commit(ctx context.Context, ops []core.PinOp) error {
	n, err := c.node()
	if err != nil {
		return err
	}
	rops := make([]raftstore.Op, len(ops))
	for i, op := range ops {
		if !op.Pin.Cid.Defined() {
			return errors.New("cannot commit a pin without a CID")
		}
		rops[i] = raftstore.Op{Delete: op.Remove, Key: op.Pin.Cid.Bytes()}
		if !op.Remove {
			if rops[i].Value, err = encodePin(op.Pin); err != nil {
				return err
			}
		}
	}
	if len(rops) == 0 {
		return nil
	}
	var enc []byte
	if n.host != nil {
		enc = raftstore.EncodeOps(rops)
	}
	return n.leaderWrite(ctx, func(ctx context.Context) (uint64, error) {
		return n.store.Apply(ctx, rops)
	}, func() [][]byte {
		return [][]byte{{fwdCommit}, enc}
	})
}

// Watch streams every batch applied to the pinset. When the store drops the
// subscription (the watcher lagged or the state was restored from a
// snapshot) the next event asks for a resync.
func (c *Consensus) Watch(ctx context.Context) iter.Seq2[core.PinEvent, error] {
	return func(yield func(core.PinEvent, error) bool) {
		s, err := c.st()
		if err != nil {
			yield(core.PinEvent{}, err)
			return
		}
		// Subscribe before telling the watcher the stream is open (with an
		// empty first event), so that nothing applied after that is missed.
		sub := s.Subscribe(ctx)
		if !yield(core.PinEvent{}, nil) {
			return
		}
		for {
			a, ok := <-sub
			switch {
			case !ok:
				yield(core.PinEvent{}, ctx.Err())
				return
			case errors.Is(a.Err, raftstore.ErrClosed):
				yield(core.PinEvent{}, a.Err)
				return
			case a.Err != nil:
				// Re-subscribe first: the watcher re-reads the pinset
				// after this event and must not miss what follows.
				sub = s.Subscribe(ctx)
				if !yield(core.PinEvent{Resync: true}, nil) {
					return
				}
			default:
				ev, err := eventOf(a)
				if !yield(ev, err) || err != nil {
					return
				}
			}
		}
	}
}

func eventOf(a raftstore.Applied) (core.PinEvent, error) {
	ev := core.PinEvent{Ops: make([]core.PinOp, 0, len(a.Ops))}
	for _, op := range a.Ops {
		if op.Delete {
			ci, err := core.CastCid(op.Key)
			if err != nil {
				return ev, fmt.Errorf("corrupt key in the state: %w", err)
			}
			ev.Ops = append(ev.Ops, core.PinOp{Remove: true, Pin: core.Pin{Cid: ci}})
			continue
		}
		p, err := decodePin(op.Value)
		if err != nil {
			return ev, err
		}
		ev.Ops = append(ev.Ops, core.PinOp{Pin: p})
	}
	return ev, nil
}

// Peers returns the raft voters.
func (c *Consensus) Peers(ctx context.Context) ([]core.PeerID, error) {
	s, err := c.st()
	if err != nil {
		return nil, err
	}
	ids, err := s.Peers()
	if err != nil {
		return nil, err
	}
	out := make([]core.PeerID, 0, len(ids))
	for _, id := range ids {
		p, err := core.DecodePeerID(id)
		if err != nil {
			return nil, fmt.Errorf("raft peer %q is not a peer ID: %w", id, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// AddPeer adds p as a voter, reachable at addr, what p's own plugin
// answered to Address. The leader first checks that it reaches p's raft
// host at addr and that it is p's; a follower sends the request to the
// leader. Adding a voter again with the same address changes nothing; with
// another address, it updates the address.
func (c *Consensus) AddPeer(ctx context.Context, p core.PeerID, addr string) error {
	n, err := c.node()
	if err != nil {
		return err
	}
	if n.host == nil {
		return errNoNetwork
	}
	if _, err := parseRaftAddr(addr); err != nil {
		return fmt.Errorf("raft address of %s: %w", p, err)
	}
	id := p.String()
	err = n.leaderWrite(ctx, func(ctx context.Context) (uint64, error) {
		return 0, n.addVoter(ctx, id, addr)
	}, func() [][]byte {
		return [][]byte{{fwdAddPeer}, []byte(id), []byte(addr)}
	})
	if err != nil {
		return err
	}
	n.waitMembership(ctx, func(servers []raftstore.Server) bool {
		return slices.ContainsFunc(servers, func(s raftstore.Server) bool { return s.ID == id && s.Address == addr })
	})
	return nil
}

// Address is where other peers reach this peer's raft: the multiaddr of the
// plugin's libp2p host, ending with /p2p/<host ID>. It is empty when the
// plugin runs without network.
func (c *Consensus) Address(context.Context) (string, error) {
	n, err := c.node()
	if err != nil {
		return "", err
	}
	return n.addr, nil
}

// RemovePeer removes a peer from the raft configuration (through the
// leader).
func (c *Consensus) RemovePeer(ctx context.Context, p core.PeerID) error {
	n, err := c.node()
	if err != nil {
		return err
	}
	id := p.String()
	peers, err := n.store.Peers()
	if err != nil {
		return err
	}
	if !slices.Contains(peers, id) {
		return fmt.Errorf("%s is not a cluster peer", p)
	}
	err = n.leaderWrite(ctx, func(ctx context.Context) (uint64, error) {
		return 0, n.store.RemovePeer(ctx, id)
	}, func() [][]byte {
		return [][]byte{{fwdRemovePeer}, []byte(id)}
	})
	if err != nil {
		return err
	}
	n.waitMembership(ctx, func(servers []raftstore.Server) bool {
		return !slices.ContainsFunc(servers, func(s raftstore.Server) bool { return s.ID == id })
	})
	return nil
}

// Leader returns the raft leader.
func (c *Consensus) Leader(ctx context.Context) (core.PeerID, error) {
	s, err := c.st()
	if err != nil {
		return "", err
	}
	id, _ := s.Leader()
	if id == "" {
		return "", errors.New("no raft leader")
	}
	return core.DecodePeerID(id)
}

var _ core.Consensus = (*Consensus)(nil)
