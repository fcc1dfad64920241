/*
 * session.c - the Double Ratchet state with one peer (SPEC §4): the
 * current session, up to five earlier ones, and the (spk, ek) pairs that
 * have started sessions, so a replayed first message is refused once its
 * session is gone.  Every decryption trial runs on a copy of one session
 * (or on a new session) that replaces it only on success, so any failure
 * leaves the state exactly as it was.
 *
 * ratchet/NAME.json (binary values unpadded base64url; it holds secrets):
 *
 *   {"v":1,
 *    "sessions":[SESSION, ...],        current first, then earlier ones,
 *                                      most recently used first; at most 6
 *    "seen":[{"spk":ID, "ek":B64, "ts":MS}, ...]}
 *                                      (spk, ek) of sessions the peer
 *                                      started, kept 90 days, at most 1000
 *   SESSION = {
 *    "role":"initiator"|"responder",   who ran X3DH as A
 *    "pending":BOOL,                   initiator only: the x3dh part still
 *                                      goes with every message (no reply yet)
 *    "x3dh":{"ik":B64, "ek":B64, "spk":ID, "opk":ID|null},
 *                                      the initiator's X3DH header: ours to
 *                                      send, or the peer's that names it
 *    "ad":B64,                         lp(user_A)||id_A||lp(user_B)||id_B
 *    "rk":B64,                         root key
 *    "dhs":B64,                        our ratchet secret key (the public
 *                                      key is derived on load)
 *    "dhr":B64|null,                   the peer's ratchet public key
 *    "cks":B64|null, "ckr":B64|null,   sending and receiving chain keys
 *    "ns":N, "nr":N, "pn":N,           message numbers (0..2^32-1)
 *    "skipped":[{"dh":B64, "n":N, "mk":B64, "ts":MS}, ...]}
 *                                      skipped message keys, oldest first,
 *                                      at most 2000, each kept 30 days
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

#define SEEN_MAX 1000
#define SEEN_TTL_MS (90LL * 24 * 3600 * 1000)

struct sess {
	struct st_dr dr;
	int initiator;
	int pending;
	unsigned char ik[ST_ID_ENC_LEN];
	unsigned char ek[32];
	uint32_t spk_id;
	int has_opk;
	uint32_t opk_id;
};

struct seen {
	uint32_t spk;
	unsigned char ek[32];
	int64_t ts;
};

struct st_ratchet {
	struct sess s[ST_DR_MAX_SESSIONS];      /* s[0] is current */
	size_t ns;
	struct seen *seen;
	size_t nseen;
	struct st_dr_keysrc ks;
};

struct st_ratchet *st_ratchet_new(void)
{
	return st_calloc(1, sizeof(struct st_ratchet));
}

static void sess_wipe(struct sess *s)
{
	st_dr_wipe(&s->dr);
	st_wipe(s, sizeof(*s));
}

static void sess_copy(struct sess *dst, const struct sess *src)
{
	*dst = *src;
	st_dr_copy(&dst->dr, &src->dr);
}

void st_ratchet_free(struct st_ratchet *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ns; i++)
		sess_wipe(&r->s[i]);
	free(r->seen);
	st_free_secret(r, sizeof(*r));
}

struct st_ratchet *st_ratchet_dup(const struct st_ratchet *r)
{
	struct st_ratchet *d = st_ratchet_new();

	for (size_t i = 0; i < r->ns; i++)
		sess_copy(&d->s[i], &r->s[i]);
	d->ns = r->ns;
	if (r->nseen) {
		d->seen = st_calloc(r->nseen, sizeof(*d->seen));
		memcpy(d->seen, r->seen, r->nseen * sizeof(*d->seen));
	}
	d->nseen = r->nseen;
	d->ks = r->ks;
	return d;
}

int st_ratchet_has_session(const struct st_ratchet *r)
{
	return r->ns > 0 && r->s[0].dr.has_cks;
}

void st_ratchet_set_keysource(struct st_ratchet *r,
                              int (*fn)(void *ctx, unsigned char priv[32]),
                              void *ctx)
{
	r->ks.fn = fn;
	r->ks.ctx = ctx;
}

