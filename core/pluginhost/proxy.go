package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/pincluster/pincluster/core"
)

// The proxies: one per kind, stable for the life of the supervisor, each
// forwarding every method of its kind's interface to the running plugin.
// The second argument of unary, do and stream says whether the call is
// retried once on a restarted plugin (see call.go). Retried calls are the
// reads, and the writes that are idempotent: Commit (pin puts and deletes),
// Track and Untrack (the tracker makes them idempotent), Recover (re-queues),
// BlockPut (content-addressed) and IPFS Pin and Unpin.

// Consensus returns the proxy of the consensus kind.
func (s *Supervisor) Consensus() core.Consensus { return consensusProxy{base{s, core.KindConsensus}} }

// Allocator returns the proxy of the allocator kind.
func (s *Supervisor) Allocator() core.Allocator { return allocatorProxy{base{s, core.KindAllocator}} }

// PinTracker returns the proxy of the pin tracker kind.
func (s *Supervisor) PinTracker() core.PinTracker {
	return trackerProxy{base{s, core.KindPinTracker}}
}

// IPFSConnector returns the proxy of the IPFS connector kind.
func (s *Supervisor) IPFSConnector() core.IPFSConnector {
	return ipfsProxy{base{s, core.KindIPFSConnector}}
}

// Proxy returns the proxy of kind k, which implements that kind's
// interface (core.Consensus, ...).
func (s *Supervisor) Proxy(k core.Kind) core.Plugin {
	switch k {
	case core.KindConsensus:
		return s.Consensus()
	case core.KindAllocator:
		return s.Allocator()
	case core.KindPinTracker:
		return s.PinTracker()
	case core.KindIPFSConnector:
		return s.IPFSConnector()
	}
	return nil
}

var errConfiguredBySupervisor = errors.New("plugins behind a supervisor are configured and closed by the supervisor")

// base implements core.Plugin for every proxy.
type base struct {
	sup  *Supervisor
	kind core.Kind
}

// slot returns the slot of the kind, or nil before it is started.
func (b base) slot() (*slot, error) {
	if sl := b.sup.slot(b.kind); sl != nil {
		return sl, nil
	}
	return nil, fmt.Errorf("the %s plugin is not started", b.kind)
}

func (b base) Describe(ctx context.Context) (core.Description, error) {
	return callValue(ctx, b, "Describe", true, func(ctx context.Context, p core.Plugin) (core.Description, error) {
		return p.Describe(ctx)
	})
}

// Configure is refused: the supervisor configures its plugins.
func (b base) Configure(context.Context, json.RawMessage, core.Environment, core.Host) error {
	return errConfiguredBySupervisor
}

// Close does nothing: the supervisor stops its plugins (Supervisor.Stop).
func (b base) Close(context.Context) error { return nil }

// callValue, callDo and callStream are unary, do and stream on the
// proxy's slot.
func callValue[I, T any](ctx context.Context, b base, op string, idempotent bool, fn func(context.Context, I) (T, error)) (T, error) {
	sl, err := b.slot()
	if err != nil {
		var zero T
		return zero, err
	}
	return unary(ctx, sl, op, idempotent, fn)
}

func callDo[I any](ctx context.Context, b base, op string, idempotent bool, fn func(context.Context, I) error) error {
	sl, err := b.slot()
	if err != nil {
		return err
	}
	return do(ctx, sl, op, idempotent, fn)
}

func callStream[I, T any](ctx context.Context, b base, op string, idempotent bool, fn func(context.Context, I) iter.Seq2[T, error]) iter.Seq2[T, error] {
	sl, err := b.slot()
	if err != nil {
		return core.ErrSeq[T](err)
	}
	return stream(ctx, sl, op, idempotent, fn)
}

type consensusProxy struct{ base }

func (p consensusProxy) GetPin(ctx context.Context, c core.Cid) (core.Pin, error) {
	return callValue(ctx, p.base, "GetPin", true, func(ctx context.Context, x core.Consensus) (core.Pin, error) {
		return x.GetPin(ctx, c)
	})
}

func (p consensusProxy) ListPins(ctx context.Context) iter.Seq2[core.Pin, error] {
	return callStream(ctx, p.base, "ListPins", true, func(ctx context.Context, x core.Consensus) iter.Seq2[core.Pin, error] {
		return x.ListPins(ctx)
	})
}

func (p consensusProxy) GetPins(ctx context.Context, cids []core.Cid) ([]core.Pin, error) {
	return callValue(ctx, p.base, "GetPins", true, func(ctx context.Context, x core.Consensus) ([]core.Pin, error) {
		return x.GetPins(ctx, cids)
	})
}

func (p consensusProxy) Commit(ctx context.Context, ops []core.PinOp) error {
	return callDo(ctx, p.base, "Commit", true, func(ctx context.Context, x core.Consensus) error {
		return x.Commit(ctx, ops)
	})
}

