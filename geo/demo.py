"""A deterministic synthetic demo city.

:func:`generate_city` builds a whole city that exercises every part of safezone: districts, a street
graph, schools of every level with campus outlines and gates, permits of every category (convenience
stores holding several at once), unlicensed premises, cameras, police posts, drop-off lanes, a river
and a lake. :func:`write_demo_files` writes it in the shared file formats (GeoJSON, GeoPackage and the
permit-registry CSVs in UTF-8 with BOM and in GBK, in GCJ-02, BD-09 and WGS84).

The city is **synthetic**. It lies near Guilin (about 110.29°E, 25.27°N) so that GCJ-02 and BD-09 offsets
are realistic, but its counties carry the real adcodes of Guilin (450302 秀峰区 …), Chongqing (500103
渝中区, 500104 大渡口区) and Guangzhou (440104 越秀区, 440106 天河区) side by side, so that the Guilin,
Chongqing and Guangdong rule packs each apply to one part of it. No name, school, business or camera in
it is real.

Everything is drawn from one ``numpy.random.Generator(PCG64(seed))`` in a fixed order and vectorised, so
the same seed and sizes give byte-identical files, and a city of 10,000 schools and a million premises
is built in seconds. Geometry is made in metres in a transverse Mercator centred on the city (scale
error below 2e-5 across 70 km) and stored as WGS84 (EPSG:4326).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from numpy.random import PCG64, Generator
from pyproj import Transformer

from geo.coords import from_wgs84
from geo.errors import InvalidInput
from geo.uscc import make_uscc
from geo.vocabulary import CATEGORIES

__all__ = ["CATEGORIES", "LEVELS", "DemoCity", "generate_city", "write_demo_files"]

CENTRE_LON = 110.29
CENTRE_LAT = 25.27
BLOCK_M = 250.0
"""Nominal street spacing."""
JITTER_M = 20.0
"""Largest shift of a street node from the regular grid."""
SETBACK_M = 8.0
"""Smallest gap between a campus outline and a street centre line."""
KM2_PER_SCHOOL = 0.5
REFERENCE_DATE = np.datetime64("2025-07-01", "D")
"""Permits expiring before this day are ``expired``; no date in the city lies after 2025-06-30."""
_NO_DAY = -(10**6)
GEOPACKAGE_ABOVE = 100_000
"""Layers with more rows than this are written as GeoPackage instead of GeoJSON."""

LEVELS = (
    "kindergarten",
    "primary",
    "junior",
    "senior",
    "nine_year",
    "complete",
    "vocational",
    "special",
    "",
)
"""Register values of ``level``; the empty string is an unknown level."""

# adcode, name, parent, column, row (of the 4 x 2 county tiling; row 0 is the south)
_COUNTIES = (
    ("450302", "秀峰区", "450300", 0, 1),
    ("450303", "叠彩区", "450300", 1, 1),
    ("450304", "象山区", "450300", 0, 0),
    ("450305", "七星区", "450300", 1, 0),
    ("500103", "渝中区", "500000", 2, 1),
    ("500104", "大渡口区", "500000", 3, 1),
    ("440104", "越秀区", "440100", 2, 0),
    ("440106", "天河区", "440100", 3, 0),
)
_CITIES = (("450300", "桂林市", "450000"), ("440100", "广州市", "440000"))
_PROVINCES = (("450000", "广西壮族自治区"), ("500000", "重庆市"), ("440000", "广东省"))
_CITY_OF_COUNTY = ("桂林市",) * 4 + ("重庆市",) * 2 + ("广州市",) * 2

# fmt: off
_STREET_BASES = (
    "中山", "解放", "人民", "建设", "胜利", "和平", "民主", "文化", "新华", "东风",
    "友谊", "漓江", "象山", "七星", "叠彩", "秀峰", "穿山", "环城", "滨江", "信义",
    "正阳", "依仁", "榕湖", "杉湖", "桂花", "凤凰", "青年", "朝阳", "光明", "育才",
    "学府", "安新", "临桂", "甲山", "铁西", "瓦窑", "万福", "翠竹", "西城", "北门",
)
_BRANDS = (
    "星空", "蓝天", "金桂", "漓江", "阳光", "好运", "鑫源", "华联", "红旗", "新世纪",
    "东方", "兴旺", "万家", "聚福", "顺发", "德胜", "宏达", "永安", "恒通", "天天",
    "佳佳", "乐购", "美佳", "锦华", "福星", "开心", "极速", "飞扬", "梦幻", "金鼎",
    "银河", "百乐", "同心", "四季", "吉祥", "旺角", "老街", "明珠", "新潮", "友邦",
)
_KG_BRANDS = ("阳光", "小太阳", "育英", "蓝天", "童心", "启明星", "金色摇篮", "小天鹅", "贝贝", "七彩", "爱心", "星星")
_SCHOOL_BRANDS = ("明德", "育才", "博文", "启智", "求实", "新星", "崇德", "致远")
# fmt: on
_ZH_DIGITS = "零一二三四五六七八九"
_NAME_SUFFIXES = (
    "职业技术学校",
    "特殊教育学校",
    "实验学校",
    "高级中学",
    "初级中学",
    "中学",
    "幼儿园",
    "看护点",
    "小学",
    "学校",
)

# level: probability, campus side range (m), students range, students per staff, share boarding
_LEVEL_P = np.array([0.37, 0.30, 0.10, 0.06, 0.05, 0.04, 0.05, 0.02, 0.01])
_SIDE_RANGE = np.array(
    [[60, 110], [90, 180], [110, 200], [130, 250], [130, 230], [150, 250], [150, 250], [60, 120], [60, 150]],
    dtype=float,
)
_STUDENT_RANGE = np.array(
    [[30, 400], [300, 2500], [400, 2000], [600, 3000], [800, 3000], [1000, 3500], [500, 4000], [30, 200], [50, 800]]
)
_STAFF_RATIO = np.array([7, 14, 12, 11, 13, 11, 15, 3, 12], dtype=float)
_BOARD_P = np.array([0, 0, 0.1, 0.5, 0.1, 0.4, 0.6, 0.5, 0])

# premises kinds: name, probability, name suffixes, {category: probability of holding its permit},
# share registered as a company (else an individual business), share with a credit code on record
_KINDS = (
    ("convenience", 0.18, ("便利店", "超市", "便民店"), {"tobacco": 1, "alcohol": 0.8, "lottery": 0.35}, 0.5, 0.95),
    ("tobacco_alcohol", 0.10, ("烟酒店", "烟酒行", "烟酒商行"), {"tobacco": 1, "alcohol": 1}, 0.2, 0.95),
    ("tobacco", 0.04, ("烟草零售店", "烟行"), {"tobacco": 1}, 0.2, 0.95),
    ("alcohol", 0.04, ("酒行", "酒类专卖店", "酒坊"), {"alcohol": 1}, 0.3, 0.95),
    ("lottery", 0.07, ("彩票站", "福利彩票投注站", "体育彩票店"), {"lottery": 1}, 0.2, 0.95),
    ("internet_cafe", 0.08, ("网吧", "网咖", "网络会所"), {"internet_cafe": 1}, 0.8, 0.95),
    ("entertainment", 0.07, ("KTV", "歌舞厅", "游戏厅", "电玩城"), {"entertainment": 1}, 0.8, 0.95),
    ("bar", 0.06, ("酒吧", "清吧", "音乐酒吧"), {"bar": 1}, 0.5, 0.95),
    ("food_stall", 0.08, ("流动摊点", "小吃摊区", "夜市摊位"), {"food_stall": 1}, 0.0, 0.4),
    ("polluter", 0.05, ("化工有限公司", "印染厂", "家具厂", "汽车修理厂", "电镀厂"), {"polluter": 1}, 1.0, 1.0),
    ("hazardous", 0.03, ("加油站", "烟花爆竹店", "危险化学品仓库"), {"hazardous": 1}, 1.0, 1.0),
    ("other", 0.20, ("餐馆", "酒店", "书店", "服装店", "文具店", "奶茶店"), {"other": 1}, 0.2, 0.9),
)
_PERMIT_CODES = ("WW", "YL", "JB", "CP", "YC", "JL", "SP", "PW", "WH", "JY")
# characters allowed in a GB 32100 code (no I, O, Z, S, V)
_USCC_CHARS = np.array(list("0123456789ABCDEFGHJKLMNPQRTUWXY"))

_SIDE_NAMES = np.array(["南门", "东门", "北门", "西门"])
_GATE_KINDS = np.array(["main", "side", "back"])

_CHINESE_HEADERS = {
    "permit_id": "许可证号",
    "category": "许可类别",
    "name": "场所名称",
    "address": "地址",
    "uscc": "统一社会信用代码",
    "premises_id": "场所编号",
    "lon": "经度",
    "lat": "纬度",
    "crs": "坐标系",
    "issued": "发证日期",
    "expires": "有效期至",
    "applied": "申请日期",
    "status": "状态",
    "protection_distance_m": "卫生防护距离",
    "footprint": "经营范围坐标",
    "accuracy_m": "定位精度",
}
_CHINESE_STATUS = {"active": "有效", "expired": "已过期", "revoked": "吊销", "suspended": "暂停"}


@dataclass
class DemoCity:
    """A generated city; every geometry and coordinate is WGS84 (EPSG:4326).

    Attributes
    ----------
    districts
        ``adcode``, ``name``, ``level`` (province/city/county), ``parent`` (empty for provinces),
        polygon geometry. Counties tile the city; each city and province is the union of its counties.
    streets
        Graph edges: ``u``, ``v`` (integer node ids shared between edges), ``highway``, ``name``,
        LineString geometry.
    schools
        One row per campus in the school-register format; geometry is the campus outline.
    gates
        ``school_id``, ``campus``, ``gate_id``, ``name``, ``kind`` (main/side/back), ``in_use``, Point on
        the campus outline.
    permits
        The permit-registry format, one row per permit, ``lon``/``lat`` in WGS84, ``crs`` = ``wgs84``.
    unlicensed
        Premises seen with no valid permit: ``ref``, ``name``, ``categories`` (``;``-joined), Point.
    cameras
        The camera format, ``crs`` = ``wgs84``.
    assets
        ``kind`` (police/dropoff/water/waterway), ``name``, geometry.
    seed
        The seed the city was generated from.
    """

    districts: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    schools: gpd.GeoDataFrame
    gates: gpd.GeoDataFrame
    permits: pd.DataFrame
    unlicensed: gpd.GeoDataFrame
    cameras: pd.DataFrame
    assets: gpd.GeoDataFrame
    seed: int


@dataclass
class _Grid:
    """The street grid in local metres: node ``(j, i)`` is at ``(x[j, i], y[j, i])``."""

    nx: int
    ny: int
    x: np.ndarray
    y: np.ndarray

    @property
    def width(self) -> float:
        return self.nx * BLOCK_M

    @property
    def height(self) -> float:
        return self.ny * BLOCK_M

    def node(self, i: np.ndarray | int, j: np.ndarray | int) -> np.ndarray | int:
        return j * (self.nx + 1) + i


class _Projector:
    """Local metres (origin at the south-west corner of the city) to WGS84 and back."""

    def __init__(self, grid: _Grid) -> None:
        local = (
            f"+proj=tmerc +lat_0={CENTRE_LAT} +lon_0={CENTRE_LON} +k=1 +x_0={grid.width / 2} "
            f"+y_0={grid.height / 2} +ellps=WGS84 +units=m +no_defs"
        )
        self._fwd = Transformer.from_crs(local, "EPSG:4326", always_xy=True)

    def lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self._fwd.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return np.asarray(lon), np.asarray(lat)

    def geoms(self, geoms: np.ndarray) -> np.ndarray:
        return shapely.transform(geoms, lambda c: np.column_stack(self.lonlat(c[:, 0], c[:, 1])))


def generate_city(*, schools: int = 120, premises: int = 3000, seed: int = 7) -> DemoCity:
    """Generate the synthetic demo city.

    Parameters
    ----------
    schools
        Number of schools (a few get a second campus). The city's area grows with it (about one school
        per 0.5 km²). At least 12 gives every level.
    premises
        Number of premises with permits (a convenience store holds up to three permits). About 30% lie
        within 250 m of a campus, the rest are spread over the city; about 2% more are seen unlicensed.
    seed
        Seed of the ``numpy`` PCG64 generator; the same seed and sizes give the same city.

    Returns
    -------
    DemoCity
    """
    for field, value, low in (("schools", schools, 1), ("premises", premises, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            msg = f"{field} must be an integer of at least {low}, got {value!r}"
            raise InvalidInput(
                msg, message_zh=f"{field} 必须是不小于 {low} 的整数，收到 {value!r}", field=field, value=value
            )
    rng = Generator(PCG64(seed))
    grid = _make_grid(schools, rng)
    proj = _Projector(grid)
    lake, river = _make_water(grid, rng)
    campus = _make_campuses(grid, lake, river, schools, rng)
    streets = _make_streets(grid, lake, campus, rng, proj)
    county_polys = _county_polygons(grid)
    school_gdf = _school_frame(grid, campus, rng, proj)
    gate = _make_gates(campus, rng)
    gates_gdf = _gate_frame(campus, gate, proj)
    prem = _make_premises(grid, lake, campus, gate, county_polys, premises, rng)
    permits, owner = _make_permits(grid, prem, campus, county_polys, rng, proj)
    unlicensed = _make_unlicensed(grid, lake, campus, gate, permits, owner, premises, rng, proj)
    cameras = _make_cameras(campus, gate, rng, proj)
    assets = _make_assets(grid, lake, river, campus, gate, rng, proj)
    districts = _district_frame(county_polys, proj)
    return DemoCity(
        districts=districts,
        streets=streets,
        schools=school_gdf,
        gates=gates_gdf,
        permits=permits,
        unlicensed=unlicensed,
        cameras=cameras,
        assets=assets,
        seed=seed,
    )


# --- grid, water, districts -------------------------------------------------------------------------


def _make_grid(schools: int, rng: Generator) -> _Grid:
    side_m = np.sqrt(max(schools * KM2_PER_SCHOOL, 4.0)) * 1000.0
    n = max(16, round(side_m / BLOCK_M))
    nx = int(-(-n // 8) * 8)  # county columns on even lines, campus pairs on odd ones
    ny = int(-(-n // 2) * 2)
    jj, ii = np.mgrid[0 : ny + 1, 0 : nx + 1]
    x = ii * BLOCK_M + rng.uniform(-JITTER_M, JITTER_M, ii.shape)
    y = jj * BLOCK_M + rng.uniform(-JITTER_M, JITTER_M, jj.shape)
    x[:, 0], x[:, -1] = 0.0, nx * BLOCK_M  # the outer frame is a rectangle
    y[0, :], y[-1, :] = 0.0, ny * BLOCK_M
    return _Grid(nx=nx, ny=ny, x=x, y=y)


def _make_water(grid: _Grid, rng: Generator) -> tuple[shapely.Polygon, shapely.LineString]:
    w, h = grid.width, grid.height
    a = max(300.0, 0.06 * w)
    cx, cy = rng.uniform(0.55, 0.7) * w, rng.uniform(0.5, 0.65) * h
    t = np.linspace(0, 2 * np.pi, 65)[:-1]
    wobble = 1 + 0.08 * np.sin(3 * t + rng.uniform(0, 2 * np.pi))
    lake = shapely.Polygon(np.column_stack([cx + a * wobble * np.cos(t), cy + 0.6 * a * wobble * np.sin(t)]))
    xs = np.linspace(0, w, 161)
    phase = rng.uniform(0, 2 * np.pi)
    ys = 0.3 * h + 0.06 * h * np.sin(3 * np.pi * xs / w + phase)
    return lake, shapely.LineString(np.column_stack([xs, ys]))


def _county_polygons(grid: _Grid) -> list[shapely.Polygon]:
    """County polygons whose borders follow street lines (so no campus straddles a border)."""
    cw, rh = grid.nx // 4, grid.ny // 2
    polys = []
    for _adcode, _name, _parent, col, row in _COUNTIES:
        i0, i1, j0, j1 = col * cw, (col + 1) * cw, row * rh, (row + 1) * rh
        ring_i = np.concatenate([np.arange(i0, i1), np.full(j1 - j0, i1), np.arange(i1, i0, -1), np.full(j1 - j0, i0)])
        ring_j = np.concatenate([np.full(i1 - i0, j0), np.arange(j0, j1), np.full(i1 - i0, j1), np.arange(j1, j0, -1)])
        polys.append(shapely.Polygon(np.column_stack([grid.x[ring_j, ring_i], grid.y[ring_j, ring_i]])))
    return polys


def _county_of(county_polys: list[shapely.Polygon], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index into ``_COUNTIES`` of the county holding each point (-1 outside every county)."""
    out = np.full(len(x), -1)
    for k, poly in enumerate(county_polys):
        todo = out < 0
        shapely.prepare(poly)
        hit = shapely.contains_xy(poly, x[todo], y[todo])
        out[np.flatnonzero(todo)[hit]] = k
    return out


