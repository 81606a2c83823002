package raftstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Op is one operation on the map: a put of Value under Key, or, when Delete
// is set, the removal of Key (Value is then ignored). Deleting a missing key
// is not an error.
type Op struct {
	Delete bool
	Key    []byte
	Value  []byte
}

// Log entry format (version 1):
//
//	byte     version (1)
//	uvarint  number of operations
//	per operation:
//	  byte     kind (opPut or opDelete)
//	  uvarint  key length, key bytes
//	  for puts: uvarint value length, value bytes
const (
	entryVersion1 byte = 1

	opPut    byte = 0
	opDelete byte = 1
)

// encodedOpSize returns an upper bound of the encoded size of op.
func encodedOpSize(op Op) int {
	n := 1 + binary.MaxVarintLen64 + len(op.Key)
	if !op.Delete {
		n += binary.MaxVarintLen64 + len(op.Value)
	}
	return n
}

// appendEntryHeader starts a log entry holding n operations.
func appendEntryHeader(buf []byte, n int) []byte {
	buf = append(buf, entryVersion1)
	return binary.AppendUvarint(buf, uint64(n))
}

// appendOp appends the encoding of op to buf.
func appendOp(buf []byte, op Op) []byte {
	if op.Delete {
		buf = append(buf, opDelete)
		buf = binary.AppendUvarint(buf, uint64(len(op.Key)))
		return append(buf, op.Key...)
	}
	buf = append(buf, opPut)
	buf = binary.AppendUvarint(buf, uint64(len(op.Key)))
	buf = append(buf, op.Key...)
	buf = binary.AppendUvarint(buf, uint64(len(op.Value)))
	return append(buf, op.Value...)
}

// EncodeOps encodes ops in the format of a log entry, for callers that
// ship operations to another peer (see DecodeOps).
func EncodeOps(ops []Op) []byte { return encodeOps(ops) }

// DecodeOps decodes what EncodeOps encoded. The keys and values of the
// returned operations are sub-slices of data.
func DecodeOps(data []byte) ([]Op, error) { return decodeOps(data) }

// encodeOps encodes ops as one log entry.
func encodeOps(ops []Op) []byte {
	size := 1 + binary.MaxVarintLen64
	for _, op := range ops {
		size += encodedOpSize(op)
	}
	buf := appendEntryHeader(make([]byte, 0, size), len(ops))
	for _, op := range ops {
		buf = appendOp(buf, op)
	}
	return buf
}

var errCorruptEntry = errors.New("raftstore: corrupt log entry")

// decodeOps decodes a log entry. The keys and values of the returned
// operations are sub-slices of data.
func decodeOps(data []byte) ([]Op, error) {
	if len(data) == 0 {
		return nil, errCorruptEntry
	}
	if data[0] != entryVersion1 {
		return nil, fmt.Errorf("raftstore: unsupported log entry version %d", data[0])
	}
	data = data[1:]
	n, k := binary.Uvarint(data)
	if k <= 0 {
		return nil, errCorruptEntry
	}
	data = data[k:]
	// Each operation takes at least two bytes; reject absurd counts before
	// allocating.
	if n > uint64(len(data)/2) {
		return nil, errCorruptEntry
	}
	ops := make([]Op, 0, n)
	readBytes := func() ([]byte, bool) {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			return nil, false
		}
		b := data[k : k+int(l) : k+int(l)]
		data = data[k+int(l):]
		return b, true
	}
	for i := uint64(0); i < n; i++ {
		if len(data) == 0 {
			return nil, errCorruptEntry
		}
		kind := data[0]
		data = data[1:]
		key, ok := readBytes()
		if !ok {
			return nil, errCorruptEntry
		}
		switch kind {
		case opDelete:
			ops = append(ops, Op{Delete: true, Key: key})
		case opPut:
			val, ok := readBytes()
			if !ok {
				return nil, errCorruptEntry
			}
			ops = append(ops, Op{Key: key, Value: val})
		default:
			return nil, errCorruptEntry
		}
	}
	if len(data) != 0 {
		return nil, errCorruptEntry
	}
	return ops, nil
}

