// Package ipfsnode implements a small IPFS node that runs inside the host
// process. It is assembled from boxo components:
//
//   - Blocks and pins are persisted in one badger v4 database, used as a
//     go-datastore through go-ds-badger4. Blocks live under the /blocks
//     namespace, keyed by multihash (the kubo layout); pins live under /pins
//     and are managed by boxo's dspinner.
//   - A blockservice joins the blockstore with a block exchange. By default
//     the exchange is offline: the node only sees the blocks stored locally.
//     A network exchange such as bitswap over a libp2p host can be plugged in
//     through [Options.Exchange] or [Options.NewExchange] (the embedded
//     connector plugs in bitswap over a host of its own). Pins fetch what is
//     missing through it, level by level within one exchange session, and
//     report the blocks that never arrived ([FetchError]); [Node.Prefetch]
//     asks for the root blocks of a whole batch of pins in one session.
//   - A merkledag DAG service, a path resolver that understands UnixFS, and a
//     mark-and-sweep garbage collector complete the node.
//
// There is no DHT, no IPNS and no libp2p host in this package: the network,
// when there is one, belongs to whoever provides the exchange.
//
// All methods of [Node] are safe for concurrent use. Pinning and garbage
// collection exclude each other: [Node.Pin] holds a shared lock for its whole
// duration (including block fetching), [Node.GC] holds it exclusively. Pins
// do not serialize each other while fetching; only the short pin-set update
// at the end of a Pin is serialized. Blocks written with [Node.PutBlocks]
// are not protected until they are pinned: a GC running in between removes
// them.
//
// Durability: writes go to badger's memory-mapped write-ahead log, so they
// survive a crash of the process. They are flushed to stable storage on
// Close, and after every pin change when [Options.SyncPins] is set.
package ipfsnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/exchange/offline"
	bsfetcher "github.com/ipfs/boxo/fetcher/impl/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/path/resolver"
	ipfspinner "github.com/ipfs/boxo/pinning/pinner"
	"github.com/ipfs/boxo/pinning/pinner/dsindex"
	"github.com/ipfs/boxo/pinning/pinner/dspinner"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	badgerds "github.com/ipfs/go-ds-badger4"
	format "github.com/ipfs/go-ipld-format"
	"github.com/ipfs/go-unixfsnode"
	dagpb "github.com/ipld/go-codec-dagpb"

	// Register the dag-cbor and dag-json codecs so that DAGs using them can
	// be decoded (pinned, collected and resolved).
	_ "github.com/ipld/go-ipld-prime/codec/dagcbor"
	_ "github.com/ipld/go-ipld-prime/codec/dagjson"
)

// DefaultStorageMax is the StorageMax reported by [Node.RepoStat] when
// [Options.StorageMax] is zero. It matches kubo's default (10 GB).
const DefaultStorageMax uint64 = 10_000_000_000

// badgerDir is the folder, inside Options.Path, that holds the badger files.
const badgerDir = "badger"

// Keys used by boxo's dspinner to index recursive and direct pins. They are
// part of dspinner's on-disk format (shared with kubo repositories), which is
// what allows PinLs and GC to stream the pin sets from the datastore instead
// of taking dspinner's in-memory snapshots.
var (
	recursiveIndexKey = ds.NewKey("/pins/index/cidRindex")
	directIndexKey    = ds.NewKey("/pins/index/cidDindex")
)

// Errors returned by the node.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("ipfsnode: node is closed")
	// ErrOffline is wrapped in the errors returned when a block is not
	// available locally and the node has no network exchange to fetch it.
	ErrOffline = errors.New("block not available locally and the node is offline")
	// ErrInvalidPath is wrapped in the errors returned by Resolve for
	// malformed paths.
	ErrInvalidPath = errors.New("invalid path")
	// ErrIPNSNotSupported is returned by Resolve for /ipns/ paths.
	ErrIPNSNotSupported = errors.New("ipfsnode: /ipns paths are not supported by the embedded IPFS node")
)

// Options configures a Node.
type Options struct {
	// Path is the repository folder, created if missing. The badger
	// database lives in its "badger" sub-folder. Ignored when InMemory is
	// set, required otherwise.
	Path string

	// StorageMax is the storage limit, in bytes, reported by RepoStat. It is
	// informative only: the node does not enforce it. Zero means
	// DefaultStorageMax.
	StorageMax uint64

	// Exchange, when not nil, is used by the blockservice to fetch blocks
	// that are not stored locally. The caller keeps ownership of it: Close
	// does not close it. Nil (and NewExchange nil) means offline: only local
	// blocks are available.
	Exchange exchange.Interface

	// NewExchange, when not nil, is called once by Open with the node's
	// blockstore to build the exchange. This is the way to plug in bitswap,
	// which needs the blockstore it serves blocks from. The node owns the
	// returned exchange and closes it in Close. It cannot be combined with
	// Exchange.
	NewExchange func(bs blockstore.Blockstore) (exchange.Interface, error)

	// BeforeFetch, when not nil, is called when a pin, a path resolution
	// or a block read is about to fetch blocks through a network exchange,
	// with the first block found missing. An error aborts the call
	// (nothing is fetched) and is returned wrapped. The embedded connector uses it to fail early when no node is
	// connected to fetch from.
	BeforeFetch func(ctx context.Context, missing cid.Cid) error

	// InMemory keeps the badger database in memory (for tests). Nothing is
	// written to disk and Path is ignored.
	InMemory bool

	// SyncPins makes every Pin and Unpin flush the database to stable
	// storage (fsync) before returning, so that acknowledged pin changes,
	// and the blocks written before them, survive a power loss or an OS
	// crash. Concurrent operations share flushes. Without it, pin changes
	// survive a crash of the process (badger's write-ahead log is memory
	// mapped) but the last seconds of changes can be lost on power loss;
	// Close always flushes. Badger does not fsync block writes either.
	SyncPins bool

	// Badger optionally overrides the go-ds-badger4 options (cache sizes,
	// value log GC schedule...). Nil means badgerds.DefaultOptions. The Dir,
	// ValueDir and InMemory fields are managed by Open.
	Badger *badgerds.Options
}

