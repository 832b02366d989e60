"""The bank's HTTP API under ``/v1`` (FastAPI): one handler per endpoint.

Each body is a pydantic model (``models``) that FastAPI validates and
documents; the ``ecash.wire`` decoders then check what a pattern cannot
(canonical points and scalars). Errors are RFC 9457 problem details with a
stable ``code``, listed per operation in ``/openapi.json`` (``schemas``).
The core's calls block (database, group operations, the signer): every
handler runs them on a thread pool.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from ..crypto import registration as reg
from ..crypto.errors import EcashError
from ..wire import json as wj
from . import metrics, schemas
from . import models as m
from .errors import BankError
from .logs import RequestId
from .ratelimit import RateLimiter
from .routing import MAX_BODY, BodyTooLarge, WireRoute, header
from .service import Bank, Principal, is_credential
from .signer import SignerClient
from .store import Disconnected

log = logging.getLogger("ecash.bank.http")

PROBLEM = schemas.PROBLEM_MEDIA
M = TypeVar("M", bound=BaseModel)


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem document; ``extra`` members follow the standard ones (an
    ``account_frozen`` problem's ``reason`` and ``case``)."""
    return JSONResponse({"type": f"https://ecash.invalid/problems/{code}", "title": code,
                         "status": status, "detail": detail, "code": code, **extra},
                        status_code=status, media_type=PROBLEM)


def ok(model: BaseModel) -> Response:
    """Every answer: the model the handler built (and so validated), as JSON.
    Keys the core left out stay out (``exclude_unset``): a verdict without a
    fraud case has no ``fraud_case`` key, as before."""
    return Response(model.model_dump_json(exclude_unset=True), media_type="application/json")


def build(model: type[M], data: Any) -> Response:
    return ok(model.model_validate(data))


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
            log.info("client disconnected before the body was complete: %s %s from %s",
                     scope.get("method"), scope.get("path"), client_of(scope))
        finally:
            route = scope.get("route")
            metrics.LATENCY.labels(getattr(route, "path", "other")).observe(
                time.perf_counter() - started)


def client_of(scope: Scope) -> str:
    return scope["client"][0] if scope.get("client") else "?"


TYPE_ERRORS = {"missing": "missing_key", "extra_forbidden": "unknown_key",
               "json_invalid": "not_json", "greater_than_equal": "out_of_range",
               "less_than_equal": "out_of_range"}
FIELD_CODES = {"holder": "bad_holder", "reference": "bad_reference", "status": "bad_status",
               "merchant_id": "bad_merchant_id", "prefixes": "bad_prefixes",
               "prefix_bits": "bad_prefix_bits", "text": "bad_text"}
"""Top-level fields whose wrong values (not wrong types) keep the core's code."""


def validation_code(err: dict) -> str:
    """The problem code of pydantic's first error: the wire's codes (section 8)."""
    kind, loc = err["type"], tuple(err["loc"])
    if kind in schemas.SHAPE or kind in ("bad_text",):
        return kind
    if loc[:1] != ("body",):
        return "bad_parameter"
    if kind in ("missing", "extra_forbidden", "json_invalid") or kind.endswith("_type"):
        return TYPE_ERRORS.get(kind, "bad_type")
    if len(loc) in (2, 3) and loc[1] in FIELD_CODES:
        return FIELD_CODES[loc[1]]
    if kind in TYPE_ERRORS:
        return TYPE_ERRORS[kind]
    if kind == "string_pattern_mismatch" and str(err.get("ctx", {}).get("pattern", "")
                                                 ).startswith("^[0-9a-f]"):
        value = err.get("input")
        want = int(err["ctx"]["pattern"].split("{")[1].split("}")[0])
        return "wrong_length" if isinstance(value, str) and len(value) != want else "bad_hex"
    if kind in ("too_short", "too_long"):
        return "bad_type"
    return "bad_value"


def problem_for(exc: Exception) -> JSONResponse:
    """The problem document of a failed request (the stable ``code`` and the
    HTTP status); unexpected errors are logged and never shown."""
    if isinstance(exc, BankError):
        return problem(exc.status, exc.code, exc.detail, **exc.extra)
    if isinstance(exc, EcashError):
        return problem(400 if exc.code == "not_json" else 422, exc.code, str(exc))
    if isinstance(exc, BodyTooLarge):
        return problem(413, "body_too_large", f"bodies are limited to {MAX_BODY} bytes")
    if isinstance(exc, StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed",
                413: "body_too_large"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        code = validation_code(errors[0]) if errors else "bad_value"
        detail = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or e['loc'][0]}: {e['msg']}"
                           for e in errors[:5])[:500]
        return problem(400 if code == "not_json" else 422, code, detail)
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

bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="`Authorization: Bearer <credential>`, exactly: a holder's,"
                                " a merchant's or the operator's credential. Each operation's"
                                " `x-role` names the role it needs.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def principal_of(request: Request, role: str) -> Principal:
    """Who the request's ``Authorization`` header belongs to, if it may call
    an endpoint of ``role``, within its rate limit. Only the exact form
    ``Bearer <credential>`` is read: any other spelling of a credential
    (padding, another case) is refused, never looked up or counted apart."""
    auth = header(request.scope, b"authorization")
    token = auth[7:] if auth.startswith("Bearer ") else ""
    if not is_credential(token):
        raise BankError("unauthenticated", "an Authorization header of exactly"
                        " 'Bearer <credential>' is required", 401)
    who = request.app.state.bank.authenticate(token)
    if who is None:
        raise BankError("unauthenticated", "unknown credential", 401)
    if not request.app.state.limiter.allow_principal(f"{who.role}:{who.account}"):
        raise BankError("rate_limited", "too many requests; slow down", 429)
    if who.role != role:
        raise BankError("forbidden", f"this endpoint needs a {role} credential", 403)
    return who


def needs(role: str) -> Callable[..., Awaitable[Principal]]:
    """The dependency of a ``role``'s operations (documented as bearer security).

    The dependencies are coroutines, run on the event loop: FastAPI would run
    plain functions on a worker thread of their own, a second thread hop per
    request beside the core's. Credentials and account ids are remembered by
    the core, so only the first request of each reads the database here (on
    the loop, as the earlier hot endpoints did)."""
    async def dependency(request: Request, _: Bearer) -> Principal:
        return principal_of(request, role)

    return dependency


async def owner(request: Request, account_id: str, _: Bearer) -> int:
    """The internal id of the path's account, if the request's credential is
    its holder's: checked before the body is judged, so that another account's
    credential learns nothing from a body's errors."""
    return request.app.state.bank.check_owner(principal_of(request, "holder"), account_id)


Owner = Annotated[int, Depends(owner)]
MerchantP = Annotated[Principal, Depends(needs("merchant"))]
Operator = Annotated[Principal, Depends(needs("operator"))]


def document_caps(doc: dict, config: Any) -> dict:
    """Each list marked ``x-cap`` (``models.cap``) gets this bank's value of
    that setting as ``maxItems``, and its description says it."""
    def visit(node: Any) -> None:
        if isinstance(node, dict):
            name = node.get("x-cap")
            if name is not None:
                node["maxItems"] = getattr(config, name)
                text = node.get("description", "").replace(
                    "at most max_outstanding_coins",
                    f"at most {config.max_outstanding_coins} (max_outstanding_coins)")
                node["description"] = f"{text} (at most {node['maxItems']}: {name})"
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(doc)
    return doc


