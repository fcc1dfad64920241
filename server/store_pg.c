/*
 * store_pg.c - store.h on PostgreSQL (libpq), so several relays can share
 * one database.  Same logical schema as store_sqlite.c, made and migrated
 * at start under an advisory lock (relays may start at once); every
 * statement is prepared once per connection, parameters and results travel
 * in binary, and no SQL is ever built from a request.
 *
 * Connections: one for the writer (its transaction, savepoints, commit),
 * a pool for reads that grows to the number of threads reading at once,
 * and one for the listener thread.  A broken connection is dropped and
 * opened again on next use, with a backoff (100 ms doubling to 5 s) during
 * which calls fail at once with ST_EX_TEMPFAIL: the relay answers 503 with
 * Retry-After and never hangs on a database that is restarting.  Every
 * wait for an answer is bounded too (st_store_timeout()), for a server
 * that is stopped or cut off and so answers nothing at all.
 *
 * Across relays:
 * - One-time prekeys are handed out with DELETE ... RETURNING over a
 *   FOR UPDATE SKIP LOCKED pick; used ids are remembered (never reused).
 * - A repeated (sender, client_id) is caught by the sent table's key even
 *   when two relays insert it at once (ON CONFLICT waits for the other).
 * - Channel posts take their id under one transaction-level advisory lock,
 *   so ids commit in order and a reader's after= cursor never skips a post
 *   that commits late.
 * - Mailbox counters (the mailbox cap) are added up in memory during the
 *   transaction and written just before COMMIT, rows locked in uid order,
 *   so two relays' batches never deadlock on them.  The cap is exact per
 *   relay and may be passed by what other relays commit at that moment.
 * - Blob quotas are checked under a per-owner advisory lock: exact.
 * - Commits announce their long-poll keys with NOTIFY; the listener of
 *   every relay wakes its own waiters (a hint: waiters always re-read).
 *   Ended sessions announce a revocation so other relays drop cached
 *   tokens.  After a reconnect the listener wakes every waiter and drops
 *   every cached token, as announcements may have been lost meanwhile.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store_impl.h"

#define SCHEMA_VERSION 1
#define SWEEP_BATCH 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAXP 16
/* advisory lock keys: "st-schem", "st-posts"; blob quotas add the owner */
#define LOCK_SCHEMA 0x73742d736368656dLL
#define LOCK_POSTS 0x73742d706f737473LL
#define LOCK_QUOTA 0x7100000000000000LL
#define LOCK_SHARD 0x7200000000000000LL
#define NSHARDS 64
#define REPEAT 1000             /* beyond enum st_store_rc */
/* past the server's statement_timeout and this margin, it is not answering */
#define ANSWER_MARGIN_MS INT64_C(5000)
#define CHANNEL "st_wake"

static const char *const migrations[SCHEMA_VERSION] = {
	/* 1: the SQLite schema's logical twin */
	"CREATE TABLE users ("
	" id bigserial PRIMARY KEY, name text COLLATE \"C\" NOT NULL UNIQUE,"
	" created bigint NOT NULL,"
	" pw_hash bytea NOT NULL, pw_salt bytea NOT NULL,"
	" pw_m bigint NOT NULL, pw_t bigint NOT NULL, pw_p bigint NOT NULL,"
	" ik_ed bytea NOT NULL, ik_x bytea NOT NULL, ik_bind bytea NOT NULL,"
	" ik_hash bytea NOT NULL, spk_id bigint NOT NULL);"
	/* one counter row per (user, relay shard): see claim_shard() */
	"CREATE TABLE mailbox ("
	" uid bigint NOT NULL, shard integer NOT NULL, queued bigint NOT NULL,"
	" PRIMARY KEY (uid, shard));"
	"CREATE TABLE spks ("
	" user_id bigint NOT NULL, id bigint NOT NULL, pub bytea NOT NULL,"
	" sig bytea NOT NULL, created bigint NOT NULL,"
	" PRIMARY KEY (user_id, id));"
	"CREATE TABLE opks ("
	" user_id bigint NOT NULL, id bigint NOT NULL, pub bytea NOT NULL,"
	" PRIMARY KEY (user_id, id));"
	/* handed-out ids: never accepted again */
	"CREATE TABLE opks_used ("
	" user_id bigint NOT NULL, id bigint NOT NULL,"
	" PRIMARY KEY (user_id, id));"
	"CREATE TABLE sessions ("
	" hash bytea PRIMARY KEY, user_id bigint NOT NULL,"
	" expires bigint NOT NULL);"
	"CREATE INDEX sessions_user ON sessions (user_id);"
	"CREATE INDEX sessions_expires ON sessions (expires);"
	/* a sequence: an acked id is never handed out again */
	"CREATE TABLE messages ("
	" id bigserial PRIMARY KEY, rcpt bigint NOT NULL,"
	" sender text NOT NULL, ts bigint NOT NULL, envelope bytea NOT NULL);"
	"CREATE INDEX messages_rcpt ON messages (rcpt, id);"
	"CREATE INDEX messages_ts ON messages (ts);"
	"CREATE TABLE sent ("
	" sender bigint NOT NULL, client_id bytea NOT NULL,"
	" msg_id bigint NOT NULL, ts bigint NOT NULL,"
	" PRIMARY KEY (sender, client_id));"
	"CREATE INDEX sent_ts ON sent (ts);"
	"CREATE TABLE posts ("
	" id bigserial PRIMARY KEY, channel text NOT NULL, post bytea NOT NULL);"
	"CREATE INDEX posts_channel ON posts (channel, id);"
	"CREATE TABLE blobs ("
	" id text PRIMARY KEY, owner bigint NOT NULL, size bigint NOT NULL,"
	" created bigint NOT NULL);"
	"CREATE INDEX blobs_owner ON blobs (owner);"
	"CREATE INDEX blobs_created ON blobs (created);",
};

enum q {
	Q_USER_BY_NAME, Q_USER_BY_ID, Q_USER_INSERT, Q_USER_DELETE, Q_USERS,
	Q_MAILBOX_DELETE, Q_MAILBOX_ADD, Q_SHARD,
	Q_SPK_GET, Q_SPK_INSERT, Q_SPK_SET, Q_SPKS_DELETE,
	Q_OPK_INSERT, Q_OPK_COUNT, Q_OPK_TAKE, Q_OPKS_DELETE, Q_OPKS_USED_DELETE,
	Q_SESS_INSERT, Q_SESS_GET, Q_SESS_TOUCH, Q_SESS_DELETE,
	Q_SESS_DELETE_USER, Q_SESS_SWEEP,
	Q_RCPT, Q_SENT_GET, Q_MSG_INSERT,
	Q_MSGS_FETCH, Q_MSG_ACK, Q_MSGS_DELETE_USER, Q_SENT_DELETE_USER,
	Q_MSGS_SWEEP, Q_SENT_SWEEP,
	Q_POST_LOCK, Q_POST_INSERT, Q_POST_TRIM, Q_POSTS_FETCH,
	Q_QUOTA_LOCK, Q_BLOB_INSERT, Q_BLOB_USAGE, Q_BLOB_GET, Q_BLOB_SWEEP,
	Q_STAT_MSGS, Q_STAT_BLOBS, Q_STAT_DB,
	Q_NOTIFY, Q_REVOKE,
	Q_COUNT
};

#define USER_COLS "id, name, created, ik_ed, ik_x, ik_bind, pw_hash, " \
	"pw_salt, pw_m, pw_t, pw_p, spk_id FROM users"

