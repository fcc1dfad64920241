#!/bin/sh
# seeds.sh - (re)make the seed corpora in tests/fuzz/corpus/<target>/ from
# material already in the tree: the CCTV age testkit, the golden and frozen
# protocol vectors, and a few hand-made inputs.  The output is committed;
# run this again only when the sources change.  Needs jq, xxd and python3
# (for the zlib-compressed age vectors); the whole corpus stays well under
# 1 MiB (the script fails if it does not).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/tests/fuzz/corpus
kit=$top/tests/testkit
[ -d "$top/../shared/testkit/age" ] && kit=$(cd "$top/../shared/testkit" && pwd)
golden=$kit/st/golden.json
vectors=$top/tests/vectors/session-v1.json

for t in fuzz_age fuzz_b64 fuzz_envelope fuzz_json fuzz_router; do
	rm -rf "${out:?}/$t"
	mkdir -p "$out/$t"
done

# ---- fuzz_age: every testkit vector's age file (text header dropped);
# of the zlib-compressed ones only two small multi-chunk files ----
for f in "$kit"/age/*; do
	n=$(basename "$f")
	[ "$n" = FORMAT.md ] && continue
	# the header ends at the first empty line
	skip=$(grep -a -n -m1 '^$' "$f" | cut -d: -f1)
	if grep -a -q '^compressed: zlib$' "$f"; then
		case $n in
		stream_last_chunk_full|stream_no_final_two_chunks) ;;
		*) continue ;;
		esac
		tail -n +"$((skip + 1))" "$f" | python3 -c \
		    'import sys, zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))' \
		    >"$out/fuzz_age/$n"
	else
		tail -n +"$((skip + 1))" "$f" >"$out/fuzz_age/$n"
	fi
done

# ---- fuzz_b64: canonical and not-quite-canonical strings of each kind ----
b64() { printf '%s' "$2" >"$out/fuzz_b64/$1"; }
b64 std_pad 'aGVsbG8gd29ybGQ='
b64 std_pad2 'aGk='
b64 std_raw 'aGVsbG8gd29ybGQ'
b64 std_chars '+/+/ABCD'
b64 url_chars '-_-_ABCD'
b64 noncanon 'aGl='
b64 noncanon_raw 'aGk'
b64 empty ''
b64 hex_lower '00ff10a5'
b64 hex_upper '00FF10A5'
# the public key of the identity below (age-keygen -y)
b64 age_recipient 'age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef'
b64 age_identity 'AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0'
b64 bech32_upper 'A12UEL5L'
b64 bech32_lower 'abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw'
b64 golden_bind "$(jq -r .identity.alice.relay_json.bind "$golden")"
b64 golden_to_ik "$(jq -r .identity.bob.to_ik "$golden")"
b64 golden_ct "$(jq -r '.messages[0].envelope.ct' "$golden")"

# ---- fuzz_json: the vector files whole, their wire objects, edge cases ----
cp "$vectors" "$out/fuzz_json/session-v1.json"
cp "$golden" "$out/fuzz_json/golden.json"
js() { printf '%s' "$2" >"$out/fuzz_json/$1"; }
js envelope "$(jq -c '.messages[0].envelope' "$golden")"
js bundle "$(jq -c '.bundle.relay_json' "$golden")"
js post "$(jq -c '.channel_post.post' "$golden")"
js depth32 "$(printf '%.0s[' $(seq 32))$(printf '%.0s]' $(seq 32))"
js depth33 "$(printf '%.0s[' $(seq 33))$(printf '%.0s]' $(seq 33))"
js dupkeys '{"a":1,"a":2}'
js nul '{"a":"x\u0000y"}'
js surrogate '{"a":"\ud800","b":"\ud83d\ude00"}'
js numbers '[0,-0,1e400,-1,4294967296,9223372036854775807,9223372036854775808,1.5,"12"]'
js escapes '{"s":"\"\\\/\b\f\n\r\t\u00e9\u001b[2J","t":true,"f":false,"n":null}'
js truncated '{"user":"alice","password":'
js unbalanced ']]]][[[[{'

# ---- fuzz_envelope: envelopes, bundles, posts, inner messages ----
ev() { printf '%s' "$2" >"$out/fuzz_envelope/$1"; }
i=0
for label in $(jq -r '.messages[].label' "$golden"); do
	ev "envelope_$label" "$(jq -c ".messages[$i].envelope" "$golden")"
	# the inner message as the ratchet gives it: padded plaintext bytes
	jq -r ".messages[$i].plaintext" "$golden" | xxd -r -p \
	    >"$out/fuzz_envelope/inner_$label"
	i=$((i + 1))
done
ev bundle "$(jq -c '.bundle.relay_json' "$golden")"
ev identity "$(jq -c '.identity.alice.relay_json' "$golden")"
ev post "$(jq -c '.channel_post.post' "$golden")"
ev post_wrapped "$(jq -c '{post: .channel_post.post}' "$golden")"
ev inner_files "{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\",\"ts\":1,\"to\":[\"bob\"],\"data\":\"AAEC\",\"files\":[$(jq -c '.attachment.files_entry' "$golden")]}"
ev inner_both '{"v":1,"id":"0123456789abcdef0123456789abcdef","ts":1,"to":["bob"],"text":"a","data":"AA"}'

# ---- fuzz_router: requests in the harness's format (see fuzz_router.c) ----
rq() { printf '%b' "$2" >"$out/fuzz_router/$1"; }
A='Authorization: Bearer @alice'
B='Authorization: Bearer @bob'
J='Content-Type: application/json'
post_msg=$(jq -c '{messages: [{to: "bob", to_ik: .identity.bob.to_ik,
    client_id: "00000000000000000000000000000001",
    envelope: .messages[0].envelope}]}' "$golden")
carol=$(jq -c '{user: "carol", password: "carol-password",
    identity: .bundle.relay_json.identity, spk: .bundle.relay_json.spk,
    opks: [.bundle.relay_json.opk]}' "$golden")
rq health 'GET /v1/health HTTP/1.1\n\n'
rq metrics 'HEAD /metrics\n\n'
rq register "POST /v1/accounts\n$J\n\n$carol"
rq login "POST /v1/sessions\n$J\n\n{\"user\":\"alice\",\"password\":\"alice-fuzz-password\"}"
rq users "GET /v1/users?prefix=a&limit=10\n$A\n\n"
rq user "GET /v1/users/bob\n$A\n\n"
rq bundle "POST /v1/users/bob/bundle\n$A\n\n"
rq keys_get "GET /v1/keys\n$B\n\n"
rq keys_put "PUT /v1/keys\n$B\n$J\n\n$(jq -c '{opks: [{id: 11, pub: .bundle.relay_json.opk.pub}]}' "$golden")"
rq msg_post "POST /v1/messages\r\n$A\r\n$J\r\n\r\n$post_msg"
rq msg_get "GET /v1/messages?wait=1&limit=10\n$B\n\n"
rq ack "POST /v1/messages/ack\n$B\n$J\n\n{\"ids\":[\"1\",\"2\",\"x\"]}"
rq chan_post "POST /v1/channels/lobby\n$A\n$J\n\n$(jq -c '{post: .channel_post.post}' "$golden")"
rq chan_get "GET /v1/channels/lobby?after=0&limit=5&wait=0\n$B\n\n"
rq blob_post "POST /v1/blobs\n$A\nContent-Type: application/octet-stream\nContent-Length: 16\n\n0123456789abcdef"
rq blob_get "GET /v1/blobs/@blob\n$B\n\n"
rq logout "DELETE /v1/sessions/current\n$B\n\n"
rq delete "DELETE /v1/accounts/me\n$A\n$J\n\n{\"password\":\"alice-fuzz-password\"}"
rq two_cl "POST /v1/sessions\nContent-Length: 2\nContent-Length: 2\n$J\n\n{}"
rq chunked "POST /v1/messages\n$A\nTransfer-Encoding: chunked\n$J\n\n{}"
rq short_body "POST /v1/sessions\nContent-Length: 100\n$J\n\n{\"user\":"
rq bad_method "PUT /v1/messages\n$A\n\n"
rq traversal "GET /v1/users/%2e%2e%2f\n$A\n\n"
rq big_limit "GET /v1/messages?limit=99999999999999999999\n$A\n\n"

total=$(du -sb "$out" | cut -f1)
if [ "$total" -ge 1048576 ]; then
	echo "seeds.sh: the corpus is $total bytes, over 1 MiB" >&2
	exit 1
fi
for t in "$out"/*/; do
	printf '%-14s %4d files %7d bytes\n' "$(basename "$t")" \
	    "$(find "$t" -type f | wc -l)" "$(du -sb "$t" | cut -f1)"
done
