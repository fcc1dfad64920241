# safetalk - one plain Makefile.  See README.md; `make check` and `make demo`
# install missing Debian packages themselves (contrib/deps.sh).

PREFIX   ?= /usr/local
BINDIR_I ?= $(PREFIX)/bin
# MANPREFIX as in suckless Makefiles; MANDIR (the man/ directory) wins
MANPREFIX ?= $(PREFIX)/share
MANDIR   ?= $(MANPREFIX)/man
DESTDIR  ?=
CC       ?= cc
PKG_CONFIG ?= pkg-config

PKGS     = openssl libargon2 libcurl jansson libmicrohttpd sqlite3 libpq
CFLAGS   ?= -O2 -g
WARN     = -Wall -Wextra -Wshadow -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ifeq ($(SANITIZE),1)
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
B       ?= build-san
else
SANFLAGS =
B       ?= build
endif
# B and BIN may be set on the command line to build into a private tree
# (make B=build-x BIN=build-x/bin), e.g. for parallel work in one checkout
BIN     ?= $(if $(filter 1,$(SANITIZE)),$(B)/bin,bin)

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) \
             $(SANFLAGS) -Ilibst $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
# --as-needed: a command loads only the libraries it calls (start-up, RSS)
ALL_LDFLAGS = -Wl,--as-needed $(SANFLAGS) $(LDFLAGS)
LIBS     = $(PKG_LIBS)

