"""Rate limits per client address and per authenticated principal, on the
``limits`` package, in a storage every worker shares.

A limit of ``rate`` requests a second with bursts of ``burst`` seconds' worth
is a moving window of ``rate * burst`` requests over ``burst`` seconds: no
more than that in any such span, however the requests fall. The storage is
``memory://`` for one worker; several workers must share one (``redis://``, the
client the ``bank`` extra installs), or each would grant the whole limit and they would
multiply with the workers (``ecash bank serve`` refuses that).

The per-principal limit is keyed on who a credential belongs to (its role
and account), taken only once the credential has been authenticated: a key
taken from the raw ``Authorization`` header would let anyone spell one
credential many ways (padding, case) and get a fresh budget for each.

The spent-set query is charged by the coin_ids it returns, in a fixed window
of ``spent_ids_per_address * burst`` ids over ``burst`` seconds: a page is
answered whole, so a window may be overdrawn by one page; the next page then
waits for the overdraft to be earned back at the configured rate, or for the
window's end if later (a client that waits only for the window's end gets at
most one page more a window).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

MEMORY = "memory://"


def _item(rate: float, burst: float, namespace: str) -> RateLimitItem:
    seconds = max(1, math.ceil(burst))
    return RateLimitItemPerSecond(max(1, round(rate * seconds)), seconds, namespace=namespace)


class RateLimiter:
    def __init__(self, per_credential: float = 200.0, per_address: float = 1000.0,
                 burst: float = 4.0, spent_ids_per_address: float = 20_000.0, *,
                 storage_uri: str = MEMORY) -> None:
        self.storage_uri = storage_uri
        storage = storage_from_string(storage_uri)
        self._requests = MovingWindowRateLimiter(storage)
        self._costs = FixedWindowRateLimiter(storage)
        self._credential = _item(per_credential, burst, "ecash-c")
        self._address = _item(per_address, burst, "ecash-a")
        self._spent = _item(spent_ids_per_address, burst, "ecash-s")
        self._spent_rate = spent_ids_per_address

    @property
    def shared(self) -> bool:
        """Whether the storage is shared between processes (not ``memory://``)."""
        return not self.storage_uri.startswith(MEMORY)

    def allow(self, address: str) -> bool:
        """One request from ``address`` (every request, before anything else)."""
        return self._requests.hit(self._address, address)

    def allow_principal(self, principal: str) -> bool:
        """One request of an authenticated ``principal`` (a stable name of who
        the credential belongs to, never the credential itself)."""
        return self._requests.hit(self._credential, principal)

    def spent_ids_wait(self, address: str) -> float:
        """Seconds ``address`` must wait before its next spent-set page (0: none)."""
        item, storage = self._spent, self._costs.storage
        key = item.key_for(address)
        used = storage.get(key)
        if used < item.amount:
            return 0.0
        overdraft = used - item.amount + 1
        return max(storage.get_expiry(key) - time.time(), overdraft / self._spent_rate, 0.001)

    def charge_spent_ids(self, address: str, count: int) -> None:
        """Take ``count`` coin_ids sent to ``address`` from its budget (a page
        is answered whole, so the budget may be overdrawn: the next waits)."""
        if count > 0:
            self._costs.hit(self._spent, address, cost=count)
