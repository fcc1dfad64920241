/*
 * http.c - the libmicrohttpd front: a pool of epoll threads turning each
 * request into calls of api.h and each answer into a response.
 *
 * Connections are suspended, never blocked on: while a job runs on the
 * executor (Argon2, a group commit) and while a long poll waits.  A job's
 * completion or a commit for the awaited key resumes the connection, and
 * libmicrohttpd calls the handler again.  Long polls wait in a table keyed
 * by mailbox or channel, with a generation counter per bucket so a commit
 * that lands between the handler's read and its suspension is not missed,
 * and in a heap by deadline that a timer thread watches (suspended
 * connections never time out on their own).
 *
 * libmicrohttpd's connection timeout counts only inactivity, so a client
 * trickling a header byte now and then would hold its connection forever
 * (slowloris).  Every connection is therefore also listed here with the
 * time it became ready for a request (opened, or its last answer sent);
 * the timer thread shuts down any whose request headers are not whole
 * within the idle timeout of that moment.  libmicrohttpd then sees the
 * end of the stream and closes it on its own thread.
 *
 * libmicrohttpd 0.9.75 picks one of two Content-Length headers and lets
 * one ride along a Transfer-Encoding, so the framing headers are counted
 * here and the api refuses those requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"

#define WBUCKETS 1024

enum state { S_BODY, S_ANSWERED, S_JOB, S_JOB_DONE, S_WAIT, S_WOKEN };

struct hconn {
	struct st_http *h;
	struct MHD_Connection *mc;
	struct st_api_req q;
	struct st_api_resp r;
	_Atomic int state;
	int counted;                    /* in st_http's suspended count */
	struct st_job *job;
	int status;
	int64_t t0;                     /* us, monotonic */
	int ncl, nte;
	const char *cl;
	const char *xff;                /* the last X-Forwarded-For */
	char ip[INET6_ADDRSTRLEN];
	const char *method;             /* a known method's name, for the log */
	/* long-poll waiting */
	uint64_t wkey;
	int64_t wdeadline;
	struct hconn *wprev, *wnext;
	size_t hidx;
};

/* A connection as the header deadline sees it (socket context). */
struct sconn {
	int fd;
	_Atomic int in_request;         /* headers whole, request not done */
	_Atomic int64_t ready;          /* ms, when it began waiting for one */
	struct sconn *prev, *next;
};

