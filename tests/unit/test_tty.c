/*
 * test_tty.c - terminal escaping of remote text and reading secrets from
 * files.  The escaping cases are the attacks SPEC §2 names: clearing the
 * screen, setting the clipboard (OSC 52), forged links (OSC 8), CSI through
 * C1 bytes, bidi overrides; each next to text that must pass unchanged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "st.h"

static char top[64];

static int setup_group(void **state)
{
	(void)state;
	strcpy(top, "/tmp/st-unit-tty-XXXXXX");
	return mkdtemp(top) ? 0 : -1;
}

static int teardown_group(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void escapes_n(const char *in, size_t n, int keep_nl, const char *want)
{
	char *out = st_tty_escape(in, n, keep_nl);

	assert_string_equal(out, want);
	free(out);
}

static void escapes(const char *in, int keep_nl, const char *want)
{
	escapes_n(in, strlen(in), keep_nl, want);
}

/* No byte a terminal would act on survives: C0, DEL, C1 as raw bytes. */
static void assert_inert(const char *in, size_t n)
{
	char *out = st_tty_escape(in, n, 0);

	for (const unsigned char *p = (const unsigned char *)out; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == 0x9b)
			fail_msg("byte 0x%02x left in \"%s\"", *p, out);
	/* nor any C1 control or bidi control encoded as UTF-8 */
	assert_null(strstr(out, "\xc2\x9b"));
	assert_null(strstr(out, "\xe2\x80\xae"));
	assert_null(strstr(out, "\xe2\x81\xa6"));
	free(out);
}

static void csi_clear_screen(void **state)
{
	(void)state;
	escapes("\x1b[2J", 0, "\\x1b[2J");
	escapes("\x1b[2J\x1b[H", 1, "\\x1b[2J\\x1b[H");
	escapes("red \x1b[31mtext\x1b[0m", 1, "red \\x1b[31mtext\\x1b[0m");
	assert_inert("\x1b[2J", 4);
}

static void osc52_clipboard(void **state)
{
	(void)state;
	/* ESC ] 52 ; c ; base64 BEL: set the clipboard */
	escapes("\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07", 0,
	        "\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07");
	assert_inert("\x1b]52;c;Y3VybA==\x07", 16);
}

static void osc8_link(void **state)
{
	(void)state;
	/* ESC ] 8 ; ; URL ST text ESC ] 8 ; ; ST, with ST as ESC backslash */
	escapes("\x1b]8;;https://evil.example\x1b\\bank.example\x1b]8;;\x1b\\",
	        1,
	        "\\x1b]8;;https://evil.example\\x1b\\\\bank.example"
	        "\\x1b]8;;\\x1b\\\\");
}

static void c1_csi(void **state)
{
	(void)state;
	/* 0x9b is CSI on terminals that take 8-bit controls */
	escapes("\x9b" "2J", 0, "\\x9b2J");		/* raw byte */
	escapes("\xc2\x9b" "2J", 0, "\\x9b2J");	/* as UTF-8 */
	escapes("\xc2\x80\xc2\x9f", 0, "\\x80\\x9f");
	escapes("\xc2\xa0", 0, "\xc2\xa0");		/* U+00A0 is text */
	assert_inert("\x9b" "2J", 3);
	assert_inert("\xc2\x9b" "2J", 4);
}

static void bidi(void **state)
{
	(void)state;
	escapes("abc\xe2\x80\xae" "fdp.exe", 0, "abc\\u202efdp.exe");	/* RLO */
	escapes("\xe2\x81\xa6x\xe2\x81\xa9", 0, "\\u2066x\\u2069");	/* LRI PDI */
	escapes("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", 0,
	        "\\u202a\\u202b\\u202c\\u202d");
	escapes("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", 0,
	        "\\u200e\\u200f\\u061c");
	escapes("\xe2\x81\xa7\xe2\x81\xa8", 0, "\\u2067\\u2068");
	/* neighbours that are text */
	escapes("\xe2\x80\xaf\xe2\x81\xa5\xe2\x80\x8d", 0,
	        "\xe2\x80\xaf\xe2\x81\xa5\xe2\x80\x8d");
	assert_inert("\xe2\x80\xae", 3);
	assert_inert("\xe2\x81\xa6", 3);
}

static void invalid_utf8(void **state)
{
	(void)state;
	escapes("\xff", 0, "\\xff");
	escapes("a\xc3", 0, "a\\xc3");			/* truncated at the end */
	escapes("\xe2\x80", 0, "\\xe2\\x80");
	escapes("\xc3(", 0, "\\xc3(");			/* bad continuation */
	escapes("\xc0\xaf", 0, "\\xc0\\xaf");		/* overlong '/' */
	escapes("\xe0\x80\xaf", 0, "\\xe0\\x80\\xaf");	/* overlong, 3 bytes */
	escapes("\xed\xa0\x80", 0, "\\xed\\xa0\\x80");	/* surrogate */
	escapes("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80");	/* > U+10FFFF */
	escapes("\x80", 0, "\\x80");			/* lone continuation */
	escapes("\xf0\x9f\x98\x80", 0, "\xf0\x9f\x98\x80");	/* twin: valid */
}

