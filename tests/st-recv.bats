#!/usr/bin/env bats
# st-recv against a live relay: conversations, out-of-order delivery,
# hooks, -o DIR with hostile names, -f wake-up, overlapping runs, kill -9
# at random points, tampered and replayed envelopes, changed identities,
# terminal escapes.

load msg_helper

@test "st-recv: usage, version, bad options" {
	run st-recv -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"st-recv [-j] [-q] [-f | -w SECONDS] [-n MAX]"* ]]
	run st-recv -V
	[ "$status" -eq 0 ]
	run st-recv extra
	[ "$status" -eq 64 ]
	run st-recv -f -w 3
	[ "$status" -eq 64 ]
	run st-recv -w 61
	[ "$status" -eq 64 ]
	run st-recv -n 0
	[ "$status" -eq 64 ]
	run st-recv --from 'Bad/Name'
	[ "$status" -eq 64 ]
	run st-recv --no-such-option
	[ "$status" -eq 64 ]
}

@test "st-recv: an empty mailbox is exit 0 and silent; -q stores without printing" {
	users alice bob
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	as alice
	st-send -m "for the vault" bob >/dev/null
	as bob
	run st-recv -q
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(vault_texts bob)" = "for the vault" ]
	[ "$(mailbox bob)" -eq 0 ]
	[ "$(mode "$ST_HOME/inbox.log")" = 600 ]
}

@test "st-recv: out-of-order delivery and acks decrypt every message once" {
	users alice bob
	as alice
	st-send -m "m0" bob >/dev/null
	dead=$(dead_url)
	ST_RELAY=$dead st-send -m "m1" bob 2>/dev/null || true
	ST_RELAY=$dead st-send -m "m2" bob 2>/dev/null || true
	ST_RELAY=$dead st-send -m "m3" bob 2>/dev/null || true
	# m3 reaches the relay first, with its own client id and bytes
	last=$(ls "$ST_HOME/outbox" | tail -1)
	env3=$("$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["envelope"]))' "$ST_HOME/outbox/$last")
	[ "$(post_envelope alice bob "$env3")" = 201 ]
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "m0" ]
	[ "${lines[3]}" = "m3" ]
	as alice
	st-send --flush >/dev/null
	as bob
	out=$(st-recv 2>"$BATS_TEST_TMPDIR/err")
	[ "$(echo "$out" | sed -n 2p)" = "m1" ]
	[ "$(echo "$out" | sed -n 4p)" = "m2" ]
	# m3 came twice (posted by hand, then by the flush): stored once
	[ "$(echo "$out" | wc -l)" -eq 4 ]
	grep -q replays "$BATS_TEST_TMPDIR/err"
	[ "$(vault_count bob message)" -eq 4 ]
}

@test "st-recv: --exec gets the body on stdin and ST_* in its environment" {
	users alice bob carol
	printf 'attached\n' >"$BATS_TEST_TMPDIR/a.txt"
	as alice
	mid=$(printf 'line one\n$(touch pwned)\n' |
	    st-send -j -a "$BATS_TEST_TMPDIR/a.txt" bob carol | head -1 | jfield msgid)
	as bob
	hook='cat >"$BATS_TEST_TMPDIR/body"; env | grep ^ST_ | sort >"$BATS_TEST_TMPDIR/env"'
	run st-recv -q --exec "$hook"
	[ "$status" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/body")" = "$(printf 'line one\n$(touch pwned)')" ]
	[ ! -e pwned ] && [ ! -e "$BATS_TEST_TMPDIR/pwned" ]
	grep -qx "ST_FROM=alice" "$BATS_TEST_TMPDIR/env"
	grep -qx "ST_ID=$mid" "$BATS_TEST_TMPDIR/env"
	grep -qx "ST_TO=bob,carol" "$BATS_TEST_TMPDIR/env"
	grep -Eqx "ST_TS=[0-9]{13}" "$BATS_TEST_TMPDIR/env"
	grep -Eqx "ST_ITEM=[0-9a-f]{20}" "$BATS_TEST_TMPDIR/env"
	file=$(sed -n 's/^ST_FILES=//p' "$BATS_TEST_TMPDIR/env")
	[ "$(st-vault cat "$file")" = attached ]
	[ "$(mailbox bob)" -eq 0 ]
}

