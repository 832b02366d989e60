"""The public spent-set query (ECASH-1 9.4): which coins of a generation the
bank holds as spent, asked by bucket so that a wallet never names a coin.

The wallet chooses its bucket size (``prefix_bits``) and asks for whole
buckets (``wire.spentset``); the bank answers in pages of at most
:data:`PAGE` coin_ids, ordered by ``(bucket, coin_id)`` (the spent table's
primary key, so a page is a walk along one index), with a cursor for the
next. Each request's work is capped (:data:`MAX_PREFIXES` ranges, one page);
the HTTP layer charges each client for the coin_ids it is sent.

``/v1/generations`` reports each generation's ``spent_count``, the figure a
wallet sizes its buckets by; it is counted at most once a minute per worker,
not per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from sqlalchemy import func, select, tuple_

from ..wire.spentset import bucket_of, bucket_range
from .errors import BankError
from .schema import generations, spent_coins

MAX_PREFIXES = 64
MAX_PREFIX_BITS = 20
PAGE = 1024
SPENT_COUNT_MAX_AGE_S = 60.0


class SpentSetMixin:
    _spent_counts: tuple[float, dict[int, int]] | None = None
    _spent_counts_lock = threading.Lock()

    def spent_range(self, generation: int, prefix_bits: int,  # type: ignore[misc]
                    prefixes: Sequence[int], after: bytes | None = None) -> dict:
        """One page of the spent coin_ids whose bucket starts with one of
        ``prefixes`` (``prefix_bits`` bits each), after the cursor ``after``
        (the last coin_id of the page before); ``next`` is this page's cursor,
        or None when nothing follows."""
        ranges = _ranges(prefix_bits, prefixes)
        if after is not None and len(after) != 32:
            raise BankError("bad_cursor", "after is a 32-byte coin_id (64 hex characters)")
        if not 0 <= generation < 2**31:  # the column's range: larger ones cannot exist
            raise BankError("unknown_generation", "no such generation", 404)
        start = (bucket_of(after), after) if after is not None else (-1, b"")
        found: list[bytes] = []
        with self.engine.connect() as conn:
            gen = conn.execute(select(generations.c.closed_at).where(
                generations.c.generation == generation)).first()
            if gen is None:
                raise BankError("unknown_generation", "no such generation", 404)
            for lo, hi in ranges:  # in order: each range's page is one index walk
                if len(found) > PAGE:
                    break
                if hi < start[0]:
                    continue
                query = select(spent_coins.c.coin_id).where(
                    spent_coins.c.generation == generation,
                    spent_coins.c.bucket.between(lo, hi))
                if start[0] >= lo:
                    query = query.where(tuple_(spent_coins.c.bucket, spent_coins.c.coin_id)
                                        > tuple_(*start))
                found += conn.scalars(query.order_by(spent_coins.c.bucket, spent_coins.c.coin_id)
                                      .limit(PAGE + 1 - len(found))).all()
        page = found[:PAGE]
        return {"generation": generation, "closed": gen.closed_at is not None,
                "coin_ids": [c.hex() for c in page],
                "next": page[-1].hex() if len(found) > PAGE else None}

    def generations_info(self) -> list[dict]:  # type: ignore[misc]
        """Every generation, with its spent set's size (at most a minute old)."""
        counts = self.spent_counts()
        with self.engine.connect() as conn:
            rows = conn.execute(select(generations).order_by(generations.c.generation)).all()
        return [{"generation": g.generation, "withdraw_start": g.withdraw_start,
                 "withdraw_end": g.withdraw_end, "deposit_end": g.deposit_end,
                 "closed": g.closed_at is not None,
                 "spent_count": 0 if g.closed_at is not None else counts.get(g.generation, 0)}
                for g in rows]

    def spent_counts(self) -> dict[int, int]:  # type: ignore[misc]
        """Spent coins per generation, counted again when the last count is
        more than :data:`SPENT_COUNT_MAX_AGE_S` old (one worker counts at a time)."""
        cached = self._spent_counts
        if cached is not None and time.monotonic() - cached[0] <= SPENT_COUNT_MAX_AGE_S:
            return cached[1]
        with self._spent_counts_lock:
            cached = self._spent_counts
            if cached is not None and time.monotonic() - cached[0] <= SPENT_COUNT_MAX_AGE_S:
                return cached[1]
            with self.engine.connect() as conn:
                counts = {g: int(n) for g, n in conn.execute(
                    select(spent_coins.c.generation, func.count())
                    .group_by(spent_coins.c.generation))}
            self._spent_counts = (time.monotonic(), counts)
            return counts


def _ranges(prefix_bits: int, prefixes: Sequence[int]) -> list[tuple[int, int]]:
    """The bucket ranges of ``prefixes``, in order; a clear refusal of any
    request beyond the caps."""
    if not 0 <= prefix_bits <= MAX_PREFIX_BITS:
        raise BankError("bad_prefix_bits", f"prefix_bits is 0 to {MAX_PREFIX_BITS}")
    if not 1 <= len(prefixes) <= MAX_PREFIXES:
        raise BankError("bad_prefixes", f"1 to {MAX_PREFIXES} prefixes per request")
    if len(set(prefixes)) != len(prefixes):
        raise BankError("bad_prefixes", "prefixes must be distinct")
    if not all(0 <= p < 1 << prefix_bits for p in prefixes):
        raise BankError("bad_prefixes", f"prefixes are integers below 2^{prefix_bits}")
    return [bucket_range(p, prefix_bits) for p in sorted(prefixes)]
