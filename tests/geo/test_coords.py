"""Tests for geo.coords: coordinate-system names, lon/lat checks, and GCJ-02 / BD-09 conversions."""

from __future__ import annotations

import math

import coordTransform
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, Point, Polygon

from geo.coords import (
    CRS_CHOICES,
    check_lonlat,
    from_wgs84,
    geometry_from_wgs84,
    geometry_to_wgs84,
    parse_crs,
    point_from_wgs84,
    point_to_wgs84,
    to_wgs84,
)
from geo.errors import CoordinateError, GeometryError, InvalidInput

GEOD = Geod(ellps="WGS84")

# extents (lon0, lon1, lat0, lat1) of the seed cities
CITIES = {
    "guilin": (109.9, 110.6, 24.9, 25.6),
    "chongqing": (105.3, 110.2, 28.2, 32.2),
    "nanjing": (118.5, 119.1, 31.9, 32.3),
    "guangdong": (109.7, 117.3, 20.2, 25.5),
}
# Xinjiekou, Nanjing (WGS84)
XINJIEKOU = (118.7837, 32.0416)


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@st.composite
def city_points(draw: st.DrawFn) -> tuple[str, float, float]:
    name = draw(st.sampled_from(sorted(CITIES)))
    lon0, lon1, lat0, lat1 = CITIES[name]
    lon = draw(st.floats(lon0, lon1, allow_nan=False))
    lat = draw(st.floats(lat0, lat1, allow_nan=False))
    return name, lon, lat


def _city_grid(n: int = 25) -> tuple[np.ndarray, np.ndarray]:
    lons, lats = [], []
    for lon0, lon1, lat0, lat1 in CITIES.values():
        x, y = np.meshgrid(np.linspace(lon0, lon1, n), np.linspace(lat0, lat1, n))
        lons.append(x.ravel())
        lats.append(y.ravel())
    return np.concatenate(lons), np.concatenate(lats)


# --- parse_crs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("WGS84", "wgs84"),
        ("wgs84", "wgs84"),
        ("WGS-84", "wgs84"),
        (" wgs 84 ", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("epsg:4326", "wgs84"),
        ("CGCS2000", "cgcs2000"),
        ("EPSG:4490", "cgcs2000"),
        ("GCJ02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("gcj_02", "gcj02"),
        ("火星坐标", "gcj02"),
        ("高德", "gcj02"),
        ("BD09", "bd09"),
        ("BD-09", "bd09"),
        ("bd09", "bd09"),
        ("百度", "bd09"),
    ],
)
def test_parse_crs_aliases(alias: str, expected: str) -> None:
    assert parse_crs(alias) == expected


def test_parse_crs_choices_are_fixed_points() -> None:
    assert CRS_CHOICES == ("wgs84", "cgcs2000", "gcj02", "bd09")
    for choice in CRS_CHOICES:
        assert parse_crs(choice) == choice


@pytest.mark.parametrize("missing", [None, "", "   ", float("nan"), np.nan])
def test_parse_crs_missing(missing: object) -> None:
    with pytest.raises(CoordinateError, match="coordinate system missing") as info:
        parse_crs(missing, field="coord_sys", row=7)
    err = info.value
    assert isinstance(err, InvalidInput)
    assert err.field == "coord_sys"
    assert err.row == 7
    assert "坐标系" in err.message_zh


@pytest.mark.parametrize("unknown", ["EPSG:3857", "bd09mc", "UTM50N", "北京54", 3857, True, ["wgs84"]])
def test_parse_crs_unknown_names_value_and_choices(unknown: object) -> None:
    with pytest.raises(CoordinateError) as info:
        parse_crs(unknown, row=3)
    err = info.value
    assert repr(unknown) in err.message_en
    for choice in CRS_CHOICES:
        assert choice in err.message_en
        assert choice in err.message_zh
    assert err.value == unknown
    assert err.row == 3


# --- check_lonlat --------------------------------------------------------------------------------


