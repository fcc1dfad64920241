/*
 * test_ratchet.c - the protocol core with random keys: X3DH and the
 * Double Ratchet through the per-peer state, envelopes and inner messages
 * as they go over the wire.  Round trips, out-of-order delivery and loss,
 * the MAX_SKIP boundaries, skipped-key eviction and expiry, replays,
 * tampering (state unchanged), simultaneous initiation, earlier-session
 * fallback, low-order keys, and padding edge cases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "st.h"

#define NOW 1767225600000LL
#define DAY (24LL * 3600 * 1000)

struct party {
	char name[16];
	struct st_identity id;
	struct st_spk spk[2];
	size_t nspk;
	struct st_opk opk[8];
	size_t nopk;
	uint32_t next_opk;
	struct st_ratchet *r;   /* with the one peer of each test */
};

static void party_init(struct party *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	assert_int_equal(st_identity_generate(&p->id), 0);
	assert_int_equal(st_spk_generate(&p->id, 1, NULL, NOW, &p->spk[0]), 0);
	p->nspk = 1;
	p->next_opk = 100;
	p->r = st_ratchet_new();
}

static void party_free(struct party *p)
{
	st_ratchet_free(p->r);
	st_identity_wipe(&p->id);
	st_wipe(p, sizeof(*p));
}

/* What the relay would hand out for p: a fresh OPK each time when opk. */
static void bundle_of(struct party *p, int opk, struct st_bundle *b)
{
	struct st_json *j;

	memset(b, 0, sizeof(*b));
	strcpy(b->user, p->name);
	b->id = p->id.pub;
	b->spk_id = p->spk[0].id;
	memcpy(b->spk, p->spk[0].pub, 32);
	memcpy(b->spk_sig, p->spk[0].sig, 64);
	if (opk) {
		struct st_opk *o = &p->opk[p->nopk++ % 8];

		assert_int_equal(st_opk_generate(p->next_opk++, NULL, o), 0);
		b->has_opk = 1;
		b->opk_id = o->id;
		memcpy(b->opk, o->pub, 32);
	}
	/* through the wire form and its checks */
	j = st_bundle_to_json(b);
	assert_int_equal(st_bundle_parse(j, b), 0);
	st_json_free(j);
}

static void start(struct party *a, struct party *b, int opk)
{
	struct st_bundle bb;

	bundle_of(b, opk, &bb);
	assert_int_equal(st_ratchet_initiate(a->r, &a->id, a->name, &bb, NULL),
	                 0);
}

/* Encode an inner message with body text, encrypt, and put it on the wire. */
static char *send_text(struct party *from, struct party *to, const char *text)
{
	char *names[] = { to->name };
	struct st_msg m;
	struct st_envelope env;
	struct st_json *j;
	unsigned char *pt;
	size_t ptlen;
	char *wire;

	memset(&m, 0, sizeof(m));
	assert_int_equal(st_msg_new_id(m.id), 0);
	m.ts = NOW;
	m.to = names;
	m.nto = 1;
	m.has_body = 1;
	m.body = (unsigned char *)text;
	m.bodylen = strlen(text);
	assert_int_equal(st_msg_encode(&m, &pt, &ptlen), 0);
	assert_int_equal(st_ratchet_encrypt(from->r, pt, ptlen, &env), 0);
	st_free_secret(pt, ptlen);
	j = st_envelope_to_json(&env);
	wire = st_json_dump(j);
	st_json_free(j);
	st_envelope_free(&env);
	return wire;
}

static int parse_wire(const char *wire, struct st_envelope *env)
{
	struct st_json *j = st_json_parse(wire, strlen(wire), 1 << 20, "wire");
	int rc;

	if (!j)
		return -1;
	rc = st_envelope_parse(j, env);
	st_json_free(j);
	return rc;
}

static char *state_dump(const struct st_ratchet *r)
{
	struct st_json *j = st_ratchet_to_json(r);
	char *s = st_json_dump(j);

	st_json_free_secret(j);
	return s;
}

/*
 * Receive wire as to (from from) at time now: the text, malloc'd, or NULL
 * on failure, in which case the state must be exactly as before.
 */
static char *recv_at(struct party *to, struct party *from, const char *wire,
                     int64_t now, struct st_ratchet_info *info)
{
	struct st_prekey_set pk = { to->spk, to->nspk, to->opk, 8 };
	struct st_envelope env;
	struct st_msg m;
	unsigned char *pt;
	size_t ptlen;
	char *before = state_dump(to->r), *after, *text;

	if (parse_wire(wire, &env) < 0) {
		free(before);
		return NULL;
	}
	if (st_ratchet_decrypt(to->r, &to->id, to->name, &from->id.pub,
	                       from->name, &pk, &env, now, &pt, &ptlen,
	                       info) < 0) {
		st_envelope_free(&env);
		after = state_dump(to->r);
		assert_string_equal(before, after);
		free(before);
		free(after);
		return NULL;
	}
	st_envelope_free(&env);
	free(before);
	assert_int_equal(st_msg_decode(pt, ptlen, &m), 0);
	st_free_secret(pt, ptlen);
	assert_true(m.has_body && m.is_text);
	text = strndup((char *)m.body, m.bodylen);
	st_msg_free(&m);
	return text;
}

