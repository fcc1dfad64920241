/*
 * keystore.c - the local secret key files of SPEC §3: identity.json,
 * prekeys.json and (the wrapping of) vault.key, each written atomically
 * with mode 0600 by a caller that holds the home lock.
 *
 * A home may be passphrase-protected: then every one of those files is a
 * JSON wrapper holding its plaintext sealed with ChaCha20-Poly1305 under a
 * key derived from the passphrase with Argon2id (format in doc/st.5,
 * "Protected key files").  Argon2 at 64 MiB costs a noticeable fraction of
 * a second, so a process derives each (salt, parameters) once and keeps
 * the result in a small cache wiped at exit; st-keygen gives all three
 * files one salt, so a command that opens them all runs Argon2 once.
 *
 * Whether writes wrap is decided by identity.json (wrapped or not) unless
 * st-keygen says otherwise with st_keystore_set_protect().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <argon2.h>

#include "internal.h"

#define FILE_MAX (1024 * 1024)
#define WRAP_NAME "argon2id-chacha20poly1305"
#define WRAP_M 65536            /* KiB: 64 MiB */
#define WRAP_T 3
#define WRAP_P 1
#define SALT_LEN 16
#define CHECK_LEN 16
#define SLOTS 4
#define TTY_TRIES 3
#define OPK_KEEP 1000           /* unused one-time prekey secrets kept */

static const char AD_CTX[] = "st-wrap-v1";

/* One derived master key per (salt, m, t, p) seen by this process. */
struct slot {
	unsigned char salt[SALT_LEN];
	uint32_t m, t, p;
	unsigned char master[32];
};

static struct {
	const char *file;       /* --passphrase-file, or NULL for /dev/tty */
	char *pass;             /* the passphrase once read */
	int protect;            /* -1: decide from identity.json */
	struct slot slots[SLOTS];
	int nslots;
	int wslot;              /* slot new wrapped files use, -1 none yet */
	int atexit_set;
} ks = { NULL, NULL, -1, { { { 0 }, 0, 0, 0, { 0 } } }, 0, -1, 0 };

static void forget_all(void)
{
	st_free_str_secret(ks.pass);
	ks.pass = NULL;
	st_wipe(ks.slots, sizeof(ks.slots));
	ks.nslots = 0;
	ks.wslot = -1;
}

static void arm_atexit(void)
{
	if (!ks.atexit_set) {
		atexit(forget_all);
		ks.atexit_set = 1;
	}
}

void st_keystore_set_passphrase_file(const char *file)
{
	ks.file = file;
}

void st_keystore_set_protect(int on)
{
	ks.protect = on ? 1 : 0;
}

static void be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* ---- the wrapping ---- */

static int derive(const char *pass, const unsigned char salt[SALT_LEN],
                  uint32_t m, uint32_t t, uint32_t p,
                  unsigned char master[32])
{
	int rc = argon2id_hash_raw(t, m, p, pass, strlen(pass), salt, SALT_LEN,
	                           master, 32);

	if (rc != ARGON2_OK)
		return st_error(rc == ARGON2_MEMORY_ALLOCATION_ERROR ?
		                ST_EX_TEMPFAIL : ST_EX_DATAERR,
		                "argon2id failed: %s", argon2_error_message(rc));
	return 0;
}

/* The AEAD key and the passphrase check value from a master key. */
static int subkeys(const unsigned char master[32], unsigned char key[32],
                   unsigned char check[CHECK_LEN])
{
	static const char KEY_INFO[] = "st-wrap-key-v1";
	static const char CHECK_INFO[] = "st-wrap-check-v1";

	if (st_hkdf_sha256(master, 32, NULL, 0, KEY_INFO, strlen(KEY_INFO),
	                   key, 32) < 0 ||
	    st_hkdf_sha256(master, 32, NULL, 0, CHECK_INFO, strlen(CHECK_INFO),
	                   check, CHECK_LEN) < 0)
		return -1;
	return 0;
}

/* "st-wrap-v1" || be32(m) || be32(t) || be32(p) || salt [|| identity]. */
static size_t wrap_ad(const struct slot *s, const struct st_identity_pub *pub,
                      unsigned char *ad)
{
	size_t n = sizeof(AD_CTX) - 1;

	memcpy(ad, AD_CTX, n);
	be32(ad + n, s->m);
	be32(ad + n + 4, s->t);
	be32(ad + n + 8, s->p);
	memcpy(ad + n + 12, s->salt, SALT_LEN);
	n += 12 + SALT_LEN;
	if (pub) {
		st_identity_encode(pub, ad + n);
		n += ST_ID_ENC_LEN;
	}
	return n;
}

