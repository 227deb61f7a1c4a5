"""the overdue ladder: a case's escalation level, its latest recipient and when that level was raised

Revision ID: 0008_ledger_levels
Revises: 0007_street_geog
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_ledger_levels"
down_revision = "0007_street_geog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("escalation_level", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("cases", sa.Column("escalated_to", sa.Text(), nullable=True))
    op.add_column("cases", sa.Column("escalation_level_at", sa.DateTime(timezone=True), nullable=True))
    # cases already flagged overdue stand at level 1 since they were flagged
    op.execute(
        "UPDATE cases SET escalation_level = 1, escalation_level_at = overdue_since "
        "WHERE overdue AND overdue_since IS NOT NULL"
    )
    op.create_index(
        "ix_cases_escalation_level",
        "cases",
        ["escalation_level"],
        unique=False,
        postgresql_where=sa.text("escalation_level > 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_escalation_level", table_name="cases", postgresql_where=sa.text("escalation_level > 0"))
    op.drop_column("cases", "escalation_level_at")
    op.drop_column("cases", "escalated_to")
    op.drop_column("cases", "escalation_level")
