package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/allocator/balanced"
)

// Plugins served by the test binary itself (see TestMain), to make a
// plugin misbehave on purpose.

// testAllocator is the balanced allocator whose Allocate can be made to
// misbehave:
//
//	hang        never answers (ignores its context, as a stuck plugin does)
//	slow <d>    answers after d
//	crash       exits the process
type testAllocator struct {
	*balanced.Allocator
	behaviour string
	delay     time.Duration
}

func newTestAllocator(args []string) *testAllocator {
	a := &testAllocator{Allocator: balanced.New()}
	if len(args) > 0 {
		a.behaviour = args[0]
	}
	if a.behaviour == "slow" && len(args) > 1 {
		a.delay, _ = time.ParseDuration(args[1])
	}
	return a
}

func (a *testAllocator) Allocate(ctx context.Context, req core.AllocateRequest) ([]core.AllocateResult, error) {
	switch a.behaviour {
	case "hang":
		select {}
	case "slow":
		time.Sleep(a.delay)
	case "crash":
		os.Exit(3)
	case "gomaxprocs":
		return nil, fmt.Errorf("GOMAXPROCS=%d", runtime.GOMAXPROCS(0))
	}
	return a.Allocator.Allocate(ctx, req)
}

// testConnector is an IPFS connector that pins nothing for real. Pin
// answers one request every 20ms; the first process that finds no marker
// file creates it and exits after answering crashAfter requests (PinLs
// exits before answering anything). Later processes behave.
type testConnector struct {
	marker     string
	crashAfter int
}

func newTestConnector(args []string) *testConnector {
	c := &testConnector{marker: args[0]}
	if len(args) > 1 {
		_ = json.Unmarshal([]byte(args[1]), &c.crashAfter)
	}
	return c
}

// crashOnce exits the process if it is the first to get here.
func (c *testConnector) crashOnce() {
	f, err := os.OpenFile(c.marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return // the marker exists: a restarted process
	}
	f.Close()
	os.Exit(3)
}

func (c *testConnector) Describe(context.Context) (core.Description, error) {
	return core.Description{Kind: core.KindIPFSConnector, Name: "test", Version: "0.0.1",
		ProtocolVersions: []int{core.ProtocolVersion}, Capabilities: []string{CapabilityStateless}}, nil
}

func (c *testConnector) Configure(context.Context, json.RawMessage, core.Environment, core.Host) error {
	return nil
}

func (c *testConnector) Close(context.Context) error { return nil }

func (c *testConnector) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		for i, r := range reqs {
			if i == c.crashAfter {
				c.crashOnce()
			}
			time.Sleep(20 * time.Millisecond)
			if !yield(core.IPFSPinResult{Cid: r.Cid}, nil) {
				return
			}
		}
	}
}

func (c *testConnector) Unpin(ctx context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		for _, ci := range cids {
			if !yield(core.IPFSPinResult{Cid: ci}, nil) {
				return
			}
		}
	}
}

func (c *testConnector) PinLs(ctx context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	return func(yield func(core.IPFSPinInfo, error) bool) {
		c.crashOnce()
		ci, _ := core.DecodeCid("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN")
		for range 3 {
			if !yield(core.IPFSPinInfo{Cid: ci, Type: core.IPFSPinStatusRecursive}, nil) {
				return
			}
		}
	}
}

var errNotImplemented = errors.New("not implemented by the test connector")

func (c *testConnector) PinLsCids(context.Context, []core.Cid) ([]core.IPFSPinInfo, error) {
	return nil, errNotImplemented
}
func (c *testConnector) ID(context.Context) (core.IPFSID, error) { return core.IPFSID{}, nil }
func (c *testConnector) RepoStat(context.Context) (core.IPFSRepoStat, error) {
	return core.IPFSRepoStat{}, nil
}
func (c *testConnector) RepoGC(context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	return core.ErrSeq[core.IPFSRepoGCKey](errNotImplemented)
}

// Resolve of "/wait/<duration>" answers after that long, as a resolve
// waiting for blocks from the network does.
func (c *testConnector) Resolve(_ context.Context, path string) (core.Cid, error) {
	if d, ok := strings.CutPrefix(path, "/wait/"); ok {
		wait, _ := time.ParseDuration(d)
		time.Sleep(wait)
		return core.UndefCid, fmt.Errorf("nothing found within %s", wait)
	}
	return core.UndefCid, errNotImplemented
}
func (c *testConnector) BlockPut(context.Context, []core.Block) error { return nil }
func (c *testConnector) BlockGet(context.Context, core.Cid) ([]byte, error) {
	return nil, errNotImplemented
}
func (c *testConnector) SwarmPeers(context.Context) ([]core.PeerID, error) { return nil, nil }
func (c *testConnector) SwarmConnect(context.Context, []string) error      { return nil }
func (c *testConnector) ConfigKey(context.Context, string) (json.RawMessage, error) {
	return nil, errNotImplemented
}

var _ core.IPFSConnector = (*testConnector)(nil)
