#!/usr/bin/env bats
# make install and make uninstall into a temporary DESTDIR.  The programs
# already built for this run (ST_BIN, ST_BUILD) are installed as they are:
# make runs with -o all, so it never compiles, and never in the source tree
# while other suites use it.

load helper

TOP=$BATS_TEST_DIRNAME/..

setup() {
	setup_home
	case "${ST_BUILD:-build}" in
	/*) BUILD=$ST_BUILD ;;
	*) BUILD=$TOP/${ST_BUILD:-build} ;;
	esac
	CMDS=$(cd "$TOP/cmd" && ls st-*.c | sed 's/\.c$//')
	for c in $CMDS st-relay; do
		[ -x "$ST_BIN/$c" ] || skip "$c is not built ($ST_BIN)"
	done
	D=$BATS_TEST_TMPDIR/dest
	mkdir -p "$D"
}

# mk TARGET [VAR=VALUE...]: make in the source tree on the built programs,
# outside any make that runs this suite (its flags and jobserver).
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    make --no-print-directory -C "$TOP" -o all B="$BUILD" BIN="$ST_BIN" \
	    DESTDIR="$D" "$@" >"$BATS_TEST_TMPDIR/make.out" 2>&1
}

# files: every file under $D with its mode, sorted.
files() {
	(cd "$D" && find . -type f -printf '%m %P\n' | LC_ALL=C sort)
}

# expected PREFIX MANDIR: what install must put there, with modes.
expected() {
	local c f
	{
		for c in $CMDS st-relay; do
			echo "755 ${1#/}/bin/$c"
		done
		for f in "$TOP"/doc/*.[1578]; do
			f=${f##*/}
			echo "644 ${2#/}/man${f##*.}/$f"
		done
	} | LC_ALL=C sort
}

@test "st-install: install into DESTDIR with PREFIX=/usr/local: every command and page, right modes, nothing built" {
	run mk install PREFIX=/usr/local
	[ "$status" -eq 0 ]
	[ -z "$(grep -E '^(cc|clang|gcc|ar) ' "$BATS_TEST_TMPDIR/make.out")" ]
	diff <(expected /usr/local /usr/local/share/man) <(files)
	# the installed programs run
	"$D/usr/local/bin/st-send" -V
	"$D/usr/local/bin/st-relay" -V
	# every command has its page, and st.5, st.7 are there
	for c in $CMDS; do
		[ -f "$D/usr/local/share/man/man1/$c.1" ]
	done
	[ -f "$D/usr/local/share/man/man8/st-relay.8" ]
	[ -f "$D/usr/local/share/man/man7/st.7" ]
	[ -f "$D/usr/local/share/man/man5/st.5" ]
	cmp "$ST_BIN/st-recv" "$D/usr/local/bin/st-recv"
}

@test "st-install: uninstall removes exactly what install put there and nothing else" {
	mkdir -p "$D/usr/local/bin" "$D/usr/local/share/man/man1"
	printf 'mine\n' >"$D/usr/local/bin/st-other"
	printf 'mine\n' >"$D/usr/local/share/man/man1/stx.1"
	printf 'mine\n' >"$D/usr/local/share/man/man1/st.1.bak"
	before=$(files)
	run mk install PREFIX=/usr/local
	[ "$status" -eq 0 ]
	diff <( (echo "$before"; expected /usr/local /usr/local/share/man) |
	    LC_ALL=C sort) <(files)
	run mk uninstall PREFIX=/usr/local
	[ "$status" -eq 0 ]
	[ "$(files)" = "$before" ]
	# a second uninstall has nothing to do and does not fail
	run mk uninstall PREFIX=/usr/local
	[ "$status" -eq 0 ]
	[ "$(files)" = "$before" ]
}

@test "st-install: MANPREFIX moves the pages, MANDIR wins over it, uninstall follows both" {
	run mk install PREFIX=/opt/st MANPREFIX=/usr/share
	[ "$status" -eq 0 ]
	diff <(expected /opt/st /usr/share/man) <(files)
	run mk uninstall PREFIX=/opt/st MANPREFIX=/usr/share
	[ "$status" -eq 0 ]
	[ -z "$(files)" ]
	run mk install PREFIX=/opt/st MANPREFIX=/nowhere MANDIR=/srv/man
	[ "$status" -eq 0 ]
	diff <(expected /opt/st /srv/man) <(files)
	run mk uninstall PREFIX=/opt/st MANPREFIX=/nowhere MANDIR=/srv/man
	[ "$status" -eq 0 ]
	[ -z "$(files)" ]
}
