"""Binary forms: the coin (224 bytes), spend (288 bytes against a known request)
and request of section 8, plus this implementation's envelope and payment
forms used by the text encoding (documented in the README)."""

from __future__ import annotations

from ..crypto import group
from ..crypto.coin import Coin
from ..crypto.hashing import lp, u64
from ..crypto.keys import MerchantCertificate
from ..crypto.payment import PaymentRequest, SignedRequest, Spend
from .errors import WireError
from .json import _wrap

COIN_BYTES = 224
SPEND_BYTES = 288
MAX_PAYMENT_COINS = 1024


class Reader:
    """A bounds-checked cursor over bytes; every short read is a :class:`WireError`."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = bytes(data), 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise WireError(f"{self.what}: truncated", "wrong_length")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def lp(self, limit: int) -> bytes:
        n = int.from_bytes(self.take(4), "big")
        if n > limit:
            raise WireError(f"{self.what}: length field too large", "wrong_length")
        return self.take(n)

    def utf8(self, limit: int) -> str:
        try:
            return self.lp(limit).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError(f"{self.what}: not UTF-8", "bad_type") from None

    def done(self) -> None:
        if self.pos != len(self.data):
            raise WireError(f"{self.what}: trailing bytes", "wrong_length")


def coin_to_bytes(c: Coin) -> bytes:
    return c.key_id + c.A + c.B + c.z + c.a + c.b + group.encode_scalar(c.r)


def coin_from_bytes(data: bytes) -> Coin:
    if len(data) != COIN_BYTES:
        raise WireError(f"binary coin must be {COIN_BYTES} bytes, got {len(data)}",
                        "wrong_length")
    return _coin(Reader(data, "coin"))


def _coin(rd: Reader) -> Coin:
    key_id = rd.take(32)
    A, B, z, a, b = (_element(rd, f"coin.{n}") for n in "ABzab")
    return Coin(key_id, A, B, z, a, b, _scalar(rd, "coin.r"))


def _element(rd: Reader, what: str) -> bytes:
    raw = rd.take(32)
    return _wrap(what, lambda: group.decode_element(raw))


def _scalar(rd: Reader, what: str) -> int:
    raw = rd.take(32)
    return _wrap(what, lambda: group.decode_scalar(raw))


def spend_to_bytes(s: Spend) -> bytes:
    """The 288-byte spend of one coin against a known request."""
    return coin_to_bytes(s.coin) + group.encode_scalar(s.r1) + group.encode_scalar(s.r2)


def spend_from_bytes(data: bytes, request: PaymentRequest) -> Spend:
    if len(data) != SPEND_BYTES:
        raise WireError(f"binary spend must be {SPEND_BYTES} bytes", "wrong_length")
    rd = Reader(data, "spend")
    return Spend(_coin(rd), request, _scalar(rd, "spend.r1"), _scalar(rd, "spend.r2"))


def request_to_bytes(r: PaymentRequest) -> bytes:
    return (lp(r.merchant_id.encode("utf-8")) + u64(r.amount) + r.currency.encode("ascii")
            + u64(r.timestamp_ms) + r.nonce)


def _request(rd: Reader) -> PaymentRequest:
    merchant_id = rd.utf8(64)
    amount = rd.u64()
    try:
        currency = rd.take(3).decode("ascii")
    except UnicodeDecodeError:
        raise WireError("request.currency: not ASCII", "bad_currency") from None
    req = PaymentRequest(merchant_id, amount, currency, rd.u64(), rd.take(16))
    _wrap("request", req.check)
    return req


def request_from_bytes(data: bytes) -> PaymentRequest:
    rd = Reader(data, "request")
    req = _request(rd)
    rd.done()
    return req


def envelope_to_bytes(e: SignedRequest) -> bytes:
    """``request || lp(pos_url) || lp(cert.merchant_id) || cert.public_key ||
    u64(cert.valid_until) || cert.signature || signature``."""
    c = e.certificate
    return (request_to_bytes(e.request) + lp(e.pos_url.encode("utf-8"))
            + lp(c.merchant_id.encode("utf-8")) + c.public_key + u64(c.valid_until)
            + c.signature + e.signature)


def envelope_from_bytes(data: bytes) -> SignedRequest:
    rd = Reader(data, "envelope")
    req = _request(rd)
    pos_url = rd.utf8(2048)
    cert = MerchantCertificate(rd.utf8(64), rd.take(32), rd.u64(), rd.take(64))
    env = SignedRequest(req, pos_url, cert, rd.take(64))
    rd.done()
    return env


def payment_to_bytes(spends: list[Spend]) -> bytes:
    """``request || u16(count) || count * spend(288)``: all spends answer one request."""
    if not spends or len(spends) > MAX_PAYMENT_COINS:
        raise ValueError("a payment has 1 to 1024 coins")
    req = spends[0].request
    if any(s.request != req for s in spends):
        raise ValueError("all spends of a payment answer one request")
    return (request_to_bytes(req) + len(spends).to_bytes(2, "big")
            + b"".join(spend_to_bytes(s) for s in spends))


def payment_items(spends: list[Spend]) -> list[bytes]:
    """A payment's coins as the fields of its ``payment_digest`` (5.1): each
    plain coin's 288-byte spend."""
    return [spend_to_bytes(s) for s in spends]


def payment_from_bytes(data: bytes) -> list[Spend]:
    rd = Reader(data, "payment")
    req = _request(rd)
    n = int.from_bytes(rd.take(2), "big")
    if not 1 <= n <= MAX_PAYMENT_COINS:
        raise WireError("payment: 1 to 1024 coins", "wrong_length")
    spends = [spend_from_bytes(rd.take(SPEND_BYTES), req) for _ in range(n)]
    rd.done()
    return spends
