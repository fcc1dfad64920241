#!/usr/bin/env bats
# st-send against a live relay: both directions, groups, binary bodies,
# unknown users and changed identities (nothing sent to anyone), the
# outbox when the relay is down, attachments small and 100 MiB.

load msg_helper

@test "st-send: usage, version, bad options" {
	run st-send -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"st-send [-j] [-m TEXT] [-a FILE]..."* ]]
	[[ "$output" == *"st-send --flush"* ]]
	run st-send -V
	[ "$status" -eq 0 ]
	run st-send
	[ "$status" -eq 64 ]
	run st-send --bogus bob
	[ "$status" -eq 64 ]
	run st-send --trust-new=sometimes bob
	[ "$status" -eq 64 ]
	run st-send -m x 'Bad/Name'
	[ "$status" -eq 64 ]
	run st-send -m x bob bob
	[ "$status" -eq 64 ]
	run st-send --flush bob
	[ "$status" -eq 64 ]
	run st-send -m "$(printf 'a\377b')" bob
	[ "$status" -eq 64 ]
}

@test "st-send: both directions; one id per recipient; files are 0600" {
	users alice bob
	as alice
	run st-send bob <<<"hello bob"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^bob\ [0-9]+$ ]]
	[ "$(mode "$ST_HOME/ratchet/bob.json")" = 600 ]
	[ "$(mode "$ST_HOME/ratchet")" = 700 ]
	[ "$(mode "$ST_HOME/outbox")" = 700 ]
	[ -z "$(ls "$ST_HOME/outbox")" ]
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "From alice at "* ]]
	[ "${lines[1]}" = "hello bob" ]
	run st-send -m "hello alice" alice
	[ "$status" -eq 0 ]
	as alice
	run st-recv -j
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jfield text)" = "hello alice" ]
	[ "$(echo "$output" | jfield from)" = bob ]
}

@test "st-send: group fan-out to three users shares one message id" {
	users alice bob carol dave
	as alice
	run st-send -j -m "to the group" bob carol dave
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[ "$(echo "${lines[0]}" | jfield to)" = bob ]
	[ "$(echo "${lines[2]}" | jfield to)" = dave ]
	mid=$(echo "${lines[0]}" | jfield msgid)
	[ "$(echo "${lines[1]}" | jfield msgid)" = "$mid" ]
	[ "$(echo "${lines[2]}" | jfield msgid)" = "$mid" ]
	for u in bob carol dave; do
		as $u
		out=$(st-recv -j)
		[ "$(echo "$out" | jfield id)" = "$mid" ]
		[ "$(echo "$out" | jfield text)" = "to the group" ]
		echo "$out" | "$PY" -c 'import json,sys
assert json.load(sys.stdin)["to"] == ["bob", "carol", "dave"]'
	done
}

@test "st-send: binary stdin goes as data and comes back byte for byte" {
	users alice bob
	head -c 3000 /dev/urandom >"$BATS_TEST_TMPDIR/bin"
	printf '\0\377' >>"$BATS_TEST_TMPDIR/bin"
	as alice
	st-send bob <"$BATS_TEST_TMPDIR/bin"
	as bob
	out=$(st-recv -j)
	echo "$out" | "$PY" -c 'import json,sys,base64
o = json.load(sys.stdin)
assert "text" not in o
d = o["data"]
sys.stdout.buffer.write(base64.urlsafe_b64decode(d + "=" * (-len(d) % 4)))' \
	    >"$BATS_TEST_TMPDIR/got"
	cmp "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/got"
	item=$(echo "$out" | jfield item)
	st-vault cat "$item" >"$BATS_TEST_TMPDIR/got2"
	cmp "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/got2"
}

@test "st-send: an unknown user is exit 1 and nothing goes to anyone" {
	users alice bob
	as alice
	run st-send -m "hi" bob nosuchuser
	[ "$status" -eq 1 ]
	[[ "$output" == *"no such user: nosuchuser at $RELAY_URL"* ]]
	[[ "$output" == *"st-users lists the users"* ]]
	[ "$(mailbox bob)" -eq 0 ]
	[ -z "$(ls "$ST_HOME/outbox" 2>/dev/null)" ]
	[ ! -e "$ST_HOME/ratchet/bob.json" ]
}

