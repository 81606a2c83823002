package rest

import (
	"context"
	"iter"
	"mime/multipart"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/adder"
)

// Cluster is what the REST API needs from the peer.
type Cluster interface {
	ID(ctx context.Context) core.ID
	Version() string
	Peers(ctx context.Context) iter.Seq2[core.ID, error]
	PeerRemove(ctx context.Context, p core.PeerID) error
	// Add imports a multipart body; emit is called for each output item in order. Blocks go to the allocated peers and the root is pinned unless params.NoPin.
	Add(ctx context.Context, body *multipart.Reader, params adder.Params, opts core.PinOptions, emit func(core.AddedOutput) error) (core.Cid, error)
	Allocations(ctx context.Context, filter core.PinType) iter.Seq2[core.Pin, error]
	Allocation(ctx context.Context, c core.Cid) (core.Pin, error) // core.ErrPinNotFound -> 404
	StatusAll(ctx context.Context, filter core.TrackerStatus, local bool) iter.Seq2[core.GlobalPinInfo, error]
	Status(ctx context.Context, c core.Cid, local bool) (core.GlobalPinInfo, error)
	Recover(ctx context.Context, c core.Cid, local bool) (core.GlobalPinInfo, error)
	RecoverAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error]
	Sync(ctx context.Context, c core.Cid, local bool) (core.GlobalPinInfo, error)
	SyncAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error]
	Pin(ctx context.Context, c core.Cid, opts core.PinOptions) (core.Pin, error)      // opts.PinUpdate handled inside
	PinPath(ctx context.Context, path string, opts core.PinOptions) (core.Pin, error) // path like /ipfs/<cid>/a/b, already validated by the handler
	Unpin(ctx context.Context, c core.Cid) (core.Pin, error)
	UnpinPath(ctx context.Context, path string) (core.Pin, error)
	RepoGC(ctx context.Context, local bool) (core.GlobalRepoGC, error)
	ConnectGraph(ctx context.Context) (core.ConnectGraph, error)
	Alerts(ctx context.Context) ([]core.Alert, error)
	MetricNames(ctx context.Context) ([]string, error)
	Metrics(ctx context.Context, name string) ([]core.Metric, error)
}
