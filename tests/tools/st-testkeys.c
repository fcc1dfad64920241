/*
 * st-testkeys - valid (and deliberately invalid) key material and signed
 * requests for the relay's tests, so BATS can talk to st-relay with curl
 * alone.  A KEYFILE holds an identity's secrets (identity.json's format).
 *
 *   st-testkeys register [--bad-bind|--bad-spk] USER PASSWORD KEYFILE [NOPKS [FIRST]]
 *       write a fresh identity to KEYFILE; print a POST /v1/accounts body
 *       with signed prekey 1 and NOPKS one-time prekeys numbered from FIRST
 *   st-testkeys keys [--bad-spk] KEYFILE SPKID|- NOPKS FIRST
 *       print a PUT /v1/keys body
 *   st-testkeys post KEYFILE CHANNEL FROM TS TEXT
 *       print a POST /v1/channels body {"post": ...}
 *   st-testkeys toik KEYFILE         the identity's to_ik
 *   st-testkeys toik-json            to_ik of the {identity} on stdin
 *   st-testkeys get KEY[.KEY|.N]...  print a member of the JSON on stdin
 *                                    (strings raw, anything else as JSON);
 *                                    exit 1 when it is missing
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

static void usage(void)
{
	fputs("usage: st-testkeys register|keys|post|toik|toik-json|get ...\n",
	      stderr);
	exit(ST_EX_USAGE);
}

static void print(struct st_json *j)
{
	char *s = st_json_dump(j);

	puts(s);
	free(s);
	st_json_free(j);
}

static void load(const char *path, struct st_identity *id)
{
	unsigned char *buf;
	size_t n;
	struct st_json *j;

	if (st_read_file(path, 1 << 16, &buf, &n) < 0 ||
	    !(j = st_json_parse((char *)buf, n, n, path)) ||
	    st_identity_secret_from_json(j, id) < 0)
		st_die(st_errcode(), "%s", st_errmsg());
	st_json_free(j);
	free(buf);
}

/* spk (unless spk_id < 0) and opks first..first+nopks-1 into o */
static void prekeys(struct st_json *o, const struct st_identity *id,
                    long spk_id, long nopks, long first, int bad_spk)
{
	struct st_spk spk;
	struct st_opk opk;
	struct st_json *arr = st_json_array();

	if (spk_id >= 0) {
		if (st_spk_generate(id, (uint32_t)spk_id, NULL, st_now_ms(),
		                    &spk) < 0)
			st_die(1, "%s", st_errmsg());
		if (bad_spk)
			spk.sig[0] ^= 1;
		st_json_set(o, "spk", st_spk_to_json(&spk));
	}
	for (long i = 0; i < nopks; i++) {
		if (st_opk_generate((uint32_t)(first + i), NULL, &opk) < 0)
			st_die(1, "%s", st_errmsg());
		st_json_array_append(arr, st_opk_to_json(&opk));
	}
	if (nopks >= 0)
		st_json_set(o, "opks", arr);
	else
		st_json_free(arr);
}

static int cmd_register(int argc, char **argv, int bad_bind, int bad_spk)
{
	struct st_identity id;
	struct st_json *o, *sec;
	char *s;

	if (argc < 3)
		usage();
	if (st_identity_generate(&id) < 0)
		st_die(1, "%s", st_errmsg());
	sec = st_identity_secret_to_json(&id);
	s = st_json_dump(sec);
	if (st_write_atomic(argv[2], s, strlen(s), 0600) < 0)
		st_die(st_errcode(), "%s", st_errmsg());
	free(s);
	st_json_free_secret(sec);
	o = st_json_object();
	st_json_set_str(o, "user", argv[0]);
	st_json_set_str(o, "password", argv[1]);
	if (bad_bind)
		id.pub.bind[5] ^= 0x80;
	st_json_set(o, "identity", st_identity_to_json(&id.pub));
	prekeys(o, &id, 1, argc > 3 ? atol(argv[3]) : 0,
	        argc > 4 ? atol(argv[4]) : 1, bad_spk);
	print(o);
	return 0;
}

