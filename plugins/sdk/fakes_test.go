package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pincluster/pincluster/core"
)

// Small in-memory implementations of every kind and of the Host, used to
// check that each call crosses the adapters intact.

// base records the calls of the Plugin interface.
type base struct {
	desc core.Description

	mu         sync.Mutex
	cfg        json.RawMessage
	env        core.Environment
	host       core.Host
	configures int
	closes     int
}

func (b *base) Describe(context.Context) (core.Description, error) { return b.desc, nil }

func (b *base) Configure(_ context.Context, cfg json.RawMessage, env core.Environment, host core.Host) error {
	if string(cfg) == `{"fail":true}` {
		return errors.New("invalid configuration: fail is true")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cfg, b.env, b.host = cfg, env, host
	b.configures++
	return nil
}

func (b *base) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closes++
	return nil
}

func (b *base) getHost() core.Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.host
}

func (b *base) closeCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closes
}

// endless yields items made by mk until the consumer stops, then closes
// stopped. It never looks at its context: only the adapter can stop it.
type endless struct {
	produced atomic.Int64
	stopped  chan struct{}
}

func newEndless() *endless { return &endless{stopped: make(chan struct{})} }

func endlessSeq[T any](e *endless, mk func(int) T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		defer close(e.stopped)
		for i := 0; ; i++ {
			e.produced.Add(1)
			if !yield(mk(i), nil) {
				return
			}
		}
	}
}

// failAfter yields n items made by mk, then err.
func failAfter[T any](n int, mk func(int) T, err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for i := range n {
			if !yield(mk(i), nil) {
				return
			}
		}
		var zero T
		yield(zero, err)
	}
}

// ---- Host (core side) ----

type fakeHost struct {
	mu         sync.Mutex
	pins       []core.Pin
	byCid      map[string]int
	ipfs       map[string]core.IPFSPinStatus
	failPin    map[string]string
	pinCalls   atomic.Int64
	unpinCalls atomic.Int64
	getCalls   atomic.Int64
	listEnd    *endless
	listCount  int
}

func newFakeHost(n int) *fakeHost {
	h := &fakeHost{byCid: map[string]int{}, ipfs: map[string]core.IPFSPinStatus{}, failPin: map[string]string{}}
	for i := range n {
		h.addPin(core.Pin{Cid: testCid(i), Type: core.DataType, MaxDepth: -1, PinOptions: core.PinOptions{Name: fmt.Sprint("host pin ", i)}})
	}
	return h
}

func (h *fakeHost) addPin(p core.Pin) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byCid[p.Cid.KeyString()] = len(h.pins)
	h.pins = append(h.pins, p)
}

func (h *fakeHost) GetPin(_ context.Context, c core.Cid) (core.Pin, error) {
	h.getCalls.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	i, ok := h.byCid[c.KeyString()]
	if !ok {
		return core.Pin{}, core.ErrPinNotFound
	}
	return h.pins[i], nil
}

func (h *fakeHost) ListPins(context.Context) iter.Seq2[core.Pin, error] {
	if h.listEnd != nil {
		return endlessSeq(h.listEnd, func(i int) core.Pin { return core.Pin{Cid: testCid(i)} })
	}
	h.mu.Lock()
	pins := slices.Clone(h.pins)
	h.mu.Unlock()
	return core.SliceSeq(pins)
}

func (h *fakeHost) Pin(_ context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	h.pinCalls.Add(1)
	return func(yield func(core.IPFSPinResult, error) bool) {
		for _, r := range reqs {
			h.mu.Lock()
			msg, fail := h.failPin[r.Cid.KeyString()]
			if !fail {
				st := core.IPFSPinStatusRecursive
				if r.MaxDepth == 0 {
					st = core.IPFSPinStatusDirect
				}
				h.ipfs[r.Cid.KeyString()] = st
			}
			h.mu.Unlock()
			if !yield(core.IPFSPinResult{Cid: r.Cid, Error: msg}, nil) {
				return
			}
		}
	}
}

func (h *fakeHost) Unpin(_ context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	h.unpinCalls.Add(1)
	return func(yield func(core.IPFSPinResult, error) bool) {
		for _, c := range cids {
			h.mu.Lock()
			delete(h.ipfs, c.KeyString())
			h.mu.Unlock()
			if !yield(core.IPFSPinResult{Cid: c}, nil) {
				return
			}
		}
	}
}

