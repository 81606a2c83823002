package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"slices"
	"testing"

	"github.com/pincluster/pincluster/plugins/consensus/raft"
	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// raftFast is a raft configuration that elects itself quickly.
var raftFast = json.RawMessage(`{"heartbeat_timeout":"100ms","election_timeout":"100ms","leader_lease_timeout":"100ms","commit_timeout":"5ms"}`)

// flawedConsensus is the raft consensus with one flaw.
type flawedConsensus struct {
	*raft.Consensus
	self                               sdk.PeerID
	hideSelf, opaqueNotFound, reversed bool
}

func (c *flawedConsensus) Configure(ctx context.Context, cfg json.RawMessage, env sdk.Environment, h sdk.Host) error {
	c.self = env.PeerID
	return c.Consensus.Configure(ctx, cfg, env, h)
}

func (c *flawedConsensus) Peers(ctx context.Context) ([]sdk.PeerID, error) {
	ps, err := c.Consensus.Peers(ctx)
	if c.hideSelf {
		ps = slices.DeleteFunc(ps, func(p sdk.PeerID) bool { return p == c.self })
	}
	return ps, err
}

func (c *flawedConsensus) GetPin(ctx context.Context, ci sdk.Cid) (sdk.Pin, error) {
	p, err := c.Consensus.GetPin(ctx, ci)
	if c.opaqueNotFound && errors.Is(err, sdk.ErrPinNotFound) {
		err = errors.New("no such pin")
	}
	return p, err
}

func (c *flawedConsensus) Watch(ctx context.Context) iter.Seq2[sdk.PinEvent, error] {
	if !c.reversed {
		return c.Consensus.Watch(ctx)
	}
	return func(yield func(sdk.PinEvent, error) bool) {
		for ev, err := range c.Consensus.Watch(ctx) {
			slices.Reverse(ev.Ops)
			if !yield(ev, err) {
				return
			}
		}
	}
}

func init() {
	broken := func(subtest, want string, flaw flawedConsensus) brokenCase {
		return brokenCase{subtest: subtest, want: want, run: func(t *testing.T) {
			conformance.TestConsensus(t, func() sdk.Consensus {
				c := flaw
				c.Consensus = raft.New()
				return &c
			}, raftFast)
		}}
	}
	brokenCases["consensus/self"] = broken("PeersIncludeSelf", "does not include this peer", flawedConsensus{hideSelf: true})
	brokenCases["consensus/notfound"] = broken("NotFound", "want ErrPinNotFound", flawedConsensus{opaqueNotFound: true})
	brokenCases["consensus/order"] = broken("WatchInOrder", "must arrive in commit order", flawedConsensus{reversed: true})
}
