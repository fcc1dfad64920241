/*
 * test_golden.c - libst against shared/testkit/st/golden.json, SPEC §4-5
 * computed step by step by an independent implementation from fixed keys
 * and fixed "random" values.  Every value in the file is checked, each
 * with a tampered twin that must no longer match or must fail.
 *
 * ST_TESTKIT names the testkit directory (tests/run.sh exports it);
 * the default is ../shared/testkit relative to the repository root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "st.h"

static struct st_json *G;       /* the golden file */

/* ---- helpers ---- */

/* The member at a dotted path ("identity.alice.bind", "messages.0.hdr");
 * fails the test when missing. */
static const struct st_json *at(const char *path)
{
	const struct st_json *o = G;
	char buf[128], *save, *k;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
		if (st_json_is_array(o))
			o = st_json_array_get(o, strtoul(k, NULL, 10));
		else
			o = st_json_get(o, k);
		if (!o)
			fail_msg("golden.json has no %s", path);
	}
	return o;
}

static const char *str(const char *path)
{
	const char *s;

	if (st_json_as_str(at(path), &s, NULL) < 0)
		fail_msg("%s is not a string", path);
	return s;
}

static int64_t num(const char *path)
{
	int64_t v;

	if (st_json_as_int(at(path), INT64_MIN, INT64_MAX, &v) < 0)
		fail_msg("%s is not an integer", path);
	return v;
}

/* Hex at path, exactly n bytes. */
static void hex(const char *path, unsigned char *out, size_t n)
{
	if (st_hex_decode(str(path), out, n) < 0)
		fail_msg("%s is not %zu bytes of hex", path, n);
}

/* Hex at path of any length; malloc'd. */
static unsigned char *hexa(const char *path, size_t *n)
{
	const char *s = str(path);
	unsigned char *p;

	*n = strlen(s) / 2;
	p = malloc(*n + 1);
	if (st_hex_decode(s, p, *n) < 0)
		fail_msg("%s is not hex", path);
	return p;
}

/* Compare got with the hex at path, showing both on a mismatch. */
static void eqhex(const char *path, const void *got, size_t n)
{
	size_t len;
	unsigned char *want = hexa(path, &len);

	if (len != n || memcmp(want, got, n) != 0) {
		char *g = malloc(2 * n + 1);

		st_hex_encode(got, n, g);
		print_error("%s:\n  want %s\n  got  %s\n", path, str(path), g);
		free(g);
		free(want);
		fail();
	}
	free(want);
}

/* Compare a JSON value (as compact JSON) with the golden one at path. */
static void eqjson(const char *path, const struct st_json *got)
{
	char *w = st_json_dump(at(path)), *g = st_json_dump(got);

	if (strcmp(w, g) != 0) {
		print_error("%s:\n  want %s\n  got  %s\n", path, w, g);
		free(w);
		free(g);
		fail();
	}
	free(w);
	free(g);
}

static int jsoneq(const struct st_json *a, const struct st_json *b)
{
	char *x = st_json_dump(a), *y = st_json_dump(b);
	int eq = strcmp(x, y) == 0;

	free(x);
	free(y);
	return eq;
}

/* A private copy of the golden value at path, for tampering. */
static struct st_json *copy(const char *path)
{
	char *s = st_json_dump(at(path));
	struct st_json *j = st_json_parse(s, strlen(s), 1 << 20, "copy");

	free(s);
	assert_non_null(j);
	return j;
}

/* Flip one bit in the base64url string member key of o (a tampered
 * twin), keeping the encoding canonical: the first character changes. */
static void flip_b64(struct st_json *o, const char *key)
{
	const char *s;
	char *t;

	assert_int_equal(st_json_get_str(o, key, &s, NULL), 0);
	t = strdup(s);
	t[0] = t[0] == 'A' ? 'B' : 'A';
	st_json_set_str(o, key, t);
	free(t);
}

/* Change the character at pos of base64url member key (not the last one,
 * so the encoding stays canonical). */
static void flip_b64_at(struct st_json *o, const char *key, size_t pos)
{
	const char *s;
	char *t;

	assert_int_equal(st_json_get_str(o, key, &s, NULL), 0);
	t = strdup(s);
	assert_true(pos + 1 < strlen(t));
	t[pos] = t[pos] == 'A' ? 'B' : 'A';
	st_json_set_str(o, key, t);
	free(t);
}

static void load_identity(const char *who, struct st_identity *id)
{
	char p[64];
	unsigned char seed[32], x[32];

	snprintf(p, sizeof(p), "identity.%s.iks_seed", who);
	hex(p, seed, 32);
	snprintf(p, sizeof(p), "identity.%s.ikd_priv", who);
	hex(p, x, 32);
	assert_int_equal(st_identity_from_secrets(id, seed, x), 0);
}

static void load_bundle(struct st_bundle *b)
{
	assert_int_equal(st_bundle_parse(at("bundle.relay_json"), b), 0);
}

/* ---- setup ---- */

static int setup(void **state)
{
	const char *kit = getenv("ST_TESTKIT");
	char path[4096];
	unsigned char *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/st/golden.json",
	         kit && *kit ? kit : "../shared/testkit");
	if (st_read_file(path, 1 << 20, &buf, &len) < 0) {
		fprintf(stderr, "cannot read %s: %s\n", path, st_errmsg());
		return -1;
	}
	G = st_json_parse((char *)buf, len, 1 << 20, path);
	free(buf);
	if (!G) {
		fprintf(stderr, "%s\n", st_errmsg());
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	st_json_free(G);
	return 0;
}

/* ---- identities ---- */

static void check_identity(const char *who)
{
	struct st_identity id, bad;
	struct st_identity_pub pub;
	struct st_json *j, *t;
	unsigned char enc[ST_ID_ENC_LEN], in[40], seed[32], x[32];
	char p[64], ik[ST_TO_IK_LEN + 1];

	load_identity(who, &id);
#define P(s) (snprintf(p, sizeof(p), "identity.%s." s, who), p)
	eqhex(P("iks_pub"), id.pub.ed25519, 32);
	eqhex(P("ikd_pub"), id.pub.x25519, 32);
	st_identity_encode(&id.pub, enc);
	eqhex(P("encoding"), enc, sizeof(enc));
	memcpy(in, "st-id-v1", 8);
	memcpy(in + 8, id.pub.x25519, 32);
	eqhex(P("bind_input"), in, sizeof(in));
	eqhex(P("bind"), id.pub.bind, 64);
	assert_int_equal(st_identity_verify(&id.pub), 0);
	st_identity_to_ik(&id.pub, ik);
	assert_string_equal(ik, str(P("to_ik")));
	j = st_identity_to_json(&id.pub);
	eqjson(P("relay_json"), j);
	st_json_free(j);
	assert_int_equal(st_identity_from_json(at(P("relay_json")), &pub), 0);
	assert_memory_equal(&pub, &id.pub, sizeof(pub));

	/* tampered twins */
	hex(P("iks_seed"), seed, 32);
	hex(P("ikd_priv"), x, 32);
	seed[0] ^= 1;
	assert_int_equal(st_identity_from_secrets(&bad, seed, x), 0);
	assert_memory_not_equal(bad.pub.ed25519, id.pub.ed25519, 32);
	assert_memory_not_equal(bad.pub.bind, id.pub.bind, 64);
	seed[0] ^= 1;
	x[5] ^= 0x40;
	assert_int_equal(st_identity_from_secrets(&bad, seed, x), 0);
	assert_memory_not_equal(bad.pub.x25519, id.pub.x25519, 32);
	st_identity_to_ik(&bad.pub, ik);
	assert_string_not_equal(ik, str(P("to_ik")));
	pub = id.pub;
	pub.bind[10] ^= 1;
	assert_int_equal(st_identity_verify(&pub), -1);
	pub = id.pub;
	pub.x25519[0] ^= 1;             /* a swapped DH key breaks the bind */
	assert_int_equal(st_identity_verify(&pub), -1);
	for (int k = 0; k < 3; k++) {
		static const char *const f[] = { "ed25519", "x25519", "bind" };

		t = copy(P("relay_json"));
		flip_b64(t, f[k]);
		assert_int_equal(st_identity_from_json(t, &pub), -1);
		st_json_free(t);
	}
#undef P
	st_identity_wipe(&id);
	st_identity_wipe(&bad);
}

