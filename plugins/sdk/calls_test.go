package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

// Behaviours of the test allocator, chosen by the first pin's needed.
const (
	echoCall     = iota // answers one result: the pin's CID, and whether the call had a deadline
	notFoundCall        // answers NOT_FOUND
	blockingCall        // waits for its context, then reports why it ended
)

type callsAllocator struct {
	pluginv1.UnimplementedAllocatorServer
	started chan struct{} // a blockingCall started
	ended   chan error    // blockingCall's context errors
}

func (a *callsAllocator) Allocate(ctx context.Context, req *pluginv1.AllocateRequest) (*pluginv1.AllocateResponse, error) {
	p := req.GetPins()[0]
	switch p.GetNeeded() {
	case notFoundCall:
		return nil, status.Error(codes.NotFound, "no such pin")
	case blockingCall:
		a.started <- struct{}{}
		<-ctx.Done()
		a.ended <- ctx.Err()
		return nil, ctx.Err()
	}
	_, deadline := ctx.Deadline()
	return &pluginv1.AllocateResponse{Results: []*pluginv1.AllocateResult{
		{Peers: [][]byte{p.GetCid()}, Error: fmt.Sprint(deadline)},
	}}, nil
}

// callsRig is a gRPC server on a Unix socket serving the test allocator,
// with the Calls stream unless plain, and a callConn to it. unary counts
// the calls the server received as unary gRPC calls.
type callsRig struct {
	conn  *callConn
	alloc pluginv1.AllocatorClient
	impl  *callsAllocator
	unary atomic.Int64
	srv   *grpc.Server
}

func newCallsRig(t *testing.T, withCalls bool) *callsRig {
	t.Helper()
	r := &callsRig{impl: &callsAllocator{started: make(chan struct{}, 16), ended: make(chan error, 16)}}
	r.srv = grpc.NewServer(grpc.UnaryInterceptor(
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			r.unary.Add(1)
			return h(ctx, req)
		}))
	table := newCallTable()
	reg := table.registrar(r.srv)
	pluginv1.RegisterAllocatorServer(reg, r.impl)
	if withCalls {
		pluginv1.RegisterPluginServer(reg, newPluginServer(nil, nil, table))
	} else {
		pluginv1.RegisterPluginServer(reg, pluginv1.UnimplementedPluginServer{})
	}
	sock := filepath.Join(t.TempDir(), "calls.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.srv.Serve(l) }()
	t.Cleanup(r.srv.Stop)
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	r.conn = newCallConn(cc)
	r.alloc = pluginv1.NewAllocatorClient(r.conn)
	return r
}