func (h *fakeHost) PinLs(context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	h.mu.Lock()
	var out []core.IPFSPinInfo
	for _, p := range h.pins {
		if st, ok := h.ipfs[p.Cid.KeyString()]; ok {
			out = append(out, core.IPFSPinInfo{Cid: p.Cid, Type: st})
		}
	}
	h.mu.Unlock()
	return core.SliceSeq(out)
}

func (h *fakeHost) PinLsCids(_ context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]core.IPFSPinInfo, len(cids))
	for i, c := range cids {
		out[i] = core.IPFSPinInfo{Cid: c, Type: h.ipfs[c.KeyString()]}
	}
	return out, nil
}

// ---- Consensus ----

type fakeConsensus struct {
	base
	mu       sync.Mutex
	pins     []core.Pin
	peers    []core.PeerID
	watchers map[chan core.PinEvent]struct{}
	watching chan struct{} // receives when a watcher subscribes
	listErr  error
	listEnd  *endless
}

func newFakeConsensus(peers []core.PeerID) *fakeConsensus {
	return &fakeConsensus{
		base:     base{desc: core.Description{Kind: core.KindConsensus, Name: "fake-consensus", Version: "0.1.0", ProtocolVersions: []int{1}}},
		peers:    peers,
		watchers: map[chan core.PinEvent]struct{}{},
		watching: make(chan struct{}, 100),
	}
}

func (c *fakeConsensus) AddPeer(_ context.Context, p core.PeerID, addr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peers = append(c.peers, p)
	return nil
}

func (c *fakeConsensus) Address(context.Context) (string, error) { return "fake-address", nil }

func (c *fakeConsensus) GetPins(ctx context.Context, cids []core.Cid) ([]core.Pin, error) {
	out := make([]core.Pin, len(cids))
	for i, ci := range cids {
		if p, err := c.GetPin(ctx, ci); err == nil {
			out[i] = p
		}
	}
	return out, nil
}

func (c *fakeConsensus) GetPin(_ context.Context, ci core.Cid) (core.Pin, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pins {
		if p.Cid.Equals(ci) {
			return p, nil
		}
	}
	if ci.Equals(testCid(-2)) {
		return core.Pin{}, fmt.Errorf("lookup %s: %w", ci, core.ErrPinNotFound)
	}
	return core.Pin{}, core.ErrPinNotFound
}

func (c *fakeConsensus) ListPins(context.Context) iter.Seq2[core.Pin, error] {
	if c.listEnd != nil {
		return endlessSeq(c.listEnd, func(i int) core.Pin { return core.Pin{Cid: testCid(i)} })
	}
	c.mu.Lock()
	pins := slices.Clone(c.pins)
	c.mu.Unlock()
	if c.listErr != nil {
		return failAfter(len(pins), func(i int) core.Pin { return pins[i] }, c.listErr)
	}
	return core.SliceSeq(pins)
}

func (c *fakeConsensus) Commit(_ context.Context, ops []core.PinOp) error {
	for _, op := range ops {
		if op.Pin.Name == "boom" {
			return errors.New("commit rejected: pin named boom")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, op := range ops {
		i := slices.IndexFunc(c.pins, func(p core.Pin) bool { return p.Cid.Equals(op.Pin.Cid) })
		switch {
		case op.Remove && i >= 0:
			c.pins = slices.Delete(c.pins, i, i+1)
		case !op.Remove && i >= 0:
			c.pins[i] = op.Pin
		case !op.Remove:
			c.pins = append(c.pins, op.Pin)
		}
	}
	for w := range c.watchers {
		w <- core.PinEvent{Ops: ops}
	}
	return nil
}

func (c *fakeConsensus) Watch(ctx context.Context) iter.Seq2[core.PinEvent, error] {
	return func(yield func(core.PinEvent, error) bool) {
		w := make(chan core.PinEvent, 10_000)
		c.mu.Lock()
		c.watchers[w] = struct{}{}
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			delete(c.watchers, w)
			c.mu.Unlock()
		}()
		c.watching <- struct{}{}
		for {
			select {
			case ev := <-w:
				if !yield(ev, nil) {
					return
				}
			case <-ctx.Done():
				yield(core.PinEvent{}, ctx.Err())
				return
			}
		}
	}
}

func (c *fakeConsensus) Peers(context.Context) ([]core.PeerID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.peers), nil
}

func (c *fakeConsensus) RemovePeer(_ context.Context, p core.PeerID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.peers, p)
	if i < 0 {
		return fmt.Errorf("peer %s is not in the peerset", p)
	}
	c.peers = slices.Delete(c.peers, i, i+1)
	return nil
}

