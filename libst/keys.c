/*
 * keys.c - the long-lived keys of SPEC §4 and the objects signed with them:
 * the identity (Ed25519 IKs and X25519 IKd bound by a signature), signed
 * and one-time prekeys, the bundle a peer fetches, and channel posts.
 * Everything that arrives from the relay is verified here before any DH
 * sees it.  Formats are described in doc/st.5.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

static const char ID_CTX[] = "st-id-v1";
static const char SPK_CTX[] = "st-spk-v1";
static const char CHAN_CTX[] = "st-chan-v1";

int st_user_ok(const char *s, size_t n)
{
	if (n < 1 || n > ST_USER_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return 0;
	}
	return 1;
}

int st_utf8_ok(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], cp, min;
		size_t len;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07, min = 0x10000;
		else
			return 0;
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

static void be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* ---- identity ---- */

static void bind_input(const unsigned char x25519[32], unsigned char out[40])
{
	memcpy(out, ID_CTX, 8);
	memcpy(out + 8, x25519, 32);
}

int st_identity_from_secrets(struct st_identity *id,
                             const unsigned char ed25519_seed[32],
                             const unsigned char x25519_priv[32])
{
	unsigned char msg[40];

	if (id->ed25519_seed != ed25519_seed)
		memcpy(id->ed25519_seed, ed25519_seed, 32);
	if (id->x25519_priv != x25519_priv)
		memcpy(id->x25519_priv, x25519_priv, 32);
	if (st_ed25519_pub(id->ed25519_seed, id->pub.ed25519) < 0 ||
	    st_x25519_pub(id->x25519_priv, id->pub.x25519) < 0)
		goto fail;
	bind_input(id->pub.x25519, msg);
	if (st_ed25519_sign(id->ed25519_seed, msg, sizeof(msg),
	                    id->pub.bind) < 0)
		goto fail;
	return 0;
fail:
	st_identity_wipe(id);
	return -1;
}

int st_identity_generate(struct st_identity *id)
{
	unsigned char seed[32], x[32];
	int rc = -1;

	if (st_random(seed, 32) == 0 && st_random(x, 32) == 0)
		rc = st_identity_from_secrets(id, seed, x);
	st_wipe(seed, sizeof(seed));
	st_wipe(x, sizeof(x));
	return rc;
}

void st_identity_wipe(struct st_identity *id)
{
	st_wipe(id, sizeof(*id));
}

void st_identity_encode(const struct st_identity_pub *p,
                        unsigned char out[ST_ID_ENC_LEN])
{
	out[0] = 0x01;
	memcpy(out + 1, p->ed25519, 32);
	memcpy(out + 33, p->x25519, 32);
}

int st_identity_verify(const struct st_identity_pub *p)
{
	unsigned char msg[40];

	bind_input(p->x25519, msg);
	if (st_ed25519_verify(p->ed25519, msg, sizeof(msg), p->bind) < 0)
		return st_error(ST_EX_DATAERR,
		                "bad identity binding signature");
	return 0;
}

void st_identity_to_ik(const struct st_identity_pub *p,
                       char out[ST_TO_IK_LEN + 1])
{
	unsigned char enc[ST_ID_ENC_LEN], h[32];

	st_identity_encode(p, enc);
	/* SHA-256 of 65 bytes through EVP cannot fail short of OOM */
	if (st_sha256(enc, sizeof(enc), h) < 0)
		memset(h, 0, sizeof(h));
	st_b64_encode(h, 16, out, ST_B64_URL_RAW);
}

struct st_json *st_identity_to_json(const struct st_identity_pub *p)
{
	struct st_json *o = st_json_object();

	st_json_set_b64(o, "ed25519", p->ed25519, 32);
	st_json_set_b64(o, "x25519", p->x25519, 32);
	st_json_set_b64(o, "bind", p->bind, 64);
	return o;
}

int st_identity_from_json(const struct st_json *j, struct st_identity_pub *p)
{
	if (!st_json_is_object(j))
		return st_error(ST_EX_DATAERR, "identity is not an object");
	if (st_json_get_b64(j, "ed25519", p->ed25519, 32) < 0 ||
	    st_json_get_b64(j, "x25519", p->x25519, 32) < 0 ||
	    st_json_get_b64(j, "bind", p->bind, 64) < 0 ||
	    st_identity_verify(p) < 0) {
		memset(p, 0, sizeof(*p));
		return -1;
	}
	return 0;
}

