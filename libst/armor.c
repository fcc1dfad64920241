/*
 * armor.c - age's ASCII armor: "-----BEGIN AGE ENCRYPTED FILE-----", the
 * file in padded standard base64 at 64 columns (the last line shorter, or
 * full), "-----END AGE ENCRYPTED FILE-----".
 *
 * The reader follows the reference (age v1.3) exactly: lines end in LF or
 * CRLF, the last one may lack its end; whitespace-only lines (at most 1 KiB)
 * may precede the begin line and whitespace (under 1 KiB) may follow the
 * end line; nothing else is tolerated - no headers, no empty or long lines,
 * no whitespace inside lines, canonical base64 per line, and only the last
 * line may be short.  It works a line at a time in constant memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"

#define COLS 64
#define BYTES_PER_LINE 48
#define MAX_WS 1024
#define MAX_LINE 4096
#define RAW_CAP 65536
#define OUT_CAP (1024 * (COLS + 1))

/* ---- writer ---- */

struct st_armor_w {
	st_sink_fn sink;
	void *ctx;
	size_t nrem, nout;
	unsigned char rem[BYTES_PER_LINE];
	char out[OUT_CAP + 128];
};

static int wflush(struct st_armor_w *w)
{
	int rc = w->nout ? w->sink(w->ctx, w->out, w->nout) : 0;

	w->nout = 0;
	return rc;
}

static int wline(struct st_armor_w *w, const unsigned char *p, size_t n)
{
	if (w->nout + COLS + 1 > OUT_CAP && wflush(w) < 0)
		return -1;
	st_b64_encode(p, n, w->out + w->nout, ST_B64_STD);
	w->nout += st_b64_enclen(n, ST_B64_STD);
	w->out[w->nout++] = '\n';
	return 0;
}

struct st_armor_w *st_armor_w_new(st_sink_fn sink, void *ctx)
{
	struct st_armor_w *w = st_calloc(1, sizeof(*w));

	w->sink = sink;
	w->ctx = ctx;
	memcpy(w->out, ST_ARMOR_BEGIN "\n", sizeof(ST_ARMOR_BEGIN));
	w->nout = sizeof(ST_ARMOR_BEGIN);
	return w;
}

int st_armor_w_sink(void *ctx, const void *p, size_t n)
{
	struct st_armor_w *w = ctx;
	const unsigned char *s = p;
	size_t take;

	if (w->nrem) {
		take = BYTES_PER_LINE - w->nrem;
		if (take > n)
			take = n;
		memcpy(w->rem + w->nrem, s, take);
		w->nrem += take;
		s += take;
		n -= take;
		if (w->nrem < BYTES_PER_LINE)
			return 0;
		if (wline(w, w->rem, BYTES_PER_LINE) < 0)
			return -1;
		w->nrem = 0;
	}
	for (; n >= BYTES_PER_LINE; s += BYTES_PER_LINE, n -= BYTES_PER_LINE)
		if (wline(w, s, BYTES_PER_LINE) < 0)
			return -1;
	memcpy(w->rem, s, n);
	w->nrem = n;
	return 0;
}

int st_armor_w_finish(struct st_armor_w *w)
{
	int rc = -1;

	if ((w->nrem && wline(w, w->rem, w->nrem) < 0) ||
	    (w->nout + sizeof(ST_ARMOR_END) > OUT_CAP && wflush(w) < 0))
		goto out;
	memcpy(w->out + w->nout, ST_ARMOR_END "\n", sizeof(ST_ARMOR_END));
	w->nout += sizeof(ST_ARMOR_END);
	rc = wflush(w);
out:
	st_armor_w_free(w);
	return rc;
}

void st_armor_w_free(struct st_armor_w *w)
{
	if (!w)
		return;
	OPENSSL_cleanse(w, sizeof(*w));
	free(w);
}

/* ---- reader ---- */

