/*
 * recv.c - st-recv's work: fetch, decrypt, store, commit, print, hook,
 * acknowledge (SPEC §4 "State discipline" and "Trust").
 *
 * One round (st_recv_poll) fetches a page without the home lock (a long
 * poll may wait a minute, and st-send must not), then handles the page
 * under the lock, message by message:
 *
 *   dedupe: a relay id the journal (inbox.c) marks done is acknowledged
 *     silently; an envelope whose hash a done record carries is a replay
 *     and is never decrypted again; a message id already stored from the
 *     same sender only advances the state;
 *   decrypt on a copy with the sender's pinned identity (an unknown
 *     sender is looked up in the directory and pinned on first use);
 *   journal P naming the vault ids about to be used, attachments and the
 *     message into the vault, ratchet (and prekeys) commit, journal D.
 *
 * Then, with the lock released, each new message goes to the printer and
 * the --exec hook, and the relay is acknowledged for everything handled
 * whose hook (if any) succeeded.  A crash anywhere leaves either nothing
 * (the message comes again and is handled afresh), or a P record whose
 * items are checked on the rerun: stored means finish it (commit, D,
 * ack) without storing again; a decryption that no longer works means the
 * state was committed.  No message key stays usable past its message.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "st.h"

#define ACK_MAX 1000
#define FILES_MAX 64
#define HOLD_MS 60000                   /* a failed hook is retried after */

/* Tests kill the process at a named step (ST_TEST_CRASH=step) to prove
 * that a rerun finishes what a crash interrupted. */
static void crash_point(const char *step)
{
	const char *e = getenv("ST_TEST_CRASH");

	if (e && !strcmp(e, step))
		raise(SIGKILL);
}

struct held {
	char relay[32];
	int64_t until;
};

struct st_recv {
	struct st_relay *r;
	const struct st_identity *me;
	const char *user;
	struct st_recv_opts o;
	st_recv_print_fn print;
	st_recv_note_fn note;
	void *ctx;
	struct st_vault *vault;
	struct held *held;
	size_t nheld;
};

/* What a page turned into: deliveries for after the lock, and acks. */
struct job {
	char relay[32];
	char from[ST_USER_MAX + 1];
	int64_t relay_ts;
	struct st_msg m;
	char item[ST_VAULT_ID_LEN + 1];
	struct st_recv_file *files;
	char **strs;                    /* owned strings of files */
	size_t nstrs;
	int rerun;                      /* hook only, from the vault */
};

struct sess {
	char user[ST_USER_MAX + 1];
	struct st_ratchet *r;
};

struct batch {
	struct st_inbox *log;
	struct st_prekeys pk;
	int pk_loaded;
	struct sess *sess;
	size_t nsess;
	struct job *jobs;
	size_t njobs;
	char (*acks)[32];
	size_t nacks;
	size_t handled, pending;
	struct st_recv_stats *st;
};

static void note(struct st_recv *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct st_recv *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->note)
		c->note(c->ctx, buf);
}

struct st_recv *st_recv_new(struct st_relay *r, const struct st_identity *me,
                            const char *user, const struct st_recv_opts *o,
                            st_recv_print_fn print, st_recv_note_fn nfn,
                            void *ctx)
{
	struct st_recv *c = st_calloc(1, sizeof(*c));

	c->r = r;
	c->me = me;
	c->user = user;
	c->o = *o;
	c->print = print;
	c->note = nfn;
	c->ctx = ctx;
	return c;
}

void st_recv_free(struct st_recv *c)
{
	if (!c)
		return;
	st_vault_close(c->vault);
	free(c->held);
	free(c);
}

static void ack(struct batch *b, const char *relay)
{
	b->acks = st_realloc(b->acks, (b->nacks + 1) * sizeof(*b->acks));
	snprintf(b->acks[b->nacks++], sizeof(*b->acks), "%s", relay);
}

static int is_held(struct st_recv *c, const char *relay)
{
	int64_t now = st_now_ms();

	for (size_t i = 0; i < c->nheld; i++)
		if (!strcmp(c->held[i].relay, relay) && now < c->held[i].until)
			return 1;
	return 0;
}

