package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	gorpc "github.com/libp2p/go-libp2p-gorpc"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProtocolID is the libp2p protocol of the peer RPC.
const ProtocolID protocol.ID = "/pincluster/rpc/0.1"

// DefaultCallTimeout bounds a unary call when RPCConfig.CallTimeout is 0.
const DefaultCallTimeout = time.Minute

// The single gorpc service every call goes through: the service and method
// the caller names travel inside the frame (see codec.go).
const (
	dispatchService = "pincluster"
	dispatchCall    = "Call"
	dispatchStream  = "Stream"
)

// Stream batching: the server sends what its handler has produced so far,
// up to these limits, in one message; a slow handler's items leave one by
// one, a fast handler's leave in full batches.
const (
	maxBatchItems = 1024
	maxBatchBytes = 256 << 10
	streamQueue   = 2 * maxBatchItems
	replyBuffer   = 8
)

// RPCConfig configures an RPC.
type RPCConfig struct {
	// CallTimeout bounds each unary call (each peer's call of a MultiCall).
	// 0 means DefaultCallTimeout; a negative value means no bound beyond the
	// caller's context. Streams are bounded by their context only.
	CallTimeout time.Duration
	// Logger receives handler panics; nil discards them.
	Logger hclog.Logger
}

// RPC carries calls between the cores of the cluster's peers over libp2p
// streams of ProtocolID, with go-libp2p-gorpc. Handlers are registered per
// service and method name with Handle and HandleStream (or the Register*
// helpers of the cluster's services); a call names the peer, the service
// and the method. Calls to the host's own ID (or to "") are served locally
// without a stream, through the same encoding.
type RPC struct {
	host    *Host
	server  *gorpc.Server
	client  *gorpc.Client
	timeout time.Duration
	logger  hclog.Logger

	mu       sync.RWMutex
	handlers map[string]*handler
}

// handler serves one service method; exactly one of unary and stream is set.
type handler struct {
	unary  func(ctx context.Context, req request) []byte
	stream func(ctx context.Context, req request, send func([]byte) bool)
}

// NewRPC starts serving ProtocolID on h.
func NewRPC(h *Host, cfg RPCConfig) (*RPC, error) {
	r := &RPC{
		host:     h,
		timeout:  cfg.CallTimeout,
		logger:   cfg.Logger,
		handlers: make(map[string]*handler),
	}
	if r.timeout == 0 {
		r.timeout = DefaultCallTimeout
	}
	if r.logger == nil {
		r.logger = hclog.NewNullLogger()
	}
	r.server = gorpc.NewServer(h.LibP2P(), ProtocolID, gorpc.WithStreamBufferSize(replyBuffer))
	if err := r.server.RegisterName(dispatchService, &dispatcher{r}); err != nil {
		h.LibP2P().RemoveStreamHandler(ProtocolID)
		return nil, err
	}
	r.client = gorpc.NewClientWithServer(h.LibP2P(), ProtocolID, r.server)
	return r, nil
}

// Host returns the host the RPC runs on.
func (r *RPC) Host() *Host { return r.host }

// Close stops answering calls from other peers.
func (r *RPC) Close() { r.host.LibP2P().RemoveStreamHandler(ProtocolID) }

// RemotePeer returns the peer that made the call a handler is serving (the
// host's own ID for a local call).
func RemotePeer(ctx context.Context) (peer.ID, bool) {
	p, err := gorpc.GetRequestSender(ctx)
	return p, err == nil
}

func (r *RPC) register(svc, method string, h *handler) error {
	if svc == "" || method == "" {
		return errors.New("network: empty service or method name")
	}
	key := svc + "." + method
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.handlers[key]; dup {
		return fmt.Errorf("network: %s is already registered", key)
	}
	r.handlers[key] = h
	return nil
}

func (r *RPC) lookup(svc, method string) *handler {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.handlers[svc+"."+method]
}

// Handle registers a unary handler: the caller's argument is decoded into
// an In, and the Out or the error fn returns is sent back. The handler's
// context ends when the caller gives up.
func Handle[In, Out any](r *RPC, svc, method string, fn func(ctx context.Context, in In) (Out, error)) error {
	return r.register(svc, method, &handler{unary: func(ctx context.Context, req request) (reply []byte) {
		defer func() {
			if v := recover(); v != nil {
				reply = encodeReply(nil, r.panicked(svc, method, v))
			}
		}()
		var in In
		if err := decodePayload(req.codec, req.payload, &in); err != nil {
			return encodeReply(nil, fmt.Errorf("decoding the argument of %s.%s: %w", svc, method, err))
		}
		out, err := fn(ctx, in)
		return encodeReply(out, err)
	}})
}

