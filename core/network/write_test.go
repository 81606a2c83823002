package network

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
)

func TestWriteCodecFields(t *testing.T) {
	for _, c := range []struct {
		v    any
		want []string
	}{
		{core.Pin{}, []string{"PinOptions core.PinOptions", "Cid core.Cid", "Type core.PinType", "Allocations []peer.ID",
			"MaxDepth int", "Reference core.Cid", "Timestamp time.Time"}},
		{core.PinOptions{}, []string{"ReplicationFactorMin int", "ReplicationFactorMax int", "Name string", "Mode core.PinMode",
			"ShardSize uint64", "UserAllocations []peer.ID", "ExpireAt time.Time", "Metadata map[string]string",
			"PinUpdate core.Cid", "Origins []string"}},
		{WriteOp{}, []string{"Remove bool", "Pin core.Pin", "Preset []peer.ID"}},
		{WriteResult{}, []string{"Pin core.Pin", "Error string", "Code int"}},
	} {
		if got := fields(c.v); !slices.Equal(got, c.want) {
			t.Errorf("%T has changed; update the binary codec (write.go) and this list:\n%q", c.v, got)
		}
	}
}

// samplePins are a complete pin, a zero one, and one whose type and mode
// are out of range.
func samplePins(t testing.TB) []core.Pin {
	ids := testPeerIDs(t, 3)
	full := core.Pin{
		PinOptions: core.PinOptions{
			ReplicationFactorMin: 2, ReplicationFactorMax: -1, Name: "a name ✓", Mode: core.PinModeDirect,
			ShardSize: 1 << 40, UserAllocations: []peer.ID{ids[2]},
			ExpireAt: time.Date(2027, 1, 2, 3, 4, 5, 6, time.FixedZone("y", -3*3600)),
			Metadata: map[string]string{"k": "v", "": "empty key"}, PinUpdate: testCid(t, 7),
			Origins: []string{"/ip4/1.2.3.4/tcp/4001/p2p/" + ids[0].String()},
		},
		Cid: testCid(t, 1), Type: core.DataType, Allocations: ids[:2], MaxDepth: -1,
		Reference: testCid(t, 2), Timestamp: time.Date(2026, 12, 3, 10, 0, 0, 123, time.UTC),
	}
	empties := core.Pin{PinOptions: core.PinOptions{UserAllocations: []peer.ID{}, Metadata: map[string]string{}, Origins: []string{}},
		Cid: testCid(t, 3), Type: core.ShardType, Allocations: []peer.ID{}}
	odd := core.Pin{PinOptions: core.PinOptions{Mode: core.PinMode(7)}, Type: core.PinType(1 << 20), MaxDepth: 5}
	return []core.Pin{full, empties, {}, odd}
}

// A write batch and its answers decode to what a JSON round trip gives,
// nil and empty collections kept apart.
func TestWriteBinaryMatchesJSON(t *testing.T) {
	pins := samplePins(t)
	ids := testPeerIDs(t, 1)
	req := WriteRequest{Ops: []WriteOp{
		{Pin: pins[0]}, {Pin: pins[1], Preset: []peer.ID{}}, {Remove: true, Pin: pins[2], Preset: ids}, {Pin: pins[3]},
	}}
	var gotReq WriteRequest
	if codec := roundTrip(t, req, &gotReq); codec != codecWire {
		t.Fatalf("a write request travelled with codec %q", codec)
	}
	res := WriteResults{{Pin: pins[0]}, {Pin: pins[1], Error: "no peers", Code: 500}, {Error: "other"}, {Pin: pins[3]}}
	var gotRes WriteResults
	if codec := roundTrip(t, res, &gotRes); codec != codecWire {
		t.Fatalf("write results travelled with codec %q", codec)
	}
	for _, c := range []struct{ sent, got any }{{req, gotReq}, {res, gotRes}} {
		// What JSON would have delivered is the reference (except for the
		// zero pin's empty peer IDs, which JSON cannot decode).
		sameJSON(t, c.got, c.sent)
	}
	for i, op := range gotReq.Ops {
		want := req.Ops[i]
		if op.Remove != want.Remove || (op.Preset == nil) != (want.Preset == nil) ||
			(op.Pin.Allocations == nil) != (want.Pin.Allocations == nil) ||
			(op.Pin.UserAllocations == nil) != (want.Pin.UserAllocations == nil) ||
			(op.Pin.Metadata == nil) != (want.Pin.Metadata == nil) || (op.Pin.Origins == nil) != (want.Pin.Origins == nil) {
			t.Errorf("op %d: nil and empty were mixed up: %#v", i, op)
		}
		if !op.Pin.Timestamp.Equal(want.Pin.Timestamp) || !op.Pin.ExpireAt.Equal(want.Pin.ExpireAt) {
			t.Errorf("op %d: times changed", i)
		}
	}
	// Out-of-range type and mode read as JSON reads their names.
	var viaJSON core.Pin
	b, _ := json.Marshal(pins[3])
	if err := json.Unmarshal(b, &viaJSON); err != nil {
		t.Fatal(err)
	}
	if got := gotReq.Ops[3].Pin; got.Type != viaJSON.Type || got.Mode != viaJSON.Mode {
		t.Errorf("type %v mode %v, JSON gives %v and %v", got.Type, got.Mode, viaJSON.Type, viaJSON.Mode)
	}
	for _, v := range []WriteRequest{{}, {Ops: []WriteOp{}}} {
		var got WriteRequest
		roundTrip(t, v, &got)
		if (got.Ops == nil) != (v.Ops == nil) {
			t.Errorf("%#v became %#v", v, got)
		}
	}
}

func TestWriteBinaryRejectsGarbage(t *testing.T) {
	pins := samplePins(t)
	req, _ := WriteRequest{Ops: []WriteOp{{Pin: pins[0], Preset: []peer.ID{}}}}.MarshalWire()
	res, _ := WriteResults{{Pin: pins[0], Error: "e", Code: 400}}.MarshalWire()
	for n := range len(req) {
		if err := new(WriteRequest).UnmarshalWire(req[:n]); err == nil && n > 0 {
			t.Fatalf("a request truncated to %d of %d bytes was accepted", n, len(req))
		}
	}
	for n := range len(res) {
		if err := new(WriteResults).UnmarshalWire(res[:n]); err == nil && n > 0 {
			t.Fatalf("results truncated to %d of %d bytes was accepted", n, len(res))
		}
	}
	if err := new(WriteRequest).UnmarshalWire(append(slices.Clone(req), 0)); err == nil {
		t.Fatal("trailing bytes were accepted")
	}
	bad := slices.Clone(req)
	bad[1] = 2 // the Remove flag of the first op
	if err := new(WriteRequest).UnmarshalWire(bad); err == nil {
		t.Fatal("a flag of 2 was accepted")
	}
}

func FuzzDecodeWriteRequest(f *testing.F) {
	for _, p := range samplePins(f) {
		b, _ := WriteRequest{Ops: []WriteOp{{Pin: p}}}.MarshalWire()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var q WriteRequest
		if q.UnmarshalWire(data) != nil {
			return
		}
		again, _ := q.MarshalWire()
		var q2 WriteRequest
		if err := q2.UnmarshalWire(again); err != nil {
			t.Fatalf("%x decoded to %#v, which does not round-trip: %v", data, q, err)
		}
		sameJSON(t, q, q2)
	})
}
