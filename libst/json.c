/*
 * json.c - strict JSON over Jansson.  Parsing is capped in size, pre-scanned
 * for nesting depth (Jansson recurses, and a 100,000-deep document would
 * exhaust the stack before it complained), and rejects duplicate keys,
 * invalid UTF-8 and \u0000.  Getters fail with messages that name the field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

/*
 * Everything Jansson frees is wiped first: the parser's token buffer and
 * the old copies a growing dump leaves behind held passwords, keys and
 * plaintext that no caller can reach to wipe.  Before main, so before
 * Jansson allocates anything.
 */
__attribute__((constructor)) static void json_wipe_on_free(void)
{
	json_set_alloc_funcs(malloc, st_free_wiped);
}

int st_json_depth_ok(const char *buf, size_t len, int maxdepth)
{
	int depth = 0, instr = 0;

	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (instr) {
			if (c == '\\')
				i++;
			else if (c == '"')
				instr = 0;
			continue;
		}
		if (c == '"')
			instr = 1;
		else if (c == '[' || c == '{') {
			if (++depth > maxdepth)
				return -1;
		} else if (c == ']' || c == '}')
			depth--;
	}
	return 0;
}

/* ---- raw views of accepted text ---- */

static const char *ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int ws_char(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Past the closing quote of the string whose text starts at p. */
static const char *str_end(const char *p, const char *e)
{
	const char *q;

	while ((q = memchr(p, '"', (size_t)(e - p)))) {
		const char *b = q;

		/* escaped when an odd number of backslashes come before it */
		while (b > p && b[-1] == '\\')
			b--;
		if ((q - b) % 2 == 0)
			return q + 1;
		p = q + 1;
	}
	return NULL;
}

const char *st_json_raw_end(const char *p, const char *e, int *loose)
{
	int depth = 0;

	p = ws(p, e);
	do {
		if (p >= e)
			return NULL;
		switch (*p) {
		case '"':
			if (!(p = str_end(p + 1, e)))
				return NULL;
			break;
		case '{':
		case '[':
			depth++;
			p++;
			break;
		case '}':
		case ']':
			if (--depth < 0)
				return NULL;
			p++;
			break;
		case ',':
		case ':':
			p++;
			break;
		case ' ':
		case '\t':
		case '\n':
		case '\r':
			*loose = 1;
			p++;
			break;
		default:
			/* a number, true, false or null */
			while (p < e && *p != ',' && *p != ']' && *p != '}' &&
			       *p != ':' && !ws_char(*p))
				p++;
			break;
		}
	} while (depth > 0);
	return p;
}

int st_json_raw_get(const char *p, const char *e, const char *key,
                    const char **v)
{
	size_t klen = strlen(key);
	int loose = 0;

	p = ws(p, e);
	if (p >= e || *p != '{')
		return -1;
	for (p = ws(p + 1, e); p < e && *p == '"'; p = ws(p + 1, e)) {
		const char *k = ++p, *end;

		while (p < e && *p != '"') {
			/* an escaped key might be key spelled otherwise */
			if (*p == '\\')
				return -1;
			p++;
		}
		if (p >= e)
			return -1;
		end = p;
		p = ws(p + 1, e);
		if (p >= e || *p != ':')
			return -1;
		p = ws(p + 1, e);
		if ((size_t)(end - k) == klen && memcmp(k, key, klen) == 0) {
			*v = p;
			return 1;
		}
		if (!(p = st_json_raw_end(p, e, &loose)))
			return -1;
		p = ws(p, e);
		if (p >= e || *p != ',')
			break;
	}
	return 0;
}

int st_json_raw_items(const char *p, const char *e, const char **items,
                      size_t n)
{
	size_t i = 0;
	int loose = 0;

	p = ws(p, e);
	if (p >= e || *p != '[')
		return -1;
	for (p = ws(p + 1, e); p < e && *p != ']'; p = ws(p + 1, e)) {
		if (i == n)
			return -1;
		items[i++] = p;
		if (!(p = st_json_raw_end(p, e, &loose)))
			return -1;
		p = ws(p, e);
		if (p >= e || *p != ',')
			break;
	}
	return i == n ? 0 : -1;
}

/* ---- skimming ---- */

/* A byte a JSON string may hold as itself that is also plain ASCII. */
static int plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/*
 * buf with the text of every long plain value string dropped, in *out
 * (len bytes, allocated at the first drop); its length, or 0 when there
 * is none to drop.  See st_json_parse_skim() for why Jansson's verdict on
 * it is its verdict on buf.  Outside strings only a quote matters, so
 * memchr finds the next.
 */
static size_t skim(const char *buf, size_t len, size_t minlen, char **out)
{
	const char *p = buf, *e = buf + len, *from = buf, *s, *q, *n;
	size_t o = 0;

	while (p && (p = memchr(p, '"', (size_t)(e - p)))) {
		for (s = q = p + 1; q < e && plain((unsigned char)*q); q++)
			;
		if (q >= e || *q != '"' || (size_t)(q - s) < minlen) {
			/* s..q is plain, so no backslash before q escapes */
			p = q < e ? str_end(q, e) : NULL;
			continue;
		}
		/* a member's name is left whole: duplicates must still show */
		for (n = q + 1; n < e && ws_char(*n); n++)
			;
		if (n < e && *n == ':') {
			p = q + 1;
			continue;
		}
		if (!*out)
			*out = st_malloc(len);
		memcpy(*out + o, from, (size_t)(s - from));
		o += (size_t)(s - from);
		from = q;
		p = q + 1;
	}
	if (from == buf)
		return 0;
	memcpy(*out + o, from, (size_t)(e - from));
	return o + (size_t)(e - from);
}

struct st_json *st_json_parse_skim(const char *buf, size_t len, size_t max,
                                   const char *what, size_t minlen)
{
	char *t = NULL;
	size_t n;
	struct st_json *j;

	if (len > max || !len)
		return st_json_parse(buf, len, max, what);
	n = skim(buf, len, minlen, &t);
	j = st_json_parse(n ? t : buf, n ? n : len, max, what);
	st_free_wiped(t);
	return j;
}

struct st_json *st_json_parse(const char *buf, size_t len, size_t max,
                              const char *what)
{
	json_error_t e;
	json_t *j;

	if (len > max) {
		st_error(ST_EX_DATAERR, "%s is larger than %zu bytes", what, max);
		return NULL;
	}
	if (st_json_depth_ok(buf, len, ST_JSON_MAX_DEPTH) < 0) {
		st_error(ST_EX_DATAERR, "%s is nested deeper than %d levels",
		         what, ST_JSON_MAX_DEPTH);
		return NULL;
	}
	/* JSON_ALLOW_NUL is deliberately absent: \u0000 is refused */
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES,
	               &e);
	if (!j) {
		st_error(ST_EX_DATAERR, "%s is not valid JSON: %s", what, e.text);
		return NULL;
	}
	return SJ(j);
}

