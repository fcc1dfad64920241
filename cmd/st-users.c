/*
 * st-users - the relay's user directory, and the identities we pinned:
 * list users; show users with their safety numbers (pinning each on first
 * use, exit 1 for a name the relay does not know, 67 for an identity that
 * changed); accept a changed identity (trust), mark one verified after
 * comparing safety numbers (verify), or drop a pin (forget).  The pins
 * are libst/peers.c; the numbers libst/safety.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "st.h"

#define LOCK_MS 10000
#define PAGE 500

static const char synopsis[] =
	"usage: st-users [-j] [-r URL] [NAME...]\n"
	"       st-users trust NAME | verify NAME DIGITS | forget NAME\n";

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

static int json;

/* What we need to talk about others: who we are, and the relay. */
struct ctx {
	struct st_json *cfg;
	const char *me;
	struct st_identity_pub pub;
	const char *flag;
	int insecure;
	struct st_relay *r;
};

static void need_me(struct ctx *c)
{
	if (!(c->cfg = st_config_load()) || st_account_user(c->cfg, &c->me) < 0 ||
	    st_keystore_identity_pub(&c->pub) < 0)
		die_err();
}

static void need_relay(struct ctx *c)
{
	char *url;

	if (c->r)
		return;
	if (!c->cfg && !(c->cfg = st_config_load()))
		die_err();
	if (!(url = st_relay_url(c->flag, c->cfg)) ||
	    !(c->r = st_relay_new(url, c->insecure)) ||
	    st_relay_load_token(c->r) < 0)
		die_err();
	free(url);
}

static void check_name(const char *name)
{
	if (st_account_name_ok(name) < 0)
		die_err();
}

/*
 * The relay's record of name: 0 with its identity, 1 when there is no such
 * user (said on stderr), or exit.
 */
static int fetch(struct ctx *c, const char *name, struct st_identity_pub *id,
                 int64_t *created)
{
	need_relay(c);
	if (st_account_lookup(c->r, name, id, created) == 0)
		return 0;
	if (st_errcode() != ST_EX_NO)
		die_err();
	st_warn("%s", st_errmsg());
	return 1;
}

/* One user as a line or a JSON object. */
static void print_user(struct ctx *c, const char *name, const char *trust,
                       const struct st_identity_pub *id, int64_t created,
                       const struct st_peer *pin, int fresh)
{
	char num[ST_SAFETY_LEN + 1], disp[ST_SAFETY_DISPLAY_LEN + 1], *s;
	char old[ST_SAFETY_LEN + 1];
	struct st_json *o;

	if (st_safety_number(&c->pub, c->me, id, name, num) < 0)
		die_err();
	if (!json) {
		st_safety_display(num, disp);
		printf("%-16s %-9s %s\n", name, trust, disp);
		return;
	}
	o = st_json_object();
	st_json_set_str(o, "user", name);
	st_json_set_str(o, "trust", trust);
	st_json_set_str(o, "safety", num);
	st_json_set(o, "identity", st_identity_to_json(id));
	if (created >= 0)
		st_json_set_int(o, "created", created);
	if (pin && pin->first_seen) {
		st_json_set_int(o, "first_seen", pin->first_seen);
		st_json_set_int(o, "last_seen", pin->last_seen);
	}
	if (!strcmp(trust, "changed")) {
		if (st_safety_number(&c->pub, c->me, &pin->id, name, old) < 0)
			die_err();
		st_json_set_str(o, "pinned_safety", old);
	}
	st_json_set_bool(o, "new", fresh);
	s = st_json_dump(o);
	puts(s);
	free(s);
	st_json_free(o);
}

struct found {
	const char *name;
	struct st_identity_pub id;
	int64_t created;
};