// Node is an embedded IPFS node. Create it with Open and release it with
// Close.
type Node struct {
	storageMax uint64

	dstore *badgerds.Datastore
	bstore blockstore.Blockstore

	exch         exchange.Interface
	ownsExchange bool
	offline      bool
	beforeFetch  func(context.Context, cid.Cid) error
	prefetch     prefetches

	bserv    blockservice.BlockService
	dag      format.DAGService // fetches missing blocks through the exchange
	localDAG format.DAGService // local blocks only

	pinner   ipfspinner.Pinner
	recIndex dsindex.Indexer // dspinner's recursive pin index (read only)
	dirIndex dsindex.Indexer // dspinner's direct pin index (read only)

	resolver resolver.Resolver

	gate   *gcGate
	syncer *syncer       // nil unless Options.SyncPins
	pinMu  sync.Mutex    // serializes pin-set mutations
	pinGen atomic.Uint64 // incremented after each pin-set mutation

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it if needed) the repository described by opts and
// returns a ready node. Pins and blocks stored by a previous Node on the same
// Path are available again.
func Open(ctx context.Context, opts Options) (*Node, error) {
	if opts.Exchange != nil && opts.NewExchange != nil {
		return nil, errors.New("ipfsnode: Options.Exchange and Options.NewExchange are mutually exclusive")
	}

	bopts := badgerds.DefaultOptions
	if opts.Badger != nil {
		bopts = *opts.Badger
	}
	var dir string
	if opts.InMemory {
		bopts.Options = bopts.Options.WithInMemory(true)
		// Value log GC is not supported in memory; avoid periodic errors.
		bopts.GcInterval = 0
	} else {
		if opts.Path == "" {
			return nil, errors.New("ipfsnode: Options.Path is required unless InMemory is set")
		}
		bopts.Options = bopts.Options.WithInMemory(false)
		dir = filepath.Join(opts.Path, badgerDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ipfsnode: creating repository folder: %w", err)
		}
	}

	dstore, err := badgerds.NewDatastore(dir, &bopts)
	if err != nil {
		return nil, fmt.Errorf("ipfsnode: opening badger datastore: %w", err)
	}

	n := &Node{
		storageMax:  opts.StorageMax,
		dstore:      dstore,
		gate:        newGCGate(),
		beforeFetch: opts.BeforeFetch,
	}
	if n.storageMax == 0 {
		n.storageMax = DefaultStorageMax
	}

	// Blocks are keyed by multihash under /blocks. Identity CIDs are never
	// stored: their content is inlined in the CID. WriteThrough avoids a
	// second existence check: the blockservice already does one.
	n.bstore = blockstore.NewIdStore(blockstore.NewBlockstore(dstore, blockstore.WriteThrough(true)))

	switch {
	case opts.Exchange != nil:
		n.exch = opts.Exchange
	case opts.NewExchange != nil:
		n.exch, err = opts.NewExchange(n.bstore)
		if err != nil {
			_ = dstore.Close()
			return nil, fmt.Errorf("ipfsnode: creating exchange: %w", err)
		}
		if n.exch == nil {
			_ = dstore.Close()
			return nil, errors.New("ipfsnode: Options.NewExchange returned a nil exchange")
		}
		n.ownsExchange = true
	default:
		n.exch = offline.Exchange(n.bstore)
		n.ownsExchange = true
		n.offline = true
	}

	n.bserv = blockservice.New(n.bstore, n.exch)
	n.dag = merkledag.NewDAGService(n.bserv)
	// The local DAG service has no exchange: it never blocks on the
	// network. It backs the pinner and every internal DAG traversal.
	n.localDAG = merkledag.NewDAGService(blockservice.New(n.bstore, nil))

	// dspinner rebuilds its indexes here if the previous process died in
	// the middle of a pin update.
	pins := pinStore{dstore}
	pinner, err := dspinner.New(ctx, pins, n.localDAG)
	if err != nil {
		_ = n.closeExchange()
		_ = dstore.Close()
		return nil, fmt.Errorf("ipfsnode: loading pins: %w", err)
	}
	// With autosync, dspinner fsyncs three times per pin update. The node
	// flushes instead according to Options.SyncPins, and in Close. Until
	// that final flush, dspinner's persisted dirty flag makes the next
	// Open check its indexes if the process dies.
	pinner.SetAutosync(false)
	n.pinner = pinner
	if opts.SyncPins {
		n.syncer = newSyncer(func() error {
			return dstore.Sync(context.Background(), ds.NewKey("/"))
		})
	}
	n.recIndex = dsindex.New(pins, recursiveIndexKey)
	n.dirIndex = dsindex.New(pins, directIndexKey)

	// Path resolution as done by kubo and the boxo gateway: ipld-prime
	// traversal over the blockservice, with dag-pb support and UnixFS
	// reification (directories, HAMT shards, files).
	fc := bsfetcher.NewFetcherConfig(n.bserv)
	fc.PrototypeChooser = dagpb.AddSupportToChooser(bsfetcher.DefaultPrototypeChooser)
	n.resolver = resolver.NewBasicResolver(fc.WithReifier(unixfsnode.Reify))

	return n, nil
}

