"""Why an account is frozen: the operator's reason, or the double-spending
case that froze it, kept on the account (what the holder is shown) and in a
history of every freeze and unfreeze with its time and words.

A plain ADD COLUMN each (nullable): on SQLite a batch copy of ``accounts``
would break the foreign keys that point at it. Accounts already frozen by a
case get that case as their reason, so that no frozen account is left
without one.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("frozen_reason", sa.Text))
    op.add_column("accounts", sa.Column("frozen_case", sa.BigInteger))
    op.add_column("accounts", sa.Column("frozen_at", sa.BigInteger))
    op.create_table(
        "account_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("account", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("fraud_case", sa.BigInteger))
    op.create_index("account_events_by_account", "account_events", ["account", "id"])
    # accounts a case froze before this revision: the newest case naming them
    op.execute(
        "UPDATE accounts SET frozen_case = (SELECT max(f.id) FROM fraud_cases f"
        " WHERE f.account = accounts.id) WHERE status = 'frozen' AND NOT frozen_by_operator")
    op.execute(
        "UPDATE accounts SET frozen_reason = 'double spending: case ' || frozen_case"
        " WHERE frozen_case IS NOT NULL")
    op.execute(
        "UPDATE accounts SET frozen_reason = 'frozen by the operator (no reason recorded)'"
        " WHERE status = 'frozen' AND frozen_reason IS NULL")


def downgrade() -> None:
    op.drop_index("account_events_by_account", "account_events")
    op.drop_table("account_events")
    for name in ("frozen_at", "frozen_case", "frozen_reason"):
        op.drop_column("accounts", name)
