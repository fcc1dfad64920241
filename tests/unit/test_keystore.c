/*
 * test_keystore.c - the local key files: the passphrase wrapping (round
 * trip, wrong passphrase, every tampered field failing with the right
 * class), protected identity and prekey files in a temporary $ST_HOME with
 * their modes, prekey rotation, expiry and one-time prekey bookkeeping
 * (ids never reused, the cap), and the wrapped vault key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

static char top[64];
static char *home, *passfile;

static int setup_group(void **state)
{
	FILE *f;

	(void)state;
	strcpy(top, "/tmp/st-unit-keystore-XXXXXX");
	if (!mkdtemp(top))
		return -1;
	home = st_path_join(top, "home");
	setenv("ST_HOME", home, 1);
	passfile = st_path_join(top, "pass");
	if (!(f = fopen(passfile, "w")))
		return -1;
	fputs("correct horse battery\n", f);
	fclose(f);
	return 0;
}

static int teardown_group(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	free(home);
	free(passfile);
	return system(cmd) == 0 ? 0 : -1;
}

static const char secret[] = "{\"v\":1,\"some\":\"secret bytes\"}";

static void wrap_roundtrip(void **state)
{
	unsigned char *pt;
	size_t n;
	char *w;

	(void)state;
	assert_int_equal(st_keystore_wrap("pw one", NULL, secret,
	                                  strlen(secret), &w), 0);
	assert_true(st_keystore_is_wrapped(w, strlen(w)));
	assert_false(st_keystore_is_wrapped(secret, strlen(secret)));
	assert_null(strstr(w, "secret bytes"));
	assert_int_equal(st_keystore_unwrap("pw one", "test", w, strlen(w),
	                                    &pt, &n), 0);
	assert_int_equal(n, strlen(secret));
	assert_memory_equal(pt, secret, n);
	st_free_secret(pt, n);
	free(w);
}

static void wrap_empty_plaintext(void **state)
{
	unsigned char *pt;
	size_t n;
	char *w;

	(void)state;
	assert_int_equal(st_keystore_wrap("pw", NULL, "", 0, &w), 0);
	assert_int_equal(st_keystore_unwrap("pw", "test", w, strlen(w), &pt,
	                                    &n), 0);
	assert_int_equal(n, 0);
	st_free_secret(pt, 1);
	free(w);
}

static void wrap_wrong_passphrase(void **state)
{
	unsigned char *pt = (unsigned char *)"x";
	size_t n;
	char *w;

	(void)state;
	assert_int_equal(st_keystore_wrap("right", NULL, secret,
	                                  strlen(secret), &w), 0);
	assert_int_equal(st_keystore_unwrap("wrong", "f.json", w, strlen(w),
	                                    &pt, &n), -1);
	assert_null(pt);
	assert_int_equal(st_errcode(), ST_EX_NOPERM);
	assert_non_null(strstr(st_errmsg(), "wrong passphrase"));
	assert_non_null(strstr(st_errmsg(), "f.json"));
	free(w);
}

/* Replace the string value of member key by val in the wrapper text. */
static char *set_member(const char *w, const char *key, const char *val)
{
	char pat[32], *out = st_malloc(strlen(w) + strlen(val) + 1);
	const char *s, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	s = strstr(w, pat);
	assert_non_null(s);
	s += strlen(pat);
	e = strchr(s, '"');
	memcpy(out, w, (size_t)(s - w));
	strcpy(out + (s - w), val);
	strcat(out, e);
	return out;
}

/* Flip one base64url character of member key. */
static char *flip_member(const char *w, const char *key, size_t at)
{
	char pat[32], *out = st_strdup(w), *s;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	s = strstr(out, pat);
	assert_non_null(s);
	s += strlen(pat) + at;
	*s = *s == 'A' ? 'B' : 'A';
	return out;
}

