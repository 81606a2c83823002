package network

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
)

// Services of the peer RPC. Each method's argument and answer are listed
// with it; "⇒" marks a stream of answers.
const (
	// ServiceCluster is the orchestrator's own service.
	//
	//	ID          Empty             → core.ID
	//	PeerAdd     PeerAddRequest    → core.ID (the added peer's, as the receiver sees it)
	//	PeerRemove  PeerRemoveRequest → Empty
	//	Write       WriteRequest      → WriteResults (one per op, in order)
	ServiceCluster = "Cluster"
	// ServiceTracker answers for the peer's pin tracker (local statuses).
	//
	//	Status      CidsRequest      → []core.PinInfo (one per CID, in order)
	//	StatusAll   StatusAllRequest ⇒ core.PinInfo
	//	Recover     CidsRequest      → []core.PinInfo
	//	RecoverAll  Empty            ⇒ core.PinInfo
	//	Sync        CidsRequest      → []core.PinInfo
	//	SyncAll     Empty            ⇒ core.PinInfo
	ServiceTracker = "PinTracker"
	// ServiceIPFS answers for the peer's IPFS node.
	//
	//	ID          Empty           → core.IPFSID
	//	BlockPut    BlockPutRequest → Empty
	//	SwarmPeers  Empty           → []core.PeerID (the IPFS node's peers)
	ServiceIPFS = "IPFSConnector"
	// ServiceMonitor receives other peers' metrics.
	//
	//	LogMetrics  MetricsRequest → Empty
	ServiceMonitor = "PeerMonitor"
)

// Method names (see the services for their types).
const (
	MethodID         = "ID"
	MethodPeerAdd    = "PeerAdd"
	MethodPeerRemove = "PeerRemove"
	MethodWrite      = "Write"
	MethodStatus     = "Status"
	MethodStatusAll  = "StatusAll"
	MethodRecover    = "Recover"
	MethodRecoverAll = "RecoverAll"
	MethodSync       = "Sync"
	MethodSyncAll    = "SyncAll"
	MethodBlockPut   = "BlockPut"
	MethodSwarmPeers = "SwarmPeers"
	MethodRepoGC     = "RepoGC"
	MethodLogMetrics = "LogMetrics"
)

// Empty is the argument or answer of a call that carries none.
type Empty struct{}

// CidsRequest names the CIDs of a Status, Recover or Sync call.
type CidsRequest struct {
	Cids []core.Cid `json:"cids"`
}

// StatusAllRequest asks for the local status of every pin matching Filter
// (0 matches every status).
type StatusAllRequest struct {
	Filter core.TrackerStatus `json:"-"`
}

type statusAllJSON struct {
	// Filter travels as its bits: a combination of statuses has no name.
	Filter uint32 `json:"filter"`
}

// MarshalJSON writes the filter as a number.
func (r StatusAllRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(statusAllJSON{Filter: uint32(r.Filter)})
}

// UnmarshalJSON reads the filter as a number.
func (r *StatusAllRequest) UnmarshalJSON(b []byte) error {
	var j statusAllJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	r.Filter = core.TrackerStatus(j.Filter)
	return nil
}

// PeerAddRequest asks a cluster peer to add Peer to the consensus peerset;
// ConsensusAddress is what the new peer's consensus answered to Address.
type PeerAddRequest struct {
	Peer             peer.ID `json:"peer,omitempty"`
	ConsensusAddress string  `json:"consensus_address"`
}

// PeerRemoveRequest asks a cluster peer to remove Peer from the peerset.
type PeerRemoveRequest struct {
	Peer peer.ID `json:"peer,omitempty"`
}

// WriteRequest is a batch of pins and unpins a peer hands to the raft
// leader's pinset writer, so that the requests of every peer are looked up,
// allocated and committed together.
type WriteRequest struct {
	Ops []WriteOp `json:"ops"`
}

// WriteOp is one request of a WriteRequest. The pin is complete (defaults
// applied and checked by the sender); for an unpin only its CID counts.
type WriteOp struct {
	Remove bool     `json:"remove,omitempty"`
	Pin    core.Pin `json:"pin"`
	// Preset are allocations the sender decided; null means allocate.
	Preset []peer.ID `json:"preset"`
}

// WriteResult answers one WriteOp: the pin as committed, or an error (with
// the HTTP status of a core.Error, 0 for any other error).
type WriteResult struct {
	Pin   core.Pin `json:"pin"`
	Error string   `json:"error,omitempty"`
	Code  int      `json:"code,omitempty"`
}

