package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// clusterAddr is the cluster multiaddr of the peer in dir, for --bootstrap.
func clusterAddr(t testing.TB, dir string) string {
	t.Helper()
	var addr string
	servicetest.EditService(t, dir, func(svc *config.Service) {
		addr = svc.Cluster.ListenMultiaddress[0] + "/p2p/" + servicetest.PeerID(t, dir)
	})
	return addr
}

// fastMetrics makes every informer's metrics live 4 seconds (sent every
// 2), so that peers learn each other's quickly.
func fastMetrics(t testing.TB) func(*config.Service) {
	return func(svc *config.Service) {
		for name, raw := range svc.Informer {
			var sec map[string]any
			if err := json.Unmarshal(raw, &sec); err != nil {
				t.Fatalf("informer.%s: %v", name, err)
			}
			sec["metric_ttl"] = "4s"
			svc.Informer[name], _ = json.Marshal(sec)
		}
	}
}

// TestPeersJoinWithBootstrap starts a peer, then two more that join it
// with --bootstrap: every peer lists the three and knows their metrics, a
// pin made on the last is in the pinset of the others, allocation chooses
// among the three, and a peer removed leaves the others' lists.
func TestPeersJoinWithBootstrap(t *testing.T) {
	t.Parallel()
	dir1, api1 := servicetest.NewPeerDir(t, serviceBinary, fastMetrics(t))
	first := startDaemon(t, dir1, api1)
	var secret string
	servicetest.EditService(t, dir1, func(svc *config.Service) { secret = svc.Cluster.Secret })
	bootstrap := clusterAddr(t, dir1)

	peers := []*daemon{first}
	for range 2 {
		dir, api := servicetest.NewPeerDir(t, serviceBinary, func(svc *config.Service) {
			svc.Cluster.Secret = secret
			fastMetrics(t)(svc)
		})
		peers = append(peers, &daemon{servicetest.Start(t, serviceBinary, dir, api, "--bootstrap", bootstrap)})
	}
	var want []string
	for _, d := range peers {
		want = append(want, d.PeerID)
	}
	slices.Sort(want)

	for _, d := range peers {
		waitPeerset(t, d, want, 30*time.Second)
	}

	// Every peer knows the metrics of every peer.
	for _, d := range peers {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var metrics []core.Metric
			expect(t, d.Get("/monitor/metrics/freespace"), 200, &metrics)
			var got []string
			for _, m := range metrics {
				got = append(got, m.Peer.String())
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("freespace metrics on %s are of %v, want %v", d.PeerID, got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// A pin made on the last peer reaches the pinset of every peer.
	last := peers[2]
	c := addUnpinned(t, last, fmt.Sprintf("pinned through a peer that joined (%s)\n", t.Name()))
	var pin core.Pin
	expect(t, last.Post("/pins/"+c+"?replication=1&user-allocations="+last.PeerID), 200, &pin)
	if len(pin.Allocations) != 1 || pin.Allocations[0].String() != last.PeerID {
		t.Fatalf("pin allocated to %v, want [%s]", pin.Allocations, last.PeerID)
	}
	last.WaitStatus(c, core.TrackerStatusPinned, true, 30*time.Second)
	for _, d := range peers[:2] {
		deadline := time.Now().Add(20 * time.Second)
		for {
			r := d.Get("/allocations/" + c)
			if r.Status == 200 {
				expect(t, r, 200, &pin)
				if len(pin.Allocations) != 1 || pin.Allocations[0].String() != last.PeerID {
					t.Fatalf("on %s the pin is allocated to %v", d.PeerID, pin.Allocations)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the pin made on %s is not in the pinset of %s: %s", last.PeerID, d.PeerID, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Allocated elsewhere, it is remote here.
		d.WaitStatus(c, core.TrackerStatusRemote, true, 20*time.Second)
	}

	// The cluster-wide status, asked on any peer, has every peer's entry.
	for _, d := range peers {
		var g core.GlobalPinInfo
		expect(t, d.Get("/pins/"+c), 200, &g)
		if len(g.PeerMap) != 3 {
			t.Fatalf("GET /pins/%s on %s: %+v", c, d.PeerID, g.PeerMap)
		}
		for p, st := range g.PeerMap {
			want := core.TrackerStatusRemote
			if p == last.PeerID {
				want = core.TrackerStatusPinned
			}
			if st.Status != want || st.IPFS == "" {
				t.Fatalf("GET /pins/%s on %s: %s is %s, want %s: %+v", c, d.PeerID, p, st.Status, want, st)
			}
		}
	}
	all := ndjson[core.GlobalPinInfo](t, first.Get("/pins"))
	if len(all) != 1 || len(all[0].PeerMap) != 3 {
		t.Fatalf("GET /pins: %+v", all)
	}
	remote := ndjson[core.GlobalPinInfo](t, first.Get("/pins?filter=remote"))
	if len(remote) != 1 || len(remote[0].PeerMap) != 2 {
		t.Fatalf("GET /pins?filter=remote: %+v", remote)
	}
	if local := ndjson[core.GlobalPinInfo](t, first.Get("/pins?local=true")); len(local) != 1 || len(local[0].PeerMap) != 1 {
		t.Fatalf("GET /pins?local=true: %+v", local)
	}
	// Recover and sync act on every member and answer each one's entry.
	for _, path := range []string{"/pins/" + c + "/recover", "/pins/" + c + "/sync"} {
		var g core.GlobalPinInfo
		expect(t, first.Post(path), 200, &g)
		if len(g.PeerMap) != 3 || g.PeerMap[last.PeerID].Status != core.TrackerStatusPinned {
			t.Fatalf("POST %s: %+v", path, g.PeerMap)
		}
	}
	if synced := ndjson[core.GlobalPinInfo](t, first.Post("/pins/sync")); len(synced) != 1 || len(synced[0].PeerMap) != 3 {
		t.Fatalf("POST /pins/sync: %+v", synced)
	}
	if r := first.Post("/pins/recover"); r.Status != 204 {
		t.Fatalf("POST /pins/recover with nothing to recover: %s", r)
	}

	// The IPFS nodes of the peers are connected: content added on one peer
	// and pinned everywhere ends pinned on every peer.
	everywhere := addUnpinned(t, last, fmt.Sprintf("pinned everywhere (%s)\n", t.Name()))
	expect(t, first.Post("/pins/"+everywhere+"?replication=-1"), 200, &pin)
	first.WaitStatus(everywhere, core.TrackerStatusPinned, false, 60*time.Second)

	// The connection graph, asked on any peer, has every member's links.
	checkGraph(t, last, peers, nil)

	// Content added on one peer for another is sent to that other peer,
	// which pins it.
	body, ct := multipartBody(t, part{Name: "for-last.txt", Data: []byte("added on the first peer for the last\n")})
	r := do(t, "POST", first.URL+"/add?replication=1&user-allocations="+last.PeerID, body, ct)
	added := ndjson[core.AddedOutput](t, r)
	if r.Status != 200 || len(added) != 1 || len(added[0].Allocations) != 1 || added[0].Allocations[0].String() != last.PeerID {
		t.Fatalf("add for the last peer: %s", r)
	}
	last.WaitStatus(added[0].Cid.String(), core.TrackerStatusPinned, true, 30*time.Second)
	first.WaitStatus(added[0].Cid.String(), core.TrackerStatusRemote, true, 30*time.Second)

	// Added to be everywhere, the blocks go to every live peer (a valid
	// ping metric), which the answer names, as IPFS Cluster's does. Each
	// peer's ping reaches the first within a ping interval.
	pingDeadline := time.Now().Add(40 * time.Second)
	for {
		var pings []core.Metric
		expect(t, first.Get("/monitor/metrics/ping"), 200, &pings)
		if len(pings) == len(peers) {
			break
		}
		if time.Now().After(pingDeadline) {
			t.Fatalf("the first peer has %d ping metrics for %d peers", len(pings), len(peers))
		}
		time.Sleep(250 * time.Millisecond)
	}
	body, ct = multipartBody(t, part{Name: "everywhere.txt", Data: []byte("added on the first peer for every peer\n")})
	r = do(t, "POST", first.URL+"/add?replication=-1", body, ct)
	added = ndjson[core.AddedOutput](t, r)
	if r.Status != 200 || len(added) != 1 || len(added[0].Allocations) != len(peers) {
		t.Fatalf("add for every peer: %s", r)
	}
	for _, d := range peers {
		if !slices.ContainsFunc(added[0].Allocations, func(p core.PeerID) bool { return p.String() == d.PeerID }) {
			t.Fatalf("add for every peer: %s not named in %v", d.PeerID, added[0].Allocations)
		}
	}
	first.WaitStatus(added[0].Cid.String(), core.TrackerStatusPinned, false, 60*time.Second)

	// Allocation chooses among every peer: two of the three, and the third
	// reports the pin as remote.
	two := randomCid(t)
	expect(t, first.Post("/pins/"+two+"?replication-min=2&replication-max=2"), 200, &pin)
	allocated := map[string]bool{}
	for _, p := range pin.Allocations {
		allocated[p.String()] = true
	}
	if len(pin.Allocations) != 2 || len(allocated) != 2 {
		t.Fatalf("replication 2 allocated to %v", pin.Allocations)
	}
	for _, d := range peers {
		if !slices.Contains(want, d.PeerID) {
			t.Fatalf("allocated to %s, not a peer", d.PeerID)
		}
		if !allocated[d.PeerID] {
			d.WaitStatus(two, core.TrackerStatusRemote, true, 20*time.Second)
		}
	}

	// A pin on the member about to go down and on the last.
	kept := pinOn(t, first, peers[1], last)

	// A member that is down is not asked about a pin allocated elsewhere:
	// it is remote there, named as it last described itself, in the status
	// and the recover of that pin (spec §6.9).
	peers[1].Kill()
	var g core.GlobalPinInfo
	for _, r := range []response{first.Get("/pins/" + c), first.Post("/pins/" + c + "/recover")} {
		expect(t, r, 200, &g)
		if st := g.PeerMap[peers[1].PeerID]; st.Status != core.TrackerStatusRemote || st.Error != "" || st.IPFS == "" || st.PeerName == "" {
			t.Fatalf("a stopped member's entry for a pin allocated elsewhere: %+v", st)
		}
		if st := g.PeerMap[last.PeerID]; st.Status != core.TrackerStatusPinned {
			t.Fatalf("the allocated member's entry with another down: %+v", st)
		}
	}
	// It is cluster_error where it is asked: for a pin allocated to it, or
	// to every peer.
	for _, ci := range []string{kept, everywhere} {
		expect(t, first.Get("/pins/"+ci), 200, &g)
		if st := g.PeerMap[peers[1].PeerID]; st.Status != core.TrackerStatusClusterError || st.Error == "" {
			t.Fatalf("a stopped member's entry for a pin allocated to it: %+v", st)
		}
	}
	// A GC lists it with its error (spec §4.8).
	var gc core.GlobalRepoGC
	expect(t, first.Post("/ipfs/gc"), 200, &gc)
	if e := gc.PeerMap[peers[1].PeerID]; len(gc.PeerMap) != 3 || e.Error == "" || e.Keys == nil || e.Peer.String() != peers[1].PeerID {
		t.Fatalf("gc with a member down: %+v", gc)
	}
	for _, d := range []*daemon{first, last} {
		if e := gc.PeerMap[d.PeerID]; e.Error != "" || e.Peername == "" {
			t.Fatalf("gc on a live member with another down: %+v", e)
		}
	}
	checkGraph(t, first, peers, peers[1])

	// With repinning disabled (the default), its pins stay where they are
	// once its metrics expired and raised an alert.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var alerts []core.Alert
		expect(t, first.Get("/health/alerts"), 200, &alerts)
		if slices.ContainsFunc(alerts, func(a core.Alert) bool { return a.Peer.String() == peers[1].PeerID }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert about the stopped member %s: %+v", peers[1].PeerID, alerts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // what a re-allocation would have had to do it
	waitAllocations(t, first, kept, peerIDs(peers[1], last), time.Second)

	// A peer removed leaves the peerset of the others, and its pins are
	// re-allocated.
	removed := peers[1]
	expect(t, first.Delete("/peers/"+removed.PeerID), 204, nil)
	for _, d := range []*daemon{first, last} {
		waitPeerset(t, d, peerIDs(first, last), 20*time.Second)
		waitAllocations(t, d, kept, peerIDs(first, last), 20*time.Second)
	}

	// A peer with another secret cannot join, and says why.
	stranger, _ := servicetest.NewPeerDir(t, serviceBinary, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, serviceBinary, "--config", stranger, "daemon", "--bootstrap", bootstrap).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--bootstrap: no peer could be reached (is the cluster secret the same?)") {
		t.Fatalf("a peer with another secret: %v\n%s", err, out)
	}
	t.Logf("a peer with another secret gave up after %v", time.Since(start).Round(time.Millisecond))
	if got := ndjson[core.ID](t, first.Get("/peers")); len(got) != 2 {
		t.Fatalf("the stranger changed the peerset: %+v", got)
	}
}

// checkGraph checks GET /health/graph on d: every member has its cluster
// links (the other members), its peer name and its IPFS node, whose swarm
// holds the other members' IPFS nodes; down, when not nil, is a member that
// does not answer: it has no links, no name and no IPFS node, and the
// others' IPFS nodes are not required to be connected to it.
func checkGraph(t *testing.T, d *daemon, peers []*daemon, down *daemon) {
	t.Helper()
	ipfsOf := map[string]core.PeerID{}
	for _, p := range peers {
		if p != down {
			var id core.ID
			expect(t, p.Get("/id"), 200, &id)
			ipfsOf[p.PeerID] = id.IPFS.ID
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var g core.ConnectGraph
		expect(t, d.Get("/health/graph"), 200, &g)
		problem := ""
		if g.ClusterID.String() != d.PeerID {
			problem = "cluster_id is " + g.ClusterID.String()
		}
		for _, p := range peers {
			links, ok := g.ClusterLinks[p.PeerID]
			switch {
			case !ok || !g.ClusterTrustLinks[p.PeerID]:
				problem = p.PeerID + " has no cluster_links or trust entry"
			case p == down:
				if len(links) != 0 || g.IDtoPeername[p.PeerID] != "" || g.ClustertoIPFS[p.PeerID] != "" {
					problem = fmt.Sprintf("the member that is down has links %v, name %q, IPFS %q", links, g.IDtoPeername[p.PeerID], g.ClustertoIPFS[p.PeerID])
				}
			case len(links) != len(peers)-1 || slices.ContainsFunc(links, func(l core.PeerID) bool { return l.String() == p.PeerID }):
				problem = fmt.Sprintf("%s has cluster links %v", p.PeerID, links)
			case g.IDtoPeername[p.PeerID] == "" || g.ClustertoIPFS[p.PeerID] != ipfsOf[p.PeerID]:
				problem = fmt.Sprintf("%s has name %q and IPFS %q, want %q", p.PeerID, g.IDtoPeername[p.PeerID], g.ClustertoIPFS[p.PeerID], ipfsOf[p.PeerID])
			default:
				swarm := g.IPFSLinks[ipfsOf[p.PeerID].String()]
				for _, q := range peers {
					if q != p && q != down && !slices.Contains(swarm, ipfsOf[q.PeerID]) {
						problem = fmt.Sprintf("the IPFS node of %s is not linked to that of %s: %v", p.PeerID, q.PeerID, swarm)
					}
				}
			}
		}
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /health/graph on %s: %s: %+v", d.PeerID, problem, g)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startCluster starts n peers that share a secret, the first alone and the
// others joining it with --bootstrap; edit (when not nil) changes each
// service.json first.
func startCluster(t testing.TB, n int, edit func(*config.Service)) []*daemon {
	t.Helper()
	configure := func(svc *config.Service) {
		fastMetrics(t)(svc)
		if edit != nil {
			edit(svc)
		}
	}
	dir1, api1 := servicetest.NewPeerDir(t, serviceBinary, configure)
	peers := []*daemon{startDaemon(t, dir1, api1)}
	var secret string
	servicetest.EditService(t, dir1, func(svc *config.Service) { secret = svc.Cluster.Secret })
	bootstrap := clusterAddr(t, dir1)
	for range n - 1 {
		dir, api := servicetest.NewPeerDir(t, serviceBinary, func(svc *config.Service) {
			svc.Cluster.Secret = secret
			configure(svc)
		})
		peers = append(peers, &daemon{servicetest.Start(t, serviceBinary, dir, api, "--bootstrap", bootstrap)})
	}
	// Every peer knows every peer's metrics.
	for _, d := range peers {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var metrics []core.Metric
			expect(t, d.Get("/monitor/metrics/freespace"), 200, &metrics)
			if len(metrics) == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("freespace metrics on %s: %+v", d.PeerID, metrics)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return peers
}

// TestRepinWhenAPeerIsLost: with repinning enabled, the pins allocated to
// a peer that goes down are re-allocated to live peers once its metrics
// expire, keeping their replication factor.
func TestRepinWhenAPeerIsLost(t *testing.T) {
	t.Parallel()
	peers := startCluster(t, 3, func(svc *config.Service) { svc.Cluster.DisableRepinning = false })
	first := peers[0]
	ci := randomCid(t)
	var pin core.Pin
	expect(t, first.Post("/pins/"+ci+"?replication-min=2&replication-max=2"), 200, &pin)
	if len(pin.Allocations) != 2 {
		t.Fatalf("allocated to %v", pin.Allocations)
	}
	// Lose an allocated peer that is not the first (the raft leader).
	var lost *daemon
	for _, d := range peers[1:] {
		if slices.ContainsFunc(pin.Allocations, func(p core.PeerID) bool { return p.String() == d.PeerID }) {
			lost = d
			break
		}
	}
	lost.Kill()
	lostAt := time.Now()
	deadline := lostAt.Add(40 * time.Second)
	for {
		expect(t, first.Get("/allocations/"+ci), 200, &pin)
		gone := slices.ContainsFunc(pin.Allocations, func(p core.PeerID) bool { return p.String() == lost.PeerID })
		if !gone && len(pin.Allocations) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still allocated to %v after losing %s", pin.Allocations, lost.PeerID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("re-allocated %v after %v", pin.Allocations, time.Since(lostAt).Round(time.Millisecond))
	var alerts []core.Alert
	expect(t, first.Get("/health/alerts"), 200, &alerts)
	if !slices.ContainsFunc(alerts, func(a core.Alert) bool { return a.Peer.String() == lost.PeerID }) {
		t.Fatalf("no alert about %s: %+v", lost.PeerID, alerts)
	}
}
