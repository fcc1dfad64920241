/*
 * vault.c - the encrypted store: $ST_HOME/vault/ holds, per item, ID.age
 * (the content) and ID.meta.age (its JSON description), both plain age v1
 * files encrypted to the key in $ST_HOME/vault.key, so any age tool opens
 * them.  The layout is described in doc/st.5.
 *
 * Writes are ordered so a crash never shows a half-written item: content
 * first, meta second (the meta file is the commit point); removal goes the
 * other way.  A rekey writes the new key to vault.key.new before touching
 * any file and promotes it only when every file carries a header for it;
 * until then both keys open the vault.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "st.h"

#define META_MAX (256 * 1024)
#define META_SUFFIX ".meta.age"

struct st_vault {
	char *dir;         /* $ST_HOME/vault */
	char *keypath;     /* $ST_HOME/vault.key */
	struct st_age_id ids[2];
	size_t nids;       /* 0 when there is no key yet */
	char recipient[63];
};

/* Write a fresh age identity file (age-keygen's format) to path. */
static int make_key(const char *path, struct st_age_id *id)
{
	unsigned char pub[32];
	char sk[75], pk[63], buf[256];
	int n, rc;

	memset(id, 0, sizeof(*id));
	id->type = ST_AGE_X25519;
	if (st_x25519_keygen(id->key, pub) < 0)
		return -1;
	st_age_format_identity(id->key, sk);
	st_age_format_recipient(pub, pk);
	n = snprintf(buf, sizeof(buf), "# safetalk vault key\n"
	             "# public key: %s\n%s\n", pk, sk);
	/* passphrase-wrapped when the home's keys are (keystore.c) */
	rc = st_keystore_write(path, buf, (size_t)n);
	st_wipe(sk, sizeof(sk));
	st_wipe(buf, sizeof(buf));
	return rc;
}

static int load_key(const char *path, struct st_age_id *out)
{
	struct st_age_id *ids;
	size_t n;
	int wrapped = st_keystore_file_wrapped(path);

	if (wrapped < 0)
		return -1;
	if (wrapped)
		return st_keystore_age_identity(path, out);
	if (st_age_load_identities(path, &ids, &n) < 0)
		return -1;
	if (n != 1) {
		st_age_ids_free(ids, n);
		return st_error(ST_EX_DATAERR, "%s: expected one key, found %zu",
		                path, n);
	}
	*out = ids[0];
	st_wipe(&ids[0], sizeof(ids[0]));
	free(ids);
	return 0;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* 1 when dir holds an item (a .age file), 0 when none or no dir. */
static int has_items(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		size_t n = strlen(de->d_name);

		found = de->d_name[0] != '.' && n > 4 &&
		        strcmp(de->d_name + n - 4, ".age") == 0;
	}
	closedir(d);
	return found;
}

struct st_vault *st_vault_open(int create)
{
	struct st_vault *v = st_calloc(1, sizeof(*v));
	unsigned char pub[32];
	char *newkey = NULL;

	if (st_home_ensure() < 0)
		goto fail;
	v->dir = st_home_path("vault");
	v->keypath = st_home_path("vault.key");
	newkey = st_home_path("vault.key.new");
	if (!exists(v->keypath)) {
		if (!create)
			goto done;
		/* a new key would open none of them: never make one silently */
		if (has_items(v->dir)) {
			st_error(ST_EX_NOINPUT, "the vault has no key: %s is "
			         "missing and %s holds items only it opens; put "
			         "it back", v->keypath, v->dir);
			goto fail;
		}
		if (make_key(v->keypath, &v->ids[0]) < 0)
			goto fail;
	} else if (load_key(v->keypath, &v->ids[0]) < 0)
		goto fail;
	v->nids = 1;
	/* an interrupted rekey: the files may carry either key */
	if (exists(newkey)) {
		if (load_key(newkey, &v->ids[1]) < 0)
			goto fail;
		v->nids = 2;
	}
	/* every item is opened with these keys: import them once */
	for (size_t i = 0; i < v->nids; i++)
		if (st_x25519_cache(v->ids[i].key) < 0)
			goto fail;
	if (st_x25519_pub(v->ids[0].key, pub) < 0)
		goto fail;
	st_age_format_recipient(pub, v->recipient);
	if (create && st_mkdir(v->dir, 0700) < 0)
		goto fail;
done:
	free(newkey);
	return v;
fail:
	free(newkey);
	st_vault_close(v);
	return NULL;
}

