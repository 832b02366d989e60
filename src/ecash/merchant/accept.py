"""Accepting a payment (ECASH-1 5, 5.1, 9.4), offline below the floor limit and
online above it. A payment is accepted (receipt), refused (signed when 5.1
allows) or pending (:class:`~.errors.PaymentPending`).

Order of work: find the request (404 if unknown); the first payment that is
not refused outright decides it, so a request already decided answers the
identical payment as it did (receipt, the same refusal, or a new try at the
bank while pending) and refuses any other. For an open request: refuse it
after its expiry; check every coin against the cached keys (payee, known key,
currency, the request itself, the key's spend deadline ``deposit_end - T``,
no ``coin_id`` twice), the values against the amount, then each spend's
cryptography. Below the floor limit, store every transcript in the
transaction that marks the request paid (the primary key on ``coin_id``
refuses a coin stored before, by this or another terminal of the store).
Above it, store them first as *pending* in the transaction that claims the
request, then deposit online: an answer that does not come leaves the
payment pending, never refused (:mod:`.settle` and the identical payment
sent again try again until the bank answers).

Every refusal is recorded by :meth:`~.store.TerminalStore.refuse`, which
closes the request and tells whether the terminal holds any of the payment's
transcripts; only when it holds none is the refusal signed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..crypto.batch import Verdict, verify_one
from ..crypto.errors import EcashError
from ..crypto.keys import DenominationKey
from ..crypto.payment import PaymentRequest, Receipt, Spend, make_receipt
from ..crypto.refusal import CODE_PATTERN, make_refusal, payment_digest
from ..wire import binary
from . import crash
from .errors import PaymentPending, Refusal, RequestNotFound, RequestTaken
from .keycache import KeyCache
from .settle import conclude, deposit_online
from .store import RequestRecord, TranscriptRow
from .terminal import Terminal

MAX_COINS = binary.MAX_PAYMENT_COINS
log = logging.getLogger("ecash.merchant")


def accept(t: Terminal, request_id: bytes,
           spends: Sequence[Spend] | Callable[[], Sequence[Spend]]) -> Receipt:
    """Accept a whole payment for ``request_id`` and return the receipt; raise
    :class:`Refusal` (its ``signed`` set when 5.1 allows), :class:`PaymentPending`
    or :class:`RequestNotFound`.

    ``spends`` may be a function that decodes them, so that an unknown request
    is a 404 whatever the body. A body that is not a payment is refused
    without closing the request: there is no payment to refuse.
    """
    record = t.store.request(request_id)
    if record is None or record.request.merchant_id != t.merchant_id:
        raise RequestNotFound("unknown_request", "no such payment request at this terminal")
    try:
        payment = list(spends() if callable(spends) else spends)
    except EcashError as exc:
        t.store.refuse(request_id, None, exc.code, [], 0, t.now_ms())
        raise Refusal(exc.code, str(exc)) from None
    try:
        if not payment:
            raise Refusal("empty_payment", "a payment has at least one coin")
        if len(payment) > MAX_COINS:
            raise Refusal("too_many_coins", f"a payment has at most {MAX_COINS} coins")
        items = binary.payment_items(payment)
        digest = payment_digest(request_id, items)
        return _accept(t, record, payment, digest)
    except EcashError as exc:
        refusal = Refusal(exc.code, str(exc))
    except Refusal as exc:
        refusal = exc
    raise _refused(t, record, payment, refusal)


def _refused(t: Terminal, record: RequestRecord, payment: list[Spend],
             refusal: Refusal) -> Refusal:
    """Record the refusal (it closes an open request) and sign it when the
    terminal holds none of the payment's transcripts (5.1)."""
    rid = record.request.request_id
    bounded = 0 < len(payment) <= MAX_COINS
    items = binary.payment_items(payment) if bounded else []
    digest = payment_digest(rid, items) if bounded else None
    holds_none = t.store.refuse(rid, digest, refusal.code,
                                [s.coin.coin_id for s in payment] if bounded else [],
                                len(payment), t.now_ms())
    if bounded and holds_none and CODE_PATTERN.fullmatch(refusal.code.encode()):
        refusal.signed = make_refusal(t.signing_key(record.public_key), rid, items,
                                      refusal.code)
    return refusal


def _accept(t: Terminal, record: RequestRecord, spends: list[Spend],
            digest: bytes) -> Receipt:
    request = record.request
    if record.status != "open":
        return _decided(t, record, digest)
    now = t.now()
    if now * 1000 > record.expires_ms:
        raise Refusal("request_expired", "the payment request has expired")
    keys = t.keys
    rows = check_payment(t, keys, request, spends, now)
    receipt = make_receipt(t.signing_key(record.public_key), request)
    online = request.amount > keys.policy.floor_limit
    crash.point("accept:verified")
    claimed = t.store.record_payment(request.request_id, digest, receipt.signature,
                                     t.now_ms(), online, rows,
                                     status="pending" if online else "paid")
    crash.point("accept:stored")
    if online or claimed == "same":  # "same": the identical payment raced this one
        return _decided(t, t.store.request(request.request_id), digest)
    return receipt


