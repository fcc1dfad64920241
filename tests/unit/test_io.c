/*
 * test_io.c - files, locks, errors, buffers and the home directory: atomic
 * replacement (mode exact whatever the umask, nothing left behind on
 * success or failure, symlinks replaced rather than written through), the
 * read cap, bounded lock waits, the error record, and $ST_HOME with its
 * config.  Everything happens under one fresh temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "st.h"

static char top[64];
static char *home;
static mode_t old_umask;

static int setup_group(void **state)
{
	(void)state;
	strcpy(top, "/tmp/st-unit-io-XXXXXX");
	if (!mkdtemp(top))
		return -1;
	/* st_home() reads ST_HOME once: set it before anything asks */
	home = st_path_join(top, "home");
	setenv("ST_HOME", home, 1);
	/* a permissive umask, so modes that come out tight were made tight */
	old_umask = umask(022);
	return 0;
}

static int teardown_group(void **state)
{
	char cmd[128];

	(void)state;
	umask(old_umask);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	free(home);
	return system(cmd) == 0 ? 0 : -1;
}

/* A fresh directory for one test. */
static char *tdir(const char *name)
{
	char *d = st_path_join(top, name);

	assert_int_equal(mkdir(d, 0755), 0);
	return d;
}

static void put(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(st_write_all(fd, p, n), 0);
	assert_int_equal(close(fd), 0);
}

/* The whole file, NUL-terminated (malloc'd). */
static char *slurp(const char *path, size_t *n)
{
	unsigned char *buf;
	size_t len;

	assert_int_equal(st_read_file(path, 1 << 20, &buf, &len), 0);
	if (n)
		*n = len;
	return (char *)buf;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

/* Entries in dir other than . and ..; how many look like temporaries. */
static int entries(const char *dir, int *tmps)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	if (tmps)
		*tmps = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		if (tmps && strstr(e->d_name, ".tmp"))
			(*tmps)++;
	}
	closedir(d);
	return n;
}

/* ---- atomic writes ---- */

static void write_atomic_mode(void **state)
{
	char *d = tdir("mode"), *p = st_path_join(d, "secret");
	char *q = st_path_join(d, "public"), *s;
	int tmps;

	(void)state;
	assert_int_equal(st_write_atomic(p, "hello", 5, 0600), 0);
	assert_int_equal(mode_of(p), 0600);
	s = slurp(p, NULL);
	assert_string_equal(s, "hello");
	free(s);
	/* exactly the mode asked for, even where the umask would narrow it */
	umask(077);
	assert_int_equal(st_write_atomic(q, "", 0, 0644), 0);
	umask(022);
	assert_int_equal(mode_of(q), 0644);
	assert_int_equal(entries(d, &tmps), 2);
	assert_int_equal(tmps, 0);
	free(p);
	free(q);
	free(d);
}

static void write_atomic_replaces(void **state)
{
	char *d = tdir("replace"), *p = st_path_join(d, "state.json"), *s;
	struct stat before, after;
	size_t n;
	int tmps;

	(void)state;
	put(p, "old content that is longer", 26);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(stat(p, &before), 0);
	assert_int_equal(st_write_atomic(p, "new", 3, 0600), 0);
	s = slurp(p, &n);
	assert_int_equal(n, 3);
	assert_string_equal(s, "new");
	free(s);
	/* a new file renamed over the old, not the old one rewritten */
	assert_int_equal(stat(p, &after), 0);
	assert_true(before.st_ino != after.st_ino);
	assert_int_equal(after.st_mode & 07777, 0600);
	assert_int_equal(entries(d, &tmps), 1);
	assert_int_equal(tmps, 0);
	free(p);
	free(d);
}

static void write_atomic_missing_dir(void **state)
{
	char *d = tdir("missing"), *p = st_path_join(d, "nope/file");
	char *sub = st_path_join(d, "nope");
	struct stat st;

	(void)state;
	st_error_clear();
	assert_int_equal(st_write_atomic(p, "x", 1, 0600), -1);
	assert_int_equal(st_errcode(), ST_EX_CANTCREAT);
	assert_non_null(strstr(st_errmsg(), "nope/file"));
	assert_int_equal(stat(sub, &st), -1);
	assert_int_equal(entries(d, NULL), 0);
	free(sub);
	free(p);
	free(d);
}

