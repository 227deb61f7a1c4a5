"""The synthetic demo city: complete, consistent, deterministic, and written in the shared formats."""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo.coords import to_wgs84
from geo.demo import CATEGORIES, LEVELS, DemoCity, generate_city, write_demo_files
from geo.errors import InvalidInput
from geo.levels import classify_school
from geo.uscc import validate_uscc

UTM = "EPSG:32649"  # metres for the checks: independent of the generator's own projection
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city()  # the default size: 120 schools, 3,000 premises


@pytest.fixture(scope="module")
def files(city: DemoCity, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_demo_files(city, tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def premises(city: DemoCity) -> gpd.GeoDataFrame:
    """One row per premises (the permits grouped), in metres."""
    p = city.permits.drop_duplicates(["name", "address", "lon", "lat"])
    return gpd.GeoDataFrame(p, geometry=gpd.points_from_xy(p["lon"], p["lat"]), crs="EPSG:4326").to_crs(UTM)


def _digests(paths: dict[str, Path]) -> dict[str, str]:
    return {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in paths.items()}


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    a = write_demo_files(generate_city(schools=30, premises=600, seed=3), tmp_path / "a")
    b = write_demo_files(generate_city(schools=30, premises=600, seed=3), tmp_path / "b")
    c = write_demo_files(generate_city(schools=30, premises=600, seed=4), tmp_path / "c")
    assert set(a) == {
        "districts",
        "schools",
        "gates",
        "streets",
        "unlicensed",
        "assets",
        "permits_gcj02",
        "permits_gbk",
        "cameras",
    }
    assert _digests(a) == _digests(b)
    differ = {k for k, v in _digests(c).items() if v != _digests(a)[k]}
    assert {"schools", "gates", "streets", "permits_gcj02", "permits_gbk", "cameras", "unlicensed"} <= differ


def test_writing_twice_into_one_folder_replaces_the_files(city: DemoCity, files: dict[str, Path]) -> None:
    before = _digests(files)
    again = write_demo_files(city, files["schools"].parent)
    assert _digests(again) == before


@pytest.mark.parametrize("kwargs", [{"schools": 0}, {"premises": -1}, {"schools": 2.5}, {"schools": True}])
def test_bad_sizes_are_refused_naming_the_value(kwargs: dict) -> None:
    with pytest.raises(InvalidInput) as info:
        generate_city(**kwargs)
    ((field, value),) = kwargs.items()
    assert info.value.field == field
    assert repr(value) in info.value.message_en
    assert repr(value) in info.value.message_zh


# --- contents ---------------------------------------------------------------------------------------


def test_every_level_and_category_is_present(city: DemoCity) -> None:
    assert set(city.schools["level"].fillna("")) == set(LEVELS)
    unlicensed_kg = city.schools[city.schools["licensed"] == "否"]
    assert len(unlicensed_kg) >= 2
    assert set(unlicensed_kg["level"]) == {"kindergarten"}
    assert set(city.permits["category"]) == set(CATEGORIES)
    assert {c for cats in city.unlicensed["categories"] for c in cats.split(";")} <= set(CATEGORIES)
    assert city.unlicensed["categories"].str.contains("internet_cafe").any()
    assert set(city.assets["kind"]) == {"police", "dropoff", "water", "waterway"}


def test_school_names_and_register_fields_are_plausible(city: DemoCity) -> None:
    s = city.schools
    names = s.drop_duplicates("school_id")["name"]
    assert names.is_unique
    by_level = s.groupby(s["level"].fillna(""))["name"].agg(list)
    assert all(n.endswith(("幼儿园", "看护点")) for n in by_level["kindergarten"])
    assert all(n.endswith("小学") for n in by_level["primary"])
    assert any(n.endswith("路小学") for n in by_level["primary"])
    assert all("中学" in n for n in by_level["junior"] + by_level["senior"] + by_level["complete"])
    assert all(n.endswith("职业技术学校") for n in by_level["vocational"])
    assert all(n.endswith("特殊教育学校") for n in by_level["special"])
    assert s["school_id"].str.fullmatch(r"\d{10}").all()
    assert not s.duplicated(["school_id", "campus"]).any()
    assert (s.groupby("school_id")["campus"].count() > 1).any()  # a school with two campuses
    assert s["arrival"].between("07:30", "08:15").all()
    assert s["dismissal"].between("16:00", "17:30").all()
    opened = pd.to_datetime(s["opened"])
    assert opened.min().year >= 1950 and opened.max() <= pd.Timestamp("2025-12-31")
    assert (opened > pd.Timestamp("2020-12-31")).any() and (opened < pd.Timestamp("1980-01-01")).any()
    kg = s[s["level"] == "kindergarten"]
    assert set(kg["access_control"]) == {"是", "否"}
    assert (s["boarders"] > 0).any() and (s["boarders"] <= s["students"]).all()


_EXPANDS = {"nine_year": {"primary", "junior"}, "complete": {"junior", "senior"}}


def test_school_names_agree_with_the_name_classifier(city: DemoCity) -> None:
    """The OSM importer's classifier reads each name as a protected school of a matching level."""
    for name, level in city.schools[["name", "level"]].drop_duplicates().itertuples(index=False):
        found = classify_school(name, {"amenity": "kindergarten" if level == "kindergarten" else "school"})
        assert found.excluded is None, (name, found.excluded)
        register = _EXPANDS.get(level, {level} if level else set())
        assert not found.levels or not register or found.levels & register, (name, level, found.levels)


def _guilin_guards(students: int, staff: int, boarders: int) -> int:
    """Guilin 五(七), written out independently of the generator."""
    head = students + staff
    if head < 100:
        need = 1
    elif head <= 1000:
        need = 2
    else:
        need = 2 + max(0, students - 1000) // 500
    if boarders:
        need = max(need, 2) + boarders // 300
    return need


def test_some_schools_are_under_staffed_by_the_guilin_rule(city: DemoCity) -> None:
    s = city.schools
    need = np.array([_guilin_guards(*row) for row in s[["students", "staff", "boarders"]].itertuples(index=False)])
    short = s["guards"].to_numpy() < need
    assert short.any(), "no under-staffed school to find"
    assert short.mean() < 0.5
    assert (s["guards"].to_numpy() == need).mean() > 0.5
    assert (s["students"] + s["staff"] < 100).any()  # the one-guard band is exercised


def test_campus_outlines_are_rectangles_of_60_to_250_m_that_never_overlap(city: DemoCity) -> None:
    outlines = city.schools.to_crs(UTM).geometry.to_numpy()
    assert all(len(shapely.get_coordinates(g)) == 5 for g in outlines)
    rect = shapely.oriented_envelope(outlines)
    assert np.allclose(shapely.area(rect), shapely.area(outlines), rtol=1e-5)
    coords = shapely.get_coordinates(outlines).reshape(len(outlines), 5, 2)
    sides = np.hypot(*np.moveaxis(np.diff(coords, axis=1), 2, 0))
    assert sides.min() >= 59.0 and sides.max() <= 251.0
    assert sides.max() > 200.0  # some large campuses
    tree = shapely.STRtree(outlines)
    left, right = tree.query(outlines, predicate="intersects")
    assert (left == right).all(), f"campuses {left[left != right]} overlap {right[left != right]}"


def test_every_gate_lies_on_its_campus_outline(city: DemoCity) -> None:
    gates = city.gates.to_crs(UTM)
    schools = city.schools.to_crs(UTM).set_index(["school_id", "campus"])
    outline = schools.loc[list(zip(gates["school_id"], gates["campus"], strict=True)), "geometry"].to_numpy()
    dist = shapely.distance(gates.geometry.to_numpy(), shapely.boundary(outline))
    assert dist.max() <= 0.5, gates.loc[dist > 0.5, "gate_id"].tolist()
    assert gates["gate_id"].is_unique


def test_gates_one_main_per_gated_campus_some_closed_some_campuses_without(city: DemoCity) -> None:
    g = city.gates
    per_campus = g.groupby(["school_id", "campus"])
    assert (per_campus["kind"].agg(lambda k: (k == "main").sum()) == 1).all()
    assert per_campus.size().between(1, 3).all()
    assert set(g["kind"]) == {"main", "side", "back"}
    assert (~g["in_use"]).sum() >= 1
    gated = set(per_campus.size().index)
    campuses = set(zip(city.schools["school_id"], city.schools["campus"], strict=True))
    assert len(campuses - gated) >= 2


def test_premises_lie_near_and_far_from_schools_and_on_both_sides_of_each_threshold(
    city: DemoCity, premises: gpd.GeoDataFrame
) -> None:
    outlines = city.schools.to_crs(UTM).geometry.to_numpy()
    gates = city.gates.to_crs(UTM).geometry.to_numpy()
    pts = premises.geometry.to_numpy()
    _, to_outline = shapely.STRtree(outlines).query_nearest(pts, return_distance=True, all_matches=False)
    _, to_gate = shapely.STRtree(gates).query_nearest(pts, return_distance=True, all_matches=False)
    assert (to_gate <= 50).sum() >= 20
    assert ((to_outline > 0) & (to_outline <= 200)).sum() >= 200
    # 30% are placed near a campus; the rest are spread over a city dense with schools
    assert (to_outline <= 250).mean() >= 0.3
    assert (to_outline > 250).mean() > 0.2 and (to_outline > 400).any()
    for limit in (100.0, 200.0):  # just inside and just outside the zone
        assert ((to_outline > limit - 3) & (to_outline <= limit)).any()
        assert ((to_outline > limit) & (to_outline < limit + 3)).any()
    assert ((to_gate > 47) & (to_gate <= 50)).any() and ((to_gate > 50) & (to_gate < 53)).any()
    # no premises inside a campus or in the lake
    inside = shapely.STRtree(outlines).query(pts, predicate="within")[0]
    assert len(inside) == 0
    lake = city.assets.loc[city.assets["kind"] == "water"].to_crs(UTM).geometry.iloc[0]
    assert not shapely.contains(lake, pts).any()


def test_every_premises_and_school_lies_inside_one_county(city: DemoCity, premises: gpd.GeoDataFrame) -> None:
    counties = city.districts[city.districts["level"] == "county"].to_crs(UTM)
    for what, frame in (("premises", premises), ("school", city.schools.to_crs(UTM))):
        joined = gpd.sjoin(frame[["geometry"]], counties[["adcode", "geometry"]], predicate="within")
        assert joined.index.is_unique
        assert len(joined) == len(frame), f"a {what} lies outside every county"


def test_districts_nest_and_cities_are_unions_of_their_counties(city: DemoCity) -> None:
    d = city.districts.set_index("adcode")
    assert d.loc["500000", "level"] == "province" and d.loc["500000", "name"] == "重庆市"
    assert d.loc["450300", "parent"] == "450000" and d.loc["440100", "parent"] == "440000"
    assert set(d.index[d["parent"] == "500000"]) == {"500103", "500104"}  # no city level in Chongqing
    assert {"450302", "450303", "500103", "440106"} <= set(d.index[d["level"] == "county"])
    for code in ("450000", "450300", "500000", "440000", "440100"):
        children = d[d["parent"] == code]
        counties = d[(d["level"] == "county") & (d.index.str[:2] == code[:2])]
        union = shapely.union_all(counties.geometry.to_numpy())
        assert shapely.equals_exact(shapely.normalize(union), shapely.normalize(d.loc[code, "geometry"]), 1e-12)
        assert len(children) >= 1
    counties = d[d["level"] == "county"].to_crs(UTM).geometry
    assert shapely.union_all(counties.to_numpy()).area == pytest.approx(counties.area.sum(), rel=1e-9)
    bounds = d.loc[["450000", "500000", "440000"]].total_bounds
    assert 110.0 < bounds[0] < bounds[2] < 110.6 and 25.0 < bounds[1] < bounds[3] < 25.5


def test_streets_form_a_graph_with_shared_nodes(city: DemoCity) -> None:
    s = city.streets
    assert set(s["highway"]) == {"primary", "secondary", "residential", "footway"}
    assert {"中山路", "解放路"} <= set(s["name"].dropna())
    coords = shapely.get_coordinates(s.geometry.to_numpy()).reshape(len(s), 2, 2)
    ends = pd.DataFrame(
        {
            "node": np.concatenate([s["u"], s["v"]]),
            "x": np.concatenate([coords[:, 0, 0], coords[:, 1, 0]]),
            "y": np.concatenate([coords[:, 0, 1], coords[:, 1, 1]]),
        }
    )
    assert (ends.groupby("node")[["x", "y"]].nunique() == 1).all().all()  # one place per node id
    graph = nx.from_pandas_edgelist(s, "u", "v")
    assert len(max(nx.connected_components(graph), key=len)) / graph.number_of_nodes() > 0.95
    lengths = s.to_crs(UTM).length
    assert lengths[s["highway"] != "footway"].between(180, 320).all()
    # the city is about 0.5 km² per school
    area_km2 = city.districts[city.districts["level"] == "county"].to_crs(UTM).area.sum() / 1e6
    assert 0.4 * len(city.schools) <= area_km2 <= 1.0 * len(city.schools)


def test_permits_convenience_stores_dates_statuses_and_footprints(city: DemoCity) -> None:
    p = city.permits
    assert p["permit_id"].is_unique
    assert (p["crs"] == "wgs84").all()
    held = p.dropna(subset=["premises_id"]).groupby("premises_id")["category"].agg(frozenset)
    assert (held == frozenset({"tobacco", "alcohol", "lottery"})).any()
    stores = p[p["premises_id"].isin(held.index[held.map(len) >= 3])]
    assert stores["name"].str.contains("便利店|超市|便民店").all()
    assert set(p["status"]) == {"active", "expired", "revoked", "suspended"}
    issued = pd.to_datetime(p["issued"])
    assert issued.isna().any()  # unknown issue dates (→ review)
    assert (issued < "2021-01-01").any() and (issued >= "2021-01-01").any()
    expired = p["status"] == "expired"
    assert (pd.to_datetime(p.loc[expired, "expires"]) < "2025-07-01").all()
    polluters = p[p["category"] == "polluter"]
    assert polluters["protection_distance_m"].between(50, 500).all()
    assert p.loc[p["category"] != "polluter", "protection_distance_m"].isna().all()
    stalls = p[p["category"] == "food_stall"]
    shapes = shapely.from_wkt(stalls["footprint"].to_numpy())
    assert (shapely.get_type_id(shapes) == 3).all()
    assert shapely.contains_xy(shapes, stalls["lon"], stalls["lat"]).all()
    area = gpd.GeoSeries(shapes, crs="EPSG:4326").to_crs(UTM).area
    assert area.between(5, 30 * 10 * 1.01).all()
    names = " ".join(p["name"])
    for word in ("网吧", "网咖", "彩票", "烟酒", "便利店", "KTV", "酒吧", "加油站", "酒店"):
        assert word in names, word


def test_permits_issued_on_both_sides_of_the_nearest_schools_opening(
    city: DemoCity, premises: gpd.GeoDataFrame
) -> None:
    schools = city.schools.to_crs(UTM)
    near = gpd.sjoin_nearest(premises, schools[["opened", "geometry"]], max_distance=200, how="inner")
    issued, opened = pd.to_datetime(near["issued"]), pd.to_datetime(near["opened"])
    assert (issued < opened).sum() >= 5 and (issued >= opened).sum() >= 5


def test_every_credit_code_validates_and_carries_its_county(city: DemoCity, premises: gpd.GeoDataFrame) -> None:
    codes = city.permits["uscc"].dropna()
    assert len(codes) > 0.8 * len(city.permits)
    assert all(validate_uscc(c) == c for c in codes)
    assert set(codes.str[1]) == {"1", "2"}  # companies and individual businesses
    counties = city.districts[city.districts["level"] == "county"].to_crs(UTM)
    with_code = premises.dropna(subset=["uscc"])
    joined = gpd.sjoin(with_code, counties[["adcode", "geometry"]], predicate="within")
    assert (joined["uscc"].str[2:8] == joined["adcode"]).all()


def test_unlicensed_premises_cameras_and_assets(city: DemoCity) -> None:
    u = city.unlicensed
    assert 0.01 * 3000 <= len(u) <= 0.03 * 3000
    assert u["ref"].is_unique
    schools = city.schools.to_crs(UTM)
    cafes = u[u["categories"] == "internet_cafe"].to_crs(UTM)
    _, d = shapely.STRtree(schools.geometry.to_numpy()).query_nearest(cafes.geometry.to_numpy(), return_distance=True)
    assert (d <= 200).any()  # a 黑网吧 near a school
    # cameras: near in-use gates, looking at them (a few facing away)
    cam = city.cameras
    assert (cam["crs"] == "wgs84").all() and cam["camera_id"].is_unique
    assert cam["fov_deg"].between(60, 120).all() and cam["range_m"].between(30, 80).all()
    gates = city.gates[city.gates["in_use"]]
    gate_pts = gates.to_crs(UTM).geometry.to_numpy()
    cam_pts = gpd.GeoSeries(gpd.points_from_xy(cam["lon"], cam["lat"]), crs="EPSG:4326").to_crs(UTM).to_numpy()
    idx, dist = shapely.STRtree(gate_pts).query_nearest(cam_pts, return_distance=True, all_matches=False)
    assert dist.max() < 20
    gate_ll = gates.geometry.to_numpy()[idx[1]]
    bearing, _, _ = GEOD.inv(cam["lon"], cam["lat"], shapely.get_x(gate_ll), shapely.get_y(gate_ll))
    off = np.abs((cam["direction_deg"] - np.mod(bearing, 360) + 180) % 360 - 180)
    assert (off <= 25).mean() > 0.8 and (off > 150).any()
    # assets: police posts and drop-off lanes near main gates, a lake and a river crossing the city
    a = city.assets.to_crs(UTM)
    main = city.gates[city.gates["kind"] == "main"].to_crs(UTM).geometry.to_numpy()
    lanes = a[a["kind"] == "dropoff"].geometry.to_numpy()
    _, d = shapely.STRtree(main).query_nearest(lanes, return_distance=True)
    assert d.max() < 6 and shapely.length(lanes).min() >= 30
    river = a[a["kind"] == "waterway"].geometry.iloc[0]
    city_area = shapely.union_all(city.districts[city.districts["level"] == "county"].to_crs(UTM).geometry)
    assert river.geom_type == "LineString" and river.intersection(city_area).length > 0.9 * river.length
    lake = a[a["kind"] == "water"].geometry.iloc[0]
    assert lake.geom_type == "Polygon" and city_area.contains(lake)
    _, d = shapely.STRtree(schools.geometry.to_numpy()).query_nearest(lake, return_distance=True)
    assert d.min() < 300  # a school near water (drowning prevention)


# --- files ------------------------------------------------------------------------------------------


def test_geo_files_read_back(city: DemoCity, files: dict[str, Path]) -> None:
    for key in ("districts", "schools", "gates", "streets", "unlicensed", "assets"):
        assert files[key].suffix == ".geojson"
        back = pyogrio.read_dataframe(files[key])
        mine = getattr(city, key)
        assert len(back) == len(mine)
        assert back.crs.to_epsg() == 4326
        assert shapely.equals_exact(back.geometry.to_numpy(), mine.geometry.to_numpy(), 1e-9).all()
    schools = pyogrio.read_dataframe(files["schools"])
    assert list(schools["name"]) == list(city.schools["name"])
    assert {"school_id", "level", "students", "guards", "licensed", "opened"} <= set(schools.columns)


def test_permit_csvs_have_their_encodings_and_split_by_premises(city: DemoCity, files: dict[str, Path]) -> None:
    raw_gcj, raw_gbk = files["permits_gcj02"].read_bytes(), files["permits_gbk"].read_bytes()
    assert raw_gcj.startswith(b"\xef\xbb\xbf")
    raw_gcj.decode("utf-8")
    with pytest.raises(UnicodeDecodeError):
        raw_gbk.decode("utf-8")
    text = raw_gbk.decode("gbk")
    assert text.startswith("许可证号,许可类别,场所名称,地址,统一社会信用代码,场所编号,经度,纬度,坐标系")
    gcj = pd.read_csv(files["permits_gcj02"], encoding="utf-8-sig", dtype=str)
    gbk = pd.read_csv(files["permits_gbk"], encoding="gbk", dtype=str)
    assert list(gcj.columns) == list(city.permits.columns)
    assert set(gcj["crs"]) == {"gcj02"}
    assert set(gbk["坐标系"]) == {"bd09", "wgs84"}
    assert 0.35 < (gbk["坐标系"] == "bd09").mean() < 0.65
    assert len(gcj) + len(gbk) == len(city.permits)
    assert 0.35 < len(gcj) / len(city.permits) < 0.65
    assert set(gcj["permit_id"]).isdisjoint(gbk["许可证号"])
    assert set(gbk["状态"]) == {"有效", "已过期", "吊销", "暂停"}
    dates = gbk["发证日期"].dropna()
    assert dates.str.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日").any()
    assert dates.str.fullmatch(r"\d{4}/\d{1,2}/\d{1,2}").any()
    assert dates.str.fullmatch(r"\d{8}").any()
    both = set(gcj["premises_id"].dropna()) & set(gbk["场所编号"].dropna())
    assert not both, f"premises split across the files: {sorted(both)[:3]}"
    per_premises = gbk.groupby("场所编号")["坐标系"].nunique()
    assert (per_premises == 1).all()
    cams = pd.read_csv(files["cameras"], encoding="utf-8")
    assert list(cams.columns) == ["camera_id", "name", "lon", "lat", "crs", "direction_deg", "fov_deg", "range_m"]
    assert len(cams) == len(city.cameras)


def test_converted_coordinates_come_back_to_the_generated_ones(city: DemoCity, files: dict[str, Path]) -> None:
    truth = city.permits.set_index("permit_id")
    gcj = pd.read_csv(files["permits_gcj02"], encoding="utf-8-sig", dtype={"uscc": str})
    gbk = pd.read_csv(files["permits_gbk"], encoding="gbk", dtype={"统一社会信用代码": str})
    gbk = gbk.rename(
        columns={"许可证号": "permit_id", "经度": "lon", "纬度": "lat", "坐标系": "crs", "经营范围坐标": "footprint"}
    )
    for frame in (gcj, gbk[gbk["crs"] == "bd09"], gbk[gbk["crs"] == "wgs84"]):
        system = frame["crs"].iloc[0]
        ref = truth.loc[frame["permit_id"]]
        shift = GEOD.inv(frame["lon"], frame["lat"], ref["lon"], ref["lat"])[2]
        lon, lat = to_wgs84(frame["lon"].to_numpy(), frame["lat"].to_numpy(), system)
        back = GEOD.inv(lon, lat, ref["lon"], ref["lat"])[2]
        assert back.max() <= 0.05, system
        if system == "gcj02":
            assert shift.min() > 300 and shift.max() < 800  # realistic offsets: the conversion happened
        elif system == "bd09":
            assert shift.min() > 800 and shift.max() < 1500
        else:
            assert shift.max() <= 0.002
        foot = frame.dropna(subset=["footprint"])
        geoms = shapely.from_wkt(foot["footprint"].to_numpy())
        xy = shapely.get_coordinates(geoms)
        blon, blat = to_wgs84(xy[:, 0], xy[:, 1], system)
        ref_xy = shapely.get_coordinates(shapely.from_wkt(truth.loc[foot["permit_id"], "footprint"].to_numpy()))
        assert GEOD.inv(blon, blat, ref_xy[:, 0], ref_xy[:, 1])[2].max() <= 0.05


# --- properties -------------------------------------------------------------------------------------


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), schools=st.integers(1, 40))
def test_any_seed_gives_a_consistent_city(seed: int, schools: int) -> None:
    c = generate_city(schools=schools, premises=150, seed=seed)
    assert len(c.schools.drop_duplicates("school_id")) == schools
    outlines = c.schools.to_crs(UTM).geometry.to_numpy()
    left, right = shapely.STRtree(outlines).query(outlines, predicate="intersects")
    assert (left == right).all()
    gates = c.gates.to_crs(UTM)
    by_campus = c.schools.to_crs(UTM).set_index(["school_id", "campus"]).geometry
    outline = by_campus.loc[list(zip(gates["school_id"], gates["campus"], strict=True))].to_numpy()
    assert len(gates) == 0 or shapely.distance(gates.geometry.to_numpy(), shapely.boundary(outline)).max() <= 0.5
    counties = shapely.union_all(c.districts[c.districts["level"] == "county"].geometry.to_numpy())
    assert shapely.contains_xy(counties, c.permits["lon"], c.permits["lat"]).all()
    assert c.seed == seed
