#!/usr/bin/env bats
# st-vault: the vault subcommands, file modes, tampering, and the filters.

load helper

@test "help goes to stdout and exits 0; bad usage exits 64" {
	run st-vault -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"st-vault ls"* ]]
	run st-vault --version
	[ "$status" -eq 0 ]
	run st-vault
	[ "$status" -eq 64 ]
	run st-vault frobnicate
	[ "$status" -eq 64 ]
	run st-vault ls --bogus
	[ "$status" -eq 64 ]
	run st-vault get
	[ "$status" -eq 64 ]
}

@test "ls of a new home is empty and creates no key" {
	run st-vault ls
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ ! -e "$ST_HOME/vault.key" ]
}

@test "put then get returns the same binary bytes; modes are private" {
	head -c 200000 /dev/urandom > "$BATS_TEST_TMPDIR/blob"
	id=$(st-vault put "$BATS_TEST_TMPDIR/blob")
	[[ "$id" =~ ^[0-9a-f]{20}$ ]]
	st-vault get "$id" -o "$BATS_TEST_TMPDIR/back"
	cmp "$BATS_TEST_TMPDIR/blob" "$BATS_TEST_TMPDIR/back"
	[ "$(mode "$ST_HOME")" = 700 ]
	[ "$(mode "$ST_HOME/vault")" = 700 ]
	[ "$(mode "$ST_HOME/vault.key")" = 600 ]
	[ "$(mode "$ST_HOME/vault/$id.age")" = 600 ]
	[ "$(mode "$ST_HOME/vault/$id.meta.age")" = 600 ]
	[ "$(mode "$BATS_TEST_TMPDIR/back")" = 600 ]
	st-vault get "$id" -o - | cmp - "$BATS_TEST_TMPDIR/blob"
}

@test "the vault opens with the real age" {
	printf 'hello vault\n' | st-vault put -n note.txt > "$BATS_TEST_TMPDIR/id"
	id=$(cat "$BATS_TEST_TMPDIR/id")
	run age -d -i "$ST_HOME/vault.key" "$ST_HOME/vault/$id.age"
	[ "$status" -eq 0 ]
	[ "$output" = "hello vault" ]
	run age -d -i "$ST_HOME/vault.key" "$ST_HOME/vault/$id.meta.age"
	[[ "$output" == *'"name":"note.txt"'* ]]
	[[ "$output" == *'"kind":"file"'* ]]
}

@test "put from stdin with a name; ls and ls --json show it" {
	id=$(printf 'abc' | st-vault put -n 'report.txt')
	run st-vault ls
	[ "$status" -eq 0 ]
	[[ "$output" == "$id "*"file"*"3  report.txt" ]]
	run st-vault ls -j
	echo "$output" | python3 -c '
import json, sys
o = json.loads(sys.stdin.read())
assert o["name"] == "report.txt" and o["size"] == 3 and o["kind"] == "file"
assert len(o["id"]) == 20 and isinstance(o["ts"], int)'
}

@test "ls filters by --from and --since; a bad time exits 64" {
	st-vault put -n a < /dev/null
	run st-vault ls --from nobody
	[ -z "$output" ]
	run st-vault ls --since 1d
	[ "${#lines[@]}" -eq 1 ]
	run st-vault ls --since 2099-01-01
	[ -z "$output" ]
	run st-vault ls --since yesterday-ish
	[ "$status" -eq 64 ]
}

@test "cat takes unique prefixes; unknown is 1, malformed is 64" {
	id=$(printf 'one\n' | st-vault put)
	run st-vault cat "${id:0:12}"
	[ "$output" = one ]
	run st-vault cat ffffffff
	[ "$status" -eq 1 ]
	[[ "$output" == *"no such item: ffffffff in $ST_HOME/vault ('st-vault ls' lists the items)"* ]]
	run st-vault cat '../../etc'
	[ "$status" -eq 64 ]
	run st-vault cat abc
	[ "$status" -eq 64 ]
}

@test "get without -o writes a safe basename and never overwrites" {
	id=$(printf 'x' | st-vault put -n '../../.ssh/authorized_keys')
	cd "$BATS_TEST_TMPDIR"
	run st-vault get "$id"
	[ "$status" -eq 0 ]
	[ "$output" = authorized_keys ]
	[ "$(cat authorized_keys)" = x ]
	run st-vault get "$id"
	[ "$status" -eq 73 ]
	[ "$(cat authorized_keys)" = x ]
}

@test "rm deletes both files; rm of an unknown id exits 1" {
	id=$(printf 'gone' | st-vault put)
	st-vault rm "$id"
	[ ! -e "$ST_HOME/vault/$id.age" ]
	[ ! -e "$ST_HOME/vault/$id.meta.age" ]
	run st-vault rm "$id"
	[ "$status" -eq 1 ]
}

