/*
 * send.c - st-send's work before the relay sees anything (SPEC §4 "State
 * discipline"): resolve every recipient, upload attachments, encode the
 * inner message once, and per recipient encrypt, commit the ratchet state
 * durably, and only then queue the envelope in outbox/ (outbox.c posts it).
 *
 * The order matters.  Resolution comes first and touches no session, so
 * an unknown user or a changed identity stops the send before anything is
 * encrypted for anyone.  The ratchet state is on disk before the envelope
 * exists anywhere but in memory: a crash after that loses at most a
 * message nobody received, never reuses a message key.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

#define SESSION_MAX (16 * 1024 * 1024)
#define RELAY_ENVELOPE_MAX 65536        /* the relay's default envelope cap */

/* Tests kill the process at a named step (ST_TEST_CRASH=step). */
static void crash_point(const char *step)
{
	const char *e = getenv("ST_TEST_CRASH");

	if (e && !strcmp(e, step))
		raise(SIGKILL);
}

/* ---- ratchet/NAME.json ---- */

static char *session_path(const char *user)
{
	char name[ST_USER_MAX + 8], *dir, *p;

	if (!st_user_ok(user, strlen(user))) {
		st_error(ST_EX_USAGE, "bad user name '%.64s'", user);
		return NULL;
	}
	snprintf(name, sizeof(name), "%s.json", user);
	if (!(dir = st_home_path("ratchet")))
		return NULL;
	p = st_path_join(dir, name);
	free(dir);
	return p;
}

struct st_ratchet *st_session_load(const char *user)
{
	char *path = session_path(user);
	unsigned char *buf;
	struct st_json *j;
	struct st_ratchet *r;
	size_t n;

	if (!path)
		return NULL;
	errno = 0;
	if (st_read_file(path, SESSION_MAX, &buf, &n) < 0) {
		if (errno == ENOENT) {
			st_error_clear();
			free(path);
			return st_ratchet_new();
		}
		free(path);
		return NULL;
	}
	j = st_json_parse((char *)buf, n, SESSION_MAX, path);
	st_free_secret(buf, n);
	r = j ? st_ratchet_from_json(j) : NULL;
	if (j && !r)
		st_error_ctx("%s", path);
	st_json_free_secret(j);
	free(path);
	return r;
}

int st_session_prepare(const char *user, const struct st_ratchet *r,
                       struct st_atomic *a)
{
	char *path = session_path(user), *dir, *s;
	struct st_json *j;
	int rc;

	if (!path)
		return -1;
	dir = st_home_path("ratchet");
	rc = st_mkdir(dir, 0700);
	free(dir);
	if (rc == 0) {
		j = st_ratchet_to_json(r);
		s = st_json_dump(j);
		st_json_free_secret(j);
		rc = st_atomic_prepare(a, path, s, strlen(s), 0600);
		st_free_str_secret(s);
	}
	free(path);
	return rc;
}

int st_session_save(const char *user, const struct st_ratchet *r)
{
	struct st_atomic a;

	if (st_session_prepare(user, r, &a) < 0)
		return -1;
	return st_atomic_commit(&a);
}

static void crash_committed(void)
{
	crash_point("send-committed");
}

/* ---- resolving recipients ---- */

struct rcpt {
	const char *user;
	struct st_peer pin;
	struct st_ratchet *r;
};

/* GET /v1/users/NAME: the identity the directory serves. */
static int directory(struct st_relay *rl, const char *user,
                     struct st_identity_pub *id)
{
	struct st_json *reply = NULL, *o;
	char path[64];
	long status;
	int rc;

	snprintf(path, sizeof(path), "/v1/users/%s", user);
	rc = st_relay_call(rl, "GET", path, NULL, 0, &status, &reply, NULL);
	if (rc < 0 && status == 404)
		rc = st_account_no_user(rl, user);
	else if (rc == 0 && (st_json_get_obj(reply, "identity", &o) < 0 ||
	                     st_identity_from_json(o, id) < 0))
		rc = st_error(ST_EX_DATAERR, "relay %s: bad identity for %s: %s",
		              st_relay_base(rl), user, st_errmsg());
	st_json_free(reply);
	return rc;
}

