#!/usr/bin/env bats
# st-login against a live st-relay: tokens, their expiry and revocation,
# --status and --logout, prekey upkeep, protected keys, the lock, and
# relays that are down or hostile.

load account_helper

# tok: a digest of the token file (or "none").
tok() {
	if [ -e "$ST_HOME/token" ]; then sha256sum <"$ST_HOME/token"; else echo none; fi
}

@test "help goes to stdout and exits 0; bad usage exits 64" {
	run st-login -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"st-login --logout | --status [-j]"* ]]
	run st-login -V
	[ "$status" -eq 0 ]
	for bad in "x" "--logout --status" "-j" "--logout -j" \
	    "--status --password-file $PW" "--password $PW" "--pass $PW" \
	    "--bogus"; do
		run st-login $bad
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: st-login"* ]]
	done
}

@test "not registered: exit 78" {
	run st-login --password-file "$PW"
	[ "$status" -eq 78 ]
	[[ "$output" == *"run st-register USER"* ]]
	[[ "$output" == *"$ST_HOME/config"* ]]
	run st-login --status
	[ "$status" -eq 78 ]
}

@test "log in: a new token, 0600; the one it replaces is revoked" {
	relay
	reg alice
	cp "$ST_HOME/token" "$BATS_TEST_TMPDIR/old"
	run st-login --password-file "$PW"
	[ "$status" -eq 0 ]
	[[ "$output" == *"logged in as alice at $RELAY_URL until"* ]]
	[ "$(mode "$ST_HOME/token")" = 600 ]
	! cmp -s "$ST_HOME/token" "$BATS_TEST_TMPDIR/old" || false
	st-login --status >/dev/null
	cp "$BATS_TEST_TMPDIR/old" "$ST_HOME/token"
	run st-login --status
	[ "$status" -eq 77 ]
	[[ "$output" == *"refused the token"* ]]
	run st-users
	[ "$status" -eq 77 ]
}

@test "a wrong password exits 77 and changes nothing" {
	relay
	reg alice
	printf 'wrong password\n' >"$BATS_TEST_TMPDIR/wrong"
	before=$(tok; cat "$ST_HOME/config" "$ST_HOME/prekeys.json" | sha256sum)
	run st-login --password-file "$BATS_TEST_TMPDIR/wrong"
	[ "$status" -eq 77 ]
	[[ "$output" == *"cannot log in as alice at $RELAY_URL: wrong user name or password"* ]]
	[ "$(tok; cat "$ST_HOME/config" "$ST_HOME/prekeys.json" | sha256sum)" = "$before" ]
	st-login --status >/dev/null
	printf 'short\n' >"$BATS_TEST_TMPDIR/short"
	run st-login --password-file "$BATS_TEST_TMPDIR/short"
	[ "$status" -eq 64 ]
}

@test "--status says who is logged in where and until when" {
	relay
	reg alice
	run st-login --status
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^alice\ at\ $RELAY_URL:\ logged\ in\ until\ [0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:]{8} ]]
	[[ "$output" == *"100 one-time prekeys"* ]]
	run st-login --status -j
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c '
import json, sys, time
o = json.loads(sys.stdin.read())
assert o["user"] == "alice" and o["logged_in"] is True, o
assert o["session"] == "active" and o["opks"] == 100 and o["spk_id"] == 1, o
days = (o["expires"] / 1000 - time.time()) / 86400
assert 29 < days <= 30, days'
	[ "$(echo "$output" | jfield relay)" = "$RELAY_URL" ]
}

