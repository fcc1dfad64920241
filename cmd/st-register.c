/*
 * st-register - create the account USER on the relay with our keys (made
 * here when st-keygen has not made them), save the relay URL and the user
 * name in the config, and log in; or, with --delete, delete the account
 * and everything the relay holds for it.  The work is in libst/account.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "st.h"

#define LOCK_MS 10000

static const char synopsis[] =
	"usage: st-register [-r URL] [--password-file F] [--passphrase-file F]"
	" USER\n"
	"       st-register --delete [--password-file F]\n";

static void usage(int code)
{
	if (code && *st_errmsg())
		st_warn("%s", st_errmsg());
	fputs(synopsis, code ? stderr : stdout);
	exit(code);
}

static void die_err(void)
{
	st_die(st_errcode(), "%s", st_errmsg());
}

static struct st_relay *relay(const char *flag, const struct st_json *cfg,
                              int insecure, char **url)
{
	struct st_relay *r;

	if (!(*url = st_relay_url(flag, cfg)) ||
	    !(r = st_relay_new(*url, insecure)))
		die_err();
	return r;
}

/* The secrets in hand, static so that they are wiped at exit on every
 * way out, die() included. */
static struct {
	char *pw, *again;
	struct st_identity id;
	struct st_prekeys pk;
} sec;

static void wipe_secrets(void)
{
	st_free_str_secret(sec.pw);
	st_free_str_secret(sec.again);
	sec.pw = sec.again = NULL;
	st_prekeys_free(&sec.pk);
	st_identity_wipe(&sec.id);
}

/* The password: asked twice on a terminal, so a typo cannot lock us out. */
static void new_password(const char *file, const char *user)
{
	char prompt[80];

	snprintf(prompt, sizeof(prompt), "new password for %s: ", user);
	if (!(sec.pw = st_read_secret(file, prompt)))
		die_err();
	if (!file) {
		if (!(sec.again = st_read_secret(NULL, "new password again: ")))
			die_err();
		if (strcmp(sec.pw, sec.again))
			st_die(ST_EX_USAGE, "passwords do not match");
	}
	if (st_account_password_ok(sec.pw) < 0)
		die_err();
}

/* Our keys, made now when there are none (unprotected: see st-keygen). */
static void keys(struct st_identity *id, struct st_prekeys *pk)
{
	struct st_vault *v;
	int has = st_keystore_has_keys();

	if (has < 0)
		die_err();
	if (has) {
		if (st_keystore_load_identity(id) < 0 || st_prekeys_load(pk) < 0)
			die_err();
		return;
	}
	if (st_identity_generate(id) < 0 ||
	    st_prekeys_init(pk, id, st_now_ms()) < 0 ||
	    st_keystore_save_identity(id) < 0 || st_prekeys_save(pk) < 0 ||
	    !(v = st_vault_open(1)))
		die_err();
	st_vault_close(v);
	fprintf(stderr, "st-register: created keys in %s\n", st_home());
}

static void do_register(const char *flag, int insecure, const char *pwfile,
                        const char *user)
{
	struct st_json *cfg;
	struct st_relay *r;
	const char *old = NULL;
	char *url, when[20];
	int64_t expires;
	int lock;

	if (!(cfg = st_config_load()))
		die_err();
	if (st_json_get(cfg, "user")) {
		if (st_account_user(cfg, &old) < 0)
			die_err();
		if (strcmp(old, user))
			st_die(ST_EX_USAGE, "this home (%s) belongs to %s: use "
			       "another ST_HOME for %s, or 'st-register --delete' "
			       "first", st_home(), old, user);
	}
	r = relay(flag, cfg, insecure, &url);
	new_password(pwfile, user);
	if ((lock = st_home_lock(LOCK_MS)) < 0)
		die_err();
	keys(&sec.id, &sec.pk);
	if (st_account_register(r, user, sec.pw, &sec.id, &sec.pk) < 0)
		die_err();
	st_json_set_str(cfg, "relay", url);
	st_json_set_str(cfg, "user", user);
	if (st_config_save(cfg) < 0)
		die_err();
	if (st_account_login(r, user, sec.pw, &expires) < 0)
		st_die(st_errcode(), "registered %s, but %s; run st-login", user,
		       st_errmsg());
	st_unlock(lock);
	wipe_secrets();
	st_time_format(expires, when);
	fprintf(stderr, "st-register: registered %s at %s; logged in until "
	        "%s\n", user, url, when);
	st_relay_free(r);
	st_json_free(cfg);
	free(url);
}

