/*
 * agevectors - run the CCTV age test vectors (testkit/age, see its
 * FORMAT.md) through st_age_decrypt() and print TAP.
 *
 * usage: agevectors DIR
 *
 * Each file: "key: value" lines, an empty line, then the age file (zlib-
 * compressed when "compressed: zlib").  The outcome is the class from
 * st_age_last_fail(), and it must agree with the exit class (ST_EX_NO for
 * "no match", ST_EX_DATAERR otherwise).  Armor is detected by the library
 * as the commands do, so "armored: yes" needs no flag.  Vectors whose only
 * credentials are ML-KEM hybrid keys are skipped (OpenSSL 3.0 has no
 * ML-KEM), as are files with a key or value this runner doesn't know.
 *
 * Every success vector also gets tampered twins: one bit flipped in the
 * middle and in the last byte (not counting trailing whitespace) of the
 * input; both must fail.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "st.h"

struct vec {
	char expect[32], payload[65], why[128];
	int armored, skip;
	struct st_age_id ids[8];
	size_t nids;
	char *pass[8];
	unsigned char *in;
	size_t inlen;
};

static const char *class_name(int rc)
{
	if (rc == 0)
		return "success";
	switch (st_age_last_fail()) {
	case ST_AGE_FAIL_ARMOR: return "armor failure";
	case ST_AGE_FAIL_HEADER: return "header failure";
	case ST_AGE_FAIL_NOMATCH: return "no match";
	case ST_AGE_FAIL_HMAC: return "HMAC failure";
	case ST_AGE_FAIL_PAYLOAD: return "payload failure";
	case ST_AGE_FAIL_IO: return "i/o failure";
	case ST_AGE_FAIL_NONE: break;
	}
	return "unclassified failure";
}

static int inflate_all(const unsigned char *in, size_t n, unsigned char **out,
                       size_t *outlen)
{
	z_stream z;
	size_t cap = n * 4 + 4096;
	int rc;

	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return -1;
	*out = st_malloc(cap);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	do {
		if (z.total_out == cap) {
			cap *= 2;
			*out = st_realloc(*out, cap);
		}
		z.next_out = *out + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
		rc = inflate(&z, Z_NO_FLUSH);
	} while (rc == Z_OK);
	*outlen = z.total_out;
	inflateEnd(&z);
	return rc == Z_STREAM_END && z.avail_in == 0 ? 0 : -1;
}

static void add_id(struct vec *v, const char *val)
{
	if (!strncmp(val, "AGE-SECRET-KEY-PQ-", 18))
		return;                 /* ML-KEM: counted as absent */
	if (v->nids == 8 || st_age_parse_identity(val, &v->ids[v->nids]) < 0) {
		v->skip = 1;
		snprintf(v->why, sizeof(v->why), "bad identity");
		return;
	}
	v->nids++;
}

static void add_pass(struct vec *v, const char *val)
{
	if (v->nids == 8)
		return;
	v->pass[v->nids] = st_strdup(val);
	v->ids[v->nids] = (struct st_age_id){ .type = ST_AGE_SCRYPT,
	                                      .passphrase = v->pass[v->nids],
	                                      .max_logn = 22 };
	v->nids++;
}

/* Split the header from the input; 0 or -1 for a broken file. */
static int load(const char *path, struct vec *v)
{
	unsigned char *data, *body, *z = NULL;
	size_t n, zn;
	char *line, *next, *val;
	int pq = 0, zlib = 0;

	memset(v, 0, sizeof(*v));
	if (st_read_file(path, 64 << 20, &data, &n) < 0)
		return -1;
	if (!(body = (unsigned char *)strstr((char *)data, "\n\n"))) {
		free(data);
		return -1;
	}
	*body = '\0';
	body += 2;
	for (line = (char *)data; line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		if (!(val = strstr(line, ": "))) {
			v->skip = 1;
			snprintf(v->why, sizeof(v->why), "bad header line");
			continue;
		}
		*val = '\0';
		val += 2;
		if (!strcmp(line, "expect"))
			snprintf(v->expect, sizeof(v->expect), "%s", val);
		else if (!strcmp(line, "payload"))
			snprintf(v->payload, sizeof(v->payload), "%s", val);
		else if (!strcmp(line, "identity")) {
			pq |= !strncmp(val, "AGE-SECRET-KEY-PQ-", 18);
			add_id(v, val);
		} else if (!strcmp(line, "passphrase"))
			add_pass(v, val);
		else if (!strcmp(line, "armored"))
			v->armored = !strcmp(val, "yes");
		else if (!strcmp(line, "compressed")) {
			zlib = 1;
			if (strcmp(val, "zlib")) {
				v->skip = 1;
				snprintf(v->why, sizeof(v->why),
				         "unknown compression");
			}
		} else if (strcmp(line, "file key") &&
		           strcmp(line, "comment")) {
			v->skip = 1;
			snprintf(v->why, sizeof(v->why), "unknown key %s",
			         line);
		}
	}
	if (pq && v->nids == 0 && !v->skip) {
		v->skip = 1;
		snprintf(v->why, sizeof(v->why), "needs ML-KEM");
	}
	n -= (size_t)(body - data);
	if (zlib && !v->skip) {
		if (inflate_all(body, n, &z, &zn) < 0) {
			free(z);
			free(data);
			return -1;
		}
		v->in = z;
		v->inlen = zn;
	} else {
		v->in = st_malloc(n);
		memcpy(v->in, body, n);
		v->inlen = n;
	}
	free(data);
	return 0;
}

