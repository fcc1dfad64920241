/*
 * api_account.c - accounts, sessions, the user directory and prekeys.
 *
 * Passwords are hashed with Argon2id and checked on a worker thread (the
 * job's cpu stage), the comparison in constant time; an unknown user costs
 * the same Argon2 run against a dummy hash, so both answer alike.  Every
 * signature (identity binding, signed prekey) is verified there too before
 * anything is stored.
 */
#include <stdlib.h>
#include <string.h>

#include <argon2.h>

#include "api.h"

#define MAX_UPLOAD_OPKS 100
#define PW_MIN 8
#define PW_MAX 1024

/* ---- passwords ---- */

static int pw_hash(const struct st_store_pw *pw, const char *p, size_t n,
                   unsigned char out[32])
{
	int rc = argon2id_hash_raw(pw->t, pw->m, pw->p, p, n, pw->salt,
	                           sizeof(pw->salt), out, 32);

	return rc == ARGON2_OK ? 0 :
	       st_error(ST_EX_UNAVAILABLE, "argon2: %s", argon2_error_message(rc));
}

static int pw_make(const struct st_conf *c, const char *p, size_t n,
                   struct st_store_pw *pw)
{
	pw->m = c->argon2_m;
	pw->t = c->argon2_t;
	pw->p = c->argon2_p;
	return st_random(pw->salt, sizeof(pw->salt)) < 0 ? -1 :
	       pw_hash(pw, p, n, pw->hash);
}

/* 0 when p is the password; an unknown user (pw NULL) costs the same. */
static int pw_check(const struct st_api *a, const struct st_store_pw *pw,
                    const char *p, size_t n)
{
	struct st_store_pw dummy = { .m = a->conf->argon2_m,
	                             .t = a->conf->argon2_t,
	                             .p = a->conf->argon2_p };
	unsigned char h[32];
	int rc;

	if (!pw) {
		memcpy(dummy.salt, a->dummy_salt, sizeof(dummy.salt));
		pw = &dummy;
	}
	rc = pw_hash(pw, p, n, h);
	if (rc == 0)
		rc = st_memeq_ct(h, pw->hash, 32) == 0 && pw != &dummy ? 0 : 1;
	st_wipe(h, sizeof(h));
	return rc;
}

/* Take the password out of a parsed body into a wiped-on-free copy. */
static int get_password(struct st_json *b, struct st_api_resp *r, size_t min,
                        char **out, size_t *len)
{
	const char *s;

	if (st_json_get_str(b, "password", &s, len) < 0) {
		st_api_error(r, 400, "bad_request", "%s", st_errmsg());
		return -1;
	}
	if (*len < min || *len > PW_MAX) {
		st_api_error(r, 400, "bad_password", "a password has %d to %d "
		             "bytes", PW_MIN, PW_MAX);
		return -1;
	}
	*out = st_strndup(s, *len);
	/* Jansson frees its copy without wiping it */
	st_wipe((char *)s, *len);
	return 0;
}

static int get_user(struct st_json *b, const char *key, struct st_api_resp *r,
                    char out[ST_USER_MAX + 1])
{
	const char *s;
	size_t n;

	if (st_json_get_str(b, key, &s, &n) < 0) {
		st_api_error(r, 400, "bad_request", "%s", st_errmsg());
		return -1;
	}
	if (!st_user_ok(s, n)) {
		st_api_error(r, 400, "bad_user", "'%s' must match "
		             "^[a-z0-9][a-z0-9._-]{0,31}$", key);
		return -1;
	}
	memcpy(out, s, n + 1);
	return 0;
}

/* The {name} path segment as a user name. */
static int param_user(struct st_api_req *q, struct st_api_resp *r,
                      char out[ST_USER_MAX + 1])
{
	if (!st_user_ok(q->param, q->paramlen)) {
		st_api_error(r, 400, "bad_user", "user names match "
		             "^[a-z0-9][a-z0-9._-]{0,31}$");
		return -1;
	}
	memcpy(out, q->param, q->paramlen);
	out[q->paramlen] = '\0';
	return 0;
}

/* ---- keys in JSON ---- */

