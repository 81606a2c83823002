package network

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
)

// fakeServices plays the orchestrator, tracker and IPFS connector of one
// peer.
type fakeServices struct {
	self peer.ID
	// gcKeys are the keys RepoGC removes.
	gcKeys []core.Cid
	infos  []core.PinInfo

	mu      sync.Mutex
	added   []PeerAddRequest
	addedBy []peer.ID
	removed []peer.ID
	blocks  []core.Block
}

func (f *fakeServices) ID(ctx context.Context) (core.ID, error) {
	return core.ID{ID: f.self, Version: core.SoftwareVersion, RPCProtocolVersion: string(ProtocolID), Peername: "fake"}, nil
}

func (f *fakeServices) PeerAdd(ctx context.Context, req PeerAddRequest) (core.ID, error) {
	from, _ := RemotePeer(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = append(f.added, req)
	f.addedBy = append(f.addedBy, from)
	return core.ID{ID: req.Peer}, nil
}

func (f *fakeServices) PeerRemove(ctx context.Context, p peer.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, p)
	return nil
}

// Write echoes each pin with its preset (or this peer) as allocations; it
// refuses unpins (not found) and pins named "busy" (a core.Error).
func (f *fakeServices) Write(ctx context.Context, ops []WriteOp) ([]WriteResult, error) {
	out := make([]WriteResult, len(ops))
	for i, op := range ops {
		switch {
		case op.Remove:
			out[i] = NewWriteResult(core.Pin{}, core.ErrPinNotFound)
		case op.Pin.Name == "busy":
			out[i] = NewWriteResult(core.Pin{}, &core.Error{Code: 503, Message: "busy"})
		default:
			p := op.Pin
			p.Allocations = op.Preset
			if p.Allocations == nil {
				p.Allocations = []peer.ID{f.self}
			}
			out[i] = NewWriteResult(p, nil)
		}
	}
	return out, nil
}

func (f *fakeServices) find(cids []core.Cid, status core.TrackerStatus) ([]core.PinInfo, error) {
	out := make([]core.PinInfo, 0, len(cids))
	for _, c := range cids {
		i := slices.IndexFunc(f.infos, func(pi core.PinInfo) bool { return pi.Cid.Equals(c) })
		if i < 0 {
			return nil, core.ErrPinNotFound
		}
		pi := f.infos[i]
		pi.Status = status
		out = append(out, pi)
	}
	return out, nil
}

func (f *fakeServices) Status(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return f.find(cids, core.TrackerStatusPinned)
}

func (f *fakeServices) StatusAll(ctx context.Context, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error] {
	return func(yield func(core.PinInfo, error) bool) {
		for _, pi := range f.infos {
			if pi.Status.Match(filter) && !yield(pi, nil) {
				return
			}
		}
	}
}

func (f *fakeServices) Recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return f.find(cids, core.TrackerStatusPinQueued)
}

func (f *fakeServices) RecoverAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	return core.SliceSeq(f.infos[:1])
}

func (f *fakeServices) Sync(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return f.find(cids, core.TrackerStatusUnexpectedlyUnpinned)
}

func (f *fakeServices) SyncAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	return core.ErrSeq[core.PinInfo](errors.New("ipfs is down"))
}

func (f *fakeServices) IPFSID(ctx context.Context) (core.IPFSID, error) {
	return core.IPFSID{ID: f.self, Addresses: []string{"/ip4/127.0.0.1/tcp/4001"}}, nil
}

func (f *fakeServices) BlockPut(ctx context.Context, blocks []core.Block) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocks = append(f.blocks, blocks...)
	return nil
}

// SwarmPeers answers one made-up IPFS peer named after the peer.
// RepoGC streams the keys of gcKeys, then fails when the peer has no IPFS
// node.
func (f *fakeServices) RepoGC(ctx context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	return func(yield func(core.IPFSRepoGCKey, error) bool) {
		for _, k := range f.gcKeys {
			if !yield(core.IPFSRepoGCKey{Key: k}, nil) {
				return
			}
		}
		if f.self == "" {
			yield(core.IPFSRepoGCKey{}, errors.New("no IPFS node"))
		}
	}
}

func (f *fakeServices) SwarmPeers(ctx context.Context) ([]core.PeerID, error) {
	if f.self == "" {
		return nil, errors.New("no IPFS node")
	}
	return []core.PeerID{f.self}, nil
}

// ipfsSide adapts fakeServices to IPFSService, whose ID answers core.IPFSID.
type ipfsSide struct{ *fakeServices }

func (s ipfsSide) ID(ctx context.Context) (core.IPFSID, error) { return s.IPFSID(ctx) }

