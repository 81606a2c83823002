package pluginhost

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pincluster/pincluster/internal/cputime"
)

// The cost of one exchange between two processes on this machine, whatever
// is exchanged: the floor under every call across the plugin boundary.
// BenchmarkProcessExchange sends a 200-byte request to a child process and
// waits for it to come back, three ways: framed on a bare Unix socket, as a
// unary gRPC call, and as a message on a gRPC stream that stays open. The
// child runs Go code on one thread, as plugin processes do by default.

// rawBytes is a gRPC codec that passes bytes through, so that the figures
// hold no protobuf work.
type rawBytes struct{}

func (rawBytes) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawBytes) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append((*v.(*[]byte))[:0], data...)
	return nil
}
func (rawBytes) Name() string { return "raw-bytes" }

var echoService = grpc.ServiceDesc{
	ServiceName: "pincluster.bench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Call", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var b []byte
		if err := dec(&b); err != nil {
			return nil, err
		}
		return &b, nil
	}}},
	Streams: []grpc.StreamDesc{{StreamName: "Stream", ServerStreams: true, ClientStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
		var b []byte
		for {
			if err := st.RecvMsg(&b); err != nil {
				return nil
			}
			if err := st.SendMsg(&b); err != nil {
				return err
			}
		}
	}}},
}

// serveExchangePeer is the child: it answers on dir/raw.sock and
// dir/grpc.sock until its stdin closes.
func serveExchangePeer(dir string) {
	raw, err := net.Listen("unix", filepath.Join(dir, "raw.sock"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gl, err := net.Listen("unix", filepath.Join(dir, "grpc.sock"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawBytes{}))
	srv.RegisterService(&echoService, struct{}{})
	go func() { _ = srv.Serve(gl) }()
	go func() {
		for {
			conn, err := raw.Accept()
			if err != nil {
				return
			}
			go echoFrames(conn)
		}
	}()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// echoFrames sends back every length-prefixed frame it reads.
func echoFrames(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	var buf []byte
	for {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		buf = append(append(buf[:0], size[:]...), make([]byte, n)...)
		if _, err := io.ReadFull(r, buf[4:]); err != nil {
			return
		}
		if _, err := conn.Write(buf); err != nil {
			return
		}
	}
}

// startExchangePeer starts the child and returns its socket directory and
// pid.
func startExchangePeer(b *testing.B) (string, int) {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "exchange")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	cmd := exec.Command(exe, "serve-test-plugin", "exchange-peer", dir)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("exchange peer: %q %v", line, err)
	}
	return dir, cmd.Process.Pid
}

// exchanger makes one exchange; each goroutine of a run gets its own.
type exchanger func() error

func BenchmarkProcessExchange(b *testing.B) {
	dir, pid := startExchangePeer(b)
	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, "grpc.sock"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawBytes{})))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	payload := make([]byte, 200)

	kinds := []struct {
		name string
		open func(b *testing.B) exchanger
	}{
		{"raw-socket", func(b *testing.B) exchanger {
			c, err := net.Dial("unix", filepath.Join(dir, "raw.sock"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			frame := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
			frame = append(frame, payload...)
			back := make([]byte, len(frame))
			return func() error {
				if _, err := c.Write(frame); err != nil {
					return err
				}
				_, err := io.ReadFull(c, back)
				return err
			}
		}},
		{"grpc-unary", func(*testing.B) exchanger {
			var back []byte
			return func() error { return conn.Invoke(ctx, "/pincluster.bench.Echo/Call", &payload, &back) }
		}},
		{"grpc-stream", func(b *testing.B) exchanger {
			st, err := conn.NewStream(ctx, &echoService.Streams[0], "/pincluster.bench.Echo/Stream")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.CloseSend() })
			var back []byte
			return func() error {
				if err := st.SendMsg(&payload); err != nil {
					return err
				}
				return st.RecvMsg(&back)
			}
		}},
	}
	for _, kind := range kinds {
		for _, inFlight := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/in-flight-%d", kind.name, inFlight), func(b *testing.B) {
				ex := make([]exchanger, inFlight)
				for i := range ex {
					ex[i] = kind.open(b)
				}
				if err := ex[0](); err != nil { // warm up
					b.Fatal(err)
				}
				cpu0 := bothCPU(b, pid)
				b.ResetTimer()
				var wg sync.WaitGroup
				var left atomic.Int64
				left.Store(int64(b.N))
				for _, e := range ex {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							if err := e(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				cpu := bothCPU(b, pid) - cpu0
				b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// bothCPU is the CPU time this process and the child have used.
func bothCPU(b *testing.B, child int) time.Duration {
	d, err := cputime.SelfAnd(child)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
