/*
 * x3dh.c - X3DH key agreement per SPEC §4 and the Signal X3DH
 * specification: both roles, the KDF and the associated data.  The
 * initiator checks the bundle's signatures itself before any DH, so no
 * caller can forget to; every DH output and the ephemeral secret are wiped
 * before returning, error paths included.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "st.h"

static const char KDF_INFO[] = "st-x3dh-v1";

int st_x3dh_kdf_with(const unsigned char *dh, size_t n, const char *info,
                     unsigned char *out, size_t outlen)
{
	static const unsigned char salt[32];
	unsigned char ikm[32 + 4 * 32];
	int rc;

	if (n != 96 && n != 128)
		return st_error(ST_EX_DATAERR, "bad x3dh input length");
	memset(ikm, 0xff, 32);
	memcpy(ikm + 32, dh, n);
	rc = st_hkdf_sha256(ikm, 32 + n, salt, sizeof(salt), info,
	                    strlen(info), out, outlen);
	st_wipe(ikm, sizeof(ikm));
	return rc;
}

int st_x3dh_kdf(const unsigned char *dh, size_t n, unsigned char sk[32])
{
	return st_x3dh_kdf_with(dh, n, KDF_INFO, sk, 32);
}

int st_x3dh_ad(const char *user_a, const unsigned char id_a[ST_ID_ENC_LEN],
               const char *user_b, const unsigned char id_b[ST_ID_ENC_LEN],
               unsigned char *ad, size_t *adlen)
{
	size_t la = strlen(user_a), lb = strlen(user_b), o = 0;

	if (la < 1 || la > 255 || lb < 1 || lb > 255)
		return st_error(ST_EX_DATAERR, "bad user name length");
	ad[o++] = (unsigned char)la;
	memcpy(ad + o, user_a, la);
	o += la;
	memcpy(ad + o, id_a, ST_ID_ENC_LEN);
	o += ST_ID_ENC_LEN;
	ad[o++] = (unsigned char)lb;
	memcpy(ad + o, user_b, lb);
	o += lb;
	memcpy(ad + o, id_b, ST_ID_ENC_LEN);
	*adlen = o + ST_ID_ENC_LEN;
	return 0;
}

int st_x3dh_x25519(const unsigned char priv[32], const unsigned char *pub,
                   const unsigned char peer[32], unsigned char out[32])
{
	static const unsigned char zero[32];
	EVP_PKEY_CTX *fc = NULL, *c = NULL;
	EVP_PKEY *p = NULL, *q = NULL;
	OSSL_PARAM ps[3];
	size_t len = 32;
	int rc = -1;

	if (!pub)
		return st_x25519(priv, peer, out);
	/* with both halves given, the import does no scalar multiplication;
	 * the derivation itself uses the private key alone */
	ps[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY,
	                                          (void *)priv, 32);
	ps[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	                                          (void *)pub, 32);
	ps[2] = OSSL_PARAM_construct_end();
	fc = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
	if (!fc || EVP_PKEY_fromdata_init(fc) != 1 ||
	    EVP_PKEY_fromdata(fc, &p, EVP_PKEY_KEYPAIR, ps) != 1) {
		st_error(ST_EX_DATAERR, "bad private key");
		goto out;
	}
	if (!(q = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer,
	                                      32))) {
		st_error(ST_EX_DATAERR, "bad X25519 public key");
		goto out;
	}
	c = EVP_PKEY_CTX_new(p, NULL);
	if (!c || EVP_PKEY_derive_init(c) != 1 ||
	    EVP_PKEY_derive_set_peer(c, q) != 1 ||
	    EVP_PKEY_derive(c, out, &len) != 1 || len != 32) {
		/* OpenSSL itself refuses an all-zero result here */
		st_wipe(out, 32);
		st_error(ST_EX_DATAERR, "X25519 failed (low-order public key?)");
		goto out;
	}
	if (st_memeq_ct(out, zero, 32) == 0) {
		st_error(ST_EX_DATAERR, "X25519 gave all zeros: low-order key");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_CTX_free(fc);
	EVP_PKEY_free(p);           /* clears its copy of the secret */
	EVP_PKEY_free(q);
	return rc;
}

