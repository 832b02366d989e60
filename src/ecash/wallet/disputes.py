"""Disputes (ECASH-1 5.1): payments a terminal refused or never answered whose
coins the bank nevertheless holds as spent.

Such a payment is never recorded as settled: the holder was shown a refusal
(or nothing) and may have paid again. The wallet keeps the evidence (the
signed request with its certificate, the spends, and the terminal's signed
refusal when it gave one) and shows it. With a signed refusal the holder has
proof that the merchant refused the very transcripts it deposited, so the
wallet files it with the bank (``POST /v1/accounts/{id}/disputes``), which
weighs it; without one there is nothing the bank can check, and the holder
takes the evidence to the merchant.
"""

from __future__ import annotations

import json

from ..wire import json as wj
from .core import WalletBase, bank_errors
from .errors import BankRefused, BankUnreachable

REASONS = {
    "deposited_after_refusal": "the terminal signed a refusal of this payment, yet the bank"
                               " holds its coins as spent",
    "spent_after_refusal": "the terminal refused this payment (without a valid signed"
                           " refusal), yet the bank holds its coins as spent",
    "spent_without_receipt": "the terminal never gave a final answer, yet the bank holds the"
                             " coins as spent",
}


class DisputeMixin(WalletBase):
    def disputes(self) -> list[dict]:
        """Every disputed payment with its evidence and, once filed, the bank's answer."""
        rows = self.store.conn.execute(
            "SELECT request_id, merchant_id, amount, currency, detail, envelope, refusal,"
            " dispute, created_at, updated_at FROM payments WHERE status = 'disputed'"
            " ORDER BY rowid").fetchall()
        out = []
        for rid, merchant, amount, currency, reason, envelope, refusal, dispute, at, upd in rows:
            rid = bytes(rid)
            payment = self.stored_payment(rid)  # type: ignore[attr-defined]
            out.append({
                "request_id": rid.hex(), "merchant_id": merchant, "amount": amount,
                "currency": currency, "reason": reason,
                "explanation": REASONS.get(reason or "", "disputed"),
                "created_at": at, "updated_at": upd,
                "filed": json.loads(dispute) if dispute else None,
                "evidence": {"request": json.loads(envelope) if envelope else None,
                             "payment": payment.text,
                             "refusal": json.loads(refusal) if refusal else None}})
        return out

    def file_disputes(self) -> list[dict]:
        """File every disputed payment that holds a signed refusal and has no
        answer from the bank yet (the bank answers the same dispute the same,
        so a lost answer is asked again at the next sync)."""
        out: list[dict] = []
        for (rid,) in self.store.conn.execute(
                "SELECT request_id FROM payments WHERE status = 'disputed' AND refusal IS NOT"
                " NULL AND dispute IS NULL ORDER BY rowid").fetchall():
            rid = bytes(rid)
            envelope = self.stored_envelope(rid)  # type: ignore[attr-defined]
            payment = self.stored_payment(rid)  # type: ignore[attr-defined]
            if envelope is None:
                continue
            refusal = wj.refusal_from_json(payment.refusal)
            try:
                with bank_errors():
                    answer = self.bank().dispute(self.account_id, envelope, payment.spends,
                                                 refusal)
            except BankUnreachable:
                break  # the next sync files it
            except BankRefused as exc:
                out.append({"request_id": rid.hex(), "filed": False, "error": exc.code})
                continue
            with self.store.tx() as conn:
                conn.execute("UPDATE payments SET dispute = ?, updated_at = ? WHERE"
                             " request_id = ?", (json.dumps(answer), self.now(), rid))
                self.store.event(self.now(), "dispute", payment.amount,
                                 f"{payment.merchant_id}: {answer.get('status')}")
            out.append({"request_id": rid.hex(), "filed": True, **answer})
        return out