static void hold(struct st_recv *c, const char *relay)
{
	c->held = st_realloc(c->held, (c->nheld + 1) * sizeof(*c->held));
	snprintf(c->held[c->nheld].relay, sizeof(c->held->relay), "%s", relay);
	c->held[c->nheld++].until = st_now_ms() + HOLD_MS;
}

/* ---- state of a page ---- */

static struct st_ratchet *session(struct batch *b, const char *user)
{
	struct st_ratchet *r;

	for (size_t i = 0; i < b->nsess; i++)
		if (!strcmp(b->sess[i].user, user))
			return b->sess[i].r;
	if (!(r = st_session_load(user)))
		return NULL;
	b->sess = st_realloc(b->sess, (b->nsess + 1) * sizeof(*b->sess));
	snprintf(b->sess[b->nsess].user, sizeof(b->sess->user), "%s", user);
	b->sess[b->nsess++].r = r;
	return r;
}

static int prekeys(struct batch *b)
{
	if (b->pk_loaded)
		return 0;
	if (st_prekeys_load(&b->pk) < 0)
		return -1;
	b->pk_loaded = 1;
	return 0;
}

/* Commit the ratchet state, then retire a one-time prekey it used: in
 * that order, so a crash between cannot leave a message undecryptable. */
static int commit(struct batch *b, const char *from, struct st_ratchet *r,
                  const struct st_envelope *env, int opk_used)
{
	if (st_session_save(from, r) < 0)
		return -1;
	if (!env->has_x3dh || !env->has_opk || !opk_used)
		return 0;
	if (prekeys(b) < 0)
		return -1;
	if (st_prekeys_use_opk(&b->pk, env->opk_id) < 0) {
		st_error_clear();
		return 0;
	}
	return st_prekeys_save(&b->pk);
}

/* The sender's pin; a sender seen for the first time is looked up. */
static int sender(struct st_recv *c, const char *from, struct st_peer *p)
{
	struct st_json *reply = NULL, *o;
	struct st_identity_pub served;
	char path[64];
	long status;
	int rc;

	if (st_peer_load(from, p) == 0)
		return 0;
	if (st_errcode() != ST_EX_NOINPUT)
		return -1;
	snprintf(path, sizeof(path), "/v1/users/%s", from);
	rc = st_relay_call(c->r, "GET", path, NULL, 0, &status, &reply, NULL);
	if (rc < 0 && status == 404)
		rc = st_error(ST_EX_NO, "sender %s is not in the directory",
		              from);
	else if (rc == 0 && (st_json_get_obj(reply, "identity", &o) < 0 ||
	                     st_identity_from_json(o, &served) < 0))
		rc = st_error(ST_EX_DATAERR, "relay: bad identity for %s", from);
	st_json_free(reply);
	if (rc < 0)
		return -1;
	return st_peer_check(from, &served, st_now_ms(), &c->me->pub, c->user,
	                     p, NULL);
}

static int relay_trouble(int code)
{
	return code == ST_EX_UNAVAILABLE || code == ST_EX_TEMPFAIL ||
	       code == ST_EX_NOPERM || code == ST_EX_CANTCREAT ||
	       code == ST_EX_CONFIG;
}

/* ---- storing ---- */

static void envelope_hash(const struct st_envelope *e, char out[33])
{
	struct st_buf b;
	unsigned char h[32];

	st_buf_init(&b, 0);
	st_buf_append(&b, e->hdr, sizeof(e->hdr));
	st_buf_append(&b, e->ct, e->ctlen);
	st_sha256(b.data, b.len, h);
	st_buf_free(&b);
	st_hex_encode(h, 16, out);
}

