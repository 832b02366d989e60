"""The signer's logic on a key directory, in this process: what ``ecash bank
signer`` serves, and what operator commands and tests use directly.

The signer enforces ECASH-1 9.1 itself: a session nonce is made and
authenticated here (issue time, randomness, MAC), and it answers one list of
challenges only, recorded in :mod:`.signer_state` (a retry gets the same
answer, also after a restart). A worker cannot make a nonce answer twice.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from ..crypto import group
from ..crypto.errors import EcashError
from ..crypto.keys import DenominationKey, MerchantCertificate, Policy, certify_merchant
from ..crypto.params import g2
from ..crypto.withdrawal import CommitmentNonces, bank_choose_branches, holder_z
from .errors import BankError, conflict
from .keyring import KeyRing
from .signer import (
    CHALLENGE_PAIR_BYTES,
    KEY_ID_BYTES,
    NONCE_BYTES,
    Commitments,
    PublicInfo,
    check_challenges,
)
from .signer_state import AnswerLog

DEFAULT_WINDOW_S = 3600  # a nonce is answered this long after its issue at most
CLOCK_SKEW_S = 60  # a nonce "from the future" by more than this is not ours
MAX_COINS = 4096  # per request: well above any bank's session cap, a bound on the work


class LocalSigner:
    """A :class:`Signer` on a key directory, in this process. Thread-safe; any
    number of them (processes) may share the directory: the answer log is a
    SQLite file there."""

    def __init__(self, keys_dir: Path, *, window_s: int = DEFAULT_WINDOW_S,
                 clock: Callable[[], float] = time.time, ring: KeyRing | None = None) -> None:
        self._ring = ring or KeyRing.load(keys_dir)
        self._mac_key = hashlib.blake2b(b"session nonce MAC", key=self._ring.nonce_key[:64],
                                        digest_size=32, person=b"ECASH-signer").digest()
        self._log = AnswerLog(keys_dir / "signer.sqlite")
        self._window, self._clock = window_s, clock
        self._lock = threading.Lock()  # key reloads and generations
        self._stats_lock = threading.Lock()
        self.group_cpu_s = 0.0  # thread CPU of the commitments' group operations

    @classmethod
    def create(cls, keys_dir: Path, **kw: object) -> LocalSigner:
        """New master key and nonce key in a new directory (0700, files 0600)."""
        return cls(keys_dir, ring=KeyRing.create(keys_dir), **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        self._log.close()

    # --- public -------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        """Figures for benchmarks: the CPU its commitments' group operations took."""
        with self._stats_lock:
            return {"commitment_group_cpu_s": self.group_cpu_s}

    def public_info(self) -> PublicInfo:
        with self._lock:
            self._ring.reload()
            return PublicInfo(self._ring.master.public_key,
                              {n: [k.public for k in g.keys]
                               for n, g in sorted(self._ring.generations.items())})

    # --- withdrawal (9.1, 9.2) -----------------------------------------------
    def commit(self, identity: bytes, key_ids: bytes) -> Commitments:
        """A fresh nonce, the ``4n`` commitments derived from it for ``identity``,
        and ``z = (I*g2)^x`` per distinct key."""
        ids = _split_key_ids(key_ids)
        xs = {k: self._secret(k) for k in dict.fromkeys(ids)}
        try:
            I_g2 = group.add(identity, g2)
        except EcashError as exc:
            raise BankError("bad_identity", f"identity: {exc}") from None
        nonce = self._new_nonce()
        commitments, cpu = session_commitments(self._ring.nonce_key, nonce, I_g2, len(ids))
        with self._stats_lock:
            self.group_cpu_s += cpu
        return Commitments(nonce, commitments, {k: _z(identity, k, x) for k, x in xs.items()},
                           cpu)

    def respond(self, nonce: bytes, key_ids: bytes, packed: bytes) -> bytes:
        """``beta || r`` per coin, for the one challenge list this nonce answers:
        the same request again gets the recorded answer, any other is refused."""
        issued = self._check_nonce(nonce)
        ids = _split_key_ids(key_ids)
        check_challenges(packed)
        if len(packed) != len(ids) * CHALLENGE_PAIR_BYTES:
            raise BankError("bad_challenges", f"expected {len(ids)} challenge pairs")
        xs = {k: self._secret(k) for k in dict.fromkeys(ids)}
        digest = hashlib.sha256(key_ids + packed).digest()

        def answer() -> bytes:
            nonces = CommitmentNonces(self._ring.nonce_key, nonce)
            return answer_challenges(packed, ids, nonces, xs.__getitem__)

        recorded, blob = self._log.answer_once(nonce, issued, digest, answer,
                                               prune_before=int(self._clock()) - self._window)
        if recorded != digest:
            raise conflict("challenges_mismatch", "this commitment was answered for other"
                           " challenges; a commitment is answered once (ECASH-1 9.1)")
        return blob

    def _new_nonce(self) -> bytes:
        body = int(self._clock()).to_bytes(8, "big") + secrets.token_bytes(8)
        return body + self._mac(body)

    def _mac(self, body: bytes) -> bytes:
        return hashlib.blake2b(body, key=self._mac_key, digest_size=16).digest()

    def _check_nonce(self, nonce: bytes) -> int:
        """The nonce's issue time, if this signer made it and it is in the window."""
        if len(nonce) != NONCE_BYTES or not hmac.compare_digest(nonce[16:], self._mac(nonce[:16])):
            raise BankError("bad_nonce", "this session's nonce was not issued by the signer", 409)
        issued = int.from_bytes(nonce[:8], "big")
        now = int(self._clock())
        if not now - self._window <= issued <= now + CLOCK_SKEW_S:
            raise BankError("session_expired", "the session's commitments are too old to be"
                            " answered; start a new one", 410)
        return issued

    def _secret(self, key_id: bytes) -> int:
        k = self._ring.by_id.get(key_id)
        if k is None:
            with self._lock:
                self._ring.reload()  # a generation another process added
            k = self._ring.by_id.get(key_id)
            if k is None:
                raise BankError("unknown_key", f"the signer holds no key {key_id.hex()}")
        return k.x

    # --- the master key: the signer builds each signed message itself, so a
    # worker can ask for a certificate or a policy signature, never for a
    # signature over bytes of its choosing --------------------------------------
    def new_generation(self, number: int, values: list[int], currency: str, withdraw_start: int,
                       withdraw_end: int, deposit_end: int) -> list[DenominationKey]:
        with self._lock:
            self._ring.reload()
            gen = self._ring.new_generation(number, values, currency, withdraw_start,
                                            withdraw_end, deposit_end)
        return [k.public for k in gen.keys]

    def certify_terminal(self, merchant_id: str, public_key: bytes,
                         valid_until: int) -> MerchantCertificate:
        return certify_merchant(self._ring.master, merchant_id, public_key, valid_until)

    def sign_policy(self, policy: Policy) -> bytes:
        return policy.sign(self._ring.master)


