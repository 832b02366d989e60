"""Deposit (settlement), redemption and double-spend handling (ECASH-1 6, 7, 9.4, 9.5).

A batch is verified outside any transaction (in-process or on the process
pool), then stored in ONE transaction: a bulk insert into ``spent_coins``
that skips conflicts, then the conflicts are classified (:func:`lookup`:
replay, double spend, or another signature on the same payment). A coin is
its ``coin_id`` (ECASH-1 4.1, rev. 2), and the primary key ``(generation,
bucket, coin_id)`` is what guarantees that one coin is credited once from the
e-cash liability, however many merchants deposit it at the same moment.

A generation's spent coins go when ``maintenance`` closes it (ledger.py); a
deposit or redemption that meets a closed generation refuses its coins as
expired instead of storing them beside the breakage that already counted them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from sqlalchemy import Connection, select, tuple_, update
from sqlalchemy.exc import DBAPIError

from ..crypto.batch import verify_spends
from ..crypto.errors import EcashError
from ..crypto.identify import identify
from ..crypto.payment import Spend, spend_challenge
from ..wire import binary
from ..wire.spentset import bucket_of
from . import metrics
from .disputes import holder_cleared, transcript_digest
from .errors import BankError, forbidden
from .freeze import freeze_by_case
from .ledger import post, post_step
from .redemption import NOT_BOUND, NOT_BOUND_DETAIL, account_id_of, unbound
from .schema import accounts, fraud_cases, spent_coins
from .store import (
    FEW_ROWS,
    Sql,
    closed_generations,
    insert_ignoring_conflicts,
    is_postgres,
    partition_missing,
    retrying,
    run,
)

log = logging.getLogger("ecash.bank")

@dataclass
class Verdict:
    status: str  # accepted | double_spent | invalid | late | expired
    code: str = ""
    detail: str = ""
    replay: bool = False
    credited: int = 0  # moved to the depositor by THIS call
    fraud_case: int | None = None
    amount: int = 0  # what the transcript earns the depositor: the same on every replay

    def to_json(self) -> dict:
        """``amount`` answers a replay as the first time (ECASH-1 6); ``credited``
        says what this call moved (0 on a replay)."""
        out = {"status": self.status, "replay": self.replay, "credited": self.credited,
               "amount": self.amount}
        if self.code:
            out["code"] = self.code
            out["detail"] = self.detail
        if self.fraud_case is not None:
            out["fraud_case"] = self.fraud_case
        return out


# How a transcript relates to what the spent table holds for its coin (ECASH-1 6)
NEW = "new"  # coin_id not stored
IDENTICAL = "identical"  # the stored transcript, byte for byte
CONFLICTING = "conflicting"  # stored with another d: the coin was spent twice
SAME_D_OTHER_BYTES = "same_d_other_bytes"  # same d, other bytes: refused, names nobody


def lookup(stored: tuple[bytes, bytes] | None, spend: bytes, request: bytes) -> str:
    """Classify a transcript (binary spend and request) against the stored
    ``(spend, request)`` of its ``coin_id``, if any (ECASH-1 6, rev. 2).

    Equal ``coin_id`` means equal ``(key_id, A, B)``; so ``d = H("spend", A,
    B, request_id)`` differs exactly when the payments differ, and two answers
    to two ``d`` name the holder (section 7). Under one ``d`` the answers
    ``(r1, r2)`` are determined, so another transcript there differs only in
    its signature on the coin: nobody is named, and it earns nothing."""
    if stored is None:
        return NEW
    if stored == (spend, request):
        return IDENTICAL
    if _d(*stored) != _d(spend, request):
        return CONFLICTING
    return SAME_D_OTHER_BYTES


def _d(spend: bytes, request: bytes) -> int:
    """The spend's challenge ``d`` (its ``A`` and ``B`` are bytes 32 to 96)."""
    return spend_challenge(spend[32:64], spend[64:96],
                           binary.request_from_bytes(request).request_id)


_CREDIT = Sql("UPDATE accounts SET balance = balance + %(amount)s WHERE id = %(pk)s")
_SPENT_COLUMNS = ("generation", "bucket", "coin_id", "denomination", "depositor", "redeemed",
                  "deposited_at", "spend", "request")
_SPENT_INSERTS: dict[int, Sql] = {}


