"""A terminal process killed (SIGKILL) between verifying a payment and answering
it loses nothing and stores nothing twice; a deposit killed after the bank
answered is retried safely. Real ``ecash merchant`` processes, real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ecash.merchant.crash import ENV
from ecash.serving.threaded import free_port
from ecash.wire import json as wj

from ..bankkit import pay_request
from .kit import (
    bank_balance,
    counts,
    decompose,
    ecash_command,
    new_terminal,
    pay_url,
    post_payment,
    run_cli,
)


@contextmanager
def serve_process(store: Path, tmp: Path, crash_at: str | None = None
                  ) -> Iterator[tuple[subprocess.Popen, str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if crash_at:
        env[ENV] = crash_at
    log = open(tmp / f"serve-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([*ecash_command(), "merchant", "serve", "--store", str(store),
                             "--port", str(port), "--deposit-every", "0", "--sync-every", "0",
                             "--log-level", "warning"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("terminal did not start:\n"
                                     + (tmp / f"serve-{port}.log").read_text())
            time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@pytest.mark.parametrize("point", ["accept:verified", "accept:before_commit", "accept:stored"])
def test_killed_between_verification_and_answer(point, bank, holder, tmp_path):
    store = tmp_path / "terminal.db"
    t = new_terminal(bank, store)
    env = t.create_request(1250)
    spends = pay_request(holder, holder.withdraw(decompose(1250)), env.request)
    with serve_process(store, tmp_path, crash_at=point) as (proc, url):
        with pytest.raises(httpx.TransportError):  # no answer: the process died
            post_payment(pay_url(url, env.request.request_id), spends)
        assert proc.wait(10) == -signal.SIGKILL
    # nothing lost (committed before the kill) or nothing at all (killed before commit)
    assert counts(t) == ((5, 1) if point == "accept:stored" else (0, 0))
    with serve_process(store, tmp_path) as (_, url):  # the wallet tries again
        r = post_payment(pay_url(url, env.request.request_id), spends)
        assert r.status_code == 200, r.text
        wj.receipt_from_json(r.json()["receipt"]).verify(env.certificate.public_key)
        again = post_payment(pay_url(url, env.request.request_id), spends)
        assert again.json() == r.json()
    assert counts(t) == (5, 1)  # stored once
    assert t.deposit().accepted == 5
    t.close()


def test_killed_after_an_online_deposit_before_recording_it(bank, holder, tmp_path):
    store = tmp_path / "terminal.db"
    t = new_terminal(bank, store)
    amount = 16384 + 4096  # above the floor limit: deposited before the answer
    env = t.create_request(amount)
    spends = pay_request(holder, holder.withdraw(decompose(amount)), env.request)
    with serve_process(store, tmp_path, crash_at="accept:deposited") as (proc, url):
        with pytest.raises(httpx.TransportError):
            post_payment(pay_url(url, env.request.request_id), spends)
        assert proc.wait(10) == -signal.SIGKILL
    # the transcripts were stored (pending) before going online; the bank has them
    assert counts(t) == (2, 0) and bank_balance(bank, "shop-1") == amount
    assert t.store.request(env.request.request_id).status == "pending"
    with serve_process(store, tmp_path) as (_, url):
        r = post_payment(pay_url(url, env.request.request_id), spends)
        assert r.status_code == 200, r.text
    rep = t.report()
    assert rep["credited"] == {"count": 2, "value": amount} and rep["pending"]["count"] == 0
    assert bank_balance(bank, "shop-1") == amount  # credited once
    t.close()


def test_deposit_killed_after_the_bank_answered(bank, holder, tmp_path):
    store = tmp_path / "terminal.db"
    t = new_terminal(bank, store)
    env = t.create_request(1250)
    t.accept(env.request.request_id,
             pay_request(holder, holder.withdraw(decompose(1250)), env.request))
    killed = run_cli(["merchant", "deposit", "--store", str(store)], crash_at="deposit:answered")
    assert killed.returncode == -signal.SIGKILL
    assert t.report()["pending"]["count"] == 5 and bank_balance(bank, "shop-1") == 1250
    done = run_cli(["merchant", "deposit", "--store", str(store), "--json"])
    assert done.returncode == 0, done.stderr
    assert '"accepted": 5' in done.stdout and '"credited": 1250' in done.stdout
    assert t.report()["credited"] == {"count": 5, "value": 1250}
    assert bank_balance(bank, "shop-1") == 1250
    t.close()
