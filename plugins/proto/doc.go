// Package proto holds the protobuf definition of the plugin protocol; the
// generated Go code of version 1 is package pluginv1 in ./v1.
// Run `go generate ./plugins/proto` to regenerate it.
package proto

//go:generate ./generate.sh
