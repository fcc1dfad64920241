/*
 * fuzz_router.c - the relay's router and handlers without sockets
 * (server/api.h), on a SQLite store in a temporary directory under
 * $ST_FUZZ_TMP (run.sh's), else /dev/shm when there is one (the store
 * fsyncs every commit), else /tmp.
 *
 * An input is one HTTP request, written the way it goes on the wire:
 *
 *	METHOD SP TARGET [SP VERSION] LF
 *	Name: value LF          (any number; CR before LF is dropped)
 *	LF
 *	body
 *
 * TARGET is the path and an optional "?k=v&k" query.  Headers are read as
 * http.c reads them from libmicrohttpd: Content-Length (each counted;
 * strict decimal), Transfer-Encoding (counted), the first Authorization
 * and Content-Type.  Without Content-Length and Transfer-Encoding a
 * non-empty body gets its own length, so the fuzzer need not count.  A
 * body longer than Content-Length is cut there (the rest would be the
 * next request); a shorter one is fed and then abandoned, as when a client
 * goes quiet.  The body is fed in two pieces.
 *
 * To reach past authentication, "@alice" or "@bob" at the end of the
 * Authorization value stands for a live token of that user (accounts
 * registered at start with the golden keys below, passwords
 * "alice-fuzz-password" and "bob-fuzz-password"), and "@blob" anywhere in
 * the path for the id of the last blob uploaded.  The state carries over between
 * inputs (messages queue, posts pile up) and is thrown away every
 * ST_FUZZ_RESET inputs (default 2000); to reproduce a crash that needs no
 * history, run with ST_FUZZ_RESET=1 (a fresh store for every input);
 * ST_FUZZ_VERBOSE=1 prints each request and its answer on stderr.
 *
 * Checked beyond not crashing: every request gets an answer (a job or a
 * long poll resolves, at once, the way st_api_call() drives them), with a
 * status from 100 to 599, an Allow header for 405, and a JSON body that
 * parses whenever the content type is the default.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../server/api.h"

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
	abort(); } } while (0)

#define MAX_HEADERS 32
#define TOKEN_LEN 43

static const char *const users[2] = { "alice", "bob" };
static const char *const passwords[2] = { "alice-fuzz-password",
                                          "bob-fuzz-password" };

static struct {
	int up;
	char dir[64];
	char *db, *blobs;
	struct st_conf c;
	struct st_store *s;
	struct st_api a;
	char tok[2][TOKEN_LEN + 1];
	char blob[33];
	unsigned long inputs, reset_every;
	int verbose;
} F;

/* ---- the store and the two accounts ---- */

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *p;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = st_path_join(dir, e->d_name);
		if (unlink(p) < 0)
			rm_dir(p);
		free(p);
	}
	closedir(d);
	rmdir(dir);
}

/* One request with a JSON body through st_api_call(); the status. */
static int call(const char *method, const char *path, const char *auth,
                const char *body, struct st_api_resp *r)
{
	struct st_api_req q;

	st_api_req_init(&q);
	q.method = method;
	q.path = path;
	q.ip = "192.0.2.1";
	q.auth = auth;
	if (body) {
		q.ctype = "application/json";
		q.clen = (int64_t)strlen(body);
	}
	st_api_call(&F.a, &q, r, body, body ? strlen(body) : 0);
	st_api_req_free(&q);
	return r->status;
}

/*
 * The golden keys of tests/testkit/st/golden.json (SPEC §4-5 vectors):
 * alice's and bob's identities, bob's signed prekey 1 and one-time prekey
 * 7, so the golden envelopes (to_ik), bundle and channel post in the seed
 * corpus fit the accounts.  alice gets a signed prekey of her own.
 */
static const char *const golden[2][2] = {
	{ "66398e83538eaf759fa6cd456f562ee933faae95fab6a2f58814c0c879046e10",
	  "7f827213752908c372bb76cc96526deaa34ead43fe0539e50e0a40d8cd4aa3ad" },
	{ "fd78cd46d75c290070f102a9248300848b8ceedb4e9625655711b90319d655c9",
	  "5a758cbfbb7882cdd4e846322cbef1193ca9c0ab4125fc9603e06941c333c6bb" },
};
static const char golden_spk[] =
	"fff0bc1c3228d1c8ebc1fbe81499f477ae304cb327f704574d5e5917cb00d209";
