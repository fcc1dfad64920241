#!/bin/sh
# protocol.sh - the protocol core in-process (tests/bench/protocol.c): X3DH
# and the first message round, same-direction encrypt+decrypt, and
# ping-pong (a DH ratchet step per message).  Prints the median per op and
# its ratio to libsignal-protocol-c measured on this machine (2.22 ms,
# 24 us, 420 us; the target is <= 0.50), then, when valgrind is there,
# callgrind's instruction count per op (repeatable on a noisy machine).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${ST_BUILD:-build}
case $B in /*) ;; *) B=$top/$B ;; esac
P=$B/bench/protocol
[ -x "$P" ] || { echo "protocol.sh: $P not built (make bench)" >&2; exit 1; }

echo "== protocol core, in-process (median per op) =="
"$P" | tee "${TMPDIR:-/tmp}/protocol.$$"
awk '
	BEGIN { a["x3dh"] = 2220; a["same"] = 24; a["pingpong"] = 420 }
	$1 in a { printf "%-9s %8.2f us  libsignal-protocol-c %7.0f us  ratio %4.2f  (target <= 0.50)\n",
	    $1, $2, a[$1], $2 / a[$1] }' "${TMPDIR:-/tmp}/protocol.$$"
rm -f "${TMPDIR:-/tmp}/protocol.$$"

if ! command -v valgrind >/dev/null 2>&1; then
	echo "(valgrind not installed: no instruction counts)"
	exit 0
fi
echo "== callgrind: instructions per op =="
T=$(mktemp -d "${TMPDIR:-/tmp}/stcg.XXXXXX")
trap 'rm -rf "$T"' EXIT
for op in x3dh:50 same:500 pingpong:200; do
	name=${op%%:*} n=${op#*:}
	valgrind --tool=callgrind --callgrind-out-file="$T/cg.$name" \
	    --collect-atstart=no --toggle-collect="op_$name" \
	    "$P" -c "$name" -n "$n" >/dev/null 2>"$T/log.$name" || {
		cat "$T/log.$name" >&2
		exit 1
	}
	ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$T/cg.$name")
	awk -v o="$name" -v ir="$ir" -v n="$n" 'BEGIN {
		printf "%-9s %12.0f instructions per op  (%d ops)\n", o, ir / n, n }'
done
