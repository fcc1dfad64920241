/*
 * test_age.c - age v1 in libst: Bech32 keys (a pair made by the real
 * age-keygen), key files, encrypt/decrypt round trips around the 64 KiB
 * chunk boundaries for X25519, several recipients, scrypt and armor, bit
 * flips across header and payload, the push decoder under every split,
 * rekey, error classes, and the real age CLI both ways when it is
 * installed.  The CCTV vectors run separately (tests/tools/agevectors).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* made with age-keygen (age 1.1.1) */
#define KNOWN_PUB "age1ahw69xnkyzm6zq96nu2pe0dpteuhl9g4gwkqlzcd4q4az37v" \
                  "3sgqy4jepa"
#define KNOWN_SEC "AGE-SECRET-KEY-1WM538GLRWYCNHPT9PL622XVR0SVNFV6K2ARLXCMTD" \
                  "53JWTQDQ6QQ8G56KG"

static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 200000 };

static unsigned char *pattern(size_t n)
{
	unsigned char *p = st_malloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + (i >> 8) * 13);
	return p;
}

/* An fd reading n bytes at p (an unlinked temporary file). */
static int mem_fd(const void *p, size_t n)
{
	char path[] = "/tmp/test_age.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(st_write_all(fd, p, n), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

struct kp {
	struct st_age_id id;
	struct st_age_rcpt r;
};

static void keypair(struct kp *k)
{
	memset(k, 0, sizeof(*k));
	k->id.type = k->r.type = ST_AGE_X25519;
	assert_int_equal(st_x25519_keygen(k->id.key, k->r.pub), 0);
}

/* Encrypt in uneven writes; returns the file in *out. */
static void encrypt(const struct st_age_rcpt *r, size_t nr, int armor,
                    const unsigned char *p, size_t n, struct st_buf *out)
{
	struct st_age_enc *e;
	size_t off = 0, step = 1000;

	st_buf_init(out, 0);
	e = st_age_enc_new(r, nr, armor, st_sink_buf, out);
	assert_non_null(e);
	while (off < n) {
		size_t k = n - off < step ? n - off : step;

		assert_int_equal(st_age_enc_write(e, p + off, k), 0);
		off += k;
		step = step * 3 + 1;
	}
	assert_int_equal(st_age_enc_finish(e), 0);
}

/* Decrypt; the plaintext released (even on failure) in *out. */
static int decrypt(const unsigned char *f, size_t n,
                   const struct st_age_id *ids, size_t nids,
                   struct st_buf *out)
{
	int fd = mem_fd(f, n), rc;

	st_buf_init(out, 0);
	st_error_clear();
	rc = st_age_decrypt(fd, ids, nids, st_sink_buf, out);
	close(fd);
	return rc;
}

static void roundtrip(const struct st_age_rcpt *r, size_t nr, int armor,
                      const struct st_age_id *id)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		unsigned char *p = pattern(sizes[i]);
		struct st_buf f, out;

		encrypt(r, nr, armor, p, sizes[i], &f);
		assert_int_equal(decrypt(f.data, f.len, id, 1, &out), 0);
		assert_int_equal(out.len, sizes[i]);
		assert_memory_equal(out.data, p, sizes[i]);
		assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_NONE);
		st_buf_free(&f);
		st_buf_free(&out);
		free(p);
	}
}

static void bech32_known_pair(void **state)
{
	struct st_age_id id;
	struct st_age_rcpt r;
	unsigned char pub[32];
	char s[75], t[63];

	assert_int_equal(st_age_parse_identity(KNOWN_SEC, &id), 0);
	assert_int_equal(id.type, ST_AGE_X25519);
	assert_int_equal(st_x25519_pub(id.key, pub), 0);
	st_age_format_recipient(pub, t);
	assert_string_equal(t, KNOWN_PUB);
	st_age_format_identity(id.key, s);
	assert_string_equal(s, KNOWN_SEC);
	assert_int_equal(st_age_parse_recipient(KNOWN_PUB, &r), 0);
	assert_int_equal(r.type, ST_AGE_X25519);
	assert_memory_equal(r.pub, pub, 32);
	st_age_id_wipe(&id);
}

