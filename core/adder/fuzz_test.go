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

	// Goroutines of the imports are gone.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+2 {
		t.Errorf("%d goroutines before, %d after", before, g)
	}
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
