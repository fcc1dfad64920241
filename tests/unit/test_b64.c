/*
 * test_b64.c - base64 in its four variants and hex.  The RFC 4648 §10
 * vectors both ways, then everything a strict decoder must refuse: every
 * string here has exactly one canonical spelling, so a second spelling that
 * decodes would let two different wire messages carry the same bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "st.h"

static const enum st_b64_variant variants[] = {
	ST_B64_STD, ST_B64_STD_RAW, ST_B64_URL, ST_B64_URL_RAW,
};

static const char *vname(enum st_b64_variant v)
{
	switch (v) {
	case ST_B64_STD: return "std";
	case ST_B64_STD_RAW: return "std-raw";
	case ST_B64_URL: return "url";
	case ST_B64_URL_RAW: return "url-raw";
	}
	return "?";
}

/* RFC 4648 §10; the raw variants are the padded text without '=' */
static const struct {
	const char *plain, *enc;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static int padded(enum st_b64_variant v)
{
	return v == ST_B64_STD || v == ST_B64_URL;
}

/* The expected text of enc for variant v: padding dropped when raw. */
static void expect_for(const char *enc, enum st_b64_variant v, char *out)
{
	size_t n = strlen(enc);

	memcpy(out, enc, n + 1);
	if (!padded(v))
		while (n && out[n - 1] == '=')
			out[--n] = '\0';
}

static int decodes(const char *s, enum st_b64_variant v)
{
	unsigned char out[64];
	size_t n = strlen(s), outlen;

	assert_true(st_b64_declen(n) <= sizeof(out));
	st_error_clear();
	return st_b64_decode(s, n, out, &outlen, v) == 0;
}

static void must_reject(const char *s, enum st_b64_variant v)
{
	if (decodes(s, v))
		fail_msg("%s accepted \"%s\"", vname(v), s);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
}

static void must_accept(const char *s, enum st_b64_variant v)
{
	if (!decodes(s, v))
		fail_msg("%s refused \"%s\": %s", vname(v), s, st_errmsg());
}

static void rfc4648_encode(void **state)
{
	char want[16], out[16], *a;

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		enum st_b64_variant v = variants[k];

		for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
			const char *p = rfc4648[i].plain;

			expect_for(rfc4648[i].enc, v, want);
			assert_int_equal(st_b64_enclen(strlen(p), v),
			                 strlen(want));
			memset(out, 'X', sizeof(out));
			st_b64_encode(p, strlen(p), out, v);
			assert_string_equal(out, want);
			a = st_b64_encode_alloc(p, strlen(p), v);
			assert_string_equal(a, want);
			free(a);
		}
	}
}

static void rfc4648_decode(void **state)
{
	char enc[16];
	unsigned char out[16];
	size_t outlen;

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		enum st_b64_variant v = variants[k];

		for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
			const char *p = rfc4648[i].plain;

			expect_for(rfc4648[i].enc, v, enc);
			assert_true(st_b64_declen(strlen(enc)) <= sizeof(out));
			outlen = 999;
			assert_int_equal(st_b64_decode(enc, strlen(enc), out,
			                               &outlen, v), 0);
			assert_int_equal(outlen, strlen(p));
			assert_memory_equal(out, p, outlen);
		}
	}
}

/* The twin of the decode vectors: one changed character, other bytes. */
static void rfc4648_decode_tampered(void **state)
{
	unsigned char out[16];
	size_t outlen;

	(void)state;
	assert_int_equal(st_b64_decode("Zm9vYmFz", 8, out, &outlen,
	                               ST_B64_STD), 0);
	assert_int_equal(outlen, 6);
	assert_memory_not_equal(out, "foobar", 6);
	assert_memory_equal(out, "foobas", 6);
}