func startServices(t *testing.T, n int) ([]testPeer, []*fakeServices) {
	peers := startCluster(t, n)
	fakes := make([]*fakeServices, n)
	for i, p := range peers {
		infos := pinInfos(t, p.ID(), 50)
		infos[1].Status = core.TrackerStatusPinError
		fakes[i] = &fakeServices{self: p.ID(), infos: infos}
		if err := errors.Join(
			RegisterCluster(p.rpc, fakes[i]),
			RegisterTracker(p.rpc, fakes[i]),
			RegisterIPFS(p.rpc, ipfsSide{fakes[i]}),
		); err != nil {
			t.Fatal(err)
		}
	}
	if err := RegisterCluster(peers[0].rpc, fakes[0]); err == nil {
		t.Fatal("the cluster service was registered twice")
	}
	return peers, fakes
}

// TestWriteRoundTrip checks that a forwarded write keeps every pin option,
// tells no preset from an empty one, and brings errors back with their
// status or sentinel.
func TestWriteRoundTrip(t *testing.T) {
	peers, _ := startServices(t, 2)
	ctx := ctxT(t)
	to := peers[1].ID()
	expire := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	full := core.Pin{
		PinOptions: core.PinOptions{
			ReplicationFactorMin: 2, ReplicationFactorMax: 3, Name: "n", Mode: core.PinModeDirect,
			UserAllocations: []peer.ID{peers[0].ID()}, ExpireAt: expire,
			Metadata: map[string]string{"k": "v"}, Origins: []string{"/ip4/127.0.0.1/tcp/4001"},
		},
		Cid: testCid(t, 1), Type: core.DataType, MaxDepth: 0,
	}
	ops := []WriteOp{
		{Pin: full},
		{Pin: core.Pin{Cid: testCid(t, 2), MaxDepth: -1}, Preset: []peer.ID{}},
		{Remove: true, Pin: core.Pin{Cid: testCid(t, 3)}},
		{Pin: core.Pin{Cid: testCid(t, 4), PinOptions: core.PinOptions{Name: "busy"}}},
	}
	res, err := peers[0].rpc.Client().Write(ctx, to, ops)
	if err != nil || len(res) != len(ops) {
		t.Fatalf("Write: %+v %v", res, err)
	}
	got := res[0].Pin
	if res[0].Err() != nil || !got.Cid.Equals(full.Cid) || got.Name != "n" || got.Mode != core.PinModeDirect ||
		got.ReplicationFactorMin != 2 || got.ReplicationFactorMax != 3 || !got.ExpireAt.Equal(expire) ||
		got.Metadata["k"] != "v" || !slices.Equal(got.UserAllocations, full.UserAllocations) ||
		!slices.Equal(got.Origins, full.Origins) || got.PinUpdate.Defined() || !slices.Equal(got.Allocations, []peer.ID{to}) {
		t.Fatalf("pin came back as %+v (%v)", got, res[0].Err())
	}
	if res[1].Err() != nil || res[1].Pin.MaxDepth != -1 || len(res[1].Pin.Allocations) != 0 {
		t.Fatalf("an empty preset came back as %+v (%v)", res[1].Pin, res[1].Err())
	}
	if err := res[2].Err(); !errors.Is(err, core.ErrPinNotFound) {
		t.Fatalf("unpin: %v", err)
	}
	var ce core.Error
	if err := res[3].Err(); !errors.As(err, &ce) || ce.Code != 503 || ce.Message != "busy" {
		t.Fatalf("busy: %#v", err)
	}
}

