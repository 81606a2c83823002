package embedded

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

func rawBlock(t testing.TB, data []byte) core.Block {
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return core.Block{Cid: core.NewCid(cid.NewCidV1(cid.Raw, mh)), Data: data}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// dirWithFile builds a UnixFS directory holding one raw-leaf file named name.
func dirWithFile(t testing.TB, name string) (dir, file core.Block) {
	file = rawBlock(t, randomBytes(100))
	nd := merkledag.NodeWithData(unixfs.FolderPBData())
	if err := nd.AddRawLink(name, &format.Link{Cid: file.Cid.Cid, Size: 100}); err != nil {
		t.Fatal(err)
	}
	return core.Block{Cid: core.NewCid(nd.Cid()), Data: nd.RawData()}, file
}

func collectResults(t testing.TB, seq func(func(core.IPFSPinResult, error) bool)) map[string]string {
	t.Helper()
	out := map[string]string{}
	for r, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out[r.Cid.String()] = r.Error
	}
	return out
}

// exercise runs the connector behaviour the core relies on.
func exercise(t *testing.T, c core.IPFSConnector) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	id, err := c.ID(ctx)
	if err != nil || id.ID == "" {
		t.Fatalf("ID: %+v %v", id, err)
	}
	dir, file := dirWithFile(t, "f.bin")
	loose := rawBlock(t, randomBytes(10))
	if err := c.BlockPut(ctx, []core.Block{file, dir, loose}); err != nil {
		t.Fatal(err)
	}
	bad := rawBlock(t, []byte("x"))
	bad.Data = []byte("y")
	if err := c.BlockPut(ctx, []core.Block{bad}); err == nil {
		t.Fatal("a block that does not match its CID was stored")
	}
	data, err := c.BlockGet(ctx, file.Cid)
	if err != nil || len(data) != 100 {
		t.Fatalf("BlockGet: %d %v", len(data), err)
	}

	missing := rawBlock(t, randomBytes(10)).Cid
	res := collectResults(t, c.Pin(ctx, []core.IPFSPinRequest{
		{Cid: dir.Cid, MaxDepth: -1},
		{Cid: loose.Cid, MaxDepth: 0},
		{Cid: missing, MaxDepth: -1, Timeout: 300 * time.Millisecond},
	}))
	if len(res) != 3 || res[dir.Cid.String()] != "" || res[loose.Cid.String()] != "" || res[missing.String()] == "" {
		t.Fatalf("pin results %v", res)
	}

	infos, err := c.PinLsCids(ctx, []core.Cid{dir.Cid, loose.Cid, file.Cid, missing})
	if err != nil {
		t.Fatal(err)
	}
	want := []core.IPFSPinStatus{core.IPFSPinStatusRecursive, core.IPFSPinStatusDirect, core.IPFSPinStatusUnpinned, core.IPFSPinStatusUnpinned}
	for i, w := range want {
		if infos[i].Type != w || !infos[i].Cid.Equals([]core.Cid{dir.Cid, loose.Cid, file.Cid, missing}[i]) {
			t.Fatalf("PinLsCids[%d] = %+v, want %s", i, infos[i], w)
		}
	}
	all, err := core.Collect(c.PinLs(ctx))
	if err != nil || len(all) != 2 {
		t.Fatalf("PinLs: %+v %v", all, err)
	}

	resolved, err := c.Resolve(ctx, "/ipfs/"+dir.Cid.String()+"/f.bin")
	if err != nil || !resolved.Equals(file.Cid) {
		t.Fatalf("Resolve: %s %v", resolved, err)
	}
	if _, err := c.Resolve(ctx, "/ipfs/"+dir.Cid.String()+"/nope"); err == nil {
		t.Fatal("resolving a missing name succeeded")
	}

	st, err := c.RepoStat(ctx)
	if err != nil || st.StorageMax == 0 || st.NumObjects < 3 {
		t.Fatalf("RepoStat: %+v %v", st, err)
	}

	res = collectResults(t, c.Unpin(ctx, []core.Cid{loose.Cid, missing}))
	if res[loose.Cid.String()] != "" || res[missing.String()] != "" {
		t.Fatalf("unpin results %v", res)
	}
	removed, err := core.Collect(c.RepoGC(ctx))
	if err != nil || len(removed) != 1 || !removed[0].Key.Equals(loose.Cid) {
		t.Fatalf("RepoGC removed %+v %v", removed, err)
	}
	if _, err := c.BlockGet(ctx, file.Cid); err != nil {
		t.Fatalf("gc removed a pinned block: %v", err)
	}

	v, err := c.ConfigKey(ctx, "storage_max")
	if err != nil || string(v) == "" {
		t.Fatalf("ConfigKey: %s %v", v, err)
	}
	peers, err := c.SwarmPeers(ctx)
	if err != nil || len(peers) != 0 {
		t.Fatalf("SwarmPeers: %v %v", peers, err)
	}
}

