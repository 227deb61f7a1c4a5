"""The city-wide scan: DESIGN's truth table, set-based in PostGIS, and the findings it stores.

A scan judges every registered premises against every campus near it, per permit × rule (and per
observed category with no permit: ``unlicensed``), in a handful of statements:

1. the rules in force per district arrive as data (a table, one row per adcode × rule);
2. ``scan_campus``: protected campuses with their geometry, in-use gates (a multipoint), review-band
   accuracy, point-only radius and the scaled plane they are measured in;
3. ``scan_cand``, one parallel statement: premises × campus pairs found through the GiST indexes (``_PAIRS``:
   premises points, premises footprints, or the campuses' own index for premises with a large reach), joined
   with what is judged at each premises (``_UNITS``) and the rules of its category and district, measured in
   the campus's scaled plane; pairs provably outside their rule's reach are dropped there;
4. the candidates near a decision threshold are measured again with the reference method (``geo.measure``),
   far ones in a plane scaled at their mid-latitude;
5. one ``INSERT … SELECT`` classifies (``prohibited`` / ``review`` / ``allowed`` as :func:`geo.decide.classify`)
   and maps the outcome through the truth table into the scan's own findings table.

Every function flushes into the caller's transaction; the caller commits. Rows leave as plain dicts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import ColumnElement, func, literal_column, select, text, update
from sqlalchemy.orm import Session

from geo.decide import RESOLUTION_M
from geo.errors import NotFound
from storage.bulk import copy_into_temp
from storage.models import (
    PASS1_SITE_ACCURACY_M,
    Finding,
    Scan,
    SchoolWarning,
    findings_partition,
    paired_apart,
    warnings_partition,
)
from storage.read import Page, district_filter

STATUSES = ("violation", "nonconforming", "review", "unlicensed")
#: A finding's key across scans (premises : permit or ``-`` : rule : campus), of a finding aliased ``n``: what a
#: school's warning names, and what tells a new finding from one the previous scan had
FINDING_KEY = "n.premises_id || ':' || coalesce(n.permit_id::text, '-') || ':' || n.rule_id || ':' || n.campus_id"
#: pg_advisory_xact_lock key held by a scan from its first statement: scans run one after another
_SCAN_LOCK = 7_303_140_915
# metres per degree, lower bounds on the WGS84 ellipsoid (equatorial radius; meridian radius at the equator)
_M_PER_DEG_LON_EQ = 111_319.49
_M_PER_DEG_LAT_MIN = 110_574.0
_SAFETY = 1.001
_A = 6_378_137.0
_E2 = 0.00669437999014
#: The scaled-plane distance is within 0.05 % of the geodesic one at zone scale; pairs whose approximate
#: distance exceeds the limit by more than this margin are certainly outside (no exact distance needed).
_APPROX_ABS_M = 2.0
_APPROX_REL = 0.005
_LEVEL_ALIASES = {"nine_year": ("primary", "junior"), "complete": ("junior", "senior")}


@dataclass(frozen=True)
class ScanRule:
    """One rule in force in one district, as the scan's SQL reads it.

    ``adcode`` None means a premises with no known district (national rules, ``jurisdiction_unknown``).
    ``distance_m`` None means the premises' own protection distance (``distance_source: business``).
    ``levels`` are the rule's levels; the aliases that cover them (``nine_year``, ``complete``) are added.
    """

    adcode: str | None
    rule_id: str
    category: str
    distance_m: float | None
    measure_from: str
    measure_to: str
    metric: str
    levels: tuple[str, ...]
    applies_new: bool
    existing: str
    effective_from: dt.date
    lead_department: str
    cooperating_departments: tuple[str, ...]
    jurisdiction_unknown: bool = False


@dataclass(frozen=True)
class ScanSettings:
    """The scan date (Asia/Shanghai), the default school accuracy and point-only campus radii."""

    on: dt.date
    school_accuracy_m: float
    campus_radius_m: Mapping[str, float]


_TEMP_TABLE = re.compile(r"CREATE TEMP TABLE (\w+)(.*?) ON COMMIT DROP", re.S)


def _sql(session: Session, statement: str) -> Any:
    """``statement`` as text; in a full scan its temporary tables become unlogged tables of the scan's own
    schema (``_working_schema``), which parallel workers can read."""
    if session.info.get("scan_work"):
        statement = _TEMP_TABLE.sub(r"CREATE UNLOGGED TABLE \1\2", statement)
    return text(statement)


def _parallel(session: Session, table: str) -> None:
    """Let a scan's small driving table be split between parallel workers (full scans only)."""
    if session.info.get("scan_work"):
        session.execute(text(f"ALTER TABLE {table} SET (parallel_workers = 2)"))


def _copy(session: Session, table: str, columns: Sequence[tuple[str, str]], rows: Any) -> None:
    copy_into_temp(session, table, columns, rows, unlogged=bool(session.info.get("scan_work")))


#: The premises' distinct districts, one index probe each (a skip scan of ``ix_premises_district_adcode``): a
#: ``SELECT DISTINCT`` reads every premises (0.08 s on the 1M city for its 8 districts).
_DISTRICTS = """
(WITH RECURSIVE d(code) AS (
    (SELECT district_adcode FROM premises WHERE district_adcode IS NOT NULL ORDER BY 1 LIMIT 1)
    UNION ALL
    SELECT (SELECT p.district_adcode FROM premises p WHERE p.district_adcode > d.code ORDER BY 1 LIMIT 1)
    FROM d WHERE d.code IS NOT NULL
)
SELECT code FROM d WHERE code IS NOT NULL
UNION ALL
SELECT NULL WHERE EXISTS (SELECT 1 FROM premises WHERE district_adcode IS NULL)) AS districts
"""


def premises_districts(session: Session, *, district: str | None = None) -> list[str | None]:
    """The distinct districts of the premises to scan (None for premises outside every district)."""
    code = literal_column("districts.code")
    stmt = select(code).select_from(text(_DISTRICTS))
    if district:
        stmt = stmt.where(district_filter(code, district))
    return list(session.scalars(stmt))


def create_scan(
    session: Session,
    *,
    pack_version: str,
    on: dt.date,
    district: str | None = None,
    token_id: int | None = None,
    actor: str | None = None,
    job_id: Any = None,
) -> int:
    """Start a scan record; returns its id.

    Waits first for a scan running in another transaction (``_SCAN_LOCK``, held until this one ends): attaching
    a scan's findings partition locks ``scans`` against new rows until the scan commits, so two scans that had
    both started would wait for each other.
    """
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCAN_LOCK})
    scan = Scan(
        pack_version=pack_version,
        scan_date=on,
        district=district,
        token_id=token_id,
        actor=actor,
        job_id=job_id,
        status="running",
    )
    scan.partition_later = True  # run_scan and finish_scan fill its findings' and warnings' tables, then attach them
    session.add(scan)
    session.flush()
    return scan.id


