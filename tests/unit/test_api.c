/*
 * test_api.c - the relay's router and handlers without sockets, on a
 * temporary SQLite database: requests go through st_api_call() (jobs run
 * in this thread, long polls answer at once).  The golden identity and
 * bundle of shared/testkit/st/golden.json, signed by an independent
 * implementation, must be accepted as they are, and their to_ik too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../../server/api.h"
#include "../../server/store_impl.h"

struct fx {
	char dir[64];
	char *db, *blobs;
	struct st_conf c;
	struct st_store *s;
	struct st_api a;
	struct st_api_resp r;
	struct st_json *body;           /* the last answer, parsed */
};

static int setup(void **state)
{
	struct fx *f = st_calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/st-test-api-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->db = st_path_join(f->dir, "relay.db");
	f->blobs = st_path_join(f->dir, "blobs");
	st_conf_defaults(&f->c);
	f->c.db = f->db;
	f->c.blob_dir = f->blobs;
	f->c.argon2_m = 8;
	f->c.argon2_t = 1;
	f->c.rate[ST_RL_BUNDLE].burst = 2;
	f->s = st_store_open(f->db);
	assert_non_null(f->s);
	assert_int_equal(st_api_init(&f->a, &f->c, f->s,
	                             st_rl_new(f->c.rate, 0), st_metrics_new()), 0);
	assert_int_equal(st_api_sweep_orphans(&f->a), 0);
	st_api_resp_init(&f->r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	st_json_free(f->body);
	st_api_resp_free(&f->r);
	st_store_close(f->s);
	st_rl_free(f->a.rl);
	st_metrics_free(f->a.metrics);
	st_api_fini(&f->a);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f->db);
	free(f->blobs);
	free(f);
	return 0;
}

/*
 * One request; returns the status.  query is "k=v&k=v" or NULL; token a
 * bearer token or NULL; body JSON or NULL.
 */
static int req(struct fx *f, const char *method, const char *path,
               const char *query, const char *token, const char *body)
{
	struct st_api_req q;
	char auth[128], qs[256], *save, *kv;
	int status;

	st_api_req_init(&q);
	q.method = method;
	q.path = path;
	q.ip = "192.0.2.1";
	if (token) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		q.auth = auth;
	}
	if (query) {
		snprintf(qs, sizeof(qs), "%s", query);
		for (kv = strtok_r(qs, "&", &save); kv && q.nargs < ST_API_MAX_ARGS;
		     kv = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(kv, '=');

			if (eq)
				*eq++ = '\0';
			q.args[q.nargs].name = kv;
			q.args[q.nargs].value = eq ? eq : "";
			q.nargs++;
		}
	}
	if (body) {
		q.ctype = "application/json";
		q.clen = (int64_t)strlen(body);
	}
	st_json_free(f->body);
	f->body = NULL;
	/* st_api_call() takes a fresh answer: let go of the last one first */
	st_api_resp_free(&f->r);
	st_api_call(&f->a, &q, &f->r, body, body ? strlen(body) : 0);
	assert_int_equal(f->r.kind, ST_API_DONE);
	if (f->r.body.len)
		f->body = st_json_parse((char *)f->r.body.data, f->r.body.len,
		                        f->r.body.len, "answer");
	status = f->r.status;
	st_api_req_free(&q);
	return status;
}

static const char *str(struct fx *f, const char *key)
{
	const char *s = NULL;

	if (!f->body || st_json_get_str(f->body, key, &s, NULL) < 0)
		return "";
	return s;
}

/* The golden identities and bundle, as the relay gets them. */
static struct st_json *golden(void)
{
	const char *kit = getenv("ST_TESTKIT");
	char path[512];
	unsigned char *buf;
	size_t n;
	struct st_json *j;

	snprintf(path, sizeof(path), "%s/st/golden.json",
	         kit ? kit : "../shared/testkit");
	if (st_read_file(path, 1 << 22, &buf, &n) < 0)
		return NULL;
	j = st_json_parse((char *)buf, n, n, path);
	free(buf);
	return j;
}

