/*
 * st-vault - the encrypted vault, and age-compatible encrypt/decrypt
 * filters.  One subcommand per function below main(); the work is in
 * libst/vault.c and libst/age.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

#define LOCK_MS 10000
#define GREP_MAX (16 * 1024 * 1024)

static const char synopsis[] =
	"usage: st-vault ls [-j] [--from USER] [--since TIME]\n"
	"       st-vault cat ID...\n"
	"       st-vault get ID [-o FILE]\n"
	"       st-vault put [-n NAME] [FILE|-]\n"
	"       st-vault rm ID...\n"
	"       st-vault grep [-i] PATTERN\n"
	"       st-vault encrypt [-r RECIPIENT]... [-R FILE] [-p] [-a] [-o FILE]\n"
	"                        [--passphrase-file F] [FILE]\n"
	"       st-vault decrypt [-i IDENTITY]... [-o FILE] [--passphrase-file F] [FILE]\n"
	"       st-vault rekey\n"
	"  (ls, cat, get, put, rm, grep and rekey take --passphrase-file F for a\n"
	"   vault key protected by st-keygen --protect)\n";

static void usage(int code)
{
	if (code && *st_errmsg())
		st_warn("%s", st_errmsg());
	fputs(synopsis, code ? stderr : stdout);
	exit(code);
}

static void die_err(void)
{
	st_die(st_errcode(), "%s", st_errmsg());
}

/* Parse a subcommand's options; returns the option character or -1. */
static int opt(int argc, char **argv, const char *sh,
               const struct option *lo)
{
	/* no abbreviations: "--pass X" must not pass for a longer option */
	int c = st_getopt(argc, argv, sh, lo);

	if (c == '?')
		usage(ST_EX_USAGE);
	if (c == 'h')
		usage(0);
	return c;
}

static struct st_vault *open_vault(int create, int *lockfd)
{
	struct st_vault *v;

	umask(077);
	if (lockfd && (*lockfd = st_home_lock(LOCK_MS)) < 0)
		die_err();
	if (lockfd)
		st_home_sweep("vault");
	if (!(v = st_vault_open(create)))
		die_err();
	return v;
}

static void resolve(struct st_vault *v, const char *arg, char *id)
{
	if (st_vault_resolve(v, arg, id) < 0)
		die_err();
}

static int cmd_ls(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' }, { "from", required_argument, 0, 'f' },
		{ "since", required_argument, 0, 's' }, { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 } };
	const char *from = NULL;
	int64_t since = INT64_MIN, ts, size;
	int json = 0, c;
	struct st_json **items;
	size_t n;
	struct st_vault *v;
	char when[20];

	while ((c = opt(argc, argv, "jf:s:h", lo)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'f')
			from = optarg;
		else if (c == 's' && st_time_parse(optarg, &since) < 0)
			st_die(ST_EX_USAGE, "%s", st_errmsg());
	}
	if (optind != argc)
		usage(ST_EX_USAGE);
	v = open_vault(0, NULL);
	if (st_vault_list(v, &items, &n) < 0)
		die_err();
	for (size_t i = 0; i < n; i++) {
		const char *id = "", *kind = "?", *who = "", *name = "";

		ts = size = 0;
		st_json_get_int(items[i], "ts", INT64_MIN, INT64_MAX, &ts);
		st_json_get_int(items[i], "size", 0, INT64_MAX, &size);
		st_json_get_str(items[i], "id", &id, NULL);
		st_json_get_str(items[i], "kind", &kind, NULL);
		st_json_get_str(items[i], "from", &who, NULL);
		st_json_get_str(items[i], "name", &name, NULL);
		if ((from && strcmp(from, who)) || ts < since)
			continue;
		if (json) {
			char *d = st_json_dump(items[i]);

			puts(d);
			free(d);
			continue;
		}
		st_time_format(ts, when);
		printf("%s  %s  %-13s  ", id, when, kind);
		st_tty_fputs(stdout, *who ? who : "-", strlen(*who ? who : "-"));
		printf("  %10lld  ", (long long)size);
		st_tty_fputs(stdout, name, strlen(name));
		putchar('\n');
	}
	st_vault_list_free(items, n);
	st_vault_close(v);
	return 0;
}