def _levels_with_aliases(levels: Sequence[str]) -> list[str]:
    out = list(levels)
    for alias, covered in _LEVEL_ALIASES.items():
        if set(covered) & set(levels):
            out.append(alias)
    return out


def _radius_rows(radii: Mapping[str, float]) -> list[tuple[str, float]]:
    rows = [(k, float(v)) for k, v in radii.items()]
    for alias, covered in _LEVEL_ALIASES.items():
        known = [float(radii[c]) for c in covered if c in radii]
        if known:
            rows.append((alias, max(known)))
    return rows


def _load_rules(session: Session, rules: Sequence[ScanRule]) -> None:
    _copy(
        session,
        "scan_rules",
        [("adcode", "text"), ("rule_id", "text"), ("category", "text"), ("distance_m", "float8"),
         ("measure_from", "text"), ("measure_to", "text"), ("metric", "text"), ("levels", "text[]"),
         ("applies_new", "boolean"), ("existing", "text"), ("effective_from", "date"), ("lead", "text"),
         ("coop", "text[]"), ("juris_unknown", "boolean")],
        ((r.adcode or "", r.rule_id, r.category, r.distance_m, r.measure_from, r.measure_to, r.metric,
          _levels_with_aliases(r.levels), r.applies_new, r.existing, r.effective_from, r.lead_department,
          list(r.cooperating_departments), r.jurisdiction_unknown) for r in rules),
    )  # fmt: skip


def _load_campuses(session: Session, settings: ScanSettings, campus_ids: Sequence[int] | None = None) -> None:
    _copy(session, "scan_radius", [("level", "text"), ("radius", "float8")], _radius_rows(settings.campus_radius_m))
    session.execute(text("DROP TABLE IF EXISTS scan_campus"))
    # a plane scaled so that a degree of longitude and of latitude have the same length at the campus:
    # k = N cos φ / M = cos φ (1 − e² sin² φ) / (1 − e²); metres per scaled degree = M π / 180.
    # Everything is computed in the CREATE: an UPDATE would leave HOT chains, and an index built on them
    # cannot be used by the transaction that built it. The rows go in Hilbert order (PostGIS's geometry
    # order), so that the campuses one worker probes the premises with lie near each other.
    session.execute(
        _sql(
            session,
            """
            CREATE TEMP TABLE scan_campus ON COMMIT DROP AS
            SELECT b.*, ST_Scale(b.geom, b.k, 1) AS gs, ST_Scale(b.gates_geom, b.k, 1) AS gates_s
            FROM (
                SELECT a.*, cos(radians(a.lat)) * (1 - :e2 * sin(radians(a.lat)) ^ 2) / (1 - :e2) AS k,
                       pi() / 180 * :a * (1 - :e2) / (1 - :e2 * sin(radians(a.lat)) ^ 2) ^ 1.5 AS mlat
                FROM (
                    SELECT c.id AS campus_id, s.id AS school_id, s.name AS school_name, s.levels, s.opened,
                           c.geom,
                           coalesce(c.accuracy_m, s.accuracy_m, :school_acc) AS acc,
                           (c.point_only OR GeometryType(c.geom) IN ('POINT', 'MULTIPOINT')) AS point_only,
                           coalesce((SELECT max(r.radius) FROM scan_radius r WHERE r.level = ANY (s.levels)),
                                    (SELECT r.radius FROM scan_radius r WHERE r.level = 'unknown'), 0) AS radius,
                           g.gates AS gates_geom,
                           :safety / (:m_lon * cos(radians(least(89.0, greatest(abs(ST_YMin(c.geom)),
                               abs(ST_YMax(c.geom))) + 0.05)))) AS kx,
                           ST_Y(ST_Centroid(c.geom)) AS lat
                    FROM campuses c
                    JOIN schools s ON s.id = c.school_id
                    LEFT JOIN LATERAL (SELECT ST_Collect(gt.geom) AS gates FROM gates gt
                                       WHERE gt.campus_id = c.id AND gt.in_use) g ON true
                    WHERE (s.closed IS NULL OR s.closed > :on)
                      AND (CAST(:ids AS bigint[]) IS NULL OR c.id = ANY(CAST(:ids AS bigint[])))
                ) a
            ) b
            ORDER BY b.geom
            """
        ),
        {"school_acc": settings.school_accuracy_m, "on": settings.on, "safety": _SAFETY, "m_lon": _M_PER_DEG_LON_EQ,
         "e2": _E2, "a": _A, "ids": None if campus_ids is None else list(campus_ids)},
    )  # fmt: skip
    _parallel(session, "scan_campus")
    session.execute(text("CREATE INDEX ON scan_campus USING gist (geom)"))
    session.execute(text("CREATE INDEX ON scan_campus (campus_id)"))
    # the row count is what the plans need; the geometry column's statistics took as long as the table's load
    session.execute(text("ANALYZE scan_campus (campus_id)"))


