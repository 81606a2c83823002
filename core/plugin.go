package core

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"time"
)

// Kind names one of the four kinds of plugin.
type Kind string

// The plugin kinds.
const (
	KindConsensus     Kind = "consensus"
	KindAllocator     Kind = "allocator"
	KindPinTracker    Kind = "pin_tracker"
	KindIPFSConnector Kind = "ipfs_connector"
)

// Kinds lists every plugin kind in start order: a kind may call back into
// the kinds started before it.
var Kinds = []Kind{KindIPFSConnector, KindConsensus, KindAllocator, KindPinTracker}

// ProtocolVersion is the plugin protocol major version this core speaks.
// Messages of one version never change incompatibly; a new major is a new
// protobuf package.
const ProtocolVersion = 1

// ErrPinNotFound is returned when a CID is not in the pinset. Its text is
// the one IPFS Cluster maps to HTTP 404.
var ErrPinNotFound = errors.New("pin is not part of the pinset")

// Description is what a plugin says about itself.
type Description struct {
	Kind             Kind            `json:"kind"`
	Name             string          `json:"name"`
	Version          string          `json:"version"`
	ProtocolVersions []int           `json:"protocol_versions"`
	Capabilities     []string        `json:"capabilities,omitempty"`
	DefaultConfig    json.RawMessage `json:"default_config,omitempty"`
}

// Environment is what the core tells every plugin about the peer it serves.
type Environment struct {
	PeerID   PeerID
	PeerName string
	// DataDir is a folder the plugin owns for its persistent data.
	DataDir string
	// InitPeers are the cluster peers known at start (self included).
	InitPeers []PeerID
	// Secret is the cluster secret (32 bytes): plugins that talk to other
	// peers directly must keep strangers out with it (libp2p private
	// network key).
	Secret []byte
}

// Plugin is the base every plugin kind answers.
type Plugin interface {
	// Describe reports kind, name, version, protocol versions, capabilities
	// and the default configuration. It may be called before Configure.
	Describe(ctx context.Context) (Description, error)
	// Configure hands the plugin its config section (raw JSON, possibly
	// empty for defaults), its environment and the host it can call back.
	// It is called once before any other call, and again after a restart.
	Configure(ctx context.Context, cfg json.RawMessage, env Environment, host Host) error
	// Close releases the plugin's resources.
	Close(ctx context.Context) error
}

// PinsetReader reads the shared pinset.
type PinsetReader interface {
	// GetPin returns the pin of c or ErrPinNotFound.
	GetPin(ctx context.Context, c Cid) (Pin, error)
	// ListPins streams every pin of the pinset.
	ListPins(ctx context.Context) iter.Seq2[Pin, error]
}

// IPFSPinRequest asks the IPFS connector to pin one CID.
type IPFSPinRequest struct {
	Cid Cid
	// MaxDepth is -1 for a recursive pin, 0 for a direct pin.
	MaxDepth int
	// Timeout bounds the pin; 0 means the connector's default.
	Timeout time.Duration
}

// IPFSPinResult is the outcome of one pin or unpin.
type IPFSPinResult struct {
	Cid   Cid
	Error string
}

// IPFSPinner is the part of the IPFS connector the pin tracker uses.
type IPFSPinner interface {
	// Pin pins every request; results stream back in completion order.
	Pin(ctx context.Context, reqs []IPFSPinRequest) iter.Seq2[IPFSPinResult, error]
	// Unpin unpins every CID; a CID that was not pinned is not an error.
	Unpin(ctx context.Context, cids []Cid) iter.Seq2[IPFSPinResult, error]
	// PinLs streams every recursive and direct pin.
	PinLs(ctx context.Context) iter.Seq2[IPFSPinInfo, error]
	// PinLsCids reports how each CID is pinned, in request order.
	PinLsCids(ctx context.Context, cids []Cid) ([]IPFSPinInfo, error)
}

// Host is what the core offers to plugins: the pinset and the IPFS node.
type Host interface {
	PinsetReader
	IPFSPinner
}

// Endpoint is where a plugin process serves its gRPC services: Network
// "unix" (Address is the socket's path) or "tcp" (Address is host:port).
// The zero Endpoint means there is none.
type Endpoint struct {
	Network string
	Address string
}

// IPFSEndpointer is implemented by a Host that can tell where the IPFS
// connector's plugin process serves, so that a plugin calls the connector
// there directly instead of through the host. It is also implemented by
// the core's client of a connector plugin process. A zero Endpoint means
// the connector has none (it runs in the core's process, or is down):
// call through the host.
type IPFSEndpointer interface {
	IPFSEndpoint(ctx context.Context) (Endpoint, error)
}

// PinOp is one change to the pinset: a pin added (or replaced) or removed.
// For a removal only Pin.Cid is meaningful.
type PinOp struct {
	Remove bool
	Pin    Pin
}

// PinEvent is a batch of operations applied to the pinset, in log order.
// Resync means the watcher missed operations and must re-read the pinset.
type PinEvent struct {
	Ops    []PinOp
	Resync bool
}

