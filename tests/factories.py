"""Build rows for database tests from shapely geometries (WGS84)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from geoalchemy2.shape import from_shape
from pyproj import Geod
from shapely.geometry import Point, Polygon
from sqlalchemy.orm import Session

from storage.models import Campus, Gate, Permit, Premises, School

GEOD = Geod(ellps="WGS84")
BJ = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai
_seq = itertools.count(1)


def offset(lon: float, lat: float, *, east_m: float = 0.0, north_m: float = 0.0) -> tuple[float, float]:
    """The point ``east_m`` east and ``north_m`` north of (lon, lat), geodesically."""
    if east_m:
        lon, lat, _ = GEOD.fwd(lon, lat, 90.0 if east_m > 0 else 270.0, abs(east_m))
    if north_m:
        lon, lat, _ = GEOD.fwd(lon, lat, 0.0 if north_m > 0 else 180.0, abs(north_m))
    return lon, lat


def square(lon: float, lat: float, side_m: float) -> Polygon:
    """A square campus whose south-west corner is (lon, lat)."""
    ne = offset(lon, lat, east_m=side_m, north_m=side_m)
    se = offset(lon, lat, east_m=side_m)
    nw = offset(lon, lat, north_m=side_m)
    return Polygon([(lon, lat), se, ne, nw, (lon, lat)])


def add_school(
    session: Session,
    *,
    name: str,
    outline: Any,
    levels: list[str] | None = None,
    district: str | None = None,
    gates: list[tuple[float, float]] | None = None,
    **fields: Any,
) -> School:
    n = next(_seq)
    school = School(
        external_id=f"test:{n}",
        name=name,
        levels=levels if levels is not None else ["primary"],
        source="test",
        district_adcode=district,
        **fields,
    )
    campus = Campus(
        external_id=f"test:{n}:c",
        name="主校区",
        geom=from_shape(outline, srid=4326),
        point_only=isinstance(outline, Point),
        district_adcode=district,
    )
    for i, (glon, glat) in enumerate(gates or []):
        campus.gates.append(
            Gate(
                external_id=f"test:{n}:g{i}",
                name=f"门{i}",
                kind="main" if i == 0 else "side",
                geom=from_shape(Point(glon, glat), srid=4326),
            )
        )
    school.campuses.append(campus)
    session.add(school)
    session.flush()
    return school


def add_premises(
    session: Session,
    *,
    name: str,
    lon: float,
    lat: float,
    categories: list[str] | None = None,
    permits: list[dict[str, Any]] | None = None,
    district: str | None = None,
    **fields: Any,
) -> Premises:
    n = next(_seq)
    p = Premises(
        external_id=f"test:p{n}",
        name=name,
        categories=categories or [],
        geom=from_shape(Point(lon, lat), srid=4326),
        source="test",
        district_adcode=district,
        **fields,
    )
    for i, spec in enumerate(permits or []):
        p.permits.append(Permit(permit_id=spec.pop("permit_id", f"TP{n}-{i}"), **spec))
    session.add(p)
    session.flush()
    return p


def at(y: int, m: int, d: int, h: int = 10) -> dt.datetime:
    """A moment in Beijing time."""
    return dt.datetime(y, m, d, h, tzinfo=BJ)


class Clock:
    """An injectable clock: tests move ``now``."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now
