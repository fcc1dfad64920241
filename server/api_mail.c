/*
 * api_mail.c - mailboxes, channels and blobs.
 *
 * Posting messages is all or nothing and idempotent on (sender, client_id);
 * the write joins the writer's next group commit and is answered only once
 * it is on disk, which also wakes the recipients' long polls.  An envelope
 * is stored as sent when it is compact, and encoded compactly otherwise;
 * fetches build their JSON by splicing the stored envelopes (compact JSON
 * this relay has checked) instead of parsing each one again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"

/* value strings this long are skimmed (see post_parse) */
#define SKIM_MIN 256
#define MAX_ENTRIES 100
#define MAX_ACKS 1000

/* ---- POST /v1/messages ---- */

/* One allocation sized for the request's entries (the arrays follow it). */
struct post_job {
	struct st_job j;
	int64_t uid;
	char user[ST_USER_MAX + 1];
	size_t n;
	struct st_store_msg *m;
	char **env;
	uint64_t *keys;
	char (*to)[ST_USER_MAX + 1];
	int64_t now;
};

static struct post_job *post_new(size_t n)
{
	struct post_job *p;
	char *at;

	p = st_calloc(1, sizeof(*p) + n * (sizeof(*p->m) + sizeof(*p->env) +
	                                   sizeof(*p->keys) + sizeof(*p->to)));
	at = (char *)(p + 1);
	p->m = (struct st_store_msg *)at;
	at += n * sizeof(*p->m);
	p->env = (char **)at;
	at += n * sizeof(*p->env);
	p->keys = (uint64_t *)at;
	at += n * sizeof(*p->keys);
	p->to = (char (*)[ST_USER_MAX + 1])at;
	return p;
}

static void post_free(struct st_job *j)
{
	struct post_job *p = (struct post_job *)j;

	for (size_t i = 0; i < p->n; i++)
		free(p->env[i]);
	free(p);
}

static int post_write(struct st_api *a, struct st_job *j)
{
	struct post_job *p = (struct post_job *)j;
	size_t bad = 0, nk = 0, k;
	int rc;

	rc = st_store_msgs_post(a->store, p->uid, p->user, p->m, p->n, p->now,
	                        a->conf->mailbox_max, &bad);
	if (rc < 0)
		return st_job_fault(j);
	if (rc > 0)
		snprintf(j->user, sizeof(j->user), "%s", p->to[bad]);
	if (rc == ST_STORE_NOTFOUND)
		return st_job_fail(j, 404, "unknown_user", "no such user: %s",
		                   p->to[bad]);
	if (rc == ST_STORE_IDENTITY)
		return st_job_fail(j, 409, "identity_changed", "%s's identity "
		                   "key is not the one to_ik names", p->to[bad]);
	if (rc == ST_STORE_FULL)
		return st_job_fail(j, 507, "mailbox_full", "%s's mailbox is "
		                   "full", p->to[bad]);
	for (size_t i = 0; i < p->n; i++) {
		uint64_t key = st_api_key_user(p->m[i].rcpt);

		for (k = 0; p->m[i].rcpt && k < nk && p->keys[k] != key; k++)
			;
		if (p->m[i].rcpt && k == nk)
			p->keys[nk++] = key;
	}
	j->wake = p->keys;
	j->nwake = nk;
	return 0;
}

static void post_finish(struct st_api *a, struct st_job *j,
                        struct st_api_resp *r)
{
	struct post_job *p = (struct post_job *)j;
	int fresh = 0;

	st_api_nobody(r, 201);
	st_buf_appendf(&r->body, "{\"ids\":[");
	for (size_t i = 0; i < p->n; i++) {
		st_buf_appendf(&r->body, "%s\"%lld\"", i ? "," : "",
		               (long long)p->m[i].id);
		fresh |= p->m[i].rcpt != 0;
	}
	st_buf_appendf(&r->body, "]}");
	/* all repeats: nothing new was created */
	if (!fresh)
		r->status = 200;
}