def create_app(bank: Bank, *, rate_limit: RateLimiter | None = None,
               on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """``on_shutdown`` runs as the server stops (before uvicorn re-raises the
    signal that stopped it, after which no other code of the process runs)."""
    threads = ThreadPoolExecutor(max_workers=40, thread_name_prefix="ecash-bank")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if on_shutdown is not None:
                await call(on_shutdown)
            threads.shutdown(wait=False)

    app = FastAPI(title="ecash bank", version="1", docs_url=None, redoc_url=None,
                  description="ECASH-1 bank: accounts, clause withdrawal, deposit, restore."
                              " Every error is a problem document (RFC 9457) whose `code`"
                              " each operation lists; every body is validated strictly"
                              " (unknown keys, wrong types, non-canonical hex are refused).",
                  lifespan=lifespan, strict_content_type=False)
    app.router.route_class = WireRoute
    limiter = rate_limit or RateLimiter()
    app.state.bank = bank
    app.state.limiter = limiter

    async def _problem(_: Request, exc: Exception) -> JSONResponse:
        return problem_for(exc)

    for exc_class in _HANDLED:
        app.add_exception_handler(exc_class, _problem)
    app.add_middleware(LimitsAndLatency, limiter=limiter)
    app.add_middleware(RequestId)

    def call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Awaitable[Any]:
        """``fn`` on the thread pool, after re-reading the bank's settings if
        they are older than ``policy.RELOAD_S`` (outside any transaction)."""
        def run() -> Any:
            bank.refresh_settings()
            return fn(*args, **kw)

        return asyncio.get_running_loop().run_in_executor(threads, run)

    def op(method: str, path: str, model: type[BaseModel], role: str | None, *,
           body: bool = False, summary: str | None = None) -> Callable:
        """Register an operation with its response model, role and error codes."""
        def register(fn: Callable) -> Callable:
            name = fn.__name__
            who = schemas.ROLE_TEXT.get(role or "", "no credential")
            doc = inspect.cleandoc(fn.__doc__ or "")
            return app.api_route(
                path, methods=[method], response_model=model, name=name,
                summary=summary, description=f"{doc}\n\nRole: **{role or 'public'}** ({who}).",
                responses=schemas.error_responses(name, role=role, body=body,
                                                  path_params="{" in path),
                openapi_extra=schemas.operation_extra(role))(fn)
        return register

    # --- public ---------------------------------------------------------------
    @op("GET", "/v1/health", m.Health, None)
    async def health() -> Response:
        """Liveness: the process answers."""
        return build(m.Health, {"status": "ok"})

    @op("GET", "/v1/keyset", m.Keyset, None)
    async def keyset() -> Response:
        """The denomination keys and the policy, signed by the master key."""
        return build(m.Keyset, wj.keyset_to_json(await call(bank.keyset)))

    @op("GET", "/v1/generations", m.Generations, None)
    async def generations() -> Response:
        """Every key generation with its windows and its spent set's size."""
        return build(m.Generations, {"generations": await call(bank.generations_info)})

    @op("POST", "/v1/spent-range", m.SpentPage, None, body=True)
    async def spent_range(request: Request, q: m.SpentRangeQuery) -> Response:
        """A page of spent coin_ids by bucket prefix, unauthenticated; each client
        is charged for the coin_ids it is sent (429 with ``Retry-After`` once its
        budget is spent)."""
        client = client_of(request.scope)
        wait = limiter.spent_ids_wait(client)
        if wait > 0:
            refused = problem(429, "rate_limited", "too many spent coin_ids asked for; retry"
                              " after the time in Retry-After")
            refused.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return refused
        page = await call(bank.spent_range, q.generation, q.prefix_bits, q.prefixes,
                          None if q.after is None else bytes.fromhex(q.after))
        limiter.charge_spent_ids(client, len(page["coin_ids"]))
        return build(m.SpentPage, page)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        """The operator's figures (an operator credential; a scraper without
        one reads them on ``ecash bank serve --metrics-listen``)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        principal_of(request, "operator")
        return Response(generate_latest(metrics.registry()), media_type=CONTENT_TYPE_LATEST)

    # --- holder -----------------------------------------------------------------
    @op("GET", "/v1/accounts/{account_id}", m.Account, "holder")
    async def account(account_id: str, pk: Owner) -> Response:
        """The holder's account: balance, status, identity, limits."""
        return build(m.Account, await call(bank.account_info, account_id))

    @op("POST", "/v1/accounts/{account_id}/identity", m.Registered, "holder", body=True)
    async def register(account_id: str, pk: Owner, body: m.Registration) -> Response:
        """Register the account's identity I = u1*g1 with its proof (ECASH-1 4)."""
        proof = reg.RegistrationProof(wj.hex_bytes(body.I, 32, "I"), wj.hex_bytes(body.t, 32, "t"),
                                      wj.scalar(body.p, "p"))
        await call(bank.register_identity, pk, account_id, proof)
        return build(m.Registered, {"status": "registered", "identity": body.I})

    @op("POST", "/v1/accounts/{account_id}/withdrawals", m.WithdrawalOffer, "holder", body=True)
    async def start_withdrawal(account_id: str, pk: Owner, body: m.WithdrawalStart
                               ) -> Response:
        """Start a clause withdrawal: the bank debits the account and commits,
        per coin, to the four points a0, b0, a1, b1 of its two clauses."""
        key_ids = [bytes.fromhex(k) for k in body.key_ids]
        return build(m.WithdrawalOffer, await call(bank.start_withdrawal, pk, key_ids))

    @op("POST", "/v1/accounts/{account_id}/exchanges", m.WithdrawalOffer, "holder", body=True)
    async def start_exchange(account_id: str, pk: Owner, body: m.ExchangeStart) -> Response:
        """Exchange coins for new ones: a withdrawal paid with redeemed spends."""
        key_ids = [bytes.fromhex(k) for k in body.key_ids]
        spends = [wj.spend_from_json(s.model_dump()) for s in body.spends]
        return build(m.WithdrawalOffer,
                     await call(bank.start_withdrawal, pk, key_ids, redeem=spends))

    @op("POST", "/v1/accounts/{account_id}/withdrawals/{session_id}", m.WithdrawalAnswers,
        "holder", body=True)
    async def answer_withdrawal(account_id: str,
                                session_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$")],
                                pk: Owner, body: m.WithdrawalAnswer) -> Response:
        """Answer the session's commitments: one challenge pair per coin; the bank
        answers each coin's clause ``beta`` with ``r``."""
        packed = wj.hex_items([c for pair in body.challenges for c in pair], 32,
                              lambda i: f"challenges[{i // 2}][{i % 2}]")
        answers = await call(bank.answer_withdrawal, pk, bytes.fromhex(session_id), packed)
        return build(m.WithdrawalAnswers,
                     {"answers": [{"beta": b, "r": r.hex()} for b, r in answers]})

    @op("GET", "/v1/accounts/{account_id}/withdrawals", m.WithdrawalRecords, "holder")
    async def withdrawal_records(account_id: str, pk: Owner) -> Response:
        """The public record of every answered withdrawal, for a restore."""
        return build(m.WithdrawalRecords,
                     {"withdrawals": await call(bank.withdrawal_records, pk)})

    @op("POST", "/v1/accounts/{account_id}/redemptions", m.Verdicts, "holder", body=True)
    async def redeem(account_id: str, pk: Owner, body: m.Spends) -> Response:
        """Redeem coins into the account: a verdict per transcript."""
        spends = [wj.spend_from_json(s.model_dump()) for s in body.spends]
        verdicts = await call(bank.deposit, pk, spends, redemption=True)
        return build(m.Verdicts, {"verdicts": [v.to_json() for v in verdicts]})

    @op("POST", "/v1/accounts/{account_id}/close", m.Closed, "holder")
    async def close(account_id: str, pk: Owner) -> Response:
        """Close the account; its balance is paid out after the deposit window."""
        return build(m.Closed, await call(bank.close_account, pk))

    @op("POST", "/v1/accounts/{account_id}/disputes", m.DisputeAnswer, "holder", body=True)
    async def dispute(account_id: str, pk: Owner, body: m.Dispute) -> Response:
        """A merchant's signed refusal of a payment it deposited (ECASH-1 5.1)."""
        raw = body.model_dump()
        return build(m.DisputeAnswer, await call(
            bank.dispute, pk, wj.envelope_from_json(raw["envelope"]),
            [wj.spend_from_json(s) for s in raw["spends"]], wj.refusal_from_json(raw["refusal"])))

    # --- merchant -------------------------------------------------------------
    @op("GET", "/v1/merchant", m.Merchant, "merchant")
    async def merchant(who: MerchantP) -> Response:
        """The merchant's account."""
        return build(m.Merchant, await call(bank.merchant_info, who.account))

    @op("POST", "/v1/merchant/certificate", m.CertificateOut, "merchant", body=True)
    async def certificate(who: MerchantP, body: m.PublicKey) -> Response:
        """Certify a terminal's public key for the merchant's id."""
        cert = await call(bank.certify_terminal, who.account, bytes.fromhex(body.public_key))
        return build(m.CertificateOut, wj.certificate_to_json(cert))

    @op("POST", "/v1/merchant/deposits", m.Verdicts, "merchant", body=True)
    async def deposit(who: MerchantP, body: m.Spends) -> Response:
        """Deposit payment transcripts: a verdict per transcript (accepted,
        double_spent with its fraud case, invalid, late, expired)."""
        spends = [wj.spend_from_json(s.model_dump()) for s in body.spends]
        verdicts = await call(bank.deposit, who.account, spends)
        return build(m.Verdicts, {"verdicts": [v.to_json() for v in verdicts]})

    # --- operator -------------------------------------------------------------
    @op("POST", "/v1/operator/accounts", m.OpenedAccount, "operator", body=True)
    async def open_account(op_: Operator, body: m.OpenAccount) -> Response:
        """Open a holder account; its credential is shown once."""
        account_id, token = await call(bank.open_account, body.holder)
        return build(m.OpenedAccount, {"account_id": account_id, "credential": token})

    @op("POST", "/v1/operator/accounts/{account_id}/credit", m.Balance, "operator", body=True)
    async def credit(account_id: str, op_: Operator, body: m.Credit) -> Response:
        """Money paid in from outside; idempotent per reference."""
        balance = await call(bank.credit, account_id, body.amount, body.reference)
        return build(m.Balance, {"account_id": account_id, "balance": balance})

    @op("POST", "/v1/operator/accounts/{account_id}/status", m.Status, "operator", body=True)
    async def set_status(account_id: str, op_: Operator, body: m.SetStatus) -> Response:
        """Freeze (``text`` is the reason the holder is shown) or reactivate
        (``text`` is the note) an account; recorded with the time."""
        return build(m.Status, await call(bank.set_status, account_id, body.status, body.text))

    @op("POST", "/v1/operator/accounts/{account_id}/merchant", m.MerchantCredential,
        "operator", body=True)
    async def register_merchant(account_id: str, op_: Operator, body: m.RegisterMerchant
                                ) -> Response:
        """Make an account a merchant; its credential is shown once."""
        token = await call(bank.register_merchant, account_id, body.merchant_id)
        return build(m.MerchantCredential, {"account_id": account_id,
                                            "merchant_id": body.merchant_id,
                                            "credential": token})

    @op("GET", "/v1/operator/accounts/{account_id}", m.OperatorAccount, "operator")
    async def operator_account(account_id: str, op_: Operator) -> Response:
        """Any account, with every freeze and unfreeze."""
        return build(m.OperatorAccount, await call(bank.operator_account_info, account_id))

    @op("GET", "/v1/operator/policy", m.PolicyOut, "operator")
    async def policy(op_: Operator) -> Response:
        """Every setting in force (minor units) and the signed policy's date."""
        return build(m.PolicyOut, await call(bank.policy_settings))

    @op("PUT", "/v1/operator/policy", m.PolicyOut, "operator", body=True)
    async def set_policy(op_: Operator, body: m.PolicySettings) -> Response:
        """Replace the settings; the master key signs the new policy (through
        the signer). Refused whole, naming the setting, if they contradict
        each other; denominations apply from the next key generation."""
        return build(m.PolicyOut, await call(bank.set_policy_json, body.model_dump()))

    @op("GET", "/v1/operator/fraud", m.FraudCases, "operator")
    async def fraud_list(op_: Operator) -> Response:
        """The double-spend cases, each with the dispute that voided it, if any."""
        return build(m.FraudCases, {"cases": await call(bank.fraud_overview)})

    @op("GET", "/v1/operator/fraud/{case_id}", m.FraudProof, "operator")
    async def fraud_case(case_id: int, op_: Operator) -> Response:
        """A case's proof: both transcripts, the key, the account named."""
        return build(m.FraudProof, await call(bank.fraud_case, case_id))

    @op("GET", "/v1/operator/disputes", m.Disputes, "operator")
    async def dispute_list(op_: Operator) -> Response:
        """Every dispute."""
        return build(m.Disputes, {"disputes": await call(bank.dispute_list)})

    @op("GET", "/v1/operator/disputes/{dispute_id}", m.DisputeInfo, "operator")
    async def dispute_info(dispute_id: int, op_: Operator) -> Response:
        """A dispute with its evidence, the merchant's case and what it voided."""
        return build(m.DisputeInfo, await call(bank.dispute_info, dispute_id))

    @op("GET", "/v1/operator/audit", m.Audit, "operator")
    async def audit(op_: Operator) -> Response:
        """The books' invariants and figures."""
        rep = await call(bank.audit)
        return build(m.Audit, {"ok": rep.ok, "problems": rep.problems, "figures": rep.figures})

    @op("POST", "/v1/operator/maintenance", m.Maintenance, "operator")
    async def maintenance(op_: Operator) -> Response:
        """Book breakage of expired generations and release due payouts."""
        closed = await call(bank.close_generations)
        paid = await call(bank.release_payouts)
        return build(m.Maintenance, {"closed_generations": closed,
                                     "payouts": [{"account_id": a, "amount": n}
                                                 for a, n in paid]})

    def openapi() -> dict:
        """FastAPI's document, with this bank's caps written in (computed once)."""
        if app.openapi_schema is None or app.state.documented is not bank.config:
            app.state.documented = bank.config  # a policy change may change the caps
            app.openapi_schema = document_caps(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes), bank.config)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` workers: ``ECASH_BANK_DB``, the signer's
    socket in ``ECASH_BANK_SIGNER`` (the worker holds no key), and the rate
    limits' shared storage in ``ECASH_RATE_LIMIT_STORAGE``."""
    bank = Bank.open(os.environ["ECASH_BANK_DB"], SignerClient(os.environ["ECASH_BANK_SIGNER"]))
    storage = os.environ.get("ECASH_RATE_LIMIT_STORAGE") or "memory://"
    limiter = RateLimiter(storage_uri=storage)
    if os.environ.get("ECASH_VERIFY_POOL") == "1":
        from ..crypto.batch import make_pool

        pool = bank.verify_pool = make_pool()
        return create_app(bank, rate_limit=limiter, on_shutdown=pool.shutdown)
    return create_app(bank, rate_limit=limiter)