/* The rename fails (the target is a non-empty directory): no temporary stays. */
static void write_atomic_failure_cleans_up(void **state)
{
	char *d = tdir("fail"), *p = st_path_join(d, "target");
	char *inner = st_path_join(p, "keep");
	int tmps;

	(void)state;
	assert_int_equal(mkdir(p, 0700), 0);
	put(inner, "k", 1);
	st_error_clear();
	assert_int_equal(st_write_atomic(p, "data", 4, 0600), -1);
	assert_int_equal(st_errcode(), ST_EX_CANTCREAT);
	assert_int_equal(entries(d, &tmps), 1);
	assert_int_equal(tmps, 0);
	assert_int_equal(entries(p, NULL), 1);
	free(inner);
	free(p);
	free(d);
}

/* A symlink at the target is replaced, never written through. */
static void write_atomic_symlink(void **state)
{
	char *d = tdir("symlink"), *p = st_path_join(d, "link");
	char *victim = st_path_join(d, "victim"), *s;
	struct stat st;
	int tmps;

	(void)state;
	put(victim, "victim data", 11);
	assert_int_equal(symlink(victim, p), 0);
	assert_int_equal(st_write_atomic(p, "new", 3, 0600), 0);
	s = slurp(victim, NULL);
	assert_string_equal(s, "victim data");
	free(s);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	s = slurp(p, NULL);
	assert_string_equal(s, "new");
	free(s);
	assert_int_equal(entries(d, &tmps), 2);
	assert_int_equal(tmps, 0);
	free(victim);
	free(p);
	free(d);
}

static void atomic_abort(void **state)
{
	char *d = tdir("abort"), *p = st_path_join(d, "file");
	struct st_atomic a;

	(void)state;
	assert_true(st_atomic_open(&a, p, 0600) >= 0);
	assert_int_equal(st_write_all(a.fd, "partial", 7), 0);
	assert_int_equal(entries(d, NULL), 1);		/* the temporary */
	st_atomic_abort(&a);
	assert_int_equal(entries(d, NULL), 0);
	assert_int_equal(access(p, F_OK), -1);
	/* and a streamed commit lands */
	assert_true(st_atomic_open(&a, p, 0600) >= 0);
	assert_int_equal(st_write_all(a.fd, "whole", 5), 0);
	assert_int_equal(st_atomic_commit(&a), 0);
	assert_int_equal(entries(d, NULL), 1);
	assert_int_equal(mode_of(p), 0600);
	free(p);
	free(d);
}

/* ---- reading with a cap ---- */

static void read_cap(void **state)
{
	char *d = tdir("read"), *p = st_path_join(d, "in");
	unsigned char *buf, *big;
	size_t n;
	int fd;

	(void)state;
	/* 200000 bytes: several reads deep */
	big = malloc(200001);
	assert_non_null(big);
	for (size_t i = 0; i < 200001; i++)
		big[i] = (unsigned char)(i * 31);
	for (size_t len = 100; len <= 200000; len += 199900) {
		put(p, big, len);
		fd = open(p, O_RDONLY);
		assert_int_equal(st_read_fd(fd, len, "the input", &buf, &n), 0);
		close(fd);
		assert_int_equal(n, len);
		assert_memory_equal(buf, big, len);
		assert_int_equal(buf[n], 0);
		free(buf);

		st_error_clear();
		fd = open(p, O_RDONLY);
		assert_int_equal(st_read_fd(fd, len - 1, "the input", &buf, &n),
		                 -1);
		close(fd);
		assert_int_equal(st_errcode(), ST_EX_DATAERR);
		assert_non_null(strstr(st_errmsg(), "the input"));

		assert_int_equal(st_read_file(p, len, &buf, &n), 0);
		free(buf);
		assert_int_equal(st_read_file(p, len - 1, &buf, &n), -1);
		assert_int_equal(st_errcode(), ST_EX_DATAERR);
	}
	/* empty is fine, even with a cap of 0 */
	put(p, "", 0);
	assert_int_equal(st_read_file(p, 0, &buf, &n), 0);
	assert_int_equal(n, 0);
	free(buf);
	/* a pipe, one byte over */
	{
		int fds[2];

		assert_int_equal(pipe(fds), 0);
		assert_int_equal(st_write_all(fds[1], "0123456789", 10), 0);
		close(fds[1]);
		assert_int_equal(st_read_fd(fds[0], 9, "pipe", &buf, &n), -1);
		assert_int_equal(st_errcode(), ST_EX_DATAERR);
		close(fds[0]);
	}
	free(big);
	free(p);
	free(d);
}