/* Make s the current session (moved in, not copied); the oldest goes. */
static void push_front(struct st_ratchet *r, struct sess *s)
{
	if (r->ns == ST_DR_MAX_SESSIONS)
		sess_wipe(&r->s[--r->ns]);
	memmove(&r->s[1], &r->s[0], r->ns * sizeof(r->s[0]));
	r->s[0] = *s;
	r->ns++;
	st_wipe(s, sizeof(*s));
}

/* Move session i to the front. */
static void to_front(struct st_ratchet *r, size_t i)
{
	struct sess t = r->s[i];

	memmove(&r->s[1], &r->s[0], i * sizeof(r->s[0]));
	r->s[0] = t;
	st_wipe(&t, sizeof(t));
}

int st_ratchet_initiate(struct st_ratchet *r, const struct st_identity *me,
                        const char *me_user, const struct st_bundle *b,
                        const unsigned char *ek_priv)
{
	unsigned char sk[32], peer[ST_ID_ENC_LEN], ad[ST_X3DH_AD_MAX];
	struct sess s;
	size_t adlen;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	st_identity_encode(&me->pub, s.ik);
	st_identity_encode(&b->id, peer);
	if (st_x3dh_ad(me_user, s.ik, b->user, peer, ad, &adlen) < 0 ||
	    st_x3dh_initiate(me, b, ek_priv, sk, s.ek) < 0 ||
	    st_dr_init_initiator(&s.dr, sk, b->spk, ad, adlen, &r->ks) < 0)
		goto out;
	s.initiator = s.pending = 1;
	s.spk_id = b->spk_id;
	s.has_opk = b->has_opk;
	s.opk_id = b->opk_id;
	push_front(r, &s);
	rc = 0;
out:
	st_wipe(sk, sizeof(sk));
	st_wipe(&s, sizeof(s));
	return rc;
}

int st_ratchet_encrypt(struct st_ratchet *r, const void *pt, size_t n,
                       struct st_envelope *env)
{
	struct sess *s = &r->s[0];

	memset(env, 0, sizeof(*env));
	if (!st_ratchet_has_session(r))
		return st_error(ST_EX_DATAERR, "no session to encrypt with");
	if (n > ST_ENVELOPE_MAX)
		return st_error(ST_EX_DATAERR, "message is too large");
	if (st_dr_encrypt(&s->dr, pt, n, env->hdr, &env->ct, &env->ctlen) < 0)
		return -1;
	if (s->pending) {
		env->has_x3dh = 1;
		memcpy(env->ik, s->ik, sizeof(env->ik));
		memcpy(env->ek, s->ek, 32);
		env->spk_id = s->spk_id;
		env->has_opk = s->has_opk;
		env->opk_id = s->opk_id;
	}
	return 0;
}

/* ---- decryption ---- */

static int in_session(struct sess *s, const struct st_envelope *e,
                      int64_t now, const struct st_dr_keysrc *ks,
                      unsigned char **pt, size_t *ptlen)
{
	if (st_dr_decrypt(&s->dr, e->hdr, e->ct, e->ctlen, now, ks, pt,
	                  ptlen) < 0)
		return -1;
	s->pending = 0;         /* a reply has arrived */
	return 0;
}

static int names(const struct sess *s, const struct st_envelope *e)
{
	return !s->initiator && s->spk_id == e->spk_id &&
	       memcmp(s->ek, e->ek, 32) == 0;
}

static void add_seen(struct st_ratchet *r, uint32_t spk,
                     const unsigned char ek[32], int64_t now)
{
	size_t o = 0;

	for (size_t i = 0; i < r->nseen; i++)
		if (now - r->seen[i].ts <= SEEN_TTL_MS)
			r->seen[o++] = r->seen[i];
	r->nseen = o;
	if (r->nseen == SEEN_MAX)
		memmove(r->seen, r->seen + 1, --r->nseen * sizeof(*r->seen));
	r->seen = st_realloc(r->seen, (r->nseen + 1) * sizeof(*r->seen));
	r->seen[r->nseen].spk = spk;
	memcpy(r->seen[r->nseen].ek, ek, 32);
	r->seen[r->nseen++].ts = now;
}

