"""Token-bucket rate limits per credential and per client address, per worker."""

from __future__ import annotations

import hashlib
import threading
import time


class RateLimiter:
    def __init__(self, per_credential: float = 200.0, per_address: float = 1000.0,
                 burst: float = 4.0, max_entries: int = 100_000) -> None:
        self.rates = {"c": per_credential, "a": per_address}
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

    def allow(self, address: str, authorization: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) > self.max_entries:
                self._buckets.clear()
            ok = self._take("a" + address, self.rates["a"], now)
            if ok and authorization:
                cred = hashlib.sha256(authorization.encode()).hexdigest()[:32]
                ok = self._take("c" + cred, self.rates["c"], now)
            return ok
