"""Coordinate systems used by Chinese data sources and their conversion to WGS84.

Every coordinate that enters safezone carries its system (``wgs84``, ``cgcs2000``, ``gcj02`` or
``bd09``); it is converted on entry and stored as WGS84 (EPSG:4326). A missing system is an error.

- ``wgs84`` and ``cgcs2000`` are treated as identical: CGCS2000 (EPSG:4490) is within about a metre of
  WGS84 and the decision layer adds that metre as uncertainty.
- ``gcj02`` (Amap, Tencent) is the obfuscated "Mars" system: WGS84 shifted by 480-560 m in the seed
  cities. The usual convention is kept: no shift outside China's bounding box.
- ``bd09`` (Baidu) is GCJ-02 shifted again (1,050-1,200 m from WGS84 in total). Like the reference
  implementation (``coordTransform``) the BD-09 step applies everywhere.

The forward formulas are the standard ones, written vectorised in numpy; the tests check that they
agree with the ``coordTransform`` package to 1e-12 degrees. The inverses iterate (a fixed point of the
forward formula) until every point reproduces its input to within 1e-9 degrees; the one-step inverses
found in most libraries are off by up to 1.4 m.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, get_args

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo.errors import CoordinateError, GeometryError
from geo.vocabulary import Crs

CRS_CHOICES: tuple[str, ...] = get_args(Crs)

# aliases, compared after _alias_key(): lower case, without spaces, hyphens and underscores
_ALIASES: dict[str, str] = {
    "wgs84": "wgs84",
    "wgs1984": "wgs84",
    "epsg:4326": "wgs84",
    "epsg4326": "wgs84",
    "4326": "wgs84",
    "crs84": "wgs84",
    "ogc:crs84": "wgs84",
    "gps": "wgs84",
    "cgcs2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "epsg4490": "cgcs2000",
    "4490": "cgcs2000",
    "国家2000": "cgcs2000",
    "2000国家大地坐标系": "cgcs2000",
    "gcj02": "gcj02",
    "gcj": "gcj02",
    "火星坐标": "gcj02",
    "火星坐标系": "gcj02",
    "国测局坐标": "gcj02",
    "国测局坐标系": "gcj02",
    "高德": "gcj02",
    "高德坐标": "gcj02",
    "amap": "gcj02",
    "腾讯": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "百度": "bd09",
    "百度坐标": "bd09",
    "baidu": "bd09",
}

# Krasovsky 1940 ellipsoid used by the GCJ-02 formula
_A = 6378245.0
_EE = 0.00669342162296594323
_PI = 3.1415926535897932384626
_X_PI = 3.14159265358979324 * 3000.0 / 180.0

# China's bounding box of the usual convention (strict inequalities, as in coordTransform)
_CHINA_LON = (73.66, 135.05)
_CHINA_LAT = (3.86, 53.55)

# the classic swap: a Chinese latitude given as longitude and a Chinese longitude as latitude
_SWAP_LON = (3.0, 54.0)
_SWAP_LAT = (73.0, 136.0)

_INVERSE_TOL_DEG = 1e-9
_INVERSE_TARGET_DEG = 1e-12
_INVERSE_MAX_ITER = 50

_ALLOWED = ", ".join(CRS_CHOICES)


def parse_crs(value: object, *, field: str = "crs", row: int | None = None) -> str:
    """Normalise the name of a coordinate system to one of ``CRS_CHOICES``.

    Parameters
    ----------
    value
        The name as given: ``"WGS84"``, ``"EPSG:4326"``, ``"CGCS2000"``, ``"EPSG:4490"``, ``"GCJ-02"``,
        ``"火星坐标"``, ``"高德"``, ``"BD-09"``, ``"百度"`` ... (case-insensitive; spaces, hyphens and
        underscores are ignored).
    field, row
        Where the value comes from, for the error.

    Returns
    -------
    str
        One of ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``, ``"bd09"``.

    Raises
    ------
    CoordinateError
        If the value is missing (None, empty, NaN) or not a known coordinate system.
    """
    if _is_missing(value):
        msg = f"coordinate system missing in {field!r}: one of {_ALLOWED} is required"
        raise CoordinateError(
            msg,
            message_zh=f"字段 {field!r} 缺少坐标系：必须注明 {_ALLOWED} 之一",
            field=field,
            row=row,
            value=value,
        )
    if isinstance(value, (str, int, np.integer)) and not isinstance(value, bool):
        key = _alias_key(str(value))
        if key in _ALIASES:
            return _ALIASES[key]
    msg = f"unknown coordinate system {value!r} in {field!r}; allowed: {_ALLOWED}"
    raise CoordinateError(
        msg,
        message_zh=f"字段 {field!r} 的坐标系 {value!r} 无法识别；可选：{_ALLOWED}",
        field=field,
        row=row,
        value=value,
    )


def check_lonlat(lon: object, lat: object, *, field: str = "location", row: int | None = None) -> tuple[float, float]:
    """Check one longitude/latitude pair and return it as floats.

    Parameters
    ----------
    lon, lat
        Longitude and latitude in degrees (numbers or numeric strings).
    field, row
        Where the values come from, for the error.

    Returns
    -------
    tuple of float
        ``(lon, lat)``.

    Raises
    ------
    CoordinateError
        If a value is missing, not a number, not finite, out of range, or if the pair looks swapped
        (a Chinese latitude given as longitude and a Chinese longitude as latitude).
    """
    x = _to_float(lon, "longitude", "经度", field=field, row=row)
    y = _to_float(lat, "latitude", "纬度", field=field, row=row)
    pair = (x, y)
    if not (math.isfinite(x) and math.isfinite(y)):
        msg = f"coordinate ({lon}, {lat}) in {field!r} is not finite"
        raise CoordinateError(
            msg,
            message_zh=f"字段 {field!r} 的坐标 ({lon}, {lat}) 不是有限数值",
            field=field,
            row=row,
            value=pair,
        )
    if _SWAP_LON[0] <= x <= _SWAP_LON[1] and _SWAP_LAT[0] <= y <= _SWAP_LAT[1]:
        msg = f"longitude and latitude appear swapped in {field!r}: lon={x}, lat={y} (did you mean lon={y}, lat={x}?)"
        raise CoordinateError(
            msg,
            message_zh=f"字段 {field!r} 的经纬度似乎写反了：经度={x}，纬度={y}（应为经度={y}，纬度={x}？）",
            field=field,
            row=row,
            value=pair,
        )
    if not -180.0 <= x <= 180.0:
        msg = f"longitude {x} in {field!r} is outside [-180, 180]"
        raise CoordinateError(
            msg,
            message_zh=f"字段 {field!r} 的经度 {x} 超出 [-180, 180] 范围",
            field=field,
            row=row,
            value=pair,
        )
    if not -90.0 <= y <= 90.0:
        msg = f"latitude {y} in {field!r} is outside [-90, 90]"
        raise CoordinateError(
            msg, message_zh=f"字段 {field!r} 的纬度 {y} 超出 [-90, 90] 范围", field=field, row=row, value=pair
        )
    return pair


def to_wgs84(lon: Any, lat: Any, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates from ``crs`` to WGS84 (vectorised).

    Parameters
    ----------
    lon, lat
        Longitudes and latitudes in degrees: scalars or arrays of the same (broadcastable) shape.
    crs
        The system of the input; any alias accepted by `parse_crs`.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitudes and latitudes, float64, of the broadcast shape. NaN stays NaN.

    Raises
    ------
    CoordinateError
        If ``crs`` is unknown, or (never observed) if the iterative inverse does not converge.
    """
    system = parse_crs(crs)
    x, y = _as_arrays(lon, lat)
    if system == "gcj02":
        return _gcj02_to_wgs84(x, y)
    if system == "bd09":
        return _gcj02_to_wgs84(*_bd09_to_gcj02(x, y))
    return x.copy(), y.copy()


