#!/usr/bin/env bats
# st-relay-pg.bats - several st-relay processes on one PostgreSQL database
# (server/store_pg.c): cross-relay wake-ups and token revocation (LISTEN/
# NOTIFY), the one-time prekey hand-out, idempotent sends and channel order
# across relays, a relay killed under load, the database restarting under
# the relays, concurrent migration, and the -d checks.
#
# Needs ST_TEST_PG ("DIR PORT USER", printed by tests/pg.sh start DIR);
# tests/run.sh sets it.  Each test gets a fresh database; the relays of a
# test share it and one --blob-dir.

load relay_helper

# (a bare "! CMD" fails a test only as its last command: "! CMD || false")

setup() {
	if [ -z "${ST_TEST_PG:-}" ]; then
		echo "st-relay-pg.bats needs ST_TEST_PG=\"DIR PORT USER\" of a" \
		    "PostgreSQL server (tests/pg.sh start DIR prints it)" >&2
		return 1
	fi
	setup_home
	OUT=$BATS_TEST_TMPDIR/out
	HDRS=$BATS_TEST_TMPDIR/headers
	if [ ! -x "$TK" ]; then
		echo "st-testkeys is not built ($TK): make test-build" >&2
		return 1
	fi
	PG_DIR=${ST_TEST_PG%% *}
	PG_DOWN=
	PIDS=()
	RELAY_DB=$(pg_fresh_db)
	BLOBS=$BATS_TEST_TMPDIR/blobs
}

teardown() {
	local p

	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# a test stopped the server and failed before starting it again
	if [ -n "$PG_DOWN" ]; then
		"$BATS_TEST_DIRNAME/pg.sh" restart "$PG_DIR" 3>&- || true
	fi
}

# up NAME [flags...]: relay NAME (A, B, ...) on the test's database and blob
# directory, with cheap Argon2; sets URL_NAME and PID_NAME, logs to
# relay-NAME.log.
up() {
	local name=$1 port pid try

	shift
	for try in 1 2 3; do
		port=$(free_port)
		st-relay -l "127.0.0.1:$port" -d "$RELAY_DB" --blob-dir "$BLOBS" \
		    --argon2-m 64 --argon2-t 1 "$@" \
		    2>>"$BATS_TEST_TMPDIR/relay-$name.log" &
		pid=$!
		PIDS+=("$pid")
		printf -v "URL_$name" 'http://127.0.0.1:%s' "$port"
		printf -v "PID_$name" '%s' "$pid"
		healthy "$name" && return 0
		# another test may take the port between the probe and the bind
		grep -q 'Address already in use' "$BATS_TEST_TMPDIR/relay-$name.log" ||
		    break
	done
	cat "$BATS_TEST_TMPDIR/relay-$name.log" >&2
	return 1
}