static const struct st_spk *find_spk(const struct st_prekey_set *pk,
                                     uint32_t id)
{
	for (size_t i = 0; pk && i < pk->nspk; i++)
		if (pk->spk[i].id == id)
			return &pk->spk[i];
	return NULL;
}

static const struct st_opk *find_opk(const struct st_prekey_set *pk,
                                     uint32_t id)
{
	for (size_t i = 0; pk && i < pk->nopk; i++)
		if (pk->opk[i].id == id)
			return &pk->opk[i];
	return NULL;
}

/* A first message from an unseen (spk, ek): X3DH as responder. */
static int start(struct st_ratchet *r, const struct st_identity *me,
                 const char *me_user, const char *peer_user,
                 const struct st_prekey_set *pk, const struct st_envelope *e,
                 int64_t now, unsigned char **pt, size_t *ptlen,
                 struct st_ratchet_info *info)
{
	const struct st_spk *spk = find_spk(pk, e->spk_id);
	const struct st_opk *opk = NULL;
	unsigned char sk[32], mine[ST_ID_ENC_LEN], ad[ST_X3DH_AD_MAX];
	struct sess s;
	size_t adlen;
	int rc = -1;

	if (!spk)
		return st_error(ST_EX_DATAERR, "message from %s uses unknown "
		                "signed prekey %u", peer_user, e->spk_id);
	if (e->has_opk && !(opk = find_opk(pk, e->opk_id)))
		return st_error(ST_EX_DATAERR, "message from %s uses unknown "
		                "one-time prekey %u", peer_user, e->opk_id);
	memset(&s, 0, sizeof(s));
	st_identity_encode(&me->pub, mine);
	if (st_x3dh_ad(peer_user, e->ik, me_user, mine, ad, &adlen) < 0 ||
	    st_x3dh_respond_keys(me, spk, opk, e->ik + 33, e->ek, sk) < 0 ||
	    st_dr_init_responder(&s.dr, sk, spk->priv, ad, adlen) < 0)
		goto out;
	memcpy(s.ik, e->ik, sizeof(s.ik));
	memcpy(s.ek, e->ek, 32);
	s.spk_id = e->spk_id;
	s.has_opk = e->has_opk;
	s.opk_id = e->opk_id;
	if (in_session(&s, e, now, &r->ks, pt, ptlen) < 0)
		goto out;
	push_front(r, &s);
	add_seen(r, e->spk_id, e->ek, now);
	info->new_session = 1;
	info->opk_used = e->has_opk;
	info->opk_id = e->opk_id;
	rc = 0;
out:
	st_wipe(sk, sizeof(sk));
	sess_wipe(&s);
	return rc;
}

/* Try session i of r (a copy): on success it becomes current. */
static int try_one(struct st_ratchet *r, size_t i, const struct st_envelope *e,
                   int64_t now, unsigned char **pt, size_t *ptlen,
                   struct st_ratchet_info *info)
{
	struct sess t;

	/* on a copy of its own, so a failed trial leaves session i intact */
	sess_copy(&t, &r->s[i]);
	if (in_session(&t, e, now, &r->ks, pt, ptlen) < 0) {
		sess_wipe(&t);
		return -1;
	}
	sess_wipe(&r->s[i]);
	r->s[i] = t;
	st_wipe(&t, sizeof(t));
	if (i > 0) {
		to_front(r, i);
		info->switched = 1;
	}
	return 0;
}

static int x3dh_message(struct st_ratchet *c, const struct st_identity *me,
                        const char *me_user,
                        const struct st_identity_pub *peer,
                        const char *peer_user,
                        const struct st_prekey_set *pk,
                        const struct st_envelope *e, int64_t now,
                        unsigned char **pt, size_t *ptlen,
                        struct st_ratchet_info *info)
{
	unsigned char enc[ST_ID_ENC_LEN];

