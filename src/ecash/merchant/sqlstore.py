"""The terminal store on SQLAlchemy Core: SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..crypto.payment import PaymentRequest
from ..wire import binary
from . import crash
from .errors import AlreadyPaid, CoinAlreadyAccepted, MerchantError
from .schema import SCHEMA_VERSION, metadata, refusals, requests, settings, signing_keys
from .schema import transcripts as tx
from .store import Pending, Refused, RequestRecord, StoredKey, TerminalStore, TranscriptRow


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
                    "paid_ms", "payment_digest", "coins", "receipt")
_REQUEST = _Sql(f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM requests"
                " WHERE request_id = %(rid)s")
_MARK_PAID = _Sql("UPDATE requests SET status = 'paid', paid_ms = %(paid_ms)s,"
                  " payment_digest = %(digest)s, coins = %(coins)s, receipt = %(receipt)s,"
                  " online = %(online)s WHERE request_id = %(rid)s AND status = 'open'")
_TRANSCRIPT_COLUMNS = ("serial", "request_id", "key_id", "value", "spend", "sale",
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
                    terminal=record.terminal[:64], status="open", online=False))
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
                             r.receipt)

    # --- acceptance ---------------------------------------------------------
    def accepted_serials(self, serials: Sequence[bytes]) -> set[bytes]:
        with self._read() as conn:
            return {r.serial for r in conn.execute(
                select(tx.c.serial).where(tx.c.serial.in_(list(serials)))).all()}

    @staticmethod
    def _rows(request_id: bytes, rows: Sequence[TranscriptRow], sale: bool,
              now_ms: int) -> list[dict]:
        out = []
        for t in rows:
            v = t.verdict or {}
            out.append({"serial": t.serial, "request_id": request_id, "key_id": t.key_id,
                        "value": t.value, "spend": t.spend, "sale": sale, "accepted_ms": now_ms,
                        "deposit_by_ms": t.deposit_by_ms, "verdict": v.get("status"),
                        "code": v.get("code"), "credited": v.get("credited_value"),
                        "replay": v.get("replay"), "fraud_case": v.get("fraud_case"),
                        "settled_ms": now_ms if v else None, "attempts": 1 if v else 0,
                        "last_error": None})
        return out

    def record_payment(self, request_id: bytes, digest: bytes, receipt: bytes, paid_ms: int,
                       online: bool, rows: Sequence[TranscriptRow]) -> str:
        with self._write() as conn:
            done = conn.exec_driver_sql(_MARK_PAID.text(conn), {
                "rid": request_id, "paid_ms": paid_ms, "digest": digest, "coins": len(rows),
                "receipt": receipt, "online": online}).rowcount
            if done != 1:
                paid = conn.execute(select(requests.c.payment_digest).where(
                    requests.c.request_id == request_id)).scalar_one()
                if paid == digest:
                    return "same"
                raise AlreadyPaid()
            try:
                conn.exec_driver_sql(_INSERT_TRANSCRIPT.text(conn),
                                     self._rows(request_id, rows, True, paid_ms))
            except IntegrityError:
                raise CoinAlreadyAccepted() from None
            crash.point("accept:before_commit")
        return "stored"

    def record_unsold(self, request_id: bytes, rows: Sequence[TranscriptRow],
                      now_ms: int) -> None:
        if not rows:
            return
        with self._write() as conn:
            conn.execute(self.dialect.insert(tx).on_conflict_do_nothing(),
                         self._rows(request_id, rows, False, now_ms))

    def add_refusal(self, request_id: bytes | None, code: str, detail: str, coins: int,
                    at_ms: int) -> None:
        with self._write() as conn:
            conn.execute(refusals.insert().values(request_id=request_id, code=code[:40],
                                                  detail=detail[:2000], coins=coins, at_ms=at_ms))

    def last_refusal(self, request_id: bytes) -> Refused | None:
        with self._read() as conn:
            r = conn.execute(select(refusals).where(refusals.c.request_id == request_id)
                             .order_by(refusals.c.id.desc()).limit(1)).first()
        return None if r is None else Refused(r.code, r.detail, r.at_ms)

    # --- settlement ---------------------------------------------------------
    def pending(self, limit: int, exclude: Iterable[bytes] = ()) -> list[Pending]:
        skip = list(exclude)
        q = (select(tx.c.serial, tx.c.spend, tx.c.value, tx.c.deposit_by_ms, requests.c.merchant_id,
                    requests.c.amount, requests.c.currency, requests.c.timestamp_ms,
                    requests.c.nonce)
             .select_from(tx.join(requests, requests.c.request_id == tx.c.request_id))
             .where(tx.c.verdict.is_(None))
             .order_by(tx.c.deposit_by_ms, tx.c.serial).limit(limit))
        if skip:
            q = q.where(tx.c.serial.notin_(skip))
        with self._read() as conn:
            rows = conn.execute(q).all()
        reqs: dict[tuple, PaymentRequest] = {}
        out = []
        for r in rows:
            k = (r.merchant_id, r.amount, r.currency, r.timestamp_ms, r.nonce)
            req = reqs.setdefault(k, PaymentRequest(*k))
            out.append(Pending(r.serial, binary.spend_from_bytes(r.spend, req), r.value,
                               r.deposit_by_ms))
        return out

    def record_verdicts(self, verdicts: Sequence[tuple[bytes, dict]], settled_ms: int) -> int:
        if not verdicts:
            return 0
        stmt = update(tx).where(tx.c.serial == bindparam("b_serial"),
                                tx.c.verdict.is_(None)).values(
            verdict=bindparam("b_verdict"), code=bindparam("b_code"),
            credited=bindparam("b_credited"), replay=bindparam("b_replay"),
            fraud_case=bindparam("b_case"), settled_ms=settled_ms,
            attempts=tx.c.attempts + 1, last_error=None)
        params = [{"b_serial": s, "b_verdict": v["status"], "b_code": v.get("code"),
                   "b_credited": v["credited_value"], "b_replay": bool(v.get("replay")),
                   "b_case": v.get("fraud_case")} for s, v in verdicts]
        with self._write() as conn:
            conn.execute(stmt, params)
        return len(params)

    def note_attempt(self, serials: Sequence[bytes], error: str) -> None:
        if not serials:
            return
        with self._write() as conn:
            conn.execute(update(tx).where(tx.c.serial.in_(list(serials)), tx.c.verdict.is_(None))
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
        return {
            "transcripts": [{"sale": bool(g[0]), "verdict": g[1], "code": g[2], "count": g[3],
                             "value": int(g[4] or 0), "credited": int(g[5] or 0),
                             "unknown": int(g[6] or 0)} for g in groups],
            "due": {"count": due[0], "value": int(due[1] or 0), "overdue_count": int(due[2] or 0),
                    "overdue_value": int(due[3] or 0), "earliest_ms": due[4]},
            "requests": [{"status": r[0], "count": r[1], "value": int(r[2] or 0),
                          "expired": int(r[3] or 0)} for r in reqs],
            "refusals": {r[0]: r[1] for r in refused},
        }


class SqliteStore(SqlStore):
    """One terminal's store in a SQLite file: WAL, ``synchronous=FULL`` (a
    payment answered "paid" survives a power cut), writers take the lock at
    ``BEGIN IMMEDIATE`` and readers never block them."""

    dialect = sqlite

    def __init__(self, url: str) -> None:
        path = url.split("///", 1)[-1]
        if path and ":memory:" not in path and not Path(path).exists():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # it holds secrets
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
    """The shared store of several terminals: the primary key on the serial
    makes PostgreSQL refuse a coin that another terminal stored first."""

    dialect = postgresql

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        engine = create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)
        # reads run in autocommit: no BEGIN and ROLLBACK round trips
        super().__init__(engine, engine.execution_options(isolation_level="AUTOCOMMIT"))
