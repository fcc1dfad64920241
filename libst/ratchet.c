/*
 * ratchet.c - one Double Ratchet session, per SPEC §4 and the Signal
 * Double Ratchet specification: the KDFs, the 40-byte header, encryption
 * and decryption with skipped message keys.  session.c holds the
 * sessions of a peer and always hands these functions a copy, so a
 * failure here may leave a session half-advanced.
 *
 * One deliberate reordering of Signal's RatchetDecrypt: a message that
 * brings a new ratchet key derives its receiving chain first, and only
 * once it has authenticated draws the new sending key pair and derives the
 * sending chain.  The resulting state is the same; a forged message costs
 * one X25519 and consumes no randomness.
 */
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "internal.h"

static const char RK_INFO[] = "st-dr-rk-v1";
static const char MSG_INFO[] = "st-msg-v1";
static const unsigned char zero32[32];

/*
 * HMAC-SHA256 and HKDF (RFC 5869) through one EVP_MAC context, rekeyed
 * per key.  st_hkdf_sha256() and st_hmac_sha256() fetch HKDF, HMAC and
 * SHA-256 by name and build their contexts on every call, which is most
 * of the cost of a 32-byte KDF step: a message takes five of them.  The
 * fetched HMAC is kept for the life of the process.
 */
static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static EVP_MAC_CTX *mac_new(void)
{
	OSSL_PARAM ps[2];
	EVP_MAC_CTX *c = NULL;

	ps[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                         "SHA256", 0);
	ps[1] = OSSL_PARAM_construct_end();
	pthread_once(&hmac_once, hmac_fetch);
	if (hmac_alg && (c = EVP_MAC_CTX_new(hmac_alg)) &&
	    EVP_MAC_CTX_set_params(c, ps) == 1)
		return c;
	EVP_MAC_CTX_free(c);
	st_error(ST_EX_DATAERR, "HMAC failed");
	return NULL;
}

/* out = HMAC(key, a || b || c); key NULL reuses the context's last key. */
static int mac(EVP_MAC_CTX *m, const unsigned char *key, size_t keylen,
               const void *a, size_t an, const void *b, size_t bn,
               unsigned char c, unsigned char out[32])
{
	size_t len = 0;

	if (EVP_MAC_init(m, key, keylen, NULL) == 1 &&
	    (!an || EVP_MAC_update(m, a, an) == 1) &&
	    (!bn || EVP_MAC_update(m, b, bn) == 1) &&
	    EVP_MAC_update(m, &c, 1) == 1 &&
	    EVP_MAC_final(m, out, &len, 32) == 1 && len == 32)
		return 0;
	st_wipe(out, 32);
	return st_error(ST_EX_DATAERR, "HMAC failed");
}

/* HKDF-SHA256 with a 32-byte salt and 32-byte ikm, up to 64 bytes out. */
static int hkdf(EVP_MAC_CTX *m, const unsigned char salt[32],
                const unsigned char ikm[32], const char *info, size_t infolen,
                unsigned char *out, size_t outlen)
{
	unsigned char prk[32], t[64];
	size_t len = 0;
	int rc = -1;

	/* extract: PRK = HMAC(salt, ikm) */
	if (EVP_MAC_init(m, salt, 32, NULL) != 1 ||
	    EVP_MAC_update(m, ikm, 32) != 1 ||
	    EVP_MAC_final(m, prk, &len, 32) != 1 || len != 32) {
		st_error(ST_EX_DATAERR, "HKDF failed");
		goto out;
	}
	/* expand: T(1) = HMAC(PRK, info || 1), T(2) = HMAC(PRK, T(1) ||
	 * info || 2) */
	if (mac(m, prk, 32, NULL, 0, info, infolen, 1, t) < 0 ||
	    (outlen > 32 &&
	     mac(m, prk, 32, t, 32, info, infolen, 2, t + 32) < 0))
		goto out;
	memcpy(out, t, outlen);
	rc = 0;
out:
	st_wipe(prk, sizeof(prk));
	st_wipe(t, sizeof(t));
	return rc;
}

