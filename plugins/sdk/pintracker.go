package sdk

import (
	"context"
	"iter"

	"google.golang.org/grpc"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

type pinTrackerServer struct {
	pluginv1.UnimplementedPinTrackerServer
	impl core.PinTracker
}

func (s *pinTrackerServer) Track(ctx context.Context, req *pluginv1.Pins) (*pluginv1.Empty, error) {
	pins, err := PinsFromProto(req.GetPins())
	if err != nil {
		return nil, invalidArgument(err)
	}
	if err := s.impl.Track(ctx, pins); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

func (s *pinTrackerServer) Untrack(ctx context.Context, req *pluginv1.Cids) (*pluginv1.Empty, error) {
	cids, err := CidsFromProto(req.GetCids())
	if err != nil {
		return nil, invalidArgument(err)
	}
	if err := s.impl.Untrack(ctx, cids); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

// perCid serves the calls that take CIDs and answer one PinInfo each.
func perCid(ctx context.Context, req *pluginv1.Cids, f func(context.Context, []core.Cid) ([]core.PinInfo, error)) (*pluginv1.PinInfos, error) {
	cids, err := CidsFromProto(req.GetCids())
	if err != nil {
		return nil, invalidArgument(err)
	}
	infos, err := f(ctx, cids)
	if err != nil {
		return nil, toStatus(err)
	}
	return wrapPinInfos(PinInfosToProto(infos)), nil
}

func (s *pinTrackerServer) Status(ctx context.Context, req *pluginv1.Cids) (*pluginv1.PinInfos, error) {
	return perCid(ctx, req, s.impl.Status)
}

func (s *pinTrackerServer) StatusAll(req *pluginv1.StatusFilter, st grpc.ServerStreamingServer[pluginv1.PinInfos]) error {
	filter := core.TrackerStatus(req.GetFilter())
	open := func(ctx context.Context) iter.Seq2[core.PinInfo, error] { return s.impl.StatusAll(ctx, filter) }
	return serveBatched(st.Context(), open, PinInfoToProto, wrapPinInfos, st.Send)
}

func (s *pinTrackerServer) Recover(ctx context.Context, req *pluginv1.Cids) (*pluginv1.PinInfos, error) {
	return perCid(ctx, req, s.impl.Recover)
}

func (s *pinTrackerServer) RecoverAll(_ *pluginv1.Empty, st grpc.ServerStreamingServer[pluginv1.PinInfos]) error {
	return serveBatched(st.Context(), s.impl.RecoverAll, PinInfoToProto, wrapPinInfos, st.Send)
}

func (s *pinTrackerServer) Sync(ctx context.Context, req *pluginv1.Cids) (*pluginv1.PinInfos, error) {
	return perCid(ctx, req, s.impl.Sync)
}

func (s *pinTrackerServer) SyncAll(_ *pluginv1.Empty, st grpc.ServerStreamingServer[pluginv1.PinInfos]) error {
	return serveBatched(st.Context(), s.impl.SyncAll, PinInfoToProto, wrapPinInfos, st.Send)
}

func (s *pinTrackerServer) Stats(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.TrackerStats, error) {
	stats, err := s.impl.Stats(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return TrackerStatsToProto(stats), nil
}

// pinTrackerClient implements core.PinTracker over gRPC.
type pinTrackerClient struct {
	*pluginClient
	rpc pluginv1.PinTrackerClient
}

func newPinTrackerClient(conn grpc.ClientConnInterface, base *pluginClient) *pinTrackerClient {
	return &pinTrackerClient{pluginClient: base, rpc: pluginv1.NewPinTrackerClient(conn)}
}

var eachPinInfo = eachOf((*pluginv1.PinInfos).GetInfos, PinInfoFromProto)

func (c *pinTrackerClient) Track(ctx context.Context, pins []core.Pin) error {
	_, err := c.rpc.Track(ctx, &pluginv1.Pins{Pins: PinsToProto(pins)})
	return fromStatus(err)
}

func (c *pinTrackerClient) Untrack(ctx context.Context, cids []core.Cid) error {
	_, err := c.rpc.Untrack(ctx, &pluginv1.Cids{Cids: CidsToProto(cids)})
	return fromStatus(err)
}

type perCidRPC func(context.Context, *pluginv1.Cids, ...grpc.CallOption) (*pluginv1.PinInfos, error)

func (f perCidRPC) call(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	m, err := f(ctx, &pluginv1.Cids{Cids: CidsToProto(cids)})
	if err != nil {
		return nil, fromStatus(err)
	}
	return PinInfosFromProto(m.GetInfos())
}

func (c *pinTrackerClient) Status(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return perCidRPC(c.rpc.Status).call(ctx, cids)
}

func (c *pinTrackerClient) StatusAll(ctx context.Context, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error] {
	msg := &pluginv1.StatusFilter{Filter: uint32(filter)}
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.PinInfos], error) {
		return c.rpc.StatusAll(ctx, msg)
	}
	return recvStream(ctx, open, eachPinInfo)
}

func (c *pinTrackerClient) Recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return perCidRPC(c.rpc.Recover).call(ctx, cids)
}

func (c *pinTrackerClient) RecoverAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.PinInfos], error) {
		return c.rpc.RecoverAll(ctx, empty)
	}
	return recvStream(ctx, open, eachPinInfo)
}

func (c *pinTrackerClient) Sync(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error) {
	return perCidRPC(c.rpc.Sync).call(ctx, cids)
}

func (c *pinTrackerClient) SyncAll(ctx context.Context) iter.Seq2[core.PinInfo, error] {
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.PinInfos], error) {
		return c.rpc.SyncAll(ctx, empty)
	}
	return recvStream(ctx, open, eachPinInfo)
}

func (c *pinTrackerClient) Stats(ctx context.Context) (core.TrackerStats, error) {
	m, err := c.rpc.Stats(ctx, empty)
	if err != nil {
		return core.TrackerStats{}, fromStatus(err)
	}
	return TrackerStatsFromProto(m), nil
}
