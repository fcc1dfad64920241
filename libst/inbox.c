/*
 * inbox.c - st-recv's journal, $ST_HOME/inbox.log: what became of each
 * message the relay delivered, so that a rerun after a crash at any point
 * finishes it without storing it twice, and redeliveries and replays are
 * recognised.  Append-only lines, each fsynced, read whole at start:
 *
 *   P RELAY ITEM FROM MSGID HASH TS FILES   about to store: ITEM is the
 *                                           vault id chosen for it (or
 *                                           -), FILES the ids for its
 *                                           attachments (a,b,c or -),
 *                                           HASH 16 bytes of SHA-256 of
 *                                           the envelope's hdr || ct
 *   D RELAY TS                              stored and state committed
 *   X RELAY TS                              its --exec hook failed
 *   H RELAY TS                              its --exec hook succeeded
 *
 * A torn last line (a crash mid-append) is ended before anything is
 * appended, and ignored as malformed.  Records older than 40 days (the
 * relay keeps messages 30) are dropped when the file is rewritten, which
 * happens when most of it is stale.  Callers hold the home lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

#define LOG_MAX (256u * 1024 * 1024)
#define KEEP_MS (40LL * 24 * 3600 * 1000)

struct rec {
	struct st_inbox_rec r;
	char key[ST_USER_MAX + 34];     /* from/msgid */
};

struct st_inbox {
	char *path;
	int fd;
	struct rec *v;
	size_t n, cap;
	size_t lines;
	/* open addressing: indexes + 1, 0 empty */
	size_t *by_relay, *by_msg, *by_hash, tcap;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static const char *key_of(struct st_inbox *b, size_t i, int which)
{
	return which == 0 ? b->v[i].r.relay : which == 1 ? b->v[i].key
	       : b->v[i].r.hash;
}

static size_t *table(struct st_inbox *b, int which)
{
	return which == 0 ? b->by_relay : which == 1 ? b->by_msg : b->by_hash;
}

/* Index of the record with key in table which, or -1. */
static long lookup(struct st_inbox *b, int which, const char *key)
{
	size_t *t = table(b, which), mask = b->tcap - 1;

	if (!b->tcap || !*key)
		return -1;
	for (size_t h = hash_str(key) & mask; t[h]; h = (h + 1) & mask)
		if (!strcmp(key_of(b, t[h] - 1, which), key))
			return (long)t[h] - 1;
	return -1;
}

static void insert(struct st_inbox *b, int which, size_t i)
{
	size_t *t = table(b, which), mask = b->tcap - 1;
	const char *key = key_of(b, i, which);
	size_t h;

	if (!*key || !strcmp(key, "-"))
		return;
	for (h = hash_str(key) & mask; t[h]; h = (h + 1) & mask)
		if (!strcmp(key_of(b, t[h] - 1, which), key)) {
			t[h] = i + 1;   /* the later record wins */
			return;
		}
	t[h] = i + 1;
}

static void rehash(struct st_inbox *b)
{
	size_t cap = 64;

	while (cap < 2 * b->n + 2)
		cap *= 2;
	free(b->by_relay);
	free(b->by_msg);
	free(b->by_hash);
	b->tcap = cap;
	b->by_relay = st_calloc(cap, sizeof(size_t));
	b->by_msg = st_calloc(cap, sizeof(size_t));
	b->by_hash = st_calloc(cap, sizeof(size_t));
	for (size_t i = 0; i < b->n; i++)
		for (int w = 0; w < 3; w++)
			insert(b, w, i);
}

static int token_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n < 1 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.' || c == ','))
			return 0;
	}
	return 1;
}

static void set_key(struct rec *x)
{
	snprintf(x->key, sizeof(x->key), "%s/%s", x->r.from, x->r.msgid);
	if (!strcmp(x->r.msgid, "-"))
		x->key[0] = '\0';
}

static void add_rec(struct st_inbox *b, const struct st_inbox_rec *r)
{
	long old = lookup(b, 0, r->relay);
	struct rec *x;

	if (old >= 0) {
		/* a fresh attempt at the same relay id replaces the old one */
		x = &b->v[old];
		free((char *)x->r.files);
		x->r = *r;
		x->r.files = st_strdup(r->files);
		set_key(x);
		insert(b, 1, (size_t)old);
		insert(b, 2, (size_t)old);
		return;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		b->v = st_realloc(b->v, b->cap * sizeof(*b->v));
	}
	x = &b->v[b->n++];
	memset(x, 0, sizeof(*x));
	x->r = *r;
	x->r.files = st_strdup(r->files);
	set_key(x);
	if (2 * b->n + 2 > b->tcap)
		rehash(b);
	else
		for (int w = 0; w < 3; w++)
			insert(b, w, b->n - 1);
}

