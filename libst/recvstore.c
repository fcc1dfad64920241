/*
 * recvstore.c - where st-recv puts a message: the vault (attachments
 * first, each its own item, then the message, whose meta file is the
 * commit point; or an undecryptable envelope as received), and -o DIR,
 * where a file is written under a temporary name and linked to its safe
 * name only when complete, never over an existing file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recv.h"

static int relay_trouble(int code)
{
	return code == ST_EX_UNAVAILABLE || code == ST_EX_TEMPFAIL ||
	       code == ST_EX_NOPERM || code == ST_EX_CANTCREAT ||
	       code == ST_EX_CONFIG;
}

/* Kept as received, acknowledged, reported (SPEC §4). */
int recv_undecryptable(struct st_recv *c, struct batch *b,
                         const char *relay, const char *from, int64_t rts,
                         const struct st_json *envj, const char *hash,
                         const char *why)
{
	const struct st_inbox_rec *old = st_inbox_find(b->log, relay);
	struct st_inbox_rec rec;
	struct st_json *meta;
	char *raw;
	int rc = 0;

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.relay, sizeof(rec.relay), "%s", relay);
	snprintf(rec.from, sizeof(rec.from), "%s", from);
	strcpy(rec.msgid, "-");
	snprintf(rec.hash, sizeof(rec.hash), "%s", hash ? hash : "-");
	rec.files = "-";
	rec.ts = st_now_ms();
	if (c->o.no_vault)
		strcpy(rec.item, "-");
	else if (old && strcmp(old->item, "-"))
		memcpy(rec.item, old->item, sizeof(rec.item));
	else
		st_vault_new_id(rec.item);
	if (st_inbox_begin(b->log, &rec) < 0)
		return -1;
	if (!c->o.no_vault) {
		meta = st_json_object();
		st_json_set_str(meta, "kind", "undecryptable");
		st_json_set_str(meta, "from", from);
		st_json_set_int(meta, "ts", rts);
		st_json_set_str(meta, "relay_id", relay);
		st_json_set_str(meta, "error", why);
		raw = st_json_dump(envj);
		rc = st_vault_put_id(c->vault, meta, raw, strlen(raw), rec.item);
		free(raw);
		st_json_free(meta);
		if (rc < 0)
			return -1;
	}
	if (st_inbox_mark(b->log, relay, 'D') < 0)
		return -1;
	recv_ack(b, relay);
	b->handled++;
	b->st->undecryptable++;
	recv_note(c, "message %s from %s cannot be decrypted (%s); kept in the "
	     "vault%s%s as undecryptable", relay, from, why,
	     c->o.no_vault ? "" : " as item ", c->o.no_vault ? "" : rec.item);
	return 0;
}

/* -o DIR: a temporary beside the name, linked in only when complete. */
struct outfile {
	int dirfd, fd;
	char tmp[40];
};

static int out_open(const char *dir, struct outfile *f)
{
	unsigned char r[8];

	f->fd = -1;
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0)
		return st_error(ST_EX_CANTCREAT, "cannot open %s:", dir);
	if (st_random(r, sizeof(r)) < 0)
		return -1;
	strcpy(f->tmp, ".st-recv-");
	st_hex_encode(r, sizeof(r), f->tmp + strlen(f->tmp));
	f->fd = openat(f->dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL |
	               O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f->fd < 0)
		return st_error(ST_EX_CANTCREAT, "cannot create a file in %s:",
		                dir);
	return 0;
}

static void out_abort(struct outfile *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		unlinkat(f->dirfd, f->tmp, 0);
	}
	if (f->dirfd >= 0)
		close(f->dirfd);
	f->fd = f->dirfd = -1;
}

/* Link the finished file as name, or "name (1).ext" and so on: never
 * over an existing file.  Returns the path (malloc'd) or NULL. */