/* Kept as received, acknowledged, reported (SPEC §4). */
static int undecryptable(struct st_recv *c, struct batch *b,
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
	strcpy(rec.files, "-");
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
	ack(b, relay);
	b->handled++;
	b->st->undecryptable++;
	note(c, "message %s from %s cannot be decrypted (%s); kept in the "
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
};

static int sink_tee(void *ctx, const void *p, size_t n)
{
	struct tee *t = ctx;

	if (t->w && st_vault_writer_sink(t->w, p, n) < 0)
		return -1;
	if (t->fd >= 0 && st_write_all(t->fd, p, n) < 0)
		return st_error(ST_EX_CANTCREAT, "cannot write attachment:");
	return 0;
}

static char *own(struct job *j, const char *s)
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
	struct tee t = { NULL, -1 };
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
		f->item = own(j, id);
		st_json_set_str(fmeta, "item", id);
	}
	if (of.fd >= 0) {
		if (!(path = out_commit(c->o.outdir, &of, f->name)))
			return -1;
		f->path = own(j, path);
		free(path);
	}
	return 0;
bad:
	st_vault_writer_abort(t.w);
	out_abort(&of);
	if (relay_trouble(st_errcode()) && st_errcode() != ST_EX_CANTCREAT)
		return -1;
	f->error = own(j, st_errmsg());
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
static int store(struct st_recv *c, struct batch *b, struct job *j,
                 const struct st_inbox_rec *old, const char *hash)
{
	char ids[FILES_MAX][ST_VAULT_ID_LEN + 1];
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
		strcpy(rec.files, "-");
		for (size_t i = 0; i < n; i++)
			st_vault_new_id(ids[i]);
	} else {
		if (old && strlen(old->item) == ST_VAULT_ID_LEN)
			memcpy(rec.item, old->item, sizeof(rec.item));
		else
			st_vault_new_id(rec.item);
		file_ids(old, n, ids, rec.files, sizeof(rec.files));
	}
	if (st_inbox_begin(b->log, &rec) < 0)
		return -1;
	crash_point("recv-journal");
	j->files = st_calloc(j->m.nfiles ? j->m.nfiles : 1, sizeof(*j->files));
	files = st_json_array();
	for (size_t i = 0; i < j->m.nfiles; i++) {
		struct st_recv_file *f = &j->files[i];
		struct st_json *fm = st_json_object();
		char *name = st_safe_basename(j->m.files[i].name,
		                              strlen(j->m.files[i].name), "attachment");

		f->name = own(j, name);
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
			note(c, "attachment %s of message %s from %s is missing: "
			     "%s", f->name, j->relay, j->from, f->error);
		}
	}
	crash_point("recv-files");
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

static struct job *new_job(struct batch *b, const char *relay,
                           const char *from, int64_t rts)
{
	struct job *j;

	b->jobs = st_realloc(b->jobs, (b->njobs + 1) * sizeof(*b->jobs));
	j = &b->jobs[b->njobs++];
	memset(j, 0, sizeof(*j));
	snprintf(j->relay, sizeof(j->relay), "%s", relay);
	snprintf(j->from, sizeof(j->from), "%s", from);
	j->relay_ts = rts;
	return j;
}

static void free_job(struct job *j)
{
	st_msg_free(&j->m);
	for (size_t i = 0; i < j->nstrs; i++)
		free(j->strs[i]);
	free(j->strs);
	free(j->files);
}

