package kubo

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/kubo/kubotest"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// TestEndToEnd runs a pincluster-service daemon whose IPFS connector is
// kubo, against a real (offline) kubo daemon.
func TestEndToEnd(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	tracker := map[string]any{"max_retries": 1, "retry_backoff_base": "200ms"}
	dir, api := newPeerDir(t, node.ConnectorConfig(nil), tracker)
	d := startPeer(t, dir, api)
	kuboID := node.IPFS("id", "-f", "<id>")
	before := node.PinLs() // kubo's own pins, made by ipfs init

	t.Run("id names the kubo node", func(t *testing.T) {
		var id core.ID
		decode(t, d.Get("/id"), 200, &id)
		if id.IPFS.ID.String() != kuboID || id.IPFS.Error != "" {
			t.Fatalf("ipfs section of /id: %+v, kubo is %s", id.IPFS, kuboID)
		}
	})

	// Files to add, also written to disk for `ipfs add`.
	small := []byte("hello\n")
	big := make([]byte, 46<<20) // 184 chunks of 256 KiB: a two-level tree
	_, _ = rand.Read(big)
	a, b := randomText(100), randomText(300000)
	onDisk := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(onDisk, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	smallPath, bigPath := write("hello.txt", small), write("big.bin", big)
	write("dir/a.txt", a)
	write("dir/sub/b.txt", b)
	dirPath := filepath.Join(onDisk, "dir")

	for _, params := range []struct{ name, query, flags string }{
		{"default", "", ""},
		{"cid-version=1 raw-leaves", "cid-version=1&raw-leaves=true", "--cid-version=1 --raw-leaves"},
		{"trickle size-65536 blake2b-256", "layout=trickle&chunker=size-65536&hash=blake2b-256", "--trickle --chunker=size-65536 --hash=blake2b-256"},
		{"rabin", "chunker=rabin-65536-131072-262144", "--chunker=rabin-65536-131072-262144"},
		{"buzhash cid-version=1", "chunker=buzhash&cid-version=1", "--chunker=buzhash --cid-version=1"},
	} {
		t.Run("add through pincluster, read from kubo, "+params.name, func(t *testing.T) {
			flags := strings.Fields(params.flags)
			kuboCid := func(args ...string) string {
				return node.IPFS(append(append([]string{"add", "-Q", "--only-hash"}, flags...), args...)...)
			}
			got := d.add(params.query,
				filePart{Name: "hello.txt", Data: small})
			if want := kuboCid(smallPath); got["hello.txt"] != want {
				t.Fatalf("hello.txt: pincluster %s, ipfs add %s", got["hello.txt"], want)
			}
			got = d.add(params.query, filePart{Name: "big.bin", Data: big})
			bigCid := got["big.bin"]
			if want := kuboCid(bigPath); bigCid != want {
				t.Fatalf("big.bin: pincluster %s, ipfs add %s", bigCid, want)
			}
			got = d.add(params.query,
				filePart{Name: "dir", Dir: true},
				filePart{Name: "dir/a.txt", Data: a},
				filePart{Name: "dir/sub", Dir: true},
				filePart{Name: "dir/sub/b.txt", Data: b})
			if want := kuboCid("-r", dirPath); got["dir"] != want {
				t.Fatalf("dir: pincluster %s, ipfs add -r %s", got["dir"], want)
			}
			// kubo holds the blocks: it reads the files back.
			if out := node.IPFS("cat", got["dir"]+"/sub/b.txt"); out != strings.TrimSpace(string(b)) {
				t.Fatalf("ipfs cat of dir/sub/b.txt differs")
			}
			catBig, err := node.TryIPFS("cat", bigCid)
			if err != nil || catBig != strings.TrimSpace(string(big)) {
				t.Fatalf("ipfs cat of big.bin: %d bytes that differ from the %d added, %v", len(catBig), len(big), err)
			}
			if node.IPFS("cat", got["dir"]+"/a.txt") != strings.TrimSpace(string(a)) {
				t.Fatal("ipfs cat of dir/a.txt differs")
			}
			// And pincluster pinned them in kubo.
			d.waitStatus(got["dir"], core.TrackerStatusPinned, 30*time.Second)
			if typ := node.PinLs()[got["dir"]]; typ != "recursive" {
				t.Fatalf("ipfs pin ls has %s as %q", got["dir"], typ)
			}
		})
	}

	var direct, recursive string
	t.Run("pin content put into kubo directly", func(t *testing.T) {
		recursive = node.IPFSInput(randomText(5000), "add", "-Q", "--pin=false")
		direct = node.IPFSInput(randomText(50), "add", "-Q", "--pin=false", "--cid-version=1")
		var pin core.Pin
		decode(t, d.Post("/pins/"+recursive+"?name=direct-to-kubo"), 200, &pin)
		decode(t, d.Post("/pins/ipfs/"+direct+"?mode=direct"), 200, &pin)
		d.waitStatus(recursive, core.TrackerStatusPinned, 30*time.Second)
		d.waitStatus(direct, core.TrackerStatusPinned, 30*time.Second)
		pins := node.PinLs()
		if pins[recursive] != "recursive" || pins[direct] != "direct" {
			t.Fatalf("ipfs pin ls: %s is %q, %s is %q", recursive, pins[recursive], direct, pins[direct])
		}
	})

	t.Run("status agrees with ipfs pin ls", func(t *testing.T) {
		statuses := ndjsonOf[core.GlobalPinInfo](t, d.Get("/pins?local=true"))
		kubo := node.PinLs()
		if len(statuses) == 0 {
			t.Fatal("no pins")
		}
		for _, g := range statuses {
			for _, p := range g.PeerMap {
				if p.Status != core.TrackerStatusPinned || kubo[g.Cid.String()] == "" {
					t.Errorf("%s: pincluster says %s, ipfs pin ls %q", g.Cid, p.Status, kubo[g.Cid.String()])
				}
			}
		}
		// Each pin of the pinset is in kubo with its mode, and kubo holds
		// no recursive or direct pin that the pinset does not have, but
		// for those of ipfs init.
		inPinset := map[string]bool{}
		for _, p := range ndjsonOf[core.Pin](t, d.Get("/allocations")) {
			inPinset[p.Cid.String()] = true
			if want := p.Mode.String(); kubo[p.Cid.String()] != want {
				t.Errorf("%s: pinned %s in the pinset, %q in kubo", p.Cid, want, kubo[p.Cid.String()])
			}
		}
		for c, typ := range kubo {
			if _, own := before[c]; !own && !inPinset[c] {
				t.Errorf("kubo has a %s pin of %s that the pinset does not", typ, c)
			}
		}
		pinned := ndjsonOf[core.GlobalPinInfo](t, d.Get("/pins?local=true&filter=pinned"))
		if len(pinned) != len(statuses) {
			t.Errorf("filter=pinned: %d of %d", len(pinned), len(statuses))
		}
		// A pin removed behind pincluster's back shows, and recover fixes it.
		node.IPFS("pin", "rm", recursive)
		st := d.status(recursive)
		if st.Status != core.TrackerStatusUnexpectedlyUnpinned {
			t.Fatalf("after ipfs pin rm: %+v", st)
		}
		decode(t, d.Post("/pins/"+recursive+"/recover?local=true"), 200, nil)
		d.waitStatus(recursive, core.TrackerStatusPinned, 30*time.Second)
		if node.PinLs()[recursive] != "recursive" {
			t.Fatal("recover did not pin again in kubo")
		}
	})

	t.Run("unpin", func(t *testing.T) {
		decode(t, d.Delete("/pins/"+direct), 200, nil)
		d.waitStatus(direct, core.TrackerStatusUnpinned, 30*time.Second)
		if typ, ok := node.PinLs()[direct]; ok {
			t.Fatalf("ipfs pin ls still has %s (%s)", direct, typ)
		}
	})

	t.Run("unavailable content ends in pin_error", func(t *testing.T) {
		missing := conformance.MissingCid(t).String()
		decode(t, d.Post("/pins/"+missing), 200, nil)
		st := d.waitStatus(missing, core.TrackerStatusPinError, 30*time.Second)
		if !strings.Contains(st.Error, "kubo pin/add: ") || !strings.Contains(st.Error, "not found") {
			t.Fatalf("pin_error message %q", st.Error)
		}
		decode(t, d.Delete("/pins/"+missing), 200, nil)
	})

	t.Run("repo gc", func(t *testing.T) {
		loose := d.add("no-pin=true", filePart{Name: "loose.txt", Data: randomText(3000)})["loose.txt"]
		if _, err := node.TryIPFS("block", "stat", "--offline", loose); err != nil {
			t.Fatalf("the unpinned upload is not in kubo: %v", err)
		}
		var gc core.GlobalRepoGC
		decode(t, d.Post("/ipfs/gc"), 200, &gc)
		removed := map[string]bool{}
		for _, peer := range gc.PeerMap {
			if peer.Error != "" {
				t.Fatalf("gc error: %s", peer.Error)
			}
			for _, k := range peer.Keys {
				removed[string(k.Key.Hash())] = true
			}
		}
		lc, _ := core.DecodeCid(loose)
		if !removed[string(lc.Hash())] {
			t.Fatalf("gc did not remove %s: %+v", loose, gc)
		}
		if _, err := node.TryIPFS("block", "stat", "--offline", loose); err == nil {
			t.Fatal("kubo still has the collected block")
		}
		// Pinned content stays.
		if _, err := node.TryIPFS("cat", recursive); err != nil {
			t.Fatalf("gc removed pinned content: %v", err)
		}
	})

	t.Run("kubo down, then up again", func(t *testing.T) {
		node.Stop()
		var id core.ID
		decode(t, d.Get("/id"), 200, &id)
		if !strings.Contains(id.IPFS.Error, "kubo is not reachable at "+node.APIMultiaddr()) {
			t.Fatalf("/id while kubo is down: %+v", id.IPFS)
		}
		// Pins cannot be checked against kubo: the status says so.
		st := d.status(recursive)
		if st.Status != core.TrackerStatusClusterError || !strings.Contains(st.Error, "kubo is not reachable at "+node.APIMultiaddr()) {
			t.Fatalf("status while kubo is down: %+v", st)
		}
		// A pin made meanwhile fails...
		missingWhileDown := conformance.NewDAG(t).A.Cid.String()
		decode(t, d.Post("/pins/"+missingWhileDown), 200, nil)
		st = d.waitStatus(missingWhileDown, core.TrackerStatusPinError, 30*time.Second)
		if !strings.Contains(st.Error, "kubo is not reachable") {
			t.Fatalf("pin while kubo is down: %+v", st)
		}
		// ... the peer keeps serving ...
		if v := d.Get("/version"); v.Status != 200 {
			t.Fatalf("/version while kubo is down: %s", v)
		}
		// ... and once kubo is back, with the content there, recover pins it.
		node.Start()
		decode(t, d.Delete("/pins/"+missingWhileDown), 200, nil)
		content := randomText(700)
		ci := node.IPFSInput(content, "add", "-Q", "--pin=false")
		node.Stop()
		decode(t, d.Post("/pins/"+ci), 200, nil)
		d.waitStatus(ci, core.TrackerStatusPinError, 30*time.Second)
		node.Start()
		decode(t, d.Get("/id"), 200, &id)
		if id.IPFS.ID.String() != kuboID || id.IPFS.Error != "" {
			t.Fatalf("/id once kubo is back: %+v", id.IPFS)
		}
		recovered := ndjsonOf[core.GlobalPinInfo](t, d.Post("/pins/recover?local=true"))
		if len(recovered) == 0 {
			t.Fatal("recover re-queued nothing")
		}
		d.waitStatus(ci, core.TrackerStatusPinned, 30*time.Second)
		if node.PinLs()[ci] != "recursive" {
			t.Fatal("kubo does not hold the recovered pin")
		}
		d.waitStatus(recursive, core.TrackerStatusPinned, 30*time.Second)
	})
}

// randomText returns n printable random bytes ending in a newline.
func randomText(n int) []byte {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789 "
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	b[n-1] = '\n'
	return b
}

// TestEndToEndPinTimeout: with kubo online but without peers, a pin of
// content that exists nowhere waits for blocks that never come; the
// tracker's pin_timeout, handed to the connector, ends it in pin_error.
func TestEndToEndPinTimeout(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{Online: true})
	tracker := map[string]any{"pin_timeout": "2s", "max_retries": 0}
	dir, api := newPeerDir(t, node.ConnectorConfig(nil), tracker)
	d := startPeer(t, dir, api)
	missing := conformance.MissingCid(t).String()
	start := time.Now()
	decode(t, d.Post("/pins/"+missing), 200, nil)
	st := d.waitStatus(missing, core.TrackerStatusPinError, 30*time.Second)
	took := time.Since(start)
	if !strings.Contains(st.Error, "pin timed out: kubo made no progress for 2s") {
		t.Fatalf("pin_error message %q", st.Error)
	}
	if took < 2*time.Second || took > 15*time.Second {
		t.Fatalf("pin_error after %s with pin_timeout 2s", took)
	}
	// Meanwhile, pins of available content go through.
	ci := node.IPFSInput(randomText(100), "add", "-Q", "--pin=false")
	decode(t, d.Post("/pins/"+ci), 200, nil)
	d.waitStatus(ci, core.TrackerStatusPinned, 30*time.Second)
}

