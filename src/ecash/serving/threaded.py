"""A real uvicorn server on a thread of this process (tests, the demo), and
the address helpers the command lines share."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from .deadlines import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    BodyDeadline,
    bounded,
    default_max_connections,
)


def free_port() -> int:
    """A TCP port nothing listens on now (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def check_port_free(host: str, port: int) -> None:
    """Exit at once with one clear line when ``host:port`` is taken: a server
    must never share a port with another (each would get a share of the
    requests). The server binds the port itself right after this check."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SystemExit(f"error: cannot listen on {host}:{port}: "
                             f"{exc.strerror or exc}") from None


class ThreadedServer:
    """``with ThreadedServer(app) as url:`` serves ``app`` on 127.0.0.1, bounded
    as ``ecash bank serve`` is (its deadlines may be given)."""

    def __init__(self, app: ASGIApp, port: int | None = None, *,
                 header_timeout: float = HEADER_TIMEOUT_S, body_timeout: float = BODY_TIMEOUT_S,
                 max_connections: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(BodyDeadline(app, body_timeout), **bounded(dict(
            host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
            lifespan="off"), header_timeout, max_connections or default_max_connections()))
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
        """Ask the server to stop (its loop notices within a tenth of a second)."""
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
