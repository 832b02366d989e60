"""Transactions written once as generators of pipelines, and their driver.

A hot transaction (the withdrawal's) is a generator that yields
:class:`Pipeline` requests and receives their rows: it holds the protocol's
rules and no I/O. :func:`run_steps` drives it on a thread through
``engine.begin()`` (both engines); on PostgreSQL each pipeline is one round
trip (:func:`store.run`).

Contract of a generator:

- each ``yield Pipeline(steps, commit)`` runs ``steps`` in the open
  transaction, or in a new one; ``commit=True`` ends that transaction;
- ``yield CONNECTION`` asks for the open transaction's SQLAlchemy connection
  (for code not written as steps);
- an exception raised by the generator rolls the open transaction back.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine

from .store import Sql, run

T = TypeVar("T")


class Pipeline(NamedTuple):
    steps: Sequence[tuple[Sql, Mapping]]
    commit: bool = False


CONNECTION = object()  # the request for the open transaction's SQLAlchemy connection

Steps = Generator[Any, Any, T]


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
