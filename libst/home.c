/*
 * home.c - the state directory ($ST_HOME, default ~/.safetalk, mode 0700),
 * its writer lock, and the JSON config file inside it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "st.h"

#define CONFIG_MAX (64 * 1024)
#define TEMP_AGE 60             /* seconds: no live writer keeps one longer */

const char *st_home(void)
{
	static char *home;
	const char *h;

	if (home)
		return home;
	h = getenv("ST_HOME");
	if (h && *h) {
		home = st_strdup(h);
		return home;
	}
	h = getenv("HOME");
	if (!h || !*h) {
		st_error(ST_EX_CONFIG, "neither ST_HOME nor HOME is set: set "
		         "ST_HOME to the safetalk directory");
		return NULL;
	}
	home = st_path_join(h, ".safetalk");
	return home;
}

int st_home_ensure(void)
{
	const char *h = st_home();
	struct stat st;

	if (!h)
		return -1;
	if (st_mkdir(h, 0700) < 0)
		return -1;
	if (stat(h, &st) < 0)
		return st_error(ST_EX_CANTCREAT, "cannot stat %s:", h);
	/* a group- or world-readable home would expose every secret */
	if ((st.st_mode & 077) && chmod(h, 0700) < 0)
		return st_error(ST_EX_CANTCREAT, "cannot chmod %s:", h);
	return 0;
}

char *st_home_path(const char *name)
{
	const char *h = st_home();

	return h ? st_path_join(h, name) : NULL;
}

/* NAME.tmp-XXXXXXXXXXXX: st_atomic_open()'s temporaries. */
static int is_temp(const char *n)
{
	const char *t = strstr(n, ".tmp-");

	return t && t != n && strlen(t + 5) == 12 &&
	       strspn(t + 5, "0123456789abcdef") == 12;
}

void st_home_sweep(const char *sub)
{
	char *dir = *sub ? st_home_path(sub) : st_strdup(st_home());
	time_t now = time(NULL);
	struct dirent *d;
	struct stat st;
	DIR *dp;

	if (!dir || !(dp = opendir(dir))) {
		free(dir);
		return;
	}
	while ((d = readdir(dp))) {
		if (!is_temp(d->d_name) ||
		    fstatat(dirfd(dp), d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime < TEMP_AGE)
			continue;
		unlinkat(dirfd(dp), d->d_name, 0);
	}
	closedir(dp);
	free(dir);
}

int st_home_lock(int timeout_ms)
{
	static const char *const subs[] = { "", "outbox", "ratchet", "peers" };
	char *p;
	int fd;

	if (st_home_ensure() < 0)
		return -1;
	p = st_home_path("lock");
	fd = st_lock(p, timeout_ms);
	free(p);
	/* what a killed writer left behind goes now (the vault's own
	 * temporaries: st-recv and st-vault rekey sweep them) */
	if (fd >= 0)
		for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
			st_home_sweep(subs[i]);
	return fd;
}

/* Keep the detail of the last error, but as a configuration problem. */
static struct st_json *recode_config(void)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "%s", st_errmsg());
	st_error(ST_EX_CONFIG, "bad config: %s", detail);
	return NULL;
}

struct st_json *st_config_load(void)
{
	unsigned char *buf;
	size_t len;
	struct st_json *j;
	char *p = st_home_path("config");

	if (!p)
		return NULL;
	/* errno tells a missing file apart only when nothing stale is in it */
	errno = 0;
	if (st_read_file(p, CONFIG_MAX, &buf, &len) < 0) {
		if (errno == ENOENT) {
			free(p);
			st_error_clear();
			return st_json_object();
		}
		free(p);
		return recode_config();
	}
	j = st_json_parse((char *)buf, len, CONFIG_MAX, p);
	free(buf);
	if (j && !st_json_is_object(j)) {
		st_json_free(j);
		j = NULL;
		st_error(ST_EX_CONFIG, "%s is not a JSON object", p);
	} else if (!j) {
		recode_config();
	}
	free(p);
	return j;
}

int st_config_save(const struct st_json *cfg)
{
	char *p, *s;
	int rc;

	if (st_home_ensure() < 0)
		return -1;
	p = st_home_path("config");
	s = st_json_dump(cfg);
	rc = st_write_atomic(p, s, strlen(s), 0600);
	free(s);
	free(p);
	return rc;
}
