package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// exampleDir is a folder of examples/, from this package's folder.
func exampleDir(name string) string { return filepath.Join("..", "..", "examples", name) }

// goCommand runs the go tool in dir, as a module of its own.
func goCommand(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// sha256File is what `sha256sum path` prints first.
func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestThirdPartyAllocator builds examples/allocator-roundrobin, a module
// of its own that imports only the SDK, configures a peer to load the
// binary by path and checksum, and pins through it.
func TestThirdPartyAllocator(t *testing.T) {
	src := exampleDir("allocator-roundrobin")
	bin := filepath.Join(t.TempDir(), "allocator-roundrobin")
	goCommand(t, src, "build", "-o", bin, ".")

	t.Run("imports only the SDK", func(t *testing.T) {
		out := goCommand(t, src, "list", "-f", "{{join .Imports \" \"}} {{join .TestImports \" \"}}", ".")
		for _, imp := range strings.Fields(out) {
			if strings.HasPrefix(imp, "github.com/pincluster/pincluster/") && !isSDKPackage(imp) {
				t.Errorf("the example imports %s: a plugin needs only plugins/sdk (and plugins/sdk/conformance in its tests)", imp)
			}
		}
		if !strings.Contains(out, "github.com/pincluster/pincluster/plugins/sdk/conformance") {
			t.Errorf("the example's tests do not run the conformance suite: imports %s", out)
		}
	})

	sum := sha256File(t, bin)
	dir, api := newDaemonDir(t)
	self := servicetest.PeerID(t, dir)
	useAllocator(t, dir, "roundrobin", nil, &config.ExternalPlugin{Path: bin, SHA256: sum})

	d := startDaemon(t, dir, api)
	c := addUnpinned(t, d, "allocated by a third-party plugin\n")
	pinOnce(t, d, c, self)
	kids := childrenOf(t, d.Cmd.Process.Pid)
	found := false
	for _, cmdline := range kids {
		found = found || strings.HasPrefix(cmdline, bin)
	}
	if !found {
		t.Errorf("no child process runs %s: %v", bin, kids)
	}
	log := stoppedLog(d)
	line := expectLogLine(t, log, startedLine(core.KindAllocator, "roundrobin"))
	if !strings.Contains(line, "path="+bin) || !strings.Contains(line, "version=0.1.0") {
		t.Errorf("start line: %s", line)
	}
	// What the plugin logs through sdk.Logger reaches the peer's log under
	// the plugin's name (and its executable's).
	if l := expectLogLine(t, log, "pincluster.allocator.roundrobin.allocator-roundrobin: roundrobin allocator configured:"); !strings.Contains(l, "metric=freespace") {
		t.Errorf("plugin log line: %s", l)
	}

	t.Run("its own tests pass", func(t *testing.T) {
		if testing.Short() {
			t.Skip("compiles the example's tests")
		}
		goCommand(t, src, "test", "-count=1", ".")
	})
}

func isSDKPackage(p string) bool {
	return p == "github.com/pincluster/pincluster/plugins/sdk" || p == "github.com/pincluster/pincluster/plugins/sdk/conformance"
}
