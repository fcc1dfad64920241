#!/bin/sh
# relay.sh - st-relay under load on loopback, side by side in each run with
# the libmicrohttpd "hello" ceiling (tests/bench/hello.c): 64 keep-alive
# connections of authenticated durable POST /v1/messages of a 1 KiB
# envelope, then fetch+ack of every mailbox, then 1,000 idle long polls (the
# relay's RSS with them) and the time each wakes after a message for it is
# sent.  The load generator is tests/bench/relaybench.c.  Prints the median
# of RUNS runs, the targets of the st-relay issue and the ratios.
#
#   ST_BIN     where st-relay is (default bin/)
#   ST_BUILD   the build tree with bench/relaybench and bench/hello (build)
#   RUNS (3), SECONDS_ (5 s of load per phase), CONNS (64), POLLS (1000),
#   THREADS (st-relay -t and hello's pool, 2)
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
POLLS=${POLLS:-1000}
THREADS=${THREADS:-2}
for p in "$ST_BIN/st-relay" "$BB/relaybench" "$BB/hello"; do
	if [ ! -x "$p" ]; then
		echo "relay.sh: $p is not built (make bench)" >&2
		exit 66
	fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/strelaybench.XXXXXX")
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# 1,000 polls and the relay's side of them need more than 1,024 descriptors
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# free_port: a loopback port nobody listens on now
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_up URL PID: until URL answers (the server PID still alive)
wait_up() {
	i=0
	until curl -s -o /dev/null "$1"; do
		i=$((i + 1))
		if [ $i -gt 200 ] || ! kill -0 "$2" 2>/dev/null; then
			echo "relay.sh: the server at $1 did not start" >&2
			exit 69
		fi
		sleep 0.05
	done
}
# stop PID: SIGTERM and wait; fail when it did not exit 0
stop() {
	kill "$1"
	rc=0
	wait "$1" || rc=$?
	PID=
	if [ "$rc" -ne 0 ]; then
		echo "relay.sh: pid $1 exited $rc after SIGTERM" >&2
		exit 70
	fi
}

echo "relay.sh: $RUNS runs on $(nproc) CPUs, $CONNS connections, ${SECS} s" \
    "a phase, $POLLS long polls, $THREADS HTTP threads"
r=1
while [ $r -le "$RUNS" ]; do
	out=$T/run$r
	: >"$out"
	# the ceiling
	port=$(free_port)
	"$BB/hello" "$port" "$THREADS" &
	PID=$!
	wait_up "http://127.0.0.1:$port/" "$PID"
	"$BB/relaybench" hello "http://127.0.0.1:$port" -c "$CONNS" -d "$SECS" >>"$out"
	stop "$PID"
	# the relay: rate limits off (one address, many users), cheap Argon2
	# for the set-up logins, room for every poll and every message
	port=$(free_port)
	rm -rf "$T/db"
	mkdir "$T/db"
	"$ST_BIN/st-relay" -q -l "127.0.0.1:$port" -d "$T/db/relay.db" \
	    -t "$THREADS" --no-rate-limits --argon2-m 64 --argon2-t 1 \
	    --max-connections 8192 --max-per-ip 8192 --mailbox-max 10000000 \
	    2>"$T/relay.log" &
	PID=$!
	wait_up "http://127.0.0.1:$port/v1/health" "$PID"
	"$BB/relaybench" relay "http://127.0.0.1:$port" -P "$PID" -c "$CONNS" \
	    -d "$SECS" -p "$POLLS" >>"$out"
	curl -s "http://127.0.0.1:$port/metrics" |
	    awk '/^st_relay_commits_total/ { c = $2 }
	         /^st_relay_committed_jobs_total/ { j = $2 }
	         END { if (c) printf "batch_mean %.1f jobs\n", j / c }' >>"$out"
	stop "$PID"
	# the share of this run's own ceiling: the machine's speed drifts
	# between runs, so each ratio is taken side by side
	awk '$1 == "hello_rate" { h = $2 } $1 == "post_rate" { p = $2 }
	     END { if (h) printf "post_share %.4f\n", p / h }' "$out" >"$T/share"
	cat "$T/share" >>"$out"
	if [ -s "$T/relay.log" ] && grep -qv -e 'listening on' -e 'shutting down' "$T/relay.log"; then
		echo "relay.sh: st-relay said:" >&2
		grep -v -e 'listening on' -e 'shutting down' "$T/relay.log" | head -5 >&2
	fi
	printf 'run %d (load %s):' "$r" "$(cut -d' ' -f1 /proc/loadavg)"
	awk '{ printf " %s=%s", $1, $2 }' "$out"
	echo
	r=$((r + 1))