/*
 * Where each entry starts in the body, so that its envelope can be stored
 * as sent: Jansson has just checked the text, and encoding its tree again
 * cost about 4 us of a post's 60.  NULL when they cannot be found (a
 * member's name spelled with an escape); then every envelope is encoded.
 */
static const char **raw_entries(const struct st_api_req *q, size_t n)
{
	const char *b = (const char *)q->body.data, *e = b + q->body.len, *v;
	const char **items = st_calloc(n, sizeof(*items));

	if (st_json_raw_get(b, e, "messages", &v) == 1 &&
	    st_json_raw_items(v, e, items, n) == 0)
		return items;
	free(items);
	return NULL;
}

/*
 * The envelope of the entry at item, as sent when it is compact (no
 * whitespace between its tokens) and as Jansson encodes it otherwise, so
 * that the relay stores and serves compact JSON either way.
 */
static char *envelope_text(const struct st_api_req *q, const char *item,
                           const struct st_json *env, int skimmed)
{
	const char *e = (const char *)q->body.data + q->body.len, *v, *end;
	int loose = 0;

	if (item && st_json_raw_get(item, e, "envelope", &v) == 1 &&
	    (end = st_json_raw_end(v, e, &loose)) && !loose && *v == '{')
		return st_strndup(v, (size_t)(end - v));
	/* a skimmed tree lacks the long strings: the caller parses again */
	return skimmed ? NULL : st_json_dump(env);
}

static int entry(struct st_api *a, const struct st_api_req *q,
                 const char *item, struct st_json *e, size_t i,
                 struct post_job *p, struct st_api_resp *r, int skimmed)
{
	const char *to, *cid;
	size_t tolen, cidlen;
	struct st_json *env;

	if (!st_json_is_object(e) || st_json_get_str(e, "to", &to, &tolen) < 0 ||
	    st_json_get_str(e, "client_id", &cid, &cidlen) < 0 ||
	    st_json_get_obj(e, "envelope", &env) < 0 ||
	    !st_json_get(e, "to_ik")) {
		st_api_error(r, 400, "bad_request", "messages[%zu]: %s", i,
		             st_json_is_object(e) ? st_errmsg() :
		             "not an object");
		return -1;
	}
	if (!st_user_ok(to, tolen)) {
		st_api_error(r, 400, "bad_user", "messages[%zu].to is not a "
		             "user name", i);
		return -1;
	}
	if (cidlen != 32 || !st_api_hex_ok(cid, 32)) {
		st_api_error(r, 400, "bad_request", "messages[%zu].client_id is "
		             "not 32 lowercase hex digits", i);
		return -1;
	}
	if (st_json_get_b64(e, "to_ik", p->m[i].to_ik, 16) < 0) {
		st_api_error(r, 422, "bad_encoding", "messages[%zu]: %s", i,
		             st_errmsg());
		return -1;
	}
	st_hex_decode(cid, p->m[i].client_id, 16);
	memcpy(p->to[i], to, tolen + 1);
	p->m[i].to = p->to[i];
	if (!(p->env[i] = envelope_text(q, item, env, skimmed)))
		return -1;
	p->m[i].envelope = p->env[i];
	p->m[i].envlen = strlen(p->env[i]);
	if (p->m[i].envlen > a->conf->max_envelope) {
		st_api_error(r, 413, "too_large", "messages[%zu].envelope is "
		             "larger than %zu bytes", i, a->conf->max_envelope);
		return -1;
	}
	return 0;
}

/*
 * The job for the body, or NULL with the error in r.  Skimmed, Jansson
 * reads the body with the envelopes' long strings emptied, which saves
 * about a fifth of a post's CPU (its lexer takes a byte at a time); the
 * envelopes are then taken from the body as sent.  That needs every one
 * of them compact, so NULL without an answer when one is not, as on any
 * error: the caller then goes the plain way, which answers the error.
 */
