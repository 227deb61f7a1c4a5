"""premises counted per grid cell and district (zooms 8–13), read by the low-zoom premises tiles

Revision ID: 0009_premises_grid
Revises: 0008_ledger_levels
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_premises_grid"
down_revision = "0008_ledger_levels"
branch_labels = None
depends_on = None

# The fill as this revision defines the grid (storage/premises_grid.py keeps it up to date afterwards):
# the finest cells (zoom 13, cell = tile at zoom 18) from the premises, then each zoom from the one below.
_HALF = 20037508.342789244
_CELL = 2 * _HALF / 2**18
_FINEST = """
INSERT INTO premises_grid (zoom, cx, cy, district_adcode, premises, unlicensed, categories, x, y)
WITH perm AS (
    SELECT premises_id, (array_agg(category ORDER BY id))[1] AS category, bool_or(status = 'active') AS active
    FROM permits GROUP BY premises_id
), pts AS (
    SELECT floor((d.mx + :half) / :cell)::integer AS cx, floor((:half - d.my) / :cell)::integer AS cy,
           d.district_adcode, d.category, d.unlicensed, d.mx, d.my
    FROM (SELECT COALESCE(p.district_adcode, '') AS district_adcode,
                 COALESCE(p.categories[1], perm.category, 'other') AS category,
                 NOT COALESCE(perm.active, false) AS unlicensed,
                 ST_X(p.geom) * :half / 180.0 AS mx,
                 ln(tan(radians(45.0 + LEAST(GREATEST(ST_Y(p.geom), -85.0511287798), 85.0511287798) / 2.0)))
                     * 6378137.0 AS my
          FROM premises p LEFT JOIN perm ON perm.premises_id = p.id) d
)
SELECT 13, cx, cy, district_adcode, sum(n), sum(u), jsonb_object_agg(category, n), sum(sx) / sum(n), sum(sy) / sum(n)
FROM (SELECT cx, cy, district_adcode, category, count(*) AS n, count(*) FILTER (WHERE unlicensed) AS u,
             sum(mx) AS sx, sum(my) AS sy
      FROM pts GROUP BY cx, cy, district_adcode, category) c
GROUP BY cx, cy, district_adcode
"""
_COARSER = """
INSERT INTO premises_grid (zoom, cx, cy, district_adcode, premises, unlicensed, categories, x, y)
SELECT CAST(:zoom AS smallint), f.cx >> 1, f.cy >> 1, f.district_adcode, sum(f.premises), sum(f.unlicensed),
       (SELECT jsonb_object_agg(kv.key, kv.n) FROM (
            SELECT e.key, sum(e.value::integer) AS n
            FROM unnest(array_agg(f.categories)) AS c(counts), jsonb_each_text(c.counts) AS e
            GROUP BY e.key) kv),
       sum(f.premises * f.x) / sum(f.premises), sum(f.premises * f.y) / sum(f.premises)
FROM premises_grid f WHERE f.zoom = :zoom + 1 GROUP BY 2, 3, 4
"""


def upgrade() -> None:
    op.create_table(
        "premises_grid",
        sa.Column("zoom", sa.SmallInteger(), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False),
        sa.Column("cy", sa.Integer(), nullable=False),
        sa.Column("district_adcode", sa.String(length=6), nullable=False),
        sa.Column("premises", sa.Integer(), nullable=False),
        sa.Column("unlicensed", sa.Integer(), nullable=False),
        sa.Column("categories", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("zoom", "cx", "cy", "district_adcode"),
    )
    op.create_index("ix_premises_grid_tile", "premises_grid", ["zoom", sa.text("(cx >> 5)"), sa.text("(cy >> 5)")])
    bind = op.get_bind()
    bind.execute(sa.text(_FINEST), {"half": _HALF, "cell": _CELL})
    for zoom in range(12, 7, -1):
        bind.execute(sa.text(_COARSER), {"zoom": zoom})
    op.execute("ANALYZE premises_grid")


def downgrade() -> None:
    op.drop_index("ix_premises_grid_tile", table_name="premises_grid")
    op.drop_table("premises_grid")
