/*
 * outbox.c - ciphertexts that st-send has committed but the relay has not
 * yet accepted ($ST_HOME/outbox/, SPEC §3 and §4 "State discipline").
 *
 * An entry is written only after the ratchet state that produced it is on
 * disk, and leaves only when the relay has answered for it: accepted
 * (201, or 200 for a repeat of the same client_id), or refused for good
 * (unknown user, changed identity, or an entry this relay will never
 * take).  A retry posts the very same bytes with the same client_id, so
 * the relay stores each message once however often the post is repeated,
 * and no message key is ever used twice.
 *
 *   outbox/MMMMMMMMMMMMCCCC-CLIENTID.json  (creation ms and a counter in
 *   hex, so names sort oldest first)
 *   {"v":1, "to":USER, "to_ik":B64, "client_id":HEX32, "msgid":HEX32,
 *    "envelope":{...}}
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

#define ENTRY_MAX (128 * 1024)
#define BATCH_MAX 100
#define BATCH_BYTES (768 * 1024)        /* the relay takes 1 MiB bodies */

static char *outbox_dir(void)
{
	return st_home_path("outbox");
}

int st_outbox_add(const char *to, const struct st_identity_pub *to_id,
                  const char *msgid, const struct st_envelope *env,
                  char name[ST_OUTBOX_NAME_MAX])
{
	struct st_atomic a;

	if (st_outbox_prepare(to, to_id, msgid, env, name, &a) < 0)
		return -1;
	return st_atomic_commit(&a);
}

int st_outbox_prepare(const char *to, const struct st_identity_pub *to_id,
                      const char *msgid, const struct st_envelope *env,
                      char name[ST_OUTBOX_NAME_MAX], struct st_atomic *a)
{
	static unsigned counter;
	char cid[33], toik[ST_TO_IK_LEN + 1], *dir, *path, *s;
	unsigned char rnd[16];
	struct st_json *o;
	int rc = -1;

	if (st_random(rnd, sizeof(rnd)) < 0)
		return -1;
	st_hex_encode(rnd, sizeof(rnd), cid);
	st_identity_to_ik(to_id, toik);
	snprintf(name, ST_OUTBOX_NAME_MAX, "%012llx%04x-%s.json",
	         (unsigned long long)st_now_ms() & 0xffffffffffffULL,
	         counter++ & 0xffff, cid);
	if (!(dir = outbox_dir()))
		return -1;
	if (st_mkdir(dir, 0700) < 0) {
		free(dir);
		return -1;
	}
	o = st_json_object();
	st_json_set_int(o, "v", 1);
	st_json_set_str(o, "to", to);
	st_json_set_str(o, "to_ik", toik);
	st_json_set_str(o, "client_id", cid);
	st_json_set_str(o, "msgid", msgid);
	st_json_set(o, "envelope", st_envelope_to_json(env));
	s = st_json_dump(o);
	st_json_free(o);
	path = st_path_join(dir, name);
	rc = st_atomic_prepare(a, path, s, strlen(s), 0600);
	free(s);
	free(path);
	free(dir);
	return rc;
}

static int name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len != 54 || strcmp(n + 49, ".json") || n[16] != '-')
		return 0;
	for (size_t i = 0; i < 49; i++)
		if (i != 16 && !((n[i] >= '0' && n[i] <= '9') ||
		                 (n[i] >= 'a' && n[i] <= 'f')))
			return 0;
	return 1;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entry names in outbox/, oldest first. */
static int list_names(const char *dir, char ***names, size_t *n)
{
	struct dirent *d;
	DIR *dh;

	*names = NULL;
	*n = 0;
	if (!(dh = opendir(dir)))
		return errno == ENOENT ? 0
		       : st_error(ST_EX_NOINPUT, "cannot open %s:", dir);
	while ((d = readdir(dh))) {
		if (!name_ok(d->d_name))
			continue;
		*names = st_realloc(*names, (*n + 1) * sizeof(**names));
		(*names)[(*n)++] = st_strdup(d->d_name);
	}
	closedir(dh);
	if (*n)
		qsort(*names, *n, sizeof(**names), cmp_name);
	return 0;
}

int st_outbox_count(size_t *n)
{
	char *dir = outbox_dir(), **names;
	int rc;

	*n = 0;
	if (!dir)
		return -1;
	rc = list_names(dir, &names, n);
	for (size_t i = 0; rc == 0 && i < *n; i++)
		free(names[i]);
	free(names);
	free(dir);
	return rc;
}

/* A loaded entry: the wire object for the request, and our bookkeeping. */
struct item {
	struct st_json *wire;           /* {to, to_ik, client_id, envelope} */
	size_t bytes;
	char *path;
};

