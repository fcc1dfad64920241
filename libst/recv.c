/*
 * recv.c - st-recv's work: fetch, decrypt, store, commit, print, hook,
 * acknowledge (SPEC §4 "State discipline" and "Trust").  Storing is in
 * recvstore.c, printing and hooks in hook.c, the journal in inbox.c.
 *
 * One round (st_recv_poll) fetches a page without the home lock (a long
 * poll may wait a minute, and st-send must not), then handles the page
 * under the lock, message by message:
 *
 *   dedupe: a relay id the journal (inbox.c) marks done is acknowledged
 *     silently; an envelope whose hash a done record carries is a replay
 *     and is never decrypted again; a message id already stored from the
 *     same sender only advances the state;
 *   decrypt on a copy with the sender's pinned identity (an unknown
 *     sender is looked up in the directory and pinned on first use);
 *   journal P naming the vault ids about to be used, attachments and the
 *     message into the vault, ratchet (and prekeys) commit, journal D.
 *
 * Then, with the lock released, each new message goes to the printer and
 * the --exec hook, and the relay is acknowledged for everything handled
 * whose hook (if any) succeeded.  A crash anywhere leaves either nothing
 * (the message comes again and is handled afresh), or a P record whose
 * items are checked on the rerun: stored means finish it (commit, D,
 * ack) without storing again; a decryption that no longer works means the
 * state was committed.  No message key stays usable past its message.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recv.h"

/* Tests kill the process at a named step (ST_TEST_CRASH=step) to prove
 * that a rerun finishes what a crash interrupted. */
void recv_crash_point(const char *step)
{
	const char *e = getenv("ST_TEST_CRASH");

	if (e && !strcmp(e, step))
		raise(SIGKILL);
}

void recv_note(struct st_recv *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->note)
		c->note(c->ctx, buf);
}

struct st_recv *st_recv_new(struct st_relay *r, const struct st_identity *me,
                            const char *user, const struct st_recv_opts *o,
                            st_recv_print_fn print, st_recv_note_fn nfn,
                            void *ctx)
{
	struct st_recv *c = st_calloc(1, sizeof(*c));

	c->r = r;
	c->me = me;
	c->user = user;
	c->o = *o;
	c->print = print;
	c->note = nfn;
	c->ctx = ctx;
	return c;
}

void st_recv_free(struct st_recv *c)
{
	if (!c)
		return;
	st_vault_close(c->vault);
	free(c->held);
	free(c);
}

void recv_ack(struct batch *b, const char *relay)
{
	b->acks = st_realloc(b->acks, (b->nacks + 1) * sizeof(*b->acks));
	snprintf(b->acks[b->nacks++], sizeof(*b->acks), "%s", relay);
}

static int is_held(struct st_recv *c, const char *relay)
{
	int64_t now = st_now_ms();

	for (size_t i = 0; i < c->nheld; i++)
		if (!strcmp(c->held[i].relay, relay) && now < c->held[i].until)
			return 1;
	return 0;
}

void recv_hold(struct st_recv *c, const char *relay)
{
	c->held = st_realloc(c->held, (c->nheld + 1) * sizeof(*c->held));
	snprintf(c->held[c->nheld].relay, sizeof(c->held->relay), "%s", relay);
	c->held[c->nheld++].until = st_now_ms() + HOLD_MS;
}

/* ---- state of a page ---- */

static struct st_ratchet *session(struct batch *b, const char *user)
{
	struct st_ratchet *r;

	for (size_t i = 0; i < b->nsess; i++)
		if (!strcmp(b->sess[i].user, user))
			return b->sess[i].r;
	if (!(r = st_session_load(user)))
		return NULL;
	b->sess = st_realloc(b->sess, (b->nsess + 1) * sizeof(*b->sess));
	snprintf(b->sess[b->nsess].user, sizeof(b->sess->user), "%s", user);
	b->sess[b->nsess++].r = r;
	return r;
}

static int prekeys(struct batch *b)
{
	if (b->pk_loaded)
		return 0;
	if (st_prekeys_load(&b->pk) < 0)
		return -1;
	b->pk_loaded = 1;
	return 0;
}

/* Commit the ratchet state, then retire a one-time prekey it used: in
 * that order, so a crash between cannot leave a message undecryptable. */
static int commit(struct batch *b, const char *from, struct st_ratchet *r,
                  const struct st_envelope *env, int opk_used)
{
	if (st_session_save(from, r) < 0)
		return -1;
	if (!env->has_x3dh || !env->has_opk || !opk_used)
		return 0;
	if (prekeys(b) < 0)
		return -1;
	if (st_prekeys_use_opk(&b->pk, env->opk_id) < 0) {
		st_error_clear();
		return 0;
	}
	return st_prekeys_save(&b->pk);
}

