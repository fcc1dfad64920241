/*
 * channel.c - public channels (SPEC §5): signed plaintext posts.
 *
 * A post is signed with the author's identity key and stored by the relay
 * as given; readers check every signature against the author's identity:
 * the pinned one when we have a pin (peers/NAME.json), else the one the
 * relay's directory serves.  A post that cannot be verified is still
 * handed to the caller, marked with the reason, never dropped silently.
 * Reading changes no local state (no pins are made), so it needs no lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PAGE_MAX 500
#define BODY_MAX 65536                  /* the relay's JSON body limit */
#define AUTHOR_CACHE 64

int st_channel_post(struct st_relay *r, const struct st_identity *id,
                    const char *user, const char *channel, const char *text,
                    size_t n, int64_t ts, char **relay_id)
{
	struct st_json *post, *body, *reply = NULL;
	char path[64 + ST_USER_MAX];
	const char *rid;
	size_t ridlen;
	long status;
	int rc = -1;

	*relay_id = NULL;
	if (!st_user_ok(channel, strlen(channel)))
		return st_error(ST_EX_USAGE, "bad channel name '%.40s': channel "
		                "names match ^[a-z0-9][a-z0-9._-]{0,31}$",
		                channel);
	if (n > ST_POST_TEXT_MAX)
		return st_error(ST_EX_DATAERR, "post too long: %zu bytes, at "
		                "most %d", n, ST_POST_TEXT_MAX);
	if (!st_utf8_ok(text, n))
		return st_error(ST_EX_DATAERR, "a channel post is UTF-8 text "
		                "without NUL bytes");
	if (!(post = st_post_sign(id, channel, user, ts, text, n)))
		return -1;
	body = st_json_object();
	st_json_set(body, "post", post);
	/* the text's limit counts bytes before JSON escaping; a text of
	 * newlines or quotes can still outgrow the relay's 64 KiB body */
	{
		char *d = st_json_dump(body);
		size_t len = strlen(d);

		free(d);
		if (len > BODY_MAX) {
			st_json_free(body);
			return st_error(ST_EX_DATAERR, "post too long: %zu bytes "
			                "as JSON, at most %d (escaped characters "
			                "count more than once)", len, BODY_MAX);
		}
	}
	snprintf(path, sizeof(path), "/v1/channels/%s", channel);
	if (st_relay_call(r, "POST", path, body, 4096, &status, &reply,
	                  NULL) < 0)
		goto out;
	if (!reply || st_json_get_str(reply, "id", &rid, &ridlen) < 0 ||
	    ridlen == 0 || ridlen > 32) {
		st_error(ST_EX_DATAERR, "relay %s: bad answer to a channel post",
		         st_relay_base(r));
		goto out;
	}
	*relay_id = st_strdup(rid);
	rc = 0;
out:
	st_json_free(body);
	st_json_free(reply);
	return rc;
}

/* Authors' identities, looked up once per reader. */
struct author {
	char user[ST_USER_MAX + 1];
	int state;                      /* ST_POST_* of the lookup */
	const char *trust;
	struct st_identity_pub id;
};

struct st_channel_reader {
	struct st_relay *r;
	char channel[ST_USER_MAX + 1];
	char after[33];
	struct author cache[AUTHOR_CACHE];
	size_t ncache, next;
};

struct st_channel_reader *st_channel_reader_new(struct st_relay *r,
                                                const char *channel,
                                                const char *after)
{
	struct st_channel_reader *c;
	size_t n = after ? strlen(after) : 0;

	if (!st_user_ok(channel, strlen(channel))) {
		st_error(ST_EX_USAGE, "bad channel name '%.40s': channel names "
		         "match ^[a-z0-9][a-z0-9._-]{0,31}$", channel);
		return NULL;
	}
	if (after && (n == 0 || n > 19 ||
	              strspn(after, "0123456789") != n)) {
		st_error(ST_EX_USAGE, "--after takes a post id (digits), not "
		         "'%.40s'", after);
		return NULL;
	}
	c = st_calloc(1, sizeof(*c));
	c->r = r;
	strcpy(c->channel, channel);
	strcpy(c->after, after ? after : "0");
	return c;
}

void st_channel_reader_free(struct st_channel_reader *c)
{
	free(c);
}

const char *st_channel_reader_after(const struct st_channel_reader *c)
{
	return c->after;
}

/* The identity to check user's posts with: pin first, else directory. */
static struct author *author(struct st_channel_reader *c, const char *user)
{
	struct st_json *reply = NULL, *idj;
	struct st_identity_pub served;
	struct st_peer pin;
	struct author *a;
	char path[64 + ST_USER_MAX];
	long status = 0;
	int pinned, rc;

	for (size_t i = 0; i < c->ncache; i++)
		if (!strcmp(c->cache[i].user, user))
			return &c->cache[i];
	if (c->ncache < AUTHOR_CACHE)
		a = &c->cache[c->ncache++];
	else
		a = &c->cache[c->next++ % AUTHOR_CACHE];
	memset(a, 0, sizeof(*a));
	snprintf(a->user, sizeof(a->user), "%s", user);