static void expect_fail(const char *w, int code)
{
	unsigned char *pt;
	size_t n;

	assert_int_equal(st_keystore_unwrap("pw", "t", w, strlen(w), &pt, &n),
	                 -1);
	assert_int_equal(st_errcode(), code);
}

static void wrap_tampered(void **state)
{
	struct st_identity id;
	char *w, *t;

	(void)state;
	assert_int_equal(st_identity_generate(&id), 0);
	assert_int_equal(st_keystore_wrap("pw", &id.pub, secret,
	                                  strlen(secret), &w), 0);
	/* the ciphertext, its tag, the nonce: authentication fails */
	t = flip_member(w, "ct", 3);
	expect_fail(t, ST_EX_DATAERR);
	assert_non_null(strstr(st_errmsg(), "tampered"));
	free(t);
	t = flip_member(w, "ct", strlen(secret) + 8);
	expect_fail(t, ST_EX_DATAERR);
	free(t);
	t = flip_member(w, "nonce", 2);
	expect_fail(t, ST_EX_DATAERR);
	free(t);
	/* the public identity in the clear is authenticated too: a swapped
	 * one (with a valid binding of its own) fails */
	{
		struct st_identity other;
		struct st_json *j;
		char *pub, *s, *e;

		assert_int_equal(st_identity_generate(&other), 0);
		j = st_identity_to_json(&other.pub);
		pub = st_json_dump(j);
		st_json_free(j);
		s = strstr(w, "\"public\":");
		assert_non_null(s);
		e = strrchr(w, '}');
		t = st_malloc(strlen(w) + strlen(pub) + 16);
		memcpy(t, w, (size_t)(s - w));
		sprintf(t + (s - w), "\"public\":%s%s", pub, e);
		expect_fail(t, ST_EX_DATAERR);
		free(t);
		free(pub);
		st_identity_wipe(&other);
	}
	/* a broken binding in the public part is refused as such */
	t = flip_member(w, "bind", 5);
	expect_fail(t, ST_EX_DATAERR);
	free(t);
	/* salt or check changed: the passphrase no longer matches */
	t = flip_member(w, "salt", 1);
	expect_fail(t, ST_EX_NOPERM);
	free(t);
	t = flip_member(w, "check", 1);
	expect_fail(t, ST_EX_NOPERM);
	free(t);
	/* malformed wrappers */
	t = set_member(w, "wrap", "rot13");
	expect_fail(t, ST_EX_DATAERR);
	free(t);
	t = set_member(w, "ct", "AAAA");
	expect_fail(t, ST_EX_DATAERR);
	free(t);
	expect_fail("{\"v\":1,\"wrap\":\"argon2id-chacha20poly1305\"}",
	            ST_EX_DATAERR);
	t = st_strndup(w, strlen(w) / 2);
	expect_fail(t, ST_EX_DATAERR);
	free(t);
	free(w);
	st_identity_wipe(&id);
}

static void wrap_params_bounded(void **state)
{
	char *w, *t, *s;

	(void)state;
	assert_int_equal(st_keystore_wrap("pw", NULL, "x", 1, &w), 0);
	/* a doctored cost must not make us allocate gigabytes */
	s = strstr(w, "\"m\":65536");
	assert_non_null(s);
	t = st_malloc(strlen(w) + 16);
	memcpy(t, w, (size_t)(s - w));
	sprintf(t + (s - w), "\"m\":4194304%s", s + strlen("\"m\":65536"));
	expect_fail(t, ST_EX_DATAERR);
	free(t);
	free(w);
}

static int file_mode(const char *name)
{
	char *p = st_home_path(name);
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
	return (int)(st.st_mode & 0777);
}