static void test_identity(void **state)
{
	check_identity("alice");
	check_identity("bob");
}

/* Secret forms round-trip (not in golden.json, but they hold its keys). */
static void test_identity_secret_json(void **state)
{
	struct st_identity id, back;
	struct st_json *j;

	load_identity("alice", &id);
	j = st_identity_secret_to_json(&id);
	assert_int_equal(st_identity_secret_from_json(j, &back), 0);
	assert_memory_equal(&id, &back, sizeof(id));
	flip_b64(j, "x25519");
	assert_int_equal(st_identity_secret_from_json(j, &back), 0);
	assert_memory_not_equal(&id.pub, &back.pub, sizeof(id.pub));
	st_json_free_secret(j);
}

/* ---- the bundle ---- */

static void test_bundle(void **state)
{
	struct st_identity bob;
	struct st_spk spk, spk2;
	struct st_opk opk, opk2;
	struct st_bundle b, b2;
	struct st_json *j, *t;
	unsigned char priv[32], in[45];

	load_identity("bob", &bob);
	hex("bundle.spk.priv", priv, 32);
	assert_int_equal(st_spk_generate(&bob, (uint32_t)num("bundle.spk.id"),
	                                 priv, 0, &spk), 0);
	eqhex("bundle.spk.pub", spk.pub, 32);
	memcpy(in, "st-spk-v1\0\0\0\1", 13);
	memcpy(in + 13, spk.pub, 32);
	eqhex("bundle.spk.sig_input", in, sizeof(in));
	eqhex("bundle.spk.sig", spk.sig, 64);
	assert_int_equal(st_spk_verify(bob.pub.ed25519, 1, spk.pub, spk.sig), 0);
	hex("bundle.opk.priv", priv, 32);
	assert_int_equal(st_opk_generate((uint32_t)num("bundle.opk.id"), priv,
	                                 &opk), 0);
	eqhex("bundle.opk.pub", opk.pub, 32);

	/* the relay's bundle, both ways */
	memset(&b, 0, sizeof(b));
	strcpy(b.user, "bob");
	b.id = bob.pub;
	b.spk_id = spk.id;
	memcpy(b.spk, spk.pub, 32);
	memcpy(b.spk_sig, spk.sig, 64);
	b.has_opk = 1;
	b.opk_id = opk.id;
	memcpy(b.opk, opk.pub, 32);
	j = st_bundle_to_json(&b);
	eqjson("bundle.relay_json", j);
	st_json_free(j);
	j = st_spk_to_json(&spk);
	eqjson("bundle.relay_json.spk", j);
	st_json_free(j);
	j = st_opk_to_json(&opk);
	eqjson("bundle.relay_json.opk", j);
	st_json_free(j);
	load_bundle(&b2);
	assert_memory_equal(&b, &b2, sizeof(b));

	/* the secret forms round-trip */
	j = st_spk_secret_to_json(&spk);
	assert_int_equal(st_spk_secret_from_json(j, &spk2), 0);
	assert_memory_equal(&spk, &spk2, sizeof(spk));
	st_json_free_secret(j);
	j = st_opk_secret_to_json(&opk);
	assert_int_equal(st_opk_secret_from_json(j, &opk2), 0);
	assert_memory_equal(&opk, &opk2, sizeof(opk));
	st_json_free_secret(j);

	/* tampered twins: any signed byte, or a wrong id, fails to parse */
	assert_int_equal(st_spk_verify(bob.pub.ed25519, 2, spk.pub, spk.sig), -1);
	spk.sig[3] ^= 1;
	assert_int_equal(st_spk_verify(bob.pub.ed25519, 1, spk.pub, spk.sig), -1);
	t = copy("bundle.relay_json");
	flip_b64((struct st_json *)st_json_get(t, "spk"), "sig");
	assert_int_equal(st_bundle_parse(t, &b2), -1);
	st_json_free(t);
	t = copy("bundle.relay_json");
	flip_b64((struct st_json *)st_json_get(t, "spk"), "pub");
	assert_int_equal(st_bundle_parse(t, &b2), -1);
	st_json_free(t);
	t = copy("bundle.relay_json");
	st_json_set_int((struct st_json *)st_json_get(t, "spk"), "id", 2);
	assert_int_equal(st_bundle_parse(t, &b2), -1);
	st_json_free(t);
	t = copy("bundle.relay_json");
	flip_b64((struct st_json *)st_json_get(t, "identity"), "x25519");
	assert_int_equal(st_bundle_parse(t, &b2), -1);
	st_json_free(t);
	t = copy("bundle.relay_json");
	st_json_set_str(t, "user", "Bob");
	assert_int_equal(st_bundle_parse(t, &b2), -1);
	st_json_free(t);
	/* no one-time prekey left: opk null */
	t = copy("bundle.relay_json");
	st_json_set_null(t, "opk");
	assert_int_equal(st_bundle_parse(t, &b2), 0);
	assert_int_equal(b2.has_opk, 0);
	st_json_free(t);
	st_identity_wipe(&bob);
}

/* ---- X3DH ---- */

