"""The wallet file: one SQLite database in WAL mode, mode 0600, every change
one ``BEGIN IMMEDIATE`` transaction with ``synchronous=FULL`` (a committed
record of an answered coin survives a crash and a power cut).

Public data (coins' bodies, keys, sessions) is stored as is; secrets (the
seed, the bank credential, every coin's ``s, x1, x2``, every payment's
transcripts) are sealed by :mod:`ecash.wallet.secrets`.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..crypto.coin import compute_coin_id
from ..files import create_private_file
from .errors import CorruptWallet, NoWallet, WalletError, WalletExists

FORMAT = b"ecash-wallet/3"
FORMAT_2 = b"ecash-wallet/2"  # payments kept no description of the sale
FORMAT_1 = b"ecash-wallet/1"  # serial held A; payments kept no request or refusal

SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE keys (
    key_id BLOB PRIMARY KEY, value INTEGER NOT NULL, currency TEXT NOT NULL,
    h BLOB NOT NULL, withdraw_start INTEGER NOT NULL, withdraw_end INTEGER NOT NULL,
    deposit_end INTEGER NOT NULL, signature BLOB NOT NULL,
    z BLOB                                   -- (I*g2)^x, learnt from the bank
);
CREATE TABLE coins (
    id INTEGER PRIMARY KEY,
    serial BLOB NOT NULL UNIQUE,             -- coin_id (ECASH-1 4.1 rev. 2: the serial number)
    key_id BLOB NOT NULL REFERENCES keys(key_id),
    value INTEGER NOT NULL,
    body BLOB NOT NULL,                      -- the 224-byte binary coin
    secrets BLOB NOT NULL,                   -- sealed s || x1 || x2
    state TEXT NOT NULL CHECK (state IN ('unspent', 'pending', 'spent', 'expired')),
    request_id BLOB,                         -- pending: answered for this request
    pending_until INTEGER,                   -- pending: 9.4 time after which it may be free
    origin TEXT NOT NULL,                    -- load | exchange | restore
    session_id BLOB,
    created_at INTEGER NOT NULL,
    settled_at INTEGER
);
CREATE INDEX coins_state ON coins(state);
CREATE TABLE answers (                       -- every request a coin was ever answered for
    coin_id INTEGER NOT NULL REFERENCES coins(id),
    request_id BLOB NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (coin_id, request_id)
);
CREATE TABLE payments (                      -- one row per request answered
    request_id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,                      -- pay | redeem | exchange
    merchant_id TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL, pos_url TEXT NOT NULL,
    merchant_key BLOB,                       -- certified key that signs the receipt
    payment BLOB NOT NULL,                   -- sealed binary payment (the transcripts)
    n_coins INTEGER NOT NULL,
    status TEXT NOT NULL,                    -- see PAYMENT_STATUSES in pay.py
    receipt TEXT, detail TEXT,
    envelope TEXT,                           -- the signed request with its certificate (JSON)
    refusal TEXT,                            -- the terminal's signed refusal, once verified (JSON)
    dispute TEXT,                            -- the bank's answer to the holder's dispute (JSON)
    description TEXT,                        -- what was bought, as the terminal signed it
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX payments_recent ON payments(kind, created_at);
CREATE TABLE ops (                           -- a load or an exchange, until it is done
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                      -- load | break | renew
    state TEXT NOT NULL,                     -- open | done | failed
    amount INTEGER NOT NULL,
    chunks TEXT NOT NULL,                    -- JSON: coin values per bank session
    request_id BLOB,                         -- exchange: the redemption request
    detail TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE sessions (                      -- one bank withdrawal session
    id BLOB PRIMARY KEY,
    op_id INTEGER NOT NULL REFERENCES ops(id),
    chunk INTEGER NOT NULL,
    state TEXT NOT NULL,                     -- offered | challenged | done | failed
    offer TEXT NOT NULL,                     -- the bank's answer to the start (JSON)
    challenges BLOB,                         -- n * (c0 || c1), stored before sending
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,
    amount INTEGER NOT NULL, detail TEXT NOT NULL
);
"""