static void bech32_roundtrip(void **state)
{
	struct kp k;
	struct st_age_id id;
	struct st_age_rcpt r;
	char s[75], t[63];

	for (int i = 0; i < 50; i++) {
		keypair(&k);
		st_age_format_identity(k.id.key, s);
		st_age_format_recipient(k.r.pub, t);
		assert_int_equal(strlen(s), 74);
		assert_int_equal(strlen(t), 62);
		assert_int_equal(st_age_parse_identity(s, &id), 0);
		assert_memory_equal(id.key, k.id.key, 32);
		assert_int_equal(st_age_parse_recipient(t, &r), 0);
		assert_memory_equal(r.pub, k.r.pub, 32);
	}
}

/* Set the last data value of a lowercase Bech32 string s to 1 (a padding
 * bit when the data doesn't fill it) and fix up the checksum. */
static void with_padding(char *s)
{
	static const char cs[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
	static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa,
	                                 0x3d4233dd, 0x2a1462b3 };
	size_t len = strlen(s), sep = (size_t)(strrchr(s, '1') - s);
	uint32_t chk = 1;
	unsigned v;

	s[len - 7] = cs[1];
	for (size_t i = 0; i < len - 6 + sep; i++) {
		if (i < sep)
			v = (unsigned)s[i] >> 5;
		else if (i == sep)
			v = 0;
		else if (i <= 2 * sep)
			v = (unsigned)s[i - sep - 1] & 31;
		else
			v = (unsigned)(strchr(cs, s[i - sep]) - cs);
		uint32_t top = chk >> 25;

		chk = (chk & 0x1ffffff) << 5 ^ v;
		for (int k = 0; k < 5; k++)
			if (top >> k & 1)
				chk ^= gen[k];
	}
	for (int k = 0; k < 6; k++) {
		uint32_t top = chk >> 25;

		chk = (chk & 0x1ffffff) << 5;
		for (int j = 0; j < 5; j++)
			if (top >> j & 1)
				chk ^= gen[j];
	}
	chk ^= 1;
	for (int k = 0; k < 6; k++)
		s[len - 6 + (size_t)k] = cs[chk >> (5 * (5 - k)) & 31];
}

static void bech32_rejects(void **state)
{
	struct st_age_id id;
	struct st_age_rcpt r;
	char s[80], hrp[90];
	unsigned char d[64], z[31] = { 0 };
	size_t n;

	/* BIP-173 valid and invalid strings (checksum level) */
	assert_int_equal(st_bech32_decode("A12UEL5L", hrp, sizeof(hrp), d,
	                                  sizeof(d), &n), 0);
	assert_string_equal(hrp, "A");
	assert_int_equal(st_bech32_decode("a12uel5l", hrp, sizeof(hrp), d,
	                                  sizeof(d), &n), 0);
	assert_int_equal(st_bech32_decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6"
	                                  "mua7lmqqqxw", hrp, sizeof(hrp), d,
	                                  sizeof(d), &n), 0);
	assert_int_equal(n, 20);
	static const char *bad[] = {
		"A1G7SGD8", "10a06t8", "1qzzfhee", "pzry9x0s0muk",
		"x1b4n0q5v", "li1dgmt3", "A12uEL5L", "a12UEL5L",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(st_bech32_decode(bad[i], hrp, sizeof(hrp), d,
		                                  sizeof(d), &n), -1);

	/* a flipped checksum character, both key kinds */
	snprintf(s, sizeof(s), "%s", KNOWN_SEC);
	s[strlen(s) - 1] = s[strlen(s) - 1] == 'G' ? 'F' : 'G';
	assert_int_equal(st_age_parse_identity(s, &id), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_non_null(strstr(st_errmsg(), "checksum"));
	snprintf(s, sizeof(s), "%s", KNOWN_PUB);
	s[10] = s[10] == 'q' ? 'p' : 'q';
	assert_int_equal(st_age_parse_recipient(s, &r), -1);
	assert_int_equal(st_errcode(), ST_EX_USAGE);
	/* mixed case, the wrong case, the wrong kind */
	snprintf(s, sizeof(s), "%s", KNOWN_SEC);
	s[20] = (char)(s[20] >= 'A' && s[20] <= 'Z' ? s[20] + 32 : s[20]);
	s[21] = (char)(s[21] >= 'A' && s[21] <= 'Z' ? s[21] + 32 : s[21]);
	assert_int_equal(st_age_parse_identity(s, &id), -1);
	for (size_t i = 0; KNOWN_SEC[i]; i++)
		s[i] = (char)(KNOWN_SEC[i] >= 'A' && KNOWN_SEC[i] <= 'Z' ?
		              KNOWN_SEC[i] + 32 : KNOWN_SEC[i]);
	assert_int_equal(st_age_parse_identity(s, &id), -1);
	assert_int_equal(st_age_parse_recipient(KNOWN_SEC, &r), -1);
	assert_int_equal(st_age_parse_identity(KNOWN_PUB, &id), -1);
	assert_int_equal(st_age_parse_recipient("", &r), -1);
	/* a well-formed Bech32 string of the wrong length */
	assert_true(st_bech32_encode("age", z, sizeof(z), s, sizeof(s)) > 0);
	assert_int_equal(st_age_parse_recipient(s, &r), -1);
	/* non-zero padding bits under a valid checksum */
	assert_true(st_bech32_encode("age", z, 31, s, sizeof(s)) > 0);
	assert_int_equal(st_bech32_decode(s, hrp, sizeof(hrp), d, sizeof(d),
	                                  &n), 0);
	with_padding(s);
	assert_int_equal(st_bech32_decode(s, hrp, sizeof(hrp), d, sizeof(d),
	                                  &n), -1);
	assert_non_null(strstr(st_errmsg(), "padding"));
}

static void write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(s, f);
	assert_int_equal(fclose(f), 0);
}

