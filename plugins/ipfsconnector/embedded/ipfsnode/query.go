package ipfsnode

import (
	"context"

	"github.com/dgraph-io/badger/v4"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	badgerds "github.com/ipfs/go-ds-badger4"
)

// smallQueryMax is the most keys a query answers from one synchronous
// read before it is handed to the datastore's streaming query.
const smallQueryMax = 64

// pinStore is the datastore of the pinner and of the pin indexes. The
// pinner looks a CID up in its indexes with a key-only prefix query, two
// to four times a pin; go-ds-badger4 serves every query from a goroutine
// of its own through a 128-entry channel, which costs more than the
// lookup. pinStore answers the key-only queries that find at most
// smallQueryMax keys from one read instead, and hands larger ones (a
// whole index, for PinLs and GC) to the streaming query, which does not
// hold them in memory.
type pinStore struct {
	*badgerds.Datastore
}

var _ ds.Batching = pinStore{}

// Query answers q; see pinStore.
func (s pinStore) Query(ctx context.Context, q query.Query) (query.Results, error) {
	if !q.KeysOnly || q.ReturnExpirations || len(q.Filters) > 0 || len(q.Orders) > 0 || q.Offset != 0 {
		return s.Datastore.Query(ctx, q)
	}
	entries, complete, err := s.smallQuery(q)
	if err != nil {
		return nil, err
	}
	if !complete {
		return s.Datastore.Query(ctx, q)
	}
	return query.ResultsWithEntries(q, entries), nil
}

// smallQuery reads the keys under q.Prefix (up to q.Limit when set) and
// reports whether it found them all within smallQueryMax.
func (s pinStore) smallQuery(q query.Query) (entries []query.Entry, complete bool, err error) {
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	// The prefix as go-ds-badger4 applies it: a key's path components.
	if prefix := ds.NewKey(q.Prefix).String(); prefix != "/" {
		opt.Prefix = []byte(prefix + "/")
	}
	complete = true
	err = s.DB.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if q.Limit > 0 && len(entries) == q.Limit {
				break
			}
			if len(entries) == smallQueryMax {
				complete = false
				break
			}
			item := it.Item()
			entries = append(entries, query.Entry{Key: string(item.Key()), Size: int(item.ValueSize())})
		}
		return nil
	})
	return entries, complete, err
}