# healthy NAME: until relay NAME answers /v1/health; fails when it died or
# 10 s passed.
healthy() {
	local url="URL_$1" pid="PID_$1" i

	for i in $(seq 200); do
		curl -sf "${!url}/v1/health" >/dev/null 2>&1 && return 0
		kill -0 "${!pid}" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# at NAME: the following calls go to relay NAME.
at() {
	local url="URL_$1"

	RELAY_URL=${!url}
}

# pg_stop: stop the test server (fast shutdown), keeping its data; the
# teardown starts it again should the test fail before pg_start.
pg_stop() {
	local pid i

	pid=$(head -n 1 "$PG_DIR/data/postmaster.pid")
	PG_DOWN=1
	kill -INT "$pid"
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	echo "PostgreSQL ($pid) did not stop" >&2
	return 1
}

# (fd 3 closed: the server would hold bats' output pipe open)
pg_start() {
	"$BATS_TEST_DIRNAME/pg.sh" restart "$PG_DIR" 3>&-
	PG_DOWN=
}

# listeners N: until N relays LISTEN on the test's database (10 s at most;
# an idle listener's last statement is its LISTEN).
listeners() {
	local i

	for i in $(seq 100); do
		[ "$(db_query "select count(*) from pg_stat_activity where datname = current_database() and query ilike 'LISTEN %'")" = "$1" ] &&
		    return 0
		sleep 0.1
	done
	echo "not $1 listeners: $(db_query "select pid, state, query from pg_stat_activity where datname = current_database()")" >&2
	return 1
}

# poll_lag NAME PATH TOKEN SENDCMD...: a long poll on relay NAME, then
# SENDCMD; print the ms from SENDCMD's end to the poll's answer (in
# $BATS_TEST_TMPDIR/poll).
poll_lag() {
	local url="URL_$1" path=$2 tok=$3 poll t_sent

	shift 3
	rm -f "$BATS_TEST_TMPDIR/t_poll"
	( curl -s -o "$BATS_TEST_TMPDIR/poll" -H "Authorization: Bearer $tok" \
	    "${!url}$path"; now_ms >"$BATS_TEST_TMPDIR/t_poll" ) &
	poll=$!
	# the poll is suspended on its relay by then
	sleep 0.5
	[ ! -e "$BATS_TEST_TMPDIR/t_poll" ] || {
		echo "the poll answered before the send: $(cat "$BATS_TEST_TMPDIR/poll")" >&2
		return 1
	}
	"$@" >&2 || return 1
	t_sent=$(now_ms)
	wait "$poll"
	echo $(($(cat "$BATS_TEST_TMPDIR/t_poll") - t_sent))
}

# ---- one database, two relays ----

@test "two relays, one database: register and send on A, fetch and ack on B; tokens and blobs cross" {
	up A
	up B
	at A
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	id=$(jget ids.0)
	# bob's token from A, used on B
	at B
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages.0.id)" = "$id" ]
	[ "$(jget messages.0.from)" = alice ]
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$id\"]}"
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
	at A
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
	# the resend through B still gets A's id
	at B
	expect 200 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	[ "$(jget ids.0)" = "$id" ]
	expect 200 -- GET /v1/users/alice "$tb"
	# a token made on B works on A
	tb2=$(login bob)
	at A
	expect 200 -- GET /v1/keys "$tb2"
	# a blob uploaded through A, downloaded through B
	head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/blob"
	run curl -s -w '\n%{http_code}' -H "Authorization: Bearer $ta" \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary "@$BATS_TEST_TMPDIR/blob" "$URL_A/v1/blobs"
	[ "${lines[1]}" = 201 ]
	bid=$(echo "${lines[0]}" | "$TK" get id)
	curl -sf -H "Authorization: Bearer $tb" "$URL_B/v1/blobs/$bid" |
	    cmp - "$BATS_TEST_TMPDIR/blob"
}

@test "cross-relay wake-up: a long poll on B wakes within 1 s of a send through A" {
	up A
	up B
	at A
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	lag=$(poll_lag B "/v1/messages?wait=10" "$tb" \
	    expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}")
	[ -n "$lag" ]
	echo "message poll on B woke $lag ms after the send through A" >&2
	[ "$lag" -lt "$(slow 1000)" ]
	[ "$("$TK" get messages.0.from <"$BATS_TEST_TMPDIR/poll")" = alice ]
	# and the other way round
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$(jget ids.0)\"]}"
	lag=$(at B; poll_lag A "/v1/messages?wait=10" "$tb" \
	    expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2)]}")
	[ -n "$lag" ]
	echo "message poll on A woke $lag ms after the send through B" >&2
	[ "$lag" -lt "$(slow 1000)" ]
	[ "$("$TK" get messages.0.from <"$BATS_TEST_TMPDIR/poll")" = alice ]
	! "$TK" get messages.1 <"$BATS_TEST_TMPDIR/poll" || false
}

@test "cross-relay wake-up: a channel long poll on B wakes within 1 s of a post through A" {
	up A
	up B
	at A
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	key=$BATS_TEST_TMPDIR/alice.key
	expect 201 -- POST /v1/channels/lobby "$ta" "$("$TK" post "$key" lobby alice 1000 one)"
	id1=$(jget id)
	lag=$(poll_lag B "/v1/channels/lobby?after=$id1&wait=10" "$tb" \
	    expect 201 -- POST /v1/channels/lobby "$ta" "$("$TK" post "$key" lobby alice 1001 two)")
	[ -n "$lag" ]
	echo "channel poll on B woke $lag ms after the post through A" >&2
	[ "$lag" -lt "$(slow 1000)" ]
	[ "$("$TK" get posts.0.post.text <"$BATS_TEST_TMPDIR/poll")" = two ]
	! "$TK" get posts.1 <"$BATS_TEST_TMPDIR/poll" || false
}