void st_vault_close(struct st_vault *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < 2; i++)
		st_age_id_wipe(&v->ids[i]);
	free(v->dir);
	free(v->keypath);
	free(v);
}

const char *st_vault_recipient(const struct st_vault *v)
{
	return v->recipient;
}

const struct st_age_id *st_vault_ids(const struct st_vault *v, size_t *n)
{
	*n = v->nids;
	return v->ids;
}

static int valid_id(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[len] == '\0' || strcmp(s + len, ".age") == 0 ||
	       strcmp(s + len, META_SUFFIX) == 0;
}

static char *item_path(const struct st_vault *v, const char *id, int meta)
{
	char name[ST_VAULT_ID_LEN + sizeof(META_SUFFIX)];

	snprintf(name, sizeof(name), "%s%s", id, meta ? META_SUFFIX : ".age");
	return st_path_join(v->dir, name);
}

static void new_id(char *id)
{
	unsigned char r[4];
	char hex[9];

	/* st_random cannot fail short of a broken RNG, and ids need not be
	 * secret: an all-zero tail is still unique enough with O_EXCL below */
	if (st_random(r, sizeof(r)) < 0)
		memset(r, 0, sizeof(r));
	st_hex_encode(r, sizeof(r), hex);
	snprintf(id, ST_VAULT_ID_LEN + 1, "%012llx%s",
	         (unsigned long long)st_now_ms() & 0xffffffffffffULL, hex);
}

struct counter {
	struct st_age_enc *enc;
	int64_t size;
};

/* Encrypt content to a new file; counts the plaintext size. */
static int write_item(struct st_vault *v, const char *path, int infd,
                      const void *data, size_t n, int64_t *size)
{
	struct st_age_rcpt r = { .type = ST_AGE_X25519 };
	struct st_atomic a;
	struct st_age_enc *e;
	unsigned char *buf = NULL;
	ssize_t got;
	int rc = -1;

	if (st_age_parse_recipient(v->recipient, &r) < 0)
		return -1;
	if (st_atomic_open(&a, path, 0600) < 0)
		return -1;
	if (!(e = st_age_enc_new(&r, 1, 0, st_sink_fd, &a.fd)))
		goto fail;
	*size = 0;
	if (infd < 0) {
		if (st_age_enc_write(e, data, n) < 0)
			goto fail;
		*size = (int64_t)n;
	} else {
		buf = st_malloc(ST_STREAM_CHUNK * 4);
		while ((got = read(infd, buf, ST_STREAM_CHUNK * 4)) != 0) {
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				st_error(ST_EX_NOINPUT, "cannot read input:");
				goto fail;
			}
			if (st_age_enc_write(e, buf, (size_t)got) < 0)
				goto fail;
			*size += got;
		}
	}
	rc = st_age_enc_finish(e);
	e = NULL;
	if (rc == 0) {
		st_free_secret(buf, buf ? ST_STREAM_CHUNK * 4 : 0);
		return st_atomic_commit(&a);
	}
fail:
	/* "cannot write output: No space left on device" names no file */
	if (st_errcode() == ST_EX_CANTCREAT && !strstr(st_errmsg(), path))
		st_error_ctx("%s", path);
	st_age_enc_free(e);
	st_atomic_abort(&a);
	st_free_secret(buf, buf ? ST_STREAM_CHUNK * 4 : 0);
	return -1;
}

