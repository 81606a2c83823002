// Package kubotest runs real kubo daemons for tests: each on free loopback
// ports with a temporary IPFS_PATH, stopped at the end of the test.
//
// The kubo binary is $PINCLUSTER_KUBO, or the one scripts/install-kubo.sh
// caches (${XDG_CACHE_HOME:-~/.cache}/pincluster/kubo-<Version>/ipfs).
// Without it the tests that need kubo skip, saying how to get it, except
// when the environment variable CI is set: there a missing kubo fails.
package kubotest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the kubo version the connector is tested against.
const Version = "0.43.1"

// EnvBinary names the environment variable that points at a kubo binary.
const EnvBinary = "PINCLUSTER_KUBO"

// CachePath is where scripts/install-kubo.sh puts the binary.
func CachePath() string {
	root := os.Getenv("XDG_CACHE_HOME")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache")
	}
	return filepath.Join(root, "pincluster", "kubo-"+Version, "ipfs")
}

// Find returns the kubo binary, or "" and why it is not there.
func Find() (string, string) {
	if p := os.Getenv(EnvBinary); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", fmt.Sprintf("%s=%s, but there is no kubo binary there", EnvBinary, p)
		}
		return p, ""
	}
	p := CachePath()
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		return "", fmt.Sprintf("kubo %s is not installed: run scripts/install-kubo.sh (it builds kubo into %s) or set %s", Version, p, EnvBinary)
	}
	return p, ""
}

// Binary returns the kubo binary. Without one it skips the test, or fails
// it when CI is set (or when PINCLUSTER_KUBO names a missing file).
func Binary(t testing.TB) string {
	t.Helper()
	p, why := Find()
	if p != "" {
		return p
	}
	if os.Getenv("CI") != "" || os.Getenv(EnvBinary) != "" {
		t.Fatalf("kubo is required here: %s", why)
	}
	t.Skip(why)
	return ""
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Options change how a daemon is set up.
type Options struct {
	// Online runs the daemon without --offline: it has no bootstrap peers
	// and listens on loopback only, so a block it lacks is searched for
	// until the request gives up (instead of failing at once).
	Online bool
	// Authorizations is kubo's API.Authorizations (for example
	// {"alice": {"AuthSecret": "basic:alice:pw", "AllowedPaths": ["/api/v0"]}}).
	Authorizations map[string]any
	// Config sets more configuration keys (ipfs config --json KEY VALUE).
	Config map[string]any
	// UnixSocket serves the RPC API on a unix socket in the repository
	// instead of a TCP port.
	UnixSocket bool
}

// Node is a kubo daemon run by a test.
type Node struct {
	t    testing.TB
	bin  string
	opts Options
	// Path is the IPFS_PATH.
	Path string
	// APIPort, GatewayPort and SwarmPort are the daemon's loopback ports;
	// they stay the same across Stop and Start.
	APIPort, GatewayPort, SwarmPort int
	// APISocket is the unix socket of the API with Options.UnixSocket.
	APISocket string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedBuffer
}

// Start initialises a repository (ipfs init --profile=test) in a temporary
// folder, configures loopback ports and starts the daemon; it is stopped
// at the end of the test.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	n := &Node{
		t:           t,
		bin:         Binary(t),
		opts:        opts,
		Path:        t.TempDir(),
		APIPort:     FreePort(t),
		GatewayPort: FreePort(t),
		SwarmPort:   FreePort(t),
		logs:        &lockedBuffer{},
	}
	if _, err := n.run(nil, "init", "--profile=test", "--empty-repo"); err != nil {
		t.Fatalf("kubotest: ipfs init: %v", err)
	}
	if opts.UnixSocket {
		n.APISocket = filepath.Join(n.Path, "api.sock")
	}
	set := map[string]any{
		"Addresses.API":     n.APIMultiaddr(),
		"Addresses.Gateway": fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", n.GatewayPort),
		"Addresses.Swarm":   []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", n.SwarmPort)},
		"Bootstrap":         []string{},
		"Routing.Type":      "none",
	}
	if opts.Authorizations != nil {
		set["API.Authorizations"] = opts.Authorizations
	}
	for k, v := range opts.Config {
		set[k] = v
	}
	for k, v := range set {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := n.run(nil, "config", "--json", k, string(b)); err != nil {
			t.Fatalf("kubotest: ipfs config %s: %v\n%s", k, err, out)
		}
	}
	t.Cleanup(n.kill)
	n.Start()
	return n
}

