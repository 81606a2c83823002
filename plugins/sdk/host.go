package sdk

import (
	"context"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

// Shared server and client halves of core.PinsetReader and core.IPFSPinner,
// used by the Host service and by the kinds that embed those interfaces.

func wrapPins(ps []*pluginv1.Pin) *pluginv1.Pins { return &pluginv1.Pins{Pins: ps} }
func wrapPinInfos(ps []*pluginv1.PinInfo) *pluginv1.PinInfos {
	return &pluginv1.PinInfos{Infos: ps}
}
func wrapPinResults(rs []*pluginv1.IPFSPinResult) *pluginv1.IPFSPinResults {
	return &pluginv1.IPFSPinResults{Results: rs}
}
func wrapIPFSPinInfos(ps []*pluginv1.IPFSPinInfo) *pluginv1.IPFSPinInfos {
	return &pluginv1.IPFSPinInfos{Infos: ps}
}

func serveGetPin(ctx context.Context, r core.PinsetReader, req *pluginv1.CidRequest) (*pluginv1.Pin, error) {
	c, err := CidFromBytes(req.GetCid())
	if err != nil {
		return nil, invalidArgument(err)
	}
	p, err := r.GetPin(ctx, c)
	if err != nil {
		return nil, toStatus(err)
	}
	return PinToProto(p), nil
}

func serveListPins(r core.PinsetReader, st grpc.ServerStreamingServer[pluginv1.Pins]) error {
	return serveBatched(st.Context(), r.ListPins, PinToProto, wrapPins, st.Send)
}

func servePin(p core.IPFSPinner, req *pluginv1.IPFSPinRequests, st grpc.ServerStreamingServer[pluginv1.IPFSPinResults]) error {
	reqs, err := IPFSPinRequestsFromProto(req.GetRequests())
	if err != nil {
		return invalidArgument(err)
	}
	open := func(ctx context.Context) iter.Seq2[core.IPFSPinResult, error] { return p.Pin(ctx, reqs) }
	return serveBatchedLinger(st.Context(), ResultLinger, open, IPFSPinResultToProto, wrapPinResults, st.Send)
}

func serveUnpin(p core.IPFSPinner, req *pluginv1.Cids, st grpc.ServerStreamingServer[pluginv1.IPFSPinResults]) error {
	cids, err := CidsFromProto(req.GetCids())
	if err != nil {
		return invalidArgument(err)
	}
	open := func(ctx context.Context) iter.Seq2[core.IPFSPinResult, error] { return p.Unpin(ctx, cids) }
	return serveBatchedLinger(st.Context(), ResultLinger, open, IPFSPinResultToProto, wrapPinResults, st.Send)
}

func servePinLs(p core.IPFSPinner, st grpc.ServerStreamingServer[pluginv1.IPFSPinInfos]) error {
	return serveBatched(st.Context(), p.PinLs, IPFSPinInfoToProto, wrapIPFSPinInfos, st.Send)
}

func servePinLsCids(ctx context.Context, p core.IPFSPinner, req *pluginv1.Cids) (*pluginv1.IPFSPinInfos, error) {
	cids, err := CidsFromProto(req.GetCids())
	if err != nil {
		return nil, invalidArgument(err)
	}
	infos, err := p.PinLsCids(ctx, cids)
	if err != nil {
		return nil, toStatus(err)
	}
	return wrapIPFSPinInfos(IPFSPinInfosToProto(infos)), nil
}

// readerClient implements core.PinsetReader over two RPCs.
type readerClient struct {
	getPin   func(context.Context, *pluginv1.CidRequest, ...grpc.CallOption) (*pluginv1.Pin, error)
	listPins func(context.Context, *pluginv1.Empty, ...grpc.CallOption) (grpc.ServerStreamingClient[pluginv1.Pins], error)
}

func (c readerClient) GetPin(ctx context.Context, ci core.Cid) (core.Pin, error) {
	m, err := c.getPin(ctx, &pluginv1.CidRequest{Cid: ci.Bytes()})
	if err != nil {
		return core.Pin{}, fromStatus(err)
	}
	return PinFromProto(m)
}

func (c readerClient) ListPins(ctx context.Context) iter.Seq2[core.Pin, error] {
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.Pins], error) {
		return c.listPins(ctx, empty)
	}
	return recvStream(ctx, open, eachOf((*pluginv1.Pins).GetPins, PinFromProto))
}

// pinnerClient implements core.IPFSPinner over four RPCs.
type pinnerClient struct {
	pin       func(context.Context, *pluginv1.IPFSPinRequests, ...grpc.CallOption) (grpc.ServerStreamingClient[pluginv1.IPFSPinResults], error)
	unpin     func(context.Context, *pluginv1.Cids, ...grpc.CallOption) (grpc.ServerStreamingClient[pluginv1.IPFSPinResults], error)
	pinLs     func(context.Context, *pluginv1.Empty, ...grpc.CallOption) (grpc.ServerStreamingClient[pluginv1.IPFSPinInfos], error)
	pinLsCids func(context.Context, *pluginv1.Cids, ...grpc.CallOption) (*pluginv1.IPFSPinInfos, error)
}

