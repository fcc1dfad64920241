#!/usr/bin/env bats
# contrib/: the systemd unit (systemd-analyze), the nginx example (nginx -t),
# bash completion, the echo bot against a real relay, the crontab line run
# once, and the Prometheus scrape against the metrics st-relay(8) documents.
# A tool that is not installed skips its case, saying which.

load msg_helper

C=$BATS_TEST_DIRNAME/../contrib

# unit: contrib/st-relay.service with the binary under test in ExecStart
unit() {
	sed "s|/usr/local/bin/st-relay|$ST_BIN/st-relay|" "$C/st-relay.service" \
	    >"$BATS_TEST_TMPDIR/st-relay.service"
	echo "$BATS_TEST_TMPDIR/st-relay.service"
}

@test "st-contrib: README is three lines" {
	[ "$(wc -l <"$C/README")" -eq 3 ]
}

@test "st-contrib: st-relay.service passes systemd-analyze verify, hardened" {
	command -v systemd-analyze >/dev/null ||
	    skip "systemd-analyze is not installed"
	u=$(unit)
	run systemd-analyze verify --man=no "$u"
	[ "$status" -eq 0 ]
	# verify exits 0 on settings it ignores: it must say nothing at all
	[ -z "$output" ]
	for k in DynamicUser=yes StateDirectory=st-relay NoNewPrivileges=yes \
	    ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	    PrivateDevices=yes MemoryDenyWriteExecute=yes LockPersonality=yes \
	    RestrictNamespaces=yes 'CapabilityBoundingSet=$' \
	    'SystemCallFilter=@system-service' \
	    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$'; do
		grep -q "^$k" "$u"
	done
	if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
		# exposure on systemd's 0..10 scale, 2.0 or better
		run systemd-analyze security --offline=true --threshold=20 \
		    --no-pager "$u"
		[ "$status" -eq 0 ]
	fi
}

@test "st-contrib: the unit's ExecStart is a command line st-relay accepts" {
	u=$(unit)
	state=$BATS_TEST_TMPDIR/state
	mkdir -p "$state"
	port=$(free_port)
	# the ExecStart line with its continuation, systemd's variables filled in
	cmd=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$u" | sed 's/^ExecStart=//; s/\\$//' |
	    tr '\n' ' ' | sed "s|\${STATE_DIRECTORY}|$state|g; s|127.0.0.1:8443|127.0.0.1:$port|")
	[[ "$cmd" == *"-l 127.0.0.1:$port"* ]]
	$cmd -q 2>"$BATS_TEST_TMPDIR/relay.log" &
	RELAY_PID=$!
	for i in $(seq 100); do
		curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null && break
		kill -0 "$RELAY_PID" || break
		sleep 0.05
	done
	run curl -sf "http://127.0.0.1:$port/v1/health"
	cat "$BATS_TEST_TMPDIR/relay.log" >&2
	[ "$status" -eq 0 ]
	[ -f "$state/relay.db" ]
	[ -d "$state/blobs" ]
}

@test "st-contrib: nginx.conf passes nginx -t" {
	# (not NGINX: nginx takes that variable for inherited sockets)
	ngx=${ST_NGINX:-$(command -v nginx || command -v /usr/sbin/nginx || true)}
	[ -n "$ngx" ] && [ -x "$ngx" ] ||
	    skip "nginx is not installed (ST_NGINX=/path/to/nginx tests one)"
	d=$BATS_TEST_TMPDIR/nginx
	mkdir -p "$d/logs"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -days 1 -subj /CN=relay.example.org -keyout "$d/key.pem" \
	    -out "$d/cert.pem" 2>/dev/null
	sed -e "s|/etc/letsencrypt/live/relay.example.org/fullchain.pem|$d/cert.pem|" \
	    -e "s|/etc/letsencrypt/live/relay.example.org/privkey.pem|$d/key.pem|" \
	    -e "s|/var/log/nginx/|$d/logs/|" "$C/nginx.conf" >"$d/site.conf"
	cat >"$d/nginx.conf" <<-EOF
	pid $d/nginx.pid;
	error_log $d/logs/error.log;
	events {}
	http {
	    access_log $d/logs/access.log;
	    client_body_temp_path $d/body;
	    proxy_temp_path $d/proxy;
	    fastcgi_temp_path $d/fastcgi;
	    uwsgi_temp_path $d/uwsgi;
	    scgi_temp_path $d/scgi;
	    include $d/site.conf;
	}
	EOF
	run "$ngx" -t -q -p "$d" -c "$d/nginx.conf"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	# the limits the example promises
	grep -q 'client_max_body_size 1g;' "$C/nginx.conf"
	grep -q 'proxy_request_buffering off;' "$C/nginx.conf"
	grep -q 'proxy_buffering off;' "$C/nginx.conf"
}

# comp WORD...: the completions bash offers for the command line WORD...,
# the cursor in the last word, one per line.
comp() {
	bash -c '
	. "$1"; shift
	COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
	fn=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
	"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf "%s\n" "${COMPREPLY[@]}"' comp "$C/st.bash-completion" "$@"
}

@test "st-contrib: bash completion is registered for every command" {
	run bash -c '. "$1"; complete -p' x "$C/st.bash-completion"
	[ "$status" -eq 0 ]
	for c in $(cd "$BATS_TEST_DIRNAME/../cmd" && ls st-*.c | sed 's/\.c$//') st-relay; do
		[[ "$output" == *"-F _st $c"* ]]
	done
}

