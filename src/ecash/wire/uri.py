"""``ecash:`` payment links: what a till's QR code carries (docs/extensions.md).

A signed payment request is too long for a QR code a phone reads at arm's
length (over 300 characters), so for a networked payment the QR code carries
only where to fetch it and how to recognise it:

    ecash://pay/HOST[:PORT][/PATH]/REQUEST_ID/ENVELOPE_HASH        (https)
    ecash+http://pay/HOST[:PORT][/PATH]/REQUEST_ID/ENVELOPE_HASH   (plain http)

``REQUEST_ID`` is the 32-byte ``request_id`` and ``ENVELOPE_HASH`` the first
16 bytes of SHA-256 over the binary envelope (README, "Text forms") followed,
when the sale has a description, by the description's binary form; both in
unpadded base64url. The wallet GETs ``BASE/r/<request_id hex>`` (BASE is
``https://HOST[:PORT][/PATH]``), checks the hash of what it got, then checks
the envelope as it checks any request. For a base URL of up to 60
characters the link fits a QR code of version 8 at error correction M.

When the phone has no network, the full offline form (:func:`offline_text`)
is the ``ecreq1:`` text (or ``ecreqd1:`` with a description).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..crypto.payment import SignedRequest
from .binary import envelope_to_bytes
from .description import Description, description_to_bytes
from .errors import WireError
from .text import described_request_to_text, request_to_text

SCHEME_HTTPS = "ecash"
SCHEME_HTTP = "ecash+http"
HASH_BYTES = 16
FETCH_PATH = "/r/"  # BASE + FETCH_PATH + request_id hex: the terminal's envelope route
PAY_PATH = "/pay/"  # BASE + PAY_PATH + request_id hex: the envelope's pos_url
MAX_URI = 2048

# RFC 3986 authority and path characters (pct-encoded included), without "?" and "#"
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%\[\]/]*")
_B64URL = re.compile(r"[A-Za-z0-9\-_]*")

__all__ = ["Description", "PaymentLink", "envelope_hash", "offline_text", "parse_payment_uri",
           "payment_uri"]


class BadPaymentLink(WireError):
    """An ``ecash:`` link that is not one, or not in its one canonical form."""

    code = "bad_payment_link"


@dataclass(frozen=True)
class PaymentLink:
    """A decoded ``ecash:`` link: where the terminal is and what to expect from it."""

    base_url: str  # https://HOST[:PORT][/PATH] (or http://)
    request_id: bytes
    envelope_hash: bytes

    @property
    def fetch_url(self) -> str:
        """Where the wallet GETs the envelope (``/r/<request_id hex>``)."""
        return self.base_url + FETCH_PATH + self.request_id.hex()

    @property
    def pos_url(self) -> str:
        """The ``pos_url`` the envelope is expected to carry."""
        return self.base_url + PAY_PATH + self.request_id.hex()


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str, n: int, what: str) -> bytes:
    want = (4 * n + 2) // 3
    if len(text) != want or not _B64URL.fullmatch(text):
        raise BadPaymentLink(f"the link's {what} must be {want} characters of base64url"
                             f" (A-Z a-z 0-9 - _), not {len(text)}", "bad_payment_link")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64e(data) != text:
        raise BadPaymentLink(f"the link's {what} is not in canonical form (its last"
                             " character was altered)", "bad_payment_link")
    return data


def envelope_hash(envelope: SignedRequest, description: Description | None = None) -> bytes:
    """SHA-256 of the binary envelope (and the description's binary form, if
    any), cut to 16 bytes: what the link promises the terminal will send."""
    blob = envelope_to_bytes(envelope)
    if description is not None:
        blob += description_to_bytes(description)
    return hashlib.sha256(blob).digest()[:HASH_BYTES]


def base_of(pos_url: str, request_id: bytes) -> str | None:
    """The terminal's base URL if ``pos_url`` is ``BASE/pay/<request_id hex>``
    with an http(s) BASE a link can carry; else None."""
    suffix = PAY_PATH + request_id.hex()
    if not pos_url.endswith(suffix) or not pos_url.isascii():
        return None
    base = pos_url[:-len(suffix)]
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query \
            or parts.fragment or "@" in parts.netloc or "?" in base or "#" in base:
        return None
    rest = base[len(parts.scheme) + 3:]
    if not _URI_CHARS.fullmatch(rest) or "//" in rest or rest.endswith("/"):
        return None
    return base


def payment_uri(envelope: SignedRequest, description: Description | None = None) -> str | None:
    """The short ``ecash:`` link for a networked payment's QR code; None when
    the envelope has no ``pos_url`` (or one no link can carry)."""
    rid = envelope.request.request_id
    base = base_of(envelope.pos_url, rid) if envelope.pos_url else None
    if base is None:
        return None
    scheme, rest = base.split("://", 1)
    head = SCHEME_HTTPS if scheme == "https" else SCHEME_HTTP
    return (f"{head}://pay/{rest}/{_b64e(rid)}/"
            f"{_b64e(envelope_hash(envelope, description))}")


def offline_text(envelope: SignedRequest, description: Description | None = None) -> str:
    """The full offline form: ``ecreq1:`` (the spec's), or ``ecreqd1:`` with a description."""
    if description is None:
        return request_to_text(envelope)
    return described_request_to_text(envelope, description)


def is_payment_uri(text: str) -> bool:
    """Whether ``text`` looks like an ``ecash:`` link (any case): to choose a decoder."""
    return text.strip().lower().startswith((SCHEME_HTTPS + ":", SCHEME_HTTP + ":"))


def parse_payment_uri(text: str) -> PaymentLink:
    """An ``ecash:`` link back, strictly; :class:`BadPaymentLink` says in words
    what is wrong (only surrounding whitespace is forgiven)."""
    if not isinstance(text, str):
        raise BadPaymentLink("a payment link is text")
    uri = text.strip()
    if len(uri) > MAX_URI:
        raise BadPaymentLink(f"the link is too long ({len(uri)} characters)")
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() not in (SCHEME_HTTPS, SCHEME_HTTP):
        raise BadPaymentLink("this is not an ecash: payment link")
    if scheme != scheme.lower():
        raise BadPaymentLink(f"write the link's beginning {scheme.lower()!r} in lower case")
    if not rest.startswith("//pay/"):
        raise BadPaymentLink(f"this link is not a payment: it must start with"
                             f" {scheme}://pay/")
    for i, ch in enumerate(uri, start=1):
        if ch.isspace() or not ch.isascii() or ch in "?#" or not ch.isprintable():
            shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
            raise BadPaymentLink(f"a character is not part of a payment link: {shown!r} at"
                                 f" position {i}")
    parts = rest[len("//pay/"):].split("/")
    if len(parts) < 3 or not parts[0]:
        raise BadPaymentLink("the link is cut short: it needs the terminal's address, the"
                             " request id and the hash")
    if any(not p for p in parts):
        raise BadPaymentLink("the link has an empty part ('//' or a '/' at the end)")
    *where, rid_text, hash_text = parts
    if not _URI_CHARS.fullmatch("/".join(where)):
        raise BadPaymentLink("the terminal's address in the link is not a URL")
    rid = _b64d(rid_text, 32, "request id")
    digest = _b64d(hash_text, HASH_BYTES, "hash")
    base = ("https" if scheme == SCHEME_HTTPS else "http") + "://" + "/".join(where)
    if base_of(base + PAY_PATH + rid.hex(), rid) != base:
        raise BadPaymentLink("the terminal's address in the link is not a URL")
    return PaymentLink(base, rid, digest)