static struct post_job *post_parse(struct st_api *a, struct st_api_req *q,
                                   struct st_api_resp *r, int skimmed)
{
	struct st_json *b, *arr;
	struct post_job *p = NULL;
	const char **items;
	size_t n, i;

	b = skimmed ? st_json_parse_skim((const char *)q->body.data,
	                                 q->body.len, q->body.len,
	                                 "request body", SKIM_MIN) :
	    st_api_parse(q, r);
	if (!b || (skimmed && !st_json_is_object(b)))
		goto done;
	if (st_json_get_arr(b, "messages", &arr) < 0 ||
	    (n = st_json_array_size(arr)) < 1 || n > MAX_ENTRIES) {
		st_api_error(r, 400, "bad_request", "'messages' must be an "
		             "array of 1 to %d entries", MAX_ENTRIES);
		goto done;
	}
	items = raw_entries(q, n);
	if (skimmed && !items)
		goto done;
	p = post_new(n);
	p->j.write = post_write;
	p->j.finish = post_finish;
	p->j.free = post_free;
	for (i = 0; i < n; i++) {
		p->n = i + 1;
		if (entry(a, q, items ? items[i] : NULL,
		          st_json_array_get(arr, i), i, p, r, skimmed) < 0)
			break;
	}
	free(items);
	if (i < n) {
		post_free(&p->j);
		p = NULL;
	}
done:
	st_json_free(b);
	return p;
}

void st_api_msg_post(struct st_api *a, struct st_api_req *q,
                     struct st_api_resp *r)
{
	struct st_api_resp quiet;
	struct post_job *p;
	size_t n;

	st_api_resp_init(&quiet);
	p = post_parse(a, q, &quiet, 1);
	st_api_resp_free(&quiet);
	if (!p && !(p = post_parse(a, q, r, 0)))
		return;
	n = p->n;
	if (st_api_limit(a, r, ST_RL_MESSAGES, q->user, (double)n) < 0) {
		post_free(&p->j);
		return;
	}
	p->uid = q->uid;
	memcpy(p->user, q->user, sizeof(p->user));
	p->now = st_now_ms();
	st_api_defer(r, &p->j);
}

/* ---- GET /v1/messages and GET /v1/channels/NAME ---- */

/* 1 when the caller should wait for key instead of answering empty. */
static int should_wait(struct st_api_req *q, struct st_api_resp *r,
                       int64_t wait, uint64_t key, uint64_t gen)
{
	int64_t now = st_now_ms();

	if (!wait || q->final)
		return 0;
	if (!q->wait_until)
		q->wait_until = now + wait * 1000;
	if (now >= q->wait_until)
		return 0;
	st_api_nobody(r, 0);
	r->kind = ST_API_WAIT;
	r->wait_key = key;
	r->wait_gen = gen;
	r->wait_until = q->wait_until;
	return 1;
}

struct fetch {
	struct st_buf *out;
	int n, limit;
};

static int msg_row(void *ctx, int64_t id, const char *from, int64_t ts,
                   const char *env, size_t len)
{
	struct fetch *f = ctx;

	if (++f->n > f->limit)
		return -1;
	/* from is a user name and env our own compact JSON: nothing to escape */
	st_buf_appendf(f->out, "%s{\"id\":\"%lld\",\"from\":\"%s\",\"ts\":%lld,"
	               "\"envelope\":", f->n > 1 ? "," : "", (long long)id,
	               from, (long long)ts);
	st_buf_append(f->out, env, len);
	st_buf_appendc(f->out, '}');
	return 0;
}

void st_api_msg_get(struct st_api *a, struct st_api_req *q,
                    struct st_api_resp *r)
{
	uint64_t key = st_api_key_user(q->uid), gen;
	int64_t wait, limit;
	struct fetch f;
	int n;

