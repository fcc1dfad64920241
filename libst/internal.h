/* internal.h - declarations shared only inside libst. */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include "st.h"

/* Jansson's json_t behind the opaque struct st_json. */
#define J(x) ((json_t *)(x))
#define SJ(x) ((struct st_json *)(x))

/* crypto.c: register the digests X.509 verification looks up by name
 * (skipped at start-up); relay.c calls it before any TLS handshake. */
void st_crypto_tls_digests(void);

/* keys.c: 0 when every member of object o is one of the NULL-terminated
 * keys; otherwise -1 with ST_EX_DATAERR naming the first stranger. */
int st_json_only(const struct st_json *o, const char *const *keys);

/*
 * ratchet.c: one Double Ratchet session (SPEC §4).  session.c keeps up to
 * ST_DR_MAX_SESSIONS of them per peer and works on copies, so these
 * functions may leave a session half-advanced when they fail.
 */
struct st_dr_skipped {
	unsigned char dh[32];
	uint32_t n;
	unsigned char mk[32];
	int64_t ts;                     /* when stored, Unix ms */
};
struct st_dr {
	unsigned char rk[32];
	unsigned char dhs[32], dhs_pub[32];
	unsigned char dhr[32], cks[32], ckr[32];
	int has_dhr, has_cks, has_ckr;
	uint32_t ns, nr, pn;
	unsigned char ad[ST_X3DH_AD_MAX];
	size_t adlen;
	struct st_dr_skipped *skipped;  /* oldest first */
	size_t nskipped;
};
/* Where new ratchet secrets come from: fn, or RAND_bytes when fn is NULL. */
struct st_dr_keysrc {
	int (*fn)(void *ctx, unsigned char priv[32]);
	void *ctx;
};
int st_dr_init_initiator(struct st_dr *s, const unsigned char sk[32],
                         const unsigned char spk_pub[32],
                         const unsigned char *ad, size_t adlen,
                         const struct st_dr_keysrc *ks);
int st_dr_init_responder(struct st_dr *s, const unsigned char sk[32],
                         const unsigned char spk_priv[32],
                         const unsigned char *ad, size_t adlen);
/* *ct (n + 16 bytes) is malloc'd. */
int st_dr_encrypt(struct st_dr *s, const void *pt, size_t n,
                  unsigned char hdr[ST_DR_HEADER_LEN], unsigned char **ct,
                  size_t *ctlen);
/* *pt is malloc'd; free with st_free_secret(). */
int st_dr_decrypt(struct st_dr *s, const unsigned char hdr[ST_DR_HEADER_LEN],
                  const unsigned char *ct, size_t ctlen, int64_t now_ms,
                  const struct st_dr_keysrc *ks, unsigned char **pt,
                  size_t *ptlen);
void st_dr_copy(struct st_dr *dst, const struct st_dr *src);
void st_dr_wipe(struct st_dr *s);
/* Add the session's fields to object o; parse them back (checked). */
void st_dr_to_json(const struct st_dr *s, struct st_json *o);
int st_dr_from_json(const struct st_json *o, struct st_dr *s);

/* ---- bech32.c: BIP-173 Bech32 for age keys ---- */

/* Longest string handled (age drops BIP-173's limit of 90). */
#define ST_BECH32_MAX 1024
/*
 * Encode n bytes under hrp (all upper-case output when hrp is upper-case)
 * into out (cap bytes, NUL-terminated).  Returns the length, 0 if too long.
 */
size_t st_bech32_encode(const char *hrp, const unsigned char *data, size_t n,
                        char *out, size_t cap);
/*
 * Decode s: hrp gets the prefix in its original case (hrpcap bytes with the
 * NUL), data at most cap bytes, *n their count.  Mixed case, a bad checksum
 * or non-zero padding: ST_EX_DATAERR.
 */
int st_bech32_decode(const char *s, char *hrp, size_t hrpcap,
                     unsigned char *data, size_t cap, size_t *n);

/* ---- age.c, agehdr.c: what the age modules share ---- */

#define ST_AGE_MAGIC "age-encryption.org/"
/* Record why an age operation failed (st_age_last_fail()); returns -1. */
int st_age_fail_as(enum st_age_fail f);
/* st_error(ST_EX_DATAERR, "invalid age header: ...") as a header failure. */
int st_age_hdr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Append a complete header for file key fk and the recipients to b: fresh
 * ephemeral keys or salts per stanza, and the MAC.  ST_EX_USAGE for bad
 * recipients (none, or a passphrase among others).
 */
int st_age_hdr_write(const unsigned char fk[16], const struct st_age_rcpt *r,
                     size_t nr, struct st_buf *b);
/*
 * The n header bytes at buf (ending with the MAC line): parse them
 * strictly, unwrap the file key into fk with the first identity that
 * opens a stanza, and check the MAC.  The failure class is recorded.
 */
int st_age_hdr_open(const char *buf, size_t n, const struct st_age_id *ids,
                    size_t nids, unsigned char fk[16]);

/* ---- armor.c: age's ASCII armor (PEM-like, strict) ---- */

#define ST_ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define ST_ARMOR_END "-----END AGE ENCRYPTED FILE-----"

/*
 * Armoring writer: st_armor_w_new() queues the begin line, st_armor_w_sink
 * (an st_sink_fn on the writer) encodes, st_armor_w_finish() writes the
 * last line and the end line and frees; st_armor_w_free() abandons.
 */
struct st_armor_w;
struct st_armor_w *st_armor_w_new(st_sink_fn sink, void *ctx);
int st_armor_w_sink(void *w, const void *p, size_t n);
int st_armor_w_finish(struct st_armor_w *w);
void st_armor_w_free(struct st_armor_w *w);

/*
 * Dearmoring reader over fd, line by line in constant memory.  pre holds
 * npre bytes already read from fd.  st_armor_r_read() gives up to cap
 * decoded bytes (*got 0 at the end) or -1 with ST_EX_DATAERR for a format
 * error, or ST_EX_NOINPUT when reading failed (st_armor_r_ioerr() says so).
 */
struct st_armor_r;
struct st_armor_r *st_armor_r_new(int fd, const void *pre, size_t npre);
int st_armor_r_read(struct st_armor_r *a, unsigned char *out, size_t cap,
                    size_t *got);
int st_armor_r_ioerr(const struct st_armor_r *a);
void st_armor_r_free(struct st_armor_r *a);

#endif
