"""Premises counted per grid cell: what the premises tiles draw below zoom 14 (table ``premises_grid``).

A cell at tile zoom ``z`` is the tile ``(z + 5, cx, cy)`` of the Web-Mercator pyramid, so a tile holds
32 × 32 cells. For every zoom from :data:`COARSEST_ZOOM` to :data:`FINEST_ZOOM`, cell and district, a
row holds how many premises lie in the cell, how many of them have no active permit on record
(``unlicensed``), their count per category (the category the premises tiles show: the first observed
one, else the first permit's, else ``other``) and their mean Web-Mercator position, where the cell is
drawn. Premises outside every district count under the district ``''``.

The table is kept up to date set-based, inside the transaction that changes the premises, and never by
row triggers (those made imports about ten times slower):

* imports :func:`mark` the cells they change — the old and the new position of every premises they
  insert or change, the premises whose permits or district they change — and
  ``storage.imports.finish_batch`` calls :func:`refresh` before the import commits;
* single-row ORM writes of premises and permits (a patrol's field report) mark their cells from mapper
  events, and the cells are refreshed at the end of the flush (the listeners are registered when this
  module is imported, as ``storage.tiles`` and ``storage.imports`` do).

:func:`refresh` recounts the finest level of the marked cells from the premises, then each coarser level
from the level below it; when the marked cells are more than :data:`FULL_REFRESH_SHARE` of the finest
ones (a city's first load, a districts import) it rebuilds the whole table (:func:`refresh_all`).
Writers of the grid hold a transaction-level advisory lock, so two imports refresh one after the
other, the second seeing the first's premises.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session, object_session

from storage.models import Permit, Premises

__all__ = [
    "CELL_BITS",
    "COARSEST_ZOOM",
    "FINEST_ZOOM",
    "FULL_REFRESH_SHARE",
    "GridRefresh",
    "mark",
    "refresh",
    "refresh_all",
]

log = logging.getLogger(__name__)

COARSEST_ZOOM: Final = 8
"""The lowest tile zoom with premises (below it the premises tiles are empty)."""
FINEST_ZOOM: Final = 13
"""The highest tile zoom drawn from the grid; from the next one on, premises are points."""
CELL_BITS: Final = 5
"""A tile is 2**5 = 32 cells across (128 of its 4096 units)."""
FULL_REFRESH_SHARE: Final = 0.1
"""Past this share of the finest cells marked, :func:`refresh` rebuilds the whole table instead (a
marked cell costs about as much as eight cells of a rebuild)."""
_ALWAYS_RECOUNT: Final = 1_000  # up to this many marked cells, no need to weigh a rebuild

_HALF: Final = 20037508.342789244  # half the Web-Mercator world, in metres
_CELL_ZOOM: Final = FINEST_ZOOM + CELL_BITS
_PARAMS: Final = {"half": _HALF, "cell": 2 * _HALF / 2**_CELL_ZOOM, "cell_zoom": _CELL_ZOOM}
_LOCK: Final = 7_303_140_914  # pg_advisory_xact_lock key of the grid's writers
_PENDING: Final = "premises_grid_pending"  # Session.info key: an ORM write marked cells

# Web-Mercator x/y of a WGS84 point by arithmetic (no ST_Transform per point), and its finest cell.
_MX = "(ST_X({g}) * :half / 180.0)"
_MY = "(ln(tan(radians(45.0 + LEAST(GREATEST(ST_Y({g}), -85.0511287798), 85.0511287798) / 2.0))) * 6378137.0)"
_CX = "floor(({mx} + :half) / :cell)::integer"
_CY = "floor((:half - {my}) / :cell)::integer"

_DIRTY_EXISTS = text("SELECT to_regclass('pg_temp.premises_grid_dirty') IS NOT NULL")
_DIRTY_CREATE = text("CREATE TEMP TABLE premises_grid_dirty (cx integer, cy integer) ON COMMIT DROP")
_DIRTY_COUNT = text("SELECT count(*) FROM (SELECT DISTINCT cx, cy FROM premises_grid_dirty) d")
_DIRTY_CLEAR = text("DELETE FROM premises_grid_dirty")
_MARK_PREFIX = "WITH src AS ("
_MARK_SUFFIX = (
    ") INSERT INTO premises_grid_dirty (cx, cy) SELECT DISTINCT "
    + _CX.format(mx=_MX.format(g="src.geom"))
    + ", "
    + _CY.format(my=_MY.format(g="src.geom"))
    + " FROM src WHERE src.geom IS NOT NULL"
)
_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:key)")

_COLUMNS = "INSERT INTO premises_grid (zoom, cx, cy, district_adcode, premises, unlicensed, categories, x, y) "
# One row per cell and district from ``pts`` (cx, cy, district_adcode, category, unlicensed, mx, my).
_FROM_POINTS = """
    SELECT CAST(:zoom AS smallint), cx, cy, district_adcode, sum(n), sum(u), jsonb_object_agg(category, n),
           sum(sx) / sum(n), sum(sy) / sum(n)
    FROM (SELECT cx, cy, district_adcode, category, count(*) AS n, count(*) FILTER (WHERE unlicensed) AS u,
                 sum(mx) AS sx, sum(my) AS sy
          FROM pts GROUP BY cx, cy, district_adcode, category) c
    GROUP BY cx, cy, district_adcode
