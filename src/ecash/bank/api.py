"""The bank's HTTP API under ``/v1`` (FastAPI). Handlers parse, call the core,
serialise; errors are RFC 9457 problem details with a stable ``code``.

Bodies are parsed by the strict ``ecash.wire`` decoders (not by pydantic), so
the API accepts exactly the encodings of ECASH-1 section 8; their JSON
schemas are published in ``/openapi.json`` through ``openapi_extra``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..crypto import registration as reg
from ..crypto.errors import EcashError
from ..wire import json as wj
from . import metrics, schemas
from .errors import BankError
from .ratelimit import RateLimiter
from .service import Bank, Principal
from .store import Disconnected

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
    """Rate limits per credential and address, and the latency histogram per
    route (plain ASGI: ``BaseHTTPMiddleware`` costs a task and a stream a request)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        auth = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
                break
        client = scope["client"][0] if scope.get("client") else "?"
        if not self.limiter.allow(client, auth):
            await problem(429, "rate_limited", "too many requests; slow down")(
                scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            metrics.LATENCY.labels(getattr(route, "path", "other")).observe(
                time.perf_counter() - started)


class BodyTooLarge(Exception):
    pass


async def read_json(request: Request) -> Any:
    """The body as JSON, bounded in size, strictly parsed."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise BodyTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BodyTooLarge()
    return wj.loads(bytes(body))


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


def create_app(bank: Bank, *, rate_limit: RateLimiter | None = None,
               on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """``on_shutdown`` runs as the server stops (before uvicorn re-raises the
    signal that stopped it, after which no other code of the process runs)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if on_shutdown is not None:
                await run_in_threadpool(on_shutdown)

    app = FastAPI(title="ecash bank", version="1", docs_url=None, redoc_url=None,
                  description="ECASH-1 bank: accounts, clause withdrawal, deposit, restore.",
                  responses=schemas.PROBLEM_RESPONSES, lifespan=lifespan)
    limiter = rate_limit or RateLimiter()
    app.state.bank = bank

    @app.exception_handler(BankError)
    async def _bank_error(_: Request, exc: BankError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail)

    @app.exception_handler(EcashError)
    async def _ecash_error(_: Request, exc: EcashError) -> JSONResponse:
        status = 400 if exc.code == "not_json" else 422
        return problem(status, exc.code, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, __: BodyTooLarge) -> JSONResponse:
        return problem(413, "body_too_large", f"bodies are limited to {MAX_BODY} bytes")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "bad_parameter", "; ".join(e["msg"] for e in exc.errors())[:500])

    @app.exception_handler(Disconnected)
    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, Disconnected) or getattr(exc, "connection_invalidated", False):
            log.warning("database connection lost: %s", exc)
            return problem(503, "database_unavailable",
                           "the database connection was lost; try again")
        log.error("database error", exc_info=exc)
        return problem(500, "internal", "internal error")

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return problem(500, "internal", "internal error")

    app.add_middleware(LimitsAndLatency, limiter=limiter)

    def principal(request: Request, role: str) -> Principal:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) > 200:
            raise BankError("unauthenticated", "a bearer credential is required", 401)
        who = bank.authenticate(auth[7:].strip())
        if who is None:
            raise BankError("unauthenticated", "unknown credential", 401)
        if who.role != role:
            raise BankError("forbidden", f"this endpoint needs a {role} credential", 403)
        return who

    def holder(request: Request, account_id: str) -> int:
        return bank.check_owner(principal(request, "holder"), account_id)

    def call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args, **kw)

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
        """Unauthenticated k-anonymous lookup of spent serials by SHA-256 prefix."""
        body = exact(await read_json(request), ("generation", "prefixes"))
        gen = wj.integer(body["generation"], "generation")
        prefixes = body["prefixes"]
        if not isinstance(prefixes, list):
            raise EcashError("prefixes: expected a list", "bad_type")
        return ok(await call(bank.spent_range, gen, [wj.integer(p, "prefix") for p in prefixes]))

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = None
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry) if registry else generate_latest()
        return Response(data, media_type=CONTENT_TYPE_LATEST)

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

    @app.post("/v1/accounts/{account_id}/withdrawals",
              openapi_extra=schemas.body(schemas.WITHDRAW))
    async def start_withdrawal(account_id: str, request: Request) -> Response:
        pk = holder(request, account_id)
        body = exact(await read_json(request), ("key_ids",))
        key_ids = hex_list(body["key_ids"], 32, "key_ids", bank.config.max_coins_per_session)
        return ok(await call(bank.start_withdrawal, pk, key_ids))

    @app.post("/v1/accounts/{account_id}/exchanges",
              openapi_extra=schemas.body(schemas.EXCHANGE))
    async def start_exchange(account_id: str, request: Request) -> Response:
        pk = holder(request, account_id)
        body = exact(await read_json(request), ("spends", "key_ids"))
        key_ids = hex_list(body["key_ids"], 32, "key_ids", bank.config.max_coins_per_session)
        spends = spend_list(body["spends"], bank.config.max_coins_per_session)
        return ok(await call(bank.start_withdrawal, pk, key_ids, redeem=spends))

    @app.post("/v1/accounts/{account_id}/withdrawals/{session_id}",
              openapi_extra=schemas.body(schemas.CHALLENGES))
    async def answer_withdrawal(account_id: str, session_id: str, request: Request) -> Response:
        pk = holder(request, account_id)
        sid = wj.hex_bytes(session_id, 16, "session_id")
        body = exact(await read_json(request), ("challenges",))
        raw = body["challenges"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= bank.config.max_coins_per_session:
            raise EcashError("challenges: expected a list of pairs", "bad_type")
        for i, pair in enumerate(raw):
            if not isinstance(pair, list) or len(pair) != 2:
                raise EcashError(f"challenges[{i}]: expected [c0, c1]", "bad_type")
        packed = wj.hex_items([c for pair in raw for c in pair], 32,
                              lambda i: f"challenges[{i // 2}][{i % 2}]")
        answers = await call(bank.answer_withdrawal, pk, sid, packed)
        return ok({"answers": [{"beta": b, "r": r.hex()} for b, r in answers]})

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

    @app.post("/v1/merchant/deposits", openapi_extra=schemas.body(schemas.SPENDS))
    async def deposit(request: Request) -> Response:
        who = principal(request, "merchant")
        body = exact(await read_json(request), ("spends",))
        spends = spend_list(body["spends"], bank.config.max_deposit_batch)
        verdicts = await call(bank.deposit, who.account, spends)
        return ok({"verdicts": [v.to_json() for v in verdicts]})

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
        return {"cases": await call(bank.fraud_list)}

    @app.get("/v1/operator/fraud/{case_id}")
    async def fraud_case(case_id: int, request: Request) -> dict:
        principal(request, "operator")
        return await call(bank.fraud_case, case_id)

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

    hot = {("POST", "/v1/accounts/{account_id}/withdrawals"), ("POST", "/v1/merchant/deposits"),
           ("POST", "/v1/accounts/{account_id}/withdrawals/{session_id}")}
    for route in [r for r in app.router.routes if isinstance(r, APIRoute)]:
        if any((m, route.path) in hot for m in route.methods):
            app.router.routes.insert(0, PlainRoute(route))
    return app


class PlainRoute(Route):
    """A hot endpoint served by plain Starlette, ahead of the FastAPI route it
    copies (which stays, for ``/openapi.json``): FastAPI's per-request work
    (dependency solving, parameter validation) cost about 6 of the bank's
    190 µs of CPU per coin of a 64-coin withdrawal. The endpoint takes only
    ``str`` path parameters and the request, so there is nothing to validate."""

    def __init__(self, api: APIRoute) -> None:
        endpoint = api.endpoint

        async def call(request: Request) -> Response:
            return await endpoint(request=request, **request.path_params)

        super().__init__(api.path, call, methods=list(api.methods))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self  # as FastAPI's routes do: the latency label
        return match, child


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` workers: ECASH_BANK_DB, ECASH_BANK_KEYS."""
    bank = Bank.open(os.environ["ECASH_BANK_DB"], Path(os.environ["ECASH_BANK_KEYS"]))
    if os.environ.get("ECASH_VERIFY_POOL") == "1":
        from ..crypto.batch import make_pool

        pool = bank.verify_pool = make_pool()
        return create_app(bank, on_shutdown=pool.shutdown)
    return create_app(bank)
