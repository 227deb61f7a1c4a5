"""Camera coverage of gates and zone streets (视频监控全覆盖、无死角).

A camera covers a point when the point is within its range (geodesic distance) and within ±fov/2 of
its direction (the geodesic azimuth from the camera to the point, 0 = north, clockwise; both by
:data:`geo.measure.GEOD`). A field of view of 360° sees all round. Walls and trees are not modelled:
coverage here is an upper bound of what the cameras see.

Streets are sampled every ~5 m (each sample stands for an equal piece of the line); an edge's covered
fraction is the share of its samples some camera covers. Only the part of an edge inside the zone is
judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidInput
from geo.measure import GEOD, LocalMetricFrame

__all__ = [
    "STEP_M",
    "Camera",
    "EdgeCoverage",
    "GateCoverage",
    "coverage",
    "edge_coverage",
    "gate_coverage",
    "zone_polygon",
]

STEP_M = 5.0
"""Street sample spacing, metres."""


@dataclass(frozen=True)
class Camera:
    """A camera: WGS84 position, direction (0 = north, clockwise), field of view and range."""

    id: int | str
    lon: float
    lat: float
    direction_deg: float
    fov_deg: float
    range_m: float
    name: str | None = None

    def __post_init__(self) -> None:
        for name, val, lo, hi in (
            ("fov_deg", self.fov_deg, 0.0, 360.0),
            ("range_m", self.range_m, 0.0, 10_000.0),
            ("direction_deg", self.direction_deg, -360.0, 720.0),
        ):
            if not (isinstance(val, (int, float)) and math.isfinite(val) and lo <= val <= hi):
                msg = f"camera {self.id}: {name} must be between {lo:g} and {hi:g}; got {val!r}"
                raise InvalidInput(
                    msg, message_zh=f"摄像头 {self.id}：{name} 须在 {lo:g} 至 {hi:g} 之间：{val!r}", field=name
                )


def coverage(cameras: Sequence[Camera], lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which points some camera covers.

    Parameters
    ----------
    cameras
        The cameras.
    lonlat
        ``(n, 2)`` WGS84 points.

    Returns
    -------
    covered : numpy.ndarray
        ``(n,)`` bool.
    camera : numpy.ndarray
        ``(n,)`` index into ``cameras`` of the nearest covering camera, -1 when none.
    """
    pts = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    n, c = len(pts), len(cameras)
    if n == 0 or c == 0:
        return np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
    cam = np.array([[k.lon, k.lat, k.direction_deg, k.fov_deg, k.range_m] for k in cameras], dtype=float)
    clon = np.repeat(cam[:, 0], n)
    clat = np.repeat(cam[:, 1], n)
    plon = np.tile(pts[:, 0], c)
    plat = np.tile(pts[:, 1], c)
    az, _, d = GEOD.inv(clon, clat, plon, plat)
    az = np.asarray(az).reshape(c, n)
    d = np.asarray(d).reshape(c, n)
    off = np.abs((az - cam[:, 2:3] + 180.0) % 360.0 - 180.0)
    seen = (d <= cam[:, 4:5]) & ((off <= cam[:, 3:4] / 2 + 1e-9) | (cam[:, 3:4] >= 360.0) | (d < 0.01))
    covered = seen.any(axis=0)
    dd = np.where(seen, d, np.inf)
    which = np.where(covered, dd.argmin(axis=0), -1)
    return covered, which.astype(np.int64)


@dataclass(frozen=True)
class GateCoverage:
    gate_id: int
    name: str | None
    point: Point
    covered: bool
    camera_id: int | str | None
    camera_distance_m: float | None


def gate_coverage(cameras: Sequence[Camera], gates: Sequence[tuple[int, str | None, Point]]) -> list[GateCoverage]:
    """Each gate ``(id, name, point)``: covered or not, and by which (the nearest covering) camera."""
    pts = np.array([[g[2].x, g[2].y] for g in gates], dtype=float).reshape(-1, 2)
    covered, which = coverage(cameras, pts)
    out = []
    for (gid, name, pt), ok, k in zip(gates, covered, which, strict=True):
        cam = cameras[k] if k >= 0 else None
        dist = float(GEOD.inv(cam.lon, cam.lat, pt.x, pt.y)[2]) if cam else None
        out.append(GateCoverage(gid, name, pt, bool(ok), cam.id if cam else None, dist))
    return out


def zone_polygon(base: BaseGeometry, distance_m: float) -> BaseGeometry:
    """``base`` (outline or gates, WGS84) grown by ``distance_m`` in a local metric frame."""
    c = base.centroid
    frame = LocalMetricFrame(c.x, c.y)
    grown = frame.project_geometry(base).buffer(distance_m, quad_segs=16)
    return shapely.transform(grown, lambda xy: frame.unproject(np.asarray(xy)))


@dataclass(frozen=True)
class EdgeCoverage:
    edge_id: int
    name: str | None
    length_m: float  # of the part inside the zone
    covered_fraction: float
    samples: int

    @property
    def uncovered_m(self) -> float:
        return self.length_m * (1.0 - self.covered_fraction)


