#!/usr/bin/env bats
# st-relay.bats - a live relay driven with curl: every endpoint of SPEC §7,
# its errors, and the relay rows of shared/HOSTILE.md.

load relay_helper

# ---- command line ----

@test "st-relay -h, -V and bad flags" {
	run st-relay -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: st-relay"* ]]
	run st-relay -V
	[ "$status" -eq 0 ]
	[[ "$output" == "st-relay "* ]]
	run st-relay --no-such-flag
	[ "$status" -eq 64 ]
	run st-relay --rate-bundle 20
	[ "$status" -eq 64 ]
	run st-relay --max-blob 1X
	[ "$status" -eq 64 ]
	# a usage error opens nothing: no database in the working directory
	cd "$BATS_TEST_TMPDIR"
	run st-relay -l nonsense
	[ "$status" -eq 64 ]
	[[ "$output" == *"bad listen address nonsense"* ]]
	run st-relay -l 127.0.0.1:0 --tls-cert "$BATS_TEST_TMPDIR/none.pem" \
	    --tls-key "$BATS_TEST_TMPDIR/none.pem"
	[ "$status" -ne 0 ]
	[[ "$output" == *"none.pem"* ]]
	run st-relay -l 127.0.0.1:0 --tls-cert x.pem
	[ "$status" -eq 64 ]
	[ -z "$(ls -A "$BATS_TEST_TMPDIR")" ]
}

@test "health, unknown routes, 405 with Allow, HEAD" {
	relay
	expect 200 -- GET /v1/health
	[ "$(jget ok)" = true ]
	[ -n "$(jget version)" ]
	expect 404 not_found -- GET /v1/nothing
	expect 404 not_found -- GET /v1/health/
	expect 405 method_not_allowed -- DELETE /v1/health
	[ "$(header Allow)" = "GET,HEAD" ]
	expect 405 -- FOO /v1/messages
	[ "$(header Allow)" = "GET,HEAD,POST" ]
	run curl -s -I "$RELAY_URL/v1/health"
	[[ "$output" == "HTTP/1.1 200"* ]]
}

@test "TLS through libmicrohttpd" {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$BATS_TEST_TMPDIR/k.pem" -out "$BATS_TEST_TMPDIR/c.pem" \
	    -days 1 -subj /CN=localhost 2>/dev/null
	port=$(free_port)
	st-relay -l "127.0.0.1:$port" -d "$BATS_TEST_TMPDIR/t.db" \
	    --tls-cert "$BATS_TEST_TMPDIR/c.pem" \
	    --tls-key "$BATS_TEST_TMPDIR/k.pem" 2>"$BATS_TEST_TMPDIR/tls.log" &
	RELAY_PID=$!
	for _ in $(seq 100); do
		curl -skf "https://127.0.0.1:$port/v1/health" >/dev/null && break
		sleep 0.05
	done
	run curl -sk "https://127.0.0.1:$port/v1/health"
	[[ "$output" == *'"ok":true'* ]]
	run curl -s "http://127.0.0.1:$port/v1/health"
	[[ "$output" != *'"ok":true'* ]]
	run st-relay -l 127.0.0.1:1 -d "$BATS_TEST_TMPDIR/u.db" --tls-cert x
	[ "$status" -eq 64 ]
}

# ---- accounts and sessions ----

