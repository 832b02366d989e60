"""Where a payment request comes from: a scanned link, a pasted text, a JSON file.

A till's QR code carries an ``ecash:`` link (:mod:`ecash.wire.uri`): this
module fetches the signed request from the terminal and checks that it is
exactly the one the link names (its hash) before anything else looks at it.
The offline text forms (``ecreq1:``, ``ecreqd1:``) and the section 8 JSON
envelope are read as they are. Whatever the source, the wallet then checks
the envelope as it checks any request (:meth:`PayMixin.check_request`:
certificate, signature, clock) before it shows the payee or pays.

The sale's description (docs/extensions.md) is returned only when its
signature checks against the envelope's certified key; one that does not is
dropped, and ``description_problem`` says why, so the holder is never shown
words the terminal did not sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ..crypto.errors import EcashError
from ..crypto.payment import SignedRequest
from ..wire import json as wj
from ..wire.description import Description, description_from_json
from ..wire.text import any_request_from_text
from ..wire.uri import PaymentLink, envelope_hash, is_payment_uri, parse_payment_uri
from .errors import RequestRefused, WalletError

MAX_ENVELOPE_BODY = 64 * 1024  # an envelope and a description take about 1 KiB


class BadRequestText(WalletError):
    """What was given is not a payment request in any form this wallet reads."""

    code = "bad_request_text"


class RequestUnreachable(WalletError):
    """The terminal named by a link did not answer (or not usefully): try again."""

    code = "request_unreachable"


@dataclass(frozen=True)
class ResolvedRequest:
    """A request as its source gave it: not yet checked against the bank's key."""

    envelope: SignedRequest
    description: str | None  # shown only if its signature checked
    source: str = "text"  # link | text | json
    description_problem: str | None = None  # why a description was dropped


def resolve_request(text: str, *, timeout: float = 10.0,
                    transport: httpx.BaseTransport | None = None) -> ResolvedRequest:
    """The signed request ``text`` stands for: an ``ecash:`` link (fetched from
    its terminal and checked against the link's hash), an ``ecreq1:`` or
    ``ecreqd1:`` text (line breaks inside are ignored), or the section 8 JSON
    envelope (alone, or as ``{"envelope": ..., "description": ...}``)."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequestText("no payment request given: scan the till's QR code, or paste"
                             " its text (ecash:..., ecreq1:...)")
    raw = text.strip()
    if is_payment_uri(raw):
        try:
            link = parse_payment_uri(raw)
        except EcashError as exc:
            raise BadRequestText(f"this payment link is not right: {exc}") from None
        return _fetch(link, timeout, transport)
    if raw.startswith("{"):
        try:
            envelope, description = _bundle(wj.loads(raw))
        except EcashError as exc:
            raise BadRequestText(f"this JSON is not a signed payment request: {exc}") from None
        return _checked(envelope, description, "json")
    try:
        envelope, description = any_request_from_text(raw)
    except EcashError as exc:
        raise BadRequestText(str(exc)) from None
    return _checked(envelope, description, "text")


def _bundle(obj: object) -> tuple[SignedRequest, Description | None]:
    """A bare section 8 envelope, or the terminal's ``{"envelope", "description"}``
    (other members are extensions this wallet does not know: ignored)."""
    if isinstance(obj, dict) and "envelope" in obj:
        raw_desc = obj.get("description")
        return (wj.envelope_from_json(obj["envelope"]),
                None if raw_desc is None else description_from_json(raw_desc))
    return wj.envelope_from_json(obj), None


def _checked(envelope: SignedRequest, description: Description | None,
             source: str) -> ResolvedRequest:
    if description is None:
        return ResolvedRequest(envelope, None, source)
    try:
        description.verify(envelope.certificate.public_key, envelope.request.request_id)
    except EcashError:
        return ResolvedRequest(envelope, None, source, "the sale's description is not signed"
                               " by the terminal's key; it is not shown")
    return ResolvedRequest(envelope, description.text, source)


def _fetch(link: PaymentLink, timeout: float,
           transport: httpx.BaseTransport | None) -> ResolvedRequest:
    """GET the envelope from the terminal; the link's hash decides whether it is the one."""
    where = link.base_url
    try:
        with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as http, \
                http.stream("GET", link.fetch_url,
                            headers={"accept": "application/json"}) as r:
            body = b""
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > MAX_ENVELOPE_BODY:
                    raise RequestUnreachable(f"the terminal at {where} sent more than a"
                                             " payment request; try again")
            status = r.status_code
    except httpx.HTTPError as exc:
        raise RequestUnreachable(f"could not reach the till at {where}"
                                 f" ({exc.__class__.__name__}); check this phone's network,"
                                 " or ask the cashier for the offline code (ecreq1:...)"
                                 ) from None
    if status != 200:
        _refuse_status(status, body, where)
    try:
        envelope, description = _bundle(wj.loads(body))
    except EcashError as exc:
        raise RequestUnreachable(f"the terminal at {where} answered with something that is"
                                 f" not a payment request ({exc}); try again") from None
    if envelope.request.request_id != link.request_id or \
            envelope_hash(envelope, description) != link.envelope_hash:
        raise RequestRefused("the terminal sent another payment request than the QR code"
                             " names; do not pay it, and tell the cashier",
                             "request_mismatch")
    return _checked(envelope, description, "link")


def _refuse_status(status: int, body: bytes, where: str) -> None:
    code = ""
    try:
        obj = wj.loads(body)
        code = str(obj.get("code", "")) if isinstance(obj, dict) else ""
    except EcashError:
        pass
    if status == 404:
        raise RequestRefused(f"the till at {where} does not know this request; ask the"
                             " cashier for a new one", "unknown_request")
    if status == 410 and code == "request_cancelled":
        raise RequestRefused("the cashier cancelled this request; it cannot be paid",
                             "request_cancelled")
    if status == 410:
        raise RequestRefused("this request has expired; ask the cashier for a new one",
                             "request_expired")
    raise RequestUnreachable(f"the till at {where} answered {status}"
                             f"{f' ({code})' if code else ''}; try again in a moment")
