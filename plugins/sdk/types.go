package sdk

import (
	"iter"

	"github.com/pincluster/pincluster/core"
)

// The types, constants and helpers of package core that a plugin author
// needs, under the SDK's name, so that a plugin imports this package (and,
// in its tests, package conformance) and nothing else of pincluster. They
// are aliases: an sdk.Pin is a core.Pin.

// ProtocolVersion is the plugin protocol version this SDK speaks. A plugin
// lists it in Description.ProtocolVersions.
const ProtocolVersion = core.ProtocolVersion

// The plugin interfaces, one per kind, and the base they share.
type (
	// Plugin is what every kind answers: Describe, Configure, Close.
	Plugin = core.Plugin
	// Consensus keeps the shared pinset and the peerset.
	Consensus = core.Consensus
	// Allocator chooses where pins go.
	Allocator = core.Allocator
	// PinTracker makes the local IPFS node follow the pinset.
	PinTracker = core.PinTracker
	// IPFSConnector drives the IPFS node of the peer.
	IPFSConnector = core.IPFSConnector

	// Host is what the core offers back to a plugin in Configure: the
	// pinset and the IPFS node.
	Host = core.Host
	// PinsetReader reads the shared pinset.
	PinsetReader = core.PinsetReader
	// IPFSPinner pins and unpins on the IPFS node.
	IPFSPinner = core.IPFSPinner
)

// What a plugin says about itself and what the core tells it.
type (
	Kind        = core.Kind
	Description = core.Description
	Environment = core.Environment
)

// The plugin kinds.
const (
	KindConsensus     = core.KindConsensus
	KindAllocator     = core.KindAllocator
	KindPinTracker    = core.KindPinTracker
	KindIPFSConnector = core.KindIPFSConnector
)

// Identifiers.
type (
	// Cid is a content identifier; the zero value is undefined.
	Cid = core.Cid
	// PeerID identifies a cluster peer or an IPFS node.
	PeerID = core.PeerID
)

// UndefCid is the undefined CID.
var UndefCid = core.UndefCid

// DecodeCid parses a CID string in any multibase encoding.
func DecodeCid(s string) (Cid, error) { return core.DecodeCid(s) }

// CastCid parses the binary form of a CID.
func CastCid(b []byte) (Cid, error) { return core.CastCid(b) }

// DecodePeerID parses a peer ID string.
func DecodePeerID(s string) (PeerID, error) { return core.DecodePeerID(s) }

// The pinset.
type (
	Pin        = core.Pin
	PinOptions = core.PinOptions
	PinType    = core.PinType
	PinMode    = core.PinMode
	PinOp      = core.PinOp
	PinEvent   = core.PinEvent
)

// Pin types and modes.
const (
	DataType       = core.DataType
	MetaType       = core.MetaType
	ClusterDAGType = core.ClusterDAGType
	ShardType      = core.ShardType

	PinModeRecursive = core.PinModeRecursive
	PinModeDirect    = core.PinModeDirect
)

// ErrPinNotFound is the error of a CID that is not in the pinset. Return
// it (or an error wrapping it) and the other side of the boundary gets an
// error for which errors.Is(err, ErrPinNotFound) holds.
var ErrPinNotFound = core.ErrPinNotFound

// The allocator kind.
type (
	Metric          = core.Metric
	PinAllocation   = core.PinAllocation
	AllocateRequest = core.AllocateRequest
	AllocateResult  = core.AllocateResult
)

// The pin tracker kind.
type (
	PinInfo       = core.PinInfo
	PinInfoShort  = core.PinInfoShort
	TrackerStatus = core.TrackerStatus
	TrackerStats  = core.TrackerStats
)

// Tracker statuses (bit flags: a filter may combine them).
const (
	TrackerStatusUndefined            = core.TrackerStatusUndefined
	TrackerStatusClusterError         = core.TrackerStatusClusterError
	TrackerStatusPinError             = core.TrackerStatusPinError
	TrackerStatusUnpinError           = core.TrackerStatusUnpinError
	TrackerStatusPinned               = core.TrackerStatusPinned
	TrackerStatusPinning              = core.TrackerStatusPinning
	TrackerStatusUnpinning            = core.TrackerStatusUnpinning
	TrackerStatusUnpinned             = core.TrackerStatusUnpinned
	TrackerStatusRemote               = core.TrackerStatusRemote
	TrackerStatusPinQueued            = core.TrackerStatusPinQueued
	TrackerStatusUnpinQueued          = core.TrackerStatusUnpinQueued
	TrackerStatusSharded              = core.TrackerStatusSharded
	TrackerStatusUnexpectedlyUnpinned = core.TrackerStatusUnexpectedlyUnpinned
	TrackerStatusError                = core.TrackerStatusError
	TrackerStatusQueued               = core.TrackerStatusQueued
)

// The IPFS connector kind (and the IPFS half of Host).
type (
	IPFSPinRequest = core.IPFSPinRequest
	IPFSPinResult  = core.IPFSPinResult
	IPFSPinInfo    = core.IPFSPinInfo
	IPFSPinStatus  = core.IPFSPinStatus
	IPFSID         = core.IPFSID
	IPFSRepoStat   = core.IPFSRepoStat
	IPFSRepoGCKey  = core.IPFSRepoGCKey
	Block          = core.Block
)

// How IPFS holds a CID.
const (
	IPFSPinStatusUnpinned  = core.IPFSPinStatusUnpinned
	IPFSPinStatusDirect    = core.IPFSPinStatusDirect
	IPFSPinStatusRecursive = core.IPFSPinStatusRecursive
	IPFSPinStatusIndirect  = core.IPFSPinStatusIndirect
)

// Streams: the kinds answer lists that may be long (ListPins, StatusAll,
// Pin, ...) as iter.Seq2[T, error] sequences.

// SliceSeq streams the elements of s.
func SliceSeq[T any](s []T) iter.Seq2[T, error] { return core.SliceSeq(s) }

// ErrSeq is a stream that yields only err.
func ErrSeq[T any](err error) iter.Seq2[T, error] { return core.ErrSeq[T](err) }

// Collect reads a whole stream into a slice, stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) { return core.Collect(seq) }
