/*
 * test_ratchet_prop.c - property test of the Double Ratchet between two
 * parties: 10,000 random interleavings (scenarios), each a seeded random
 * schedule of sends in both directions, deliveries in any order, losses,
 * duplicate deliveries and save/load of either party's state through
 * st_ratchet_to_json()/st_ratchet_from_json().  One in 16 scenarios
 * starts from nothing (X3DH, with an OPK; a quarter of those with both
 * parties initiating at once); the others start from an established
 * session.  Properties:
 *
 * - every message delivered for the first time decrypts to its plaintext;
 * - a duplicate delivery is refused and leaves the state byte-identical
 *   (compared as st_ratchet_to_json() dumps);
 * - a lost message never breaks a later one: at the end every message
 *   still in flight decrypts;
 * - a saved and loaded state dumps identically and works on.
 *
 * Reproducible: scenario i uses seed BASE + i; BASE is 20260101 or
 * $ST_PROP_SEED, and a failure prints the seed and step.  $ST_PROP_RUNS
 * sets the number of scenarios (under the sanitizers the default is
 * 1,000, as they slow the crypto tenfold).  ST_PROP_RUNS=1
 * ST_PROP_SEED=<seed> replays one failing scenario.
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
#define MAXMSG 96

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_RUNS 1000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFAULT_RUNS 1000
#endif
#endif
#ifndef DEFAULT_RUNS
#define DEFAULT_RUNS 10000
#endif

/* ---- the scenario's random source: splitmix64 ---- */

static uint64_t rs;

static uint32_t rnd(uint32_t n)
{
	uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (uint32_t)(z % n);
}

/* ---- failure reporting with the seed ---- */

static unsigned long long cur_seed;
static int cur_step;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			print_error("seed %llu step %d: ", cur_seed,         \
			            cur_step);                               \
			print_error(__VA_ARGS__);                            \
			print_error(" (replay: ST_PROP_RUNS=1 "              \
			            "ST_PROP_SEED=%llu)\n", cur_seed);       \
			fail();                                              \
		}                                                            \
	} while (0)

/* ---- the two parties ---- */

struct party {
	const char *name;
	struct st_identity id;
	struct st_spk spk;
	struct st_opk opk;      /* this scenario's one-time prekey */
	int opk_gone;
	struct st_ratchet *r;
};

static struct party P[2];
static struct st_ratchet *snap[2];      /* an established session */

static struct st_bundle bundle_of(struct party *p, uint32_t opk_id)
{
	struct st_bundle b;

	memset(&b, 0, sizeof(b));
	strcpy(b.user, p->name);
	b.id = p->id.pub;
	b.spk_id = p->spk.id;
	memcpy(b.spk, p->spk.pub, 32);
	memcpy(b.spk_sig, p->spk.sig, 64);
	b.has_opk = 1;
	b.opk_id = opk_id;
	memcpy(b.opk, p->opk.pub, 32);
	return b;
}

static char *dump(const struct st_ratchet *r)
{
	struct st_json *j = st_ratchet_to_json(r);
	char *s = st_json_dump(j);

	st_json_free_secret(j);
	return s;
}

/* ---- messages ---- */

struct msg {
	int from;
	int delivered, lost;
	size_t len;
	unsigned char pt[300];
	char *wire;                     /* JSON form, for some */
	struct st_envelope env;
};

static struct msg M[MAXMSG];
static size_t nm;
static int64_t now;

static void send_msg(int from)
{
	struct msg *m = &M[nm];
	int rc;

	memset(m, 0, sizeof(*m));
	m->from = from;
	m->len = 1 + rnd(sizeof(m->pt));
	for (size_t i = 0; i < m->len; i++)
		m->pt[i] = (unsigned char)rnd(256);
	memcpy(m->pt, &nm, m->len < sizeof(nm) ? m->len : sizeof(nm));
	rc = st_ratchet_encrypt(P[from].r, m->pt, m->len, &m->env);
	CHECK(rc == 0, "%s cannot encrypt: %s", P[from].name, st_errmsg());
	if (rnd(8) == 0) {
		/* this one travels as JSON text */
		struct st_json *j = st_envelope_to_json(&m->env);

		m->wire = st_json_dump(j);
		st_json_free(j);
		st_envelope_free(&m->env);
	}
	nm++;
}