/* POST /v1/users/NAME/bundle, verified, and for the pinned identity. */
static int bundle(struct st_relay *rl, const char *user,
                  const struct st_peer *pin, struct st_bundle *b)
{
	struct st_json *reply = NULL;
	struct st_json *none = st_json_object();
	char path[80];
	long status;
	int rc;

	snprintf(path, sizeof(path), "/v1/users/%s/bundle", user);
	rc = st_relay_call(rl, "POST", path, none, 0, &status, &reply, NULL);
	st_json_free(none);
	if (rc < 0 && status == 404)
		rc = st_account_no_user(rl, user);
	else if (rc == 0 && st_bundle_parse(reply, b) < 0)
		rc = st_error(ST_EX_DATAERR, "relay %s: bad bundle for %s: %s",
		              st_relay_base(rl), user, st_errmsg());
	else if (rc == 0 && strcmp(b->user, user))
		rc = st_error(ST_EX_DATAERR, "relay %s: asked for %s's bundle, "
		              "got %.40s's", st_relay_base(rl), user, b->user);
	else if (rc == 0 &&
	         (memcmp(b->id.ed25519, pin->id.ed25519, 32) ||
	          memcmp(b->id.x25519, pin->id.x25519, 32)))
		rc = st_error(ST_EX_IDENTITY, "the bundle for %s carries an "
		              "identity other than the pinned one; nothing was "
		              "sent: compare safety numbers with %s ('st-users "
		              "%s' shows them), then run 'st-users trust %s'",
		              user, user, user, user);
	st_json_free(reply);
	return rc;
}

static int resolve(struct st_relay *rl, struct st_identity *me,
                   int *me_loaded, const char *me_user, int trust_new,
                   struct rcpt *x)
{
	struct st_identity_pub served;
	struct st_bundle b;
	int64_t now = st_now_ms();
	int changed, pinned = st_peer_load(x->user, &x->pin) == 0;

	if (!pinned && st_errcode() != ST_EX_NOINPUT)
		return -1;
	if (!(x->r = st_session_load(x->user)))
		return -1;
	if (pinned && st_ratchet_has_session(x->r))
		return 0;
	/* our keys are opened only now, when a session must be made */
	if (!*me_loaded) {
		if (st_keystore_load_identity(me) < 0)
			return -1;
		*me_loaded = 1;
	}
	if (directory(rl, x->user, &served) < 0)
		return -1;
	if (st_peer_check(x->user, &served, now, &me->pub, me_user, &x->pin,
	                  NULL) < 0) {
		if (st_errcode() != ST_EX_IDENTITY || !trust_new)
			return -1;
		/* --trust-new=always: accept the key; the old session goes */
		st_error_clear();
		if (st_peer_trust(x->user, &served, now, &x->pin, &changed) < 0)
			return -1;
		st_ratchet_free(x->r);
		x->r = st_ratchet_new();
	}
	if (bundle(rl, x->user, &x->pin, &b) < 0)
		return -1;
	return st_ratchet_initiate(x->r, me, me_user, &b, NULL);
}

int st_send_retrust(struct st_relay *rl, const char *user)
{
	struct st_identity_pub served;
	struct st_peer p;
	int changed;

	if (directory(rl, user, &served) < 0)
		return -1;
	return st_peer_trust(user, &served, st_now_ms(), &p, &changed);
}

/* ---- attachments ---- */

static int attach(struct st_relay *rl, const char *path,
                  struct st_msg_file *f)
{
	struct stat st;
	const char *base;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return st_error(ST_EX_NOINPUT, "cannot open %s:", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return st_error(ST_EX_NOINPUT, "%s is not a regular file", path);
	}
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	f->name = st_safe_basename(base, strlen(base), "attachment");
	if (!st_utf8_ok(f->name, strlen(f->name))) {
		/* the name goes in JSON: keep it valid UTF-8 */
		free(f->name);
		f->name = st_strdup("attachment");
	}
	f->size = (uint64_t)st.st_size;
	rc = st_blob_upload(rl, fd, f->size, f->key, &f->blob);
	close(fd);
	if (rc < 0)
		st_error_ctx("cannot send %s", path);
	return rc;
}

/* ---- the whole send ---- */

