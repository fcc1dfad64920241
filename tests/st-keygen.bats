#!/usr/bin/env bats
# st-keygen: key files and their modes, no silent overwrite, -p, and
# passphrase protection used non-interactively with --passphrase-file.

load account_helper

@test "help goes to stdout and exits 0; bad usage exits 64" {
	run st-keygen -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"st-keygen -p [-j]"* ]]
	run st-keygen -V
	[ "$status" -eq 0 ]
	[[ "$output" == "st-keygen "* ]]
	# getopt may name the fault first; the synopsis always follows
	for bad in "--bogus" "extra" "-j" "-p -f" "-p --protect" \
	    "--passphrase" "-p --passphrase-file $PP"; do
		run st-keygen $bad
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: st-keygen [-f]"* ]]
	done
	# no option takes a secret, and no abbreviation pretends to
	for bad in "--passphrase hunter2" "--passphrase=hunter2" \
	    "--pass hunter2" "--prot"; do
		run st-keygen $bad
		[ "$status" -eq 64 ]
		[[ "$output" == *"unrecognized option '--pass"* ||
		   "$output" == *"unrecognized option '--prot'"* ]]
		[[ "$output" != *"cannot open"* ]]
	done
	[ ! -e "$ST_HOME/identity.json" ]
}

@test "creates identity, prekeys and vault key with private modes" {
	out=$(st-keygen 2>/dev/null)
	[ -z "$out" ]
	[ "$(mode "$ST_HOME")" = 700 ]
	[ "$(mode "$ST_HOME/vault")" = 700 ]
	for f in identity.json prekeys.json vault.key lock; do
		[ "$(mode "$ST_HOME/$f")" = 600 ]
	done
	python3 - "$ST_HOME/prekeys.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
ids = [o["id"] for o in p["opks"]]
assert len(ids) == 100 and len(set(ids)) == 100, ids
assert p["next_opk_id"] > max(ids)
assert len(p["spks"]) == 1 and p["spks"][0]["id"] < p["next_spk_id"]
PY
	grep -q '^AGE-SECRET-KEY-1' "$ST_HOME/vault.key"
}

@test "refuses to overwrite without -f; -f makes a new identity and keeps the vault key" {
	st-keygen
	old=$(st-keygen -p)
	sum=$(cat "$ST_HOME"/identity.json "$ST_HOME"/prekeys.json | sha256sum)
	run st-keygen
	[ "$status" -eq 73 ]
	[[ "$output" == *"keys exist"*"-f"* ]]
	[ "$sum" = "$(cat "$ST_HOME"/identity.json "$ST_HOME"/prekeys.json | sha256sum)" ]
	id=$(printf 'kept' | st-vault put -n note)
	vk=$(sha256sum < "$ST_HOME/vault.key")
	st-keygen -f
	[ "$(st-keygen -p)" != "$old" ]
	[ "$(sha256sum < "$ST_HOME/vault.key")" = "$vk" ]
	[ "$(st-vault cat "$id")" = kept ]
}

@test "-p shows the public identity; -j one JSON object" {
	st-keygen
	run st-keygen -p
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "user      -" ]]
	[[ "${lines[1]}" =~ ^identity\ \ [A-Za-z0-9_-]{87}$ ]]
	run st-keygen -p -j
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	echo "$output" | python3 -c '
import json, sys
o = json.loads(sys.stdin.read())
assert o["user"] is None and o["safety_half"] is None
assert o["protected"] is False
assert set(o["identity"]) == {"ed25519", "x25519", "bind"}'
}

@test "-p after registration shows the safety-number half" {
	relay
	reg alice
	run st-keygen -p
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "user      alice" ]
	# the values line up in one column: "safety" and four spaces
	[[ "${lines[2]}" =~ ^safety\ {4}[0-9]{5}(\ [0-9]{5}){5}$ ]]
	half=$(st-keygen -p -j | jfield safety_half)
	[[ "$half" =~ ^[0-9]{30}$ ]]
	# it is one half of every safety number alice has
	reg bob
	num=$(st-users -j alice | jfield safety)
	[[ "$num" == *"$half"* ]]
}

@test "no keys: -p exits 78" {
	run st-keygen -p
	[ "$status" -eq 78 ]
	[[ "$output" == *"st-keygen"* ]]
}