done

# med NAME: the median over the runs
med() {
	for f in "$T"/run*; do
		awk -v k="$1" '$1 == k { print $2 }' "$f"
	done | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "nan" }'
}

hello=$(med hello_rate)
share=$(med post_share)
post=$(med post_rate)
fetch=$(med fetch_ack_rate)
rss=$(med polls_rss_delta)
rssall=$(med relay_rss)
wake=$(med wake_p99)
errs=0
for k in hello_errors post_errors fetch_ack_errors wake_errors; do
	errs=$((errs + $(med $k)))
done

echo
printf '%-36s %12s %12s %8s\n' "median of $RUNS runs" measured target ratio
awk -v h="$hello" -v p="$post" -v share="$share" -v f="$fetch" -v rss="$rss" -v all="$rssall" \
    -v w="$wake" -v hp50="$(med hello_p50)" -v hp99="$(med hello_p99)" \
    -v pp50="$(med post_p50)" -v pp99="$(med post_p99)" \
    -v fp50="$(med fetch_ack_p50)" -v fp99="$(med fetch_ack_p99)" \
    -v wp50="$(med wake_p50)" -v batch="$(med batch_mean)" \
    -v pcpu="$(med post_relay_cpu)" -v fcpu="$(med fetch_ack_relay_cpu)" 'BEGIN {
	ok = 1
	row("hello ceiling (req/s)", h, "", "", "")
	printf "  %-34s p50 %.2f ms, p99 %.2f ms\n", "", hp50, hp99
	row("durable POST /v1/messages (msg/s)", p, ">= 20000", p / 20000, p >= 20000)
	printf "  %-34s p50 %.2f ms, p99 %.2f ms, %s jobs a commit\n", "", pp50, pp99, batch
	printf "  %-34s relay CPU %.1f us a message\n", "", pcpu
	row("  ... share of the ceiling", sprintf("%.1f %%", 100 * share), ">= 25 %", share / 0.25, share >= 0.25)
	printf "  %-34s the median of each run'"'"'s posts over its own ceiling\n", ""
	row("fetch+ack (msg/s)", f, ">= 20000", f / 20000, f >= 20000)
	printf "  %-34s p50 %.2f ms, p99 %.2f ms (per request), relay CPU %.1f us a message\n", "", fp50, fp99, fcpu
	row("1000 idle long polls (+MiB RSS)", rss, "<= 100", rss / 100, rss <= 100)
	printf "  %-34s the relay'"'"'s whole RSS with them %.1f MiB\n", "", all
	row("long-poll wake-up p99 (ms)", w, "<= 50", w / 50, w <= 50)
	printf "  %-34s p50 %.2f ms\n", "", wp50
	exit !ok
}
function row(name, v, target, ratio, pass) {
	if (target == "")
		printf "%-36s %12s\n", name, v
	else
		printf "%-36s %12s %12s %8.2f %s\n", name, v, target, ratio, pass ? "ok" : "MISSED"
	if (target != "" && !pass)
		ok = 0
}' || echo "relay.sh: a target was missed"
[ "$errs" -eq 0 ] || echo "relay.sh: $errs unexpected answers (median)"