/* Every parameter is cast: its binary form is then never in doubt. */
static const char *const sql[Q_COUNT] = {
	[Q_USER_BY_NAME] = "SELECT " USER_COLS " WHERE name = $1::text",
	[Q_USER_BY_ID] = "SELECT " USER_COLS " WHERE id = $1::bigint",
	[Q_USER_INSERT] = "INSERT INTO users (name, created, pw_hash, pw_salt,"
		" pw_m, pw_t, pw_p, ik_ed, ik_x, ik_bind, ik_hash, spk_id)"
		" VALUES ($1::text, $2::bigint, $3::bytea, $4::bytea, $5::bigint,"
		" $6::bigint, $7::bigint, $8::bytea, $9::bytea, $10::bytea,"
		" $11::bytea, $12::bigint) RETURNING id",
	[Q_USER_DELETE] = "DELETE FROM users WHERE id = $1::bigint",
	/* names use only [a-z0-9._-], all below chr(127); the column is "C" */
	[Q_USERS] = "SELECT name, created FROM users WHERE name >= $1::text"
		" AND name < $1::text || chr(127) ORDER BY name LIMIT $2::bigint",
	[Q_MAILBOX_DELETE] = "DELETE FROM mailbox WHERE uid = $1::bigint",
	/* this relay's own rows only: no other relay waits on them */
	[Q_MAILBOX_ADD] = "INSERT INTO mailbox (uid, shard, queued)"
		" SELECT d.uid, $3::integer, d.n"
		" FROM unnest($1::bigint[], $2::bigint[]) AS d(uid, n)"
		" ORDER BY d.uid ON CONFLICT (uid, shard)"
		" DO UPDATE SET queued = mailbox.queued + excluded.queued",
	[Q_SHARD] = "SELECT pg_try_advisory_lock($1::bigint)",
	[Q_SPK_GET] = "SELECT pub, sig, created FROM spks"
		" WHERE user_id = $1::bigint AND id = $2::bigint",
	[Q_SPK_INSERT] = "INSERT INTO spks (user_id, id, pub, sig, created)"
		" VALUES ($1::bigint, $2::bigint, $3::bytea, $4::bytea, $5::bigint)",
	[Q_SPK_SET] = "UPDATE users SET spk_id = $2::bigint WHERE id = $1::bigint",
	[Q_SPKS_DELETE] = "DELETE FROM spks WHERE user_id = $1::bigint",
	/* no row when the id was handed out before */
	[Q_OPK_INSERT] = "INSERT INTO opks (user_id, id, pub)"
		" SELECT $1::bigint, $2::bigint, $3::bytea WHERE NOT EXISTS"
		" (SELECT 1 FROM opks_used WHERE user_id = $1::bigint"
		" AND id = $2::bigint)",
	[Q_OPK_COUNT] = "SELECT count(*) FROM opks WHERE user_id = $1::bigint",
	[Q_OPK_TAKE] = "WITH c AS (SELECT id FROM opks WHERE user_id = $1::bigint"
		" ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED),"
		" d AS (DELETE FROM opks o USING c WHERE o.user_id = $1::bigint"
		" AND o.id = c.id RETURNING o.id, o.pub),"
		" u AS (INSERT INTO opks_used (user_id, id)"
		" SELECT $1::bigint, id FROM d)"
		" SELECT id, pub FROM d",
	[Q_OPKS_DELETE] = "DELETE FROM opks WHERE user_id = $1::bigint",
	[Q_OPKS_USED_DELETE] = "DELETE FROM opks_used WHERE user_id = $1::bigint",
	[Q_SESS_INSERT] = "INSERT INTO sessions (hash, user_id, expires)"
		" VALUES ($1::bytea, $2::bigint, $3::bigint)",
	[Q_SESS_GET] = "SELECT s.user_id, u.name, s.expires FROM sessions s"
		" JOIN users u ON u.id = s.user_id"
		" WHERE s.hash = $1::bytea AND s.expires > $2::bigint",
	[Q_SESS_TOUCH] = "UPDATE sessions SET expires = $2::bigint"
		" WHERE hash = $1::bytea",
	[Q_SESS_DELETE] = "DELETE FROM sessions WHERE hash = $1::bytea",
	[Q_SESS_DELETE_USER] = "DELETE FROM sessions WHERE user_id = $1::bigint",
	[Q_SESS_SWEEP] = "DELETE FROM sessions WHERE expires <= $1::bigint",
	/* one round trip: a repeat's id, else the recipient and its count */
	[Q_RCPT] = "SELECT (SELECT msg_id FROM sent WHERE sender = $1::bigint"
		" AND client_id = $2::bytea), u.id, u.ik_hash,"
		" (SELECT coalesce(sum(queued), 0)::bigint FROM mailbox m"
		" WHERE m.uid = u.id)"
		" FROM (SELECT 1) AS one LEFT JOIN users u ON u.name = $3::text",
	[Q_SENT_GET] = "SELECT msg_id FROM sent"
		" WHERE sender = $1::bigint AND client_id = $2::bytea",
	/* no row back when another transaction committed the same key */
	[Q_MSG_INSERT] = "WITH s AS (INSERT INTO sent (sender, client_id, msg_id,"
		" ts) VALUES ($1::bigint, $2::bytea, nextval('messages_id_seq'),"
		" $3::bigint) ON CONFLICT DO NOTHING RETURNING msg_id)"
		" INSERT INTO messages (id, rcpt, sender, ts, envelope)"
		" SELECT msg_id, $4::bigint, $5::text, $3::bigint, $6::bytea FROM s"
		" RETURNING id",
	[Q_MSGS_FETCH] = "SELECT id, sender, ts, envelope FROM messages"
		" WHERE rcpt = $1::bigint ORDER BY id LIMIT $2::bigint",
	[Q_MSG_ACK] = "DELETE FROM messages WHERE id = ANY($1::bigint[])"
		" AND rcpt = $2::bigint",
	[Q_MSGS_DELETE_USER] = "DELETE FROM messages WHERE rcpt = $1::bigint",
	[Q_SENT_DELETE_USER] = "DELETE FROM sent WHERE sender = $1::bigint",
	[Q_MSGS_SWEEP] = "DELETE FROM messages WHERE id IN (SELECT id FROM"
		" messages WHERE ts < $1::bigint LIMIT $2::bigint) RETURNING rcpt",
	[Q_SENT_SWEEP] = "DELETE FROM sent WHERE ts < $1::bigint",
	[Q_POST_LOCK] = "SELECT pg_advisory_xact_lock($1::bigint)",
	[Q_POST_INSERT] = "INSERT INTO posts (channel, post)"
		" VALUES ($1::text, $2::bytea) RETURNING id",
	[Q_POST_TRIM] = "DELETE FROM posts WHERE channel = $1::text AND id <="
		" (SELECT id FROM posts WHERE channel = $1::text ORDER BY id DESC"
		" LIMIT 1 OFFSET $2::bigint)",
	[Q_POSTS_FETCH] = "SELECT id, post FROM posts WHERE channel = $1::text"
		" AND id > $2::bigint ORDER BY id LIMIT $3::bigint",
	[Q_QUOTA_LOCK] = "SELECT pg_advisory_xact_lock($1::bigint)",
	[Q_BLOB_INSERT] = "INSERT INTO blobs (id, owner, size, created)"
		" VALUES ($1::text, $2::bigint, $3::bigint, $4::bigint)",
	[Q_BLOB_USAGE] = "SELECT coalesce(sum(size), 0)::bigint FROM blobs"
		" WHERE owner = $1::bigint",
	[Q_BLOB_GET] = "SELECT size FROM blobs WHERE id = $1::text"
		" AND created > $2::bigint",
	[Q_BLOB_SWEEP] = "DELETE FROM blobs WHERE id IN (SELECT id FROM blobs"
		" WHERE created <= $1::bigint LIMIT $2::bigint) RETURNING id",
	[Q_STAT_MSGS] = "SELECT count(*) FROM messages",
	[Q_STAT_BLOBS] = "SELECT coalesce(sum(size), 0)::bigint FROM blobs",
	[Q_STAT_DB] = "SELECT pg_database_size(current_database())",
	[Q_NOTIFY] = "SELECT pg_notify('" CHANNEL "', 'w' || k)"
		" FROM unnest($1::text[]) AS k",
	[Q_REVOKE] = "SELECT pg_notify('" CHANNEL "', 'r')",
};

struct conn {
	PGconn *pg;
	unsigned char prepared[Q_COUNT];
	struct conn *next;
};

/* A mailbox counter change waiting for COMMIT. */
struct delta {
	int64_t uid, n;
};

