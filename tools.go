//go:build tools

package pincluster

import (
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/gorilla/mux"
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/hashicorp/raft"
	_ "github.com/ipfs/boxo/blockservice"
	_ "github.com/ipfs/boxo/blockstore"
	_ "github.com/ipfs/boxo/ipld/merkledag"
	_ "github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	_ "github.com/ipfs/boxo/pinning/pinner/dspinner"
	_ "github.com/ipfs/go-cid"
	_ "github.com/ipfs/go-ds-badger4"
	_ "github.com/libp2p/go-libp2p"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
)
