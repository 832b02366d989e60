"""Running the bank's HTTP server: in the foreground with N worker processes
(``ecash bank serve``), or on a background thread of this process (tests,
the demo). Both are real uvicorn servers on real sockets."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from ..crypto.batch import default_processes
from .logs import uvicorn_log_config


def serve(db_url: str, keys_dir: Path, *, host: str = "127.0.0.1", port: int = 8400,
          workers: int = 1, tls_cert: str | None = None, tls_key: str | None = None,
          log_level: str = "info") -> None:
    """Serve until interrupted, with ``workers`` processes sharing the port
    (SO_REUSEPORT). Verification runs in each worker when there is one worker
    per core, on a per-worker process pool otherwise. A worker that dies is
    restarted."""
    os.environ["ECASH_BANK_DB"] = db_url
    os.environ["ECASH_BANK_KEYS"] = str(keys_dir)
    os.environ["ECASH_VERIFY_POOL"] = "1" if workers < default_processes() else "0"
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ecash-metrics-")
    args = (host, port, tls_cert, tls_key, log_level)
    if workers == 1:
        _worker(*args)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=args) for _ in range(workers)]
    for p in procs:
        p.start()
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping:
        time.sleep(0.2)
        for i, p in enumerate(procs):
            if not p.is_alive() and not stopping:
                procs[i] = ctx.Process(target=_worker, args=args)
                procs[i].start()
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


def _worker(host: str, port: int, tls_cert: str | None, tls_key: str | None,
            log_level: str) -> None:
    config = uvicorn.Config("ecash.bank.api:app_from_env", factory=True, log_level=log_level,
                            access_log=False, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                            timeout_graceful_shutdown=5,
                            log_config=uvicorn_log_config(log_level))
    uvicorn.Server(config).run(sockets=[_listen(host, port)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedServer:
    """``with ThreadedServer(app) as url:`` serves ``app`` on 127.0.0.1."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
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
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
