/*
 * st-recv - fetch the mailbox, decrypt, store in the vault, print, run a
 * hook, acknowledge; once (exit 0 when the mailbox is empty: cron), with
 * one wait (-w), or forever (-f).  Prekey upkeep first.  The work is
 * libst/recv.c (and the journal, libst/inbox.c); this file parses the
 * command line, loops, and prints.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

#define LOCK_MS 10000
#define PAGE 100
#define PAGE_FROM 500                   /* the relay's largest page */
#define FOLLOW_WAIT 60
#define UPKEEP_MS (3600LL * 1000)

static const char synopsis[] =
	"usage: st-recv [-j] [-q] [-f | -w SECONDS] [-n MAX] [--from USER] "
	"[-o DIR]\n"
	"               [--no-vault] [--exec CMD] [--passphrase-file F] "
	"[-r URL]\n"
	"               [--insecure-http]\n"
	"       st-recv -c CHANNEL [--after ID] [-j] [-f | -w SECONDS] [-n MAX] "
	"[-r URL]\n"
	"               [--insecure-http]\n";

/* Our keys, wiped at exit, die() paths included. */
static struct st_identity me;

static void wipe_me(void)
{
	st_identity_wipe(&me);
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
	int json, quiet, follow, wait, insecure;
	long max;
	const char *relay, *passfile, *channel, *after;
	struct st_recv_opts r;
};

static void note(void *ctx, const char *msg)
{
	char *e = isatty(2) ? st_tty_escape(msg, strlen(msg), 0) : NULL;

	st_warn("%s", e ? e : msg);
	free(e);
}

static struct st_json *files_json(const struct st_recv_msg *m)
{
	struct st_json *a = st_json_array(), *f;

	for (size_t i = 0; i < m->nfiles; i++) {
		const struct st_recv_file *x = &m->files[i];

		f = st_json_object();
		st_json_set_str(f, "name", x->name);
		st_json_set_int(f, "size", (int64_t)x->size);
		if (*x->item)
			st_json_set_str(f, "item", x->item);
		else
			st_json_set_null(f, "item");
		if (x->path)
			st_json_set_str(f, "path", x->path);
		if (x->error)
			st_json_set_str(f, "error", x->error);
		st_json_array_append(a, f);
	}
	return a;
}

static int print_json(const struct st_recv_msg *m)
{
	struct st_json *o = st_json_object(), *to = st_json_array();
	char *d;

	st_json_set_str(o, "id", m->m->id);
	st_json_set_str(o, "relay_id", m->relay_id);
	st_json_set_str(o, "from", m->from);
	for (size_t i = 0; i < m->m->nto; i++)
		st_json_array_append(to, st_json_str(m->m->to[i]));
	st_json_set(o, "to", to);
	st_json_set_int(o, "ts", m->m->ts);
	st_json_set_int(o, "received", m->relay_ts);
	if (*m->item)
		st_json_set_str(o, "item", m->item);
	else
		st_json_set_null(o, "item");
	if (m->m->has_body && m->m->is_text)
		st_json_set_strn(o, "text", (const char *)m->m->body,
		                 m->m->bodylen);
	else if (m->m->has_body)
		st_json_set_b64(o, "data", m->m->body, m->m->bodylen);
	st_json_set(o, "files", files_json(m));
	d = st_json_dump(o);
	st_json_free_secret(o);
	puts(d);
	st_free_str_secret(d);
	return 0;
}

