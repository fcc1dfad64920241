/*
 * protocol - the protocol core in-process, for tests/bench/protocol.sh:
 *
 *   x3dh       X3DH and the first message round: st_ratchet_initiate()
 *              against a parsed bundle with a one-time prekey, encrypt,
 *              and the responder's st_ratchet_decrypt() that starts the
 *              session (fresh states each time)
 *   same       one message one way on an established session: encrypt
 *              and decrypt (no DH ratchet step)
 *   pingpong   messages in alternating directions: every decryption
 *              brings a DH ratchet step, every encryption a new chain
 *
 * The plaintext is 256 bytes (a short message padded as st-send pads it).
 * Envelopes stay in memory (no JSON), as in libsignal-protocol-c's own
 * session_cipher calls.  Prints the median, mean and minimum per op over
 * the iterations; with -c it prints nothing and runs only the op named
 * for a callgrind run (the measured calls are inside op_x3dh(),
 * op_same() and op_pingpong(), for --toggle-collect).
 *
 *   protocol [-n ITER] [-c OP]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "st.h"

#define NOW 1767225600000LL

static struct st_identity alice, bob;
static struct st_spk spk;
static struct st_opk opk;
static struct st_bundle bundle;
static struct st_prekey_set bob_pk = { &spk, 1, &opk, 1 };
static unsigned char msg[256];

static void die(const char *what)
{
	fprintf(stderr, "protocol: %s: %s\n", what, st_errmsg());
	exit(1);
}

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void setup(void)
{
	struct st_json *j;

	if (st_identity_generate(&alice) < 0 || st_identity_generate(&bob) < 0 ||
	    st_spk_generate(&bob, 1, NULL, NOW, &spk) < 0 ||
	    st_opk_generate(100, NULL, &opk) < 0)
		die("keys");
	memset(&bundle, 0, sizeof(bundle));
	strcpy(bundle.user, "bob");
	bundle.id = bob.pub;
	bundle.spk_id = spk.id;
	memcpy(bundle.spk, spk.pub, 32);
	memcpy(bundle.spk_sig, spk.sig, 64);
	bundle.has_opk = 1;
	bundle.opk_id = opk.id;
	memcpy(bundle.opk, opk.pub, 32);
	/* through the wire form, as the relay serves it */
	j = st_bundle_to_json(&bundle);
	if (st_bundle_parse(j, &bundle) < 0)
		die("bundle");
	st_json_free(j);
	memset(msg, 0, sizeof(msg));
	memcpy(msg, "{\"v\":1,\"text\":\"hello, bob\"}", 27);
}

static void send_recv(struct st_ratchet *from, const struct st_identity *fid,
                      const char *fname, struct st_ratchet *to,
                      const struct st_identity *tid, const char *tname)
{
	struct st_envelope env;
	unsigned char *pt;
	size_t ptlen;

	if (st_ratchet_encrypt(from, msg, sizeof(msg), &env) < 0)
		die("encrypt");
	if (st_ratchet_decrypt(to, tid, tname, &fid->pub, fname,
	                       tid == &bob ? &bob_pk : NULL, &env, NOW, &pt,
	                       &ptlen, NULL) < 0)
		die("decrypt");
	if (ptlen != sizeof(msg) || memcmp(pt, msg, ptlen) != 0) {
		fprintf(stderr, "protocol: wrong plaintext\n");
		exit(1);
	}
	st_free_secret(pt, ptlen);
	st_envelope_free(&env);
}

/* The measured work of one op; noinline so callgrind can single it out. */
__attribute__((noinline)) static void op_x3dh(struct st_ratchet *a,
                                              struct st_ratchet *b)
{
	if (st_ratchet_initiate(a, &alice, "alice", &bundle, NULL) < 0)
		die("initiate");
	send_recv(a, &alice, "alice", b, &bob, "bob");
}

__attribute__((noinline)) static void op_same(struct st_ratchet *a,
                                              struct st_ratchet *b)
{
	send_recv(a, &alice, "alice", b, &bob, "bob");
}

__attribute__((noinline)) static void op_pingpong(struct st_ratchet *a,
                                                  struct st_ratchet *b,
                                                  int i)
{
	if (i & 1)
		send_recv(b, &bob, "bob", a, &alice, "alice");
	else
		send_recv(a, &alice, "alice", b, &bob, "bob");
}

/* An established session: alice's first message and bob's reply. */
static void establish(struct st_ratchet **a, struct st_ratchet **b)
{
	*a = st_ratchet_new();
	*b = st_ratchet_new();
	op_x3dh(*a, *b);
	send_recv(*b, &bob, "bob", *a, &alice, "alice");
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static void report(const char *name, double *t, int n)
{
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += t[i];
	qsort(t, n, sizeof(*t), cmp);
	printf("%-9s %8.2f us median %8.2f us mean %8.2f us min  (%d ops)\n",
	       name, t[n / 2], sum / n, t[0], n);
}

static void run(const char *op, int n, int timed)
{
	double *t = calloc(n, sizeof(*t)), t0;
	struct st_ratchet *a, *b;

	if (strcmp(op, "x3dh") == 0) {
		for (int i = 0; i < n; i++) {
			a = st_ratchet_new();
			b = st_ratchet_new();
			t0 = now_us();
			op_x3dh(a, b);
			t[i] = now_us() - t0;
			st_ratchet_free(a);
			st_ratchet_free(b);
		}
	} else if (strcmp(op, "same") == 0) {
		establish(&a, &b);
		for (int i = 0; i < n; i++) {
			t0 = now_us();
			op_same(a, b);
			t[i] = now_us() - t0;
		}
		st_ratchet_free(a);
		st_ratchet_free(b);
	} else if (strcmp(op, "pingpong") == 0) {
		establish(&a, &b);
		for (int i = 0; i < n; i++) {
			t0 = now_us();
			op_pingpong(a, b, i);
			t[i] = now_us() - t0;
		}
		st_ratchet_free(a);
		st_ratchet_free(b);
	} else {
		fprintf(stderr, "protocol: unknown op %s\n", op);
		exit(64);
	}
	if (timed)
		report(op, t, n);
	free(t);
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	int n = 0, c;

	while ((c = getopt(argc, argv, "n:c:")) != -1) {
		if (c == 'n')
			n = atoi(optarg);
		else if (c == 'c')
			only = optarg;
		else {
			fprintf(stderr, "usage: protocol [-n ITER] [-c OP]\n");
			return 64;
		}
	}
	setup();
	if (only) {
		run(only, n > 0 ? n : 100, 0);
		return 0;
	}
	/* a warm-up pass, then the measured ones */
	run("same", 200, 0);
	run("x3dh", n > 0 ? n : 1000, 1);
	run("same", n > 0 ? n : 20000, 1);
	run("pingpong", n > 0 ? n : 4000, 1);
	st_identity_wipe(&alice);
	st_identity_wipe(&bob);
	return 0;
}