/* A base64url key: 400 when missing or not a string, 422 when malformed. */
static int get_key(const struct st_json *o, const char *key, void *out,
                   size_t n, struct st_api_resp *r, const char *what)
{
	const char *s;

	if (st_json_get_str(o, key, &s, NULL) < 0) {
		st_api_error(r, 400, "bad_request", "%s: %s", what, st_errmsg());
		return -1;
	}
	if (st_json_get_b64(o, key, out, n) < 0) {
		st_api_error(r, 422, "bad_encoding", "%s: %s", what, st_errmsg());
		return -1;
	}
	return 0;
}

static int get_id(const struct st_json *o, struct st_api_resp *r,
                  const char *what, uint32_t *id)
{
	int64_t v;

	if (st_json_get_int(o, "id", 0, UINT32_MAX, &v) < 0) {
		st_api_error(r, 400, "bad_request", "%s: %s", what, st_errmsg());
		return -1;
	}
	*id = (uint32_t)v;
	return 0;
}

static int get_identity(const struct st_json *b, struct st_api_resp *r,
                        struct st_identity_pub *ik)
{
	struct st_json *o;

	if (st_json_get_obj(b, "identity", &o) < 0) {
		st_api_error(r, 400, "bad_request", "%s", st_errmsg());
		return -1;
	}
	return get_key(o, "ed25519", ik->ed25519, 32, r, "identity") < 0 ||
	       get_key(o, "x25519", ik->x25519, 32, r, "identity") < 0 ||
	       get_key(o, "bind", ik->bind, 64, r, "identity") < 0 ? -1 : 0;
}

static int get_spk(const struct st_json *b, struct st_api_resp *r,
                   struct st_store_spk *k)
{
	struct st_json *o;

	if (st_json_get_obj(b, "spk", &o) < 0) {
		st_api_error(r, 400, "bad_request", "%s", st_errmsg());
		return -1;
	}
	k->created = st_now_ms();
	return get_id(o, r, "spk", &k->id) < 0 ||
	       get_key(o, "pub", k->pub, 32, r, "spk") < 0 ||
	       get_key(o, "sig", k->sig, 64, r, "spk") < 0 ? -1 : 0;
}

/* opks, when present: up to 100 {id, pub}; *n is 0 when absent. */
static int get_opks(const struct st_json *b, struct st_api_resp *r,
                    struct st_store_opk *k, size_t *n)
{
	struct st_json *arr;

	*n = 0;
	if (!st_json_get(b, "opks"))
		return 0;
	if (st_json_get_arr(b, "opks", &arr) < 0) {
		st_api_error(r, 400, "bad_request", "%s", st_errmsg());
		return -1;
	}
	if (st_json_array_size(arr) > MAX_UPLOAD_OPKS) {
		st_api_error(r, 422, "too_many_prekeys", "at most %d one-time "
		             "prekeys per request", MAX_UPLOAD_OPKS);
		return -1;
	}
	for (size_t i = 0; i < st_json_array_size(arr); i++) {
		struct st_json *o = st_json_array_get(arr, i);

		if (!st_json_is_object(o)) {
			st_api_error(r, 400, "bad_request", "opks[%zu] is not "
			             "an object", i);
			return -1;
		}
		if (get_id(o, r, "opks", &k[i].id) < 0 ||
		    get_key(o, "pub", k[i].pub, 32, r, "opks") < 0)
			return -1;
	}
	*n = st_json_array_size(arr);
	return 0;
}

static int verify_spk(struct st_job *j, const struct st_identity_pub *ik,
                      const struct st_store_spk *k)
{
	if (st_spk_verify(ik->ed25519, k->id, k->pub, k->sig) < 0)
		return st_job_fail(j, 422, "bad_signature", "the signed "
		                   "prekey's signature does not verify");
	return 0;
}

static void job_free(struct st_job *j)
{
	free(j);
}

/* ---- POST /v1/accounts ---- */

struct reg_job {
	struct st_job j;
	struct st_store_user u;
	char *pw;
	size_t pwlen;
	struct st_store_spk spk;
	struct st_store_opk opks[MAX_UPLOAD_OPKS];
	size_t nopks;
};

static int reg_cpu(struct st_api *a, struct st_job *j)
{
	struct reg_job *g = (struct reg_job *)j;

	if (st_identity_verify(&g->u.ik) < 0)
		return st_job_fail(j, 422, "bad_signature", "the identity's "
		                   "binding signature does not verify");
	if (verify_spk(j, &g->u.ik, &g->spk) < 0)
		return -1;
	if (pw_make(a->conf, g->pw, g->pwlen, &g->u.pw) < 0)
		return st_job_fail(j, 500, "internal", "%s", st_errmsg());
	return 0;
}