static const char golden_opk[] =
	"4df950ec724fa46d270288838bb25088d44d46be97ace9a925dd200ccc1ad07b";

static char *account_body(int i)
{
	struct st_identity id;
	struct st_spk spk;
	struct st_opk opk;
	unsigned char seed[32], x[32], k[32];
	struct st_json *o = st_json_object(), *opks = st_json_array();
	char *s;

	CHECK(st_hex_decode(golden[i][0], seed, 32) == 0 &&
	      st_hex_decode(golden[i][1], x, 32) == 0 &&
	      st_identity_from_secrets(&id, seed, x) == 0);
	if (i == 1)
		CHECK(st_hex_decode(golden_spk, k, 32) == 0);
	else
		memset(k, 0x33, 32);
	CHECK(st_spk_generate(&id, 1, k, st_now_ms(), &spk) == 0);
	st_json_set_str(o, "user", users[i]);
	st_json_set_str(o, "password", passwords[i]);
	st_json_set(o, "identity", st_identity_to_json(&id.pub));
	st_json_set(o, "spk", st_spk_to_json(&spk));
	if (i == 1) {
		CHECK(st_hex_decode(golden_opk, k, 32) == 0 &&
		      st_opk_generate(7, k, &opk) == 0);
		st_json_array_append(opks, st_opk_to_json(&opk));
		for (uint32_t n = 8; n <= 10; n++) {
			k[0] = (unsigned char)n;
			CHECK(st_opk_generate(n, k, &opk) == 0);
			st_json_array_append(opks, st_opk_to_json(&opk));
		}
	}
	st_json_set(o, "opks", opks);
	s = st_json_dump(o);
	st_json_free_secret(o);
	st_identity_wipe(&id);
	st_wipe(&spk, sizeof(spk));
	st_wipe(&opk, sizeof(opk));
	return s;
}

/* Log user i in (registering it first when it is gone). */
static void login(int i)
{
	struct st_api_resp r;
	struct st_json *j;
	char body[128], *acct;
	const char *t;
	size_t n;

	snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\"}",
	         users[i], passwords[i]);
	if (call("POST", "/v1/sessions", NULL, body, &r) != 201) {
		st_api_resp_free(&r);
		acct = account_body(i);
		CHECK(call("POST", "/v1/accounts", NULL, acct, &r) == 201);
		free(acct);
		st_api_resp_free(&r);
		CHECK(call("POST", "/v1/sessions", NULL, body, &r) == 201);
	}
	j = st_json_parse((const char *)r.body.data, r.body.len, r.body.len,
	                  "login");
	CHECK(j && st_json_get_str(j, "token", &t, &n) == 0 &&
	      n == TOKEN_LEN);
	memcpy(F.tok[i], t, n + 1);
	st_json_free(j);
	st_api_resp_free(&r);
}

static void down(void)
{
	if (!F.up)
		return;
	st_store_close(F.s);
	st_rl_free(F.a.rl);
	st_metrics_free(F.a.metrics);
	st_api_fini(&F.a);
	rm_dir(F.dir);
	free(F.db);
	free(F.blobs);
	F.up = 0;
}

static void up(void)
{
	const char *base = getenv("ST_FUZZ_TMP");

	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(F.dir, sizeof(F.dir), "%s/st-fuzz-router-XXXXXX", base);
	CHECK(mkdtemp(F.dir));
	F.db = st_path_join(F.dir, "relay.db");
	F.blobs = st_path_join(F.dir, "blobs");
	CHECK(mkdir(F.blobs, 0700) == 0);
	st_conf_defaults(&F.c);
	F.c.db = F.db;
	F.c.blob_dir = F.blobs;
	F.c.argon2_m = 8;
	F.c.argon2_t = 1;
	F.c.max_blob = 1 << 20;
	F.c.blob_quota = 4 << 20;
	F.c.mailbox_max = 1000;
	F.c.channel_max = 1000;
	/* the limiter runs, but never says no: a 429 would end the search */
	for (int k = 0; k < ST_RL_COUNT; k++) {
		F.c.rate[k].burst = 1e12;
		F.c.rate[k].rate = 1e12;
	}
	CHECK((F.s = st_store_open(F.db)) != NULL);
	CHECK(st_api_init(&F.a, &F.c, F.s, st_rl_new(F.c.rate, 0),
	                  st_metrics_new()) == 0);
	CHECK(st_api_sweep_orphans(&F.a) == 0);
	F.blob[0] = '\0';
	F.up = 1;
	login(0);
	login(1);
}