static char *out_commit(const char *dir, struct outfile *f, const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);
	char try[300], *path = NULL;

	if (fsync(f->fd) < 0) {
		st_error(ST_EX_CANTCREAT, "cannot write to %s:", dir);
		goto out;
	}
	for (int i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(try, sizeof(try), "%s", name);
		else
			snprintf(try, sizeof(try), "%.*s (%d)%s", (int)stem, name,
			         i, name + stem);
		if (linkat(f->dirfd, f->tmp, f->dirfd, try, 0) == 0) {
			path = st_path_join(dir, try);
			break;
		}
		if (errno != EEXIST) {
			st_error(ST_EX_CANTCREAT, "cannot save %s in %s:", name,
			         dir);
			goto out;
		}
	}
	if (!path)
		st_error(ST_EX_CANTCREAT, "cannot save %s in %s: too many files "
		         "of that name", name, dir);
out:
	out_abort(f);
	return path;
}

struct tee {
	struct st_vault_writer *w;
	int fd;
	const char *dir;        /* -o DIR, for messages */
};

static int sink_tee(void *ctx, const void *p, size_t n)
{
	struct tee *t = ctx;

	if (t->w && st_vault_writer_sink(t->w, p, n) < 0)
		return -1;
	if (t->fd >= 0 && st_write_all(t->fd, p, n) < 0)
		return st_error(ST_EX_CANTCREAT, "cannot write an attachment "
		                "in %s:", t->dir);
	return 0;
}

char *recv_own(struct job *j, const char *s)
{
	j->strs = st_realloc(j->strs, (j->nstrs + 1) * sizeof(*j->strs));
	return j->strs[j->nstrs++] = st_strdup(s);
}

/* Fetch one attachment into the vault (item id) and -o DIR.  Relay
 * trouble is returned as -1 (the message is left for later); anything
 * else wrong with the file is recorded in f->error and the rest goes on. */
static int fetch_file(struct st_recv *c, struct job *j,
                      const struct st_msg_file *mf, const char *id,
                      struct st_recv_file *f, struct st_json *fmeta)
{
	struct tee t = { NULL, -1, c->o.outdir };
	struct outfile of = { -1, -1, "" };
	struct st_json *meta;
	char *path;

	f->item = "";
	if (!c->o.no_vault && !(t.w = st_vault_writer_new(c->vault, id)))
		return -1;
	if (c->o.outdir && out_open(c->o.outdir, &of) < 0) {
		st_vault_writer_abort(t.w);
		return -1;
	}
	t.fd = of.fd;
	if (!t.w && t.fd < 0)
		return 0;       /* neither kept nor saved: nothing to fetch */
	if (!st_blob_id_ok(mf->blob)) {
		st_error(ST_EX_DATAERR, "bad blob id");
		goto bad;
	}
	if (st_blob_download(c->r, mf->blob, mf->size, mf->key, sink_tee,
	                     &t) < 0)
		goto bad;
	if (t.w) {
		meta = st_json_object();
		st_json_set_str(meta, "kind", "file");
		st_json_set_str(meta, "from", j->from);
		st_json_set_int(meta, "ts", j->m.ts);
		st_json_set_str(meta, "name", f->name);
		st_json_set_str(meta, "msgid", j->m.id);
		st_json_set_str(meta, "relay_id", j->relay);
		if (st_vault_writer_commit(t.w, meta) < 0) {
			st_json_free(meta);
			out_abort(&of);
			return -1;
		}
		st_json_free(meta);
		f->item = recv_own(j, id);
		st_json_set_str(fmeta, "item", id);
	}
	if (of.fd >= 0) {
		if (!(path = out_commit(c->o.outdir, &of, f->name)))
			return -1;
		f->path = recv_own(j, path);
		free(path);
	}
	return 0;
bad:
	st_vault_writer_abort(t.w);
	out_abort(&of);
	if (relay_trouble(st_errcode()) && st_errcode() != ST_EX_CANTCREAT)
		return -1;
	f->error = recv_own(j, st_errmsg());
	st_json_set_str(fmeta, "error", st_errmsg());
	st_error_clear();
	return 0;
}

/* Parse a P record's file ids (or make new ones). */
static void file_ids(const struct st_inbox_rec *old, size_t n,
                     char ids[][ST_VAULT_ID_LEN + 1], char *joined,
                     size_t cap)
{
	const char *p = old ? old->files : "-";
	size_t k = 0;

	while (k < n && strlen(p) >= ST_VAULT_ID_LEN && strcmp(p, "-")) {
		memcpy(ids[k], p, ST_VAULT_ID_LEN);
		ids[k++][ST_VAULT_ID_LEN] = '\0';
		p += ST_VAULT_ID_LEN;
		if (*p != ',')
			break;
		p++;
	}
	for (; k < n; k++)
		st_vault_new_id(ids[k]);
	joined[0] = '\0';
	for (k = 0; k < n && strlen(joined) + ST_VAULT_ID_LEN + 2 < cap; k++) {
		if (k)
			strcat(joined, ",");
		strcat(joined, ids[k]);
	}
	if (!n)
		snprintf(joined, cap, "-");
}

