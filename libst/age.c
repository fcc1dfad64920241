/*
 * age.c - age v1 files (C2SP age, "age-encryption.org/v1"): the three
 * drivers, encrypt, decrypt and rekey, over agehdr.c (the header),
 * stream.c (the payload) and armor.c (the ASCII armor).  Reading is in
 * constant memory: large reads, the header found and parsed in the first
 * megabyte, then the payload pushed through the STREAM decryptor.
 * Failures are sorted into the classes of enum st_age_fail as they happen.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"

#define INTRO "age-encryption.org/v1\n"
#define INTRO_LEN (sizeof(INTRO) - 1)
#define MAGIC_LEN (sizeof(ST_AGE_MAGIC) - 1)
#define BUFSZ (1 << 20)   /* the read size, and the longest header */

static enum st_age_fail last_fail;

enum st_age_fail st_age_last_fail(void)
{
	return last_fail;
}

int st_age_fail_as(enum st_age_fail f)
{
	last_fail = f;
	return -1;
}

/* ---- reading a file ---- */

struct rd {
	int fd;
	struct st_armor_r *ar;    /* set when the input is armored */
	unsigned char *buf;       /* BUFSZ bytes */
	size_t have;              /* bytes in buf */
	size_t hlen;              /* the header's length, once found */
};

/* Read what comes next (decoded when armored); *got 0 at the end. */
static int rd_fill(struct rd *r, unsigned char *p, size_t cap, size_t *got)
{
	ssize_t k;

	if (r->ar) {
		if (st_armor_r_read(r->ar, p, cap, got) < 0)
			return st_age_fail_as(st_armor_r_ioerr(r->ar) ?
			                      ST_AGE_FAIL_IO :
			                      ST_AGE_FAIL_ARMOR);
		return 0;
	}
	do
		k = read(r->fd, p, cap);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		st_error(ST_EX_NOINPUT, "cannot read input:");
		return st_age_fail_as(ST_AGE_FAIL_IO);
	}
	*got = (size_t)k;
	return 0;
}

/*
 * Start reading fd: a binary file begins "age-encryption.org/" (an empty or
 * shorter one fails as a header), anything else goes to the armor reader.
 */
static int rd_open(struct rd *r, int fd, int armor_ok)
{
	size_t got;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->buf = st_malloc(BUFSZ);
	while (r->have < MAGIC_LEN) {
		if (rd_fill(r, r->buf + r->have, BUFSZ - r->have, &got) < 0)
			return -1;
		if (!got)
			break;
		r->have += got;
	}
	if (!memcmp(r->buf, ST_AGE_MAGIC,
	            r->have < MAGIC_LEN ? r->have : MAGIC_LEN))
		return 0;
	if (!armor_ok)
		return st_age_hdr_err("not a binary age file");
	r->ar = st_armor_r_new(fd, r->buf, r->have);
	r->have = 0;
	return 0;
}

static void rd_close(struct rd *r)
{
	st_armor_r_free(r->ar);
	free(r->buf);
}

/* The header ends with the first line after the intro that starts "---". */
static int find_header(struct rd *r)
{
	size_t line = 0, got;     /* where the line being looked at starts */
	unsigned char *nl;

	for (;;) {
		while ((nl = memchr(r->buf + line, '\n', r->have - line))) {
			if (line && nl - (r->buf + line) >= 3 &&
			    !memcmp(r->buf + line, "---", 3)) {
				r->hlen = (size_t)(nl + 1 - r->buf);
				return 0;
			}
			line = (size_t)(nl + 1 - r->buf);
		}
		if (r->have >= INTRO_LEN && memcmp(r->buf, INTRO, INTRO_LEN))
			break;
		if (r->have == BUFSZ)
			return st_age_hdr_err("header too long");
		if (rd_fill(r, r->buf + r->have, BUFSZ - r->have, &got) < 0)
			return -1;
		if (!got)
			break;
		r->have += got;
	}
	/* the header can't be complete: let the parser say what's wrong */
	if (st_age_hdr_open((const char *)r->buf, r->have, NULL, 0, NULL) < 0 &&
	    last_fail == ST_AGE_FAIL_HEADER)
		return -1;
	return st_age_hdr_err("truncated header");
}

/* Parse, unwrap and authenticate the header: the file key in fk. */
static int open_header(struct rd *r, const struct st_age_id *ids,
                       size_t nids, unsigned char fk[16])
{
	if (find_header(r) < 0)
		return -1;
	return st_age_hdr_open((const char *)r->buf, r->hlen, ids, nids, fk);
}

/* The caller's sink, noting its failures apart from the payload's. */
struct out {
	st_sink_fn sink;
	void *ctx;
	int failed;
};

static int out_sink(void *ctx, const void *p, size_t n)
{
	struct out *o = ctx;

	if (o->sink(o->ctx, p, n) < 0) {
		o->failed = 1;
		return -1;
	}
	return 0;
}

