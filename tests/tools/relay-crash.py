#!/usr/bin/env python3
"""relay-crash.py - st-relay killed with SIGKILL under load, again and again.

Usage: relay-crash.py ST_RELAY DB BLOBDIR PORT TOKEN_A TO_IK_B TOKEN_B [CYCLES]

Alice's token posts messages to bob (each envelope carries its client_id in
"ct", so it can be recognised later) from three threads, a fourth thread
uploads blobs, and the relay is killed at a random moment each cycle, then
restarted on the same database.  Posts whose answer was lost are posted
again after the restart with the same client_id.  Checked:

- PRAGMA integrity_check is "ok" after every kill;
- after each restart the blob directory holds only finished blobs (no
  temporary is left), and every blob answered 201 downloads intact;
- bob drains his mailbox after each restart; in the end every message
  answered 2xx reached him under exactly one relay id, and nothing reached
  him that was never posted.

Prints one line of figures and exits 1 on any violation.
"""
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

relay_bin, db, blobdir, port, tok_a, to_ik, tok_b = sys.argv[1:8]
cycles = int(sys.argv[8]) if len(sys.argv) > 8 else 20
url = "http://127.0.0.1:%s" % port
rng = random.Random(int(os.environ.get("ST_CRASH_SEED", "0")) or None)
lock = threading.Lock()
acked = {}          # client_id -> relay id (answered 2xx)
unknown = set()     # posted, answer lost
blobs = {}          # blob id -> sha256 (answered 201)
counter = [0]
fail = []


def req(method, path, tok, body=None, ctype="application/json", timeout=5):
    r = urllib.request.Request(url + path, data=body, method=method)
    r.add_header("Authorization", "Bearer " + tok)
    if body is not None:
        r.add_header("Content-Type", ctype)
    with urllib.request.urlopen(r, timeout=timeout) as a:
        return a.status, a.read()


def post(cids):
    msgs = [{"to": "bob", "to_ik": to_ik, "client_id": c,
             "envelope": {"v": 1, "hdr": "AAAA", "ct": c}} for c in cids]
    try:
        st, body = req("POST", "/v1/messages", tok_a,
                       json.dumps({"messages": msgs}).encode())
    except urllib.error.HTTPError as e:
        fail.append("POST answered %d: %s" % (e.code, e.read()[:200]))
        return False
    except (urllib.error.URLError, OSError, ConnectionError):
        with lock:
            unknown.update(cids)
        return False
    ids = json.loads(body)["ids"]
    with lock:
        for c, i in zip(cids, ids):
            if c in acked and acked[c] != i:
                fail.append("client_id %s got ids %s and %s" % (c, acked[c], i))
            acked[c] = i
            unknown.discard(c)
    return st in (200, 201)


def sender(stop):
    while not stop.is_set():
        with lock:
            n = rng.randint(1, 5)
            cids = []
            for _ in range(n):
                counter[0] += 1
                cids.append("%032x" % counter[0])
        if not post(cids):
            time.sleep(0.02)


def uploader(stop):
    while not stop.is_set():
        data = os.urandom(rng.randint(1, 600) * 1024)
        try:
            st, body = req("POST", "/v1/blobs", tok_a, data,
                           "application/octet-stream")
        except urllib.error.HTTPError as e:
            fail.append("blob upload answered %d" % e.code)
            return
        except (urllib.error.URLError, OSError, ConnectionError):
            time.sleep(0.02)
            continue
        if st == 201:
            with lock:
                blobs[json.loads(body)["id"]] = hashlib.sha256(data).hexdigest()


def start():
    p = subprocess.Popen([relay_bin, "-q", "-l", "127.0.0.1:" + port, "-d", db,
                          "--blob-dir", blobdir, "--no-rate-limits",
                          "--argon2-m", "64", "--argon2-t", "1"],
                         stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/v1/health", timeout=1).read()
            return p
        except (urllib.error.URLError, OSError):
            if p.poll() is not None:
                sys.exit("relay-crash: st-relay exited %d at start" % p.returncode)
            time.sleep(0.05)
    sys.exit("relay-crash: st-relay did not start")


seen = {}           # client_id -> relay ids it was delivered under


def drain():
    """bob takes his mailbox and acknowledges it (after every restart: the
    mailbox cap is 10,000); an ack whose answer was lost may deliver again
    under the same relay id, which is not a duplicate"""
    while True:
        st, body = req("GET", "/v1/messages?limit=500", tok_b)
        ms = json.loads(body)["messages"]
        if not ms:
            return
        for m in ms:
            seen.setdefault(m["envelope"]["ct"], set()).add(m["id"])
        req("POST", "/v1/messages/ack", tok_b,
            json.dumps({"ids": [m["id"] for m in ms]}).encode())


def integrity():
    c = sqlite3.connect(db)
    r = c.execute("PRAGMA integrity_check").fetchall()
    c.close()
    if r != [("ok",)]:
        fail.append("integrity_check: %r" % r)


def temporaries():
    odd = [f for f in os.listdir(blobdir) if not re.fullmatch(r"[0-9a-f]{32}", f)]
    if odd:
        fail.append("blob directory holds temporaries after restart: %s" % odd[:5])


kills = 0
for cyc in range(cycles):
    p = start()
    temporaries()
    drain()
    # what lost its answer in the last cycle goes again, same client_ids
    with lock:
        again = sorted(unknown)
    for i in range(0, len(again), 5):
        post(again[i:i + 5])
    stop = threading.Event()
    th = [threading.Thread(target=sender, args=(stop,)) for _ in range(3)]
    th.append(threading.Thread(target=uploader, args=(stop,)))
    for t in th:
        t.start()
    time.sleep(rng.uniform(0.3, 1.2))
    p.send_signal(signal.SIGKILL)
    p.wait()
    kills += 1
    stop.set()
    for t in th:
        t.join()
    integrity()

p = start()
temporaries()
with lock:
    again = sorted(unknown)
for i in range(0, len(again), 5):
    post(again[i:i + 5])
if unknown:
    fail.append("%d posts never answered after the last restart" % len(unknown))
for bid, h in blobs.items():
    st, body = req("GET", "/v1/blobs/" + bid, tok_b, timeout=30)
    if hashlib.sha256(body).hexdigest() != h:
        fail.append("blob %s does not match what was uploaded" % bid)
drain()
p.send_signal(signal.SIGTERM)
p.wait()
lost = [c for c in acked if c not in seen]
dup = [c for c, ids in seen.items() if len(ids) > 1]
stray = [c for c in seen if c not in acked]
print("relay-crash: %d kills, %d messages answered 2xx, %d in the mailbox, "
      "%d blobs checked; lost %d, duplicated %d, unknown %d"
      % (kills, len(acked), len(seen), len(blobs), len(lost),
         len(dup), len(stray)))
if lost:
    fail.append("lost: %s" % lost[:5])
if dup:
    fail.append("duplicated: %s" % dup[:5])
if stray:
    fail.append("in the mailbox but never answered: %s" % stray[:5])
for f in fail[:20]:
    print("relay-crash: " + f, file=sys.stderr)
sys.exit(1 if fail else 0)
