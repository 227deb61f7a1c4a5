"""Exact distances between premises and schools on the WGS84 ellipsoid.

A distance here decides a permit, so the reference method is exact to well under a millimetre at zone
scale (DESIGN.md, "Measurement"):

* :func:`distance_to_outline` finds the nearest pair of points in a local azimuthal equidistant
  (AEQD) projection centred on the premises side, re-centres on the found premises-side point until it
  is stable, and measures that pair with :meth:`pyproj.Geod.inv`.
* :func:`distance_to_gates` takes the smallest geodesic distance to any gate.
* :class:`LocalMetricFrame` is the fast, vectorised path for many sites in one city (a transverse
  Mercator centred in the city, with its scale factor corrected). It agrees with the reference to
  millimetres inside a city; :func:`refine_near_threshold` says which of its answers lie close enough to
  a threshold that the caller must re-measure them with the reference.

Outline edges are geodesics between their vertices (as in PostGIS ``geography``); for campus-sized
edges this differs from straight lines in longitude/latitude by well under a millimetre.

All geometries are in longitude/latitude (EPSG:4326, ``x`` = longitude).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from geo.errors import CoordinateError, GeometryError, InvalidInput

__all__ = [
    "GEOD",
    "LocalMetricFrame",
    "Measurement",
    "NoGateError",
    "distance_to_gates",
    "distance_to_outline",
    "geodesic_distance",
    "refine_near_threshold",
]

#: The WGS84 ellipsoid every distance in safezone is measured on.
GEOD = Geod(ellps="WGS84")

# re-centring the AEQD frame stops once the premises-side point moves less than this (metres)
_RECENTRE_TOL_M = 1e-7
_RECENTRE_MAX = 8

_SITE_TYPES = ("Point", "Polygon", "MultiPolygon")
_OUTLINE_TYPES = ("Point", "MultiPoint", "Polygon", "MultiPolygon")


@dataclass(frozen=True)
class Measurement:
    """One measured distance and how it was measured.

    Parameters
    ----------
    distance_m
        Geodesic (or walking) distance in metres; 0 when the school covers the site.
    from_point
        Where the distance starts on the school side (a point of the outline, or the gate), WGS84.
    to_point
        Where it ends on the premises side (the point, or the nearest point of its footprint), WGS84.
    method
        ``"geodesic"`` (to the outline), ``"gate"`` (to the nearest gate) or ``"walking"``.
    path
        The walking path for ``"walking"``, else ``None``.
    """

    distance_m: float
    from_point: Point
    to_point: Point
    method: str
    path: LineString | None = None


class NoGateError(InvalidInput, ValueError):
    """:func:`distance_to_gates` was given no gate (the caller falls back to the outline)."""


def geodesic_distance(a: Point, b: Point) -> float:
    """Return the geodesic distance in metres between two WGS84 points.

    Parameters
    ----------
    a, b
        Points in longitude/latitude.

    Returns
    -------
    float
        Distance on the WGS84 ellipsoid (:meth:`pyproj.Geod.inv`), metres.
    """
    _check_geometry(a, field="a", types=("Point",))
    _check_geometry(b, field="b", types=("Point",))
    return float(GEOD.inv(a.x, a.y, b.x, b.y)[2])


def distance_to_outline(site: BaseGeometry, outline: BaseGeometry) -> Measurement:
    """Measure from a premises to a campus outline: the reference method.

    Parameters
    ----------
    site
        The premises: a ``Point``, or its footprint as a ``Polygon``/``MultiPolygon``.
    outline
        The campus outline (``Polygon``/``MultiPolygon``), or a ``Point`` for a campus known only as a
        point.

    Returns
    -------
    Measurement
        ``method="geodesic"``; ``distance_m`` is 0 when the outline covers any part of the site.

    Notes
    -----
    The nearest pair of points is found in an azimuthal equidistant projection centred on the
    site-side point (for a footprint, first on its representative point, then re-centred on the found
    point until it moves less than 1e-7 m); that pair is then measured with ``Geod.inv``.
    """
    _check_geometry(site, field="site", types=_SITE_TYPES)
    _check_geometry(outline, field="outline", types=_OUTLINE_TYPES)
    dist, on_site, on_outline = _nearest_pair(site, outline)
    return Measurement(dist, from_point=on_outline, to_point=on_site, method="geodesic")


def distance_to_gates(site: BaseGeometry, gates: Sequence[Point]) -> tuple[int, Measurement]:
    """Measure from a premises to the nearest of a campus's gates.

    Parameters
    ----------
    site
        The premises: a ``Point``, or its footprint as a ``Polygon``/``MultiPolygon``.
    gates
        The in-use gates of the campus (points, WGS84).

    Returns
    -------
    tuple of (int, Measurement)
        The index of the nearest gate in ``gates`` (the first one on a tie) and its measurement
        (``method="gate"``, ``from_point`` the gate).

    Raises
    ------
    NoGateError
        (a ``ValueError``) if ``gates`` is empty.
    """
    _check_geometry(site, field="site", types=_SITE_TYPES)
    gates = list(gates)
    if not gates:
        msg = "no gate given: measure to the campus outline instead (flag gate_unknown)"
        raise NoGateError(msg, message_zh="未提供校门：请改为测量到校园边界（标记 gate_unknown）", field="gates")
    for i, gate in enumerate(gates):
        _check_geometry(gate, field=f"gates[{i}]", types=("Point",))

    if site.geom_type == "Point":
        n = len(gates)
        glon = np.array([g.x for g in gates])
        glat = np.array([g.y for g in gates])
        _, _, dist = GEOD.inv(np.full(n, site.x), np.full(n, site.y), glon, glat)
        best = int(np.argmin(dist))
        meas = Measurement(float(dist[best]), gates[best], Point(site.x, site.y), method="gate")
        return best, meas

    best, best_meas = -1, None
    for i, gate in enumerate(gates):
        dist, on_site, _ = _nearest_pair(site, gate)
        if best_meas is None or dist < best_meas.distance_m:
            best, best_meas = i, Measurement(dist, gate, on_site, method="gate")
    assert best_meas is not None
    return best, best_meas


_FRAMES = threading.local()
_FRAMES_PER_THREAD = 256


class LocalMetricFrame:
    """A transverse Mercator frame centred in one city, for many distances at once.

    Planar distances are divided by the projection's scale factor along the measured segment, so the
    frame stays within millimetres of the reference tens of kilometres from its centre. Answers near a
    decision threshold must still be re-measured with :func:`distance_to_outline`
    (see :func:`refine_near_threshold`).

    Parameters
    ----------
    lon0, lat0
        The centre of the city, WGS84 degrees.
    """

    def __init__(self, lon0: float, lat0: float) -> None:
        _check_lonlat(np.array([[lon0, lat0]], dtype=float), field="lon0/lat0")
        self.lon0 = float(lon0)
        self.lat0 = float(lat0)
        proj = f"+proj=tmerc +lat_0={self.lat0!r} +lon_0={self.lon0!r} +k=1 +x_0=0 +y_0=0 +ellps=WGS84"
        self._transformer = Transformer.from_crs("EPSG:4326", proj + " +units=m +no_defs", always_xy=True)
        # Gaussian mean radius of curvature at the centre: k(x) = cosh(x / R) for the TM scale factor
        a, f = GEOD.a, GEOD.f
        e2 = f * (2 - f)
        s2 = math.sin(math.radians(self.lat0)) ** 2
        self._radius = a * math.sqrt(1 - e2) / (1 - e2 * s2)

    def __repr__(self) -> str:
        return f"LocalMetricFrame(lon0={self.lon0!r}, lat0={self.lat0!r})"

    @classmethod
    def around(cls, lon: float, lat: float) -> LocalMetricFrame:
        """A frame whose centre is within 0.05° of (lon, lat), shared by the calls of one thread.

        Building a PROJ transformer takes milliseconds, more than a pre-check's whole walking search; the
        frame is exact to millimetres far beyond the 5 km its centre may be away, so one frame per 0.1°
        cell serves every site in it. Transformers are not shared between threads.
        """
        key = (round(lon * 10) / 10, round(lat * 10) / 10)
        cache: dict[tuple[float, float], LocalMetricFrame] = _FRAMES.__dict__.setdefault("cache", {})
        frame = cache.get(key)
        if frame is None:
            if len(cache) >= _FRAMES_PER_THREAD:
                cache.clear()
            frame = cache[key] = cls(*key)
        return frame

    def project(self, lonlat: np.ndarray) -> np.ndarray:
        """Project an ``(n, 2)`` array of longitude/latitude into the frame (metres)."""
        lonlat = np.asarray(lonlat, dtype=float).reshape(-1, 2)
        x, y = self._transformer.transform(lonlat[:, 0], lonlat[:, 1])
        return np.column_stack([x, y])

    def unproject(self, xy: np.ndarray) -> np.ndarray:
        """Return an ``(n, 2)`` array of frame coordinates to longitude/latitude."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        lon, lat = self._transformer.transform(xy[:, 0], xy[:, 1], direction="INVERSE")
        return np.column_stack([lon, lat])

    def project_geometry(self, geom: BaseGeometry) -> BaseGeometry:
        """Project a longitude/latitude geometry into the frame."""
        return shapely.transform(geom, self.project)

    def scale_corrected(self, xy_a: np.ndarray, xy_b: np.ndarray) -> np.ndarray:
        """Return the ellipsoidal length of the segments ``xy_a[i] → xy_b[i]`` given in the frame."""
        xy_a = np.asarray(xy_a, dtype=float).reshape(-1, 2)
        xy_b = np.asarray(xy_b, dtype=float).reshape(-1, 2)
        planar = np.hypot(xy_b[:, 0] - xy_a[:, 0], xy_b[:, 1] - xy_a[:, 1])
        # Simpson's rule for the mean of the scale factor k = cosh(x / R) along the segment
        xa, xb = xy_a[:, 0] / self._radius, xy_b[:, 0] / self._radius
        k = (np.cosh(xa) + 4 * np.cosh((xa + xb) / 2) + np.cosh(xb)) / 6
        return planar / k

    def distances(self, sites: np.ndarray, outline: BaseGeometry) -> np.ndarray:
        """Return the distance in metres from each site to an outline (0 inside).

        Parameters
        ----------
        sites
            ``(n, 2)`` array of longitude, latitude.
        outline
            The campus outline (``Polygon``/``MultiPolygon``) or a ``Point``.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` distances, metres; approximate to millimetres, see :func:`refine_near_threshold`.
        """
        sites = np.asarray(sites, dtype=float)
        if sites.ndim != 2 or sites.shape[1] != 2:
            msg = f"sites must be an (n, 2) array of lon, lat; got shape {sites.shape}"
            raise InvalidInput(
                msg, message_zh=f"sites 须为 (n, 2) 的经度、纬度数组，实际形状为 {sites.shape}", field="sites"
            )
        if len(sites) == 0:
            return np.zeros(0)
        _check_lonlat(sites, field="sites")
        _check_geometry(outline, field="outline", types=_OUTLINE_TYPES)
        pts = shapely.points(self.project(sites))
        lines = shapely.shortest_line(pts, self.project_geometry(outline))
        ends = shapely.get_coordinates(lines).reshape(-1, 2, 2)
        return self.scale_corrected(ends[:, 0], ends[:, 1])