#define AD_MAX (sizeof(AD_CTX) - 1 + 12 + SALT_LEN + ST_ID_ENC_LEN)

/* Seal pt under slot s into the wrapper JSON text (malloc'd, with LF). */
static char *seal(const struct slot *s, const struct st_identity_pub *pub,
                  const void *pt, size_t n)
{
	unsigned char key[32], check[CHECK_LEN], nonce[12], ad[AD_MAX];
	unsigned char *ct = NULL;
	struct st_json *o = NULL;
	char *js, *out = NULL;
	size_t adlen;

	if (subkeys(s->master, key, check) < 0 || st_random(nonce, 12) < 0)
		goto out;
	adlen = wrap_ad(s, pub, ad);
	ct = st_malloc(n + ST_AEAD_TAG_LEN);
	if (st_aead_seal(key, nonce, ad, adlen, pt, n, ct) < 0)
		goto out;
	o = st_json_object();
	st_json_set_int(o, "v", 1);
	st_json_set_str(o, "wrap", WRAP_NAME);
	st_json_set_int(o, "m", s->m);
	st_json_set_int(o, "t", s->t);
	st_json_set_int(o, "p", s->p);
	st_json_set_b64(o, "salt", s->salt, SALT_LEN);
	st_json_set_b64(o, "check", check, CHECK_LEN);
	st_json_set_b64(o, "nonce", nonce, 12);
	st_json_set_b64(o, "ct", ct, n + ST_AEAD_TAG_LEN);
	if (pub)
		st_json_set(o, "public", st_identity_to_json(pub));
	js = st_json_dump(o);
	out = st_malloc(strlen(js) + 2);
	strcpy(out, js);
	strcat(out, "\n");
	free(js);
out:
	st_wipe(key, sizeof(key));
	free(ct);
	st_json_free(o);
	return out;
}

/* A parsed wrapper: everything but the key. */
struct wrapped {
	struct slot s;                  /* salt and parameters; no master */
	unsigned char check[CHECK_LEN], nonce[12];
	unsigned char *ct;
	size_t ctlen;
	int has_pub;
	struct st_identity_pub pub;
};

static int parse_wrapper(const struct st_json *j, struct wrapped *w)
{
	static const char *const keys[] = { "v", "wrap", "m", "t", "p", "salt",
	                                    "check", "nonce", "ct", "public",
	                                    NULL };
	const char *name;
	int64_t v, m, t, p;
	struct st_json *pj;

	memset(w, 0, sizeof(*w));
	if (st_json_only(j, keys) < 0 ||
	    st_json_get_int(j, "v", 1, 1, &v) < 0 ||
	    st_json_get_str(j, "wrap", &name, NULL) < 0)
		return -1;
	if (strcmp(name, WRAP_NAME))
		return st_error(ST_EX_DATAERR, "unknown wrapping '%.40s'", name);
	/* bounds keep a doctored file from asking for absurd work */
	if (st_json_get_int(j, "m", 1024, 1024 * 1024, &m) < 0 ||
	    st_json_get_int(j, "t", 1, 32, &t) < 0 ||
	    st_json_get_int(j, "p", 1, 16, &p) < 0 ||
	    st_json_get_b64(j, "salt", w->s.salt, SALT_LEN) < 0 ||
	    st_json_get_b64(j, "check", w->check, CHECK_LEN) < 0 ||
	    st_json_get_b64(j, "nonce", w->nonce, 12) < 0 ||
	    st_json_get_b64_alloc(j, "ct", FILE_MAX, &w->ct, &w->ctlen) < 0)
		return -1;
	w->s.m = (uint32_t)m;
	w->s.t = (uint32_t)t;
	w->s.p = (uint32_t)p;
	if (w->ctlen < ST_AEAD_TAG_LEN) {
		free(w->ct);
		w->ct = NULL;
		return st_error(ST_EX_DATAERR, "field 'ct' is too short");
	}
	if ((pj = st_json_get(j, "public"))) {
		if (st_identity_from_json(pj, &w->pub) < 0) {
			free(w->ct);
			w->ct = NULL;
			return -1;
		}
		w->has_pub = 1;
	}
	return 0;
}

/* 1 when master opens wrapper w (its check value matches), else 0. */
static int check_ok(const struct wrapped *w, const unsigned char master[32])
{
	unsigned char key[32], check[CHECK_LEN];
	int ok = subkeys(master, key, check) == 0 &&
	         st_memeq_ct(check, w->check, CHECK_LEN) == 0;

	st_wipe(key, sizeof(key));
	st_wipe(check, sizeof(check));
	return ok;
}