	if (st_api_int_arg(q, r, "wait", 0, 60, 0, &wait) < 0 ||
	    st_api_int_arg(q, r, "limit", 1, 500, 100, &limit) < 0)
		return;
	/* taken before reading: a commit in between changes it, so no wake is lost */
	gen = st_api_gen(a, key);
	st_api_nobody(r, 200);
	f.out = &r->body;
	f.n = 0;
	f.limit = (int)limit;
	st_buf_appendf(&r->body, "{\"messages\":[");
	if ((n = st_store_msgs_fetch(a->store, q->uid, (int)limit + 1, msg_row,
	                             &f)) < 0) {
		st_api_fault(r);
		return;
	}
	if (n == 0 && should_wait(q, r, wait, key, gen))
		return;
	st_buf_appendf(&r->body, "],\"more\":%s}", n > limit ? "true" : "false");
}

static int post_row(void *ctx, int64_t id, const char *post, size_t len)
{
	struct fetch *f = ctx;

	st_buf_appendf(f->out, "%s{\"id\":\"%lld\",\"post\":", f->n++ ? "," : "",
	               (long long)id);
	st_buf_append(f->out, post, len);
	st_buf_appendc(f->out, '}');
	return 0;
}

static int param_channel(struct st_api_req *q, struct st_api_resp *r,
                         char out[ST_USER_MAX + 1])
{
	if (!st_user_ok(q->param, q->paramlen)) {
		st_api_error(r, 400, "bad_channel", "channel names match "
		             "^[a-z0-9][a-z0-9._-]{0,31}$");
		return -1;
	}
	memcpy(out, q->param, q->paramlen);
	out[q->paramlen] = '\0';
	return 0;
}

void st_api_chan_get(struct st_api *a, struct st_api_req *q,
                     struct st_api_resp *r)
{
	char name[ST_USER_MAX + 1];
	int64_t after, limit, wait;
	uint64_t key, gen;
	struct fetch f = { &r->body, 0, 0 };
	int n;

	if (param_channel(q, r, name) < 0 ||
	    st_api_int_arg(q, r, "after", 0, INT64_MAX, 0, &after) < 0 ||
	    st_api_int_arg(q, r, "limit", 1, 500, 100, &limit) < 0 ||
	    st_api_int_arg(q, r, "wait", 0, 60, 0, &wait) < 0)
		return;
	key = st_api_key_channel(name);
	gen = st_api_gen(a, key);
	st_api_nobody(r, 200);
	st_buf_appendf(&r->body, "{\"posts\":[");
	if ((n = st_store_posts_fetch(a->store, name, after, (int)limit,
	                              post_row, &f)) < 0) {
		st_api_fault(r);
		return;
	}
	if (n == 0 && should_wait(q, r, wait, key, gen))
		return;
	st_buf_appendf(&r->body, "]}");
}

/* ---- POST /v1/messages/ack ---- */

struct ack_job {
	struct st_job j;
	int64_t uid;
	size_t n;
	int64_t ids[];
};

static int ack_write(struct st_api *a, struct st_job *j)
{
	struct ack_job *k = (struct ack_job *)j;

	return st_store_msgs_ack(a->store, k->uid, k->ids, k->n) < 0 ?
	       st_job_fault(j) : 0;
}

static void no_content(struct st_api *a, struct st_job *j,
                       struct st_api_resp *r)
{
	st_api_nobody(r, 204);
}

static void job_free(struct st_job *j)
{
	free(j);
}

/* A relay message id, or 0 for anything else (ignored like a foreign id). */
static int64_t relay_id(const char *s)
{
	int64_t v = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 18; i++)
		v = v * 10 + (s[i] - '0');
	return s[i] || !i ? 0 : v;
}