size_t st_send_max_plain(void)
{
	struct st_envelope e;
	struct st_json *j;
	char *s;
	size_t fixed, n;

	/* the envelope's JSON around a ciphertext, at its largest */
	memset(&e, 0xff, sizeof(e));
	e.has_x3dh = e.has_opk = 1;
	e.ik[0] = 1;
	e.ct = NULL;
	e.ctlen = 0;
	j = st_envelope_to_json(&e);
	s = st_json_dump(j);
	fixed = strlen(s);
	free(s);
	st_json_free(j);
	/* base64url without padding: 4 characters per 3 bytes */
	n = (RELAY_ENVELOPE_MAX - fixed) / 4 * 3 - ST_AEAD_TAG_LEN;
	return n / ST_MSG_PAD * ST_MSG_PAD;
}

static int encode(struct st_send *s, struct st_msg_file *files,
                  unsigned char **pt, size_t *ptlen)
{
	struct st_msg m;

	memset(&m, 0, sizeof(m));
	if (!s->keep_msgid && st_msg_new_id(s->msgid) < 0)
		return -1;
	memcpy(m.id, s->msgid, 33);
	m.ts = st_now_ms();
	m.to = (char **)(s->group ? s->group : s->to);
	m.nto = s->group ? s->ngroup : s->nto;
	m.has_body = s->has_body;
	m.body = (unsigned char *)s->body;
	m.bodylen = s->bodylen;
	m.files = files;
	m.nfiles = s->nfiles;
	if (st_msg_encode(&m, pt, ptlen) < 0 || *ptlen > st_send_max_plain()) {
		if (*pt)
			st_free_secret(*pt, *ptlen);
		*pt = NULL;
		return st_error(ST_EX_DATAERR, "message is too large (%zu bytes "
		                "with its metadata; at most %zu): send it as a "
		                "file with -a", s->bodylen, st_send_max_plain());
	}
	return 0;
}

int st_send_queue(struct st_relay *rl, struct st_identity *me,
                  const char *me_user, struct st_send *s)
{
	struct rcpt *x = st_calloc(s->nto, sizeof(*x));
	struct st_msg_file *files = st_calloc(s->nfiles ? s->nfiles : 1,
	                                      sizeof(*files));
	unsigned char *pt = NULL;
	size_t ptlen = 0, i;
	int rc = -1;

	s->queued = st_calloc(s->nto, sizeof(*s->queued));
	for (i = 0; i < s->nto; i++) {
		x[i].user = s->to[i];
		if (!strcmp(s->to[i], me_user)) {
			st_error(ST_EX_USAGE, "cannot send to yourself (%s)",
			         me_user);
			goto out;
		}
		if (resolve(rl, me, &s->identity_loaded, me_user, s->trust_new,
		            &x[i]) < 0)
			goto out;
	}
	/* refuse an oversized body before uploading anything */
	if (s->has_body && s->bodylen > st_send_max_plain())
		goto too_large;
	for (i = 0; i < s->nfiles; i++)
		if (attach(rl, s->files[i], &files[i]) < 0)
			goto out;
	if (encode(s, files, &pt, &ptlen) < 0)
		goto out;
	for (i = 0; i < s->nto; i++) {
		struct st_envelope env;
		struct st_atomic ra, oa;

		if (st_ratchet_encrypt(x[i].r, pt, ptlen, &env) < 0)
			goto out;
		/* durable state first: the envelope must never outlive it */
		if (st_session_prepare(x[i].user, x[i].r, &ra) < 0) {
			st_envelope_free(&env);
			goto out;
		}
		if (st_outbox_prepare(x[i].user, &x[i].pin.id, s->msgid, &env,
		                      s->queued[i], &oa) < 0) {
			st_atomic_abort(&ra);
			st_envelope_free(&env);
			goto out;
		}
		if (st_atomic_commit_ordered(&ra, &oa, crash_committed) < 0) {
			st_envelope_free(&env);
			goto out;
		}
		st_envelope_free(&env);
	}
	crash_point("send-queued");
	rc = 0;
	goto out;
too_large:
	st_error(ST_EX_DATAERR, "message is too large (%zu bytes; at most "
	         "about %zu): send it as a file with -a", s->bodylen,
	         st_send_max_plain() - 256);
out:
	if (pt)
		st_free_secret(pt, ptlen);
	for (i = 0; i < s->nto; i++)
		st_ratchet_free(x[i].r);
	free(x);
	for (i = 0; i < s->nfiles; i++) {
		free(files[i].name);
		free(files[i].blob);
		st_wipe(files[i].key, sizeof(files[i].key));
	}
	free(files);
	return rc;
}