@test "st-send: a too large body is exit 65 with a hint, nothing sent" {
	users alice bob
	as alice
	run st-send bob < <(head -c 200000 /dev/zero | tr '\0' a)
	[ "$status" -eq 65 ]
	[[ "$output" == *"-a"* ]]
	[ "$(mailbox bob)" -eq 0 ]
	# the largest body that fits goes
	head -c 48000 /dev/zero | tr '\0' a | st-send bob
	[ "$(mailbox bob)" -eq 1 ]
}

@test "st-send: a changed identity is exit 67 with both safety numbers; --trust-new=always" {
	users alice bob carol
	as alice
	st-users bob >/dev/null               # pin bob, no session yet
	# bob starts over: new keys, same name
	as bob
	st-register --delete --password-file "$PW" 2>/dev/null
	export ST_HOME=$BATS_TEST_TMPDIR/bob2
	st-register -r "$RELAY_URL" --password-file "$PW" bob 2>/dev/null
	as alice
	run st-send -m "secret" carol bob
	[ "$status" -eq 67 ]
	[[ "$output" == *"safety number was"* ]]
	[[ "$output" == *"now"* ]]
	[[ "$output" == *"identity of bob changed"*"then run 'st-users trust bob'"* ]]
	[ "$(mailbox carol)" -eq 0 ]
	run st-send --trust-new=always -m "hello new bob" bob
	[ "$status" -eq 0 ]
	export ST_HOME=$BATS_TEST_TMPDIR/bob2
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "hello new bob" ]
}

@test "st-send: a key changed behind a session is refused by the relay (409): 67, the others delivered" {
	users alice bob carol
	as alice
	st-send -m "one" bob carol >/dev/null
	as bob
	st-register --delete --password-file "$PW" 2>/dev/null
	export ST_HOME=$BATS_TEST_TMPDIR/bob2
	st-register -r "$RELAY_URL" --password-file "$PW" bob 2>/dev/null
	as alice
	run st-send -m "two" carol bob
	[ "$status" -eq 67 ]
	[[ "$output" == *"bob: not sent"* ]]
	[[ "$output" == *"st-users trust bob"* ]]
	[[ "$output" == *"carol "* ]]
	[ -z "$(ls "$ST_HOME/outbox")" ]
	[ "$(mailbox carol)" -eq 2 ]
	[ "$(mailbox bob2)" -eq 0 ]
	# a bot accepts the new key and the copy goes again, same message id
	run st-send -j --trust-new=always -m "three" carol bob
	[ "$status" -eq 0 ]
	[[ "$output" == *"accepting the new key"* ]]
	mid=$(echo "$output" | grep '"to":"carol"' | jfield msgid)
	export ST_HOME=$BATS_TEST_TMPDIR/bob2
	out=$(st-recv -j)
	[ "$(echo "$out" | jfield text)" = three ]
	[ "$(echo "$out" | jfield id)" = "$mid" ]
	echo "$out" | "$PY" -c 'import json,sys
assert json.load(sys.stdin)["to"] == ["carol", "bob"]'
}

@test "st-send: relay down is exit 69 with the message kept; the next run sends it once" {
	users alice bob
	as alice
	st-send -m "session" bob >/dev/null
	# a new peer cannot even be resolved without the relay
	ST_RELAY=$(dead_url) run st-send -m "x" bob nosuchuser
	[ "$status" -eq 69 ]
	ST_RELAY=$(dead_url) run st-send -m "while down" bob
	[ "$status" -eq 69 ]
	[[ "$output" == *"kept in the outbox"* ]]
	[ "$(ls "$ST_HOME/outbox" | wc -l)" -eq 1 ]
	[ "$(mode "$ST_HOME/outbox/$(ls "$ST_HOME/outbox")")" = 600 ]
	# a second message while still down queues behind it
	ST_RELAY=$(dead_url) run st-send -m "still down" bob
	[ "$status" -eq 69 ]
	[ "$(ls "$ST_HOME/outbox" | wc -l)" -eq 2 ]
	run st-send --flush
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ -z "$(ls "$ST_HOME/outbox")" ]
	run st-send --flush
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[3]}" = "while down" ]
	[ "${lines[5]}" = "still down" ]
	[ "${#lines[@]}" -eq 6 ]
}