static int payload(struct rd *r, const unsigned char fk[16],
                   st_sink_fn sink, void *ctx)
{
	struct out o = { sink, ctx, 0 };
	struct st_stream_dec *d = st_stream_dec_new(fk, out_sink, &o);
	unsigned char *p = r->buf + r->hlen;
	size_t n = r->have - r->hlen;
	uint64_t total = 0;
	int rc = -1;

	for (;;) {
		total += n;
		if (st_stream_dec_write(d, p, n) < 0) {
			st_age_fail_as(o.failed ? ST_AGE_FAIL_IO
			                        : ST_AGE_FAIL_PAYLOAD);
			goto out;
		}
		p = r->buf;
		if (rd_fill(r, r->buf, BUFSZ, &n) < 0)
			goto out;
		if (!n)
			break;
	}
	if (total < ST_STREAM_NONCE_LEN)
		st_age_hdr_err("missing payload nonce");
	else if (st_stream_dec_finish(d) < 0)
		st_age_fail_as(o.failed ? ST_AGE_FAIL_IO : ST_AGE_FAIL_PAYLOAD);
	else
		rc = 0;
out:
	st_stream_dec_free(d);
	return rc;
}

int st_age_decrypt(int infd, const struct st_age_id *ids, size_t nids,
                   st_sink_fn sink, void *ctx)
{
	unsigned char fk[ST_FILEKEY_LEN];
	struct rd r;
	int rc = -1;

	last_fail = ST_AGE_FAIL_NONE;
	if (rd_open(&r, infd, 1) == 0 && open_header(&r, ids, nids, fk) == 0) {
		rc = payload(&r, fk, sink, ctx);
		OPENSSL_cleanse(fk, sizeof(fk));
	}
	rd_close(&r);
	return rc;
}

int st_age_rekey(int infd, const struct st_age_id *ids, size_t nids,
                 const struct st_age_rcpt *r, size_t nr, int outfd)
{
	unsigned char fk[ST_FILEKEY_LEN], *p;
	struct st_buf b;
	struct rd in;
	size_t n;
	int rc = -1;

	last_fail = ST_AGE_FAIL_NONE;
	st_buf_init(&b, 0);
	if (rd_open(&in, infd, 0) < 0 || open_header(&in, ids, nids, fk) < 0)
		goto out;
	if (st_age_hdr_write(fk, r, nr, &b) < 0)
		goto out;
	if (st_write_all(outfd, b.data, b.len) < 0)
		goto wfail;
	/* the nonce and the payload, byte for byte */
	p = in.buf + in.hlen;
	n = in.have - in.hlen;
	while (n) {
		if (st_write_all(outfd, p, n) < 0)
			goto wfail;
		p = in.buf;
		if (rd_fill(&in, in.buf, BUFSZ, &n) < 0)
			goto out;
	}
	rc = 0;
	goto out;
wfail:
	st_error(ST_EX_CANTCREAT, "cannot write output:");
	st_age_fail_as(ST_AGE_FAIL_IO);
out:
	OPENSSL_cleanse(fk, sizeof(fk));
	st_buf_free(&b);
	rd_close(&in);
	return rc;
}

/* ---- encrypting ---- */

struct st_age_enc {
	struct st_stream_enc *s;
	struct st_armor_w *aw;
};

struct st_age_enc *st_age_enc_new(const struct st_age_rcpt *r, size_t nr,
                                  int armor, st_sink_fn sink, void *ctx)
{
	struct st_age_enc *e = st_calloc(1, sizeof(*e));
	unsigned char fk[ST_FILEKEY_LEN];
	struct st_buf b;

	st_buf_init(&b, 0);
	if (st_random(fk, sizeof(fk)) < 0 ||
	    st_age_hdr_write(fk, r, nr, &b) < 0)
		goto fail;
	if (armor) {
		e->aw = st_armor_w_new(sink, ctx);
		sink = st_armor_w_sink;
		ctx = e->aw;
	}
	if (sink(ctx, b.data, b.len) < 0 ||
	    !(e->s = st_stream_enc_new(fk, sink, ctx)))
		goto fail;
	OPENSSL_cleanse(fk, sizeof(fk));
	st_buf_free(&b);
	return e;
fail:
	OPENSSL_cleanse(fk, sizeof(fk));
	st_buf_free(&b);
	st_age_enc_free(e);
	return NULL;
}

int st_age_enc_write(struct st_age_enc *e, const void *p, size_t n)
{
	return st_stream_enc_write(e->s, p, n);
}

int st_age_enc_finish(struct st_age_enc *e)
{
	int rc = st_stream_enc_finish(e->s);

	e->s = NULL;
	if (rc == 0 && e->aw) {
		rc = st_armor_w_finish(e->aw);
		e->aw = NULL;
	}
	st_age_enc_free(e);
	return rc;
}

void st_age_enc_free(struct st_age_enc *e)
{
	if (!e)
		return;
	st_stream_enc_free(e->s);
	st_armor_w_free(e->aw);
	free(e);
}
