/*
 * stream.c - the two sinks every streamed output ends in, and age's STREAM
 * payload (C2SP age, "Payload"): a 16-byte nonce, then ChaCha20-Poly1305
 * chunks of 64 KiB of plaintext under HKDF-SHA256(file key, nonce,
 * "payload"), each sealed with the nonce counter(11 bytes, big-endian) ||
 * last-flag(1 byte).
 *
 * Speed matters here (whole files go through it), so one EVP_CIPHER_CTX per
 * stream is keyed once and re-initialised with only the nonce per chunk,
 * and whole chunks handed in by the caller are sealed or opened straight
 * from the caller's buffer; only a partial chunk is copied.  Encryption
 * also splits its work with a helper thread when there is a second CPU.
 *
 * Like age's own reader, the decryptor needs no lookahead: a complete
 * 64 KiB + 16 chunk is opened as a middle chunk first and, if that fails,
 * as the final one.  Only one of the two can authenticate, so a full final
 * chunk is recognised when it arrives, and any byte after it is an error.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "st.h"

#define TAG ST_AEAD_TAG_LEN
#define CT_CHUNK (ST_STREAM_CHUNK + TAG)

int st_sink_fd(void *ctx, const void *p, size_t n)
{
	if (st_write_all(*(int *)ctx, p, n) < 0)
		return st_error(ST_EX_CANTCREAT, "cannot write output:");
	return 0;
}

int st_sink_buf(void *ctx, const void *p, size_t n)
{
	st_buf_append(ctx, p, n);
	return 0;
}

/* A ChaCha20-Poly1305 context keyed with the payload key for (key, nonce). */
static EVP_CIPHER_CTX *payload_ctx(const unsigned char key[16],
                                   const unsigned char nonce[16], int enc)
{
	unsigned char k[32];
	EVP_CIPHER_CTX *c = NULL;

	if (st_hkdf_sha256(key, ST_FILEKEY_LEN, nonce, ST_STREAM_NONCE_LEN,
	                   "payload", 7, k, sizeof(k)) < 0)
		return NULL;
	if (!(c = EVP_CIPHER_CTX_new()) ||
	    EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, k, NULL,
	                      enc) != 1) {
		EVP_CIPHER_CTX_free(c);
		c = NULL;
		st_error(ST_EX_DATAERR, "cannot set up the payload cipher");
	}
	OPENSSL_cleanse(k, sizeof(k));
	return c;
}

/* Step the 11-byte big-endian chunk counter; 0 when it wrapped. */
static int next_nonce(unsigned char nonce[12])
{
	for (int i = 10; i >= 0; i--)
		if (++nonce[i])
			return 1;
	return 0;
}

static int nonce_is_zero(const unsigned char nonce[12])
{
	static const unsigned char zero[11];

	return memcmp(nonce, zero, 11) == 0;
}

/* ---- encryption ---- */

/*
 * Chunks are sealed in rounds of up to BATCH, straight from the caller's
 * buffer where it holds whole chunks.  On a machine with more than one CPU,
 * a round of two or more chunks is split with a helper thread, started when
 * the first such round comes (small files never start it), each side with
 * its own copy of the keyed context.  The round's ciphertext goes to the
 * sink in one call.
 */
#define BATCH 16

struct round {
	const unsigned char *src[BATCH];
	size_t k;                /* chunks in the round */
	size_t lastlen;          /* length of chunk k-1 (the others are full) */
	int last;                /* chunk k-1 is the final one */
	uint64_t counter;        /* of chunk 0 */
	unsigned char *ct;       /* chunk i goes to ct + i * CT_CHUNK */
};

struct helper {
	pthread_t t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;               /* H_IDLE, H_WORK, H_DONE, H_QUIT */
	EVP_CIPHER_CTX *c;
	const struct round *r;
	size_t from, to;
	int rc;
};

enum { H_IDLE, H_WORK, H_DONE, H_QUIT };

struct st_stream_enc {
	EVP_CIPHER_CTX *c;
	struct helper *h;
	int single;              /* one CPU, or the helper failed to start */
	uint64_t counter;
	st_sink_fn sink;
	void *ctx;
	size_t n;                /* plaintext waiting in pt */
	size_t dirty;            /* most plaintext ever in pt */
	struct round r;
	unsigned char pt[ST_STREAM_CHUNK];
	unsigned char ct[BATCH * CT_CHUNK]; /* ciphertext: no secret */
};