void st_json_free(struct st_json *j)
{
	if (j)
		json_decref(J(j));
}

char *st_json_dump(const struct st_json *j)
{
	char *s = json_dumps(J(j), JSON_COMPACT | JSON_PRESERVE_ORDER |
	                     JSON_ENCODE_ANY);

	if (!s) {
		fputs("out of memory\n", stderr);
		abort();
	}
	return s;
}

static json_t *chk(json_t *j)
{
	if (!j) {
		fputs("out of memory\n", stderr);
		abort();
	}
	return j;
}

struct st_json *st_json_object(void)
{
	return SJ(chk(json_object()));
}

struct st_json *st_json_array(void)
{
	return SJ(chk(json_array()));
}

int st_json_is_object(const struct st_json *j)
{
	return j && json_is_object(J(j));
}

int st_json_is_array(const struct st_json *j)
{
	return j && json_is_array(J(j));
}

size_t st_json_array_size(const struct st_json *a)
{
	return json_array_size(J(a));
}

struct st_json *st_json_array_get(const struct st_json *a, size_t i)
{
	return SJ(json_array_get(J(a), i));
}

void st_json_array_append(struct st_json *a, struct st_json *v)
{
	json_array_append_new(J(a), J(v));
}

struct st_json *st_json_get(const struct st_json *o, const char *key)
{
	return SJ(json_object_get(J(o), key));
}

void st_json_set(struct st_json *o, const char *key, struct st_json *v)
{
	json_object_set_new(J(o), key, J(v));
}

void st_json_set_str(struct st_json *o, const char *key, const char *s)
{
	st_json_set_strn(o, key, s, strlen(s));
}

void st_json_set_strn(struct st_json *o, const char *key, const char *s,
                      size_t n)
{
	json_object_set_new(J(o), key, chk(json_stringn_nocheck(s, n)));
}

void st_json_set_int(struct st_json *o, const char *key, int64_t v)
{
	json_object_set_new(J(o), key, chk(json_integer((json_int_t)v)));
}

void st_json_set_bool(struct st_json *o, const char *key, int v)
{
	json_object_set_new(J(o), key, json_boolean(v));
}

void st_json_set_null(struct st_json *o, const char *key)
{
	json_object_set_new(J(o), key, json_null());
}

