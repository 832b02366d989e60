"""The bank's HTTP API under ``/v1`` (FastAPI). Handlers parse, call the core,
serialise; errors are RFC 9457 problem details with a stable ``code``.

Bodies are parsed by the strict ``ecash.wire`` decoders (not by pydantic), so
the API accepts exactly the encodings of ECASH-1 section 8; their JSON
schemas are published in ``/openapi.json`` through ``openapi_extra``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from ..crypto import registration as reg
from ..crypto.errors import EcashError
from ..wire import json as wj
from . import metrics, schemas
from .errors import BankError
from .ratelimit import RateLimiter
from .service import Bank, Principal, is_credential
from .store import Disconnected, is_postgres
from .txn import AsyncLane, NeedsThread

log = logging.getLogger("ecash.bank.http")

MAX_BODY = 2 * 1024 * 1024
PROBLEM = "application/problem+json"


def problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": f"https://ecash.invalid/problems/{code}", "title": code,
                         "status": status, "detail": detail, "code": code},
                        status_code=status, media_type=PROBLEM)


def ok(obj: Any) -> Response:
    """A JSON answer serialised directly, by orjson: FastAPI's own path
    (validation against the return annotation, then ``jsonable_encoder``) and
    even the standard library's encoder cost more CPU than the handler on the
    withdrawal and deposit bodies."""
    return Response(orjson.dumps(obj), media_type="application/json")


class LimitsAndLatency:
    """The rate limit per client address, and the latency histogram per route
    (plain ASGI: ``BaseHTTPMiddleware`` costs a task and a stream a request).
    The limit per credential is taken where the credential is authenticated.

    A client that hangs up before its body is complete is logged here, once,
    as what it is: nothing failed, and nobody is left to answer."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if not self.limiter.allow(client_of(scope)):
            await problem(429, "rate_limited", "too many requests; slow down")(
                scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            client_gone(scope)
        finally:
            route = scope.get("route")
            metrics.LATENCY.labels(getattr(route, "path", "other")).observe(
                time.perf_counter() - started)


def header(scope: Scope, name: bytes) -> str:
    """The first value of a request header (lowercase ``name``), or ``""``."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def client_of(scope: Scope) -> str:
    return scope["client"][0] if scope.get("client") else "?"


def client_gone(scope: Scope) -> None:
    """Log a request whose client hung up before its body was complete."""
    log.info("client disconnected before the body was complete: %s %s from %s",
             scope.get("method"), scope.get("path"), client_of(scope))


class BodyTooLarge(Exception):
    pass


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, bounded in size (the declared length is checked first)."""
    declared = header(scope, b"content-length")
    if declared and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise BodyTooLarge()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


Body = Callable[[], Awaitable[bytes]]


def body_reader(scope: Scope, receive: Receive) -> Body:
    """The body, read when the endpoint asks (after it has authenticated)."""
    return functools.partial(read_body, scope, receive)


async def read_json(request: Request) -> Any:
    """The body as JSON, bounded in size, strictly parsed."""
    return wj.loads(await read_body(request.scope, request.receive))


def field(obj: Any, name: str, what: str = "body") -> Any:
    if not isinstance(obj, dict):
        raise EcashError(f"{what}: expected a JSON object", "bad_type")
    if name not in obj:
        raise EcashError(f"{what}: missing key {name}", "missing_key")
    return obj[name]


def exact(obj: Any, keys: tuple[str, ...], what: str = "body") -> dict:
    return wj._object(obj, keys, what)


def text(v: Any, what: str) -> str:
    """A string the database can store. JSON escapes can carry a lone surrogate
    (not UTF-8, so no driver can send it) and NUL (which PostgreSQL text
    refuses): either would otherwise fail inside the transaction as a 500."""
    s = wj.string(v, what)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise EcashError(f"{what}: not valid UTF-8 text", "bad_text") from None
    if "\x00" in s:
        raise EcashError(f"{what}: NUL is not allowed in text", "bad_text")
    return s


def hex_list(v: Any, n: int, what: str, limit: int) -> list[bytes]:
    if not isinstance(v, list) or not 1 <= len(v) <= limit:
        raise EcashError(f"{what}: expected a list of 1 to {limit} items", "bad_type")
    raw = wj.hex_items(v, n, lambda i: f"{what}[{i}]")
    return [raw[i:i + n] for i in range(0, len(raw), n)]


def spend_list(v: Any, limit: int) -> list:
    if not isinstance(v, list) or not 1 <= len(v) <= limit:
        raise EcashError(f"spends: expected a list of 1 to {limit} spends", "bad_type")
    return [wj.spend_from_json(s) for s in v]


def problem_for(exc: Exception) -> JSONResponse:
    """The problem document of a failed request (the stable ``code`` and the
    HTTP status); unexpected errors are logged and never shown."""
    if isinstance(exc, BankError):
        return problem(exc.status, exc.code, exc.detail)
    if isinstance(exc, EcashError):
        return problem(400 if exc.code == "not_json" else 422, exc.code, str(exc))
    if isinstance(exc, BodyTooLarge):
        return problem(413, "body_too_large", f"bodies are limited to {MAX_BODY} bytes")
    if isinstance(exc, StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))
    if isinstance(exc, RequestValidationError):
        return problem(422, "bad_parameter", "; ".join(e["msg"] for e in exc.errors())[:500])
    if isinstance(exc, Disconnected) or getattr(exc, "connection_invalidated", False):
        log.warning("database connection lost: %s", exc)
        return problem(503, "database_unavailable", "the database connection was lost; try again")
    if isinstance(exc, DBAPIError):
        log.error("database error", exc_info=exc)
    else:
        log.error("internal error", exc_info=exc)
    return problem(500, "internal", "internal error")