# revoked_on NAME TOKEN: TOKEN gets 401 on relay NAME within 1 s.
revoked_on() {
	local i got

	at "$1"
	for i in $(seq 20); do
		got=$(call GET /v1/keys "$2")
		[ "$got" = 401 ] && return 0
		sleep 0.05
	done
	echo "token still accepted on $1 1 s after its revocation: $got" >&2
	return 1
}

@test "logout and account deletion on A revoke the tokens cached on B at once" {
	up A
	up B
	at A
	register alice
	register bob
	t1=$(login alice)
	t2=$(login alice)
	t3=$(login alice)
	tb=$(login bob)
	# every token just used on B, so in B's token cache
	at B
	for t in "$t1" "$t2" "$t3" "$tb"; do expect 200 -- GET /v1/keys "$t"; done
	at A
	expect 204 -- DELETE /v1/sessions/current "$t1"
	revoked_on B "$t1"
	at B
	expect 200 -- GET /v1/keys "$t2"
	at A
	expect 204 -- DELETE /v1/accounts/me "$t2" '{"password":"pw-alice-secret"}'
	revoked_on B "$t2"
	# every session of the account, not only the one used
	revoked_on B "$t3"
	at B
	expect 200 -- GET /v1/keys "$tb"
	expect 404 unknown_user -- GET /v1/users/alice "$tb"
	# and from B to A
	at A
	expect 200 -- GET /v1/keys "$tb"
	at B
	expect 204 -- DELETE /v1/sessions/current "$tb"
	revoked_on A "$tb"
}

@test "prekey race across relays: 50 bundle fetches through A and B for 10 OPKs hand out exactly 10; 40 for 40 leave none out" {
	up A --no-rate-limits
	up B --no-rate-limits
	at A
	register alice 10
	register bob
	ta=$(login alice)
	tb=$(login bob)
	d=$BATS_TEST_TMPDIR/race
	# race NAME N: N bundle fetches at once, the first half through A, the
	# rest through B; the OPK ids handed out (or null) in d/NAME.{A,B}
	race() {
		local name=$1 n=$2 half=$(($2 / 2)) fa fb f

		mkdir "$d/$name"
		fetch() {	# fetch RELAY FIRST LAST
			seq "$2" "$3" | xargs -P 25 -I{} curl -s -o "$d/$name/{}" \
			    -w '%{http_code}\n' -X POST \
			    -H "Authorization: Bearer $tb" "$1/v1/users/alice/bundle"
		}
		fetch "$URL_A" 1 "$half" >"$d/$name.codes.A" &
		fa=$!
		fetch "$URL_B" $((half + 1)) "$n" >"$d/$name.codes.B" &
		fb=$!
		wait "$fa"
		wait "$fb"
		[ "$(cat "$d/$name".codes.? | grep -c '^200$')" = "$n" ] || return 1
		for f in $(seq "$half"); do
			"$TK" get opk.id <"$d/$name/$f" || echo null
		done >"$d/$name.A"
		for f in $(seq $((half + 1)) "$n"); do
			"$TK" get opk.id <"$d/$name/$f" || echo null
		done >"$d/$name.B"
		echo "$name: $(grep -vc null "$d/$name.A") OPKs through A," \
		    "$(grep -vc null "$d/$name.B") through B" >&2
	}
	mkdir "$d"
	race first 50
	ids=$(cat "$d"/first.?)
	[ "$(grep -vc null <<<"$ids")" = 10 ]
	[ "$(grep -v null <<<"$ids" | sort -u | wc -l)" = 10 ]
	[ "$(grep -c null <<<"$ids")" = 40 ]
	[ "$(db_query "select (select count(*) from opks), (select count(*) from opks_used)")" = "0 10" ]
	# as many fetches as OPKs: none is refused while another is left
	expect 204 -- PUT /v1/keys "$ta" "$("$TK" keys "$BATS_TEST_TMPDIR/alice.key" - 40 11)"
	race second 40
	ids=$(cat "$d"/second.?)
	[ "$(grep -v null <<<"$ids" | sort -n | tr '\n' ' ')" = "$(seq 11 50 | tr '\n' ' ')" ]
	# both relays handed some out
	grep -qv null "$d/second.A"
	grep -qv null "$d/second.B"
	[ "$(db_query "select (select count(*) from opks), (select count(*) from opks_used)")" = "0 50" ]
}

