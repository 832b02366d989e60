"""``ecash merchant serve``: the web server in the foreground, settlement in the
background (deposit whenever the bank answers, sync now and then)."""

from __future__ import annotations

import gc
import logging
import threading
import time

import httpx
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from ..serving.deadlines import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    BodyDeadline,
    bounded,
    default_max_connections,
)
from .errors import MerchantError
from .http import LOOPBACK, create_app
from .settle import retry_pending
from .terminal import Terminal

log = logging.getLogger("ecash.merchant")
PENDING_EVERY_S = 5.0
PUBLIC_CHECK_TIMEOUT_S = 10.0


class PublicUrlUnreachable(MerchantError):
    """The ``--public-url`` does not reach this terminal: phones could not pay."""

    def __init__(self, detail: str) -> None:
        super().__init__("public_url_unreachable", detail)


def check_public_url(public_url: str, merchant_id: str, *,
                     timeout: float = PUBLIC_CHECK_TIMEOUT_S) -> None:
    """GET ``public_url``'s ``/health`` as a phone would; raise
    :class:`PublicUrlUnreachable` in words unless this merchant's terminal answers.
    A QR code whose link a phone cannot reach must never be shown."""
    url = public_url.rstrip("/") + "/health"
    hint = (" (check the address, the port forwarding or the proxy; or pass"
            " --no-check-public-url if the proxy is not up yet)")
    try:
        r = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise PublicUrlUnreachable(f"{url} does not answer ({exc.__class__.__name__}):"
                                   f" phones could not pay through it{hint}") from None
    try:
        answered = r.json().get("merchant_id") if r.status_code == 200 else None
    except (ValueError, AttributeError):
        answered = None
    if answered != merchant_id:
        raise PublicUrlUnreachable(f"{url} answers {r.status_code}, but not as this terminal"
                                   f" of {merchant_id}{hint}")


def _check_when_started(server: uvicorn.Server, public_url: str, merchant_id: str,
                        failed: list[MerchantError]) -> None:
    """Once the server listens, check the public URL; stop the server if it fails."""
    deadline = time.monotonic() + 30
    while not server.started:
        if server.should_exit or time.monotonic() > deadline:
            return
        time.sleep(0.05)
    try:
        check_public_url(public_url, merchant_id)
    except MerchantError as exc:
        failed.append(exc)
        server.should_exit = True
        return
    log.info("phones reach this terminal at %s", public_url)


class Settler(threading.Thread):
    """Every ``deposit_every`` seconds, deposit what is pending (a bank that does
    not answer is tried again next time); every ``sync_every`` seconds, sync."""

    def __init__(self, t: Terminal, deposit_every: float, sync_every: float) -> None:
        super().__init__(name="ecash-settler", daemon=True)
        self.t, self.deposit_every, self.sync_every = t, deposit_every, sync_every
        self.stopping = threading.Event()
        self.last_sync = time.monotonic()

    def run(self) -> None:
        # a payment pending at the bank (ECASH-1 5.1) is tried again every few seconds
        next_deposit = time.monotonic() + self.deposit_every
        while not self.stopping.wait(min(self.deposit_every, PENDING_EVERY_S)):
            if time.monotonic() >= next_deposit:
                next_deposit = time.monotonic() + self.deposit_every
                self.once()
                continue
            try:
                if self.t.store.pending_requests():
                    retry_pending(self.t)
            except Exception:  # never let the settler die
                log.exception("background retry of pending payments failed")

    def once(self) -> None:
        try:
            res = self.t.deposit()
            if res.sent:
                log.info("deposited %d transcript(s): %d accepted, %d double-spent, %d refused",
                         res.sent, res.accepted, res.double_spent, res.refused)
            if res.error:
                log.info("deposit postponed: %s", res.error)
        except Exception:  # never let the settler die
            log.exception("background deposit failed")
        if self.sync_every and time.monotonic() - self.last_sync > self.sync_every:
            self.last_sync = time.monotonic()
            try:
                self.t.sync()
            except MerchantError as exc:
                log.info("sync postponed: %s", exc)
            except Exception:
                log.exception("background sync failed")


def serve(t: Terminal, *, host: str = "127.0.0.1", port: int = 8480,
          public_url: str | None = None, deposit_every: float = 60.0,
          sync_every: float = 3600.0, remote_cashier: bool = False,
          log_level: str = "info", header_timeout: float = HEADER_TIMEOUT_S,
          body_timeout: float = BODY_TIMEOUT_S, max_connections: int | None = None,
          check_public: bool = True) -> None:
    """Serve until interrupted; then stop the settler and close the terminal.
    Requests are bounded as the bank's are (:mod:`ecash.serving.deadlines`).
    With ``public_url`` and ``check_public``, once listening, the terminal GETs
    its own ``/health`` through ``public_url`` and stops with
    :class:`PublicUrlUnreachable` if it does not answer as this terminal."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gc.collect()
    gc.freeze()  # start-up objects out of the collector's way: shorter pauses per payment
    settler = Settler(t, deposit_every, sync_every) if deposit_every > 0 else None
    if settler:
        settler.start()

    def stop() -> None:
        if settler:
            settler.stopping.set()
            settler.join(10)
        t.close()

    app = create_app(t, public_url=public_url, on_shutdown=stop,
                     cashier_clients=None if remote_cashier else LOOPBACK)
    # the bank's read deadlines and connection cap
    server = uvicorn.Server(uvicorn.Config(BodyDeadline(app, body_timeout), **bounded(dict(
        host=host, port=port, log_level=log_level, access_log=False,
        timeout_graceful_shutdown=5), header_timeout,
        max_connections or default_max_connections())))
    failed: list[MerchantError] = []
    if public_url and check_public:
        threading.Thread(target=_check_when_started, name="ecash-public-check", daemon=True,
                         args=(server, public_url, t.merchant_id, failed)).start()
    server.run()
    if failed:
        raise failed[0]
    if not server.started:  # the port is taken, say: uvicorn has logged why
        raise SystemExit(STARTUP_FAILURE)
