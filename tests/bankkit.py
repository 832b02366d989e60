"""Test kit: a real bank on SQLite or PostgreSQL, served over HTTP on
127.0.0.1, and the holder's side of the protocol for the tests to drive."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from ecash.bank.api import create_app
from ecash.bank.client import BankClient, BankHTTPError
from ecash.bank.config import BankConfig
from ecash.bank.ratelimit import RateLimiter
from ecash.bank.service import Bank
from ecash.bank.store import scratch_database
from ecash.crypto import group
from ecash.crypto import registration as reg
from ecash.crypto.coin import Coin, CoinSecrets
from ecash.crypto.keys import Keyset
from ecash.crypto.payment import PaymentRequest, Spend, make_spend
from ecash.crypto.withdrawal import Commitment, user_blind, user_finish
from ecash.serving.threaded import ThreadedServer
from ecash.wire.redemption import REDEMPTION_PAYEE, redemption_request

from .openapi_contract import Recorder, violations

PG_URL = os.environ.get("ECASH_TEST_PG", "postgresql://ecash:ecash@127.0.0.1:5432/postgres")


def pg_available() -> bool:
    try:
        eng = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:
        return False


@contextmanager
def fresh_database(engine_name: str, tmp: Path) -> Iterator[str]:
    """A new empty database: a SQLite file, or a PostgreSQL database created
    for this test and dropped after it."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp / 'bank.db'}"
        return
    if os.environ.get("CI") and not pg_available():
        raise RuntimeError("PostgreSQL is required in CI")
    if not pg_available():
        pytest.skip("no PostgreSQL server (set ECASH_TEST_PG)")
    with scratch_database(PG_URL, "ecash_t_") as url:
        yield url


class Clock:
    """A clock tests can move forward."""

    def __init__(self) -> None:
        import time

        self.offset = 0.0
        self._time = time.time
        self.frozen: float | None = None

    def __call__(self) -> float:
        if self.frozen is not None:
            return self.frozen
        return self._time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        if self.frozen is not None:
            self.frozen += seconds

    def freeze(self) -> None:
        """Stop at the current time; from now on only :meth:`advance` moves it
        (for tests of exact deadlines)."""
        self.frozen = int(self())


@dataclass
class BankEnv:
    bank: Bank
    url: str
    operator: BankClient
    clock: Clock
    db_url: str
    keys_dir: Path
    clients: list[BankClient] = field(default_factory=list)

    def client(self, token: str | None = None) -> BankClient:
        c = BankClient(self.url, token)
        self.clients.append(c)
        return c

    def holder(self, name: str = "holder", funds: int = 1_000_000) -> Holder:
        account_id, token = self.operator.open_account(name)
        if funds:
            self.operator.credit(account_id, funds, "initial")
        h = Holder(account_id, self.client(token), group.random_scalar(), self.clock)
        h.client.register(account_id, reg.prove(h.u1, account_id))
        return h

    def merchant(self, merchant_id: str) -> BankClient:
        account_id, _ = self.operator.open_account(f"shop {merchant_id}")
        return self.client(self.operator.register_merchant(account_id, merchant_id))


@dataclass
class Holder:
    account_id: str
    client: BankClient
    u1: int
    clock: Clock | None = None  # the bank's clock, when a test moves it

    @property
    def I(self) -> bytes:  # noqa: E743
        return reg.identity_of(self.u1)

    def withdraw(self, values: list[int], keyset: Keyset | None = None
                 ) -> list[tuple[Coin, CoinSecrets]]:
        offer, states = self.start(values, keyset)
        answers = self.client.answer(self.account_id, offer["session_id"],
                                     [s.challenges for s in states])
        return [user_finish(s, r, beta) for s, (beta, r) in zip(states, answers, strict=True)]

    def start(self, values: list[int], keyset: Keyset | None = None, *, exchange=None):
        ks = keyset or self.client.keyset()
        remember_values(ks)
        now = self.client_now()
        live = {k.value: k for k in ks.keys if k.withdraw_start <= now < k.withdraw_end}
        key_ids = [live[v].key_id for v in values]
        if exchange is None:
            offer = self.client.start_withdrawal(self.account_id, key_ids)
        else:
            offer = self.client.start_exchange(self.account_id, exchange, key_ids)
        return offer, self.blind(offer, ks)

    def blind(self, offer: dict, ks: Keyset) -> list:
        states = []
        for c in offer["coins"]:
            cm = [bytes.fromhex(h) for h in c["commitments"]]
            key = ks.key(bytes.fromhex(c["key_id"]))
            states.append(user_blind(key, self.I, bytes.fromhex(offer["z"][c["key_id"]]),
                                     [Commitment(cm[0], cm[1]), Commitment(cm[2], cm[3])]))
        return states

    def client_now(self) -> int:
        import time

        return int(self.clock() if self.clock is not None else time.time())

    def pay(self, coins: list[tuple[Coin, CoinSecrets]], merchant_id: str,
            currency: str = "CNY", timestamp_ms: int | None = None) -> list[Spend]:
        import time

        amount = sum(VALUE_OF[c.key_id] for c, _ in coins) if VALUE_OF else 0
        ts = timestamp_ms if timestamp_ms is not None else \
            int((self.clock() if self.clock is not None else time.time()) * 1000)
        req = (redemption_request(self.account_id, amount, currency, ts)
               if merchant_id == REDEMPTION_PAYEE else  # bound to this account, as a wallet's
               PaymentRequest(merchant_id, amount, currency, ts, secrets.token_bytes(16)))
        return [make_spend(c, s, self.u1, req) for c, s in coins]


