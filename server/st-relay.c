/*
 * st-relay - the safetalk relay: accounts, public keys, queued ciphertext,
 * signed channel posts and encrypted blobs over HTTP (SPEC §7).
 *
 * main() parses the flags, opens the store, starts the executor (Argon2
 * workers, the group-commit writer) and the HTTP front, then waits for
 * SIGTERM or SIGINT, sweeping expired rows every few seconds meanwhile.  A
 * signal drains: long polls are answered, requests in flight finish, the
 * database is closed, and the exit status is 0.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"

#define UPKEEP_SECONDS 10

static void usage(FILE *f, int code)
{
	fprintf(f,
"usage: st-relay [-q] [-l ADDR:PORT] [-d DB] [-b DIR] [-t N] [-w N]\n"
"                [--tls-cert F --tls-key F] [limit flags]\n"
"  -l, --listen ADDR:PORT     address to listen on (127.0.0.1:8443)\n"
"  -d, --db FILE|URL          SQLite file (relay.db) or postgresql:// URL\n"
"  -b, --blob-dir DIR         blob directory (DB.blobs; with a URL: required,\n"
"                             shared by every relay on that database)\n"
"  -t, --threads N            HTTP threads (2)\n"
"  -w, --workers N            Argon2 and fsync worker threads (2)\n"
"  -q, --quiet                no request log\n"
"  --tls-cert F, --tls-key F  serve HTTPS with this PEM certificate and key\n"
"limits (SIZE takes K, M, G; TIME takes s, m, h, d):\n"
"  --max-body SIZE (64K)  --max-messages-body SIZE (1M)\n"
"  --max-envelope SIZE (64K)  --max-blob SIZE (1G)  --blob-quota SIZE (10G)\n"
"  --mailbox-max N (10000)  --channel-max N (10000)  --opk-max N (200)\n"
"  --ttl TIME (30d)  --session-ttl TIME (30d)  --idle-timeout TIME (30s)\n"
"  --db-timeout TIME (30s: a PostgreSQL statement, and its answer)\n"
"  --max-connections N (1024)  --max-per-ip N (64)\n"
"  --trust-proxy ADDR (client address from X-Forwarded-For; up to 8)\n"
"  --argon2-m KIB (19456)  --argon2-t N (2)  --argon2-p N (1)\n"
"  --rate-accounts R (20:20/h)  --rate-login-user R (10:1/m)\n"
"  --rate-login-ip R (30:1/m)  --rate-bundle R (20:1/m)\n"
"  --rate-messages R (1000:100/s)  --no-rate-limits\n"
"  (a rate R is BURST:COUNT/UNIT: a bucket of BURST refilled COUNT per UNIT)\n");
	exit(code);
}

/* A number with an optional unit; units are (suffix, multiplier) pairs. */
static int64_t number(const char *opt, const char *s, const char *units,
                      const int64_t *mult, int64_t min, int64_t max)
{
	char *end;
	long long v;
	const char *u;

	v = strtoll(s, &end, 10);
	if (end == s || v < 0)
		goto bad;
	if (*end) {
		if (end[1] || !(u = strchr(units, *end)))
			goto bad;
		if (v > max / mult[u - units])
			goto bad;
		v *= mult[u - units];
	}
	if (v < min || v > max)
		goto bad;
	return v;
bad:
	st_die(ST_EX_USAGE, "bad value for --%s: %s", opt, s);
}

static int64_t size_arg(const char *opt, const char *s, int64_t min)
{
	static const int64_t m[] = { 1024, 1 << 20, 1 << 30 };

	return number(opt, s, "KMG", m, min, INT64_MAX / 2);
}

static int64_t count_arg(const char *opt, const char *s, int64_t min,
                         int64_t max)
{
	return number(opt, s, "", NULL, min, max);
}

/* A duration in ms; plain numbers are seconds. */
static int64_t time_arg(const char *opt, const char *s)
{
	static const int64_t m[] = { 1, 60, 3600, 86400 };

	return number(opt, s, "smhd", m, 1, 100LL * 365 * 86400) * 1000;
}

enum {
	O_TLS_CERT = 256, O_TLS_KEY, O_MAX_BODY, O_MAX_MSGS_BODY, O_MAX_ENV,
	O_MAX_BLOB, O_QUOTA, O_MAILBOX, O_CHANNEL, O_OPK, O_TTL, O_SESS_TTL,
	O_IDLE, O_MAX_CONNS, O_PER_IP, O_A2M, O_A2T, O_A2P, O_NO_RATE, O_DB_TIMEOUT,
	O_PROXY,
	O_RATE /* + enum st_rl_kind */
};