static int cmd_cat(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' },
	                                    { 0, 0, 0, 0 } };
	struct st_tty_sink t;
	struct st_vault *v;
	char id[ST_VAULT_ID_LEN + 1];

	while (opt(argc, argv, "h", lo) != -1)
		;
	if (optind == argc)
		usage(ST_EX_USAGE);
	v = open_vault(0, NULL);
	st_tty_sink_init(&t, stdout);
	for (int i = optind; i < argc; i++) {
		resolve(v, argv[i], id);
		if (st_vault_read(v, id, st_sink_tty, &t) < 0 ||
		    st_tty_sink_flush(&t) < 0)
			die_err();
	}
	st_vault_close(v);
	return 0;
}

/*
 * Write into an atomically created file: nothing is left on failure.  A
 * device or pipe (-o /dev/null, -o /dev/fd/3) is written in place: renaming
 * a temporary over it would replace the device with a file.
 */
static int to_file(const char *path, int (*fill)(void *, int), void *ctx)
{
	struct st_atomic a;
	struct stat st;
	int fd, rc;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
			return st_error(ST_EX_CANTCREAT, "cannot open %s:", path);
		rc = fill(ctx, fd);
		if (close(fd) < 0 && rc == 0)
			rc = st_error(ST_EX_CANTCREAT, "cannot write %s:", path);
		return rc;
	}
	if (st_atomic_open(&a, path, 0600) < 0)
		return -1;
	if (fill(ctx, a.fd) < 0) {
		st_atomic_abort(&a);
		return -1;
	}
	/* an output file, not state: whole or absent, but not fsynced */
	return st_atomic_commit_nosync(&a);
}

struct item { struct st_vault *v; const char *id; };

static int fill_item(void *ctx, int fd)
{
	struct item *it = ctx;

	return st_vault_read(it->v, it->id, st_sink_fd, &fd);
}

static int cmd_get(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, 0, 'o' }, { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 } };
	const char *out = NULL, *name = "";
	char id[ST_VAULT_ID_LEN + 1], *path;
	struct st_json *meta;
	struct st_vault *v;
	struct item it;
	int c, fd;

	while ((c = opt(argc, argv, "o:h", lo)) != -1)
		out = optarg;
	if (optind + 1 != argc)
		usage(ST_EX_USAGE);
	v = open_vault(0, NULL);
	resolve(v, argv[optind], id);
	it = (struct item){ v, id };
	if (out && strcmp(out, "-") == 0) {
		fd = 1;
		if (fill_item(&it, fd) < 0)
			die_err();
	} else if (out) {
		if (to_file(out, fill_item, &it) < 0)
			die_err();
	} else {
		/* no -o: the item's own name, made safe, never overwriting */
		if (!(meta = st_vault_meta(v, id)))
			die_err();
		st_json_get_str(meta, "name", &name, NULL);
		path = st_safe_basename(name, strlen(name), id);
		st_json_free(meta);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		if (fd < 0)
			st_die(ST_EX_CANTCREAT, "cannot create %s: %s", path,
			       strerror(errno));
		if (fill_item(&it, fd) < 0 || fsync(fd) < 0 || close(fd) < 0) {
			unlink(path);
			die_err();
		}
		st_tty_fputs(stdout, path, strlen(path));
		putchar('\n');
		free(path);
	}
	st_vault_close(v);
	return 0;
}