/* Standard base64 digit values, -1 for anything else ('=' included). */
static const signed char b64val[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/*
 * The common case fast: a full line of 64 digits is 48 bytes, with no
 * padding and no spare bits, so it is canonical when every character is a
 * digit.  -1 sends anything else to the strict general decoder.
 */
static int full_line(const char *l, unsigned char *out)
{
	const unsigned char *s = (const unsigned char *)l;
	int bad = 0;

	for (int i = 0; i < COLS; i += 4, out += 3) {
		int a = b64val[s[i]], b = b64val[s[i + 1]],
		    c = b64val[s[i + 2]], d = b64val[s[i + 3]];
		unsigned v = (unsigned)a << 18 | (unsigned)b << 12 |
		             (unsigned)c << 6 | (unsigned)d;

		bad |= a | b | c | d;
		out[0] = (unsigned char)(v >> 16);
		out[1] = (unsigned char)(v >> 8);
		out[2] = (unsigned char)v;
	}
	return bad < 0 ? -1 : 0;
}

enum { R_BEGIN, R_BODY, R_DONE, R_FAILED };

struct st_armor_r {
	int fd, eof, state, ioerr;
	unsigned char *raw;
	size_t pos, len, cap;
	size_t lpos, llen;                /* decoded bytes not yet given */
	unsigned char line[BYTES_PER_LINE + 3];
	char err[128];
};

struct st_armor_r *st_armor_r_new(int fd, const void *pre, size_t npre)
{
	struct st_armor_r *a = st_calloc(1, sizeof(*a));

	a->fd = fd;
	a->cap = npre > RAW_CAP ? npre : RAW_CAP;
	a->raw = st_malloc(a->cap);
	memcpy(a->raw, pre, npre);
	a->len = npre;
	a->state = R_BEGIN;
	return a;
}

void st_armor_r_free(struct st_armor_r *a)
{
	if (!a)
		return;
	st_free_secret(a->raw, a->cap);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

int st_armor_r_ioerr(const struct st_armor_r *a)
{
	return a->ioerr;
}

/* Record a failure to report; always -1. */
static int rfail(struct st_armor_r *a, const char *why)
{
	snprintf(a->err, sizeof(a->err), "invalid armor: %s", why);
	a->state = R_FAILED;
	return -1;
}

static int fill(struct st_armor_r *a)
{
	ssize_t k;

	memmove(a->raw, a->raw + a->pos, a->len - a->pos);
	a->len -= a->pos;
	a->pos = 0;
	do
		k = read(a->fd, a->raw + a->len, a->cap - a->len);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		snprintf(a->err, sizeof(a->err), "cannot read input: %s",
		         strerror(errno));
		a->ioerr = 1;
		a->state = R_FAILED;
		return -1;
	}
	if (k == 0)
		a->eof = 1;
	a->len += (size_t)k;
	return 0;
}

/*
 * The next line without its LF and one CR before it: 1 with *l and *n set,
 * 0 at the end of the input, -1 on failure.
 */
static int get_line(struct st_armor_r *a, const char **l, size_t *n)
{
	unsigned char *s, *nl;

	for (;;) {
		s = a->raw + a->pos;
		nl = memchr(s, '\n', a->len - a->pos);
		if (nl || a->eof)
			break;
		if (a->len - a->pos > MAX_LINE)
			return rfail(a, "line too long");
		if (fill(a) < 0)
			return -1;
	}
	if (!nl && a->pos == a->len)
		return 0;
	*n = nl ? (size_t)(nl - s) : a->len - a->pos;
	a->pos += *n + (nl != NULL);
	if (*n && s[*n - 1] == '\r')
		(*n)--;
	*l = (const char *)s;
	return 1;
}

static int is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

static int is_line(const char *l, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(l, want, n) == 0;
}

/* After the end line: only a little whitespace may follow. */
static int drain(struct st_armor_r *a)
{
	size_t seen = 0;

	for (;;) {
		for (; a->pos < a->len; a->pos++, seen++) {
			if (!is_ws(a->raw[a->pos]))
				return rfail(a, "data after the end line");
			if (seen + 1 >= MAX_WS)
				return rfail(a, "too much whitespace after "
				             "the end line");
		}
		if (a->eof)
			break;
		if (fill(a) < 0)
			return -1;
	}
	a->state = R_DONE;
	return 0;
}

static int begin(struct st_armor_r *a)
{
	size_t ws = 0, n, i;
	const char *l;
	int rc;

	for (;;) {
		if ((rc = get_line(a, &l, &n)) <= 0)
			return rc < 0 ? -1 : rfail(a, "no begin line");
		for (i = 0; i < n && is_ws((unsigned char)l[i]); i++)
			;
		if (i < n)
			break;
		if ((ws += n + 1) > MAX_WS)
			return rfail(a, "too much whitespace before the "
			             "begin line");
	}
	if (!is_line(l, n, ST_ARMOR_BEGIN)) {
		snprintf(a->err, sizeof(a->err), "not an age file (no age "
		         "header and no armor begin line)");
		a->state = R_FAILED;
		return -1;
	}
	a->state = R_BODY;
	return 0;
}

/* Decode the next line into a->line, or see the end. */
static int body_line(struct st_armor_r *a)
{
	const char *l;
	size_t n, k;
	int rc;

	if ((rc = get_line(a, &l, &n)) <= 0)
		return rc < 0 ? -1 : rfail(a, "no end line");
	if (is_line(l, n, ST_ARMOR_END))
		return drain(a);
	if (n == 0)
		return rfail(a, "empty line");
	if (n > COLS)
		return rfail(a, "line longer than 64 columns");
	if (n == COLS && full_line(l, a->line) == 0)
		k = BYTES_PER_LINE;
	else if (st_b64_decode(l, n, a->line, &k, ST_B64_STD) < 0)
		return rfail(a, "bad base64 (not canonical, or a stray "
		             "character)");
	if (k == BYTES_PER_LINE) {
		a->lpos = 0;
		a->llen = k;
		return 0;
	}
	/* a short line is the last: the end line must follow */
	if ((rc = get_line(a, &l, &n)) < 0)
		return -1;
	if (rc == 0 || !is_line(l, n, ST_ARMOR_END))
		return rfail(a, "short line before the end");
	a->lpos = 0;
	a->llen = k;
	/* like the reference, the bytes go out before a drain failure */
	drain(a);
	return 0;
}

int st_armor_r_read(struct st_armor_r *a, unsigned char *out, size_t cap,
                    size_t *got)
{
	size_t take;

	*got = 0;
	while (*got < cap) {
		if (a->lpos < a->llen) {
			take = a->llen - a->lpos < cap - *got ?
			       a->llen - a->lpos : cap - *got;
			memcpy(out + *got, a->line + a->lpos, take);
			a->lpos += take;
			*got += take;
			continue;
		}
		if (a->state == R_DONE)
			break;
		if (a->state == R_FAILED) {
			if (*got)
				break;
			return st_error(a->ioerr ? ST_EX_NOINPUT
			                         : ST_EX_DATAERR, "%s", a->err);
		}
		if (a->state == R_BEGIN)
			begin(a);
		else
			body_line(a);
	}
	return 0;
}
