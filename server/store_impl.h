/*
 * store_impl.h - what store.c needs of an implementation of store.h: each
 * one's store begins with struct st_store, whose ops it fills in.
 */
#ifndef ST_STORE_IMPL_H
#define ST_STORE_IMPL_H

#include "store.h"

struct st_store_ops {
	void (*close)(struct st_store *s);
	int (*shared)(const struct st_store *s);
	int (*conflict)(struct st_store *s);
	int (*notify)(struct st_store *s, const uint64_t *keys, size_t n);
	int (*listen)(struct st_store *s, const struct st_store_hooks *h);
	int (*begin)(struct st_store *s);
	int (*commit)(struct st_store *s);
	void (*rollback)(struct st_store *s);
	int (*save)(struct st_store *s);
	int (*release)(struct st_store *s);
	int (*undo)(struct st_store *s);
	int (*user_create)(struct st_store *s, struct st_store_user *u,
	         const struct st_store_spk *spk,
	         const struct st_store_opk *opks, size_t nopks);
	int (*user_delete)(struct st_store *s, int64_t uid);
	int (*user_get)(struct st_store *s, const char *name,
	         struct st_store_user *u);
	int (*user_get_id)(struct st_store *s, int64_t uid,
	         struct st_store_user *u);
	int (*users_list)(struct st_store *s, const char *prefix, int limit,
	         int (*fn)(void *ctx, const char *name, int64_t created),
	         void *ctx);
	int (*session_add)(struct st_store *s, const unsigned char hash[32],
	         int64_t uid, int64_t expires);
	int (*session_get)(struct st_store *s, const unsigned char hash[32],
	         int64_t now, int64_t *uid, char name[ST_USER_MAX + 1],
	         int64_t *expires);
	int (*session_touch)(struct st_store *s, const unsigned char hash[32],
	         int64_t expires);
	int (*session_delete)(struct st_store *s, const unsigned char hash[32]);
	int (*keys_info)(struct st_store *s, int64_t uid, int64_t *nopks,
	         struct st_store_spk *spk);
	int (*keys_put)(struct st_store *s, int64_t uid,
	         const struct st_store_spk *spk,
	         const struct st_store_opk *opks, size_t n, int64_t max);
	int (*bundle_take)(struct st_store *s, const char *name,
	         struct st_store_user *u, struct st_store_spk *spk,
	         struct st_store_opk *opk, int *has_opk);
	int (*msgs_post)(struct st_store *s, int64_t sender,
	         const char *sender_name, struct st_store_msg *m, size_t n,
	         int64_t now, int64_t mailbox_max, size_t *failed);
	int (*msgs_fetch)(struct st_store *s, int64_t uid, int limit,
	         int (*fn)(void *ctx, int64_t id, const char *from, int64_t ts,
	         const char *env, size_t len), void *ctx);
	int (*msgs_ack)(struct st_store *s, int64_t uid, const int64_t *ids,
	         size_t n);
	int (*post_add)(struct st_store *s, const char *channel,
	         const char *post, size_t len, int64_t retain, int64_t *id);
	int (*posts_fetch)(struct st_store *s, const char *channel,
	         int64_t after, int limit, int (*fn)(void *ctx, int64_t id,
	         const char *post, size_t len), void *ctx);
	int (*blob_add)(struct st_store *s, const char *id, int64_t owner,
	         int64_t size, int64_t now, int64_t quota);
	int (*blob_usage)(struct st_store *s, int64_t owner, int64_t *bytes);
	int (*blob_get)(struct st_store *s, const char *id, int64_t not_before,
	         int64_t *size);
	int (*sweep)(struct st_store *s, int64_t now, int64_t cutoff,
	         void (*fn)(void *ctx, const char *blob), void *ctx);
	int (*stats)(struct st_store *s, int64_t *queued, int64_t *blob_bytes,
	         int64_t *db_bytes);
};

struct st_store {
	const struct st_store_ops *ops;
};

/* What users.ik_hash holds: SHA-256 of the encoded identity (to_ik is its
 * first 16 bytes). */
void st_store_ik_hash(const struct st_identity_pub *ik,
                      unsigned char out[32]);

struct st_store *st_store_sqlite_open(const char *path);
/*
 * For tests: wake the checkpointer every pages new WAL frames, and start
 * the WAL again once it holds restart frames (2,000 and 16,384 otherwise).
 * Before any write.
 */
void st_store_sqlite_checkpoints(struct st_store *s, int pages, int restart);
struct st_store *st_store_pg_open(const char *url);

#endif
