"""Coins and their offline validity (ECASH-1 4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from . import group
from .errors import EcashError, InvalidCoin, KeyMismatch, NonCanonicalScalar
from .hashing import H_bytes, H_scalar


class PublicKeyLike(Protocol):
    key_id: bytes
    h: bytes


@dataclass(frozen=True)
class Coin:
    """``(key_id, A, B, z', a', b', r')``, identified by :attr:`coin_id` (rev. 2).

    ``A`` alone is not an identifier: a holder who reuses ``s`` gets two
    signatures on one ``A``, and each is a coin of its own (ECASH-1 4.1).
    """

    key_id: bytes
    A: bytes
    B: bytes
    z: bytes
    a: bytes
    b: bytes
    r: int

    @cached_property
    def coin_id(self) -> bytes:
        """``H_bytes("coin-id", key_id, A, B)[0:32]``: the coin's serial number."""
        return compute_coin_id(self.key_id, self.A, self.B)

    @property
    def serial(self) -> bytes:
        """The serial number of the spec's text, which revision 2 defines as ``coin_id``."""
        return self.coin_id


def compute_coin_id(key_id: bytes, A: bytes, B: bytes) -> bytes:
    """``coin_id = H_bytes("coin-id", key_id, A, B)[0:32]`` (ECASH-1 4.1, rev. 2)."""
    return H_bytes("coin-id", key_id, A, B)[:32]


@dataclass(frozen=True, repr=False)
class CoinSecrets:
    """What the holder keeps beside a coin to spend it: ``(s, x1, x2)``."""

    s: int
    x1: int
    x2: int

    def __repr__(self) -> str:
        return "CoinSecrets(<hidden>)"


def coin_challenge(key_id: bytes, A: bytes, B: bytes, z: bytes, a: bytes, b: bytes) -> int:
    """``c' = H_scalar("coin", key_id, A, B, z', a', b')``."""
    return H_scalar("coin", key_id, A, B, z, a, b)


def check_scalar(k: int, what: str) -> int:
    if not (isinstance(k, int) and 0 <= k < group.q):
        raise NonCanonicalScalar(f"{what} is not a canonical scalar")
    return k


def verify_coin(coin: Coin, key: PublicKeyLike) -> None:
    """Raise unless ``coin`` is valid under ``key`` (4.1 with the checks of 9.3).

    Cost: 1 fixed-base and 3 variable-base multiplications, 2 additions and
    5 element decodings.
    """
    if coin.key_id != key.key_id:
        raise KeyMismatch("coin names another denomination key")
    for name in ("A", "B", "z", "a", "b"):
        try:
            group.decode_element(getattr(coin, name))
        except EcashError as exc:  # re-raised with the field named, same type and code
            raise type(exc)(f"coin.{name}: {exc}") from None
    r = check_scalar(coin.r, "coin.r")
    c = group.nonzero(coin_challenge(coin.key_id, coin.A, coin.B, coin.z, coin.a, coin.b), "c'")
    if group.base_mul(r) != group.add(group.mul(key.h, c), coin.a):
        raise InvalidCoin("bank signature check g^r' == h^c' * a' fails", "coin_equation")
    if group.mul(coin.A, r) != group.add(group.mul(coin.z, c), coin.b):
        raise InvalidCoin("bank signature check A^r' == z'^c' * b' fails", "coin_equation")