/* Deliver message i; 0 when it decrypted to its plaintext. */
static int deliver(size_t i)
{
	struct msg *m = &M[i];
	struct party *to = &P[1 - m->from], *from = &P[m->from];
	struct st_prekey_set pk = { &to->spk, 1, &to->opk,
	                            to->opk_gone ? 0 : 1 };
	struct st_ratchet_info info;
	struct st_envelope parsed, *env = &m->env;
	unsigned char *pt;
	size_t ptlen;
	int rc;

	if (m->wire) {
		struct st_json *j = st_json_parse(m->wire, strlen(m->wire),
		                                  1 << 20, "wire");

		CHECK(j && st_envelope_parse(j, &parsed) == 0,
		      "wire form does not parse: %s", st_errmsg());
		st_json_free(j);
		env = &parsed;
	}
	rc = st_ratchet_decrypt(to->r, &to->id, to->name, &from->id.pub,
	                        from->name, &pk, env, now, &pt, &ptlen,
	                        &info);
	if (m->wire)
		st_envelope_free(&parsed);
	if (rc < 0)
		return -1;
	CHECK(ptlen == m->len && memcmp(pt, m->pt, ptlen) == 0,
	      "message %zu to %s decrypted to other bytes", i, to->name);
	st_free_secret(pt, ptlen);
	if (info.opk_used) {
		CHECK(!to->opk_gone && info.opk_id == to->opk.id,
		      "one-time prekey %u reported used twice", info.opk_id);
		to->opk_gone = 1;       /* deleted, as st-recv does */
	}
	return 0;
}

static void deliver_new(size_t i)
{
	CHECK(deliver(i) == 0, "message %zu (%s to %s) does not decrypt: %s",
	      i, P[M[i].from].name, P[1 - M[i].from].name, st_errmsg());
	M[i].delivered = 1;
}

static void deliver_again(size_t i)
{
	struct party *to = &P[1 - M[i].from];
	char *before = dump(to->r), *after;

	CHECK(deliver(i) < 0, "message %zu delivered twice decrypted again",
	      i);
	after = dump(to->r);
	CHECK(strcmp(before, after) == 0, "a refused duplicate changed the "
	      "state of %s", to->name);
	free(before);
	free(after);
}

static void save_load(struct party *p)
{
	char *s = dump(p->r), *t;
	struct st_json *j = st_json_parse(s, strlen(s), 1 << 24, "state");
	struct st_ratchet *r;

	CHECK(j != NULL, "state does not parse: %s", st_errmsg());
	r = st_ratchet_from_json(j);
	CHECK(r != NULL, "state does not load: %s", st_errmsg());
	st_json_free_secret(j);
	t = dump(r);
	CHECK(strcmp(s, t) == 0, "state of %s changed through JSON", p->name);
	st_free_str_secret(s);
	st_free_str_secret(t);
	st_ratchet_free(p->r);
	p->r = r;
}

/* ---- one scenario ---- */

/* A random message index with the given state, or -1. */
static int pick(int want_delivered)
{
	size_t idx[MAXMSG], n = 0;

	for (size_t i = 0; i < nm; i++)
		if (!M[i].lost && M[i].delivered == want_delivered)
			idx[n++] = i;
	return n ? (int)idx[rnd((uint32_t)n)] : -1;
}

