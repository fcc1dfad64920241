/*
 * test_json.c - the strict JSON layer: what parses, what must not (truncated
 * input, duplicate keys, deep nesting, bad UTF-8, \u0000, oversize), and
 * the typed getters, whose messages must name the field so a user can tell
 * which part of a relay reply or state file was wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "st.h"

#define MAX (1 << 20)

static struct st_json *parse(const char *s)
{
	st_error_clear();
	return st_json_parse(s, strlen(s), MAX, "test input");
}

/* s must not parse: DATAERR, and the message names the input. */
static void reject_n(const char *s, size_t n)
{
	struct st_json *j;

	st_error_clear();
	j = st_json_parse(s, n, MAX, "test input");
	if (j) {
		st_json_free(j);
		fail_msg("accepted: %.*s", (int)(n > 80 ? 80 : n), s);
	}
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_non_null(strstr(st_errmsg(), "test input"));
}

static void reject(const char *s)
{
	reject_n(s, strlen(s));
}

static void accept(const char *s)
{
	struct st_json *j = parse(s);

	if (!j)
		fail_msg("refused %s: %s", s, st_errmsg());
	st_json_free(j);
}

/* The last error names the field and has class DATAERR. */
static void names_field(const char *field)
{
	char quoted[64];

	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	snprintf(quoted, sizeof(quoted), "'%s'", field);
	if (!strstr(st_errmsg(), quoted))
		fail_msg("message \"%s\" does not name %s", st_errmsg(), quoted);
}

/* n opening brackets (alternating [ and {"a":) then the closers. */
static char *nested(int n, int objects)
{
	struct st_buf b;

	st_buf_init(&b, 0);
	for (int i = 0; i < n; i++)
		st_buf_appendf(&b, "%s", objects ? "{\"a\":" : "[");
	st_buf_appendc(&b, '1');
	for (int i = 0; i < n; i++)
		st_buf_appendc(&b, objects ? '}' : ']');
	st_buf_cstr(&b);
	return (char *)b.data;
}

static void parse_ok(void **state)
{
	struct st_json *j, *o, *a;
	const char *s;
	size_t len;
	int64_t i;
	int t;

	(void)state;
	j = parse("{\"user\":\"alice\",\"n\":42,\"ok\":true,\"o\":{\"x\":-1},"
	          "\"a\":[1,\"two\"],\"z\":null,\"u\":\"h\\u00e9\\ud83d\\ude00\"}");
	assert_non_null(j);
	assert_true(st_json_is_object(j));
	assert_int_equal(st_json_get_str(j, "user", &s, &len), 0);
	assert_string_equal(s, "alice");
	assert_int_equal(len, 5);
	assert_int_equal(st_json_get_int(j, "n", 0, 100, &i), 0);
	assert_int_equal(i, 42);
	assert_int_equal(st_json_get_bool(j, "ok", &t), 0);
	assert_int_equal(t, 1);
	assert_int_equal(st_json_get_obj(j, "o", &o), 0);
	assert_int_equal(st_json_get_int(o, "x", -5, 5, &i), 0);
	assert_int_equal(i, -1);
	assert_int_equal(st_json_get_arr(j, "a", &a), 0);
	assert_true(st_json_is_array(a));
	assert_int_equal(st_json_array_size(a), 2);
	assert_int_equal(st_json_as_int(st_json_array_get(a, 0), 0, 9, &i), 0);
	assert_int_equal(i, 1);
	assert_int_equal(st_json_as_str(st_json_array_get(a, 1), &s, NULL), 0);
	assert_string_equal(s, "two");
	assert_null(st_json_array_get(a, 2));
	assert_non_null(st_json_get(j, "z"));
	assert_null(st_json_get(j, "nope"));
	/* escapes decode to UTF-8, a surrogate pair to one code point */
	assert_int_equal(st_json_get_str(j, "u", &s, &len), 0);
	assert_string_equal(s, "h\xc3\xa9\xf0\x9f\x98\x80");
	st_json_free(j);

	accept("[]");
	accept("{}");
	accept(" \n\t{ \"a\" : [ ] }\r\n");
	accept("[\"\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\"]");	/* raw UTF-8 */
}

