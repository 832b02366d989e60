"""The bank core: one object, many workers. Every method is one database
transaction (or none), so any worker can serve any request and a crash at any
point leaves either the whole change or nothing.

The protocol steps live in the mixins beside this module (``withdraw``,
``deposit``, ``ledger``); this module holds setup, accounts and keys.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from ..crypto import registration as reg
from ..crypto.keys import DenominationKey, Keyset, MerchantCertificate, Policy
from ..money import format_money
from ..wire import json as wj
from ..wire.payee import BadPayeeName, check_merchant_id
from . import store
from .config import BankConfig
from .deposit import DepositMixin
from .disputes import DisputeMixin
from .errors import BankError, forbidden, not_found
from .freeze import FreezeMixin, frozen_fields
from .ledger import LedgerMixin, post
from .policy import PolicyMixin, make_policy
from .schema import (
    accounts,
    credentials,
    denomination_keys,
    generations,
    journal,
    merchant_certificates,
    settings,
)
from .signer import Signer
from .signer_local import LocalSigner
from .spentset import SpentSetMixin
from .withdraw import WithdrawMixin

ROLES = ("holder", "merchant", "operator")
MAX_BALANCE = 2**53 - 1  # every amount on the wire is a JSON integer below 2^53


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# Built once: every withdrawal and deposit reads its account row.
_ACCOUNT = select(accounts).where(accounts.c.id == bindparam("pk"))
_ACCOUNT_FOR_UPDATE = _ACCOUNT.with_for_update()

def new_token(role: str) -> str:
    return f"ec{role[0]}_{secrets.token_urlsafe(32)}"


# the one spelling of a credential new_token makes (43 characters of base64url)
_CREDENTIAL = re.compile(r"ec[hmo]_[A-Za-z0-9_-]{43}")


def is_credential(token: str) -> bool:
    """Whether ``token`` is spelt as :func:`new_token` spells credentials."""
    return _CREDENTIAL.fullmatch(token) is not None


@dataclass(frozen=True)
class KeyInfo:
    """A denomination key as the bank's database knows it (the secret half
    is the signer's alone)."""

    public: DenominationKey
    generation: int
    denomination: int


@dataclass(frozen=True)
class Principal:
    """Who a credential belongs to."""

    role: str
    account: int | None  # internal account id


