package kubo

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/kubo/kubotest"
)

// TestTwoPeersWithKubo runs a cluster of two peers, each with its own
// kubo (online, with no bootstrap peers: only the cluster connects them):
// the cluster connects the two kubos, so content added at one peer without
// pinning is fetched and pinned by the other when it is allocated there,
// and /add with an allocation elsewhere sends the blocks to the other
// peer's kubo.
func TestTwoPeersWithKubo(t *testing.T) {
	t.Parallel()
	nodes := []*kubotest.Node{
		kubotest.Start(t, kubotest.Options{Online: true}),
		kubotest.Start(t, kubotest.Options{Online: true}),
	}
	var secret, bootstrap string
	var peers []*peerDaemon
	for i, node := range nodes {
		dir, api := newPeerDir(t, node.ConnectorConfig(nil), nil)
		servicetest.EditService(t, dir, func(svc *config.Service) {
			if i == 0 {
				secret = svc.Cluster.Secret
				bootstrap = svc.Cluster.ListenMultiaddress[0] + "/p2p/" + servicetest.PeerID(t, dir)
			} else {
				svc.Cluster.Secret = secret
			}
		})
		if i == 0 {
			peers = append(peers, startPeer(t, dir, api))
		} else {
			peers = append(peers, &peerDaemon{servicetest.Start(t, serviceBinary(t), dir, api, "--bootstrap", bootstrap)})
		}
	}
	a, b := peers[0], peers[1]
	kuboA := nodes[0].IPFS("id", "-f", "<id>")
	kuboB, err := core.DecodePeerID(nodes[1].IPFS("id", "-f", "<id>"))
	if err != nil {
		t.Fatal(err)
	}

	// Both peers know each other's metrics (sent at once on joining).
	deadline := time.Now().Add(20 * time.Second)
	for _, d := range peers {
		for {
			var ms []core.Metric
			decode(t, d.Get("/monitor/metrics/freespace"), 200, &ms)
			if len(ms) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("freespace metrics on %s: %+v", d.PeerID, ms)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The cluster connects the kubos (swarm connect, every 5 s).
	deadline = time.Now().Add(30 * time.Second)
	for {
		peersOfB := nodes[1].IPFS("swarm", "peers")
		var g core.ConnectGraph
		decode(t, a.Get("/health/graph"), 200, &g)
		if slices.Contains(g.IPFSLinks[kuboA], kuboB) && len(peersOfB) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kubos are not connected: graph %+v; kubo B's swarm: %q", g, peersOfB)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Added at A's kubo only (local) without pinning, then allocated to
	// B: B's kubo fetches it from A's.
	fetched := a.add("local=true&no-pin=true", filePart{Name: "fetched.txt", Data: []byte(fmt.Sprintf("fetched by the other kubo (%s)\n", t.Name()))})["fetched.txt"]
	if _, err := nodes[1].TryIPFS("block", "stat", "--offline", fetched); err == nil {
		t.Fatal("kubo B has the block before the pin")
	}
	var pin core.Pin
	decode(t, a.Post("/pins/"+fetched+"?replication=1&user-allocations="+b.PeerID), 200, &pin)
	b.waitStatus(fetched, core.TrackerStatusPinned, 60*time.Second)
	if mode := nodes[1].PinLs()[fetched]; mode != "recursive" {
		t.Fatalf("kubo B pins %s as %q", fetched, mode)
	}
	a.waitStatus(fetched, core.TrackerStatusRemote, 20*time.Second)

	// Added at A for B: the blocks go to B's kubo with the pin.
	sent := a.add(fmt.Sprintf("replication=1&user-allocations=%s", b.PeerID), filePart{Name: "sent.txt", Data: []byte("sent to the allocated peer\n")})["sent.txt"]
	b.waitStatus(sent, core.TrackerStatusPinned, 30*time.Second)
	if _, err := nodes[1].TryIPFS("block", "stat", "--offline", sent); err != nil {
		t.Fatalf("kubo B lacks the added block: %v", err)
	}
}