/* Bytes fb ff bf: the only place the two alphabets differ. */
static void alphabets(void **state)
{
	static const unsigned char raw[] = { 0xfb, 0xff, 0xbf, 0xfb, 0xf0 };
	char out[16];
	unsigned char dec[16];
	size_t n;

	(void)state;
	st_b64_encode(raw, sizeof(raw), out, ST_B64_STD);
	assert_string_equal(out, "+/+/+/A=");
	st_b64_encode(raw, sizeof(raw), out, ST_B64_STD_RAW);
	assert_string_equal(out, "+/+/+/A");
	st_b64_encode(raw, sizeof(raw), out, ST_B64_URL);
	assert_string_equal(out, "-_-_-_A=");
	st_b64_encode(raw, sizeof(raw), out, ST_B64_URL_RAW);
	assert_string_equal(out, "-_-_-_A");
	assert_int_equal(st_b64_decode("-_-_-_A", 7, dec, &n, ST_B64_URL_RAW),
	                 0);
	assert_int_equal(n, sizeof(raw));
	assert_memory_equal(dec, raw, n);
	assert_int_equal(st_b64_decode("+/+/+/A=", 8, dec, &n, ST_B64_STD), 0);
	assert_memory_equal(dec, raw, n);

	/* each alphabet refuses the other's two characters */
	must_reject("+/+/", ST_B64_URL_RAW);
	must_reject("+AAA", ST_B64_URL_RAW);
	must_reject("/AAA", ST_B64_URL);
	must_reject("-_-_", ST_B64_STD);
	must_reject("-AAA", ST_B64_STD_RAW);
	must_reject("_AAA", ST_B64_STD);
	must_accept("+/+/", ST_B64_STD);
	must_accept("-_-_", ST_B64_URL);
}

/* Unused low bits of the last character must be zero. */
static void non_canonical(void **state)
{
	(void)state;
	/* "f" is Zg: h, i, ... differ only in bits that fall off the end */
	must_accept("Zg", ST_B64_URL_RAW);
	must_reject("Zh", ST_B64_URL_RAW);
	must_reject("Zh", ST_B64_STD_RAW);
	must_reject("Zv", ST_B64_URL_RAW);
	must_reject("Zh==", ST_B64_STD);
	must_reject("Zh==", ST_B64_URL);
	/* "fo" is Zm8: Zm9 has a low bit set */
	must_accept("Zm8=", ST_B64_STD);
	must_reject("Zm9=", ST_B64_STD);
	must_reject("Zm9=", ST_B64_URL);
	must_reject("Zm9", ST_B64_STD_RAW);
	must_reject("Zm9vYh", ST_B64_URL_RAW);
	must_reject("Zm9vYmF", ST_B64_URL_RAW);
}

static void whitespace(void **state)
{
	(void)state;
	for (size_t k = 0; k < 4; k++) {
		enum st_b64_variant v = variants[k];

		must_reject("Zm9v Zm9v", v);
		must_reject("Zm9vZm9v ", v);
		must_reject(" Zm9vZm9v", v);
		must_reject("Zm9v\nZm9v", v);
		must_reject("Zm9vZm9v\n", v);
		must_reject("Zm9v\r\nZm9v", v);
		must_reject("Zm9v\tZm9v", v);
		must_reject("Zm9vZg==\n", v);
		must_reject("Zm9v\v", v);
	}
}

static void padding(void **state)
{
	(void)state;
	/* padded variants: missing, extra, misplaced */
	for (size_t k = 0; k < 2; k++) {
		enum st_b64_variant v = k ? ST_B64_URL : ST_B64_STD;

		must_accept("Zg==", v);
		must_reject("Zg", v);		/* missing */
		must_reject("Zg=", v);		/* half missing */
		must_reject("Zm8", v);
		must_reject("Zg===", v);	/* extra */
		must_reject("Zm8==", v);
		must_reject("Zm9v=", v);
		must_reject("Zm9v====", v);
		must_reject("Zg=A", v);		/* misplaced */
		must_reject("Z=g=", v);
		must_reject("=Zg=", v);
		must_reject("Zg==Zm9v", v);	/* padding mid-way */
		must_reject("Zm8=Zm9v", v);
		must_reject("====", v);
		must_reject("Z===", v);
		must_reject("Zm9vY===", v);
	}
	/* raw variants take no padding at all */
	for (size_t k = 0; k < 2; k++) {
		enum st_b64_variant v = k ? ST_B64_URL_RAW : ST_B64_STD_RAW;

		must_accept("Zg", v);
		must_reject("Zg==", v);
		must_reject("Zm8=", v);
		must_reject("Zg=", v);
		must_reject("=", v);
	}
}