struct pg_store {
	struct st_store base;
	char *url;
	struct conn *w;                 /* the writer's, NULL when broken */
	atomic_int writer_pid;          /* its backend: its NOTIFYs are ours */
	pthread_mutex_t mu;             /* guards pool and the backoff */
	struct conn *pool;              /* idle read connections */
	int64_t retry_at, backoff;      /* ms */
	struct delta *log;              /* the transaction's counter changes */
	size_t nlog, caplog, mark;
	int shard;                      /* this relay's mailbox counter rows */
	int released;                   /* a RELEASE waits for the next SAVEPOINT */
	/* the listener */
	struct st_store_hooks hooks;
	pthread_t listener;
	int listening, stop_pipe[2];
};

#define PG(s) ((struct pg_store *)(s))

static const struct st_store_ops pg_ops;

static int64_t statement_ms = 30000;       /* st_store_timeout() */

void st_store_timeout(int64_t ms)
{
	statement_ms = ms;
}

/* set by await() when the server stayed silent; fault() reports it */
static _Thread_local int timed_out;
/* set by fault() for a deadlock or serialization failure */
static _Thread_local int conflict;

/* ---- errors ---- */

/* The first line of libpq's message, for a one-line error. */
static const char *first_line(const char *m, char *buf, size_t n)
{
	size_t l = strcspn(m, "\n");

	if (l >= n)
		l = n - 1;
	memcpy(buf, m, l);
	buf[l] = 0;
	return buf;
}

/*
 * Class a failed result: a broken connection, a restart, a deadlock or a
 * lock or statement timeout are temporary; a full disk is 507's.
 */
static int fault(PGconn *pg, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *m = r ? PQresultErrorMessage(r) : "";
	char buf[300];
	int code = ST_EX_UNAVAILABLE;

	if (!*m)
		m = PQerrorMessage(pg);
	if (timed_out) {
		timed_out = 0;
		return st_error(ST_EX_TEMPFAIL, "database: no answer within "
		                "%lld ms", (long long)statement_ms + ANSWER_MARGIN_MS);
	}
	first_line(m, buf, sizeof(buf));
	if (state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0))
		conflict = 1;
	if (state && strcmp(state, "53100") == 0)
		code = ST_EX_CANTCREAT;
	else if (!state || PQstatus(pg) != CONNECTION_OK ||
	         strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	         strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	         strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 ||
	         strncmp(state, "53", 2) == 0)
		code = ST_EX_TEMPFAIL;
	return st_error(code, "database: %s", buf);
}

/* ---- waiting for answers ---- */

/*
 * The server's statement_timeout ends a slow statement; a server that is
 * stopped or cut off answers nothing at all, so every wait for an answer
 * is bounded here too.  A connection that stays silent past the limit is
 * shut down: libpq then reports it broken, and it is dropped.
 */
static PGresult *await(PGconn *pg)
{
	int64_t end = st_now_ms() + statement_ms + ANSWER_MARGIN_MS;
	PGresult *r, *last = NULL;

	for (;;) {
		while (PQisBusy(pg)) {
			struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN };
			int64_t left = end - st_now_ms();
			int n;

			if (left <= 0 || p.fd < 0) {
				timed_out = 1;
				if (p.fd >= 0)
					shutdown(p.fd, SHUT_RDWR);
				PQconsumeInput(pg);
				break;
			}
			n = poll(&p, 1, (int)left);
			if (n < 0 && errno != EINTR)
				break;
			if (n > 0 && !PQconsumeInput(pg))
				break;
		}
		if (timed_out && PQisBusy(pg))
			break;
		if (!(r = PQgetResult(pg)))
			break;
		/* the first error wins: what follows it did not run */
		if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
			PQclear(r);
			continue;
		}
		PQclear(last);
		last = r;
	}
	return last;
}

/* Send one command string (one or more statements) and wait. */
static PGresult *q_exec(PGconn *pg, const char *q)
{
	return PQsendQuery(pg, q) ? await(pg) : NULL;
}

/* ---- connections ---- */

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Open a connection unless a recent failure says to wait (backoff). */
static PGconn *pg_connect(struct pg_store *s)
{
	static const char *const keys[] = {
		"connect_timeout", "application_name", "tcp_user_timeout",
		"dbname", NULL,
	};
	const char *vals[] = { "5", "st-relay", "15000", s->url, NULL };
	int64_t now = st_now_ms();
	PGconn *pg;
	PGresult *r;
	char buf[300], set[200];

	pthread_mutex_lock(&s->mu);
	if (now < s->retry_at) {
		pthread_mutex_unlock(&s->mu);
		st_error(ST_EX_TEMPFAIL, "database unreachable; trying again "
		         "in %lld ms", (long long)(s->retry_at - now));
		return NULL;
	}
	pthread_mutex_unlock(&s->mu);

	pg = PQconnectdbParams(keys, vals, 1);
	if (pg && PQstatus(pg) == CONNECTION_OK) {
		PQsetNoticeProcessor(pg, quiet, NULL);
		/* a 201 is on disk, whatever the server's default */
		snprintf(set, sizeof(set), "SET synchronous_commit = on;"
		         " SET statement_timeout = %lld;"
		         " SET lock_timeout = %lld;"
		         " SET client_min_messages = warning",
		         (long long)statement_ms, (long long)statement_ms);
		r = q_exec(pg, set);
		if (PQresultStatus(r) == PGRES_COMMAND_OK) {
			PQclear(r);
			pthread_mutex_lock(&s->mu);
			s->backoff = 0;
			pthread_mutex_unlock(&s->mu);
			return pg;
		}
		fault(pg, r);
		PQclear(r);
	} else {
		st_error(ST_EX_TEMPFAIL, "cannot connect to the database: %s",
		         first_line(pg ? PQerrorMessage(pg) : "out of memory",
		                    buf, sizeof(buf)));
	}
	PQfinish(pg);
	pthread_mutex_lock(&s->mu);
	s->backoff = s->backoff ? s->backoff * 2 : BACKOFF_MIN_MS;
	if (s->backoff > BACKOFF_MAX_MS)
		s->backoff = BACKOFF_MAX_MS;
	s->retry_at = st_now_ms() + s->backoff;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static struct conn *conn_open(struct pg_store *s)
{
	PGconn *pg = pg_connect(s);
	struct conn *c;

	if (!pg)
		return NULL;
	c = st_calloc(1, sizeof(*c));
	c->pg = pg;
	return c;
}

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	PQfinish(c->pg);
	free(c);
}

static int conn_ok(const struct conn *c)
{
	return c && PQstatus(c->pg) == CONNECTION_OK;
}

/*
 * Before reusing an idle connection: a server that restarted closed it,
 * which libpq learns only by reading (the socket never blocks).
 */
static int conn_alive(struct conn *c)
{
	return conn_ok(c) && PQconsumeInput(c->pg) && conn_ok(c);
}

static struct conn *rd_get(struct pg_store *s)
{
	struct conn *c;

	pthread_mutex_lock(&s->mu);
	if ((c = s->pool))
		s->pool = c->next;
	pthread_mutex_unlock(&s->mu);
	if (c && !conn_alive(c)) {
		conn_close(c);
		c = NULL;
	}
	return c ? c : conn_open(s);
}

/* Back to the pool, or closed when it broke meanwhile. */
static void rd_put(struct pg_store *s, struct conn *c)
{
	if (!c)
		return;
	if (!conn_ok(c) || PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
		conn_close(c);
		return;
	}
	pthread_mutex_lock(&s->mu);
	c->next = s->pool;
	s->pool = c;
	pthread_mutex_unlock(&s->mu);
}

/* ---- statements ---- */

struct args {
	int n;
	const char *v[MAXP];
	int len[MAXP], fmt[MAXP];
	unsigned char ib[MAXP][8];
};

static void a_i64(struct args *a, int64_t x)
{
	uint64_t u = (uint64_t)x;

	for (int i = 0; i < 8; i++)
		a->ib[a->n][i] = (unsigned char)(u >> (56 - 8 * i));
	a->v[a->n] = (const char *)a->ib[a->n];
	a->len[a->n] = 8;
	a->fmt[a->n++] = 1;
}

static void a_bin(struct args *a, const void *p, size_t n)
{
	a->v[a->n] = p;
	a->len[a->n] = (int)n;
	a->fmt[a->n++] = 1;
}

