package sdk

import (
	"context"

	"google.golang.org/grpc"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

type allocatorServer struct {
	pluginv1.UnimplementedAllocatorServer
	impl core.Allocator
}

func (s *allocatorServer) Allocate(ctx context.Context, req *pluginv1.AllocateRequest) (*pluginv1.AllocateResponse, error) {
	r, err := AllocateRequestFromProto(req)
	if err != nil {
		return nil, invalidArgument(err)
	}
	res, err := s.impl.Allocate(ctx, r)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pluginv1.AllocateResponse{}
	if len(res) > 0 {
		out.Results = make([]*pluginv1.AllocateResult, len(res))
		for i := range res {
			out.Results[i] = AllocateResultToProto(res[i])
		}
	}
	return out, nil
}

// allocatorClient implements core.Allocator over gRPC.
type allocatorClient struct {
	*pluginClient
	rpc pluginv1.AllocatorClient
}

func newAllocatorClient(conn grpc.ClientConnInterface, base *pluginClient) *allocatorClient {
	return &allocatorClient{pluginClient: base, rpc: pluginv1.NewAllocatorClient(conn)}
}

func (c *allocatorClient) Allocate(ctx context.Context, req core.AllocateRequest) ([]core.AllocateResult, error) {
	m, err := c.rpc.Allocate(ctx, AllocateRequestToProto(req))
	if err != nil {
		return nil, fromStatus(err)
	}
	if len(m.GetResults()) == 0 {
		return nil, nil
	}
	out := make([]core.AllocateResult, len(m.Results))
	for i, r := range m.Results {
		out[i] = AllocateResultFromProto(r)
	}
	return out, nil
}
