"""Account registration (ECASH-1 3.2): the holder's identity ``I = g1^u1``
with a Schnorr proof of knowledge of ``u1`` bound to the account id."""

from __future__ import annotations

from dataclasses import dataclass

from . import group
from .errors import IdentityElement, InvalidRegistration
from .hashing import H_scalar
from .params import g1, g2


@dataclass(frozen=True)
class RegistrationProof:
    I: bytes
    t: bytes
    p: int


def identity_of(u1: int) -> bytes:
    """``I = g1^u1``."""
    return group.mul(g1, group.nonzero(u1, "u1"))


def _challenge(I: bytes, t: bytes, account_id: str) -> int:
    raw = account_id.encode("utf-8")
    if not 1 <= len(raw) <= 64:
        raise InvalidRegistration("account id must be 1 to 64 UTF-8 bytes", "bad_account_id")
    return H_scalar("register", I, t, raw)


def prove(u1: int, account_id: str, k: int | None = None) -> RegistrationProof:
    """The holder's proof; ``k`` is drawn from the CSPRNG unless given (vectors)."""
    I = identity_of(u1)
    k = group.random_scalar() if k is None else k
    t = group.mul(g1, k)
    e = _challenge(I, t, account_id)
    return RegistrationProof(I, t, (k + e * u1) % group.q)


def verify(proof: RegistrationProof, account_id: str) -> None:
    """The bank's check. Raises :class:`InvalidRegistration` (code says why)."""
    try:
        I = group.decode_element(proof.I)
        t = group.decode_element(proof.t)
    except IdentityElement as exc:
        raise InvalidRegistration(f"registration: {exc}", "identity_element") from None
    if group.add(I, g2) == group.IDENTITY:
        raise InvalidRegistration("I * g2 is the identity", "identity_element")
    if not 0 <= proof.p < group.q:
        raise InvalidRegistration("p is not a canonical scalar", "non_canonical_scalar")
    e = _challenge(I, t, account_id)
    if group.mul(g1, proof.p) != group.add(t, group.mul(I, e)):
        raise InvalidRegistration("proof of knowledge of u1 does not verify", "proof_invalid")
