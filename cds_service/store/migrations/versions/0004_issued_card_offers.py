"""What each issued card offered (suggestion uuids, override reasons), so feedback is checked against it.

Nullable: cards issued before this revision did not record their offers; their rows stay, and feedback on
them skips the suggestion and reason checks (`store.feedback_checks`).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("issued_card", sa.Column("suggestions", sa.JSON(), nullable=True))
    op.add_column("issued_card", sa.Column("override_reasons", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issued_card") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("override_reasons")
        batch.drop_column("suggestions")
