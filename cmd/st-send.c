/*
 * st-send - send a message (stdin or -m) and attachments to one or more
 * users, one pairwise ratchet message each; or post what earlier runs
 * left in the outbox (--flush).  Every run first posts such leftovers.
 * The work is libst/send.c (resolve, upload, encrypt, commit, queue) and
 * libst/outbox.c (post, retry, refusals), all under the home lock.
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
	"usage: st-send [-j] [-m TEXT] [-a FILE]... [--trust-new=always] "
	"[-r URL]\n"
	"               [--passphrase-file F] [--insecure-http] USER...\n"
	"       st-send -c CHANNEL [-j] [-m TEXT] [-r URL] [--passphrase-file F]\n"
	"               [--insecure-http]\n"
	"       st-send --flush [-j] [-r URL] [--insecure-http]\n";

/* What must not outlive the process, die() paths included: our keys
 * and the message; wiped at exit. */
static struct {
	struct st_identity me;
	unsigned char *body;
	size_t bodylen;
} secret;

static void wipe_secrets(void)
{
	st_identity_wipe(&secret.me);
	st_free_secret(secret.body, secret.bodylen);
	secret.body = NULL;
}

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

struct opts {
	int json, flush, trust_new, insecure;
	const char *text, *relay, *passfile, *channel;
	const char **files;
	size_t nfiles;
	char **to;
	size_t nto;
};

/* The body: -m, else stdin (not when only files go from a terminal). */
static void read_body(const struct opts *o, struct st_send *s,
                      unsigned char **buf)
{
	size_t n, max = st_send_max_plain();

	*buf = NULL;
	if (o->text) {
		s->body = (const unsigned char *)o->text;
		s->bodylen = strlen(o->text);
		s->has_body = 1;
		return;
	}
	if (o->nfiles && isatty(0))
		return;
	if (isatty(0))
		fputs("st-send: type the message; end it with Ctrl-D\n", stderr);
	if (st_read_fd(0, max, "standard input", buf, &n) < 0) {
		if (st_errcode() == ST_EX_DATAERR)
			st_die(ST_EX_DATAERR, "message is too large (more than "
			       "%zu bytes): send it as a file with -a", max);
		die_err();
	}
	s->body = *buf;
	s->bodylen = n;
	secret.body = *buf;
	secret.bodylen = n;
	s->has_body = n > 0;
}

static int mine(const struct st_send *s, const char *name)
{
	for (size_t i = 0; s && s->queued && i < s->nto; i++)
		if (!strcmp(s->queued[i], name))
			return 1;
	return 0;
}

/* Users whose copy the relay refused for a changed key (--trust-new). */
struct retry {
	char (*user)[ST_USER_MAX + 1];
	size_t n;
};

static void print_sent(const struct st_outbox_entry *e, int json)
{
	struct st_json *o;
	char *d;

	if (!json) {
		printf("%s %s\n", e->to, e->relay_id);
		return;
	}
	o = st_json_object();
	st_json_set_str(o, "to", e->to);
	st_json_set_str(o, "id", e->relay_id);
	st_json_set_str(o, "msgid", e->msgid);
	d = st_json_dump(o);
	puts(d);
	free(d);
	st_json_free(o);
}

/*
 * Post the outbox and report: ids of this run's messages (all of them
 * with --flush) on stdout, refusals and leftovers on stderr.  Returns the
 * first refusal's exit class, else the relay failure's, else 0.
 */
static int flush(struct st_relay *r, const struct st_identity_pub *me,
                 const char *user, const struct st_send *s,
                 const struct opts *o, int *first, struct retry *re)
{
	struct st_outbox_entry *e;
	size_t n, old = 0, kept = 0;
	int rc = st_outbox_flush(r, me, user, &e, &n), code = 0;

	if (rc < 0)
		code = st_errcode();
	for (size_t i = 0; i < n; i++) {
		int own = o->flush || mine(s, e[i].name);

		if (e[i].status == ST_OUTBOX_SENT && own)
			print_sent(&e[i], o->json);
		else if (e[i].status == ST_OUTBOX_SENT)
			old++;
		else if (e[i].status == ST_OUTBOX_REFUSED && own && re &&
		         o->trust_new && e[i].code == ST_EX_IDENTITY) {
			st_warn("%s: identity changed; accepting the new key "
			        "(--trust-new=always) and sending again", e[i].to);
			re->user = st_realloc(re->user, (re->n + 1) *
			                      sizeof(*re->user));
			memcpy(re->user[re->n++], e[i].to, sizeof(e[i].to));
		} else if (e[i].status == ST_OUTBOX_REFUSED) {
			st_warn("%s: not sent%s: %s", e[i].to, own ? ""
			        : " (queued by an earlier run)", e[i].why);
			if (!*first)
				*first = e[i].code;
		} else
			kept++;
	}
	if (old)
		st_warn("sent %zu message%s queued by an earlier run", old,
		        old == 1 ? "" : "s");
	/* the leftovers' flush before a send stays quiet about a relay
	 * failure: the send's own flush says it once */
	if (rc < 0 && !o->flush && !s)
		;
	else if (rc < 0 && kept)
		st_warn("%s; %zu message%s kept in the outbox; it is sent on "
		        "the next run (or st-send --flush)", st_errmsg(), kept,
		        kept == 1 ? " is" : "s are");
	else if (rc < 0)
		st_warn("%s", st_errmsg());
	st_outbox_free(e, n);
	return code;
}

