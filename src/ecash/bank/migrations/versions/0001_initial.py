"""Initial schema: the bank's tables as revision 1 of ECASH-1 had them.

Revision ID: 0001
Revises:

The tables are written out here, frozen, not taken from ``schema.py``: that
module describes the newest schema, and a fresh database must reach it through
0001, 0002, ... exactly as an old one does.
"""

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()

# Money is in minor units (fen); times are Unix seconds unless named *_ms.

accounts = Table(
    "accounts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("account_id", String(64), nullable=False, unique=True),
    Column("holder", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # holder | bank
    Column("status", String(16), nullable=False),  # active | frozen | closed
    Column("balance", BigInteger, nullable=False),
    Column("identity", LargeBinary(32), unique=True),
    Column("merchant_id", String(64), unique=True),
    Column("daily_load_limit", BigInteger, nullable=False),
    Column("net_load_limit", BigInteger, nullable=False),
    Column("payout_after", BigInteger),
    Column("paid_out", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

credentials = Table(
    "credentials", metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("role", String(16), nullable=False),  # holder | merchant | operator
    Column("account", BigInteger, ForeignKey("accounts.id")),
    Column("created_at", BigInteger, nullable=False),
)

settings = Table(
    "settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

generations = Table(
    "generations", metadata,
    Column("generation", Integer, primary_key=True, autoincrement=False),
    Column("withdraw_start", BigInteger, nullable=False),
    Column("withdraw_end", BigInteger, nullable=False),
    Column("deposit_end", BigInteger, nullable=False),
    Column("prefix_bits", SmallInteger, nullable=False),
    # set when the generation passed deposit_end: breakage booked, spent coins dropped
    Column("closed_at", BigInteger),
    Column("archived_spent_value", BigInteger, nullable=False, server_default="0"),
    Column("breakage_value", BigInteger, nullable=False, server_default="0"),
)

denomination_keys = Table(
    "denomination_keys", metadata,
    Column("key_id", LargeBinary(32), primary_key=True),
    Column("generation", Integer, ForeignKey("generations.generation"), nullable=False),
    Column("denomination", SmallInteger, nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("h", LargeBinary(32), nullable=False),
    Column("withdraw_start", BigInteger, nullable=False),
    Column("withdraw_end", BigInteger, nullable=False),
    Column("deposit_end", BigInteger, nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    UniqueConstraint("generation", "denomination"),
)

withdraw_sessions = Table(
    "withdraw_sessions", metadata,
    Column("id", LargeBinary(16), primary_key=True),
    Column("account", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # withdraw | exchange
    Column("state", String(16), nullable=False),  # open | answered | expired
    Column("nonce", LargeBinary(32), nullable=False),  # PRF input for every w (9.1)
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("n_coins", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("key_ids", LargeBinary, nullable=False),  # n * 32
    Column("commitments", LargeBinary, nullable=False),  # n * (a0 b0 a1 b1)
    Column("challenges", LargeBinary),  # n * (c0 c1)
    Column("answers", LargeBinary),  # n * (beta r)
    Column("answered_at", BigInteger),
    Column("redeem", LargeBinary),  # exchange: the redeemed payment (binary)
    Column("redeem_total", BigInteger, nullable=False, server_default="0"),
    Index("withdraw_sessions_account", "account", "state"),
)

spent_coins = Table(
    "spent_coins", metadata,
    Column("generation", Integer, primary_key=True, autoincrement=False),
    Column("serial", LargeBinary(32), primary_key=True),
    Column("bucket", Integer, nullable=False),  # SHA-256(serial)[0:4] >> 1, range queries
    Column("denomination", SmallInteger, nullable=False),
    Column("depositor", BigInteger, nullable=False),  # account credited
    Column("redeemed", Boolean, nullable=False),  # paid to the bank by a holder
    Column("deposited_at", BigInteger, nullable=False),
    Column("spend", LargeBinary, nullable=False),  # 288-byte binary spend
    Column("request", LargeBinary, nullable=False),  # binary request
    Index("spent_coins_bucket", "generation", "bucket"),
    postgresql_partition_by="LIST (generation)",
)

fraud_cases = Table(
    "fraud_cases", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("generation", Integer, nullable=False),
    Column("serial", LargeBinary(32), nullable=False),
    Column("digest", LargeBinary(32), nullable=False),  # SHA-256 of the second transcript
    Column("spend1", LargeBinary, nullable=False),
    Column("request1", LargeBinary, nullable=False),
    Column("spend2", LargeBinary, nullable=False),
    Column("request2", LargeBinary, nullable=False),
    Column("identity", LargeBinary(32), nullable=False),
    Column("account", BigInteger, ForeignKey("accounts.id")),  # None: alarm
    Column("depositor", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("from_balance", BigInteger, nullable=False),
    Column("receivable", BigInteger, nullable=False),
    Column("alarm", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("serial", "digest"),
)

journal = Table(
    "journal", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("debit", String(48), nullable=False),
    Column("credit", String(48), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("ref", String(96), nullable=False),
    UniqueConstraint("kind", "ref", "debit"),
    Index("journal_debit", "debit", "kind", "at"),
    Index("journal_credit", "credit", "kind", "at"),
)

merchant_certificates = Table(
    "merchant_certificates", metadata,
    Column("public_key", LargeBinary(32), primary_key=True),
    Column("account", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("valid_until", BigInteger, nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("issued_at", BigInteger, nullable=False),
)


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
