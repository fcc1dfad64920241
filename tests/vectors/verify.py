#!/usr/bin/env python3
"""verify.py - check session-v1.json against SPEC 4-5 with an independent
implementation (pyca/cryptography, Debian python3-cryptography), not libst:
from the file's inputs it recomputes the X3DH of the first message and the
ratchet chains of all four, and decrypts every envelope to its "inner"
JSON followed by zero padding.  test_vectors.c checks that libst produces
the file byte for byte; this checks that the file follows the SPEC.

    python3 tests/vectors/verify.py [FILE]
"""
import base64
import hashlib
import hmac
import json
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def dh(priv, pub):
    return X25519PrivateKey.from_private_bytes(priv).exchange(
        X25519PublicKey.from_public_bytes(pub))


def pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key() \
        .public_bytes_raw()


def hkdf(ikm, salt, info, n):
    return HKDF(hashes.SHA256(), n, salt, info).derive(ikm)


def kdf_rk(rk, d):
    o = hkdf(d, rk, b"st-dr-rk-v1", 64)
    return o[:32], o[32:]


def kdf_ck(ck):
    return (hmac.new(ck, b"\x01", hashlib.sha256).digest(),
            hmac.new(ck, b"\x02", hashlib.sha256).digest())


def open_msg(msg, mk, ad):
    env = msg["envelope"]
    hdr = b64(env["hdr"])
    kn = hkdf(mk, bytes(32), b"st-msg-v1", 44)
    pt = ChaCha20Poly1305(kn[:32]).decrypt(kn[32:], b64(env["ct"]), ad + hdr)
    inner = msg["inner"].encode()
    assert len(pt) % 256 == 0 and pt[:len(inner)] == inner, msg["label"]
    assert not any(pt[len(inner):]), msg["label"] + ": padding"
    return hdr


def header(hdr):
    return (hdr[:32], int.from_bytes(hdr[32:36], "big"),
            int.from_bytes(hdr[36:40], "big"))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "session-v1.json")
    with open(path) as f:
        d = json.load(f)
    inp = d["inputs"]
    h = bytes.fromhex
    ids = {u: b"\x01" + b64(j["ed25519"]) + b64(j["x25519"])
           for u, j in d["identities"].items()}
    ad = bytes([5]) + b"alice" + ids["alice"] + bytes([3]) + b"bob" + ids["bob"]
    msgs = {m["label"]: m for m in d["messages"]}
    ra = [h(k) for k in inp["ratchet_keys"]["alice"]]
    rb = [h(k) for k in inp["ratchet_keys"]["bob"]]
    spk, opk = h(inp["spk"]["priv"]), h(inp["opk"]["priv"])
    ikb = h(inp["bob"]["x25519"])

    # A1: X3DH as bob, then his first ratchet step
    env = msgs["A1"]["envelope"]
    x = env["x3dh"]
    ek = b64(x["ek"])
    assert b64(x["ik"]) == ids["alice"] and ek == pub(h(inp["ek"]))
    assert (x["spk"], x["opk"]) == (inp["spk"]["id"], inp["opk"]["id"])
    sk = hkdf(b"\xff" * 32 + dh(spk, ids["alice"][33:]) + dh(ikb, ek) +
              dh(spk, ek) + dh(opk, ek), bytes(32), b"st-x3dh-v1", 32)
    dh_a1, pn, n = header(b64(env["hdr"]))
    assert dh_a1 == pub(ra[0]) and (pn, n) == (0, 0)
    rk, ckr = kdf_rk(sk, dh(spk, dh_a1))
    open_msg(msgs["A1"], kdf_ck(ckr)[0], ad)

    # B1: bob's sending chain from his first ratchet key
    rk, cks = kdf_rk(rk, dh(rb[0], dh_a1))
    assert "x3dh" not in msgs["B1"]["envelope"]
    assert header(open_msg(msgs["B1"], kdf_ck(cks)[0], ad)) == (pub(rb[0]), 0, 0)

    # A2, A3: alice's second chain (pn 1), delivered A3 first
    rk, ck = kdf_rk(rk, dh(rb[0], pub(ra[1])))
    for label, want_n in (("A2", 0), ("A3", 1)):
        mk, ck = kdf_ck(ck)
        got = header(open_msg(msgs[label], mk, ad))
        assert got == (pub(ra[1]), 1, want_n), label
    assert d["delivery"] == ["A1", "B1", "A3", "A2"]
    print("session-v1.json: 4 envelopes verified against SPEC 4-5")


if __name__ == "__main__":
    main()
