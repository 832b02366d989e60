"""Ed25519 (RFC 8032, pure) through libsodium: the master key and merchant keys.

Every signed message of ECASH-1 starts with an ASCII domain label; the
builders of those messages live beside the objects they sign.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pysodium

from .errors import BadSignature, WrongLength

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An Ed25519 key pair made from a 32-byte seed. ``repr`` never shows the seed."""

    seed: bytes
    public_key: bytes
    _secret: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        if len(seed) != SEED_BYTES:
            raise WrongLength("Ed25519 seed must be 32 bytes")
        pk, sk = pysodium.crypto_sign_seed_keypair(seed)
        return cls(bytes(seed), pk, sk)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_seed(secrets.token_bytes(SEED_BYTES))

    def sign(self, message: bytes) -> bytes:
        return pysodium.crypto_sign_detached(message, self._secret)

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()})"


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is valid."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        raise BadSignature("malformed Ed25519 key or signature")
    try:
        pysodium.crypto_sign_verify_detached(signature, message, public_key)
    except ValueError:
        raise BadSignature("Ed25519 signature does not verify") from None