static struct st_json *at(struct st_json *j, const char *a, const char *b,
                          const char *c)
{
	j = st_json_get(j, a);
	if (j && b)
		j = st_json_get(j, b);
	if (j && c)
		j = st_json_get(j, c);
	assert_non_null(j);
	return j;
}

static char *dump(struct st_json *j)
{
	return st_json_dump(j);
}

/* Register name with the golden keys of who ("alice" or "bob"). */
static int register_golden(struct fx *f, struct st_json *g, const char *name,
                           const char *who, const char *password)
{
	char *id = dump(at(g, "identity", who, "relay_json"));
	char *spk = dump(at(g, "bundle", "relay_json", "spk"));
	char *opk = dump(at(g, "bundle", "relay_json", "opk"));
	char body[2048];
	int rc;

	/* the golden bundle's prekeys are bob's: alice goes without them */
	if (strcmp(who, "bob") == 0)
		snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\","
		         "\"identity\":%s,\"spk\":%s,\"opks\":[%s]}", name,
		         password, id, spk, opk);
	else
		snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\","
		         "\"identity\":%s,\"spk\":%s}", name, password, id, spk);
	rc = req(f, "POST", "/v1/accounts", NULL, NULL, body);
	free(id);
	free(spk);
	free(opk);
	return rc;
}

static char *login(struct fx *f, const char *user, const char *password)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\"}",
	         user, password);
	assert_int_equal(req(f, "POST", "/v1/sessions", NULL, NULL, body), 201);
	return st_strdup(str(f, "token"));
}

static void routes(void **state)
{
	struct fx *f = *state;

	assert_int_equal(req(f, "GET", "/v1/health", NULL, NULL, NULL), 200);
	assert_int_equal(req(f, "HEAD", "/v1/health", NULL, NULL, NULL), 200);
	assert_int_equal(req(f, "GET", "/v1/nope", NULL, NULL, NULL), 404);
	assert_string_equal(str(f, "error"), "not_found");
	assert_int_equal(req(f, "PUT", "/v1/messages", NULL, NULL, NULL), 405);
	assert_string_equal(f->r.allow, "GET, HEAD, POST");
	assert_int_equal(req(f, "BREW", "/v1/keys", NULL, NULL, NULL), 405);
	assert_int_equal(req(f, "GET", "/v1/keys", NULL, NULL, NULL), 401);
	assert_true(f->r.auth_challenge);
	assert_int_equal(req(f, "GET", "/v1/keys", NULL, "not-a-token", NULL),
	                 401);
	assert_int_equal(req(f, "GET", "/metrics", NULL, NULL, NULL), 200);
	assert_string_equal(f->r.ctype, "text/plain; version=0.0.4");
}