LIBST_SRC = $(wildcard libst/*.c)
LIBST_OBJ = $(LIBST_SRC:%.c=$(B)/%.o)
LIBST     = $(B)/libst.a

CMDS      = $(patsubst cmd/%.c,%,$(wildcard cmd/st-*.c))
SERVER_SRC = $(filter-out server/st-relay.c,$(wildcard server/*.c))
SERVER_OBJ = $(SERVER_SRC:%.c=$(B)/%.o)
RELAY     = $(if $(wildcard server/st-relay.c),$(BIN)/st-relay)
PROGS     = $(CMDS:%=$(BIN)/%) $(RELAY)

UNIT_SRC  = $(wildcard tests/unit/test_*.c)
UNIT_BIN  = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC  = $(wildcard tests/tools/*.c)
TOOL_BIN  = $(TOOL_SRC:tests/tools/%.c=$(B)/tests/%)
BENCH_SRC = $(wildcard tests/bench/*.c)
BENCH_BIN = $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

MAN1 = $(wildcard doc/*.1)
MAN5 = $(wildcard doc/*.5)
MAN7 = $(wildcard doc/*.7)
MAN8 = $(wildcard doc/*.8)

.PHONY: all check check-run test-build deps deps-if-missing install uninstall \
        clean bench fuzz demo
.DEFAULT_GOAL := all
# keep objects of test programs: they are not throwaway intermediates
.SECONDARY:

all: $(PROGS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBST): $(LIBST_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN)/st-relay: $(B)/server/st-relay.o $(SERVER_OBJ) $(LIBST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/st-%: $(B)/cmd/st-%.o $(LIBST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/test_%: $(B)/tests/unit/test_%.o $(LIBST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LIBS)

# the relay's router is tested without sockets, so it links the server
$(B)/tests/test_api: $(B)/tests/unit/test_api.o $(SERVER_OBJ) $(LIBST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LIBS)

# test tools may inflate compressed vectors: zlib is a test-only dependency
$(B)/tests/%: $(B)/tests/tools/%.o $(LIBST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lz

# benchmark programs (load generator, ceiling server) for `make bench`
$(B)/bench/%: $(B)/tests/bench/%.o $(LIBST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

test-build: $(PROGS) $(UNIT_BIN) $(TOOL_BIN)

# Install what is missing, then build with -Werror and run every suite in a
# fresh make (so pkg-config sees the packages just installed).
check: deps-if-missing
	@$(MAKE) --no-print-directory WERROR=1 check-run

check-run: test-build
	@ST_BUILD=$(B) ST_BIN=$(CURDIR)/$(BIN) tests/run.sh

deps:
	contrib/deps.sh

deps-if-missing:
	@contrib/deps.sh --if-missing

# a relay on a free loopback port, two users, a message and a file each way
demo: deps-if-missing
	@$(MAKE) --no-print-directory all
	@sh contrib/demo.sh $(CURDIR)/$(BIN)

bench: deps-if-missing
	@$(MAKE) --no-print-directory all $(TOOL_BIN) $(BENCH_BIN)
	@for b in tests/bench/*.sh; do [ -e "$$b" ] && ST_BUILD=$(B) ST_BIN=$(CURDIR)/$(BIN) sh "$$b"; done; true

# libFuzzer targets (tests/fuzz/fuzz_*.c, see tests/fuzz/README.md) in their
# own tree: libst, the server objects and the targets are built again by
# clang with coverage, ASan and UBSan, then tests/fuzz/run.sh runs each
# target for FUZZ_SECONDS on a copy of its seed corpus (tests/fuzz/corpus).
FUZZ_B       = build-fuzz
FUZZ_CC      = clang
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
FUZZ_SECONDS ?= 60
FUZZ_SRC     = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     = $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)

fuzz: deps-if-missing
	@contrib/deps.sh --if-missing --tools
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "make fuzz: $(FUZZ_CC)" \
	    "is missing (Debian: clang libclang-rt-14-dev)" >&2; exit 69; }
	@$(MAKE) --no-print-directory B=$(FUZZ_B) BIN=$(FUZZ_B)/bin \
	    CC=$(FUZZ_CC) CFLAGS='-g -O1' \
	    SANFLAGS='-fsanitize=fuzzer-no-link $(FUZZ_SAN)' fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ST_FUZZ_BUILD=$(FUZZ_B) tests/fuzz/run.sh

# only through `make fuzz`, which sets B, CC and SANFLAGS for it
.PHONY: fuzz-build
fuzz-build: $(FUZZ_BIN)

$(B)/fuzz/fuzz_%: $(B)/tests/fuzz/fuzz_%.o $(LIBST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

# the router target drives the relay's api without sockets
$(B)/fuzz/fuzz_router: $(B)/tests/fuzz/fuzz_router.o $(SERVER_OBJ) $(LIBST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

# Static analysis of libst/, cmd/ and server/ with cppcheck and clang-tidy;
# the check sets, and why each excluded check is excluded, are in
# doc/lint.md.  Then the man pages: mandoc -T lint, and each command's
# SYNOPSIS against its usage text (tests/tools/manlint.sh, which make check
# runs too).  Any finding fails.
LINT_SRC  = $(wildcard libst/*.c cmd/*.c server/*.c)
LINT_DEFS = -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
# cppcheck reads no system headers; Jansson's is forced in for its macros
CPPCHECK  = cppcheck
CPPCHECK_FLAGS = --std=c11 --library=posix --quiet --inline-suppr \
    --error-exitcode=1 --enable=warning,style,performance,portability \
    -Ilibst -Iserver $(LINT_DEFS) \
    --include=$(shell $(PKG_CONFIG) --variable=includedir jansson)/jansson.h \
    --suppress=missingIncludeSystem --suppress=variableScope \
    --suppress=readdirCalled --suppress=usleepCalled \
    --suppress=unusedStructMember --suppress=unreadVariable \
    --suppress=unassignedVariable \
    --suppress=knownConditionTrueFalse:libst/recv.c \
    --suppress=knownConditionTrueFalse:libst/send.c \
    --suppress=knownConditionTrueFalse:libst/recvstore.c \
    --suppress=arrayIndexThenCheck:server/api.c \
    --template='{file}:{line}: {severity}: {message} [{id}]'
CLANG_TIDY = clang-tidy
TIDY_CHECKS = -*,clang-analyzer-*,\
-clang-analyzer-core.CallAndMessage,-clang-analyzer-core.NonNullParamChecker,\
-clang-analyzer-core.NullDereference,\
-clang-analyzer-core.UndefinedBinaryOperatorResult,\
-clang-analyzer-core.uninitialized.Assign,-clang-analyzer-valist.Uninitialized,\
-clang-analyzer-deadcode.DeadStores,-clang-analyzer-optin.performance.Padding,\
-clang-analyzer-security.insecureAPI.strcpy,\
-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling,\
bugprone-*,-bugprone-easily-swappable-parameters,\
-bugprone-implicit-widening-of-multiplication-result,\
-bugprone-narrowing-conversions,-bugprone-not-null-terminated-result,\
-bugprone-signed-char-misuse,-bugprone-sizeof-expression,\
cert-*,-cert-err33-c,-cert-str34-c,\
misc-*,-misc-unused-parameters,-misc-no-recursion,performance-*,portability-*
TIDY_FEATURE_MACROS = _POSIX_C_SOURCE;_XOPEN_SOURCE;_DEFAULT_SOURCE;_GNU_SOURCE
TIDY_CONFIG = {Checks: "$(TIDY_CHECKS)", WarningsAsErrors: "*", \
    HeaderFilterRegex: "(libst|server)/[^/]*\\.h$$", CheckOptions: [\
    {key: bugprone-suspicious-string-compare.WarnOnImplicitComparison, value: false},\
    {key: bugprone-reserved-identifier.AllowedIdentifiers, value: "$(TIDY_FEATURE_MACROS)"},\
    {key: cert-dcl37-c.AllowedIdentifiers, value: "$(TIDY_FEATURE_MACROS)"},\
    {key: cert-dcl51-cpp.AllowedIdentifiers, value: "$(TIDY_FEATURE_MACROS)"}]}

.PHONY: lint
lint: $(PROGS)
	@contrib/deps.sh --if-missing --tools
	@for t in $(CPPCHECK) $(CLANG_TIDY) mandoc; do command -v $$t >/dev/null 2>&1 || \
	    { echo "make lint: $$t is missing (Debian: cppcheck clang-tidy mandoc)" >&2; exit 69; }; done
	$(CPPCHECK) $(CPPCHECK_FLAGS) $(LINT_SRC)
	$(CLANG_TIDY) --quiet --config='$(TIDY_CONFIG)' $(LINT_SRC) -- \
	    -std=c11 $(LINT_DEFS) $(WARN) -Ilibst $(PKG_CFLAGS)
	mandoc -T lint -W warning $(MAN1) $(MAN5) $(MAN7) $(MAN8)
	@ST_BIN=$(CURDIR)/$(BIN) tests/tools/manlint.sh >$(B)/manlint.tap || \
	    { grep -v '^ok ' $(B)/manlint.tap >&2; exit 1; }

# The BATS suites with every client command under valgrind memcheck
# (tests/valgrind.sh, see doc/valgrind.md): the normal build, each command
# run through a wrapper; any memory error or definite leak fails.
.PHONY: valgrind
valgrind: deps-if-missing
	@$(MAKE) --no-print-directory all $(TOOL_BIN)
	@ST_BUILD=$(B) ST_BIN=$(CURDIR)/$(BIN) tests/valgrind.sh

install: all
	install -d $(DESTDIR)$(BINDIR_I) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR_I)
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5)
	$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7)
	$(if $(MAN8),install -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR_I)/,$(notdir $(PROGS)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))

clean:
	rm -rf build build-san build-fuzz bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)
