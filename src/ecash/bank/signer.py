"""The bank's secrets behind one interface, so that no HTTP worker holds them.

Every use of a secret (the denomination exponents ``x``, the commitment PRF
key, the master signing key) is an operation of a :class:`Signer`: commit,
respond, sign. :class:`.signer_local.LocalSigner` does them in process on a
key directory (operator commands, tests); ``ecash bank signer``
(:mod:`.signer_server`) runs one in a process of its own and
:class:`SignerClient` asks it over a UNIX socket, so a compromised worker can
ask for answers (one per commitment, the signer sees to it) but never read a
key. This module is what a worker imports: it loads no key.

A frame is a 4-byte big-endian length and that many bytes of JSON: a request
``{"op": ..., ...}``, a reply ``{"ok": ...}`` or ``{"error": {"code",
"detail", "status"}}`` (a refusal, raised in the worker as the same
:class:`.errors.BankError`). Binary values travel as hex. One withdrawal
session costs two round trips: ``commit`` and ``respond`` are per session.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from ..crypto import group
from ..crypto.errors import EcashError
from ..crypto.keys import DenominationKey, MerchantCertificate, Policy
from ..wire import json as wj
from .errors import BankError

NONCE_BYTES = 32  # u64 issue time || 8 random bytes || 16-byte MAC
KEY_ID_BYTES = 32
CHALLENGE_PAIR_BYTES = 64  # c0 || c1
ANSWER_BYTES = 33  # beta || r
_ZERO = bytes(32)


class SignerUnavailable(BankError):
    """The signer process cannot be reached (socket missing, refused, or no
    answer in time): nothing was done, the request may be retried."""

    def __init__(self, detail: str) -> None:
        super().__init__("signer_unavailable", detail, 503)


@dataclass(frozen=True)
class Commitments:
    """A session's opening: its nonce, ``a0 b0 a1 b1`` per coin, ``z`` per key,
    and the thread CPU the signer's group operations took for it (the bank
    counts it in its metrics, as if it had done them)."""

    nonce: bytes
    commitments: bytes
    z: dict[bytes, bytes]
    group_cpu_s: float = 0.0


@dataclass(frozen=True)
class PublicInfo:
    master_public_key: bytes
    keys: dict[int, list[DenominationKey]]  # generation -> its keys


class Signer(Protocol):
    """What the bank asks of whoever holds its secrets."""

    def public_info(self) -> PublicInfo: ...

    def commit(self, identity: bytes, key_ids: bytes) -> Commitments: ...

    def respond(self, nonce: bytes, key_ids: bytes, packed: bytes) -> bytes: ...

    def new_generation(self, number: int, values: list[int], currency: str, withdraw_start: int,
                       withdraw_end: int, deposit_end: int) -> list[DenominationKey]: ...

    def certify_terminal(self, merchant_id: str, public_key: bytes,
                         valid_until: int) -> MerchantCertificate: ...

    def sign_policy(self, policy: Policy) -> bytes: ...


MAX_FRAME = 16 << 20
TIMEOUT_S = 10.0
_LEN = struct.Struct(">I")


def send_frame(sock: socket.socket, obj: object) -> None:
    body = orjson.dumps(obj)
    sock.sendall(_LEN.pack(len(body)) + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the peer closed the connection")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> Any:
    (n,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if n > MAX_FRAME:
        raise ValueError(f"frame of {n} bytes")
    return orjson.loads(_recv_exact(sock, n))


# --- the client --------------------------------------------------------------

class SignerClient:
    """A :class:`.signer.Signer` in another process. Connections are pooled;
    a broken one is dropped and the next call connects anew, so a restarted
    signer is picked up without restarting the workers."""

    def __init__(self, socket_path: str | Path, *, timeout: float = TIMEOUT_S) -> None:
        self.path, self.timeout = str(socket_path), timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise SignerUnavailable(f"cannot reach the signer: {exc.strerror or exc}") from None
        return sock

    def _call(self, op: str, **args: object) -> Any:
        with self._lock:
            sock = self._idle.pop() if self._idle else None
        reply = None
        if sock is not None:  # it may have died with a restarted signer: then once anew
            reply = self._exchange(sock, op, args, quiet=True)
        if reply is None:
            sock = self._connect()
            reply = self._exchange(sock, op, args, quiet=False)
        with self._lock:
            self._idle.append(sock)  # type: ignore[arg-type]
        if "error" in reply:
            e = reply["error"]
            raise BankError(e["code"], e["detail"], e["status"])
        return reply["ok"]

    def _exchange(self, sock: socket.socket, op: str, args: dict, *, quiet: bool) -> Any:
        try:
            send_frame(sock, {"op": op, **args})
            return recv_frame(sock)
        except (OSError, EOFError, ValueError) as exc:
            sock.close()
            if quiet and not isinstance(exc, TimeoutError):
                return None
            raise SignerUnavailable(f"the signer did not answer: {exc}") from None

    def close(self) -> None:
        with self._lock:
            for sock in self._idle:
                with contextlib.suppress(OSError):
                    sock.close()
            self._idle.clear()

    def stats(self) -> dict[str, float]:
        """The signer's figures for benchmarks (see ``LocalSigner.stats``)."""
        return self._call("stats")

    def public_info(self) -> PublicInfo:
        r = self._call("public_info")
        return PublicInfo(bytes.fromhex(r["master_public_key"]),
                          {int(n): [wj.key_from_json(k) for k in keys]
                           for n, keys in r["generations"].items()})

    def commit(self, identity: bytes, key_ids: bytes) -> Commitments:
        r = self._call("commit", identity=identity.hex(), key_ids=key_ids.hex())
        return Commitments(bytes.fromhex(r["nonce"]), bytes.fromhex(r["commitments"]),
                           {bytes.fromhex(k): bytes.fromhex(z) for k, z in r["z"].items()},
                           float(r["group_cpu_s"]))

    def respond(self, nonce: bytes, key_ids: bytes, packed: bytes) -> bytes:
        return bytes.fromhex(self._call("respond", nonce=nonce.hex(), key_ids=key_ids.hex(),
                                        challenges=packed.hex()))

    def new_generation(self, number: int, values: list[int], currency: str, withdraw_start: int,
                       withdraw_end: int, deposit_end: int) -> list[DenominationKey]:
        r = self._call("new_generation", number=number, values=values, currency=currency,
                       withdraw_start=withdraw_start, withdraw_end=withdraw_end,
                       deposit_end=deposit_end)
        return [wj.key_from_json(k) for k in r]

    def certify_terminal(self, merchant_id: str, public_key: bytes,
                         valid_until: int) -> MerchantCertificate:
        sig = self._call("certify_terminal", merchant_id=merchant_id,
                         public_key=public_key.hex(), valid_until=valid_until)
        return MerchantCertificate(merchant_id, public_key, valid_until, bytes.fromhex(sig))

    def sign_policy(self, policy: Policy) -> bytes:
        return bytes.fromhex(self._call("sign_policy", policy=wj.policy_to_json(policy)))


def check_challenges(packed: bytes) -> None:
    """Every challenge canonical and non-zero (9.3), checked in bulk: a scalar
    whose last byte is below 0x10 is below 2^252 < q, and a zero scalar is 32
    zero bytes; only a list failing either test is looked at one by one. The
    worker checks before it locks a session, the signer again before it answers."""
    if not packed or len(packed) % CHALLENGE_PAIR_BYTES:
        raise BankError("bad_challenges", "expected one or more challenge pairs")
    if max(packed[31::32]) < 0x10 and _ZERO not in packed:
        return
    for i in range(0, len(packed), 32):
        what = f"challenges[{i // CHALLENGE_PAIR_BYTES}][{i // 32 % 2}]"
        try:
            c = group.decode_scalar(packed[i:i + 32])
        except EcashError as exc:
            raise type(exc)(f"{what}: {exc}", exc.code) from None
        group.nonzero(c, what)