// HandleStream registers a streaming handler: the caller's argument is
// decoded into an In, and every item of the stream fn returns is sent back,
// in batches, until the stream ends or yields an error (which the caller
// receives after the items sent before it). The stream's context ends when
// the caller stops reading.
func HandleStream[In, Out any](r *RPC, svc, method string, fn func(ctx context.Context, in In) iter.Seq2[Out, error]) error {
	return r.register(svc, method, &handler{stream: func(ctx context.Context, req request, send func([]byte) bool) {
		var in In
		if err := decodePayload(req.codec, req.payload, &in); err != nil {
			send(encodeReply(nil, fmt.Errorf("decoding the argument of %s.%s: %w", svc, method, err)))
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		items := make(chan encodedItem, streamQueue)
		errc := make(chan error, 1)
		go func() {
			defer close(items)
			defer func() {
				if v := recover(); v != nil {
					errc <- r.panicked(svc, method, v)
				}
			}()
			for v, err := range fn(ctx, in) {
				if err != nil {
					errc <- err
					return
				}
				codec, b, err := encodePayload(v)
				if err != nil {
					errc <- fmt.Errorf("encoding a reply: %w", err)
					return
				}
				select {
				case items <- encodedItem{codec, b}:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			}
		}()
		if !sendBatches(items, send) {
			cancel()
			for range items { // let the producer end
			}
			return
		}
		select {
		case err := <-errc:
			send(encodeReply(nil, err))
		default:
			if ctx.Err() != nil {
				// The handler may have stopped early because of it
				// without saying so: the stream is not complete.
				send(encodeReply(nil, ctx.Err()))
			} else {
				send([]byte{frameEnd})
			}
		}
	}})
}

type encodedItem struct {
	codec byte
	data  []byte
}

// sendBatches sends the items in batches until the channel closes; it
// reports false when the caller went away.
func sendBatches(items <-chan encodedItem, send func([]byte) bool) bool {
	var frame []byte
	for it := range items {
		frame = append(frame[:0], frameBatch, it.codec)
		batch := []encodedItem{it}
		size := len(it.data)
	fill:
		for len(batch) < maxBatchItems && size < maxBatchBytes {
			select {
			case more, ok := <-items:
				if !ok {
					break fill
				}
				batch = append(batch, more)
				size += len(more.data)
			default:
				break fill
			}
		}
		frame = binary.AppendUvarint(frame, uint64(len(batch)))
		for _, b := range batch {
			frame = binary.AppendUvarint(frame, uint64(len(b.data)))
			frame = append(frame, b.data...)
		}
		// The frame is handed over: the next one needs its own buffer.
		if !send(frame) {
			return false
		}
		frame = nil
	}
	return true
}

// chunkSize bounds the chunks a frame is cut into on the wire: gorpc's
// msgpack decoder reads a byte string of unknown size in steps of 256 KiB,
// copying what it read at each step, so one large byte string costs time
// quadratic in its size while a list of chunks of at most 256 KiB costs
// one allocation per chunk.
const chunkSize = 256 << 10

// split cuts a frame into chunks of at most chunkSize (sharing its memory).
func split(b []byte) [][]byte {
	if len(b) <= chunkSize {
		return [][]byte{b}
	}
	out := make([][]byte, 0, (len(b)+chunkSize-1)/chunkSize)
	for len(b) > chunkSize {
		out = append(out, b[:chunkSize:chunkSize])
		b = b[chunkSize:]
	}
	return append(out, b)
}

// join puts a frame's chunks back together.
func join(chunks [][]byte) []byte {
	switch len(chunks) {
	case 0:
		return nil
	case 1:
		return chunks[0]
	}
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	out := make([]byte, 0, n)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out
}

func (r *RPC) panicked(svc, method string, v any) error {
	r.logger.Error("rpc handler panicked", "method", svc+"."+method, "panic", v, "stack", string(debug.Stack()))
	return fmt.Errorf("%s.%s panicked: %v", svc, method, v)
}

// dispatcher is the gorpc service: it decodes the frame and runs the
// handler the frame names.
type dispatcher struct{ r *RPC }

// Call serves a unary call.
func (d *dispatcher) Call(ctx context.Context, in [][]byte, out *[][]byte) error {
	req, err := decodeRequest(join(in))
	if err != nil {
		*out = split(encodeReply(nil, err))
		return nil
	}
	h := d.r.lookup(req.svc, req.method)
	if h == nil || h.unary == nil {
		*out = split(encodeReply(nil, unknownMethod(req, h != nil)))
		return nil
	}
	*out = split(h.unary(ctx, req))
	return nil
}

// Stream serves a streaming call: one request frame in, reply frames out.
func (d *dispatcher) Stream(ctx context.Context, in <-chan [][]byte, out chan<- [][]byte) error {
	defer close(out)
	send := func(b []byte) bool {
		select {
		case out <- split(b):
			return true
		case <-ctx.Done():
			return false
		}
	}
	var first []byte
	select {
	case b, ok := <-in:
		if !ok {
			send(encodeReply(nil, errMalformed))
			return nil
		}
		first = join(b)
	case <-ctx.Done():
		return nil
	}
	req, err := decodeRequest(first)
	if err != nil {
		send(encodeReply(nil, err))
		return nil
	}
	h := d.r.lookup(req.svc, req.method)
	if h == nil || h.stream == nil {
		send(encodeReply(nil, unknownMethod(req, h != nil)))
		return nil
	}
	h.stream(ctx, req, send)
	return nil
}

func unknownMethod(req request, otherKind bool) error {
	if otherKind {
		return fmt.Errorf("%s.%s is not a method of this kind (unary or stream)", req.svc, req.method)
	}
	return fmt.Errorf("unknown method %s.%s", req.svc, req.method)
}

// CallError is the error of a call to one peer: Err is a *RemoteError when
// the peer's handler failed, and any other error when the call did not get
// an answer (peer unreachable, timeout, protocol error).
type CallError struct {
	Peer            peer.ID
	Service, Method string
	Err             error
}

// Error names the method, the peer and the cause.
func (e *CallError) Error() string {
	return fmt.Sprintf("%s.%s on peer %s: %v", e.Service, e.Method, e.Peer, e.Err)
}

// Unwrap returns the cause.
func (e *CallError) Unwrap() error { return e.Err }

// RemoteError is an error a peer's handler returned; only its text travels.
type RemoteError struct{ Msg string }

// Error returns the text of the peer's error.
func (e *RemoteError) Error() string { return e.Msg }

// Is reports whether target has the same text, so that errors.Is matches a
// peer's sentinel error (core.ErrPinNotFound) with the local one.
func (e *RemoteError) Is(target error) bool { return target != nil && target.Error() == e.Msg }

// IsRemote reports whether err is an error a peer's handler returned, as
// opposed to a failure to reach the peer.
func IsRemote(err error) bool {
	var re *RemoteError
	return errors.As(err, &re)
}

func (r *RPC) callErr(p peer.ID, svc, method string, err error) error {
	if p == "" {
		p = r.host.ID()
	}
	return &CallError{Peer: p, Service: svc, Method: method, Err: err}
}

// Call calls svc.method on peer p with in and decodes the answer into out
// (a pointer, or nil to discard it). The call is bounded by ctx and by the
// configured CallTimeout. Errors are *CallError.
func (r *RPC) Call(ctx context.Context, p peer.ID, svc, method string, in, out any) error {
	req, err := encodeRequest(svc, method, in)
	if err != nil {
		return r.callErr(p, svc, method, err)
	}
	return r.call(ctx, p, svc, method, req, out)
}

func (r *RPC) call(ctx context.Context, p peer.ID, svc, method string, req []byte, out any) error {
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	var reply [][]byte
	if err := r.client.CallContext(ctx, p, dispatchService, dispatchCall, split(req), &reply); err != nil {
		return r.callErr(p, svc, method, err)
	}
	if err := decodeReply(join(reply), out); err != nil {
		return r.callErr(p, svc, method, err)
	}
	return nil
}

// MultiCall calls svc.method on every peer in parallel with the same
// argument. outs, when not nil, has one pointer per peer (nil entries
// discard that answer); see Outs. It returns one error per peer, nil where
// the call succeeded; each call is bounded by ctx and CallTimeout.
func (r *RPC) MultiCall(ctx context.Context, peers []peer.ID, svc, method string, in any, outs []any) []error {
	errs := make([]error, len(peers))
	fail := func(err error) []error {
		for i, p := range peers {
			errs[i] = r.callErr(p, svc, method, err)
		}
		return errs
	}
	if outs != nil && len(outs) != len(peers) {
		return fail(fmt.Errorf("%d reply slots for %d peers", len(outs), len(peers)))
	}
	req, err := encodeRequest(svc, method, in)
	if err != nil {
		return fail(err)
	}
	var wg sync.WaitGroup
	for i, p := range peers {
		var out any
		if outs != nil {
			out = outs[i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.call(ctx, p, svc, method, req, out)
		}()
	}
	wg.Wait()
	return errs
}

// Outs returns a pointer to each element of s, as MultiCall's outs:
//
//	ids := make([]core.ID, len(peers))
//	errs := r.MultiCall(ctx, peers, ServiceCluster, MethodID, Empty{}, Outs(ids))
func Outs[T any](s []T) []any {
	out := make([]any, len(s))
	for i := range s {
		out[i] = &s[i]
	}
	return out
}

// Stream calls the streaming method svc.method on peer p and yields the
// items it answers. A stream that fails, or that is cut before the peer
// finished it, ends with one error (a *CallError). Breaking out of the loop
// cancels the call on the peer.
func Stream[Out any](ctx context.Context, r *RPC, p peer.ID, svc, method string, in any) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		var zero Out
		req, err := encodeRequest(svc, method, in)
		if err != nil {
			yield(zero, r.callErr(p, svc, method, err))
			return
		}
		parent := ctx
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		args := make(chan [][]byte, 1)
		args <- split(req)
		close(args)
		replies := make(chan [][]byte, replyBuffer)
		errc := make(chan error, 1)
		go func() {
			errc <- r.client.Stream(ctx, p, dispatchService, dispatchStream, args, replies)
		}()

		var (
			ended   bool  // the peer sent its end or an error frame
			stopped bool  // the consumer stopped, or an item did not decode
			ferr    error // the error frame or a decoding error
		)
		// replies is closed by gorpc when the call ends, whatever the
		// reason; after a stop, it is drained so the call can end.
		for chunks := range replies {
			if stopped || ended {
				continue
			}
			frame := join(chunks)
			if err := parent.Err(); err != nil {
				ferr, stopped = err, true
				cancel()
				continue
			}
			if len(frame) == 0 {
				ferr, stopped = errMalformed, true
				cancel()
				continue
			}
			switch frame[0] {
			case frameEnd:
				ended = true
			case frameError:
				ferr, ended = &RemoteError{Msg: string(frame[1:])}, true
			case frameBatch:
				if err := eachItem(frame, func(codec byte, data []byte) (bool, error) {
					var v Out
					if err := decodePayload(codec, data, &v); err != nil {
						return false, fmt.Errorf("decoding a reply: %w", err)
					}
					return yield(v, nil), nil
				}); err != nil {
					stopped = true
					if err != errStop {
						ferr = err
					}
					cancel()
				}
			default:
				ferr, stopped = errMalformed, true
				cancel()
			}
		}
		gerr := <-errc
		switch {
		case stopped && ferr == nil:
			// The consumer stopped reading.
		case ferr != nil:
			yield(zero, r.callErr(p, svc, method, ferr))
		case !ended && parent.Err() != nil:
			yield(zero, r.callErr(p, svc, method, parent.Err()))
		case gerr != nil:
			yield(zero, r.callErr(p, svc, method, gerr))
		case !ended:
			yield(zero, r.callErr(p, svc, method, errors.New("the stream was cut before its end")))
		}
	}
}

// errStop is returned by eachItem when the consumer stopped.
var errStop = errors.New("stopped")

// eachItem calls fn for each item of a batch frame until fn returns false
// (eachItem then returns errStop) or an error.
func eachItem(frame []byte, fn func(codec byte, data []byte) (bool, error)) error {
	if len(frame) < 2 {
		return errMalformed
	}
	codec := frame[1]
	n, k := binary.Uvarint(frame[2:])
	if k <= 0 {
		return errMalformed
	}
	rest := frame[2+k:]
	for i := uint64(0); i < n; i++ {
		var data []byte
		var err error
		if data, rest, err = readBytes(rest); err != nil {
			return err
		}
		ok, err := fn(codec, data)
		if err != nil {
			return err
		}
		if !ok {
			return errStop
		}
	}
	return nil
}

// MultiStream runs Stream on every peer in parallel and calls fn with each
// item and the peer that sent it; calls to fn never overlap, so fn may
// merge into shared state without locking. A peer's stream stops at its
// first error, or when fn returns an error for one of its items. It
// returns one error per peer.
func MultiStream[Out any](ctx context.Context, r *RPC, peers []peer.ID, svc, method string, in any, fn func(p peer.ID, item Out) error) []error {
	errs := make([]error, len(peers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v, err := range Stream[Out](ctx, r, p, svc, method, in) {
				if err != nil {
					errs[i] = err
					return
				}
				mu.Lock()
				err = fn(p, v)
				mu.Unlock()
				if err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errs
}
