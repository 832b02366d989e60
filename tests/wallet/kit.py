"""Wallet test kit: a stand-in merchant terminal over real HTTP (the endpoint
contract of the merchant issue), wallets on a real bank, and the checks that
a wallet and the bank's ledger agree."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ecash.crypto.errors import EcashError
from ecash.crypto.payment import (
    PaymentRequest,
    SignedRequest,
    make_receipt,
    sign_request,
    verify_spend,
)
from ecash.crypto.refusal import make_refusal
from ecash.crypto.sign import SigningKey
from ecash.serving.threaded import ThreadedServer
from ecash.wallet import TEST_KDF, Wallet
from ecash.wire import json as wj
from ecash.wire.binary import payment_items

from ..bankkit import BankEnv

ECASH = Path(sys.executable).with_name("ecash")
PASS = "correct horse battery staple"


class Terminal:
    """``POST <pos_url>`` with ``{"spends": [...]}``: 200 with a receipt (the
    same again for the identical payment), 422 with a ``code``, 404 unknown."""

    def __init__(self, env: BankEnv, merchant_id: str) -> None:
        self.env, self.merchant_id = env, merchant_id
        self.client = env.merchant(merchant_id)
        self.key = SigningKey.generate()
        self.cert = self.client.certify(self.key.public_key)
        self.requests: dict[str, PaymentRequest] = {}
        self.paid: dict[str, tuple[list, dict]] = {}
        self.serials: dict[bytes, str] = {}
        self.refuse: str | None = None  # answer 422 with this code
        self.refusal_key: SigningKey | None = None  # ... and a refusal signed by this key
        self.refused: dict[str, list] = {}  # the spends of every payment refused
        self.posts = 0
        app = FastAPI()

        @app.post("/pay/{rid}")
        async def pay(rid: str, request: Request) -> JSONResponse:
            self.posts += 1
            return self._pay(rid, await request.body())

        self.app = app
        self.server = ThreadedServer(app)
        self.url = self.server.start()

    def close(self) -> None:
        self.server.stop()

    def go_offline(self) -> None:
        self.server.stop()

    def come_back(self) -> None:
        self.server = ThreadedServer(self.app, port=self.server.port)
        self.server.start()

    def _problem(self, status: int, code: str) -> JSONResponse:
        return JSONResponse({"type": "about:blank", "title": code, "status": status,
                             "code": code, "detail": code}, status_code=status)

    def _pay(self, rid: str, body: bytes) -> JSONResponse:
        req = self.requests.get(rid)
        if req is None:
            return self._problem(404, "unknown_request")
        try:
            spends = [wj.spend_from_json(s) for s in wj.loads(body)["spends"]]
            if self.refuse:
                self.refused[rid] = spends
                return self._refusal(req, spends)
            keyset = self.env.operator.keyset()
            total = 0
            for sp in spends:
                if sp.request != req:
                    return self._problem(422, "wrong_request")
                key = keyset.key(sp.coin.key_id)
                verify_spend(sp, key, currency=req.currency, merchant_id=self.merchant_id)
                total += key.value
        except (EcashError, KeyError, TypeError, AttributeError):
            return self._problem(422, "invalid_spend")
        if total != req.amount:
            return self._problem(422, "wrong_amount")
        if rid in self.paid:
            if [wj.spend_to_json(s) for s in self.paid[rid][0]] != \
                    [wj.spend_to_json(s) for s in spends]:
                return self._problem(422, "already_paid")
            return JSONResponse({"status": "paid", "receipt": self.paid[rid][1]})
        if any(self.serials.get(sp.coin.coin_id, rid) != rid for sp in spends):
            return self._problem(422, "coin_seen")
        receipt = wj.receipt_to_json(make_receipt(self.key, req))
        self.paid[rid] = (spends, receipt)
        for sp in spends:
            self.serials[sp.coin.coin_id] = rid
        return JSONResponse({"status": "paid", "receipt": receipt})

    def _refusal(self, req: PaymentRequest, spends: list) -> JSONResponse:
        problem = {"type": "about:blank", "title": self.refuse, "status": 422,
                   "code": self.refuse, "detail": self.refuse}
        if self.refusal_key is not None:
            problem["refusal"] = wj.refusal_to_json(make_refusal(
                self.refusal_key, req.request_id, payment_items(spends), self.refuse))
        return JSONResponse(problem, status_code=422)

    def request(self, amount: int, *, pos: bool = True, timestamp_ms: int | None = None,
                currency: str = "CNY") -> SignedRequest:
        ts = timestamp_ms if timestamp_ms is not None else int(self.env.clock() * 1000)
        req = PaymentRequest(self.merchant_id, amount, currency, ts, secrets.token_bytes(16))
        rid = req.request_id.hex()
        self.requests[rid] = req
        return sign_request(self.key, self.cert, req, f"{self.url}/pay/{rid}" if pos else "")

    def deposit(self, spends: list) -> list[dict]:
        return self.client.deposit(spends)

    def deposit_paid(self) -> list[dict]:
        spends = [s for sp, _ in self.paid.values() for s in sp]
        return self.client.deposit(spends) if spends else []


@dataclass
class Holder:
    env: BankEnv
    account_id: str
    credential: str
    funds: int
    wallets: list[Wallet] = field(default_factory=list)

    def wallet(self, path: Path, *, register: bool = True, phrase: str | None = None
               ) -> Wallet:
        w, phrase_out = Wallet.create(path, PASS, kdf=TEST_KDF, clock=self.env.clock,
                                      phrase=phrase)
        w.phrase = phrase_out  # type: ignore[attr-defined]
        if register:
            w.register(self.env.url, self.account_id, self.credential)
        self.wallets.append(w)
        return w

    def restore(self, path: Path, phrase: str, **kw) -> tuple[Wallet, dict]:
        w, out = Wallet.restore(path, PASS, phrase, self.env.url, self.account_id,
                                self.credential, kdf=TEST_KDF, clock=self.env.clock, **kw)
        self.wallets.append(w)
        return w, out

    def bank_balance(self) -> int:
        return self.env.operator.operator_account(self.account_id)["balance"]

    def close(self) -> None:
        for w in self.wallets:
            w.close()


def holder(env: BankEnv, name: str = "Alice", funds: int = 150_000) -> Holder:
    account_id, credential = env.operator.open_account(name)
    env.operator.credit(account_id, funds, "initial")
    return Holder(env, account_id, credential, funds)


def coin_value(w: Wallet, states: tuple[str, ...]) -> int:
    marks = ",".join("?" * len(states))
    return w.store.conn.execute(f"SELECT COALESCE(SUM(value), 0) FROM coins WHERE state IN"
                                f" ({marks})", states).fetchone()[0]


def loaded_value(w: Wallet) -> int:
    return w.store.conn.execute("SELECT COALESCE(SUM(value), 0) FROM coins WHERE origin ="
                                " 'load'").fetchone()[0]


def assert_agree(env: BankEnv, h: Holder, w: Wallet) -> dict:
    """The bank's books and the wallet agree: audit ok, the account was debited
    exactly the coins the wallet holds from loads, no fraud case, and (with
    every payment deposited and the wallet synced) the e-cash liability is
    the wallet's unspent value."""
    rep = env.operator.audit()
    assert rep["ok"], rep["problems"]
    assert env.operator.fraud_cases() == []
    redeemed = w.store.conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM payments WHERE kind = 'redeem' AND status ="
        " 'settled'").fetchone()[0]
    assert h.funds - h.bank_balance() == loaded_value(w) - redeemed
    assert w.audit()["ok"], w.audit()
    return rep["figures"]


