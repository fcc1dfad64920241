/*
 * peers.c - pinned identities of other users (peers/NAME.json, SPEC §3
 * and §4 "Trust"): trust on first use pins whatever identity the relay
 * serves the first time; afterwards a different identity is refused with
 * ST_EX_IDENTITY until the user accepts it (st-users trust), which also
 * drops the Double Ratchet state built on the old key.  The file format is
 * in doc/st.5.  Callers that write hold the home lock.
 *
 * Every name is checked against the username rule before it becomes part
 * of a path, so no peer name can point outside peers/.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define PEER_MAX (16 * 1024)

static char *peer_path(const char *dir, const char *user, const char *ext)
{
	char name[ST_USER_MAX + 8];
	char *d, *p;

	snprintf(name, sizeof(name), "%s%s", user, ext);
	if (!(d = st_home_path(dir)))
		return NULL;
	p = st_path_join(d, name);
	free(d);
	return p;
}

static int name_ok(const char *user)
{
	return st_account_name_ok(user);
}

const char *st_trust_name(enum st_trust t)
{
	return t == ST_TRUST_VERIFIED ? "verified" : "tofu";
}

int st_peer_load(const char *user, struct st_peer *p)
{
	static const char *const keys[] = { "v", "user", "identity", "trust",
	                                    "first_seen", "last_seen", NULL };
	unsigned char *buf;
	struct st_json *j = NULL, *id;
	const char *u, *t;
	char *path;
	size_t n;
	int64_t v;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (name_ok(user) < 0 || !(path = peer_path("peers", user, ".json")))
		return -1;
	errno = 0;
	if (st_read_file(path, PEER_MAX, &buf, &n) < 0) {
		if (errno == ENOENT)
			st_error(ST_EX_NOINPUT, "no pinned identity for %s", user);
		goto out;
	}
	j = st_json_parse((char *)buf, n, PEER_MAX, path);
	free(buf);
	if (!j)
		goto out;
	if (!st_json_is_object(j) || st_json_only(j, keys) < 0 ||
	    st_json_get_int(j, "v", 1, 1, &v) < 0 ||
	    st_json_get_str(j, "user", &u, NULL) < 0 ||
	    st_json_get_obj(j, "identity", &id) < 0 ||
	    st_identity_from_json(id, &p->id) < 0 ||
	    st_json_get_str(j, "trust", &t, NULL) < 0 ||
	    st_json_get_int(j, "first_seen", 0, INT64_MAX, &p->first_seen) < 0 ||
	    st_json_get_int(j, "last_seen", 0, INT64_MAX, &p->last_seen) < 0) {
		st_error_ctx("%s", path);
		goto out;
	}
	if (strcmp(u, user)) {
		st_error(ST_EX_DATAERR, "%s: pins '%.64s', not %s", path, u, user);
		goto out;
	}
	if (!strcmp(t, "tofu"))
		p->trust = ST_TRUST_TOFU;
	else if (!strcmp(t, "verified"))
		p->trust = ST_TRUST_VERIFIED;
	else {
		st_error(ST_EX_DATAERR, "%s: unknown trust '%.20s'", path, t);
		goto out;
	}
	memcpy(p->user, user, strlen(user) + 1);
	rc = 0;
out:
	if (rc < 0)
		memset(p, 0, sizeof(*p));
	st_json_free(j);
	free(path);
	return rc;
}

int st_peer_save(const struct st_peer *p)
{
	struct st_json *o;
	char *dir, *path, *s;
	int rc = -1;

	if (name_ok(p->user) < 0 || st_home_ensure() < 0)
		return -1;
	dir = st_home_path("peers");
	path = peer_path("peers", p->user, ".json");
	if (!dir || !path || st_mkdir(dir, 0700) < 0)
		goto out;
	o = st_json_object();
	st_json_set_int(o, "v", 1);
	st_json_set_str(o, "user", p->user);
	st_json_set(o, "identity", st_identity_to_json(&p->id));
	st_json_set_str(o, "trust", st_trust_name(p->trust));
	st_json_set_int(o, "first_seen", p->first_seen);
	st_json_set_int(o, "last_seen", p->last_seen);
	s = st_json_dump(o);
	st_json_free(o);
	rc = st_write_atomic(path, s, strlen(s), 0600);
	free(s);
out:
	free(dir);
	free(path);
	return rc;
}

/* Remove a file if present; 1 when it was there. */
static int remove_file(char *path)
{
	int rc = 0;

	if (!path)
		return -1;
	if (unlink(path) == 0)
		rc = st_fsync_dir(path) < 0 ? -1 : 1;
	else if (errno != ENOENT)
		rc = st_error(ST_EX_CANTCREAT, "cannot remove %s:", path);
	free(path);
	return rc;
}

int st_peer_drop_session(const char *user)
{
	if (name_ok(user) < 0)
		return -1;
	return remove_file(peer_path("ratchet", user, ".json")) < 0 ? -1 : 0;
}