void st_api_ack(struct st_api *a, struct st_api_req *q, struct st_api_resp *r)
{
	struct st_json *b, *arr;
	struct ack_job *k;
	size_t n;

	if (!(b = st_api_parse(q, r)))
		return;
	if (st_json_get_arr(b, "ids", &arr) < 0 ||
	    (n = st_json_array_size(arr)) > MAX_ACKS) {
		st_api_error(r, 400, "bad_request", "'ids' must be an array of "
		             "at most %d ids", MAX_ACKS);
		st_json_free(b);
		return;
	}
	k = st_calloc(1, sizeof(*k) + n * sizeof(int64_t));
	for (size_t i = 0; i < n; i++) {
		const char *s;

		if (st_json_as_str(st_json_array_get(arr, i), &s, NULL) < 0) {
			st_api_error(r, 400, "bad_request", "ids[%zu] is not a "
			             "string", i);
			st_json_free(b);
			free(k);
			return;
		}
		k->ids[k->n] = relay_id(s);
		k->n += k->ids[k->n] != 0;
	}
	st_json_free(b);
	k->uid = q->uid;
	k->j.write = ack_write;
	k->j.finish = no_content;
	k->j.free = job_free;
	st_api_defer(r, &k->j);
}

/* ---- POST /v1/channels/NAME ---- */

struct chan_job {
	struct st_job j;
	char name[ST_USER_MAX + 1];
	char *post;
	int64_t id;
	uint64_t key;
};

static int chan_write(struct st_api *a, struct st_job *j)
{
	struct chan_job *c = (struct chan_job *)j;

	if (st_store_post_add(a->store, c->name, c->post, strlen(c->post),
	                      a->conf->channel_max, &c->id) < 0)
		return st_job_fault(j);
	c->key = st_api_key_channel(c->name);
	j->wake = &c->key;
	j->nwake = 1;
	return 0;
}

static void chan_finish(struct st_api *a, struct st_job *j,
                        struct st_api_resp *r)
{
	struct chan_job *c = (struct chan_job *)j;

	st_api_nobody(r, 201);
	st_buf_appendf(&r->body, "{\"id\":\"%lld\"}", (long long)c->id);
}

static void chan_free(struct st_job *j)
{
	free(((struct chan_job *)j)->post);
	free(j);
}

void st_api_chan_post(struct st_api *a, struct st_api_req *q,
                      struct st_api_resp *r)
{
	char name[ST_USER_MAX + 1];
	struct st_json *b, *post;
	const char *ch, *from;
	struct chan_job *c;

	if (param_channel(q, r, name) < 0 || !(b = st_api_parse(q, r)))
		return;
	if (st_json_get_obj(b, "post", &post) < 0 ||
	    st_json_get_str(post, "channel", &ch, NULL) < 0 ||
	    st_json_get_str(post, "from", &from, NULL) < 0) {
		st_api_error(r, 400, "bad_request", "%s", st_errmsg());
	} else if (strcmp(ch, name) != 0) {
		st_api_error(r, 400, "wrong_channel", "the post names another "
		             "channel");
	} else if (strcmp(from, q->user) != 0) {
		st_api_error(r, 403, "forbidden", "a post's 'from' must be "
		             "your own user name");
	} else {
		c = st_calloc(1, sizeof(*c));
		memcpy(c->name, name, sizeof(name));
		c->post = st_json_dump(post);
		c->j.write = chan_write;
		c->j.finish = chan_finish;
		c->j.free = chan_free;
		st_api_defer(r, &c->j);
	}
	st_json_free(b);
}

/* ---- blobs ---- */

int st_api_blob_begin(struct st_api *a, struct st_api_req *q,
                      struct st_api_resp *r)
{
	unsigned char rnd[16];
	int64_t used;
	char *path;

	if (st_store_blob_usage(a->store, q->uid, &used) < 0) {
		st_api_fault(r);
		return 1;
	}
	if (used + q->clen > a->conf->blob_quota) {
		st_api_error(r, 507, "quota_exceeded", "the blob would pass your "
		             "quota of %lld bytes", (long long)a->conf->blob_quota);
		return 1;
	}
	if (st_random(rnd, sizeof(rnd)) < 0) {
		st_api_error(r, 500, "internal", "%s", st_errmsg());
		return 1;
	}
	st_hex_encode(rnd, sizeof(rnd), q->blob_id);
	/* the file name is our own random hex, never a client string */
	path = st_path_join(a->conf->blob_dir, q->blob_id);
	if (st_atomic_open(&q->up, path, 0600) < 0) {
		free(path);
		st_api_fault(r);
		return 1;
	}
	free(path);
	q->raw = 1;
	q->got = 0;
	return 0;
}

