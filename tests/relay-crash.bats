#!/usr/bin/env bats
# st-relay killed with SIGKILL at random moments under a load of message
# posts and blob uploads, restarted on the same database each time
# (tests/tools/relay-crash.py does the work and the checks).

load relay_helper

@test "st-relay killed 20 times under load: integrity ok, every 2xx message once, blobs whole, no temporaries" {
	relay --no-rate-limits
	register alice
	register bob
	ta=$(login alice)
	tb=$(login bob)
	ik=$(toik bob)
	port=${RELAY_URL##*:}
	stop_relay
	run "$PY" "$BATS_TEST_DIRNAME/tools/relay-crash.py" "$(command -v st-relay)" \
	    "$RELAY_DB" "$BATS_TEST_TMPDIR/blobs" "$port" "$ta" "$ik" "$tb" \
	    "${ST_CRASH_CYCLES:-20}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"lost 0, duplicated 0, unknown 0"* ]]
}
