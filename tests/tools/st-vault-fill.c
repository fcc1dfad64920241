/*
 * st-vault-fill - put N small items into the vault of $ST_HOME in one
 * process, for the `st-vault ls` benchmark (10,000 processes of st-vault put
 * would measure fork and exec, not the vault).
 */
#include <stdio.h>
#include <stdlib.h>

#include "st.h"

int main(int argc, char **argv)
{
	struct st_vault *v;
	char id[ST_VAULT_ID_LEN + 1], name[32];
	long n = argc > 1 ? atol(argv[1]) : 10000;

	st_setprogname(argv[0]);
	if (!(v = st_vault_open(1)))
		st_die(st_errcode(), "%s", st_errmsg());
	for (long i = 0; i < n; i++) {
		struct st_json *meta = st_json_object();

		snprintf(name, sizeof(name), "item%ld", i);
		st_json_set_str(meta, "kind", "message");
		st_json_set_str(meta, "from", "bench");
		st_json_set_str(meta, "name", name);
		if (st_vault_put(v, meta, -1, name, 8, id) < 0)
			st_die(st_errcode(), "%s", st_errmsg());
		st_json_free(meta);
	}
	st_vault_close(v);
	return 0;
}