static int kdf_rk(EVP_MAC_CTX *m, const unsigned char rk[32],
                  const unsigned char dh[32], const char *info,
                  unsigned char rk_out[32], unsigned char ck_out[32])
{
	unsigned char out[64];

	if (hkdf(m, rk, dh, info, strlen(info), out, 64) < 0)
		return -1;
	memcpy(rk_out, out, 32);
	memcpy(ck_out, out + 32, 32);
	st_wipe(out, sizeof(out));
	return 0;
}

static int kdf_ck(EVP_MAC_CTX *m, const unsigned char ck[32],
                  unsigned char mk[32], unsigned char ck_next[32])
{
	unsigned char next[32];

	if (mac(m, ck, 32, NULL, 0, NULL, 0, 0x01, mk) < 0 ||
	    mac(m, NULL, 0, NULL, 0, NULL, 0, 0x02, next) < 0) {
		st_wipe(mk, 32);
		return -1;
	}
	memcpy(ck_next, next, 32);
	st_wipe(next, sizeof(next));
	return 0;
}

static int message_keys(EVP_MAC_CTX *m, const unsigned char mk[32],
                        unsigned char key[32], unsigned char nonce[12])
{
	unsigned char out[44];

	if (hkdf(m, zero32, mk, MSG_INFO, sizeof(MSG_INFO) - 1, out, 44) < 0)
		return -1;
	memcpy(key, out, 32);
	memcpy(nonce, out + 32, 12);
	st_wipe(out, sizeof(out));
	return 0;
}

int st_dr_kdf_rk_with(const unsigned char rk[32], const unsigned char dh[32],
                      const char *info, unsigned char rk_out[32],
                      unsigned char ck_out[32])
{
	EVP_MAC_CTX *m = mac_new();
	int rc = m ? kdf_rk(m, rk, dh, info, rk_out, ck_out) : -1;

	EVP_MAC_CTX_free(m);
	return rc;
}

int st_dr_kdf_rk(const unsigned char rk[32], const unsigned char dh[32],
                 unsigned char rk_out[32], unsigned char ck_out[32])
{
	return st_dr_kdf_rk_with(rk, dh, RK_INFO, rk_out, ck_out);
}

int st_dr_kdf_ck(const unsigned char ck[32], unsigned char mk[32],
                 unsigned char ck_next[32])
{
	EVP_MAC_CTX *m = mac_new();
	int rc = m ? kdf_ck(m, ck, mk, ck_next) : -1;

	EVP_MAC_CTX_free(m);
	return rc;
}

int st_dr_message_keys(const unsigned char mk[32], unsigned char key[32],
                       unsigned char nonce[12])
{
	EVP_MAC_CTX *m = mac_new();
	int rc = m ? message_keys(m, mk, key, nonce) : -1;

	EVP_MAC_CTX_free(m);
	return rc;
}

void st_dr_header_encode(const unsigned char dh[32], uint32_t pn, uint32_t n,
                         unsigned char out[ST_DR_HEADER_LEN])
{
	memcpy(out, dh, 32);
	for (int i = 0; i < 4; i++) {
		out[32 + i] = (unsigned char)(pn >> (24 - 8 * i));
		out[36 + i] = (unsigned char)(n >> (24 - 8 * i));
	}
}

void st_dr_header_decode(const unsigned char in[ST_DR_HEADER_LEN],
                         unsigned char dh[32], uint32_t *pn, uint32_t *n)
{
	memcpy(dh, in, 32);
	*pn = (uint32_t)in[32] << 24 | (uint32_t)in[33] << 16 |
	      (uint32_t)in[34] << 8 | in[35];
	*n = (uint32_t)in[36] << 24 | (uint32_t)in[37] << 16 |
	     (uint32_t)in[38] << 8 | in[39];
}

static int newkey(const struct st_dr_keysrc *ks, unsigned char priv[32])
{
	if (ks && ks->fn)
		return ks->fn(ks->ctx, priv);
	return st_random(priv, 32);
}

static int set_ad(struct st_dr *s, const unsigned char *ad, size_t adlen)
{
	if (adlen > sizeof(s->ad))
		return st_error(ST_EX_DATAERR, "associated data too long");
	memcpy(s->ad, ad, adlen);
	s->adlen = adlen;
	return 0;
}

