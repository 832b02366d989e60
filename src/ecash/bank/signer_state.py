"""The signer's memory of what it answered: nonce -> (request digest, answer).

It is what makes "a commitment answers one challenge list" hold across
restarts of the signer: the record is written (and synced, ``synchronous =
FULL``) before the answer leaves, so the same request again gets the same
answer and another request on the same nonce is refused. Records older than
the nonce window are pruned: such nonces are refused before the log is read.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..files import private_sqlite

PRUNE_EVERY_S = 60


class AnswerLog:
    """One SQLite file (0600) beside the keys; thread-safe, and shared safely
    by several processes (each answer is one ``BEGIN IMMEDIATE`` transaction)."""

    def __init__(self, path: Path) -> None:
        private_sqlite(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (nonce BLOB PRIMARY KEY,"
                         " issued_at INTEGER NOT NULL, digest BLOB NOT NULL,"
                         " answer BLOB NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS answers_issued ON answers (issued_at)")
        self._lock = threading.Lock()
        self._pruned = float("-inf")

    def answer_once(self, nonce: bytes, issued_at: int, digest: bytes,
                    answer: Callable[[], bytes], *, prune_before: int) -> tuple[bytes, bytes]:
        """``(digest, answer)`` as recorded for ``nonce``: the given ``digest``
        and a new ``answer()`` if the nonce was never answered, else the first
        request's digest and answer (the caller compares the digests)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT digest, answer FROM answers WHERE nonce = ?",
                                       (nonce,)).fetchone()
                if row is None:
                    row = (digest, answer())
                    self._db.execute("INSERT INTO answers VALUES (?, ?, ?, ?)",
                                     (nonce, issued_at, *row))
                if time.monotonic() - self._pruned > PRUNE_EVERY_S:
                    self._db.execute("DELETE FROM answers WHERE issued_at < ?", (prune_before,))
                    self._pruned = time.monotonic()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return bytes(row[0]), bytes(row[1])

    def close(self) -> None:
        with self._lock:
            self._db.close()
