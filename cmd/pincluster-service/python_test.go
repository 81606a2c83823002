package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/conformance"
)

// systemPython is the interpreter of examples/allocator-python: Debian's,
// which sees the python3-grpcio, python3-grpc-tools and python3-protobuf
// packages.
const systemPython = "/usr/bin/python3"

// pythonPlugin prepares examples/allocator-python in a folder of its own:
// the script and its generated protocol modules. It skips the test when
// the system Python lacks gRPC, except under CI, which installs it.
func pythonPlugin(t *testing.T) string {
	t.Helper()
	check := exec.Command(systemPython, "-c", "import grpc, grpc_tools.protoc, google.protobuf")
	if out, err := check.CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and %s cannot import grpc, grpc_tools and protobuf: %v\n%s", systemPython, err, out)
		}
		t.Skipf("%s cannot import grpc, grpc_tools and protobuf (apt-get install python3-grpcio python3-grpc-tools python3-protobuf): %v\n%s",
			systemPython, err, out)
	}
	src := exampleDir("allocator-python")
	dir := t.TempDir()
	script, err := os.ReadFile(filepath.Join(src, "allocator.py"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "allocator.py")
	if err := os.WriteFile(path, script, 0o755); err != nil {
		t.Fatal(err)
	}
	gen := exec.Command(filepath.Join(src, "generate.sh"), filepath.Join(dir, "gen"))
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, out)
	}
	return path
}

// TestPythonAllocator loads examples/allocator-python, an allocator written
// in Python, into a peer by path and pins through it; and runs the SDK's
// allocator conformance suite against it.
func TestPythonAllocator(t *testing.T) {
	script := pythonPlugin(t)

	t.Run("daemon", func(t *testing.T) {
		dir, api := newDaemonDir(t)
		self := servicetest.PeerID(t, dir)
		useAllocator(t, dir, "mostfree", nil, &config.ExternalPlugin{Path: script, SHA256: sha256File(t, script)})
		d := startDaemon(t, dir, api)
		c := addUnpinned(t, d, "allocated by a plugin written in Python\n")
		pinOnce(t, d, c, self)
		log := stoppedLog(d)
		line := expectLogLine(t, log, startedLine(core.KindAllocator, "mostfree"))
		if !strings.Contains(line, "version=0.1.0") || !strings.Contains(line, "path="+script) {
			t.Errorf("start line: %s", line)
		}
		// What the plugin writes to stderr as hclog JSON lines reaches the
		// peer's log under the plugin's name.
		if l := expectLogLine(t, log, "pincluster.allocator.mostfree.allocator.py: python allocator configured:"); !strings.Contains(l, "metric=freespace") || !strings.Contains(l, "[INFO]") {
			t.Errorf("plugin log line: %s", l)
		}
	})

	t.Run("conformance", func(t *testing.T) {
		// Each instance the suite asks for is a new Python process, reached
		// through go-plugin as the core reaches it; the suite serves it
		// again behind the SDK's adapters.
		var mu sync.Mutex
		var clients []*plugin.Client
		t.Cleanup(func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range clients {
				c.Kill()
			}
		})
		start := func() sdk.Allocator {
			client := plugin.NewClient(sdk.NewClientConfig(exec.Command(script), hclog.NewNullLogger()))
			mu.Lock()
			clients = append(clients, client)
			mu.Unlock()
			rpc, err := client.Client()
			if err != nil {
				t.Fatalf("starting the Python plugin: %v", err)
			}
			raw, err := rpc.Dispense(string(core.KindAllocator))
			if err != nil {
				t.Fatalf("dispense: %v", err)
			}
			return raw.(sdk.Allocator)
		}
		conformance.TestAllocator(t, start, nil)
	})
}