int st_dr_init_initiator(struct st_dr *s, const unsigned char sk[32],
                         const unsigned char spk_pub[32],
                         const unsigned char *ad, size_t adlen,
                         const struct st_dr_keysrc *ks)
{
	unsigned char dh[32];
	int rc = -1;

	memset(s, 0, sizeof(*s));
	if (set_ad(s, ad, adlen) == 0 && newkey(ks, s->dhs) == 0 &&
	    st_x25519_pub(s->dhs, s->dhs_pub) == 0 &&
	    st_x3dh_x25519(s->dhs, s->dhs_pub, spk_pub, dh) == 0 &&
	    st_dr_kdf_rk(sk, dh, s->rk, s->cks) == 0) {
		memcpy(s->dhr, spk_pub, 32);
		s->has_dhr = s->has_cks = 1;
		rc = 0;
	}
	st_wipe(dh, sizeof(dh));
	if (rc < 0)
		st_dr_wipe(s);
	return rc;
}

int st_dr_init_responder(struct st_dr *s, const unsigned char sk[32],
                         const unsigned char spk_priv[32],
                         const unsigned char *ad, size_t adlen)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->dhs, spk_priv, 32);
	memcpy(s->rk, sk, 32);
	if (set_ad(s, ad, adlen) < 0 || st_x25519_pub(s->dhs, s->dhs_pub) < 0) {
		st_dr_wipe(s);
		return -1;
	}
	return 0;
}

/* AEAD under mk with associated data AD || header. */
static int seal_open(EVP_MAC_CTX *m, int seal, const struct st_dr *s,
                     const unsigned char mk[32],
                     const unsigned char hdr[ST_DR_HEADER_LEN],
                     const unsigned char *in, size_t n, unsigned char *out)
{
	unsigned char key[32], nonce[12], ad[ST_X3DH_AD_MAX + ST_DR_HEADER_LEN];
	size_t adlen = s->adlen + ST_DR_HEADER_LEN;
	int rc = -1;

	memcpy(ad, s->ad, s->adlen);
	memcpy(ad + s->adlen, hdr, ST_DR_HEADER_LEN);
	if (message_keys(m, mk, key, nonce) == 0)
		rc = (seal ? st_aead_seal : st_aead_open)(key, nonce, ad, adlen,
		                                         in, n, out);
	st_wipe(key, sizeof(key));
	st_wipe(nonce, sizeof(nonce));
	return rc;
}

int st_dr_encrypt(struct st_dr *s, const void *pt, size_t n,
                  unsigned char hdr[ST_DR_HEADER_LEN], unsigned char **ct,
                  size_t *ctlen)
{
	unsigned char mk[32];
	EVP_MAC_CTX *m;
	int rc;

	if (!s->has_cks)
		return st_error(ST_EX_DATAERR, "session cannot send yet");
	if (s->ns == UINT32_MAX)
		return st_error(ST_EX_DATAERR, "sending chain exhausted");
	st_dr_header_encode(s->dhs_pub, s->pn, s->ns, hdr);
	if (!(m = mac_new()))
		return -1;
	if (kdf_ck(m, s->cks, mk, s->cks) < 0) {
		EVP_MAC_CTX_free(m);
		return -1;
	}
	s->ns++;
	*ct = st_malloc(n + ST_AEAD_TAG_LEN);
	rc = seal_open(m, 1, s, mk, hdr, pt, n, *ct);
	st_wipe(mk, sizeof(mk));
	EVP_MAC_CTX_free(m);
	if (rc < 0) {
		free(*ct);
		*ct = NULL;
		return -1;
	}
	*ctlen = n + ST_AEAD_TAG_LEN;
	return 0;
}

/* ---- skipped message keys ---- */

/*
 * The array holds exactly cap_of(nskipped) entries, those past nskipped
 * all zeros, so a copy or a wipe touches what is in use and not 2000
 * slots (160 KB) every time: decryption copies a session per message.
 */
#define SKIP_CHUNK 64

static size_t cap_of(size_t n)
{
	return (n + SKIP_CHUNK - 1) / SKIP_CHUNK * SKIP_CHUNK;
}

/* Set the count to n, moving to an array of cap_of(n) when that differs;
 * entries from n on must already be zeros when shrinking. */
