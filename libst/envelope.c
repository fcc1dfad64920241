/*
 * envelope.c - the two JSON objects of a message (SPEC §5): the envelope
 * st-send posts, whose parsing is strict because everything in it is
 * attacker-controlled until it authenticates, and the inner message, the
 * ratchet plaintext, padded with zeros to a multiple of 256 bytes so its
 * length says little about the text.  Formats are in doc/st.5.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

/* ---- the envelope ---- */

struct st_json *st_envelope_to_json(const struct st_envelope *e)
{
	struct st_json *o = st_json_object(), *x;

	st_json_set_int(o, "v", 1);
	if (e->has_x3dh) {
		x = st_json_object();
		st_json_set_b64(x, "ik", e->ik, ST_ID_ENC_LEN);
		st_json_set_b64(x, "ek", e->ek, 32);
		st_json_set_int(x, "spk", e->spk_id);
		if (e->has_opk)
			st_json_set_int(x, "opk", e->opk_id);
		else
			st_json_set_null(x, "opk");
		st_json_set(o, "x3dh", x);
	}
	st_json_set_b64(o, "hdr", e->hdr, ST_DR_HEADER_LEN);
	st_json_set_b64(o, "ct", e->ct, e->ctlen);
	return o;
}

static int parse_x3dh(const struct st_json *x, struct st_envelope *e)
{
	static const char *const keys[] = { "ik", "ek", "spk", "opk", NULL };
	struct st_json *opk;
	int64_t v;

	if (!st_json_is_object(x))
		return st_error(ST_EX_DATAERR, "field 'x3dh' is not an object");
	if (st_json_only(x, keys) < 0 ||
	    st_json_get_b64(x, "ik", e->ik, ST_ID_ENC_LEN) < 0 ||
	    st_json_get_b64(x, "ek", e->ek, 32) < 0 ||
	    st_json_get_int(x, "spk", 0, UINT32_MAX, &v) < 0)
		return -1;
	if (e->ik[0] != 0x01)
		return st_error(ST_EX_DATAERR, "unknown identity encoding");
	e->spk_id = (uint32_t)v;
	/* "opk" is always present: null or an id */
	if (!(opk = st_json_get(x, "opk")))
		return st_error(ST_EX_DATAERR, "missing field 'opk'");
	if (json_is_null(J(opk)))
		return 0;
	if (st_json_as_int(opk, 0, UINT32_MAX, &v) < 0)
		return st_error(ST_EX_DATAERR, "field 'opk' is not an id");
	e->opk_id = (uint32_t)v;
	e->has_opk = 1;
	return 0;
}

static int parse_envelope(const struct st_json *j, struct st_envelope *e)
{
	static const char *const keys[] = { "v", "x3dh", "hdr", "ct", NULL };
	struct st_json *x;
	int64_t v;

	if (!st_json_is_object(j))
		return st_error(ST_EX_DATAERR, "not an object");
	if (st_json_only(j, keys) < 0 ||
	    st_json_get_int(j, "v", 1, 1, &v) < 0)
		return -1;
	if ((x = st_json_get(j, "x3dh"))) {
		if (parse_x3dh(x, e) < 0)
			return -1;
		e->has_x3dh = 1;
	}
	if (st_json_get_b64(j, "hdr", e->hdr, ST_DR_HEADER_LEN) < 0 ||
	    st_json_get_b64_alloc(j, "ct", ST_ENVELOPE_MAX + ST_AEAD_TAG_LEN,
	                          &e->ct, &e->ctlen) < 0)
		return -1;
	if (e->ctlen < ST_AEAD_TAG_LEN)
		return st_error(ST_EX_DATAERR, "field 'ct' is too short");
	return 0;
}

int st_envelope_parse(const struct st_json *j, struct st_envelope *e)
{
	memset(e, 0, sizeof(*e));
	if (parse_envelope(j, e) < 0) {
		st_error_ctx("bad envelope");
		st_envelope_free(e);
		return -1;
	}
	return 0;
}

