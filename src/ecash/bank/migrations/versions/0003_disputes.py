"""Holders' disputes (signed refusals, ECASH-1 5.1) and the cases they open
against merchants.

An account frozen by the operator says so (``frozen_by_operator``), so that
an upheld dispute, which voids the cases that froze it, never lifts it.
Redemptions bound to an account need no schema change: the binding is in the
request's nonce (``ecash.wire.redemption``).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("voided_fraud_cases", "disputed_spends", "merchant_cases", "disputes")


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                     autoincrement=True)


def upgrade() -> None:
    # an operator's freeze, which an upheld dispute must not lift
    # (a plain ADD COLUMN with a default: on SQLite a batch copy of the table
    # would break the foreign keys that point at it)
    op.add_column("accounts", sa.Column("frozen_by_operator", sa.Boolean, nullable=False,
                                        server_default=sa.false()))
    op.create_table(
        "disputes", _id(),
        sa.Column("account", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("request_id", sa.LargeBinary(32), nullable=False),
        sa.Column("payment_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("merchant", sa.BigInteger, sa.ForeignKey("accounts.id")),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("merchant_case", sa.BigInteger),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("refusal", sa.Text, nullable=False),
        sa.Column("spends", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("account", "request_id", "payment_digest"))
    op.create_table(
        "merchant_cases", _id(),
        sa.Column("dispute", sa.BigInteger, sa.ForeignKey("disputes.id"), nullable=False,
                  unique=True),
        sa.Column("merchant", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("from_balance", sa.BigInteger, nullable=False),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("receivable", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False))
    op.create_table(
        "disputed_spends",
        sa.Column("coin_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("merchant_case", sa.BigInteger, sa.ForeignKey("merchant_cases.id"),
                  nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("spend", sa.LargeBinary, nullable=False),
        sa.Column("request", sa.LargeBinary, nullable=False))
    op.create_table(
        "voided_fraud_cases",
        sa.Column("fraud_case", sa.BigInteger, sa.ForeignKey("fraud_cases.id"),
                  primary_key=True),
        sa.Column("dispute", sa.BigInteger, sa.ForeignKey("disputes.id"), nullable=False),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("voided_at", sa.BigInteger, nullable=False))


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
    op.drop_column("accounts", "frozen_by_operator")
