"""Tests for geo/measure.py: exact distances from premises to campus outlines and gates.

Every expected distance is built independently with ``Geod.fwd`` (a point placed exactly N metres
from a known point of the outline) or computed independently by brute force (the outline densified to
5 cm and the smallest ``Geod.inv`` over its vertices).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from geo.errors import CoordinateError, GeometryError, InvalidInput
from geo.measure import (
    LocalMetricFrame,
    Measurement,
    NoGateError,
    distance_to_gates,
    distance_to_outline,
    geodesic_distance,
    refine_near_threshold,
)

GEOD = Geod(ellps="WGS84")  # independent of geo.measure.GEOD on purpose
MM = 1e-3

# school-ish places in the three seed cities (lon, lat)
NANJING = (118.7800, 32.0400)
CHONGQING = (106.5500, 29.5600)
GUILIN = (110.2900, 25.2700)
CITIES = {"nanjing": NANJING, "chongqing": CHONGQING, "guilin": GUILIN}


def _fwd(lonlat: tuple[float, float], az: float, dist: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(lonlat[0], lonlat[1], az, dist)
    return (float(lon), float(lat))


def _inv(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def _square_campus(centre: tuple[float, float], half_m: float = 100.0) -> tuple[Polygon, float, float]:
    """A square campus whose east and west edges are meridians; returns it and its east edge's lon."""
    lat_s = _fwd(centre, 180, half_m)[1]
    lat_n = _fwd(centre, 0, half_m)[1]
    lon_e = _fwd(centre, 90, half_m)[0]
    lon_w = _fwd(centre, 270, half_m)[0]
    return Polygon([(lon_w, lat_s), (lon_e, lat_s), (lon_e, lat_n), (lon_w, lat_n)]), lon_e, lat_n


def _campus(centre: tuple[float, float]) -> Polygon:
    """A real-looking irregular campus outline, about 330 m × 260 m, built around ``centre``."""
    ring = [
        (0, 160),
        (38, 140),
        (75, 180),
        (110, 150),
        (160, 120),
        (200, 130),
        (245, 150),
        (290, 165),
        (330, 140),
    ]
    return Polygon([_fwd(centre, az, r) for az, r in ring])


def _brute_force(site: tuple[float, float], outline: Polygon, step_m: float = 0.05) -> float:
    """Smallest Geod.inv from the site to the outline densified along its geodesic edges to ``step_m``."""
    xs, ys = outline.exterior.coords.xy
    lons, lats = [], []
    for (x0, y0), (x1, y1) in zip(zip(xs[:-1], ys[:-1], strict=True), zip(xs[1:], ys[1:], strict=True), strict=True):
        r = GEOD.inv_intermediate(x0, y0, x1, y1, del_s=step_m, initial_idx=0, terminus_idx=0, return_back_azimuth=True)
        lons.extend(r.lons)
        lats.extend(r.lats)
    lons, lats = np.array(lons), np.array(lats)
    n = len(lons)
    _, _, d = GEOD.inv(np.full(n, site[0]), np.full(n, site[1]), lons, lats)
    return float(d.min())


# ---------------------------------------------------------------------------------------------------
# hand-made geometries: exact to 1 mm


@pytest.mark.parametrize("city", list(CITIES))
@pytest.mark.parametrize("built_m", [49.0, 50.0, 51.0, 99.0, 100.0, 101.0])
def test_point_due_east_of_the_east_edge(city: str, built_m: float) -> None:
    centre = CITIES[city]
    campus, lon_e, _ = _square_campus(centre)
    foot = (lon_e, _fwd(centre, 0, 30)[1])  # a point of the east edge, 30 m north of its middle
    shop = _fwd(foot, 90, built_m)
    m = distance_to_outline(Point(shop), campus)
    assert m.method == "geodesic"
    assert m.distance_m == pytest.approx(built_m, abs=MM)
    # it is measured from the right place: the foot of the perpendicular on the east edge
    assert _inv((m.from_point.x, m.from_point.y), foot) < MM
    assert (m.to_point.x, m.to_point.y) == pytest.approx(shop, abs=1e-12)


