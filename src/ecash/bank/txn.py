"""Transactions written once as generators of pipelines, and their two drivers.

A hot transaction (the withdrawal's) is a generator that yields
:class:`Pipeline` requests and receives their rows: it holds the protocol's
rules and no I/O. :func:`run_steps` drives it on a thread through
``engine.begin()`` (both engines); :class:`AsyncLane` drives it on the event
loop, on PostgreSQL, through :func:`pgpipe.pipeline_async`, so that the
request needs no thread hop and the loop never waits for the database.

Contract of a generator:

- each ``yield Pipeline(steps, commit)`` runs ``steps`` in the open
  transaction, or in a new one; ``commit=True`` ends that transaction;
- ``yield CONNECTION`` asks for the open transaction's SQLAlchemy connection
  (for code not written as steps); the loop's driver cannot give one and
  raises :class:`NeedsThread`, after rolling back: the caller then runs the
  whole call on a thread. So a generator must ask for it before its first
  write;
- an exception raised by the generator rolls the open transaction back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import ExitStack
from typing import Any, NamedTuple, TypeVar

import psycopg
from sqlalchemy import Connection, Engine

from . import pgpipe, store
from .store import Disconnected, Sql, is_transient, run

T = TypeVar("T")


class Pipeline(NamedTuple):
    steps: Sequence[tuple[Sql, Mapping]]
    commit: bool = False


CONNECTION = object()  # the request for the open transaction's SQLAlchemy connection

Steps = Generator[Any, Any, T]


class NeedsThread(Exception):
    """The event loop's driver cannot run this transaction; nothing was written."""


def run_steps(engine: Engine, steps: Steps[T]) -> T:
    """Drive ``steps`` here (a thread): each transaction is an ``engine.begin()``."""
    with ExitStack() as tx:
        conn: Connection | None = None
        rows: Any = None
        while True:
            try:
                request = steps.send(rows)
            except StopIteration as stop:
                return stop.value
            if conn is None:
                conn = tx.enter_context(engine.begin())
            if request is CONNECTION:
                rows = conn
                continue
            rows = run(conn, *request.steps, commit=request.commit)
            if request.commit:
                tx.close()  # committed in the pipeline; the block finds nothing to do
                conn = None


class AsyncLane:
    """PostgreSQL connections for the event loop's transactions, taken from the
    engine's pool and kept while busy (at most ``keep`` idle). Taking a new one
    may block (connect, ping), so it happens on ``executor``; one idle longer
    than the pool would trust without a ping is given back instead of used."""

    def __init__(self, engine: Engine, executor: Executor, keep: int = 4) -> None:
        self.engine = engine
        self.executor = executor
        self.keep = keep
        self._idle: list[tuple[float, Any]] = []  # (idle since, pooled connection)

    async def run(self, steps: Steps[T]) -> T:
        """Drive ``steps`` on this loop; raises what they raise, :class:`Disconnected`
        for a broken connection, :class:`NeedsThread` as above."""
        pooled = await self._checkout()
        driver = pooled.driver_connection
        try:
            rows: Any = None
            while True:
                try:
                    request = steps.send(rows)
                except StopIteration as stop:
                    return stop.value
                if request is CONNECTION:
                    raise NeedsThread()
                rows = await pgpipe.pipeline_async(
                    driver, [(sql.statement, params) for sql, params in request.steps],
                    begin=not _in_transaction(driver), commit=request.commit)
        except psycopg.OperationalError as exc:
            if driver.broken or driver.pgconn.status != psycopg.pq.ConnStatus.OK:
                raise Disconnected(str(exc)) from exc
            raise
        finally:
            await self._release(pooled)

    async def retrying(self, make: Callable[[], Steps[T]], attempts: int = 8) -> T:
        """:func:`store.retrying` for the loop: ``make`` builds the steps anew."""
        for attempt in range(attempts):
            try:
                return await self.run(make())
            except (Disconnected, psycopg.Error) as exc:
                if not is_transient(exc) or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Give the idle connections back to the pool (the server is stopping)."""
        while self._idle:
            self._idle.pop()[1].close()

    async def _checkout(self) -> Any:
        now = time.monotonic()
        while self._idle:
            since, pooled = self._idle.pop()
            if now - since < store.PING_AFTER_S:
                return pooled
            pooled.close()  # back to the pool, which pings it before its next use
        return await asyncio.get_running_loop().run_in_executor(self.executor,
                                                                self.engine.raw_connection)

    async def _release(self, pooled: Any) -> None:
        """Roll back what is left open; keep a clean connection, drop a broken one."""
        driver = pooled.driver_connection
        try:
            if _in_transaction(driver) and not driver.broken:
                await pgpipe.pipeline_async(driver, [], begin=False, commit=False, rollback=True)
        except psycopg.Error:
            pass
        if driver.broken or _in_transaction(driver) or \
                driver.pgconn.status != psycopg.pq.ConnStatus.OK:
            pooled.invalidate()
        elif len(self._idle) < self.keep:
            self._idle.append((time.monotonic(), pooled))
        else:
            pooled.close()


def _in_transaction(driver: psycopg.Connection) -> bool:
    return driver.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE
