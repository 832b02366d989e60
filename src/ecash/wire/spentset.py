"""Buckets of the spent-set query, shared by the bank (which stores each spent
coin's bucket) and the wallet (which asks for whole buckets, never for a
``coin_id``).

A coin's bucket is the top 31 bits of ``SHA-256(coin_id)``; a query at
``bits`` bits asks for the coins whose bucket starts with a ``bits``-bit
prefix. The wallet, not the bank, chooses ``bits`` (see ``docs/wallet.md``).
"""

from __future__ import annotations

import hashlib

BUCKET_BITS = 31


def bucket_of(coin_id: bytes) -> int:
    """The top 31 bits of ``SHA-256(coin_id)``, as an integer in ``[0, 2^31)``."""
    return int.from_bytes(hashlib.sha256(coin_id).digest()[:4], "big") >> 1


def prefix_of(coin_id: bytes, bits: int) -> int:
    """The ``bits``-bit prefix of the coin's bucket (``0 <= bits <= 31``)."""
    return bucket_of(coin_id) >> (BUCKET_BITS - bits)


def bucket_range(prefix: int, bits: int) -> tuple[int, int]:
    """The inclusive range of buckets that start with ``prefix`` at ``bits`` bits."""
    shift = BUCKET_BITS - bits
    return prefix << shift, ((prefix + 1) << shift) - 1
