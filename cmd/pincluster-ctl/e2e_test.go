package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
)

// Known kubo CIDs of a file holding "hello\n".
const (
	helloV0 = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
	helloV1 = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
	// A CID that is never pinned in these tests.
	unpinnedCid = "Qmb3HYrshA4Bdd5gC4soLTt13Lq6gscZ8VdDWz5zWmzvy8"
)

// statusLine matches a peer line of the text status output.
func statusLine(peer, status string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^    > ` + regexp.QuoteMeta(fmt.Sprintf("%-20s", peer)) + ` : ` + status + ` \| \d{4}-\d\d-\d\dT[^ ]+ \| Attempts: \d+ \| Priority: (true|false)$`)
}

func mustMatch(t testing.TB, re *regexp.Regexp, out string) {
	t.Helper()
	if !re.MatchString(out) {
		t.Fatalf("output does not match %s:\n%s", re, out)
	}
}

func mustContain(t testing.TB, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Fatalf("output lacks %q:\n%s", s, out)
		}
	}
}

// TestCtlAgainstDaemon runs every command against one real daemon.
func TestCtlAgainstDaemon(t *testing.T) {
	d := servicetest.StartDaemon(t, serviceBinary)
	ctl := runner{t: t}.with("--host", d.Multiaddr)
	js := ctl.with("--enc=json")
	self := d.PeerID

	id := jsonObject[core.ID](t, js.ok("id").stdout)
	peername := id.Peername

	dir := t.TempDir()
	write := func(rel, data string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hello := write("hello.txt", "hello\n")
	write("tree/a.txt", "file a\n")
	write("tree/sub/b.txt", "file b\n")
	write("tree/.hidden", "secret\n")
	tree := filepath.Join(dir, "tree")

	t.Run("version", func(t *testing.T) {
		ctl := runner{t: t, pre: ctl.pre}
		if out := ctl.ok("version").stdout; out != core.SoftwareVersion+"\n" {
			t.Fatalf("version: %q", out)
		}
		v := jsonObject[core.Version](t, js.ok("version").stdout)
		if v.Version != core.SoftwareVersion {
			t.Fatalf("json version %+v", v)
		}
		if out := ctl.ok("--version").stdout; out != "pincluster-ctl version "+core.SoftwareVersion+"\n" {
			t.Fatalf("--version: %q", out)
		}
	})

	t.Run("id and peers", func(t *testing.T) {
		out := ctl.ok("id").stdout
		mustMatch(t, regexp.MustCompile(`^`+self+` \| `+regexp.QuoteMeta(peername)+` \| Sees 0 other peers\n  > Addresses:\n(    - .*\n)*  > IPFS: `+id.IPFS.ID.String()+`\n`), out)
		if jid := jsonObject[core.ID](t, js.ok("id").stdout); jid.ID.String() != self || len(jid.ClusterPeers) != 1 {
			t.Fatalf("json id %+v", jid)
		}
		if out := ctl.ok("peers", "ls").stdout; !strings.HasPrefix(out, self+" | "+peername+" | Sees 0 other peers\n") {
			t.Fatalf("peers ls:\n%s", out)
		}
		peers := jsonObjects[core.ID](t, js.ok("peers", "ls").stdout)
		if len(peers) != 1 || peers[0].ID.String() != self {
			t.Fatalf("json peers ls %+v", peers)
		}
		ctl.fails(1, "peers", "rm", "notapeer")
		res := ctl.fails(2, "peers", "rm", id.IPFS.ID.String())
		if res.stdout != "An error occurred:\n  Code: 500\n  Message: "+id.IPFS.ID.String()+" is not a cluster peer\n" {
			t.Fatalf("peers rm of a non-member:\n%s", res)
		}
		ctl.fails(1, "peers", "rm")
	})

	t.Run("add", func(t *testing.T) {
		if out := ctl.ok("add", hello).stdout; out != "added "+helloV0+" hello.txt\n" {
			t.Fatalf("add: %q", out)
		}
		out := js.ok("add", "--cid-version", "1", hello).stdout
		if o := jsonObject[core.AddedOutput](t, out); o.Cid.String() != helloV1 || o.Name != "hello.txt" || o.Size != 6 || len(o.Allocations) != 1 {
			t.Fatalf("json add: %s", out)
		}

		// Directories need -r; hidden files only with --hidden.
		res := ctl.fails(1, "add", tree)
		mustContain(t, res.stderr, "is a directory")
		out = ctl.ok("add", "-r", tree).stdout
		ls := lines(out)
		if len(ls) != 4 || !strings.HasSuffix(ls[0], " tree/a.txt") || !strings.HasSuffix(ls[1], " tree/sub/b.txt") ||
			!strings.HasSuffix(ls[2], " tree/sub") || !strings.HasSuffix(ls[3], " tree") {
			t.Fatalf("add -r:\n%s", out)
		}
		treeRoot := strings.Fields(ls[3])[1]
		q := lines(ctl.ok("add", "-q", "-r", tree).stdout)
		if len(q) != 4 || q[3] != treeRoot {
			t.Fatalf("add -q: %v", q)
		}
		if out := ctl.ok("add", "-Q", "-r", tree).stdout; out != treeRoot+"\n" {
			t.Fatalf("add -Q: %q", out)
		}
		hidden := lines(ctl.ok("add", "-r", "--hidden", "-Q", tree).stdout)
		if len(hidden) != 1 || hidden[0] == treeRoot {
			t.Fatalf("add --hidden gave the same root: %v", hidden)
		}

		// Standard input: "-" or no path.
		out = ctl.withStdin("from stdin\n").ok("add", "-").stdout
		mustMatch(t, regexp.MustCompile(`^added Qm\w+ stdin\n$`), out)
		stdinCid := strings.Fields(out)[1]
		if out := ctl.withStdin("from stdin\n").ok("add", "-Q", "--stdin-name", "piped.txt").stdout; out != stdinCid+"\n" {
			t.Fatalf("add from stdin without a path: %q", out)
		}

		// Several paths are wrapped in a directory.
		out = ctl.ok("add", hello, filepath.Join(tree, "a.txt")).stdout
		ls = lines(out)
		if len(ls) != 3 || !strings.HasSuffix(ls[0], " hello.txt") || !strings.HasSuffix(ls[1], " a.txt") || !strings.HasSuffix(ls[2], " ") {
			t.Fatalf("add of two files:\n%q", out)
		}

		// --no-stream: one JSON array.
		arr := jsonObjects[[]core.AddedOutput](t, js.ok("add", "--no-stream", "-r", tree).stdout)
		if len(arr) != 1 || len(arr[0]) != 4 || arr[0][3].Cid.String() != treeRoot {
			t.Fatalf("add --no-stream: %+v", arr)
		}

		// Pin options, --no-pin, --wait.
		opt := write("opts.txt", "with options\n")
		out = ctl.ok("add", "-Q", "--name", "withopts", "--metadata", "kind=text", "--metadata", "lang=en",
			"--rmin", "1", "--rmax", "1", "--expire-in", "24h", "--allocations", self, "--wait", "--wait-timeout", "30s", opt).stdout
		optCid := strings.TrimSpace(out)
		pin := jsonObject[core.Pin](t, js.ok("pin", "ls", optCid).stdout)
		if pin.Name != "withopts" || pin.Metadata["kind"] != "text" || pin.Metadata["lang"] != "en" || pin.ReplicationFactorMin != 1 ||
			pin.ReplicationFactorMax != 1 || pin.ExpireAt.IsZero() || len(pin.Allocations) != 1 {
			t.Fatalf("pin of an add with options: %+v", pin)
		}
		gpi := jsonObject[core.GlobalPinInfo](t, js.ok("status", optCid).stdout)
		if gpi.PeerMap[self].Status != core.TrackerStatusPinned {
			t.Fatalf("add --wait returned before the pin: %+v", gpi)
		}
		nopin := write("nopin.txt", "not pinned\n")
		nopinCid := strings.TrimSpace(ctl.ok("add", "-Q", "--no-pin", nopin).stdout)
		mustMatch(t, statusLine(peername, "UNPINNED"), ctl.ok("status", nopinCid).stdout)

		// Add options the server rejects: exit code 2 with its message.
		res = ctl.fails(2, "add", "--layout", "foo", hello)
		if res.stdout != "An error occurred:\n  Code: 400\n  Message: layout parameter is invalid\n" {
			t.Fatalf("server error output: %q", res.stdout)
		}
		e := jsonObject[core.Error](t, js.fails(2, "add", "--format", "car", hello).stdout)
		// The add stream has started when the import fails: the error
		// comes in the trailer (code 500).
		if e.Code != 500 || !strings.Contains(e.Message, "hello.txt: invalid CAR file") {
			t.Fatalf("json server error: %+v", e)
		}
		ctl.fails(1, "add", filepath.Join(dir, "missing"))
		ctl.fails(1, "add", "--nocopy", hello)
	})

	t.Run("pin add rm update ls", func(t *testing.T) {
		// pin add prints the status after a second.
		out := ctl.ok("pin", "add", "--name", "hello", helloV0).stdout
		if !strings.HasPrefix(out, helloV0+" | hello:\n") {
			t.Fatalf("pin add:\n%s", out)
		}
		mustMatch(t, statusLine(peername, "PINNED"), out)

		// Every option, and --no-status prints the pin.
		out = ctl.ok("pin", "add", "--no-status", "--name", "opts", "--metadata", "a=1", "--metadata", "b=2",
			"--rmin", "1", "--rmax", "1", "--allocations", self, "--mode", "recursive", "--expire-in", "1h", helloV1).stdout
		mustMatch(t, regexp.MustCompile(`^`+helloV1+` \| opts \| PIN \| Repl\. Factor: 1--1 \| Allocations: \[`+self+`\] \| Recursive \| Metadata: a:1 b:2 \| Exp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| Added: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$`), out)
		out = ctl.ok("pin", "add", "-r", "-1", "--no-status", helloV1).stdout
		mustContain(t, out, "Repl. Factor: -1 | Allocations: [everywhere]")

		pin := jsonObject[core.Pin](t, js.ok("pin", "add", "--no-status", "--replication", "1", helloV0).stdout)
		if pin.Cid.String() != helloV0 || pin.ReplicationFactorMin != 1 || pin.ReplicationFactorMax != 1 || pin.Metadata == nil {
			t.Fatalf("json pin add --no-status: %+v", pin)
		}
		gpi := jsonObject[core.GlobalPinInfo](t, js.ok("pin", "add", "--wait", "--wait-timeout", "30s", "--wait-limit", "1", helloV0).stdout)
		if gpi.PeerMap[self].Status != core.TrackerStatusPinned {
			t.Fatalf("json pin add --wait: %+v", gpi)
		}

		// Server errors, client errors.
		res := ctl.fails(2, "pin", "add", "/ipfs/invalidhash")
		mustContain(t, res.stdout, "An error occurred:\n  Code: 400\n  Message: error parsing path")
		ctl.fails(1, "pin", "add", "notacid")
		ctl.fails(1, "pin", "add", "--metadata", "novalue", helloV0)
		ctl.fails(1, "pin", "add", "--mode", "sideways", helloV0)
		ctl.fails(1, "pin", "add", "--expire-in", "soon", helloV0)
		ctl.fails(1, "pin", "add")

		// pin ls.
		out = ctl.ok("pin", "ls").stdout
		mustContain(t, out, helloV0+" | ", helloV1+" | ")
		if out := ctl.ok("pin", "ls", "--filter", "pin").stdout; !strings.Contains(out, helloV0) {
			t.Fatalf("pin ls --filter pin:\n%s", out)
		}
		if out := ctl.ok("pin", "ls", "--filter", "meta-pin,shard-pin").stdout; out != "" {
			t.Fatalf("pin ls of meta-pins (an empty stream):\n%s", out)
		}
		ctl.fails(1, "pin", "ls", "--filter", "bogus")
		// An empty argument is no argument, as for ipfs-cluster-ctl.
		if all := ctl.ok("pin", "ls", "").stdout; all != out {
			t.Fatalf("pin ls '':\n%s\nwant\n%s", all, out)
		}
		pins := jsonObjects[core.Pin](t, js.ok("pin", "ls").stdout)
		if len(pins) < 2 {
			t.Fatalf("json pin ls: %d pins", len(pins))
		}
		res = ctl.fails(2, "pin", "ls", unpinnedCid)
		if res.stdout != "An error occurred:\n  Code: 404\n  Message: pin is not part of the pinset\n" {
			t.Fatalf("pin ls of an unpinned CID: %q", res.stdout)
		}

		// pin update copies the options of the existing pin.
		upd := write("update.txt", "new version\n")
		newCid := strings.TrimSpace(ctl.ok("add", "-Q", "--no-pin", upd).stdout)
		out = ctl.ok("pin", "update", "--name", "updated", helloV0, newCid).stdout
		if !strings.HasPrefix(out, newCid+" | updated:\n") {
			t.Fatalf("pin update:\n%s", out)
		}
		np := jsonObject[core.Pin](t, js.ok("pin", "ls", newCid).stdout)
		if np.PinUpdate.String() != helloV0 || np.Name != "updated" {
			t.Fatalf("updated pin: %+v", np)
		}
		ctl.fails(1, "pin", "update", helloV0)

		// pin rm.
		out = ctl.ok("pin", "rm", "--wait", "--wait-timeout", "30s", newCid).stdout
		mustMatch(t, statusLine(peername, "UNPINNED"), out)
		out = ctl.ok("pin", "rm", "--no-status", helloV1).stdout
		if !strings.HasPrefix(out, helloV1+" |  | PIN | Repl. Factor: -1 | Allocations: [everywhere] | ") {
			t.Fatalf("pin rm --no-status:\n%s", out)
		}
		res = ctl.fails(2, "pin", "rm", unpinnedCid)
		if res.stdout != "An error occurred:\n  Code: 404\n  Message: pin is not part of the pinset\n" {
			t.Fatalf("pin rm of an unpinned CID: %q", res.stdout)
		}
		e := jsonObject[core.Error](t, js.fails(2, "pin", "rm", unpinnedCid).stdout)
		if e.Code != 404 || e.Message != "pin is not part of the pinset" {
			t.Fatalf("json error: %+v", e)
		}
	})

	t.Run("debug pin add", func(t *testing.T) {
		res := ctl.ok("--debug", "pin", "add", "--name", "dbg", helloV0)
		mustMatch(t, statusLine(peername, "PINNED"), res.stdout)
		// Every line of the debug log:
		// "<time>\tDEBUG\t<logger>\t<folder>/<file>.go:<line>\t<message>".
		lineRE := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[^\t]*\tDEBUG\t(cluster-ctl|apiclient)\t[\w.-]+/\w+\.go:\d+\t`)
		for _, l := range lines(res.stderr) {
			if l != "" && !lineRE.MatchString(l) {
				t.Errorf("debug line %q", l)
			}
		}
		// Without the caller column, the lines IPFS Cluster's client logs.
		callers := regexp.MustCompile(`\t[\w.-]+/\w+\.go:\d+\t`)
		stripped := func(s string) string { return callers.ReplaceAllString(s, "\t") }
		mustContain(t, stripped(res.stderr),
			"\tDEBUG\tcluster-ctl\tdebug level enabled\n",
			"\tDEBUG\tapiclient\tretrying 1 times\n",
			"\tDEBUG\tapiclient\tPOST: "+d.URL+"/pins/ipfs/"+helloV0+"?mode=recursive&name=dbg&replication-max=0&replication-min=0&shard-size=0&user-allocations=\n",
			"\tDEBUG\tapiclient\tResponse body: {\"replication_factor_min\":",
			`"name":"dbg"`,
			`"cid":"`+helloV0+`"`,
			"\tDEBUG\tapiclient\tGET: "+d.URL+"/pins/"+helloV0+"?local=false\n",
			"\tDEBUG\tapiclient\tResponse body: {\"cid\":\""+helloV0+"\"",
		)
		// A successful stream logs its request only.
		res = ctl.ok("--debug", "status")
		mustContain(t, res.stderr, "GET: "+d.URL+"/pins?local=false&filter=&cids=\n")
		if strings.Contains(res.stderr, "Response body") {
			t.Errorf("stream items in the debug log:\n%s", res.stderr)
		}
		// An add logs its request, not the data.
		res = ctl.ok("--debug", "add", hello)
		mustContain(t, res.stderr, "POST: "+d.URL+"/add?chunker=size-262144&cid-version=0&format=unixfs&hash=sha2-256&hidden=false&layout=&local=false&mode=recursive&name=&no-pin=false&nocopy=false&progress=false&raw-leaves=false&recursive=false&replication-max=0&replication-min=0&shard=false&shard-size=104857600&stream-channels=true&user-allocations=&wrap-with-directory=false\n")
		if strings.Contains(res.stderr, "hello\n\n") || strings.Contains(res.stderr, "Request body") {
			t.Errorf("file data in the debug log:\n%s", res.stderr)
		}
	})

	t.Run("status", func(t *testing.T) {
		// The last add of hello.txt re-pinned it without a name.
		out := ctl.ok("status", helloV0).stdout
		if !strings.HasPrefix(out, helloV0+":\n") {
			t.Fatalf("status:\n%s", out)
		}
		mustMatch(t, statusLine(peername, "PINNED"), out)
		gpi := jsonObject[core.GlobalPinInfo](t, js.ok("status", "--local", helloV0).stdout)
		if len(gpi.PeerMap) != 1 || gpi.PeerMap[self].Status != core.TrackerStatusPinned {
			t.Fatalf("json status --local: %+v", gpi)
		}
		two := jsonObjects[core.GlobalPinInfo](t, js.ok("status", helloV0, unpinnedCid).stdout)
		if len(two) != 2 {
			t.Fatalf("status of two CIDs: %d items", len(two))
		}
		mustMatch(t, statusLine(peername, "UNPINNED"), ctl.ok("status", unpinnedCid).stdout)
		all := jsonObjects[core.GlobalPinInfo](t, js.ok("status", "--filter", "pinned").stdout)
		if len(all) < 3 {
			t.Fatalf("status --filter pinned: %d items", len(all))
		}
		for _, g := range all {
			if g.PeerMap[self].Status != core.TrackerStatusPinned {
				t.Fatalf("status --filter pinned listed %+v", g)
			}
		}
		if out := ctl.ok("status", "--local", "--filter", "error,pin_queued").stdout; out != "" {
			t.Fatalf("status --filter error (none):\n%s", out)
		}
		out = ctl.ok("status").stdout
		mustContain(t, out, helloV0+":\n", "    > "+peername)
		ctl.fails(1, "status", "--filter", "bogus")
		ctl.fails(1, "status", "notacid")
	})

	t.Run("recover and sync", func(t *testing.T) {
		mustMatch(t, statusLine(peername, "PINNED"), ctl.ok("recover", helloV0).stdout)
		gpi := jsonObject[core.GlobalPinInfo](t, js.ok("recover", "--local", helloV0).stdout)
		if gpi.PeerMap[self].Status != core.TrackerStatusPinned {
			t.Fatalf("json recover: %+v", gpi)
		}
		for _, args := range [][]string{{"recover"}, {"recover", ""}} {
			if out := ctl.ok(args...).stdout; out != "" {
				t.Fatalf("%q with nothing to recover:\n%s", args, out)
			}
		}
		ctl.ok("recover", "--local")
		mustMatch(t, statusLine(peername, "PINNED"), ctl.ok("sync", helloV0).stdout)
		synced := jsonObjects[core.GlobalPinInfo](t, js.ok("sync").stdout)
		if len(synced) < 3 {
			t.Fatalf("sync: %d items", len(synced))
		}
		if local := jsonObjects[core.GlobalPinInfo](t, js.ok("sync", "--local").stdout); len(local) != len(synced) {
			t.Fatalf("sync --local: %d items", len(local))
		}
		ctl.fails(1, "recover", helloV0, helloV1)
	})

	t.Run("health", func(t *testing.T) {
		out := ctl.ok("health", "graph").stdout
		checkDot(t, out)
		mustContain(t, out, "C0 -> I0", self)
		graphFile := filepath.Join(t.TempDir(), "g.dot")
		if out := ctl.ok("health", "graph", "--all-ipfs-peers", "-f", graphFile).stdout; out != "" {
			t.Fatalf("health graph -f printed %q", out)
		}
		data, err := os.ReadFile(graphFile)
		if err != nil {
			t.Fatal(err)
		}
		checkDot(t, string(data))
		g := jsonObject[core.ConnectGraph](t, js.ok("health", "graph").stdout)
		if g.ClusterID.String() != self {
			t.Fatalf("json graph %+v", g)
		}

		names := lines(ctl.ok("health", "metrics").stdout)
		if again := lines(ctl.ok("health", "metrics", "").stdout); !slices.Equal(again, names) {
			t.Fatalf("health metrics '': %v, want %v", again, names)
		}
		if !strings.Contains(strings.Join(names, ","), "freespace") {
			t.Fatalf("health metrics: %v", names)
		}
		if jn := jsonObject[[]string](t, js.ok("health", "metrics").stdout); len(jn) != len(names) {
			t.Fatalf("json metric names %v", jn)
		}
		out = ctl.ok("health", "metrics", "freespace").stdout
		mustMatch(t, regexp.MustCompile(`^`+self+` \| freespace: [\d.]+ [kMGTP]?B \| Expires in: .+\n$`), out)
		ms := jsonObject[[]core.Metric](t, js.ok("health", "metrics", "freespace").stdout)
		if len(ms) != 1 || ms[0].Name != "freespace" || ms[0].Peer.String() != self {
			t.Fatalf("json metrics %+v", ms)
		}

		ctl.ok("health", "alerts")
		if alerts := jsonObject[[]core.Alert](t, js.ok("health", "alerts").stdout); alerts == nil {
			t.Fatalf("json alerts: nil")
		}
		mustContain(t, ctl.ok("health", "bandwidth").stdout, "Bandwidth statistics are not available")
		if out := js.ok("health", "bandwidth").stdout; out != "null\n" {
			t.Fatalf("json bandwidth %q", out)
		}
		ctl.fails(1, "health", "nonsense")
	})

	t.Run("ipfs gc", func(t *testing.T) {
		out := ctl.ok("ipfs", "gc").stdout
		if !strings.HasPrefix(out, fmt.Sprintf("%-15s\n  > CIDs:\n", peername)) {
			t.Fatalf("ipfs gc:\n%s", out)
		}
		gc := jsonObject[core.GlobalRepoGC](t, js.ok("ipfs", "gc", "--local").stdout)
		if _, ok := gc.PeerMap[self]; !ok || len(gc.PeerMap) != 1 {
			t.Fatalf("json ipfs gc --local %+v", gc)
		}
	})

	t.Run("plugins", func(t *testing.T) {
		out := ctl.ok("plugins", "ls").stdout
		for _, kind := range []string{"consensus raft", "allocator balanced", "pin_tracker stateless", "ipfs_connector embedded"} {
			mustMatch(t, regexp.MustCompile(`(?m)^`+kind+` \S+ \(protocol 1, built-in\): running, pid \d+, up \S+, 0 restarts$`), out)
		}
		infos := jsonObject[[]core.PluginInfo](t, js.ok("plugins", "ls").stdout)
		if len(infos) != 4 {
			t.Fatalf("json plugins ls: %+v", infos)
		}
		for _, p := range infos {
			if p.State != core.PluginRunning || p.Pid == 0 || p.ProtocolVersion != 1 {
				t.Fatalf("json plugins ls: %+v", p)
			}
		}
		// service.json did not change: reloading changes nothing.
		out = ctl.ok("plugins", "reload").stdout
		mustContain(t, out, "allocator: unchanged (balanced)\n", "consensus: unchanged (raft)\n")
		results := jsonObject[[]core.PluginReload](t, js.ok("plugins", "reload").stdout)
		if len(results) != 4 || results[0].Result != core.PluginReloadUnchanged {
			t.Fatalf("json plugins reload: %+v", results)
		}
		ctl.fails(1, "plugins", "ls", "extra")
	})

	t.Run("misuse", func(t *testing.T) {
		res := ctl.fails(1, "nosuchcommand")
		mustContain(t, res.stderr, `unknown command "nosuchcommand"`)
		ctl.fails(1, "--enc=yaml", "version")
		ctl.fails(1, "id", "extra")
		ctl.fails(1, "pin", "add", "--nosuchflag", helloV0)
		ctl.fails(1, "pin", "nosuchsub")
		out := ctl.ok("commands").stdout
		mustContain(t, out, "pincluster-ctl pin add\n", "pincluster-ctl health graph\n", "pincluster-ctl sync\n")
		mustContain(t, ctl.ok("help").stdout, "COMMANDS:", "--basic-auth")
		mustContain(t, ctl.ok("pin", "add", "--help").stdout, "--replication-min value, --rmin value")
	})

	t.Run("url host and env", func(t *testing.T) {
		r := runner{t: t}.with("--host", d.URL)
		if out := r.ok("version").stdout; out != core.SoftwareVersion+"\n" {
			t.Fatalf("version over a URL host: %q", out)
		}
		// Credentials with an http:// URL: sent over plain HTTP with a
		// warning (the daemon has no auth configured and ignores them).
		res := r.withEnv("CLUSTER_CREDENTIALS=user:pass").ok("version")
		mustContain(t, res.stderr, "WARN", "plain HTTP")
	})
}