static int cmd_put(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "name", required_argument, 0, 'n' }, { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 } };
	const char *name = NULL, *file = "-", *user;
	char id[ST_VAULT_ID_LEN + 1], *base = NULL;
	struct st_json *meta, *cfg;
	struct st_vault *v;
	int c, fd = 0, lock;

	while ((c = opt(argc, argv, "n:h", lo)) != -1)
		name = optarg;
	if (argc - optind > 1)
		usage(ST_EX_USAGE);
	if (optind < argc)
		file = argv[optind];
	if (strcmp(file, "-") && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		st_die(ST_EX_NOINPUT, "cannot open %s: %s", file, strerror(errno));
	if (!name && strcmp(file, "-"))
		name = base = st_safe_basename(file, strlen(file), "file");
	v = open_vault(1, &lock);
	meta = st_json_object();
	st_json_set_str(meta, "kind", "file");
	if ((cfg = st_config_load()) && st_json_get_str(cfg, "user", &user, NULL) == 0)
		st_json_set_str(meta, "from", user);
	st_json_set_int(meta, "ts", st_now_ms());
	if (name)
		st_json_set_str(meta, "name", name);
	if (st_vault_put(v, meta, fd, NULL, 0, id) < 0) {
		/* "cannot read input:" names no file */
		if (st_errcode() == ST_EX_NOINPUT && strcmp(file, "-"))
			st_error_ctx("%s", file);
		die_err();
	}
	puts(id);
	st_json_free(meta);
	st_json_free(cfg);
	free(base);
	st_vault_close(v);
	st_unlock(lock);
	return 0;
}

static int cmd_rm(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' },
	                                    { 0, 0, 0, 0 } };
	char id[ST_VAULT_ID_LEN + 1];
	struct st_vault *v;
	int lock, rc = 0;

	while (opt(argc, argv, "h", lo) != -1)
		;
	if (optind == argc)
		usage(ST_EX_USAGE);
	v = open_vault(0, &lock);
	for (int i = optind; i < argc; i++) {
		if (st_vault_resolve(v, argv[i], id) < 0 ||
		    st_vault_rm(v, id) < 0) {
			st_warn("%s", st_errmsg());
			rc = rc ? rc : st_errcode();
		}
	}
	st_vault_close(v);
	st_unlock(lock);
	return rc;
}