static void scenario(unsigned long long seed)
{
	int steps, last = 0;

	rs = seed;
	cur_seed = seed;
	cur_step = -1;
	nm = 0;
	now = NOW;
	for (int k = 0; k < 2; k++) {
		P[k].opk_gone = 0;
		P[k].opk.id = 1000 + (uint32_t)(seed % 1000000) * 2 + k;
	}
	if (rnd(16) == 0) {
		/* from nothing: alice initiates, sometimes bob too */
		struct st_bundle b;

		for (int k = 0; k < 2; k++)
			P[k].r = st_ratchet_new();
		b = bundle_of(&P[1], P[1].opk.id);
		CHECK(st_ratchet_initiate(P[0].r, &P[0].id, P[0].name, &b,
		                          NULL) == 0, "initiate");
		if (rnd(4) == 0) {
			b = bundle_of(&P[0], P[0].opk.id);
			CHECK(st_ratchet_initiate(P[1].r, &P[1].id, P[1].name,
			                          &b, NULL) == 0, "initiate");
		}
	} else {
		for (int k = 0; k < 2; k++)
			P[k].r = st_ratchet_dup(snap[k]);
	}

	steps = 4 + (int)rnd(20);
	for (cur_step = 0; cur_step < steps && nm < MAXMSG; cur_step++) {
		uint32_t e = rnd(100);
		int i;

		now += rnd(60000);
		if (e < 50) {
			/* a send, mostly by whoever sent last */
			int from = rnd(10) < 7 ? last : 1 - last;

			if (!st_ratchet_has_session(P[from].r))
				from = 1 - from;
			if (st_ratchet_has_session(P[from].r)) {
				send_msg(from);
				last = from;
			}
		} else if (e < 80) {
			if ((i = pick(0)) >= 0)
				deliver_new((size_t)i);
		} else if (e < 88) {
			if ((i = pick(0)) >= 0)
				M[i].lost = 1;
		} else if (e < 94) {
			if ((i = pick(1)) >= 0)
				deliver_again((size_t)i);
		} else {
			save_load(&P[rnd(2)]);
		}
	}
	/* everything still in flight arrives, in random order */
	for (int i; (i = pick(0)) >= 0; cur_step++)
		deliver_new((size_t)i);
	for (size_t i = 0; i < nm; i++) {
		if (M[i].delivered && rnd(4) == 0)
			deliver_again(i);
		free(M[i].wire);
		st_envelope_free(&M[i].env);
	}
	for (int k = 0; k < 2; k++) {
		st_ratchet_free(P[k].r);
		P[k].r = NULL;
	}
}

static void test_interleavings(void **state)
{
	const char *e = getenv("ST_PROP_SEED");
	unsigned long long base = e && *e ? strtoull(e, NULL, 10) : 20260101ULL;
	long runs = DEFAULT_RUNS;

	if ((e = getenv("ST_PROP_RUNS")) && *e)
		runs = strtol(e, NULL, 10);
	for (long i = 0; i < runs; i++)
		scenario(base + (unsigned long long)i);
	print_message("%ld interleavings from seed %llu\n", runs, base);
}

static int setup(void **state)
{
	static const char *names[2] = { "alice", "bob" };

	for (int k = 0; k < 2; k++) {
		P[k].name = names[k];
		if (st_identity_generate(&P[k].id) < 0 ||
		    st_spk_generate(&P[k].id, 1 + k, NULL, NOW, &P[k].spk) < 0 ||
		    st_opk_generate(1, NULL, &P[k].opk) < 0)
			return -1;
	}
	/* the established session: alice's first message, bob's reply */
	rs = 1;
	cur_seed = 0;
	nm = 0;
	now = NOW;
	for (int k = 0; k < 2; k++)
		P[k].r = st_ratchet_new();
	{
		struct st_bundle b = bundle_of(&P[1], P[1].opk.id);

		if (st_ratchet_initiate(P[0].r, &P[0].id, P[0].name, &b,
		                        NULL) < 0)
			return -1;
	}
	send_msg(0);
	if (deliver(0) < 0)
		return -1;
	send_msg(1);
	if (deliver(1) < 0)
		return -1;
	for (int k = 0; k < 2; k++) {
		snap[k] = P[k].r;
		P[k].r = NULL;
		free(M[k].wire);
		st_envelope_free(&M[k].env);
	}
	return 0;
}

static int teardown(void **state)
{
	for (int k = 0; k < 2; k++) {
		st_ratchet_free(snap[k]);
		st_identity_wipe(&P[k].id);
		st_wipe(&P[k].spk, sizeof(P[k].spk));
		st_wipe(&P[k].opk, sizeof(P[k].opk));
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interleavings),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