# --- candidates: every premises × campus pair near enough for some rule, joined with what is judged there ---
#
# The pairs come from three branches, each driven by the side with the index that suits it:
#   A. premises known by a point: each campus probes the premises' point index with its box grown by the
#      provably safe bound (metres per degree of longitude ≥ 111,319.49·cos φ_max, of latitude ≥ 110,574);
#   B. premises with a footprint that holds their point: each campus probes the footprints' index (a footprint
#      within the bound has its box within the grown box, and so has the point inside that box);
#   C. the rest (a large protection distance, a poor position, a point outside its footprint's box): each
#      probes the campus index with its own box grown by its own bound.
# Each pair carries the campus's scaled-plane geometries (a plane scaled so that a degree of longitude and of
# latitude have the same length at the campus) and what the findings need of the premises.
_PAIRS = """
SELECT p.id AS premises_id, coalesce(p.district_adcode, '')::text AS adcode,
       coalesce(p.accuracy_m, 0)::float8 AS site_acc, p.protection_distance_m AS protection,
       p.name AS pname, p.geom AS pgeom, p.footprint AS pfoot,
       c.campus_id, c.levels, c.acc, c.point_only, c.radius,
       c.gates_geom AS cgates, c.gs, c.gates_s, c.k, c.mlat
FROM scan_campus c
JOIN premises p ON p.geom && ST_Expand(c.geom, :bound1 * c.kx, :bound1 * :ky)
WHERE p.footprint IS NULL AND coalesce(p.accuracy_m, 0) <= :acc1 AND coalesce(p.protection_distance_m, 0) <= :d_max
  AND {district_p}
UNION ALL
SELECT p.id, coalesce(p.district_adcode, '')::text, coalesce(p.accuracy_m, 0)::float8, p.protection_distance_m,
       p.name, p.geom, p.footprint,
       c.campus_id, c.levels, c.acc, c.point_only, c.radius,
       c.gates_geom, c.gs, c.gates_s, c.k, c.mlat
FROM scan_campus c
JOIN premises p ON p.footprint && ST_Expand(c.geom, :bound1 * c.kx, :bound1 * :ky)
WHERE p.footprint ~ p.geom AND coalesce(p.accuracy_m, 0) <= :acc1 AND coalesce(p.protection_distance_m, 0) <= :d_max
  AND {district_p}
UNION ALL
SELECT p.id, coalesce(p.district_adcode, '')::text, coalesce(p.accuracy_m, 0)::float8, p.protection_distance_m,
       p.name, p.geom, p.footprint,
       c.campus_id, c.levels, c.acc, c.point_only, c.radius,
       c.gates_geom, c.gs, c.gates_s, c.k, c.mlat
FROM premises p
CROSS JOIN LATERAL (SELECT CASE WHEN p.footprint IS NULL THEN p.geom ELSE ST_Collect(p.footprint, p.geom) END AS shape,
                           greatest(:d_max, coalesce(p.protection_distance_m, 0)) + coalesce(p.accuracy_m, 0)
                             + :school_acc + :radius AS bound) b
JOIN scan_campus c ON c.geom && ST_Expand(ST_Envelope(b.shape),
        b.bound * :safety / (:m_lon * cos(radians(least(89.0, greatest(abs(ST_YMin(b.shape)), abs(ST_YMax(b.shape)))
                                                               + b.bound / :m_lat + 0.05)))),
        b.bound * :ky)
WHERE (coalesce(p.accuracy_m, 0) > :acc1 OR coalesce(p.protection_distance_m, 0) > :d_max
       OR (p.footprint IS NOT NULL AND NOT p.footprint ~ p.geom))
  AND ({paired_apart}) AND {district_p}
"""

#: What is judged at a premises: each permit of a regulated category (``active``: in force on the scan date),
#: and each observed category with no permit of it on record (``scan_unpermitted``). A permit not in force is
#: judged (as ``unlicensed``) only when no permit of its category at the premises is: that is settled among the
#: candidates (``_JUDGE``), where such an in-force permit meets the same campuses and rules.
_UNITS = """
SELECT pm.premises_id, pm.id AS permit_pk, pm.permit_id AS permit_no, pm.category::text AS category,
       (pm.status = 'active' AND (pm.expires IS NULL OR pm.expires >= :on)) AS active, pm.issued, pm.expires,
       CASE WHEN pm.status = 'active' AND (pm.expires IS NULL OR pm.expires >= :on) THEN NULL
            WHEN pm.status = 'active' THEN 'permit_expired'
            ELSE 'permit_' || pm.status END AS unit_flag
FROM permits pm {scope_pm}
WHERE pm.category = ANY (CAST(:categories AS text[]))
UNION ALL
SELECT premises_id, NULL, NULL, category, false, NULL, NULL, 'no_permit' FROM scan_unpermitted
"""

#: The observed categories with no permit of theirs at the premises, a statement of their own: the permits
#: looked up are those of the observed premises only, through the permits' premises index (within the units'
#: statement the planner hashed every permit for them: 0.2 s of the 1M city's candidates step).
_UNPERMITTED = """
CREATE TEMP TABLE scan_unpermitted ON COMMIT DROP AS
WITH observed AS MATERIALIZED (
    SELECT p.id AS premises_id, oc.cat AS category
    FROM premises p {scope_p}
    CROSS JOIN LATERAL unnest(p.categories) AS oc(cat)
    WHERE p.categories && CAST(:categories AS text[]) AND oc.cat = ANY (CAST(:categories AS text[]))
)
SELECT o.premises_id, o.category FROM observed o
WHERE NOT EXISTS (SELECT 1 FROM permits q
                  WHERE q.premises_id = ANY (ARRAY(SELECT DISTINCT premises_id FROM observed))
                    AND q.premises_id = o.premises_id AND q.category = o.category)
"""

# pairs × units (by premises) × rules (category, district): the scaled-plane distance of the rule's method
# (gates or boundary) to its target (point or footprint), the review band's parts, the flags, and the nearest
# points, found in the same plane (on the 1M city they lie within 0.2 mm of those found in a plane scaled at the
# premises' own latitude, and within 2 cm on footprints with edges parallel to the campus's, where the nearest
# point is not unique); pairs certainly outside their rule's reach are dropped (the approximation's error is far
# below the margin). Every expression stays in the one parallel plan: a lateral subquery computing a value once
# for its several uses is run by the leader alone, above the workers (0.3 s slower on the 1M city).
_CANDIDATES = """
CREATE TEMP TABLE scan_cand ON COMMIT DROP AS
SELECT pr.premises_id, pr.campus_id, pr.adcode, un.permit_pk, un.permit_no, un.active,
       un.issued, un.expires, r.rule_id, pr.pname, pr.pgeom, pr.pfoot, g.to_fp, g.method,
       ST_Distance(g.src_s, ST_Scale(g.dst, pr.k, 1)) * pr.mlat AS da, g.lim, g.u, g.rad,
       ((r.measure_from = 'gates' AND pr.cgates IS NULL) OR r.metric = 'walking') AS under,
       array_remove(ARRAY[
           CASE WHEN r.juris_unknown THEN 'jurisdiction_unknown' END,
           CASE WHEN r.measure_from = 'gates' AND pr.cgates IS NULL THEN 'gate_unknown' END,
           CASE WHEN r.metric = 'walking' THEN 'network_unavailable' END,
           CASE WHEN pr.point_only THEN 'school_point_only' END,
           CASE WHEN cardinality(pr.levels) = 0 THEN 'level_unknown' END,
           un.unit_flag,
           CASE WHEN un.active AND un.issued IS NULL THEN 'issue_date_unknown' END
       ], NULL) AS flags,
       ST_Scale(ST_ClosestPoint(g.src_s, ST_Scale(g.dst, pr.k, 1)), 1 / pr.k, 1) AS from_geom,
       CASE WHEN GeometryType(g.dst) = 'POINT' THEN g.dst
            ELSE ST_Scale(ST_ClosestPoint(ST_Scale(g.dst, pr.k, 1), g.src_s), 1 / pr.k, 1)
       END AS to_geom
FROM ({pairs}) pr
JOIN {units} un ON un.premises_id = pr.premises_id
JOIN scan_rules r ON r.category = un.category AND r.adcode = pr.adcode
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.measure_from = 'gates' AND pr.cgates IS NOT NULL THEN 'gates' ELSE 'boundary' END AS method,
           (r.measure_to = 'footprint' AND pr.pfoot IS NOT NULL) AS to_fp,
           CASE WHEN r.measure_from = 'gates' AND pr.cgates IS NOT NULL THEN pr.gates_s ELSE pr.gs END AS src_s,
           CASE WHEN r.measure_to = 'footprint' AND pr.pfoot IS NOT NULL THEN pr.pfoot ELSE pr.pgeom END AS dst,
           coalesce(r.distance_m, pr.protection) AS lim,
           pr.site_acc + pr.acc AS u,
           CASE WHEN pr.point_only THEN pr.radius ELSE 0 END AS rad
) g
WHERE (cardinality(pr.levels) = 0 OR pr.levels && r.levels)
  AND g.lim IS NOT NULL
  -- da ≤ lim + u + rad + abs + rel·da, as a test that stops at the first part within reach
  AND ST_DWithin(g.src_s, ST_Scale(g.dst, pr.k, 1), (g.lim + g.u + g.rad + :abs_m) / ((1 - :rel) * pr.mlat))
"""