def _insert_spent(conn: Connection, rows: list[dict]) -> list[tuple[int, bytes]]:
    """The spent-coin rows that went in, as ``(generation, coin_id)``. A few rows
    (a payment at a shop's terminal, settled at once) are one plain statement,
    sent with the transaction's ``BEGIN`` in one round trip; a batch is one
    statement over arrays (:func:`store.insert_ignoring_conflicts`). Not done
    there for every caller: a plain statement after SQLAlchemy's own in a
    transaction may meet a statement psycopg deallocated, and only a caller
    wrapped in ``retrying`` runs again (:meth:`Bank.credit`'s is not)."""
    if not rows:
        return []
    if len(rows) > FEW_ROWS:
        return insert_ignoring_conflicts(conn, spent_coins, rows,
                                         (spent_coins.c.generation, spent_coins.c.coin_id))
    sql = _SPENT_INSERTS.get(len(rows))
    if sql is None:
        values = ", ".join("(" + ", ".join(f"%({c}_{i})s" for c in _SPENT_COLUMNS) + ")"
                           for i in range(len(rows)))
        sql = _SPENT_INSERTS[len(rows)] = Sql(
            f"INSERT INTO spent_coins ({', '.join(_SPENT_COLUMNS)}) VALUES {values}"
            " ON CONFLICT DO NOTHING RETURNING generation, coin_id")
    params = {f"{c}_{i}": row[c] for i, row in enumerate(rows) for c in _SPENT_COLUMNS}
    return run(conn, (sql, params))[0]


class _Item:
    __slots__ = ("binary", "coin_id", "key", "pre", "request", "spend")

    def __init__(self, spend: Spend) -> None:
        self.spend = spend
        self.coin_id = spend.coin.coin_id
        self.key = None
        self.pre: Verdict | None = None  # a verdict reached before storing
        self.binary = binary.spend_to_bytes(spend)
        self.request = binary.request_to_bytes(spend.request)


def _generation_closed() -> BankError:
    return BankError("redemption_refused", "a redeemed coin's generation closed (past its"
                     " deposit_end) before the exchange was answered", 409)


def _case_of(conn: Connection, coin_id: bytes, digest: bytes):  # type: ignore[no-untyped-def]
    """The fraud case a transcript (its coin and digest) opened, if any."""
    return conn.execute(select(fraud_cases).where(fraud_cases.c.coin_id == coin_id,
                                                  fraud_cases.c.digest == digest)).first()


def _case_replay(case, depositor_pk: int) -> Verdict:  # type: ignore[no-untyped-def]
    """A double spend's transcript deposited again: answered as the first time."""
    return Verdict("double_spent", "double_spent", "coin spent twice", replay=True,
                   fraud_case=case.id, amount=case.value if case.depositor == depositor_pk else 0)