struct st_json *st_identity_secret_to_json(const struct st_identity *id)
{
	struct st_json *o = st_json_object();

	st_json_set_int(o, "v", 1);
	st_json_set_b64(o, "ed25519_seed", id->ed25519_seed, 32);
	st_json_set_b64(o, "x25519", id->x25519_priv, 32);
	return o;
}

int st_identity_secret_from_json(const struct st_json *j,
                                 struct st_identity *id)
{
	static const char *const keys[] = { "v", "ed25519_seed", "x25519",
	                                    NULL };
	unsigned char seed[32], x[32];
	int64_t v;
	int rc = -1;

	/* strict like every other local file: a stranger field is refused */
	if (st_json_only(j, keys) == 0 &&
	    st_json_get_int(j, "v", 1, 1, &v) == 0 &&
	    st_json_get_b64(j, "ed25519_seed", seed, 32) == 0 &&
	    st_json_get_b64(j, "x25519", x, 32) == 0)
		rc = st_identity_from_secrets(id, seed, x);
	st_wipe(seed, sizeof(seed));
	st_wipe(x, sizeof(x));
	if (rc < 0)
		st_identity_wipe(id);
	return rc;
}

/* ---- prekeys ---- */

static void spk_input(uint32_t id, const unsigned char pub[32],
                      unsigned char out[45])
{
	memcpy(out, SPK_CTX, 9);
	be32(out + 9, id);
	memcpy(out + 13, pub, 32);
}

int st_spk_generate(const struct st_identity *id, uint32_t spk_id,
                    const unsigned char *priv, int64_t now_ms,
                    struct st_spk *out)
{
	unsigned char msg[45];

	memset(out, 0, sizeof(*out));
	out->id = spk_id;
	out->created = now_ms;
	if (priv)
		memcpy(out->priv, priv, 32);
	else if (st_random(out->priv, 32) < 0)
		goto fail;
	if (st_x25519_pub(out->priv, out->pub) < 0)
		goto fail;
	spk_input(spk_id, out->pub, msg);
	if (st_ed25519_sign(id->ed25519_seed, msg, sizeof(msg), out->sig) < 0)
		goto fail;
	return 0;
fail:
	st_wipe(out, sizeof(*out));
	return -1;
}

int st_spk_verify(const unsigned char ed25519_pub[32], uint32_t id,
                  const unsigned char pub[32], const unsigned char sig[64])
{
	unsigned char msg[45];

	spk_input(id, pub, msg);
	if (st_ed25519_verify(ed25519_pub, msg, sizeof(msg), sig) < 0)
		return st_error(ST_EX_DATAERR, "bad signed prekey signature");
	return 0;
}

int st_opk_generate(uint32_t opk_id, const unsigned char *priv,
                    struct st_opk *out)
{
	memset(out, 0, sizeof(*out));
	out->id = opk_id;
	if (priv)
		memcpy(out->priv, priv, 32);
	else if (st_random(out->priv, 32) < 0)
		goto fail;
	if (st_x25519_pub(out->priv, out->pub) < 0)
		goto fail;
	return 0;
fail:
	st_wipe(out, sizeof(*out));
	return -1;
}

struct st_json *st_spk_to_json(const struct st_spk *s)
{
	struct st_json *o = st_json_object();

	st_json_set_int(o, "id", s->id);
	st_json_set_b64(o, "pub", s->pub, 32);
	st_json_set_b64(o, "sig", s->sig, 64);
	return o;
}

struct st_json *st_opk_to_json(const struct st_opk *k)
{
	struct st_json *o = st_json_object();

	st_json_set_int(o, "id", k->id);
	st_json_set_b64(o, "pub", k->pub, 32);
	return o;
}

struct st_json *st_spk_secret_to_json(const struct st_spk *s)
{
	struct st_json *o = st_json_object();

	st_json_set_int(o, "id", s->id);
	st_json_set_b64(o, "priv", s->priv, 32);
	st_json_set_b64(o, "sig", s->sig, 64);
	st_json_set_int(o, "created", s->created);
	return o;
}