// checkDot validates a DOT graph: with graphviz when it is installed,
// otherwise structurally.
func checkDot(t testing.TB, dot string) {
	t.Helper()
	if !strings.HasPrefix(dot, "digraph cluster {\n") || !strings.HasSuffix(dot, "}\n") ||
		strings.Count(dot, "{") != strings.Count(dot, "}") || strings.Count(dot, `"`)%2 != 0 {
		t.Fatalf("malformed DOT:\n%s", dot)
	}
	for _, l := range lines(dot) {
		l = strings.TrimSpace(l)
		ok := l == "" || strings.HasPrefix(l, "/*") || strings.HasPrefix(l, "digraph ") || strings.HasPrefix(l, "subgraph ") ||
			l == "}" || strings.HasSuffix(l, "]") || regexp.MustCompile(`^[CI]\d+ -> [CI]\d+$`).MatchString(l) ||
			regexp.MustCompile(`^\w+=("[^"]*"|\w+)$`).MatchString(l)
		if !ok {
			t.Fatalf("unexpected DOT line %q:\n%s", l, dot)
		}
	}
	dotBin, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and graphviz (dot) is not installed: %v", err)
		}
		t.Logf("graphviz is not installed: DOT checked structurally only")
		return
	}
	cmd := exec.Command(dotBin, "-Tsvg")
	cmd.Stdin = strings.NewReader(dot)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "<svg") {
		t.Fatalf("dot -Tsvg rejected the graph: %v\n%s\n%s", err, out, dot)
	}
}

// TestUnreachable checks the message and exit code when no daemon
// listens.
func TestUnreachable(t *testing.T) {
	port := closedPort(t)
	ctl := runner{t: t}.with("--host", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	for _, args := range [][]string{{"id"}, {"pin", "add", helloV0}, {"status"}, {"add", "-"}} {
		res := ctl.withStdin("data").fails(1, args...)
		// Printed as ipfs-cluster-ctl prints its client's transport
		// errors: code 0, on standard output.
		want := fmt.Sprintf("An error occurred:\n  Code: 0\n  Message: cannot reach the pincluster peer at http://127.0.0.1:%d: connection refused — is the daemon running?\n", port)
		if res.stdout != want || res.stderr != "" {
			t.Fatalf("%v:\n%s", args, res)
		}
	}
	res := runner{t: t}.fails(1, "--host", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX", "id")
	mustContain(t, res.stderr, "libp2p")
}
