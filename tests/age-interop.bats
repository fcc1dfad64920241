#!/usr/bin/env bats
# Interoperability with the real age (Debian's age 1.1.1) in both
# directions: X25519 with one and several recipients, armor, passphrases,
# and the chunk-boundary sizes.

load helper

setup() {
	setup_home
	T=$BATS_TEST_TMPDIR
	age-keygen -o "$T/k1" 2>/dev/null
	age-keygen -o "$T/k2" 2>/dev/null
	R1=$(age-keygen -y "$T/k1")
	R2=$(age-keygen -y "$T/k2")
}

sizes="0 1 65535 65536 65537 10485760"

@test "st-vault encrypt -> age -d, every size, one and two recipients" {
	for n in $sizes; do
		head -c "$n" /dev/urandom > "$T/in"
		st-vault encrypt -r "$R1" -o "$T/a.age" "$T/in"
		age -d -i "$T/k1" "$T/a.age" | cmp - "$T/in"
		st-vault encrypt -r "$R1" -r "$R2" "$T/in" > "$T/b.age"
		age -d -i "$T/k2" "$T/b.age" | cmp - "$T/in"
		age -d -i "$T/k1" "$T/b.age" | cmp - "$T/in"
	done
}

@test "age -r -> st-vault decrypt, every size, one and two recipients" {
	for n in $sizes; do
		head -c "$n" /dev/urandom > "$T/in"
		age -r "$R1" -o "$T/a.age" "$T/in"
		st-vault decrypt -i "$T/k1" "$T/a.age" | cmp - "$T/in"
		age -r "$R1" -r "$R2" -o "$T/b.age" "$T/in"
		st-vault decrypt -i "$T/k2" -o "$T/out" "$T/b.age"
		cmp "$T/out" "$T/in"
	done
}

@test "armor both ways" {
	for n in 0 1 65536 200000; do
		head -c "$n" /dev/urandom > "$T/in"
		st-vault encrypt -a -r "$R1" "$T/in" > "$T/a.txt"
		head -1 "$T/a.txt" | grep -qx -- '-----BEGIN AGE ENCRYPTED FILE-----'
		age -d -i "$T/k1" "$T/a.txt" | cmp - "$T/in"
		age -a -r "$R1" "$T/in" > "$T/b.txt"
		st-vault decrypt -i "$T/k1" "$T/b.txt" | cmp - "$T/in"
	done
}

@test "recipients file -R and identity files with comments" {
	printf '# team\n%s\n\n%s\n' "$R1" "$R2" > "$T/rcpts"
	printf 'to both' | st-vault encrypt -R "$T/rcpts" > "$T/c.age"
	[ "$(age -d -i "$T/k2" "$T/c.age")" = "to both" ]
	[ "$(st-vault decrypt -i "$T/k1" "$T/c.age")" = "to both" ]
}

@test "passphrases both ways (age driven through a terminal by expect)" {
	printf 'correct horse\n' > "$T/pw"
	printf 'by scrypt' > "$T/in"
	st-vault encrypt -p --passphrase-file "$T/pw" -o "$T/p1.age" "$T/in"
	expect -c "
		set timeout 30
		spawn age -d -o $T/out1 $T/p1.age
		expect \"passphrase\"
		send \"correct horse\r\"
		expect eof
		catch wait result
		exit [lindex \$result 3]"
	cmp "$T/out1" "$T/in"
	expect -c "
		set timeout 30
		spawn age -p -o $T/p2.age $T/in
		expect \"passphrase\"
		send \"correct horse\r\"
		expect \"onfirm\"
		send \"correct horse\r\"
		expect eof
		catch wait result
		exit [lindex \$result 3]"
	grep -q 'scrypt' "$T/p2.age"
	st-vault decrypt --passphrase-file "$T/pw" "$T/p2.age" | cmp - "$T/in"
}
