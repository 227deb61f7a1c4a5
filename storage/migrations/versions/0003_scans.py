"""scans, findings and school warnings

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("pack_version", sa.String(length=32), nullable=False),
        sa.Column("scan_date", sa.Date(), nullable=False),
        sa.Column("district", sa.String(length=6), nullable=True),
        sa.Column(
            "counts", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("token_id", sa.BigInteger(), sa.ForeignKey("tokens.id"), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("job_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("scan_id", sa.BigInteger(), sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("premises_id", sa.BigInteger(), nullable=False),
        sa.Column("permit_id", sa.BigInteger(), nullable=True),
        sa.Column("permit_no", sa.Text(), nullable=True),
        sa.Column("premises_name", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("school_id", sa.BigInteger(), nullable=False),
        sa.Column("school_name", sa.Text(), nullable=False),
        sa.Column("campus_id", sa.BigInteger(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("limit_m", sa.Float(), nullable=False),
        sa.Column("u_m", sa.Float(), nullable=False),
        sa.Column("margin_m", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("district_adcode", sa.String(length=6), nullable=True),
        sa.Column("lead_department", sa.String(length=64), nullable=False),
        sa.Column(
            "cooperating_departments", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("flags", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("from_geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("to_geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for name, cols in (
        ("ix_findings_scan_id_id", ["scan_id", "id"]),
        ("ix_findings_scan_status", ["scan_id", "status"]),
        ("ix_findings_scan_category", ["scan_id", "category"]),
        ("ix_findings_scan_rule", ["scan_id", "rule_id"]),
        ("ix_findings_scan_district", ["scan_id", "district_adcode"]),
        ("ix_findings_scan_school", ["scan_id", "school_id"]),
        ("ix_findings_scan_lead", ["scan_id", "lead_department"]),
        ("ix_findings_scan_key", ["scan_id", "premises_id", "rule_id", "campus_id"]),
    ):
        op.create_index(name, "findings", cols, unique=False)
    op.create_index("ix_findings_coop", "findings", ["cooperating_departments"], unique=False, postgresql_using="gin")
    op.create_table(
        "school_warnings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("school_id", sa.BigInteger(), nullable=False),
        sa.Column("scan_id", sa.BigInteger(), sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("finding_id", sa.BigInteger(), nullable=True),
        sa.Column("finding_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_school_warnings_school_id", "school_warnings", ["school_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_school_warnings_school_id", table_name="school_warnings")
    op.drop_table("school_warnings")
    op.drop_table("findings")
    op.drop_table("scans")