def refine_near_threshold(approx: np.ndarray, thresholds: np.ndarray | float, band_m: float = 2.0) -> np.ndarray:
    """Flag the approximate distances that must be re-measured with the reference method.

    Parameters
    ----------
    approx
        Distances from a fast path (e.g. :meth:`LocalMetricFrame.distances`), metres.
    thresholds
        The decision thresholds (D − u and D + u, or D), broadcast against ``approx``.
    band_m
        Half-width of the band around each threshold; must exceed the fast path's error.

    Returns
    -------
    numpy.ndarray of bool
        True where ``|approx − threshold| <= band_m`` or ``approx`` is NaN.
    """
    if not (isinstance(band_m, (int, float)) and math.isfinite(band_m) and band_m >= 0):
        msg = f"band_m must be a finite number >= 0; got {band_m!r}"
        raise InvalidInput(
            msg, message_zh=f"band_m 须为不小于 0 的有限数，实际为 {band_m!r}", field="band_m", value=band_m
        )
    approx = np.asarray(approx, dtype=float)
    thresholds = np.asarray(thresholds, dtype=float)
    with np.errstate(invalid="ignore"):
        near = np.abs(approx - thresholds) <= band_m
    return near | np.isnan(approx) | np.isnan(thresholds)


# ---------------------------------------------------------------------------------------------------
# reference method