static void a_str(struct args *a, const char *p)
{
	a_bin(a, p, strlen(p));
}

/* A parameter in text form (arrays: '{1,2,3}'). */
static void a_txt(struct args *a, const char *p)
{
	a->v[a->n] = p;
	a->len[a->n] = 0;
	a->fmt[a->n++] = 0;
}

/*
 * Run statement q; *out gets the result (rows or not) for the caller to
 * PQclear.  ST_STORE_ID_REUSED for a unique key that is taken (the
 * transaction must then be undone to its savepoint), -1 for a fault.
 */
static int run(struct conn *c, enum q q, const struct args *a, PGresult **out)
{
	char name[8];
	PGresult *r;
	ExecStatusType st;

	*out = NULL;
	snprintf(name, sizeof(name), "q%d", (int)q);
	if (!c->prepared[q]) {
		r = PQsendPrepare(c->pg, name, sql[q], 0, NULL) ?
		    await(c->pg) : NULL;
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fault(c->pg, r);
			PQclear(r);
			return -1;
		}
		PQclear(r);
		c->prepared[q] = 1;
	}
	r = PQsendQueryPrepared(c->pg, name, a ? a->n : 0, a ? a->v : NULL,
	                        a ? a->len : NULL, a ? a->fmt : NULL, 1) ?
	    await(c->pg) : NULL;
	st = PQresultStatus(r);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		*out = r;
		return 0;
	}
	if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
	    strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505") == 0) {
		PQclear(r);
		return ST_STORE_ID_REUSED;
	}
	fault(c->pg, r);
	PQclear(r);
	return -1;
}

/* Run q for its effect only. */
static int run_done(struct conn *c, enum q q, const struct args *a)
{
	PGresult *r;
	int rc = run(c, q, a, &r);

	PQclear(r);
	return rc;
}

static int64_t affected(const PGresult *r)
{
	return strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
}

static int corrupt(void)
{
	return st_error(ST_EX_UNAVAILABLE, "database: a column has an "
	                "unexpected size");
}

static int col_i64(const PGresult *r, int row, int col, int64_t *v)
{
	const unsigned char *p;
	uint64_t u = 0;

	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
		return corrupt();
	p = (const unsigned char *)PQgetvalue(r, row, col);
	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	*v = (int64_t)u;
	return 0;
}

static int col_u32(const PGresult *r, int row, int col, uint32_t *v)
{
	int64_t x;

	if (col_i64(r, row, col, &x) < 0)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int col_blob(const PGresult *r, int row, int col, void *out, size_t n)
{
	if (PQgetisnull(r, row, col) || (size_t)PQgetlength(r, row, col) != n)
		return corrupt();
	memcpy(out, PQgetvalue(r, row, col), n);
	return 0;
}

/* A text or bytea column: PQgetvalue always ends it with a NUL. */
static const char *col_str(const PGresult *r, int row, int col, size_t *n)
{
	if (n)
		*n = (size_t)PQgetlength(r, row, col);
	return PQgetvalue(r, row, col);
}

/* Run a statement whose one row has one bigint. */
static int scalar(struct conn *c, enum q q, const struct args *a, int64_t *v)
{
	PGresult *r;
	int rc;

	if ((rc = run(c, q, a, &r)) != 0)
		return rc;
	rc = PQntuples(r) == 1 ? col_i64(r, 0, 0, v) : corrupt();
	PQclear(r);
	return rc;
}

/* Format ids as a PostgreSQL array literal into b. */
static void id_array(struct st_buf *b, const int64_t *v, size_t n)
{
	b->len = 0;
	st_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++)
		st_buf_appendf(b, i ? ",%" PRId64 : "%" PRId64, v[i]);
	st_buf_append(b, "}", 2);
}

/* ---- opening, migrations ---- */

static int exec_simple(PGconn *pg, const char *q)
{
	PGresult *r = q_exec(pg, q);
	ExecStatusType st = PQresultStatus(r);
	int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 :
	         fault(pg, r);

	PQclear(r);
	return rc;
}

/* Make or migrate the schema, one relay at a time. */
static int migrate(struct pg_store *s, struct conn *c)
{
	PGresult *r;
	char lock[80];
	int ver = 0;

	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)",
	         (long long)LOCK_SCHEMA);
	if (exec_simple(c->pg, "BEGIN") < 0)
		return -1;
	if (exec_simple(c->pg, lock) < 0 ||
	    exec_simple(c->pg, "CREATE TABLE IF NOT EXISTS st_schema"
	                " (version integer NOT NULL)") < 0)
		goto fail;
	r = q_exec(c->pg, "SELECT coalesce(max(version), 0) FROM st_schema");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		fault(c->pg, r);
		PQclear(r);
		goto fail;
	}
	ver = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (ver > SCHEMA_VERSION) {
		st_error(ST_EX_CONFIG, "the database has schema version %d; this "
		         "st-relay knows up to %d (upgrade st-relay)", ver,
		         SCHEMA_VERSION);
		goto fail;
	}
	for (; ver < SCHEMA_VERSION; ver++) {
		char ins[64];

		snprintf(ins, sizeof(ins), "INSERT INTO st_schema VALUES (%d)",
		         ver + 1);
		if (exec_simple(c->pg, migrations[ver]) < 0 ||
		    exec_simple(c->pg, ins) < 0)
			goto fail;
	}
	if (exec_simple(c->pg, "COMMIT") == 0)
		return 0;
fail:
	exec_simple(c->pg, "ROLLBACK");
	(void)s;
	return -1;
}

/*
 * Each relay adds to its own mailbox counter rows (a shard), so relays
 * never wait on each other's counters; a count is the sum of the shards.
 * The writer's connection holds a session lock on its shard number; with
 * more than NSHARDS relays some share one, which is correct, only slower.
 */
static int claim_shard(struct pg_store *s, struct conn *c)
{
	for (int i = 0; i < NSHARDS; i++) {
		struct args a = { 0 };
		PGresult *r;
		int got;

		a_i64(&a, LOCK_SHARD + i);
		if (run(c, Q_SHARD, &a, &r) != 0)
			return -1;
		got = PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 1 &&
		      PQgetvalue(r, 0, 0)[0] == 1;
		PQclear(r);
		if (got) {
			s->shard = i;
			return 0;
		}
	}
	s->shard = (int)(PQbackendPID(c->pg) % NSHARDS);
	return 0;
}

struct st_store *st_store_pg_open(const char *url)
{
	struct pg_store *s;
	PQconninfoOption *o;
	char *err = NULL;

	if (!(o = PQconninfoParse(url, &err))) {
		char buf[300];

		st_error(ST_EX_USAGE, "-d: not a PostgreSQL URL: %s",
		         first_line(err ? err : "out of memory", buf, sizeof(buf)));
		PQfreemem(err);
		return NULL;
	}
	for (PQconninfoOption *i = o; i->keyword; i++) {
		if (strcmp(i->keyword, "password") == 0 && i->val && *i->val) {
			PQconninfoFree(o);
			st_error(ST_EX_USAGE, "-d: the URL holds a password, which "
			         "any user sees in ps; put it in ~/.pgpass or "
			         "PGPASSFILE instead");
			return NULL;
		}
	}
	PQconninfoFree(o);

	s = st_calloc(1, sizeof(*s));
	s->base.ops = &pg_ops;
	s->url = st_strdup(url);
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	if (!(s->w = conn_open(s))) {
		/* at start a failure is not retried: 69, not 75 */
		char m[400];

		snprintf(m, sizeof(m), "%s", st_errmsg());
		st_error(ST_EX_UNAVAILABLE, "%s", m);
		goto fail;
	}
	if (migrate(s, s->w) < 0 || claim_shard(s, s->w) < 0)
		goto fail;
	atomic_store(&s->writer_pid, PQbackendPID(s->w->pg));
	return &s->base;
fail:
	st_store_close(&s->base);
	return NULL;
}

static void listen_stop(struct pg_store *s);

static void pg_close(struct st_store *st)
{
	struct pg_store *s = PG(st);
	struct conn *c;

	listen_stop(s);
	while ((c = s->pool)) {
		s->pool = c->next;
		conn_close(c);
	}
	conn_close(s->w);
	pthread_mutex_destroy(&s->mu);
	free(s->log);
	free(s->url);
	free(s);
}