@test "st-recv: a failing hook leaves the message unacknowledged; a later run retries the hook once" {
	users alice bob
	as alice
	st-send -m "one" bob >/dev/null
	st-send -m "two" bob >/dev/null
	as bob
	run st-recv --exec 'b=$(cat); [ "$b" = two ] && exit 3; echo "$b" >>"$BATS_TEST_TMPDIR/seen"'
	[ "$status" -eq 75 ]
	[[ "$output" == *"hook failed (exit 3)"* ]]
	[ "$(mailbox bob)" -eq 1 ]
	[ "$(vault_count bob message)" -eq 2 ]
	# without --exec the message is acknowledged silently later; with it,
	# only the hook runs again, and nothing is printed or stored twice
	run st-recv --exec 'b=$(cat); echo "$b" >>"$BATS_TEST_TMPDIR/seen"'
	[ "$status" -eq 0 ]
	[ -z "$(echo "$output" | grep From)" ]
	[ "$(cat "$BATS_TEST_TMPDIR/seen")" = "$(printf 'one\ntwo')" ]
	[ "$(mailbox bob)" -eq 0 ]
	[ "$(vault_count bob message)" -eq 2 ]
}

@test "st-recv: -o DIR saves hostile names as safe basenames, never overwriting" {
	need_forge
	users alice bob
	as alice
	st-send -m "session" bob >/dev/null
	printf 'evil\n' >"$BATS_TEST_TMPDIR/payload"
	"$FORGE" bob '../../x' "$BATS_TEST_TMPDIR/payload" \
	    '/etc/passwd' "$BATS_TEST_TMPDIR/payload" \
	    "$(printf 'esc\033[2Jname')" "$BATS_TEST_TMPDIR/payload" \
	    '..' "$BATS_TEST_TMPDIR/payload" \
	    'keep.txt' "$BATS_TEST_TMPDIR/payload" \
	    "$(head -c 4096 /dev/zero | tr '\0' n)" "$BATS_TEST_TMPDIR/payload" \
	    </dev/null >/dev/null
	st-send --flush >/dev/null
	as bob
	mkdir "$BATS_TEST_TMPDIR/dl"
	printf 'mine\n' >"$BATS_TEST_TMPDIR/dl/keep.txt"
	ln -s /nonexistent "$BATS_TEST_TMPDIR/dl/passwd"
	run st-recv -o "$BATS_TEST_TMPDIR/dl"
	[ "$status" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/dl/x")" = evil ]
	[ "$(cat "$BATS_TEST_TMPDIR/dl/passwd (1)")" = evil ]
	[ -L "$BATS_TEST_TMPDIR/dl/passwd" ]
	[ "$(cat "$BATS_TEST_TMPDIR/dl/esc[2Jname")" = evil ]
	[ "$(cat "$BATS_TEST_TMPDIR/dl/attachment")" = evil ]
	[ "$(cat "$BATS_TEST_TMPDIR/dl/keep.txt")" = mine ]
	[ "$(cat "$BATS_TEST_TMPDIR/dl/keep (1).txt")" = evil ]
	[ ! -e "$BATS_TEST_TMPDIR/x" ] && [ ! -e "$BATS_TEST_TMPDIR/../x" ]
	[ "$(cat "$BATS_TEST_TMPDIR/dl/$(head -c 200 /dev/zero | tr '\0' n)")" = evil ]
	[ "$(ls -A "$BATS_TEST_TMPDIR/dl" | wc -l)" -eq 8 ]
	[ "$(vault_count bob file)" -eq 6 ]
}

@test "st-recv: -f wakes up within about a second of a send" {
	users alice bob
	as alice
	st-send -m "warm up" bob >/dev/null
	as bob
	st-recv -q
	st-recv -f -j >"$BATS_TEST_TMPDIR/follow" 2>"$BATS_TEST_TMPDIR/follow.err" &
	pid=$!
	sleep 1
	as alice
	t0=$(date +%s%N)
	st-send -m "ping" bob >/dev/null
	while ! grep -q ping "$BATS_TEST_TMPDIR/follow"; do
		[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt $(slow 3000) ] || break
		sleep 0.02
	done
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	# st-send works on the same home while st-recv -f waits
	as bob
	st-send -m "pong" alice >/dev/null
	kill "$pid"
	wait "$pid" || true
	echo "-f wake-up: $ms ms" >&3
	grep -q ping "$BATS_TEST_TMPDIR/follow"
	[ "$ms" -lt "$(slow 1500)" ]
}

@test "st-recv: two runs at once store each message once" {
	users alice bob
	as alice
	for i in $(seq 1 20); do st-send -m "n$i" bob >/dev/null; done
	as bob
	st-recv -q 2>"$BATS_TEST_TMPDIR/e1" &
	p1=$!
	st-recv -q 2>"$BATS_TEST_TMPDIR/e2" &
	p2=$!
	wait $p1
	wait $p2
	[ "$(vault_count bob message)" -eq 20 ]
	[ "$(vault_texts bob | sort | uniq -d | wc -l)" -eq 0 ]
	[ "$(mailbox bob)" -eq 0 ]
}

@test "a home lock held past 10 s: st-recv and st-send exit 75, nothing received, sent or queued" {
	users alice bob
	as alice
	st-send -m "waiting" bob >/dev/null
	as bob
	st-send -m "hi" alice >/dev/null
	flock -x "$ST_HOME/lock" sleep 14 &
	holder=$!
	sleep 0.3
	start=$(date +%s)
	st-recv -q 2>"$BATS_TEST_TMPDIR/recv.err" &
	r=$!
	st-send -m "blocked" alice >/dev/null 2>"$BATS_TEST_TMPDIR/send.err" &
	s=$!
	rs=0; wait $r || rs=$?
	ss=0; wait $s || ss=$?
	took=$(( $(date +%s) - start ))
	kill $holder 2>/dev/null || true
	wait $holder 2>/dev/null || true
	[ "$rs" -eq 75 ]
	[ "$ss" -eq 75 ]
	grep -q lock "$BATS_TEST_TMPDIR/recv.err"
	grep -q lock "$BATS_TEST_TMPDIR/send.err"
	[ "$took" -ge 9 ] && [ "$took" -le 14 ]
	[ "$(mailbox bob)" -eq 1 ]
	[ "$(mailbox alice)" -eq 1 ]
	[ -z "$(ls "$ST_HOME/outbox")" ]
	[ "$(vault_count bob message)" -eq 0 ]
	# once the lock is free, everything goes as usual
	[ "$(st-recv -j | jfield text)" = waiting ]
}

@test "st-recv: a flipped bit is exit 65, kept as undecryptable and acknowledged, state unchanged" {
	users alice bob
	as alice
	st-send -m "m0" bob >/dev/null
	as bob
	st-recv -q
	before=$(sha256sum "$ST_HOME/ratchet/alice.json")
	as alice
	ST_RELAY=$(dead_url) st-send -m "genuine" bob 2>/dev/null || true
	env=$(outbox_envelope alice)
	bad=$("$PY" -c 'import json,sys,base64
e = json.loads(sys.argv[1])
ct = bytearray(base64.urlsafe_b64decode(e["ct"] + "=" * (-len(e["ct"]) % 4)))
ct[5] ^= 0x10
e["ct"] = base64.urlsafe_b64encode(bytes(ct)).decode().rstrip("=")
print(json.dumps(e))' "$env")
	[ "$(post_envelope alice bob "$bad")" = 201 ]
	as bob
	run st-recv
	[ "$status" -eq 65 ]
	[[ "$output" == *"cannot be decrypted"* ]]
	[ "$(sha256sum "$ST_HOME/ratchet/alice.json")" = "$before" ]
	[ "$(mailbox bob)" -eq 0 ]
	[ "$(vault_count bob undecryptable)" -eq 1 ]
	id=$(st-vault ls -j | "$PY" -c 'import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o["kind"] == "undecryptable": print(o["id"])')
	st-vault cat "$id" | "$PY" -c 'import json,sys
assert json.load(sys.stdin) == json.loads(sys.argv[1])' "$bad"
	# the genuine one still decrypts; a second run is clean
	as alice
	st-send --flush >/dev/null
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = genuine ]
}

@test "st-recv: a replayed envelope is never decrypted twice" {
	users alice bob
	as alice
	st-send -m "m0" bob >/dev/null
	ST_RELAY=$(dead_url) st-send -m "once" bob 2>/dev/null || true
	env=$(outbox_envelope alice)
	st-send --flush >/dev/null
	as bob
	st-recv -q
	[ "$(post_envelope alice bob "$env")" = 201 ]
	run st-recv
	[ "$status" -eq 0 ]
	[[ "$output" == *"replays"* ]]
	[ -z "$(echo "$output" | grep '^From')" ]
	[ "$(vault_count bob message)" -eq 2 ]
	[ "$(mailbox bob)" -eq 0 ]
}

@test "st-recv: a malformed inner message is kept as undecryptable (65), the rest delivered" {
	need_forge
	users alice bob
	as alice
	st-send -m "m0" bob >/dev/null
	printf 'not json' | "$FORGE" --raw bob >/dev/null
	printf '{"v":1}' | "$FORGE" --raw bob >/dev/null
	printf '{"v":1,"id":"%s","ts":1,"to":["bob"],"text":"x","files":[{"name":"a\\u0000b","size":1,"blob":"x","key":"AAAAAAAAAAAAAAAAAAAAAA"}]}' \
	    00000000000000000000000000000001 | "$FORGE" --raw bob >/dev/null
	st-send --flush >/dev/null
	st-send -m "after" bob >/dev/null
	as bob
	run st-recv
	[ "$status" -eq 65 ]
	[ "$(vault_count bob undecryptable)" -eq 3 ]
	[ "$(vault_texts bob | tail -1)" = after ]
	[ "$(mailbox bob)" -eq 0 ]
}

@test "st-recv: a sender whose identity changed stays on the relay (67); others are delivered" {
	users alice bob carol
	as alice
	st-send -m "hi" bob >/dev/null
	as bob
	st-recv -q
	as alice
	st-register --delete --password-file "$PW" 2>/dev/null
	export ST_HOME=$BATS_TEST_TMPDIR/alice2
	st-register -r "$RELAY_URL" --password-file "$PW" alice 2>/dev/null
	st-send -m "from the new alice" bob >/dev/null
	as carol
	st-send -m "from carol" bob >/dev/null
	as bob
	run st-recv
	[ "$status" -eq 67 ]
	[[ "$output" == *"left on the relay"* ]]
	[[ "$output" == *"'st-users trust alice'"* ]]
	[[ "$output" == *"from carol"* ]]
	[ "$(mailbox bob)" -eq 1 ]
	st-users trust alice >/dev/null 2>&1
	run st-recv
	[ "$status" -eq 0 ]
	[[ "$output" == *"from the new alice"* ]]
}

@test "st-recv: --from takes one sender's messages; -n stops after MAX" {
	users alice bob carol
	as alice
	st-send -m "a1" bob >/dev/null
	st-send -m "a2" bob >/dev/null
	as carol
	st-send -m "c1" bob >/dev/null
	as bob
	run st-recv --from carol
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = c1 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(mailbox bob)" -eq 2 ]
	run st-recv -n 1
	[ "${lines[1]}" = a1 ]
	[ "${#lines[@]}" -eq 2 ]
	run st-recv
	[ "${lines[1]}" = a2 ]
}

@test "st-recv: --no-vault stores nothing, and a redelivery is still recognised" {
	users alice bob
	as alice
	st-send -m "ephemeral" bob >/dev/null
	as bob
	run st-recv --no-vault
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = ephemeral ]
	[ "$(vault_count bob message)" -eq 0 ]
	[ "$(mailbox bob)" -eq 0 ]
}