struct blob_job {
	struct st_job j;
	struct st_atomic up;
	char id[33];
	char *path;
	int64_t uid, size;
	int renamed, kept;
};

static int blob_cpu(struct st_api *a, struct st_job *j)
{
	struct blob_job *b = (struct blob_job *)j;
	int rc = st_atomic_commit(&b->up);

	b->up.fd = -1;
	/* committed or not, the temporary is gone; the name may exist */
	b->renamed = 1;
	return rc < 0 ? st_job_fault(j) : 0;
}

static int blob_write(struct st_api *a, struct st_job *j)
{
	struct blob_job *b = (struct blob_job *)j;
	int rc = st_store_blob_add(a->store, b->id, b->uid, b->size, st_now_ms(),
	                           a->conf->blob_quota);

	if (rc == ST_STORE_FULL)
		return st_job_fail(j, 507, "quota_exceeded", "the blob would "
		                   "pass your quota of %lld bytes",
		                   (long long)a->conf->blob_quota);
	return rc ? st_job_fault(j) : 0;
}

static void blob_finish(struct st_api *a, struct st_job *j,
                        struct st_api_resp *r)
{
	struct blob_job *b = (struct blob_job *)j;

	b->kept = 1;
	st_api_nobody(r, 201);
	st_buf_appendf(&r->body, "{\"id\":\"%s\",\"size\":%lld}", b->id,
	               (long long)b->size);
}

/* No row, no file: a failed upload leaves nothing behind. */
static void blob_free(struct st_job *j)
{
	struct blob_job *b = (struct blob_job *)j;

	if (b->up.fd >= 0)
		st_atomic_abort(&b->up);
	if (b->renamed && !b->kept && unlink(b->path) < 0 && errno != ENOENT)
		st_warn("cannot remove %s: %s", b->path, strerror(errno));
	free(b->path);
	free(b);
}

void st_api_blob_post(struct st_api *a, struct st_api_req *q,
                      struct st_api_resp *r)
{
	struct blob_job *b;

	if (!q->raw || q->got != q->clen) {
		st_api_error(r, 400, "bad_request", "the upload is incomplete");
		return;
	}
	b = st_calloc(1, sizeof(*b));
	b->up = q->up;
	q->raw = 0;
	q->up.fd = -1;
	memcpy(b->id, q->blob_id, sizeof(b->id));
	b->path = st_path_join(a->conf->blob_dir, b->id);
	b->uid = q->uid;
	b->size = q->got;
	b->j.cpu = blob_cpu;
	b->j.write = blob_write;
	b->j.finish = blob_finish;
	b->j.free = blob_free;
	st_api_defer(r, &b->j);
}

void st_api_blob_get(struct st_api *a, struct st_api_req *q,
                     struct st_api_resp *r)
{
	char id[33], *path;
	struct stat sb;
	int64_t size;
	int rc, fd;

	if (q->paramlen != 32 || !st_api_hex_ok(q->param, 32)) {
		st_api_error(r, 404, "not_found", "no such blob");
		return;
	}
	memcpy(id, q->param, 32);
	id[32] = '\0';
	rc = st_store_blob_get(a->store, id, st_now_ms() - a->conf->ttl_ms,
	                       &size);
	if (rc) {
		if (rc < 0)
			st_api_fault(r);
		else
			st_api_error(r, 404, "not_found", "no such blob");
		return;
	}
	path = st_path_join(a->conf->blob_dir, id);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size != size) {
		if (fd >= 0)
			close(fd);
		st_api_error(r, 404, "not_found", "no such blob");
		return;
	}
	st_api_nobody(r, 200);
	r->ctype = "application/octet-stream";
	r->fd = fd;
	r->fsize = size;
}