def from_wgs84(lon: Any, lat: Any, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 coordinates to ``crs`` (vectorised).

    Parameters
    ----------
    lon, lat
        WGS84 longitudes and latitudes in degrees: scalars or arrays of the same (broadcastable) shape.
    crs
        The target system; any alias accepted by `parse_crs`.

    Returns
    -------
    tuple of numpy.ndarray
        Longitudes and latitudes in ``crs``, float64, of the broadcast shape.
    """
    system = parse_crs(crs)
    x, y = _as_arrays(lon, lat)
    if system == "gcj02":
        return _wgs84_to_gcj02(x, y)
    if system == "bd09":
        return _gcj02_to_bd09(*_wgs84_to_gcj02(x, y))
    return x.copy(), y.copy()


def point_to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert one point from ``crs`` to WGS84; see `to_wgs84`."""
    x, y = to_wgs84(lon, lat, crs)
    return float(x), float(y)


def point_from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert one WGS84 point to ``crs``; see `from_wgs84`."""
    x, y = from_wgs84(lon, lat, crs)
    return float(x), float(y)


def geometry_to_wgs84(geom: BaseGeometry, crs: str) -> BaseGeometry:
    """Convert every vertex of a shapely geometry from ``crs`` to WGS84.

    Parameters
    ----------
    geom
        Any shapely geometry in lon/lat degrees; a Z coordinate is kept unchanged.
    crs
        The system of the geometry; any alias accepted by `parse_crs`.

    Returns
    -------
    shapely.geometry.base.BaseGeometry
        The same kind of geometry in WGS84.
    """
    return _transform_geometry(geom, crs, to_wgs84)


def geometry_from_wgs84(geom: BaseGeometry, crs: str) -> BaseGeometry:
    """Convert every vertex of a WGS84 shapely geometry to ``crs``; see `geometry_to_wgs84`."""
    return _transform_geometry(geom, crs, from_wgs84)


# --- helpers ------------------------------------------------------------------------------------


def _alias_key(text: str) -> str:
    return "".join(ch for ch in text.strip().lower() if ch not in " \t-_\u3000")


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _to_float(value: object, what_en: str, what_zh: str, *, field: str, row: int | None) -> float:
    if _is_missing(value):
        msg = f"{what_en} missing in {field!r} (got {value!r})"
        raise CoordinateError(
            msg,
            message_zh=f"字段 {field!r} 缺少{what_zh}（收到 {value!r}）",
            field=field,
            row=row,
            value=value,
        )
    if not isinstance(value, bool):
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    msg = f"{what_en} {value!r} in {field!r} is not a number"
    raise CoordinateError(
        msg, message_zh=f"字段 {field!r} 的{what_zh} {value!r} 不是数字", field=field, row=row, value=value
    )


def _as_arrays(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return x, y


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon > _CHINA_LON[0]) & (lon < _CHINA_LON[1]) & (lat > _CHINA_LAT[0]) & (lat < _CHINA_LAT[1])


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 shift (degrees) at a WGS84 point, ignoring the China bounding box."""
    x = lon - 105.0
    y = lat - 35.0
    with np.errstate(invalid="ignore", over="ignore"):
        common = (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
        root_x = np.sqrt(np.abs(x))
        dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * root_x
        dlat = dlat + common
        dlat = dlat + (20.0 * np.sin(y * _PI) + 40.0 * np.sin(y / 3.0 * _PI)) * 2.0 / 3.0
        dlat = dlat + (160.0 * np.sin(y / 12.0 * _PI) + 320 * np.sin(y * _PI / 30.0)) * 2.0 / 3.0
        dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * root_x
        dlon = dlon + common
        dlon = dlon + (20.0 * np.sin(x * _PI) + 40.0 * np.sin(x / 3.0 * _PI)) * 2.0 / 3.0
        dlon = dlon + (150.0 * np.sin(x / 12.0 * _PI) + 300.0 * np.sin(x / 30.0 * _PI)) * 2.0 / 3.0
        radlat = lat / 180.0 * _PI
        magic = 1 - _EE * np.sin(radlat) ** 2
        sqrtmagic = np.sqrt(magic)
        dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * _PI)
        dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * _PI)
    return dlon, dlat