@test "a corrupt or truncated identity file exits 65 naming it" {
	st-keygen
	head -c 40 "$ST_HOME/identity.json" > "$BATS_TEST_TMPDIR/t"
	cp "$BATS_TEST_TMPDIR/t" "$ST_HOME/identity.json"
	run st-keygen -p
	[ "$status" -eq 65 ]
	[[ "$output" == *"identity.json"* ]]
	echo '{"v":1,"ed25519_seed":"AAAA","x25519":"AAAA"}' > "$ST_HOME/identity.json"
	run st-keygen -p
	[ "$status" -eq 65 ]
	[[ "$output" == *"identity.json"* ]]
	# a whole, valid file with a field SPEC does not define is refused too
	st-keygen -f
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); j["extra"] = 1; json.dump(j, open(sys.argv[1], "w"))' "$ST_HOME/identity.json"
	run st-keygen -p
	[ "$status" -eq 65 ]
	[[ "$output" == *"identity.json: unknown field 'extra'"* ]]
}

@test "--protect with --passphrase-file wraps every key file" {
	st-keygen --protect --passphrase-file "$PP"
	for f in identity.json prekeys.json vault.key; do
		[ "$(mode "$ST_HOME/$f")" = 600 ]
		grep -q '"wrap":"argon2id-chacha20poly1305"' "$ST_HOME/$f"
		! grep -q '"priv"' "$ST_HOME/$f" || false
		! grep -q 'AGE-SECRET-KEY' "$ST_HOME/$f" || false
	done
	grep -q '"m":65536,"t":3,"p":1' "$ST_HOME/identity.json"
	# the public half needs no passphrase
	run st-keygen -p -j
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jfield protected)" = true ]
}

@test "the passphrase may come from standard input" {
	printf 'from stdin\r\n' | st-keygen --protect --passphrase-file -
	grep -q '"wrap"' "$ST_HOME/identity.json"
	# -f needs the old passphrase for the vault key it carries over
	run st-keygen -f --passphrase-file "$PP"
	[ "$status" -eq 77 ]
	[[ "$output" == *"wrong passphrase"*"vault.key"* ]]
	grep -q '"wrap"' "$ST_HOME/identity.json"
	printf 'from stdin\n' | st-keygen -f --passphrase-file -
	# no --protect: the new keys and the carried vault key are plain
	! grep -q '"wrap"' "$ST_HOME/identity.json" || false
	grep -q '^AGE-SECRET-KEY-1' "$ST_HOME/vault.key"
}

@test "--protect on existing keys wraps them in place" {
	st-keygen
	id=$(printf 'secret note' | st-vault put -n n)
	before=$(st-keygen -p)
	st-keygen --protect --passphrase-file "$PP"
	[ "$(st-keygen -p)" = "$before" ]
	for f in identity.json prekeys.json vault.key; do
		grep -q '"wrap"' "$ST_HOME/$f"
	done
	# already protected: refused, nothing changed
	sum=$(sha256sum < "$ST_HOME/identity.json")
	run st-keygen --protect --passphrase-file "$PP"
	[ "$status" -eq 73 ]
	[ "$(sha256sum < "$ST_HOME/identity.json")" = "$sum" ]
	# the vault still opens: unwrapped with the same passphrase
	printf 'key passphrase\n' | st-keygen -f --protect --passphrase-file -
	grep -q '"wrap"' "$ST_HOME/vault.key"
	# and -f without --protect unwraps the same vault key again
	st-keygen -f --passphrase-file "$PP"
	grep -q '^AGE-SECRET-KEY-1' "$ST_HOME/vault.key"
	[ "$(st-vault cat "$id")" = "secret note" ]
}

@test "--protect without a terminal or a passphrase file exits 64" {
	run setsid st-keygen --protect </dev/null
	[ "$status" -eq 64 ]
	[[ "$output" == *"--passphrase-file"* ]]
	[ ! -e "$ST_HOME/identity.json" ]
}

@test "the passphrase file must hold a passphrase" {
	: > "$BATS_TEST_TMPDIR/empty"
	run st-keygen --protect --passphrase-file "$BATS_TEST_TMPDIR/empty"
	[ "$status" -eq 65 ]
	run st-keygen --protect --passphrase-file "$BATS_TEST_TMPDIR/missing"
	[ "$status" -eq 66 ]
	[ ! -e "$ST_HOME/identity.json" ]
}

@test "a busy home lock makes st-keygen wait, then exit 75" {
	mkdir -m 700 "$ST_HOME"
	exec 9>"$ST_HOME/lock"
	flock 9
	start=$(date +%s)
	run st-keygen
	exec 9>&-
	[ "$status" -eq 75 ]
	[ $(( $(date +%s) - start )) -ge 9 ]
	[[ "$output" == *"$ST_HOME/lock is busy"* ]]
	[ ! -e "$ST_HOME/identity.json" ]
}