static void parse_line(struct st_inbox *b, char *line)
{
	char *tok[9], *save = NULL, *t;
	int n = 0;
	long i;

	for (t = strtok_r(line, " ", &save); t && n < 9;
	     t = strtok_r(NULL, " ", &save))
		tok[n++] = t;
	if (n == 8 && !strcmp(tok[0], "P")) {
		struct st_inbox_rec r;

		memset(&r, 0, sizeof(r));
		if (!token_ok(tok[1], 31) || strlen(tok[2]) > 20 ||
		    !token_ok(tok[2], 20) || !token_ok(tok[3], ST_USER_MAX) ||
		    strlen(tok[4]) > 32 || !token_ok(tok[4], 32) ||
		    strlen(tok[5]) > 32 || !token_ok(tok[5], 32) ||
		    !token_ok(tok[7], ST_INBOX_FILES_MAX))
			return;
		strcpy(r.relay, tok[1]);
		strcpy(r.item, tok[2]);
		strcpy(r.from, tok[3]);
		strcpy(r.msgid, tok[4]);
		strcpy(r.hash, tok[5]);
		r.ts = strtoll(tok[6], NULL, 10);
		r.files = tok[7];
		add_rec(b, &r);
		return;
	}
	if (n != 3 || strlen(tok[0]) != 1 || !token_ok(tok[1], 31))
		return;
	if ((i = lookup(b, 0, tok[1])) < 0) {
		struct st_inbox_rec r;

		/* a done mark without a record: a duplicate acknowledged */
		memset(&r, 0, sizeof(r));
		strcpy(r.relay, tok[1]);
		strcpy(r.item, "-");
		strcpy(r.from, "-");
		strcpy(r.msgid, "-");
		strcpy(r.hash, "-");
		r.files = "-";
		r.ts = strtoll(tok[2], NULL, 10);
		add_rec(b, &r);
		i = lookup(b, 0, tok[1]);
	}
	switch (tok[0][0]) {
	case 'D': b->v[i].r.done = 1; break;
	case 'X': b->v[i].r.hook_failed = 1; break;
	case 'H': b->v[i].r.hook_done = 1; break;
	}
}

static int append(struct st_inbox *b, const char *line)
{
	if (st_write_all(b->fd, line, strlen(line)) < 0 || fsync(b->fd) < 0)
		return st_error(ST_EX_CANTCREAT, "cannot write %s:", b->path);
	b->lines++;
	return 0;
}

static void rec_lines(const struct st_inbox_rec *r, struct st_buf *o)
{
	if (strcmp(r->hash, "-") || strcmp(r->item, "-"))
		st_buf_appendf(o, "P %s %s %s %s %s %lld %s\n", r->relay, r->item,
		               r->from, r->msgid, r->hash, (long long)r->ts,
		               r->files);
	if (r->done)
		st_buf_appendf(o, "D %s %lld\n", r->relay, (long long)r->ts);
	if (r->hook_failed)
		st_buf_appendf(o, "X %s %lld\n", r->relay, (long long)r->ts);
	if (r->hook_done)
		st_buf_appendf(o, "H %s %lld\n", r->relay, (long long)r->ts);
}

/* Rewrite the log with the records still worth keeping. */
static int compact(struct st_inbox *b, int64_t now)
{
	struct st_buf o;
	size_t k = 0;
	int rc;

	st_buf_init(&o, 0);
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].r.ts && now - b->v[i].r.ts > KEEP_MS) {
			free((char *)b->v[i].r.files);
			continue;
		}
		rec_lines(&b->v[i].r, &o);
		b->v[k++] = b->v[i];
	}
	b->n = k;
	rc = st_write_atomic(b->path, o.data ? (char *)o.data : "", o.len, 0600);
	st_buf_free(&o);
	rehash(b);
	return rc;
}

struct st_inbox *st_inbox_open(void)
{
	struct st_inbox *b = st_calloc(1, sizeof(*b));
	unsigned char *buf = NULL;
	size_t len = 0, expired = 0;
	int64_t now = st_now_ms();
	int torn;
	char *p, *nl;

