#!/usr/bin/env bats
# st-users against a live st-relay: the directory, is-user exit codes,
# trust on first use, a changed key caught, trust, verify and forget.

load account_helper
bats_require_minimum_version 1.5.0

# safety NAME: the 60 digits st-users shows for NAME.
safety() {
	st-users -j "$1" | jfield safety
}

# rekey USER: USER deletes the account and registers again with new keys.
rekey() {
	as "$1"
	st-register --delete --password-file "$PW" 2>/dev/null
	st-keygen -f 2>/dev/null
	reg "$1" 2>/dev/null
}

@test "help goes to stdout and exits 0; bad usage exits 64" {
	run st-users -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"st-users trust NAME | verify NAME DIGITS | forget NAME"* ]]
	run st-users -V
	[ "$status" -eq 0 ]
	for bad in "--bogus" "trust" "trust a b" "verify a" "forget" \
	    "forget a b" "--rel x"; do
		run st-users $bad
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: st-users"* ]]
	done
}

@test "bad names and digits exit 64 before any network" {
	mkdir -m 700 "$ST_HOME"
	printf '{"relay":"%s","user":"alice"}' "$(dead_url)" >"$ST_HOME/config"
	st-keygen
	for u in Alice a/b .. "" $'x\033[2J' $'\xe2\x80\xaeab' \
	    abcdefghijklmnopqrstuvwxyz0123456; do
		for cmd in "" trust forget; do
			run st-users $cmd -- "$u"
			[ "$status" -eq 64 ]
			[[ "$output" == *"bad user name"* ]]
			[[ "$output" != *$'\033'* ]]
		done
		run st-users verify "$u" "$(printf '1%.0s' {1..60})"
		[ "$status" -eq 64 ]
	done
	for d in 123 "$(printf '1%.0s' {1..61})" "$(printf '1%.0s' {1..59})x"; do
		run st-users verify bob "$d"
		[ "$status" -eq 64 ]
		[[ "$output" == *"60 digits"* ]]
	done
	# a good name does reach the network, which is down
	printf '%043d\n' 0 >"$ST_HOME/token"
	run st-users bob
	[ "$status" -eq 69 ]
}

@test "lists the directory; -j adds created and trust" {
	relay
	reg carol
	reg alice
	reg bob
	[ "$(st-users)" = "$(printf 'alice\nbob\ncarol')" ]
	st-users alice >/dev/null
	run st-users -j
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	echo "$output" | python3 -c '
import json, sys, time
rows = [json.loads(l) for l in sys.stdin]
assert [r["user"] for r in rows] == ["alice", "bob", "carol"]
t = {r["user"]: r["trust"] for r in rows}
assert t == {"alice": "tofu", "bob": None, "carol": None}, t
assert all(abs(r["created"] / 1000 - time.time()) < 600 for r in rows)'
}

@test "NAME...: exit 0 when all exist, 1 when one does not" {
	relay
	reg alice
	reg bob
	run --separate-stderr st-users alice
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^alice\ +tofu\ +([0-9]{5}\ ){11}[0-9]{5}$ ]]
	[[ "$stderr" == *"pinned the identity of alice"* ]]
	run st-users nobody
	[ "$status" -eq 1 ]
	[[ "$output" == *"no such user: nobody at $RELAY_URL (st-users lists the users there)"* ]]
	run st-users alice nobody bob
	[ "$status" -eq 1 ]
	[[ "$output" == *"alice "* && "$output" == *"bob "* ]]
	# a script's is_user
	st-users alice >/dev/null 2>&1
	! st-users nobody >/dev/null 2>&1 || false
	[ ! -e "$ST_HOME/peers/nobody.json" ]
	# oneself is shown, never pinned
	run st-users bob
	[[ "$output" == "bob "*self* ]]
	[ ! -e "$ST_HOME/peers/bob.json" ]
	# the name "trust" after --
	run st-users -- trust
	[ "$status" -eq 1 ]
	[[ "$output" == *"no such user: trust"* ]]
}

