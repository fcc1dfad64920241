#!/usr/bin/env bats
# TLS end to end: st-relay serving HTTPS with a certificate from a private
# CA made here with openssl, the clients trusting that CA through
# ST_CACERT; another CA (or none) is refused in one line with 69, and a
# message sent meanwhile waits in the outbox until the right CA delivers it.

load account_helper

setup_file() {
	command -v openssl >/dev/null || return 0
	local d=$BATS_FILE_TMPDIR

	mk_ca() {	# mk_ca NAME: a self-signed CA in $d/NAME.pem, NAME.key
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		    -nodes -days 2 -subj "/CN=safetalk test $1" \
		    -keyout "$d/$1.key" -out "$d/$1.pem" 2>/dev/null
	}
	mk_ca ca
	mk_ca wrong
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -subj /CN=localhost -keyout "$d/srv.key" -out "$d/srv.csr" \
	    2>/dev/null
	printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
	    'basicConstraints=CA:FALSE' 'extendedKeyUsage=serverAuth' \
	    >"$d/ext.cnf"
	openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
	    -CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/srv.pem" \
	    2>/dev/null
}

setup() {
	setup_home
	PW=$BATS_TEST_TMPDIR/pw
	printf 'correct horse battery\n' >"$PW"
	CA=$BATS_FILE_TMPDIR/ca.pem
	WRONG=$BATS_FILE_TMPDIR/wrong.pem
	[ -s "$BATS_FILE_TMPDIR/srv.pem" ] || skip "openssl could not make certificates"
	export PW CA WRONG
}

# tls_relay: st-relay serving HTTPS on a free loopback port; RELAY_URL is
# https://localhost:PORT (the certificate names localhost and 127.0.0.1).
tls_relay() {
	local port

	port=$(free_port)
	st-relay -q --argon2-m 64 --argon2-t 1 --no-rate-limits \
	    -l "127.0.0.1:$port" -d "$BATS_TEST_TMPDIR/relay.db" \
	    --blob-dir "$BATS_TEST_TMPDIR/blobs" \
	    --tls-cert "$BATS_FILE_TMPDIR/srv.pem" \
	    --tls-key "$BATS_FILE_TMPDIR/srv.key" \
	    2>"$BATS_TEST_TMPDIR/relay.log" &
	RELAY_PID=$!
	RELAY_URL="https://localhost:$port"
	export RELAY_URL RELAY_PID
	wait_relay --cacert "$CA"
}

# users NAME...: a TLS relay and each NAME registered over https.
users() {
	tls_relay
	for u in "$@"; do
		ST_CACERT=$CA reg "$u" >/dev/null 2>&1
	done
}

@test "st-tls: register, login, users, send and recv with a file, all over https with ST_CACERT" {
	export ST_CACERT=$CA
	users alice bob
	as alice
	run st-login --password-file "$PW"
	[ "$status" -eq 0 ]
	run st-users
	[ "$status" -eq 0 ]
	[[ "$output" == *bob* ]]
	printf 'file over tls\n' >"$BATS_TEST_TMPDIR/notes.txt"
	run st-send -m "hello over tls" -a "$BATS_TEST_TMPDIR/notes.txt" bob
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^bob\ [0-9]+$ ]]
	as bob
	mkdir "$BATS_TEST_TMPDIR/dl"
	run st-recv -o "$BATS_TEST_TMPDIR/dl"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "From alice at "* ]]
	[[ "$output" == *"hello over tls"* ]]
	cmp "$BATS_TEST_TMPDIR/notes.txt" "$BATS_TEST_TMPDIR/dl/notes.txt"
	# and back, with the URL saved by st-register
	run st-send -m "hello alice" alice
	[ "$status" -eq 0 ]
	as alice
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "hello alice" ]
	grep -q '"https://localhost:' "$BATS_TEST_TMPDIR/alice/config"
}

@test "st-tls: without ST_CACERT the private CA is not trusted: 69 in one line, no account" {
	tls_relay
	as alice
	st-keygen >/dev/null 2>&1
	unset ST_CACERT
	run st-register -r "$RELAY_URL" --password-file "$PW" alice
	[ "$status" -eq 69 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"TLS certificate not trusted"*"ST_CACERT"* ]]
	[ ! -e "$ST_HOME/token" ]
	# the relay never saw the account: the right CA registers the name
	ST_CACERT=$CA run st-register -r "$RELAY_URL" --password-file "$PW" alice
	[ "$status" -eq 0 ]
}

@test "st-tls: a wrong CA is refused (69, one line) and loses nothing; the right CA delivers" {
	export ST_CACERT=$CA
	users alice bob
	as alice
	st-send -m "first" bob >/dev/null
	ST_CACERT=$WRONG run st-send -m "while the CA is wrong" bob
	[ "$status" -eq 69 ]
	[[ "$output" == *"TLS certificate not trusted"* ]]
	[[ "$output" == *"kept in the outbox"* ]]
	[ "$(ls "$ST_HOME/outbox" | wc -l)" -eq 1 ]
	[ "$(mode "$ST_HOME/outbox/$(ls "$ST_HOME/outbox")")" = 600 ]
	# every other command says it in one line, with the same code
	ST_CACERT=$WRONG run st-users
	[ "$status" -eq 69 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == "st-users: "*"TLS certificate not trusted"* ]]
	ST_CACERT=$WRONG run st-login --password-file "$PW"
	[ "$status" -eq 69 ]
	[ "${#lines[@]}" -eq 1 ]
	as bob
	# (st-recv warns first that its prekey upkeep was skipped, as it does
	# for any relay it cannot reach; the error is the last line)
	ST_CACERT=$WRONG run st-recv
	[ "$status" -eq 69 ]
	[ "${#lines[@]}" -le 2 ]
	[[ "${lines[-1]}" == "st-recv: relay "*"TLS certificate not trusted"* ]]
	# the wrong-CA receive acknowledged nothing: "first" is still there
	run st-recv -j
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jfield text)" = first ]
	as alice
	run st-send --flush
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ -z "$(ls "$ST_HOME/outbox")" ]
	as bob
	run st-recv
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "while the CA is wrong" ]
	[ "${#lines[@]}" -eq 2 ]
}

@test "st-tls: an ST_CACERT that cannot be read or holds no certificate is 78" {
	tls_relay
	as alice
	st-keygen >/dev/null 2>&1
	ST_CACERT=$BATS_TEST_TMPDIR/nope.pem run st-register -r "$RELAY_URL" \
	    --password-file "$PW" alice
	[ "$status" -eq 78 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"cannot read ST_CACERT"*"nope.pem"* ]]
	printf 'not a certificate\n' >"$BATS_TEST_TMPDIR/junk.pem"
	ST_CACERT=$BATS_TEST_TMPDIR/junk.pem run st-register -r "$RELAY_URL" \
	    --password-file "$PW" alice
	[ "$status" -eq 78 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"cannot use the CA file"* ]]
	# an empty ST_CACERT is unset: the system store, which refuses the CA
	ST_CACERT= run st-register -r "$RELAY_URL" --password-file "$PW" alice
	[ "$status" -eq 69 ]
}