@test "st-recv: terminal escapes are raw inside JSON and escaped on a terminal" {
	users alice bob
	as alice
	evil=$(printf 'hi \033[2J\033]52;c;ZXZpbA==\007 \342\200\256 end')
	st-send -m "$evil" bob >/dev/null
	st-send -m "$evil" bob >/dev/null
	as bob
	out=$(st-recv -j -n 1)
	[ "$(echo "$out" | jfield text)" = "$evil" ]
	script -qec "st-recv" /dev/null >"$BATS_TEST_TMPDIR/tty" </dev/null
	grep -q 'From alice' "$BATS_TEST_TMPDIR/tty"
	! grep -q "$(printf '\033')" "$BATS_TEST_TMPDIR/tty" || false
	! grep -q "$(printf '\342\200\256')" "$BATS_TEST_TMPDIR/tty" || false
}

@test "st-recv: relay down is exit 69 within a few seconds, nothing changed" {
	users alice bob
	as alice
	st-send -m "kept" bob >/dev/null
	as bob
	stop_relay
	before=$(cd "$ST_HOME" && find . -type f -exec md5sum {} + | sort)
	start=$(date +%s%N)
	run st-recv
	took=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$status" -eq 69 ]
	[[ "$output" == *"relay"* ]]
	[ "$took" -lt "$(slow 5000)" ]
	[ "$(cd "$ST_HOME" && find . -type f -exec md5sum {} + | sort)" = "$before" ]
	[ "$(vault_count bob message)" -eq 0 ]
}

