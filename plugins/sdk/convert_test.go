package sdk_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/pincluster/pincluster/core"
	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

var cidCache = sync.OnceValue(func() []core.Cid {
	out := make([]core.Cid, 2*bigStream)
	for i := range out {
		out[i] = makeCid(i)
	}
	return out
})

// testCid returns a distinct CIDv1 for each i.
func testCid(i int) core.Cid {
	if c := cidCache(); i >= 0 && i < len(c) {
		return c[i]
	}
	return makeCid(i)
}

func makeCid(i int) core.Cid {
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte(fmt.Sprint("block ", i)))
	if err != nil {
		panic(err)
	}
	return core.NewCid(c)
}

// testCidV0 returns a distinct CIDv0 for each i.
func testCidV0(i int) core.Cid {
	c, err := cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte(fmt.Sprint("node ", i)))
	if err != nil {
		panic(err)
	}
	return core.NewCid(c)
}

// ts returns a time as decoded from the wire (local zone, no monotonic
// reading), so that DeepEqual applies.
func ts(n int64) time.Time { return time.Unix(0, n) }

// wire marshals and unmarshals m, as the transport does.
func wire[M proto.Message](t *testing.T, m M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := m.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// roundTrip converts v to its message, through the wire and back, and
// checks that nothing changed, in value and in JSON.
func roundTrip[T any, M proto.Message](t *testing.T, name string, v T, to func(T) M, from func(M) (T, error)) {
	t.Helper()
	got, err := from(wire(t, to(v)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("%s: round trip changed the value\n got: %#v\nwant: %#v", name, got, v)
	}
	jg, err1 := json.Marshal(got)
	jw, err2 := json.Marshal(v)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: json: %v %v", name, err1, err2)
	}
	if string(jg) != string(jw) {
		t.Errorf("%s: round trip changed the JSON\n got: %s\nwant: %s", name, jg, jw)
	}
}

func noErr[T, M any](f func(M) T) func(M) (T, error) {
	return func(m M) (T, error) { return f(m), nil }
}

func fullPin(t testing.TB, i int) core.Pin {
	return core.Pin{
		PinOptions: core.PinOptions{
			ReplicationFactorMin: -1,
			ReplicationFactorMax: 3,
			Name:                 fmt.Sprintf("pin %d", i),
			Mode:                 core.PinModeDirect,
			ShardSize:            1 << 40,
			UserAllocations:      []core.PeerID{sdktest.NewPeerID(t)},
			ExpireAt:             ts(1_900_000_000_123_456_789),
			Metadata:             map[string]string{"a": "b", "": "empty key"},
			PinUpdate:            testCidV0(i),
			Origins:              []string{"/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"},
		},
		Cid:         testCid(i),
		Type:        core.MetaType,
		Allocations: []core.PeerID{sdktest.NewPeerID(t), sdktest.NewPeerID(t)},
		MaxDepth:    -1,
		Reference:   testCid(i + 1),
		Timestamp:   ts(1_700_000_000_000_000_001),
	}
}

func TestPinRoundTrip(t *testing.T) {
	roundTrip(t, "full", fullPin(t, 1), sdk.PinToProto, sdk.PinFromProto)
	roundTrip(t, "zero", core.Pin{}, sdk.PinToProto, sdk.PinFromProto)
	roundTrip(t, "cid only", core.Pin{Cid: testCidV0(7), Type: core.DataType}, sdk.PinToProto, sdk.PinFromProto)

	// proto3 has no empty-versus-absent: empty slices and maps come back
	// nil, and nil stays nil.
	p := core.Pin{Cid: testCid(2), Allocations: []core.PeerID{}}
	p.UserAllocations, p.Metadata, p.Origins = []core.PeerID{}, map[string]string{}, []string{}
	got, err := sdk.PinFromProto(wire(t, sdk.PinToProto(p)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Allocations != nil || got.UserAllocations != nil || got.Metadata != nil || got.Origins != nil {
		t.Errorf("empty lists should decode as nil: %#v", got)
	}
	// Pin's JSON writes nil allocations as [] anyway.
	if j, _ := json.Marshal(got); !strings.Contains(string(j), `"allocations":[]`) {
		t.Errorf("allocations JSON: %s", j)
	}

	// A nil message is the zero pin.
	if z, err := sdk.PinFromProto(nil); err != nil || !reflect.DeepEqual(z, core.Pin{}) {
		t.Errorf("nil message: %#v, %v", z, err)
	}
	// Malformed CIDs are reported, with the field.
	for _, m := range []*pluginv1.Pin{{Cid: []byte("junk")}, {Reference: []byte{1}}, {PinUpdate: []byte{0xff}}} {
		if _, err := sdk.PinFromProto(m); err == nil {
			t.Errorf("no error for malformed cid in %v", m)
		}
	}

	pins := []core.Pin{fullPin(t, 3), {}, fullPin(t, 4)}
	got2, err := sdk.PinsFromProto(wire(t, &pluginv1.Pins{Pins: sdk.PinsToProto(pins)}).Pins)
	if err != nil || !reflect.DeepEqual(got2, pins) {
		t.Errorf("pins: %v %#v", err, got2)
	}
	if sdk.PinsToProto(nil) != nil || sdk.PinsToProto([]core.Pin{}) != nil {
		t.Error("no pins should encode as nil")
	}
	if got, err := sdk.PinsFromProto(nil); got != nil || err != nil {
		t.Error("no pins should decode as nil")
	}
}

func TestPinInt32Clamp(t *testing.T) {
	p := core.Pin{MaxDepth: 1 << 40}
	p.ReplicationFactorMin = -(1 << 40)
	got, err := sdk.PinFromProto(wire(t, sdk.PinToProto(p)))
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxDepth != 1<<31-1 || got.ReplicationFactorMin != -(1<<31) {
		t.Errorf("out of range ints should clamp: %d %d", got.MaxDepth, got.ReplicationFactorMin)
	}
}

func TestPinOpAndEventRoundTrip(t *testing.T) {
	roundTrip(t, "add", core.PinOp{Pin: fullPin(t, 1)}, sdk.PinOpToProto, sdk.PinOpFromProto)
	roundTrip(t, "remove", core.PinOp{Remove: true, Pin: core.Pin{Cid: testCid(2)}}, sdk.PinOpToProto, sdk.PinOpFromProto)
	roundTrip(t, "zero op", core.PinOp{}, sdk.PinOpToProto, sdk.PinOpFromProto)

	ev := core.PinEvent{Ops: []core.PinOp{{Pin: fullPin(t, 1)}, {Remove: true, Pin: core.Pin{Cid: testCid(9)}}}}
	roundTrip(t, "event", ev, sdk.PinEventToProto, sdk.PinEventFromProto)
	roundTrip(t, "resync", core.PinEvent{Resync: true}, sdk.PinEventToProto, sdk.PinEventFromProto)
	roundTrip(t, "zero event", core.PinEvent{}, sdk.PinEventToProto, sdk.PinEventFromProto)

	if _, err := sdk.PinEventFromProto(&pluginv1.PinEvent{Ops: []*pluginv1.PinOp{{Pin: &pluginv1.Pin{Cid: []byte{9}}}}}); err == nil {
		t.Error("malformed cid in event accepted")
	}
	if ops, err := sdk.PinOpsFromProto(nil); ops != nil || err != nil {
		t.Error("no ops should decode as nil")
	}
}

func TestPinInfoRoundTrip(t *testing.T) {
	pi := core.PinInfo{
		Cid:         testCid(1),
		Name:        "name",
		Peer:        sdktest.NewPeerID(t),
		Allocations: []core.PeerID{sdktest.NewPeerID(t)},
		Origins:     []string{"/dns4/example.org/tcp/4001"},
		Created:     ts(1_600_000_000_000_000_000),
		Metadata:    map[string]string{"k": "v"},
		PinInfoShort: core.PinInfoShort{
			PeerName:      "peer-1",
			IPFS:          sdktest.NewPeerID(t),
			IPFSAddresses: []string{"/ip4/127.0.0.1/tcp/4001"},
			Status:        core.TrackerStatusPinError,
			TS:            ts(1_600_000_000_000_000_999),
			Error:         "context deadline exceeded",
			AttemptCount:  3,
			PriorityPin:   true,
		},
	}
	roundTrip(t, "full", pi, sdk.PinInfoToProto, sdk.PinInfoFromProto)
	roundTrip(t, "zero", core.PinInfo{}, sdk.PinInfoToProto, sdk.PinInfoFromProto)
	roundTrip(t, "remote", core.PinInfo{Cid: testCidV0(1), PinInfoShort: core.PinInfoShort{Status: core.TrackerStatusRemote}},
		sdk.PinInfoToProto, sdk.PinInfoFromProto)
	infos := []core.PinInfo{pi, {}}
	got, err := sdk.PinInfosFromProto(wire(t, &pluginv1.PinInfos{Infos: sdk.PinInfosToProto(infos)}).Infos)
	if err != nil || !reflect.DeepEqual(got, infos) {
		t.Errorf("infos: %v %#v", err, got)
	}
	if _, err := sdk.PinInfoFromProto(&pluginv1.PinInfo{Cid: []byte("x")}); err == nil {
		t.Error("malformed cid accepted")
	}
}

func TestMetricRoundTrip(t *testing.T) {
	m := core.Metric{
		Name: "freespace", Peer: sdktest.NewPeerID(t), Value: "12345",
		Expire: 1_700_000_000_000_000_000, Valid: true, Weight: -5, Partitionable: true,
		ReceivedAt: 1_699_999_999_000_000_000,
	}
	roundTrip(t, "full", m, sdk.MetricToProto, noErr(sdk.MetricFromProto))
	roundTrip(t, "zero", core.Metric{}, sdk.MetricToProto, noErr(sdk.MetricFromProto))
}

func TestAllocateRoundTrip(t *testing.T) {
	req := core.AllocateRequest{
		Metrics: []core.Metric{{Name: "freespace", Peer: sdktest.NewPeerID(t), Value: "1", Valid: true}},
		Pins: []core.PinAllocation{
			{Cid: testCid(1), Current: []core.PeerID{sdktest.NewPeerID(t)}, Priority: []core.PeerID{sdktest.NewPeerID(t)}, Needed: 1, Wanted: 3},
			{Cid: testCid(2)},
		},
	}
	roundTrip(t, "request", req, sdk.AllocateRequestToProto, sdk.AllocateRequestFromProto)
	roundTrip(t, "zero request", core.AllocateRequest{}, sdk.AllocateRequestToProto, sdk.AllocateRequestFromProto)
	roundTrip(t, "pin", req.Pins[0], sdk.PinAllocationToProto, sdk.PinAllocationFromProto)
	roundTrip(t, "result", core.AllocateResult{Peers: []core.PeerID{sdktest.NewPeerID(t)}}, sdk.AllocateResultToProto, noErr(sdk.AllocateResultFromProto))
	roundTrip(t, "error result", core.AllocateResult{Error: "not enough peers"}, sdk.AllocateResultToProto, noErr(sdk.AllocateResultFromProto))
	if _, err := sdk.AllocateRequestFromProto(&pluginv1.AllocateRequest{Pins: []*pluginv1.PinAllocation{{Cid: []byte{3}}}}); err == nil {
		t.Error("malformed cid accepted")
	}
}

func TestIPFSTypesRoundTrip(t *testing.T) {
	roundTrip(t, "pin request", core.IPFSPinRequest{Cid: testCid(1), MaxDepth: -1, Timeout: 90 * time.Second},
		sdk.IPFSPinRequestToProto, sdk.IPFSPinRequestFromProto)
	roundTrip(t, "direct pin request", core.IPFSPinRequest{Cid: testCidV0(1)}, sdk.IPFSPinRequestToProto, sdk.IPFSPinRequestFromProto)
	roundTrip(t, "zero pin request", core.IPFSPinRequest{}, sdk.IPFSPinRequestToProto, sdk.IPFSPinRequestFromProto)
	reqs := []core.IPFSPinRequest{{Cid: testCid(1), MaxDepth: 5, Timeout: time.Nanosecond}, {Cid: testCid(2)}}
	gotReqs, err := sdk.IPFSPinRequestsFromProto(wire(t, &pluginv1.IPFSPinRequests{Requests: sdk.IPFSPinRequestsToProto(reqs)}).Requests)
	if err != nil || !reflect.DeepEqual(gotReqs, reqs) {
		t.Errorf("requests: %v %#v", err, gotReqs)
	}

	roundTrip(t, "pin result", core.IPFSPinResult{Cid: testCid(1)}, sdk.IPFSPinResultToProto, sdk.IPFSPinResultFromProto)
	roundTrip(t, "failed pin result", core.IPFSPinResult{Cid: testCid(1), Error: "timeout"}, sdk.IPFSPinResultToProto, sdk.IPFSPinResultFromProto)
	roundTrip(t, "pin info", core.IPFSPinInfo{Cid: testCid(1), Type: core.IPFSPinStatusRecursive}, sdk.IPFSPinInfoToProto, sdk.IPFSPinInfoFromProto)
	roundTrip(t, "unpinned info", core.IPFSPinInfo{Cid: testCid(1)}, sdk.IPFSPinInfoToProto, sdk.IPFSPinInfoFromProto)
	infos := []core.IPFSPinInfo{{Cid: testCid(1), Type: core.IPFSPinStatusIndirect}, {Cid: testCid(2), Type: core.IPFSPinStatusDirect}}
	gotInfos, err := sdk.IPFSPinInfosFromProto(wire(t, &pluginv1.IPFSPinInfos{Infos: sdk.IPFSPinInfosToProto(infos)}).Infos)
	if err != nil || !reflect.DeepEqual(gotInfos, infos) {
		t.Errorf("infos: %v %#v", err, gotInfos)
	}

	roundTrip(t, "id", core.IPFSID{ID: sdktest.NewPeerID(t), Addresses: []string{"/ip4/1.1.1.1/tcp/1"}}, sdk.IPFSIDToProto, noErr(sdk.IPFSIDFromProto))
	roundTrip(t, "id error", core.IPFSID{Error: "ipfs is down"}, sdk.IPFSIDToProto, noErr(sdk.IPFSIDFromProto))
	roundTrip(t, "repo stat", core.IPFSRepoStat{RepoSize: 1 << 50, StorageMax: 1<<64 - 1, NumObjects: 7}, sdk.IPFSRepoStatToProto, noErr(sdk.IPFSRepoStatFromProto))
	roundTrip(t, "zero repo stat", core.IPFSRepoStat{}, sdk.IPFSRepoStatToProto, noErr(sdk.IPFSRepoStatFromProto))

	keys := []core.IPFSRepoGCKey{{Key: testCid(1)}, {Key: testCid(2), Error: "in use"}, {Key: testCidV0(3)}}
	roundTrip(t, "gc keys", keys, sdk.RepoGCKeysToProto, sdk.RepoGCKeysFromProto)
	roundTrip(t, "no gc keys", []core.IPFSRepoGCKey(nil), sdk.RepoGCKeysToProto, sdk.RepoGCKeysFromProto)
	// A short error list means no error for the remaining keys.
	short := &pluginv1.RepoGCKeys{Keys: [][]byte{testCid(1).Bytes(), testCid(2).Bytes()}, Errors: []string{"e"}}
	gotKeys, err := sdk.RepoGCKeysFromProto(short)
	if err != nil || gotKeys[0].Error != "e" || gotKeys[1].Error != "" {
		t.Errorf("short error list: %v %#v", err, gotKeys)
	}

	roundTrip(t, "block", core.Block{Cid: testCid(1), Data: []byte("hello")}, sdk.BlockToProto, sdk.BlockFromProto)
	roundTrip(t, "zero block", core.Block{}, sdk.BlockToProto, sdk.BlockFromProto)
	blocks := []core.Block{{Cid: testCid(1), Data: []byte{0}}, {Cid: testCid(2), Data: []byte("x")}}
	gotBlocks, err := sdk.BlocksFromProto(wire(t, &pluginv1.Blocks{Blocks: sdk.BlocksToProto(blocks)}).Blocks)
	if err != nil || !reflect.DeepEqual(gotBlocks, blocks) {
		t.Errorf("blocks: %v %#v", err, gotBlocks)
	}
}

func TestDescriptionEnvironmentStatsRoundTrip(t *testing.T) {
	d := core.Description{
		Kind: core.KindPinTracker, Name: "stateless", Version: "1.2.3",
		ProtocolVersions: []int{1, 2}, Capabilities: []string{"priority"},
		DefaultConfig: json.RawMessage(`{"max_pin_queue_size":1000000}`),
	}
	roundTrip(t, "description", d, sdk.DescriptionToProto, noErr(sdk.DescriptionFromProto))
	roundTrip(t, "zero description", core.Description{}, sdk.DescriptionToProto, noErr(sdk.DescriptionFromProto))

	id := sdktest.NewPeerID(t)
	env := core.Environment{PeerID: id, PeerName: "p", DataDir: "/data", InitPeers: []core.PeerID{id, sdktest.NewPeerID(t)}}
	roundTrip(t, "environment", env, sdk.EnvironmentToProto, noErr(sdk.EnvironmentFromProto))
	roundTrip(t, "zero environment", core.Environment{}, sdk.EnvironmentToProto, noErr(sdk.EnvironmentFromProto))

	roundTrip(t, "stats", core.TrackerStats{PinQueued: 1, Pinning: 2, PinErrors: 3}, sdk.TrackerStatsToProto, noErr(sdk.TrackerStatsFromProto))
	roundTrip(t, "zero stats", core.TrackerStats{}, sdk.TrackerStatsToProto, noErr(sdk.TrackerStatsFromProto))
}

func TestTimeConversion(t *testing.T) {
	if n := sdk.TimeToProto(time.Time{}); n != 0 {
		t.Errorf("zero time: %d", n)
	}
	if !sdk.TimeFromProto(0).IsZero() {
		t.Error("0 should decode as the zero time")
	}
	for _, tm := range []time.Time{
		time.Now(), // with a monotonic reading
		time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 0, 0, time.FixedZone("X", -3600)),
		time.Unix(0, 1),
		time.Unix(0, -1),
	} {
		got := sdk.TimeFromProto(sdk.TimeToProto(tm))
		if !got.Equal(tm) {
			t.Errorf("%v came back as %v", tm, got)
		}
	}
	// Out of range times clamp instead of wrapping around.
	far := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	if got := sdk.TimeFromProto(sdk.TimeToProto(far)); got.Year() != 2262 {
		t.Errorf("year 9999 came back as %v", got)
	}
	old := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := sdk.TimeFromProto(sdk.TimeToProto(old)); got.Year() != 1677 {
		t.Errorf("year 1000 came back as %v", got)
	}
	for _, d := range []time.Duration{0, 1, -1, time.Hour, 1<<63 - 1} {
		if got := sdk.DurationFromProto(sdk.DurationToProto(d)); got != d {
			t.Errorf("%v came back as %v", d, got)
		}
	}
}

func TestCidAndPeerConversion(t *testing.T) {
	if b := sdk.CidToBytes(core.UndefCid); b != nil {
		t.Errorf("undefined cid: %x", b)
	}
	if c, err := sdk.CidFromBytes(nil); err != nil || c.Defined() {
		t.Errorf("empty bytes: %v %v", c, err)
	}
	if c, err := sdk.CidFromBytes([]byte{}); err != nil || c.Defined() {
		t.Errorf("empty bytes: %v %v", c, err)
	}
	for _, c := range []core.Cid{testCid(1), testCidV0(1)} {
		got, err := sdk.CidFromBytes(sdk.CidToBytes(c))
		if err != nil || !got.Equals(c) || got.String() != c.String() {
			t.Errorf("%s came back as %s (%v)", c, got, err)
		}
	}
	if _, err := sdk.CidFromBytes([]byte("not a cid")); err == nil {
		t.Error("malformed cid accepted")
	}
	cids := []core.Cid{testCid(1), core.UndefCid, testCidV0(2)}
	got, err := sdk.CidsFromProto(wire(t, &pluginv1.Cids{Cids: sdk.CidsToProto(cids)}).Cids)
	if err != nil || !reflect.DeepEqual(got, cids) {
		t.Errorf("cids: %v %v", got, err)
	}
	if _, err := sdk.CidsFromProto([][]byte{testCid(1).Bytes(), {1, 2}}); err == nil {
		t.Error("malformed cid in list accepted")
	}

	if b := sdk.PeerIDToBytes(""); b != nil {
		t.Errorf("empty peer: %x", b)
	}
	id := sdktest.NewPeerID(t)
	if got := sdk.PeerIDFromBytes(sdk.PeerIDToBytes(id)); got != id {
		t.Errorf("%s came back as %s", id, got)
	}
	peers := []core.PeerID{id, "", sdktest.NewPeerID(t)}
	if got := sdk.PeerIDsFromProto(wire(t, &pluginv1.PeerIDs{Ids: sdk.PeerIDsToProto(peers)}).Ids); !reflect.DeepEqual(got, peers) {
		t.Errorf("peers: %v", got)
	}
	if sdk.PeerIDsFromProto(nil) != nil || sdk.PeerIDsToProto([]core.PeerID{}) != nil {
		t.Error("no peers should be nil")
	}
}