# burst FILE URL... : POST FILE's JSON body to /v1/messages as alice ($ta)
# on 20 connections to each URL, opened first and sent at one moment;
# "STATUS BODY" per request.
burst() {
	"$PY" - "$ta" "$@" <<'PY'
import http.client, sys, threading
tok, body, urls = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3:]
conns = [http.client.HTTPConnection(u.split("//")[1], timeout=30)
         for u in urls for _ in range(20)]
for c in conns:
    c.connect()
go = threading.Barrier(len(conns))
out = [None] * len(conns)
def send(i):
    go.wait()
    conns[i].request("POST", "/v1/messages", body, {
        "Authorization": "Bearer " + tok,
        "Content-Type": "application/json"})
    r = conns[i].getresponse()
    out[i] = "%d %s" % (r.status, r.read().decode())
ts = [threading.Thread(target=send, args=(i,)) for i in range(len(conns))]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("\n".join(out))
PY
}

@test "idempotency across relays: one (sender, client_id) posted 40 times at once through A and B is one message" {
	up A --no-rate-limits
	up B --no-rate-limits
	at A
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	d=$BATS_TEST_TMPDIR/same
	mkdir "$d"
	for k in $(seq 10); do
		echo "{\"messages\":[$(entry bob "$k" "{\"v\":1,\"k\":$k}")]}" >"$d/body"
		burst "$d/body" "$URL_A" "$URL_B" >"$d/out.$k"
		sort "$d/out.$k" | uniq -c >&2
		# one request stored it, the 39 others were repeats with its id
		[ "$(grep -c '^201 ' "$d/out.$k")" = 1 ]
		[ "$(grep -c '^200 ' "$d/out.$k")" = 39 ]
		cut -d' ' -f2 "$d/out.$k" | sort -u >"$d/ids.$k"
		[ "$(wc -l <"$d/ids.$k")" = 1 ]
	done
	[ "$(cat "$d"/ids.* | sort -u | wc -l)" = 10 ]
	at B
	expect 200 -- GET "/v1/messages?limit=500" "$tb"
	for k in $(seq 10); do
		[ "$(jget "messages.$((k - 1)).envelope.k")" = "$k" ]
		[ "{\"ids\":[\"$(jget "messages.$((k - 1)).id")\"]}" = "$(cat "$d/ids.$k")" ]
	done
	! jget messages.10 || false
	[ "$(db_query "select (select count(*) from messages), (select count(*) from sent), (select sum(queued) from mailbox m join users u on u.id = m.uid where u.name = 'bob')")" = "10 10 10" ]
}