/* Framing and limits are decided from the headers, before any body. */
static void framing(void **state)
{
	struct fx *f = *state;
	struct st_api_req q;
	struct st_api_resp r;
	static const struct {
		int64_t clen;
		int chunked, dup;
		const char *ctype;
		int status;
	} cases[] = {
		{ 10, 0, 1, "application/json", 400 },
		{ -1, 1, 0, "application/json", 411 },
		{ 65537, 0, 0, "application/json", 413 },
		{ 10, 0, 0, "text/plain", 415 },
		{ 10, 0, 0, NULL, 415 },
		{ 10, 0, 0, "application/json; charset=utf-8", 0 },
		{ 10, 0, 0, "application/jsonx", 415 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st_api_req_init(&q);
		st_api_resp_init(&r);
		q.method = "POST";
		q.path = "/v1/sessions";
		q.clen = cases[i].clen;
		q.chunked = cases[i].chunked;
		q.bad_framing = cases[i].dup;
		q.ctype = cases[i].ctype;
		if (cases[i].status) {
			assert_int_equal(st_api_begin(&f->a, &q, &r), 1);
			assert_int_equal(r.status, cases[i].status);
			assert_true(r.close);
		} else {
			assert_int_equal(st_api_begin(&f->a, &q, &r), 0);
		}
		st_api_resp_free(&r);
		st_api_req_free(&q);
	}
}

static void accounts(void **state)
{
	struct fx *f = *state;
	struct st_json *g = golden();
	char *tok;

	if (!g)
		skip();
	assert_int_equal(register_golden(f, g, "bob", "bob", "bob-password"), 201);
	assert_string_equal(str(f, "user"), "bob");
	assert_int_equal(register_golden(f, g, "bob", "bob", "bob-password"), 409);
	assert_string_equal(str(f, "error"), "user_taken");
	/* alice's identity with bob's signed prekey: the signature fails */
	assert_int_equal(register_golden(f, g, "mallory", "alice", "password1"),
	                 422);
	assert_string_equal(str(f, "error"), "bad_signature");
	assert_int_equal(req(f, "POST", "/v1/sessions", NULL, NULL,
	                     "{\"user\":\"bob\",\"password\":\"wrong-one\"}"), 401);
	assert_string_equal(str(f, "error"), "bad_credentials");
	tok = login(f, "bob", "bob-password");
	assert_int_equal(strlen(tok), 43);
	assert_int_equal(req(f, "GET", "/v1/keys", NULL, tok, NULL), 200);
	assert_int_equal(req(f, "GET", "/v1/users/bob", NULL, tok, NULL), 200);
	assert_int_equal(req(f, "DELETE", "/v1/sessions/current", NULL, tok,
	                     NULL), 204);
	assert_int_equal(req(f, "GET", "/v1/keys", NULL, tok, NULL), 401);
	free(tok);
	st_json_free(g);
}

/* The golden bundle comes back byte for byte, its OPK only once. */
static void bundle(void **state)
{
	struct fx *f = *state;
	struct st_json *g = golden();
	char *tok, *want, *got;

	if (!g)
		skip();
	assert_int_equal(register_golden(f, g, "bob", "bob", "bob-password"), 201);
	tok = login(f, "bob", "bob-password");
	assert_int_equal(req(f, "POST", "/v1/users/bob/bundle", NULL, tok, NULL),
	                 200);
	want = dump(at(g, "bundle", "relay_json", NULL));
	got = dump(f->body);
	assert_string_equal(got, want);
	free(got);
	assert_int_equal(req(f, "POST", "/v1/users/bob/bundle", NULL, tok, "{}"),
	                 200);
	assert_true(st_json_get(f->body, "opk") != NULL);
	got = dump(st_json_get(f->body, "opk"));
	assert_string_equal(got, "null");
	free(got);
	/* the burst of 2 is spent */
	assert_int_equal(req(f, "POST", "/v1/users/bob/bundle", NULL, tok, NULL),
	                 429);
	assert_true(f->r.retry_after >= 1);
	assert_int_equal(req(f, "POST", "/v1/users/carol/bundle", NULL, tok,
	                     NULL), 404);
	assert_string_equal(str(f, "user"), "carol");
	free(want);
	free(tok);
	st_json_free(g);
}

/* Bob registered with his golden keys and logged in: his token. */
static char *golden_bob(struct fx *f, struct st_json *g, const char **bob_ik)
{
	assert_int_equal(register_golden(f, g, "bob", "bob", "bob-password"), 201);
	assert_int_equal(st_json_as_str(at(g, "identity", "bob", "to_ik"),
	                                bob_ik, NULL), 0);
	return login(f, "bob", "bob-password");
}

static void messages(void **state)
{
	struct fx *f = *state;
	struct st_json *g = golden();
	const char *bob_ik, *alice_ik, *id;
	char *tok, body[512], first[32];

	if (!g)
		skip();
	tok = golden_bob(f, g, &bob_ik);
	assert_int_equal(st_json_as_str(at(g, "identity", "alice", "to_ik"),
	                                &alice_ik, NULL), 0);
	/* to bob (himself) with the wrong to_ik: refused, nothing stored */
	snprintf(body, sizeof(body), "{\"messages\":[{\"to\":\"bob\",\"to_ik\":"
	         "\"%s\",\"client_id\":\"%032x\",\"envelope\":{\"v\":1}}]}",
	         alice_ik, 1);
	assert_int_equal(req(f, "POST", "/v1/messages", NULL, tok, body), 409);
	assert_string_equal(str(f, "error"), "identity_changed");
	assert_string_equal(str(f, "user"), "bob");
	snprintf(body, sizeof(body), "{\"messages\":[{\"to\":\"bob\",\"to_ik\":"
	         "\"%s\",\"client_id\":\"%032x\",\"envelope\":{\"v\":1}}]}",
	         bob_ik, 1);
	assert_int_equal(req(f, "POST", "/v1/messages", NULL, tok, body), 201);
	id = st_json_as_str(st_json_array_get(st_json_get(f->body, "ids"), 0),
	                    &id, NULL) == 0 ? id : "";
	snprintf(first, sizeof(first), "%s", id);
	assert_true(first[0]);
	assert_int_equal(req(f, "POST", "/v1/messages", NULL, tok, body), 200);
	st_json_as_str(st_json_array_get(st_json_get(f->body, "ids"), 0), &id,
	               NULL);
	assert_string_equal(id, first);
	/* the long poll answers at once here (st_api_call sets final) */
	assert_int_equal(req(f, "GET", "/v1/messages", "wait=5&limit=10", tok,
	                     NULL), 200);
	assert_int_equal(st_json_array_size(st_json_get(f->body, "messages")),
	                 1);
	assert_int_equal(req(f, "GET", "/v1/messages", "limit=0", tok, NULL),
	                 400);
	snprintf(body, sizeof(body), "{\"ids\":[\"%s\"]}", first);
	assert_int_equal(req(f, "POST", "/v1/messages/ack", NULL, tok, body), 204);
	assert_int_equal(req(f, "GET", "/v1/messages", NULL, tok, NULL), 200);
	assert_int_equal(st_json_array_size(st_json_get(f->body, "messages")),
	                 0);
	free(tok);
	st_json_free(g);
}

/* Bob's next message is served with the text served; ack it. */
static void fetch_ack(struct fx *f, const char *tok, const char *served)
{
	struct st_json *m;
	const char *id;
	char body[128];

	assert_int_equal(req(f, "GET", "/v1/messages", "limit=1", tok, NULL),
	                 200);
	/* the answer splices the stored text */
	assert_non_null(strstr((char *)f->r.body.data, served));
	m = st_json_array_get(st_json_get(f->body, "messages"), 0);
	assert_non_null(m);
	assert_int_equal(st_json_get_str(m, "id", &id, NULL), 0);
	snprintf(body, sizeof(body), "{\"ids\":[\"%s\"]}", id);
	assert_int_equal(req(f, "POST", "/v1/messages/ack", NULL, tok, body),
	                 204);
}

/* s with each @ replaced by 300 plain bytes, in out (n bytes) */
static const char *longs(const char *s, char *out, size_t n)
{
	size_t o = 0;

	for (; *s; s++) {
		size_t k = *s == '@' ? 300 : 1;

		assert_true(o + k < n);
		memset(out + o, *s == '@' ? 'Q' : *s, k);
		o += k;
	}
	out[o] = '\0';
	return out;
}

/*
 * A compact envelope is stored as it was sent (not decoded and encoded
 * again); one with whitespace, or in a body whose member names are spelled
 * with escapes, is encoded compactly.  Either way the relay serves the same
 * JSON object, and the raw text it splices into a fetch is compact.  An @
 * stands for a string long enough to be skimmed: it must come back whole
 * whichever way the envelope went, and a bad body must get the answer it
 * got before skimming.
 */
static void envelope_as_sent(void **state)
{
	static const struct {
		const char *entry;      /* after {"messages":[{ */
		const char *served;     /* the stored text, or NULL */
		int status;
	} cases[] = {
		{ "\"envelope\":{\"v\":1,\"ct\":\"a\\\"}\\\\\"}",
		  "{\"v\":1,\"ct\":\"a\\\"}\\\\\"}", 201 },
		/* kept as sent: Jansson would write \/ as / */
		{ "\"envelope\":{\"v\":1,\"ct\":\"a\\/b\"}",
		  "{\"v\":1,\"ct\":\"a\\/b\"}", 201 },
		{ "\"envelope\": { \"v\" : 1 ,\n\"ct\":\"a b\" }",
		  "{\"v\":1,\"ct\":\"a b\"}", 201 },
		{ "\"\\u0065nvelope\":{\"v\":1,\"ct\":\"a\\/b\"}",
		  "{\"v\":1,\"ct\":\"a/b\"}", 201 },
		{ "\"envelope\":{\"v\":1,\"ct\":\"@\",\"h\":\"@\"}",
		  "{\"v\":1,\"ct\":\"@\",\"h\":\"@\"}", 201 },
		{ "\"envelope\":{\"v\": 1,\"ct\":\"@\"}",
		  "{\"v\":1,\"ct\":\"@\"}", 201 },
		{ "\"\\u0065nvelope\":{\"ct\":\"@\",\"x\":\"a\\/\"}",
		  "{\"ct\":\"@\",\"x\":\"a/\"}", 201 },
		{ "\"@\":\"@\",\"envelope\":{\"ct\":\"@\"}",
		  "{\"ct\":\"@\"}", 201 },
		/* names are not skimmed: two that differ are two */
		{ "\"@a\":1,\"@b\" :2,\"envelope\":{\"@x\":1,\"@y\":2}",
		  "{\"@x\":1,\"@y\":2}", 201 },
		/* and a repeated one is still refused */
		{ "\"@\":1,\"@\" :2,\"envelope\":{\"ct\":\"@\"}", NULL, 400 },
		{ "\"envelope\":{\"@\":1,\"@\":2}", NULL, 400 },
		{ "\"envelope\":{\"ct\":\"@\001\"}", NULL, 400 },
		{ "\"envelope\":\"@\"", NULL, 400 },
	};
	struct fx *f = *state;
	struct st_json *g = golden();
	const char *bob_ik;
	char *tok, entry[2048], body[4096], served[2048];

	if (!g)
		skip();
	tok = golden_bob(f, g, &bob_ik);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(body, sizeof(body), "{\"messages\":[{\"to\":\"bob\","
		         "\"to_ik\":\"%s\",\"client_id\":\"%032zx\",%s}]}",
		         bob_ik, i + 1, longs(cases[i].entry, entry,
		                              sizeof(entry)));
		assert_int_equal(req(f, "POST", "/v1/messages", NULL, tok,
		                     body), cases[i].status);
		if (cases[i].served)
			fetch_ack(f, tok, longs(cases[i].served, served,
			                        sizeof(served)));
	}
	/* a long name where bob's goes: the same answer as ever */
	snprintf(body, sizeof(body), "{\"messages\":[{\"to\":\"%s\","
	         "\"to_ik\":\"%s\",\"client_id\":\"%032x\",\"envelope\":"
	         "{}}]}", longs("@", entry, sizeof(entry)), bob_ik, 99);
	assert_int_equal(req(f, "POST", "/v1/messages", NULL, tok, body), 400);
	assert_non_null(strstr((char *)f->r.body.data, "messages[0].to is not "
	                       "a user name"));
	free(tok);
	st_json_free(g);
}