/* Seal chunks [from, to) of the round with c; 0 or -1 (no st_error). */
static int seal_range(EVP_CIPHER_CTX *c, const struct round *r, size_t from,
                      size_t to)
{
	unsigned char nonce[12] = { 0 }, *out;
	uint64_t ctr;
	size_t i, n;
	int len;

	for (i = from; i < to; i++) {
		ctr = r->counter + i;
		for (int b = 0; b < 8; b++)
			nonce[10 - b] = (unsigned char)(ctr >> (8 * b));
		nonce[11] = (unsigned char)(r->last && i == r->k - 1);
		n = i == r->k - 1 ? r->lastlen : ST_STREAM_CHUNK;
		out = r->ct + i * CT_CHUNK;
		if (EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, 1) != 1 ||
		    (n && EVP_CipherUpdate(c, out, &len, r->src[i],
		                           (int)n) != 1) ||
		    EVP_CipherFinal_ex(c, out + n, &len) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG,
		                        out + n) != 1)
			return -1;
	}
	return 0;
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->state == H_IDLE || h->state == H_DONE)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->state == H_QUIT)
			break;
		pthread_mutex_unlock(&h->mu);
		h->rc = seal_range(h->c, h->r, h->from, h->to);
		pthread_mutex_lock(&h->mu);
		h->state = H_DONE;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void helper_stop(struct helper *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->state = H_QUIT;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->t, NULL);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	EVP_CIPHER_CTX_free(h->c);
	free(h);
}

