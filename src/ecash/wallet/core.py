"""The wallet's base: the file, the unlocked secrets, the bank's keys and
policy, the in-memory index of coins. The protocol steps are mixins in the
sibling modules (``withdraw``, ``pay``, ``settle``, ``restore``)."""

from __future__ import annotations

import bisect
import functools
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..bank import client as bank_client
from ..crypto import group
from ..crypto.coin import CoinSecrets
from ..crypto.errors import EcashError
from ..crypto.keys import DenominationKey, Keyset, Policy
from ..crypto.params import g2
from ..crypto.registration import identity_of
from ..wire import json as wj
from ..wire.fingerprint import master_key_fingerprint
from . import secrets as ws
from .derive import Deriver
from .errors import BankRefused, BankUnreachable, KeysetRefused, NotRegistered, WalletError
from .selection import Candidate
from .store import Store

Clock = Callable[[], float]
Progress = Callable[[int, int], None]

_INF = float("inf")
CLOCK_MARGIN_S = 600  # pending coins wait this much beyond T (clock skew with the bank)
REDEMPTION_PAYEE = "bank"  # the merchant_id the bank redeems coins under


@dataclass
class CoinRow:
    """What the wallet keeps in memory about a live coin (no secrets)."""

    id: int
    key_id: bytes
    value: int
    state: str
    pending_until: int | None
    request_id: bytes | None


@dataclass
class KeyRow:
    key: DenominationKey
    z: bytes | None


@contextmanager
def bank_errors() -> Iterator[None]:
    """Bank client exceptions as wallet errors."""
    try:
        yield
    except bank_client.BankHTTPError as exc:
        raise BankRefused(exc.status, exc.code, exc.detail, exc.extra) from None
    except bank_client.BankUnreachable as exc:
        raise BankUnreachable(f"{exc}; try again when online") from None
    except EcashError as exc:
        raise WalletError(f"the bank sent a malformed answer: {exc}", "bad_bank_answer") from None


