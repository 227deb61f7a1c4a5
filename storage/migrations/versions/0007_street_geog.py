"""a geography index on street edges: a walking check reads the streets near its site through it

Revision ID: 0007_street_geog
Revises: 0006_inspections
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_street_geog"
down_revision = "0006_inspections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_street_edges_geom_geog",
        "street_edges",
        [sa.literal_column("(geom::geography)")],
        unique=False,
        postgresql_using="gist",
    )


def downgrade() -> None:
    op.drop_index("ix_street_edges_geom_geog", table_name="street_edges", postgresql_using="gist")
