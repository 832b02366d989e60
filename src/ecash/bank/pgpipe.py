"""One round trip of prepared statements, on psycopg's libpq layer (``psycopg.pq``).

The withdrawal's transactions are a few short statements each, sent as one
pipeline. Through psycopg's cursors such a pipeline costs the bank about
150 µs of CPU more than the statements' own client work (a cursor, a query
conversion and a poll-and-flush cycle per statement, measured here), and
sends every statement in a packet of its own. This module sends the whole
pipeline in one write and reads it back in one pass, with psycopg's own
adapters (``Transformer``) for the rows and psycopg's error classes for
failures. It serves :func:`store.run` (on a thread, waiting in ``poll``) and
:class:`txn.AsyncLane` (on the event loop, :func:`pipeline_async`); the
exchange itself is written once, free of waits (:func:`_exchange`).

Contract of :func:`pipeline`:

- ``begin`` sends ``BEGIN`` first, ``commit`` sends ``COMMIT`` last; the
  statements run in order, each after the one before has finished.
- A failing statement raises its psycopg error (``sqlstate`` set, an
  ``IntegrityError`` for a constraint); the statements after it, ``COMMIT``
  included, do not run, so an open transaction is left aborted for the
  caller to roll back. A broken connection raises ``OperationalError``.
- Parameters are ``int`` (sent as ``int8``), ``bytes`` (``bytea``), ``bool``,
  ``str`` or ``None`` (these two of a type the server infers); each
  statement is prepared once per connection and parameter-type signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import select
import struct
import weakref
from collections.abc import Generator, Mapping, Sequence

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer

_E = pq.ExecStatus
_INT8, _BYTEA, _BOOL, _UNKNOWN = 20, 17, 16, 0
_TEXT_FORMAT, _BINARY = 0, 1
_pack_int8 = struct.Struct(">q").pack


class Statement:
    """A ``%(name)s`` query in libpq's ``$n`` form, and its parameter order."""

    __slots__ = ("names", "query")

    def __init__(self, sql: str) -> None:
        order: dict[str, int] = {}

        def number(m: re.Match) -> str:
            return f"${order.setdefault(m.group(1), len(order) + 1)}"

        self.query = re.sub(r"%\((\w+)\)s", number, sql).encode("utf-8")
        self.names = tuple(order)


_names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}


def _name(query: bytes, types: tuple[int, ...]) -> bytes:
    """The prepared statement's name, a digest of the query and its parameter
    types: the same in every thread and process, never one name for two."""
    key = (query, types)
    name = _names.get(key)
    if name is None:
        digest = hashlib.blake2b(query + b"\0" + repr(types).encode(), digest_size=12)
        name = _names[key] = b"ecash_" + digest.hexdigest().encode()
    return name


# per connection: the names prepared on it (forgotten with the connection)
_prepared: weakref.WeakKeyDictionary[psycopg.Connection, set[bytes]] = \
    weakref.WeakKeyDictionary()


def _dump(value: object) -> tuple[bytes | None, int, int]:
    """``(value, type oid, format)``: ints as binary ``int8``, bytes as binary
    ``bytea``; text (like psycopg) of an unstated type, which the server infers
    from its column (``varchar`` here)."""
    if value is None:
        return None, _UNKNOWN, _TEXT_FORMAT
    if isinstance(value, bool):
        return (b"\x01" if value else b"\x00"), _BOOL, _BINARY
    if isinstance(value, int):
        return _pack_int8(value), _INT8, _BINARY
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), _BYTEA, _BINARY
    if isinstance(value, str):
        return value.encode("utf-8"), _UNKNOWN, _TEXT_FORMAT
    raise TypeError(f"cannot send a {type(value).__name__} parameter")