func (c *fakeConsensus) Leader(ctx context.Context) (core.PeerID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.peers) == 0 {
		// No leader: wait for one until the caller gives up.
		c.mu.Unlock()
		<-ctx.Done()
		c.mu.Lock()
		return "", ctx.Err()
	}
	return c.peers[0], nil
}

// ---- Allocator ----

type fakeAllocator struct{ base }

func newFakeAllocator() *fakeAllocator {
	return &fakeAllocator{base{desc: core.Description{
		Kind: core.KindAllocator, Name: "fake-allocator", Version: "0.1.0",
		ProtocolVersions: []int{1}, DefaultConfig: json.RawMessage(`{"by":["freespace"]}`),
	}}}
}

// Allocate orders the peers by decreasing metric weight, skipping the
// current allocations.
func (a *fakeAllocator) Allocate(_ context.Context, req core.AllocateRequest) ([]core.AllocateResult, error) {
	if len(req.Pins) == 0 {
		return nil, errors.New("nothing to allocate")
	}
	ms := slices.Clone(req.Metrics)
	slices.SortStableFunc(ms, func(x, y core.Metric) int { return int(y.Weight - x.Weight) })
	out := make([]core.AllocateResult, len(req.Pins))
	for i, p := range req.Pins {
		var peers []core.PeerID
		for _, m := range ms {
			if len(peers) < p.Wanted && m.Valid && !slices.Contains(p.Current, m.Peer) {
				peers = append(peers, m.Peer)
			}
		}
		if len(peers) < p.Needed {
			out[i].Error = fmt.Sprintf("not enough peers to allocate %s: %d of %d", p.Cid, len(peers), p.Needed)
			continue
		}
		out[i].Peers = peers
	}
	return out, nil
}

// ---- Pin tracker ----

// fakeTracker keeps tracked pins in memory and uses the Host for the
// calls that need the pinset or the IPFS node.
type fakeTracker struct {
	base
	mu        sync.Mutex
	tracked   map[string]core.Pin
	untracked []core.Cid
	statusN   int
	statusEnd *endless
	trackN    atomic.Int64
}

func newFakeTracker() *fakeTracker {
	return &fakeTracker{
		base:    base{desc: core.Description{Kind: core.KindPinTracker, Name: "fake-tracker", Version: "0.1.0", ProtocolVersions: []int{1}}},
		tracked: map[string]core.Pin{},
	}
}

func (f *fakeTracker) self() core.PeerID {
	f.base.mu.Lock()
	defer f.base.mu.Unlock()
	return f.env.PeerID
}

func (f *fakeTracker) Track(_ context.Context, pins []core.Pin) error {
	f.trackN.Add(int64(len(pins)))
	if len(pins) > 0 && pins[0].Name == "fail" {
		return fmt.Errorf("queue full: %d pins refused", len(pins))
	}
	if len(pins) > 0 && pins[0].Name == "bench" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range pins {
		f.tracked[p.Cid.KeyString()] = p
	}
	return nil
}

// Untrack forgets the CIDs and unpins them through the host, if any.
func (f *fakeTracker) Untrack(ctx context.Context, cids []core.Cid) error {
	if host := f.getHost(); host != nil {
		for r, err := range host.Unpin(ctx, cids) {
			if err != nil {
				return err
			}
			if r.Error != "" {
				return errors.New(r.Error)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cids {
		delete(f.tracked, c.KeyString())
	}
	f.untracked = append(f.untracked, cids...)
	return nil
}

func (f *fakeTracker) Status(_ context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]core.PinInfo, len(cids))
	for i, c := range cids {
		out[i] = core.PinInfo{Cid: c, Peer: f.self(), PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusUnpinned}}
		if p, ok := f.tracked[c.KeyString()]; ok {
			out[i].Name = p.Name
			out[i].Allocations = p.Allocations
			out[i].Status = core.TrackerStatusPinQueued
		}
	}
	return out, nil
}

var statusItems = sync.OnceValue(func() []core.PinInfo {
	out := make([]core.PinInfo, bigStream)
	for i := range out {
		out[i] = makeStatusItem(i)
	}
	return out
})

func statusItem(i int) core.PinInfo {
	if s := statusItems(); i < len(s) {
		return s[i]
	}
	return makeStatusItem(i)
}

