"""The terminal: its store, the bank's keys it trusts, its signing keys, its clock.

Library entry point. ``Terminal.open(location)`` opens an initialised store
(see :func:`ecash.merchant.setup.init_terminal`); the protocol steps live in
:mod:`.requests`, :mod:`.accept` and :mod:`.settle` and are reachable as
methods here.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..bank.client import BankClient
from ..crypto.keys import MerchantCertificate
from ..crypto.payment import Receipt, SignedRequest, Spend
from ..crypto.sign import SigningKey
from ..wire import json as wj
from .errors import NotInitialised
from .keycache import KeyCache
from .store import TerminalStore, open_store

BankFactory = Callable[[str, str, float], BankClient]


def default_bank_factory(url: str, credential: str, timeout: float) -> BankClient:
    return BankClient(url, credential, timeout=timeout)


@dataclass(frozen=True)
class TerminalConfig:
    request_ttl_s: int = 600  # an unpaid request expires after this (see requests.MAX_TTL_S)
    deposit_batch: int = 500  # transcripts per deposit call (the bank allows 1000)
    online_timeout_s: float = 10.0  # waiting for the bank while a customer waits
    pending_retry_s: int = 5  # a pending payment: when to send the identical payment again
    bank_timeout_s: float = 60.0  # any other call to the bank
    warn_before_s: int | None = None  # default: min(1 day, T/4) before the deadline
    renew_before_s: int = 30 * 86_400  # sync renews a certificate expiring sooner
    recheck_keys_s: float = 30.0  # how often a process notices another one's sync


class Terminal:
    def __init__(self, store: TerminalStore, *, clock: Callable[[], float] = time.time,
                 name: str | None = None, config: TerminalConfig | None = None,
                 bank_factory: BankFactory | None = None) -> None:
        self.store, self.clock = store, clock
        self.config = config or TerminalConfig()
        self.name = (name or socket.gethostname())[:64]
        self.bank_factory = bank_factory or default_bank_factory
        self.verify_pool = None  # an Executor to verify big payments on several cores
        self.verify_workers = 0  # its number of workers
        s = store.settings()
        if "merchant_id" not in s:
            raise NotInitialised()
        self.merchant_id: str = s["merchant_id"]
        self.bank_url: str = s["bank_url"]
        self._credential: str = s["credential"]
        self.master_public_key = bytes.fromhex(s["master_public_key"])
        self._keys = KeyCache.from_text(s["keyset"], self.master_public_key)
        self._keys_checked = time.monotonic()
        self._signing: dict[bytes, tuple[SigningKey, MerchantCertificate]] = {}
        self._current: bytes = b""
        self._clients: dict[float, BankClient] = {}
        self._lock = threading.Lock()
        self._load_signing_keys()

    @classmethod
    def open(cls, location: str | Path, **kw) -> Terminal:
        store = open_store(location, create=False)
        try:
            return cls(store, **kw)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        if self.verify_pool is not None:
            self.verify_pool.shutdown(wait=True, cancel_futures=True)
            self.verify_pool = None
        for c in self._clients.values():
            c.close()
        self.store.close()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- time ---------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- trusted keys ---------------------------------------------------------
    @property
    def keys(self) -> KeyCache:
        """The cached keyset; re-read when another process of the store synced."""
        if time.monotonic() - self._keys_checked > self.config.recheck_keys_s:
            self.reload()
        return self._keys

    def reload(self) -> None:
        s = self.store.settings()
        with self._lock:
            self._keys_checked = time.monotonic()
            if s.get("keyset_fingerprint") != self._keys.fingerprint:
                self._keys = KeyCache.from_text(s["keyset"], self.master_public_key)
            self._load_signing_keys()

    def _load_signing_keys(self) -> None:
        keys = self.store.keys()
        for k in keys:
            if k.public_key not in self._signing:
                cert = wj.certificate_from_json(wj.loads(k.certificate))
                self._signing[k.public_key] = (SigningKey.from_seed(k.seed), cert)
        self._current = keys[-1].public_key

    def current_key(self) -> tuple[SigningKey, MerchantCertificate]:
        return self._signing[self._current]

    def signing_key(self, public_key: bytes) -> SigningKey:
        if public_key not in self._signing:
            self._load_signing_keys()
        return self._signing[public_key][0]

    def certificate(self, public_key: bytes) -> MerchantCertificate:
        if public_key not in self._signing:
            self._load_signing_keys()
        return self._signing[public_key][1]

    # --- the bank -------------------------------------------------------------
    def bank(self, *, online: bool = False) -> BankClient:
        """A client with the merchant credential (short timeout while a customer waits)."""
        timeout = self.config.online_timeout_s if online else self.config.bank_timeout_s
        with self._lock:
            if timeout not in self._clients:
                self._clients[timeout] = self.bank_factory(self.bank_url, self._credential,
                                                           timeout)
            return self._clients[timeout]

    # --- the protocol -----------------------------------------------------------
    def create_request(self, amount: int, *, pos_base: str | None = None,
                       ttl_s: int | None = None,
                       description: str | None = None) -> SignedRequest:
        from .requests import create_request

        return create_request(self, amount, pos_base=pos_base, ttl_s=ttl_s,
                              description=description)

    def accept(self, request_id: bytes,
               spends: Sequence[Spend] | Callable[[], Sequence[Spend]]) -> Receipt:
        from .accept import accept

        return accept(self, request_id, spends)

    def deposit(self, *, batch: int | None = None):
        from .settle import deposit

        return deposit(self, batch=batch)

    def report(self) -> dict:
        from .settle import report

        return report(self)

    def sync(self) -> dict:
        from .setup import sync

        return sync(self)

