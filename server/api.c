/*
 * api.c - the router and what every handler shares: matching a path to an
 * endpoint, refusing what can be refused from the headers alone (405, 400
 * for ambiguous framing, 401, 411, 413, 415), bearer tokens, the one error
 * shape {"error","message"}, query arguments, jobs and long-poll keys.
 * The handlers themselves are in api_account.c and api_mail.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"

enum route {
	R_NONE, R_ACCOUNTS, R_ACCOUNT_ME, R_SESSIONS, R_SESSION_CUR, R_USERS,
	R_USER, R_BUNDLE, R_KEYS, R_MESSAGES, R_ACK, R_CHANNEL, R_BLOBS, R_BLOB,
	R_HEALTH, R_METRICS, R_COUNT
};

/* '*' stands for one non-empty path segment, the endpoint's parameter */
static const struct {
	const char *pattern, *allow;
} routes[R_COUNT] = {
	[R_ACCOUNTS] = { "/v1/accounts", "POST" },
	[R_ACCOUNT_ME] = { "/v1/accounts/me", "DELETE" },
	[R_SESSIONS] = { "/v1/sessions", "POST" },
	[R_SESSION_CUR] = { "/v1/sessions/current", "DELETE" },
	[R_USERS] = { "/v1/users", "GET, HEAD" },
	[R_USER] = { "/v1/users/*", "GET, HEAD" },
	[R_BUNDLE] = { "/v1/users/*/bundle", "POST" },
	[R_KEYS] = { "/v1/keys", "GET, HEAD, PUT" },
	[R_MESSAGES] = { "/v1/messages", "GET, HEAD, POST" },
	[R_ACK] = { "/v1/messages/ack", "POST" },
	[R_CHANNEL] = { "/v1/channels/*", "GET, HEAD, POST" },
	[R_BLOBS] = { "/v1/blobs", "POST" },
	[R_BLOB] = { "/v1/blobs/*", "GET, HEAD" },
	[R_HEALTH] = { "/v1/health", "GET, HEAD" },
	[R_METRICS] = { "/metrics", "GET, HEAD" },
};

enum body { B_NONE, B_JSON, B_OPT, B_RAW };

static st_api_fn health, metrics;

static const struct endpoint {
	enum route route;
	const char *method;
	enum st_ep ep;
	int auth;
	enum body body;
	st_api_fn *fn;
	const char *name;
} eps[] = {
	{ R_ACCOUNTS, "POST", ST_EP_ACCOUNT_CREATE, 0, B_JSON,
	  st_api_account_create, "POST /v1/accounts" },
	{ R_ACCOUNT_ME, "DELETE", ST_EP_ACCOUNT_DELETE, 1, B_JSON,
	  st_api_account_delete, "DELETE /v1/accounts/me" },
	{ R_SESSIONS, "POST", ST_EP_LOGIN, 0, B_JSON, st_api_login,
	  "POST /v1/sessions" },
	{ R_SESSION_CUR, "DELETE", ST_EP_LOGOUT, 1, B_NONE, st_api_logout,
	  "DELETE /v1/sessions/current" },
	{ R_USERS, "GET", ST_EP_USERS, 1, B_NONE, st_api_users,
	  "GET /v1/users" },
	{ R_USER, "GET", ST_EP_USER, 1, B_NONE, st_api_user,
	  "GET /v1/users/{name}" },
	{ R_BUNDLE, "POST", ST_EP_BUNDLE, 1, B_OPT, st_api_bundle,
	  "POST /v1/users/{name}/bundle" },
	{ R_KEYS, "GET", ST_EP_KEYS_GET, 1, B_NONE, st_api_keys_get,
	  "GET /v1/keys" },
	{ R_KEYS, "PUT", ST_EP_KEYS_PUT, 1, B_JSON, st_api_keys_put,
	  "PUT /v1/keys" },
	{ R_MESSAGES, "POST", ST_EP_MSG_POST, 1, B_JSON, st_api_msg_post,
	  "POST /v1/messages" },
	{ R_MESSAGES, "GET", ST_EP_MSG_GET, 1, B_NONE, st_api_msg_get,
	  "GET /v1/messages" },
	{ R_ACK, "POST", ST_EP_ACK, 1, B_JSON, st_api_ack,
	  "POST /v1/messages/ack" },
	{ R_CHANNEL, "POST", ST_EP_CHAN_POST, 1, B_JSON, st_api_chan_post,
	  "POST /v1/channels/{name}" },
	{ R_CHANNEL, "GET", ST_EP_CHAN_GET, 1, B_NONE, st_api_chan_get,
	  "GET /v1/channels/{name}" },
	{ R_BLOBS, "POST", ST_EP_BLOB_POST, 1, B_RAW, st_api_blob_post,
	  "POST /v1/blobs" },
	{ R_BLOB, "GET", ST_EP_BLOB_GET, 1, B_NONE, st_api_blob_get,
	  "GET /v1/blobs/{id}" },
	{ R_HEALTH, "GET", ST_EP_HEALTH, 0, B_NONE, health, "GET /v1/health" },
	{ R_METRICS, "GET", ST_EP_METRICS, 0, B_NONE, metrics, "GET /metrics" },
};
#define NEPS (sizeof(eps) / sizeof(eps[0]))
/* seconds a blob file of a shared directory is left alone (st_api_sweep_orphans) */
#define ORPHAN_AGE 3600

