#!/bin/sh
# messaging.sh - whole commands against a loopback st-relay:
#
# 1. `st-send` of a 1 KiB message on an established session, side by side
#    (interleaved, one run each in turn) with `curl` posting the same kind
#    of envelope to the same relay as the same user: one POST
#    /v1/messages with a fresh client_id, the token from a header file.
#    The issue's target is st-send <= 1.0x curl.  st-send does more than
#    curl: it reads its keys, advances and durably commits the ratchet
#    state, writes the envelope to the outbox (fsync), posts it, removes
#    it; curl only posts.  Each also runs without the request (st-send
#    --version, curl of file:///dev/null), so the start-up both pay
#    (libcurl and its thirty libraries) is split from the work.
# 2. `st-recv -q` draining N queued messages (decrypt, vault item with its
#    metadata, state commit, ack): messages per second and peak RSS.
#
#   ST_BIN     where the commands are (default bin/)
#   ST_BUILD   the build tree with tests/st-forge (default build)
#   SENDS (40 of each), DRAIN (10000)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${ST_BIN:=$ROOT/bin}"
case "${ST_BUILD:-build}" in
/*) FORGE=$ST_BUILD/tests/st-forge ;;
*) FORGE=$ROOT/${ST_BUILD:-build}/tests/st-forge ;;
esac
SENDS=${SENDS:-40}
DRAIN=${DRAIN:-10000}
for p in "$ST_BIN/st-relay" "$ST_BIN/st-send" "$ST_BIN/st-recv" "$FORGE"; do
	if [ ! -x "$p" ]; then
		echo "messaging.sh: $p is not built (make bench)" >&2
		exit 66
	fi
done
PATH=$ST_BIN:$PATH
export PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/stmsgbench.XXXXXX")
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$port
st-relay -q -l "127.0.0.1:$port" -d "$T/relay.db" --blob-dir "$T/blobs" \
    --no-rate-limits --argon2-m 64 --argon2-t 1 2>"$T/relay.log" &
PID=$!
i=0
until curl -s -o /dev/null "$URL/v1/health"; do
	i=$((i + 1))
	if [ $i -gt 200 ] || ! kill -0 "$PID" 2>/dev/null; then
		echo "messaging.sh: st-relay did not start" >&2
		cat "$T/relay.log" >&2
		exit 69
	fi
	sleep 0.05
done
printf 'bench password\n' >"$T/pw"
for u in alice bob; do
	ST_HOME=$T/$u st-register -r "$URL" --password-file "$T/pw" "$u" \
	    2>/dev/null
done
# an established session: a message each way, both received
echo hi | ST_HOME=$T/alice st-send bob >/dev/null
ST_HOME=$T/bob st-recv -q 2>/dev/null     # curl's copies are replays
echo hi | ST_HOME=$T/bob st-send alice >/dev/null
ST_HOME=$T/alice st-recv -q
head -c 768 /dev/urandom | base64 -w0 >"$T/msg"      # 1 KiB of text
echo >>"$T/msg"

# curl's side: an envelope as st-send made it, fetched from bob's mailbox,
# reposted as alice with a fresh client_id each time
ST_HOME=$T/alice st-send bob <"$T/msg" >/dev/null
printf 'Authorization: Bearer %s\n' "$(cat "$T/bob/token")" >"$T/bob.hdr"
printf 'Authorization: Bearer %s\n' "$(cat "$T/alice/token")" >"$T/alice.hdr"
curl -s -H @"$T/bob.hdr" "$URL/v1/messages?limit=10" >"$T/mailbox.json"
curl -s -H @"$T/alice.hdr" "$URL/v1/users/bob" >"$T/bob.json"
python3 - "$T" "$SENDS" <<'PY'
import base64, hashlib, json, os, sys
t, n = sys.argv[1], int(sys.argv[2])
m = json.load(open(os.path.join(t, "mailbox.json")))["messages"][-1]
i = json.load(open(os.path.join(t, "bob.json")))["identity"]
d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
ik = hashlib.sha256(b"\x01" + d(i["ed25519"]) + d(i["x25519"])).digest()[:16]
to_ik = base64.urlsafe_b64encode(ik).decode().rstrip("=")
for i in range(n):
    body = {"messages": [{"to": "bob", "to_ik": to_ik,
                          "client_id": os.urandom(16).hex(),
                          "envelope": m["envelope"]}]}
    with open(os.path.join(t, "body%d.json" % i), "w") as f:
        json.dump(body, f)
PY

echo "messaging.sh: $SENDS runs each of st-send and curl, interleaved, on" \
    "$(nproc) CPUs; then st-recv draining $DRAIN messages"
python3 - "$T" "$SENDS" "$URL" <<'PY'
import os, statistics, subprocess, sys, time
t, n, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = dict(os.environ, ST_HOME=os.path.join(t, "alice"))
send, post, send0, post0 = [], [], [], []
def timed(argv, **kw):
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.PIPE, **kw)
    dt = time.perf_counter() - t0
    return dt, p
for i in range(n):
    with open(os.path.join(t, "msg"), "rb") as f:
        dt, p = timed(["st-send", "bob"], stdin=f, env=env)
    if p.returncode != 0:
        sys.exit("messaging.sh: st-send failed (%d)" % p.returncode)
    send.append(dt)
    dt, p = timed(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                   "-H", "@" + os.path.join(t, "alice.hdr"),
                   "-H", "Content-Type: application/json",
                   "--data-binary", "@" + os.path.join(t, "body%d.json" % i),
                   url + "/v1/messages"])
    if p.stdout != b"201":
        sys.exit("messaging.sh: curl's post got %r" % p.stdout)
    post.append(dt)
    # without the request: st-send's start-up and exit (libcurl's thirty
    # libraries among them), and curl's with its set-up and a transfer of
    # nothing; what is left of each is its own work
    send0.append(timed(["st-send", "--version"])[0])
    post0.append(timed(["curl", "-s", "-o", "/dev/null",
                        "file:///dev/null"])[0])
ms = lambda v: statistics.median(v) * 1000
q = lambda v, p: sorted(v)[min(len(v) - 1, int(len(v) * p))] * 1000
print("  st-send 1 KiB, established session: median %.1f ms (p90 %.1f)"
      % (ms(send), q(send, 0.9)))
print("  curl POST of the same envelope:     median %.1f ms (p90 %.1f)"
      % (ms(post), q(post, 0.9)))
print("  ratio st-send/curl %.2fx (target <= 1.0x: %s)"
      % (ms(send) / ms(post), "met" if ms(send) <= ms(post) else "MISSED"))
print("  without the request (st-send --version, curl file:///dev/null): "
      "st-send %.1f ms, curl %.1f ms;\n  the rest: st-send %.1f ms, curl "
      "%.1f ms" % (ms(send0), ms(post0), ms(send) - ms(send0),
                   ms(post) - ms(post0)))
PY

# drain: bob's mailbox emptied, then DRAIN messages queued by st-forge in
# alice's outbox and posted by st-send --flush
ST_HOME=$T/bob st-recv -q 2>/dev/null     # curl's copies are replays
echo "queued message for the drain benchmark" |
    ST_HOME=$T/alice "$FORGE" -n "$DRAIN" bob
ST_HOME=$T/alice st-send --flush >/dev/null
python3 - "$T" "$DRAIN" <<'PY'
import os, resource, subprocess, sys, time
t, n = sys.argv[1], int(sys.argv[2])
env = dict(os.environ, ST_HOME=os.path.join(t, "bob"))
t0 = time.perf_counter()
p = subprocess.run(["st-recv", "-q"], env=env)
dt = time.perf_counter() - t0
if p.returncode != 0:
    sys.exit("messaging.sh: st-recv failed (%d)" % p.returncode)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
items = len([f for f in os.listdir(os.path.join(t, "bob", "vault"))
             if f.endswith(".meta.age")])
print("  st-recv -q drained %d messages in %.1f s: %.0f msg/s, peak RSS "
      "%.1f MiB; %d vault items in all" % (n, dt, n / dt, rss, items))
PY
