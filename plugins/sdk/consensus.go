package sdk

import (
	"context"
	"iter"

	"google.golang.org/grpc"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

type consensusServer struct {
	pluginv1.UnimplementedConsensusServer
	impl core.Consensus
}

func (s *consensusServer) GetPin(ctx context.Context, req *pluginv1.CidRequest) (*pluginv1.Pin, error) {
	return serveGetPin(ctx, s.impl, req)
}

func (s *consensusServer) ListPins(_ *pluginv1.Empty, st grpc.ServerStreamingServer[pluginv1.Pins]) error {
	return serveListPins(s.impl, st)
}

func (s *consensusServer) GetPins(ctx context.Context, req *pluginv1.Cids) (*pluginv1.Pins, error) {
	cids, err := CidsFromProto(req.GetCids())
	if err != nil {
		return nil, invalidArgument(err)
	}
	pins, err := s.impl.GetPins(ctx, cids)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.Pins{Pins: PinsToProto(pins)}, nil
}

func (s *consensusServer) Commit(ctx context.Context, req *pluginv1.PinOps) (*pluginv1.Empty, error) {
	ops, err := PinOpsFromProto(req.GetOps())
	if err != nil {
		return nil, invalidArgument(err)
	}
	if err := s.impl.Commit(ctx, ops); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

func (s *consensusServer) Watch(_ *pluginv1.Empty, st grpc.ServerStreamingServer[pluginv1.PinEvent]) error {
	return serveEach(st.Context(), s.impl.Watch, PinEventToProto, st.Send)
}

func (s *consensusServer) Peers(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.PeerIDs, error) {
	ps, err := s.impl.Peers(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.PeerIDs{Ids: PeerIDsToProto(ps)}, nil
}

func (s *consensusServer) AddPeer(ctx context.Context, req *pluginv1.AddPeerRequest) (*pluginv1.Empty, error) {
	if err := s.impl.AddPeer(ctx, PeerIDFromBytes(req.GetPeer()), req.GetAddress()); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

func (s *consensusServer) Address(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.AddressResponse, error) {
	addr, err := s.impl.Address(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.AddressResponse{Address: addr}, nil
}

func (s *consensusServer) RemovePeer(ctx context.Context, req *pluginv1.PeerRequest) (*pluginv1.Empty, error) {
	if err := s.impl.RemovePeer(ctx, PeerIDFromBytes(req.GetPeer())); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

func (s *consensusServer) Leader(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.PeerRequest, error) {
	p, err := s.impl.Leader(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.PeerRequest{Peer: PeerIDToBytes(p)}, nil
}

// consensusClient implements core.Consensus over gRPC.
type consensusClient struct {
	*pluginClient
	readerClient
	rpc pluginv1.ConsensusClient
}

func newConsensusClient(conn grpc.ClientConnInterface, base *pluginClient) *consensusClient {
	rpc := pluginv1.NewConsensusClient(conn)
	return &consensusClient{
		pluginClient: base,
		readerClient: readerClient{getPin: rpc.GetPin, listPins: rpc.ListPins},
		rpc:          rpc,
	}
}

func (c *consensusClient) GetPins(ctx context.Context, cids []core.Cid) ([]core.Pin, error) {
	m, err := c.rpc.GetPins(ctx, &pluginv1.Cids{Cids: CidsToProto(cids)})
	if err != nil {
		return nil, fromStatus(err)
	}
	return PinsFromProto(m.GetPins())
}

func (c *consensusClient) Commit(ctx context.Context, ops []core.PinOp) error {
	_, err := c.rpc.Commit(ctx, &pluginv1.PinOps{Ops: PinOpsToProto(ops)})
	return fromStatus(err)
}

func (c *consensusClient) Watch(ctx context.Context) iter.Seq2[core.PinEvent, error] {
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.PinEvent], error) {
		return c.rpc.Watch(ctx, empty)
	}
	return recvStream(ctx, open, one(PinEventFromProto))
}

func (c *consensusClient) Peers(ctx context.Context) ([]core.PeerID, error) {
	m, err := c.rpc.Peers(ctx, empty)
	if err != nil {
		return nil, fromStatus(err)
	}
	return PeerIDsFromProto(m.GetIds()), nil
}

func (c *consensusClient) AddPeer(ctx context.Context, p core.PeerID, addr string) error {
	_, err := c.rpc.AddPeer(ctx, &pluginv1.AddPeerRequest{Peer: PeerIDToBytes(p), Address: addr})
	return fromStatus(err)
}

func (c *consensusClient) Address(ctx context.Context) (string, error) {
	m, err := c.rpc.Address(ctx, empty)
	if err != nil {
		return "", fromStatus(err)
	}
	return m.GetAddress(), nil
}

func (c *consensusClient) RemovePeer(ctx context.Context, p core.PeerID) error {
	_, err := c.rpc.RemovePeer(ctx, &pluginv1.PeerRequest{Peer: PeerIDToBytes(p)})
	return fromStatus(err)
}

func (c *consensusClient) Leader(ctx context.Context) (core.PeerID, error) {
	m, err := c.rpc.Leader(ctx, empty)
	if err != nil {
		return "", fromStatus(err)
	}
	return PeerIDFromBytes(m.GetPeer()), nil
}
