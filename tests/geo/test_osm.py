"""Reading OpenStreetMap into the domain: hand-made elements at the thresholds, and the real extract."""

from __future__ import annotations

import bz2
import gzip
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import transform

from geo.errors import CoordinateError, InvalidInput
from geo.osm import (
    WALKABLE_HIGHWAYS,
    OsmExtract,
    gate_kind,
    geodesic_distance_m,
    is_walkable,
    read_osm,
    read_overpass_json,
)

GEOD = Geod(ellps="WGS84")
LON0, LAT0 = 118.78, 32.05
_TO_LONLAT = Transformer.from_crs(
    f"+proj=aeqd +lat_0={LAT0} +lon_0={LON0} +datum=WGS84 +units=m", "EPSG:4326", always_xy=True
)
_TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32650", always_xy=True)


def at(east: float, north: float) -> tuple[float, float]:
    """lon/lat of a point ``east`` / ``north`` metres from the test origin."""
    return _TO_LONLAT.transform(east, north)


class _Builder:
    """Builds Overpass JSON elements from local metre coordinates."""

    def __init__(self) -> None:
        self.elements: list[dict[str, Any]] = []
        self._next = 1

    def node(self, east: float, north: float, **tags: str) -> int:
        lon, lat = at(east, north)
        osm_id = self._next
        self._next += 1
        self.elements.append({"type": "node", "id": osm_id, "lon": lon, "lat": lat, "tags": tags})
        return osm_id

    def way(self, refs: list[int], **tags: str) -> int:
        osm_id = 1000 + self._next
        self._next += 1
        self.elements.append({"type": "way", "id": osm_id, "nodes": refs, "tags": tags})
        return osm_id

    def square(self, x0: float, y0: float, size: float, **tags: str) -> int:
        corners = [self.node(x0, y0), self.node(x0 + size, y0), self.node(x0 + size, y0 + size)]
        corners.append(self.node(x0, y0 + size))
        return self.way([*corners, corners[0]], **tags)


def _school_a(b: _Builder) -> int:
    """南京市第五中学: a 100 m square at (0, 0)-(100, 100)."""
    return b.square(0, 0, 100, amenity="school", name="南京市第五中学")


# --- schools: merging at 59 m / 61 m ---------------------------------------------------------------


@pytest.mark.parametrize(("gap", "merged"), [(59.0, True), (61.0, False)])
def test_same_school_point_merges_within_60_m(gap: float, merged: bool) -> None:
    b = _Builder()
    way = _school_a(b)
    point = b.node(50, 100 + gap, amenity="school", name="南京五中")
    extract = read_overpass_json(b.elements)
    by_ref = {s.ref: s for s in extract.schools}
    assert by_ref[f"way/{way}"].name == "南京市第五中学"
    if merged:
        assert len(extract.schools) == 1
        assert by_ref[f"way/{way}"].merged_refs == (f"node/{point}",)
        assert extract.counts["merged_points"] == 1
    else:
        assert len(extract.schools) == 2
        assert by_ref[f"node/{point}"].flags == ("point_only",)
        assert isinstance(by_ref[f"node/{point}"].geometry, Point)


def test_different_school_point_is_not_merged_and_unnamed_point_inside_is() -> None:
    b = _Builder()
    way = _school_a(b)
    other = b.node(50, 110, amenity="school", name="南京九中")
    unnamed = b.node(50, 50, amenity="school", **{"isced:level": "1"})
    extract = read_overpass_json(b.elements)
    by_ref = {s.ref: s for s in extract.schools}
    assert set(by_ref) == {f"way/{way}", f"node/{other}"}
    assert by_ref[f"way/{way}"].merged_refs == (f"node/{unnamed}",)
    # the merged point's level tag adds to the outline's levels
    assert by_ref[f"way/{way}"].levels == {"primary", "junior", "senior"}


def test_excluded_and_unknown_level_schools() -> None:
    b = _Builder()
    party = b.square(300, 0, 50, amenity="school", name="秦淮区委党校")
    unknown = b.node(600, 0, amenity="school", name="南京外国语学校")
    uni = b.square(700, 0, 50, amenity="university", name="南京大学")
    extract = read_overpass_json(b.elements)
    assert {(e.ref, e.reason) for e in extract.excluded} == {
        (f"way/{party}", "party_school"),
        (f"way/{uni}", "university"),
    }
    (school,) = extract.schools
    assert school.ref == f"node/{unknown}"
    assert school.levels == frozenset()
    assert school.flags == ("level_unknown", "point_only")