func makeStatusItem(i int) core.PinInfo {
	st := core.TrackerStatusPinned
	if i%3 == 0 {
		st = core.TrackerStatusPinError
	}
	return core.PinInfo{Cid: testCid(i), Name: fmt.Sprint("status ", i), PinInfoShort: core.PinInfoShort{Status: st, AttemptCount: i}}
}

func (f *fakeTracker) StatusAll(_ context.Context, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error] {
	if f.statusEnd != nil {
		return endlessSeq(f.statusEnd, statusItem)
	}
	return func(yield func(core.PinInfo, error) bool) {
		for i := range f.statusN {
			pi := statusItem(i)
			if pi.Status.Match(filter) && !yield(pi, nil) {
				return
			}
		}
	}
}

// Recover pins the CIDs through the host, after reading them from the
// pinset through the host.
func (f *fakeTracker) Recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	host := f.getHost()
	if host == nil {
		return nil, errors.New("no host")
	}
	var reqs []core.IPFSPinRequest
	out := make([]core.PinInfo, 0, len(cids))
	for _, c := range cids {
		p, err := host.GetPin(ctx, c)
		if errors.Is(err, core.ErrPinNotFound) {
			out = append(out, core.PinInfo{Cid: c, PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusUnpinned, Error: err.Error()}})
			continue
		}
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, core.IPFSPinRequest{Cid: c, MaxDepth: p.MaxDepth, Timeout: time.Minute})
	}
	for r, err := range host.Pin(ctx, reqs) {
		if err != nil {
			return nil, err
		}
		pi := core.PinInfo{Cid: r.Cid, PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusPinned, Error: r.Error}}
		if r.Error != "" {
			pi.Status = core.TrackerStatusPinError
		}
		out = append(out, pi)
	}
	return out, nil
}

// RecoverAll streams one PinInfo per pin of the host's pinset. It stops
// reading the pinset when its consumer stops.
func (f *fakeTracker) RecoverAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	host := f.getHost()
	if host == nil {
		return core.ErrSeq[core.PinInfo](errors.New("no host"))
	}
	return func(yield func(core.PinInfo, error) bool) {
		for p, err := range host.ListPins(ctx) {
			if err != nil {
				yield(core.PinInfo{}, err)
				return
			}
			if !yield(core.PinInfo{Cid: p.Cid, Name: p.Name, PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusPinQueued}}, nil) {
				return
			}
		}
	}
}

// Sync checks the CIDs against the IPFS node through the host.
func (f *fakeTracker) Sync(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	host := f.getHost()
	if host == nil {
		return nil, errors.New("no host")
	}
	infos, err := host.PinLsCids(ctx, cids)
	if err != nil {
		return nil, err
	}
	out := make([]core.PinInfo, len(infos))
	for i, in := range infos {
		out[i] = core.PinInfo{Cid: in.Cid, PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusUnpinned}}
		if in.Type.IsPinned() {
			out[i].Status = core.TrackerStatusPinned
		}
	}
	return out, nil
}

// SyncAll streams the IPFS pins of the host, and unpins them first when
// asked with an Unpin through the host.
func (f *fakeTracker) SyncAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	host := f.getHost()
	if host == nil {
		return core.ErrSeq[core.PinInfo](errors.New("no host"))
	}
	return func(yield func(core.PinInfo, error) bool) {
		for in, err := range host.PinLs(ctx) {
			if err != nil {
				yield(core.PinInfo{}, err)
				return
			}
			if !yield(core.PinInfo{Cid: in.Cid, PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusPinned}}, nil) {
				return
			}
		}
	}
}

func (f *fakeTracker) Stats(context.Context) (core.TrackerStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return core.TrackerStats{PinQueued: int64(len(f.tracked)), Pinning: 2, PinErrors: 3}, nil
}

// ---- IPFS connector ----

type fakeIPFS struct {
	base
	mu        sync.Mutex
	pins      map[string]core.IPFSPinStatus
	blocks    map[string][]byte
	connected []string
	pinDelay  time.Duration
	lsN       int
	gcN       int
	pinLsEnd  *endless
}

func newFakeIPFS() *fakeIPFS {
	return &fakeIPFS{
		base:   base{desc: core.Description{Kind: core.KindIPFSConnector, Name: "fake-ipfs", Version: "0.1.0", ProtocolVersions: []int{1}}},
		pins:   map[string]core.IPFSPinStatus{},
		blocks: map[string][]byte{},
	}
}