/*
 * Items but no key: the key was lost or left behind, and only that key
 * opens them (st-keygen would make a new one, and with -f a new identity).
 */
static int no_key(const struct st_vault *v, int code)
{
	return st_error(code, "the vault has no key: %s is missing; put back "
	                "the vault.key its items were written with", v->keypath);
}

int st_vault_put(struct st_vault *v, struct st_json *meta, int infd,
                 const void *data, size_t n, char *id)
{
	char *cpath = NULL, *mpath = NULL, *js = NULL;
	int64_t size, dummy;
	int rc = -1, tries;

	if (!v->nids)
		return no_key(v, ST_EX_CONFIG);
	for (tries = 0; tries < 8; tries++) {
		new_id(id);
		free(cpath);
		free(mpath);
		cpath = item_path(v, id, 0);
		mpath = item_path(v, id, 1);
		if (!exists(cpath) && !exists(mpath))
			break;
	}
	if (write_item(v, cpath, infd, data, n, &size) < 0)
		goto out;
	st_json_set_str(meta, "id", id);
	st_json_set_int(meta, "size", size);
	if (!st_json_get(meta, "ts"))
		st_json_set_int(meta, "ts", st_now_ms());
	js = st_json_dump(meta);
	if (write_item(v, mpath, -1, js, strlen(js), &dummy) < 0) {
		unlink(cpath);
		goto out;
	}
	rc = 0;
out:
	free(js);
	free(cpath);
	free(mpath);
	return rc;
}

/* Decrypt a whole file into memory, at most max bytes. */
struct capped {
	struct st_buf *b;
	size_t max;
};

static int sink_capped(void *ctx, const void *p, size_t n)
{
	struct capped *c = ctx;

	if (c->b->len + n > c->max)
		return st_error(ST_EX_DATAERR, "item is larger than %zu bytes",
		                c->max);
	return st_sink_buf(c->b, p, n);
}

/*
 * Name the item in a failed decryption; when no identity matched, the
 * vault key is not the one the item was written for (a vault.key replaced
 * or copied from another home), and that key's file is named too.
 */
static int not_ours(struct st_vault *v, const char *path)
{
	if (st_errcode() != ST_EX_NO || strstr(st_errmsg(), "passphrase"))
		return st_error_ctx("%s", path);
	return st_error(ST_EX_NO, "%s: the vault key %s does not open it (no "
	                "identity matched): put back the vault.key it was "
	                "written with", path, v->keypath);
}

static int decrypt_path(struct st_vault *v, const char *path, st_sink_fn sink,
                        void *ctx)
{
	int fd, rc;

	if (!v->nids)
		return no_key(v, ST_EX_NOINPUT);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return st_error(errno == ENOENT ? ST_EX_NO : ST_EX_NOINPUT,
		                "cannot open %s:", path);
	rc = st_age_decrypt(fd, v->ids, v->nids, sink, ctx);
	close(fd);
	if (rc < 0)
		not_ours(v, path);
	return rc;
}

static struct st_json *read_meta(struct st_vault *v, const char *path)
{
	struct st_buf b;
	struct capped c = { &b, META_MAX };
	struct st_json *j = NULL;

	st_buf_init(&b, 1);
	if (decrypt_path(v, path, sink_capped, &c) == 0)
		j = st_json_parse((const char *)b.data, b.len, META_MAX, path);
	if (j && !st_json_is_object(j)) {
		st_json_free(j);
		j = NULL;
		st_error(ST_EX_DATAERR, "%s: meta is not a JSON object", path);
	}
	st_buf_free(&b);
	return j;
}

struct st_json *st_vault_meta(struct st_vault *v, const char *id)
{
	char *p = item_path(v, id, 1);
	struct st_json *j = read_meta(v, p);

	free(p);
	return j;
}

