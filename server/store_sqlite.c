/*
 * store_sqlite.c - store.h on one SQLite file: WAL, synchronous=FULL, so a
 * COMMIT that returned is on disk.  Every statement is prepared once per
 * connection and reused; no SQL is ever built from a string.
 *
 * One write connection belongs to whichever thread holds the transaction
 * (the relay's writer thread); reads borrow a connection from a pool that
 * grows to the number of threads reading at once.
 *
 * Mailbox counters (the mailbox cap) live in memory, not in a row updated
 * by every post: a relay is the only one to use its file (SQLite's lock),
 * so they are counted from the messages at open and kept exact by every
 * write that adds or deletes messages.  A change made inside a transaction
 * is logged, and undone with the savepoint or the transaction it belongs
 * to.
 *
 * Checkpoints run on a thread of their own (see checkpointer()), not in the
 * commit that crosses SQLite's threshold.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_impl.h"

#define SCHEMA_VERSION 2
#define SWEEP_BATCH 1000

#define SQ(s) ((struct sq_store *)(s))

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS users ("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" created INTEGER NOT NULL,"
	" pw_hash BLOB NOT NULL, pw_salt BLOB NOT NULL,"
	" pw_m INTEGER NOT NULL, pw_t INTEGER NOT NULL, pw_p INTEGER NOT NULL,"
	" ik_ed BLOB NOT NULL, ik_x BLOB NOT NULL, ik_bind BLOB NOT NULL,"
	" ik_hash BLOB NOT NULL, spk_id INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS spks ("
	" user_id INTEGER NOT NULL, id INTEGER NOT NULL, pub BLOB NOT NULL,"
	" sig BLOB NOT NULL, created INTEGER NOT NULL,"
	" PRIMARY KEY (user_id, id)) WITHOUT ROWID;"
	/* a handed-out OPK keeps its row with pub NULL: ids are never reused */
	"CREATE TABLE IF NOT EXISTS opks ("
	" user_id INTEGER NOT NULL, id INTEGER NOT NULL, pub BLOB,"
	" PRIMARY KEY (user_id, id)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS opks_free ON opks (user_id, id)"
	" WHERE pub IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS sessions ("
	" hash BLOB PRIMARY KEY, user_id INTEGER NOT NULL,"
	" expires INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);"
	"CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);"
	/* AUTOINCREMENT: an acked id is never handed out again */
	"CREATE TABLE IF NOT EXISTS messages ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, rcpt INTEGER NOT NULL,"
	" sender TEXT NOT NULL, ts INTEGER NOT NULL, envelope TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS messages_rcpt ON messages (rcpt, id);"
	"CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);"
	/* outlives the message so a resend after the ack is still a repeat */
	"CREATE TABLE IF NOT EXISTS sent ("
	" sender INTEGER NOT NULL, client_id BLOB NOT NULL,"
	" msg_id INTEGER NOT NULL, ts INTEGER NOT NULL,"
	" PRIMARY KEY (sender, client_id)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sent_ts ON sent (ts);"
	"CREATE TABLE IF NOT EXISTS posts ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL,"
	" post TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS posts_channel ON posts (channel, id);"
	"CREATE TABLE IF NOT EXISTS blobs ("
	" id TEXT PRIMARY KEY, owner INTEGER NOT NULL, size INTEGER NOT NULL,"
	" created INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS blobs_owner ON blobs (owner);"
	"CREATE INDEX IF NOT EXISTS blobs_created ON blobs (created);";

/* Version 1 kept each mailbox's count in users.queued. */
static const char migrate_2[] =
	"BEGIN IMMEDIATE;"
	"ALTER TABLE users DROP COLUMN queued;"
	"PRAGMA user_version=2;"
	"COMMIT;";

enum q {
	Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_SAVE, Q_RELEASE, Q_UNDO,
	Q_USER_BY_NAME, Q_USER_BY_ID, Q_USER_INSERT, Q_USER_DELETE, Q_USERS,
	Q_SPK_GET, Q_SPK_INSERT, Q_SPK_SET, Q_SPKS_DELETE,
	Q_OPK_INSERT, Q_OPK_COUNT, Q_OPK_FIRST, Q_OPK_TAKE, Q_OPKS_DELETE,
	Q_SESS_INSERT, Q_SESS_GET, Q_SESS_TOUCH, Q_SESS_DELETE,
	Q_SESS_DELETE_USER, Q_SESS_SWEEP,
	Q_RCPT, Q_SENT_GET, Q_SENT_INSERT, Q_MSG_INSERT, Q_QUEUED,
	Q_MSGS_FETCH, Q_MSG_ACK, Q_MSGS_DELETE_USER, Q_SENT_DELETE_USER,
	Q_MSGS_SWEEP, Q_SENT_SWEEP,
	Q_POST_INSERT, Q_POST_TRIM, Q_POSTS_FETCH,
	Q_BLOB_INSERT, Q_BLOB_USAGE, Q_BLOB_GET, Q_BLOB_SWEEP,
	Q_STAT_MSGS, Q_STAT_BLOBS, Q_STAT_PAGES, Q_STAT_PAGESIZE,
	Q_COUNT
};

#define USER_COLS "id, name, created, ik_ed, ik_x, ik_bind, pw_hash, " \
	"pw_salt, pw_m, pw_t, pw_p, spk_id FROM users"