/* A message whose hook failed earlier: run it again from the vault. */
static int rerun_job(struct st_recv *c, struct batch *b,
                     const struct st_inbox_rec *rec, int64_t rts)
{
	struct st_json *meta, *a, *to, *fm;
	struct st_buf body;
	struct job *j;
	const char *s;
	size_t len;

	if (!c->vault || !st_vault_has(c->vault, rec->item) ||
	    !(meta = st_vault_meta(c->vault, rec->item))) {
		st_error_clear();
		note(c, "the hook cannot run again for message %s from %s: it "
		     "was not stored (--no-vault); acknowledged", rec->relay,
		     rec->from);
		ack(b, rec->relay);
		return 0;
	}
	st_buf_init(&body, 1);
	if (st_vault_read(c->vault, rec->item, st_sink_buf, &body) < 0) {
		st_buf_free(&body);
		st_json_free(meta);
		return -1;
	}
	j = new_job(b, rec->relay, rec->from, rts);
	j->rerun = 1;
	memcpy(j->item, rec->item, sizeof(j->item));
	memcpy(j->m.id, rec->msgid, 33);
	st_json_get_int(meta, "ts", 0, INT64_MAX, &j->m.ts);
	if (st_json_get_str(meta, "body", &s, NULL) == 0 && strcmp(s, "none")) {
		j->m.has_body = 1;
		j->m.is_text = !strcmp(s, "text");
	}
	j->m.body = body.data;
	j->m.bodylen = body.len;
	if (st_json_get_arr(meta, "to", &to) == 0) {
		j->m.to = st_calloc(st_json_array_size(to) + 1, sizeof(char *));
		for (size_t i = 0; i < st_json_array_size(to); i++)
			if (st_json_as_str(st_json_array_get(to, i), &s, &len) == 0)
				j->m.to[j->m.nto++] = st_strndup(s, len);
	}
	if (st_json_get_arr(meta, "files", &a) == 0) {
		size_t n = st_json_array_size(a);

		j->files = st_calloc(n ? n : 1, sizeof(*j->files));
		for (size_t i = 0; i < n; i++) {
			fm = st_json_array_get(a, i);
			j->files[i].item = "";
			if (st_json_get_str(fm, "name", &s, NULL) == 0)
				j->files[i].name = own(j, s);
			if (st_json_get(fm, "item") &&
			    st_json_get_str(fm, "item", &s, NULL) == 0)
				j->files[i].item = own(j, s);
			if (st_json_get(fm, "error") &&
			    st_json_get_str(fm, "error", &s, NULL) == 0)
				j->files[i].error = own(j, s);
		}
		j->rerun = 1 + (int)n;
	}
	st_error_clear();
	st_json_free(meta);
	return 0;
}

