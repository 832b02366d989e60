"""Compact text forms for QR codes and copy-paste.

``ecreq1:`` + base64url (no padding) of the binary envelope (a signed payment
request), ``ecpay1:`` + base64url of the binary payment (README, "Text
forms"); the encoders write exactly these, so other implementations read
them. ``ecreqd1:`` is this implementation's extension (docs/extensions.md): a
signed request with the terminal's signed description of the sale, base64url
of ``lp(binary envelope) || lp(description_utf8) || signature``.

Texts are pasted from chats and mails that wrap long lines, so the decoders
ignore whitespace and line breaks anywhere in the body; everything else must
be exact. A text that is not right says what is wrong in words a holder or a
cashier can act on ("this text is cut short: 123 of 456 characters").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from ..crypto.payment import SignedRequest, Spend
from .binary import (
    SPEND_BYTES,
    envelope_from_bytes,
    envelope_to_bytes,
    payment_from_bytes,
    payment_to_bytes,
)
from .description import Description, description_from_bytes, description_to_bytes
from .errors import WireError

REQUEST_PREFIX = "ecreq1:"
PAYMENT_PREFIX = "ecpay1:"
DESCRIBED_REQUEST_PREFIX = "ecreqd1:"
MAX_TEXT = 600_000

_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
# what each form is, in words, to say "this is X, not Y"
_KINDS = {REQUEST_PREFIX: "a payment request", DESCRIBED_REQUEST_PREFIX: "a payment request",
          PAYMENT_PREFIX: "a payment"}
_URI_SCHEMES = ("ecash:", "ecash+http:")


class TextFormError(WireError):
    """A text form that is not one; the message says what is wrong in words."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _chars_for(n_bytes: int) -> int:
    """Characters of unpadded base64url for ``n_bytes`` bytes."""
    return (4 * n_bytes + 2) // 3


# --- how long a form should be, read from the bytes it starts with -----------

Walker = Callable[[bytes], tuple[int | None, int]]


def _lengths(data: bytes, steps: list[int | str]) -> tuple[int | None, int]:
    """Walk ``steps`` over ``data``: an int is a fixed field, ``"lp"`` a
    4-byte length and that many bytes. The total length (None when ``data``
    stops before a length field) and the least total it can have."""
    pos = 0
    for i, step in enumerate(steps):
        if step == "lp":
            if pos + 4 > len(data):
                rest = steps[i:]
                return None, pos + sum(4 if s == "lp" else int(s) for s in rest)
            pos += 4 + int.from_bytes(data[pos:pos + 4], "big")
        else:
            pos += int(step)
    return pos, pos


_REQUEST_STEPS: list[int | str] = ["lp", 8, 3, 8, 16]
_ENVELOPE_STEPS: list[int | str] = [*_REQUEST_STEPS, "lp", "lp", 32, 8, 64, 64]


def _envelope_length(data: bytes) -> tuple[int | None, int]:
    return _lengths(data, _ENVELOPE_STEPS)


def _payment_length(data: bytes) -> tuple[int | None, int]:
    head, pos = _lengths(data, _REQUEST_STEPS)
    if head is None or pos + 2 > len(data):
        return None, pos + 2 + SPEND_BYTES  # at least one coin
    total = pos + 2 + int.from_bytes(data[pos:pos + 2], "big") * SPEND_BYTES
    return total, total


def _described_length(data: bytes) -> tuple[int | None, int]:
    return _lengths(data, ["lp", "lp", 64])


_WALKERS: dict[str, Walker] = {REQUEST_PREFIX: _envelope_length,
                               PAYMENT_PREFIX: _payment_length,
                               DESCRIBED_REQUEST_PREFIX: _described_length}


# --- decoding -------------------------------------------------------------------

def _prefix_of(text: str, accepted: tuple[str, ...]) -> str:
    """The prefix of ``text`` among ``accepted``, or :class:`TextFormError` in words."""
    what = _KINDS[accepted[0]]
    for prefix in accepted:
        if text.startswith(prefix):
            return prefix
    if text.startswith(DESCRIBED_REQUEST_PREFIX) and what == _KINDS[DESCRIBED_REQUEST_PREFIX]:
        raise TextFormError(f"this payment request carries a description of the sale"
                            f" ({DESCRIBED_REQUEST_PREFIX}); this reader takes only texts"
                            f" that start with {accepted[0]!r}", "wrong_kind")
    lower = text.lower()
    for prefix, kind in _KINDS.items():
        if lower.startswith(prefix):
            if kind == what:
                raise TextFormError(f"write the beginning {prefix!r} in lower case",
                                    "bad_prefix")
            raise TextFormError(f"this is {kind}, not {what}", "wrong_kind")
    if lower.startswith(_URI_SCHEMES):
        raise TextFormError(f"this is a payment link (ecash:), not {what} in text form",
                            "wrong_kind")
    if text.startswith("{"):
        raise TextFormError(f"this is JSON, not {what} in text form", "wrong_kind")
    start = " or ".join(repr(p) for p in accepted)
    raise TextFormError(f"this is not {what}: the text must start with {start}",
                        "bad_prefix")