def _district_frame(county_polys: list[shapely.Polygon], proj: _Projector) -> gpd.GeoDataFrame:
    counties = proj.geoms(np.array(county_polys, dtype=object))
    rows = [(c[0], c[1], "county", c[2], g) for c, g in zip(_COUNTIES, counties, strict=True)]
    for adcode, name, parent in _CITIES:
        members = [g for c, g in zip(_COUNTIES, counties, strict=True) if c[2] == adcode]
        rows.append((adcode, name, "city", parent, shapely.union_all(members)))
    for adcode, name in _PROVINCES:
        members = [g for c, g in zip(_COUNTIES, counties, strict=True) if c[0][:2] == adcode[:2]]
        rows.append((adcode, name, "province", "", shapely.union_all(members)))
    frame = pd.DataFrame(rows, columns=["adcode", "name", "level", "parent", "geometry"])
    order = frame["level"].map({"province": 0, "city": 1, "county": 2})
    frame = frame.assign(_o=order).sort_values(["_o", "adcode"]).drop(columns="_o").reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def _street_names(count: int, offset: int, suffix: str) -> np.ndarray:
    names = []
    for k in range(count):
        base = _STREET_BASES[(k + offset) % len(_STREET_BASES)]
        cycle = (k + offset) // len(_STREET_BASES)
        names.append(f"{base}{_zh_number(cycle + 1) if cycle else ''}{suffix}")
    return np.array(names, dtype=object)