static const char *const sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_SAVE] = "SAVEPOINT job",
	[Q_RELEASE] = "RELEASE job",
	[Q_UNDO] = "ROLLBACK TO job",
	[Q_USER_BY_NAME] = "SELECT " USER_COLS " WHERE name = ?1",
	[Q_USER_BY_ID] = "SELECT " USER_COLS " WHERE id = ?1",
	[Q_USER_INSERT] = "INSERT INTO users (name, created, pw_hash, pw_salt,"
		" pw_m, pw_t, pw_p, ik_ed, ik_x, ik_bind, ik_hash, spk_id)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[Q_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
	/* names use only [a-z0-9._-], all below char(127) */
	[Q_USERS] = "SELECT name, created FROM users WHERE name >= ?1"
		" AND name < ?1 || char(127) ORDER BY name LIMIT ?2",
	[Q_SPK_GET] = "SELECT pub, sig, created FROM spks"
		" WHERE user_id = ?1 AND id = ?2",
	[Q_SPK_INSERT] = "INSERT INTO spks (user_id, id, pub, sig, created)"
		" VALUES (?1, ?2, ?3, ?4, ?5)",
	[Q_SPK_SET] = "UPDATE users SET spk_id = ?2 WHERE id = ?1",
	[Q_SPKS_DELETE] = "DELETE FROM spks WHERE user_id = ?1",
	[Q_OPK_INSERT] = "INSERT INTO opks (user_id, id, pub) VALUES (?1, ?2, ?3)",
	[Q_OPK_COUNT] = "SELECT count(*) FROM opks"
		" WHERE user_id = ?1 AND pub IS NOT NULL",
	[Q_OPK_FIRST] = "SELECT id, pub FROM opks"
		" WHERE user_id = ?1 AND pub IS NOT NULL ORDER BY id LIMIT 1",
	[Q_OPK_TAKE] = "UPDATE opks SET pub = NULL WHERE user_id = ?1 AND id = ?2",
	[Q_OPKS_DELETE] = "DELETE FROM opks WHERE user_id = ?1",
	[Q_SESS_INSERT] = "INSERT INTO sessions (hash, user_id, expires)"
		" VALUES (?1, ?2, ?3)",
	[Q_SESS_GET] = "SELECT s.user_id, u.name, s.expires FROM sessions s"
		" JOIN users u ON u.id = s.user_id"
		" WHERE s.hash = ?1 AND s.expires > ?2",
	[Q_SESS_TOUCH] = "UPDATE sessions SET expires = ?2 WHERE hash = ?1",
	[Q_SESS_DELETE] = "DELETE FROM sessions WHERE hash = ?1",
	[Q_SESS_DELETE_USER] = "DELETE FROM sessions WHERE user_id = ?1",
	[Q_SESS_SWEEP] = "DELETE FROM sessions WHERE expires <= ?1",
	[Q_RCPT] = "SELECT id, ik_hash FROM users WHERE name = ?1",
	[Q_SENT_GET] = "SELECT msg_id FROM sent"
		" WHERE sender = ?1 AND client_id = ?2",
	[Q_SENT_INSERT] = "INSERT INTO sent (sender, client_id, msg_id, ts)"
		" VALUES (?1, ?2, ?3, ?4)",
	[Q_MSG_INSERT] = "INSERT INTO messages (rcpt, sender, ts, envelope)"
		" VALUES (?1, ?2, ?3, ?4)",
	[Q_QUEUED] = "SELECT rcpt, count(*) FROM messages GROUP BY rcpt",
	[Q_MSGS_FETCH] = "SELECT id, sender, ts, envelope FROM messages"
		" WHERE rcpt = ?1 ORDER BY id LIMIT ?2",
	[Q_MSG_ACK] = "DELETE FROM messages WHERE id = ?1 AND rcpt = ?2",
	[Q_MSGS_DELETE_USER] = "DELETE FROM messages WHERE rcpt = ?1",
	[Q_SENT_DELETE_USER] = "DELETE FROM sent WHERE sender = ?1",
	[Q_MSGS_SWEEP] = "DELETE FROM messages WHERE id IN (SELECT id FROM"
		" messages WHERE ts < ?1 LIMIT ?2) RETURNING rcpt",
	[Q_SENT_SWEEP] = "DELETE FROM sent WHERE ts < ?1",
	[Q_POST_INSERT] = "INSERT INTO posts (channel, post) VALUES (?1, ?2)",
	[Q_POST_TRIM] = "DELETE FROM posts WHERE channel = ?1 AND id <= (SELECT"
		" id FROM posts WHERE channel = ?1 ORDER BY id DESC"
		" LIMIT 1 OFFSET ?2)",
	[Q_POSTS_FETCH] = "SELECT id, post FROM posts"
		" WHERE channel = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
	[Q_BLOB_INSERT] = "INSERT INTO blobs (id, owner, size, created)"
		" VALUES (?1, ?2, ?3, ?4)",
	[Q_BLOB_USAGE] = "SELECT coalesce(sum(size), 0) FROM blobs"
		" WHERE owner = ?1",
	[Q_BLOB_GET] = "SELECT size FROM blobs WHERE id = ?1 AND created > ?2",
	[Q_BLOB_SWEEP] = "DELETE FROM blobs WHERE id IN (SELECT id FROM blobs"
		" WHERE created <= ?1 LIMIT ?2) RETURNING id",
	[Q_STAT_MSGS] = "SELECT count(*) FROM messages",
	[Q_STAT_BLOBS] = "SELECT coalesce(sum(size), 0) FROM blobs",
	[Q_STAT_PAGES] = "PRAGMA page_count",
	[Q_STAT_PAGESIZE] = "PRAGMA page_size",
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *q[Q_COUNT];
	struct conn *next;
};

/* A mailbox's count (open addressing on uid; 0 marks a free slot). */
struct count {
	int64_t uid, n;
};

enum { CK_IDLE, CK_RUN, CK_TAIL };

struct sq_store {
	struct st_store base;
	char *path;
	struct conn *w;         /* the write connection */
	/* the checkpointer: its thread, its connection, what it is at */
	pthread_t ck_thread;
	int ck_started, ck_stop;
	pthread_mutex_t ck_mu;
	pthread_cond_t ck_cv;
	struct conn *ck;
	atomic_int ck_state, ck_done;   /* ck_done: frames copied */
	int ck_pages, ck_restart;
	pthread_mutex_t mu;     /* guards pool */
	struct conn *pool;      /* idle read connections */
	/* the writer's alone, like w */
	struct count *counts;
	size_t ncounts, capcounts;      /* used slots, slots (a power of 2) */
	struct count *log;              /* the transaction's changes */
	size_t nlog, caplog, mark;      /* mark: where the savepoint began */
};

static int fault(sqlite3 *db, int rc)
{
	const char *m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_FULL:
		return st_error(ST_EX_CANTCREAT, "database: %s", m);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return st_error(ST_EX_TEMPFAIL, "database: %s", m);
	default:
		return st_error(ST_EX_UNAVAILABLE, "database: %s", m);
	}
}

