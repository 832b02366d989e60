"""Withdrawal (load) and exchange, clause form only (ECASH-1 4, 9.1, 9.2).

A session is opened with two commitments per coin, made by the signer from a
nonce it issues (stored with the session, so any worker can have it
answered). The answer debits the account and stores every ``(c0, c1, beta,
r)`` in one transaction, the signer's answer asked for inside it; the same
challenges again return the stored answers, any others are refused (by this
module and, for a worker that would not, by the signer), and expired sessions
are never answered.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import select

from ..crypto.payment import Spend
from ..money import format_money
from . import metrics
from .errors import BankError, conflict, not_found
from .ledger import LoadFlows, flows_of, load_flows, post_step
from .schema import withdraw_sessions
from .signer import ANSWER_BYTES, CHALLENGE_PAIR_BYTES, check_challenges
from .store import Sql, retrying
from .txn import CONNECTION, Pipeline, Steps, run_steps

DAY = 86_400
COMMITMENT_BYTES = 128  # a0 b0 a1 b1


# The two transactions of a withdrawal run as plain SQL (see store.Sql): through
# SQLAlchemy they cost the bank as much CPU as a third of the coins' group work.
_LOCK_ACCOUNT = Sql("SELECT status, identity, balance, daily_load_limit, net_load_limit"
                    " FROM accounts WHERE id = %(pk)s FOR UPDATE")
_OPEN_COINS_SQL = ("SELECT coalesce(sum(n_coins), 0) FROM withdraw_sessions"
                   " WHERE account = %(pk)s AND state = 'open' AND expires_at > %(now)s")
_OPEN_COINS = Sql(_OPEN_COINS_SQL)
_IDENTITY = Sql("SELECT identity FROM accounts WHERE id = %(pk)s")


def _insert_session(*extra: str) -> Sql:
    """The session row, inserted only if the account (already locked by the
    statement before) may open it: active, the identity the commitments were
    made for, the funds, the open-commitment cap. One round trip opens a
    session; a refusal inserts nothing and is explained from the locked row.

    The open-coin count is a subquery of its own statement, run after the lock
    was granted: on PostgreSQL (READ COMMITTED) a statement's snapshot is taken
    when it starts, so a count inside the locking statement would miss the
    session a concurrent start had committed while this one waited."""
    names = ("id", "account", "kind", "state", "nonce", "created_at", "expires_at", "n_coins",
             "total", "key_ids", "commitments", *extra)
    values = ("%(id)s", "%(pk)s", "%(kind)s", "'open'", "%(nonce)s", "%(now)s",
              "%(expires_at)s", "%(n)s", "%(total)s", "%(key_ids)s", "%(commitments)s",
              *(f"%({c})s" for c in extra))
    return Sql(f"INSERT INTO withdraw_sessions ({', '.join(names)}) SELECT {', '.join(values)}"
               " FROM accounts WHERE id = %(pk)s AND status = 'active'"
               " AND identity = %(identity)s AND balance + %(redeem_total)s >= %(total)s"
               f" AND ({_OPEN_COINS_SQL}) + %(n)s <= %(cap)s RETURNING 1")


# two forms: a NULL parameter in a SELECT list would reach PostgreSQL as text
_INSERT_WITHDRAWAL = _insert_session()
_INSERT_EXCHANGE = _insert_session("redeem", "redeem_total")
# the session and its account, both locked, in one statement
_LOCK_SESSION = Sql("SELECT s.account, s.kind, s.state, s.expires_at, s.n_coins, s.total,"
                    " s.key_ids, s.nonce, s.challenges, s.answers, s.redeem, s.redeem_total,"
                    " a.status, a.identity, a.balance, a.daily_load_limit, a.net_load_limit"
                    " FROM withdraw_sessions s JOIN accounts a ON a.id = s.account"
                    " WHERE s.id = %(sid)s AND s.account = %(pk)s FOR UPDATE")
_SET_BALANCE = Sql("UPDATE accounts SET balance = %(balance)s WHERE id = %(pk)s")
_MARK_ANSWERED = Sql("UPDATE withdraw_sessions SET state = 'answered', challenges = %(packed)s,"
                     " answered_at = %(now)s, answers = %(blob)s WHERE id = %(sid)s")


def refuse_inactive(status: str) -> None:
    """Refuse a withdrawal from an account that is not active. A frozen one is
    refused as ``account_frozen``, which the driver's caller completes with
    the reason and the case (``Bank.frozen_explained``, read after the
    transaction: the steps hold the account's lock)."""
    if status == "frozen":
        raise BankError("account_frozen", "the account is frozen", 403)
    if status != "active":
        raise BankError("account_not_active", f"account is {status}", 403)


class _Account(NamedTuple):
    status: str
    identity: bytes | None
    balance: int
    daily_load_limit: int
    net_load_limit: int


class _Session(NamedTuple):
    account: int
    kind: str
    state: str
    expires_at: int
    n_coins: int
    total: int
    key_ids: bytes
    nonce: bytes
    challenges: bytes | None
    answers: bytes | None
    redeem: bytes | None
    redeem_total: int


class WithdrawMixin:
    """The two steps of a withdrawal, each written once as transaction steps
    (:mod:`.txn`): the methods run them, ``*_steps`` hand them to a driver.
    The signer is asked twice per session: ``commit`` before the start's
    transaction, ``respond`` inside the answer's, once its checks passed."""

    def start_withdrawal(self, account_pk: int, key_ids: Sequence[bytes], *,  # type: ignore[misc]
                         redeem: Sequence[Spend] | None = None) -> dict:
        """Open a session: two commitments per coin (and, for an exchange, the
        checked redemption spends that the answer will redeem atomically)."""
        with self.frozen_explained(account_pk):
            return run_steps(self.engine, self.start_steps(account_pk, key_ids, redeem=redeem))

    def start_steps(self, account_pk: int, key_ids: Sequence[bytes], *,  # type: ignore[misc]
                    redeem: Sequence[Spend] | None = None) -> Steps[dict]:
        cfg = self.config
        n = len(key_ids)
        if not 1 <= n <= cfg.max_coins_per_session:
            raise BankError("bad_coin_count", f"ask for 1 to {cfg.max_coins_per_session} coins")
        keys = {k: self.withdrawable_key(k) for k in dict.fromkeys(key_ids)}  # each key once
        total = sum(keys[k].public.value for k in key_ids)
        redeem_blob, redeem_total = None, 0
        if redeem is not None:
            redeem_blob, redeem_total = self.check_redemption(redeem, account_pk)
        # The commitments (the signer's costly part) are made before the
        # transaction, for the identity last seen on this account; the insert
        # requires that one.
        identity = self._identity_hint.get(account_pk)
        if identity is None:
            ((identity,),), = yield Pipeline([(_IDENTITY, {"pk": account_pk})], commit=True)
        params = {"pk": account_pk, "n": n, "total": total, "key_ids": b"".join(key_ids),
                  "kind": "exchange" if redeem else "withdraw", "redeem": redeem_blob,
                  "redeem_total": redeem_total, "cap": cfg.max_outstanding_coins}
        packed_ids = b"".join(key_ids)
        for _ in range(3):  # again only when the identity was registered meanwhile
            if identity is None:  # nothing to commit to: the insert refuses
                nonce, commitments, zs = bytes(32), b"", {}
            else:
                made = self.signer.commit(identity, packed_ids)
                metrics.COMMITMENT_GROUP_CPU.inc(made.group_cpu_s)
                nonce, commitments, zs = made.nonce, made.commitments, made.z
            session_id, now = secrets.token_bytes(16), self.now()
            params.update(id=session_id, nonce=nonce, now=now, identity=identity,
                          expires_at=now + cfg.session_ttl_s, commitments=commitments)
            locked, inserted = yield Pipeline(
                [(_LOCK_ACCOUNT, {"pk": account_pk}),
                 (_INSERT_EXCHANGE if redeem else _INSERT_WITHDRAWAL, params)], commit=True)
            if inserted:
                break
            acct = _Account(*locked[0])
            yield from self._refuse_start(account_pk, acct, identity, total, redeem_total, now)
            identity = acct.identity  # commit anew, for the registered one
        else:
            raise AssertionError("an identity is registered once")
        if len(self._identity_hint) > 100_000:
            self._identity_hint.clear()
        self._identity_hint[account_pk] = identity
        hex_id = {k: k.hex() for k in keys}
        hexed = commitments.hex()  # one conversion, cut into the 4n commitments
        parts = [hexed[i:i + 64] for i in range(0, len(hexed), 64)]
        return {
            "session_id": session_id.hex(), "expires_at": now + cfg.session_ttl_s,
            "total": total, "redeem_total": redeem_total,
            "z": {hex_id[k]: zs[k].hex() for k in keys},
            "coins": [{"key_id": hex_id[k], "commitments": parts[4 * j:4 * j + 4]}
                      for j, k in enumerate(key_ids)],
        }

    def _refuse_start(self, account_pk: int, acct: _Account,  # type: ignore[misc]
                      identity: bytes | None, total: int, redeem_total: int,
                      now: int) -> Steps[None]:
        """Why the locked account refused a session; returns only when its
        identity is not the one the commitments were made for."""
        refuse_inactive(acct.status)
        if acct.identity is None:
            raise BankError("identity_not_registered", "register an identity first", 409)
        if total > acct.balance + redeem_total:
            money = self.config.currency
            raise BankError("insufficient_funds", f"the balance {format_money(acct.balance, money)}"
                            f" is less than {format_money(total, money)}", 402)
        if acct.identity != identity:
            return
        ((outstanding,),), = yield Pipeline([(_OPEN_COINS, {"pk": account_pk, "now": now})],
                                            commit=True)
        raise BankError("too_many_open_commitments", f"{outstanding} commitments are open;"
                        " finish or let them expire first", 429)

    def answer_withdrawal(self, account_pk: int, session_id: bytes,  # type: ignore[misc]
                          challenges: bytes) -> list[tuple[int, bytes]]:
        """Debit and answer one branch per coin, once (9.1, 9.2): ``(beta, r)``
        per coin, ``r`` encoded. ``challenges`` is ``c0 || c1`` per coin, each a
        32-byte scalar encoding (the form they are stored and compared in)."""
        with self.frozen_explained(account_pk):
            return retrying(lambda: run_steps(
                self.engine, self.answer_steps(account_pk, session_id, challenges)))

    def answer_steps(self, account_pk: int, session_id: bytes,  # type: ignore[misc]
                     packed: bytes) -> Steps[list[tuple[int, bytes]]]:
        """:meth:`answer_withdrawal`'s transaction; a driver's ``retrying`` runs
        it again (made anew) after a race or a broken connection."""
        check_challenges(packed)
        now = self.now()
        me = f"acct:{account_pk}"
        # session, account and the account's load flows in one round trip;
        # the flows are read after the account lock, before any redemption
        found, (flows_row,) = yield Pipeline([
            (_LOCK_SESSION, {"sid": session_id, "pk": account_pk}),
            load_flows(me, today=now - now % DAY, window=now - self.config.deposit_window_s)])
        if not found:  # no such session, or another account's
            raise not_found("withdrawal session")
        s, acct = _Session(*found[0][:12]), _Account(*found[0][12:])
        if s.state == "answered":
            if s.challenges != packed:
                raise conflict("challenges_mismatch", "this session was answered for other"
                               " challenges; a commitment is answered once (ECASH-1 9.1)")
            yield Pipeline([], commit=True)
            return _unpack_answers(s.answers)
        if now >= s.expires_at:
            raise BankError("session_expired", "the session expired; start a new one", 410)
        if len(packed) != s.n_coins * CHALLENGE_PAIR_BYTES:
            raise BankError("bad_challenges", f"expected {s.n_coins} challenge pairs")
        refuse_inactive(acct.status)
        ref = session_id.hex()
        balance = acct.balance
        redeemed = 0
        journal = []
        if s.kind == "exchange":
            conn = yield CONNECTION
            redeemed = self.redeem_in_transaction(conn, account_pk, s.redeem, now)
            if redeemed != s.redeem_total:
                raise BankError("redemption_refused", "a redeemed coin was refused", 409)
            journal.append(post_step(now, "redeem", "liability", me, redeemed, ref))
            balance += redeemed
        # an exchange replaces coins (exempt from the limits); only what it
        # withdraws beyond what it redeems is a load, counted as one
        loaded = max(s.total - redeemed, 0)
        if loaded:
            _check_limits(acct, flows_of(flows_row), loaded, self.config.currency)
        if s.total > balance:
            raise BankError("insufficient_funds", f"balance {balance} < {s.total}", 402)
        # the session is locked and every check passed: the signer answers
        # (a retry of this transaction gets the same answer from it)
        blob = self.signer.respond(s.nonce, s.key_ids, packed)
        journal += [post_step(now, kind, me, "liability", amount, ref)
                    for kind, amount in (("exchange", s.total - loaded), ("load", loaded))
                    if amount]
        yield Pipeline([
            *journal,
            (_SET_BALANCE, {"pk": account_pk, "balance": balance - s.total}),
            (_MARK_ANSWERED, {"sid": session_id, "packed": packed, "now": now, "blob": blob})],
            commit=True)
        metrics.WITHDRAWN_COINS.inc(s.n_coins)
        return _unpack_answers(blob)

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
                cm = s.commitments[j * COMMITMENT_BYTES:(j + 1) * COMMITMENT_BYTES]
                ch = s.challenges[j * 64:(j + 1) * 64]
                coins.append({"key_id": s.key_ids[j * 32:(j + 1) * 32].hex(),
                              "commitments": [cm[o:o + 32].hex() for o in (0, 32, 64, 96)],
                              "challenges": [ch[:32].hex(), ch[32:].hex()],
                              "beta": answers[j][0],
                              "r": answers[j][1].hex()})
            out.append({"session_id": s.id.hex(), "kind": s.kind, "answered_at": s.answered_at,
                        "coins": coins})
        return out


def _check_limits(acct: _Account, flows: LoadFlows, total: int, currency: str) -> None:
    m = lambda v: format_money(v, currency)  # noqa: E731
    if flows.loaded_today + total > acct.daily_load_limit:
        raise BankError("daily_load_limit", f"loaded {m(flows.loaded_today)} today; the daily"
                        f" limit is {m(acct.daily_load_limit)}", 403)
    if flows.net_in_window + total > acct.net_load_limit:
        raise BankError("net_load_limit", f"net load {m(flows.net_in_window)} over the deposit"
                        f" window; the limit is {m(acct.net_load_limit)}", 403)


def _unpack_answers(blob: bytes) -> list[tuple[int, bytes]]:
    return [(blob[i], blob[i + 1:i + 33]) for i in range(0, len(blob), ANSWER_BYTES)]
