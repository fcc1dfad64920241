/*
 * err.c - the last recorded error: a message and an exit class.
 * Library code returns st_error(...) (always -1); commands read it back
 * with st_errmsg()/st_errcode() and die with it.  The record is per thread,
 * so the relay's threads each see their own last error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

static _Thread_local char msg[1024];
static _Thread_local int code = ST_EX_NO;
static const char *progname = "st";

static void vrecord(int c, const char *fmt, va_list ap)
{
	int saved = errno;
	size_t n, flen = strlen(fmt);

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (flen && fmt[flen - 1] == ':' && n && msg[n - 1] == ':')
		snprintf(msg + n, sizeof(msg) - n, " %s", strerror(saved));
	code = c;
	errno = saved;
}

int st_error(int c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(c, fmt, ap);
	va_end(ap);
	return -1;
}

int st_error_ctx(const char *fmt, ...)
{
	char old[sizeof(msg)], pre[512];
	va_list ap;

	memcpy(old, msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s: %s", pre, old);
	return -1;
}

const char *st_errmsg(void)
{
	return msg;
}

int st_errcode(void)
{
	return code;
}

void st_error_clear(void)
{
	msg[0] = '\0';
	code = ST_EX_NO;
}

void st_setprogname(const char *argv0)
{
	const char *s = argv0 ? strrchr(argv0, '/') : NULL;

	progname = s ? s + 1 : (argv0 ? argv0 : "st");
}

const char *st_progname(void)
{
	return progname;
}

void st_die(int c, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(c);
}

void st_warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
