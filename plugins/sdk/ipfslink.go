package sdk

import (
	"context"
	"iter"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

// ipfsLinkRetry is how long a plugin goes through the host after its
// direct link to the IPFS connector failed, or after the host named no
// endpoint, before it asks the host for the endpoint again.
const ipfsLinkRetry = time.Second

// ipfsLink is the core.IPFSPinner of a plugin's host client. It calls the
// IPFS connector's process directly, at the endpoint the host names
// (Host.IPFSEndpoint), so that a pin and its result cross one process
// boundary instead of two; and it goes through the host when there is no
// endpoint (an older core, a connector in the core's process, a connector
// being restarted) or when the direct call fails. Pin and Unpin are
// idempotent per CID: the requests a failed direct stream left without a
// result are sent through the host, which waits for a restarted connector
// and retries once (core/pluginhost).
type ipfsLink struct {
	relay    pinnerClient
	endpoint func(context.Context, *pluginv1.Empty, ...grpc.CallOption) (*pluginv1.Endpoint, error)

	mu      sync.Mutex
	conn    *grpc.ClientConn // nil: no direct link
	direct  pinnerClient
	retryAt time.Time // no endpoint is asked for before then
	closed  bool
}

var _ core.IPFSPinner = (*ipfsLink)(nil)

// link returns the direct link to the connector, dialling the endpoint the
// host names if there is none yet; ok is false when calls must go through
// the host.
func (l *ipfsLink) link(ctx context.Context) (conn *grpc.ClientConn, direct pinnerClient, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		return l.conn, l.direct, true
	}
	if l.closed || time.Now().Before(l.retryAt) {
		return nil, pinnerClient{}, false
	}
	l.retryAt = time.Now().Add(ipfsLinkRetry)
	ep, err := l.endpoint(ctx, empty)
	if err != nil || ep.GetAddress() == "" {
		// An older core answers UNIMPLEMENTED: it will not change its
		// mind.
		if status.Code(err) == codes.Unimplemented {
			l.closed = true
		}
		return nil, pinnerClient{}, false
	}
	target := "passthrough:///" + ep.GetAddress()
	if ep.GetNetwork() == "unix" {
		target = "unix://" + ep.GetAddress()
	}
	conn, err = grpc.NewClient(target, append(ClientGRPCDialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		Logger().Warn("cannot dial the IPFS connector directly; calling it through the host", "endpoint", ep.GetAddress(), "error", err)
		return nil, pinnerClient{}, false
	}
	l.conn = conn
	l.direct = connectorPinner(pluginv1.NewIPFSConnectorClient(conn))
	return l.conn, l.direct, true
}

// failed drops the direct link conn after a call on it failed; calls go
// through the host until ipfsLinkRetry has passed.
func (l *ipfsLink) failed(conn *grpc.ClientConn, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != conn {
		return
	}
	Logger().Debug("direct call to the IPFS connector failed; calling it through the host", "error", err)
	_ = l.conn.Close()
	l.conn, l.direct = nil, pinnerClient{}
	l.retryAt = time.Now().Add(ipfsLinkRetry)
}

// close closes the direct link; later calls go through the host.
func (l *ipfsLink) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		_ = l.conn.Close()
	}
	l.conn, l.direct, l.closed = nil, pinnerClient{}, true
}

func (l *ipfsLink) Pin(ctx context.Context, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
	return resumeOnHost(ctx, l, reqs, func(r core.IPFSPinRequest) core.Cid { return r.Cid },
		func(p pinnerClient, reqs []core.IPFSPinRequest) iter.Seq2[core.IPFSPinResult, error] {
			return p.Pin(ctx, reqs)
		})
}

func (l *ipfsLink) Unpin(ctx context.Context, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
	return resumeOnHost(ctx, l, cids, func(c core.Cid) core.Cid { return c },
		func(p pinnerClient, cids []core.Cid) iter.Seq2[core.IPFSPinResult, error] {
			return p.Unpin(ctx, cids)
		})
}

// resumeOnHost makes a Pin or Unpin call over the direct link, and sends
// the requests it left without a result through the host when it fails.
func resumeOnHost[R any](ctx context.Context, l *ipfsLink, reqs []R, cidOf func(R) core.Cid,
	call func(pinnerClient, []R) iter.Seq2[core.IPFSPinResult, error]) iter.Seq2[core.IPFSPinResult, error] {
	return func(yield func(core.IPFSPinResult, error) bool) {
		todo := reqs
		if conn, direct, ok := l.link(ctx); ok {
			answered := core.PinResultTally{}
			var failure error
			for r, err := range call(direct, reqs) {
				if err != nil {
					failure = err
					break
				}
				answered.Add(r.Cid)
				if !yield(r, nil) {
					return
				}
			}
			if failure == nil {
				return
			}
			if ctx.Err() != nil {
				yield(core.IPFSPinResult{}, failure)
				return
			}
			l.failed(conn, failure)
			if todo = core.Unanswered(answered, reqs, cidOf); len(todo) == 0 {
				return
			}
		}
		for r, err := range call(l.relay, todo) {
			if !yield(r, err) {
				return
			}
		}
	}
}

// PinLs lists over the direct link; a listing that fails before its first
// item is asked again through the host.
func (l *ipfsLink) PinLs(ctx context.Context) iter.Seq2[core.IPFSPinInfo, error] {
	return func(yield func(core.IPFSPinInfo, error) bool) {
		if conn, direct, ok := l.link(ctx); ok && !l.listDirect(ctx, conn, direct, yield) {
			return
		}
		for info, err := range l.relay.PinLs(ctx) {
			if !yield(info, err) {
				return
			}
		}
	}
}

// listDirect lists over the direct link and reports whether the listing
// is to be asked again through the host: it failed before its first item.
func (l *ipfsLink) listDirect(ctx context.Context, conn *grpc.ClientConn, direct pinnerClient, yield func(core.IPFSPinInfo, error) bool) (again bool) {
	listed := false
	for info, err := range direct.PinLs(ctx) {
		if err != nil {
			if listed || ctx.Err() != nil {
				yield(core.IPFSPinInfo{}, err)
				return false
			}
			l.failed(conn, err)
			return true
		}
		listed = true
		if !yield(info, nil) {
			return false
		}
	}
	return false
}

func (l *ipfsLink) PinLsCids(ctx context.Context, cids []core.Cid) ([]core.IPFSPinInfo, error) {
	if conn, direct, ok := l.link(ctx); ok {
		infos, err := direct.PinLsCids(ctx, cids)
		if err == nil || ctx.Err() != nil {
			return infos, err
		}
		l.failed(conn, err)
	}
	return l.relay.PinLsCids(ctx, cids)
}
