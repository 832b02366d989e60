"""How often the terminal refuses the same client, or refuses payments to one
request: token buckets, in memory, per server process.

Anyone who knows a request id (it is in the QR code) can send payments to it;
each refusal costs a signature and a write. A client address or a request
that has had its share of refusals is answered ``429`` before any work until
its bucket refills. Accepted payments cost nothing, so a busy till is never
slowed. Unlike the bank's per-call limiter, this one must look before it
charges: whether a payment is refused is known only after the work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    burst: float  # refusals allowed at once
    per_s: float  # refill rate


class RefusalLimiter:
    def __init__(self, per_client: Rate = Rate(20, 1.0), per_request: Rate = Rate(10, 0.1),
                 max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.rates = {"client": per_client, "request": per_request}
        self.max_entries, self.clock = max_entries, clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, key: tuple[str, str], now: float) -> float:
        rate = self.rates[key[0]]
        tokens, last = self._buckets.get(key, (rate.burst, now))
        return min(rate.burst, tokens + (now - last) * rate.per_s)

    def retry_after(self, client: str, request: str) -> float:
        """Seconds until this client may be refused again for this request (0: now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in (("client", client), ("request", request)):
                tokens = self._tokens(key, now)
                if tokens < 1:
                    wait = max(wait, (1 - tokens) / self.rates[key[0]].per_s)
        return wait

    def charge(self, client: str, request: str) -> None:
        """One refusal for this client and this request."""
        now = self.clock()
        with self._lock:
            if len(self._buckets) >= self.max_entries:
                self._forget_full(now)
            for key in (("client", client), ("request", request)):
                self._buckets[key] = (self._tokens(key, now) - 1, now)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (they hold nothing to remember);
        if all are still draining, the oldest half."""
        full = [k for k in self._buckets if self._tokens(k, now) >= self.rates[k[0]].burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_entries:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for k in by_age[:len(by_age) // 2]:
                del self._buckets[k]
