#!/bin/sh
# Generates the Python modules of the plugin protocol (plugins/proto/v1)
# into gen/ next to this script, or into the folder given as argument.
# Needs Debian's python3-grpc-tools (grpc_tools.protoc for /usr/bin/python3).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
proto=$here/../../plugins/proto
out=${1:-$here/gen}
mkdir -p "$out"
/usr/bin/python3 -m grpc_tools.protoc -I "$proto" \
  --python_out="$out" --grpc_python_out="$out" "$proto"/v1/*.proto