static int load_entry(const char *dir, const char *name,
                      struct st_outbox_entry *e, struct item *it)
{
	static const char *const keys[] = { "v", "to", "to_ik", "client_id",
	                                    "msgid", "envelope", NULL };
	unsigned char *buf, ik[16];
	struct st_json *j, *env;
	struct st_envelope parsed;
	const char *to, *cid, *mid, *tik;
	size_t tolen, cidlen, midlen, n;
	int64_t v;

	snprintf(e->name, sizeof(e->name), "%s", name);
	it->path = st_path_join(dir, name);
	if (st_read_file(it->path, ENTRY_MAX, &buf, &n) < 0)
		return -1;
	j = st_json_parse((char *)buf, n, ENTRY_MAX, it->path);
	free(buf);
	if (!j)
		return -1;
	if (!st_json_is_object(j) || st_json_only(j, keys) < 0 ||
	    st_json_get_int(j, "v", 1, 1, &v) < 0 ||
	    st_json_get_str(j, "to", &to, &tolen) < 0 ||
	    st_json_get_str(j, "client_id", &cid, &cidlen) < 0 ||
	    st_json_get_str(j, "msgid", &mid, &midlen) < 0 ||
	    st_json_get_str(j, "to_ik", &tik, NULL) < 0 ||
	    st_json_get_b64(j, "to_ik", ik, sizeof(ik)) < 0 ||
	    st_json_get_obj(j, "envelope", &env) < 0 ||
	    st_envelope_parse(env, &parsed) < 0)
		goto bad;
	st_envelope_free(&parsed);
	if (!st_user_ok(to, tolen) || cidlen != 32 || midlen != 32) {
		st_error(ST_EX_DATAERR, "bad field");
		goto bad;
	}
	memcpy(e->to, to, tolen + 1);
	memcpy(e->msgid, mid, 33);
	it->wire = st_json_object();
	st_json_set_str(it->wire, "to", to);
	st_json_set_str(it->wire, "to_ik", tik);
	st_json_set_str(it->wire, "client_id", cid);
	json_object_set(J(it->wire), "envelope", J(env));
	it->bytes = n;
	st_json_free(j);
	return 0;
bad:
	st_error_ctx("%s", it->path);
	st_json_free(j);
	return -1;
}

static int drop(struct item *it)
{
	if (unlink(it->path) < 0 && errno != ENOENT)
		return st_error(ST_EX_CANTCREAT, "cannot remove %s:", it->path);
	return 0;
}

/* Say who refused and why; a 409 names both safety numbers if it can. */
static void refuse(struct st_relay *r, const struct st_identity_pub *me,
                   const char *me_user, struct st_outbox_entry *e, int code,
                   const char *why)
{
	struct st_json *reply = NULL, *id;
	struct st_identity_pub served;
	struct st_identity mine;
	struct st_peer p;
	char path[64];
	long status;

	e->status = ST_OUTBOX_REFUSED;
	e->code = code;
	snprintf(e->why, sizeof(e->why), "%s", why);
	if (code != ST_EX_IDENTITY)
		return;
	/* the caller did not open our keys (st-send on an established
	 * session): open them now for our half of the safety numbers */
	memset(&mine, 0, sizeof(mine));
	if (!me && st_keystore_load_identity(&mine) == 0)
		me = &mine.pub;
	st_error_clear();
	snprintf(path, sizeof(path), "/v1/users/%s", e->to);
	if (st_relay_call(r, "GET", path, NULL, 0, &status, &reply, NULL) == 0 &&
	    st_json_get_obj(reply, "identity", &id) == 0 &&
	    st_identity_from_json(id, &served) == 0 &&
	    st_peer_check(e->to, &served, st_now_ms(), me, me_user, &p,
	                  NULL) < 0 && st_errcode() == ST_EX_IDENTITY)
		snprintf(e->why, sizeof(e->why), "%s", st_errmsg());
	st_json_free(reply);
	st_identity_wipe(&mine);
	st_error_clear();
}

/*
 * Post the KEPT entries among e[from..n) that fit one request (at most
 * `most`).  Returns 0 when the request was answered (accepted, or one
 * entry refused), -1 on a failure that keeps everything.
 */
