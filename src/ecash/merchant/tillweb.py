"""The till's pages and their JSON, for the cashier only (docs/merchant.md).

Why apart from :mod:`.http`: the wallets' endpoint there is protocol; this is
the cashier's screen, in the cashier's language (``?lang=``, then the cookie
the switch sets, then ``Accept-Language``), where a refusal or an error
reaches the cashier as our words for its code, never as text a payer sent.
Handlers only translate and render: the till's logic is in :mod:`.sale`,
:mod:`.cancel`, :mod:`.dayclose` and :mod:`.receiptview`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..crypto.errors import EcashError
from ..wire import json as wj
from ..wire.errors import WireError
from ..wire.text import request_to_text
from . import dayclose, i18n, pages, qr, receiptview
from . import sale as till
from .cancel import cancel_request
from .errors import MerchantError, PaymentPending, Refusal
from .http import _request_id, problem, read_body
from .pages import Ctx, error_words
from .pages.day import day_error_page
from .pages.words import PENDING_WORDS, refusal_words
from .requests import envelope_of
from .terminal import Terminal


def add_till_routes(app: FastAPI, t: Terminal, *, cashier: Callable[[Request], None],
                    public_url: str | None) -> None:
    """``/``, ``/report``, ``/day``, ``/receipt/{id}`` and ``/api/...``; every
    route starts with ``cashier`` (who may use the till, :func:`.http.create_app`)."""
    networked = bool(public_url)

    def shell(request: Request) -> tuple[Ctx, str | None]:
        cashier(request)
        asked = request.query_params.get("lang")
        lang = i18n.choose(asked, request.cookies.get(i18n.COOKIE),
                           request.headers.get("accept-language"))
        return Ctx(lang), (lang if i18n.normalise(asked) else None)

    def html(ctx: Ctx, text: str, keep: str | None) -> HTMLResponse:
        r = HTMLResponse(text, headers={"content-language": ctx.html_lang,
                                        "vary": "accept-language, cookie",
                                        "cache-control": "no-store"})
        if keep:
            r.set_cookie(i18n.COOKIE, keep, max_age=365 * 86_400, samesite="strict",
                         httponly=True)
        return r

    def refused(ctx: Ctx, exc: Exception) -> JSONResponse:
        """A cashier route's error, with the words for its code in ``ctx``'s language."""
        code = getattr(exc, "code", "invalid")
        status = exc.status if isinstance(exc, MerchantError) else 422
        extra = dict(getattr(exc, "extra", {}) or {})
        values = {"limit": ctx.money(extra["limit"], t.keys.currency)} if "limit" in extra \
            else {}
        detail = exc.detail if isinstance(exc, MerchantError) else str(exc)
        return problem(status, code, detail, words=error_words(code, ctx._, **values), **extra)

    def sale_json(ctx: Ctx, st: till.SaleState) -> dict:
        r, rid = st.record, st.record.request.request_id
        status = "expired" if st.state == "expired" else r.status
        out = {"request_id": rid.hex(), "status": status, "state": st.state,
               "amount": r.request.amount, "currency": r.request.currency,
               "amount_unit": "minor", "amount_text": ctx.money(r.request.amount,
                                                                r.request.currency),
               "description": r.description, "expires_ms": r.expires_ms,
               "terminal": r.terminal,
               "words": ctx._(PENDING_WORDS) if st.state == "pending" else None,
               "refusal": None if st.last_refusal is None else {
                   "code": st.last_refusal, "words": refusal_words(st.last_refusal, ctx._),
                   "at_ms": st.last_refusal_ms, "count": st.refusal_count},
               "reason": None if st.state != "refused" else {
                   "code": st.reason, "words": refusal_words(st.reason or "", ctx._)},
               "envelope": wj.envelope_to_json(envelope_of(t, r))}
        if r.status == "paid":
            out["receipt"] = {"request_id": rid.hex(), "amount": r.request.amount,
                              "signature": r.receipt.hex()}
        return out

    async def state_of(ctx: Ctx, rid: bytes) -> dict:
        return sale_json(ctx, await run_in_threadpool(till.sale_state, t, rid))

    async def json_body(request: Request, allowed: tuple[str, ...]) -> dict:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise MerchantError("bad_content_type", "send application/json")
        body = wj.loads(await read_body(request))
        if not isinstance(body, dict):
            raise WireError("body: expected a JSON object", "bad_type")
        extra = [k for k in body if k not in allowed]
        if extra:
            raise WireError(f"body: unknown key(s) {', '.join(map(str, extra))}", "unknown_key")
        return body

    @app.get("/", response_class=HTMLResponse)
    async def pos(request: Request) -> HTMLResponse:
        ctx, keep = shell(request)
        keys = t.keys
        return html(ctx, pages.pos_page(
            ctx, merchant_id=t.merchant_id, terminal=t.name, currency=keys.currency,
            limit=keys.policy.single_payment_limit, networked=networked), keep)

    @app.get("/report", response_class=HTMLResponse)
    async def report_page(request: Request) -> HTMLResponse:
        ctx, keep = shell(request)
        return html(ctx, pages.report_page(ctx, await run_in_threadpool(t.report), t.name), keep)

    @app.get("/day", response_class=HTMLResponse)
    async def day_page(request: Request, date: str | None = None) -> Response:
        ctx, keep = shell(request)
        try:
            close = await run_in_threadpool(dayclose.day_close, t, date)
        except MerchantError as exc:
            page = html(ctx, day_error_page(ctx, error_words(exc.code, ctx._), t.merchant_id,
                                            t.name), keep)
            page.status_code = exc.status
            return page
        return html(ctx, pages.day_page(ctx, close, t.merchant_id, t.name), keep)

    @app.get("/api/day")
    async def day(request: Request, date: str | None = None) -> Response:
        ctx, _ = shell(request)
        try:
            return JSONResponse(await run_in_threadpool(dayclose.day_close, t, date))
        except MerchantError as exc:
            return refused(ctx, exc)

    @app.get("/receipt/{request_id}", response_class=HTMLResponse)
    async def receipt_page(request_id: str, request: Request) -> Response:
        ctx, keep = shell(request)
        try:
            view = await run_in_threadpool(receiptview.receipt_view, t, _request_id(request_id))
        except MerchantError as exc:
            return refused(ctx, exc)
        return html(ctx, pages.receipt_page(ctx, view, t.name), keep)

    @app.get("/api/requests/{request_id}/receipt")
    async def receipt(request_id: str, request: Request) -> Response:
        ctx, _ = shell(request)
        try:
            return JSONResponse(await run_in_threadpool(receiptview.receipt_view, t,
                                                        _request_id(request_id)))
        except MerchantError as exc:
            return refused(ctx, exc)

    @app.get("/api/info")
    async def info(request: Request) -> dict:
        cashier(request)
        keys = t.keys
        return {"merchant_id": t.merchant_id, "terminal": t.name, "currency": keys.currency,
                "amount_unit": "minor", "keyset_fingerprint": keys.fingerprint,
                "floor_limit": keys.policy.floor_limit,
                "single_payment_limit": keys.policy.single_payment_limit,
                "master_public_key": t.master_public_key.hex(), "networked": networked,
                "languages": [i18n.HTML_LANG[code] for code in i18n.LANGUAGES]}

    @app.post("/api/requests")
    async def new_request(request: Request) -> Response:
        """A new sale: ``amount`` (minor units) or ``amount_text`` (major units as
        typed), and an optional ``description``."""
        ctx, _ = shell(request)
        try:
            body = await json_body(request, ("amount", "amount_text", "description"))
            if ("amount" in body) == ("amount_text" in body):
                raise WireError("body: give amount (minor units) or amount_text (major"
                                " units)", "missing_key")
            text = body.get("amount_text")
            if text is not None and not isinstance(text, str):
                raise WireError("amount_text: expected a string", "bad_type")
            desc = body.get("description")
            if desc is not None and not isinstance(desc, str):
                raise WireError("description: expected a string", "bad_type")
            amount = await run_in_threadpool(till.sale_amount, t, amount=body.get("amount"),
                                             amount_text=text)
            # no public URL: no pos_url either, so a wallet never POSTs to an
            # address it cannot reach (it pays offline and shows its payment text)
            env = await run_in_threadpool(till.start_sale, t, amount, pos_base=public_url,
                                          description=desc)
        except (MerchantError, EcashError) as exc:
            return refused(ctx, exc)
        rid = env.request.request_id
        record = await run_in_threadpool(t.store.request, rid)
        kind, shown_text = await run_in_threadpool(till.qr_content, t, record,
                                                   networked=networked)
        return JSONResponse({
            "request_id": rid.hex(), "amount": env.request.amount, "amount_unit": "minor",
            "currency": env.request.currency,
            "amount_text": ctx.money(env.request.amount, env.request.currency),
            "description": record.description, "pos_url": env.pos_url,
            "text": request_to_text(env), "qr_kind": kind, "qr_text": shown_text,
            "svg": qr.svg(shown_text), "expires_ms": record.expires_ms,
            "lifetime_ms": record.expires_ms - env.request.timestamp_ms,
            "envelope": wj.envelope_to_json(env)})

    @app.get("/api/requests/{request_id}")
    async def request_status(request_id: str, request: Request) -> dict:
        ctx, _ = shell(request)
        return await state_of(ctx, _request_id(request_id))

    @app.post("/api/requests/{request_id}/cancel")
    async def cancel(request_id: str, request: Request) -> Response:
        """The cashier's Cancel: the request takes no payment from now on."""
        ctx, _ = shell(request)
        rid = _request_id(request_id)
        try:
            await run_in_threadpool(cancel_request, t, rid)
        except MerchantError as exc:
            return refused(ctx, exc)
        return JSONResponse(await state_of(ctx, rid))

    @app.post("/api/requests/{request_id}/payment")
    async def customer_payment(request_id: str, request: Request) -> Response:
        """The customer's own payment text (``{"text": "ecpay1:..."}``), pasted
        or scanned at the till; answers the sale's state like the poll does,
        with ``outcome`` ``paid``, ``pending`` or ``refused``."""
        ctx, _ = shell(request)
        rid = _request_id(request_id)
        try:
            body = await json_body(request, ("text",))
            if not isinstance(body.get("text"), str):
                raise WireError("text: expected the payment text", "bad_type")
        except (MerchantError, EcashError) as exc:
            return refused(ctx, exc)
        outcome, status = "paid", 200
        try:
            await run_in_threadpool(till.take_payment_text, t, rid, body["text"])
        except Refusal as exc:
            outcome, status = "refused", 422
            code = exc.code
        except PaymentPending:
            outcome, status = "pending", 202
        body = {"outcome": outcome, "sale": await state_of(ctx, rid)}
        if outcome == "refused":
            body["code"], body["words"] = code, refusal_words(code, ctx._)
        return JSONResponse(body, status_code=status)

    @app.get("/api/report")
    async def report(request: Request) -> dict:
        cashier(request)
        return await run_in_threadpool(t.report)
