"""Tests for geo/cameras.py: which gates and how much of each zone street the cameras see."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import LineString, Point

from geo.cameras import Camera, coverage, edge_coverage, gate_coverage, zone_polygon
from geo.errors import InvalidInput

GEOD = Geod(ellps="WGS84")
CAM = (110.29, 25.27)  # Guilin


def _fwd(p: tuple[float, float], az: float, dist: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(p[0], p[1], az, dist)
    return float(lon), float(lat)


def _cam(direction: float, *, fov: float = 60.0, rng: float = 30.0, cid: int = 1) -> Camera:
    return Camera(cid, CAM[0], CAM[1], direction, fov, rng)


def test_a_camera_facing_away_from_a_gate_20_m_off_leaves_it_uncovered() -> None:
    gate = Point(*_fwd(CAM, 90.0, 20.0))  # 20 m east
    [away] = gate_coverage([_cam(270.0)], [(7, "东门", gate)])
    assert not away.covered and away.camera_id is None
    [facing] = gate_coverage([_cam(90.0)], [(7, "东门", gate)])
    assert facing.covered and facing.camera_id == 1
    assert facing.camera_distance_m == pytest.approx(20.0, abs=1e-6)


def test_the_field_of_view_edge_and_the_range_are_inclusive_and_sharp() -> None:
    az_in, az_out = 90.0 + 29.9, 90.0 + 30.1  # fov 60: ±30° around east
    pts = np.array([_fwd(CAM, az_in, 20.0), _fwd(CAM, az_out, 20.0), _fwd(CAM, 90.0, 29.9), _fwd(CAM, 90.0, 30.1)])
    covered, which = coverage([_cam(90.0)], pts)
    assert covered.tolist() == [True, False, True, False]
    assert which.tolist() == [0, -1, 0, -1]


def test_direction_wraps_around_north() -> None:
    # a camera facing 350° with a 40° field sees 10° east of north
    covered, _ = coverage([_cam(350.0, fov=40.0)], np.array([_fwd(CAM, 5.0, 10.0), _fwd(CAM, 20.0, 10.0)]))
    assert covered.tolist() == [True, False]
    all_round, _ = coverage([_cam(0.0, fov=360.0)], np.array([_fwd(CAM, 180.0, 10.0)]))
    assert all_round.tolist() == [True]


def test_street_coverage_is_the_seen_fraction_of_each_edge() -> None:
    # a 100 m street running east from the camera; the camera looks east 40 m: 40 % seen
    street = LineString([CAM, _fwd(CAM, 90.0, 100.0)])
    back = LineString([CAM, _fwd(CAM, 270.0, 100.0)])
    [east, west] = edge_coverage([_cam(90.0, fov=10.0, rng=40.0)], [(1, "东街", street), (2, "西街", back)])
    assert east.length_m == pytest.approx(100.0, abs=0.01)
    assert east.covered_fraction == pytest.approx(0.4, abs=0.03)
    assert east.samples == 20
    assert west.covered_fraction == 0.0 and west.uncovered_m == pytest.approx(100.0, abs=0.01)


def test_only_the_part_of_a_street_inside_the_zone_counts() -> None:
    zone = zone_polygon(Point(*CAM), 50.0)  # a 50 m circle round the camera position
    street = LineString([_fwd(CAM, 270.0, 200.0), _fwd(CAM, 90.0, 200.0)])
    far = LineString([_fwd(CAM, 0.0, 500.0), _fwd(CAM, 0.0, 600.0)])
    [inside] = edge_coverage([_cam(90.0, fov=20.0, rng=60.0)], [(1, None, street), (2, None, far)], zone=zone)
    assert inside.edge_id == 1
    assert inside.length_m == pytest.approx(100.0, abs=0.5)
    assert inside.covered_fraction == pytest.approx(0.5, abs=0.06)


def test_a_bad_camera_is_refused_with_its_field() -> None:
    with pytest.raises(InvalidInput, match="fov_deg"):
        Camera(1, *CAM, direction_deg=0.0, fov_deg=400.0, range_m=30.0)