static void test_x3dh(void **state)
{
	struct st_identity alice, bob;
	struct st_bundle b;
	unsigned char ek[32], ekpub[32], spk[32], opk[32], sk[32], sk2[32];
	unsigned char dh[128], ikm[160], ad[ST_X3DH_AD_MAX], ea[65], eb[65];
	size_t adlen;

	load_identity("alice", &alice);
	load_identity("bob", &bob);
	load_bundle(&b);
	hex("x3dh.ek_priv", ek, 32);
	hex("bundle.spk.priv", spk, 32);
	hex("bundle.opk.priv", opk, 32);

	/* the DH outputs, in SPEC order */
	assert_int_equal(st_x25519_pub(ek, ekpub), 0);
	eqhex("x3dh.ek_pub", ekpub, 32);
	assert_int_equal(st_x25519(alice.x25519_priv, b.spk, dh), 0);
	eqhex("x3dh.dh1", dh, 32);
	assert_int_equal(st_x25519(ek, b.id.x25519, dh + 32), 0);
	eqhex("x3dh.dh2", dh + 32, 32);
	assert_int_equal(st_x25519(ek, b.spk, dh + 64), 0);
	eqhex("x3dh.dh3", dh + 64, 32);
	assert_int_equal(st_x25519(ek, b.opk, dh + 96), 0);
	eqhex("x3dh.dh4", dh + 96, 32);
	memset(ikm, 0xff, 32);
	memcpy(ikm + 32, dh, 128);
	eqhex("x3dh.ikm", ikm, sizeof(ikm));
	assert_int_equal(st_x3dh_kdf(dh, 128, sk), 0);
	eqhex("x3dh.sk", sk, 32);

	/* both roles */
	assert_int_equal(st_x3dh_initiate(&alice, &b, ek, sk, ekpub), 0);
	eqhex("x3dh.sk", sk, 32);
	eqhex("x3dh.ek_pub", ekpub, 32);
	assert_int_equal(st_x3dh_respond(&bob, spk, opk, alice.pub.x25519,
	                                 ekpub, sk2), 0);
	eqhex("x3dh.sk", sk2, 32);
	b.has_opk = 0;
	assert_int_equal(st_x3dh_initiate(&alice, &b, ek, sk, ekpub), 0);
	eqhex("x3dh.sk_without_opk", sk, 32);
	assert_int_equal(st_x3dh_respond(&bob, spk, NULL, alice.pub.x25519,
	                                 ekpub, sk2), 0);
	eqhex("x3dh.sk_without_opk", sk2, 32);
	b.has_opk = 1;

	/* associated data */
	st_identity_encode(&alice.pub, ea);
	st_identity_encode(&bob.pub, eb);
	assert_int_equal(st_x3dh_ad("alice", ea, "bob", eb, ad, &adlen), 0);
	eqhex("x3dh.ad", ad, adlen);

	/* tampered twins */
	ek[0] ^= 1;
	assert_int_equal(st_x3dh_initiate(&alice, &b, ek, sk, ekpub), 0);
	assert_memory_not_equal(sk, sk2, 32);
	ek[0] ^= 1;
	opk[0] ^= 0x80;
	assert_int_equal(st_x3dh_respond(&bob, spk, opk, alice.pub.x25519,
	                                 ekpub, sk2), 0);
	dh[100] ^= 1;
	assert_int_equal(st_x3dh_kdf(dh, 128, sk), 0);
	assert_memory_not_equal(sk, sk2, 32);
	b.spk_sig[0] ^= 1;      /* signatures are checked before any DH */
	assert_int_equal(st_x3dh_initiate(&alice, &b, ek, sk, ekpub), -1);
	b.spk_sig[0] ^= 1;
	b.id.bind[0] ^= 1;
	assert_int_equal(st_x3dh_initiate(&alice, &b, ek, sk, ekpub), -1);
	b.id.bind[0] ^= 1;
	assert_int_equal(st_x3dh_ad("alice", eb, "bob", ea, ad, &adlen), 0);
	{
		size_t n;
		unsigned char *want = hexa("x3dh.ad", &n);

		assert_memory_not_equal(ad, want, n);
		free(want);
	}
	/* a low-order point (here the identity, 0) as the OPK aborts */
	memset(b.opk, 0, 32);
	assert_int_equal(st_x3dh_initiate(&alice, &b, ek, sk, ekpub), -1);
	st_identity_wipe(&alice);
	st_identity_wipe(&bob);
}

/* ---- the Double Ratchet conversation ---- */

struct keyq {
	unsigned char k[4][32];
	int n, i;
};

static int keyq_next(void *ctx, unsigned char priv[32])
{
	struct keyq *q = ctx;

	if (q->i >= q->n)
		return st_error(ST_EX_DATAERR, "test key queue empty");
	memcpy(priv, q->k[q->i++], 32);
	return 0;
}

/* A base64url member of session 0 in the state JSON, decoded. */
static void state_key(const struct st_ratchet *r, const char *key,
                      unsigned char out[32])
{
	struct st_json *j = st_ratchet_to_json(r), *s, *a;

	assert_int_equal(st_json_get_arr(j, "sessions", &a), 0);
	s = st_json_array_get(a, 0);
	assert_non_null(s);
	assert_int_equal(st_json_get_b64(s, key, out, 32), 0);
	st_json_free_secret(j);
}

static void check_state(const struct st_ratchet *r, const char *path)
{
	static const char *const k[][2] = {
		{ "rk", "rk" }, { "ckr", "ckr" }, { "cks", "cks" },
		{ "dhs", "new_dhs_priv" },
	};
	unsigned char v[32], pub[32];
	char p[96];

	for (size_t i = 0; i < 4; i++) {
		state_key(r, k[i][0], v);
		snprintf(p, sizeof(p), "%s.%s", path, k[i][1]);
		eqhex(p, v, 32);
	}
	state_key(r, "dhs", v);
	assert_int_equal(st_x25519_pub(v, pub), 0);
	snprintf(p, sizeof(p), "%s.new_dhs_pub", path);
	eqhex(p, pub, 32);
}

static char *dump_state(const struct st_ratchet *r)
{
	struct st_json *j = st_ratchet_to_json(r);
	char *s = st_json_dump(j);

	st_json_free_secret(j);
	return s;
}

/* The golden message with this label: its index in "messages". */
static char *msgpath(const char *label, const char *key)
{
	static char p[96];
	const struct st_json *a = at("messages");

	for (size_t i = 0; i < st_json_array_size(a); i++) {
		const char *l;

		st_json_get_str(st_json_array_get(a, i), "label", &l, NULL);
		if (strcmp(l, label) == 0) {
			snprintf(p, sizeof(p), "messages.%zu%s%s", i,
			         key ? "." : "", key ? key : "");
			return p;
		}
	}
	fail_msg("no message %s", label);
	return NULL;
}

/* at() with numeric path parts: messages.N.key */
static const struct st_json *mat(const char *label, const char *key)
{
	const struct st_json *a = at("messages"), *m = NULL;
	const char *l;

	for (size_t i = 0; i < st_json_array_size(a); i++) {
		m = st_json_array_get(a, i);
		st_json_get_str(m, "label", &l, NULL);
		if (strcmp(l, label) == 0)
			break;
		m = NULL;
	}
	if (!m)
		fail_msg("no message %s", label);
	return key ? st_json_get(m, key) : m;
}

static void mhex(const char *label, const char *key, const void *got,
                 size_t n)
{
	const char *s;
	char *g = malloc(2 * n + 1);

	assert_int_equal(st_json_as_str(mat(label, key), &s, NULL), 0);
	st_hex_encode(got, n, g);
	if (strcmp(s, g) != 0) {
		print_error("%s.%s:\n  want %s\n  got  %s\n", label, key, s, g);
		free(g);
		fail();
	}
	free(g);
}

static unsigned char *mbytes(const char *label, const char *key, size_t *n)
{
	const char *s;
	unsigned char *p;

	assert_int_equal(st_json_as_str(mat(label, key), &s, NULL), 0);
	*n = strlen(s) / 2;
	p = malloc(*n + 1);
	assert_int_equal(st_hex_decode(s, p, *n), 0);
	return p;
}

struct party {
	const char *name, *peer;
	struct st_identity id;
	struct st_identity_pub peer_id;
	struct st_ratchet *r;
	struct keyq q;
};

/*
 * Check every intermediate value of message label before sending it, then
 * send it and compare ciphertext and envelope.
 */
