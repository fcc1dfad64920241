#!/usr/bin/env bats
# Errors that say how to fix (issue 8): the common failures, from every
# command that meets them, name the file, user or relay involved and the
# next command to run, on one line, with the exit code of SPEC §2.  The
# audit behind them is doc/errors.md.

load msg_helper
bats_require_minimum_version 1.5.0

# one_line: $output is a single "st-...: " diagnostic line.
one_line() {
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" == st-*": "* ]]
}

@test "no identity: every command that needs keys says run st-keygen (78)" {
	mkdir -m 700 "$ST_HOME"
	printf '{"relay":"%s","user":"alice"}' "$(dead_url)" >"$ST_HOME/config"
	run st-keygen -p
	[ "$status" -eq 78 ]
	one_line
	[[ "$output" == *"no keys in $ST_HOME: run st-keygen"* ]]
	run st-login --password-file "$PW"
	[ "$status" -eq 78 ]
	[[ "$output" == *"no keys in $ST_HOME: run st-keygen"* ]]
	run st-users verify bob "$(printf '0%.0s' {1..60})"
	[ "$status" -eq 78 ]
	[[ "$output" == *"run st-keygen"* ]]
	# one key file lost: named, and what st-keygen -f would cost said
	st-keygen 2>/dev/null
	rm "$ST_HOME/prekeys.json"
	run st-login --password-file "$PW"
	[ "$status" -eq 66 ]
	one_line
	[[ "$output" == *"missing key file $ST_HOME/prekeys.json: put back a copy, or make new keys (a new identity) with st-keygen -f"* ]]
}

@test "not registered, no relay URL: the config file and st-register are named (78)" {
	for cmd in "st-login --password-file $PW" "st-send -m hi bob" \
	    "st-recv" "st-register --delete --password-file $PW"; do
		run $cmd
		[ "$status" -eq 78 ]
		one_line
		[[ "$output" == *"not registered (no user in $ST_HOME/config): run st-register USER first"* ]]
	done
	run st-users
	[ "$status" -eq 78 ]
	one_line
	[[ "$output" == *"no relay URL in $ST_HOME/config: give --relay URL or set ST_RELAY"* ]]
	[[ "$output" == *"st-register -r URL USER"* ]]
}

@test "not logged in: each command names the relay and the token file, and says run st-login (77)" {
	users alice bob
	as alice
	st-login --logout 2>/dev/null
	for cmd in "st-send -m hi bob" "st-recv" "st-users" "st-users bob" \
	    "st-send -c lobby -m hi" "st-recv -c lobby" \
	    "st-register --delete --password-file $PW"; do
		run $cmd
		[ "$status" -eq 77 ]
		one_line
		[[ "$output" == *"not logged in to $RELAY_URL (no $ST_HOME/token): run st-login"* ]]
	done
	# a token the relay no longer takes says the same, with what it said
	printf 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n' >"$ST_HOME/token"
	run st-users
	[ "$status" -eq 77 ]
	one_line
	[[ "$output" == *"not logged in to $RELAY_URL or the session expired: run st-login"* ]]
	# and nothing secret: the token is not repeated
	[[ "$output" != *xxxxxxxx* ]]
}

@test "unknown user: the user and the relay are named, st-users pointed at (1)" {
	users alice
	as alice
	run st-send -m hi nosuch
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == *"no such user: nosuch at $RELAY_URL (st-users lists the users there)"* ]]
	run st-users nosuch
	[ "$status" -eq 1 ]
	[[ "$output" == *"no such user: nosuch at $RELAY_URL"* ]]
	run st-users trust nosuch
	[ "$status" -eq 1 ]
	[[ "$output" == *"no such user: nosuch at $RELAY_URL"* ]]
}

@test "relay down: the URL is named with --relay and ST_RELAY; nothing is lost (69)" {
	users alice bob
	as alice
	st-send -m "first" bob >/dev/null       # a session: later sends queue
	dead=$(dead_url)
	for cmd in "st-users" "st-login --password-file $PW" \
	    "st-send -c lobby -m hi"; do
		run $cmd -r "$dead"
		[ "$status" -eq 69 ]
		one_line
		[[ "$output" == *"relay $dead: cannot connect"* ]]
		[[ "$output" == *"--relay URL or ST_RELAY"* ]]
	done
	# the URL from ST_RELAY is the one named
	ST_RELAY=$dead run st-recv
	[ "$status" -eq 69 ]
	[[ "${lines[-1]}" == "st-recv: relay $dead: cannot connect"*"--relay URL or ST_RELAY" ]]
	ST_RELAY=$dead run st-send -m "later" bob
	[ "$status" -eq 69 ]
	one_line
	[[ "$output" == *"relay $dead: cannot connect"*"kept in the outbox"* ]]
	# the saved relay gets it once it is given back
	run st-send --flush
	[ "$status" -eq 0 ]
	[ "$(mailbox bob)" -eq 2 ]
}

