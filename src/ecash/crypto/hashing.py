"""The hashes of ECASH-1 section 1, and the integer encodings they use."""

from __future__ import annotations

import hashlib

from . import group

DOMAIN = b"ECASH-1/"


def u64(n: int) -> bytes:
    """8 bytes big-endian."""
    return n.to_bytes(8, "big")


def lp(x: bytes) -> bytes:
    """``u32_be(len(x)) || x``."""
    return len(x).to_bytes(4, "big") + x


def H_bytes(tag: str, *fields: bytes) -> bytes:
    """``SHA-512(lp("ECASH-1/" || tag) || lp(f1) || ... || lp(fn))`` (64 bytes)."""
    h = hashlib.sha512(lp(DOMAIN + tag.encode("ascii")))
    for f in fields:
        h.update(len(f).to_bytes(4, "big"))
        h.update(f)
    return h.digest()


def H_scalar(tag: str, *fields: bytes) -> int:
    """``H_bytes`` read little-endian, reduced mod q."""
    return group.reduce_wide(H_bytes(tag, *fields))


def H_group(tag: str, *fields: bytes) -> bytes:
    """RFC 9496 ``from_hash`` of ``H_bytes``."""
    return group.from_hash(H_bytes(tag, *fields))


def preimage(tag: str, *fields: bytes) -> bytes:
    """The exact SHA-512 input of :func:`H_bytes` (for test vectors and audits)."""
    return lp(DOMAIN + tag.encode("ascii")) + b"".join(lp(f) for f in fields)
