#!/bin/sh
# deps.sh - install the Debian packages safetalk builds and tests with.
# With --if-missing, do nothing unless pkg-config or command -v finds
# something missing.  --tools adds what `make fuzz` and `make lint` use
# (clang with its libFuzzer runtime, cppcheck, clang-tidy, mandoc).  Uses
# sudo when not root.
set -eu

PKGS="build-essential pkg-config libssl-dev libargon2-dev libcurl4-openssl-dev
libjansson-dev libmicrohttpd-dev libsqlite3-dev libpq-dev postgresql
libcmocka-dev zlib1g-dev bats age expect curl python3 time valgrind"

TOOLS=
for a in "$@"; do
	[ "$a" = --tools ] && TOOLS=1
done
if [ -n "$TOOLS" ]; then
	PKGS="$PKGS clang libclang-rt-14-dev cppcheck clang-tidy mandoc"
fi

missing() {
	command -v cc >/dev/null 2>&1 || return 0
	command -v pkg-config >/dev/null 2>&1 || return 0
	pkg-config --exists openssl libargon2 libcurl jansson libmicrohttpd \
	    sqlite3 libpq cmocka zlib 2>/dev/null || return 0
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || return 0
	for c in bats age expect curl python3; do
		command -v "$c" >/dev/null 2>&1 || return 0
	done
	if [ -n "$TOOLS" ]; then
		for c in clang cppcheck clang-tidy mandoc; do
			command -v "$c" >/dev/null 2>&1 || return 0
		done
		ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
		    >/dev/null 2>&1 || return 0
	fi
	return 1
}

if [ "${1:-}" = "--if-missing" ] && ! missing; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO=sudo
else
	echo "deps.sh: not root and no sudo; install: $PKGS" >&2
	exit 78
fi

echo "deps.sh: installing Debian packages: $(echo $PKGS)" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PKGS >&2
