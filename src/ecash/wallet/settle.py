"""Going online: ``sync`` (resume, resend, settle pending coins per ECASH-1
9.4, reset the offline counters) and ``close`` (redeem everything, close
the account).

Which pending coins the bank holds as spent is learnt with the bank's
k-anonymous range query: the wallet sends the short SHA-256 prefixes of its
coins' serial numbers, mixed with random prefixes, on a separate
unauthenticated connection, and never a serial number itself.
"""

from __future__ import annotations

import hashlib
import random
import secrets as pysecrets

from ..crypto.payment import PaymentRequest, make_spend
from ..wire import binary
from . import faults
from .core import CLOCK_MARGIN_S, REDEMPTION_PAYEE, Progress, WalletBase, bank_errors
from .errors import TerminalError, WalletError
from .pay import coin_from_trusted

MIN_PREFIXES = 32  # every range query asks at least this many prefixes
PAD_FACTOR = 4  # ... and this many times as many as the wallet needs
REDEEM_BATCH = 256


def prefix_of(serial: bytes, bits: int) -> int:
    """The bank's bucket (31 bits of SHA-256) cut to ``bits``."""
    return (int.from_bytes(hashlib.sha256(serial).digest()[:4], "big") >> 1) >> (31 - bits)


def padded(own: set[int], bits: int) -> list[int]:
    space = 1 << bits
    want = min(space, max(MIN_PREFIXES, PAD_FACTOR * len(own)))
    if want * 2 > space:
        out = list(range(space)) if space <= 256 else None
        if out is not None:
            return out
    chosen = set(own)
    rng = random.SystemRandom()
    while len(chosen) < want:
        chosen.add(rng.randrange(space))
    out = list(chosen)
    rng.shuffle(out)
    return out


