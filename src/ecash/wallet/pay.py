"""Paying offline (ECASH-1 5, 5.1, 9.4).

Before any transcript leaves the wallet, the coins are recorded as answered
for the request, in the same transaction as the payment itself: a coin is
never answered for two requests, and asking again for the same request
returns the identical payment. A request dated more than ten minutes from
the wallet's clock is refused before anything is recorded or sent (5).

The terminal's answer has three outcomes (5.1). *Accepted*: a valid receipt
confirms the payment. *Refused*: with a refusal that verifies as a refusal of
exactly this payment, signed by the request's certified key, the coins are
released at once and the refusal is kept with the request and the spends as
evidence; without one, the coins stay pending (9.4), since the terminal may
hold the transcripts. *Pending* (or no answer at all): the coins stay pending
and ``sync`` sends the identical payment again for the final answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from ..crypto.coin import Coin
from ..crypto.errors import EcashError
from ..crypto.payment import Receipt, SignedRequest, Spend, make_spend
from ..crypto.refusal import Refusal
from ..money import format_amount, format_money
from ..wire import binary, text
from ..wire import json as wj
from . import faults
from .core import CLOCK_MARGIN_S, REDEMPTION_PAYEE, WalletBase
from .errors import (
    CannotPay,
    InsufficientCoins,
    LimitExceeded,
    NotRegistered,
    RequestRefused,
    TerminalError,
    WalletError,
)
from .selection import select_counts, suggest_break

DAY = 86_400
CLOCK_SKEW_MS = 600_000  # ECASH-1 5: a request further than ten minutes from our clock is refused
TERMINAL_TIMEOUT_S = 15.0
MAX_RETRY_AFTER_S = 3_600  # a terminal's retry_after_s is shown, bounded

# What became of a payment (the ``status`` column):
#   answered   recorded; no final answer yet (not sent, sent offline, pending at
#              the terminal, or the terminal did not answer): coins pending
#   confirmed  the terminal's receipt verified: coins spent
#   refused    refused without a valid signed refusal: coins pending (9.4)
#   released   refused with a valid signed refusal of exactly this payment:
#              coins spendable again, the refusal kept as evidence (5.1)
#   settled    no terminal to answer (a payment handed over offline, a
#              redemption) and the bank holds every coin as spent
#   lapsed     the coins came back (9.4)
#   disputed   refused or unanswered by its terminal, yet its coins turned up
#              spent: never "settled"; shown to the holder with the evidence,
#              and filed with the bank when the wallet holds a signed refusal
PAYMENT_STATUSES = ("answered", "confirmed", "refused", "released", "settled", "lapsed",
                    "disputed")


@dataclass
class Payment:
    request_id: bytes
    merchant_id: str
    amount: int
    currency: str
    pos_url: str
    spends: list[Spend]
    status: str  # one of PAYMENT_STATUSES
    repeated: bool = False  # the identical payment, asked again
    receipt: dict | None = None
    error: dict | None = field(default=None)
    refusal: dict | None = None  # the terminal's signed refusal, once verified
    description: str | None = None  # what was bought (docs/extensions.md), signature checked

    @property
    def text(self) -> str:
        return text.payment_to_text(self.spends)

    def to_json(self) -> dict:
        return {"request_id": self.request_id.hex(), "merchant_id": self.merchant_id,
                "amount": self.amount, "currency": self.currency, "pos_url": self.pos_url,
                "coins": len(self.spends), "status": self.status, "repeated": self.repeated,
                "receipt": self.receipt, "refusal": self.refusal, "payment": self.text,
                "error": self.error, "description": self.description}


def coin_from_trusted(body: bytes) -> Coin:
    """A coin from the wallet's own authenticated record (no re-validation)."""
    return Coin(body[0:32], body[32:64], body[64:96], body[96:128], body[128:160],
                body[160:192], int.from_bytes(body[192:224], "little"))


class _Raced(Exception):
    pass


