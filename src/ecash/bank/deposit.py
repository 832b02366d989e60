"""Deposit (settlement), redemption and double-spend handling (ECASH-1 6, 7, 9.4, 9.5).

A batch is verified outside any transaction (in-process or on the process
pool), then stored in ONE transaction: a bulk insert into ``spent_coins``
that skips conflicts, then the conflicts are classified (replay, serial
collision, double spend). The primary key ``(generation, serial)`` is what
guarantees that one coin is credited once from the e-cash liability, however
many merchants deposit it at the same moment.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, tuple_, update

from ..crypto.batch import verify_spends
from ..crypto.errors import EcashError
from ..crypto.identify import identify
from ..crypto.payment import Spend
from ..wire import binary
from . import metrics
from .errors import BankError, forbidden
from .ledger import post, post_step
from .schema import accounts, fraud_cases, generations, spent_coins
from .store import FEW_ROWS, Sql, insert_ignoring_conflicts, retrying, run

log = logging.getLogger("ecash.bank")

MAX_PREFIXES = 256


@dataclass
class Verdict:
    status: str  # accepted | double_spent | invalid | late | expired | serial_collision
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


def bucket_of(serial: bytes) -> int:
    """31 bits of SHA-256(serial): what the spent-coin range query indexes."""
    return int.from_bytes(hashlib.sha256(serial).digest()[:4], "big") >> 1


_CREDIT = Sql("UPDATE accounts SET balance = balance + %(amount)s WHERE id = %(pk)s")
_SPENT_COLUMNS = ("generation", "serial", "bucket", "denomination", "depositor", "redeemed",
                  "deposited_at", "spend", "request")
_SPENT_INSERTS: dict[int, Sql] = {}


def _insert_spent(conn: Connection, rows: list[dict]) -> list[tuple[int, bytes]]:
    """The spent-coin rows that went in, as ``(generation, serial)``. A few rows
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
                                         (spent_coins.c.generation, spent_coins.c.serial))
    sql = _SPENT_INSERTS.get(len(rows))
    if sql is None:
        values = ", ".join("(" + ", ".join(f"%({c}_{i})s" for c in _SPENT_COLUMNS) + ")"
                           for i in range(len(rows)))
        sql = _SPENT_INSERTS[len(rows)] = Sql(
            f"INSERT INTO spent_coins ({', '.join(_SPENT_COLUMNS)}) VALUES {values}"
            " ON CONFLICT DO NOTHING RETURNING generation, serial")
    params = {f"{c}_{i}": row[c] for i, row in enumerate(rows) for c in _SPENT_COLUMNS}
    return run(conn, (sql, params))[0]