static int pg_shared(const struct st_store *s)
{
	(void)s;
	return 1;
}

static int pg_conflict(struct st_store *s)
{
	int c = conflict;

	(void)s;
	conflict = 0;
	return c;
}

/* ---- the writer's transaction ---- */

/* The writer's connection, opened again when it broke. */
static struct conn *wconn(struct pg_store *s)
{
	if (conn_alive(s->w))
		return s->w;
	conn_close(s->w);
	s->w = conn_open(s);
	if (s->w && claim_shard(s, s->w) < 0) {
		conn_close(s->w);
		s->w = NULL;
	}
	if (s->w)
		atomic_store(&s->writer_pid, PQbackendPID(s->w->pg));
	return s->w;
}

static int pg_begin(struct st_store *st)
{
	struct pg_store *s = PG(st);
	struct conn *c = wconn(s);

	s->nlog = s->mark = 0;
	s->released = 0;
	return c ? exec_simple(c->pg, "BEGIN") : -1;
}

static int delta_cmp(const void *a, const void *b)
{
	const struct delta *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Add the summed counter changes to this relay's shard. */
static int flush_counters(struct pg_store *s)
{
	struct st_buf uids = { 0 }, ns = { 0 };
	int64_t *u, *n;
	size_t k = 0;
	struct args a = { 0 };
	char shard[16];
	int rc;

	if (!s->nlog)
		return 0;
	qsort(s->log, s->nlog, sizeof(*s->log), delta_cmp);
	for (size_t i = 0; i < s->nlog; i++) {
		if (k && s->log[k - 1].uid == s->log[i].uid)
			s->log[k - 1].n += s->log[i].n;
		else
			s->log[k++] = s->log[i];
	}
	u = st_malloc(k * sizeof(*u));
	n = st_malloc(k * sizeof(*n));
	for (size_t i = 0; i < k; i++) {
		u[i] = s->log[i].uid;
		n[i] = s->log[i].n;
	}
	id_array(&uids, u, k);
	id_array(&ns, n, k);
	snprintf(shard, sizeof(shard), "%d", s->shard);
	a_txt(&a, (const char *)uids.data);
	a_txt(&a, (const char *)ns.data);
	a_txt(&a, shard);
	rc = run_done(s->w, Q_MAILBOX_ADD, &a);
	free(u);
	free(n);
	st_buf_free(&uids);
	st_buf_free(&ns);
	return rc ? -1 : 0;
}

static int pg_commit(struct st_store *st)
{
	struct pg_store *s = PG(st);

	if (!s->w)
		return st_error(ST_EX_TEMPFAIL, "database: no connection");
	if (flush_counters(s) < 0)
		return -1;
	s->nlog = 0;
	s->released = 0;
	return exec_simple(s->w->pg, "COMMIT");
}

static void pg_rollback(struct st_store *st)
{
	struct pg_store *s = PG(st);

	s->nlog = s->mark = 0;
	s->released = 0;
	if (conn_ok(s->w) && PQtransactionStatus(s->w->pg) != PQTRANS_IDLE)
		exec_simple(s->w->pg, "ROLLBACK");
}

/*
 * A job's savepoint: the previous job's RELEASE travels with the next
 * SAVEPOINT (or is implied by COMMIT), one round trip a job instead of two.
 */
static int pg_save(struct st_store *st)
{
	struct pg_store *s = PG(st);
	int rel = s->released;

	s->mark = s->nlog;
	s->released = 0;
	if (!s->w)
		return -1;
	return exec_simple(s->w->pg, rel ? "RELEASE job; SAVEPOINT job" :
	                   "SAVEPOINT job");
}

static int pg_release(struct st_store *st)
{
	struct pg_store *s = PG(st);

	s->released = 1;
	return s->w ? 0 : -1;
}

static int pg_undo(struct st_store *st)
{
	struct pg_store *s = PG(st);

	s->nlog = s->mark;
	s->released = 0;
	if (!s->w)
		return -1;
	return exec_simple(s->w->pg, "ROLLBACK TO job; RELEASE job");
}

/* Note a mailbox counter change for COMMIT. */
static void count(struct pg_store *s, int64_t uid, int64_t n)
{
	if (s->nlog == s->caplog) {
		s->caplog = s->caplog ? s->caplog * 2 : 64;
		s->log = st_realloc(s->log, s->caplog * sizeof(*s->log));
	}
	s->log[s->nlog].uid = uid;
	s->log[s->nlog++].n = n;
}

/* What this transaction has added to uid's mailbox so far. */
static int64_t pending(const struct pg_store *s, int64_t uid)
{
	int64_t n = 0;

	for (size_t i = 0; i < s->nlog; i++)
		if (s->log[i].uid == uid)
			n += s->log[i].n;
	return n;
}

static int pg_notify(struct st_store *st, const uint64_t *keys, size_t n)
{
	struct pg_store *s = PG(st);
	struct st_buf b = { 0 };
	struct args a = { 0 };
	int rc;

	if (!n)
		return 0;
	if (!s->w)
		return st_error(ST_EX_TEMPFAIL, "database: no connection");
	st_buf_append(&b, "{", 1);
	for (size_t i = 0; i < n; i++)
		st_buf_appendf(&b, i ? ",%" PRIu64 : "%" PRIu64, keys[i]);
	st_buf_append(&b, "}", 2);
	a_txt(&a, (const char *)b.data);
	rc = run_done(s->w, Q_NOTIFY, &a);
	st_buf_free(&b);
	return rc ? -1 : 0;
}

/* ---- accounts and sessions ---- */

static int user_row(const PGresult *r, struct st_store_user *u)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", PQgetvalue(r, 0, 1));
	if (col_i64(r, 0, 0, &u->id) < 0 || col_i64(r, 0, 2, &u->created) < 0 ||
	    col_blob(r, 0, 3, u->ik.ed25519, 32) < 0 ||
	    col_blob(r, 0, 4, u->ik.x25519, 32) < 0 ||
	    col_blob(r, 0, 5, u->ik.bind, 64) < 0 ||
	    col_blob(r, 0, 6, u->pw.hash, 32) < 0 ||
	    col_blob(r, 0, 7, u->pw.salt, 16) < 0 ||
	    col_u32(r, 0, 8, &u->pw.m) < 0 || col_u32(r, 0, 9, &u->pw.t) < 0 ||
	    col_u32(r, 0, 10, &u->pw.p) < 0 || col_u32(r, 0, 11, &u->spk_id) < 0)
		return -1;
	return 0;
}

static int user_fetch(struct conn *c, enum q q, const char *name, int64_t uid,
                      struct st_store_user *u)
{
	struct args a = { 0 };
	PGresult *r;
	int rc;

	if (name)
		a_str(&a, name);
	else
		a_i64(&a, uid);
	if ((rc = run(c, q, &a, &r)) != 0)
		return rc < 0 ? -1 : rc;
	rc = PQntuples(r) ? user_row(r, u) : ST_STORE_NOTFOUND;
	PQclear(r);
	return rc;
}

static int pg_user_get(struct st_store *st, const char *name,
                       struct st_store_user *u)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	int rc = c ? user_fetch(c, Q_USER_BY_NAME, name, 0, u) : -1;

	rd_put(s, c);
	return rc;
}

static int pg_user_get_id(struct st_store *st, int64_t uid,
                          struct st_store_user *u)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	int rc = c ? user_fetch(c, Q_USER_BY_ID, NULL, uid, u) : -1;

	rd_put(s, c);
	return rc;
}

static int opks_add(struct conn *c, int64_t uid, const struct st_store_opk *o,
                    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct args a = { 0 };
		PGresult *r;
		int rc;

		a_i64(&a, uid);
		a_i64(&a, o[i].id);
		a_bin(&a, o[i].pub, 32);
		if ((rc = run(c, Q_OPK_INSERT, &a, &r)) != 0)
			return rc;
		rc = affected(r) == 1 ? 0 : ST_STORE_ID_REUSED;
		PQclear(r);
		if (rc)
			return rc;
	}
	return 0;
}