/* An empty mailbox with wait asks the caller to wait, keyed by the user. */
static void long_poll(void **state)
{
	struct fx *f = *state;
	struct st_json *g = golden();
	struct st_api_req q;
	struct st_api_resp r;
	char *tok, auth[128];

	if (!g)
		skip();
	assert_int_equal(register_golden(f, g, "bob", "bob", "bob-password"), 201);
	tok = login(f, "bob", "bob-password");
	snprintf(auth, sizeof(auth), "Bearer %s", tok);
	st_api_req_init(&q);
	st_api_resp_init(&r);
	q.method = "GET";
	q.path = "/v1/messages";
	q.auth = auth;
	q.args[0].name = "wait";
	q.args[0].value = "30";
	q.nargs = 1;
	assert_int_equal(st_api_begin(&f->a, &q, &r), 0);
	st_api_handle(&f->a, &q, &r);
	assert_int_equal(r.kind, ST_API_WAIT);
	assert_true(r.wait_until > st_now_ms() + 29000);
	q.final = 1;
	st_api_handle(&f->a, &q, &r);
	assert_int_equal(r.kind, ST_API_DONE);
	assert_int_equal(r.status, 200);
	st_api_resp_free(&r);
	st_api_req_free(&q);
	free(tok);
	st_json_free(g);
}

