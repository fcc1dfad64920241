/*
 * fuzz_b64.c - strict base64 (all four variants), hex and Bech32 (with
 * the age key forms on top of it).  Besides not crashing, every decoder
 * must accept only the one canonical spelling of its output:
 *   decode(s) succeeds  =>  encode(decode(s)) == s
 *   decode(encode(x)) == x  for every x.
 * Bech32 compares case-insensitively: an all-uppercase string is valid
 * BIP-173, and an hrp without letters leaves the encoder no case to copy.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
	abort(); } } while (0)

static const enum st_b64_variant variants[] = {
	ST_B64_STD, ST_B64_STD_RAW, ST_B64_URL, ST_B64_URL_RAW,
};

static void b64(const uint8_t *data, size_t size, enum st_b64_variant v)
{
	unsigned char *dec = malloc(st_b64_declen(size));
	size_t n, elen;
	char *enc;

	/* decode, and a success must be the canonical encoding */
	if (st_b64_decode((const char *)data, size, dec, &n, v) == 0) {
		CHECK(n <= st_b64_declen(size));
		enc = st_b64_encode_alloc(dec, n, v);
		CHECK(strlen(enc) == size && memcmp(enc, data, size) == 0);
		free(enc);
	}
	free(dec);
	/* encode the raw bytes: the decoder must give them back */
	enc = st_b64_encode_alloc(data, size, v);
	elen = strlen(enc);
	CHECK(elen == st_b64_enclen(size, v));
	dec = malloc(st_b64_declen(elen));
	CHECK(st_b64_decode(enc, elen, dec, &n, v) == 0);
	CHECK(n == size && memcmp(dec, data, size) == 0);
	free(dec);
	free(enc);
}

static void hex(const char *s, size_t len)
{
	size_t n = len / 2;
	unsigned char *dec = malloc(n + 1);
	char *enc = malloc(2 * n + 1);

	if (st_hex_decode(s, dec, n) == 0) {
		CHECK(len == 2 * n);
		st_hex_encode(dec, n, enc);
		CHECK(strcasecmp(enc, s) == 0);
	}
	free(dec);
	free(enc);
}

static void bech32_decode(const char *s)
{
	char hrp[ST_BECH32_MAX + 1], out[ST_BECH32_MAX + 2];
	unsigned char data[ST_BECH32_MAX];
	size_t n, len;

	if (st_bech32_decode(s, hrp, sizeof(hrp), data, sizeof(data), &n) < 0)
		return;
	len = st_bech32_encode(hrp, data, n, out, sizeof(out));
	CHECK(len == strlen(s));
	CHECK(strcasecmp(out, s) == 0);
}

/* Encode under an hrp made from the first bytes, then decode. */
static void bech32_roundtrip(const uint8_t *data, size_t size)
{
	char hrp[84], back[ST_BECH32_MAX + 1], out[ST_BECH32_MAX + 2];
	unsigned char dec[ST_BECH32_MAX];
	size_t hlen, n, len;

	if (size < 1)
		return;
	hlen = 1 + data[0] % 83;
	if (size < 1 + hlen)
		return;
	for (size_t i = 0; i < hlen; i++)
		hrp[i] = (char)(33 + data[1 + i] % 94);     /* '!'..'~' */
	hrp[hlen] = '\0';
	data += 1 + hlen;
	size -= 1 + hlen;
	len = st_bech32_encode(hrp, data, size, out, sizeof(out));
	if (!len) {
		/* refused only when it would not fit */
		CHECK(hlen + 1 + (size * 8 + 4) / 5 + 6 + 1 > sizeof(out) ||
		      (size * 8 + 4) / 5 + 6 > ST_BECH32_MAX);
		return;
	}
	CHECK(len == strlen(out));
	if (len > ST_BECH32_MAX)
		return;  /* longer than the decoder takes, by design */
	CHECK(st_bech32_decode(out, back, sizeof(back), dec, sizeof(dec),
	                       &n) == 0);
	CHECK(strcasecmp(back, hrp) == 0);
	CHECK(n == size && memcmp(dec, data, size) == 0);
}

static void age_keys(const char *s)
{
	struct st_age_rcpt r;
	struct st_age_id id;
	char out[75];

	memset(&r, 0, sizeof(r));
	if (st_age_parse_recipient(s, &r) == 0) {
		CHECK(r.type == ST_AGE_X25519);
		st_age_format_recipient(r.pub, out);
		CHECK(strcasecmp(out, s) == 0);
	}
	memset(&id, 0, sizeof(id));
	if (st_age_parse_identity(s, &id) == 0) {
		CHECK(id.type == ST_AGE_X25519);
		st_age_format_identity(id.key, out);
		CHECK(strcasecmp(out, s) == 0);
		st_age_id_wipe(&id);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		b64(data, size, variants[i]);
	/* the string decoders take C strings: stop at the first NUL */
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	hex(s, strlen(s));
	bech32_decode(s);
	age_keys(s);
	free(s);
	bech32_roundtrip(data, size);
	return 0;
}
