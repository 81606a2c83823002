package sdk

import (
	"context"
	"encoding/json"
	"iter"

	"google.golang.org/grpc"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

type ipfsConnectorServer struct {
	pluginv1.UnimplementedIPFSConnectorServer
	impl core.IPFSConnector
}

func (s *ipfsConnectorServer) Pin(req *pluginv1.IPFSPinRequests, st grpc.ServerStreamingServer[pluginv1.IPFSPinResults]) error {
	return servePin(s.impl, req, st)
}

func (s *ipfsConnectorServer) Unpin(req *pluginv1.Cids, st grpc.ServerStreamingServer[pluginv1.IPFSPinResults]) error {
	return serveUnpin(s.impl, req, st)
}

func (s *ipfsConnectorServer) PinLs(_ *pluginv1.Empty, st grpc.ServerStreamingServer[pluginv1.IPFSPinInfos]) error {
	return servePinLs(s.impl, st)
}

func (s *ipfsConnectorServer) PinLsCids(ctx context.Context, req *pluginv1.Cids) (*pluginv1.IPFSPinInfos, error) {
	return servePinLsCids(ctx, s.impl, req)
}

func (s *ipfsConnectorServer) ID(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.IPFSID, error) {
	id, err := s.impl.ID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return IPFSIDToProto(id), nil
}

func (s *ipfsConnectorServer) RepoStat(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.IPFSRepoStat, error) {
	st, err := s.impl.RepoStat(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return IPFSRepoStatToProto(st), nil
}

// repoGCSize estimates the encoded size of one key of a RepoGCKeys batch.
func repoGCSize(k core.IPFSRepoGCKey) int { return len(k.Key.Bytes()) + len(k.Error) + 8 }

func (s *ipfsConnectorServer) RepoGC(_ *pluginv1.Empty, st grpc.ServerStreamingServer[pluginv1.RepoGCKeys]) error {
	keep := func(k core.IPFSRepoGCKey) core.IPFSRepoGCKey { return k }
	return serveBatchedSized(st.Context(), 0, s.impl.RepoGC, keep, repoGCSize, RepoGCKeysToProto, st.Send)
}

func (s *ipfsConnectorServer) Resolve(ctx context.Context, req *pluginv1.ResolveRequest) (*pluginv1.CidRequest, error) {
	c, err := s.impl.Resolve(ctx, req.GetPath())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.CidRequest{Cid: c.Bytes()}, nil
}

func (s *ipfsConnectorServer) BlockPut(ctx context.Context, req *pluginv1.Blocks) (*pluginv1.Empty, error) {
	blocks, err := BlocksFromProto(req.GetBlocks())
	if err != nil {
		return nil, invalidArgument(err)
	}
	if err := s.impl.BlockPut(ctx, blocks); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

func (s *ipfsConnectorServer) BlockGet(ctx context.Context, req *pluginv1.CidRequest) (*pluginv1.BlockData, error) {
	c, err := CidFromBytes(req.GetCid())
	if err != nil {
		return nil, invalidArgument(err)
	}
	data, err := s.impl.BlockGet(ctx, c)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.BlockData{Data: data}, nil
}

func (s *ipfsConnectorServer) SwarmPeers(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.PeerIDs, error) {
	ps, err := s.impl.SwarmPeers(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.PeerIDs{Ids: PeerIDsToProto(ps)}, nil
}

func (s *ipfsConnectorServer) SwarmConnect(ctx context.Context, req *pluginv1.Multiaddrs) (*pluginv1.Empty, error) {
	if err := s.impl.SwarmConnect(ctx, stringsOrNil(req.GetAddrs())); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

func (s *ipfsConnectorServer) ConfigKey(ctx context.Context, req *pluginv1.ConfigKeyRequest) (*pluginv1.JSONValue, error) {
	v, err := s.impl.ConfigKey(ctx, req.GetKey())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.JSONValue{Json: v}, nil
}

// ipfsConnectorClient implements core.IPFSConnector over gRPC.
type ipfsConnectorClient struct {
	*pluginClient
	pinnerClient
	rpc pluginv1.IPFSConnectorClient
}

func newIPFSConnectorClient(conn grpc.ClientConnInterface, base *pluginClient) *ipfsConnectorClient {
	rpc := pluginv1.NewIPFSConnectorClient(conn)
	return &ipfsConnectorClient{
		pluginClient: base,
		pinnerClient: connectorPinner(rpc),
		rpc:          rpc,
	}
}

// connectorPinner is the core.IPFSPinner part of a connector's client: the
// core's, and a plugin's direct link to the connector (ipfsLink).
func connectorPinner(rpc pluginv1.IPFSConnectorClient) pinnerClient {
	return pinnerClient{pin: rpc.Pin, unpin: rpc.Unpin, pinLs: rpc.PinLs, pinLsCids: rpc.PinLsCids}
}

func (c *ipfsConnectorClient) ID(ctx context.Context) (core.IPFSID, error) {
	m, err := c.rpc.ID(ctx, empty)
	if err != nil {
		return core.IPFSID{}, fromStatus(err)
	}
	return IPFSIDFromProto(m), nil
}

func (c *ipfsConnectorClient) RepoStat(ctx context.Context) (core.IPFSRepoStat, error) {
	m, err := c.rpc.RepoStat(ctx, empty)
	if err != nil {
		return core.IPFSRepoStat{}, fromStatus(err)
	}
	return IPFSRepoStatFromProto(m), nil
}

func (c *ipfsConnectorClient) RepoGC(ctx context.Context) iter.Seq2[core.IPFSRepoGCKey, error] {
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.RepoGCKeys], error) {
		return c.rpc.RepoGC(ctx, empty)
	}
	each := func(m *pluginv1.RepoGCKeys, yield func(core.IPFSRepoGCKey) bool) (bool, error) {
		keys, err := RepoGCKeysFromProto(m)
		if err != nil {
			return false, err
		}
		for _, k := range keys {
			if !yield(k) {
				return false, nil
			}
		}
		return true, nil
	}
	return recvStream(ctx, open, each)
}

func (c *ipfsConnectorClient) Resolve(ctx context.Context, path string) (core.Cid, error) {
	m, err := c.rpc.Resolve(ctx, &pluginv1.ResolveRequest{Path: path})
	if err != nil {
		return core.UndefCid, fromStatus(err)
	}
	return CidFromBytes(m.GetCid())
}

func (c *ipfsConnectorClient) BlockPut(ctx context.Context, blocks []core.Block) error {
	_, err := c.rpc.BlockPut(ctx, &pluginv1.Blocks{Blocks: BlocksToProto(blocks)})
	return fromStatus(err)
}

func (c *ipfsConnectorClient) BlockGet(ctx context.Context, ci core.Cid) ([]byte, error) {
	m, err := c.rpc.BlockGet(ctx, &pluginv1.CidRequest{Cid: ci.Bytes()})
	if err != nil {
		return nil, fromStatus(err)
	}
	return m.GetData(), nil
}

func (c *ipfsConnectorClient) SwarmPeers(ctx context.Context) ([]core.PeerID, error) {
	m, err := c.rpc.SwarmPeers(ctx, empty)
	if err != nil {
		return nil, fromStatus(err)
	}
	return PeerIDsFromProto(m.GetIds()), nil
}

func (c *ipfsConnectorClient) SwarmConnect(ctx context.Context, addrs []string) error {
	_, err := c.rpc.SwarmConnect(ctx, &pluginv1.Multiaddrs{Addrs: stringsOrNil(addrs)})
	return fromStatus(err)
}

func (c *ipfsConnectorClient) ConfigKey(ctx context.Context, key string) (json.RawMessage, error) {
	m, err := c.rpc.ConfigKey(ctx, &pluginv1.ConfigKeyRequest{Key: key})
	if err != nil {
		return nil, fromStatus(err)
	}
	return rawJSON(m.GetJson()), nil
}
