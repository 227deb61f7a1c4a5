"""the risk ledger: cases, their events and findings, inspection plans and campaigns

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NOW = sa.text("now()")
_EMPTY_ARRAY = sa.text("'{}'")
_EMPTY_JSON = sa.text("'{}'::jsonb")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("finding_status", sa.String(length=16), nullable=True),
        sa.Column("premises_id", sa.BigInteger(), nullable=True),
        sa.Column("school_id", sa.BigInteger(), nullable=True),
        sa.Column("campus_id", sa.BigInteger(), nullable=True),
        sa.Column("district_adcode", sa.String(length=6), nullable=True),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.Column("lead_department", sa.String(length=64), nullable=False),
        sa.Column("cooperating_departments", postgresql.ARRAY(sa.Text()), server_default=_EMPTY_ARRAY, nullable=False),
        sa.Column("responsible_department", sa.String(length=64), nullable=True),
        sa.Column("responsible_person", sa.Text(), nullable=True),
        sa.Column("measures", sa.Text(), nullable=True),
        sa.Column("funds_yuan", sa.Float(), nullable=True),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("deadline_source", sa.String(length=16), nullable=True),
        sa.Column("overdue", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("overdue_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remediation_by", sa.Text(), nullable=True),
        sa.Column("dismissed_reason", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default=_EMPTY_JSON, nullable=False),
        sa.Column("last_scan_id", sa.BigInteger(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_cases_geom", "cases", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={})
    op.create_index(op.f("ix_cases_premises_id"), "cases", ["premises_id"], unique=False)
    op.create_index(op.f("ix_cases_school_id"), "cases", ["school_id"], unique=False)
    op.create_index(op.f("ix_cases_district_adcode"), "cases", ["district_adcode"], unique=False)
    op.create_index(op.f("ix_cases_lead_department"), "cases", ["lead_department"], unique=False)
    op.create_index(
        "uq_cases_open_subject_rule",
        "cases",
        ["subject", "rule_id"],
        unique=True,
        postgresql_where=sa.text("state NOT IN ('closed', 'dismissed')"),
    )
    op.create_index("ix_cases_coop", "cases", ["cooperating_departments"], unique=False, postgresql_using="gin")
    op.create_index("ix_cases_state_deadline", "cases", ["state", "deadline"], unique=False)

    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default=_EMPTY_JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_case_events_case_id"), "case_events", ["case_id"], unique=False)

    op.create_table(
        "case_findings",
        sa.Column("case_id", sa.BigInteger(), sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("finding_id", sa.BigInteger(), nullable=False),
        sa.Column("scan_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "finding_id"),
    )
    op.create_index(op.f("ix_case_findings_scan_id"), "case_findings", ["scan_id"], unique=False)

    op.create_table(
        "inspection_plans",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("school_id", sa.BigInteger(), nullable=False),
        sa.Column("rhythm", sa.String(length=8), nullable=False),
        sa.Column("items", postgresql.ARRAY(sa.Text()), server_default=_EMPTY_ARRAY, nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_inspection_plans_school_id"), "inspection_plans", ["school_id"], unique=False)
    op.create_table(
        "inspection_records",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), sa.ForeignKey("inspection_plans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_by", sa.Text(), nullable=False),
        sa.Column("items_done", postgresql.ARRAY(sa.Text()), server_default=_EMPTY_ARRAY, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_inspection_records_plan_id"), "inspection_records", ["plan_id"], unique=False)

    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("district", sa.String(length=6), nullable=True),
        sa.Column("starts", sa.Date(), nullable=False),
        sa.Column("ends", sa.Date(), nullable=False),
        sa.Column("lead_department", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "campaign_checks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("premises_id", sa.BigInteger(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_by", sa.Text(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "premises_id", name="uq_campaign_checks_premises"),
    )
    op.create_index(op.f("ix_campaign_checks_campaign_id"), "campaign_checks", ["campaign_id"], unique=False)


def downgrade() -> None:
    op.drop_table("campaign_checks")
    op.drop_table("campaigns")
    op.drop_table("inspection_records")
    op.drop_table("inspection_plans")
    op.drop_table("case_findings")
    op.drop_table("case_events")
    op.drop_table("cases")
