/*
 * fuzz_age.c - age files from a stranger: the header parser alone and with
 * identities (two fixed X25519 keys of the CCTV testkit and the passphrase
 * "password", scrypt work factor capped at 2^10 so a stanza costs
 * milliseconds), the ASCII-armor reader fed partly from memory and partly
 * from a file descriptor, and whole-file decryption and re-keying read
 * from a memory file.  Plaintext goes to a sink that only counts it.
 * Nothing is asserted beyond not crashing (and never more plaintext than
 * input): the known-answer checks of which bytes may be released are the
 * testkit's, in tests/tools/agevectors.c.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
	abort(); } } while (0)

static const char *const keys[] = {
	"AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0",
	"AGE-SECRET-KEY-143WN7DCXU4G8R5AXQSSYD9AEPYDNT3HXSLWSPK36CDU6E8M59SSSAGZ3KG",
};
static char passphrase[] = "password";
static struct st_age_id ids[3];
static struct st_age_rcpt rcpt;
static int memfd = -1, nullfd = -1;

static void init(void)
{
	for (size_t i = 0; i < 2; i++)
		CHECK(st_age_parse_identity(keys[i], &ids[i]) == 0);
	ids[2].type = ST_AGE_SCRYPT;
	ids[2].passphrase = passphrase;
	ids[2].max_logn = 10;
	rcpt.type = ST_AGE_X25519;
	CHECK(st_x25519_pub(ids[1].key, rcpt.pub) == 0);
	CHECK((memfd = memfd_create("fuzz_age", MFD_CLOEXEC)) >= 0);
	CHECK((nullfd = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0);
}

/* Make memfd hold exactly these bytes, read from the start. */
static void load(const uint8_t *data, size_t size)
{
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(lseek(memfd, 0, SEEK_SET) == 0);
	CHECK(st_write_all(memfd, data, size) == 0);
	CHECK(lseek(memfd, 0, SEEK_SET) == 0);
}

static int count(void *ctx, const void *p, size_t n)
{
	*(size_t *)ctx += n;
	return 0;
}

static void header(const uint8_t *data, size_t size)
{
	unsigned char fk[ST_FILEKEY_LEN];

	st_age_hdr_open((const char *)data, size, NULL, 0, NULL);
	st_age_hdr_open((const char *)data, size, ids, 3, fk);
}

/* The first half from memory (as after sniffing), the rest from the fd. */
static void armor(const uint8_t *data, size_t size)
{
	size_t pre = size / 2, got, total = 0;
	unsigned char out[4096];
	struct st_armor_r *a;

	load(data + pre, size - pre);
	a = st_armor_r_new(memfd, data, pre);
	/* odd sizes first, so reads end inside decoded lines */
	for (size_t cap = 7;; cap = sizeof(out)) {
		if (st_armor_r_read(a, out, cap, &got) < 0 || !got)
			break;
		total += got;
		CHECK(total <= size);
	}
	st_armor_r_free(a);
}

static void decrypt(const uint8_t *data, size_t size)
{
	size_t released = 0;

	load(data, size);
	if (st_age_decrypt(memfd, ids, 3, count, &released) == 0)
		CHECK(st_age_last_fail() == ST_AGE_FAIL_NONE);
	else
		CHECK(st_age_last_fail() != ST_AGE_FAIL_NONE);
	CHECK(released <= size);
	/* re-keying reads the same header: worth it once that opened (each
	 * whole-file read costs a 1 MiB buffer, slow under ASan) */
	if (st_age_last_fail() == ST_AGE_FAIL_NONE ||
	    st_age_last_fail() == ST_AGE_FAIL_PAYLOAD) {
		load(data, size);
		st_age_rekey(memfd, ids, 3, &rcpt, 1, nullfd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd < 0)
		init();
	header(data, size);
	armor(data, size);
	decrypt(data, size);
	return 0;
}