class PayMixin(WalletBase):
    def check_request(self, envelope: SignedRequest) -> dict:
        """ECASH-1 5: the certificate against the pinned master key and the
        merchant's signature, before the payee is shown or anything is paid."""
        pinned = self.store.meta_text("master_public_key")
        if not pinned:
            raise NotRegistered("no bank key pinned yet: run `ecash wallet register` first")
        try:
            envelope.verify(bytes.fromhex(pinned), now=self.now())
        except EcashError as exc:
            raise RequestRefused(f"the payment request is not authentic ({exc.code}): {exc};"
                                 " do not pay it", exc.code) from None
        req = envelope.request
        if req.currency != self.currency:
            raise RequestRefused(f"the request is in {req.currency}, this wallet holds"
                                 f" {self.currency}", "currency_mismatch")
        if req.merchant_id == REDEMPTION_PAYEE:
            raise RequestRefused("requests for the bank's own payee are not paid here",
                                 "reserved_payee")
        return {"merchant_id": req.merchant_id, "amount": req.amount,
                "currency": req.currency, "pos_url": envelope.pos_url,
                "request_id": req.request_id.hex(), "timestamp_ms": req.timestamp_ms,
                "certificate_valid_until": envelope.certificate.valid_until}

    def pay(self, envelope: SignedRequest, *, send: bool = True,
            description: str | None = None) -> Payment:
        """Answer ``envelope`` (or return the identical earlier answer); with
        ``send`` and a ``pos_url``, POST it to the terminal (again, identically, if
        it was not confirmed) and check the receipt.
        A terminal that refuses, answers *pending* or cannot be reached raises
        :class:`TerminalError` after the payment is recorded; its ``outcome``
        says whether the coins were released (a valid signed refusal) or stay
        pending. ``description`` is what is being bought, as the terminal signed
        it (the caller checked the signature:
        :func:`ecash.wallet.request_source.resolve_request`); it is kept in the
        payment's history."""
        self.check_request(envelope)
        payment = self._answer(envelope, description)
        if send and envelope.pos_url and payment.status in ("answered", "refused"):
            self.send_to_terminal(payment)
        return payment

    # --- recording ----------------------------------------------------------------
    def stored_payment(self, request_id: bytes) -> Payment | None:
        row = self.store.conn.execute(
            "SELECT merchant_id, amount, currency, pos_url, payment, status, receipt, detail,"
            " refusal, description FROM payments WHERE request_id = ?",
            (request_id,)).fetchone()
        if row is None:
            return None
        spends = binary.payment_from_bytes(self.open_payment(request_id, bytes(row[4])))
        return Payment(request_id, row[0], row[1], row[2], row[3], spends, row[5], True,
                       json.loads(row[6]) if row[6] else None,
                       {"code": row[7]} if row[7] else None,
                       json.loads(row[8]) if row[8] else None, row[9])

    def stored_envelope(self, request_id: bytes) -> SignedRequest | None:
        """The signed request with its certificate, as it was paid (None for a
        redemption, or a payment recorded before the wallet kept them)."""
        row = self.store.conn.execute("SELECT envelope FROM payments WHERE request_id = ?",
                                      (request_id,)).fetchone()
        return wj.envelope_from_json(json.loads(row[0])) if row and row[0] else None

    def _answer(self, envelope: SignedRequest, description: str | None = None) -> Payment:
        req = envelope.request
        rid = req.request_id
        with self._lock:
            old = self.stored_payment(rid)
            if old is not None:
                return old
            now = self.now()
            ts = req.timestamp_ms // 1000
            check_request_time(req.timestamp_ms, self.now_ms())
            if req.amount <= 0:
                raise RequestRefused("the request is for nothing", "zero_amount")
            self.refresh_coins()
            for _ in range(3):
                try:
                    return self._record(envelope, now, ts, description)
                except _Raced:
                    self._load_coins()  # another process took a coin: look again
            raise WalletError("the wallet is busy; try again", "busy")

    def _record(self, envelope: SignedRequest, now: int, ts: int,
                description: str | None = None) -> Payment:
        req = envelope.request
        rid = req.request_id
        until = max(now, ts) + self.deposit_window + CLOCK_MARGIN_S
        with self.store.tx() as conn:
            old = conn.execute("SELECT 1 FROM payments WHERE request_id = ?",
                               (rid,)).fetchone()
            if old is not None:  # another process answered it a moment ago
                raise _Raced()
            self._check_limits(conn, req.amount, now)
            counts, starts = self.spendable_counts(max(now, ts))
            plan = select_counts(req.amount, counts)
            if plan is None:
                self._explain_shortfall(req.amount, max(now, ts))
            ids = self.take(plan, starts)
            bodies = self.coin_bodies(ids)
            spends = []
            for i in ids:
                body, value, sealed = bodies[i]
                spends.append(make_spend(coin_from_trusted(body),
                                         self.open_coin_secrets(body, value, sealed),
                                         self.u1, req))
            blob = binary.payment_to_bytes(spends)
            if self.set_coin_state(conn, ids, "pending", request_id=rid, pending_until=until,
                                   only_from="unspent") != len(ids):
                raise _Raced()
            conn.executemany("INSERT INTO answers (coin_id, request_id, at) VALUES (?, ?, ?)",
                             [(i, rid, now) for i in ids])
            conn.execute(
                "INSERT INTO payments (request_id, kind, merchant_id, amount, currency,"
                " timestamp_ms, pos_url, merchant_key, payment, n_coins, status, created_at,"
                " updated_at, envelope, description) VALUES (?, 'pay', ?, ?, ?, ?, ?, ?, ?, ?,"
                " 'answered', ?, ?, ?, ?)",
                (rid, req.merchant_id, req.amount, req.currency, req.timestamp_ms,
                 envelope.pos_url, envelope.certificate.public_key,
                 self.seal_payment(rid, blob), len(spends), now, now,
                 json.dumps(wj.envelope_to_json(envelope)), description))
        self.apply_coin_state(ids, "pending", request_id=rid, pending_until=until)
        faults.point("pay.recorded")
        return Payment(rid, req.merchant_id, req.amount, req.currency, envelope.pos_url,
                       spends, "answered", description=description)

    def _check_limits(self, conn, amount: int, now: int) -> None:
        p = self.policy
        if amount > p.single_payment_limit:
            raise LimitExceeded(f"single payment limit: {self._money(amount)} is over"
                                f" {self._money(p.single_payment_limit)}",
                                "single_payment_limit")
        mark = int(self.store.meta_text("online_mark") or 0)
        day, count = conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN created_at > ? THEN amount END), 0),"
            " COALESCE(SUM(CASE WHEN rowid > ? THEN 1 END), 0) FROM payments"
            " WHERE kind = 'pay' AND (created_at > ? OR rowid > ?)",
            (now - DAY, mark, now - DAY, mark)).fetchone()
        if day + amount > p.daily_offline_limit:
            raise LimitExceeded(f"daily offline limit: {self._money(day)} paid in the last"
                                f" 24 hours, the limit is {self._money(p.daily_offline_limit)}",
                                "daily_offline_limit")
        if count + 1 > p.consecutive_offline_limit:
            raise LimitExceeded(f"{count} payments since the wallet was last online (limit"
                                f" {p.consecutive_offline_limit}): run `ecash wallet sync`",
                                "consecutive_offline_limit")

    def _explain_shortfall(self, amount: int, at: int) -> None:
        spendable = self.spendable(at=at)
        total = sum(c.value for c in spendable)
        pending = sum(c.value for c in self._coins.values() if c.state == "pending")
        expired = sum(c.value for c in self._coins.values() if c.state == "unspent") \
            - total
        if total < amount:
            msg = (f"not enough spendable coins: {self._money(total)} spendable,"
                   f" {self._money(amount)} asked")
            if pending:
                msg += f"; {self._money(pending)} is pending (settled by `ecash wallet sync`)"
            if expired:
                msg += (f"; {self._money(expired)} is past its key's spend deadline"
                        " (`ecash wallet renew`)")
            raise InsufficientCoins(msg)
        live = sorted(self.withdrawable()) or sorted({c.value for c in spendable})
        value = suggest_break(amount, spendable, live)
        hint = (f"run `ecash wallet break --value {format_amount(value, self.currency)}`"
                if value is not None else "run `ecash wallet break`")
        raise CannotPay(f"your coins ({self._money(total)} spendable) cannot make exactly"
                        f" {self._money(amount)}; {hint}, then pay again")

    def _money(self, minor: int) -> str:
        """An amount in the holder's words (major units with the currency code)."""
        return format_money(minor, self.currency)

    # --- the terminal ----------------------------------------------------------------
    def send_to_terminal(self, payment: Payment) -> Payment:
        """POST the payment to its ``pos_url`` and act on the terminal's answer
        (5.1): a valid receipt confirms it; a valid signed refusal releases its
        coins; anything else leaves them pending and raises :class:`TerminalError`."""
        merchant_key = self._merchant_key(payment.request_id)
        body = {"spends": [wj.spend_to_json(s) for s in payment.spends]}
        try:
            with httpx.Client(timeout=TERMINAL_TIMEOUT_S,
                              transport=self.http_transport()) as http:
                r = http.post(payment.pos_url, json=body)
        except httpx.HTTPError as exc:
            self._mark(payment, "answered", "terminal_unreachable")
            raise TerminalError(f"could not reach the terminal ({exc.__class__.__name__});"
                                " the payment is recorded and pending: `ecash wallet pay`"
                                " with the same request, or `ecash wallet sync`, sends it"
                                " again", "terminal_unreachable") from None
        faults.point("pay.sent")
        if r.status_code == 200:
            try:
                data = wj.loads(r.content)
                receipt = wj.receipt_from_json(data["receipt"])
                self._check_receipt(receipt, payment, merchant_key)
            except (EcashError, KeyError, TypeError) as exc:
                self._mark(payment, "answered", "bad_receipt")
                raise TerminalError(f"the terminal's receipt is not valid ({exc}); the payment"
                                    " stays pending", "bad_receipt") from None
            self._confirm(payment, wj.receipt_to_json(receipt))
            faults.point("pay.confirmed")
            return payment
        if r.status_code == 202:
            wait = _retry_after(r)
            self._mark(payment, "answered", "terminal_pending")
            raise TerminalError("the terminal is checking the payment with the bank: its"
                                " coins stay pending; `ecash wallet sync` (or paying the"
                                f" same request again) in about {wait} s sends the identical"
                                " payment for the final answer", "payment_pending")
        code, detail = _problem(r)
        if r.status_code == 404:
            self._mark(payment, "answered", "unknown_request")
            raise TerminalError(f"the terminal does not know this request ({detail}); the"
                                " coins stay pending until the bank can no longer accept"
                                " them", "unknown_request")
        if r.status_code == 422:
            refusal, why = self._refusal_of(payment, r)
            if refusal is not None:
                self._release(payment, refusal)
                exc = TerminalError(f"the terminal refused the payment ({refusal.code}) and"
                                    " signed its refusal: the coins are spendable again;"
                                    " the refusal is kept as evidence", refusal.code)
                exc.outcome = "released"
                raise exc
            self._mark(payment, "refused", code)
            raise TerminalError(f"the terminal refused the payment ({code}) {why}; its"
                                " coins stay pending (ECASH-1 9.4)", code)
        self._mark(payment, "answered", "terminal_error")
        raise TerminalError(f"the terminal answered {r.status_code} ({code}); the payment"
                            " stays pending", "terminal_error")

    def _merchant_key(self, request_id: bytes) -> bytes:
        row = self.store.conn.execute("SELECT merchant_key FROM payments WHERE request_id = ?",
                                      (request_id,)).fetchone()
        if row is None or row[0] is None:
            raise WalletError("no certified merchant key is recorded for this payment",
                              "no_merchant_key")
        return bytes(row[0])

    def _refusal_of(self, payment: Payment, r: httpx.Response) -> tuple[Refusal | None, str]:
        """The refusal in a 422 answer if it is a valid refusal of exactly this
        payment, signed by the request's certified key whose certificate the
        pinned master key signed; else None and why not (for the holder)."""
        try:
            raw = r.json().get("refusal")
        except (ValueError, AttributeError):
            return None, "without a readable answer"
        if raw is None:
            return None, "without a signed refusal"
        envelope = self.stored_envelope(payment.request_id)
        pinned = self.store.meta_text("master_public_key")
        if envelope is None or not pinned:
            return None, "but the wallet kept no signed request to check its refusal against"
        try:
            refusal = wj.refusal_from_json(raw)
            envelope.verify(bytes.fromhex(pinned))  # as for the request (5); no clock: the
            # certificate may have lapsed since the request was paid
            refusal.verify(envelope.certificate.public_key, payment.request_id,
                           binary.payment_items(payment.spends))
        except EcashError as exc:
            return None, f"with a refusal that does not verify ({exc.code})"
        return refusal, ""

    def _release(self, payment: Payment, refusal: Refusal) -> None:
        """5.1: release the coins at once; keep the refusal beside the request
        and the spends (the payment's row is never deleted, so the evidence
        outlives the keys' ``deposit_end``)."""
        now = self.now()
        raw = wj.refusal_to_json(refusal)
        with self.store.tx() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT c.id FROM answers a JOIN coins c ON c.id = a.coin_id WHERE"
                " a.request_id = ? AND c.state = 'pending' AND c.request_id = ?",
                (payment.request_id, payment.request_id))]
            self.set_coin_state(conn, ids, "unspent", only_from="pending")
            # A disputed payment (its coins already spent) keeps its status and
            # reason: the refusal is what lets the wallet file the dispute.
            conn.execute("UPDATE payments SET status = CASE status WHEN 'disputed' THEN status"
                         " ELSE 'released' END, detail = CASE status WHEN 'disputed' THEN"
                         " detail ELSE ? END, refusal = ?, updated_at = ? WHERE request_id = ?",
                         (refusal.code, json.dumps(raw), now, payment.request_id))
        self.apply_coin_state(ids, "unspent")
        payment.refusal, payment.error = raw, {"code": refusal.code}
        payment.status = "disputed" if payment.status == "disputed" else "released"

    @staticmethod
    def _check_receipt(receipt: Receipt, payment: Payment, merchant_key: bytes) -> None:
        if receipt.request_id != payment.request_id or receipt.amount != payment.amount:
            raise EcashError("receipt is for another request or amount", "receipt_mismatch")
        receipt.verify(merchant_key)

    def _confirm(self, payment: Payment, receipt: dict) -> None:
        now = self.now()
        with self.store.tx() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT coin_id FROM answers WHERE request_id = ?", (payment.request_id,))]
            self.set_coin_state(conn, ids, "spent", only_from="pending")
            conn.execute("UPDATE payments SET status = 'confirmed', receipt = ?, detail = NULL,"
                         " updated_at = ? WHERE request_id = ?",
                         (json.dumps(receipt), now, payment.request_id))
        self.apply_coin_state(ids, "spent")
        payment.status, payment.receipt, payment.error = "confirmed", receipt, None

    def _mark(self, payment: Payment, status: str, detail: str) -> None:
        """Record a terminal's answer that is not final; a disputed payment
        stays disputed, with its reason."""
        with self.store.tx() as conn:
            conn.execute("UPDATE payments SET status = ?, detail = ?, updated_at = ? WHERE"
                         " request_id = ? AND status != 'disputed'",
                         (status, detail, self.now(), payment.request_id))
        if payment.status != "disputed":
            payment.status = status
        payment.error = {"code": detail}