VALUE_OF: dict[bytes, int] = {}


def remember_values(ks: Keyset) -> None:
    for k in ks.keys:
        VALUE_OF[k.key_id] = k.value


_OPENAPI: dict[str, tuple[dict, dict]] = {}


def openapi_of(app, config: BankConfig) -> tuple[dict, dict]:
    """The app's document and a cache for its validators, built once per
    configuration (the document depends on nothing else, and building it costs
    FastAPI about as much as a short test)."""
    key = repr(config)
    if key not in _OPENAPI:
        _OPENAPI[key] = (app.openapi(), {})
    return _OPENAPI[key]


@contextmanager
def running_bank(engine_name: str, tmp: Path, config: BankConfig | None = None,
                 rate_limit: RateLimiter | None = None) -> Iterator[BankEnv]:
    with fresh_database(engine_name, tmp) as db_url:
        clock = Clock()
        bank, op_token = Bank.init(db_url, tmp / "keys", config, clock=clock)
        app = create_app(bank, rate_limit=rate_limit or RateLimiter(1e6, 1e6))
        recorder = Recorder(app)  # every response, checked against /openapi.json below
        with ThreadedServer(recorder) as url:
            env = BankEnv(bank, url, BankClient(url, op_token), clock, db_url, tmp / "keys")
            remember_values(env.operator.keyset())
            try:
                yield env
            finally:
                for c in [env.operator, *env.clients]:
                    c.close()
        bank.engine.dispose()
        doc, validators = openapi_of(app, bank.config)
        drift = violations(doc, recorder.records, cache=validators)
        assert not drift, "responses the OpenAPI document does not describe:\n" + "\n".join(
            drift[:20])


# --- helpers of the bank suite (tests/bank) ----------------------------------