@test "st-send: leftovers go first on the next ordinary send" {
	users alice bob
	as alice
	st-send -m "zeroth" bob >/dev/null
	ST_RELAY=$(dead_url) st-send -m "first" bob 2>/dev/null || true
	run st-send -m "second" bob
	[ "$status" -eq 0 ]
	[[ "$output" == *"sent 1 message queued by an earlier run"* ]]
	as bob
	out=$(st-recv)
	[ "$(echo "$out" | sed -n 4p)" = first ]
	[ "$(echo "$out" | sed -n 6p)" = second ]
}

@test "st-send: a small attachment arrives in the vault and in -o DIR" {
	users alice bob
	printf 'file body\n' >"$BATS_TEST_TMPDIR/notes.txt"
	as alice
	run st-send -m "see attached" -a "$BATS_TEST_TMPDIR/notes.txt" bob
	[ "$status" -eq 0 ]
	as bob
	mkdir "$BATS_TEST_TMPDIR/dl"
	out=$(st-recv -j -o "$BATS_TEST_TMPDIR/dl")
	[ "$(echo "$out" | jfield text)" = "see attached" ]
	cmp "$BATS_TEST_TMPDIR/notes.txt" "$BATS_TEST_TMPDIR/dl/notes.txt"
	item=$(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["item"])')
	cmp "$BATS_TEST_TMPDIR/notes.txt" <(st-vault cat "$item")
	[ "$(vault_count bob file)" -eq 1 ]
	# an attachment without text: files only
	as alice
	st-send -a "$BATS_TEST_TMPDIR/notes.txt" bob </dev/null >/dev/null
	as bob
	out=$(st-recv -j)
	echo "$out" | "$PY" -c 'import json,sys
o = json.load(sys.stdin)
assert "text" not in o and o["files"][0]["name"] == "notes.txt"'
	# a missing file is exit 66 before anything is sent
	as alice
	run st-send -m x -a "$BATS_TEST_TMPDIR/nope" bob
	[ "$status" -eq 66 ]
}

@test "st-send: a 100 MiB attachment in constant memory both ways" {
	users alice bob
	head -c $((100 << 20)) /dev/urandom >"$BATS_TEST_TMPDIR/big"
	as alice
	/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss.send" \
	    st-send -m big -a "$BATS_TEST_TMPDIR/big" bob >/dev/null
	as bob
	mkdir "$BATS_TEST_TMPDIR/dl"
	/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss.recv" \
	    st-recv -q -o "$BATS_TEST_TMPDIR/dl"
	cmp "$BATS_TEST_TMPDIR/big" "$BATS_TEST_TMPDIR/dl/big"
	rm "$BATS_TEST_TMPDIR/big" "$BATS_TEST_TMPDIR/dl/big"
	send=$(tail -1 "$BATS_TEST_TMPDIR/rss.send")
	recv=$(tail -1 "$BATS_TEST_TMPDIR/rss.recv")
	echo "max RSS: st-send $send KiB, st-recv $recv KiB" >&3
	# AddressSanitizer's shadow and quarantine make RSS meaningless
	if ldd "$(command -v st-send)" | grep -q libasan; then
		skip "RSS is not measured under AddressSanitizer"
	fi
	# valgrind's own memory and shadow state are in the RSS too
	if under_valgrind; then
		skip "RSS is not measured under valgrind"
	fi
	[ "$send" -lt 30000 ]
	[ "$recv" -lt 30000 ]
}

@test "st-send: temporaries a killed writer left are swept when they are a minute old" {
	users alice bob
	as alice
	st-send -m "one" bob >/dev/null
	old=$ST_HOME/outbox/01a2b3c4d5e6f708-00000000000000000000000000000000.json.tmp-0123456789ab
	fresh=$ST_HOME/ratchet/bob.json.tmp-ba9876543210
	kept=$ST_HOME/ratchet/bob.json.tmp-notours
	echo partial >"$old"
	echo partial >"$fresh"
	echo partial >"$kept"
	cp "$old" "$ST_HOME/peers/bob.json.tmp-aaaaaaaaaaaa"
	touch -d '2 minutes ago' "$old" "$kept" "$ST_HOME/peers/bob.json.tmp-aaaaaaaaaaaa"
	run st-send -m "two" bob
	[ "$status" -eq 0 ]
	[ ! -e "$old" ]
	[ ! -e "$ST_HOME/peers/bob.json.tmp-aaaaaaaaaaaa" ]
	[ -e "$fresh" ]         # could be a live writer's
	[ -e "$kept" ]          # not a name st-send makes
	as bob
	[ "$(st-recv -j | wc -l)" -eq 2 ]
}