func TestTypedServices(t *testing.T) {
	peers, fakes := startServices(t, 3)
	c := peers[0].rpc.Client()
	ctx := ctxT(t)
	for i, p := range peers {
		to := p.ID()
		id, err := c.ID(ctx, to)
		if err != nil || id.ID != to || id.Peername != "fake" {
			t.Fatalf("ID of %s: %+v %v", to, id, err)
		}
		ipfs, err := c.IPFSID(ctx, to)
		if err != nil || ipfs.ID != to || len(ipfs.Addresses) != 1 {
			t.Fatalf("IPFSID of %s: %+v %v", to, ipfs, err)
		}

		cids := []core.Cid{fakes[i].infos[3].Cid, fakes[i].infos[0].Cid}
		st, err := c.Status(ctx, to, cids)
		if err != nil || len(st) != 2 || !st[0].Cid.Equals(cids[0]) || st[0].Peer != to || st[1].Status != core.TrackerStatusPinned {
			t.Fatalf("Status on %s: %+v %v", to, st, err)
		}
		one, err := c.StatusCid(ctx, to, cids[0])
		if err != nil || !one.Cid.Equals(cids[0]) {
			t.Fatalf("StatusCid on %s: %+v %v", to, one, err)
		}
		if _, err := c.StatusCid(ctx, to, testCid(t, 999)); !errors.Is(err, core.ErrPinNotFound) {
			t.Fatalf("status of an unknown CID: %v", err)
		}
		rec, err := c.Recover(ctx, to, cids[:1])
		if err != nil || len(rec) != 1 || rec[0].Status != core.TrackerStatusPinQueued {
			t.Fatalf("Recover on %s: %+v %v", to, rec, err)
		}
		syn, err := c.Sync(ctx, to, cids[:1])
		if err != nil || len(syn) != 1 || syn[0].Status != core.TrackerStatusUnexpectedlyUnpinned {
			t.Fatalf("Sync on %s: %+v %v", to, syn, err)
		}

		all, err := core.Collect(c.StatusAll(ctx, to, 0))
		if err != nil || len(all) != 50 {
			t.Fatalf("StatusAll on %s: %d %v", to, len(all), err)
		}
		errored, err := core.Collect(c.StatusAll(ctx, to, core.TrackerStatusError))
		if err != nil || len(errored) != 1 || !errored[0].Cid.Equals(fakes[i].infos[1].Cid) {
			t.Fatalf("StatusAll(error) on %s: %+v %v", to, errored, err)
		}
		recAll, err := core.Collect(c.RecoverAll(ctx, to))
		if err != nil || len(recAll) != 1 {
			t.Fatalf("RecoverAll on %s: %+v %v", to, recAll, err)
		}
		if _, err := core.Collect(c.SyncAll(ctx, to)); !IsRemote(err) || !errors.Is(err, errors.New("ipfs is down")) {
			t.Fatalf("SyncAll on %s: %v", to, err)
		}

		req := PeerAddRequest{Peer: peers[2].ID(), ConsensusAddress: "/p2p/" + peers[2].ID().String()}
		added, err := c.PeerAdd(ctx, to, req)
		if err != nil || added.ID != req.Peer {
			t.Fatalf("PeerAdd on %s: %+v %v", to, added, err)
		}
		if err := c.PeerRemove(ctx, to, peers[1].ID()); err != nil {
			t.Fatal(err)
		}
		f := fakes[i]
		f.mu.Lock()
		if len(f.added) != 1 || f.added[0] != req || f.addedBy[0] != peers[0].ID() || !slices.Equal(f.removed, []peer.ID{peers[1].ID()}) {
			t.Fatalf("%s saw adds %+v by %v, removals %v", to, f.added, f.addedBy, f.removed)
		}
		f.mu.Unlock()
	}

	ids, errs := c.IDs(ctx, []peer.ID{peers[1].ID(), peers[2].ID()})
	if errs[0] != nil || errs[1] != nil || ids[0].ID != peers[1].ID() || ids[1].ID != peers[2].ID() {
		t.Fatalf("IDs: %+v %v", ids, errs)
	}
}

func TestSwarmPeers(t *testing.T) {
	peers, _ := startServices(t, 3)
	ids := []peer.ID{peers[0].ID(), peers[1].ID(), peers[2].ID()}
	swarms, errs := peers[0].rpc.Client().SwarmPeers(ctxT(t), ids)
	for i := range ids {
		if errs[i] != nil || len(swarms[i]) != 1 || swarms[i][0] != ids[i] {
			t.Fatalf("peer %d: %v %v", i, swarms[i], errs[i])
		}
	}
}

func TestRepoGC(t *testing.T) {
	peers, fakes := startServices(t, 2)
	for _, f := range fakes {
		f.gcKeys = []core.Cid{testCid(t, 1), testCid(t, 2)}
	}
	fakes[1].self = "" // its GC fails after the keys
	c := peers[0].rpc.Client()
	for i, p := range peers {
		var keys []core.IPFSRepoGCKey
		var gcErr error
		for k, err := range c.RepoGC(ctxT(t), p.ID()) {
			if err != nil {
				gcErr = err
				break
			}
			keys = append(keys, k)
		}
		if len(keys) != 2 || (i == 1) != (gcErr != nil) {
			t.Fatalf("peer %d: %d keys, %v", i, len(keys), gcErr)
		}
		if i == 1 && !strings.Contains(gcErr.Error(), "no IPFS node") {
			t.Fatalf("peer %d: %v", i, gcErr)
		}
	}
}

func TestBlockPut(t *testing.T) {
	peers, fakes := startServices(t, 2)
	c := peers[0].rpc.Client()
	blocks := make([]core.Block, 8)
	for i := range blocks {
		blocks[i] = core.Block{Cid: testCid(t, i), Data: bytes.Repeat([]byte{byte(i)}, 256<<10)}
	}
	for i, p := range peers {
		if err := c.BlockPut(ctxT(t), p.ID(), blocks); err != nil {
			t.Fatal(err)
		}
		f := fakes[i]
		f.mu.Lock()
		if len(f.blocks) != len(blocks) {
			t.Fatalf("%d blocks stored", len(f.blocks))
		}
		for j, b := range f.blocks {
			if !b.Cid.Equals(blocks[j].Cid) || !bytes.Equal(b.Data, blocks[j].Data) {
				t.Fatalf("block %d changed on the way to %s", j, p.ID())
			}
		}
		f.mu.Unlock()
	}
}
