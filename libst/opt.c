/*
 * opt.c - getopt_long() without abbreviations.  glibc accepts any unique
 * prefix of a long option, so "--password hunter2" would pass for
 * "--password-file hunter2": the secret sits on the command line, in ps
 * and in shell history, and is then echoed back in "cannot open hunter2".
 * No safetalk option takes a secret, and none may seem to: long options
 * are spelt out in full.
 */
#include <getopt.h>
#include <string.h>

#include "st.h"

int st_getopt(int argc, char *const argv[], const char *shortopts,
              const struct option *longopts)
{
	const char *elem, *eq;
	size_t n;
	int idx = -1, c;

	c = getopt_long(argc, argv, shortopts, longopts, &idx);
	if (c == -1 || c == '?' || c == ':' || idx < 0)
		return c;
	/* the option's own word: optarg may be the word after it */
	if (optind >= 2 && optarg && optarg == argv[optind - 1])
		elem = argv[optind - 2];
	else
		elem = argv[optind - 1];
	if (strncmp(elem, "--", 2))
		return c;
	elem += 2;
	eq = strchr(elem, '=');
	n = eq ? (size_t)(eq - elem) : strlen(elem);
	if (n != strlen(longopts[idx].name)) {
		st_error(ST_EX_USAGE, "unrecognized option '--%.*s'",
		         n > 64 ? 64 : (int)n, elem);
		return '?';
	}
	return c;
}
