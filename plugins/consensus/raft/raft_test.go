package raft

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

func testCid(t testing.TB) core.Cid {
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	mh, err := multihash.Sum(buf, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return core.NewCid(cid.NewCidV1(cid.Raw, mh))
}

func testPin(t testing.TB, name string) core.Pin {
	return core.Pin{
		PinOptions: core.PinOptions{ReplicationFactorMin: -1, ReplicationFactorMax: -1, Name: name, Metadata: map[string]string{"k": "v"}},
		Cid:        testCid(t), Type: core.DataType, MaxDepth: -1,
		Timestamp: time.Unix(1700000000, 0),
	}
}

func fastConfig() json.RawMessage {
	return json.RawMessage(`{"heartbeat_timeout":"100ms","election_timeout":"100ms","leader_lease_timeout":"100ms","commit_timeout":"5ms"}`)
}

// exercise runs the behaviour every consensus must have against c.
func exercise(t *testing.T, c core.Consensus, self core.PeerID) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	events := make(chan core.PinEvent, 16)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	opened := make(chan struct{})
	go func() {
		first := true
		for ev, err := range c.Watch(wctx) {
			if first {
				close(opened)
				first = false
				continue
			}
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("watch did not open")
	}

	a, b := testPin(t, "a"), testPin(t, "b")
	if err := c.Commit(ctx, []core.PinOp{{Pin: a}, {Pin: b}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetPin(ctx, a.Cid)
	if err != nil || got.Name != "a" || got.Metadata["k"] != "v" || !got.Timestamp.Equal(a.Timestamp) {
		t.Fatalf("GetPin: %+v %v", got, err)
	}
	if _, err := c.GetPin(ctx, testCid(t)); !errors.Is(err, core.ErrPinNotFound) {
		t.Fatalf("GetPin of a missing CID: %v", err)
	}
	looked, err := c.GetPins(ctx, []core.Cid{b.Cid, testCid(t), a.Cid})
	if err != nil || len(looked) != 3 || looked[0].Name != "b" || looked[1].Cid.Defined() || looked[2].Name != "a" {
		t.Fatalf("GetPins: %+v %v", looked, err)
	}
	pins, err := core.Collect(c.ListPins(ctx))
	if err != nil || len(pins) != 2 {
		t.Fatalf("ListPins: %d %v", len(pins), err)
	}
	select {
	case ev := <-events:
		if len(ev.Ops) != 2 || ev.Ops[0].Pin.Name != "a" {
			t.Fatalf("event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}

	if err := c.Commit(ctx, []core.PinOp{{Remove: true, Pin: core.Pin{Cid: a.Cid}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPin(ctx, a.Cid); !errors.Is(err, core.ErrPinNotFound) {
		t.Fatalf("removed pin still there: %v", err)
	}
	select {
	case ev := <-events:
		if len(ev.Ops) != 1 || !ev.Ops[0].Remove || !ev.Ops[0].Pin.Cid.Equals(a.Cid) {
			t.Fatalf("remove event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no watch event for the removal")
	}

	peers, err := c.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0] != self {
		t.Fatalf("Peers: %v %v", peers, err)
	}
	leader, err := c.Leader(ctx)
	if err != nil || leader != self {
		t.Fatalf("Leader: %v %v", leader, err)
	}
	if err := c.RemovePeer(ctx, sdktest.NewPeerID(t)); err == nil {
		t.Fatal("removing a stranger should fail")
	}
	if err := c.Commit(ctx, []core.PinOp{{Pin: core.Pin{}}}); err == nil {
		t.Fatal("a pin without CID was accepted")
	}
}

func TestInProcess(t *testing.T) {
	env := sdktest.Environment(t)
	c := New()
	if err := c.Configure(context.Background(), fastConfig(), env, nil); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	exercise(t, c, env.PeerID)
}

func TestThroughGRPC(t *testing.T) {
	env := sdktest.Environment(t)
	c := sdktest.ConnectConsensus(t, New(), fastConfig(), nil, sdktest.WithEnvironment(env))
	exercise(t, c, env.PeerID)
}

func TestPinsetSurvivesRestart(t *testing.T) {
	env := sdktest.Environment(t)
	ctx := context.Background()
	c := New()
	if err := c.Configure(ctx, fastConfig(), env, nil); err != nil {
		t.Fatal(err)
	}
	var ops []core.PinOp
	for i := 0; i < 500; i++ {
		ops = append(ops, core.PinOp{Pin: testPin(t, "p")})
	}
	if err := c.Commit(ctx, ops); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c2 := New()
	if err := c2.Configure(ctx, fastConfig(), env, nil); err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	pins, err := core.Collect(c2.ListPins(ctx))
	if err != nil || len(pins) != 500 {
		t.Fatalf("after restart: %d pins, %v", len(pins), err)
	}
	if _, err := c2.GetPin(ctx, ops[42].Pin.Cid); err != nil {
		t.Fatal(err)
	}
}

func TestConfig(t *testing.T) {
	if _, err := parseConfig(json.RawMessage(`{"nope":1}`)); err == nil {
		t.Fatal("unknown key accepted")
	}
	if _, err := parseConfig(json.RawMessage(`{"heartbeat_timeout":"soon"}`)); err == nil {
		t.Fatal("bad duration accepted")
	}
	cfg, err := parseConfig(nil)
	if err != nil || cfg.CommitRetries != 1 {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	if err := New().Configure(context.Background(), nil, core.Environment{}, nil); err == nil {
		t.Fatal("configure without environment accepted")
	}
	if cfg.ListenMultiaddress != DefaultListenMultiaddress || cfg.Join {
		t.Fatalf("network defaults: %+v", cfg)
	}
	other := sdktest.NewPeerID(t)
	for _, bad := range []string{
		`{"listen_multiaddress":"tcp/9098"}`,
		`{"announce_multiaddress":"nowhere"}`,
		`{"network_timeout":"0s"}`,
		`{"init_peerset":["not-a-peer"]}`,
		`{"init_peerset":["` + other.String() + `","` + other.String() + `"]}`,
		`{"init_peerset":["` + other.String() + `=/ip4/127.0.0.1/tcp/9098"]}`,
	} {
		if _, err := parseConfig(json.RawMessage(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := parseConfig(json.RawMessage(`{"init_peerset":["` + other.String() + `=/ip4/127.0.0.1/tcp/9098/p2p/` + sdktest.NewPeerID(t).String() + `"]}`)); err != nil {
		t.Errorf("init_peerset with an address refused: %v", err)
	}

	// Settings that cannot work are refused at Configure.
	env := sdktest.Environment(t)
	for _, bad := range []string{
		`{"join":true}`, // no secret: no network, nobody can add this peer
		`{"init_peerset":["` + other.String() + `"]}`,
	} {
		c := New()
		if err := c.Configure(context.Background(), json.RawMessage(bad), env, nil); err == nil {
			c.Close(context.Background())
			t.Errorf("configure with %s accepted", bad)
		}
	}
	env.Secret = testSecret
	for _, bad := range []string{
		`{"listen_multiaddress":"/ip4/127.0.0.1/tcp/0","init_peerset":["` + other.String() + `"]}`,                               // this peer missing, and no address
		`{"listen_multiaddress":"/ip4/127.0.0.1/tcp/0","init_peerset":["` + env.PeerID.String() + `","` + other.String() + `"]}`, // no address for the other
	} {
		c := New()
		if err := c.Configure(context.Background(), json.RawMessage(bad), env, nil); err == nil {
			c.Close(context.Background())
			t.Errorf("configure with %s accepted", bad)
		}
	}
}

func BenchmarkCommitConcurrent(b *testing.B) {
	env := sdktest.Environment(b)
	c := New()
	ctx := context.Background()
	if err := c.Configure(ctx, fastConfig(), env, nil); err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Commit(ctx, []core.PinOp{{Pin: testPin(b, "x")}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