@test "trust on first use pins the peer, 0600 in a 0700 peers/" {
	relay
	reg alice
	reg bob
	run st-users alice
	[ "$status" -eq 0 ]
	[[ "$output" == *"pinned the identity of alice (trust on first use)"* ]]
	[ "$(mode "$ST_HOME/peers")" = 700 ]
	[ "$(mode "$ST_HOME/peers/alice.json")" = 600 ]
	python3 - "$ST_HOME/peers/alice.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["user"] == "alice" and p["trust"] == "tofu", p
assert set(p["identity"]) == {"ed25519", "x25519", "bind"}
assert p["first_seen"] <= p["last_seen"]
PY
	[ "$(jfield identity.ed25519 <"$ST_HOME/peers/alice.json")" = \
	  "$(as alice; st-keygen -p -j | jfield identity.ed25519)" ]
	run st-users alice
	[[ "$output" != *"pinned"* ]]
	[ "$(st-users -j alice | jfield new)" = false ]
	# both sides see the same safety number
	n=$(safety alice)
	as alice
	[ "$(safety bob)" = "$n" ]
	[[ "$n" == *"$(st-keygen -p -j | jfield safety_half)"* ]]
}

@test "a changed key is caught: exit 67, both numbers shown, the pin kept" {
	relay
	reg alice
	reg bob
	st-users alice >/dev/null
	old=$(safety alice)
	pin=$(sha256sum <"$ST_HOME/peers/alice.json")
	rekey alice
	as bob
	run st-users alice
	[ "$status" -eq 67 ]
	[[ "$output" == *"identity of alice changed"* ]]
	[[ "$output" == *"st-users trust alice"* ]]
	[[ "$output" == *"alice            changed "* ]]
	disp_old=$(echo "$old" | sed -E 's/(.{5})/\1 /g; s/ $//')
	[[ "$output" == *"was $disp_old, now "* ]]
	[ "$(sha256sum <"$ST_HOME/peers/alice.json")" = "$pin" ]
	run st-users -j alice
	[ "$status" -eq 67 ]
	[ "$(echo "${lines[-1]}" | jfield trust)" = changed ]
	[ "$(echo "${lines[-1]}" | jfield pinned_safety)" = "$old" ]
	[ "$(echo "${lines[-1]}" | jfield safety)" != "$old" ]
	# one changed name among good ones: 67 wins over 1
	run st-users alice nobody
	[ "$status" -eq 67 ]
}

@test "trust accepts the new key and drops the old session" {
	relay
	reg alice
	reg bob
	st-users alice >/dev/null
	mkdir -p -m 700 "$ST_HOME/ratchet"
	echo '{}' >"$ST_HOME/ratchet/alice.json"
	rekey alice
	as bob
	run st-users trust alice
	[ "$status" -eq 0 ]
	[[ "$output" == *"accepted the identity of alice"* ]]
	[ ! -e "$ST_HOME/ratchet/alice.json" ]
	run st-users alice
	[ "$status" -eq 0 ]
	[[ "$output" == "alice "*tofu* ]]
	[ "$(jfield identity.ed25519 <"$ST_HOME/peers/alice.json")" = \
	  "$(as alice; st-keygen -p -j | jfield identity.ed25519)" ]
	run st-users trust alice
	[ "$status" -eq 0 ]
	[[ "$output" == *"unchanged"* ]]
	run st-users trust nobody
	[ "$status" -eq 1 ]
	run st-users trust bob
	[ "$status" -eq 64 ]
}