func TestInProcess(t *testing.T) {
	c := New()
	if err := c.Configure(context.Background(), nil, sdktest.Environment(t), nil); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	exercise(t, c)
}

func TestThroughGRPC(t *testing.T) {
	exercise(t, sdktest.ConnectIPFSConnector(t, New(), nil, nil))
}

func TestPinsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	env := sdktest.Environment(t)
	c := New()
	if err := c.Configure(ctx, nil, env, nil); err != nil {
		t.Fatal(err)
	}
	id1, _ := c.ID(ctx)
	b := rawBlock(t, randomBytes(64))
	if err := c.BlockPut(ctx, []core.Block{b}); err != nil {
		t.Fatal(err)
	}
	collectResults(t, c.Pin(ctx, []core.IPFSPinRequest{{Cid: b.Cid, MaxDepth: -1}}))
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c2 := New()
	if err := c2.Configure(ctx, nil, env, nil); err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	id2, _ := c2.ID(ctx)
	if id1.ID != id2.ID {
		t.Fatalf("node identity changed across restarts: %s then %s", id1.ID, id2.ID)
	}
	infos, err := c2.PinLsCids(ctx, []core.Cid{b.Cid})
	if err != nil || infos[0].Type != core.IPFSPinStatusRecursive {
		t.Fatalf("pin lost: %+v %v", infos, err)
	}
}

func TestConfig(t *testing.T) {
	for _, bad := range []string{`{"storage_max":0}`, `{"pin_timeout":"x"}`, `{"pin_concurrency":0}`, `{"what":1}`} {
		if _, err := parseConfig(json.RawMessage(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	var cfg Config
	desc, _ := New().Describe(context.Background())
	if err := json.Unmarshal(desc.DefaultConfig, &cfg); err != nil || cfg.PinConcurrency != 16 {
		t.Fatalf("default config %s: %v", desc.DefaultConfig, err)
	}
	if err := New().Configure(context.Background(), nil, core.Environment{}, nil); err == nil || !strings.Contains(err.Error(), "data folder") {
		t.Fatalf("configure without a data folder: %v", err)
	}
}

func BenchmarkPinBatch(b *testing.B) {
	ctx := context.Background()
	c := New()
	if err := c.Configure(ctx, nil, sdktest.Environment(b), nil); err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	const batch = 256
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		blks := make([]core.Block, batch)
		reqs := make([]core.IPFSPinRequest, batch)
		for j := range blks {
			blks[j] = rawBlock(b, randomBytes(32))
			reqs[j] = core.IPFSPinRequest{Cid: blks[j].Cid, MaxDepth: -1}
		}
		if err := c.BlockPut(ctx, blks); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for r, err := range c.Pin(ctx, reqs) {
			if err != nil || r.Error != "" {
				b.Fatal(err, r.Error)
			}
		}
	}
}
