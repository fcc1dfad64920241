/*
 * st.h - the one header safetalk commands include.
 *
 * Adding a command (the checklist):
 *   1. cmd/st-NAME.c: usage(), main(), a few statics; the work is calls here.
 *   2. Makefile: add st-NAME to CMDS.
 *   3. doc/st-NAME.1: mdoc man page with the shared EXIT STATUS table.
 *   4. tests/st-NAME.bats: BATS tests against the built command.
 *   5. doc/st.7: an entry in the overview.
 *
 * Conventions: functions return 0 (or a pointer) on success and -1 (or NULL)
 * on failure, after recording a message and an exit class with st_error().
 * Nothing here prints or exits.  No OpenSSL or Jansson types appear here.
 */
#ifndef ST_H
#define ST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>

#define ST_VERSION "0.1.0"

/* ---- err.c: error recording and the exit-code table (SPEC §2) ---- */

enum st_exit {
	ST_EX_OK = 0,
	ST_EX_NO = 1,           /* a clean "no" */
	ST_EX_USAGE = 64,       /* bad command line */
	ST_EX_DATAERR = 65,     /* malformed input, failed authentication */
	ST_EX_NOINPUT = 66,     /* a named input or local key is missing */
	ST_EX_IDENTITY = 67,    /* a peer's identity changed or is untrusted */
	ST_EX_UNAVAILABLE = 69, /* relay unreachable or 5xx */
	ST_EX_CANTCREAT = 73,   /* cannot write output or state */
	ST_EX_TEMPFAIL = 75,    /* retry later */
	ST_EX_NOPERM = 77,      /* not logged in, forbidden, bad password */
	ST_EX_CONFIG = 78,      /* missing or bad configuration */
};

/*
 * Record an error message and its exit class; always returns -1 so library
 * code can say `return st_error(...)`.  A format ending in ':' gets
 * ": strerror(errno)" appended.
 */
