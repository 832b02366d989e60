"""Running the bank's HTTP server: in the foreground with N worker processes
(``ecash bank serve``), or on a background thread of this process (tests,
the demo). Both are real uvicorn servers on real sockets."""

from __future__ import annotations

import os
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
    """Serve until interrupted. Verification runs in each worker when there is
    one worker per core, on a per-worker process pool otherwise."""
    os.environ["ECASH_BANK_DB"] = db_url
    os.environ["ECASH_BANK_KEYS"] = str(keys_dir)
    os.environ["ECASH_VERIFY_POOL"] = "1" if workers < default_processes() else "0"
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ecash-metrics-")
    uvicorn.run("ecash.bank.api:app_from_env", factory=True, host=host, port=port,
                workers=workers, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                log_level=log_level, access_log=False, timeout_graceful_shutdown=5,
                log_config=uvicorn_log_config(log_level))


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
