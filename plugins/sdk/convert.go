package sdk

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

// CidToBytes returns the binary form of c, or nil when c is undefined.
func CidToBytes(c core.Cid) []byte { return c.Bytes() }

// CidFromBytes parses the binary form of a CID; empty bytes give the
// undefined CID.
func CidFromBytes(b []byte) (core.Cid, error) { return core.CastCid(b) }

// CidsToProto returns the binary forms of cids (nil for nil or empty).
func CidsToProto(cids []core.Cid) [][]byte {
	return convertAll(cids, core.Cid.Bytes)
}

// CidsFromProto parses binary CIDs (nil for none).
func CidsFromProto(bs [][]byte) ([]core.Cid, error) {
	if len(bs) == 0 {
		return nil, nil
	}
	out := make([]core.Cid, len(bs))
	for i, b := range bs {
		c, err := core.CastCid(b)
		if err != nil {
			return nil, fmt.Errorf("cid %d: %w", i, err)
		}
		out[i] = c
	}
	return out, nil
}

// PeerIDToBytes returns the bytes of a peer ID (nil for the empty ID).
func PeerIDToBytes(p core.PeerID) []byte {
	if p == "" {
		return nil
	}
	return []byte(string(p))
}

// PeerIDFromBytes is the inverse of PeerIDToBytes. It does not validate the
// multihash, so that whatever a peer sent round-trips unchanged.
func PeerIDFromBytes(b []byte) core.PeerID { return core.PeerID(b) }

// PeerIDsToProto converts a list of peer IDs (nil for nil or empty).
func PeerIDsToProto(ps []core.PeerID) [][]byte {
	return convertAll(ps, PeerIDToBytes)
}

// PeerIDsFromProto converts a list of peer IDs (nil for none).
func PeerIDsFromProto(bs [][]byte) []core.PeerID {
	return convertAll(bs, PeerIDFromBytes)
}

// The range of times unix nanoseconds can hold.
var (
	maxProtoTime = time.Unix(0, math.MaxInt64)
	minProtoTime = time.Unix(0, math.MinInt64)
)

// TimeToProto returns t in unix nanoseconds, or 0 for the zero time.
// Times beyond what an int64 of nanoseconds holds (before 1678 or after
// 2262) are clamped to its bounds.
func TimeToProto(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(maxProtoTime):
		return math.MaxInt64
	case t.Before(minProtoTime):
		return math.MinInt64
	}
	return t.UnixNano()
}