static int spk_set(struct conn *c, int64_t uid, uint32_t id)
{
	struct args a = { 0 };

	a_i64(&a, uid);
	a_i64(&a, id);
	return run_done(c, Q_SPK_SET, &a);
}

static int spk_add(struct conn *c, int64_t uid, const struct st_store_spk *k)
{
	struct args a = { 0 };
	int rc;

	a_i64(&a, uid);
	a_i64(&a, k->id);
	a_bin(&a, k->pub, 32);
	a_bin(&a, k->sig, 64);
	a_i64(&a, k->created);
	if ((rc = run_done(c, Q_SPK_INSERT, &a)) != 0)
		return rc;
	return spk_set(c, uid, k->id);
}

static int pg_user_create(struct st_store *st, struct st_store_user *u,
                          const struct st_store_spk *spk,
                          const struct st_store_opk *opks, size_t nopks)
{
	struct pg_store *s = PG(st);
	struct args a = { 0 };
	unsigned char h[32];
	PGresult *r;
	int rc;

	st_store_ik_hash(&u->ik, h);
	a_str(&a, u->name);
	a_i64(&a, u->created);
	a_bin(&a, u->pw.hash, 32);
	a_bin(&a, u->pw.salt, 16);
	a_i64(&a, u->pw.m);
	a_i64(&a, u->pw.t);
	a_i64(&a, u->pw.p);
	a_bin(&a, u->ik.ed25519, 32);
	a_bin(&a, u->ik.x25519, 32);
	a_bin(&a, u->ik.bind, 64);
	a_bin(&a, h, 16);
	a_i64(&a, spk->id);
	if ((rc = run(s->w, Q_USER_INSERT, &a, &r)) != 0)
		return rc == ST_STORE_ID_REUSED ? ST_STORE_TAKEN : rc;
	rc = PQntuples(r) == 1 ? col_i64(r, 0, 0, &u->id) : corrupt();
	PQclear(r);
	if (rc < 0)
		return -1;
	if ((rc = spk_add(s->w, u->id, spk)) != 0)
		return rc;
	return opks_add(s->w, u->id, opks, nopks);
}

static int announce_revoke(struct conn *c)
{
	return run_done(c, Q_REVOKE, NULL) == 0 ? 0 : -1;
}

static int pg_user_delete(struct st_store *st, int64_t uid)
{
	static const enum q qs[] = {
		Q_SESS_DELETE_USER, Q_SPKS_DELETE, Q_OPKS_DELETE,
		Q_OPKS_USED_DELETE, Q_MSGS_DELETE_USER, Q_SENT_DELETE_USER,
		Q_MAILBOX_DELETE, Q_USER_DELETE,
	};
	struct pg_store *s = PG(st);
	struct args a = { 0 };

	a_i64(&a, uid);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		if (run_done(s->w, qs[i], &a) != 0)
			return -1;
	return announce_revoke(s->w);
}

static int pg_users_list(struct st_store *st, const char *prefix, int limit,
                         int (*fn)(void *ctx, const char *name,
                                   int64_t created),
                         void *ctx)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	struct args a = { 0 };
	PGresult *r;
	int n = -1;

	a_str(&a, prefix);
	a_i64(&a, limit);
	if (c && run(c, Q_USERS, &a, &r) == 0) {
		int rows = PQntuples(r);

		for (n = 0; n < rows; n++) {
			int64_t created;

			if (col_i64(r, n, 1, &created) < 0) {
				n = -1;
				break;
			}
			if (fn(ctx, PQgetvalue(r, n, 0), created) < 0) {
				n++;
				break;
			}
		}
		PQclear(r);
	}
	rd_put(s, c);
	return n;
}

static int pg_session_add(struct st_store *st, const unsigned char hash[32],
                          int64_t uid, int64_t expires)
{
	struct args a = { 0 };

	a_bin(&a, hash, 32);
	a_i64(&a, uid);
	a_i64(&a, expires);
	return run_done(PG(st)->w, Q_SESS_INSERT, &a) == 0 ? 0 : -1;
}

static int pg_session_get(struct st_store *st, const unsigned char hash[32],
                          int64_t now, int64_t *uid,
                          char name[ST_USER_MAX + 1], int64_t *expires)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	struct args a = { 0 };
	PGresult *r;
	int rc = -1;

	a_bin(&a, hash, 32);
	a_i64(&a, now);
	if (c && run(c, Q_SESS_GET, &a, &r) == 0) {
		if (!PQntuples(r)) {
			rc = ST_STORE_NOTFOUND;
		} else if (col_i64(r, 0, 0, uid) == 0 &&
		           col_i64(r, 0, 2, expires) == 0) {
			snprintf(name, ST_USER_MAX + 1, "%s", PQgetvalue(r, 0, 1));
			rc = 0;
		}
		PQclear(r);
	}
	rd_put(s, c);
	return rc;
}

static int pg_session_touch(struct st_store *st, const unsigned char hash[32],
                            int64_t expires)
{
	struct args a = { 0 };

	a_bin(&a, hash, 32);
	a_i64(&a, expires);
	return run_done(PG(st)->w, Q_SESS_TOUCH, &a) == 0 ? 0 : -1;
}

static int pg_session_delete(struct st_store *st, const unsigned char hash[32])
{
	struct args a = { 0 };

	a_bin(&a, hash, 32);
	if (run_done(PG(st)->w, Q_SESS_DELETE, &a) != 0)
		return -1;
	return announce_revoke(PG(st)->w);
}

/* ---- keys ---- */

static int spk_get(struct conn *c, int64_t uid, uint32_t id,
                   struct st_store_spk *k)
{
	struct args a = { 0 };
	PGresult *r;
	int rc;

	a_i64(&a, uid);
	a_i64(&a, id);
	if ((rc = run(c, Q_SPK_GET, &a, &r)) != 0)
		return -1;
	if (!PQntuples(r)) {
		PQclear(r);
		return ST_STORE_NOTFOUND;
	}
	k->id = id;
	rc = col_blob(r, 0, 0, k->pub, 32) < 0 ||
	     col_blob(r, 0, 1, k->sig, 64) < 0 ||
	     col_i64(r, 0, 2, &k->created) < 0 ? -1 : 0;
	PQclear(r);
	return rc;
}

static int opk_count(struct conn *c, int64_t uid, int64_t *n)
{
	struct args a = { 0 };

	a_i64(&a, uid);
	return scalar(c, Q_OPK_COUNT, &a, n) == 0 ? 0 : -1;
}

static int pg_keys_info(struct st_store *st, int64_t uid, int64_t *nopks,
                        struct st_store_spk *spk)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	struct st_store_user u;
	int rc = -1;

	if (c && (rc = user_fetch(c, Q_USER_BY_ID, NULL, uid, &u)) == 0 &&
	    (rc = opk_count(c, uid, nopks)) == 0)
		rc = spk_get(c, uid, u.spk_id, spk);
	rd_put(s, c);
	return rc;
}

static int pg_keys_put(struct st_store *st, int64_t uid,
                       const struct st_store_spk *spk,
                       const struct st_store_opk *opks, size_t n, int64_t max)
{
	struct conn *c = PG(st)->w;
	struct st_store_spk old;
	int64_t have;
	int rc;

	if (spk) {
		if ((rc = spk_get(c, uid, spk->id, &old)) < 0)
			return -1;
		if (rc == 0 && (memcmp(old.pub, spk->pub, 32) ||
		                memcmp(old.sig, spk->sig, 64)))
			return ST_STORE_ID_REUSED;
		if (rc == 0 ? spk_set(c, uid, spk->id) != 0 :
		    (rc = spk_add(c, uid, spk)) != 0)
			return rc > 0 ? rc : -1;
	}
	if (!n)
		return 0;
	if (opk_count(c, uid, &have) < 0)
		return -1;
	if (have + (int64_t)n > max)
		return ST_STORE_TOO_MANY;
	return opks_add(c, uid, opks, n);
}

static int pg_bundle_take(struct st_store *st, const char *name,
                          struct st_store_user *u, struct st_store_spk *spk,
                          struct st_store_opk *opk, int *has_opk)
{
	struct conn *c = PG(st)->w;
	struct args a = { 0 };
	PGresult *r;
	int rc;