static void backslash_and_c0(void **state)
{
	(void)state;
	/* a literal "\x1b" in the text must not look like an escaped ESC */
	escapes("\\x1b", 0, "\\\\x1b");
	escapes("a\\b", 1, "a\\\\b");
	escapes("\x7f", 0, "\\x7f");
	escapes("\r", 1, "\\x0d");		/* CR could overwrite a line */
	escapes("\b\a\v\f", 1, "\\x08\\x07\\x0b\\x0c");
	escapes_n("a\0b", 3, 0, "a\\x00b");
}

static void keeps_text(void **state)
{
	(void)state;
	escapes("h\xc3\xa9llo \xe2\x9c\x93", 0, "h\xc3\xa9llo \xe2\x9c\x93");
	escapes("plain ASCII ~!@#$%^&*()", 0, "plain ASCII ~!@#$%^&*()");
	escapes("\xe6\x97\xa5\xe6\x9c\xac \xd0\x9f\xd1\x80\xd0\xb8", 0,
	        "\xe6\x97\xa5\xe6\x9c\xac \xd0\x9f\xd1\x80\xd0\xb8");
	escapes("line 1\nline\t2\n", 1, "line 1\nline\t2\n");
	/* the twin: without keep_nl they are escaped */
	escapes("line 1\nline\t2\n", 0, "line 1\\x0aline\\x092\\x0a");
	escapes("", 0, "");
}

/* ---- st_read_secret from files ---- */

static char *file_with(const char *name, const void *p, size_t n)
{
	char *path = st_path_join(top, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(st_write_all(fd, p, n), 0);
	close(fd);
	return path;
}

static void secret_is(const char *content, size_t n, const char *want)
{
	char *p = file_with("secret", content, n), *s;

	s = st_read_secret(p, NULL);
	if (!s)
		fail_msg("no secret from \"%s\": %s", content, st_errmsg());
	assert_string_equal(s, want);
	st_free_str_secret(s);
	free(p);
}

static void secret_fails(const char *content, size_t n, int code)
{
	char *p = file_with("secret", content, n), *s;

	st_error_clear();
	s = st_read_secret(p, NULL);
	if (s) {
		st_free_str_secret(s);
		fail_msg("a secret came from a bad file");
	}
	assert_int_equal(st_errcode(), code);
	free(p);
}

static void secret_first_line(void **state)
{
	(void)state;
	secret_is("hunter2", 7, "hunter2");
	secret_is("hunter2\n", 8, "hunter2");
	secret_is("hunter2\r\n", 9, "hunter2");
	secret_is("hunter2\nsecond line\n", 20, "hunter2");
	secret_is("hunter2\r\nsecond\r\n", 17, "hunter2");
	/* only the final CR of the line goes; spaces are part of it */
	secret_is(" pass word \n", 12, " pass word ");
	secret_is("a\rb\n", 4, "a\rb");
	secret_is("p\xc3\xa4ss\n", 6, "p\xc3\xa4ss");
}

static void secret_empty_fails(void **state)
{
	(void)state;
	secret_fails("", 0, ST_EX_DATAERR);
	secret_fails("\n", 1, ST_EX_DATAERR);
	secret_fails("\r\n", 2, ST_EX_DATAERR);
	secret_fails("\nsecond\n", 8, ST_EX_DATAERR);
}

/* A NUL would cut the secret short without anyone noticing. */
static void secret_nul_fails(void **state)
{
	(void)state;
	secret_fails("ab\0cd\n", 6, ST_EX_DATAERR);
	secret_fails("\0abc", 4, ST_EX_DATAERR);
	/* a NUL after the first line is not part of the secret */
	secret_is("abcd\n\0", 6, "abcd");
}

static void secret_missing(void **state)
{
	char *p = st_path_join(top, "no-such-file");

	(void)state;
	st_error_clear();
	assert_null(st_read_secret(p, NULL));
	assert_int_equal(st_errcode(), ST_EX_NOINPUT);
	assert_non_null(strstr(st_errmsg(), "no-such-file"));
	free(p);
}

static void secret_dev_fd(void **state)
{
	char path[32], *s;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(st_write_all(fds[1], "from-pipe\r\nrest\n", 16), 0);
	close(fds[1]);
	snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
	s = st_read_secret(path, "unused prompt: ");
	assert_non_null(s);
	assert_string_equal(s, "from-pipe");
	st_free_str_secret(s);
	close(fds[0]);

	/* an empty pipe is an empty secret */
	assert_int_equal(pipe(fds), 0);
	close(fds[1]);
	snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
	st_error_clear();
	assert_null(st_read_secret(path, NULL));
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	close(fds[0]);
}

/* A "secret" file of megabytes is a mistake, not a password. */
static void secret_too_big(void **state)
{
	char *big = malloc(100000);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', 100000);
	big[10] = '\n';
	secret_fails(big, 100000, ST_EX_DATAERR);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(csi_clear_screen),
		cmocka_unit_test(osc52_clipboard),
		cmocka_unit_test(osc8_link),
		cmocka_unit_test(c1_csi),
		cmocka_unit_test(bidi),
		cmocka_unit_test(invalid_utf8),
		cmocka_unit_test(backslash_and_c0),
		cmocka_unit_test(keeps_text),
		cmocka_unit_test(secret_first_line),
		cmocka_unit_test(secret_empty_fails),
		cmocka_unit_test(secret_nul_fails),
		cmocka_unit_test(secret_missing),
		cmocka_unit_test(secret_dev_fd),
		cmocka_unit_test(secret_too_big),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