# the pairs whose scaled-plane distance could fall on the other side of a decision threshold (lim − u,
# lim + u + rad), or that are beyond the mid-latitude plane's tested range: measured again with the reference
# method (geo.measure)
_NEAR_THRESHOLD = """
(abs(cd.da - (cd.lim - cd.u)) <= :band_abs + :band_sq * cd.da ^ 2
 OR abs(cd.da - (cd.lim + cd.u + cd.rad)) <= :band_abs + :band_sq * cd.da ^ 2)
"""
_PAIR_GEOMETRIES = """
FROM scan_cand cd
JOIN scan_campus c ON c.campus_id = cd.campus_id
CROSS JOIN LATERAL (SELECT CASE WHEN cd.method = 'gates' THEN c.gates_geom ELSE c.geom END AS src,
                           CASE WHEN cd.to_fp THEN cd.pfoot ELSE cd.pgeom END AS dst) g
"""
_TO_REFINE = f"""
SELECT DISTINCT ON (cd.premises_id, cd.campus_id, cd.method, cd.to_fp)
       cd.premises_id, cd.campus_id, cd.method, cd.to_fp, ST_AsBinary(g.src) AS src, ST_AsBinary(g.dst) AS dst
{_PAIR_GEOMETRIES}
WHERE {_NEAR_THRESHOLD} OR cd.da > :plane_max_m
"""

#: The distance between geometries ``src`` and ``dst`` (degrees, WGS84) in a plane scaled at the
#: mid-latitude φ of their nearest points: x = λ·k, y = φ, k = cos φ (1 − e² sin² φ) / (1 − e²), metres per
#: degree = M π / 180. The nearest points come from a first plane scaled at the mid-latitude of their
#: centroids. Within 3 km it agrees with the reference (geo.measure) to a few millimetres
#: (tests/storage/test_scan.py). Each level is computed once (OFFSET 0): flattened into one expression, every
#: use of a level's value repeats the levels below it (0.58 → 0.12 s for the 7,154 far pairs of the 1M city).
MIDLATITUDE_DISTANCE = """
(SELECT ST_Distance(ST_Scale(src, m.k, 1), ST_Scale(dst, m.k, 1))
        * pi() / 180 * 6378137.0 * (1 - 0.00669437999014) / (1 - 0.00669437999014 * sin(radians(m.lat)) ^ 2) ^ 1.5
 FROM (SELECT l.lat, cos(radians(l.lat)) * (1 - 0.00669437999014 * sin(radians(l.lat)) ^ 2)
                     / (1 - 0.00669437999014) AS k
       FROM (SELECT (ST_Y(ST_ClosestPoint(ST_Scale(src, f.k, 1), ST_Scale(dst, f.k, 1)))
                     + ST_Y(ST_ClosestPoint(ST_Scale(dst, f.k, 1), ST_Scale(src, f.k, 1)))) / 2 AS lat
             FROM (SELECT cos(radians(c.lat)) * (1 - 0.00669437999014 * sin(radians(c.lat)) ^ 2)
                          / (1 - 0.00669437999014) AS k
                   FROM (SELECT (ST_Y(ST_Centroid(src)) + ST_Y(ST_Centroid(dst))) / 2 AS lat OFFSET 0) c
                   OFFSET 0) f
             OFFSET 0) l
       OFFSET 0) m)
"""

# far pairs (beyond _FAR_M, within _PLANE_MAX_M) not near a threshold: the reported distance from the
# mid-latitude plane (the decision is already certain; the campus plane's error there may exceed a centimetre)
_FAR = f"""
CREATE TEMP TABLE scan_far ON COMMIT DROP AS
SELECT DISTINCT ON (cd.premises_id, cd.campus_id, cd.method, cd.to_fp)
       cd.premises_id, cd.campus_id, cd.method, cd.to_fp,
       {MIDLATITUDE_DISTANCE.replace("src", "g.src").replace("dst", "g.dst")} AS d
{_PAIR_GEOMETRIES}
WHERE cd.da > :far_m AND cd.da <= :plane_max_m AND NOT {_NEAR_THRESHOLD}
"""

