"""Token-bucket rate limits per client address and per authenticated
principal, per worker.

The per-principal limit is keyed on who a credential belongs to (its role
and account), taken only once the credential has been authenticated: a key
taken from the raw ``Authorization`` header would let anyone spell one
credential many ways (padding, case) and get a fresh bucket for each.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, per_credential: float = 200.0, per_address: float = 1000.0,
                 burst: float = 4.0, max_entries: int = 100_000,
                 spent_ids_per_address: float = 20_000.0) -> None:
        self.rates = {"c": per_credential, "a": per_address, "s": spent_ids_per_address}
        self.burst = burst
        self.max_entries = max_entries
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _take(self, key: str, rate: float, now: float) -> bool:
        tokens, last = self._buckets.get(key, (rate * self.burst, now))
        tokens = min(rate * self.burst, tokens + (now - last) * rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def _allow(self, key: str, rate: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) > self.max_entries:
                self._buckets.clear()
            return self._take(key, rate, now)

    def allow(self, address: str) -> bool:
        """One request from ``address`` (every request, before anything else)."""
        return self._allow("a" + address, self.rates["a"])

    def allow_principal(self, principal: str) -> bool:
        """One request of an authenticated ``principal`` (a stable name of who
        the credential belongs to, never the credential itself)."""
        return self._allow("c" + principal, self.rates["c"])

    # --- costly answers (the spent-set query): charged by what they return ---
    def _refilled(self, key: str, rate: float, now: float) -> float:
        tokens, last = self._buckets.get(key, (rate * self.burst, now))
        return min(rate * self.burst, tokens + (now - last) * rate)

    def spent_ids_wait(self, address: str) -> float:
        """Seconds ``address`` must wait before its next spent-set page (0: none):
        its budget of coin_ids, refilled at ``spent_ids_per_address`` a second,
        must be positive."""
        rate = self.rates["s"]
        with self._lock:
            tokens = self._refilled("s" + address, rate, time.monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / rate

    def charge_spent_ids(self, address: str, count: int) -> None:
        """Take ``count`` coin_ids sent to ``address`` from its budget (a page
        is answered whole, so the budget may go below zero: the next waits)."""
        rate, now = self.rates["s"], time.monotonic()
        with self._lock:
            if len(self._buckets) > self.max_entries:
                self._buckets.clear()
            key = "s" + address
            self._buckets[key] = (self._refilled(key, rate, now) - count, now)
