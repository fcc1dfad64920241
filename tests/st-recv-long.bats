#!/usr/bin/env bats
# st-recv, the long runs: a 50-message conversation that turns the
# Double Ratchet at every message, and kill -9 of st-send and st-recv at
# random points.  (Apart from tests/st-recv.bats to keep each file short.)

load msg_helper

@test "st-recv: a long conversation, 50 alternating messages, each stored once" {
	users alice bob
	for i in $(seq 1 25); do
		as alice
		st-send -m "a$i" bob >/dev/null
		as bob
		[ "$(st-recv | sed -n 2p)" = "a$i" ]
		st-send -m "b$i" alice >/dev/null
		as alice
		[ "$(st-recv | sed -n 2p)" = "b$i" ]
	done
	[ "$(vault_count bob message)" -eq 25 ]
	[ "$(vault_count alice message)" -eq 25 ]
	[ "$(vault_texts alice | tail -1)" = "b25" ]
}

@test "st-recv: kill -9 of st-send and st-recv at random points loses nothing and stores nothing twice" {
	users alice bob
	as alice
	st-send -m "k0" bob >/dev/null
	for i in $(seq 1 20); do
		as alice
		st-send -m "k$i" bob >/dev/null 2>&1 &
		p=$!
		sleep "$(printf 0.%02d $((RANDOM % 30)))"
		kill -9 $p 2>/dev/null || true
		wait $p 2>/dev/null || true
		as bob
		st-recv -q >/dev/null 2>&1 &
		p=$!
		sleep "$(printf 0.%02d $((RANDOM % 30)))"
		kill -9 $p 2>/dev/null || true
		wait $p 2>/dev/null || true
	done
	as alice
	st-send --flush >/dev/null 2>&1
	[ -z "$(ls "$ST_HOME/outbox" | grep -v "\.tmp-")" ]
	as bob
	run st-recv -q
	[ "$status" -eq 0 ]
	[ "$(mailbox bob)" -eq 0 ]
	# every message alice's outbox let go arrived exactly once
	texts=$(vault_texts bob)
	[ "$(echo "$texts" | sort | uniq -d | wc -l)" -eq 0 ]
	sent=$(echo "$texts" | grep -c '^k')
	echo "kill -9 loop: $sent of 21 messages were sent, each stored once" >&3
	[ "$(vault_count bob undecryptable)" -eq 0 ]
	# and the session still works both ways
	as alice
	st-send -m "after" bob >/dev/null
	as bob
	[ "$(st-recv -j | jfield text)" = after ]
	st-send -m "back" alice >/dev/null
	as alice
	[ "$(st-recv -j | jfield text)" = back ]
}

@test "st-recv: killed at each step, a rerun finishes the message once" {
	users alice bob
	printf 'attached\n' >"$BATS_TEST_TMPDIR/att"
	# the first message starts the session (X3DH, a one-time prekey)
	for step in recv-committed recv-journal recv-files recv-stored \
	    recv-done recv-printed; do
		as alice
		st-send -m "s-$step" -a "$BATS_TEST_TMPDIR/att" bob >/dev/null
		as bob
		run env ST_TEST_CRASH=$step st-recv
		[ "$status" -eq 137 ]
		run st-recv
		[ "$status" -eq 0 ]
		[ "$(mailbox bob)" -eq 0 ]
	done
	texts=$(vault_texts bob)
	echo "$texts" | sort | uniq -d >&3
	[ "$(echo "$texts" | sort | uniq -d | wc -l)" -eq 0 ]
	[ "$(echo "$texts" | grep -c '^s-')" -eq 6 ]
	[ "$(vault_count bob file)" -eq 6 ]
	[ "$(vault_count bob undecryptable)" -eq 0 ]
	# the state moved on exactly: both directions still work
	as alice
	st-send -m "after" bob >/dev/null
	as bob
	[ "$(st-recv | sed -n 2p)" = after ]
	st-send -m "back" alice >/dev/null
	as alice
	[ "$(st-recv | sed -n 2p)" = back ]
}

@test "st-send: killed after the commit or after queueing: no key reused, a queued message goes once" {
	users alice bob
	as alice
	st-send -m "m0" bob >/dev/null
	run env ST_TEST_CRASH=send-committed st-send -m "lost" bob
	[ "$status" -eq 137 ]
	# nothing queued (the entry's temporary is left for the sweep)
	[ -z "$(ls "$ST_HOME/outbox" | grep -v '\.tmp-')" ]
	run env ST_TEST_CRASH=send-queued st-send -m "queued" bob
	[ "$status" -eq 137 ]
	[ "$(ls "$ST_HOME/outbox" | grep -vc '\.tmp-')" -eq 1 ]
	st-send -m "after" bob >/dev/null 2>&1
	[ -z "$(ls "$ST_HOME/outbox" | grep -v '\.tmp-')" ]
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = m0 ]
	[ "${lines[3]}" = queued ]
	[ "${lines[5]}" = after ]
	[ "${#lines[@]}" -eq 6 ]
}

@test "st-send: killed after the relay accepted, the retry sends the same bytes and the relay keeps one copy" {
	users alice bob
	as alice
	st-send -m "m0" bob >/dev/null
	run env ST_TEST_CRASH=send-posted st-send -m "posted" bob
	[ "$status" -eq 137 ]
	[ "$(ls "$ST_HOME/outbox" | wc -l)" -eq 1 ]
	[ "$(mailbox bob)" -eq 2 ]
	run st-send --flush
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^bob\ [0-9]+$ ]]
	[ -z "$(ls "$ST_HOME/outbox")" ]
	[ "$(mailbox bob)" -eq 2 ]
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[3]}" = posted ]
	[ "${#lines[@]}" -eq 4 ]
}

@test "st-send and st-recv killed at random points through a 1,000-message exchange: each sent message in the vault once" {
	users alice bob
	as alice
	echo hi | st-send bob >/dev/null
	n=${ST_CRASH_MESSAGES:-1000}
	# AddressSanitizer makes each command several times slower
	if ldd "$(command -v st-send)" | grep -q libasan; then n=${ST_CRASH_MESSAGES:-200}; fi
	run "$PY" "$BATS_TEST_DIRNAME/tools/client-crash.py" \
	    "$BATS_TEST_TMPDIR/alice" "$BATS_TEST_TMPDIR/bob" "$n"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"lost 0, duplicated 0, undecryptable 0"* ]]
}
