package raftstore

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

var (
	// ErrNotFound is returned by Get when the key is not in the map.
	ErrNotFound = errors.New("raftstore: key not found")
	// ErrClosed is returned by operations on a closed Store. It is also the
	// Err of the last value sent to subscribers when the Store is closed.
	ErrClosed = errors.New("raftstore: store closed")
	// ErrSubscriberLagged is the Err of the last value sent to a subscriber
	// that did not keep up with the applied batches. The subscriber missed
	// changes and must re-read the state.
	ErrSubscriberLagged = errors.New("raftstore: subscriber fell behind and was dropped")
	// ErrStateRestored is the Err of the last value sent to subscribers when
	// the state was replaced wholesale by a snapshot restore (for example a
	// follower that fell too far behind and received a snapshot from the
	// leader). Subscribers must re-read the state.
	ErrStateRestored = errors.New("raftstore: state restored from a snapshot")
	// ErrEmptyKey is returned by Apply when an operation has an empty key.
	ErrEmptyKey = errors.New("raftstore: empty key")
	// ErrKeyTooLarge is returned by Apply when a key exceeds MaxKeySize.
	ErrKeyTooLarge = errors.New("raftstore: key too large")
	// ErrBatchTooLarge is returned by Apply when a batch of operations cannot
	// be applied atomically in one storage transaction.
	ErrBatchTooLarge = errors.New("raftstore: batch too large")
	// ErrNoLeader is returned when no leader could be found in time.
	ErrNoLeader = errors.New("raftstore: no leader")
	// ErrInconsistentState is returned by Open when the stored map is ahead of
	// the raft log and snapshots found next to it, which means that the raft
	// data was lost or replaced by an older copy.
	ErrInconsistentState = errors.New("raftstore: state machine is ahead of the raft log")
)

// MaxKeySize is the largest key accepted by Apply, in bytes.
const MaxKeySize = 60000

// NotLeaderError is returned by write operations (Apply, AddVoter,
// RemovePeer) invoked on a peer that is not the raft leader. It carries what
// this peer knows about the current leader, so that the caller can forward the
// request there; LeaderID and LeaderAddr are empty when no leader is known.
//
// errors.Is(err, raft.ErrNotLeader) is true for a NotLeaderError.
type NotLeaderError struct {
	// LeaderID is the raft server ID (the peer ID) of the known leader.
	LeaderID string
	// LeaderAddr is the raft server address of the known leader.
	LeaderAddr string
}

// Error implements error.
func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" && e.LeaderAddr == "" {
		return "raftstore: not the leader (no leader known)"
	}
	return fmt.Sprintf("raftstore: not the leader (leader id=%q addr=%q)", e.LeaderID, e.LeaderAddr)
}

// Unwrap returns raft.ErrNotLeader.
func (e *NotLeaderError) Unwrap() error { return raft.ErrNotLeader }