var eachPinResult = eachOf((*pluginv1.IPFSPinResults).GetResults, IPFSPinResultFromProto)

func (c pinnerClient) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	msg := &pluginv1.IPFSPinRequests{Requests: IPFSPinRequestsToProto(reqs)}
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.IPFSPinResults], error) {
		return c.pin(ctx, msg)
	}
	return recvStream(ctx, open, eachPinResult)
}

func (c pinnerClient) Unpin(ctx context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	msg := &pluginv1.Cids{Cids: CidsToProto(cids)}
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.IPFSPinResults], error) {
		return c.unpin(ctx, msg)
	}
	return recvStream(ctx, open, eachPinResult)
}

func (c pinnerClient) PinLs(ctx context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	open := func(ctx context.Context) (grpc.ServerStreamingClient[pluginv1.IPFSPinInfos], error) {
		return c.pinLs(ctx, empty)
	}
	return recvStream(ctx, open, eachOf((*pluginv1.IPFSPinInfos).GetInfos, IPFSPinInfoFromProto))
}

func (c pinnerClient) PinLsCids(ctx context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	m, err := c.pinLsCids(ctx, &pluginv1.Cids{Cids: CidsToProto(cids)})
	if err != nil {
		return nil, fromStatus(err)
	}
	return IPFSPinInfosFromProto(m.GetInfos())
}

// hostServer serves the Host service of the core to a plugin.
type hostServer struct {
	pluginv1.UnimplementedHostServer
	current func() core.Host
}

var errNoHost = status.Error(codes.FailedPrecondition, "the core offers no host to this plugin")

func (s *hostServer) host() (core.Host, error) {
	h := s.current()
	if h == nil {
		return nil, errNoHost
	}
	return h, nil
}

func (s *hostServer) GetPin(ctx context.Context, req *pluginv1.CidRequest) (*pluginv1.Pin, error) {
	h, err := s.host()
	if err != nil {
		return nil, err
	}
	return serveGetPin(ctx, h, req)
}

func (s *hostServer) ListPins(_ *pluginv1.Empty, st grpc.ServerStreamingServer[pluginv1.Pins]) error {
	h, err := s.host()
	if err != nil {
		return err
	}
	return serveListPins(h, st)
}

func (s *hostServer) IPFSPin(req *pluginv1.IPFSPinRequests, st grpc.ServerStreamingServer[pluginv1.IPFSPinResults]) error {
	h, err := s.host()
	if err != nil {
		return err
	}
	return servePin(h, req, st)
}

func (s *hostServer) IPFSUnpin(req *pluginv1.Cids, st grpc.ServerStreamingServer[pluginv1.IPFSPinResults]) error {
	h, err := s.host()
	if err != nil {
		return err
	}
	return serveUnpin(h, req, st)
}

func (s *hostServer) IPFSPinLs(_ *pluginv1.Empty, st grpc.ServerStreamingServer[pluginv1.IPFSPinInfos]) error {
	h, err := s.host()
	if err != nil {
		return err
	}
	return servePinLs(h, st)
}

func (s *hostServer) IPFSPinLsCids(ctx context.Context, req *pluginv1.Cids) (*pluginv1.IPFSPinInfos, error) {
	h, err := s.host()
	if err != nil {
		return nil, err
	}
	return servePinLsCids(ctx, h, req)
}

func (s *hostServer) IPFSEndpoint(ctx context.Context, _ *pluginv1.Empty) (*pluginv1.Endpoint, error) {
	h, err := s.host()
	if err != nil {
		return nil, err
	}
	e, ok := h.(core.IPFSEndpointer)
	if !ok {
		return &pluginv1.Endpoint{}, nil
	}
	ep, err := e.IPFSEndpoint(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.Endpoint{Network: ep.Network, Address: ep.Address}, nil
}

// hostClient is the core.Host a plugin receives in Configure. Its IPFS
// calls go to the connector directly when the core names its endpoint (see
// ipfsLink).
type hostClient struct {
	readerClient
	*ipfsLink
}

func newHostClient(conn grpc.ClientConnInterface) hostClient {
	c := pluginv1.NewHostClient(conn)
	return hostClient{
		readerClient: readerClient{getPin: c.GetPin, listPins: c.ListPins},
		ipfsLink: &ipfsLink{
			relay:    pinnerClient{pin: c.IPFSPin, unpin: c.IPFSUnpin, pinLs: c.IPFSPinLs, pinLsCids: c.IPFSPinLsCids},
			endpoint: c.IPFSEndpoint,
		},
	}
}

var _ core.Host = hostClient{}