static void read_missing(void **state)
{
	unsigned char *buf;
	size_t n;
	char *p = st_path_join(top, "does-not-exist");

	(void)state;
	st_error_clear();
	assert_int_equal(st_read_file(p, 10, &buf, &n), -1);
	assert_int_equal(st_errcode(), ST_EX_NOINPUT);
	assert_non_null(strstr(st_errmsg(), "does-not-exist"));
	assert_non_null(strstr(st_errmsg(), strerror(ENOENT)));
	free(p);
}

/* ---- locks ---- */

static double since_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * In a child: try the lock for timeout_ms.  Exit 0 when the outcome is the
 * one expected (busy: TEMPFAIL after about timeout_ms; free: the lock at
 * once), else a code saying what went wrong.
 */
static int child_lock(const char *path, int timeout_ms, int expect_busy)
{
	struct timespec t0;
	pid_t pid;
	int status, fd;
	double ms;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		fd = st_lock(path, timeout_ms);
		ms = since_ms(&t0);
		if (expect_busy) {
			if (fd >= 0)
				_exit(10);
			if (st_errcode() != ST_EX_TEMPFAIL)
				_exit(11);
			if (ms < timeout_ms * 0.9 || ms > timeout_ms + 2000)
				_exit(12);
		} else if (fd < 0 || ms > 1000) {
			_exit(13);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void lock_busy_times_out(void **state)
{
	char *d = tdir("lock"), *p = st_path_join(d, "lock");
	int fd;

	(void)state;
	fd = st_lock(p, 0);
	assert_true(fd >= 0);
	assert_int_equal(mode_of(p), 0600);
	assert_int_equal(child_lock(p, 300, 1), 0);
	/* the twin: once released, the child gets it */
	st_unlock(fd);
	assert_int_equal(child_lock(p, 300, 0), 0);
	free(p);
	free(d);
}

/* O_NOFOLLOW: a lock path that is a symlink is refused. */
static void lock_refuses_symlink(void **state)
{
	char *d = tdir("locklink"), *p = st_path_join(d, "lock");
	char *t = st_path_join(d, "elsewhere");

	(void)state;
	assert_int_equal(symlink(t, p), 0);
	st_error_clear();
	assert_int_equal(st_lock(p, 0), -1);
	assert_int_equal(st_errcode(), ST_EX_CANTCREAT);
	assert_int_equal(access(t, F_OK), -1);
	free(t);
	free(p);
	free(d);
}

/* ---- the error record ---- */

static void error_colon_appends_strerror(void **state)
{
	char want[256];

	(void)state;
	errno = ENOENT;
	assert_int_equal(st_error(ST_EX_NOINPUT, "cannot open %s:", "key"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(st_errcode(), ST_EX_NOINPUT);
	snprintf(want, sizeof(want), "cannot open key: %s", strerror(ENOENT));
	assert_string_equal(st_errmsg(), want);

	/* no trailing colon, no errno text */
	errno = EACCES;
	st_error(ST_EX_DATAERR, "bad %s: %d", "thing", 3);
	assert_string_equal(st_errmsg(), "bad thing: 3");
	st_error(ST_EX_USAGE, "plain");
	assert_string_equal(st_errmsg(), "plain");
	assert_int_equal(st_errcode(), ST_EX_USAGE);

	st_error_clear();
	assert_string_equal(st_errmsg(), "");
	assert_int_equal(st_errcode(), ST_EX_NO);
}

static void error_ctx_prefixes(void **state)
{
	(void)state;
	st_error(ST_EX_DATAERR, "bad signature");
	assert_int_equal(st_error_ctx("bundle of %s", "bob"), -1);
	assert_string_equal(st_errmsg(), "bundle of bob: bad signature");
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	st_error_ctx("st-send");
	assert_string_equal(st_errmsg(),
	                    "st-send: bundle of bob: bad signature");
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
}

/* ---- buffers ---- */

static void buf_grows(void **state)
{
	struct st_buf b;
	size_t n = 0;

	(void)state;
	for (int secret = 0; secret <= 1; secret++) {
		st_buf_init(&b, secret);
		assert_string_equal(st_buf_cstr(&b), "");
		for (size_t i = 0; i < 5000; i++)
			st_buf_appendc(&b, (unsigned char)('a' + i % 26));
		st_buf_append(&b, "", 0);
		st_buf_appendf(&b, "<%d:%s>", 42, "end");
		for (size_t i = 0; i < 100; i++)
			st_buf_append(&b, "0123456789abcdef0123456789abcdef"
			              "0123456789abcdef0123456789abcdef", 64);
		n = 5000 + 8 + 6400;
		assert_int_equal(b.len, n);
		assert_true(b.cap > b.len);
		assert_int_equal(b.secret, secret);
		for (size_t i = 0; i < 5000; i++)
			assert_int_equal(b.data[i], 'a' + i % 26);
		assert_memory_equal(b.data + 5000, "<42:end>", 8);
		assert_memory_equal(b.data + n - 64,
		                    "0123456789abcdef0123456789abcdef", 32);
		assert_int_equal(b.data[n], '\0');
		assert_int_equal(strlen(st_buf_cstr(&b)), n);
		st_buf_free(&b);
		assert_null(b.data);
		assert_int_equal(b.len, 0);
		assert_int_equal(b.cap, 0);
	}
}

/* ---- paths ---- */

static void paths(void **state)
{
	static const struct {
		const char *in, *out;
	} names[] = {
		{ "report.pdf", "report.pdf" },
		{ "../../etc/passwd", "passwd" },
		{ "/abs/path/x.txt", "x.txt" },
		{ "dir\\win.exe", "win.exe" },
		{ "..", "fallback" },
		{ ".", "fallback" },
		{ "", "fallback" },
		{ "a/", "fallback" },
		{ ".bashrc", "bashrc" },
		{ "a\x1b[2Jb\n.txt", "a[2Jb.txt" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
	};
	char *s, long_name[300];

	(void)state;
	s = st_path_join("/a", "b");
	assert_string_equal(s, "/a/b");
	free(s);
	s = st_path_join("/a/", "b");
	assert_string_equal(s, "/a/b");
	free(s);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		s = st_safe_basename(names[i].in, strlen(names[i].in),
		                     "fallback");
		assert_string_equal(s, names[i].out);
		free(s);
	}
	s = st_safe_basename("a\0b", 3, "fallback");
	assert_string_equal(s, "ab");
	free(s);
	/* cut at 200 bytes, never inside a UTF-8 sequence */
	memset(long_name, 'x', sizeof(long_name));
	for (size_t i = 199; i + 1 < sizeof(long_name); i += 2) {
		long_name[i] = '\xc3';
		long_name[i + 1] = '\xa9';
	}
	s = st_safe_basename(long_name, sizeof(long_name), "fallback");
	assert_int_equal(strlen(s), 199);
	free(s);
	s = st_safe_basename(long_name + 1, sizeof(long_name) - 1, "fallback");
	assert_int_equal(strlen(s), 200);
	free(s);
}

static void mkdir_checks(void **state)
{
	char *d = tdir("mkdir"), *p = st_path_join(d, "sub");
	char *f = st_path_join(d, "file");

	(void)state;
	assert_int_equal(st_mkdir(p, 0700), 0);
	assert_int_equal(mode_of(p), 0700);
	assert_int_equal(st_mkdir(p, 0700), 0);
	put(f, "x", 1);
	st_error_clear();
	assert_int_equal(st_mkdir(f, 0700), -1);
	assert_int_equal(st_errcode(), ST_EX_CANTCREAT);
	free(f);
	free(p);
	free(d);
}

/* ---- $ST_HOME and the config ---- */

static void home_from_env(void **state)
{
	char *p;

	(void)state;
	assert_non_null(st_home());
	assert_string_equal(st_home(), home);
	p = st_home_path("config");
	assert_non_null(strstr(p, "/home/config"));
	assert_int_equal(strncmp(p, home, strlen(home)), 0);
	free(p);
}

static void home_ensure_0700(void **state)
{
	struct stat st;

	(void)state;
	/* created fresh */
	assert_int_equal(access(home, F_OK), -1);
	assert_int_equal(st_home_ensure(), 0);
	assert_int_equal(stat(home, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	/* an existing home that others can read is narrowed */
	assert_int_equal(chmod(home, 0755), 0);
	assert_int_equal(st_home_ensure(), 0);
	assert_int_equal(mode_of(home), 0700);
	/* a file where the home should be is an error */
	assert_int_equal(rmdir(home), 0);
	put(home, "x", 1);
	st_error_clear();
	assert_int_equal(st_home_ensure(), -1);
	assert_int_equal(st_errcode(), ST_EX_CANTCREAT);
	assert_int_equal(unlink(home), 0);
	assert_int_equal(st_home_ensure(), 0);
}

static void home_lock_busy(void **state)
{
	int a, b;

	(void)state;
	a = st_home_lock(0);
	assert_true(a >= 0);
	/* a second open file description conflicts even in one process */
	st_error_clear();
	b = st_home_lock(40);
	assert_int_equal(b, -1);
	assert_int_equal(st_errcode(), ST_EX_TEMPFAIL);
	st_unlock(a);
	b = st_home_lock(0);
	assert_true(b >= 0);
	st_unlock(b);
}

static void config_roundtrip(void **state)
{
	struct st_json *c = st_json_object(), *l;
	char *p = st_home_path("config");
	const char *s;
	int64_t n;
	int tmps;

	(void)state;
	unlink(p);
	/* missing: an empty object */
	l = st_config_load();
	assert_non_null(l);
	assert_true(st_json_is_object(l));
	assert_null(st_json_get(l, "relay"));
	st_json_free(l);

	st_json_set_str(c, "relay", "https://relay.example");
	st_json_set_str(c, "user", "alice");
	st_json_set_int(c, "n", 3);
	assert_int_equal(st_config_save(c), 0);
	assert_int_equal(mode_of(p), 0600);
	assert_int_equal(mode_of(home), 0700);
	l = st_config_load();
	assert_non_null(l);
	assert_int_equal(st_json_get_str(l, "relay", &s, NULL), 0);
	assert_string_equal(s, "https://relay.example");
	assert_int_equal(st_json_get_str(l, "user", &s, NULL), 0);
	assert_string_equal(s, "alice");
	assert_int_equal(st_json_get_int(l, "n", 0, 10, &n), 0);
	assert_int_equal(n, 3);
	st_json_free(l);
	/* saving again replaces it */
	st_json_set_str(c, "user", "bob");
	assert_int_equal(st_config_save(c), 0);
	l = st_config_load();
	assert_int_equal(st_json_get_str(l, "user", &s, NULL), 0);
	assert_string_equal(s, "bob");
	st_json_free(l);
	entries(home, &tmps);
	assert_int_equal(tmps, 0);
	st_json_free(c);
	free(p);
}

static void config_bad(void **state)
{
	static const char *const bad[] = {
		"{bad", "[1,2]", "\"str\"", "{\"a\":1,\"a\":2}", "",
		"{\"relay\":\"x\"} trailing",
	};
	char *p = st_home_path("config");

	(void)state;
	assert_int_equal(st_home_ensure(), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(p, bad[i], strlen(bad[i]));
		st_error_clear();
		if (st_config_load() != NULL)
			fail_msg("config \"%s\" accepted", bad[i]);
		assert_int_equal(st_errcode(), ST_EX_CONFIG);
		assert_non_null(strstr(st_errmsg(), "config"));
	}
	unlink(p);
	free(p);
}

/*
 * An unreadable config (here: over the size cap) is an error, not "no
 * config", whatever errno an earlier failed call happened to leave behind.
 */
static void config_oversize_not_missing(void **state)
{
	char *p = st_home_path("config"), *big;
	struct st_json *l;
	const size_t n = 100 * 1024;

	(void)state;
	assert_int_equal(st_home_ensure(), 0);
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "{\"user\":\"alice\"}", 16);
	put(p, big, n);
	free(big);
	/* a failed lookup elsewhere leaves ENOENT in errno, as one will */
	assert_int_equal(open("/nonexistent/st-unit", O_RDONLY), -1);
	assert_int_equal(errno, ENOENT);
	st_error_clear();
	l = st_config_load();
	if (l) {
		st_json_free(l);
		fail_msg("an oversize config was taken for a missing one");
	}
	assert_int_equal(st_errcode(), ST_EX_CONFIG);
	assert_non_null(strstr(st_errmsg(), "config"));
	unlink(p);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(write_atomic_mode),
		cmocka_unit_test(write_atomic_replaces),
		cmocka_unit_test(write_atomic_missing_dir),
		cmocka_unit_test(write_atomic_failure_cleans_up),
		cmocka_unit_test(write_atomic_symlink),
		cmocka_unit_test(atomic_abort),
		cmocka_unit_test(read_cap),
		cmocka_unit_test(read_missing),
		cmocka_unit_test(lock_busy_times_out),
		cmocka_unit_test(lock_refuses_symlink),
		cmocka_unit_test(error_colon_appends_strerror),
		cmocka_unit_test(error_ctx_prefixes),
		cmocka_unit_test(buf_grows),
		cmocka_unit_test(paths),
		cmocka_unit_test(mkdir_checks),
		/* home tests in order: the first sees no home yet */
		cmocka_unit_test(home_from_env),
		cmocka_unit_test(home_ensure_0700),
		cmocka_unit_test(home_lock_busy),
		cmocka_unit_test(config_roundtrip),
		cmocka_unit_test(config_bad),
		cmocka_unit_test(config_oversize_not_missing),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
