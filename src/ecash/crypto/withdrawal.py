"""Withdrawal (ECASH-1 4) as explicit bank and user steps, plain and clause (9.2).

Every intermediate state is a frozen dataclass with ``to_dict``/``from_dict``
so a wallet can persist it before it sends challenges and a bank worker can
answer a session another worker opened. The plain form (one commitment) is
for test vectors only: a server must use the clause form (9.2).
"""

from __future__ import annotations

import hashlib
import secrets as _secrets
from collections.abc import Iterable
from dataclasses import dataclass

from . import group
from .coin import Coin, CoinSecrets, PublicKeyLike, check_scalar, coin_challenge
from .errors import EcashError, InvalidWithdrawalResponse, ZeroScalar
from .params import g1, g2, identity_base


@dataclass(frozen=True)
class Commitment:
    """The bank's ``(a, b) = (g^w, (I*g2)^w)``."""

    a: bytes
    b: bytes


# --- bank side -------------------------------------------------------------

class CommitmentNonces:
    """``w`` by a PRF (keyed BLAKE2b) under a bank secret from a stored random
    nonce (9.1), so any worker can answer any session; never client-chosen.
    One per session: the keyed state is set up once and copied per ``w``."""

    def __init__(self, bank_secret: bytes, session_nonce: bytes) -> None:
        if len(bank_secret) < 32 or len(session_nonce) != 32:
            raise ValueError("bank secret >= 32 bytes and a 32-byte session nonce required")
        self._keyed = hashlib.blake2b(session_nonce, key=bank_secret[:64], digest_size=64,
                                      person=b"ECASH-1/w")

    def __call__(self, index: int, branch: int) -> int:
        """``w`` of coin ``index``'s commitment on ``branch``: the MAC of
        ``nonce || u32(index) || u8(branch)`` (the nonce absorbed once),
        read little-endian and reduced mod q. Sessions outlive a restart of
        the bank: this derivation must never change."""
        mac = self._keyed.copy()
        mac.update(index.to_bytes(4, "big") + _BRANCH[branch])
        return group.nonzero(group.reduce_wide(mac.digest()), "w")

    def many(self, pairs: Iterable[tuple[int, int]]) -> list[int]:
        """``self(index, branch)`` for each pair, in one loop (a session's 2n
        commitments and n answers: the calls cost more than the MACs)."""
        copy, q, branches = self._keyed.copy, group.q, _BRANCH
        out = []
        for index, branch in pairs:
            mac = copy()
            mac.update(index.to_bytes(4, "big") + branches[branch])
            w = int.from_bytes(mac.digest(), "little") % q
            if not w:
                raise ZeroScalar("w is zero")
            out.append(w)
        return out


_BRANCH = (b"\x00", b"\x01")


def bank_commit(I_g2: bytes, w: int) -> Commitment:
    """Step 1 for one branch: ``a = g^w``, ``b = (I*g2)^w``."""
    group.nonzero(w, "w")
    return Commitment(group.base_mul(w), group.mul(I_g2, w))


def bank_respond(x: int, w: int, c: int) -> int:
    """Step 3: ``r = c*x + w``. The caller must answer a commitment only once (9.1)."""
    group.nonzero(check_scalar(c, "c"), "c")
    return (c * x + w) % group.q


