"""ECASH-1 revision 2: spent coins keyed by coin_id.

Revision ID: 0002
Revises: 0001

Revision 1 stored a spent coin under its ``A`` (column ``serial``). Revision 2
identifies a coin by ``coin_id = H_bytes("coin-id", key_id, A, B)[0:32]``,
which every stored coin yields from its stored binary spend (``key_id || A ||
B || ...``). This revision recomputes each spent coin's ``coin_id`` and bucket
(``wire.spentset.bucket_of(coin_id)``), keys the spent table on
``(generation, bucket, coin_id)`` (one index for the deposit's lookup and the
spent-set query's ordered pages, replacing the primary key and the bucket
index of revision 1), stores the ``coin_id`` of each fraud case, and drops
``generations.prefix_bits`` (the wallet chooses its own bucket size).

Revision 1 kept one coin per ``A`` (a second coin with that ``A`` was refused),
so the recomputed keys are as unique as the old ones.
"""

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    text,
)

from ecash.crypto.coin import compute_coin_id
from ecash.wire.spentset import bucket_of

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 5000


def coin_id_of_spend(spend: bytes) -> bytes:
    """The ``coin_id`` of a stored 288-byte binary spend (``key_id || A || B || ...``)."""
    return compute_coin_id(spend[0:32], spend[32:64], spend[64:96])


def _rekey_spent_coins(conn: Connection) -> None:
    """Rename ``serial`` to ``coin_id`` and set it (and the bucket) from each
    stored spend, a generation at a time."""
    conn.execute(text("ALTER TABLE spent_coins RENAME COLUMN serial TO coin_id"))
    gens = [g for (g,) in conn.execute(text("SELECT DISTINCT generation FROM spent_coins"))]
    update = text("UPDATE spent_coins SET coin_id = :new, bucket = :bucket"
                  " WHERE generation = :g AND coin_id = :old")
    for g in gens:
        rows = conn.execute(text("SELECT coin_id, spend FROM spent_coins WHERE generation = :g"),
                            {"g": g}).all()
        params = []
        for old, spend in rows:
            new = coin_id_of_spend(bytes(spend))
            params.append({"g": g, "old": old, "new": new, "bucket": bucket_of(new)})
        for i in range(0, len(params), BATCH):
            conn.execute(update, params[i:i + BATCH])


def _spent_coins_rev2(name: str) -> Table:
    """SQLite's new spent table (revision 2's layout, frozen here)."""
    return Table(
        name, MetaData(),
        Column("generation", Integer, nullable=False, autoincrement=False),
        Column("bucket", Integer, nullable=False),
        Column("coin_id", LargeBinary(32), nullable=False),
        Column("denomination", SmallInteger, nullable=False),
        Column("depositor", BigInteger, nullable=False),
        Column("redeemed", Boolean, nullable=False),
        Column("deposited_at", BigInteger, nullable=False),
        Column("spend", LargeBinary, nullable=False),
        Column("request", LargeBinary, nullable=False),
        PrimaryKeyConstraint("generation", "bucket", "coin_id", name="spent_coins_pkey"),
    )


_SPENT_COLUMNS = ("generation, bucket, coin_id, denomination, depositor, redeemed,"
                  " deposited_at, spend, request")


def _new_primary_key(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":  # the partitions follow their parent
        conn.execute(text("DROP INDEX spent_coins_bucket"))
        conn.execute(text("ALTER TABLE spent_coins DROP CONSTRAINT spent_coins_pkey"))
        conn.execute(text("ALTER TABLE spent_coins ADD CONSTRAINT spent_coins_pkey"
                          " PRIMARY KEY (generation, bucket, coin_id)"))
        return
    # SQLite cannot change a primary key in place: copy into a new table
    _spent_coins_rev2("spent_coins_rev2").create(conn)
    conn.execute(text(f"INSERT INTO spent_coins_rev2 ({_SPENT_COLUMNS})"
                      f" SELECT {_SPENT_COLUMNS} FROM spent_coins"))
    conn.execute(text("DROP TABLE spent_coins"))
    conn.execute(text("ALTER TABLE spent_coins_rev2 RENAME TO spent_coins"))


def _rekey_fraud_cases(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE fraud_cases RENAME COLUMN serial TO coin_id"))
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE fraud_cases RENAME CONSTRAINT"
                          " fraud_cases_serial_digest_key TO fraud_cases_coin_id_digest_key"))
    rows = conn.execute(text("SELECT id, spend1 FROM fraud_cases")).all()
    if rows:
        conn.execute(text("UPDATE fraud_cases SET coin_id = :coin_id WHERE id = :id"),
                     [{"id": i, "coin_id": coin_id_of_spend(bytes(s))} for i, s in rows])


def upgrade() -> None:
    conn = op.get_bind()
    _rekey_spent_coins(conn)
    _new_primary_key(conn)
    _rekey_fraud_cases(conn)
    conn.execute(text("ALTER TABLE generations DROP COLUMN prefix_bits"))


def downgrade() -> None:
    # Revision 2 may hold two coins with one A (two coin_ids), which revision 1's
    # table cannot: going back would lose a spent coin, and with it money.
    raise NotImplementedError("revision 2's spent coins cannot be keyed by A again")
