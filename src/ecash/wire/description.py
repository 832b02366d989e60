"""The sale's description: an extension beside the spec's envelope (docs/extensions.md).

ECASH-1's envelope signature covers only ``request_id`` and ``pos_url``, so
what is being bought ("2 coffees") is signed separately, by the same
certified terminal key, over a message of its own domain:

    "ECASH-1x/description" || request_id || lp(description_utf8)

A wallet shows a description only when that signature checks against the
envelope's certificate key (which it checks against the bank's master key as
for any request); a wallet that ignores the extension still pays the request.

The text must read as what it is, like a payee name (:mod:`.payee`): it is
checked with PRECIS (RFC 8264) through the OpaqueString profile of RFC 8265
(letters, digits, symbols, punctuation and spaces; no controls, no bidi
overrides, no invisible characters), must already be in the form the profile
gives it, has no leading or trailing space, and is at most
:data:`MAX_CHARS` characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from precis_i18n import get_profile

from ..crypto import sign
from ..crypto.hashing import lp
from .errors import WireError

MAX_CHARS = 140
DOMAIN = b"ECASH-1x/description"

_PROFILE = get_profile("OpaqueString")


class BadDescription(WireError):
    """A description a wallet could not show faithfully; the message says why."""

    code = "bad_description"


@dataclass(frozen=True)
class Description:
    """A checked description and the terminal's signature over it."""

    text: str
    signature: bytes

    def verify(self, public_key: bytes, request_id: bytes) -> None:
        """Raise :class:`BadSignature` unless the request's certified key signed
        exactly this text for exactly this request (and the text is well formed)."""
        check_description(self.text)
        sign.verify(public_key, description_message(request_id, self.text), self.signature)

    def to_json(self) -> dict:
        return {"text": self.text, "signature": self.signature.hex()}


def description_message(request_id: bytes, text: str) -> bytes:
    """What the terminal signs: the domain, the request id, the UTF-8 text."""
    if len(request_id) != 32:
        raise ValueError("request_id must be 32 bytes")
    return DOMAIN + request_id + lp(text.encode("utf-8"))


def sign_description(key: sign.SigningKey, request_id: bytes, text: str) -> Description:
    """The terminal's signed description of request ``request_id``."""
    check_description(text)
    return Description(text, key.sign(description_message(request_id, text)))


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def check_description(text: str) -> str:
    """``text`` if it may be a description; else :class:`BadDescription` in words."""
    if not isinstance(text, str) or not text:
        raise BadDescription("the description is empty")
    if len(text) > MAX_CHARS:
        raise BadDescription(f"the description has {len(text)} characters; at most"
                             f" {MAX_CHARS} are allowed")
    try:
        canonical = _PROFILE.enforce(text)
    except UnicodeEncodeError as exc:
        ch = text[exc.start] if 0 <= exc.start < len(text) else ""
        where = f" {_describe(ch)} at position {exc.start}" if ch else ""
        raise BadDescription(f"the description holds a character that cannot be shown"
                             f" faithfully:{where} (no controls, line breaks, tabs or"
                             " invisible characters)") from None
    if canonical != text:
        raise BadDescription(f"the description is not in its canonical form; write it as"
                             f" {canonical!r} (RFC 8265: spaces and Unicode normalisation)")
    if text != text.strip(" "):
        raise BadDescription("the description starts or ends with a space")
    return text


def description_from_json(v: object) -> Description:
    """``{"text": str, "signature": hex128}``, strictly (the text checked, not the signature)."""
    if not isinstance(v, dict) or set(v) != {"text", "signature"}:
        raise WireError("description: expected {\"text\", \"signature\"}", "bad_type")
    text, sig = v["text"], v["signature"]
    if not isinstance(sig, str) or len(sig) != 128 or \
            any(c not in "0123456789abcdef" for c in sig):
        raise WireError("description.signature: expected 128 lowercase hex characters",
                        "bad_hex")
    return Description(check_description(text), bytes.fromhex(sig))


def description_to_bytes(d: Description) -> bytes:
    """``lp(description_utf8) || signature`` (the extension's binary form)."""
    return lp(d.text.encode("utf-8")) + d.signature


def description_from_bytes(data: bytes) -> Description:
    """The binary form back, strictly: no trailing bytes, a well-formed text."""
    if len(data) < 4:
        raise WireError("description: truncated", "wrong_length")
    n = int.from_bytes(data[:4], "big")
    if n > 4 * MAX_CHARS or len(data) != 4 + n + sign.SIGNATURE_BYTES:
        raise WireError("description: wrong length", "wrong_length")
    try:
        text = data[4:4 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("description: not UTF-8", "bad_type") from None
    return Description(check_description(text), data[4 + n:])


__all__ = ["MAX_CHARS", "BadDescription", "Description", "check_description",
           "description_from_bytes", "description_from_json", "description_message",
           "description_to_bytes", "sign_description"]
