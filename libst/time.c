/*
 * time.c - the clock in milliseconds (every time on the wire is Unix ms),
 * and the forms in which users give times on the command line.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "st.h"

int64_t st_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_age(const char *s, int64_t *ms)
{
	char *end;
	long long n;
	int64_t unit;

	n = strtoll(s, &end, 10);
	if (end == s || n < 0 || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (*end) {
	case 's': unit = 1000; break;
	case 'm': unit = 60 * 1000; break;
	case 'h': unit = 3600 * 1000; break;
	case 'd': unit = 86400 * 1000; break;
	case 'w': unit = 7 * 86400 * 1000LL; break;
	default: return -1;
	}
	if (n > INT64_MAX / unit / 2)
		return -1;
	*ms = st_now_ms() - n * unit;
	return 0;
}

static int parse_iso(const char *s, int64_t *ms)
{
	struct tm tm;
	const char *rest;
	time_t t;
	int utc = 0;

	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%d", &tm);
	if (!rest)
		return -1;
	if (*rest == 'T' || *rest == ' ') {
		const char *r2 = strptime(rest + 1, "%H:%M:%S", &tm);

		rest = r2 ? r2 : strptime(rest + 1, "%H:%M", &tm);
		if (!rest)
			return -1;
	}
	if (*rest == 'Z') {
		utc = 1;
		rest++;
	}
	if (*rest)
		return -1;
	tm.tm_isdst = -1;
	t = utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1)
		return -1;
	*ms = (int64_t)t * 1000;
	return 0;
}

int st_time_parse(const char *s, int64_t *ms)
{
	char *end;
	long long n;

	if (*s >= '0' && *s <= '9') {
		n = strtoll(s, &end, 10);
		if (*end == '\0' && n >= 0 && n < 100000000000LL) {
			*ms = (int64_t)n * 1000;
			return 0;
		}
	}
	if (parse_age(s, ms) == 0 || parse_iso(s, ms) == 0)
		return 0;
	return st_error(ST_EX_USAGE, "bad time '%s': expected Unix seconds, "
	                "YYYY-MM-DD[THH:MM[:SS]][Z] or an age like 2h or 7d", s);
}

void st_time_format(int64_t ms, char out[20])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(out, 20, "%lld", (long long)(ms / 1000));
}
