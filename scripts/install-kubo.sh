#!/usr/bin/env bash
# Builds kubo (the IPFS daemon, command "ipfs") from the Go module proxy and
# caches the binary, then prints its path on stdout. A second run finds the
# cached binary and returns at once.
#
#   bash scripts/install-kubo.sh            # prints e.g. ~/.cache/pincluster/kubo-0.43.1/ipfs
#   export PINCLUSTER_KUBO=$(bash scripts/install-kubo.sh)
#
# Environment:
#   KUBO_VERSION     kubo version to build (default 0.43.1, the version the
#                    kubo connector is tested against)
#   LIBP2P_VERSION   go-libp2p version forced into the build (default v0.51.0:
#                    kubo's go.mod replaces go-libp2p with a fork the proxy
#                    does not serve, and the version it falls back to does not
#                    compile against the quic-go it then selects)
#   XDG_CACHE_HOME   cache root (default ~/.cache)
#
# kubo cannot be installed with "go install ...@version" (its go.mod has
# replace directives), so it is built as a tool of a temporary module.
set -euo pipefail

KUBO_VERSION="${KUBO_VERSION:-0.43.1}"
KUBO_VERSION="${KUBO_VERSION#v}"
LIBP2P_VERSION="${LIBP2P_VERSION:-v0.51.0}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}"
dest_dir="$cache_root/pincluster/kubo-$KUBO_VERSION"
dest="$dest_dir/ipfs"

log() { echo "install-kubo: $*" >&2; }

if [ -x "$dest" ] && "$dest" version >/dev/null 2>&1; then
  echo "$dest"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "go is not on PATH"; exit 1; }

mkdir -p "$dest_dir"
work="$(mktemp -d "${TMPDIR:-/tmp}/kubo-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "building kubo v$KUBO_VERSION (go-libp2p $LIBP2P_VERSION) in $work; the first build takes a few minutes"
(
  cd "$work"
  export GOFLAGS="${GOFLAGS:-} -mod=mod"
  export GOWORK=off
  go mod init kubotool >&2
  go get -tool "github.com/ipfs/kubo/cmd/ipfs@v$KUBO_VERSION" >&2
  go get "github.com/libp2p/go-libp2p@$LIBP2P_VERSION" >&2
  mkdir -p "$work/bin"
  GOBIN="$work/bin" go install github.com/ipfs/kubo/cmd/ipfs >&2
)

built="$work/bin/ipfs"
if ! "$built" version >/dev/null 2>&1; then
  log "the built binary does not run: $built"
  exit 1
fi
# Move into place atomically so that a concurrent run never sees a partial file.
tmp_dest="$dest.tmp.$$"
cp "$built" "$tmp_dest"
chmod 0755 "$tmp_dest"
mv -f "$tmp_dest" "$dest"
log "$("$dest" version) installed at $dest"
echo "$dest"
