#!/bin/sh
# demo.sh - `make demo`: a relay on a free loopback port with a temporary
# SQLite file, two users (alice and bob) in temporary homes, a message and
# a file each way, the mailboxes drained into the vaults, the vaults
# listed.  Every step is printed before it runs.  Everything lives in one
# temporary directory that is removed at the end (set ST_DEMO_KEEP=1 to
# keep it).  Usage: contrib/demo.sh [BINDIR]
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/bin}
PATH="$bin:$PATH"
export PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/st-demo.XXXXXX")
relay_pid=
cleanup() {
	if [ -n "$relay_pid" ]; then
		kill "$relay_pid" 2>/dev/null || true
		wait "$relay_pid" 2>/dev/null || true
	fi
	if [ "${ST_DEMO_KEEP:-0}" = 1 ]; then
		echo "demo: kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() {
	printf '\n\033[1m## %s\033[0m\n' "$*" 2>/dev/null || printf '\n## %s\n' "$*"
}
run() {		# show a command line as a user would type it, then run it
	printf '$ %s\n' "$*"
	"$@"
}
as() {		# as USER CMD...: run with USER's home
	who=$1
	shift
	printf '%s$ %s\n' "$who" "$*"
	ST_HOME="$tmp/$who" "$@"
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
url="http://127.0.0.1:$port"

step "start st-relay on $url (database $tmp/relay.db)"
printf '$ st-relay -l 127.0.0.1:%s -d relay.db --blob-dir blobs &\n' "$port"
st-relay -l "127.0.0.1:$port" -d "$tmp/relay.db" --blob-dir "$tmp/blobs" \
    2>"$tmp/relay.log" &
relay_pid=$!
i=0
until curl -sf "$url/v1/health" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$relay_pid" 2>/dev/null; then
		echo "demo: the relay did not start:" >&2
		cat "$tmp/relay.log" >&2
		exit 69
	fi
	sleep 0.05
done
run curl -s "$url/v1/health"
echo

# passwords come from files (or the terminal), never from the command line
printf 'alice-demo-password\n' >"$tmp/alice.pw"
printf 'bob-demo-password\n' >"$tmp/bob.pw"
chmod 600 "$tmp/alice.pw" "$tmp/bob.pw"

step "register alice and bob (keys are made on the way; private keys stay local)"
as alice st-register -r "$url" --password-file "$tmp/alice.pw" alice
as bob st-register -r "$url" --password-file "$tmp/bob.pw" bob
as alice st-users

step "alice sends bob a message from a pipe"
printf '$ echo "hello bob, the backup finished" | st-send bob\n'
echo "hello bob, the backup finished" | ST_HOME="$tmp/alice" st-send bob

step "bob drains his mailbox: decrypted, stored in his vault, printed"
as bob st-recv

step "bob answers with a file attached"
seq 1 2000 >"$tmp/report.txt"
printf '$ st-send -m "here is the report" -a report.txt alice\n'
ST_HOME="$tmp/bob" st-send -m "here is the report" -a "$tmp/report.txt" alice

step "alice receives it, saving attachments to a directory as well"
mkdir -p "$tmp/downloads"
as alice st-recv -o "$tmp/downloads"
run cmp "$tmp/report.txt" "$tmp/downloads/report.txt"
echo "the file arrived intact"

step "alice sends a file back; bob receives it as JSON (for bots and jq)"
printf '$ st-send -a report.txt -m "thanks, signed copy" bob\n'
ST_HOME="$tmp/alice" st-send -a "$tmp/report.txt" -m "thanks, signed copy" bob
as bob st-recv -j

step "the vaults: every message and file, encrypted with age"
as alice st-vault ls
as bob st-vault ls
id=$(ST_HOME="$tmp/bob" st-vault ls -j | python3 -c '
import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("kind") == "message":
        print(m["id"]); break')
as bob st-vault cat "$id"
if command -v age >/dev/null 2>&1; then
	step "any age tool opens a vault file: no lock-in"
	printf 'bob$ age -d -i ~/.safetalk/vault.key ~/.safetalk/vault/%s.age\n' "$id"
	age -d -i "$tmp/bob/vault.key" "$tmp/bob/vault/$id.age"
fi

step "safety numbers: compare them out of band, then mark verified"
as alice st-users bob

step "stop the relay"
kill "$relay_pid"
wait "$relay_pid" 2>/dev/null || true
relay_pid=
echo "demo: done"
