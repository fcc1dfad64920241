/*
 * hook.c - after the lock is released: print each new message and run
 * the --exec hook (/bin/sh -c CMD, the body on stdin, ST_* in the
 * environment, never message text in argv); a message whose hook failed
 * before is read back from the vault and only its hook runs again.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recv.h"

int recv_rerun_job(struct st_recv *c, struct batch *b,
                     const struct st_inbox_rec *rec, int64_t rts)
{
	struct st_json *meta, *a, *to, *fm;
	struct st_buf body;
	struct job *j;
	const char *s;
	size_t len;

	if (!c->vault || !st_vault_has(c->vault, rec->item) ||
	    !(meta = st_vault_meta(c->vault, rec->item))) {
		st_error_clear();
		recv_note(c, "the hook cannot run again for message %s from %s: it "
		     "was not stored (--no-vault); acknowledged", rec->relay,
		     rec->from);
		recv_ack(b, rec->relay);
		return 0;
	}
	st_buf_init(&body, 1);
	if (st_vault_read(c->vault, rec->item, st_sink_buf, &body) < 0) {
		st_buf_free(&body);
		st_json_free(meta);
		return -1;
	}
	j = recv_new_job(b, rec->relay, rec->from, rts);
	j->rerun = 1;
	memcpy(j->item, rec->item, sizeof(j->item));
	memcpy(j->m.id, rec->msgid, 33);
	st_json_get_int(meta, "ts", 0, INT64_MAX, &j->m.ts);
	if (st_json_get_str(meta, "body", &s, NULL) == 0 && strcmp(s, "none")) {
		j->m.has_body = 1;
		j->m.is_text = !strcmp(s, "text");
	}
	j->m.body = body.data;
	j->m.bodylen = body.len;
	if (st_json_get_arr(meta, "to", &to) == 0) {
		j->m.to = st_calloc(st_json_array_size(to) + 1, sizeof(char *));
		for (size_t i = 0; i < st_json_array_size(to); i++)
			if (st_json_as_str(st_json_array_get(to, i), &s, &len) == 0)
				j->m.to[j->m.nto++] = st_strndup(s, len);
	}
	if (st_json_get_arr(meta, "files", &a) == 0) {
		size_t n = st_json_array_size(a);

		j->files = st_calloc(n ? n : 1, sizeof(*j->files));
		for (size_t i = 0; i < n; i++) {
			fm = st_json_array_get(a, i);
			j->files[i].item = "";
			if (st_json_get_str(fm, "name", &s, NULL) == 0)
				j->files[i].name = recv_own(j, s);
			if (st_json_get(fm, "item") &&
			    st_json_get_str(fm, "item", &s, NULL) == 0)
				j->files[i].item = recv_own(j, s);
			if (st_json_get(fm, "error") &&
			    st_json_get_str(fm, "error", &s, NULL) == 0)
				j->files[i].error = recv_own(j, s);
		}
		j->rerun = 1 + (int)n;
	}
	st_error_clear();
	st_json_free(meta);
	return 0;
}

/* ---- the hook ---- */

static void files_env(const struct st_recv_msg *m, struct st_buf *b)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct st_recv_file *f = &m->files[i];
		const char *v = f->path ? f->path : f->item;

		if (!v || !*v)
			continue;
		if (b->len)
			st_buf_appendc(b, '\n');
		st_buf_append(b, v, strlen(v));
	}
}

int st_recv_hook(const char *cmd, const struct st_recv_msg *m)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct st_buf files, to;
	char ts[24];
	int pfd[2], status;
	pid_t pid;

	st_buf_init(&files, 0);
	st_buf_init(&to, 0);
	files_env(m, &files);
	for (size_t i = 0; i < m->m->nto; i++)
		st_buf_appendf(&to, "%s%s", i ? "," : "", m->m->to[i]);
	snprintf(ts, sizeof(ts), "%lld", (long long)m->m->ts);
	fflush(stdout);
	if (pipe(pfd) < 0) {
		st_buf_free(&files);
		st_buf_free(&to);
		return st_error(ST_EX_CANTCREAT, "cannot make a pipe:");
	}
	if ((pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		st_buf_free(&files);
		st_buf_free(&to);
		return st_error(ST_EX_CANTCREAT, "cannot fork:");
	}
	if (pid == 0) {
		dup2(pfd[0], 0);
		close(pfd[0]);
		close(pfd[1]);
		setenv("ST_FROM", m->from, 1);
		setenv("ST_ID", m->m->id, 1);
		setenv("ST_TS", ts, 1);
		setenv("ST_FILES", files.len ? st_buf_cstr(&files) : "", 1);
		setenv("ST_ITEM", m->item ? m->item : "", 1);
		setenv("ST_TO", to.len ? st_buf_cstr(&to) : "", 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[0]);
	st_buf_free(&files);
	st_buf_free(&to);
	/* a hook that does not read its input must not kill us */
	sigaction(SIGPIPE, &ign, &old);
	if (m->m->has_body)
		st_write_all(pfd[1], m->m->body, m->m->bodylen);
	close(pfd[1]);
	sigaction(SIGPIPE, &old, NULL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return st_error(ST_EX_CANTCREAT, "cannot wait for the "
			                "hook:");
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void recv_deliver(struct st_recv *c, struct batch *b, int *hooks_ok)
{
	for (size_t i = 0; i < b->njobs; i++) {
		struct job *j = &b->jobs[i];
		struct st_recv_msg m = { j->relay, j->from, j->relay_ts, &j->m,
		                         j->item, j->files, 0 };
		int st;

		m.nfiles = j->rerun ? (size_t)(j->rerun - 1) : j->m.nfiles;
		hooks_ok[i] = 1;
		if (!j->rerun && c->print && c->print(c->ctx, &m) < 0) {
			hooks_ok[i] = -1;
			continue;
		}
		if (!c->o.exec)
			continue;
		if ((st = st_recv_hook(c->o.exec, &m)) != 0) {
			hooks_ok[i] = 0;
			b->st->hook_failed++;
			b->pending++;
			recv_hold(c, j->relay);
			if (st < 0)
				recv_note(c, "cannot run the hook for message %s: %s",
				     j->relay, st_errmsg());
			else
				recv_note(c, "the hook failed (exit %d) for message %s "
				     "from %s; it stays on the relay and the hook "
				     "runs again on a later st-recv --exec", st,
				     j->relay, j->from);
		}
	}
}