static int open_sealed(const struct wrapped *w, const unsigned char master[32],
                       const char *what, unsigned char **pt, size_t *ptlen)
{
	unsigned char key[32], check[CHECK_LEN], ad[AD_MAX];
	struct slot s = w->s;
	size_t adlen, n = w->ctlen - ST_AEAD_TAG_LEN;
	unsigned char *out;
	int rc;

	if (subkeys(master, key, check) < 0)
		return -1;
	adlen = wrap_ad(&s, w->has_pub ? &w->pub : NULL, ad);
	/* one byte more, so an empty plaintext still has a buffer */
	out = st_malloc(n + 1);
	rc = st_aead_open(key, w->nonce, ad, adlen, w->ct, w->ctlen, out);
	st_wipe(key, sizeof(key));
	st_wipe(check, sizeof(check));
	if (rc < 0) {
		free(out);
		return st_error(ST_EX_DATAERR, "%s: corrupt or tampered "
		                "(authentication failed)", what);
	}
	out[n] = '\0';
	*pt = out;
	*ptlen = n;
	return 0;
}

static void wrapped_free(struct wrapped *w)
{
	free(w->ct);
	w->ct = NULL;
}

/* The wrapper object when buf is one, else NULL (no error recorded). */
static struct st_json *as_wrapper(const void *buf, size_t n, const char *what)
{
	const unsigned char *p = buf;
	struct st_json *j;
	size_t i = 0;

	while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\t' ||
	                 p[i] == '\r'))
		i++;
	if (i == n || p[i] != '{')
		return NULL;
	j = st_json_parse(buf, n, FILE_MAX, what);
	if (j && (!st_json_is_object(j) || !st_json_get(j, "wrap"))) {
		st_json_free_secret(j);
		j = NULL;
	}
	st_error_clear();
	return j;
}

int st_keystore_is_wrapped(const void *buf, size_t n)
{
	struct st_json *j = as_wrapper(buf, n, "key file");

	st_json_free_secret(j);
	return j != NULL;
}

int st_keystore_wrap(const char *passphrase, const struct st_identity_pub *pub,
                     const void *pt, size_t n, char **out)
{
	struct slot s = { .m = WRAP_M, .t = WRAP_T, .p = WRAP_P };

	*out = NULL;
	if (st_random(s.salt, SALT_LEN) < 0 ||
	    derive(passphrase, s.salt, s.m, s.t, s.p, s.master) < 0) {
		st_wipe(&s, sizeof(s));
		return -1;
	}
	*out = seal(&s, pub, pt, n);
	st_wipe(&s, sizeof(s));
	return *out ? 0 : -1;
}

int st_keystore_unwrap(const char *passphrase, const char *what,
                       const void *in, size_t n, unsigned char **pt,
                       size_t *ptlen)
{
	struct st_json *j;
	struct wrapped w;
	unsigned char master[32];
	int rc = -1;

	*pt = NULL;
	if (!(j = st_json_parse(in, n, FILE_MAX, what)))
		return -1;
	if (!st_json_is_object(j) || parse_wrapper(j, &w) < 0) {
		st_json_free(j);
		return st_error_ctx("%s", what);
	}
	st_json_free(j);
	if (derive(passphrase, w.s.salt, w.s.m, w.s.t, w.s.p, master) < 0)
		goto out;
	if (!check_ok(&w, master))
		rc = st_error(ST_EX_NOPERM, "wrong passphrase for %s", what);
	else
		rc = open_sealed(&w, master, what, pt, ptlen);
out:
	st_wipe(master, sizeof(master));
	wrapped_free(&w);
	return rc;
}

/* ---- the passphrase and the cache ---- */

static const char *passphrase(const char *prompt)
{
	if (!ks.pass) {
		arm_atexit();
		ks.pass = st_read_secret(ks.file, prompt);
	}
	return ks.pass;
}

static int add_slot(const struct slot *s)
{
	int i = ks.nslots < SLOTS ? ks.nslots++ : SLOTS - 1;

	ks.slots[i] = *s;
	return i;
}

