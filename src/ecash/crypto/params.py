"""System parameters of ECASH-1 section 2: the generators g, g1, g2."""

from __future__ import annotations

from functools import lru_cache

from .group import G, add
from .hashing import H_group

g = G
g1 = H_group("generator", b"g1")
g2 = H_group("generator", b"g2")


@lru_cache(maxsize=1024)
def identity_base(I: bytes) -> bytes:
    """``I * g2``, the base of a holder's coins (section 3.2); one per holder, so cached."""
    return add(I, g2)