// APIMultiaddr is the multiaddr of the RPC API.
func (n *Node) APIMultiaddr() string {
	if n.APISocket != "" {
		return "/unix" + n.APISocket
	}
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", n.APIPort)
}

// APIURL is the base URL of the RPC API ("http://127.0.0.1:<port>/api/v0";
// with a unix socket the host is a placeholder: use HTTPClient).
func (n *Node) APIURL() string {
	if n.APISocket != "" {
		return "http://unix/api/v0"
	}
	return fmt.Sprintf("http://127.0.0.1:%d/api/v0", n.APIPort)
}

// HTTPClient returns a client that reaches the API (over its unix socket
// when there is one).
func (n *Node) HTTPClient() *http.Client {
	if n.APISocket == "" {
		return &http.Client{Timeout: time.Minute}
	}
	sock := n.APISocket
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// ConnectorConfig is a kubo connector section for this node, with extra
// keys merged in.
func (n *Node) ConnectorConfig(extra map[string]any) json.RawMessage {
	m := map[string]any{"node_multiaddress": n.APIMultiaddr()}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// Start starts the daemon (again, after Stop) and waits until its API
// answers.
func (n *Node) Start() {
	n.t.Helper()
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		n.t.Fatal("kubotest: the daemon is already running")
	}
	args := []string{"daemon"}
	if !n.opts.Online {
		args = append(args, "--offline")
	}
	cmd := exec.Command(n.bin, args...)
	cmd.Env = n.env()
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		n.t.Fatalf("kubotest: starting ipfs daemon: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if n.answers() {
			return
		}
		select {
		case <-done:
			n.t.Fatalf("kubotest: ipfs daemon exited during start:\n%s", n.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("kubotest: ipfs daemon did not answer within 60s:\n%s", n.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers reports whether the API answers (any HTTP answer counts: with
// authorizations configured, kubo refuses an anonymous call).
func (n *Node) answers() bool {
	c := n.HTTPClient()
	c.Timeout = 5 * time.Second
	defer c.CloseIdleConnections()
	resp, err := c.Post(n.APIURL()+"/version", "", nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// Stop stops the daemon cleanly (SIGINT) and waits for it to exit.
func (n *Node) Stop() {
	n.t.Helper()
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		n.t.Errorf("kubotest: ipfs daemon did not stop within 30s on SIGINT; killed")
	}
}

func (n *Node) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	if n.t.Failed() {
		n.t.Logf("kubo daemon log:\n%s", n.logs.String())
	}
}

// PID returns the daemon's process ID (0 when it is not running).
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Logs returns what the daemon printed so far.
func (n *Node) Logs() string { return n.logs.String() }

func (n *Node) env() []string {
	env := []string{"IPFS_PATH=" + n.Path}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IPFS_PATH=") {
			env = append(env, kv)
		}
	}
	return env
}

// run runs the ipfs command line on the node's repository (through the
// running daemon's API when it runs) and returns its standard output.
func (n *Node) run(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, args...)
	cmd.Env = n.env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ipfs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// IPFS runs the ipfs command line and returns its standard output with
// surrounding space trimmed; an error fails the test.
func (n *Node) IPFS(args ...string) string {
	n.t.Helper()
	out, err := n.run(nil, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// IPFSInput is IPFS with data on standard input.
func (n *Node) IPFSInput(stdin []byte, args ...string) string {
	n.t.Helper()
	out, err := n.run(stdin, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TryIPFS runs the ipfs command line and returns its output and error.
func (n *Node) TryIPFS(args ...string) (string, error) {
	out, err := n.run(nil, args...)
	return strings.TrimSpace(out), err
}

// PinLs returns the recursive and direct pins kubo holds (ipfs pin ls),
// CID -> type.
func (n *Node) PinLs() map[string]string {
	n.t.Helper()
	out := map[string]string{}
	for _, typ := range []string{"recursive", "direct"} {
		for _, line := range strings.Split(n.IPFS("pin", "ls", "--type="+typ), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				out[f[0]] = f[1]
			}
		}
	}
	return out
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