@test "channel order across relays: a reader paging through A and B during 200 concurrent posts sees each once, in order" {
	up A --no-rate-limits
	up B --no-rate-limits
	at A
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	key=$BATS_TEST_TMPDIR/alice.key
	d=$BATS_TEST_TMPDIR/posts
	mkdir "$d"
	n=200
	for i in $(seq "$n"); do
		"$TK" post "$key" lobby alice "$((1000 + i))" "p$i" >"$d/body.$i"
	done
	# the reader: pages with after= from the last id it saw, through A and
	# B in turn, until the posts are all answered and a page comes back
	# empty; it fails on an id not above the cursor
	"$PY" - "$URL_A" "$URL_B" "$tb" "$d/done" >"$d/read" 2>"$d/read.err" <<'PY' &
import http.client, json, os, sys
urls, tok, done = sys.argv[1:3], sys.argv[3], sys.argv[4]
conns = [http.client.HTTPConnection(u.split("//")[1]) for u in urls]
cursor, reads = 0, 0
while True:
    finished = os.path.exists(done)
    c = conns[reads % 2]
    reads += 1
    c.request("GET", "/v1/channels/lobby?after=%d&limit=20" % cursor,
              headers={"Authorization": "Bearer " + tok})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit("status %d: %r" % (r.status, body))
    posts = json.loads(body)["posts"]
    for p in posts:
        i = int(p["id"])
        if i <= cursor:
            sys.exit("id %d after cursor %d" % (i, cursor))
        cursor = i
        print(i, p["post"]["text"], flush=True)
    if not posts and finished:
        break
sys.stderr.write("%d reads\n" % reads)
PY
	reader=$!
	post() {	# post RELAY FIRST LAST
		seq "$2" "$3" | xargs -P 4 -I{} curl -s -o "$d/ans.{}" \
		    -w '{} %{http_code}\n' -H "Authorization: Bearer $ta" \
		    -H 'Content-Type: application/json' \
		    --data-binary "@$d/body.{}" "$1/v1/channels/lobby"
	}
	post "$URL_A" 1 $((n / 2)) >"$d/codes.A" &
	pa=$!
	post "$URL_B" $((n / 2 + 1)) "$n" >"$d/codes.B" &
	pb=$!
	wait "$pa"
	wait "$pb"
	touch "$d/done"
	wait "$reader" || { cat "$d/read.err" >&2; false; }
	cat "$d/read.err" >&2
	[ "$(cat "$d"/codes.? | grep -c ' 201$')" = "$n" ]
	"$PY" -c 'import json, sys
for i in range(1, int(sys.argv[2]) + 1):
    print(json.load(open("%s/ans.%d" % (sys.argv[1], i)))["id"], "p%d" % i)' \
	    "$d" "$n" | sort -n >"$d/posted"
	# every post read once, with the text its answer's id names
	diff "$d/posted" "$d/read"
	# a second reader through B alone agrees
	at B
	expect 200 -- GET "/v1/channels/lobby?limit=500" "$tb"
	[ "$(jget posts.$((n - 1)).id)" = "$(tail -n 1 "$d/posted" | cut -d' ' -f1)" ]
}

@test "a relay killed by SIGKILL mid-load: every message sent is fetched exactly once" {
	up A --no-rate-limits
	up B --no-rate-limits
	at A
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	d=$BATS_TEST_TMPDIR/load
	mkdir "$d"
	n=300
	w=6
	ik=$(toik bob)
	for i in $(seq "$n"); do
		printf '{"messages":[{"to":"bob","to_ik":"%s","client_id":"%032x","envelope":{"v":1,"n":%d}}]}' \
		    "$ik" "$i" "$i" >"$d/body.$i"
	done
	# worker K sends messages K, K+w, ... to its relay (A for even K), on
	# any failure again (same client_id) to the other, which it then keeps;
	# "N STATUS" per message, the answer in ans.N
	worker() {
		local k=$1 i url=$URL_B other=$URL_A code try t

		if [ $((k % 2)) = 0 ]; then url=$URL_A; other=$URL_B; fi
		for ((i = k; i <= n; i += w)); do
			for ((try = 0; try < 50; try++)); do
				code=$(curl -s -o "$d/ans.$i" -w '%{http_code}' \
				    --max-time 20 -H "Authorization: Bearer $ta" \
				    -H 'Content-Type: application/json' \
				    --data-binary "@$d/body.$i" "$url/v1/messages") || :
				case $code in
				200|201) break ;;
				esac
				echo "$i $url $code" >>"$d/retries"
				t=$url; url=$other; other=$t
				sleep 0.05
			done
			echo "$i $code" >>"$d/sent.$k"
		done
	}
	t0=$(now_ms)
	pids=()
	for k in $(seq "$w"); do
		worker "$k" &
		pids+=($!)
	done
	# kill A once a third of the messages are answered (60 s at most)
	for ((j = 0; j < 3000; j++)); do
		[ "$(cat "$d"/sent.* 2>/dev/null | wc -l)" -lt $((n / 3)) ] || break
		sleep 0.02
	done
	{ kill -9 "$PID_A"; wait "$PID_A"; } 2>/dev/null || true
	answered=$(cat "$d"/sent.* | wc -l)
	for p in "${pids[@]}"; do wait "$p"; done
	echo "load $(($(now_ms) - t0)) ms" >&2
	echo "A killed after $answered answers; $(wc -l <"$d/retries" 2>/dev/null || echo 0) retries" >&2
	# the kill fell in the middle of the load, and the load went on
	[ "$answered" -ge $((n / 3)) ] && [ "$answered" -lt "$n" ]
	[ -s "$d/retries" ]
	# every message answered 200 or 201 in the end
	cat "$d"/sent.* | sort -n >"$d/sent"
	[ "$(wc -l <"$d/sent")" = "$n" ]
	! grep -v ' 20[01]$' "$d/sent" || false
	# fetch everything through B: each message once, under its answer's id
	at B
	expect 200 -- GET "/v1/messages?limit=500" "$tb"
	"$PY" - "$d" "$n" "$OUT" <<'PY'
