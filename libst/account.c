/*
 * account.c - the account on the relay (SPEC §7): registration with the
 * keys, log-in with its bearer token kept in $ST_HOME/token, log-out,
 * deletion, and prekey upkeep, which st-login and st-recv both run:
 * one-time prekeys are refilled to ST_OPK_TARGET when fewer than
 * ST_OPK_LOW remain on the relay, and the signed prekey is rotated after
 * seven days, its predecessors kept thirty days for messages in flight.
 *
 * Local state changes before the relay hears of it: a new key is saved
 * (under the home lock the caller holds) before it is uploaded, so a
 * crash or network failure leaves at worst a key the relay never got,
 * never one the relay hands out that we cannot open.  An upload that
 * failed is caught on the next run, because the relay's signed prekey id
 * no longer matches ours.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

#define TOKEN_MAX 256
#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

int st_account_password_ok(const char *pw)
{
	size_t n = strlen(pw);

	if (n < PASSWORD_MIN || n > PASSWORD_MAX)
		return st_error(ST_EX_USAGE, "a password has %d to %d bytes, "
		                "not %zu", PASSWORD_MIN, PASSWORD_MAX, n);
	return 0;
}

int st_account_name_ok(const char *name)
{
	size_t n = strlen(name);
	char *shown;

	if (st_user_ok(name, n))
		return 0;
	/* the name may be anything: show it escaped, and not all of it */
	shown = st_tty_escape(name, n > 64 ? 64 : n, 0);
	st_error(ST_EX_USAGE, "bad user name '%s%s': names match "
	         "^[a-z0-9][a-z0-9._-]{0,31}$", shown, n > 64 ? "..." : "");
	free(shown);
	return -1;
}

int st_account_user(const struct st_json *cfg, const char **user)
{
	char *p;
	size_t n;
	int rc = 0;

	*user = NULL;
	if (st_json_get(cfg, "user") &&
	    st_json_get_str(cfg, "user", user, &n) == 0 && st_user_ok(*user, n))
		return 0;
	p = st_home_path("config");
	if (!st_json_get(cfg, "user"))
		rc = st_error(ST_EX_CONFIG, "not registered (no user in %s): run "
		              "st-register USER first", p ? p : "the config");
	else
		rc = st_error(ST_EX_CONFIG, "bad config %s: 'user' is not a "
		              "valid user name", p ? p : "");
	*user = NULL;
	free(p);
	return rc;
}

/* The newest n one-time prekeys as the relay wants them. */
static struct st_json *opks_json(const struct st_prekeys *pk, size_t n)
{
	struct st_json *a = st_json_array();

	for (size_t i = pk->nopk - n; i < pk->nopk; i++)
		st_json_array_append(a, st_opk_to_json(&pk->opk[i]));
	return a;
}

int st_account_register(struct st_relay *r, const char *user,
                        const char *password, const struct st_identity *id,
                        struct st_prekeys *pk)
{
	struct st_json *body, *reply;
	const char *code;
	long status;
	int rc;

	/* fresh one-time prekeys every time: after a deletion, the old ones
	 * may have been handed out already, and one is never used twice */
	if (st_prekeys_add_opks(pk, ST_OPK_TARGET) < 0 ||
	    st_prekeys_save(pk) < 0)
		return -1;
	body = st_json_object();
	st_json_set_str(body, "user", user);
	st_json_set_str(body, "password", password);
	st_json_set(body, "identity", st_identity_to_json(&id->pub));
	st_json_set(body, "spk", st_spk_to_json(&pk->spk[0]));
	st_json_set(body, "opks", opks_json(pk, ST_OPK_TARGET));
	rc = st_relay_call(r, "POST", "/v1/accounts", body, 0, &status, &reply,
	                   &code);
	st_json_free_secret(body);
	if (rc < 0 && status == 409 && code && !strcmp(code, "user_taken"))
		st_error(ST_EX_NO, "cannot register %s at %s: the name is taken; "
		         "choose another", user, st_relay_base(r));
	else if (rc < 0)
		st_error_ctx("cannot register %s", user);
	st_json_free(reply);
	return rc;
}

/* Read $ST_HOME/token (NULL when there is none). */
static char *old_token(void)
{
	char *p = st_home_path("token");
	unsigned char *buf = NULL;
	size_t n;

	if (p && st_read_file(p, TOKEN_MAX, &buf, &n) == 0) {
		while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		if (!n) {
			free(buf);
			buf = NULL;
		}
	}
	st_error_clear();
	free(p);
	return (char *)buf;
}

