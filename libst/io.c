/*
 * io.c - reading inputs with a size cap, atomic replacement of files
 * (temporary beside the target, fsync, rename, fsync of the directory),
 * bounded flock waits, and the checked close of stdout.
 */
#define _GNU_SOURCE             /* sync_file_range */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "st.h"

int st_read_fd(int fd, size_t max, const char *what,
               unsigned char **out, size_t *outlen)
{
	struct st_buf b;
	ssize_t r;

	st_buf_init(&b, 0);
	for (;;) {
		st_buf_reserve(&b, 65536);
		r = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			st_buf_free(&b);
			return st_error(ST_EX_NOINPUT, "cannot read %s:", what);
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
		if (b.len > max) {
			st_buf_free(&b);
			return st_error(ST_EX_DATAERR,
			                "%s is larger than %zu bytes", what, max);
		}
	}
	st_buf_reserve(&b, 0);
	b.data[b.len] = '\0';
	*out = b.data;
	*outlen = b.len;
	return 0;
}

int st_read_file(const char *path, size_t max,
                 unsigned char **out, size_t *outlen)
{
	int fd, rc;

	if (strcmp(path, "-") == 0)
		return st_read_fd(0, max, "standard input", out, outlen);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return st_error(ST_EX_NOINPUT, "cannot open %s:", path);
	rc = st_read_fd(fd, max, path, out, outlen);
	close(fd);
	return rc;
}