/*
 * --trust-new=always, for copies the relay refused because the key
 * changed behind a session: accept the new key, start a new session and
 * send the same message (same id, same "to") to those users again.
 */
static int resend(struct st_relay *r, struct st_identity *me,
                  const char *user, struct st_send *s,
                  const struct opts *o, struct retry *re, int *first)
{
	struct st_send t = *s;
	const char **to = st_calloc(re->n, sizeof(*to));
	int rc;

	for (size_t i = 0; i < re->n; i++) {
		if (st_send_retrust(r, re->user[i]) < 0)
			die_err();
		to[i] = re->user[i];
	}
	t.to = to;
	t.nto = re->n;
	t.group = s->to;
	t.ngroup = s->nto;
	t.keep_msgid = 1;
	t.queued = NULL;
	if (st_send_queue(r, me, user, &t) < 0)
		die_err();
	s->identity_loaded = t.identity_loaded;
	rc = flush(r, t.identity_loaded ? &me->pub : NULL, user, &t, o, first,
	           NULL);
	free(t.queued);
	free(to);
	return rc;
}

/*
 * -c CHANNEL: sign the text (-m, else stdin) with our identity key and
 * post it in the clear; prints the post's id.  Nothing is queued: a post
 * the relay did not take is an error (69/75) and the text is still ours.
 */
static int post(const struct opts *o, struct st_relay *r, const char *user)
{
	unsigned char *buf = NULL;
	const char *text = o->text;
	char *id, *d;
	size_t n;
	int rc;

	if (!text) {
		if (isatty(0))
			fputs("st-send: type the post; end it with Ctrl-D\n",
			      stderr);
		if (st_read_fd(0, ST_POST_TEXT_MAX, "standard input", &buf,
		               &n) < 0) {
			if (st_errcode() == ST_EX_DATAERR)
				st_die(ST_EX_DATAERR, "post too long: a channel "
				       "post is at most %d bytes",
				       ST_POST_TEXT_MAX);
			die_err();
		}
		text = (const char *)buf;
	} else {
		n = strlen(text);
	}
	if (n == 0)
		st_die(ST_EX_DATAERR, "empty post: nothing to send");
	if (st_keystore_load_identity(&secret.me) < 0)
		die_err();
	rc = st_channel_post(r, &secret.me, user, o->channel, text, n,
	                     st_now_ms(), &id);
	free(buf);
	if (rc < 0)
		die_err();
	if (o->json) {
		struct st_json *j = st_json_object();

		st_json_set_str(j, "channel", o->channel);
		st_json_set_str(j, "id", id);
		d = st_json_dump(j);
		puts(d);
		free(d);
		st_json_free(j);
	} else {
		printf("%s %s\n", o->channel, id);
	}
	free(id);
	return 0;
}