def _line_class(k: np.ndarray) -> np.ndarray:
    return np.where(k % 8 == 0, "primary", np.where(k % 4 == 0, "secondary", "residential"))


def _make_streets(
    grid: _Grid, lake: shapely.Polygon, campus: pd.DataFrame, rng: Generator, proj: _Projector
) -> gpd.GeoDataFrame:
    nx, ny = grid.nx, grid.ny
    row_names = _street_names(ny + 1, 0, "路")
    col_names = _street_names(nx + 1, 20, "街")
    col_class = _line_class(np.arange(nx + 1))
    col_names = np.where(col_class == "primary", np.char.replace(col_names.astype(str), "街", "大道"), col_names)
    # horizontal edges (i, j) - (i + 1, j), then vertical (i, j) - (i, j + 1)
    hj, hi = (a.ravel() for a in np.mgrid[0 : ny + 1, 0:nx])
    vj, vi = (a.ravel() for a in np.mgrid[0:ny, 0 : nx + 1])
    u = np.concatenate([grid.node(hi, hj), grid.node(vi, vj)])
    v = np.concatenate([grid.node(hi + 1, hj), grid.node(vi, vj + 1)])
    highway = np.concatenate([_line_class(hj), col_class[vi]]).astype(object)
    name = np.concatenate([row_names[hj], col_names[vi]]).astype(object)
    keep = np.ones(len(u), dtype=bool)
    # a campus over two blocks closes the street between them
    big = campus[campus["pair"]]
    closed = grid.node(big["i"].to_numpy() + 1, big["j"].to_numpy())
    keep[len(hi) :] &= ~np.isin(u[len(hi) :], closed)
    # footpaths: a few residential segments are pedestrian-only, and diagonal paths cross some blocks
    foot = (highway == "residential") & (rng.random(len(u)) < 0.06)
    highway[foot] = "footway"
    dj, di = (a.ravel() for a in np.mgrid[0:ny, 0:nx])
    diag = rng.random(len(dj)) < 0.04
    taken = np.zeros((ny, nx), dtype=bool)
    taken[campus["j"].to_numpy(), campus["i"].to_numpy()] = True
    taken[big["j"].to_numpy(), big["i"].to_numpy() + 1] = True
    diag &= ~taken[dj, di]
    u = np.concatenate([u, grid.node(di[diag], dj[diag])])
    v = np.concatenate([v, grid.node(di[diag] + 1, dj[diag] + 1)])
    highway = np.concatenate([highway, np.full(diag.sum(), "footway", dtype=object)])
    name = np.concatenate([name, np.full(diag.sum(), None, dtype=object)])
    keep = np.concatenate([keep, np.ones(diag.sum(), dtype=bool)])
    fx, fy = grid.x.ravel(), grid.y.ravel()
    coords = np.stack([np.column_stack([fx[u], fy[u]]), np.column_stack([fx[v], fy[v]])], axis=1)
    lines = shapely.linestrings(coords)
    keep &= ~shapely.intersects(lines, lake)
    name[highway == "footway"] = np.where(rng.random((highway == "footway").sum()) < 0.5, None, "步行道")
    frame = pd.DataFrame({"u": u[keep].astype(np.int64), "v": v[keep].astype(np.int64)})
    frame["highway"] = highway[keep]
    frame["name"] = name[keep]
    return gpd.GeoDataFrame(frame, geometry=proj.geoms(lines[keep]), crs="EPSG:4326")


# --- schools ----------------------------------------------------------------------------------------


