package network

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
)

// TestPinInfoCodecFields fails when core.PinInfo changes: the binary codec
// of pininfo.go must then carry the new field.
// fields lists the fields of the struct v as "Name type", for the tests
// that catch a type gaining a field its binary codec does not carry.
func fields(v any) []string {
	var out []string
	typ := reflect.TypeOf(v)
	for i := range typ.NumField() {
		out = append(out, typ.Field(i).Name+" "+typ.Field(i).Type.String())
	}
	return out
}

func TestPinInfoCodecFields(t *testing.T) {
	wantInfo := []string{"Cid core.Cid", "Name string", "Peer peer.ID", "Allocations []peer.ID", "Origins []string",
		"Created time.Time", "Metadata map[string]string", "PinInfoShort core.PinInfoShort"}
	wantShort := []string{"PeerName string", "IPFS peer.ID", "IPFSAddresses []string", "Status core.TrackerStatus",
		"TS time.Time", "Error string", "AttemptCount int", "PriorityPin bool"}
	if got := fields(core.PinInfo{}); !slices.Equal(got, wantInfo) {
		t.Errorf("core.PinInfo has changed; update the binary codec (pininfo.go) and this list:\n%q", got)
	}
	if got := fields(core.PinInfoShort{}); !slices.Equal(got, wantShort) {
		t.Errorf("core.PinInfoShort has changed; update the binary codec (pininfo.go) and this list:\n%q", got)
	}
}

func samplePinInfos(t testing.TB) []core.PinInfo {
	p := peer.ID(testPeerIDs(t, 2)[0])
	ipfs := testPeerIDs(t, 2)[1]
	full := pinInfos(t, p, 1)[0]
	full.Origins = []string{"/ip4/1.2.3.4/tcp/4001/p2p/" + ipfs.String()}
	full.Created = time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 2*3600))
	full.IPFS = ipfs
	full.IPFSAddresses = []string{"/ip4/127.0.0.1/tcp/4001"}
	full.Error = "some error"
	full.AttemptCount = 3
	full.PriorityPin = true
	full.Status = core.TrackerStatusPinError
	empty := core.PinInfo{Allocations: []peer.ID{}, Origins: []string{}, Metadata: map[string]string{}}
	empty.IPFSAddresses = []string{}
	return []core.PinInfo{{}, full, empty}
}

func testPeerIDs(t testing.TB, n int) []peer.ID {
	out := make([]peer.ID, n)
	for i := range out {
		id, err := peer.IDFromPrivateKey(newKey(t))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = id
	}
	return out
}

// roundTrip encodes v as a payload and decodes it into out; it returns the
// codec used.
func roundTrip(t *testing.T, v, out any) byte {
	t.Helper()
	codec, data, err := encodePayload(v)
	if err != nil {
		t.Fatalf("encoding %T: %v", v, err)
	}
	if err := decodePayload(codec, data, out); err != nil {
		t.Fatalf("decoding %T: %v", v, err)
	}
	return codec
}

// sameJSON checks that a and b have the same JSON form.
func sameJSON(t testing.TB, a, b any) {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ja, jb) {
		t.Fatalf("round trip changed the value:\n%s\n%s", ja, jb)
	}
}

// TestPinInfoBinaryMatchesJSON checks that the binary codec gives what a
// JSON round trip gives, nil and empty collections included.
func TestPinInfoBinaryMatchesJSON(t *testing.T) {
	for i, pi := range samplePinInfos(t) {
		var got core.PinInfo
		if codec := roundTrip(t, pi, &got); codec != codecPinInfo {
			t.Fatalf("codec %q", codec)
		}
		// (A JSON round trip is no reference: an empty peer.ID, as in the
		// zero PinInfo, does not decode from JSON.)
		sameJSON(t, got, pi)
		if (got.Allocations == nil) != (pi.Allocations == nil) || (got.Metadata == nil) != (pi.Metadata == nil) ||
			(got.Origins == nil) != (pi.Origins == nil) || (got.IPFSAddresses == nil) != (pi.IPFSAddresses == nil) {
			t.Fatalf("sample %d: nil and empty collections were mixed up: %#v", i, got)
		}
		if !got.Created.Equal(pi.Created) || !got.TS.Equal(pi.TS) {
			t.Fatalf("sample %d: times changed", i)
		}
	}
	for _, pis := range [][]core.PinInfo{nil, {}, samplePinInfos(t)} {
		var got []core.PinInfo
		if codec := roundTrip(t, pis, &got); codec != codecPinInfos {
			t.Fatalf("codec %q", codec)
		}
		if (got == nil) != (pis == nil) || len(got) != len(pis) {
			t.Fatalf("%#v became %#v", pis, got)
		}
		sameJSON(t, got, pis)
	}
}

