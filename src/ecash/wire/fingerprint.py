"""The master key's fingerprint, as people compare it.

The bank prints it at ``bank init`` and ``bank serve``; the wallet and the
terminal print it when they pin a bank. It covers the whole 32-byte key
(SHA-256 of the key, all 32 bytes) so that no key chosen to collide with a
short prefix can pass a comparison, and it is cut into groups of four hex
characters so that two people can read it to each other.
"""

from __future__ import annotations

import hashlib


def master_key_fingerprint(public_key: bytes) -> str:
    """``SHA-256(public_key)`` in lowercase hex, in 16 groups of 4 separated by spaces."""
    digest = hashlib.sha256(public_key).hexdigest()
    return " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))
