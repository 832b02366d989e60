"""The terminal's web server (FastAPI): the wallet endpoint and the point of sale.

``POST /pay/{request_id_hex}`` is every request's ``pos_url``: body
``{"spends": [spend, ...]}`` (section 8 JSON), or the customer's ``ecpay1:``
text (a till taking the payment from the customer's side). ``GET
/r/{request_id_hex}`` answers an ``ecash:`` payment link with the signed
request and its signed description (docs/extensions.md). The three outcomes of ECASH-1
5.1: accepted, ``200 {"status": "paid", "receipt": receipt}``; refused,
``422`` problem details (RFC 9457) with a stable ``code`` and, when the
terminal signed one, ``"refusal"``; pending, ``202 {"status": "pending",
"request_id", "retry_after_s", "detail"}`` (send the identical payment again
after ``retry_after_s`` for the answer). An unknown request is ``404``. The
same payment again gets the same answer. A client, or a request, refused too
often is answered ``429`` for a while (:mod:`.refusal_limit`).

The rest serves the cashier on 127.0.0.1: ``/`` (the sale screen), ``/day``
(the day's sales and close), ``/receipt/{id}``, ``/report`` (settlement), and
their JSON under ``/api`` (docs/merchant.md), added by :mod:`.tillweb`.
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
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..crypto.errors import EcashError
from ..wire import json as wj
from ..wire.errors import WireError
from ..wire.text import PAYMENT_PREFIX, payment_from_text
from .accept import MAX_COINS
from .errors import Forbidden, MerchantError, PaymentPending, Refusal, RequestNotFound
from .refusal_limit import RefusalLimiter
from .requests import envelope_for_link
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
    """``{"spends": [spend, ...]}``, strictly, or the customer's ``ecpay1:`` text
    (what a till posts when it takes the payment from the customer's side);
    raises :class:`EcashError` with words."""
    if body.lstrip()[:len(PAYMENT_PREFIX)] == PAYMENT_PREFIX.encode():
        try:
            return payment_from_text(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise WireError("the payment text is not UTF-8", "bad_character") from None
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

    Only ``/pay/...``, ``/r/...`` (a payment link's envelope) and ``/health`` are
    for anyone. The cashier's pages and
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
        """Every route but ``/pay``, ``/r`` and ``/health`` starts with this."""
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

    @app.get("/r/{request_id}")
    async def fetch_request(request_id: str) -> JSONResponse:
        """The signed request an ``ecash:`` link names (docs/extensions.md), with
        the sale's signed description; the wallet checks the link's hash."""
        rid = _request_id(request_id)
        found = await run_in_threadpool(envelope_for_link, t, rid)
        return JSONResponse(found, headers={"cache-control": "no-store"})

    # --- the cashier's pages and their JSON -------------------------------------
    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "merchant_id": t.merchant_id}

    from .tillweb import add_till_routes

    add_till_routes(app, t, cashier=cashier, public_url=public_url)
    return app
