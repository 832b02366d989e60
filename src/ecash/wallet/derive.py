"""Everything secret the wallet derives from its seed (ECASH-1 3.2, 9.7).

``u1`` comes from the seed alone. A coin's ``s, x1, x2`` and each branch's
blinding pair ``(mu_j, nu_j)`` come from the seed *and* what is unique to that
withdrawal: the bank's session id, the coin's index in the session, its key
and the bank's commitments ``a0, b0, a1, b1``. Two copies of one seed (a
restored backup, a second device) therefore never derive the same secrets,
while the seed plus the bank's record of the withdrawal rebuilds every coin.
"""

from __future__ import annotations

import hashlib

from ..crypto import group
from ..crypto.coin import CoinSecrets
from ..crypto.hashing import lp
from ..crypto.withdrawal import Commitment

PERSON = b"ECASH-1/wallet"
COIN_FIELDS = (b"s", b"x1", b"x2", b"mu0", b"nu0", b"mu1", b"nu1")


class Deriver:
    """Holds the seed's PRF key; every output is a non-zero scalar."""

    __slots__ = ("_key",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) < 32:
            raise ValueError("seed too short")
        self._key = hashlib.sha512(b"ECASH-1/wallet-seed" + seed).digest()

    def _scalar(self, label: bytes, *parts: bytes) -> int:
        for counter in range(16):  # a zero scalar has probability 2^-252: never loops
            h = hashlib.blake2b(key=self._key, digest_size=64, person=PERSON)
            h.update(lp(label))
            for p in parts:
                h.update(lp(p))
            h.update(counter.to_bytes(1, "big"))
            k = group.reduce_wide(h.digest())
            if k:
                return k
        raise ArithmeticError("unreachable")

    def u1(self) -> int:
        return self._scalar(b"u1")

    def coin(self, session_id: bytes, index: int, key_id: bytes,
             commitments: tuple[Commitment, Commitment]
             ) -> tuple[CoinSecrets, list[tuple[int, int]]]:
        """``(s, x1, x2)`` and ``[(mu0, nu0), (mu1, nu1)]`` for one coin."""
        c0, c1 = commitments
        parts = (session_id, index.to_bytes(4, "big"), key_id, c0.a, c0.b, c1.a, c1.b)
        s, x1, x2, mu0, nu0, mu1, nu1 = (self._scalar(b"coin/" + f, *parts)
                                        for f in COIN_FIELDS)
        return CoinSecrets(s, x1, x2), [(mu0, nu0), (mu1, nu1)]
