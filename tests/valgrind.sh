#!/bin/sh
# valgrind.sh - the BATS suites with every client command under valgrind
# memcheck.  A directory of wrappers, one per command, each exec'ing
# valgrind on the real binary, is put first as $ST_BIN; st-relay runs as
# built unless ST_VALGRIND_RELAY=1.  Each process writes its own log
# (LOGDIR/<command>.<pid>.log); a log with content is a report: a memory
# error or a definite leak (the only leak kind shown).  Ends with a
# summary and exits 1 if a test failed or valgrind reported anything.
#
# Usage: tests/valgrind.sh [SUITE.bats...]	(default: every tests/*.bats
# but the skipped ones below)
#
# Environment: ST_BIN (the real commands, default bin/), ST_BUILD (default
# build), ST_VALGRIND_DIR (where wrappers and logs go; default a new
# temporary directory, kept), ST_VALGRIND_RELAY=1 (st-relay under valgrind
# too), ST_TEST_SLOW (the time multiplier the suites apply to their
# latency bounds; 10 here), ST_CRASH_MESSAGES (the 1,000-message crash
# loop of st-recv-long.bats; 50 here), ST_VAULT_ITEMS (st-vault.bats's
# "ls lists 1,000 items"; 100 here).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${ST_BUILD:-build}
case "$B" in /*) ;; *) B=$top/$B ;; esac
real=${ST_BIN:-$top/bin}
out=${ST_VALGRIND_DIR:-$(mktemp -d /tmp/st-valgrind.XXXXXX)}
wrap=$out/bin
logs=$out/logs
supp=$top/tests/valgrind.supp

command -v valgrind >/dev/null 2>&1 || {
	echo "valgrind.sh: valgrind is missing (Debian: valgrind)" >&2
	exit 69
}
command -v bats >/dev/null 2>&1 || {
	echo "valgrind.sh: bats is missing (Debian: bats)" >&2
	exit 69
}
rm -rf "$wrap" "$logs"
mkdir -p "$wrap" "$logs" || exit 73

# --show-leak-kinds=definite: "possibly lost" blocks (libcurl's and
# OpenSSL's caches at exit) would fill logs without being errors, so a log
# holds only what --error-exitcode counts.
vg="valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
--errors-for-leak-kinds=definite --track-fds=no -q --num-callers=30 \
--gen-suppressions=all"
[ -f "$supp" ] && vg="$vg --suppressions=$supp"

n=0
for c in "$real"/st-*; do
	[ -x "$c" ] || continue
	name=$(basename "$c")
	if [ "$name" = st-relay ] && [ "${ST_VALGRIND_RELAY:-0}" != 1 ]; then
		ln -s "$c" "$wrap/$name"
		continue
	fi
	# exec: the wrapper's pid is valgrind's, so kill -9 $! hits the command
	printf '#!/bin/sh\nexec %s --log-file=%s/%s.%%p.log %s "$@"\n' \
	    "$vg" "$logs" "$name" "$c" >"$wrap/$name"
	chmod 755 "$wrap/$name"
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "valgrind.sh: no commands in $real (make first)" >&2; exit 66; }
[ -x "$B/tests/st-forge" ] || echo "valgrind.sh: $B/tests/st-forge is not" \
    "built (make test-build): the forged-message tests will skip" >&2

# Skipped by default (named on the command line, they run):
#   relay-crash.bats  kills st-relay under load; it runs no client command
#   st-relay.bats     the relay's own suite; it runs no client command, so
#                     only with ST_VALGRIND_RELAY=1 does it test anything
skip_default="relay-crash.bats st-relay.bats"
if [ "${ST_VALGRIND_RELAY:-0}" = 1 ]; then
	skip_default="relay-crash.bats"
fi
if [ $# -gt 0 ]; then
	suites="$*"
else
	suites=
	for t in "$top"/tests/*.bats; do
		case " $skip_default " in *" $(basename "$t") "*) continue ;; esac
		suites="$suites $t"
	done
fi

export ST_BIN=$wrap ST_BUILD=$B ST_VALGRIND=1
export ST_TEST_SLOW=${ST_TEST_SLOW:-10}
export ST_CRASH_MESSAGES=${ST_CRASH_MESSAGES:-50}
export ST_VAULT_ITEMS=${ST_VAULT_ITEMS:-100}
# the shared testkit beside the repository, else the copy in tests/testkit
if [ -z "${ST_TESTKIT:-}" ]; then
	ST_TESTKIT=$top/tests/testkit
	[ -d "$top/../shared/testkit/age" ] && ST_TESTKIT=$(cd "$top/../shared/testkit" && pwd)
fi
export ST_TESTKIT

start=$(date +%s)
ns=0 pass=0 fail=0 skip=0
for t in $suites; do
	[ -e "$t" ] || t=$top/tests/$t
	name=$(basename "$t")
	bats --tap "$t" >"$out/$name.tap" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$out/$name.tap")
	sk=$(grep -Ec '^ok .*# (skip|SKIP)' "$out/$name.tap")
	f=$(grep -c '^not ok ' "$out/$name.tap")
	p=$((p - sk))
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	ns=$((ns + 1)) pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + sk))
	printf '%-24s %4d passed, %d failed, %d skipped (%d s)\n' "$name" \
	    "$p" "$f" "$sk" $(($(date +%s) - start))
	[ "$f" -gt 0 ] && grep -A12 '^not ok ' "$out/$name.tap" | head -40
done

# every run under valgrind left a log; clean runs leave empty ones
runs=$(find "$logs" -type f | wc -l)
find "$logs" -type f -empty -delete
reports=$(find "$logs" -type f | wc -l)
for l in $(find "$logs" -type f | sort); do
	echo "--- $l"
	sed '/^{$/,/^}$/d' "$l" | head -40	# without the suppression blocks
done
echo "suites $ns, $pass passed, $fail failed, $skip skipped;" \
    "$runs command runs under valgrind, $reports reports (logs in $logs); $(($(date +%s) - start)) s"
[ "$fail" -eq 0 ] && [ "$reports" -eq 0 ]