def answered_twice(w: Wallet) -> list:
    return w.store.conn.execute("SELECT coin_id FROM answers GROUP BY coin_id"
                                " HAVING COUNT(*) > 1").fetchall()


def run_cli(args: list[str], *, env_extra: dict[str, str] | None = None,
            input_text: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "ECASH_WALLET_PASSPHRASE": PASS, "COLUMNS": "200",
           **(env_extra or {})}
    return subprocess.run([str(ECASH), "wallet", *args], capture_output=True, text=True,
                          env=env, input=input_text, timeout=timeout)


class FlakyTransport(httpx.BaseTransport):
    """An httpx transport that, for the next request whose path contains
    ``path``, either fails before sending (``mode="before"``: the bank never
    sees it) or loses the reply (``mode="reply"``: the bank did the work)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.rule: tuple[str, str] | None = None

    def arm(self, path: str, mode: str) -> None:
        self.rule = (path, mode)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        rule = self.rule
        if rule and rule[0] in request.url.path and request.method == "POST":
            self.rule = None
            if rule[1] == "before":
                raise httpx.ConnectError("connection refused (test)", request=request)
            response = self.inner.handle_request(request)
            response.read()
            response.close()
            raise httpx.ReadError("reply lost (test)", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:  # shared by many short-lived clients: kept open
        pass
