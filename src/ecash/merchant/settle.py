"""Settlement (ECASH-1 6, 9.4): deposit pending transcripts in batches and
record the bank's verdicts; decide the payments that waited for them; the
settlement report.

Safe to interrupt and retry: a batch whose answer was lost is sent again and
the bank answers the same transcripts as the first time (``replay``);
verdicts are recorded once (the first one wins) in one transaction per batch.
A payment above the floor limit whose online deposit got no answer is
*pending* (5.1): its transcripts are stored, and once every one has a verdict
:func:`conclude` marks it paid (all accepted) or refused.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from ..bank.client import BankHTTPError, BankUnreachable
from . import crash
from .terminal import Terminal

log = logging.getLogger("ecash.merchant")

# a deposit the bank may have done though its answer says otherwise: try again
UNKNOWN_STATUSES = (408, 409, 425, 429)


def judged(verdict: dict, value: int) -> dict:
    """The bank's verdict with ``credited_value``: what this coin brought in.
    A replayed acceptance was credited the coin's value the first time."""
    credited = int(verdict.get("credited") or 0)
    if verdict["status"] == "accepted" and verdict.get("replay"):
        credited = value
    return {**verdict, "credited_value": credited}


@dataclass
class DepositResult:
    sent: int = 0
    batches: int = 0
    accepted: int = 0
    credited: int = 0
    double_spent: int = 0
    compensated: int = 0
    refused: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def warn_window_s(t: Terminal) -> int:
    if t.config.warn_before_s is not None:
        return t.config.warn_before_s
    return min(86_400, max(60, t.keys.window_s // 4))


def deposit(t: Terminal, *, batch: int | None = None) -> DepositResult:
    size = max(1, min(batch or t.config.deposit_batch, 1000))
    res = DepositResult()
    bank = t.bank()
    sent: set[bytes] = set()
    while True:
        pending = t.store.pending(size, exclude=sent)
        if not pending:
            break
        coin_ids = [p.coin_id for p in pending]
        try:
            verdicts = bank.deposit([p.spend for p in pending])
            if len(verdicts) != len(pending):
                raise BankHTTPError(502, "bad_answer", "one verdict per transcript expected")
        except BankUnreachable as exc:
            t.store.note_attempt(coin_ids, str(exc))
            res.error = f"bank_unreachable: {exc}"
            break
        except BankHTTPError as exc:
            if exc.status == 413 and size > 1:
                size //= 2
                continue
            t.store.note_attempt(coin_ids, f"{exc.code}: {exc.detail}")
            res.error = f"{exc.code}: {exc.detail}"
            break
        crash.point("deposit:answered")
        results = [(p.coin_id, judged(v, p.value))
                   for p, v in zip(pending, verdicts, strict=True)]
        t.store.record_verdicts(results, t.now_ms())
        sent.update(coin_ids)
        res.sent += len(pending)
        res.batches += 1
        for _, v in results:
            if v["status"] == "accepted":
                res.accepted += 1
                res.credited += v["credited_value"]
            elif v["status"] == "double_spent":
                res.double_spent += 1
                res.compensated += v["credited_value"]
            else:
                res.refused += 1
    for rid in t.store.pending_requests():
        conclude(t, rid)
    res.warnings = deadline_warnings(t)
    for w in res.warnings:
        log.warning("%s", w)
    return res


def deposit_online(t: Terminal, request_id: bytes, *, online: bool = True) -> None:
    """Deposit a pending payment's transcripts that have no verdict yet (the
    deposit is idempotent: the bank answers a transcript it has as before).
    No answer, or an answer that leaves the deposit's fate open, changes
    nothing but the attempt count; a refusal of the whole deposit (a 4xx)
    means the bank took none of them, and the payment is refused."""
    todo = [p for p, v in t.store.request_transcripts(request_id) if v is None]
    if not todo:
        return
    coin_ids = [p.coin_id for p in todo]
    try:
        verdicts = t.bank(online=online).deposit([p.spend for p in todo])
        if len(verdicts) != len(todo):
            raise BankHTTPError(502, "bad_answer", "one verdict per transcript expected")
    except BankUnreachable as exc:
        t.store.note_attempt(coin_ids, str(exc))
        return
    except BankHTTPError as exc:
        t.store.note_attempt(coin_ids, f"{exc.code}: {exc.detail}")
        if exc.status < 500 and exc.status not in UNKNOWN_STATUSES:
            t.store.conclude_payment(request_id, False, t.now_ms(), "bank_error")
        return
    crash.point("accept:deposited")
    t.store.record_verdicts([(p.coin_id, judged(v, p.value))
                             for p, v in zip(todo, verdicts, strict=True)], t.now_ms())


def conclude(t: Terminal, request_id: bytes) -> str | None:
    """A pending payment whose transcripts all have verdicts becomes paid (the
    bank accepted every coin) or refused (``bank_refused``). Returns the new
    status, or None while a verdict is missing."""
    pairs = t.store.request_transcripts(request_id)
    if not pairs or any(v is None for _, v in pairs):
        return None
    paid = all(v["status"] == "accepted" for _, v in pairs)
    t.store.conclude_payment(request_id, paid, t.now_ms())
    return "paid" if paid else "refused"


def retry_pending(t: Terminal) -> int:
    """Try every pending payment at the bank again (the background's job);
    returns how many are still pending."""
    left = 0
    for rid in t.store.pending_requests():
        deposit_online(t, rid, online=False)
        if conclude(t, rid) is None:
            left += 1
    return left


def deadline_warnings(t: Terminal) -> list[str]:
    """Loud words for transcripts near or past the end of their deposit window."""
    now_ms, warn_s = t.now_ms(), warn_window_s(t)
    due = t.store.report_figures(now_ms, warn_s * 1000)["due"]
    out = []
    if due["overdue_count"]:
        out.append(f"{due['overdue_count']} transcript(s) worth {due['overdue_value']} are PAST"
                   " their deposit deadline: the bank will refuse them as late")
    soon = due["count"] - due["overdue_count"]
    if soon:
        left = max(0, (due["earliest_ms"] - now_ms) // 1000) if not due["overdue_count"] else 0
        out.append(f"{soon} transcript(s) worth {due['value'] - due['overdue_value']} must be"
                   f" deposited within {warn_s // 3600 or 1} h"
                   + (f" (the first in {left // 60} min)" if left else "")
                   + ": run `ecash merchant deposit` while online")
    return out


def _z() -> dict:
    return {"count": 0, "value": 0}


def report(t: Terminal) -> dict:
    """accepted, pending, deposited, credited, refused, double-spent and
    compensated transcripts; payments; deadlines; totals (minor units)."""
    now_ms, warn_ms = t.now_ms(), warn_window_s(t) * 1000
    fig = t.store.report_figures(now_ms, warn_ms)
    rows = {k: _z() for k in ("accepted", "pending", "deposited", "credited", "refused",
                              "double_spent", "compensated", "unsold")}
    refused_codes: dict[str, int] = {}
    unknown = 0

    def add(name: str, count: int, value: int) -> None:
        rows[name]["count"] += count
        rows[name]["value"] += value

    for g in fig["transcripts"]:
        if not g["sale"]:  # taken by the bank online for a payment then refused
            add("unsold", g["count"], g["credited"])
            continue
        add("accepted", g["count"], g["value"])
        if g["verdict"] is None:
            add("pending", g["count"], g["value"])
            continue
        add("deposited", g["count"], g["value"])
        if g["verdict"] == "accepted":
            add("credited", g["count"], g["credited"])
        elif g["verdict"] == "double_spent":
            add("double_spent", g["count"], g["value"])
            add("compensated", g["count"] - g["unknown"], g["credited"])
            unknown += g["unknown"]
        else:
            add("refused", g["count"], g["value"])
            code = g["code"] or g["verdict"]
            refused_codes[code] = refused_codes.get(code, 0) + g["count"]
    payments = {"paid": _z(), "open": 0, "expired": 0, "pending": _z(), "declined": 0,
                "cancelled": 0}
    for r in fig["requests"]:
        if r["status"] in ("paid", "pending"):
            payments[r["status"]]["count"] += r["count"]
            payments[r["status"]]["value"] += r["value"]
        elif r["status"] == "refused":
            payments["declined"] += r["count"]
        elif r["status"] == "cancelled":  # by the cashier (cancel.py)
            payments["cancelled"] += r["count"]
        else:
            payments["expired"] += r["expired"]
            payments["open"] += r["count"] - r["expired"]
    # the codes of the refusals kept in the log (the last few per request); the count of all
    payments["refused"] = {"count": fig["refusals_total"], "codes": fig["refusals"]}
    due = fig["due"]
    keys = t.keys
    return {
        "merchant_id": t.merchant_id, "currency": keys.currency,
        "keyset_fingerprint": keys.fingerprint, "generated_ms": now_ms, **rows,
        "refused_codes": refused_codes, "compensation_unknown": unknown,
        "payments": payments,
        "deadlines": {"warn_before_s": warn_ms // 1000,
                      "due_soon": {"count": due["count"] - due["overdue_count"],
                                   "value": due["value"] - due["overdue_value"]},
                      "overdue": {"count": due["overdue_count"], "value": due["overdue_value"]}},
        "totals": {"sales": payments["paid"]["value"],
                   "credited": rows["credited"]["value"] + rows["compensated"]["value"],
                   "outstanding": rows["pending"]["value"],
                   "lost": rows["refused"]["value"] + rows["double_spent"]["value"]
                   - rows["compensated"]["value"]},
    }
