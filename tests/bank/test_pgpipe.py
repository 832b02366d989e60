"""``pgpipe.pipeline``, the PostgreSQL side of ``store.run``: values go and come
back with their types, a failing statement stops the pipeline with psycopg's
own error, statements are prepared once per connection, and a broken
connection is reported as one (the withdrawal's retry depends on it)."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ecash.bank.pgpipe import Statement
from ecash.bank.store import Disconnected, Sql, make_engine, retrying, run

from ..bankkit import fresh_database

ECHO = Sql("SELECT %(i)s::int8, %(b)s::bytea, %(s)s::text, %(n)s::int8 IS NULL, %(i)s + 1")
INSERT = Sql("INSERT INTO t (id, v) VALUES (%(id)s, %(v)s)")
FAIL = Sql("SELECT 1 / %(zero)s")
COUNT = Sql("SELECT count(*), sum(v) FROM t")


@pytest.fixture
def engine(tmp_path):
    with fresh_database("postgres", tmp_path) as url:
        eng = make_engine(url)
        with eng.begin() as c:
            c.execute(text("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)"))
        yield eng
        eng.dispose()


def test_statement_numbers_each_name_once():
    stmt = Statement("SELECT %(a)s, %(b)s WHERE x = %(a)s AND y = %(c)s")
    assert stmt.query == b"SELECT $1, $2 WHERE x = $1 AND y = $3"
    assert stmt.names == ("a", "b", "c")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # read-only use
@given(i=st.integers(-(2**63), 2**63 - 2), b=st.binary(max_size=3000),
       s=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")))
def test_values_come_back_as_sent(engine, i, b, s):
    with engine.connect() as conn:
        assert run(conn, (ECHO, {"i": i, "b": b, "s": s, "n": None})) == [[(i, b, s, True, i + 1)]]


def test_a_failing_statement_stops_the_rest_and_raises_its_error(engine):
    with pytest.raises(psycopg.errors.DivisionByZero) as info, \
            engine.begin() as conn:
        run(conn, (INSERT, {"id": 1, "v": 10}), (FAIL, {"zero": 0}),
            (INSERT, {"id": 2, "v": 20}), commit=True)
    assert info.value.sqlstate == "22012"
    with engine.begin() as conn:  # rolled back; the connection works
        assert run(conn, (COUNT, {})) == [[(0, None)]]
    with pytest.raises(psycopg.errors.UniqueViolation), engine.begin() as conn:
        run(conn, (INSERT, {"id": 3, "v": 30}), (INSERT, {"id": 3, "v": 31}), commit=True)
    with engine.begin() as conn:
        assert run(conn, (COUNT, {})) == [[(0, None)]]


def test_a_parameter_of_an_unknown_type_sends_nothing(engine):
    with pytest.raises(TypeError, match="float"), engine.begin() as conn:
        run(conn, (INSERT, {"id": 1, "v": 10}), (INSERT, {"id": 2, "v": 2.5}), commit=True)
    with engine.begin() as conn:
        run(conn, (INSERT, {"id": 1, "v": 10}), commit=True)
        assert run(conn, (COUNT, {})) == [[(1, 10)]]


def test_statements_are_prepared_once_per_connection(engine):
    with engine.connect() as conn:
        for i in range(5):
            run(conn, (INSERT, {"id": i, "v": i}), (COUNT, {}), commit=True)
        prepared = conn.execute(text(
            "SELECT statement FROM pg_prepared_statements WHERE name LIKE 'ecash_%'")).all()
    assert sorted(p.statement for p in prepared) == sorted(
        [INSERT.statement.query.decode(), COUNT.statement.query.decode()])


def test_a_broken_connection_is_reported_and_replaced(engine):
    with engine.connect() as conn:
        run(conn, (COUNT, {}))
        with engine.connect() as other:  # a second connection ends the first's backend
            assert other.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {
                "p": conn.connection.driver_connection.info.backend_pid}).scalar_one()
        with pytest.raises(Disconnected):
            run(conn, (COUNT, {}))
        assert conn.invalidated
    with engine.connect() as conn:  # the pool hands out a working connection
        assert run(conn, (COUNT, {})) == [[(0, None)]]


def test_statements_psycopg_deallocated_are_prepared_again(engine):
    """psycopg deallocates all of a connection's prepared statements after a
    rollback once its own cache holds any (here: a query run six times)."""
    with engine.connect() as conn:
        run(conn, (COUNT, {}))
        for _ in range(6):
            conn.execute(text("SELECT count(*) FROM t"))
        conn.rollback()
        conn.execute(text("SELECT 1"))  # the DEALLOCATE ALL goes out before it
        conn.rollback()
        assert run(conn, (COUNT, {})) == [[(0, None)]]
        prepared = conn.execute(text(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'ecash_%'")).scalar_one()
        assert prepared == 1


def test_a_later_pipeline_of_a_transaction_raises_for_a_retry(engine):
    attempts = []

    def transaction() -> None:
        with engine.begin() as conn:
            run(conn, (INSERT, {"id": len(attempts), "v": 1}))
            if not attempts:  # as psycopg would after a rollback elsewhere
                conn.connection.driver_connection.pgconn.exec_(b"DEALLOCATE ALL")
            attempts.append(1)
            run(conn, (INSERT, {"id": 10, "v": 2}), commit=True)

    retrying(transaction)
    assert len(attempts) == 2
    with engine.connect() as conn:
        assert run(conn, (COUNT, {})) == [[(2, 3)]]


def test_a_statement_prepared_before_a_retry_is_not_prepared_twice(engine):
    """A transaction's first pipeline prepares a statement new to the
    connection; its second finds one psycopg deallocated, which aborts the
    transaction and clears what pgpipe believes prepared. A Parse outlives the
    rollback, so the retry meets its first statement still prepared: it is
    used, not prepared a second time (which PostgreSQL refuses)."""
    with engine.connect() as conn:
        run(conn, (COUNT, {}))
        conn.connection.driver_connection.pgconn.exec_(b"DEALLOCATE ALL")
    attempts = []

    def transaction() -> None:
        with engine.begin() as conn:
            run(conn, (INSERT, {"id": len(attempts), "v": 1}))
            attempts.append(1)
            run(conn, (COUNT, {}), commit=True)

    retrying(transaction)
    assert len(attempts) == 2
    with engine.connect() as conn:
        assert run(conn, (COUNT, {})) == [[(1, 1)]]
        prepared = conn.execute(text(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'ecash_%'")).scalar_one()
        assert prepared == 2