static void key_files(void **state)
{
	char dir[] = "/tmp/test_age_keys.XXXXXX", path[64], buf[512];
	struct st_age_id *ids;
	struct st_age_rcpt *rs;
	size_t n;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k", dir);
	snprintf(buf, sizeof(buf), "# created: now\r\n# public key: %s\r\n"
	         "\r\n%s\r\n\n%s", KNOWN_PUB, KNOWN_SEC, KNOWN_SEC);
	write_file(path, buf);
	assert_int_equal(st_age_load_identities(path, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ids[1].type, ST_AGE_X25519);
	st_age_ids_free(ids, n);

	snprintf(buf, sizeof(buf), "# team\n%s\n\n%s\n", KNOWN_PUB, KNOWN_PUB);
	write_file(path, buf);
	assert_int_equal(st_age_load_recipients(path, &rs, &n), 0);
	assert_int_equal(n, 2);
	free(rs);

	snprintf(buf, sizeof(buf), "%s\n %s\n", KNOWN_SEC, KNOWN_SEC);
	write_file(path, buf);
	assert_int_equal(st_age_load_identities(path, &ids, &n), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_non_null(strstr(st_errmsg(), ":2:"));
	assert_null(strstr(st_errmsg(), "WM538"));    /* no secret echoed */

	write_file(path, "# nothing\n");
	assert_int_equal(st_age_load_identities(path, &ids, &n), -1);
	assert_int_equal(st_age_load_recipients(path, &rs, &n), -1);
	write_file(path, "age-encryption.org/v1\n");
	assert_int_equal(st_age_load_identities(path, &ids, &n), -1);
	assert_non_null(strstr(st_errmsg(), "passphrase"));
	unlink(path);
	assert_int_equal(st_age_load_identities(path, &ids, &n), -1);
	assert_int_equal(st_errcode(), ST_EX_NOINPUT);
	rmdir(dir);
}

static void x25519_roundtrips(void **state)
{
	struct kp k[3];
	struct st_age_rcpt r[3];

	for (int i = 0; i < 3; i++) {
		keypair(&k[i]);
		r[i] = k[i].r;
	}
	roundtrip(r, 1, 0, &k[0].id);
	roundtrip(r, 3, 0, &k[0].id);
	roundtrip(r, 3, 0, &k[2].id);
	roundtrip(r, 1, 1, &k[0].id);
	roundtrip(r, 3, 1, &k[1].id);
}

static void scrypt_roundtrips(void **state)
{
	struct st_age_rcpt r = { .type = ST_AGE_SCRYPT,
	                         .passphrase = "correct horse", .logn = 10 };
	struct st_age_id id = { .type = ST_AGE_SCRYPT,
	                        .passphrase = "correct horse" };

	roundtrip(&r, 1, 0, &id);
	roundtrip(&r, 1, 1, &id);
}

/* Binary file layout and armor layout. */
static void layout(void **state)
{
	unsigned char *p = pattern(200000);
	struct st_buf f, a, out;
	struct kp k;
	char *s, *nl;
	size_t hlen;

	keypair(&k);
	encrypt(&k.r, 1, 0, p, 200000, &f);
	assert_memory_equal(f.data, "age-encryption.org/v1\n-> X25519 ", 32);
	s = strstr(st_buf_cstr(&f), "\n--- ");
	assert_non_null(s);
	hlen = (size_t)(s - (char *)f.data) + 5 + 43 + 1;
	assert_int_equal(f.data[hlen - 1], '\n');
	/* nonce, three full chunks and a 3392-byte one */
	assert_int_equal(f.len - hlen, 16 + 3 * (65536 + 16) + 3392 + 16);

	encrypt(&k.r, 1, 1, p, 200000, &a);
	s = (char *)st_buf_cstr(&a);
	assert_memory_equal(s, ST_ARMOR_BEGIN "\n", 35);
	for (s += 35; (nl = strchr(s, '\n')) && strncmp(s, "-----", 5);
	     s = nl + 1)
		assert_true(nl - s <= 64);
	assert_string_equal(s, ST_ARMOR_END "\n");

	/* CRLF lines and whitespace around the armor are accepted */
	struct st_buf crlf;
	st_buf_init(&crlf, 0);
	st_buf_append(&crlf, " \n\t\r\n", 5);
	for (size_t i = 0; i < a.len; i++) {
		if (a.data[i] == '\n')
			st_buf_appendc(&crlf, '\r');
		st_buf_appendc(&crlf, a.data[i]);
	}
	st_buf_append(&crlf, "\n  \n", 4);
	assert_int_equal(decrypt(crlf.data, crlf.len, &k.id, 1, &out), 0);
	assert_int_equal(out.len, 200000);
	assert_memory_equal(out.data, p, 200000);
	st_buf_free(&out);
	/* but not a header line inside it */
	crlf.len = 0;
	st_buf_append(&crlf, a.data, 35);
	st_buf_append(&crlf, "Comment: hi\n", 12);
	st_buf_append(&crlf, a.data + 35, a.len - 35);
	assert_int_equal(decrypt(crlf.data, crlf.len, &k.id, 1, &out), -1);
	assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_ARMOR);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	st_buf_free(&out);
	st_buf_free(&crlf);
	st_buf_free(&a);
	st_buf_free(&f);
	free(p);
}

/* Every bit flip must fail; payload flips release only whole chunks. */
static void tamper(void **state)
{
	unsigned char *p = pattern(200000);
	struct st_buf f, out;
	struct kp k;
	size_t hlen, at, flips = 0;

	keypair(&k);
	encrypt(&k.r, 1, 0, p, 200000, &f);
	hlen = (size_t)(strstr(st_buf_cstr(&f), "\n--- ") -
	                (char *)f.data) + 5 + 43 + 1;
	for (at = 0; at < f.len; at += at < hlen + 64 ? 1 : 4099) {
		for (int bit = 0; bit < 8; bit += 7) {
			f.data[at] ^= (unsigned char)(1 << bit);
			assert_int_equal(decrypt(f.data, f.len, &k.id, 1, &out),
			                 -1);
			f.data[at] ^= (unsigned char)(1 << bit);
			flips++;
			if (at < hlen + 16)
				assert_int_equal(out.len, 0);
			else {
				size_t chunk = (at - hlen - 16) / (65536 + 16);

				assert_int_equal(st_age_last_fail(),
				                 ST_AGE_FAIL_PAYLOAD);
				assert_int_equal(out.len, chunk * 65536);
				assert_memory_equal(out.data, p, out.len);
			}
			assert_true(st_errcode() == ST_EX_DATAERR ||
			            st_errcode() == ST_EX_NO);
			st_buf_free(&out);
		}
	}
	assert_true(flips > 400);
	/* truncated, extended: the whole file but one byte, or one more */
	assert_int_equal(decrypt(f.data, f.len - 1, &k.id, 1, &out), -1);
	assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_PAYLOAD);
	assert_int_equal(out.len, 3 * 65536);
	st_buf_free(&out);
	st_buf_appendc(&f, 0);
	assert_int_equal(decrypt(f.data, f.len, &k.id, 1, &out), -1);
	assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_PAYLOAD);
	st_buf_free(&out);
	/* cut at the nonce: a header failure, as age classes it */
	assert_int_equal(decrypt(f.data, hlen + 15, &k.id, 1, &out), -1);
	assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_HEADER);
	st_buf_free(&out);
	st_buf_free(&f);
	free(p);
}

