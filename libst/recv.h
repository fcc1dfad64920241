/*
 * recv.h - shared only by st-recv's files in libst: recv.c (rounds, the
 * per-message state machine), recvstore.c (the vault and -o DIR) and
 * hook.c (--exec).  See recv.c for the order of the steps.
 */
#ifndef ST_RECV_H
#define ST_RECV_H

#include "st.h"

#define ACK_MAX 1000
#define FILES_MAX 64
#define HOLD_MS 60000                   /* a failed hook is retried after */

struct held {
	char relay[32];
	int64_t until;
};

struct st_recv {
	struct st_relay *r;
	const struct st_identity *me;
	const char *user;
	struct st_recv_opts o;
	st_recv_print_fn print;
	st_recv_note_fn note;
	void *ctx;
	struct st_vault *vault;
	struct held *held;
	size_t nheld;
};

/* What a page turned into: deliveries for after the lock, and acks. */
struct job {
	char relay[32];
	char from[ST_USER_MAX + 1];
	int64_t relay_ts;
	struct st_msg m;
	char item[ST_VAULT_ID_LEN + 1];
	struct st_recv_file *files;
	char **strs;                    /* owned strings of files */
	size_t nstrs;
	int rerun;                      /* hook only, from the vault */
};

struct sess {
	char user[ST_USER_MAX + 1];
	struct st_ratchet *r;
};

struct batch {
	struct st_inbox *log;
	struct st_prekeys pk;
	int pk_loaded;
	struct sess *sess;
	size_t nsess;
	struct job *jobs;
	size_t njobs;
	char (*acks)[32];
	size_t nacks;
	size_t handled, pending;
	struct st_recv_stats *st;
};

/* recv.c */
void recv_crash_point(const char *step);
void recv_note(struct st_recv *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void recv_ack(struct batch *b, const char *relay);
void recv_hold(struct st_recv *c, const char *relay);
struct job *recv_new_job(struct batch *b, const char *relay,
                         const char *from, int64_t rts);
void recv_free_job(struct job *j);

/* recvstore.c */
/* A string owned by the job (freed with it). */
char *recv_own(struct job *j, const char *s);
/* Keep an envelope that cannot be decrypted, acknowledge, report. */
int recv_undecryptable(struct st_recv *c, struct batch *b,
                       const char *relay, const char *from, int64_t rts,
                       const struct st_json *envj, const char *hash,
                       const char *why);
/* Journal P, attachments, then the message into the vault. */
int recv_store(struct st_recv *c, struct batch *b, struct job *j,
               const struct st_inbox_rec *old, const char *hash);

/* hook.c */
/* A message whose hook failed earlier: queue the hook again. */
int recv_rerun_job(struct st_recv *c, struct batch *b,
                   const struct st_inbox_rec *rec, int64_t rts);
/* Print each new message and run its hook; hooks_ok[i] 1 ok, 0 failed,
 * -1 printing failed. */
void recv_deliver(struct st_recv *c, struct batch *b, int *hooks_ok);

#endif