static int exec(sqlite3 *db, const char *s)
{
	int rc = sqlite3_exec(db, s, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fault(db, rc);
}

/*
 * ---- the WAL's writes, gathered ----
 *
 * SQLite writes each WAL frame with two pwrite()s, its 24-byte header and
 * then its page, one after the other, and syncs once at COMMIT: with every
 * post touching pages of its own (the recipient's index entry, the sent
 * record), that was five or six system calls a message.  The "st-wal" VFS
 * is the default one, except that a WAL file keeps consecutive writes in a
 * buffer and hands them to the file in one write before anything that must
 * see them: a sync (so COMMIT still returns only once its frames are on
 * disk), a read, a size query, a truncation, a write elsewhere, a close.
 * Other connections read only frames a COMMIT made visible, after its sync.
 */
#define WAL_BUF (1u << 20)
/* the unix VFS writes at most 128 KiB - 1 a call (it masks the length) */
#define WAL_CHUNK 0x1f000

struct wfile {
	sqlite3_file base;
	sqlite3_file *real;             /* the default VFS's file, after us */
	unsigned char *buf;
	size_t len, cap;
	sqlite3_int64 off;              /* the file offset of buf[0] */
};

#define WF(f) ((struct wfile *)(f))

static sqlite3_vfs *vfs_real;
static sqlite3_vfs vfs_wal;
static sqlite3_io_methods wal_io;

static int wal_flush(sqlite3_file *f)
{
	struct wfile *w = WF(f);
	int rc = SQLITE_OK;

	for (size_t i = 0, n; rc == SQLITE_OK && i < w->len; i += n) {
		n = w->len - i < WAL_CHUNK ? w->len - i : WAL_CHUNK;
		rc = w->real->pMethods->xWrite(w->real, w->buf + i, (int)n,
		                               w->off + (sqlite3_int64)i);
	}
	w->len = 0;
	return rc;
}

static int wal_close(sqlite3_file *f)
{
	int rc = wal_flush(f), rc2 = WF(f)->real->pMethods->xClose(WF(f)->real);

	free(WF(f)->buf);
	WF(f)->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	int rc = wal_flush(f);

	return rc != SQLITE_OK ? rc :
	       WF(f)->real->pMethods->xRead(WF(f)->real, p, n, off);
}

static int wal_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct wfile *w = WF(f);
	int rc;

	if (w->len && (off != w->off + (sqlite3_int64)w->len ||
	               w->len + (size_t)n > WAL_BUF) &&
	    (rc = wal_flush(f)) != SQLITE_OK)
		return rc;
	if ((size_t)n > WAL_CHUNK)
		return w->real->pMethods->xWrite(w->real, p, n, off);
	if (!w->len)
		w->off = off;
	if (w->len + (size_t)n > w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64 * 1024;
		while (w->cap < w->len + (size_t)n)
			w->cap *= 2;
		w->buf = st_realloc(w->buf, w->cap);
	}
	memcpy(w->buf + w->len, p, (size_t)n);
	w->len += (size_t)n;
	return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int rc = wal_flush(f);

	return rc != SQLITE_OK ? rc :
	       WF(f)->real->pMethods->xTruncate(WF(f)->real, size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
	int rc = wal_flush(f);

	return rc != SQLITE_OK ? rc :
	       WF(f)->real->pMethods->xSync(WF(f)->real, flags);
}

static int wal_size(sqlite3_file *f, sqlite3_int64 *size)
{
	int rc = wal_flush(f);

	return rc != SQLITE_OK ? rc :
	       WF(f)->real->pMethods->xFileSize(WF(f)->real, size);
}

static int wal_lock(sqlite3_file *f, int l)
{
	return WF(f)->real->pMethods->xLock(WF(f)->real, l);
}

static int wal_unlock(sqlite3_file *f, int l)
{
	return WF(f)->real->pMethods->xUnlock(WF(f)->real, l);
}

static int wal_reserved(sqlite3_file *f, int *out)
{
	return WF(f)->real->pMethods->xCheckReservedLock(WF(f)->real, out);
}

static int wal_control(sqlite3_file *f, int op, void *arg)
{
	int rc = wal_flush(f);

	return rc != SQLITE_OK ? rc :
	       WF(f)->real->pMethods->xFileControl(WF(f)->real, op, arg);
}

static int wal_sector(sqlite3_file *f)
{
	return WF(f)->real->pMethods->xSectorSize(WF(f)->real);
}

static int wal_device(sqlite3_file *f)
{
	return WF(f)->real->pMethods->xDeviceCharacteristics(WF(f)->real);
}

/* A WAL file gets the buffer; any other file is the default VFS's own. */
static int wal_open(sqlite3_vfs *v, const char *name, sqlite3_file *f,
                    int flags, int *out)
{
	struct wfile *w = WF(f);
	int rc;

	if (!(flags & SQLITE_OPEN_WAL))
		return vfs_real->xOpen(vfs_real, name, f, flags, out);
	memset(w, 0, sizeof(*w));
	w->real = (sqlite3_file *)(w + 1);
	rc = vfs_real->xOpen(vfs_real, name, w->real, flags, out);
	if (rc == SQLITE_OK && w->real->pMethods)
		w->base.pMethods = &wal_io;
	return rc;
}

static void vfs_init(void)
{
	if (!(vfs_real = sqlite3_vfs_find(NULL)))
		return;
	vfs_wal = *vfs_real;
	vfs_wal.szOsFile = (int)sizeof(struct wfile) + vfs_real->szOsFile;
	vfs_wal.zName = "st-wal";
	vfs_wal.pNext = NULL;
	vfs_wal.xOpen = wal_open;
	wal_io = (sqlite3_io_methods){
		.iVersion = 1,
		.xClose = wal_close,
		.xRead = wal_read,
		.xWrite = wal_write,
		.xTruncate = wal_truncate,
		.xSync = wal_sync,
		.xFileSize = wal_size,
		.xLock = wal_lock,
		.xUnlock = wal_unlock,
		.xCheckReservedLock = wal_reserved,
		.xFileControl = wal_control,
		.xSectorSize = wal_sector,
		.xDeviceCharacteristics = wal_device,
	};
	if (sqlite3_vfs_register(&vfs_wal, 0) != SQLITE_OK)
		vfs_real = NULL;
}

static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;

static struct conn *conn_open(const char *path, int writer)
{
	struct conn *c = st_calloc(1, sizeof(*c));
	int rc;

	pthread_once(&vfs_once, vfs_init);
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE |
	                     SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                     vfs_real ? "st-wal" : NULL);
	if (rc != SQLITE_OK) {
		st_error(ST_EX_CANTCREAT, "cannot open database %s: %s", path,
		         c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* a locked database answers 503 after this, never hangs */
	sqlite3_busy_timeout(c->db, 5000);
	if (exec(c->db, "PRAGMA synchronous=FULL") < 0)
		goto fail;
	if (writer && exec(c->db, "PRAGMA journal_mode=WAL") < 0)
		goto fail;
	/* the writer's pages stay valid across its own commits: keep more
	 * of the mailbox and idempotency indexes it touches (16 MiB) */
	if (writer && exec(c->db, "PRAGMA cache_size=-16384") < 0)
		goto fail;
	return c;
fail:
	sqlite3_close(c->db);
	free(c);
	return NULL;
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(c->q[i]);
	sqlite3_close(c->db);
	free(c);
}

static sqlite3_stmt *prep(struct conn *c, enum q q)
{
	int rc;

	if (c->q[q])
		return c->q[q];
	rc = sqlite3_prepare_v3(c->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT,
	                        &c->q[q], NULL);
	if (rc != SQLITE_OK) {
		fault(c->db, rc);
		return NULL;
	}
	return c->q[q];
}

/* Run a statement that returns no rows. */
static int step_done(struct conn *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return ST_STORE_ID_REUSED;
	return fault(c->db, rc);
}

/* Step once: 1 for a row, 0 when done (the statement is reset), -1. */
static int step_row(struct conn *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fault(c->db, rc);
}

/* ---- mailbox counters ---- */

static struct count *slot(struct count *t, size_t cap, int64_t uid)
{
	uint64_t h = (uint64_t)uid * 0x9e3779b97f4a7c15ULL;
	size_t i = (size_t)(h ^ h >> 32) & (cap - 1);

	while (t[i].uid && t[i].uid != uid)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static int64_t queued(struct st_store *s, int64_t uid)
{
	return SQ(s)->capcounts ?
	       slot(SQ(s)->counts, SQ(s)->capcounts, uid)->n : 0;
}

static void counts_grow(struct st_store *s)
{
	size_t cap = SQ(s)->capcounts ? SQ(s)->capcounts * 2 : 1024;
	struct count *t = st_calloc(cap, sizeof(*t));

	for (size_t i = 0; i < SQ(s)->capcounts; i++)
		if (SQ(s)->counts[i].uid)
			*slot(t, cap, SQ(s)->counts[i].uid) = SQ(s)->counts[i];
	free(SQ(s)->counts);
	SQ(s)->counts = t;
	SQ(s)->capcounts = cap;
}

static void counts_add(struct st_store *s, int64_t uid, int64_t n)
{
	struct count *c;

	if (2 * (SQ(s)->ncounts + 1) > SQ(s)->capcounts)
		counts_grow(s);
	c = slot(SQ(s)->counts, SQ(s)->capcounts, uid);
	if (!c->uid) {
		c->uid = uid;
		SQ(s)->ncounts++;
	}
	c->n += n;
}

/* Add n to uid's count; logged when inside a transaction. */
static void count(struct st_store *s, int64_t uid, int64_t n)
{
	struct sq_store *q = SQ(s);

	if (!n)
		return;
	counts_add(s, uid, n);
	if (sqlite3_get_autocommit(q->w->db))
		return;
	if (q->nlog == q->caplog) {
		q->caplog = q->caplog ? q->caplog * 2 : 64;
		q->log = st_realloc(q->log, q->caplog * sizeof(*q->log));
	}
	q->log[q->nlog].uid = uid;
	q->log[q->nlog++].n = n;
}

/* Take back the logged changes after the first n. */
static void counts_undo(struct st_store *s, size_t n)
{
	while (SQ(s)->nlog > n) {
		struct count *d = &SQ(s)->log[--SQ(s)->nlog];

		counts_add(s, d->uid, -d->n);
	}
}

static int counts_load(struct st_store *s)
{
	sqlite3_stmt *st = prep(SQ(s)->w, Q_QUEUED);
	int rc;

	if (!st)
		return -1;
	while ((rc = step_row(SQ(s)->w, st)) == 1)
		counts_add(s, sqlite3_column_int64(st, 0),
		           sqlite3_column_int64(st, 1));
	return rc;
}

static const struct st_store_ops sq_ops;

/*
 * Checkpoints.  SQLite's own run in the commit that takes the WAL past a
 * thousand pages: that commit copies them all into the database and
 * fsyncs it while every post waiting for the next commit waits with it,
 * about one commit in thirty under load.  Here the writer's WAL hook only
 * wakes the checkpointer thread, which copies what is committed on a
 * connection of its own (PASSIVE: it blocks neither the writer nor the
 * readers, and SQLite's locks keep it consistent and crash-safe).
 *
 * The WAL starts again from its beginning only when a write transaction
 * begins with every frame in it copied, which a steady stream of commits
 * would never allow.  So once a pass is done (CK_TAIL), the writer copies
 * the few frames committed meanwhile itself, before its next BEGIN.
 */
#define CKPT_PAGES 2000
#define CKPT_RESTART 16384

static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
	struct sq_store *q = ctx;
	int done = atomic_load(&q->ck_done);

	(void)db;
	(void)name;
	if (atomic_load(&q->ck_state) != CK_IDLE)
		return SQLITE_OK;
	if (pages < done) {
		/* the WAL has started again */
		atomic_store(&q->ck_done, 0);
		done = 0;
	}
	if (pages - done >= q->ck_pages) {
		pthread_mutex_lock(&q->ck_mu);
		atomic_store(&q->ck_state, CK_RUN);
		pthread_cond_signal(&q->ck_cv);
		pthread_mutex_unlock(&q->ck_mu);
	}
	return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
	struct sq_store *q = arg;
	int rc, nlog, ndone, failing = 0;

	pthread_mutex_lock(&q->ck_mu);
	for (;;) {
		while (atomic_load(&q->ck_state) != CK_RUN && !q->ck_stop)
			pthread_cond_wait(&q->ck_cv, &q->ck_mu);
		if (q->ck_stop)
			break;
		pthread_mutex_unlock(&q->ck_mu);
		rc = sqlite3_wal_checkpoint_v2(q->ck->db, NULL,
		                               SQLITE_CHECKPOINT_PASSIVE, &nlog,
		                               &ndone);
		/* a failure says so once, and the next commit tries again */
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && !failing)
			fprintf(stderr, "%s: checkpoint of %s: %s\n",
			        st_progname(), q->path, sqlite3_errmsg(q->ck->db));
		failing = rc != SQLITE_OK && rc != SQLITE_BUSY;
		pthread_mutex_lock(&q->ck_mu);
		if (rc == SQLITE_OK && ndone >= 0)
			atomic_store(&q->ck_done, ndone);
		atomic_store(&q->ck_state, rc == SQLITE_OK &&
		             nlog >= q->ck_restart ? CK_TAIL : CK_IDLE);
	}
	pthread_mutex_unlock(&q->ck_mu);
	return NULL;
}

/* Before the writer's BEGIN: finish a pass the checkpointer has made. */
static void ckpt_tail(struct sq_store *q)
{
	int nlog, ndone;

	if (atomic_load(&q->ck_state) != CK_TAIL)
		return;
	/* a failure leaves the WAL as it is: the checkpointer tries again */
	if (sqlite3_wal_checkpoint_v2(q->w->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	                              &nlog, &ndone) == SQLITE_OK && ndone >= 0)
		atomic_store(&q->ck_done, ndone);
	atomic_store(&q->ck_state, CK_IDLE);
}

static int ckpt_start(struct sq_store *q)
{
	q->ck_pages = CKPT_PAGES;
	q->ck_restart = CKPT_RESTART;
	if (!(q->ck = conn_open(q->path, 0)))
		return -1;
	if (pthread_create(&q->ck_thread, NULL, checkpointer, q) != 0)
		return st_error(ST_EX_UNAVAILABLE, "cannot start the "
		                "checkpoint thread");
	q->ck_started = 1;
	sqlite3_wal_hook(q->w->db, wal_hook, q);
	return 0;
}

void st_store_sqlite_checkpoints(struct st_store *s, int pages, int restart)
{
	SQ(s)->ck_pages = pages;
	SQ(s)->ck_restart = restart;
}

static void ckpt_stop(struct sq_store *q)
{
	if (q->ck_started) {
		sqlite3_wal_hook(q->w->db, NULL, NULL);
		pthread_mutex_lock(&q->ck_mu);
		q->ck_stop = 1;
		pthread_cond_signal(&q->ck_cv);
		pthread_mutex_unlock(&q->ck_mu);
		pthread_join(q->ck_thread, NULL);
		q->ck_started = 0;
	}
	if (q->ck)
		conn_close(q->ck);
	q->ck = NULL;
}

struct st_store *st_store_sqlite_open(const char *path)
{
	struct st_store *s = st_calloc(1, sizeof(struct sq_store));
	int ver = 0;
	sqlite3_stmt *st;

	s->ops = &sq_ops;
	SQ(s)->path = st_strdup(path);
	pthread_mutex_init(&SQ(s)->mu, NULL);
	pthread_mutex_init(&SQ(s)->ck_mu, NULL);
	pthread_cond_init(&SQ(s)->ck_cv, NULL);
	if (!(SQ(s)->w = conn_open(path, 1)))
		goto fail;
	if (sqlite3_prepare_v2(SQ(s)->w->db, "PRAGMA user_version", -1, &st,
	                       NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			ver = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (ver == 0 && (exec(SQ(s)->w->db, schema) < 0 ||
	                 exec(SQ(s)->w->db, "PRAGMA user_version=2") < 0))
		goto fail;
	if (ver == 0)
		ver = SCHEMA_VERSION;
	if (ver == 1) {
		if (exec(SQ(s)->w->db, migrate_2) < 0) {
			sqlite3_exec(SQ(s)->w->db, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		ver = 2;
	}
	if (ver != SCHEMA_VERSION) {
		st_error(ST_EX_CONFIG, "%s: unknown schema version %d", path, ver);
		goto fail;
	}
	if (counts_load(s) < 0 || ckpt_start(SQ(s)) < 0)
		goto fail;
	return s;
fail:
	st_store_close(s);
	return NULL;
}

static void sq_close(struct st_store *s)
{
	struct conn *c;

	if (!s)
		return;
	ckpt_stop(SQ(s));
	while ((c = SQ(s)->pool)) {
		SQ(s)->pool = c->next;
		conn_close(c);
	}
	if (SQ(s)->w)
		conn_close(SQ(s)->w);
	pthread_mutex_destroy(&SQ(s)->mu);
	pthread_mutex_destroy(&SQ(s)->ck_mu);
	pthread_cond_destroy(&SQ(s)->ck_cv);
	free(SQ(s)->counts);
	free(SQ(s)->log);
	free(SQ(s)->path);
	free(s);
}

static struct conn *rd_get(struct st_store *s)
{
	struct conn *c;

	pthread_mutex_lock(&SQ(s)->mu);
	if ((c = SQ(s)->pool))
		SQ(s)->pool = c->next;
	pthread_mutex_unlock(&SQ(s)->mu);
	return c ? c : conn_open(SQ(s)->path, 0);
}

static void rd_put(struct st_store *s, struct conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&SQ(s)->mu);
	c->next = SQ(s)->pool;
	SQ(s)->pool = c;
	pthread_mutex_unlock(&SQ(s)->mu);
}

static int run(struct conn *c, enum q q)
{
	sqlite3_stmt *st = prep(c, q);

	return st ? step_done(c, st) : -1;
}

/* Copy a fixed-size blob column; a wrong size means a corrupt row. */
static int col_blob(sqlite3_stmt *st, int i, void *out, size_t n)
{
	if ((size_t)sqlite3_column_bytes(st, i) != n)
		return st_error(ST_EX_UNAVAILABLE, "database: corrupt key column");
	memcpy(out, sqlite3_column_blob(st, i), n);
	return 0;
}

#define BIND_BLOB(st, i, p, n) sqlite3_bind_blob(st, i, p, (int)(n), SQLITE_STATIC)
#define BIND_TEXT(st, i, p, n) sqlite3_bind_text(st, i, p, (int)(n), SQLITE_STATIC)

static int sq_begin(struct st_store *s)
{
	ckpt_tail(SQ(s));
	SQ(s)->nlog = SQ(s)->mark = 0;
	return run(SQ(s)->w, Q_BEGIN);
}

/* A failed COMMIT is followed by sq_rollback(), which takes the log back. */
static int sq_commit(struct st_store *s)
{
	if (run(SQ(s)->w, Q_COMMIT) < 0)
		return -1;
	SQ(s)->nlog = SQ(s)->mark = 0;
	return 0;
}

/* The counts go back even when SQLite rolled back on its own. */
static void sq_rollback(struct st_store *s)
{
	counts_undo(s, 0);
	SQ(s)->mark = 0;
	if (!sqlite3_get_autocommit(SQ(s)->w->db))
		run(SQ(s)->w, Q_ROLLBACK);
}

static int sq_save(struct st_store *s)
{
	SQ(s)->mark = SQ(s)->nlog;
	return run(SQ(s)->w, Q_SAVE);
}

static int sq_release(struct st_store *s)
{
	return run(SQ(s)->w, Q_RELEASE);
}

static int sq_undo(struct st_store *s)
{
	counts_undo(s, SQ(s)->mark);
	return run(SQ(s)->w, Q_UNDO) < 0 ? -1 : run(SQ(s)->w, Q_RELEASE);
}

/* ---- accounts and sessions ---- */

static int user_row(sqlite3_stmt *st, struct st_store_user *u)
{
	const unsigned char *name = sqlite3_column_text(st, 1);

	memset(u, 0, sizeof(*u));
	u->id = sqlite3_column_int64(st, 0);
	if (name)
		snprintf(u->name, sizeof(u->name), "%s", (const char *)name);
	u->created = sqlite3_column_int64(st, 2);
	if (col_blob(st, 3, u->ik.ed25519, 32) < 0 ||
	    col_blob(st, 4, u->ik.x25519, 32) < 0 ||
	    col_blob(st, 5, u->ik.bind, 64) < 0 ||
	    col_blob(st, 6, u->pw.hash, 32) < 0 ||
	    col_blob(st, 7, u->pw.salt, 16) < 0)
		return -1;
	u->pw.m = (uint32_t)sqlite3_column_int64(st, 8);
	u->pw.t = (uint32_t)sqlite3_column_int64(st, 9);
	u->pw.p = (uint32_t)sqlite3_column_int64(st, 10);
	u->spk_id = (uint32_t)sqlite3_column_int64(st, 11);
	return 0;
}

static int user_fetch(struct conn *c, enum q q, const char *name, int64_t uid,
                      struct st_store_user *u)
{
	sqlite3_stmt *st = prep(c, q);
	int rc;

	if (!st)
		return -1;
	if (name)
		BIND_TEXT(st, 1, name, strlen(name));
	else
		sqlite3_bind_int64(st, 1, uid);
	if ((rc = step_row(c, st)) <= 0)
		return rc < 0 ? -1 : ST_STORE_NOTFOUND;
	rc = user_row(st, u);
	sqlite3_reset(st);
	return rc;
}

static int sq_user_get(struct st_store *s, const char *name,
                       struct st_store_user *u)
{
	struct conn *c = rd_get(s);
	int rc = c ? user_fetch(c, Q_USER_BY_NAME, name, 0, u) : -1;

	rd_put(s, c);
	return rc;
}

static int sq_user_get_id(struct st_store *s, int64_t uid,
                          struct st_store_user *u)
{
	struct conn *c = rd_get(s);
	int rc = c ? user_fetch(c, Q_USER_BY_ID, NULL, uid, u) : -1;

	rd_put(s, c);
	return rc;
}

static int opks_add(struct conn *c, int64_t uid, const struct st_store_opk *o,
                    size_t n)
{
	sqlite3_stmt *st = prep(c, Q_OPK_INSERT);
	int rc;

	for (size_t i = 0; st && i < n; i++) {
		sqlite3_bind_int64(st, 1, uid);
		sqlite3_bind_int64(st, 2, o[i].id);
		BIND_BLOB(st, 3, o[i].pub, 32);
		if ((rc = step_done(c, st)) != 0)
			return rc;
	}
	return st ? 0 : -1;
}

static int spk_add(struct conn *c, int64_t uid, const struct st_store_spk *k)
{
	sqlite3_stmt *st = prep(c, Q_SPK_INSERT);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int64(st, 2, k->id);
	BIND_BLOB(st, 3, k->pub, 32);
	BIND_BLOB(st, 4, k->sig, 64);
	sqlite3_bind_int64(st, 5, k->created);
	if ((rc = step_done(c, st)) != 0)
		return rc;
	if (!(st = prep(c, Q_SPK_SET)))
		return -1;
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int64(st, 2, k->id);
	return step_done(c, st);
}

static int sq_user_create(struct st_store *s, struct st_store_user *u,
                          const struct st_store_spk *spk,
                          const struct st_store_opk *opks, size_t nopks)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st = prep(c, Q_USER_INSERT);
	unsigned char h[32];
	int rc;

	if (!st)
		return -1;
	st_store_ik_hash(&u->ik, h);
	BIND_TEXT(st, 1, u->name, strlen(u->name));
	sqlite3_bind_int64(st, 2, u->created);
	BIND_BLOB(st, 3, u->pw.hash, 32);
	BIND_BLOB(st, 4, u->pw.salt, 16);
	sqlite3_bind_int64(st, 5, u->pw.m);
	sqlite3_bind_int64(st, 6, u->pw.t);
	sqlite3_bind_int64(st, 7, u->pw.p);
	BIND_BLOB(st, 8, u->ik.ed25519, 32);
	BIND_BLOB(st, 9, u->ik.x25519, 32);
	BIND_BLOB(st, 10, u->ik.bind, 64);
	BIND_BLOB(st, 11, h, 16);
	sqlite3_bind_int64(st, 12, spk->id);
	if ((rc = step_done(c, st)) != 0)
		return rc == ST_STORE_ID_REUSED ? ST_STORE_TAKEN : rc;
	u->id = sqlite3_last_insert_rowid(c->db);
	if ((rc = spk_add(c, u->id, spk)) != 0)
		return rc;
	return opks_add(c, u->id, opks, nopks);
}

static int by_uid(struct conn *c, enum q q, int64_t uid)
{
	sqlite3_stmt *st = prep(c, q);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, uid);
	return step_done(c, st);
}

static int sq_user_delete(struct st_store *s, int64_t uid)
{
	static const enum q qs[] = {
		Q_SESS_DELETE_USER, Q_SPKS_DELETE, Q_OPKS_DELETE,
		Q_MSGS_DELETE_USER, Q_SENT_DELETE_USER, Q_USER_DELETE,
	};

	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		if (by_uid(SQ(s)->w, qs[i], uid) != 0)
			return -1;
	count(s, uid, -queued(s, uid));
	return 0;
}

static int sq_users_list(struct st_store *s, const char *prefix, int limit,
                         int (*fn)(void *ctx, const char *name, int64_t created),
                         void *ctx)
{
	struct conn *c = rd_get(s);
	sqlite3_stmt *st = c ? prep(c, Q_USERS) : NULL;
	int rc, n = 0;

	if (!st) {
		rd_put(s, c);
		return -1;
	}
	BIND_TEXT(st, 1, prefix, strlen(prefix));
	sqlite3_bind_int(st, 2, limit);
	while ((rc = step_row(c, st)) == 1) {
		n++;
		if (fn(ctx, (const char *)sqlite3_column_text(st, 0),
		       sqlite3_column_int64(st, 1)) < 0) {
			sqlite3_reset(st);
			break;
		}
	}
	rd_put(s, c);
	return rc < 0 ? -1 : n;
}

static int sq_session_add(struct st_store *s, const unsigned char hash[32],
                          int64_t uid, int64_t expires)
{
	sqlite3_stmt *st = prep(SQ(s)->w, Q_SESS_INSERT);

	if (!st)
		return -1;
	BIND_BLOB(st, 1, hash, 32);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, expires);
	return step_done(SQ(s)->w, st) == 0 ? 0 : -1;
}

static int sq_session_get(struct st_store *s, const unsigned char hash[32],
                          int64_t now, int64_t *uid,
                          char name[ST_USER_MAX + 1], int64_t *expires)
{
	struct conn *c = rd_get(s);
	sqlite3_stmt *st = c ? prep(c, Q_SESS_GET) : NULL;
	int rc;

	if (!st) {
		rd_put(s, c);
		return -1;
	}
	BIND_BLOB(st, 1, hash, 32);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = step_row(c, st)) == 1) {
		*uid = sqlite3_column_int64(st, 0);
		snprintf(name, ST_USER_MAX + 1, "%s",
		         (const char *)sqlite3_column_text(st, 1));
		*expires = sqlite3_column_int64(st, 2);
		sqlite3_reset(st);
		rc = 0;
	} else if (rc == 0) {
		rc = ST_STORE_NOTFOUND;
	}
	rd_put(s, c);
	return rc;
}

