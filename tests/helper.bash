# helper.bash - loaded by every BATS file.  Each test gets a fresh $ST_HOME
# under BATS_TEST_TMPDIR and the built commands on PATH; start_relay starts a
# real st-relay on a free loopback port with a temporary database, and
# teardown stops it by PID.

: "${ST_BIN:=$BATS_TEST_DIRNAME/../bin}"
: "${ST_TESTKIT:=$BATS_TEST_DIRNAME/../../shared/testkit}"
[ -d "$ST_TESTKIT" ] || ST_TESTKIT=$BATS_TEST_DIRNAME/testkit
export ST_BIN ST_TESTKIT
PATH="$ST_BIN:$PATH"

setup_home() {
	export ST_HOME="$BATS_TEST_TMPDIR/home"
	export HOME="$BATS_TEST_TMPDIR"
	unset ST_RELAY
	mkdir -p "$BATS_TEST_TMPDIR"
}

# free_port: a loopback TCP port nobody listens on right now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# With ST_TEST_PG set (tests/tools/pg.sh start prints it: "HOST PORT
# USER" of a throwaway PostgreSQL), relays use a fresh PostgreSQL database
# per test instead of an SQLite file.
# pg_fresh_db: create an empty database and print its URL.
pg_fresh_db() {
	local host port user name
	read -r host port user <<<"$ST_TEST_PG"
	name="t$$_${RANDOM}${RANDOM}"
	psql -qX -h "$host" -p "$port" -U "$user" -d postgres \
	    -c "CREATE DATABASE $name" >/dev/null || return 1
	echo "postgresql://$user@/$name?host=$host&port=$port"
}

# store_is_pg: true when relays of this run use PostgreSQL.
store_is_pg() {
	[ -n "${ST_TEST_PG:-}" ]
}

# start_relay [flags...]: st-relay on a free port; sets RELAY_URL, RELAY_PID.
start_relay() {
	local port
	port=$(free_port)
	RELAY_DB="$BATS_TEST_TMPDIR/relay.db"
	if [ -n "${ST_TEST_PG:-}" ]; then
		# one database per test: a restarted relay finds its data
		[ -s "$BATS_TEST_TMPDIR/pg-url" ] ||
		    pg_fresh_db >"$BATS_TEST_TMPDIR/pg-url" || return 1
		RELAY_DB=$(cat "$BATS_TEST_TMPDIR/pg-url")
	fi
	st-relay -l "127.0.0.1:$port" -d "$RELAY_DB" \
	    --blob-dir "$BATS_TEST_TMPDIR/blobs" "$@" \
	    2>"$BATS_TEST_TMPDIR/relay.log" &
	RELAY_PID=$!
	RELAY_URL="http://127.0.0.1:$port"
	export RELAY_URL RELAY_PID
	wait_relay
}

# wait_relay [curl flags...]: until $RELAY_URL answers /v1/health; fails
# (showing relay.log) when $RELAY_PID dies or 5 s pass.
wait_relay() {
	local tries=0

	until curl -sf "$@" "$RELAY_URL/v1/health" >/dev/null 2>&1; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ] || ! kill -0 "$RELAY_PID" 2>/dev/null; then
			cat "$BATS_TEST_TMPDIR/relay.log" >&2
			return 1
		fi
		sleep 0.05
	done
}

stop_relay() {
	if [ -n "${RELAY_PID:-}" ]; then
		kill "$RELAY_PID" 2>/dev/null || true
		wait "$RELAY_PID" 2>/dev/null || true
		RELAY_PID=
	fi
}

setup() {
	setup_home
}

teardown() {
	stop_relay
	if [ -n "${SMALL_MNT:-}" ]; then
		umount "$SMALL_MNT" 2>/dev/null || true
	fi
}

# slow N: the latency bound N scaled by $ST_TEST_SLOW (default 1;
# tests/valgrind.sh sets 10, as valgrind makes each command that much slower).
slow() {
	echo $(($1 * ${ST_TEST_SLOW:-1}))
}

# under_valgrind: the commands run under valgrind (tests/valgrind.sh), so
# RSS and kill timing mean nothing.
under_valgrind() {
	[ "${ST_VALGRIND:-0}" = 1 ]
}

# mode FILE: the octal permission bits of FILE.
mode() {
	stat -c %a "$1"
}