func TestPinInfoBinaryRejectsGarbage(t *testing.T) {
	_, data, _ := encodePayload(samplePinInfos(t)[1])
	for n := range len(data) {
		var pi core.PinInfo
		if err := decodePinInfo(data[:n], &pi); err == nil {
			t.Fatalf("a payload truncated to %d of %d bytes was accepted", n, len(data))
		}
	}
	if err := decodePinInfo(append(slices.Clone(data), 0), new(core.PinInfo)); err == nil {
		t.Fatal("trailing bytes were accepted")
	}
	_, list, _ := encodePayload(samplePinInfos(t))
	for n := range len(list) {
		var pis []core.PinInfo
		if err := decodePinInfos(list[:n], &pis); err == nil && n > 0 {
			t.Fatalf("a list truncated to %d of %d bytes was accepted", n, len(list))
		}
	}
	// Into the wrong type.
	if err := decodePayload(codecPinInfo, data, new(string)); err == nil {
		t.Fatal("a PinInfo was decoded into a string")
	}
	if err := decodePayload(codecPinInfos, list, new(core.PinInfo)); err == nil {
		t.Fatal("a PinInfo list was decoded into a PinInfo")
	}
}

func FuzzDecodePinInfo(f *testing.F) {
	for _, pi := range samplePinInfos(f) {
		_, data, _ := encodePayload(pi)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var pi core.PinInfo
		if decodePinInfo(data, &pi) != nil {
			return
		}
		// What decodes survives another round trip.
		_, again, _ := encodePayload(pi)
		var pi2 core.PinInfo
		if err := decodePinInfo(again, &pi2); err != nil {
			t.Fatalf("%x decoded to %#v, which does not round-trip: %v", data, pi, err)
		}
		sameJSON(t, pi, pi2)
	})
}

// TestWireTypesRoundTrip round-trips the argument and answer types of every
// service, zero values included.
func TestWireTypesRoundTrip(t *testing.T) {
	ids := testPeerIDs(t, 2)
	c := testCid(t, 1)
	check := func(v any, out any, wantCodec byte) {
		t.Helper()
		if codec := roundTrip(t, v, out); codec != wantCodec {
			t.Fatalf("%T travelled with codec %q", v, codec)
		}
		sameJSON(t, v, reflect.ValueOf(out).Elem().Interface())
	}
	check(Empty{}, new(Empty), codecJSON)
	check(CidsRequest{}, new(CidsRequest), codecJSON)
	check(CidsRequest{Cids: []core.Cid{c, core.UndefCid}}, new(CidsRequest), codecJSON)
	check(PeerAddRequest{}, new(PeerAddRequest), codecJSON)
	check(PeerRemoveRequest{}, new(PeerRemoveRequest), codecJSON)
	check(PeerAddRequest{Peer: ids[0], ConsensusAddress: "/p2p/" + ids[0].String()}, new(PeerAddRequest), codecJSON)
	check(PeerRemoveRequest{Peer: ids[1]}, new(PeerRemoveRequest), codecJSON)
	check(MetricsRequest{Metrics: []core.Metric{{Peer: ids[1]}, {Name: "freespace", Peer: ids[0], Value: "10", Expire: 5, Valid: true, Weight: 3, Partitionable: true, ReceivedAt: 7}}}, new(MetricsRequest), codecJSON)
	check(core.IPFSID{}, new(core.IPFSID), codecJSON)
	check(core.IPFSID{ID: ids[1], Addresses: []string{"/ip4/127.0.0.1/tcp/4001"}}, new(core.IPFSID), codecJSON)
	check(core.ID{ID: ids[0], IPFS: core.IPFSID{Error: "down"}, ClusterPeers: ids, Version: "0.1.0", Error: "e"}, new(core.ID), codecJSON)

	// A filter combining statuses has no name: it travels as its bits.
	for _, f := range []core.TrackerStatus{0, core.TrackerStatusPinned, core.TrackerStatusError, core.TrackerStatusPinned | core.TrackerStatusPinning} {
		var got StatusAllRequest
		roundTrip(t, StatusAllRequest{Filter: f}, &got)
		if got.Filter != f {
			t.Fatalf("filter %b became %b", f, got.Filter)
		}
	}
	if err := json.Unmarshal([]byte(`{"filter": "pinned"}`), new(StatusAllRequest)); err == nil {
		t.Fatal("a filter name was accepted where bits are expected")
	}

	blocks := BlockPutRequest{Blocks: []core.Block{{Cid: c, Data: []byte("hello")}, {Cid: testCid(t, 2)}, {Data: bytes.Repeat([]byte{7}, 1<<20)}}}
	var got BlockPutRequest
	if codec := roundTrip(t, blocks, &got); codec != codecWire {
		t.Fatalf("blocks travelled with codec %q", codec)
	}
	if len(got.Blocks) != 3 || !got.Blocks[0].Cid.Equals(c) || string(got.Blocks[0].Data) != "hello" ||
		len(got.Blocks[1].Data) != 0 || got.Blocks[2].Cid.Defined() || !bytes.Equal(got.Blocks[2].Data, blocks.Blocks[2].Data) {
		t.Fatal("blocks changed on the way")
	}
	var none BlockPutRequest
	roundTrip(t, BlockPutRequest{}, &none)
	if len(none.Blocks) != 0 {
		t.Fatal(none)
	}
	data, _ := blocks.MarshalWire()
	for _, bad := range [][]byte{nil, data[:len(data)-1], append(slices.Clone(data), 1), {1, 3, 1, 2, 3, 0}} {
		if err := new(BlockPutRequest).UnmarshalWire(bad); err == nil {
			t.Fatalf("malformed blocks %x accepted", bad[:min(len(bad), 16)])
		}
	}
	if err := decodePayload(codecWire, data, new(string)); err == nil {
		t.Fatal("a binary payload was decoded into a string")
	}
	if err := decodePayload('?', data, new(string)); err == nil {
		t.Fatal("an unknown codec was accepted")
	}
}