@test "--logout revokes the token on the relay and deletes it here" {
	relay
	reg alice
	cp "$ST_HOME/token" "$BATS_TEST_TMPDIR/old"
	run st-login --logout
	[ "$status" -eq 0 ]
	[[ "$output" == *"logged out alice"*"revoked"* ]]
	[ ! -e "$ST_HOME/token" ]
	! grep -q token_expires "$ST_HOME/config" || false
	run st-login --status
	[ "$status" -eq 77 ]
	[ "$output" = "alice at $RELAY_URL: not logged in" ]
	run st-login --status -j
	[ "$status" -eq 77 ]
	[ "$(echo "$output" | jfield logged_in)" = false ]
	[ "$(echo "$output" | jfield session)" = none ]
	# the relay forgot it too
	cp "$BATS_TEST_TMPDIR/old" "$ST_HOME/token"
	run st-users
	[ "$status" -eq 77 ]
	[[ "$output" == *"not logged in to $RELAY_URL or the session expired: run st-login"* ]]
	rm "$ST_HOME/token"
	# no token at all: the relay and the token file are named
	run st-users
	[ "$status" -eq 77 ]
	[[ "$output" == *"not logged in to $RELAY_URL (no $ST_HOME/token): run st-login"* ]]
	# logging out twice is no error
	run st-login --logout
	[ "$status" -eq 0 ]
	[[ "$output" == *"not logged in"* ]]
	st-login --password-file "$PW"
	st-users >/dev/null
}

@test "an expired token: --status says so, commands exit 77, st-login renews" {
	relay --session-ttl "$(slow 2)s"
	reg alice
	st-users >/dev/null
	sleep "$(slow 3)"
	run st-login --status
	[ "$status" -eq 77 ]
	[[ "$output" == *"the session expired at"* ]]
	[ "$(st-login --status -j | jfield session)" = expired ]
	run st-users
	[ "$status" -eq 77 ]
	[[ "$output" == *"st-login"* ]]
	st-login --password-file "$PW"
	st-users >/dev/null
}

@test "a token in use is renewed: its expiry slides" {
	# scaled together: a slow command's gap between renewals stays under
	# the lifetime, and the four of them still add up to more than it
	relay --session-ttl "$(slow 3)s"
	reg alice
	for i in 1 2 3 4; do
		sleep "$(slow 1)"
		st-users >/dev/null
	done
	# four seconds after log-in, with a 3 s lifetime, still alive
	st-users >/dev/null
}

@test "upkeep: one-time prekeys are refilled to 100 only below 20" {
	relay --no-rate-limits
	reg alice
	reg bob
	drain alice 80
	as alice
	n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["opks"]))' "$ST_HOME/prekeys.json")
	run st-login --password-file "$PW"
	[ "$status" -eq 0 ]
	[[ "$output" != *"uploaded"* ]]
	[ "$(relay_opks)" -eq 20 ]
	as bob
	drain alice 1
	as alice
	run st-login --password-file "$PW"
	[ "$status" -eq 0 ]
	[[ "$output" == *"uploaded 81 one-time prekeys; the relay holds 100"* ]]
	[ "$(relay_opks)" -eq 100 ]
	python3 - "$ST_HOME/prekeys.json" "$n" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
ids = [o["id"] for o in p["opks"]]
assert len(ids) == int(sys.argv[2]) + 81, len(ids)
assert len(set(ids)) == len(ids)
PY
}

@test "upkeep: the signed prekey rotates after 7 days; the old one goes 30 days later" {
	relay
	reg alice
	# age the signed prekey by eight days
	python3 - "$ST_HOME/prekeys.json" <<'PY'
import json, sys, time
f = sys.argv[1]
p = json.load(open(f))
p["spks"][0]["created"] = int(time.time() * 1000) - 8 * 86400 * 1000
open(f, "w").write(json.dumps(p))
PY
	run st-login --password-file "$PW"
	[ "$status" -eq 0 ]
	[[ "$output" == *"and a new signed prekey"* ]]
	[ "$(api GET /v1/keys | sed 's/^200 //' | jfield spk_id)" -eq 2 ]
	python3 - "$ST_HOME/prekeys.json" <<'PY'
import json, sys, time
f = sys.argv[1]
p = json.load(open(f))
assert [s["id"] for s in p["spks"]] == [2, 1], p["spks"]
now = time.time() * 1000
assert abs(p["spks"][1]["retired"] - now) < 60000
# retired 29 days ago: still kept
p["spks"][1]["retired"] = int(now) - 29 * 86400 * 1000
open(f, "w").write(json.dumps(p))
PY
	st-login --password-file "$PW"
	[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["spks"]))' "$ST_HOME/prekeys.json")" -eq 2 ]
	python3 - "$ST_HOME/prekeys.json" <<'PY'
