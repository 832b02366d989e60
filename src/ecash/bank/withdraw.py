"""Withdrawal (load) and exchange, clause form only (ECASH-1 4, 9.1, 9.2).

A session is opened with two commitments per coin, derived from a stored
random nonce by a PRF under the bank's nonce key, so any worker can answer.
The answer debits the account and stores every ``(c0, c1, beta, r)`` in one
transaction; the same challenges again return the stored answers, any others
are refused, and expired sessions are never answered.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import func, select, update

from ..crypto import group
from ..crypto.params import g2
from ..crypto.payment import Spend
from ..crypto.withdrawal import bank_choose_branch, derive_commitment_nonce
from . import metrics
from .errors import BankError, conflict, not_found
from .ledger import flow_since, post
from .schema import accounts, withdraw_sessions
from .store import retrying

DAY = 86_400
COMMITMENT_BYTES = 128  # a0 b0 a1 b1
ANSWER_BYTES = 33  # beta || r


def pack_scalars(values: Sequence[int]) -> bytes:
    return b"".join(group.encode_scalar(v) for v in values)


class WithdrawMixin:
    def start_withdrawal(self, account_pk: int, key_ids: Sequence[bytes], *,  # type: ignore[misc]
                         redeem: Sequence[Spend] | None = None) -> dict:
        """Open a session: two commitments per coin (and, for an exchange, the
        checked redemption spends that the answer will redeem atomically)."""
        cfg = self.config
        n = len(key_ids)
        if not 1 <= n <= cfg.max_coins_per_session:
            raise BankError("bad_coin_count", f"ask for 1 to {cfg.max_coins_per_session} coins")
        infos = [self.withdrawable_key(k) for k in key_ids]
        total = sum(i.public.value for i in infos)
        redeem_blob, redeem_total = None, 0
        if redeem is not None:
            redeem_blob, redeem_total = self.check_redemption(redeem)
        with self.engine.connect() as conn:
            acct = self.account_row(conn, account_pk)
        if acct.status != "active":
            raise BankError("account_not_active", f"account is {acct.status}", 403)
        if acct.identity is None:
            raise BankError("identity_not_registered", "register an identity first", 409)
        if total > acct.balance + redeem_total:
            raise BankError("insufficient_funds", f"balance {acct.balance} < {total}", 402)
        nonce = secrets.token_bytes(32)
        I_g2 = group.add(acct.identity, g2)
        commitments = bytearray()
        for j in range(n):
            for branch in (0, 1):
                w = derive_commitment_nonce(self.keyring.nonce_key, nonce, j, branch)
                commitments += group.base_mul(w) + group.mul(I_g2, w)
        z = {i.public.key_id: self.holder_z(acct.identity, i) for i in infos}
        now = self.now()
        session_id = secrets.token_bytes(16)
        with self.engine.begin() as conn:
            self.account_row(conn, account_pk, lock=True)  # serialises the cap check
            outstanding = conn.execute(
                select(func.coalesce(func.sum(withdraw_sessions.c.n_coins), 0)).where(
                    withdraw_sessions.c.account == account_pk,
                    withdraw_sessions.c.state == "open",
                    withdraw_sessions.c.expires_at > now)).scalar_one()
            if outstanding + n > cfg.max_outstanding_coins:
                raise BankError("too_many_open_commitments",
                                f"{outstanding} commitments are open; finish or let them"
                                " expire first", 429)
            conn.execute(withdraw_sessions.insert().values(
                id=session_id, account=account_pk, kind="exchange" if redeem else "withdraw",
                state="open", nonce=nonce, created_at=now, expires_at=now + cfg.session_ttl_s,
                n_coins=n, total=total, key_ids=b"".join(key_ids),
                commitments=bytes(commitments), redeem=redeem_blob, redeem_total=redeem_total))
        return {
            "session_id": session_id.hex(), "expires_at": now + cfg.session_ttl_s,
            "total": total, "redeem_total": redeem_total,
            "z": {k.hex(): v.hex() for k, v in z.items()},
            "coins": [{"key_id": key_ids[j].hex(),
                       "commitments": [commitments[j * 128 + o:j * 128 + o + 32].hex()
                                       for o in (0, 32, 64, 96)]} for j in range(n)],
        }

    def answer_withdrawal(self, account_pk: int, session_id: bytes,  # type: ignore[misc]
                          challenges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """Debit and answer one branch per coin, once (9.1, 9.2)."""
        packed = pack_scalars([c for pair in challenges for c in pair])
        for c in (c for pair in challenges for c in pair):
            group.nonzero(c, "challenge")
        answers = retrying(lambda: self._answer(account_pk, session_id, challenges, packed))
        return answers

    def _answer(self, account_pk, session_id, challenges, packed):  # type: ignore[no-untyped-def]
        now = self.now()
        with self.engine.begin() as conn:
            s = conn.execute(select(withdraw_sessions).where(
                withdraw_sessions.c.id == session_id).with_for_update()).first()
            if s is None or s.account != account_pk:
                raise not_found("withdrawal session")
            if s.state == "answered":
                if s.challenges != packed:
                    raise conflict("challenges_mismatch", "this session was answered for other"
                                   " challenges; a commitment is answered once (ECASH-1 9.1)")
                return _unpack_answers(s.answers)
            if now >= s.expires_at:
                raise BankError("session_expired", "the session expired; start a new one", 410)
            if len(challenges) != s.n_coins:
                raise BankError("bad_challenges", f"expected {s.n_coins} challenge pairs")
            acct = self.account_row(conn, account_pk, lock=True)
            if acct.status != "active":
                raise BankError("account_not_active", f"account is {acct.status}", 403)
            ref = session_id.hex()
            me = f"acct:{account_pk}"
            balance = acct.balance
            redeemed = 0
            if s.kind == "exchange":
                redeemed = self.redeem_in_transaction(conn, account_pk, s.redeem, now)
                if redeemed != s.redeem_total:
                    raise BankError("redemption_refused", "a redeemed coin was refused", 409)
                post(conn, now, "redeem", "liability", me, redeemed, ref)
                balance += redeemed
            # an exchange replaces coins (exempt from the limits); only what it
            # withdraws beyond what it redeems is a load, counted as one
            loaded = max(s.total - redeemed, 0)
            if loaded:
                self._check_limits(conn, acct, loaded, now)
            if s.total > balance:
                raise BankError("insufficient_funds", f"balance {balance} < {s.total}", 402)
            answers = []
            for j, (c0, c1) in enumerate(challenges):
                key = self.key(s.key_ids[j * 32:(j + 1) * 32], conn)
                beta = bank_choose_branch()
                w = derive_commitment_nonce(self.keyring.nonce_key, s.nonce, j, beta)
                answers.append((beta, ((c1 if beta else c0) * key.x + w) % group.q))
            post(conn, now, "exchange", me, "liability", s.total - loaded, ref)
            post(conn, now, "load", me, "liability", loaded, ref)
            conn.execute(update(accounts).where(accounts.c.id == account_pk).values(
                balance=balance - s.total))
            conn.execute(update(withdraw_sessions).where(
                withdraw_sessions.c.id == session_id).values(
                    state="answered", challenges=packed, answered_at=now,
                    answers=b"".join(bytes([b]) + group.encode_scalar(r) for b, r in answers)))
        metrics.WITHDRAWN_COINS.inc(s.n_coins)
        return answers

    def _check_limits(self, conn, acct, total: int, now: int) -> None:  # type: ignore[no-untyped-def]
        me = f"acct:{acct.id}"
        today = now - now % DAY
        loaded_today = flow_since(conn, debit=me, kind="load", since=today)
        if loaded_today + total > acct.daily_load_limit:
            raise BankError("daily_load_limit", f"loaded {loaded_today} today; the daily limit"
                            f" is {acct.daily_load_limit}", 403)
        window = now - self.config.deposit_window_s
        # coins loaded minus coins redeemed; an exchange redeems (kind "redeem")
        # and re-issues (kind "exchange") the same value, which leaves it unchanged
        net = (flow_since(conn, debit=me, kind="load", since=window)
               + flow_since(conn, debit=me, kind="exchange", since=window)
               - flow_since(conn, credit=me, kind="redeem", since=window))
        if net + total > acct.net_load_limit:
            raise BankError("net_load_limit", f"net load {net} over the deposit window; the"
                            f" limit is {acct.net_load_limit}", 403)

    def withdrawal_records(self, account_pk: int) -> list[dict]:  # type: ignore[misc]
        """The public record of every answered withdrawal, for a restore (4, 9.7)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(withdraw_sessions).where(
                withdraw_sessions.c.account == account_pk,
                withdraw_sessions.c.state == "answered").order_by(
                    withdraw_sessions.c.answered_at, withdraw_sessions.c.id)).all()
        out = []
        for s in rows:
            answers = _unpack_answers(s.answers)
            coins = []
            for j in range(s.n_coins):
                cm = s.commitments[j * 128:(j + 1) * 128]
                ch = s.challenges[j * 64:(j + 1) * 64]
                coins.append({"key_id": s.key_ids[j * 32:(j + 1) * 32].hex(),
                              "commitments": [cm[o:o + 32].hex() for o in (0, 32, 64, 96)],
                              "challenges": [ch[:32].hex(), ch[32:].hex()],
                              "beta": answers[j][0],
                              "r": group.encode_scalar(answers[j][1]).hex()})
            out.append({"session_id": s.id.hex(), "kind": s.kind, "answered_at": s.answered_at,
                        "coins": coins})
        return out


def _unpack_answers(blob: bytes) -> list[tuple[int, int]]:
    return [(blob[i], int.from_bytes(blob[i + 1:i + 33], "little"))
            for i in range(0, len(blob), ANSWER_BYTES)]