static int reg_write(struct st_api *a, struct st_job *j)
{
	struct reg_job *g = (struct reg_job *)j;
	int rc = st_store_user_create(a->store, &g->u, &g->spk, g->opks,
	                              g->nopks);

	if (rc == ST_STORE_TAKEN)
		return st_job_fail(j, 409, "user_taken", "the user name is "
		                   "taken");
	if (rc == ST_STORE_ID_REUSED)
		return st_job_fail(j, 409, "id_reused", "a one-time prekey id "
		                   "appears twice");
	return rc ? st_job_fault(j) : 0;
}

static void reg_finish(struct st_api *a, struct st_job *j,
                       struct st_api_resp *r)
{
	struct reg_job *g = (struct reg_job *)j;
	struct st_json *o = st_json_object();

	st_json_set_str(o, "user", g->u.name);
	st_json_set_int(o, "created", g->u.created);
	st_api_json(r, 201, o);
}

static void reg_free(struct st_job *j)
{
	struct reg_job *g = (struct reg_job *)j;

	st_free_secret(g->pw, g->pwlen);
	st_free_secret(g, sizeof(*g));
}

void st_api_account_create(struct st_api *a, struct st_api_req *q,
                           struct st_api_resp *r)
{
	struct reg_job *g;
	struct st_json *b;
	struct st_store_user old;
	int rc;

	if (st_api_limit(a, r, ST_RL_ACCOUNT, q->ip, 1) < 0 ||
	    !(b = st_api_parse(q, r)))
		return;
	g = st_calloc(1, sizeof(*g));
	if (get_user(b, "user", r, g->u.name) < 0 ||
	    get_password(b, r, PW_MIN, &g->pw, &g->pwlen) < 0 ||
	    get_identity(b, r, &g->u.ik) < 0 || get_spk(b, r, &g->spk) < 0 ||
	    get_opks(b, r, g->opks, &g->nopks) < 0)
		goto fail;
	/* spare the Argon2 run when the answer is already known */
	if ((rc = st_store_user_get(a->store, g->u.name, &old)) != ST_STORE_NOTFOUND) {
		if (rc < 0)
			st_api_fault(r);
		else
			st_api_error(r, 409, "user_taken", "the user name is taken");
		goto fail;
	}
	g->u.created = st_now_ms();
	g->j.cpu = reg_cpu;
	g->j.write = reg_write;
	g->j.finish = reg_finish;
	g->j.free = reg_free;
	st_json_free(b);
	st_api_defer(r, &g->j);
	return;
fail:
	st_json_free(b);
	reg_free(&g->j);
}

/* ---- POST /v1/sessions and DELETE /v1/accounts/me ---- */

struct login_job {
	struct st_job j;
	struct st_store_user u;
	int exists;
	char *pw;
	size_t pwlen;
	char ip[64];
	unsigned char token[32];
	int64_t expires;
};

static int login_cpu(struct st_api *a, struct st_job *j)
{
	struct login_job *l = (struct login_job *)j;
	int rc = pw_check(a, l->exists ? &l->u.pw : NULL, l->pw, l->pwlen);

	if (rc < 0)
		return st_job_fail(j, 500, "internal", "%s", st_errmsg());
	if (rc)
		return st_job_fail(j, 401, "bad_credentials",
		                   "wrong user name or password");
	return 0;
}

static int login_write(struct st_api *a, struct st_job *j)
{
	struct login_job *l = (struct login_job *)j;
	unsigned char h[32];

	l->expires = st_now_ms() + a->conf->session_ttl_ms;
	if (st_random(l->token, 32) < 0 || st_sha256(l->token, 32, h) < 0)
		return st_job_fail(j, 500, "internal", "%s", st_errmsg());
	if (st_store_session_add(a->store, h, l->u.id, l->expires) < 0)
		return st_job_fault(j);
	return 0;
}

/* A correct password does not count as a failed login. */
static void login_refund(struct st_api *a, struct login_job *l)
{
	int64_t now = st_now_ms();

	st_rl_give(a->rl, ST_RL_LOGIN_USER, l->u.name, 1, now);
	st_rl_give(a->rl, ST_RL_LOGIN_IP, l->ip, 1, now);
}