def bank_choose_branches(n: int) -> list[int]:
    """9.2 step 3: the bit ``beta`` of each of ``n`` coins, from one CSPRNG read."""
    bits = int.from_bytes(_secrets.token_bytes((n + 7) // 8), "little")
    return [(bits >> j) & 1 for j in range(n)]


def holder_z(I_g2: bytes, x: int) -> bytes:
    """``z = (I*g2)^x``, the same for every coin of one account and key."""
    return group.mul(I_g2, x)


# --- user side -------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class Branch:
    """One blinded commitment: blinding pair ``(u, v)`` (``mu_j, nu_j`` in 9.2)."""

    commitment: Commitment
    u: int
    v: int
    a_prime: bytes
    b_prime: bytes
    c_prime: int
    c: int

    def __repr__(self) -> str:
        return f"Branch(c={self.c:#x})"


@dataclass(frozen=True, repr=False)
class WithdrawalState:
    """The user's state between sending challenges and receiving ``r``.

    Holds secrets: persist it encrypted. ``branches`` has one entry (plain
    form) or two (clause form)."""

    key_id: bytes
    h: bytes
    I: bytes
    z: bytes
    secrets: CoinSecrets
    A: bytes
    B: bytes
    z_prime: bytes
    branches: tuple[Branch, ...]

    @property
    def challenges(self) -> tuple[int, ...]:
        return tuple(br.c for br in self.branches)

    def __repr__(self) -> str:
        return f"WithdrawalState(key_id={self.key_id.hex()}, A={self.A.hex()})"

    def to_dict(self) -> dict:
        hx = lambda k: group.encode_scalar(k).hex()  # noqa: E731
        return {
            "key_id": self.key_id.hex(), "h": self.h.hex(), "I": self.I.hex(),
            "z": self.z.hex(), "s": hx(self.secrets.s), "x1": hx(self.secrets.x1),
            "x2": hx(self.secrets.x2), "A": self.A.hex(), "B": self.B.hex(),
            "z_prime": self.z_prime.hex(),
            "branches": [{"a": br.commitment.a.hex(), "b": br.commitment.b.hex(),
                          "u": hx(br.u), "v": hx(br.v), "a_prime": br.a_prime.hex(),
                          "b_prime": br.b_prime.hex(), "c_prime": hx(br.c_prime),
                          "c": hx(br.c)} for br in self.branches],
        }

    @classmethod
    def from_dict(cls, d: dict) -> WithdrawalState:
        sc = lambda k: group.decode_scalar(bytes.fromhex(k))  # noqa: E731
        el = lambda k: group.decode_element(bytes.fromhex(k))  # noqa: E731
        return cls(
            bytes.fromhex(d["key_id"]), el(d["h"]), el(d["I"]), el(d["z"]),
            CoinSecrets(sc(d["s"]), sc(d["x1"]), sc(d["x2"])), el(d["A"]), el(d["B"]),
            el(d["z_prime"]),
            tuple(Branch(Commitment(el(b["a"]), el(b["b"])), sc(b["u"]), sc(b["v"]),
                         el(b["a_prime"]), el(b["b_prime"]), sc(b["c_prime"]), sc(b["c"]))
                  for b in d["branches"]),
        )


def user_blind(key: PublicKeyLike, I: bytes, z: bytes, commitments: list[Commitment] | tuple,
               coin_secrets: CoinSecrets | None = None,
               blinding: list[tuple[int, int]] | None = None) -> WithdrawalState:
    """Step 2: blind each commitment; fresh secrets from the CSPRNG unless given.

    Callers that derive secrets from a seed must follow 9.7 (mix in the
    commitments). Raises on a non-canonical or identity ``h, z, a_j, b_j``.
    """
    if not 1 <= len(commitments) <= 2:
        raise ValueError("one commitment (plain) or two (clause form)")
    for name, P in (("h", key.h), ("z", z), ("I", I)):
        _check_bank_element(P, name)
    for cm in commitments:
        _check_bank_element(cm.a, "a")
        _check_bank_element(cm.b, "b")
    if coin_secrets is None:
        coin_secrets = CoinSecrets(group.random_scalar(), group.random_scalar(),
                                   group.random_scalar())
    if blinding is None:
        blinding = [(group.random_scalar(), group.random_scalar()) for _ in commitments]
    s, x1, x2 = coin_secrets.s, coin_secrets.x1, coin_secrets.x2
    group.nonzero(s, "s")
    if len(blinding) != len(commitments):
        raise ValueError("one blinding pair per commitment")
    u_inv = _inverses([group.nonzero(u, "u") for u, _ in blinding])
    I_g2 = identity_base(I)
    A = group.mul(I_g2, s)
    B = group.add(group.mul(g1, x1), group.mul(g2, x2))
    z_prime = group.mul(z, s)
    branches = []
    for cm, (u, v), ui in zip(commitments, blinding, u_inv, strict=True):
        a_prime = group.add(group.mul(cm.a, u), group.base_mul(v))
        b_prime = group.add(group.mul(cm.b, s * u % group.q), group.mul(A, v))
        group.not_identity(a_prime, "a'")
        group.not_identity(b_prime, "b'")
        c_prime = group.nonzero(coin_challenge(key.key_id, A, B, z_prime, a_prime, b_prime),
                                "c'")
        c = c_prime * ui % group.q
        branches.append(Branch(cm, u, v, a_prime, b_prime, c_prime, c))
    for P in (A, B, z_prime):
        group.not_identity(P, "coin element")
    return WithdrawalState(key.key_id, key.h, I, z, coin_secrets, A, B, z_prime,
                           tuple(branches))


def _inverses(us: list[int]) -> list[int]:
    """Modular inverses of one or two non-zero scalars with one inversion."""
    q = group.q
    if len(us) == 1:
        return [pow(us[0], -1, q)]
    u0, u1 = us
    t = pow(u0 * u1 % q, -1, q)
    return [u1 * t % q, u0 * t % q]


def _check_bank_element(P: bytes, name: str) -> None:
    try:
        group.decode_element(P)
    except EcashError as exc:
        raise InvalidWithdrawalResponse(f"bank's {name}: {exc}", exc.code) from None


def check_response(h: bytes, I: bytes, z: bytes, commitment: Commitment, c: int, r: int) -> None:
    """Step 4's check: ``g^r == h^c * a`` and ``(I*g2)^r == z^c * b``."""
    if not (isinstance(r, int) and 0 <= r < group.q):
        raise InvalidWithdrawalResponse("r is not a canonical scalar", "non_canonical_scalar")
    if group.base_mul(r) != group.add(group.mul(h, c), commitment.a):
        raise InvalidWithdrawalResponse("g^r != h^c * a", "response_equation")
    if group.mul(identity_base(I), r) != group.add(group.mul(z, c), commitment.b):
        raise InvalidWithdrawalResponse("(I*g2)^r != z^c * b", "response_equation")


def user_finish(state: WithdrawalState, r: int, beta: int = 0) -> tuple[Coin, CoinSecrets]:
    """Step 4 for the answered branch ``beta`` (0 in the plain form)."""
    if beta not in range(len(state.branches)):
        raise InvalidWithdrawalResponse("branch bit out of range", "bad_branch")
    br = state.branches[beta]
    check_response(state.h, state.I, state.z, br.commitment, br.c, r)
    r_prime = (r * br.u + br.v) % group.q
    coin = Coin(state.key_id, state.A, state.B, state.z_prime, br.a_prime, br.b_prime, r_prime)
    return coin, state.secrets