@test "verify: the right 60 digits mark the pin verified, wrong ones do not" {
	relay
	reg alice
	reg bob
	n=$(safety alice)
	wrong=${n:0:59}$(( (${n:59:1} + 1) % 10 ))
	run st-users verify alice "$wrong"
	[ "$status" -eq 1 ]
	[[ "$output" == *"safety numbers differ"* ]]
	[[ "$output" == *"'st-users alice' shows the number"* ]]
	[ "$(jfield trust <"$ST_HOME/peers/alice.json")" = tofu ]
	# as the other side reads them out: groups of five, or with dashes
	groups=$(echo "$n" | sed -E 's/(.{5})/\1 /g')
	run st-users verify alice $groups
	[ "$status" -eq 0 ]
	[[ "$output" == "alice "*verified* ]]
	[ "$(jfield trust <"$ST_HOME/peers/alice.json")" = verified ]
	st-users verify alice "$(echo "$n" | sed -E 's/(.{5})/\1-/g; s/-$//')"
	[ "$(st-users -j | python3 -c '
import json, sys
print([json.loads(l)["trust"] for l in sys.stdin if json.loads(l)["user"] == "alice"][0])')" = verified ]
	# a new key puts the pin back to tofu, and the old digits no longer fit
	rekey alice
	as bob
	st-users trust alice
	[ "$(jfield trust <"$ST_HOME/peers/alice.json")" = tofu ]
	run st-users verify alice "$n"
	[ "$status" -eq 1 ]
	run st-users verify nobody "$n"
	[ "$status" -eq 1 ]
}

@test "forget drops the pin and the session; forgetting twice exits 1" {
	relay
	reg alice
	reg bob
	st-users alice >/dev/null
	mkdir -p -m 700 "$ST_HOME/ratchet"
	echo '{}' >"$ST_HOME/ratchet/alice.json"
	run st-users forget alice
	[ "$status" -eq 0 ]
	[ ! -e "$ST_HOME/peers/alice.json" ]
	[ ! -e "$ST_HOME/ratchet/alice.json" ]
	run st-users forget alice
	[ "$status" -eq 1 ]
	[[ "$output" == *"no pinned identity for alice"* ]]
	# after forget, a changed key is simply pinned anew
	rekey alice
	as bob
	run st-users alice
	[ "$status" -eq 0 ]
	[[ "$output" == *"pinned the identity of alice"* ]]
}

@test "not logged in exits 77; a corrupt pin exits 65 naming it" {
	relay
	reg alice
	reg bob
	st-users alice >/dev/null
	echo '{"v":1,"user":"alice"' >"$ST_HOME/peers/alice.json"
	run st-users alice
	[ "$status" -eq 65 ]
	[[ "$output" == *"peers/alice.json"* ]]
	echo '{"v":1,"user":"mallory","identity":{},"trust":"tofu","first_seen":1,"last_seen":1}' \
	    >"$ST_HOME/peers/alice.json"
	run st-users alice
	[ "$status" -eq 65 ]
	[[ "$output" == *"peers/alice.json"* ]]
	st-login --logout
	run st-users
	[ "$status" -eq 77 ]
	run st-users alice
	[ "$status" -eq 77 ]
}

@test "the public identity needs no passphrase: st-users works on protected keys" {
	relay
	reg alice
	as bob
	st-keygen --protect --passphrase-file "$PP"
	reg bob --passphrase-file "$PP"
	run setsid st-users alice </dev/null
	[ "$status" -eq 0 ]
	run setsid st-users verify alice "$(safety alice)" </dev/null
	[ "$status" -eq 0 ]
}

@test "a relay's record is checked: another user's, or a broken binding, exits 65" {
	relay
	reg alice
	reg bob
	api GET /v1/users/alice | sed 's/^200 //' >"$BATS_TEST_TMPDIR/alice.json"
	fake_relay "file:$BATS_TEST_TMPDIR/alice.json"
	run st-users -r "$FAKE_URL" carol
	[ "$status" -eq 65 ]
	[[ "$output" == *"asked for carol, got another user's record"* ]]
	[ ! -e "$ST_HOME/peers/carol.json" ]
	kill "$FAKE_PID"
	python3 - "$BATS_TEST_TMPDIR/alice.json" <<'PY'
import json, sys
f = sys.argv[1]
o = json.load(open(f))
b = o["identity"]["bind"]
o["identity"]["bind"] = ("B" if b[0] == "A" else "A") + b[1:]
open(f, "w").write(json.dumps(o))
PY
	fake_relay "file:$BATS_TEST_TMPDIR/alice.json"
	run st-users -r "$FAKE_URL" alice
	[ "$status" -eq 65 ]
	[[ "$output" == *"bad record for alice"* ]]
	[ ! -e "$ST_HOME/peers/alice.json" ]
}

@test "a directory of more than one page is listed whole, sorted, once" {
	relay --no-rate-limits
	reg alice
	reg bob
	# 521 more accounts sharing alice's public keys (the relay allows it)
	api POST /v1/users/alice/bundle '{}' | sed 's/^200 //' >"$BATS_TEST_TMPDIR/b.json"
	python3 - "$BATS_TEST_TMPDIR/b.json" <<'PY'
import json, os, sys, urllib.request
b = json.load(open(sys.argv[1]))
for i in range(521):
    body = json.dumps({"user": "u%03d" % i, "password": "correct horse",
                       "identity": b["identity"], "spk": b["spk"]}).encode()
    req = urllib.request.Request(os.environ["RELAY_URL"] + "/v1/accounts",
                                 data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    assert urllib.request.urlopen(req, timeout=10).status == 201
PY
	st-users >"$BATS_TEST_TMPDIR/list"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/list")" -eq 523 ]
	sort -u "$BATS_TEST_TMPDIR/list" | cmp - "$BATS_TEST_TMPDIR/list"
	[ "$(head -n 2 "$BATS_TEST_TMPDIR/list" | tr '\n' ' ')" = "alice bob " ]
	[ "$(tail -n 1 "$BATS_TEST_TMPDIR/list")" = u520 ]
	[ "$(st-users -j | wc -l)" -eq 523 ]
}