int st_write_all(int fd, const void *p, size_t n)
{
	const unsigned char *s = p;
	ssize_t w;

	while (n) {
		w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

char *st_path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p = st_malloc(dl + nl + 2);

	memcpy(p, dir, dl);
	if (dl && dir[dl - 1] != '/')
		p[dl++] = '/';
	memcpy(p + dl, name, nl + 1);
	return p;
}

int st_fsync_dir(const char *path)
{
	char *copy = st_strdup(path);
	int fd, rc = 0;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = st_error(ST_EX_CANTCREAT, "cannot sync directory of %s:",
		              path);
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

int st_atomic_open(struct st_atomic *a, const char *path, int mode)
{
	unsigned char rnd[6];
	char suffix[32];
	int tries;

	a->fd = -1;
	a->path = st_strdup(path);
	a->tmp = NULL;
	for (tries = 0; tries < 16; tries++) {
		if (st_random(rnd, sizeof(rnd)) < 0)
			break;
		snprintf(suffix, sizeof(suffix),
		         ".tmp-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		         rnd[2], rnd[3], rnd[4], rnd[5]);
		free(a->tmp);
		a->tmp = st_malloc(strlen(path) + strlen(suffix) + 1);
		strcpy(a->tmp, path);
		strcat(a->tmp, suffix);
		a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		             O_CLOEXEC, mode);
		if (a->fd >= 0 || errno != EEXIST)
			break;
	}
	if (a->fd < 0) {
		st_error(ST_EX_CANTCREAT, "cannot create %s:", a->tmp ? a->tmp : path);
		free(a->tmp);
		free(a->path);
		a->tmp = a->path = NULL;
		return -1;
	}
	/* the umask may have narrowed it; secret files must be exactly mode */
	if (fchmod(a->fd, mode) < 0) {
		st_error(ST_EX_CANTCREAT, "cannot chmod %s:", a->tmp);
		st_atomic_abort(a);
		return -1;
	}
	return a->fd;
}

void st_atomic_abort(struct st_atomic *a)
{
	if (a->fd >= 0)
		close(a->fd);
	if (a->tmp)
		unlink(a->tmp);
	free(a->tmp);
	free(a->path);
	a->fd = -1;
	a->tmp = a->path = NULL;
}

/* durable: 2 syncs the file and the directory, 1 only the directory (the
 * file was synced already), 0 neither */
static int commit(struct st_atomic *a, int durable)
{
	int rc = -1;

	if (durable == 2 && fsync(a->fd) < 0) {
		st_error(ST_EX_CANTCREAT, "cannot write %s:", a->path);
		goto fail;
	}
	if (close(a->fd) < 0) {
		a->fd = -1;
		st_error(ST_EX_CANTCREAT, "cannot write %s:", a->path);
		goto fail;
	}
	a->fd = -1;
	/*
	 * ext4 flushes a file renamed over an existing one (auto_da_alloc):
	 * seconds for a big output.  Without durability asked for, remove
	 * the old file first; the new one still appears whole or not at all.
	 */
	if (!durable && unlink(a->path) < 0 && errno != ENOENT) {
		st_error(ST_EX_CANTCREAT, "cannot replace %s:", a->path);
		goto fail;
	}
	if (rename(a->tmp, a->path) < 0) {
		st_error(ST_EX_CANTCREAT, "cannot rename to %s:", a->path);
		goto fail;
	}
	free(a->tmp);
	a->tmp = NULL;
	rc = durable ? st_fsync_dir(a->path) : 0;
fail:
	st_atomic_abort(a);
	return rc;
}

int st_atomic_commit(struct st_atomic *a)
{
	return commit(a, 2);
}

int st_atomic_commit_nosync(struct st_atomic *a)
{
	return commit(a, 0);
}

int st_atomic_prepare(struct st_atomic *a, const char *path,
                      const void *data, size_t n, int mode)
{
	if (st_atomic_open(a, path, mode) < 0)
		return -1;
	if (st_write_all(a->fd, data, n) < 0) {
		st_error(ST_EX_CANTCREAT, "cannot write %s:", path);
		st_atomic_abort(a);
		return -1;
	}
	return 0;
}

int st_write_atomic(const char *path, const void *data, size_t n, int mode)
{
	struct st_atomic a;

	if (st_atomic_prepare(&a, path, data, n, mode) < 0)
		return -1;
	return st_atomic_commit(&a);
}

int st_atomic_commit_ordered(struct st_atomic *first, struct st_atomic *second,
                             void (*between)(void))
{
	/*
	 * second's data starts for the disk now, while first commits, so its
	 * own fsync has less to wait for; second stays a temporary,
	 * invisible, until first is renamed and its directory synced.  (A
	 * thread running second's fsync measured no faster, start-up
	 * included, on two cores.)
	 */
	(void)sync_file_range(second->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (st_atomic_commit(first) < 0) {
		st_atomic_abort(second);
		return -1;
	}
	if (between)
		between();
	return commit(second, 2);
}

int st_mkdir(const char *path, int mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return st_error(ST_EX_CANTCREAT, "cannot create %s:", path);
	if (lstat(path, &st) < 0)
		return st_error(ST_EX_CANTCREAT, "cannot stat %s:", path);
	if (!S_ISDIR(st.st_mode))
		return st_error(ST_EX_CANTCREAT, "%s is not a directory", path);
	return 0;
}

int st_lock(const char *path, int timeout_ms)
{
	struct timespec nap = { 0, 20 * 1000 * 1000 };
	int fd, waited = 0;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return st_error(ST_EX_CANTCREAT, "cannot open lock %s:", path);
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			st_error(ST_EX_CANTCREAT, "cannot lock %s:", path);
			break;
		}
		if (waited >= timeout_ms) {
			st_error(ST_EX_TEMPFAIL,
			         "%s is busy (another st command holds the lock); "
			         "try again", path);
			break;
		}
		nanosleep(&nap, NULL);
		waited += 20;
	}
	close(fd);
	return -1;
}

void st_unlock(int fd)
{
	if (fd >= 0) {
		flock(fd, LOCK_UN);
		close(fd);
	}
}

int st_close_stdout(void)
{
	int bad = ferror(stdout);

	if (fclose(stdout) != 0 || bad)
		return st_error(ST_EX_CANTCREAT, "cannot write standard output:");
	return 0;
}

char *st_safe_basename(const char *name, size_t n, const char *fallback)
{
	struct st_buf b;
	size_t start = 0;

	for (size_t i = 0; i < n; i++)
		if (name[i] == '/' || name[i] == '\\')
			start = i + 1;
	/* leading dots go too: no "..", no hidden ".bashrc" */
	while (start < n && name[start] == '.')
		start++;
	st_buf_init(&b, 0);
	for (size_t i = start; i < n && b.len < 200; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 0x20 && c != 0x7f)
			st_buf_appendc(&b, c);
	}
	/* a cut at 200 bytes must not end inside a UTF-8 sequence */
	if (b.len == 200) {
		size_t lead = b.len;
		unsigned char c;

		while (lead && (b.data[lead - 1] & 0xc0) == 0x80)
			lead--;
		c = lead ? b.data[lead - 1] : 0;
		if (c >= 0xc0 && b.len - lead + 1 <
		    (size_t)(c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2))
			b.len = lead - 1;
	}
	if (b.len == 0) {
		st_buf_free(&b);
		return st_strdup(fallback);
	}
	st_buf_cstr(&b);
	return (char *)b.data;
}
