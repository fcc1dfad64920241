#!/bin/sh
# pg.sh - a throwaway PostgreSQL for the tests and benchmarks.
#
#   pg.sh start DIR   initdb into DIR, start on a private Unix socket in DIR
#                     (no TCP) and a free port number; prints "DIR PORT USER",
#                     the value of ST_TEST_PG
#   pg.sh stop DIR    stop it by the PID in DIR/data/postmaster.pid (fast
#                     shutdown, then SIGKILL after 10 s) and remove DIR
#   pg.sh restart DIR stop and start the same cluster (fast shutdown)
#
# initdb refuses root, so as root the cluster belongs to the postgres user
# (runuser); otherwise to the caller.  PG_OPTS adds server settings
# ("-c fsync=off" for speed where durability is not under test).
set -eu

bindir() {
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/initdb" ] && { echo "$d"; return 0; }
	done
	echo "pg.sh: no initdb under /usr/lib/postgresql (make deps installs" \
	    "postgresql)" >&2
	return 1
}

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

server_start() {	# server_start DIR PORT
	as_owner "$B/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 30 \
	    -o "-k $1 -p $2 -c listen_addresses='' -c max_connections=200 ${PG_OPTS:-}" \
	    start >/dev/null
}

server_stop() {	# server_stop DIR
	pidf=$1/data/postmaster.pid
	[ -f "$pidf" ] || return 0
	pid=$(head -1 "$pidf")
	kill -INT "$pid" 2>/dev/null || return 0
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
}

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || { echo "usage: pg.sh start|stop|restart DIR" >&2; exit 64; }
B=$(bindir)
case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
	as_owner "$B/initdb" -D "$dir/data" -A trust -U st --no-sync \
	    -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
	    { cat "$dir/initdb.log" >&2; exit 1; }
	port=$(free_port)
	echo "$port" >"$dir/port"
	server_start "$dir" "$port" || { cat "$dir/server.log" >&2; exit 1; }
	echo "$dir $port st"
	;;
restart)
	server_stop "$dir"
	server_start "$dir" "$(cat "$dir/port")"
	;;
stop)
	server_stop "$dir"
	rm -rf "$dir"
	;;
*)
	echo "usage: pg.sh start|stop|restart DIR" >&2
	exit 64
	;;
esac
