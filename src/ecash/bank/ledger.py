"""Double-entry journal, audit, breakage and payouts.

Every movement of money is one journal row ``(debit, credit, amount)``; a
ledger account's balance is its credits minus its debits. Ledger accounts:
``acct:<id>`` (what the bank owes a holder or merchant), ``liability`` (e-cash
in circulation), ``receivable`` (owed by double spenders), ``cash`` (money
paid in), ``payout`` (money paid out), ``breakage`` (expired coins).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Connection, case, func, select, update

from ..money import format_money
from . import store
from .schema import (
    accounts,
    denomination_keys,
    fraud_cases,
    generations,
    journal,
    merchant_cases,
    spent_coins,
    withdraw_sessions,
)


def post(conn: Connection, at: int, kind: str, debit: str, credit: str, amount: int,
         ref: str) -> bool:
    """Add one journal row (none for a zero amount, which counts as posted);
    False (and nothing written) if ``(kind, ref, debit)`` was posted before,
    which makes retried operations idempotent."""
    if amount < 0:
        raise ValueError("journal amounts are non-negative")
    if amount == 0:
        return True
    row = {"at": at, "kind": kind, "debit": debit, "credit": credit, "amount": amount,
           "ref": ref}
    return bool(store.insert_ignoring_conflicts(conn, journal, [row], returning=(journal.c.id,)))


# The same row as post() writes, as a step for store.run (the withdrawal's
# hot path); a row posted before is skipped just the same.
POST = store.Sql("INSERT INTO journal (at, kind, debit, credit, amount, ref) VALUES (%(at)s,"
                 " %(kind)s, %(debit)s, %(credit)s, %(amount)s, %(ref)s) ON CONFLICT DO NOTHING")


def post_step(at: int, kind: str, debit: str, credit: str, amount: int,
              ref: str) -> tuple[store.Sql, dict]:
    """:func:`post` as a :data:`POST` step for :func:`store.run` (a non-zero amount)."""
    if amount <= 0:
        raise ValueError("a journal step moves a positive amount")
    return POST, {"at": at, "kind": kind, "debit": debit, "credit": credit, "amount": amount,
                  "ref": ref}


@dataclass(frozen=True)
class LoadFlows:
    loaded_today: int
    net_in_window: int  # loaded + exchanged - redeemed


# What an account loaded since ``today`` and its net load since ``window``, in
# one statement over its journal rows (the withdrawal limits; see load_flows).
LOAD_FLOWS = store.Sql(
    "SELECT coalesce(sum(CASE WHEN debit = %(account)s AND kind = 'load'"
    " AND at >= %(today)s THEN amount ELSE 0 END), 0),"
    " coalesce(sum(CASE WHEN debit = %(account)s AND kind IN ('load', 'exchange')"
    " AND at >= %(window)s THEN amount"
    " WHEN credit = %(account)s AND kind = 'redeem' AND at >= %(window)s THEN -amount"
    " ELSE 0 END), 0)"
    " FROM journal WHERE (debit = %(account)s AND kind IN ('load', 'exchange')"
    " AND at >= %(since)s) OR (credit = %(account)s AND kind = 'redeem' AND at >= %(since)s)")


def load_flows(account: str, *, today: int, window: int) -> tuple[store.Sql, dict]:
    """The :data:`LOAD_FLOWS` step for :func:`store.run`; its row goes to
    :func:`flows_of`."""
    return LOAD_FLOWS, {"account": account, "today": today, "window": window,
                        "since": min(today, window)}


def flows_of(row: tuple) -> LoadFlows:
    return LoadFlows(int(row[0]), int(row[1]))


def ledger_balance(conn: Connection, name: str) -> int:
    credit = conn.execute(select(func.coalesce(func.sum(journal.c.amount), 0)).where(
        journal.c.credit == name)).scalar_one()
    debit = conn.execute(select(func.coalesce(func.sum(journal.c.amount), 0)).where(
        journal.c.debit == name)).scalar_one()
    return int(credit) - int(debit)


@dataclass
class AuditReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)

    def fail(self, message: str) -> None:
        self.ok = False
        self.problems.append(message)


def issued_by_generation(conn: Connection) -> dict[int, int]:
    """Value of every answered coin, per key generation (from the sessions)."""
    keys = {r.key_id: (r.generation, r.value) for r in conn.execute(
        select(denomination_keys.c.key_id, denomination_keys.c.generation,
               denomination_keys.c.value))}
    out: dict[int, int] = defaultdict(int)
    for (blob,) in conn.execute(select(withdraw_sessions.c.key_ids).where(
            withdraw_sessions.c.state == "answered")):
        for i in range(0, len(blob), 32):
            gen, value = keys[blob[i:i + 32]]
            out[gen] += value
    return out


def spent_by_generation(conn: Connection) -> dict[int, int]:
    rows = conn.execute(
        select(spent_coins.c.generation, func.sum(denomination_keys.c.value))
        .select_from(spent_coins.join(denomination_keys, (
            denomination_keys.c.generation == spent_coins.c.generation)
            & (denomination_keys.c.denomination == spent_coins.c.denomination)))
        .group_by(spent_coins.c.generation))
    return {g: int(v) for g, v in rows}


class LedgerMixin:
    def audit(self) -> AuditReport:  # type: ignore[misc]
        """Recompute every balance from the journal, and the e-cash liability from
        the coin tables (issued - deposited - redeemed - expired)."""
        rep = AuditReport()
        currency = self.config.currency
        m = lambda minor: format_money(minor, currency)  # noqa: E731  # problems people read
        with self.engine.connect() as conn:
            bad = conn.execute(select(func.count()).select_from(journal).where(
                journal.c.amount <= 0)).scalar_one()
            if bad:
                rep.fail(f"{bad} journal rows with a non-positive amount")
            credits = dict(conn.execute(select(journal.c.credit, func.sum(journal.c.amount))
                                        .group_by(journal.c.credit)).all())
            debits = dict(conn.execute(select(journal.c.debit, func.sum(journal.c.amount))
                                       .group_by(journal.c.debit)).all())
            bal = lambda n: int(credits.get(n, 0)) - int(debits.get(n, 0))  # noqa: E731
            total_balances = 0
            for row in conn.execute(select(accounts.c.id, accounts.c.account_id,
                                           accounts.c.balance)):
                expected = bal(f"acct:{row.id}")
                total_balances += row.balance
                if expected != row.balance:
                    rep.fail(f"account {row.account_id}: balance {m(row.balance)} but"
                             f" journal says {m(expected)}")
                if row.balance < 0:
                    rep.fail(f"account {row.account_id}: negative balance {m(row.balance)}")
            issued = issued_by_generation(conn)
            spent = spent_by_generation(conn)
            gens = conn.execute(select(generations)).all()
            archived = sum(g.archived_spent_value for g in gens)
            breakage = sum(g.breakage_value for g in gens)
            issued_total = sum(issued.values())
            spent_total = sum(spent.values()) + archived
            expected_liability = issued_total - spent_total - breakage
            # the liability account is credited on issue (load, exchange) and debited
            # on deposit, redemption and breakage: its balance is what is owed
            liability = bal("liability")
            rep.figures.update(issued=issued_total, deposited_or_redeemed=spent_total,
                               expired=breakage, liability=liability,
                               holder_balances=total_balances, receivable=-bal("receivable"),
                               cash_in=-bal("cash"), paid_out=bal("payout"))
            if liability != expected_liability:
                rep.fail(f"e-cash liability {m(liability)} in the journal but coins say"
                         f" {m(expected_liability)}")
            if liability < 0:
                rep.fail("negative e-cash liability")
            owed = int(conn.execute(select(func.coalesce(func.sum(fraud_cases.c.receivable),
                                                         0))).scalar_one())
            owed += int(conn.execute(select(func.coalesce(func.sum(  # disputes.py
                merchant_cases.c.receivable), 0))).scalar_one())
            if -bal("receivable") != owed:
                rep.fail(f"receivable {m(-bal('receivable'))} in the journal but fraud and"
                         f" merchant cases say {m(owed)}")
            if bal("breakage") != breakage:
                rep.fail("breakage in the journal differs from the generations table")
            # everything that came in is still somewhere
            if -bal("cash") != total_balances + liability + bal("payout") + bal("breakage") \
                    - (-bal("receivable")):
                rep.fail("money in != balances + liability + paid out + breakage - receivable")
        return rep

    def close_generations(self) -> list[int]:  # type: ignore[misc]
        """Book breakage for generations past ``deposit_end`` and drop their
        spent coins (the bank refuses their deposits from then on).

        Ordered against deposits and exchanges in flight: the generation rows
        are locked (a second ``maintenance`` waits, then finds them closed),
        then each one's spent coins are held still (``store.lock_partition``:
        writes in flight finish first, later ones wait), and only then are
        they counted. A coin that went in before is counted as spent; one that
        comes after finds the generation closed and is refused as expired
        (``DepositMixin``), so no coin is both breakage and paid."""
        now = self.now()
        done = []
        with self.engine.begin() as conn:
            due = conn.execute(select(generations).where(
                generations.c.deposit_end < now, generations.c.closed_at.is_(None))
                .order_by(generations.c.generation).with_for_update()).all()
            if not due:
                return []
            for g in due:
                store.lock_partition(conn, g.generation)
            issued = issued_by_generation(conn)
            spent = spent_by_generation(conn)
            for g in due:
                unspent = issued.get(g.generation, 0) - spent.get(g.generation, 0)
                post(conn, now, "breakage", "liability", "breakage", unspent,
                     f"generation:{g.generation}")
                conn.execute(update(generations).where(
                    generations.c.generation == g.generation).values(
                        closed_at=now, archived_spent_value=spent.get(g.generation, 0),
                        breakage_value=unspent))
                store.drop_partition(conn, g.generation)
                done.append(g.generation)
        return done

    def release_payouts(self) -> list[tuple[str, int]]:  # type: ignore[misc]
        """Pay out closed accounts whose last key passed ``deposit_end``."""
        now = self.now()
        out = []
        with self.engine.begin() as conn:
            rows = conn.execute(select(accounts).where(
                accounts.c.status == "closed", accounts.c.payout_after <= now,
                accounts.c.balance > 0).with_for_update()).all()
            for row in rows:
                post(conn, now, "payout", f"acct:{row.id}", "payout", row.balance,
                     f"{row.id}:{row.paid_out + row.balance}")
                conn.execute(update(accounts).where(accounts.c.id == row.id).values(
                    balance=0, paid_out=accounts.c.paid_out + row.balance))
                out.append((row.account_id, row.balance))
        return out

    def close_account(self, account_pk: int) -> dict:  # type: ignore[misc]
        """Close; the payout waits for the last ``deposit_end`` of the keys the
        account withdrew from (coins it kept could still be double-spent)."""
        with self.engine.begin() as conn:
            row = self.account_row(conn, account_pk, lock=True)
            if row.status == "frozen":  # with the reason and the case (freeze.py)
                from .freeze import frozen_error
                raise frozen_error(row, 409)
            keys = {r.key_id: r.deposit_end for r in conn.execute(
                select(denomination_keys.c.key_id, denomination_keys.c.deposit_end))}
            last = self.now()
            for (blob,) in conn.execute(select(withdraw_sessions.c.key_ids).where(
                    withdraw_sessions.c.account == account_pk,
                    withdraw_sessions.c.state == "answered")):
                for i in range(0, len(blob), 32):
                    last = max(last, keys[blob[i:i + 32]])
            payout_after = row.payout_after if row.status == "closed" else last
            conn.execute(update(accounts).where(accounts.c.id == account_pk).values(
                status="closed", payout_after=payout_after))
        return {"status": "closed", "payout_after": payout_after, "balance": row.balance}


_ = case  # keep the import for dialect-neutral expressions in later queries