func allocReq(needed int32, cid []byte) *pluginv1.AllocateRequest {
	return &pluginv1.AllocateRequest{Pins: []*pluginv1.PinAllocation{{Cid: cid, Needed: needed}}}
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Concurrent unary calls travel on the Calls stream, none as a unary gRPC
// call, and each gets its own answer, with the caller's deadline.
func TestCallsCarryUnaryCalls(t *testing.T) {
	r := newCallsRig(t, true)
	ctx := callCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			cid := []byte{byte(i)}
			resp, err := r.alloc.Allocate(ctx, allocReq(echoCall, cid))
			switch {
			case err != nil:
				errs <- err
			case !bytes.Equal(resp.GetResults()[0].GetPeers()[0], cid):
				errs <- fmt.Errorf("call %d got the answer to %v", i, resp.GetResults()[0].GetPeers()[0])
			case resp.GetResults()[0].GetError() != "true":
				errs <- fmt.Errorf("call %d: the handler saw no deadline", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := r.unary.Load(); n != 0 {
		t.Fatalf("%d calls went as unary gRPC calls", n)
	}
}

// An error keeps its code and message across the stream.
func TestCallsCarryErrors(t *testing.T) {
	r := newCallsRig(t, true)
	_, err := r.alloc.Allocate(callCtx(t), allocReq(notFoundCall, nil))
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such pin" {
		t.Fatalf("got %v, want NotFound: no such pin", err)
	}
	if r.unary.Load() != 0 {
		t.Fatal("the call went as a unary gRPC call")
	}
}

// A caller that gives up cancels the call in the plugin; the deadline of
// a call reaches the plugin.
func TestCallsCancelAndDeadline(t *testing.T) {
	r := newCallsRig(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.alloc.Allocate(ctx, allocReq(blockingCall, nil))
		done <- err
	}()
	<-r.impl.started
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call: got %v, want Canceled", err)
	}
	select {
	case err := <-r.impl.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the handler's context ended with %v, want canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not cancelled")
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer dcancel()
	if _, err := r.alloc.Allocate(dctx, allocReq(blockingCall, nil)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("call past its deadline: got %v, want DeadlineExceeded", err)
	}
	select {
	case err := <-r.impl.ended:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the handler's context ended with %v, want its deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not see the deadline")
	}
	// The stream still carries calls.
	if _, err := r.alloc.Allocate(callCtx(t), allocReq(echoCall, nil)); err != nil {
		t.Fatal(err)
	}
	if r.unary.Load() != 0 {
		t.Fatal("a call went as a unary gRPC call")
	}
}

// A plugin without Calls, a method the stream does not know and a large
// request get unary gRPC calls, and the same answers.
func TestCallsFallBackToUnary(t *testing.T) {
	t.Run("no Calls", func(t *testing.T) {
		r := newCallsRig(t, false)
		for i := range 3 {
			if _, err := r.alloc.Allocate(callCtx(t), allocReq(echoCall, nil)); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if n := r.unary.Load(); n != 3 {
			t.Fatalf("%d unary gRPC calls, want 3", n)
		}
		if !r.conn.unsupported.Load() {
			t.Fatal("the connection did not note that Calls is not served")
		}
	})
	t.Run("unknown method", func(t *testing.T) {
		r := newCallsRig(t, true)
		// Empty is not a method of any registered service: the stream
		// answers UNIMPLEMENTED and the unary call does too.
		err := r.conn.Invoke(callCtx(t), "/pincluster.plugins.v1.Allocator/Nope", &pluginv1.Empty{}, &pluginv1.Empty{})
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("got %v, want Unimplemented", err)
		}
		if _, plain := r.conn.plain.Load("/pincluster.plugins.v1.Allocator/Nope"); !plain {
			t.Fatal("the method was not noted as plain")
		}
		if _, err := r.alloc.Allocate(callCtx(t), allocReq(echoCall, nil)); err != nil {
			t.Fatal(err)
		}
		if r.unary.Load() != 0 {
			t.Fatal("a known method went as a unary gRPC call")
		}
	})
	t.Run("large request", func(t *testing.T) {
		r := newCallsRig(t, true)
		big := make([]byte, maxCallMessage+1)
		resp, err := r.alloc.Allocate(callCtx(t), allocReq(echoCall, big))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetResults()[0].GetPeers()[0]) != len(big) {
			t.Fatal("wrong answer")
		}
		if n := r.unary.Load(); n != 1 {
			t.Fatalf("%d unary gRPC calls, want 1", n)
		}
	})
}

// Calls whose requests would take the stream's backlog past
// maxCallBacklog are made as unary gRPC calls: a plugin that stops
// answering never holds a caller past its deadline in a full stream.
func TestCallsBacklogBound(t *testing.T) {
	r := newCallsRig(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payload := make([]byte, maxCallBacklog/2-1024)
	done := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := r.alloc.Allocate(ctx, allocReq(blockingCall, payload))
			done <- err
		}()
		select {
		case <-r.impl.started:
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d did not reach the plugin", i)
		}
	}
	if n := r.unary.Load(); n != 1 {
		t.Fatalf("%d unary gRPC calls, want 1 (the third)", n)
	}
	cancel()
	for range 3 {
		if err := <-done; status.Code(err) != codes.Canceled {
			t.Fatalf("got %v, want Canceled", err)
		}
	}
	// The backlog is free again.
	if _, err := r.alloc.Allocate(callCtx(t), allocReq(echoCall, payload)); err != nil {
		t.Fatal(err)
	}
	if n := r.unary.Load(); n != 1 {
		t.Fatalf("%d unary gRPC calls, want still 1", n)
	}
}

// When the plugin goes away, the calls waiting on the stream fail as
// unavailable, and so do the calls after.
func TestCallsPluginGone(t *testing.T) {
	r := newCallsRig(t, true)
	done := make(chan error, 1)
	go func() {
		_, err := r.alloc.Allocate(callCtx(t), allocReq(blockingCall, nil))
		done <- err
	}()
	<-r.impl.started
	r.srv.Stop()
	select {
	case err := <-done:
		if !IsUnavailable(err) {
			t.Fatalf("call in flight: got %v, want unavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call in flight did not fail")
	}
	if _, err := r.alloc.Allocate(callCtx(t), allocReq(echoCall, nil)); !IsUnavailable(err) {
		t.Fatalf("call after: got %v, want unavailable", err)
	}
}
