package builtin

import (
	"context"
	"slices"
	"testing"

	"github.com/pincluster/pincluster/core"
)

// Every built-in plugin describes itself as the kind and the name it is
// registered under; ipfshttp, IPFS Cluster's name for its kubo connector,
// is the kubo connector.
func TestRegistry(t *testing.T) {
	for k := range registry {
		p, ok := New(k.kind, k.name)
		if !ok || !Has(k.kind, k.name) {
			t.Fatalf("%s %s is not built in", k.kind, k.name)
		}
		desc, err := p.Describe(context.Background())
		if err != nil || desc.Kind != k.kind || desc.Name != k.name {
			t.Errorf("%s %s describes itself as %+v (%v)", k.kind, k.name, desc, err)
		}
	}
	if got := Names(core.KindIPFSConnector); !slices.Equal(got, []string{"embedded", "ipfshttp", "kubo"}) {
		t.Fatalf("connectors %v", got)
	}
	a, _ := New(core.KindIPFSConnector, "ipfshttp")
	b, _ := New(core.KindIPFSConnector, "kubo")
	da, _ := a.Describe(context.Background())
	db, _ := b.Describe(context.Background())
	if da.Version != db.Version || string(da.DefaultConfig) != string(db.DefaultConfig) {
		t.Fatalf("ipfshttp %+v is not the kubo connector %+v", da, db)
	}
	if Has(core.KindIPFSConnector, "ipfsproxy") {
		t.Fatal("an unknown name is built in")
	}
}