def _samples(line: BaseGeometry, frame: LocalMetricFrame, step_m: float) -> tuple[np.ndarray, float]:
    """Points at the middle of equal pieces of at most ~``step_m`` along each part of ``line``."""
    parts = list(getattr(line, "geoms", [line]))
    out, total = [], 0.0
    for part in parts:
        if not isinstance(part, LineString) or part.is_empty:
            continue
        coords = np.asarray(part.coords)
        length = float(np.sum(GEOD.inv(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])[2]))
        if length <= 0:
            continue
        k = max(1, math.ceil(length / step_m - 1e-9))
        proj = frame.project_geometry(part)
        at = (np.arange(k) + 0.5) / k
        xy = shapely.get_coordinates(shapely.line_interpolate_point(proj, at, normalized=True))
        out.append(frame.unproject(xy))
        total += length
    return (np.concatenate(out) if out else np.zeros((0, 2))), total


def edge_coverage(
    cameras: Sequence[Camera],
    edges: Sequence[tuple[int, str | None, LineString]],
    *,
    zone: BaseGeometry | None = None,
    step_m: float = STEP_M,
) -> list[EdgeCoverage]:
    """Covered fraction of each edge ``(id, name, line)`` (its part inside ``zone`` when given).

    Edges that do not meet the zone are left out.
    """
    if not edges:
        return []
    allc = np.concatenate([np.asarray(e[2].coords) for e in edges])
    lo, hi = allc.min(axis=0), allc.max(axis=0)
    frame = LocalMetricFrame((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2)
    out = []
    for eid, name, line in edges:
        part = line if zone is None else line.intersection(zone)
        if part.is_empty:
            continue
        pts, length = _samples(part, frame, step_m)
        if len(pts) == 0:
            continue
        covered, _ = coverage(cameras, pts)
        out.append(EdgeCoverage(eid, name, length, float(covered.mean()), len(pts)))
    return out


@dataclass(frozen=True)
class SchoolCoverage:
    """A school's gates and the streets of its largest zone, with what the cameras see."""

    zone: BaseGeometry
    gates: list[GateCoverage]
    streets: list[EdgeCoverage]
    cameras: int  # cameras near enough to matter

    @property
    def gates_uncovered(self) -> list[GateCoverage]:
        return [g for g in self.gates if not g.covered]

    @property
    def street_m(self) -> float:
        return float(sum(s.length_m for s in self.streets))

    @property
    def street_covered_m(self) -> float:
        return float(sum(s.length_m * s.covered_fraction for s in self.streets))

    @property
    def full(self) -> bool:
        """视频监控全覆盖：every gate and every sampled point of the zone streets is seen."""
        return not self.gates_uncovered and all(s.covered_fraction >= 1.0 for s in self.streets)


class StreetIndex:
    """Street edges ``(id, name, line)`` with a spatial index, for many zones in one area."""

    def __init__(self, edges: Sequence[tuple[int, str | None, LineString]]) -> None:
        self.edges = list(edges)
        self._tree = shapely.STRtree([e[2] for e in self.edges])

    def meeting(self, zone: BaseGeometry) -> list[tuple[int, str | None, LineString]]:
        return [self.edges[i] for i in sorted(self._tree.query(zone, predicate="intersects"))]


def _near(cameras: Sequence[Camera], zone: BaseGeometry) -> list[Camera]:
    """Cameras whose range may reach the zone (bounding-box test, generous in degrees)."""
    if not cameras:
        return []
    x0, y0, x1, y1 = zone.bounds
    arr = np.array([[c.lon, c.lat, c.range_m] for c in cameras])
    dy = arr[:, 2] / 110_000.0
    dx = dy / max(math.cos(math.radians(max(abs(y0), abs(y1)))), 0.01)
    keep = (arr[:, 0] >= x0 - dx) & (arr[:, 0] <= x1 + dx) & (arr[:, 1] >= y0 - dy) & (arr[:, 1] <= y1 + dy)
    return [c for c, k in zip(cameras, keep, strict=True) if k]


def school_coverage(
    *,
    zone_base: BaseGeometry,
    zone_distance_m: float,
    gates: Sequence[tuple[int, str | None, Point]],
    cameras: Sequence[Camera],
    streets: StreetIndex,
    step_m: float = STEP_M,
) -> SchoolCoverage:
    """Gates and zone streets of one school against the cameras.

    Parameters
    ----------
    zone_base
        What the largest zone is measured from: the campus outline(s), or the gates (WGS84).
    zone_distance_m
        That zone's distance.
    gates
        The school's in-use gates ``(id, name, point)``.
    """
    zone = zone_polygon(zone_base, zone_distance_m)
    near = _near(cameras, zone)
    return SchoolCoverage(
        zone,
        gate_coverage(near, gates),
        edge_coverage(near, streets.meeting(zone), zone=zone, step_m=step_m),
        len(near),
    )