def _check_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise WalletError(f"{path} is readable by others (mode {mode:o}); run chmod 600 on it",
                          "unsafe_permissions")


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn, self.path = conn, path
        self._depth = 0

    # --- opening -------------------------------------------------------------
    @classmethod
    def create(cls, path: Path) -> Store:
        path = Path(path)
        try:
            create_private_file(path, exclusive=True)  # 0600, its directory 0700
        except FileExistsError:
            raise WalletExists(f"{path} already exists; choose another --wallet path") from None
        store = cls(_connect(path), path)
        store.conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
        with store.tx():
            store.set_meta("format", FORMAT)
        return store

    @classmethod
    def open(cls, path: Path, *, check: bool = True) -> Store:
        path = Path(path)
        if not path.is_file():
            raise NoWallet(f"no wallet at {path} (create one with `ecash wallet init`)")
        _check_mode(path)
        try:
            conn = _connect(path)
            store = cls(conn, path)
            if check:
                result = conn.execute("PRAGMA quick_check").fetchall()
                if result != [("ok",)]:
                    raise CorruptWallet(f"{path} is damaged: {result[0][0]}")
            fmt = store.meta("format")
        except sqlite3.DatabaseError as exc:
            raise CorruptWallet(f"{path} is not a readable wallet file ({exc})") from None
        if fmt == FORMAT_1:
            store._migrate_from_1()
            fmt = FORMAT_2
        if fmt == FORMAT_2:
            store._migrate_from_2()
        elif fmt != FORMAT:
            raise CorruptWallet(f"{path} is not an ecash wallet (or of an unknown format)")
        return store

    def _migrate_from_1(self) -> None:
        """Format 1 to 2 in one transaction (a crash leaves format 1, migrated
        again at the next open): every coin's serial becomes its ``coin_id``,
        computed from its stored body (ECASH-1 4.1 rev. 2), and payments gain
        the columns that keep a refusal's evidence."""
        with self.tx() as conn:
            if self.meta("format") != FORMAT_1:  # another process migrated it meanwhile
                return
            rows = conn.execute("SELECT id, body FROM coins").fetchall()
            conn.executemany("UPDATE coins SET serial = ? WHERE id = ?",
                             [(coin_id_of_body(bytes(body)), cid) for cid, body in rows])
            for column in ("envelope", "refusal", "dispute"):
                conn.execute(f"ALTER TABLE payments ADD COLUMN {column} TEXT")
            self.set_meta("format", FORMAT_2)

    def _migrate_from_2(self) -> None:
        """Format 2 to 3 in one transaction: payments gain the sale's
        description (docs/extensions.md); older payments have none."""
        with self.tx() as conn:
            if self.meta("format") != FORMAT_2:  # another process migrated it meanwhile
                return
            columns = {r[1] for r in conn.execute("PRAGMA table_info(payments)")}
            if "description" not in columns:
                conn.execute("ALTER TABLE payments ADD COLUMN description TEXT")
            self.set_meta("format", FORMAT)

    def close(self) -> None:
        self.conn.close()

    # --- transactions --------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    def data_version(self) -> int:
        """Changes when another connection commits (to refresh caches)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    # --- meta ------------------------------------------------------------------
    def meta(self, name: str) -> bytes | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0]) if isinstance(row[0], bytes) else row[0]

    def meta_text(self, name: str) -> str | None:
        v = self.meta(name)
        return None if v is None else v.decode() if isinstance(v, bytes) else str(v)

    def set_meta(self, name: str, value: bytes | str | int) -> None:
        if isinstance(value, str):
            value = value.encode()
        elif isinstance(value, int):
            value = str(value).encode()
        self.conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name)"
                          " DO UPDATE SET value = excluded.value", (name, value))

    def event(self, at: int, kind: str, amount: int, detail: str) -> None:
        self.conn.execute("INSERT INTO events (at, kind, amount, detail) VALUES (?, ?, ?, ?)",
                          (at, kind, amount, detail))


def coin_id_of_body(body: bytes) -> bytes:
    """The ``coin_id`` of a coin's 224-byte binary body (``key_id || A || B || ...``)."""
    return compute_coin_id(body[0:32], body[32:64], body[64:96])


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30,
                           check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)
    return conn