/* Posts are stored as given and served back byte for byte. */
static void channels(void **state)
{
	struct fx *f = *state;
	struct st_json *g = golden(), *posts;
	char *bob, *alice, *p, *got, body[1024];

	if (!g)
		skip();
	/* the relay does not verify posts: alice may borrow bob's keys here */
	assert_int_equal(register_golden(f, g, "bob", "bob", "bob-password"), 201);
	assert_int_equal(register_golden(f, g, "alice", "bob", "alice-pass"), 201);
	bob = login(f, "bob", "bob-password");
	alice = login(f, "alice", "alice-pass");
	p = dump(at(g, "channel_post", "post", NULL));
	snprintf(body, sizeof(body), "{\"post\":%s}", p);
	assert_int_equal(req(f, "POST", "/v1/channels/lobby", NULL, bob, body),
	                 403);
	assert_int_equal(req(f, "POST", "/v1/channels/other", NULL, alice, body),
	                 400);
	assert_string_equal(str(f, "error"), "wrong_channel");
	assert_int_equal(req(f, "POST", "/v1/channels/lobby", NULL, alice, body),
	                 201);
	assert_int_equal(req(f, "GET", "/v1/channels/lobby", "after=0", bob,
	                     NULL), 200);
	posts = st_json_get(f->body, "posts");
	assert_int_equal(st_json_array_size(posts), 1);
	got = dump(st_json_get(st_json_array_get(posts, 0), "post"));
	assert_string_equal(got, p);
	assert_int_equal(req(f, "GET", "/v1/channels/Lobby", NULL, bob, NULL),
	                 400);
	free(got);
	free(p);
	free(bob);
	free(alice);
	st_json_free(g);
}

