#!/usr/bin/env bats
# st-register against a live st-relay: accounts, the config it saves, bad
# names and passwords refused before the network, deletion, and keys
# protected by a passphrase used without a terminal.

load account_helper

@test "help goes to stdout and exits 0; bad usage exits 64" {
	run st-register -h
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: st-register [-r URL]"* ]]
	run st-register -V
	[ "$status" -eq 0 ]
	[[ "$output" == "st-register "* ]]
	for bad in "" "a b" "--bogus a" "--delete a" "--password $PW a" \
	    "--pass $PW a" "-r"; do
		run st-register $bad
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: st-register"* ]]
		[[ "$output" != *"cannot open"* ]]
	done
	[ ! -e "$ST_HOME" ]
}

@test "a bad user name exits 64 before any network" {
	url=$(dead_url)
	for u in "" Alice a/b .. ../x -a .a "a b" $'a\033[2J' \
	    abcdefghijklmnopqrstuvwxyz0123456 $'\xe2\x80\xaeab'; do
		run st-register -r "$url" --password-file "$PW" -- "$u"
		[ "$status" -eq 64 ]
		[[ "$output" == *"bad user name"* ]]
		[[ "$output" != *$'\033'* ]]
	done
	# the longest name the rule allows reaches the network (and fails)
	run st-register -r "$url" --password-file "$PW" \
	    abcdefghijklmnopqrstuvwxyz012345
	[ "$status" -eq 69 ]
}

@test "a password of the wrong length exits 64 before any network" {
	printf 'short\n' >"$BATS_TEST_TMPDIR/short"
	run st-register -r "$(dead_url)" --password-file "$BATS_TEST_TMPDIR/short" alice
	[ "$status" -eq 64 ]
	[[ "$output" == *"8 to 1024 bytes"* ]]
	head -c 1025 /dev/zero | tr '\0' x >"$BATS_TEST_TMPDIR/long"
	run st-register -r "$(dead_url)" --password-file "$BATS_TEST_TMPDIR/long" alice
	[ "$status" -eq 64 ]
	run st-register -r "$(dead_url)" --password-file "$BATS_TEST_TMPDIR/none" alice
	[ "$status" -eq 66 ]
	: >"$BATS_TEST_TMPDIR/empty"
	run st-register -r "$(dead_url)" --password-file "$BATS_TEST_TMPDIR/empty" alice
	[ "$status" -eq 65 ]
	run st-register -r "$(dead_url)" --password-file - --passphrase-file - alice
	[ "$status" -eq 64 ]
}

@test "registers two users: keys, config, token, private modes" {
	relay
	run reg alice
	[ "$status" -eq 0 ]
	[[ "$output" == *"registered alice at $RELAY_URL; logged in until"* ]]
	reg bob
	for u in alice bob; do
		as "$u"
		[ "$(mode "$ST_HOME")" = 700 ]
		for f in identity.json prekeys.json vault.key config token lock; do
			[ "$(mode "$ST_HOME/$f")" = 600 ]
		done
		[ "$(jfield user <"$ST_HOME/config")" = "$u" ]
		[ "$(jfield relay <"$ST_HOME/config")" = "$RELAY_URL" ]
		[ "$(relay_opks)" -eq 100 ]
	done
	[ "$(st-users)" = "$(printf 'alice\nbob')" ]
	# the password never reached the disk
	! grep -rq 'correct horse' "$BATS_TEST_TMPDIR/alice" "$BATS_TEST_TMPDIR/bob" || false
}

@test "uses keys st-keygen made; a taken name exits 1 and saves nothing" {
	relay
	as alice
	st-keygen
	idpub=$(st-keygen -p -j | jfield identity.ed25519)
	reg alice
	[ "$(st-keygen -p -j | jfield identity.ed25519)" = "$idpub" ]
	as mallory
	run st-register -r "$RELAY_URL" --password-file "$PW" alice
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot register alice at $RELAY_URL: the name is taken"* ]]
	[ ! -e "$ST_HOME/token" ]
	! grep -q '"user"' "$ST_HOME/config" 2>/dev/null || false
}

@test "a home belongs to one user" {
	relay
	reg alice
	run st-register -r "$RELAY_URL" --password-file "$PW" bob
	[ "$status" -eq 64 ]
	[[ "$output" == *"this home ($ST_HOME) belongs to alice"* ]]
	[[ "$output" == *"st-register --delete"* ]]
	[ "$(jfield user <"$ST_HOME/config")" = alice ]
}

@test "relay down: exit 69 at once, nothing saved in the config" {
	start=$(date +%s)
	run st-register -r "$(dead_url)" --password-file "$PW" alice
	[ "$status" -eq 69 ]
	[ $(( $(date +%s) - start )) -lt "$(slow 5)" ]
	[[ "$output" == *"cannot register alice"* ]]
	[[ "$output" == *"cannot connect"*"--relay URL or ST_RELAY"* ]]
	[ ! -e "$ST_HOME/config" ]
	[ ! -e "$ST_HOME/token" ]
}