int st_spk_secret_from_json(const struct st_json *j, struct st_spk *s)
{
	int64_t id;

	memset(s, 0, sizeof(*s));
	if (st_json_get_int(j, "id", 0, UINT32_MAX, &id) < 0 ||
	    st_json_get_b64(j, "priv", s->priv, 32) < 0 ||
	    st_json_get_b64(j, "sig", s->sig, 64) < 0 ||
	    st_json_get_int(j, "created", 0, INT64_MAX, &s->created) < 0 ||
	    st_x25519_pub(s->priv, s->pub) < 0) {
		st_wipe(s, sizeof(*s));
		return -1;
	}
	s->id = (uint32_t)id;
	return 0;
}

struct st_json *st_opk_secret_to_json(const struct st_opk *k)
{
	struct st_json *o = st_json_object();

	st_json_set_int(o, "id", k->id);
	st_json_set_b64(o, "priv", k->priv, 32);
	return o;
}

int st_opk_secret_from_json(const struct st_json *j, struct st_opk *k)
{
	int64_t id;

	memset(k, 0, sizeof(*k));
	if (st_json_get_int(j, "id", 0, UINT32_MAX, &id) < 0 ||
	    st_json_get_b64(j, "priv", k->priv, 32) < 0 ||
	    st_x25519_pub(k->priv, k->pub) < 0) {
		st_wipe(k, sizeof(*k));
		return -1;
	}
	k->id = (uint32_t)id;
	return 0;
}

/* ---- bundles ---- */

