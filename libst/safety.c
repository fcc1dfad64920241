/*
 * safety.c - safety numbers, Signal's numeric fingerprint (SPEC §4).  The
 * generic functions take Signal's own parameters (hash version, key bytes,
 * stable identifier, iterations) so its published vectors can be checked;
 * st_safety_*() fix them to safetalk's: version 0, the 65-byte identity
 * encoding as the key, the user name as the identifier, 5200 iterations.
 */
#include <string.h>

#include <openssl/evp.h>

#include "st.h"

int st_fingerprint_hash(unsigned version, const void *key, size_t keylen,
                        const void *sid, size_t sidlen, unsigned iterations,
                        unsigned char out[64])
{
	unsigned char ver[2] = { (unsigned char)(version >> 8),
	                         (unsigned char)version };
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_sha512();
	int ok;

	if (iterations < 1 || version > 0xffff) {
		EVP_MD_CTX_free(c);
		return st_error(ST_EX_DATAERR, "bad fingerprint parameters");
	}
	ok = c && EVP_DigestInit_ex(c, md, NULL) == 1 &&
	     EVP_DigestUpdate(c, ver, 2) == 1 &&
	     EVP_DigestUpdate(c, key, keylen) == 1 &&
	     EVP_DigestUpdate(c, sid, sidlen) == 1 &&
	     EVP_DigestUpdate(c, key, keylen) == 1 &&
	     EVP_DigestFinal_ex(c, out, NULL) == 1;
	for (unsigned i = 1; ok && i < iterations; i++)
		ok = EVP_DigestInit_ex(c, md, NULL) == 1 &&
		     EVP_DigestUpdate(c, out, 64) == 1 &&
		     EVP_DigestUpdate(c, key, keylen) == 1 &&
		     EVP_DigestFinal_ex(c, out, NULL) == 1;
	EVP_MD_CTX_free(c);
	if (!ok)
		return st_error(ST_EX_DATAERR, "SHA-512 failed");
	return 0;
}

void st_fingerprint_digits(const unsigned char hash[64],
                           char out[ST_SAFETY_HALF_LEN + 1])
{
	for (int i = 0; i < 6; i++) {
		uint64_t v = 0;

		for (int k = 0; k < 5; k++)
			v = v << 8 | hash[5 * i + k];
		v %= 100000;
		for (int k = 4; k >= 0; k--) {
			out[5 * i + k] = (char)('0' + v % 10);
			v /= 10;
		}
	}
	out[ST_SAFETY_HALF_LEN] = '\0';
}

void st_fingerprint_combine(const char *a, const char *b,
                            char out[ST_SAFETY_LEN + 1])
{
	if (strcmp(a, b) > 0) {
		const char *t = a;

		a = b;
		b = t;
	}
	memcpy(out, a, ST_SAFETY_HALF_LEN);
	memcpy(out + ST_SAFETY_HALF_LEN, b, ST_SAFETY_HALF_LEN);
	out[ST_SAFETY_LEN] = '\0';
}

int st_fingerprint(unsigned version, unsigned iterations,
                   const void *key_a, size_t keylen_a,
                   const void *sid_a, size_t sidlen_a,
                   const void *key_b, size_t keylen_b,
                   const void *sid_b, size_t sidlen_b,
                   char out[ST_SAFETY_LEN + 1])
{
	unsigned char h[64];
	char da[ST_SAFETY_HALF_LEN + 1], db[ST_SAFETY_HALF_LEN + 1];

	if (st_fingerprint_hash(version, key_a, keylen_a, sid_a, sidlen_a,
	                        iterations, h) < 0)
		return -1;
	st_fingerprint_digits(h, da);
	if (st_fingerprint_hash(version, key_b, keylen_b, sid_b, sidlen_b,
	                        iterations, h) < 0)
		return -1;
	st_fingerprint_digits(h, db);
	st_fingerprint_combine(da, db, out);
	return 0;
}

int st_safety_half(const struct st_identity_pub *p, const char *user,
                   char out[ST_SAFETY_HALF_LEN + 1])
{
	unsigned char enc[ST_ID_ENC_LEN], h[64];

	st_identity_encode(p, enc);
	if (st_fingerprint_hash(0, enc, sizeof(enc), user, strlen(user),
	                        ST_SAFETY_ITERATIONS, h) < 0)
		return -1;
	st_fingerprint_digits(h, out);
	return 0;
}

int st_safety_number(const struct st_identity_pub *a, const char *user_a,
                     const struct st_identity_pub *b, const char *user_b,
                     char out[ST_SAFETY_LEN + 1])
{
	char da[ST_SAFETY_HALF_LEN + 1], db[ST_SAFETY_HALF_LEN + 1];

	if (st_safety_half(a, user_a, da) < 0 ||
	    st_safety_half(b, user_b, db) < 0)
		return -1;
	st_fingerprint_combine(da, db, out);
	return 0;
}

void st_safety_display(const char *number,
                       char out[ST_SAFETY_DISPLAY_LEN + 1])
{
	char *o = out;

	for (int g = 0; g < 12; g++) {
		if (g)
			*o++ = ' ';
		memcpy(o, number + 5 * g, 5);
		o += 5;
	}
	*o = '\0';
}

int st_safety_match(const char *input, const char *number)
{
	char d[ST_SAFETY_LEN];
	size_t n = 0;

	for (const char *s = input; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '-')
			continue;
		if (*s < '0' || *s > '9' || n == sizeof(d))
			return st_error(ST_EX_NO,
			                "safety number does not match");
		d[n++] = *s;
	}
	if (n != sizeof(d) || strlen(number) != ST_SAFETY_LEN ||
	    st_memeq_ct(d, number, sizeof(d)) != 0)
		return st_error(ST_EX_NO, "safety number does not match");
	return 0;
}
