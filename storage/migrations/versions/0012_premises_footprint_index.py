"""a GiST index on the premises' footprints: the scan finds the footprints near each campus through it,
instead of probing the campus index once per premises with a footprint

Revision ID: 0012_premises_footprint_index
Revises: 0011_district_parts
"""

from __future__ import annotations

from alembic import op

revision = "0012_premises_footprint_index"
down_revision = "0011_district_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS idx_premises_footprint ON premises USING gist (footprint)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idx_premises_footprint")
