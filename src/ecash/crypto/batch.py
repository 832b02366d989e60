"""Verifying many spends at once, in-process or across all cores.

One bad item never fails the batch: each gets its own :class:`Verdict`.
A server that already runs one worker process per core verifies in-process
(``processes=0``); otherwise a process pool sized to the machine is used.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

from .coin import PublicKeyLike
from .errors import EcashError
from .payment import Spend, verify_spend


@dataclass(frozen=True)
class Verdict:
    ok: bool
    code: str = "ok"
    reason: str = ""
    d: int = 0


Item = tuple[Spend, PublicKeyLike]


def verify_one(item: Item) -> Verdict:
    spend, key = item
    try:
        return Verdict(True, d=verify_spend(spend, key))
    except EcashError as exc:
        return Verdict(False, exc.code, str(exc))


def _verify_chunk(items: Sequence[Item]) -> list[Verdict]:
    return [verify_one(it) for it in items]


def default_processes() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_pool(processes: int | None = None) -> ProcessPoolExecutor:
    """A pool to reuse across batches (starting processes costs far more than a
    batch), its workers started now rather than during the first batch.

    Its workers are fresh interpreters (spawn), not forks that would inherit a
    server's signal handlers, and each exits when its parent dies: a worker
    holds both ends of its task queue, so a parent killed by a signal would
    otherwise leave it waiting for work forever."""
    n = processes or default_processes()
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))
    for f in [pool.submit(_verify_chunk, []) for _ in range(n)]:
        f.result()
    return pool


def _exit_with_parent(parent: int) -> None:
    """Exit once ``parent`` has exited. The pid is passed in, not read here: a
    worker still starting when its parent is killed would read its new parent
    (init or a subreaper) and watch it forever. A pidfd of the parent turns
    readable when it exits, so the watch sleeps instead of polling."""

    def watch() -> None:
        try:
            fd = os.pidfd_open(parent)
        except (AttributeError, OSError):  # no pidfd here, or the parent is gone
            fd = None
        if fd is not None and os.getppid() == parent:  # the pid was not reused
            select.select([fd], [], [])
        while os.getppid() == parent:  # without a pidfd
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def verify_spends(items: Sequence[Item], *, pool: Executor | None = None,
                  processes: int | None = None) -> list[Verdict]:
    """Verdicts in input order. ``processes=0`` (or one item) verifies in-process;
    otherwise ``pool`` is used, or a temporary pool of ``processes`` workers."""
    if processes == 0 or len(items) <= 1 or (pool is None and processes == 1):
        return _verify_chunk(items)
    own = pool is None
    executor = pool or make_pool(processes)
    try:
        workers = processes or default_processes()  # a pool is sized so by make_pool
        n = max(1, -(-len(items) // (workers * 4)))
        chunks = [items[i:i + n] for i in range(0, len(items), n)]
        out: list[Verdict] = []
        for part in executor.map(_verify_chunk, chunks):
            out.extend(part)
        return out
    finally:
        if own:
            executor.shutdown()