class SettleMixin(WalletBase):
    # --- the spent set ----------------------------------------------------------------
    def query_spent(self, coins: list[tuple[bytes, bytes]]) -> tuple[set[bytes], set[bytes]]:
        """``coins``: (serial, key_id). Returns (spent serials, serials of keys whose
        generation the bank has closed or does not know)."""
        if not coins:
            return set(), set()
        pub = self.public_bank()  # a fresh connection, no credential
        try:
            with bank_errors():
                gens = pub.generations()
                by_window = {(g["withdraw_start"], g["withdraw_end"], g["deposit_end"]): g
                             for g in gens}
                groups: dict[int, list[bytes]] = {}
                unknown: set[bytes] = set()
                bits: dict[int, int] = {}
                for serial, key_id in coins:
                    k = self.key(key_id)
                    g = by_window.get((k.withdraw_start, k.withdraw_end, k.deposit_end))
                    if g is None or g["closed"]:
                        unknown.add(serial)
                        continue
                    groups.setdefault(g["generation"], []).append(serial)
                    bits[g["generation"]] = g["prefix_bits"]
                spent: set[bytes] = set()
                for gen, serials in groups.items():
                    own = {prefix_of(s, bits[gen]) for s in serials}
                    asked = padded(own, bits[gen])
                    for i in range(0, len(asked), 256):
                        out = pub.spent_range(gen, asked[i:i + 256])
                        spent.update(bytes.fromhex(s) for s in out["serials"])
        finally:
            pub.close()
        mine = {s for s, _ in coins}
        return spent & mine, unknown

    def settle_pending(self) -> dict:
        """9.4: a pending coin the bank holds as spent is spent; one it does not
        hold becomes spendable once ``pending_until`` has passed; a coin whose
        key is past ``deposit_end`` has expired."""
        self.refresh_coins()
        now = self.now()
        busy = {bytes(r[0]) for r in self.store.conn.execute(
            "SELECT request_id FROM ops WHERE state = 'open' AND request_id IS NOT NULL")}
        rows = self.store.conn.execute(
            "SELECT id, serial, key_id, request_id, pending_until FROM coins"
            " WHERE state = 'pending'").fetchall()
        rows = [r for r in rows if r[3] is None or bytes(r[3]) not in busy]
        spent, unknown = self.query_spent([(bytes(r[1]), bytes(r[2])) for r in rows])
        to_spent, to_free, to_expired = [], [], []
        for cid, serial, key_id, _rid, until in rows:
            serial = bytes(serial)
            if serial in spent:
                to_spent.append(cid)
            elif serial in unknown or self.key(bytes(key_id)).deposit_end <= now:
                to_expired.append(cid)
            elif until is not None and now >= until:
                to_free.append(cid)
        dead = [c.id for c in self._coins.values() if c.state == "unspent"
                and self.key(c.key_id).deposit_end <= now]
        with self.store.tx() as conn:
            self.set_coin_state(conn, to_spent, "spent")
            self.set_coin_state(conn, to_free, "unspent")
            self.set_coin_state(conn, to_expired + dead, "expired")
            self._settle_payments(conn)
        self.apply_coin_state(to_spent, "spent")
        self.apply_coin_state(to_free, "unspent")
        self.apply_coin_state(to_expired + dead, "expired")
        return {"spent": len(to_spent), "freed": len(to_free),
                "freed_value": sum(self._coins[i].value for i in to_free if i in self._coins),
                "expired": len(to_expired) + len(dead),
                "still_pending": len(rows) - len(to_spent) - len(to_free) - len(to_expired)}

    def _settle_payments(self, conn) -> None:
        """A payment all of whose coins the bank holds is settled; one whose
        coins came back (9.4) has lapsed."""
        now = self.now()
        for rid, status in conn.execute(
                "SELECT request_id, status FROM payments WHERE status IN"
                " ('answered', 'refused', 'confirmed')").fetchall():
            coins = conn.execute(
                "SELECT c.state, c.request_id FROM answers a JOIN coins c ON c.id = a.coin_id"
                " WHERE a.request_id = ?", (rid,)).fetchall()
            if not coins:
                continue
            if all(c[0] == "spent" for c in coins):
                if status != "confirmed":
                    conn.execute("UPDATE payments SET status = 'settled', updated_at = ?"
                                 " WHERE request_id = ?", (now, rid))
            elif not any(c[0] == "pending" and bytes(c[1]) == bytes(rid) for c in coins):
                conn.execute("UPDATE payments SET status = 'lapsed', updated_at = ? WHERE"
                             " request_id = ?", (now, rid))

    # --- sync ------------------------------------------------------------------------------
    def sync(self, progress: Progress | None = None) -> dict:
        self.require_registered()
        fingerprint = self.refresh_keyset()
        resumed = self.resume(progress)  # type: ignore[attr-defined]
        resent = self.resend()
        settled = self.settle_pending()
        now = self.now()
        with self.store.tx() as conn:
            mark = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM payments").fetchone()[0]
            self.store.set_meta("online_mark", mark)
            self.store.set_meta("last_online_at", now)
            self.store.event(now, "sync", 0, f"{settled['spent']} settled,"
                             f" {settled['freed']} freed")
        soon = [c for c in self.spendable() if c.deadline < now + 30 * 86_400]
        return {"keyset_fingerprint": fingerprint, "resumed": resumed, "resent": resent,
                "settled": settled, "renew_suggested": len(soon)}

    def resend(self) -> list[dict]:
        """Send again, identically, every payment whose answer is unconfirmed:
        to its terminal, or (redemptions) to the bank."""
        out = []
        for (rid,) in self.store.conn.execute(
                "SELECT request_id FROM payments WHERE status = 'answered' AND"
                " ((kind = 'pay' AND pos_url != '') OR kind = 'redeem')").fetchall():
            rid = bytes(rid)
            payment = self.stored_payment(rid)  # type: ignore[attr-defined]
            kind, key = self.store.conn.execute(
                "SELECT kind, merchant_key FROM payments WHERE request_id = ?",
                (rid,)).fetchone()
            if kind == "redeem":
                out.append({"request_id": rid.hex(), "kind": kind,
                            **self._send_redemption(rid, payment.spends)})
                continue
            try:
                self.send_to_terminal(payment, bytes(key))  # type: ignore[attr-defined]
                out.append({"request_id": rid.hex(), "kind": kind, "status": "confirmed"})
            except TerminalError as exc:
                out.append({"request_id": rid.hex(), "kind": kind, "status": "pending",
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
        req = PaymentRequest(REDEMPTION_PAYEE, amount, self.currency, self.now_ms(),
                             pysecrets.token_bytes(16))
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
        ok = [ids[bytes(s.coin.A)] for s, v in zip(spends, verdicts, strict=True)
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

