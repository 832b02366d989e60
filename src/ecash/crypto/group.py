"""The ristretto255 group (RFC 9496) over libsodium, and nothing else.

Contract of this module (the only place that touches the group library, so a
faster backend can replace it):

- An *element* is its canonical 32-byte encoding (``bytes``). Functions that
  take an element accept only canonical encodings; :func:`decode_element`
  checks one, including the top bit that libsodium 1.0.18 ignores.
- The identity is ``IDENTITY`` (32 zero bytes). Operations are total:
  where libsodium refuses an identity result we return ``IDENTITY`` instead
  of failing, and callers decide whether the identity is allowed (9.3).
- A *scalar* is a Python ``int`` in ``[0, q)``; encodings are 32 bytes
  little-endian and :func:`decode_scalar` rejects values ``>= q``.
"""

from __future__ import annotations

import ctypes
import secrets

import pysodium

from .errors import (
    IdentityElement,
    NonCanonicalElement,
    NonCanonicalScalar,
    WrongLength,
    ZeroScalar,
)

q = 2**252 + 27742317777372353535851937790883648493
ELEMENT_BYTES = 32
SCALAR_BYTES = 32
IDENTITY = bytes(32)

_so = pysodium.sodium
_buffer = ctypes.create_string_buffer


def decode_element(enc: bytes, *, allow_identity: bool = False) -> bytes:
    """Return ``enc`` if it is a canonical ristretto255 encoding, else raise.

    Rejects the wrong length, bit 255 set, every other non-canonical form, and
    (unless ``allow_identity``) the identity.
    """
    if len(enc) != ELEMENT_BYTES:
        raise WrongLength(f"element must be {ELEMENT_BYTES} bytes, got {len(enc)}")
    if enc[31] & 0x80 or _so.crypto_core_ristretto255_is_valid_point(bytes(enc)) != 1:
        raise NonCanonicalElement("not a canonical ristretto255 encoding")
    if enc == IDENTITY and not allow_identity:
        raise IdentityElement("element is the identity")
    return bytes(enc)


def is_canonical_element(enc: bytes) -> bool:
    """True when ``enc`` is a canonical encoding (the identity included)."""
    return (
        len(enc) == ELEMENT_BYTES
        and not enc[31] & 0x80
        and _so.crypto_core_ristretto255_is_valid_point(bytes(enc)) == 1
    )


def encode_scalar(k: int) -> bytes:
    return k.to_bytes(SCALAR_BYTES, "little")


def decode_scalar(enc: bytes) -> int:
    """Parse a canonical 32-byte little-endian scalar (``< q``)."""
    if len(enc) != SCALAR_BYTES:
        raise WrongLength(f"scalar must be {SCALAR_BYTES} bytes, got {len(enc)}")
    k = int.from_bytes(enc, "little")
    if k >= q:
        raise NonCanonicalScalar("scalar is not reduced modulo q")
    return k


def reduce_wide(b64: bytes) -> int:
    """64 uniform bytes read little-endian, reduced mod q (``scalar_reduce``)."""
    return int.from_bytes(b64, "little") % q


def random_scalar() -> int:
    """A uniform non-zero scalar from the operating system's CSPRNG."""
    while True:
        k = reduce_wide(secrets.token_bytes(64))
        if k:
            return k


def nonzero(k: int, what: str) -> int:
    if k % q == 0:
        raise ZeroScalar(f"{what} is zero")
    return k


def not_identity(P: bytes, what: str) -> bytes:
    if P == IDENTITY:
        raise IdentityElement(f"{what} is the identity")
    return P


def base_mul(k: int) -> bytes:
    """``g^k`` for the RFC 9496 generator (libsodium's fixed-base path)."""
    k %= q
    if k == 0:
        return IDENTITY
    out = _buffer(ELEMENT_BYTES)
    if _so.crypto_scalarmult_ristretto255_base(out, k.to_bytes(32, "little")) != 0:
        raise ArithmeticError("fixed-base multiplication failed")  # unreachable for k != 0
    return out.raw


def mul(P: bytes, k: int) -> bytes:
    """``P^k`` for a canonical element ``P``; ``IDENTITY`` when the result is."""
    k %= q
    if k == 0 or P == IDENTITY:
        return IDENTITY
    out = _buffer(ELEMENT_BYTES)
    if _so.crypto_scalarmult_ristretto255(out, k.to_bytes(32, "little"), P) != 0:
        # Prime order group: a non-identity canonical P times k != 0 is never the
        # identity, so this is a non-canonical P slipping past the caller.
        raise NonCanonicalElement("not a canonical ristretto255 encoding")
    return out.raw


def add(P: bytes, Q: bytes) -> bytes:
    """``P * Q`` (group operation) of two canonical elements."""
    out = _buffer(ELEMENT_BYTES)
    if _so.crypto_core_ristretto255_add(out, P, Q) != 0:
        raise NonCanonicalElement("not a canonical ristretto255 encoding")
    return out.raw


def sub(P: bytes, Q: bytes) -> bytes:
    """``P / Q`` of two canonical elements."""
    out = _buffer(ELEMENT_BYTES)
    if _so.crypto_core_ristretto255_sub(out, P, Q) != 0:
        raise NonCanonicalElement("not a canonical ristretto255 encoding")
    return out.raw


def from_hash(h64: bytes) -> bytes:
    """RFC 9496 element derivation from 64 uniform bytes (``from_hash``)."""
    if len(h64) != 64:
        raise WrongLength("from_hash takes 64 bytes")
    out = _buffer(ELEMENT_BYTES)
    _so.crypto_core_ristretto255_from_hash(out, h64)
    return out.raw


def inverse(k: int) -> int:
    """``k^-1 mod q``; raises :class:`ZeroScalar` for zero."""
    nonzero(k, "scalar to invert")
    return pow(k, -1, q)


# The RFC 9496 generator g.
G = base_mul(1)