static char *recv_msg(struct party *to, struct party *from, const char *wire)
{
	return recv_at(to, from, wire, NOW, NULL);
}

static void expect(struct party *to, struct party *from, const char *wire,
                   const char *text)
{
	char *got = recv_msg(to, from, wire);

	if (!got)
		fail_msg("%s cannot decrypt \"%s\": %s", to->name, text,
		         st_errmsg());
	assert_string_equal(got, text);
	free(got);
}

static void refuse(struct party *to, struct party *from, const char *wire)
{
	char *got = recv_msg(to, from, wire);

	if (got)
		fail_msg("%s decrypted what it should refuse: %s", to->name,
		         got);
}

/* Delete an OPK once used, as st-recv does. */
static void use_opk(struct party *p, const struct st_ratchet_info *info)
{
	if (!info->opk_used)
		return;
	for (size_t i = 0; i < 8; i++)
		if (p->opk[i].id == info->opk_id)
			st_wipe(&p->opk[i], sizeof(p->opk[i]));
}

/* ---- round trips ---- */

static void test_round_trip(void **state)
{
	struct party a, b;
	struct st_ratchet_info info;
	char *w, *t, text[64];

	party_init(&a, "alice");
	party_init(&b, "bob");
	assert_false(st_ratchet_has_session(a.r));
	start(&a, &b, 1);
	for (int round = 0; round < 20; round++) {
		/* a few each way, alternating who speaks */
		for (int k = 0; k < round % 4 + 1; k++) {
			snprintf(text, sizeof(text), "a%d.%d", round, k);
			w = send_text(&a, &b, text);
			/* the x3dh part goes until bob has replied */
			assert_int_equal(strstr(w, "\"x3dh\"") != NULL, round == 0);
			t = recv_at(&b, &a, w, NOW, &info);
			assert_non_null(t);
			assert_string_equal(t, text);
			assert_int_equal(info.new_session, round == 0 && k == 0);
			use_opk(&b, &info);
			free(t);
			free(w);
		}
		for (int k = 0; k < round % 3 + 1; k++) {
			snprintf(text, sizeof(text), "b%d.%d", round, k);
			w = send_text(&b, &a, text);
			assert_null(strstr(w, "\"x3dh\""));
			expect(&a, &b, w, text);
			free(w);
		}
	}
	party_free(&a);
	party_free(&b);
}

/* The state survives a trip through its JSON, mid-conversation. */
static void test_state_json(void **state)
{
	struct party a, b;
	struct st_json *j;
	struct st_ratchet *r;
	char *w1, *w2, *w3, *s1, *s2;

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 0);
	w1 = send_text(&a, &b, "one");
	w2 = send_text(&a, &b, "two");
	w3 = send_text(&a, &b, "three");
	expect(&b, &a, w1, "one");
	expect(&b, &a, w3, "three");       /* "two" waits as a skipped key */

	s1 = state_dump(b.r);
	j = st_json_parse(s1, strlen(s1), 1 << 20, "state");
	r = st_ratchet_from_json(j);
	assert_non_null(r);
	st_json_free_secret(j);
	s2 = state_dump(r);
	assert_string_equal(s1, s2);
	st_ratchet_free(b.r);
	b.r = r;
	expect(&b, &a, w2, "two");
	free(w1);
	free(w2);
	free(w3);
	w1 = send_text(&b, &a, "reply");
	expect(&a, &b, w1, "reply");
	free(w1);

	/* a damaged state is refused, naming the problem */
	for (int k = 0; k < 4; k++) {
		static const char *const edits[][2] = {
			{ "\"nr\":", "\"nr\":-" },
			{ "\"role\":\"responder\"", "\"role\":\"bystander\"" },
			{ "\"v\":1", "\"v\":2" },
			{ "\"skipped\":[", "\"skipped\":[1," },
		};
		char *e = strstr(s1, edits[k][0]), *bad;

		assert_non_null(e);
		bad = malloc(strlen(s1) + 16);
		sprintf(bad, "%.*s%s%s", (int)(e - s1), s1, edits[k][1],
		        e + strlen(edits[k][0]));
		j = st_json_parse(bad, strlen(bad), 1 << 20, "state");
		assert_non_null(j);
		assert_null(st_ratchet_from_json(j));
		assert_int_equal(st_errcode(), ST_EX_DATAERR);
		st_json_free(j);
		free(bad);
	}
	free(s1);
	free(s2);
	party_free(&a);
	party_free(&b);
}

