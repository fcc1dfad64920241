#!/bin/sh
# run.sh - run every libFuzzer target built by `make fuzz` (it builds
# nothing itself), one at a time, each for FUZZ_SECONDS (default 60) on a
# copy of its seed corpus in a temporary directory, so a run never grows the
# repository.  Prints one line per target: executions and the verdict.  A
# crash, leak, timeout or failed check leaves its input in
# $ST_FUZZ_BUILD/crashes/ (named in the output, with the sanitizer's
# summary and the top of the stack) and makes the exit status 1.
#
#   FUZZ_SECONDS   seconds per target (5 is a short CI pass)
#   FUZZ_TARGETS   names to run (default: every $ST_FUZZ_BUILD/fuzz/fuzz_*)
#   ST_FUZZ_BUILD  the build tree (default build-fuzz)
#   FUZZ_FLAGS     extra libFuzzer flags, e.g. -dict=... or -max_len=...
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${ST_FUZZ_BUILD:-build-fuzz}
case $B in /*) ;; *) B=$top/$B ;; esac
secs=${FUZZ_SECONDS:-60}
case $secs in ''|*[!0-9]*|0) echo "run.sh: FUZZ_SECONDS must be a positive integer" >&2; exit 64 ;; esac

targets=${FUZZ_TARGETS:-$(cd "$B/fuzz" 2>/dev/null && ls fuzz_* 2>/dev/null)}
if [ -z "$targets" ]; then
	echo "run.sh: no fuzz targets in $B/fuzz; build them with make fuzz" >&2
	exit 66
fi

# corpora and the router's store under /dev/shm when there is one
tmp=$(mktemp -d /dev/shm/st-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
export ST_FUZZ_TMP="$tmp"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
crashes=$B/crashes
mkdir -p "$crashes"
nice=$(command -v nice >/dev/null 2>&1 && echo "nice -n 10")
bad=0

for t in $targets; do
	bin=$B/fuzz/$t
	if [ ! -x "$bin" ]; then
		printf '%-14s missing (%s)\n' "$t" "$bin"
		bad=1
		continue
	fi
	mkdir -p "$tmp/corpus/$t"
	[ -d "$top/tests/fuzz/corpus/$t" ] &&
		cp -R "$top/tests/fuzz/corpus/$t/." "$tmp/corpus/$t/"
	log=$tmp/$t.log
	# a file named for this run, so an old crash is not taken for a new one
	stamp=$(date +%Y%m%d%H%M%S)
	# shellcheck disable=SC2086
	$nice "$bin" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
	    -artifact_prefix="$crashes/$t-$stamp-" ${FUZZ_FLAGS:-} \
	    "$tmp/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	files=
	for f in "$crashes/$t-$stamp-"*; do
		[ -e "$f" ] && files="$files $f"
	done
	if [ "$rc" -eq 0 ] && [ -z "$files" ]; then
		printf '%-14s %10s execs  ok\n' "$t" "${execs:-?}"
		continue
	fi
	bad=1
	printf '%-14s %10s execs  FAILED (exit %d)\n' "$t" "${execs:-?}" "$rc"
	for f in $files; do
		echo "  input: $f"
	done
	[ -z "$files" ] && echo "  no input saved; the log ends:" && tail -n 20 "$log" | sed 's/^/    /'
	# what went wrong, and where
	grep -E '^(==[0-9]+==ERROR|SUMMARY|.*check failed|.*runtime error)' "$log" |
	    head -n 5 | sed 's/^/  /'
	grep -E '^ +#[0-9]+ ' "$log" | grep -v 'fuzzer::' | head -n 12 |
	    sed 's/ (BuildId: [0-9a-f]*)//; s/^/  /'
done
exit "$bad"