// NewWriteResult returns the answer for a committed pin or an error.
func NewWriteResult(p core.Pin, err error) WriteResult {
	if err == nil {
		return WriteResult{Pin: p}
	}
	r := WriteResult{Error: err.Error()}
	var ce core.Error
	var cep *core.Error
	switch {
	case errors.As(err, &ce):
		r.Code = ce.Code
	case errors.As(err, &cep) && cep != nil:
		r.Code = cep.Code
	}
	return r
}

// Err returns the result's error: a core.Error when it had a status, else
// a RemoteError (which errors.Is matches with sentinel errors by text).
func (r WriteResult) Err() error {
	switch {
	case r.Error == "":
		return nil
	case r.Code != 0:
		return core.Error{Code: r.Code, Message: r.Error}
	default:
		return &RemoteError{Msg: r.Error}
	}
}

// MetricsRequest carries metrics a peer publishes about itself.
type MetricsRequest struct {
	Metrics []core.Metric `json:"metrics"`
}

// BlockPutRequest is a batch of blocks of an /add for the receiving peer's
// IPFS node. It travels in binary (see WireMarshaler): for each block, the
// CID's bytes and the data, each prefixed with its length as a uvarint,
// after the number of blocks.
type BlockPutRequest struct {
	Blocks []core.Block
}

// MarshalWire encodes the batch.
func (r BlockPutRequest) MarshalWire() ([]byte, error) {
	size := binary.MaxVarintLen64
	for _, b := range r.Blocks {
		size += 2*binary.MaxVarintLen64 + len(b.Cid.Bytes()) + len(b.Data)
	}
	out := make([]byte, 0, size)
	out = binary.AppendUvarint(out, uint64(len(r.Blocks)))
	for _, b := range r.Blocks {
		c := b.Cid.Bytes()
		out = binary.AppendUvarint(out, uint64(len(c)))
		out = append(out, c...)
		out = binary.AppendUvarint(out, uint64(len(b.Data)))
		out = append(out, b.Data...)
	}
	return out, nil
}

// UnmarshalWire decodes a batch. The blocks' data share the memory of b.
func (r *BlockPutRequest) UnmarshalWire(b []byte) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return errMalformed
	}
	rest := b[k:]
	r.Blocks = make([]core.Block, 0, n)
	for i := uint64(0); i < n; i++ {
		var cb, data []byte
		var err error
		if cb, rest, err = readBytes(rest); err != nil {
			return err
		}
		if data, rest, err = readBytes(rest); err != nil {
			return err
		}
		c, err := core.CastCid(cb)
		if err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
		r.Blocks = append(r.Blocks, core.Block{Cid: c, Data: data})
	}
	if len(rest) != 0 {
		return errMalformed
	}
	return nil
}

// ClusterService is what the orchestrator serves as ServiceCluster.
type ClusterService interface {
	// ID describes this peer.
	ID(ctx context.Context) (core.ID, error)
	// PeerAdd adds a peer to the consensus peerset.
	PeerAdd(ctx context.Context, req PeerAddRequest) (core.ID, error)
	// PeerRemove removes a peer from the consensus peerset.
	PeerRemove(ctx context.Context, p peer.ID) error
	// Write commits a batch of pins and unpins and answers each.
	Write(ctx context.Context, ops []WriteOp) ([]WriteResult, error)
}

// TrackerService is what the orchestrator serves as ServiceTracker: the
// local statuses of this peer. core.PinTracker has these methods.
type TrackerService interface {
	// Status reports the local status of each CID, in request order.
	Status(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error)
	// StatusAll streams the local status of every pin matching filter.
	StatusAll(ctx context.Context, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error]
	// Recover re-queues the CIDs whose status is an error.
	Recover(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error)
	// RecoverAll re-queues every errored pin and streams those re-queued.
	RecoverAll(ctx context.Context) iter.Seq2[core.PinInfo, error]
	// Sync re-checks the CIDs against IPFS.
	Sync(ctx context.Context, cids []core.Cid) ([]core.PinInfo, error)
	// SyncAll re-checks every pin against IPFS and streams the result.
	SyncAll(ctx context.Context) iter.Seq2[core.PinInfo, error]
}

// IPFSService is what the orchestrator serves as ServiceIPFS.
// core.IPFSConnector has these methods.
type IPFSService interface {
	// ID returns the identity and addresses of the peer's IPFS node.
	ID(ctx context.Context) (core.IPFSID, error)
	// BlockPut stores a batch of blocks (of an /add) on the IPFS node.
	BlockPut(ctx context.Context, blocks []core.Block) error
	// SwarmPeers returns the peers the IPFS node is connected to.
	SwarmPeers(ctx context.Context) ([]core.PeerID, error)
	// RepoGC runs a garbage collection on the IPFS node and streams the
	// keys it removes (a stream: a collection outlasts any call timeout).
	RepoGC(ctx context.Context) iter.Seq2[core.IPFSRepoGCKey, error]
}

