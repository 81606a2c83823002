package raftstore

import (
	"sync/atomic"

	"github.com/hashicorp/raft"
)

var maxInflight = 4
var batchApplyCh = false

var StoreLogsCalls atomic.Int64

type countingLogs struct{ raft.LogStore }

func (c countingLogs) StoreLogs(l []*raft.Log) error { StoreLogsCalls.Add(1); return c.LogStore.StoreLogs(l) }