/* Attachments, then the message: the message's meta is the commit point. */
int recv_store(struct st_recv *c, struct batch *b, struct job *j,
                 const struct st_inbox_rec *old, const char *hash)
{
	char ids[FILES_MAX][ST_VAULT_ID_LEN + 1], joined[ST_INBOX_FILES_MAX + 1];
	struct st_inbox_rec rec;
	struct st_json *meta, *files, *to;
	size_t n = j->m.nfiles < FILES_MAX ? j->m.nfiles : FILES_MAX;

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.relay, sizeof(rec.relay), "%s", j->relay);
	snprintf(rec.from, sizeof(rec.from), "%s", j->from);
	memcpy(rec.msgid, j->m.id, 33);
	snprintf(rec.hash, sizeof(rec.hash), "%s", hash);
	rec.ts = st_now_ms();
	if (c->o.no_vault) {
		strcpy(rec.item, "-");
		rec.files = "-";
		for (size_t i = 0; i < n; i++)
			st_vault_new_id(ids[i]);
	} else {
		if (old && strlen(old->item) == ST_VAULT_ID_LEN)
			memcpy(rec.item, old->item, sizeof(rec.item));
		else
			st_vault_new_id(rec.item);
		file_ids(old, n, ids, joined, sizeof(joined));
		rec.files = joined;
	}
	if (st_inbox_begin(b->log, &rec) < 0)
		return -1;
	recv_crash_point("recv-journal");
	j->files = st_calloc(j->m.nfiles ? j->m.nfiles : 1, sizeof(*j->files));
	files = st_json_array();
	for (size_t i = 0; i < j->m.nfiles; i++) {
		struct st_recv_file *f = &j->files[i];
		struct st_json *fm = st_json_object();
		char *name = st_safe_basename(j->m.files[i].name,
		                              strlen(j->m.files[i].name), "attachment");

		f->name = recv_own(j, name);
		free(name);
		f->size = j->m.files[i].size;
		f->item = "";
		st_json_set_str(fm, "name", f->name);
		st_json_set_int(fm, "size", (int64_t)f->size);
		st_json_array_append(files, fm);
		if (i >= FILES_MAX) {
			f->error = "too many attachments";
			st_json_set_str(fm, "error", f->error);
		} else if (fetch_file(c, j, &j->m.files[i], ids[i], f, fm) < 0) {
			st_json_free(files);
			return -1;
		}
		if (f->error) {
			b->st->file_errors++;
			recv_note(c, "attachment %s of message %s from %s is missing: "
			     "%s", f->name, j->relay, j->from, f->error);
		}
	}
	recv_crash_point("recv-files");
	if (c->o.no_vault) {
		st_json_free(files);
		j->item[0] = '\0';
		return 0;
	}
	meta = st_json_object();
	st_json_set_str(meta, "kind", "message");
	st_json_set_str(meta, "from", j->from);
	to = st_json_array();
	for (size_t i = 0; i < j->m.nto; i++)
		st_json_array_append(to, st_json_str(j->m.to[i]));
	st_json_set(meta, "to", to);
	st_json_set_int(meta, "ts", j->m.ts);
	st_json_set_str(meta, "msgid", j->m.id);
	st_json_set_str(meta, "relay_id", j->relay);
	st_json_set_int(meta, "received", j->relay_ts);
	st_json_set_str(meta, "body", !j->m.has_body ? "none" :
	                j->m.is_text ? "text" : "data");
	st_json_set(meta, "files", files);
	if (st_vault_put_id(c->vault, meta, j->m.body, j->m.bodylen,
	                    rec.item) < 0) {
		st_json_free(meta);
		return -1;
	}
	st_json_free(meta);
	memcpy(j->item, rec.item, sizeof(j->item));
	return 0;
}
