"""Registering, loading and exchanging (break, renew): the clause withdrawal
of ECASH-1 4 and 9.2 made crash-safe.

An *op* (a load or an exchange) is recorded before anything is sent; it is
split into chunks, one bank session each. For every session the bank's offer
is stored as soon as it arrives, the challenges are stored *before* they are
sent, and a crash or a lost reply is resumed by sending the same challenges
again (the bank answers them once and returns the same answers). The coins'
secrets are derived from the seed and the offer (9.7), so nothing secret has
to be stored until the coins exist.
"""

from __future__ import annotations

import json

from ..bank.client import BankClient, BankHTTPError
from ..bank.client import BankUnreachable as ClientUnreachable
from ..crypto import group
from ..crypto import registration as reg
from ..crypto.errors import EcashError
from ..crypto.payment import make_spend
from ..crypto.withdrawal import Commitment, WithdrawalState, user_blind, user_finish
from ..money import format_money
from ..wire import binary
from ..wire import json as wj
from ..wire.redemption import redemption_request
from . import faults
from .core import CLOCK_MARGIN_S, REDEMPTION_PAYEE, Progress, WalletBase, bank_errors
from .errors import BankRefused, BankUnreachable, LimitExceeded, WalletError
from .selection import NotRepresentable, choose_denominations, suggest_break

CHUNK = 64  # coins per bank session
EXCHANGE_BATCH = 128  # old coins per exchange
MAX_SESSION_RETRIES = 3


