#!/bin/sh
# run.sh - every suite of `make check`: cmocka unit tests, test tools (the
# age vectors) and BATS files, all speaking TAP; prints each suite's result
# and ends with one line "N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${ST_BUILD:-build}
export ST_BIN=${ST_BIN:-$top/bin}
# the shared testkit beside the repository, else the copy in tests/testkit
if [ -z "${ST_TESTKIT:-}" ]; then
	ST_TESTKIT=$top/tests/testkit
	[ -d "$top/../shared/testkit/age" ] && ST_TESTKIT=$(cd "$top/../shared/testkit" && pwd)
fi
export ST_TESTKIT
export CMOCKA_MESSAGE_OUTPUT=TAP
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
pass=0 fail=0 skip=0 bad=0

count() {	# count NAME FILE RC
	p=$(grep -c '^ok ' "$2" || true)
	sk=$(grep -Ec '^ok .*# (skip|SKIP)' "$2" || true)
	f=$(grep -c '^not ok ' "$2" || true)
	p=$((p - sk))
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
		# the suite died without reporting a failing case
		f=1
		echo "  $1: exited $3 without a TAP failure" >&2
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + sk))
	printf '%-28s %4d passed, %d failed%s\n' "$1" "$p" "$f" \
	    "$([ "$sk" -gt 0 ] && echo ", $sk skipped")"
	if [ "$f" -gt 0 ]; then
		grep -A12 '^not ok ' "$2" | head -60
		bad=1
	fi
}

for t in "$top/$B"/tests/test_*; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	"$t" >"$log/$n" 2>&1
	count "$n" "$log/$n" $?
done

for t in "$top"/tests/tools/*.sh; do
	[ -x "$t" ] || continue
	n=$(basename "$t" .sh)
	ST_BUILD="$top/$B" "$t" >"$log/$n" 2>&1
	count "$n" "$log/$n" $?
done

for t in "$top"/tests/*.bats; do
	[ -e "$t" ] || continue
	n=$(basename "$t")
	# several relays on one database: the PostgreSQL pass below runs it
	[ "$n" = st-relay-pg.bats ] && continue
	bats --tap "$t" >"$log/$n" 2>&1
	count "$n" "$log/$n" $?
done

# The relay suites again on PostgreSQL (store_pg.c), each test with a fresh
# database of one throwaway server; st-relay-pg.bats needs it too (several
# relays on one database).  ST_TEST_NO_PG=1 leaves this pass out.
if [ -z "${ST_TEST_NO_PG:-}" ]; then
	pgdir=$(mktemp -d /tmp/st-pg.XXXXXX)
	if ST_TEST_PG=$("$top/tests/pg.sh" start "$pgdir" 2>"$log/pg.err"); then
		export ST_TEST_PG
		for n in st-relay.bats st-relay-pg.bats; do
			[ -e "$top/tests/$n" ] || continue
			bats --tap "$top/tests/$n" >"$log/pg-$n" 2>&1
			count "$n (postgresql)" "$log/pg-$n" $?
		done
		unset ST_TEST_PG
	else
		echo "not ok 1 a throwaway PostgreSQL starts" >"$log/pg-start"
		cat "$log/pg.err" >>"$log/pg-start"
		count "postgresql" "$log/pg-start" 1
	fi
	"$top/tests/pg.sh" stop "$pgdir"
fi

echo "$pass passed, $fail failed$([ "$skip" -gt 0 ] && echo ", $skip skipped")"
[ "$bad" -eq 0 ] && [ "$fail" -eq 0 ]
