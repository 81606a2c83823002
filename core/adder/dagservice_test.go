package adder

import (
	"context"
	"errors"
	"fmt"
	"testing"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// putOnlySink stores blocks but cannot read them back.
type putOnlySink struct{ s *memSink }

func (p putOnlySink) PutBlocks(ctx context.Context, blks []blocks.Block) error {
	return p.s.PutBlocks(ctx, blks)
}

func TestBatcher(t *testing.T) {
	ctx := context.Background()
	sink := newMemSink()
	b := newBatcher(ctx, sink, 4, 1<<20)

	var nodes []ipld.Node
	for i := range 10 {
		nodes = append(nodes, dag.NewRawNode([]byte(fmt.Sprintf("block %d", i))))
	}
	if err := b.AddMany(ctx, nodes[:3]); err != nil {
		t.Fatal(err)
	}
	// Buffered: readable, not yet in the sink.
	nd, err := b.Get(ctx, nodes[1].Cid())
	if err != nil || !nd.Cid().Equals(nodes[1].Cid()) {
		t.Fatalf("Get buffered: %v %v", nd, err)
	}
	if sink.calls != 0 {
		t.Fatalf("sink called before the batch was full")
	}
	// Duplicates are dropped.
	if err := b.Add(ctx, nodes[0]); err != nil {
		t.Fatal(err)
	}
	// Removed before being sent.
	if err := b.RemoveMany(ctx, []cid.Cid{nodes[2].Cid()}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddMany(ctx, nodes[3:]); err != nil {
		t.Fatal(err)
	}
	// Sent blocks are read back through the sink.
	nd, err = b.Get(ctx, nodes[0].Cid())
	if err != nil || string(nd.RawData()) != "block 0" {
		t.Fatalf("Get sent block: %v", err)
	}
	for opt := range b.GetMany(ctx, []cid.Cid{nodes[5].Cid(), nodes[9].Cid()}) {
		if opt.Err != nil {
			t.Errorf("GetMany: %v", opt.Err)
		}
	}
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	if sink.received != 9 || sink.maxBlocks > 4 {
		t.Errorf("sink received %d blocks, batches up to %d", sink.received, sink.maxBlocks)
	}
	if _, ok := sink.blocks[nodes[2].Cid()]; ok {
		t.Errorf("removed block was sent")
	}
	if err := b.Add(ctx, nodes[0]); !errors.Is(err, errBatcherClosed) {
		t.Errorf("Add after Close: %v", err)
	}

	// Without BlockGetter, blocks that left the buffer are not found.
	b = newBatcher(ctx, putOnlySink{newMemSink()}, 1, 1<<20)
	if err := b.Add(ctx, nodes[0]); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, nodes[0].Cid()); !ipld.IsNotFound(err) {
		t.Errorf("Get without BlockGetter: %v", err)
	}

	// The sink's error is returned by later calls and by Close.
	failing := newMemSink()
	failing.failOnCall = 1
	b = newBatcher(ctx, failing, 1, 1<<20)
	var addErr error
	for _, nd := range nodes {
		if addErr = b.Add(ctx, nd); addErr != nil {
			break
		}
	}
	if err := b.Close(true); !errors.Is(err, errSinkFull) {
		t.Errorf("Close after sink failure: %v", err)
	}
	if addErr != nil && !errors.Is(addErr, errSinkFull) {
		t.Errorf("Add after sink failure: %v", addErr)
	}
}

func TestCidWindow(t *testing.T) {
	w := newCidWindow(3)
	var cids []cid.Cid
	for i := range 5 {
		cids = append(cids, dag.NewRawNode([]byte{byte(i)}).Cid())
		w.add(cids[i])
		w.add(cids[i])
	}
	for i, c := range cids {
		if w.has(c) != (i >= 2) {
			t.Errorf("cid %d: has %v", i, w.has(c))
		}
	}
}