@test "st-contrib: bash completion offers subcommands, options, peers and files" {
	[ "$(comp st-vault '' | head -n 9 | tr '\n' ' ')" = \
	    "ls cat get put rm grep encrypt decrypt rekey " ]
	[ "$(comp st-vault en)" = encrypt ]
	[ "$(comp st-vault encrypt --ar)" = --armor ]
	[ "$(comp st-vault ls --s)" = --since ]
	# grep's -i takes no argument: nothing to complete after it
	[ -z "$(comp st-vault grep -i '')" ]
	[ "$(comp st-send --tr)" = --trust-new=always ]
	[ "$(comp st-send --trust-new = '')" = always ]
	[ "$(comp st-recv --no-v)" = --no-vault ]
	[ "$(comp st-users v)" = verify ]
	[ "$(comp st-login --lo)" = --logout ]
	[ "$(comp st-register --del)" = --delete ]
	[ "$(comp st-keygen --pro)" = --protect ]
	[ "$(comp st-relay --tls-)" = "$(printf -- '--tls-cert\n--tls-key')" ]
	# every option of every usage text is offered
	for c in st-keygen st-register st-login st-users st-send st-recv st-relay; do
		for o in $("$ST_BIN/$c" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
			comp "$c" -- | grep -qx -- "$o" ||
			    comp "$c" -- | grep -q -- "^$o=" ||
			    { echo "$c: $o not completed" >&2; return 1; }
		done
	done
	# peers from $ST_HOME/peers, files after -a
	mkdir -p "$ST_HOME/peers"
	touch "$ST_HOME/peers/bob.json" "$ST_HOME/peers/bert.json"
	[ "$(comp st-send -m hi b | sort | tr '\n' ' ')" = "bert bob " ]
	[ "$(comp st-users trust bo)" = bob ]
	[ "$(comp st-recv --from be)" = bert ]
	touch "$BATS_TEST_TMPDIR/attach-me.txt"
	[ "$(comp st-send -a "$BATS_TEST_TMPDIR/attach-")" = \
	    "$BATS_TEST_TMPDIR/attach-me.txt" ]
	[ "$(comp st-vault put "$BATS_TEST_TMPDIR/attach-")" = \
	    "$BATS_TEST_TMPDIR/attach-me.txt" ]
}

@test "st-contrib: st-echo-bot echoes a message back" {
	users alice bot
	word="ping $RANDOM"
	as bot
	timeout 60 "$C/st-echo-bot" >"$BATS_TEST_TMPDIR/bot.out" \
	    2>"$BATS_TEST_TMPDIR/bot.err" &
	BOT_PID=$!
	as alice
	st-send -m "$word" bot >/dev/null
	got=
	for i in 1 2 3 4 5 6; do
		got=$(st-recv -w 10 -j)
		[ -n "$got" ] && break
	done
	kill "$BOT_PID" 2>/dev/null || true
	wait "$BOT_PID" 2>/dev/null || true
	cat "$BATS_TEST_TMPDIR/bot.err" >&2
	[ "$(echo "$got" | jfield from)" = bot ]
	[ "$(echo "$got" | jfield text)" = "$word" ]
	# the bot's own log is st-recv -j: the message it answered
	[ "$(head -n 1 "$BATS_TEST_TMPDIR/bot.out" | jfield text)" = "$word" ]
}

@test "st-contrib: the crontab line drains the mailbox into the vault, silently" {
	users alice bob
	as alice
	st-send -m "for the vault" bob >/dev/null
	line=$(grep -v '^#' "$C/crontab" | grep -v '^[A-Z_]*=' | grep .)
	[ "$(echo "$line" | wc -l)" -eq 1 ]
	cmd=$(echo "$line" | cut -d' ' -f6-)
	[ "$cmd" = "st-recv -q" ]
	as bob
	run sh -c "$cmd"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(vault_count bob message)" -eq 1 ]
	[ "$(mailbox bob)" -eq 0 ]
}

@test "st-contrib: prometheus.yml scrapes /metrics; st-relay(8) documents every metric served" {
	"$PY" -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
	path=$("$PY" -c 'import yaml,sys
c = yaml.safe_load(open(sys.argv[1]))
j = c["scrape_configs"][0]
assert j["static_configs"][0]["targets"] == ["127.0.0.1:8443"]
print(j["metrics_path"])' "$C/prometheus.yml")
	[ "$path" = /metrics ]
	relay
	curl -sf "$RELAY_URL/v1/health" >/dev/null
	curl -sf "$RELAY_URL$path" >"$BATS_TEST_TMPDIR/metrics"
	served=$(grep '^# TYPE' "$BATS_TEST_TMPDIR/metrics" | cut -d' ' -f3 | sort)
	[ -n "$served" ]
	documented=$(mandoc -T ascii "$BATS_TEST_DIRNAME/../doc/st-relay.8" 2>/dev/null |
	    sed 's/.\x08//g' | sed -n '/^METRICS/,/^FILES/p' |
	    grep -o 'st_relay_[a-z_]*' | sort -u)
	if [ -z "$documented" ]; then
		documented=$(sed -n '/^\.Sh METRICS/,/^\.Sh FILES/p' \
		    "$BATS_TEST_DIRNAME/../doc/st-relay.8" |
		    grep -o 'st_relay_[a-z_]*' | sort -u)
	fi
	[ "$served" = "$documented" ]
}
