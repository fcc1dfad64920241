/*
 * store.h - the relay's one storage interface (SPEC §7).  store_sqlite.c is
 * the embedded implementation and the only file that knows SQL; another
 * store (PostgreSQL) would implement these same functions.
 *
 * Two implementations: store_sqlite.c (a file path: one relay per file) and
 * store_pg.c (a postgresql:// URL: several relays on one database); store.c
 * picks one at st_store_open() and forwards every call to it.
 *
 * Threads: writes are made by one thread at a time, inside a transaction
 * that thread opened with st_store_begin(); each write function may be
 * wrapped in st_store_save()/st_store_release() or st_store_undo() so one
 * request's failure leaves the others of a batch (group commit) intact.
 * Reads may be made from any thread at once and see committed data only.
 *
 * Returns: 0 (or a count) on success; a positive enum st_store_rc for an
 * answer the caller turns into a status; -1 after st_error() for a fault,
 * classed ST_EX_CANTCREAT when the disk is full, ST_EX_TEMPFAIL when the
 * database stayed locked, ST_EX_UNAVAILABLE otherwise.
 */
#ifndef ST_STORE_H
#define ST_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "st.h"

enum st_store_rc {
	ST_STORE_OK = 0,
	ST_STORE_NOTFOUND,      /* no such user or row */
	ST_STORE_TAKEN,         /* the user name exists */
	ST_STORE_ID_REUSED,     /* a prekey id was used before */
	ST_STORE_TOO_MANY,      /* more one-time prekeys than allowed */
	ST_STORE_IDENTITY,      /* to_ik names another identity */
	ST_STORE_FULL,          /* a mailbox or a blob quota is full */
};

/* An Argon2id password hash and the cost it was made with. */
struct st_store_pw {
	unsigned char hash[32], salt[16];
	uint32_t m, t, p;
};

struct st_store_user {
	int64_t id;
	char name[ST_USER_MAX + 1];
	int64_t created;
	struct st_identity_pub ik;
	struct st_store_pw pw;
	uint32_t spk_id;        /* the current signed prekey */
};

struct st_store_spk {
	uint32_t id;
	unsigned char pub[32], sig[64];
	int64_t created;
};

struct st_store_opk {
	uint32_t id;
	unsigned char pub[32];
};

/* One entry of POST /v1/messages. */
struct st_store_msg {
	const char *to;                 /* recipient name (checked by the caller) */
	unsigned char to_ik[16];
	unsigned char client_id[16];
	const char *envelope;           /* compact JSON text */
	size_t envlen;
	int64_t id;                     /* out: relay id */
	int64_t rcpt;                   /* out: recipient's user id, 0 for a repeat */
};

struct st_store;

/*
 * Open (creating) the database: a postgresql:// or postgres:// URL opens
 * PostgreSQL, anything else names an SQLite file (WAL, synchronous=FULL).
 * The schema is made or migrated.
 */
struct st_store *st_store_open(const char *path);
void st_store_close(struct st_store *s);
/*
 * PostgreSQL: the longest a statement may run (the server's
 * statement_timeout) and, 5 s more, the longest to wait for any answer
 * before the connection counts as broken.  Call before st_store_open().
 */
void st_store_timeout(int64_t ms);
/* 1 when path is a PostgreSQL URL. */
int st_store_is_pg(const char *path);

/* 1 when other relays may share the database (PostgreSQL). */
int st_store_shared(const struct st_store *s);

/*
 * Relays that share a database tell each other about commits.  Inside the
 * writer's transaction, st_store_notify() announces the long-poll keys it
 * wakes; the announcement is delivered at commit, to every relay.
 * st_store_listen() starts a thread that hears them: wake() for a key
 * committed by another relay, revoke() when a session ended elsewhere (drop
 * cached tokens), all() when announcements may have been lost (the
 * connection broke): every waiter must look again.  A NULL h stops the
 * thread (before the hooks' targets go).  No-ops for SQLite.
 */
struct st_store_hooks {
	void (*wake)(void *ctx, uint64_t key);
	void (*all)(void *ctx);
	void (*revoke)(void *ctx);
	void *ctx;
};
int st_store_notify(struct st_store *s, const uint64_t *keys, size_t n);
/*
 * 1 when the writer's last failure was a deadlock or a serialization
 * failure with another relay's transaction (clears it): the job may run
 * again.  Always 0 for SQLite.
 */
int st_store_conflict(struct st_store *s);
int st_store_listen(struct st_store *s, const struct st_store_hooks *h);

/* The writer's transaction: BEGIN IMMEDIATE, savepoints, COMMIT. */
int st_store_begin(struct st_store *s);
int st_store_commit(struct st_store *s);
void st_store_rollback(struct st_store *s);
int st_store_save(struct st_store *s);
int st_store_release(struct st_store *s);
int st_store_undo(struct st_store *s);

/* ---- accounts and sessions ---- */