// Pin completes the requests in reverse order, pinDelay apart.
func (f *fakeIPFS) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		for i := len(reqs) - 1; i >= 0; i-- {
			r := reqs[i]
			if f.pinDelay > 0 {
				select {
				case <-time.After(f.pinDelay):
				case <-ctx.Done():
					yield(core.IPFSPinResult{}, ctx.Err())
					return
				}
			}
			res := core.IPFSPinResult{Cid: r.Cid}
			if r.Timeout < 0 {
				res.Error = "invalid timeout"
			} else {
				f.mu.Lock()
				f.pins[r.Cid.KeyString()] = core.IPFSPinStatusRecursive
				if r.MaxDepth == 0 {
					f.pins[r.Cid.KeyString()] = core.IPFSPinStatusDirect
				}
				f.mu.Unlock()
			}
			if !yield(res, nil) {
				return
			}
		}
	}
}

func (f *fakeIPFS) Unpin(_ context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		for _, c := range cids {
			f.mu.Lock()
			delete(f.pins, c.KeyString())
			f.mu.Unlock()
			if !yield(core.IPFSPinResult{Cid: c}, nil) {
				return
			}
		}
	}
}

func lsItem(i int) core.IPFSPinInfo {
	t := core.IPFSPinStatusRecursive
	if i%2 == 1 {
		t = core.IPFSPinStatusDirect
	}
	return core.IPFSPinInfo{Cid: testCid(i), Type: t}
}

func (f *fakeIPFS) PinLs(context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	if f.pinLsEnd != nil {
		return endlessSeq(f.pinLsEnd, lsItem)
	}
	return func(yield func(core.IPFSPinInfo, error) bool) {
		for i := range f.lsN {
			if !yield(lsItem(i), nil) {
				return
			}
		}
	}
}

func (f *fakeIPFS) PinLsCids(_ context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]core.IPFSPinInfo, len(cids))
	for i, c := range cids {
		out[i] = core.IPFSPinInfo{Cid: c, Type: f.pins[c.KeyString()]}
	}
	return out, nil
}

func (f *fakeIPFS) ID(context.Context) (core.IPFSID, error) {
	return core.IPFSID{ID: f.self(), Addresses: []string{"/ip4/127.0.0.1/tcp/4001"}}, nil
}

func (f *fakeIPFS) self() core.PeerID {
	f.base.mu.Lock()
	defer f.base.mu.Unlock()
	return f.env.PeerID
}

func (f *fakeIPFS) RepoStat(context.Context) (core.IPFSRepoStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var size uint64
	for _, b := range f.blocks {
		size += uint64(len(b))
	}
	return core.IPFSRepoStat{RepoSize: size, StorageMax: 10 << 30, NumObjects: uint64(len(f.blocks))}, nil
}

func gcItem(i int) core.IPFSRepoGCKey {
	k := core.IPFSRepoGCKey{Key: testCid(i)}
	if i%100 == 0 {
		k.Error = fmt.Sprint("cannot remove ", i)
	}
	return k
}

func (f *fakeIPFS) RepoGC(context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	return func(yield func(core.IPFSRepoGCKey, error) bool) {
		for i := range f.gcN {
			if !yield(gcItem(i), nil) {
				return
			}
		}
	}
}

func (f *fakeIPFS) Resolve(_ context.Context, path string) (core.Cid, error) {
	if path == "/ipfs/"+testCid(1).String()+"/a" {
		return testCid(2), nil
	}
	if path == "/ipns/none" {
		return core.UndefCid, nil
	}
	return core.UndefCid, fmt.Errorf("cannot resolve %s: no link named \"a\"", path)
}

func (f *fakeIPFS) BlockPut(_ context.Context, blocks []core.Block) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range blocks {
		f.blocks[b.Cid.KeyString()] = b.Data
	}
	return nil
}

func (f *fakeIPFS) BlockGet(_ context.Context, c core.Cid) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blocks[c.KeyString()]
	if !ok {
		return nil, fmt.Errorf("block %s not found", c)
	}
	return b, nil
}

func (f *fakeIPFS) SwarmPeers(context.Context) ([]core.PeerID, error) {
	return []core.PeerID{f.self()}, nil
}

func (f *fakeIPFS) SwarmConnect(_ context.Context, addrs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = append(f.connected, addrs...)
	return nil
}

func (f *fakeIPFS) ConfigKey(_ context.Context, key string) (json.RawMessage, error) {
	switch key {
	case "Datastore.StorageMax":
		return json.RawMessage(`"10GB"`), nil
	case "Empty":
		return nil, nil
	}
	return nil, fmt.Errorf("key %q has no value", key)
}
