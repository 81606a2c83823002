package sdk

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/pincluster/pincluster/plugins/proto/v1"
)

// Unary calls on one open stream (the Plugin service's Calls).
//
// A unary gRPC call opens an HTTP/2 stream, sends headers, the message and
// trailers, and the server starts a goroutine for it; across processes
// that costs 30 to 50 % more CPU than the same exchange as messages on a
// stream that is already open (BenchmarkCallsStream). The core's
// hot path (allocate, look up, commit, track) is one unary call per batch
// to a process that is waiting for it, so the core sends its unary calls
// to a plugin as Call messages on one long-lived Calls stream: each
// request names its method and carries its encoded message and the time
// left before its deadline; the plugin runs the same handler its gRPC
// server would and answers by id. Streaming calls, and requests larger than
// maxCallMessage (which would hold up the calls behind them on the one
// stream), keep their own gRPC streams.
//
// A plugin that does not serve Calls (another language's, or one built
// before it existed) answers UNIMPLEMENTED: the core then calls it the
// usual way, as it does for any method the plugin answers UNIMPLEMENTED on
// the stream.

// maxCallMessage bounds the requests sent on the Calls stream.
const maxCallMessage = 256 << 10

// callHandler runs one unary method of a registered service.
type callHandler func(ctx context.Context, message []byte) (proto.Message, error)

// callTable holds the unary methods of the services a plugin's gRPC server
// registers, by full method name, for the Calls stream to run. It is
// complete before the server serves.
type callTable struct {
	methods map[string]callHandler
}

func newCallTable() *callTable { return &callTable{methods: map[string]callHandler{}} }

// registrar registers services on s and records their unary methods.
func (t *callTable) registrar(s grpc.ServiceRegistrar) grpc.ServiceRegistrar {
	return tableRegistrar{s: s, t: t}
}

type tableRegistrar struct {
	s grpc.ServiceRegistrar
	t *callTable
}

func (r tableRegistrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	r.s.RegisterService(desc, impl)
	for _, m := range desc.Methods {
		handler := m.Handler
		r.t.methods["/"+desc.ServiceName+"/"+m.MethodName] = func(ctx context.Context, message []byte) (proto.Message, error) {
			dec := func(req any) error { return proto.Unmarshal(message, req.(proto.Message)) }
			resp, err := handler(impl, ctx, dec, nil)
			m, _ := resp.(proto.Message)
			return m, err
		}
	}
}

// serve answers the calls of one Calls stream until the core closes it.
// Calls run concurrently, each in its own goroutine, as the gRPC server
// runs unary calls; when the stream ends, the calls still running are
// cancelled.
func (t *callTable) serve(st grpc.BidiStreamingServer[pluginv1.Call, pluginv1.Call]) error {
	ctx, cancelAll := context.WithCancel(st.Context())
	var (
		sendMu  sync.Mutex
		mu      sync.Mutex
		running = map[uint64]context.CancelFunc{}
		wg      sync.WaitGroup
	)
	defer func() {
		cancelAll()
		wg.Wait()
	}()
	for {
		call, err := st.Recv()
		if err != nil {
			return nil
		}
		id := call.GetId()
		if call.GetCancel() {
			mu.Lock()
			if cancel := running[id]; cancel != nil {
				cancel()
			}
			mu.Unlock()
			continue
		}
		cctx, cancel := callContext(ctx, call.GetTimeoutNs())
		mu.Lock()
		running[id] = cancel
		mu.Unlock()
		wg.Go(func() {
			answer := t.run(cctx, call)
			mu.Lock()
			delete(running, id)
			mu.Unlock()
			cancel()
			sendMu.Lock()
			defer sendMu.Unlock()
			_ = st.Send(answer)
		})
	}
}

// callContext is the context of a call with timeoutNs left (0: none).
func callContext(ctx context.Context, timeoutNs int64) (context.Context, context.CancelFunc) {
	if timeoutNs > 0 {
		return context.WithTimeout(ctx, time.Duration(timeoutNs))
	}
	return context.WithCancel(ctx)
}

