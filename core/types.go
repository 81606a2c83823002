package core

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerID identifies a cluster peer or an IPFS node (libp2p peer ID format).
type PeerID = peer.ID

// DecodePeerID parses a peer ID string (base58 or CIDv1 libp2p-key).
func DecodePeerID(s string) (PeerID, error) { return peer.Decode(s) }

// PinOptions are the options a user sets when pinning.
type PinOptions struct {
	ReplicationFactorMin int               `json:"replication_factor_min"`
	ReplicationFactorMax int               `json:"replication_factor_max"`
	Name                 string            `json:"name"`
	Mode                 PinMode           `json:"mode"`
	ShardSize            uint64            `json:"shard_size"`
	UserAllocations      []PeerID          `json:"user_allocations"`
	ExpireAt             time.Time         `json:"expire_at"`
	Metadata             map[string]string `json:"metadata"`
	PinUpdate            Cid               `json:"pin_update"`
	Origins              []string          `json:"origins"` // multiaddrs with /p2p/
}

// Pin is an element of the shared pinset: a CID with its options and the
// peers it is allocated to (empty allocations mean every peer).
type Pin struct {
	PinOptions
	Cid         Cid       `json:"cid"`
	Type        PinType   `json:"type"`
	Allocations []PeerID  `json:"allocations"`
	MaxDepth    int       `json:"max_depth"`
	Reference   Cid       `json:"reference"`
	Timestamp   time.Time `json:"timestamp"`
}

// MarshalJSON writes allocations as [] rather than null, as IPFS Cluster does.
func (p Pin) MarshalJSON() ([]byte, error) {
	type plain Pin
	if p.Allocations == nil {
		p.Allocations = []PeerID{}
	}
	return json.Marshal(plain(p))
}

// IsAllocatedTo reports whether self must hold the pin: it is among the
// allocations, or the pin goes everywhere (no allocations).
func (p *Pin) IsAllocatedTo(self PeerID) bool {
	if len(p.Allocations) == 0 {
		return true
	}
	for _, a := range p.Allocations {
		if a == self {
			return true
		}
	}
	return false
}

// Recursive reports whether IPFS should pin the DAG under the CID.
func (p *Pin) Recursive() bool { return p.MaxDepth != 0 }

// PinInfoShort is the status of a pin on one peer, as found in GlobalPinInfo.peer_map.
type PinInfoShort struct {
	PeerName      string        `json:"peername"`
	IPFS          PeerID        `json:"ipfs_peer_id,omitempty"`
	IPFSAddresses []string      `json:"ipfs_peer_addresses,omitempty"`
	Status        TrackerStatus `json:"status"`
	TS            time.Time     `json:"timestamp"`
	Error         string        `json:"error"`
	AttemptCount  int           `json:"attempt_count"`
	PriorityPin   bool          `json:"priority_pin"`
}

// PinInfo is the status of a pin on one peer.
type PinInfo struct {
	Cid         Cid               `json:"cid"`
	Name        string            `json:"name"`
	Peer        PeerID            `json:"peer"`
	Allocations []PeerID          `json:"allocations"`
	Origins     []string          `json:"origins"`
	Created     time.Time         `json:"created"`
	Metadata    map[string]string `json:"metadata"`
	PinInfoShort
}

// ToGlobal wraps a local PinInfo as a one-peer GlobalPinInfo.
func (pi PinInfo) ToGlobal() GlobalPinInfo {
	g := GlobalPinInfo{}
	g.Add(pi)
	return g
}

// GlobalPinInfo is the status of a pin on every peer of the cluster.
type GlobalPinInfo struct {
	Cid         Cid                     `json:"cid"`
	Name        string                  `json:"name"`
	Allocations []PeerID                `json:"allocations"`
	Origins     []string                `json:"origins"`
	Created     time.Time               `json:"created"`
	Metadata    map[string]string       `json:"metadata"`
	PeerMap     map[string]PinInfoShort `json:"peer_map"`
}

// Add merges one peer's PinInfo. The top-level fields come from the first
// entry, or from any entry that is not a cluster_error.
func (g *GlobalPinInfo) Add(pi PinInfo) {
	if g.PeerMap == nil || pi.Status != TrackerStatusClusterError {
		g.Cid = pi.Cid
		g.Name = pi.Name
		g.Allocations = pi.Allocations
		g.Origins = pi.Origins
		g.Created = pi.Created
		g.Metadata = pi.Metadata
	}
	if g.PeerMap == nil {
		g.PeerMap = make(map[string]PinInfoShort, 1)
	}
	g.PeerMap[peerKey(pi.Peer)] = pi.PinInfoShort
}

// maxPeerKeys bounds peerKeys: a cluster has far fewer peers.
const maxPeerKeys = 4096

// peerKeys caches the string forms of the peer IDs that key PeerMaps. A
// status stream names the same few peers on every line, and encoding a
// peer ID in base58 costs more than the rest of Add.
var (
	peerKeys     sync.Map // PeerID → string
	peerKeyCount atomic.Int32
)