class Bank(WithdrawMixin, DepositMixin, DisputeMixin, LedgerMixin, SpentSetMixin, FreezeMixin,
           PolicyMixin):
    """Holds no secret: every use of one is a call to ``signer`` (in process
    for operator commands and tests, another process for the HTTP workers)."""

    def __init__(self, engine: Engine, signer: Signer, config: BankConfig | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine, self.signer, self.clock = engine, signer, clock
        self._master_public_key: bytes | None = None
        self.config = config or BankConfig()
        self._keys: dict[bytes, KeyInfo] = {}
        self._policy: tuple[Policy, bytes] | None = None
        self._bank_account: int | None = None
        self._principals: dict[bytes, Principal] = {}
        self._account_pks: dict[str, int] = {}
        self._identity_hint: dict[int, bytes | None] = {}  # see start_withdrawal
        self._merchant_ids: dict[int, str] = {}  # see merchant_id_of
        self._closed_generations: set[int] = set()  # see DepositMixin._store_open
        self.verify_pool = None  # a ProcessPoolExecutor, when workers < cores

    # --- time ---------------------------------------------------------------
    def now(self) -> int:
        return int(self.clock())

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- setup --------------------------------------------------------------
    @classmethod
    def open(cls, db_url: str, keys_or_signer: Path | Signer, config: BankConfig | None = None,
             clock: Callable[[], float] = time.time) -> Bank:
        """The bank on ``db_url``; a key directory is opened in process (a
        :class:`LocalSigner`: operator commands and tests), a signer is used as given."""
        signer = (LocalSigner(Path(keys_or_signer)) if isinstance(keys_or_signer, str | Path)
                  else keys_or_signer)
        engine = store.make_engine(db_url)
        store.upgrade(engine)
        bank = cls(engine, signer, config, clock)
        bank._load_config()
        return bank

    @classmethod
    def init(cls, db_url: str, keys_dir: Path, config: BankConfig | None = None,
             clock: Callable[[], float] = time.time) -> tuple[Bank, str]:
        """Create keys, schema, policy, first generation; return the operator token."""
        config = config or BankConfig()
        engine = store.make_engine(db_url)
        store.upgrade(engine)
        with engine.connect() as conn:
            if conn.execute(select(settings.c.value).where(settings.c.name == "config")).first():
                raise BankError("already_initialised", "this database already holds a bank", 409)
        signer = LocalSigner.create(keys_dir)
        master = signer.public_info().master_public_key
        bank = cls(engine, signer, config, clock)
        now = bank.now()
        policy = make_policy(config, now)
        token = new_token("operator")
        with engine.begin() as conn:
            conn.execute(settings.insert(), [
                {"name": "config", "value": json.dumps(config.__dict__)},
                {"name": "master_public_key", "value": master.hex()},
                {"name": "policy", "value": policy.canonical_json().decode()},
                {"name": "policy_signature", "value": signer.sign_policy(policy).hex()},
            ])
            conn.execute(credentials.insert().values(
                token_hash=hash_token(token), role="operator", account=None, created_at=now))
            conn.execute(accounts.insert().values(
                account_id="bank", holder="the bank (redemptions)", kind="bank",
                status="active", balance=0, merchant_id=config.bank_merchant_id,
                daily_load_limit=0, net_load_limit=0, created_at=now))
        bank.add_generation(withdraw_start=now - 60)
        return bank, token

    def _load_config(self) -> None:
        with self.engine.connect() as conn:
            row = conn.execute(select(settings.c.value).where(settings.c.name == "config")).first()
        if row is None:
            raise BankError("not_initialised", "run `ecash bank init` first", 500)
        saved = json.loads(row.value)
        self.config = BankConfig(**saved)
        self._settings_read_at = time.monotonic()

    def add_generation(self, withdraw_start: int | None = None) -> int:
        """Add the next key generation; its withdrawal window starts where the
        newest one's ends (no overlap, ECASH-1 9.6), deposits overlap."""
        cfg = self.config
        with self.engine.begin() as conn:
            last = conn.execute(select(generations).order_by(
                generations.c.generation.desc()).limit(1)).first()
            number = 1 if last is None else last.generation + 1
            start = withdraw_start if last is None else last.withdraw_end
            if start is None:
                start = self.now()
            end = start + cfg.withdraw_period_s
            deposit_end = end + cfg.spend_period_s + cfg.deposit_window_s
            keys = self.signer.new_generation(number, cfg.denominations, cfg.currency, start,
                                              end, deposit_end)
            conn.execute(generations.insert().values(
                generation=number, withdraw_start=start, withdraw_end=end,
                deposit_end=deposit_end))
            conn.execute(denomination_keys.insert(), [
                {"key_id": k.key_id, "generation": number, "denomination": i,
                 "value": k.value, "currency": k.currency, "h": k.h,
                 "withdraw_start": start, "withdraw_end": end, "deposit_end": deposit_end,
                 "signature": k.signature} for i, k in enumerate(keys)])
            store.ensure_partition(conn, number)
        self._keys.clear()
        return number

    # --- keys and policy ------------------------------------------------------
    def key(self, key_id: bytes, conn: Connection | None = None) -> KeyInfo | None:
        """The key, from the cache or (a key this worker has not seen yet) the
        database; inside a transaction pass its ``conn``, see :meth:`_reload_keys`."""
        info = self._keys.get(key_id)
        if info is None:
            self._reload_keys(conn)
            info = self._keys.get(key_id)
        return info

    def _reload_keys(self, conn: Connection | None = None) -> None:
        """Re-read every key. Called inside a transaction, it must read through
        that transaction's ``conn``: on SQLite a second connection begins with
        ``BEGIN IMMEDIATE`` and would wait for the write lock its own caller
        holds (a fresh worker answering a session opened by another one).
        The keys are the database's; the signer refuses one it holds no secret of."""
        if conn is None:
            with self.engine.connect() as own:
                rows = own.execute(select(denomination_keys)).all()
        else:
            rows = conn.execute(select(denomination_keys)).all()
        self._keys = {r.key_id: KeyInfo(DenominationKey(
            r.key_id, r.h, r.value, r.currency, r.withdraw_start, r.withdraw_end, r.deposit_end,
            r.signature), r.generation, r.denomination) for r in rows}

    @property
    def master_public_key(self) -> bytes:
        """The master public key, as recorded when the bank was made."""
        if self._master_public_key is None:
            with self.engine.connect() as conn:
                value = conn.execute(select(settings.c.value).where(
                    settings.c.name == "master_public_key")).scalar_one()
            self._master_public_key = bytes.fromhex(value)
        return self._master_public_key

    def policy(self) -> tuple[Policy, bytes]:
        if self._policy is None:
            with self.engine.connect() as conn:
                rows = dict(conn.execute(select(settings.c.name, settings.c.value)).all())
            policy = wj.policy_from_json(json.loads(rows["policy"]))
            self._policy = (policy, bytes.fromhex(rows["policy_signature"]))
        return self._policy

    def keyset(self) -> Keyset:
        """Every key whose ``deposit_end`` has not passed, and the signed policy.
        A key is still listed at ``deposit_end`` itself, where its deposits are
        still taken (refused only after it, as in :meth:`deposit`)."""
        self._reload_keys()
        now = self.now()
        live = sorted((k.public for k in self._keys.values() if k.public.deposit_end >= now),
                      key=lambda k: (k.withdraw_start, k.value))
        policy, sig = self.policy()
        return Keyset(self.master_public_key, tuple(live), policy, sig)

    def withdrawable_key(self, key_id: bytes) -> KeyInfo:
        info = self.key(key_id)
        now = self.now()
        if info is None:
            raise BankError("unknown_key", f"unknown key {key_id.hex()}")
        if not info.public.withdraw_start <= now < info.public.withdraw_end:
            raise BankError("key_not_withdrawable", f"key {key_id.hex()} is outside its"
                            " withdrawal window")
        return info

    # --- credentials ----------------------------------------------------------
    def authenticate(self, token: str) -> Principal | None:
        """The principal of a bearer token. Credentials are never reassigned, so a
        known one is remembered (unknown ones are always looked up)."""
        digest = hash_token(token)
        who = self._principals.get(digest)
        if who is None:
            with self.engine.connect() as conn:
                row = conn.execute(select(credentials.c.role, credentials.c.account).where(
                    credentials.c.token_hash == digest)).first()
            if row is None:
                return None
            who = Principal(row.role, row.account)
            if len(self._principals) > 100_000:
                self._principals.clear()
            self._principals[digest] = who
        return who

    def _issue(self, conn: Connection, role: str, account: int | None) -> str:
        token = new_token(role)
        conn.execute(credentials.insert().values(token_hash=hash_token(token), role=role,
                                                 account=account, created_at=self.now()))
        return token

    # --- accounts ---------------------------------------------------------------
    def open_account(self, holder: str) -> tuple[str, str]:
        """Return ``(account_id, holder credential)``; the credential is shown once."""
        holder = holder.strip()
        if not 1 <= len(holder) <= 200:
            raise BankError("bad_holder", "holder name must be 1 to 200 characters")
        cfg = self.config
        with self.engine.begin() as conn:
            for _ in range(5):
                account_id = "acct-" + secrets.token_hex(5)
                exists = conn.execute(select(accounts.c.id).where(
                    accounts.c.account_id == account_id)).first()
                if not exists:
                    break
            pk = conn.execute(accounts.insert().values(
                account_id=account_id, holder=holder, kind="holder", status="active",
                balance=0, daily_load_limit=cfg.daily_load_limit,
                net_load_limit=cfg.net_load_limit, created_at=self.now())).inserted_primary_key[0]
            token = self._issue(conn, "holder", pk)
        return account_id, token

    def account_pk(self, conn: Connection, account_id: str, *, lock: bool = False):
        if not _storable_id(account_id):  # from a URL path: not even worth a query
            raise not_found(f"account {account_id!r}")
        stmt = select(accounts).where(accounts.c.account_id == account_id)
        if lock:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise not_found(f"account {account_id!r}")
        return row

    def account_row(self, conn: Connection, pk: int, *, lock: bool = False):
        return conn.execute(_ACCOUNT_FOR_UPDATE if lock else _ACCOUNT, {"pk": pk}).one()

    def account_info(self, account_id: str) -> dict:
        with self.engine.connect() as conn:
            row = self.account_pk(conn, account_id)
        return {"account_id": row.account_id, "holder": row.holder, "status": row.status,
                "balance": row.balance, "currency": self.config.currency,
                "identity": row.identity.hex() if row.identity else None,
                "merchant_id": row.merchant_id, "daily_load_limit": row.daily_load_limit,
                "net_load_limit": row.net_load_limit, "payout_after": row.payout_after,
                **frozen_fields(row)}

    def check_owner(self, who: Principal, account_id: str, role: str = "holder") -> int:
        """The internal id of ``account_id`` if ``who`` may act on it in ``role``
        (ids never change, so the mapping is remembered)."""
        pk = self._account_pks.get(account_id)
        if pk is None:
            with self.engine.connect() as conn:
                pk = self.account_pk(conn, account_id).id
            self._account_pks[account_id] = pk
        if who.role != role or who.account != pk:
            raise forbidden("this credential may not act on that account")
        return pk

    def credit(self, account_id: str, amount: int, reference: str) -> int:
        """Money paid in from outside (standing in for core banking). Idempotent
        per ``reference``: the same reference again credits nothing; with
        another amount it is refused (409 ``reference_reused``), for a
        reference names one payment in, and a retry never changes its amount."""
        if not (isinstance(amount, int) and 0 < amount <= 2**53 - 1):
            raise BankError("bad_amount", "amount must be a positive integer")
        if not 1 <= len(reference) <= 64:
            raise BankError("bad_reference", "reference must be 1 to 64 characters")
        with self.engine.begin() as conn:
            row = self.account_pk(conn, account_id, lock=True)
            if row.status == "closed":
                raise BankError("account_closed", "account is closed")
            ref = f"{row.id}:{reference}"
            if post(conn, self.now(), "credit", "cash", f"acct:{row.id}", amount, ref):
                if row.balance + amount > MAX_BALANCE:  # raising rolls the post back
                    raise BankError("balance_limit", "a balance stays below 2^53 minor units"
                                    " (JSON's exact integers); this one is"
                                    f" {format_money(row.balance, self.config.currency)}")
                conn.execute(update(accounts).where(accounts.c.id == row.id).values(
                    balance=accounts.c.balance + amount))
            else:
                before = conn.execute(select(journal.c.amount).where(
                    journal.c.kind == "credit", journal.c.debit == "cash",
                    journal.c.ref == ref)).scalar_one()
                if before != amount:
                    money = self.config.currency
                    raise BankError("reference_reused", f"reference {reference!r} already"
                                    f" credited {format_money(before, money)} to this"
                                    f" account, not {format_money(amount, money)};"
                                    " nothing was changed", 409)
            return self.account_row(conn, row.id).balance

    def register_identity(self, account_pk: int, account_id: str,
                          proof: reg.RegistrationProof) -> None:
        """ECASH-1 3.2: the proof binds ``I`` to this account id; ``I`` is unique.
        Registering the same ``I`` again is a no-op (retries)."""
        reg.verify(proof, account_id)
        try:
            self._register_identity(account_pk, proof)
        except IntegrityError:  # another account took I between our check and update
            raise BankError("identity_taken", "this identity is registered elsewhere",
                            409) from None

    def _register_identity(self, account_pk: int, proof: reg.RegistrationProof) -> None:
        with self.engine.begin() as conn:
            row = self.account_row(conn, account_pk, lock=True)
            if row.identity == proof.I:
                return
            if row.identity is not None:
                raise BankError("identity_registered", "this account already has an identity",
                                409)
            if row.status != "active":
                raise BankError("account_not_active", f"account is {row.status}")
            taken = conn.execute(select(func.count()).select_from(accounts).where(
                accounts.c.identity == proof.I)).scalar()
            if taken:
                raise BankError("identity_taken", "this identity is registered elsewhere", 409)
            conn.execute(update(accounts).where(accounts.c.id == account_pk).values(
                identity=proof.I))

    # --- merchants ----------------------------------------------------------
    def register_merchant(self, account_id: str, merchant_id: str) -> str:
        """Make an account a merchant; return the merchant credential (shown once).
        The name is what wallets show before paying: it must read as what it is
        (:func:`ecash.wire.payee.check_merchant_id`)."""
        try:
            check_merchant_id(merchant_id)
        except BadPayeeName as exc:
            raise BankError("bad_merchant_id", str(exc)) from None
        try:
            return self._register_merchant(account_id, merchant_id)
        except IntegrityError:  # another account took it between our check and update
            raise BankError("merchant_id_taken", "merchant_id is taken", 409) from None

    def _register_merchant(self, account_id: str, merchant_id: str) -> str:
        with self.engine.begin() as conn:
            row = self.account_pk(conn, account_id, lock=True)
            if row.merchant_id is not None:
                raise BankError("already_merchant", "account is already a merchant", 409)
            taken = conn.execute(select(accounts.c.id).where(
                accounts.c.merchant_id == merchant_id)).first()
            if taken:
                raise BankError("merchant_id_taken", "merchant_id is taken", 409)
            conn.execute(update(accounts).where(accounts.c.id == row.id).values(
                merchant_id=merchant_id))
            return self._issue(conn, "merchant", row.id)

    def merchant_id_of(self, account_pk: int) -> str | None:
        """The account's merchant_id; once set it never changes, so it is
        remembered (an account not yet a merchant is always looked up)."""
        merchant_id = self._merchant_ids.get(account_pk)
        if merchant_id is None:
            with self.engine.connect() as conn:
                merchant_id = self.account_row(conn, account_pk).merchant_id
            if merchant_id is not None:
                if len(self._merchant_ids) > 100_000:
                    self._merchant_ids.clear()
                self._merchant_ids[account_pk] = merchant_id
        return merchant_id

    def merchant_info(self, account_pk: int) -> dict:
        with self.engine.connect() as conn:
            row = self.account_row(conn, account_pk)
        return {"merchant_id": row.merchant_id, "account_id": row.account_id,
                "balance": row.balance, "status": row.status}

    def certify_terminal(self, account_pk: int, public_key: bytes) -> MerchantCertificate:
        """ECASH-1 3.3. Re-certifying the same key returns its certificate."""
        if len(public_key) != 32:
            raise BankError("bad_public_key", "public key must be 32 bytes")
        try:
            return self._certify_terminal(account_pk, public_key)
        except IntegrityError:  # certified concurrently: now it is stored, answer as stored
            return self._certify_terminal(account_pk, public_key)

    def _certify_terminal(self, account_pk: int, public_key: bytes) -> MerchantCertificate:
        with self.engine.begin() as conn:
            row = self.account_row(conn, account_pk)
            if row.merchant_id is None or row.status != "active":
                raise forbidden("account is not an active merchant")
            old = conn.execute(select(merchant_certificates).where(
                merchant_certificates.c.public_key == public_key)).first()
            if old is not None:
                if old.account != account_pk:
                    raise forbidden("key is certified for another merchant")
                return MerchantCertificate(row.merchant_id, public_key, old.valid_until,
                                           old.signature)
            valid_until = self.now() + self.config.certificate_validity_s
            cert = self.signer.certify_terminal(row.merchant_id, public_key, valid_until)
            conn.execute(merchant_certificates.insert().values(
                public_key=public_key, account=account_pk, valid_until=valid_until,
                signature=cert.signature, issued_at=self.now()))
            return cert

    def bank_account_pk(self) -> int:
        if self._bank_account is None:
            with self.engine.connect() as conn:
                self._bank_account = conn.execute(select(accounts.c.id).where(
                    accounts.c.kind == "bank")).scalar_one()
        return self._bank_account


def _storable_id(account_id: str) -> bool:
    """Could be an account id: at most 64 characters of UTF-8 without NUL (an
    id with NUL or a lone surrogate would make the database driver fail)."""
    if not 1 <= len(account_id) <= 64 or "\x00" in account_id:
        return False
    try:
        account_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