static void protected_files(void **state)
{
	struct st_identity id, back;
	struct st_identity_pub pub;
	struct st_prekeys pk, pk2;
	unsigned char *raw;
	size_t n;
	char *p;

	(void)state;
	umask(022);
	assert_int_equal(st_home_ensure(), 0);
	assert_int_equal(st_keystore_has_keys(), 0);
	assert_int_equal(st_keystore_load_identity(&back), -1);
	assert_int_equal(st_errcode(), ST_EX_CONFIG);
	st_keystore_set_passphrase_file(passfile);
	assert_int_equal(st_keystore_new_passphrase(), 0);
	assert_int_equal(st_identity_generate(&id), 0);
	assert_int_equal(st_prekeys_init(&pk, &id, 1000), 0);
	assert_int_equal(st_keystore_save_identity(&id), 0);
	assert_int_equal(st_prekeys_save(&pk), 0);
	assert_int_equal(file_mode("identity.json"), 0600);
	assert_int_equal(file_mode("prekeys.json"), 0600);
	assert_int_equal(st_keystore_has_keys(), 1);
	/* both wrapped on disk */
	p = st_home_path("prekeys.json");
	assert_int_equal(st_keystore_file_wrapped(p), 1);
	assert_int_equal(st_read_file(p, 1 << 20, &raw, &n), 0);
	assert_null(strstr((char *)raw, "priv"));
	free(raw);
	free(p);
	assert_int_equal(st_keystore_protected(), 1);
	/* the public half needs no passphrase */
	assert_int_equal(st_keystore_identity_pub(&pub), 0);
	assert_memory_equal(&pub, &id.pub, sizeof(pub));
	assert_int_equal(st_keystore_load_identity(&back), 0);
	assert_memory_equal(&back, &id, sizeof(id));
	assert_int_equal(st_prekeys_load(&pk2), 0);
	assert_int_equal(pk2.nspk, 1);
	assert_int_equal(pk2.nopk, ST_OPK_TARGET);
	assert_memory_equal(&pk2.spk[0], &pk.spk[0], sizeof(pk.spk[0]));
	assert_memory_equal(pk2.opk, pk.opk, pk.nopk * sizeof(*pk.opk));
	assert_int_equal(pk2.next_opk_id, ST_OPK_TARGET + 1);
	st_prekeys_free(&pk);
	st_prekeys_free(&pk2);
	st_identity_wipe(&id);
	st_identity_wipe(&back);
}