def _aeqd_forward(lon0: float, lat0: float, lonlat: np.ndarray) -> np.ndarray:
    """Ellipsoidal azimuthal equidistant coordinates (metres) of ``lonlat`` around (lon0, lat0)."""
    n = len(lonlat)
    az, _, dist = GEOD.inv(np.full(n, lon0), np.full(n, lat0), lonlat[:, 0], lonlat[:, 1])
    az = np.radians(az)
    return np.column_stack([dist * np.sin(az), dist * np.cos(az)])


def _aeqd_inverse(lon0: float, lat0: float, xy: np.ndarray) -> np.ndarray:
    n = len(xy)
    az = np.degrees(np.arctan2(xy[:, 0], xy[:, 1]))
    lon, lat, _ = GEOD.fwd(np.full(n, lon0), np.full(n, lat0), az, np.hypot(xy[:, 0], xy[:, 1]))
    return np.column_stack([lon, lat])


def _nearest_pair(site: BaseGeometry, other: BaseGeometry) -> tuple[float, Point, Point]:
    """Geodesic distance and nearest points (on ``site``, on ``other``) by re-centred AEQD."""
    if site.geom_type == "Point":
        return _nearest_to_point(site, other)
    rep = site.representative_point()
    centre = (rep.x, rep.y)
    for _ in range(_RECENTRE_MAX):
        lon0, lat0 = centre
        site_p = shapely.transform(site, lambda c, lon0=lon0, lat0=lat0: _aeqd_forward(lon0, lat0, c))
        other_p = shapely.transform(other, lambda c, lon0=lon0, lat0=lat0: _aeqd_forward(lon0, lat0, c))
        near_site, near_other = nearest_points(site_p, other_p)
        touching = near_site.distance(near_other) == 0.0 or site_p.intersects(other_p)
        found = _aeqd_inverse(lon0, lat0, np.array([[near_site.x, near_site.y], [near_other.x, near_other.y]]))
        # a nearest point at a vertex is that vertex exactly, not its AEQD round trip
        found[0] = _exact_vertex(near_site, site, site_p, found[0])
        found[1] = _exact_vertex(near_other, other, other_p, found[1])
        moved = math.hypot(near_site.x, near_site.y)  # distance of the new centre from the old, metres
        centre = (float(found[0, 0]), float(found[0, 1]))
        if site.geom_type == "Point" or moved < _RECENTRE_TOL_M or touching:
            break
    on_site = Point(found[0])  # for a point site, the point itself (see _exact_vertex)
    if touching:
        # the outline covers part of the site: report the shared point on both sides
        return 0.0, on_site, on_site
    on_other = Point(found[1])
    dist = float(GEOD.inv(on_site.x, on_site.y, on_other.x, on_other.y)[2])
    return dist, on_site, on_other