# the candidates with their distances (reference near the thresholds, mid-latitude plane when far), classified
# (geo.decide.classify) and mapped through the truth table (OFFSET 0: each level computed once per row, not
# inlined into every expression that uses it); a permit not in force is dropped where a permit in
# force of its category at the premises meets the same campus and rule
_JUDGE = """
INSERT INTO {table} (scan_id, premises_id, permit_id, permit_no, premises_name, rule_id, category, status,
                      due_date, school_id, school_name, campus_id, distance_m, limit_m, u_m, margin_m, method,
                      district_adcode, lead_department, cooperating_departments, flags, geom, from_geom, to_geom)
SELECT :scan_id, y.premises_id, y.permit_pk, y.permit_no, y.pname, y.rule_id, y.category, y.status,
       CASE WHEN y.status = 'nonconforming' AND y.existing = 'not_renewed' THEN y.expires END,
       y.school_id, y.school_name, y.campus_id, y.d, y.lim, y.u, y.d - y.lim, y.method,
       nullif(y.adcode, ''), y.lead, y.coop, y.flags, y.pgeom, y.from_geom, y.to_geom
FROM (
    SELECT x.*,
           CASE WHEN x.outcome = 'review' THEN 'review'
                WHEN NOT x.active THEN 'unlicensed'
                WHEN x.issued IS NULL THEN 'review'
                WHEN x.issued >= greatest(x.effective_from, x.opened) THEN
                     CASE WHEN x.applies_new THEN 'violation' END
                WHEN x.existing = 'prohibited' THEN 'violation'
                ELSE 'nonconforming' END AS status
    FROM (
        SELECT w.*,
               CASE WHEN w.d - :res > w.lim + w.u + w.rad THEN 'allowed'
                    WHEN NOT w.under AND w.d - :res <= w.lim - w.u THEN 'prohibited'
                    ELSE 'review' END AS outcome
        FROM (
            SELECT cd.*, coalesce(ex.d, fa.d, cd.da) AS d, r.category, r.applies_new, r.existing, r.effective_from,
                   r.lead, r.coop, c.school_id, c.school_name, c.opened
            FROM scan_cand cd
            JOIN scan_rules r ON r.rule_id = cd.rule_id AND r.adcode = cd.adcode
            JOIN scan_campus c ON c.campus_id = cd.campus_id
            LEFT JOIN scan_exact ex ON ex.premises_id = cd.premises_id AND ex.campus_id = cd.campus_id
                                   AND ex.method = cd.method AND ex.to_fp = cd.to_fp
            LEFT JOIN scan_far fa ON fa.premises_id = cd.premises_id AND fa.campus_id = cd.campus_id
                                 AND fa.method = cd.method AND fa.to_fp = cd.to_fp
            WHERE cd.active
               OR (cd.premises_id, cd.campus_id, cd.rule_id) NOT IN (SELECT a.premises_id, a.campus_id, a.rule_id
                                                                     FROM scan_cand a WHERE a.active)
        ) w
        OFFSET 0
    ) x
    WHERE x.outcome <> 'allowed'
    OFFSET 0
) y
WHERE y.status IS NOT NULL
"""

#: Near a threshold pairs are measured again with the reference method. The campus plane's error grows as
#: d²: about 0.5·d²/R at 25° N (7 mm at 300 m; tested against ``geo.measure``), at most d²/R at 45°; the band
#: is twice that and 2 cm more. Beyond ``_FAR_M`` the reported distance comes from the mid-latitude plane
#: (``MIDLATITUDE_DISTANCE``), beyond ``_PLANE_MAX_M`` from the reference method.
_BAND_ABS_M = 0.02
_BAND_SQ = 2.0 / 6_371_000.0
_FAR_M = 400.0
_PLANE_MAX_M = 3_000.0


def _like(district: str | None) -> str | None:
    if district is None:
        return None
    if district.endswith("0000"):
        return district[:2] + "%"
    if district.endswith("00"):
        return district[:4] + "%"
    return district


def _pair_params(session: Session, district: str | None) -> dict[str, Any]:
    """The search bounds of the campuses in ``scan_campus`` under the rules in ``scan_rules``."""
    limits = session.execute(
        text(
            """
            SELECT (SELECT coalesce(max(distance_m), 0) FROM scan_rules),
                   (SELECT coalesce(max(acc), 0) FROM scan_campus),
                   (SELECT coalesce(max(radius) FILTER (WHERE point_only), 0) FROM scan_campus),
                   (SELECT coalesce(array_agg(DISTINCT category), '{}') FROM scan_rules)
            """
        )
    ).one()
    d_max, school_acc, radius = (float(v) for v in limits[:3])
    return {
        "bound1": d_max + PASS1_SITE_ACCURACY_M + school_acc + radius,
        "ky": _SAFETY / _M_PER_DEG_LAT_MIN,
        "acc1": PASS1_SITE_ACCURACY_M,
        "d_max": d_max,
        "school_acc": school_acc,
        "radius": radius,
        "safety": _SAFETY,
        "m_lon": _M_PER_DEG_LON_EQ,
        "m_lat": _M_PER_DEG_LAT_MIN,
        "district_like": _like(district),
        "categories": list(limits[3]),
    }


def _units_sql(session: Session, params: Mapping[str, Any], scope: str | None) -> str:
    """``_UNITS`` for every premises, or for those ``scope`` joins in (``{}``: the premises id column); makes the
    ``scan_unpermitted`` table it reads."""
    session.execute(text("DROP TABLE IF EXISTS scan_unpermitted"))
    session.execute(_sql(session, _UNPERMITTED.replace("{scope_p}", scope.format("p.id") if scope else "")), params)
    return _UNITS.replace("{scope_pm}", scope.format("pm.premises_id") if scope else "")


def _pairs_sql(district: str | None) -> str:
    # the premises paired apart are read through their partial index, whose predicate (implied by the pass's own
    # condition, whatever its parameters) is written out as such: the 1M city's 50,124 premises with a protection
    # distance, not a scan of all of them (0.9 s)
    return _PAIRS.replace("{paired_apart}", paired_apart("p")).replace(
        "{district_p}", "true" if district is None else "p.district_adcode LIKE CAST(:district_like AS text)"
    )


def _candidates(session: Session, params: Mapping[str, Any], *, district: str | None, units: str) -> int:
    """``scan_cand``: the candidates of the campuses in ``scan_campus`` (``units``: the units' subquery or table);
    returns how many."""
    session.execute(text("DROP TABLE IF EXISTS scan_cand"))
    # the joins in the order written: pairs × units (by premises) × rules (category, district); left to itself
    # the planner multiplies pairs by every rule of their district first
    session.execute(text("SET LOCAL join_collapse_limit = 1"))
    statement = _CANDIDATES.replace("{pairs}", _pairs_sql(district)).replace("{units}", units)
    n = session.execute(_sql(session, statement), {**params, "abs_m": _APPROX_ABS_M, "rel": _APPROX_REL}).rowcount
    session.execute(text("RESET join_collapse_limit"))
    # the judge's plans need the row count and rough shares (a sample of 3,000 rows, not 30,000: the same plans
    # on the 1M city, 0.11 → 0.02 s)
    session.execute(text("SET LOCAL default_statistics_target = 10"))
    session.execute(text("ANALYZE scan_cand (premises_id, campus_id, rule_id, active, da)"))
    session.execute(text("RESET default_statistics_target"))
    return int(n)