import json, sys
d, n, out = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
sent = {i: json.load(open("%s/ans.%d" % (d, i)))["ids"][0]
        for i in range(1, n + 1)}
got = [(m["envelope"]["n"], m["id"]) for m in out["messages"]]
assert not out["more"]
seen = {}
for i, mid in got:
    if i in seen:
        sys.exit("message %d fetched twice: ids %s and %s" % (i, seen[i], mid))
    seen[i] = mid
lost = sorted(set(sent) - set(seen))
if lost:
    sys.exit("%d answered but never fetched: %s" % (len(lost), lost[:20]))
wrong = [i for i in sent if sent[i] != seen[i]]
if wrong:
    sys.exit("fetched under another id than answered: %s" % wrong[:20])
assert len(got) == n, len(got)
PY
	[ "$(db_query "select count(*) from messages")" = "$n" ]
}

@test "PostgreSQL restarting: 503 with Retry-After at once, health 200; then the relays recover on their own, wake-ups too" {
	up A --no-rate-limits
	up B --no-rate-limits
	at A
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	listeners 2
	pg_stop
	for r in A B; do
		at "$r"
		for req in "POST /v1/messages $ta {\"messages\":[$(entry bob 2)]}" \
		    "GET /v1/messages $tb" "GET /v1/messages?wait=5 $tb" \
		    "POST /v1/sessions - {\"user\":\"bob\",\"password\":\"pw-bob-secret\"}" \
		    "GET /v1/users/alice $tb"; do
			read -r m p t b <<<"$req"
			[ "$t" = - ] && t=
			t0=$(now_ms)
			if [ -n "$b" ]; then
				expect 503 unavailable -- "$m" "$p" "$t" "$b"
			else
				expect 503 unavailable -- "$m" "$p" "$t"
			fi
			took=$(($(now_ms) - t0))
			echo "$r: $m $p: 503 in $took ms, Retry-After $(header Retry-After)" >&2
			[ "$took" -lt 6000 ]
			[ "$(header Retry-After)" -ge 1 ]
		done
		expect 200 -- GET /v1/health
	done
	pg_start
	t0=$(now_ms)
	for r in A B; do
		at "$r"
		for i in $(seq 100); do
			code=$(call POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2)]}")
			[ "$code" = 503 ] || break
			sleep 0.1
		done
		[ "$code" = 201 ] || [ "$code" = 200 ] ||
		    { echo "$r: $code $(cat "$OUT")" >&2; false; }
		echo "$r: sends again $(($(now_ms) - t0)) ms after the restart" >&2
	done
	[ $(($(now_ms) - t0)) -lt 8000 ]
	kill -0 "$PID_A"
	kill -0 "$PID_B"
	# both listeners are back: a long poll on B wakes on a send through A
	listeners 2
	echo "listening again $(($(now_ms) - t0)) ms after the restart" >&2
	at A
	expect 200 -- GET "/v1/messages?limit=500" "$tb"
	ids=$(jget messages | "$PY" -c 'import json, sys; print(",".join("\"%s\"" % m["id"] for m in json.load(sys.stdin)))')
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[$ids]}"
	lag=$(poll_lag B "/v1/messages?wait=10" "$tb" \
	    expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 3)]}")
	[ -n "$lag" ]
	echo "poll on B woke $lag ms after the send through A" >&2
	[ "$lag" -lt "$(slow 1000)" ]
	[ "$("$TK" get messages.0.from <"$BATS_TEST_TMPDIR/poll")" = alice ]
}