/* xorshift: reproducible interleavings */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

struct inflight {
	char *wire;
	char text[32];
};

/*
 * Random sends each way, delivered in random order, some lost: every
 * delivered message decrypts exactly once to its text.
 */
static void test_interleavings(void **state)
{
	for (int run = 0; run < 40; run++) {
		struct party p[2];
		struct inflight q[2][64];
		size_t nq[2] = { 0, 0 };
		int sent = 0;

		party_init(&p[0], "alice");
		party_init(&p[1], "bob");
		start(&p[0], &p[1], run & 1);
		/* bob can only speak once alice's first message arrived */
		snprintf(q[0][0].text, 32, "first %d", run);
		q[0][0].wire = send_text(&p[0], &p[1], q[0][0].text);
		expect(&p[1], &p[0], q[0][0].wire, q[0][0].text);
		free(q[0][0].wire);
		for (int step = 0; step < 300; step++) {
			int s = (int)rnd(2), act = (int)rnd(10);

			if (act < 4 && nq[s] < 64) {
				struct inflight *f = &q[s][nq[s]++];

				snprintf(f->text, sizeof(f->text), "%d:%d", s,
				         sent++);
				f->wire = send_text(&p[s], &p[1 - s], f->text);
			} else if (nq[s]) {
				size_t i = rnd((uint32_t)nq[s]);
				struct inflight f = q[s][i];

				q[s][i] = q[s][--nq[s]];
				if (act < 9) {
					expect(&p[1 - s], &p[s], f.wire, f.text);
					/* a second delivery is refused */
					refuse(&p[1 - s], &p[s], f.wire);
				}       /* else: lost */
				free(f.wire);
			}
		}
		for (int s = 0; s < 2; s++)
			for (size_t i = 0; i < nq[s]; i++) {
				expect(&p[1 - s], &p[s], q[s][i].wire,
				       q[s][i].text);
				free(q[s][i].wire);
			}
		party_free(&p[0]);
		party_free(&p[1]);
	}
}

static void test_out_of_order(void **state)
{
	struct party a, b;
	char *w[6];
	char text[16];

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 1);
	for (int i = 0; i < 6; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		w[i] = send_text(&a, &b, text);
	}
	/* the last first: it starts the session and skips five keys */
	expect(&b, &a, w[5], "m5");
	expect(&b, &a, w[2], "m2");
	expect(&b, &a, w[0], "m0");
	refuse(&b, &a, w[0]);
	/* a reply, a new chain from alice, then her old chain's stragglers */
	{
		char *r = send_text(&b, &a, "reply"), *n;

		expect(&a, &b, r, "reply");
		n = send_text(&a, &b, "new chain");
		expect(&b, &a, n, "new chain");
		expect(&b, &a, w[4], "m4");
		expect(&b, &a, w[1], "m1");
		expect(&b, &a, w[3], "m3");
		refuse(&b, &a, w[3]);
		refuse(&b, &a, n);
		free(r);
		free(n);
	}
	for (int i = 0; i < 6; i++)
		free(w[i]);
	party_free(&a);
	party_free(&b);
}

/* ---- MAX_SKIP ---- */

static void test_max_skip_new_chain(void **state)
{
	struct party a, b;
	char **w = calloc(1002, sizeof(*w));

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 0);
	for (int i = 0; i < 1002; i++)
		w[i] = send_text(&a, &b, "x");
	/* n = 1001 would skip 1001 keys: refused, bob unchanged */
	refuse(&b, &a, w[1001]);
	assert_string_equal(st_errmsg(), "message would skip more than 1000 "
	                    "message keys");
	/* n = 1000 skips exactly 1000: fine */
	expect(&b, &a, w[1000], "x");
	expect(&b, &a, w[0], "x");
	expect(&b, &a, w[999], "x");
	/* within one chain too: nr = 1001 now, so 2001 is one too far */
	{
		char *more[1002];

		for (int i = 0; i < 1001; i++)
			more[i] = send_text(&a, &b, "y");   /* n = 1002..2002 */
		refuse(&b, &a, more[1000]);             /* n = 2002 */
		expect(&b, &a, more[999], "y");         /* n = 2001 */
		for (int i = 0; i < 1001; i++)
			free(more[i]);
	}
	for (int i = 0; i < 1002; i++)
		free(w[i]);
	free(w);
	party_free(&a);
	party_free(&b);
}

/*
 * The old chain is checked apart: bob has received 1 of alice's messages
 * (nr = 1); after his reply, alice's new chain says pn = her count.
 */