def check_request_time(timestamp_ms: int, now_ms: int) -> None:
    """ECASH-1 5: refuse a request more than ten minutes from our clock, either
    way. A far-future one would lock the coins (9.4); an older one has expired
    as far as the wallet can tell (the envelope carries no expiry of its own,
    and a terminal may expire its requests sooner: it then signs a refusal
    with ``request_expired``, which releases the coins at once)."""
    if timestamp_ms > now_ms + CLOCK_SKEW_MS:
        raise RequestRefused("the request is dated more than ten minutes ahead of this"
                             " wallet's clock; check the clocks", "request_from_future")
    if timestamp_ms < now_ms - CLOCK_SKEW_MS:
        raise RequestRefused("the request is more than ten minutes old (expired); ask the"
                             " merchant for a new one", "request_expired")


def _retry_after(r: httpx.Response) -> int:
    try:
        wait = int(r.json().get("retry_after_s", 0))
    except (ValueError, TypeError, AttributeError):
        wait = 0
    return min(max(wait, 1), MAX_RETRY_AFTER_S)


def _problem(r: httpx.Response) -> tuple[str, str]:
    try:
        p = r.json()
        return str(p.get("code", "error")), str(p.get("detail", ""))[:300]
    except ValueError:
        return "error", r.text[:200]