def _make_campuses(
    grid: _Grid, lake: shapely.Polygon, river: shapely.LineString, schools: int, rng: Generator
) -> pd.DataFrame:
    """Campus rectangles (metres) and the school attributes drawn per campus."""
    n_extra = schools // 30
    n_campus = schools + n_extra
    sj, sk = (a.ravel() for a in np.mgrid[0 : grid.ny, 0 : grid.nx // 2])
    si = 2 * sk
    boxes = shapely.box(si * BLOCK_M, sj * BLOCK_M, (si + 2) * BLOCK_M, (sj + 1) * BLOCK_M)
    free = (shapely.distance(boxes, lake) > 60.0) & (shapely.distance(boxes, river) > 60.0)
    slots = np.flatnonzero(free)
    if len(slots) < n_campus:  # pragma: no cover - the grid has about four free slots per campus
        msg = f"the grid has only {len(slots)} free blocks for {n_campus} campuses"
        raise InvalidInput(msg, message_zh=f"网格只有 {len(slots)} 个空街区，无法放置 {n_campus} 个校区", value=schools)
    pick = np.sort(rng.choice(slots, n_campus, replace=False))
    i, j = si[pick], sj[pick]
    # levels: each once, two unlicensed kindergartens, the rest drawn
    n_unlic = max(2, round(0.01 * schools))
    forced = np.concatenate([np.arange(len(LEVELS)), np.zeros(n_unlic, dtype=int)])[:schools]
    drawn = rng.choice(len(LEVELS), schools - len(forced), p=_LEVEL_P)
    lvl_school = np.concatenate([forced, drawn])
    unlicensed = np.zeros(schools, dtype=bool)
    unlicensed[len(LEVELS) : len(forced)] = True
    perm = rng.permutation(schools)
    lvl_school, unlicensed = lvl_school[perm], unlicensed[perm]
    eligible = np.flatnonzero((lvl_school != 0) & (lvl_school != len(LEVELS) - 1))
    extra_of = rng.choice(eligible, min(n_extra, len(eligible)), replace=False)
    school = np.concatenate([np.arange(schools), np.sort(extra_of)])
    if len(school) < n_campus:  # pragma: no cover - tiny cities
        i, j, n_campus = i[: len(school)], j[: len(school)], len(school)
    lvl = lvl_school[school]
    # rectangles: the longer side east-west; too wide for one block -> take the next block too
    sides = rng.uniform(_SIDE_RANGE[lvl, 0], _SIDE_RANGE[lvl, 1], (2, n_campus))
    w, h = sides.max(axis=0), sides.min(axis=0)
    gx, gy = grid.x, grid.y
    left = np.maximum(gx[j, i], gx[j + 1, i]) + SETBACK_M
    right1 = np.minimum(gx[j, i + 1], gx[j + 1, i + 1]) - SETBACK_M
    right2 = np.minimum(gx[j, i + 2], gx[j + 1, i + 2]) - SETBACK_M
    bottom1 = np.maximum(gy[j, i], gy[j, i + 1]) + SETBACK_M
    top1 = np.minimum(gy[j + 1, i], gy[j + 1, i + 1]) - SETBACK_M
    pair = w > right1 - left
    right = np.where(pair, right2, right1)
    bottom = np.where(pair, np.maximum(bottom1, gy[j, i + 2] + SETBACK_M), bottom1)
    top = np.where(pair, np.minimum(top1, gy[j + 1, i + 2] - SETBACK_M), top1)
    w, h = np.minimum(w, right - left), np.minimum(h, top - bottom)
    x0 = left + rng.random(n_campus) * (right - left - w)
    y0 = bottom + rng.random(n_campus) * (top - bottom - h)
    col, row = i // (grid.nx // 4), j // (grid.ny // 2)
    lookup = {(c[3], c[4]): k for k, c in enumerate(_COUNTIES)}
    county = np.array([lookup[(a, b)] for a, b in zip(col, row, strict=True)], dtype=int)
    frame = pd.DataFrame(
        {"school": school, "level": lvl, "i": i, "j": j, "pair": pair, "x0": x0, "y0": y0, "w": w, "h": h}
    )
    frame["county"] = county
    frame["unlicensed"] = unlicensed[school]
    frame["extra"] = np.arange(n_campus) >= schools
    _school_attributes(frame, rng)
    return frame


def _school_attributes(frame: pd.DataFrame, rng: Generator) -> None:
    n = len(frame)
    lvl = frame["level"].to_numpy()
    students = rng.integers(_STUDENT_RANGE[lvl, 0], _STUDENT_RANGE[lvl, 1] + 1)
    staff = np.maximum(3, np.round(students / _STAFF_RATIO[lvl] * rng.uniform(0.8, 1.2, n))).astype(int)
    boarding = rng.random(n) < _BOARD_P[lvl]
    boarders = np.where(boarding, np.round(students * rng.uniform(0.2, 0.8, n)), 0).astype(int)
    head = students + staff
    need = np.where(head < 100, 1, np.where(head <= 1000, 2, 2 + np.maximum(0, students - 1000) // 500))
    need = np.where(boarders > 0, np.maximum(need, 2) + boarders // 300, need)
    short = rng.random(n) < 0.15
    guards = np.where(short, np.maximum(0, need - rng.integers(1, 3, n)), need)
    frame["students"], frame["staff"], frame["boarders"], frame["guards"] = students, staff, boarders, guards
    frame["guards_required"] = need
    kg = lvl == 0
    frame["access_control"] = np.where(rng.random(n) < np.where(kg, 0.85, 0.95), "是", "否")
    arrival = 450 + 5 * rng.integers(0, 10, n)
    dismissal = 960 + 5 * rng.integers(0, 19, n)
    frame["arrival"] = [f"{m // 60:02d}:{m % 60:02d}" for m in arrival]
    frame["dismissal"] = [f"{m // 60:02d}:{m % 60:02d}" for m in dismissal]
    lo, hi, recent = (np.datetime64(d, "D").astype(int) for d in ("1950-01-01", "2025-06-30", "2020-06-01"))
    opened = np.where(rng.random(n) < 0.12, rng.integers(recent, hi + 1, n), rng.integers(lo, hi + 1, n))
    frame["opened_day"] = opened
    closed = rng.random(n) < 0.01
    frame["closed_day"] = np.where(closed, rng.integers(opened, hi + 1), _NO_DAY)
    frame["accuracy_m"] = rng.choice(np.array([0.0, 0, 0, 0, 5, 10, 20]), n)


def _school_names(frame: pd.DataFrame, grid: _Grid, rng: Generator) -> np.ndarray:
    """One name per school (plausible, unique within the city)."""
    first = frame[~frame["extra"]].sort_values("school")
    row_names = _street_names(grid.ny + 1, 0, "路")
    picks = rng.random((len(first), 2))
    used: set[str] = set()
    counters: dict[str, int] = {}
    names = []

    def numbered(city: str, suffix: str) -> str:
        key = city + suffix
        counters[key] = counters.get(key, 0) + 1
        return f"{city}第{_zh_number(counters[key])}{suffix}"

    for (lvl, j, county, unlic), (p, q) in zip(
        first[["level", "j", "county", "unlicensed"]].itertuples(index=False), picks, strict=True
    ):
        city = _CITY_OF_COUNTY[county]
        short = _COUNTIES[county][1][:-1]
        street = str(row_names[j])
        level = LEVELS[lvl]
        if unlic:
            name = f"{_KG_BRANDS[int(q * len(_KG_BRANDS))]}{'看护点' if p < 0.5 else '幼儿园'}"
        elif level == "kindergarten":
            name = (
                f"{street}幼儿园"
                if p < 0.5
                else f"{_KG_BRANDS[int(q * len(_KG_BRANDS))]}幼儿园"
                if p < 0.75
                else numbered(city, "幼儿园")
            )
        elif level == "primary":
            name = f"{street}小学" if p < 0.7 else numbered(city, "小学")
        elif level == "junior" and p < 0.4:
            name = numbered(city, "初级中学")
        elif level in ("junior", "complete"):
            name = numbered(city, "中学")
        elif level == "senior":
            name = numbered(city, "高级中学")
        elif level == "nine_year":
            name = f"{short}{_SCHOOL_BRANDS[int(q * len(_SCHOOL_BRANDS))]}实验学校"
        elif level == "vocational":
            name = f"{short}职业技术学校"
        elif level == "special":
            name = f"{short}特殊教育学校"
        else:
            name = f"{_SCHOOL_BRANDS[int(q * len(_SCHOOL_BRANDS))]}学校"
        suffix = next(x for x in _NAME_SUFFIXES if name.endswith(x))
        stem, k = name[: -len(suffix)], 1
        while name in used:
            k += 1
            name = f"{stem}第{_zh_number(k)}{suffix}"
        used.add(name)
        names.append(name)
    return np.array(names, dtype=object)


def _school_frame(grid: _Grid, campus: pd.DataFrame, rng: Generator, proj: _Projector) -> gpd.GeoDataFrame:
    names = _school_names(campus, grid, rng)
    first_county = campus.loc[~campus["extra"]].sort_values("school")["county"].to_numpy()
    ids = np.array(
        [f"2{_COUNTIES[c][0][:4]}{k + 1:05d}" for k, c in enumerate(first_county)],
        dtype=object,
    )
    school = campus["school"].to_numpy()
    extra = campus["extra"].to_numpy()
    campus_names = np.where(
        extra, rng.choice(np.array(["东校区", "西校区", "新校区", "南校区"]), len(campus)), "主校区"
    )
    campus["school_id"] = ids[school]
    campus["campus"] = campus_names
    campus["name"] = names[school]
    outlines = shapely.box(campus["x0"], campus["y0"], campus["x0"] + campus["w"], campus["y0"] + campus["h"])
    frame = pd.DataFrame(
        {
            "school_id": campus["school_id"],
            "name": campus["name"],
            "level": np.array(LEVELS, dtype=object)[campus["level"].to_numpy()],
            "campus": campus["campus"],
            "students": campus["students"],
            "boarders": campus["boarders"],
            "staff": campus["staff"],
            "guards": campus["guards"],
            "access_control": campus["access_control"],
            "arrival": campus["arrival"],
            "dismissal": campus["dismissal"],
            "opened": _day_strings(campus["opened_day"].to_numpy()),
            "closed": _day_strings(campus["closed_day"].to_numpy()),
            "accuracy_m": campus["accuracy_m"],
            "licensed": np.where(campus["unlicensed"], "否", "是"),
        }
    )
    gdf = gpd.GeoDataFrame(frame, geometry=proj.geoms(outlines), crs="EPSG:4326")
    order = np.lexsort((gdf["campus"].to_numpy() != "主校区", gdf["school_id"].to_numpy()))
    return gdf.iloc[order].reset_index(drop=True)


def _side_point(
    campus: pd.DataFrame, idx: np.ndarray, side: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Point at fraction ``t`` along ``side`` (0 south, 1 east, 2 north, 3 west) and its outward normal."""
    x0, y0 = campus["x0"].to_numpy()[idx], campus["y0"].to_numpy()[idx]
    w, h = campus["w"].to_numpy()[idx], campus["h"].to_numpy()[idx]
    px = np.choose(side, [x0 + t * w, x0 + w, x0 + t * w, x0])
    py = np.choose(side, [y0, y0 + t * h, y0 + h, y0 + t * h])
    nx = np.choose(side, [0.0, 1.0, 0.0, -1.0])
    ny = np.choose(side, [-1.0, 0.0, 1.0, 0.0])
    return px, py, nx, ny


def _make_gates(campus: pd.DataFrame, rng: Generator) -> pd.DataFrame:
    n = len(campus)
    count = rng.choice(4, n, p=[0.03, 0.40, 0.40, 0.17])
    if n >= 20 and (count == 0).sum() < 2:
        count[rng.choice(n, 2, replace=False)] = 0
    owner = np.repeat(np.arange(n), count)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    main_side = rng.integers(0, 4, n)
    turn = rng.choice(np.array([1, 3]), n)
    side = (main_side[owner] + np.choose(k, [0, turn[owner], 2])) % 4
    t = rng.uniform(0.2, 0.8, len(owner))
    px, py, nx, ny = _side_point(campus, owner, side, t)
    in_use = rng.random(len(owner)) > np.where(k == 0, 0.01, 0.12)
    if len(owner) and in_use.all() and (k > 0).any():
        in_use[np.flatnonzero(k > 0)[0]] = False
    return pd.DataFrame({"campus": owner, "k": k, "side": side, "x": px, "y": py, "nx": nx, "ny": ny, "in_use": in_use})


def _gate_frame(campus: pd.DataFrame, gate: pd.DataFrame, proj: _Projector) -> gpd.GeoDataFrame:
    owner = gate["campus"].to_numpy()
    school_id = campus["school_id"].to_numpy()[owner]
    frame = pd.DataFrame({"school_id": school_id, "campus": campus["campus"].to_numpy()[owner]})
    # number gates within the school, main campus first
    main_first = frame.assign(_m=campus["extra"].to_numpy()[owner], _o=np.arange(len(frame)))
    main_first = main_first.sort_values(["school_id", "_m", "_o"], kind="stable")
    seq = main_first.groupby("school_id", sort=False).cumcount().reindex(frame.index).to_numpy() + 1
    frame["gate_id"] = [f"{s}-G{q}" for s, q in zip(school_id, seq, strict=True)]
    frame["name"] = _SIDE_NAMES[gate["side"].to_numpy()]
    frame["kind"] = _GATE_KINDS[gate["k"].to_numpy()]
    frame["in_use"] = gate["in_use"].to_numpy()
    lon, lat = proj.lonlat(gate["x"].to_numpy(), gate["y"].to_numpy())
    gate["gate_id"] = frame["gate_id"].to_numpy()
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


# --- premises and permits ---------------------------------------------------------------------------


def _spread(grid: _Grid, n: int, rng: Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(2.0, grid.width - 2.0, n), rng.uniform(2.0, grid.height - 2.0, n)


def _near_outline(campus: pd.DataFrame, n: int, rng: Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points at a known distance outside a campus outline: 75% uniform 0-250 m, 25% at 100/200 m ± 3 m."""
    c = rng.integers(0, len(campus), n)
    w, h = campus["w"].to_numpy()[c], campus["h"].to_numpy()[c]
    s = rng.random(n) * 2 * (w + h)
    side = np.select([s < w, s < w + h, s < 2 * w + h], [0, 1, 2], 3)
    along = np.select([side == 0, side == 1, side == 2], [s / w, (s - w) / h, (s - w - h) / w], (s - 2 * w - h) / h)
    px, py, nx, ny = _side_point(campus, c, side, along)
    d = rng.uniform(0, 250, n)
    edge = rng.random(n) < 0.25
    d[edge] = rng.choice(np.array([100.0, 200.0]), edge.sum()) + rng.choice(
        np.array([-1, 1]), edge.sum()
    ) * rng.uniform(0.3, 3.0, edge.sum())
    return px + d * nx, py + d * ny, c


def _near_gate(gate: pd.DataFrame, n: int, rng: Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points near a gate: 70% up to 80 m in front of it, 30% at 50 m ± 3 m straight out."""
    g = rng.integers(0, len(gate), n)
    gx, gy = gate["x"].to_numpy()[g], gate["y"].to_numpy()[g]
    ang = np.arctan2(gate["ny"].to_numpy()[g], gate["nx"].to_numpy()[g]) + rng.uniform(-1.4, 1.4, n)
    d = rng.uniform(0, 80, n)
    edge = rng.random(n) < 0.3
    ang[edge] = np.arctan2(gate["ny"].to_numpy()[g][edge], gate["nx"].to_numpy()[g][edge])
    d[edge] = 50.0 + rng.choice(np.array([-1, 1]), edge.sum()) * rng.uniform(0.3, 3.0, edge.sum())
    return gx + d * np.cos(ang), gy + d * np.sin(ang), gate["campus"].to_numpy()[g]


def _clear(
    grid: _Grid, lake: shapely.Polygon, tree: shapely.STRtree, x: np.ndarray, y: np.ndarray, rng: Generator
) -> None:
    """Move points that are outside the city, in the lake or inside a campus to random free places."""
    for _ in range(20):
        bad = (x < 1) | (x > grid.width - 1) | (y < 1) | (y > grid.height - 1)
        bad |= shapely.contains_xy(lake, x, y)
        pts = shapely.points(x[~bad], y[~bad])
        inside = np.unique(tree.query(pts, predicate="intersects")[0])
        bad[np.flatnonzero(~bad)[inside]] = True
        if not bad.any():
            return
        x[bad], y[bad] = _spread(grid, int(bad.sum()), rng)


def _make_premises(
    grid: _Grid,
    lake: shapely.Polygon,
    campus: pd.DataFrame,
    gate: pd.DataFrame,
    county_polys: list[shapely.Polygon],
    n: int,
    rng: Generator,
) -> pd.DataFrame:
    kind_p = np.array([k[1] for k in _KINDS])
    forced = np.arange(len(_KINDS))[:n]
    kind = np.concatenate([forced, rng.choice(len(_KINDS), n - len(forced), p=kind_p)])
    kind = kind[rng.permutation(n)]
    n_near = round(0.3 * n)
    n_gate = round(0.4 * n_near) if len(gate) else 0
    gx, gy, gc = _near_gate(gate, n_gate, rng) if n_gate else (np.empty(0),) * 3
    ox, oy, oc = _near_outline(campus, n_near - n_gate, rng)
    sx, sy = _spread(grid, n - n_near, rng)
    x, y = np.concatenate([gx, ox, sx]), np.concatenate([gy, oy, sy])
    near_campus = np.concatenate([gc, oc, np.full(n - n_near, -1)]).astype(int)
    order = rng.permutation(n)  # near and spread premises interleaved
    x, y, near_campus = x[order], y[order], near_campus[order]
    tree = shapely.STRtree(
        shapely.box(campus["x0"], campus["y0"], campus["x0"] + campus["w"], campus["y0"] + campus["h"])
    )
    _clear(grid, lake, tree, x, y, rng)
    county = _county_of(county_polys, x, y)
    # footprints: vending areas for stalls, outlines for polluters and hazardous sites (rotated rectangles)
    kname = np.array([k[0] for k in _KINDS])[kind]
    # sides (m): stalls 5-30 x 3-10, polluters 20-80 x 15-50, hazardous sites 15-50 x 10-40
    shaped = [kname == "food_stall", kname == "polluter", kname == "hazardous"]
    fw = rng.uniform(np.select(shaped, [5.0, 20, 15], 0), np.select(shaped, [30.0, 80, 50], 0))
    fh = rng.uniform(np.select(shaped, [3.0, 15, 10], 0), np.select(shaped, [10.0, 50, 40], 0))
    rot = rng.uniform(0, np.pi, n)
    return pd.DataFrame(
        {"kind": kind, "x": x, "y": y, "near": near_campus, "county": county, "fw": fw, "fh": fh, "rot": rot}
    )


def _footprints(prem: pd.DataFrame) -> np.ndarray:
    has = prem["fw"].to_numpy() > 0
    x, y = prem["x"].to_numpy()[has], prem["y"].to_numpy()[has]
    hw, hh, r = prem["fw"].to_numpy()[has] / 2, prem["fh"].to_numpy()[has] / 2, prem["rot"].to_numpy()[has]
    cx = np.stack([-hw, hw, hw, -hw, -hw], axis=1)
    cy = np.stack([-hh, -hh, hh, hh, -hh], axis=1)
    rx = x[:, None] + cx * np.cos(r)[:, None] - cy * np.sin(r)[:, None]
    ry = y[:, None] + cx * np.sin(r)[:, None] + cy * np.cos(r)[:, None]
    out = np.full(len(prem), None, dtype=object)
    out[has] = shapely.polygons(np.stack([rx, ry], axis=2))
    return out


def _make_permits(
    grid: _Grid,
    prem: pd.DataFrame,
    campus: pd.DataFrame,
    county_polys: list[shapely.Polygon],
    rng: Generator,
    proj: _Projector,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Permit rows (one per permit) and, per row, the index of its premises."""
    n = len(prem)
    kind = prem["kind"].to_numpy()
    hold = np.zeros((n, len(CATEGORIES)), dtype=bool)
    for k, (_name, _p, _suffixes, cats, _company, _coded) in enumerate(_KINDS):
        mine = kind == k
        for cat, p in cats.items():
            hold[mine, CATEGORIES.index(cat)] = rng.random(mine.sum()) < p
    p_idx, cat = np.nonzero(hold)
    n_rows = len(p_idx)
    county = prem["county"].to_numpy()
    adcode = np.array([c[0] for c in _COUNTIES], dtype=object)[county]
    # names and addresses
    brand = np.array(_BRANDS, dtype=object)[rng.integers(0, len(_BRANDS), n)]
    suffix = np.empty(n, dtype=object)
    pick = rng.random(n)
    for k, spec in enumerate(_KINDS):
        mine = kind == k
        suffix[mine] = np.array(spec[2], dtype=object)[(pick[mine] * len(spec[2])).astype(int)]
    row_names = _street_names(grid.ny + 1, 0, "路")
    street = row_names[np.clip(np.round(prem["y"].to_numpy() / BLOCK_M).astype(int), 0, grid.ny)]
    number = (prem["x"].to_numpy() // 10).astype(int) + 1
    county_name = np.array([c[1] for c in _COUNTIES], dtype=object)[county]
    address = pd.Series(county_name) + pd.Series(street) + pd.Series(number).astype(str) + "号"
    name = pd.Series(brand) + pd.Series(suffix)
    branch = (kind == 0) & (rng.random(n) < 0.3)
    name[branch] = name[branch] + "（" + pd.Series(street)[branch] + "店）"
    lotto = (kind == 4) & (rng.random(n) < 0.4)
    lotto_no = pd.Series(adcode[lotto]).str[:4] + pd.Series(number[lotto]).map("{:04d}".format)
    name[lotto] = ("中国福利彩票第" + lotto_no + "号投注站").to_numpy()
    # credit codes: companies (org type 1) or individual businesses (2), in the premises' county
    company = rng.random(n) < np.array([k[4] for k in _KINDS])[kind]
    coded = rng.random(n) < np.array([k[5] for k in _KINDS])[kind]
    body = _USCC_CHARS[rng.integers(0, len(_USCC_CHARS), (n, 8))]
    uscc = np.full(n, None, dtype=object)
    for q in np.flatnonzero(coded):
        uscc[q] = make_uscc(org_type="1" if company[q] else "2", division=adcode[q], body8="".join(body[q]))
    # premises ids: blank for some single-permit premises with a credit code (grouped by uscc + address)
    n_permits = hold.sum(axis=1)
    prem_id = pd.Series(adcode).str.cat(pd.Series(np.arange(1, n + 1)).map("{:07d}".format))
    prem_id = np.array(("P" + prem_id).to_numpy(dtype=object), dtype=object)
    prem_id[(n_permits == 1) & coded & (rng.random(n) < 0.3)] = None
    # dates
    lo, hi = np.datetime64("1995-01-01", "D").astype(int), np.datetime64("2025-06-30", "D").astype(int)
    near = prem["near"].to_numpy()
    opened = campus["opened_day"].to_numpy()[np.maximum(near, 0)]
    # near a school opened this century: issued up to six years either side of its opening
    relative = (near >= 0) & (opened >= np.datetime64("2001-01-01", "D").astype(int))
    base = np.where(
        relative,
        opened + rng.integers(-6 * 365, 6 * 365, n),
        rng.integers(np.datetime64("2008-01-01", "D").astype(int), hi + 1, n),
    )
    around_2021 = rng.random(n) < 0.15
    base[around_2021] = np.datetime64("2021-01-01", "D").astype(int) + rng.integers(-730, 730, around_2021.sum())
    issued = np.clip(base[p_idx] + rng.integers(-180, 181, n_rows), lo, hi)
    expires = issued + rng.integers(5 * 365, 10 * 365, n_rows)
    applied = issued - rng.integers(5, 61, n_rows)
    unknown = rng.random(n_rows) < 0.03
    status = np.where(expires < REFERENCE_DATE.astype(int), "expired", "active").astype(object)
    roll = rng.random(n_rows)
    status[roll < 0.03] = "revoked"
    status[(roll >= 0.03) & (roll < 0.04)] = "suspended"
    # polluters' protection distances; footprints as WKT in WGS84
    protection = np.where(CATEGORIES.index("polluter") == cat, 50.0 * rng.integers(1, 11, n_rows), np.nan)
    foot = _footprints(prem)
    wkt = np.full(n, None, dtype=object)
    has = np.array([g is not None for g in foot], dtype=bool)
    if has.any():
        wkt[has] = shapely.to_wkt(proj.geoms(foot[has].astype(object)), rounding_precision=8)
    accuracy = rng.choice(np.array([0.0, 0, 0, 0, 0, 0, 5, 10, 30]), n)
    lon, lat = proj.lonlat(prem["x"].to_numpy(), prem["y"].to_numpy())
    code = np.array(_PERMIT_CODES, dtype=object)[cat]
    permit_id = pd.Series(code) + pd.Series(adcode[p_idx]) + pd.Series(np.arange(1, n_rows + 1)).map("{:08d}".format)
    frame = pd.DataFrame(
        {
            "permit_id": permit_id.to_numpy(dtype=object),
            "category": np.array(CATEGORIES, dtype=object)[cat],
            "name": name.to_numpy(dtype=object)[p_idx],
            "address": address.to_numpy(dtype=object)[p_idx],
            "uscc": uscc[p_idx],
            "premises_id": prem_id[p_idx],
            "lon": np.round(lon, 8)[p_idx],
            "lat": np.round(lat, 8)[p_idx],
            "crs": "wgs84",
            "issued": np.where(unknown, None, _day_strings(issued)),
            "expires": _day_strings(expires),
            "applied": np.where(unknown | (rng.random(n_rows) < 0.25), None, _day_strings(applied)),
            "status": status,
            "protection_distance_m": protection,
            "footprint": wkt[p_idx],
            "accuracy_m": accuracy[p_idx],
        }
    )
    return frame, p_idx


def _make_unlicensed(
    grid: _Grid,
    lake: shapely.Polygon,
    campus: pd.DataFrame,
    gate: pd.DataFrame,
    permits: pd.DataFrame,
    owner: np.ndarray,
    premises: int,
    rng: Generator,
    proj: _Projector,
) -> gpd.GeoDataFrame:
    n = max(3, round(0.02 * premises))
    # 黑网吧 near schools, stalls at gates, unlicensed tobacco/alcohol, 黑游戏厅, 私彩 and bars elsewhere
    shares = np.array([0.35, 0.2, 0.15, 0.1, 0.1, 0.1])
    group = np.concatenate([np.arange(6)[:n], rng.choice(6, max(0, n - 6), p=shares)])
    cats = np.array(["internet_cafe", "food_stall", "tobacco;alcohol", "entertainment", "", "lottery"], dtype=object)
    suffixes = np.array(["网吧", "流动摊贩", "烟酒店", "游戏厅", "", "私彩点"], dtype=object)
    x, y = _spread(grid, n, rng)
    cx, cy, _c = _near_outline(campus, n, rng)
    near = (group == 0) | ((group == 2) & (rng.random(n) < 0.5))
    x[near], y[near] = cx[near], cy[near]
    if len(gate):
        sx, sy, _g = _near_gate(gate, n, rng)
        x[group == 1], y[group == 1] = sx[group == 1], sy[group == 1]
    tree = shapely.STRtree(
        shapely.box(campus["x0"], campus["y0"], campus["x0"] + campus["w"], campus["y0"] + campus["h"])
    )
    _clear(grid, lake, tree, x, y, rng)
    brand = np.array(_BRANDS, dtype=object)[rng.integers(0, len(_BRANDS), n)]
    name = (pd.Series(brand) + pd.Series(suffixes[group])).to_numpy(dtype=object)
    nameless = (group == 0) & (rng.random(n) < 0.3)
    name[nameless] = "无招牌网吧"
    category = cats[group].copy()
    lon, lat = proj.lonlat(x, y)
    # premises whose permits are all expired or revoked but which are still seen trading
    status = permits["status"].to_numpy()
    n_prem = int(owner.max()) + 1 if len(owner) else 0
    live = np.bincount(owner, weights=~np.isin(status, ["expired", "revoked"]), minlength=n_prem)
    dead_idx = np.flatnonzero((live == 0) & (np.bincount(owner, minlength=n_prem) > 0))
    seen = np.flatnonzero(group == 4)
    if len(dead_idx):
        src = rng.choice(dead_idx, len(seen))
        start, stop = np.searchsorted(owner, src), np.searchsorted(owner, src, side="right")
        lon[seen], lat[seen] = permits["lon"].to_numpy()[start], permits["lat"].to_numpy()[start]
        name[seen] = permits["name"].to_numpy()[start]
        cats_of = permits["category"].to_numpy()
        category[seen] = [";".join(cats_of[a:b]) for a, b in zip(start, stop, strict=True)]
    else:  # pragma: no cover - tiny cities
        category[seen], name[seen] = "bar", [f"{b}酒吧" for b in brand[seen]]
    frame = pd.DataFrame({"ref": [f"U{k:06d}" for k in range(1, n + 1)], "name": name, "categories": category})
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


# --- cameras and zone assets ------------------------------------------------------------------------


def _make_cameras(campus: pd.DataFrame, gate: pd.DataFrame, rng: Generator, proj: _Projector) -> pd.DataFrame:
    watched = gate["in_use"].to_numpy() & (rng.random(len(gate)) < 0.7)
    second = watched & (rng.random(len(gate)) < 0.2)
    g = np.sort(np.concatenate([np.flatnonzero(watched), np.flatnonzero(second)]))
    m = len(g)
    nx, ny = gate["nx"].to_numpy()[g], gate["ny"].to_numpy()[g]
    out, along = rng.uniform(3, 12, m), rng.uniform(-10, 10, m)
    x = gate["x"].to_numpy()[g] + out * nx - along * ny
    y = gate["y"].to_numpy()[g] + out * ny + along * nx
    # compass bearing from the camera to its gate (0 = north, clockwise); some face away
    bearing = np.degrees(np.arctan2(gate["x"].to_numpy()[g] - x, gate["y"].to_numpy()[g] - y))
    bearing = bearing + rng.uniform(-20, 20, m) + np.where(rng.random(m) < 0.1, 180.0, 0.0)
    lon, lat = proj.lonlat(x, y)
    owner = gate["campus"].to_numpy()[g]
    gate_name = _SIDE_NAMES[gate["side"].to_numpy()[g]]
    names = pd.Series(campus["name"].to_numpy()[owner]) + pd.Series(gate_name) + "监控"
    return pd.DataFrame(
        {
            "camera_id": [f"CAM{k:06d}" for k in range(1, m + 1)],
            "name": names.to_numpy(dtype=object),
            "lon": np.round(lon, 8),
            "lat": np.round(lat, 8),
            "crs": "wgs84",
            "direction_deg": np.round(np.mod(bearing, 360.0), 1),
            "fov_deg": rng.integers(60, 121, m).astype(float),
            "range_m": rng.integers(30, 81, m).astype(float),
        }
    )


def _make_assets(
    grid: _Grid,
    lake: shapely.Polygon,
    river: shapely.LineString,
    campus: pd.DataFrame,
    gate: pd.DataFrame,
    rng: Generator,
    proj: _Projector,
) -> gpd.GeoDataFrame:
    main = gate[(gate["k"] == 0) & gate["in_use"]]
    mg = main.index.to_numpy()
    gx, gy = gate["x"].to_numpy()[mg], gate["y"].to_numpy()[mg]
    nx, ny = gate["nx"].to_numpy()[mg], gate["ny"].to_numpy()[mg]
    names = campus["name"].to_numpy()[gate["campus"].to_numpy()[mg]]
    # police posts (护学岗 警务室) in front of some main gates, and some elsewhere
    post = rng.random(len(mg)) < 0.15
    out, along = rng.uniform(15, 60, len(mg)), rng.uniform(-30, 30, len(mg))
    px, py = gx + out * nx - along * ny, gy + out * ny + along * nx
    n_city = max(1, len(campus) // 20)
    cx, cy = _spread(grid, n_city, rng)
    police = shapely.points(np.concatenate([px[post], cx]), np.concatenate([py[post], cy]))
    police_names = [f"{s}护学岗警务室" for s in names[post]] + [
        f"{_STREET_BASES[k % len(_STREET_BASES)]}警务室" for k in range(n_city)
    ]
    # drop-off lanes (即停即走) along the street in front of some main gates
    lane = rng.random(len(mg)) < 0.3
    half = rng.uniform(15, 30, len(mg))[lane]
    lx, ly = gx[lane] + 5.0 * nx[lane], gy[lane] + 5.0 * ny[lane]
    tx, ty = -ny[lane], nx[lane]
    coords = np.stack(
        [np.column_stack([lx - half * tx, ly - half * ty]), np.column_stack([lx + half * tx, ly + half * ty])], axis=1
    )
    lanes = shapely.linestrings(coords) if lane.any() else np.empty(0, dtype=object)
    geoms = np.concatenate([police, lanes, np.array([lake, river], dtype=object)])
    frame = pd.DataFrame(
        {
            "kind": ["police"] * len(police) + ["dropoff"] * int(lane.sum()) + ["water", "waterway"],
            "name": police_names + [f"{s}即停即走区" for s in names[lane]] + ["杉湖", "桃花江"],
        }
    )
    return gpd.GeoDataFrame(frame, geometry=proj.geoms(geoms), crs="EPSG:4326")


# --- files ------------------------------------------------------------------------------------------


def write_demo_files(city: DemoCity, outdir: Path) -> dict[str, Path]:
    """Write the city in the shared file formats.

    Parameters
    ----------
    city
        From :func:`generate_city`.
    outdir
        Folder to write to (created if missing); existing files of the same names are replaced.

    Returns
    -------
    dict
        File kind (``districts``, ``schools``, ``gates``, ``streets``, ``unlicensed``, ``assets``,
        ``permits_gcj02``, ``permits_gbk``, ``cameras``) to the path written.

    Notes
    -----
    Layers of more than ``GEOPACKAGE_ABOVE`` rows are written as GeoPackage, the rest as GeoJSON. The
    permits are split by premises between ``permits_gcj02.csv`` (UTF-8 with BOM, English headers, GCJ-02)
    and ``permits_gbk.csv`` (GBK, Chinese headers, Chinese status values and mixed date formats; half
    of its premises in BD-09, half in WGS84). Same city, same bytes.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    layers = (
        ("districts", city.districts),
        ("schools", city.schools),
        ("gates", city.gates),
        ("streets", city.streets),
        ("unlicensed", city.unlicensed),
        ("assets", city.assets),
    )
    for key, gdf in layers:
        paths[key] = _write_layer(gdf, outdir, key)
    permits = city.permits
    file, gbk_crs = _split(permits, seed=city.seed)
    gcj = _in_crs(permits[file == "gcj02"], np.full((file == "gcj02").sum(), "gcj02"))
    paths["permits_gcj02"] = outdir / "permits_gcj02.csv"
    gcj.to_csv(paths["permits_gcj02"], index=False, encoding="utf-8-sig", lineterminator="\n")
    gbk = _in_crs(permits[file == "gbk"], np.asarray(gbk_crs)[file == "gbk"])
    gbk["status"] = gbk["status"].map(_CHINESE_STATUS)
    for col in ("issued", "expires", "applied"):
        gbk[col] = _mixed_dates(gbk[col])
    paths["permits_gbk"] = outdir / "permits_gbk.csv"
    gbk.rename(columns=_CHINESE_HEADERS).to_csv(paths["permits_gbk"], index=False, encoding="gbk", lineterminator="\n")
    paths["cameras"] = outdir / "cameras.csv"
    city.cameras.to_csv(paths["cameras"], index=False, encoding="utf-8", lineterminator="\n")
    return paths


def _split(permits: pd.DataFrame, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per permit row: its file (``gcj02``/``gbk``) and its system in the GBK file, drawn per premises.

    Rows of one premises are consecutive and share premises id, credit code, name and address.
    """
    keys = permits[["premises_id", "uscc", "name", "address"]].astype(object).fillna("").to_numpy()
    new = np.ones(len(permits), dtype=bool)
    new[1:] = (keys[1:] != keys[:-1]).any(axis=1)
    group = np.cumsum(new) - 1
    rng = Generator(PCG64([seed, 1]))
    n = int(group[-1]) + 1 if len(group) else 0
    file = np.where(rng.random(n) < 0.5, "gcj02", "gbk")[group]
    crs = np.where(rng.random(n) < 0.5, "bd09", "wgs84")[group]
    return file, crs


def _write_layer(gdf: gpd.GeoDataFrame, outdir: Path, key: str) -> Path:
    big = len(gdf) > GEOPACKAGE_ABOVE
    path = outdir / f"{key}.{'gpkg' if big else 'geojson'}"
    for old in (outdir / f"{key}.gpkg", outdir / f"{key}.geojson"):
        old.unlink(missing_ok=True)
    if big:
        # GeoPackage stores a timestamp; pin it so the bytes do not depend on the clock
        previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2025-07-01T00:00:00Z"})
        try:
            pyogrio.write_dataframe(gdf, path, layer=key, driver="GPKG")
        finally:
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    else:
        pyogrio.write_dataframe(gdf, path, layer=key, driver="GeoJSON")
    return path


def _in_crs(permits: pd.DataFrame, crs: np.ndarray) -> pd.DataFrame:
    """The permits with ``lon``/``lat`` and footprints converted from WGS84 into each row's ``crs``."""
    out = permits.copy()
    lon, lat = out["lon"].to_numpy(dtype=float).copy(), out["lat"].to_numpy(dtype=float).copy()
    foot = out["footprint"].to_numpy(dtype=object).copy()
    for target in ("gcj02", "bd09", "cgcs2000"):
        rows = crs == target
        if not rows.any():
            continue
        tlon, tlat = from_wgs84(lon[rows], lat[rows], target)
        lon[rows], lat[rows] = np.asarray(tlon), np.asarray(tlat)
        has = rows & pd.notna(foot)
        if has.any():
            geoms = shapely.from_wkt(foot[has].astype(object))
            moved = shapely.transform(geoms, lambda c, t=target: np.column_stack(from_wgs84(c[:, 0], c[:, 1], t)))
            foot[has] = shapely.to_wkt(moved, rounding_precision=8)
    out["lon"], out["lat"], out["footprint"], out["crs"] = np.round(lon, 8), np.round(lat, 8), foot, crs
    return out


def _mixed_dates(col: pd.Series) -> pd.Series:
    """ISO dates rewritten in turn as 2021年3月5日, 2021/3/5 and 20210305 (as registries do)."""
    s = col.astype(object)
    ok = s.notna().to_numpy()
    parts = s[ok].astype(str).str.split("-", expand=True)
    if not ok.any():
        return s
    y, m, d = parts[0], parts[1].astype(int).astype(str), parts[2].astype(int).astype(str)
    style = np.arange(ok.sum()) % 3
    text = np.where(
        style == 0,
        y + "年" + m + "月" + d + "日",
        np.where(style == 1, y + "/" + m + "/" + d, parts[0] + parts[1] + parts[2]),
    )
    out = s.copy()
    out[ok] = text
    return out


# --- small helpers ----------------------------------------------------------------------------------


def _day_strings(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as ``YYYY-MM-DD`` (``None`` where ``_NO_DAY``: unknown)."""
    days = np.asarray(days)
    missing = days == _NO_DAY
    text = np.datetime_as_string(np.where(missing, 0, days).astype("datetime64[D]"), unit="D").astype(object)
    text[missing] = None
    return text


def _zh_number(n: int) -> str:
    """1..99 in Chinese numerals (一, 十二, 三十), larger numbers in Arabic digits."""
    if n < 10:
        return _ZH_DIGITS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return f"{'' if tens == 1 else _ZH_DIGITS[tens]}十{_ZH_DIGITS[ones] if ones else ''}"
    return str(n)