int st_peer_forget(const char *user)
{
	int rc;

	if (name_ok(user) < 0)
		return -1;
	if ((rc = remove_file(peer_path("peers", user, ".json"))) < 0)
		return -1;
	if (st_peer_drop_session(user) < 0)
		return -1;
	if (rc == 0)
		return st_error(ST_EX_NO, "no pinned identity for %s", user);
	return 0;
}

static int same_id(const struct st_identity_pub *a,
                   const struct st_identity_pub *b)
{
	return !memcmp(a->ed25519, b->ed25519, 32) &&
	       !memcmp(a->x25519, b->x25519, 32);
}

/* " (pinned safety number ..., now ...)" when me is known; else "". */
static void both_numbers(const struct st_identity_pub *me, const char *me_user,
                         const char *user, const struct st_identity_pub *old,
                         const struct st_identity_pub *now, char *out,
                         size_t cap)
{
	char a[ST_SAFETY_LEN + 1], b[ST_SAFETY_LEN + 1];
	char da[ST_SAFETY_DISPLAY_LEN + 1], db[ST_SAFETY_DISPLAY_LEN + 1];

	*out = '\0';
	if (!me || !me_user ||
	    st_safety_number(me, me_user, old, user, a) < 0 ||
	    st_safety_number(me, me_user, now, user, b) < 0) {
		st_error_clear();
		return;
	}
	st_safety_display(a, da);
	st_safety_display(b, db);
	snprintf(out, cap, " (safety number was %s, now %s)", da, db);
}

int st_peer_check(const char *user, const struct st_identity_pub *served,
                  int64_t now_ms, const struct st_identity_pub *me,
                  const char *me_user, struct st_peer *p, int *pinned)
{
	char nums[200];

	if (pinned)
		*pinned = 0;
	if (st_peer_load(user, p) < 0) {
		if (st_errcode() != ST_EX_NOINPUT)
			return -1;
		st_error_clear();
		memset(p, 0, sizeof(*p));
		memcpy(p->user, user, strlen(user) + 1);
		p->id = *served;
		p->trust = ST_TRUST_TOFU;
		p->first_seen = p->last_seen = now_ms;
		if (pinned)
			*pinned = 1;
		return st_peer_save(p);
	}
	if (!same_id(&p->id, served)) {
		both_numbers(me, me_user, user, &p->id, served, nums,
		             sizeof(nums));
		return st_error(ST_EX_IDENTITY, "identity of %s changed%s; "
		                "nothing was accepted from the new key: compare "
		                "safety numbers with %s, then run "
		                "'st-users trust %s'", user, nums, user, user);
	}
	if (now_ms > p->last_seen) {
		p->last_seen = now_ms;
		return st_peer_save(p);
	}
	return 0;
}

int st_peer_trust(const char *user, const struct st_identity_pub *id,
                  int64_t now_ms, struct st_peer *p, int *changed)
{
	int had;

	*changed = 1;
	had = st_peer_load(user, p) == 0;
	if (!had && st_errcode() != ST_EX_NOINPUT)
		return -1;
	st_error_clear();
	if (had && same_id(&p->id, id)) {
		*changed = 0;
		p->last_seen = now_ms > p->last_seen ? now_ms : p->last_seen;
		return st_peer_save(p);
	}
	memset(p, 0, sizeof(*p));
	memcpy(p->user, user, strlen(user) + 1);
	p->id = *id;
	p->trust = ST_TRUST_TOFU;
	p->first_seen = p->last_seen = now_ms;
	/* the old session was built on the old key: the next send starts a
	 * new X3DH; the pin goes first, so a crash cannot keep the session
	 * with the new key accepted */
	if (st_peer_save(p) < 0)
		return -1;
	return st_peer_drop_session(user);
}

int st_peer_verify(const char *user, const struct st_identity_pub *me,
                   const char *me_user, const char *digits,
                   struct st_peer *p)
{
	char num[ST_SAFETY_LEN + 1];

	if (st_peer_load(user, p) < 0)
		return -1;
	if (st_safety_number(me, me_user, &p->id, user, num) < 0)
		return -1;
	if (st_safety_match(digits, num) < 0)
		return st_error(ST_EX_NO, "safety numbers differ: %s is not "
		                "verified; 'st-users %s' shows the number to "
		                "compare", user, user);
	p->trust = ST_TRUST_VERIFIED;
	return st_peer_save(p);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int st_peer_list(char ***names, size_t *n)
{
	char *dir = st_home_path("peers");
	struct dirent *e;
	DIR *d;

	*names = NULL;
	*n = 0;
	if (!dir)
		return -1;
	if (!(d = opendir(dir))) {
		int rc = errno == ENOENT ? 0 :
		         st_error(ST_EX_NOINPUT, "cannot open %s:", dir);

		free(dir);
		return rc;
	}
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len < 6 || strcmp(e->d_name + len - 5, ".json") ||
		    !st_user_ok(e->d_name, len - 5))
			continue;
		*names = st_realloc(*names, (*n + 1) * sizeof(**names));
		(*names)[(*n)++] = st_strndup(e->d_name, len - 5);
	}
	closedir(d);
	free(dir);
	if (*n)
		qsort(*names, *n, sizeof(**names), cmp_str);
	return 0;
}

void st_peer_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
