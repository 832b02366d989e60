"""Accepting a payment (ECASH-1 5, 9.4), offline below the floor limit and
online above it.

Order of work: find the request (404 if unknown, or unpaid and expired);
if it is paid, the identical payment gets the same receipt and anything else
is refused; check every coin against the cached keys (payee, known key,
currency, the request itself, the key's spend deadline ``deposit_end - T``,
no coin twice), the values against the amount, then each spend's
cryptography; above the floor limit check that no coin was stored before and
deposit at the bank; finally store every transcript in the transaction that
marks the request paid, where the primary key on the serial refuses a coin
stored before (by this or another terminal of the store). A refusal stores
nothing but a line in the refusal log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace

from ..bank.client import BankHTTPError, BankUnreachable
from ..crypto.batch import Verdict, verify_one
from ..crypto.errors import EcashError
from ..crypto.keys import DenominationKey
from ..crypto.payment import PaymentRequest, Receipt, Spend, make_receipt
from ..wire import binary
from . import crash
from .errors import AlreadyPaid, CoinAlreadyAccepted, Refusal, RequestNotFound
from .keycache import KeyCache
from .settle import judged
from .store import RequestRecord, TranscriptRow
from .terminal import Terminal

MAX_COINS = binary.MAX_PAYMENT_COINS


def payment_digest(spends: Sequence[Spend]) -> bytes:
    """Identifies a payment whatever the order of its coins."""
    parts = sorted(binary.request_to_bytes(s.request) + binary.spend_to_bytes(s) for s in spends)
    return hashlib.sha256(b"".join(parts)).digest()


def accept(t: Terminal, request_id: bytes,
           spends: Sequence[Spend] | Callable[[], Sequence[Spend]]) -> Receipt:
    """Accept a whole payment for ``request_id`` and return the receipt, or raise
    :class:`Refusal` (nothing stored) or :class:`RequestNotFound`.

    ``spends`` may be a function that decodes them, so that an unknown request
    is a 404 whatever the body; its :class:`EcashError` becomes a refusal.
    """
    record = t.store.request(request_id)
    if record is None or record.request.merchant_id != t.merchant_id:
        raise RequestNotFound("unknown_request", "no such payment request at this terminal")
    coins = 0
    try:
        payment = list(spends() if callable(spends) else spends)
        coins = len(payment)
        return _accept(t, record, payment)
    except Refusal as exc:
        t.store.add_refusal(request_id, exc.code, exc.detail, coins, t.now_ms())
        raise
    except EcashError as exc:
        t.store.add_refusal(request_id, exc.code, str(exc), coins, t.now_ms())
        raise Refusal(exc.code, str(exc)) from None


def _accept(t: Terminal, record: RequestRecord, spends: list[Spend]) -> Receipt:
    if not spends:
        raise Refusal("empty_payment", "a payment has at least one coin")
    if len(spends) > MAX_COINS:
        raise Refusal("too_many_coins", f"a payment has at most {MAX_COINS} coins")
    request = record.request
    digest = payment_digest(spends)
    if record.status == "paid":
        if digest == record.payment_digest:
            return Receipt(request.request_id, request.amount, record.receipt)
        raise AlreadyPaid()
    now = t.now()
    if now * 1000 > record.expires_ms:
        raise RequestNotFound("request_expired", "the payment request has expired")
    keys = t.keys
    rows = check_payment(t, keys, request, spends, now)
    receipt = make_receipt(t.signing_key(record.public_key), request)
    if request.amount > keys.policy.floor_limit:
        rows = _deposit_online(t, keys, request, spends, rows)
    crash.point("accept:verified")
    try:
        t.store.record_payment(request.request_id, digest, receipt.signature, t.now_ms(),
                               rows[0].verdict is not None, rows)
    except Refusal:
        if rows[0].verdict is not None:  # the bank has them: keep the record
            t.store.record_unsold(request.request_id, rows, t.now_ms())
        raise
    crash.point("accept:stored")
    return receipt


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
        if coin.A in seen:
            raise Refusal("duplicate_coin", f"coin {i}: the same coin twice in one payment")
        seen.add(coin.A)
        items.append((sp, key))
    total = sum(key.value for _, key in items)
    if total != request.amount:
        raise Refusal("amount_mismatch", f"the coins add up to {total}, the request is for"
                      f" {request.amount}")
    if total > keys.policy.floor_limit and t.store.accepted_serials(list(seen)):
        raise CoinAlreadyAccepted()  # before the bank sees them (offline: the store's
        # unique constraint refuses them in the storing transaction)
    _verify(t, items)
    return [TranscriptRow(sp.coin.A, key.key_id, key.value, binary.spend_to_bytes(sp),
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
        workers = getattr(pool, "_max_workers", 1)
        share = -(-len(items) // (workers + 1))
        futures = [pool.submit(verdicts, items[i:i + share])
                   for i in range(share, len(items), share)]
        results = verdicts(items[:share])
        for f in futures:
            results.extend(f.result())
    for i, v in enumerate(results):
        if not v.ok:
            raise Refusal(v.code, f"coin {i}: {v.reason}")


def _deposit_online(t: Terminal, keys: KeyCache, request: PaymentRequest,
                    spends: list[Spend], rows: list[TranscriptRow]) -> list[TranscriptRow]:
    """Above the floor limit: deposit first; accept only if the bank took every coin."""
    floor = keys.policy.floor_limit
    try:
        verdicts = t.bank(online=True).deposit(spends)
    except BankUnreachable:
        raise Refusal("bank_unreachable", f"a payment above the floor limit ({floor}) is"
                      " accepted only online, and the bank cannot be reached") from None
    except BankHTTPError as exc:
        raise Refusal("bank_error", f"the bank did not take the deposit: {exc.code}:"
                      f" {exc.detail}") from None
    rows = [replace(r, verdict=judged(v, r.value)) for r, v in zip(rows, verdicts, strict=True)]
    bad = [v for v in verdicts if v["status"] != "accepted"]
    if bad:
        kept = [r for r in rows if r.verdict["status"] in ("accepted", "double_spent")]
        t.store.record_unsold(request.request_id, kept, t.now_ms())
        codes = sorted({v.get("code") or v["status"] for v in bad})
        raise Refusal("bank_refused", f"the bank refused {len(bad)} coin(s): {', '.join(codes)}",
                      bank_codes=codes)
    return rows