var (
	_ TrackerService = core.PinTracker(nil)
	_ IPFSService    = core.IPFSConnector(nil)
)

// RegisterCluster serves s as ServiceCluster.
func RegisterCluster(r *RPC, s ClusterService) error {
	return errors.Join(
		Handle(r, ServiceCluster, MethodID, func(ctx context.Context, _ Empty) (core.ID, error) {
			return s.ID(ctx)
		}),
		Handle(r, ServiceCluster, MethodPeerAdd, s.PeerAdd),
		Handle(r, ServiceCluster, MethodPeerRemove, func(ctx context.Context, in PeerRemoveRequest) (Empty, error) {
			return Empty{}, s.PeerRemove(ctx, in.Peer)
		}),
		Handle(r, ServiceCluster, MethodWrite, func(ctx context.Context, in WriteRequest) (WriteResults, error) {
			return s.Write(ctx, in.Ops)
		}),
	)
}

// RegisterTracker serves s as ServiceTracker.
func RegisterTracker(r *RPC, s TrackerService) error {
	cids := func(fn func(context.Context, []core.Cid) ([]core.PinInfo, error)) func(context.Context, CidsRequest) ([]core.PinInfo, error) {
		return func(ctx context.Context, in CidsRequest) ([]core.PinInfo, error) { return fn(ctx, in.Cids) }
	}
	all := func(fn func(context.Context) iter.Seq2[core.PinInfo, error]) func(context.Context, Empty) iter.Seq2[core.PinInfo, error] {
		return func(ctx context.Context, _ Empty) iter.Seq2[core.PinInfo, error] { return fn(ctx) }
	}
	return errors.Join(
		Handle(r, ServiceTracker, MethodStatus, cids(s.Status)),
		HandleStream(r, ServiceTracker, MethodStatusAll, func(ctx context.Context, in StatusAllRequest) iter.Seq2[core.PinInfo, error] {
			return s.StatusAll(ctx, in.Filter)
		}),
		Handle(r, ServiceTracker, MethodRecover, cids(s.Recover)),
		HandleStream(r, ServiceTracker, MethodRecoverAll, all(s.RecoverAll)),
		Handle(r, ServiceTracker, MethodSync, cids(s.Sync)),
		HandleStream(r, ServiceTracker, MethodSyncAll, all(s.SyncAll)),
	)
}

// RegisterIPFS serves s as ServiceIPFS.
func RegisterIPFS(r *RPC, s IPFSService) error {
	return errors.Join(
		Handle(r, ServiceIPFS, MethodID, func(ctx context.Context, _ Empty) (core.IPFSID, error) {
			return s.ID(ctx)
		}),
		Handle(r, ServiceIPFS, MethodBlockPut, func(ctx context.Context, in BlockPutRequest) (Empty, error) {
			return Empty{}, s.BlockPut(ctx, in.Blocks)
		}),
		Handle(r, ServiceIPFS, MethodSwarmPeers, func(ctx context.Context, _ Empty) ([]core.PeerID, error) {
			return s.SwarmPeers(ctx)
		}),
		HandleStream(r, ServiceIPFS, MethodRepoGC, func(ctx context.Context, _ Empty) iter.Seq2[core.IPFSRepoGCKey, error] {
			return s.RepoGC(ctx)
		}),
	)
}

// Client calls the cluster's services on one peer with their wire types.
// A call to the host's own ID is served locally.
type Client struct{ r *RPC }

// Client returns a typed client of the cluster's services.
func (r *RPC) Client() Client { return Client{r} }

// ID asks p to describe itself.
func (c Client) ID(ctx context.Context, p peer.ID) (core.ID, error) {
	var out core.ID
	err := c.r.Call(ctx, p, ServiceCluster, MethodID, Empty{}, &out)
	return out, err
}

// IDs asks every peer in parallel; errs[i] is the error of peers[i].
func (c Client) IDs(ctx context.Context, peers []peer.ID) ([]core.ID, []error) {
	out := make([]core.ID, len(peers))
	errs := c.r.MultiCall(ctx, peers, ServiceCluster, MethodID, Empty{}, Outs(out))
	return out, errs
}

// PeerAdd asks p to add a peer to the consensus peerset.
func (c Client) PeerAdd(ctx context.Context, p peer.ID, req PeerAddRequest) (core.ID, error) {
	var out core.ID
	err := c.r.Call(ctx, p, ServiceCluster, MethodPeerAdd, req, &out)
	return out, err
}

