#!/usr/bin/env bash
# Starts a local three-peer pincluster cluster, waits until it is formed,
# prints how to reach each peer, and stops the three peers cleanly on
# Ctrl-C or SIGTERM. See README.md beside this script.
#
#   bash examples/local-cluster/cluster.sh [--dir DIR] [--fresh] [--rejoin]
#
# Environment:
#   PINCLUSTER_LOCAL_DIR      data folder (default: a new folder from mktemp -d)
#   PINCLUSTER_LOCAL_FRESH=1  same as --fresh
#   PINCLUSTER_LOCAL_REJOIN=1 same as --rejoin
#   PINCLUSTER_LOCAL_TIMEOUT  seconds to wait for the cluster (default 90)
#   PINCLUSTER_BIN            folder holding a built pincluster-service (and
#                             optionally pincluster-ctl): skips the build
#   CLUSTER_*                 passed on to the peers, which apply them over
#                             their service.json (e.g. CLUSTER_DISABLEREPINNING=false)
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: cluster.sh [--dir DIR] [--fresh] [--rejoin]

Starts three pincluster peers on this machine (loopback addresses, ports
chosen at the first run) and stays in the foreground; Ctrl-C stops them.

  --dir DIR   keep the peers' folders in DIR (default $PINCLUSTER_LOCAL_DIR,
              else a new temporary folder); a second run with the same DIR
              restarts the same peers
  --fresh     delete the peers' folders in DIR first (a new cluster)
  --rejoin    start peers 2 and 3 with --bootstrap to peer 1, so that a peer
              removed from the peerset (DELETE /peers, --leave) joins again
EOF
}

dir=${PINCLUSTER_LOCAL_DIR:-}
fresh=${PINCLUSTER_LOCAL_FRESH:-0}
rejoin=${PINCLUSTER_LOCAL_REJOIN:-0}
timeout_s=${PINCLUSTER_LOCAL_TIMEOUT:-90}
while [ $# -gt 0 ]; do
	case $1 in
	--dir)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		dir=$2
		shift
		;;
	--dir=*) dir=${1#--dir=} ;;
	--fresh) fresh=1 ;;
	--rejoin) rejoin=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "cluster.sh: unknown argument $1" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done