/* Start the helper; on any failure carry on with one thread. */
static void helper_start(struct st_stream_enc *e)
{
	struct helper *h;

	e->single = 1;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	h = st_calloc(1, sizeof(*h));
	if (!(h->c = EVP_CIPHER_CTX_new()) ||
	    EVP_CIPHER_CTX_copy(h->c, e->c) != 1) {
		EVP_CIPHER_CTX_free(h->c);
		free(h);
		return;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (pthread_create(&h->t, NULL, helper_main, h) != 0) {
		pthread_mutex_destroy(&h->mu);
		pthread_cond_destroy(&h->cv);
		EVP_CIPHER_CTX_free(h->c);
		free(h);
		return;
	}
	e->h = h;
	e->single = 0;
}

/* Seal the round in e->r (the helper taking the first half) and emit it. */
static int seal_round(struct st_stream_enc *e)
{
	struct round *r = &e->r;
	struct helper *h;
	size_t half = 0;
	int rc;

	if (e->counter > UINT64_MAX - BATCH)
		return st_error(ST_EX_DATAERR, "payload too long");
	r->counter = e->counter;
	r->ct = e->ct;
	if (r->k > 1 && !e->h && !e->single)
		helper_start(e);
	if ((h = e->h) && r->k > 1) {
		half = r->k / 2;
		pthread_mutex_lock(&h->mu);
		h->r = r;
		h->from = 0;
		h->to = half;
		h->state = H_WORK;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
	}
	rc = seal_range(e->c, r, half, r->k);
	if (half) {
		pthread_mutex_lock(&h->mu);
		while (h->state != H_DONE)
			pthread_cond_wait(&h->cv, &h->mu);
		h->state = H_IDLE;
		pthread_mutex_unlock(&h->mu);
		rc |= h->rc;
	}
	if (rc)
		return st_error(ST_EX_DATAERR, "payload encryption failed");
	e->counter += r->k;
	return e->sink(e->ctx, e->ct, (r->k - 1) * CT_CHUNK + r->lastlen + TAG);
}

struct st_stream_enc *st_stream_enc_new(const unsigned char key[16],
                                        st_sink_fn sink, void *ctx)
{
	struct st_stream_enc *e = st_calloc(1, sizeof(*e));
	unsigned char nonce[ST_STREAM_NONCE_LEN];

	e->sink = sink;
	e->ctx = ctx;
	if (st_random(nonce, sizeof(nonce)) < 0 ||
	    !(e->c = payload_ctx(key, nonce, 1)) ||
	    sink(ctx, nonce, sizeof(nonce)) < 0) {
		st_stream_enc_free(e);
		return NULL;
	}
	return e;
}

int st_stream_enc_write(struct st_stream_enc *e, const void *p, size_t n)
{
	const unsigned char *s = p;
	struct round *r = &e->r;
	size_t take;

	while (n) {
		if (e->n && e->n < ST_STREAM_CHUNK) {
			take = ST_STREAM_CHUNK - e->n;
			if (take > n)
				take = n;
			memcpy(e->pt + e->n, s, take);
			e->n += take;
			if (e->n > e->dirty)
				e->dirty = e->n;
			s += take;
			n -= take;
			continue;
		}
		/* a full chunk goes out once more data shows it isn't last */
		r->k = 0;
		if (e->n == ST_STREAM_CHUNK)
			r->src[r->k++] = e->pt;
		for (; r->k < BATCH && n > ST_STREAM_CHUNK; r->k++) {
			r->src[r->k] = s;
			s += ST_STREAM_CHUNK;
			n -= ST_STREAM_CHUNK;
		}
		if (!r->k) {
			memcpy(e->pt, s, n);
			e->n = n;
			if (n > e->dirty)
				e->dirty = n;
			break;
		}
		r->lastlen = ST_STREAM_CHUNK;
		r->last = 0;
		if (seal_round(e) < 0)
			return -1;
		if (r->src[0] == e->pt)
			e->n = 0;
	}
	return 0;
}

int st_stream_enc_finish(struct st_stream_enc *e)
{
	int rc;

	e->r.src[0] = e->pt;
	e->r.k = 1;
	e->r.lastlen = e->n;
	e->r.last = 1;
	rc = seal_round(e);
	st_stream_enc_free(e);
	return rc;
}

void st_stream_enc_free(struct st_stream_enc *e)
{
	if (!e)
		return;
	helper_stop(e->h);
	EVP_CIPHER_CTX_free(e->c);
	/* the plaintext buffer as far as it was used; the 1 MiB of
	 * ciphertext needs no wiping, and touching it costs a small file
	 * more than its encryption */
	OPENSSL_cleanse(e->pt, e->dirty);
	OPENSSL_cleanse(e, offsetof(struct st_stream_enc, pt));
	free(e);
}

/* ---- decryption ---- */

enum { D_NONCE, D_CHUNKS, D_DONE, D_FAILED };

struct st_stream_dec {
	EVP_CIPHER_CTX *c;
	int state;
	unsigned char key[ST_FILEKEY_LEN];   /* until the nonce is complete */
	unsigned char snonce[ST_STREAM_NONCE_LEN];
	unsigned char nonce[12];
	uint64_t chunks;                     /* for messages */
	st_sink_fn sink;
	void *ctx;
	size_t n;                            /* bytes in ct (or snonce) */
	size_t dirty;                        /* most bytes ever in ct or pt */
	unsigned char ct[CT_CHUNK];
	unsigned char pt[ST_STREAM_CHUNK];
};

struct st_stream_dec *st_stream_dec_new(const unsigned char key[16],
                                        st_sink_fn sink, void *ctx)
{
	struct st_stream_dec *d = st_calloc(1, sizeof(*d));

	memcpy(d->key, key, ST_FILEKEY_LEN);
	d->sink = sink;
	d->ctx = ctx;
	d->state = D_NONCE;
	return d;
}

static int dec_fail(struct st_stream_dec *d, const char *what)
{
	d->state = D_FAILED;
	return st_error(ST_EX_DATAERR, "%s", what);
}

/* Open one sealed chunk of n bytes (tag included) into d->pt. */
static int open1(struct st_stream_dec *d, const unsigned char *in, size_t n,
                 int last)
{
	int len;

	if (n > d->dirty)
		d->dirty = n;
	d->nonce[11] = (unsigned char)last;
	if (EVP_CipherInit_ex(d->c, NULL, NULL, NULL, d->nonce, 0) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->c, EVP_CTRL_AEAD_SET_TAG, TAG,
	                        (void *)(in + (n - TAG))) != 1 ||
	    (n > TAG &&
	     EVP_CipherUpdate(d->c, d->pt, &len, in, (int)(n - TAG)) != 1) ||
	    EVP_CipherFinal_ex(d->c, d->pt + (n - TAG), &len) != 1)
		return -1;
	return 0;
}