/* A user made in the store directly (the store checks no signature). */
static int64_t store_user(struct st_store *s, const char *name,
                          unsigned char to_ik[16])
{
	struct st_store_user u;
	struct st_store_spk spk;
	unsigned char h[32];

	memset(&u, 0, sizeof(u));
	memset(&spk, 0, sizeof(spk));
	snprintf(u.name, sizeof(u.name), "%s", name);
	memset(u.ik.ed25519, name[0], sizeof(u.ik.ed25519));
	spk.id = 1;
	assert_int_equal(st_store_begin(s), 0);
	assert_int_equal(st_store_user_create(s, &u, &spk, NULL, 0), 0);
	assert_int_equal(st_store_commit(s), 0);
	st_store_ik_hash(&u.ik, h);
	memcpy(to_ik, h, 16);
	return u.id;
}

/* One entry from sender to name: the store's answer. */
static int post_raw(struct st_store *s, int64_t sender, const char *to,
                    const unsigned char to_ik[16], int cid, int64_t *id)
{
	struct st_store_msg m;
	size_t bad = 0;
	int rc;

	memset(&m, 0, sizeof(m));
	m.to = to;
	memcpy(m.to_ik, to_ik, 16);
	m.client_id[15] = (unsigned char)cid;
	m.envelope = "{\"v\":1}";
	m.envlen = strlen(m.envelope);
	rc = st_store_msgs_post(s, sender, "alice", &m, 1, st_now_ms(), 3, &bad);
	if (id)
		*id = m.id;
	return rc;
}

/* The same as a job of a batch: under a savepoint, undone when refused. */
static int store_post(struct st_store *s, int64_t sender, const char *to,
                      const unsigned char to_ik[16], int cid, int64_t *id)
{
	int rc;

	assert_int_equal(st_store_save(s), 0);
	rc = post_raw(s, sender, to, to_ik, cid, id);
	if (rc == 0)
		assert_int_equal(st_store_release(s), 0);
	else
		assert_int_equal(st_store_undo(s), 0);
	return rc;
}

/* The same in a transaction of its own. */
static int post_commit(struct st_store *s, int64_t sender, const char *to,
                       const unsigned char to_ik[16], int cid, int64_t *id)
{
	int rc;

	assert_int_equal(st_store_begin(s), 0);
	rc = store_post(s, sender, to, to_ik, cid, id);
	assert_int_equal(st_store_commit(s), 0);
	return rc;
}