struct st_http {
	struct MHD_Daemon *d;
	const struct st_conf *c;
	struct st_api *api;
	struct st_exec *x;
	char *tls_key, *tls_cert;
	size_t tls_keylen;
	/* long polls */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	_Atomic uint64_t gen[WBUCKETS];
	struct hconn *bucket[WBUCKETS];
	struct hconn **heap;
	size_t nheap, capheap;
	int draining, stop;
	pthread_t timer;
	/* every open connection, for the header deadline (under wmu) */
	struct sconn *conns;
	int64_t next_sweep;
	atomic_int inflight, suspended;
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the deadline heap (under wmu) ---- */

static void heap_set(struct st_http *h, size_t i, struct hconn *c)
{
	h->heap[i] = c;
	c->hidx = i;
}

static void heap_fix(struct st_http *h, size_t i)
{
	struct hconn *c = h->heap[i];
	size_t k;

	while (i && h->heap[(i - 1) / 2]->wdeadline > c->wdeadline) {
		heap_set(h, i, h->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		k = 2 * i + 1;
		if (k >= h->nheap)
			break;
		if (k + 1 < h->nheap &&
		    h->heap[k + 1]->wdeadline < h->heap[k]->wdeadline)
			k++;
		if (h->heap[k]->wdeadline >= c->wdeadline)
			break;
		heap_set(h, i, h->heap[k]);
		i = k;
	}
	heap_set(h, i, c);
}

static void heap_add(struct st_http *h, struct hconn *c)
{
	if (h->nheap == h->capheap) {
		h->capheap = h->capheap ? h->capheap * 2 : 64;
		h->heap = st_realloc(h->heap, h->capheap * sizeof(*h->heap));
	}
	heap_set(h, h->nheap++, c);
	heap_fix(h, c->hidx);
}

static void heap_del(struct st_http *h, struct hconn *c)
{
	size_t i = c->hidx;

	if (i != --h->nheap) {
		heap_set(h, i, h->heap[h->nheap]);
		heap_fix(h, i);
	}
}

/* ---- waiting and waking ---- */

/* Take c out of the tables and let libmicrohttpd run it again (wmu held). */
static void unwait(struct st_http *h, struct hconn *c)
{
	size_t b = c->wkey % WBUCKETS;

	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		h->bucket[b] = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	heap_del(h, c);
	atomic_store(&c->state, S_WOKEN);
	MHD_resume_connection(c->mc);
}

static uint64_t gen_of(void *ctx, uint64_t key)
{
	struct st_http *h = ctx;

	return atomic_load(&h->gen[key % WBUCKETS]);
}

static void wake(void *ctx, uint64_t key)
{
	struct st_http *h = ctx;
	size_t b = key % WBUCKETS;
	struct hconn *c, *next;

	pthread_mutex_lock(&h->wmu);
	atomic_fetch_add(&h->gen[b], 1);
	for (c = h->bucket[b]; c; c = next) {
		next = c->wnext;
		if (c->wkey == key)
			unwait(h, c);
	}
	pthread_mutex_unlock(&h->wmu);
}

/* Wake every long poll: each looks again (announcements were lost). */
static void wake_every(void *ctx)
{
	struct st_http *h = ctx;
	struct hconn *c, *next;

	pthread_mutex_lock(&h->wmu);
	for (size_t b = 0; b < WBUCKETS; b++) {
		atomic_fetch_add(&h->gen[b], 1);
		for (c = h->bucket[b]; c; c = next) {
			next = c->wnext;
			unwait(h, c);
		}
	}
	pthread_mutex_unlock(&h->wmu);
}

/*
 * Suspend c until key is woken or the deadline passes; 0 when the answer
 * must be computed again at once instead (a commit came in between, or the
 * relay is shutting down).
 */
static int wait_for(struct st_http *h, struct hconn *c)
{
	size_t b = c->r.wait_key % WBUCKETS;

	pthread_mutex_lock(&h->wmu);
	if (h->draining || atomic_load(&h->gen[b]) != c->r.wait_gen) {
		pthread_mutex_unlock(&h->wmu);
		return 0;
	}
	c->wkey = c->r.wait_key;
	c->wdeadline = c->r.wait_until;
	c->wprev = NULL;
	c->wnext = h->bucket[b];
	if (c->wnext)
		c->wnext->wprev = c;
	h->bucket[b] = c;
	atomic_store(&c->state, S_WAIT);
	atomic_fetch_add(&h->suspended, 1);
	c->counted = 1;
	MHD_suspend_connection(c->mc);
	heap_add(h, c);
	if (c->hidx == 0)
		pthread_cond_signal(&h->wcv);
	pthread_mutex_unlock(&h->wmu);
	return 1;
}

/* Cut off connections whose request headers are overdue (under wmu). */
static void sweep_headers(struct st_http *h, int64_t now)
{
	int64_t limit = (int64_t)h->c->idle_timeout * 1000;

	for (struct sconn *s = h->conns; s; s = s->next) {
		if (atomic_load(&s->in_request) ||
		    now - atomic_load(&s->ready) <= limit)
			continue;
		/* still open: CLOSED takes it off this list before the close */
		shutdown(s->fd, SHUT_RDWR);
		atomic_store(&s->ready, INT64_MAX / 2);
	}
	h->next_sweep = now + 1000;
}

static long waiting(void *ctx)
{
	struct st_http *h = ctx;
	long n;

	pthread_mutex_lock(&h->wmu);
	n = (long)h->nheap;
	pthread_mutex_unlock(&h->wmu);
	return n;
}

static void *timer(void *arg)
{
	struct st_http *h = arg;
	struct timespec ts;
	int64_t due, now;

	pthread_mutex_lock(&h->wmu);
	while (!h->stop) {
		now = st_now_ms();
		if (now >= h->next_sweep)
			sweep_headers(h, now);
		due = h->next_sweep;
		if (h->nheap && h->heap[0]->wdeadline <= now) {
			unwait(h, h->heap[0]);
			continue;
		}
		if (h->nheap && h->heap[0]->wdeadline < due)
			due = h->heap[0]->wdeadline;
		ts.tv_sec = due / 1000;
		ts.tv_nsec = (due % 1000) * 1000000;
		pthread_cond_timedwait(&h->wcv, &h->wmu, &ts);
	}
	pthread_mutex_unlock(&h->wmu);
	return NULL;
}

/* ---- answers ---- */

static void job_done(void *ctx, struct st_job *j)
{
	struct hconn *c = ctx;

	atomic_store(&c->state, S_JOB_DONE);
	MHD_resume_connection(c->mc);
}

static enum MHD_Result reply(struct hconn *c)
{
	struct st_api_resp *r = &c->r;
	struct MHD_Response *resp;
	char num[24];
	enum MHD_Result rc;

	if (r->fd >= 0) {
		resp = MHD_create_response_from_fd64((uint64_t)r->fsize, r->fd);
		r->fd = -1;     /* libmicrohttpd closes it */
	} else if (r->body.len) {
		resp = MHD_create_response_from_buffer(r->body.len, r->body.data,
		                                       MHD_RESPMEM_MUST_FREE);
		st_buf_init(&r->body, 0);
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"",
		                                       MHD_RESPMEM_PERSISTENT);
	}
	if (!resp)
		return MHD_NO;
	if (r->status != 204)
		MHD_add_response_header(resp, "Content-Type", r->ctype ?
		                        r->ctype : "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (r->retry_after > 0) {
		snprintf(num, sizeof(num), "%d", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", num);
	}
	if (r->allow)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->auth_challenge)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
	if (r->close)
		MHD_add_response_header(resp, "Connection", "close");
	c->status = r->status;
	atomic_store(&c->state, S_ANSWERED);
	rc = MHD_queue_response(c->mc, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result dispatch(struct hconn *c)
{
	struct st_http *h = c->h;
	struct st_job *j;

	for (;;) {
		switch (c->r.kind) {
		case ST_API_DONE:
			return reply(c);
		case ST_API_JOB:
			j = c->r.job;
			c->r.job = NULL;
			c->job = j;
			j->done = job_done;
			j->done_ctx = c;
			/* suspended before submitting: its resume comes after */
			atomic_store(&c->state, S_JOB);
			atomic_fetch_add(&h->suspended, 1);
			c->counted = 1;
			MHD_suspend_connection(c->mc);
			st_exec_submit(h->x, j);
			return MHD_YES;
		case ST_API_WAIT:
			if (wait_for(h, c))
				return MHD_YES;
			pthread_mutex_lock(&h->wmu);
			c->q.final = h->draining;
			pthread_mutex_unlock(&h->wmu);
			st_api_handle(h->api, &c->q, &c->r);
			break;
		}
	}
}

/* ---- requests ---- */

static enum MHD_Result header(void *cls, enum MHD_ValueKind kind,
                              const char *key, const char *value)
{
	struct hconn *c = cls;

	if (strcasecmp(key, "Content-Length") == 0) {
		c->ncl++;
		c->cl = value;
	} else if (strcasecmp(key, "Transfer-Encoding") == 0) {
		c->nte++;
	} else if (strcasecmp(key, "Authorization") == 0 && !c->q.auth) {
		c->q.auth = value;
	} else if (strcasecmp(key, "Content-Type") == 0 && !c->q.ctype) {
		c->q.ctype = value;
	} else if (strcasecmp(key, "X-Forwarded-For") == 0) {
		c->xff = value;
	}
	return MHD_YES;
}

/*
 * Behind a trusted proxy (--trust-proxy), the client is the last address
 * of X-Forwarded-For: the one the proxy itself appended (nginx's
 * $proxy_add_x_forwarded_for).  Earlier ones are the client's own claims
 * and are never believed.  No header, or a last entry that is not an
 * address, leaves the proxy's address: rate limits then fall on the proxy,
 * as they would without the flag.
 */
static void forwarded_for(const struct st_conf *cf, struct hconn *c)
{
	const char *v = c->xff, *last;
	unsigned char a[sizeof(struct in6_addr)];
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n;
	int i, af;

	if (!v || !cf->nproxies)
		return;
	for (i = 0; i < cf->nproxies; i++)
		if (strcmp(c->ip, cf->proxies[i]) == 0)
			break;
	if (i == cf->nproxies)
		return;
	last = strrchr(v, ',');
	last = last ? last + 1 : v;
	last += strspn(last, " \t");
	n = strcspn(last, " \t");
	if (n == 0 || n >= sizeof(buf) || last[n + strspn(last + n, " \t")])
		return;
	memcpy(buf, last, n);
	buf[n] = '\0';
	af = strchr(buf, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(af, buf, a) == 1)
		inet_ntop(af, a, c->ip, sizeof(c->ip));
}

static enum MHD_Result argument(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value)
{
	struct st_api_req *q = cls;

	if (q->nargs < ST_API_MAX_ARGS) {
		q->args[q->nargs].name = key;
		q->args[q->nargs].value = value ? value : "";
		q->nargs++;
	}
	return MHD_YES;
}

static const char *known_method(const char *m)
{
	static const char *const ms[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
	};

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		if (strcmp(m, ms[i]) == 0)
			return ms[i];
	return "OTHER";
}

static struct hconn *conn_new(struct st_http *h, struct MHD_Connection *mc,
                              const char *url, const char *method)
{
	struct hconn *c = st_calloc(1, sizeof(*c));
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	char *end;

	c->h = h;
	c->mc = mc;
	c->t0 = mono_us();
	c->method = known_method(method);
	st_api_req_init(&c->q);
	st_api_resp_init(&c->r);
	c->q.method = method;
	c->q.path = url;
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci ? ci->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		          c->ip, sizeof(c->ip));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		          c->ip, sizeof(c->ip));
	c->q.ip = c->ip;
	MHD_get_connection_values(mc, MHD_HEADER_KIND, header, c);
	forwarded_for(h->c, c);
	MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, argument, &c->q);
	c->q.chunked = c->nte > 0;
	c->q.bad_framing = c->ncl > 1 || (c->ncl && c->nte);
	if (c->ncl == 1) {
		errno = 0;
		c->q.clen = strtoll(c->cl, &end, 10);
		if (errno || end == c->cl || *end || c->q.clen < 0 ||
		    strspn(c->cl, "0123456789") != strlen(c->cl))
			c->q.bad_framing = 1;
	}
	atomic_fetch_add(&h->inflight, 1);
	return c;
}

