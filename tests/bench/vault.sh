#!/bin/sh
# vault.sh - st-vault against age, side by side in one run: a 1 GiB random
# file encrypted and decrypted to /dev/null and to a file, a 1 KiB file as
# whole processes, peak RSS, and `st-vault ls` of 10,000 items.  Prints
# medians and the ratio st-vault/age (lower is better for st-vault).
set -eu
: "${ST_BIN:=$(cd "$(dirname "$0")/../.." && pwd)/bin}"
B=$(cd "$(dirname "$0")/../.." && pwd)/build
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-1024}
T=$(mktemp -d "${TMPDIR:-/tmp}/stbench.XXXXXX")
trap 'rm -rf "$T"' EXIT
export ST_HOME="$T/home"
V="$ST_BIN/st-vault"

age-keygen -o "$T/key" 2>/dev/null
R=$(age-keygen -y "$T/key")
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$T/big"
head -c 1024 /dev/urandom > "$T/small"
"$V" encrypt -r "$R" -o "$T/big.st.age" "$T/big"
age -r "$R" -o "$T/big.age.age" "$T/big"

# median SECONDS of RUNS runs of a shell command; also records peak RSS (KiB)
measure() {
	i=0; : > "$T/times"; : > "$T/rss"
	while [ $i -lt "$RUNS" ]; do
		/usr/bin/time -f '%e %M' -o "$T/one" sh -c "$1"
		cut -d' ' -f1 "$T/one" >> "$T/times"
		cut -d' ' -f2 "$T/one" >> "$T/rss"
		i=$((i + 1))
	done
	MED=$(sort -n "$T/times" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	RSS=$(sort -n "$T/rss" | tail -1)
}

row() {	# row LABEL ST_CMD AGE_CMD
	measure "$2"; st=$MED; strss=$RSS
	measure "$3"; ag=$MED; agrss=$RSS
	awk -v l="$1" -v s="$st" -v a="$ag" -v sr="$strss" -v ar="$agrss" 'BEGIN {
		printf "%-34s st-vault %7.3f s  age %7.3f s  ratio %5.2f  rss %6.1f / %6.1f MiB\n",
		    l, s, a, (a > 0 ? s / a : 0), sr / 1024, ar / 1024 }'
}

echo "== vault benchmark: ${SIZE_MB} MiB, median of $RUNS runs =="
row "encrypt 1 GiB -> /dev/null" \
    "$V encrypt -r $R -o /dev/null $T/big" "age -r $R -o /dev/null $T/big"
row "encrypt 1 GiB -> file" \
    "$V encrypt -r $R -o $T/o1 $T/big" "age -r $R -o $T/o2 $T/big"
row "decrypt 1 GiB -> /dev/null" \
    "$V decrypt -i $T/key -o /dev/null $T/big.st.age" \
    "age -d -i $T/key -o /dev/null $T/big.age.age"
row "decrypt 1 GiB -> file" \
    "$V decrypt -i $T/key -o $T/o3 $T/big.st.age" \
    "age -d -i $T/key -o $T/o4 $T/big.age.age"
rm -f "$T"/o1 "$T"/o2 "$T"/o3 "$T"/o4

loop() { echo "i=0; while [ \$i -lt 200 ]; do $1; i=\$((i+1)); done"; }
row "encrypt 1 KiB x200 processes" \
    "$(loop "$V encrypt -r $R -o /dev/null $T/small")" \
    "$(loop "age -r $R -o /dev/null $T/small")"

"$B/tests/st-vault-fill" 10000
RUNS=$RUNS measure "$V ls > /dev/null"
echo "st-vault ls, 10,000 items           $MED s (target <= 1 s), rss $((RSS / 1024)) MiB"