	b->fd = -1;
	if (!(b->path = st_home_path("inbox.log")))
		goto fail;
	errno = 0;
	if (st_read_file(b->path, LOG_MAX, &buf, &len) < 0) {
		if (errno != ENOENT)
			goto fail;
		st_error_clear();
		buf = NULL;
		len = 0;
	}
	torn = len && buf[len - 1] != '\n';
	rehash(b);
	for (p = (char *)buf; p && p < (char *)buf + len; p = nl + 1) {
		if (!(nl = memchr(p, '\n', (size_t)((char *)buf + len - p))))
			break;          /* torn: ended below, then ignored */
		*nl = '\0';
		parse_line(b, p);
		b->lines++;
	}
	for (size_t i = 0; i < b->n; i++)
		expired += b->v[i].r.ts && now - b->v[i].r.ts > KEEP_MS;
	b->fd = open(b->path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	             O_CLOEXEC, 0600);
	if (b->fd < 0) {
		st_error(ST_EX_CANTCREAT, "cannot open %s:", b->path);
		goto fail;
	}
	if (torn && append(b, "\n") < 0)
		goto fail;
	if (expired > 1000 || b->lines > 4 * b->n + 1000) {
		if (compact(b, now) < 0)
			goto fail;
		close(b->fd);
		b->fd = open(b->path, O_WRONLY | O_APPEND | O_NOFOLLOW |
		             O_CLOEXEC);
		if (b->fd < 0) {
			st_error(ST_EX_CANTCREAT, "cannot open %s:", b->path);
			goto fail;
		}
	}
	free(buf);
	return b;
fail:
	free(buf);
	st_inbox_close(b);
	return NULL;
}

void st_inbox_close(struct st_inbox *b)
{
	if (!b)
		return;
	if (b->fd >= 0)
		close(b->fd);
	for (size_t i = 0; i < b->n; i++)
		free((char *)b->v[i].r.files);
	free(b->v);
	free(b->by_relay);
	free(b->by_msg);
	free(b->by_hash);
	free(b->path);
	free(b);
}

const struct st_inbox_rec *st_inbox_find(struct st_inbox *b,
                                         const char *relay_id)
{
	long i = lookup(b, 0, relay_id);

	return i < 0 ? NULL : &b->v[i].r;
}

const struct st_inbox_rec *st_inbox_find_msg(struct st_inbox *b,
                                             const char *from,
                                             const char *msgid)
{
	char key[ST_USER_MAX + 34];
	long i;

	snprintf(key, sizeof(key), "%s/%s", from, msgid);
	i = lookup(b, 1, key);
	return i < 0 || !b->v[i].r.done ? NULL : &b->v[i].r;
}

const struct st_inbox_rec *st_inbox_find_hash(struct st_inbox *b,
                                              const char *hash)
{
	long i = lookup(b, 2, hash);

	return i < 0 || !b->v[i].r.done ? NULL : &b->v[i].r;
}

int st_inbox_begin(struct st_inbox *b, const struct st_inbox_rec *r)
{
	struct st_buf o;
	struct st_inbox_rec c = *r;
	int rc;

	c.done = c.hook_failed = c.hook_done = 0;
	if (!token_ok(c.relay, 31) || !token_ok(c.item, 20) ||
	    !token_ok(c.from, ST_USER_MAX) || !token_ok(c.msgid, 32) ||
	    !token_ok(c.hash, 32) || !c.files ||
	    !token_ok(c.files, ST_INBOX_FILES_MAX))
		return st_error(ST_EX_DATAERR, "bad journal record");
	st_buf_init(&o, 0);
	rec_lines(&c, &o);
	rc = append(b, st_buf_cstr(&o));
	st_buf_free(&o);
	if (rc == 0)
		add_rec(b, &c);
	return rc;
}

int st_inbox_mark(struct st_inbox *b, const char *relay_id, char what)
{
	char line[64];
	int n;

	if (!token_ok(relay_id, 31) || !strchr("DXH", what))
		return st_error(ST_EX_DATAERR, "bad journal mark");
	n = snprintf(line, sizeof(line), "%c %s %lld\n", what, relay_id,
	             (long long)st_now_ms());
	if (append(b, line) < 0)
		return -1;
	line[n - 1] = '\0';
	parse_line(b, line);
	return 0;
}