	rc = st_peer_load(user, &pin);
	if (rc < 0 && st_errcode() != ST_EX_NOINPUT)
		return NULL;            /* a malformed pin: a local error */
	pinned = rc == 0;
	snprintf(path, sizeof(path), "/v1/users/%s", user);
	if (st_relay_call(c->r, "GET", path, NULL, 16384, &status, &reply,
	                  NULL) < 0) {
		st_json_free(reply);
		if (status != 404)
			return NULL;
		/* the author is gone from the directory: a pin still works */
		if (pinned) {
			a->id = pin.id;
			a->state = ST_POST_VERIFIED;
			a->trust = st_trust_name(pin.trust);
		} else {
			a->state = ST_POST_NO_AUTHOR;
		}
		return a;
	}
	if (!reply || st_json_get_obj(reply, "identity", &idj) < 0 ||
	    st_identity_from_json(idj, &served) < 0) {
		st_json_free(reply);
		st_error(ST_EX_DATAERR, "relay %s: bad identity for %s",
		         st_relay_base(c->r), user);
		return NULL;
	}
	st_json_free(reply);
	if (pinned) {
		a->id = pin.id;
		a->trust = st_trust_name(pin.trust);
		a->state = memcmp(&pin.id, &served, sizeof(served)) ?
		           ST_POST_CHANGED : ST_POST_VERIFIED;
	} else {
		a->id = served;
		a->trust = "directory";
		a->state = ST_POST_VERIFIED;
	}
	return a;
}

int st_channel_read(struct st_channel_reader *c, int limit, int wait,
                    st_channel_fn fn, void *ctx, int *more)
{
	struct st_json *reply = NULL, *posts;
	char path[160];
	long status;
	size_t n;
	int rc = -1, got = 0;

	if (limit < 1 || limit > PAGE_MAX)
		limit = PAGE_MAX;
	if (wait < 0 || wait > 60)
		wait = 0;
	snprintf(path, sizeof(path), "/v1/channels/%s?after=%s&limit=%d"
	         "&wait=%d", c->channel, c->after, limit, wait);
	if (st_relay_call(c->r, "GET", path, NULL, 0, &status, &reply,
	                  NULL) < 0)
		goto out;
	if (!reply || st_json_get_arr(reply, "posts", &posts) < 0) {
		st_error(ST_EX_DATAERR, "relay %s: bad answer to a channel read",
		         st_relay_base(c->r));
		goto out;
	}
	n = st_json_array_size(posts);
	for (size_t i = 0; i < n; i++) {
		struct st_json *e = st_json_array_get(posts, i), *pj;
		struct st_channel_item it;
		const char *rid;
		size_t ridlen;
		struct author *a;

		memset(&it, 0, sizeof(it));
		if (st_json_get_str(e, "id", &rid, &ridlen) < 0 ||
		    ridlen == 0 || ridlen > 19 ||
		    strspn(rid, "0123456789") != ridlen ||
		    st_json_get_obj(e, "post", &pj) < 0) {
			st_error(ST_EX_DATAERR, "relay %s: bad post entry",
			         st_relay_base(c->r));
			goto out;
		}
		memcpy(it.id, rid, ridlen + 1);
		it.raw = pj;
		if (st_post_parse(pj, &it.post) < 0) {
			it.state = ST_POST_MALFORMED;
			it.why = "malformed post";
		} else if (strcmp(it.post.channel, c->channel)) {
			it.state = ST_POST_MALFORMED;
			it.why = "post names another channel";
		} else if (!(a = author(c, it.post.from))) {
			st_post_free(&it.post);
			goto out;
		} else if (a->state == ST_POST_NO_AUTHOR) {
			it.state = a->state;
			it.why = "author unknown to the relay";
		} else if (st_post_verify(&it.post, a->id.ed25519) < 0) {
			it.state = ST_POST_BAD_SIG;
			it.why = a->state == ST_POST_CHANGED ?
			         "bad signature; the author's key changed" :
			         "bad signature";
		} else {
			it.state = a->state;
			it.trust = a->trust;
			if (a->state == ST_POST_CHANGED)
				it.why = "signed by the pinned key, but the "
				         "relay serves another key now";
		}
		rc = fn(ctx, &it);
		st_post_free(&it.post);
		if (rc < 0)
			goto out;
		memcpy(c->after, rid, ridlen + 1);
		got++;
	}
	if (more)
		*more = got == limit;
	rc = got;
out:
	st_json_free(reply);
	return rc;
}

const char *st_post_state_name(int state)
{
	switch (state) {
	case ST_POST_VERIFIED:  return "verified";
	case ST_POST_CHANGED:   return "identity_changed";
	case ST_POST_BAD_SIG:   return "bad_signature";
	case ST_POST_NO_AUTHOR: return "unknown_author";
	default:                return "malformed";
	}
}