static void login_finish(struct st_api *a, struct st_job *j,
                         struct st_api_resp *r)
{
	struct login_job *l = (struct login_job *)j;
	struct st_json *o = st_json_object();
	char tok[44];

	login_refund(a, l);
	st_b64_encode(l->token, 32, tok, ST_B64_URL_RAW);
	st_json_set_str(o, "token", tok);
	st_json_set_int(o, "expires", l->expires);
	st_api_json(r, 201, o);
	st_wipe(tok, sizeof(tok));
}

static void login_free(struct st_job *j)
{
	struct login_job *l = (struct login_job *)j;

	st_free_secret(l->pw, l->pwlen);
	st_free_secret(l, sizeof(*l));
}

/*
 * Charge a failed login before checking (refunded on success), so parallel
 * guesses cannot overtake the limit; an empty bucket refuses even the
 * right password.
 */
static int login_limit(struct st_api *a, struct st_api_resp *r,
                       const char *user, const char *ip)
{
	if (st_api_limit(a, r, ST_RL_LOGIN_USER, user, 1) < 0)
		return -1;
	if (st_api_limit(a, r, ST_RL_LOGIN_IP, ip, 1) < 0) {
		st_rl_give(a->rl, ST_RL_LOGIN_USER, user, 1, st_now_ms());
		return -1;
	}
	return 0;
}

static struct login_job *login_new(struct st_api *a, struct st_api_req *q,
                                   struct st_api_resp *r, struct st_json *b)
{
	struct login_job *l = st_calloc(1, sizeof(*l));

	snprintf(l->ip, sizeof(l->ip), "%s", q->ip ? q->ip : "");
	l->j.cpu = login_cpu;
	l->j.free = login_free;
	if (get_password(b, r, 1, &l->pw, &l->pwlen) < 0) {
		login_free(&l->j);
		return NULL;
	}
	return l;
}

void st_api_login(struct st_api *a, struct st_api_req *q,
                  struct st_api_resp *r)
{
	struct login_job *l;
	struct st_json *b;
	char user[ST_USER_MAX + 1];
	int rc;

	if (!(b = st_api_parse(q, r)))
		return;
	if (get_user(b, "user", r, user) < 0 || !(l = login_new(a, q, r, b)))
		goto out;
	if (login_limit(a, r, user, l->ip) < 0) {
		login_free(&l->j);
		goto out;
	}
	rc = st_store_user_get(a->store, user, &l->u);
	if (rc < 0) {
		st_api_fault(r);
		login_refund(a, l);
		login_free(&l->j);
		goto out;
	}
	l->exists = rc == 0;
	snprintf(l->u.name, sizeof(l->u.name), "%s", user);
	l->j.write = login_write;
	l->j.finish = login_finish;
	st_api_defer(r, &l->j);
out:
	st_json_free(b);
}

static int delete_write(struct st_api *a, struct st_job *j)
{
	struct login_job *l = (struct login_job *)j;

	return st_store_user_delete(a->store, l->u.id) < 0 ? st_job_fault(j) : 0;
}

static void delete_finish(struct st_api *a, struct st_job *j,
                          struct st_api_resp *r)
{
	st_api_tokens_revoke(a);
	login_refund(a, (struct login_job *)j);
	st_api_nobody(r, 204);
}

void st_api_account_delete(struct st_api *a, struct st_api_req *q,
                           struct st_api_resp *r)
{
	struct login_job *l;
	struct st_json *b;
	int rc;

	if (!(b = st_api_parse(q, r)))
		return;
	if (!(l = login_new(a, q, r, b)))
		goto out;
	if (login_limit(a, r, q->user, l->ip) < 0) {
		login_free(&l->j);
		goto out;
	}
	if ((rc = st_store_user_get_id(a->store, q->uid, &l->u)) != 0) {
		if (rc < 0)
			st_api_fault(r);
		else
			st_api_error(r, 401, "unauthorized", "no such account");
		login_refund(a, l);
		login_free(&l->j);
		goto out;
	}
	l->exists = 1;
	l->j.write = delete_write;
	l->j.finish = delete_finish;
	st_api_defer(r, &l->j);
out:
	st_json_free(b);
}

/* ---- DELETE /v1/sessions/current ---- */

struct logout_job {
	struct st_job j;
	unsigned char hash[32];
};

