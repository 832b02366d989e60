"""The terminal store: what it must do (:class:`TerminalStore`) and how to open one.

Two implementations share the SQLAlchemy Core code of :mod:`.sqlstore`:
:class:`~.sqlstore.SqliteStore` (one terminal, a file in WAL mode, the default)
and :class:`~.sqlstore.PostgresStore` (several terminals of one shop on one
database). Every method is one transaction, so a process killed at any point
leaves either the whole change or none of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..crypto.payment import PaymentRequest, Spend


@dataclass(frozen=True)
class StoredKey:
    """One of the terminal's Ed25519 keys with its certificate (JSON text)."""

    public_key: bytes
    seed: bytes
    certificate: str
    valid_until: int
    created_ms: int


@dataclass(frozen=True)
class RequestRecord:
    request: PaymentRequest
    pos_url: str
    public_key: bytes  # the key that signed it (and signs its receipt)
    signature: bytes
    terminal: str
    expires_ms: int
    status: str = "open"  # open | pending | paid | refused | cancelled
    online: bool = False
    paid_ms: int | None = None
    payment_digest: bytes | None = None
    coins: int | None = None
    receipt: bytes | None = None
    code: str | None = None  # why it was refused
    refused_count: int = 0
    description: str | None = None  # what is being bought (docs/extensions.md)
    description_signature: bytes | None = None


@dataclass(frozen=True)
class TranscriptRow:
    """A transcript to store, with the bank's verdict when deposited online."""

    coin_id: bytes
    key_id: bytes
    value: int
    spend: bytes  # 288-byte binary spend
    deposit_by_ms: int
    verdict: dict | None = None  # the bank's verdict JSON with "credited_value"


@dataclass(frozen=True)
class Pending:
    coin_id: bytes
    spend: Spend
    value: int
    deposit_by_ms: int


@dataclass(frozen=True)
class Refused:
    """One line of the refusal log: a code (our words for it are in the page)."""

    code: str
    coins: int
    at_ms: int


@dataclass(frozen=True)
class RefusalLog:
    """A request's refusals: how many ever, and the last few, newest first."""

    count: int
    last: list[Refused]


@dataclass(frozen=True)
class SaleRow:
    """One request of a day's sales list, with its coins' deposit state."""

    request_id: bytes
    terminal: str
    amount: int
    currency: str
    created_ms: int
    expires_ms: int
    status: str
    decided_ms: int | None
    code: str | None
    description: str | None
    coins: int  # coins stored for the sale
    deposited: int  # value of those the bank has given a verdict on
    awaiting_deposit: int  # value of those not yet deposited