static int print_text(const struct st_recv_msg *m)
{
	char when[20];
	const unsigned char *b = m->m->body;
	size_t n = m->m->bodylen;

	st_time_format(m->m->ts, when);
	printf("From %s at %s (%s)\n", m->from, when, m->m->id);
	if (m->m->has_body) {
		st_tty_fputs(stdout, (const char *)b, n);
		if (n && b[n - 1] != '\n')
			putchar('\n');
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct st_recv_file *f = &m->files[i];

		fputs("[file ", stdout);
		st_tty_fputs(stdout, f->name, strlen(f->name));
		printf(", %llu bytes", (unsigned long long)f->size);
		if (f->error) {
			fputs(", missing: ", stdout);
			st_tty_fputs(stdout, f->error, strlen(f->error));
		}
		if (*f->item)
			printf(", vault item %s", f->item);
		if (f->path) {
			fputs(", saved as ", stdout);
			st_tty_fputs(stdout, f->path, strlen(f->path));
		}
		puts("]");
	}
	return 0;
}

static int print(void *ctx, const struct st_recv_msg *m)
{
	const struct opts *o = ctx;

	if (o->quiet)
		return 0;
	if (o->json)
		print_json(m);
	else
		print_text(m);
	if (fflush(stdout) == EOF || ferror(stdout))
		return st_error(ST_EX_CANTCREAT, "cannot write standard "
		                "output:");
	return 0;
}

static void parse(int argc, char **argv, struct opts *o)
{
	enum { O_FROM = 256, O_NOVAULT, O_EXEC, O_PASSFILE, O_INSECURE,
	       O_AFTER };
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ "quiet", no_argument, 0, 'q' },
		{ "follow", no_argument, 0, 'f' },
		{ "wait", required_argument, 0, 'w' },
		{ "max", required_argument, 0, 'n' },
		{ "from", required_argument, 0, O_FROM },
		{ "output", required_argument, 0, 'o' },
		{ "no-vault", no_argument, 0, O_NOVAULT },
		{ "exec", required_argument, 0, O_EXEC },
		{ "passphrase-file", required_argument, 0, O_PASSFILE },
		{ "relay", required_argument, 0, 'r' },
		{ "insecure-http", no_argument, 0, O_INSECURE },
		{ "channel", required_argument, 0, 'c' },
		{ "after", required_argument, 0, O_AFTER },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 } };
	char *end;
	int c;

	o->wait = -1;
	while ((c = st_getopt(argc, argv, "jqfw:n:o:r:c:hV", lo)) != -1) {
		switch (c) {
		case 'j': o->json = 1; break;
		case 'q': o->quiet = 1; break;
		case 'f': o->follow = 1; break;
		case 'w':
			o->wait = (int)strtol(optarg, &end, 10);
			if (*end || !*optarg || o->wait < 0 || o->wait > 60)
				st_die(ST_EX_USAGE, "-w takes 0 to 60 seconds");
			break;
		case 'n':
			o->max = strtol(optarg, &end, 10);
			if (*end || !*optarg || o->max < 1)
				st_die(ST_EX_USAGE, "-n takes a positive count");
			break;
		case O_FROM:
			if (!st_user_ok(optarg, strlen(optarg)))
				st_die(ST_EX_USAGE, "bad user name '%.64s'", optarg);
			o->r.from = optarg;
			break;
		case 'o': o->r.outdir = optarg; break;
		case O_NOVAULT: o->r.no_vault = 1; break;
		case O_EXEC: o->r.exec = optarg; break;
		case O_PASSFILE: o->passfile = optarg; break;
		case 'r': o->relay = optarg; break;
		case O_INSECURE: o->insecure = 1; break;
		case 'c': o->channel = optarg; break;
		case O_AFTER: o->after = optarg; break;
		case 'h': usage(0); break;
		case 'V':
			puts("st-recv " ST_VERSION);
			exit(st_close_stdout() < 0 ? ST_EX_CANTCREAT : 0);
		default: usage(ST_EX_USAGE);
		}
	}
	if (optind != argc || (o->follow && o->wait >= 0) ||
	    (o->json && o->quiet))
		usage(ST_EX_USAGE);
	/* a channel is public and signed, not the mailbox: nothing of the
	 * mailbox's handling applies */
	if (o->after && !o->channel)
		st_die(ST_EX_USAGE, "--after goes with -c CHANNEL");
	if (o->channel && (o->quiet || o->r.from || o->r.outdir ||
	                   o->r.no_vault || o->r.exec || o->passfile))
		st_die(ST_EX_USAGE, "-c CHANNEL takes only --after, -j, -f, -w, "
		       "-n, -r and --insecure-http");
	if (o->r.outdir) {
		struct stat st;

		if (stat(o->r.outdir, &st) < 0 || !S_ISDIR(st.st_mode))
			st_die(ST_EX_CANTCREAT, "-o %s: not a directory",
			       o->r.outdir);
	}
}