import json, sys, time
f = sys.argv[1]
p = json.load(open(f))
p["spks"][1]["retired"] = int(time.time() * 1000) - 31 * 86400 * 1000
open(f, "w").write(json.dumps(p))
PY
	run st-login --password-file "$PW"
	[ "$status" -eq 0 ]
	[[ "$output" == *"dropped 1 signed prekeys"* ]]
	[ "$(python3 -c 'import json,sys; print([s["id"] for s in json.load(open(sys.argv[1]))["spks"]])' "$ST_HOME/prekeys.json")" = "[2]" ]
	[ "$(mode "$ST_HOME/prekeys.json")" = 600 ]
}

@test "protected keys: --passphrase-file, no terminal; a wrong one changes nothing" {
	relay
	as alice
	st-keygen --protect --passphrase-file "$PP"
	reg alice --passphrase-file "$PP"
	st-login --logout
	printf 'not it\n' >"$BATS_TEST_TMPDIR/badpp"
	run setsid st-login --password-file "$PW" \
	    --passphrase-file "$BATS_TEST_TMPDIR/badpp" </dev/null
	[ "$status" -eq 77 ]
	[[ "$output" == *"wrong passphrase"* ]]
	[ ! -e "$ST_HOME/token" ]
	run setsid st-login --password-file "$PW" </dev/null
	[ "$status" -eq 64 ]
	[ ! -e "$ST_HOME/token" ]
	run setsid st-login --password-file "$PW" --passphrase-file "$PP" </dev/null
	[ "$status" -eq 0 ]
	[ -e "$ST_HOME/token" ]
	# both secrets from files; only one of them may be standard input
	run st-login --password-file - --passphrase-file - </dev/null
	[ "$status" -eq 64 ]
	printf 'key passphrase\n' | st-login --password-file "$PW" --passphrase-file -
	grep -q '"wrap"' "$ST_HOME/prekeys.json"
}

@test "a corrupt or truncated key file exits 65 naming it; the token stays" {
	relay
	reg alice
	t=$(tok)
	cp "$ST_HOME/prekeys.json" "$BATS_TEST_TMPDIR/pk"
	head -c 100 "$BATS_TEST_TMPDIR/pk" >"$ST_HOME/prekeys.json"
	run st-login --password-file "$PW"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$ST_HOME/prekeys.json"* ]]
	[ "$(tok)" = "$t" ]
	cp "$BATS_TEST_TMPDIR/pk" "$ST_HOME/prekeys.json"
	echo '{"v":1,"ed25519_seed":"AAAA","x25519":"AAAA"}' >"$ST_HOME/identity.json"
	run st-login --password-file "$PW"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$ST_HOME/identity.json"* ]]
	: >"$ST_HOME/identity.json"
	run st-login --password-file "$PW"
	[ "$status" -eq 65 ]
	[[ "$output" == *"identity.json"* ]]
	[ "$(tok)" = "$t" ]
}

@test "relay down: exit 69 at once, nothing changed" {
	relay
	reg alice
	t=$(tok)
	stop_relay
	start=$(date +%s)
	run st-login --password-file "$PW"
	[ "$status" -eq 69 ]
	[ $(( $(date +%s) - start )) -lt "$(slow 5)" ]
	[ "$(tok)" = "$t" ]
	run st-login --logout
	[ "$status" -eq 69 ]
	[ "$(tok)" = "$t" ]
	run st-login --status
	[ "$status" -eq 69 ]
}

@test "a second st-login waits for the home lock, then exits 75" {
	relay
	reg alice
	t=$(tok)
	exec 9>"$ST_HOME/lock"
	flock 9
	start=$(date +%s)
	run st-login --password-file "$PW"
	exec 9>&-
	[ "$status" -eq 75 ]
	[ $(( $(date +%s) - start )) -ge 9 ]
	[[ "$output" == *"$ST_HOME/lock is busy"* ]]
	[ "$(tok)" = "$t" ]
	st-login --password-file "$PW"
}

