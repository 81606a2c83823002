package sdk_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// endpointHost is a fakeHost that names the IPFS connector's endpoint.
type endpointHost struct {
	*fakeHost
	ep    core.Endpoint
	asked atomic.Int64
}

func (h *endpointHost) IPFSEndpoint(context.Context) (core.Endpoint, error) {
	h.asked.Add(1)
	return h.ep, nil
}

var _ core.IPFSEndpointer = (*endpointHost)(nil)

// pluginHost serves a tracker configured with host and returns the Host
// the plugin received: the SDK's client of the host, in this process.
func pluginHost(t *testing.T, host core.Host) core.Host {
	t.Helper()
	impl := newFakeTracker()
	sdktest.ConnectPinTracker(t, impl, nil, host)
	h := impl.getHost()
	if h == nil {
		t.Fatal("the plugin received no host")
	}
	return h
}

func pinRequests(n int) []core.IPFSPinRequest {
	reqs := make([]core.IPFSPinRequest, n)
	for i := range reqs {
		reqs[i] = core.IPFSPinRequest{Cid: testCid(i), MaxDepth: -1}
	}
	return reqs
}

// resultCids counts the results of each CID and fails on an error.
func resultCids(t *testing.T, seq func(func(core.IPFSPinResult, error) bool), each func(int)) map[string]int {
	t.Helper()
	got := map[string]int{}
	for r, err := range seq {
		if err != nil {
			t.Fatalf("after %d results: %v", len(got), err)
		}
		if r.Error != "" {
			t.Errorf("%s: %s", r.Cid, r.Error)
		}
		got[r.Cid.String()]++
		if each != nil {
			each(len(got))
		}
	}
	return got
}

func wantEachOnce(t *testing.T, got map[string]int, n int) {
	t.Helper()
	if len(got) != n {
		t.Errorf("%d CIDs answered, want %d", len(got), n)
	}
	for c, k := range got {
		if k != 1 {
			t.Errorf("%s answered %d times", c, k)
		}
	}
}

// A plugin's IPFS calls go to the connector's process at the endpoint the
// host names, not through the host; when that process dies in the middle
// of a Pin stream, the requests left without a result go through the host.
func TestHostIPFSCallsGoToTheConnector(t *testing.T) {
	ctx := testCtx(t)
	ipfs := newFakeIPFS()
	ipfs.lsN = 7
	ipfs.pinDelay = 10 * time.Millisecond
	connector := sdktest.Start(t, ipfs)
	cc := connector.Dispense().(core.IPFSConnector)
	noError(t, cc.Configure(ctx, nil, sdktest.Environment(t), nil))
	if connector.Endpoint().Address == "" {
		t.Fatal("the connector has no endpoint")
	}
	host := &endpointHost{fakeHost: newFakeHost(0), ep: connector.Endpoint()}
	h := pluginHost(t, host)

	const n = 20
	wantEachOnce(t, resultCids(t, h.Pin(ctx, pinRequests(n)), nil), n)
	infos := must(h.PinLsCids(ctx, []core.Cid{testCid(0), testCid(n)})).of(t)
	if infos[0].Type != core.IPFSPinStatusRecursive || infos[1].Type != core.IPFSPinStatusUnpinned {
		t.Errorf("pin ls cids: %+v", infos)
	}
	listed := must(core.Collect(h.PinLs(ctx))).of(t)
	if len(listed) != ipfs.lsN {
		t.Errorf("pin ls: %d pins", len(listed))
	}
	wantEachOnce(t, resultCids(t, h.Unpin(ctx, []core.Cid{testCid(0), testCid(1)}), nil), 2)
	if p := host.pinCalls.Load() + host.unpinCalls.Load(); p != 0 {
		t.Errorf("%d IPFS calls went through the host", p)
	}
	if a := host.asked.Load(); a != 1 {
		t.Errorf("the endpoint was asked %d times, want 1", a)
	}
	ipfs.mu.Lock()
	held := len(ipfs.pins)
	ipfs.mu.Unlock()
	if held != n-2 {
		t.Errorf("the connector holds %d pins, want %d", held, n-2)
	}

	// The connector's process dies after 5 results of 20: the other 15
	// are pinned through the host, each CID answered once, no error.
	reqs := pinRequests(n)
	for i := range reqs {
		reqs[i].Cid = testCid(100 + i)
	}
	got := resultCids(t, h.Pin(ctx, reqs), func(k int) {
		if k == 5 {
			connector.Kill()
		}
	})
	wantEachOnce(t, got, n)
	if c := host.pinCalls.Load(); c != 1 {
		t.Errorf("%d Pin calls through the host after the connector died, want 1", c)
	}
	relayed := must(host.PinLsCids(ctx, []core.Cid{testCid(100 + n - 1), testCid(100)})).of(t)
	if relayed[0].Type != core.IPFSPinStatusUnpinned || relayed[1].Type != core.IPFSPinStatusRecursive {
		// The fake completes in reverse order: the first five answered
		// are the last five requests.
		t.Errorf("pinned through the host: %+v", relayed)
	}
	// Until the link is asked for again, calls go through the host.
	wantEachOnce(t, resultCids(t, h.Pin(ctx, pinRequests(3)), nil), 3)
	if c := host.pinCalls.Load(); c != 2 {
		t.Errorf("%d Pin calls through the host, want 2", c)
	}
}

// Without an endpoint (a host that has no IPFSEndpoint, or names none)
// every IPFS call goes through the host.
func TestHostIPFSCallsWithoutEndpoint(t *testing.T) {
	ctx := testCtx(t)
	plain := newFakeHost(0)
	named := &endpointHost{fakeHost: newFakeHost(0)}
	for name, c := range map[string]struct {
		host core.Host
		fake *fakeHost
	}{
		"no IPFSEndpoint": {plain, plain},
		"empty endpoint":  {named, named.fakeHost},
	} {
		t.Run(name, func(t *testing.T) {
			h := pluginHost(t, c.host)
			wantEachOnce(t, resultCids(t, h.Pin(ctx, pinRequests(4)), nil), 4)
			must(h.PinLsCids(ctx, []core.Cid{testCid(0)})).of(t)
			if n := c.fake.pinCalls.Load(); n != 1 {
				t.Errorf("%d Pin calls through the host, want 1", n)
			}
		})
	}
}