static int sq_session_touch(struct st_store *s, const unsigned char hash[32],
                            int64_t expires)
{
	sqlite3_stmt *st = prep(SQ(s)->w, Q_SESS_TOUCH);

	if (!st)
		return -1;
	BIND_BLOB(st, 1, hash, 32);
	sqlite3_bind_int64(st, 2, expires);
	return step_done(SQ(s)->w, st) == 0 ? 0 : -1;
}

static int sq_session_delete(struct st_store *s, const unsigned char hash[32])
{
	sqlite3_stmt *st = prep(SQ(s)->w, Q_SESS_DELETE);

	if (!st)
		return -1;
	BIND_BLOB(st, 1, hash, 32);
	return step_done(SQ(s)->w, st) == 0 ? 0 : -1;
}

/* ---- keys ---- */

static int spk_get(struct conn *c, int64_t uid, uint32_t id,
                   struct st_store_spk *k)
{
	sqlite3_stmt *st = prep(c, Q_SPK_GET);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int64(st, 2, id);
	if ((rc = step_row(c, st)) <= 0)
		return rc < 0 ? -1 : ST_STORE_NOTFOUND;
	k->id = id;
	rc = col_blob(st, 0, k->pub, 32) < 0 || col_blob(st, 1, k->sig, 64) < 0
	     ? -1 : 0;
	k->created = sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	return rc;
}

