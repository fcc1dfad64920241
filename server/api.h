/*
 * api.h - the relay's HTTP API (SPEC §7) as functions from a request to an
 * answer, with no sockets in sight, so tests and fuzzers drive it directly.
 *
 * A request goes through st_api_begin() once its headers are known (route,
 * framing, limits, token: everything that can be refused before a body is
 * read), st_api_body() for each piece of the body, then st_api_handle().
 * An answer is one of:
 *   ST_API_DONE  status and body are ready;
 *   ST_API_JOB   work that must not run on an HTTP thread (Argon2, or a
 *                write that joins the next group commit): run the job with
 *                st_exec_submit() or st_exec_run(), then st_api_finish();
 *   ST_API_WAIT  a long poll found nothing: call st_api_handle() again once
 *                wait_key is woken (st_api_wake) or at wait_until.
 */
#ifndef ST_SERVER_API_H
#define ST_SERVER_API_H

#include <stdint.h>

#include "relay.h"
#include "store.h"

enum st_ep {
	ST_EP_OTHER, ST_EP_ACCOUNT_CREATE, ST_EP_ACCOUNT_DELETE, ST_EP_LOGIN,
	ST_EP_LOGOUT, ST_EP_USERS, ST_EP_USER, ST_EP_BUNDLE, ST_EP_KEYS_GET,
	ST_EP_KEYS_PUT, ST_EP_MSG_POST, ST_EP_MSG_GET, ST_EP_ACK,
	ST_EP_CHAN_POST, ST_EP_CHAN_GET, ST_EP_BLOB_POST, ST_EP_BLOB_GET,
	ST_EP_HEALTH, ST_EP_METRICS, ST_EP_COUNT
};
/* "POST /v1/users/{name}/bundle": the route pattern, for logs and metrics. */
const char *st_api_ep_name(int ep);

#define ST_API_MAX_ARGS 8

struct st_api_req {
	/* set by the caller before st_api_begin() */
	const char *method, *path;      /* path without the query, not unescaped */
	struct {
		const char *name, *value;
	} args[ST_API_MAX_ARGS];        /* query arguments, first ones kept */
	int nargs;
	const char *auth;               /* Authorization header or NULL */
	const char *ctype;              /* Content-Type or NULL */
	const char *ip;                 /* client address, for rate limits */
	int64_t clen;                   /* Content-Length, -1 when absent */
	int chunked;                    /* a Transfer-Encoding was given */
	int bad_framing;                /* two Content-Lengths, or CL and TE */
	int final;                      /* answer now, never wait (shutdown) */
	/* kept by the api between calls */
	int ep;
	const char *param;              /* the {name} or {id} path segment */
	size_t paramlen;
	int64_t uid;                    /* the token's account */
	char user[ST_USER_MAX + 1];
	unsigned char token_hash[32];
	struct st_buf body;
	int raw;                        /* body streams to a blob file */
	struct st_atomic up;
	char blob_id[33];
	int64_t got;
	int64_t wait_until;
};

enum st_api_kind { ST_API_DONE, ST_API_JOB, ST_API_WAIT };

struct st_api_resp {
	enum st_api_kind kind;
	int status;
	struct st_buf body;
	const char *ctype;              /* default application/json */
	const char *allow;              /* for 405 */
	int retry_after;                /* seconds, for 429 and 503 */
	int close;                      /* close the connection after */
	int auth_challenge;             /* add WWW-Authenticate for 401 */
	int fd;                         /* a file body of fsize bytes, or -1 */
	int64_t fsize;
	struct st_job *job;             /* ST_API_JOB */
	uint64_t wait_key, wait_gen;    /* ST_API_WAIT */
	int64_t wait_until;
};

/*
 * A job: cpu runs on a worker thread, write inside the writer's
 * transaction (its changes undone alone when it fails), finish on the
 * HTTP thread to build the answer (resp is NULL for background jobs).  A
 * stage fails by returning st_job_fail() or st_job_fault(); the stages
 * after it are skipped and finish answers the error.
 */