static void unload(struct vec *v)
{
	for (size_t i = 0; i < v->nids; i++) {
		free(v->pass[i]);
		st_age_id_wipe(&v->ids[i]);
	}
	free(v->in);
}

/* Decrypt n bytes at in; the released plaintext's SHA-256 in hex. */
static int run(const struct vec *v, const unsigned char *in, size_t n,
               char hex[65])
{
	struct st_buf out;
	unsigned char h[32];
	FILE *f = tmpfile();
	int rc;

	if (!f || fwrite(in, 1, n, f) != n || fflush(f) ||
	    lseek(fileno(f), 0, SEEK_SET) < 0) {
		fprintf(stderr, "agevectors: cannot write a temporary file\n");
		exit(2);
	}
	st_buf_init(&out, 0);
	st_error_clear();
	rc = st_age_decrypt(fileno(f), v->ids, v->nids, st_sink_buf, &out);
	st_sha256(out.data, out.len, h);
	st_hex_encode(h, 32, hex);
	st_buf_free(&out);
	fclose(f);
	return rc;
}

/* NULL when the vector passes, else why not (static storage). */
static const char *check(struct vec *v)
{
	static char why[1200];
	char hex[65];
	const char *got;
	int rc, want_code;

	rc = run(v, v->in, v->inlen, hex);
	got = class_name(rc);
	if (strcmp(got, v->expect)) {
		snprintf(why, sizeof(why), "expected %s got %s (%s)", v->expect,
		         got, rc ? st_errmsg() : "");
		return why;
	}
	want_code = !strcmp(got, "no match") ? ST_EX_NO : ST_EX_DATAERR;
	if (rc && st_errcode() != want_code) {
		snprintf(why, sizeof(why), "%s with exit class %d", got,
		         st_errcode());
		return why;
	}
	if (v->payload[0] && strcmp(hex, v->payload)) {
		snprintf(why, sizeof(why), "expected payload %.12s got %.12s",
		         v->payload, hex);
		return why;
	}
	if (rc == 0 && v->inlen) {
		size_t at[2] = { v->inlen / 2, v->inlen - 1 };

		/* whitespace may trail an armored file: flip real data */
		while (at[1] && strchr(" \t\r\n\v\f", v->in[at[1]]))
			at[1]--;

		for (int i = 0; i < 2; i++) {
			v->in[at[i]] ^= 1;
			rc = run(v, v->in, v->inlen, hex);
			v->in[at[i]] ^= 1;
			if (rc == 0) {
				snprintf(why, sizeof(why), "tampered twin "
				         "(bit flipped at %zu) decrypted",
				         at[i]);
				return why;
			}
		}
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	char **names = NULL, *path;
	size_t n = 0, failed = 0;
	struct dirent *e;
	struct vec v;
	const char *why;
	DIR *d;

	st_setprogname(argv[0]);
	if (argc != 2 || !(d = opendir(argv[1])))
		st_die(ST_EX_USAGE, "usage: agevectors DIR");
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && strcmp(e->d_name, "FORMAT.md")) {
			names = st_realloc(names, (n + 1) * sizeof(*names));
			names[n++] = st_strdup(e->d_name);
		}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		path = st_path_join(argv[1], names[i]);
		if (load(path, &v) < 0) {
			printf("not ok %zu - %s # unreadable vector\n", i + 1,
			       names[i]);
			failed++;
		} else if (v.skip)
			printf("ok %zu - %s # skip %s\n", i + 1, names[i],
			       v.why);
		else if ((why = check(&v))) {
			printf("not ok %zu - %s # %s\n", i + 1, names[i], why);
			failed++;
		} else
			printf("ok %zu - %s\n", i + 1, names[i]);
		fflush(stdout);
		unload(&v);
		free(path);
		free(names[i]);
	}
	free(names);
	return failed ? 1 : 0;
}