/* ---- one request from the input ---- */

struct in {
	const char *p, *end;
};

/* The next line (without LF, and one CR before it), or NULL at the end. */
static char *line(struct in *in)
{
	const char *nl;
	size_t n;
	char *s;

	if (in->p >= in->end)
		return NULL;
	nl = memchr(in->p, '\n', (size_t)(in->end - in->p));
	n = nl ? (size_t)(nl - in->p) : (size_t)(in->end - in->p);
	s = st_strndup(in->p, n);  /* stops early at a NUL, as C strings do */
	in->p += n + (nl != NULL);
	n = strlen(s);
	if (n && s[n - 1] == '\r')
		s[n - 1] = '\0';
	return s;
}

/* "... @alice" -> "... TOKEN"; anything else as it is. */
static char *auth_value(const char *v)
{
	size_t n = strlen(v);

	for (int i = 0; i < 2; i++) {
		size_t k = strlen(users[i]) + 1;

		if (n >= k && v[n - k] == '@' && !strcmp(v + n - k + 1, users[i])) {
			char *s = st_malloc(n - k + TOKEN_LEN + 1);

			memcpy(s, v, n - k);
			memcpy(s + n - k, F.tok[i], TOKEN_LEN + 1);
			return s;
		}
	}
	return st_strdup(v);
}

/* The path with every "@blob" replaced by the last blob's id. */
static char *path_value(const char *p)
{
	struct st_buf b;
	const char *at;

	st_buf_init(&b, 1);
	while ((at = strstr(p, "@blob"))) {
		st_buf_append(&b, p, (size_t)(at - p));
		st_buf_append(&b, F.blob, strlen(F.blob));
		p = at + 5;
	}
	st_buf_append(&b, p, strlen(p) + 1);
	return (char *)b.data;
}

static void check_answer(const struct st_api_req *q,
                         const struct st_api_resp *r)
{
	struct st_json *j;

	CHECK(r->kind == ST_API_DONE);
	CHECK(r->status >= 100 && r->status <= 599);
	if (r->status == 405)
		CHECK(r->allow != NULL);
	if (r->fd >= 0) {
		struct stat sb;

		CHECK(fstat(r->fd, &sb) == 0 && sb.st_size == r->fsize);
	}
	if (!r->ctype && r->body.len) {
		j = st_json_parse((const char *)r->body.data, r->body.len,
		                  SIZE_MAX, "answer");
		if (!j) {
			fprintf(stderr, "answer %d is not JSON: %s\n", r->status,
			        st_errmsg());
			abort();
		}
		/* remember an uploaded blob for "@blob" */
		if (q->ep == ST_EP_BLOB_POST && r->status == 201) {
			const char *id;
			size_t n;

			if (st_json_get_str(j, "id", &id, &n) == 0 && n == 32)
				memcpy(F.blob, id, 33);
		}
		st_json_free(j);
	}
}

/* Drive a request that began to its answer, as st_api_call() does. */
static void answer(struct st_api_req *q, struct st_api_resp *r)
{
	st_api_handle(&F.a, q, r);
	for (int rounds = 0; r->kind != ST_API_DONE; rounds++) {
		CHECK(rounds < 16);
		if (r->kind == ST_API_JOB) {
			struct st_job *j = r->job;

			j->done = NULL;
			st_exec_run(&F.a, j);
			st_api_finish(&F.a, j, r);
		} else {
			q->final = 1;
			st_api_handle(&F.a, q, r);
		}
	}
}

