/*
 * fuzz_json.c - libst's strict JSON: the size cap, the depth pre-scan,
 * Jansson's parse with duplicate keys refused, and every typed getter on
 * every member of what parsed.  Checked beyond not crashing: a parse under
 * a cap one byte too small fails, and what parsed dumps to text that
 * parses again and dumps the same (so a value read from a peer can be
 * stored and read back).  Skimming the text changes nothing but the
 * emptied strings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
	abort(); } } while (0)

/* Every getter on member key of o; each may fail, none may misbehave. */
static void getters(const struct st_json *o, const char *key)
{
	const char *s;
	size_t len;
	int64_t i;
	int b;
	unsigned char k32[32], *p;
	struct st_json *v;

	if (st_json_get_str(o, key, &s, &len) == 0)
		CHECK(strlen(s) == len && st_utf8_ok(s, len));
	if (st_json_get_int(o, key, INT64_MIN, INT64_MAX, &i) == 0)
		CHECK(st_json_get_int(o, key, i, i, &i) == 0);
	st_json_get_int(o, key, 0, UINT32_MAX, &i);
	st_json_get_bool(o, key, &b);
	st_json_get_b64(o, key, k32, sizeof(k32));
	if (st_json_get_b64_alloc(o, key, 1 << 16, &p, &len) == 0)
		st_free_secret(p, len);
	st_json_get_obj(o, key, &v);
	st_json_get_arr(o, key, &v);
}

static void walk(const struct st_json *j, int depth)
{
	static const char *const some[] = { "v", "id", "user", "ct", NULL };
	const char *key, *s;
	json_t *v;
	size_t n, len;
	int64_t i;

	CHECK(depth <= ST_JSON_MAX_DEPTH + 1);
	if (st_json_is_object(j)) {
		json_object_foreach(J(j), key, v) {
			CHECK(st_json_get(j, key) == SJ(v));
			getters(j, key);
			walk(SJ(v), depth + 1);
		}
		getters(j, "no such member");
		st_json_only(j, some);
	} else if (st_json_is_array(j)) {
		n = st_json_array_size(j);
		CHECK(st_json_array_get(j, n) == NULL);
		for (size_t k = 0; k < n; k++) {
			struct st_json *e = st_json_array_get(j, k);

			if (st_json_as_str(e, &s, &len) == 0)
				CHECK(strlen(s) == len);
			st_json_as_int(e, INT64_MIN, INT64_MAX, &i);
			st_json_as_int(e, 0, 1, &i);
			walk(e, depth + 1);
		}
		/* getters on an array are type errors, not crashes */
		getters(j, "v");
	}
}

/*
 * k is j as st_json_parse_skim() gives it: the same but for strings that
 * may be empty in k.
 */
static int skimmed_of(json_t *j, json_t *k)
{
	const char *key;
	json_t *v;

	if (json_is_string(j) && json_is_string(k))
		return json_string_length(k) == 0 || json_equal(j, k);
	if (json_typeof(j) != json_typeof(k))
		return 0;
	if (json_is_object(j)) {
		if (json_object_size(j) != json_object_size(k))
			return 0;
		json_object_foreach(j, key, v) {
			if (!json_object_get(k, key) ||
			    !skimmed_of(v, json_object_get(k, key)))
				return 0;
		}
		return 1;
	}
	if (json_is_array(j)) {
		if (json_array_size(j) != json_array_size(k))
			return 0;
		for (size_t i = 0; i < json_array_size(j); i++)
			if (!skimmed_of(json_array_get(j, i), json_array_get(k, i)))
				return 0;
		return 1;
	}
	return json_equal(j, k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct st_json *j, *k, *again;
	char *d1, *d2;

	/* the depth pre-scan alone, at a few depths */
	st_json_depth_ok(buf, size, 0);
	st_json_depth_ok(buf, size, 1);
	st_json_depth_ok(buf, size, ST_JSON_MAX_DEPTH);
	j = st_json_parse(buf, size, size, "input");
	/* skimmed (every plain value string emptied), the same verdict */
	k = st_json_parse_skim(buf, size, size, "input", 1);
	CHECK(!j == !k);
	if (k)
		CHECK(skimmed_of(J(j), J(k)));
	st_json_free(k);
	if (!j)
		return 0;
	/* the cap counts every byte */
	CHECK(size == 0 || st_json_parse(buf, size, size - 1, "input") == NULL);
	CHECK(st_json_depth_ok(buf, size, ST_JSON_MAX_DEPTH) == 0);
	walk(j, 0);
	d1 = st_json_dump(j);
	again = st_json_parse(d1, strlen(d1), SIZE_MAX, "dump");
	if (!again) {
		fprintf(stderr, "dump does not parse: %s\n%s\n", st_errmsg(), d1);
		abort();
	}
	d2 = st_json_dump(again);
	CHECK(strcmp(d1, d2) == 0);
	free(d1);
	free(d2);
	st_json_free(again);
	st_json_free_secret(j);
	return 0;
}
