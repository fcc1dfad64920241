# msg_helper.bash - for tests/st-send.bats and tests/st-recv.bats: a relay
# (cheap Argon2, no rate limits), users registered in their own homes,
# and small helpers around the relay's HTTP API for the hostile cases.

load account_helper

# a hostile sender (tests/tools/st-forge.c): from ST_BUILD when given, else
# from the build tree of ST_BIN (build-san/bin), else build/
case "${ST_BUILD:-}" in
/*) FORGE=$ST_BUILD/tests/st-forge ;;
?*) FORGE=$BATS_TEST_DIRNAME/../$ST_BUILD/tests/st-forge ;;
*) FORGE=$ST_BIN/../tests/st-forge
   [ -x "$FORGE" ] || FORGE=$BATS_TEST_DIRNAME/../build/tests/st-forge ;;
esac

need_forge() {
	[ -x "$FORGE" ] || skip "st-forge is not built ($FORGE)"
}
PY=$(command -v /usr/bin/python3 || command -v python3)

# users NAME...: a relay and each NAME registered (home: $BATS_TEST_TMPDIR/NAME).
users() {
	relay --no-rate-limits
	for u in "$@"; do
		reg "$u" 2>/dev/null
	done
}

# token NAME: NAME's bearer token.
token() {
	cat "$BATS_TEST_TMPDIR/$1/token"
}

# mailbox NAME: how many messages wait for NAME on the relay.
mailbox() {
	curl -s -H "Authorization: Bearer $(token "$1")" \
	    "$RELAY_URL/v1/messages?limit=500" |
	    "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["messages"]))'
}

# vault_count NAME KIND: items of KIND in NAME's vault.
vault_count() {
	ST_HOME=$BATS_TEST_TMPDIR/$1 st-vault ls -j |
	    "$PY" -c 'import json,sys
print(sum(1 for l in sys.stdin if json.loads(l)["kind"] == sys.argv[1]))' "$2"
}

# vault_texts NAME: the message texts in NAME's vault, one per line, oldest first.
vault_texts() {
	local id
	for id in $(ST_HOME=$BATS_TEST_TMPDIR/$1 st-vault ls -j |
	    "$PY" -c 'import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o["kind"] == "message": print(o["id"])'); do
		ST_HOME=$BATS_TEST_TMPDIR/$1 st-vault cat "$id"
		echo
	done
}

# post_envelope FROM TO ENVELOPE_JSON: POST one message as FROM with a
# fresh client_id; prints the HTTP status.
post_envelope() {
	local body
	body=$("$PY" -c 'import json,sys,os
print(json.dumps({"messages": [{"to": sys.argv[1], "to_ik": sys.argv[2],
    "client_id": os.urandom(16).hex(), "envelope": json.loads(sys.argv[3])}]}))' \
	    "$2" "$(to_ik "$2")" "$3")
	curl -s -o /dev/null -w '%{http_code}' -X POST \
	    -H "Authorization: Bearer $(token "$1")" \
	    -H 'Content-Type: application/json' --data-binary "$body" \
	    "$RELAY_URL/v1/messages"
}

# to_ik NAME: to_ik of NAME's identity as the relay serves it.
to_ik() {
	curl -s -H "Authorization: Bearer $(token "$1")" \
	    "$RELAY_URL/v1/users/$1" | "$PY" -c 'import json,sys,base64,hashlib
i = json.load(sys.stdin)["identity"]
d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
enc = b"\x01" + d(i["ed25519"]) + d(i["x25519"])
print(base64.urlsafe_b64encode(hashlib.sha256(enc).digest()[:16]).decode().rstrip("="))'
}

# outbox_envelope NAME: the envelope of NAME's only outbox entry.
outbox_envelope() {
	"$PY" -c 'import json,sys,glob
f = sorted(glob.glob(sys.argv[1] + "/outbox/*.json"))
print(json.dumps(json.load(open(f[0]))["envelope"]))' "$BATS_TEST_TMPDIR/$1"
}