@test "two relays starting at once on an empty database: both migrate safely, the schema made once" {
	for round in 1 2 3; do
		[ "$round" = 1 ] || RELAY_DB=$(pg_fresh_db)
		port_a=$(free_port)
		port_b=$(free_port)
		st-relay -l "127.0.0.1:$port_a" -d "$RELAY_DB" --blob-dir "$BLOBS" \
		    --argon2-m 64 --argon2-t 1 2>>"$BATS_TEST_TMPDIR/relay-A.log" &
		PID_A=$!
		st-relay -l "127.0.0.1:$port_b" -d "$RELAY_DB" --blob-dir "$BLOBS" \
		    --argon2-m 64 --argon2-t 1 2>>"$BATS_TEST_TMPDIR/relay-B.log" &
		PID_B=$!
		PIDS+=("$PID_A" "$PID_B")
		URL_A=http://127.0.0.1:$port_a
		URL_B=http://127.0.0.1:$port_b
		healthy A || { cat "$BATS_TEST_TMPDIR"/relay-?.log >&2; false; }
		healthy B || { cat "$BATS_TEST_TMPDIR"/relay-?.log >&2; false; }
		[ "$(db_query "select count(*), max(version) from st_schema")" = "1 1" ]
		[ "$(db_query "select count(*) from pg_tables where schemaname = 'public'")" = 11 ]
		at A
		register "u$round"
		at B
		login "u$round" >/dev/null
		kill "$PID_A" "$PID_B"
		wait "$PID_A" "$PID_B"
	done
}

# ---- the command line ----

@test "-d: a password in the URL is refused (64) without echoing it; a URL needs --blob-dir (64)" {
	for url in "postgresql://st:Sekr1tPw@/x?host=$PG_DIR" \
	    "postgres://st:Sekr1tPw@localhost/x" \
	    "postgresql://st@/x?host=$PG_DIR&password=Sekr1tPw"; do
		run st-relay -l 127.0.0.1:1 -d "$url" --blob-dir "$BLOBS"
		echo "$output" >&2
		[ "$status" -eq 64 ]
		[ "${#lines[@]}" -eq 1 ]
		[[ "$output" == *password* ]]
		[[ "$output" != *Sekr1tPw* ]]
	done
	run st-relay -l 127.0.0.1:1 -d "$RELAY_DB"
	echo "$output" >&2
	[ "$status" -eq 64 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *--blob-dir* ]]
	# nothing was made in the database
	[ "$(db_query "select count(*) from pg_tables where schemaname = 'public'")" = 0 ]
}

@test "a server that stops answering (SIGSTOP): 503 within --db-timeout and its 5 s margin, not a hang; served again after SIGCONT" {
	up A --db-timeout 2
	at A
	register alice
	register bob
	ta=$(login alice)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	main=$(head -n 1 "$PG_DIR/data/postmaster.pid")
	pids="$main $(pgrep -P "$main" | tr '\n' ' ')"
	# shellcheck disable=SC2086
	kill -STOP $pids
	t0=$(now_ms)
	code=$(call POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2)]}")
	took=$(($(now_ms) - t0))
	# shellcheck disable=SC2086
	kill -CONT $pids
	[ "$code" = 503 ]
	[ "$(header Retry-After)" -ge 1 ]
	# 2 s of statement time and 5 s of margin, then given up: not forever
	[ "$took" -ge 1500 ] && [ "$took" -lt 15000 ]
	grep -q 'database: no answer within 7000 ms' "$BATS_TEST_TMPDIR/relay-A.log"
	# the silent connection was dropped: the resend goes through
	for _ in $(seq 100); do
		[ "$(call POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2)]}")" = 201 ] && break
		sleep 0.1
	done
	# and a resend of it is a repeat
	expect 200 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2)]}"
	tb=$(login bob)
	expect 200 -- GET /v1/messages "$tb"
	[ -n "$(jget messages.1.id)" ]
	! jget messages.2 || false
}
