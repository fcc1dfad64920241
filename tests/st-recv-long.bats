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
