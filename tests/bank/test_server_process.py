"""``ecash bank serve`` as a process: with fewer workers than cores it verifies
on a process pool, and that pool must not outlive the server, whether the
server stops cleanly (SIGTERM) or is killed (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecash.bank.client import BankClient
from ecash.bank.server import free_port
from ecash.bank.service import Bank
from ecash.crypto.batch import default_processes


def children() -> dict[int, int]:
    """pid -> parent pid of every process on the machine."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(pid: int) -> set[int]:
    table = children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in table.items() if p in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has exited)."""
    left = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.add(p)
    return left


def wait_gone(pids: set[int], timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def start(db: str, keys: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("ecash")), "bank", "serve",
                             "--db", db, "--keys", str(keys), "--port", str(port),
                             "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with BankClient(url, timeout=2) as probe:
        while True:
            try:
                probe.http.get("/v1/health").raise_for_status()
                return proc, url
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise RuntimeError("the bank did not start") from None
                time.sleep(0.1)


@pytest.mark.skipif(default_processes() < 2, reason="one core: no verification pool")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_verification_pool_dies_with_the_server(tmp_path, how):
    db = f"sqlite:///{tmp_path / 'bank.db'}"
    bank, _ = Bank.init(db, tmp_path / "keys")
    bank.engine.dispose()
    proc, _url = start(db, tmp_path / "keys")
    try:
        pool = descendants(proc.pid)
        assert len(pool) >= default_processes()  # the workers, started with the server
        proc.send_signal(how)
        proc.wait(30)
        assert wait_gone(pool) == set(), "verification workers outlived the bank server"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in alive(descendants(proc.pid)):
            os.kill(p, signal.SIGKILL)


def test_a_worker_that_starts_after_its_parent_died_exits():
    """The race behind an orphaned pool: the server is killed while a spawned
    worker is still importing, so by the time the worker's initializer runs its
    parent is already init (or a subreaper). Told its real parent's pid, the
    worker sees the mismatch and exits."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    worker = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from ecash.crypto.batch import _exit_with_parent; "
         f"_exit_with_parent({gone.pid}); time.sleep(60); sys.exit(3)"])
    try:
        assert worker.wait(20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