static void parse(int argc, char **argv, struct opts *o)
{
	enum { O_TRUST = 256, O_PASSFILE, O_INSECURE, O_FLUSH };
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ "message", required_argument, 0, 'm' },
		{ "attach", required_argument, 0, 'a' },
		{ "relay", required_argument, 0, 'r' },
		{ "trust-new", required_argument, 0, O_TRUST },
		{ "passphrase-file", required_argument, 0, O_PASSFILE },
		{ "insecure-http", no_argument, 0, O_INSECURE },
		{ "flush", no_argument, 0, O_FLUSH },
		{ "channel", required_argument, 0, 'c' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 } };
	int c;

	while ((c = st_getopt(argc, argv, "jm:a:c:r:hV", lo)) != -1) {
		switch (c) {
		case 'j': o->json = 1; break;
		case 'm': o->text = optarg; break;
		case 'a':
			o->files = st_realloc(o->files, (o->nfiles + 1) *
			                      sizeof(*o->files));
			o->files[o->nfiles++] = optarg;
			break;
		case 'r': o->relay = optarg; break;
		case 'c': o->channel = optarg; break;
		case O_TRUST:
			if (strcmp(optarg, "always"))
				st_die(ST_EX_USAGE, "--trust-new takes 'always'");
			o->trust_new = 1;
			break;
		case O_PASSFILE: o->passfile = optarg; break;
		case O_INSECURE: o->insecure = 1; break;
		case O_FLUSH: o->flush = 1; break;
		case 'h': usage(0); break;
		case 'V':
			puts("st-send " ST_VERSION);
			exit(st_close_stdout() < 0 ? ST_EX_CANTCREAT : 0);
		default: usage(ST_EX_USAGE);
		}
	}
	o->to = argv + optind;
	o->nto = (size_t)(argc - optind);
	if (o->flush && (o->nto || o->text || o->nfiles || o->trust_new ||
	                 o->passfile))
		usage(ST_EX_USAGE);
	if (o->channel && (o->flush || o->nto || o->nfiles || o->trust_new))
		usage(ST_EX_USAGE);
	if (o->channel && !st_user_ok(o->channel, strlen(o->channel)))
		st_die(ST_EX_USAGE, "bad channel name '%.64s': channel names "
		       "match ^[a-z0-9][a-z0-9._-]{0,31}$", o->channel);
	if (!o->flush && !o->channel && !o->nto)
		usage(ST_EX_USAGE);
	if (o->text && !st_utf8_ok(o->text, strlen(o->text)))
		st_die(ST_EX_USAGE, "-m takes UTF-8 text; send other bytes on "
		       "standard input");
	if (!o->text && !(o->nfiles && isatty(0)) && o->passfile &&
	    !strcmp(o->passfile, "-"))
		st_die(ST_EX_USAGE, "--passphrase-file - and a message on "
		       "standard input cannot share it");
	for (size_t i = 0; i < o->nto; i++) {
		if (!st_user_ok(o->to[i], strlen(o->to[i])))
			st_die(ST_EX_USAGE, "bad user name '%.64s': names match "
			       "^[a-z0-9][a-z0-9._-]{0,31}$", o->to[i]);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(o->to[i], o->to[j]))
				st_die(ST_EX_USAGE, "%s is named twice", o->to[i]);
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	struct st_send s;
	struct retry re = { NULL, 0 };
	struct st_identity *me = &secret.me;
	struct st_json *cfg;
	struct st_relay *r;
	const char *user;
	unsigned char *buf = NULL;
	char *url;
	int lock, rc = 0, first = 0;

	st_setprogname(argv[0]);
	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	parse(argc, argv, &o);
	atexit(wipe_secrets);
	umask(077);
	st_keystore_set_passphrase_file(o.passfile);
	if (!o.flush && !o.channel)
		read_body(&o, &s, &buf);
	if (!o.flush && !o.channel && !s.has_body && !o.nfiles)
		st_die(ST_EX_DATAERR, "empty message: nothing to send");
	if (!(cfg = st_config_load()) || st_account_user(cfg, &user) < 0 ||
	    !(url = st_relay_url(o.relay, cfg)) ||
	    !(r = st_relay_new(url, o.insecure)) || st_relay_load_token(r) < 0)
		die_err();
	if (o.channel) {
		rc = post(&o, r, user);
		goto done;
	}
	if ((lock = st_home_lock(LOCK_MS)) < 0)
		die_err();
	if (!o.flush) {
		size_t left = 0;

		/* leftovers of earlier runs go first, and do not stop us */
		if (st_outbox_count(&left) == 0 && left)
			flush(r, NULL, user, NULL, &o, &first, NULL);
		s.to = (const char *const *)o.to;
		s.nto = o.nto;
		s.files = o.files;
		s.nfiles = o.nfiles;
		s.trust_new = o.trust_new;
		if (st_send_queue(r, me, user, &s) < 0)
			die_err();
	}
	/* our public key names both safety numbers in a refusal; it is at
	 * hand when a session was made, and not worth opening the keys for
	 * otherwise */
	rc = flush(r, s.identity_loaded ? &me->pub : NULL, user, &s, &o,
	           &first, &re);
	if (re.n)
		rc = resend(r, me, user, &s, &o, &re, &first);
	st_unlock(lock);
	if (first)
		rc = first;
done:
	free(s.queued);
	free(re.user);
	free(o.files);
	st_relay_free(r);
	free(url);
	st_json_free(cfg);
	if (st_close_stdout() < 0)
		die_err();
	return rc;
}