	*has_opk = 0;
	if ((rc = user_fetch(c, Q_USER_BY_NAME, name, 0, u)) != 0 ||
	    (rc = spk_get(c, u->id, u->spk_id, spk)) != 0)
		return rc;
	a_i64(&a, u->id);
	if (run(c, Q_OPK_TAKE, &a, &r) != 0)
		return -1;
	rc = 0;
	if (PQntuples(r) == 1) {
		rc = col_u32(r, 0, 0, &opk->id) < 0 ||
		     col_blob(r, 0, 1, opk->pub, 32) < 0 ? -1 : 0;
		*has_opk = rc == 0;
	}
	PQclear(r);
	return rc;
}

/* ---- mailbox ---- */

/* A repeated (sender, client_id): 1 with its id, 0 when new. */
static int sent_get(struct conn *c, int64_t sender, const unsigned char id[16],
                    int64_t *msg)
{
	struct args a = { 0 };
	PGresult *r;
	int rc;

	a_i64(&a, sender);
	a_bin(&a, id, 16);
	if (run(c, Q_SENT_GET, &a, &r) != 0)
		return -1;
	rc = PQntuples(r) ? (col_i64(r, 0, 0, msg) < 0 ? -1 : 1) : 0;
	PQclear(r);
	return rc;
}

/*
 * In one round trip: REPEAT with the id when (sender, client_id) was
 * posted before; else 0 with the recipient checked (ST_STORE_NOTFOUND,
 * _IDENTITY, _FULL against max queued messages).
 */
static int rcpt_check(struct pg_store *s, int64_t sender,
                      struct st_store_msg *m, int64_t max)
{
	struct args a = { 0 };
	PGresult *r;
	int64_t queued;
	int rc;

	a_i64(&a, sender);
	a_bin(&a, m->client_id, 16);
	a_str(&a, m->to);
	if (run(s->w, Q_RCPT, &a, &r) != 0)
		return -1;
	if (PQntuples(r) != 1)
		rc = corrupt();
	else if (!PQgetisnull(r, 0, 0))
		rc = col_i64(r, 0, 0, &m->id) < 0 ? -1 : REPEAT;
	else if (PQgetisnull(r, 0, 1))
		rc = ST_STORE_NOTFOUND;
	else if (col_i64(r, 0, 1, &m->rcpt) < 0 || col_i64(r, 0, 3, &queued) < 0)
		rc = -1;
	else if (PQgetlength(r, 0, 2) != 16 ||
	         memcmp(PQgetvalue(r, 0, 2), m->to_ik, 16))
		rc = ST_STORE_IDENTITY;
	else if (queued + pending(s, m->rcpt) >= max)
		rc = ST_STORE_FULL;
	else
		rc = 0;
	PQclear(r);
	return rc;
}

/* 1 when stored, 0 when another relay committed the same key meanwhile. */
static int msg_insert(struct pg_store *s, int64_t sender, const char *from,
                      struct st_store_msg *m, int64_t now)
{
	struct args a = { 0 };
	PGresult *r;
	int rc;

	a_i64(&a, sender);
	a_bin(&a, m->client_id, 16);
	a_i64(&a, now);
	a_i64(&a, m->rcpt);
	a_str(&a, from);
	a_bin(&a, m->envelope, m->envlen);
	if (run(s->w, Q_MSG_INSERT, &a, &r) != 0)
		return -1;
	rc = PQntuples(r) == 1 ? (col_i64(r, 0, 0, &m->id) < 0 ? -1 : 1) : 0;
	PQclear(r);
	if (rc == 1)
		count(s, m->rcpt, 1);
	return rc;
}

static int pg_msgs_post(struct st_store *st, int64_t sender,
                        const char *sender_name, struct st_store_msg *m,
                        size_t n, int64_t now, int64_t mailbox_max,
                        size_t *failed)
{
	struct pg_store *s = PG(st);
	int rc;

	for (size_t i = 0; i < n; i++) {
		m[i].rcpt = 0;
		/* a repeat inside one request finds the row its twin wrote */
		rc = rcpt_check(s, sender, &m[i], mailbox_max);
		if (rc == REPEAT) {
			m[i].rcpt = 0;
			continue;
		}
		if (rc != 0) {
			if (rc > 0)
				*failed = i;
			return rc;
		}
		if ((rc = msg_insert(s, sender, sender_name, &m[i], now)) < 0)
			return -1;
		if (rc == 0) {
			/* another relay has just stored it: a repeat */
			m[i].rcpt = 0;
			if (sent_get(s->w, sender, m[i].client_id, &m[i].id) != 1)
				return -1;
		}
	}
	return 0;
}

static int pg_msgs_fetch(struct st_store *st, int64_t uid, int limit,
                         int (*fn)(void *ctx, int64_t id, const char *from,
                                   int64_t ts, const char *env, size_t len),
                         void *ctx)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	struct args a = { 0 };
	PGresult *r;
	int n = -1;

	a_i64(&a, uid);
	a_i64(&a, limit);
	if (c && run(c, Q_MSGS_FETCH, &a, &r) == 0) {
		int rows = PQntuples(r);

		for (n = 0; n < rows; n++) {
			int64_t id, ts;
			size_t len;
			const char *env;

			if (col_i64(r, n, 0, &id) < 0 || col_i64(r, n, 2, &ts) < 0) {
				n = -1;
				break;
			}
			env = col_str(r, n, 3, &len);
			if (fn(ctx, id, PQgetvalue(r, n, 1), ts, env, len) < 0) {
				n++;
				break;
			}
		}
		PQclear(r);
	}
	rd_put(s, c);
	return n;
}

static int pg_msgs_ack(struct st_store *st, int64_t uid, const int64_t *ids,
                       size_t n)
{
	struct pg_store *s = PG(st);
	struct st_buf b = { 0 };
	struct args a = { 0 };
	PGresult *r;
	int64_t gone = -1;

	if (!n)
		return 0;
	id_array(&b, ids, n);
	a_txt(&a, (const char *)b.data);
	a_i64(&a, uid);
	if (run(s->w, Q_MSG_ACK, &a, &r) == 0) {
		gone = affected(r);
		PQclear(r);
	}
	st_buf_free(&b);
	if (gone > 0)
		count(s, uid, -gone);
	return gone < 0 ? -1 : (int)gone;
}

/* ---- channels ---- */

static int pg_post_add(struct st_store *st, const char *channel,
                       const char *post, size_t len, int64_t retain,
                       int64_t *id)
{
	struct conn *c = PG(st)->w;
	struct args a = { 0 };
	int rc;

	/* held to COMMIT: post ids commit in the order they are taken */
	a_i64(&a, LOCK_POSTS);
	if (run_done(c, Q_POST_LOCK, &a) != 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a_str(&a, channel);
	a_bin(&a, post, len);
	if ((rc = scalar(c, Q_POST_INSERT, &a, id)) != 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a_str(&a, channel);
	a_i64(&a, retain);
	return run_done(c, Q_POST_TRIM, &a) == 0 ? 0 : -1;
}

static int pg_posts_fetch(struct st_store *st, const char *channel,
                          int64_t after, int limit,
                          int (*fn)(void *ctx, int64_t id, const char *post,
                                    size_t len),
                          void *ctx)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	struct args a = { 0 };
	PGresult *r;
	int n = -1;

	a_str(&a, channel);
	a_i64(&a, after);
	a_i64(&a, limit);
	if (c && run(c, Q_POSTS_FETCH, &a, &r) == 0) {
		int rows = PQntuples(r);

		for (n = 0; n < rows; n++) {
			int64_t id;
			size_t len;
			const char *p;

			if (col_i64(r, n, 0, &id) < 0) {
				n = -1;
				break;
			}
			p = col_str(r, n, 1, &len);
			if (fn(ctx, id, p, len) < 0) {
				n++;
				break;
			}
		}
		PQclear(r);
	}
	rd_put(s, c);
	return n;
}

/* ---- blobs ---- */

static int usage(struct conn *c, int64_t owner, int64_t *bytes)
{
	struct args a = { 0 };

	a_i64(&a, owner);
	return scalar(c, Q_BLOB_USAGE, &a, bytes) == 0 ? 0 : -1;
}

static int pg_blob_add(struct st_store *st, const char *id, int64_t owner,
                       int64_t size, int64_t now, int64_t quota)
{
	struct conn *c = PG(st)->w;
	struct args a = { 0 };
	int64_t used;

	/* one upload of this owner at a time, on every relay: exact quota */
	a_i64(&a, LOCK_QUOTA | owner);
	if (run_done(c, Q_QUOTA_LOCK, &a) != 0 || usage(c, owner, &used) < 0)
		return -1;
	if (used + size > quota)
		return ST_STORE_FULL;
	memset(&a, 0, sizeof(a));
	a_str(&a, id);
	a_i64(&a, owner);
	a_i64(&a, size);
	a_i64(&a, now);
	return run_done(c, Q_BLOB_INSERT, &a) == 0 ? 0 : -1;
}

static int pg_blob_usage(struct st_store *st, int64_t owner, int64_t *bytes)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	int rc = c ? usage(c, owner, bytes) : -1;

	rd_put(s, c);
	return rc;
}

