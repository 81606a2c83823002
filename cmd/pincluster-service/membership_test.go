package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// peerIDs returns the IDs of the daemons, sorted.
func peerIDs(ds ...*daemon) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.PeerID
	}
	slices.Sort(out)
	return out
}

// listedPeers reads an answer of GET /peers: the peer IDs (sorted) and
// the errors some peers were listed with.
func listedPeers(t *testing.T, r response) (ids, failed []string) {
	t.Helper()
	for _, id := range ndjson[core.ID](t, r) {
		ids = append(ids, id.ID.String())
		if id.Error != "" {
			failed = append(failed, id.ID.String()+": "+id.Error)
		}
	}
	slices.Sort(ids)
	return ids, failed
}

// waitPeerset waits (at most within) until GET /peers on d lists exactly
// want (sorted), each without an error.
func waitPeerset(t *testing.T, d *daemon, want []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, failed := listedPeers(t, d.Get("/peers"))
		if slices.Equal(got, want) && len(failed) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /peers on %s: %v (errors %v), want %v", d.PeerID, got, failed, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitAllocations waits (at most within) until d's pinset allocates ci to
// exactly want (sorted).
func waitAllocations(t *testing.T, d *daemon, ci string, want []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var pin core.Pin
		r := d.Get("/allocations/" + ci)
		var got []string
		if r.Status == 200 {
			expect(t, r, 200, &pin)
			for _, p := range pin.Allocations {
				got = append(got, p.String())
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("on %s %s is allocated to %v (%s), want %v", d.PeerID, ci, got, r, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pinOn pins a new CID with replication factor len(to), allocated to to.
func pinOn(t *testing.T, via *daemon, to ...*daemon) string {
	t.Helper()
	ci := randomCid(t)
	ids := peerIDs(to...)
	var pin core.Pin
	expect(t, via.Post(fmt.Sprintf("/pins/%s?replication-min=%d&replication-max=%d&user-allocations=%s",
		ci, len(to), len(to), strings.Join(ids, ","))), 200, &pin)
	waitAllocations(t, via, ci, ids, 10*time.Second)
	return ci
}

// TestRemoveLeaveAndJoinAgain: a running peer removed with DELETE /peers
// has its pins re-allocated and shuts itself down; a peer with
// leave_on_shutdown leaves the peerset when stopped, its pins going to the
// others, and joins again with --bootstrap; a peer made with
// `init --peers` joins at its first start without --bootstrap.
func TestRemoveLeaveAndJoinAgain(t *testing.T) {
	t.Parallel()
	membership := func(svc *config.Service) {
		svc.Cluster.PeerWatchInterval = config.Duration(time.Second)
		svc.Cluster.LeaveOnShutdown = true
	}
	peers := startCluster(t, 3, membership)
	first, second, third := peers[0], peers[1], peers[2]

	// Removing a running peer: its pins go to the others first, then it
	// leaves the peerset and stops by itself.
	onThird := pinOn(t, first, second, third)
	expect(t, first.Delete("/peers/"+third.PeerID), 204, nil)
	waitAllocations(t, first, onThird, peerIDs(first, second), 10*time.Second)
	waitAllocations(t, second, onThird, peerIDs(first, second), 10*time.Second)
	select {
	case <-third.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the removed peer still runs:\n%s", third.Logs())
	}
	expectLogLine(t, third.Logs(), "this peer was removed from the cluster's peerset: shutting down")
	waitPeerset(t, first, peerIDs(first, second), 10*time.Second)

	// Leaving on shutdown: the pins of the leaving peer move to the one
	// left, and the peerset is the one left.
	onSecond := pinOn(t, first, second)
	second.Stop()
	expectLogLine(t, second.Logs(), "left the cluster's peerset")
	waitPeerset(t, first, peerIDs(first), 10*time.Second)
	waitAllocations(t, first, onSecond, peerIDs(first), 10*time.Second)

	// A peer that left, restarted without --bootstrap, is not a member
	// and says how to join again; with --bootstrap it is one again.
	again := &daemon{servicetest.Start(t, serviceBinary, second.Dir, second.URL)}
	expectLogLine(t, again.Logs(), "start it with --bootstrap to join again")
	waitPeerset(t, first, peerIDs(first), 5*time.Second)
	again.Stop()
	again = &daemon{servicetest.Start(t, serviceBinary, second.Dir, second.URL, "--bootstrap", clusterAddr(t, first.Dir))}
	waitPeerset(t, first, peerIDs(first, again), 30*time.Second)
	waitPeerset(t, again, peerIDs(first, again), 30*time.Second)

	// `init --peers`: a new peer joins at its first start.
	var secret string
	servicetest.EditService(t, first.Dir, func(svc *config.Service) { secret = svc.Cluster.Secret })
	dir, api := servicetest.NewPeerDirInit(t, serviceBinary, []string{"--peers", clusterAddr(t, first.Dir)}, func(svc *config.Service) {
		svc.Cluster.Secret = secret
		fastMetrics(t)(svc)
		membership(svc)
	})
	fourth := &daemon{servicetest.Start(t, serviceBinary, dir, api)}
	waitPeerset(t, first, peerIDs(first, again, fourth), 30*time.Second)
	waitPeerset(t, fourth, peerIDs(first, again, fourth), 30*time.Second)
	// Killed (so it does not leave) and restarted, it is still a member.
	fourth.Kill()
	fourth = &daemon{servicetest.Start(t, serviceBinary, dir, api)}
	waitPeerset(t, fourth, peerIDs(first, again, fourth), 30*time.Second)
}