// TestEndToEndPeerStartsWithoutKubo: a peer configured with the kubo
// connector starts while kubo is down, says so, and works once kubo is up.
func TestEndToEndPeerStartsWithoutKubo(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	ci := node.IPFSInput(randomText(200), "add", "-Q", "--pin=false")
	node.Stop()
	dir, api := newPeerDir(t, node.ConnectorConfig(nil), map[string]any{"max_retries": 0})
	setInformer(t, dir, "disk", map[string]any{"metric_ttl": "1s", "metric_type": "freespace"})
	d := startPeer(t, dir, api)
	var id core.ID
	decode(t, d.Get("/id"), 200, &id)
	if !strings.HasPrefix(id.IPFS.Error, "kubo is not reachable at "+node.APIMultiaddr()) {
		t.Fatalf("/id with kubo down: %+v", id.IPFS)
	}
	// The freespace metric cannot be taken: it expires into an alert.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var alerts []core.Alert
		decode(t, d.Get("/health/alerts"), 200, &alerts)
		if len(alerts) > 0 {
			if a := alerts[0]; a.Name != "freespace" || a.Peer != id.ID || a.Valid {
				t.Fatalf("alert while kubo is down: %+v", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no alert while kubo is down")
		}
		time.Sleep(200 * time.Millisecond)
	}
	decode(t, d.Post("/pins/"+ci), 200, nil)
	st := d.waitStatus(ci, core.TrackerStatusPinError, 30*time.Second)
	if !strings.Contains(st.Error, "kubo is not reachable") {
		t.Fatalf("pin with kubo down: %+v", st)
	}
	node.Start()
	decode(t, d.Get("/id"), 200, &id)
	if id.IPFS.Error != "" || id.IPFS.ID == "" {
		t.Fatalf("/id with kubo up: %+v", id.IPFS)
	}
	decode(t, d.Post("/pins/"+ci+"/recover?local=true"), 200, nil)
	d.waitStatus(ci, core.TrackerStatusPinned, 30*time.Second)
	if node.PinLs()[ci] != "recursive" {
		t.Fatal("kubo does not hold the pin")
	}
	// With kubo up, the metric is taken again.
	deadline = time.Now().Add(20 * time.Second)
	for {
		var metrics []core.Metric
		decode(t, d.Get("/monitor/metrics/freespace"), 200, &metrics)
		if len(metrics) == 1 && metrics[0].Valid && metrics[0].Weight > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("freespace once kubo is up: %+v", metrics)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