// run runs one call and returns its answer.
func (t *callTable) run(ctx context.Context, call *pluginv1.Call) *pluginv1.Call {
	answer := &pluginv1.Call{Id: call.GetId()}
	handler := t.methods[call.GetMethod()]
	if handler == nil {
		answer.Code = uint32(codes.Unimplemented)
		answer.Error = "unknown method " + call.GetMethod()
		return answer
	}
	resp, err := handler(ctx, call.GetMessage())
	if err == nil {
		answer.Message, err = proto.Marshal(resp)
	}
	if err != nil {
		// As the gRPC server does: a bare context error keeps its code.
		st, ok := status.FromError(err)
		if !ok {
			st = status.FromContextError(err)
		}
		answer.Code, answer.Error = uint32(st.Code()), st.Message()
	}
	return answer
}

// callConn is the core's connection to a plugin: unary calls go on the
// plugin's Calls stream, opened at the first call and again after it
// breaks; streams, large requests and the calls of a plugin that does not
// serve Calls go on conn as they are.
type callConn struct {
	conn grpc.ClientConnInterface

	// unsupported is set once the plugin answered UNIMPLEMENTED to Calls.
	unsupported atomic.Bool
	// plain holds the methods the plugin answered UNIMPLEMENTED on the
	// stream: they are called on conn from then on.
	plain sync.Map

	mu     sync.Mutex
	stream *callStream // nil: none open
	nextID atomic.Uint64
}

var _ grpc.ClientConnInterface = (*callConn)(nil)

func newCallConn(conn grpc.ClientConnInterface) *callConn { return &callConn{conn: conn} }

// maxCallBacklog bounds the bytes of the requests on one stream that are
// not answered yet. It is below the stream's flow-control window, so that
// sending never waits for a plugin that stopped reading: a call that would
// go past it is made as a unary gRPC call instead, which keeps its
// deadline whatever the plugin does.
const maxCallBacklog = streamWindow / 2

// callStream is one open Calls stream and the calls waiting on it.
type callStream struct {
	st     grpc.BidiStreamingClient[pluginv1.Call, pluginv1.Call]
	cancel context.CancelFunc
	// sending is held while a message is sent; waiting for it respects the
	// caller's context.
	sending chan struct{}

	mu       sync.Mutex
	waiting  map[uint64]waitingCall
	backlog  int         // bytes of the waiting calls' requests
	broken   *callAnswer // set once the stream failed: no call is sent any more
	answered bool        // an answer came: the plugin serves Calls
}

type waitingCall struct {
	answer chan callAnswer
	size   int
}

// callAnswer is what a caller waiting on the stream receives.
type callAnswer struct {
	call *pluginv1.Call
	// err is set when the stream broke before the answer came.
	err error
	// plain asks the caller to call again on the connection.
	plain bool
}

// errCallsUnsupported is the answer of a plugin without Calls.
var errCallsUnsupported = errors.New("the plugin does not serve Calls")

func (c *callConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.conn.NewStream(ctx, desc, method, opts...)
}

// Invoke makes a unary call on the stream. The call options are those of
// a call on the connection (generated clients pass grpc.StaticMethod); the
// stream has the connection's message limits.
func (c *callConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	req, okReq := args.(proto.Message)
	resp, okResp := reply.(proto.Message)
	if !okReq || !okResp || c.unsupported.Load() {
		return c.conn.Invoke(ctx, method, args, reply, opts...)
	}
	if _, plain := c.plain.Load(method); plain {
		return c.conn.Invoke(ctx, method, args, reply, opts...)
	}
	// Sizing first spares a large request being encoded twice; the
	// encoding then reuses the sizes.
	if proto.Size(req) > maxCallMessage {
		return c.conn.Invoke(ctx, method, args, reply, opts...)
	}
	message, err := proto.MarshalOptions{UseCachedSize: true}.Marshal(req)
	if err != nil {
		return c.conn.Invoke(ctx, method, args, reply, opts...)
	}
	answer := c.call(ctx, method, message)
	switch {
	case answer.plain:
		if errors.Is(answer.err, errCallsUnsupported) {
			c.unsupported.Store(true)
		} else if answer.call != nil {
			c.plain.Store(method, true)
		}
		return c.conn.Invoke(ctx, method, args, reply, opts...)
	case answer.err != nil:
		return answer.err
	case answer.call.GetCode() != uint32(codes.OK):
		return status.Error(codes.Code(answer.call.GetCode()), answer.call.GetError())
	}
	return proto.Unmarshal(answer.call.GetMessage(), resp)
}