	st_identity_encode(peer, enc);
	if (memcmp(enc, e->ik, sizeof(enc)) != 0)
		return st_error(ST_EX_IDENTITY, "message from %s names an "
		                "identity key that is not its pinned one",
		                peer_user);
	for (size_t i = 0; i < c->ns; i++) {
		if (!names(&c->s[i], e))
			continue;
		if (c->s[i].has_opk != e->has_opk ||
		    (e->has_opk && c->s[i].opk_id != e->opk_id))
			return st_error(ST_EX_DATAERR, "message from %s: x3dh "
			                "header does not match its session",
			                peer_user);
		return try_one(c, i, e, now, pt, ptlen, info);
	}
	for (size_t i = 0; i < c->nseen; i++)
		if (c->seen[i].spk == e->spk_id &&
		    memcmp(c->seen[i].ek, e->ek, 32) == 0)
			return st_error(ST_EX_DATAERR, "message from %s "
			                "replays the start of a session no "
			                "longer kept", peer_user);
	return start(c, me, me_user, peer_user, pk, e, now, pt, ptlen, info);
}

static int plain_message(struct st_ratchet *c, const char *peer_user,
                         const struct st_envelope *e, int64_t now,
                         unsigned char **pt, size_t *ptlen,
                         struct st_ratchet_info *info)
{
	char first[256] = "";
	int code = ST_EX_DATAERR;

	if (c->ns == 0)
		return st_error(ST_EX_DATAERR, "no session with %s", peer_user);
	for (size_t i = 0; i < c->ns; i++) {
		if (try_one(c, i, e, now, pt, ptlen, info) == 0)
			return 0;
		if (i == 0) {
			/* the current session's reason is the telling one */
			snprintf(first, sizeof(first), "%s", st_errmsg());
			code = st_errcode();
		}
	}
	return st_error(code, "cannot decrypt message from %s: %s", peer_user,
	                first);
}

int st_ratchet_decrypt(struct st_ratchet *r, const struct st_identity *me,
                       const char *me_user,
                       const struct st_identity_pub *peer,
                       const char *peer_user, const struct st_prekey_set *pk,
                       const struct st_envelope *env, int64_t now_ms,
                       unsigned char **pt, size_t *ptlen,
                       struct st_ratchet_info *info)
{
	struct st_ratchet_info dummy;
	int rc;

	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	*pt = NULL;
	*ptlen = 0;
	/*
	 * No copy of all of r: every trial runs on a copy of one session
	 * (try_one) or on a new one (start), and r changes only once that
	 * has succeeded, by steps that cannot fail.
	 */
	if (env->has_x3dh)
		rc = x3dh_message(r, me, me_user, peer, peer_user, pk, env,
		                  now_ms, pt, ptlen, info);
	else
		rc = plain_message(r, peer_user, env, now_ms, pt, ptlen, info);
	if (rc < 0) {
		memset(info, 0, sizeof(*info));
		return -1;
	}
	return 0;
}

/* ---- JSON (format at the top of this file) ---- */

static struct st_json *sess_to_json(const struct sess *s)
{
	struct st_json *o = st_json_object(), *x = st_json_object();

	st_json_set_str(o, "role", s->initiator ? "initiator" : "responder");
	st_json_set_bool(o, "pending", s->pending);
	st_json_set_b64(x, "ik", s->ik, sizeof(s->ik));
	st_json_set_b64(x, "ek", s->ek, 32);
	st_json_set_int(x, "spk", s->spk_id);
	if (s->has_opk)
		st_json_set_int(x, "opk", s->opk_id);
	else
		st_json_set_null(x, "opk");
	st_json_set(o, "x3dh", x);
	st_dr_to_json(&s->dr, o);
	return o;
}

struct st_json *st_ratchet_to_json(const struct st_ratchet *r)
{
	struct st_json *o = st_json_object(), *a = st_json_array(), *e;