def _nearest_to_point(site: Point, other: BaseGeometry) -> tuple[float, Point, Point]:
    """:func:`_nearest_pair` for a point site: one projection, centred on the site (the origin)."""
    lon0, lat0 = site.x, site.y
    other_p = shapely.transform(other, lambda c: _aeqd_forward(lon0, lat0, c))
    origin = Point(0.0, 0.0)
    near_other = nearest_points(origin, other_p)[1]
    on_site = Point(lon0, lat0)
    if origin.distance(near_other) == 0.0 or origin.intersects(other_p):
        return 0.0, on_site, on_site  # the outline covers the site
    projected = _aeqd_inverse(lon0, lat0, np.array([[near_other.x, near_other.y]]))[0]
    on_other = Point(_exact_vertex(near_other, other, other_p, projected))
    return float(GEOD.inv(lon0, lat0, on_other.x, on_other.y)[2]), on_site, on_other


def _exact_vertex(found_p: Point, geom: BaseGeometry, geom_p: BaseGeometry, fallback: np.ndarray) -> np.ndarray:
    """The original coordinates of the vertex of ``geom`` at ``found_p`` (projected), else ``fallback``."""
    verts_p = shapely.get_coordinates(geom_p)
    gap = np.hypot(verts_p[:, 0] - found_p.x, verts_p[:, 1] - found_p.y)
    i = int(np.argmin(gap))
    if gap[i] < 1e-6:
        return shapely.get_coordinates(geom)[i]
    return fallback


