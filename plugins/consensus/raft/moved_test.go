//go:build !race

package raft

// This test is left out of race-detector runs: when a server's address
// changes, hashicorp/raft (v1.8.0) updates the leader's replication state
// of that server while its replication goroutines read it without a lock
// (hashicorp/raft#471, #682), which the race detector reports. The update
// itself is what raft's AddVoter documents for a changed address.

import (
	"fmt"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

// TestPeerMovesPort: a follower restarted on another port is reached
// there, and the raft configuration learns its new address.
func TestPeerMovesPort(t *testing.T) {
	cfg := clusterConfig(t, nil)
	p1 := startTestPeer(t, networkEnv(t, testSecret), cfg)
	p2 := startTestPeer(t, networkEnv(t, testSecret, p1.id()), cfg)
	ctx := ctxFor(t, 30*time.Second)
	if err := p1.AddPeer(ctx, p2.id(), p2.address(t)); err != nil {
		t.Fatal(err)
	}
	a := testPin(t, "before")
	commitPins(t, p2, a)
	old := p2.address(t)
	if err := p2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b := testPin(t, "while-away")
	// With one of two voters away, the leader cannot commit: this one
	// waits for p2's return.
	committed := make(chan error, 1)
	go func() { committed <- p1.Commit(ctx, []core.PinOp{{Pin: b}}) }()

	p2 = startTestPeer(t, p2.env, cfg)
	moved := p2.address(t)
	if moved == old {
		t.Fatalf("the restarted peer kept address %s", old)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the new address in the leader's configuration", func() error {
		servers, err := p1.n.store.Servers()
		if err != nil {
			return err
		}
		for _, s := range servers {
			if s.ID == p2.id().String() && s.Address != moved {
				return fmt.Errorf("%s still at %s", s.ID, s.Address)
			}
		}
		return nil
	})
	onAll(t, 10*time.Second, "caught up", hasPins(a, b), p2)
	c := testPin(t, "after")
	commitPins(t, p2, c)
	onAll(t, 10*time.Second, "replicated", hasPins(c), p1)
}
