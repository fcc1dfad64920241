/*
 * agehdr.c - the age v1 header (C2SP age, "Header"): writing it with one
 * X25519 or scrypt stanza per recipient, and reading it - parse, unwrap the
 * file key, check the MAC.  Unknown stanzas are checked for syntax and
 * skipped; known ones are checked in full before any key is tried.
 *
 * Parsing is strict, as the spec and the CCTV vectors demand: there is one
 * spelling of every header, so the MAC is computed over the bytes as read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "internal.h"

#define INTRO "age-encryption.org/v1\n"
#define INTRO_LEN (sizeof(INTRO) - 1)
#define MAGIC_LEN (sizeof(ST_AGE_MAGIC) - 1)
#define X25519_LABEL "age-encryption.org/v1/X25519"
#define SCRYPT_LABEL "age-encryption.org/v1/scrypt"
#define SCRYPT_LOGN 18
#define SCRYPT_MAX_LOGN 22
#define WRAPPED (ST_FILEKEY_LEN + ST_AEAD_TAG_LEN)
#define COLS 64

static const unsigned char zero_nonce[ST_AEAD_NONCE_LEN];

int st_age_hdr_err(const char *fmt, ...)
{
	char m[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	st_error(ST_EX_DATAERR, "invalid age header: %s", m);
	return st_age_fail_as(ST_AGE_FAIL_HEADER);
}

/* ---- key derivation and wrapping ---- */