static struct st_store *reopen(struct fx *f)
{
	st_store_close(f->s);
	f->s = f->a.store = st_store_open(f->db);
	assert_non_null(f->s);
	return f->s;
}

/*
 * The mailbox cap (3 here) counts exactly through a savepoint undone, a
 * transaction rolled back, acks, a restart, expiry and account deletion.
 */
static void mailbox_cap(void **state)
{
	struct fx *f = *state;
	struct st_store *s = f->s;
	unsigned char ik_a[16], ik_b[16];
	int64_t a, b, id[3];
	sqlite3 *db;

	a = store_user(s, "alice", ik_a);
	b = store_user(s, "bob", ik_b);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 1, &id[0]), 0);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 2, &id[1]), 0);
	/* a job undone, then a whole batch lost: bob still has 2 */
	assert_int_equal(st_store_begin(s), 0);
	assert_int_equal(st_store_save(s), 0);
	assert_int_equal(post_raw(s, a, "bob", ik_b, 3, NULL), 0);
	assert_int_equal(st_store_undo(s), 0);
	assert_int_equal(store_post(s, a, "bob", ik_b, 3, NULL), 0);
	assert_int_equal(store_post(s, a, "bob", ik_b, 4, NULL), ST_STORE_FULL);
	st_store_rollback(s);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 3, &id[2]), 0);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 4, NULL), ST_STORE_FULL);
	/* a repeat is answered even with the mailbox full */
	assert_int_equal(post_commit(s, a, "bob", ik_b, 3, &id[0]), 0);
	assert_int_equal(id[0], id[2]);
	/* counted again at open */
	s = reopen(f);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 4, NULL), ST_STORE_FULL);
	assert_int_equal(post_commit(s, b, "alice", ik_a, 1, NULL), 0);
	/* an ack makes room for one */
	assert_int_equal(st_store_begin(s), 0);
	assert_int_equal(st_store_msgs_ack(s, b, &id[2], 1), 1);
	assert_int_equal(st_store_commit(s), 0);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 4, NULL), 0);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 5, NULL), ST_STORE_FULL);
	/* everything expires (sent records too): room for 3 again */
	assert_int_equal(st_store_begin(s), 0);
	assert_true(st_store_sweep(s, st_now_ms(), st_now_ms() + 1000, NULL,
	                           NULL) >= 4);
	assert_int_equal(st_store_commit(s), 0);
	for (int i = 1; i <= 3; i++)
		assert_int_equal(post_commit(s, a, "bob", ik_b, i, NULL), 0);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 4, NULL), ST_STORE_FULL);
	/* a deletion rolled back leaves bob full; one committed frees all */
	assert_int_equal(st_store_begin(s), 0);
	assert_int_equal(st_store_user_delete(s, b), 0);
	st_store_rollback(s);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 4, NULL), ST_STORE_FULL);
	assert_int_equal(st_store_begin(s), 0);
	assert_int_equal(st_store_user_delete(s, b), 0);
	assert_int_equal(st_store_commit(s), 0);
	/* (alice's client ids 1 to 3 went to the old bob: repeats) */
	b = store_user(s, "bob", ik_b);
	for (int i = 11; i <= 13; i++)
		assert_int_equal(post_commit(s, a, "bob", ik_b, i, NULL), 0);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 14, NULL), ST_STORE_FULL);
	/* a version 1 database (counts in users.queued) is migrated */
	st_store_close(s);
	f->s = f->a.store = NULL;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE users ADD COLUMN queued"
	                              " INTEGER NOT NULL DEFAULT 0;"
	                              "PRAGMA user_version=1", NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	s = reopen(f);
	assert_int_equal(post_commit(s, a, "bob", ik_b, 14, NULL), ST_STORE_FULL);
	assert_int_equal(post_commit(s, b, "alice", ik_a, 2, NULL), 0);
}

struct bigs {
	size_t n, len;
	int bad;
};

static int big_row(void *ctx, int64_t id, const char *from, int64_t ts,
                   const char *env, size_t len)
{
	struct bigs *b = ctx;

	if (len != b->len || env[len / 2] != 'a' + (char)(b->n % 26))
		b->bad++;
	b->n++;
	return 0;
}