static void tampered_file_names_it(void **state)
{
	struct st_prekeys pk;
	unsigned char *raw;
	size_t n;
	char *p = st_home_path("prekeys.json"), *c;

	(void)state;
	assert_int_equal(st_read_file(p, 1 << 20, &raw, &n), 0);
	c = strstr((char *)raw, "\"ct\":\"") + 10;
	*c = *c == 'A' ? 'B' : 'A';
	assert_int_equal(st_write_atomic(p, raw, n, 0600), 0);
	assert_int_equal(st_prekeys_load(&pk), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_non_null(strstr(st_errmsg(), "prekeys.json"));
	/* truncated */
	assert_int_equal(st_write_atomic(p, raw, n / 3, 0600), 0);
	assert_int_equal(st_prekeys_load(&pk), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	assert_non_null(strstr(st_errmsg(), "prekeys.json"));
	free(raw);
	free(p);
}

static void prekey_bookkeeping(void **state)
{
	struct st_identity id;
	struct st_prekeys pk;
	struct st_prekey_set set;
	int64_t day = 24LL * 3600 * 1000, t = 1000;
	uint32_t first;

	(void)state;
	assert_int_equal(st_identity_generate(&id), 0);
	assert_int_equal(st_prekeys_init(&pk, &id, t), 0);
	assert_int_equal(pk.spk[0].id, 1);
	assert_int_equal(st_spk_verify(id.pub.ed25519, pk.spk[0].id,
	                               pk.spk[0].pub, pk.spk[0].sig), 0);
	/* rotation keeps the previous keys, newest first */
	assert_int_equal(st_prekeys_rotate(&pk, &id, t + 7 * day), 0);
	assert_int_equal(st_prekeys_rotate(&pk, &id, t + 14 * day), 0);
	assert_int_equal(pk.nspk, 3);
	assert_int_equal(pk.spk[0].id, 3);
	assert_int_equal(pk.spk[1].id, 2);
	assert_int_equal(pk.spk[2].id, 1);
	assert_true(pk.retired[1] == t + 14 * day);
	assert_true(pk.retired[2] == t + 7 * day);
	/* a previous key lives 30 days after it was replaced */
	assert_int_equal(st_prekeys_expire(&pk, t + 36 * day), 0);
	assert_int_equal(st_prekeys_expire(&pk, t + 37 * day), 1);
	assert_int_equal(pk.nspk, 2);
	assert_int_equal(pk.spk[1].id, 2);
	assert_int_equal(st_prekeys_expire(&pk, t + 44 * day), 1);
	assert_int_equal(pk.nspk, 1);
	assert_int_equal(pk.spk[0].id, 3);
	/* one-time prekeys: used ones go, ids are never handed out twice */
	assert_non_null(st_prekeys_find_opk(&pk, 5));
	assert_int_equal(st_prekeys_use_opk(&pk, 5), 0);
	assert_null(st_prekeys_find_opk(&pk, 5));
	assert_int_equal(st_prekeys_use_opk(&pk, 5), -1);
	assert_int_equal(st_errcode(), ST_EX_NO);
	first = pk.next_opk_id;
	assert_int_equal(st_prekeys_add_opks(&pk, 10), 0);
	assert_int_equal(pk.opk[pk.nopk - 10].id, first);
	assert_int_equal(pk.opk[pk.nopk - 1].id, first + 9);
	/* at most 1000 kept: the oldest go first */
	for (int i = 0; i < 10; i++)
		assert_int_equal(st_prekeys_add_opks(&pk, 100), 0);
	assert_int_equal(pk.nopk, 1000);
	assert_int_equal(pk.opk[999].id, pk.next_opk_id - 1);
	assert_int_equal(pk.opk[0].id, pk.next_opk_id - 1000);
	st_prekeys_set(&pk, &set);
	assert_int_equal(set.nspk, 1);
	assert_int_equal(set.nopk, 1000);
	st_prekeys_free(&pk);
	st_identity_wipe(&id);
}

static void wrapped_vault_key(void **state)
{
	struct st_age_id out;
	char *p = st_home_path("vault.key");
	unsigned char key[32], pub[32];
	char sk[75], buf[200];

	(void)state;
	/* the home is protected (protected_files): writes wrap */
	assert_int_equal(st_x25519_keygen(key, pub), 0);
	st_age_format_identity(key, sk);
	snprintf(buf, sizeof(buf), "# a comment\n%s\n", sk);
	assert_int_equal(st_keystore_write(p, buf, strlen(buf)), 0);
	assert_int_equal(st_keystore_file_wrapped(p), 1);
	assert_int_equal(st_keystore_age_identity(p, &out), 0);
	assert_memory_equal(out.key, key, 32);
	st_age_id_wipe(&out);
	/* two keys in one file are refused */
	snprintf(buf, sizeof(buf), "%s\n%s\n", sk, sk);
	assert_int_equal(st_keystore_write(p, buf, strlen(buf)), 0);
	assert_int_equal(st_keystore_age_identity(p, &out), -1);
	assert_int_equal(st_errcode(), ST_EX_DATAERR);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wrap_roundtrip),
		cmocka_unit_test(wrap_empty_plaintext),
		cmocka_unit_test(wrap_wrong_passphrase),
		cmocka_unit_test(wrap_tampered),
		cmocka_unit_test(wrap_params_bounded),
		/* in order: they share one protected home */
		cmocka_unit_test(protected_files),
		cmocka_unit_test(tampered_file_names_it),
		cmocka_unit_test(prekey_bookkeeping),
		cmocka_unit_test(wrapped_vault_key),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