_HANDLED = (BankError, EcashError, BodyTooLarge, StarletteHTTPException, RequestValidationError,
            Disconnected, DBAPIError, Exception)


class HotRoute(NamedTuple):
    """An endpoint served ahead of FastAPI: ``endpoint(authorization,
    body_reader, **path_params)``; ``parts`` is the path template split at ``/``."""

    path: str
    parts: tuple[str, ...]
    endpoint: Callable[..., Awaitable[Response]]
    latency: Any  # the route's latency histogram

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.parts):
            return None
        params = {}
        for want, got in zip(self.parts, parts, strict=True):
            if want[:1] == "{":
                if not got:
                    return None
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


class BankAPI(FastAPI):
    """The bank's FastAPI app, with its hot endpoints (the two withdrawal steps
    and the deposit) served ahead of FastAPI's middleware stack and router.

    Every request of a withdrawal wakes a process that has been idle while the
    wallet blinded, and on the virtual machines banks run on, code that runs
    cold costs three times what it costs warm: FastAPI's per-request layers
    (error and telemetry middleware, body limits, exit stacks, routing,
    dependency solving) cost as much CPU as uvicorn itself. The hot endpoints
    keep the same rate limits, latency labels and problem documents; their
    FastAPI twins stay registered, for ``/openapi.json`` and every other
    method on their paths."""

    hot_routes: tuple[HotRoute, ...] = ()
    limiter: RateLimiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.hot_routes:
            parts = scope["path"].split("/")
            for route in self.hot_routes:
                params = route.match(parts)
                if params is not None:
                    await self._serve_hot(route, params, scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    async def _serve_hot(self, route: HotRoute, params: dict[str, str], scope: Scope,
                         receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        scope["route"] = route  # as FastAPI's routes do: the latency label
        auth = header(scope, b"authorization")
        if not self.limiter.allow(client_of(scope)):
            response: Response = problem(429, "rate_limited", "too many requests; slow down")
        else:
            try:
                response = await route.endpoint(auth, body_reader(scope, receive), **params)
            except ClientDisconnect:
                client_gone(scope)
                return
            except Exception as exc:  # every failure is a problem document
                response = problem_for(exc)
        await response(scope, receive, send)
        route.latency.observe(time.perf_counter() - started)


def create_app(bank: Bank, *, rate_limit: RateLimiter | None = None,
               on_shutdown: Callable[[], None] | None = None) -> BankAPI:
    """``on_shutdown`` runs as the server stops (before uvicorn re-raises the
    signal that stopped it, after which no other code of the process runs)."""
    # the core's calls block (database, group operations): they run on worker
    # threads, handed over by asyncio itself (anyio's hop costs 3 times more)
    threads = ThreadPoolExecutor(max_workers=40, thread_name_prefix="ecash-bank")
    # on PostgreSQL the withdrawal's transactions run on the loop itself, their
    # round trips awaited (no hop); the rest, and whatever needs more, on threads
    lane = AsyncLane(bank.engine, threads) if is_postgres(bank.engine) else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if lane is not None:
                lane.close()
            if on_shutdown is not None:
                await call(on_shutdown)
            threads.shutdown(wait=False)

    app = BankAPI(title="ecash bank", version="1", docs_url=None, redoc_url=None,
                  description="ECASH-1 bank: accounts, clause withdrawal, deposit, restore.",
                  responses=schemas.PROBLEM_RESPONSES, lifespan=lifespan)
    limiter = app.limiter = rate_limit or RateLimiter()
    app.state.bank = bank

    async def _problem(_: Request, exc: Exception) -> JSONResponse:
        return problem_for(exc)

    for exc_class in _HANDLED:
        app.add_exception_handler(exc_class, _problem)
    app.add_middleware(LimitsAndLatency, limiter=limiter)

    def principal_of(auth: str, role: str) -> Principal:
        """Who ``auth`` (an ``Authorization`` header) belongs to, if it may call
        an endpoint of ``role``, within its rate limit. Only the exact form
        ``Bearer <credential>`` is read: any other spelling of a credential
        (padding, another case) is refused, never looked up or counted apart."""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not is_credential(token):
            raise BankError("unauthenticated", "an Authorization header of exactly"
                            " 'Bearer <credential>' is required", 401)
        who = bank.authenticate(token)
        if who is None:
            raise BankError("unauthenticated", "unknown credential", 401)
        if not limiter.allow_principal(f"{who.role}:{who.account}"):
            raise BankError("rate_limited", "too many requests; slow down", 429)
        if who.role != role:
            raise BankError("forbidden", f"this endpoint needs a {role} credential", 403)
        return who

    def principal(request: Request, role: str) -> Principal:
        return principal_of(request.headers.get("authorization", ""), role)

    def holder(request: Request, account_id: str) -> int:
        return bank.check_owner(principal(request, "holder"), account_id)

    def call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Awaitable[Any]:
        if kw:
            fn, args = functools.partial(fn, *args, **kw), ()
        return asyncio.get_running_loop().run_in_executor(threads, fn, *args)

    def hot_args(request: Request) -> tuple[str, Body]:
        """A hot endpoint's arguments, when its FastAPI twin is the one called."""
        return header(request.scope, b"authorization"), body_reader(request.scope,
                                                                    request.receive)

    # --- public ---------------------------------------------------------------
    @app.get("/v1/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/keyset", openapi_extra=schemas.response(schemas.KEYSET))
    async def keyset() -> Response:
        return ok(wj.keyset_to_json(await call(bank.keyset)))

    @app.get("/v1/generations")
    async def generations() -> dict:
        return {"generations": await call(bank.generations_info)}

    @app.post("/v1/spent-range", openapi_extra=schemas.body(schemas.SPENT_RANGE))
    async def spent_range(request: Request) -> Response:
        """Unauthenticated lookup of a page of spent coin_ids by bucket prefix;
        each client is charged for the coin_ids it is sent (429 with
        ``Retry-After`` once its budget is spent)."""
        client = client_of(request.scope)
        wait = limiter.spent_ids_wait(client)
        if wait > 0:
            refused = problem(429, "rate_limited", "too many spent coin_ids asked for; retry"
                              " after the time in Retry-After")
            refused.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return refused
        body = exact(await read_json(request), ("generation", "prefix_bits", "prefixes", "after"))
        prefixes = body["prefixes"]
        if not isinstance(prefixes, list):
            raise EcashError("prefixes: expected a list", "bad_type")
        after = body["after"]
        page = await call(bank.spent_range, wj.integer(body["generation"], "generation"),
                          wj.integer(body["prefix_bits"], "prefix_bits"),
                          [wj.integer(p, "prefix") for p in prefixes],
                          None if after is None else wj.hex_bytes(after, 32, "after"))
        limiter.charge_spent_ids(client, len(page["coin_ids"]))
        return ok(page)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        """The operator's figures (an operator credential; a scraper without
        one reads them on ``ecash bank serve --metrics-listen``)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        principal(request, "operator")
        return Response(generate_latest(metrics.registry()), media_type=CONTENT_TYPE_LATEST)

    # --- holder -----------------------------------------------------------------
    @app.get("/v1/accounts/{account_id}")
    async def account(account_id: str, request: Request) -> dict:
        holder(request, account_id)
        return await call(bank.account_info, account_id)

    @app.post("/v1/accounts/{account_id}/identity",
              openapi_extra=schemas.body(schemas.REGISTRATION))
    async def register(account_id: str, request: Request) -> dict:
        pk = holder(request, account_id)
        body = exact(await read_json(request), ("I", "t", "p"))
        proof = reg.RegistrationProof(wj.hex_bytes(body["I"], 32, "I"),
                                      wj.hex_bytes(body["t"], 32, "t"), wj.scalar(body["p"], "p"))
        await call(bank.register_identity, pk, account_id, proof)
        return {"status": "registered", "identity": proof.I.hex()}

    async def hot_start_withdrawal(auth: str, body: Body, account_id: str) -> Response:
        pk = bank.check_owner(principal_of(auth, "holder"), account_id)
        fields = exact(wj.loads(await body()), ("key_ids",))
        key_ids = hex_list(fields["key_ids"], 32, "key_ids", bank.config.max_coins_per_session)
        if lane is not None:
            with contextlib.suppress(NeedsThread):
                return ok(await lane.run(bank.start_steps(pk, key_ids, on_loop=True)))
        return ok(await call(bank.start_withdrawal, pk, key_ids))

    @app.post("/v1/accounts/{account_id}/withdrawals",
              openapi_extra=schemas.body(schemas.WITHDRAW))
    async def start_withdrawal(account_id: str, request: Request) -> Response:
        return await hot_start_withdrawal(*hot_args(request), account_id)

    @app.post("/v1/accounts/{account_id}/exchanges",
              openapi_extra=schemas.body(schemas.EXCHANGE))
    async def start_exchange(account_id: str, request: Request) -> Response:
        pk = holder(request, account_id)
        body = exact(await read_json(request), ("spends", "key_ids"))
        key_ids = hex_list(body["key_ids"], 32, "key_ids", bank.config.max_coins_per_session)
        spends = spend_list(body["spends"], bank.config.max_coins_per_session)
        return ok(await call(bank.start_withdrawal, pk, key_ids, redeem=spends))

    async def hot_answer_withdrawal(auth: str, body: Body, account_id: str,
                                    session_id: str) -> Response:
        pk = bank.check_owner(principal_of(auth, "holder"), account_id)
        sid = wj.hex_bytes(session_id, 16, "session_id")
        raw = exact(wj.loads(await body()), ("challenges",))["challenges"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= bank.config.max_coins_per_session:
            raise EcashError("challenges: expected a list of pairs", "bad_type")
        for i, pair in enumerate(raw):
            if not isinstance(pair, list) or len(pair) != 2:
                raise EcashError(f"challenges[{i}]: expected [c0, c1]", "bad_type")
        packed = wj.hex_items([c for pair in raw for c in pair], 32,
                              lambda i: f"challenges[{i // 2}][{i % 2}]")
        answers = None
        if lane is not None:
            with contextlib.suppress(NeedsThread):
                answers = await lane.retrying(lambda: bank.answer_steps(pk, sid, packed))
        if answers is None:
            answers = await call(bank.answer_withdrawal, pk, sid, packed)
        return ok({"answers": [{"beta": b, "r": r.hex()} for b, r in answers]})

    @app.post("/v1/accounts/{account_id}/withdrawals/{session_id}",
              openapi_extra=schemas.body(schemas.CHALLENGES))
    async def answer_withdrawal(account_id: str, session_id: str, request: Request) -> Response:
        return await hot_answer_withdrawal(*hot_args(request), account_id, session_id)

    @app.get("/v1/accounts/{account_id}/withdrawals")
    async def withdrawal_records(account_id: str, request: Request) -> Response:
        pk = holder(request, account_id)
        return ok({"withdrawals": await call(bank.withdrawal_records, pk)})

    @app.post("/v1/accounts/{account_id}/redemptions",
              openapi_extra=schemas.body(schemas.SPENDS))
    async def redeem(account_id: str, request: Request) -> Response:
        pk = holder(request, account_id)
        body = exact(await read_json(request), ("spends",))
        spends = spend_list(body["spends"], bank.config.max_deposit_batch)
        verdicts = await call(bank.deposit, pk, spends, redemption=True)
        return ok({"verdicts": [v.to_json() for v in verdicts]})

    @app.post("/v1/accounts/{account_id}/close")
    async def close(account_id: str, request: Request) -> dict:
        pk = holder(request, account_id)
        return await call(bank.close_account, pk)

    @app.post("/v1/accounts/{account_id}/disputes", openapi_extra=schemas.body(schemas.DISPUTE))
    async def dispute(account_id: str, request: Request) -> Response:
        """A merchant's signed refusal of a payment it deposited (ECASH-1 5.1)."""
        pk = holder(request, account_id)
        body = exact(await read_json(request), ("envelope", "spends", "refusal"))
        return ok(await call(bank.dispute, pk, wj.envelope_from_json(body["envelope"]),
                             spend_list(body["spends"], bank.config.max_coins_per_session),
                             wj.refusal_from_json(body["refusal"])))

    # --- merchant -------------------------------------------------------------
    @app.get("/v1/merchant")
    async def merchant(request: Request) -> dict:
        who = principal(request, "merchant")
        return await call(bank.merchant_info, who.account)

    @app.post("/v1/merchant/certificate", openapi_extra=schemas.body(schemas.PUBLIC_KEY))
    async def certificate(request: Request) -> dict:
        who = principal(request, "merchant")
        body = exact(await read_json(request), ("public_key",))
        cert = await call(bank.certify_terminal, who.account,
                          wj.hex_bytes(body["public_key"], 32, "public_key"))
        return wj.certificate_to_json(cert)

    async def hot_deposit(auth: str, body: Body) -> Response:
        who = principal_of(auth, "merchant")
        fields = exact(wj.loads(await body()), ("spends",))
        spends = spend_list(fields["spends"], bank.config.max_deposit_batch)
        verdicts = await call(bank.deposit, who.account, spends)
        return ok({"verdicts": [v.to_json() for v in verdicts]})

    @app.post("/v1/merchant/deposits", openapi_extra=schemas.body(schemas.SPENDS))
    async def deposit(request: Request) -> Response:
        return await hot_deposit(*hot_args(request))

    # --- operator -------------------------------------------------------------
    @app.post("/v1/operator/accounts", openapi_extra=schemas.body(schemas.OPEN_ACCOUNT))
    async def open_account(request: Request) -> dict:
        principal(request, "operator")
        body = exact(await read_json(request), ("holder",))
        account_id, token = await call(bank.open_account, text(body["holder"], "holder"))
        return {"account_id": account_id, "credential": token}

    @app.post("/v1/operator/accounts/{account_id}/credit",
              openapi_extra=schemas.body(schemas.CREDIT))
    async def credit(account_id: str, request: Request) -> dict:
        principal(request, "operator")
        body = exact(await read_json(request), ("amount", "reference"))
        balance = await call(bank.credit, account_id, wj.integer(body["amount"], "amount"),
                             text(body["reference"], "reference"))
        return {"account_id": account_id, "balance": balance}

    @app.post("/v1/operator/accounts/{account_id}/status",
              openapi_extra=schemas.body(schemas.STATUS))
    async def set_status(account_id: str, request: Request) -> dict:
        principal(request, "operator")
        body = exact(await read_json(request), ("status",))
        await call(bank.set_status, account_id, text(body["status"], "status"))
        return {"account_id": account_id, "status": body["status"]}

    @app.post("/v1/operator/accounts/{account_id}/merchant",
              openapi_extra=schemas.body(schemas.MERCHANT))
    async def register_merchant(account_id: str, request: Request) -> dict:
        principal(request, "operator")
        body = exact(await read_json(request), ("merchant_id",))
        token = await call(bank.register_merchant, account_id,
                           text(body["merchant_id"], "merchant_id"))
        return {"account_id": account_id, "merchant_id": body["merchant_id"],
                "credential": token}

    @app.get("/v1/operator/accounts/{account_id}")
    async def operator_account(account_id: str, request: Request) -> dict:
        principal(request, "operator")
        return await call(bank.account_info, account_id)

    @app.get("/v1/operator/fraud")
    async def fraud_list(request: Request) -> dict:
        principal(request, "operator")
        return {"cases": await call(bank.fraud_overview)}

    @app.get("/v1/operator/fraud/{case_id}")
    async def fraud_case(case_id: int, request: Request) -> dict:
        principal(request, "operator")
        return await call(bank.fraud_case, case_id)

    @app.get("/v1/operator/disputes")
    async def dispute_list(request: Request) -> Response:
        principal(request, "operator")
        return ok({"disputes": await call(bank.dispute_list)})

    @app.get("/v1/operator/disputes/{dispute_id}")
    async def dispute_info(dispute_id: int, request: Request) -> Response:
        principal(request, "operator")
        return ok(await call(bank.dispute_info, dispute_id))

    @app.get("/v1/operator/audit")
    async def audit(request: Request) -> dict:
        principal(request, "operator")
        rep = await call(bank.audit)
        return {"ok": rep.ok, "problems": rep.problems, "figures": rep.figures}

    @app.post("/v1/operator/maintenance")
    async def maintenance(request: Request) -> dict:
        """Book breakage of expired generations and release due payouts."""
        principal(request, "operator")
        closed = await call(bank.close_generations)
        paid = await call(bank.release_payouts)
        return {"closed_generations": closed,
                "payouts": [{"account_id": a, "amount": n} for a, n in paid]}

    app.hot_routes = tuple(
        HotRoute(path, tuple(path.split("/")), endpoint, metrics.LATENCY.labels(path))
        for path, endpoint in (
            ("/v1/accounts/{account_id}/withdrawals", hot_start_withdrawal),
            ("/v1/accounts/{account_id}/withdrawals/{session_id}", hot_answer_withdrawal),
            ("/v1/merchant/deposits", hot_deposit)))
    return app


def app_from_env() -> BankAPI:
    """Factory for ``uvicorn --factory`` workers: ECASH_BANK_DB, ECASH_BANK_KEYS."""
    bank = Bank.open(os.environ["ECASH_BANK_DB"], Path(os.environ["ECASH_BANK_KEYS"]))
    if os.environ.get("ECASH_VERIFY_POOL") == "1":
        from ..crypto.batch import make_pool

        pool = bank.verify_pool = make_pool()
        return create_app(bank, on_shutdown=pool.shutdown)
    return create_app(bank)
