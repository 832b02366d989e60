"""Initial schema.

Revision ID: 0001
Revises:
"""

from alembic import op

from ecash.bank.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The first revision creates schema.py's tables as they stand; every later
    # change to schema.py must come with its own explicit revision.
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