static int opk_count(struct conn *c, int64_t uid, int64_t *n)
{
	sqlite3_stmt *st = prep(c, Q_OPK_COUNT);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, uid);
	if ((rc = step_row(c, st)) <= 0)
		return -1;
	*n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

static int sq_keys_info(struct st_store *s, int64_t uid, int64_t *nopks,
                        struct st_store_spk *spk)
{
	struct conn *c = rd_get(s);
	struct st_store_user u;
	int rc = -1;

	if (c && (rc = user_fetch(c, Q_USER_BY_ID, NULL, uid, &u)) == 0 &&
	    (rc = opk_count(c, uid, nopks)) == 0)
		rc = spk_get(c, uid, u.spk_id, spk);
	rd_put(s, c);
	return rc;
}

static int sq_keys_put(struct st_store *s, int64_t uid,
                       const struct st_store_spk *spk,
                       const struct st_store_opk *opks, size_t n, int64_t max)
{
	struct conn *c = SQ(s)->w;
	struct st_store_spk old;
	int64_t have;
	int rc;

	if (spk) {
		rc = spk_get(c, uid, spk->id, &old);
		if (rc < 0)
			return -1;
		if (rc == 0 && (memcmp(old.pub, spk->pub, 32) ||
		                memcmp(old.sig, spk->sig, 64)))
			return ST_STORE_ID_REUSED;
		if (rc == 0) {
			/* the same key again: make it current, nothing new */
			sqlite3_stmt *st = prep(c, Q_SPK_SET);

			if (!st)
				return -1;
			sqlite3_bind_int64(st, 1, uid);
			sqlite3_bind_int64(st, 2, spk->id);
			if (step_done(c, st) != 0)
				return -1;
		} else if ((rc = spk_add(c, uid, spk)) != 0) {
			return rc;
		}
	}
	if (!n)
		return 0;
	if (opk_count(c, uid, &have) < 0)
		return -1;
	if (have + (int64_t)n > max)
		return ST_STORE_TOO_MANY;
	return opks_add(c, uid, opks, n);
}