def test_check_lonlat_accepts_and_returns_floats() -> None:
    assert check_lonlat(118.78, 32.05) == (118.78, 32.05)
    lon, lat = check_lonlat("118.78", np.float32(32.0))
    assert (lon, lat) == (118.78, 32.0)
    assert type(lon) is float
    assert type(lat) is float
    # a lon/lat outside China that is not a swap is fine
    assert check_lonlat(-73.98, 40.75) == (-73.98, 40.75)
    assert check_lonlat(180.0, -90.0) == (180.0, -90.0)


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(float("inf"), 32.05), (118.78, -math.inf), ("inf", 32.05)],
)
def test_check_lonlat_not_finite(lon: float, lat: float) -> None:
    with pytest.raises(CoordinateError, match="not finite") as info:
        check_lonlat(lon, lat, field="shop", row=12)
    assert info.value.field == "shop"
    assert info.value.row == 12
    assert "有限" in info.value.message_zh


@pytest.mark.parametrize(("lon", "lat", "what"), [(float("nan"), 32.05, "longitude"), (118.78, np.nan, "latitude")])
def test_check_lonlat_nan_is_missing(lon: float, lat: float, what: str) -> None:
    # an empty spreadsheet cell arrives as NaN: reported as missing, showing the value
    with pytest.raises(CoordinateError, match=f"{what} missing .*nan") as info:
        check_lonlat(lon, lat, field="shop", row=12)
    assert info.value.row == 12


@pytest.mark.parametrize(
    ("lon", "lat", "what"),
    [
        (180.5, 32.0, "longitude"),
        (-181.0, 32.0, "longitude"),
        (118.78, 90.01, "latitude"),
        (10.0, -95.0, "latitude"),
    ],
)
def test_check_lonlat_out_of_range(lon: float, lat: float, what: str) -> None:
    with pytest.raises(CoordinateError, match=f"{what} .* outside") as info:
        check_lonlat(lon, lat)
    # the message shows the bad value
    bad = lon if what == "longitude" else lat
    assert str(bad) in info.value.message_en
    assert str(bad) in info.value.message_zh


@pytest.mark.parametrize(("lon", "lat"), [(32.05, 118.78), (25.27, 110.29), (29.56, 106.55), (23.13, 113.26)])
def test_check_lonlat_swapped(lon: float, lat: float) -> None:
    with pytest.raises(CoordinateError, match="longitude and latitude appear swapped") as info:
        check_lonlat(lon, lat, row=4)
    err = info.value
    assert err.value == (lon, lat)
    assert str(lat) in err.message_en
    assert "写反" in err.message_zh


@pytest.mark.parametrize(("lon", "lat"), [(None, 32.0), (118.0, ""), ("abc", 32.0), (True, 32.0), ([1], 32.0)])
def test_check_lonlat_missing_or_not_a_number(lon: object, lat: object) -> None:
    with pytest.raises(CoordinateError) as info:
        check_lonlat(lon, lat)
    bad = lon if lat == 32.0 else lat
    assert repr(bad) in info.value.message_en


# --- forward conversions agree with coordTransform -----------------------------------------------


