package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/allocator/balanced"
	"github.com/pincluster/pincluster/plugins/sdk"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

// The test binary doubles as an external plugin executable:
// `<test binary> serve-test-plugin <mode>`.
func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == "serve-test-plugin" {
		switch os.Args[2] {
		case "balanced":
			sdk.Serve(balanced.New())
		case "allocator":
			// serve-test-plugin allocator <behaviour of Allocate> [arg]
			sdk.Serve(newTestAllocator(os.Args[3:]))
		case "ipfs":
			// serve-test-plugin ipfs <marker file> <crash after n pins>
			sdk.Serve(newTestConnector(os.Args[3:]))
		case "exchange-peer":
			// serve-test-plugin exchange-peer <socket directory>
			serveExchangePeer(os.Args[3])
		case "future-protocol":
			// A plugin built for a protocol version this core does not know.
			set := sdk.VersionedPlugins(balanced.New())[core.ProtocolVersion]
			plugin.Serve(&plugin.ServeConfig{
				HandshakeConfig:  sdk.Handshake,
				VersionedPlugins: map[int]plugin.PluginSet{core.ProtocolVersion + 1: set},
				GRPCServer:       sdk.NewGRPCServer,
			})
		}
		return
	}
	os.Exit(m.Run())
}

func testPlugin(t testing.TB, mode string, args ...string) *config.ExternalPlugin {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &config.ExternalPlugin{Path: exe, Args: append([]string{"serve-test-plugin", mode}, args...)}
}

func launcher() *Launcher {
	return &Launcher{Logger: testLogger(), StartTimeout: 20 * time.Second,
		Builtin: func(core.Kind, string) bool { return false }}
}

// TestPluginGOMAXPROCS checks that plugin processes run with the
// launcher's GOMAXPROCS, unless the core's environment sets one.
func TestPluginGOMAXPROCS(t *testing.T) {
	ctx := context.Background()
	reported := func(t *testing.T, l *Launcher) string {
		t.Helper()
		p, err := l.Launch(ctx, config.PluginChoice{Kind: core.KindAllocator, Name: "allocator",
			External: testPlugin(t, "allocator", "gomaxprocs")}, sdktest.Environment(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Kill()
		_, err = p.Impl().(core.Allocator).Allocate(ctx, core.AllocateRequest{})
		if err == nil {
			t.Fatal("the test allocator did not report its GOMAXPROCS")
		}
		_, v, _ := strings.Cut(err.Error(), "GOMAXPROCS=")
		return v
	}
	// This test's own environment may set GOMAXPROCS: clear it meanwhile.
	preset := os.Getenv("GOMAXPROCS") != ""
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")

	l := launcher()
	l.GOMAXPROCS = 1
	if got := reported(t, l); got != "1" {
		t.Fatalf("plugin GOMAXPROCS %q, want 1", got)
	}
	t.Run("core environment wins", func(t *testing.T) {
		t.Setenv("GOMAXPROCS", "3")
		if got := reported(t, l); got != "3" {
			t.Fatalf("plugin GOMAXPROCS %q, want 3 from the environment", got)
		}
	})
	// With none set, the plugin's runtime picks its default, as this test
	// process did (unless its GOMAXPROCS came from the environment).
	l.GOMAXPROCS = 0
	got := reported(t, l)
	if n, err := strconv.Atoi(got); err != nil || n < 1 || !preset && n != runtime.GOMAXPROCS(0) {
		t.Fatalf("plugin GOMAXPROCS %q with none set, want the runtime's default %d", got, runtime.GOMAXPROCS(0))
	}
}

func TestLaunchExternalPlugin(t *testing.T) {
	ctx := context.Background()
	ext := testPlugin(t, "balanced")
	b, err := os.ReadFile(ext.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	ext.SHA256 = hex.EncodeToString(sum[:])
	p, err := launcher().Launch(ctx, config.PluginChoice{Kind: core.KindAllocator, Name: "balanced", External: ext},
		sdktest.Environment(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Desc.Name != "balanced" || p.Pid == 0 || p.Path() != ext.Path {
		t.Fatalf("plugin %+v", p)
	}
	alloc := p.Impl().(core.Allocator)
	res, err := alloc.Allocate(ctx, core.AllocateRequest{})
	if err != nil || len(res) != 0 {
		t.Fatalf("allocate: %v %v", res, err)
	}
	p.Stop(ctx)
	if !p.Exited() {
		t.Fatal("the plugin process is still running after Stop")
	}
}

func TestLaunchFailuresSayWhy(t *testing.T) {
	ctx := context.Background()
	env := sdktest.Environment(t)
	cases := []struct {
		name   string
		choice config.PluginChoice
		want   string
	}{
		{"unknown built-in", config.PluginChoice{Kind: core.KindAllocator, Name: "nope"}, "unknown plugin"},
		{"missing executable", config.PluginChoice{Kind: core.KindAllocator, Name: "x",
			External: &config.ExternalPlugin{Path: "/nonexistent/plugin"}}, "not found"},
		{"wrong checksum", config.PluginChoice{Kind: core.KindAllocator, Name: "x",
			External: func() *config.ExternalPlugin {
				e := testPlugin(t, "balanced")
				e.SHA256 = strings.Repeat("00", 32)
				return e
			}()}, "sha256"},
		{"wrong kind", config.PluginChoice{Kind: core.KindConsensus, Name: "x", External: testPlugin(t, "balanced")}, "consensus"},
		{"bad config", config.PluginChoice{Kind: core.KindAllocator, Name: "x", External: testPlugin(t, "balanced"),
			Config: json.RawMessage(`{"allocate_by": 3}`)}, "configure"},
		{"unknown protocol version", config.PluginChoice{Kind: core.KindAllocator, Name: "x", External: testPlugin(t, "future-protocol")}, "version"},
		{"not a plugin, exits", config.PluginChoice{Kind: core.KindAllocator, Name: "x",
			External: &config.ExternalPlugin{Path: "/bin/true"}}, "did not start as a pincluster plugin"},
		{"not a plugin, prints", config.PluginChoice{Kind: core.KindAllocator, Name: "x",
			External: &config.ExternalPlugin{Path: "/bin/echo", Args: []string{"hello"}}}, "did not start as a pincluster plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := launcher().Launch(ctx, tc.choice, env, nil)
			if err == nil {
				t.Fatal("launch succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), string(tc.choice.Kind)) {
				t.Fatalf("error %q should mention %q and the kind", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// testLogger discards logs unless PLUGINHOST_TEST_LOG is set.
func testLogger() hclog.Logger {
	if os.Getenv("PLUGINHOST_TEST_LOG") == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug, Output: os.Stderr})
}