func TestSplitJoin(t *testing.T) {
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 5} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		chunks := split(b)
		if want := max(1, (n+chunkSize-1)/chunkSize); len(chunks) != want {
			t.Fatalf("%d bytes: %d chunks, want %d", n, len(chunks), want)
		}
		for _, c := range chunks {
			if len(c) > chunkSize {
				t.Fatalf("a chunk of %d bytes", len(c))
			}
		}
		if got := join(chunks); !bytes.Equal(got, b) {
			t.Fatalf("%d bytes did not survive split and join", n)
		}
	}
	if join(nil) != nil {
		t.Fatal("join(nil)")
	}
}

func TestFrames(t *testing.T) {
	req, err := encodeRequest("Svc", "Method", Empty{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRequest(req)
	if err != nil || r.svc != "Svc" || r.method != "Method" || r.codec != codecJSON || string(r.payload) != "{}" {
		t.Fatalf("%+v %v", r, err)
	}
	for n := range len(req) - 2 { // the codec and payload must be there
		if _, err := decodeRequest(req[:n]); err == nil {
			t.Fatalf("a request truncated to %d bytes was accepted", n)
		}
	}
	bad := slices.Clone(req)
	bad[0] = 9
	if _, err := decodeRequest(bad); err == nil {
		t.Fatal("an unknown frame version was accepted")
	}
	for _, b := range [][]byte{nil, {frameOK}, {42}} {
		if err := decodeReply(b, nil); err == nil {
			t.Fatalf("reply %x accepted", b)
		}
	}
	if err := eachItem([]byte{frameBatch}, nil); err == nil {
		t.Fatal("a short batch was accepted")
	}
	if err := eachItem([]byte{frameBatch, codecJSON, 2, 1, '1'}, func(byte, []byte) (bool, error) { return true, nil }); err == nil {
		t.Fatal("a batch with a missing item was accepted")
	}
}

// FuzzFrames checks that no frame or payload, however malformed, makes a
// decoder panic.
func FuzzFrames(f *testing.F) {
	req, _ := encodeRequest("Svc", "Method", CidsRequest{Cids: []core.Cid{testCid(f, 1)}})
	f.Add(req)
	f.Add(encodeReply(samplePinInfos(f), nil))
	blocks, _ := BlockPutRequest{Blocks: []core.Block{{Cid: testCid(f, 1), Data: []byte("x")}}}.MarshalWire()
	f.Add(blocks)
	f.Add([]byte{frameBatch, codecJSON, 2, 1, '1', 1, '2'})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeRequest(data)
		_ = decodeReply(data, new([]core.PinInfo))
		_ = decodeReply(data, new(CidsRequest))
		_ = eachItem(data, func(codec byte, item []byte) (bool, error) {
			return true, decodePayload(codec, item, new(core.PinInfo))
		})
		_ = new(BlockPutRequest).UnmarshalWire(data)
		_ = decodePinInfos(data, new([]core.PinInfo))
	})
}