static void set_count(struct st_dr *s, size_t n)
{
	size_t oc = cap_of(s->nskipped), nc = cap_of(n);

	if (nc != oc) {
		struct st_dr_skipped *p = nc ? st_calloc(nc, sizeof(*p)) : NULL;
		size_t keep = n < s->nskipped ? n : s->nskipped;

		if (keep)
			memcpy(p, s->skipped, keep * sizeof(*p));
		st_free_secret(s->skipped, oc * sizeof(*p));
		s->skipped = p;
	}
	s->nskipped = n;
}

/* Remove entries [i, i + k), keeping the order of the others. */
static void drop_skipped(struct st_dr *s, size_t i, size_t k)
{
	size_t n = s->nskipped;

	memmove(&s->skipped[i], &s->skipped[i + k],
	        (n - i - k) * sizeof(s->skipped[0]));
	st_wipe(&s->skipped[n - k], k * sizeof(s->skipped[0]));
	set_count(s, n - k);
}

static void expire_skipped(struct st_dr *s, int64_t now)
{
	size_t o = 0;

	for (size_t i = 0; i < s->nskipped; i++) {
		if (now - s->skipped[i].ts > ST_DR_SKIPPED_TTL_MS) {
			st_wipe(&s->skipped[i], sizeof(s->skipped[i]));
			continue;
		}
		if (o != i) {
			s->skipped[o] = s->skipped[i];
			st_wipe(&s->skipped[i], sizeof(s->skipped[i]));
		}
		o++;
	}
	if (o != s->nskipped)
		set_count(s, o);
}

/* Store the receiving chain's keys up to (not including) until. */
static int skip_to(EVP_MAC_CTX *m, struct st_dr *s, uint32_t until,
                   int64_t now)
{
	size_t k, n;

	if (!s->has_ckr || s->nr >= until)
		return 0;
	k = until - s->nr;
	if (k > ST_DR_MAX_SKIPPED)      /* MAX_SKIP stops this earlier */
		return st_error(ST_EX_DATAERR, "too many skipped keys");
	/* room for k: the oldest go first */
	if (s->nskipped + k > ST_DR_MAX_SKIPPED)
		drop_skipped(s, 0, s->nskipped + k - ST_DR_MAX_SKIPPED);
	n = s->nskipped;
	set_count(s, n + k);
	for (; s->nr < until; s->nr++, n++) {
		struct st_dr_skipped *e = &s->skipped[n];

		if (kdf_ck(m, s->ckr, e->mk, s->ckr) < 0) {
			set_count(s, n);        /* the rest are still zeros */
			return -1;
		}
		memcpy(e->dh, s->dhr, 32);
		e->n = s->nr;
		e->ts = now;
	}
	return 0;
}

static int open_ct(EVP_MAC_CTX *m, const struct st_dr *s,
                   const unsigned char mk[32],
                   const unsigned char *hdr, const unsigned char *ct,
                   size_t ctlen, unsigned char **pt, size_t *ptlen)
{
	if (ctlen < ST_AEAD_TAG_LEN)
		return st_error(ST_EX_DATAERR, "ciphertext too short");
	*pt = st_malloc(ctlen - ST_AEAD_TAG_LEN);
	if (seal_open(m, 0, s, mk, hdr, ct, ctlen, *pt) < 0) {
		st_free_secret(*pt, ctlen - ST_AEAD_TAG_LEN);
		*pt = NULL;
		return -1;
	}
	*ptlen = ctlen - ST_AEAD_TAG_LEN;
	return 0;
}

/* The second half of a DH ratchet step: a new key pair, the sending chain. */
static int step_send(EVP_MAC_CTX *m, struct st_dr *s,
                     const struct st_dr_keysrc *ks)
{
	unsigned char dh[32];
	int rc = -1;

	if (newkey(ks, s->dhs) == 0 && st_x25519_pub(s->dhs, s->dhs_pub) == 0 &&
	    st_x3dh_x25519(s->dhs, s->dhs_pub, s->dhr, dh) == 0 &&
	    kdf_rk(m, s->rk, dh, RK_INFO, s->rk, s->cks) == 0) {
		s->has_cks = 1;
		rc = 0;
	}
	st_wipe(dh, sizeof(dh));
	return rc;
}

