"""``ecash bank serve``: the bank's HTTP workers under uvicorn's own process
manager (``workers=``), which binds the port once, without ``SO_REUSEPORT``,
so a second server on a port in use fails at once instead of taking a share
of the requests; it restarts a worker that dies. The workers hold no secret:
they reach the signer over its UNIX socket."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import uvicorn

from ..crypto.batch import default_processes
from ..serving.deadlines import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    BodyDeadline,
    bounded,
    default_max_connections,
)
from ..serving.threaded import check_port_free, parse_listen
from . import metrics
from .logs import uvicorn_log_config
from .ratelimit import MEMORY

BODY_TIMEOUT_ENV = "ECASH_BODY_TIMEOUT"


def serve(db_url: str, signer_socket: str | Path, *, host: str = "127.0.0.1",
          port: int = 8400, workers: int = 1, tls_cert: str | None = None,
          tls_key: str | None = None, log_level: str = "info",
          metrics_listen: str | None = None, header_timeout: float = HEADER_TIMEOUT_S,
          body_timeout: float = BODY_TIMEOUT_S, max_connections: int | None = None,
          rate_limit_storage: str | None = None) -> None:
    """Serve until interrupted, with ``workers`` processes. Verification runs
    in each worker when there is one worker per core, on a per-worker process
    pool otherwise. ``rate_limit_storage`` (a ``limits`` storage URI) is where
    the workers keep their shared rate limits: ``memory://`` (the default)
    serves one worker only. ``metrics_listen`` (``HOST:PORT``) serves
    ``/metrics`` without a credential on a listener of its own; requests are
    bounded as :mod:`ecash.serving.deadlines` says (``max_connections`` per
    worker)."""
    storage = rate_limit_storage or MEMORY
    if workers > 1 and storage.startswith(MEMORY):
        raise SystemExit("error: several workers need a rate-limit storage they share"
                         " (redis://HOST:PORT), not memory://")
    check_port_free(host, port)
    os.environ["ECASH_BANK_DB"] = db_url
    os.environ["ECASH_BANK_SIGNER"] = str(signer_socket)
    os.environ["ECASH_RATE_LIMIT_STORAGE"] = storage
    os.environ[BODY_TIMEOUT_ENV] = repr(float(body_timeout))
    os.environ["ECASH_VERIFY_POOL"] = "1" if workers < default_processes() else "0"
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ecash-metrics-")
    if metrics_listen:
        metrics.serve_metrics(*parse_listen(metrics_listen))
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    print(f"ecash bank: serving {scheme}://{shown}:{port}/ with {workers} worker"
          f"{'s' if workers > 1 else ''}", flush=True)
    uvicorn.run("ecash.bank.server:worker_app", **bounded(dict(
        factory=True, host=host, port=port, workers=workers, log_level=log_level,
        access_log=False, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
        timeout_graceful_shutdown=5, log_config=uvicorn_log_config(log_level)),
        header_timeout, max_connections or default_max_connections()))


def worker_app() -> BodyDeadline:
    """Factory for uvicorn's workers: the API from the environment that
    :func:`serve` set, within the body deadline."""
    from .api import app_from_env

    return BodyDeadline(app_from_env(), float(os.environ.get(BODY_TIMEOUT_ENV, BODY_TIMEOUT_S)))
