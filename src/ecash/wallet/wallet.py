"""The :class:`Wallet`: everything a holder does, as one object.

Open it once per process (``Wallet.open`` runs argon2id once), then call its
methods; each is crash-safe on its own (see the sibling modules)."""

from __future__ import annotations

import itertools
import json

from .core import WalletBase
from .disputes import DisputeMixin
from .pay import PayMixin
from .restore import RestoreMixin
from .settle import SettleMixin
from .withdraw import LoadMixin


class Wallet(LoadMixin, PayMixin, SettleMixin, DisputeMixin, RestoreMixin, WalletBase):
    def balance(self) -> dict:
        """Spendable coins per denomination, pending coins apart, deadlines."""
        self.refresh_coins()
        now = self.now()
        T = self.deposit_window if self.store.meta("policy") else 0
        by_value: dict[int, dict] = {}
        pending, unusable = [], 0
        deadlines: dict[int, dict] = {}
        for c in self._coins.values():
            key = self.key(c.key_id)
            deadline = key.deposit_end - T
            if c.state == "pending":
                pending.append({"value": c.value, "until": c.pending_until,
                                "request_id": c.request_id.hex() if c.request_id else None})
                continue
            if deadline <= now:
                unusable += c.value
                continue
            slot = by_value.setdefault(c.value, {"value": c.value, "count": 0})
            slot["count"] += 1
            d = deadlines.setdefault(deadline, {"spend_deadline": deadline, "count": 0,
                                                "value": 0})
            d["count"] += 1
            d["value"] += c.value
        spendable = sum(v["value"] * v["count"] for v in by_value.values())
        disputes = [{"request_id": bytes(r[0]).hex(), "merchant_id": r[1], "amount": r[2],
                     "reason": r[3], "filed": json.loads(r[4])["status"] if r[4] else None}
                    for r in self.store.conn.execute(
                        "SELECT request_id, merchant_id, amount, detail, dispute FROM payments"
                        " WHERE status = 'disputed' ORDER BY rowid")]
        return {
            "currency": self.currency if T else None,
            "spendable": spendable,
            "pending": sum(p["value"] for p in pending),
            "past_spend_deadline": unusable,
            "denominations": [by_value[v] for v in sorted(by_value)],
            "pending_coins": sorted(pending, key=lambda p: (p["until"] or 0, p["value"])),
            "spend_deadlines": [deadlines[d] for d in sorted(deadlines)],
            "disputes": disputes,
            "account_id": self.account_id, "bank": self.bank_url,
            "keyset_fingerprint": self.store.meta_text("keyset_fingerprint"),
            "master_key_fingerprint": self.master_fingerprint,
            "last_online_at": int(self.store.meta_text("last_online_at") or 0) or None,
        }

    def history(self, limit: int = 50) -> list[dict]:
        """Events (loads, exchanges, syncs...) and payments, newest first; a
        payment carries the sale's ``description`` as the terminal signed it
        (None when it had none, and for every other event)."""
        rows = self.store.conn.execute(
            "SELECT at, kind, amount, detail, NULL FROM events UNION ALL"
            " SELECT created_at, kind, amount, 'to ' || merchant_id || ' (' || n_coins ||"
            " ' coins, ' || status || ')', description FROM payments WHERE kind = 'pay'"
            " ORDER BY 1 DESC LIMIT ?", (limit,)).fetchall()
        return [{"at": r[0], "kind": r[1], "amount": r[2], "detail": r[3],
                 "description": r[4]} for r in rows]

    def payments(self, limit: int = 50) -> list[dict]:
        rows = self.store.conn.execute(
            "SELECT request_id, kind, merchant_id, amount, currency, n_coins, status,"
            " receipt, detail, created_at, updated_at, refusal, dispute, description"
            " FROM payments ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [{"request_id": bytes(r[0]).hex(), "kind": r[1], "merchant_id": r[2],
                 "amount": r[3], "currency": r[4], "coins": r[5], "status": r[6],
                 "receipt": json.loads(r[7]) if r[7] else None, "detail": r[8],
                 "created_at": r[9], "updated_at": r[10],
                 "refusal": json.loads(r[11]) if r[11] else None,
                 "dispute": json.loads(r[12]) if r[12] else None,
                 "description": r[13]} for r in rows]

    def audit(self) -> dict:
        """Invariants of the file (used by tests and ``ecash wallet check``):
        every pending coin's request was recorded, no coin was answered for a
        second request within ``T`` of the first (9.4) unless the first was
        refused with a valid signed refusal (5.1), every coin's secrets open."""
        problems = []
        for cid, rid in self.store.conn.execute(
                "SELECT id, request_id FROM coins WHERE state = 'pending' AND"
                " request_id IS NOT NULL"):
            if not self.store.conn.execute(
                    "SELECT 1 FROM answers WHERE coin_id = ? AND request_id = ?",
                    (cid, rid)).fetchone():
                problems.append(f"coin {cid} pending for an unrecorded request")
        T = self.deposit_window if self.store.meta("policy") else 0
        times: dict[int, list[int]] = {}
        for cid, at in self.store.conn.execute(
                "SELECT coin_id, at FROM answers WHERE coin_id IN (SELECT coin_id FROM answers"
                " GROUP BY coin_id HAVING COUNT(*) > 1) AND request_id NOT IN (SELECT request_id"
                " FROM payments WHERE refusal IS NOT NULL) ORDER BY coin_id, at"):
            times.setdefault(cid, []).append(at)
        for cid, ats in times.items():  # 9.4: answered again only after T
            if any(b - a < T for a, b in itertools.pairwise(ats)):
                problems.append(f"coin {cid} answered for two requests within T")
        for cid, body, value, sealed in self.store.conn.execute(
                "SELECT id, body, value, secrets FROM coins"):
            try:
                self.open_coin_secrets(bytes(body), value, bytes(sealed))
            except Exception as exc:
                problems.append(f"coin {cid}: {exc}")
        return {"ok": not problems, "problems": problems}
