/*
 * mem.c - allocation that never returns NULL, secret wiping, and a growable
 * byte buffer that can wipe what it held.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "st.h"

static void oom(void)
{
	fputs("out of memory\n", stderr);
	abort();
}

void *st_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *st_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *st_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom();
	return q;
}

char *st_strdup(const char *s)
{
	return st_strndup(s, strlen(s));
}

char *st_strndup(const char *s, size_t n)
{
	char *p = st_malloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void st_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

void st_wipe_block(void *p)
{
	if (p)
		OPENSSL_cleanse(p, malloc_usable_size(p));
}

void st_free_wiped(void *p)
{
	st_wipe_block(p);
	free(p);
}

void st_free_secret(void *p, size_t n)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

void st_free_str_secret(char *s)
{
	if (s)
		st_free_secret(s, strlen(s));
}

int st_memeq_ct(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) != 0;
}

void st_buf_init(struct st_buf *b, int secret)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->secret = secret;
}

void st_buf_reserve(struct st_buf *b, size_t extra)
{
	size_t want, cap;
	unsigned char *p;

	if (extra > SIZE_MAX - b->len - 1)
		oom();
	want = b->len + extra + 1;
	if (want <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (b->secret) {
		/* realloc could leave a copy of the secret behind: move by hand */
		p = st_malloc(cap);
		if (b->data) {
			memcpy(p, b->data, b->len);
			st_free_secret(b->data, b->cap);
		}
	} else {
		p = st_realloc(b->data, cap);
	}
	b->data = p;
	b->cap = cap;
}

void st_buf_append(struct st_buf *b, const void *p, size_t n)
{
	st_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void st_buf_appendc(struct st_buf *b, unsigned char c)
{
	st_buf_append(b, &c, 1);
}

void st_buf_appendf(struct st_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	st_buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *st_buf_cstr(struct st_buf *b)
{
	st_buf_reserve(b, 0);
	b->data[b->len] = '\0';
	return (const char *)b->data;
}

void st_buf_free(struct st_buf *b)
{
	if (b->secret)
		st_free_secret(b->data, b->cap);
	else
		free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