def _refine(session: Session) -> int:
    """Measure the pairs near a threshold with the reference method (``scan_exact``), and the far ones in the
    mid-latitude plane (``scan_far``); returns how many were measured with the reference method."""
    from geo.measure import distance_to_gates, distance_to_outline

    params = {"band_abs": _BAND_ABS_M, "band_sq": _BAND_SQ, "far_m": _FAR_M, "plane_max_m": _PLANE_MAX_M}
    rows = session.execute(text(_TO_REFINE), params).all()
    out = []
    for r in rows:
        src = shapely.from_wkb(bytes(r.src))
        dst = shapely.from_wkb(bytes(r.dst))
        if r.method == "gates":
            d = distance_to_gates(dst, list(getattr(src, "geoms", [src])))[1].distance_m
        else:
            d = distance_to_outline(dst, src).distance_m
        out.append((r.premises_id, r.campus_id, r.method, r.to_fp, d))
    _copy(
        session,
        "scan_exact",
        [("premises_id", "bigint"), ("campus_id", "bigint"), ("method", "text"), ("to_fp", "boolean"),
         ("d", "float8")],
        out,
    )  # fmt: skip
    session.execute(text("DROP TABLE IF EXISTS scan_far"))
    session.execute(_sql(session, _FAR), params)
    session.execute(text("ANALYZE scan_far"))
    return len(out)