int st_error(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Like st_error() but prefixes the existing message: "ctx: old message". */
int st_error_ctx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last recorded message ("" when none) and exit class (1 when none). */
const char *st_errmsg(void);
int st_errcode(void);
/* Forget the last error. */
void st_error_clear(void);
/* The program name used by st_die()/st_warn() (set once from argv[0]). */
void st_setprogname(const char *argv0);
const char *st_progname(void);
/* Print "prog: message" to stderr and exit with code. */
void st_die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Print "prog: message" to stderr. */
void st_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- mem.c: checked allocation and secret buffers ---- */

/* Allocation that cannot fail: on exhaustion the process aborts with a
 * message (exit 73 is meaningless for OOM; we abort). */
void *st_malloc(size_t n);
void *st_calloc(size_t n, size_t size);
void *st_realloc(void *p, size_t n);
char *st_strdup(const char *s);
char *st_strndup(const char *s, size_t n);
/* Wipe n bytes at p (OPENSSL_cleanse). */
void st_wipe(void *p, size_t n);
/* Wipe the whole of a malloc'd block (all malloc_usable_size bytes). */
void st_wipe_block(void *p);
/* st_wipe_block(), then free(): the free function libst gives Jansson. */
void st_free_wiped(void *p);
/* Wipe then free a buffer of n bytes; a NULL p is fine. */
void st_free_secret(void *p, size_t n);
/* Wipe the string (strlen) then free; NULL is fine. */
void st_free_str_secret(char *s);
/* Constant-time comparison: 0 when equal. */
int st_memeq_ct(const void *a, const void *b, size_t n);

/*
 * A growable byte buffer.  When .secret is set, every reallocation and the
 * final free wipe the old storage.
 */
struct st_buf {
	unsigned char *data;
	size_t len, cap;
	int secret;
};
void st_buf_init(struct st_buf *b, int secret);
void st_buf_reserve(struct st_buf *b, size_t extra);
void st_buf_append(struct st_buf *b, const void *p, size_t n);
void st_buf_appendc(struct st_buf *b, unsigned char c);
void st_buf_appendf(struct st_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Keep data NUL-terminated after len (not counted) for string use. */
const char *st_buf_cstr(struct st_buf *b);
void st_buf_free(struct st_buf *b);

/* ---- io.c: files, atomic writes, locks ---- */

/*
 * Read all of fd into *out (caller frees with free() or st_free_secret()),
 * failing with ST_EX_DATAERR when more than max bytes arrive.  what names
 * the input in messages.
 */
int st_read_fd(int fd, size_t max, const char *what,
               unsigned char **out, size_t *outlen);
/* Read a whole file ("-" is stdin).  Missing file: ST_EX_NOINPUT. */
int st_read_file(const char *path, size_t max,
                 unsigned char **out, size_t *outlen);
/* Write all n bytes to fd, retrying on EINTR and short writes. */
int st_write_all(int fd, const void *p, size_t n);
/*
 * Replace path atomically with data: a temporary beside it opened
 * O_CREAT|O_EXCL|O_NOFOLLOW with mode, written, fsynced, renamed over path,
 * then the directory fsynced.  On failure path is untouched and no
 * temporary is left.  Error class ST_EX_CANTCREAT.
 */
int st_write_atomic(const char *path, const void *data, size_t n, int mode);

/*
 * Atomic writes of streamed data: st_atomic_open() creates the temporary
 * and returns its fd; st_atomic_commit() fsyncs, renames and fsyncs the
 * directory; st_atomic_abort() closes and unlinks.  Exactly one of commit
 * or abort must follow a successful open.
 */
struct st_atomic {
	int fd;
	char *path;
	char *tmp;
};
int st_atomic_open(struct st_atomic *a, const char *path, int mode);
int st_atomic_commit(struct st_atomic *a);
/* Commit without the fsyncs, removing an old target first: the file still
 * appears whole or not at all, but a crash may lose it (or the old one);
 * for outputs the user asked for, as age writes them. */
int st_atomic_commit_nosync(struct st_atomic *a);
void st_atomic_abort(struct st_atomic *a);
/* st_atomic_open() and write all of data: the temporary is not yet visible. */
int st_atomic_prepare(struct st_atomic *a, const char *path,
                      const void *data, size_t n, int mode);
/*
 * Commit two prepared files durably, second never visible before first
 * is (renamed and its directory synced): second's data is already on its
 * way to the disk while first commits (sync_file_range).
 * between (may be NULL) runs once first is committed.  Both are released.
 */
int st_atomic_commit_ordered(struct st_atomic *first, struct st_atomic *second,
                             void (*between)(void));

/* fsync the directory that contains path. */
int st_fsync_dir(const char *path);
/* mkdir -m mode if missing; an existing non-directory is an error. */
int st_mkdir(const char *path, int mode);
/*
 * Take an exclusive flock on path (created 0600 if missing), waiting at most
 * timeout_ms.  Returns the fd to pass to st_unlock(), or -1 with
 * ST_EX_TEMPFAIL when the lock stayed busy.
 */
int st_lock(const char *path, int timeout_ms);
void st_unlock(int fd);
/*
 * Flush and close stdout and check for errors (a full disk or closed pipe);
 * returns -1 with ST_EX_CANTCREAT on failure.  Call before exit.
 */
int st_close_stdout(void);
/* Join two path parts with one '/'; returns a malloc'd string. */
char *st_path_join(const char *dir, const char *name);
/*
 * A safe file name from a remote or user-given name: its last path
 * component with control characters, NUL and '/' dropped, at most 200
 * bytes, never "", "." or ".." (fallback is used then).  malloc'd.
 */
char *st_safe_basename(const char *name, size_t n, const char *fallback);

/* ---- b64.c: strict base64 ---- */

enum st_b64_variant {
	ST_B64_STD,        /* +/ with '=' padding */
	ST_B64_STD_RAW,    /* +/ without padding (age headers) */
	ST_B64_URL,        /* -_ with '=' padding */
	ST_B64_URL_RAW,    /* -_ without padding (the wire format) */
};
/* Encoded length (without NUL) of n bytes. */
size_t st_b64_enclen(size_t n, enum st_b64_variant v);
/* Encode n bytes to out (st_b64_enclen()+1 bytes, NUL-terminated). */
void st_b64_encode(const void *in, size_t n, char *out, enum st_b64_variant v);
/* Encode to a malloc'd NUL-terminated string. */
char *st_b64_encode_alloc(const void *in, size_t n, enum st_b64_variant v);
/*
 * Decode exactly inlen characters.  Strict: only the variant's alphabet,
 * no whitespace, padding only where the variant wants it and exactly right,
 * zero unused trailing bits (canonical).  out needs st_b64_declen(inlen)
 * bytes; *outlen receives the decoded length.  Failure: ST_EX_DATAERR.
 */
int st_b64_decode(const char *in, size_t inlen, unsigned char *out,
                  size_t *outlen, enum st_b64_variant v);
size_t st_b64_declen(size_t inlen);

/* ---- hex (b64.c) ---- */
void st_hex_encode(const void *in, size_t n, char *out); /* 2n+1 bytes */
/* Decode lowercase/uppercase hex of exactly 2*n chars into n bytes. */
int st_hex_decode(const char *in, unsigned char *out, size_t n);

/* ---- json.c: strict JSON on top of Jansson ---- */

/* An opaque JSON value (a Jansson json_t underneath). */
struct st_json;

#define ST_JSON_MAX_DEPTH 32

/*
 * Parse len bytes of JSON: rejects input over max bytes, nesting deeper than
 * ST_JSON_MAX_DEPTH (checked by a pre-scan before Jansson), duplicate keys,
 * invalid UTF-8 and \u0000.  The result is new; free with st_json_free().
 * what names the input in messages.  Failure: ST_EX_DATAERR.
 */
struct st_json *st_json_parse(const char *buf, size_t len, size_t max,
                              const char *what);
/*
 * st_json_parse(), except that Jansson reads the text with every value
 * string of minlen bytes or more of plain ASCII (0x20-0x7e but no quote or
 * backslash) emptied: such a string is valid wherever it stands, so the
 * verdict is the same, and Jansson's byte-at-a-time lexer is spared its
 * bytes.  Those strings are "" in the tree; the caller reads them from buf
 * with the raw views below.  Members' names are never emptied.
 */
struct st_json *st_json_parse_skim(const char *buf, size_t len, size_t max,
                                   const char *what, size_t minlen);
/* Depth pre-scan alone: 0 when no deeper than maxdepth. */
int st_json_depth_ok(const char *buf, size_t len, int maxdepth);
/*
 * Raw views of text that st_json_parse() accepted (valid, no duplicate
 * keys), so that a value can be kept as it was sent instead of being
 * encoded again; they find values, they do not check them.  p..e is the
 * whole text or a value inside it.
 *
 * st_json_raw_end: the end of the value at p (leading whitespace skipped);
 * sets *loose when the value holds whitespace outside its strings.
 * st_json_raw_get: where the value of member key of the object at p
 * starts: 1, 0 when there is none, -1 when a member's name before it holds
 * an escape (it might be key spelled otherwise) or p is not an object.
 * st_json_raw_items: where each of the n elements of the array at p
 * starts; -1 unless it has exactly n.
 */
const char *st_json_raw_end(const char *p, const char *e, int *loose);
int st_json_raw_get(const char *p, const char *e, const char *key,
                    const char **v);
int st_json_raw_items(const char *p, const char *e, const char **items,
                      size_t n);
void st_json_free(struct st_json *j);
/* Serialise compactly with sorted-as-inserted keys; malloc'd string. */
char *st_json_dump(const struct st_json *j);

struct st_json *st_json_object(void);
struct st_json *st_json_array(void);
int st_json_is_object(const struct st_json *j);
int st_json_is_array(const struct st_json *j);
size_t st_json_array_size(const struct st_json *a);
/* Borrowed element i of an array (NULL when out of range). */
struct st_json *st_json_array_get(const struct st_json *a, size_t i);
/* Append a new reference; steals v. */
void st_json_array_append(struct st_json *a, struct st_json *v);
/* Borrowed member of an object or NULL. */
struct st_json *st_json_get(const struct st_json *o, const char *key);

/* Setters steal nothing except st_json_set(), which steals v.  Strings
 * must be valid UTF-8 without NUL (not checked: callers build them). */
void st_json_set(struct st_json *o, const char *key, struct st_json *v);
void st_json_set_str(struct st_json *o, const char *key, const char *s);
void st_json_set_strn(struct st_json *o, const char *key, const char *s,
                      size_t n);
void st_json_set_int(struct st_json *o, const char *key, int64_t v);
void st_json_set_bool(struct st_json *o, const char *key, int v);
void st_json_set_null(struct st_json *o, const char *key);
/* Set key to unpadded base64url of n bytes. */
void st_json_set_b64(struct st_json *o, const char *key, const void *p,
                     size_t n);
struct st_json *st_json_str(const char *s);
struct st_json *st_json_int(int64_t v);

/*
 * Typed getters.  Each fails with ST_EX_DATAERR and a message naming the
 * field when it is missing or of the wrong type ("missing field 'user'",
 * "field 'spk' is not an integer").
 */
/* Borrowed string (valid while o lives); *len may be NULL. */
int st_json_get_str(const struct st_json *o, const char *key,
                    const char **s, size_t *len);
/* Integer within [min, max]; rejects reals and strings. */
int st_json_get_int(const struct st_json *o, const char *key,
                    int64_t min, int64_t max, int64_t *v);
int st_json_get_bool(const struct st_json *o, const char *key, int *v);
/* Unpadded base64url decoding to exactly n bytes. */
int st_json_get_b64(const struct st_json *o, const char *key,
                    unsigned char *out, size_t n);
/* Unpadded base64url of any length up to max; *out malloc'd. */
int st_json_get_b64_alloc(const struct st_json *o, const char *key,
                          size_t max, unsigned char **out, size_t *outlen);
/* Borrowed object / array member. */
int st_json_get_obj(const struct st_json *o, const char *key,
                    struct st_json **v);
int st_json_get_arr(const struct st_json *o, const char *key,
                    struct st_json **v);
/* Same for standalone values (array elements). */
int st_json_as_str(const struct st_json *v, const char **s, size_t *len);
int st_json_as_int(const struct st_json *v, int64_t min, int64_t max,
                   int64_t *out);

/* ---- crypto.c: OpenSSL 3 EVP wrappers ---- */

#define ST_X25519_LEN 32
#define ST_ED25519_PUB_LEN 32
#define ST_ED25519_SEED_LEN 32
#define ST_ED25519_SIG_LEN 64
#define ST_AEAD_KEY_LEN 32
#define ST_AEAD_NONCE_LEN 12
#define ST_AEAD_TAG_LEN 16
#define ST_SHA256_LEN 32
#define ST_SHA512_LEN 64

/* Fill p with n random bytes (RAND_bytes). */
int st_random(void *p, size_t n);
/* A fresh X25519 key pair (priv is the raw 32 bytes). */
int st_x25519_keygen(unsigned char priv[32], unsigned char pub[32]);
/* pub = X25519(priv, basepoint). */
int st_x25519_pub(const unsigned char priv[32], unsigned char pub[32]);
/* out = X25519(priv, peer); an all-zero result is an error (ST_EX_DATAERR). */
int st_x25519(const unsigned char priv[32], const unsigned char peer[32],
              unsigned char out[32]);
/*
 * Keep a long-lived X25519 secret (the vault key, an identity) imported, so
 * that st_x25519() and st_x25519_pub() with it skip OpenSSL's key import,
 * which costs a scalar multiplication of its own.  Up to 8 keys; the copies
 * are wiped by st_x25519_uncache() and at exit.  Single-threaded callers
 * only (the commands); never used for ephemeral keys.
 */
int st_x25519_cache(const unsigned char priv[32]);
void st_x25519_uncache(void);
/* A fresh Ed25519 key: the 32-byte seed and its public key. */
int st_ed25519_keygen(unsigned char seed[32], unsigned char pub[32]);
int st_ed25519_pub(const unsigned char seed[32], unsigned char pub[32]);
int st_ed25519_sign(const unsigned char seed[32], const void *msg, size_t n,
                    unsigned char sig[64]);
/* 0 when sig is valid; -1 (ST_EX_DATAERR "bad signature") otherwise. */
int st_ed25519_verify(const unsigned char pub[32], const void *msg, size_t n,
                      const unsigned char sig[64]);
/* HKDF-SHA256 extract-and-expand; salt may be NULL with saltlen 0. */
int st_hkdf_sha256(const void *ikm, size_t ikmlen, const void *salt,
                   size_t saltlen, const void *info, size_t infolen,
                   unsigned char *out, size_t outlen);
int st_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
                   unsigned char out[32]);
int st_sha256(const void *msg, size_t n, unsigned char out[32]);
int st_sha512(const void *msg, size_t n, unsigned char out[64]);
/*
 * ChaCha20-Poly1305 (RFC 8439).  seal writes n bytes of ciphertext followed
 * by the 16-byte tag to out (n + 16 bytes); open takes n >= 16 bytes of
 * ciphertext||tag and writes n - 16 bytes, failing with ST_EX_DATAERR when
 * authentication fails (out is then wiped).
 */
int st_aead_seal(const unsigned char key[32], const unsigned char nonce[12],
                 const void *ad, size_t adlen, const void *in, size_t n,
                 unsigned char *out);
int st_aead_open(const unsigned char key[32], const unsigned char nonce[12],
                 const void *ad, size_t adlen, const void *in, size_t n,
                 unsigned char *out);

/* ---- home.c: $ST_HOME and the config file ---- */

/*
 * The state directory: $ST_HOME, else $HOME/.safetalk.  Returns a static
 * string, or NULL (ST_EX_CONFIG) when neither is set.
 */
const char *st_home(void);
/* Create the home with mode 0700 if missing; checks it is a directory. */
int st_home_ensure(void);
/* Path of a file inside the home, malloc'd. */
char *st_home_path(const char *name);
/* The home's writer lock (home/lock), waiting timeout_ms; fd or -1. */
int st_home_lock(int timeout_ms);
/*
 * Remove the temporaries of atomic writes (NAME.tmp-XXXXXXXXXXXX) older
 * than a minute from the home's subdirectory sub ("" for the home itself):
 * what a writer killed between create and rename left.  st_home_lock()
 * sweeps the home, outbox/, ratchet/ and peers/ each time it is taken.
 */
void st_home_sweep(const char *sub);
/*
 * Load home/config (a JSON object; an empty object when the file is
 * missing).  Free with st_json_free().  Malformed: ST_EX_CONFIG.
 */
struct st_json *st_config_load(void);
/* Save the config atomically with mode 0600. */
int st_config_save(const struct st_json *cfg);

/* ---- tty.c: secrets from the terminal or a file, and safe output ---- */

/*
 * Read a secret: from the file named by file (a path, "-" for stdin, or
 * /dev/fd/N) when it is not NULL, taking its first line without LF or CRLF;
 * otherwise from /dev/tty with echo off after showing prompt on /dev/tty.
 * Result is malloc'd; free with st_free_str_secret().  No terminal and no
 * file: ST_EX_USAGE.
 */
char *st_read_secret(const char *file, const char *prompt);
/*
 * Escape text for a terminal: C0 controls, DEL, C1 controls (as UTF-8 or
 * raw bytes), bidi controls (U+202A-202E, U+2066-2069, U+200E-200F, U+061C)
 * and invalid UTF-8 become visible escapes (\n and \t are kept when
 * keep_nl is set).  Returns a malloc'd string.
 */
char *st_tty_escape(const char *s, size_t n, int keep_nl);
/* Write s to f, escaped when f is a terminal, raw otherwise. */
int st_tty_fputs(FILE *f, const char *s, size_t n);
/*
 * A sink for stdout-like streams that escapes (st_tty_escape) when f is a
 * terminal and writes raw otherwise.  A UTF-8 sequence split between two
 * writes is carried over; st_tty_sink_flush() emits what is left.
 */
struct st_tty_sink {
	FILE *f;
	int tty;
	unsigned char carry[4];
	size_t ncarry;
};
void st_tty_sink_init(struct st_tty_sink *t, FILE *f);
int st_sink_tty(void *ctx, const void *p, size_t n);
int st_tty_sink_flush(struct st_tty_sink *t);

/* ---- time.c: clocks and user-given times ---- */

/* Unix time in milliseconds. */
int64_t st_now_ms(void);
/*
 * Parse a time given by a user: Unix seconds, an ISO date "YYYY-MM-DD" or
 * "YYYY-MM-DDTHH:MM[:SS]" (local time, or UTC with a trailing Z), or an age
 * "30s", "15m", "2h", "7d" meaning that long ago.  Result in ms; failure
 * ST_EX_USAGE.
 */
int st_time_parse(const char *s, int64_t *ms);
/* Format ms as local "YYYY-MM-DD HH:MM:SS" into out (20 bytes). */
void st_time_format(int64_t ms, char out[20]);

/* ---- sink: where streamed output goes ---- */

/* A consumer of bytes: returns 0, or -1 after st_error(). */
typedef int (*st_sink_fn)(void *ctx, const void *p, size_t n);
/* A sink writing to the file descriptor *(int *)ctx (ST_EX_CANTCREAT). */
int st_sink_fd(void *ctx, const void *p, size_t n);
/* A sink appending to the struct st_buf *ctx. */
int st_sink_buf(void *ctx, const void *p, size_t n);

/* ---- stream.c: age's STREAM payload (ChaCha20-Poly1305, 64 KiB chunks) ---- */

#define ST_FILEKEY_LEN 16
#define ST_STREAM_NONCE_LEN 16
#define ST_STREAM_CHUNK 65536

/*
 * Encrypting writer: st_stream_enc_new() emits the 16-byte random nonce to
 * the sink; st_stream_enc_write() buffers and emits full chunks;
 * st_stream_enc_finish() emits the last chunk (with the last-chunk flag) and
 * frees.  st_stream_enc_free() abandons without finishing.  The payload key
 * is HKDF-SHA256(ikm = file key, salt = nonce, info = "payload").
 */
struct st_stream_enc;
struct st_stream_enc *st_stream_enc_new(const unsigned char key[16],
                                        st_sink_fn sink, void *ctx);
int st_stream_enc_write(struct st_stream_enc *e, const void *p, size_t n);
int st_stream_enc_finish(struct st_stream_enc *e);
void st_stream_enc_free(struct st_stream_enc *e);

/*
 * Decrypting writer (push model, for downloads): feed it the nonce and
 * payload bytes as they arrive; it releases each chunk's plaintext to the
 * sink only once that chunk has authenticated.  st_stream_dec_finish()
 * fails (ST_EX_DATAERR) unless a final chunk was seen and nothing followed
 * it; unlike st_stream_enc_finish() it does not free: st_stream_dec_free()
 * always follows.  Every failure is ST_EX_DATAERR, except that the sink's
 * own failure passes through; nothing unauthenticated is released.
 */
struct st_stream_dec;
struct st_stream_dec *st_stream_dec_new(const unsigned char key[16],
                                        st_sink_fn sink, void *ctx);
int st_stream_dec_write(struct st_stream_dec *d, const void *p, size_t n);
int st_stream_dec_finish(struct st_stream_dec *d);
void st_stream_dec_free(struct st_stream_dec *d);

/* ---- age.c: age v1 files (age-encryption.org/v1) ---- */

enum st_age_type { ST_AGE_X25519 = 1, ST_AGE_SCRYPT = 2 };

/* A recipient: an X25519 public key, or a passphrase for scrypt. */
struct st_age_rcpt {
	enum st_age_type type;
	unsigned char pub[32];
	char *passphrase; /* borrowed, scrypt only */
	int logn;         /* scrypt work factor when encrypting (default 18) */
};
/* An identity: an X25519 secret key, or a passphrase for scrypt. */
struct st_age_id {
	enum st_age_type type;
	unsigned char key[32]; /* X25519 secret; wiped by st_age_id_wipe() */
	char *passphrase;      /* borrowed, scrypt only */
	int max_logn;          /* scrypt work-factor ceiling (default 22) */
	/*
	 * scrypt only, when passphrase is NULL: asked for a passphrase only if
	 * the file turns out to be passphrase-encrypted (a prompt on
	 * /dev/tty); returns a malloc'd string, wiped and freed after use, or
	 * NULL after st_error().
	 */
	char *(*ask)(void);
};
void st_age_id_wipe(struct st_age_id *id);

/* Bech32 "age1..." <-> X25519 public key.  Parse failure: ST_EX_USAGE. */
int st_age_parse_recipient(const char *s, struct st_age_rcpt *r);
/* Bech32 "AGE-SECRET-KEY-1..." <-> X25519 secret.  Failure: ST_EX_DATAERR. */
int st_age_parse_identity(const char *s, struct st_age_id *id);
/* Formatters write NUL-terminated strings: out needs 63 and 75 bytes. */
void st_age_format_recipient(const unsigned char pub[32], char out[63]);
void st_age_format_identity(const unsigned char key[32], char out[75]);
/*
 * Read an identity file (age-keygen format: "#" comments, blank lines,
 * one AGE-SECRET-KEY-1 per line).  *ids is malloc'd; free with
 * st_age_ids_free().  Missing file: ST_EX_NOINPUT; bad line: ST_EX_DATAERR.
 */
int st_age_load_identities(const char *path, struct st_age_id **ids,
                           size_t *n);
void st_age_ids_free(struct st_age_id *ids, size_t n);
/* Read a recipients file (-R): comments, blank lines, one age1 per line. */
int st_age_load_recipients(const char *path, struct st_age_rcpt **r,
                           size_t *n);

/*
 * Encrypting writer: st_age_enc_new() writes the header (one stanza per
 * recipient; a scrypt recipient must be the only one) and the payload nonce
 * to the sink, ASCII-armored when armor is set.  Then write, then finish
 * (which frees).  st_age_enc_free() abandons.
 */
struct st_age_enc;
struct st_age_enc *st_age_enc_new(const struct st_age_rcpt *r, size_t nr,
                                  int armor, st_sink_fn sink, void *ctx);
int st_age_enc_write(struct st_age_enc *e, const void *p, size_t n);
int st_age_enc_finish(struct st_age_enc *e);
void st_age_enc_free(struct st_age_enc *e);

/* Why the last decryption failed (for messages and the vector runner). */
enum st_age_fail {
	ST_AGE_FAIL_NONE = 0,
	ST_AGE_FAIL_ARMOR,   /* the ASCII armor is malformed */
	ST_AGE_FAIL_HEADER,  /* the header is malformed, or a stanza invalid */
	ST_AGE_FAIL_NOMATCH, /* no identity unwraps any stanza (ST_EX_NO) */
	ST_AGE_FAIL_HMAC,    /* the header MAC is wrong */
	ST_AGE_FAIL_PAYLOAD, /* the payload failed to authenticate */
	ST_AGE_FAIL_IO,      /* reading input or writing output failed */
};
enum st_age_fail st_age_last_fail(void);

/*
 * Decrypt the age file read from infd (binary or armored, detected), giving
 * plaintext to the sink chunk by chunk as each authenticates.  Constant
 * memory.  No matching identity: -1 with ST_EX_NO; anything malformed or
 * tampered: -1 with ST_EX_DATAERR; the sink's own failure passes through.
 */
int st_age_decrypt(int infd, const struct st_age_id *ids, size_t nids,
                   st_sink_fn sink, void *ctx);
/*
 * Re-wrap: read an age file from infd, unwrap its file key with ids, write
 * a new header for the recipients r to outfd and copy the payload (nonce
 * and chunks) byte for byte.  Binary files only.
 */
int st_age_rekey(int infd, const struct st_age_id *ids, size_t nids,
                 const struct st_age_rcpt *r, size_t nr, int outfd);

/* ---- vault.c: the encrypted store of SPEC §6 ---- */

/*
 * An item id: 12 hex digits of creation time in ms, then 8 random hex
 * digits, so names sort by age.  Commands accept any unique prefix of at
 * least 4 digits.
 */
#define ST_VAULT_ID_LEN 20

struct st_vault;

/*
 * Open the vault of $ST_HOME: the key vault.key and the directory vault/.
 * With create set, a missing key or directory is made (the caller holds the
 * home lock); without it, a missing key gives an empty vault.
 */
struct st_vault *st_vault_open(int create);
void st_vault_close(struct st_vault *v);
/* The vault's age recipient ("age1..."), NUL-terminated. */
const char *st_vault_recipient(const struct st_vault *v);
/* The vault's identities (the key, and the new one during a rekey). */
const struct st_age_id *st_vault_ids(const struct st_vault *v, size_t *n);

/*
 * Store an item: the content read from infd (or the n bytes at data when
 * infd is -1) goes to ID.age, then meta (a JSON object: kind, from, to, ts,
 * name, msgid as the caller sets them; "id" and "size" are filled in) to
 * ID.meta.age, each written atomically; the meta file is the commit point.
 * The new id is written to id (ST_VAULT_ID_LEN + 1 bytes).
 */
int st_vault_put(struct st_vault *v, struct st_json *meta, int infd,
                 const void *data, size_t n, char *id);
/*
 * Every item's meta, oldest first (by ts, then id): *items is a malloc'd
 * array of new objects; free with st_vault_list_free().
 */
int st_vault_list(struct st_vault *v, struct st_json ***items, size_t *n);
void st_vault_list_free(struct st_json **items, size_t n);
/*
 * Resolve an id or unique prefix (at least 4 hex digits) to a full id.
 * Unknown: ST_EX_NO; ambiguous or malformed: ST_EX_USAGE.
 */
int st_vault_resolve(struct st_vault *v, const char *prefix, char *id);
/* Decrypt an item's content to a sink. */
int st_vault_read(struct st_vault *v, const char *id, st_sink_fn sink,
                  void *ctx);
/* Decrypt an item's meta; a new object. */
struct st_json *st_vault_meta(struct st_vault *v, const char *id);
/* Delete an item (meta first, so a crash leaves no half-listed item). */
int st_vault_rm(struct st_vault *v, const char *id);
/*
 * Make a new vault key and re-wrap every file's header to it, copying
 * payloads untouched.  Resumable: the new key is written to vault.key.new
 * first and becomes vault.key only when every file is done.
 */
int st_vault_rekey(struct st_vault *v);

/*
 * Items with ids the caller chose beforehand (st-recv names them in its
 * journal before writing, so a rerun can tell whether an item exists).
 * st_vault_new_id() makes a fresh id; st_vault_has() is 1 when the item's
 * meta file exists.  A writer streams the content (st_vault_writer_sink
 * is an st_sink_fn) and st_vault_writer_commit() finishes it and writes
 * meta ("id" and "size" filled in), replacing an item of the same id;
 * commit and abort free the writer.  st_vault_put_id() does all of it for
 * n bytes in memory.
 */
void st_vault_new_id(char *id);
int st_vault_has(struct st_vault *v, const char *id);
struct st_vault_writer;
struct st_vault_writer *st_vault_writer_new(struct st_vault *v,
                                            const char *id);
int st_vault_writer_sink(void *w, const void *p, size_t n);
int st_vault_writer_commit(struct st_vault_writer *w, struct st_json *meta);
void st_vault_writer_abort(struct st_vault_writer *w);
int st_vault_put_id(struct st_vault *v, struct st_json *meta,
                    const void *data, size_t n, const char *id);

/* ---- relay.c: the one relay client (libcurl) ---- */

struct st_relay;

/*
 * A client for the relay at url: https, or http only to a loopback address
 * (127.0.0.0/8, ::1, localhost, judged on the host curl will connect to)
 * unless insecure_http is set; no user, query or fragment in the URL
 * (ST_EX_CONFIG otherwise).  Redirects are never followed; connections
 * time out after 10 s, requests after 60 s plus any long-poll wait, and a
 * timeout is ST_EX_UNAVAILABLE like a refused connection.  Replies are
 * capped (body as below, headers 64 KiB).  One connection is reused for
 * the life of the handle.  ST_CACERT in the environment names a PEM CA
 * file that replaces the system's trust store (ST_EX_CONFIG when it cannot
 * be read); an untrusted certificate is ST_EX_UNAVAILABLE.
 */
struct st_relay *st_relay_new(const char *url, int insecure_http);
void st_relay_free(struct st_relay *r);
/* The relay's URL without trailing slashes, for messages; owned by r. */
const char *st_relay_base(const struct st_relay *r);
/* The relay URL to use: flag (may be NULL), else $ST_RELAY, else config
 * "relay".  Returns a malloc'd string or NULL (ST_EX_CONFIG). */
char *st_relay_url(const char *flag, const struct st_json *cfg);
/* Use this bearer token (copied; wiped on free), or none with NULL. */
void st_relay_set_token(struct st_relay *r, const char *token);
/* Load $ST_HOME/token into the handle: ST_EX_NOPERM when missing (the
 * message names the relay and the token file, and says to run st-login). */
int st_relay_load_token(struct st_relay *r);

/*
 * One JSON request: method and path (with query), an optional body, the
 * reply parsed strictly (at most max bytes; 0 means 48 MiB) into *reply
 * (NULL for an empty 204; caller frees).  *status gets the HTTP status.
 * Returns 0 for 2xx.  Otherwise -1 with the relay's message recorded (at
 * most 200 bytes, control characters escaped) and the class: network
 * failure, timeout, redirect or 5xx ST_EX_UNAVAILABLE; 401 and
 * 403 ST_EX_NOPERM; 429 ST_EX_TEMPFAIL (naming Retry-After); other 4xx
 * ST_EX_DATAERR, with *reply holding the error object when there was one
 * and *errcode (if not NULL) pointing at its "error" string inside it.
 */
int st_relay_call(struct st_relay *r, const char *method, const char *path,
                  const struct st_json *body, size_t max, long *status,
                  struct st_json **reply, const char **errcode);
/*
 * Stream size bytes read from fd to path as application/octet-stream
 * (POST /v1/blobs); the JSON reply as for st_relay_call().  A progress bar
 * goes to stderr when it is a terminal.
 */
int st_relay_upload(struct st_relay *r, const char *path, int fd,
                    uint64_t size, struct st_json **reply);
/* Stream path's body to the sink, failing past max bytes. */
int st_relay_download(struct st_relay *r, const char *path, uint64_t max,
                      st_sink_fn sink, void *ctx);

/* ---- keys.c: identities, prekeys, bundles, channel posts (SPEC §4, §5) ---- */

#define ST_ID_ENC_LEN 65        /* 0x01 || IKs_pub || IKd_pub */
#define ST_TO_IK_LEN 22         /* base64url of 16 bytes, without the NUL */
#define ST_USER_MAX 32          /* ^[a-z0-9][a-z0-9._-]{0,31}$ */

/* 1 when the n bytes at s follow the username (and channel name) rule. */
int st_user_ok(const char *s, size_t n);
/*
 * 1 when the n bytes at p are valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF) and contain no NUL; 0 otherwise.
 */
int st_utf8_ok(const void *p, size_t n);

/* A public identity as the relay serves it: {ed25519, x25519, bind}. */
struct st_identity_pub {
	unsigned char ed25519[32];      /* IKs_pub */
	unsigned char x25519[32];       /* IKd_pub */
	unsigned char bind[64];         /* Sign(IKs, "st-id-v1" || IKd_pub) */
};
/* Our own identity; the two secrets are wiped by st_identity_wipe(). */
struct st_identity {
	unsigned char ed25519_seed[32]; /* IKs (RFC 8032 seed) */
	unsigned char x25519_priv[32];  /* IKd */
	struct st_identity_pub pub;
};

/* A fresh identity: random IKs and IKd, their public keys and bind. */
int st_identity_generate(struct st_identity *id);
/*
 * The identity with these secrets: public keys and bind derived (Ed25519
 * signatures are deterministic, so this is how tests fix an identity).
 */
int st_identity_from_secrets(struct st_identity *id,
                             const unsigned char ed25519_seed[32],
                             const unsigned char x25519_priv[32]);
void st_identity_wipe(struct st_identity *id);
/* The 65-byte public encoding 0x01 || IKs_pub || IKd_pub. */
void st_identity_encode(const struct st_identity_pub *p,
                        unsigned char out[ST_ID_ENC_LEN]);
/* 0 when bind is a valid signature; -1 (ST_EX_DATAERR) otherwise. */
int st_identity_verify(const struct st_identity_pub *p);
/*
 * to_ik (SPEC §7): base64url of the first 16 bytes of SHA-256 of the
 * encoding, NUL-terminated in out.
 */
void st_identity_to_ik(const struct st_identity_pub *p,
                       char out[ST_TO_IK_LEN + 1]);
/* {ed25519, x25519, bind} as a new object. */
struct st_json *st_identity_to_json(const struct st_identity_pub *p);
/*
 * Parse {ed25519, x25519, bind} (other members are ignored) and verify the
 * binding.  Failure: ST_EX_DATAERR, naming the field or "bad identity
 * binding signature".
 */
int st_identity_from_json(const struct st_json *j, struct st_identity_pub *p);
/*
 * The secrets for identity.json: {"v":1,"ed25519_seed":B64,"x25519":B64}.
 * Free the object with st_json_free_secret() and any dump of it with
 * st_free_str_secret().  Loading re-derives the public half.
 */
struct st_json *st_identity_secret_to_json(const struct st_identity *id);
int st_identity_secret_from_json(const struct st_json *j,
                                 struct st_identity *id);

/* A signed prekey; wipe with st_wipe(s, sizeof(*s)). */
struct st_spk {
	uint32_t id;
	unsigned char priv[32], pub[32];
	unsigned char sig[64];          /* Sign(IKs, "st-spk-v1"||be32(id)||pub) */
	int64_t created;                /* Unix ms, for rotation */
};
/* A one-time prekey; wipe with st_wipe(o, sizeof(*o)). */
struct st_opk {
	uint32_t id;
	unsigned char priv[32], pub[32];
};
/*
 * Make signed prekey spk_id from priv (or a fresh one when priv is NULL),
 * signed by id, created at now_ms.
 */
int st_spk_generate(const struct st_identity *id, uint32_t spk_id,
                    const unsigned char *priv, int64_t now_ms,
                    struct st_spk *out);
/* 0 when sig signs (id, pub) under ed25519_pub; -1 ST_EX_DATAERR. */
int st_spk_verify(const unsigned char ed25519_pub[32], uint32_t id,
                  const unsigned char pub[32], const unsigned char sig[64]);
/* One-time prekey opk_id from priv (fresh when NULL). */
int st_opk_generate(uint32_t opk_id, const unsigned char *priv,
                    struct st_opk *out);
/* Relay forms, new objects: {id, pub, sig} and {id, pub}. */
struct st_json *st_spk_to_json(const struct st_spk *s);
struct st_json *st_opk_to_json(const struct st_opk *o);
/*
 * Secret forms for prekeys.json: {id, priv, sig, created} and {id, priv};
 * loading re-derives pub.  Free with st_json_free_secret().
 */
struct st_json *st_spk_secret_to_json(const struct st_spk *s);
int st_spk_secret_from_json(const struct st_json *j, struct st_spk *s);
struct st_json *st_opk_secret_to_json(const struct st_opk *o);
int st_opk_secret_from_json(const struct st_json *j, struct st_opk *o);

/* A peer's prekey bundle (POST /v1/users/NAME/bundle). */
struct st_bundle {
	char user[ST_USER_MAX + 1];
	struct st_identity_pub id;
	uint32_t spk_id;
	unsigned char spk[32], spk_sig[64];
	int has_opk;
	uint32_t opk_id;
	unsigned char opk[32];
};
/*
 * Parse {user, identity, spk:{id,pub,sig}, opk:{id,pub}|null} and verify
 * the identity binding and the signed-prekey signature: a bundle that
 * parses is safe to run X3DH against.  Failure: ST_EX_DATAERR.
 */
int st_bundle_parse(const struct st_json *j, struct st_bundle *b);
/* The same object back (new). */
struct st_json *st_bundle_to_json(const struct st_bundle *b);

/* A channel post (SPEC §5); st_post_parse() fills it, st_post_free() frees
 * text. */
struct st_post {
	char channel[ST_USER_MAX + 1];
	char from[ST_USER_MAX + 1];
	int64_t ts;
	char *text;                     /* malloc'd, NUL-terminated */
	size_t textlen;
	unsigned char sig[64];
};
/*
 * The signed bytes "st-chan-v1" || lp(channel) || lp(from) || be64(ts) ||
 * text, appended to out.  Fails (ST_EX_DATAERR) on a bad channel or user
 * name, a negative ts, or text that is not UTF-8 without NUL.
 */
int st_post_signing_input(const char *channel, const char *from, int64_t ts,
                          const char *text, size_t textlen,
                          struct st_buf *out);
/*
 * Sign a post with id and return it as the wire object {v, channel, from,
 * ts, text, sig} (new; NULL on failure, as for st_post_signing_input()).
 */
struct st_json *st_post_sign(const struct st_identity *id,
                             const char *channel, const char *from,
                             int64_t ts, const char *text, size_t textlen);
/*
 * Parse a post strictly (no other members, v 1, names by the username
 * rule) without verifying it.  Failure: ST_EX_DATAERR, p left empty.
 */
int st_post_parse(const struct st_json *j, struct st_post *p);
/* 0 when the post's signature verifies under ed25519_pub; -1 otherwise. */
int st_post_verify(const struct st_post *p,
                   const unsigned char ed25519_pub[32]);
void st_post_free(struct st_post *p);

/*
 * Free a JSON value after wiping every string in it (for objects holding
 * base64 secrets); NULL is fine.
 */
void st_json_free_secret(struct st_json *j);

/* ---- safety.c: safety numbers (Signal's numeric fingerprint, SPEC §4) ---- */

#define ST_SAFETY_ITERATIONS 5200
#define ST_SAFETY_HALF_LEN 30    /* digits per party */
#define ST_SAFETY_LEN 60         /* digits in a safety number */
#define ST_SAFETY_DISPLAY_LEN 71 /* 12 groups of 5 with single spaces */

/*
 * Signal's per-party fingerprint hash, parameterised so Signal's own test
 * vectors run through it: h = SHA-512(be16(version) || key || sid || key),
 * then h = SHA-512(h || key) until iterations runs in all (iterations >= 1).
 */
int st_fingerprint_hash(unsigned version, const void *key, size_t keylen,
                        const void *sid, size_t sidlen, unsigned iterations,
                        unsigned char out[64]);
/* The first 30 bytes of a hash as six 5-byte big-endian integers mod
 * 100000: 30 digits and a NUL. */
void st_fingerprint_digits(const unsigned char hash[64],
                           char out[ST_SAFETY_HALF_LEN + 1]);
/* Two halves, the smaller (as strings) first: 60 digits and a NUL. */
void st_fingerprint_combine(const char *a, const char *b,
                            char out[ST_SAFETY_LEN + 1]);
/* Both steps for two parties: Signal's displayable fingerprint. */
int st_fingerprint(unsigned version, unsigned iterations,
                   const void *key_a, size_t keylen_a,
                   const void *sid_a, size_t sidlen_a,
                   const void *key_b, size_t keylen_b,
                   const void *sid_b, size_t sidlen_b,
                   char out[ST_SAFETY_LEN + 1]);
/* Our half: version 0, key = the 65-byte identity encoding, sid = user. */
int st_safety_half(const struct st_identity_pub *p, const char *user,
                   char out[ST_SAFETY_HALF_LEN + 1]);
/* The 60-digit safety number of two (identity, user) pairs. */
int st_safety_number(const struct st_identity_pub *a, const char *user_a,
                     const struct st_identity_pub *b, const char *user_b,
                     char out[ST_SAFETY_LEN + 1]);
/* "12345 67890 ..." (12 groups of 5) from 60 digits. */
void st_safety_display(const char *number,
                       char out[ST_SAFETY_DISPLAY_LEN + 1]);
/*
 * 0 when input (digits; spaces, tabs and dashes ignored) equals number;
 * -1 with ST_EX_NO otherwise.  Constant time over the 60 digits.
 */
int st_safety_match(const char *input, const char *number);

/* ---- x3dh.c: X3DH key agreement (SPEC §4) ---- */

/* lp(user_A) || id_A || lp(user_B) || id_B with users of up to 255 bytes */
#define ST_X3DH_AD_MAX (2 * (1 + 255 + ST_ID_ENC_LEN))

/*
 * SK = HKDF-SHA256(0xFF*32 || dh, salt 32 zeros, "st-x3dh-v1", 32) over the
 * concatenated DH outputs (n = 96 or 128 bytes).
 */
int st_x3dh_kdf(const unsigned char *dh, size_t n, unsigned char sk[32]);
/*
 * The associated data of a session: A is always the initiator.  Users must
 * be 1..255 bytes (ST_EX_DATAERR otherwise).  ad needs ST_X3DH_AD_MAX bytes.
 */
int st_x3dh_ad(const char *user_a, const unsigned char id_a[ST_ID_ENC_LEN],
               const char *user_b, const unsigned char id_b[ST_ID_ENC_LEN],
               unsigned char *ad, size_t *adlen);
/*
 * Initiator: verify the bundle's binding and signed-prekey signature, then
 * SK from DH1..DH3 (DH4 when the bundle has an OPK).  ek_priv fixes the
 * ephemeral key for tests; NULL draws a fresh one.  EK and the DH outputs
 * are wiped before returning.  Any all-zero DH or bad signature:
 * ST_EX_DATAERR, sk and ek_pub wiped.
 */
int st_x3dh_initiate(const struct st_identity *me, const struct st_bundle *b,
                     const unsigned char *ek_priv, unsigned char sk[32],
                     unsigned char ek_pub[32]);
/*
 * Responder: SK from our IKd, the SPK secret, the OPK secret (NULL when
 * the initiator used none), the initiator's IKd_pub and EK.
 */
int st_x3dh_respond(const struct st_identity *me,
                    const unsigned char spk_priv[32],
                    const unsigned char *opk_priv,
                    const unsigned char peer_x25519[32],
                    const unsigned char ek_pub[32], unsigned char sk[32]);

/* ---- x3dh.c, ratchet.c: the parameterised cores (known-answer tests) ---- */

/*
 * out = X25519(priv, peer) when pub, priv's public key, is already known
 * (NULL: unknown): OpenSSL then skips deriving it on import, which costs
 * a scalar multiplication of its own.  An all-zero result: ST_EX_DATAERR.
 */
int st_x3dh_x25519(const unsigned char priv[32], const unsigned char *pub,
                   const unsigned char peer[32], unsigned char out[32]);
/*
 * The functions above are these with SPEC §4's constants; tests run
 * Signal's own vectors (info "WhisperText", "WhisperRatchet") through them.
 * The DH outputs of each role in SPEC order, DH1..DH3 and DH4 when an OPK
 * is given, into dh (*n = 96 or 128); an all-zero output fails
 * (ST_EX_DATAERR) with dh wiped.  Private keys are raw X25519 scalars;
 * the *_pub arguments are their public keys when known, or NULL.
 */
int st_x3dh_dh_initiator(const unsigned char ik_priv[32],
                         const unsigned char *ik_pub,
                         const unsigned char ek_priv[32],
                         const unsigned char *ek_pub,
                         const unsigned char peer_ik[32],
                         const unsigned char spk[32],
                         const unsigned char *opk, unsigned char dh[128],
                         size_t *n);
int st_x3dh_dh_responder(const unsigned char ik_priv[32],
                         const unsigned char *ik_pub,
                         const unsigned char spk_priv[32],
                         const unsigned char *spk_pub,
                         const unsigned char *opk_priv,
                         const unsigned char *opk_pub,
                         const unsigned char peer_ik[32],
                         const unsigned char ek[32], unsigned char dh[128],
                         size_t *n);
/* st_x3dh_respond() from our prekey structs (opk NULL when unused). */
int st_x3dh_respond_keys(const struct st_identity *me,
                         const struct st_spk *spk, const struct st_opk *opk,
                         const unsigned char peer_x25519[32],
                         const unsigned char ek_pub[32],
                         unsigned char sk[32]);
/* HKDF-SHA256(0xFF*32 || dh, salt 32 zeros, info, outlen <= 255*32). */
int st_x3dh_kdf_with(const unsigned char *dh, size_t n, const char *info,
                     unsigned char *out, size_t outlen);
/* KDF_RK with another info: HKDF(dh, salt rk, info, 64) split 32/32. */
int st_dr_kdf_rk_with(const unsigned char rk[32], const unsigned char dh[32],
                      const char *info, unsigned char rk_out[32],
                      unsigned char ck_out[32]);

/* ---- envelope.c: the envelope and the inner message (SPEC §5) ---- */

#define ST_DR_HEADER_LEN 40
#define ST_ENVELOPE_MAX 65536   /* ciphertext and inner message ceiling */
#define ST_MSG_PAD 256

/*
 * {"v":1, "x3dh":{ik, ek, spk, opk|null}?, "hdr", "ct"}.  ct is malloc'd
 * and owned by the struct; st_envelope_free() releases it.
 */
struct st_envelope {
	int has_x3dh;
	unsigned char ik[ST_ID_ENC_LEN]; /* sender's identity encoding */
	unsigned char ek[32];
	uint32_t spk_id;
	int has_opk;
	uint32_t opk_id;
	unsigned char hdr[ST_DR_HEADER_LEN];
	unsigned char *ct;              /* ciphertext || tag */
	size_t ctlen;
};
/* The wire object (new). */
struct st_json *st_envelope_to_json(const struct st_envelope *e);
/*
 * Parse strictly: no unknown members, v 1, exact lengths, ids in
 * 0..2^32-1, ct of 16..ST_ENVELOPE_MAX+16 bytes.  Failure ST_EX_DATAERR
 * with e empty.
 */
int st_envelope_parse(const struct st_json *j, struct st_envelope *e);
void st_envelope_free(struct st_envelope *e);

/* An attached file's entry in the inner message. */
struct st_msg_file {
	char *name;                     /* malloc'd */
	uint64_t size;                  /* plaintext size */
	char *blob;                     /* relay blob id, malloc'd */
	unsigned char key[16];          /* file key */
};
/*
 * The inner message.  The body goes out as "text" when it is UTF-8 without
 * NUL, as "data" otherwise; is_text says which arrived.  Everything is
 * owned by the struct: st_msg_free() wipes and frees it.
 */
struct st_msg {
	char id[33];                    /* 32 lowercase hex */
	int64_t ts;                     /* Unix ms */
	char **to;
	size_t nto;
	int has_body;
	int is_text;
	unsigned char *body;
	size_t bodylen;
	struct st_msg_file *files;
	size_t nfiles;
};
/* A fresh random message id (32 lowercase hex and a NUL). */
int st_msg_new_id(char id[33]);
/*
 * JSON {v, id, ts, to, text|data, files} padded with zeros to the next
 * multiple of 256: the ratchet plaintext.  *out is malloc'd; free with
 * st_free_secret(*out, *outlen).  Bad fields: ST_EX_DATAERR.
 */
int st_msg_encode(const struct st_msg *m, unsigned char **out,
                  size_t *outlen);
/*
 * Unpad and parse a decrypted plaintext into m (members other than the
 * known ones are ignored).  Failure: ST_EX_DATAERR, m empty.
 */
int st_msg_decode(const unsigned char *pt, size_t n, struct st_msg *m);
void st_msg_free(struct st_msg *m);
/* Zero padding to the next multiple of 256 (none when n is one already). */
int st_msg_pad(const void *p, size_t n, unsigned char **out, size_t *outlen);
/* The length up to the first NUL; -1 (ST_EX_DATAERR) when a non-zero byte
 * follows it. */
int st_msg_unpad(const unsigned char *p, size_t n, size_t *len);

/* ---- ratchet.c, session.c: the Double Ratchet and per-peer state ---- */

#define ST_DR_MAX_SKIP 1000
#define ST_DR_MAX_SKIPPED 2000          /* stored skipped keys per session */
#define ST_DR_SKIPPED_TTL_MS (30LL * 24 * 3600 * 1000)
#define ST_DR_MAX_SESSIONS 6            /* the current one and 5 earlier */

/* KDF_RK: rk_out (may be rk) and ck_out from HKDF(dh, salt rk). */
int st_dr_kdf_rk(const unsigned char rk[32], const unsigned char dh[32],
                 unsigned char rk_out[32], unsigned char ck_out[32]);
/* KDF_CK: mk = HMAC(ck, 0x01), ck_next = HMAC(ck, 0x02); ck_next may be ck. */
int st_dr_kdf_ck(const unsigned char ck[32], unsigned char mk[32],
                 unsigned char ck_next[32]);
/* key || nonce = HKDF(mk, salt 32 zeros, "st-msg-v1", 44). */
int st_dr_message_keys(const unsigned char mk[32], unsigned char key[32],
                       unsigned char nonce[12]);
/* dh_pub (32) || be32(pn) || be32(n). */
void st_dr_header_encode(const unsigned char dh[32], uint32_t pn, uint32_t n,
                         unsigned char out[ST_DR_HEADER_LEN]);
void st_dr_header_decode(const unsigned char in[ST_DR_HEADER_LEN],
                         unsigned char dh[32], uint32_t *pn, uint32_t *n);

/*
 * The Double Ratchet state with one peer (ratchet/NAME.json): the current
 * session, up to 5 earlier ones and the (spk, ek) pairs seen.  Opaque;
 * st_ratchet_free() wipes it.
 */
struct st_ratchet;
/* Our prekey secrets, for a message that starts a session. */
struct st_prekey_set {
	const struct st_spk *spk;       /* the current and previous ones */
	size_t nspk;
	const struct st_opk *opk;       /* unused one-time prekeys */
	size_t nopk;
};
/* What a decryption did, for the caller to act on. */
struct st_ratchet_info {
	int new_session;                /* this message started a session */
	int switched;                   /* an earlier session became current */
	int opk_used;                   /* delete one-time prekey opk_id now */
	uint32_t opk_id;
};

/* An empty state (no session).  Never NULL. */
struct st_ratchet *st_ratchet_new(void);
void st_ratchet_free(struct st_ratchet *r);
/* A deep copy (never NULL). */
struct st_ratchet *st_ratchet_dup(const struct st_ratchet *r);
/* 1 when there is a current session to encrypt with. */
int st_ratchet_has_session(const struct st_ratchet *r);
/*
 * For tests: draw every new ratchet key pair's secret from fn (which
 * fills priv and returns 0, or -1 after st_error()) instead of RAND_bytes:
 * one at st_ratchet_initiate(), one per DH ratchet step, and the latter
 * only once the message that brought the step has authenticated, so a
 * failed decryption consumes none.  The source is not saved in JSON.
 */
void st_ratchet_set_keysource(struct st_ratchet *r,
                              int (*fn)(void *ctx, unsigned char priv[32]),
                              void *ctx);
/*
 * Start a session as initiator against a bundle (which st_bundle_parse()
 * verified; st_x3dh_initiate() checks it again): X3DH, then the first
 * ratchet key pair.  The new session becomes current, the old one earlier.
 * ek_priv fixes EK for tests (NULL: fresh).  On failure r is unchanged.
 */
int st_ratchet_initiate(struct st_ratchet *r, const struct st_identity *me,
                        const char *me_user, const struct st_bundle *b,
                        const unsigned char *ek_priv);
/*
 * Encrypt n bytes (an encoded inner message) with the current session into
 * env (which the caller frees with st_envelope_free()); the x3dh part is
 * set until the peer's first reply arrives.  The state advances: commit it
 * before the envelope leaves the process.  No session: ST_EX_DATAERR.
 */
int st_ratchet_encrypt(struct st_ratchet *r, const void *pt, size_t n,
                       struct st_envelope *env);
/*
 * Decrypt an envelope from peer (identity peer, name peer_user) to us:
 * an x3dh part must name peer's identity (ST_EX_IDENTITY otherwise) and
 * continues its kept session, starts a new one from pk, or is a replay;
 * without it the current session is tried, then the earlier ones.  Works
 * on a copy: on any failure (ST_EX_DATAERR) r is exactly as before.  On
 * success *pt (malloc'd, free with st_free_secret(*pt, *ptlen)) holds the
 * plaintext, info (may be NULL) says what happened, and expired skipped
 * keys (stored before now_ms - 30 days) are gone.
 */
int st_ratchet_decrypt(struct st_ratchet *r, const struct st_identity *me,
                       const char *me_user,
                       const struct st_identity_pub *peer,
                       const char *peer_user, const struct st_prekey_set *pk,
                       const struct st_envelope *env, int64_t now_ms,
                       unsigned char **pt, size_t *ptlen,
                       struct st_ratchet_info *info);
/*
 * The state as JSON for ratchet/NAME.json (format in session.c and
 * doc/st.5).  It holds secrets: free with st_json_free_secret(), wipe the
 * dump with st_free_str_secret().
 */
struct st_json *st_ratchet_to_json(const struct st_ratchet *r);
/* Load it back, checking every field; NULL with ST_EX_DATAERR. */
struct st_ratchet *st_ratchet_from_json(const struct st_json *j);

/* ---- channel.c: public channels, signed plaintext posts (SPEC §5) ---- */

#define ST_POST_TEXT_MAX 60000          /* fits the relay's 64 KiB JSON body */

/*
 * Sign text (UTF-8 without NUL, at most ST_POST_TEXT_MAX bytes) as user
 * with id at time ts and post it to channel; *relay_id (malloc'd) gets the
 * post's id.  A bad channel name is ST_EX_USAGE, bad text ST_EX_DATAERR;
 * relay errors as st_relay_call().
 */
int st_channel_post(struct st_relay *r, const struct st_identity *id,
                    const char *user, const char *channel, const char *text,
                    size_t n, int64_t ts, char **relay_id);

/* How a post checked out. */
enum {
	ST_POST_VERIFIED = 1,   /* signature good under the author's key */
	ST_POST_CHANGED,        /* good under the pin, but the relay serves
	                           another key for the author now */
	ST_POST_BAD_SIG,        /* signature does not verify */
	ST_POST_NO_AUTHOR,      /* author neither pinned nor in the directory */
	ST_POST_MALFORMED       /* not a well-formed post for this channel */
};
/* "verified", "identity_changed", "bad_signature", "unknown_author",
 * "malformed". */
const char *st_post_state_name(int state);

/* One post as read; everything borrowed for the callback's duration. */
struct st_channel_item {
	char id[20];                    /* relay id (digits) */
	struct st_post post;            /* empty when state is MALFORMED */
	const struct st_json *raw;      /* the post object as served */
	int state;                      /* ST_POST_* */
	const char *trust;              /* "verified", "tofu", "directory" */
	const char *why;                /* for states other than VERIFIED */
};
typedef int (*st_channel_fn)(void *ctx, const struct st_channel_item *it);

/*
 * A reader of channel from after (a post id, or NULL for the start),
 * checking each post against its author's pinned identity, else the
 * directory's.  Reading makes no pins and takes no lock.
 */
struct st_channel_reader;
struct st_channel_reader *st_channel_reader_new(struct st_relay *r,
                                                const char *channel,
                                                const char *after);
void st_channel_reader_free(struct st_channel_reader *c);
/* The id of the last post handed out (or the starting point). */
const char *st_channel_reader_after(const struct st_channel_reader *c);
/*
 * One page: up to limit (1..500) posts, waiting up to wait seconds (0..60)
 * when none is there; fn is called for each in order (a negative return
 * stops the read with that error).  Returns the number of posts, and
 * *more (may be NULL) is set when the page was full.
 */
int st_channel_read(struct st_channel_reader *c, int limit, int wait,
                    st_channel_fn fn, void *ctx, int *more);

/* ---- opt.c: command-line options ---- */

struct option;
/*
 * getopt_long() that takes long options only when spelt in full: glibc
 * would let "--password X" stand for "--password-file X".  An abbreviation
 * returns '?' with ST_EX_USAGE "unrecognized option '--NAME'" recorded
 * (say it, then the synopsis); getopt's own complaints still go to stderr.
 */
int st_getopt(int argc, char *const argv[], const char *shortopts,
              const struct option *longopts);

/* ---- keystore.c: local secret key files (SPEC §3) ---- */

/*
 * identity.json, prekeys.json and vault.key in $ST_HOME, mode 0600,
 * written atomically by callers holding the home lock.  In a protected
 * home each is a JSON wrapper (doc/st.5): ChaCha20-Poly1305 under a key
 * derived with Argon2id (64 MiB, t=3, p=1, 16-byte salt) from the
 * passphrase, which is asked on /dev/tty or read from the file set with
 * st_keystore_set_passphrase_file(), once per process.  A wrong
 * passphrase is ST_EX_NOPERM (three tries on a terminal); a wrapper that
 * fails to authenticate is ST_EX_DATAERR naming the file.  Derived keys
 * are cached for the life of the process and wiped at exit.
 */

/* Where passphrases come from: a file (as --passphrase-file: a path, "-"
 * or /dev/fd/N; the pointer is kept), or /dev/tty when NULL (default). */
void st_keystore_set_passphrase_file(const char *file);
/* Force writes to wrap (1) or not (0) instead of following identity.json. */
void st_keystore_set_protect(int on);
/* 1 when the home is protected (identity.json is wrapped), 0 when not or
 * when there are no keys, -1 on error. */
int st_keystore_protected(void);
/*
 * Ask for a new passphrase (twice on a terminal; ST_EX_USAGE when the two
 * differ), derive a key with a fresh salt for the files written next, and
 * turn protection on.  A passphrase file is read once per process: when
 * it already gave the old passphrase, that one is the new one too.
 */
int st_keystore_new_passphrase(void);
/*
 * Read a key file, unwrapping it when wrapped.  *out (NUL-terminated, not
 * counted) is secret: free with st_free_secret(*out, *outlen).  Missing:
 * ST_EX_NOINPUT.
 */
int st_keystore_read(const char *path, unsigned char **out, size_t *outlen);
/* Write a key file atomically (0600), wrapped when the home is protected. */
int st_keystore_write(const char *path, const void *data, size_t n);
/* Read and write back a key file: wraps or unwraps it to the home's mode. */
int st_keystore_rewrite(const char *path);
/* 1 when the file (or the n bytes at buf) is a wrapper, 0 when not; the
 * file form gives -1 when it cannot be read. */
int st_keystore_file_wrapped(const char *path);
int st_keystore_is_wrapped(const void *buf, size_t n);
/*
 * The wrapping itself, with an explicit passphrase (for tests): wrap
 * makes a fresh salt and gives the wrapper text (malloc'd, ends in LF);
 * pub (may be NULL) is stored in the clear and authenticated.  unwrap
 * gives the plaintext as st_keystore_read() does; what names the input.
 */
int st_keystore_wrap(const char *passphrase, const struct st_identity_pub *pub,
                     const void *pt, size_t n, char **out);
int st_keystore_unwrap(const char *passphrase, const char *what,
                       const void *in, size_t n, unsigned char **pt,
                       size_t *ptlen);

/* 1 when identity.json exists, 0 when not, -1 when there is no home. */
int st_keystore_has_keys(void);
/*
 * Our identity from identity.json (asking for the passphrase when it is
 * wrapped).  No keys: ST_EX_CONFIG "run st-keygen"; malformed: ST_EX_DATAERR
 * naming the file.  Wipe with st_identity_wipe().
 */
int st_keystore_load_identity(struct st_identity *id);
int st_keystore_save_identity(const struct st_identity *id);
/* Our public identity without any passphrase (a wrapper keeps it in the
 * clear, authenticated with the secrets). */
int st_keystore_identity_pub(struct st_identity_pub *pub);
/* Unwrap (if needed) an age identity file such as vault.key: exactly one
 * AGE-SECRET-KEY-1 line, else ST_EX_DATAERR. */
int st_keystore_age_identity(const char *path, struct st_age_id *out);

#define ST_OPK_TARGET 100               /* one-time prekeys after a refill */
#define ST_OPK_LOW 20                   /* refill below this many */
#define ST_SPK_ROTATE_MS (7LL * 24 * 3600 * 1000)
#define ST_SPK_KEEP_MS (30LL * 24 * 3600 * 1000)
#define ST_SPK_KEEP 8                   /* current + previous signed prekeys */

/*
 * prekeys.json: the current signed prekey (spk[0]), the previous ones
 * with the time each was replaced (kept ST_SPK_KEEP_MS after that), and
 * the unused one-time prekeys, oldest first (at most 1000: the oldest go
 * first).  Ids come from the counters and are never reused.  Everything
 * is owned by the struct: st_prekeys_free() wipes it.
 */
struct st_prekeys {
	struct st_spk spk[ST_SPK_KEEP];
	int64_t retired[ST_SPK_KEEP];   /* when spk[i] stopped being current */
	size_t nspk;
	struct st_opk *opk;
	size_t nopk;
	uint32_t next_spk_id, next_opk_id;
};
/* Fresh prekeys for id: signed prekey 1 and ST_OPK_TARGET one-time ones. */
int st_prekeys_init(struct st_prekeys *pk, const struct st_identity *id,
                    int64_t now_ms);
/* Load and save prekeys.json (errors name the file, as for identities). */
int st_prekeys_load(struct st_prekeys *pk);
int st_prekeys_save(const struct st_prekeys *pk);
void st_prekeys_free(struct st_prekeys *pk);
/* Append n fresh one-time prekeys (the newest are last). */
int st_prekeys_add_opks(struct st_prekeys *pk, size_t n);
/* A new current signed prekey; the old one becomes previous. */
int st_prekeys_rotate(struct st_prekeys *pk, const struct st_identity *id,
                      int64_t now_ms);
/* Drop previous signed prekeys replaced ST_SPK_KEEP_MS ago; the count. */
int st_prekeys_expire(struct st_prekeys *pk, int64_t now_ms);
/* The unused one-time prekey with this id, or NULL. */
const struct st_opk *st_prekeys_find_opk(const struct st_prekeys *pk,
                                         uint32_t id);
/* Delete a one-time prekey once a message under it decrypted (then save);
 * ST_EX_NO when there is none with that id. */
int st_prekeys_use_opk(struct st_prekeys *pk, uint32_t id);
/* The secrets st_ratchet_decrypt() takes, borrowed from pk. */
void st_prekeys_set(const struct st_prekeys *pk, struct st_prekey_set *set);

/* ---- peers.c: pinned identities, peers/NAME.json (SPEC §3, §4) ---- */

enum st_trust { ST_TRUST_TOFU = 1, ST_TRUST_VERIFIED = 2 };
struct st_peer {
	char user[ST_USER_MAX + 1];
	struct st_identity_pub id;      /* the pinned identity */
	enum st_trust trust;
	int64_t first_seen, last_seen;  /* Unix ms */
};
/* "tofu" or "verified". */
const char *st_trust_name(enum st_trust t);
/*
 * Load the pin of user: not pinned is ST_EX_NOINPUT; malformed is
 * ST_EX_DATAERR naming the file; a bad name is ST_EX_USAGE.
 */
int st_peer_load(const char *user, struct st_peer *p);
/* Write it (peers/ 0700, the file 0600); the caller holds the home lock. */
int st_peer_save(const struct st_peer *p);
/*
 * Trust on first use, for an identity the relay served for user: no pin
 * yet pins it (*pinned = 1); the pinned one updates last_seen; any other
 * is ST_EX_IDENTITY with nothing changed, the message giving both safety
 * numbers when me and me_user are set.  p gets the pin.  Lock held.
 */
int st_peer_check(const char *user, const struct st_identity_pub *served,
                  int64_t now_ms, const struct st_identity_pub *me,
                  const char *me_user, struct st_peer *p, int *pinned);
/*
 * Accept id as user's identity: a new pin (trust back to tofu) and the
 * ratchet state with user removed, so the next send starts a new X3DH.
 * The same identity again changes nothing (*changed = 0).  Lock held.
 */
int st_peer_trust(const char *user, const struct st_identity_pub *id,
                  int64_t now_ms, struct st_peer *p, int *changed);
/*
 * Mark the pin verified when digits (spaces and dashes ignored) are the
 * safety number of (me, me_user) and the pin; ST_EX_NO otherwise, and
 * ST_EX_NOINPUT when user is not pinned.  Lock held.
 */
int st_peer_verify(const char *user, const struct st_identity_pub *me,
                   const char *me_user, const char *digits,
                   struct st_peer *p);
/* Drop the pin and the ratchet state: ST_EX_NO when not pinned. */
int st_peer_forget(const char *user);
/* Remove ratchet/NAME.json if present. */
int st_peer_drop_session(const char *user);
/* Pinned user names, sorted; free with st_peer_list_free(). */
int st_peer_list(char ***names, size_t *n);
void st_peer_list_free(char **names, size_t n);

/* ---- account.c: the account on the relay and prekey upkeep (SPEC §7) ---- */

/* ST_EX_USAGE unless the password has 8 to 1024 bytes. */
int st_account_password_ok(const char *pw);
/* ST_EX_USAGE unless name follows the username rule (the message shows
 * the name escaped, at most 64 bytes of it). */
int st_account_name_ok(const char *name);
/* The registered user name from the config ("user"): ST_EX_CONFIG when
 * missing or malformed.  Borrowed from cfg. */
int st_account_user(const struct st_json *cfg, const char **user);
/*
 * POST /v1/accounts with our identity, current signed prekey and 100
 * fresh one-time prekeys (added to pk and saved first, so none the relay
 * handed out before a deletion comes back).  A taken name is ST_EX_NO.
 * Lock held.
 */
int st_account_register(struct st_relay *r, const char *user,
                        const char *password, const struct st_identity *id,
                        struct st_prekeys *pk);
/*
 * POST /v1/sessions: saves the token to $ST_HOME/token (0600) and its
 * expiry to the config ("token_expires"), revokes the token it replaces,
 * and leaves r using the new one.  Wrong password: ST_EX_NOPERM.
 */
int st_account_login(struct st_relay *r, const char *user,
                     const char *password, int64_t *expires);
/* DELETE /v1/sessions/current, then forget the token locally (a token
 * the relay no longer knows counts as revoked). */
int st_account_logout(struct st_relay *r);
/* Remove $ST_HOME/token and the expiry from the config. */
int st_account_forget_token(void);
/*
 * GET /v1/users/USER: the identity the relay serves for user (binding
 * verified, the record checked to be user's) and when the account was
 * created.  No such user: ST_EX_NO; a bad name ST_EX_USAGE; a malformed
 * record ST_EX_DATAERR.
 */
int st_account_lookup(struct st_relay *r, const char *user,
                      struct st_identity_pub *id, int64_t *created);
/* Record "no such user: USER at URL" (ST_EX_NO), pointing at st-users;
 * always returns -1.  The one wording every command uses. */
int st_account_no_user(const struct st_relay *r, const char *user);
/*
 * DELETE /v1/accounts/me with the password; then the token and the
 * config's "user" go (keys, peers and the vault stay).  Wrong password:
 * ST_EX_NOPERM, nothing changed.
 */
int st_account_delete(struct st_relay *r, const char *password);

/* What an upkeep run did. */
struct st_upkeep {
	int64_t relay_opks;             /* one-time prekeys on the relay now */
	size_t opks_added;
	int spk_rotated, spk_uploaded, spks_dropped;
};
/*
 * Prekey upkeep (st-login, st-recv): GET /v1/keys; drop previous signed
 * prekeys past 30 days; rotate the signed prekey after 7 days (or upload
 * it when the relay has another); refill one-time prekeys to 100 when
 * fewer than 20 remain.  pk is saved before anything is uploaded.  r
 * carries the token; the caller holds the home lock.
 */
int st_account_upkeep(struct st_relay *r, const struct st_identity *id,
                      struct st_prekeys *pk, int64_t now_ms,
                      struct st_upkeep *u);
/* The same, loading (and freeing) the identity and prekeys itself. */
int st_account_upkeep_home(struct st_relay *r, int64_t now_ms,
                           struct st_upkeep *u);

/* ---- messaging: blob.c, outbox.c, send.c, inbox.c, recv.c, recvstore.c,
 *      hook.c (st-send, st-recv) ---- */

/*
 * Attachments (SPEC §5).  The blob of an n-byte file is the 16-byte nonce
 * and the STREAM chunks: st_blob_size(n) bytes.  st_blob_id_ok() is 1 for
 * a relay blob id that is safe in a URL path (1..128 of [A-Za-z0-9_-]).
 */
uint64_t st_blob_size(uint64_t n);
int st_blob_id_ok(const char *id);
/*
 * Encrypt size bytes read from fd under a fresh file key (written to key)
 * and stream them to POST /v1/blobs with a Content-Length, in constant
 * memory (a helper thread encrypts into a pipe libcurl reads); a progress
 * bar goes to stderr when it is a terminal.  *id (malloc'd) gets the blob
 * id.  A file that changes size meanwhile: ST_EX_DATAERR; relay errors as
 * st_relay_call().
 */
int st_blob_upload(struct st_relay *r, int fd, uint64_t size,
                   unsigned char key[16], char **id);
/*
 * Download blob id and give its size bytes of plaintext, each chunk once
 * it has authenticated, to the sink.  Tampered, truncated or of another
 * size: ST_EX_DATAERR (the sink may have had the authenticated start).
 */
int st_blob_download(struct st_relay *r, const char *id, uint64_t size,
                     const unsigned char key[16], st_sink_fn sink,
                     void *ctx);

/*
 * ratchet/NAME.json: load (an empty state when the file is missing; a
 * malformed file is ST_EX_DATAERR naming it) and commit durably (atomic,
 * 0600, fsynced).  Lock held for saving.
 */
struct st_ratchet *st_session_load(const char *user);
int st_session_save(const char *user, const struct st_ratchet *r);
/* The same state written to a temporary in a, for st_atomic_commit_*(). */
int st_session_prepare(const char *user, const struct st_ratchet *r,
                       struct st_atomic *a);

/*
 * outbox/: one file per ciphertext committed but not yet accepted by the
 * relay, {v, to, to_ik, client_id, msgid, envelope}, named so that names
 * sort oldest first.  Entries are never re-encrypted: a retry posts the
 * same bytes with the same client_id, which the relay recognises.
 */
#define ST_OUTBOX_NAME_MAX 64
enum { ST_OUTBOX_KEPT = 0, ST_OUTBOX_SENT, ST_OUTBOX_REFUSED };
struct st_outbox_entry {
	char name[ST_OUTBOX_NAME_MAX];  /* file name in outbox/ */
	char to[ST_USER_MAX + 1];
	char msgid[33];
	int status;                     /* ST_OUTBOX_* after a flush */
	char relay_id[32];              /* SENT: the relay's message id */
	int code;                       /* REFUSED: ST_EX_NO, ST_EX_IDENTITY,
	                                   ST_EX_DATAERR */
	char why[512];                  /* REFUSED: what the relay said */
};
/*
 * Queue env for to (whose identity, to_id, the session was built for):
 * the entry is written atomically (0600, fsynced) and named in name.
 * Lock held.
 */
int st_outbox_add(const char *to, const struct st_identity_pub *to_id,
                  const char *msgid, const struct st_envelope *env,
                  char name[ST_OUTBOX_NAME_MAX]);
/* The same entry written to a temporary in a, for st_atomic_commit_*(). */
int st_outbox_prepare(const char *to, const struct st_identity_pub *to_id,
                      const char *msgid, const struct st_envelope *env,
                      char name[ST_OUTBOX_NAME_MAX], struct st_atomic *a);
/*
 * Post every queued entry, oldest first, at most 100 per request.  Each
 * accepted entry is removed (SENT, with its relay id); an entry refused
 * for good (404 unknown_user, 409 identity_changed, or any other 4xx for
 * that entry alone) is removed and REFUSED, and the rest are posted again
 * at once; on a relay failure (network, 5xx, 429, 401) the remaining
 * entries stay KEPT and the call returns -1 with that error.  *e
 * (st_outbox_free()) lists every entry seen, in order.  me and me_user
 * (may be NULL) let a 409 name both safety numbers.  Lock held.
 */
int st_outbox_flush(struct st_relay *r, const struct st_identity_pub *me,
                    const char *me_user, struct st_outbox_entry **e,
                    size_t *n);
void st_outbox_free(struct st_outbox_entry *e, size_t n);
/* How many entries are queued (0 when there is no outbox). */
int st_outbox_count(size_t *n);

/* What st_send_queue() sends. */
struct st_send {
	const char *const *to;          /* recipients, command-line order */
	size_t nto;
	const unsigned char *body;      /* may be NULL when only files go */
	size_t bodylen;
	int has_body;
	const char *const *files;       /* paths to attach */
	size_t nfiles;
	int trust_new;                  /* --trust-new=always */
	const char *const *group;       /* the "to" list when it is not `to` */
	size_t ngroup;                  /* (a resend to part of a group) */
	int keep_msgid;                 /* msgid is given: reuse it */
	int identity_loaded;            /* in/out: 0 while *me is still empty;
	                                   it is loaded from the keystore when
	                                   a recipient needs a new session */
	/* filled in: */
	char msgid[33];
	char (*queued)[ST_OUTBOX_NAME_MAX]; /* nto names of outbox entries */
};
/*
 * st-send's work up to the relay (SPEC §4 "State discipline"): resolve
 * every recipient first (pinned peer with a session; else the directory,
 * a TOFU pin and a bundle whose identity must equal the pin: unknown user
 * ST_EX_NO, changed identity ST_EX_IDENTITY with both safety numbers,
 * unless trust_new, which accepts it), upload the attachments, encode the
 * inner message once (too large: ST_EX_DATAERR), then per recipient
 * encrypt, commit ratchet/NAME.json durably and only then queue the
 * envelope in outbox/.  Nothing is queued for anyone unless every
 * recipient resolved.  s->queued is malloc'd (free it).  Lock held.
 */
int st_send_queue(struct st_relay *r, struct st_identity *me,
                  const char *me_user, struct st_send *s);
/* The largest inner message (padded) whose envelope the relay takes. */
size_t st_send_max_plain(void);
/*
 * Accept the identity the directory serves for user now (the relay
 * refused a message with 409 identity_changed and --trust-new=always is
 * given): a new pin, and the old session dropped.  Lock held.
 */
int st_send_retrust(struct st_relay *r, const char *user);

/*
 * inbox.c: st-recv's journal $ST_HOME/inbox.log (format in inbox.c): per
 * relay message id, the vault ids chosen before storing, the sender and
 * message id, a hash of the envelope, and whether it was finished (done)
 * and how its hook went.  Lock held throughout.
 */
#define ST_INBOX_FILES_MAX 1400
struct st_inbox_rec {
	char relay[32];
	char item[21];                  /* vault id or "-" */
	char from[ST_USER_MAX + 1];     /* or "-" */
	char msgid[33];                 /* or "-" (undecryptable) */
	char hash[33];                  /* 16 bytes hex, or "-" */
	int64_t ts;
	const char *files;              /* vault ids joined by ',' or "-"
	                                   (at most ST_INBOX_FILES_MAX bytes);
	                                   the journal keeps its own copy */
	int done, hook_failed, hook_done;
};
struct st_inbox;
struct st_inbox *st_inbox_open(void);
void st_inbox_close(struct st_inbox *b);
/* The record of a relay id, or NULL. */
const struct st_inbox_rec *st_inbox_find(struct st_inbox *b,
                                         const char *relay_id);
/* A finished record with this (from, msgid), or with this envelope hash. */
const struct st_inbox_rec *st_inbox_find_msg(struct st_inbox *b,
                                             const char *from,
                                             const char *msgid);
const struct st_inbox_rec *st_inbox_find_hash(struct st_inbox *b,
                                              const char *hash);
/* Append a P record (fsynced) before anything of it is stored. */
int st_inbox_begin(struct st_inbox *b, const struct st_inbox_rec *r);
/* Append a mark: 'D' done, 'X' hook failed, 'H' hook done (fsynced). */
int st_inbox_mark(struct st_inbox *b, const char *relay_id, char what);

/*
 * st-recv.  Per message: dedupe (relay id, message id, envelope hash) ->
 * decrypt on a copy -> journal entry naming the vault ids it will use ->
 * attachments and message into the vault -> ratchet (and prekeys) commit
 * -> done mark -> (lock released) print and hook -> ack.  A rerun after a
 * crash at any point finds the journal entry and finishes the message
 * without storing it twice or leaving a message key usable.  The journal
 * is $ST_HOME/inbox.log (format in inbox.c and doc/st-recv.1).
 */
struct st_recv_opts {
	const char *from;               /* only this sender, or NULL */
	const char *outdir;             /* -o DIR, or NULL */
	int no_vault;                   /* --no-vault */
	const char *exec;               /* --exec CMD, or NULL */
};
struct st_recv_file {
	const char *name;               /* safe basename */
	uint64_t size;
	const char *item;               /* vault id, or "" */
	const char *path;               /* where -o saved it, or NULL */
	const char *error;              /* why it is missing, or NULL */
};
/* One message handed to the printer; borrowed for the call. */
struct st_recv_msg {
	const char *relay_id;
	const char *from;
	int64_t relay_ts;
	const struct st_msg *m;         /* the inner message */
	const char *item;               /* the message's vault id, or "" */
	const struct st_recv_file *files;
	size_t nfiles;
};
typedef int (*st_recv_print_fn)(void *ctx, const struct st_recv_msg *m);
typedef void (*st_recv_note_fn)(void *ctx, const char *msg);
struct st_recv_stats {
	size_t delivered;               /* new messages stored and shown */
	size_t undecryptable;           /* kept as undecryptable (exit 65) */
	size_t identity;                /* left on the relay (exit 67) */
	size_t hook_failed;             /* left unacknowledged */
	size_t file_errors;             /* attachments that could not be had */
	size_t duplicates;              /* redeliveries and replays dropped */
};
struct st_recv;
/* me and user are borrowed for the life of the handle. */
struct st_recv *st_recv_new(struct st_relay *r, const struct st_identity *me,
                            const char *user, const struct st_recv_opts *o,
                            st_recv_print_fn print, st_recv_note_fn note,
                            void *ctx);
void st_recv_free(struct st_recv *c);
/*
 * One round: GET /v1/messages (waiting up to wait s, at most limit
 * messages) without the lock, then handle them under the home lock
 * (timeout lock_ms: ST_EX_TEMPFAIL), print and run hooks without it, then
 * acknowledge.  *handled gets the number of messages that counted (new,
 * undecryptable), *pending those left on the relay on purpose (other
 * senders, identity changed, failed hooks); stats accumulate.  Errors
 * (relay, lock, disk) return -1 with what was done so far kept.
 */
int st_recv_poll(struct st_recv *c, int wait, int limit, int lock_ms,
                 size_t *handled, size_t *pending, struct st_recv_stats *st);
/* The same message passed to a hook: /bin/sh -c cmd with body on stdin
 * and ST_FROM, ST_ID, ST_TS, ST_TO, ST_FILES, ST_ITEM in the environment
 * (st-recv(1) says what each holds).
 * Returns the exit status (0 ok), or -1 when it could not be run. */
int st_recv_hook(const char *cmd, const struct st_recv_msg *m);

#endif