struct st_job {
	int (*cpu)(struct st_api *a, struct st_job *j);
	int (*write)(struct st_api *a, struct st_job *j);
	void (*finish)(struct st_api *a, struct st_job *j,
	               struct st_api_resp *r);
	void (*free)(struct st_job *j);
	int status;                     /* nonzero once a stage failed */
	const char *err;
	char msg[160];
	char user[ST_USER_MAX + 1];     /* named in the error when set */
	int retry_after;
	const uint64_t *wake;           /* keys to wake after the commit */
	size_t nwake;
	void (*done)(void *ctx, struct st_job *j);
	void *done_ctx;
	struct st_job *next;
};
int st_job_fail(struct st_job *j, int status, const char *err,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Fail with the store's recorded fault: 507 when the disk is full, else 503. */
int st_job_fault(struct st_job *j);

struct st_api {
	const struct st_conf *conf;
	struct st_store *store;
	struct st_rl *rl;
	struct st_metrics *metrics;
	struct st_exec *exec;           /* NULL: background jobs run inline */
	/* long-poll hooks of the HTTP front; NULL in tests */
	uint64_t (*gen)(void *ctx, uint64_t key);
	void (*wake)(void *ctx, uint64_t key);
	void (*wake_all)(void *ctx);
	long (*waiting)(void *ctx);     /* long polls waiting now */
	void *hook_ctx;
	unsigned char dummy_salt[16];
	struct st_tokens *tokens;       /* recently seen tokens (api.c) */
};

/* The api over an open store; nothing here owns the arguments. */
int st_api_init(struct st_api *a, const struct st_conf *c,
                struct st_store *s, struct st_rl *rl, struct st_metrics *m);
/* Free what st_api_init allocated. */
void st_api_fini(struct st_api *a);
/* Forget every cached token: call after a commit that deleted sessions
 * and before its answer, so the revocation holds from the answer on. */
void st_api_tokens_revoke(struct st_api *a);
/* Delete orphaned blob files (temporaries, files without a row). */
int st_api_sweep_orphans(struct st_api *a);
/* Expire old rows and files (a background job). */
void st_api_upkeep(struct st_api *a);

void st_api_req_init(struct st_api_req *q);
/* Free the body and abandon an unfinished upload. */
void st_api_req_free(struct st_api_req *q);
void st_api_resp_init(struct st_api_resp *r);
void st_api_resp_free(struct st_api_resp *r);

/* 1 when r is already the answer, 0 to go on reading the body. */
int st_api_begin(struct st_api *a, struct st_api_req *q, struct st_api_resp *r);
/* A piece of the body; -1 means drop the connection (the upload failed). */
int st_api_body(struct st_api *a, struct st_api_req *q, const void *p,
                size_t n);
void st_api_handle(struct st_api *a, struct st_api_req *q,
                   struct st_api_resp *r);
/* Build the answer of a job that ran (and free the job). */
void st_api_finish(struct st_api *a, struct st_job *j, struct st_api_resp *r);
/* Wake the long polls waiting on key (called after each commit). */
void st_api_wake(struct st_api *a, uint64_t key);
/* Wake every long poll (another relay's announcements may be lost). */
void st_api_wake_all(struct st_api *a);

/* Everything at once in this thread, long polls answered at once (tests). */
void st_api_call(struct st_api *a, struct st_api_req *q,
                 struct st_api_resp *r, const void *body, size_t n);

/* ---- shared by the handlers (api.c) ---- */

void st_api_error(struct st_api_resp *r, int status, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The answer for a store fault: 507 or 503 with Retry-After. */
void st_api_fault(struct st_api_resp *r);
/* Answer with status and j as the body; steals j. */
void st_api_json(struct st_api_resp *r, int status, struct st_json *j);
void st_api_nobody(struct st_api_resp *r, int status);
/* The body as a JSON object, or NULL with r answered 400. */
struct st_json *st_api_parse(struct st_api_req *q, struct st_api_resp *r);
/* A query argument or NULL. */
const char *st_api_arg(const struct st_api_req *q, const char *name);
/* An integer argument in [min, max], def when absent; -1 with r answered 400. */
int st_api_int_arg(const struct st_api_req *q, struct st_api_resp *r,
                   const char *name, int64_t min, int64_t max, int64_t def,
                   int64_t *out);
/* Hand a job to the caller (kind ST_API_JOB). */
void st_api_defer(struct st_api_resp *r, struct st_job *j);
/* Run a job in the background: no answer waits for it. */
void st_api_background(struct st_api *a, struct st_job *j);
/* A rate-limited answer (429) when cost does not fit; 0 when it did. */
int st_api_limit(struct st_api *a, struct st_api_resp *r, enum st_rl_kind k,
                 const char *key, double cost);
/* 1 when the n bytes at s are lowercase hex digits. */
int st_api_hex_ok(const char *s, size_t n);
/* Long-poll keys: a user's mailbox and a channel. */
uint64_t st_api_key_user(int64_t uid);
uint64_t st_api_key_channel(const char *name);
/* The current generation of key (0 without an HTTP front). */
uint64_t st_api_gen(struct st_api *a, uint64_t key);

/* ---- the handlers (api_account.c, api_mail.c) ---- */

typedef void st_api_fn(struct st_api *a, struct st_api_req *q,
                       struct st_api_resp *r);
st_api_fn st_api_account_create, st_api_account_delete, st_api_login,
	st_api_logout, st_api_users, st_api_user, st_api_bundle,
	st_api_keys_get, st_api_keys_put;
st_api_fn st_api_msg_post, st_api_msg_get, st_api_ack, st_api_chan_post,
	st_api_chan_get, st_api_blob_post, st_api_blob_get;
/* Open the upload's temporary file (from st_api_begin); 1 when answered. */
int st_api_blob_begin(struct st_api *a, struct st_api_req *q,
                      struct st_api_resp *r);

#endif