/*
 * Alice posts bob message i: an envelope of len bytes whose text is the
 * letter big_row() expects of it.
 */
static void post_big(struct st_store *s, int64_t alice,
                     const unsigned char bob_ik[16], char *env, size_t len,
                     int i)
{
	struct st_store_msg m;
	size_t bad;

	memset(env, 'a' + i % 26, len);
	memcpy(env, "{\"x\":\"", 6);
	memcpy(env + len - 2, "\"}", 2);
	env[len] = '\0';
	memset(&m, 0, sizeof(m));
	m.to = "bob";
	memcpy(m.to_ik, bob_ik, 16);
	m.client_id[14] = (unsigned char)(i >> 8);
	m.client_id[15] = (unsigned char)i;
	m.envelope = env;
	m.envlen = len;
	assert_int_equal(st_store_msgs_post(s, alice, "alice", &m, 1,
	                                    st_now_ms(), 10000, &bad), 0);
}

/*
 * One transaction of 6 MiB of messages: the WAL's gathered writes pass
 * their 1 MiB buffer and the unix VFS's largest write, a checkpoint reads
 * them back, and every message comes back whole, before and after a
 * reopen.
 */
/* Bob's n messages are all there, whole, before and after a reopen. */
static void all_there(struct fx *f, int64_t bob, struct bigs *got, size_t n)
{
	assert_int_equal(st_store_msgs_fetch(f->s, bob, (int)n + 1, big_row,
	                                     got), (int)n);
	assert_int_equal(got->bad, 0);
	reopen(f);
	got->n = 0;
	assert_int_equal(st_store_msgs_fetch(f->s, bob, (int)n + 1, big_row,
	                                     got), (int)n);
	assert_int_equal(got->bad, 0);
}

static void wal_writes(void **state)
{
	struct fx *f = *state;
	struct st_store *s = f->s;
	unsigned char ik_a[16], ik_b[16];
	struct bigs got = { 0, 20000, 0 };
	char *env = st_malloc(got.len + 1);
	int64_t a, b;

	a = store_user(s, "alice", ik_a);
	b = store_user(s, "bob", ik_b);
	assert_int_equal(st_store_begin(s), 0);
	for (int i = 0; i < 300; i++)
		post_big(s, a, ik_b, env, got.len, i);
	assert_int_equal(st_store_commit(s), 0);
	all_there(f, b, &got, 300);
	free(env);
}

/*
 * Checkpoints run on a thread of their own, and the writer starts the WAL
 * again once it is long: with small thresholds, 1,500 commits of a message
 * each (about 35 MiB of WAL frames in all) never leave a WAL of more than
 * a third of that, and every message is there before and after a reopen.
 */
static void checkpoints(void **state)
{
	struct fx *f = *state;
	struct st_store *s = f->s;
	unsigned char ik_a[16], ik_b[16];
	struct bigs got = { 0, 600, 0 };
	char *env = st_malloc(got.len + 1), *wal = st_path_join(f->dir,
	                                                     "relay.db-wal");
	int64_t a, b;
	off_t most = 0;
	struct stat sb;

	st_store_sqlite_checkpoints(s, 20, 200);
	a = store_user(s, "alice", ik_a);
	b = store_user(s, "bob", ik_b);
	for (int i = 0; i < 1500; i++) {
		assert_int_equal(st_store_begin(s), 0);
		post_big(s, a, ik_b, env, got.len, i);
		assert_int_equal(st_store_commit(s), 0);
		if (stat(wal, &sb) == 0 && sb.st_size > most)
			most = sb.st_size;
	}
	assert_true(most > 200 * 4096);
	assert_true(most < 12 << 20);
	all_there(f, b, &got, 1500);
	free(wal);
	free(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(routes, setup, teardown),
		cmocka_unit_test_setup_teardown(framing, setup, teardown),
		cmocka_unit_test_setup_teardown(accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(bundle, setup, teardown),
		cmocka_unit_test_setup_teardown(messages, setup, teardown),
		cmocka_unit_test_setup_teardown(envelope_as_sent, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(long_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(channels, setup, teardown),
		cmocka_unit_test_setup_teardown(mailbox_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(checkpoints, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