/* One message of a page, under the lock. */
static int handle(struct st_recv *c, struct batch *b, const char *relay,
                  const char *from, int64_t rts, const struct st_json *envj)
{
	const struct st_inbox_rec *rec = st_inbox_find(b->log, relay), *dup;
	struct st_prekey_set set, *pks = NULL;
	struct st_ratchet_info info;
	struct st_envelope env;
	struct st_ratchet *sess;
	struct st_peer pin;
	unsigned char *pt = NULL;
	size_t ptlen = 0;
	char hash[33], why[512];
	struct job *j;
	int rc, stored, undec;

	if (rec && rec->done) {
		if (c->o.exec && rec->hook_failed && !rec->hook_done)
			return rerun_job(c, b, rec, rts);
		ack(b, relay);
		b->st->duplicates++;
		return 0;
	}
	if (st_envelope_parse(envj, &env) < 0)
		return undecryptable(c, b, relay, from, rts, envj, NULL,
		                     st_errmsg());
	envelope_hash(&env, hash);
	if (!rec && (dup = st_inbox_find_hash(b->log, hash))) {
		st_envelope_free(&env);
		note(c, "message %s from %s replays message %s; dropped", relay,
		     from, dup->relay);
		b->st->duplicates++;
		ack(b, relay);
		return st_inbox_mark(b->log, relay, 'D');
	}
	if (sender(c, from, &pin) < 0) {
		st_envelope_free(&env);
		if (st_errcode() == ST_EX_IDENTITY) {
			b->st->identity++;
			b->pending++;
			note(c, "message %s left on the relay: %s", relay,
			     st_errmsg());
			return 0;
		}
		if (st_errcode() == ST_EX_NO || st_errcode() == ST_EX_DATAERR) {
			snprintf(why, sizeof(why), "%s", st_errmsg());
			return undecryptable(c, b, relay, from, rts, envj, hash,
			                     why);
		}
		return -1;
	}
	if (!(sess = session(b, from)) ||
	    (env.has_x3dh && prekeys(b) < 0)) {
		st_envelope_free(&env);
		return -1;
	}
	if (env.has_x3dh) {
		st_prekeys_set(&b->pk, &set);
		pks = &set;
	}
	rc = st_ratchet_decrypt(sess, c->me, c->user, &pin.id, from, pks, &env,
	                        st_now_ms(), &pt, &ptlen, &info);
	if (rc < 0)
		snprintf(why, sizeof(why), "%s", st_errmsg());
	if (rc < 0 && st_errcode() == ST_EX_IDENTITY) {
		st_envelope_free(&env);
		b->st->identity++;
		b->pending++;
		note(c, "message %s left on the relay: %s; compare safety "
		     "numbers with %s, then run 'st-users trust %s'", relay, why,
		     from, from);
		return 0;
	}
	/* resuming after a crash: stored already, or the state moved on */
	stored = rec && c->vault && st_vault_has(c->vault, rec->item);
	undec = rec && !strcmp(rec->msgid, "-");
	if (rec && undec && !stored && rc < 0) {
		st_envelope_free(&env);
		return undecryptable(c, b, relay, from, rts, envj, hash, why);
	}
	if (rec && (stored || rc < 0)) {
		/* a one-time prekey goes only once its message had decrypted */
		rc = rc == 0 ? commit(b, from, sess, &env, info.opk_used)
		     : commit(b, from, sess, &env, !undec);
		st_free_secret(pt, ptlen);
		st_envelope_free(&env);
		if (rc < 0 || st_inbox_mark(b->log, relay, 'D') < 0)
			return -1;
		ack(b, relay);
		b->st->duplicates++;
		return 0;
	}
	if (rc < 0) {
		st_envelope_free(&env);
		return undecryptable(c, b, relay, from, rts, envj, hash, why);
	}
	j = new_job(b, relay, from, rts);
	if (st_msg_decode(pt, ptlen, &j->m) < 0) {
		/* authentic but malformed: the key is spent all the same */
		snprintf(why, sizeof(why), "%s", st_errmsg());
		st_free_secret(pt, ptlen);
		b->njobs--;
		rc = commit(b, from, sess, &env, info.opk_used);
		if (rc == 0)
			rc = undecryptable(c, b, relay, from, rts, envj, hash, why);
		st_envelope_free(&env);
		return rc;
	}
	st_free_secret(pt, ptlen);
	if ((dup = st_inbox_find_msg(b->log, from, j->m.id))) {
		free_job(j);
		b->njobs--;
		rc = commit(b, from, sess, &env, info.opk_used);
		st_envelope_free(&env);
		if (rc < 0 || st_inbox_mark(b->log, relay, 'D') < 0)
			return -1;
		ack(b, relay);
		b->st->duplicates++;
		return 0;
	}
	if (store(c, b, j, rec, hash) < 0 ||
	    (crash_point("recv-stored"), 0) ||
	    commit(b, from, sess, &env, info.opk_used) < 0 ||
	    (crash_point("recv-committed"), 0) ||
	    st_inbox_mark(b->log, relay, 'D') < 0) {
		free_job(j);
		b->njobs--;
		st_envelope_free(&env);
		return -1;
	}
	st_envelope_free(&env);
	b->handled++;
	b->st->delivered++;
	return 0;
}

/* ---- the hook ---- */

static void files_env(const struct st_recv_msg *m, struct st_buf *b)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct st_recv_file *f = &m->files[i];
		const char *v = f->path ? f->path : f->item;

		if (!v || !*v)
			continue;
		if (b->len)
			st_buf_appendc(b, '\n');
		st_buf_append(b, v, strlen(v));
	}
}

