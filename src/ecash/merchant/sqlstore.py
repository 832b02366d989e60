"""The terminal store on SQLAlchemy Core: SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..crypto.payment import PaymentRequest
from ..files import private_sqlite, sqlite_path
from ..wire import binary
from . import crash
from .errors import CoinAlreadyAccepted, MerchantError, RequestTaken
from .migrate import upgrade
from .schema import (
    REFUSALS_KEPT,
    SCHEMA_VERSION,
    metadata,
    refusals,
    requests,
    settings,
    signing_keys,
)
from .schema import transcripts as tx
from .store import (
    Pending,
    RefusalLog,
    Refused,
    RequestRecord,
    SaleRow,
    StoredKey,
    TerminalStore,
    TranscriptRow,
)

# the bank's verdicts on coins it stored (and credited or compensated)
TAKEN_BY_BANK = ("accepted", "double_spent")


class _Sql:
    """One plain SQL statement for both engines, for the payment's hot path,
    where SQLAlchemy Core's per-statement cost (building, cache key,
    compiling: about 0.2 ms here) rivals the statement's own. Written with
    ``%(name)s`` placeholders (psycopg); SQLite's ``:name`` form is derived.
    The bank's ``store.Sql`` does the same with a prepared form for its
    pipelines; importing it would load psycopg and Alembic into every
    terminal command (about 0.35 s here)."""

    def __init__(self, pg: str) -> None:
        self.pg = pg
        self.sqlite = re.sub(r"%\((\w+)\)s", r":\1", pg)

    def text(self, conn: Connection) -> str:
        return self.sqlite if conn.dialect.name == "sqlite" else self.pg


_REQUEST_COLUMNS = ("merchant_id", "amount", "currency", "timestamp_ms", "nonce", "pos_url",
                    "public_key", "signature", "terminal", "expires_ms", "status", "online",
                    "paid_ms", "payment_digest", "coins", "receipt", "code", "refused_count",
                    "description", "description_signature")
_REQUEST = _Sql(f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM requests"
                " WHERE request_id = %(rid)s")
_CLAIM = _Sql("UPDATE requests SET status = %(status)s, paid_ms = %(paid_ms)s,"
              " payment_digest = %(digest)s, coins = %(coins)s, receipt = %(receipt)s,"
              " online = %(online)s WHERE request_id = %(rid)s AND status = 'open'")
_TRANSCRIPT_COLUMNS = ("coin_id", "request_id", "key_id", "value", "spend", "sale",
                       "accepted_ms", "deposit_by_ms", "verdict", "code", "credited", "replay",
                       "fraud_case", "settled_ms", "attempts", "last_error")
_INSERT_TRANSCRIPT = _Sql(f"INSERT INTO transcripts ({', '.join(_TRANSCRIPT_COLUMNS)}) VALUES"
                          f" ({', '.join(f'%({c})s' for c in _TRANSCRIPT_COLUMNS)})")


class SqlStore(TerminalStore):
    """Everything but opening the database, shared by both engines."""

    dialect = sqlite

    def __init__(self, engine: Engine, read_engine: Engine | None = None) -> None:
        self.engine = engine
        self.read_engine = read_engine or engine
        upgrade(engine)  # a store written by older code, first
        metadata.create_all(engine)

    # --- transactions -------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read: one statement, or several that need no common snapshot."""
        with self.read_engine.connect() as conn:
            conn.execution_options(ecash_read=True)
            yield conn

    def _write(self):
        return self.engine.begin()

    def close(self) -> None:
        self.engine.dispose()

    # --- set-up -------------------------------------------------------------
    def initialised(self) -> bool:
        return "merchant_id" in self.settings()

    def initialise(self, values: dict[str, str], key: StoredKey) -> None:
        with self._write() as conn:
            if conn.execute(select(settings.c.name).where(
                    settings.c.name == "merchant_id")).first() is not None:
                raise MerchantError("already_initialised", "this store already holds a terminal"
                                    " (use `ecash merchant sync` to refresh it)")
            conn.execute(settings.insert(), [{"name": k, "value": v} for k, v in
                                             {**values, "schema_version": SCHEMA_VERSION}.items()])
            conn.execute(signing_keys.insert().values(**key.__dict__))

    def settings(self) -> dict[str, str]:
        with self._read() as conn:
            return {r.name: r.value for r in conn.execute(select(settings)).all()}

    def set_settings(self, values: dict[str, str]) -> None:
        with self._write() as conn:
            for name, value in values.items():
                if conn.execute(update(settings).where(settings.c.name == name).values(
                        value=value)).rowcount == 0:
                    conn.execute(settings.insert().values(name=name, value=value))

    def add_key(self, key: StoredKey) -> None:
        with self._write() as conn:
            conn.execute(signing_keys.insert().values(**key.__dict__))

    def keys(self) -> list[StoredKey]:
        with self._read() as conn:
            rows = conn.execute(select(signing_keys).order_by(
                signing_keys.c.created_ms, signing_keys.c.public_key)).all()
        return [StoredKey(r.public_key, r.seed, r.certificate, r.valid_until, r.created_ms)
                for r in rows]

    # --- requests -----------------------------------------------------------
    def insert_request(self, record: RequestRecord) -> bool:
        r = record.request
        try:
            with self._write() as conn:
                conn.execute(requests.insert().values(
                    request_id=r.request_id, nonce=r.nonce, merchant_id=r.merchant_id,
                    amount=r.amount, currency=r.currency, timestamp_ms=r.timestamp_ms,
                    expires_ms=record.expires_ms, pos_url=record.pos_url,
                    public_key=record.public_key, signature=record.signature,
                    terminal=record.terminal[:64], status="open", online=False,
                    description=record.description,
                    description_signature=record.description_signature))
        except IntegrityError:
            return False
        return True

    def request(self, request_id: bytes) -> RequestRecord | None:
        with self._read() as conn:
            r = conn.exec_driver_sql(_REQUEST.text(conn), {"rid": request_id}).first()
        if r is None:
            return None
        req = PaymentRequest(r.merchant_id, r.amount, r.currency, r.timestamp_ms, r.nonce)
        return RequestRecord(req, r.pos_url, r.public_key, r.signature, r.terminal, r.expires_ms,
                             r.status, bool(r.online), r.paid_ms, r.payment_digest, r.coins,
                             r.receipt, r.code, r.refused_count or 0, r.description,
                             r.description_signature)

    # --- acceptance ---------------------------------------------------------

    @staticmethod
    def _rows(request_id: bytes, rows: Sequence[TranscriptRow], sale: bool,
              now_ms: int) -> list[dict]:
        out = []
        for t in rows:
            v = t.verdict or {}
            out.append({"coin_id": t.coin_id, "request_id": request_id, "key_id": t.key_id,
                        "value": t.value, "spend": t.spend, "sale": sale, "accepted_ms": now_ms,
                        "deposit_by_ms": t.deposit_by_ms, "verdict": v.get("status"),
                        "code": v.get("code"), "credited": v.get("credited_value"),
                        "replay": v.get("replay"), "fraud_case": v.get("fraud_case"),
                        "settled_ms": now_ms if v else None, "attempts": 1 if v else 0,
                        "last_error": None})
        return out

    def record_payment(self, request_id: bytes, digest: bytes, receipt: bytes, paid_ms: int,
                       online: bool, rows: Sequence[TranscriptRow],
                       status: str = "paid") -> str:
        with self._write() as conn:
            done = conn.exec_driver_sql(_CLAIM.text(conn), {
                "rid": request_id, "status": status, "paid_ms": paid_ms, "digest": digest,
                "coins": len(rows), "receipt": receipt, "online": online}).rowcount
            if done != 1:
                taken = conn.execute(select(requests.c.status, requests.c.payment_digest).where(
                    requests.c.request_id == request_id)).one()
                if taken.payment_digest == digest:
                    return "same"
                raise RequestTaken(taken.status)
            try:
                conn.exec_driver_sql(_INSERT_TRANSCRIPT.text(conn),
                                     self._rows(request_id, rows, True, paid_ms))
            except IntegrityError:
                raise CoinAlreadyAccepted() from None
            crash.point("accept:before_commit")
        return "stored"

    def request_transcripts(self, request_id: bytes) -> list[tuple[Pending, dict | None]]:
        req = self.request(request_id)
        if req is None:
            return []
        with self._read() as conn:
            rows = conn.execute(select(tx).where(tx.c.request_id == request_id)
                                .order_by(tx.c.coin_id)).all()
        return [(Pending(r.coin_id, binary.spend_from_bytes(r.spend, req.request), r.value,
                         r.deposit_by_ms),
                 None if r.verdict is None else {"status": r.verdict, "code": r.code,
                                                 "credited_value": r.credited or 0})
                for r in rows]

    def pending_requests(self) -> list[bytes]:
        with self._read() as conn:
            return [r.request_id for r in conn.execute(
                select(requests.c.request_id).where(requests.c.status == "pending")
                .order_by(requests.c.paid_ms)).all()]

    @staticmethod
    def _lock_request(conn: Connection, request_id: bytes):
        """The request's row, locked until the transaction ends (PostgreSQL;
        SQLite's writers are serialised by ``BEGIN IMMEDIATE``)."""
        return conn.execute(select(requests.c.status, requests.c.payment_digest)
                            .where(requests.c.request_id == request_id)
                            .with_for_update()).first()

    def conclude_payment(self, request_id: bytes, paid: bool, at_ms: int,
                         code: str = "bank_refused") -> bool:
        mine = tx.c.request_id == request_id
        with self._write() as conn:
            r = self._lock_request(conn, request_id)
            if r is None or r.status != "pending":
                return False
            if paid:
                conn.execute(update(requests).where(requests.c.request_id == request_id)
                             .values(status="paid", paid_ms=at_ms))
                return True
            # refused: the coins the bank took stay on record (not sold); the rest go,
            # so that the terminal can never deposit them
            conn.execute(update(tx).where(mine, tx.c.verdict.in_(TAKEN_BY_BANK))
                         .values(sale=False))
            conn.execute(delete(tx).where(mine, or_(tx.c.verdict.is_(None),
                                                    tx.c.verdict.notin_(TAKEN_BY_BANK))))
            conn.execute(update(requests).where(requests.c.request_id == request_id)
                         .values(status="refused", code=code, paid_ms=at_ms))
        return True

    def refuse(self, request_id: bytes, digest: bytes | None, code: str,
               coin_ids: Sequence[bytes], coins: int, at_ms: int) -> bool:
        with self._write() as conn:
            r = self._lock_request(conn, request_id)
            if r is None:
                return False
            if digest is not None and r.status == "open":
                conn.execute(update(requests).where(requests.c.request_id == request_id)
                             .values(status="refused", payment_digest=digest, code=code,
                                     paid_ms=at_ms))
            conn.execute(update(requests).where(requests.c.request_id == request_id)
                         .values(refused_count=requests.c.refused_count + 1))
            conn.execute(refusals.insert().values(request_id=request_id, code=code[:40],
                                                  coins=coins, at_ms=at_ms))
            oldest_kept = conn.execute(
                select(refusals.c.id).where(refusals.c.request_id == request_id)
                .order_by(refusals.c.id.desc()).offset(REFUSALS_KEPT - 1).limit(1)).scalar()
            if oldest_kept is not None:
                conn.execute(delete(refusals).where(refusals.c.request_id == request_id,
                                                    refusals.c.id < oldest_kept))
            held = conn.execute(select(func.count()).select_from(tx).where(
                tx.c.request_id == request_id, tx.c.coin_id.in_(list(coin_ids)))
            ).scalar_one() if coin_ids else 0
        return held == 0

    def refusal_log(self, request_id: bytes) -> RefusalLog:
        with self._read() as conn:
            count = conn.execute(select(requests.c.refused_count).where(
                requests.c.request_id == request_id)).scalar()
            rows = conn.execute(select(refusals).where(refusals.c.request_id == request_id)
                                .order_by(refusals.c.id.desc()).limit(REFUSALS_KEPT)).all()
        return RefusalLog(count or 0, [Refused(r.code, r.coins, r.at_ms) for r in rows])

    # --- settlement ---------------------------------------------------------
    def pending(self, limit: int, exclude: Iterable[bytes] = ()) -> list[Pending]:
        skip = list(exclude)
        q = (select(tx.c.coin_id, tx.c.spend, tx.c.value, tx.c.deposit_by_ms,
                    requests.c.merchant_id, requests.c.amount, requests.c.currency,
                    requests.c.timestamp_ms, requests.c.nonce)
             .select_from(tx.join(requests, requests.c.request_id == tx.c.request_id))
             .where(tx.c.verdict.is_(None))
             .order_by(tx.c.deposit_by_ms, tx.c.coin_id).limit(limit))
        if skip:
            q = q.where(tx.c.coin_id.notin_(skip))
        with self._read() as conn:
            rows = conn.execute(q).all()
        reqs: dict[tuple, PaymentRequest] = {}
        out = []
        for r in rows:
            k = (r.merchant_id, r.amount, r.currency, r.timestamp_ms, r.nonce)
            req = reqs.setdefault(k, PaymentRequest(*k))
            out.append(Pending(r.coin_id, binary.spend_from_bytes(r.spend, req), r.value,
                               r.deposit_by_ms))
        return out

    def record_verdicts(self, verdicts: Sequence[tuple[bytes, dict]], settled_ms: int) -> int:
        if not verdicts:
            return 0
        stmt = update(tx).where(tx.c.coin_id == bindparam("b_coin_id"),
                                tx.c.verdict.is_(None)).values(
            verdict=bindparam("b_verdict"), code=bindparam("b_code"),
            credited=bindparam("b_credited"), replay=bindparam("b_replay"),
            fraud_case=bindparam("b_case"), settled_ms=settled_ms,
            attempts=tx.c.attempts + 1, last_error=None)
        params = [{"b_coin_id": s, "b_verdict": v["status"], "b_code": v.get("code"),
                   "b_credited": v["credited_value"], "b_replay": bool(v.get("replay")),
                   "b_case": v.get("fraud_case")} for s, v in verdicts]
        with self._write() as conn:
            conn.execute(stmt, params)
        return len(params)

    def note_attempt(self, coin_ids: Sequence[bytes], error: str) -> None:
        if not coin_ids:
            return
        with self._write() as conn:
            conn.execute(update(tx).where(tx.c.coin_id.in_(list(coin_ids)), tx.c.verdict.is_(None))
                         .values(attempts=tx.c.attempts + 1, last_error=error[:500]))

    def report_figures(self, now_ms: int, warn_ms: int) -> dict:
        unknown = case((and_(tx.c.replay.is_(True), tx.c.credited == 0), 1), else_=0)
        with self._read() as conn:
            groups = conn.execute(select(
                tx.c.sale, tx.c.verdict, tx.c.code, func.count(), func.sum(tx.c.value),
                func.sum(func.coalesce(tx.c.credited, 0)), func.sum(unknown))
                .group_by(tx.c.sale, tx.c.verdict, tx.c.code)).all()
            due = conn.execute(select(
                func.count(), func.sum(tx.c.value),
                func.sum(case((tx.c.deposit_by_ms < now_ms, 1), else_=0)),
                func.sum(case((tx.c.deposit_by_ms < now_ms, tx.c.value), else_=0)),
                func.min(tx.c.deposit_by_ms))
                .where(tx.c.verdict.is_(None), tx.c.deposit_by_ms < now_ms + warn_ms)).one()
            reqs = conn.execute(select(
                requests.c.status, func.count(), func.sum(requests.c.amount),
                func.sum(case((requests.c.expires_ms < now_ms, 1), else_=0)))
                .group_by(requests.c.status)).all()
            refused = conn.execute(select(refusals.c.code, func.count())
                                   .group_by(refusals.c.code)).all()
            refused_total = conn.execute(select(func.sum(requests.c.refused_count))).scalar()
        return {
            "transcripts": [{"sale": bool(g[0]), "verdict": g[1], "code": g[2], "count": g[3],
                             "value": int(g[4] or 0), "credited": int(g[5] or 0),
                             "unknown": int(g[6] or 0)} for g in groups],
            "due": {"count": due[0], "value": int(due[1] or 0), "overdue_count": int(due[2] or 0),
                    "overdue_value": int(due[3] or 0), "earliest_ms": due[4]},
            "requests": [{"status": r[0], "count": r[1], "value": int(r[2] or 0),
                          "expired": int(r[3] or 0)} for r in reqs],
            "refusals": {r[0]: r[1] for r in refused},
            "refusals_total": int(refused_total or 0),
        }

    # --- the till: cancel, day close ------------------------------------------
    def cancel(self, request_id: bytes, at_ms: int) -> str | None:
        with self._write() as conn:
            r = self._lock_request(conn, request_id)
            if r is None:
                return None
            if r.status != "open":
                return r.status
            # paid_ms: when the request was decided (here by the cashier)
            conn.execute(update(requests).where(requests.c.request_id == request_id,
                                                requests.c.status == "open")
                         .values(status="cancelled", paid_ms=at_ms))
        return "open"

    def sales_between(self, start_ms: int, end_ms: int) -> list[SaleRow]:
        settled = case((tx.c.verdict.is_not(None), tx.c.value), else_=0)
        waiting = case((tx.c.verdict.is_(None), tx.c.value), else_=0)
        coins = (select(tx.c.request_id, func.count().label("n"),
                        func.sum(settled).label("deposited"),
                        func.sum(waiting).label("waiting"))
                 .where(tx.c.sale.is_(True)).group_by(tx.c.request_id).subquery())
        q = (select(requests.c.request_id, requests.c.terminal, requests.c.amount,
                    requests.c.currency, requests.c.timestamp_ms, requests.c.expires_ms,
                    requests.c.status, requests.c.paid_ms, requests.c.code,
                    requests.c.description, coins.c.n, coins.c.deposited, coins.c.waiting)
             .select_from(requests.outerjoin(coins, coins.c.request_id == requests.c.request_id))
             .where(requests.c.timestamp_ms >= start_ms, requests.c.timestamp_ms < end_ms)
             .order_by(requests.c.timestamp_ms, requests.c.request_id))
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [SaleRow(r.request_id, r.terminal, r.amount, r.currency, r.timestamp_ms,
                        r.expires_ms, r.status, r.paid_ms, r.code, r.description, int(r.n or 0),
                        int(r.deposited or 0), int(r.waiting or 0)) for r in rows]


class SqliteStore(SqlStore):
    """One terminal's store in a SQLite file: WAL, ``synchronous=FULL`` (a
    payment answered "paid" survives a power cut), writers take the lock at
    ``BEGIN IMMEDIATE`` and readers never block them."""

    dialect = sqlite

    def __init__(self, url: str) -> None:
        path = sqlite_path(url)
        if path:  # it holds secrets: owner-only, with its WAL and SHM files
            private_sqlite(path)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            read = conn.get_execution_options().get("ecash_read")
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        super().__init__(engine)


class PostgresStore(SqlStore):
    """The shared store of several terminals: the primary key on ``coin_id``
    makes PostgreSQL refuse a coin that another terminal stored first."""

    dialect = postgresql

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        engine = create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)
        # reads run in autocommit: no BEGIN and ROLLBACK round trips
        super().__init__(engine, engine.execution_options(isolation_level="AUTOCOMMIT"))