// Consensus keeps the shared pinset and the peerset.
type Consensus interface {
	Plugin
	PinsetReader
	// GetPins looks up several CIDs at once: one entry per CID, in order; a
	// CID that is not in the pinset gives a Pin whose Cid is undefined.
	GetPins(ctx context.Context, cids []Cid) ([]Pin, error)
	// Commit applies ops to the shared pinset and returns once they are
	// committed and applied on this peer.
	Commit(ctx context.Context, ops []PinOp) error
	// Watch streams every batch of operations applied from now on.
	Watch(ctx context.Context) iter.Seq2[PinEvent, error]
	// Peers returns the current peerset.
	Peers(ctx context.Context) ([]PeerID, error)
	// AddPeer adds a peer to the peerset; addr is what that peer's
	// consensus answered to Address.
	AddPeer(ctx context.Context, p PeerID, addr string) error
	// Address is where other peers reach this peer's consensus ("" when it
	// needs no network of its own).
	Address(ctx context.Context) (string, error)
	// RemovePeer removes a peer from the peerset.
	RemovePeer(ctx context.Context, p PeerID) error
	// Leader returns the current leader, if the consensus has one.
	Leader(ctx context.Context) (PeerID, error)
}

// PinAllocation asks for the allocations of one pin.
type PinAllocation struct {
	Cid Cid
	// Current are the peers already holding the pin that stay allocated.
	Current []PeerID
	// Priority are the user's preferred peers (user_allocations).
	Priority []PeerID
	// Needed is the least number of new peers that must be found; Wanted
	// the most that should be returned.
	Needed, Wanted int
}

// AllocateRequest is a batch of pins to allocate with the latest valid
// metrics of every candidate peer.
type AllocateRequest struct {
	Metrics []Metric
	Pins    []PinAllocation
}

// AllocateResult holds, for one pin, the new peers in order of preference
// (at most Wanted of them), or an error.
type AllocateResult struct {
	Peers []PeerID
	Error string
}

// Allocator chooses where pins go. It keeps no state.
type Allocator interface {
	Plugin
	// Allocate answers every pin of the request, in order.
	Allocate(ctx context.Context, req AllocateRequest) ([]AllocateResult, error)
}

// TrackerStats are counters the pin tracker exposes for metrics.
type TrackerStats struct {
	PinQueued, Pinning, PinErrors int64
}

// PinTracker makes the local IPFS node follow the pinset.
type PinTracker interface {
	Plugin
	// Track queues pins that were added to (or changed in) the pinset.
	Track(ctx context.Context, pins []Pin) error
	// Untrack queues the unpin of CIDs removed from the pinset.
	Untrack(ctx context.Context, cids []Cid) error
	// Status reports the local status of each CID, in request order.
	Status(ctx context.Context, cids []Cid) ([]PinInfo, error)
	// StatusAll streams the local status of every pin matching filter.
	StatusAll(ctx context.Context, filter TrackerStatus) iter.Seq2[PinInfo, error]
	// Recover re-queues the CIDs whose status is an error.
	Recover(ctx context.Context, cids []Cid) ([]PinInfo, error)
	// RecoverAll re-queues every errored pin and streams those re-queued.
	RecoverAll(ctx context.Context) iter.Seq2[PinInfo, error]
	// Sync re-checks the CIDs against IPFS and reports the result.
	Sync(ctx context.Context, cids []Cid) ([]PinInfo, error)
	// SyncAll re-checks every pin against IPFS and streams the result.
	SyncAll(ctx context.Context) iter.Seq2[PinInfo, error]
	// Stats reports queue counters.
	Stats(ctx context.Context) (TrackerStats, error)
}

// Block is one IPFS block.
type Block struct {
	Cid  Cid
	Data []byte
}

// IPFSConnector drives the IPFS node of this peer.
type IPFSConnector interface {
	Plugin
	IPFSPinner
	// ID returns the IPFS node's identity.
	ID(ctx context.Context) (IPFSID, error)
	// RepoStat returns the repository size and limit.
	RepoStat(ctx context.Context) (IPFSRepoStat, error)
	// RepoGC collects garbage and streams the removed keys.
	RepoGC(ctx context.Context) iter.Seq2[IPFSRepoGCKey, error]
	// Resolve resolves an /ipfs, /ipns or /ipld path to a CID.
	Resolve(ctx context.Context, path string) (Cid, error)
	// BlockPut stores a batch of blocks.
	BlockPut(ctx context.Context, blocks []Block) error
	// BlockGet returns the data of one block.
	BlockGet(ctx context.Context, c Cid) ([]byte, error)
	// SwarmPeers lists the IPFS peers the node is connected to.
	SwarmPeers(ctx context.Context) ([]PeerID, error)
	// SwarmConnect connects the node to the given multiaddrs.
	SwarmConnect(ctx context.Context, addrs []string) error
	// ConfigKey returns the value of one key of the node's configuration.
	ConfigKey(ctx context.Context, key string) (json.RawMessage, error)
}

// PinResultTally counts the results of an IPFS Pin or Unpin call by CID,
// to tell which requests had none when the call was cut short (both calls
// are idempotent per CID, so those can be sent again).
type PinResultTally map[string]int

// Add counts a result for c.
func (t PinResultTally) Add(c Cid) { t[c.KeyString()]++ }

// Unanswered returns the requests of reqs without a counted result, in
// order; a CID requested twice needs two results.
func Unanswered[R any](t PinResultTally, reqs []R, cidOf func(R) Cid) []R {
	var rest []R
	for _, r := range reqs {
		k := cidOf(r).KeyString()
		if t[k] > 0 {
			t[k]--
			continue
		}
		rest = append(rest, r)
	}
	return rest
}