// Watch is not retried: the watcher reopens it and re-reads the pinset.
func (p consensusProxy) Watch(ctx context.Context) iter.Seq2[core.PinEvent, error] {
	return callStream(ctx, p.base, "Watch", false, func(ctx context.Context, x core.Consensus) iter.Seq2[core.PinEvent, error] {
		return x.Watch(ctx)
	})
}

func (p consensusProxy) Peers(ctx context.Context) ([]core.PeerID, error) {
	return callValue(ctx, p.base, "Peers", true, func(ctx context.Context, x core.Consensus) ([]core.PeerID, error) {
		return x.Peers(ctx)
	})
}

func (p consensusProxy) AddPeer(ctx context.Context, peer core.PeerID, addr string) error {
	return callDo(ctx, p.base, "AddPeer", false, func(ctx context.Context, x core.Consensus) error {
		return x.AddPeer(ctx, peer, addr)
	})
}

func (p consensusProxy) Address(ctx context.Context) (string, error) {
	return callValue(ctx, p.base, "Address", true, func(ctx context.Context, x core.Consensus) (string, error) {
		return x.Address(ctx)
	})
}

func (p consensusProxy) RemovePeer(ctx context.Context, peer core.PeerID) error {
	return callDo(ctx, p.base, "RemovePeer", false, func(ctx context.Context, x core.Consensus) error {
		return x.RemovePeer(ctx, peer)
	})
}

func (p consensusProxy) Leader(ctx context.Context) (core.PeerID, error) {
	return callValue(ctx, p.base, "Leader", true, func(ctx context.Context, x core.Consensus) (core.PeerID, error) {
		return x.Leader(ctx)
	})
}

type allocatorProxy struct{ base }

func (p allocatorProxy) Allocate(ctx context.Context, req core.AllocateRequest) ([]core.AllocateResult, error) {
	return callValue(ctx, p.base, "Allocate", true, func(ctx context.Context, x core.Allocator) ([]core.AllocateResult, error) {
		return x.Allocate(ctx, req)
	})
}

type trackerProxy struct{ base }

func (p trackerProxy) Track(ctx context.Context, pins []core.Pin) error {
	return callDo(ctx, p.base, "Track", true, func(ctx context.Context, x core.PinTracker) error {
		return x.Track(ctx, pins)
	})
}

func (p trackerProxy) Untrack(ctx context.Context, cids []core.Cid) error {
	return callDo(ctx, p.base, "Untrack", true, func(ctx context.Context, x core.PinTracker) error {
		return x.Untrack(ctx, cids)
	})
}

func (p trackerProxy) Status(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return callValue(ctx, p.base, "Status", true, func(ctx context.Context, x core.PinTracker) ([]core.PinInfo, error) {
		return x.Status(ctx, cids)
	})
}

func (p trackerProxy) StatusAll(ctx context.Context, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error] {
	return callStream(ctx, p.base, "StatusAll", true, func(ctx context.Context, x core.PinTracker) iter.Seq2[core.PinInfo, error] {
		return x.StatusAll(ctx, filter)
	})
}

func (p trackerProxy) Recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return callValue(ctx, p.base, "Recover", true, func(ctx context.Context, x core.PinTracker) ([]core.PinInfo, error) {
		return x.Recover(ctx, cids)
	})
}

func (p trackerProxy) RecoverAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	return callStream(ctx, p.base, "RecoverAll", true, func(ctx context.Context, x core.PinTracker) iter.Seq2[core.PinInfo, error] {
		return x.RecoverAll(ctx)
	})
}

func (p trackerProxy) Sync(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return callValue(ctx, p.base, "Sync", true, func(ctx context.Context, x core.PinTracker) ([]core.PinInfo, error) {
		return x.Sync(ctx, cids)
	})
}

func (p trackerProxy) SyncAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	return callStream(ctx, p.base, "SyncAll", true, func(ctx context.Context, x core.PinTracker) iter.Seq2[core.PinInfo, error] {
		return x.SyncAll(ctx)
	})
}

func (p trackerProxy) Stats(ctx context.Context) (core.TrackerStats, error) {
	return callValue(ctx, p.base, "Stats", true, func(ctx context.Context, x core.PinTracker) (core.TrackerStats, error) {
		return x.Stats(ctx)
	})
}

type ipfsProxy struct{ base }

var _ core.IPFSEndpointer = ipfsProxy{}