def pipeline(driver: psycopg.Connection, steps: Sequence[tuple[Statement, Mapping]], *,
             begin: bool, commit: bool) -> list[list[tuple]]:
    """Run ``steps`` (and ``BEGIN``/``COMMIT``) in one round trip: one list of
    row tuples per step (empty for a statement without rows).

    psycopg deallocates every prepared statement of a connection, ours too,
    when it sees a rollback while its own cache holds any; and a statement
    prepared in a transaction that then failed stays prepared. A pipeline that
    begins its transaction and finds a statement gone (or one already there)
    is sent again, preparing anew what is gone (after a ``ROLLBACK`` of the
    transaction it began). A pipeline inside an older transaction raises the
    error instead; :func:`store.retrying` runs the transaction again."""
    pg = driver.pgconn
    with driver.lock:
        known = _prepared.setdefault(driver, set())
        attempts = _attempts(steps)
        for attempt in range(attempts):
            pg.enter_pipeline_mode()
            try:
                sent, rows_of = _send(driver, pg, known, steps, begin,
                                      b"COMMIT" if commit else None)
                results = _wait_here(pg, _exchange(pg, len(sent)))
                return _rows(driver, known, sent, rows_of, results)
            except _OUT_OF_STEP as exc:
                _resync(known, exc)
                if not begin or attempt == attempts - 1:
                    raise
            finally:
                _leave_pipeline_mode(pg)
    raise AssertionError("unreachable")


async def pipeline_async(driver: psycopg.Connection, steps: Sequence[tuple[Statement, Mapping]],
                         *, begin: bool, commit: bool, rollback: bool = False
                         ) -> list[list[tuple]]:
    """:func:`pipeline` on the running event loop, for a connection no other
    task or thread uses meanwhile: libpq in non-blocking mode, and the loop
    waits for the socket. ``rollback`` ends the transaction with ``ROLLBACK``
    instead (``steps`` empty, to close a failed transaction)."""
    pg = driver.pgconn
    known = _prepared.setdefault(driver, set())
    end = b"ROLLBACK" if rollback else b"COMMIT" if commit else None
    pg.nonblocking = 1
    attempts = _attempts(steps)
    try:
        for attempt in range(attempts):
            pg.enter_pipeline_mode()
            try:
                sent, rows_of = _send(driver, pg, known, steps, begin, end)
                results = await _wait_on_loop(pg, _exchange(pg, len(sent)))
                return _rows(driver, known, sent, rows_of, results)
            except _OUT_OF_STEP as exc:
                _resync(known, exc)
                if not begin or attempt == attempts - 1:
                    raise
            finally:
                _leave_pipeline_mode(pg)
    finally:
        if pg.status == pq.ConnStatus.OK:
            pg.nonblocking = 0
    raise AssertionError("unreachable")


# What this module believes is prepared on a connection and what is can part:
# psycopg's DEALLOCATE ALL removes ours (26000 when one is used), and a
# statement prepared in a transaction that then failed stays prepared (42P05
# when prepared again after the set was cleared).
_OUT_OF_STEP = (psycopg.errors.InvalidSqlStatementName,
                psycopg.errors.DuplicatePreparedStatement)


def _resync(known: set[bytes], exc: Exception) -> None:
    """Forget every name after a missing one (psycopg deallocates them all at
    once); a name found already prepared was added by :func:`_rows`."""
    if isinstance(exc, psycopg.errors.InvalidSqlStatementName):
        known.clear()


def _attempts(steps: Sequence) -> int:
    """A pipeline that begins its transaction is sent again until it runs:
    each attempt corrects what was believed of at least one statement."""
    return len(steps) + 2


def _leave_pipeline_mode(pg: pq.abc.PGconn) -> None:
    """Out of pipeline mode; a connection left with unread results (an
    exception mid-exchange) is closed, so the pool replaces it."""
    if pg.status == pq.ConnStatus.OK and pg.pipeline_status != pq.PipelineStatus.OFF:
        try:
            pg.exit_pipeline_mode()
        except psycopg.OperationalError:
            pg.finish()


