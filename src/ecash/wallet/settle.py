"""Going online: ``sync`` (resume, resend, settle pending coins per ECASH-1
9.4, file disputes, reset the offline counters) and ``close`` (redeem
everything, close the account).

Which pending coins the bank holds as spent is learnt with the bank's
k-anonymous range query (:mod:`.spentquery`): the wallet sends bucket
prefixes of its coins' ``coin_id``s, sized by itself and mixed with random
ones, on a separate unauthenticated connection, and never a ``coin_id``.

A payment refused or left unanswered by its terminal whose coins turn up
spent is never *settled*: it is *disputed* (5.1), shown to the holder with the
evidence, and filed with the bank when the wallet holds the terminal's signed
refusal.
"""

from __future__ import annotations

from ..crypto.payment import make_spend
from ..wire import binary
from ..wire.redemption import redemption_request
from . import faults
from .core import CLOCK_MARGIN_S, REDEMPTION_PAYEE, Progress, WalletBase, bank_errors
from .errors import TerminalError, WalletError
from .pay import coin_from_trusted
from .spentquery import SpentQuery

REDEEM_BATCH = 256
# the terminal-side codes of a payment sent and not finally answered (``detail``)
UNANSWERED = ("terminal_unreachable", "terminal_pending", "unknown_request", "bad_receipt",
              "terminal_error")


