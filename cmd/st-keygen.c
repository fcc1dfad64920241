/*
 * st-keygen - create the identity, the prekeys and the vault key in
 * $ST_HOME, optionally passphrase-protected; or show our public identity
 * and our half of every safety number.  The work is in libst/keystore.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

#define LOCK_MS 10000

static const char synopsis[] =
	"usage: st-keygen [-f] [--protect] [--passphrase-file F]\n"
	"       st-keygen -p [-j]\n";

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

static int exists(const char *name)
{
	char *p = st_home_path(name);
	struct stat st;
	int rc;

	if (!p)
		die_err();
	rc = lstat(p, &st) == 0;
	free(p);
	return rc;
}

/* The secrets in hand, static so that they are wiped at exit on every
 * way out, die() included: the keys, and key files read to be rewritten
 * (buf[2] is the vault key carried over by -f). */
static struct {
	struct st_identity id;
	struct st_prekeys pk;
	unsigned char *buf[3];
	size_t len[3];
} sec;

static void wipe_secrets(void)
{
	st_identity_wipe(&sec.id);
	st_prekeys_free(&sec.pk);
	for (size_t i = 0; i < 3; i++) {
		if (sec.buf[i])
			st_free_secret(sec.buf[i], sec.len[i]);
		sec.buf[i] = NULL;
	}
}

/* Wrap the existing keys in place: nothing new is generated. */
static void protect_existing(void)
{
	static const char *const files[] = { "prekeys.json", "vault.key" };
	unsigned char **buf = sec.buf;
	size_t *len = sec.len;
	struct st_identity *id = &sec.id;
	char *p[2];

	if (st_keystore_protected() != 0)
		st_die(ST_EX_CANTCREAT, "keys in %s are already protected; "
		       "use -f to replace them", st_home());
	/* read everything first: a file that does not open stops us before
	 * anything is rewritten */
	if (st_keystore_load_identity(id) < 0)
		die_err();
	for (size_t i = 0; i < 2; i++) {
		p[i] = st_home_path(files[i]);
		if (exists(files[i]) && st_keystore_read(p[i], &buf[i],
		                                         &len[i]) < 0)
			die_err();
	}
	if (st_keystore_new_passphrase() < 0 ||
	    st_keystore_save_identity(id) < 0)
		die_err();
	for (size_t i = 0; i < 2; i++) {
		if (buf[i] && st_keystore_write(p[i], buf[i], len[i]) < 0)
			die_err();
		free(p[i]);
	}
	wipe_secrets();
	fprintf(stderr, "st-keygen: keys in %s are now passphrase-protected\n",
	        st_home());
}

/* The current vault key's file, unwrapped, to carry over: the vault's
 * items are encrypted to it, so new keys never replace it. */
static unsigned char *old_vault_key(size_t *n)
{
	unsigned char *buf = NULL;
	char *p;

	if (!exists("vault.key"))
		return NULL;
	p = st_home_path("vault.key");
	if (st_keystore_read(p, &buf, n) < 0)
		die_err();
	free(p);
	return buf;
}

static void generate(int protect)
{
	struct st_vault *v;
	struct st_json *cfg;
	const char *user = NULL;
	char *p;
	int carried;

	sec.buf[2] = old_vault_key(&sec.len[2]);
	carried = sec.buf[2] != NULL;
	if (protect) {
		if (st_keystore_new_passphrase() < 0)
			die_err();
	} else {
		st_keystore_set_protect(0);
	}
	if (st_identity_generate(&sec.id) < 0 ||
	    st_prekeys_init(&sec.pk, &sec.id, st_now_ms()) < 0 ||
	    st_keystore_save_identity(&sec.id) < 0 ||
	    st_prekeys_save(&sec.pk) < 0)
		die_err();
	if (carried) {
		p = st_home_path("vault.key");
		if (st_keystore_write(p, sec.buf[2], sec.len[2]) < 0)
			die_err();
		free(p);
	} else {
		if (!(v = st_vault_open(1)))
			die_err();
		st_vault_close(v);
	}
	wipe_secrets();
	fprintf(stderr, "st-keygen: created an identity, a signed prekey, %d "
	        "one-time prekeys%s in %s%s\n", ST_OPK_TARGET,
	        carried ? "" : " and the vault key", st_home(),
	        protect ? ", passphrase-protected" : "");
	cfg = st_config_load();
	if (cfg && st_json_get(cfg, "user") &&
	    st_account_user(cfg, &user) == 0)
		st_warn("the relay still has the old identity of %s: run "
		        "'st-register --delete', then 'st-register %s'",
		        user, user);
	st_json_free(cfg);
	st_error_clear();
}

