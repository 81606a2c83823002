// Package raftstore is a replicated, durable key/value map built on
// hashicorp/raft. It is the pinset store of pincluster's raft consensus
// plugin, but it knows nothing about pins: keys are opaque byte strings (CID
// bytes in practice) and values are opaque serialized objects.
//
// # Layout on disk
//
// Everything lives under Config.DataFolder:
//
//	raft.db     raft log and stable store (bbolt, via raft-boltdb)
//	snapshots/  raft snapshots (raft.FileSnapshotStore)
//	state/      the replicated map itself (badger v4)
//
// # State machine
//
// The finite state machine (FSM) is the badger database: each raft log entry
// carries a batch of [Op] values which are applied in a single badger
// transaction together with the index of the entry. Reads ([Store.Get],
// [Store.Iterate]) go straight to badger, so the map is never loaded into
// memory. Because the FSM is durable on its own, raft is told not to restore
// the latest snapshot on start when the FSM already contains it, and entries
// replayed from the log after that snapshot are skipped when their index is not
// greater than the stored one: restarting is cheap and applies are
// idempotent.
//
// Snapshots stream every key/value pair out of a badger read transaction in a
// simple length-prefixed format; restoring drops the whole map and reloads it
// from the stream.
//
// # Writes
//
// [Store.Apply] turns a batch of operations into one raft log entry and
// returns once the entry is applied to the local FSM. Concurrent callers are
// coalesced: while one log entry is in flight, the operations of new callers
// are collected and submitted together as the next entry (bounded by
// Config.MaxBatchOps and Config.MaxBatchBytes). Only the leader accepts writes:
// elsewhere Apply fails with a [*NotLeaderError], which names the current
// leader so that the caller can forward the request to it.
//
// # Cluster membership
//
// The store runs fine as a single voter (the default) with an in-memory
// transport, whose addresses are the server IDs. The raft.Transport is
// injected: with a network transport, the local server of a bootstrapped
// cluster gets the transport's local address, Config.InitAddresses gives
// the others', and [Store.AddVoter] takes the address of the server it
// adds. The peerset is changed with [Store.AddVoter] and [Store.RemovePeer]
// on the leader; elsewhere they fail with a [*NotLeaderError], as Apply
// does, so that the caller can forward them.
//
// # Watching changes
//
// [Store.Subscribe] delivers every batch applied to the FSM, in log order.
// Subscribers have a bounded buffer and never block raft: a subscriber that
// falls behind, or whose view is invalidated because the FSM was restored
// from a snapshot, receives a final [Applied] value with a non-nil Err and its
// channel is closed. It must then re-read the state (see
// [Store.IterateIndexed]) and subscribe again.
package raftstore