/* The first half: the receiving chain for the peer's new key dh. */
static int step_recv(EVP_MAC_CTX *m, struct st_dr *s,
                     const unsigned char dh[32])
{
	unsigned char out[32];
	int rc;

	if ((rc = st_x3dh_x25519(s->dhs, s->dhs_pub, dh, out)) == 0)
		rc = kdf_rk(m, s->rk, out, RK_INFO, s->rk, s->ckr);
	st_wipe(out, sizeof(out));
	if (rc < 0)
		return -1;
	memcpy(s->dhr, dh, 32);
	s->has_dhr = s->has_ckr = 1;
	s->has_cks = 0;
	s->pn = s->ns;
	s->ns = s->nr = 0;
	return 0;
}

static int too_many(void)
{
	return st_error(ST_EX_DATAERR, "message would skip more than %d "
	                "message keys", ST_DR_MAX_SKIP);
}

static int decrypt(EVP_MAC_CTX *m, struct st_dr *s,
                   const unsigned char hdr[ST_DR_HEADER_LEN],
                   const unsigned char *ct, size_t ctlen, int64_t now_ms,
                   const struct st_dr_keysrc *ks, unsigned char **pt,
                   size_t *ptlen)
{
	unsigned char dh[32], mk[32];
	uint32_t pn, n;
	int stepped = 0, rc;

	st_dr_header_decode(hdr, dh, &pn, &n);
	expire_skipped(s, now_ms);
	for (size_t i = 0; i < s->nskipped; i++) {
		if (s->skipped[i].n != n || memcmp(s->skipped[i].dh, dh, 32))
			continue;
		if (open_ct(m, s, s->skipped[i].mk, hdr, ct, ctlen, pt,
		            ptlen) < 0)
			return -1;
		drop_skipped(s, i, 1);
		return 0;
	}
	if (n == UINT32_MAX)
		return st_error(ST_EX_DATAERR, "bad message number");
	if (!s->has_dhr || memcmp(dh, s->dhr, 32) != 0) {
		/* checked apart: the old chain up to pn, the new one up to n */
		if (s->has_ckr &&
		    (uint64_t)pn > (uint64_t)s->nr + ST_DR_MAX_SKIP)
			return too_many();
		if (n > ST_DR_MAX_SKIP)
			return too_many();
		if (skip_to(m, s, pn, now_ms) < 0 || step_recv(m, s, dh) < 0)
			return -1;
		stepped = 1;
	} else {
		if (!s->has_ckr)
			return st_error(ST_EX_DATAERR, "no receiving chain for "
			                "this message");
		if (n < s->nr)
			return st_error(ST_EX_DATAERR, "message already "
			                "received or its key expired");
		if ((uint64_t)n > (uint64_t)s->nr + ST_DR_MAX_SKIP)
			return too_many();
	}
	if (skip_to(m, s, n, now_ms) < 0 || kdf_ck(m, s->ckr, mk, s->ckr) < 0)
		return -1;
	s->nr = n + 1;
	rc = open_ct(m, s, mk, hdr, ct, ctlen, pt, ptlen);
	st_wipe(mk, sizeof(mk));
	if (rc == 0 && stepped && step_send(m, s, ks) < 0) {
		st_free_secret(*pt, *ptlen);
		*pt = NULL;
		rc = -1;
	}
	return rc;
}

int st_dr_decrypt(struct st_dr *s, const unsigned char hdr[ST_DR_HEADER_LEN],
                  const unsigned char *ct, size_t ctlen, int64_t now_ms,
                  const struct st_dr_keysrc *ks, unsigned char **pt,
                  size_t *ptlen)
{
	EVP_MAC_CTX *m = mac_new();
	int rc;

	*pt = NULL;
	if (!m)
		return -1;
	rc = decrypt(m, s, hdr, ct, ctlen, now_ms, ks, pt, ptlen);
	EVP_MAC_CTX_free(m);
	return rc;
}

void st_dr_copy(struct st_dr *dst, const struct st_dr *src)
{
	*dst = *src;
	dst->skipped = NULL;
	if (src->nskipped) {
		dst->skipped = st_calloc(cap_of(src->nskipped),
		                         sizeof(dst->skipped[0]));
		memcpy(dst->skipped, src->skipped,
		       src->nskipped * sizeof(src->skipped[0]));
	}
}

void st_dr_wipe(struct st_dr *s)
{
	st_free_secret(s->skipped, cap_of(s->nskipped) *
	               sizeof(s->skipped[0]));
	st_wipe(s, sizeof(*s));
}

