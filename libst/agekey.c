/*
 * agekey.c - age keys as text: "age1..." recipients and
 * "AGE-SECRET-KEY-1..." identities (Bech32, bech32.c), and the files that
 * hold them in age-keygen's format.  Identity files are secret: every copy
 * is wiped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

void st_age_id_wipe(struct st_age_id *id)
{
	if (id)
		OPENSSL_cleanse(id, sizeof(*id));
}

/* The recorded error again, with another class and a prefix. */
static int again(int code, const char *prefix)
{
	char m[256];

	snprintf(m, sizeof(m), "%s", st_errmsg());
	return st_error(code, "%s%s", prefix, m);
}

int st_age_parse_recipient(const char *s, struct st_age_rcpt *r)
{
	unsigned char k[40];
	char hrp[8];
	size_t n;

	if (st_bech32_decode(s, hrp, sizeof(hrp), k, sizeof(k), &n) < 0)
		return again(ST_EX_USAGE, "invalid age recipient: ");
	if (strcmp(hrp, "age") || n != 32)
		return st_error(ST_EX_USAGE, "invalid age recipient: not an "
		                "age1 X25519 public key");
	memset(r, 0, sizeof(*r));
	r->type = ST_AGE_X25519;
	memcpy(r->pub, k, 32);
	return 0;
}

int st_age_parse_identity(const char *s, struct st_age_id *id)
{
	unsigned char k[40];
	char hrp[24];
	size_t n;
	int rc = 0;

	if (st_bech32_decode(s, hrp, sizeof(hrp), k, sizeof(k), &n) < 0)
		rc = again(ST_EX_DATAERR, "invalid age identity: ");
	else if (strcmp(hrp, "AGE-SECRET-KEY-") || n != 32)
		rc = st_error(ST_EX_DATAERR, "invalid age identity: not an "
		              "AGE-SECRET-KEY-1 X25519 key");
	else {
		memset(id, 0, sizeof(*id));
		id->type = ST_AGE_X25519;
		memcpy(id->key, k, 32);
	}
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

void st_age_format_recipient(const unsigned char pub[32], char out[63])
{
	st_bech32_encode("age", pub, 32, out, 63);
}

void st_age_format_identity(const unsigned char key[32], char out[75])
{
	st_bech32_encode("AGE-SECRET-KEY-", key, 32, out, 75);
}

/*
 * Call each() on every line of an age-keygen style file except "#"
 * comments and empty lines; a line's CR before its LF is dropped.
 */
static int each_line(const char *path, int (*each)(void *, const char *),
                     void *ctx)
{
	unsigned char *data;
	char line[256];
	size_t n, i, len, lineno = 0;
	int rc = 0;

	if (st_read_file(path, 1 << 20, &data, &n) < 0)
		return -1;
	for (i = 0; i < n && rc == 0; i += len + 1) {
		const char *s = (const char *)data + i;
		const char *e = memchr(s, '\n', n - i);

		len = e ? (size_t)(e - s) : n - i;
		lineno++;
		if (len && s[len - 1] == '\r')
			len--;
		if (!len || s[0] == '#')
			goto next;
		if (len >= sizeof(line) || memchr(s, '\0', len)) {
			rc = st_error(ST_EX_DATAERR, "unrecognised line");
			goto next;
		}
		memcpy(line, s, len);
		line[len] = '\0';
		rc = each(ctx, line);
next:
		if (len && s[len] == '\r')
			len++;
	}
	if (rc < 0)
		st_error_ctx("%s:%zu", path, lineno);
	st_free_secret(data, n);
	OPENSSL_cleanse(line, sizeof(line));
	return rc;
}

struct idlist {
	struct st_age_id *v;
	size_t n;
};

static int add_identity(void *ctx, const char *line)
{
	struct idlist *l = ctx;
	struct st_age_id id, *nv;

	if (!strncmp(line, "AGE-PLUGIN-", 11))
		return st_error(ST_EX_DATAERR, "plugin identities are not "
		                "supported");
	if (!strncmp(line, ST_AGE_MAGIC, sizeof(ST_AGE_MAGIC) - 1) ||
	    !strncmp(line, ST_ARMOR_BEGIN, sizeof(ST_ARMOR_BEGIN) - 1))
		return st_error(ST_EX_DATAERR, "passphrase-protected identity "
		                "files are not supported");
	if (st_age_parse_identity(line, &id) < 0)
		return -1;
	/* grow by hand: realloc would leave key copies behind */
	nv = st_calloc(l->n + 1, sizeof(*nv));
	if (l->n)
		memcpy(nv, l->v, l->n * sizeof(*nv));
	nv[l->n] = id;
	st_free_secret(l->v, l->n * sizeof(*nv));
	st_age_id_wipe(&id);
	l->v = nv;
	l->n++;
	return 0;
}

int st_age_load_identities(const char *path, struct st_age_id **ids,
                           size_t *n)
{
	struct idlist l = { NULL, 0 };

	if (each_line(path, add_identity, &l) < 0) {
		st_age_ids_free(l.v, l.n);
		return -1;
	}
	if (!l.n)
		return st_error(ST_EX_DATAERR, "%s: no identities found", path);
	*ids = l.v;
	*n = l.n;
	return 0;
}

void st_age_ids_free(struct st_age_id *ids, size_t n)
{
	st_free_secret(ids, n * sizeof(*ids));
}

struct rlist {
	struct st_age_rcpt *v;
	size_t n;
};

static int add_recipient(void *ctx, const char *line)
{
	struct rlist *l = ctx;
	struct st_age_rcpt r;

	if (!strncmp(line, "ssh-", 4))
		return st_error(ST_EX_DATAERR, "ssh recipients are not "
		                "supported");
	if (st_age_parse_recipient(line, &r) < 0)
		return again(ST_EX_DATAERR, "");
	l->v = st_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = r;
	return 0;
}

int st_age_load_recipients(const char *path, struct st_age_rcpt **r,
                           size_t *n)
{
	struct rlist l = { NULL, 0 };

	if (each_line(path, add_recipient, &l) < 0) {
		free(l.v);
		return -1;
	}
	if (!l.n)
		return st_error(ST_EX_DATAERR, "%s: no recipients found", path);
	*r = l.v;
	*n = l.n;
	return 0;
}