def at_once(n: int, fn) -> list[object]:
    """``fn(i)`` from ``n`` threads released together; the results in order, a
    refusal as its ``BankHTTPError``."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BankHTTPError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


ENGINES = ["sqlite", "postgres"]


class DroppingTransport(httpx.HTTPTransport):
    """Delivers every request, but loses the next ``drop`` replies: the bank
    did the work, the client sees a transport error (a dropped connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if self.drop:
            self.drop -= 1
            response.read()
            response.close()
            raise httpx.ReadError("reply lost", request=request)
        return response


def dropping_client(env: BankEnv, token: str) -> tuple[BankClient, DroppingTransport]:
    transport = DroppingTransport()
    c = BankClient(env.url, token, transport=transport)
    env.clients.append(c)
    return c, transport


def token_of(c: BankClient) -> str:
    return c.http.headers["authorization"][len("Bearer "):]


@contextmanager
def second_server(env: BankEnv, config: BankConfig | None = None) -> Iterator[str]:
    """Another bank instance (own engine, own key cache) on the same database
    and key directory, served on its own port: what a second worker is."""
    bank = Bank.open(env.db_url, env.keys_dir, config, clock=env.clock)
    try:
        with ThreadedServer(create_app(bank, rate_limit=RateLimiter(1e6, 1e6))) as url:
            yield url
    finally:
        bank.engine.dispose()


def raw(env: BankEnv, method: str, path: str, token: str | None = None, *,
        json_body: object = None, content: bytes | None = None,
        headers: dict[str, str] | None = None) -> httpx.Response:
    """One request as sent, for hostile bodies the client would never build."""
    h = dict(headers or {})
    if token is not None:
        h["authorization"] = f"Bearer {token}"
    if json_body is not None:
        content = json.dumps(json_body).encode()
        h.setdefault("content-type", "application/json")
    http = getattr(env, "_raw_http", None)
    if http is None:  # one connection pool per bank (a new client costs ~30 ms)
        http = env._raw_http = env.client().http  # type: ignore[attr-defined]
    return http.request(method, path, content=content, headers=h)


def state_snapshot(env: BankEnv) -> dict:
    """Every row of every bank table: "no state change" means this is equal."""
    from ecash.bank.schema import metadata

    out = {}
    with env.bank.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(table.select()).all()
            out[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return out


def assert_audit_ok(env: BankEnv) -> dict:
    rep = env.operator.audit()
    assert rep["ok"], rep["problems"]
    return rep["figures"]


@contextmanager
def refused(status: int, code: str | None = None) -> Iterator[pytest.ExceptionInfo]:
    """``with refused(409, "challenges_mismatch"):`` the bank answers that problem."""
    from ecash.bank.client import BankHTTPError

    with pytest.raises(BankHTTPError) as info:
        yield info
    assert info.value.status == status, str(info.value)
    if code is not None:
        assert info.value.code == code, str(info.value)


def balance_of(env: BankEnv, account_id: str) -> int:
    return env.operator.operator_account(account_id)["balance"]



# --- a signer process (tests/bank/test_signer.py) ------------------------------

SIGNER_CODE = "import sys; from ecash.cli.main import app; app(sys.argv[1:])"


class SignerProcess:
    """``ecash bank signer`` on a key directory, as a process of its own: what
    the HTTP workers talk to in production. :meth:`restart` stops it (SIGTERM)
    and starts it again on the same socket."""

    def __init__(self, keys_dir: Path, socket_path: Path, *extra: str) -> None:
        self.keys_dir, self.socket_path, self.extra = keys_dir, socket_path, extra
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        from ecash.bank.signer import SignerClient, SignerUnavailable

        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIGNER_CODE, "bank", "signer", "--keys", str(self.keys_dir),
             "--socket", str(self.socket_path), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        probe = SignerClient(self.socket_path, timeout=5)
        try:
            for _ in range(300):
                try:
                    probe.public_info()
                    return
                except SignerUnavailable:
                    assert self.proc.poll() is None, self.proc.communicate()[1]
                    time.sleep(0.05)
            self.stop()
            raise AssertionError("the signer did not start")
        finally:
            probe.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=30)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def signer_process(keys_dir: Path, socket_path: Path, *extra: str) -> Iterator[SignerProcess]:
    """A running :class:`SignerProcess`, stopped when the block ends."""
    signer = SignerProcess(keys_dir, socket_path, *extra)
    signer.start()
    try:
        yield signer
    finally:
        signer.stop()


@contextmanager
def signer_socket() -> Iterator[Path]:
    """A path for a signer's socket, short enough for ``sun_path`` (108 bytes;
    pytest's directories can be longer), in a directory the signer makes."""
    base = Path(tempfile.mkdtemp(prefix="ecash-signer-"))
    try:
        yield base / "run" / "signer.sock"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def holder_at(env: BankEnv, url: str, name: str = "Alice", funds: int = 10_000) -> Holder:
    """A registered holder (opened through the env's bank) whose client talks
    to the bank at ``url``."""
    h = env.holder(name, funds)
    client = BankClient(url, token_of(h.client))
    env.clients.append(client)  # closed with the env
    return Holder(h.account_id, client, h.u1, env.clock)


@contextmanager
def signer_backed_server(env: BankEnv, socket_path: Path) -> Iterator[str]:
    """A bank instance on the env's database that holds no key: it asks the
    signer at ``socket_path`` (a :class:`SignerClient`), served on its own port."""
    from ecash.bank.signer import SignerClient

    client = SignerClient(socket_path, timeout=5)
    bank = Bank.open(env.db_url, client, clock=env.clock)
    try:
        with ThreadedServer(create_app(bank, rate_limit=RateLimiter(1e6, 1e6))) as url:
            yield url
    finally:
        client.close()
        bank.engine.dispose()


# --- helpers of the merchant suite (tests/merchant) --------------------------

def pay_request(holder: Holder, coins: list[tuple[Coin, CoinSecrets]],
                request: PaymentRequest) -> list[Spend]:
    """The holder's answer to a given request (the one a terminal shows)."""
    return [make_spend(c, s, holder.u1, request) for c, s in coins]


@contextmanager
def served_process(code: str, health_url: str) -> Iterator[list[str]]:
    """Run ``python -c code`` (a server) until the block ends, once
    ``health_url`` answers; yields its log lines (stderr), complete once the
    block has ended (the process is stopped with SIGTERM)."""
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        for _ in range(600):
            try:
                httpx.get(health_url, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.communicate()[1]
                time.sleep(0.1)
        yield lines
    finally:
        proc.send_signal(signal.SIGTERM)
        lines.extend(proc.communicate(timeout=30)[1].splitlines())
