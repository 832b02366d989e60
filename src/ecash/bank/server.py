"""Running the bank's HTTP server: in the foreground with N worker processes
(``ecash bank serve``), or on a background thread of this process (tests,
the demo). Both are real uvicorn servers on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from ..crypto.batch import default_processes
from . import metrics
from .deadlines import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_S,
    deadline_protocol,
    default_max_connections,
)
from .logs import uvicorn_log_config

RESTART_PAUSE_S = 0.5  # at least this long between two starts of one worker


def serve(db_url: str, keys_dir: Path, *, host: str = "127.0.0.1", port: int = 8400,
          workers: int = 1, tls_cert: str | None = None, tls_key: str | None = None,
          log_level: str = "info", metrics_listen: str | None = None,
          header_timeout: float = HEADER_TIMEOUT_S, body_timeout: float = BODY_TIMEOUT_S,
          max_connections: int | None = None) -> None:
    """Serve until interrupted, with ``workers`` processes sharing the port
    (SO_REUSEPORT). Verification runs in each worker when there is one worker
    per core, on a per-worker process pool otherwise. A worker that dies is
    restarted. ``metrics_listen`` (``HOST:PORT``) serves ``/metrics`` without a
    credential on a listener of its own; every request is bounded as
    :mod:`ecash.bank.deadlines` says (``max_connections`` per worker)."""
    os.environ["ECASH_BANK_DB"] = db_url
    os.environ["ECASH_BANK_KEYS"] = str(keys_dir)
    os.environ["ECASH_VERIFY_POOL"] = "1" if workers < default_processes() else "0"
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ecash-metrics-")
    if metrics_listen:
        metrics.serve_metrics(*parse_listen(metrics_listen))
    args = (host, port, tls_cert, tls_key, log_level, header_timeout, body_timeout,
            max_connections or default_max_connections())
    if workers == 1:
        _worker(*args)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=args) for _ in range(workers)]
    for p in procs:
        p.start()
    started = [time.monotonic()] * workers
    # sleep until a worker dies or a stop signal arrives (Python's signal
    # handler writes to the wake-up pipe): a polling loop costs CPU on every tick
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            if wake_r in multiprocessing.connection.wait([wake_r, *(p.sentinel for p in procs)]):
                os.read(wake_r, 512)
            for i, p in enumerate(procs):
                if p.is_alive() or stopping:
                    continue
                pause = started[i] + RESTART_PAUSE_S - time.monotonic()
                if pause > 0:  # a worker that dies at start: a crash loop, not a busy loop
                    multiprocessing.connection.wait([wake_r], pause)
                if not stopping:
                    procs[i] = ctx.Process(target=_worker, args=args)
                    procs[i].start()
                    started[i] = time.monotonic()
    finally:
        signal.set_wakeup_fd(-1)
        os.close(wake_r)
        os.close(wake_w)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(10)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket that the workers share; TCP_NODELAY is inherited by
    accepted connections (without it, small responses wait ~40 ms for an ACK)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def bounded(config: dict, header_timeout: float, body_timeout: float,
            max_connections: int) -> dict:
    """uvicorn settings with the read deadlines and the connection cap of
    :mod:`ecash.bank.deadlines` (and uvicorn's own keep-alive timeout)."""
    return {**config, "http": deadline_protocol(header_timeout=header_timeout,
                                                body_timeout=body_timeout,
                                                max_connections=max_connections),
            "timeout_keep_alive": KEEP_ALIVE_S}


def _worker(host: str, port: int, tls_cert: str | None, tls_key: str | None,
            log_level: str, header_timeout: float, body_timeout: float,
            max_connections: int) -> None:
    config = uvicorn.Config("ecash.bank.api:app_from_env", **bounded(dict(
        factory=True, log_level=log_level, access_log=False, ssl_certfile=tls_cert,
        ssl_keyfile=tls_key, timeout_graceful_shutdown=5,
        log_config=uvicorn_log_config(log_level)), header_timeout, body_timeout,
        max_connections))
    QuietServer(config).run(sockets=[_listen(host, port)])


class QuietServer(uvicorn.Server):
    """uvicorn's server, waking once a second when idle instead of ten times.

    uvicorn's main loop ticks every 0.1 s to refresh the ``Date`` header (which
    has a second's resolution) and to notice a shutdown request. Here a
    shutdown request wakes the loop at once, so one tick a second is enough.
    An idle bank then costs next to no CPU, which matters where it shares the
    machine and on virtual machines, where every wake-up is dear.
    """

    _wake: Callable[[], None] | None = None

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        requested = asyncio.Event()
        self._wake = lambda: loop.call_soon_threadsafe(requested.set)
        ticks = 0
        while not await self.on_tick(ticks):
            ticks = (ticks + 10) % 864000  # uvicorn refreshes Date on multiples of 10
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(requested.wait(), 1.0)

    def request_exit(self) -> None:
        """Stop serving; safe from any thread."""
        self.should_exit = True
        self._wake_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)  # a signal: also force-exit on a second SIGINT
        self._wake_loop()

    def _wake_loop(self) -> None:
        if self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._wake()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedServer:
    """``with ThreadedServer(app) as url:`` serves ``app`` on 127.0.0.1, bounded
    as ``ecash bank serve`` is (its deadlines may be given)."""

    def __init__(self, app, port: int | None = None, *,
                 header_timeout: float = HEADER_TIMEOUT_S, body_timeout: float = BODY_TIMEOUT_S,
                 max_connections: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, **bounded(dict(
            host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
            lifespan="off"), header_timeout, body_timeout,
            max_connections or default_max_connections()))
        self.server = QuietServer(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self.server.request_exit()
        self.thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