static int sq_bundle_take(struct st_store *s, const char *name,
                          struct st_store_user *u, struct st_store_spk *spk,
                          struct st_store_opk *opk, int *has_opk)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st;
	int rc;

	*has_opk = 0;
	if ((rc = user_fetch(c, Q_USER_BY_NAME, name, 0, u)) != 0 ||
	    (rc = spk_get(c, u->id, u->spk_id, spk)) != 0)
		return rc;
	if (!(st = prep(c, Q_OPK_FIRST)))
		return -1;
	sqlite3_bind_int64(st, 1, u->id);
	if ((rc = step_row(c, st)) <= 0)
		return rc;
	opk->id = (uint32_t)sqlite3_column_int64(st, 0);
	rc = col_blob(st, 1, opk->pub, 32);
	sqlite3_reset(st);
	if (rc < 0 || !(st = prep(c, Q_OPK_TAKE)))
		return -1;
	sqlite3_bind_int64(st, 1, u->id);
	sqlite3_bind_int64(st, 2, opk->id);
	if (step_done(c, st) != 0)
		return -1;
	*has_opk = 1;
	return 0;
}

/* ---- mailbox ---- */

/* A repeated (sender, client_id): 1 with its id, 0 when new. */
static int sent_get(struct conn *c, int64_t sender, const unsigned char id[16],
                    int64_t *msg)
{
	sqlite3_stmt *st = prep(c, Q_SENT_GET);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, sender);
	BIND_BLOB(st, 2, id, 16);
	if ((rc = step_row(c, st)) == 1) {
		*msg = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	return rc;
}