/* Writes: ST_STORE_TAKEN, ST_STORE_ID_REUSED (duplicate OPK ids). */
int st_store_user_create(struct st_store *s, struct st_store_user *u,
                         const struct st_store_spk *spk,
                         const struct st_store_opk *opks, size_t nopks);
/* Delete the account with its keys, mailbox, sessions and sent records. */
int st_store_user_delete(struct st_store *s, int64_t uid);
/* Reads: ST_STORE_NOTFOUND when missing. */
int st_store_user_get(struct st_store *s, const char *name,
                      struct st_store_user *u);
int st_store_user_get_id(struct st_store *s, int64_t uid,
                         struct st_store_user *u);
/* Users whose name starts with prefix, by name; fn returns -1 to stop. */
int st_store_users_list(struct st_store *s, const char *prefix, int limit,
                        int (*fn)(void *ctx, const char *name, int64_t created),
                        void *ctx);

int st_store_session_add(struct st_store *s, const unsigned char hash[32],
                         int64_t uid, int64_t expires);
/* The live session with this token hash: ST_STORE_NOTFOUND otherwise. */
int st_store_session_get(struct st_store *s, const unsigned char hash[32],
                         int64_t now, int64_t *uid,
                         char name[ST_USER_MAX + 1], int64_t *expires);
int st_store_session_touch(struct st_store *s, const unsigned char hash[32],
                           int64_t expires);
int st_store_session_delete(struct st_store *s, const unsigned char hash[32]);

/* ---- keys ---- */

/* Count of unused one-time prekeys and the current signed prekey. */
int st_store_keys_info(struct st_store *s, int64_t uid, int64_t *nopks,
                       struct st_store_spk *spk);
/*
 * Add a signed prekey (made current; NULL for none) and one-time prekeys.
 * ST_STORE_ID_REUSED when an id was used before with other keys;
 * ST_STORE_TOO_MANY when more than max unused OPKs would be stored.
 */
int st_store_keys_put(struct st_store *s, int64_t uid,
                      const struct st_store_spk *spk,
                      const struct st_store_opk *opks, size_t n, int64_t max);
/*
 * A bundle of name: the user, the current signed prekey and, when one is
 * left, a one-time prekey that is removed in the same transaction.
 */
int st_store_bundle_take(struct st_store *s, const char *name,
                         struct st_store_user *u, struct st_store_spk *spk,
                         struct st_store_opk *opk, int *has_opk);

/* ---- mailbox ---- */

/*
 * Post n entries from sender, all or none: a repeated (sender, client_id)
 * gets its first id back (rcpt 0).  On ST_STORE_NOTFOUND, ST_STORE_IDENTITY
 * or ST_STORE_FULL (more than mailbox_max queued), *failed names the entry
 * and the caller undoes what was written.
 */
int st_store_msgs_post(struct st_store *s, int64_t sender,
                       const char *sender_name, struct st_store_msg *m,
                       size_t n, int64_t now, int64_t mailbox_max,
                       size_t *failed);
/* Up to limit queued messages of uid, oldest first; returns the count. */
int st_store_msgs_fetch(struct st_store *s, int64_t uid, int limit,
                        int (*fn)(void *ctx, int64_t id, const char *from,
                                  int64_t ts, const char *env, size_t len),
                        void *ctx);
/* Delete those of ids that are uid's; returns how many were. */
int st_store_msgs_ack(struct st_store *s, int64_t uid, const int64_t *ids,
                      size_t n);

/* ---- channels ---- */

/* Append a post, keeping the newest retain of the channel. */
int st_store_post_add(struct st_store *s, const char *channel,
                      const char *post, size_t len, int64_t retain,
                      int64_t *id);
/* Posts after id, in commit order; returns the count. */
int st_store_posts_fetch(struct st_store *s, const char *channel,
                         int64_t after, int limit,
                         int (*fn)(void *ctx, int64_t id, const char *post,
                                   size_t len),
                         void *ctx);

/* ---- blobs (the files themselves are the caller's) ---- */

/* Record a blob; ST_STORE_FULL when the owner would pass quota bytes. */
int st_store_blob_add(struct st_store *s, const char *id, int64_t owner,
                      int64_t size, int64_t now, int64_t quota);
int st_store_blob_usage(struct st_store *s, int64_t owner, int64_t *bytes);
/* A blob created after not_before: its size, or ST_STORE_NOTFOUND. */
int st_store_blob_get(struct st_store *s, const char *id, int64_t not_before,
                      int64_t *size);

/* ---- upkeep ---- */

/*
 * Delete messages, sent records and blobs older than cutoff, and sessions
 * expired at now (a bounded batch per call); fn gets each deleted blob id
 * (to remove its file once the transaction commits).  Returns the number
 * of rows deleted.
 */
int st_store_sweep(struct st_store *s, int64_t now, int64_t cutoff,
                   void (*fn)(void *ctx, const char *blob), void *ctx);
/* Queued messages, blob bytes and database bytes, for /metrics. */
int st_store_stats(struct st_store *s, int64_t *queued, int64_t *blob_bytes,
                   int64_t *db_bytes);

#endif