def _wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlon, dlat = _gcj02_offset(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact inverse of `_wgs84_to_gcj02` where one exists.

    Solves ``w + offset(w) = g`` by fixed-point iteration (the offset changes by about 0.2 % of a
    step, so each iteration gains two to three digits). As in the forward direction, a point outside
    China's box is not shifted (it is its own preimage). In a strip about 1 km wide along the box's
    edge the forward map is not one-to-one; only there can a round trip fail.
    """
    out_x, out_y = lon.copy(), lat.copy()
    near = _in_china(lon, lat)
    if not near.any():
        return out_x, out_y
    gx, gy = lon[near], lat[near]

    def step(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dlon, dlat = _gcj02_offset(x, y)
        return gx - dlon, gy - dlat

    def forward(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dlon, dlat = _gcj02_offset(x, y)
        return x + dlon, y + dlat

    x, y = _fixed_point(step, forward, gx, gy, start=(gx, gy), what="GCJ-02")
    inside = _in_china(x, y)
    out_x[near] = np.where(inside, x, gx)
    out_y[near] = np.where(inside, y, gy)
    return out_x, out_y


def _gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", over="ignore"):
        z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
        theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
        return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_to_gcj02_one_step(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", over="ignore"):
        x = lon - 0.0065
        y = lat - 0.006
        z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
        theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
        return z * np.cos(theta), z * np.sin(theta)


def _bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact inverse of `_gcj02_to_bd09`: the published one-step inverse, refined by iteration."""
    out_x = np.full_like(lon, np.nan)
    out_y = np.full_like(lat, np.nan)
    finite = np.isfinite(lon) & np.isfinite(lat)
    if not finite.any():
        return out_x, out_y
    bx, by = lon[finite], lat[finite]

    def step(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fx, fy = _gcj02_to_bd09(x, y)
        return x - (fx - bx), y - (fy - by)

    start = _bd09_to_gcj02_one_step(bx, by)
    out_x[finite], out_y[finite] = _fixed_point(step, _gcj02_to_bd09, bx, by, start=start, what="BD-09")
    return out_x, out_y


def _fixed_point(
    step: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    start: tuple[np.ndarray, np.ndarray],
    what: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Iterate ``step`` until ``forward`` reproduces the finite ``(lon, lat)``; raise if it does not."""
    x, y = start
    residual = np.zeros_like(lon)
    for _ in range(_INVERSE_MAX_ITER):
        x, y = step(x, y)
        fx, fy = forward(x, y)
        with np.errstate(invalid="ignore"):
            residual = np.maximum(np.abs(fx - lon), np.abs(fy - lat))
        if residual.size == 0 or residual.max() <= _INVERSE_TARGET_DEG:
            return x, y
    if residual.max() <= _INVERSE_TOL_DEG:  # NaN (overflow on absurd input) fails this
        return x, y
    worst = np.unravel_index(int(np.argmax(residual)), residual.shape)
    point = (float(lon[worst]), float(lat[worst]))
    msg = (
        f"inverse {what} conversion did not converge at {point} "
        f"(residual {float(residual.max()):.3g} degrees after {_INVERSE_MAX_ITER} iterations)"
    )
    raise CoordinateError(
        msg,
        message_zh=f"{what} 坐标在 {point} 处的逆转换未收敛（{_INVERSE_MAX_ITER} 次迭代后残差 "
        f"{float(residual.max()):.3g} 度）",
        value=point,
    )


def _transform_geometry(
    geom: BaseGeometry,
    crs: str,
    convert: Callable[[Any, Any, str], tuple[np.ndarray, np.ndarray]],
) -> BaseGeometry:
    if not isinstance(geom, BaseGeometry):
        msg = f"expected a shapely geometry, got {type(geom).__name__}: {geom!r}"
        raise GeometryError(msg, message_zh=f"需要 shapely 几何对象，收到 {type(geom).__name__}：{geom!r}")
    system = parse_crs(crs)
    if system in ("wgs84", "cgcs2000") or geom.is_empty:
        return geom

    def _convert(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        out[:, 0], out[:, 1] = convert(coords[:, 0], coords[:, 1], system)
        return out

    return shapely.transform(geom, _convert, include_z=geom.has_z)