int st_keystore_new_passphrase(void)
{
	struct slot s = { .m = WRAP_M, .t = WRAP_T, .p = WRAP_P };
	char *again;
	int rc;

	arm_atexit();
	/* a passphrase file holds one passphrase, and may be a pipe that
	 * cannot be read twice: when it already opened the old keys (st-keygen
	 * -f --protect), the same passphrase wraps the new ones */
	if (ks.file && ks.pass)
		goto derive;
	st_free_str_secret(ks.pass);
	ks.pass = NULL;
	if (!(ks.pass = st_read_secret(ks.file, "new passphrase: ")))
		return -1;
	if (!ks.file) {
		if (!(again = st_read_secret(NULL, "new passphrase again: ")))
			return -1;
		rc = strcmp(again, ks.pass);
		st_free_str_secret(again);
		if (rc) {
			st_free_str_secret(ks.pass);
			ks.pass = NULL;
			return st_error(ST_EX_USAGE, "passphrases do not match");
		}
	}
derive:
	if (st_random(s.salt, SALT_LEN) < 0 ||
	    derive(ks.pass, s.salt, s.m, s.t, s.p, s.master) < 0) {
		st_wipe(&s, sizeof(s));
		return -1;
	}
	ks.wslot = add_slot(&s);
	st_wipe(&s, sizeof(s));
	ks.protect = 1;
	return 0;
}

/* The master key opening w: from the cache, or from the passphrase. */
static int master_for(const struct wrapped *w, const char *what,
                      unsigned char master[32])
{
	struct slot s = w->s;
	char prompt[512];

	for (int i = 0; i < ks.nslots; i++) {
		const struct slot *c = &ks.slots[i];

		if (!memcmp(c->salt, s.salt, SALT_LEN) && c->m == s.m &&
		    c->t == s.t && c->p == s.p && check_ok(w, c->master)) {
			memcpy(master, c->master, 32);
			return 0;
		}
	}
	snprintf(prompt, sizeof(prompt), "passphrase for %s: ", what);
	for (int tries = 0;; tries++) {
		if (!passphrase(prompt) ||
		    derive(ks.pass, s.salt, s.m, s.t, s.p, s.master) < 0)
			break;
		if (check_ok(w, s.master)) {
			memcpy(master, s.master, 32);
			if (ks.wslot < 0)
				ks.wslot = add_slot(&s);
			else
				add_slot(&s);
			st_wipe(&s, sizeof(s));
			return 0;
		}
		/* a file gives one answer; a person may mistype */
		st_free_str_secret(ks.pass);
		ks.pass = NULL;
		if (ks.file || tries + 1 >= TTY_TRIES) {
			st_wipe(&s, sizeof(s));
			return st_error(ST_EX_NOPERM, "wrong passphrase for %s",
			                what);
		}
		st_warn("wrong passphrase for %s; try again", what);
	}
	st_wipe(&s, sizeof(s));
	return -1;
}

/* ---- files ---- */

/* Read a whole key file into a wiped-on-growth buffer. */
static int read_secret_file(const char *path, unsigned char **out,
                            size_t *outlen)
{
	struct st_buf b;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return st_error(errno == ENOENT ? ST_EX_NOINPUT : ST_EX_DATAERR,
		                "cannot open %s:", path);
	st_buf_init(&b, 1);
	for (;;) {
		st_buf_reserve(&b, 4096);
		r = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		b.len += (size_t)r;
		if (b.len > FILE_MAX) {
			close(fd);
			st_buf_free(&b);
			return st_error(ST_EX_DATAERR, "%s: larger than %d bytes",
			                path, FILE_MAX);
		}
	}
	close(fd);
	if (r < 0) {
		st_buf_free(&b);
		return st_error(ST_EX_DATAERR, "cannot read %s:", path);
	}
	b.data[b.len] = '\0';
	*out = b.data;
	*outlen = b.len;
	return 0;
}

/*
 * Read path, unwrapping it when it is wrapped; *pub (may be NULL) gets the
 * wrapper's public identity when there is one (*haspub says so).
 */
static int read_key(const char *path, unsigned char **out, size_t *outlen,
                    struct st_identity_pub *pub, int *haspub)
{
	unsigned char *buf, master[32];
	struct st_json *j;
	struct wrapped w;
	size_t n;
	int rc;

	if (haspub)
		*haspub = 0;
	if (read_secret_file(path, &buf, &n) < 0)
		return -1;
	if (!(j = as_wrapper(buf, n, path))) {
		*out = buf;
		*outlen = n;
		return 0;
	}
	st_free_secret(buf, n);
	rc = parse_wrapper(j, &w);
	st_json_free(j);
	if (rc < 0)
		return st_error_ctx("%s", path);
	if (pub && w.has_pub) {
		*pub = w.pub;
		*haspub = 1;
	}
	rc = master_for(&w, path, master);
	if (rc == 0)
		rc = open_sealed(&w, master, path, out, outlen);
	st_wipe(master, sizeof(master));
	wrapped_free(&w);
	return rc;
}