static void show(int json)
{
	struct st_identity_pub pub;
	struct st_json *cfg, *o;
	const char *user = NULL;
	char half[ST_SAFETY_HALF_LEN + 1], *s;
	unsigned char enc[ST_ID_ENC_LEN];
	int prot;

	if (!(cfg = st_config_load()))
		die_err();
	if (st_json_get(cfg, "user") && st_account_user(cfg, &user) < 0)
		die_err();
	if (st_keystore_identity_pub(&pub) < 0 ||
	    (prot = st_keystore_protected()) < 0)
		die_err();
	if (user && st_safety_half(&pub, user, half) < 0)
		die_err();
	if (json) {
		o = st_json_object();
		if (user) {
			st_json_set_str(o, "user", user);
			st_json_set_str(o, "safety_half", half);
		} else {
			st_json_set_null(o, "user");
			st_json_set_null(o, "safety_half");
		}
		st_json_set(o, "identity", st_identity_to_json(&pub));
		st_json_set_bool(o, "protected", prot);
		s = st_json_dump(o);
		puts(s);
		free(s);
		st_json_free(o);
	} else {
		st_identity_encode(&pub, enc);
		s = st_b64_encode_alloc(enc, sizeof(enc), ST_B64_URL_RAW);
		printf("user      %s\nidentity  %s\n", user ? user : "-", s);
		free(s);
		if (user) {
			printf("safety   ");
			for (int i = 0; i < ST_SAFETY_HALF_LEN; i += 5)
				printf(" %.5s", half + i);
			putchar('\n');
		} else {
			printf("safety    - (register to get one: it depends on "
			       "the user name)\n");
		}
	}
	st_json_free(cfg);
}

int main(int argc, char **argv)
{
	enum { O_PROTECT = 256, O_PASSFILE };
	static const struct option lo[] = {
		{ "force", no_argument, 0, 'f' },
		{ "print", no_argument, 0, 'p' },
		{ "json", no_argument, 0, 'j' },
		{ "protect", no_argument, 0, O_PROTECT },
		{ "passphrase-file", required_argument, 0, O_PASSFILE },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 } };
	int force = 0, print = 0, json = 0, protect = 0, c, lock, has;
	const char *passfile = NULL;

	st_setprogname(argv[0]);
	while ((c = st_getopt(argc, argv, "fpjhV", lo)) != -1) {
		switch (c) {
		case 'f': force = 1; break;
		case 'p': print = 1; break;
		case 'j': json = 1; break;
		case O_PROTECT: protect = 1; break;
		case O_PASSFILE: passfile = optarg; break;
		case 'h': usage(0); break;
		case 'V':
			puts("st-keygen " ST_VERSION);
			return st_close_stdout() < 0 ? ST_EX_CANTCREAT : 0;
		default: usage(ST_EX_USAGE);
		}
	}
	if (optind != argc || (json && !print) ||
	    (print && (force || protect || passfile)))
		usage(ST_EX_USAGE);
	if (print) {
		show(json);
	} else {
		umask(077);
		atexit(wipe_secrets);
		st_keystore_set_passphrase_file(passfile);
		if ((lock = st_home_lock(LOCK_MS)) < 0 ||
		    (has = st_keystore_has_keys()) < 0)
			die_err();
		if (has && !force && protect)
			protect_existing();
		else if (has && !force)
			st_die(ST_EX_CANTCREAT, "keys exist in %s: use -f to "
			       "replace them", st_home());
		else
			generate(protect);
		st_unlock(lock);
	}
	if (st_close_stdout() < 0)
		die_err();
	return 0;
}