/* STREAM alone: the push decoder fed in every kind of split. */
static void stream_splits(void **state)
{
	static const size_t lens[] = { 0, 1, 65536, 131072, 200000 };
	static const size_t steps[] = { 1, 7, 4096, 65551, 65552, 65553,
	                                100003 };
	unsigned char key[16];

	assert_int_equal(st_random(key, sizeof(key)), 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(*lens); i++) {
		unsigned char *p = pattern(lens[i]);
		struct st_stream_enc *e;
		struct st_buf c, out;

		st_buf_init(&c, 0);
		e = st_stream_enc_new(key, st_sink_buf, &c);
		assert_non_null(e);
		assert_int_equal(st_stream_enc_write(e, p, lens[i]), 0);
		assert_int_equal(st_stream_enc_finish(e), 0);
		/* a full final chunk stays full; only an empty payload has
		 * an empty chunk */
		assert_int_equal(c.len, 16 + lens[i] + 16 *
		                 (lens[i] ? (lens[i] + 65535) / 65536 : 1));
		for (size_t j = 0; j < sizeof(steps) / sizeof(*steps); j++) {
			struct st_stream_dec *d;

			st_buf_init(&out, 0);
			d = st_stream_dec_new(key, st_sink_buf, &out);
			for (size_t off = 0; off < c.len; off += steps[j]) {
				size_t k = c.len - off < steps[j] ?
				           c.len - off : steps[j];

				assert_int_equal(st_stream_dec_write(d,
				                 c.data + off, k), 0);
			}
			assert_int_equal(st_stream_dec_finish(d), 0);
			st_stream_dec_free(d);
			assert_int_equal(out.len, lens[i]);
			assert_memory_equal(out.data, p, lens[i]);
			st_buf_free(&out);
		}
		/* a missing last byte or an extra one fails */
		for (int extra = -1; extra <= 1; extra += 2) {
			struct st_stream_dec *d;

			st_buf_init(&out, 0);
			d = st_stream_dec_new(key, st_sink_buf, &out);
			if (extra > 0) {
				/* seen at once after a full final chunk, at
				 * the finish after a short one */
				assert_int_equal(st_stream_dec_write(d, c.data,
				                                     c.len), 0);
				assert_true(
				    st_stream_dec_write(d, "x", 1) < 0 ||
				    st_stream_dec_finish(d) < 0);
				assert_int_equal(out.len, lens[i] % 65536 ?
				                 lens[i] / 65536 * 65536 :
				                 lens[i]);
			} else {
				assert_int_equal(st_stream_dec_write(d, c.data,
				                 c.len - 1), 0);
				assert_int_equal(st_stream_dec_finish(d), -1);
			}
			assert_int_equal(st_errcode(), ST_EX_DATAERR);
			st_stream_dec_free(d);
			st_buf_free(&out);
		}
		st_buf_free(&c);
		free(p);
	}
}

