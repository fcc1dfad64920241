#!/usr/bin/env python3
"""client-crash.py - a message exchange with st-send and st-recv killed
(SIGKILL) at random points.

Usage: client-crash.py HOME_ALICE HOME_BOB [MESSAGES]

alice sends MESSAGES messages to bob, one st-send each ("m<i>" on stdin),
while bob runs st-recv -q over and over; about one run in five of either is
killed after a random delay.  Then alice flushes her outbox and bob drains
his mailbox.  Checked: every message whose st-send exited 0 is in bob's
vault exactly once; no text is there twice (the test sends "hi" first, to
make the session); nothing is undecryptable; the
outbox is empty; and the session still works both ways.
Prints one line of figures; exits 1 on any violation.
"""
import json
import os
import random
import subprocess
import sys
import threading
import time

home_a, home_b = sys.argv[1:3]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
rng = random.Random(int(os.environ.get("ST_CRASH_SEED", "0")) or None)
ok, killed = set(), {"send": 0, "recv": 0}
done = threading.Event()
fail = []


def env(home):
    return dict(os.environ, ST_HOME=home)


def run(argv, home, text=None, kill_after=None):
    p = subprocess.Popen(argv, env=env(home), stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(text or b"")
        p.stdin.close()
    except BrokenPipeError:
        pass
    if kill_after is not None:
        time.sleep(kill_after)
        if p.poll() is None:
            p.kill()
            p.wait()
            return None
    return p.wait()


def sender():
    for i in range(1, n + 1):
        k = rng.uniform(0, 0.04) if rng.random() < 0.2 else None
        rc = run(["st-send", "bob"], home_a, b"m%d\n" % i, k)
        if rc is None:
            killed["send"] += 1
        elif rc == 0:
            ok.add("m%d" % i)
        elif rc not in (69, 75):
            fail.append("st-send m%d exited %d" % (i, rc))
    done.set()


def receiver():
    while not done.is_set():
        k = rng.uniform(0, 0.1) if rng.random() < 0.2 else None
        rc = run(["st-recv", "-q"], home_b, None, k)
        if rc is None:
            killed["recv"] += 1
        elif rc not in (0, 75):
            fail.append("st-recv exited %d" % rc)


t0 = time.time()
threads = [threading.Thread(target=sender), threading.Thread(target=receiver)]
for t in threads:
    t.start()
for t in threads:
    t.join()
run(["st-send", "--flush"], home_a)
# entries, not the temporaries a killed st-send left (swept once a minute
# old, tests/st-send.bats)
left = [f for f in os.listdir(os.path.join(home_a, "outbox"))
        if ".tmp-" not in f]
if left:
    fail.append("alice's outbox is not empty after --flush: %s" % left[:5])
for _ in range(5):
    if run(["st-recv", "-q"], home_b) == 0:
        break
items = subprocess.run(["st-vault", "ls", "-j"], env=env(home_b),
                       capture_output=True, check=True).stdout.splitlines()
items = [json.loads(x) for x in items]
bad = [x["id"] for x in items if x["kind"] == "undecryptable"]
ids = [x["id"] for x in items if x["kind"] == "message"]
texts = []
for i in range(0, len(ids), 200):
    out = subprocess.run(["st-vault", "cat"] + ids[i:i + 200], env=env(home_b),
                         capture_output=True, check=True).stdout
    texts += out.decode().split()
counts = {}
for t in texts:
    counts[t] = counts.get(t, 0) + 1
lost = sorted(ok - set(counts))
dup = sorted(t for t, c in counts.items() if c > 1)
stray = sorted(t for t in counts if t != "hi" and (not t.startswith("m") or
               not 1 <= int(t[1:]) <= n))
# the session still works both ways
if run(["st-send", "bob"], home_a, b"after\n") != 0:
    fail.append("st-send after the loop failed")
r = subprocess.run(["st-recv", "-j"], env=env(home_b), capture_output=True)
if b'"text":"after\\n"' not in r.stdout:
    fail.append("bob did not receive 'after': %r" % r.stdout[:200])
if run(["st-send", "alice"], home_b, b"back\n") != 0:
    fail.append("st-send back failed")
r = subprocess.run(["st-recv", "-j"], env=env(home_a), capture_output=True)
if b'"text":"back\\n"' not in r.stdout:
    fail.append("alice did not receive 'back': %r" % r.stdout[:200])
print("client-crash: %d messages in %.0f s, st-send killed %d times, st-recv "
      "%d times; %d sent (exit 0), %d in the vault; lost %d, duplicated %d, "
      "undecryptable %d" % (n, time.time() - t0, killed["send"],
                            killed["recv"], len(ok), len(counts), len(lost),
                            len(dup), len(bad)))
if lost:
    fail.append("lost: %s" % lost[:10])
if dup:
    fail.append("duplicated: %s" % dup[:10])
if stray:
    fail.append("unexpected texts: %s" % stray[:10])
if bad:
    fail.append("%d undecryptable items" % len(bad))
for f in fail[:20]:
    print("client-crash: " + f, file=sys.stderr)
sys.exit(1 if fail else 0)