// call sends one call on the stream and waits for its answer.
func (c *callConn) call(ctx context.Context, method string, message []byte) callAnswer {
	s, err := c.open()
	if err != nil {
		return callAnswer{err: err}
	}
	id := c.nextID.Add(1)
	req := &pluginv1.Call{Id: id, Method: method, Message: message}
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left <= 0 {
			return callAnswer{err: status.FromContextError(context.DeadlineExceeded).Err()}
		}
		req.TimeoutNs = int64(left)
	}
	wait := make(chan callAnswer, 1)
	if a, ok := s.wait(id, waitingCall{answer: wait, size: len(message)}); !ok {
		return a
	}
	if !s.send(ctx, req) {
		s.forget(id)
		return callAnswer{err: status.FromContextError(ctx.Err()).Err()}
	}
	select {
	case a := <-wait:
		return a
	case <-ctx.Done():
		// The plugin has the same deadline; a cancelled call is cancelled
		// there too.
		if s.forget(id) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			go s.send(context.Background(), &pluginv1.Call{Id: id, Cancel: true})
		}
		return callAnswer{err: status.FromContextError(ctx.Err()).Err()}
	}
}

// open returns the open stream, opening one if there is none.
func (c *callConn) open() (*callStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil {
		return c.stream, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := pluginv1.NewPluginClient(c.conn).Calls(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &callStream{st: st, cancel: cancel, sending: make(chan struct{}, 1), waiting: map[uint64]waitingCall{}}
	c.stream = s
	go c.receive(s)
	return s, nil
}

// receive hands each answer on s to its caller until s breaks; then it
// forgets s, so that the next call opens another stream, and fails the
// calls still waiting with the stream's error, or asks them to call again
// on the connection if the plugin does not serve Calls.
func (c *callConn) receive(s *callStream) {
	for {
		a, err := s.st.Recv()
		if err != nil {
			c.mu.Lock()
			if c.stream == s {
				c.stream = nil
			}
			c.mu.Unlock()
			s.cancel()
			s.fail(err)
			return
		}
		s.mu.Lock()
		s.answered = true
		w, ok := s.waiting[a.GetId()]
		if ok {
			delete(s.waiting, a.GetId())
			s.backlog -= w.size
		}
		s.mu.Unlock()
		if !ok {
			continue // its caller gave up
		}
		w.answer <- callAnswer{call: a, plain: a.GetCode() == uint32(codes.Unimplemented)}
	}
}

// wait registers w for the answer to id. It returns false, with what the
// caller gets instead, when the stream is broken or its backlog full.
func (s *callStream) wait(id uint64, w waitingCall) (callAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.broken != nil:
		return *s.broken, false
	case s.backlog+w.size > maxCallBacklog:
		return callAnswer{plain: true}, false
	}
	s.waiting[id] = w
	s.backlog += w.size
	return callAnswer{}, true
}

// send sends m, unless ctx ends first while another message is being
// sent. A failed Send is not reported: Recv then fails with the reason, and
// fail answers every waiting call.
func (s *callStream) send(ctx context.Context, m *pluginv1.Call) bool {
	select {
	case s.sending <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	_ = s.st.Send(m)
	<-s.sending
	return true
}

// forget stops waiting for the answer to id; it reports whether the call
// was still waiting.
func (s *callStream) forget(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.waiting[id]
	if ok {
		delete(s.waiting, id)
		s.backlog -= w.size
	}
	return ok
}

// fail answers every waiting call once the stream broke with err.
func (s *callStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := callAnswer{err: err}
	if status.Code(err) == codes.Unimplemented && !s.answered {
		a = callAnswer{err: errCallsUnsupported, plain: true}
	}
	s.broken = &a
	for id, w := range s.waiting {
		w.answer <- a
		delete(s.waiting, id)
	}
	s.backlog = 0
}
