"""The spent-set query as the wallet asks it (ECASH-1 9.4; docs/wallet.md).

The wallet never names a coin: it asks for whole buckets (a prefix of
``SHA-256(coin_id)``, :mod:`ecash.wire.spentset`), its own mixed with random
ones, on a connection that carries no credential. How narrow the buckets are
is the wallet's choice, not the bank's: it sizes them from the generation's
``spent_count`` so that an honest bank's buckets hold at least
:data:`TARGET_PER_BUCKET` spent coins each, and never narrower than
:data:`MAX_QUERY_BITS`, whatever the bank claims.

The count is unsigned and the bank could lie about it, so the wallet checks
it against what it can see. An honest bank's buckets are uniform (a bucket is
a hash of the coin_id), so a bucket far below the claimed density means the
claim is false. Before it sends any prefix of its own, the wallet probes a few
random buckets at the chosen size; a probe far below the claim makes it fall
back to coarser buckets sized from what it saw, with a warning. The answers
to the real query are checked the same way. A bank that fabricates coin_ids
to fill the buckets passes these checks; against it only the clamp holds.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable

from ..bank.client import BankClient, BankHTTPError
from ..wire.spentset import prefix_of
from .errors import WalletError

TARGET_PER_BUCKET = 64  # an honest bank's bucket holds at least this many spent coins
MAX_QUERY_BITS = 16  # the narrowest buckets the wallet ever asks, whatever the bank says
SUSPECT_FRACTION = 4  # a bucket below (claimed density) / this proves the claim false
PROBE_PREFIXES = 4  # random buckets fetched before any of the wallet's own
MIN_PREFIXES = 32  # every query asks at least this many buckets
PAD_FACTOR = 4  # ... and this many times as many as the wallet needs
PREFIXES_PER_CALL = 64  # the bank's limit per request
MAX_PAGES = 4096  # per call: 4 million coin_ids; a bank sending more is not believed
MAX_RATE_WAITS = 3  # a 429 with a short Retry-After is waited out this many times
MAX_RATE_WAIT_S = 10


def bits_for(spent_count: int) -> int:
    """``floor(log2(spent_count / 64))``, clamped to ``[0, MAX_QUERY_BITS]``."""
    return min(MAX_QUERY_BITS, max(0, (spent_count // TARGET_PER_BUCKET).bit_length() - 1))


def padded(own: set[int], bits: int, rng: random.Random) -> list[int]:
    """``own`` prefixes hidden among random ones: at least :data:`MIN_PREFIXES`
    and :data:`PAD_FACTOR` times as many as needed, every prefix once that is
    over half of them."""
    space = 1 << bits
    want = min(space, max(MIN_PREFIXES, PAD_FACTOR * len(own)))
    if want * 2 > space and space <= 1 << 12:
        chosen = set(range(space))
    else:
        chosen = set(own)
        while len(chosen) < want:
            chosen.add(rng.randrange(space))
    out = list(chosen)
    rng.shuffle(out)
    return out


class SpentQuery:
    """One sync's queries against one bank; ``warnings`` says what it did not trust."""

    def __init__(self, bank: BankClient, rng: random.Random | None = None) -> None:
        self.bank = bank
        self.rng = rng or random.SystemRandom()
        self.warnings: list[str] = []
        self.asked: list[tuple[int, int, list[int]]] = []  # (generation, bits, prefixes)

    def spent(self, generation: dict, coin_ids: Iterable[bytes]) -> set[bytes]:
        """Which of ``coin_ids`` (all of ``generation``) the bank holds as spent."""
        mine = set(coin_ids)
        gen = generation["generation"]
        count = generation.get("spent_count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise WalletError("the bank sent no usable spent_count", "bad_bank_answer")
        bits = bits_for(count)
        density = count >> bits
        while bits > 0:
            own = {prefix_of(c, bits) for c in mine}
            probe = self._decoys(own, bits, PROBE_PREFIXES)
            seen = self._fetch(gen, bits, probe)
            if self._dense_enough(seen, bits, probe, density):
                break
            estimate = (len(seen) << bits) // len(probe)
            coarser = min(bits - 2, bits_for(estimate))
            self.warnings.append(
                f"generation {gen}: the bank claims {count} spent coins, but its buckets hold"
                f" about {estimate}; the claim is not trusted, buckets of {max(coarser, 0)}"
                f" bits are asked instead of {bits}")
            bits, density = max(coarser, 0), estimate >> max(coarser, 0)
        own = {prefix_of(c, bits) for c in mine}
        asked = padded(own, bits, self.rng)
        found = self._fetch(gen, bits, asked)
        if bits > 0 and not self._dense_enough(found, bits, asked, density):
            self.warnings.append(
                f"generation {gen}: some buckets hold far fewer spent coins than the bank's"
                f" count ({count}) implies; the count is not trusted (the next sync probes"
                " again before asking)")
        return found & mine

    def _decoys(self, own: set[int], bits: int, n: int) -> list[int]:
        space = 1 << bits
        n = min(n, space)
        pool = set()
        while len(pool) < n:
            p = self.rng.randrange(space)
            if p not in own or len(own) >= space:
                pool.add(p)
        return list(pool)

    @staticmethod
    def _dense_enough(found: set[bytes], bits: int, asked: list[int], density: int) -> bool:
        """Every bucket asked holds at least 1/SUSPECT_FRACTION of the density
        an honest bank's figure gives (only checked when that is at least 64
        a bucket: below, the wallet asked coarse buckets anyway)."""
        if density < TARGET_PER_BUCKET:
            return True
        per = Counter(prefix_of(c, bits) for c in found)
        return min(per.get(p, 0) for p in asked) * SUSPECT_FRACTION >= density

    def _fetch(self, gen: int, bits: int, prefixes: list[int]) -> set[bytes]:
        """Every spent coin_id in the buckets ``prefixes``, page after page."""
        found: set[bytes] = set()
        for i in range(0, len(prefixes), PREFIXES_PER_CALL):
            chunk = sorted(prefixes[i:i + PREFIXES_PER_CALL])
            self.asked.append((gen, bits, chunk))
            wanted = set(chunk)
            after: bytes | None = None
            for _page in range(MAX_PAGES):
                out = self._call(gen, bits, chunk, after)
                page = _coin_ids(out, gen)
                last = (-1, b"") if after is None else (prefix_of(after, 31), after)
                for c in page:
                    here = (prefix_of(c, 31), c)
                    if prefix_of(c, bits) not in wanted or here <= last:
                        raise WalletError("the bank's spent-set answer is outside the buckets"
                                          " asked or out of order", "bad_bank_answer")
                    last = here
                found.update(page)
                nxt = out.get("next")
                if nxt is None:
                    break
                if not page or nxt != page[-1].hex():
                    raise WalletError("the bank's spent-set cursor does not follow its page",
                                      "bad_bank_answer")
                after = page[-1]
            else:
                raise WalletError("the bank's spent-set answer does not end", "bad_bank_answer")
        return found

    def _call(self, gen: int, bits: int, chunk: list[int], after: bytes | None) -> dict:
        for attempt in range(MAX_RATE_WAITS + 1):
            try:
                return self.bank.spent_range(gen, bits, chunk, after)
            except BankHTTPError as exc:
                wait = exc.retry_after
                if (exc.status != 429 or wait is None or wait > MAX_RATE_WAIT_S
                        or attempt == MAX_RATE_WAITS):
                    raise
                time.sleep(wait)
        raise AssertionError("unreachable")


def _coin_ids(out: dict, gen: int) -> list[bytes]:
    try:
        if out["generation"] != gen:
            raise ValueError("another generation")
        ids = [bytes.fromhex(c) for c in out["coin_ids"]]
    except (KeyError, TypeError, ValueError):
        raise WalletError("the bank sent a malformed spent-set answer",
                          "bad_bank_answer") from None
    if any(len(c) != 32 for c in ids):
        raise WalletError("the bank sent a coin_id of the wrong length", "bad_bank_answer")
    return ids