/* The sender's pin; a sender seen for the first time is looked up. */
static int sender(struct st_recv *c, const char *from, struct st_peer *p)
{
	struct st_json *reply = NULL, *o;
	struct st_identity_pub served;
	char path[64];
	long status;
	int rc;

	if (st_peer_load(from, p) == 0)
		return 0;
	if (st_errcode() != ST_EX_NOINPUT)
		return -1;
	snprintf(path, sizeof(path), "/v1/users/%s", from);
	rc = st_relay_call(c->r, "GET", path, NULL, 0, &status, &reply, NULL);
	if (rc < 0 && status == 404)
		rc = st_error(ST_EX_NO, "sender %s is not in the directory",
		              from);
	else if (rc == 0 && (st_json_get_obj(reply, "identity", &o) < 0 ||
	                     st_identity_from_json(o, &served) < 0))
		rc = st_error(ST_EX_DATAERR, "relay %s: bad identity for %s",
		              st_relay_base(c->r), from);
	st_json_free(reply);
	if (rc < 0)
		return -1;
	return st_peer_check(from, &served, st_now_ms(), &c->me->pub, c->user,
	                     p, NULL);
}

/* ---- storing ---- */

static void envelope_hash(const struct st_envelope *e, char out[33])
{
	struct st_buf b;
	unsigned char h[32];

	st_buf_init(&b, 0);
	st_buf_append(&b, e->hdr, sizeof(e->hdr));
	st_buf_append(&b, e->ct, e->ctlen);
	st_sha256(b.data, b.len, h);
	st_buf_free(&b);
	st_hex_encode(h, 16, out);
}

struct job *recv_new_job(struct batch *b, const char *relay,
                           const char *from, int64_t rts)
{
	struct job *j;

	b->jobs = st_realloc(b->jobs, (b->njobs + 1) * sizeof(*b->jobs));
	j = &b->jobs[b->njobs++];
	memset(j, 0, sizeof(*j));
	snprintf(j->relay, sizeof(j->relay), "%s", relay);
	snprintf(j->from, sizeof(j->from), "%s", from);
	j->relay_ts = rts;
	return j;
}

void recv_free_job(struct job *j)
{
	st_msg_free(&j->m);
	for (size_t i = 0; i < j->nstrs; i++)
		free(j->strs[i]);
	free(j->strs);
	free(j->files);
}