const char *st_api_ep_name(int ep)
{
	for (size_t i = 0; i < NEPS; i++)
		if ((int)eps[i].ep == ep)
			return eps[i].name;
	return "-";
}

static const struct endpoint *endpoint_of(int ep)
{
	for (size_t i = 0; i < NEPS; i++)
		if ((int)eps[i].ep == ep)
			return &eps[i];
	return NULL;
}

static int match(const char *pat, const char *path, const char **param,
                 size_t *plen)
{
	while (*pat) {
		if (*pat == '*') {
			size_t n = strcspn(path, "/");

			if (!n)
				return 0;
			*param = path;
			*plen = n;
			path += n;
			pat++;
		} else if (*pat++ != *path++) {
			return 0;
		}
	}
	return *path == '\0';
}

static enum route route(const char *path, const char **param, size_t *plen)
{
	for (int r = R_NONE + 1; r < R_COUNT; r++)
		if (match(routes[r].pattern, path, param, plen))
			return r;
	return R_NONE;
}

/* ---- answers ---- */

void st_api_resp_init(struct st_api_resp *r)
{
	memset(r, 0, sizeof(*r));
	st_buf_init(&r->body, 0);
	r->fd = -1;
}

void st_api_resp_free(struct st_api_resp *r)
{
	st_buf_free(&r->body);
	if (r->fd >= 0)
		close(r->fd);
	st_api_resp_init(r);
}

static void answer(struct st_api_resp *r, int status, const char *code,
                   const char *msg, const char *user)
{
	struct st_json *o = st_json_object();
	char clean[256];
	size_t i;

	/* messages may quote client bytes (a parser's "near ..."): ASCII only */
	for (i = 0; msg[i] && i < sizeof(clean) - 1; i++)
		clean[i] = isprint((unsigned char)msg[i]) ? msg[i] : '?';
	clean[i] = '\0';
	st_json_set_str(o, "error", code);
	st_json_set_str(o, "message", clean);
	if (user && *user)
		st_json_set_str(o, "user", user);
	st_api_json(r, status, o);
}

void st_api_error(struct st_api_resp *r, int status, const char *code,
                  const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	answer(r, status, code, msg, NULL);
}

void st_api_fault(struct st_api_resp *r)
{
	st_warn("%s", st_errmsg());
	if (st_errcode() == ST_EX_CANTCREAT) {
		st_api_error(r, 507, "storage_full", "the relay's storage is full");
		return;
	}
	st_api_error(r, 503, "unavailable", "the relay's storage is busy; "
	             "retry later");
	r->retry_after = 1;
}

void st_api_json(struct st_api_resp *r, int status, struct st_json *j)
{
	char *s = st_json_dump(j);

	st_json_free(j);
	r->kind = ST_API_DONE;
	r->status = status;
	r->body.len = 0;
	st_buf_append(&r->body, s, strlen(s));
	free(s);
}

void st_api_nobody(struct st_api_resp *r, int status)
{
	r->kind = ST_API_DONE;
	r->status = status;
	r->body.len = 0;
}