# ---------------------------------------------------------------------------------------------------
# input checks


def _check_lonlat(coords: np.ndarray, *, field: str) -> None:
    """Raise :class:`CoordinateError` for a non-finite or out-of-range longitude/latitude."""
    coords = np.asarray(coords, dtype=float).reshape(-1, coords.shape[-1])
    if len(coords) <= _FEW:
        # a few points (a site, a gate, a small outline): plain floats cost a tenth of numpy's reductions
        for i, (lon, lat) in enumerate(coords[:, :2].tolist()):
            if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
                _bad_lonlat(coords, i, field=field)
        return
    bad_finite = ~np.isfinite(coords[:, :2]).all(axis=1)
    bad_range = (np.abs(coords[:, 0]) > 180) | (np.abs(coords[:, 1]) > 90)
    bad = np.flatnonzero(bad_finite | bad_range)
    if len(bad):
        _bad_lonlat(coords, int(bad[0]), field=field)


_FEW = 16


def _bad_lonlat(coords: np.ndarray, i: int, *, field: str) -> NoReturn:
    lon, lat = (float(v) for v in coords[i, :2])
    hint = " (latitude and longitude swapped?)" if abs(lat) > 90 >= abs(lon) else ""
    msg = f"{field}: coordinate ({lon!r}, {lat!r}) is not a WGS84 longitude/latitude{hint}"
    zh_hint = "（经纬度是否颠倒？）" if hint else ""
    raise CoordinateError(
        msg,
        message_zh=f"{field}：坐标 ({lon!r}, {lat!r}) 不是有效的 WGS84 经纬度{zh_hint}",
        field=field,
        row=i + 1 if len(coords) > 1 else None,
        value=f"({lon!r}, {lat!r})",
    )


def _check_geometry(geom: object, *, field: str, types: Sequence[str]) -> None:
    """Raise :class:`GeometryError` unless ``geom`` is a non-empty valid geometry of ``types``."""
    if not isinstance(geom, BaseGeometry):
        msg = f"{field} must be a shapely geometry of type {'/'.join(types)}; got {geom!r}"
        raise GeometryError(
            msg,
            message_zh=f"{field} 须为 {'/'.join(types)} 类型的几何对象，实际为 {geom!r}",
            field=field,
            value=repr(geom),
        )
    if geom.geom_type not in types:
        msg = f"{field} must be of type {'/'.join(types)}; got {geom.geom_type}: {geom.wkt[:120]}"
        raise GeometryError(
            msg,
            message_zh=f"{field} 须为 {'/'.join(types)} 类型，实际为 {geom.geom_type}：{geom.wkt[:120]}",
            field=field,
            value=geom.wkt[:120],
        )
    if geom.is_empty:
        msg = f"{field} is an empty {geom.geom_type}"
        raise GeometryError(msg, message_zh=f"{field} 是空的 {geom.geom_type} 几何", field=field, value=geom.wkt)
    _check_lonlat(shapely.get_coordinates(geom), field=field)
    if geom.geom_type != "Point" and not geom.is_valid:  # a point with a finite position is valid
        reason = shapely.is_valid_reason(geom)
        msg = f"{field} is not a valid geometry ({reason}): {geom.wkt[:120]}"
        raise GeometryError(
            msg,
            message_zh=f"{field} 不是有效的几何（{reason}）：{geom.wkt[:120]}",
            field=field,
            value=geom.wkt[:120],
        )