static int get_user(const struct st_json *j, const char *key, char *out)
{
	const char *s;
	size_t n;

	if (st_json_get_str(j, key, &s, &n) < 0)
		return -1;
	if (!st_user_ok(s, n))
		return st_error(ST_EX_DATAERR, "field '%s' is not a valid name",
		                key);
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int parse_bundle(const struct st_json *j, struct st_bundle *b)
{
	struct st_json *id, *spk, *opk;
	int64_t v;

	if (get_user(j, "user", b->user) < 0 ||
	    st_json_get_obj(j, "identity", &id) < 0 ||
	    st_identity_from_json(id, &b->id) < 0 ||
	    st_json_get_obj(j, "spk", &spk) < 0 ||
	    st_json_get_int(spk, "id", 0, UINT32_MAX, &v) < 0 ||
	    st_json_get_b64(spk, "pub", b->spk, 32) < 0 ||
	    st_json_get_b64(spk, "sig", b->spk_sig, 64) < 0)
		return -1;
	b->spk_id = (uint32_t)v;
	if (st_spk_verify(b->id.ed25519, b->spk_id, b->spk, b->spk_sig) < 0)
		return -1;
	opk = st_json_get(j, "opk");
	if (!opk || json_is_null(J(opk)))
		return 0;
	if (!st_json_is_object(opk))
		return st_error(ST_EX_DATAERR, "field 'opk' is not an object");
	if (st_json_get_int(opk, "id", 0, UINT32_MAX, &v) < 0 ||
	    st_json_get_b64(opk, "pub", b->opk, 32) < 0)
		return -1;
	b->opk_id = (uint32_t)v;
	b->has_opk = 1;
	return 0;
}

int st_bundle_parse(const struct st_json *j, struct st_bundle *b)
{
	memset(b, 0, sizeof(*b));
	if (!st_json_is_object(j))
		return st_error(ST_EX_DATAERR, "bundle is not an object");
	if (parse_bundle(j, b) < 0) {
		st_error_ctx("bad prekey bundle");
		memset(b, 0, sizeof(*b));
		return -1;
	}
	return 0;
}

struct st_json *st_bundle_to_json(const struct st_bundle *b)
{
	struct st_json *o = st_json_object(), *s = st_json_object();

	st_json_set_str(o, "user", b->user);
	st_json_set(o, "identity", st_identity_to_json(&b->id));
	st_json_set_int(s, "id", b->spk_id);
	st_json_set_b64(s, "pub", b->spk, 32);
	st_json_set_b64(s, "sig", b->spk_sig, 64);
	st_json_set(o, "spk", s);
	if (b->has_opk) {
		s = st_json_object();
		st_json_set_int(s, "id", b->opk_id);
		st_json_set_b64(s, "pub", b->opk, 32);
		st_json_set(o, "opk", s);
	} else {
		st_json_set_null(o, "opk");
	}
	return o;
}

/* ---- channel posts ---- */

int st_post_signing_input(const char *channel, const char *from, int64_t ts,
                          const char *text, size_t textlen,
                          struct st_buf *out)
{
	size_t cl = strlen(channel), fl = strlen(from);
	unsigned char t[8];

	if (!st_user_ok(channel, cl))
		return st_error(ST_EX_DATAERR, "bad channel name");
	if (!st_user_ok(from, fl))
		return st_error(ST_EX_DATAERR, "bad user name");
	if (ts < 0)
		return st_error(ST_EX_DATAERR, "bad post time");
	if (!st_utf8_ok(text, textlen))
		return st_error(ST_EX_DATAERR, "post text is not utf-8 "
		                "without nul");
	be32(t, (uint32_t)((uint64_t)ts >> 32));
	be32(t + 4, (uint32_t)ts);
	st_buf_append(out, CHAN_CTX, 10);
	st_buf_appendc(out, (unsigned char)cl);
	st_buf_append(out, channel, cl);
	st_buf_appendc(out, (unsigned char)fl);
	st_buf_append(out, from, fl);
	st_buf_append(out, t, 8);
	st_buf_append(out, text, textlen);
	return 0;
}

struct st_json *st_post_sign(const struct st_identity *id,
                             const char *channel, const char *from,
                             int64_t ts, const char *text, size_t textlen)
{
	struct st_buf in;
	unsigned char sig[64];
	struct st_json *o = NULL;

	st_buf_init(&in, 0);
	if (st_post_signing_input(channel, from, ts, text, textlen, &in) < 0 ||
	    st_ed25519_sign(id->ed25519_seed, in.data, in.len, sig) < 0)
		goto out;
	o = st_json_object();
	st_json_set_int(o, "v", 1);
	st_json_set_str(o, "channel", channel);
	st_json_set_str(o, "from", from);
	st_json_set_int(o, "ts", ts);
	st_json_set_strn(o, "text", text, textlen);
	st_json_set_b64(o, "sig", sig, 64);
out:
	st_buf_free(&in);
	return o;
}

/* 0 when every member of o is one of the NULL-terminated keys. */
int st_json_only(const struct st_json *o, const char *const *keys)
{
	const char *k;
	json_t *v;

	json_object_foreach(J(o), k, v) {
		size_t i;

		for (i = 0; keys[i] && strcmp(keys[i], k); i++)
			;
		if (!keys[i])
			return st_error(ST_EX_DATAERR, "unknown field '%.40s'",
			                k);
	}
	return 0;
}

int st_post_parse(const struct st_json *j, struct st_post *p)
{
	static const char *const keys[] = { "v", "channel", "from", "ts",
	                                    "text", "sig", NULL };
	const char *text;
	int64_t v;

	memset(p, 0, sizeof(*p));
	if (!st_json_is_object(j))
		return st_error(ST_EX_DATAERR, "post is not an object");
	if (st_json_only(j, keys) < 0 ||
	    st_json_get_int(j, "v", 1, 1, &v) < 0 ||
	    get_user(j, "channel", p->channel) < 0 ||
	    get_user(j, "from", p->from) < 0 ||
	    st_json_get_int(j, "ts", 0, INT64_MAX, &p->ts) < 0 ||
	    st_json_get_str(j, "text", &text, &p->textlen) < 0 ||
	    st_json_get_b64(j, "sig", p->sig, 64) < 0) {
		st_error_ctx("bad channel post");
		memset(p, 0, sizeof(*p));
		return -1;
	}
	p->text = st_strndup(text, p->textlen);
	return 0;
}

int st_post_verify(const struct st_post *p,
                   const unsigned char ed25519_pub[32])
{
	struct st_buf in;
	int rc;

	st_buf_init(&in, 0);
	rc = st_post_signing_input(p->channel, p->from, p->ts, p->text,
	                           p->textlen, &in);
	if (rc == 0 && st_ed25519_verify(ed25519_pub, in.data, in.len,
	                                 p->sig) < 0)
		rc = st_error(ST_EX_DATAERR, "bad post signature");
	st_buf_free(&in);
	return rc;
}

void st_post_free(struct st_post *p)
{
	free(p->text);
	memset(p, 0, sizeof(*p));
}

/* ---- secret JSON ---- */

static void wipe_json(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_string(j)) {
		/* the value is Jansson's own heap copy: safe to overwrite */
		st_wipe((char *)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			wipe_json(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			wipe_json(v);
	}
}

void st_json_free_secret(struct st_json *j)
{
	if (!j)
		return;
	if (J(j)->refcount == 1)
		wipe_json(J(j));
	json_decref(J(j));
}