void st_envelope_free(struct st_envelope *e)
{
	free(e->ct);
	memset(e, 0, sizeof(*e));
}

/* ---- padding ---- */

int st_msg_pad(const void *p, size_t n, unsigned char **out, size_t *outlen)
{
	size_t len = (n + ST_MSG_PAD - 1) / ST_MSG_PAD * ST_MSG_PAD;

	if (n == 0 || len > ST_ENVELOPE_MAX)
		return st_error(ST_EX_DATAERR, "message is too large "
		                "(%zu bytes)", n);
	*out = st_calloc(1, len);
	memcpy(*out, p, n);
	*outlen = len;
	return 0;
}

int st_msg_unpad(const unsigned char *p, size_t n, size_t *len)
{
	const unsigned char *z = memchr(p, 0, n);
	unsigned char acc = 0;

	if (!z) {
		*len = n;
		return 0;
	}
	for (const unsigned char *q = z; q < p + n; q++)
		acc |= *q;
	if (acc)
		return st_error(ST_EX_DATAERR, "bad message padding");
	*len = (size_t)(z - p);
	return 0;
}

/* ---- the inner message ---- */

static int is_id(const char *s, size_t n)
{
	if (n != 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= '0' && s[i] <= '9') &&
		    !(s[i] >= 'a' && s[i] <= 'f'))
			return 0;
	return 1;
}

int st_msg_new_id(char id[33])
{
	unsigned char r[16];

	if (st_random(r, sizeof(r)) < 0)
		return -1;
	st_hex_encode(r, sizeof(r), id);
	return 0;
}

static struct st_json *file_json(const struct st_msg_file *f)
{
	struct st_json *o;

	if (!f->name || !st_utf8_ok(f->name, strlen(f->name)) ||
	    !f->blob || !st_utf8_ok(f->blob, strlen(f->blob)) ||
	    f->size > INT64_MAX) {
		st_error(ST_EX_DATAERR, "bad file entry");
		return NULL;
	}
	o = st_json_object();
	st_json_set_str(o, "name", f->name);
	st_json_set_int(o, "size", (int64_t)f->size);
	st_json_set_str(o, "blob", f->blob);
	st_json_set_b64(o, "key", f->key, 16);
	return o;
}

static struct st_json *msg_json(const struct st_msg *m)
{
	struct st_json *o = st_json_object(), *a = st_json_array(), *f;

	st_json_set_int(o, "v", 1);
	st_json_set_str(o, "id", m->id);
	st_json_set_int(o, "ts", m->ts);
	st_json_set(o, "to", a);
	for (size_t i = 0; i < m->nto; i++)
		st_json_array_append(a, st_json_str(m->to[i]));
	if (m->has_body && st_utf8_ok(m->body, m->bodylen))
		st_json_set_strn(o, "text", (const char *)m->body, m->bodylen);
	else if (m->has_body)
		st_json_set_b64(o, "data", m->body, m->bodylen);
	if (m->nfiles) {
		st_json_set(o, "files", a = st_json_array());
		for (size_t i = 0; i < m->nfiles; i++) {
			if (!(f = file_json(&m->files[i]))) {
				st_json_free_secret(o);
				return NULL;
			}
			st_json_array_append(a, f);
		}
	}
	return o;
}

int st_msg_encode(const struct st_msg *m, unsigned char **out,
                  size_t *outlen)
{
	struct st_json *o;
	char *s;
	int rc;

	if (!is_id(m->id, strlen(m->id)) || m->ts < 0 || m->nto < 1)
		return st_error(ST_EX_DATAERR, "bad message id, time or "
		                "recipients");
	for (size_t i = 0; i < m->nto; i++)
		if (!st_user_ok(m->to[i], strlen(m->to[i])))
			return st_error(ST_EX_DATAERR, "bad recipient name");
	if (!(o = msg_json(m)))
		return -1;
	s = st_json_dump(o);
	st_json_free_secret(o);
	rc = st_msg_pad(s, strlen(s), out, outlen);
	st_free_str_secret(s);
	return rc;
}