/* Print the lines of one message that match. */
static int grep_item(struct st_vault *v, const char *id, regex_t *re)
{
	struct st_buf b;
	char *line, *save = NULL;
	int found = 0;

	st_buf_init(&b, 1);
	if (st_vault_read(v, id, st_sink_buf, &b) < 0)
		die_err();
	st_buf_cstr(&b);
	if (memchr(b.data, '\0', b.len) == NULL) {
		for (line = strtok_r((char *)b.data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (regexec(re, line, 0, NULL, 0))
				continue;
			found = 1;
			printf("%s:", id);
			st_tty_fputs(stdout, line, strlen(line));
			putchar('\n');
		}
	}
	st_buf_free(&b);
	return found;
}

static int cmd_grep(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ignore-case", no_argument, 0, 'i' }, { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 } };
	int flags = REG_EXTENDED | REG_NOSUB, c, found = 0, e;
	struct st_json **items;
	struct st_vault *v;
	size_t n;
	regex_t re;
	char msg[256];

	while ((c = opt(argc, argv, "ih", lo)) != -1)
		flags |= REG_ICASE;
	if (optind + 1 != argc)
		usage(ST_EX_USAGE);
	if ((e = regcomp(&re, argv[optind], flags))) {
		regerror(e, &re, msg, sizeof(msg));
		st_die(ST_EX_USAGE, "bad pattern: %s", msg);
	}
	v = open_vault(0, NULL);
	if (st_vault_list(v, &items, &n) < 0)
		die_err();
	for (size_t i = 0; i < n; i++) {
		const char *kind = "", *id = "";
		int64_t size = 0;

		st_json_get_str(items[i], "kind", &kind, NULL);
		st_json_get_str(items[i], "id", &id, NULL);
		st_json_get_int(items[i], "size", 0, INT64_MAX, &size);
		/* messages, and files that turn out to be text (notes) */
		if (strcmp(kind, "undecryptable") && size <= GREP_MAX)
			found |= grep_item(v, id, &re);
	}
	regfree(&re);
	st_vault_list_free(items, n);
	st_vault_close(v);
	return found ? 0 : ST_EX_NO;
}

/* ---- the age filters ---- */

struct filter {
	int infd;
	const char *in;         /* the input's name; NULL for stdin */
	int armor;
	struct st_age_rcpt *r;
	size_t nr;
	struct st_age_id *ids;
	size_t nids;
	const char *out;
};

static int pump_encrypt(void *ctx, int fd)
{
	struct filter *f = ctx;
	struct st_age_enc *e = st_age_enc_new(f->r, f->nr, f->armor,
	                                      st_sink_fd, &fd);
	unsigned char *buf = st_malloc(4 * ST_STREAM_CHUNK);
	ssize_t got;
	size_t dirty = 0;
	int rc = -1;

	if (!e)
		goto out;
	while ((got = read(f->infd, buf, 4 * ST_STREAM_CHUNK)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			st_error(ST_EX_NOINPUT, "cannot read input:");
			goto out;
		}
		if ((size_t)got > dirty)
			dirty = (size_t)got;
		if (st_age_enc_write(e, buf, (size_t)got) < 0)
			goto out;
	}
	rc = st_age_enc_finish(e);
	e = NULL;
out:
	st_age_enc_free(e);
	st_wipe(buf, dirty);
	free(buf);
	return rc;
}

static int pump_decrypt(void *ctx, int fd)
{
	struct filter *f = ctx;

	return st_age_decrypt(f->infd, f->ids, f->nids, st_sink_fd, &fd);
}

static void open_input(struct filter *f, int argc, char **argv)
{
	if (argc - optind > 1)
		usage(ST_EX_USAGE);
	f->infd = 0;
	f->in = NULL;
	if (optind == argc || strcmp(argv[optind], "-") == 0)
		return;
	f->in = argv[optind];
	if ((f->infd = open(f->in, O_RDONLY | O_CLOEXEC)) < 0)
		st_die(ST_EX_NOINPUT, "cannot open %s: %s", f->in,
		       strerror(errno));
}

/*
 * A filter failed: name the file it is about ("cannot write output" and
 * "no identity matched" name none), and for a key that does not match,
 * the option that gives the right one.
 */
static void filter_die(const struct filter *f, int decrypting)
{
	const char *in = f->in ? f->in : "standard input";
	int code = st_errcode();

	if (code == ST_EX_CANTCREAT && f->out && strcmp(f->out, "-") &&
	    !strstr(st_errmsg(), f->out))
		st_error_ctx("%s", f->out);
	else if (decrypting && code == ST_EX_NO &&
	         strstr(st_errmsg(), "no identity matched"))
		st_error(ST_EX_NO, "%s: no identity matched any of the "
		         "recipients: give the file's key with -i IDENTITY", in);
	else if (code != ST_EX_CANTCREAT && code != ST_EX_USAGE &&
	         !strstr(st_errmsg(), in))
		st_error_ctx("%s", in);
	die_err();
}

static void run_filter(struct filter *f, int (*pump)(void *, int))
{
	struct st_tty_sink t;

	if (f->out && strcmp(f->out, "-")) {
		if (to_file(f->out, pump, f) < 0)
			filter_die(f, pump == pump_decrypt);
		return;
	}
	if (pump == pump_encrypt) {
		if (!f->armor && isatty(1))
			st_die(ST_EX_USAGE, "refusing to write binary to a terminal; "
			       "use -a or -o FILE");
		if (pump(f, 1) < 0)
			filter_die(f, pump == pump_decrypt);
		return;
	}
	st_tty_sink_init(&t, stdout);
	if (st_age_decrypt(f->infd, f->ids, f->nids, st_sink_tty, &t) < 0)
		filter_die(f, pump == pump_decrypt);
	if (st_tty_sink_flush(&t) < 0)
		die_err();
}

static void add_rcpt(struct filter *f, const struct st_age_rcpt *r, size_t n)
{
	f->r = st_realloc(f->r, (f->nr + n) * sizeof(*f->r));
	memcpy(f->r + f->nr, r, n * sizeof(*r));
	f->nr += n;
}

static int cmd_encrypt(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "recipient", required_argument, 0, 'r' },
		{ "recipients-file", required_argument, 0, 'R' },
		{ "passphrase", no_argument, 0, 'p' }, { "armor", no_argument, 0, 'a' },
		{ "output", required_argument, 0, 'o' },
		{ "passphrase-file", required_argument, 0, 'P' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	struct filter f = { 0 };
	struct st_age_rcpt r = { 0 }, *rs;
	const char *pfile = NULL;
	char *pass = NULL, *again;
	int c, pw = 0;
	size_t n;

	while ((c = opt(argc, argv, "r:R:pao:h", lo)) != -1) {
		if (c == 'r') {
			/* shown only when it looks like one: a secret
			 * key given by mistake is never echoed */
			if (st_age_parse_recipient(optarg, &r) < 0)
				st_die(ST_EX_USAGE, "-r%s%.100s: %s",
				       strncasecmp(optarg, "age1", 4) ? "" : " ",
				       strncasecmp(optarg, "age1", 4) ? "" :
				       optarg, st_errmsg());
			add_rcpt(&f, &r, 1);
		} else if (c == 'R') {
			if (st_age_load_recipients(optarg, &rs, &n) < 0)
				die_err();
			add_rcpt(&f, rs, n);
			free(rs);
		} else if (c == 'p')
			pw = 1;
		else if (c == 'a')
			f.armor = 1;
		else if (c == 'o')
			f.out = optarg;
		else if (c == 'P')
			pfile = optarg;
	}
	open_input(&f, argc, argv);
	if (pw && f.nr)
		st_die(ST_EX_USAGE, "-p cannot be combined with -r or -R");
	if (pw) {
		if (!(pass = st_read_secret(pfile, "Enter passphrase: ")))
			die_err();
		if (!pfile) {
			if (!(again = st_read_secret(NULL, "Confirm passphrase: ")))
				die_err();
			c = strcmp(pass, again);
			st_free_str_secret(again);
			if (c)
				st_die(ST_EX_USAGE, "passphrases didn't match");
		}
		r = (struct st_age_rcpt){ .type = ST_AGE_SCRYPT, .passphrase = pass };
		add_rcpt(&f, &r, 1);
	} else if (!f.nr) {
		/* no recipient given: the vault's own key, made if need be */
		int lock;
		struct st_vault *v = open_vault(1, &lock);

		st_unlock(lock);
		if (st_age_parse_recipient(st_vault_recipient(v), &r) < 0)
			die_err();
		add_rcpt(&f, &r, 1);
		st_vault_close(v);
	}
	run_filter(&f, pump_encrypt);
	st_free_str_secret(pass);
	free(f.r);
	return 0;
}

static char *ask_passphrase(void)
{
	return st_read_secret(NULL, "Enter passphrase: ");
}

static int cmd_decrypt(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "identity", required_argument, 0, 'i' },
		{ "output", required_argument, 0, 'o' },
		{ "passphrase-file", required_argument, 0, 'P' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	struct filter f = { 0 };
	struct st_age_id *ids;
	struct st_vault *v = NULL;
	const struct st_age_id *vids;
	const char *pfile = NULL;
	char *pass = NULL;
	size_t n;
	int c;

	while ((c = opt(argc, argv, "i:o:h", lo)) != -1) {
		if (c == 'i') {
			if (st_age_load_identities(optarg, &ids, &n) < 0)
				die_err();
			f.ids = st_realloc(f.ids, (f.nids + n) * sizeof(*ids));
			memcpy(f.ids + f.nids, ids, n * sizeof(*ids));
			f.nids += n;
			st_free_secret(ids, n * sizeof(*ids));
		} else if (c == 'o')
			f.out = optarg;
		else if (c == 'P')
			pfile = optarg;
	}
	open_input(&f, argc, argv);
	if (!f.nids) {
		/* no -i: the vault's key */
		v = open_vault(0, NULL);
		vids = st_vault_ids(v, &n);
		f.ids = st_calloc(n + 1, sizeof(*f.ids));
		memcpy(f.ids, vids, n * sizeof(*vids));
		f.nids = n;
	}
	/* a passphrase is read only if the file is passphrase-encrypted */
	if (pfile && !(pass = st_read_secret(pfile, NULL)))
		die_err();
	f.ids = st_realloc(f.ids, (f.nids + 1) * sizeof(*f.ids));
	f.ids[f.nids++] = (struct st_age_id){ .type = ST_AGE_SCRYPT,
	                                      .passphrase = pass,
	                                      .ask = ask_passphrase };
	run_filter(&f, pump_decrypt);
	st_free_secret(f.ids, f.nids * sizeof(*f.ids));
	st_free_str_secret(pass);
	st_vault_close(v);
	return 0;
}

static int cmd_rekey(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' },
	                                    { 0, 0, 0, 0 } };
	struct st_vault *v;
	int lock;

	while (opt(argc, argv, "h", lo) != -1)
		;
	if (optind != argc)
		usage(ST_EX_USAGE);
	v = open_vault(0, &lock);
	if (st_vault_rekey(v) < 0)
		die_err();
	puts(st_vault_recipient(v));
	st_vault_close(v);
	st_unlock(lock);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} cmds[] = {
	{ "ls", cmd_ls }, { "cat", cmd_cat }, { "get", cmd_get },
	{ "put", cmd_put }, { "rm", cmd_rm }, { "grep", cmd_grep },
	{ "encrypt", cmd_encrypt }, { "decrypt", cmd_decrypt },
	{ "rekey", cmd_rekey },
};