int st_keystore_read(const char *path, unsigned char **out, size_t *outlen)
{
	return read_key(path, out, outlen, NULL, NULL);
}

int st_keystore_file_wrapped(const char *path)
{
	unsigned char *buf;
	size_t n;
	int w;

	if (read_secret_file(path, &buf, &n) < 0)
		return -1;
	w = st_keystore_is_wrapped(buf, n);
	st_free_secret(buf, n);
	return w;
}

int st_keystore_protected(void)
{
	char *p;
	int w;

	if (ks.protect >= 0)
		return ks.protect;
	if (!(p = st_home_path("identity.json")))
		return -1;
	w = st_keystore_file_wrapped(p);
	if (w < 0 && st_errcode() == ST_EX_NOINPUT) {
		st_error_clear();
		w = 0;
	}
	free(p);
	if (w >= 0)
		ks.protect = w;
	return w;
}

/* Write data to path, wrapped when the home is protected. */
static int write_key(const char *path, const void *data, size_t n,
                     const struct st_identity_pub *pub)
{
	char *w;
	int rc, prot = st_keystore_protected();

	if (prot < 0)
		return -1;
	if (!prot)
		return st_write_atomic(path, data, n, 0600);
	if (ks.wslot < 0) {
		/* protected but nothing opened yet: derive with a new salt */
		struct slot s = { .m = WRAP_M, .t = WRAP_T, .p = WRAP_P };
		const char *pp = passphrase("passphrase for the safetalk keys: ");

		if (!pp || st_random(s.salt, SALT_LEN) < 0 ||
		    derive(pp, s.salt, s.m, s.t, s.p, s.master) < 0) {
			st_wipe(&s, sizeof(s));
			return -1;
		}
		ks.wslot = add_slot(&s);
		st_wipe(&s, sizeof(s));
	}
	if (!(w = seal(&ks.slots[ks.wslot], pub, data, n)))
		return -1;
	rc = st_write_atomic(path, w, strlen(w), 0600);
	free(w);
	return rc;
}

int st_keystore_write(const char *path, const void *data, size_t n)
{
	return write_key(path, data, n, NULL);
}

int st_keystore_rewrite(const char *path)
{
	unsigned char *buf;
	size_t n;
	int rc;

	if (st_keystore_read(path, &buf, &n) < 0)
		return -1;
	rc = write_key(path, buf, n, NULL);
	st_free_secret(buf, n);
	return rc;
}

/* Parse a key file's JSON (secret) and name the file in any error. */
static struct st_json *parse_secret(unsigned char *buf, size_t n,
                                    const char *path)
{
	struct st_json *j = st_json_parse((char *)buf, n, FILE_MAX, path);

	st_free_secret(buf, n);
	if (j && !st_json_is_object(j)) {
		st_json_free_secret(j);
		st_error(ST_EX_DATAERR, "%s is not a JSON object", path);
		return NULL;
	}
	return j;
}

/* A key file is missing: no keys at all is a configuration problem. */
static int missing(const char *path)
{
	if (st_errcode() != ST_EX_NOINPUT)
		return -1;
	if (strstr(path, "identity.json"))
		return st_error(ST_EX_CONFIG, "no keys in %s: run st-keygen",
		                st_home());
	return st_error(ST_EX_NOINPUT, "missing key file %s: put back a copy, "
	                "or make new keys (a new identity) with st-keygen -f",
	                path);
}

/* ---- the identity ---- */

int st_keystore_has_keys(void)
{
	char *p = st_home_path("identity.json");
	struct stat st;
	int rc;

	if (!p)
		return -1;
	rc = lstat(p, &st) == 0;
	free(p);
	return rc;
}

int st_keystore_load_identity(struct st_identity *id)
{
	char *p = st_home_path("identity.json");
	struct st_identity_pub pub;
	struct st_json *j;
	unsigned char *buf;
	size_t n;
	int haspub, rc = -1;

	if (!p)
		return -1;
	if (read_key(p, &buf, &n, &pub, &haspub) < 0) {
		missing(p);
		goto out;
	}
	if (!(j = parse_secret(buf, n, p)))
		goto out;
	rc = st_identity_secret_from_json(j, id);
	st_json_free_secret(j);
	if (rc < 0)
		st_error_ctx("%s", p);
	else if (haspub && memcmp(&pub, &id->pub, sizeof(pub)))
		rc = st_error(ST_EX_DATAERR, "%s: public identity does not "
		              "match the secret keys", p);
	if (rc < 0)
		st_identity_wipe(id);
out:
	free(p);
	return rc;
}