static void upkeep(struct st_relay *r)
{
	struct st_upkeep u;
	int lock;

	if ((lock = st_home_lock(LOCK_MS)) < 0)
		die_err();
	st_home_sweep("vault");
	if (st_account_upkeep_home(r, st_now_ms(), &u) < 0) {
		if (st_errcode() != ST_EX_UNAVAILABLE &&
		    st_errcode() != ST_EX_TEMPFAIL)
			die_err();
		st_warn("%s; skipped this run", st_errmsg());
	}
	st_unlock(lock);
}

/*
 * A failed round: with -f, a relay that is away or busy is waited for
 * (1, 2, 4 ... 60 s); anything else, or without -f, ends the run.
 */
static void retry_later(const struct opts *o, int *backoff)
{
	if (!o->follow || (st_errcode() != ST_EX_UNAVAILABLE &&
	                   st_errcode() != ST_EX_TEMPFAIL))
		die_err();
	st_warn("%s; trying again in %d s", st_errmsg(), *backoff);
	sleep((unsigned)*backoff);
	*backoff = *backoff < 30 ? *backoff * 2 : 60;
}

/* Drain (and with -f, follow) the mailbox; the exit status. */
static int run(struct st_recv *c, struct st_relay *r, struct opts *o)
{
	struct st_recv_stats st;
	size_t handled, pending, total = 0, dups;
	int64_t last_upkeep = st_now_ms();
	int wait = o->follow ? FOLLOW_WAIT : o->wait > 0 ? o->wait : 0;
	int backoff = 1, rc;

	memset(&st, 0, sizeof(st));
	for (;;) {
		/* with --from, look further past other senders' messages */
		long page = o->r.from ? PAGE_FROM : PAGE;
		long limit = o->max ? o->max - (long)total : page;

		if (limit > page)
			limit = page;
		dups = st.duplicates;
		rc = st_recv_poll(c, wait, (int)limit, LOCK_MS, &handled,
		                  &pending, &st);
		total += handled;
		if (rc < 0) {
			retry_later(o, &backoff);
			continue;
		}
		backoff = 1;
		if (o->max && total >= (size_t)o->max)
			break;
		if (handled || st.duplicates != dups) {
			if (!o->follow)
				wait = 0;       /* -w: one wait, then drain */
			continue;
		}
		if (!o->follow)
			break;
		/* only messages left there on purpose: do not spin on them */
		if (pending)
			sleep(1);
		if (st_now_ms() - last_upkeep > UPKEEP_MS) {
			upkeep(r);
			last_upkeep = st_now_ms();
		}
	}
	if (st.identity)
		return ST_EX_IDENTITY;
	if (st.undecryptable || st.file_errors)
		return ST_EX_DATAERR;
	if (st.hook_failed)
		return ST_EX_TEMPFAIL;
	return 0;
}

/* ---- -c CHANNEL ---- */

struct chan {
	const struct opts *o;
	size_t unverified, changed;
};

