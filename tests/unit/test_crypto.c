/*
 * test_crypto.c - known-answer vectors for every primitive of SPEC §4, each
 * beside a tampered twin that changes one byte of an input or of the
 * expected value and must no longer match (or must fail to verify).  A KAT
 * that passes alone proves little: the twin shows the comparison can fail.
 *
 * Sources: RFC 7748 (X25519), RFC 8032 §7.1 (Ed25519), RFC 5869 (HKDF),
 * RFC 8439 §2.8.2 (ChaCha20-Poly1305), RFC 4231 (HMAC-SHA256), FIPS 180
 * (SHA-256, SHA-512).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "st.h"

#define MAXV 256

/* Hex to bytes for the vectors; independent of st_hex_decode on purpose. */
static size_t unhex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s) / 2;

	assert_int_equal(strlen(s) % 2, 0);
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;

		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				fail_msg("bad hex in vector: %s", s);
		}
		out[i] = (unsigned char)v;
	}
	return n;
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---- X25519 (RFC 7748) ---- */

struct x25519_vec {
	const char *scalar, *u, *out;
};

/* RFC 7748 §5.2, the two single-iteration vectors */
static const struct x25519_vec x25519_52[] = {
	{ "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
	  "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
	  "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
	{ "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
	  "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
	  "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
};

static void x25519_kat(void **state)
{
	const struct x25519_vec *v = *state;
	unsigned char k[32], u[32], want[32], out[32];

	unhex(v->scalar, k, 32);
	unhex(v->u, u, 32);
	unhex(v->out, want, 32);
	assert_int_equal(st_x25519(k, u, out), 0);
	assert_memory_equal(out, want, 32);
}

static void x25519_kat_tampered(void **state)
{
	const struct x25519_vec *v = *state;
	unsigned char k[32], u[32], want[32], out[32];

	unhex(v->scalar, k, 32);
	unhex(v->u, u, 32);
	unhex(v->out, want, 32);
	/* byte 10: clear of the bits that clamping and masking discard */
	k[10] ^= 0x01;
	assert_int_equal(st_x25519(k, u, out), 0);
	assert_memory_not_equal(out, want, 32);
	k[10] ^= 0x01;
	u[10] ^= 0x01;
	assert_int_equal(st_x25519(k, u, out), 0);
	assert_memory_not_equal(out, want, 32);
	u[10] ^= 0x01;
	assert_int_equal(st_x25519(k, u, out), 0);
	want[31] ^= 0x80;
	assert_memory_not_equal(out, want, 32);
}

/* RFC 7748 §6.1 */
#define ALICE_PRIV "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PUB  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_PRIV   "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define DH_SHARED  "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

static void x25519_dh_rfc7748(void **state)
{
	unsigned char a[32], b[32], apub[32], bpub[32], k[32], out[32];

	(void)state;
	unhex(ALICE_PRIV, a, 32);
	unhex(BOB_PRIV, b, 32);
	unhex(DH_SHARED, k, 32);
	assert_int_equal(st_x25519_pub(a, out), 0);
	unhex(ALICE_PUB, apub, 32);
	assert_memory_equal(out, apub, 32);
	assert_int_equal(st_x25519_pub(b, out), 0);
	unhex(BOB_PUB, bpub, 32);
	assert_memory_equal(out, bpub, 32);
	assert_int_equal(st_x25519(a, bpub, out), 0);
	assert_memory_equal(out, k, 32);
	assert_int_equal(st_x25519(b, apub, out), 0);
	assert_memory_equal(out, k, 32);
}

static void x25519_dh_rfc7748_tampered(void **state)
{
	unsigned char a[32], b[32], apub[32], bpub[32], k[32], out[32];

	(void)state;
	unhex(ALICE_PRIV, a, 32);
	unhex(BOB_PRIV, b, 32);
	unhex(ALICE_PUB, apub, 32);
	unhex(BOB_PUB, bpub, 32);
	unhex(DH_SHARED, k, 32);
	a[16] ^= 0x04;
	assert_int_equal(st_x25519_pub(a, out), 0);
	assert_memory_not_equal(out, apub, 32);
	assert_int_equal(st_x25519(a, bpub, out), 0);
	assert_memory_not_equal(out, k, 32);
	a[16] ^= 0x04;
	bpub[5] ^= 0x20;
	assert_int_equal(st_x25519(a, bpub, out), 0);
	assert_memory_not_equal(out, k, 32);
	bpub[5] ^= 0x20;
	assert_int_equal(st_x25519(b, apub, out), 0);
	k[0] ^= 0x01;
	assert_memory_not_equal(out, k, 32);
}

/*
 * Points of small order (and non-canonical encodings of them): X25519 with
 * any of these gives all zeros, which SPEC §4 says must abort.
 */
static const char *const low_order[] = {
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	/* p - 1, p, p + 1 */
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

static void x25519_low_order_fails(void **state)
{
	unsigned char a[32], u[32], out[32];

	(void)state;
	unhex(ALICE_PRIV, a, 32);
	for (size_t i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
		unhex(low_order[i], u, 32);
		st_error_clear();
		memset(out, 0xa5, sizeof(out));
		if (st_x25519(a, u, out) != -1)
			fail_msg("low-order point %s accepted", low_order[i]);
		assert_int_equal(st_errcode(), ST_EX_DATAERR);
		assert_true(all_zero(out, 32));
	}
}

/* The twin: the same private key with an honest point succeeds. */
static void x25519_low_order_twin_ok(void **state)
{
	unsigned char a[32], u[32], out[32];

	(void)state;
	unhex(ALICE_PRIV, a, 32);
	unhex(low_order[2], u, 32);
	u[0] ^= 0x01;	/* e1eb7a... is not of low order */
	assert_int_equal(st_x25519(a, u, out), 0);
	assert_false(all_zero(out, 32));
	unhex(BOB_PUB, u, 32);
	assert_int_equal(st_x25519(a, u, out), 0);
}

/* ---- Ed25519 (RFC 8032 §7.1) ---- */

struct ed_vec {
	const char *seed, *pub, *msg, *sig;
};

static const struct ed_vec ed_vecs[] = {
	{ "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	  "",
	  "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	  "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b" },
	{ "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	  "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
	  "72",
	  "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
	  "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00" },
	{ "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	  "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
	  "af82",
	  "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
	  "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a" },
};

static void ed25519_kat(void **state)
{
	const struct ed_vec *v = *state;
	unsigned char seed[32], pub[32], sig[64], msg[8], out[64];
	size_t n;

	unhex(v->seed, seed, 32);
	unhex(v->pub, pub, 32);
	unhex(v->sig, sig, 64);
	n = unhex(v->msg, msg, sizeof(msg));
	assert_int_equal(st_ed25519_pub(seed, out), 0);
	assert_memory_equal(out, pub, 32);
	assert_int_equal(st_ed25519_sign(seed, msg, n, out), 0);
	assert_memory_equal(out, sig, 64);
	assert_int_equal(st_ed25519_verify(pub, msg, n, sig), 0);
}

static void ed25519_kat_tampered(void **state)
{
	const struct ed_vec *v = *state;
	unsigned char seed[32], pub[32], sig[64], msg[8], out[64];
	size_t n;

	unhex(v->seed, seed, 32);
	unhex(v->pub, pub, 32);
	unhex(v->sig, sig, 64);
	n = unhex(v->msg, msg, sizeof(msg));

	/* message: flip its first byte, or give TEST 1 one byte, not none */
	if (n) {
		msg[0] ^= 0x01;
		assert_int_equal(st_ed25519_verify(pub, msg, n, sig), -1);
		msg[0] ^= 0x01;
	} else {
		msg[0] = 0x00;
		assert_int_equal(st_ed25519_verify(pub, msg, 1, sig), -1);
	}
	assert_int_equal(st_errcode(), ST_EX_DATAERR);

	/* signature: one byte of R, then one byte of S */
	st_error_clear();
	sig[3] ^= 0x10;
	assert_int_equal(st_ed25519_verify(pub, msg, n, sig), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	sig[3] ^= 0x10;
	sig[40] ^= 0x01;
	assert_int_equal(st_ed25519_verify(pub, msg, n, sig), -1);
	sig[40] ^= 0x01;

	/* public key */
	pub[7] ^= 0x02;
	assert_int_equal(st_ed25519_verify(pub, msg, n, sig), -1);
	pub[7] ^= 0x02;

	/* seed: another key, another public key and signature */
	seed[20] ^= 0x80;
	assert_int_equal(st_ed25519_pub(seed, out), 0);
	assert_memory_not_equal(out, pub, 32);
	assert_int_equal(st_ed25519_sign(seed, msg, n, out), 0);
	assert_memory_not_equal(out, sig, 64);

	/* and the untouched vector still verifies: the twin flipped the result */
	assert_int_equal(st_ed25519_verify(pub, msg, n, sig), 0);
}

/* S + L encodes the same scalar: a verifier must refuse it (malleability). */
static void ed25519_rejects_s_plus_l(void **state)
{
	unsigned char pub[32], sig[64];

	(void)state;
	unhex(ed_vecs[0].pub, pub, 32);
	unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	      "4c8c7872aa064e049dbb3013fbf29380d25bf5f0595bbe24655141438e7a101b",
	      sig, 64);
	assert_int_equal(st_ed25519_verify(pub, "", 0, sig), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
}

static void ed25519_keygen_roundtrip(void **state)
{
	unsigned char seed[32], pub[32], pub2[32], sig[64];
	static const char m[] = "st-id-v1";

	(void)state;
	assert_int_equal(st_ed25519_keygen(seed, pub), 0);
	assert_int_equal(st_ed25519_pub(seed, pub2), 0);
	assert_memory_equal(pub, pub2, 32);
	assert_int_equal(st_ed25519_sign(seed, m, sizeof(m) - 1, sig), 0);
	assert_int_equal(st_ed25519_verify(pub, m, sizeof(m) - 1, sig), 0);
	assert_int_equal(st_ed25519_verify(pub, m, sizeof(m) - 2, sig), -1);
}

/* ---- HKDF-SHA256 (RFC 5869 A.1-A.3) ---- */

struct hkdf_vec {
	const char *ikm, *salt, *info, *okm;
};

static const struct hkdf_vec hkdf_vecs[] = {
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
	  "000102030405060708090a0b0c",
	  "f0f1f2f3f4f5f6f7f8f9",
	  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	  "34007208d5b887185865" },
	{ "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	  "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	  "404142434445464748494a4b4c4d4e4f",
	  "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	  "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	  "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
	  "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	  "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	  "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
	  "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
	  "cc30c58179ec3e87c14c01d5c1f3434f1d87" },
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
	  "",
	  "",
	  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	  "9d201395faa4b61a96c8" },
};

struct hkdf_in {
	unsigned char ikm[MAXV], salt[MAXV], info[MAXV], okm[MAXV];
	size_t ikmlen, saltlen, infolen, okmlen;
};

static void hkdf_load(const struct hkdf_vec *v, struct hkdf_in *in)
{
	in->ikmlen = unhex(v->ikm, in->ikm, MAXV);
	in->saltlen = unhex(v->salt, in->salt, MAXV);
	in->infolen = unhex(v->info, in->info, MAXV);
	in->okmlen = unhex(v->okm, in->okm, MAXV);
}

static void hkdf_run(const struct hkdf_in *in, unsigned char *out)
{
	/* an empty salt or info goes in as NULL, as callers pass it */
	assert_int_equal(st_hkdf_sha256(in->ikm, in->ikmlen,
	                                in->saltlen ? in->salt : NULL,
	                                in->saltlen,
	                                in->infolen ? in->info : NULL,
	                                in->infolen, out, in->okmlen), 0);
}

static void hkdf_kat(void **state)
{
	struct hkdf_in in;
	unsigned char out[MAXV];

	hkdf_load(*state, &in);
	hkdf_run(&in, out);
	assert_memory_equal(out, in.okm, in.okmlen);
}

static void hkdf_kat_tampered(void **state)
{
	struct hkdf_in in;
	unsigned char out[MAXV];

	hkdf_load(*state, &in);
	in.ikm[0] ^= 0x01;
	hkdf_run(&in, out);
	assert_memory_not_equal(out, in.okm, in.okmlen);
	in.ikm[0] ^= 0x01;
	if (in.saltlen) {
		in.salt[in.saltlen - 1] ^= 0x01;
		hkdf_run(&in, out);
		assert_memory_not_equal(out, in.okm, in.okmlen);
		in.salt[in.saltlen - 1] ^= 0x01;
	} else {
		/* A.3's empty salt: a 1-byte salt 0x01 is another key */
		in.salt[0] = 0x01;
		in.saltlen = 1;
		hkdf_run(&in, out);
		assert_memory_not_equal(out, in.okm, in.okmlen);
		in.saltlen = 0;
	}
	if (in.infolen) {
		in.info[0] ^= 0x80;
		hkdf_run(&in, out);
		assert_memory_not_equal(out, in.okm, in.okmlen);
		in.info[0] ^= 0x80;
	}
	hkdf_run(&in, out);
	in.okm[in.okmlen - 1] ^= 0x01;
	assert_memory_not_equal(out, in.okm, in.okmlen);
}

/* RFC 5869 §2.2: an absent salt is HashLen zeros; both spellings agree. */
static void hkdf_empty_salt_is_zeros(void **state)
{
	static const unsigned char zeros[32];
	unsigned char ikm[22], a[42], b[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	assert_int_equal(st_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, NULL, 0,
	                                a, sizeof(a)), 0);
	assert_int_equal(st_hkdf_sha256(ikm, sizeof(ikm), zeros, 32, NULL, 0,
	                                b, sizeof(b)), 0);
	assert_memory_equal(a, b, sizeof(a));
}

/* ---- ChaCha20-Poly1305 (RFC 8439 §2.8.2) ---- */

static const char sunscreen[] =
	"Ladies and Gentlemen of the class of '99: If I could offer you only "
	"one tip for the future, sunscreen would be it.";
#define AEAD_AAD   "50515253c0c1c2c3c4c5c6c7"
#define AEAD_NONCE "070000004041424344454647"
#define AEAD_CT \
	"d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" \
	"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" \
	"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" \
	"3ff4def08e4b7a9de576d26586cec64b6116"
#define AEAD_TAG   "1ae10b594f09e26a7e902ecbd0600691"

struct aead_in {
	unsigned char key[32], nonce[12], aad[12], ct[MAXV];
	size_t ptlen, ctlen;
};

static void aead_load(struct aead_in *v)
{
	for (int i = 0; i < 32; i++)
		v->key[i] = (unsigned char)(0x80 + i);
	unhex(AEAD_NONCE, v->nonce, 12);
	unhex(AEAD_AAD, v->aad, 12);
	v->ptlen = sizeof(sunscreen) - 1;
	v->ctlen = unhex(AEAD_CT AEAD_TAG, v->ct, MAXV);
	assert_int_equal(v->ptlen, 114);
	assert_int_equal(v->ctlen, v->ptlen + ST_AEAD_TAG_LEN);
}

static void aead_kat(void **state)
{
	struct aead_in v;
	unsigned char out[MAXV];

	(void)state;
	aead_load(&v);
	assert_int_equal(st_aead_seal(v.key, v.nonce, v.aad, 12, sunscreen,
	                              v.ptlen, out), 0);
	assert_memory_equal(out, v.ct, v.ctlen);
	memset(out, 0, sizeof(out));
	assert_int_equal(st_aead_open(v.key, v.nonce, v.aad, 12, v.ct,
	                              v.ctlen, out), 0);
	assert_memory_equal(out, sunscreen, v.ptlen);
}

/* One flipped bit, then st_aead_open must fail and wipe what it wrote. */
static void aead_open_must_fail(struct aead_in *v)
{
	unsigned char out[MAXV];

	st_error_clear();
	memset(out, 0xa5, sizeof(out));
	assert_int_equal(st_aead_open(v->key, v->nonce, v->aad, 12, v->ct,
	                              v->ctlen, out), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_true(all_zero(out, v->ptlen));
}

static void aead_kat_tampered(void **state)
{
	struct aead_in v;
	unsigned char out[MAXV], ct2[MAXV];

	(void)state;
	aead_load(&v);
	v.ct[0] ^= 0x01;		/* ciphertext, first byte */
	aead_open_must_fail(&v);
	v.ct[0] ^= 0x01;
	v.ct[v.ptlen - 1] ^= 0x80;	/* ciphertext, last byte */
	aead_open_must_fail(&v);
	v.ct[v.ptlen - 1] ^= 0x80;
	v.ct[v.ptlen] ^= 0x01;		/* tag, first byte */
	aead_open_must_fail(&v);
	v.ct[v.ptlen] ^= 0x01;
	v.ct[v.ctlen - 1] ^= 0x40;	/* tag, last byte */
	aead_open_must_fail(&v);
	v.ct[v.ctlen - 1] ^= 0x40;
	v.aad[11] ^= 0x01;		/* associated data */
	aead_open_must_fail(&v);
	v.aad[11] ^= 0x01;
	v.nonce[0] ^= 0x01;		/* nonce */
	aead_open_must_fail(&v);
	v.nonce[0] ^= 0x01;
	v.key[31] ^= 0x01;		/* key */
	aead_open_must_fail(&v);
	v.key[31] ^= 0x01;

	/* sealing a changed plaintext gives another ciphertext */
	memcpy(out, sunscreen, v.ptlen);
	out[0] ^= 0x01;
	assert_int_equal(st_aead_seal(v.key, v.nonce, v.aad, 12, out, v.ptlen,
	                              ct2), 0);
	assert_memory_not_equal(ct2, v.ct, v.ctlen);

	/* everything restored: it opens again */
	assert_int_equal(st_aead_open(v.key, v.nonce, v.aad, 12, v.ct,
	                              v.ctlen, out), 0);
}

static void aead_short_and_empty(void **state)
{
	struct aead_in v;
	unsigned char ct[16], out[16];

	(void)state;
	aead_load(&v);
	/* fewer bytes than a tag */
	assert_int_equal(st_aead_open(v.key, v.nonce, NULL, 0, v.ct, 15, out),
	                 -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	/* an empty message is just a tag, and still authenticates the AD */
	assert_int_equal(st_aead_seal(v.key, v.nonce, v.aad, 12, "", 0, ct), 0);
	assert_int_equal(st_aead_open(v.key, v.nonce, v.aad, 12, ct, 16, out),
	                 0);
	assert_int_equal(st_aead_open(v.key, v.nonce, NULL, 0, ct, 16, out), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
}

/* ---- HMAC-SHA256 (RFC 4231) ---- */

struct hmac_vec {
	const char *key, *data, *mac;
};

#define AA131 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaa"

static const struct hmac_vec hmac_vecs[] = {
	/* 1: "Hi There" */
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
	  "4869205468657265",
	  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
	/* 2: "Jefe", "what do ya want for nothing?" */
	{ "4a656665",
	  "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
	/* 3 */
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	  "dddddddddddddddddddddddddddddddddddd",
	  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
	/* 4 */
	{ "0102030405060708090a0b0c0d0e0f10111213141516171819",
	  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
	  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
	  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
	/* 6: a key longer than the block is hashed first */
	{ AA131,
	  "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
	  "65204b6579202d2048617368204b6579204669727374",
	  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
};

struct hmac_in {
	unsigned char key[MAXV], data[MAXV], mac[32];
	size_t keylen, datalen;
};

static void hmac_load(const struct hmac_vec *v, struct hmac_in *in)
{
	in->keylen = unhex(v->key, in->key, MAXV);
	in->datalen = unhex(v->data, in->data, MAXV);
	assert_int_equal(unhex(v->mac, in->mac, 32), 32);
}

static void hmac_kat(void **state)
{
	struct hmac_in in;
	unsigned char out[32];

	hmac_load(*state, &in);
	assert_int_equal(st_hmac_sha256(in.key, in.keylen, in.data, in.datalen,
	                                out), 0);
	assert_memory_equal(out, in.mac, 32);
}

static void hmac_kat_tampered(void **state)
{
	struct hmac_in in;
	unsigned char out[32];

	hmac_load(*state, &in);
	in.key[0] ^= 0x01;
	assert_int_equal(st_hmac_sha256(in.key, in.keylen, in.data, in.datalen,
	                                out), 0);
	assert_memory_not_equal(out, in.mac, 32);
	in.key[0] ^= 0x01;
	in.data[in.datalen - 1] ^= 0x01;
	assert_int_equal(st_hmac_sha256(in.key, in.keylen, in.data, in.datalen,
	                                out), 0);
	assert_memory_not_equal(out, in.mac, 32);
	in.data[in.datalen - 1] ^= 0x01;
	assert_int_equal(st_hmac_sha256(in.key, in.keylen, in.data, in.datalen,
	                                out), 0);
	in.mac[16] ^= 0x01;
	assert_memory_not_equal(out, in.mac, 32);
}

/* ---- SHA-256, SHA-512 (FIPS 180-4 examples) ---- */

#define SHA256_ABC \
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA512_ABC \
	"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" \
	"2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"

static void sha_kat(void **state)
{
	unsigned char want[64], out[64];
	static const char two_blocks[] =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	(void)state;
	unhex(SHA256_ABC, want, 32);
	assert_int_equal(st_sha256("abc", 3, out), 0);
	assert_memory_equal(out, want, 32);
	unhex(SHA512_ABC, want, 64);
	assert_int_equal(st_sha512("abc", 3, out), 0);
	assert_memory_equal(out, want, 64);
	unhex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
	      want, 32);
	assert_int_equal(st_sha256(two_blocks, sizeof(two_blocks) - 1, out), 0);
	assert_memory_equal(out, want, 32);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	      want, 32);
	assert_int_equal(st_sha256(NULL, 0, out), 0);
	assert_memory_equal(out, want, 32);
}

static void sha_kat_tampered(void **state)
{
	unsigned char want[64], out[64];

	(void)state;
	unhex(SHA256_ABC, want, 32);
	assert_int_equal(st_sha256("abd", 3, out), 0);
	assert_memory_not_equal(out, want, 32);
	assert_int_equal(st_sha256("abc", 3, out), 0);
	want[31] ^= 0x01;
	assert_memory_not_equal(out, want, 32);
	unhex(SHA512_ABC, want, 64);
	assert_int_equal(st_sha512("abd", 3, out), 0);
	assert_memory_not_equal(out, want, 64);
	assert_int_equal(st_sha512("abc", 3, out), 0);
	want[0] ^= 0x80;
	assert_memory_not_equal(out, want, 64);
}

/* ---- odds and ends ---- */

static void random_and_memeq(void **state)
{
	unsigned char a[32], b[32];

	(void)state;
	assert_int_equal(st_random(a, sizeof(a)), 0);
	assert_int_equal(st_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, 32);
	assert_int_equal(st_random(a, 0), 0);
	memcpy(b, a, 32);
	assert_int_equal(st_memeq_ct(a, b, 32), 0);
	b[31] ^= 0x01;
	assert_int_not_equal(st_memeq_ct(a, b, 32), 0);
	assert_int_equal(st_memeq_ct(a, b, 31), 0);
}

static void x25519_keygen_agrees(void **state)
{
	unsigned char a[32], apub[32], b[32], bpub[32], k1[32], k2[32];

	(void)state;
	assert_int_equal(st_x25519_keygen(a, apub), 0);
	assert_int_equal(st_x25519_keygen(b, bpub), 0);
	assert_int_equal(st_x25519(a, bpub, k1), 0);
	assert_int_equal(st_x25519(b, apub, k2), 0);
	assert_memory_equal(k1, k2, 32);
}

#define T(name, fn, vec) \
	{ name, fn, NULL, NULL, (void *)(vec) }

int main(void)
{
	const struct CMUnitTest tests[] = {
		T("x25519 rfc7748 5.2 vector 1", x25519_kat, &x25519_52[0]),
		T("x25519 rfc7748 5.2 vector 1 tampered", x25519_kat_tampered,
		  &x25519_52[0]),
		T("x25519 rfc7748 5.2 vector 2", x25519_kat, &x25519_52[1]),
		T("x25519 rfc7748 5.2 vector 2 tampered", x25519_kat_tampered,
		  &x25519_52[1]),
		T("x25519 rfc7748 6.1 dh", x25519_dh_rfc7748, NULL),
		T("x25519 rfc7748 6.1 dh tampered", x25519_dh_rfc7748_tampered,
		  NULL),
		T("x25519 low-order points fail", x25519_low_order_fails, NULL),
		T("x25519 low-order twin: honest points work",
		  x25519_low_order_twin_ok, NULL),
		T("x25519 keygen agrees", x25519_keygen_agrees, NULL),
		T("ed25519 rfc8032 test 1", ed25519_kat, &ed_vecs[0]),
		T("ed25519 rfc8032 test 1 tampered", ed25519_kat_tampered,
		  &ed_vecs[0]),
		T("ed25519 rfc8032 test 2", ed25519_kat, &ed_vecs[1]),
		T("ed25519 rfc8032 test 2 tampered", ed25519_kat_tampered,
		  &ed_vecs[1]),
		T("ed25519 rfc8032 test 3", ed25519_kat, &ed_vecs[2]),
		T("ed25519 rfc8032 test 3 tampered", ed25519_kat_tampered,
		  &ed_vecs[2]),
		T("ed25519 rejects S+L", ed25519_rejects_s_plus_l, NULL),
		T("ed25519 keygen round trip", ed25519_keygen_roundtrip, NULL),
		T("hkdf rfc5869 A.1", hkdf_kat, &hkdf_vecs[0]),
		T("hkdf rfc5869 A.1 tampered", hkdf_kat_tampered, &hkdf_vecs[0]),
		T("hkdf rfc5869 A.2", hkdf_kat, &hkdf_vecs[1]),
		T("hkdf rfc5869 A.2 tampered", hkdf_kat_tampered, &hkdf_vecs[1]),
		T("hkdf rfc5869 A.3", hkdf_kat, &hkdf_vecs[2]),
		T("hkdf rfc5869 A.3 tampered", hkdf_kat_tampered, &hkdf_vecs[2]),
		T("hkdf empty salt is zeros", hkdf_empty_salt_is_zeros, NULL),
		T("aead rfc8439 2.8.2", aead_kat, NULL),
		T("aead rfc8439 2.8.2 tampered", aead_kat_tampered, NULL),
		T("aead short input and empty message", aead_short_and_empty,
		  NULL),
		T("hmac rfc4231 case 1", hmac_kat, &hmac_vecs[0]),
		T("hmac rfc4231 case 1 tampered", hmac_kat_tampered,
		  &hmac_vecs[0]),
		T("hmac rfc4231 case 2", hmac_kat, &hmac_vecs[1]),
		T("hmac rfc4231 case 2 tampered", hmac_kat_tampered,
		  &hmac_vecs[1]),
		T("hmac rfc4231 case 3", hmac_kat, &hmac_vecs[2]),
		T("hmac rfc4231 case 3 tampered", hmac_kat_tampered,
		  &hmac_vecs[2]),
		T("hmac rfc4231 case 4", hmac_kat, &hmac_vecs[3]),
		T("hmac rfc4231 case 4 tampered", hmac_kat_tampered,
		  &hmac_vecs[3]),
		T("hmac rfc4231 case 6", hmac_kat, &hmac_vecs[4]),
		T("hmac rfc4231 case 6 tampered", hmac_kat_tampered,
		  &hmac_vecs[4]),
		T("sha256 sha512 fips180", sha_kat, NULL),
		T("sha256 sha512 fips180 tampered", sha_kat_tampered, NULL),
		T("random and constant-time compare", random_and_memeq, NULL),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
