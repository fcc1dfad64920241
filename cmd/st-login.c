/*
 * st-login - log in to the relay (a bearer token kept in $ST_HOME/token)
 * and refill our prekeys there; log out; or say who is logged in where.
 * The work is in libst/account.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "st.h"

#define LOCK_MS 10000

static const char synopsis[] =
	"usage: st-login [-r URL] [--password-file F] [--passphrase-file F]\n"
	"       st-login --logout | --status [-j]\n";

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

struct ctx {
	struct st_json *cfg;
	const char *user;
	char *url;
	struct st_relay *r;
};

static void open_ctx(struct ctx *c, const char *flag, int insecure)
{
	if (!(c->cfg = st_config_load()) ||
	    st_account_user(c->cfg, &c->user) < 0 ||
	    !(c->url = st_relay_url(flag, c->cfg)) ||
	    !(c->r = st_relay_new(c->url, insecure)))
		die_err();
}

static void close_ctx(struct ctx *c)
{
	st_relay_free(c->r);
	st_json_free(c->cfg);
	free(c->url);
}

/* The secrets of a log-in, static so that they are wiped at exit on
 * every way out, die() included. */
static struct {
	char *pw;
	struct st_identity id;
	struct st_prekeys pk;
} sec;

static void wipe_secrets(void)
{
	st_free_str_secret(sec.pw);
	sec.pw = NULL;
	st_prekeys_free(&sec.pk);
	st_identity_wipe(&sec.id);
}

static void do_login(struct ctx *c, const char *pwfile)
{
	struct st_upkeep u;
	char prompt[80], when[20];
	int64_t expires;
	int lock;

	atexit(wipe_secrets);
	snprintf(prompt, sizeof(prompt), "password for %s: ", c->user);
	if (!(sec.pw = st_read_secret(pwfile, prompt)))
		die_err();
	if (st_account_password_ok(sec.pw) < 0)
		die_err();
	if ((lock = st_home_lock(LOCK_MS)) < 0)
		die_err();
	/* the keys open before the relay hears from us: a wrong passphrase
	 * or a damaged key file stops st-login with nothing changed */
	if (st_keystore_load_identity(&sec.id) < 0)
		die_err();
	if (st_prekeys_load(&sec.pk) < 0)
		die_err();
	if (st_account_login(c->r, c->user, sec.pw, &expires) < 0)
		die_err();
	st_time_format(expires, when);
	fprintf(stderr, "st-login: logged in as %s at %s until %s\n", c->user,
	        c->url, when);
	if (st_account_upkeep(c->r, &sec.id, &sec.pk, st_now_ms(), &u) < 0)
		st_die(st_errcode(), "logged in, but %s", st_errmsg());
	wipe_secrets();
	st_unlock(lock);
	if (u.opks_added || u.spk_uploaded)
		fprintf(stderr, "st-login: uploaded %zu one-time prekeys%s; the "
		        "relay holds %lld\n", u.opks_added, u.spk_uploaded ?
		        (u.spk_rotated ? " and a new signed prekey" :
		         " and the signed prekey") : "", (long long)u.relay_opks);
	if (u.spks_dropped)
		fprintf(stderr, "st-login: dropped %d signed prekeys retired more "
		        "than 30 days ago\n", u.spks_dropped);
}

static void do_logout(struct ctx *c)
{
	int lock;

	if (st_relay_load_token(c->r) < 0) {
		fprintf(stderr, "st-login: %s at %s is not logged in\n", c->user,
		        c->url);
		return;
	}
	if ((lock = st_home_lock(LOCK_MS)) < 0 || st_account_logout(c->r) < 0)
		die_err();
	st_unlock(lock);
	fprintf(stderr, "st-login: logged out %s at %s; the token is "
	        "revoked\n", c->user, c->url);
}

/*
 * Ask the relay whether the token still works (GET /v1/keys, which also
 * tells how many one-time prekeys are left).  The expiry we know is the
 * one given at log-in; every use renews it on the relay, so it is a lower
 * bound.  0 when logged in, 77 when not.
 */
