"""Quiet when acknowledged (V2-30): cards shown per keyed patient, overrides that snooze a rule, and the
generated patient-key secret of a store without a configured one.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shown_card",
        sa.Column("card_uuid", sa.String(36), primary_key=True),
        sa.Column("hook", sa.String(32), nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("unmet", sa.JSON(), nullable=False),
        sa.Column("drafts", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_shown_card_patient_key", "shown_card", ["patient_key"])
    op.create_index("ix_shown_card_issued_at", "shown_card", ["issued_at"])
    op.create_table(
        "snooze",
        sa.Column("patient_key", sa.String(64), primary_key=True),
        sa.Column("rule_id", sa.String(64), primary_key=True),
        sa.Column("unmet", sa.JSON(), nullable=False),
        sa.Column("overridden_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_snooze_overridden_at", "snooze", ["overridden_at"])
    op.create_table(
        "generated_secret",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("generated_secret")
    op.drop_table("snooze")
    op.drop_table("shown_card")
