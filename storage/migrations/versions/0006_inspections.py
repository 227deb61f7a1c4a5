"""inspections and campaigns: a campaign's scope (its categories and the zone radius around schools)

Merges the two heads (0004 ledger, 0005 ops).

Revision ID: 0006_inspections
Revises: 0004, 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_inspections"
down_revision = ("0004", "0005")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "campaigns",
        sa.Column("categories", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    )
    op.add_column("campaigns", sa.Column("radius_m", sa.Float(), nullable=True))
    op.create_index("uq_inspection_records_plan_period", "inspection_records", ["plan_id", "period_start"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_inspection_records_plan_period", table_name="inspection_records")
    op.drop_column("campaigns", "radius_m")
    op.drop_column("campaigns", "categories")