@test "st-recv: OSC 8, C1 CSI and escapes in a file name and a channel post never reach a terminal raw" {
	need_forge
	users alice bob
	as alice
	st-send -m "session" bob >/dev/null
	evil=$(printf 'a \033]8;;http://x\033\\link\033]8;;\033\\ b \302\2332J c')
	name=$(printf 'n\033[31mred\302\233\342\200\256.txt')
	echo data >"$BATS_TEST_TMPDIR/f"
	printf '%s' "$evil" | "$FORGE" bob "$name" "$BATS_TEST_TMPDIR/f" >/dev/null
	st-send --flush >/dev/null
	st-send -c lobby -m "$evil" >/dev/null
	as bob
	mkdir "$BATS_TEST_TMPDIR/out"
	script -qec "st-recv -o $BATS_TEST_TMPDIR/out; st-recv -c lobby" /dev/null \
	    >"$BATS_TEST_TMPDIR/tty" </dev/null
	grep -q 'From alice' "$BATS_TEST_TMPDIR/tty"
	grep -q 'in #lobby' "$BATS_TEST_TMPDIR/tty"
	grep -q '\[file ' "$BATS_TEST_TMPDIR/tty"
	! grep -q "$(printf '\033')" "$BATS_TEST_TMPDIR/tty" || false
	! grep -q "$(printf '\302\233')" "$BATS_TEST_TMPDIR/tty" || false
	! grep -q "$(printf '\342\200\256')" "$BATS_TEST_TMPDIR/tty" || false
	# raw inside JSON
	[ "$(st-recv -c lobby -j | jfield text)" = "$evil" ]
}