static int pg_blob_get(struct st_store *st, const char *id, int64_t not_before,
                       int64_t *size)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	struct args a = { 0 };
	PGresult *r;
	int rc = -1;

	a_str(&a, id);
	a_i64(&a, not_before);
	if (c && run(c, Q_BLOB_GET, &a, &r) == 0) {
		rc = PQntuples(r) ? (col_i64(r, 0, 0, size) < 0 ? -1 : 0) :
		     ST_STORE_NOTFOUND;
		PQclear(r);
	}
	rd_put(s, c);
	return rc;
}

/* ---- upkeep ---- */

static int pg_sweep(struct st_store *st, int64_t now, int64_t cutoff,
                    void (*fn)(void *ctx, const char *blob), void *ctx)
{
	struct pg_store *s = PG(st);
	struct conn *c = s->w;
	struct args a = { 0 };
	PGresult *r;
	int64_t total = 0, n;

	a_i64(&a, cutoff);
	a_i64(&a, SWEEP_BATCH);
	if (run(c, Q_MSGS_SWEEP, &a, &r) != 0)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t rcpt;

		if (col_i64(r, i, 0, &rcpt) == 0)
			count(s, rcpt, -1);
	}
	total += PQntuples(r);
	PQclear(r);
	if (run(c, Q_BLOB_SWEEP, &a, &r) != 0)
		return -1;
	for (int i = 0; i < PQntuples(r); i++)
		fn(ctx, PQgetvalue(r, i, 0));
	total += PQntuples(r);
	PQclear(r);
	a.n = 1;
	if (run(c, Q_SENT_SWEEP, &a, &r) != 0)
		return -1;
	total += affected(r);
	PQclear(r);
	memset(&a, 0, sizeof(a));
	a_i64(&a, now);
	if (run(c, Q_SESS_SWEEP, &a, &r) != 0)
		return -1;
	n = affected(r);
	PQclear(r);
	if (n > 0 && announce_revoke(c) < 0)
		return -1;
	return (int)(total + n);
}

static int pg_stats(struct st_store *st, int64_t *queued, int64_t *blob_bytes,
                    int64_t *db_bytes)
{
	struct pg_store *s = PG(st);
	struct conn *c = rd_get(s);
	int rc = -1;

	if (c && scalar(c, Q_STAT_MSGS, NULL, queued) == 0 &&
	    scalar(c, Q_STAT_BLOBS, NULL, blob_bytes) == 0 &&
	    scalar(c, Q_STAT_DB, NULL, db_bytes) == 0)
		rc = 0;
	rd_put(s, c);
	return rc;
}

/* ---- the listener ---- */

/* Wait up to ms for the stop pipe: 1 when stopping. */
static int stop_wait(struct pg_store *s, int fd, int ms)
{
	struct pollfd p[2] = {
		{ .fd = s->stop_pipe[0], .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};

	if (poll(p, fd >= 0 ? 2 : 1, ms) < 0 && errno != EINTR)
		return 1;
	return (p[0].revents & POLLIN) != 0;
}

static void heard(struct pg_store *s, const PGnotify *n)
{
	const struct st_store_hooks *h = &s->hooks;
	char *end;
	uint64_t key;

	/* our own writer's commits were woken here already */
	if (n->be_pid == atomic_load(&s->writer_pid))
		return;
	if (n->extra[0] == 'r' && !n->extra[1]) {
		h->revoke(h->ctx);
	} else if (n->extra[0] == 'w') {
		errno = 0;
		key = strtoull(n->extra + 1, &end, 10);
		if (!errno && end != n->extra + 1 && !*end)
			h->wake(h->ctx, key);
	}
}

static void *listener(void *arg)
{
	struct pg_store *s = arg;
	const struct st_store_hooks *h = &s->hooks;
	PGconn *pg = NULL;
	PGnotify *n;
	int lost = 0;

	for (;;) {
		if (!pg) {
			if ((pg = pg_connect(s)) &&
			    exec_simple(pg, "LISTEN " CHANNEL) < 0) {
				PQfinish(pg);
				pg = NULL;
			}
			if (!pg) {
				if (!lost)
					st_warn("%s", st_errmsg());
				lost = 1;
				if (stop_wait(s, -1, BACKOFF_MIN_MS * 5))
					break;
				continue;
			}
			if (lost)
				st_warn("database: listening again");
			lost = 0;
			/* announcements may have been missed: look again */
			h->revoke(h->ctx);
			h->all(h->ctx);
		}
		if (stop_wait(s, PQsocket(pg), 1000))
			break;
		if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK) {
			PQfinish(pg);
			pg = NULL;
			h->revoke(h->ctx);
			h->all(h->ctx);
			continue;
		}
		while ((n = PQnotifies(pg))) {
			heard(s, n);
			PQfreemem(n);
		}
	}
	PQfinish(pg);
	return NULL;
}

static int pg_listen(struct st_store *st, const struct st_store_hooks *h)
{
	struct pg_store *s = PG(st);

	if (!h) {
		listen_stop(s);
		return 0;
	}
	if (s->listening)
		return 0;
	s->hooks = *h;
	if (pipe(s->stop_pipe) < 0)
		return st_error(ST_EX_UNAVAILABLE, "pipe:");
	if (pthread_create(&s->listener, NULL, listener, s) != 0)
		return st_error(ST_EX_UNAVAILABLE, "cannot start the listener "
		                "thread");
	s->listening = 1;
	return 0;
}

static void listen_stop(struct pg_store *s)
{
	if (s->listening) {
		if (write(s->stop_pipe[1], "x", 1) < 0)
			st_warn("cannot stop the listener: %s", strerror(errno));
		pthread_join(s->listener, NULL);
		s->listening = 0;
	}
	if (s->stop_pipe[0] >= 0) {
		close(s->stop_pipe[0]);
		close(s->stop_pipe[1]);
		s->stop_pipe[0] = s->stop_pipe[1] = -1;
	}
}

static const struct st_store_ops pg_ops = {
	.close = pg_close,
	.shared = pg_shared,
	.conflict = pg_conflict,
	.notify = pg_notify,
	.listen = pg_listen,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.save = pg_save,
	.release = pg_release,
	.undo = pg_undo,
	.user_create = pg_user_create,
	.user_delete = pg_user_delete,
	.user_get = pg_user_get,
	.user_get_id = pg_user_get_id,
	.users_list = pg_users_list,
	.session_add = pg_session_add,
	.session_get = pg_session_get,
	.session_touch = pg_session_touch,
	.session_delete = pg_session_delete,
	.keys_info = pg_keys_info,
	.keys_put = pg_keys_put,
	.bundle_take = pg_bundle_take,
	.msgs_post = pg_msgs_post,
	.msgs_fetch = pg_msgs_fetch,
	.msgs_ack = pg_msgs_ack,
	.post_add = pg_post_add,
	.posts_fetch = pg_posts_fetch,
	.blob_add = pg_blob_add,
	.blob_usage = pg_blob_usage,
	.blob_get = pg_blob_get,
	.sweep = pg_sweep,
	.stats = pg_stats,
};
