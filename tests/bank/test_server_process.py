"""``ecash bank serve`` as a process: with fewer workers than cores it verifies
on a process pool, and that pool must not outlive the server, whether the
server stops cleanly (SIGTERM) or is killed (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
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


def start(db: str, keys: Path, workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("ecash")), "bank", "serve",
                             "--db", db, "--keys", str(keys), "--port", str(port),
                             "--workers", str(workers)],
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
def serving(db: str, keys: Path, workers: int = 1) -> Iterator[tuple[subprocess.Popen, str]]:
    """``ecash bank serve`` for one test; whatever it left running is killed."""
    proc, url = start(db, keys, workers)
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
    db = f"sqlite:///{tmp_path / 'bank.db'}"
    bank, _ = Bank.init(db, tmp_path / "keys")
    bank.engine.dispose()
    with serving(db, tmp_path / "keys") as (proc, _url):
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
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    out = set()
    for p in alive(descendants(pid)):
        try:
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes():
                out.add(p)
        except OSError:
            continue
    return out


def test_a_dead_worker_is_replaced_and_sigterm_stops_every_worker(tmp_path):
    """The supervisor sleeps until a worker exits (no polling) and restarts it;
    a SIGTERM wakes it at once and takes every worker down with it."""
    db = f"sqlite:///{tmp_path / 'bank.db'}"
    bank, _ = Bank.init(db, tmp_path / "keys")
    bank.engine.dispose()
    with serving(db, tmp_path / "keys", workers=2) as (proc, url):
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
            for _ in range(6):  # both workers answer (SO_REUSEPORT spreads connections)
                assert client.http.get("/v1/health").json() == {"status": "ok"}
        everyone = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert wait_gone(everyone) == set(), "workers outlived the supervisor"


def test_an_idle_server_ticks_once_a_second_and_stops_at_once():
    """uvicorn's loop wakes ten times a second; ours once, yet a stop request
    still ends it without waiting for the next tick, and responses keep a
    Date header."""
    import httpx

    from ecash.bank.server import ThreadedServer

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = ThreadedServer(app)
    ticks = []
    real_tick = server.server.on_tick

    async def counting_tick(counter: int) -> bool:
        ticks.append(time.monotonic())
        return await real_tick(counter)

    server.server.on_tick = counting_tick
    with server as url:
        assert "date" in httpx.get(url).headers
        first = len(ticks)
        time.sleep(3)
        idle_ticks = len(ticks) - first
        requested = time.monotonic()
        server.server.request_exit()
        server.thread.join(timeout=10)
        assert not server.thread.is_alive()
    assert 1 <= idle_ticks <= 4, f"{idle_ticks} ticks in 3 s"
    # the tick that ends the loop ran on the request, not up to a second later
    assert ticks[-1] - requested < 0.5
