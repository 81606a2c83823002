package network

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pincluster/pincluster/core"
)

// core.PinInfo is the bulk of the peer RPC (a peer's status of every pin),
// so it travels in a binary form rather than JSON, which spends most of its
// time in the base58 of CIDs and peer IDs: CIDs and peer IDs as their
// bytes, times as time.Time's binary form, integers as varints, strings,
// slices and maps prefixed with their length (plus one, 0 meaning nil so
// that nil and empty survive as they do in JSON). TestPinInfoCodecFields
// fails when core.PinInfo gains a field this codec does not carry.

// Codecs of core.PinInfo and []core.PinInfo.
const (
	codecPinInfo  byte = 'p'
	codecPinInfos byte = 'P'
)

type wbuf []byte

func (w *wbuf) uvarint(v uint64) { *w = binary.AppendUvarint(*w, v) }
func (w *wbuf) varint(v int64)   { *w = binary.AppendVarint(*w, v) }
func (w *wbuf) bytes(b []byte)   { w.uvarint(uint64(len(b))); *w = append(*w, b...) }
func (w *wbuf) str(s string)     { w.uvarint(uint64(len(s))); *w = append(*w, s...) }
func (w *wbuf) peerID(p peer.ID) { w.str(string(p)) }
func (w *wbuf) length(n int, isNil bool) {
	if isNil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(n) + 1)
}

func (w *wbuf) time(t time.Time) {
	b, err := t.MarshalBinary()
	if err != nil { // a zone offset that is not a whole minute
		b, _ = t.UTC().MarshalBinary()
	}
	w.bytes(b)
}

func (w *wbuf) peerIDs(ps []peer.ID) {
	w.length(len(ps), ps == nil)
	for _, p := range ps {
		w.peerID(p)
	}
}

func (w *wbuf) strs(ss []string) {
	w.length(len(ss), ss == nil)
	for _, s := range ss {
		w.str(s)
	}
}

func (w *wbuf) flag(b bool) {
	if b {
		*w = append(*w, 1)
	} else {
		*w = append(*w, 0)
	}
}

func (w *wbuf) cid(c core.Cid) { w.bytes(c.Bytes()) }

func (w *wbuf) metadata(m map[string]string) {
	w.length(len(m), m == nil)
	for k, v := range m {
		w.str(k)
		w.str(v)
	}
}

func appendPinInfo(b []byte, pi *core.PinInfo) []byte {
	w := wbuf(b)
	w.cid(pi.Cid)
	w.str(pi.Name)
	w.peerID(pi.Peer)
	w.peerIDs(pi.Allocations)
	w.strs(pi.Origins)
	w.time(pi.Created)
	w.metadata(pi.Metadata)
	s := &pi.PinInfoShort
	w.str(s.PeerName)
	w.peerID(s.IPFS)
	w.strs(s.IPFSAddresses)
	w.uvarint(uint64(s.Status))
	w.time(s.TS)
	w.str(s.Error)
	w.varint(int64(s.AttemptCount))
	w.flag(s.PriorityPin)
	return w
}

func appendPinInfos(b []byte, pis []core.PinInfo) []byte {
	w := wbuf(b)
	w.length(len(pis), pis == nil)
	for i := range pis {
		w = appendPinInfo(w, &pis[i])
	}
	return w
}

// rbuf reads what wbuf wrote; the first error sticks.
type rbuf struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated binary payload")

func (r *rbuf) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *rbuf) uvarint() uint64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *rbuf) varint() int64 {
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *rbuf) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errShort)
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *rbuf) str() string { return string(r.bytes()) }

// length reads a length written by wbuf.length; ok is false for nil. The
// length is bounded by the bytes left (every element takes one at least).
func (r *rbuf) length() (n int, ok bool) {
	v := r.uvarint()
	if v == 0 {
		return 0, false
	}
	if v-1 > uint64(len(r.b)) {
		r.fail(errShort)
		return 0, false
	}
	return int(v - 1), true
}

func (r *rbuf) peerID() peer.ID {
	b := r.bytes()
	if len(b) == 0 {
		return ""
	}
	p, err := peer.IDFromBytes(b)
	if err != nil {
		r.fail(err)
	}
	return p
}

func (r *rbuf) time() time.Time {
	var t time.Time
	if b := r.bytes(); r.err == nil {
		if err := t.UnmarshalBinary(b); err != nil {
			r.fail(err)
		} else if _, off := t.Zone(); t.Year() < 0 || t.Year() > 9999 || off <= -24*3600 || off >= 24*3600 {
			// What JSON cannot carry is refused, as the JSON decoder would.
			r.fail(errors.New("time out of range"))
		}
	}
	return t
}

func (r *rbuf) peerIDs() []peer.ID {
	n, ok := r.length()
	if !ok {
		return nil
	}
	out := make([]peer.ID, n)
	for i := range out {
		out[i] = r.peerID()
	}
	return out
}

func (r *rbuf) strs() []string {
	n, ok := r.length()
	if !ok {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *rbuf) flag() bool {
	if len(r.b) == 0 {
		r.fail(errShort)
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail(errMalformed)
	}
	return v == 1
}

func (r *rbuf) cid() core.Cid {
	c, err := core.CastCid(r.bytes())
	if err != nil {
		r.fail(err)
	}
	return c
}

func (r *rbuf) metadata() map[string]string {
	n, ok := r.length()
	if !ok {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.str()
		m[k] = r.str()
	}
	return m
}

func (r *rbuf) pinInfo(pi *core.PinInfo) {
	pi.Cid = r.cid()
	pi.Name = r.str()
	pi.Peer = r.peerID()
	pi.Allocations = r.peerIDs()
	pi.Origins = r.strs()
	pi.Created = r.time()
	pi.Metadata = r.metadata()
	s := &pi.PinInfoShort
	s.PeerName = r.str()
	s.IPFS = r.peerID()
	s.IPFSAddresses = r.strs()
	s.Status = core.TrackerStatus(r.uvarint())
	s.TS = r.time()
	s.Error = r.str()
	s.AttemptCount = int(r.varint())
	s.PriorityPin = r.flag()
}

func decodePinInfo(b []byte, pi *core.PinInfo) error {
	*pi = core.PinInfo{}
	return decodeAll(b, func(r *rbuf) { r.pinInfo(pi) })
}

func decodePinInfos(b []byte, pis *[]core.PinInfo) error {
	var out []core.PinInfo
	err := decodeAll(b, func(r *rbuf) {
		n, ok := r.length()
		if !ok {
			return
		}
		out = make([]core.PinInfo, n)
		for i := range out {
			r.pinInfo(&out[i])
		}
	})
	if err != nil {
		return err
	}
	*pis = out
	return nil
}

// decodeAll runs read over b and checks that it used all of it.
func decodeAll(b []byte, read func(r *rbuf)) error {
	r := rbuf{b: b}
	read(&r)
	if r.err == nil && len(r.b) != 0 {
		r.err = errMalformed
	}
	return r.err
}
