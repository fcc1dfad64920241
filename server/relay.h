/*
 * relay.h - what the parts of st-relay share: the configuration (flags and
 * their SPEC §7 defaults), the rate limiter, the metrics, the job executor
 * (Argon2 workers and the group-commit writer) and the HTTP front.  The API
 * itself is in api.h, storage in store.h.
 */
#ifndef ST_SERVER_RELAY_H
#define ST_SERVER_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "st.h"

/* ---- ratelimit.c: leaky buckets in memory ---- */

enum st_rl_kind {
	ST_RL_ACCOUNT,          /* account creation attempts per IP */
	ST_RL_LOGIN_USER,       /* failed logins per user name */
	ST_RL_LOGIN_IP,         /* failed logins per IP */
	ST_RL_BUNDLE,           /* bundle fetches per (requester, target) */
	ST_RL_MESSAGES,         /* message entries per sender */
	ST_RL_COUNT
};

/* A bucket holds burst units and drains rate units a second. */
struct st_rl_rule {
	double burst, rate;
};

struct st_rl;
/* Limits for each kind; with off set every take succeeds. */
struct st_rl *st_rl_new(const struct st_rl_rule rules[ST_RL_COUNT], int off);
void st_rl_free(struct st_rl *rl);
/*
 * Put cost units into the bucket of (kind, key) when they fit and return
 * 0; otherwise change nothing and return the seconds (at least 1) until
 * they would fit, for Retry-After.
 */
int st_rl_take(struct st_rl *rl, enum st_rl_kind kind, const char *key,
               double cost, int64_t now_ms);
/* Take cost units back out (a login that succeeded after all). */
void st_rl_give(struct st_rl *rl, enum st_rl_kind kind, const char *key,
                double cost, int64_t now_ms);
/* Forget buckets that have drained empty, so memory stays bounded. */
void st_rl_sweep(struct st_rl *rl, int64_t now_ms);
/* Parse "BURST:COUNT/UNIT" (UNIT s, m, h, d or seconds): "20:20/h". */
int st_rl_parse(const char *s, struct st_rl_rule *r);

/* ---- configuration (defaults in api.c, flags in st-relay.c) ---- */

#define ST_MAX_PROXIES 8

struct st_conf {
	const char *listen, *db, *blob_dir, *tls_cert, *tls_key;
	int threads, workers, quiet;
	size_t max_body, max_msgs_body, max_envelope;
	int64_t max_blob, blob_quota;
	int64_t mailbox_max, channel_max, opk_max;
	int64_t ttl_ms, session_ttl_ms;
	unsigned max_conns, max_per_ip, idle_timeout;
	uint32_t argon2_m, argon2_t, argon2_p;
	struct st_rl_rule rate[ST_RL_COUNT];
	int no_rate_limits;
	/* --trust-proxy: peers whose X-Forwarded-For names the client */
	char proxies[ST_MAX_PROXIES][46];  /* canonical (inet_ntop) text */
	int nproxies;
};
/* SPEC §7's defaults. */
void st_conf_defaults(struct st_conf *c);

/* ---- metrics.c: Prometheus counters ---- */

struct st_metrics;
struct st_metrics *st_metrics_new(void);
void st_metrics_free(struct st_metrics *m);
/* One answered request of endpoint ep (st_api_ep_name) in usec. */
void st_metrics_observe(struct st_metrics *m, int ep, int status,
                        int64_t usec);
/* One group commit of n jobs. */
void st_metrics_commit(struct st_metrics *m, size_t n);
/* Append the counters and histograms in the text exposition format. */
void st_metrics_render(struct st_metrics *m, struct st_buf *out);

/* ---- exec.c: Argon2 workers and the group-commit writer ---- */

struct st_api;
struct st_job;
struct st_exec;
/*
 * Start workers threads for jobs' cpu stages and one writer thread that
 * runs every waiting write stage in one transaction.
 */
struct st_exec *st_exec_start(struct st_api *api, int workers);
/* Run a job's stages; job->done (or, without it, finish and free) follows. */
void st_exec_submit(struct st_exec *x, struct st_job *job);
/* Finish every queued job, then stop the threads. */
void st_exec_stop(struct st_exec *x);
/* The same stages in the calling thread, one transaction (tests, upkeep). */
void st_exec_run(struct st_api *api, struct st_job *job);

/* ---- http.c: the libmicrohttpd front ---- */

struct st_http;
/*
 * The listen address and the TLS files, checked before anything is opened
 * or created, so that a mistyped flag leaves no database behind.
 */
int st_http_check(const struct st_conf *c);
struct st_http *st_http_start(const struct st_conf *c, struct st_api *api,
                              struct st_exec *x);
/*
 * Stop accepting, answer every suspended long-poll, wait (bounded) for
 * requests in flight, and stop.
 */
void st_http_stop(struct st_http *h);

#endif