@pytest.mark.parametrize("built_m", [49.0, 50.0, 51.0, 99.0, 100.0, 101.0])
def test_point_off_a_corner_measures_to_the_corner(built_m: float) -> None:
    campus, lon_e, lat_n = _square_campus(GUILIN)
    corner = (lon_e, lat_n)
    shop = _fwd(corner, 45, built_m)
    m = distance_to_outline(Point(shop), campus)
    assert m.distance_m == pytest.approx(built_m, abs=MM)
    assert _inv((m.from_point.x, m.from_point.y), corner) < MM


@pytest.mark.parametrize("built_m", [99.0, 100.0, 101.0])
def test_footprint_measures_from_its_nearest_point(built_m: float) -> None:
    """A polluter's footprint whose west edge (a meridian) lies built_m east of the campus."""
    campus, lon_e, _ = _square_campus(NANJING)
    west_mid = _fwd((lon_e, NANJING[1]), 90, built_m)
    lon_w = west_mid[0]
    lon_far = _fwd(west_mid, 90, 80)[0]
    lat_s, lat_n = _fwd(west_mid, 180, 40)[1], _fwd(west_mid, 0, 40)[1]
    footprint = box(lon_w, lat_s, lon_far, lat_n)
    m = distance_to_outline(footprint, campus)
    assert m.distance_m == pytest.approx(built_m, abs=MM)
    assert abs(m.to_point.x - lon_w) < 1e-9  # on the footprint's west edge
    assert abs(m.from_point.x - lon_e) < 1e-9  # on the campus's east edge
    assert _inv((m.from_point.x, m.from_point.y), (m.to_point.x, m.to_point.y)) == pytest.approx(m.distance_m)


def test_multipolygon_campus_uses_the_nearer_part() -> None:
    main, lon_e, _ = _square_campus(NANJING)
    annex, _, _ = _square_campus(_fwd(NANJING, 90, 600), half_m=50)
    shop = _fwd((lon_e, NANJING[1]), 90, 180)  # 180 m from the main campus, 600-100-50-180 = 270 from the annex
    m = distance_to_outline(Point(shop), MultiPolygon([main, annex]))
    assert m.distance_m == pytest.approx(180.0, abs=MM)
    shop2 = _fwd((lon_e, NANJING[1]), 90, 400)  # 400 m from the main campus, 50 m from the annex
    assert distance_to_outline(Point(shop2), MultiPolygon([main, annex])).distance_m == pytest.approx(50.0, abs=MM)


# ---------------------------------------------------------------------------------------------------
# zero when covered


def test_point_inside_measures_zero() -> None:
    campus, _, _ = _square_campus(CHONGQING)
    m = distance_to_outline(Point(CHONGQING), campus)
    assert m.distance_m == 0.0
    assert m.from_point.equals(Point(CHONGQING))
    assert m.to_point.equals(Point(CHONGQING))


def test_point_on_the_edge_measures_zero() -> None:
    campus, lon_e, _ = _square_campus(CHONGQING)
    assert distance_to_outline(Point(lon_e, CHONGQING[1]), campus).distance_m == pytest.approx(0.0, abs=1e-6)


def test_footprint_overlapping_the_campus_measures_zero() -> None:
    campus, lon_e, _ = _square_campus(NANJING)
    west = _fwd((lon_e, NANJING[1]), 270, 5)[0]  # reaches 5 m into the campus
    east = _fwd((lon_e, NANJING[1]), 90, 40)[0]
    footprint = box(west, NANJING[1] - 0.0002, east, NANJING[1] + 0.0002)
    m = distance_to_outline(footprint, campus)
    assert m.distance_m == 0.0
    assert campus.buffer(1e-9).covers(m.from_point)
    assert footprint.buffer(1e-9).covers(m.to_point)