def _decided(t: Terminal, record: RequestRecord, digest: bytes) -> Receipt:
    """A request a payment has claimed: the identical payment gets that
    payment's answer, any other is refused."""
    if record.payment_digest != digest:
        raise RequestTaken(record.status)
    rid = record.request.request_id
    if record.status == "pending":
        try:
            deposit_online(t, rid)
            conclude(t, rid)
        except Exception:  # an answer we cannot read is no answer: still pending
            log.exception("checking a pending payment with the bank failed")
        record = t.store.request(rid)
    if record.status == "paid":
        return Receipt(rid, record.request.amount, record.receipt)
    if record.status == "refused":
        raise Refusal(record.code or "refused", _REFUSED_WORDS.get(
            record.code or "", "this payment was refused"), **_bank_codes(t, rid, record))
    raise PaymentPending(rid, t.config.pending_retry_s)


_REFUSED_WORDS = {
    "bank_refused": "the bank refused coins of this payment, checked online above the floor"
                    " limit",
    "bank_error": "the bank did not take the deposit, needed above the floor limit",
}


def _bank_codes(t: Terminal, rid: bytes, record: RequestRecord) -> dict:
    """The bank's codes for the coins it took of a refused payment (their
    records stay; the coins it refused outright are dropped)."""
    if record.code != "bank_refused":
        return {}
    codes = sorted({v.get("code") or v["status"] for _, v in t.store.request_transcripts(rid)
                    if v is not None and v["status"] != "accepted"})
    return {"bank_codes": codes} if codes else {}


def check_payment(t: Terminal, keys: KeyCache, request: PaymentRequest,
                  spends: Sequence[Spend], now: float) -> list[TranscriptRow]:
    """Every offline check of section 5 and 9.4; the rows to store."""
    deposit_by_ms = request.timestamp_ms + keys.window_s * 1000
    seen: set[bytes] = set()
    items = []
    for i, sp in enumerate(spends):
        coin, req = sp.coin, sp.request
        if req.merchant_id != t.merchant_id:
            raise Refusal("wrong_merchant", f"coin {i}: the spend pays another merchant")
        key = keys.by_id.get(coin.key_id)
        if key is None:
            raise Refusal("unknown_key", f"coin {i}: its denomination key is not in the keyset"
                          f" {keys.fingerprint}")
        if req.currency != key.currency:
            raise Refusal("currency_mismatch", f"coin {i}: the request's currency is not the"
                          f" key's ({key.currency})")
        if req != request:
            raise Refusal("request_mismatch", f"coin {i}: the spend answers another request")
        if now > keys.spend_deadline(key):
            raise Refusal("past_spend_deadline", f"coin {i}: its key's spend deadline"
                          f" ({keys.spend_deadline(key)}, ECASH-1 9.4) has passed")
        if coin.coin_id in seen:
            raise Refusal("duplicate_coin", f"coin {i}: the same coin (coin_id) twice in one"
                          " payment")
        seen.add(coin.coin_id)
        items.append((sp, key))
    total = sum(key.value for _, key in items)
    if total != request.amount:
        raise Refusal("amount_mismatch", f"the coins add up to {total}, the request is for"
                      f" {request.amount}")
    _verify(t, items)
    return [TranscriptRow(sp.coin.coin_id, key.key_id, key.value, binary.spend_to_bytes(sp),
                          deposit_by_ms) for sp, key in items]


def verdicts(items: Sequence[tuple[Spend, DenominationKey]]) -> list[Verdict]:
    """Verify in this process (also what a worker of ``verify_pool`` runs)."""
    return [verify_one(it) for it in items]


def _verify(t: Terminal, items: list[tuple[Spend, DenominationKey]]) -> None:
    """Every spend's cryptography. With a ``verify_pool`` (one worker per spare
    core), a payment of 4 coins or more is split: the workers take a share
    each while this thread verifies its own."""
    pool = t.verify_pool
    if pool is None or len(items) < 4:
        results = verdicts(items)
    else:
        workers = max(t.verify_workers, 1)
        share = -(-len(items) // (workers + 1))
        futures = [pool.submit(verdicts, items[i:i + share])
                   for i in range(share, len(items), share)]
        results = verdicts(items[:share])
        for f in futures:
            results.extend(f.result())
    for i, v in enumerate(results):
        if not v.ok:
            raise Refusal(v.code, f"coin {i}: {v.reason}")