@test "changed identity: send, receive and st-users name the user and 'st-users trust' (67)" {
	users alice bob
	as alice
	st-users bob >/dev/null 2>&1
	# bob starts over in a new home: new keys, same name
	as bob
	st-register --delete --password-file "$PW" 2>/dev/null
	export ST_HOME=$BATS_TEST_TMPDIR/bob2
	st-register -r "$RELAY_URL" --password-file "$PW" bob 2>/dev/null
	st-send -m "from the new bob" alice >/dev/null
	as alice
	run st-send -m hi bob
	[ "$status" -eq 67 ]
	[[ "$output" == *"identity of bob changed (safety number was "*", now "*"compare safety numbers with bob, then run 'st-users trust bob'"* ]]
	run st-users bob
	[ "$status" -eq 67 ]
	[[ "$output" == *"then run 'st-users trust bob'"* ]]
	run st-recv
	[ "$status" -eq 67 ]
	[[ "$output" == *"left on the relay: "*"'st-users trust bob'"* ]]
	# the command it names is the fix
	run st-users trust bob
	[ "$status" -eq 0 ]
	run st-send -m hi bob
	[ "$status" -eq 0 ]
}

@test "wrong vault key: the item and the vault.key tried are named (1); decrypt points at -i" {
	st-keygen 2>/dev/null
	id=$(printf 'kept' | st-vault put -n note)
	cp "$ST_HOME/vault.key" "$BATS_TEST_TMPDIR/right.key"
	ST_HOME=$BATS_TEST_TMPDIR/other st-keygen 2>/dev/null
	cp "$BATS_TEST_TMPDIR/other/vault.key" "$ST_HOME/vault.key"
	for cmd in "ls" "cat $id" "grep kept"; do
		run st-vault $cmd
		[ "$status" -eq 1 ]
		one_line
		[[ "$output" == *"$ST_HOME/vault/$id"*": the vault key $ST_HOME/vault.key does not open it"* ]]
		[[ "$output" == *"put back the vault.key it was written with"* ]]
	done
	# the filter names its file and the option that gives the right key
	run st-vault decrypt "$ST_HOME/vault/$id.age"
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == *"$ST_HOME/vault/$id.age: no identity matched any of the recipients: give the file's key with -i IDENTITY"* ]]
	run st-vault decrypt -i "$BATS_TEST_TMPDIR/right.key" "$ST_HOME/vault/$id.age"
	[ "$status" -eq 0 ]
	[ "$output" = kept ]
	# no key at all: the file is named, and putting it back is the fix
	# (not st-keygen, which would make another key, or with -f another
	# identity)
	rm "$ST_HOME/vault.key"
	run st-vault ls
	[ "$status" -eq 66 ]
	one_line
	[[ "$output" == *"the vault has no key: $ST_HOME/vault.key is missing; put back the vault.key"* ]]
	# nor does a put make a new key that would open none of the items
	run st-vault put -n new <<<"new"
	[ "$status" -eq 66 ]
	one_line
	[[ "$output" == *"the vault has no key: $ST_HOME/vault.key is missing and $ST_HOME/vault holds items only it opens; put it back"* ]]
	[ ! -e "$ST_HOME/vault.key" ]
	cp "$BATS_TEST_TMPDIR/right.key" "$ST_HOME/vault.key"
	[ "$(st-vault cat "$id")" = kept ]
}

@test "no terminal for a secret: the secret and the option that gives it are named (64)" {
	users alice
	as alice
	run setsid -w st-login </dev/null
	[ "$status" -eq 64 ]
	one_line
	[[ "$output" == *"no terminal to ask for the password for alice; give it with --password-file F"* ]]
	run setsid -w st-register --delete </dev/null
	[ "$status" -eq 64 ]
	[[ "$output" == *"password of alice"*"--password-file F"* ]]
	run setsid -w st-keygen -f --protect </dev/null
	[ "$status" -eq 64 ]
	[[ "$output" == *"new passphrase; give it with --passphrase-file F"* ]]
}

@test "a held lock names the lock file (75)" {
	users alice bob
	as alice
	exec 9>"$ST_HOME/lock"
	flock 9
	run st-send -m hi bob
	exec 9>&-
	[ "$status" -eq 75 ]
	one_line
	[[ "$output" == *"$ST_HOME/lock is busy (another st command holds the lock); try again"* ]]
}