def test_point_only_campus_is_plain_geodesic() -> None:
    school = Point(GUILIN)
    shop = _fwd(GUILIN, 123.0, 157.25)
    m = distance_to_outline(Point(shop), school)
    assert m.distance_m == pytest.approx(157.25, abs=MM)
    assert m.from_point.equals(school)


# ---------------------------------------------------------------------------------------------------
# the reference against an independent brute force (outline densified to 5 cm)


@pytest.mark.parametrize("city", list(CITIES))
@pytest.mark.parametrize("target_m", [50.0, 100.0, 200.0])
def test_reference_agrees_with_densified_brute_force(city: str, target_m: float) -> None:
    centre = CITIES[city]
    campus = _campus(centre)
    for az in (10.0, 95.0, 200.0, 310.0):
        # walk out from the centre until the point is about target_m outside the outline
        r = 100.0
        while True:
            shop = _fwd(centre, az, r)
            d = distance_to_outline(Point(shop), campus).distance_m
            if d >= target_m:
                break
            r += target_m - d
        brute = _brute_force(shop, campus)
        ref = distance_to_outline(Point(shop), campus).distance_m
        assert ref == pytest.approx(brute, abs=0.01), (city, az, ref, brute)
        assert ref == pytest.approx(target_m, abs=0.5)


# ---------------------------------------------------------------------------------------------------
# gates


def test_nearest_gate_is_chosen_and_measured() -> None:
    campus, lon_e, lat_n = _square_campus(NANJING)
    east_gate = Point(lon_e, NANJING[1])
    north_gate = Point(NANJING[0], lat_n)
    shop = _fwd((lon_e, NANJING[1]), 60, 48.0)  # 48 m from the east gate, ~110 m from the north gate
    i, m = distance_to_gates(Point(shop), [north_gate, east_gate])
    assert i == 1
    assert m.method == "gate"
    assert m.distance_m == pytest.approx(48.0, abs=MM)
    assert m.from_point.equals(east_gate)
    # the boundary is nearer than the gate: the two methods really differ
    assert distance_to_outline(Point(shop), campus).distance_m < 48.0


def test_gate_to_footprint_uses_the_footprints_nearest_point() -> None:
    gate = (NANJING[0], NANJING[1])
    west_mid = _fwd(gate, 90, 50.0)
    east = _fwd(west_mid, 90, 20)[0]
    stall_area = box(west_mid[0], _fwd(west_mid, 180, 10)[1], east, _fwd(west_mid, 0, 10)[1])
    i, m = distance_to_gates(stall_area, [Point(_fwd(gate, 0, 300)), Point(gate)])
    assert i == 1
    assert m.distance_m == pytest.approx(50.0, abs=MM)
    assert abs(m.to_point.x - west_mid[0]) < 1e-9


def test_no_gate_raises_a_value_error() -> None:
    with pytest.raises(ValueError, match="no gate"):
        distance_to_gates(Point(NANJING), [])
    with pytest.raises(NoGateError) as info:
        distance_to_gates(Point(NANJING), [])
    assert isinstance(info.value, InvalidInput)
    assert "校门" in info.value.message_zh


# ---------------------------------------------------------------------------------------------------
# the fast frame against the reference


def _grid_around(campus: Polygon, centre: tuple[float, float], rng: np.random.Generator, n: int) -> np.ndarray:
    az = rng.uniform(0, 360, n)
    r = rng.uniform(0, 2_200, n)
    lon, lat, _ = GEOD.fwd(np.full(n, centre[0]), np.full(n, centre[1]), az, r)
    return np.column_stack([lon, lat])