class SettleMixin(WalletBase):
    spent_query_warnings: list[str]

    # --- the spent set ----------------------------------------------------------------
    def query_spent(self, coins: list[tuple[bytes, bytes]]) -> tuple[set[bytes], set[bytes]]:
        """``coins``: (coin_id, key_id). Returns (spent coin_ids, coin_ids of keys
        whose generation the bank has closed or does not know). What the query
        did not trust is left in ``spent_query_warnings``."""
        self.spent_query_warnings = []
        if not coins:
            return set(), set()
        pub = self.public_bank()  # a fresh connection, no credential
        try:
            with bank_errors():
                gens = pub.generations()
                by_window = {(g["withdraw_start"], g["withdraw_end"], g["deposit_end"]): g
                             for g in gens}
                groups: dict[int, tuple[dict, list[bytes]]] = {}
                unknown: set[bytes] = set()
                for coin_id, key_id in coins:
                    k = self.key(key_id)
                    g = by_window.get((k.withdraw_start, k.withdraw_end, k.deposit_end))
                    if g is None or g["closed"]:
                        unknown.add(coin_id)
                        continue
                    groups.setdefault(g["generation"], (g, []))[1].append(coin_id)
                query = SpentQuery(pub)
                spent: set[bytes] = set()
                for g, coin_ids in groups.values():
                    spent |= query.spent(g, coin_ids)
        finally:
            pub.close()
        self.spent_query_warnings = query.warnings
        return spent, unknown

    def settle_pending(self) -> dict:
        """9.4: a pending coin the bank holds as spent is spent; one it does not
        hold becomes spendable once ``pending_until`` has passed; a coin whose
        key is past ``deposit_end`` has expired. A coin released by a signed
        refusal (5.1) that the bank holds as spent, within its request's
        deposit window, was deposited by the merchant that refused it: spent,
        and its payment disputed."""
        self.refresh_coins()
        now = self.now()
        busy = {bytes(r[0]) for r in self.store.conn.execute(
            "SELECT request_id FROM ops WHERE state = 'open' AND request_id IS NOT NULL")}
        rows = self.store.conn.execute(
            "SELECT id, serial, key_id, request_id, pending_until FROM coins"
            " WHERE state = 'pending'").fetchall()
        rows = [r for r in rows if r[3] is None or bytes(r[3]) not in busy]
        released = self.store.conn.execute(
            "SELECT c.id, c.serial, c.key_id, p.request_id FROM payments p"
            " JOIN answers a ON a.request_id = p.request_id JOIN coins c ON c.id = a.coin_id"
            " WHERE p.status = 'released' AND c.state = 'unspent' AND p.timestamp_ms / 1000 > ?",
            (now - self.deposit_window - CLOCK_MARGIN_S,)).fetchall()
        spent, unknown = self.query_spent(
            [(bytes(r[1]), bytes(r[2])) for r in rows + [r[:4] for r in released]])
        to_spent, to_free, to_expired = [], [], []
        for cid, serial, key_id, _rid, until in rows:
            serial = bytes(serial)
            if serial in spent:
                to_spent.append(cid)
            elif serial in unknown or self.key(bytes(key_id)).deposit_end <= now:
                to_expired.append(cid)
            elif until is not None and now >= until:
                to_free.append(cid)
        deposited = [(cid, bytes(rid)) for cid, serial, _k, rid in released
                     if bytes(serial) in spent]
        dead = [c.id for c in self._coins.values() if c.state == "unspent"
                and self.key(c.key_id).deposit_end <= now]
        with self.store.tx() as conn:
            self.set_coin_state(conn, to_spent, "spent")
            self.set_coin_state(conn, to_free, "unspent")
            self.set_coin_state(conn, to_expired + dead, "expired")
            self.set_coin_state(conn, [cid for cid, _ in deposited], "spent",
                                only_from="unspent")
            for rid in {rid for _, rid in deposited}:
                conn.execute("UPDATE payments SET status = 'disputed', detail ="
                             " 'deposited_after_refusal', updated_at = ? WHERE request_id = ?",
                             (now, rid))
            disputed = self._settle_payments(conn)
        self.apply_coin_state(to_spent, "spent")
        self.apply_coin_state(to_free, "unspent")
        self.apply_coin_state(to_expired + dead, "expired")
        self.apply_coin_state([cid for cid, _ in deposited], "spent")
        return {"spent": len(to_spent), "freed": len(to_free),
                "freed_value": sum(self._coins[i].value for i in to_free if i in self._coins),
                "expired": len(to_expired) + len(dead),
                "still_pending": len(rows) - len(to_spent) - len(to_free) - len(to_expired),
                "disputed": disputed + len({rid for _, rid in deposited}),
                "warnings": list(self.spent_query_warnings)}

    def _settle_payments(self, conn) -> int:
        """A payment all of whose coins the bank holds is settled, unless its
        terminal refused it or never answered: then any coin spent makes it
        disputed. One whose coins came back (9.4) has lapsed. Returns the
        number newly disputed."""
        now = self.now()
        disputed = 0
        for rid, status, detail, kind in conn.execute(
                "SELECT request_id, status, detail, kind FROM payments WHERE status IN"
                " ('answered', 'refused')").fetchall():
            coins = conn.execute(
                "SELECT c.state, c.request_id FROM answers a JOIN coins c ON c.id = a.coin_id"
                " WHERE a.request_id = ?", (rid,)).fetchall()
            if not coins:
                continue
            at_terminal = kind == "pay" and (status == "refused" or detail in UNANSWERED)
            if at_terminal and any(c[0] == "spent" for c in coins):
                reason = "spent_after_refusal" if status == "refused" else "spent_without_receipt"
                conn.execute("UPDATE payments SET status = 'disputed', detail = ?, updated_at = ?"
                             " WHERE request_id = ?", (reason, now, rid))
                disputed += 1
            elif all(c[0] == "spent" for c in coins):
                conn.execute("UPDATE payments SET status = 'settled', updated_at = ?"
                             " WHERE request_id = ?", (now, rid))
            elif not any(c[0] == "pending" and bytes(c[1]) == bytes(rid) for c in coins):
                conn.execute("UPDATE payments SET status = 'lapsed', updated_at = ? WHERE"
                             " request_id = ?", (now, rid))
        return disputed

    # --- sync ------------------------------------------------------------------------------
    def sync(self, progress: Progress | None = None) -> dict:
        self.require_registered()
        fingerprint = self.refresh_keyset()
        resumed = self.resume(progress)  # type: ignore[attr-defined]
        resent = self.resend()
        settled = self.settle_pending()
        filed = self.file_disputes()  # type: ignore[attr-defined]
        now = self.now()
        with self.store.tx() as conn:
            mark = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM payments").fetchone()[0]
            self.store.set_meta("online_mark", mark)
            self.store.set_meta("last_online_at", now)
            self.store.event(now, "sync", 0, f"{settled['spent']} settled,"
                             f" {settled['freed']} freed")
            for warning in settled["warnings"]:
                self.store.event(now, "warning", 0, warning)
        soon = [c for c in self.spendable() if c.deadline < now + 30 * 86_400]
        return {"keyset_fingerprint": fingerprint, "resumed": resumed, "resent": resent,
                "settled": settled, "disputes_filed": filed, "renew_suggested": len(soon),
                "warnings": settled["warnings"]}

    def resend(self) -> list[dict]:
        """Send again, identically, every payment without a final answer: to its
        terminal (also a disputed one without a signed refusal: a receipt still
        settles it), or (redemptions) to the bank."""
        out = []
        for rid, kind in self.store.conn.execute(
                "SELECT request_id, kind FROM payments WHERE (status = 'answered' AND"
                " ((kind = 'pay' AND pos_url != '') OR kind = 'redeem')) OR (status = 'disputed'"
                " AND kind = 'pay' AND pos_url != '' AND refusal IS NULL)").fetchall():
            rid = bytes(rid)
            payment = self.stored_payment(rid)  # type: ignore[attr-defined]
            if kind == "redeem":
                out.append({"request_id": rid.hex(), "kind": kind,
                            **self._send_redemption(rid, payment.spends)})
                continue
            try:
                self.send_to_terminal(payment)  # type: ignore[attr-defined]
                out.append({"request_id": rid.hex(), "kind": kind, "status": "confirmed"})
            except TerminalError as exc:
                out.append({"request_id": rid.hex(), "kind": kind,
                            "status": "released" if exc.outcome == "released" else "pending",
                            "error": exc.code})
        return out

    # --- close ----------------------------------------------------------------------
    def redeem(self, coin_ids: list[int]) -> dict:
        """Pay coins to the bank's own payee (the holder's account is credited)."""
        total = {"accepted": 0, "value": 0, "refused": 0}
        for i in range(0, len(coin_ids), REDEEM_BATCH):
            batch = coin_ids[i:i + REDEEM_BATCH]
            rid, spends = self._record_redemption(batch)
            res = self._send_redemption(rid, spends)
            for k in total:
                total[k] += res[k]
        return total

    def _record_redemption(self, coin_ids: list[int]) -> tuple[bytes, list]:
        now = self.now()
        amount = sum(self._coins[i].value for i in coin_ids)
        req = redemption_request(self.account_id, amount, self.currency, self.now_ms())
        rid = req.request_id
        until = now + self.deposit_window + CLOCK_MARGIN_S
        bodies = self.coin_bodies(coin_ids)
        spends = [make_spend(coin_from_trusted(bodies[i][0]),
                             self.open_coin_secrets(*bodies[i]), self.u1, req)
                  for i in coin_ids]
        blob = binary.payment_to_bytes(spends)
        with self.store.tx() as conn:
            if self.set_coin_state(conn, coin_ids, "pending", request_id=rid,
                                   pending_until=until, only_from="unspent") != len(coin_ids):
                raise WalletError("a coin changed state meanwhile; try again", "busy")
            conn.executemany("INSERT INTO answers (coin_id, request_id, at) VALUES (?, ?, ?)",
                             [(i, rid, now) for i in coin_ids])
            conn.execute(
                "INSERT INTO payments (request_id, kind, merchant_id, amount, currency,"
                " timestamp_ms, pos_url, payment, n_coins, status, created_at, updated_at)"
                " VALUES (?, 'redeem', ?, ?, ?, ?, '', ?, ?, 'answered', ?, ?)",
                (rid, REDEMPTION_PAYEE, amount, req.currency, req.timestamp_ms,
                 self.seal_payment(rid, blob), len(spends), now, now))
        self.apply_coin_state(coin_ids, "pending", request_id=rid, pending_until=until)
        faults.point("redeem.recorded")
        return rid, spends

    def _send_redemption(self, rid: bytes, spends: list) -> dict:
        with bank_errors():
            verdicts = self.bank().redeem(self.account_id, spends)
        ids = {r[1]: r[0] for r in self.store.conn.execute(
            "SELECT c.id, c.serial FROM answers a JOIN coins c ON c.id = a.coin_id"
            " WHERE a.request_id = ?", (rid,))}
        ok = [ids[s.coin.coin_id] for s, v in zip(spends, verdicts, strict=True)
              if v["status"] == "accepted"]
        value = sum(v["credited"] for v in verdicts)
        now = self.now()
        with self.store.tx() as conn:
            self.set_coin_state(conn, ok, "spent")
            status = "settled" if len(ok) == len(spends) else "refused"
            detail = None if status == "settled" else ",".join(
                sorted({v.get("code", v["status"]) for v in verdicts
                        if v["status"] != "accepted"}))
            conn.execute("UPDATE payments SET status = ?, detail = ?, updated_at = ? WHERE"
                         " request_id = ?", (status, detail, now, rid))
            self.store.event(now, "redeem", sum(self._coins[i].value for i in ok
                                                if i in self._coins), f"{len(ok)} coins")
        self.apply_coin_state(ok, "spent")
        return {"accepted": len(ok), "value": value, "refused": len(spends) - len(ok)}

    def close_account(self, progress: Progress | None = None) -> dict:
        """Redeem every spendable coin, then ask the bank to close the account.
        Pending coins are left: run ``sync`` and ``close`` again once settled."""
        self.sync(progress)
        now = self.now()
        ids = [c.id for c in self._coins.values() if c.state == "unspent"
               and self.key(c.key_id).deposit_end > now]
        redeemed = self.redeem(ids) if ids else {"accepted": 0, "value": 0, "refused": 0}
        with bank_errors():
            closed = self.bank().close_account(self.account_id)
        pending = [c for c in self._coins.values() if c.state == "pending"]
        with self.store.tx():
            self.store.set_meta("closed_at", now)
            self.store.event(now, "close", redeemed["value"], "account closed")
        return {"redeemed": redeemed, "account": closed,
                "pending_coins": len(pending), "pending_value": sum(c.value for c in pending),
                "pending_until": max((c.pending_until or 0 for c in pending), default=None)}