static void send_msg(struct party *from, const char *label)
{
	unsigned char ck[32], mk[32], key[32], nonce[12], hdr[40], dh[32];
	unsigned char ad[ST_X3DH_AD_MAX + 40], ea[65], eb[65], *pt, *ct, *enc;
	size_t ptlen, adlen, enclen;
	int64_t pn, nn;
	struct st_envelope env;
	struct st_json *j;
	struct st_msg m;
	const struct st_json *hf = mat(label, "header_fields");

	{
		const char *f, *t;

		assert_int_equal(st_json_as_str(mat(label, "from"), &f, NULL), 0);
		assert_int_equal(st_json_as_str(mat(label, "to"), &t, NULL), 0);
		assert_string_equal(f, from->name);
		assert_string_equal(t, from->peer);
	}
	/* the chain key about to be used and what derives from it */
	state_key(from->r, "cks", ck);
	mhex(label, "chain_key", ck, 32);
	assert_int_equal(st_dr_kdf_ck(ck, mk, ck), 0);
	mhex(label, "message_key", mk, 32);
	assert_int_equal(st_dr_message_keys(mk, key, nonce), 0);
	mhex(label, "aead_key", key, 32);
	mhex(label, "aead_nonce", nonce, 12);

	/* the header from its fields, and the associated data */
	assert_int_equal(st_json_get_int(hf, "pn", 0, UINT32_MAX, &pn), 0);
	assert_int_equal(st_json_get_int(hf, "n", 0, UINT32_MAX, &nn), 0);
	{
		const char *s;

		st_json_get_str(hf, "dh", &s, NULL);
		assert_int_equal(st_hex_decode(s, dh, 32), 0);
	}
	st_dr_header_encode(dh, (uint32_t)pn, (uint32_t)nn, hdr);
	mhex(label, "header", hdr, 40);
	{
		struct st_identity_pub *a = strcmp(from->name, "alice") ?
		                            &from->peer_id : &from->id.pub;
		struct st_identity_pub *b = strcmp(from->name, "alice") ?
		                            &from->id.pub : &from->peer_id;

		st_identity_encode(a, ea);
		st_identity_encode(b, eb);
		assert_int_equal(st_x3dh_ad("alice", ea, "bob", eb, ad, &adlen),
		                 0);
	}
	memcpy(ad + adlen, hdr, 40);
	mhex(label, "associated_data", ad, adlen + 40);

	/* the plaintext: the inner JSON, then zeros to 256 */
	pt = mbytes(label, "plaintext", &ptlen);
	{
		const char *inner;
		size_t il;

		assert_int_equal(st_json_as_str(mat(label, "inner_json"),
		                                &inner, &il), 0);
		assert_true(ptlen % 256 == 0 && ptlen >= il && ptlen - il < 256);
		assert_memory_equal(pt, inner, il);
		for (size_t i = il; i < ptlen; i++)
			assert_int_equal(pt[i], 0);
	}
	/* our encoder builds the same bytes from the decoded message */
	assert_int_equal(st_msg_decode(pt, ptlen, &m), 0);
	assert_int_equal(st_msg_encode(&m, &enc, &enclen), 0);
	assert_int_equal(enclen, ptlen);
	assert_memory_equal(enc, pt, ptlen);
	st_free_secret(enc, enclen);
	st_msg_free(&m);

	/* the AEAD alone, then the real thing */
	ct = malloc(ptlen + 16);
	assert_int_equal(st_aead_seal(key, nonce, ad, adlen + 40, pt, ptlen,
	                              ct), 0);
	mhex(label, "ciphertext", ct, ptlen + 16);
	free(ct);
	assert_int_equal(st_ratchet_encrypt(from->r, pt, ptlen, &env), 0);
	assert_memory_equal(env.hdr, hdr, 40);
	mhex(label, "ciphertext", env.ct, env.ctlen);
	j = st_envelope_to_json(&env);
	eqjson(msgpath(label, "envelope"), j);
	if (env.has_x3dh)
		eqjson("x3dh.envelope_x3dh", st_json_get(j, "x3dh"));
	st_json_free(j);
	st_envelope_free(&env);
	free(pt);
	st_wipe(mk, 32);
}

/* Decrypt message label as to, with tampered twins first. */
static void recv_msg(struct party *to, const struct st_prekey_set *pk,
                     const char *label, int new_session)
{
	const int64_t now = num("conventions.now_ms");
	struct st_envelope env, bad;
	struct st_ratchet_info info;
	unsigned char *pt, *want;
	size_t ptlen, wlen;
	char *before, *after;
	const char *ctb64;
	struct st_json *t;

	assert_int_equal(st_envelope_parse(mat(label, "envelope"), &env), 0);
	before = dump_state(to->r);

	/* tampered twins: ct, hdr, the x3dh part; each leaves no trace */
	for (int k = 0; k < 5; k++) {
		t = copy(msgpath(label, "envelope"));
		if (k == 0)
			flip_b64(t, "ct");
		else if (k == 1)
			flip_b64(t, "hdr");
		else if (k == 2) {
			/* the last byte of ct (inside the tag) */
			char *s;
			size_t n;

			st_json_get_str(t, "ct", &ctb64, &n);
			s = strdup(ctb64);
			s[n - 2] = s[n - 2] == 'A' ? 'Q' : 'A';
			st_json_set_str(t, "ct", s);
			free(s);
		} else if (k == 3 && env.has_x3dh) {
			flip_b64((struct st_json *)st_json_get(t, "x3dh"), "ek");
		} else if (k == 4 && env.has_x3dh) {
			/* another identity than the pinned one */
			flip_b64_at((struct st_json *)st_json_get(t, "x3dh"),
			            "ik", 10);
		} else {
			st_json_set_int(t, "v", 2);
		}
		if (st_envelope_parse(t, &bad) == 0) {
			assert_int_equal(st_ratchet_decrypt(to->r, &to->id,
			                 to->name, &to->peer_id, to->peer, pk,
			                 &bad, now, &pt, &ptlen, &info), -1);
			assert_null(pt);
			assert_int_equal(st_errcode(), k == 4 && env.has_x3dh ?
			                 ST_EX_IDENTITY : ST_EX_DATAERR);
			st_envelope_free(&bad);
		}
		st_json_free(t);
		after = dump_state(to->r);
		assert_string_equal(before, after);
		free(after);
	}

	if (st_ratchet_decrypt(to->r, &to->id, to->name, &to->peer_id,
	                       to->peer, pk, &env, now, &pt, &ptlen, &info) < 0)
		fail_msg("%s cannot decrypt %s: %s", to->name, label,
		         st_errmsg());
	want = mbytes(label, "plaintext", &wlen);
	assert_int_equal(ptlen, wlen);
	assert_memory_equal(pt, want, wlen);
	assert_int_equal(info.new_session, new_session);
	if (new_session) {
		assert_true(info.opk_used);
		assert_int_equal(info.opk_id, num("bundle.opk.id"));
	}
	{
		int dec = 0;

		st_json_get_bool(mat(label, NULL), "decrypted_by_receiver",
		                 &dec);
		assert_true(dec);
	}
	free(want);
	st_free_secret(pt, ptlen);

	/* the same message again is refused, and changes nothing */
	after = dump_state(to->r);
	assert_int_equal(st_ratchet_decrypt(to->r, &to->id, to->name,
	                                    &to->peer_id, to->peer, pk, &env,
	                                    now, &pt, &ptlen, &info), -1);
	free(before);
	before = dump_state(to->r);
	assert_string_equal(before, after);
	free(before);
	free(after);
	st_envelope_free(&env);
}