@test "st-recv: \$ST_HOME full is exit 73 with the message left on the relay and the state unchanged; delivered once after" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to mount a small tmpfs"
	users alice bob
	as alice
	st-send -m "first" bob >/dev/null
	as bob
	st-recv -q
	as alice
	st-send -m "while full" bob >/dev/null
	mnt=$BATS_TEST_TMPDIR/small
	mkdir "$mnt"
	mount -t tmpfs -o size=2m,mode=0700 tmpfs "$mnt" 2>/dev/null || skip "cannot mount a tmpfs here"
	SMALL_MNT=$mnt
	cp -a "$BATS_TEST_TMPDIR/bob/." "$mnt/"
	export ST_HOME=$mnt
	dd if=/dev/zero of="$mnt/fill" bs=4k 2>/dev/null || true
	# the state: keys, pins, sessions, the vault (inbox.log may end in a
	# record of the attempt, which the next run finishes)
	before=$(cd "$mnt" && find . -type f ! -name fill ! -name lock ! -name inbox.log -exec md5sum {} + | sort)
	run st-recv
	rm -f "$mnt/fill"
	after=$(cd "$mnt" && find . -type f ! -name lock ! -name inbox.log -exec md5sum {} + | sort)
	[ "$status" -eq 73 ]
	echo "$output"
	[[ "$output" == *"/vault/"*"No space left"* ]]
	[ "$after" = "$before" ]
	[ "$(mailbox bob)" -eq 1 ]
	run st-recv -j
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jfield text)" = "while full" ]
	[ "$(mailbox bob)" -eq 0 ]
	run st-recv -j
	[ -z "$output" ]
}