say() { printf 'cluster.sh: %s\n' "$*"; }
die() {
	printf 'cluster.sh: error: %s\n' "$*" >&2
	exit 1
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/../.." && pwd)
if [ -z "$dir" ]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/pincluster-local.XXXXXX")
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
peers=(1 2 3)

# --- a run already using this folder? -------------------------------------

for n in "${peers[@]}"; do
	pidfile=$dir/peer$n/daemon.pid
	if [ -f "$pidfile" ]; then
		old=$(cat "$pidfile")
		if [ -n "$old" ] && kill -0 "$old" 2>/dev/null &&
			grep -qaF "$dir/peer$n" "/proc/$old/cmdline" 2>/dev/null; then
			die "peer $n of $dir still runs (pid $old): stop the other run first"
		fi
	fi
done

# --- binaries ------------------------------------------------------------

ctl=""
if [ -n "${PINCLUSTER_BIN:-}" ]; then
	service=$PINCLUSTER_BIN/pincluster-service
	[ -x "$service" ] || die "PINCLUSTER_BIN=$PINCLUSTER_BIN holds no executable pincluster-service"
	if [ -x "$PINCLUSTER_BIN/pincluster-ctl" ]; then
		ctl=$PINCLUSTER_BIN/pincluster-ctl
	fi
else
	command -v go >/dev/null || die "go is needed to build the binaries (or set PINCLUSTER_BIN)"
	say "building pincluster-service and pincluster-ctl into $dir/bin"
	mkdir -p "$dir/bin"
	(cd "$repo" && go build -o "$dir/bin/" ./cmd/pincluster-service ./cmd/pincluster-ctl) ||
		die "go build failed"
	service=$dir/bin/pincluster-service
	ctl=$dir/bin/pincluster-ctl
fi

# --- reading the config folders ------------------------------------------

# json_string KEY FILE prints the first "KEY": "value" of FILE (the files
# are written by pincluster-service, one key per line).
json_string() {
	sed -n 's/^ *"'"$1"'": *"\([^"]*\)".*/\1/p' "$2" | head -n 1
}

# cluster_listen FILE prints the first cluster.listen_multiaddress of a
# service.json (the only listen_multiaddress that is a list).
cluster_listen() {
	sed -n '/"listen_multiaddress": *\[/{n;s/^ *"\([^"]*\)".*/\1/p;q;}' "$1"
}

peer_id() { json_string id "$dir/peer$1/identity.json"; }

# rest_port N prints the port of peer N's REST API.
rest_port() {
	local a
	a=$(json_string http_listen_multiaddress "$dir/peer$1/service.json")
	echo "${a##*/}"
}

# cluster_addr N prints peer N's cluster address for --bootstrap/--peers.
cluster_addr() {
	local a
	a=$(cluster_listen "$dir/peer$1/service.json")
	a=${a/\/ip4\/0.0.0.0\//\/ip4\/127.0.0.1\/}
	echo "$a/p2p/$(peer_id "$1")"
}

# --- config folders ------------------------------------------------------

if [ "$fresh" = 1 ]; then
	say "--fresh: deleting the peers' folders in $dir"
	rm -rf "$dir/peer1" "$dir/peer2" "$dir/peer3"
fi
rm -f "$dir/ready"
if [ ! -f "$dir/peer1/service.json" ]; then
	# A new cluster: peers 2 and 3 of an older one would not belong to it.
	rm -rf "$dir/peer2" "$dir/peer3"
fi

# init_peer N [init args] makes peer N's config folder: random free ports,
# all moved to the loopback interface so that nothing listens beyond this
# machine, the peer name peerN and, for peers 2 and 3, peer 1's secret.
init_peer() {
	local n=$1 folder=$dir/peer$1
	shift
	mkdir -p "$folder"
	if [ "$n" = 1 ]; then
		CLUSTER_PEERNAME=peer1 "$service" --config "$folder" init --randomports "$@" >"$folder/init.log" 2>&1 ||
			die "init of peer $n failed: $(cat "$folder/init.log")"
	else
		CLUSTER_PEERNAME=peer$n CLUSTER_SECRET=$secret \
			"$service" --config "$folder" init --randomports "$@" >"$folder/init.log" 2>&1 ||
			die "init of peer $n failed: $(cat "$folder/init.log")"
	fi
	sed -i 's#"/ip4/0\.0\.0\.0/tcp/#"/ip4/127.0.0.1/tcp/#g' "$folder/service.json"
	say "peer $n: new config folder $folder"
}

[ -f "$dir/peer1/service.json" ] || init_peer 1
secret=$(json_string secret "$dir/peer1/service.json")
for n in 2 3; do
	# A new peer joins peer 1 at its first start (init --peers).
	[ -f "$dir/peer$n/service.json" ] || init_peer "$n" --peers "$(cluster_addr 1)"
done

# --- HTTP without curl -----------------------------------------------------

# http_get PORT PATH prints the body of GET http://127.0.0.1:PORT/PATH, or
# fails. Bash's /dev/tcp speaks HTTP/1.0, so the answer ends with the
# connection.
http_get() {
	local answer
	answer=$(timeout 5 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n" "$1" "$0" >&3
		cat <&3' "$1" "$2" 2>/dev/null) || return 1
	case $answer in
	"HTTP/1."?" 200 "*) ;;
	*) return 1 ;;
	esac
	printf '%s\n' "$answer" | tr -d '\r' | sed '1,/^$/d'
}

# --- running the peers -----------------------------------------------------

declare -A pid=()
declare -A reported=()
stopping=0
stopped=0

alive() { [ -n "${pid[$1]:-}" ] && kill -0 "${pid[$1]}" 2>/dev/null; }

start_peer() {
	local n=$1 folder=$dir/peer$1
	shift
	{ echo; echo "=== cluster.sh: daemon $* started $(date -u +%FT%TZ)"; } >>"$folder/daemon.log"
	"$service" --config "$folder" daemon "$@" >>"$folder/daemon.log" 2>&1 &
	pid[$n]=$!
	echo "${pid[$n]}" >"$folder/daemon.pid"
	say "peer $n: started (pid ${pid[$n]}), log $folder/daemon.log"
}

# stop_all sends SIGTERM to the running peers and waits for them (60 s at
# most, then SIGKILL). It runs once, at exit.
stop_all() {
	[ "$stopped" = 0 ] || return 0
	stopped=1
	[ "${#pid[@]}" -gt 0 ] || return 0
	rm -f "$dir/ready"
	local n any=0
	for n in "${peers[@]}"; do
		if alive "$n"; then
			kill -TERM "${pid[$n]}" 2>/dev/null || true
			any=1
		fi
	done
	if [ "$any" = 1 ]; then
		say "stopping the peers (SIGTERM)"
		local deadline=$((SECONDS + 60))
		while :; do
			any=0
			for n in "${peers[@]}"; do
				if alive "$n"; then any=1; fi
			done
			[ "$any" = 1 ] || break
			if [ "$SECONDS" -ge "$deadline" ]; then
				for n in "${peers[@]}"; do
					if alive "$n"; then
						say "peer $n did not stop within 60s: killing it"
						kill -KILL "${pid[$n]}" 2>/dev/null || true
					fi
				done
				break
			fi
			sleep 0.2
		done
	fi
	wait 2>/dev/null || true
	for n in "${peers[@]}"; do rm -f "$dir/peer$n/daemon.pid"; done
	say "stopped. Data and logs:"
	for n in "${peers[@]}"; do
		say "  peer $n: $dir/peer$n (log $dir/peer$n/daemon.log)"
	done
	say "start the same cluster again with: bash $script_dir/cluster.sh --dir $dir"
}

on_signal() {
	stopping=1
}
trap on_signal INT TERM
trap stop_all EXIT

# pause waits a little, returning early on a signal.
pause() {
	sleep "${1:-0.5}" &
	wait $! 2>/dev/null || true
}

# removed_warning N reports whether peer N, in this run, said it is not in
# its cluster's peerset.
removed_warning() {
	tac "$dir/peer$1/daemon.log" 2>/dev/null | sed '/^=== cluster.sh/q' |
		grep -q "not in its cluster's peerset"
}

# check_exits reports peers that exited by themselves; with "fatal" it fails.
check_exits() {
	local n
	for n in "${peers[@]}"; do
		if [ -n "${pid[$n]:-}" ] && ! alive "$n" && [ -z "${reported[$n]:-}" ]; then
			reported[$n]=1
			say "peer $n (pid ${pid[$n]}) exited; the end of its log:"
			tail -n 15 "$dir/peer$n/daemon.log" | sed 's/^/    /'
			if removed_warning "$n"; then
				say "peer $n is not in the peerset (it was removed, or left): run with --rejoin, or --fresh"
			fi
			[ "${1:-}" != fatal ] || die "peer $n stopped while the cluster was starting"
		fi
	done
}

# wait_api N waits until peer N's REST API answers GET /id.
wait_api() {
	local n=$1 port
	port=$(rest_port "$n")
	while ! http_get "$port" /id >/dev/null; do
		[ "$stopping" = 0 ] || exit 130
		check_exits fatal
		[ "$SECONDS" -lt "$deadline" ] || die "peer $n's REST API (127.0.0.1:$port) did not answer within ${timeout_s}s: see $dir/peer$n/daemon.log"
		pause
	done
}

deadline=$((SECONDS + timeout_s))
start_peer 1
wait_api 1
for n in 2 3; do
	if [ "$rejoin" = 1 ]; then
		start_peer "$n" --bootstrap "$(cluster_addr 1)"
	else
		start_peer "$n"
	fi
done
wait_api 2
wait_api 3

# The cluster is formed when peer 1's GET /peers lists the three peers,
# none with an error.
port1=$(rest_port 1)
while :; do
	[ "$stopping" = 0 ] || exit 130
	check_exits fatal
	if out=$(http_get "$port1" /peers); then
		ok=1
		[ "$(printf '%s\n' "$out" | grep -c '^{')" = 3 ] || ok=0
		for n in "${peers[@]}"; do
			printf '%s\n' "$out" | grep -q "^{\"id\":\"$(peer_id "$n")\"" || ok=0
		done
		! printf '%s\n' "$out" | grep -q '"error":"[^"]' || ok=0
		[ "$ok" = 0 ] || break
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		say "GET /peers on peer 1 lists:"
		printf '%s\n' "${out:-}" | grep -o '^{"id":"[^"]*"\|"peername":"[^"]*"\|"error":"[^"]\+"' | sed 's/^{//; s/^/    /' || true
		for n in "${peers[@]}"; do
			if removed_warning "$n"; then
				say "peer $n is not in the peerset (it was removed, or left): run with --rejoin, or --fresh"
			fi
		done
		die "the three peers did not form a cluster within ${timeout_s}s: see $dir/peer*/daemon.log"
	fi
	pause
done
say "the three peers are in the cluster; waiting for each to know the others' metrics"

# Allocation chooses among the peers whose metrics a peer holds. A joining
# peer sends its metrics at once, but learns those of the peers before it
# at their next round (every half metric TTL: 15 s by default), so the
# cluster is ready when every peer holds three freespace metrics.
for n in "${peers[@]}"; do
	port=$(rest_port "$n")
	while :; do
		[ "$stopping" = 0 ] || exit 130
		check_exits fatal
		if out=$(http_get "$port" /monitor/metrics/freespace) &&
			[ "$(printf '%s\n' "$out" | grep -o '"peer":"[^"]*"' | sort -u | wc -l)" = 3 ]; then
			break
		fi
		[ "$SECONDS" -lt "$deadline" ] || die "peer $n did not receive the metrics of the three peers within ${timeout_s}s (GET /monitor/metrics/freespace: ${out:-no answer})"
		pause
	done
done

# --- ready -------------------------------------------------------------

ctl_cmd=${ctl:-pincluster-ctl}
echo
for n in "${peers[@]}"; do
	port=$(rest_port "$n")
	echo "peer $n  REST http://127.0.0.1:$port  peer ID $(peer_id "$n")"
	echo "        cluster address $(cluster_addr "$n")"
	echo "        $ctl_cmd --host /ip4/127.0.0.1/tcp/$port peers ls"
done
if [ -z "$ctl" ]; then
	echo "(pincluster-ctl: go build -o pincluster-ctl ./cmd/pincluster-ctl in $repo)"
fi
echo
echo "data and logs: $dir/peer{1,2,3} (daemon.log in each)"
{
	for n in "${peers[@]}"; do echo "http://127.0.0.1:$(rest_port "$n")"; done
} >"$dir/ready.tmp"
# The line goes out before the file appears: whoever sees the file finds
# the line in the output too.
say "cluster ready ($SECONDS s); Ctrl-C stops it"
mv "$dir/ready.tmp" "$dir/ready"

# --- foreground until a signal, or until every peer has exited -----------

while [ "$stopping" = 0 ]; do
	check_exits
	any=0
	for n in "${peers[@]}"; do
		if alive "$n"; then any=1; fi
	done
	if [ "$any" = 0 ]; then
		say "every peer has exited"
		exit 1
	fi
	pause 1
done
exit 0