# --- gates: 14 m / 16 m, nearest campus --------------------------------------------------------------


@pytest.mark.parametrize(("offset", "kept"), [(14.0, True), (16.0, False)])
def test_gate_within_15_m_of_outline(offset: float, kept: bool) -> None:
    b = _Builder()
    way = _school_a(b)
    gate = b.node(50, 100 + offset, barrier="gate", name="北门")
    extract = read_overpass_json(b.elements)
    if kept:
        (found,) = extract.gates
        assert (found.ref, found.school_ref, found.kind) == (f"node/{gate}", f"way/{way}", "side")
        assert found.distance_m == pytest.approx(offset, abs=0.05)
    else:
        assert extract.gates == []


@pytest.mark.parametrize(("east", "nearest"), [(108.0, "a"), (113.0, "b")])
def test_gate_attaches_to_nearest_campus(east: float, nearest: str) -> None:
    b = _Builder()
    ways = {"a": _school_a(b), "b": b.square(120, 0, 100, amenity="school", name="某某小学")}
    b.node(east, 50, entrance="yes", name="校门")
    (gate,) = read_overpass_json(b.elements).gates
    assert gate.school_ref == f"way/{ways[nearest]}"
    assert gate.kind == "main"


def test_gate_deep_inside_campus_is_a_building_door_not_a_gate() -> None:
    b = _Builder()
    _school_a(b)
    b.node(50, 50, entrance="yes")
    assert read_overpass_json(b.elements).gates == []


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("校门", "main"),
        ("正门", "main"),
        ("南大门", "main"),
        ("北门", "side"),
        ("西门", "side"),
        ("后门", "back"),
        (None, "unknown"),
    ],
)
def test_gate_kind(name: str | None, kind: str) -> None:
    assert gate_kind(name) == kind


def test_gate_kind_from_entrance_main_tag() -> None:
    assert gate_kind(None, {"entrance": "main"}) == "main"


# --- street network ----------------------------------------------------------------------------------


def test_ways_split_at_shared_nodes_with_geodesic_lengths() -> None:
    b = _Builder()
    west, cross, mid, east = b.node(-50, -20), b.node(50, -20), b.node(150, -20), b.node(300, -20)
    south = b.node(50, -120)
    b.way([west, cross, mid, east], highway="footway", name="校园路")
    b.way([cross, south], highway="residential")
    edges = read_overpass_json(b.elements).edges
    assert sorted((e.u, e.v) for e in edges) == sorted([(west, cross), (cross, east), (cross, south)])
    lengths = {(e.u, e.v): e.length_m for e in edges}
    assert lengths[(west, cross)] == pytest.approx(100.0, abs=0.01)
    assert lengths[(cross, east)] == pytest.approx(250.0, abs=0.01)
    assert lengths[(cross, south)] == pytest.approx(100.0, abs=0.01)
    for edge in edges:
        assert edge.length_m == pytest.approx(GEOD.geometry_length(edge.geometry), rel=1e-9)


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "steps"}, True),
        ({"highway": "trunk"}, True),
        ({"highway": "service", "access": "private", "foot": "yes"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "footway", "foot": "no"}, False),
        ({"highway": "service", "access": "private"}, False),
        ({"highway": "pedestrian", "area": "yes"}, False),
        ({"highway": "construction"}, False),
        ({"highway": "proposed"}, False),
        ({"building": "yes"}, False),
        ({"landuse": "residential"}, False),
    ],
)
def test_is_walkable(tags: dict[str, str], walkable: bool) -> None:
    assert is_walkable(tags) is walkable


def test_non_walkable_ways_make_no_edges() -> None:
    b = _Builder()
    b.square(0, 0, 50, building="yes")
    b.square(100, 0, 50, landuse="residential")
    b.square(200, 0, 50, highway="pedestrian", area="yes")
    b.way([b.node(0, 100), b.node(100, 100)], highway="motorway")
    b.way([b.node(0, 200), b.node(100, 200)], highway="footway", foot="no")
    assert read_overpass_json(b.elements).edges == []


