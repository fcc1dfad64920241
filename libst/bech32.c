/*
 * bech32.c - BIP-173 Bech32 (not Bech32m), as age uses it for "age1..."
 * recipients and "AGE-SECRET-KEY-1..." identities: no 90-character limit,
 * all-lowercase or all-uppercase only, zero padding bits only.
 */
#include <string.h>

#include "internal.h"

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t polymod_step(uint32_t chk, unsigned v)
{
	static const uint32_t gen[5] = {
		0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3,
	};
	uint32_t top = chk >> 25;

	chk = (chk & 0x1ffffff) << 5 ^ v;
	for (int i = 0; i < 5; i++)
		if (top >> i & 1)
			chk ^= gen[i];
	return chk;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The checksum state after the (lowercased) hrp and the data values. */
static uint32_t polymod(const char *hrp, size_t hlen, const unsigned char *v,
                        size_t n)
{
	uint32_t chk = 1;

	for (size_t i = 0; i < hlen; i++)
		chk = polymod_step(chk, (unsigned)lower(hrp[i]) >> 5);
	chk = polymod_step(chk, 0);
	for (size_t i = 0; i < hlen; i++)
		chk = polymod_step(chk, (unsigned)lower(hrp[i]) & 31);
	for (size_t i = 0; i < n; i++)
		chk = polymod_step(chk, v[i]);
	return chk;
}

size_t st_bech32_encode(const char *hrp, const unsigned char *data, size_t n,
                        char *out, size_t cap)
{
	size_t hlen = strlen(hrp), nv = (n * 8 + 4) / 5, o = 0;
	unsigned char v[ST_BECH32_MAX];
	uint32_t acc = 0, chk;
	int bits = 0, upper = 0;

	if (hlen + 1 + nv + 6 + 1 > cap || nv + 6 > sizeof(v))
		return 0;
	for (size_t i = 0; i < hlen; i++)
		if (hrp[i] >= 'A' && hrp[i] <= 'Z')
			upper = 1;
	for (size_t i = 0, k = 0; i < n; i++) {
		acc = acc << 8 | data[i];
		for (bits += 8; bits >= 5; bits -= 5)
			v[k++] = acc >> (bits - 5) & 31;
		if (i + 1 == n && bits)
			v[k++] = acc << (5 - bits) & 31;
	}
	memset(v + nv, 0, 6);
	chk = polymod(hrp, hlen, v, nv + 6) ^ 1;
	for (int i = 0; i < 6; i++)
		v[nv + i] = chk >> (5 * (5 - i)) & 31;
	for (size_t i = 0; i < hlen; i++)
		out[o++] = (char)lower(hrp[i]);
	out[o++] = '1';
	for (size_t i = 0; i < nv + 6; i++)
		out[o++] = charset[v[i]];
	out[o] = '\0';
	for (size_t i = 0; upper && i < o; i++)
		if (out[i] >= 'a' && out[i] <= 'z')
			out[i] = (char)(out[i] - 32);
	return o;
}

int st_bech32_decode(const char *s, char *hrp, size_t hrpcap,
                     unsigned char *data, size_t cap, size_t *n)
{
	size_t len = strlen(s), sep, nv, o = 0;
	unsigned char v[ST_BECH32_MAX] = { 0 };
	int has_lower = 0, has_upper = 0, bits = 0;
	uint32_t acc = 0;
	const char *c;

	if (len > ST_BECH32_MAX)
		return st_error(ST_EX_DATAERR, "too long");
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 33 || s[i] > 126)
			return st_error(ST_EX_DATAERR,
			                "invalid character");
		has_lower |= s[i] >= 'a' && s[i] <= 'z';
		has_upper |= s[i] >= 'A' && s[i] <= 'Z';
	}
	if (has_lower && has_upper)
		return st_error(ST_EX_DATAERR, "mixed case");
	if (!(c = strrchr(s, '1')) || c == s || (size_t)(c - s) + 7 > len)
		return st_error(ST_EX_DATAERR, "no separator");
	sep = (size_t)(c - s);
	if (sep + 1 > hrpcap)
		return st_error(ST_EX_DATAERR, "prefix too long");
	nv = len - sep - 1;
	for (size_t i = 0; i < nv; i++) {
		const char *p = strchr(charset, lower(s[sep + 1 + i]));

		if (!p || !*p)
			return st_error(ST_EX_DATAERR,
			                "invalid character");
		v[i] = (unsigned char)(p - charset);
	}
	if (polymod(s, sep, v, nv) != 1)
		return st_error(ST_EX_DATAERR, "bad checksum");
	for (size_t i = 0; i < nv - 6; i++) {
		acc = acc << 5 | v[i];
		bits += 5;
		if (bits >= 8) {
			if (o == cap)
				return st_error(ST_EX_DATAERR,
				                "data too long");
			data[o++] = (unsigned char)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	if (bits >= 5 || (acc & ((1u << bits) - 1)))
		return st_error(ST_EX_DATAERR, "bad padding");
	memcpy(hrp, s, sep);
	hrp[sep] = '\0';
	*n = o;
	return 0;
}