def _send(driver: psycopg.Connection, pg: pq.abc.PGconn, known: set[bytes],
          steps: Sequence[tuple[Statement, Mapping]], begin: bool, end: bytes | None
          ) -> tuple[list[bytes | None], list[int]]:
    """Queue the pipeline's commands and its Sync: per command the name it
    prepares (or None), and which commands' results are the steps' rows."""
    # every parameter is dumped before anything is sent: a bad one raises here,
    # with the connection untouched
    calls = []
    for stmt, params in steps:
        values, types, formats = (zip(*(_dump(params[n]) for n in stmt.names), strict=True)
                                  if stmt.names else ((), (), ()))
        calls.append((_name(stmt.query, types), stmt.query, values, types, formats))
    sent: list[bytes | None] = []
    rows_of: list[int] = []
    if pg.transaction_status == pq.TransactionStatus.INERROR and begin:
        pg.send_query_params(b"ROLLBACK", None)  # of the BEGIN of a failed attempt
        sent.append(None)
    if begin:
        pg.send_query_params(b"BEGIN", None)
        sent.append(None)
    for name, query, values, types, formats in calls:
        if name not in known and name not in sent:
            pg.send_prepare(name, query, types)
            sent.append(name)
        pg.send_query_prepared(name, values, formats, _BINARY)
        rows_of.append(len(sent))
        sent.append(None)
    if end is not None:
        pg.send_query_params(end, None)
        sent.append(None)
    pg.pipeline_sync()
    return sent, rows_of


def _rows(driver: psycopg.Connection, known: set[bytes], sent: list[bytes | None],
          rows_of: list[int], results: list[pq.abc.PGresult]) -> list[list[tuple]]:
    """The steps' rows, or the first failure's psycopg error."""
    error = None
    for i, result in enumerate(results):
        if result.status == _E.FATAL_ERROR and error is None:
            error = psycopg.errors.error_from_result(result, encoding=driver.info.encoding)
            if sent[i] is not None and isinstance(error, psycopg.errors.DuplicatePreparedStatement):
                known.add(sent[i])  # prepared before, in a transaction that failed
        elif result.status == _E.COMMAND_OK and sent[i] is not None:
            known.add(sent[i])  # prepared on this connection from now on
    if error is not None:
        raise error
    load = Transformer(driver)
    out = []
    for i in rows_of:
        result = results[i]
        if result.status == _E.TUPLES_OK:
            load.set_pgresult(result)
            out.append(load.load_rows(0, result.ntuples, tuple))
        else:
            out.append([])
    return out


Exchange = Generator[bool, None, list[pq.abc.PGresult]]


def _exchange(pg: pq.abc.PGconn, commands: int) -> Exchange:
    """Flush everything, then collect one result per command up to the Sync
    (reading while flushing, so a full server buffer cannot stall either side).
    Free of I/O waits: it yields when it must wait for the socket (``True``:
    until writable or readable; ``False``: until readable)."""
    while pg.flush():
        yield True
        pg.consume_input()
    results: list[pq.abc.PGresult] = []
    last: pq.abc.PGresult | None = None
    while True:
        while pg.is_busy():
            yield False
            pg.consume_input()
        result = pg.get_result()
        if result is None:  # the end of one command's results
            if last is None:
                raise psycopg.OperationalError("the server sent no result for a command")
            results.append(last)
            last = None
        elif result.status == _E.PIPELINE_SYNC:
            if len(results) != commands:
                raise psycopg.OperationalError("the pipeline's results do not match its commands")
            return results
        else:
            last = result  # a command's (last) result


def _wait_here(pg: pq.abc.PGconn, exchange: Exchange) -> list[pq.abc.PGresult]:
    poller = select.poll()
    poller.register(pg.socket, select.POLLIN)
    try:
        while True:
            writable = next(exchange)
            poller.modify(pg.socket, select.POLLIN | select.POLLOUT if writable
                          else select.POLLIN)
            poller.poll()
    except StopIteration as done:
        return done.value


async def _wait_on_loop(pg: pq.abc.PGconn, exchange: Exchange) -> list[pq.abc.PGresult]:
    loop = asyncio.get_running_loop()
    fd = pg.socket
    try:
        while True:
            writable = next(exchange)
            ready = loop.create_future()

            def wake(ready: asyncio.Future = ready) -> None:
                if not ready.done():
                    ready.set_result(None)

            loop.add_reader(fd, wake)
            if writable:
                loop.add_writer(fd, wake)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
                if writable:
                    loop.remove_writer(fd)
    except StopIteration as done:
        return done.value