static const struct option longopts[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "db", required_argument, NULL, 'd' },
	{ "blob-dir", required_argument, NULL, 'b' },
	{ "threads", required_argument, NULL, 't' },
	{ "workers", required_argument, NULL, 'w' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "tls-cert", required_argument, NULL, O_TLS_CERT },
	{ "tls-key", required_argument, NULL, O_TLS_KEY },
	{ "max-body", required_argument, NULL, O_MAX_BODY },
	{ "max-messages-body", required_argument, NULL, O_MAX_MSGS_BODY },
	{ "max-envelope", required_argument, NULL, O_MAX_ENV },
	{ "max-blob", required_argument, NULL, O_MAX_BLOB },
	{ "blob-quota", required_argument, NULL, O_QUOTA },
	{ "mailbox-max", required_argument, NULL, O_MAILBOX },
	{ "channel-max", required_argument, NULL, O_CHANNEL },
	{ "opk-max", required_argument, NULL, O_OPK },
	{ "ttl", required_argument, NULL, O_TTL },
	{ "session-ttl", required_argument, NULL, O_SESS_TTL },
	{ "idle-timeout", required_argument, NULL, O_IDLE },
	{ "db-timeout", required_argument, NULL, O_DB_TIMEOUT },
	{ "max-connections", required_argument, NULL, O_MAX_CONNS },
	{ "max-per-ip", required_argument, NULL, O_PER_IP },
	{ "trust-proxy", required_argument, NULL, O_PROXY },
	{ "argon2-m", required_argument, NULL, O_A2M },
	{ "argon2-t", required_argument, NULL, O_A2T },
	{ "argon2-p", required_argument, NULL, O_A2P },
	{ "no-rate-limits", no_argument, NULL, O_NO_RATE },
	{ "rate-accounts", required_argument, NULL, O_RATE + ST_RL_ACCOUNT },
	{ "rate-login-user", required_argument, NULL, O_RATE + ST_RL_LOGIN_USER },
	{ "rate-login-ip", required_argument, NULL, O_RATE + ST_RL_LOGIN_IP },
	{ "rate-bundle", required_argument, NULL, O_RATE + ST_RL_BUNDLE },
	{ "rate-messages", required_argument, NULL, O_RATE + ST_RL_MESSAGES },
	{ NULL, 0, NULL, 0 },
};

/* --trust-proxy ADDR: an IPv4 or IPv6 address, kept in inet_ntop's form
 * so it compares equal to a connection's address as text. */
static void proxy_arg(struct st_conf *c, const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];
	int af = strchr(s, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(af, s, a) != 1)
		st_die(ST_EX_USAGE, "--trust-proxy: '%.64s' is not an IP address "
		       "(a proxy's own address, such as 127.0.0.1)", s);
	if (c->nproxies == ST_MAX_PROXIES)
		st_die(ST_EX_USAGE, "--trust-proxy: at most %d addresses",
		       ST_MAX_PROXIES);
	inet_ntop(af, a, c->proxies[c->nproxies++], sizeof(c->proxies[0]));
}