def _body_of(text: str, prefix: str) -> str:
    """The body without whitespace; a character outside base64url is named
    with its position (counted from 1 in the text as given, after leading
    whitespace)."""
    body = []
    for i, ch in enumerate(text[len(prefix):], start=len(prefix) + 1):
        if ch in _ALPHABET:
            body.append(ch)
        elif ch == ":" and any(text[:i].endswith(p) for p in _KINDS):
            second = next(p for p in _KINDS if text[:i].endswith(p))
            raise TextFormError(f"two codes were pasted together (a second beginning at"
                                f" position {i - len(second) + 1})", "wrong_length")
        elif not ch.isspace():
            shown = ch if ch.isprintable() else f"U+{ord(ch):04X}"
            raise TextFormError(f"a character is not part of the code: {shown!r} at"
                                f" position {i}", "bad_character")
    return "".join(body)


def _decode(text: str, accepted: tuple[str, ...]) -> tuple[str, bytes]:
    """The prefix found and the bytes of the body; errors in words."""
    if not isinstance(text, str):
        raise TextFormError("a text form is text", "bad_type")
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise TextFormError(f"this text is too long ({len(text)} characters; at most"
                            f" {MAX_TEXT})", "too_large")
    if not text:
        raise TextFormError("the text is empty", "bad_prefix")
    prefix = _prefix_of(text, accepted)
    body = _body_of(text, prefix)
    usable = body[:len(body) - len(body) % 4]
    head = base64.urlsafe_b64decode(usable) if usable else b""
    expected, least = _WALKERS[prefix](head)
    if max(expected or 0, least) > MAX_TEXT:
        expected, least = None, 0  # a garbled length: the decoder below says what is wrong
    have = len(prefix) + len(body)
    if expected is not None:
        want = len(prefix) + _chars_for(expected)
        if have < want:
            raise TextFormError(f"this text is cut short: {have} of {want} characters",
                                "wrong_length")
        if have > want:
            raise TextFormError(f"this text is longer than its contents: {have} characters"
                                f" where {want} were expected (something was added at the"
                                " end, or two texts were pasted together)", "wrong_length")
    elif have < len(prefix) + _chars_for(least):
        raise TextFormError(f"this text is cut short: {have} of at least"
                            f" {len(prefix) + _chars_for(least)} characters", "wrong_length")
    if not body or len(body) % 4 == 1:
        raise TextFormError(f"this text is cut short ({have} characters)", "wrong_length")
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):  # pragma: no cover - the alphabet was checked
        raise TextFormError("the text is not base64url", "bad_base64") from None
    if _b64e(data) != body:
        raise TextFormError("the last character of the text is not the one the code"
                            " ends with (it was altered)", "bad_base64")
    return prefix, data


def request_to_text(env: SignedRequest) -> str:
    """The spec-compatible ``ecreq1:`` text of a signed request."""
    return REQUEST_PREFIX + _b64e(envelope_to_bytes(env))


def request_from_text(text: str) -> SignedRequest:
    """An ``ecreq1:`` text back (whitespace inside ignored)."""
    return envelope_from_bytes(_decode(text, (REQUEST_PREFIX,))[1])


def described_request_to_text(env: SignedRequest, description: Description) -> str:
    """The ``ecreqd1:`` text: the signed request and its signed description."""
    blob = envelope_to_bytes(env)
    return DESCRIBED_REQUEST_PREFIX + _b64e(len(blob).to_bytes(4, "big") + blob
                                            + description_to_bytes(description))


def any_request_from_text(text: str) -> tuple[SignedRequest, Description | None]:
    """An ``ecreq1:`` or ``ecreqd1:`` text: the envelope and the description
    it carries (its signature not checked here: see :meth:`Description.verify`)."""
    prefix, data = _decode(text, (REQUEST_PREFIX, DESCRIBED_REQUEST_PREFIX))
    if prefix == REQUEST_PREFIX:
        return envelope_from_bytes(data), None
    n = int.from_bytes(data[:4], "big")
    return envelope_from_bytes(data[4:4 + n]), description_from_bytes(data[4 + n:])


def payment_to_text(spends: list[Spend]) -> str:
    return PAYMENT_PREFIX + _b64e(payment_to_bytes(spends))


def payment_from_text(text: str) -> list[Spend]:
    """An ``ecpay1:`` text back (whitespace inside ignored)."""
    return payment_from_bytes(_decode(text, (PAYMENT_PREFIX,))[1])
