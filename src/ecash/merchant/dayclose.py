"""A day's sales and the day close: what the till sold, what the bank has,
what is still being checked, what was refused, per till and for the shop.

The day is a UTC calendar day (00:00 to 24:00 UTC), by the time each request
was made: every till of a shop sharing one store then closes the same day,
whatever zone its clock is set to. Amounts are minor units; the pages format
them.
"""

from __future__ import annotations

import datetime as dt

from .errors import MerchantError
from .store import SaleRow
from .terminal import Terminal

DAY_MS = 86_400_000


def day_bounds(date: str | None, now_ms: int) -> tuple[str, int, int]:
    """``YYYY-MM-DD`` (None: today, UTC) as ``(date, start_ms, end_ms)``."""
    if date is None or date == "":
        day = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
    else:
        try:
            day = dt.date.fromisoformat(date)
        except (TypeError, ValueError):
            raise MerchantError("bad_date", f"{date!r} is not a date of the form"
                                " YYYY-MM-DD") from None
        if len(date) != 10:
            raise MerchantError("bad_date", f"{date!r} is not a date of the form YYYY-MM-DD")
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    return day.isoformat(), start, start + DAY_MS


def state_of(row: SaleRow, now_ms: int) -> str:
    """``waiting``, ``pending`` (checking with the bank), ``paid``, ``refused``,
    ``expired`` or ``cancelled``."""
    if row.status == "open":
        return "expired" if now_ms > row.expires_ms else "waiting"
    return row.status


def _zero() -> dict:
    c = {"count": 0, "value": 0}
    return {"paid": dict(c), "pending": dict(c), "refused": dict(c), "cancelled": dict(c),
            "expired": dict(c), "waiting": dict(c), "deposited": 0, "awaiting_deposit": 0}


def _add(totals: dict, state: str, row: SaleRow) -> None:
    totals[state]["count"] += 1
    totals[state]["value"] += row.amount
    if state == "paid":
        totals["deposited"] += row.deposited
        totals["awaiting_deposit"] += row.awaiting_deposit


def day_close(t: Terminal, date: str | None = None) -> dict:
    """The day's sales (oldest first) and totals per till name and for the
    whole store: ``paid`` (count, value), of the paid value what is
    ``deposited`` (the bank has given its verdict) and ``awaiting_deposit``,
    ``pending`` (checking with the bank), ``refused``, ``cancelled``,
    ``expired`` (unpaid) and ``waiting``."""
    now = t.now_ms()
    day, start, end = day_bounds(date, now)
    store, tills = _zero(), {}
    sales = []
    for row in t.store.sales_between(start, end):
        state = state_of(row, now)
        _add(store, state, row)
        _add(tills.setdefault(row.terminal, _zero()), state, row)
        sales.append({"request_id": row.request_id.hex(), "terminal": row.terminal,
                      "amount": row.amount, "created_ms": row.created_ms, "state": state,
                      "decided_ms": row.decided_ms, "coins": row.coins,
                      "reason": row.code if state == "refused" else None,
                      "description": row.description})
    return {"date": day, "zone": "UTC", "start_ms": start, "end_ms": end,
            "merchant_id": t.merchant_id, "currency": t.keys.currency, "amount_unit": "minor",
            "sales": sales, "terminals": tills, "store": store}