int st_x3dh_dh_initiator(const unsigned char ik_priv[32],
                         const unsigned char *ik_pub,
                         const unsigned char ek_priv[32],
                         const unsigned char *ek_pub,
                         const unsigned char peer_ik[32],
                         const unsigned char spk[32],
                         const unsigned char *opk, unsigned char dh[128],
                         size_t *n)
{
	if (st_x3dh_x25519(ik_priv, ik_pub, spk, dh) < 0 ||
	    st_x3dh_x25519(ek_priv, ek_pub, peer_ik, dh + 32) < 0 ||
	    st_x3dh_x25519(ek_priv, ek_pub, spk, dh + 64) < 0 ||
	    (opk && st_x3dh_x25519(ek_priv, ek_pub, opk, dh + 96) < 0)) {
		st_wipe(dh, 128);
		return -1;
	}
	*n = opk ? 128 : 96;
	return 0;
}

int st_x3dh_dh_responder(const unsigned char ik_priv[32],
                         const unsigned char *ik_pub,
                         const unsigned char spk_priv[32],
                         const unsigned char *spk_pub,
                         const unsigned char *opk_priv,
                         const unsigned char *opk_pub,
                         const unsigned char peer_ik[32],
                         const unsigned char ek[32], unsigned char dh[128],
                         size_t *n)
{
	if (st_x3dh_x25519(spk_priv, spk_pub, peer_ik, dh) < 0 ||
	    st_x3dh_x25519(ik_priv, ik_pub, ek, dh + 32) < 0 ||
	    st_x3dh_x25519(spk_priv, spk_pub, ek, dh + 64) < 0 ||
	    (opk_priv && st_x3dh_x25519(opk_priv, opk_pub, ek, dh + 96) < 0)) {
		st_wipe(dh, 128);
		return -1;
	}
	*n = opk_priv ? 128 : 96;
	return 0;
}

int st_x3dh_initiate(const struct st_identity *me, const struct st_bundle *b,
                     const unsigned char *ek_priv, unsigned char sk[32],
                     unsigned char ek_pub[32])
{
	unsigned char ek[32], dh[4 * 32];
	size_t n;
	int rc = -1;

	/* the signatures first: no DH with keys nobody vouched for */
	if (st_identity_verify(&b->id) < 0 ||
	    st_spk_verify(b->id.ed25519, b->spk_id, b->spk, b->spk_sig) < 0)
		return st_error_ctx("refusing prekey bundle of %s", b->user);
	if (ek_priv)
		memcpy(ek, ek_priv, 32);
	else if (st_random(ek, 32) < 0)
		goto out;
	if (st_x25519_pub(ek, ek_pub) < 0 ||
	    st_x3dh_dh_initiator(me->x25519_priv, me->pub.x25519, ek, ek_pub,
	                         b->id.x25519, b->spk,
	                         b->has_opk ? b->opk : NULL, dh, &n) < 0)
		goto out;
	st_wipe(ek, sizeof(ek));
	rc = st_x3dh_kdf(dh, n, sk);
out:
	st_wipe(ek, sizeof(ek));
	st_wipe(dh, sizeof(dh));
	if (rc < 0) {
		st_wipe(sk, 32);
		st_wipe(ek_pub, 32);
	}
	return rc;
}

static int respond(const struct st_identity *me,
                   const unsigned char spk_priv[32],
                   const unsigned char *spk_pub,
                   const unsigned char *opk_priv,
                   const unsigned char *opk_pub,
                   const unsigned char peer_x25519[32],
                   const unsigned char ek_pub[32], unsigned char sk[32])
{
	unsigned char dh[4 * 32];
	size_t n;
	int rc = -1;

	if (st_x3dh_dh_responder(me->x25519_priv, me->pub.x25519, spk_priv,
	                         spk_pub, opk_priv, opk_pub, peer_x25519,
	                         ek_pub, dh, &n) == 0)
		rc = st_x3dh_kdf(dh, n, sk);
	st_wipe(dh, sizeof(dh));
	if (rc < 0)
		st_wipe(sk, 32);
	return rc;
}

int st_x3dh_respond(const struct st_identity *me,
                    const unsigned char spk_priv[32],
                    const unsigned char *opk_priv,
                    const unsigned char peer_x25519[32],
                    const unsigned char ek_pub[32], unsigned char sk[32])
{
	return respond(me, spk_priv, NULL, opk_priv, NULL, peer_x25519,
	               ek_pub, sk);
}

int st_x3dh_respond_keys(const struct st_identity *me,
                         const struct st_spk *spk, const struct st_opk *opk,
                         const unsigned char peer_x25519[32],
                         const unsigned char ek_pub[32],
                         unsigned char sk[32])
{
	return respond(me, spk->priv, spk->pub, opk ? opk->priv : NULL,
	               opk ? opk->pub : NULL, peer_x25519, ek_pub, sk);
}