def _split_key_ids(key_ids: bytes) -> list[bytes]:
    if not key_ids or len(key_ids) % KEY_ID_BYTES or len(key_ids) > MAX_COINS * KEY_ID_BYTES:
        raise BankError("bad_coin_count", f"key ids are 1 to {MAX_COINS} 32-byte ids")
    return [key_ids[i:i + KEY_ID_BYTES] for i in range(0, len(key_ids), KEY_ID_BYTES)]


@lru_cache(maxsize=65_536)
def _z(identity: bytes, key_id: bytes, x: int) -> bytes:
    """``z = (I*g2)^x``: one per account and key, so cached."""
    return holder_z(group.add(identity, g2), x)


def session_commitments(nonce_key: bytes, nonce: bytes, I_g2: bytes,
                        n: int) -> tuple[bytes, float]:
    """``a0 b0 a1 b1`` for ``n`` coins, each ``w`` derived from the session nonce
    (9.1), and the thread CPU its group operations took (the yardstick of the
    bank's benchmark). Like operations are done together: interleaved, they
    cost 5% more."""
    ws = CommitmentNonces(nonce_key, nonce).many((j, branch) for j in range(n)
                                                 for branch in (0, 1))
    started = time.thread_time()
    a = [group.base_mul(w) for w in ws]
    b = [group.mul(I_g2, w) for w in ws]
    cpu = time.thread_time() - started
    out: list[bytes] = [b""] * (4 * n)
    out[0::4], out[1::4], out[2::4], out[3::4] = a[0::2], b[0::2], a[1::2], b[1::2]
    return b"".join(out), cpu


def answer_challenges(packed: bytes, key_ids: list[bytes], nonces: CommitmentNonces,
                      secret_of: Callable[[bytes], int]) -> bytes:
    """``beta || r`` per coin with ``r = c_beta * x + w_beta`` (9.2 step 3),
    ``beta`` from the CSPRNG."""
    q = group.q
    betas = bank_choose_branches(len(key_ids))
    ws = nonces.many(enumerate(betas))
    out = bytearray()
    for j, beta in enumerate(betas):
        at = j * CHALLENGE_PAIR_BYTES + 32 * beta
        r = (int.from_bytes(packed[at:at + 32], "little") * secret_of(key_ids[j]) + ws[j]) % q
        out.append(beta)
        out += r.to_bytes(32, "little")
    return bytes(out)
