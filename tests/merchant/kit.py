"""Merchant test kit: terminals on a real bank over HTTP, and their servers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ecash.bank.client import BankClient
from ecash.crypto.payment import Spend
from ecash.merchant import Terminal, TerminalConfig, init_terminal
from ecash.merchant.crash import ENV
from ecash.merchant.http import create_app
from ecash.merchant.terminal import BankFactory
from ecash.serving.threaded import ThreadedServer, free_port
from ecash.wire import json as wj

from ..bankkit import BankEnv, Holder, pay_request, token_of

LADDER_MAX = 65_536


def decompose(amount: int) -> list[int]:
    """The power-of-two coins (the default ladder) that add up to ``amount``."""
    assert 0 < amount < 2 * LADDER_MAX
    return [1 << i for i in range(amount.bit_length()) if amount >> i & 1]


def credential(env: BankEnv, merchant_id: str) -> str:
    return token_of(env.merchant(merchant_id))


def new_terminal(env: BankEnv, store: str | Path, merchant_id: str = "shop-1", *,
                 cred: str | None = None, clock=None, name: str | None = None,
                 config: TerminalConfig | None = None,
                 bank_factory: BankFactory | None = None) -> Terminal:
    return init_terminal(store, env.url, cred or credential(env, merchant_id),
                         master_public_key=env.bank.master_public_key,
                         clock=clock or env.clock, name=name, config=config,
                         bank_factory=bank_factory)


@contextmanager
def serving(t: Terminal, **app_options) -> Iterator[str]:
    """The terminal's web server on 127.0.0.1 (a real uvicorn on a real socket)."""
    with ThreadedServer(create_app(t, **app_options)) as url:
        yield url


@contextmanager
def serving_networked(t: Terminal, **app_options) -> Iterator[str]:
    """:func:`serving` with the server's own URL as its public URL, so its
    requests carry a ``pos_url`` and its QR codes are ``ecash:`` links."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ThreadedServer(create_app(t, public_url=url, **app_options), port=port) as served:
        yield served


class HoldingProxy:
    """A TCP proxy on 127.0.0.1 in front of the bank. While ``hold`` is set, the
    bank's reply is read (so the bank has done the work) but kept back until
    ``release`` is set: the client's timeout fires first. ``answered`` is set
    when a reply was held back. Real sockets both sides; no HTTP is parsed."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname, parts.port)
        self.hold, self.release, self.answered = (threading.Event(), threading.Event(),
                                                  threading.Event())
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            bank = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, bank, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(bank, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if replies and self.hold.is_set():
                    self.answered.set()
                    self.release.wait(30)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.release.set()
        self._listener.close()


def pay_url(url: str, request_id: bytes) -> str:
    return f"{url}/pay/{request_id.hex()}"


def post_payment(url: str, spends: Sequence[Spend]) -> httpx.Response:
    return httpx.post(url, json={"spends": [wj.spend_to_json(s) for s in spends]}, timeout=30)


def pay(holder: Holder, t: Terminal, amount: int, coins=None) -> tuple:
    """Withdraw coins for ``amount`` (unless given), make a request, answer it."""
    coins = coins if coins is not None else holder.withdraw(decompose(amount))
    env = t.create_request(amount)
    return env, coins, pay_request(holder, coins, env.request)


class Switch(httpx.HTTPTransport):
    """A transport to the bank that can be cut: ``down`` = connection refused."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused (the bank is down)", request=request)
        return super().handle_request(request)


def switched(switch: httpx.BaseTransport) -> BankFactory:
    def factory(url: str, cred: str, timeout: float) -> BankClient:
        return BankClient(url, cred, timeout=timeout, transport=switch)

    return factory


def counts(t: Terminal) -> tuple[int, int]:
    """(transcripts stored, requests paid)."""
    from sqlalchemy import func, select

    from ecash.merchant.schema import requests, transcripts

    with t.store.engine.connect() as c:
        return (c.execute(select(func.count()).select_from(transcripts)).scalar_one(),
                c.execute(select(func.count()).select_from(requests)
                          .where(requests.c.status == "paid")).scalar_one())


def ecash_command() -> list[str]:
    exe = shutil.which("ecash", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from ecash.cli.main import app; app()"]


def run_cli(args: list[str], crash_at: str | None = None,
            extra_env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env.update(extra_env or {})
    if crash_at:
        env[ENV] = crash_at
    return subprocess.run([*ecash_command(), *args], env=env, capture_output=True, text=True,
                          timeout=120, **kw)


def bank_balance(bank, merchant_id: str) -> int:
    from sqlalchemy import select

    from ecash.bank.schema import accounts

    with bank.bank.engine.connect() as c:
        return c.execute(select(accounts.c.balance).where(
            accounts.c.merchant_id == merchant_id)).scalar_one()