// IPFSEndpoint implements core.IPFSEndpointer: the endpoint of the running
// connector process, or none while it is down. A plugin calling the
// connector there gets none of the supervision of the calls above (call
// deadlines, a retry on the restarted process): it falls back to the host
// when the endpoint fails (see sdk's host client).
func (p ipfsProxy) IPFSEndpoint(context.Context) (core.Endpoint, error) {
	sl, err := p.slot()
	if err != nil {
		return core.Endpoint{}, nil
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.cur == nil || sl.state != StateRunning {
		return core.Endpoint{}, nil
	}
	return sl.cur.p.Endpoint, nil
}

func (p ipfsProxy) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	sl, err := p.slot()
	if err != nil {
		return core.ErrSeq[core.IPFSPinResult](err)
	}
	return resumable(ctx, sl, "Pin", reqs, func(r core.IPFSPinRequest) core.Cid { return r.Cid },
		func(ctx context.Context, x core.IPFSConnector, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
			return x.Pin(ctx, reqs)
		})
}

func (p ipfsProxy) Unpin(ctx context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	sl, err := p.slot()
	if err != nil {
		return core.ErrSeq[core.IPFSPinResult](err)
	}
	return resumable(ctx, sl, "Unpin", cids, func(c core.Cid) core.Cid { return c },
		func(ctx context.Context, x core.IPFSConnector, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
			return x.Unpin(ctx, cids)
		})
}

func (p ipfsProxy) PinLs(ctx context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	return callStream(ctx, p.base, "PinLs", true, func(ctx context.Context, x core.IPFSConnector) iter.Seq2[core.IPFSPinInfo, error] {
		return x.PinLs(ctx)
	})
}

func (p ipfsProxy) PinLsCids(ctx context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	return callValue(ctx, p.base, "PinLsCids", true, func(ctx context.Context, x core.IPFSConnector) ([]core.IPFSPinInfo, error) {
		return x.PinLsCids(ctx, cids)
	})
}

func (p ipfsProxy) ID(ctx context.Context) (core.IPFSID, error) {
	return callValue(ctx, p.base, "ID", true, func(ctx context.Context, x core.IPFSConnector) (core.IPFSID, error) {
		return x.ID(ctx)
	})
}

func (p ipfsProxy) RepoStat(ctx context.Context) (core.IPFSRepoStat, error) {
	return callValue(ctx, p.base, "RepoStat", true, func(ctx context.Context, x core.IPFSConnector) (core.IPFSRepoStat, error) {
		return x.RepoStat(ctx)
	})
}

// RepoGC is not retried: a collection cut short is started again by the
// user.
func (p ipfsProxy) RepoGC(ctx context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	return callStream(ctx, p.base, "RepoGC", false, func(ctx context.Context, x core.IPFSConnector) iter.Seq2[core.IPFSRepoGCKey, error] {
		return x.RepoGC(ctx)
	})
}

// Resolve and BlockGet may wait for blocks from the network as long as the
// connector allows (the embedded one: its pin_timeout; kubo: its
// ipfs_request_timeout): like streams, they are not bounded by the call
// timeout, which would take a long wait for a hung plugin.
func (p ipfsProxy) Resolve(ctx context.Context, path string) (core.Cid, error) {
	return callValue(WithCallTimeout(ctx, 0), p.base, "Resolve", true, func(ctx context.Context, x core.IPFSConnector) (core.Cid, error) {
		return x.Resolve(ctx, path)
	})
}

func (p ipfsProxy) BlockPut(ctx context.Context, blocks []core.Block) error {
	return callDo(ctx, p.base, "BlockPut", true, func(ctx context.Context, x core.IPFSConnector) error {
		return x.BlockPut(ctx, blocks)
	})
}

func (p ipfsProxy) BlockGet(ctx context.Context, c core.Cid) ([]byte, error) {
	return callValue(WithCallTimeout(ctx, 0), p.base, "BlockGet", true, func(ctx context.Context, x core.IPFSConnector) ([]byte, error) {
		return x.BlockGet(ctx, c)
	})
}

func (p ipfsProxy) SwarmPeers(ctx context.Context) ([]core.PeerID, error) {
	return callValue(ctx, p.base, "SwarmPeers", true, func(ctx context.Context, x core.IPFSConnector) ([]core.PeerID, error) {
		return x.SwarmPeers(ctx)
	})
}

func (p ipfsProxy) SwarmConnect(ctx context.Context, addrs []string) error {
	return callDo(ctx, p.base, "SwarmConnect", false, func(ctx context.Context, x core.IPFSConnector) error {
		return x.SwarmConnect(ctx, addrs)
	})
}

func (p ipfsProxy) ConfigKey(ctx context.Context, key string) (json.RawMessage, error) {
	return callValue(ctx, p.base, "ConfigKey", true, func(ctx context.Context, x core.IPFSConnector) (json.RawMessage, error) {
		return x.ConfigKey(ctx, key)
	})
}

var (
	_ core.Consensus     = consensusProxy{}
	_ core.Allocator     = allocatorProxy{}
	_ core.PinTracker    = trackerProxy{}
	_ core.IPFSConnector = ipfsProxy{}
)