@test "grep finds lines in text items, -i folds case, no match exits 1" {
	printf 'alpha\nthe Backup finished\nomega\n' | st-vault put -n log
	head -c 1000 /dev/urandom | st-vault put -n binary
	run st-vault grep backup
	[ "$status" -eq 1 ]
	run st-vault grep -i 'backup'
	[ "$status" -eq 0 ]
	[[ "$output" == *":the Backup finished" ]]
	[ "${#lines[@]}" -eq 1 ]
	run st-vault grep '('
	[ "$status" -eq 64 ]
}

@test "ls lists 1,000 items in order" {
	# ST_VAULT_ITEMS: fewer under valgrind (tests/valgrind.sh), where each
	# put takes a second or more
	n=${ST_VAULT_ITEMS:-1000}
	for i in $(seq 1 "$n"); do echo "$i"; done | while read -r i; do
		printf '%s' "$i" | st-vault put -n "n$i" >/dev/null
	done
	run st-vault ls
	[ "${#lines[@]}" -eq "$n" ]
	[[ "${lines[0]}" == *"  n1" ]]
	[[ "${lines[n - 1]}" == *"  n$n" ]]
}

@test "rekey keeps every item readable and changes no payload byte" {
	printf 'first' | st-vault put -n one > "$BATS_TEST_TMPDIR/id1"
	head -c 70000 /dev/urandom > "$BATS_TEST_TMPDIR/big"
	st-vault put "$BATS_TEST_TMPDIR/big" > "$BATS_TEST_TMPDIR/id2"
	id2=$(cat "$BATS_TEST_TMPDIR/id2")
	payload() { python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
i = d.index(b"\n--- ")
sys.stdout.buffer.write(d[d.index(b"\n", i + 1) + 1:])' "$1"; }
	payload "$ST_HOME/vault/$id2.age" > "$BATS_TEST_TMPDIR/p1"
	old=$(grep '^AGE-SECRET' "$ST_HOME/vault.key")
	run st-vault rekey
	[ "$status" -eq 0 ]
	[[ "$output" == age1* ]]
	[ "$old" != "$(grep '^AGE-SECRET' "$ST_HOME/vault.key")" ]
	[ ! -e "$ST_HOME/vault.key.new" ]
	payload "$ST_HOME/vault/$id2.age" > "$BATS_TEST_TMPDIR/p2"
	cmp "$BATS_TEST_TMPDIR/p1" "$BATS_TEST_TMPDIR/p2"
	[ "$(st-vault cat "$(cat "$BATS_TEST_TMPDIR/id1")")" = first ]
	st-vault get "$id2" -o - | cmp - "$BATS_TEST_TMPDIR/big"
	age -d -i "$ST_HOME/vault.key" "$ST_HOME/vault/$id2.age" | cmp - "$BATS_TEST_TMPDIR/big"
	[ "$(mode "$ST_HOME/vault.key")" = 600 ]
}

@test "every flipped bit of a file gives 65 (or 1 in a stanza) and no output" {
	printf 'z' | st-vault encrypt -o "$BATS_TEST_TMPDIR/f.age"
	python3 - "$BATS_TEST_TMPDIR/f.age" "$BATS_TEST_TMPDIR" "$ST_BIN/st-vault" <<'PY'
import os, subprocess, sys
src, tmp, exe = sys.argv[1:]
data = open(src, "rb").read()
stanza = (data.index(b"\n-> ") + 1, data.index(b"\n--- ") + 1)
bad = []
for i in range(len(data)):
    for bit in range(8):
        d = bytearray(data); d[i] ^= 1 << bit
        open(tmp + "/t.age", "wb").write(d)
        out = tmp + "/t.out"
        rc = subprocess.run([exe, "decrypt", "-o", out, tmp + "/t.age"],
                            stderr=subprocess.DEVNULL).returncode
        ok = rc == 65 or (rc == 1 and stanza[0] <= i < stanza[1])
        if not ok or os.path.exists(out):
            bad.append((i, bit, rc))
print(len(data) * 8, "flips;", len(bad), "bad:", bad[:10])
sys.exit(1 if bad else 0)
PY
}

@test "decrypt with the wrong identity exits 1 and leaves no file" {
	printf 'secret' | st-vault encrypt -o "$BATS_TEST_TMPDIR/s.age"
	age-keygen -o "$BATS_TEST_TMPDIR/other.key" 2>/dev/null
	run st-vault decrypt -i "$BATS_TEST_TMPDIR/other.key" -o "$BATS_TEST_TMPDIR/s.out" "$BATS_TEST_TMPDIR/s.age"
	[ "$status" -eq 1 ]
	[ ! -e "$BATS_TEST_TMPDIR/s.out" ]
	run st-vault decrypt -i "$BATS_TEST_TMPDIR/missing.key" "$BATS_TEST_TMPDIR/s.age"
	[ "$status" -eq 66 ]
	run st-vault decrypt "$BATS_TEST_TMPDIR/nothing.age"
	[ "$status" -eq 66 ]
}

@test "passphrase files: encrypt -p and decrypt; a wrong one exits 1" {
	printf 'hunter22\n' > "$BATS_TEST_TMPDIR/pw"
	printf 'wrong-one\r\n' > "$BATS_TEST_TMPDIR/bad"
	printf 'by passphrase' | st-vault encrypt -p --passphrase-file "$BATS_TEST_TMPDIR/pw" -o "$BATS_TEST_TMPDIR/p.age"
	run st-vault decrypt --passphrase-file "$BATS_TEST_TMPDIR/pw" "$BATS_TEST_TMPDIR/p.age"
	[ "$status" -eq 0 ]
	[ "$output" = "by passphrase" ]
	run st-vault decrypt --passphrase-file "$BATS_TEST_TMPDIR/bad" -o "$BATS_TEST_TMPDIR/p.out" "$BATS_TEST_TMPDIR/p.age"
	[ "$status" -eq 1 ]
	[ ! -e "$BATS_TEST_TMPDIR/p.out" ]
	run st-vault encrypt -p -r age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p < /dev/null
	[ "$status" -eq 64 ]
}

@test "binary to a terminal is refused; a bad recipient exits 64" {
	run st-vault encrypt -r age1notakey < /dev/null
	[ "$status" -eq 64 ]
	run script -qec "printf x | $ST_BIN/st-vault encrypt" /dev/null
	[[ "$output" == *"refusing to write binary"* ]]
}

@test "cat on a terminal escapes control characters" {
	printf 'a\033[2Jb\033]52;c;aGk=\007c\xc2\x9bd\xe2\x80\xaee\n' | st-vault put -n esc > "$BATS_TEST_TMPDIR/id"
	id=$(cat "$BATS_TEST_TMPDIR/id")
	run script -qec "$ST_BIN/st-vault cat $id" /dev/null
	[[ "$output" == *'a\x1b[2Jb\x1b]52;c;aGk=\x07c\x9bd\u202ee'* ]]
	run st-vault cat "$id"
	[ "$output" = "$(printf 'a\033[2Jb\033]52;c;aGk=\007c\xc2\x9bd\xe2\x80\xaee')" ]
}

@test "a busy lock makes put wait, then exit 75" {
	mkdir -p "$ST_HOME"
	flock "$ST_HOME/lock" sleep 12 &
	sleep 0.3
	run st-vault put -n x < /dev/null
	[ "$status" -eq 75 ]
	[[ "$output" == *"$ST_HOME/lock is busy"* ]]
	kill %1 2>/dev/null || true
}

@test "a full disk is a clear error (73) and loses nothing" {
	[ -w /dev/full ] || skip "no /dev/full"
	id=$(printf 'kept' | st-vault put)
	run st-vault cat "$id" > /dev/full
	run bash -c "$ST_BIN/st-vault cat $id > /dev/full"
	[ "$status" -eq 73 ]
	[ "$(st-vault cat "$id")" = kept ]
}

@test "-o to a device writes through it and leaves the device alone" {
	printf 'x' | st-vault encrypt -o /dev/null
	[ -c /dev/null ]
	printf 'x' | st-vault encrypt > "$BATS_TEST_TMPDIR/x.age"
	st-vault decrypt -o /dev/null "$BATS_TEST_TMPDIR/x.age"
	[ -c /dev/null ]
}

@test "decrypt asks /dev/tty for a passphrase only when the file needs one" {
	printf 'pass-phrase-1\n' > "$BATS_TEST_TMPDIR/pw"
	printf 'asked' | st-vault encrypt -p --passphrase-file "$BATS_TEST_TMPDIR/pw" > "$BATS_TEST_TMPDIR/p.age"
	run expect -c "
		set timeout 20
		spawn $ST_BIN/st-vault decrypt $BATS_TEST_TMPDIR/p.age
		expect \"Enter passphrase:\"
		send \"pass-phrase-1\r\"
		expect eof"
	[[ "$output" == *asked* ]]
	printf 'no prompt' | st-vault encrypt > "$BATS_TEST_TMPDIR/x.age"
	run st-vault decrypt "$BATS_TEST_TMPDIR/x.age" < /dev/null
	[ "$status" -eq 0 ]
	[ "$output" = "no prompt" ]
	# setsid: no controlling terminal, as under cron
	run setsid -w "$ST_BIN/st-vault" decrypt "$BATS_TEST_TMPDIR/p.age" < /dev/null
	[ "$status" -eq 64 ]
	[[ "$output" == *"no terminal to ask for the passphrase; give it with --passphrase-file F"* ]]
}

@test "a protected vault key: --passphrase-file for ls, cat, put; no terminal is 64, a wrong passphrase 77" {
	printf 'vault pass\n' >"$BATS_TEST_TMPDIR/pp"
	printf 'not it\n' >"$BATS_TEST_TMPDIR/bad"
	st-keygen --protect --passphrase-file "$BATS_TEST_TMPDIR/pp" 2>/dev/null
	! grep -q AGE-SECRET-KEY "$ST_HOME/vault.key" || false
	id=$(echo "kept secret" | st-vault put -n note --passphrase-file "$BATS_TEST_TMPDIR/pp")
	run st-vault ls --passphrase-file="$BATS_TEST_TMPDIR/pp"
	[ "$status" -eq 0 ]
	[[ "$output" == "$id "*"note" ]]
	run st-vault cat --passphrase-file "$BATS_TEST_TMPDIR/pp" "$id"
	[ "$status" -eq 0 ]
	[ "$output" = "kept secret" ]
	# no controlling terminal to ask on
	run setsid -w st-vault ls </dev/null
	[ "$status" -eq 64 ]
	[[ "$output" == *"the passphrase for $ST_HOME/vault.key; give it with --passphrase-file F"* ]]
	run st-vault cat "$id" --passphrase-file "$BATS_TEST_TMPDIR/bad"
	[ "$status" -eq 77 ]
	[ -z "$(echo "$output" | grep -v '^st-vault:')" ]
	run st-vault ls --passphrase-file
	[ "$status" -eq 64 ]
}

@test "put sweeps the vault's temporaries a killed writer left, once a minute old" {
	echo a | st-vault put -n a >/dev/null
	old=$ST_HOME/vault/01a2b3c4d5e6f7081920.age.tmp-0123456789ab
	fresh=$ST_HOME/vault/01a2b3c4d5e6f7081921.age.tmp-0123456789ac
	echo partial >"$old"
	echo partial >"$fresh"
	touch -d '2 minutes ago' "$old"
	echo b | st-vault put -n b >/dev/null
	[ ! -e "$old" ]
	[ -e "$fresh" ]
	[ "$(st-vault ls | wc -l)" -eq 2 ]
}

@test "no option takes a passphrase on the command line, abbreviated or not" {
	for arg in --pass=hunter2 --passphrase=hunter2 --passphrase-f=hunter2; do
		run st-vault decrypt "$arg"
		[ "$status" -eq 64 ]
		[[ "$output" != *hunter2* ]]
		run st-vault encrypt -p "$arg"
		[ "$status" -eq 64 ]
	done
}

@test "a flipped bit in a later chunk: 65, no -o file, stdout stops at the last authenticated chunk" {
	head -c 200000 /dev/urandom >"$BATS_TEST_TMPDIR/p"
	st-vault encrypt -o "$BATS_TEST_TMPDIR/c.age" "$BATS_TEST_TMPDIR/p"
	python3 - "$BATS_TEST_TMPDIR" "$ST_BIN/st-vault" <<'PY'
import os, subprocess, sys
tmp, exe = sys.argv[1:]
data = open(tmp + "/c.age", "rb").read()
plain = open(tmp + "/p", "rb").read()
body = data.index(b"\n--- ") + 1
body = data.index(b"\n", body) + 1 + 16           # header, then the nonce
chunk = 65536 + 16
bad = []
# chunk 2 (index 1), the last chunk, and the last chunk's tag
for k, off in ((1, body + chunk + 100), (3, body + 3 * chunk + 10),
               (3, len(data) - 1)):
    d = bytearray(data); d[off] ^= 0x10
    open(tmp + "/t.age", "wb").write(d)
    out = tmp + "/t.out"
    r = subprocess.run([exe, "decrypt", "-o", out, tmp + "/t.age"],
                       capture_output=True)
    if r.returncode != 65 or os.path.exists(out):
        bad.append(("-o", k, r.returncode))
    r = subprocess.run([exe, "decrypt", tmp + "/t.age"], capture_output=True)
    # only whole chunks before the damaged one may have been released
    if r.returncode != 65 or len(r.stdout) > k * 65536 or \
            r.stdout != plain[:len(r.stdout)]:
        bad.append(("stdout", k, r.returncode, len(r.stdout)))
# a file cut after chunk 2: 65, never a silent truncation
open(tmp + "/t.age", "wb").write(data[:body + 2 * chunk])
r = subprocess.run([exe, "decrypt", tmp + "/t.age"], capture_output=True)
if r.returncode != 65:
    bad.append(("cut", r.returncode))
print(bad)
sys.exit(1 if bad else 0)
PY
}
