"""A site's district is found among the districts' small pieces (migration 0011): the same answer as the whole
outlines give, kept up to date by the trigger when a district is added, redrawn or removed."""

from __future__ import annotations

import math

import numpy as np
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, Polygon
from sqlalchemy import text

from storage.checks import district_at
from storage.models import District
from tests.factories import offset

LON, LAT = 110.29, 25.27


def _wiggly(lon: float, lat: float, radius_m: float, n: int = 1200) -> Polygon:
    """A star-shaped outline of ``n`` vertices (a real boundary's detail), centred on (lon, lat)."""
    pts = []
    for k in range(n):
        a = 2 * math.pi * k / n
        r = radius_m * (1 + 0.15 * math.sin(17 * a) + 0.05 * math.sin(113 * a))
        pts.append(offset(lon, lat, east_m=r * math.cos(a), north_m=r * math.sin(a)))
    return Polygon(pts)


def _add(session, adcode: str, outline: Polygon) -> District:  # noqa: ANN001
    d = District(adcode=adcode, name=adcode, level="county", parent_adcode=None,
                 geom=from_shape(MultiPolygon([outline]), srid=4326))  # fmt: skip
    session.add(d)
    session.flush()
    return d


def _whole(session, x: float, y: float) -> str | None:  # noqa: ANN001
    return session.execute(
        text(
            "SELECT adcode FROM districts WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
            "ORDER BY adcode DESC LIMIT 1"
        ),
        {"x": x, "y": y},
    ).scalar()


def test_pieces_give_the_whole_outlines_answer(session) -> None:  # noqa: ANN001
    city = _wiggly(LON, LAT, 6000)
    county = _wiggly(*offset(LON, LAT, east_m=1500), 2500)
    _add(session, "450300", city)
    _add(session, "450302", county)
    pieces = session.execute(
        text("SELECT count(*), max(ST_NPoints(geom)) FROM district_parts WHERE adcode IN ('450300', '450302')")
    ).one()
    assert pieces[0] > 2 * 1200 / 64 and pieces[1] <= 64
    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = city.bounds
    points = [Point(x, y) for x, y in zip(rng.uniform(x0, x1, 600), rng.uniform(y0, y1, 600), strict=True)]
    # and the hard ones: vertices of both outlines (on the boundary), which lie on cuts between pieces too
    points += [Point(c) for c in list(city.exterior.coords)[::97] + list(county.exterior.coords)[::89]]
    found = {"450300": 0, "450302": 0, None: 0}
    for p in points:
        got = district_at(session, p)
        assert got == _whole(session, p.x, p.y), p.wkt
        found[got] += 1
    assert min(found.values()) > 50  # inside the county (the most specific), the city only, and outside both


def test_redrawn_and_removed_districts_are_followed(session) -> None:  # noqa: ANN001
    here, there = Point(LON, LAT), Point(*offset(LON, LAT, east_m=20_000))
    d = _add(session, "450305", _wiggly(here.x, here.y, 800))
    assert district_at(session, here) == "450305" and district_at(session, there) is None
    d.geom = from_shape(MultiPolygon([_wiggly(there.x, there.y, 800)]), srid=4326)
    session.flush()
    assert district_at(session, here) is None and district_at(session, there) == "450305"
    session.delete(d)
    session.flush()
    assert district_at(session, there) is None
    assert session.execute(text("SELECT count(*) FROM district_parts WHERE adcode = '450305'")).scalar() == 0


def test_an_unchanged_outline_is_not_cut_again_and_truncation_clears(session) -> None:  # noqa: ANN001
    d = _add(session, "450303", _wiggly(LON, LAT, 900))

    def ids() -> set[int]:
        return set(session.execute(text("SELECT id FROM district_parts WHERE adcode = '450303'")).scalars())

    before = ids()
    session.execute(text("UPDATE districts SET geom = geom, name = '叠彩区' WHERE adcode = '450303'"))
    assert ids() == before  # an import setting every row again leaves the pieces alone
    d.geom = from_shape(MultiPolygon([_wiggly(LON, LAT, 950)]), srid=4326)
    session.flush()
    assert ids() and ids().isdisjoint(before)
    session.execute(text("TRUNCATE districts CASCADE"))
    assert session.execute(text("SELECT count(*) FROM district_parts")).scalar() == 0