class TerminalStore(ABC):
    """Durable state of a terminal (or of all terminals of one shop)."""

    # --- set-up -------------------------------------------------------------
    @abstractmethod
    def initialised(self) -> bool: ...

    @abstractmethod
    def initialise(self, settings: dict[str, str], key: StoredKey) -> None:
        """Create the terminal: settings and first key, once (else ``already_initialised``)."""

    @abstractmethod
    def settings(self) -> dict[str, str]: ...

    @abstractmethod
    def set_settings(self, values: dict[str, str]) -> None: ...

    @abstractmethod
    def add_key(self, key: StoredKey) -> None: ...

    @abstractmethod
    def keys(self) -> list[StoredKey]:
        """Every key, oldest first (the last one is current)."""

    # --- requests -----------------------------------------------------------
    @abstractmethod
    def insert_request(self, record: RequestRecord) -> bool:
        """Store a new request; False if its nonce or id was ever used."""

    @abstractmethod
    def request(self, request_id: bytes) -> RequestRecord | None: ...

    # --- acceptance ---------------------------------------------------------
    @abstractmethod
    def record_payment(self, request_id: bytes, digest: bytes, receipt: bytes, paid_ms: int,
                       online: bool, rows: Sequence[TranscriptRow],
                       status: str = "paid") -> str:
        """In ONE transaction: claim the open request for this payment (``status``
        ``paid``, or ``pending`` before going online) and store its transcripts.

        Returns ``"stored"``, or ``"same"`` when the identical payment (same
        ``digest``) claimed it already. Raises :class:`~.errors.RequestTaken`
        when another payment decided it and :class:`~.errors.CoinAlreadyAccepted`
        when a coin is stored already; then nothing changed.
        """

    @abstractmethod
    def request_transcripts(self, request_id: bytes) -> list[tuple[Pending, dict | None]]:
        """The transcripts stored for a request, each with its verdict (or None)."""

    @abstractmethod
    def pending_requests(self) -> list[bytes]:
        """Requests whose payment is still being checked with the bank."""

    @abstractmethod
    def conclude_payment(self, request_id: bytes, paid: bool, at_ms: int,
                         code: str = "bank_refused") -> bool:
        """A pending payment whose transcripts all have verdicts: mark it paid,
        or refused with ``code``, keeping (as not sold) the coins the bank took
        and dropping the ones it refused. False if it was not pending."""

    @abstractmethod
    def refuse(self, request_id: bytes, digest: bytes | None, code: str,
               coin_ids: Sequence[bytes], coins: int, at_ms: int) -> bool:
        """In ONE transaction: an open request is refused for the payment
        ``digest`` (None: not a payment, the request stays open); log the
        refusal (the last few per request, and the count). True when the store
        holds none of ``coin_ids`` for this request: only then may the
        refusal be signed (ECASH-1 5.1)."""

    @abstractmethod
    def refusal_log(self, request_id: bytes) -> RefusalLog: ...

    # --- settlement ---------------------------------------------------------
    @abstractmethod
    def pending(self, limit: int, exclude: Iterable[bytes] = ()) -> list[Pending]:
        """Transcripts without a verdict, the most urgent first."""

    @abstractmethod
    def record_verdicts(self, verdicts: Sequence[tuple[bytes, dict]], settled_ms: int) -> int:
        """Record each ``(coin_id, verdict)`` unless one is recorded already."""

    @abstractmethod
    def note_attempt(self, coin_ids: Sequence[bytes], error: str) -> None: ...

    @abstractmethod
    def report_figures(self, now_ms: int, warn_ms: int) -> dict:
        """The raw aggregates behind :func:`ecash.merchant.settle.report`."""

    # --- the till: cancel, day close (see cancel.py, dayclose.py) --------------
    @abstractmethod
    def cancel(self, request_id: bytes, at_ms: int) -> str | None:
        """In ONE transaction: an open request becomes ``cancelled`` (no payment is
        taken after it). Returns the status it had (``"open"`` when this call
        cancelled it), or None for an unknown request."""

    @abstractmethod
    def sales_between(self, start_ms: int, end_ms: int) -> list[SaleRow]:
        """Every request made in ``[start_ms, end_ms)``, oldest first, with what
        the bank has said about its coins."""

    @abstractmethod
    def close(self) -> None: ...


def store_url(location: str | Path) -> str:
    """A path, ``sqlite:///PATH`` or ``postgresql://...`` as a database URL."""
    loc = str(location)
    if loc.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        return loc
    if "://" in loc:
        raise ValueError(f"unsupported store URL {loc!r} (use a path or postgresql://...)")
    return f"sqlite:///{Path(loc).expanduser().resolve()}"


def open_store(location: str | Path, *, create: bool = True) -> TerminalStore:
    """Open the store at ``location``, creating its tables (and, with ``create``,
    a SQLite file that does not exist yet)."""
    from .errors import NotInitialised
    from .sqlstore import PostgresStore, SqliteStore

    url = store_url(location)
    if not url.startswith("sqlite"):
        return PostgresStore(url)
    path = url.split("///", 1)[-1]
    if not create and ":memory:" not in path and not Path(path).exists():
        raise NotInitialised(f"no terminal store at {path}; run `ecash merchant init`")
    return SqliteStore(url)