static int scrypt_key(const char *pass, const unsigned char salt[16],
                      int logn, unsigned char k[32])
{
	unsigned char s[sizeof(SCRYPT_LABEL) - 1 + 16];
	uint64_t nn = (uint64_t)1 << logn, maxmem;
	uint32_t r = 8, p = 1;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM ps[7];
	int rc = -1;

	/* OpenSSL's check: 128 r (N + 2) for V plus 128 r p for B */
	maxmem = 128 * (uint64_t)r * (nn + 2) + 128 * (uint64_t)r * p + 4096;
	memcpy(s, SCRYPT_LABEL, sizeof(SCRYPT_LABEL) - 1);
	memcpy(s + sizeof(SCRYPT_LABEL) - 1, salt, 16);
	ps[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	                                          (void *)pass, strlen(pass));
	ps[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, s,
	                                          sizeof(s));
	ps[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &nn);
	ps[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	ps[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	ps[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM,
	                                    &maxmem);
	ps[6] = OSSL_PARAM_construct_end();
	if (c && EVP_KDF_derive(c, k, 32, ps) == 1)
		rc = 0;
	else
		st_error(ST_EX_DATAERR, "scrypt failed (out of memory?)");
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
	return rc;
}

/* The X25519 wrapping key for share (ephemeral) and pub (recipient). */
static int x25519_key(const unsigned char shared[32],
                      const unsigned char share[32],
                      const unsigned char pub[32], unsigned char k[32])
{
	unsigned char salt[64];

	memcpy(salt, share, 32);
	memcpy(salt + 32, pub, 32);
	return st_hkdf_sha256(shared, 32, salt, 64, X25519_LABEL,
	                      sizeof(X25519_LABEL) - 1, k, 32);
}

static int header_mac(const unsigned char fk[16], const void *h, size_t n,
                      unsigned char mac[32])
{
	unsigned char k[32];
	int rc;

	rc = st_hkdf_sha256(fk, ST_FILEKEY_LEN, NULL, 0, "header", 6, k, 32);
	if (rc == 0)
		rc = st_hmac_sha256(k, 32, h, n, mac);
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

/* ---- writing a header ---- */

/* A stanza body: 64-column lines, the last one shorter (maybe empty). */
static void put_body(struct st_buf *b, const unsigned char *p, size_t n)
{
	char line[COLS + 1];
	size_t k;

	do {
		k = n < 48 ? n : 48;
		st_b64_encode(p, k, line, ST_B64_STD_RAW);
		st_buf_appendf(b, "%s\n", line);
		p += k;
		n -= k;
	} while (k == 48);
}

static int wrap(struct st_buf *b, const unsigned char fk[16],
                const struct st_age_rcpt *r)
{
	unsigned char eph[32], share[32], shared[32], k[32], body[WRAPPED];
	char arg[48];
	int rc = -1, logn = r->logn ? r->logn : SCRYPT_LOGN;

	if (r->type == ST_AGE_X25519) {
		if (st_x25519_keygen(eph, share) < 0)
			goto out;
		if (st_x25519(eph, r->pub, shared) < 0) {
			st_error(ST_EX_USAGE, "invalid age recipient: "
			         "low-order X25519 key");
			goto out;
		}
		if (x25519_key(shared, share, r->pub, k) < 0)
			goto out;
		st_b64_encode(share, 32, arg, ST_B64_STD_RAW);
		st_buf_appendf(b, "-> X25519 %s\n", arg);
	} else if (r->type == ST_AGE_SCRYPT) {
		if (!r->passphrase || logn < 1 || logn > 30) {
			st_error(ST_EX_USAGE, "bad passphrase recipient");
			goto out;
		}
		if (st_random(share, 16) < 0 ||
		    scrypt_key(r->passphrase, share, logn, k) < 0)
			goto out;
		st_b64_encode(share, 16, arg, ST_B64_STD_RAW);
		st_buf_appendf(b, "-> scrypt %s %d\n", arg, logn);
	} else {
		st_error(ST_EX_USAGE, "unknown age recipient type");
		goto out;
	}
	if (st_aead_seal(k, zero_nonce, NULL, 0, fk, ST_FILEKEY_LEN, body) < 0)
		goto out;
	put_body(b, body, sizeof(body));
	rc = 0;
out:
	OPENSSL_cleanse(eph, sizeof(eph));
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int st_age_hdr_write(const unsigned char fk[16], const struct st_age_rcpt *r,
                     size_t nr, struct st_buf *b)
{
	unsigned char mac[32];
	char m[48];

	if (!nr)
		return st_error(ST_EX_USAGE, "no recipients");
	for (size_t i = 0; i < nr; i++)
		if (r[i].type == ST_AGE_SCRYPT && nr > 1)
			return st_error(ST_EX_USAGE, "a passphrase cannot be "
			                "combined with other recipients");
	st_buf_append(b, INTRO, INTRO_LEN);
	for (size_t i = 0; i < nr; i++)
		if (wrap(b, fk, &r[i]) < 0)
			return -1;
	st_buf_append(b, "---", 3);
	if (header_mac(fk, b->data, b->len, mac) < 0)
		return -1;
	st_b64_encode(mac, 32, m, ST_B64_STD_RAW);
	st_buf_appendf(b, " %s\n", m);
	return 0;
}

/* ---- parsing a header ---- */

struct stanza {
	int kind;                 /* ST_AGE_X25519, ST_AGE_SCRYPT or 0 */
	unsigned char arg[32];    /* the X25519 share or the scrypt salt */
	int logn;
	unsigned char *body;
	size_t blen;
};

struct hdr {
	struct stanza *s;
	size_t n;
	size_t maclen;            /* bytes the MAC covers: up to "---" */
	unsigned char mac[32];
};

static void hdr_free(struct hdr *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->s[i].body);
	free(h->s);
	memset(h, 0, sizeof(*h));
}

/* Strict unpadded base64 of exactly want bytes. */
static int b64_exact(const char *s, size_t n, unsigned char *out,
                     size_t want)
{
	unsigned char tmp[64];
	size_t got;

	if (n > 44 || st_b64_decode(s, n, tmp, &got, ST_B64_STD_RAW) < 0 ||
	    got != want)
		return -1;
	memcpy(out, tmp, want);
	return 0;
}

/* Check a stanza of a type we know; unknown ones pass as they are. */
static int check_stanza(struct stanza *s, const char **a, const size_t *al,
                        size_t na)
{
	if (al[0] == 6 && !memcmp(a[0], "X25519", 6)) {
		s->kind = ST_AGE_X25519;
		if (na != 2 || b64_exact(a[1], al[1], s->arg, 32) < 0)
			return st_age_hdr_err("malformed X25519 stanza");
	} else if (al[0] == 6 && !memcmp(a[0], "scrypt", 6)) {
		s->kind = ST_AGE_SCRYPT;
		if (na != 3 || b64_exact(a[1], al[1], s->arg, 16) < 0)
			return st_age_hdr_err("malformed scrypt stanza");
		/* decimal without leading zeros, 1..63 */
		if (al[2] > 2 || a[2][0] < '1' || a[2][0] > '9' ||
		    (al[2] == 2 && (a[2][1] < '0' || a[2][1] > '9')))
			return st_age_hdr_err("malformed scrypt work factor");
		s->logn = al[2] == 2 ? (a[2][0] - '0') * 10 + a[2][1] - '0'
		                     : a[2][0] - '0';
		if (s->logn > 63)
			return st_age_hdr_err("malformed scrypt work factor");
	} else
		return 0;
	if (s->blen != WRAPPED)
		return st_age_hdr_err("wrapped file key has the wrong length");
	return 0;
}

/* Parse the stanza whose "->" line is l (n bytes); *p moves past it. */
static int parse_stanza(struct stanza *s, const char *l, size_t n,
                        const char **p, const char *end)
{
	const char *a[3], *q, *e;
	size_t al[3], na = 0, len, k;
	unsigned char dec[52];
	struct st_buf body;

	if (n < 3 || l[2] != ' ')
		return st_age_hdr_err("malformed stanza line");
	for (q = l + 3, e = l + n;; q++) {
		const char *start = q;

		for (; q < e && *q != ' '; q++)
			if (*q < 33 || *q > 126)
				return st_age_hdr_err("invalid character in "
				                      "a stanza");
		if (q == start)
			return st_age_hdr_err("empty argument in a stanza");
		if (na < 3) {
			a[na] = start;
			al[na] = (size_t)(q - start);
		}
		na++;
		if (q == e)
			break;
	}
	st_buf_init(&body, 0);
	*p = l + n + 1;
	do {
		if (!(e = memchr(*p, '\n', (size_t)(end - *p)))) {
			st_buf_free(&body);
			return st_age_hdr_err("truncated stanza");
		}
		len = (size_t)(e - *p);
		if (len > COLS ||
		    st_b64_decode(*p, len, dec, &k, ST_B64_STD_RAW) < 0) {
			st_buf_free(&body);
			return st_age_hdr_err("%s", len && **p == '-' ?
			                      "a stanza without a short line" :
			                      "malformed stanza body");
		}
		st_buf_append(&body, dec, k);
		*p = e + 1;
	} while (len == COLS);
	s->body = body.data;
	s->blen = body.len;
	return check_stanza(s, a, al, na);
}

/* Parse the n header bytes at buf, which end with the MAC line. */
static int parse_header(const char *buf, size_t n, struct hdr *h)
{
	const char *p = buf, *end = buf + n, *e;
	unsigned char mac[36];
	size_t len, k;

	memset(h, 0, sizeof(*h));
	if (n > INTRO_LEN && !memcmp(buf, "age-encryption.org/v1\r\n", 23))
		return st_age_hdr_err("lines end in CRLF (text mode damage?)");
	if (n < INTRO_LEN || memcmp(buf, INTRO, INTRO_LEN))
		return st_age_hdr_err(n >= MAGIC_LEN &&
		                      !memcmp(buf, ST_AGE_MAGIC, MAGIC_LEN) ?
		                      "unsupported version" :
		                      "not an age file");
	for (p += INTRO_LEN;; p = e + 1) {
		if (!(e = memchr(p, '\n', (size_t)(end - p))))
			return st_age_hdr_err("truncated header");
		len = (size_t)(e - p);
		if (len >= 3 && !memcmp(p, "---", 3))
			break;
		if (len < 2 || memcmp(p, "->", 2))
			return st_age_hdr_err("malformed line");
		h->s = st_realloc(h->s, (h->n + 1) * sizeof(*h->s));
		memset(&h->s[h->n], 0, sizeof(*h->s));
		h->n++;
		if (parse_stanza(&h->s[h->n - 1], p, len, &p, end) < 0)
			return -1;
		e = p - 1;
	}
	if (len != 47 || p[3] != ' ' ||
	    st_b64_decode(p + 4, 43, mac, &k, ST_B64_STD_RAW) < 0)
		return st_age_hdr_err("malformed mac line");
	memcpy(h->mac, mac, 32);
	if (!h->n)
		return st_age_hdr_err("no recipients");
	h->maclen = (size_t)(p - buf) + 3;
	return 0;
}

/* ---- unwrapping the file key ---- */

/* 1 when the stanza gives the file key, 0 when it is not ours, -1 fatal. */
static int try_x25519(const struct st_age_id *id, const unsigned char pub[32],
                      const struct stanza *s, unsigned char fk[16])
{
	unsigned char shared[32], k[32];
	int rc = 0;

	if (st_x25519(id->key, s->arg, shared) < 0)
		return st_age_hdr_err("X25519 share is a low-order point");
	if (x25519_key(shared, s->arg, pub, k) < 0)
		rc = st_age_fail_as(ST_AGE_FAIL_HEADER);
	else if (st_aead_open(k, zero_nonce, NULL, 0, s->body, WRAPPED,
	                      fk) == 0)
		rc = 1;
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

static int try_scrypt(const struct st_age_id *id, const struct stanza *s,
                      unsigned char fk[16])
{
	int max = id->max_logn ? id->max_logn : SCRYPT_MAX_LOGN, rc = 0;
	unsigned char k[32];

	if (s->logn > max)
		return st_age_hdr_err("scrypt work factor %d is over the "
		                      "limit %d", s->logn, max);
	if (scrypt_key(id->passphrase, s->arg, s->logn, k) < 0)
		return st_age_fail_as(ST_AGE_FAIL_HEADER);
	if (st_aead_open(k, zero_nonce, NULL, 0, s->body, WRAPPED, fk) == 0)
		rc = 1;
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

/* A passphrase identity: the one given, or one asked for only now. */
static int try_asked(const struct st_age_id *id, const struct stanza *s,
                     unsigned char fk[16])
{
	struct st_age_id asked = *id;
	int rc;

	if (id->passphrase)
		return try_scrypt(id, s, fk);
	if (!id->ask)
		return 0;
	if (!(asked.passphrase = id->ask()))
		return st_age_fail_as(ST_AGE_FAIL_IO);
	rc = try_scrypt(&asked, s, fk);
	st_free_str_secret(asked.passphrase);
	return rc;
}

/* Try every identity, in order, on every stanza, in order. */
static int unwrap(const struct hdr *h, const struct st_age_id *ids,
                  size_t nids, unsigned char fk[16])
{
	unsigned char pub[32];
	int scrypt = 0, tried_pass = 0, rc = 0;

	for (size_t i = 0; i < h->n; i++)
		scrypt |= h->s[i].kind == ST_AGE_SCRYPT;
	if (scrypt && h->n > 1)
		return st_age_hdr_err("an scrypt stanza must be the only one");
	for (size_t i = 0; i < nids && rc == 0; i++) {
		const struct st_age_id *id = &ids[i];

		if (id->type == ST_AGE_X25519 &&
		    st_x25519_pub(id->key, pub) < 0)
			return st_age_fail_as(ST_AGE_FAIL_HEADER);
		tried_pass |= id->type == ST_AGE_SCRYPT && scrypt;
		for (size_t j = 0; j < h->n && rc == 0; j++) {
			const struct stanza *s = &h->s[j];

			if (id->type == ST_AGE_X25519 &&
			    s->kind == ST_AGE_X25519)
				rc = try_x25519(id, pub, s, fk);
			else if (id->type == ST_AGE_SCRYPT &&
			         s->kind == ST_AGE_SCRYPT)
				rc = try_asked(id, s, fk);
		}
	}
	OPENSSL_cleanse(pub, sizeof(pub));
	if (rc)
		return rc < 0 ? -1 : 0;
	if (tried_pass)
		st_error(ST_EX_NO, "incorrect passphrase");
	else if (scrypt)
		st_error(ST_EX_NO, "the file is passphrase-encrypted; "
		         "no passphrase was given");
	else
		st_error(ST_EX_NO, "no identity matched any of the recipients");
	return st_age_fail_as(ST_AGE_FAIL_NOMATCH);
}

static int check_mac(const struct hdr *h, const void *buf,
                     const unsigned char fk[16])
{
	unsigned char mac[32];

	if (header_mac(fk, buf, h->maclen, mac) < 0)
		return st_age_fail_as(ST_AGE_FAIL_HEADER);
	if (st_memeq_ct(mac, h->mac, 32)) {
		st_error(ST_EX_DATAERR, "age header failed to authenticate "
		         "(bad mac)");
		return st_age_fail_as(ST_AGE_FAIL_HMAC);
	}
	return 0;
}

int st_age_hdr_open(const char *buf, size_t n, const struct st_age_id *ids,
                    size_t nids, unsigned char fk[16])
{
	struct hdr h;
	int rc = -1;

	if (parse_header(buf, n, &h) == 0 && unwrap(&h, ids, nids, fk) == 0) {
		rc = check_mac(&h, buf, fk);
		if (rc < 0)
			OPENSSL_cleanse(fk, ST_FILEKEY_LEN);
	}
	hdr_free(&h);
	return rc;
}
