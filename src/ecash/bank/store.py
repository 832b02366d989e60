"""Opening the bank's database: SQLite (WAL, the embedded default) or
PostgreSQL (psycopg 3), with migrations and per-generation partitions."""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, DisconnectionError

from ..files import private_sqlite, sqlite_path
from .schema import generations, spent_coins


def make_engine(url: str) -> Engine:
    """An engine whose every ``begin()`` is a serialisable-enough write transaction.

    SQLite: WAL, ``synchronous=FULL`` (a committed transaction survives a power
    cut), and ``BEGIN IMMEDIATE`` so writers queue instead of deadlocking.
    """
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path:  # owner-only, with its WAL and SHM files
            private_sqlite(path)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60},
                               pool_size=8, max_overflow=8)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, pool_size=8, max_overflow=8)
    _ping_when_idle(engine)
    return engine


PING_AFTER_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use if it sat idle ``PING_AFTER_S``; a
    dead one is replaced (the pool retries on ``DisconnectionError``).

    ``pool_pre_ping`` would check on every checkout: one more round trip per
    transaction, on the bank's and the server's CPU. A connection used
    within the last second is trusted; if the server went away in that second,
    the transaction fails as a disconnect (the pool is then refreshed) and
    :func:`retrying` runs it again."""

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        if time.monotonic() - record.info.get("idle_since", 0.0) < PING_AFTER_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(str(exc)) from exc


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database next to ``admin_url``'s, dropped on exit
    (tests, benchmarks). The drop is retried while it is refused for lack of
    privilege: an autovacuum worker runs as the superuser, and a plain role's
    ``WITH (FORCE)`` may not terminate it, but it ends within moments."""
    name = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}"))
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        for attempt in range(100):
            try:
                with admin.connect() as c:
                    c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                break
            except DBAPIError as exc:
                if not isinstance(exc.orig, psycopg.errors.InsufficientPrivilege) \
                        or attempt == 99:
                    raise
                time.sleep(0.1)
        admin.dispose()


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def ensure_partition(conn: Connection, generation: int) -> None:
    """PostgreSQL: the spent-coin partition of one key generation."""
    if is_postgres(conn):
        conn.execute(text(
            f"CREATE TABLE IF NOT EXISTS spent_coins_g{int(generation)} "
            f"PARTITION OF spent_coins FOR VALUES IN ({int(generation)})"))


def lock_partition(conn: Connection, generation: int) -> None:
    """PostgreSQL: hold off writes to one generation's spent coins until the
    transaction ends, after waiting for those in flight (``maintenance``
    counts that generation's spent coins only once this is held). SQLite's
    ``BEGIN IMMEDIATE`` already excludes every other writer."""
    if is_postgres(conn):
        conn.execute(text(f"LOCK TABLE spent_coins_g{int(generation)} IN EXCLUSIVE MODE"))


def partition_missing(exc: Exception) -> bool:
    """Whether ``exc`` is PostgreSQL refusing a spent coin for want of its
    generation's partition: the generation was closed (its partition dropped)."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "23514" and "no partition" in str(orig)


def closed_generations(conn: Connection | Engine) -> set[int]:
    """The generations ``maintenance`` has closed (a closed one never reopens)."""
    stmt = select(generations.c.generation).where(generations.c.closed_at.is_not(None))
    if isinstance(conn, Engine):
        with conn.connect() as own:
            return set(own.scalars(stmt))
    return set(conn.scalars(stmt))


def drop_partition(conn: Connection, generation: int) -> None:
    if is_postgres(conn):
        conn.execute(text(f"DROP TABLE IF EXISTS spent_coins_g{int(generation)}"))
    else:
        conn.execute(spent_coins.delete().where(spent_coins.c.generation == generation))


def insert_ignoring_conflicts(conn: Connection, table, rows: list[dict], returning):
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING``: the rows that went in.

    A batch of many rows on PostgreSQL is one short statement over ``unnest``
    of one array per column: a multi-row ``VALUES`` list is a new, long SQL
    text for every batch size, which the driver parses anew each time (a sixth
    of a deposit's CPU). A few rows (and SQLite) take SQLAlchemy's multi-row
    insert, whose short text the driver caches and which plans faster."""
    if not rows:
        return []
    names = tuple(rows[0])
    many = is_postgres(conn) and len(rows) > FEW_ROWS
    key = (conn.dialect.name, many, table.name, names, tuple(c.name for c in returning))
    stmt = _INSERTS.get(key)
    if stmt is None:
        stmt = _INSERTS[key] = (_unnest_insert(conn, table, names, returning) if many else
                                _dialect(conn).insert(table).on_conflict_do_nothing()
                                .returning(*returning))
    if isinstance(stmt, str):
        return conn.exec_driver_sql(stmt, {n: [r[n] for r in rows] for n in names}).all()
    return conn.execute(stmt, rows).all()


