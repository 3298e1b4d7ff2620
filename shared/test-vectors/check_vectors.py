#!/usr/bin/env python3
"""Checks vectors.json against the tabchain specification, independently of the Rust code.

Everything here is rebuilt from the rules as documented (big-endian fixed-width fields, SHA-256,
RFC 8032 Ed25519) with Python's hashlib and the `cryptography` package, so a vector that the Rust
generator got wrong in the same way it checks it would still fail here.

Usage: python3 shared/test-vectors/check_vectors.py   (exit status 0 when every vector holds)
"""

import hashlib
import json
import pathlib
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives import serialization

HERE = pathlib.Path(__file__).resolve().parent
GENESIS_TIMESTAMP_MS = 1_767_225_600_000


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def header_bytes(f: dict) -> bytes:
    out = (
        struct.pack(">IQ", f["version"], f["height"])
        + bytes.fromhex(f["prev_hash"])
        + bytes.fromhex(f["tx_root"])
        + struct.pack(">QIQ", f["timestamp_ms"], f["target"], f["nonce"])
    )
    assert len(out) == 96
    return out


def coinbase_bytes(c: dict) -> bytes:
    return struct.pack(">Q", c["height"]) + bytes.fromhex(c["to"]) + struct.pack(">Q", c["amount"])


def tx_bytes(t: dict) -> bytes:
    return (
        bytes.fromhex(t["from"])
        + bytes.fromhex(t["to"])
        + struct.pack(">QQQ", t["amount"], t["fee"], t["nonce"])
        + bytes.fromhex(t["signature"])
    )