static int rcpt_check(struct st_store *s, const struct st_store_msg *m,
                      int64_t max, int64_t *uid)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st = prep(c, Q_RCPT);
	int rc;

	if (!st)
		return -1;
	BIND_TEXT(st, 1, m->to, strlen(m->to));
	if ((rc = step_row(c, st)) <= 0)
		return rc < 0 ? -1 : ST_STORE_NOTFOUND;
	*uid = sqlite3_column_int64(st, 0);
	if (sqlite3_column_bytes(st, 1) != 16 ||
	    memcmp(sqlite3_column_blob(st, 1), m->to_ik, 16))
		rc = ST_STORE_IDENTITY;
	else if (queued(s, *uid) >= max)
		rc = ST_STORE_FULL;
	else
		rc = 0;
	sqlite3_reset(st);
	return rc;
}

static int msg_insert(struct st_store *s, int64_t sender, const char *from,
                      struct st_store_msg *m, int64_t now)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st = prep(c, Q_MSG_INSERT);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, m->rcpt);
	BIND_TEXT(st, 2, from, strlen(from));
	sqlite3_bind_int64(st, 3, now);
	BIND_TEXT(st, 4, m->envelope, m->envlen);
	if (step_done(c, st) != 0)
		return -1;
	m->id = sqlite3_last_insert_rowid(c->db);
	if (!(st = prep(c, Q_SENT_INSERT)))
		return -1;
	sqlite3_bind_int64(st, 1, sender);
	BIND_BLOB(st, 2, m->client_id, 16);
	sqlite3_bind_int64(st, 3, m->id);
	sqlite3_bind_int64(st, 4, now);
	if (step_done(c, st) != 0)
		return -1;
	count(s, m->rcpt, 1);
	return 0;
}

static int sq_msgs_post(struct st_store *s, int64_t sender,
                        const char *sender_name, struct st_store_msg *m,
                        size_t n, int64_t now, int64_t mailbox_max,
                        size_t *failed)
{
	struct conn *c = SQ(s)->w;
	int rc;

	for (size_t i = 0; i < n; i++) {
		m[i].rcpt = 0;
		/* a repeat inside one request finds the row its twin wrote */
		if ((rc = sent_get(c, sender, m[i].client_id, &m[i].id)) < 0)
			return -1;
		if (rc == 1)
			continue;
		if ((rc = rcpt_check(s, &m[i], mailbox_max, &m[i].rcpt)) != 0) {
			*failed = i;
			return rc;
		}
		if (msg_insert(s, sender, sender_name, &m[i], now) < 0)
			return -1;
	}
	return 0;
}

static int sq_msgs_fetch(struct st_store *s, int64_t uid, int limit,
                         int (*fn)(void *ctx, int64_t id, const char *from,
                         int64_t ts, const char *env, size_t len),
                         void *ctx)
{
	struct conn *c = rd_get(s);
	sqlite3_stmt *st = c ? prep(c, Q_MSGS_FETCH) : NULL;
	int rc, n = 0;

	if (!st) {
		rd_put(s, c);
		return -1;
	}
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = step_row(c, st)) == 1) {
		n++;
		if (fn(ctx, sqlite3_column_int64(st, 0),
		       (const char *)sqlite3_column_text(st, 1),
		       sqlite3_column_int64(st, 2),
		       (const char *)sqlite3_column_text(st, 3),
		       (size_t)sqlite3_column_bytes(st, 3)) < 0) {
			sqlite3_reset(st);
			break;
		}
	}
	rd_put(s, c);
	return rc < 0 ? -1 : n;
}

static int sq_msgs_ack(struct st_store *s, int64_t uid, const int64_t *ids,
                       size_t n)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st = prep(c, Q_MSG_ACK);
	int64_t gone = 0;

	if (!st)
		return -1;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		sqlite3_bind_int64(st, 2, uid);
		if (step_done(c, st) != 0)
			return -1;
		gone += sqlite3_changes(c->db);
	}
	count(s, uid, -gone);
	return (int)gone;
}

/* ---- channels ---- */

static int sq_post_add(struct st_store *s, const char *channel,
                       const char *post, size_t len, int64_t retain,
                       int64_t *id)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st = prep(c, Q_POST_INSERT);

	if (!st)
		return -1;
	BIND_TEXT(st, 1, channel, strlen(channel));
	BIND_TEXT(st, 2, post, len);
	if (step_done(c, st) != 0)
		return -1;
	*id = sqlite3_last_insert_rowid(c->db);
	if (!(st = prep(c, Q_POST_TRIM)))
		return -1;
	BIND_TEXT(st, 1, channel, strlen(channel));
	sqlite3_bind_int64(st, 2, retain);
	return step_done(c, st) == 0 ? 0 : -1;
}