int st_recv_hook(const char *cmd, const struct st_recv_msg *m)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct st_buf files, to;
	char ts[24];
	int pfd[2], status;
	pid_t pid;

	st_buf_init(&files, 0);
	st_buf_init(&to, 0);
	files_env(m, &files);
	for (size_t i = 0; i < m->m->nto; i++)
		st_buf_appendf(&to, "%s%s", i ? "," : "", m->m->to[i]);
	snprintf(ts, sizeof(ts), "%lld", (long long)m->m->ts);
	fflush(stdout);
	if (pipe(pfd) < 0) {
		st_buf_free(&files);
		st_buf_free(&to);
		return st_error(ST_EX_CANTCREAT, "cannot make a pipe:");
	}
	if ((pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		st_buf_free(&files);
		st_buf_free(&to);
		return st_error(ST_EX_CANTCREAT, "cannot fork:");
	}
	if (pid == 0) {
		dup2(pfd[0], 0);
		close(pfd[0]);
		close(pfd[1]);
		setenv("ST_FROM", m->from, 1);
		setenv("ST_ID", m->m->id, 1);
		setenv("ST_TS", ts, 1);
		setenv("ST_FILES", files.len ? st_buf_cstr(&files) : "", 1);
		setenv("ST_ITEM", m->item ? m->item : "", 1);
		setenv("ST_TO", to.len ? st_buf_cstr(&to) : "", 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[0]);
	st_buf_free(&files);
	st_buf_free(&to);
	/* a hook that does not read its input must not kill us */
	sigaction(SIGPIPE, &ign, &old);
	if (m->m->has_body)
		st_write_all(pfd[1], m->m->body, m->m->bodylen);
	close(pfd[1]);
	sigaction(SIGPIPE, &old, NULL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return st_error(ST_EX_CANTCREAT, "cannot wait for the "
			                "hook:");
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* ---- a round ---- */

static int fetch(struct st_recv *c, int wait, int limit,
                 struct st_json **reply, struct st_json **msgs)
{
	char path[64];
	long status;

	snprintf(path, sizeof(path), "/v1/messages?wait=%d&limit=%d", wait,
	         limit);
	if (st_relay_call(c->r, "GET", path, NULL, 0, &status, reply,
	                  NULL) < 0)
		return -1;
	if (!*reply || st_json_get_arr(*reply, "messages", msgs) < 0) {
		st_json_free(*reply);
		*reply = NULL;
		return st_error(ST_EX_UNAVAILABLE, "relay: bad GET /v1/messages "
		                "reply");
	}
	return 0;
}

static int send_acks(struct st_recv *c, struct batch *b)
{
	for (size_t i = 0; i < b->nacks; i += ACK_MAX) {
		struct st_json *body = st_json_object(), *ids = st_json_array(),
		               *reply = NULL;
		long status;
		int rc;

		st_json_set(body, "ids", ids);
		for (size_t k = i; k < b->nacks && k < i + ACK_MAX; k++)
			st_json_array_append(ids, st_json_str(b->acks[k]));
		rc = st_relay_call(c->r, "POST", "/v1/messages/ack", body, 0,
		                   &status, &reply, NULL);
		st_json_free(body);
		st_json_free(reply);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Lock, open the journal and the vault. */
static int begin(struct st_recv *c, struct batch *b, int lock_ms, int *lock)
{
	if ((*lock = st_home_lock(lock_ms)) < 0)
		return -1;
	if (!c->o.no_vault && !c->vault && !(c->vault = st_vault_open(1)))
		goto fail;
	if (!(b->log = st_inbox_open()))
		goto fail;
	return 0;
fail:
	st_unlock(*lock);
	*lock = -1;
	return -1;
}

static void end(struct batch *b, int lock)
{
	st_inbox_close(b->log);
	b->log = NULL;
	for (size_t i = 0; i < b->nsess; i++)
		st_ratchet_free(b->sess[i].r);
	free(b->sess);
	b->sess = NULL;
	b->nsess = 0;
	if (b->pk_loaded)
		st_prekeys_free(&b->pk);
	b->pk_loaded = 0;
	if (lock >= 0)
		st_unlock(lock);
}

static int handle_page(struct st_recv *c, struct batch *b,
                       const struct st_json *msgs)
{
	for (size_t i = 0; i < st_json_array_size(msgs); i++) {
		const struct st_json *o = st_json_array_get(msgs, i);
		struct st_json *envj;
		const char *relay, *from;
		size_t rlen, flen;
		int64_t ts = 0;

		if (!st_json_is_object(o) ||
		    st_json_get_str(o, "id", &relay, &rlen) < 0 ||
		    st_json_get_str(o, "from", &from, &flen) < 0 ||
		    st_json_get_int(o, "ts", 0, INT64_MAX, &ts) < 0 ||
		    st_json_get_obj(o, "envelope", &envj) < 0 || rlen > 31 ||
		    !st_blob_id_ok(relay) || !st_user_ok(from, flen))
			return st_error(ST_EX_UNAVAILABLE, "relay: malformed "
			                "message in GET /v1/messages reply");
		if ((c->o.from && strcmp(from, c->o.from)) ||
		    is_held(c, relay)) {
			b->pending++;
			continue;
		}
		if (handle(c, b, relay, from, ts, envj) < 0)
			return -1;
	}
	return 0;
}

static void deliver(struct st_recv *c, struct batch *b, int *hooks_ok)
{
	for (size_t i = 0; i < b->njobs; i++) {
		struct job *j = &b->jobs[i];
		struct st_recv_msg m = { j->relay, j->from, j->relay_ts, &j->m,
		                         j->item, j->files, 0 };
		int st;

		m.nfiles = j->rerun ? (size_t)(j->rerun - 1) : j->m.nfiles;
		hooks_ok[i] = 1;
		if (!j->rerun && c->print && c->print(c->ctx, &m) < 0) {
			hooks_ok[i] = -1;
			continue;
		}
		if (!c->o.exec)
			continue;
		if ((st = st_recv_hook(c->o.exec, &m)) != 0) {
			hooks_ok[i] = 0;
			b->st->hook_failed++;
			b->pending++;
			hold(c, j->relay);
			if (st < 0)
				note(c, "cannot run the hook for message %s: %s",
				     j->relay, st_errmsg());
			else
				note(c, "the hook failed (exit %d) for message %s "
				     "from %s; it stays on the relay and the hook "
				     "runs again on a later st-recv --exec", st,
				     j->relay, j->from);
		}
	}
}

int st_recv_poll(struct st_recv *c, int wait, int limit, int lock_ms,
                 size_t *handled, size_t *pending, struct st_recv_stats *st)
{
	struct st_json *reply = NULL, *msgs;
	struct batch b;
	int lock = -1, rc, *ok = NULL;

	*handled = *pending = 0;
	memset(&b, 0, sizeof(b));
	b.st = st;
	if (fetch(c, wait, limit, &reply, &msgs) < 0)
		return -1;
	if (st_json_array_size(msgs) == 0) {
		st_json_free(reply);
		return 0;
	}
	if (begin(c, &b, lock_ms, &lock) < 0) {
		st_json_free(reply);
		return -1;
	}
	rc = handle_page(c, &b, msgs);
	end(&b, lock);
	st_json_free(reply);
	/* the lock is free while we print and hooks run: a hook may st-send */
	crash_point("recv-done");
	if (b.njobs) {
		ok = st_calloc(b.njobs, sizeof(*ok));
		deliver(c, &b, ok);
	}
	crash_point("recv-printed");
	if (c->o.exec && b.njobs) {
		int rc2 = begin(c, &b, lock_ms, &lock);

		for (size_t i = 0; rc2 == 0 && i < b.njobs; i++)
			if (ok[i] >= 0)
				rc2 = st_inbox_mark(b.log, b.jobs[i].relay,
				                    ok[i] ? 'H' : 'X');
		if (lock >= 0)
			end(&b, lock);
		if (rc2 < 0 && rc == 0)
			rc = -1;
	}
	for (size_t i = 0; i < b.njobs; i++) {
		if (ok[i] == 1)
			ack(&b, b.jobs[i].relay);
		if (ok[i] < 0 && rc == 0)
			rc = -1;        /* the printer failed: stdout is gone */
	}
	if (b.nacks) {
		/* keep the first error; an ack lost is a redelivery, no more */
		char saved[1024];
		int code = st_errcode();

		snprintf(saved, sizeof(saved), "%s", st_errmsg());
		if (send_acks(c, &b) < 0 && rc == 0)
			rc = -1;
		else if (rc < 0)
			st_error(code, "%s", saved);
	}
	*handled = b.handled;
	*pending = b.pending;
	for (size_t i = 0; i < b.njobs; i++)
		free_job(&b.jobs[i]);
	free(b.jobs);
	free(b.acks);
	free(ok);
	return rc;
}
