/*
 * crypto.c - the primitives of SPEC §4 through OpenSSL 3 EVP, behind
 * byte-array interfaces.  Every temporary that held key material is wiped
 * on the way out, error paths included.
 */
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "st.h"

/*
 * Start-up: a command runs for milliseconds, and OpenSSL's default
 * initialisation (reading openssl.cnf, registering every legacy cipher and
 * digest by name) costs more than the work itself.  libst fetches only
 * what it names from the default provider, so skip both, once, before main.
 */
__attribute__((constructor)) static void init_openssl(void)
{
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG |
	                    OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
	                    OPENSSL_INIT_NO_ADD_ALL_DIGESTS, NULL);
}

/*
 * X.509 verification still looks a certificate's signature digest up by
 * name; with the digests unregistered every certificate fails as "CA
 * signature digest algorithm too weak".  The relay client registers the
 * SHA families before its first TLS handshake (OPENSSL_INIT_ADD_ALL_DIGESTS
 * cannot: the NO_ flag above already ran that once).
 */
void st_crypto_tls_digests(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	EVP_add_digest(EVP_sha1());
	EVP_add_digest(EVP_sha224());
	EVP_add_digest(EVP_sha256());
	EVP_add_digest(EVP_sha384());
	EVP_add_digest(EVP_sha512());
	EVP_add_digest(EVP_sha512_224());
	EVP_add_digest(EVP_sha512_256());
	EVP_add_digest(EVP_sha3_256());
	EVP_add_digest(EVP_sha3_384());
	EVP_add_digest(EVP_sha3_512());
}

/*
 * Random bytes straight from the kernel's CSPRNG (getrandom(2), blocking
 * only until it is seeded at boot).  OpenSSL's DRBG would seed itself from
 * the same source; instantiating it (fetching CTR-DRBG and AES from the
 * provider) costs a command more than a millisecond at start-up, and there
 * is no DRBG state to go wrong across fork().
 */
