package raft

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/pincluster/pincluster/plugins/consensus/raft/raftstore"
)

// The forwarding protocol: a follower sends a write (a commit or a
// membership change) to the leader's raft plugin on a stream of its own,
// the leader applies it and answers with the index of the log entry, and
// the stream is closed. A request is one frame:
//
//	uvarint  number of fields
//	per field: uvarint length, bytes
//
// whose first field is the request kind (one byte) followed by its
// arguments:
//
//	hello:      (none)            answers this peer's raft server ID, then
//	                              one line per member of its raft
//	                              configuration (their server IDs)
//	commit:     encoded ops       (raftstore.EncodeOps)
//	addPeer:    server ID, address
//	removePeer: server ID
//
// The answer is one frame of three fields: the status (one byte), the log
// index (8 bytes, big endian) and a message (the error, or the server ID
// for hello).
const (
	fwdHello      byte = 1
	fwdCommit     byte = 2
	fwdAddPeer    byte = 3
	fwdRemovePeer byte = 4
)

// Answer statuses.
const (
	statusOK byte = 0
	// statusFailed: the request was refused; retrying will not help.
	statusFailed byte = 1
	// statusRetry: the peer is not (or no longer) the leader, or has none;
	// the request can be sent again to the current leader.
	statusRetry byte = 2
)

// Limits of a frame: a commit carries at most what one raft entry holds.
const (
	maxFrameFields = 8
	maxFrameBytes  = 128 << 20
)

var errBadFrame = errors.New("malformed forwarding frame")

func writeFrame(w io.Writer, fields ...[]byte) error {
	bw := bufio.NewWriter(w)
	var tmp [binary.MaxVarintLen64]byte
	if _, err := bw.Write(binary.AppendUvarint(tmp[:0], uint64(len(fields)))); err != nil {
		return err
	}
	for _, f := range fields {
		if _, err := bw.Write(binary.AppendUvarint(tmp[:0], uint64(len(f)))); err != nil {
			return err
		}
		if _, err := bw.Write(f); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func readFrame(r io.Reader) ([][]byte, error) {
	br := bufio.NewReader(r)
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > maxFrameFields {
		return nil, errBadFrame
	}
	fields := make([][]byte, n)
	total := uint64(0)
	for i := range fields {
		l, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		total += l
		if total > maxFrameBytes {
			return nil, fmt.Errorf("%w: larger than %d bytes", errBadFrame, maxFrameBytes)
		}
		fields[i] = make([]byte, l)
		if _, err := io.ReadFull(br, fields[i]); err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	return fields, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// hello describes this peer: its server ID and the members of its raft
// configuration, one per line.
func (n *node) hello() string {
	lines := []string{n.self}
	if servers, err := n.store.Servers(); err == nil {
		for _, s := range servers {
			lines = append(lines, s.ID)
		}
	}
	return strings.Join(lines, "\n")
}

// parseHello splits a hello answer into the server ID and its members.
func parseHello(msg string) (id string, members []string) {
	lines := strings.Split(msg, "\n")
	return lines[0], lines[1:]
}

// answer is what the remote peer answered.
type answer struct {
	status byte
	index  uint64
	msg    string
}

// remoteError is a request refused by the remote peer.
type remoteError struct {
	peer  string
	msg   string
	retry bool
}

func (e *remoteError) Error() string { return fmt.Sprintf("raft peer %s: %s", e.peer, e.msg) }

// unreachableError is a request that could not be delivered or answered:
// the leader may be down. A commit may still have been applied; writes are
// idempotent, so trying again is safe.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach raft peer %s: %v", e.addr, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// call sends one request to the raft plugin at addr and returns its answer.
// An answer whose status is not OK is returned as a *remoteError.
func (n *node) call(ctx context.Context, addr string, fields ...[]byte) (answer, error) {
	id, err := learn(n.host, addr)
	if err != nil {
		return answer{}, err
	}
	dctx, cancel := context.WithTimeout(directDial(ctx), n.cfg.NetworkTimeout.D())
	defer cancel()
	s, err := n.host.NewStream(dctx, id, forwardProtocol)
	if err != nil {
		return answer{}, &unreachableError{addr: addr, err: err}
	}
	// The stream ends with ctx; the answer is bounded by the time the
	// leader may take to hand the entry to raft, plus the network.
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	_ = s.SetDeadline(time.Now().Add(n.cfg.applyTimeout() + n.cfg.NetworkTimeout.D()))

	if err := writeFrame(s, fields...); err != nil {
		_ = s.Reset()
		return answer{}, n.callErr(ctx, addr, err)
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return answer{}, n.callErr(ctx, addr, err)
	}
	resp, err := readFrame(s)
	if err != nil {
		_ = s.Reset()
		return answer{}, n.callErr(ctx, addr, err)
	}
	_ = s.Close()
	if len(resp) != 3 || len(resp[0]) != 1 || len(resp[1]) != 8 {
		return answer{}, &unreachableError{addr: addr, err: errBadFrame}
	}
	a := answer{status: resp[0][0], index: binary.BigEndian.Uint64(resp[1]), msg: string(resp[2])}
	if a.status != statusOK {
		return a, &remoteError{peer: id.String(), msg: a.msg, retry: a.status == statusRetry}
	}
	return a, nil
}

func (n *node) callErr(ctx context.Context, addr string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &unreachableError{addr: addr, err: err}
}

// serveForward answers one request from another peer's raft plugin.
func (n *node) serveForward(s network.Stream) {
	_ = s.SetReadDeadline(time.Now().Add(n.cfg.NetworkTimeout.D()))
	req, err := readFrame(s)
	if err != nil || len(req[0]) != 1 {
		_ = s.Reset()
		return
	}
	_ = s.SetReadDeadline(time.Time{})

	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.applyTimeout())
	defer cancel()
	var (
		index uint64
		msg   string
	)
	switch kind, args := req[0][0], req[1:]; {
	case kind == fwdHello && len(args) == 0:
		msg = n.hello()
	case kind == fwdCommit && len(args) == 1:
		index, err = n.applyEncoded(ctx, args[0])
	case kind == fwdAddPeer && len(args) == 2:
		err = n.addVoter(ctx, string(args[0]), string(args[1]))
	case kind == fwdRemovePeer && len(args) == 1:
		err = n.store.RemovePeer(ctx, string(args[0]))
	default:
		err = fmt.Errorf("unknown request %d with %d arguments", kind, len(args))
	}
	status := statusOK
	if err != nil {
		status, msg = statusFailed, err.Error()
		// A peer whose raft is shut down (closing, or removed from the
		// cluster) is no leader either: the request may succeed elsewhere.
		if retryable(err) || errors.Is(err, hraft.ErrRaftShutdown) || errors.Is(err, raftstore.ErrClosed) {
			status = statusRetry
		}
	}
	_ = s.SetWriteDeadline(time.Now().Add(n.cfg.NetworkTimeout.D()))
	if err := writeFrame(s, []byte{status}, binary.BigEndian.AppendUint64(nil, index), []byte(msg)); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}
