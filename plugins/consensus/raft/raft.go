// Package raft is the built-in consensus plugin: the pinset is the state of
// a hashicorp/raft state machine (see raftstore), persisted on disk, so it
// survives restarts. Today a peer is a single voter; the store takes any
// raft transport so peers can form a cluster over libp2p.
package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/consensus/raft/raftstore"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
	"github.com/pincluster/pincluster/plugins/sdk"
)

// Name is the plugin's name in service.json.
const Name = "raft"

// Version is the plugin's version.
const Version = "0.1.0"

// Consensus keeps the pinset in a raft store.
type Consensus struct {
	mu    sync.RWMutex
	cfg   Config
	store *raftstore.Store
	self  string
}

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

// Configure opens (or creates) the raft store in the plugin's data folder.
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
	if c.store != nil {
		return errors.New("consensus.raft is already configured")
	}
	store, err := raftstore.Open(cfg.storeConfig(env.DataDir, env.PeerID.String()), nil, sdk.Logger().Named("raft"))
	if err != nil {
		return fmt.Errorf("opening the raft store in %s: %w", env.DataDir, err)
	}
	c.cfg, c.store, c.self = cfg, store, env.PeerID.String()
	return nil
}

// Close shuts raft down.
func (c *Consensus) Close(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store == nil {
		return nil
	}
	err := c.store.Close()
	c.store = nil
	return err
}

var errNotConfigured = errors.New("consensus.raft is not configured")

func (c *Consensus) st() (*raftstore.Store, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.store == nil {
		return nil, errNotConfigured
	}
	return c.store, nil
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

// GetPins looks up several CIDs; missing ones give a Pin without Cid.
func (c *Consensus) GetPins(ctx context.Context, cids []core.Cid) ([]core.Pin, error) {
	out := make([]core.Pin, len(cids))
	for i, ci := range cids {
		p, err := c.GetPin(ctx, ci)
		switch {
		case errors.Is(err, core.ErrPinNotFound):
		case err != nil:
			return nil, err
		default:
			out[i] = p
		}
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

// Commit applies the operations as one log entry, retrying as configured
// when no leader is available.
func (c *Consensus) Commit(ctx context.Context, ops []core.PinOp) error {
	s, err := c.st()
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
	for attempt := 0; ; attempt++ {
		_, err = s.Apply(ctx, rops)
		if err == nil || attempt >= c.cfg.CommitRetries || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.cfg.CommitRetryDelay.D()):
		}
	}
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

// AddPeer adds a voter to raft; addr is the raft address the peer's own
// plugin reported.
func (c *Consensus) AddPeer(ctx context.Context, p core.PeerID, addr string) error {
	s, err := c.st()
	if err != nil {
		return err
	}
	if addr == "" {
		addr = p.String()
	}
	return s.AddVoter(ctx, p.String(), addr)
}

// Address is where other peers reach this peer's raft. A single voter
// without network answers its peer ID, which is its raft address.
func (c *Consensus) Address(context.Context) (string, error) {
	if _, err := c.st(); err != nil {
		return "", err
	}
	return c.self, nil
}

// RemovePeer removes a voter from raft.
func (c *Consensus) RemovePeer(ctx context.Context, p core.PeerID) error {
	s, err := c.st()
	if err != nil {
		return err
	}
	peers, err := s.Peers()
	if err != nil {
		return err
	}
	found := false
	for _, id := range peers {
		found = found || id == p.String()
	}
	if !found {
		return fmt.Errorf("%s is not a cluster peer", p)
	}
	return s.RemovePeer(ctx, p.String())
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
