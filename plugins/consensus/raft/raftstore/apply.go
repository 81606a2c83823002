package raftstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// applyReq is one Apply call waiting to be submitted to raft.
type applyReq struct {
	enc  []byte // the encoded operations, without entry header
	nops int
	cost int64 // see txnCost
	done chan applyResult
}

type applyResult struct {
	index uint64
	err   error
}

// Apply replicates ops as one atomic batch and returns the index of the log
// entry that carried them, once that entry is applied to the local map (so
// that Get on this peer sees the changes). Operations apply in order: a later
// operation on the same key wins.
//
// Concurrent Apply calls may share a log entry (they are coalesced while a
// previous entry is in flight); each call's operations stay together and in
// order, and all calls sharing an entry succeed or fail together.
//
// Only the leader accepts writes: on other peers Apply fails with a
// *NotLeaderError naming the leader, to which the caller may forward the
// operations. Puts and deletes are idempotent, so retrying on the new leader
// after raft.ErrLeadershipLost is safe.
//
// If ctx ends after the operations were handed to raft, Apply returns
// ctx.Err() but the operations may still be applied. An empty ops slice is a
// no-op returning index 0. ops is not retained after Apply returns.
func (s *Store) Apply(ctx context.Context, ops []Op) (uint64, error) {
	if len(ops) == 0 {
		return 0, nil
	}
	size := 0
	for _, op := range ops {
		switch {
		case len(op.Key) == 0:
			return 0, ErrEmptyKey
		case len(op.Key) > MaxKeySize:
			return 0, fmt.Errorf("%w: %d bytes (max %d)", ErrKeyTooLarge, len(op.Key), MaxKeySize)
		}
		size += encodedOpSize(op)
	}
	cost := txnCost(ops)
	if !s.fsm.fitsInTxn(len(ops), cost) {
		return 0, fmt.Errorf("%w: %d operations, about %d bytes", ErrBatchTooLarge, len(ops), cost)
	}
	select {
	case <-s.closing:
		return 0, ErrClosed
	default:
	}
	switch s.raft.State() {
	case raft.Leader:
	case raft.Shutdown:
		return 0, raft.ErrRaftShutdown
	default:
		return 0, s.notLeader()
	}

	// Encode here, in the caller's goroutine: the batcher never touches ops,
	// which the caller may reuse as soon as Apply returns.
	enc := make([]byte, 0, size)
	for _, op := range ops {
		enc = appendOp(enc, op)
	}
	req := &applyReq{enc: enc, nops: len(ops), cost: cost, done: make(chan applyResult, 1)}
	select {
	case s.applyCh <- req:
	case <-s.closing:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.index, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// runBatcher submits Apply requests to raft, one log entry at a time. The
// requests that arrive while an entry is in flight are grouped into the next
// one, up to MaxBatchOps operations and MaxBatchBytes bytes.
func (s *Store) runBatcher() {
	defer close(s.batcherDone)
	var next *applyReq
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-s.applyCh:
			case <-s.closing:
				return
			}
		}
		batch := []*applyReq{first}
		nops, nbytes, cost := first.nops, len(first.enc), first.cost
	collect:
		for nops < s.cfg.MaxBatchOps && nbytes < s.cfg.MaxBatchBytes {
			select {
			case r := <-s.applyCh:
				if nops+r.nops > s.cfg.MaxBatchOps || nbytes+len(r.enc) > s.cfg.MaxBatchBytes ||
					!s.fsm.fitsInTxn(nops+r.nops, cost+r.cost) {
					next = r
					break collect
				}
				batch = append(batch, r)
				nops += r.nops
				nbytes += len(r.enc)
				cost += r.cost
			default:
				break collect
			}
		}
		s.submit(batch, nops, nbytes)

		select {
		case <-s.closing:
			if next != nil {
				next.done <- applyResult{err: ErrClosed}
			}
			return
		default:
		}
	}
}

// submit applies the operations of batch as one log entry and reports the
// outcome to every request.
func (s *Store) submit(batch []*applyReq, nops, nbytes int) {
	buf := appendEntryHeader(make([]byte, 0, nbytes+16), nops)
	for _, r := range batch {
		buf = append(buf, r.enc...)
	}

	var res applyResult
	f := s.raft.Apply(buf, s.enqueueTimeout())
	if err := f.Error(); err != nil {
		res.err = s.wrapRaftErr(err)
	} else {
		res.index = f.Index()
		if rerr, ok := f.Response().(error); ok && rerr != nil {
			res.err = rerr
		}
		s.entries.Add(1)
		s.ops.Add(uint64(nops))
	}
	for _, r := range batch {
		r.done <- res
	}
}

// enqueueTimeout bounds the wait for raft to accept an entry.
func (s *Store) enqueueTimeout() time.Duration {
	if s.cfg.WaitForLeaderTimeout > 0 {
		return s.cfg.WaitForLeaderTimeout
	}
	return DefaultWaitForLeaderTimeout
}