@test "plain http is for loopback only, judged on the real host" {
	for url in http://relay.example http://127.0.0.1@relay.example/ \
	    http://127.0.0.1.relay.example/ "http://127.0.0.1:1/?x=1" ftp://x; do
		run st-register -r "$url" --password-file "$PW" alice
		[ "$status" -eq 78 ]
	done
	run st-register -r http://relay.example --password-file "$PW" alice
	[[ "$output" == *"--insecure-http"* ]]
	run st-register -r http://[::1]:1 --password-file "$PW" alice
	[ "$status" -eq 69 ]
}

@test "--delete: a wrong password changes nothing; the right one removes the account" {
	relay
	reg bob
	reg alice
	st-users bob >/dev/null
	printf 'wrong password\n' >"$BATS_TEST_TMPDIR/wrong"
	cfg=$(cat "$ST_HOME/config")
	run st-register --delete --password-file "$BATS_TEST_TMPDIR/wrong"
	[ "$status" -eq 77 ]
	[[ "$output" == *"cannot delete the account at $RELAY_URL: wrong password"* ]]
	[ "$(cat "$ST_HOME/config")" = "$cfg" ]
	st-login --status >/dev/null
	run st-register --delete --password-file "$PW"
	[ "$status" -eq 0 ]
	[[ "$output" == *"deleted the account alice at $RELAY_URL"* ]]
	[[ "$output" == *"100 one-time prekeys"*"queued messages"*"session token"* ]]
	[[ "$output" == *"kept the keys"* ]]
	[ ! -e "$ST_HOME/token" ]
	! grep -q '"user"' "$ST_HOME/config" || false
	[ -e "$ST_HOME/identity.json" ] && [ -e "$ST_HOME/peers/bob.json" ]
	# gone from the relay: the directory, the keys and the bundle
	as bob
	run st-users alice
	[ "$status" -eq 1 ]
	[ "$(st-users)" = bob ]
	[[ "$(api POST /v1/users/alice/bundle '{}')" == "404 "* ]]
	# and the name is free again at once (the relay keeps no tombstone)
	as alice
	run st-register -r "$RELAY_URL" --password-file "$PW" alice
	[ "$status" -eq 0 ]
	[ "$(relay_opks)" -eq 100 ]
	as bob
	run st-users alice
	[ "$status" -eq 0 ]
}

@test "--delete needs a live session and a registered home" {
	relay
	run st-register --delete --password-file "$PW"
	[ "$status" -eq 78 ]
	reg alice
	st-login --logout
	run st-register --delete --password-file "$PW"
	[ "$status" -eq 77 ]
	[[ "$output" == *"not logged in to $RELAY_URL"*": run st-login"* ]]
	# asked nothing: the password file was never needed
	run st-register --delete --password-file "$BATS_TEST_TMPDIR/none"
	[ "$status" -eq 77 ]
}

@test "protected keys: registration reads --passphrase-file, no terminal needed" {
	relay
	as alice
	st-keygen --protect --passphrase-file "$PP"
	printf 'not it\n' >"$BATS_TEST_TMPDIR/badpp"
	run setsid st-register -r "$RELAY_URL" --password-file "$PW" \
	    --passphrase-file "$BATS_TEST_TMPDIR/badpp" alice </dev/null
	[ "$status" -eq 77 ]
	[[ "$output" == *"wrong passphrase"*"identity.json"* ]]
	[ ! -e "$ST_HOME/token" ]
	# no passphrase at all and no terminal: a usage error, nothing sent
	run setsid st-register -r "$RELAY_URL" --password-file "$PW" alice </dev/null
	[ "$status" -eq 64 ]
	as bob
	reg bob
	run st-users alice
	[ "$status" -eq 1 ]
	as alice
	run setsid st-register -r "$RELAY_URL" --password-file "$PW" \
	    --passphrase-file "$PP" alice </dev/null
	[ "$status" -eq 0 ]
	# the new one-time prekeys went into the wrapped file
	grep -q '"wrap"' "$ST_HOME/prekeys.json"
	! grep -q '"priv"' "$ST_HOME/prekeys.json" || false
	[ "$(relay_opks)" -eq 100 ]
}

@test "a corrupt key file exits 65 naming it, before the relay hears of it" {
	relay
	as alice
	st-keygen
	printf '{"v":1,"spks":[' >"$ST_HOME/prekeys.json"
	run st-register -r "$RELAY_URL" --password-file "$PW" alice
	[ "$status" -eq 65 ]
	[[ "$output" == *"prekeys.json"* ]]
	as bob
	reg bob
	run st-users alice
	[ "$status" -eq 1 ]
}
