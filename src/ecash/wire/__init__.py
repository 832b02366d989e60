"""Encodings of ECASH-1 section 8: strict JSON, binary, and compact text forms."""

from .errors import WireError

__all__ = ["WireError"]
