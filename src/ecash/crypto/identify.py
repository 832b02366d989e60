"""Double-spender identification (ECASH-1 7) and the proof anyone can check."""

from __future__ import annotations

from dataclasses import dataclass

from . import group
from .coin import PublicKeyLike
from .errors import NotADoubleSpend
from .params import g1
from .payment import Spend, spend_challenge, verify_spend


@dataclass(frozen=True, repr=False)
class Identification:
    s: int
    u1: int
    I: bytes

    def __repr__(self) -> str:
        return f"Identification(I={self.I.hex()})"


def identify(spend1: Spend, spend2: Spend) -> Identification:
    """Recover ``(s, u1, I)`` from two transcripts of one coin with ``d != d'``.

    Does not verify the transcripts (see :func:`verify_double_spend`).
    """
    c1, c2 = spend1.coin, spend2.coin
    if (c1.key_id, c1.A, c1.B) != (c2.key_id, c2.A, c2.B):
        raise NotADoubleSpend("the transcripts are of different coins", "different_coins")
    d1 = spend_challenge(c1.A, c1.B, spend1.request.request_id)
    d2 = spend_challenge(c2.A, c2.B, spend2.request.request_id)
    q = group.q
    if (d1 - d2) % q == 0:
        raise NotADoubleSpend("same challenge d twice: one payment, not a double spend",
                              "same_transcript")
    dr2 = (spend1.r2 - spend2.r2) % q
    if dr2 == 0:
        raise NotADoubleSpend("r2 == r2' with d != d' (s = 0): not a valid coin", "zero_scalar")
    s = dr2 * pow((d1 - d2) % q, -1, q) % q
    u1 = (spend1.r1 - spend2.r1) * pow(dr2, -1, q) % q
    if u1 == 0:
        raise NotADoubleSpend("recovered u1 is zero", "zero_scalar")
    return Identification(s, u1, group.mul(g1, u1))


def verify_double_spend(key: PublicKeyLike, spend1: Spend, spend2: Spend) -> Identification:
    """Both spends valid under ``key``, of one coin, ``d != d'``: return who spent it."""
    verify_spend(spend1, key)
    verify_spend(spend2, key)
    return identify(spend1, spend2)


@dataclass(frozen=True)
class DoubleSpendProof:
    """Two valid transcripts of one coin: proof that the holder of ``I`` spent it twice."""

    key: PublicKeyLike
    spend1: Spend
    spend2: Spend

    def verify(self, expected_I: bytes | None = None) -> bytes:
        """Return the named ``I``; raise if invalid or (given) not ``expected_I``."""
        found = verify_double_spend(self.key, self.spend1, self.spend2).I
        if expected_I is not None and found != expected_I:
            raise NotADoubleSpend("the transcripts name another identity", "identity_mismatch")
        return found