@pytest.mark.parametrize(
    ("city", "frame_offset_m"),
    [("nanjing", 0.0), ("chongqing", 0.0), ("guilin", 0.0), ("nanjing", 15_000.0), ("chongqing", 45_000.0)],
)
def test_fast_frame_agrees_with_the_reference(city: str, frame_offset_m: float) -> None:
    """Max error over 0–2,000 m, with the frame centred on the campus or tens of km away from it."""
    centre = CITIES[city]
    campus = _campus(centre)
    frame = LocalMetricFrame(*_fwd(centre, 250, frame_offset_m))
    sites = _grid_around(campus, centre, np.random.default_rng(7), 400)
    fast = frame.distances(sites, campus)
    ref = np.array([distance_to_outline(Point(s), campus).distance_m for s in sites])
    assert ref.max() > 1_800 and (ref == 0).sum() > 0  # the sample covers inside up to ~2 km
    err = np.abs(fast - ref)
    # measured max error: 5e-8 m centred on the campus, 6e-7 m at 15 km, 3e-6 m at 45 km (5e-5 m at 150 km)
    assert err.max() < 1e-3, f"max fast-frame error {err.max():.2e} m"
    assert np.array_equal(fast == 0, ref == 0)

    thresholds = np.array([50.0, 100.0, 200.0])
    for d in thresholds:
        flag = refine_near_threshold(fast, d)
        # a decision that differs between the fast path and the reference is always re-measured
        assert flag[(fast <= d) != (ref <= d)].all()
        # and so is every site within 2 m of the threshold whose fast error exceeds 0.1 m
        assert flag[(np.abs(ref - d) <= 2.0) & (err > 0.1)].all()


def test_web_mercator_would_be_wrong_but_the_frame_is_not() -> None:
    """Sanity check that the test can fail: a naive degrees→metres frame is metres off."""
    campus, lon_e, _ = _square_campus(CHONGQING)
    shop = _fwd((lon_e, CHONGQING[1]), 90, 100.0)
    frame = LocalMetricFrame(*CHONGQING)
    assert frame.distances(np.array([shop]), campus)[0] == pytest.approx(100.0, abs=MM)
    naive = (shop[0] - lon_e) * 111_320.0  # equator metres per degree, no cos(lat)
    assert abs(naive - 100.0) > 10


def test_frame_handles_empty_and_bad_input() -> None:
    frame = LocalMetricFrame(*NANJING)
    campus, _, _ = _square_campus(NANJING)
    assert frame.distances(np.zeros((0, 2)), campus).shape == (0,)
    with pytest.raises(InvalidInput, match=r"\(3,\)"):
        frame.distances(np.array([1.0, 2.0, 3.0]), campus)
    with pytest.raises(CoordinateError, match="32.04"):
        frame.distances(np.array([[118.78, 32.04], [32.04, 118.78]]), campus)


# ---------------------------------------------------------------------------------------------------
# refine_near_threshold


def test_refine_flags_only_the_band() -> None:
    approx = np.array([97.9, 98.0, 99.5, 100.0, 101.9, 102.0, 102.1, np.nan, np.inf])
    flags = refine_near_threshold(approx, 100.0)
    assert flags.tolist() == [False, True, True, True, True, True, False, True, False]
    per_row = refine_near_threshold(np.array([49.0, 199.0]), np.array([50.0, 50.0]), band_m=1.0)
    assert per_row.tolist() == [True, False]
    with pytest.raises(InvalidInput, match="-1"):
        refine_near_threshold(approx, 100.0, band_m=-1)


@given(
    approx=st.lists(st.floats(0, 3000), min_size=1, max_size=30),
    threshold=st.floats(0, 2500),
    band=st.floats(0, 10),
    extra=st.floats(0, 10),
)
def test_a_wider_band_never_flags_fewer(approx: list[float], threshold: float, band: float, extra: float) -> None:
    a = np.array(approx)
    narrow = refine_near_threshold(a, threshold, band_m=band)
    wide = refine_near_threshold(a, threshold, band_m=band + extra)
    assert not (narrow & ~wide).any()