// TimeFromProto returns the time of n unix nanoseconds, or the zero time
// for 0.
func TimeFromProto(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// DurationToProto returns d in nanoseconds.
func DurationToProto(d time.Duration) int64 { return int64(d) }

// DurationFromProto returns a duration of n nanoseconds.
func DurationFromProto(n int64) time.Duration { return time.Duration(n) }

func clamp32(v int) int32 {
	switch {
	case v > math.MaxInt32:
		return math.MaxInt32
	case v < math.MinInt32:
		return math.MinInt32
	}
	return int32(v)
}

func stringsOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func mapOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

func cidField(name string, b []byte) (core.Cid, error) {
	c, err := core.CastCid(b)
	if err != nil {
		return core.UndefCid, fmt.Errorf("invalid %s: %w", name, err)
	}
	return c, nil
}

// PinToProto converts a pin.
func PinToProto(p core.Pin) *pluginv1.Pin {
	return &pluginv1.Pin{
		Cid:                  p.Cid.Bytes(),
		Type:                 uint32(p.Type),
		Allocations:          PeerIDsToProto(p.Allocations),
		MaxDepth:             clamp32(p.MaxDepth),
		Reference:            p.Reference.Bytes(),
		Timestamp:            TimeToProto(p.Timestamp),
		ReplicationFactorMin: clamp32(p.ReplicationFactorMin),
		ReplicationFactorMax: clamp32(p.ReplicationFactorMax),
		Name:                 p.Name,
		ShardSize:            p.ShardSize,
		UserAllocations:      PeerIDsToProto(p.UserAllocations),
		ExpireAt:             TimeToProto(p.ExpireAt),
		Metadata:             mapOrNil(p.Metadata),
		PinUpdate:            p.PinUpdate.Bytes(),
		Origins:              stringsOrNil(p.Origins),
		Mode:                 uint32(p.Mode),
	}
}

// PinFromProto converts a pin.
func PinFromProto(m *pluginv1.Pin) (core.Pin, error) {
	if m == nil {
		return core.Pin{}, nil
	}
	c, err := cidField("pin cid", m.Cid)
	if err != nil {
		return core.Pin{}, err
	}
	ref, err := cidField("pin reference", m.Reference)
	if err != nil {
		return core.Pin{}, err
	}
	upd, err := cidField("pin_update", m.PinUpdate)
	if err != nil {
		return core.Pin{}, err
	}
	return core.Pin{
		PinOptions: core.PinOptions{
			ReplicationFactorMin: int(m.ReplicationFactorMin),
			ReplicationFactorMax: int(m.ReplicationFactorMax),
			Name:                 m.Name,
			Mode:                 core.PinMode(m.Mode),
			ShardSize:            m.ShardSize,
			UserAllocations:      PeerIDsFromProto(m.UserAllocations),
			ExpireAt:             TimeFromProto(m.ExpireAt),
			Metadata:             mapOrNil(m.Metadata),
			PinUpdate:            upd,
			Origins:              stringsOrNil(m.Origins),
		},
		Cid:         c,
		Type:        core.PinType(m.Type),
		Allocations: PeerIDsFromProto(m.Allocations),
		MaxDepth:    int(m.MaxDepth),
		Reference:   ref,
		Timestamp:   TimeFromProto(m.Timestamp),
	}, nil
}

// PinsToProto converts a list of pins (nil for nil or empty).
func PinsToProto(pins []core.Pin) []*pluginv1.Pin {
	return convertAll(pins, PinToProto)
}

// PinsFromProto converts a list of pins (nil for none).
func PinsFromProto(ms []*pluginv1.Pin) ([]core.Pin, error) {
	return convertAllOrFail(ms, PinFromProto)
}

// PinOpToProto converts a pinset operation.
func PinOpToProto(op core.PinOp) *pluginv1.PinOp {
	return &pluginv1.PinOp{Remove: op.Remove, Pin: PinToProto(op.Pin)}
}

// PinOpFromProto converts a pinset operation.
func PinOpFromProto(m *pluginv1.PinOp) (core.PinOp, error) {
	if m == nil {
		return core.PinOp{}, nil
	}
	p, err := PinFromProto(m.Pin)
	if err != nil {
		return core.PinOp{}, err
	}
	return core.PinOp{Remove: m.Remove, Pin: p}, nil
}

// PinOpsToProto converts a list of operations (nil for nil or empty).
func PinOpsToProto(ops []core.PinOp) []*pluginv1.PinOp {
	return convertAll(ops, PinOpToProto)
}

// PinOpsFromProto converts a list of operations (nil for none).
func PinOpsFromProto(ms []*pluginv1.PinOp) ([]core.PinOp, error) {
	return convertAllOrFail(ms, PinOpFromProto)
}

// PinEventToProto converts a batch of applied operations.
func PinEventToProto(ev core.PinEvent) *pluginv1.PinEvent {
	return &pluginv1.PinEvent{Ops: PinOpsToProto(ev.Ops), Resync: ev.Resync}
}

// PinEventFromProto converts a batch of applied operations.
func PinEventFromProto(m *pluginv1.PinEvent) (core.PinEvent, error) {
	if m == nil {
		return core.PinEvent{}, nil
	}
	ops, err := PinOpsFromProto(m.Ops)
	if err != nil {
		return core.PinEvent{}, err
	}
	return core.PinEvent{Ops: ops, Resync: m.Resync}, nil
}

// PinInfoToProto converts the local status of a pin.
func PinInfoToProto(pi core.PinInfo) *pluginv1.PinInfo {
	return &pluginv1.PinInfo{
		Cid:               pi.Cid.Bytes(),
		Name:              pi.Name,
		Peer:              PeerIDToBytes(pi.Peer),
		Allocations:       PeerIDsToProto(pi.Allocations),
		Origins:           stringsOrNil(pi.Origins),
		Created:           TimeToProto(pi.Created),
		Metadata:          mapOrNil(pi.Metadata),
		Peername:          pi.PeerName,
		IpfsPeerId:        PeerIDToBytes(pi.IPFS),
		IpfsPeerAddresses: stringsOrNil(pi.IPFSAddresses),
		Status:            uint32(pi.Status),
		Timestamp:         TimeToProto(pi.TS),
		Error:             pi.Error,
		AttemptCount:      clamp32(pi.AttemptCount),
		PriorityPin:       pi.PriorityPin,
	}
}

// PinInfoFromProto converts the local status of a pin.
func PinInfoFromProto(m *pluginv1.PinInfo) (core.PinInfo, error) {
	if m == nil {
		return core.PinInfo{}, nil
	}
	c, err := cidField("pin info cid", m.Cid)
	if err != nil {
		return core.PinInfo{}, err
	}
	return core.PinInfo{
		Cid:         c,
		Name:        m.Name,
		Peer:        PeerIDFromBytes(m.Peer),
		Allocations: PeerIDsFromProto(m.Allocations),
		Origins:     stringsOrNil(m.Origins),
		Created:     TimeFromProto(m.Created),
		Metadata:    mapOrNil(m.Metadata),
		PinInfoShort: core.PinInfoShort{
			PeerName:      m.Peername,
			IPFS:          PeerIDFromBytes(m.IpfsPeerId),
			IPFSAddresses: stringsOrNil(m.IpfsPeerAddresses),
			Status:        core.TrackerStatus(m.Status),
			TS:            TimeFromProto(m.Timestamp),
			Error:         m.Error,
			AttemptCount:  int(m.AttemptCount),
			PriorityPin:   m.PriorityPin,
		},
	}, nil
}

// PinInfosToProto converts a list of statuses (nil for nil or empty).
func PinInfosToProto(pis []core.PinInfo) []*pluginv1.PinInfo {
	return convertAll(pis, PinInfoToProto)
}

// PinInfosFromProto converts a list of statuses (nil for none).
func PinInfosFromProto(ms []*pluginv1.PinInfo) ([]core.PinInfo, error) {
	return convertAllOrFail(ms, PinInfoFromProto)
}

// MetricToProto converts a metric.
func MetricToProto(m core.Metric) *pluginv1.Metric {
	return &pluginv1.Metric{
		Name:          m.Name,
		Peer:          PeerIDToBytes(m.Peer),
		Value:         m.Value,
		Expire:        m.Expire,
		Valid:         m.Valid,
		Weight:        m.Weight,
		Partitionable: m.Partitionable,
		ReceivedAt:    m.ReceivedAt,
	}
}

// MetricFromProto converts a metric.
func MetricFromProto(m *pluginv1.Metric) core.Metric {
	if m == nil {
		return core.Metric{}
	}
	return core.Metric{
		Name:          m.Name,
		Peer:          PeerIDFromBytes(m.Peer),
		Value:         m.Value,
		Expire:        m.Expire,
		Valid:         m.Valid,
		Weight:        m.Weight,
		Partitionable: m.Partitionable,
		ReceivedAt:    m.ReceivedAt,
	}
}

// PinAllocationToProto converts one pin of an allocation request.
func PinAllocationToProto(a core.PinAllocation) *pluginv1.PinAllocation {
	return &pluginv1.PinAllocation{
		Cid:      a.Cid.Bytes(),
		Current:  PeerIDsToProto(a.Current),
		Priority: PeerIDsToProto(a.Priority),
		Needed:   clamp32(a.Needed),
		Wanted:   clamp32(a.Wanted),
	}
}

// PinAllocationFromProto converts one pin of an allocation request.
func PinAllocationFromProto(m *pluginv1.PinAllocation) (core.PinAllocation, error) {
	if m == nil {
		return core.PinAllocation{}, nil
	}
	c, err := cidField("allocation cid", m.Cid)
	if err != nil {
		return core.PinAllocation{}, err
	}
	return core.PinAllocation{
		Cid:      c,
		Current:  PeerIDsFromProto(m.Current),
		Priority: PeerIDsFromProto(m.Priority),
		Needed:   int(m.Needed),
		Wanted:   int(m.Wanted),
	}, nil
}

// AllocateRequestToProto converts an allocation request.
func AllocateRequestToProto(r core.AllocateRequest) *pluginv1.AllocateRequest {
	return &pluginv1.AllocateRequest{
		Metrics: convertAll(r.Metrics, MetricToProto),
		Pins:    convertAll(r.Pins, PinAllocationToProto),
	}
}

// AllocateRequestFromProto converts an allocation request.
func AllocateRequestFromProto(m *pluginv1.AllocateRequest) (core.AllocateRequest, error) {
	var r core.AllocateRequest
	if m == nil {
		return r, nil
	}
	r.Metrics = convertAll(m.Metrics, MetricFromProto)
	pins, err := convertAllOrFail(m.Pins, PinAllocationFromProto)
	if err != nil {
		return core.AllocateRequest{}, err
	}
	r.Pins = pins
	return r, nil
}

// AllocateResultToProto converts the allocation of one pin.
func AllocateResultToProto(r core.AllocateResult) *pluginv1.AllocateResult {
	return &pluginv1.AllocateResult{Peers: PeerIDsToProto(r.Peers), Error: r.Error}
}

// AllocateResultFromProto converts the allocation of one pin.
func AllocateResultFromProto(m *pluginv1.AllocateResult) core.AllocateResult {
	if m == nil {
		return core.AllocateResult{}
	}
	return core.AllocateResult{Peers: PeerIDsFromProto(m.Peers), Error: m.Error}
}

// IPFSPinRequestToProto converts a request to pin one CID.
func IPFSPinRequestToProto(r core.IPFSPinRequest) *pluginv1.IPFSPinRequest {
	return &pluginv1.IPFSPinRequest{
		Cid:      r.Cid.Bytes(),
		MaxDepth: clamp32(r.MaxDepth),
		Timeout:  DurationToProto(r.Timeout),
	}
}

// IPFSPinRequestFromProto converts a request to pin one CID.
func IPFSPinRequestFromProto(m *pluginv1.IPFSPinRequest) (core.IPFSPinRequest, error) {
	if m == nil {
		return core.IPFSPinRequest{}, nil
	}
	c, err := cidField("pin request cid", m.Cid)
	if err != nil {
		return core.IPFSPinRequest{}, err
	}
	return core.IPFSPinRequest{
		Cid:      c,
		MaxDepth: int(m.MaxDepth),
		Timeout:  DurationFromProto(m.Timeout),
	}, nil
}

// IPFSPinRequestsToProto converts a list of pin requests.
func IPFSPinRequestsToProto(rs []core.IPFSPinRequest) []*pluginv1.IPFSPinRequest {
	return convertAll(rs, IPFSPinRequestToProto)
}

// IPFSPinRequestsFromProto converts a list of pin requests.
func IPFSPinRequestsFromProto(ms []*pluginv1.IPFSPinRequest) ([]core.IPFSPinRequest, error) {
	return convertAllOrFail(ms, IPFSPinRequestFromProto)
}

// IPFSPinResultToProto converts the outcome of one pin or unpin.
func IPFSPinResultToProto(r core.IPFSPinResult) *pluginv1.IPFSPinResult {
	return &pluginv1.IPFSPinResult{Cid: r.Cid.Bytes(), Error: r.Error}
}

// IPFSPinResultFromProto converts the outcome of one pin or unpin.
func IPFSPinResultFromProto(m *pluginv1.IPFSPinResult) (core.IPFSPinResult, error) {
	if m == nil {
		return core.IPFSPinResult{}, nil
	}
	c, err := cidField("pin result cid", m.Cid)
	if err != nil {
		return core.IPFSPinResult{}, err
	}
	return core.IPFSPinResult{Cid: c, Error: m.Error}, nil
}

// IPFSPinInfoToProto converts an entry of an IPFS pin listing.
func IPFSPinInfoToProto(pi core.IPFSPinInfo) *pluginv1.IPFSPinInfo {
	return &pluginv1.IPFSPinInfo{Cid: pi.Cid.Bytes(), Type: string(pi.Type)}
}

// IPFSPinInfoFromProto converts an entry of an IPFS pin listing.
func IPFSPinInfoFromProto(m *pluginv1.IPFSPinInfo) (core.IPFSPinInfo, error) {
	if m == nil {
		return core.IPFSPinInfo{}, nil
	}
	c, err := cidField("pin info cid", m.Cid)
	if err != nil {
		return core.IPFSPinInfo{}, err
	}
	return core.IPFSPinInfo{Cid: c, Type: core.IPFSPinStatus(m.Type)}, nil
}

// IPFSPinInfosToProto converts an IPFS pin listing.
func IPFSPinInfosToProto(pis []core.IPFSPinInfo) []*pluginv1.IPFSPinInfo {
	return convertAll(pis, IPFSPinInfoToProto)
}

// IPFSPinInfosFromProto converts an IPFS pin listing.
func IPFSPinInfosFromProto(ms []*pluginv1.IPFSPinInfo) ([]core.IPFSPinInfo, error) {
	return convertAllOrFail(ms, IPFSPinInfoFromProto)
}

// IPFSIDToProto converts the identity of an IPFS node.
func IPFSIDToProto(id core.IPFSID) *pluginv1.IPFSID {
	return &pluginv1.IPFSID{Id: PeerIDToBytes(id.ID), Addresses: stringsOrNil(id.Addresses), Error: id.Error}
}

// IPFSIDFromProto converts the identity of an IPFS node.
func IPFSIDFromProto(m *pluginv1.IPFSID) core.IPFSID {
	if m == nil {
		return core.IPFSID{}
	}
	return core.IPFSID{ID: PeerIDFromBytes(m.Id), Addresses: stringsOrNil(m.Addresses), Error: m.Error}
}

// IPFSRepoStatToProto converts repository statistics.
func IPFSRepoStatToProto(s core.IPFSRepoStat) *pluginv1.IPFSRepoStat {
	return &pluginv1.IPFSRepoStat{RepoSize: s.RepoSize, StorageMax: s.StorageMax, NumObjects: s.NumObjects}
}

// IPFSRepoStatFromProto converts repository statistics.
func IPFSRepoStatFromProto(m *pluginv1.IPFSRepoStat) core.IPFSRepoStat {
	if m == nil {
		return core.IPFSRepoStat{}
	}
	return core.IPFSRepoStat{RepoSize: m.RepoSize, StorageMax: m.StorageMax, NumObjects: m.NumObjects}
}

// RepoGCKeysToProto converts keys removed by a repo GC into the parallel
// lists of the wire format.
func RepoGCKeysToProto(keys []core.IPFSRepoGCKey) *pluginv1.RepoGCKeys {
	m := &pluginv1.RepoGCKeys{}
	if len(keys) == 0 {
		return m
	}
	m.Keys = make([][]byte, len(keys))
	m.Errors = make([]string, len(keys))
	for i, k := range keys {
		m.Keys[i] = k.Key.Bytes()
		m.Errors[i] = k.Error
	}
	return m
}

// RepoGCKeysFromProto converts a batch of keys removed by a repo GC. A
// missing entry of the parallel error list means no error.
func RepoGCKeysFromProto(m *pluginv1.RepoGCKeys) ([]core.IPFSRepoGCKey, error) {
	if m == nil || len(m.Keys) == 0 {
		return nil, nil
	}
	out := make([]core.IPFSRepoGCKey, len(m.Keys))
	for i, b := range m.Keys {
		c, err := cidField("repo gc key", b)
		if err != nil {
			return nil, err
		}
		out[i].Key = c
		if i < len(m.Errors) {
			out[i].Error = m.Errors[i]
		}
	}
	return out, nil
}

// BlockToProto converts a block. The data is shared, not copied.
func BlockToProto(b core.Block) *pluginv1.Block {
	return &pluginv1.Block{Cid: b.Cid.Bytes(), Data: bytesOrNil(b.Data)}
}

// BlockFromProto converts a block. The data is shared, not copied.
func BlockFromProto(m *pluginv1.Block) (core.Block, error) {
	if m == nil {
		return core.Block{}, nil
	}
	c, err := cidField("block cid", m.Cid)
	if err != nil {
		return core.Block{}, err
	}
	return core.Block{Cid: c, Data: bytesOrNil(m.Data)}, nil
}

// BlocksToProto converts a batch of blocks.
func BlocksToProto(bs []core.Block) []*pluginv1.Block {
	return convertAll(bs, BlockToProto)
}

// BlocksFromProto converts a batch of blocks.
func BlocksFromProto(ms []*pluginv1.Block) ([]core.Block, error) {
	return convertAllOrFail(ms, BlockFromProto)
}

// DescriptionToProto converts what a plugin says about itself.
func DescriptionToProto(d core.Description) *pluginv1.Description {
	m := &pluginv1.Description{
		Kind:          string(d.Kind),
		Name:          d.Name,
		Version:       d.Version,
		Capabilities:  stringsOrNil(d.Capabilities),
		DefaultConfig: bytesOrNil(d.DefaultConfig),
	}
	if len(d.ProtocolVersions) > 0 {
		m.ProtocolVersions = make([]int32, len(d.ProtocolVersions))
		for i, v := range d.ProtocolVersions {
			m.ProtocolVersions[i] = clamp32(v)
		}
	}
	return m
}

// DescriptionFromProto converts what a plugin says about itself.
func DescriptionFromProto(m *pluginv1.Description) core.Description {
	if m == nil {
		return core.Description{}
	}
	d := core.Description{
		Kind:          core.Kind(m.Kind),
		Name:          m.Name,
		Version:       m.Version,
		Capabilities:  stringsOrNil(m.Capabilities),
		DefaultConfig: rawJSON(m.DefaultConfig),
	}
	if len(m.ProtocolVersions) > 0 {
		d.ProtocolVersions = make([]int, len(m.ProtocolVersions))
		for i, v := range m.ProtocolVersions {
			d.ProtocolVersions[i] = int(v)
		}
	}
	return d
}

// EnvironmentToProto converts the environment the core gives a plugin.
func EnvironmentToProto(e core.Environment) *pluginv1.Environment {
	return &pluginv1.Environment{
		PeerId:    PeerIDToBytes(e.PeerID),
		PeerName:  e.PeerName,
		DataDir:   e.DataDir,
		InitPeers: PeerIDsToProto(e.InitPeers),
		Secret:    e.Secret,
	}
}

// EnvironmentFromProto converts the environment the core gives a plugin.
func EnvironmentFromProto(m *pluginv1.Environment) core.Environment {
	if m == nil {
		return core.Environment{}
	}
	return core.Environment{
		PeerID:    PeerIDFromBytes(m.PeerId),
		PeerName:  m.PeerName,
		DataDir:   m.DataDir,
		InitPeers: PeerIDsFromProto(m.InitPeers),
		Secret:    m.Secret,
	}
}

// TrackerStatsToProto converts pin tracker counters.
func TrackerStatsToProto(s core.TrackerStats) *pluginv1.TrackerStats {
	return &pluginv1.TrackerStats{PinQueued: s.PinQueued, Pinning: s.Pinning, PinErrors: s.PinErrors}
}

// TrackerStatsFromProto converts pin tracker counters.
func TrackerStatsFromProto(m *pluginv1.TrackerStats) core.TrackerStats {
	if m == nil {
		return core.TrackerStats{}
	}
	return core.TrackerStats{PinQueued: m.PinQueued, Pinning: m.Pinning, PinErrors: m.PinErrors}
}

// convertAll converts every item with conv (nil for nil or empty).
func convertAll[T, M any](items []T, conv func(T) M) []M {
	if len(items) == 0 {
		return nil
	}
	out := make([]M, len(items))
	for i := range items {
		out[i] = conv(items[i])
	}
	return out
}

// convertAllOrFail converts every item with conv, failing at the first
// error (nil for none).
func convertAllOrFail[M, T any](ms []M, conv func(M) (T, error)) ([]T, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	out := make([]T, len(ms))
	for i, m := range ms {
		v, err := conv(m)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
