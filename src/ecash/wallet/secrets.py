"""Secrets at rest: the BIP-39 seed phrase, the passphrase key (argon2id) and
XChaCha20-Poly1305 sealing, all through libsodium (``pysodium``).

The passphrase is stretched once per process (:func:`unlock` caches the key
per salt and passphrase), then every secret is sealed on its own with a fresh
24-byte nonce and additional data that binds it to its place in the wallet
(a coin's secrets to that coin's public body), so swapping or editing rows
is detected when they are opened.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pysodium
from mnemonic import Mnemonic

from .errors import CorruptWallet, WalletError, WrongPassphrase

KEY_BYTES = pysodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES = pysodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
SALT_BYTES = pysodium.crypto_pwhash_SALTBYTES
PHRASE_STRENGTH = 256  # 24 words


@dataclass(frozen=True)
class KdfParams:
    """argon2id cost; stored in the wallet file beside its salt."""

    opslimit: int
    memlimit: int

    def to_json(self) -> dict:
        return {"alg": "argon2id13", "opslimit": self.opslimit, "memlimit": self.memlimit}


KDF_PROFILES = {
    "interactive": KdfParams(pysodium.crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
                             pysodium.crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE),
    "moderate": KdfParams(pysodium.crypto_pwhash_argon2id_OPSLIMIT_MODERATE,
                          pysodium.crypto_pwhash_argon2id_MEMLIMIT_MODERATE),
    "sensitive": KdfParams(pysodium.crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE,
                           pysodium.crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE),
}
DEFAULT_KDF = "moderate"
# The cheapest argon2id libsodium allows: for tests and benchmarks only.
TEST_KDF = KdfParams(1, pysodium.crypto_pwhash_MEMLIMIT_MIN)

_unlocked: dict[bytes, bytes] = {}


def new_salt() -> bytes:
    return pysodium.randombytes(SALT_BYTES)


def derive_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    """argon2id(passphrase, salt), cached for this process."""
    if not passphrase:
        raise WalletError("the passphrase must not be empty", "empty_passphrase")
    pw = passphrase.encode("utf-8")
    tag = hashlib.blake2b(pw, key=salt, digest_size=32,
                          salt=params.opslimit.to_bytes(8, "little")
                          + params.memlimit.to_bytes(8, "little")).digest()
    key = _unlocked.get(tag)
    if key is None:
        key = pysodium.crypto_pwhash(KEY_BYTES, pw, salt, params.opslimit, params.memlimit,
                                     pysodium.crypto_pwhash_ALG_ARGON2ID13)
        _unlocked[tag] = key
    return key


class Sealer:
    """AEAD with one key: ``seal`` returns ``nonce || ciphertext``."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("key must be 32 bytes")
        self._key = key

    def seal(self, plaintext: bytes, ad: bytes) -> bytes:
        nonce = pysodium.randombytes(NONCE_BYTES)
        return nonce + pysodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, ad, nonce, self._key)

    def open(self, blob: bytes, ad: bytes, what: str = "a sealed record") -> bytes:
        if len(blob) < NONCE_BYTES + pysodium.crypto_aead_xchacha20poly1305_ietf_ABYTES:
            raise CorruptWallet(f"{what} is truncated")
        try:
            return pysodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                blob[NONCE_BYTES:], ad, blob[:NONCE_BYTES], self._key)
        except ValueError:
            raise CorruptWallet(f"{what} fails its integrity check: the wallet file was"
                                " altered or damaged") from None

    def open_vault(self, blob: bytes, ad: bytes) -> bytes:
        """Like :meth:`open`, but a failure most likely means a wrong passphrase."""
        try:
            return self.open(blob, ad, "the key record")
        except CorruptWallet:
            raise WrongPassphrase("wrong passphrase (or the wallet's key record is"
                                  " damaged)") from None


# --- seed phrase -------------------------------------------------------------

_MNEMONIC = Mnemonic("english")


def new_phrase() -> str:
    return _MNEMONIC.generate(strength=PHRASE_STRENGTH)


def normalise_phrase(phrase: str) -> str:
    return " ".join(phrase.lower().split())


def check_phrase(phrase: str) -> str:
    """The normalised phrase, or :class:`WalletError` if it is not valid BIP-39."""
    words = normalise_phrase(phrase)
    if len(words.split()) not in (12, 15, 18, 21, 24) or not _MNEMONIC.check(words):
        raise WalletError("not a valid BIP-39 seed phrase (a word is wrong or missing)",
                          "bad_phrase")
    return words


def phrase_to_seed(phrase: str) -> bytes:
    """The 64-byte BIP-39 seed (empty BIP-39 passphrase)."""
    return Mnemonic.to_seed(check_phrase(phrase), passphrase="")


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