static void bad_length(void **state)
{
	(void)state;
	for (size_t k = 0; k < 4; k++) {
		enum st_b64_variant v = variants[k];

		/* length 1 mod 4 can never be base64 */
		must_reject("Z", v);
		must_reject("Zm9vZ", v);
		must_reject("Zm9vZm9vZ", v);
	}
	must_reject("Zm9vYg", ST_B64_STD);	/* 2 mod 4 needs padding */
	must_reject("Zm9vYmE", ST_B64_URL);	/* 3 mod 4 too */
}

static void bad_chars(void **state)
{
	unsigned char out[8];
	size_t n;

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		enum st_b64_variant v = variants[k];

		must_reject("Zm9*", v);
		must_reject("Zm.v", v);
		must_reject("Zm9\x80", v);
		must_reject("\xc3\xa9Zm", v);
		/* an embedded NUL inside the given length */
		st_error_clear();
		assert_int_equal(st_b64_decode("Zm\0v", 4, out, &n, v), -1);
		assert_int_equal(st_errcode(), ST_EX_DATAERR);
	}
}

/* Every byte value round-trips through every variant, at every length mod 3. */
static void roundtrip(void **state)
{
	unsigned char raw[258], dec[264];
	size_t n;
	char *e;

	(void)state;
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)i;
	for (size_t k = 0; k < 4; k++) {
		for (size_t len = 253; len <= 258; len++) {
			e = st_b64_encode_alloc(raw, len, variants[k]);
			assert_int_equal(strlen(e),
			                 st_b64_enclen(len, variants[k]));
			assert_true(st_b64_declen(strlen(e)) <= sizeof(dec));
			assert_int_equal(st_b64_decode(e, strlen(e), dec, &n,
			                               variants[k]), 0);
			assert_int_equal(n, len);
			assert_memory_equal(dec, raw, len);
			free(e);
		}
	}
}

static void hex(void **state)
{
	static const unsigned char raw[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	unsigned char out[8];
	char enc[16];

	(void)state;
	st_hex_encode(raw, sizeof(raw), enc);
	assert_string_equal(enc, "00017f80abff");
	st_hex_encode(raw, 0, enc);
	assert_string_equal(enc, "");
	assert_int_equal(st_hex_decode("00017f80abff", out, 6), 0);
	assert_memory_equal(out, raw, 6);
	assert_int_equal(st_hex_decode("00017F80ABFF", out, 6), 0);
	assert_memory_equal(out, raw, 6);
	assert_int_equal(st_hex_decode("", out, 0), 0);
}

static void hex_rejects(void **state)
{
	static const char *const bad[] = {
		"0g", "g0", "zz", "0x", " 0", "0 ", "-1", "+1", "\xc3\xa9",
	};
	unsigned char out[8];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st_error_clear();
		if (st_hex_decode(bad[i], out, 1) == 0)
			fail_msg("hex accepted \"%s\"", bad[i]);
		assert_int_equal(st_errcode(), ST_EX_DATAERR);
	}
	/* odd length, and lengths that do not match n */
	assert_int_equal(st_hex_decode("abc", out, 1), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_int_equal(st_hex_decode("abc", out, 2), -1);
	assert_int_equal(st_hex_decode("abcd", out, 1), -1);
	assert_int_equal(st_hex_decode("ab", out, 2), -1);
	/* the twin: the same length with good digits passes */
	assert_int_equal(st_hex_decode("abcd", out, 2), 0);
	assert_int_equal(out[0], 0xab);
	assert_int_equal(out[1], 0xcd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc4648_encode),
		cmocka_unit_test(rfc4648_decode),
		cmocka_unit_test(rfc4648_decode_tampered),
		cmocka_unit_test(alphabets),
		cmocka_unit_test(non_canonical),
		cmocka_unit_test(whitespace),
		cmocka_unit_test(padding),
		cmocka_unit_test(bad_length),
		cmocka_unit_test(bad_chars),
		cmocka_unit_test(roundtrip),
		cmocka_unit_test(hex),
		cmocka_unit_test(hex_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
