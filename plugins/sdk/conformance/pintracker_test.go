package conformance_test

import (
	"context"
	"encoding/json"
	"iter"
	"testing"

	"github.com/pincluster/pincluster/plugins/pintracker/stateless"
	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// flawedTracker is the stateless tracker with one flaw.
type flawedTracker struct {
	*stateless.Tracker
	unknownPinned, ignoreFilter bool
}

func (f *flawedTracker) Status(ctx context.Context, cids []sdk.Cid) ([]sdk.PinInfo, error) {
	infos, err := f.Tracker.Status(ctx, cids)
	if f.unknownPinned {
		for i := range infos {
			if infos[i].Status == sdk.TrackerStatusUnpinned {
				infos[i].Status = sdk.TrackerStatusPinned
			}
		}
	}
	return infos, err
}

func (f *flawedTracker) StatusAll(ctx context.Context, filter sdk.TrackerStatus) iter.Seq2[sdk.PinInfo, error] {
	if f.ignoreFilter {
		filter = 0
	}
	return f.Tracker.StatusAll(ctx, filter)
}

func init() {
	broken := func(subtest, want string, flaw flawedTracker) brokenCase {
		return brokenCase{subtest: subtest, want: want, run: func(t *testing.T) {
			conformance.TestPinTracker(t, func() sdk.PinTracker {
				f := flaw
				f.Tracker = stateless.New()
				return &f
			}, json.RawMessage(`{"max_retries":1,"retry_backoff_base":"50ms"}`))
		}}
	}
	brokenCases["tracker/unknown"] = broken("StatusOrderAndUnknown", "want unpinned", flawedTracker{unknownPinned: true})
	brokenCases["tracker/filter"] = broken("StatusAllFilter", "which the filter excludes", flawedTracker{ignoreFilter: true})
}