@test "a hostile relay: no redirect followed, sizes capped, its words escaped" {
	relay
	reg alice
	t=$(tok)
	fake_relay redirect
	run st-login -r "$FAKE_URL" --password-file "$PW"
	[ "$status" -eq 69 ]
	[[ "$output" == *"redirect"*"not followed"* ]]
	kill "$FAKE_PID"
	fake_relay 500
	run st-login -r "$FAKE_URL" --password-file "$PW"
	[ "$status" -eq 69 ]
	[[ "$output" == *"500"* ]]
	kill "$FAKE_PID"
	fake_relay html
	run st-login -r "$FAKE_URL" --password-file "$PW"
	[ "$status" -eq 65 ]
	[[ "$output" == *"bad reply (201): relay reply is not valid JSON"* ]]
	kill "$FAKE_PID"
	fake_relay huge
	run st-login -r "$FAKE_URL" --password-file "$PW"
	[ "$status" -eq 69 ]
	[[ "$output" == *"larger than"* ]]
	kill "$FAKE_PID"
	fake_relay chunked
	run st-login -r "$FAKE_URL" --password-file "$PW"
	[ "$status" -eq 69 ]
	[[ "$output" == *"larger than"* ]]
	kill "$FAKE_PID"
	fake_relay deep
	run st-login -r "$FAKE_URL" --password-file "$PW"
	[ "$status" -eq 65 ]
	[[ "$output" == *"nest"* ]]
	kill "$FAKE_PID"
	fake_relay escape
	run st-login -r "$FAKE_URL" --password-file "$PW"
	[ "$status" -eq 65 ]
	[[ "$output" == *'\x1b]52;c;cHduZWQ=\x07\x1b[2J owned'* ]]
	[[ "$output" != *$'\033'* && "$output" != *$'\007'* ]]
	[ "$(tok)" = "$t" ]
}

@test "a relay that stalls or drips after connecting: 69 within ST_TIMEOUT; a bad ST_TIMEOUT is 78" {
	relay
	reg alice
	t=$(tok)
	for mode in stall drip; do
		fake_relay $mode
		t0=$(date +%s%N)
		ST_TIMEOUT=2 run st-login -r "$FAKE_URL" --password-file "$PW"
		ms=$((($(date +%s%N) - t0) / 1000000))
		echo "$mode: $status in $ms ms: $output" >&2
		[ "$status" -eq 69 ]
		[[ "$output" == *"no answer within the time limit"* ]]
		[ "$ms" -ge 1900 ] && [ "$ms" -lt 6000 ]
		kill "$FAKE_PID"
	done
	ST_TIMEOUT=soon run st-login --password-file "$PW"
	[ "$status" -eq 78 ]
	[[ "$output" == *"ST_TIMEOUT"* ]]
	ST_TIMEOUT=0 run st-login --password-file "$PW"
	[ "$status" -eq 78 ]
	[ "$(tok)" = "$t" ]
	# a sane value changes nothing
	ST_TIMEOUT=30 run st-login --password-file "$PW"
	[ "$status" -eq 0 ]
}

@test "rate limited: exit 75 with the relay's Retry-After; the token stays" {
	relay --rate-login-user 2:1/h
	reg alice
	t=$(tok)
	printf 'wrong password\n' >"$BATS_TEST_TMPDIR/wrong"
	run st-login --password-file "$BATS_TEST_TMPDIR/wrong"
	[ "$status" -eq 77 ]
	run st-login --password-file "$BATS_TEST_TMPDIR/wrong"
	[ "$status" -eq 77 ]
	# the bucket is empty: even the right password waits
	run st-login --password-file "$PW"
	[ "$status" -eq 75 ]
	[[ "$output" =~ retry\ after\ [0-9]+\ s ]]
	[ "$(tok)" = "$t" ]
}

@test "a relay that does not answer: exit 69 when the 10 s connect timeout ends" {
	relay
	reg alice
	t=$(tok)
	blackhole_relay
	start=$(date +%s)
	run st-login -r "$FAKE_URL" --password-file "$PW"
	took=$(( $(date +%s) - start ))
	[ "$status" -eq 69 ]
	[[ "$output" == *"relay $FAKE_URL: cannot connect"* ]]
	[[ "$output" == *"--relay URL or ST_RELAY"* ]]
	[ "$took" -ge 9 ] && [ "$took" -le 20 ]
	[ "$(tok)" = "$t" ]
}