/*
 * When an item came: a received message by the relay's clock ("received"),
 * so a sender whose clock is off does not reorder the vault; anything else
 * by its own "ts".
 */
static int64_t when(struct st_json *x)
{
	int64_t t = 0;

	if (st_json_get(x, "received") &&
	    st_json_get_int(x, "received", INT64_MIN, INT64_MAX, &t) == 0)
		return t;
	st_json_get_int(x, "ts", INT64_MIN, INT64_MAX, &t);
	return t;
}

static int by_time(const void *a, const void *b)
{
	struct st_json *x = *(struct st_json *const *)a;
	struct st_json *y = *(struct st_json *const *)b;
	int64_t tx = when(x), ty = when(y);
	const char *ix = "", *iy = "";

	if (tx != ty)
		return tx < ty ? -1 : 1;
	st_json_get_str(x, "id", &ix, NULL);
	st_json_get_str(y, "id", &iy, NULL);
	return strcmp(ix, iy);
}

/* Call fn for every item id in the vault directory (meta files only). */
static int each_id(struct st_vault *v, int (*fn)(void *, const char *),
                   void *ctx)
{
	DIR *d = opendir(v->dir);
	struct dirent *e;
	char id[ST_VAULT_ID_LEN + 1];
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0
		       : st_error(ST_EX_NOINPUT, "cannot open %s:", v->dir);
	while (rc == 0 && (e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len != ST_VAULT_ID_LEN + strlen(META_SUFFIX) ||
		    !valid_id(e->d_name, ST_VAULT_ID_LEN) ||
		    strcmp(e->d_name + ST_VAULT_ID_LEN, META_SUFFIX))
			continue;
		memcpy(id, e->d_name, ST_VAULT_ID_LEN);
		id[ST_VAULT_ID_LEN] = '\0';
		rc = fn(ctx, id);
	}
	closedir(d);
	return rc;
}

struct lister {
	struct st_vault *v;
	struct st_json **items;
	size_t n, cap;
};

static int list_one(void *ctx, const char *id)
{
	struct lister *l = ctx;
	struct st_json *j = st_vault_meta(l->v, id);

	if (!j)
		return -1;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->items = st_realloc(l->items, l->cap * sizeof(*l->items));
	}
	/* the file name, not the (encrypted, but editable) meta, names it */
	st_json_set_str(j, "id", id);
	l->items[l->n++] = j;
	return 0;
}

int st_vault_list(struct st_vault *v, struct st_json ***items, size_t *n)
{
	struct lister l = { v, NULL, 0, 0 };

	if (each_id(v, list_one, &l) < 0) {
		st_vault_list_free(l.items, l.n);
		return -1;
	}
	if (l.n)
		qsort(l.items, l.n, sizeof(*l.items), by_time);
	*items = l.items;
	*n = l.n;
	return 0;
}

void st_vault_list_free(struct st_json **items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		st_json_free(items[i]);
	free(items);
}

struct resolver {
	const char *prefix;
	size_t len, found;
	char *id;
};

static int resolve_one(void *ctx, const char *id)
{
	struct resolver *r = ctx;

	if (strncmp(id, r->prefix, r->len) == 0) {
		if (r->found++ == 0)
			memcpy(r->id, id, ST_VAULT_ID_LEN + 1);
	}
	return 0;
}

int st_vault_resolve(struct st_vault *v, const char *prefix, char *id)
{
	struct resolver r = { prefix, strlen(prefix), 0, id };

	if (r.len < 4 || r.len > ST_VAULT_ID_LEN || !valid_id(prefix, r.len))
		return st_error(ST_EX_USAGE, "bad item id '%s': expected 4 to "
		                "20 lowercase hex digits", prefix);
	if (each_id(v, resolve_one, &r) < 0)
		return -1;
	if (r.found == 0)
		return st_error(ST_EX_NO, "no such item: %s in %s ('st-vault ls' "
		                "lists the items)", prefix, v->dir);
	if (r.found > 1)
		return st_error(ST_EX_USAGE, "ambiguous item id %s (%zu items): "
		                "give more of its digits", prefix, r.found);
	return 0;
}