FEW_ROWS = 8


def _dialect(conn: Connection):  # type: ignore[no-untyped-def]
    return postgresql if is_postgres(conn) else sqlite


def _unnest_insert(conn: Connection, table, names: tuple[str, ...], returning) -> str:
    quote = conn.dialect.identifier_preparer.quote
    arrays = ", ".join(f"%({n})s::{table.c[n].type.compile(dialect=conn.dialect)}[]"
                       for n in names)
    return (f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)})"
            f" SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING"
            f" RETURNING {', '.join(quote(c.name) for c in returning)}")


_INSERTS: dict[tuple, object] = {}  # built once per engine, form, table, columns, returning


@dataclass(frozen=True)
class Sql:
    """One plain SQL statement for both engines, for the few hot paths where
    SQLAlchemy's per-statement cost rivals the statement's own. Written for
    PostgreSQL (``%(name)s`` placeholders, ``FOR UPDATE``); the SQLite form is
    derived once: ``:name``, and no ``FOR UPDATE``, since SQLite transactions
    here are ``BEGIN IMMEDIATE`` and already exclude other writers."""

    pg: str
    sqlite: str = field(init=False)

    def __post_init__(self) -> None:
        lite = re.sub(r"%\((\w+)\)s", r":\1", self.pg).replace(" FOR UPDATE", "")
        object.__setattr__(self, "sqlite", lite)


def run(conn: Connection, *steps: tuple[Sql, Mapping], commit: bool = False
        ) -> list[list[tuple]]:
    """Run ``steps`` in order inside ``conn``'s transaction, straight on the
    driver; one list of row tuples per statement. On PostgreSQL the lot is one
    round trip in psycopg's pipeline mode (its ``BEGIN`` too, when the
    transaction starts here), each statement prepared by psycopg once it
    recurs; each still starts after the one before it has finished, so a read
    placed after a ``FOR UPDATE`` sees what the lock holder committed.

    ``commit=True`` commits too, in the same round trip: these must then be the
    transaction's last statements (the block's own commit finds nothing left
    to do)."""
    driver = conn.connection.driver_connection
    if not is_postgres(conn):
        out = [driver.execute(sql.sqlite, params).fetchall() for sql, params in steps]
        if commit:
            driver.commit()
        return out
    try:
        with driver.pipeline():
            cursors = [driver.cursor() for _ in steps]
            for cur, (sql, params) in zip(cursors, steps, strict=True):
                cur.execute(sql.pg, params)
            if commit:  # in the same round trip (conn.commit() would sync once more)
                driver.cursor().execute("COMMIT")
        # the block's end has sent everything and read every result
        return [cur.fetchall() if cur.description else [] for cur in cursors]
    except psycopg.OperationalError as exc:
        if driver.broken:  # what SQLAlchemy does for its own statements
            conn.invalidate(exc)
            raise Disconnected(str(exc)) from exc
        raise


class Disconnected(Exception):
    """The connection broke during :func:`run` (SQLAlchemy's own statements
    raise ``DBAPIError`` with ``connection_invalidated`` instead)."""


# serialization failure, deadlock detected
_RETRY_STATES = {"40001", "40P01"}


def is_transient(exc: Exception) -> bool:
    """A race or a broken connection: the whole transaction may run again."""
    if isinstance(exc, Disconnected) or getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) in _RETRY_STATES or "database is locked" in str(orig)


def retrying(fn, attempts: int = 8):
    """Run a whole transaction again when the database aborted it for a race
    (PostgreSQL deadlock or serialisation failure, SQLite busy) or its
    connection broke, whether through SQLAlchemy or, from :func:`run`, straight
    from the driver. ``fn`` must be idempotent: a broken ``COMMIT`` may have
    committed."""
    for attempt in range(attempts):
        try:
            return fn()
        except (DBAPIError, Disconnected, psycopg.Error, sqlite3.Error) as exc:
            if not is_transient(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