def test_forward_agrees_with_coordtransform_everywhere() -> None:
    rng = np.random.default_rng(20210612)
    # all of China's box plus a margin outside it (where GCJ-02 does not shift)
    lon = rng.uniform(60.0, 150.0, 20_000)
    lat = rng.uniform(-5.0, 60.0, 20_000)
    gx, gy = from_wgs84(lon, lat, "gcj02")
    cx, cy = coordTransform.wgs84_to_gcj02(lon, lat)
    np.testing.assert_allclose(gx, cx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gy, cy, rtol=0, atol=1e-12)
    bx, by = from_wgs84(lon, lat, "bd09")
    cx, cy = coordTransform.wgs84_to_bd09(lon, lat)
    np.testing.assert_allclose(bx, cx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(by, cy, rtol=0, atol=1e-12)


@given(city_points())
@settings(max_examples=200, deadline=None)
def test_forward_point_agrees_with_coordtransform_scalar(point: tuple[str, float, float]) -> None:
    _, lon, lat = point
    for crs, reference in (("gcj02", coordTransform.wgs84_to_gcj02), ("bd09", coordTransform.wgs84_to_bd09)):
        ours = point_from_wgs84(lon, lat, crs)
        theirs = reference(lon, lat)
        assert abs(ours[0] - theirs[0]) <= 1e-12
        assert abs(ours[1] - theirs[1]) <= 1e-12


# --- round trips ---------------------------------------------------------------------------------


@given(city_points())
@settings(max_examples=300, deadline=None)
def test_round_trip_within_5_cm_and_shift_is_large(point: tuple[str, float, float]) -> None:
    name, lon, lat = point
    for crs, (low, high) in (("gcj02", (300.0, 800.0)), ("bd09", (900.0, 1500.0))):
        x, y = point_from_wgs84(lon, lat, crs)
        shift = float(_metres(lon, lat, x, y))
        assert low < shift < high, f"{crs} shift at {name} ({lon}, {lat}) is {shift:.1f} m"
        back = point_to_wgs84(x, y, crs)
        assert float(_metres(lon, lat, *back)) < 0.05, (crs, name, lon, lat, back)


def test_vectorised_round_trip_beats_coordtransform_one_step_inverse() -> None:
    lon, lat = _city_grid()
    for crs, one_step in (("gcj02", coordTransform.gcj02_to_wgs84), ("bd09", coordTransform.bd09_to_wgs84)):
        x, y = from_wgs84(lon, lat, crs)
        ours = _metres(lon, lat, *to_wgs84(x, y, crs))
        theirs = _metres(lon, lat, *np.asarray(one_step(x, y)))
        # ours is exact to a millimetre; the usual one-step inverse is off by metres
        assert ours.max() < 0.001, crs
        assert theirs.max() > 1.0, crs
        assert np.all(ours <= theirs + 1e-6), crs
        # the residual in degrees: converting back forward reproduces the input to 1e-9 degrees
        fx, fy = from_wgs84(*to_wgs84(x, y, crs), crs)
        assert np.abs(fx - x).max() <= 1e-9
        assert np.abs(fy - y).max() <= 1e-9


def test_wgs84_and_cgcs2000_are_identity() -> None:
    lon = np.array([118.78, 110.29])
    lat = np.array([32.05, 25.27])
    for crs in ("wgs84", "cgcs2000", "EPSG:4490"):
        x, y = to_wgs84(lon, lat, crs)
        np.testing.assert_array_equal(x, lon)
        np.testing.assert_array_equal(y, lat)
        x[0] = 0.0  # a copy: the caller's array is untouched
        assert lon[0] == 118.78
        assert point_from_wgs84(118.78, 32.05, crs) == (118.78, 32.05)


def test_known_direction_of_the_shift_in_nanjing() -> None:
    # GCJ-02 and BD-09 both lie to the east of WGS84 in Nanjing, BD-09 also to the north
    gx, gy = point_from_wgs84(*XINJIEKOU, "gcj02")
    bx, by = point_from_wgs84(*XINJIEKOU, "bd09")
    assert gx > XINJIEKOU[0]
    assert bx > gx
    assert by > gy
    # a licence recorded at the Amap coordinate of the school is placed back on the school
    assert float(_metres(*XINJIEKOU, *point_to_wgs84(gx, gy, "高德"))) < 0.001
    assert float(_metres(*XINJIEKOU, *point_to_wgs84(bx, by, "百度"))) < 0.001


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_shapes_scalars_and_nan(crs: str) -> None:
    x, y = to_wgs84(118.78, 32.05, crs)
    assert x.shape == ()
    assert x.dtype == np.float64
    lon = np.array([[118.78, np.nan], [110.29, 106.55]])
    lat = np.array([[32.05, 25.0], [np.nan, 29.56]])
    x, y = to_wgs84(lon, lat, crs)
    assert x.shape == (2, 2)
    assert np.isnan(x[0, 1])
    assert np.isnan(y[1, 0])
    expected = point_to_wgs84(106.55, 29.56, crs)
    assert (x[1, 1], y[1, 1]) == pytest.approx(expected, abs=1e-12)
    # broadcasting a scalar latitude against many longitudes
    x, y = from_wgs84([118.7, 118.8, 118.9], 32.0, crs)
    assert x.shape == y.shape == (3,)
    empty = to_wgs84(np.array([]), np.array([]), crs)
    assert empty[0].shape == (0,)


def test_outside_china_no_gcj02_shift_both_ways() -> None:
    # Tokyo, Singapore, London, the South China Sea south of the box: no GCJ-02 shift either way
    lon = np.array([139.69, 103.82, -0.13, 110.0])
    lat = np.array([35.69, 1.35, 51.51, 2.0])
    for convert in (to_wgs84, from_wgs84):
        x, y = convert(lon, lat, "gcj02")
        np.testing.assert_array_equal(x, lon)
        np.testing.assert_array_equal(y, lat)
    # BD-09 applies its own offset everywhere (as coordTransform does), and still round-trips
    bx, by = from_wgs84(lon, lat, "bd09")
    assert np.all(_metres(lon, lat, bx, by) > 100)
    assert np.all(_metres(lon, lat, *to_wgs84(bx, by, "bd09")) < 0.001)


def test_infinite_and_absurd_inputs() -> None:
    x, y = to_wgs84(np.inf, 32.0, "gcj02")
    assert np.isinf(x)
    with pytest.raises(CoordinateError, match="did not converge"):
        to_wgs84(1e300, 1e300, "bd09")


def test_unknown_crs_in_conversion() -> None:
    with pytest.raises(CoordinateError, match="EPSG:3857"):
        to_wgs84(118.0, 32.0, "EPSG:3857")
    with pytest.raises(CoordinateError, match="missing"):
        from_wgs84(118.0, 32.0, None)  # type: ignore[arg-type]


# --- geometries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_geometry_round_trip_and_vertices(crs: str) -> None:
    lon0, lat0 = XINJIEKOU
    square = Polygon([(lon0, lat0), (lon0 + 0.001, lat0), (lon0 + 0.001, lat0 + 0.001), (lon0, lat0 + 0.001)])
    moved = geometry_from_wgs84(square, crs)
    assert moved.geom_type == "Polygon"
    for (wx, wy), (mx, my) in zip(square.exterior.coords, moved.exterior.coords, strict=True):
        assert (mx, my) == pytest.approx(point_from_wgs84(wx, wy, crs), abs=1e-12)
    back = geometry_to_wgs84(moved, crs)
    assert shapely.equals_exact(back, square, tolerance=1e-9)
    # a ~100 m square stays a ~100 m square (the shift is almost a translation: < 1 % area change)
    assert abs(moved.area - square.area) / square.area < 1e-2


def test_geometry_keeps_z_and_handles_collections_and_empty() -> None:
    line = LineString([(118.78, 32.04, 5.0), (118.79, 32.05, 7.0)])
    out = geometry_from_wgs84(line, "gcj02")
    assert out.has_z
    assert [c[2] for c in out.coords] == [5.0, 7.0]
    multi = shapely.MultiPoint([(118.78, 32.04), (110.29, 25.27)])
    out = geometry_to_wgs84(multi, "bd09")
    assert len(out.geoms) == 2
    assert (out.geoms[1].x, out.geoms[1].y) == pytest.approx(point_to_wgs84(110.29, 25.27, "bd09"), abs=1e-12)
    assert geometry_to_wgs84(Point(), "gcj02").is_empty
    same = Point(118.78, 32.04)
    assert geometry_to_wgs84(same, "cgcs2000").equals(same)


def test_geometry_not_a_geometry() -> None:
    with pytest.raises(GeometryError, match="shapely geometry"):
        geometry_to_wgs84((118.78, 32.04), "gcj02")  # type: ignore[arg-type]
