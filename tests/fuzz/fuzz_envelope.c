/*
 * fuzz_envelope.c - what a peer or a hostile relay hands st-recv: the
 * envelope, a prekey bundle, an identity, a channel post (each parsed from
 * the input as JSON, and from its "post" member as the relay wraps posts),
 * and the inner message decoded from the input's raw bytes as if they had
 * been decrypted.  Checked beyond not crashing:
 *   an envelope, a bundle or a post that parses survives its writer and
 *   parses back to the same fields (a post re-signed with a fixed key,
 *   which must then verify);
 *   a decoded message that encodes again decodes to the same message;
 *   padding and unpadding NUL-free bytes gives them back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
	abort(); } } while (0)

static void envelope(const struct st_json *j)
{
	struct st_envelope e, f;
	struct st_json *o;

	if (st_envelope_parse(j, &e) < 0)
		return;
	CHECK(e.ctlen >= ST_AEAD_TAG_LEN &&
	      e.ctlen <= ST_ENVELOPE_MAX + ST_AEAD_TAG_LEN);
	o = st_envelope_to_json(&e);
	CHECK(st_envelope_parse(o, &f) == 0);
	CHECK(f.has_x3dh == e.has_x3dh && f.has_opk == e.has_opk &&
	      f.spk_id == e.spk_id && f.opk_id == e.opk_id);
	CHECK(!memcmp(f.ik, e.ik, sizeof(e.ik)) &&
	      !memcmp(f.ek, e.ek, sizeof(e.ek)) &&
	      !memcmp(f.hdr, e.hdr, sizeof(e.hdr)));
	CHECK(f.ctlen == e.ctlen && !memcmp(f.ct, e.ct, e.ctlen));
	st_envelope_free(&f);
	st_json_free(o);
	st_envelope_free(&e);
}

static void bundle(const struct st_json *j)
{
	struct st_bundle b, c;
	struct st_identity_pub p;
	struct st_json *o;

	st_identity_from_json(j, &p);
	if (st_bundle_parse(j, &b) < 0)
		return;
	o = st_bundle_to_json(&b);
	CHECK(st_bundle_parse(o, &c) == 0);
	CHECK(!strcmp(b.user, c.user) && b.spk_id == c.spk_id &&
	      b.has_opk == c.has_opk && b.opk_id == c.opk_id);
	CHECK(!memcmp(&b.id, &c.id, sizeof(b.id)) &&
	      !memcmp(b.spk, c.spk, 32) && !memcmp(b.spk_sig, c.spk_sig, 64) &&
	      !memcmp(b.opk, c.opk, 32));
	st_json_free(o);
}

static struct st_identity signer;

static void post(const struct st_json *j)
{
	struct st_post p, q;
	struct st_json *o;
	struct st_buf in;

	if (st_post_parse(j, &p) < 0)
		return;
	/* a JSON string holds no NUL: the copy is a C string */
	CHECK(strlen(p.text) == p.textlen);
	st_buf_init(&in, 0);
	st_post_signing_input(p.channel, p.from, p.ts, p.text, p.textlen,
	                      &in);
	st_buf_free(&in);
	st_post_verify(&p, signer.pub.ed25519);
	/* re-signed, it must parse back the same and verify */
	o = st_post_sign(&signer, p.channel, p.from, p.ts, p.text, p.textlen);
	if (o) {
		CHECK(st_post_parse(o, &q) == 0);
		CHECK(!strcmp(p.channel, q.channel) && !strcmp(p.from, q.from) &&
		      p.ts == q.ts && p.textlen == q.textlen &&
		      !memcmp(p.text, q.text, p.textlen));
		CHECK(st_post_verify(&q, signer.pub.ed25519) == 0);
		st_post_free(&q);
		st_json_free(o);
	} else {
		/* signing refuses only text that is not UTF-8 without NUL */
		CHECK(!st_utf8_ok(p.text, p.textlen));
	}
	st_post_free(&p);
}

static int same_msg(const struct st_msg *a, const struct st_msg *b)
{
	if (strcmp(a->id, b->id) || a->ts != b->ts || a->nto != b->nto ||
	    a->has_body != b->has_body || a->bodylen != b->bodylen ||
	    a->nfiles != b->nfiles)
		return 0;
	if (a->bodylen && memcmp(a->body, b->body, a->bodylen))
		return 0;
	for (size_t i = 0; i < a->nto; i++)
		if (strcmp(a->to[i], b->to[i]))
			return 0;
	for (size_t i = 0; i < a->nfiles; i++)
		if (strcmp(a->files[i].name, b->files[i].name) ||
		    strcmp(a->files[i].blob, b->files[i].blob) ||
		    a->files[i].size != b->files[i].size ||
		    memcmp(a->files[i].key, b->files[i].key, 16))
			return 0;
	return 1;
}

static void message(const uint8_t *data, size_t size)
{
	struct st_msg m, m2;
	unsigned char *pt;
	size_t n, len;

	if (st_msg_unpad(data, size, &len) == 0) {
		CHECK(len <= size);
		for (size_t i = len; i < size; i++)
			CHECK(data[i] == 0);
	}
	if (st_msg_decode(data, size, &m) < 0)
		return;
	/* a text body holds no NUL: decoding copied it as a C string */
	if (m.is_text)
		CHECK(strlen((char *)m.body) == m.bodylen);
	if (st_msg_encode(&m, &pt, &n) == 0) {
		CHECK(n % ST_MSG_PAD == 0 && n <= ST_ENVELOPE_MAX);
		CHECK(st_msg_decode(pt, n, &m2) == 0);
		CHECK(same_msg(&m, &m2));
		st_msg_free(&m2);
		st_free_secret(pt, n);
	}
	st_msg_free(&m);
}

static void pad(const uint8_t *data, size_t size)
{
	unsigned char *p;
	size_t n, len;

	if (st_msg_pad(data, size, &p, &n) < 0) {
		CHECK(size == 0 || size > ST_ENVELOPE_MAX);
		return;
	}
	CHECK(n >= size && n % ST_MSG_PAD == 0 && n - size < ST_MSG_PAD);
	if (!memchr(data, 0, size)) {
		CHECK(st_msg_unpad(p, n, &len) == 0);
		CHECK(len == size);
	}
	st_free_secret(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct st_json *j;

	if (!init) {
		unsigned char seed[32], x[32];

		memset(seed, 0x5a, sizeof(seed));
		memset(x, 0xa5, sizeof(x));
		CHECK(st_identity_from_secrets(&signer, seed, x) == 0);
		init = 1;
	}
	message(data, size);
	pad(data, size);
	j = st_json_parse((const char *)data, size, 1 << 20, "input");
	if (!j)
		return 0;
	envelope(j);
	bundle(j);
	post(j);
	if (st_json_get(j, "post"))
		post(st_json_get(j, "post"));
	if (st_json_get(j, "envelope"))
		envelope(st_json_get(j, "envelope"));
	if (st_json_get(j, "identity"))
		bundle(st_json_get(j, "identity"));
	st_json_free(j);
	return 0;
}
