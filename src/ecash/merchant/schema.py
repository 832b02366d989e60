"""The terminal's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

``transcripts.coin_id`` is the primary key: a coin (ECASH-1 4.1, rev. 2:
``coin_id``, not ``A``) is stored at most once per store, so when several
terminals of a shop share one store, a coin accepted at one is refused at all
the others by the database itself. Times are Unix milliseconds (``*_ms``).

``SCHEMA_VERSION`` is kept in ``settings``; :mod:`.migrate` brings a store
written by older code up to it when the store is opened.
"""

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
    String,
    Table,
    Text,
)

SCHEMA_VERSION = "3"
REFUSALS_KEPT = 8  # refusal log lines kept per request (the count goes on)

metadata = MetaData()

settings = Table(
    "settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The terminal's Ed25519 keys: the newest is current; older ones stay to
# sign the receipts of the requests they signed.
signing_keys = Table(
    "signing_keys", metadata,
    Column("public_key", LargeBinary(32), primary_key=True),
    Column("seed", LargeBinary(32), nullable=False),
    Column("certificate", Text, nullable=False),  # section 8 JSON
    Column("valid_until", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

requests = Table(
    "requests", metadata,
    Column("request_id", LargeBinary(32), primary_key=True),
    Column("nonce", LargeBinary(16), nullable=False, unique=True),  # never reused
    Column("merchant_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("pos_url", Text, nullable=False),
    Column("public_key", LargeBinary(32), ForeignKey("signing_keys.public_key"),
           nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("terminal", String(64), nullable=False),
    # open | pending (checking with the bank) | paid | refused | cancelled: the
    # first payment that is not open decides the request (ECASH-1 5.1); a
    # cashier's cancel decides an open one (no payment is taken after it)
    Column("status", String(16), nullable=False),
    Column("online", Boolean, nullable=False, default=False),
    Column("paid_ms", BigInteger),  # when the deciding payment was stored or refused
    # the deciding payment's ECASH-1 5.1 payment_digest
    Column("payment_digest", LargeBinary(32)),
    Column("coins", Integer),
    Column("receipt", LargeBinary(64)),
    Column("code", String(64)),  # why it was refused (status refused)
    Column("refused_count", Integer, nullable=False, default=0),  # every refusal, ever
    # what is being bought (docs/extensions.md), signed by the request's key
    Column("description", Text),
    Column("description_signature", LargeBinary(64)),
)

transcripts = Table(
    "transcripts", metadata,
    Column("coin_id", LargeBinary(32), primary_key=True),
    Column("request_id", LargeBinary(32), ForeignKey("requests.request_id"), nullable=False),
    Column("key_id", LargeBinary(32), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("spend", LargeBinary(288), nullable=False),  # binary spend (section 8)
    # False only for coins the bank took online for a payment that was then refused
    Column("sale", Boolean, nullable=False),
    Column("accepted_ms", BigInteger, nullable=False),
    Column("deposit_by_ms", BigInteger, nullable=False),  # request timestamp + T (9.4)
    # the bank's verdict: accepted | double_spent | invalid | late | expired | serial_collision
    Column("verdict", String(20)),
    Column("code", String(40)),
    Column("credited", BigInteger),
    Column("replay", Boolean),
    Column("fraud_case", BigInteger),
    Column("settled_ms", BigInteger),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
)
Index("transcripts_pending", transcripts.c.verdict, transcripts.c.deposit_by_ms)
Index("transcripts_request", transcripts.c.request_id)

# The last REFUSALS_KEPT refusals of each request, as codes only: a refusal's
# words are ours (page.py), never text a payer chose.
refusals = Table(
    "refusals", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("request_id", LargeBinary(32)),
    Column("code", String(40), nullable=False),
    Column("coins", Integer, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
)
Index("refusals_request", refusals.c.request_id, refusals.c.id)