/* Back from suspension (or gone while it was suspended). */
static void uncount(struct st_http *h, struct hconn *c)
{
	if (c->counted)
		atomic_fetch_sub(&h->suspended, 1);
	c->counted = 0;
}

static struct sconn *sconn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* Connections opened and closed, listed for the header deadline. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **ctx,
                          enum MHD_ConnectionNotificationCode code)
{
	struct st_http *h = cls;
	struct sconn *s = *ctx;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci)
			return;
		s = st_calloc(1, sizeof(*s));
		s->fd = ci->connect_fd;
		atomic_store(&s->ready, st_now_ms());
		pthread_mutex_lock(&h->wmu);
		s->next = h->conns;
		if (h->conns)
			h->conns->prev = s;
		h->conns = s;
		pthread_mutex_unlock(&h->wmu);
		*ctx = s;
		return;
	}
	if (!s)
		return;
	pthread_mutex_lock(&h->wmu);
	if (s->prev)
		s->prev->next = s->next;
	else
		h->conns = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&h->wmu);
	free(s);
	*ctx = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **ctx)
{
	struct st_http *h = cls;
	struct hconn *c = *ctx;

	if (!c) {
		struct sconn *sc = sconn_of(mc);

		if (sc)
			atomic_store(&sc->in_request, 1);
		*ctx = c = conn_new(h, mc, url, method);
		if (st_api_begin(h->api, &c->q, &c->r))
			return reply(c);
		return MHD_YES;
	}
	if (*size) {
		if (atomic_load(&c->state) != S_BODY) {
			*size = 0;
			return MHD_YES;
		}
		if (st_api_body(h->api, &c->q, data, *size) < 0)
			return MHD_NO;
		*size = 0;
		return MHD_YES;
	}
	switch (atomic_load(&c->state)) {
	case S_BODY:
		st_api_handle(h->api, &c->q, &c->r);
		return dispatch(c);
	case S_JOB_DONE:
		uncount(h, c);
		st_api_finish(h->api, c->job, &c->r);
		c->job = NULL;
		return dispatch(c);
	case S_WOKEN:
		uncount(h, c);
		pthread_mutex_lock(&h->wmu);
		c->q.final = h->draining;
		pthread_mutex_unlock(&h->wmu);
		st_api_handle(h->api, &c->q, &c->r);
		return dispatch(c);
	default:
		return MHD_YES;
	}
}