int st_keystore_save_identity(const struct st_identity *id)
{
	char *p, *s;
	struct st_json *j;
	int rc;

	if (st_home_ensure() < 0 || !(p = st_home_path("identity.json")))
		return -1;
	j = st_identity_secret_to_json(id);
	s = st_json_dump(j);
	st_json_free_secret(j);
	rc = write_key(p, s, strlen(s), &id->pub);
	st_free_str_secret(s);
	free(p);
	return rc;
}

int st_keystore_identity_pub(struct st_identity_pub *pub)
{
	char *p = st_home_path("identity.json");
	unsigned char *buf;
	struct st_json *j;
	struct wrapped w;
	struct st_identity id;
	size_t n;
	int rc = -1;

	if (!p)
		return -1;
	if (read_secret_file(p, &buf, &n) < 0) {
		missing(p);
		goto out;
	}
	/* a protected file carries its public half in the clear */
	if ((j = as_wrapper(buf, n, p))) {
		st_free_secret(buf, n);
		rc = parse_wrapper(j, &w);
		st_json_free(j);
		if (rc == 0 && !w.has_pub)
			rc = st_error(ST_EX_DATAERR, "missing field 'public'");
		if (rc == 0)
			*pub = w.pub;
		else
			st_error_ctx("%s", p);
		wrapped_free(&w);
		goto out;
	}
	if (!(j = parse_secret(buf, n, p)))
		goto out;
	rc = st_identity_secret_from_json(j, &id);
	st_json_free_secret(j);
	if (rc < 0)
		st_error_ctx("%s", p);
	else
		*pub = id.pub;
	st_identity_wipe(&id);
out:
	free(p);
	return rc;
}

/* ---- prekeys ---- */

void st_prekeys_free(struct st_prekeys *pk)
{
	if (pk->opk)
		st_free_secret(pk->opk, pk->nopk * sizeof(*pk->opk));
	st_wipe(pk, sizeof(*pk));
}

/* Append n fresh one-time prekeys with the next ids. */
int st_prekeys_add_opks(struct st_prekeys *pk, size_t n)
{
	struct st_opk *nv;

	if (pk->next_opk_id > UINT32_MAX - n)
		return st_error(ST_EX_DATAERR, "one-time prekey ids are used up");
	/* grow by hand: realloc would leave secrets behind */
	nv = st_calloc(pk->nopk + n + 1, sizeof(*nv));
	if (pk->nopk)
		memcpy(nv, pk->opk, pk->nopk * sizeof(*nv));
	for (size_t i = 0; i < n; i++)
		if (st_opk_generate((uint32_t)(pk->next_opk_id + i), NULL,
		                    &nv[pk->nopk + i]) < 0) {
			st_free_secret(nv, (pk->nopk + n + 1) * sizeof(*nv));
			return -1;
		}
	if (pk->opk)
		st_free_secret(pk->opk, pk->nopk * sizeof(*pk->opk));
	pk->opk = nv;
	pk->nopk += n;
	pk->next_opk_id += (uint32_t)n;
	/* keys handed out but never used should not live forever */
	if (pk->nopk > OPK_KEEP) {
		size_t drop = pk->nopk - OPK_KEEP;

		st_wipe(pk->opk, drop * sizeof(*pk->opk));
		memmove(pk->opk, pk->opk + drop, OPK_KEEP * sizeof(*pk->opk));
		st_wipe(pk->opk + OPK_KEEP, drop * sizeof(*pk->opk));
		pk->nopk = OPK_KEEP;
	}
	return 0;
}

int st_prekeys_init(struct st_prekeys *pk, const struct st_identity *id,
                    int64_t now_ms)
{
	memset(pk, 0, sizeof(*pk));
	pk->next_spk_id = 1;
	pk->next_opk_id = 1;
	if (st_prekeys_rotate(pk, id, now_ms) < 0 ||
	    st_prekeys_add_opks(pk, ST_OPK_TARGET) < 0) {
		st_prekeys_free(pk);
		return -1;
	}
	return 0;
}