static void rekey(void **state)
{
	unsigned char *p = pattern(150000);
	struct st_buf f, g, out;
	struct kp a, b;
	size_t fh, gh;
	int in, outfd;
	char path[] = "/tmp/test_age_rekey.XXXXXX";

	keypair(&a);
	keypair(&b);
	encrypt(&a.r, 1, 0, p, 150000, &f);
	in = mem_fd(f.data, f.len);
	outfd = mkstemp(path);
	assert_true(outfd >= 0);
	unlink(path);
	assert_int_equal(st_age_rekey(in, &a.id, 1, &b.r, 1, outfd), 0);
	close(in);
	assert_int_equal(lseek(outfd, 0, SEEK_SET), 0);
	st_buf_init(&g, 0);
	{
		unsigned char *d;
		size_t n;

		assert_int_equal(st_read_fd(outfd, 1 << 24, "x", &d, &n), 0);
		st_buf_append(&g, d, n);
		free(d);
	}
	close(outfd);
	fh = (size_t)(strstr(st_buf_cstr(&f), "\n--- ") - (char *)f.data) + 49;
	gh = (size_t)(strstr(st_buf_cstr(&g), "\n--- ") - (char *)g.data) + 49;
	assert_int_equal(f.len - fh, g.len - gh);
	assert_memory_equal(f.data + fh, g.data + gh, f.len - fh);
	assert_memory_not_equal(f.data, g.data, fh);
	assert_int_equal(decrypt(g.data, g.len, &b.id, 1, &out), 0);
	assert_int_equal(out.len, 150000);
	assert_memory_equal(out.data, p, 150000);
	st_buf_free(&out);
	assert_int_equal(decrypt(g.data, g.len, &a.id, 1, &out), -1);
	assert_int_equal(st_errcode(), ST_EX_NO);
	assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_NOMATCH);
	st_buf_free(&out);
	/* the wrong key: nothing written, a clean "no" */
	in = mem_fd(f.data, f.len);
	outfd = mem_fd("", 0);
	assert_int_equal(st_age_rekey(in, &b.id, 1, &b.r, 1, outfd), -1);
	assert_int_equal(st_errcode(), ST_EX_NO);
	assert_int_equal(lseek(outfd, 0, SEEK_END), 0);
	close(in);
	close(outfd);
	st_buf_free(&f);
	st_buf_free(&g);
	free(p);
}