/* What the relay holds for us besides the mailbox: GET /v1/keys, which
 * also proves the token works before a password is asked for. */
static int64_t relay_opks(struct st_relay *r)
{
	struct st_json *reply = NULL;
	int64_t opks = -1;
	long status;

	if (st_relay_call(r, "GET", "/v1/keys", NULL, 0, &status, &reply,
	                  NULL) < 0)
		die_err();
	if (!reply || st_json_get_int(reply, "opks", 0, INT64_MAX, &opks) < 0)
		st_die(ST_EX_DATAERR, "relay %s: bad GET /v1/keys reply: %s",
		       st_relay_base(r), st_errmsg());
	st_json_free(reply);
	return opks;
}

static void do_delete(const char *flag, int insecure, const char *pwfile)
{
	struct st_json *cfg;
	struct st_relay *r;
	const char *user;
	char *url, prompt[80];
	int64_t opks;
	int lock;

	if (!(cfg = st_config_load()) || st_account_user(cfg, &user) < 0)
		die_err();
	r = relay(flag, cfg, insecure, &url);
	if (st_relay_load_token(r) < 0)
		die_err();
	opks = relay_opks(r);
	snprintf(prompt, sizeof(prompt), "password of %s (to delete the "
	         "account): ", user);
	if (!(sec.pw = st_read_secret(pwfile, prompt)))
		die_err();
	if (st_account_password_ok(sec.pw) < 0)
		die_err();
	if ((lock = st_home_lock(LOCK_MS)) < 0)
		die_err();
	/* user lives in cfg, which the deletion rewrites on disk only */
	if (st_account_delete(r, sec.pw) < 0)
		die_err();
	st_unlock(lock);
	wipe_secrets();
	fprintf(stderr, "st-register: deleted the account %s at %s: the relay "
	        "dropped its identity, its signed prekey and %lld one-time "
	        "prekeys, its queued messages and every session token\n",
	        user, url, (long long)opks);
	fprintf(stderr, "st-register: removed the token and the user name "
	        "from %s; kept the keys, the pinned peers and the vault\n",
	        st_home());
	st_relay_free(r);
	st_json_free(cfg);
	free(url);
}

int main(int argc, char **argv)
{
	enum { O_DELETE = 256, O_PWFILE, O_PASSFILE, O_INSECURE };
	static const struct option lo[] = {
		{ "relay", required_argument, 0, 'r' },
		{ "delete", no_argument, 0, O_DELETE },
		{ "password-file", required_argument, 0, O_PWFILE },
		{ "passphrase-file", required_argument, 0, O_PASSFILE },
		{ "insecure-http", no_argument, 0, O_INSECURE },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 } };
	const char *flag = NULL, *pwfile = NULL, *passfile = NULL;
	int del = 0, insecure = 0, c;

	st_setprogname(argv[0]);
	while ((c = st_getopt(argc, argv, "r:hV", lo)) != -1) {
		switch (c) {
		case 'r': flag = optarg; break;
		case O_DELETE: del = 1; break;
		case O_PWFILE: pwfile = optarg; break;
		case O_PASSFILE: passfile = optarg; break;
		case O_INSECURE: insecure = 1; break;
		case 'h': usage(0); break;
		case 'V':
			puts("st-register " ST_VERSION);
			return st_close_stdout() < 0 ? ST_EX_CANTCREAT : 0;
		default: usage(ST_EX_USAGE);
		}
	}
	if (del ? optind != argc : optind + 1 != argc)
		usage(ST_EX_USAGE);
	/* a bad name is refused before anything touches the network */
	if (!del && st_account_name_ok(argv[optind]) < 0)
		die_err();
	if (pwfile && passfile && !strcmp(pwfile, "-") && !strcmp(passfile, "-"))
		st_die(ST_EX_USAGE, "--password-file and --passphrase-file "
		       "cannot both be standard input");
	umask(077);
	atexit(wipe_secrets);
	st_keystore_set_passphrase_file(passfile);
	if (del)
		do_delete(flag, insecure, pwfile);
	else
		do_register(flag, insecure, pwfile, argv[optind]);
	if (st_close_stdout() < 0)
		die_err();
	return 0;
}
