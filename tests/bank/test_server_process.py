"""``ecash bank serve`` as a process (with its signer): with fewer workers than
cores it verifies on a process pool, and that pool must not outlive the
server, whether the server stops cleanly (SIGTERM) or is killed (SIGKILL);
with several workers, uvicorn's process manager replaces one that dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from ecash.bank.client import BankClient
from ecash.bank.service import Bank
from ecash.crypto.batch import default_processes
from ecash.serving.threaded import free_port

from ..bankkit import signer_process
from ..rediskit import redis_server


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


def start(db: str, signer: Path, workers: int = 1, *extra: str
          ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("ecash")), "bank", "serve",
                             "--db", db, "--signer", str(signer), "--port", str(port),
                             "--workers", str(workers), *extra],
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


@contextmanager
def serving(tmp_path: Path, workers: int = 1) -> Iterator[tuple[subprocess.Popen, str]]:
    """A new bank, its signer and ``ecash bank serve`` (several workers share
    their rate limits in a redis-server of the test's own) for one test;
    whatever the server left running is killed."""
    db = f"sqlite:///{tmp_path / 'bank.db'}"
    bank, _ = Bank.init(db, tmp_path / "keys")
    bank.engine.dispose()
    with ExitStack() as stack:
        stack.enter_context(signer_process(tmp_path / "keys", tmp_path / "signer.sock"))
        extra = ("--rate-limit-storage", stack.enter_context(redis_server(tmp_path))) \
            if workers > 1 else ()
        proc, url = start(db, tmp_path / "signer.sock", workers, *extra)
        try:
            yield proc, url
        finally:
            if proc.poll() is None:
                proc.kill()
            for p in alive(descendants(proc.pid)):
                os.kill(p, signal.SIGKILL)


@pytest.mark.skipif(default_processes() < 2, reason="one core: no verification pool")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_verification_pool_dies_with_the_server(tmp_path, how):
    with serving(tmp_path) as (proc, _url):
        pool = descendants(proc.pid)
        assert len(pool) >= default_processes()  # the workers, started with the server
        proc.send_signal(how)
        proc.wait(30)
        assert wait_gone(pool) == set(), "verification workers outlived the bank server"


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


def spawned_workers(pid: int) -> set[int]:
    """The supervisor's worker processes (its children, not multiprocessing's
    resource tracker)."""
    out = set()
    for p in alive({c for c, parent in children().items() if parent == pid}):
        try:
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes():
                out.add(p)
        except OSError:
            continue
    return out


def test_a_dead_worker_is_replaced_and_sigterm_stops_every_worker(tmp_path):
    """uvicorn's supervisor restarts a worker that died; a SIGTERM takes every
    worker down with it."""
    with serving(tmp_path, workers=2) as (proc, url):
        deadline = time.monotonic() + 30
        while len(first := spawned_workers(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = spawned_workers(proc.pid)
            if victim not in now and len(now) == 2:
                break
            time.sleep(0.1)
        assert victim not in now and len(now) == 2, "the killed worker was not replaced"
        with BankClient(url, timeout=5) as client:
            # a worker listens only once it has started (imports, database):
            # on a slow machine the victim may have been the only one so far
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    client.http.get("/v1/health")
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
            for _ in range(6):
                assert client.http.get("/v1/health").json() == {"status": "ok"}
        everyone = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert wait_gone(everyone) == set(), "workers outlived the supervisor"