static void max_skip_old(uint32_t count, int ok)
{
	struct party a, b;
	char *w, *r;

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 0);
	w = send_text(&a, &b, "first");
	expect(&b, &a, w, "first");
	free(w);
	for (uint32_t i = 1; i < count; i++)
		free(send_text(&a, &b, "lost"));
	r = send_text(&b, &a, "reply");
	expect(&a, &b, r, "reply");
	w = send_text(&a, &b, "pn");   /* pn = count, n = 0 */
	if (ok)
		expect(&b, &a, w, "pn");
	else
		refuse(&b, &a, w);
	free(w);
	free(r);
	party_free(&a);
	party_free(&b);
}

static void test_max_skip_old_chain(void **state)
{
	max_skip_old(1001, 1);          /* skips 1000 in the old chain */
	max_skip_old(1002, 0);          /* would skip 1001 */
}

/* ---- skipped keys: eviction at 2000, expiry after 30 days ---- */

static size_t nskipped(const struct st_ratchet *r)
{
	struct st_json *j = st_ratchet_to_json(r), *a, *s;
	size_t n;

	st_json_get_arr(j, "sessions", &a);
	s = st_json_array_get(a, 0);
	st_json_get_arr(s, "skipped", &a);
	n = st_json_array_size(a);
	st_json_free_secret(j);
	return n;
}

static void test_skipped_eviction(void **state)
{
	struct party a, b;
	char **w = calloc(3001, sizeof(*w));

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 0);
	for (int i = 0; i <= 3000; i++)
		w[i] = send_text(&a, &b, "m");
	expect(&b, &a, w[1000], "m");   /* skips 0..999 */
	assert_int_equal(nskipped(b.r), 1000);
	expect(&b, &a, w[2000], "m");   /* skips 1001..1999 */
	assert_int_equal(nskipped(b.r), 1999);
	expect(&b, &a, w[3000], "m");   /* 999 more: the 998 oldest go */
	assert_int_equal(nskipped(b.r), 2000);
	refuse(&b, &a, w[0]);
	refuse(&b, &a, w[997]);
	expect(&b, &a, w[998], "m");
	expect(&b, &a, w[2999], "m");
	assert_int_equal(nskipped(b.r), 1998);
	for (int i = 0; i <= 3000; i++)
		free(w[i]);
	free(w);
	party_free(&a);
	party_free(&b);
}

static void test_skipped_expiry(void **state)
{
	struct party a, b;
	char *w[4], *t;

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 0);
	for (int i = 0; i < 4; i++)
		w[i] = send_text(&a, &b, "m");
	expect(&b, &a, w[3], "m");      /* keys 0, 1, 2 stored at NOW */
	t = recv_at(&b, &a, w[0], NOW + 30 * DAY, NULL);
	assert_non_null(t);             /* 30 days: still there */
	free(t);
	t = recv_at(&b, &a, w[1], NOW + 30 * DAY + 1, NULL);
	assert_null(t);                 /* a millisecond later: gone */
	/* the failed attempt dropped nothing: the copy was discarded */
	assert_int_equal(nskipped(b.r), 2);
	/* but a success after that time prunes both */
	free(w[3]);
	w[3] = send_text(&a, &b, "later");
	t = recv_at(&b, &a, w[3], NOW + 31 * DAY, NULL);
	assert_non_null(t);
	free(t);
	assert_int_equal(nskipped(b.r), 0);
	refuse(&b, &a, w[2]);
	for (int i = 0; i < 4; i++)
		free(w[i]);
	party_free(&a);
	party_free(&b);
}

/* ---- replays and tampering ---- */

static char *edit_b64(const char *wire, const char *field, int from_end)
{
	char key[16], *s = strdup(wire), *p, *q;

	snprintf(key, sizeof(key), "\"%s\":\"", field);
	p = strstr(s, key);
	assert_non_null(p);
	p += strlen(key);
	q = strchr(p, '"');
	/* not the last character, which carries padding bits */
	p = from_end ? q - 2 : p + 3;
	*p = *p == 'A' ? 'B' : 'A';
	return s;
}

static void test_tamper_and_replay(void **state)
{
	struct party a, b;
	char *w1, *w2, *bad, *r;

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 1);
	w1 = send_text(&a, &b, "one");
	w2 = send_text(&a, &b, "two");
	/* refuse() checks the state is byte for byte unchanged */
	const char *fields[] = { "ct", "hdr", "ek", "ik" };
	for (int k = 0; k < 4; k++)
		for (int end = 0; end < 2; end++) {
			bad = edit_b64(w1, fields[k], end);
			refuse(&b, &a, bad);
			free(bad);
		}
	expect(&b, &a, w1, "one");
	refuse(&b, &a, w1);                     /* replay */
	for (int k = 0; k < 2; k++)
		for (int end = 0; end < 2; end++) {
			bad = edit_b64(w2, fields[k], end);
			refuse(&b, &a, bad);
			free(bad);
		}
	expect(&b, &a, w2, "two");
	refuse(&b, &a, w2);
	refuse(&b, &a, w1);
	r = send_text(&b, &a, "reply");
	bad = edit_b64(r, "hdr", 1);            /* the message number */
	refuse(&a, &b, bad);
	free(bad);
	expect(&a, &b, r, "reply");
	refuse(&a, &b, r);
	free(r);
	free(w1);
	free(w2);
	party_free(&a);
	party_free(&b);
}

