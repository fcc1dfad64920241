/*
 * store.c - st_store_open() picks the implementation from the path; every
 * other call goes to the one it picked.
 */
#include <string.h>

#include "store_impl.h"

int st_store_is_pg(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 ||
	       strncmp(path, "postgres://", 11) == 0;
}

void st_store_ik_hash(const struct st_identity_pub *ik, unsigned char out[32])
{
	unsigned char enc[ST_ID_ENC_LEN];

	st_identity_encode(ik, enc);
	st_sha256(enc, sizeof(enc), out);
}

struct st_store *st_store_open(const char *path)
{
	return st_store_is_pg(path) ? st_store_pg_open(path) :
	       st_store_sqlite_open(path);
}

void st_store_close(struct st_store *s)
{
	if (s)
		s->ops->close(s);
}

int st_store_shared(const struct st_store *s)
{
	return s->ops->shared ? s->ops->shared(s) : 0;
}

int st_store_notify(struct st_store *s, const uint64_t *keys, size_t n)
{
	return s->ops->notify ? s->ops->notify(s, keys, n) : 0;
}

int st_store_listen(struct st_store *s, const struct st_store_hooks *h)
{
	return s->ops->listen ? s->ops->listen(s, h) : 0;
}

int st_store_begin(struct st_store *s)
{
	return s->ops->begin(s);
}

int st_store_commit(struct st_store *s)
{
	return s->ops->commit(s);
}

void st_store_rollback(struct st_store *s)
{
	s->ops->rollback(s);
}

int st_store_save(struct st_store *s)
{
	return s->ops->save(s);
}

int st_store_release(struct st_store *s)
{
	return s->ops->release(s);
}

int st_store_undo(struct st_store *s)
{
	return s->ops->undo(s);
}

int st_store_user_create(struct st_store *s, struct st_store_user *u,
                         const struct st_store_spk *spk,
                         const struct st_store_opk *opks, size_t nopks)
{
	return s->ops->user_create(s, u, spk, opks, nopks);
}

int st_store_user_delete(struct st_store *s, int64_t uid)
{
	return s->ops->user_delete(s, uid);
}

int st_store_user_get(struct st_store *s, const char *name,
                      struct st_store_user *u)
{
	return s->ops->user_get(s, name, u);
}

int st_store_user_get_id(struct st_store *s, int64_t uid,
                         struct st_store_user *u)
{
	return s->ops->user_get_id(s, uid, u);
}

int st_store_users_list(struct st_store *s, const char *prefix, int limit,
                        int (*fn)(void *ctx, const char *name, int64_t created),
                        void *ctx)
{
	return s->ops->users_list(s, prefix, limit, fn, ctx);
}

int st_store_session_add(struct st_store *s, const unsigned char hash[32],
                         int64_t uid, int64_t expires)
{
	return s->ops->session_add(s, hash, uid, expires);
}

int st_store_session_get(struct st_store *s, const unsigned char hash[32],
                         int64_t now, int64_t *uid,
                         char name[ST_USER_MAX + 1], int64_t *expires)
{
	return s->ops->session_get(s, hash, now, uid, name, expires);
}

int st_store_session_touch(struct st_store *s, const unsigned char hash[32],
                           int64_t expires)
{
	return s->ops->session_touch(s, hash, expires);
}

int st_store_session_delete(struct st_store *s, const unsigned char hash[32])
{
	return s->ops->session_delete(s, hash);
}

int st_store_keys_info(struct st_store *s, int64_t uid, int64_t *nopks,
                       struct st_store_spk *spk)
{
	return s->ops->keys_info(s, uid, nopks, spk);
}

int st_store_keys_put(struct st_store *s, int64_t uid,
                      const struct st_store_spk *spk,
                      const struct st_store_opk *opks, size_t n, int64_t max)
{
	return s->ops->keys_put(s, uid, spk, opks, n, max);
}

int st_store_bundle_take(struct st_store *s, const char *name,
                         struct st_store_user *u, struct st_store_spk *spk,
                         struct st_store_opk *opk, int *has_opk)
{
	return s->ops->bundle_take(s, name, u, spk, opk, has_opk);
}

int st_store_msgs_post(struct st_store *s, int64_t sender,
                       const char *sender_name, struct st_store_msg *m,
                       size_t n, int64_t now, int64_t mailbox_max,
                       size_t *failed)
{
	return s->ops->msgs_post(s, sender, sender_name, m, n, now, mailbox_max, failed);
}

int st_store_msgs_fetch(struct st_store *s, int64_t uid, int limit,
                        int (*fn)(void *ctx, int64_t id, const char *from,
                                  int64_t ts, const char *env, size_t len),
                        void *ctx)
{
	return s->ops->msgs_fetch(s, uid, limit, fn, ctx);
}

int st_store_msgs_ack(struct st_store *s, int64_t uid, const int64_t *ids,
                      size_t n)
{
	return s->ops->msgs_ack(s, uid, ids, n);
}

int st_store_post_add(struct st_store *s, const char *channel,
                      const char *post, size_t len, int64_t retain,
                      int64_t *id)
{
	return s->ops->post_add(s, channel, post, len, retain, id);
}

int st_store_posts_fetch(struct st_store *s, const char *channel,
                         int64_t after, int limit,
                         int (*fn)(void *ctx, int64_t id, const char *post,
                                   size_t len),
                         void *ctx)
{
	return s->ops->posts_fetch(s, channel, after, limit, fn, ctx);
}

int st_store_blob_add(struct st_store *s, const char *id, int64_t owner,
                      int64_t size, int64_t now, int64_t quota)
{
	return s->ops->blob_add(s, id, owner, size, now, quota);
}

int st_store_blob_usage(struct st_store *s, int64_t owner, int64_t *bytes)
{
	return s->ops->blob_usage(s, owner, bytes);
}

int st_store_blob_get(struct st_store *s, const char *id, int64_t not_before,
                      int64_t *size)
{
	return s->ops->blob_get(s, id, not_before, size);
}

int st_store_sweep(struct st_store *s, int64_t now, int64_t cutoff,
                   void (*fn)(void *ctx, const char *blob), void *ctx)
{
	return s->ops->sweep(s, now, cutoff, fn, ctx);
}

int st_store_stats(struct st_store *s, int64_t *queued, int64_t *blob_bytes,
                   int64_t *db_bytes)
{
	return s->ops->stats(s, queued, blob_bytes, db_bytes);
}

int st_store_conflict(struct st_store *s)
{
	return s->ops->conflict ? s->ops->conflict(s) : 0;
}
