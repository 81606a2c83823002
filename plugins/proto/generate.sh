#!/usr/bin/env bash
# Regenerates the Go code of the plugin protocol from plugins/proto/v1/*.proto.
# Needs protoc (Debian: protobuf-compiler); the Go generators are tools of go.mod.
set -euo pipefail
cd "$(dirname "$0")"
gen_go=$(go tool -n protoc-gen-go)
gen_grpc=$(go tool -n protoc-gen-go-grpc)
protoc -I . \
  --plugin=protoc-gen-go="$gen_go" --go_out=. --go_opt=paths=source_relative \
  --plugin=protoc-gen-go-grpc="$gen_grpc" --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  v1/*.proto