"""
_POINT_COLUMNS = (
    "COALESCE(p.district_adcode, '') AS district_adcode, COALESCE(p.categories[1], perm.category, 'other') AS category,"
    " NOT COALESCE(perm.active, false) AS unlicensed, "
    + _MX.format(g="p.geom")
    + " AS mx, "
    + _MY.format(g="p.geom")
    + " AS my"
)
_CELL_OF_POINT = _CX.format(mx="d.mx") + " AS cx, " + _CY.format(my="d.my") + " AS cy"
# Every premises, with its permits summarised in one pass.
_FINEST_ALL = text(
    _COLUMNS
    + """
    WITH perm AS (
        SELECT premises_id, (array_agg(category ORDER BY id))[1] AS category, bool_or(status = 'active') AS active
        FROM permits GROUP BY premises_id
    ), pts AS (
        SELECT """
    + _CELL_OF_POINT
    + """, d.district_adcode, d.category, d.unlicensed, d.mx, d.my
        FROM (SELECT """
    + _POINT_COLUMNS
    + """ FROM premises p LEFT JOIN perm ON perm.premises_id = p.id) d
    )"""
    + _FROM_POINTS
)
# The premises of the marked cells (through the GiST index), with their permits looked up one by one.
_FINEST_MARKED = text(
    _COLUMNS
    + """
    WITH cells AS (
        SELECT DISTINCT cx, cy FROM premises_grid_dirty
    ), pts AS (
        SELECT d.* FROM (
            SELECT cells.cx, cells.cy, """
    + _POINT_COLUMNS
    + """
            FROM cells
            JOIN premises p
              ON p.geom && ST_Expand(ST_Transform(ST_TileEnvelope(:cell_zoom, cells.cx, cells.cy), 4326), 1e-9)
            LEFT JOIN LATERAL (
                SELECT (array_agg(pm.category ORDER BY pm.id))[1] AS category, bool_or(pm.status = 'active') AS active
                FROM permits pm WHERE pm.premises_id = p.id
            ) perm ON true
        ) d
        WHERE """
    + _CX.format(mx="d.mx")
    + " = d.cx AND "
    + _CY.format(my="d.my")
    + """ = d.cy
    )"""
    + _FROM_POINTS
)
# A coarser level from the level below it: four child cells per cell; category counts added up.
_COARSER = """
    SELECT CAST(:zoom AS smallint), f.cx >> 1, f.cy >> 1, f.district_adcode, sum(f.premises), sum(f.unlicensed),
           (SELECT jsonb_object_agg(kv.key, kv.n) FROM (
                SELECT e.key, sum(e.value::integer) AS n
                FROM unnest(array_agg(f.categories)) AS c(counts), jsonb_each_text(c.counts) AS e
                GROUP BY e.key) kv),
           sum(f.premises * f.x) / sum(f.premises), sum(f.premises * f.y) / sum(f.premises)