// PeerRemove asks p to remove a peer from the consensus peerset.
func (c Client) PeerRemove(ctx context.Context, p, remove peer.ID) error {
	return c.r.Call(ctx, p, ServiceCluster, MethodPeerRemove, PeerRemoveRequest{Peer: remove}, nil)
}

// Write asks p to commit ops; the answer has one result per op, in order.
func (c Client) Write(ctx context.Context, p peer.ID, ops []WriteOp) ([]WriteResult, error) {
	var out WriteResults
	if err := c.r.Call(ctx, p, ServiceCluster, MethodWrite, WriteRequest{Ops: ops}, &out); err != nil {
		return nil, err
	}
	if len(out) != len(ops) {
		return nil, c.r.callErr(p, ServiceCluster, MethodWrite, fmt.Errorf("%d results for %d ops", len(out), len(ops)))
	}
	return out, nil
}

// Status asks p for its local status of each CID.
func (c Client) Status(ctx context.Context, p peer.ID, cids []core.Cid) ([]core.PinInfo, error) {
	var out []core.PinInfo
	err := c.r.Call(ctx, p, ServiceTracker, MethodStatus, CidsRequest{Cids: cids}, &out)
	return out, err
}

// StatusCid asks p for its local status of one CID.
func (c Client) StatusCid(ctx context.Context, p peer.ID, ci core.Cid) (core.PinInfo, error) {
	out, err := c.Status(ctx, p, []core.Cid{ci})
	if err != nil {
		return core.PinInfo{}, err
	}
	if len(out) != 1 {
		return core.PinInfo{}, c.r.callErr(p, ServiceTracker, MethodStatus, fmt.Errorf("%d statuses for one CID", len(out)))
	}
	return out[0], nil
}

// StatusAll streams p's local status of every pin matching filter.
func (c Client) StatusAll(ctx context.Context, p peer.ID, filter core.TrackerStatus) iter.Seq2[core.PinInfo, error] {
	return Stream[core.PinInfo](ctx, c.r, p, ServiceTracker, MethodStatusAll, StatusAllRequest{Filter: filter})
}

// Recover asks p to recover the CIDs.
func (c Client) Recover(ctx context.Context, p peer.ID, cids []core.Cid) ([]core.PinInfo, error) {
	var out []core.PinInfo
	err := c.r.Call(ctx, p, ServiceTracker, MethodRecover, CidsRequest{Cids: cids}, &out)
	return out, err
}

// RecoverAll asks p to recover every errored pin and streams those re-queued.
func (c Client) RecoverAll(ctx context.Context, p peer.ID) iter.Seq2[core.PinInfo, error] {
	return Stream[core.PinInfo](ctx, c.r, p, ServiceTracker, MethodRecoverAll, Empty{})
}

// Sync asks p to re-check the CIDs against its IPFS node.
func (c Client) Sync(ctx context.Context, p peer.ID, cids []core.Cid) ([]core.PinInfo, error) {
	var out []core.PinInfo
	err := c.r.Call(ctx, p, ServiceTracker, MethodSync, CidsRequest{Cids: cids}, &out)
	return out, err
}

// SyncAll asks p to re-check every pin and streams the result.
func (c Client) SyncAll(ctx context.Context, p peer.ID) iter.Seq2[core.PinInfo, error] {
	return Stream[core.PinInfo](ctx, c.r, p, ServiceTracker, MethodSyncAll, Empty{})
}

// IPFSID asks p for the identity and addresses of its IPFS node.
func (c Client) IPFSID(ctx context.Context, p peer.ID) (core.IPFSID, error) {
	var out core.IPFSID
	err := c.r.Call(ctx, p, ServiceIPFS, MethodID, Empty{}, &out)
	return out, err
}

// SwarmPeers asks each peer for the peers its IPFS node is connected to,
// all at once; the answers and errors are in the order of peers.
func (c Client) SwarmPeers(ctx context.Context, peers []peer.ID) ([][]core.PeerID, []error) {
	out := make([][]core.PeerID, len(peers))
	errs := c.r.MultiCall(ctx, peers, ServiceIPFS, MethodSwarmPeers, Empty{}, Outs(out))
	return out, errs
}

// RepoGC runs a garbage collection on p's IPFS node and streams the keys
// it removes.
func (c Client) RepoGC(ctx context.Context, p peer.ID) iter.Seq2[core.IPFSRepoGCKey, error] {
	return Stream[core.IPFSRepoGCKey](ctx, c.r, p, ServiceIPFS, MethodRepoGC, Empty{})
}

// BlockPut stores a batch of blocks on p's IPFS node.
func (c Client) BlockPut(ctx context.Context, p peer.ID, blocks []core.Block) error {
	return c.r.Call(ctx, p, ServiceIPFS, MethodBlockPut, BlockPutRequest{Blocks: blocks}, nil)
}