// peerKey returns p.String().
func peerKey(p PeerID) string {
	if s, ok := peerKeys.Load(p); ok {
		return s.(string)
	}
	s := p.String()
	if peerKeyCount.Load() < maxPeerKeys {
		if _, loaded := peerKeys.LoadOrStore(p, s); !loaded {
			peerKeyCount.Add(1)
		}
	}
	return s
}

// Match reports whether any peer's status passes filter.
func (g *GlobalPinInfo) Match(filter TrackerStatus) bool {
	for _, p := range g.PeerMap {
		if p.Status.Match(filter) {
			return true
		}
	}
	return false
}

// IPFSID is the identity of the IPFS node attached to a peer.
type IPFSID struct {
	ID        PeerID   `json:"id,omitempty"`
	Addresses []string `json:"addresses"`
	Error     string   `json:"error"`
}

// ID describes a cluster peer.
type ID struct {
	ID                    PeerID   `json:"id"`
	Addresses             []string `json:"addresses"`
	ClusterPeers          []PeerID `json:"cluster_peers"`
	ClusterPeersAddresses []string `json:"cluster_peers_addresses"`
	Version               string   `json:"version"`
	Commit                string   `json:"commit"`
	RPCProtocolVersion    string   `json:"rpc_protocol_version"`
	Error                 string   `json:"error"`
	IPFS                  IPFSID   `json:"ipfs"`
	Peername              string   `json:"peername"`
}

// Version is the body of GET /version.
type Version struct {
	Version string `json:"version"`
}

// Metric is a measurement a peer publishes about itself, used for allocation.
type Metric struct {
	Name          string `json:"name"`
	Peer          PeerID `json:"peer"`
	Value         string `json:"value"`
	Expire        int64  `json:"expire"` // unix nanoseconds
	Valid         bool   `json:"valid"`
	Weight        int64  `json:"weight"`
	Partitionable bool   `json:"partitionable"`
	ReceivedAt    int64  `json:"received_at"` // unix nanoseconds
}

// Expired reports whether the metric's TTL has passed.
func (m *Metric) Expired(now time.Time) bool { return now.UnixNano() > m.Expire }

// Alert is raised when a peer's metric expires.
type Alert struct {
	Metric
	TriggeredAt time.Time `json:"triggered_at"`
}

// AddedOutput is one item of the /add response stream.
type AddedOutput struct {
	Name        string   `json:"name"`
	Cid         Cid      `json:"cid"`
	Bytes       uint64   `json:"bytes,omitempty"`
	Size        uint64   `json:"size,omitempty"`
	Allocations []PeerID `json:"allocations,omitempty"`
}

// ConnectGraph is the connectivity graph of the cluster and its IPFS nodes.
type ConnectGraph struct {
	ClusterID         PeerID              `json:"cluster_id"`
	IDtoPeername      map[string]string   `json:"id_to_peername"`
	IPFSLinks         map[string][]PeerID `json:"ipfs_links"`
	ClusterLinks      map[string][]PeerID `json:"cluster_links"`
	ClusterTrustLinks map[string]bool     `json:"cluster_trust_links"`
	ClustertoIPFS     map[string]PeerID   `json:"cluster_to_ipfs"`
}

// IPFSRepoGCKey is one key removed (or failed) by a repo GC.
type IPFSRepoGCKey struct {
	Key   Cid    `json:"key"`
	Error string `json:"error,omitempty"`
}

// RepoGC is the result of a repo GC on one peer.
type RepoGC struct {
	Peer     PeerID          `json:"peer"`
	Peername string          `json:"peername"`
	Keys     []IPFSRepoGCKey `json:"keys"`
	Error    string          `json:"error,omitempty"`
}

// GlobalRepoGC is the result of a repo GC on every peer.
type GlobalRepoGC struct {
	PeerMap map[string]RepoGC `json:"peer_map"`
}

// IPFSRepoStat is the size of an IPFS repository.
type IPFSRepoStat struct {
	RepoSize   uint64 `json:"repo_size"`
	StorageMax uint64 `json:"storage_max"`
	NumObjects uint64 `json:"num_objects"`
}

// IPFSPinStatus says how IPFS holds a CID.
type IPFSPinStatus string

// IPFS pin statuses.
const (
	IPFSPinStatusUnpinned  IPFSPinStatus = ""
	IPFSPinStatusDirect    IPFSPinStatus = "direct"
	IPFSPinStatusRecursive IPFSPinStatus = "recursive"
	IPFSPinStatusIndirect  IPFSPinStatus = "indirect"
)

// IsPinned reports whether IPFS holds the CID as a direct or recursive pin
// (an indirect pin does not count: it disappears with its parent).
func (s IPFSPinStatus) IsPinned() bool {
	return s == IPFSPinStatusDirect || s == IPFSPinStatusRecursive
}

// IPFSPinInfo is one entry of an IPFS pin listing.
type IPFSPinInfo struct {
	Cid  Cid           `json:"Cid"`
	Type IPFSPinStatus `json:"Type"`
}

// Error is the JSON error body of the REST API.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e Error) Error() string { return e.Message }
