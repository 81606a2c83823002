package network

import (
	"github.com/pincluster/pincluster/core"
)

// The batches of Cluster.Write (a follower's pins handed to the raft
// leader, and their answers) travel in the binary form of pininfo.go
// rather than JSON: encoding and decoding them as JSON (CIDs and peer IDs as
// text, the type and mode as names) took about 8 % of the cores' CPU in the
// three-peer benchmark.
// The decoded pin is what a JSON round trip gives: an unknown type or mode
// reads as JSON would read its name. TestWriteCodecFields fails when
// core.Pin, core.PinOptions, WriteOp or WriteResult gain a field this codec
// does not carry.

func (w *wbuf) pin(p *core.Pin) {
	o := &p.PinOptions
	w.varint(int64(o.ReplicationFactorMin))
	w.varint(int64(o.ReplicationFactorMax))
	w.str(o.Name)
	w.varint(int64(o.Mode))
	w.uvarint(o.ShardSize)
	w.peerIDs(o.UserAllocations)
	w.time(o.ExpireAt)
	w.metadata(o.Metadata)
	w.cid(o.PinUpdate)
	w.strs(o.Origins)
	w.cid(p.Cid)
	w.uvarint(uint64(p.Type))
	w.peerIDs(p.Allocations)
	w.varint(int64(p.MaxDepth))
	w.cid(p.Reference)
	w.time(p.Timestamp)
}

func (r *rbuf) pin(p *core.Pin) {
	o := &p.PinOptions
	o.ReplicationFactorMin = int(r.varint())
	o.ReplicationFactorMax = int(r.varint())
	o.Name = r.str()
	o.Mode = core.PinModeFromString(core.PinMode(r.varint()).String())
	o.ShardSize = r.uvarint()
	o.UserAllocations = r.peerIDs()
	o.ExpireAt = r.time()
	o.Metadata = r.metadata()
	o.PinUpdate = r.cid()
	o.Origins = r.strs()
	p.Cid = r.cid()
	p.Type = core.PinTypeFromString(core.PinType(r.uvarint()).String())
	p.Allocations = r.peerIDs()
	p.MaxDepth = int(r.varint())
	p.Reference = r.cid()
	p.Timestamp = r.time()
}

// MarshalWire encodes the batch.
func (q WriteRequest) MarshalWire() ([]byte, error) {
	w := wbuf(make([]byte, 0, 256*len(q.Ops)))
	w.length(len(q.Ops), q.Ops == nil)
	for i := range q.Ops {
		op := &q.Ops[i]
		w.flag(op.Remove)
		w.pin(&op.Pin)
		w.peerIDs(op.Preset)
	}
	return w, nil
}

// UnmarshalWire decodes what MarshalWire wrote.
func (q *WriteRequest) UnmarshalWire(b []byte) error {
	*q = WriteRequest{}
	return decodeAll(b, func(r *rbuf) {
		n, ok := r.length()
		if !ok {
			return
		}
		q.Ops = make([]WriteOp, n)
		for i := range q.Ops {
			op := &q.Ops[i]
			op.Remove = r.flag()
			r.pin(&op.Pin)
			op.Preset = r.peerIDs()
		}
	})
}

// WriteResults is the answer of Cluster.Write: one result per op, in order.
type WriteResults []WriteResult

// MarshalWire encodes the results.
func (rs WriteResults) MarshalWire() ([]byte, error) {
	w := wbuf(make([]byte, 0, 256*len(rs)))
	w.length(len(rs), rs == nil)
	for i := range rs {
		res := &rs[i]
		w.pin(&res.Pin)
		w.str(res.Error)
		w.varint(int64(res.Code))
	}
	return w, nil
}

// UnmarshalWire decodes what MarshalWire wrote.
func (rs *WriteResults) UnmarshalWire(b []byte) error {
	*rs = nil
	return decodeAll(b, func(r *rbuf) {
		n, ok := r.length()
		if !ok {
			return
		}
		out := make(WriteResults, n)
		for i := range out {
			res := &out[i]
			r.pin(&res.Pin)
			res.Error = r.str()
			res.Code = int(r.varint())
		}
		*rs = out
	})
}

var (
	_ WireMarshaler   = WriteRequest{}
	_ WireUnmarshaler = (*WriteRequest)(nil)
	_ WireMarshaler   = WriteResults{}
	_ WireUnmarshaler = (*WriteResults)(nil)
)