static int post_once(struct st_relay *r, const struct st_identity_pub *me,
                     const char *me_user, struct st_outbox_entry *e,
                     struct item *it, size_t from, size_t n, size_t most,
                     int *single)
{
	struct st_json *body = st_json_object(), *arr = st_json_array(),
	               *reply = NULL, *ids;
	size_t pick[BATCH_MAX], k = 0, bytes = 0;
	const char *code, *who, *s;
	long status;
	int rc;

	st_json_set(body, "messages", arr);
	for (size_t i = from; i < n && k < most; i++) {
		if (e[i].status != ST_OUTBOX_KEPT)
			continue;
		if (k && bytes + it[i].bytes > BATCH_BYTES)
			break;
		json_array_append(J(arr), J(it[i].wire));
		bytes += it[i].bytes;
		pick[k++] = i;
	}
	rc = st_relay_call(r, "POST", "/v1/messages", body, 0, &status,
	                   &reply, &code);
	st_json_free(body);
	/* tests kill us here: accepted by the relay, still in the outbox */
	if (rc == 0 && getenv("ST_TEST_CRASH") &&
	    !strcmp(getenv("ST_TEST_CRASH"), "send-posted"))
		raise(SIGKILL);
	if (rc == 0) {
		if (st_json_get_arr(reply, "ids", &ids) < 0 ||
		    st_json_array_size(ids) != k) {
			st_json_free(reply);
			return st_error(ST_EX_UNAVAILABLE, "relay %s: bad POST "
			                "/v1/messages reply", st_relay_base(r));
		}
		for (size_t i = 0; i < k; i++) {
			size_t len;

			if (st_json_as_str(st_json_array_get(ids, i), &s,
			                   &len) < 0 || len >= sizeof(e->relay_id)) {
				st_json_free(reply);
				return st_error(ST_EX_UNAVAILABLE, "relay %s: bad "
				                "message id in reply",
				                st_relay_base(r));
			}
			e[pick[i]].status = ST_OUTBOX_SENT;
			memcpy(e[pick[i]].relay_id, s, len + 1);
			if (drop(&it[pick[i]]) < 0) {
				st_json_free(reply);
				return -1;
			}
		}
		st_json_free(reply);
		return 0;
	}
	/* refused for good: 404 unknown_user, 409 identity_changed */
	who = NULL;
	if (reply && (status == 404 || status == 409) && code &&
	    (!strcmp(code, "unknown_user") || !strcmp(code, "identity_changed")) &&
	    st_json_get(reply, "user"))
		st_json_get_str(reply, "user", &who, NULL);
	for (size_t i = 0; who && i < k; i++) {
		struct st_outbox_entry *x = &e[pick[i]];
		char why[512];

		if (strcmp(x->to, who))
			continue;
		if (status == 404)
			snprintf(why, sizeof(why), "no such user: %s at %s "
			         "(st-users lists the users there)", x->to,
			         st_relay_base(r));
		else
			snprintf(why, sizeof(why), "the relay holds another "
			         "identity key for %s than the pinned one; compare "
			         "safety numbers with %s, then run 'st-users trust "
			         "%s'", x->to, x->to, x->to);
		refuse(r, me, me_user, x, status == 404 ? ST_EX_NO
		       : ST_EX_IDENTITY, why);
		st_json_free(reply);
		return drop(&it[pick[i]]);
	}
	st_json_free(reply);
	/* another 4xx: some entry this relay will never take; find it alone */
	if (st_errcode() == ST_EX_DATAERR && status >= 400 && status < 500) {
		if (k > 1) {
			*single = 1;
			return 0;
		}
		refuse(r, me, me_user, &e[pick[0]], ST_EX_DATAERR, st_errmsg());
		return drop(&it[pick[0]]);
	}
	return -1;
}

int st_outbox_flush(struct st_relay *r, const struct st_identity_pub *me,
                    const char *me_user, struct st_outbox_entry **out,
                    size_t *nout)
{
	char *dir = outbox_dir(), **names = NULL;
	struct st_outbox_entry *e = NULL;
	struct item *it = NULL;
	size_t n = 0, from = 0;
	int rc = -1, single = 0;

	*out = NULL;
	*nout = 0;
	if (!dir || list_names(dir, &names, &n) < 0)
		goto done;
	e = st_calloc(n ? n : 1, sizeof(*e));
	it = st_calloc(n ? n : 1, sizeof(*it));
	for (size_t i = 0; i < n; i++) {
		if (load_entry(dir, names[i], &e[i], &it[i]) < 0) {
			/* unreadable: keep the file for a human, skip it */
			e[i].status = ST_OUTBOX_REFUSED;
			e[i].code = ST_EX_DATAERR;
			snprintf(e[i].why, sizeof(e[i].why), "left in the "
			         "outbox: %s", st_errmsg());
		}
	}
	rc = 0;
	while (rc == 0) {
		while (from < n && e[from].status != ST_OUTBOX_KEPT)
			from++;
		if (from == n)
			break;
		rc = post_once(r, me, me_user, e, it, from, n,
		               single ? 1 : BATCH_MAX, &single);
	}
	/* the removals are not synced: an entry that comes back after a
	 * crash is posted again with its client_id, which the relay keeps
	 * once, and the recipient's ratchet drops a copy it already read */
done:
	for (size_t i = 0; i < n; i++) {
		st_json_free(it[i].wire);
		free(it[i].path);
		free(names[i]);
	}
	free(it);
	free(names);
	free(dir);
	*out = e;
	*nout = n;
	return rc;
}

void st_outbox_free(struct st_outbox_entry *e, size_t n)
{
	(void)n;
	free(e);
}
