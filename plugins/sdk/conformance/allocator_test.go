package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// The suites are checked both ways: a correct implementation passes, and
// implementations that break one rule each fail with a message that names
// the rule. A broken implementation runs its suite in a child process
// (this test binary again, with brokenCaseEnv naming the case), since a
// failing suite fails the test that runs it.

const brokenCaseEnv = "CONFORMANCE_BROKEN_CASE"

// brokenCase is a suite run that must fail.
type brokenCase struct {
	// subtest selects the suite's subtest to run (a -test.run pattern
	// below TestBrokenImplementation).
	subtest string
	run     func(t *testing.T)
	// want is a piece of the failure message.
	want string
}

var brokenCases = map[string]brokenCase{}

// TestBrokenImplementation runs one broken case when brokenCaseEnv names
// it, and is skipped otherwise.
func TestBrokenImplementation(t *testing.T) {
	name := os.Getenv(brokenCaseEnv)
	if name == "" {
		t.Skip("runs only as the child process of TestSuitesCatchViolations")
	}
	c, ok := brokenCases[name]
	if !ok {
		t.Fatalf("no broken case %q", name)
	}
	c.run(t)
}

func TestSuitesCatchViolations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suites in child processes")
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range brokenCases {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		c := brokenCases[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenImplementation$/"+c.subtest, "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenCaseEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a broken implementation:\n%s", out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("the suite failed without saying %q:\n%s", c.want, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenImplementation/"+c.subtest) {
				t.Fatalf("subtest %s did not run and fail:\n%s", c.subtest, out)
			}
		})
	}
}

// firstPeers is a small correct allocator: the pin's usable priority
// peers first, then the other usable peers by peer ID. A usable peer has a
// valid, unexpired metric and is not one of the pin's current peers.
type firstPeers struct {
	// Flaws, one per broken case.
	keepCurrent, ignoreWanted, ignoreValidity, noErrorWhenShort,
	reverseBatch, shuffle, ignorePriority bool
}

func (a *firstPeers) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Kind: sdk.KindAllocator, Name: "first", Version: "0.0.1",
		ProtocolVersions: []int{sdk.ProtocolVersion},
		DefaultConfig:    json.RawMessage(`{}`),
	}, nil
}

func (a *firstPeers) Configure(context.Context, json.RawMessage, sdk.Environment, sdk.Host) error {
	return nil
}

func (a *firstPeers) Close(context.Context) error { return nil }

func (a *firstPeers) Allocate(_ context.Context, req sdk.AllocateRequest) ([]sdk.AllocateResult, error) {
	now := time.Now().UnixNano()
	var usable []sdk.PeerID
	for _, m := range req.Metrics {
		if (a.ignoreValidity || (m.Valid && m.Expire > now)) && !slices.Contains(usable, m.Peer) {
			usable = append(usable, m.Peer)
		}
	}
	slices.Sort(usable)
	out := make([]sdk.AllocateResult, len(req.Pins))
	for i, pa := range req.Pins {
		var peers []sdk.PeerID
		if !a.ignorePriority {
			for _, p := range pa.Priority {
				if slices.Contains(usable, p) && !slices.Contains(pa.Current, p) && !slices.Contains(peers, p) {
					peers = append(peers, p)
				}
			}
		}
		for _, p := range usable {
			if (a.keepCurrent || !slices.Contains(pa.Current, p)) && !slices.Contains(peers, p) {
				peers = append(peers, p)
			}
		}
		if a.shuffle {
			rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
		}
		if len(peers) < pa.Needed && !a.noErrorWhenShort {
			out[i].Error = fmt.Sprintf("not enough peers: %d needed, %d usable", pa.Needed, len(peers))
			continue
		}
		if !a.ignoreWanted {
			peers = peers[:min(len(peers), pa.Wanted)]
		}
		out[i].Peers = peers
	}
	if a.reverseBatch {
		slices.Reverse(out)
	}
	return out, nil
}

func TestAllocatorSuitePasses(t *testing.T) {
	conformance.TestAllocator(t, func() sdk.Allocator { return &firstPeers{} }, nil)
}

func TestAllocatorSuiteWithMetricNames(t *testing.T) {
	conformance.TestAllocator(t, func() sdk.Allocator { return &firstPeers{} }, json.RawMessage(`{}`),
		conformance.WithMetricNames("custom"))
}

func init() {
	broken := func(subtest, want string, a firstPeers) brokenCase {
		return brokenCase{subtest: subtest, want: want, run: func(t *testing.T) {
			conformance.TestAllocator(t, func() sdk.Allocator { a := a; return &a }, nil)
		}}
	}
	brokenCases["allocator/current"] = broken("NeverCurrentPeers", "is one of the pin's Current peers", firstPeers{keepCurrent: true})
	brokenCases["allocator/wanted"] = broken("Limits", "more than Wanted", firstPeers{ignoreWanted: true})
	brokenCases["allocator/validity"] = broken("OnlyPeersWithValidMetrics", "has no valid metric in the request", firstPeers{ignoreValidity: true})
	brokenCases["allocator/short"] = broken("NotEnoughPeersIsAPerPinError", "and no error", firstPeers{noErrorWhenShort: true})
	brokenCases["allocator/order"] = broken("BatchInOrder", "results must be in request order", firstPeers{reverseBatch: true})
	brokenCases["allocator/random"] = broken("Deterministic", "different answers", firstPeers{shuffle: true})
	brokenCases["allocator/priority"] = broken("PriorityPeersFirst", "must come first", firstPeers{ignorePriority: true})
}
