"""The terminal's web server (FastAPI): the wallet endpoint and the point of sale.

``POST /pay/{request_id_hex}`` is every request's ``pos_url``: body
``{"spends": [spend, ...]}`` (section 8 JSON). The three outcomes of ECASH-1
5.1: accepted, ``200 {"status": "paid", "receipt": receipt}``; refused,
``422`` problem details (RFC 9457) with a stable ``code`` and, when the
terminal signed one, ``"refusal"``; pending, ``202 {"status": "pending",
"request_id", "retry_after_s", "detail"}`` (send the identical payment again
after ``retry_after_s`` for the answer). An unknown request is ``404``. The
same payment again gets the same answer. A client, or a request, refused too
often is answered ``429`` for a while (:mod:`.refusal_limit`).

The rest serves the cashier on 127.0.0.1: ``/`` (keypad, QR, live status),
``/report`` (settlement), and their JSON under ``/api``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..crypto.errors import EcashError
from ..wire import json as wj
from ..wire.errors import WireError
from ..wire.text import request_to_text
from . import page, qr
from .accept import MAX_COINS
from .errors import Forbidden, MerchantError, PaymentPending, Refusal, RequestNotFound
from .page import PENDING_WORDS, refusal_words
from .refusal_limit import RefusalLimiter
from .requests import envelope_of
from .terminal import Terminal

log = logging.getLogger("ecash.merchant.http")

MAX_BODY = 1024 * 1024  # 1024 coins of section 8 JSON fit
PROBLEM = "application/problem+json"


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    return JSONResponse({"type": f"https://ecash.invalid/problems/{code}", "title": code,
                         "status": status, "detail": detail, "code": code, **extra},
                        status_code=status, media_type=PROBLEM, headers=headers)


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise BodyTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BodyTooLarge()
    return bytes(body)


def decode_payment(body: bytes) -> list:
    """``{"spends": [spend, ...]}``, strictly (raises :class:`EcashError`)."""
    obj = wj.exact_object(wj.loads(body), ("spends",), "body")
    spends = obj["spends"]
    if not isinstance(spends, list) or not 1 <= len(spends) <= MAX_COINS:
        raise WireError(f"spends: expected a list of 1 to {MAX_COINS} spends", "bad_type")
    return [wj.spend_from_json(s) for s in spends]


def _request_id(hex_id: str) -> bytes:
    if len(hex_id) != 64 or not all(c in "0123456789abcdef" for c in hex_id):
        raise RequestNotFound("unknown_request", "no such payment request at this terminal")
    return bytes.fromhex(hex_id)


LOOPBACK = ("127.0.0.1", "::1")


def create_app(t: Terminal, *, public_url: str | None = None,
               cashier_clients: Collection[str] | None = LOOPBACK,
               on_shutdown: Callable[[], None] | None = None,
               refusal_limiter: RefusalLimiter | None = None) -> FastAPI:
    """``public_url``: the base URL wallets reach this server at (the ``pos_url``
    prefix); by default the URL the cashier's browser used.

    Only ``/pay/...`` and ``/health`` are for anyone. The cashier's pages and
    ``/api`` answer clients at ``cashier_clients`` (``None``: any) that name
    this server as localhost, 127.0.0.1, [::1] or ``public_url``'s host, so a
    web page elsewhere cannot read the report through DNS rebinding.
    ``on_shutdown`` runs when the server stops (uvicorn then re-raises the
    signal that stopped it, so no code after ``uvicorn.run`` runs).
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if on_shutdown is not None:
                await run_in_threadpool(on_shutdown)

    app = FastAPI(title="ecash merchant terminal", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.terminal = t
    names = {"127.0.0.1", "localhost", "::1"}
    if public_url and urlsplit(public_url).hostname:
        names.add(urlsplit(public_url).hostname)

    def cashier(request: Request) -> None:
        """Every route but ``/pay`` and ``/health`` starts with this."""
        if cashier_clients is None:
            return
        client = request.client.host if request.client else ""
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if client not in cashier_clients or host not in names:
            raise Forbidden("cashier_only", "the point of sale answers the cashier only")

    limiter = refusal_limiter or RefusalLimiter()

    @app.exception_handler(MerchantError)
    async def _merchant_error(_: Request, exc: MerchantError) -> JSONResponse:
        extra = dict(getattr(exc, "extra", {}))
        if isinstance(exc, Refusal) and exc.signed is not None:
            extra["refusal"] = wj.refusal_to_json(exc.signed)
        return problem(exc.status, exc.code, exc.detail, **extra)

    @app.exception_handler(EcashError)
    async def _ecash_error(_: Request, exc: EcashError) -> JSONResponse:
        return problem(422, exc.code, str(exc))

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

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, _: ClientDisconnect) -> Response:
        """Nothing failed and nobody is left to answer: one brief line."""
        log.info("client disconnected before the body was complete: %s %s",
                 request.method, request.url.path)
        return Response(status_code=400)  # never sent: the connection is gone

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return problem(500, "internal", "internal error")

    # --- the wallet's endpoint ------------------------------------------------
    @app.post("/pay/{request_id}")
    async def pay(request_id: str, request: Request) -> JSONResponse:
        started = time.perf_counter()
        rid = _request_id(request_id)
        client = request.client.host if request.client else ""
        wait = limiter.retry_after(client, request_id)
        if wait > 0:
            return problem(429, "too_many_refusals", "too many refused payments from this client"
                           " or to this request; try again later",
                           headers={"retry-after": str(max(1, round(wait)))})
        body = await read_body(request)
        try:
            receipt = await run_in_threadpool(t.accept, rid, lambda: decode_payment(body))
        except Refusal:
            limiter.charge(client, request_id)
            raise
        except PaymentPending as exc:
            return JSONResponse({"status": "pending", "request_id": exc.request_id.hex(),
                                 "retry_after_s": exc.retry_after_s, "detail": exc.detail},
                                status_code=202,
                                headers={"retry-after": str(exc.retry_after_s)})
        took = (time.perf_counter() - started) * 1000
        return JSONResponse({"status": "paid", "receipt": wj.receipt_to_json(receipt)},
                            headers={"server-timing": f"accept;dur={took:.3f}"})

    # --- the cashier's pages and their JSON -------------------------------------
    @app.get("/", response_class=HTMLResponse)
    async def pos(request: Request) -> HTMLResponse:
        cashier(request)
        keys = t.keys
        return HTMLResponse(page.pos_page(t.merchant_id, keys.currency, keys.fingerprint))

    @app.get("/report", response_class=HTMLResponse)
    async def report_page(request: Request) -> HTMLResponse:
        cashier(request)
        return HTMLResponse(page.report_page(await run_in_threadpool(t.report)))

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "merchant_id": t.merchant_id}

    @app.get("/api/info")
    async def info(request: Request) -> dict:
        cashier(request)
        keys = t.keys
        return {"merchant_id": t.merchant_id, "currency": keys.currency,
                "keyset_fingerprint": keys.fingerprint, "floor_limit": keys.policy.floor_limit,
                "master_public_key": t.master_public_key.hex()}

    @app.post("/api/requests")
    async def new_request(request: Request) -> dict:
        cashier(request)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise MerchantError("bad_content_type", "send application/json")
        body = wj.exact_object(wj.loads(await read_body(request)), ("amount",), "body")
        base = public_url or str(request.base_url)
        env = await run_in_threadpool(t.create_request, wj.integer(body["amount"], "amount"),
                                      pos_base=base)
        text = request_to_text(env)
        record = await run_in_threadpool(t.store.request, env.request.request_id)
        return {"request_id": env.request.request_id.hex(), "amount": env.request.amount,
                "currency": env.request.currency, "pos_url": env.pos_url, "text": text,
                "expires_ms": record.expires_ms, "svg": qr.svg(text),
                "envelope": wj.envelope_to_json(env)}

    @app.get("/api/requests/{request_id}")
    async def request_status(request_id: str, request: Request) -> dict:
        cashier(request)
        rid = _request_id(request_id)
        record = await run_in_threadpool(t.store.request, rid)
        if record is None:
            raise RequestNotFound("unknown_request", "no such payment request at this terminal")
        log_ = await run_in_threadpool(t.store.refusal_log, rid)
        status = record.status
        if status == "open" and t.now_ms() > record.expires_ms:
            status = "expired"
        last = log_.last[0] if log_.last else None
        # codes only, in our own words: never text a payer sent
        out = {"request_id": request_id, "status": status, "amount": record.request.amount,
               "currency": record.request.currency, "expires_ms": record.expires_ms,
               "words": PENDING_WORDS if status == "pending" else None,
               "refusal": None if last is None else {"code": last.code,
                                                      "words": refusal_words(last.code),
                                                      "at_ms": last.at_ms,
                                                      "count": log_.count},
               "reason": None if status != "refused" else {
                   "code": record.code, "words": refusal_words(record.code or "")},
               "envelope": wj.envelope_to_json(envelope_of(t, record))}
        if record.status == "paid":
            out["receipt"] = {"request_id": request_id, "amount": record.request.amount,
                              "signature": record.receipt.hex()}
        return out

    @app.get("/api/report")
    async def report(request: Request) -> dict:
        cashier(request)
        return await run_in_threadpool(t.report)

    return app
