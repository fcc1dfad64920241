#!/usr/bin/env bats
# Public channels: st-send -c posts signed plaintext, st-recv -c reads it
# back with every signature checked (pin first, else the directory); posts
# that do not verify are shown marked, never dropped, and set the exit code (65, or 67 when a
# pinned author's key changed).

load msg_helper

# chanpost NAME BODY: POST a raw {"post": BODY} to channel NAME as the user
# of $ST_HOME; prints "STATUS BODY".
chanpost() {
	api POST "/v1/channels/$1" "{\"post\": $2}"
}

@test "channels: usage errors are 64 and nothing is posted" {
	users alice
	run st-send -c lobby -m hi bob
	[ "$status" -eq 64 ]
	run st-send -c lobby -a /etc/hostname
	[ "$status" -eq 64 ]
	run st-send -c 'Bad/Chan' -m hi
	[ "$status" -eq 64 ]
	[[ "$output" == *"bad channel name"* ]]
	run st-send -c lobby --flush
	[ "$status" -eq 64 ]
	run st-recv --after 3
	[ "$status" -eq 64 ]
	[[ "$output" == *"--after goes with -c"* ]]
	run st-recv -c lobby --exec true
	[ "$status" -eq 64 ]
	run st-recv -c lobby --after abc
	[ "$status" -eq 64 ]
	run st-recv -c 'UPPER'
	[ "$status" -eq 64 ]
	run st-send -c lobby -m "$(printf 'a\377b')"
	[ "$status" -eq 64 ]
	run st-send -c lobby </dev/null
	[ "$status" -eq 65 ]
	[[ "$output" == *"empty post"* ]]
	run st-recv -c lobby -j
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "channels: post from -m and a pipe; read as text and JSON, verified" {
	users alice bob
	as alice
	run st-send -c lobby -m "hello lobby"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^lobby\ ([0-9]+)$ ]]
	first=${BASH_REMATCH[1]}
	run bash -c 'printf "line one\nline two\n" | st-send -c lobby -j'
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jfield channel)" = lobby ]
	second=$(echo "$output" | jfield id)
	[ "$second" -gt "$first" ]
	as bob
	run st-recv -c lobby
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^From\ alice\ at\ [0-9-]+\ [0-9:]+\ in\ \#lobby\ \($first\)$ ]]
	[ "${lines[1]}" = "hello lobby" ]
	[[ "${lines[2]}" == "From alice at "*"($second)" ]]
	[ "${lines[3]}" = "line one" ]
	[ "${lines[4]}" = "line two" ]
	[ "${#lines[@]}" -eq 5 ]
	[[ "$output" != *UNVERIFIED* ]]
	run st-recv -c lobby -j
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(echo "${lines[0]}" | jfield state)" = verified ]
	[ "$(echo "${lines[0]}" | jfield trust)" = directory ]
	[ "$(echo "${lines[0]}" | jfield from)" = alice ]
	[ "$(echo "${lines[0]}" | jfield text)" = "hello lobby" ]
	[ "$(echo "${lines[1]}" | jfield id)" = "$second" ]
	# reading made no pin and took nothing from the mailbox
	[ ! -e "$ST_HOME/peers/alice.json" ]
	# --after and -n
	run st-recv -c lobby --after "$first" -j
	[ "${#lines[@]}" -eq 1 ]
	[ "$(echo "$output" | jfield id)" = "$second" ]
	run st-recv -c lobby -n 1 -j
	[ "${#lines[@]}" -eq 1 ]
	[ "$(echo "$output" | jfield id)" = "$first" ]
	# a pinned author shows the pin's trust
	st-users trust alice >/dev/null
	run st-recv -c lobby -n 1 -j
	[ "$(echo "$output" | jfield trust)" = tofu ]
	# channels are apart
	run st-recv -c other
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "channels: a forged, a malformed and a misplaced post are shown marked; exit 65" {
	users alice mallory bob
	as alice
	st-send -c lobby -m "real" >/dev/null
	as mallory
	# signature of other bytes: the relay stores it, readers refuse it
	sig=$(printf 'A%.0s' $(seq 86))
	run chanpost lobby "{\"v\":1,\"channel\":\"lobby\",\"from\":\"mallory\",\"ts\":1,\"text\":\"forged\",\"sig\":\"$sig\"}"
	[[ "$output" == "201 "* ]]
	run chanpost lobby '{"channel":"lobby","from":"mallory"}'
	[[ "$output" == "201 "* ]]
	# the relay itself refuses another's name and another channel
	run chanpost lobby "{\"v\":1,\"channel\":\"lobby\",\"from\":\"alice\",\"ts\":1,\"text\":\"x\",\"sig\":\"$sig\"}"
	[[ "$output" == "403 "* ]]
	run chanpost lobby "{\"v\":1,\"channel\":\"other\",\"from\":\"mallory\",\"ts\":1,\"text\":\"x\",\"sig\":\"$sig\"}"
	[[ "$output" == "400 "* ]]
	as alice
	st-send -c lobby -m "real again" >/dev/null
	as bob
	run st-recv -c lobby
	[ "$status" -eq 65 ]
	[[ "${lines[0]}" == "From alice at "* ]]
	[ "${lines[1]}" = real ]
	[[ "${lines[2]}" == "From mallory at "*" UNVERIFIED: bad signature" ]]
	[ "${lines[3]}" = forged ]
	[[ "${lines[4]}" == "Post "*" in #lobby: NOT SHOWN: malformed post" ]]
	[ "${lines[6]}" = "real again" ]
	run st-recv -c lobby -j
	[ "$status" -eq 65 ]
	[ "$(echo "${lines[1]}" | jfield state)" = bad_signature ]
	[ "$(echo "${lines[2]}" | jfield state)" = malformed ]
	[ "$(echo "${lines[3]}" | jfield state)" = verified ]
}

