// Package builtin lists the plugins compiled into the service binary. The
// binary serves each of them in a child process of its own (the `plugin`
// sub-command), exactly as it would serve a third-party executable.
//
// A plugin may be built in under a second name, the name IPFS Cluster
// gives the component it stands for, so that a service.json written for
// IPFS Cluster selects it: ipfs_connector "ipfshttp" is the kubo connector
// (configured by ipfs_connector.ipfshttp, which its errors name).
package builtin

import (
	"sort"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/allocator/balanced"
	"github.com/pincluster/pincluster/plugins/allocator/rendezvous"
	"github.com/pincluster/pincluster/plugins/consensus/raft"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/embedded"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/kubo"
	"github.com/pincluster/pincluster/plugins/pintracker/stateless"
)

type key struct {
	kind core.Kind
	name string
}

var registry = map[key]func() core.Plugin{
	{core.KindConsensus, raft.Name}:         func() core.Plugin { return raft.New() },
	{core.KindAllocator, balanced.Name}:     func() core.Plugin { return balanced.New() },
	{core.KindAllocator, rendezvous.Name}:   func() core.Plugin { return rendezvous.New() },
	{core.KindPinTracker, stateless.Name}:   func() core.Plugin { return stateless.New() },
	{core.KindIPFSConnector, embedded.Name}: func() core.Plugin { return embedded.New() },
	{core.KindIPFSConnector, kubo.Name}:     func() core.Plugin { return kubo.New() },
	// IPFS Cluster's name for its kubo connector.
	{core.KindIPFSConnector, kubo.IPFSHTTPName}: func() core.Plugin { return kubo.NewIPFSHTTP() },
}

// Defaults names the built-in plugin used for each kind by a new config.
var Defaults = map[core.Kind]string{
	core.KindConsensus:     raft.Name,
	core.KindAllocator:     balanced.Name,
	core.KindPinTracker:    stateless.Name,
	core.KindIPFSConnector: embedded.Name,
}

// New returns a new, unconfigured instance of a built-in plugin.
func New(kind core.Kind, name string) (core.Plugin, bool) {
	f, ok := registry[key{kind, name}]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Has reports whether a plugin is built in.
func Has(kind core.Kind, name string) bool {
	_, ok := registry[key{kind, name}]
	return ok
}

// Names lists the built-in plugins of a kind.
func Names(kind core.Kind) []string {
	var out []string
	for k := range registry {
		if k.kind == kind {
			out = append(out, k.name)
		}
	}
	sort.Strings(out)
	return out
}