static void test_conversation(void **state)
{
	struct party A = { .name = "alice", .peer = "bob" };
	struct party B = { .name = "bob", .peer = "alice" };
	struct st_bundle bundle;
	struct st_spk spk;
	struct st_opk opk;
	struct st_prekey_set pk = { &spk, 1, &opk, 1 };
	unsigned char ek[32], priv[32], sk[32], dh[32], rk[32], ck[32], v[32];
	const struct st_json *order = at("bob_decrypt_order");

	load_identity("alice", &A.id);
	load_identity("bob", &B.id);
	A.peer_id = B.id.pub;
	B.peer_id = A.id.pub;
	load_bundle(&bundle);
	hex("bundle.spk.priv", priv, 32);
	assert_int_equal(st_spk_generate(&B.id, 1, priv, 0, &spk), 0);
	hex("bundle.opk.priv", priv, 32);
	assert_int_equal(st_opk_generate(7, priv, &opk), 0);

	A.r = st_ratchet_new();
	hex("ratchet_init.alice.dhs_priv", A.q.k[0], 32);
	hex("ratchet_alice_after_B1.new_dhs_priv", A.q.k[1], 32);
	A.q.n = 2;
	st_ratchet_set_keysource(A.r, keyq_next, &A.q);
	B.r = st_ratchet_new();
	hex("ratchet_bob_after_A1.new_dhs_priv", B.q.k[0], 32);
	/* A4 makes bob step again; golden.json stops before he sends */
	st_sha256("bob's third ratchet key", 23, B.q.k[1]);
	B.q.n = 2;
	st_ratchet_set_keysource(B.r, keyq_next, &B.q);

	/* alice's initialisation, step by step and for real */
	assert_int_equal(st_x25519_pub(A.q.k[0], v), 0);
	eqhex("ratchet_init.alice.dhs_pub", v, 32);
	assert_int_equal(st_x25519(A.q.k[0], bundle.spk, dh), 0);
	eqhex("ratchet_init.alice.dh_out", dh, 32);
	hex("x3dh.sk", sk, 32);
	eqhex("ratchet_init.bob.rk", sk, 32);
	assert_int_equal(st_dr_kdf_rk(sk, dh, rk, ck), 0);
	eqhex("ratchet_init.alice.rk", rk, 32);
	eqhex("ratchet_init.alice.cks", ck, 32);
	rk[0] ^= 1;     /* tampered twin: another root key, another chain */
	assert_int_equal(st_dr_kdf_rk(rk, dh, rk, v), 0);
	assert_memory_not_equal(v, ck, 32);
	assert_string_equal(str("ratchet_init.bob.dhs"), "the SPK pair");

	assert_false(st_ratchet_has_session(A.r));
	hex("x3dh.ek_priv", ek, 32);
	assert_int_equal(st_ratchet_initiate(A.r, &A.id, "alice", &bundle, ek),
	                 0);
	assert_true(st_ratchet_has_session(A.r));
	state_key(A.r, "rk", v);
	eqhex("ratchet_init.alice.rk", v, 32);
	state_key(A.r, "cks", v);
	eqhex("ratchet_init.alice.cks", v, 32);
	state_key(A.r, "dhs", v);
	eqhex("ratchet_init.alice.dhs_priv", v, 32);

	send_msg(&A, "A1");
	send_msg(&A, "A2");
	send_msg(&A, "A3");

	/* bob follows bob_decrypt_order */
	assert_int_equal(st_json_array_size(order), 5);
	for (size_t i = 0; i < st_json_array_size(order); i++) {
		const char *l;

		st_json_as_str(st_json_array_get(order, i), &l, NULL);
		if (strcmp(l, "(B1 sent)") == 0) {
			send_msg(&B, "B1");
			recv_msg(&A, NULL, "B1", 0);
			check_state(A.r, "ratchet_alice_after_B1");
			send_msg(&A, "A4");
			continue;
		}
		recv_msg(&B, &pk, l, i == 0);
		if (strcmp(l, "A1") == 0) {
			check_state(B.r, "ratchet_bob_after_A1");
		} else if (strcmp(l, "A3") == 0) {
			/* one skipped key: A2's */
			struct st_json *j = st_ratchet_to_json(B.r), *a, *s, *e;
			const struct st_json *w = at("bob_skipped_after_A3");
			const struct st_json *w0 = st_json_array_get(w, 0);
			const char *h;
			int64_t n, wn;

			st_json_get_arr(j, "sessions", &a);
			s = st_json_array_get(a, 0);
			st_json_get_arr(s, "skipped", &a);
			assert_int_equal(st_json_array_size(a),
			                 st_json_array_size(w));
			e = st_json_array_get(a, 0);
			st_json_get_b64(e, "dh", v, 32);
			st_json_as_str(st_json_array_get(w0, 0), &h, NULL);
			assert_int_equal(st_hex_decode(h, dh, 32), 0);
			assert_memory_equal(v, dh, 32);
			st_json_get_int(e, "n", 0, UINT32_MAX, &n);
			st_json_as_int(st_json_array_get(w0, 1), 0, 10, &wn);
			assert_int_equal(n, wn);
			st_json_get_b64(e, "mk", v, 32);
			st_json_as_str(st_json_array_get(w0, 2), &h, NULL);
			assert_int_equal(st_hex_decode(h, dh, 32), 0);
			assert_memory_equal(v, dh, 32);
			st_json_free_secret(j);
		}
	}
	/* every key the test fixed was used, and no other */
	assert_int_equal(A.q.i, 2);
	assert_int_equal(B.q.i, 2);
	st_ratchet_free(A.r);
	st_ratchet_free(B.r);
	st_identity_wipe(&A.id);
	st_identity_wipe(&B.id);
}

/* ---- envelopes on the wire ---- */

static void test_envelope_strict(void **state)
{
	static const char *const bad_edits[] = {
		"extra", "v2", "hdr-short", "ct-short", "x3dh-extra",
		"opk-missing", "opk-string", "spk-negative", "ik-padded",
		"ek-long", "ik-version",
	};
	struct st_envelope e;
	struct st_json *j, *t, *x;

	/* every golden envelope parses and serialises back byte for byte */
	for (size_t i = 0; i < st_json_array_size(at("messages")); i++) {
		char p[64];

		snprintf(p, sizeof(p), "messages.%zu.envelope", i);
		assert_int_equal(st_envelope_parse(at(p), &e), 0);
		j = st_envelope_to_json(&e);
		eqjson(p, j);
		st_json_free(j);
		st_envelope_free(&e);
	}
	/* and each of these edits makes A1's envelope unacceptable */
	for (size_t k = 0; k < sizeof(bad_edits) / sizeof(*bad_edits); k++) {
		const char *w = bad_edits[k];

		t = copy(msgpath("A1", "envelope"));
		x = (struct st_json *)st_json_get(t, "x3dh");
		if (!strcmp(w, "extra"))
			st_json_set_int(t, "extra", 1);
		else if (!strcmp(w, "v2"))
			st_json_set_int(t, "v", 2);
		else if (!strcmp(w, "hdr-short"))
			st_json_set_str(t, "hdr", "AAAA");
		else if (!strcmp(w, "ct-short"))
			st_json_set_str(t, "ct", "AAAAAAAAAAAAAAAAAAAA");
		else if (!strcmp(w, "x3dh-extra"))
			st_json_set_int(x, "extra", 1);
		else if (!strcmp(w, "opk-missing")) {
			struct st_json *y = st_json_object();

			st_json_set(y, "ik", st_json_str(str(
			            "x3dh.envelope_x3dh.ik")));
			st_json_set(y, "ek", st_json_str(str(
			            "x3dh.envelope_x3dh.ek")));
			st_json_set_int(y, "spk", 1);
			st_json_set(t, "x3dh", y);
		} else if (!strcmp(w, "opk-string"))
			st_json_set_str(x, "opk", "7");
		else if (!strcmp(w, "spk-negative"))
			st_json_set_int(x, "spk", -1);
		else if (!strcmp(w, "ik-padded")) {
			char s[200];

			snprintf(s, sizeof(s), "%s=",
			         str("x3dh.envelope_x3dh.ik"));
			st_json_set_str(x, "ik", s);
		} else if (!strcmp(w, "ek-long")) {
			char s[200];

			snprintf(s, sizeof(s), "%sAAAA",
			         str("x3dh.envelope_x3dh.ek"));
			st_json_set_str(x, "ek", s);
		} else if (!strcmp(w, "ik-version")) {
			flip_b64(x, "ik");
		}
		if (st_envelope_parse(t, &e) == 0)
			fail_msg("edit %s was accepted", w);
		assert_int_equal(st_errcode(), ST_EX_DATAERR);
		st_json_free(t);
	}
}