int st_vault_read(struct st_vault *v, const char *id, st_sink_fn sink,
                  void *ctx)
{
	char *p = item_path(v, id, 0);
	int rc = decrypt_path(v, p, sink, ctx);

	free(p);
	return rc;
}

int st_vault_rm(struct st_vault *v, const char *id)
{
	char *m = item_path(v, id, 1), *c = item_path(v, id, 0);
	int rc = 0;

	if (unlink(m) < 0)
		rc = st_error(errno == ENOENT ? ST_EX_NO : ST_EX_CANTCREAT,
		              "cannot remove %s:", m);
	else if (unlink(c) < 0 && errno != ENOENT)
		rc = st_error(ST_EX_CANTCREAT, "cannot remove %s:", c);
	if (rc == 0)
		rc = st_fsync_dir(m);
	free(m);
	free(c);
	return rc;
}

/* Re-wrap one file's header for the recipient r, atomically. */
static int rekey_file(struct st_vault *v, const char *path,
                      const struct st_age_rcpt *r)
{
	struct st_atomic a;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return st_error(ST_EX_NOINPUT, "cannot open %s:", path);
	if (st_atomic_open(&a, path, 0600) < 0) {
		close(fd);
		return -1;
	}
	rc = st_age_rekey(fd, v->ids, v->nids, r, 1, a.fd);
	close(fd);
	if (rc < 0) {
		not_ours(v, path);
		st_atomic_abort(&a);
		return -1;
	}
	return st_atomic_commit(&a);
}

struct rekeyer {
	struct st_vault *v;
	struct st_age_rcpt r;
};

static int rekey_one(void *ctx, const char *id)
{
	struct rekeyer *k = ctx;
	char *c = item_path(k->v, id, 0), *m = item_path(k->v, id, 1);
	int rc = 0;

	if (exists(c))
		rc = rekey_file(k->v, c, &k->r);
	if (rc == 0)
		rc = rekey_file(k->v, m, &k->r);
	free(c);
	free(m);
	return rc;
}

int st_vault_rekey(struct st_vault *v)
{
	struct rekeyer k = { v, { .type = ST_AGE_X25519 } };
	char *newkey = st_home_path("vault.key.new");
	int rc = -1;

	if (!v->nids) {
		no_key(v, ST_EX_NOINPUT);
		goto out;
	}
	if (v->nids == 1) {
		if (make_key(newkey, &v->ids[1]) < 0)
			goto out;
		v->nids = 2;
	}
	if (st_x25519_pub(v->ids[1].key, k.r.pub) < 0)
		goto out;
	if (st_mkdir(v->dir, 0700) < 0 || each_id(v, rekey_one, &k) < 0)
		goto out;
	if (rename(newkey, v->keypath) < 0) {
		st_error(ST_EX_CANTCREAT, "cannot rename %s:", newkey);
		goto out;
	}
	if (st_fsync_dir(v->keypath) < 0)
		goto out;
	st_age_id_wipe(&v->ids[0]);
	v->ids[0] = v->ids[1];
	memset(&v->ids[1], 0, sizeof(v->ids[1]));
	v->nids = 1;
	st_age_format_recipient(k.r.pub, v->recipient);
	rc = 0;
out:
	free(newkey);
	return rc;
}

/* ---- items with caller-chosen ids, written as a stream (st-recv) ---- */

void st_vault_new_id(char *id)
{
	new_id(id);
}

int st_vault_has(struct st_vault *v, const char *id)
{
	char *p;
	int rc;

	if (strlen(id) != ST_VAULT_ID_LEN || !valid_id(id, ST_VAULT_ID_LEN))
		return 0;
	p = item_path(v, id, 1);
	rc = exists(p);
	free(p);
	return rc;
}