@test "channels: a pinned author whose key the relay now serves differently is 67" {
	users alice bob
	as alice
	st-send -c lobby -m "before" >/dev/null
	as bob
	st-users trust alice >/dev/null
	# alice's account is deleted and someone registers her name anew
	as alice
	st-register --delete --password-file "$PW" >/dev/null 2>&1
	rm -rf "$BATS_TEST_TMPDIR/alice"
	reg alice 2>/dev/null
	st-send -c lobby -m "after" >/dev/null
	as bob
	run st-recv -c lobby -j
	[ "$status" -eq 67 ]
	[ "$(echo "${lines[0]}" | jfield state)" = identity_changed ]
	[ "$(echo "${lines[1]}" | jfield state)" = bad_signature ]
	run st-recv -c lobby
	[[ "${lines[0]}" == *"UNVERIFIED: signed by the pinned key, but the relay serves another key now" ]]
}

@test "channels: -f follows new posts; the relay down is 69 without -f" {
	users alice bob
	as bob
	st-recv -c lobby -f -j >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	as alice
	st-send -c lobby -m "one" >/dev/null
	st-send -c lobby -m "two" >/dev/null
	for i in $(seq 100); do
		[ "$(wc -l <"$BATS_TEST_TMPDIR/out")" -ge 2 ] && break
		sleep 0.1
	done
	kill "$pid"
	wait "$pid" || true
	[ "$(sed -n 1p "$BATS_TEST_TMPDIR/out" | jfield text)" = one ]
	[ "$(sed -n 2p "$BATS_TEST_TMPDIR/out" | jfield text)" = two ]
	stop_relay
	as bob
	run st-recv -c lobby
	[ "$status" -eq 69 ]
	as alice
	run st-send -c lobby -m "lost?"
	[ "$status" -eq 69 ]
}

@test "channels: a post too long is refused before anything is sent" {
	users alice
	run bash -c 'head -c 60001 /dev/zero | tr "\0" a | st-send -c lobby'
	[ "$status" -eq 65 ]
	[[ "$output" == *"post too long"* ]]
	# 40,000 newlines: under the text limit, over the body limit escaped
	run bash -c 'head -c 40000 /dev/zero | tr "\0" "\n" | st-send -c lobby'
	[ "$status" -eq 65 ]
	[[ "$output" == *"as JSON"* ]]
	run bash -c 'head -c 60000 /dev/zero | tr "\0" a | st-send -c lobby'
	[ "$status" -eq 0 ]
	run st-recv -c lobby -j
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jfield text | wc -c)" -eq 60001 ]
}
