# account_helper.bash - for the st-keygen, st-register, st-login and
# st-users suites: a relay with cheap Argon2, one $ST_HOME per user, and a
# password file (passwords never go on a command line).

load helper

setup() {
	setup_home
	PW=$BATS_TEST_TMPDIR/pw
	printf 'correct horse battery\n' >"$PW"
	PP=$BATS_TEST_TMPDIR/pp
	printf 'key passphrase\n' >"$PP"
	export PW PP
}

# relay [flags...]: st-relay with test-cheap Argon2.
relay() {
	start_relay -q --argon2-m 64 --argon2-t 1 "$@"
}

# as USER: act from USER's home.
as() {
	export ST_HOME=$BATS_TEST_TMPDIR/$1
}

# reg USER [flags...]: register USER from its own home.
reg() {
	local u=$1
	shift
	as "$u"
	st-register -r "$RELAY_URL" --password-file "$PW" "$@" "$u"
}

# jfield KEY: KEY of the JSON object on stdin (strings bare).
jfield() {
	python3 -c 'import json,sys
v = json.loads(sys.stdin.readline())
for k in sys.argv[1].split("."):
    v = v[k]
print(v if not isinstance(v, bool) else str(v).lower())' "$1"
}

# dead_url: an http URL on a loopback port nobody listens on.
dead_url() {
	echo "http://127.0.0.1:$(free_port)"
}
