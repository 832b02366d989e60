"""Typed rejections. Every refusal carries a stable reason ``code`` (ECASH-1 9.3).

Callers (HTTP handlers, the verify CLI) map ``code`` to their own output; the
codes never change meaning once published.
"""

from __future__ import annotations


class EcashError(ValueError):
    """Base class of every rejection raised by ``ecash.crypto`` and ``ecash.wire``."""

    code = "invalid"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        return str(self)


class EncodingError(EcashError):
    """Bytes that are not the canonical encoding of what they claim to be."""

    code = "non_canonical"


class NonCanonicalElement(EncodingError):
    code = "non_canonical_element"


class NonCanonicalScalar(EncodingError):
    code = "non_canonical_scalar"


class WrongLength(EncodingError):
    code = "wrong_length"


class IdentityElement(EcashError):
    """An element that must not be the identity (9.3) is the identity."""

    code = "identity_element"


class ZeroScalar(EcashError):
    """A scalar that must be non-zero (9.3) is zero."""

    code = "zero_scalar"


class InvalidCoin(EcashError):
    code = "coin_invalid"


class KeyMismatch(InvalidCoin):
    """The coin names another key than the one it is verified under."""

    code = "key_mismatch"


class InvalidRequest(EcashError):
    """A payment request outside the limits of ECASH-1 section 5."""

    code = "request_malformed"


class InvalidSpend(EcashError):
    code = "spend_invalid"


class CurrencyMismatch(InvalidSpend):
    code = "currency_mismatch"


class WrongMerchant(InvalidSpend):
    code = "wrong_merchant"


class NotADoubleSpend(EcashError):
    """Two transcripts that do not identify anyone (same coin and same d, or two coins)."""

    code = "not_double_spend"


class InvalidRegistration(EcashError):
    code = "registration_invalid"


class InvalidWithdrawalResponse(EcashError):
    """The bank's answer to a withdrawal fails the user's check (section 4 step 4)."""

    code = "withdrawal_response_invalid"


class BadSignature(EcashError):
    code = "bad_signature"


class KeysetInvalid(EcashError):
    """A keyset that breaks ECASH-1 9.6 or whose signatures do not verify."""

    code = "keyset_invalid"


class InvalidRefusal(EcashError):
    """A signed refusal that is malformed or is not a refusal of the given payment (5.1)."""

    code = "refusal_invalid"