static int do_status(struct ctx *c, int json)
{
	struct st_json *reply = NULL, *o;
	int64_t expires = 0, opks = 0, spk = 0, now = st_now_ms();
	const char *state = "active";
	long status;
	char when[20], *s;

	if (st_json_get(c->cfg, "token_expires") &&
	    st_json_get_int(c->cfg, "token_expires", 0, INT64_MAX,
	                    &expires) < 0)
		expires = 0;
	st_error_clear();
	if (st_relay_load_token(c->r) < 0) {
		state = "none";
	} else if (st_relay_call(c->r, "GET", "/v1/keys", NULL, 0, &status,
	                         &reply, NULL) < 0) {
		if (st_errcode() != ST_EX_NOPERM)
			die_err();
		state = expires && expires <= now ? "expired" : "rejected";
	} else if (!reply ||
	           st_json_get_int(reply, "opks", 0, INT64_MAX, &opks) < 0 ||
	           st_json_get_int(reply, "spk_id", 0, UINT32_MAX, &spk) < 0) {
		st_die(ST_EX_DATAERR, "relay %s: bad GET /v1/keys reply: %s",
		       c->url, st_errmsg());
	}
	st_json_free(reply);
	st_time_format(expires, when);
	if (json) {
		o = st_json_object();
		st_json_set_str(o, "user", c->user);
		st_json_set_str(o, "relay", c->url);
		st_json_set_bool(o, "logged_in", !strcmp(state, "active"));
		st_json_set_str(o, "session", state);
		if (expires)
			st_json_set_int(o, "expires", expires);
		else
			st_json_set_null(o, "expires");
		if (!strcmp(state, "active")) {
			st_json_set_int(o, "opks", opks);
			st_json_set_int(o, "spk_id", spk);
		}
		s = st_json_dump(o);
		puts(s);
		free(s);
		st_json_free(o);
	} else if (!strcmp(state, "active")) {
		printf("%s at %s: logged in until %s or later (each use renews "
		       "it); %lld one-time prekeys on the relay\n", c->user,
		       c->url, expires ? when : "?", (long long)opks);
	} else if (!strcmp(state, "none")) {
		printf("%s at %s: not logged in\n", c->user, c->url);
	} else if (!strcmp(state, "expired")) {
		printf("%s at %s: not logged in: the session expired at %s\n",
		       c->user, c->url, when);
	} else {
		printf("%s at %s: not logged in: the relay refused the token "
		       "(revoked, expired or the account deleted)\n", c->user,
		       c->url);
	}
	return strcmp(state, "active") ? ST_EX_NOPERM : 0;
}

int main(int argc, char **argv)
{
	enum { O_LOGOUT = 256, O_STATUS, O_PWFILE, O_PASSFILE, O_INSECURE };
	static const struct option lo[] = {
		{ "relay", required_argument, 0, 'r' },
		{ "logout", no_argument, 0, O_LOGOUT },
		{ "status", no_argument, 0, O_STATUS },
		{ "json", no_argument, 0, 'j' },
		{ "password-file", required_argument, 0, O_PWFILE },
		{ "passphrase-file", required_argument, 0, O_PASSFILE },
		{ "insecure-http", no_argument, 0, O_INSECURE },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 } };
	const char *flag = NULL, *pwfile = NULL, *passfile = NULL;
	int logout = 0, status = 0, json = 0, insecure = 0, c, rc = 0;
	struct ctx x;

	st_setprogname(argv[0]);
	while ((c = st_getopt(argc, argv, "r:jhV", lo)) != -1) {
		switch (c) {
		case 'r': flag = optarg; break;
		case O_LOGOUT: logout = 1; break;
		case O_STATUS: status = 1; break;
		case 'j': json = 1; break;
		case O_PWFILE: pwfile = optarg; break;
		case O_PASSFILE: passfile = optarg; break;
		case O_INSECURE: insecure = 1; break;
		case 'h': usage(0); break;
		case 'V':
			puts("st-login " ST_VERSION);
			return st_close_stdout() < 0 ? ST_EX_CANTCREAT : 0;
		default: usage(ST_EX_USAGE);
		}
	}
	if (optind != argc || (logout && status) || (json && !status) ||
	    ((logout || status) && (pwfile || passfile)))
		usage(ST_EX_USAGE);
	if (pwfile && passfile && !strcmp(pwfile, "-") && !strcmp(passfile, "-"))
		st_die(ST_EX_USAGE, "--password-file and --passphrase-file "
		       "cannot both be standard input");
	umask(077);
	st_keystore_set_passphrase_file(passfile);
	open_ctx(&x, flag, insecure);
	if (logout)
		do_logout(&x);
	else if (status)
		rc = do_status(&x, json);
	else
		do_login(&x, pwfile);
	close_ctx(&x);
	if (st_close_stdout() < 0)
		die_err();
	return rc;
}