def merkle_root(leaves: list) -> bytes:
    if not leaves:
        return bytes(32)
    level = list(leaves)
    while len(level) > 1:
        level = [
            sha256(b"\x02", level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


def expand(compact: int):
    exponent, mantissa = compact >> 24, compact & 0xFFFFFF
    if mantissa == 0 or exponent > 32:
        return None
    value = mantissa >> (8 * (3 - exponent)) if exponent <= 3 else mantissa << (8 * (exponent - 3))
    if value == 0 or value >= 1 << 256:
        return None
    return value


def work(compact: int) -> int:
    target = expand(compact)
    if target is None or target == (1 << 256) - 1:
        return 1
    return (1 << 256) // (target + 1)


def compact_of(value: int) -> int:
    size = (value.bit_length() + 7) // 8
    mantissa = value << (8 * (3 - size)) if size <= 3 else value >> (8 * (size - 3))
    return (size << 24) | (mantissa & 0xFFFFFF)


# ---- Ed25519 verification exactly as docs/protocol.md states it (rule 15) ----
# Written out from the curve's definition rather than taken from a library, because libraries
# differ at the edges (cofactored or not, small-order points, S range) and the edges are the point.
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1, 1, 0)


def point_add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    cc, dd = 2 * t1 * t2 * D % P, 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_mul(scalar: int, point):
    result = IDENTITY
    while scalar:
        if scalar & 1:
            result = point_add(result, point)
        point = point_add(point, point)
        scalar >>= 1
    return result


def point_encode(point) -> bytes:
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def point_decode(raw: bytes):
    """RFC 8032 5.1.3 decoding, except as the spec says: y is reduced mod p, not required < p,
    and x = 0 with the sign bit set is not refused (both only concern small-order points or
    points nobody holds a key for)."""
    value = int.from_bytes(raw, "little")
    sign, y = value >> 255, (value & ((1 << 255) - 1)) % P
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    elif v * x * x % P != u:
        return None
    if x & 1 != sign:
        x = (-x) % P
    return (x, y, 1, x * y % P)


def is_small_order(point) -> bool:
    eight = point_mul(8, point)
    return eight[0] % P == 0 and (eight[1] - eight[2]) % P == 0


BASE = point_decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Cofactorless: encode([S]B - [k]A) must equal R's 32 bytes; S < L; A and R decode and are
    not of small order; k = SHA-512(R || A || message) mod L over the bytes as given."""
    a = point_decode(public)
    r = point_decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L or is_small_order(a) or is_small_order(r):
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    minus_ka = point_mul(k, (-a[0] % P, a[1], a[2], -a[3] % P))
    return point_encode(point_add(point_mul(s, BASE), minus_ka)) == signature[:32]


def signing_bytes(chain_id: str, t: dict) -> bytes:
    return (
        b"tabchain/tx/v1"
        + bytes.fromhex(chain_id)
        + bytes.fromhex(t["from"])
        + bytes.fromhex(t["to"])
        + struct.pack(">QQQ", t["amount"], t["fee"], t["nonce"])
    )


def median(values: list) -> int:
    """The upper median (the element at index len // 2 once sorted), as validation::median."""
    return sorted(values)[len(values) // 2]


def next_target(case: dict, chain: list) -> int:
    """The difficulty rule of docs/protocol.md ("Difficulty", block version 3), with Python's
    unbounded integers: `chain` is the list of (height, timestamp_ms, compact target) from
    genesis to the parent."""
    t = case["target_block_ms"]
    limit = case["solve_time_limit_factor"] * t
    span = case["effective_time_span"]
    mined = [b for b in chain if b[0] > 0]
    # The window: the parent and up to N ancestors, none below height M (each needs M - 1
    # mined ancestors for its effective time).
    start = max(span - 1, len(mined) - (case["difficulty_window"] + 1))
    n = len(mined) - start - 1
    if n <= 0:  # the child is at height M + 1 or below
        return int(case["initial_target"], 16)
    effective = []
    for i in range(start, len(mined)):
        m = median([b[1] for b in mined[i + 1 - span : i + 1]])
        effective.append(max(effective[-1], m) if effective else m)
    weighted = sum(j * min(effective[j] - effective[j - 1], limit) for j in range(1, n + 1))
    steady = t * (n * (n + 1) // 2) * 15 // 16
    weighted = max(weighted, steady // case["max_hardening_factor"], 1)
    average = sum(expand(b[2]) for b in mined[start + 1 :]) // n
    new = average * weighted // steady
    new = min(max(new, 1), int(case["max_target"], 16))
    return compact_of(new)


def main() -> int:
    v = json.loads((HERE / "vectors.json").read_text())
    checks = 0

    chain_ids = {}
    for n in v["networks"]:
        raw = bytes.fromhex(n["genesis_header_hex"])
        version, height = struct.unpack(">IQ", raw[:12])
        assert (version, height) == (3, 0), n["network"]
        assert raw[12:44] == bytes(32), "genesis has no parent"
        timestamp, target, nonce = struct.unpack(">QIQ", raw[76:96])
        assert (timestamp, nonce) == (GENESIS_TIMESTAMP_MS, 0)
        assert f"{target:08x}" == n["initial_target"]
        # The genesis coinbase pays 0 to the first 20 bytes of SHA-256("tabchain/genesis/" + name).
        tag = sha256(b"tabchain/genesis/", n["name"].encode())[:20]
        coinbase_id = sha256(b"\x00", struct.pack(">Q", 0) + tag + struct.pack(">Q", 0))
        assert raw[44:76] == merkle_root([coinbase_id]), f"{n['network']}: genesis tx root"
        assert sha256(raw).hex() == n["genesis_hash"], f"{n['network']}: genesis hash"
        chain_id = sha256(b"tabchain/chain-id/v1", sha256(raw))
        assert chain_id.hex() == n["chain_id"], f"{n['network']}: chain id"
        chain_ids[n["network"]] = n["chain_id"]
        checks += 1

    h = v["header"]
    assert header_bytes(h["fields"]).hex() == h["canonical_hex"], "header bytes"
    assert sha256(bytes.fromhex(h["canonical_hex"])).hex() == h["hash"], "header hash"
    checks += 1

    t = v["transaction"]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(t["seed_hex"]))
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public.hex() == t["public_key"], "public key from seed"
    assert sha256(public)[:20].hex() == t["sender_address"], "address"
    assert t["chain_id"] == chain_ids[t["network"]]
    signing = (
        b"tabchain/tx/v1"
        + bytes.fromhex(t["chain_id"])
        + public
        + bytes.fromhex(t["to"])
        + struct.pack(">QQQ", t["amount"], t["fee"], t["nonce"])
    )
    assert signing.hex() == t["signing_bytes_hex"], "signing bytes"
    signature = key.sign(signing)  # RFC 8032 signatures are deterministic
    assert signature.hex() == t["signature_hex"], "signature"
    Ed25519PublicKey.from_public_bytes(public).verify(signature, signing)
    assert tx_bytes(t["json"]).hex() == t["canonical_hex"], "transaction bytes"
    assert sha256(b"\x01", bytes.fromhex(t["canonical_hex"])).hex() == t["id"], "transaction id"
    checks += 1

    b = v["block"]
    block = b["json"]
    coinbase_id = sha256(b"\x00", coinbase_bytes(block["coinbase"]))
    assert coinbase_id.hex() == b["coinbase_id"], "coinbase id"
    tx_ids = [sha256(b"\x01", tx_bytes(tx)) for tx in block["transactions"]]
    assert merkle_root([coinbase_id] + tx_ids).hex() == b["tx_root"] == block["header"]["tx_root"]
    body = coinbase_bytes(block["coinbase"]) + struct.pack(">I", len(tx_ids))
    body += b"".join(tx_bytes(tx) for tx in block["transactions"])
    assert (header_bytes(block["header"]) + body).hex() == b["canonical_hex"], "block bytes"
    assert sha256(header_bytes(block["header"])).hex() == b["hash"], "block hash"
    checks += 1

    m = v["mining"]
    target = expand(m["header"]["target"])
    tried = 0
    for nonce in range(m["first_nonce"], m["first_nonce"] + 1_000_000):
        tried += 1
        digest = sha256(header_bytes(dict(m["header"], nonce=nonce)))
        if int.from_bytes(digest, "big") <= target:
            break
    assert (nonce, digest.hex(), tried) == (m["found_nonce"], m["hash"], m["tried"]), "mining"
    checks += 1

    for case in v["merkle"]:
        leaves = [bytes.fromhex(x) for x in case["leaves"]]
        assert merkle_root(leaves).hex() == case["root"], f"merkle of {len(leaves)}"
        checks += 1

    for case in v["targets"]:
        compact = int(case["compact"], 16)
        expanded = expand(compact)
        assert (None if expanded is None else f"{expanded:064x}") == case["expanded"], case
        assert f"{work(compact):x}" == case["work"], case
        checks += 1

    for case in v["compact_of"]:
        assert f"{compact_of(int(case['value'], 16)):08x}" == case["compact"], case
        checks += 1

    # The library and the hand-written verifier agree on an ordinary signature.
    assert verify(public, signing, signature), "verify() accepts the transaction vector"
    for case in v["signatures"]:
        tx = case["tx"]
        message = signing_bytes(chain_ids["test"], tx)
        got = verify(bytes.fromhex(tx["from"]), message, bytes.fromhex(tx["signature"]))
        assert got == case["valid"], case["name"]
        checks += 1

    for case in v["difficulty"]:
        n = next(x for x in v["networks"] if x["network"] == case["network"])
        assert case["initial_target"] == n["initial_target"], case["network"]
        raw = bytes.fromhex(n["genesis_header_hex"])
        chain = [(0, struct.unpack(">Q", raw[76:84])[0], int(n["initial_target"], 16))]
        for block in case["blocks"]:
            got = next_target(case, chain)
            assert f"{got:08x}" == block["target"], f"{case['network']} block {block['height']}"
            chain.append((block["height"], block["timestamp_ms"], got))
        checks += 1

    print(f"all {checks} vectors hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
