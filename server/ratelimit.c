/*
 * ratelimit.c - leaky buckets kept in memory, one per (kind, key).  A
 * bucket's level rises by each request's cost and drains at the rule's rate;
 * a request that would overflow it is refused with the time until it
 * would fit.  Buckets live in a hash table cut into stripes, each with its
 * own lock, so HTTP threads rarely meet; drained buckets are swept away so
 * a flood of new keys (addresses, names) cannot grow it for good.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define STRIPES 64
#define SLOTS 256               /* chains per stripe */

struct bucket {
	struct bucket *next;
	double level;
	int64_t t;              /* ms of the last update */
	int kind;
	char key[];
};

struct stripe {
	pthread_mutex_t mu;
	struct bucket *slot[SLOTS];
};

struct st_rl {
	struct st_rl_rule rule[ST_RL_COUNT];
	int off;
	struct stripe s[STRIPES];
};

struct st_rl *st_rl_new(const struct st_rl_rule rules[ST_RL_COUNT], int off)
{
	struct st_rl *rl = st_calloc(1, sizeof(*rl));

	memcpy(rl->rule, rules, sizeof(rl->rule));
	rl->off = off;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&rl->s[i].mu, NULL);
	return rl;
}

void st_rl_free(struct st_rl *rl)
{
	struct bucket *b;

	if (!rl)
		return;
	for (int i = 0; i < STRIPES; i++) {
		for (int j = 0; j < SLOTS; j++)
			while ((b = rl->s[i].slot[j])) {
				rl->s[i].slot[j] = b->next;
				free(b);
			}
		pthread_mutex_destroy(&rl->s[i].mu);
	}
	free(rl);
}

static uint64_t hash(int kind, const char *key)
{
	uint64_t h = 14695981039346656037ULL ^ (uint64_t)kind;

	while (*key)
		h = (h ^ (unsigned char)*key++) * 1099511628211ULL;
	return h;
}

/* The bucket of (kind, key) with its level drained to now; locks stripe. */
static struct bucket *find(struct st_rl *rl, int kind, const char *key,
                           int64_t now, int create, struct stripe **sp)
{
	uint64_t h = hash(kind, key);
	struct stripe *s = &rl->s[h % STRIPES];
	struct bucket **pb = &s->slot[(h / STRIPES) % SLOTS], *b;
	double drained;

	pthread_mutex_lock(&s->mu);
	*sp = s;
	for (b = *pb; b; b = b->next)
		if (b->kind == kind && strcmp(b->key, key) == 0)
			break;
	if (!b && create) {
		size_t n = strlen(key) + 1;

		b = st_calloc(1, sizeof(*b) + n);
		memcpy(b->key, key, n);
		b->kind = kind;
		b->t = now;
		b->next = *pb;
		*pb = b;
	}
	if (b && now > b->t) {
		drained = (double)(now - b->t) / 1000.0 * rl->rule[kind].rate;
		b->level = b->level > drained ? b->level - drained : 0;
		b->t = now;
	}
	return b;
}

int st_rl_take(struct st_rl *rl, enum st_rl_kind kind, const char *key,
               double cost, int64_t now_ms)
{
	const struct st_rl_rule *r = &rl->rule[kind];
	struct stripe *s;
	struct bucket *b;
	double over, secs;
	int wait;

	if (rl->off)
		return 0;
	b = find(rl, kind, key ? key : "", now_ms, 1, &s);
	over = b->level + cost - r->burst;
	if (over <= 1e-9) {
		b->level += cost;
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	pthread_mutex_unlock(&s->mu);
	/* a cost larger than the burst never fits; say so as a long wait */
	if (cost > r->burst || r->rate <= 0)
		return 3600;
	secs = over / r->rate;
	wait = (int)secs;
	return wait < secs ? wait + 1 : wait < 1 ? 1 : wait;
}

void st_rl_give(struct st_rl *rl, enum st_rl_kind kind, const char *key,
                double cost, int64_t now_ms)
{
	struct stripe *s;
	struct bucket *b;

	if (rl->off)
		return;
	if ((b = find(rl, kind, key ? key : "", now_ms, 0, &s)))
		b->level = b->level > cost ? b->level - cost : 0;
	pthread_mutex_unlock(&s->mu);
}

void st_rl_sweep(struct st_rl *rl, int64_t now_ms)
{
	for (int i = 0; i < STRIPES; i++) {
		struct stripe *s = &rl->s[i];

		pthread_mutex_lock(&s->mu);
		for (int j = 0; j < SLOTS; j++) {
			struct bucket **pb = &s->slot[j], *b;

			while ((b = *pb)) {
				double left = b->level - (double)(now_ms - b->t) /
				              1000.0 * rl->rule[b->kind].rate;

				if (left <= 0) {
					*pb = b->next;
					free(b);
				} else {
					pb = &b->next;
				}
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
}

int st_rl_parse(const char *s, struct st_rl_rule *r)
{
	double burst, count, per;
	char *end;

	burst = strtod(s, &end);
	if (end == s || *end != ':' || burst < 1)
		goto bad;
	s = end + 1;
	count = strtod(s, &end);
	if (end == s || *end != '/' || count <= 0)
		goto bad;
	s = end + 1;
	if (strcmp(s, "s") == 0)
		per = 1;
	else if (strcmp(s, "m") == 0)
		per = 60;
	else if (strcmp(s, "h") == 0)
		per = 3600;
	else if (strcmp(s, "d") == 0)
		per = 86400;
	else if ((per = strtod(s, &end)) <= 0 || *end || end == s)
		goto bad;
	r->burst = burst;
	r->rate = count / per;
	return 0;
bad:
	return st_error(ST_EX_USAGE, "bad rate limit (want BURST:COUNT/UNIT, "
	                "e.g. 20:20/h)");
}