/* ---- the channel post ---- */

static void test_channel_post(void **state)
{
	struct st_identity alice, bob;
	struct st_post p;
	struct st_buf in;
	struct st_json *j, *t;
	const char *text = str("channel_post.post.text");
	int64_t ts = num("channel_post.post.ts");

	load_identity("alice", &alice);
	load_identity("bob", &bob);
	st_buf_init(&in, 0);
	assert_int_equal(st_post_signing_input("lobby", "alice", ts, text,
	                                       strlen(text), &in), 0);
	eqhex("channel_post.signing_input", in.data, in.len);
	st_buf_free(&in);
	j = st_post_sign(&alice, "lobby", "alice", ts, text, strlen(text));
	assert_non_null(j);
	eqjson("channel_post.post", j);
	st_json_free(j);
	assert_int_equal(st_post_parse(at("channel_post.post"), &p), 0);
	assert_string_equal(p.channel, "lobby");
	assert_string_equal(p.from, "alice");
	assert_int_equal(p.ts, ts);
	assert_string_equal(p.text, text);
	assert_int_equal(st_post_verify(&p, alice.pub.ed25519), 0);

	/* tampered twins */
	assert_int_equal(st_post_verify(&p, bob.pub.ed25519), -1);
	st_post_free(&p);
	t = copy("channel_post.post");
	st_json_set_str(t, "text", "hello lobby \xe2\x9c\x94");
	assert_int_equal(st_post_parse(t, &p), 0);
	assert_int_equal(st_post_verify(&p, alice.pub.ed25519), -1);
	st_post_free(&p);
	st_json_set_str(t, "text", text);
	st_json_set_int(t, "ts", ts + 1);
	assert_int_equal(st_post_parse(t, &p), 0);
	assert_int_equal(st_post_verify(&p, alice.pub.ed25519), -1);
	st_post_free(&p);
	st_json_set_int(t, "ts", ts);
	st_json_set_str(t, "channel", "lobbz");
	assert_int_equal(st_post_parse(t, &p), 0);
	assert_int_equal(st_post_verify(&p, alice.pub.ed25519), -1);
	st_post_free(&p);
	st_json_set_str(t, "channel", "lobby");
	st_json_set_str(t, "from", "bob");
	assert_int_equal(st_post_parse(t, &p), 0);
	assert_int_equal(st_post_verify(&p, alice.pub.ed25519), -1);
	st_post_free(&p);
	st_json_set_str(t, "from", "alice");
	flip_b64(t, "sig");
	assert_int_equal(st_post_parse(t, &p), 0);
	assert_int_equal(st_post_verify(&p, alice.pub.ed25519), -1);
	st_post_free(&p);
	st_json_free(t);
	/* strict parsing */
	t = copy("channel_post.post");
	st_json_set_str(t, "note", "unsigned");
	assert_int_equal(st_post_parse(t, &p), -1);
	st_json_free(t);
	t = copy("channel_post.post");
	st_json_set_str(t, "channel", "Lobby");
	assert_int_equal(st_post_parse(t, &p), -1);
	st_json_free(t);
	/* nothing unsignable gets signed */
	assert_null(st_post_sign(&alice, "lobby", "alice", ts, "a\0b", 3));
	assert_null(st_post_sign(&alice, "lobby", "alice", ts, "\xff", 1));
	assert_null(st_post_sign(&alice, "lob by", "alice", ts, "x", 1));
	assert_null(st_post_sign(&alice, "lobby", "alice", -1, "x", 1));
	st_identity_wipe(&alice);
	st_identity_wipe(&bob);
}

/* ---- the safety number ---- */

static void test_safety_number(void **state)
{
	struct st_identity alice, bob;
	unsigned char enc[ST_ID_ENC_LEN], h[64];
	char da[31], db[31], num60[61], num2[61], disp[ST_SAFETY_DISPLAY_LEN + 1];

	assert_int_equal(num("safety_number.iterations"), ST_SAFETY_ITERATIONS);
	load_identity("alice", &alice);
	load_identity("bob", &bob);
	st_identity_encode(&alice.pub, enc);
	assert_int_equal(st_fingerprint_hash(0, enc, 65, "alice", 5, 5200, h),
	                 0);
	eqhex("safety_number.alice_hash", h, 64);
	st_fingerprint_digits(h, da);
	assert_string_equal(da, str("safety_number.alice_digits"));
	st_identity_encode(&bob.pub, enc);
	assert_int_equal(st_fingerprint_hash(0, enc, 65, "bob", 3, 5200, h), 0);
	eqhex("safety_number.bob_hash", h, 64);
	st_fingerprint_digits(h, db);
	assert_string_equal(db, str("safety_number.bob_digits"));
	assert_int_equal(st_safety_half(&alice.pub, "alice", da), 0);
	assert_string_equal(da, str("safety_number.alice_digits"));
	assert_int_equal(st_safety_number(&alice.pub, "alice", &bob.pub, "bob",
	                                  num60), 0);
	assert_string_equal(num60, str("safety_number.number"));
	/* the same from either side */
	assert_int_equal(st_safety_number(&bob.pub, "bob", &alice.pub, "alice",
	                                  num2), 0);
	assert_string_equal(num2, num60);
	st_safety_display(num60, disp);
	assert_string_equal(disp, str("safety_number.display"));
	assert_int_equal(st_safety_match(disp, num60), 0);
	assert_int_equal(st_safety_match(num60, num60), 0);

	/* tampered twins */
	disp[7] = disp[7] == '9' ? '8' : '9';
	assert_int_equal(st_safety_match(disp, num60), -1);
	assert_int_equal(st_errcode(), ST_EX_NO);
	assert_int_equal(st_safety_match("1234", num60), -1);
	alice.pub.x25519[31] ^= 1;
	assert_int_equal(st_safety_number(&alice.pub, "alice", &bob.pub, "bob",
	                                  num2), 0);
	assert_string_not_equal(num2, num60);
	alice.pub.x25519[31] ^= 1;
	assert_int_equal(st_safety_number(&alice.pub, "alicf", &bob.pub, "bob",
	                                  num2), 0);
	assert_string_not_equal(num2, num60);
	st_identity_encode(&alice.pub, enc);
	assert_int_equal(st_fingerprint_hash(0, enc, 65, "alice", 5, 5199, h),
	                 0);
	st_fingerprint_digits(h, da);
	assert_string_not_equal(da, str("safety_number.alice_digits"));
	assert_int_equal(st_fingerprint_hash(1, enc, 65, "alice", 5, 5200, h),
	                 0);
	st_fingerprint_digits(h, da);
	assert_string_not_equal(da, str("safety_number.alice_digits"));
	st_identity_wipe(&alice);
	st_identity_wipe(&bob);
}

/* ---- Signal's published vectors ---- */

/*
 * libsignal rust/protocol/src/fingerprint.rs (and libsignal-protocol-c
 * tests/test_fingerprint.c): ALICE_IDENTITY, BOB_IDENTITY, the stable ids,
 * 5200 iterations, DISPLAYABLE_FINGERPRINT; the 32-byte halves are the
 * contents of ALICE_SCANNABLE_FINGERPRINT_V1.
 */