/*
 * Open and release one chunk.  full says it is CT_CHUNK bytes long, so it
 * may be a middle chunk or the final one; a shorter chunk can only be the
 * final one, and may be empty only when it is the first.
 */
static int chunk(struct st_stream_dec *d, const unsigned char *in, size_t n,
                 int full)
{
	char msg[96];
	int last = !full;

	if (n < TAG)
		return dec_fail(d, "truncated payload chunk");
	if (!full && n == TAG && !nonce_is_zero(d->nonce))
		return dec_fail(d, "payload ends with an empty chunk");
	if (open1(d, in, n, last) < 0) {
		if (last || open1(d, in, n, 1) < 0) {
			OPENSSL_cleanse(d->pt, n - TAG);
			snprintf(msg, sizeof(msg), "payload chunk %llu failed "
			         "to authenticate",
			         (unsigned long long)d->chunks + 1);
			return dec_fail(d, msg);
		}
		last = 1;
	}
	d->chunks++;
	if (!next_nonce(d->nonce))
		return dec_fail(d, "payload too long");
	if (last)
		d->state = D_DONE;
	if (d->sink(d->ctx, d->pt, n - TAG) < 0) {
		d->state = D_FAILED;
		return -1;
	}
	return 0;
}

static int take_nonce(struct st_stream_dec *d, const unsigned char **s,
                      size_t *n)
{
	size_t take = ST_STREAM_NONCE_LEN - d->n;

	if (take > *n)
		take = *n;
	memcpy(d->snonce + d->n, *s, take);
	d->n += take;
	*s += take;
	*n -= take;
	if (d->n < ST_STREAM_NONCE_LEN)
		return 0;
	d->c = payload_ctx(d->key, d->snonce, 0);
	OPENSSL_cleanse(d->key, sizeof(d->key));
	if (!d->c) {
		d->state = D_FAILED;
		return -1;
	}
	d->n = 0;
	d->state = D_CHUNKS;
	return 0;
}

int st_stream_dec_write(struct st_stream_dec *d, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t take;

	while (n) {
		switch (d->state) {
		case D_FAILED:
			return st_error(ST_EX_DATAERR, "payload failed");
		case D_DONE:
			return dec_fail(d, "trailing data after the end of "
			                "the payload");
		case D_NONCE:
			if (take_nonce(d, &s, &n) < 0)
				return -1;
			continue;
		}
		if (d->n == 0 && n >= CT_CHUNK) {
			if (chunk(d, s, CT_CHUNK, 1) < 0)
				return -1;
			s += CT_CHUNK;
			n -= CT_CHUNK;
			continue;
		}
		take = CT_CHUNK - d->n < n ? CT_CHUNK - d->n : n;
		memcpy(d->ct + d->n, s, take);
		d->n += take;
		if (d->n > d->dirty)
			d->dirty = d->n;
		s += take;
		n -= take;
		if (d->n == CT_CHUNK) {
			d->n = 0;
			if (chunk(d, d->ct, CT_CHUNK, 1) < 0)
				return -1;
		}
	}
	return 0;
}

int st_stream_dec_finish(struct st_stream_dec *d)
{
	switch (d->state) {
	case D_FAILED:
		return st_error(ST_EX_DATAERR, "payload failed");
	case D_DONE:
		return 0;
	case D_NONCE:
		return dec_fail(d, "truncated payload nonce");
	}
	if (d->n == 0)
		return dec_fail(d, d->chunks ? "payload is truncated: no "
		                "final chunk" : "payload has no chunks");
	if (chunk(d, d->ct, d->n, 0) < 0)
		return -1;
	d->n = 0;
	return 0;
}

void st_stream_dec_free(struct st_stream_dec *d)
{
	if (!d)
		return;
	EVP_CIPHER_CTX_free(d->c);
	/* a small file touched a few bytes of the buffers: wipe those only
	 * (ct holds only ciphertext); dirty counts chunks with their tags,
	 * so it may run 16 bytes past pt */
	OPENSSL_cleanse(d->pt, d->dirty < sizeof(d->pt) ? d->dirty
	                                                : sizeof(d->pt));
	OPENSSL_cleanse(d, offsetof(struct st_stream_dec, ct));
	free(d);
}
