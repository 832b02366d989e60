"""Merchant terminal benchmark: from a payment's arrival to the answer, with the
transcripts stored, over HTTP on 127.0.0.1.

    python bench/merchant.py [--json OUT.json] [--quick] [--iterations N]
                             [--pg postgresql://USER:PW@127.0.0.1:5432/postgres]
                             [--verify-workers N]

A bank runs in this process (only to set the terminal up: merchant id,
certificate, keyset); the terminal is a real ``ecash merchant serve`` process
on a fresh store (SQLite in WAL mode with ``synchronous=FULL``, or a fresh
PostgreSQL database with ``--pg``). Coins are minted in-process with the
bank's denomination secrets, every request is created beforehand, and the
payments (1 coin worth 1, and 10 coins worth 1+2+...+512 = 1023, both below the
floor limit, so offline) are sent alternately over one keep-alive connection.

Reported per payment size: the client's round trip (request sent -> answer
read) and the server's own time from the handler's start to the answer
(``Server-Timing``), p50 and p99; and p50 as a ratio to the raw verification
cost, ``n x median(ecash.crypto.verify_spend)`` measured in this run.
Target: client p99 < 15 ms for 10 coins.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from ecash.bank.api import create_app
from ecash.bank.client import BankClient
from ecash.bank.keyring import KeyRing
from ecash.bank.ratelimit import RateLimiter
from ecash.bank.service import Bank
from ecash.crypto import group
from ecash.crypto.params import g1, g2
from ecash.crypto.payment import PaymentRequest, make_spend, verify_spend
from ecash.crypto.withdrawal import bank_commit, bank_respond, holder_z, user_blind, user_finish
from ecash.merchant import init_terminal
from ecash.serving.threaded import ThreadedServer, free_port
from ecash.wire import json as wj

TARGET_P99_MS_10 = 15.0
SIZES = {1: [1], 10: [1 << i for i in range(10)]}
console = Console(width=160)


class Mint:
    """Coins of the bank's live keys, made in-process (no HTTP, no account),
    with the secrets read from the bank's key directory as its signer would."""

    def __init__(self, bank: Bank, keys_dir: Path) -> None:
        self.bank = bank
        self.ring = KeyRing.load(keys_dir)
        now = bank.now()
        self.live = {k.value: k for k in bank.keyset().keys
                     if k.withdraw_start <= now < k.withdraw_end}
        self.u1 = group.random_scalar()
        self.I = group.mul(g1, self.u1)
        self.I_g2 = group.add(self.I, g2)

    def coin(self, value: int):
        key = self.live[value]
        x = self.ring.by_id[key.key_id].x
        w = group.random_scalar()
        state = user_blind(key, self.I, holder_z(self.I_g2, x), [bank_commit(self.I_g2, w)])
        return user_finish(state, bank_respond(x, w, state.branches[0].c), 0)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def raw_verify_us(mint: Mint, n: int = 400) -> float:
    """Median µs of one ``verify_spend`` (fresh request objects: request_id
    is hashed inside, as at the terminal)."""
    coins = [mint.coin(1) for _ in range(20)]
    key = mint.live[1]
    samples = []
    gc.disable()
    try:
        for i in range(n):
            c, s = coins[i % len(coins)]
            req = PaymentRequest("bench-shop", 1, key.currency, int(time.time() * 1000),
                                 secrets.token_bytes(16))
            sp = make_spend(c, s, mint.u1, req)
            sp = wj.spend_from_json(wj.spend_to_json(sp))  # fresh objects, as decoded
            t0 = time.perf_counter_ns()
            verify_spend(sp, key)
            samples.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    return statistics.median(samples)


@contextmanager
def store_location(tmp: Path, pg: str | None):
    if not pg:
        yield str(tmp / "terminal.db"), "sqlite (WAL, synchronous=FULL)"
        return
    from ecash.bank.store import scratch_database

    with scratch_database(pg, "ecash_bench_") as url:
        yield url, "postgresql"


