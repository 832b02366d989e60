"""Bringing a terminal store written by older code up to ``SCHEMA_VERSION``.

A store records its version in ``settings.schema_version``. Opening a store
runs the steps from its version to ours, in order, all in one transaction
(SQLite takes the write lock at ``BEGIN IMMEDIATE``; PostgreSQL locks the
version's row), so a process killed half-way leaves the old store as it was
and two processes opening one store migrate it once. A store newer than this
code is refused rather than guessed at. The terminal has no Alembic: its
schema is small and every step is a few statements any SQLite or PostgreSQL
runs.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, text

from ..crypto.refusal import payment_digest
from ..wire.binary import COIN_BYTES, coin_from_bytes
from .errors import MerchantError
from .schema import REFUSALS_KEPT, SCHEMA_VERSION


def _v1_to_v2(conn: Connection) -> None:
    """ECASH-1 revision 2: a coin is identified by ``coin_id``, not ``A``.

    Version 1 keyed transcripts on ``A`` (column ``serial``); each stored
    spend holds its coin, so its ``coin_id`` is computed from it. A paid
    request's ``payment_digest`` becomes 5.1's (computed from the
    transcripts it stored), so the identical payment still gets its receipt.
    The refusal log keeps codes only, the last few per request, and counts.
    """
    conn.exec_driver_sql("ALTER TABLE transcripts RENAME COLUMN serial TO coin_id")
    moves = [{"new": coin_from_bytes(r.spend[:COIN_BYTES]).coin_id, "old": r.coin_id}
             for r in conn.execute(text("SELECT coin_id, spend FROM transcripts")).all()]
    if moves:
        conn.execute(text("UPDATE transcripts SET coin_id = :new WHERE coin_id = :old"), moves)
    conn.exec_driver_sql("ALTER TABLE requests ADD COLUMN code VARCHAR(64)")
    conn.exec_driver_sql("ALTER TABLE requests ADD COLUMN refused_count INTEGER NOT NULL"
                         " DEFAULT 0")
    spends: dict[bytes, list[bytes]] = {}
    for r in conn.execute(text(
            "SELECT t.request_id, t.spend FROM transcripts t JOIN requests q"
            " ON q.request_id = t.request_id WHERE q.status = 'paid' AND t.sale")).all():
        spends.setdefault(r.request_id, []).append(r.spend)
    if spends:
        conn.execute(text("UPDATE requests SET payment_digest = :digest WHERE request_id = :rid"),
                     [{"rid": rid, "digest": payment_digest(rid, items)}
                      for rid, items in spends.items()])
    conn.exec_driver_sql("UPDATE requests SET refused_count = (SELECT count(*) FROM refusals"
                         " WHERE refusals.request_id = requests.request_id)")
    conn.execute(text(
        "DELETE FROM refusals WHERE request_id IS NULL OR id IN (SELECT id FROM (SELECT id,"
        " row_number() OVER (PARTITION BY request_id ORDER BY id DESC) AS n FROM refusals) AS o"
        " WHERE o.n > :kept)"), {"kept": REFUSALS_KEPT})
    conn.exec_driver_sql("ALTER TABLE refusals DROP COLUMN detail")  # text payers chose


def _v2_to_v3(conn: Connection) -> None:
    """A sale's description (docs/extensions.md) and the cashier's cancel.

    ``status`` grows to hold ``cancelled`` (SQLite does not enforce a
    VARCHAR length, PostgreSQL does).
    """
    conn.exec_driver_sql("ALTER TABLE requests ADD COLUMN description TEXT")
    conn.exec_driver_sql("ALTER TABLE requests ADD COLUMN description_signature"
                         + (" BYTEA" if conn.dialect.name == "postgresql" else " BLOB"))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE requests ALTER COLUMN status TYPE VARCHAR(16)")


STEPS: dict[str, Callable[[Connection], None]] = {"1": _v1_to_v2, "2": _v2_to_v3}
NEXT = {"1": "2", "2": "3"}


def upgrade(engine: Engine) -> None:
    """Migrate the store behind ``engine`` to ``SCHEMA_VERSION`` (no-op when new or current)."""
    if not inspect(engine).has_table("settings"):
        return  # a new store: its tables are created as they are now
    with engine.begin() as conn:
        version = conn.execute(text(
            "SELECT value FROM settings WHERE name = 'schema_version'"
            + (" FOR UPDATE" if conn.dialect.name == "postgresql" else ""))).scalar()
        if version is None or version == SCHEMA_VERSION:
            return
        start = version
        while version != SCHEMA_VERSION:
            if version not in STEPS:
                raise MerchantError("unknown_schema", f"the store's schema version {start} is"
                                    f" not one this terminal knows (it writes {SCHEMA_VERSION});"
                                    " use the newer ecash that wrote it")
            STEPS[version](conn)
            version = NEXT[version]
        conn.execute(text("UPDATE settings SET value = :v WHERE name = 'schema_version'"),
                     {"v": SCHEMA_VERSION})
