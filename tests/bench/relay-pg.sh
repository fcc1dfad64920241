#!/bin/sh
# relay-pg.sh - durable POST /v1/messages on PostgreSQL with one and with
# two st-relay processes sharing the database, side by side in each run
# with the SQLite figure (64 keep-alive connections, 1 KiB envelopes, the
# load generator tests/bench/relaybench.c in "posts" mode).  A throwaway
# PostgreSQL (tests/pg.sh) with its default durability: fsync on,
# synchronous_commit on.  Prints the median of RUNS runs, how throughput
# grows from one relay to two, and where the CPU went (relays, PostgreSQL,
# the load generator) so the limit can be named.
#
#   ST_BIN, ST_BUILD, RUNS (3), SECONDS_ (5), CONNS (64), THREADS (2)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${ST_BIN:=$ROOT/bin}"
case "${ST_BUILD:-build}" in
/*) BB=$ST_BUILD/bench ;;
*) BB=$ROOT/${ST_BUILD:-build}/bench ;;
esac
RUNS=${RUNS:-3}
SECS=${SECONDS_:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
for p in "$ST_BIN/st-relay" "$BB/relaybench"; do
	if [ ! -x "$p" ]; then
		echo "relay-pg.sh: $p is not built (make bench)" >&2
		exit 66
	fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/strelaypg.XXXXXX")
PG=$(mktemp -d "${TMPDIR:-/tmp}/st-pg.XXXXXX")
PIDS=
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	"$ROOT/tests/pg.sh" stop "$PG" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 8192 2>/dev/null || true

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_up() {
	i=0
	until curl -s -o /dev/null "$1"; do
		i=$((i + 1))
		if [ $i -gt 200 ] || ! kill -0 "$2" 2>/dev/null; then
			echo "relay-pg.sh: the relay at $1 did not start" >&2
			cat "$T/relay.log" >&2
			exit 69
		fi
		sleep 0.05
	done
}
# relay DB: start one st-relay on a free port; sets URL and adds to PIDS
relay() {
	port=$(free_port)
	"$ST_BIN/st-relay" -q -l "127.0.0.1:$port" -d "$1" --blob-dir "$T/blobs" \
	    -t "$THREADS" --no-rate-limits --argon2-m 64 --argon2-t 1 \
	    --max-connections 8192 --max-per-ip 8192 --mailbox-max 10000000 \
	    2>>"$T/relay.log" &
	PIDS="$PIDS $!"
	URL="http://127.0.0.1:$port"
	wait_up "$URL/v1/health" "$!"
}
stop_all() {
	for p in $PIDS; do
		kill "$p"
		wait "$p" || { echo "relay-pg.sh: pid $p failed at SIGTERM" >&2; exit 70; }
	done
	PIDS=
}
# cpu PID...: user+system microseconds of these processes
cpu() {
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] && sed 's/.*) //' "/proc/$p/stat"
	done | awk -v hz="$(getconf CLK_TCK)" '{ t += $12 + $13 } END { printf "%d\n", t * 1000000 / hz }'
}
# pg_pids: the PostgreSQL server and its children (backends, walwriter...)
pg_pids() {
	m=$(head -1 "$PG/data/postmaster.pid")
	echo "$m" $(pgrep -P "$m")
}
fresh_db() {
	name=b$(date +%s%N)
	psql -qX -h "$PG" -p "$PGPORT" -U st -d postgres -c "CREATE DATABASE $name"
	echo "postgresql://st@/$name?host=$PG&port=$PGPORT"
}
# load NAME URL [URL2]: posts for SECS; rate and CPU shares into $out
load() {
	name=$1
	shift
	u2=
	[ $# -gt 1 ] && u2="-u $2"
	pp=$(pg_pids)
	c0=$(cpu $PIDS); p0=$(cpu $pp); t0=$(date +%s%N)
	# shellcheck disable=SC2086
	"$BB/relaybench" posts "$1" $u2 -c "$CONNS" -d "$SECS" >"$T/lg" &
	lg=$!
	wait $lg
	t1=$(date +%s%N)
	c1=$(cpu $PIDS); p1=$(cpu $(pg_pids))
	awk -v n="$name" '$1 == "post_rate" { print n "_rate", $2 }
	                  $1 == "post_errors" { print n "_errors", $2 }
	                  $1 == "post_p99" { print n "_p99", $2 }' "$T/lg" >>"$out"
	awk -v n="$name" -v r="$(( (c1 - c0) ))" -v p="$(( (p1 - p0) ))" \
	    -v w="$(( (t1 - t0) / 1000 ))" 'BEGIN {
		printf "%s_relay_cores %.2f\n%s_pg_cores %.2f\n", n, r / w, n, p / w }' >>"$out"
}

PGLINE=$("$ROOT/tests/pg.sh" start "$PG")
PGPORT=$(echo "$PGLINE" | cut -d' ' -f2)
echo "relay-pg.sh: $RUNS runs on $(nproc) CPUs, $CONNS connections, ${SECS} s" \
    "each; PostgreSQL $(psql -AtX -h "$PG" -p "$PGPORT" -U st -d postgres -c 'show server_version'), fsync $(psql -AtX -h "$PG" -p "$PGPORT" -U st -d postgres -c 'show fsync')"
r=1
while [ $r -le "$RUNS" ]; do
	out=$T/run$r
	: >"$out"
	rm -rf "$T/sq" "$T/blobs"
	mkdir "$T/sq"
	relay "$T/sq/relay.db"
	load sqlite "$URL"
	stop_all
	relay "$(fresh_db)"
	load pg1 "$URL"
	stop_all
	db=$(fresh_db)
	relay "$db"
	a=$URL
	relay "$db"
	load pg2 "$a" "$URL"
	stop_all
	printf 'run %d (load %s):' "$r" "$(cut -d' ' -f1 /proc/loadavg)"
	awk '{ printf " %s=%s", $1, $2 }' "$out"
	echo
	r=$((r + 1))
done
if grep -qv -e 'listening on' -e 'shutting down' "$T/relay.log"; then
	echo "relay-pg.sh: st-relay said:" >&2
	grep -v -e 'listening on' -e 'shutting down' "$T/relay.log" | sort | uniq -c | head -5 >&2
fi

med() {
	for f in "$T"/run*; do
		awk -v k="$1" '$1 == k { print $2 }' "$f"
	done | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "nan" }'
}
echo
printf '%-34s %10s %10s %12s %10s %8s\n' "median of $RUNS runs" "msg/s" "p99 ms" "relay cores" "pg cores" errors
for k in sqlite pg1 pg2; do
	case $k in
	sqlite) label="SQLite, one relay" ;;
	pg1) label="PostgreSQL, one relay" ;;
	pg2) label="PostgreSQL, two relays" ;;
	esac
	printf '%-34s %10s %10s %12s %10s %8s\n' "$label" "$(med ${k}_rate)" \
	    "$(med ${k}_p99)" "$(med ${k}_relay_cores)" "$(med ${k}_pg_cores)" \
	    "$(med ${k}_errors)"
done
awk -v one="$(med pg1_rate)" -v two="$(med pg2_rate)" -v sq="$(med sqlite_rate)" 'BEGIN {
	printf "two relays / one relay on PostgreSQL: %.2fx; PostgreSQL one relay / SQLite: %.2fx\n", two / one, one / sq }'