/* A message whose hook failed earlier: run it again from the vault. */
/* One message of a page, under the lock. */
static int handle(struct st_recv *c, struct batch *b, const char *relay,
                  const char *from, int64_t rts, const struct st_json *envj)
{
	const struct st_inbox_rec *rec = st_inbox_find(b->log, relay), *dup;
	struct st_prekey_set set, *pks = NULL;
	struct st_ratchet_info info;
	struct st_envelope env;
	struct st_ratchet *sess;
	struct st_peer pin;
	unsigned char *pt = NULL;
	size_t ptlen = 0;
	char hash[33], why[512];
	struct job *j;
	int rc, stored, undec;

	if (rec && rec->done) {
		if (c->o.exec && rec->hook_failed && !rec->hook_done)
			return recv_rerun_job(c, b, rec, rts);
		recv_ack(b, relay);
		b->st->duplicates++;
		return 0;
	}
	if (st_envelope_parse(envj, &env) < 0)
		return recv_undecryptable(c, b, relay, from, rts, envj, NULL,
		                     st_errmsg());
	envelope_hash(&env, hash);
	if (!rec && (dup = st_inbox_find_hash(b->log, hash))) {
		st_envelope_free(&env);
		recv_note(c, "message %s from %s replays message %s; dropped", relay,
		     from, dup->relay);
		b->st->duplicates++;
		recv_ack(b, relay);
		return st_inbox_mark(b->log, relay, 'D');
	}
	if (sender(c, from, &pin) < 0) {
		st_envelope_free(&env);
		if (st_errcode() == ST_EX_IDENTITY) {
			b->st->identity++;
			b->pending++;
			recv_note(c, "message %s left on the relay: %s", relay,
			     st_errmsg());
			return 0;
		}
		if (st_errcode() == ST_EX_NO || st_errcode() == ST_EX_DATAERR) {
			snprintf(why, sizeof(why), "%s", st_errmsg());
			return recv_undecryptable(c, b, relay, from, rts, envj, hash,
			                     why);
		}
		return -1;
	}
	if (!(sess = session(b, from)) ||
	    (env.has_x3dh && prekeys(b) < 0)) {
		st_envelope_free(&env);
		return -1;
	}
	if (env.has_x3dh) {
		st_prekeys_set(&b->pk, &set);
		pks = &set;
	}
	rc = st_ratchet_decrypt(sess, c->me, c->user, &pin.id, from, pks, &env,
	                        st_now_ms(), &pt, &ptlen, &info);
	if (rc < 0)
		snprintf(why, sizeof(why), "%s", st_errmsg());
	if (rc < 0 && st_errcode() == ST_EX_IDENTITY) {
		st_envelope_free(&env);
		b->st->identity++;
		b->pending++;
		recv_note(c, "message %s left on the relay: %s; compare safety "
		     "numbers with %s, then run 'st-users trust %s'", relay, why,
		     from, from);
		return 0;
	}
	/* resuming after a crash: stored already, or the state moved on */
	stored = rec && c->vault && st_vault_has(c->vault, rec->item);
	undec = rec && !strcmp(rec->msgid, "-");
	if (rec && undec && !stored && rc < 0) {
		st_envelope_free(&env);
		return recv_undecryptable(c, b, relay, from, rts, envj, hash, why);
	}
	if (rec && (stored || rc < 0)) {
		/* a one-time prekey goes only once its message had decrypted */
		rc = rc == 0 ? commit(b, from, sess, &env, info.opk_used)
		     : commit(b, from, sess, &env, !undec);
		st_free_secret(pt, ptlen);
		st_envelope_free(&env);
		if (rc < 0 || st_inbox_mark(b->log, relay, 'D') < 0)
			return -1;
		recv_ack(b, relay);
		b->st->duplicates++;
		return 0;
	}
	if (rc < 0) {
		st_envelope_free(&env);
		return recv_undecryptable(c, b, relay, from, rts, envj, hash, why);
	}
	j = recv_new_job(b, relay, from, rts);
	if (st_msg_decode(pt, ptlen, &j->m) < 0) {
		/* authentic but malformed: the key is spent all the same */
		snprintf(why, sizeof(why), "%s", st_errmsg());
		st_free_secret(pt, ptlen);
		b->njobs--;
		rc = commit(b, from, sess, &env, info.opk_used);
		if (rc == 0)
			rc = recv_undecryptable(c, b, relay, from, rts, envj, hash, why);
		st_envelope_free(&env);
		return rc;
	}
	st_free_secret(pt, ptlen);
	if ((dup = st_inbox_find_msg(b->log, from, j->m.id))) {
		recv_free_job(j);
		b->njobs--;
		rc = commit(b, from, sess, &env, info.opk_used);
		st_envelope_free(&env);
		if (rc < 0 || st_inbox_mark(b->log, relay, 'D') < 0)
			return -1;
		recv_ack(b, relay);
		b->st->duplicates++;
		return 0;
	}
	if (recv_store(c, b, j, rec, hash) < 0 ||
	    (recv_crash_point("recv-stored"), 0) ||
	    commit(b, from, sess, &env, info.opk_used) < 0 ||
	    (recv_crash_point("recv-committed"), 0) ||
	    st_inbox_mark(b->log, relay, 'D') < 0) {
		recv_free_job(j);
		b->njobs--;
		st_envelope_free(&env);
		return -1;
	}
	st_envelope_free(&env);
	b->handled++;
	b->st->delivered++;
	return 0;
}

/* ---- a round ---- */

static int fetch(struct st_recv *c, int wait, int limit,
                 struct st_json **reply, struct st_json **msgs)
{
	char path[64];
	long status;

	snprintf(path, sizeof(path), "/v1/messages?wait=%d&limit=%d", wait,
	         limit);
	if (st_relay_call(c->r, "GET", path, NULL, 0, &status, reply,
	                  NULL) < 0)
		return -1;
	if (!*reply || st_json_get_arr(*reply, "messages", msgs) < 0) {
		st_json_free(*reply);
		*reply = NULL;
		return st_error(ST_EX_UNAVAILABLE, "relay %s: bad GET "
		                "/v1/messages reply", st_relay_base(c->r));
	}
	return 0;
}