def _judge(session: Session, scan_id: int, timings: dict[str, float], *, table: str = "findings") -> int:
    """Reference distances near the thresholds, then the findings of ``scan_cand`` (into ``table``); returns how
    many pairs were refined."""
    t1 = time.perf_counter()
    refined = _refine(session)
    timings["refine_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    session.execute(text(_JUDGE.replace("{table}", table)), {"scan_id": scan_id, "res": RESOLUTION_M})
    timings["judge_s"] = time.perf_counter() - t2
    return refined


@contextmanager
def _working_schema(session: Session, scan_id: int) -> Iterator[None]:
    """The scan's working tables as unlogged tables in a schema of its own, first in the search path (dropped
    before the scan commits, gone with it if it fails), so that PostgreSQL's parallel workers can share the
    large statements; temporary tables are out of their reach."""
    work = f"scan_work_{int(scan_id)}"
    session.execute(text(f"CREATE SCHEMA {work}"))
    session.execute(text(f"SET LOCAL search_path = {work}, public"))
    session.info["scan_work"] = work
    try:
        yield
    finally:
        session.info.pop("scan_work", None)
    session.execute(text(f"DROP SCHEMA {work} CASCADE"))
    session.execute(text("SET LOCAL search_path TO DEFAULT"))


def run_scan(session: Session, scan_id: int, rules: Sequence[ScanRule], *, settings: ScanSettings,
             district: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Judge every premises (of ``district``, or all) and store the findings of scan ``scan_id``.

    Returns the scan's counts: by status, by category, by status × category, the candidates judged (premises ×
    unit × rule × campus within the rule's reach), the pairs refined with the reference method, the search
    bound and the seconds each step took.
    """
    timings: dict[str, float] = {}
    # the findings go into a table of their own, indexed in one pass per index when it is attached as the
    # scan's partition (maintaining its indexes row by row cost twice as long as judging); it is made
    # before the working schema comes first in the search path
    table, create, attach = findings_partition(scan_id)
    session.execute(text(create))
    with _working_schema(session, scan_id):
        t0 = time.perf_counter()
        _load_rules(session, rules)
        _load_campuses(session, settings)
        params = _pair_params(session, district)
        timings["prepare_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        # a full scan reads the units straight from the permits, inside the one parallel statement
        params["on"] = settings.on
        units = "(" + _units_sql(session, params, None) + ")"
        candidates = _candidates(session, params, district=district, units=units)
        timings["candidates_s"] = time.perf_counter() - t1
        refined = _judge(session, scan_id, timings, table=table)
    t3 = time.perf_counter()
    session.execute(text(attach))
    timings["store_s"] = time.perf_counter() - t3
    counts = _counts(session, scan_id)
    counts.update(
        candidates=candidates,
        refined=refined,
        bound_m=round(params["bound1"], 3),
        timings={k: round(v, 3) for k, v in timings.items()},
    )
    return counts


def _counts(session: Session, scan_id: int) -> dict[str, Any]:
    rows = session.execute(
        select(Finding.status, Finding.category, func.count())
        .where(Finding.scan_id == scan_id)
        .group_by(Finding.status, Finding.category)
    ).all()
    by_status: dict[str, int] = {}
    by_category: dict[str, int] = {}
    table: dict[str, dict[str, int]] = {}
    for status, category, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        by_category[category] = by_category.get(category, 0) + n
        table.setdefault(status, {})[category] = n
    return {"total": sum(by_status.values()), "by_status": by_status, "by_category": by_category, "table": table}


def previous_scan_id(session: Session, scan_id: int) -> int | None:
    """The latest finished scan before ``scan_id`` over the same district."""
    scan = _scan(session, scan_id)
    stmt = (
        select(Scan.id)
        .where(Scan.id < scan_id, Scan.status == "done", Scan.district.is_not_distinct_from(scan.district))
        .order_by(Scan.id.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def _hash_joins(session: Session, *, on: bool = True) -> None:
    """Join by hashing only (``on``), or let the planner choose again."""
    if on:
        session.execute(text("SET LOCAL enable_nestloop = off"))
        session.execute(text("SET LOCAL enable_mergejoin = off"))
    else:
        session.execute(text("RESET enable_nestloop"))
        session.execute(text("RESET enable_mergejoin"))


def finish_scan(session: Session, scan_id: int, counts: dict[str, Any]) -> dict[str, Any]:
    """Mark the scan done, warn the schools of findings new since the previous scan; returns the counts."""
    prev = previous_scan_id(session, scan_id)
    # the warnings go into a table of their own, attached when full: the scan key is checked once for all of
    # them, and the indexes are built in one pass each (a first scan of the 1M city warns of 370,519 findings)
    table, create, attach = warnings_partition(scan_id)
    session.execute(text(create))
    insert = f"INSERT INTO {table} (school_id, scan_id, finding_id, finding_key) "
    if prev is None:
        # the first scan: every finding is new
        result = session.execute(
            text(f"{insert} SELECT n.school_id, n.scan_id, n.id, {FINDING_KEY} FROM findings n WHERE n.scan_id = :s"),
            {"s": scan_id},
        )
    else:
        # the scans' rows are rarely in the table's statistics yet (estimated at one row each), so the planner
        # would pick a nested loop or a merge on one key — comparing every pair of rows (minutes at city scale):
        # hash the previous scan's keys, whatever the estimates. The new findings are found first and inserted
        # apart: PostgreSQL 15 runs an INSERT … SELECT in one process, a CREATE TABLE … AS in parallel (0.46 →
        # 0.36 s on the 1M city, where a rescan finds none)
        _hash_joins(session)
        session.execute(text("DROP TABLE IF EXISTS scan_new_findings"))
        session.execute(
            text(
                f"""
                CREATE TEMP TABLE scan_new_findings ON COMMIT DROP AS
                SELECT n.school_id, n.scan_id, n.id, {FINDING_KEY} AS finding_key
                FROM findings n
                WHERE n.scan_id = :scan
                  AND NOT EXISTS (SELECT 1 FROM findings o
                                  WHERE o.scan_id = :prev AND o.premises_id = n.premises_id
                                    AND coalesce(o.permit_id, -1) = coalesce(n.permit_id, -1)
                                    AND o.rule_id = n.rule_id AND o.campus_id = n.campus_id)
                """
            ),
            {"scan": scan_id, "prev": prev},
        )
        _hash_joins(session, on=False)
        result = session.execute(text(f"{insert} SELECT school_id, scan_id, id, finding_key FROM scan_new_findings"))
    session.execute(text(attach))
    counts = dict(counts, warnings=result.rowcount, previous_scan=prev)
    session.execute(
        update(Scan).where(Scan.id == scan_id).values(status="done", finished_at=func.clock_timestamp(), counts=counts)
    )
    session.flush()
    return counts


def _scan(session: Session, scan_id: int) -> Scan:
    scan = session.get(Scan, scan_id)
    if scan is None:
        msg = f"no scan with id {scan_id}"
        raise NotFound(msg, field="id", value=scan_id, message_zh=f"未找到排查 {scan_id}")
    return scan


def get_scan(session: Session, scan_id: int) -> dict[str, Any]:
    scan = _scan(session, scan_id)
    return {
        "id": scan.id,
        "status": scan.status,
        "started_at": scan.started_at.isoformat(),
        "finished_at": scan.finished_at.isoformat() if scan.finished_at else None,
        "scan_date": scan.scan_date.isoformat(),
        "district": scan.district,
        "pack_version": scan.pack_version,
        "counts": scan.counts,
        "actor": scan.actor,
        "job_id": str(scan.job_id) if scan.job_id else None,
        "previous_scan": previous_scan_id(session, scan.id),
    }


def latest_scan_id(session: Session) -> int:
    scan_id = session.scalar(select(Scan.id).where(Scan.status == "done").order_by(Scan.id.desc()).limit(1))
    if scan_id is None:
        msg = "no scan has been run yet: run `safezone scan` or POST /v1/scans"
        raise NotFound(msg, field="scan", message_zh="尚未进行排查：请运行 `safezone scan` 或 POST /v1/scans")
    return scan_id


def _finding_dict(f: Finding, geo: tuple[str, str, str]) -> dict[str, Any]:
    site, src, dst = (json.loads(g) for g in geo)
    return {
        "id": f.id,
        "geometry": site,
        "properties": {
            "scan_id": f.scan_id,
            "premises_id": f.premises_id,
            "premises_name": f.premises_name,
            "permit_id": f.permit_id,
            "permit_no": f.permit_no,
            "rule_id": f.rule_id,
            "category": f.category,
            "status": f.status,
            "due_date": f.due_date.isoformat() if f.due_date else None,
            "school_id": f.school_id,
            "school_name": f.school_name,
            "campus_id": f.campus_id,
            "distance_m": round(f.distance_m, 3),
            "limit_m": f.limit_m,
            "u_m": f.u_m,
            "margin_m": round(f.margin_m, 3),
            "method": f.method,
            "district": f.district_adcode,
            "lead_department": f.lead_department,
            "cooperating_departments": list(f.cooperating_departments or []),
            "flags": list(f.flags or []),
            "from": src["coordinates"],
            "to": dst["coordinates"],
        },
    }


def _geo_cols() -> tuple[Any, Any, Any]:
    return (
        func.ST_AsGeoJSON(Finding.geom, 9),
        func.ST_AsGeoJSON(Finding.from_geom, 9),
        func.ST_AsGeoJSON(Finding.to_geom, 9),
    )


def list_findings(
    session: Session,
    *,
    scan_id: int | None = None,
    status: str | None = None,
    category: str | None = None,
    rule: str | None = None,
    district: str | None = None,
    school: int | None = None,
    department: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> tuple[int, Page]:
    """Findings of a scan (the latest by default), filtered, in id order; returns (scan id, page)."""
    scan_id = latest_scan_id(session) if scan_id is None else _scan(session, scan_id).id
    conds: list[ColumnElement[bool]] = [Finding.scan_id == scan_id]
    if status:
        conds.append(Finding.status == status)
    if category:
        conds.append(Finding.category == category)
    if rule:
        conds.append(Finding.rule_id == rule)
    if district:
        conds.append(district_filter(Finding.district_adcode, district))
    if school is not None:
        conds.append(Finding.school_id == school)
    if department:
        conds.append((Finding.lead_department == department) | Finding.cooperating_departments.any(department))
    if after is not None:
        conds.append(Finding.id > after)
    rows = session.execute(select(Finding, *_geo_cols()).where(*conds).order_by(Finding.id).limit(limit + 1)).all()
    more = len(rows) > limit
    feats = [_finding_dict(r[0], (r[1], r[2], r[3])) for r in rows[:limit]]
    return scan_id, Page(feats, feats[-1]["id"] if more and feats else None)


def scan_diff(session: Session, scan_id: int) -> dict[str, Any]:
    """Findings that appeared in ``scan_id`` and disappeared since the previous scan (same key)."""
    _scan(session, scan_id)
    prev = previous_scan_id(session, scan_id)
    out: dict[str, Any] = {"scan_id": scan_id, "previous_scan": prev}
    _hash_joins(session)  # see finish_scan
    for name, new, old in (("appeared", scan_id, prev), ("disappeared", prev, scan_id)):
        if new is None:
            out[name] = []
            continue
        ids = session.scalars(
            text(
                """
                SELECT n.id FROM findings n
                WHERE n.scan_id = :new
                  AND NOT EXISTS (SELECT 1 FROM findings o
                                  WHERE o.scan_id = :old AND o.premises_id = n.premises_id
                                    AND coalesce(o.permit_id, -1) = coalesce(n.permit_id, -1)
                                    AND o.rule_id = n.rule_id AND o.campus_id = n.campus_id)
                ORDER BY n.id
                """
            ),
            {"new": new, "old": old if old is not None else -1},
        ).all()
        stmt = select(Finding, *_geo_cols()).where(Finding.scan_id == new, Finding.id.in_(ids)).order_by(Finding.id)
        out[name] = [_finding_dict(r[0], (r[1], r[2], r[3])) for r in session.execute(stmt).all()]
    _hash_joins(session, on=False)
    out["counts"] = {"appeared": len(out["appeared"]), "disappeared": len(out["disappeared"])}
    return out


def school_warnings(session: Session, school_id: int) -> list[dict[str, Any]]:
    """The warnings sent to a school, newest first, with the finding each is about."""
    rows = session.execute(
        select(SchoolWarning, Finding, *_geo_cols())
        .outerjoin(Finding, Finding.id == SchoolWarning.finding_id)
        .where(SchoolWarning.school_id == school_id)
        .order_by(SchoolWarning.id.desc())
    ).all()
    out = []
    for w, f, *geo in rows:
        item = {
            "id": w.id,
            "school_id": w.school_id,
            "scan_id": w.scan_id,
            "finding_key": w.finding_key,
            "created_at": w.created_at.isoformat(),
            "acknowledged_at": w.acknowledged_at.isoformat() if w.acknowledged_at else None,
            "finding": _finding_dict(f, tuple(geo)) if f is not None else None,  # type: ignore[arg-type]
        }
        out.append(item)
    return out


# --- incremental re-evaluation (school, campus and gate edits) ----------------------------------------


def judge_campuses(
    session: Session,
    scan_id: int,
    rules: Sequence[ScanRule],
    *,
    settings: ScanSettings,
    campus_ids: Sequence[int],
    district: str | None = None,
) -> dict[str, Any]:
    """Judge the premises near ``campus_ids`` against those campuses only and add the findings to ``scan_id``.

    The same steps as :func:`run_scan` — the same campus table, pairing and ``_JUDGE`` statement — with the
    campus table cut down to the given campuses, so the premises paired are only those within the search
    bound (largest D + u + R, and the pass-1 site-accuracy allowance) of their current geometry (and in
    ``district``, when the scan was of one district). A finding is per premises × permit × rule × campus, so
    those campuses' findings depend on nothing else.

    Returns the pairs measured and the ids of the premises evaluated.
    """
    _load_rules(session, rules)
    _load_campuses(session, settings, campus_ids)
    params = {**_pair_params(session, district), "on": settings.on}
    # the few premises near these campuses first, then what is judged at them, then the scan's own statement
    session.execute(text("DROP TABLE IF EXISTS scan_pairs"))
    pairs_sql = _pairs_sql(district)
    session.execute(
        text(f"CREATE TEMP TABLE scan_pairs ON COMMIT DROP AS SELECT premises_id, campus_id FROM ({pairs_sql}) p"),
        params,
    )
    pairs = session.execute(text("SELECT count(*) FROM scan_pairs")).scalar_one()
    premises_ids = list(session.scalars(text("SELECT DISTINCT premises_id FROM scan_pairs ORDER BY 1")))
    session.execute(text("DROP TABLE IF EXISTS scan_units"))
    scoped = _units_sql(session, params, "JOIN (SELECT DISTINCT premises_id FROM scan_pairs) sc ON sc.premises_id = {}")
    session.execute(text(f"CREATE TEMP TABLE scan_units ON COMMIT DROP AS {scoped}"), params)
    session.execute(text("CREATE INDEX ON scan_units (premises_id)"))
    session.execute(text("ANALYZE scan_units"))
    _candidates(session, params, district=district, units="scan_units")
    _judge(session, scan_id, {})
    return {"pairs": int(pairs), "premises_ids": premises_ids}


def findings_by_ids(session: Session, ids: Sequence[int], *, scan_id: int | None = None) -> list[dict[str, Any]]:
    """Findings as the API shows them (GeoJSON-like dicts), in id order; ``scan_id`` reads that scan's
    partition only."""
    if not ids:
        return []
    conds = [Finding.id.in_(list(ids))] + ([Finding.scan_id == scan_id] if scan_id is not None else [])
    rows = session.execute(select(Finding, *_geo_cols()).where(*conds).order_by(Finding.id)).all()
    return [_finding_dict(r[0], (r[1], r[2], r[3])) for r in rows]


def refresh_counts(session: Session, scan_id: int, **extra: Any) -> dict[str, Any]:
    """Recount a scan's findings after an edit patched them; keeps the scan's other counts, adds ``extra``."""
    scan = _scan(session, scan_id)
    counts = dict(scan.counts or {}, **_counts(session, scan_id), **extra)
    session.execute(update(Scan).where(Scan.id == scan_id).values(counts=counts))
    session.flush()
    return counts


# --- retention: each full scan keeps a partition of findings (155 MB on the 1M-premises demo city) ---

_PRUNABLE = """
SELECT s.id, s.scan_date, s.district, s.status, coalesce((s.counts ->> 'total')::bigint, 0) AS findings,
       coalesce(pg_total_relation_size(to_regclass('findings_s' || s.id)), 0)
         + coalesce(pg_total_relation_size(to_regclass('school_warnings_s' || s.id)), 0) AS bytes
FROM scans s
WHERE s.status = 'done'
  -- the latest :keep of each scope (the city, or a district): a scan's diff compares it with the one before
  AND s.id NOT IN (SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY district ORDER BY id DESC) AS n
                                   FROM scans WHERE status = 'done') k
                   WHERE k.n <= :keep)
  -- the evidence of the ledger's cases
  AND NOT EXISTS (SELECT 1 FROM case_findings cf WHERE cf.scan_id = s.id)
  AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.last_scan_id = s.id)
ORDER BY s.id
"""


def prune_scans(session: Session, *, keep: int, dry_run: bool = False) -> list[dict[str, Any]]:
    """Drop finished scans beyond the latest ``keep`` of each scope (the city, or each district scanned alone),
    except those a ledger case cites, with their findings' and warnings' partitions; returns what was (or, with
    ``dry_run``, would be) dropped: id, date, district, findings, bytes.

    Waits for a running scan (``_SCAN_LOCK``). Dropping a partition locks its parent table for a moment.
    """
    if keep < 1:
        msg = f"keep must be at least 1 (the latest scan stays), not {keep}"
        raise ValueError(msg)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCAN_LOCK})
    rows = [dict(r._mapping) for r in session.execute(text(_PRUNABLE), {"keep": keep})]
    if dry_run:
        return rows
    for r in rows:
        n = int(r["id"])
        session.execute(text(f"DROP TABLE IF EXISTS findings_s{n}, school_warnings_s{n}"))
    if rows:
        # rows of scans that predate the partitions (findings_legacy) go with them (ON DELETE CASCADE)
        session.execute(text("DELETE FROM scans WHERE id = ANY(:ids)"), {"ids": [r["id"] for r in rows]})
    return rows