/* An x3dh part naming another identity than the pinned one: exit 67. */
static void test_identity_mismatch(void **state)
{
	struct party a, b, m;
	char *w;

	party_init(&a, "alice");
	party_init(&b, "bob");
	party_init(&m, "alice");        /* mallory, claiming to be alice */
	start(&m, &b, 0);
	w = send_text(&m, &b, "hi, it's alice");
	refuse(&b, &a, w);
	assert_int_equal(st_errcode(), ST_EX_IDENTITY);
	free(w);
	party_free(&a);
	party_free(&b);
	party_free(&m);
}

static void test_prekeys(void **state)
{
	struct party a, b;
	struct st_ratchet_info info;
	char *w, *t;

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 1);
	w = send_text(&a, &b, "hi");
	t = recv_at(&b, &a, w, NOW, &info);
	assert_non_null(t);
	free(t);
	assert_true(info.new_session && info.opk_used);
	use_opk(&b, &info);
	/* later messages of the session need the OPK no longer */
	free(w);
	w = send_text(&a, &b, "again");
	expect(&b, &a, w, "again");
	free(w);
	/* a new session naming the deleted OPK fails: nothing changes */
	st_ratchet_free(a.r);
	a.r = st_ratchet_new();
	{
		struct st_bundle bb;

		bundle_of(&b, 1, &bb);
		bb.opk_id = info.opk_id;        /* the relay hands it out again */
		assert_int_equal(st_ratchet_initiate(a.r, &a.id, a.name, &bb,
		                                     NULL), 0);
	}
	w = send_text(&a, &b, "stale opk");
	refuse(&b, &a, w);
	assert_non_null(strstr(st_errmsg(), "unknown one-time prekey"));
	free(w);
	/* an unknown SPK likewise */
	st_ratchet_free(a.r);
	a.r = st_ratchet_new();
	{
		struct st_bundle bb;
		struct st_spk other;

		assert_int_equal(st_spk_generate(&b.id, 9, NULL, NOW, &other),
		                 0);
		bundle_of(&b, 0, &bb);
		bb.spk_id = 9;
		memcpy(bb.spk, other.pub, 32);
		memcpy(bb.spk_sig, other.sig, 64);
		assert_int_equal(st_ratchet_initiate(a.r, &a.id, a.name, &bb,
		                                     NULL), 0);
	}
	w = send_text(&a, &b, "unknown spk");
	refuse(&b, &a, w);
	assert_non_null(strstr(st_errmsg(), "unknown signed prekey"));
	free(w);
	party_free(&a);
	party_free(&b);
}

/* ---- several sessions ---- */

static void test_simultaneous(void **state)
{
	struct party a, b;
	char *wa, *wb, *t;
	struct st_json *ja, *jb, *sa, *sb, *arr;
	const char *ada, *adb;

	party_init(&a, "alice");
	party_init(&b, "bob");
	/* both start a session at the same moment */
	start(&a, &b, 1);
	start(&b, &a, 1);
	wa = send_text(&a, &b, "from a");
	wb = send_text(&b, &a, "from b");
	expect(&b, &a, wa, "from a");
	expect(&a, &b, wb, "from b");
	free(wa);
	free(wb);
	/* they talk on, crossing messages, and every one decrypts */
	for (int i = 0; i < 6; i++) {
		wa = send_text(&a, &b, "a");
		wb = send_text(&b, &a, "b");
		expect(&b, &a, wa, "a");
		expect(&a, &b, wb, "b");
		free(wa);
		free(wb);
	}
	/* one turn-taking exchange later both use the same session */
	wa = send_text(&a, &b, "a");
	expect(&b, &a, wa, "a");
	wb = send_text(&b, &a, "b");
	t = recv_msg(&a, &b, wb);
	assert_string_equal(t, "b");
	free(t);
	free(wa);
	free(wb);
	ja = st_ratchet_to_json(a.r);
	jb = st_ratchet_to_json(b.r);
	st_json_get_arr(ja, "sessions", &arr);
	assert_int_equal(st_json_array_size(arr), 2);
	sa = st_json_array_get(arr, 0);
	st_json_get_arr(jb, "sessions", &arr);
	sb = st_json_array_get(arr, 0);
	st_json_get_str(sa, "ad", &ada, NULL);
	st_json_get_str(sb, "ad", &adb, NULL);
	assert_string_equal(ada, adb);
	st_json_free_secret(ja);
	st_json_free_secret(jb);
	/* and stay there */
	for (int i = 0; i < 3; i++) {
		struct st_ratchet_info info;

		wa = send_text(&a, &b, "steady");
		t = recv_at(&b, &a, wa, NOW, &info);
		assert_string_equal(t, "steady");
		assert_false(info.switched);
		free(t);
		free(wa);
	}
	party_free(&a);
	party_free(&b);
}