static int send_acks(struct st_recv *c, struct batch *b)
{
	for (size_t i = 0; i < b->nacks; i += ACK_MAX) {
		struct st_json *body = st_json_object(), *ids = st_json_array(),
		               *reply = NULL;
		long status;
		int rc;

		st_json_set(body, "ids", ids);
		for (size_t k = i; k < b->nacks && k < i + ACK_MAX; k++)
			st_json_array_append(ids, st_json_str(b->acks[k]));
		rc = st_relay_call(c->r, "POST", "/v1/messages/ack", body, 0,
		                   &status, &reply, NULL);
		st_json_free(body);
		st_json_free(reply);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Lock, open the journal and the vault. */
static int begin(struct st_recv *c, struct batch *b, int lock_ms, int *lock)
{
	if ((*lock = st_home_lock(lock_ms)) < 0)
		return -1;
	if (!c->o.no_vault && !c->vault && !(c->vault = st_vault_open(1)))
		goto fail;
	if (!(b->log = st_inbox_open()))
		goto fail;
	return 0;
fail:
	st_unlock(*lock);
	*lock = -1;
	return -1;
}

static void end(struct batch *b, int lock)
{
	st_inbox_close(b->log);
	b->log = NULL;
	for (size_t i = 0; i < b->nsess; i++)
		st_ratchet_free(b->sess[i].r);
	free(b->sess);
	b->sess = NULL;
	b->nsess = 0;
	if (b->pk_loaded)
		st_prekeys_free(&b->pk);
	b->pk_loaded = 0;
	if (lock >= 0)
		st_unlock(lock);
}

static int handle_page(struct st_recv *c, struct batch *b,
                       const struct st_json *msgs)
{
	for (size_t i = 0; i < st_json_array_size(msgs); i++) {
		const struct st_json *o = st_json_array_get(msgs, i);
		struct st_json *envj;
		const char *relay, *from;
		size_t rlen, flen;
		int64_t ts = 0;

		if (!st_json_is_object(o) ||
		    st_json_get_str(o, "id", &relay, &rlen) < 0 ||
		    st_json_get_str(o, "from", &from, &flen) < 0 ||
		    st_json_get_int(o, "ts", 0, INT64_MAX, &ts) < 0 ||
		    st_json_get_obj(o, "envelope", &envj) < 0 || rlen > 31 ||
		    !st_blob_id_ok(relay) || !st_user_ok(from, flen))
			return st_error(ST_EX_UNAVAILABLE, "relay %s: malformed "
			                "message in GET /v1/messages reply",
			                st_relay_base(c->r));
		if ((c->o.from && strcmp(from, c->o.from)) ||
		    is_held(c, relay)) {
			b->pending++;
			continue;
		}
		if (handle(c, b, relay, from, ts, envj) < 0)
			return -1;
	}
	return 0;
}

int st_recv_poll(struct st_recv *c, int wait, int limit, int lock_ms,
                 size_t *handled, size_t *pending, struct st_recv_stats *st)
{
	struct st_json *reply = NULL, *msgs;
	struct batch b;
	int lock = -1, rc, *ok = NULL;

	*handled = *pending = 0;
	memset(&b, 0, sizeof(b));
	b.st = st;
	if (fetch(c, wait, limit, &reply, &msgs) < 0)
		return -1;
	if (st_json_array_size(msgs) == 0) {
		st_json_free(reply);
		return 0;
	}
	if (begin(c, &b, lock_ms, &lock) < 0) {
		st_json_free(reply);
		return -1;
	}
	rc = handle_page(c, &b, msgs);
	end(&b, lock);
	st_json_free(reply);
	/* the lock is free while we print and hooks run: a hook may st-send */
	recv_crash_point("recv-done");
	if (b.njobs) {
		ok = st_calloc(b.njobs, sizeof(*ok));
		recv_deliver(c, &b, ok);
	}
	recv_crash_point("recv-printed");
	if (c->o.exec && b.njobs) {
		int rc2 = begin(c, &b, lock_ms, &lock);

		for (size_t i = 0; rc2 == 0 && i < b.njobs; i++)
			if (ok[i] >= 0)
				rc2 = st_inbox_mark(b.log, b.jobs[i].relay,
				                    ok[i] ? 'H' : 'X');
		if (lock >= 0)
			end(&b, lock);
		if (rc2 < 0 && rc == 0)
			rc = -1;
	}
	for (size_t i = 0; i < b.njobs; i++) {
		if (ok[i] == 1)
			recv_ack(&b, b.jobs[i].relay);
		if (ok[i] < 0 && rc == 0)
			rc = -1;        /* the printer failed: stdout is gone */
	}
	if (b.nacks) {
		/* keep the first error; an ack lost is a redelivery, no more */
		char saved[1024];
		int code = st_errcode();

		snprintf(saved, sizeof(saved), "%s", st_errmsg());
		if (send_acks(c, &b) < 0 && rc == 0)
			rc = -1;
		else if (rc < 0)
			st_error(code, "%s", saved);
	}
	*handled = b.handled;
	*pending = b.pending;
	for (size_t i = 0; i < b.njobs; i++)
		recv_free_job(&b.jobs[i]);
	free(b.jobs);
	free(b.acks);
	free(ok);
	return rc;
}