@contextmanager
def terminal_process(store: str, tmp: Path, verify_workers: int):
    exe = shutil.which("ecash", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-c", "from ecash.cli.main import app; app()"]
    port = free_port()
    log = open(tmp / "serve.log", "w")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if k != "ECASH_MERCHANT_CRASH_AT"}
    proc = subprocess.Popen([*cmd, "merchant", "serve", "--store", store, "--port", str(port),
                             "--deposit-every", "0", "--sync-every", "0", "--log-level",
                             "warning", "--verify-workers", str(verify_workers)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("terminal did not start:\n" + (tmp / "serve.log").read_text())
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run(iterations: int, warmup: int, pg: str | None, verify_workers: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="ecash-bench-merchant-"))
    bank, op_token = Bank.init(f"sqlite:///{tmp / 'bank.db'}", tmp / "keys")
    mint = Mint(bank, tmp / "keys")
    with ThreadedServer(create_app(bank, rate_limit=RateLimiter(1e6, 1e6))) as bank_url, \
            store_location(tmp, pg) as (store, store_kind):
        with BankClient(bank_url, op_token) as op:
            account_id, _ = op.open_account("bench shop")
            credential = op.register_merchant(account_id, "bench-shop")
        t = init_terminal(store, bank_url, credential,
                          master_public_key=bank.master_public_key)
        console.print(f"minting {(warmup + iterations) * 11} coins…")
        plan = []  # (n, request_id, body) alternating 1 and 10 coins
        for _ in range(warmup + iterations):
            for n, values in SIZES.items():
                env = t.create_request(sum(values))
                spends = [make_spend(c, s, mint.u1, env.request)
                          for c, s in (mint.coin(v) for v in values)]
                body = json.dumps({"spends": [wj.spend_to_json(sp) for sp in spends]})
                plan.append((n, env.request.request_id.hex(), body.encode()))
        t.close()
        raw_before = raw_verify_us(mint)
        client_ms: dict[int, list[float]] = {n: [] for n in SIZES}
        server_ms: dict[int, list[float]] = {n: [] for n in SIZES}
        with terminal_process(store, tmp, verify_workers) as url, \
                httpx.Client(base_url=url, timeout=30) as http:
            for i, (n, rid, body) in enumerate(plan):
                t0 = time.perf_counter()
                r = http.post(f"/pay/{rid}", content=body,
                              headers={"content-type": "application/json"})
                dt = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    raise SystemExit(f"payment refused: {r.status_code} {r.text}")
                if i >= 2 * warmup:
                    client_ms[n].append(dt)
                    timing = r.headers["server-timing"]
                    server_ms[n].append(float(timing.split("dur=")[1]))
        raw_after = raw_verify_us(mint)
    bank.engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    raw_us = statistics.median([raw_before, raw_after])
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "platform": platform.platform()},
           "store": store_kind, "iterations": iterations, "verify_workers": verify_workers,
           "raw_verify_spend_us": round(raw_us, 1), "sizes": {}}
    for n in SIZES:
        c, s = client_ms[n], server_ms[n]
        raw_ms = n * raw_us / 1000
        out["sizes"][str(n)] = {
            "client_p50_ms": round(pct(c, 50), 3), "client_p99_ms": round(pct(c, 99), 3),
            "server_p50_ms": round(pct(s, 50), 3), "server_p99_ms": round(pct(s, 99), 3),
            "raw_verification_ms": round(raw_ms, 3),
            "client_p50_over_raw": round(pct(c, 50) / raw_ms, 2),
            "server_p50_over_raw": round(pct(s, 50) / raw_ms, 2)}
    out["samples_ms"] = {"client": {str(n): v for n, v in client_ms.items()},
                         "server": {str(n): v for n, v in server_ms.items()}}
    out["target"] = {"client_p99_ms_10_coins": TARGET_P99_MS_10,
                     "met": out["sizes"]["10"]["client_p99_ms"] < TARGET_P99_MS_10}
    return out


def show(res: dict) -> None:
    table = Table(title=f"Payment arrival -> answer, transcripts stored ({res['store']},"
                        f" {res['iterations']} payments per size,"
                        f" raw verify_spend {res['raw_verify_spend_us']} µs)")
    for col in ("coins", "client p50 ms", "client p99 ms", "server p50 ms", "server p99 ms",
                "raw verify ms", "client p50 / raw", "server p50 / raw"):
        table.add_column(col, justify="right")
    for n, s in res["sizes"].items():
        table.add_row(n, f"{s['client_p50_ms']:.2f}", f"{s['client_p99_ms']:.2f}",
                      f"{s['server_p50_ms']:.2f}", f"{s['server_p99_ms']:.2f}",
                      f"{s['raw_verification_ms']:.2f}", f"{s['client_p50_over_raw']:.2f}",
                      f"{s['server_p50_over_raw']:.2f}")
    console.print(table)
    met = res["target"]["met"]
    console.print(f"target client p99 < {TARGET_P99_MS_10} ms for 10 coins:"
                  f" {'[green]met[/]' if met else '[bold red]NOT met[/]'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="100 payments per size")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--pg", help="PostgreSQL admin URL: measure on a fresh database there")
    ap.add_argument("--verify-workers", type=int, default=0,
                    help="processes verifying a payment's coins in parallel (0: in-process)")
    args = ap.parse_args()
    iterations = args.iterations or (100 if args.quick else 400)
    res = run(iterations, warmup=20, pg=args.pg, verify_workers=args.verify_workers)
    show(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