// Snapshot stream format (version 1):
//
//	8 bytes  magic "PCRSNAP1"
//	uvarint  index of the last log entry applied to the snapshotted state
//	per key/value pair:
//	  byte     recPair (1)
//	  uvarint  key length, key bytes
//	  uvarint  value length, value bytes
//	end:
//	  byte     recEnd (0)
//	  uvarint  number of pairs
//
// The end record makes truncated streams detectable; integrity of the bytes
// themselves is checked by raft's file snapshot store.
const (
	snapshotMagic = "PCRSNAP1"

	recEnd  byte = 0
	recPair byte = 1
)

// snapshotWriter writes a snapshot stream.
type snapshotWriter struct {
	w       *bufio.Writer
	scratch []byte
	count   uint64
}

func newSnapshotWriter(w io.Writer, index uint64) (*snapshotWriter, error) {
	sw := &snapshotWriter{w: bufio.NewWriterSize(w, 256<<10)}
	sw.scratch = append(sw.scratch[:0], snapshotMagic...)
	sw.scratch = binary.AppendUvarint(sw.scratch, index)
	if _, err := sw.w.Write(sw.scratch); err != nil {
		return nil, err
	}
	return sw, nil
}

func (sw *snapshotWriter) writePair(key, value []byte) error {
	sw.scratch = append(sw.scratch[:0], recPair)
	sw.scratch = binary.AppendUvarint(sw.scratch, uint64(len(key)))
	if _, err := sw.w.Write(sw.scratch); err != nil {
		return err
	}
	if _, err := sw.w.Write(key); err != nil {
		return err
	}
	sw.scratch = binary.AppendUvarint(sw.scratch[:0], uint64(len(value)))
	if _, err := sw.w.Write(sw.scratch); err != nil {
		return err
	}
	if _, err := sw.w.Write(value); err != nil {
		return err
	}
	sw.count++
	return nil
}

func (sw *snapshotWriter) finish() error {
	sw.scratch = append(sw.scratch[:0], recEnd)
	sw.scratch = binary.AppendUvarint(sw.scratch, sw.count)
	if _, err := sw.w.Write(sw.scratch); err != nil {
		return err
	}
	return sw.w.Flush()
}

// snapshotReader reads a snapshot stream.
type snapshotReader struct {
	r     *bufio.Reader
	index uint64
	count uint64
}

// maxSnapshotField bounds key and value lengths read from a snapshot, to
// fail cleanly on corrupt input instead of allocating huge buffers.
const maxSnapshotField = 1 << 30

func newSnapshotReader(r io.Reader) (*snapshotReader, error) {
	sr := &snapshotReader{r: bufio.NewReaderSize(r, 256<<10)}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(sr.r, magic); err != nil {
		return nil, fmt.Errorf("raftstore: reading snapshot header: %w", err)
	}
	if string(magic) != snapshotMagic {
		return nil, errors.New("raftstore: not a raftstore snapshot")
	}
	idx, err := binary.ReadUvarint(sr.r)
	if err != nil {
		return nil, fmt.Errorf("raftstore: reading snapshot header: %w", err)
	}
	sr.index = idx
	return sr, nil
}

func (sr *snapshotReader) readField() ([]byte, error) {
	l, err := binary.ReadUvarint(sr.r)
	if err != nil {
		return nil, err
	}
	if l > maxSnapshotField {
		return nil, fmt.Errorf("raftstore: snapshot field of %d bytes", l)
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(sr.r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// next returns the next pair in freshly allocated slices, or io.EOF after
// the end record was read and checked.
func (sr *snapshotReader) next() (key, value []byte, err error) {
	rec, err := sr.r.ReadByte()
	if err != nil {
		return nil, nil, sr.unexpected(err)
	}
	switch rec {
	case recEnd:
		n, err := binary.ReadUvarint(sr.r)
		if err != nil {
			return nil, nil, sr.unexpected(err)
		}
		if n != sr.count {
			return nil, nil, fmt.Errorf("raftstore: snapshot holds %d pairs, end record says %d", sr.count, n)
		}
		return nil, nil, io.EOF
	case recPair:
		if key, err = sr.readField(); err != nil {
			return nil, nil, sr.unexpected(err)
		}
		if value, err = sr.readField(); err != nil {
			return nil, nil, sr.unexpected(err)
		}
		sr.count++
		return key, value, nil
	default:
		return nil, nil, fmt.Errorf("raftstore: corrupt snapshot: record type %d", rec)
	}
}

func (sr *snapshotReader) unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("raftstore: reading snapshot: %w", err)
}
