package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
)

// Binaries built once by TestMain.
var (
	ctlBinary     string
	serviceBinary string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pincluster-ctl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctlBinary = filepath.Join(dir, "pincluster-ctl")
	args := []string{"build", "-o", ctlBinary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pincluster-ctl:", err)
		return 1
	}
	if serviceBinary, err = servicetest.BuildService(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// commandTimeout bounds every run of the ctl binary.
const commandTimeout = 60 * time.Second

// result is the outcome of one run of pincluster-ctl.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("pincluster-ctl %s\nexit code %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runner runs pincluster-ctl with fixed leading arguments (e.g. --host).
type runner struct {
	t     testing.TB
	pre   []string
	env   []string
	stdin io.Reader
}

func (r runner) with(args ...string) runner {
	r.pre = append(append([]string(nil), r.pre...), args...)
	return r
}

func (r runner) withEnv(env ...string) runner {
	r.env = append(append([]string(nil), r.env...), env...)
	return r
}

func (r runner) withStdin(s string) runner {
	r.stdin = strings.NewReader(s)
	return r
}

// run runs the binary and returns its output and exit code.
func (r runner) run(args ...string) result {
	r.t.Helper()
	all := append(append([]string(nil), r.pre...), args...)
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctlBinary, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = r.stdin
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CLUSTER_CREDENTIALS=") {
			env = append(env, e)
		}
	}
	// A race-enabled binary sleeps 1s before a successful exit unless
	// told otherwise; a race still makes it fail (exit code 66).
	env = append(env, "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(env, r.env...)
	err := cmd.Run()
	res := result{args: all, stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		r.t.Fatalf("pincluster-ctl %v did not finish within %s", all, commandTimeout)
	}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			r.t.Fatalf("running pincluster-ctl: %v", err)
		}
		res.code = ee.ExitCode()
	}
	return res
}

// ok runs and requires exit code 0.
func (r runner) ok(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("unexpected failure:\n%s", res)
	}
	return res
}

// fails runs and requires the given exit code.
func (r runner) fails(code int, args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != code {
		r.t.Fatalf("expected exit code %d:\n%s", code, res)
	}
	return res
}

// jsonObjects decodes the objects printed by --enc=json (one after the
// other, indented).
func jsonObjects[T any](t testing.TB, out string) []T {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var items []T
	for {
		var v T
		err := dec.Decode(&v)
		if err == io.EOF {
			return items
		}
		if err != nil {
			t.Fatalf("decoding JSON output: %v\n%s", err, out)
		}
		items = append(items, v)
	}
}

func jsonObject[T any](t testing.TB, out string) T {
	t.Helper()
	items := jsonObjects[T](t, out)
	if len(items) != 1 {
		t.Fatalf("expected one JSON object, got %d:\n%s", len(items), out)
	}
	if ls := lines(out); len(ls) > 1 && !strings.HasPrefix(ls[1], "    ") {
		t.Errorf("JSON output is not indented with 4 spaces:\n%s", out)
	}
	return items[0]
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func closedPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
