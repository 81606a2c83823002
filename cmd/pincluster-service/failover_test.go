package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
)

// leaderLogLine is what hashicorp/raft logs, through the consensus
// plugin, on the peer that becomes the leader.
const leaderLogLine = "entering leader state"

// allocatedCids returns the CIDs of d's pinset (GET /allocations).
func allocatedCids(t *testing.T, d *daemon) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, p := range ndjson[core.Pin](t, d.Get("/allocations")) {
		out[p.Cid.String()] = true
	}
	return out
}

// waitHolds waits (at most within) until d's pinset holds every CID of
// want, and returns how long it took.
func waitHolds(t *testing.T, d *daemon, want []string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		have := allocatedCids(t, d)
		missing := 0
		for _, c := range want {
			if !have[c] {
				missing++
			}
		}
		if missing == 0 {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s lacks %d of the %d acknowledged pins after %v", d.PeerID, missing, len(want), within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestKillTheLeaderUnderLoad kills -9 the raft leader while clients pin
// through the two other peers: a new leader is elected, pins are
// acknowledged again within seconds, every pin acknowledged with 200 is in
// the pinset of both survivors, and the old leader, restarted, catches up.
func TestKillTheLeaderUnderLoad(t *testing.T) {
	t.Parallel()
	peers := startCluster(t, 3, nil)
	leader, followers := peers[0], peers[1:]
	// The first peer started the cluster alone: it is the leader until an
	// election, and none happens while all three run.
	expectLogLine(t, leader.Logs(), leaderLogLine)
	for _, f := range followers {
		if strings.Contains(f.Logs(), leaderLogLine) {
			t.Fatalf("%s became the leader before the test began:\n%s", f.PeerID, f.Logs())
		}
	}

	type ack struct {
		cid string
		at  time.Time
	}
	var (
		mu     sync.Mutex
		acked  []ack
		failed int
	)
	hc := &http.Client{Timeout: 10 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	const clients = 8
	for i := range clients {
		wg.Go(func() {
			d := followers[i%len(followers)]
			for n := 0; n < 100000 && ctx.Err() == nil; n++ {
				ci := randomCid(t)
				req, _ := http.NewRequestWithContext(ctx, "POST", d.URL+"/pins/"+ci, nil)
				resp, err := hc.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if err == nil && resp.StatusCode == http.StatusOK {
					acked = append(acked, ack{ci, time.Now()})
				} else {
					failed++
					time.Sleep(50 * time.Millisecond) // do not spin on errors
				}
				mu.Unlock()
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	deadline := time.Now().Add(30 * time.Second)
	for count() < 200 {
		if time.Now().After(deadline) {
			stop()
			wg.Wait()
			t.Fatalf("only %d pins acknowledged in 30 s before the kill (%d failed)", count(), failed)
		}
		time.Sleep(50 * time.Millisecond)
	}

	leader.Kill()
	killedAt := time.Now()
	// Pins are acknowledged again: wait for 200 more after the kill.
	before := count()
	var resumedAt time.Time
	deadline = killedAt.Add(30 * time.Second)
	for resumedAt.IsZero() {
		mu.Lock()
		for _, a := range acked[before:] {
			if a.at.After(killedAt.Add(100 * time.Millisecond)) {
				resumedAt = a.at
				break
			}
		}
		mu.Unlock()
		if resumedAt.IsZero() && time.Now().After(deadline) {
			stop()
			wg.Wait()
			t.Fatalf("no pin acknowledged within 30 s of killing the leader (%d failed)", failed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for count() < before+200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	wg.Wait()
	newLeader := ""
	for _, f := range followers {
		if strings.Contains(f.Logs(), leaderLogLine) {
			newLeader = f.PeerID
		}
	}
	if newLeader == "" {
		t.Fatal("no survivor logged that it became the leader")
	}
	cids := make([]string, len(acked))
	for i, a := range acked {
		cids[i] = a.cid
	}
	t.Logf("%d pins acknowledged (%d before the kill), %d failed; new leader %s; pins acknowledged again %v after the kill",
		len(acked), before, failed, newLeader, resumedAt.Sub(killedAt).Round(time.Millisecond))

	// Every acknowledged pin is in the pinset of both survivors.
	for _, f := range followers {
		waitHolds(t, f, cids, 20*time.Second)
	}
	// The old leader, restarted, catches up.
	again := &daemon{servicetest.Start(t, serviceBinary, leader.Dir, leader.URL)}
	took := waitHolds(t, again, cids, 60*time.Second)
	t.Logf("the old leader restarted holds all %d pins after %v", len(cids), took.Round(time.Millisecond))
}
