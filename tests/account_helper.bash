# account_helper.bash - for the st-keygen, st-register, st-login and
# st-users suites: a relay with cheap Argon2, one $ST_HOME per user, and a
# password file (passwords never go on a command line).

load helper

setup() {
	setup_home
	PW=$BATS_TEST_TMPDIR/pw
	printf 'correct horse battery\n' >"$PW"
	PP=$BATS_TEST_TMPDIR/pp
	printf 'key passphrase\n' >"$PP"
	export PW PP
}

# relay [flags...]: st-relay with test-cheap Argon2.
relay() {
	start_relay -q --argon2-m 64 --argon2-t 1 "$@"
}

# as USER: act from USER's home.
as() {
	export ST_HOME=$BATS_TEST_TMPDIR/$1
}

# reg USER [flags...]: register USER from its own home.
reg() {
	local u=$1
	shift
	as "$u"
	st-register -r "$RELAY_URL" --password-file "$PW" "$@" "$u"
}

# jfield KEY: KEY of the JSON object on stdin (strings bare).
jfield() {
	python3 -c 'import json,sys
v = json.loads(sys.stdin.readline())
for k in sys.argv[1].split("."):
    v = v[k]
print(v if not isinstance(v, bool) else str(v).lower())' "$1"
}

# dead_url: an http URL on a loopback port nobody listens on.
dead_url() {
	echo "http://127.0.0.1:$(free_port)"
}

# api METHOD PATH [BODY]: call the relay with the token of $ST_HOME (read
# from the file, never on a command line); prints "STATUS BODY".
api() {
	python3 - "$@" <<'PY'
import os, sys, urllib.request, urllib.error
method, path = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
tok = open(os.path.join(os.environ["ST_HOME"], "token")).read().strip()
req = urllib.request.Request(os.environ["RELAY_URL"] + path, data=body,
                             method=method)
req.add_header("Authorization", "Bearer " + tok)
if body is not None:
    req.add_header("Content-Type", "application/json")
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
PY
}

# relay_opks: how many one-time prekeys the relay holds for $ST_HOME's user.
relay_opks() {
	api GET /v1/keys | sed 's/^200 //' | jfield opks
}

# drain USER N: take N of USER's one-time prekeys, as N bundle fetches by
# the user of $ST_HOME would.
drain() {
	local i
	for ((i = 0; i < $2; i++)); do
		api POST "/v1/users/$1/bundle" '{}' | grep -q '^200 '
	done
}

# fake_relay MODE: a hostile "relay" (python3) answering every request the
# MODE way: redirect, 500, html, huge, chunked (endless), deep (nesting
# 100,000 levels), stall (silence), drip (a header byte every 0.5 s),
# escape, or file:PATH (200 with the file as the body).
# Sets FAKE_URL, FAKE_PID.
fake_relay() {
	local port
	port=$(free_port)
	python3 - "$1" "$port" >"$BATS_TEST_TMPDIR/fake.log" 2>&1 <<'PY' &
import http.server, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        if mode == "redirect":
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:1/stolen")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "500":
            body = b'{"error":"internal","message":"down for repairs"}'
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode == "html":
            body = b"<html>hello</html>"
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode == "huge":
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"token":"')
            chunk = b"A" * 65536
            try:
                for _ in range(2000):
                    self.wfile.write(chunk)
            except Exception:
                pass
        elif mode.startswith("file:"):
            body = open(mode[5:], "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode == "chunked":
            # an endless chunked stream
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"A" * 65536
            try:
                self.wfile.write(b'%x\r\n{"token":"\r\n' % 10)
                while True:
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except Exception:
                pass
        elif mode == "deep":
            body = b"[" * 100000 + b"]" * 100000
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode == "stall":
            # takes the request, then says nothing
            time.sleep(3600)
        elif mode == "drip":
            # a status line, then a byte of headers every half second
            self.wfile.write(b"HTTP/1.1 201 Created\r\n")
            self.wfile.flush()
            try:
                while True:
                    time.sleep(0.5)
                    self.wfile.write(b"X")
                    self.wfile.flush()
            except Exception:
                pass
        elif mode == "escape":
            body = (b'{"error":"bad_json","message":"\\u001b]52;c;cHduZWQ='
                    b'\\u0007\\u001b[2J owned"}')
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = answer
http.server.HTTPServer.protocol_version = "HTTP/1.1"
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
	FAKE_PID=$!
	FAKE_URL="http://127.0.0.1:$port"
	until python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null; do
		sleep 0.05
	done
}

# blackhole_relay: a loopback port whose accept queue is full, so a
# connection attempt hangs as with a host that is down.  Sets FAKE_URL,
# FAKE_PID.
blackhole_relay() {
	python3 - >"$BATS_TEST_TMPDIR/port" <<'PY' &
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(3):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fill.append(c)
time.sleep(0.3)
print(port, flush=True)
time.sleep(600)
PY
	FAKE_PID=$!
	until [ -s "$BATS_TEST_TMPDIR/port" ]; do sleep 0.05; done
	FAKE_URL="http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")"
}

teardown() {
	stop_relay
	if [ -n "${SMALL_MNT:-}" ]; then
		umount "$SMALL_MNT" 2>/dev/null || true
	fi
	if [ -n "${FAKE_PID:-}" ]; then
		kill "$FAKE_PID" 2>/dev/null || true
		wait "$FAKE_PID" 2>/dev/null || true
	fi
}