// Close releases the node: it flushes and stops the pinner, closes the
// exchange if the node owns it, and closes the badger database. It is safe
// to call Close more than once; later calls return the first result.
// Operations still running when Close is called fail.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		var errs []error
		if err := n.pinner.Flush(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("flushing pins: %w", err))
		}
		if err := n.pinner.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing pinner: %w", err))
		}
		if err := n.closeExchange(); err != nil {
			errs = append(errs, fmt.Errorf("closing exchange: %w", err))
		}
		if err := n.dstore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing datastore: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			n.closeErr = fmt.Errorf("ipfsnode: %w", err)
		}
	})
	return n.closeErr
}

func (n *Node) closeExchange() error {
	if !n.ownsExchange || n.exch == nil {
		return nil
	}
	return n.exch.Close()
}

// checkOpen returns ErrClosed once Close has been called.
func (n *Node) checkOpen() error {
	if n.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Blockstore returns the node's blockstore. Writes made through it bypass
// the exchange notifications done by PutBlocks.
func (n *Node) Blockstore() blockstore.Blockstore {
	return n.bstore
}

// DAGService returns a merkledag DAG service over the node's blockservice:
// reads of missing blocks go through the exchange.
func (n *Node) DAGService() format.DAGService {
	return n.dag
}

// Offline reports whether the node runs without a network exchange.
func (n *Node) Offline() bool {
	return n.offline
}

// PutBlocks stores blks in a single batched write. Every block is checked
// against its CID first; nothing is written when one does not match. Blocks
// already present are skipped. Stored blocks are announced to the exchange.
//
// Stored blocks are not pinned: a GC running before they are pinned removes
// them.
func (n *Node) PutBlocks(ctx context.Context, blks []blocks.Block) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	if len(blks) == 0 {
		return nil
	}
	for _, b := range blks {
		if err := verifyBlock(b); err != nil {
			return err
		}
	}
	if err := n.bserv.AddBlocks(ctx, blks); err != nil {
		return fmt.Errorf("ipfsnode: storing %d blocks: %w", len(blks), err)
	}
	return nil
}

// verifyBlock checks that b's data hashes to its CID.
func verifyBlock(b blocks.Block) error {
	c := b.Cid()
	if !c.Defined() {
		return errors.New("ipfsnode: block with an undefined CID")
	}
	sum, err := c.Prefix().Sum(b.RawData())
	if err != nil {
		return fmt.Errorf("ipfsnode: hashing block %s: %w", c, err)
	}
	if !sum.Equals(c) {
		return fmt.Errorf("ipfsnode: block data does not match its CID %s", c)
	}
	return nil
}

// GetBlock returns the block identified by c. A block missing locally is
// fetched through the exchange (and stored) until ctx is done; with the
// offline exchange the error, which satisfies format.IsNotFound, is
// immediate.
func (n *Node) GetBlock(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if err := n.checkOpen(); err != nil {
		return nil, err
	}
	if err := n.gateFetch(ctx, c); err != nil {
		return nil, fmt.Errorf("ipfsnode: getting block %s: %w", c, err)
	}
	b, err := n.bserv.GetBlock(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("ipfsnode: getting block %s: %w", c, err)
	}
	return b, nil
}

// gateFetch runs the BeforeFetch hook when the read that starts at block c
// would have to fetch c from the network, as pins do.
func (n *Node) gateFetch(ctx context.Context, c cid.Cid) error {
	if n.offline || n.beforeFetch == nil {
		return nil
	}
	has, err := n.bstore.Has(ctx, c)
	if err != nil || has {
		return err
	}
	return n.beforeFetch(ctx, c)
}

// HasBlock reports whether the block identified by c is stored locally. It
// never uses the exchange.
func (n *Node) HasBlock(ctx context.Context, c cid.Cid) (bool, error) {
	if err := n.checkOpen(); err != nil {
		return false, err
	}
	return n.bstore.Has(ctx, c)
}
