package ipfsnode

import (
	"context"
	"fmt"
	"slices"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// TestPinStoreQueries checks that pinStore answers every query as the
// badger datastore itself does, whether it reads the keys at once (few
// keys) or streams them (many, or not key-only).
func TestPinStoreQueries(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, Options{})
	pins := pinStore{n.dstore}
	put := func(key string) {
		t.Helper()
		if err := n.dstore.Put(ctx, ds.NewKey(key), []byte("value of "+key)); err != nil {
			t.Fatal(err)
		}
	}
	put("/q/small/a")
	put("/q/small/b")
	put("/q/smaller") // shares the prefix's bytes, not its path
	for i := range smallQueryMax + 10 {
		put(fmt.Sprintf("/q/large/%03d", i))
	}

	keys := func(t *testing.T, d ds.Read, q query.Query) []string {
		t.Helper()
		res, err := d.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		all, err := res.Rest()
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(all))
		for i, e := range all {
			out[i] = fmt.Sprintf("%s %d %q", e.Key, e.Size, e.Value)
		}
		return out
	}
	for _, q := range []query.Query{
		{Prefix: "/q/small", KeysOnly: true},
		{Prefix: "/q/small/", KeysOnly: true},
		{Prefix: "/q/large", KeysOnly: true},
		{Prefix: "/q/large", KeysOnly: true, Limit: 5},
		{Prefix: "/q/large", KeysOnly: true, Limit: smallQueryMax + 5},
		{Prefix: "/q/small", KeysOnly: true, Offset: 1},
		{Prefix: "/q/small"},
		{Prefix: "/q/none", KeysOnly: true},
		{Prefix: "/q", KeysOnly: true, Orders: []query.Order{query.OrderByKeyDescending{}}},
	} {
		got, want := keys(t, pins, q), keys(t, n.dstore, q)
		if !slices.Equal(got, want) {
			t.Errorf("%+v:\n got %q\nwant %q", q, got, want)
		}
	}
	if got := keys(t, pins, query.Query{Prefix: "/q/small", KeysOnly: true}); len(got) != 2 {
		t.Fatalf("the small prefix lists %q", got)
	}
}
