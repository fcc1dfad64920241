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

#include <jansson.h>

#include "internal.h"

static const char RK_INFO[] = "st-dr-rk-v1";
static const char MSG_INFO[] = "st-msg-v1";
static const unsigned char zero32[32];

int st_dr_kdf_rk_with(const unsigned char rk[32], const unsigned char dh[32],
                      const char *info, unsigned char rk_out[32],
                      unsigned char ck_out[32])
{
	unsigned char out[64];

	if (st_hkdf_sha256(dh, 32, rk, 32, info, strlen(info), out, 64) < 0)
		return -1;
	memcpy(rk_out, out, 32);
	memcpy(ck_out, out + 32, 32);
	st_wipe(out, sizeof(out));
	return 0;
}

int st_dr_kdf_rk(const unsigned char rk[32], const unsigned char dh[32],
                 unsigned char rk_out[32], unsigned char ck_out[32])
{
	return st_dr_kdf_rk_with(rk, dh, RK_INFO, rk_out, ck_out);
}

int st_dr_kdf_ck(const unsigned char ck[32], unsigned char mk[32],
                 unsigned char ck_next[32])
{
	static const unsigned char one = 0x01, two = 0x02;
	unsigned char next[32];

	if (st_hmac_sha256(ck, 32, &one, 1, mk) < 0 ||
	    st_hmac_sha256(ck, 32, &two, 1, next) < 0) {
		st_wipe(mk, 32);
		return -1;
	}
	memcpy(ck_next, next, 32);
	st_wipe(next, sizeof(next));
	return 0;
}

int st_dr_message_keys(const unsigned char mk[32], unsigned char key[32],
                       unsigned char nonce[12])
{
	unsigned char out[44];

	if (st_hkdf_sha256(mk, 32, zero32, 32, MSG_INFO, sizeof(MSG_INFO) - 1,
	                   out, 44) < 0)
		return -1;
	memcpy(key, out, 32);
	memcpy(nonce, out + 32, 12);
	st_wipe(out, sizeof(out));
	return 0;
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
	    st_x25519(s->dhs, spk_pub, dh) == 0 &&
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
static int seal_open(int seal, const struct st_dr *s,
                     const unsigned char mk[32],
                     const unsigned char hdr[ST_DR_HEADER_LEN],
                     const unsigned char *in, size_t n, unsigned char *out)
{
	unsigned char key[32], nonce[12], ad[ST_X3DH_AD_MAX + ST_DR_HEADER_LEN];
	size_t adlen = s->adlen + ST_DR_HEADER_LEN;
	int rc = -1;

	memcpy(ad, s->ad, s->adlen);
	memcpy(ad + s->adlen, hdr, ST_DR_HEADER_LEN);
	if (st_dr_message_keys(mk, key, nonce) == 0)
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
	int rc;

	if (!s->has_cks)
		return st_error(ST_EX_DATAERR, "session cannot send yet");
	if (s->ns == UINT32_MAX)
		return st_error(ST_EX_DATAERR, "sending chain exhausted");
	st_dr_header_encode(s->dhs_pub, s->pn, s->ns, hdr);
	if (st_dr_kdf_ck(s->cks, mk, s->cks) < 0)
		return -1;
	s->ns++;
	*ct = st_malloc(n + ST_AEAD_TAG_LEN);
	rc = seal_open(1, s, mk, hdr, pt, n, *ct);
	st_wipe(mk, sizeof(mk));
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
static int skip_to(struct st_dr *s, uint32_t until, int64_t now)
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

		if (st_dr_kdf_ck(s->ckr, e->mk, s->ckr) < 0) {
			set_count(s, n);        /* the rest are still zeros */
			return -1;
		}
		memcpy(e->dh, s->dhr, 32);
		e->n = s->nr;
		e->ts = now;
	}
	return 0;
}

static int open_ct(const struct st_dr *s, const unsigned char mk[32],
                   const unsigned char *hdr, const unsigned char *ct,
                   size_t ctlen, unsigned char **pt, size_t *ptlen)
{
	if (ctlen < ST_AEAD_TAG_LEN)
		return st_error(ST_EX_DATAERR, "ciphertext too short");
	*pt = st_malloc(ctlen - ST_AEAD_TAG_LEN);
	if (seal_open(0, s, mk, hdr, ct, ctlen, *pt) < 0) {
		st_free_secret(*pt, ctlen - ST_AEAD_TAG_LEN);
		*pt = NULL;
		return -1;
	}
	*ptlen = ctlen - ST_AEAD_TAG_LEN;
	return 0;
}

/* The second half of a DH ratchet step: a new key pair, the sending chain. */
static int step_send(struct st_dr *s, const struct st_dr_keysrc *ks)
{
	unsigned char dh[32];
	int rc = -1;

	if (newkey(ks, s->dhs) == 0 && st_x25519_pub(s->dhs, s->dhs_pub) == 0 &&
	    st_x25519(s->dhs, s->dhr, dh) == 0 &&
	    st_dr_kdf_rk(s->rk, dh, s->rk, s->cks) == 0) {
		s->has_cks = 1;
		rc = 0;
	}
	st_wipe(dh, sizeof(dh));
	return rc;
}

/* The first half: the receiving chain for the peer's new key dh. */
static int step_recv(struct st_dr *s, const unsigned char dh[32])
{
	unsigned char out[32];
	int rc;

	if ((rc = st_x25519(s->dhs, dh, out)) == 0)
		rc = st_dr_kdf_rk(s->rk, out, s->rk, s->ckr);
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

int st_dr_decrypt(struct st_dr *s, const unsigned char hdr[ST_DR_HEADER_LEN],
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
		if (open_ct(s, s->skipped[i].mk, hdr, ct, ctlen, pt, ptlen) < 0)
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
		if (skip_to(s, pn, now_ms) < 0 || step_recv(s, dh) < 0)
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
	if (skip_to(s, n, now_ms) < 0 || st_dr_kdf_ck(s->ckr, mk, s->ckr) < 0)
		return -1;
	s->nr = n + 1;
	rc = open_ct(s, mk, hdr, ct, ctlen, pt, ptlen);
	st_wipe(mk, sizeof(mk));
	if (rc == 0 && stepped && step_send(s, ks) < 0) {
		st_free_secret(*pt, *ptlen);
		*pt = NULL;
		rc = -1;
	}
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