@test "register, log in, log out" {
	relay
	register alice 5
	[ "$(jget user)" = alice ]
	[ "$(jget created)" -gt 0 ]
	expect 409 user_taken -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/alice.reg"
	tok=$(login alice)
	[ ${#tok} -eq 43 ]
	[ "$(jget expires)" -gt "$(now_ms)" ]
	expect 200 -- GET /v1/keys "$tok"
	[ "$(jget opks)" = 5 ]
	[ "$(jget spk_id)" = 1 ]
	tok2=$(login alice)
	expect 200 -- GET /v1/keys "$tok2"
	expect 204 -- DELETE /v1/sessions/current "$tok"
	expect 401 unauthorized -- GET /v1/keys "$tok"
	[ "$(header WWW-Authenticate)" = Bearer ]
	expect 401 unauthorized -- DELETE /v1/sessions/current "$tok"
	# the other session lives on
	expect 200 -- GET /v1/keys "$tok2"
}

@test "bad credentials: same answer for a wrong password and an unknown user" {
	relay
	register alice
	expect 401 bad_credentials -- POST /v1/sessions "" \
	    '{"user":"alice","password":"wrong-password"}'
	known=$(cat "$OUT")
	expect 401 bad_credentials -- POST /v1/sessions "" \
	    '{"user":"nobody","password":"wrong-password"}'
	[ "$(cat "$OUT")" = "$known" ]
	expect 400 bad_user -- POST /v1/sessions "" '{"user":"Alice","password":"x"}'
	expect 400 bad_request -- POST /v1/sessions "" '{"user":"alice"}'
}

@test "registration validates names, passwords and every key" {
	relay --no-rate-limits
	"$TK" register alice secret-pw "$BATS_TEST_TMPDIR/a.key" 2 >"$BATS_TEST_TMPDIR/a.json"
	# each case: STATUS [ERROR] | PYTHON changing the valid body d; one
	# interpreter writes them all to case.N (and case.N.want)
	"$PY" - "$BATS_TEST_TMPDIR/a.json" "$BATS_TEST_TMPDIR/case" <<'PY'
import base64, json, sys
b64 = lambda n: base64.urlsafe_b64encode(bytes(n)).rstrip(b"=").decode()
A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
cases = [("400 | d['user'] = %s" % u) for u in (
    "''", "'a' * 1024", "'..'", "'a/b'", "'Alice'", "'a\\x07b'",
    "'a\\u202eb'", "'-a'", "'a b'", "'a' * 33", "7")] + [
    "400 bad_password | d['password'] = 'short'",
    "400 bad_password | d['password'] = 'x' * 1025",
] + [("400 bad_request | d['spk']['id'] = json.loads('%s')" % i)
     for i in ("-1", "4294967296", '"12"', "1.5", "null")] + [
    # garbage, padding, non-canonical unused bits, 31-byte key, 63-byte signature
    "422 bad_encoding | d['identity']['x25519'] = '!!!'",
    "422 bad_encoding | d['identity']['x25519'] += '='",
    "422 bad_encoding | s = d['identity']['x25519']; d['identity']['x25519'] = s[:-1] + A[A.index(s[-1]) | 1]",
    "422 bad_encoding | d['identity']['x25519'] = b64(31)",
    "422 bad_encoding | d['identity']['bind'] = b64(63)",
    "422 bad_encoding | d['spk']['pub'] = b64(33)",
    "422 bad_encoding | d['opks'][0]['pub'] = d['opks'][0]['pub'][:-1]",
    "422 too_many_prekeys | d['opks'] = [d['opks'][0]] * 101",
    "409 id_reused | d['opks'][1]['id'] = d['opks'][0]['id']",
    "400 bad_request | del d['identity']",
]
for n, c in enumerate(cases):
    want, code = c.split(" | ", 1)
    d = json.load(open(sys.argv[1]))
    exec(code)
    open("%s.%d" % (sys.argv[2], n), "w").write(json.dumps(d))
    open("%s.%d.want" % (sys.argv[2], n), "w").write(want + "\n")
PY
	n=0
	while [ -e "$BATS_TEST_TMPDIR/case.$n" ]; do
		read -r status err <"$BATS_TEST_TMPDIR/case.$n.want"
		expect "$status" $err -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/case.$n"
		n=$((n + 1))
	done
	[ "$n" -eq 28 ]
	sed 's/"id": 1,/"id": 1e400,/' "$BATS_TEST_TMPDIR/case.0" | sed 's/"user": ""/"user": "alice"/' >"$BATS_TEST_TMPDIR/e400"
	grep -q 1e400 "$BATS_TEST_TMPDIR/e400"
	expect 400 bad_json -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/e400"
	"$TK" register --bad-bind bob secret-pw "$BATS_TEST_TMPDIR/b.key" >"$BATS_TEST_TMPDIR/b.json"
	expect 422 bad_signature -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/b.json"
	"$TK" register --bad-spk bob secret-pw "$BATS_TEST_TMPDIR/b.key" >"$BATS_TEST_TMPDIR/b.json"
	expect 422 bad_signature -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/b.json"
	# nothing of the refused attempts was stored
	expect 201 -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/a.json"
	expect 201 -- POST /v1/sessions "" '{"user":"alice","password":"secret-pw"}'
	tok=$(jget token)
	expect 200 -- GET /v1/users "$tok"
	[ "$(jget users.0.user)" = alice ]
	! jget users.1 || false
}

@test "JSON: truncated, deep, duplicate keys, bad UTF-8, NUL, surrogates" {
	relay --no-rate-limits
	expect 400 bad_json -- POST /v1/sessions "" '{"user":"alice","pass'
	expect 400 bad_json -- POST /v1/sessions "" "$(printf '%.0s[' $(seq 5000))"
	expect 400 bad_json -- POST /v1/sessions "" '{"user":"a","user":"b","password":"p"}'
	expect 400 bad_json -- POST /v1/sessions "" "$(printf '{"user":"a\xc0\xaf","password":"p"}')"
	expect 400 bad_json -- POST /v1/sessions "" "$(printf '{"user":"a\xff","password":"p"}')"
	expect 400 bad_json -- POST /v1/sessions "" '{"user":"a\u0000b","password":"p"}'
	expect 400 bad_json -- POST /v1/sessions "" '{"user":"a\ud800","password":"p"}'
	expect 400 bad_json -- POST /v1/sessions "" '["user"]'
	expect 400 bad_json -- POST /v1/sessions "" ''
	expect 400 bad_json -- POST /v1/sessions "" '{"user":"a"} x'
}

@test "JSON: truncated and 100,000-deep bodies store nothing" {
	relay --no-rate-limits
	register bob
	tb=$(login bob)
	"$TK" register alice secret-pw "$BATS_TEST_TMPDIR/a.key" 3 >"$BATS_TEST_TMPDIR/a.json"
	head -c 300 "$BATS_TEST_TMPDIR/a.json" >"$BATS_TEST_TMPDIR/cut.json"
	expect 400 bad_json -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/cut.json"
	expect 404 unknown_user -- GET /v1/users/alice "$tb"
	e=$(entry bob 1)
	expect 400 bad_json -- POST /v1/messages "$tb" "{\"messages\":[$e,${e%?}"
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
	# deep nesting: refused by the pre-scan (the messages body may be 1 MiB)
	deep=$BATS_TEST_TMPDIR/deep.json
	{ printf '{"messages":'; head -c 100000 /dev/zero | tr '\0' '['; } >"$deep"
	expect 400 bad_json -- POST /v1/messages "$tb" "@$deep"
	{ printf '{"messages":[{"to":"bob","envelope":'; head -c 100000 /dev/zero | tr '\0' '{' | sed 's/{/{"a":/g'; } >"$deep"
	expect 400 bad_json -- POST /v1/messages "$tb" "@$deep"
	expect 200 -- GET /v1/health
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
}

@test "delete the account: password checked; keys, mailbox and tokens gone" {
	relay
	register alice 3
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$tb" "{\"messages\":[$(entry alice 1)]}"
	ta2=$(login alice)
	expect 401 bad_credentials -- DELETE /v1/accounts/me "$ta" '{"password":"wrong-password"}'
	expect 400 bad_request -- DELETE /v1/accounts/me "$ta" '{}'
	expect 400 bad_json -- DELETE /v1/accounts/me "$ta" '{"password":'
	expect 401 unauthorized -- DELETE /v1/accounts/me "" '{"password":"pw-alice-secret"}'
	expect 200 -- GET /v1/keys "$ta"
	# both tokens just used (and so in the relay's token cache)
	expect 200 -- GET /v1/keys "$ta2"
	expect 204 -- DELETE /v1/accounts/me "$ta" '{"password":"pw-alice-secret"}'
	expect 401 -- GET /v1/messages "$ta"
	# every session of the account, not only the one used
	expect 401 unauthorized -- GET /v1/keys "$ta2"
	expect 404 unknown_user -- GET /v1/users/alice "$tb"
	expect 404 unknown_user -- POST /v1/users/alice/bundle "$tb"
	[ "$(db_query "select (select count(*) from messages), (select count(*) from opks), (select count(*) from sessions)")" = "0 0 1" ]
	# the name is free again
	register alice
}

@test "expired, revoked and malformed tokens get 401 at once; query tokens are ignored" {
	relay --session-ttl 1s
	register alice
	tok=$(login alice)
	expect 200 -- GET /v1/keys "$tok"
	expect 401 -- GET "/v1/keys?token=$tok&access_token=$tok"
	expect 401 -- GET /v1/keys "${tok%?}"
	expect 401 -- GET /v1/keys "${tok}A"
	expect 401 -- GET /v1/keys "$(echo "$tok" | tr 'a-z' 'A-Z')"
	run curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $tok" "$RELAY_URL/v1/keys"
	[ "$output" = 401 ]
	sleep 1.2
	expect 401 unauthorized -- GET /v1/keys "$tok"
	! grep -qF "$tok" "$BATS_TEST_TMPDIR/relay.log" || false
	! grep -q "pw-alice-secret" "$BATS_TEST_TMPDIR/relay.log" || false
}

@test "failed logins: 429 per user name and per IP; an empty bucket refuses the right password" {
	relay --rate-login-user 3:1/m --rate-login-ip 6:1/m
	register alice
	for i in 1 2 3; do
		expect 401 bad_credentials -- POST /v1/sessions "" '{"user":"alice","password":"guess-guess"}'
	done
	expect 429 rate_limited -- POST /v1/sessions "" '{"user":"alice","password":"guess-guess"}'
	[ "$(header Retry-After)" -ge 1 ]
	expect 429 rate_limited -- POST /v1/sessions "" '{"user":"alice","password":"pw-alice-secret"}'
	# across many names from one address
	for u in u1 u2 u3; do
		expect 401 -- POST /v1/sessions "" "{\"user\":\"$u\",\"password\":\"guess-guess\"}"
	done
	expect 429 rate_limited -- POST /v1/sessions "" '{"user":"u4","password":"guess-guess"}'
}

# xlogin XFF: a failed login for u1 carrying X-Forwarded-For: XFF; prints
# the status
xlogin() {
	curl -s -o /dev/null -w '%{http_code}' -H "X-Forwarded-For: $1" \
	    -H 'Content-Type: application/json' \
	    --data-binary '{"user":"u1","password":"guess-guess"}' \
	    "$RELAY_URL/v1/sessions"
}

@test "--trust-proxy: per-IP limits fall on the last X-Forwarded-For address, only from that proxy" {
	relay --rate-login-ip 2:1/h --rate-login-user 1000:1/s --trust-proxy 127.0.0.1
	[ "$(xlogin 10.0.0.1)" = 401 ]
	[ "$(xlogin 10.0.0.1)" = 401 ]
	[ "$(xlogin 10.0.0.1)" = 429 ]
	# the proxy appends the real address: a client's own claim before it
	# changes nothing
	[ "$(xlogin '10.0.0.2, 10.0.0.1')" = 429 ]
	[ "$(xlogin '10.0.0.1, 10.0.0.2')" = 401 ]
	[ "$(xlogin ' 2001:db8::7 ')" = 401 ]
	[ "$(xlogin '2001:DB8:0::7')" = 401 ]
	[ "$(xlogin '2001:db8::7')" = 429 ]
	# no address at the end: the proxy's own bucket (10.0.0.3 and 10.0.0.9
	# would be fresh ones)
	[ "$(xlogin not-an-ip)" = 401 ]
	[ "$(xlogin '10.0.0.3,')" = 401 ]
	for x in '10.0.0.3 10.0.0.9' 999.1.1.1 '10.0.0.9;' ''; do
		[ "$(xlogin "$x")" = 429 ]
	done
	stop_relay

	# without the flag (or from another address) the header is ignored
	relay --rate-login-ip 2:1/h --rate-login-user 1000:1/s --trust-proxy 192.0.2.1
	[ "$(xlogin 10.0.0.1)" = 401 ]
	[ "$(xlogin 10.0.0.2)" = 401 ]
	[ "$(xlogin 10.0.0.3)" = 429 ]
	stop_relay
	run st-relay --trust-proxy localhost -d "$BATS_TEST_TMPDIR/x.db"
	[ "$status" -eq 64 ]
	[[ "$output" == *"--trust-proxy: 'localhost' is not an IP address"* ]]
}

@test "login for an unknown user takes as long as for a known one (dummy verify)" {
	start_relay	# the real Argon2 cost
	register alice
	t() {	# t USER: seconds a failed login takes
		curl -s -o "$OUT" -w '%{time_total}\n' -H 'Content-Type: application/json' \
		    --data-binary "{\"user\":\"$1\",\"password\":\"wrong-password\"}" \
		    "$RELAY_URL/v1/sessions"
	}
	for i in 1 2 3 4; do
		t alice >>"$BATS_TEST_TMPDIR/known"
		t nobody$i >>"$BATS_TEST_TMPDIR/unknown"
	done
	run awk 'NR == FNR { k += $1; next } { u += $1 }
	    END { printf "known %.3f s, unknown %.3f s\n", k, u; exit !(u > k / 2 && u < k * 2 && k > 0.02) }' \
	    "$BATS_TEST_TMPDIR/known" "$BATS_TEST_TMPDIR/unknown"
	echo "$output" >&2
	[ "$status" -eq 0 ]
}

@test "a password flood is bounded: messages keep flowing, memory bounded" {
	start_relay --rate-login-ip 1000:1/m	# the real Argon2 cost
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	seq 60 | xargs -P 60 -I{} curl -s -o /dev/null -H 'Content-Type: application/json' \
	    --data-binary '{"user":"u{}","password":"guess-guess"}' \
	    "$RELAY_URL/v1/sessions" &
	flood=$!
	for i in 1 2 3; do
		echo "{\"messages\":[$(entry bob "$i")]}" >"$BATS_TEST_TMPDIR/m$i"
	done
	sleep 0.2
	t0=$(now_ms)
	for i in 1 2 3; do
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
		    -H "Authorization: Bearer $ta" -H 'Content-Type: application/json' \
		    --data-binary "@$BATS_TEST_TMPDIR/m$i" "$RELAY_URL/v1/messages"
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
		    -H "Authorization: Bearer $tb" "$RELAY_URL/v1/messages"
	done >"$BATS_TEST_TMPDIR/times"
	busy=0
	kill -0 "$flood" 2>/dev/null && busy=1
	wait "$flood"
	flood_ms=$(($(now_ms) - t0))
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$RELAY_PID/status")
	echo "sends and fetches inside a ${flood_ms} ms login flood:" $(cat "$BATS_TEST_TMPDIR/times") "; VmHWM $hwm kB" >&2
	[ "$busy" = 1 ]
	[ "$(awk '$1 != 201 && $1 != 200' "$BATS_TEST_TMPDIR/times")" = "" ]
	# each answered well inside the flood, not behind it
	[ "$(awk '$2 >= 0.5' "$BATS_TEST_TMPDIR/times")" = "" ]
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages.2.from)" = alice ]
	# Argon2 runs on the worker threads only: two 19 MiB blocks at a time
	asan || [ "$hwm" -lt 131072 ]
}

@test "a successful login is not counted as a failure" {
	relay --rate-login-user 2:1/m
	register alice
	for i in 1 2 3 4; do
		login alice >/dev/null
	done
}

@test "account-creation flood gets 429" {
	relay --rate-accounts 3:1/h
	for u in a1 a2 a3; do
		register $u
	done
	"$TK" register a4 secret-pw "$BATS_TEST_TMPDIR/a4.key" >"$BATS_TEST_TMPDIR/a4.json"
	expect 429 rate_limited -- POST /v1/accounts "" "@$BATS_TEST_TMPDIR/a4.json"
	[ "$(header Retry-After)" -gt 60 ]
}

# ---- the directory and keys ----

@test "users: list, prefix, limit, one user, 404 with user, bad names" {
	relay --no-rate-limits
	for u in alice alfred bob; do register $u; done
	tok=$(login bob)
	expect 401 -- GET /v1/users
	expect 200 -- GET /v1/users "$tok"
	[ "$(jget users.0.user) $(jget users.1.user) $(jget users.2.user)" = "alfred alice bob" ]
	expect 200 -- GET "/v1/users?prefix=al&limit=1" "$tok"
	[ "$(jget users.0.user)" = alfred ]
	! jget users.1 || false
	expect 200 -- GET "/v1/users?prefix=zz" "$tok"
	[ "$(jget users)" = "[]" ]
	for q in limit=0 limit=501 limit=x limit=-1 limit= prefix=A prefix=a%2f; do
		expect 400 bad_request -- GET "/v1/users?$q" "$tok"
	done
	expect 200 -- GET /v1/users/alice "$tok"
	[ "$(jget user)" = alice ]
	[ "$(jget identity)" = "$("$TK" get identity <"$BATS_TEST_TMPDIR/alice.reg")" ]
	[ "$(jget created)" -gt 0 ]
	expect 404 unknown_user -- GET /v1/users/carol "$tok"
	[ "$(jget user)" = carol ]
	expect 400 bad_user -- GET /v1/users/Alice "$tok"
	expect 400 bad_user -- GET /v1/users/%2e%2e "$tok"
	expect 400 bad_user -- GET /v1/users/a%00b "$tok"
	expect 404 -- GET /v1/users/a/b "$tok"
}

@test "keys: append one-time prekeys, rotate the signed prekey, refuse reuse and overflow" {
	relay
	register alice 100
	tok=$(login alice)
	key=$BATS_TEST_TMPDIR/alice.key
	expect 204 -- PUT /v1/keys "$tok" "$("$TK" keys "$key" - 100 101)"
	expect 200 -- GET /v1/keys "$tok"
	[ "$(jget opks)" = 200 ]
	created=$(jget spk_created)
	expect 422 too_many_prekeys -- PUT /v1/keys "$tok" "$("$TK" keys "$key" - 1 201)"
	expect 409 id_reused -- PUT /v1/keys "$tok" "$("$TK" keys "$key" 1 0 0)"
	expect 422 bad_signature -- PUT /v1/keys "$tok" "$("$TK" keys --bad-spk "$key" 2 0 0)"
	expect 204 -- PUT /v1/keys "$tok" "$("$TK" keys "$key" 2 0 0)"
	expect 200 -- GET /v1/keys "$tok"
	[ "$(jget spk_id)" = 2 ]
	[ "$(jget spk_created)" -ge "$created" ]
	[ "$(jget opks)" = 200 ]
	# a bundle takes one; its id can never come back
	register bob
	tb=$(login bob)
	expect 200 -- POST /v1/users/alice/bundle "$tb"
	[ "$(jget opk.id)" = 1 ]
	[ "$(jget spk.id)" = 2 ]
	expect 409 id_reused -- PUT /v1/keys "$tok" "$("$TK" keys "$key" - 1 1)"
	expect 204 -- PUT /v1/keys "$tok" "$("$TK" keys "$key" - 1 300)"
	expect 400 bad_request -- PUT /v1/keys "$tok" '{"opks":[{"id":"5","pub":"x"}]}'
	expect 400 bad_request -- PUT /v1/keys "$tok" '{"spk":7}'
}

@test "keys: another user's name in the body is ignored" {
	relay
	register alice 2
	register bob 2
	tb=$(login bob)
	body=$("$TK" keys "$BATS_TEST_TMPDIR/bob.key" - 3 50 | sed 's/^{/{"user":"alice",/')
	expect 204 -- PUT /v1/keys "$tb" "$body"
	ta=$(login alice)
	expect 200 -- GET /v1/keys "$ta"
	[ "$(jget opks)" = 2 ]
	expect 200 -- GET /v1/keys "$tb"
	[ "$(jget opks)" = 5 ]
}

@test "bundle: identity, signed prekey, one OPK each time, then null" {
	relay
	register alice 2
	register bob
	tb=$(login bob)
	expect 200 -- POST /v1/users/alice/bundle "$tb"
	[ "$(jget user)" = alice ]
	[ "$(jget identity)" = "$("$TK" get identity <"$BATS_TEST_TMPDIR/alice.reg")" ]
	[ "$(jget spk)" = "$("$TK" get spk <"$BATS_TEST_TMPDIR/alice.reg")" ]
	[ "$(jget opk)" = "$("$TK" get opks.0 <"$BATS_TEST_TMPDIR/alice.reg")" ]
	expect 200 -- POST /v1/users/alice/bundle "$tb" '{}'
	[ "$(jget opk.id)" = 2 ]
	expect 200 -- POST /v1/users/alice/bundle "$tb"
	[ "$(jget opk)" = null ]
	[ "$(jget spk.id)" = 1 ]
	ta=$(login alice)
	expect 200 -- GET /v1/keys "$ta"
	[ "$(jget opks)" = 0 ]
	expect 404 unknown_user -- POST /v1/users/carol/bundle "$tb"
	[ "$(jget user)" = carol ]
	expect 400 bad_json -- POST /v1/users/alice/bundle "$tb" '[1'
	expect 401 -- POST /v1/users/alice/bundle
}

@test "bundle flood: 429 per (requester, target); the signed prekey is still served" {
	relay --rate-bundle 3:1/m
	register alice 10
	register bob
	register carol
	tb=$(login bob)
	for i in 1 2 3; do expect 200 -- POST /v1/users/alice/bundle "$tb"; done
	expect 429 rate_limited -- POST /v1/users/alice/bundle "$tb"
	[ "$(header Retry-After)" -ge 1 ]
	tc=$(login carol)
	expect 200 -- POST /v1/users/alice/bundle "$tc"
	[ "$(jget spk.id)" = 1 ]
	[ "$(jget opk.id)" = 4 ]
	# per target too: bob, limited on alice, still gets carol's bundle
	expect 200 -- POST /v1/users/carol/bundle "$tb"
	[ "$(jget user)" = carol ]
}

@test "prekey race: 50 parallel bundle fetches for 10 OPKs hand out exactly 10" {
	relay --no-rate-limits
	register alice 10
	register bob
	tb=$(login bob)
	d=$BATS_TEST_TMPDIR/race
	mkdir "$d"
	seq 50 | xargs -P 50 -I{} curl -s -o "$d/{}" -w '%{http_code}\n' \
	    -X POST -H "Authorization: Bearer $tb" \
	    "$RELAY_URL/v1/users/alice/bundle" >"$BATS_TEST_TMPDIR/codes"
	[ "$(grep -c '^200$' "$BATS_TEST_TMPDIR/codes")" = 50 ]
	for f in "$d"/*; do "$TK" get opk.id <"$f" || echo null; done >"$BATS_TEST_TMPDIR/ids"
	[ "$(grep -vc null "$BATS_TEST_TMPDIR/ids")" = 10 ]
	[ "$(grep -v null "$BATS_TEST_TMPDIR/ids" | sort -u | wc -l)" = 10 ]
	[ "$(grep -c null "$BATS_TEST_TMPDIR/ids")" = 40 ]
}

# ---- messages ----

@test "messages: post, fetch, ack; ids are strings; more" {
	relay
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1),$(entry bob 2 '{"v":1,"n":"two"}')]}"
	id1=$(jget ids.0)
	id2=$(jget ids.1)
	[ -n "$id1" ] && [ "$id1" != "$id2" ]
	expect 200 -- GET "/v1/messages?limit=1" "$tb"
	[ "$(jget messages.0.id)" = "$id1" ]
	[ "$(jget messages.0.from)" = alice ]
	[ "$(jget messages.0.ts)" -gt 0 ]
	[ "$(jget messages.0.envelope)" = '{"v":1,"hdr":"AAAA","ct":"BBBB"}' ]
	[ "$(jget more)" = true ]
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages.1.envelope.n)" = two ]
	[ "$(jget more)" = false ]
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$id1\",\"$id2\"]}"
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
	# unknown, already-acked and malformed ids are ignored
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$id1\",\"999999\",\"x\",\"-1\"]}"
	expect 400 bad_request -- POST /v1/messages/ack "$tb" '{"ids":[1]}'
	expect 400 bad_request -- POST /v1/messages/ack "$tb" '{"ids":"1"}'
	# the sender's own mailbox is empty
	expect 200 -- GET /v1/messages "$ta"
	[ "$(jget messages)" = "[]" ]
}

@test "messages: a resend with the same client_id gets the first id, even after the ack" {
	relay
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	body="{\"messages\":[$(entry bob 7)]}"
	expect 201 -- POST /v1/messages "$ta" "$body"
	id=$(jget ids.0)
	expect 200 -- POST /v1/messages "$ta" "$body"
	[ "$(jget ids.0)" = "$id" ]
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 7),$(entry bob 8)]}"
	[ "$(jget ids.0)" = "$id" ]
	id8=$(jget ids.1)
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages.0.id) $(jget messages.1.id)" = "$id $id8" ]
	! jget messages.2 || false
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$id\",\"$id8\"]}"
	expect 200 -- POST /v1/messages "$ta" "$body"
	[ "$(jget ids.0)" = "$id" ]
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
	# the same client_id from another sender is another message
	register carol
	tc=$(login carol)
	expect 201 -- POST /v1/messages "$tc" "$body"
	[ "$(jget ids.0)" != "$id" ]
}

@test "messages: 404 unknown_user and 409 identity_changed name the user and store nothing" {
	relay
	register alice
	register bob
	register carol
	ta=$(login alice)
	tb=$(login bob)
	expect 404 unknown_user -- POST /v1/messages "$ta" \
	    "{\"messages\":[$(entry bob 1),{\"to\":\"dave\",\"to_ik\":\"$(toik bob)\",\"client_id\":\"$(cid 2)\",\"envelope\":{}}]}"
	[ "$(jget user)" = dave ]
	expect 409 identity_changed -- POST /v1/messages "$ta" \
	    "{\"messages\":[$(entry bob 1),{\"to\":\"carol\",\"to_ik\":\"$(toik bob)\",\"client_id\":\"$(cid 3)\",\"envelope\":{}}]}"
	[ "$(jget user)" = carol ]
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
	# and the refused client_id was not remembered
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
}

@test "messages: malformed entries" {
	relay
	register alice
	register bob
	ta=$(login alice)
	ok=$(entry bob 1)
	expect 400 bad_request -- POST /v1/messages "$ta" '{"messages":[]}'
	expect 400 bad_request -- POST /v1/messages "$ta" '{"messages":{}}'
	many=$(for i in $(seq 101); do printf '%s,' "$(entry bob "$i")"; done)
	expect 400 bad_request -- POST /v1/messages "$ta" "{\"messages\":[${many%,}]}"
	expect 400 bad_request -- POST /v1/messages "$ta" "{\"messages\":[${ok/\"client_id\":\"/\"client_id\":\"A}]}"
	expect 400 bad_request -- POST /v1/messages "$ta" "{\"messages\":[${ok/\"client_id\":\"0/\"client_id\":\"}]}"
	expect 422 bad_encoding -- POST /v1/messages "$ta" "{\"messages\":[${ok/\"to_ik\":\"/\"to_ik\":\"!}]}"
	expect 422 bad_encoding -- POST /v1/messages "$ta" "{\"messages\":[${ok/\"to_ik\":\"?/\"to_ik\":\"}]}"
	expect 400 bad_request -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1 '"x"')]}"
	expect 400 bad_user -- POST /v1/messages "$ta" "{\"messages\":[${ok/\"to\":\"bob\"/\"to\":\"../bob\"}]}"
	expect 400 bad_request -- POST /v1/messages "$ta" "{\"messages\":[${ok/\"to_ik\"/\"to_ix\"}]}"
	expect 400 bad_request -- POST /v1/messages "$ta" '{"messages":[7]}'
	big=$(head -c 70000 /dev/zero | tr '\0' A)
	expect 413 too_large -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 9 "{\"ct\":\"$big\"}")]}"
	for q in wait=61 wait=-1 limit=0 limit=501 wait=x; do
		expect 400 bad_request -- GET "/v1/messages?$q" "$ta"
	done
}

@test "messages: the sender comes from the token, not the body" {
	relay
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	e=$(entry bob 1)
	expect 201 -- POST /v1/messages "$ta" "{\"from\":\"carol\",\"messages\":[${e%\}},\"from\":\"carol\"}]}"
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages.0.from)" = alice ]
}

@test "cross-user: bob can neither read nor ack alice's mailbox" {
	relay
	register alice
	register bob
	register carol
	ta=$(login alice)
	tb=$(login bob)
	tc=$(login carol)
	expect 201 -- POST /v1/messages "$tc" "{\"messages\":[$(entry alice 1)]}"
	id=$(jget ids.0)
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$id\"]}"
	expect 200 -- GET /v1/messages "$ta"
	[ "$(jget messages.0.id)" = "$id" ]
	# nor delete her account, even with her password and her name in the body
	expect 401 bad_credentials -- DELETE /v1/accounts/me "$tb" \
	    '{"user":"alice","password":"pw-alice-secret"}'
	expect 200 -- GET /v1/users/alice "$tb"
	# an ack of an existing foreign id and of a made-up one look the same
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$((id + 1000))\"]}"
	[ ! -s "$OUT" ]
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$id\"]}"
	[ ! -s "$OUT" ]
	expect 200 -- GET /v1/messages "$ta"
	[ "$(jget messages.0.id)" = "$id" ]
}

@test "long poll: wakes within 100 ms of a send; times out empty" {
	relay
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	t0=$(now_ms)
	expect 200 -- GET "/v1/messages?wait=1" "$tb"
	[ "$(jget messages)" = "[]" ]
	[ $(($(now_ms) - t0)) -ge 950 ]
	( curl -s -o "$BATS_TEST_TMPDIR/poll" -H "Authorization: Bearer $tb" \
	    "$RELAY_URL/v1/messages?wait=20"; now_ms >"$BATS_TEST_TMPDIR/t_poll" ) &
	poll=$!
	sleep 0.5
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	t_sent=$(now_ms)
	wait $poll
	lag=$(($(cat "$BATS_TEST_TMPDIR/t_poll") - t_sent))
	echo "woke $lag ms after the send" >&2
	[ "$lag" -lt 100 ]
	[ "$("$TK" get messages.0.from <"$BATS_TEST_TMPDIR/poll")" = alice ]
}

@test "long poll: a suspended request outlives the idle timeout" {
	relay --idle-timeout 1
	register bob
	tb=$(login bob)
	t0=$(now_ms)
	expect 200 -- GET "/v1/messages?wait=3" "$tb"
	[ "$(jget messages)" = "[]" ]
	[ $(($(now_ms) - t0)) -ge 2900 ]
}

@test "expiry: messages and blobs older than --ttl are swept, the files too" {
	relay --ttl 1s
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	head -c 1000 /dev/urandom | curl -s -o "$OUT" -H "Authorization: Bearer $ta" \
	    -H 'Content-Type: application/octet-stream' --data-binary @- \
	    "$RELAY_URL/v1/blobs"
	id=$(jget id)
	[ -e "$BATS_TEST_TMPDIR/blobs/$id" ]
	sleep 1.1
	expect 404 not_found -- GET "/v1/blobs/$id" "$tb"
	# the sweep runs at start and every few seconds after
	stop_relay
	relay --ttl 1s
	for _ in $(seq 40); do
		[ -e "$BATS_TEST_TMPDIR/blobs/$id" ] || break
		sleep 0.05
	done
	[ ! -e "$BATS_TEST_TMPDIR/blobs/$id" ]
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages)" = "[]" ]
	# the resend window closed with it: the same client_id is a new message
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
}

@test "mailbox flood: 507 for the sender, the owner still pages through; 429 per sender" {
	# a slow refill: a loaded machine does not refill the bucket meanwhile
	relay --mailbox-max 3 --rate-messages 5:1/m
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1),$(entry bob 2),$(entry bob 3)]}"
	expect 507 mailbox_full -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 4)]}"
	[ "$(jget user)" = bob ]
	expect 200 -- GET "/v1/messages?limit=2" "$tb"
	[ "$(jget more)" = true ]
	a=$(jget messages.0.id)
	b=$(jget messages.1.id)
	expect 429 rate_limited -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 5),$(entry bob 6)]}"
	[ "$(header Retry-After)" -ge 1 ]
	# the owner acks the first page and gets the rest, the last page
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$a\",\"$b\"]}"
	expect 200 -- GET "/v1/messages?limit=2" "$tb"
	[ "$(jget more)" = false ]
	[ "$(jget messages.0.id)" -gt "$b" ]
	[ "$("$TK" get messages <"$OUT" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ]
}

@test "mailbox cap: exact after a refused batch, a restart and an ack" {
	relay --mailbox-max 2 --no-rate-limits
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	# bob's entry is undone with the batch that failed on carol
	expect 404 unknown_user -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2),{\"to\":\"carol\",\"to_ik\":\"$(toik bob)\",\"client_id\":\"$(cid 3)\",\"envelope\":{\"v\":1}}]}"
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2)]}"
	expect 507 mailbox_full -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 4)]}"
	# counted again from the messages at start
	stop_relay
	relay --mailbox-max 2 --no-rate-limits
	expect 507 mailbox_full -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 4)]}"
	expect 200 -- GET /v1/messages "$tb"
	a=$(jget messages.0.id)
	expect 204 -- POST /v1/messages/ack "$tb" "{\"ids\":[\"$a\"]}"
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 4)]}"
	expect 507 mailbox_full -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 5)]}"
}

# ---- channels ----

@test "channels: post, read after a cursor, long poll, retention" {
	relay --channel-max 3
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	key=$BATS_TEST_TMPDIR/alice.key
	expect 201 -- POST /v1/channels/lobby "$ta" "$("$TK" post "$key" lobby alice 1000 hello)"
	id1=$(jget id)
	expect 201 -- POST /v1/channels/lobby "$ta" "$("$TK" post "$key" lobby alice 1001 again)"
	id2=$(jget id)
	expect 200 -- GET /v1/channels/lobby "$tb"
	[ "$(jget posts.0.id)" = "$id1" ]
	[ "$(jget posts.0.post.text)" = hello ]
	[ "$(jget posts.0.post)" = "$("$TK" post "$key" lobby alice 1000 hello | "$TK" get post)" ]
	expect 200 -- GET "/v1/channels/lobby?after=$id1" "$tb"
	[ "$(jget posts.0.id)" = "$id2" ]
	! jget posts.1 || false
	expect 200 -- GET /v1/channels/other "$tb"
	[ "$(jget posts)" = "[]" ]
	( curl -s -o "$BATS_TEST_TMPDIR/poll" -H "Authorization: Bearer $tb" \
	    "$RELAY_URL/v1/channels/lobby?after=$id2&wait=20" ) &
	poll=$!
	sleep 0.3
	t0=$(now_ms)
	expect 201 -- POST /v1/channels/lobby "$ta" "$("$TK" post "$key" lobby alice 1002 three)"
	wait $poll
	[ $(($(now_ms) - t0)) -lt 1000 ]
	[ "$("$TK" get posts.0.post.text <"$BATS_TEST_TMPDIR/poll")" = three ]
	expect 201 -- POST /v1/channels/lobby "$ta" "$("$TK" post "$key" lobby alice 1003 four)"
	expect 200 -- GET /v1/channels/lobby "$tb"
	[ "$(jget posts.0.post.text)" = again ]
	! jget posts.3 || false
}

@test "channels: the author must be the caller, the channel the path's" {
	relay
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	key=$BATS_TEST_TMPDIR/alice.key
	expect 403 forbidden -- POST /v1/channels/lobby "$tb" "$("$TK" post "$key" lobby alice 1 hi)"
	expect 400 wrong_channel -- POST /v1/channels/lobby "$ta" "$("$TK" post "$key" other alice 1 hi)"
	expect 400 bad_channel -- POST /v1/channels/Lobby "$ta" "$("$TK" post "$key" lobby alice 1 hi)"
	expect 400 bad_request -- POST /v1/channels/lobby "$ta" '{"post":"x"}'
	for q in after=x after=-1 limit=0 wait=61; do
		expect 400 bad_request -- GET "/v1/channels/lobby?$q" "$ta"
	done
	expect 401 -- GET /v1/channels/lobby
}

# ---- blobs ----

@test "blobs: upload, download by anyone authenticated, 404, Range ignored" {
	relay
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	f=$BATS_TEST_TMPDIR/blob
	head -c 300000 /dev/urandom >"$f"
	run curl -s -w '\n%{http_code}' -H "Authorization: Bearer $ta" \
	    -H 'Content-Type: application/octet-stream' --data-binary "@$f" \
	    "$RELAY_URL/v1/blobs"
	[ "${lines[1]}" = 201 ]
	id=$(echo "${lines[0]}" | "$TK" get id)
	[ "$(echo "${lines[0]}" | "$TK" get size)" = 300000 ]
	[[ "$id" =~ ^[0-9a-f]{32}$ ]]
	curl -s -H "Authorization: Bearer $tb" "$RELAY_URL/v1/blobs/$id" | cmp - "$f"
	for range in 'bytes=99999999999999999999-' 'bytes=-5,1-2,3-1' \
	    'bytes=0-18446744073709551615' 'bytes=-0' 'items=1-2'; do
		run curl -s -o "$BATS_TEST_TMPDIR/got" -w '%{http_code}' \
		    -H "Authorization: Bearer $tb" -H "Range: $range" \
		    "$RELAY_URL/v1/blobs/$id"
		[ "$output" = 200 ]
		cmp "$BATS_TEST_TMPDIR/got" "$f"
	done
	run curl -s -I -H "Authorization: Bearer $tb" "$RELAY_URL/v1/blobs/$id"
	[[ "$output" == "HTTP/1.1 200"* ]]
	[[ "$output" == *"Content-Length: 300000"* ]]
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/blobs/$id")" = 600 ]
	expect 401 -- GET "/v1/blobs/$id"
	# another id: the last digit changed (to 1 when it was 0)
	other=${id%?}0
	[ "$other" != "$id" ] || other=${id%?}1
	expect 404 not_found -- GET "/v1/blobs/$other" "$tb"
	expect 404 not_found -- GET "/v1/blobs/%2e%2e%2f%2e%2e%2frelay.db" "$tb"
	expect 404 not_found -- GET "/v1/blobs/${id}%00" "$tb"
	expect 404 not_found -- GET "/v1/blobs/$(echo "$id" | tr a-f A-F)" "$tb"
}

@test "blobs: 411 without a length, 413 over the limit, 415, quota; nothing left behind" {
	relay --max-blob 1000 --blob-quota 1500
	register alice
	ta=$(login alice)
	up() {	# up SIZE [TYPE [curl args]]: upload SIZE bytes, print the status
		local n=$1 type=${2:-application/octet-stream}
		shift
		shift || true
		head -c "$n" /dev/zero | curl -s -o "$OUT" -w '%{http_code}' \
		    -H "Authorization: Bearer $ta" -H "Content-Type: $type" "$@" \
		    --data-binary @- "$RELAY_URL/v1/blobs"
	}
	[ "$(up 10 application/octet-stream -H 'Transfer-Encoding: chunked')" = 411 ]
	[ "$(up 1001)" = 413 ]
	[ "$(jget error)" = too_large ]
	[ "$(up 10 text/plain)" = 415 ]
	[ "$(up 1000)" = 201 ]
	[ "$(up 600)" = 507 ]
	[ "$(jget error)" = quota_exceeded ]
	[ "$(up 500)" = 201 ]
	[ "$(ls "$BATS_TEST_TMPDIR/blobs" | wc -l)" = 2 ]
	run bash -c "head -c 10 /dev/zero | curl -s -o /dev/null -w '%{http_code}' --data-binary @- $RELAY_URL/v1/blobs"
	[ "$output" = 401 ]
	# refused streams end the connection: the rest of the body is not read
	[ "$(up 5000 application/octet-stream -D "$HDRS")" = 413 ]
	grep -qi '^Connection: close' "$HDRS"
	# the refused ones left no row
	[ "$(db_query "select count(*) from blobs")" = 2 ]
}

@test "blobs: an upload dropped half-way leaves no file, no row, the quota unchanged" {
	relay --blob-quota 1M
	register alice
	ta=$(login alice)
	"$PY" - "$RELAY_URL" "$ta" <<'PY'
import socket, sys, time
host, port = sys.argv[1].split('//')[1].split(':')
s = socket.create_connection((host, int(port)))
s.sendall(('POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
           'Content-Type: application/octet-stream\r\n'
           'Content-Length: 1048576\r\n\r\n' % sys.argv[2]).encode())
s.sendall(b'\0' * 600000)
time.sleep(0.3)
s.close()
PY
	b=$BATS_TEST_TMPDIR/blobs
	for _ in $(seq 40); do
		[ -z "$(ls "$b")" ] && break
		sleep 0.05
	done
	[ -z "$(ls "$b")" ]
	run db_query "select count(*) from blobs"
	[ "$output" = 0 ]
	# the whole quota is still free
	head -c 1M /dev/urandom >"$BATS_TEST_TMPDIR/m"
	run curl -s -o "$OUT" -w '%{http_code}' -H "Authorization: Bearer $ta" \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary "@$BATS_TEST_TMPDIR/m" "$RELAY_URL/v1/blobs"
	[ "$output" = 201 ]
	[ "$(jget size)" = 1048576 ]
}

@test "blobs: two uploads racing past the quota: one 201, one 507 at commit, one file, one row" {
	relay --blob-quota 1000
	register alice
	ta=$(login alice)
	"$PY" - "$RELAY_URL" "$ta" >"$BATS_TEST_TMPDIR/race" <<'PY'
import socket, sys, time
host, port = sys.argv[1].split('//')[1].split(':')
hdr = ('POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
       'Content-Type: application/octet-stream\r\nContent-Length: 600\r\n\r\n'
       % sys.argv[2]).encode()
# both pass the check made when the headers arrive (0 of 1000 used) ...
a = socket.create_connection((host, int(port)))
b = socket.create_connection((host, int(port)))
for s in (a, b):
    s.sendall(hdr + b'\0' * 300)
time.sleep(0.3)
# ... and only the commit can tell them apart
for s in (a, b):
    s.sendall(b'\1' * 300)
codes = []
for s in (a, b):
    s.settimeout(5)
    got = b''
    while b'\r\n' not in got:
        d = s.recv(4096)
        if not d:
            break
        got += d
    codes.append(got.split(b' ')[1].decode() if got else 'none')
print(' '.join(sorted(codes)))
PY
	[ "$(cat "$BATS_TEST_TMPDIR/race")" = "201 507" ]
	[ "$(ls "$BATS_TEST_TMPDIR/blobs" | wc -l)" = 1 ]
	[ "$(db_query "select count(*), sum(size) from blobs")" = "1 600" ]
	# the quota holds 400 more bytes, not 401
	head -c 401 /dev/zero >"$BATS_TEST_TMPDIR/b"
	run curl -s -o "$OUT" -w '%{http_code}' -H "Authorization: Bearer $ta" \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary "@$BATS_TEST_TMPDIR/b" "$RELAY_URL/v1/blobs"
	[ "$output" = 507 ]
	head -c 400 /dev/zero >"$BATS_TEST_TMPDIR/b"
	run curl -s -o "$OUT" -w '%{http_code}' -H "Authorization: Bearer $ta" \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary "@$BATS_TEST_TMPDIR/b" "$RELAY_URL/v1/blobs"
	[ "$output" = 201 ]
}

@test "blobs: 100 MiB up and down, relay memory stays flat" {
	relay
	register alice
	ta=$(login alice)
	f=$BATS_TEST_TMPDIR/big
	head -c 100M /dev/urandom >"$f"
	hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$RELAY_PID/status"; }
	before=$(hwm)
	curl -s -o "$OUT" -T "$f" -X POST -H "Authorization: Bearer $ta" \
	    -H 'Content-Type: application/octet-stream' "$RELAY_URL/v1/blobs"
	id=$(jget id)
	[ "$(jget size)" = 104857600 ]
	curl -s -H "Authorization: Bearer $ta" "$RELAY_URL/v1/blobs/$id" | cmp - "$f"
	after=$(hwm)
	echo "VmHWM $before -> $after kB" >&2
	[ $((after - before)) -lt 16384 ]
}

# ---- HTTP framing and limits (HOSTILE.md) ----

@test "413 before the body is read; 411 for chunked JSON; 415 for a wrong type" {
	relay
	out=$(raw 'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n' 3)
	[[ "$out" == "HTTP/1.1 413"* ]]
	[[ "$out" == *"<closed>" ]]
	run curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	    -H 'Transfer-Encoding: chunked' --data-binary '{"user":"a","password":"b"}' \
	    "$RELAY_URL/v1/sessions"
	[ "$output" = 411 ]
	run curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' \
	    --data-binary '{"user":"a","password":"b"}' "$RELAY_URL/v1/sessions"
	[ "$output" = 415 ]
	run curl -s -o /dev/null -w '%{http_code}' \
	    --data-binary '{"user":"a","password":"b"}' "$RELAY_URL/v1/sessions"
	[ "$output" = 415 ]
	expect 200 -- GET /v1/health
}

@test "413 before the body: 200 huge announced bodies, relay memory stays flat" {
	asan && skip "AddressSanitizer's shadow memory makes VmHWM meaningless"
	relay --max-per-ip 400
	register alice
	ta=$(login alice)
	hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$RELAY_PID/status"; }
	before=$(hwm)
	"$PY" - "$RELAY_URL" "$ta" <<'PY'
import socket, sys
host, port = sys.argv[1].split('//')[1].split(':')
socks = []
for i in range(200):
    path, auth = ('/v1/sessions', '') if i % 2 else \
        ('/v1/messages', 'Authorization: Bearer %s\r\n' % sys.argv[2])
    s = socket.create_connection((host, int(port)))
    s.sendall(('POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n'
               'Content-Length: 1000000000\r\n\r\n' % (path, auth)).encode())
    s.sendall(b'{"x":"' + b'a' * 20000)
    socks.append(s)
n413 = 0
for s in socks:
    s.settimeout(3)
    got = b''
    try:
        while b'\r\n' not in got:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except OSError:
        pass
    n413 += got.startswith(b'HTTP/1.1 413')
    s.close()
assert n413 == 200, n413
PY
	after=$(hwm)
	echo "VmHWM $before -> $after kB" >&2
	[ $((after - before)) -lt 4096 ]
	expect 200 -- GET /v1/health
}

@test "two Content-Lengths, or Content-Length with Transfer-Encoding: 400 and close" {
	relay
	out=$(raw 'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}')
	[[ "$out" == "HTTP/1.1 400"* ]]
	[[ "$out" == *bad_framing*"<closed>" ]]
	out=$(raw 'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n')
	[[ "$out" == "HTTP/1.1 400"* ]]
	[[ "$out" == *"<closed>" ]]
	out=$(raw 'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}')
	[[ "$out" == "HTTP/1.1 400"* ]]
}

@test "a body shorter than its Content-Length is closed at the idle timeout; nothing stored" {
	relay --idle-timeout 1
	"$TK" register alice secret-pw "$BATS_TEST_TMPDIR/a.key" >"$BATS_TEST_TMPDIR/a.json"
	len=$(wc -c <"$BATS_TEST_TMPDIR/a.json")
	part=$(head -c 100 "$BATS_TEST_TMPDIR/a.json")
	t0=$(now_ms)
	out=$(raw "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: $len\r\n\r\n$part" 5)
	[[ "$out" == "<closed>" ]]
	[ $(($(now_ms) - t0)) -lt 4000 ]
	register bob
	tb=$(login bob)
	expect 404 -- GET /v1/users/alice "$tb"
}

@test "64 KiB header gets 431, 100 KB URL 414; the relay lives on" {
	relay
	big=$(head -c 65536 /dev/zero | tr '\0' a)
	run curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$RELAY_URL/v1/health"
	[ "$output" = 431 ]
	run curl -s -o /dev/null -w '%{http_code}' "$RELAY_URL/v1/health?x=$(head -c 100000 /dev/zero | tr '\0' a)"
	[ "$output" = 414 ]
	expect 200 -- GET /v1/health
}

@test "slowloris: the per-IP cap, the idle timeout and the header deadline keep other clients served" {
	relay --max-per-ip 10 --idle-timeout 2
	# 10 connections trickle a header byte every 0.4 s (never idle for the
	# 2 s timeout); the 11th from the same address is refused at once
	"$PY" - "$RELAY_URL" >"$BATS_TEST_TMPDIR/slow" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].split('//')[1].split(':')
socks = [socket.create_connection((host, int(port)), timeout=2) for _ in range(10)]
for s in socks:
    s.sendall(b'GET /v1/health HTTP/1.1\r\n')
time.sleep(0.3)
extra = socket.create_connection((host, int(port)), timeout=2)
try:
    extra.sendall(b'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n')
    refused = extra.recv(100) == b''
except OSError:
    refused = True
t0 = time.time()
open_at = {}
while time.time() - t0 < 5:
    for i, s in enumerate(socks):
        if i in open_at:
            continue
        try:
            s.sendall(b'X')
        except OSError:
            open_at[i] = time.time() - t0
            continue
        s.settimeout(0.01)
        try:
            if s.recv(1) == b'':
                open_at[i] = time.time() - t0
        except socket.timeout:
            pass
        except OSError:
            open_at[i] = time.time() - t0
    time.sleep(0.4)
print(int(refused), len(open_at), '%.1f' % max(open_at.values(), default=99))
PY
	slow=$!
	sleep 0.6
	# another address is served meanwhile
	run curl -s --max-time 2 --interface 127.0.0.2 "$RELAY_URL/v1/health"
	[[ "$output" == *'"ok":true'* ]]
	wait $slow
	read -r refused closed last <"$BATS_TEST_TMPDIR/slow"
	echo "refused=$refused closed=$closed last=${last}s" >&2
	[ "$refused" = 1 ]
	# every trickling connection was cut off by the header deadline
	[ "$closed" = 10 ]
	awk -v t="$last" 'BEGIN { exit !(t >= 1.5 && t < 4.5) }'
	expect 200 -- GET /v1/health
}

@test "the connection limit: the one over it is closed, the rest served" {
	relay --max-connections 4
	"$PY" - "$RELAY_URL" <<'PY'
import socket, sys, time
host, port = sys.argv[1].split('//')[1].split(':')
held = [socket.create_connection((host, int(port))) for _ in range(4)]
time.sleep(0.2)
s = socket.create_connection((host, int(port)))
s.settimeout(2)
try:
    s.sendall(b'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n')
    got = s.recv(100)
except OSError:
    got = b''
assert not got.startswith(b'HTTP/1.1 200'), got
for h in held:
    h.close()
time.sleep(0.2)
PY
	expect 200 -- GET /v1/health
}

# ---- operations ----

@test "metrics: requests by route and status, latency, queued messages, bytes" {
	relay
	register alice
	register bob
	ta=$(login alice)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	expect 200 -- GET /metrics
	grep -q '^st_relay_requests_total{route="POST /v1/messages",status="201"} 1$' "$OUT"
	grep -q '^st_relay_request_seconds_bucket{route="POST /v1/accounts",le="+Inf"} 2$' "$OUT"
	grep -q '^st_relay_queued_messages 1$' "$OUT"
	grep -q '^st_relay_stored_bytes{kind="database"} [1-9]' "$OUT"
	grep -q '^st_relay_commits_total [1-9]' "$OUT"
	grep -q '^st_relay_waiting_polls 0$' "$OUT"
	[[ "$(header Content-Type)" == text/plain* ]]
}

@test "one log line per request: method, route, status, time; never a secret" {
	relay
	register alice
	ta=$(login alice)
	expect 200 -- GET "/v1/users/alice?token=$ta" "$ta"
	stop_relay
	log=$BATS_TEST_TMPDIR/relay.log
	grep -q '^st-relay: POST /v1/accounts 201 [0-9.]*ms$' "$log"
	grep -q '^st-relay: GET /v1/users/{name} 200 [0-9.]*ms$' "$log"
	! grep -qF "$ta" "$log" || false
	! grep -q 'pw-alice-secret' "$log" || false
	! grep -q 'ed25519' "$log" || false
}

@test "SIGTERM answers every suspended long poll (300 of them), drains and exits 0" {
	relay --max-per-ip 400
	register alice
	ta=$(login alice)
	"$PY" - "$RELAY_URL" "$ta" >"$BATS_TEST_TMPDIR/polls" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].split('//')[1].split(':')
req = ('GET /v1/messages?wait=60 HTTP/1.1\r\nHost: x\r\n'
       'Authorization: Bearer %s\r\n\r\n' % sys.argv[2]).encode()
socks = []
for _ in range(300):
    s = socket.create_connection((host, int(port)))
    s.sendall(req)
    socks.append(s)
ok = 0
for s in socks:
    s.settimeout(10)
    got = b''
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
            if got.startswith(b'HTTP/1.1 200') and got.rstrip().endswith(b'[]}'):
                break
    except OSError:
        pass
    ok += got.startswith(b'HTTP/1.1 200') and b'"messages":[]' in got
print(ok)
PY
	polls=$!
	# every poll is suspended in the relay before the signal
	for _ in $(seq 100); do
		curl -s "$RELAY_URL/metrics" | grep -q '^st_relay_waiting_polls 300$' && break
		sleep 0.1
	done
	curl -s "$RELAY_URL/metrics" | grep '^st_relay_waiting_polls 300$'
	t0=$(now_ms)
	kill -TERM "$RELAY_PID"
	rc=0
	wait "$RELAY_PID" || rc=$?
	RELAY_PID=
	# under make check SANITIZE=1 this exit status is also ASan's verdict
	[ "$rc" -eq 0 ]
	[ $(($(now_ms) - t0)) -lt 5000 ]
	wait $polls
	[ "$(cat "$BATS_TEST_TMPDIR/polls")" = 300 ]
	! grep -E 'AddressSanitizer|LeakSanitizer|runtime error' "$BATS_TEST_TMPDIR/relay.log" || false
}

@test "kill -9: acknowledged messages survive, orphan blob files are swept, integrity ok" {
	relay
	register alice
	register bob
	ta=$(login alice)
	for i in $(seq 20); do
		expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob "$i")]}"
	done
	kill -9 "$RELAY_PID"
	wait "$RELAY_PID" || true
	RELAY_PID=
	b=$BATS_TEST_TMPDIR/blobs
	# left by a crash two hours ago
	touch -d '2 hours ago' "$b/0123456789abcdef0123456789abcdef" \
	    "$b/0123456789abcdef0123456789abcdef.tmp-abcdef" "$b/README"
	# just written: a relay sharing the directory may be uploading it
	touch "$b/fedcba9876543210fedcba9876543210.tmp-abcdef"
	relay
	[ ! -e "$b/0123456789abcdef0123456789abcdef" ]
	[ ! -e "$b/0123456789abcdef0123456789abcdef.tmp-abcdef" ]
	[ -e "$b/README" ]
	# SQLite: this relay owns the directory; PostgreSQL: it is shared
	if store_is_pg; then
		[ -e "$b/fedcba9876543210fedcba9876543210.tmp-abcdef" ]
	else
		[ ! -e "$b/fedcba9876543210fedcba9876543210.tmp-abcdef" ]
	fi
	tb=$(login bob)
	expect 200 -- GET "/v1/messages?limit=500" "$tb"
	[ -n "$(jget messages.19.id)" ]
	stop_relay
	# PostgreSQL has no integrity_check: its crash safety is its own
	store_is_pg && return 0
	run db_query "pragma integrity_check"
	[ "$output" = ok ]
}

@test "database locked by another process: 503 with Retry-After after the busy timeout, reads still served, then 201" {
	store_is_pg && skip "SQLite's file lock (PostgreSQL going away: st-relay-pg.bats)"
	relay --no-rate-limits
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	"$PY" -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(30)' "$RELAY_DB" "$BATS_TEST_TMPDIR/locked" &
	holder=$!
	until [ -e "$BATS_TEST_TMPDIR/locked" ]; do sleep 0.05; done
	start=$(date +%s)
	expect 503 unavailable -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2)]}"
	took=$(( $(date +%s) - start ))
	[ "$(header Retry-After)" -ge 1 ]
	[ "$took" -ge 4 ] && [ "$took" -le 15 ]
	expect 200 -- GET /v1/health
	expect 200 -- GET /v1/messages "$tb"
	[ "$(jget messages.0.envelope.ct)" = BBBB ]
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 2)]}"
	kill -0 "$RELAY_PID"
}

@test "disk full for the database and blobs: 507 storage_full, reads keep working, recovery once space returns" {
	store_is_pg && skip "the database's disk is the PostgreSQL server's"
	[ "$(id -u)" -eq 0 ] || skip "needs root to mount a small tmpfs"
	mnt=$BATS_TEST_TMPDIR/small
	mkdir "$mnt"
	mount -t tmpfs -o size=4m tmpfs "$mnt" 2>/dev/null || skip "cannot mount a tmpfs here"
	SMALL_MNT=$mnt
	port=$(free_port)
	st-relay -l "127.0.0.1:$port" -d "$mnt/relay.db" --blob-dir "$mnt/blobs" \
	    --argon2-m 64 --argon2-t 1 --no-rate-limits 2>"$BATS_TEST_TMPDIR/relay.log" &
	RELAY_PID=$!
	RELAY_URL=http://127.0.0.1:$port
	until curl -sf "$RELAY_URL/v1/health" >/dev/null; do sleep 0.05; done
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 1)]}"
	dd if=/dev/zero of="$mnt/fill" bs=4k 2>/dev/null || true
	# fill what is left with messages until the store says it is full
	status=
	for i in $(seq 2 400); do
		env=$("$PY" -c 'import sys; print("{\"v\":1,\"hdr\":\"AAAA\",\"ct\":\"" + "A" * 60000 + "\"}")')
		status=$(call POST /v1/messages "$ta" "{\"messages\":[$(entry bob "$i" "$env")]}")
		[ "$status" = 201 ] || break
	done
	[ "$status" = 507 ]
	[ "$(jget error)" = storage_full ]
	# a blob upload is refused too, and leaves no temporary behind
	head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/b"
	run curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ta" \
	    -H 'Content-Type: application/octet-stream' --data-binary "@$BATS_TEST_TMPDIR/b" \
	    "$RELAY_URL/v1/blobs"
	[ "$output" = 507 ] || [ "$output" = 000 ]
	[ -z "$(ls "$mnt/blobs")" ]
	# reads keep working
	expect 200 -- GET /v1/health
	expect 200 -- GET "/v1/messages?limit=1" "$tb"
	[ "$(jget messages.0.envelope.ct)" = BBBB ]
	rm -f "$mnt/fill"
	expect 201 -- POST /v1/messages "$ta" "{\"messages\":[$(entry bob 9999)]}"
	kill -0 "$RELAY_PID"
	"$PY" -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$mnt/relay.db" | grep -qx ok
}
