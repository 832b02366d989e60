"""Payment (ECASH-1 5): requests, signed request envelopes, spends, receipts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from . import group, sign
from .coin import Coin, CoinSecrets, PublicKeyLike, check_scalar, verify_coin
from .errors import (
    BadSignature,
    CurrencyMismatch,
    InvalidRequest,
    InvalidSpend,
    WrongMerchant,
)
from .hashing import H_bytes, H_scalar, lp, u64
from .keys import MerchantCertificate, check_currency, check_json_int, check_merchant_id
from .params import g1, g2

NONCE_BYTES = 16


@dataclass(frozen=True)
class PaymentRequest:
    merchant_id: str
    amount: int
    currency: str
    timestamp_ms: int
    nonce: bytes

    def check(self) -> None:
        """Raise :class:`InvalidRequest` unless within the limits of section 5."""
        check_merchant_id(self.merchant_id)
        check_json_int(self.amount, "amount")
        check_currency(self.currency)
        check_json_int(self.timestamp_ms, "timestamp_ms")
        if not isinstance(self.nonce, bytes) or len(self.nonce) != NONCE_BYTES:
            raise InvalidRequest("nonce must be 16 bytes")

    @cached_property
    def request_id(self) -> bytes:
        self.check()
        return H_bytes("request", self.merchant_id.encode("utf-8"), u64(self.amount),
                       self.currency.encode("ascii"), u64(self.timestamp_ms), self.nonce)[:32]


@dataclass(frozen=True)
class Spend:
    """A spend transcript ``(coin, request, r1, r2)``."""

    coin: Coin
    request: PaymentRequest
    r1: int
    r2: int


def spend_challenge(A: bytes, B: bytes, request_id: bytes) -> int:
    """``d = H_scalar("spend", A, B, request_id)``."""
    return H_scalar("spend", A, B, request_id)


def make_spend(coin: Coin, coin_secrets: CoinSecrets, u1: int,
               request: PaymentRequest) -> Spend:
    """The holder's answer: ``r1 = d*u1*s + x1``, ``r2 = d*s + x2``.

    Answering one coin for two requests names the holder (section 7): the
    caller must record the coin as spent for ``request`` before releasing this.
    """
    d = group.nonzero(spend_challenge(coin.A, coin.B, request.request_id), "d")
    ds = d * coin_secrets.s
    q = group.q
    return Spend(coin, request, (ds * u1 + coin_secrets.x1) % q, (ds + coin_secrets.x2) % q)


def verify_spend(spend: Spend, key: PublicKeyLike, *, currency: str | None = None,
                 merchant_id: str | None = None) -> int:
    """Raise unless the transcript is valid; return ``d``.

    Checks the request (section 5 limits), the currency of ``key`` (pass
    ``currency`` when ``key`` has none), the coin (4.1), the spend equation
    ``g1^r1 * g2^r2 == A^d * B`` and, if given, the payee. No clock-dependent
    check: deadlines are the caller's business (9.4).
    """
    request = spend.request
    request.check()
    if merchant_id is not None and request.merchant_id != merchant_id:
        raise WrongMerchant("spend was made to another merchant")
    key_currency = currency if currency is not None else getattr(key, "currency", None)
    if key_currency is not None and request.currency != key_currency:
        raise CurrencyMismatch("request currency differs from the key's currency")
    r1 = check_scalar(spend.r1, "r1")
    r2 = check_scalar(spend.r2, "r2")
    coin = spend.coin
    verify_coin(coin, key)
    d = group.nonzero(spend_challenge(coin.A, coin.B, request.request_id), "d")
    lhs = group.add(group.mul(g1, r1), group.mul(g2, r2))
    if lhs != group.add(group.mul(coin.A, d), coin.B):
        raise InvalidSpend("spend check g1^r1 * g2^r2 == A^d * B fails", "spend_equation")
    return d


# --- signed requests and receipts -------------------------------------------

def request_message(request_id: bytes, pos_url: str) -> bytes:
    return b"ECASH-1/request" + request_id + lp(pos_url.encode("utf-8"))


@dataclass(frozen=True)
class SignedRequest:
    """The ``envelope`` of section 8: what a terminal shows as a QR code."""

    request: PaymentRequest
    pos_url: str
    certificate: MerchantCertificate
    signature: bytes

    def verify(self, master_public_key: bytes, *, now: int | None = None) -> None:
        """The wallet's check before it shows the payee or pays (defeats a swapped QR).

        ``now`` (Unix seconds), when given, also checks the certificate's validity.
        """
        self.request.check()
        cert = self.certificate
        cert.verify(master_public_key)
        if cert.merchant_id != self.request.merchant_id:
            raise BadSignature("certificate is for another merchant", "certificate_mismatch")
        if now is not None and now > cert.valid_until:
            raise BadSignature("merchant certificate has expired", "certificate_expired")
        sign.verify(cert.public_key, request_message(self.request.request_id, self.pos_url),
                    self.signature)


def sign_request(merchant_key: sign.SigningKey, certificate: MerchantCertificate,
                 request: PaymentRequest, pos_url: str = "") -> SignedRequest:
    if certificate.public_key != merchant_key.public_key:
        raise ValueError("certificate does not certify this key")
    if certificate.merchant_id != request.merchant_id:
        raise ValueError("certificate is for another merchant_id")
    sig = merchant_key.sign(request_message(request.request_id, pos_url))
    return SignedRequest(request, pos_url, certificate, sig)


@dataclass(frozen=True)
class Receipt:
    request_id: bytes
    amount: int
    signature: bytes

    def verify(self, merchant_public_key: bytes) -> None:
        sign.verify(merchant_public_key, receipt_message(self.request_id, self.amount),
                    self.signature)


def receipt_message(request_id: bytes, amount: int) -> bytes:
    return b"ECASH-1/receipt" + request_id + u64(amount)


def make_receipt(merchant_key: sign.SigningKey, request: PaymentRequest) -> Receipt:
    rid = request.request_id
    return Receipt(rid, request.amount, merchant_key.sign(receipt_message(rid, request.amount)))