int st_prekeys_rotate(struct st_prekeys *pk, const struct st_identity *id,
                      int64_t now_ms)
{
	struct st_spk s;

	if (pk->next_spk_id == 0 || pk->next_spk_id == UINT32_MAX)
		return st_error(ST_EX_DATAERR, "signed prekey ids are used up");
	if (st_spk_generate(id, pk->next_spk_id, NULL, now_ms, &s) < 0)
		return -1;
	/* the oldest previous key goes when there is no room left */
	if (pk->nspk == ST_SPK_KEEP)
		pk->nspk--;
	memmove(&pk->spk[1], &pk->spk[0], pk->nspk * sizeof(pk->spk[0]));
	memmove(&pk->retired[1], &pk->retired[0],
	        pk->nspk * sizeof(pk->retired[0]));
	if (pk->nspk)
		pk->retired[1] = now_ms;
	pk->spk[0] = s;
	pk->retired[0] = 0;
	pk->nspk++;
	pk->next_spk_id++;
	st_wipe(&s, sizeof(s));
	st_wipe(&pk->spk[pk->nspk], (ST_SPK_KEEP - pk->nspk) *
	        sizeof(pk->spk[0]));
	return 0;
}

int st_prekeys_expire(struct st_prekeys *pk, int64_t now_ms)
{
	size_t keep = pk->nspk ? 1 : 0;
	int dropped = 0;

	for (size_t i = 1; i < pk->nspk; i++) {
		if (now_ms - pk->retired[i] >= ST_SPK_KEEP_MS) {
			st_wipe(&pk->spk[i], sizeof(pk->spk[i]));
			dropped++;
			continue;
		}
		if (keep != i) {
			pk->spk[keep] = pk->spk[i];
			pk->retired[keep] = pk->retired[i];
			st_wipe(&pk->spk[i], sizeof(pk->spk[i]));
		}
		keep++;
	}
	pk->nspk = keep;
	return dropped;
}

const struct st_opk *st_prekeys_find_opk(const struct st_prekeys *pk,
                                         uint32_t id)
{
	for (size_t i = 0; i < pk->nopk; i++)
		if (pk->opk[i].id == id)
			return &pk->opk[i];
	return NULL;
}

int st_prekeys_use_opk(struct st_prekeys *pk, uint32_t id)
{
	for (size_t i = 0; i < pk->nopk; i++) {
		if (pk->opk[i].id != id)
			continue;
		memmove(&pk->opk[i], &pk->opk[i + 1],
		        (pk->nopk - i - 1) * sizeof(pk->opk[0]));
		pk->nopk--;
		st_wipe(&pk->opk[pk->nopk], sizeof(pk->opk[0]));
		return 0;
	}
	return st_error(ST_EX_NO, "no one-time prekey %lu",
	                (unsigned long)id);
}

void st_prekeys_set(const struct st_prekeys *pk, struct st_prekey_set *set)
{
	set->spk = pk->spk;
	set->nspk = pk->nspk;
	set->opk = pk->opk;
	set->nopk = pk->nopk;
}

static struct st_json *prekeys_to_json(const struct st_prekeys *pk)
{
	struct st_json *o = st_json_object(), *a = st_json_array();

	st_json_set_int(o, "v", 1);
	for (size_t i = 0; i < pk->nspk; i++) {
		struct st_json *s = st_spk_secret_to_json(&pk->spk[i]);

		if (i)
			st_json_set_int(s, "retired", pk->retired[i]);
		st_json_array_append(a, s);
	}
	st_json_set(o, "spks", a);
	a = st_json_array();
	for (size_t i = 0; i < pk->nopk; i++)
		st_json_array_append(a, st_opk_secret_to_json(&pk->opk[i]));
	st_json_set(o, "opks", a);
	st_json_set_int(o, "next_spk_id", pk->next_spk_id);
	st_json_set_int(o, "next_opk_id", pk->next_opk_id);
	return o;
}

static int spks_from_json(const struct st_json *a, struct st_prekeys *pk)
{
	size_t n = st_json_array_size(a);

	if (n < 1 || n > ST_SPK_KEEP)
		return st_error(ST_EX_DATAERR, "field 'spks' must hold 1 to %d "
		                "signed prekeys", ST_SPK_KEEP);
	for (size_t i = 0; i < n; i++) {
		const struct st_json *s = st_json_array_get(a, i);

		if (!st_json_is_object(s) ||
		    st_spk_secret_from_json(s, &pk->spk[i]) < 0)
			return st_error(ST_EX_DATAERR, "bad signed prekey %zu", i);
		pk->nspk = i + 1;
		if (i && st_json_get_int(s, "retired", 0, INT64_MAX,
		                         &pk->retired[i]) < 0)
			return -1;
		if (pk->spk[i].id >= pk->next_spk_id)
			return st_error(ST_EX_DATAERR, "signed prekey id %lu is "
			                "not below next_spk_id",
			                (unsigned long)pk->spk[i].id);
	}
	return 0;
}