static int logout_write(struct st_api *a, struct st_job *j)
{
	struct logout_job *o = (struct logout_job *)j;

	return st_store_session_delete(a->store, o->hash) < 0 ?
	       st_job_fault(j) : 0;
}

static void logout_finish(struct st_api *a, struct st_job *j,
                          struct st_api_resp *r)
{
	st_api_tokens_revoke(a);
	st_api_nobody(r, 204);
}

void st_api_logout(struct st_api *a, struct st_api_req *q,
                   struct st_api_resp *r)
{
	struct logout_job *o = st_calloc(1, sizeof(*o));

	memcpy(o->hash, q->token_hash, 32);
	o->j.write = logout_write;
	o->j.finish = logout_finish;
	o->j.free = job_free;
	st_api_defer(r, &o->j);
}

/* ---- the directory ---- */

static int list_one(void *ctx, const char *name, int64_t created)
{
	struct st_json *o = st_json_object();

	st_json_set_str(o, "user", name);
	st_json_set_int(o, "created", created);
	st_json_array_append(ctx, o);
	return 0;
}

void st_api_users(struct st_api *a, struct st_api_req *q,
                  struct st_api_resp *r)
{
	const char *prefix = st_api_arg(q, "prefix");
	struct st_json *arr, *o;
	int64_t limit;
	size_t n = prefix ? strlen(prefix) : 0;

	if (st_api_int_arg(q, r, "limit", 1, 500, 100, &limit) < 0)
		return;
	if (n > ST_USER_MAX || (n && strspn(prefix, "abcdefghijklmnopqrstuvwxyz"
	                                    "0123456789._-") != n)) {
		st_api_error(r, 400, "bad_request", "'prefix' may hold only "
		             "[a-z0-9._-], at most %d", ST_USER_MAX);
		return;
	}
	arr = st_json_array();
	if (st_store_users_list(a->store, prefix ? prefix : "", (int)limit,
	                        list_one, arr) < 0) {
		st_json_free(arr);
		st_api_fault(r);
		return;
	}
	o = st_json_object();
	st_json_set(o, "users", arr);
	st_api_json(r, 200, o);
}

static void unknown_user(struct st_api_resp *r, const char *name)
{
	struct st_json *o = st_json_object();

	st_json_set_str(o, "error", "unknown_user");
	st_json_set_str(o, "message", "no such user");
	st_json_set_str(o, "user", name);
	st_api_json(r, 404, o);
}

void st_api_user(struct st_api *a, struct st_api_req *q,
                 struct st_api_resp *r)
{
	struct st_store_user u;
	struct st_json *o;
	char name[ST_USER_MAX + 1];
	int rc;

	if (param_user(q, r, name) < 0)
		return;
	if ((rc = st_store_user_get(a->store, name, &u)) != 0) {
		if (rc < 0)
			st_api_fault(r);
		else
			unknown_user(r, name);
		return;
	}
	o = st_json_object();
	st_json_set_str(o, "user", u.name);
	st_json_set(o, "identity", st_identity_to_json(&u.ik));
	st_json_set_int(o, "created", u.created);
	st_api_json(r, 200, o);
}

/* ---- POST /v1/users/NAME/bundle ---- */

struct bundle_job {
	struct st_job j;
	char name[ST_USER_MAX + 1];
	struct st_store_user u;
	struct st_store_spk spk;
	struct st_store_opk opk;
	int has_opk;
};

static int bundle_write(struct st_api *a, struct st_job *j)
{
	struct bundle_job *k = (struct bundle_job *)j;
	int rc = st_store_bundle_take(a->store, k->name, &k->u, &k->spk,
	                              &k->opk, &k->has_opk);

	if (rc == ST_STORE_NOTFOUND) {
		snprintf(j->user, sizeof(j->user), "%s", k->name);
		return st_job_fail(j, 404, "unknown_user", "no such user");
	}
	return rc ? st_job_fault(j) : 0;
}

static void bundle_finish(struct st_api *a, struct st_job *j,
                          struct st_api_resp *r)
{
	struct bundle_job *k = (struct bundle_job *)j;
	struct st_json *o = st_json_object(), *spk = st_json_object(), *opk;

