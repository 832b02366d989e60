"""The bank's serving edges, over real sockets: a client hanging up mid-body
(logged once, briefly), read deadlines against slow heads and bodies, the
exact ``Authorization`` form and the per-principal rate limit, ``/metrics``
for the operator only (or on a listener of its own), a credit reference
reused with another amount, and payee names a wallet could not show
faithfully."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecash.bank.api import create_app
from ecash.bank.ratelimit import RateLimiter
from ecash.bank.service import Bank
from ecash.demo import ecash_command
from ecash.money import format_money
from ecash.serving.threaded import ThreadedServer, free_port
from ecash.wire.payee import BadPayeeName, check_merchant_id, shown

from ..bankkit import (
    refused,
    running_bank,
    served_process,
    signer_process,
    state_snapshot,
    token_of,
)

# --- the server process: its log and its metrics listener ----------------------


@contextmanager
def bank_process(tmp_path: Path, *extra: str) -> Iterator[tuple[str, Bank, str, list[str]]]:
    """``ecash.bank.server.serve`` (what ``ecash bank serve`` runs) in a process
    of its own: ``(url, bank, operator credential, log lines)``; the log (its
    stderr, JSON lines) is complete once the block has ended."""
    db = f"sqlite:///{tmp_path / 'bank.db'}"
    bank, token = Bank.init(db, tmp_path / "keys")
    port = free_port()
    sock = tmp_path / "signer.sock"
    code = ("from ecash.bank.server import serve;"
            f" serve({db!r}, {str(sock)!r}, port={port}"
            + "".join(f", {e}" for e in extra) + ")")
    url = f"http://127.0.0.1:{port}"
    try:
        with signer_process(tmp_path / "keys", sock), \
                served_process(code, f"{url}/v1/health") as lines:
            yield url, bank, token, lines
    finally:
        bank.engine.dispose()


def hang_up_mid_body(url: str, path: str, token: str) -> None:
    """Send a request's head and a tenth of its declared body, then close."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: bank\r\nAuthorization: Bearer {token}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                  '{"holder": "Al'.encode())
        s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        while s.recv(4096):  # until the bank has seen the hang-up and closed
            pass


def test_a_client_hanging_up_mid_body_is_logged_once_briefly(tmp_path):
    with bank_process(tmp_path) as (url, bank, token, log):
        shop = bank.register_merchant(bank.open_account("The Shop")[0], "shop")
        hang_up_mid_body(url, "/v1/operator/accounts", token)  # a FastAPI route
        hang_up_mid_body(url, "/v1/merchant/deposits", shop)  # a hot route
        assert httpx.get(f"{url}/v1/health").status_code == 200
    records = [json.loads(line) for line in log if line.startswith("{")]
    gone = [r for r in records if "disconnected before the body was complete" in r["msg"]]
    assert [r["level"] for r in gone] == ["info", "info"], log
    assert [r for r in records if r["level"] in ("error", "critical") or "exc" in r] == [], log
    assert all(len(line) < 300 for line in log), log


def test_metrics_on_their_own_listener_need_no_credential(tmp_path):
    mport = free_port()
    with bank_process(tmp_path, f"metrics_listen='127.0.0.1:{mport}'") as (url, _b, token, _l):
        assert httpx.get(f"{url}/v1/keyset").status_code == 200
        r = httpx.get(f"http://127.0.0.1:{mport}/metrics")
        assert r.status_code == 200 and "ecash_request_seconds" in r.text
        assert httpx.get(f"{url}/metrics").status_code == 401  # not on the API without one
        assert httpx.get(f"{url}/metrics", headers={
            "authorization": f"Bearer {token}"}).status_code == 200


def test_metrics_on_the_api_need_an_operator_credential(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=0)
        assert httpx.get(f"{env.url}/metrics").status_code == 401
        r = httpx.get(f"{env.url}/metrics", headers={
            "authorization": f"Bearer {token_of(alice.client)}"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = httpx.get(f"{env.url}/metrics", headers={
            "authorization": f"Bearer {token_of(env.operator)}"})
        assert r.status_code == 200 and "ecash_request_seconds" in r.text


# --- read deadlines ------------------------------------------------------------------


@pytest.fixture
def strict_server(tmp_path) -> Iterator[str]:
    """A bank served with half-second head and body deadlines."""
    bank, _ = Bank.init(f"sqlite:///{tmp_path / 'bank.db'}", tmp_path / "keys")
    app = create_app(bank, rate_limit=RateLimiter(1e6, 1e6))
    with ThreadedServer(app, header_timeout=0.5, body_timeout=0.5) as url:
        yield url
    bank.engine.dispose()


def closed_while_trickling(url: str, first: bytes, trickle: bytes, steps: int = 100) -> bool:
    """Send ``first``, then ``trickle`` a byte at a time every 0.1 s (``steps``
    bytes at most): whether the server closed the connection meanwhile."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(0.1)
        s.sendall(first)
        for i in range(steps):
            try:
                if s.recv(4096) == b"":
                    return True
            except TimeoutError:
                pass
            except ConnectionError:
                return True
            try:
                if trickle:
                    s.sendall(trickle[i % len(trickle):][:1])
            except ConnectionError:
                return True
    return False


def test_an_idle_kept_alive_connection_is_closed(strict_server):
    """What the header timeout still bounds (ecash.serving.deadlines): the wait
    of a kept-alive connection for its next request."""
    answered = b"GET /v1/health HTTP/1.1\r\nHost: bank\r\n\r\n"
    assert closed_while_trickling(strict_server, answered, b"", steps=30)
    assert httpx.get(f"{strict_server}/v1/health").status_code == 200


def test_a_slow_body_is_closed_after_the_body_timeout(strict_server):
    head = (b"POST /v1/spent-range HTTP/1.1\r\nHost: bank\r\nContent-Type: application/json"
            b"\r\nContent-Length: 200\r\n\r\n{")
    assert closed_while_trickling(strict_server, head, b" ")
    # a body the application does not read (refused at once) is bounded too
    head = (b"POST /v1/operator/accounts HTTP/1.1\r\nHost: bank\r\n"
            b"Content-Length: 200\r\n\r\n{")
    assert closed_while_trickling(strict_server, head, b" ")
    r = httpx.post(f"{strict_server}/v1/operator/accounts", json={"holder": "A"})
    assert r.status_code == 401  # an ordinary request is not cut short


def test_requests_beyond_the_connection_cap_are_refused_and_closed(tmp_path):
    bank, _ = Bank.init(f"sqlite:///{tmp_path / 'bank.db'}", tmp_path / "keys")
    app = create_app(bank, rate_limit=RateLimiter(1e6, 1e6))
    with ThreadedServer(app, max_connections=4) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            for s in held:  # each is served
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: bank\r\n\r\n")
                s.settimeout(10)
                assert s.recv(4096).startswith(b"HTTP/1.1 200")
            with socket.create_connection(("127.0.0.1", port)) as extra:
                extra.settimeout(10)
                extra.sendall(b"GET /v1/health HTTP/1.1\r\nHost: bank\r\n\r\n")
                answer = b""
                with suppress(ConnectionResetError):
                    while chunk := extra.recv(4096):
                        answer += chunk
                assert answer.startswith(b"HTTP/1.1 503"), answer  # and then closed
        finally:
            for s in held:
                s.close()
    bank.engine.dispose()


# --- the Authorization header and the per-principal limit --------------------------

def get_as(url: str, path: str, authorization: str) -> tuple[int, dict]:
    """GET with an ``Authorization`` header exactly as given (httpx refuses to
    send one with padding)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": authorization})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


# (leading whitespace is not part of a header's value: HTTP parsers drop it)
PADDED = ("Bearer  {t}", "Bearer {t} ", "Bearer\t{t}", "bearer {t}",
          "BEARER {t}", "Bearer {t}\t", "Bearer {t},", "Bearer  {t}  ")


def test_only_the_exact_bearer_form_is_accepted(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=0)
        token = token_of(alice.client)
        path = f"/v1/accounts/{alice.account_id}"
        for form in PADDED:
            status, body = get_as(env.url, path, form.format(t=token))
            assert (status, body.get("code")) == (401, "unauthenticated"), (form, status, body)
        assert get_as(env.url, path, f"Bearer {token}")[0] == 200


def test_padded_credentials_cannot_exceed_the_credential_limit(tmp_path):
    limiter = RateLimiter(per_credential=0.5, per_address=1e6, burst=4)  # 2 in a burst
    with running_bank("sqlite", tmp_path, rate_limit=limiter) as env:
        alice = env.holder("Alice", funds=0)  # registering used the credential once
        token = token_of(alice.client)
        path = f"/v1/accounts/{alice.account_id}"
        served = 0
        for _ in range(3):
            for form in ("Bearer {t}", *PADDED):
                status, body = get_as(env.url, path, form.format(t=token))
                assert status in (200, 401, 429), body
                served += status == 200
        assert served <= 2
        assert get_as(env.url, path, f"Bearer {token}")[1]["code"] == "rate_limited"


# --- credits --------------------------------------------------------------------------


def test_a_credit_reference_reused_with_another_amount_is_refused(env):
    alice = env.holder("Alice", funds=0)
    assert env.operator.credit(alice.account_id, 100, "wire-7") == 100
    assert env.operator.credit(alice.account_id, 100, "wire-7") == 100  # a retry
    before = state_snapshot(env)
    with refused(409, "reference_reused") as info:
        env.operator.credit(alice.account_id, 250, "wire-7")
    assert format_money(100, "CNY") in str(info.value)
    assert format_money(250, "CNY") in str(info.value)
    assert state_snapshot(env) == before
    assert env.operator.credit(alice.account_id, 250, "wire-8") == 350


def test_the_cli_refuses_a_reused_reference_too(tmp_path):
    db = f"sqlite:///{tmp_path / 'bank.db'}"
    bank, _ = Bank.init(db, tmp_path / "keys")
    account, _ = bank.open_account("Alice")
    bank.engine.dispose()
    args = ["bank", "credit", account, "--db", db, "--keys", str(tmp_path / "keys"),
            "--reference", "wire-7", "--json"]

    def credit(amount: str) -> subprocess.CompletedProcess:
        return subprocess.run([*ecash_command(), *args[:3], amount, *args[3:]],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "200"})

    first = credit("1.00")  # major units: CNY 1.00 is 100 fen
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["balance"] == 100
    again = credit("1")
    assert again.returncode == 0 and json.loads(again.stdout)["balance"] == 100
    other = credit("2.50")
    assert other.returncode == 1, other.stderr
    assert json.loads(other.stdout)["error"] == "reference_reused"
    assert format_money(100, "CNY") in other.stderr, other.stderr
    assert format_money(250, "CNY") in other.stderr, other.stderr
    assert "Traceback" not in other.stderr
    bank = Bank.open(db, tmp_path / "keys")
    assert bank.account_info(account)["balance"] == 100
    bank.engine.dispose()


# --- payee names ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "words"), [
    ("shop\u202egnp.exe", "RIGHT-TO-LEFT OVERRIDE"),   # shows as "shopexe.png"
    ("sh\u200bop", "ZERO WIDTH SPACE"),               # shows as "shop"
    ("sh\u043ep", "mixes scripts"),                    # a Cyrillic "о": shows as "shop"
    ("\uff53\uff48\uff4f\uff50", "canonical form"),    # full-width "ｓｈｏｐ"
    ("the shop", "SPACE"),
])
def test_a_payee_name_a_wallet_could_not_show_faithfully_is_refused(env, name, words):
    account, _ = env.operator.open_account("Mallory")
    before = state_snapshot(env)
    with refused(422, "bad_merchant_id") as info:
        env.operator.register_merchant(account, name)
    assert words in str(info.value)
    assert state_snapshot(env) == before


def test_payee_names_in_one_script_are_accepted(env):
    for name in ("Bäckerei-Müller", "магазин", "書店", "shop.2_b"):
        account, _ = env.operator.open_account(name)
        assert env.operator.register_merchant(account, name)
        assert env.operator.operator_account(account)["merchant_id"] == name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=24))
def test_an_accepted_payee_name_hides_nothing(name):
    """Whatever is accepted shows as written: no control, format (bidi,
    zero-width) or space character, and in its canonical form."""
    try:
        check_merchant_id(name)
    except BadPayeeName as exc:
        assert str(exc).startswith("merchant_id ")  # says in words what is wrong
        return
    assert shown(name) == name
    assert not any(unicodedata.category(c)[0] in "CZ" for c in name)
    assert unicodedata.normalize("NFC", name) == name


def test_a_name_that_was_never_checked_is_shown_with_its_controls_visible():
    assert shown("shop\u202egnp.exe") == "shop\\u202egnp.exe"
    assert shown("sh\u200bop") == "sh\\u200bop"
    assert shown("Bäckerei-Müller") == "Bäckerei-Müller"
