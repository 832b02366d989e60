"""Frozen accounts and why: the operator's reason or note, the double-spending
case that froze an account, and the history of both (``account_events``).

A freeze is a decision a person has to be able to read back: the holder is
shown the reason (and the case number, when a double spend froze the
account) in the account's own view and in the ``account_frozen`` problem that
refuses a withdrawal; the operator is shown every freeze and unfreeze with
its time and words. The operator's own freeze is marked
``frozen_by_operator``, which an upheld dispute never lifts (``disputes``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select, update

from .errors import BankError
from .schema import account_events, accounts

MAX_TEXT = 500


def case_reason(case: int) -> str:
    """The reason an automatic freeze gives (interface of the wallet's display)."""
    return f"double spending: case {case}"


def check_text(text: str, what: str) -> str:
    """The operator's reason or note: 1 to 500 characters of storable text."""
    text = (text or "").strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise BankError("bad_text", f"the {what} must be 1 to {MAX_TEXT} characters")
    if "\x00" in text:
        raise BankError("bad_text", f"the {what} cannot hold NUL")
    return text


def record_event(conn: Connection, account_pk: int, now: int, action: str, text: str,
                 case: int | None = None) -> None:
    conn.execute(account_events.insert().values(account=account_pk, at=now, action=action,
                                                text=text, fraud_case=case))


def freeze_by_case(conn: Connection, row: Any, case: int, now: int) -> dict[str, Any]:
    """The columns a double-spend case sets on the account it names (``row``,
    locked), and its history entry. An account already frozen keeps the reason
    it was frozen for (the operator's, or the first case: every case is in its
    history); a closed one stays closed."""
    record_event(conn, row.id, now, "frozen", case_reason(case), case)
    if row.status in ("closed", "frozen"):
        return {}
    return {"status": "frozen", "frozen_reason": case_reason(case), "frozen_case": case,
            "frozen_at": now}


def after_cases_voided(conn: Connection, holder: int, remaining: list[int], dispute: int,
                       now: int) -> None:
    """An upheld dispute voided cases naming ``holder``: unfreeze the account
    if no case holds it and the operator did not freeze it, else name a case
    that still holds it."""
    row = conn.execute(select(accounts).where(accounts.c.id == holder)).one()
    if row.status != "frozen" or row.frozen_by_operator:
        return
    if remaining:
        case = min(remaining)
        conn.execute(update(accounts).where(accounts.c.id == holder).values(
            frozen_case=case, frozen_reason=case_reason(case)))
        return
    conn.execute(update(accounts).where(accounts.c.id == holder).values(
        status="active", frozen_reason=None, frozen_case=None, frozen_at=None))
    record_event(conn, holder, now, "unfrozen", f"dispute {dispute} upheld: the"
                 " double-spending cases naming this account were voided")


def frozen_fields(row: Any) -> dict[str, Any]:
    """What the holder's and the operator's views show of a freeze."""
    frozen = row.status == "frozen"
    return {"frozen_reason": (row.frozen_reason or "frozen by the operator") if frozen else None,
            "frozen_case": row.frozen_case if frozen else None,
            "frozen_at": row.frozen_at if frozen else None}


def frozen_error(row: Any, status: int) -> BankError:
    """The ``account_frozen`` problem, with the reason and the case."""
    reason = row.frozen_reason or "frozen by the operator"
    return BankError("account_frozen", f"the account is frozen: {reason}", status,
                     reason=reason, case=row.frozen_case)


class FreezeMixin:
    def set_status(self, account_id: str, status: str,  # type: ignore[misc]
                   text: str) -> dict[str, Any]:
        """Freeze (``text`` is the reason) or unfreeze (``text`` is the note)
        an account, recorded with the time; returns the account's freeze view."""
        if status not in ("active", "frozen"):
            raise BankError("bad_status", "status is active or frozen")
        text = check_text(text, "reason" if status == "frozen" else "note")
        now = self.now()
        with self.engine.begin() as conn:
            row = self.account_pk(conn, account_id, lock=True)
            if row.status == "closed":
                raise BankError("account_closed", "account is closed")
            if status == "frozen":
                values = {"status": "frozen", "frozen_by_operator": True, "frozen_reason": text,
                          "frozen_case": None, "frozen_at": now}
            else:
                values = {"status": "active", "frozen_by_operator": False,
                          "frozen_reason": None, "frozen_case": None, "frozen_at": None}
            conn.execute(update(accounts).where(accounts.c.id == row.id).values(**values))
            record_event(conn, row.id, now, "frozen" if status == "frozen" else "unfrozen", text)
            row = self.account_row(conn, row.id)
        return {"account_id": account_id, "status": row.status, **frozen_fields(row)}

    def operator_account_info(self, account_id: str) -> dict[str, Any]:  # type: ignore[misc]
        """The account as its holder sees it, and every freeze and unfreeze."""
        info = self.account_info(account_id)
        with self.engine.connect() as conn:
            pk = self.account_pk(conn, account_id).id
        return {**info, "events": self.account_events(pk)}

    def account_events(self, account_pk: int) -> list[dict[str, Any]]:  # type: ignore[misc]
        """Every freeze and unfreeze of the account, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(account_events).where(
                account_events.c.account == account_pk).order_by(account_events.c.id)).all()
        return [{"at": r.at, "action": r.action, "text": r.text, "case": r.fraud_case}
                for r in rows]

    @contextmanager
    def frozen_explained(self, account_pk: int) -> Iterator[None]:  # type: ignore[misc]
        """Complete an ``account_frozen`` refusal raised inside a transaction
        (which held the account's lock) with the reason and the case, read
        once that transaction is over."""
        try:
            yield
        except BankError as exc:
            if exc.code != "account_frozen" or exc.extra:
                raise
            with self.engine.connect() as conn:
                row = self.account_row(conn, account_pk)
            raise frozen_error(row, exc.status) from None