static void test_earlier_session(void **state)
{
	struct party a, b;
	struct st_ratchet_info info;
	char *old, *w, *t, *first, *late2, *late1;

	party_init(&a, "alice");
	party_init(&b, "bob");
	start(&a, &b, 1);
	first = send_text(&a, &b, "session 1");
	expect(&b, &a, first, "session 1");
	w = send_text(&b, &a, "ack 1");
	expect(&a, &b, w, "ack 1");
	free(w);
	old = send_text(&a, &b, "late, in session 1");
	/* alice starts over (say, after trusting bob anew) */
	start(&a, &b, 1);
	w = send_text(&a, &b, "session 2");
	late2 = send_text(&a, &b, "late, in session 2");
	t = recv_at(&b, &a, w, NOW, &info);
	assert_string_equal(t, "session 2");
	assert_true(info.new_session);
	free(t);
	free(w);
	/* the straggler decrypts with the earlier session, now current */
	t = recv_at(&b, &a, old, NOW, &info);
	assert_string_equal(t, "late, in session 1");
	assert_true(info.switched);
	assert_false(info.new_session);
	free(t);
	free(old);
	/* bob's reply goes out in session 1, which alice also keeps */
	w = send_text(&b, &a, "reply in 1");
	t = recv_at(&a, &b, w, NOW, &info);
	assert_string_equal(t, "reply in 1");
	assert_true(info.switched);
	free(t);
	free(w);
	late1 = send_text(&a, &b, "later, in session 1");

	/* four more: bob keeps all six, session 2 the oldest */
	for (int i = 0; i < 4; i++) {
		start(&a, &b, 0);
		w = send_text(&a, &b, "next");
		expect(&b, &a, w, "next");
		free(w);
	}
	t = recv_at(&b, &a, late2, NOW, &info);
	assert_non_null(t);
	assert_string_equal(t, "late, in session 2");
	assert_true(info.switched);
	free(t);
	free(late2);
	/* a seventh pushes the oldest (now session 1) out */
	start(&a, &b, 0);
	w = send_text(&a, &b, "seventh");
	expect(&b, &a, w, "seventh");
	free(w);
	refuse(&b, &a, late1);
	free(late1);
	/* and session 1's first message is a replay, not a new session */
	refuse(&b, &a, first);
	assert_non_null(strstr(st_errmsg(), "replays"));
	free(first);
	party_free(&a);
	party_free(&b);
}

static void test_no_session(void **state)
{
	struct party a, b;
	struct st_envelope env;
	char *w, *r;

	party_init(&a, "alice");
	party_init(&b, "bob");
	assert_int_equal(st_ratchet_encrypt(a.r, "x", 1, &env), -1);
	start(&a, &b, 0);
	w = send_text(&a, &b, "hi");
	expect(&b, &a, w, "hi");
	r = send_text(&b, &a, "reply");
	/* a fresh alice (state lost) cannot read bob's ratchet messages */
	st_ratchet_free(a.r);
	a.r = st_ratchet_new();
	refuse(&a, &b, r);
	assert_non_null(strstr(st_errmsg(), "no session"));
	free(w);
	free(r);
	party_free(&a);
	party_free(&b);
}

/* ---- low-order keys ---- */