static int sq_posts_fetch(struct st_store *s, const char *channel,
                          int64_t after, int limit,
                          int (*fn)(void *ctx, int64_t id, const char *post,
                          size_t len),
                          void *ctx)
{
	struct conn *c = rd_get(s);
	sqlite3_stmt *st = c ? prep(c, Q_POSTS_FETCH) : NULL;
	int rc, n = 0;

	if (!st) {
		rd_put(s, c);
		return -1;
	}
	BIND_TEXT(st, 1, channel, strlen(channel));
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int(st, 3, limit);
	while ((rc = step_row(c, st)) == 1) {
		n++;
		if (fn(ctx, sqlite3_column_int64(st, 0),
		       (const char *)sqlite3_column_text(st, 1),
		       (size_t)sqlite3_column_bytes(st, 1)) < 0) {
			sqlite3_reset(st);
			break;
		}
	}
	rd_put(s, c);
	return rc < 0 ? -1 : n;
}

/* ---- blobs ---- */

static int usage(struct conn *c, int64_t owner, int64_t *bytes)
{
	sqlite3_stmt *st = prep(c, Q_BLOB_USAGE);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, owner);
	if (step_row(c, st) != 1)
		return -1;
	*bytes = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

static int sq_blob_add(struct st_store *s, const char *id, int64_t owner,
                       int64_t size, int64_t now, int64_t quota)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st;
	int64_t used;

	if (usage(c, owner, &used) < 0)
		return -1;
	if (used + size > quota)
		return ST_STORE_FULL;
	if (!(st = prep(c, Q_BLOB_INSERT)))
		return -1;
	BIND_TEXT(st, 1, id, strlen(id));
	sqlite3_bind_int64(st, 2, owner);
	sqlite3_bind_int64(st, 3, size);
	sqlite3_bind_int64(st, 4, now);
	return step_done(c, st) == 0 ? 0 : -1;
}

static int sq_blob_usage(struct st_store *s, int64_t owner, int64_t *bytes)
{
	struct conn *c = rd_get(s);
	int rc = c ? usage(c, owner, bytes) : -1;

	rd_put(s, c);
	return rc;
}

static int sq_blob_get(struct st_store *s, const char *id, int64_t not_before,
                       int64_t *size)
{
	struct conn *c = rd_get(s);
	sqlite3_stmt *st = c ? prep(c, Q_BLOB_GET) : NULL;
	int rc = -1;

	if (st) {
		BIND_TEXT(st, 1, id, strlen(id));
		sqlite3_bind_int64(st, 2, not_before);
		if ((rc = step_row(c, st)) == 1) {
			*size = sqlite3_column_int64(st, 0);
			sqlite3_reset(st);
			rc = 0;
		} else if (rc == 0) {
			rc = ST_STORE_NOTFOUND;
		}
	}
	rd_put(s, c);
	return rc;
}

/* ---- upkeep ---- */

static int sweep_messages(struct st_store *s, int64_t cutoff)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st = prep(c, Q_MSGS_SWEEP);
	int64_t rcpt[SWEEP_BATCH];
	int rc = 0, n = 0;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, cutoff);
	sqlite3_bind_int(st, 2, SWEEP_BATCH);
	while (n < SWEEP_BATCH && (rc = step_row(c, st)) == 1)
		rcpt[n++] = sqlite3_column_int64(st, 0);
	if (rc == 1)
		sqlite3_reset(st);
	if (rc < 0)
		return -1;
	for (int i = 0; i < n; i++)
		count(s, rcpt[i], -1);
	return n;
}

static int sweep_blobs(struct conn *c, int64_t cutoff,
                       void (*fn)(void *ctx, const char *blob), void *ctx)
{
	sqlite3_stmt *st = prep(c, Q_BLOB_SWEEP);
	int rc, n = 0;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, cutoff);
	sqlite3_bind_int(st, 2, SWEEP_BATCH);
	while ((rc = step_row(c, st)) == 1) {
		fn(ctx, (const char *)sqlite3_column_text(st, 0));
		n++;
	}
	return rc < 0 ? -1 : n;
}

static int sq_sweep(struct st_store *s, int64_t now, int64_t cutoff,
                    void (*fn)(void *ctx, const char *blob), void *ctx)
{
	struct conn *c = SQ(s)->w;
	sqlite3_stmt *st;
	int n, total = 0;

	if ((n = sweep_messages(s, cutoff)) < 0)
		return -1;
	total += n;
	if ((n = sweep_blobs(c, cutoff, fn, ctx)) < 0)
		return -1;
	total += n;
	if (!(st = prep(c, Q_SENT_SWEEP)))
		return -1;
	sqlite3_bind_int64(st, 1, cutoff);
	if (step_done(c, st) != 0)
		return -1;
	total += sqlite3_changes(c->db);
	if (!(st = prep(c, Q_SESS_SWEEP)))
		return -1;
	sqlite3_bind_int64(st, 1, now);
	if (step_done(c, st) != 0)
		return -1;
	return total + sqlite3_changes(c->db);
}

static int scalar(struct conn *c, enum q q, int64_t *v)
{
	sqlite3_stmt *st = prep(c, q);

	if (!st || step_row(c, st) != 1)
		return -1;
	*v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

static int sq_stats(struct st_store *s, int64_t *queued, int64_t *blob_bytes,
                    int64_t *db_bytes)
{
	struct conn *c = rd_get(s);
	int64_t pages = 0, size = 0;
	int rc = -1;

	if (c && scalar(c, Q_STAT_MSGS, queued) == 0 &&
	    scalar(c, Q_STAT_BLOBS, blob_bytes) == 0 &&
	    scalar(c, Q_STAT_PAGES, &pages) == 0 &&
	    scalar(c, Q_STAT_PAGESIZE, &size) == 0) {
		*db_bytes = pages * size;
		rc = 0;
	}
	rd_put(s, c);
	return rc;
}

static const struct st_store_ops sq_ops = {
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.save = sq_save,
	.release = sq_release,
	.undo = sq_undo,
	.user_get = sq_user_get,
	.user_get_id = sq_user_get_id,
	.user_create = sq_user_create,
	.user_delete = sq_user_delete,
	.users_list = sq_users_list,
	.session_add = sq_session_add,
	.session_get = sq_session_get,
	.session_touch = sq_session_touch,
	.session_delete = sq_session_delete,
	.keys_info = sq_keys_info,
	.keys_put = sq_keys_put,
	.bundle_take = sq_bundle_take,
	.msgs_post = sq_msgs_post,
	.msgs_fetch = sq_msgs_fetch,
	.msgs_ack = sq_msgs_ack,
	.post_add = sq_post_add,
	.posts_fetch = sq_posts_fetch,
	.blob_add = sq_blob_add,
	.blob_usage = sq_blob_usage,
	.blob_get = sq_blob_get,
	.sweep = sq_sweep,
	.stats = sq_stats,
};