	st_json_set_str(o, "user", k->u.name);
	st_json_set(o, "identity", st_identity_to_json(&k->u.ik));
	st_json_set_int(spk, "id", k->spk.id);
	st_json_set_b64(spk, "pub", k->spk.pub, 32);
	st_json_set_b64(spk, "sig", k->spk.sig, 64);
	st_json_set(o, "spk", spk);
	if (k->has_opk) {
		opk = st_json_object();
		st_json_set_int(opk, "id", k->opk.id);
		st_json_set_b64(opk, "pub", k->opk.pub, 32);
		st_json_set(o, "opk", opk);
	} else {
		st_json_set_null(o, "opk");
	}
	st_api_json(r, 200, o);
}

void st_api_bundle(struct st_api *a, struct st_api_req *q,
                   struct st_api_resp *r)
{
	struct bundle_job *k;
	struct st_json *b;
	char name[ST_USER_MAX + 1], key[ST_USER_MAX + 24];

	if (param_user(q, r, name) < 0)
		return;
	if (q->body.len) {
		if (!(b = st_api_parse(q, r)))
			return;
		st_json_free(b);
	}
	snprintf(key, sizeof(key), "%lld/%s", (long long)q->uid, name);
	if (st_api_limit(a, r, ST_RL_BUNDLE, key, 1) < 0)
		return;
	k = st_calloc(1, sizeof(*k));
	memcpy(k->name, name, sizeof(name));
	k->j.write = bundle_write;
	k->j.finish = bundle_finish;
	k->j.free = job_free;
	st_api_defer(r, &k->j);
}

/* ---- GET and PUT /v1/keys ---- */

void st_api_keys_get(struct st_api *a, struct st_api_req *q,
                     struct st_api_resp *r)
{
	struct st_store_spk spk;
	struct st_json *o;
	int64_t n;

	if (st_store_keys_info(a->store, q->uid, &n, &spk) != 0) {
		st_api_fault(r);
		return;
	}
	o = st_json_object();
	st_json_set_int(o, "opks", n);
	st_json_set_int(o, "spk_id", spk.id);
	st_json_set_int(o, "spk_created", spk.created);
	st_api_json(r, 200, o);
}

struct keys_job {
	struct st_job j;
	int64_t uid;
	struct st_identity_pub ik;
	int has_spk;
	struct st_store_spk spk;
	struct st_store_opk opks[MAX_UPLOAD_OPKS];
	size_t nopks;
};

static int keys_cpu(struct st_api *a, struct st_job *j)
{
	struct keys_job *k = (struct keys_job *)j;

	return k->has_spk ? verify_spk(j, &k->ik, &k->spk) : 0;
}

static int keys_write(struct st_api *a, struct st_job *j)
{
	struct keys_job *k = (struct keys_job *)j;
	int rc = st_store_keys_put(a->store, k->uid, k->has_spk ? &k->spk : NULL,
	                           k->opks, k->nopks, a->conf->opk_max);

	if (rc == ST_STORE_ID_REUSED)
		return st_job_fail(j, 409, "id_reused", "a prekey id was used "
		                   "before");
	if (rc == ST_STORE_TOO_MANY)
		return st_job_fail(j, 422, "too_many_prekeys", "more than %lld "
		                   "one-time prekeys would be stored",
		                   (long long)a->conf->opk_max);
	return rc ? st_job_fault(j) : 0;
}

static void keys_finish(struct st_api *a, struct st_job *j,
                        struct st_api_resp *r)
{
	st_api_nobody(r, 204);
}

void st_api_keys_put(struct st_api *a, struct st_api_req *q,
                     struct st_api_resp *r)
{
	struct st_store_user u;
	struct keys_job *k;
	struct st_json *b;

	if (!(b = st_api_parse(q, r)))
		return;
	k = st_calloc(1, sizeof(*k));
	k->has_spk = st_json_get(b, "spk") != NULL;
	if ((k->has_spk && get_spk(b, r, &k->spk) < 0) ||
	    get_opks(b, r, k->opks, &k->nopks) < 0)
		goto fail;
	if (k->has_spk) {
		if (st_store_user_get_id(a->store, q->uid, &u) != 0) {
			st_api_fault(r);
			goto fail;
		}
		k->ik = u.ik;
	}
	k->uid = q->uid;
	k->j.cpu = keys_cpu;
	k->j.write = keys_write;
	k->j.finish = keys_finish;
	k->j.free = job_free;
	st_json_free(b);
	st_api_defer(r, &k->j);
	return;
fail:
	st_json_free(b);
	free(k);
}