class DepositMixin:
    def deposit(self, depositor_pk: int, spends: Sequence[Spend], *,  # type: ignore[misc]
                redemption: bool = False) -> list[Verdict]:
        """One verdict per transcript, in order. A merchant deposits spends made
        to its ``merchant_id``; a holder redeems spends made to the bank's."""
        if len(spends) > self.config.max_deposit_batch:
            raise BankError("batch_too_large", f"at most {self.config.max_deposit_batch}"
                            " transcripts per batch", 413)
        payee = self.config.bank_merchant_id if redemption else self.merchant_id_of(depositor_pk)
        if payee is None:
            raise forbidden("this account is not a merchant")
        items = self._precheck(spends, payee)
        if redemption:  # credited only into the account it is bound to (wire.redemption)
            for i in unbound(spends, account_id_of(self.engine, depositor_pk)):
                if items[i].pre is None:
                    items[i].pre = Verdict("invalid", NOT_BOUND, NOT_BOUND_DETAIL)
        verdicts = retrying(lambda: self._store_open(depositor_pk, items, redemption))
        for v in verdicts:
            metrics.DEPOSITS.labels(v.status).inc()
        return verdicts

    def _precheck(self, spends: Sequence[Spend], payee: str) -> list[_Item]:  # type: ignore[misc]
        now, now_ms = self.now(), self.now_ms()
        window_ms = self.config.deposit_window_s * 1000
        items = [_Item(s) for s in spends]
        to_verify = []
        for it in items:
            sp = it.spend
            it.key = key = self.key(sp.coin.key_id)
            if key is None:
                it.pre = Verdict("invalid", "unknown_key", "no such denomination key")
            elif sp.request.merchant_id != payee:
                it.pre = Verdict("invalid", "wrong_merchant",
                                 "the spend was made to another payee")
            elif sp.request.currency != key.public.currency:
                it.pre = Verdict("invalid", "currency_mismatch", "wrong currency")
            elif now > key.public.deposit_end:
                it.pre = Verdict("expired", "key_expired", "the key is past its deposit_end")
            elif now_ms > sp.request.timestamp_ms + window_ms:
                it.pre = Verdict("late", "late", "deposited more than the deposit window after"
                                 " the request")
            else:
                to_verify.append(it)
        results = verify_spends([(it.spend, it.key.public) for it in to_verify],
                                pool=self.verify_pool, processes=None if self.verify_pool else 0)
        for it, res in zip(to_verify, results, strict=True):
            if not res.ok:
                it.pre = Verdict("invalid", res.code, res.reason)
        return items

    def _store_open(self, depositor_pk: int, items: list[_Item],  # type: ignore[misc]
                    redemption: bool) -> list[Verdict]:
        """:meth:`_store`, its coins of closed generations refused as expired.
        On PostgreSQL a closed generation's partition is gone, so a deposit
        that raced ``maintenance`` fails to insert there (no lookup on the hot
        path): the closed generations are then read, and the batch stored again."""
        try:
            return self._store(depositor_pk, items, redemption)
        except (DBAPIError, psycopg.Error) as exc:
            if not partition_missing(exc):
                raise
        self._closed_generations.update(closed_generations(self.engine))
        return self._store(depositor_pk, items, redemption)

    def _expire_closed(self, conn: Connection, items: list[_Item]) -> None:
        """Refuse the coins of closed generations: their spent coins are gone and
        their breakage booked (SQLite reads this in the write transaction, which
        excludes ``maintenance``; PostgreSQL knows it from :meth:`_store_open`)."""
        if not is_postgres(conn):
            self._closed_generations.update(closed_generations(conn))
        closed = self._closed_generations
        for it in items:
            if it.pre is None and it.key.generation in closed:
                it.pre = Verdict("expired", "key_expired", "the key's generation is closed"
                                 " (past its deposit_end)")

    def _store(self, depositor_pk: int, items: list[_Item],  # type: ignore[misc]
               redemption: bool) -> list[Verdict]:
        now = self.now()
        credited = 0
        fraud_credit = 0
        with self.engine.begin() as conn:
            self._expire_closed(conn, items)
            verdicts: list[Verdict | None] = [None] * len(items)
            rows, first = [], {}
            for i, it in enumerate(items):
                if it.pre is not None and it.pre.status == "invalid":
                    verdicts[i] = it.pre
                    continue
                pk = (it.key.generation, it.coin_id)
                if it.pre is None and pk not in first:
                    first[pk] = i
                    rows.append({"generation": pk[0], "bucket": bucket_of(pk[1]),
                                 "coin_id": pk[1], "denomination": it.key.denomination,
                                 "depositor": depositor_pk, "redeemed": redemption,
                                 "deposited_at": now, "spend": it.binary,
                                 "request": it.request})
            inserted = {(g, c) for g, c in _insert_spent(conn, rows)}
            for pk in inserted:
                i = first[pk]
                value = items[i].key.public.value
                verdicts[i] = Verdict("accepted", credited=value, amount=value)
                credited += value
            rest = [i for i, v in enumerate(verdicts) if v is None]
            stored = self._stored(conn, [(items[i].key.generation, items[i].coin_id)
                                         for i in rest])
            for i in rest:
                it = items[i]
                st = stored.get((it.key.generation, it.coin_id))
                verdicts[i], extra = self._classify(conn, it, st, depositor_pk, redemption, now)
                fraud_credit += extra
            steps = []
            if credited:
                steps.append(post_step(now, "redeem" if redemption else "deposit", "liability",
                                       f"acct:{depositor_pk}", credited, secrets.token_hex(16)))
            if credited or fraud_credit:
                steps.append((_CREDIT, {"pk": depositor_pk, "amount": credited + fraud_credit}))
            if steps:  # the credit and the commit in one round trip
                run(conn, *steps, commit=True)
        return verdicts  # type: ignore[return-value]

    def _stored(self, conn: Connection, keys: list[tuple[int, bytes]]) -> dict:
        """The stored rows of ``(generation, coin_id)`` keys, by key."""
        if not keys:
            return {}
        rows = conn.execute(select(spent_coins.c.generation, spent_coins.c.coin_id,
                                   spent_coins.c.depositor, spent_coins.c.spend,
                                   spent_coins.c.request).where(
            tuple_(spent_coins.c.generation, spent_coins.c.bucket, spent_coins.c.coin_id).in_(
                [(g, bucket_of(c), c) for g, c in keys]))).all()
        return {(r.generation, r.coin_id): r for r in rows}

    def _classify(self, conn, it: _Item, st, depositor_pk: int,  # type: ignore[no-untyped-def]
                  redemption: bool, now: int) -> tuple[Verdict, int]:
        """Verdict for a transcript whose coin is already stored (or was refused
        before storing); returns it with any compensation credited."""
        kind = lookup(None if st is None else (st.spend, st.request), it.binary, it.request)
        if kind == IDENTICAL:
            if st.depositor == depositor_pk:
                return Verdict("accepted", replay=True, credited=0,
                               amount=it.key.public.value), 0
            return Verdict("invalid", "already_deposited",
                           "this transcript was deposited by another account"), 0
        if it.pre is not None:
            return it.pre, 0
        if kind == NEW:  # cannot happen: a conflict without a stored row
            raise BankError("busy", "try again", 503)
        if kind == SAME_D_OTHER_BYTES:
            return Verdict("invalid", "other_signature", "this coin is stored for the same"
                           " payment with other bytes (another signature on the coin);"
                           " nobody is named (ECASH-1 6)"), 0
        return self._double_spend(conn, it, st, depositor_pk, redemption, now)

    def _double_spend(self, conn, it: _Item, st, depositor_pk: int,  # type: ignore[no-untyped-def]
                      redemption: bool, now: int) -> tuple[Verdict, int]:
        digest = transcript_digest(it.binary, it.request)
        gen = it.key.generation
        old = _case_of(conn, it.coin_id, digest)
        if old is not None:
            return _case_replay(old, depositor_pk), 0
        first = binary.spend_from_bytes(st.spend, binary.request_from_bytes(st.request))
        try:
            found = identify(first, it.spend)
        except EcashError as exc:  # both verified: cannot happen short of a broken key
            raise BankError("internal", f"identification failed: {exc}", 500) from None
        cheater = conn.execute(select(accounts).where(
            accounts.c.identity == found.I).with_for_update()).first()
        cleared = cheater is not None and holder_cleared(  # a refused transcript (disputes.py)
            conn, it.coin_id, digest, transcript_digest(st.spend, st.request))
        if cleared:
            cheater = None
        value = it.key.public.value
        compensate = (not redemption or cleared) and (cheater is None or cheater.id != depositor_pk)
        from_balance = min(max(cheater.balance, 0), value) if cheater and compensate else 0
        receivable = value - from_balance if compensate else 0
        # The case goes in first, skipping a conflict: the same transcript deposited
        # at the same moment by another request (a retry) opened it after our look
        # above, and that deposit answers for it; this one is its replay.
        inserted = insert_ignoring_conflicts(conn, fraud_cases, [dict(
            generation=gen, coin_id=it.coin_id, digest=digest, spend1=st.spend,
            request1=st.request, spend2=it.binary, request2=it.request, identity=found.I,
            account=cheater.id if cheater else None, depositor=depositor_pk,
            value=value if compensate else 0, from_balance=from_balance, receivable=receivable,
            alarm=cheater is None and not cleared, created_at=now)], (fraud_cases.c.id,))
        if not inserted:
            return _case_replay(_case_of(conn, it.coin_id, digest), depositor_pk), 0
        case_id = inserted[0][0]
        if cheater is not None:
            conn.execute(update(accounts).where(accounts.c.id == cheater.id).values(
                balance=accounts.c.balance - from_balance,
                **freeze_by_case(conn, cheater, case_id, now)))
        ref = f"case:{case_id}"
        me = f"acct:{depositor_pk}"
        if cheater is not None:
            post(conn, now, "fraud_debit", f"acct:{cheater.id}", me, from_balance, ref)
        post(conn, now, "fraud_receivable", "receivable", me, receivable, ref)
        metrics.DOUBLE_SPENDS.inc()
        if cleared:
            log.warning("double spend: case %s names nobody (its merchant had refused one of"
                        " the transcripts)", case_id)
        elif cheater is None:
            metrics.ALARMS.inc()
            log.critical("ALARM: double spend names an unregistered identity %s (case %s):"
                         " a key or the code may be compromised", found.I.hex(), case_id)
        else:
            log.warning("double spend: case %s names account %s (frozen)", case_id,
                        cheater.account_id)
        return Verdict("double_spent", "double_spent", "coin spent twice; the spender is"
                       " identified", credited=from_balance + receivable,
                       fraud_case=case_id, amount=from_balance + receivable), \
            from_balance + receivable

    # --- redemption inside an exchange --------------------------------------
    def check_redemption(self, spends: Sequence[Spend],  # type: ignore[misc]
                         account_pk: int) -> tuple[bytes, int]:
        """Verify the coins an exchange redeems (paid to the bank, bound to the
        account, :mod:`.redemption`); return the binary payment to store with
        the session and its value."""
        if not spends:
            raise BankError("bad_redemption", "an exchange redeems at least one coin")
        items = self._precheck(spends, self.config.bank_merchant_id)
        bad = [it.pre for it in items if it.pre is not None]
        if bad:
            raise BankError("redemption_refused", f"{bad[0].code}: {bad[0].detail}")
        if len({s.coin.coin_id for s in spends}) != len(spends):
            raise BankError("redemption_refused", "the same coin twice")
        try:
            blob = binary.payment_to_bytes(list(spends))
        except ValueError as exc:
            raise BankError("redemption_refused", str(exc)) from None
        if sum(it.key.public.value for it in items) != spends[0].request.amount:
            raise BankError("redemption_refused", "coin values must add up to the amount")
        if unbound(spends, account_id_of(self.engine, account_pk)):
            raise BankError("redemption_refused", f"{NOT_BOUND}: {NOT_BOUND_DETAIL}")
        return blob, spends[0].request.amount

    def redeem_in_transaction(self, conn: Connection, account_pk: int,  # type: ignore[misc]
                              blob: bytes, now: int) -> int:
        """Store an exchange's redeemed coins; every one must be new, and of a
        generation ``maintenance`` has not closed: an exchange opened before
        its coins' ``deposit_end`` and answered after the close is refused,
        since the close counted those coins as breakage (ECASH-1 9.4)."""
        spends = binary.payment_from_bytes(blob)
        rows = []
        for sp in spends:
            key = self.key(sp.coin.key_id, conn)
            rows.append({"generation": key.generation, "bucket": bucket_of(sp.coin.coin_id),
                         "coin_id": sp.coin.coin_id, "denomination": key.denomination,
                         "depositor": account_pk, "redeemed": True, "deposited_at": now,
                         "spend": binary.spend_to_bytes(sp),
                         "request": binary.request_to_bytes(sp.request)})
        # SQLite: the write transaction excludes maintenance, so this read holds;
        # PostgreSQL: a close that commits after it leaves no partition to insert into
        if {r["generation"] for r in rows} & closed_generations(conn):
            raise _generation_closed()
        try:
            inserted = insert_ignoring_conflicts(conn, spent_coins, rows,
                                                 (spent_coins.c.coin_id,))
        except (DBAPIError, psycopg.Error) as exc:
            if partition_missing(exc):
                raise _generation_closed() from None
            raise
        if len(inserted) != len(rows):
            raise BankError("coin_already_spent", "a coin of this exchange is already spent",
                            409)
        return sum(self.key(sp.coin.key_id, conn).public.value for sp in spends)

    # --- operator views -------------------------------------------------------
    def fraud_list(self) -> list[dict]:  # type: ignore[misc]
        with self.engine.connect() as conn:
            rows = conn.execute(select(fraud_cases, accounts.c.account_id).select_from(
                fraud_cases.outerjoin(accounts, accounts.c.id == fraud_cases.c.account))
                .order_by(fraud_cases.c.id)).all()
        return [self._case_summary(r) for r in rows]

    def _case_summary(self, r) -> dict:  # type: ignore[no-untyped-def]
        return {"case": r.id, "account_id": r.account_id, "identity": r.identity.hex(),
                "coin_id": r.coin_id.hex(),
                "value": r.value, "from_balance": r.from_balance,
                "receivable": r.receivable, "alarm": r.alarm, "created_at": r.created_at}

    def fraud_case(self, case_id: int) -> dict:  # type: ignore[misc]
        """Both transcripts in full, the named account, and the key: the proof."""
        from ..wire import json as wj

        if not 0 <= case_id < 2**63:  # outside BIGINT the driver would fail, not find
            raise BankError("not_found", "no such fraud case", 404)
        with self.engine.connect() as conn:
            r = conn.execute(select(fraud_cases, accounts.c.account_id).select_from(
                fraud_cases.outerjoin(accounts, accounts.c.id == fraud_cases.c.account)).where(
                    fraud_cases.c.id == case_id)).first()
        if r is None:
            raise BankError("not_found", "no such fraud case", 404)
        s1 = binary.spend_from_bytes(r.spend1, binary.request_from_bytes(r.request1))
        s2 = binary.spend_from_bytes(r.spend2, binary.request_from_bytes(r.request2))
        key = self.key(s1.coin.key_id)
        return {**self._case_summary(r), "key": wj.key_to_json(key.public),
                "spend1": wj.spend_to_json(s1), "spend2": wj.spend_to_json(s2)}