int st_job_fail(struct st_job *j, int status, const char *err,
                const char *fmt, ...)
{
	va_list ap;

	j->status = status;
	j->err = err;
	va_start(ap, fmt);
	vsnprintf(j->msg, sizeof(j->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int st_job_fault(struct st_job *j)
{
	st_warn("%s", st_errmsg());
	if (st_errcode() == ST_EX_CANTCREAT)
		return st_job_fail(j, 507, "storage_full",
		                   "the relay's storage is full");
	j->retry_after = 1;
	return st_job_fail(j, 503, "unavailable",
	                   "the relay's storage is busy; retry later");
}

void st_api_defer(struct st_api_resp *r, struct st_job *j)
{
	r->kind = ST_API_JOB;
	r->job = j;
}

/* A job that nobody waits for is done: let it tidy up, then free it. */
static void retire(struct st_api *a, struct st_job *j)
{
	if (!j->status && j->finish)
		j->finish(a, j, NULL);
	j->free(j);
}

void st_api_background(struct st_api *a, struct st_job *j)
{
	j->done = NULL;
	if (a->exec) {
		st_exec_submit(a->exec, j);
		return;
	}
	st_exec_run(a, j);
	retire(a, j);
}

void st_api_finish(struct st_api *a, struct st_job *j, struct st_api_resp *r)
{
	st_api_resp_free(r);
	if (j->status) {
		answer(r, j->status, j->err, j->msg, j->user);
		r->retry_after = j->retry_after;
	} else {
		j->finish(a, j, r);
	}
	j->free(j);
}

int st_api_limit(struct st_api *a, struct st_api_resp *r, enum st_rl_kind k,
                 const char *key, double cost)
{
	int wait = st_rl_take(a->rl, k, key, cost, st_now_ms());

	if (!wait)
		return 0;
	st_api_error(r, 429, "rate_limited", "too many requests; retry in %d s",
	             wait);
	r->retry_after = wait;
	return -1;
}

/* ---- arguments and bodies ---- */

const char *st_api_arg(const struct st_api_req *q, const char *name)
{
	for (int i = 0; i < q->nargs; i++)
		if (strcmp(q->args[i].name, name) == 0)
			return q->args[i].value;
	return NULL;
}

int st_api_int_arg(const struct st_api_req *q, struct st_api_resp *r,
                   const char *name, int64_t min, int64_t max, int64_t def,
                   int64_t *out)
{
	const char *s = st_api_arg(q, name);
	int64_t v = 0;
	size_t i;

	if (!s) {
		*out = def;
		return 0;
	}
	for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 18; i++)
		v = v * 10 + (s[i] - '0');
	if (i == 0 || s[i] || v < min || v > max) {
		st_api_error(r, 400, "bad_request", "'%s' must be an integer "
		             "from %lld to %lld", name, (long long)min,
		             (long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

struct st_json *st_api_parse(struct st_api_req *q, struct st_api_resp *r)
{
	struct st_json *j;

	j = st_json_parse((const char *)q->body.data, q->body.len, q->body.len,
	                  "request body");
	if (!j) {
		st_api_error(r, 400, "bad_json", "%s", st_errmsg());
		return NULL;
	}
	if (!st_json_is_object(j)) {
		st_json_free(j);
		st_api_error(r, 400, "bad_json", "the body is not a JSON object");
		return NULL;
	}
	return j;
}

/* ---- long-poll keys ---- */

uint64_t st_api_key_user(int64_t uid)
{
	return (uint64_t)uid << 1;
}

uint64_t st_api_key_channel(const char *name)
{
	uint64_t h = 14695981039346656037ULL;

	while (*name)
		h = (h ^ (unsigned char)*name++) * 1099511628211ULL;
	return h << 1 | 1;
}

uint64_t st_api_gen(struct st_api *a, uint64_t key)
{
	return a->gen ? a->gen(a->hook_ctx, key) : 0;
}

void st_api_wake(struct st_api *a, uint64_t key)
{
	if (a->wake)
		a->wake(a->hook_ctx, key);
}

void st_api_wake_all(struct st_api *a)
{
	if (a->wake_all)
		a->wake_all(a->hook_ctx);
}

/* ---- tokens ---- */

/*
 * Every authenticated request would open a read transaction to look its
 * token up, and after each group commit re-read those pages.  A small
 * direct-mapped cache keeps the tokens seen lately.  Revocation stays
 * immediate: logout, account deletion and the expiry sweep call
 * st_api_tokens_revoke() after their commit and before their answer, which
 * bumps the generation and so invalidates every entry; an entry filled from
 * a lookup that began before the bump carries the old generation.
 */
#define TOKEN_SLOTS 1024

struct token_slot {
	unsigned char hash[32];
	int64_t uid, expires;
	uint64_t gen;                   /* 0: empty */
	char user[ST_USER_MAX + 1];
};

struct st_tokens {
	pthread_mutex_t mu;
	_Atomic uint64_t gen;
	struct token_slot slot[TOKEN_SLOTS];
};

static struct token_slot *token_slot(struct st_tokens *t,
                                     const unsigned char hash[32])
{
	return &t->slot[(hash[0] | (unsigned)hash[1] << 8) % TOKEN_SLOTS];
}

/* 1 and the session when hash is cached, valid and unexpired; else 0. */
static int token_get(struct st_tokens *t, const unsigned char hash[32],
                     int64_t now, int64_t *uid, char user[ST_USER_MAX + 1],
                     int64_t *expires)
{
	struct token_slot *e = token_slot(t, hash);
	int hit;

	pthread_mutex_lock(&t->mu);
	hit = e->gen == atomic_load(&t->gen) && e->expires > now &&
	      !memcmp(e->hash, hash, 32);
	if (hit) {
		*uid = e->uid;
		*expires = e->expires;
		memcpy(user, e->user, ST_USER_MAX + 1);
	}
	pthread_mutex_unlock(&t->mu);
	return hit;
}

static void token_put(struct st_tokens *t, const unsigned char hash[32],
                      uint64_t gen, int64_t uid, const char *user,
                      int64_t expires)
{
	struct token_slot *e = token_slot(t, hash);

	pthread_mutex_lock(&t->mu);
	memcpy(e->hash, hash, 32);
	e->uid = uid;
	e->expires = expires;
	e->gen = gen;
	snprintf(e->user, sizeof(e->user), "%s", user);
	pthread_mutex_unlock(&t->mu);
}

/* A renewal was queued: the cached expiry follows it. */
static void token_renewed(struct st_tokens *t, const unsigned char hash[32],
                          int64_t expires)
{
	struct token_slot *e = token_slot(t, hash);

	pthread_mutex_lock(&t->mu);
	if (!memcmp(e->hash, hash, 32))
		e->expires = expires;
	pthread_mutex_unlock(&t->mu);
}

void st_api_tokens_revoke(struct st_api *a)
{
	if (a->tokens)
		atomic_fetch_add(&a->tokens->gen, 1);
}

struct touch_job {
	struct st_job j;
	unsigned char hash[32];
	int64_t expires;
};

static int touch_write(struct st_api *a, struct st_job *j)
{
	struct touch_job *t = (struct touch_job *)j;

	return st_store_session_touch(a->store, t->hash, t->expires) < 0 ?
	       st_job_fault(j) : 0;
}

static void touch_free(struct st_job *j)
{
	free(j);
}

static int unauthorized(struct st_api_resp *r, const char *why)
{
	st_api_error(r, 401, "unauthorized", "%s", why);
	r->auth_challenge = 1;
	return -1;
}

static int authenticate(struct st_api *a, struct st_api_req *q,
                        struct st_api_resp *r)
{
	unsigned char tok[33];
	const char *s = q->auth;
	int64_t now = st_now_ms(), expires, ttl = a->conf->session_ttl_ms;
	size_t n;
	int rc;

	if (!s || strncasecmp(s, "Bearer ", 7) != 0)
		return unauthorized(r, "a bearer token is required");
	s += 7;
	if (strlen(s) != 43 || st_b64_decode(s, 43, tok, &n, ST_B64_URL_RAW) < 0
	    || n != 32) {
		st_wipe(tok, sizeof(tok));
		return unauthorized(r, "malformed token");
	}
	st_sha256(tok, 32, q->token_hash);
	st_wipe(tok, sizeof(tok));
	if (!token_get(a->tokens, q->token_hash, now, &q->uid, q->user,
	               &expires)) {
		/* read the generation first: a revocation meanwhile wins */
		uint64_t gen = atomic_load(&a->tokens->gen);

		rc = st_store_session_get(a->store, q->token_hash, now,
		                          &q->uid, q->user, &expires);
		if (rc < 0) {
			st_api_fault(r);
			return -1;
		}
		if (rc)
			return unauthorized(r, "the token is unknown or "
			                    "expired");
		token_put(a->tokens, q->token_hash, gen, q->uid, q->user,
		          expires);
	}
	/* sliding expiry without a write per request: renew at most ~hourly */
	if (expires - now < ttl - ttl / 720) {
		struct touch_job *t = st_calloc(1, sizeof(*t));

		t->j.write = touch_write;
		t->j.free = touch_free;
		memcpy(t->hash, q->token_hash, 32);
		t->expires = now + ttl;
		token_renewed(a->tokens, q->token_hash, t->expires);
		st_api_background(a, &t->j);
	}
	return 0;
}

/* ---- the request's life ---- */

void st_api_req_init(struct st_api_req *q)
{
	memset(q, 0, sizeof(*q));
	q->clen = -1;
	q->up.fd = -1;
	st_buf_init(&q->body, 1);
}

void st_api_req_free(struct st_api_req *q)
{
	if (q->raw && q->up.fd >= 0)
		st_atomic_abort(&q->up);
	st_buf_free(&q->body);
	st_wipe(q->token_hash, sizeof(q->token_hash));
	q->raw = 0;
}

static int ctype_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	return ct && strncasecmp(ct, want, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Refuse early, from the headers, whatever can be: nothing is read yet. */
static int check_body(struct st_api *a, struct st_api_req *q,
                      struct st_api_resp *r, const struct endpoint *e)
{
	const struct st_conf *c = a->conf;
	size_t limit = e->ep == ST_EP_MSG_POST ? c->max_msgs_body : c->max_body;

	if (e->body == B_RAW) {
		if (q->chunked || q->clen < 0)
			st_api_error(r, 411, "length_required",
			             "a Content-Length is required");
		else if (q->clen > c->max_blob)
			st_api_error(r, 413, "too_large", "the blob is larger "
			             "than %lld bytes", (long long)c->max_blob);
		else if (!ctype_is(q->ctype, "application/octet-stream"))
			st_api_error(r, 415, "unsupported_media_type",
			             "blobs are application/octet-stream");
		else
			return st_api_blob_begin(a, q, r);
		return 1;
	}
	if (q->chunked) {
		st_api_error(r, 411, "length_required",
		             "a Content-Length is required; no chunked bodies");
		return 1;
	}
	if (q->clen > (int64_t)limit) {
		st_api_error(r, 413, "too_large", "the body is larger than %zu "
		             "bytes", limit);
		return 1;
	}
	if (q->clen > 0 && e->body != B_NONE &&
	    !ctype_is(q->ctype, "application/json")) {
		st_api_error(r, 415, "unsupported_media_type",
		             "the body must be application/json");
		return 1;
	}
	if (q->clen > 0)
		st_buf_reserve(&q->body, (size_t)q->clen);
	return 0;
}

int st_api_begin(struct st_api *a, struct st_api_req *q, struct st_api_resp *r)
{
	const char *m = strcmp(q->method, "HEAD") == 0 ? "GET" : q->method;
	const struct endpoint *e = NULL;
	enum route rt = route(q->path, &q->param, &q->paramlen);

	for (size_t i = 0; rt != R_NONE && i < NEPS; i++)
		if (eps[i].route == rt && strcmp(eps[i].method, m) == 0)
			e = &eps[i];
	q->ep = e ? e->ep : ST_EP_OTHER;
	if (rt == R_NONE) {
		st_api_error(r, 404, "not_found", "no such endpoint");
	} else if (!e) {
		st_api_error(r, 405, "method_not_allowed", "use %s",
		             routes[rt].allow);
		r->allow = routes[rt].allow;
	} else if (q->bad_framing) {
		/* a proxy may frame it otherwise: smuggling; refuse and close */
		st_api_error(r, 400, "bad_framing", "conflicting Content-Length "
		             "or Transfer-Encoding headers");
		r->close = 1;
	} else if (e->auth && authenticate(a, q, r) < 0) {
		;
	} else if (check_body(a, q, r, e) == 0) {
		return 0;
	}
	/* an unread body must not be taken for the next request */
	if (q->clen > 0 || q->chunked)
		r->close = 1;
	return 1;
}

int st_api_body(struct st_api *a, struct st_api_req *q, const void *p,
                size_t n)
{
	if (!q->raw) {
		/* the front enforces Content-Length, checked against the limit */
		if (q->body.len + n > (size_t)(q->clen < 0 ? 0 : q->clen))
			return -1;
		st_buf_append(&q->body, p, n);
		return 0;
	}
	if (q->got + (int64_t)n > q->clen ||
	    st_write_all(q->up.fd, p, n) < 0) {
		st_warn("blob upload: %s", strerror(errno));
		st_atomic_abort(&q->up);
		q->raw = 0;
		return -1;
	}
	q->got += (int64_t)n;
	return 0;
}

void st_api_handle(struct st_api *a, struct st_api_req *q,
                   struct st_api_resp *r)
{
	const struct endpoint *e = endpoint_of(q->ep);

	st_api_resp_free(r);
	if (!e) {
		st_api_error(r, 404, "not_found", "no such endpoint");
		return;
	}
	e->fn(a, q, r);
}

void st_api_call(struct st_api *a, struct st_api_req *q,
                 struct st_api_resp *r, const void *body, size_t n)
{
	struct st_job *j;

	st_api_resp_init(r);
	if (st_api_begin(a, q, r))
		return;
	if (n && st_api_body(a, q, body, n) < 0) {
		st_api_error(r, 400, "dropped", "the connection was dropped");
		return;
	}
	st_api_handle(a, q, r);
	while (r->kind != ST_API_DONE) {
		if (r->kind == ST_API_JOB) {
			j = r->job;
			j->done = NULL;
			st_exec_run(a, j);
			st_api_finish(a, j, r);
		} else {
			q->final = 1;
			st_api_handle(a, q, r);
		}
	}
}

/* ---- health, metrics, upkeep ---- */

static void health(struct st_api *a, struct st_api_req *q,
                   struct st_api_resp *r)
{
	struct st_json *o = st_json_object();

	st_json_set_bool(o, "ok", 1);
	st_json_set_str(o, "version", ST_VERSION);
	st_api_json(r, 200, o);
}

static void metrics(struct st_api *a, struct st_api_req *q,
                    struct st_api_resp *r)
{
	int64_t queued, blobs, db;

	if (st_store_stats(a->store, &queued, &blobs, &db) < 0) {
		st_api_fault(r);
		return;
	}
	st_api_nobody(r, 200);
	r->ctype = "text/plain; version=0.0.4";
	st_metrics_render(a->metrics, &r->body);
	st_buf_appendf(&r->body,
	    "# HELP st_relay_queued_messages Messages waiting in mailboxes.\n"
	    "# TYPE st_relay_queued_messages gauge\n"
	    "st_relay_queued_messages %lld\n"
	    "# HELP st_relay_stored_bytes Bytes stored, by kind.\n"
	    "# TYPE st_relay_stored_bytes gauge\n"
	    "st_relay_stored_bytes{kind=\"blobs\"} %lld\n"
	    "st_relay_stored_bytes{kind=\"database\"} %lld\n",
	    (long long)queued, (long long)blobs, (long long)db);
	if (a->waiting)
		st_buf_appendf(&r->body,
		    "# HELP st_relay_waiting_polls Long polls waiting now.\n"
		    "# TYPE st_relay_waiting_polls gauge\n"
		    "st_relay_waiting_polls %ld\n", a->waiting(a->hook_ctx));
}

struct sweep_job {
	struct st_job j;
	char *dir;
	struct st_buf gone;     /* blob ids, NUL-separated */
};

static void sweep_collect(void *ctx, const char *id)
{
	struct sweep_job *s = ctx;

	st_buf_append(&s->gone, id, strlen(id) + 1);
}

static int sweep_write(struct st_api *a, struct st_job *j)
{
	struct sweep_job *s = (struct sweep_job *)j;
	int64_t now = st_now_ms();

	s->gone.len = 0;
	if (st_store_sweep(a->store, now, now - a->conf->ttl_ms, sweep_collect,
	                   s) < 0)
		return st_job_fault(j);
	return 0;
}

/* After the commit: the rows are gone, so the files may go too. */
static void sweep_finish(struct st_api *a, struct st_job *j,
                         struct st_api_resp *r)
{
	struct sweep_job *s = (struct sweep_job *)j;

	/* expired sessions went too */
	st_api_tokens_revoke(a);
	for (size_t i = 0; i < s->gone.len; i += strlen((char *)s->gone.data + i) + 1) {
		char *p = st_path_join(s->dir, (char *)s->gone.data + i);

		if (unlink(p) < 0 && errno != ENOENT)
			st_warn("cannot remove %s: %s", p, strerror(errno));
		free(p);
	}
}

static void sweep_free(struct st_job *j)
{
	struct sweep_job *s = (struct sweep_job *)j;

	st_buf_free(&s->gone);
	free(s->dir);
	free(s);
}

void st_api_upkeep(struct st_api *a)
{
	struct sweep_job *s = st_calloc(1, sizeof(*s));

	st_rl_sweep(a->rl, st_now_ms());
	s->j.write = sweep_write;
	s->j.finish = sweep_finish;
	s->j.free = sweep_free;
	s->dir = st_strdup(a->conf->blob_dir);
	st_buf_init(&s->gone, 0);
	st_api_background(a, &s->j);
}

int st_api_hex_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int st_api_sweep_orphans(struct st_api *a)
{
	DIR *d;
	struct dirent *de;
	int64_t size;
	int rc;

	if (st_mkdir(a->conf->blob_dir, 0700) < 0 ||
	    !(d = opendir(a->conf->blob_dir)))
		return st_error(ST_EX_CANTCREAT, "cannot open %s:",
		                a->conf->blob_dir);
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		struct stat st;

		/*
		 * Relays sharing a database share the directory: another
		 * one's upload in progress (a temporary, or a file whose row
		 * is not committed yet) is young.  Leave the last hour alone.
		 */
		if (st_store_shared(a->store) &&
		    (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     st.st_mtime > time(NULL) - ORPHAN_AGE))
			continue;
		if (strstr(n, ".tmp-"))
			rc = ST_STORE_NOTFOUND;
		else if (strlen(n) == 32 && st_api_hex_ok(n, 32))
			rc = st_store_blob_get(a->store, n, 0, &size);
		else
			continue;
		if (rc < 0) {
			closedir(d);
			return -1;
		}
		if (rc == ST_STORE_NOTFOUND && unlinkat(dirfd(d), n, 0) < 0)
			st_warn("cannot remove orphan %s: %s", n, strerror(errno));
	}
	closedir(d);
	return 0;
}

/* SPEC §7's defaults; st-relay.c has the flags that change them. */
void st_conf_defaults(struct st_conf *c)
{
	static const struct st_rl_rule rates[ST_RL_COUNT] = {
		[ST_RL_ACCOUNT] = { 20, 20.0 / 3600 },
		[ST_RL_LOGIN_USER] = { 10, 1.0 / 60 },
		[ST_RL_LOGIN_IP] = { 30, 1.0 / 60 },
		[ST_RL_BUNDLE] = { 20, 1.0 / 60 },
		[ST_RL_MESSAGES] = { 1000, 100 },
	};

	memset(c, 0, sizeof(*c));
	c->listen = "127.0.0.1:8443";
	c->db = "relay.db";
	c->threads = 2;
	c->workers = 2;
	c->max_body = 64 << 10;
	c->max_msgs_body = 1 << 20;
	c->max_envelope = 64 << 10;
	c->max_blob = (int64_t)1 << 30;
	c->blob_quota = (int64_t)10 << 30;
	c->mailbox_max = 10000;
	c->channel_max = 10000;
	c->opk_max = 200;
	c->ttl_ms = 30LL * 86400 * 1000;
	c->session_ttl_ms = 30LL * 86400 * 1000;
	c->max_conns = 1024;
	c->max_per_ip = 64;
	c->idle_timeout = 30;
	c->argon2_m = 19456;
	c->argon2_t = 2;
	c->argon2_p = 1;
	memcpy(c->rate, rates, sizeof(rates));
}

int st_api_init(struct st_api *a, const struct st_conf *c,
                struct st_store *s, struct st_rl *rl, struct st_metrics *m)
{
	memset(a, 0, sizeof(*a));
	a->conf = c;
	a->store = s;
	a->rl = rl;
	a->metrics = m;
	a->tokens = st_calloc(1, sizeof(*a->tokens));
	pthread_mutex_init(&a->tokens->mu, NULL);
	atomic_store(&a->tokens->gen, 1);
	return st_random(a->dummy_salt, sizeof(a->dummy_salt));
}

void st_api_fini(struct st_api *a)
{
	if (!a->tokens)
		return;
	pthread_mutex_destroy(&a->tokens->mu);
	st_wipe(a->tokens, sizeof(*a->tokens));
	free(a->tokens);
	a->tokens = NULL;
}