static int cmd_show(struct ctx *c, int n, char **names)
{
	struct found *f = st_calloc((size_t)n, sizeof(*f));
	struct st_peer pin;
	int nf = 0, rc = 0, lock, fresh;

	for (int i = 0; i < n; i++)
		check_name(names[i]);
	need_me(c);
	for (int i = 0; i < n; i++) {
		f[nf].name = names[i];
		if (fetch(c, names[i], &f[nf].id, &f[nf].created))
			rc = ST_EX_NO;
		else
			nf++;
	}
	if ((lock = st_home_lock(LOCK_MS)) < 0)
		die_err();
	for (int i = 0; i < nf; i++) {
		if (!strcmp(f[i].name, c->me)) {
			print_user(c, f[i].name, "self", &f[i].id, f[i].created,
			           NULL, 0);
			continue;
		}
		if (st_peer_check(f[i].name, &f[i].id, st_now_ms(), &c->pub,
		                  c->me, &pin, &fresh) == 0) {
			print_user(c, f[i].name, st_trust_name(pin.trust),
			           &f[i].id, f[i].created, &pin, fresh);
			if (fresh)
				st_warn("pinned the identity of %s (trust on "
				        "first use)", f[i].name);
		} else if (st_errcode() == ST_EX_IDENTITY) {
			st_warn("%s", st_errmsg());
			print_user(c, f[i].name, "changed", &f[i].id,
			           f[i].created, &pin, 0);
			rc = ST_EX_IDENTITY;
		} else {
			die_err();
		}
	}
	st_unlock(lock);
	free(f);
	return rc;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Print the users under prefix, asking for narrower prefixes whenever a
 * page comes back full (the directory has no other cursor). */
static void list_prefix(struct ctx *c, const char *prefix, char **pins,
                        size_t npins)
{
	static const char alphabet[] = "-.0123456789_abcdefghijklmnopqrstuvwxyz";
	struct st_json *reply = NULL, *users;
	char path[128], next[ST_USER_MAX + 2];
	size_t n, plen = strlen(prefix);
	long status;
	int full;

	snprintf(path, sizeof(path), "/v1/users?limit=%d%s%s", PAGE,
	         plen ? "&prefix=" : "", prefix);
	if (st_relay_call(c->r, "GET", path, NULL, 0, &status, &reply,
	                  NULL) < 0)
		die_err();
	if (!reply || st_json_get_arr(reply, "users", &users) < 0)
		st_die(ST_EX_DATAERR, "relay %s: bad user list: %s",
		       st_relay_base(c->r), st_errmsg());
	n = st_json_array_size(users);
	full = n == PAGE && plen < ST_USER_MAX;
	for (size_t i = 0; i < n; i++) {
		struct st_json *u = st_json_array_get(users, i), *o;
		const char *name;
		size_t len;
		int64_t created = 0;
		struct st_peer pin;
		char *s;

		if (!st_json_is_object(u) ||
		    st_json_get_str(u, "user", &name, &len) < 0 ||
		    !st_user_ok(name, len) ||
		    st_json_get_int(u, "created", 0, INT64_MAX, &created) < 0)
			st_die(ST_EX_DATAERR, "relay %s: bad entry in the user "
			       "list", st_relay_base(c->r));
		/* a full page is redone by narrower prefixes below */
		if (full && len != plen)
			continue;
		if (!json) {
			puts(name);
			continue;
		}
		o = st_json_object();
		st_json_set_str(o, "user", name);
		st_json_set_int(o, "created", created);
		if (npins &&
		    bsearch(&name, pins, npins, sizeof(*pins), cmp_name) &&
		    st_peer_load(name, &pin) == 0)
			st_json_set_str(o, "trust", st_trust_name(pin.trust));
		else
			st_json_set_null(o, "trust");
		st_error_clear();
		s = st_json_dump(o);
		puts(s);
		free(s);
		st_json_free(o);
	}
	st_json_free(reply);
	if (!full)
		return;
	for (const char *a = plen ? alphabet : alphabet + 2; *a; a++) {
		if (*a == '_' && !plen)
			continue;
		snprintf(next, sizeof(next), "%s%c", prefix, *a);
		list_prefix(c, next, pins, npins);
	}
}

static int cmd_list(struct ctx *c)
{
	char **pins;
	size_t npins;

	need_relay(c);
	if (st_peer_list(&pins, &npins) < 0)
		die_err();
	list_prefix(c, "", pins, npins);
	st_peer_list_free(pins, npins);
	return 0;
}

static int cmd_trust(struct ctx *c, const char *name)
{
	struct st_identity_pub id;
	struct st_peer pin;
	int64_t created;
	int lock, changed;

	check_name(name);
	need_me(c);
	if (!strcmp(name, c->me))
		st_die(ST_EX_USAGE, "%s is you: there is nothing to trust", name);
	if (fetch(c, name, &id, &created))
		return ST_EX_NO;
	if ((lock = st_home_lock(LOCK_MS)) < 0 ||
	    st_peer_trust(name, &id, st_now_ms(), &pin, &changed) < 0)
		die_err();
	st_unlock(lock);
	print_user(c, name, st_trust_name(pin.trust), &id, created, &pin,
	           changed);
	if (changed)
		st_warn("accepted the identity of %s; the next message to %s "
		        "starts a new session", name, name);
	else
		st_warn("the identity of %s is unchanged", name);
	return 0;
}

static int cmd_verify(struct ctx *c, const char *name, int n, char **words)
{
	struct st_identity_pub id = { { 0 }, { 0 }, { 0 } };
	struct st_peer pin;
	struct st_buf digits;
	size_t count = 0;
	int64_t created = -1;
	int lock, fresh, rc;

	check_name(name);
	st_buf_init(&digits, 0);
	for (int i = 0; i < n; i++) {
		for (const char *p = words[i]; *p; p++) {
			if (*p >= '0' && *p <= '9')
				count++;
			else if (*p != ' ' && *p != '-' && *p != '\t')
				st_die(ST_EX_USAGE, "DIGITS must be the 60 digits of "
				       "the safety number");
		}
		st_buf_appendf(&digits, "%s ", words[i]);
	}
	if (count != ST_SAFETY_LEN)
		st_die(ST_EX_USAGE, "DIGITS must be the 60 digits of the safety "
		       "number, not %zu", count);
	need_me(c);
	if (!strcmp(name, c->me))
		st_die(ST_EX_USAGE, "%s is you: there is nothing to verify", name);
	/* with no pin yet, pin what the relay serves, then compare */
	if (st_peer_load(name, &pin) < 0) {
		if (st_errcode() != ST_EX_NOINPUT)
			die_err();
		if (fetch(c, name, &id, &created)) {
			st_buf_free(&digits);
			return ST_EX_NO;
		}
	}
	if ((lock = st_home_lock(LOCK_MS)) < 0)
		die_err();
	if (created >= 0 && st_peer_check(name, &id, st_now_ms(), &c->pub,
	                                  c->me, &pin, &fresh) < 0)
		die_err();
	rc = st_peer_verify(name, &c->pub, c->me, st_buf_cstr(&digits), &pin);
	st_unlock(lock);
	st_buf_free(&digits);
	if (rc < 0) {
		if (st_errcode() != ST_EX_NO)
			die_err();
		st_warn("%s", st_errmsg());
		return ST_EX_NO;
	}
	print_user(c, name, st_trust_name(pin.trust), &pin.id, created, &pin,
	           0);
	return 0;
}

static int cmd_forget(const char *name)
{
	int lock, rc;

	check_name(name);
	if ((lock = st_home_lock(LOCK_MS)) < 0)
		die_err();
	rc = st_peer_forget(name);
	st_unlock(lock);
	if (rc < 0) {
		if (st_errcode() != ST_EX_NO)
			die_err();
		st_warn("%s", st_errmsg());
		return ST_EX_NO;
	}
	st_warn("forgot the pinned identity of %s and any session with %s",
	        name, name);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_INSECURE = 256 };
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ "relay", required_argument, 0, 'r' },
		{ "insecure-http", no_argument, 0, O_INSECURE },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 } };
	struct ctx c = { 0 };
	int ch, rc, n, literal;
	char **av;

	st_setprogname(argv[0]);
	while ((ch = st_getopt(argc, argv, "jr:hV", lo)) != -1) {
		switch (ch) {
		case 'j': json = 1; break;
		case 'r': c.flag = optarg; break;
		case O_INSECURE: c.insecure = 1; break;
		case 'h': usage(0); break;
		case 'V':
			puts("st-users " ST_VERSION);
			return st_close_stdout() < 0 ? ST_EX_CANTCREAT : 0;
		default: usage(ST_EX_USAGE);
		}
	}
	umask(077);
	n = argc - optind;
	av = argv + optind;
	/* after "--", operands are names even when they read "trust" */
	literal = optind > 1 && !strcmp(argv[optind - 1], "--");
	if (n && !literal && !strcmp(av[0], "trust")) {
		if (n != 2)
			usage(ST_EX_USAGE);
		rc = cmd_trust(&c, av[1]);
	} else if (n && !literal && !strcmp(av[0], "verify")) {
		if (n < 3)
			usage(ST_EX_USAGE);
		rc = cmd_verify(&c, av[1], n - 2, av + 2);
	} else if (n && !literal && !strcmp(av[0], "forget")) {
		if (n != 2)
			usage(ST_EX_USAGE);
		rc = cmd_forget(av[1]);
	} else if (n) {
		rc = cmd_show(&c, n, av);
	} else {
		rc = cmd_list(&c);
	}
	st_relay_free(c.r);
	st_json_free(c.cfg);
	if (st_close_stdout() < 0)
		die_err();
	return rc;
}