# ---------------------------------------------------------------------------------------------------
# properties


@settings(max_examples=60, deadline=None)
@given(
    az=st.floats(0, 360),
    dist=st.floats(0.5, 5_000),
    lon=st.floats(97, 125),
    lat=st.floats(18, 50),
)
def test_geodesic_distance_round_trips_geod_fwd(az: float, dist: float, lon: float, lat: float) -> None:
    other = _fwd((lon, lat), az, dist)
    assert geodesic_distance(Point(lon, lat), Point(other)) == pytest.approx(dist, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    city=st.sampled_from(list(CITIES)),
    az=st.floats(0, 360),
    r1=st.floats(170, 2_000),
    extra=st.floats(0.01, 500),
)
def test_moving_away_along_a_ray_never_measures_nearer(city: str, az: float, r1: float, extra: float) -> None:
    """The campus is star-shaped from its centre, so distance grows along every ray leaving it."""
    centre = CITIES[city]
    campus = _campus(centre)
    d1 = distance_to_outline(Point(_fwd(centre, az, r1)), campus).distance_m
    d2 = distance_to_outline(Point(_fwd(centre, az, r1 + extra)), campus).distance_m
    assert d2 >= d1 - 1e-6
    # and the reference never reports more than the distance to any vertex
    xs, ys = campus.exterior.coords.xy
    far = _fwd(centre, az, r1 + extra)
    assert d2 <= min(_inv(far, (x, y)) for x, y in zip(xs, ys, strict=True)) + 1e-6


@settings(max_examples=40, deadline=None)
@given(city=st.sampled_from(list(CITIES)), az=st.floats(0, 360), r=st.floats(0, 2_500))
def test_fast_frame_property(city: str, az: float, r: float) -> None:
    centre = CITIES[city]
    campus = _campus(centre)
    site = _fwd(centre, az, r)
    fast = LocalMetricFrame(*centre).distances(np.array([site]), campus)[0]
    assert fast == pytest.approx(distance_to_outline(Point(site), campus).distance_m, abs=0.01)


# ---------------------------------------------------------------------------------------------------
# input errors


def test_swapped_coordinates_are_rejected_with_the_value() -> None:
    campus, _, _ = _square_campus(NANJING)
    with pytest.raises(CoordinateError) as info:
        distance_to_outline(Point(32.04, 118.78), campus)
    err = info.value
    assert "118.78" in err.message_en and "swapped" in err.message_en
    assert "118.78" in err.message_zh and "颠倒" in err.message_zh
    assert err.field == "site"


def test_non_finite_coordinate_is_rejected() -> None:
    with pytest.raises(CoordinateError, match="nan"):
        geodesic_distance(Point(float("nan"), 32.0), Point(118.0, 32.0))


@pytest.mark.parametrize(
    ("site", "outline", "fragment"),
    [
        (Point(), box(118.0, 32.0, 118.01, 32.01), "empty"),
        (
            Point(118.0, 32.0),
            Polygon([(118, 32), (118.01, 32.01), (118.01, 32), (118, 32.01)]),
            "Self-intersection",
        ),
        (Point(118.0, 32.0), "POLYGON ((0 0, 1 0, 1 1, 0 0))", "shapely geometry"),
        (LineString([(118.0, 32.0), (118.001, 32.0)]), box(118.0, 32.0, 118.01, 32.01), "LineString"),
    ],
)
def test_bad_geometries_are_rejected(site: object, outline: object, fragment: str) -> None:
    with pytest.raises(GeometryError, match=fragment) as info:
        distance_to_outline(site, outline)  # type: ignore[arg-type]
    assert info.value.message_zh != info.value.message_en


def test_measurement_is_frozen() -> None:
    m = Measurement(1.0, Point(0, 0), Point(0, 0), "geodesic")
    with pytest.raises(AttributeError):
        m.distance_m = 2.0  # type: ignore[misc]