/* One line per request, written at once; never a token, password or body. */
static void log_request(struct st_http *h, struct hconn *c, int64_t us)
{
	char line[160];
	const char *name = st_api_ep_name(c->q.ep);
	int n;

	if (c->q.ep == ST_EP_OTHER)
		n = snprintf(line, sizeof(line), "%s: %s - %d %.1fms\n",
		             st_progname(), c->method, c->status, us / 1000.0);
	else
		n = snprintf(line, sizeof(line), "%s: %s %d %.1fms\n",
		             st_progname(), name, c->status, us / 1000.0);
	if (n > 0 && write(2, line, (size_t)n < sizeof(line) ?
	                   (size_t)n : sizeof(line) - 1) < 0)
		return;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
	struct st_http *h = cls;
	struct hconn *c = *ctx;
	struct sconn *sc = sconn_of(mc);
	int64_t us;

	if (sc) {
		atomic_store(&sc->ready, st_now_ms());
		atomic_store(&sc->in_request, 0);
	}
	if (!c)
		return;
	us = mono_us() - c->t0;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		c->status = 0;
	uncount(h, c);
	st_metrics_observe(h->api->metrics, c->q.ep, c->status, us);
	if (!h->c->quiet)
		log_request(h, c, us);
	if (c->job)
		c->job->free(c->job);
	st_api_req_free(&c->q);
	st_api_resp_free(&c->r);
	free(c);
	*ctx = NULL;
	atomic_fetch_sub(&h->inflight, 1);
}

