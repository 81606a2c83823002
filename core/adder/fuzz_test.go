package adder

import (
	"bytes"
	"context"
	"math/rand"
	"mime/multipart"
	"runtime"
	"strings"
	"testing"
	"time"

	cid "github.com/ipfs/go-cid"
)

const fuzzBoundary = "pinclusterfuzzboundary"

// addBytes runs Add on a raw body with the fuzz boundary. It must return,
// with or without error, and never panic.
func addBytes(t testing.TB, body []byte, p Params) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Add(ctx, multipart.NewReader(bytes.NewReader(body), fuzzBoundary), p, newMemSink(), func(Output) error { return nil })
	if ctx.Err() != nil {
		t.Fatalf("Add did not finish on a %d-byte body", len(body))
	}
	return err
}

// validBody returns a well-formed body with the fuzz boundary.
func validBody(t testing.TB, entries []entry) []byte {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(fuzzBoundary); err != nil {
		t.Fatal(err)
	}
	if err := writeBody(w, entries); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fuzzSeeds(t testing.TB) [][]byte {
	return [][]byte{
		validBody(t, planets()),
		validBody(t, []entry{file("hello.txt", "hello\n")}),
		validBody(t, []entry{dir("a"), dir("a/b"), symlink("a/b/l", "../x"), file("a/b/f", strings.Repeat("z", 3000)), file("c", "")}),
		validBody(t, nil),
		[]byte("--" + fuzzBoundary + "\r\n\r\n--" + fuzzBoundary + "--\r\n"),
		[]byte("--" + fuzzBoundary + "\r\nContent-Type: application/x-directory\r\n\r\n\r\n--" + fuzzBoundary + "--\r\n"),
	}
}

// TestGarbageBodies feeds random bytes and damaged valid bodies to Add:
// every call must end with a result or an error, without panicking or
// leaving goroutines behind.
func TestGarbageBodies(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	seeds := fuzzSeeds(t)
	before := runtime.NumGoroutine()
	params := []Params{DefaultParams(), mustParse(t, "wrap-with-directory=true&progress=true&chunker=size-64"), mustParse(t, "layout=trickle&cid-version=1&chunker=rabin-16-32-64")}

	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		var body []byte
		switch i % 4 {
		case 0: // pure noise
			body = make([]byte, rng.Intn(2000))
			rng.Read(body)
		case 1: // noise after a valid boundary line
			body = []byte("--" + fuzzBoundary + "\r\n")
			noise := make([]byte, rng.Intn(500))
			rng.Read(noise)
			body = append(body, noise...)
		case 2: // a valid body with random bytes changed
			body = bytes.Clone(seeds[rng.Intn(len(seeds))])
			for range 1 + rng.Intn(8) {
				if len(body) > 0 {
					body[rng.Intn(len(body))] = byte(rng.Intn(256))
				}
			}
		case 3: // a valid body cut, with pieces spliced in
			src := seeds[rng.Intn(len(seeds))]
			cut := rng.Intn(len(src) + 1)
			body = bytes.Clone(src[:cut])
			if rng.Intn(2) == 0 {
				other := seeds[rng.Intn(len(seeds))]
				from := rng.Intn(len(other) + 1)
				body = append(body, other[from:]...)
			}
		}
		addBytes(t, body, params[i%len(params)])
	}

	noGoroutinesLeft(t, before)
}

// FuzzAdd checks that no body makes Add panic or hang. Run it with
// "go test -fuzz FuzzAdd"; plain test runs try the seeds only.
func FuzzAdd(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, body []byte, wrap bool) {
		p := DefaultParams()
		p.Wrap = wrap
		p.Chunker = "size-32"
		p.Progress = true
		addBytes(t, body, p)
	})
}

// carSeeds returns a few small CAR files, valid and damaged.
func carSeeds(t testing.TB) [][]byte {
	src := mustAdd(t, "chunker=size-64", append(planets(), file("planets/long.txt", strings.Repeat("x", 300)))...)
	v1 := carV1(t, []cid.Cid{src.root}, exportDAG(t, src.sink, src.root, true)...)
	return [][]byte{
		v1,
		carV2(t, v1),
		v1[:len(v1)/2],
		carV1(t, nil, exportDAG(t, src.sink, src.root, false)...),
		[]byte("hello\n"),
	}
}

// carBody puts data in a body as the one part of a format=car request.
func carBody(t testing.TB, data []byte) []byte {
	return validBody(t, []entry{{path: "f.car", kind: kindFile, data: data}})
}

// checkCARError fails the test unless err is nil or a *RequestError: with
// a sink that accepts everything, whatever goes wrong in a CAR import is
// the fault of the file.
func checkCARError(t testing.TB, data []byte, err error) {
	t.Helper()
	if err != nil && !IsRequestError(err) {
		t.Errorf("%d-byte CAR file: %v is not a request error", len(data), err)
	}
}

// TestGarbageCARs feeds random bytes and damaged CAR files to a format=car
// import: every call must end with a result or a request error, without
// panicking or leaving goroutines behind.
func TestGarbageCARs(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	seeds := carSeeds(t)
	p := mustParse(t, "format=car")
	before := runtime.NumGoroutine()

	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := range n {
		var data []byte
		switch i % 3 {
		case 0: // noise
			data = make([]byte, rng.Intn(600))
			rng.Read(data)
		case 1: // a CAR file with random bytes changed
			data = bytes.Clone(seeds[rng.Intn(len(seeds))])
			for range 1 + rng.Intn(4) {
				if len(data) > 0 {
					data[rng.Intn(len(data))] = byte(rng.Intn(256))
				}
			}
		case 2: // a CAR file cut, with a piece of another spliced in
			src := seeds[rng.Intn(len(seeds))]
			data = bytes.Clone(src[:rng.Intn(len(src)+1)])
			other := seeds[rng.Intn(len(seeds))]
			data = append(data, other[rng.Intn(len(other)+1):]...)
		}
		checkCARError(t, data, addBytes(t, carBody(t, data), p))
	}

	noGoroutinesLeft(t, before)
}

// FuzzAddCAR checks that no CAR file makes a format=car import panic, hang
// or fail with anything but a request error. Run it with "go test -fuzz
// FuzzAddCAR"; plain test runs try the seeds only.
func FuzzAddCAR(f *testing.F) {
	for _, s := range carSeeds(f) {
		f.Add(s)
	}
	p := DefaultParams()
	p.Format = FormatCAR
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCARError(t, data, addBytes(t, carBody(t, data), p))
	})
}

// noGoroutinesLeft checks, within 5 seconds, that the goroutines of the
// imports are gone: at most two more than the before counted.
func noGoroutinesLeft(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+2 {
		t.Errorf("%d goroutines before, %d after", before, g)
	}
}