static const char SIG_ALICE[] =
	"0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868";
static const char SIG_BOB[] =
	"05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b";
static const char SIG_DISPLAY[] =
	"300354477692869396892869876765458257569162576843440918079131";
/* libsignal rust/protocol/src/ratchet/keys.rs test_chain_key_derivation */
static const char SIG_SEED[] =
	"8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f";
static const char SIG_CIPHER[] =
	"bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217";
static const char SIG_MAC[] =
	"c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b";
static const char SIG_NEXT[] =
	"28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d";

static void test_signal_fingerprint(void **state)
{
	unsigned char a[33], b[33], h[64];
	char out[61], da[31];
	const char *aid, *bid;

	/* golden.json carries Signal's inputs unchanged */
	assert_string_equal(str("signal_vectors.fingerprint.alice_key"),
	                    SIG_ALICE);
	assert_string_equal(str("signal_vectors.fingerprint.bob_key"), SIG_BOB);
	assert_string_equal(str("signal_vectors.fingerprint.displayable"),
	                    SIG_DISPLAY);
	assert_string_equal(str("signal_vectors.fingerprint.alice_id"),
	                    "+14152222222");
	assert_string_equal(str("signal_vectors.fingerprint.bob_id"),
	                    "+14153333333");
	assert_int_equal(num("signal_vectors.fingerprint.iterations"), 5200);
	{
		int all = 0;

		assert_int_equal(st_json_get_bool(at("signal_vectors"),
		                                  "all_pass", &all), 0);
		assert_true(all);
	}
	hex("signal_vectors.fingerprint.alice_key", a, 33);
	hex("signal_vectors.fingerprint.bob_key", b, 33);
	aid = str("signal_vectors.fingerprint.alice_id");
	bid = str("signal_vectors.fingerprint.bob_id");

	assert_int_equal(st_fingerprint_hash(0, a, 33, aid, strlen(aid), 5200,
	                                     h), 0);
	eqhex("signal_vectors.fingerprint.alice_fp32", h, 32);
	assert_int_equal(st_fingerprint_hash(0, b, 33, bid, strlen(bid), 5200,
	                                     h), 0);
	eqhex("signal_vectors.fingerprint.bob_fp32", h, 32);
	assert_int_equal(st_fingerprint(0, 5200, a, 33, aid, strlen(aid), b, 33,
	                                bid, strlen(bid), out), 0);
	assert_string_equal(out, SIG_DISPLAY);
	assert_int_equal(st_fingerprint(0, 5200, b, 33, bid, strlen(bid), a, 33,
	                                aid, strlen(aid), out), 0);
	assert_string_equal(out, SIG_DISPLAY);

	/* tampered twins */
	a[32] ^= 1;
	assert_int_equal(st_fingerprint(0, 5200, a, 33, aid, strlen(aid), b, 33,
	                                bid, strlen(bid), out), 0);
	assert_string_not_equal(out, SIG_DISPLAY);
	a[32] ^= 1;
	assert_int_equal(st_fingerprint(0, 5200, a, 33, "+14152222223", 12, b,
	                                33, bid, strlen(bid), out), 0);
	assert_string_not_equal(out, SIG_DISPLAY);
	assert_int_equal(st_fingerprint_hash(0, a, 33, aid, strlen(aid), 1, h),
	                 0);
	st_fingerprint_digits(h, da);
	assert_memory_not_equal(da, SIG_DISPLAY, 30);
	assert_int_equal(st_fingerprint_hash(0, a, 33, aid, 0, 0, h), -1);
}

static void test_signal_chain_key(void **state)
{
	unsigned char seed[32], mk[32], next[32], keys[80], w[32];

	assert_string_equal(str("signal_vectors.chain_key.seed"), SIG_SEED);
	assert_string_equal(str("signal_vectors.chain_key.cipher_key"),
	                    SIG_CIPHER);
	assert_string_equal(str("signal_vectors.chain_key.mac_key"), SIG_MAC);
	assert_string_equal(str("signal_vectors.chain_key.next_chain_key"),
	                    SIG_NEXT);
	hex("signal_vectors.chain_key.seed", seed, 32);
	/* our KDF_CK is Signal's ChainKey; Signal then expands the seed
	 * with HKDF(info "WhisperMessageKeys", 80) */
	assert_int_equal(st_dr_kdf_ck(seed, mk, next), 0);
	eqhex("signal_vectors.chain_key.next_chain_key", next, 32);
	assert_int_equal(st_hkdf_sha256(mk, 32, NULL, 0, "WhisperMessageKeys",
	                                18, keys, 80), 0);
	eqhex("signal_vectors.chain_key.cipher_key", keys, 32);
	eqhex("signal_vectors.chain_key.mac_key", keys + 32, 32);
	/* the same through the message-key function with Signal's info is
	 * not possible (ours is fixed to st-msg-v1), so the twin checks that
	 * ours differs */
	assert_int_equal(st_dr_message_keys(mk, w, (unsigned char[12]){0}), 0);
	assert_memory_not_equal(w, keys, 32);
	/* tampered twin */
	seed[31] ^= 1;
	assert_int_equal(st_dr_kdf_ck(seed, mk, next), 0);
	hex("signal_vectors.chain_key.next_chain_key", w, 32);
	assert_memory_not_equal(next, w, 32);
}

/* ---- the attachment payload ---- */

/* age's STREAM, written out here from the age spec, independent of
 * libst/stream.c: 64 KiB chunks, nonce = be88(counter) || last flag; a
 * payload that fills its last chunk exactly ends there (no empty chunk
 * follows), and an empty one is a single empty last chunk. */
static unsigned char *stream_seal(const unsigned char fk[16],
                                  const unsigned char nonce[16],
                                  const unsigned char *pt, size_t n,
                                  size_t *outlen)
{
	unsigned char key[32], cn[12];
	size_t chunks = n ? (n + ST_STREAM_CHUNK - 1) / ST_STREAM_CHUNK : 1;
	unsigned char *out = malloc(16 + n + 16 * chunks), *o = out + 16;

	assert_int_equal(st_hkdf_sha256(fk, 16, nonce, 16, "payload", 7, key,
	                                32), 0);
	memcpy(out, nonce, 16);
	for (size_t c = 0; c < chunks; c++) {
		size_t off = c * ST_STREAM_CHUNK;
		size_t len = n - off < ST_STREAM_CHUNK ? n - off : ST_STREAM_CHUNK;

		memset(cn, 0, sizeof(cn));
		for (int k = 0; k < 8; k++)
			cn[10 - k] = (unsigned char)((uint64_t)c >> (8 * k));
		cn[11] = c + 1 == chunks;
		assert_int_equal(st_aead_seal(key, cn, NULL, 0, pt + off, len,
		                              o), 0);
		o += len + 16;
	}
	*outlen = (size_t)(o - out);
	return out;
}

/* Decrypt payload with libst/stream.c, fed in 1000-byte pieces: 0 and
 * the plaintext in out, or -1. */
static int stream_open(const unsigned char fk[16], const unsigned char *pl,
                       size_t n, struct st_buf *out)
{
	struct st_stream_dec *d = st_stream_dec_new(fk, st_sink_buf, out);
	int rc = 0;

	assert_non_null(d);
	for (size_t o = 0; rc == 0 && o < n; o += 1000)
		rc = st_stream_dec_write(d, pl + o, n - o < 1000 ? n - o : 1000);
	if (rc == 0)
		rc = st_stream_dec_finish(d);
	st_stream_dec_free(d);
	return rc;
}

