# relay_helper.bash - for tests/st-relay.bats: a relay with cheap Argon2,
# curl wrappers that keep the status and the body apart, and st-testkeys
# (built from tests/tools/st-testkeys.c) for signed keys and posts.

load helper

case "${ST_BUILD:-build}" in
/*) ST_BUILD_DIR=$ST_BUILD ;;
*) ST_BUILD_DIR=$BATS_TEST_DIRNAME/../${ST_BUILD:-build} ;;
esac
TK=$ST_BUILD_DIR/tests/st-testkeys
# the system interpreter: a version manager's shim costs half a second a call
PY=$(command -v /usr/bin/python3 || command -v python3)

# free_port: a loopback port nobody listens on now (no interpreter start-up),
# below the kernel's ephemeral range so no client socket of a parallel test
# holds it.
free_port() {
	local p lo

	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "$lo" -gt 11000 ] || lo=61000
	while :; do
		p=$((10000 + RANDOM % (lo - 10000)))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || break
	done
	echo "$p"
}

setup() {
	setup_home
	OUT=$BATS_TEST_TMPDIR/out
	HDRS=$BATS_TEST_TMPDIR/headers
	[ -x "$TK" ] || skip "st-testkeys is not built ($TK)"
}

# relay [flags...]: st-relay with test-cheap Argon2 (the flags under test
# follow, so they can override).
relay() {
	local try

	# another test may take the port between the probe and the bind
	for try in 1 2 3; do
		start_relay --argon2-m 64 --argon2-t 1 "$@" 2>"$BATS_TEST_TMPDIR/start.err" && return 0
		grep -q 'Address already in use' "$BATS_TEST_TMPDIR/relay.log" || break
		wait "$RELAY_PID" 2>/dev/null || true
	done
	cat "$BATS_TEST_TMPDIR/start.err" >&2
	return 1
}

# call METHOD PATH [TOKEN [BODY]]: print the status; the body is in $OUT,
# the headers in $HDRS.  A BODY goes as application/json ("@FILE" reads a
# file).
call() {
	local args=(-s -o "$OUT" -D "$HDRS" -w '%{http_code}' -X "$1")

	[ -n "${3:-}" ] && args+=(-H "Authorization: Bearer $3")
	[ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' \
	    --data-binary "$4")
	curl "${args[@]}" "$RELAY_URL$2"
}

# expect STATUS [ERROR] -- METHOD PATH [TOKEN [BODY]]: call and check the
# status (and the error code), showing the answer when it differs.
expect() {
	local want=$1 err= got
	shift
	if [ "$1" != -- ]; then err=$1; shift; fi
	shift
	got=$(call "$@")
	if [ "$got" != "$want" ] ||
	    { [ -n "$err" ] && [ "$(jget error)" != "$err" ]; }; then
		echo "$*: want $want $err, got $got: $(cat "$OUT")" >&2
		return 1
	fi
}

# jget KEY[.KEY]...: a member of the last body.
jget() {
	"$TK" get "$1" <"$OUT"
}

# header NAME: a header of the last answer.
header() {
	grep -i "^$1:" "$HDRS" | head -n 1 | cut -d: -f2- | tr -d ' \r'
}

# register USER [NOPKS]: create USER (keys in $BATS_TEST_TMPDIR/USER.key).
register() {
	rm -f "$BATS_TEST_TMPDIR/$1.toik"
	"$TK" register "$1" "pw-$1-secret" "$BATS_TEST_TMPDIR/$1.key" \
	    "${2:-0}" >"$BATS_TEST_TMPDIR/$1.reg"
	expect 201 -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/$1.reg"
}

# login USER: print a fresh token.
login() {
	expect 201 -- POST /v1/sessions "" \
	    "{\"user\":\"$1\",\"password\":\"pw-$1-secret\"}" >&2 && jget token
}

# toik USER: USER's to_ik (computed once per key; register forgets it).
toik() {
	local f=$BATS_TEST_TMPDIR/$1.toik v

	[ -s "$f" ] || "$TK" toik "$BATS_TEST_TMPDIR/$1.key" >"$f"
	read -r v <"$f"
	echo "$v"
}

# cid N: a client_id.
cid() {
	printf '%032x' "$1"
}

# entry TO N [ENVELOPE]: one entry of POST /v1/messages.
entry() {
	local env=${3:-}

	[ -n "$env" ] || env='{"v":1,"hdr":"AAAA","ct":"BBBB"}'
	printf '{"to":"%s","to_ik":"%s","client_id":"%s","envelope":%s}' \
	    "$1" "$(toik "$1")" "$(cid "$2")" "$env"
}

# raw DATA [SECONDS]: send DATA (printf escapes) on a new connection and
# print what comes back, then "<closed>" or "<timeout>".
raw() {
	"$PY" - "$RELAY_URL" "${2:-3}" "$1" <<'PY'
import socket, sys
host, port = sys.argv[1].split('//')[1].split(':')
s = socket.create_connection((host, int(port)))
s.sendall(sys.argv[3].encode().decode('unicode_escape').encode('latin-1'))
s.settimeout(float(sys.argv[2]))
out = b''
try:
    while True:
        d = s.recv(65536)
        if not d:
            out += b'<closed>'
            break
        out += d
except socket.timeout:
    out += b'<timeout>'
except ConnectionResetError:
    out += b'<closed>'
sys.stdout.write(out.decode('latin-1'))
PY
}

# asan: st-relay is built with AddressSanitizer (its shadow memory and
# quarantine make RSS meaningless).
asan() {
	ldd "$(command -v st-relay)" 2>/dev/null | grep -q libasan
}

# now_ms: wall clock in ms.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# db_query SQL: the rows of a query on the relay's database, columns
# separated by a space (SQLite file or PostgreSQL URL alike).
db_query() {
	if store_is_pg; then
		psql -qAtX -F ' ' "$RELAY_DB" -c "$1"
	else
		"$PY" -c 'import sqlite3, sys
for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):
    print(" ".join(str(v) for v in r))' "$RELAY_DB" "$1"
	fi
}