static void request(const uint8_t *data, size_t size)
{
	struct in in = { (const char *)data, (const char *)data + size };
	char *first, *method, *target, *path = NULL, *sp, *qs;
	char *hdr[MAX_HEADERS], *auth = NULL, *cl = NULL;
	int nh = 0, ncl = 0, nte = 0;
	struct st_api_req q;
	struct st_api_resp r;
	const char *body;
	size_t blen, feed;

	if (!(first = line(&in)))
		return;
	method = first;
	target = (sp = strchr(first, ' ')) ? (*sp = '\0', sp + 1) : first + strlen(first);
	if ((sp = strchr(target, ' ')))
		*sp = '\0';                     /* drop " HTTP/1.1" */
	st_api_req_init(&q);
	st_api_resp_init(&r);
	q.method = method;
	q.ip = "192.0.2.1";
	if ((qs = strchr(target, '?')))
		*qs++ = '\0';
	q.path = path = path_value(target);
	/* query arguments, the first ST_API_MAX_ARGS kept */
	for (char *kv = qs, *next; kv && *kv; kv = next) {
		char *eq;

		if ((next = strchr(kv, '&')))
			*next++ = '\0';
		if ((eq = strchr(kv, '=')))
			*eq++ = '\0';
		if (q.nargs < ST_API_MAX_ARGS) {
			q.args[q.nargs].name = kv;
			q.args[q.nargs].value = eq ? eq : "";
			q.nargs++;
		}
	}
	/* headers up to the empty line */
	while (nh < MAX_HEADERS) {
		char *h = line(&in), *v;

		if (!h)
			break;
		hdr[nh++] = h;
		if (!*h)
			break;
		if (!(v = strchr(h, ':')))
			continue;
		*v++ = '\0';
		v += strspn(v, " \t");
		if (!strcasecmp(h, "Content-Length"))
			ncl++, cl = v;
		else if (!strcasecmp(h, "Transfer-Encoding"))
			nte++;
		else if (!strcasecmp(h, "Authorization") && !auth)
			q.auth = auth = auth_value(v);
		else if (!strcasecmp(h, "Content-Type") && !q.ctype)
			q.ctype = v;
	}
	body = in.p < in.end ? in.p : "";
	blen = in.p < in.end ? (size_t)(in.end - in.p) : 0;
	/* framing, as http.c judges it */
	q.chunked = nte > 0;
	q.bad_framing = ncl > 1 || (ncl && nte);
	if (ncl == 1) {
		char *end;

		errno = 0;
		q.clen = strtoll(cl, &end, 10);
		if (errno || end == cl || *end || q.clen < 0 ||
		    strspn(cl, "0123456789") != strlen(cl))
			q.bad_framing = 1;
	} else if (!ncl && !nte && blen) {
		q.clen = (int64_t)blen;
	}
	if (st_api_begin(&F.a, &q, &r)) {
		check_answer(&q, &r);
		if (F.verbose)
			fprintf(stderr, "%s %s -> %d (from the headers)\n",
			        method, path, r.status);
		goto out;
	}
	/* what the front hands over: Content-Length bytes at most */
	feed = q.chunked ? blen :
	       q.clen < 0 ? 0 : (uint64_t)q.clen < blen ? (size_t)q.clen : blen;
	if (feed && (st_api_body(&F.a, &q, body, feed / 2) < 0 ||
	             st_api_body(&F.a, &q, body + feed / 2, feed - feed / 2) < 0))
		goto out;                       /* the connection is dropped */
	if (!q.chunked && q.clen > 0 && (uint64_t)q.clen > feed)
		goto out;                       /* the client went quiet */
	answer(&q, &r);
	check_answer(&q, &r);
	if (F.verbose)
		fprintf(stderr, "%s %s -> %d %.*s\n", method, path, r.status,
		        (int)(r.body.len > 200 ? 200 : r.body.len),
		        r.body.data ? (const char *)r.body.data : "");
	st_metrics_observe(F.a.metrics, q.ep, r.status, 1);
	/* a logout or an account deletion: sign the users in again */
	if (!strcmp(method, "DELETE") && r.status / 100 == 2) {
		login(0);
		login(1);
	}
out:
	st_api_resp_free(&r);
	st_api_req_free(&q);
	for (int i = 0; i < nh; i++)
		free(hdr[i]);
	free(auth);
	free(path);
	free(first);
}

static void cleanup(void)
{
	down();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!F.reset_every) {
		const char *e = getenv("ST_FUZZ_RESET");

		F.reset_every = e && atol(e) > 0 ? (unsigned long)atol(e) : 2000;
		F.verbose = getenv("ST_FUZZ_VERBOSE") != NULL;
		atexit(cleanup);
	}
	if (F.up && F.inputs % F.reset_every == 0)
		down();
	if (!F.up)
		up();
	F.inputs++;
	request(data, size);
	return 0;
}
