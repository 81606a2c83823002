package client

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/pincluster/pincluster/core"
)

// DefaultCheckFreq is how often WaitFor polls the status by default.
const DefaultCheckFreq = time.Second

// WaitParams says what WaitFor waits for.
type WaitParams struct {
	// Cid whose status is polled (GET /pins/{cid}).
	Cid core.Cid
	// Local polls only the answering peer's status.
	Local bool
	// Target is the status to reach, normally pinned or unpinned.
	Target core.TrackerStatus
	// Limit, when above 0, is the number of peers that must report
	// Target; otherwise every peer must (for pinned, peers reporting
	// remote are not counted).
	Limit int
	// CheckFreq is the polling period (DefaultCheckFreq when 0).
	CheckFreq time.Duration
}

// WaitLimit returns the number of peers that ipfs-cluster-ctl waits for
// after pinning: the pin's effective replication_factor_min for the
// pinned target (0, meaning every allocated peer, when it is -1 or 0),
// and 0 for any other target. A positive override wins.
func WaitLimit(pin core.Pin, target core.TrackerStatus, override int) int {
	if override > 0 {
		return override
	}
	if target == core.TrackerStatusPinned && pin.ReplicationFactorMin > 0 {
		return pin.ReplicationFactorMin
	}
	return 0
}

// StatusReached tells whether gpi shows target reached, following the
// rules of IPFS Cluster's client:
//   - any peer reporting undefined, cluster_error, pin_error or
//     unpin_error is an error (waiting further would not help);
//   - with limit > 0, target is reached when at least limit peers report
//     it;
//   - otherwise every peer must report target, except that for pinned
//     peers reporting remote are ignored.
func StatusReached(target core.TrackerStatus, gpi core.GlobalPinInfo, limit int) (bool, error) {
	peers := make([]string, 0, len(gpi.PeerMap))
	for p := range gpi.PeerMap {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	for _, p := range peers {
		info := gpi.PeerMap[p]
		switch info.Status {
		case core.TrackerStatusUndefined, core.TrackerStatusClusterError,
			core.TrackerStatusPinError, core.TrackerStatusUnpinError:
			name := info.PeerName
			if name == "" {
				name = p
			}
			msg := fmt.Sprintf("error has occurred while attempting to reach status %s: peer %s reports %s", target, name, info.Status)
			if info.Error != "" {
				msg += ": " + info.Error
			}
			return false, &WaitError{Status: gpi, Msg: msg}
		}
	}
	if limit > 0 {
		n := 0
		for _, info := range gpi.PeerMap {
			if info.Status == target {
				n++
			}
		}
		return n >= limit, nil
	}
	if len(gpi.PeerMap) == 0 {
		return false, nil
	}
	for _, info := range gpi.PeerMap {
		if info.Status == target {
			continue
		}
		if target == core.TrackerStatusPinned && info.Status == core.TrackerStatusRemote {
			continue
		}
		return false, nil
	}
	return true, nil
}

// WaitError is returned by WaitFor when a peer reports an error status.
type WaitError struct {
	// Status is the status that showed the error.
	Status core.GlobalPinInfo
	Msg    string
}

func (e *WaitError) Error() string { return e.Msg }

// WaitFor polls the status of p.Cid every p.CheckFreq, the first time one
// period after it is called, until p.Target is
// reached (see StatusReached), a peer reports an error status, a request
// fails or ctx ends. It returns the last status read. Bound it with a
// context deadline: it does not stop on its own while the target is not
// reached.
func (c *Client) WaitFor(ctx context.Context, p WaitParams) (core.GlobalPinInfo, error) {
	freq := p.CheckFreq
	if freq <= 0 {
		freq = DefaultCheckFreq
	}
	// The first check is one period after the call, as with IPFS
	// Cluster's client: a pin just made has not moved yet.
	ticker := time.NewTicker(freq)
	defer ticker.Stop()
	var last core.GlobalPinInfo
	for {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("waiting for %s to be %s: %w", p.Cid, p.Target, ctx.Err())
		case <-ticker.C:
		}
		gpi, err := c.Status(ctx, p.Cid, p.Local)
		if err != nil {
			return last, err
		}
		last = gpi
		ok, err := StatusReached(p.Target, gpi, p.Limit)
		if err != nil || ok {
			return gpi, err
		}
	}
}