/* Decrypting env must fail and leave to's state as it was. */
static void refuse_env(struct party *to, struct party *from,
                       const struct st_envelope *env)
{
	struct st_prekey_set pk = { to->spk, to->nspk, to->opk, 8 };
	char *before = state_dump(to->r), *after;
	unsigned char *pt;
	size_t ptlen;

	assert_int_equal(st_ratchet_decrypt(to->r, &to->id, to->name,
	                                    &from->id.pub, from->name, &pk,
	                                    env, NOW, &pt, &ptlen, NULL), -1);
	assert_null(pt);
	after = state_dump(to->r);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_low_order(void **state)
{
	/* 0, 1 and a point of order 8 */
	static const unsigned char low[3][32] = {
		{ 0 }, { 1 },
		{ 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56,
		  0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb,
		  0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
		  0xb8, 0x00 },
	};
	struct party a, b;
	struct st_bundle bb;
	struct st_envelope env, bad;
	unsigned char priv[32], pub[32], out[32], in[45];
	char *w;

	party_init(&a, "alice");
	party_init(&b, "bob");
	assert_int_equal(st_x25519_keygen(priv, pub), 0);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(st_x25519(priv, low[k], out), -1);

		/* an OPK (unsigned) or a validly signed SPK of low order
		 * aborts X3DH, and alice gets no session */
		bundle_of(&b, 1, &bb);
		memcpy(bb.opk, low[k], 32);
		assert_int_equal(st_ratchet_initiate(a.r, &a.id, a.name, &bb,
		                                     NULL), -1);
		bundle_of(&b, 0, &bb);
		memcpy(in, "st-spk-v1\0\0\0\5", 13);
		memcpy(in + 13, low[k], 32);
		assert_int_equal(st_ed25519_sign(b.id.ed25519_seed, in, 45,
		                                 bb.spk_sig), 0);
		bb.spk_id = 5;
		memcpy(bb.spk, low[k], 32);
		assert_int_equal(st_ratchet_initiate(a.r, &a.id, a.name, &bb,
		                                     NULL), -1);
		assert_false(st_ratchet_has_session(a.r));
	}

	/* low-order EK in the x3dh part, or ratchet key in the header */
	start(&a, &b, 1);
	w = send_text(&a, &b, "hi");
	assert_int_equal(parse_wire(w, &env), 0);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(parse_wire(w, &bad), 0);
		memcpy(bad.ek, low[k], 32);
		refuse_env(&b, &a, &bad);
		memcpy(bad.ek, env.ek, 32);
		memcpy(bad.hdr, low[k], 32);
		refuse_env(&b, &a, &bad);
		st_envelope_free(&bad);
	}
	st_envelope_free(&env);
	expect(&b, &a, w, "hi");
	free(w);
	/* and in bob's reply to alice, and in bob's next chain */
	w = send_text(&b, &a, "reply");
	assert_int_equal(parse_wire(w, &env), 0);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(parse_wire(w, &bad), 0);
		memcpy(bad.hdr, low[k], 32);
		refuse_env(&a, &b, &bad);
		st_envelope_free(&bad);
	}
	st_envelope_free(&env);
	expect(&a, &b, w, "reply");
	free(w);
	party_free(&a);
	party_free(&b);
}

/* ---- padding and the inner message ---- */

static void test_padding(void **state)
{
	static const size_t sizes[][2] = {
		{ 1, 256 }, { 255, 256 }, { 256, 256 }, { 257, 512 },
		{ 511, 512 }, { 512, 512 }, { 65536, 65536 },
	};
	unsigned char *in = malloc(65537), *out;
	size_t outlen, len;

	memset(in, 'x', 65537);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		assert_int_equal(st_msg_pad(in, sizes[k][0], &out, &outlen), 0);
		assert_int_equal(outlen, sizes[k][1]);
		assert_memory_equal(out, in, sizes[k][0]);
		for (size_t i = sizes[k][0]; i < outlen; i++)
			assert_int_equal(out[i], 0);
		assert_int_equal(st_msg_unpad(out, outlen, &len), 0);
		assert_int_equal(len, sizes[k][0]);
		if (outlen > sizes[k][0]) {
			/* anything but zeros after the first NUL is refused */
			out[outlen - 1] = 1;
			/* (with one byte of padding there is no NUL left:
			 * the whole plaintext is then the JSON) */
			assert_int_equal(st_msg_unpad(out, outlen, &len),
			                 outlen - sizes[k][0] >= 2 ? -1 : 0);
			out[outlen - 1] = 0;
			if (outlen - sizes[k][0] >= 2) {
				out[sizes[k][0] + 1] = 0x80;
				assert_int_equal(st_msg_unpad(out, outlen, &len),
				                 -1);
			}
		}
		free(out);
	}
	assert_int_equal(st_msg_pad(in, 65537, &out, &outlen), -1);
	assert_int_equal(st_msg_pad(in, 0, &out, &outlen), -1);
	free(in);
}

/* Inner messages whose JSON is exactly 255, 256 and 257 bytes. */
static void test_inner_sizes(void **state)
{
	char *to[] = { "bob", "carol" };
	struct st_msg m, d;
	unsigned char *pt;
	size_t ptlen, base, len;
	char body[400];

	memset(&m, 0, sizeof(m));
	strcpy(m.id, "0123456789abcdef0123456789abcdef");
	m.ts = NOW;
	m.to = to;
	m.nto = 2;
	m.has_body = 1;
	m.body = (unsigned char *)body;
	m.bodylen = 0;
	assert_int_equal(st_msg_encode(&m, &pt, &ptlen), 0);
	assert_int_equal(st_msg_unpad(pt, ptlen, &base), 0);
	st_free_secret(pt, ptlen);
	for (size_t want = 255; want <= 257; want++) {
		m.bodylen = want - base;
		memset(body, 'z', m.bodylen);
		assert_int_equal(st_msg_encode(&m, &pt, &ptlen), 0);
		assert_int_equal(st_msg_unpad(pt, ptlen, &len), 0);
		assert_int_equal(len, want);
		assert_int_equal(ptlen, want <= 256 ? 256 : 512);
		assert_int_equal(st_msg_decode(pt, ptlen, &d), 0);
		assert_true(d.is_text);
		assert_int_equal(d.bodylen, m.bodylen);
		assert_memory_equal(d.body, body, m.bodylen);
		assert_int_equal(d.nto, 2);
		assert_string_equal(d.to[1], "carol");
		st_msg_free(&d);
		/* a stray byte in the padding */
		if (ptlen > len) {
			pt[ptlen - 1] = 'x';
			assert_int_equal(st_msg_decode(pt, ptlen, &d), -1);
			assert_int_equal(st_errcode(), ST_EX_DATAERR);
		}
		st_free_secret(pt, ptlen);
	}
}

