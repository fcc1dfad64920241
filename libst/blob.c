/*
 * blob.c - attachments (SPEC §5): a file encrypted as a bare age payload
 * (16-byte nonce, then 64 KiB ChaCha20-Poly1305 STREAM chunks) under a
 * fresh 16-byte file key, streamed to POST /v1/blobs and back.
 *
 * Upload runs in constant memory without a temporary file: a helper
 * thread reads the file and encrypts into a pipe whose other end libcurl
 * reads, and the Content-Length is known up front because STREAM's
 * expansion depends on the length alone.  Download pushes the relay's
 * bytes through the STREAM decryptor, which releases a chunk to the sink
 * only once it has authenticated.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "st.h"

#define READ_BUF (4 * ST_STREAM_CHUNK)
#define BLOB_ID_MAX 128

uint64_t st_blob_size(uint64_t n)
{
	uint64_t chunks = n ? (n + ST_STREAM_CHUNK - 1) / ST_STREAM_CHUNK : 1;

	return ST_STREAM_NONCE_LEN + n + chunks * ST_AEAD_TAG_LEN;
}

int st_blob_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > BLOB_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

struct pump {
	int in, out;                    /* the file; the pipe's write end */
	uint64_t size;
	const unsigned char *key;
	int rc;
	char err[512];
	int code;
};

/* The helper thread: file -> STREAM -> pipe.  Its errors are its own
 * (err.c keeps them per thread), copied out for the caller. */
static void *pump_run(void *arg)
{
	struct pump *p = arg;
	struct st_stream_enc *e;
	unsigned char *buf = st_malloc(READ_BUF);
	uint64_t left = p->size;
	sigset_t set;
	ssize_t got;

	/* a reader that gives up must not kill us with SIGPIPE: EPIPE will do */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	p->rc = -1;
	if (!(e = st_stream_enc_new(p->key, st_sink_fd, &p->out)))
		goto out;
	for (;;) {
		got = read(p->in, buf, left < READ_BUF ? (size_t)left + 1
		           : READ_BUF);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			st_error(ST_EX_NOINPUT, "cannot read attachment:");
			break;
		}
		if ((uint64_t)got > left) {
			st_error(ST_EX_DATAERR, "attachment grew while it was "
			         "being sent");
			break;
		}
		if (got == 0) {
			if (left)
				st_error(ST_EX_DATAERR, "attachment shrank while "
				         "it was being sent");
			else if (st_stream_enc_finish(e) == 0)
				p->rc = 0;
			e = NULL;
			break;
		}
		left -= (uint64_t)got;
		if (st_stream_enc_write(e, buf, (size_t)got) < 0)
			break;
	}
	st_stream_enc_free(e);
out:
	st_free_secret(buf, READ_BUF);
	close(p->out);
	if (p->rc < 0) {
		snprintf(p->err, sizeof(p->err), "%s", st_errmsg());
		p->code = st_errcode();
	}
	return NULL;
}

int st_blob_upload(struct st_relay *r, int fd, uint64_t size,
                   unsigned char key[16], char **id)
{
	struct pump p = { .in = fd, .size = size, .key = key };
	struct st_json *reply = NULL;
	const char *s;
	size_t len;
	pthread_t t;
	int pfd[2], rc;

	*id = NULL;
	if (st_random(key, ST_FILEKEY_LEN) < 0)
		return -1;
	if (pipe(pfd) < 0)
		return st_error(ST_EX_CANTCREAT, "cannot make a pipe:");
	p.out = pfd[1];
	if (pthread_create(&t, NULL, pump_run, &p) != 0) {
		close(pfd[0]);
		close(pfd[1]);
		return st_error(ST_EX_CANTCREAT, "cannot start a thread");
	}
	rc = st_relay_upload(r, "/v1/blobs", pfd[0], st_blob_size(size),
	                     &reply);
	/* unblocks the thread if the relay stopped reading early */
	close(pfd[0]);
	pthread_join(t, NULL);
	if (p.rc < 0) {
		st_json_free(reply);
		return st_error(p.code, "%s", p.err);
	}
	if (rc < 0) {
		st_json_free(reply);
		return -1;
	}
	if (st_json_get_str(reply, "id", &s, &len) < 0 ||
	    len > BLOB_ID_MAX || !st_blob_id_ok(s)) {
		st_json_free(reply);
		return st_error(ST_EX_UNAVAILABLE, "relay %s: bad POST /v1/blobs "
		                "reply", st_relay_base(r));
	}
	*id = st_strndup(s, len);
	st_json_free(reply);
	return 0;
}

/* Counts what the decryptor releases, so the size is checked too. */
struct counted {
	st_sink_fn sink;
	void *ctx;
	uint64_t got, want;
	int tty, pct;                   /* a progress bar, as for uploads */
};

static int sink_counted(void *ctx, const void *p, size_t n)
{
	struct counted *c = ctx;

	if (c->got + n > c->want)
		return st_error(ST_EX_DATAERR, "attachment is larger than "
		                "announced");
	c->got += n;
	if (c->tty && (int)(c->got * 100 / c->want) != c->pct) {
		c->pct = (int)(c->got * 100 / c->want);
		fprintf(stderr, "\rdownload %3d%%", c->pct);
	}
	return c->sink(c->ctx, p, n);
}

static int sink_dec(void *ctx, const void *p, size_t n)
{
	return st_stream_dec_write(ctx, p, n);
}

int st_blob_download(struct st_relay *r, const char *id, uint64_t size,
                     const unsigned char key[16], st_sink_fn sink,
                     void *ctx)
{
	struct counted c = { sink, ctx, 0, size,
	                     size >= (1u << 20) && isatty(2), -1 };
	struct st_stream_dec *d;
	char path[BLOB_ID_MAX + 16];
	int rc;

	if (!st_blob_id_ok(id))
		return st_error(ST_EX_DATAERR, "bad blob id");
	if (size > UINT64_MAX / 2)
		return st_error(ST_EX_DATAERR, "bad attachment size");
	snprintf(path, sizeof(path), "/v1/blobs/%s", id);
	if (!(d = st_stream_dec_new(key, sink_counted, &c)))
		return -1;
	rc = st_relay_download(r, path, st_blob_size(size), sink_dec, d);
	if (rc == 0)
		rc = st_stream_dec_finish(d);
	st_stream_dec_free(d);
	if (c.pct >= 0)
		fputc('\n', stderr);
	if (rc == 0 && c.got != size)
		rc = st_error(ST_EX_DATAERR, "attachment is shorter than "
		              "announced");
	return rc;
}