/* Paths and arguments stay as sent: every segment is checked strictly. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	st_warn("libmicrohttpd: %s", msg);
}

/* "ADDR:PORT", "[V6]:PORT" or ":PORT" into a socket address. */
static int parse_listen(const char *s, struct sockaddr_storage *ss,
                        uint16_t *port)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	char *end;
	long p;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (!colon || (n = (size_t)(colon - s)) >= sizeof(host))
		goto bad;
	p = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p < 0 || p > 65535)
		goto bad;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(*port);
		if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1)
			return 0;
		goto bad;
	}
	v4->sin_family = AF_INET;
	v4->sin_port = htons(*port);
	if (!n || inet_pton(AF_INET, host, &v4->sin_addr) == 1)
		return 0;
bad:
	return st_error(ST_EX_USAGE, "bad listen address %s (want ADDR:PORT)", s);
}

static int load_tls(struct st_http *h, const struct st_conf *c)
{
	unsigned char *p;
	size_t n;

	if (!c->tls_cert && !c->tls_key)
		return 0;
	if (!c->tls_cert || !c->tls_key)
		return st_error(ST_EX_USAGE, "--tls-cert and --tls-key go "
		                "together");
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return st_error(ST_EX_CONFIG, "libmicrohttpd was built without "
		                "TLS");
	if (st_read_file(c->tls_cert, 1 << 20, &p, &n) < 0)
		return -1;
	h->tls_cert = (char *)p;
	if (st_read_file(c->tls_key, 1 << 20, &p, &n) < 0)
		return -1;
	h->tls_key = (char *)p;
	h->tls_keylen = n;
	return 1;
}