static void truncated(void **state)
{
	static const char *const bad[] = {
		"", " ", "{", "[", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,",
		"[1,2", "[1,", "\"abc", "[\"abc", "{\"a\":tru", "[nul",
		"{\"a\":\"\\u00", "[1e", "[-",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		reject(bad[i]);
	/* the untruncated forms are fine */
	accept("{\"a\":1}");
	accept("[1,2]");
	/* trailing garbage after a complete value */
	reject("{\"a\":1}}");
	reject("{\"a\":1} x");
	reject("[1][2]");
}

static void duplicate_keys(void **state)
{
	(void)state;
	reject("{\"a\":1,\"a\":2}");
	reject("{\"a\":1,\"a\":1}");
	reject("{\"x\":{\"k\":1,\"b\":2,\"k\":3}}");
	reject("[{\"a\":1,\"a\":null}]");
	/* an escaped spelling of the same key is the same key */
	reject("{\"a\":1,\"\\u0061\":2}");
	/* the twin: distinct keys, and the same key in sibling objects */
	accept("{\"a\":1,\"b\":2}");
	accept("[{\"a\":1},{\"a\":2}]");
}

static void depth(void **state)
{
	char *s;

	(void)state;
	s = nested(ST_JSON_MAX_DEPTH, 0);
	accept(s);
	assert_int_equal(st_json_depth_ok(s, strlen(s), ST_JSON_MAX_DEPTH), 0);
	free(s);
	s = nested(ST_JSON_MAX_DEPTH + 1, 0);
	reject(s);
	assert_non_null(strstr(st_errmsg(), "nested"));
	assert_int_equal(st_json_depth_ok(s, strlen(s), ST_JSON_MAX_DEPTH), -1);
	free(s);
	s = nested(ST_JSON_MAX_DEPTH, 1);
	accept(s);
	free(s);
	s = nested(ST_JSON_MAX_DEPTH + 1, 1);
	reject(s);
	free(s);
}

/*
 * The text of member key's value in doc as the raw views find it, or
 * "(none)", "(escaped)" or "(cut)"; loose as st_json_raw_end() sets it
 * (-1 when it was not reached).
 */
static void raw_member(const char *doc, const char *key, const char *want,
                       int want_loose)
{
	const char *e = doc + strlen(doc), *v, *end;
	int rc, loose = 0;
	char *got;

	rc = st_json_raw_get(doc, e, key, &v);
	if (rc != 1) {
		got = st_strdup(rc == 0 ? "(none)" : "(escaped)");
		loose = -1;
	} else if (!(end = st_json_raw_end(v, e, &loose))) {
		got = st_strdup("(cut)");
		loose = -1;
	} else {
		got = st_strndup(v, (size_t)(end - v));
	}
	assert_string_equal(got, want);
	assert_int_equal(loose, want_loose);
	free(got);
}

/*
 * The raw views find each value as the text has it: strings with escaped
 * quotes and backslashes, brackets inside strings, numbers and literals
 * before a bracket, whitespace anywhere.  Jansson must accept every
 * document first (the views' contract).
 */
static void raw_views(void **state)
{
	static const char doc[] =
	    " { \"a\" : \"x\\\\\" , \"s\":\"q\\\"}]\\\\\\\"\",\"n\":-1.5e3,"
	    "\"t\":true,\"arr\":[1,{\"k\":[null,\"]\"]},\"\\\\\"],"
	    "\"o\":{\"p\":{\"q\":\"}\"}},\"sp\":{ \"x\" :[1 , 2]}} ";
	static const struct {
		const char *doc, *key, *want;
		int loose;
	} cases[] = {
		{ doc, "a", "\"x\\\\\"", 0 },
		{ doc, "s", "\"q\\\"}]\\\\\\\"\"", 0 },
		{ doc, "n", "-1.5e3", 0 },
		{ doc, "t", "true", 0 },
		{ doc, "o", "{\"p\":{\"q\":\"}\"}}", 0 },
		{ doc, "sp", "{ \"x\" :[1 , 2]}", 1 },
		{ doc, "q", "(none)", -1 },
		{ doc, "arr", "[1,{\"k\":[null,\"]\"]},\"\\\\\"]", 0 },
		/* a name spelled with an escape might be the one asked for */
		{ "{\"\\u0061\":1,\"b\":2}", "b", "(escaped)", -1 },
		/* the twin: an escape after the member asked for is not reached */
		{ "{\"b\":2,\"\\u0061\":1}", "b", "2", 0 },
		/* not an object, and text cut short */
		{ "[1]", "b", "(escaped)", -1 },
		{ "{\"b\":\"abc", "b", "(cut)", -1 },
	};
	static const char empty[] = "[]";
	const char *items[3], *e = doc + sizeof(doc) - 1, *arr;
	struct st_json *j;

	(void)state;
	j = st_json_parse(doc, strlen(doc), 1024, "doc");
	assert_non_null(j);
	st_json_free(j);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		raw_member(cases[i].doc, cases[i].key, cases[i].want,
		           cases[i].loose);
	/* the array's three elements, and a wrong count refused */
	assert_int_equal(st_json_raw_get(doc, e, "arr", &arr), 1);
	assert_int_equal(st_json_raw_items(arr, e, items, 3), 0);
	assert_int_equal(strncmp(items[0], "1,", 2), 0);
	assert_int_equal(strncmp(items[1], "{\"k\"", 4), 0);
	assert_int_equal(strncmp(items[2], "\"\\\\\"]", 5), 0);
	assert_int_equal(st_json_raw_items(arr, e, items, 2), -1);
	assert_int_equal(st_json_raw_items(empty, empty + 2, items, 0), 0);
}

/* Brackets inside strings, escaped quotes included, are not nesting. */
/*
 * Skimming: Jansson's verdict on the skimmed text is its verdict on the
 * text itself, and the tree differs only in long plain value strings, now
 * empty.  minlen 4 here; want is a's value in the skimmed tree, or NULL
 * when both parsers must refuse the text.
 */
static void skim(void **state)
{
	static const struct {
		const char *doc, *want;
	} cases[] = {
		{ "{\"a\":\"abcd\"}", "" },
		{ "{\"a\":\"abc\"}", "abc" },
		{ "{\"b\":[\"abcd\",{\"c\":\"efgh\"}],\"a\":\"abcd\"}", "" },
		/* names are left whole: two long ones that differ are two */
		{ "{\"abcd\":1,\"abce\" \n:2,\"a\":\"x\"}", "x" },
		/* and the same one twice is refused */
		{ "{\"abcd\":1,\"abcd\":2,\"a\":\"x\"}", NULL },
		/* not plain: an escape, a backslash, UTF-8, a control byte */
		{ "{\"a\":\"ab\\\"cd\"}", "ab\"cd" },
		{ "{\"a\":\"abcd\\\\\"}", "abcd\\" },
		{ "{\"a\":\"abcd\xc3\xa9\"}", "abcd\xc3\xa9" },
		{ "{\"a\":\"abcd\xff\"}", NULL },
		{ "{\"a\":\"abcd\001\"}", NULL },
		/* broken around a long string */
		{ "{\"a\":\"abcdefg", NULL },
		{ "{\"a\":\"abcd\"", NULL },
		{ "{\"a\":\"abcd\":1}", NULL },
		{ "{\"a\" \"abcd\"}", NULL },
		{ "{\"a\":\"abcd\"}x", NULL },
		{ "{\"a\":abcd\"efgh\"}", NULL },
		{ "\"abcd\"", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *d = cases[i].doc, *v;
		struct st_json *j = st_json_parse(d, strlen(d), 1024, "doc");
		struct st_json *k = st_json_parse_skim(d, strlen(d), 1024,
		                                       "doc", 4);

		if (!cases[i].want) {
			if (j || k)
				fail_msg("case %zu: %s and %s", i, j ? "parsed" :
				         "refused", k ? "skimmed" : "refused");
			continue;
		}
		assert_non_null(j);
		assert_non_null(k);
		assert_int_equal(st_json_get_str(k, "a", &v, NULL), 0);
		assert_string_equal(v, cases[i].want);
		st_json_free(j);
		st_json_free(k);
	}
}

static void depth_ignores_strings(void **state)
{
	struct st_buf b;

	(void)state;
	st_buf_init(&b, 0);
	st_buf_appendf(&b, "%s", "[\"\\\"");
	for (int i = 0; i < 100; i++)
		st_buf_appendf(&b, "%s", "[{");
	st_buf_appendf(&b, "%s", "\\\\\",\"]]\"]");
	accept(st_buf_cstr(&b));
	st_buf_free(&b);
}

static void depth_100000_fails_fast(void **state)
{
	const size_t n = 100000;
	char *s = malloc(2 * n);
	struct timespec t0, t1;
	double ms;

	(void)state;
	assert_non_null(s);
	memset(s, '[', n);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	reject_n(s, n);
	assert_non_null(strstr(st_errmsg(), "nested"));
	/* and balanced, so only the pre-scan can catch it before Jansson */
	memset(s + n, ']', n);
	reject_n(s, 2 * n);
	assert_non_null(strstr(st_errmsg(), "nested"));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms < 1000.0);
	free(s);
}

static void bad_utf8(void **state)
{
	static const char *const bad[] = {
		"[\"\xff\"]",			/* never valid */
		"[\"\xc3\"]",			/* truncated sequence */
		"[\"\xc3(\"]",			/* bad continuation */
		"[\"\xc0\xaf\"]",		/* overlong '/' */
		"[\"\xe0\x80\xaf\"]",		/* overlong, 3 bytes */
		"[\"\xf0\x80\x80\xaf\"]",	/* overlong, 4 bytes */
		"[\"\xed\xa0\x80\"]",		/* surrogate as UTF-8 */
		"[\"\xf4\x90\x80\x80\"]",	/* above U+10FFFF */
		"{\"\xc0\xaf\":1}",		/* in a key */
		"[\"\x80\"]",			/* lone continuation */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		reject(bad[i]);
	/* the twin: the well-formed neighbours */
	accept("[\"\xc3\xa9\"]");
	accept("[\"/\"]");
	accept("[\"\xed\x9f\xbf\"]");		/* U+D7FF */
	accept("[\"\xf4\x8f\xbf\xbf\"]");	/* U+10FFFF */
}

static void bad_escapes(void **state)
{
	(void)state;
	reject("[\"\\ud800\"]");		/* lone high surrogate */
	reject("[\"\\udc00\"]");		/* lone low surrogate */
	reject("[\"\\ud800x\"]");
	reject("[\"\\ud800\\u0041\"]");		/* high then not low */
	reject("[\"\\u0000\"]");
	reject("[\"a\\u0000b\"]");
	reject("{\"a\\u0000\":1}");		/* in a key */
	reject("[\"\\x41\"]");			/* not a JSON escape */
	reject("[\"\\u12\"]");
	/* raw control characters and a raw NUL inside a string */
	reject("[\"a\x01z\"]");
	reject("[\"a\nz\"]");
	reject_n("[\"a\0z\"]", 7);
	/* twins */
	accept("[\"\\ud83d\\ude00\"]");
	accept("[\"\\u0001\"]");
	accept("[\"\\n\\t\\\\\\/\\\"\"]");
}

static void oversize(void **state)
{
	const char *s = "{\"a\":\"0123456789\"}";
	size_t n = strlen(s);
	struct st_json *j;

	(void)state;
	st_error_clear();
	j = st_json_parse(s, n, n - 1, "reply");
	assert_null(j);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_non_null(strstr(st_errmsg(), "reply"));
	j = st_json_parse(s, n, n, "reply");
	assert_non_null(j);
	st_json_free(j);
}

static void getter_missing_and_type(void **state)
{
	struct st_json *j, *v;
	const char *s;
	unsigned char b[4];
	int64_t i;
	int t;

	(void)state;
	j = parse("{\"str\":\"x\",\"num\":1,\"flag\":false,\"obj\":{},"
	          "\"arr\":[],\"nul\":null}");
	assert_non_null(j);

	assert_int_equal(st_json_get_str(j, "user", &s, NULL), -1);
	names_field("user");
	assert_non_null(strstr(st_errmsg(), "missing"));
	assert_int_equal(st_json_get_int(j, "spk", 0, 1, &i), -1);
	names_field("spk");
	assert_int_equal(st_json_get_bool(j, "ok", &t), -1);
	names_field("ok");
	assert_int_equal(st_json_get_obj(j, "bundle", &v), -1);
	names_field("bundle");
	assert_int_equal(st_json_get_arr(j, "opks", &v), -1);
	names_field("opks");
	assert_int_equal(st_json_get_b64(j, "ek", b, 4), -1);
	names_field("ek");

	assert_int_equal(st_json_get_str(j, "num", &s, NULL), -1);
	names_field("num");
	assert_int_equal(st_json_get_str(j, "nul", &s, NULL), -1);
	names_field("nul");
	assert_int_equal(st_json_get_int(j, "str", 0, 1, &i), -1);
	names_field("str");
	assert_int_equal(st_json_get_int(j, "flag", 0, 1, &i), -1);
	names_field("flag");
	assert_int_equal(st_json_get_bool(j, "num", &t), -1);
	names_field("num");
	assert_int_equal(st_json_get_obj(j, "arr", &v), -1);
	names_field("arr");
	assert_int_equal(st_json_get_arr(j, "obj", &v), -1);
	names_field("obj");
	assert_int_equal(st_json_get_b64(j, "num", b, 4), -1);
	names_field("num");

	/* standalone values */
	assert_int_equal(st_json_as_str(st_json_get(j, "num"), &s, NULL), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_int_equal(st_json_as_int(st_json_get(j, "str"), 0, 9, &i), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_int_equal(st_json_as_str(NULL, &s, NULL), -1);

	/* a getter on something that is not an object */
	v = parse("[1]");
	assert_int_equal(st_json_get_str(v, "a", &s, NULL), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	st_json_free(v);
	st_json_free(j);
}

/* A 32-bit unsigned field ("spk" ids): what must not get through. */
static void getter_int_range(void **state)
{
	static const char *const bad[] = {
		"-1", "4294967296", "1.5", "\"12\"", "1e2", "1.0", "true",
		"null", "[1]", "-9223372036854775808",
	};
	static const char *const unparsable[] = {
		"1e400", "9223372036854775808", "01", "+1", "0x10", "NaN",
	};
	char doc[128];
	struct st_json *j;
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(doc, sizeof(doc), "{\"spk\":%s}", bad[i]);
		j = parse(doc);
		assert_non_null(j);
		st_error_clear();
		v = 7;
		if (st_json_get_int(j, "spk", 0, UINT32_MAX, &v) == 0)
			fail_msg("accepted spk %s as %lld", bad[i], (long long)v);
		names_field("spk");
		assert_int_equal(v, 7);
		st_json_free(j);
	}
	/* refused by the parser already, or else by the getter */
	for (size_t i = 0; i < sizeof(unparsable) / sizeof(unparsable[0]);
	     i++) {
		snprintf(doc, sizeof(doc), "{\"spk\":%s}", unparsable[i]);
		j = parse(doc);
		if (!j) {
			assert_int_equal(st_errcode(), ST_EX_DATAERR);
			continue;
		}
		if (st_json_get_int(j, "spk", 0, UINT32_MAX, &v) == 0)
			fail_msg("accepted spk %s", unparsable[i]);
		names_field("spk");
		st_json_free(j);
	}
	/* the twin: the edges of the range pass */
	j = parse("{\"lo\":0,\"hi\":4294967295,\"neg\":-9223372036854775808,"
	          "\"max\":9223372036854775807}");
	assert_non_null(j);
	assert_int_equal(st_json_get_int(j, "lo", 0, UINT32_MAX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(st_json_get_int(j, "hi", 0, UINT32_MAX, &v), 0);
	assert_int_equal(v, UINT32_MAX);
	assert_int_equal(st_json_get_int(j, "neg", INT64_MIN, 0, &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(st_json_get_int(j, "max", 0, INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(st_json_get_int(j, "hi", 0, UINT32_MAX - 1, &v), -1);
	names_field("hi");
	assert_int_equal(st_json_as_int(st_json_get(j, "hi"), 0,
	                                 UINT32_MAX - 1, &v), -1);
	st_json_free(j);
}

static void getter_b64(void **state)
{
	unsigned char key[33], out[33], *p;
	char doc[256], *enc;
	struct st_json *j;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(0xf0 + i * 7);

	/* exactly 32 bytes: fine */
	enc = st_b64_encode_alloc(key, 32, ST_B64_URL_RAW);
	assert_int_equal(strlen(enc), 43);
	snprintf(doc, sizeof(doc), "{\"ek\":\"%s\"}", enc);
	j = parse(doc);
	assert_int_equal(st_json_get_b64(j, "ek", out, 32), 0);
	assert_memory_equal(out, key, 32);
	st_json_free(j);

	/* non-canonical: the last character carries unused bits */
	assert_non_null(strchr("AEIMQUYcgkosw048", enc[42]));
	enc[42] = (char)(enc[42] + 1);
	snprintf(doc, sizeof(doc), "{\"ek\":\"%s\"}", enc);
	j = parse(doc);
	assert_int_equal(st_json_get_b64(j, "ek", out, 32), -1);
	names_field("ek");
	st_json_free(j);
	free(enc);

	/* padded, and the standard alphabet, are not base64url-unpadded */
	enc = st_b64_encode_alloc(key, 32, ST_B64_URL);
	snprintf(doc, sizeof(doc), "{\"ek\":\"%s\"}", enc);
	free(enc);
	j = parse(doc);
	assert_int_equal(st_json_get_b64(j, "ek", out, 32), -1);
	names_field("ek");
	st_json_free(j);
	j = parse("{\"ek\":\"+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/A\"}");
	assert_int_equal(st_json_get_b64(j, "ek", out, 32), -1);
	names_field("ek");
	st_json_free(j);
	j = parse("{\"ek\":\"-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_A\"}");
	assert_int_equal(st_json_get_b64(j, "ek", out, 32), 0);
	st_json_free(j);

	/* 31 and 33 bytes where 32 are wanted */
	for (size_t len = 31; len <= 33; len += 2) {
		enc = st_b64_encode_alloc(key, len, ST_B64_URL_RAW);
		snprintf(doc, sizeof(doc), "{\"ek\":\"%s\"}", enc);
		free(enc);
		j = parse(doc);
		memset(out, 0, sizeof(out));
		assert_int_equal(st_json_get_b64(j, "ek", out, 32), -1);
		names_field("ek");
		st_json_free(j);
	}
	/* the empty string is 0 bytes, not 32 */
	j = parse("{\"ek\":\"\"}");
	assert_int_equal(st_json_get_b64(j, "ek", out, 32), -1);
	names_field("ek");

	/* alloc: any length up to max */
	assert_int_equal(st_json_get_b64_alloc(j, "ek", 10, &p, &n), 0);
	assert_int_equal(n, 0);
	free(p);
	st_json_free(j);
	j = parse("{\"blob\":\"Zm9vYmE\"}");
	assert_int_equal(st_json_get_b64_alloc(j, "blob", 5, &p, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "fooba", 5);
	free(p);
	assert_int_equal(st_json_get_b64_alloc(j, "blob", 4, &p, &n), -1);
	names_field("blob");
	st_json_free(j);
}

static void build_and_dump(void **state)
{
	static const unsigned char raw[] = { 0xfb, 0xff, 0x00 };
	struct st_json *o = st_json_object(), *a = st_json_array(), *j;
	unsigned char back[3];
	char *s;
	int64_t v;

	(void)state;
	st_json_set_str(o, "s", "h\xc3\xa9 \"q\"");
	st_json_set_int(o, "i", -5);
	st_json_set_bool(o, "t", 1);
	st_json_set_null(o, "z");
	st_json_set_b64(o, "b", raw, sizeof(raw));
	st_json_array_append(a, st_json_int(1));
	st_json_array_append(a, st_json_str("x"));
	st_json_set(o, "a", a);
	s = st_json_dump(o);
	assert_string_equal(s, "{\"s\":\"h\xc3\xa9 \\\"q\\\"\",\"i\":-5,"
	                    "\"t\":true,\"z\":null,\"b\":\"-_8A\","
	                    "\"a\":[1,\"x\"]}");
	j = parse(s);
	assert_non_null(j);
	assert_int_equal(st_json_get_int(j, "i", -10, 0, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(st_json_get_b64(j, "b", back, 3), 0);
	assert_memory_equal(back, raw, 3);
	free(s);
	st_json_free(j);
	st_json_free(o);
}

/*
 * Jansson frees through st_free_wiped (installed before main), and that
 * wipes the whole block: the parser's copies of a password or key are
 * gone when the document is.
 */
static void jansson_frees_wiped(void **state)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;
	unsigned char *p;
	size_t n;

	(void)state;
	json_get_alloc_funcs(&m, &f);
	assert_ptr_equal(f, st_free_wiped);
	p = malloc(100);
	assert_non_null(p);
	n = malloc_usable_size(p);
	assert_true(n >= 100);
	memset(p, 0xAA, n);
	st_wipe_block(p);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(p[i], 0);
	free(p);
	st_wipe_block(NULL);
	st_free_wiped(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_ok),
		cmocka_unit_test(truncated),
		cmocka_unit_test(duplicate_keys),
		cmocka_unit_test(depth),
		cmocka_unit_test(depth_ignores_strings),
		cmocka_unit_test(depth_100000_fails_fast),
		cmocka_unit_test(bad_utf8),
		cmocka_unit_test(bad_escapes),
		cmocka_unit_test(oversize),
		cmocka_unit_test(getter_missing_and_type),
		cmocka_unit_test(getter_int_range),
		cmocka_unit_test(getter_b64),
		cmocka_unit_test(build_and_dump),
		cmocka_unit_test(jansson_frees_wiped),
		cmocka_unit_test(raw_views),
		cmocka_unit_test(skim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