static int print_post(void *ctx, const struct st_channel_item *it)
{
	struct chan *ch = ctx;
	const struct st_post *p = &it->post;
	char when[20];

	if (it->state == ST_POST_CHANGED)
		ch->changed++;
	else if (it->state != ST_POST_VERIFIED)
		ch->unverified++;
	if (ch->o->json) {
		struct st_json *j = st_json_object();
		char *d;

		st_json_set_str(j, "id", it->id);
		st_json_set_str(j, "channel", ch->o->channel);
		if (it->state != ST_POST_MALFORMED) {
			st_json_set_str(j, "from", p->from);
			st_json_set_int(j, "ts", p->ts);
			st_json_set_strn(j, "text", p->text, p->textlen);
		}
		st_json_set_str(j, "state", st_post_state_name(it->state));
		if (it->trust)
			st_json_set_str(j, "trust", it->trust);
		if (it->why)
			st_json_set_str(j, "why", it->why);
		d = st_json_dump(j);
		puts(d);
		free(d);
		st_json_free(j);
	} else if (it->state == ST_POST_MALFORMED) {
		printf("Post %s in #%s: NOT SHOWN: %s\n", it->id,
		       ch->o->channel, it->why);
	} else {
		st_time_format(p->ts, when);
		printf("From %s at %s in #%s (%s)", p->from, when,
		       ch->o->channel, it->id);
		if (it->state != ST_POST_VERIFIED)
			printf(" UNVERIFIED: %s", it->why);
		putchar('\n');
		st_tty_fputs(stdout, p->text, p->textlen);
		if (p->textlen && p->text[p->textlen - 1] != '\n')
			putchar('\n');
	}
	if (fflush(stdout) == EOF || ferror(stdout))
		return st_error(ST_EX_CANTCREAT, "cannot write standard "
		                "output:");
	return 0;
}

/*
 * Read the channel from --after (else its start) to its end; with -f,
 * then wait for new posts forever.  The exit status: 67 when a pinned
 * author's key changed, 65 when a post could not be verified, else 0.
 */
static int run_channel(struct st_relay *r, const struct opts *o)
{
	struct st_channel_reader *c;
	struct chan ch = { o, 0, 0 };
	long total = 0;
	int wait = o->follow ? FOLLOW_WAIT : o->wait > 0 ? o->wait : 0;
	int backoff = 1, got, more;

	if (!(c = st_channel_reader_new(r, o->channel, o->after)))
		die_err();
	for (;;) {
		long limit = o->max ? o->max - total : PAGE_FROM;

		if (limit > PAGE_FROM)
			limit = PAGE_FROM;
		got = st_channel_read(c, (int)limit, wait, print_post, &ch,
		                      &more);
		if (got < 0) {
			retry_later(o, &backoff);
			continue;
		}
		backoff = 1;
		total += got;
		if (o->max && total >= o->max)
			break;
		if (got) {
			if (!o->follow)
				wait = 0;
			continue;
		}
		if (!o->follow)
			break;
	}
	st_channel_reader_free(c);
	if (ch.changed)
		return ST_EX_IDENTITY;
	return ch.unverified ? ST_EX_DATAERR : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct st_json *cfg;
	struct st_relay *r;
	struct st_recv *c;
	const char *user;
	char *url;
	int rc;

	st_setprogname(argv[0]);
	memset(&o, 0, sizeof(o));
	parse(argc, argv, &o);
	atexit(wipe_me);
	umask(077);
	st_keystore_set_passphrase_file(o.passfile);
	if (!(cfg = st_config_load()) || st_account_user(cfg, &user) < 0 ||
	    !(url = st_relay_url(o.relay, cfg)) ||
	    !(r = st_relay_new(url, o.insecure)) || st_relay_load_token(r) < 0)
		die_err();
	if (o.channel) {
		rc = run_channel(r, &o);
	} else {
		if (st_keystore_load_identity(&me) < 0)
			die_err();
		upkeep(r);
		c = st_recv_new(r, &me, user, &o.r, print, note, &o);
		rc = run(c, r, &o);
		st_recv_free(c);
	}
	st_relay_free(r);
	free(url);
	st_json_free(cfg);
	if (st_close_stdout() < 0)
		die_err();
	return rc;
}