int st_random(void *p, size_t n)
{
	unsigned char *b = p;

	while (n) {
		ssize_t k = getrandom(b, n, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return st_error(ST_EX_CANTCREAT, "random number "
			                "generator failed:");
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

static EVP_PKEY *raw_priv(int type, const unsigned char *k)
{
	EVP_PKEY *p = EVP_PKEY_new_raw_private_key(type, NULL, k, 32);

	if (!p)
		st_error(ST_EX_DATAERR, "bad private key");
	return p;
}

#define XCACHE 8

static struct xcache {
	unsigned char priv[32], pub[32];
	EVP_PKEY *pkey;
} xcache[XCACHE];
static size_t nxcache;

void st_x25519_uncache(void)
{
	for (size_t i = 0; i < nxcache; i++) {
		EVP_PKEY_free(xcache[i].pkey);
		OPENSSL_cleanse(&xcache[i], sizeof(xcache[i]));
	}
	nxcache = 0;
}

/* The cached import of priv, or NULL. */
static struct xcache *xlookup(const unsigned char priv[32])
{
	for (size_t i = 0; i < nxcache; i++)
		if (CRYPTO_memcmp(xcache[i].priv, priv, 32) == 0)
			return &xcache[i];
	return NULL;
}

int st_x25519_cache(const unsigned char priv[32])
{
	static int registered;
	struct xcache *c;
	size_t len = 32;

	if (xlookup(priv) || nxcache == XCACHE)
		return 0;
	c = &xcache[nxcache];
	if (!(c->pkey = raw_priv(EVP_PKEY_X25519, priv)))
		return -1;
	if (EVP_PKEY_get_raw_public_key(c->pkey, c->pub, &len) != 1) {
		EVP_PKEY_free(c->pkey);
		c->pkey = NULL;
		return st_error(ST_EX_DATAERR, "cannot derive public key");
	}
	memcpy(c->priv, priv, 32);
	nxcache++;
	if (!registered++)
		atexit(st_x25519_uncache);
	return 0;
}

static int get_pub(EVP_PKEY *p, unsigned char pub[32])
{
	size_t len = 32;

	if (EVP_PKEY_get_raw_public_key(p, pub, &len) != 1 || len != 32)
		return st_error(ST_EX_DATAERR, "cannot derive public key");
	return 0;
}

int st_x25519_pub(const unsigned char priv[32], unsigned char pub[32])
{
	struct xcache *c = xlookup(priv);
	EVP_PKEY *p;
	int rc;

	if (c) {
		memcpy(pub, c->pub, 32);
		return 0;
	}
	if (!(p = raw_priv(EVP_PKEY_X25519, priv)))
		return -1;
	rc = get_pub(p, pub);
	EVP_PKEY_free(p);
	return rc;
}

int st_x25519_keygen(unsigned char priv[32], unsigned char pub[32])
{
	if (st_random(priv, 32) < 0)
		return -1;
	if (st_x25519_pub(priv, pub) < 0) {
		st_wipe(priv, 32);
		return -1;
	}
	return 0;
}

int st_x25519(const unsigned char priv[32], const unsigned char peer[32],
              unsigned char out[32])
{
	static const unsigned char zero[32];
	struct xcache *x = xlookup(priv);
	EVP_PKEY *p = NULL, *q = NULL;
	EVP_PKEY_CTX *c = NULL;
	size_t len = 32;
	int rc = -1;

	if (x && EVP_PKEY_up_ref(x->pkey) == 1)
		p = x->pkey;
	else if (!(p = raw_priv(EVP_PKEY_X25519, priv)))
		return -1;
	q = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
	if (!q) {
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
	EVP_PKEY_free(p);
	EVP_PKEY_free(q);
	return rc;
}

int st_ed25519_pub(const unsigned char seed[32], unsigned char pub[32])
{
	EVP_PKEY *p = raw_priv(EVP_PKEY_ED25519, seed);
	int rc;

	if (!p)
		return -1;
	rc = get_pub(p, pub);
	EVP_PKEY_free(p);
	return rc;
}

int st_ed25519_keygen(unsigned char seed[32], unsigned char pub[32])
{
	if (st_random(seed, 32) < 0)
		return -1;
	if (st_ed25519_pub(seed, pub) < 0) {
		st_wipe(seed, 32);
		return -1;
	}
	return 0;
}

int st_ed25519_sign(const unsigned char seed[32], const void *msg, size_t n,
                    unsigned char sig[64])
{
	EVP_PKEY *p = raw_priv(EVP_PKEY_ED25519, seed);
	EVP_MD_CTX *m = NULL;
	size_t len = 64;
	int rc = -1;

	if (!p)
		return -1;
	m = EVP_MD_CTX_new();
	if (!m || EVP_DigestSignInit(m, NULL, NULL, NULL, p) != 1 ||
	    EVP_DigestSign(m, sig, &len, msg, n) != 1 || len != 64)
		st_error(ST_EX_DATAERR, "Ed25519 signing failed");
	else
		rc = 0;
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(p);
	return rc;
}

int st_ed25519_verify(const unsigned char pub[32], const void *msg, size_t n,
                      const unsigned char sig[64])
{
	EVP_PKEY *p;
	EVP_MD_CTX *m = NULL;
	int rc = -1;

	p = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	if (!p)
		return st_error(ST_EX_DATAERR, "bad Ed25519 public key");
	m = EVP_MD_CTX_new();
	if (m && EVP_DigestVerifyInit(m, NULL, NULL, NULL, p) == 1 &&
	    EVP_DigestVerify(m, sig, 64, msg, n) == 1)
		rc = 0;
	else
		st_error(ST_EX_DATAERR, "bad signature");
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(p);
	return rc;
}

int st_hkdf_sha256(const void *ikm, size_t ikmlen, const void *salt,
                   size_t saltlen, const void *info, size_t infolen,
                   unsigned char *out, size_t outlen)
{
	static const unsigned char nosalt[1];
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM ps[5], *p = ps;
	int rc = -1;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	                                        "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	                                         (void *)ikm, ikmlen);
	/* an empty salt means HashLen zeros, which OpenSSL does by itself */
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	                                         saltlen ? (void *)salt
	                                                 : (void *)nosalt,
	                                         saltlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	                                         (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	if (c && EVP_KDF_derive(c, out, outlen, ps) == 1)
		rc = 0;
	else
		st_error(ST_EX_DATAERR, "HKDF failed");
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
	return rc;
}

int st_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
                   unsigned char out[32])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM ps[2];
	size_t len = 0;
	int rc = -1;

	ps[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                         "SHA256", 0);
	ps[1] = OSSL_PARAM_construct_end();
	if (c && EVP_MAC_init(c, key, keylen, ps) == 1 &&
	    EVP_MAC_update(c, msg, n) == 1 &&
	    EVP_MAC_final(c, out, &len, 32) == 1 && len == 32)
		rc = 0;
	else
		st_error(ST_EX_DATAERR, "HMAC failed");
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(mac);
	return rc;
}

static int digest(const char *name, const void *msg, size_t n,
                  unsigned char *out)
{
	if (EVP_Q_digest(NULL, name, NULL, msg, n, out, NULL) != 1)
		return st_error(ST_EX_DATAERR, "%s failed", name);
	return 0;
}

int st_sha256(const void *msg, size_t n, unsigned char out[32])
{
	return digest("SHA256", msg, n, out);
}

int st_sha512(const void *msg, size_t n, unsigned char out[64])
{
	return digest("SHA512", msg, n, out);
}

static int aead(int enc, const unsigned char key[32],
                const unsigned char nonce[12], const void *ad, size_t adlen,
                const unsigned char *in, size_t n, unsigned char *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len, rc = -1;
	size_t done = 0;

	if (!c || EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, key,
	                            nonce, enc) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16,
	                                (void *)(in + n)) != 1)
		goto out;
	if (adlen && EVP_CipherUpdate(c, NULL, &len, ad, (int)adlen) != 1)
		goto out;
	/* EVP takes int lengths: feed large inputs in slices */
	while (done < n) {
		size_t part = n - done > (1u << 30) ? (1u << 30) : n - done;

		if (EVP_CipherUpdate(c, out + done, &len, in + done,
		                     (int)part) != 1)
			goto out;
		done += part;
	}
	if (EVP_CipherFinal_ex(c, out + n, &len) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16,
	                               out + n) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int st_aead_seal(const unsigned char key[32], const unsigned char nonce[12],
                 const void *ad, size_t adlen, const void *in, size_t n,
                 unsigned char *out)
{
	if (aead(1, key, nonce, ad, adlen, in, n, out) < 0)
		return st_error(ST_EX_DATAERR, "encryption failed");
	return 0;
}

int st_aead_open(const unsigned char key[32], const unsigned char nonce[12],
                 const void *ad, size_t adlen, const void *in, size_t n,
                 unsigned char *out)
{
	if (n < 16)
		return st_error(ST_EX_DATAERR, "ciphertext too short");
	if (aead(0, key, nonce, ad, adlen, in, n - 16, out) < 0) {
		st_wipe(out, n - 16);
		return st_error(ST_EX_DATAERR, "decryption failed: "
		                "message not authentic");
	}
	return 0;
}
