/*
 * tty.c - secrets from /dev/tty (echo off) or a named file or descriptor,
 * never argv or the environment; and escaping of remote text for terminals,
 * so that a message cannot clear the screen, set the clipboard (OSC 52),
 * forge links (OSC 8) or reverse text (bidi overrides).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "st.h"

#define SECRET_MAX 4096

/* The first line of buf without LF or CRLF, as a new string. */
static char *first_line(const unsigned char *buf, size_t len)
{
	size_t n = 0;

	while (n < len && buf[n] != '\n')
		n++;
	if (n && buf[n - 1] == '\r')
		n--;
	return st_strndup((const char *)buf, n);
}

static char *secret_from_file(const char *file)
{
	unsigned char *buf, *nl;
	size_t len;
	char *s;
	int fd, rc, nul;

	if (strcmp(file, "-") == 0)
		fd = 0;
	else if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		st_error(ST_EX_NOINPUT, "cannot open %s:", file);
		return NULL;
	}
	/* read only up to the cap: a secret file is small */
	rc = st_read_fd(fd, SECRET_MAX, file, &buf, &len);
	if (fd)
		close(fd);
	if (rc < 0)
		return NULL;
	/* a NUL in the line would cut the secret short without a word */
	nl = memchr(buf, '\n', len);
	nul = memchr(buf, '\0', nl ? (size_t)(nl - buf) : len) != NULL;
	s = first_line(buf, len);
	st_free_secret(buf, len);
	if (nul || !*s) {
		st_free_str_secret(s);
		if (nul)
			st_error(ST_EX_DATAERR, "%s: NUL byte in secret", file);
		else
			st_error(ST_EX_DATAERR, "%s: empty secret", file);
		return NULL;
	}
	return s;
}

/*
 * No terminal (cron, setsid, a pipe): say which secret was wanted, from
 * the prompt ("password for alice: " or "passphrase for PATH: "), and the
 * option that gives it from a file instead.
 */
static void no_tty(const char *prompt)
{
	const char *opt = "--password-file F or --passphrase-file F";
	size_t n;

	if (!prompt) {
		st_error(ST_EX_USAGE, "no terminal to read the secret from; give "
		         "it with %s", opt);
		return;
	}
	if (!strncmp(prompt, "Enter ", 6))
		prompt += 6;
	n = strcspn(prompt, ":");
	opt = strstr(prompt, "password") ? "--password-file F"
	      : "--passphrase-file F";
	st_error(ST_EX_USAGE, "no terminal to ask for the %.*s; give it with "
	         "%s", (int)(n > 300 ? 300 : n), prompt, opt);
}

static char *secret_from_tty(const char *prompt)
{
	struct termios old, quiet;
	char buf[SECRET_MAX + 2];
	size_t n = 0;
	char *s = NULL;
	int fd, echo_off = 0;
	ssize_t r;
	char c;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		no_tty(prompt);
		return NULL;
	}
	if (tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	if (prompt)
		(void)!write(fd, prompt, strlen(prompt));
	while ((r = read(fd, &c, 1)) == 1 && c != '\n' && c != '\r')
		if (n < SECRET_MAX)
			buf[n++] = c;
	if (echo_off) {
		tcsetattr(fd, TCSAFLUSH, &old);
		(void)!write(fd, "\n", 1);
	}
	close(fd);
	if (r < 0)
		st_error(ST_EX_NOINPUT, "cannot read the terminal:");
	else if (n == 0)
		st_error(ST_EX_USAGE, "empty secret");
	else
		s = st_strndup(buf, n);
	st_wipe(buf, sizeof(buf));
	return s;
}

char *st_read_secret(const char *file, const char *prompt)
{
	return file ? secret_from_file(file) : secret_from_tty(prompt);
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0], v;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, v = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, v = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, v = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

static int dangerous(unsigned cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	       (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

char *st_tty_escape(const char *str, size_t n, int keep_nl)
{
	const unsigned char *s = (const unsigned char *)str;
	struct st_buf b;
	size_t i = 0, len;
	unsigned cp;

	st_buf_init(&b, 0);
	st_buf_reserve(&b, n);
	while (i < n) {
		len = utf8_len(s + i, n - i, &cp);
		if (len == 0) {
			st_buf_appendf(&b, "\\x%02x", s[i]);
			i++;
			continue;
		}
		if (keep_nl && (cp == '\n' || cp == '\t'))
			st_buf_appendc(&b, (unsigned char)cp);
		else if (cp == '\\')
			st_buf_append(&b, "\\\\", 2);
		else if (dangerous(cp) && cp < 0x100)
			st_buf_appendf(&b, "\\x%02x", cp);
		else if (dangerous(cp))
			st_buf_appendf(&b, "\\u%04x", cp);
		else
			st_buf_append(&b, s + i, len);
		i += len;
	}
	st_buf_cstr(&b);
	return (char *)b.data;
}

int st_tty_fputs(FILE *f, const char *s, size_t n)
{
	char *e;
	int rc;

	if (!isatty(fileno(f)))
		return fwrite(s, 1, n, f) == n ? 0 : -1;
	e = st_tty_escape(s, n, 1);
	rc = fputs(e, f) == EOF ? -1 : 0;
	free(e);
	return rc;
}

void st_tty_sink_init(struct st_tty_sink *t, FILE *f)
{
	t->f = f;
	t->tty = isatty(fileno(f));
	t->ncarry = 0;
}

/* Bytes at the end of s that may begin an incomplete UTF-8 sequence. */
static size_t incomplete_tail(const unsigned char *s, size_t n)
{
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char c = s[n - back];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue;
		need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		return need > back ? back : 0;
	}
	return 0;
}

static int put_escaped(struct st_tty_sink *t, const unsigned char *s,
                       size_t n)
{
	char *e = st_tty_escape((const char *)s, n, 1);
	int rc = fputs(e, t->f) == EOF ? -1 : 0;

	free(e);
	if (rc < 0)
		return st_error(ST_EX_CANTCREAT, "cannot write output:");
	return 0;
}

int st_sink_tty(void *ctx, const void *p, size_t n)
{
	struct st_tty_sink *t = ctx;
	const unsigned char *s = p;
	size_t keep;

	if (!t->tty) {
		if (n && fwrite(p, 1, n, t->f) != n)
			return st_error(ST_EX_CANTCREAT, "cannot write output:");
		return 0;
	}
	/* complete a sequence carried over from the last write */
	while (t->ncarry && n) {
		t->carry[t->ncarry++] = *s++;
		n--;
		if (incomplete_tail(t->carry, t->ncarry) == 0 || t->ncarry == 4) {
			if (put_escaped(t, t->carry, t->ncarry) < 0)
				return -1;
			t->ncarry = 0;
		}
	}
	keep = incomplete_tail(s, n);
	if (put_escaped(t, s, n - keep) < 0)
		return -1;
	memcpy(t->carry, s + n - keep, keep);
	t->ncarry = keep;
	return 0;
}

int st_tty_sink_flush(struct st_tty_sink *t)
{
	int rc = 0;

	if (t->ncarry)
		rc = put_escaped(t, t->carry, t->ncarry);
	t->ncarry = 0;
	return rc;
}