static int opks_from_json(const struct st_json *a, struct st_prekeys *pk)
{
	size_t n = st_json_array_size(a);

	if (n > OPK_KEEP)
		return st_error(ST_EX_DATAERR, "more than %d one-time prekeys",
		                OPK_KEEP);
	pk->opk = st_calloc(n + 1, sizeof(*pk->opk));
	for (size_t i = 0; i < n; i++) {
		const struct st_json *o = st_json_array_get(a, i);

		if (!st_json_is_object(o) ||
		    st_opk_secret_from_json(o, &pk->opk[i]) < 0)
			return st_error(ST_EX_DATAERR, "bad one-time prekey %zu",
			                i);
		pk->nopk = i + 1;
		if (pk->opk[i].id >= pk->next_opk_id)
			return st_error(ST_EX_DATAERR, "one-time prekey id %lu is "
			                "not below next_opk_id",
			                (unsigned long)pk->opk[i].id);
	}
	return 0;
}

static int prekeys_from_json(const struct st_json *j, struct st_prekeys *pk)
{
	static const char *const keys[] = { "v", "spks", "opks", "next_spk_id",
	                                    "next_opk_id", NULL };
	struct st_json *spks, *opks;
	int64_t v, ns, no;

	memset(pk, 0, sizeof(*pk));
	if (st_json_only(j, keys) < 0 ||
	    st_json_get_int(j, "v", 1, 1, &v) < 0 ||
	    st_json_get_int(j, "next_spk_id", 1, UINT32_MAX, &ns) < 0 ||
	    st_json_get_int(j, "next_opk_id", 0, UINT32_MAX, &no) < 0 ||
	    st_json_get_arr(j, "spks", &spks) < 0 ||
	    st_json_get_arr(j, "opks", &opks) < 0)
		return -1;
	pk->next_spk_id = (uint32_t)ns;
	pk->next_opk_id = (uint32_t)no;
	if (spks_from_json(spks, pk) < 0 || opks_from_json(opks, pk) < 0) {
		st_prekeys_free(pk);
		return -1;
	}
	return 0;
}

int st_prekeys_load(struct st_prekeys *pk)
{
	char *p = st_home_path("prekeys.json");
	struct st_json *j;
	unsigned char *buf;
	size_t n;
	int rc = -1;

	memset(pk, 0, sizeof(*pk));
	if (!p)
		return -1;
	if (st_keystore_read(p, &buf, &n) < 0) {
		missing(p);
		goto out;
	}
	if (!(j = parse_secret(buf, n, p)))
		goto out;
	rc = prekeys_from_json(j, pk);
	st_json_free_secret(j);
	if (rc < 0)
		st_error_ctx("%s", p);
out:
	free(p);
	return rc;
}

int st_prekeys_save(const struct st_prekeys *pk)
{
	struct st_json *j;
	char *p, *s;
	int rc;

	if (st_home_ensure() < 0 || !(p = st_home_path("prekeys.json")))
		return -1;
	j = prekeys_to_json(pk);
	s = st_json_dump(j);
	st_json_free_secret(j);
	rc = write_key(p, s, strlen(s), NULL);
	st_free_str_secret(s);
	free(p);
	return rc;
}

/* ---- the vault key ---- */

int st_keystore_age_identity(const char *path, struct st_age_id *out)
{
	unsigned char *buf;
	size_t n, i, len;
	int found = 0, rc = 0;

	if (st_keystore_read(path, &buf, &n) < 0)
		return -1;
	for (i = 0; i < n && rc == 0; i += len + 1) {
		char *s = (char *)buf + i, *e = memchr(s, '\n', n - i);

		len = e ? (size_t)(e - s) : n - i;
		s[len] = '\0';
		if (len && s[len - 1] == '\r')
			s[len - 1] = '\0';
		if (!*s || *s == '#')
			continue;
		if (found++ == 0 && st_age_parse_identity(s, out) < 0)
			rc = -1;
	}
	st_free_secret(buf, n);
	if (rc == 0 && found == 1)
		return 0;
	st_age_id_wipe(out);
	if (found == 1)
		return st_error_ctx("%s", path);
	return st_error(ST_EX_DATAERR, "%s: expected one key, found %d", path,
	                found);
}