@test "st-recv: a sender's clock a day off does not reorder the vault: items follow the relay's order" {
	need_forge
	users alice bob
	as alice
	st-send -m "first" bob >/dev/null
	# the second comes from a clock a day behind, the third a day ahead
	printf 'second' | ST_FORGE_TS=$(( $(date +%s) * 1000 - 86400000 )) "$FORGE" bob >/dev/null
	st-send --flush >/dev/null
	printf 'third' | ST_FORGE_TS=$(( $(date +%s) * 1000 + 86400000 )) "$FORGE" bob >/dev/null
	st-send --flush >/dev/null
	st-send -m "fourth" bob >/dev/null
	as bob
	st-recv -q
	[ "$(vault_texts bob | tr '\n' ' ')" = "first second third fourth " ]
	# the sender's own time is still what the item says it was written
	ts=$(st-vault ls -j | "$PY" -c 'import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o["kind"] == "message": print(o["ts"] - o["received"])' | sed -n 2p)
	[ "$ts" -lt -80000000 ]
}

@test "st-recv: flipped bits in the header and body, and a broken field, each 65 in a run that still delivers the others" {
	users alice bob carol
	as alice
	st-send -m "m0" bob >/dev/null
	as bob
	st-recv -q
	st-send -m "back" alice >/dev/null
	as alice
	st-recv -q
	ST_RELAY=$(dead_url) st-send -m "genuine" bob 2>/dev/null || true
	env=$(outbox_envelope alice)
	n=0
	for how in hdr ct field; do
		bad=$("$PY" -c 'import json,sys,base64
e, how = json.loads(sys.argv[1]), sys.argv[2]
d = lambda s: bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
b = lambda x: base64.urlsafe_b64encode(bytes(x)).decode().rstrip("=")
if how == "field":
    e["hdr"] = e["hdr"][:-3] + "!!!"
else:
    x = d(e[how]); x[len(x) // 2] ^= 0x04; e[how] = b(x)
print(json.dumps(e))' "$env" "$how")
		as bob
		before=$(sha256sum "$ST_HOME/ratchet/alice.json")
		[ "$(post_envelope alice bob "$bad")" = 201 ]
		as carol
		st-send -m "carol $how" bob >/dev/null
		as bob
		run st-recv
		n=$((n + 1))
		[ "$status" -eq 65 ]
		[[ "$output" == *"carol $how"* ]]
		[ "$(sha256sum "$ST_HOME/ratchet/alice.json")" = "$before" ]
		[ "$(mailbox bob)" -eq 0 ]
		[ "$(vault_count bob undecryptable)" -eq "$n" ]
	done
	# alice's genuine message still decrypts after all that
	as alice
	st-send --flush >/dev/null
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = genuine ]
}