/* ---- JSON (the format is described in session.c) ---- */

static void set_opt(struct st_json *o, const char *key, int has,
                    const unsigned char *v)
{
	if (has)
		st_json_set_b64(o, key, v, 32);
	else
		st_json_set_null(o, key);
}

void st_dr_to_json(const struct st_dr *s, struct st_json *o)
{
	struct st_json *a = st_json_array();

	st_json_set_b64(o, "ad", s->ad, s->adlen);
	st_json_set_b64(o, "rk", s->rk, 32);
	st_json_set_b64(o, "dhs", s->dhs, 32);
	set_opt(o, "dhr", s->has_dhr, s->dhr);
	set_opt(o, "cks", s->has_cks, s->cks);
	set_opt(o, "ckr", s->has_ckr, s->ckr);
	st_json_set_int(o, "ns", s->ns);
	st_json_set_int(o, "nr", s->nr);
	st_json_set_int(o, "pn", s->pn);
	for (size_t i = 0; i < s->nskipped; i++) {
		struct st_json *e = st_json_object();

		st_json_set_b64(e, "dh", s->skipped[i].dh, 32);
		st_json_set_int(e, "n", s->skipped[i].n);
		st_json_set_b64(e, "mk", s->skipped[i].mk, 32);
		st_json_set_int(e, "ts", s->skipped[i].ts);
		st_json_array_append(a, e);
	}
	st_json_set(o, "skipped", a);
}

static int get_opt(const struct st_json *o, const char *key, int *has,
                   unsigned char *v)
{
	struct st_json *m = st_json_get(o, key);

	if (m && json_is_null(J(m))) {
		*has = 0;
		return 0;
	}
	*has = 1;
	return st_json_get_b64(o, key, v, 32);
}

static int get_u32(const struct st_json *o, const char *key, uint32_t *v)
{
	int64_t i;

	if (st_json_get_int(o, key, 0, UINT32_MAX, &i) < 0)
		return -1;
	*v = (uint32_t)i;
	return 0;
}

static int skipped_from_json(const struct st_json *a, struct st_dr *s)
{
	size_t n = st_json_array_size(a);

	if (n > ST_DR_MAX_SKIPPED)
		return st_error(ST_EX_DATAERR, "too many skipped keys");
	set_count(s, n);                /* zeros, filled below */
	for (size_t i = 0; i < n; i++) {
		const struct st_json *e = st_json_array_get(a, i);
		struct st_dr_skipped *k = &s->skipped[i];

		if (st_json_get_b64(e, "dh", k->dh, 32) < 0 ||
		    get_u32(e, "n", &k->n) < 0 ||
		    st_json_get_b64(e, "mk", k->mk, 32) < 0 ||
		    st_json_get_int(e, "ts", INT64_MIN, INT64_MAX, &k->ts) < 0)
			return -1;
	}
	return 0;
}

int st_dr_from_json(const struct st_json *o, struct st_dr *s)
{
	unsigned char *ad = NULL;
	struct st_json *a;
	size_t adlen;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	if (st_json_get_b64_alloc(o, "ad", ST_X3DH_AD_MAX, &ad, &adlen) < 0 ||
	    set_ad(s, ad, adlen) < 0 ||
	    st_json_get_b64(o, "rk", s->rk, 32) < 0 ||
	    st_json_get_b64(o, "dhs", s->dhs, 32) < 0 ||
	    st_x25519_pub(s->dhs, s->dhs_pub) < 0 ||
	    get_opt(o, "dhr", &s->has_dhr, s->dhr) < 0 ||
	    get_opt(o, "cks", &s->has_cks, s->cks) < 0 ||
	    get_opt(o, "ckr", &s->has_ckr, s->ckr) < 0 ||
	    get_u32(o, "ns", &s->ns) < 0 || get_u32(o, "nr", &s->nr) < 0 ||
	    get_u32(o, "pn", &s->pn) < 0 ||
	    st_json_get_arr(o, "skipped", &a) < 0 ||
	    skipped_from_json(a, s) < 0)
		goto out;
	rc = 0;
out:
	free(ad);
	if (rc < 0)
		st_dr_wipe(s);
	return rc;
}