struct st_vault_writer {
	struct st_vault *v;
	char id[ST_VAULT_ID_LEN + 1];
	struct st_atomic a;
	struct st_age_enc *e;
	int64_t size;
};

struct st_vault_writer *st_vault_writer_new(struct st_vault *v,
                                            const char *id)
{
	struct st_age_rcpt r = { .type = ST_AGE_X25519 };
	struct st_vault_writer *w;
	char *path;

	if (!v->nids) {
		no_key(v, ST_EX_CONFIG);
		return NULL;
	}
	if (strlen(id) != ST_VAULT_ID_LEN || !valid_id(id, ST_VAULT_ID_LEN)) {
		st_error(ST_EX_USAGE, "bad item id '%.32s'", id);
		return NULL;
	}
	if (st_age_parse_recipient(v->recipient, &r) < 0 ||
	    st_mkdir(v->dir, 0700) < 0)
		return NULL;
	w = st_calloc(1, sizeof(*w));
	w->v = v;
	memcpy(w->id, id, ST_VAULT_ID_LEN + 1);
	path = item_path(v, id, 0);
	if (st_atomic_open(&w->a, path, 0600) < 0) {
		free(path);
		free(w);
		return NULL;
	}
	if (!(w->e = st_age_enc_new(&r, 1, 0, st_sink_fd, &w->a.fd))) {
		if (st_errcode() == ST_EX_CANTCREAT)
			st_error_ctx("%s", path);
		free(path);
		st_atomic_abort(&w->a);
		free(w);
		return NULL;
	}
	free(path);
	return w;
}

/* Name the item in a write error ("cannot write output" names no file). */
static int item_error(struct st_vault_writer *w)
{
	char *path;

	if (st_errcode() != ST_EX_CANTCREAT)
		return -1;
	path = item_path(w->v, w->id, 0);
	st_error_ctx("%s", path);
	free(path);
	return -1;
}

int st_vault_writer_sink(void *ctx, const void *p, size_t n)
{
	struct st_vault_writer *w = ctx;

	w->size += (int64_t)n;
	if (st_age_enc_write(w->e, p, n) < 0)
		return item_error(w);
	return 0;
}

int st_vault_writer_commit(struct st_vault_writer *w, struct st_json *meta)
{
	char *cpath = item_path(w->v, w->id, 0), *mpath = item_path(w->v, w->id, 1);
	char *js = NULL;
	int64_t dummy;
	int rc = st_age_enc_finish(w->e);

	w->e = NULL;
	if (rc == 0)
		rc = st_atomic_commit(&w->a);
	else {
		item_error(w);
		st_atomic_abort(&w->a);
	}
	if (rc == 0) {
		st_json_set_str(meta, "id", w->id);
		st_json_set_int(meta, "size", w->size);
		if (!st_json_get(meta, "ts"))
			st_json_set_int(meta, "ts", st_now_ms());
		js = st_json_dump(meta);
		/* the meta file is the commit point, as in st_vault_put() */
		if ((rc = write_item(w->v, mpath, -1, js, strlen(js), &dummy)) < 0)
			unlink(cpath);
	}
	free(js);
	free(cpath);
	free(mpath);
	free(w);
	return rc;
}

void st_vault_writer_abort(struct st_vault_writer *w)
{
	if (!w)
		return;
	st_age_enc_free(w->e);
	st_atomic_abort(&w->a);
	free(w);
}

int st_vault_put_id(struct st_vault *v, struct st_json *meta,
                    const void *data, size_t n, const char *id)
{
	struct st_vault_writer *w = st_vault_writer_new(v, id);

	if (!w)
		return -1;
	if (n && st_vault_writer_sink(w, data, n) < 0) {
		st_vault_writer_abort(w);
		return -1;
	}
	return st_vault_writer_commit(w, meta);
}