static int decode_files(const struct st_json *a, struct st_msg *m)
{
	size_t n = st_json_array_size(a);
	const char *s;
	size_t len;
	int64_t v;

	m->files = st_calloc(n, sizeof(*m->files));
	for (size_t i = 0; i < n; i++) {
		const struct st_json *f = st_json_array_get(a, i);
		struct st_msg_file *mf = &m->files[m->nfiles++];

		if (!st_json_is_object(f))
			return st_error(ST_EX_DATAERR, "file entry is not an "
			                "object");
		if (st_json_get_str(f, "name", &s, &len) < 0)
			return -1;
		mf->name = st_strndup(s, len);
		if (st_json_get_str(f, "blob", &s, &len) < 0)
			return -1;
		mf->blob = st_strndup(s, len);
		if (st_json_get_int(f, "size", 0, INT64_MAX, &v) < 0 ||
		    st_json_get_b64(f, "key", mf->key, 16) < 0)
			return -1;
		mf->size = (uint64_t)v;
	}
	return 0;
}

static int decode_msg(const struct st_json *o, struct st_msg *m)
{
	struct st_json *a, *text, *data;
	const char *s;
	size_t len;
	int64_t v;

	if (!st_json_is_object(o))
		return st_error(ST_EX_DATAERR, "not an object");
	if (st_json_get_int(o, "v", 1, 1, &v) < 0 ||
	    st_json_get_str(o, "id", &s, &len) < 0)
		return -1;
	if (!is_id(s, len))
		return st_error(ST_EX_DATAERR,
		                "field 'id' is not 32 hex digits");
	memcpy(m->id, s, 33);
	if (st_json_get_int(o, "ts", 0, INT64_MAX, &m->ts) < 0 ||
	    st_json_get_arr(o, "to", &a) < 0)
		return -1;
	m->to = st_calloc(st_json_array_size(a), sizeof(*m->to));
	for (size_t i = 0; i < st_json_array_size(a); i++) {
		if (st_json_as_str(st_json_array_get(a, i), &s, &len) < 0 ||
		    !st_user_ok(s, len))
			return st_error(ST_EX_DATAERR, "bad name in 'to'");
		m->to[m->nto++] = st_strndup(s, len);
	}
	text = st_json_get(o, "text");
	data = st_json_get(o, "data");
	if (text && data)
		return st_error(ST_EX_DATAERR, "both 'text' and 'data'");
	if (text) {
		if (st_json_get_str(o, "text", &s, &len) < 0)
			return -1;
		m->body = (unsigned char *)st_strndup(s, len);
		m->bodylen = len;
		m->has_body = m->is_text = 1;
	} else if (data) {
		if (st_json_get_b64_alloc(o, "data", ST_ENVELOPE_MAX,
		                          &m->body, &m->bodylen) < 0)
			return -1;
		m->has_body = 1;
	}
	if (st_json_get(o, "files")) {
		if (st_json_get_arr(o, "files", &a) < 0 ||
		    decode_files(a, m) < 0)
			return -1;
	}
	return 0;
}

int st_msg_decode(const unsigned char *pt, size_t n, struct st_msg *m)
{
	struct st_json *o = NULL;
	size_t len;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (st_msg_unpad(pt, n, &len) == 0 &&
	    (o = st_json_parse((const char *)pt, len, ST_ENVELOPE_MAX,
	                       "message")) != NULL)
		rc = decode_msg(o, m);
	st_json_free_secret(o);
	if (rc < 0) {
		st_error_ctx("bad message");
		st_msg_free(m);
	}
	return rc;
}

void st_msg_free(struct st_msg *m)
{
	for (size_t i = 0; i < m->nto; i++)
		free(m->to[i]);
	free(m->to);
	st_free_secret(m->body, m->bodylen);
	for (size_t i = 0; i < m->nfiles; i++) {
		st_free_str_secret(m->files[i].name);
		st_free_str_secret(m->files[i].blob);
	}
	st_free_secret(m->files, m->nfiles * sizeof(*m->files));
	memset(m, 0, sizeof(*m));
}
