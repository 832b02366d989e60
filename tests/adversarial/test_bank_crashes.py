"""Crash the bank at random moments under load and settlement traffic.

A real ``ecash bank serve --workers 2`` on PostgreSQL is killed with SIGKILL
(the whole process group: supervisor and workers) at 20+ random moments
while holders withdraw and a merchant deposits; clients retry exactly as a
wallet or terminal would (same challenges, same batch). Afterwards: no
deposit credited twice, none lost, no withdrawal debited without its answers
being retrievable, every coin recovered, and the audit balanced.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from ecash.bank.client import BankClient, BankHTTPError, BankUnreachable
from ecash.bank.service import Bank
from ecash.crypto import group, verify_coin
from ecash.crypto import registration as reg
from ecash.crypto.payment import PaymentRequest, make_spend
from ecash.crypto.withdrawal import Commitment, user_blind, user_finish
from ecash.serving.threaded import free_port

from ..bankkit import SignerProcess, fresh_database
from ..rediskit import redis_server

KILLS = 20


class Server:
    def __init__(self, db_url: str, signer_socket: Path, limits_url: str) -> None:
        self.db_url, self.signer_socket, self.port = db_url, signer_socket, free_port()
        self.limits_url = limits_url  # two workers share their rate limits there
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = Path(sys.executable).with_name("ecash")
        self.proc = subprocess.Popen(
            [str(exe), "bank", "serve", "--db", self.db_url, "--signer", str(self.signer_socket),
             "--port", str(self.port), "--workers", "2",
             "--rate-limit-storage", self.limits_url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        probe = BankClient(self.url, timeout=2)
        deadline = time.monotonic() + 60
        while True:
            try:
                probe.http.get("/v1/health").raise_for_status()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError("bank did not restart") from None
                time.sleep(0.05)
        probe.close()

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def retry(fn, stop: threading.Event | None = None):
    """Call ``fn`` until the bank answers (a lost reply is retried unchanged)."""
    while True:
        try:
            return fn()
        except BankUnreachable:
            time.sleep(0.05)
        except BankHTTPError as exc:
            if exc.status != 503:
                raise
            time.sleep(0.05)


def test_sigkill_at_random_moments_loses_nothing(tmp_path, request):
    with fresh_database("postgres", tmp_path) as db_url, ExitStack() as stack:
        bank, op_token = Bank.init(db_url, tmp_path / "keys")
        # the signer (the keys' process) runs on; only the HTTP server is killed
        signer = SignerProcess(tmp_path / "keys", tmp_path / "signer.sock")
        request.addfinalizer(signer.stop)  # also when the test fails
        signer.start()
        limits_url = stack.enter_context(redis_server(tmp_path))
        server = Server(db_url, tmp_path / "signer.sock", limits_url)
        server.start()
        operator = BankClient(server.url, op_token, timeout=5)
        ks = operator.keyset()
        now = time.time()
        key = next(k for k in ks.keys if k.value == 2 and k.withdraw_start <= now < k.withdraw_end)
        m_acct, _ = operator.open_account("crash shop")
        merchant = BankClient(server.url, operator.register_merchant(m_acct, "crash-shop"),
                              timeout=5)
        holders = []
        for i in range(2):
            acct, tok = operator.open_account(f"crash holder {i}")
            operator.credit(acct, 100_000, "in")
            u1 = group.random_scalar()
            c = BankClient(server.url, tok, timeout=5)
            c.register(acct, reg.prove(u1, acct))
            holders.append((acct, c, u1))

        stop = threading.Event()
        coins: list[tuple] = []  # (coin, secrets, u1)
        sessions: list[tuple] = []  # (holder, offer, states) every session ever opened
        deposited: list[list] = []  # batches whose verdicts came back
        lock = threading.Lock()
        errors: list[BaseException] = []

        def withdrawer(acct: str, client: BankClient, u1: int) -> None:
            I = reg.identity_of(u1)
            try:
                while not stop.is_set():
                    offer = retry(lambda: client.start_withdrawal(acct, [key.key_id] * 3))
                    z = bytes.fromhex(offer["z"][key.key_id.hex()])
                    states = [user_blind(key, I, z, [
                        Commitment(*(bytes.fromhex(h) for h in c["commitments"][:2])),
                        Commitment(*(bytes.fromhex(h) for h in c["commitments"][2:]))])
                        for c in offer["coins"]]
                    with lock:  # "persisted" before the challenges leave
                        sessions.append(((acct, client, u1), offer, states))
                    answers = retry(lambda: client.answer(
                        acct, offer["session_id"], [s.challenges for s in states]))  # noqa: B023
                    with lock:
                        coins.extend((*user_finish(s, r, b), u1)
                                     for s, (b, r) in zip(states, answers, strict=True))
            except BaseException as exc:  # surfaced by the main thread
                errors.append(exc)

        def depositor() -> None:
            try:
                while not stop.is_set():
                    with lock:
                        batch, coins[:4] = coins[:4], []
                    if not batch:
                        time.sleep(0.05)
                        continue
                    req = PaymentRequest("crash-shop", 2 * len(batch), "CNY",
                                         int(time.time() * 1000), secrets.token_bytes(16))
                    spends = [make_spend(c, s, u1, req) for c, s, u1 in batch]
                    verdicts = retry(lambda: merchant.deposit(spends))  # noqa: B023
                    assert all(v["status"] == "accepted" for v in verdicts), verdicts
                    with lock:
                        deposited.append(spends)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=withdrawer, args=h) for h in holders]
        threads.append(threading.Thread(target=depositor))
        for t in threads:
            t.start()
        rng = random.Random(7)
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 0.8))
            server.kill()
            server.start()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors

        # every session's debit has retrievable answers; unanswered ones debited nothing
        answered_total = {}
        for (acct, client, _u1), offer, states in sessions:
            try:
                answers = client.answer(acct, offer["session_id"],
                                        [s.challenges for s in states])
            except BankHTTPError as exc:
                assert exc.code == "session_expired"
                continue
            answered_total[acct] = answered_total.get(acct, 0) + offer["total"]
            for s, (b, r) in zip(states, answers, strict=True):
                coin, _ = user_finish(s, r, b)
                verify_coin(coin, key)
        for acct, client, _ in holders:
            info = client.account(acct)
            assert info["balance"] == 100_000 - answered_total.get(acct, 0)
        # every deposited batch credited exactly once: a replay now credits nothing
        n_deposited = sum(len(b) for b in deposited)
        assert n_deposited > 0
        for spends in deposited[:5]:
            assert all(v["replay"] and v["credited"] == 0 and v["amount"] == 2
                       for v in merchant.deposit(spends))
        assert operator.operator_account(m_acct)["balance"] == 2 * n_deposited
        audit = operator.audit()
        assert audit["ok"], audit
        assert audit["figures"]["deposited_or_redeemed"] == 2 * n_deposited
        for c in (operator, merchant, *(h[1] for h in holders)):
            c.close()
        server.kill()
        signer.stop()
        bank.engine.dispose()
