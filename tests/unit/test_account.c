/*
 * test_account.c - the plumbing of the identity commands that needs no
 * relay: long options only when spelt out (no abbreviation may carry a
 * secret), the relay URL rules (plain http to loopback only, judged on
 * the host curl connects to), and the user-name and password checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

static const struct option lo[] = {
	{ "passphrase-file", required_argument, 0, 'P' },
	{ "protect", no_argument, 0, 'X' },
	{ "json", no_argument, 0, 'j' },
	{ 0, 0, 0, 0 } };

/* The options st_getopt() returns for argv, as a string; '?' for errors. */
static void parse(int argc, char **argv, char *out)
{
	int c;

	optind = 0;
	opterr = 0;
	st_error_clear();
	while ((c = st_getopt(argc, argv, "jp", lo)) != -1)
		*out++ = (char)c;
	*out = '\0';
}

static void getopt_exact(void **state)
{
	char got[16];
	char *a1[] = { "t", "--passphrase-file", "f", "--protect", "-j", NULL };
	char *a2[] = { "t", "--passphrase-file=f", "--json", NULL };
	char *a3[] = { "t", "--passphrase", "hunter2", NULL };
	char *a4[] = { "t", "--pass=hunter2", NULL };
	char *a5[] = { "t", "--prot", NULL };
	char *a6[] = { "t", "x", "--protect", "y", NULL };
	char *a7[] = { "t", "--passphrase-file", "--protect", NULL };

	(void)state;
	parse(5, a1, got);
	assert_string_equal(got, "PXj");
	parse(3, a2, got);
	assert_string_equal(got, "Pj");
	parse(3, a3, got);
	assert_string_equal(got, "?");
	assert_int_equal(st_errcode(), ST_EX_USAGE);
	assert_string_equal(st_errmsg(), "unrecognized option '--passphrase'");
	/* the would-be secret is never repeated */
	assert_null(strstr(st_errmsg(), "hunter2"));
	parse(2, a4, got);
	assert_string_equal(got, "?");
	assert_string_equal(st_errmsg(), "unrecognized option '--pass'");
	parse(2, a5, got);
	assert_string_equal(got, "?");
	/* operands around options (getopt permutes them) */
	parse(4, a6, got);
	assert_string_equal(got, "X");
	/* an argument that looks like an option is still the argument */
	parse(3, a7, got);
	assert_string_equal(got, "P");
}

static void relay_urls(void **state)
{
	static const char *const ok[] = {
		"http://127.0.0.1:8443", "http://127.0.0.1:8443/",
		"http://127.1.2.3/relay", "http://localhost:1",
		"http://[::1]:8443", "https://relay.example.org",
		"https://relay.example.org:444/st/", NULL };
	static const char *const config[] = {
		"http://relay.example.org", "http://127.0.0.1@evil.example/",
		"http://127.0.0.1.evil.example/", "http://128.0.0.1/",
		"http://127.0.0.256/", "http://localhost.evil.example/",
		"https://relay.example.org/?x=1", "https://relay.example.org/#f",
		"https://u:p@relay.example.org/", "ftp://relay.example.org",
		"relay.example.org", "", "HTTP://127.0.0.1", NULL };
	struct st_relay *r;

	(void)state;
	for (int i = 0; ok[i]; i++) {
		r = st_relay_new(ok[i], 0);
		if (!r)
			fail_msg("%s: %s", ok[i], st_errmsg());
		st_relay_free(r);
	}
	for (int i = 0; config[i]; i++) {
		r = st_relay_new(config[i], 0);
		if (r)
			fail_msg("%s was accepted", config[i]);
		assert_int_equal(st_errcode(), ST_EX_CONFIG);
	}
	/* --insecure-http lets plain http leave the machine, nothing else */
	assert_non_null(r = st_relay_new("http://relay.example.org", 1));
	st_relay_free(r);
	assert_null(st_relay_new("http://127.0.0.1@evil.example/", 1));
}

static void names_and_passwords(void **state)
{
	static const char *const good[] = { "a", "0", "alice", "a.b-c_d",
		"abcdefghijklmnopqrstuvwxyz012345", NULL };
	static const char *const bad[] = { "", "A", "-a", ".a", "_a", "a/b",
		"..", "a b", "a\033[2J", "\xe2\x80\xae" "ab",
		"abcdefghijklmnopqrstuvwxyz0123456", NULL };
	char pw[1026];

	(void)state;
	for (int i = 0; good[i]; i++)
		assert_int_equal(st_account_name_ok(good[i]), 0);
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(st_account_name_ok(bad[i]), -1);
		assert_int_equal(st_errcode(), ST_EX_USAGE);
		/* shown escaped: the message has no control bytes */
		for (const char *p = st_errmsg(); *p; p++)
			assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
		assert_null(strstr(st_errmsg(), "\xe2\x80\xae"));
	}
	memset(pw, 'x', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	pw[7] = '\0';
	assert_int_equal(st_account_password_ok(pw), -1);
	assert_int_equal(st_errcode(), ST_EX_USAGE);
	pw[7] = 'x';
	pw[8] = '\0';
	assert_int_equal(st_account_password_ok(pw), 0);
	pw[8] = 'x';
	pw[1024] = '\0';
	assert_int_equal(st_account_password_ok(pw), 0);
	pw[1024] = 'x';
	assert_int_equal(st_account_password_ok(pw), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(getopt_exact),
		cmocka_unit_test(relay_urls),
		cmocka_unit_test(names_and_passwords),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
