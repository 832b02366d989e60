"""``store.run`` inside ``engine.begin()``: the withdrawal's transactions, whose
BEGIN and COMMIT travel inside the statement pipelines on PostgreSQL. They
must be atomic, and leave the pooled connection as they found it (not in a
transaction, not in autocommit mode)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ecash.bank.store import Sql, make_engine, run

from ..bankkit import fresh_database

INSERT = Sql("INSERT INTO t (id, v) VALUES (%(id)s, %(v)s)")
LOCK = Sql("SELECT v FROM t WHERE id = %(id)s FOR UPDATE")
COUNT = Sql("SELECT count(*) FROM t")


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    with fresh_database(request.param, tmp_path) as url:
        eng = make_engine(url)
        with eng.begin() as c:
            c.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)"))
        yield eng
        eng.dispose()


def rows(engine) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text("SELECT id, v FROM t ORDER BY id"))]


def test_commit_in_the_last_pipeline_and_on_a_normal_exit(engine):
    with engine.begin() as conn:
        assert run(conn, (INSERT, {"id": 1, "v": 10}), (COUNT, {})) == [[], [(1,)]]
        run(conn, (INSERT, {"id": 2, "v": 20}), commit=True)
    with engine.begin() as conn:  # no commit=True: the block commits
        run(conn, (INSERT, {"id": 3, "v": 30}))
        conn.execute(text("UPDATE t SET v = 31 WHERE id = 3"))  # SQLAlchemy, same transaction
    assert rows(engine) == [(1, 10), (2, 20), (3, 31)]


def test_an_exception_between_pipelines_rolls_everything_back(engine):
    with pytest.raises(LookupError), engine.begin() as conn:
        run(conn, (INSERT, {"id": 1, "v": 10}))
        conn.execute(text("UPDATE t SET v = 11 WHERE id = 1"))
        raise LookupError("refused after the first pipeline")
    assert rows(engine) == []
    with engine.begin() as conn:  # the pooled connection is usable
        run(conn, (INSERT, {"id": 1, "v": 12}), commit=True)
    assert rows(engine) == [(1, 12)]


def test_a_failing_statement_rolls_the_transaction_back(engine):
    with engine.begin() as conn:
        run(conn, (INSERT, {"id": 1, "v": 10}), commit=True)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), \
            engine.begin() as conn:
        run(conn, (INSERT, {"id": 2, "v": 20}))
        run(conn, (INSERT, {"id": 1, "v": 99}), commit=True)  # primary key taken
    assert rows(engine) == [(1, 10)]


def test_the_pooled_connection_is_returned_clean(engine):
    """After a transaction of run() steps, ``engine.begin()`` on the same pooled
    connection is transactional again: its rollback undoes its writes."""
    with engine.begin() as conn:
        run(conn, (LOCK, {"id": 1}))  # read-only: left open, committed by the block
    with pytest.raises(LookupError), engine.begin() as c:
        c.execute(text("INSERT INTO t (id, v) VALUES (5, 50)"))
        raise LookupError
    assert rows(engine) == []
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:
            driver = c.connection.driver_connection
            assert driver.autocommit is False
            idle_in_transaction = c.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%'")).scalar_one()
            assert idle_in_transaction == 0


def test_begin_and_commit_travel_in_the_pipelines(engine, tmp_path):
    """PostgreSQL: a transaction of two run() calls is three round trips (three
    Syncs, read from libpq's protocol trace): psycopg syncs the BEGIN it opens
    a transaction with by itself, but the COMMIT travels in the last pipeline
    (``conn.commit()`` there would cost one more, an empty Sync)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no round trips")
    from psycopg import pq

    trace = tmp_path / "protocol.trace"
    with engine.begin() as conn, open(trace, "w") as f:
        pgconn = conn.connection.driver_connection.pgconn
        pgconn.trace(f.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            assert run(conn, (LOCK, {"id": 1}), (COUNT, {})) == [[], [(0,)]]
            run(conn, (INSERT, {"id": 1, "v": 10}), commit=True)
        finally:
            pgconn.untrace()
    sent = [line.split("\t")[2].split()[0] for line in trace.read_text().splitlines()
            if line.startswith("F\t")]
    assert sent.count("Sync") == 3 and "Query" not in sent, sent
    assert rows(engine) == [(1, 10)]