def test_way_with_node_missing_from_extract_breaks_there() -> None:
    b = _Builder()
    first, second, fourth = b.node(0, 0), b.node(50, 0), b.node(150, 0)
    b.way([first, second, 999_999, fourth, b.node(200, 0)], highway="residential")
    edges = read_overpass_json(b.elements).edges
    assert sorted((e.u, e.v) for e in edges) == sorted([(first, second), (fourth, fourth + 1)])


# --- premises and assets -----------------------------------------------------------------------------


def test_premises_and_assets() -> None:
    b = _Builder()
    bar = b.node(0, 0, amenity="bar", name="Beer Hero")
    b.node(10, 0, amenity="bar", name="Party时代KTV")
    b.square(20, 0, 20, shop="wine", name="七天连锁酒店", building="yes")
    market = b.square(60, 0, 40, amenity="marketplace", name="科巷菜市场")
    b.node(200, 0, shop="clothes", name="Uniqlo")
    water = b.square(300, 0, 30, natural="water", name="碧池")
    river = b.way([b.node(400, 0), b.node(500, 50)], waterway="river", name="珍珠河")
    police = b.square(600, 0, 20, amenity="police", building="yes")
    b.square(700, 0, 20, landuse="grass")
    extract = read_overpass_json(b.elements)
    cats = {p.name: p.categories for p in extract.premises}
    assert cats == {"Beer Hero": ("bar",), "Party时代KTV": ("entertainment",), "科巷菜市场": ("food_stall",)}
    market_p = next(p for p in extract.premises if p.ref == f"way/{market}")
    assert isinstance(market_p.footprint, Polygon) and market_p.footprint.covers(market_p.point)
    assert next(p for p in extract.premises if p.ref == f"node/{bar}").footprint is None
    assets = {a.ref: (a.kind, a.geometry.geom_type) for a in extract.assets}
    assert assets == {
        f"way/{water}": ("water", "Polygon"),
        f"way/{river}": ("waterway", "LineString"),
        f"way/{police}": ("police", "Point"),
    }


def test_multipolygon_school_with_hole() -> None:
    b = _Builder()
    outer = b.square(0, 0, 100)
    inner = b.square(40, 40, 20)
    b.elements.append(
        {
            "type": "relation",
            "id": 7,
            "members": [
                {"type": "way", "ref": outer, "role": "outer"},
                {"type": "way", "ref": inner, "role": "inner"},
            ],
            "tags": {"type": "multipolygon", "amenity": "kindergarten", "name": "某某幼儿园"},
        }
    )
    (school,) = read_overpass_json(b.elements).schools
    assert school.ref == "relation/7"
    assert school.levels == {"kindergarten"}
    assert not school.geometry.covers(Point(at(50, 50)))
    assert school.geometry.covers(Point(at(10, 10)))


# --- distances ----------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=-400, max_value=400), st.floats(min_value=-400, max_value=400))
def test_geodesic_distance_agrees_with_utm(east: float, north: float) -> None:
    square = Polygon([at(0, 0), at(100, 0), at(100, 100), at(0, 100)])
    point = Point(at(east, north))
    ours = geodesic_distance_m(point, square)
    utm = transform(_TO_UTM.transform, square).distance(transform(_TO_UTM.transform, point))
    assert ours == pytest.approx(utm, rel=2e-3, abs=0.05)
    assert (ours == 0.0) == square.covers(point)


def test_geodesic_distance_to_a_point_is_geod_inv() -> None:
    a, c = at(0, 0), at(300, 400)
    assert geodesic_distance_m(Point(a), Point(c)) == pytest.approx(GEOD.inv(*a, *c)[2], abs=1e-6)
    assert geodesic_distance_m(Point(a), Point(c)) == pytest.approx(500.0, abs=0.01)


# --- the XML reader on tiny files ----------------------------------------------------------------------

