#!/bin/sh
# manlint.sh - the man pages as TAP, for `make lint` and `make check`:
# `mandoc -T lint` (warnings and worse) on every page, and each command's
# SYNOPSIS, as mandoc renders it, word for word the usage text that
# `CMD --help` prints and a bad option repeats on stderr with exit 64 (STYLE.md: "the synopsis matches the man page word for
# word").  Whitespace between words is not compared, nor mdoc's spaces
# before an ellipsis and around a bar ("ID ..." is "ID...", "A | B" is
# "A|B").  Without mandoc every case is skipped, with the reason.
#   ST_BIN  the built commands (default: bin/ beside tests/)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${ST_BIN:-$top/bin}
pages=$(ls "$top"/doc/*.1 "$top"/doc/*.5 "$top"/doc/*.7 "$top"/doc/*.8 2>/dev/null)
cmds=$(cd "$top/cmd" && ls st-*.c | sed 's/\.c$//')
[ -e "$top/server/st-relay.c" ] && cmds="$cmds st-relay"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0

# shellcheck disable=SC2086 # the lists split on purpose
set -- $pages
# shellcheck disable=SC2086
ncmd=$(echo $cmds | wc -w)
echo "1..$(($# + ncmd))"

ok() {	# ok STATUS DESCRIPTION [DIAGNOSTIC FILE]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		[ -n "${3:-}" ] && sed 's/^/# /' "$3"
		fail=1
	fi
}

if ! command -v mandoc >/dev/null 2>&1; then
	for p in $pages; do
		n=$((n + 1))
		echo "ok $n - mandoc -T lint ${p##*/} # skip mandoc is not installed"
	done
	for c in $cmds; do
		n=$((n + 1))
		echo "ok $n - $c: SYNOPSIS matches usage # skip mandoc is not installed"
	done
	exit 0
fi

for p in $pages; do
	mandoc -T lint -W warning "$p" >"$tmp/lint" 2>&1
	rc=$?
	[ -s "$tmp/lint" ] && rc=1
	ok "$rc" "mandoc -T lint ${p##*/}" "$tmp/lint"
done

# the awk that prints one squeezed form
flush='function flush() {
	if (f != "") {
		gsub(/[ \t]+/, " ", f); sub(/^ /, "", f); sub(/ $/, "", f)
		gsub(/ \.\.\./, "...", f); gsub(/ ?\| ?/, "|", f)
		print f
	}
	f = ""
}'

# forms CMD: one synopsis form per line, whitespace squeezed, from usage
# text on stdin: "usage: CMD ..." and "       CMD ..." start a form, lines
# indented further continue it, anything else ends the synopsis.
forms() {
	awk -v cmd="$1" "$flush"'
	NR == 1 && $1 == "usage:" && $2 == cmd { sub(/^usage:/, ""); f = $0; next }
	NR == 1 { exit }
	/^       [^ ]/ && $1 == cmd { flush(); f = $0; next }
	/^        / { f = f " " $0; next }
	{ exit }
	END { flush() }'
}

# manforms CMD PAGE: the same from the page's SYNOPSIS.
manforms() {
	mandoc -T ascii -O width=1000 "$2" | sed 's/.\x08//g' |
	    sed -n '/^SYNOPSIS$/,/^[A-Z]/p' | sed '1d;$d' |
	    awk -v cmd="$1" "$flush"'
	$1 == cmd { flush(); f = $0; next }
	/^ *$/ { next }
	{ f = f " " $0 }
	END { flush() }'
}

for c in $cmds; do
	page=$(ls "$top"/doc/"$c".[18] 2>/dev/null | head -n 1)
	if [ -z "$page" ]; then
		echo "no man page for $c" >"$tmp/diff"
		ok 1 "$c: SYNOPSIS matches usage" "$tmp/diff"
		continue
	fi
	if ! "$bin/$c" --help >"$tmp/usage" 2>&1; then
		echo "$bin/$c --help failed" >"$tmp/diff"
		ok 1 "$c: SYNOPSIS matches usage" "$tmp/diff"
		continue
	fi
	forms "$c" <"$tmp/usage" >"$tmp/u"
	manforms "$c" "$page" >"$tmp/m"
	if [ ! -s "$tmp/u" ]; then
		echo "no usage text from $c --help" >"$tmp/diff"
		ok 1 "$c: SYNOPSIS matches usage" "$tmp/diff"
		continue
	fi
	diff -u --label "$c --help" --label "${page##*/} SYNOPSIS" \
	    "$tmp/u" "$tmp/m" >"$tmp/diff"
	rc=$?
	# a bad option prints the same synopsis on stderr and exits 64
	"$bin/$c" --no-such-option >/dev/null 2>"$tmp/bad"
	bad=$?
	sed -n '/^usage:/,$p' "$tmp/bad" | forms "$c" >"$tmp/b"
	if [ "$bad" -ne 64 ] || ! cmp -s "$tmp/u" "$tmp/b"; then
		echo "$c --no-such-option: exit $bad, usage:" >>"$tmp/diff"
		cat "$tmp/bad" >>"$tmp/diff"
		rc=1
	fi
	ok "$rc" "$c: SYNOPSIS matches usage (--help and a bad option)" "$tmp/diff"
done
exit "$fail"