class _Item:
    __slots__ = ("binary", "key", "pre", "request", "spend")

    def __init__(self, spend: Spend) -> None:
        self.spend = spend
        self.key = None
        self.pre: Verdict | None = None  # a verdict reached before storing
        self.binary = binary.spend_to_bytes(spend)
        self.request = binary.request_to_bytes(spend.request)


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
        verdicts = retrying(lambda: self._store(depositor_pk, items, redemption))
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

    def _store(self, depositor_pk: int, items: list[_Item],  # type: ignore[misc]
               redemption: bool) -> list[Verdict]:
        now = self.now()
        verdicts: list[Verdict | None] = [None] * len(items)
        rows, first = [], {}
        for i, it in enumerate(items):
            if it.pre is not None and it.pre.status == "invalid":
                verdicts[i] = it.pre
                continue
            pk = (it.key.generation, it.spend.coin.A)
            if it.pre is None and pk not in first:
                first[pk] = i
                rows.append({"generation": pk[0], "serial": pk[1], "bucket": bucket_of(pk[1]),
                             "denomination": it.key.denomination, "depositor": depositor_pk,
                             "redeemed": redemption, "deposited_at": now, "spend": it.binary,
                             "request": it.request})
        credited = 0
        fraud_credit = 0
        with self.engine.begin() as conn:
            inserted = {(g, s) for g, s in _insert_spent(conn, rows)}
            for pk in inserted:
                i = first[pk]
                value = items[i].key.public.value
                verdicts[i] = Verdict("accepted", credited=value, amount=value)
                credited += value
            rest = [i for i, v in enumerate(verdicts) if v is None]
            stored = self._stored(conn, [(items[i].key.generation, items[i].spend.coin.A)
                                         for i in rest])
            for i in rest:
                it = items[i]
                st = stored.get((it.key.generation, it.spend.coin.A))
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
        if not keys:
            return {}
        rows = conn.execute(select(spent_coins.c.generation, spent_coins.c.serial,
                                   spent_coins.c.depositor, spent_coins.c.spend,
                                   spent_coins.c.request).where(
            tuple_(spent_coins.c.generation, spent_coins.c.serial).in_(keys))).all()
        return {(r.generation, r.serial): r for r in rows}

    def _classify(self, conn, it: _Item, st, depositor_pk: int,  # type: ignore[no-untyped-def]
                  redemption: bool, now: int) -> tuple[Verdict, int]:
        """Verdict for a transcript whose coin is already stored (or was refused
        before storing); returns it with any compensation credited."""
        if st is not None and st.spend == it.binary and st.request == it.request:
            if st.depositor == depositor_pk:
                return Verdict("accepted", replay=True, credited=0,
                               amount=it.key.public.value), 0
            return Verdict("invalid", "already_deposited",
                           "this transcript was deposited by another account"), 0
        if it.pre is not None:
            return it.pre, 0
        if st is None:  # cannot happen: a conflict without a stored row
            raise BankError("busy", "try again", 503)
        if st.spend[:32] != it.binary[:32] or st.spend[64:96] != it.binary[64:96]:
            return Verdict("serial_collision", "serial_collision",
                           "serial already stored with another key or B (ECASH-1 6)"), 0
        return self._double_spend(conn, it, st, depositor_pk, redemption, now)

    def _double_spend(self, conn, it: _Item, st, depositor_pk: int,  # type: ignore[no-untyped-def]
                      redemption: bool, now: int) -> tuple[Verdict, int]:
        digest = hashlib.sha256(it.binary + it.request).digest()
        gen = it.key.generation
        old = conn.execute(select(fraud_cases).where(fraud_cases.c.serial == it.spend.coin.A,
                                                     fraud_cases.c.digest == digest)).first()
        if old is not None:
            return Verdict("double_spent", "double_spent", "coin spent twice",
                           replay=True, fraud_case=old.id,
                           amount=old.value if old.depositor == depositor_pk else 0), 0
        first = binary.spend_from_bytes(st.spend, binary.request_from_bytes(st.request))
        try:
            found = identify(first, it.spend)
        except EcashError as exc:  # both verified: cannot happen short of a broken key
            raise BankError("internal", f"identification failed: {exc}", 500) from None
        cheater = conn.execute(select(accounts).where(
            accounts.c.identity == found.I).with_for_update()).first()
        value = it.key.public.value
        compensate = not redemption and (cheater is None or cheater.id != depositor_pk)
        from_balance = min(max(cheater.balance, 0), value) if cheater and compensate else 0
        receivable = value - from_balance if compensate else 0
        if cheater is not None:
            status = cheater.status if cheater.status == "closed" else "frozen"
            conn.execute(update(accounts).where(accounts.c.id == cheater.id).values(
                status=status, balance=accounts.c.balance - from_balance))
        case_id = conn.execute(fraud_cases.insert().values(
            generation=gen, serial=it.spend.coin.A, digest=digest, spend1=st.spend,
            request1=st.request, spend2=it.binary, request2=it.request, identity=found.I,
            account=cheater.id if cheater else None, depositor=depositor_pk,
            value=value if compensate else 0, from_balance=from_balance, receivable=receivable,
            alarm=cheater is None, created_at=now)).inserted_primary_key[0]
        ref = f"case:{case_id}"
        me = f"acct:{depositor_pk}"
        if cheater is not None:
            post(conn, now, "fraud_debit", f"acct:{cheater.id}", me, from_balance, ref)
        post(conn, now, "fraud_receivable", "receivable", me, receivable, ref)
        metrics.DOUBLE_SPENDS.inc()
        if cheater is None:
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
    def check_redemption(self, spends: Sequence[Spend]) -> tuple[bytes, int]:  # type: ignore[misc]
        """Verify the coins an exchange redeems (paid to the bank); return the
        binary payment to store with the session and its value."""
        if not spends:
            raise BankError("bad_redemption", "an exchange redeems at least one coin")
        items = self._precheck(spends, self.config.bank_merchant_id)
        bad = [it.pre for it in items if it.pre is not None]
        if bad:
            raise BankError("redemption_refused", f"{bad[0].code}: {bad[0].detail}")
        if len({s.coin.A for s in spends}) != len(spends):
            raise BankError("redemption_refused", "the same coin twice")
        try:
            blob = binary.payment_to_bytes(list(spends))
        except ValueError as exc:
            raise BankError("redemption_refused", str(exc)) from None
        if sum(it.key.public.value for it in items) != spends[0].request.amount:
            raise BankError("redemption_refused", "coin values must add up to the amount")
        return blob, spends[0].request.amount

    def redeem_in_transaction(self, conn: Connection, account_pk: int,  # type: ignore[misc]
                              blob: bytes, now: int) -> int:
        """Store an exchange's redeemed coins; every one must be new."""
        spends = binary.payment_from_bytes(blob)
        rows = []
        for sp in spends:
            key = self.key(sp.coin.key_id, conn)
            rows.append({"generation": key.generation, "serial": sp.coin.A,
                         "bucket": bucket_of(sp.coin.A), "denomination": key.denomination,
                         "depositor": account_pk, "redeemed": True, "deposited_at": now,
                         "spend": binary.spend_to_bytes(sp),
                         "request": binary.request_to_bytes(sp.request)})
        inserted = insert_ignoring_conflicts(conn, spent_coins, rows, (spent_coins.c.serial,))
        if len(inserted) != len(rows):
            raise BankError("coin_already_spent", "a coin of this exchange is already spent",
                            409)
        return sum(self.key(sp.coin.key_id, conn).public.value for sp in spends)

    # --- public and operator views -------------------------------------------
    def spent_range(self, generation: int, prefixes: Sequence[int]) -> dict:  # type: ignore[misc]
        """Every spent serial whose SHA-256 starts with one of ``prefixes``
        (``prefix_bits`` of the generation each): a k-anonymous lookup."""
        if not 1 <= len(prefixes) <= MAX_PREFIXES:
            raise BankError("bad_prefixes", f"1 to {MAX_PREFIXES} prefixes")
        if not 0 <= generation < 2**31:  # the column's range: larger ones cannot exist
            raise BankError("unknown_generation", "no such generation", 404)
        with self.engine.connect() as conn:
            gen = conn.execute(select(generations).where(
                generations.c.generation == generation)).first()
            if gen is None:
                raise BankError("unknown_generation", "no such generation", 404)
            bits = gen.prefix_bits
            shift = 31 - bits
            conds = []
            for p in prefixes:
                if not 0 <= p < 1 << bits:
                    raise BankError("bad_prefixes", f"prefixes are {bits}-bit integers")
                conds.append(spent_coins.c.bucket.between(p << shift, ((p + 1) << shift) - 1))
            from sqlalchemy import or_
            rows = conn.execute(select(spent_coins.c.serial).where(
                spent_coins.c.generation == generation, or_(*conds))).all()
        return {"generation": generation, "prefix_bits": bits,
                "closed": gen.closed_at is not None,
                "serials": sorted(r.serial.hex() for r in rows)}

    def generations_info(self) -> list[dict]:  # type: ignore[misc]
        with self.engine.connect() as conn:
            rows = conn.execute(select(generations).order_by(generations.c.generation)).all()
        return [{"generation": g.generation, "withdraw_start": g.withdraw_start,
                 "withdraw_end": g.withdraw_end, "deposit_end": g.deposit_end,
                 "prefix_bits": g.prefix_bits, "closed": g.closed_at is not None}
                for g in rows]

    def fraud_list(self) -> list[dict]:  # type: ignore[misc]
        with self.engine.connect() as conn:
            rows = conn.execute(select(fraud_cases, accounts.c.account_id).select_from(
                fraud_cases.outerjoin(accounts, accounts.c.id == fraud_cases.c.account))
                .order_by(fraud_cases.c.id)).all()
        return [self._case_summary(r) for r in rows]

    def _case_summary(self, r) -> dict:  # type: ignore[no-untyped-def]
        return {"case": r.id, "account_id": r.account_id, "identity": r.identity.hex(),
                "serial": r.serial.hex(), "value": r.value, "from_balance": r.from_balance,
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
