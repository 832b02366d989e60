"""Decoding failures: one type, a stable ``code``, the offending field in the message."""

from __future__ import annotations

from ..crypto.errors import EcashError


class WireError(EcashError):
    """Input that is not the strict encoding of section 8 (shape, type, range)."""

    code = "malformed"
