/*
 * b64.c - strict base64 in four variants, and hex.  Decoding accepts only
 * the canonical encoding: the variant's alphabet, padding exactly where the
 * variant wants it, zero unused trailing bits, no whitespace.  (OpenSSL's
 * decoder is lax about all of these, so it is not used for parsing.)
 */
#include <string.h>

#include "st.h"

static const char std_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int is_url(enum st_b64_variant v)
{
	return v == ST_B64_URL || v == ST_B64_URL_RAW;
}

static int is_padded(enum st_b64_variant v)
{
	return v == ST_B64_STD || v == ST_B64_URL;
}

size_t st_b64_enclen(size_t n, enum st_b64_variant v)
{
	if (is_padded(v))
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t st_b64_declen(size_t inlen)
{
	return inlen / 4 * 3 + 3;
}

void st_b64_encode(const void *in, size_t n, char *out, enum st_b64_variant v)
{
	const unsigned char *s = in;
	const char *a = is_url(v) ? url_alpha : std_alpha;
	size_t i;
	char *o = out;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = a[s[i] >> 2];
		*o++ = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*o++ = a[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		*o++ = a[s[i + 2] & 63];
	}
	if (n - i == 1) {
		*o++ = a[s[i] >> 2];
		*o++ = a[(s[i] & 3) << 4];
		if (is_padded(v)) {
			*o++ = '=';
			*o++ = '=';
		}
	} else if (n - i == 2) {
		*o++ = a[s[i] >> 2];
		*o++ = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*o++ = a[(s[i + 1] & 15) << 2];
		if (is_padded(v))
			*o++ = '=';
	}
	*o = '\0';
}

char *st_b64_encode_alloc(const void *in, size_t n, enum st_b64_variant v)
{
	char *out = st_malloc(st_b64_enclen(n, v) + 1);

	st_b64_encode(in, n, out, v);
	return out;
}

static int val(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

int st_b64_decode(const char *in, size_t inlen, unsigned char *out,
                  size_t *outlen, enum st_b64_variant v)
{
	int url = is_url(v);
	size_t i, n = inlen, o = 0, rem;
	int q[4];

	if (is_padded(v)) {
		if (inlen % 4)
			return st_error(ST_EX_DATAERR, "bad base64: length");
		if (n && in[n - 1] == '=')
			n--;
		if (n && in[n - 1] == '=')
			n--;
		if (inlen - n && n % 4 < 2)
			return st_error(ST_EX_DATAERR, "bad base64: padding");
	}
	rem = n % 4;
	if (rem == 1)
		return st_error(ST_EX_DATAERR, "bad base64: length");
	for (i = 0; i + 4 <= n; i += 4) {
		for (int k = 0; k < 4; k++)
			if ((q[k] = val((unsigned char)in[i + k], url)) < 0)
				return st_error(ST_EX_DATAERR,
				                "bad base64: invalid character");
		out[o++] = (unsigned char)(q[0] << 2 | q[1] >> 4);
		out[o++] = (unsigned char)(q[1] << 4 | q[2] >> 2);
		out[o++] = (unsigned char)(q[2] << 6 | q[3]);
	}
	if (rem) {
		for (size_t k = 0; k < rem; k++)
			if ((q[k] = val((unsigned char)in[i + k], url)) < 0)
				return st_error(ST_EX_DATAERR,
				                "bad base64: invalid character");
		out[o++] = (unsigned char)(q[0] << 2 | q[1] >> 4);
		if (rem == 2 && (q[1] & 15))
			return st_error(ST_EX_DATAERR, "bad base64: not canonical");
		if (rem == 3) {
			out[o++] = (unsigned char)(q[1] << 4 | q[2] >> 2);
			if (q[2] & 3)
				return st_error(ST_EX_DATAERR,
				                "bad base64: not canonical");
		}
	}
	*outlen = o;
	return 0;
}

void st_hex_encode(const void *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	const unsigned char *s = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[s[i] >> 4];
		out[2 * i + 1] = d[s[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int st_hex_decode(const char *in, unsigned char *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return st_error(ST_EX_DATAERR, "bad hex: length");
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return st_error(ST_EX_DATAERR, "bad hex: invalid character");
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}