"""
_COARSER_ALL = text(_COLUMNS + _COARSER + " FROM premises_grid f WHERE f.zoom = :zoom + 1 GROUP BY 2, 3, 4")
_MARKED_AT_ZOOM = "(SELECT DISTINCT cx >> :shift AS cx, cy >> :shift AS cy FROM premises_grid_dirty)"
_COARSER_MARKED = text(
    _COLUMNS
    + _COARSER
    + " FROM "
    + _MARKED_AT_ZOOM
    + """ d
    JOIN premises_grid f ON f.zoom = :zoom + 1 AND f.cx BETWEEN d.cx * 2 AND d.cx * 2 + 1
                        AND f.cy BETWEEN d.cy * 2 AND d.cy * 2 + 1
    GROUP BY 2, 3, 4"""
)
_DELETE_MARKED = text(
    "DELETE FROM premises_grid g USING " + _MARKED_AT_ZOOM + " d WHERE g.zoom = :zoom AND g.cx = d.cx AND g.cy = d.cy"
)
_DELETE_ALL = text("DELETE FROM premises_grid")
_FINEST_COUNT = text("SELECT count(*) FROM premises_grid WHERE zoom = :zoom")


@dataclass(frozen=True)
class GridRefresh:
    """What :func:`refresh` did: ``cells`` (finest cells recounted) or ``all`` (the table rebuilt)."""

    mode: str
    cells: int
    seconds: float

    def note(self) -> str:
        if self.mode == "all":
            return f"premises grid rebuilt in {self.seconds:.2f} s"
        return f"premises grid: {self.cells} cells recounted in {self.seconds:.2f} s"


def _ensure_dirty(db: Session | Connection) -> None:
    if not db.execute(_DIRTY_EXISTS).scalar():
        db.execute(_DIRTY_CREATE)


def mark(db: Session | Connection, points: str, params: dict[str, Any] | None = None) -> None:
    """Remember the cells of the points that ``points`` yields, for :func:`refresh` to recount.

    Parameters
    ----------
    points
        SQL yielding a ``geom`` column of WGS84 points: a ``SELECT``, or an ``UPDATE … RETURNING geom``
        (it runs as a ``WITH`` query). Fixed by the calling code; values go in ``params``.
    """
    _ensure_dirty(db)
    db.execute(text(_MARK_PREFIX + points + _MARK_SUFFIX), {**(params or {}), **_PARAMS})


def refresh(db: Session | Connection) -> GridRefresh | None:
    """Recount the marked cells at every zoom (or rebuild the table); ``None`` if nothing was marked."""
    if not db.execute(_DIRTY_EXISTS).scalar():
        return None
    cells = db.execute(_DIRTY_COUNT).scalar_one()
    if not cells:
        return None
    t0 = time.perf_counter()
    db.execute(_LOCK_SQL, {"key": _LOCK})
    if cells > _ALWAYS_RECOUNT and cells > FULL_REFRESH_SHARE * _finest_cells(db):
        _rebuild(db)
        mode = "all"
    else:
        for zoom in range(FINEST_ZOOM, COARSEST_ZOOM - 1, -1):
            params = {**_PARAMS, "zoom": zoom, "shift": FINEST_ZOOM - zoom}
            db.execute(_DELETE_MARKED, params)
            db.execute(_FINEST_MARKED if zoom == FINEST_ZOOM else _COARSER_MARKED, params)
        mode = "cells"
    db.execute(_DIRTY_CLEAR)
    done = GridRefresh(mode, int(cells), time.perf_counter() - t0)
    log.debug("%s", done.note())
    return done


def refresh_all(db: Session | Connection) -> GridRefresh:
    """Rebuild the whole table from the premises and their permits."""
    t0 = time.perf_counter()
    db.execute(_LOCK_SQL, {"key": _LOCK})
    _rebuild(db)
    if db.execute(_DIRTY_EXISTS).scalar():
        db.execute(_DIRTY_CLEAR)
    done = GridRefresh("all", 0, time.perf_counter() - t0)
    log.debug("%s", done.note())
    return done


def _finest_cells(db: Session | Connection) -> int:
    return db.execute(_FINEST_COUNT, {"zoom": FINEST_ZOOM}).scalar_one()


def _rebuild(db: Session | Connection) -> None:
    db.execute(_DELETE_ALL)
    db.execute(_FINEST_ALL, {**_PARAMS, "zoom": FINEST_ZOOM})
    for zoom in range(FINEST_ZOOM - 1, COARSEST_ZOOM - 1, -1):
        db.execute(_COARSER_ALL, {"zoom": zoom})


# --- single-row ORM writes (the API's): mark the cells of the rows a flush changes ---------------------

_PREMISES_POINT = "SELECT geom FROM premises WHERE id = :id"
_PERMIT_PREMISES_POINT = "SELECT p.geom FROM permits pm JOIN premises p ON p.id = pm.premises_id WHERE pm.id = :id"


def _marker(points: str):  # noqa: ANN202
    def listener(mapper: Any, connection: Connection, target: Any) -> None:
        mark(connection, points, {"id": target.id})
        session = object_session(target)
        if session is not None:
            session.info[_PENDING] = True

    return listener


for _event in ("after_insert", "before_update", "after_update", "before_delete"):
    event.listen(Premises, _event, _marker(_PREMISES_POINT))
    event.listen(Permit, _event, _marker(_PERMIT_PREMISES_POINT))


@event.listens_for(Session, "after_flush_postexec")
def _refresh_after_flush(session: Session, flush_context: Any) -> None:
    if session.info.pop(_PENDING, False):
        refresh(session.connection())
