package raftstore

import (
	"bytes"
	"io"
	"testing"
)

func TestEntryRoundTrip(t *testing.T) {
	ops := []Op{
		put("a", "1"),
		del("b"),
		{Key: []byte{0}, Value: nil},
		{Key: bytes.Repeat([]byte("k"), 300), Value: bytes.Repeat([]byte("v"), 70000)},
	}
	got, err := decodeOps(encodeOps(ops))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ops) {
		t.Fatalf("%d ops, want %d", len(got), len(ops))
	}
	for i := range ops {
		if got[i].Delete != ops[i].Delete || !bytes.Equal(got[i].Key, ops[i].Key) ||
			(!ops[i].Delete && !bytes.Equal(got[i].Value, ops[i].Value)) {
			t.Fatalf("op %d: got %+v want %+v", i, got[i], ops[i])
		}
	}
	// Sub-slices cannot grow into the next field.
	if cap(got[0].Key) != len(got[0].Key) {
		t.Fatal("decoded key has spare capacity")
	}
}

func TestEntryCorrupt(t *testing.T) {
	good := encodeOps([]Op{put("key", "value"), del("other")})
	for i := range good {
		if _, err := decodeOps(good[:i]); err == nil {
			t.Fatalf("truncated entry (%d bytes) decoded", i)
		}
	}
	for _, data := range [][]byte{
		nil,
		{2, 0},                       // unknown version
		{1, 1, 7, 1, 'k'},            // unknown kind
		{1, 200, 1},                  // count larger than data
		append(bytes.Clone(good), 0), // trailing bytes
	} {
		if _, err := decodeOps(data); err == nil {
			t.Fatalf("%x decoded", data)
		}
	}
}

func TestSnapshotStreamRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := newSnapshotWriter(&buf, 1234)
	if err != nil {
		t.Fatal(err)
	}
	pairs := [][2]string{{"a", "1"}, {"b", ""}, {"c", string(bytes.Repeat([]byte("x"), 1<<20))}}
	for _, p := range pairs {
		if err := w.writePair([]byte(p[0]), []byte(p[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()

	r, err := newSnapshotReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.index != 1234 {
		t.Fatalf("index %d", r.index)
	}
	for _, p := range pairs {
		k, v, err := r.next()
		if err != nil || string(k) != p[0] || string(v) != p[1] {
			t.Fatalf("pair %q: got %q (%d bytes), %v", p[0], k, len(v), err)
		}
	}
	if _, _, err := r.next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}

	// Every truncation is detected.
	for _, n := range []int{0, 4, 9, 10, 12, len(data) / 2, len(data) - 1} {
		r, err := newSnapshotReader(bytes.NewReader(data[:n]))
		for err == nil {
			_, _, err = r.next()
		}
		if err == io.EOF {
			t.Fatalf("truncated stream (%d of %d bytes) read fully", n, len(data))
		}
	}
	if _, err := newSnapshotReader(bytes.NewReader([]byte("NOTASNAPSHOT"))); err == nil {
		t.Fatal("bad magic accepted")
	}
	bad := bytes.Clone(data)
	bad[len(bad)-1]++ // wrong count in the end record
	r, err = newSnapshotReader(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := r.next()
		if err == io.EOF {
			t.Fatal("wrong count accepted")
		}
		if err != nil {
			break
		}
	}
}