_TINY = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
<meta osm_base="2021-06-12T07:41:41Z"/>
<node id="1" lat="32.05" lon="118.78"><tag k="amenity" v="bar"/><tag k="name" v="Beer Hero"/></node>
<node id="2" lat="32.05" lon="118.781"/>
<node id="3" lat="32.051" lon="118.781"/>
<way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="footway"/></way>
</osm>
"""


@pytest.mark.parametrize("opener", [open, gzip.open, bz2.open])
def test_read_osm_plain_gzip_bzip2(tmp_path: Path, opener: Any) -> None:
    path = tmp_path / "tiny.osm"
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write(_TINY)
    seen: list[int] = []
    extract = read_osm(path, progress=seen.append)
    assert extract.data_date == "2021-06-12"
    assert seen[-1] == 4
    assert [p.name for p in extract.premises] == ["Beer Hero"]
    (edge,) = extract.edges
    assert (edge.u, edge.v) == (1, 3)
    assert extract.bounds == pytest.approx((118.78, 32.05, 118.781, 32.051))


def test_read_osm_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="missing.osm"):
        read_osm(tmp_path / "missing.osm")
    broken = tmp_path / "broken.osm"
    broken.write_text(_TINY[:300], encoding="utf-8")
    with pytest.raises(InvalidInput, match="broken.osm") as info:
        read_osm(broken)
    assert "OSM XML" in info.value.message_en and "文件" in info.value.message_zh
    other = tmp_path / "other.xml"
    other.write_text("<html><body/></html>", encoding="utf-8")
    with pytest.raises(InvalidInput, match="<html>"):
        read_osm(other)
    bad = tmp_path / "bad.osm"
    bad.write_text(_TINY.replace('lat="32.05" lon="118.78"', 'lat="232.05" lon="118.78"'), encoding="utf-8")
    with pytest.raises(CoordinateError, match="232.05") as coord:
        read_osm(bad)
    assert "node/1" in coord.value.value and "纬度" in coord.value.message_zh


# --- the real Nanjing extract ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nanjing(nanjing_osm: Path) -> OsmExtract:
    return read_osm(nanjing_osm)


@pytest.fixture(scope="module")
def raw(nanjing_osm: Path) -> dict[str, Any]:
    """An independent plain reading of the extract: coordinates and tags by reference."""
    coords: dict[int, tuple[float, float]] = {}
    tags: dict[str, dict[str, str]] = {}
    with gzip.open(nanjing_osm) as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag in ("node", "way", "relation"):
                ref = f"{elem.tag}/{elem.get('id')}"
                tags[ref] = {t.get("k"): t.get("v") for t in elem.findall("tag")}
                if elem.tag == "node":
                    coords[int(elem.get("id"))] = (float(elem.get("lon")), float(elem.get("lat")))
                elem.clear()
    return {"coords": coords, "tags": tags}


def _schools_by_name(extract: OsmExtract) -> dict[str, Any]:
    return {s.name: s for s in extract.schools}


def test_nanjing_data_date_and_sizes(nanjing: OsmExtract, raw: dict[str, Any]) -> None:
    assert nanjing.data_date == "2021-06-12"
    counts = nanjing.counts
    # README, for orientation: about 13,000 nodes and 1,900 ways
    assert counts["nodes"] == sum(r.startswith("node/") for r in raw["tags"])
    assert 12_000 <= counts["nodes"] <= 14_000
    assert 1_800 <= counts["ways"] <= 2_000
    minlon, minlat, maxlon, maxlat = nanjing.bounds
    assert minlon < 118.79 < maxlon and minlat < 32.04 < maxlat


def test_nanjing_excluded_non_schools(nanjing: OsmExtract) -> None:
    reasons = {e.name: e.reason for e in nanjing.excluded}
    assert reasons["秦淮区委党校"] == "party_school"
    assert reasons["秦淮区教师进修学校"] == "teacher_training"
    assert reasons["南京幼儿高等师范学校"] == "teacher_training"
    assert not set(reasons) & set(_schools_by_name(nanjing))


def test_nanjing_levels(nanjing: OsmExtract) -> None:
    schools = _schools_by_name(nanjing)
    assert schools["五老村幼儿园"].levels == {"kindergarten"}
    assert schools["南京市五老村小学"].levels == {"primary"}
    assert schools["南京市第九初级中学"].levels == {"junior"}
    assert schools["金陵中学"].levels == {"junior", "senior"}
    assert schools["Changjiang Road Primary School"].levels == {"primary"}  # from name:zh 长江路小学
    for school in nanjing.schools:
        assert ("level_unknown" in school.flags) == (not school.levels)


def test_nanjing_fifth_middle_school_counted_once(nanjing: OsmExtract, raw: dict[str, Any]) -> None:
    schools = _schools_by_name(nanjing)
    assert "南京五中" not in schools
    fifth = schools["南京市第五中学"]
    assert fifth.ref.startswith("way/") and not isinstance(fifth.geometry, Point)
    assert [raw["tags"][ref]["name"] for ref in fifth.merged_refs] == ["南京五中"]
    merged_point = raw["coords"][int(fifth.merged_refs[0].split("/")[1])]
    assert geodesic_distance_m(Point(merged_point), fifth.geometry) <= 60.0


def test_nanjing_school_accounting(nanjing: OsmExtract, raw: dict[str, Any]) -> None:
    """Every amenity=school feature is a school, an excluded feature, or merged — never two of these."""
    tagged = {ref for ref, t in raw["tags"].items() if t.get("amenity") in ("school", "kindergarten")}
    # README, for orientation: 18 features tagged amenity=school (4 points, 14 polygons)
    assert 15 <= len(tagged) <= 21
    schools = {s.ref for s in nanjing.schools}
    excluded = {e.ref for e in nanjing.excluded}
    merged = {ref for s in nanjing.schools for ref in s.merged_refs}
    assert not schools & excluded and not schools & merged and not excluded & merged
    assert tagged <= schools | excluded | merged
    assert nanjing.counts["schools"] + nanjing.counts["merged_points"] == len(tagged - excluded)
    point_only = [s for s in nanjing.schools if "point_only" in s.flags]
    assert all(isinstance(s.geometry, Point) for s in point_only)
    assert {s.name for s in point_only} >= {"人民中学"}


def test_nanjing_premises_traps(nanjing: OsmExtract, raw: dict[str, Any]) -> None:
    by_name = {p.name: p for p in nanjing.premises}
    assert by_name["Party时代KTV"].categories == ("entertainment",)
    assert raw["tags"][by_name["Party时代KTV"].ref]["amenity"] == "bar"
    hotel_ref = next(ref for ref, t in raw["tags"].items() if t.get("name") == "七天连锁酒店")
    assert raw["tags"][hotel_ref]["shop"] == "wine"
    assert all(p.ref != hotel_ref for p in nanjing.premises)
    assert not any("alcohol" in p.categories for p in nanjing.premises if p.name and "酒店" in p.name)
    assert "江苏省烟草专卖局" not in by_name  # the monopoly bureau's building is not a tobacco shop
    # README: 5 amenity=bar and 2 amenity=pub; the KTV is one of the bars
    bars = [p for p in nanjing.premises if "bar" in p.categories]
    assert {raw["tags"][p.ref]["amenity"] for p in bars} == {"bar", "pub"}
    assert all(p.categories for p in nanjing.premises)


def test_nanjing_gates_belong_to_the_nearest_campus(nanjing: OsmExtract, raw: dict[str, Any]) -> None:
    schools = {s.ref: s for s in nanjing.schools}
    campuses = {ref: s for ref, s in schools.items() if not isinstance(s.geometry, Point)}
    named = {g.name: g for g in nanjing.gates if g.name}
    assert set(named) == {"校门", "北门", "后门"}
    assert {name: g.kind for name, g in named.items()} == {"校门": "main", "北门": "side", "后门": "back"}
    for gate in named.values():
        assert schools[gate.school_ref].name == "金陵中学"
    for gate in nanjing.gates:
        # independently, in UTM 50N: the attached campus outline is the nearest and within 15 m
        point = transform(_TO_UTM.transform, gate.point)
        dist = {ref: transform(_TO_UTM.transform, s.geometry.boundary).distance(point) for ref, s in campuses.items()}
        assert min(dist, key=dist.get) == gate.school_ref
        assert dist[gate.school_ref] <= 15.1
        assert gate.distance_m == pytest.approx(dist[gate.school_ref], abs=0.1)
    # README: 16 entrance/gate nodes, of which 4 lie on or within 15 m of a school outline
    candidates = [
        r for r, t in raw["tags"].items() if r.startswith("node/") and ("entrance" in t or t.get("barrier") == "gate")
    ]
    assert len(nanjing.gates) == 4 < len(candidates)


def test_nanjing_edges_are_walkable_and_geodesic(nanjing: OsmExtract, raw: dict[str, Any]) -> None:
    assert nanjing.edges
    for edge in nanjing.edges:
        tags = raw["tags"][edge.way_ref]
        assert "building" not in tags and "landuse" not in tags
        assert tags["highway"] == edge.highway in WALKABLE_HIGHWAYS
        assert edge.length_m == pytest.approx(GEOD.geometry_length(edge.geometry), rel=1e-6)
        assert edge.geometry.coords[0] == raw["coords"][edge.u]
        assert edge.geometry.coords[-1] == raw["coords"][edge.v]
    highway_ways = {r for r, t in raw["tags"].items() if r.startswith("way/") and "highway" in t}
    used = {e.way_ref for e in nanjing.edges}
    assert used <= highway_ways
    assert not any(raw["tags"][r].get("area") == "yes" for r in used)


def test_nanjing_network_size_and_connectivity(nanjing: OsmExtract) -> None:
    graph = nx.MultiGraph()
    for edge in nanjing.edges:
        graph.add_edge(edge.u, edge.v, length=edge.length_m)
    # README, for orientation: ~570 nodes / 1,400 edges / 87 km (osmnx-style: directed edges, nodes only
    # at intersections). Our graph is undirected and also keeps way-to-way joints as nodes.
    assert 500 <= graph.number_of_nodes() <= 750
    assert 1_400 / 2 * 0.9 <= graph.number_of_edges() <= 1_400
    total_km = sum(e.length_m for e in nanjing.edges) / 1000
    assert 78 <= total_km <= 96
    assert nanjing.counts["edges"] == graph.number_of_edges()
    largest = max(nx.connected_components(graph), key=len)
    assert len(largest) >= 0.75 * graph.number_of_nodes()


def test_nanjing_assets(nanjing: OsmExtract, raw: dict[str, Any]) -> None:
    kinds = {a.kind for a in nanjing.assets}
    assert kinds == {"water", "waterway", "police"}
    for asset in nanjing.assets:
        tags = raw["tags"][asset.ref]
        if asset.kind == "water":
            assert tags.get("natural") == "water" and asset.geometry.geom_type in ("Polygon", "MultiPolygon")
        elif asset.kind == "waterway":
            assert tags["waterway"] in ("river", "canal", "stream", "drain", "ditch")
            assert isinstance(asset.geometry, LineString)
        else:
            assert tags["amenity"] == "police" and isinstance(asset.geometry, Point)
    assert "碧池" in {a.name for a in nanjing.assets if a.kind == "water"}
    police_tagged = [r for r, t in raw["tags"].items() if t.get("amenity") == "police"]
    assert len([a for a in nanjing.assets if a.kind == "police"]) == len(police_tagged)


def test_fetch_place_wires_osmnx_overpass_to_the_json_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline: osmnx's geocoder and Overpass request are replaced; the query and the result are checked."""
    import geopandas as gpd
    import osmnx as ox
    from osmnx import _overpass

    from geo.osm import fetch_place

    b = _Builder()
    way = _school_a(b)
    b.node(50, 114, barrier="gate", name="北门")
    area = Polygon([at(-200, -200), at(300, -200), at(300, 300), at(-200, 300)])
    queries: list[str] = []

    def fake_geocode(place: str) -> gpd.GeoDataFrame:
        assert place == "秦淮区, 南京市"
        return gpd.GeoDataFrame(geometry=[area], crs="EPSG:4326")

    def fake_request(data: dict[str, str]) -> dict[str, Any]:
        queries.append(data["data"])
        return {"osm3s": {"timestamp_osm_base": "2024-03-01T10:00:00Z"}, "elements": b.elements}

    monkeypatch.setattr(ox, "geocode_to_gdf", fake_geocode)
    monkeypatch.setattr(_overpass, "_overpass_request", fake_request)
    extract = fetch_place("秦淮区, 南京市")
    assert queries and all("poly:" in q and q.startswith("[out:json]") for q in queries)
    assert extract.data_date == "2024-03-01"
    assert [s.ref for s in extract.schools] == [f"way/{way}"]
    assert [g.name for g in extract.gates] == ["北门"]


def test_footway_inside_campus_is_kept() -> None:
    b = _Builder()
    _school_a(b)
    inside = b.way([b.node(20, 20), b.node(80, 80)], highway="footway")
    (edge,) = read_overpass_json(b.elements).edges
    assert edge.way_ref == f"way/{inside}"
    assert edge.length_m == pytest.approx(60 * 2**0.5, abs=0.01)