static int cmd_keys(int argc, char **argv, int bad_spk)
{
	struct st_identity id;
	struct st_json *o = st_json_object();

	if (argc < 4)
		usage();
	load(argv[0], &id);
	prekeys(o, &id, strcmp(argv[1], "-") ? atol(argv[1]) : -1,
	        atol(argv[2]) > 0 ? atol(argv[2]) : -1, atol(argv[3]), bad_spk);
	print(o);
	return 0;
}

static int cmd_post(int argc, char **argv)
{
	struct st_identity id;
	struct st_json *o = st_json_object(), *p;

	if (argc < 5)
		usage();
	load(argv[0], &id);
	p = st_post_sign(&id, argv[1], argv[2], atoll(argv[3]), argv[4],
	                 strlen(argv[4]));
	if (!p)
		st_die(1, "%s", st_errmsg());
	st_json_set(o, "post", p);
	print(o);
	return 0;
}

static struct st_json *read_stdin(void)
{
	unsigned char *buf;
	size_t n;
	struct st_json *j;

	if (st_read_fd(0, 1 << 26, "standard input", &buf, &n) < 0 ||
	    !(j = st_json_parse((char *)buf, n, n, "standard input")))
		st_die(ST_EX_DATAERR, "%s", st_errmsg());
	free(buf);
	return j;
}

static int cmd_toik(int argc, char **argv, int json)
{
	struct st_identity id;
	struct st_identity_pub pub;
	struct st_json *j, *ik;
	char out[ST_TO_IK_LEN + 1];

	if (json) {
		j = read_stdin();
		if (st_json_get_obj(j, "identity", &ik) < 0)
			ik = j;
		if (st_identity_from_json(ik, &pub) < 0)
			st_die(ST_EX_DATAERR, "%s", st_errmsg());
		st_json_free(j);
	} else {
		if (argc < 1)
			usage();
		load(argv[0], &id);
		pub = id.pub;
	}
	st_identity_to_ik(&pub, out);
	puts(out);
	return 0;
}

static int cmd_get(int argc, char **argv)
{
	struct st_json *root = read_stdin(), *v = root;
	char *path, *key, *save, *end, *s;
	const char *str;
	long i;

	if (argc < 1)
		usage();
	path = st_strdup(argv[0]);
	for (key = strtok_r(path, ".", &save); key && v;
	     key = strtok_r(NULL, ".", &save)) {
		i = strtol(key, &end, 10);
		if (st_json_is_array(v) && !*end && i >= 0)
			v = st_json_array_get(v, (size_t)i);
		else if (st_json_is_object(v))
			v = st_json_get(v, key);
		else
			v = NULL;
	}
	free(path);
	if (!v)
		return 1;
	if (st_json_as_str(v, &str, NULL) == 0) {
		puts(str);
	} else {
		s = st_json_dump(v);
		puts(s);
		free(s);
	}
	st_json_free(root);
	return 0;
}

int main(int argc, char **argv)
{
	int bad_bind = 0, bad_spk = 0;
	const char *cmd;

	st_setprogname(argv[0]);
	if (argc < 2)
		usage();
	cmd = argv[1];
	argc -= 2;
	argv += 2;
	for (; argc && strncmp(argv[0], "--", 2) == 0; argc--, argv++) {
		if (strcmp(argv[0], "--bad-bind") == 0)
			bad_bind = 1;
		else if (strcmp(argv[0], "--bad-spk") == 0)
			bad_spk = 1;
		else
			usage();
	}
	if (strcmp(cmd, "register") == 0)
		return cmd_register(argc, argv, bad_bind, bad_spk);
	if (strcmp(cmd, "keys") == 0)
		return cmd_keys(argc, argv, bad_spk);
	if (strcmp(cmd, "post") == 0)
		return cmd_post(argc, argv);
	if (strcmp(cmd, "toik") == 0)
		return cmd_toik(argc, argv, 0);
	if (strcmp(cmd, "toik-json") == 0)
		return cmd_toik(argc, argv, 1);
	if (strcmp(cmd, "get") == 0)
		return cmd_get(argc, argv);
	usage();
	return ST_EX_USAGE;
}