void st_json_set_b64(struct st_json *o, const char *key, const void *p,
                     size_t n)
{
	char *s = st_b64_encode_alloc(p, n, ST_B64_URL_RAW);

	st_json_set_str(o, key, s);
	free(s);
}

struct st_json *st_json_str(const char *s)
{
	return SJ(chk(json_string_nocheck(s)));
}

struct st_json *st_json_int(int64_t v)
{
	return SJ(chk(json_integer((json_int_t)v)));
}

static json_t *member(const struct st_json *o, const char *key)
{
	json_t *v;

	if (!o || !json_is_object(J(o))) {
		st_error(ST_EX_DATAERR, "expected a JSON object");
		return NULL;
	}
	v = json_object_get(J(o), key);
	if (!v)
		st_error(ST_EX_DATAERR, "missing field '%s'", key);
	return v;
}

int st_json_as_str(const struct st_json *v, const char **s, size_t *len)
{
	if (!v || !json_is_string(J(v)))
		return st_error(ST_EX_DATAERR, "expected a string");
	*s = json_string_value(J(v));
	if (len)
		*len = json_string_length(J(v));
	return 0;
}

int st_json_as_int(const struct st_json *v, int64_t min, int64_t max,
                   int64_t *out)
{
	json_int_t i;

	if (!v || !json_is_integer(J(v)))
		return st_error(ST_EX_DATAERR, "expected an integer");
	i = json_integer_value(J(v));
	if (i < min || i > max)
		return st_error(ST_EX_DATAERR, "integer %lld out of range",
		                (long long)i);
	*out = i;
	return 0;
}

int st_json_get_str(const struct st_json *o, const char *key,
                    const char **s, size_t *len)
{
	json_t *v = member(o, key);

	if (!v)
		return -1;
	if (!json_is_string(v))
		return st_error(ST_EX_DATAERR, "field '%s' is not a string", key);
	*s = json_string_value(v);
	if (len)
		*len = json_string_length(v);
	return 0;
}

int st_json_get_int(const struct st_json *o, const char *key,
                    int64_t min, int64_t max, int64_t *out)
{
	json_t *v = member(o, key);
	json_int_t i;

	if (!v)
		return -1;
	if (!json_is_integer(v))
		return st_error(ST_EX_DATAERR, "field '%s' is not an integer",
		                key);
	i = json_integer_value(v);
	if (i < min || i > max)
		return st_error(ST_EX_DATAERR, "field '%s' is out of range", key);
	*out = i;
	return 0;
}

int st_json_get_bool(const struct st_json *o, const char *key, int *out)
{
	json_t *v = member(o, key);

	if (!v)
		return -1;
	if (!json_is_boolean(v))
		return st_error(ST_EX_DATAERR, "field '%s' is not a boolean",
		                key);
	*out = json_is_true(v);
	return 0;
}

int st_json_get_b64_alloc(const struct st_json *o, const char *key,
                          size_t max, unsigned char **out, size_t *outlen)
{
	const char *s;
	size_t len;
	unsigned char *buf;

	if (st_json_get_str(o, key, &s, &len) < 0)
		return -1;
	if (len > st_b64_enclen(max, ST_B64_URL_RAW))
		return st_error(ST_EX_DATAERR, "field '%s' is too long", key);
	buf = st_malloc(st_b64_declen(len));
	if (st_b64_decode(s, len, buf, outlen, ST_B64_URL_RAW) < 0) {
		free(buf);
		return st_error(ST_EX_DATAERR, "field '%s' is not canonical "
		                "unpadded base64url", key);
	}
	*out = buf;
	return 0;
}

int st_json_get_b64(const struct st_json *o, const char *key,
                    unsigned char *out, size_t n)
{
	unsigned char *buf;
	size_t len;

	if (st_json_get_b64_alloc(o, key, n, &buf, &len) < 0)
		return -1;
	if (len != n) {
		st_free_secret(buf, len);
		return st_error(ST_EX_DATAERR, "field '%s' is %zu bytes, not %zu",
		                key, len, n);
	}
	memcpy(out, buf, n);
	st_free_secret(buf, len);
	return 0;
}

int st_json_get_obj(const struct st_json *o, const char *key,
                    struct st_json **out)
{
	json_t *v = member(o, key);

	if (!v)
		return -1;
	if (!json_is_object(v))
		return st_error(ST_EX_DATAERR, "field '%s' is not an object", key);
	*out = SJ(v);
	return 0;
}

int st_json_get_arr(const struct st_json *o, const char *key,
                    struct st_json **out)
{
	json_t *v = member(o, key);

	if (!v)
		return -1;
	if (!json_is_array(v))
		return st_error(ST_EX_DATAERR, "field '%s' is not an array", key);
	*out = SJ(v);
	return 0;
}