/* libst/stream.c encrypts pt as stream_seal() does under its nonce. */
static void stream_same(const unsigned char fk[16], const unsigned char *pt,
                        size_t n)
{
	struct st_buf got;
	struct st_stream_enc *e;
	unsigned char *want;
	size_t wlen;

	st_buf_init(&got, 0);
	e = st_stream_enc_new(fk, st_sink_buf, &got);
	assert_non_null(e);
	for (size_t o = 0; o < n; o += 777)
		assert_int_equal(st_stream_enc_write(e, pt + o,
		                                     n - o < 777 ? n - o : 777), 0);
	assert_int_equal(st_stream_enc_finish(e), 0);
	assert_true(got.len >= 16);
	want = stream_seal(fk, got.data, pt, n, &wlen);
	assert_int_equal(got.len, wlen);
	assert_memory_equal(got.data, want, wlen);
	free(want);
	st_buf_free(&got);
}

static void test_attachment(void **state)
{
	struct st_buf dec;
	unsigned char fk[16], nonce[16], key[32], h[32], *pt, *pl;
	size_t ptlen, pllen;
	struct st_msg m;
	struct st_msg_file f;
	char *to[] = { "bob" };
	unsigned char *enc;
	size_t enclen, len;
	struct st_json *j, *a;

	hex("attachment.file_key", fk, 16);
	hex("attachment.nonce", nonce, 16);
	assert_int_equal(st_hkdf_sha256(fk, 16, nonce, 16, "payload", 7, key,
	                                32), 0);
	eqhex("attachment.payload_key", key, 32);

	/* one chunk */
	pt = hexa("attachment.small.plaintext", &ptlen);
	pl = stream_seal(fk, nonce, pt, ptlen, &pllen);
	eqhex("attachment.small.payload", pl, pllen);
	pl[20] ^= 1;    /* tampered twin: the tag no longer matches */
	{
		unsigned char cn[12] = { [11] = 1 }, *o = malloc(pllen);

		assert_int_equal(st_aead_open(key, cn, NULL, 0, pl + 16,
		                              pllen - 16, o), -1);
		pl[20] ^= 1;
		assert_int_equal(st_aead_open(key, cn, NULL, 0, pl + 16,
		                              pllen - 16, o), 0);
		assert_memory_equal(o, pt, ptlen);
		free(o);
	}
	/* libst/stream.c opens the golden payload and refuses its twin */
	st_buf_init(&dec, 0);
	assert_int_equal(stream_open(fk, pl, pllen, &dec), 0);
	assert_int_equal(dec.len, ptlen);
	assert_memory_equal(dec.data, pt, ptlen);
	st_buf_free(&dec);
	pl[pllen - 1] ^= 1;
	assert_int_equal(stream_open(fk, pl, pllen, &dec), -1);
	st_buf_free(&dec);
	pl[pllen - 1] ^= 1;
	fk[0] ^= 1;
	assert_int_equal(stream_open(fk, pl, pllen, &dec), -1);
	st_buf_free(&dec);
	fk[0] ^= 1;
	stream_same(fk, pt, ptlen);
	free(pl);
	free(pt);

	/* two chunks */
	ptlen = 70000;
	pt = malloc(ptlen);
	for (size_t i = 0; i < ptlen; i++)
		pt[i] = (unsigned char)(i * 7 % 256);
	assert_string_equal(str("attachment.two_chunks.plaintext"),
	                    "bytes(i * 7 % 256 for i in range(70000))");
	st_sha256(pt, ptlen, h);
	eqhex("attachment.two_chunks.plaintext_sha256", h, 32);
	pl = stream_seal(fk, nonce, pt, ptlen, &pllen);
	assert_int_equal(pllen, num("attachment.two_chunks.payload_len"));
	st_sha256(pl, pllen, h);
	eqhex("attachment.two_chunks.payload_sha256", h, 32);
	eqhex("attachment.two_chunks.payload_last_32", pl + pllen - 32, 32);
	st_buf_init(&dec, 0);
	assert_int_equal(stream_open(fk, pl, pllen, &dec), 0);
	assert_int_equal(dec.len, ptlen);
	assert_memory_equal(dec.data, pt, ptlen);
	st_buf_free(&dec);
	/* twins: a flipped byte in the first chunk; the last chunk cut off */
	pl[100] ^= 1;
	assert_int_equal(stream_open(fk, pl, pllen, &dec), -1);
	st_buf_free(&dec);
	pl[100] ^= 1;
	assert_int_equal(stream_open(fk, pl, 16 + 65536 + 16, &dec), -1);
	st_buf_free(&dec);
	stream_same(fk, pt, ptlen);
	stream_same(fk, pt, 65536);     /* exactly one full chunk */
	nonce[0] ^= 1;  /* tampered twin: another nonce, another payload */
	free(pl);
	pl = stream_seal(fk, nonce, pt, ptlen, &pllen);
	st_sha256(pl, pllen, h);
	{
		unsigned char w[32];

		hex("attachment.two_chunks.payload_sha256", w, 32);
		assert_memory_not_equal(h, w, 32);
	}
	free(pl);
	free(pt);

	/* the "files" entry of the inner message */
	memset(&m, 0, sizeof(m));
	strcpy(m.id, "00112233445566778899aabbccddeeff");
	m.ts = 1;
	m.to = to;
	m.nto = 1;
	f.name = (char *)str("attachment.files_entry.name");
	f.size = (uint64_t)num("attachment.files_entry.size");
	f.blob = (char *)str("attachment.files_entry.blob");
	memcpy(f.key, fk, 16);
	m.files = &f;
	m.nfiles = 1;
	assert_int_equal(st_msg_encode(&m, &enc, &enclen), 0);
	assert_int_equal(st_msg_unpad(enc, enclen, &len), 0);
	j = st_json_parse((char *)enc, len, 1 << 16, "message");
	assert_non_null(j);
	assert_int_equal(st_json_get_arr(j, "files", &a), 0);
	eqjson("attachment.files_entry", st_json_array_get(a, 0));
	assert_null(st_json_get(j, "text"));
	assert_null(st_json_get(j, "data"));
	st_json_free(j);
	/* and back */
	{
		struct st_msg d;

		assert_int_equal(st_msg_decode(enc, enclen, &d), 0);
		assert_int_equal(d.nfiles, 1);
		assert_string_equal(d.files[0].name, f.name);
		assert_string_equal(d.files[0].blob, f.blob);
		assert_int_equal(d.files[0].size, f.size);
		assert_memory_equal(d.files[0].key, fk, 16);
		assert_false(d.has_body);
		st_msg_free(&d);
	}
	/* tampered twin: another file key, another entry */
	f.key[0] ^= 1;
	st_free_secret(enc, enclen);
	assert_int_equal(st_msg_encode(&m, &enc, &enclen), 0);
	assert_int_equal(st_msg_unpad(enc, enclen, &len), 0);
	j = st_json_parse((char *)enc, len, 1 << 16, "message");
	st_json_get_arr(j, "files", &a);
	assert_false(jsoneq(at("attachment.files_entry"),
	                    st_json_array_get(a, 0)));
	st_json_free(j);
	st_free_secret(enc, enclen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_identity_secret_json),
		cmocka_unit_test(test_bundle),
		cmocka_unit_test(test_x3dh),
		cmocka_unit_test(test_conversation),
		cmocka_unit_test(test_envelope_strict),
		cmocka_unit_test(test_channel_post),
		cmocka_unit_test(test_safety_number),
		cmocka_unit_test(test_signal_fingerprint),
		cmocka_unit_test(test_signal_chain_key),
		cmocka_unit_test(test_attachment),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