static void test_inner_body(void **state)
{
	static const struct { const char *b; size_t n; int text; } cases[] = {
		{ "plain", 5, 1 },
		{ "caf\xc3\xa9 \xe2\x9c\x93", 9, 1 },
		{ "", 0, 1 },
		{ "nul\0inside", 10, 0 },
		{ "\xff\xfe", 2, 0 },
		{ "\xc0\xaf", 2, 0 },           /* overlong '/' */
		{ "\xed\xa0\x80", 3, 0 },       /* a surrogate */
		{ "\xf4\x90\x80\x80", 4, 0 },   /* past U+10FFFF */
		{ "ab\xe2\x9c", 4, 0 },         /* truncated */
		{ "quote\" back\\ nl\n esc\x1b", 21, 1 },
	};
	char *to[] = { "bob" };
	struct st_msg m, d;
	unsigned char *pt;
	size_t ptlen;

	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		memset(&m, 0, sizeof(m));
		assert_int_equal(st_msg_new_id(m.id), 0);
		m.ts = NOW;
		m.to = to;
		m.nto = 1;
		m.has_body = 1;
		m.body = (unsigned char *)cases[k].b;
		m.bodylen = cases[k].n;
		assert_int_equal(st_msg_encode(&m, &pt, &ptlen), 0);
		if (!strstr((char *)pt, cases[k].text ? "\"text\":" :
		                                        "\"data\":"))
			fail_msg("case %zu: %s", k, (char *)pt);
		assert_int_equal(st_msg_decode(pt, ptlen, &d), 0);
		assert_int_equal(d.is_text, cases[k].text);
		assert_int_equal(d.bodylen, cases[k].n);
		assert_memory_equal(d.body, cases[k].b, cases[k].n);
		assert_string_equal(d.id, m.id);
		st_msg_free(&d);
		st_free_secret(pt, ptlen);
	}
	/* bad messages */
	{
		static const char *const bad[] = {
			"{\"v\":2,\"id\":\"0123456789abcdef0123456789abcdef\","
			"\"ts\":1,\"to\":[\"bob\"]}",
			"{\"v\":1,\"id\":\"0123456789ABCDEF0123456789abcdef\","
			"\"ts\":1,\"to\":[\"bob\"]}",
			"{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
			"\"ts\":-1,\"to\":[\"bob\"]}",
			"{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
			"\"ts\":1,\"to\":[\"Bob\"]}",
			"{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
			"\"ts\":1,\"to\":[\"bob\"],\"text\":\"a\",\"data\":\"YQ\"}",
			"{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
			"\"ts\":1,\"to\":[\"bob\"],\"data\":\"YQ==\"}",
			"{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
			"\"ts\":1,\"to\":[\"bob\"],\"files\":[{\"name\":\"a\","
			"\"size\":1,\"blob\":\"b\",\"key\":\"AAAA\"}]}",
			"{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
			"\"ts\":1,\"to\":[\"bob\"],\"text\":\"a\\u0000b\"}",
			"[1]",
			"{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\","
			"\"ts\":1,\"to\":[\"bob\"]} trailing",
		};

		for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
			unsigned char *p;
			size_t n;

			assert_int_equal(st_msg_pad(bad[k], strlen(bad[k]), &p,
			                            &n), 0);
			if (st_msg_decode(p, n, &d) == 0)
				fail_msg("accepted %s", bad[k]);
			free(p);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_state_json),
		cmocka_unit_test(test_interleavings),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_max_skip_new_chain),
		cmocka_unit_test(test_max_skip_old_chain),
		cmocka_unit_test(test_skipped_eviction),
		cmocka_unit_test(test_skipped_expiry),
		cmocka_unit_test(test_tamper_and_replay),
		cmocka_unit_test(test_identity_mismatch),
		cmocka_unit_test(test_prekeys),
		cmocka_unit_test(test_simultaneous),
		cmocka_unit_test(test_earlier_session),
		cmocka_unit_test(test_no_session),
		cmocka_unit_test(test_low_order),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_inner_sizes),
		cmocka_unit_test(test_inner_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