class WalletBase:
    def __init__(self, store: Store, sealer: ws.Sealer, vault: dict, clock: Clock,
                 transport: httpx.BaseTransport | None) -> None:
        self.store = store
        self._sealer = sealer
        self._vault = vault
        self.clock = clock
        self.transport = transport
        self.wallet_id = store.meta("wallet_id") or b""
        seed = bytes.fromhex(vault["seed"])
        self._deriver = Deriver(seed)
        self.u1 = self._deriver.u1()
        self.I = identity_of(self.u1)
        self.I_g2 = group.add(self.I, g2)
        self._lock = threading.RLock()
        self._bank_client: bank_client.BankClient | None = None
        self._policy: Policy | None = None
        # unspent coins by value, each list sorted by (spend deadline, id)
        self._pool: dict[int, list[tuple[int, int]]] = {}
        self._keys: dict[bytes, KeyRow] = {}
        self._coins: dict[int, CoinRow] = {}
        self._version = -1
        self._load_keys()
        self._load_coins()

    # --- opening ---------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, passphrase: str, *, phrase: str | None = None,
               kdf: ws.KdfParams | None = None, clock: Clock = time.time,
               transport: httpx.BaseTransport | None = None):
        """A new wallet file; returns ``(wallet, phrase)`` (show the phrase once)."""
        phrase = ws.check_phrase(phrase) if phrase is not None else ws.new_phrase()
        seed = ws.phrase_to_seed(phrase)
        kdf = kdf or ws.KDF_PROFILES[ws.DEFAULT_KDF]
        salt = ws.new_salt()
        key = ws.derive_key(passphrase, salt, kdf)
        store = Store.create(path)
        wallet_id = ws.new_salt()
        sealer = ws.Sealer(key)
        vault = {"seed": seed.hex(), "credential": None}
        with store.tx():
            store.set_meta("wallet_id", wallet_id)
            store.set_meta("kdf", json.dumps({**kdf.to_json(), "salt": salt.hex()}))
            store.set_meta("vault", sealer.seal(json.dumps(vault).encode(),
                                                _vault_ad(wallet_id)))
            store.set_meta("created_at", int(clock()))
            store.event(int(clock()), "init", 0, "wallet created")
        return cls(store, sealer, vault, clock, transport), phrase

    @classmethod
    def open(cls, path: Path, passphrase: str, *, clock: Clock = time.time,
             transport: httpx.BaseTransport | None = None, check: bool = True):
        """Open and unlock (argon2id once per process and passphrase)."""
        store = Store.open(path, check=check)
        try:
            kdf = json.loads(store.meta_text("kdf") or "")
            params = ws.KdfParams(int(kdf["opslimit"]), int(kdf["memlimit"]))
            salt = bytes.fromhex(kdf["salt"])
            sealed = store.meta("vault")
            wallet_id = store.meta("wallet_id")
            if sealed is None or wallet_id is None:
                raise KeyError("vault")
        except (ValueError, KeyError, TypeError):
            store.close()
            from .errors import CorruptWallet
            raise CorruptWallet(f"{path}: the key record is missing or damaged") from None
        sealer = ws.Sealer(ws.derive_key(passphrase, salt, params))
        try:
            vault = json.loads(sealer.open_vault(sealed, _vault_ad(wallet_id)))
        except WalletError:
            store.close()
            raise
        return cls(store, sealer, vault, clock, transport)

    def close(self) -> None:
        if self._bank_client is not None:
            self._bank_client.close()
            self._bank_client = None
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- time ------------------------------------------------------------------
    def now(self) -> int:
        return int(self.clock())

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- vault -----------------------------------------------------------------
    def _save_vault(self) -> None:
        self.store.set_meta("vault", self._sealer.seal(json.dumps(self._vault).encode(),
                                                       _vault_ad(self.wallet_id)))

    def seal_coin_secrets(self, body: bytes, value: int, cs: CoinSecrets) -> bytes:
        plain = b"".join(group.encode_scalar(k) for k in (cs.s, cs.x1, cs.x2))
        return self._sealer.seal(plain, self._coin_ad(body, value))

    def open_coin_secrets(self, body: bytes, value: int, blob: bytes) -> CoinSecrets:
        plain = self._sealer.open(blob, self._coin_ad(body, value), "a coin's secrets")
        return CoinSecrets(*(int.from_bytes(plain[i:i + 32], "little") for i in (0, 32, 64)))

    def _coin_ad(self, body: bytes, value: int) -> bytes:
        return b"ecash-wallet/coin" + self.wallet_id + value.to_bytes(8, "big") + body

    def seal_payment(self, request_id: bytes, blob: bytes) -> bytes:
        return self._sealer.seal(blob, b"ecash-wallet/payment" + self.wallet_id + request_id)

    def open_payment(self, request_id: bytes, sealed: bytes) -> bytes:
        return self._sealer.open(sealed, b"ecash-wallet/payment" + self.wallet_id + request_id,
                                 "a stored payment")

    # --- bank connection -------------------------------------------------------------
    @property
    def bank_url(self) -> str | None:
        return self.store.meta_text("bank_url")

    @property
    def account_id(self) -> str | None:
        return self.store.meta_text("account_id")

    def require_registered(self) -> tuple[str, str]:
        url, account = self.bank_url, self.account_id
        if not url or not account or not self._vault.get("credential"):
            raise NotRegistered("this wallet is not registered with a bank; run"
                                " `ecash wallet register --bank URL --account ID`")
        return url, account

    def http_transport(self) -> httpx.BaseTransport:
        """A new connection pool (sharing one TLS context: creating a context per
        client would cost tens of milliseconds)."""
        return self.transport or httpx.HTTPTransport(verify=_tls_context())

    def bank(self) -> bank_client.BankClient:
        """The authenticated client (the holder's credential), kept for the
        wallet's lifetime; do not close it."""
        url, _ = self.require_registered()
        if self._bank_client is None:
            self._bank_client = bank_client.BankClient(url, self._vault["credential"],
                                                       transport=self.http_transport())
        return self._bank_client

    def public_bank(self, url: str | None = None) -> bank_client.BankClient:
        """A fresh, unauthenticated connection (the keyset, the spent-set queries);
        the caller closes it."""
        return bank_client.BankClient(url or self.require_registered()[0],
                                      transport=self.http_transport())

    # --- keys and policy -------------------------------------------------------
    def _load_keys(self) -> None:
        rows = self.store.conn.execute(
            "SELECT key_id, value, currency, h, withdraw_start, withdraw_end, deposit_end,"
            " signature, z FROM keys").fetchall()
        self._keys = {bytes(r[0]): KeyRow(DenominationKey(bytes(r[0]), bytes(r[3]), r[1], r[2],
                                                          r[4], r[5], r[6], bytes(r[7])),
                                          bytes(r[8]) if r[8] is not None else None)
                      for r in rows}

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            text = self.store.meta_text("policy")
            if text is None:
                raise NotRegistered("no keyset yet: run `ecash wallet register` first")
            self._policy = wj.policy_from_json(json.loads(text))
        return self._policy

    @property
    def currency(self) -> str:
        return self.policy.currency

    @property
    def deposit_window(self) -> int:
        return self.policy.deposit_window_s

    def key(self, key_id: bytes) -> DenominationKey:
        row = self._keys.get(key_id)
        if row is None:
            raise WalletError(f"unknown key {key_id.hex()[:16]}…", "unknown_key")
        return row.key

    def spend_deadline(self, key_id: bytes) -> int:
        return self.key(key_id).spend_deadline(self.deposit_window)

    def withdrawable(self) -> dict[int, DenominationKey]:
        """value -> the key to withdraw it with now."""
        now = self.now()
        out = {}
        for row in self._keys.values():
            k = row.key
            if k.withdraw_start <= now < k.withdraw_end:
                out[k.value] = k
        return out

    def accept_keyset(self, ks: Keyset, *, expect_master: bytes | None = None) -> str:
        """Check a keyset (9.6, every signature, the pinned master key) and take
        its keys and policy. Returns its fingerprint."""
        pinned_hex = self.store.meta_text("master_public_key")
        if pinned_hex and expect_master is not None and bytes.fromhex(pinned_hex) != expect_master:
            # An earlier attempt pinned another key: never let --master-key be ignored.
            raise KeysetRefused(
                f"this wallet has already pinned the master key {_fp(bytes.fromhex(pinned_hex))},"
                f" not the one given ({_fp(expect_master)}); refusing it. If the pinned key"
                " is not your bank's, create a new wallet (`ecash wallet init`) and register"
                " it with --master-key", "master_key_mismatch")
        pinned = bytes.fromhex(pinned_hex) if pinned_hex else expect_master
        try:
            ks.check(pinned)
        except EcashError as exc:
            if exc.code == "master_key_changed":
                raise KeysetRefused(
                    f"the bank's keyset is signed by the master key {_fp(ks.master_public_key)},"
                    f" not the one this wallet {'pinned' if pinned_hex else 'was given'}"
                    f" ({_fp(pinned)}); refusing it", "master_key_changed") from None
            raise KeysetRefused(f"the bank's keyset is invalid ({exc.code}): {exc}",
                                exc.code) from None
        old_currency = self._policy_currency()
        if old_currency is not None and old_currency != ks.policy.currency:
            raise KeysetRefused("the keyset's currency changed", "currency_changed")
        fingerprint = wj.keyset_fingerprint(ks)
        with self.store.tx() as conn:
            if not pinned_hex:
                self.store.set_meta("master_public_key", ks.master_public_key.hex())
            conn.executemany(
                "INSERT INTO keys (key_id, value, currency, h, withdraw_start, withdraw_end,"
                " deposit_end, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key_id) DO NOTHING",
                [(k.key_id, k.value, k.currency, k.h, k.withdraw_start, k.withdraw_end,
                  k.deposit_end, k.signature) for k in ks.keys])
            self.store.set_meta("policy", json.dumps(wj.policy_to_json(ks.policy)))
            self.store.set_meta("keyset_fingerprint", fingerprint)
            self.store.set_meta("live_keys", json.dumps([k.key_id.hex() for k in ks.keys]))
        self._policy = None
        self._load_keys()
        self._load_coins()  # spend deadlines may have moved with the policy
        return fingerprint

    def _policy_currency(self) -> str | None:
        text = self.store.meta_text("policy")
        return None if text is None else json.loads(text)["currency"]

    def refresh_keyset(self) -> str:
        with bank_errors(), self.public_bank() as pub:
            ks = pub.keyset()
        return self.accept_keyset(ks)

    @property
    def master_fingerprint(self) -> str | None:
        pk = self.store.meta_text("master_public_key")
        return _fp(bytes.fromhex(pk)) if pk else None

    def remember_z(self, key_id: bytes, z: bytes) -> None:
        """``z`` is the same for every coin of one account and key: a bank that
        sends another one is refused (it could only be tagging this holder)."""
        row = self._keys.get(key_id)
        if row is None:
            raise WalletError("the bank offered a key the wallet does not know", "unknown_key")
        if row.z is None:
            with self.store.tx() as conn:
                conn.execute("UPDATE keys SET z = ? WHERE key_id = ?", (z, key_id))
            row.z = z
        elif row.z != z:
            raise WalletError("the bank sent a different z for a key than before",
                              "inconsistent_z")

    # --- coins -------------------------------------------------------------------
    def _load_coins(self) -> None:
        rows = self.store.conn.execute(
            "SELECT id, key_id, value, state, pending_until, request_id FROM coins"
            " WHERE state IN ('unspent', 'pending')").fetchall()
        self._coins = {r[0]: CoinRow(r[0], bytes(r[1]), r[2], r[3], r[4],
                                     bytes(r[5]) if r[5] is not None else None) for r in rows}
        self._pool = {}
        for c in self._coins.values():
            if c.state == "unspent":
                self._pool.setdefault(c.value, []).append((self._deadline(c.key_id), c.id))
        for lst in self._pool.values():
            lst.sort()
        self._version = self.store.data_version()

    def _deadline(self, key_id: bytes) -> int:
        """The key's spend deadline (9.4); before a keyset is known, never."""
        row = self._keys.get(key_id)
        if row is None:
            return 0
        T = self._policy.deposit_window_s if self._policy else self._window()
        return row.key.deposit_end - T

    def _window(self) -> int:
        try:
            return self.policy.deposit_window_s
        except NotRegistered:
            return 0

    def refresh_coins(self) -> None:
        """Re-read the index if another process changed the file."""
        if self.store.data_version() != self._version:
            self._load_coins()
            self._load_keys()

    def spendable(self, at: int | None = None) -> list[Candidate]:
        """Unspent coins whose key's spend deadline has not passed at ``at``."""
        at = self.now() if at is None else at
        return [Candidate(cid, v, d) for v, lst in self._pool.items()
                for d, cid in lst[bisect.bisect_right(lst, (at, _INF)):]]

    def spendable_counts(self, at: int) -> tuple[dict[int, int], dict[int, int]]:
        """(value -> number spendable at ``at``, value -> index of the first one)."""
        counts, starts = {}, {}
        for v, lst in self._pool.items():
            i = bisect.bisect_right(lst, (at, _INF))
            if i < len(lst):
                counts[v], starts[v] = len(lst) - i, i
        return counts, starts

    def take(self, plan: dict[int, int], starts: dict[int, int]) -> list[int]:
        """Coin ids for a plan of :func:`select_counts` (soonest deadline first)."""
        return [cid for v, k in plan.items() for _, cid in self._pool[v][starts[v]:starts[v] + k]]

    def held_value(self) -> int:
        """Unspent plus pending (what the holding limit counts)."""
        return sum(c.value for c in self._coins.values())

    def insert_coins(self, conn, rows: list[tuple]) -> None:
        """rows: (coin_id, key_id, value, body, sealed, state, request_id, pending_until,
        origin, session_id, created_at)."""
        conn.executemany(
            "INSERT INTO coins (serial, key_id, value, body, secrets, state, request_id,"
            " pending_until, origin, session_id, created_at) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def set_coin_state(self, conn, coin_ids: list[int], state: str, *,
                       request_id: bytes | None = None, pending_until: int | None = None,
                       only_from: str | None = None) -> int:
        now = self.now()
        q = ("UPDATE coins SET state = ?, request_id = ?, pending_until = ?, settled_at = ?"
             " WHERE id = ?")
        args = [(state, request_id, pending_until, now if state != "pending" else None, i)
                for i in coin_ids]
        if only_from is not None:
            q += " AND state = ?"
            args = [(*a, only_from) for a in args]
        before = conn.total_changes
        conn.executemany(q, args)
        return conn.total_changes - before

    def apply_coin_state(self, coin_ids: list[int], state: str, *,
                         request_id: bytes | None = None,
                         pending_until: int | None = None) -> None:
        """Mirror a committed change in the in-memory index."""
        for i in coin_ids:
            row = self._coins.get(i)
            if row is None:
                if state in ("unspent", "pending"):
                    self._load_coins()
                    return
                continue
            if row.state == "unspent":
                lst = self._pool.get(row.value, [])
                entry = (self._deadline(row.key_id), row.id)
                j = bisect.bisect_left(lst, entry)
                if j < len(lst) and lst[j] == entry:
                    del lst[j]
            if state in ("unspent", "pending"):
                row.state, row.request_id, row.pending_until = state, request_id, pending_until
                if state == "unspent":
                    bisect.insort(self._pool.setdefault(row.value, []),
                                  (self._deadline(row.key_id), row.id))
            else:
                del self._coins[i]

    def coin_bodies(self, coin_ids: list[int]) -> dict[int, tuple[bytes, int, bytes]]:
        """id -> (body, value, sealed secrets), read only for the coins asked."""
        marks = ",".join("?" * len(coin_ids))
        rows = self.store.conn.execute(
            f"SELECT id, body, value, secrets FROM coins WHERE id IN ({marks})",
            coin_ids).fetchall()
        return {r[0]: (bytes(r[1]), r[2], bytes(r[3])) for r in rows}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _vault_ad(wallet_id: bytes) -> bytes:
    return b"ecash-wallet/vault" + wallet_id


def _fp(pk: bytes | None) -> str:
    """The master key as people compare it (the whole key's fingerprint, as
    ``bank init`` prints it)."""
    return "none" if pk is None else master_key_fingerprint(pk)