static int token_ok(const char *t, size_t n)
{
	if (n < 16 || n > TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (t[i] <= ' ' || t[i] > '~')
			return 0;
	return 1;
}

static int save_token(const char *token, int64_t expires)
{
	struct st_json *cfg;
	struct st_buf b;
	char *p;
	int rc;

	if (!(p = st_home_path("token")))
		return -1;
	st_buf_init(&b, 1);
	st_buf_appendf(&b, "%s\n", token);
	rc = st_write_atomic(p, b.data, b.len, 0600);
	st_buf_free(&b);
	free(p);
	if (rc < 0 || !(cfg = st_config_load()))
		return -1;
	st_json_set_int(cfg, "token_expires", expires);
	rc = st_config_save(cfg);
	st_json_free(cfg);
	return rc;
}

int st_account_login(struct st_relay *r, const char *user,
                     const char *password, int64_t *expires)
{
	struct st_json *body, *reply = NULL;
	const char *token, *code;
	char *old;
	size_t n;
	long status;
	int rc;

	body = st_json_object();
	st_json_set_str(body, "user", user);
	st_json_set_str(body, "password", password);
	st_relay_set_token(r, NULL);
	rc = st_relay_call(r, "POST", "/v1/sessions", body, 0, &status, &reply,
	                   &code);
	st_json_free_secret(body);
	if (rc < 0) {
		if (status == 401)
			st_error(ST_EX_NOPERM, "cannot log in as %s at %s: wrong "
			         "user name or password", user, st_relay_base(r));
		else
			st_error_ctx("cannot log in as %s", user);
		goto out;
	}
	rc = -1;
	if (!reply || st_json_get_str(reply, "token", &token, &n) < 0 ||
	    st_json_get_int(reply, "expires", 0, INT64_MAX, expires) < 0) {
		st_error_ctx("relay %s: bad log-in reply", st_relay_base(r));
		goto out;
	}
	if (!token_ok(token, n)) {
		st_error(ST_EX_DATAERR, "relay %s: bad token in the log-in reply",
		         st_relay_base(r));
		goto out;
	}
	old = old_token();
	if (save_token(token, *expires) < 0) {
		st_free_str_secret(old);
		goto out;
	}
	/* one live token per home: the one it replaces is revoked (best
	 * effort: it expires on its own anyway) */
	if (old && strcmp(old, token)) {
		struct st_json *none = NULL;

		st_relay_set_token(r, old);
		st_relay_call(r, "DELETE", "/v1/sessions/current", NULL, 0,
		              &status, &none, NULL);
		st_json_free(none);
		st_error_clear();
	}
	st_free_str_secret(old);
	st_relay_set_token(r, token);
	rc = 0;
out:
	st_json_free_secret(reply);
	return rc;
}

int st_account_forget_token(void)
{
	struct st_json *cfg;
	char *p = st_home_path("token");
	int rc = 0;

	if (!p)
		return -1;
	if (unlink(p) == 0)
		rc = st_fsync_dir(p);
	else if (errno != ENOENT)
		rc = st_error(ST_EX_CANTCREAT, "cannot remove %s:", p);
	free(p);
	if (rc < 0 || !(cfg = st_config_load()))
		return -1;
	if (st_json_get(cfg, "token_expires")) {
		json_object_del(J(cfg), "token_expires");
		rc = st_config_save(cfg);
	}
	st_json_free(cfg);
	return rc;
}

int st_account_logout(struct st_relay *r)
{
	struct st_json *reply = NULL;
	long status;
	int rc;

	rc = st_relay_call(r, "DELETE", "/v1/sessions/current", NULL, 0,
	                   &status, &reply, NULL);
	st_json_free(reply);
	/* a token the relay no longer knows is as good as revoked */
	if (rc < 0 && status != 401)
		return st_error_ctx("cannot log out");
	st_error_clear();
	return st_account_forget_token();
}

int st_account_delete(struct st_relay *r, const char *password)
{
	struct st_json *body, *reply = NULL, *cfg;
	const char *code;
	long status;
	int rc;

	body = st_json_object();
	st_json_set_str(body, "password", password);
	rc = st_relay_call(r, "DELETE", "/v1/accounts/me", body, 0, &status,
	                   &reply, &code);
	st_json_free_secret(body);
	if (rc < 0) {
		if (status == 401 && code && !strcmp(code, "bad_credentials"))
			st_error(ST_EX_NOPERM, "cannot delete the account at %s: "
			         "wrong password", st_relay_base(r));
		else
			st_error_ctx("cannot delete the account");
		st_json_free(reply);
		return -1;
	}
	st_json_free(reply);
	/* the relay forgot us: so does the config (the keys stay) */
	if (st_account_forget_token() < 0 || !(cfg = st_config_load()))
		return -1;
	json_object_del(J(cfg), "user");
	rc = st_config_save(cfg);
	st_json_free(cfg);
	return rc;
}

int st_account_no_user(const struct st_relay *r, const char *user)
{
	return st_error(ST_EX_NO, "no such user: %s at %s (st-users lists the "
	                "users there)", user, st_relay_base(r));
}

int st_account_lookup(struct st_relay *r, const char *user,
                       struct st_identity_pub *id, int64_t *created)
{
	struct st_json *reply = NULL, *idj;
	const char *code, *name;
	char path[64];
	size_t n;
	long status;
	int rc;

	if (st_account_name_ok(user) < 0)
		return -1;
	snprintf(path, sizeof(path), "/v1/users/%s", user);
	if (st_relay_call(r, "GET", path, NULL, 0, &status, &reply,
	                  &code) < 0) {
		st_json_free(reply);
		if (status == 404)
			return st_account_no_user(r, user);
		return -1;
	}
	/* the record must be the one asked for, and its binding must hold */
	rc = -1;
	if (!reply || st_json_get_str(reply, "user", &name, &n) < 0 ||
	    st_json_get_obj(reply, "identity", &idj) < 0 ||
	    st_identity_from_json(idj, id) < 0 ||
	    st_json_get_int(reply, "created", 0, INT64_MAX, created) < 0)
		st_error_ctx("relay %s: bad record for %s", st_relay_base(r),
		             user);
	else if (n != strlen(user) || memcmp(name, user, n))
		st_error(ST_EX_DATAERR, "relay %s: asked for %s, got another "
		         "user's record", st_relay_base(r), user);
	else
		rc = 0;
	st_json_free(reply);
	return rc;
}

static int keys_info(struct st_relay *r, int64_t *opks, int64_t *spk_id)
{
	struct st_json *reply = NULL;
	long status;
	int rc;

	rc = st_relay_call(r, "GET", "/v1/keys", NULL, 0, &status, &reply,
	                   NULL);
	if (rc == 0 && (!reply ||
	    st_json_get_int(reply, "opks", 0, INT64_MAX, opks) < 0 ||
	    st_json_get_int(reply, "spk_id", 0, UINT32_MAX, spk_id) < 0))
		rc = st_error_ctx("relay %s: bad GET /v1/keys reply",
		                  st_relay_base(r));
	st_json_free(reply);
	return rc;
}

int st_account_upkeep(struct st_relay *r, const struct st_identity *id,
                      struct st_prekeys *pk, int64_t now_ms,
                      struct st_upkeep *u)
{
	struct st_json *body, *reply = NULL;
	int64_t relay_opks, relay_spk;
	int changed = 0, send_spk;
	size_t add = 0;
	long status;
	int rc;

	memset(u, 0, sizeof(*u));
	if (keys_info(r, &relay_opks, &relay_spk) < 0)
		return st_error_ctx("prekey upkeep");
	u->relay_opks = relay_opks;
	if ((u->spks_dropped = st_prekeys_expire(pk, now_ms)) > 0)
		changed = 1;
	if (now_ms - pk->spk[0].created >= ST_SPK_ROTATE_MS) {
		if (st_prekeys_rotate(pk, id, now_ms) < 0)
			return -1;
		u->spk_rotated = changed = 1;
	}
	send_spk = (int64_t)pk->spk[0].id != relay_spk;
	if (relay_opks < ST_OPK_LOW) {
		add = ST_OPK_TARGET - (size_t)relay_opks;
		if (st_prekeys_add_opks(pk, add) < 0)
			return -1;
		changed = 1;
	}
	if (changed && st_prekeys_save(pk) < 0)
		return -1;
	if (!send_spk && !add)
		return 0;
	body = st_json_object();
	if (send_spk)
		st_json_set(body, "spk", st_spk_to_json(&pk->spk[0]));
	if (add)
		st_json_set(body, "opks", opks_json(pk, add));
	rc = st_relay_call(r, "PUT", "/v1/keys", body, 0, &status, &reply,
	                   NULL);
	st_json_free(body);
	st_json_free(reply);
	if (rc < 0)
		return st_error_ctx("cannot upload prekeys");
	u->opks_added = add;
	u->spk_uploaded = send_spk;
	u->relay_opks += (int64_t)add;
	return 0;
}

int st_account_upkeep_home(struct st_relay *r, int64_t now_ms,
                           struct st_upkeep *u)
{
	struct st_identity id;
	struct st_prekeys pk;
	int rc;

	if (st_keystore_load_identity(&id) < 0)
		return -1;
	if (st_prekeys_load(&pk) < 0) {
		st_identity_wipe(&id);
		return -1;
	}
	rc = st_account_upkeep(r, &id, &pk, now_ms, u);
	st_prekeys_free(&pk);
	st_identity_wipe(&id);
	return rc;
}
