package ipfsnode

import (
	"context"
	"fmt"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-datastore/query"
)

// RepoStat describes the repository usage.
type RepoStat struct {
	// RepoSize is the total size, in bytes, of the stored blocks.
	RepoSize uint64
	// StorageMax is the configured storage limit, in bytes.
	StorageMax uint64
	// NumObjects is the number of stored blocks.
	NumObjects uint64
}

// RepoStat returns the repository usage. It iterates over the block keys
// (values are not read), so its cost grows with the number of blocks.
//
// RepoSize is the sum of the stored block sizes, that is the data the node
// holds, without badger's own overhead. Badger's file sizes are not used:
// they are refreshed only once a minute, count value log files at their
// preallocated size, and are zero in memory.
func (n *Node) RepoStat(ctx context.Context) (RepoStat, error) {
	if err := n.checkOpen(); err != nil {
		return RepoStat{}, err
	}
	st := RepoStat{StorageMax: n.storageMax}
	res, err := n.dstore.Query(ctx, query.Query{
		Prefix:   blockstore.BlockPrefix.String(),
		KeysOnly: true,
	})
	if err != nil {
		return RepoStat{}, fmt.Errorf("ipfsnode: repo stat: %w", err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return RepoStat{}, fmt.Errorf("ipfsnode: repo stat: %w", r.Error)
		}
		st.NumObjects++
		if r.Size > 0 {
			st.RepoSize += uint64(r.Size)
		}
	}
	if err := ctx.Err(); err != nil {
		return RepoStat{}, fmt.Errorf("ipfsnode: repo stat: %w", err)
	}
	return st, nil
}
