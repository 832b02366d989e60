"""The bank's tables (SQLAlchemy Core): the newest schema, which a fresh
database reaches through every migration in ``migrations/versions``. One
schema for SQLite and PostgreSQL; on PostgreSQL ``spent_coins`` is partitioned
by key generation so a whole generation's spent coins go with one ``DROP``
after its ``deposit_end``.

A spent coin is keyed by ``coin_id`` (ECASH-1 4.1, rev. 2), behind its bucket
(``wire.spentset.bucket_of(coin_id)``): the one index serves both the
deposit's lookup of a coin and the spent-set query's ordered pages of buckets."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

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
    # frozen by the operator (not only by a double-spend case): an upheld
    # dispute, which voids cases, never lifts it
    Column("frozen_by_operator", Boolean, nullable=False, server_default=false()),
    # why it is frozen (the operator's words, or "double spending: case N"), for
    # the holder; the case that froze it, if one did; when (migration 0004)
    Column("frozen_reason", Text),
    Column("frozen_case", BigInteger),
    Column("frozen_at", BigInteger),
    Column("balance", BigInteger, nullable=False),
    Column("identity", LargeBinary(32), unique=True),
    Column("merchant_id", String(64), unique=True),
    Column("daily_load_limit", BigInteger, nullable=False),
    Column("net_load_limit", BigInteger, nullable=False),
    Column("payout_after", BigInteger),
    Column("paid_out", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

# every freeze and unfreeze, with its time and words (the operator's reason or
# note, or the case or dispute that did it)
account_events = Table(
    "account_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("account", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("action", String(16), nullable=False),  # frozen | unfrozen
    Column("text", Text, nullable=False),
    Column("fraud_case", BigInteger),
    Index("account_events_by_account", "account", "id"),
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
    Column("generation", Integer, nullable=False, autoincrement=False),
    Column("bucket", Integer, nullable=False),  # spentset.bucket_of(coin_id)
    Column("coin_id", LargeBinary(32), nullable=False),  # H_bytes("coin-id", key_id, A, B)
    Column("denomination", SmallInteger, nullable=False),
    Column("depositor", BigInteger, nullable=False),  # account credited
    Column("redeemed", Boolean, nullable=False),  # paid to the bank by a holder
    Column("deposited_at", BigInteger, nullable=False),
    Column("spend", LargeBinary, nullable=False),  # 288-byte binary spend
    Column("request", LargeBinary, nullable=False),  # binary request
    # unique on coin_id (the bucket is a function of it), ordered as the query pages
    PrimaryKeyConstraint("generation", "bucket", "coin_id", name="spent_coins_pkey"),
    postgresql_partition_by="LIST (generation)",
)

fraud_cases = Table(
    "fraud_cases", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("generation", Integer, nullable=False),
    Column("coin_id", LargeBinary(32), nullable=False),
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
    UniqueConstraint("coin_id", "digest"),
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

# --- holders' disputes (ECASH-1 5.1, rev. 2; bank/disputes.py) ---------------

disputes = Table(
    "disputes", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("account", BigInteger, ForeignKey("accounts.id"), nullable=False),  # who disputes
    Column("request_id", LargeBinary(32), nullable=False),
    Column("payment_digest", LargeBinary(32), nullable=False),  # of the spends shown
    Column("merchant", BigInteger, ForeignKey("accounts.id")),  # the certificate's, if known
    Column("status", String(16), nullable=False),  # upheld | rejected
    Column("reason", Text, nullable=False),
    Column("merchant_case", BigInteger),  # merchant_cases.id when upheld
    Column("envelope", Text, nullable=False),  # the evidence, as the holder sent it (JSON)
    Column("refusal", Text, nullable=False),
    Column("spends", LargeBinary, nullable=False),  # binary payment
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("account", "request_id", "payment_digest"),
)

# A merchant that deposited a transcript of a payment it had refused (signed).
merchant_cases = Table(
    "merchant_cases", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("dispute", BigInteger, ForeignKey("disputes.id"), nullable=False, unique=True),
    Column("merchant", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("value", BigInteger, nullable=False),  # of the refused transcripts it deposited
    Column("from_balance", BigInteger, nullable=False),  # taken back from its balance
    Column("refunded", BigInteger, nullable=False),  # returned to holders it had named
    # the case's net effect on the bank's receivable (refunded - from_balance):
    # negative while the merchant has repaid a coin no later depositor was paid for
    Column("receivable", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# The refused transcripts a merchant deposited: a later deposit of the same
# coin that conflicts with one of them names no holder.
disputed_spends = Table(
    "disputed_spends", metadata,
    Column("coin_id", LargeBinary(32), primary_key=True),
    Column("digest", LargeBinary(32), primary_key=True),  # SHA-256 of spend || request
    Column("merchant_case", BigInteger, ForeignKey("merchant_cases.id"), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("spend", LargeBinary, nullable=False),
    Column("request", LargeBinary, nullable=False),
)

# Double-spend cases voided by an upheld dispute: the named holder is cleared.
voided_fraud_cases = Table(
    "voided_fraud_cases", metadata,
    Column("fraud_case", BigInteger, ForeignKey("fraud_cases.id"), primary_key=True),
    Column("dispute", BigInteger, ForeignKey("disputes.id"), nullable=False),
    Column("refunded", BigInteger, nullable=False),  # from_balance returned to the holder
    Column("voided_at", BigInteger, nullable=False),
)