int st_http_check(const struct st_conf *c)
{
	struct st_http h;
	struct sockaddr_storage ss;
	uint16_t port;
	int rc;

	if (parse_listen(c->listen, &ss, &port) < 0)
		return -1;
	memset(&h, 0, sizeof(h));
	rc = load_tls(&h, c);
	free(h.tls_cert);
	st_free_secret(h.tls_key, h.tls_keylen);
	return rc < 0 ? -1 : 0;
}

static void http_free(struct st_http *h)
{
	free(h->tls_cert);
	st_free_secret(h->tls_key, h->tls_keylen);
	free(h->heap);
	pthread_cond_destroy(&h->wcv);
	pthread_mutex_destroy(&h->wmu);
	free(h);
}

struct st_http *st_http_start(const struct st_conf *c, struct st_api *api,
                              struct st_exec *x)
{
	struct st_http *h = st_calloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	struct MHD_OptionItem o[18];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	                 MHD_USE_TURBO;
	uint16_t port = 0;
	int tls = 0, n = 0;

	h->c = c;
	h->api = api;
	h->x = x;
	pthread_mutex_init(&h->wmu, NULL);
	pthread_cond_init(&h->wcv, NULL);
	if (parse_listen(c->listen, &ss, &port) < 0 || (tls = load_tls(h, c)) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls)
		flags |= MHD_USE_TLS;
#define OPT(k, v, p) (o[n++] = (struct MHD_OptionItem){ k, (intptr_t)(v), p })
	OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL);
	OPT(MHD_OPTION_SOCK_ADDR, 0, &ss);
	if (c->threads > 1)
		OPT(MHD_OPTION_THREAD_POOL_SIZE, c->threads, NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, c->max_conns, NULL);
	OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->max_per_ip, NULL);
	OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32768, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, c->idle_timeout, NULL);
	OPT(MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, h);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, on_connection, h);
	OPT(MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL);
	if (tls) {
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	api->gen = gen_of;
	api->wake = wake;
	api->wake_all = wake_every;
	api->waiting = waiting;
	api->hook_ctx = h;
	if (pthread_create(&h->timer, NULL, timer, h) != 0) {
		st_error(ST_EX_UNAVAILABLE, "cannot start the timer thread");
		goto fail;
	}
	h->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, h,
	                        MHD_OPTION_ARRAY, o, MHD_OPTION_END);
	if (!h->d) {
		st_error(ST_EX_UNAVAILABLE, "cannot listen on %s", c->listen);
		pthread_mutex_lock(&h->wmu);
		h->stop = 1;
		pthread_cond_signal(&h->wcv);
		pthread_mutex_unlock(&h->wmu);
		pthread_join(h->timer, NULL);
		goto fail;
	}
	return h;
fail:
	api->gen = NULL;
	api->wake = NULL;
	api->wake_all = NULL;
	api->waiting = NULL;
	http_free(h);
	return NULL;
}

void st_http_stop(struct st_http *h)
{
	MHD_socket ls;
	int64_t until;

	ls = MHD_quiesce_daemon(h->d);
	pthread_mutex_lock(&h->wmu);
	h->draining = 1;
	while (h->nheap)
		unwait(h, h->heap[0]);
	pthread_mutex_unlock(&h->wmu);
	/* suspended connections must all be back before the daemon stops */
	while (atomic_load(&h->suspended) > 0)
		usleep(5000);
	until = mono_us() + 5000000;
	while (atomic_load(&h->inflight) > 0 && mono_us() < until)
		usleep(5000);
	MHD_stop_daemon(h->d);
	if (ls != MHD_INVALID_SOCKET)
		close(ls);
	pthread_mutex_lock(&h->wmu);
	h->stop = 1;
	pthread_cond_signal(&h->wcv);
	pthread_mutex_unlock(&h->wmu);
	pthread_join(h->timer, NULL);
	h->api->gen = NULL;
	h->api->wake = NULL;
	h->api->wake_all = NULL;
	h->api->waiting = NULL;
	http_free(h);
}