class LoadMixin(WalletBase):
    # --- registration ----------------------------------------------------------
    def register(self, bank_url: str, account_id: str, credential: str, *,
                 master_key: bytes | None = None) -> dict:
        """Pin the bank's master key, take its keyset, register ``I = g1^u1``."""
        old = self.account_id
        if old is not None and (old != account_id or self.bank_url != bank_url.rstrip("/")):
            raise WalletError(f"this wallet is registered to account {old} at"
                              f" {self.bank_url}", "already_registered")
        bank_url = bank_url.rstrip("/")
        with bank_errors(), BankClient(bank_url, transport=self.http_transport()) as pub:
            ks = pub.keyset()
        fingerprint = self.accept_keyset(ks, expect_master=master_key)
        try:
            proof = reg.prove(self.u1, account_id)
        except EcashError as exc:
            raise WalletError(str(exc), "bad_account_id") from None
        try:
            with bank_errors(), BankClient(bank_url, credential,
                                           transport=self.http_transport()) as b:
                b.register(account_id, proof)
        except BankRefused as exc:
            if exc.code == "identity_registered":
                raise WalletError(f"account {account_id} is registered with another identity:"
                                  " this seed phrase does not belong to it",
                                  "identity_mismatch") from None
            raise
        with self.store.tx():
            self.store.set_meta("bank_url", bank_url)
            self.store.set_meta("account_id", account_id)
            self._vault["credential"] = credential
            self._save_vault()
            self.store.set_meta("last_online_at", self.now())
            self.store.event(self.now(), "register", 0, f"{account_id} at {bank_url}")
        return {"account_id": account_id, "bank": bank_url, "identity": self.I.hex(),
                "master_key_fingerprint": self.master_fingerprint,
                "keyset_fingerprint": fingerprint}

    # --- load --------------------------------------------------------------------
    def load(self, amount: int, progress: Progress | None = None) -> dict:
        """Withdraw ``amount`` in a spread of denominations (holding limit applies).

        Interrupted ops are finished first; if one of them was a load of the
        same amount, it *is* this load (re-running a killed command does not
        load twice)."""
        self.require_registered()
        if not isinstance(amount, int) or amount <= 0:
            raise WalletError("the amount must be a positive integer (minor units)",
                              "bad_amount")
        self.refresh_keyset()
        for r in self.resume(progress):
            if r["kind"] == "load" and r["amount"] == amount and r["state"] == "done":
                return {**r, "resumed": True}
        policy = self.policy
        held = self.held_value()
        if held + amount > policy.holding_limit:
            cur = policy.currency
            raise LimitExceeded(f"holding limit: the wallet holds {format_money(held, cur)}"
                                " and may hold at most"
                                f" {format_money(policy.holding_limit, cur)}; load at most"
                                f" {format_money(max(policy.holding_limit - held, 0), cur)}",
                                "holding_limit")
        live = self.withdrawable()
        if not live:
            raise WalletError("the bank has no key to withdraw with now", "no_withdrawable_key")
        try:
            values = choose_denominations(amount, sorted(live),
                                          [c.value for c in self.spendable()])
        except NotRepresentable as exc:
            raise WalletError(str(exc), "bad_amount") from None
        op_id = self._new_op("load", amount, values)
        faults.point("load.intent")
        return self._run_op(op_id, progress)

    def _new_op(self, kind: str, amount: int, values: list[int],
                request_id: bytes | None = None) -> int:
        chunks = [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)]
        now = self.now()
        with self.store.tx() as c:
            cur = c.execute("INSERT INTO ops (kind, state, amount, chunks, request_id,"
                            " created_at, updated_at) VALUES (?, 'open', ?, ?, ?, ?, ?)",
                            (kind, amount, json.dumps(chunks), request_id, now, now))
            return cur.lastrowid

    def resume(self, progress: Progress | None = None) -> list[dict]:
        """Finish every op a crash or a lost reply left open."""
        out = []
        for (op_id,) in self.store.conn.execute(
                "SELECT id FROM ops WHERE state = 'open' ORDER BY id").fetchall():
            try:
                out.append({**self._run_op(op_id, progress), "interrupted": True})
            except BankRefused as exc:
                row = self._op(op_id)
                out.append({"op": op_id, "kind": row["kind"], "amount": row["amount"],
                            "state": "failed", "error": exc.code, "interrupted": True})
        return out

    # --- the engine ----------------------------------------------------------------
    def _op(self, op_id: int) -> dict:
        r = self.store.conn.execute(
            "SELECT id, kind, state, amount, chunks, request_id FROM ops WHERE id = ?",
            (op_id,)).fetchone()
        return {"id": r[0], "kind": r[1], "state": r[2], "amount": r[3],
                "chunks": json.loads(r[4]), "request_id": bytes(r[5]) if r[5] else None}

    def _run_op(self, op_id: int, progress: Progress | None) -> dict:
        op = self._op(op_id)
        total = sum(len(c) for c in op["chunks"])
        done = 0
        bank = self.bank()
        for i, values in enumerate(op["chunks"]):
            if not self._chunk_done(op_id, i):
                try:
                    self._run_chunk(bank, op, i, values)
                except BankRefused as exc:
                    if 400 <= exc.status < 500 and exc.status != 429:
                        self._fail_op(op, exc)  # refused before any debit: final
                    raise
            done += len(values)
            if progress:
                progress(done, total)
        now = self.now()
        with self.store.tx() as conn:
            conn.execute("UPDATE ops SET state = 'done', updated_at = ? WHERE id = ?",
                         (now, op_id))
            if op["kind"] != "load":
                self._settle_exchange(conn, op)
            self.store.event(now, op["kind"], op["amount"], f"{total} new coins")
        return {"op": op_id, "kind": op["kind"], "amount": op["amount"], "coins": total,
                "state": "done"}

    def _chunk_done(self, op_id: int, chunk: int) -> bool:
        return self.store.conn.execute(
            "SELECT 1 FROM sessions WHERE op_id = ? AND chunk = ? AND state = 'done'",
            (op_id, chunk)).fetchone() is not None

    def _fail_op(self, op: dict, exc: BankRefused) -> None:
        with self.store.tx() as conn:
            conn.execute("UPDATE ops SET state = 'failed', detail = ?, updated_at = ?"
                         " WHERE id = ?", (f"{exc.code}: {exc}", self.now(), op["id"]))
            if op["request_id"] is not None:
                conn.execute("UPDATE payments SET status = 'refused', detail = ?,"
                             " updated_at = ? WHERE request_id = ?",
                             (exc.code, self.now(), op["request_id"]))
            self.store.event(self.now(), op["kind"] + "-failed", op["amount"], exc.code)

    def _session(self, op_id: int, chunk: int) -> dict | None:
        r = self.store.conn.execute(
            "SELECT id, state, offer, challenges FROM sessions WHERE op_id = ? AND chunk = ?"
            " AND state IN ('offered', 'challenged') ORDER BY created_at DESC LIMIT 1",
            (op_id, chunk)).fetchone()
        if r is None:
            return None
        return {"id": bytes(r[0]), "state": r[1], "offer": json.loads(r[2]),
                "challenges": bytes(r[3]) if r[3] is not None else None}

    def _run_chunk(self, bank: BankClient, op: dict, chunk: int, values: list[int]) -> None:
        prefix = "load" if op["kind"] == "load" else "exchange"
        for _attempt in range(MAX_SESSION_RETRIES):
            s = self._session(op["id"], chunk)
            if s is None:
                s = self._start_session(bank, op, chunk, values)
                faults.point(f"{prefix}.offer")
            states = None
            if s["state"] == "offered":
                states = self._blind(s["id"], s["offer"])
                packed = b"".join(group.encode_scalar(c) for st in states for c in st.challenges)
                with self.store.tx() as conn:
                    conn.execute("UPDATE sessions SET state = 'challenged', challenges = ?"
                                 " WHERE id = ?", (packed, s["id"]))
                s["challenges"] = packed
                faults.point(f"{prefix}.challenges")
            ch = s["challenges"]
            pairs = [(int.from_bytes(ch[i:i + 32], "little"),
                      int.from_bytes(ch[i + 32:i + 64], "little"))
                     for i in range(0, len(ch), 64)]
            try:
                answers = bank.answer(self.account_id, s["id"].hex(), pairs)
            except BankHTTPError as exc:
                if exc.status == 429 or exc.status >= 500:
                    raise BankRefused(exc.status, exc.code, exc.detail, exc.extra) from None
                # Any other refusal happened before the bank's commit: nothing was
                # debited with these challenges, and this session is finished.
                self._end_session(s["id"], "failed")
                if exc.code == "session_expired":
                    continue
                raise BankRefused(exc.status, exc.code, exc.detail, exc.extra) from None
            except ClientUnreachable as exc:
                raise BankUnreachable(f"{exc}; the load resumes with `ecash wallet sync`"
                                      ) from None
            faults.point(f"{prefix}.answered")
            if states is None:
                states = self._blind(s["id"], s["offer"])
            self._store_coins(op, s["id"], states, answers)
            faults.point(f"{prefix}.stored")
            return
        raise BankRefused(410, "session_expired", "the bank's sessions kept expiring")

    def _start_session(self, bank: BankClient, op: dict, chunk: int, values: list[int]) -> dict:
        live = self.withdrawable()
        if any(v not in live for v in values):
            self.refresh_keyset()
            live = self.withdrawable()
            missing = sorted({v for v in values if v not in live})
            if missing:
                raise BankRefused(409, "no_withdrawable_key",
                                  f"no key to withdraw {missing} with now")
        key_ids = [live[v].key_id for v in values]
        with bank_errors():
            if op["kind"] == "load":
                offer = bank.start_withdrawal(self.account_id, key_ids)
            else:
                offer = bank.start_exchange(self.account_id, self._op_spends(op), key_ids)
        session_id = self._check_offer(offer, key_ids)
        now = self.now()
        with self.store.tx() as conn:
            conn.execute("INSERT INTO sessions (id, op_id, chunk, state, offer, created_at,"
                         " expires_at) VALUES (?, ?, ?, 'offered', ?, ?, ?)",
                         (session_id, op["id"], chunk, json.dumps(offer), now,
                          int(offer.get("expires_at", now))))
        return {"id": session_id, "state": "offered", "offer": offer, "challenges": None}

    def _check_offer(self, offer: dict, key_ids: list[bytes]) -> bytes:
        try:
            sid = wj.hex_bytes(offer["session_id"], 16, "session_id")
            coins = offer["coins"]
            if [wj.hex_bytes(c["key_id"], 32, "key_id") for c in coins] != key_ids:
                raise WalletError("the bank's offer is for other keys", "bad_bank_answer")
            for c in coins:
                if len(c["commitments"]) != 4:
                    raise WalletError("an offer needs 4 commitments a coin", "bad_bank_answer")
                for h in c["commitments"]:
                    wj.element(h, "commitment")
            for kid in set(key_ids):
                self.remember_z(kid, wj.element(offer["z"][kid.hex()], "z"))
        except (KeyError, TypeError, EcashError) as exc:
            raise WalletError(f"the bank sent a malformed offer: {exc}",
                              "bad_bank_answer") from None
        return sid

    def _blind(self, session_id: bytes, offer: dict) -> list[WithdrawalState]:
        states = []
        for j, c in enumerate(offer["coins"]):
            key_id = bytes.fromhex(c["key_id"])
            cm = [bytes.fromhex(h) for h in c["commitments"]]
            commitments = (Commitment(cm[0], cm[1]), Commitment(cm[2], cm[3]))
            secrets, blinding = self._deriver.coin(session_id, j, key_id, commitments)
            z = bytes.fromhex(offer["z"][c["key_id"]])
            states.append(user_blind(self.key(key_id), self.I, z, commitments, secrets,
                                     blinding))
        return states

    def _store_coins(self, op: dict, session_id: bytes, states: list[WithdrawalState],
                     answers: list[tuple[int, int]]) -> None:
        if len(answers) != len(states):
            raise WalletError("the bank answered another number of coins", "bad_bank_answer")
        now = self.now()
        rows = []
        for st, (beta, r) in zip(states, answers, strict=True):
            try:
                coin, cs = user_finish(st, r, beta)
            except EcashError as exc:
                raise WalletError(f"the bank's answer does not verify ({exc}); the session is"
                                  " kept for an audit", "bad_bank_answer") from None
            body = binary.coin_to_bytes(coin)
            value = self.key(coin.key_id).value
            rows.append((coin.coin_id, coin.key_id, value, body,
                         self.seal_coin_secrets(body, value, cs), "unspent", None, None,
                         "load" if op["kind"] == "load" else "exchange", session_id, now))
        with self.store.tx() as conn:
            self.insert_coins(conn, rows)
            conn.execute("UPDATE sessions SET state = 'done', finished_at = ? WHERE id = ?",
                         (now, session_id))
        self._load_coins()

    def _end_session(self, session_id: bytes, state: str) -> None:
        with self.store.tx() as conn:
            conn.execute("UPDATE sessions SET state = ?, finished_at = ? WHERE id = ?",
                         (state, self.now(), session_id))

    # --- exchanges: break and renew ------------------------------------------------
    def _op_spends(self, op: dict) -> list:
        row = self.store.conn.execute("SELECT payment FROM payments WHERE request_id = ?",
                                      (op["request_id"],)).fetchone()
        return binary.payment_from_bytes(self.open_payment(op["request_id"], bytes(row[0])))

    def _settle_exchange(self, conn, op: dict) -> None:
        ids = [r[0] for r in conn.execute("SELECT coin_id FROM answers WHERE request_id = ?",
                                          (op["request_id"],))]
        self.set_coin_state(conn, ids, "spent")
        conn.execute("UPDATE payments SET status = 'settled', updated_at = ? WHERE"
                     " request_id = ?", (self.now(), op["request_id"]))
        self.apply_coin_state(ids, "spent")

    def exchange(self, kind: str, coin_ids: list[int], new_values: list[int],
                 progress: Progress | None = None) -> dict:
        """Redeem ``coin_ids`` to the bank and withdraw ``new_values`` in one
        atomic bank operation. The old coins are answered for the bank's
        redemption request (recorded first) and pending until it is done."""
        amount = sum(self._coins[i].value for i in coin_ids)
        if amount != sum(new_values):
            raise ValueError("an exchange keeps the value")
        now = self.now()
        request = redemption_request(self.account_id, amount, self.currency, self.now_ms())
        rid = request.request_id
        until = now + self.deposit_window + CLOCK_MARGIN_S
        bodies = self.coin_bodies(coin_ids)
        spends = []
        for i in coin_ids:
            body, value, sealed = bodies[i]
            spends.append(make_spend(binary.coin_from_bytes(body),
                                     self.open_coin_secrets(body, value, sealed), self.u1,
                                     request))
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
                " VALUES (?, 'exchange', ?, ?, ?, ?, '', ?, ?, 'answered', ?, ?)",
                (rid, REDEMPTION_PAYEE, amount, request.currency, request.timestamp_ms,
                 self.seal_payment(rid, blob), len(spends), now, now))
            op_id = self._new_op(kind, amount, sorted(new_values), request_id=rid)
        self.apply_coin_state(coin_ids, "pending", request_id=rid, pending_until=until)
        faults.point("exchange.intent")
        return self._run_op(op_id, progress)

    def break_coin(self, amount: int | None = None, value: int | None = None,
                   progress: Progress | None = None) -> dict:
        """Exchange one coin for smaller ones: the coin of ``value``, or the one
        that makes ``amount`` payable exactly, or else the largest coin."""
        self.require_registered()
        self.refresh_keyset()
        self.resume(progress)
        self.refresh_coins()
        spendable = self.spendable()
        live = sorted(self.withdrawable())
        if not spendable:
            raise WalletError("no spendable coin to break", "nothing_to_break")
        if value is None and amount is not None:
            value = suggest_break(amount, spendable, live)
            if value is None:
                raise WalletError(f"no single coin's exchange makes {amount} payable",
                                  "cannot_break")
        if value is None:
            value = max(c.value for c in spendable)
        victims = sorted((c for c in spendable if c.value == value), key=lambda c: c.deadline)
        if not victims:
            raise WalletError(f"no spendable coin of value {value}", "no_such_coin")
        smaller = [d for d in live if d < value]
        rest = [c.value for c in spendable if c.coin_id != victims[0].coin_id]
        try:
            parts = choose_denominations(value, smaller, rest)
        except NotRepresentable as exc:
            raise WalletError(f"cannot break {value}: {exc}", "cannot_break") from None
        out = self.exchange("break", [victims[0].coin_id], parts, progress)
        return {**out, "broken": value, "into": parts}

    def renew(self, within_s: int = 30 * 86_400, progress: Progress | None = None) -> dict:
        """Exchange every unspent coin whose key's spend deadline is within
        ``within_s`` (or past, while the bank still takes it) for new coins."""
        self.require_registered()
        self.refresh_keyset()
        self.resume(progress)
        self.refresh_coins()
        now = self.now()
        T = self.deposit_window
        due = sorted((c for c in self._coins.values() if c.state == "unspent"
                      and self.key(c.key_id).deposit_end - T < now + within_s
                      and self.key(c.key_id).deposit_end > now
                      and not self.key(c.key_id).withdraw_start <= now
                      < self.key(c.key_id).withdraw_end), key=lambda c: c.id)
        live = sorted(self.withdrawable())
        results = []
        for i in range(0, len(due), EXCHANGE_BATCH):
            batch = due[i:i + EXCHANGE_BATCH]
            total = sum(c.value for c in batch)
            values = choose_denominations(total, live, [c.value for c in self.spendable()])
            results.append(self.exchange("renew", [c.id for c in batch], values, progress))
        return {"renewed_coins": len(due), "amount": sum(c.value for c in due),
                "exchanges": results}