static void parse(int argc, char **argv, struct st_conf *c)
{
	const char *name;
	int ch, idx;

	while ((ch = getopt_long(argc, argv, "l:d:b:t:w:qhV", longopts,
	                         &idx)) != -1) {
		name = ch >= 256 ? longopts[idx].name : "";
		switch (ch) {
		case 'l': c->listen = optarg; break;
		case 'd': c->db = optarg; break;
		case 'b': c->blob_dir = optarg; break;
		case 't': c->threads = (int)count_arg("threads", optarg, 1, 64); break;
		case 'w': c->workers = (int)count_arg("workers", optarg, 1, 64); break;
		case 'q': c->quiet = 1; break;
		case 'h': usage(stdout, 0); break;
		case 'V': printf("st-relay %s\n", ST_VERSION); exit(0);
		case O_TLS_CERT: c->tls_cert = optarg; break;
		case O_TLS_KEY: c->tls_key = optarg; break;
		case O_MAX_BODY: c->max_body = (size_t)size_arg(name, optarg, 256); break;
		case O_MAX_MSGS_BODY:
			c->max_msgs_body = (size_t)size_arg(name, optarg, 256);
			break;
		case O_MAX_ENV: c->max_envelope = (size_t)size_arg(name, optarg, 64); break;
		case O_MAX_BLOB: c->max_blob = size_arg(name, optarg, 1); break;
		case O_QUOTA: c->blob_quota = size_arg(name, optarg, 1); break;
		case O_MAILBOX: c->mailbox_max = count_arg(name, optarg, 1, INT32_MAX); break;
		case O_CHANNEL: c->channel_max = count_arg(name, optarg, 1, INT32_MAX); break;
		case O_OPK: c->opk_max = count_arg(name, optarg, 1, 100000); break;
		case O_TTL: c->ttl_ms = time_arg(name, optarg); break;
		case O_SESS_TTL: c->session_ttl_ms = time_arg(name, optarg); break;
		case O_IDLE: c->idle_timeout = (unsigned)(time_arg(name, optarg) / 1000); break;
		case O_DB_TIMEOUT: st_store_timeout(time_arg(name, optarg)); break;
		case O_MAX_CONNS:
			c->max_conns = (unsigned)count_arg(name, optarg, 1, 1000000);
			break;
		case O_PER_IP: c->max_per_ip = (unsigned)count_arg(name, optarg, 1, 1000000); break;
		case O_A2M: c->argon2_m = (uint32_t)count_arg(name, optarg, 8, 4 << 20); break;
		case O_A2T: c->argon2_t = (uint32_t)count_arg(name, optarg, 1, 100); break;
		case O_A2P: c->argon2_p = (uint32_t)count_arg(name, optarg, 1, 64); break;
		case O_NO_RATE: c->no_rate_limits = 1; break;
		case O_PROXY: proxy_arg(c, optarg); break;
		default:
			if (ch >= O_RATE && ch < O_RATE + ST_RL_COUNT) {
				if (st_rl_parse(optarg, &c->rate[ch - O_RATE]) < 0)
					st_die(ST_EX_USAGE, "--%s: %s", name, st_errmsg());
				break;
			}
			usage(stderr, ST_EX_USAGE);
		}
	}
	if (optind != argc)
		usage(stderr, ST_EX_USAGE);
	if (c->argon2_m < 8 * c->argon2_p)
		st_die(ST_EX_USAGE, "--argon2-m must be at least 8 * --argon2-p");
}

/* Wait for SIGTERM or SIGINT, doing the upkeep in between. */
static void serve(struct st_api *a, const sigset_t *set)
{
	struct timespec ts = { UPKEEP_SECONDS, 0 };
	int sig;

	for (;;) {
		st_api_upkeep(a);
		sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			return;
	}
}

/* Another relay on the same database committed or ended a session. */
static void hook_wake(void *ctx, uint64_t key)
{
	st_api_wake(ctx, key);
}

static void hook_all(void *ctx)
{
	st_api_wake_all(ctx);
}

static void hook_revoke(void *ctx)
{
	st_api_tokens_revoke(ctx);
}

int main(int argc, char **argv)
{
	struct st_conf c;
	struct st_store *s;
	struct st_api api;
	struct st_http *h;
	sigset_t set;
	char *blobs = NULL;
	struct st_store_hooks hooks = { hook_wake, hook_all, hook_revoke, &api };

	st_setprogname(argv[0]);
	umask(077);
	st_conf_defaults(&c);
	parse(argc, argv, &c);
	if (st_http_check(&c) < 0)
		st_die(st_errcode(), "%s", st_errmsg());
	if (!c.blob_dir && st_store_is_pg(c.db))
		st_die(ST_EX_USAGE, "-d %s needs --blob-dir DIR, a directory "
		       "every relay on that database shares", "postgresql://...");
	if (!c.blob_dir) {
		blobs = st_malloc(strlen(c.db) + 7);
		strcpy(blobs, c.db);
		strcat(blobs, ".blobs");
		c.blob_dir = blobs;
	}
	/* threads inherit the mask: only serve() sees these signals */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!(s = st_store_open(c.db)))
		st_die(st_errcode(), "%s", st_errmsg());
	if (st_api_init(&api, &c, s, st_rl_new(c.rate, c.no_rate_limits),
	                st_metrics_new()) < 0 || st_api_sweep_orphans(&api) < 0)
		st_die(st_errcode(), "%s", st_errmsg());
	api.exec = st_exec_start(&api, c.workers);
	if (!(h = st_http_start(&c, &api, api.exec)))
		st_die(st_errcode(), "%s", st_errmsg());
	if (st_store_listen(s, &hooks) < 0)
		st_die(st_errcode(), "%s", st_errmsg());
	st_warn("listening on %s%s", c.listen, c.tls_cert ? " (TLS)" : "");

	serve(&api, &set);

	st_warn("shutting down");
	st_store_listen(s, NULL);
	st_http_stop(h);
	st_exec_stop(api.exec);
	api.exec = NULL;
	st_store_close(s);
	st_rl_free(api.rl);
	st_metrics_free(api.metrics);
	st_api_fini(&api);
	free(blobs);
	return 0;
}
