/*
 * st-forge - a hostile sender for tests/st-recv.bats: queue in the
 * outbox of $ST_HOME a ratchet message whose inner message the test
 * chooses, then `st-send --flush` posts it.  The session with USER must
 * exist (send one ordinary message first).
 *
 *   st-forge USER [NAME PATH]...   text from stdin; each PATH is uploaded
 *                                  as a blob and attached as NAME (any
 *                                  bytes, "../../x" included)
 *   st-forge --raw USER            stdin is the inner message itself
 *                                  (padded here), however malformed
 *   (ST_FORGE_TS=MS in the environment sets the message's ts: a sender
 *   whose clock is off)
 *   st-forge -n COUNT USER         COUNT ordinary messages with the text
 *                                  of stdin, each its own id (queues a
 *                                  mailbox for tests/bench/messaging.sh;
 *                                  the session is saved once, at the end)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st.h"

static void die_err(void)
{
	st_die(st_errcode(), "%s", st_errmsg());
}

int main(int argc, char **argv)
{
	struct st_json *cfg;
	struct st_relay *r = NULL;
	struct st_ratchet *rt;
	struct st_peer pin;
	struct st_envelope env;
	struct st_msg m;
	const char *user, *to;
	unsigned char *in, *pt;
	size_t inlen, ptlen;
	char name[ST_OUTBOX_NAME_MAX], *url = NULL, *msgto[1];
	int raw = argc > 1 && !strcmp(argv[1], "--raw"), a = 1 + raw;
	long count = 1;

	st_setprogname(argv[0]);
	if (!raw && argc > 3 && !strcmp(argv[1], "-n")) {
		count = strtol(argv[2], NULL, 10);
		a = 3;
		if (count < 1 || argc != 4)
			st_die(64, "usage: st-forge -n COUNT USER");
	}
	if (argc < a + 1 || (!raw && (argc - a - 1) % 2))
		st_die(64, "usage: st-forge [--raw] USER [NAME PATH]...");
	to = argv[a];
	if (!(cfg = st_config_load()) || st_account_user(cfg, &user) < 0 ||
	    st_peer_load(to, &pin) < 0 || !(rt = st_session_load(to)) ||
	    st_read_fd(0, 1 << 20, "stdin", &in, &inlen) < 0)
		die_err();
	if (raw) {
		if (st_msg_pad(in, inlen, &pt, &ptlen) < 0)
			die_err();
	} else {
		memset(&m, 0, sizeof(m));
		st_msg_new_id(m.id);
		/* ST_FORGE_TS: a sender whose clock is off (ms) */
		m.ts = getenv("ST_FORGE_TS") ? strtoll(getenv("ST_FORGE_TS"),
		                                       NULL, 10) : st_now_ms();
		msgto[0] = (char *)to;
		m.to = msgto;
		m.nto = 1;
		m.has_body = inlen > 0;
		m.body = in;
		m.bodylen = inlen;
		m.nfiles = (size_t)(argc - a - 1) / 2;
		m.files = st_calloc(m.nfiles + 1, sizeof(*m.files));
		if (m.nfiles) {
			if (!(url = st_relay_url(NULL, cfg)) ||
			    !(r = st_relay_new(url, 0)) ||
			    st_relay_load_token(r) < 0)
				die_err();
		}
		for (size_t i = 0; i < m.nfiles; i++) {
			struct stat st;
			int fd = open(argv[a + 1 + 2 * i + 1], O_RDONLY);

			if (fd < 0 || fstat(fd, &st) < 0)
				st_die(66, "cannot open %s", argv[a + 2 + 2 * i]);
			m.files[i].name = argv[a + 1 + 2 * i];
			m.files[i].size = (uint64_t)st.st_size;
			if (st_blob_upload(r, fd, m.files[i].size, m.files[i].key,
			                   &m.files[i].blob) < 0)
				die_err();
			close(fd);
		}
		if (st_msg_encode(&m, &pt, &ptlen) < 0)
			die_err();
	}
	for (long k = 0; k < count; k++) {
		if (k) {                /* the next message: a new id */
			st_free_secret(pt, ptlen);
			st_msg_new_id(m.id);
			m.ts = st_now_ms();
			if (st_msg_encode(&m, &pt, &ptlen) < 0)
				die_err();
		}
		if (st_ratchet_encrypt(rt, pt, ptlen, &env) < 0 ||
		    (k == count - 1 && st_session_save(to, rt) < 0) ||
		    st_outbox_add(to, &pin.id, raw ?
		                  "00000000000000000000000000000000" : m.id,
		                  &env, name) < 0)
			die_err();
		if (count == 1)
			puts(name);
		st_envelope_free(&env);
	}
	st_free_secret(pt, ptlen);
	st_free_secret(in, inlen);
	st_ratchet_free(rt);
	if (!raw) {
		for (size_t i = 0; i < m.nfiles; i++)
			free(m.files[i].blob);
		free(m.files);
	}
	st_relay_free(r);
	free(url);
	st_json_free(cfg);
	return 0;
}