/*
 * The subcommands that open the vault key take --passphrase-file F (or
 * --passphrase-file=F) anywhere before "--", for a key st-keygen
 * --protect wrapped; it is taken out of argv here.  (encrypt and decrypt
 * have their own --passphrase-file: the age file's passphrase.)
 */
static int take_passphrase_file(int argc, char **argv)
{
	static const char name[] = "--passphrase-file";
	const char *file = NULL;
	int i, j;

	for (i = j = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], name)) {
			if (i + 1 >= argc)
				st_die(ST_EX_USAGE, "%s needs a file", name);
			file = argv[++i];
		} else if (!strncmp(argv[i], name, sizeof(name) - 1) &&
		           argv[i][sizeof(name) - 1] == '=') {
			file = argv[i] + sizeof(name);
		} else {
			argv[j++] = argv[i];
		}
	}
	argv[j] = NULL;
	if (file)
		st_keystore_set_passphrase_file(file);
	return j;
}

int main(int argc, char **argv)
{
	int rc;

	st_setprogname(argv[0]);
	if (argc < 2)
		usage(ST_EX_USAGE);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		usage(0);
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		puts("st-vault " ST_VERSION);
		return st_close_stdout() < 0 ? ST_EX_CANTCREAT : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		if (strcmp(argv[1], "encrypt") && strcmp(argv[1], "decrypt"))
			argc = take_passphrase_file(argc, argv);
		optind = 1;
		rc = cmds[i].fn(argc - 1, argv + 1);
		if (st_close_stdout() < 0)
			st_die(ST_EX_CANTCREAT, "%s", st_errmsg());
		return rc;
	}
	st_warn("unknown subcommand '%s'", argv[1]);
	usage(ST_EX_USAGE);
}