	st_json_set_int(o, "v", 1);
	st_json_set(o, "sessions", a);
	for (size_t i = 0; i < r->ns; i++)
		st_json_array_append(a, sess_to_json(&r->s[i]));
	st_json_set(o, "seen", a = st_json_array());
	for (size_t i = 0; i < r->nseen; i++) {
		e = st_json_object();
		st_json_set_int(e, "spk", r->seen[i].spk);
		st_json_set_b64(e, "ek", r->seen[i].ek, 32);
		st_json_set_int(e, "ts", r->seen[i].ts);
		st_json_array_append(a, e);
	}
	return o;
}

static int get_id(const struct st_json *o, const char *key, uint32_t *v)
{
	int64_t i;

	if (st_json_get_int(o, key, 0, UINT32_MAX, &i) < 0)
		return -1;
	*v = (uint32_t)i;
	return 0;
}

static int sess_from_json(const struct st_json *o, struct sess *s)
{
	struct st_json *x, *opk;
	const char *role;

	if (!st_json_is_object(o))
		return st_error(ST_EX_DATAERR, "session is not an object");
	if (st_json_get_str(o, "role", &role, NULL) < 0 ||
	    st_json_get_bool(o, "pending", &s->pending) < 0 ||
	    st_json_get_obj(o, "x3dh", &x) < 0 ||
	    st_json_get_b64(x, "ik", s->ik, sizeof(s->ik)) < 0 ||
	    st_json_get_b64(x, "ek", s->ek, 32) < 0 ||
	    get_id(x, "spk", &s->spk_id) < 0)
		return -1;
	if (strcmp(role, "initiator") && strcmp(role, "responder"))
		return st_error(ST_EX_DATAERR, "bad session role");
	s->initiator = role[0] == 'i';
	if (!(opk = st_json_get(x, "opk")))
		return st_error(ST_EX_DATAERR, "missing field 'opk'");
	if (!json_is_null(J(opk))) {
		if (get_id(x, "opk", &s->opk_id) < 0)
			return -1;
		s->has_opk = 1;
	}
	return st_dr_from_json(o, &s->dr);
}

static int seen_from_json(const struct st_json *a, struct st_ratchet *r)
{
	size_t n = st_json_array_size(a);

	if (n > SEEN_MAX)
		return st_error(ST_EX_DATAERR, "too many seen sessions");
	r->seen = st_calloc(n, sizeof(*r->seen));
	for (size_t i = 0; i < n; i++) {
		const struct st_json *e = st_json_array_get(a, i);

		if (get_id(e, "spk", &r->seen[i].spk) < 0 ||
		    st_json_get_b64(e, "ek", r->seen[i].ek, 32) < 0 ||
		    st_json_get_int(e, "ts", INT64_MIN, INT64_MAX,
		                    &r->seen[i].ts) < 0)
			return -1;
		r->nseen++;
	}
	return 0;
}

static int ratchet_from_json(const struct st_json *j, struct st_ratchet *r)
{
	struct st_json *a;
	int64_t v;
	size_t n;

	if (!st_json_is_object(j))
		return st_error(ST_EX_DATAERR, "not an object");
	if (st_json_get_int(j, "v", 1, 1, &v) < 0 ||
	    st_json_get_arr(j, "sessions", &a) < 0)
		return -1;
	if ((n = st_json_array_size(a)) > ST_DR_MAX_SESSIONS)
		return st_error(ST_EX_DATAERR, "too many sessions");
	for (size_t i = 0; i < n; i++) {
		if (sess_from_json(st_json_array_get(a, i), &r->s[i]) < 0) {
			sess_wipe(&r->s[i]);
			return -1;
		}
		r->ns++;
	}
	if (st_json_get_arr(j, "seen", &a) < 0)
		return -1;
	return seen_from_json(a, r);
}

struct st_ratchet *st_ratchet_from_json(const struct st_json *j)
{
	struct st_ratchet *r = st_ratchet_new();

	if (ratchet_from_json(j, r) < 0) {
		st_error_ctx("bad ratchet state");
		st_ratchet_free(r);
		return NULL;
	}
	return r;
}