static void error_classes(void **state)
{
	struct kp a, b;
	struct st_age_rcpt pr = { .type = ST_AGE_SCRYPT, .passphrase = "pw",
	                          .logn = 12 };
	struct st_age_id pi = { .type = ST_AGE_SCRYPT, .passphrase = "pw" };
	struct st_buf f, out;

	keypair(&a);
	keypair(&b);
	encrypt(&a.r, 1, 0, (const unsigned char *)"hi", 2, &f);
	assert_int_equal(decrypt(f.data, f.len, &b.id, 1, &out), -1);
	assert_int_equal(st_errcode(), ST_EX_NO);
	assert_string_equal(st_errmsg(),
	                    "no identity matched any of the recipients");
	st_buf_free(&out);
	/* the second identity matches */
	struct st_age_id two[2] = { b.id, a.id };
	assert_int_equal(decrypt(f.data, f.len, two, 2, &out), 0);
	assert_int_equal(out.len, 2);
	st_buf_free(&out);
	st_buf_free(&f);

	encrypt(&pr, 1, 0, (const unsigned char *)"hi", 2, &f);
	assert_non_null(strstr((char *)st_buf_cstr(&f), "-> scrypt "));
	assert_non_null(strstr((char *)st_buf_cstr(&f), " 12\n"));
	pi.passphrase = "wrong";
	assert_int_equal(decrypt(f.data, f.len, &pi, 1, &out), -1);
	assert_int_equal(st_errcode(), ST_EX_NO);
	assert_string_equal(st_errmsg(), "incorrect passphrase");
	st_buf_free(&out);
	/* over the work-factor ceiling: refused without running scrypt */
	pi.passphrase = "pw";
	pi.max_logn = 11;
	assert_int_equal(decrypt(f.data, f.len, &pi, 1, &out), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_HEADER);
	st_buf_free(&out);
	st_buf_free(&f);

	/* a passphrase can't share a file with other recipients */
	struct st_age_rcpt mix[2] = { a.r, pr };
	st_buf_init(&out, 0);
	assert_null(st_age_enc_new(mix, 2, 0, st_sink_buf, &out));
	assert_int_equal(st_errcode(), ST_EX_USAGE);
	assert_null(st_age_enc_new(mix, 0, 0, st_sink_buf, &out));
	st_buf_free(&out);

	/* empty input and garbage: header failures, one-line messages */
	assert_int_equal(decrypt((const unsigned char *)"", 0, &a.id, 1, &out),
	                 -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_HEADER);
	assert_null(strchr(st_errmsg(), '\n'));
	st_buf_free(&out);
	assert_int_equal(decrypt((const unsigned char *)"\x89PNG\r\n", 6,
	                         &a.id, 1, &out), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	st_buf_free(&out);
}

/* The sink's own failure passes through with its class. */
static int sink_fails(void *ctx, const void *p, size_t n)
{
	(void)p;
	(void)n;
	if ((*(int *)ctx)++ == 1)
		return st_error(ST_EX_CANTCREAT, "disk full");
	return 0;
}

static void sink_failure(void **state)
{
	unsigned char *p = pattern(200000);
	struct st_buf f;
	struct kp k;
	int calls = 0, fd;

	keypair(&k);
	encrypt(&k.r, 1, 0, p, 200000, &f);
	fd = mem_fd(f.data, f.len);
	assert_int_equal(st_age_decrypt(fd, &k.id, 1, sink_fails, &calls), -1);
	assert_int_equal(st_errcode(), ST_EX_CANTCREAT);
	assert_string_equal(st_errmsg(), "disk full");
	assert_int_equal(st_age_last_fail(), ST_AGE_FAIL_IO);
	close(fd);
	st_buf_free(&f);
	free(p);
}

static int have_age(void)
{
	return system("command -v age >/dev/null 2>&1 && "
	              "command -v age-keygen >/dev/null 2>&1") == 0;
}

/* The real age CLI, both ways. */
static void age_cli(void **state)
{
	char dir[] = "/tmp/test_age_cli.XXXXXX", cmd[512], kf[64], pf[64],
	     cf[64];
	unsigned char *p = pattern(70000), *d;
	struct st_age_id id;
	struct st_age_rcpt r;
	struct st_buf f, out;
	size_t n;

	if (!have_age()) {
		free(p);
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(kf, sizeof(kf), "%s/key", dir);
	snprintf(pf, sizeof(pf), "%s/plain", dir);
	snprintf(cf, sizeof(cf), "%s/c.age", dir);
	write_file(kf, KNOWN_SEC "\n");
	assert_int_equal(st_write_atomic(pf, p, 70000, 0600), 0);
	assert_int_equal(st_age_parse_identity(KNOWN_SEC, &id), 0);
	assert_int_equal(st_age_parse_recipient(KNOWN_PUB, &r), 0);

	/* age -> libst, binary and armored */
	for (int armor = 0; armor < 2; armor++) {
		snprintf(cmd, sizeof(cmd), "age %s -r %s -o %s %s", armor ?
		         "-a" : "", KNOWN_PUB, cf, pf);
		assert_int_equal(system(cmd), 0);
		assert_int_equal(st_read_file(cf, 1 << 24, &d, &n), 0);
		assert_int_equal(decrypt(d, n, &id, 1, &out), 0);
		assert_int_equal(out.len, 70000);
		assert_memory_equal(out.data, p, 70000);
		st_buf_free(&out);
		free(d);
	}
	/* libst -> age */
	for (int armor = 0; armor < 2; armor++) {
		encrypt(&r, 1, armor, p, 70000, &f);
		assert_int_equal(st_write_atomic(cf, f.data, f.len, 0600), 0);
		snprintf(cmd, sizeof(cmd), "age -d -i %s %s | cmp -s - %s",
		         kf, cf, pf);
		assert_int_equal(system(cmd), 0);
		st_buf_free(&f);
	}
	unlink(kf);
	unlink(pf);
	unlink(cf);
	rmdir(dir);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bech32_known_pair),
		cmocka_unit_test(bech32_roundtrip),
		cmocka_unit_test(bech32_rejects),
		cmocka_unit_test(key_files),
		cmocka_unit_test(x25519_roundtrips),
		cmocka_unit_test(scrypt_roundtrips),
		cmocka_unit_test(layout),
		cmocka_unit_test(tamper),
		cmocka_unit_test(stream_splits),
		cmocka_unit_test(rekey),
		cmocka_unit_test(error_classes),
		cmocka_unit_test(sink_failure),
		cmocka_unit_test(age_cli),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
