"""Reading OpenStreetMap data into the safezone domain.

One shared core, :func:`extract_from_elements`, turns raw OSM elements (nodes, ways, relations with
their tags) into schools (merged point + outline records), excluded non-schools, gates attached to
their campus, categorised premises, zone assets (water, waterways, police) and the undirected
pedestrian street network with geodesic edge lengths. Two front ends feed it: :func:`read_osm` streams
an OSM XML file (``.osm``, ``.osm.gz``, ``.osm.bz2``) and :func:`read_overpass_json` reads Overpass
JSON elements; :func:`fetch_place` downloads a place through osmnx's Overpass machinery (network only,
used by the ingest command, never during a request).

Traps handled deliberately (see the test extract's README): only walkable ``highway=*`` ways become
street edges (never buildings or land use); Party schools, teacher-training colleges and universities
tagged ``amenity=school`` are reported as excluded, not schools; kindergartens tagged ``amenity=school``
get their level from the name; hotels named 酒店 and KTVs tagged ``amenity=bar`` are handled by the
category mapping (data, see :mod:`geo.categories`).
"""

from __future__ import annotations

import bz2
import gzip
import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points, polygonize, unary_union

from geo.categories import CategoryMapping, load_mapping
from geo.errors import CoordinateError, InvalidInput
from geo.levels import classify_school, normalise_school_name

logger = logging.getLogger(__name__)

GEOD = Geod(ellps="WGS84")

#: A school point this close to a polygon of the same school (or inside it) is merged into it.
MERGE_DISTANCE_M = 60.0
#: An entrance / gate node this close to a campus outline is one of its gates.
GATE_DISTANCE_M = 15.0

SCHOOL_AMENITIES = frozenset({"school", "kindergarten"})
EXCLUDED_AMENITIES = frozenset({"university", "college"})

#: ``highway=*`` values a pedestrian may walk on. Motorways, proposed and construction ways, platforms
#: and the like are not in it.
WALKABLE_HIGHWAYS = frozenset(
    {
        "footway",
        "path",
        "pedestrian",
        "steps",
        "living_street",
        "residential",
        "service",
        "unclassified",
        "road",
        "tertiary",
        "tertiary_link",
        "secondary",
        "secondary_link",
        "primary",
        "primary_link",
        "trunk",
        "trunk_link",
        "track",
        "cycleway",
        "bridleway",
        "corridor",
        "elevator",
    }
)
_FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official"})
_NO_ACCESS = frozenset({"no", "private"})
WATERWAY_LINES = frozenset({"river", "canal", "stream", "drain", "ditch", "brook"})

_GATE_MAIN = ("正门", "大门", "校门", "主门", "主入口", "正大门")
_GATE_BACK = ("后门",)
_GATE_SIDE = ("北门", "南门", "东门", "西门", "侧门", "边门", "东北门", "西北门", "东南门", "西南门")

RawNode = tuple[float, float, Mapping[str, str]]
RawWay = tuple[list[int], Mapping[str, str]]
RawRelation = tuple[list[tuple[str, int, str]], Mapping[str, str]]


@dataclass(frozen=True)
class OsmSchool:
    """A protected school (or kindergarten) campus found in OSM.

    ``geometry`` is the campus outline (Polygon/MultiPolygon) or, with flag ``point_only``, a Point.
    ``merged_refs`` names the school points merged into this outline.
    """

    ref: str
    name: str | None
    levels: frozenset[str]
    flags: tuple[str, ...]
    geometry: BaseGeometry
    merged_refs: tuple[str, ...]
    tags: dict[str, str]


@dataclass(frozen=True)
class OsmExcluded:
    """A feature tagged as a school that is not a protected school (``reason`` as in ``SchoolClass``)."""

    ref: str
    name: str | None
    reason: str


@dataclass(frozen=True)
class OsmGate:
    """A campus gate: an entrance/gate/door node on or within 15 m of the outline of ``school_ref``."""

    ref: str
    name: str | None
    kind: str
    point: Point
    school_ref: str
    distance_m: float


@dataclass(frozen=True)
class OsmPremises:
    """A business premises in at least one category; ``footprint`` when it is mapped as an area."""

    ref: str
    name: str | None
    categories: tuple[str, ...]
    point: Point
    footprint: Polygon | None
    tags: dict[str, str]


@dataclass(frozen=True)
class OsmAsset:
    """A zone asset: ``water`` (polygon), ``waterway`` (line) or ``police`` (point)."""

    ref: str
    kind: str
    name: str | None
    geometry: BaseGeometry


@dataclass(frozen=True)
class OsmEdge:
    """An undirected pedestrian street edge between graph nodes ``u`` and ``v`` (OSM node ids)."""

    u: int
    v: int
    geometry: LineString
    length_m: float
    highway: str
    name: str | None
    way_ref: str = ""


@dataclass(frozen=True)
class OsmExtract:
    """Everything the importer takes from one OSM extract."""

    schools: list[OsmSchool]
    excluded: list[OsmExcluded]
    gates: list[OsmGate]
    premises: list[OsmPremises]
    assets: list[OsmAsset]
    edges: list[OsmEdge]
    data_date: str | None
    bounds: tuple[float, float, float, float] | None
    counts: dict[str, int] = field(default_factory=dict)


def read_osm(
    path: Path,
    *,
    mapping: CategoryMapping | None = None,
    progress: Callable[[int], None] | None = None,
) -> OsmExtract:
    """Read an OSM XML extract.

    Parameters
    ----------
    path
        An ``.osm`` file, optionally gzip- or bzip2-compressed (detected from its first bytes).
    mapping
        The category mapping for premises; the repository's default mapping if omitted.
    progress
        Called with the number of elements read so far, every 10,000 elements and at the end.

    Returns
    -------
    OsmExtract
        The schools, excluded features, gates, premises, assets and street edges. ``data_date`` is the
        date of the header's ``<meta osm_base=...>`` (or the ``timestamp`` attribute of ``<osm>``, or
        the newest element timestamp).

    Raises
    ------
    InvalidInput
        If the file is missing or is not OSM XML.
    CoordinateError
        If a node has no valid latitude/longitude.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"OSM file not found: {str(path)!r}"
        raise InvalidInput(msg, message_zh=f"找不到 OSM 文件：{str(path)!r}", field="path", value=str(path))
    nodes: dict[int, RawNode] = {}
    ways: dict[int, RawWay] = {}
    relations: dict[int, RawRelation] = {}
    header: dict[str, str | None] = {"osm_base": None, "timestamp": None, "newest": None}
    bounds: tuple[float, float, float, float] | None = None
    count = 0
    try:
        with _open(path) as fh:
            root = None
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    if root is None:
                        root = elem
                        if elem.tag != "osm":
                            msg = f"{str(path)!r} is not OSM XML: root element <{elem.tag}>"
                            zh = f"{str(path)!r} 不是 OSM XML 文件：根元素为 <{elem.tag}>"
                            raise InvalidInput(msg, message_zh=zh, field="path", value=str(path))
                        header["timestamp"] = elem.get("timestamp")
                    continue
                tag = elem.tag
                if tag in ("node", "way", "relation"):
                    _read_element(elem, nodes, ways, relations, header)
                    count += 1
                    if progress is not None and count % 10_000 == 0:
                        progress(count)
                    elem.clear()
                    if root is not None:
                        root.clear()
                elif tag == "meta":
                    header["osm_base"] = elem.get("osm_base")
                elif tag == "bounds":
                    bounds = _bounds_attr(elem)
    except ET.ParseError as exc:
        msg = f"{str(path)!r} is not valid OSM XML: {exc}"
        zh = f"{str(path)!r} 不是有效的 OSM XML 文件：{exc}"
        raise InvalidInput(msg, message_zh=zh, field="path", value=str(path)) from exc
    except (OSError, EOFError) as exc:
        msg = f"cannot read OSM file {str(path)!r}: {exc}"
        zh = f"无法读取 OSM 文件 {str(path)!r}：{exc}"
        raise InvalidInput(msg, message_zh=zh, field="path", value=str(path)) from exc
    if progress is not None:
        progress(count)
    stamp = header["osm_base"] or header["timestamp"] or header["newest"]
    return extract_from_elements(nodes, ways, relations, mapping=mapping, data_date=_date_part(stamp), bounds=bounds)


def read_overpass_json(
    elements: Iterable[Mapping[str, Any]],
    *,
    mapping: CategoryMapping | None = None,
    data_date: str | None = None,
) -> OsmExtract:
    """Read Overpass API JSON elements (``response["elements"]``).

    Parameters
    ----------
    elements
        Dicts with ``type`` (node/way/relation), ``id``, ``lat``/``lon`` (nodes), ``nodes`` (ways,
        optionally with ``geometry`` from ``out geom``), ``members`` (relations) and ``tags``.
    mapping
        The category mapping; the default mapping if omitted.
    data_date
        The data date, e.g. the response's ``osm3s.timestamp_osm_base``.

    Returns
    -------
    OsmExtract
    """
    nodes: dict[int, RawNode] = {}
    ways: dict[int, RawWay] = {}
    relations: dict[int, RawRelation] = {}
    for element in elements:
        kind = element.get("type")
        osm_id = int(element["id"])
        tags = dict(element.get("tags") or {})
        if kind == "node":
            nodes[osm_id] = (*_lonlat(element.get("lon"), element.get("lat"), osm_id), tags)
        elif kind == "way":
            refs = [int(r) for r in element.get("nodes") or []]
            for ref, coord in zip(refs, element.get("geometry") or [], strict=False):
                if coord and ref not in nodes:
                    nodes[ref] = (*_lonlat(coord.get("lon"), coord.get("lat"), ref), {})
            ways[osm_id] = (refs, tags)
        elif kind == "relation":
            members = [(m["type"], int(m["ref"]), m.get("role") or "") for m in element.get("members") or []]
            relations[osm_id] = (members, tags)
    return extract_from_elements(nodes, ways, relations, mapping=mapping, data_date=_date_part(data_date))


def fetch_place(place: str, *, mapping: CategoryMapping | None = None) -> OsmExtract:
    """Download every OSM element of a place through osmnx's Overpass machinery (network needed).

    Parameters
    ----------
    place
        A place name osmnx can geocode (e.g. ``"秦淮区, 南京市, 中国"``).
    mapping
        The category mapping; the default mapping if omitted.

    Returns
    -------
    OsmExtract
    """
    import osmnx as ox  # only the ingest path needs osmnx
    from osmnx import _overpass

    polygon = ox.geocode_to_gdf(place).union_all()
    settings = _overpass._make_overpass_settings()
    elements: dict[tuple[str, int], Mapping[str, Any]] = {}
    stamp: str | None = None
    for coords in _overpass._make_overpass_polygon_coord_strs(polygon):
        query = f'{settings};(nwr(poly:"{coords}");>;);out body;'
        response = _overpass._overpass_request(OrderedDict(data=query))
        stamp = stamp or (response.get("osm3s") or {}).get("timestamp_osm_base")
        for element in response.get("elements", []):
            elements[(element["type"], int(element["id"]))] = element
    return read_overpass_json(elements.values(), mapping=mapping, data_date=stamp)


def extract_from_elements(
    nodes: Mapping[int, RawNode],
    ways: Mapping[int, RawWay],
    relations: Mapping[int, RawRelation],
    *,
    mapping: CategoryMapping | None = None,
    data_date: str | None = None,
    bounds: tuple[float, float, float, float] | None = None,
) -> OsmExtract:
    """Turn raw OSM elements into the safezone domain (the core shared by every front end).

    Parameters
    ----------
    nodes
        Node id -> ``(lon, lat, tags)``.
    ways
        Way id -> ``(node ids, tags)``.
    relations
        Relation id -> ``([(member type, member id, role), ...], tags)``.
    mapping
        The category mapping for premises; the default mapping if omitted.
    data_date
        The data date to report.
    bounds
        ``(min lon, min lat, max lon, max lat)``; computed from the nodes if omitted.

    Returns
    -------
    OsmExtract
    """
    mapping = mapping if mapping is not None else load_mapping()
    schools, excluded, merged = _schools(nodes, ways, relations)
    gates = _gates(nodes, schools)
    premises = _premises(nodes, ways, mapping)
    assets = _assets(nodes, ways, relations)
    edges = _edges(nodes, ways)
    if bounds is None and nodes:
        coords = np.array([(lon, lat) for lon, lat, _ in nodes.values()])
        bounds = (*coords.min(axis=0).tolist(), *coords.max(axis=0).tolist())
    graph_nodes = {n for e in edges for n in (e.u, e.v)}
    counts = {
        "nodes": len(nodes),
        "ways": len(ways),
        "relations": len(relations),
        "schools": len(schools),
        "schools_point_only": sum("point_only" in s.flags for s in schools),
        "schools_level_unknown": sum("level_unknown" in s.flags for s in schools),
        "merged_points": merged,
        "excluded": len(excluded),
        "gates": len(gates),
        "premises": len(premises),
        "assets": len(assets),
        "graph_nodes": len(graph_nodes),
        "edges": len(edges),
        "edge_length_m": round(sum(e.length_m for e in edges)),
    }
    counts.update({f"premises_{cat}": n for cat, n in sorted(_category_counts(premises).items())})
    return OsmExtract(
        schools=schools,
        excluded=excluded,
        gates=gates,
        premises=premises,
        assets=assets,
        edges=edges,
        data_date=data_date,
        bounds=bounds,
        counts=counts,
    )


def gate_kind(name: str | None, tags: Mapping[str, str] | None = None) -> str:
    """The kind of a gate from its name (and ``entrance=main``): ``main``, ``side``, ``back``, ``unknown``.

    正门/大门/校门/主门 are main gates, 后门 a back gate, 北门/南门/东门/西门/侧门 side gates.
    """
    tags = tags or {}
    text = name or ""
    if any(key in text for key in _GATE_MAIN) or tags.get("entrance") == "main":
        return "main"
    if any(key in text for key in _GATE_BACK):
        return "back"
    if any(key in text for key in _GATE_SIDE):
        return "side"
    return "unknown"


def geodesic_distance_m(point: Point, geometry: BaseGeometry) -> float:
    """Geodesic distance (WGS84 ellipsoid, metres) from a lon/lat point to a lon/lat geometry.

    The reference method of DESIGN.md: the nearest point is found in a local azimuthal equidistant
    projection centred on ``point``, then measured with ``pyproj.Geod.inv``. Zero inside a polygon.
    """
    if geometry.is_empty:
        msg = "cannot measure a distance to an empty geometry"
        raise ValueError(msg)
    if geometry.covers(point):
        return 0.0
    forward, inverse = _aeqd(round(point.x, 9), round(point.y, 9))
    projected = shapely.transform(geometry, lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1])))
    near = nearest_points(Point(0.0, 0.0), projected)[1]
    lon, lat = inverse.transform(near.x, near.y)
    return float(GEOD.inv(point.x, point.y, lon, lat)[2])


def geodesic_length_m(line: LineString) -> float:
    """Geodesic length (WGS84 ellipsoid, metres) of a lon/lat line: the sum of ``Geod.inv`` segments."""
    xy = np.asarray(line.coords)
    if len(xy) < 2:
        return 0.0
    return float(np.sum(GEOD.inv(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1])[2]))


# --- reading -----------------------------------------------------------------------------------------


def _open(path: Path) -> BinaryIO:
    with path.open("rb") as fh:
        magic = fh.read(3)
    if magic[:2] == b"\x1f\x8b":
        return cast(BinaryIO, gzip.open(path, "rb"))
    if magic == b"BZh":
        return cast(BinaryIO, bz2.open(path, "rb"))
    return path.open("rb")


def _read_element(
    elem: ET.Element,
    nodes: dict[int, RawNode],
    ways: dict[int, RawWay],
    relations: dict[int, RawRelation],
    header: dict[str, str | None],
) -> None:
    osm_id = int(elem.get("id", "0"))
    tags = {t.get("k", ""): t.get("v", "") for t in elem.iter("tag")}
    stamp = elem.get("timestamp")
    if stamp and (header["newest"] is None or stamp > header["newest"]):
        header["newest"] = stamp
    if elem.tag == "node":
        nodes[osm_id] = (*_lonlat(elem.get("lon"), elem.get("lat"), osm_id), tags)
    elif elem.tag == "way":
        ways[osm_id] = ([int(nd.get("ref", "0")) for nd in elem.iter("nd")], tags)
    else:
        members = [(m.get("type", ""), int(m.get("ref", "0")), m.get("role", "")) for m in elem.iter("member")]
        relations[osm_id] = (members, tags)


def _lonlat(lon: Any, lat: Any, osm_id: int) -> tuple[float, float]:
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError):
        x = y = float("nan")
    if not (np.isfinite(x) and np.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
        msg = f"node {osm_id} has no valid coordinate: lon={lon!r}, lat={lat!r}"
        zh = f"节点 {osm_id} 的坐标无效：经度={lon!r}，纬度={lat!r}"
        raise CoordinateError(msg, message_zh=zh, field="lon/lat", value=f"node/{osm_id}: {lon}, {lat}")
    return x, y


def _bounds_attr(elem: ET.Element) -> tuple[float, float, float, float] | None:
    try:
        return (
            float(elem.get("minlon", "")),
            float(elem.get("minlat", "")),
            float(elem.get("maxlon", "")),
            float(elem.get("maxlat", "")),
        )
    except ValueError:
        return None


def _date_part(stamp: str | None) -> str | None:
    if not stamp:
        return None
    match = re.match(r"\d{4}-\d{2}-\d{2}", stamp)
    return match.group(0) if match else None


# --- geometry ----------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _aeqd(lon: float, lat: float) -> tuple[Transformer, Transformer]:
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m +no_defs")
    return (
        Transformer.from_crs("EPSG:4326", local, always_xy=True),
        Transformer.from_crs(local, "EPSG:4326", always_xy=True),
    )


def _way_coords(refs: list[int], nodes: Mapping[int, RawNode]) -> list[tuple[float, float]] | None:
    coords = []
    for ref in refs:
        node = nodes.get(ref)
        if node is None:
            return None
        coords.append((node[0], node[1]))
    return coords


def _is_closed(refs: list[int]) -> bool:
    return len(refs) >= 4 and refs[0] == refs[-1]


def _polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polys = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon) and not g.is_empty]
    polys += [p for g in getattr(geom, "geoms", []) if isinstance(g, MultiPolygon) for p in g.geoms]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def _way_polygon(refs: list[int], nodes: Mapping[int, RawNode]) -> Polygon | MultiPolygon | None:
    if not _is_closed(refs):
        return None
    coords = _way_coords(refs, nodes)
    return _polygonal(Polygon(coords)) if coords else None


def _relation_polygon(
    members: list[tuple[str, int, str]], ways: Mapping[int, RawWay], nodes: Mapping[int, RawNode]
) -> Polygon | MultiPolygon | None:
    outer: list[LineString] = []
    inner: list[LineString] = []
    for kind, ref, role in members:
        if kind != "way" or ref not in ways:
            continue
        coords = _way_coords(ways[ref][0], nodes)
        if coords is None or len(coords) < 2:
            continue
        (inner if role == "inner" else outer).append(LineString(coords))
    shell = unary_union(list(polygonize(outer))) if outer else None
    if shell is None or shell.is_empty:
        return None
    if inner:
        holes = unary_union(list(polygonize(inner)))
        if not holes.is_empty:
            shell = shell.difference(holes)
    return _polygonal(shell)


def _area_geometry(
    kind: str,
    osm_id: int,
    nodes: Mapping[int, RawNode],
    ways: Mapping[int, RawWay],
    relations: Mapping[int, RawRelation],
) -> Polygon | MultiPolygon | None:
    if kind == "way":
        return _way_polygon(ways[osm_id][0], nodes)
    members, tags = relations[osm_id]
    if tags.get("type") not in ("multipolygon", "boundary"):
        return None
    return _relation_polygon(members, ways, nodes)


def _inner_point(geom: BaseGeometry) -> Point:
    centroid = geom.centroid
    return centroid if geom.covers(centroid) else geom.representative_point()


# --- schools -----------------------------------------------------------------------------------------


def _school_features(
    nodes: Mapping[int, RawNode], ways: Mapping[int, RawWay], relations: Mapping[int, RawRelation]
) -> Iterable[tuple[str, Mapping[str, str], BaseGeometry | None]]:
    wanted = SCHOOL_AMENITIES | EXCLUDED_AMENITIES
    for osm_id, (lon, lat, tags) in nodes.items():
        if tags.get("amenity") in wanted:
            yield f"node/{osm_id}", tags, Point(lon, lat)
    for osm_id, (_refs, tags) in ways.items():
        if tags.get("amenity") in wanted:
            yield f"way/{osm_id}", tags, _area_geometry("way", osm_id, nodes, ways, relations)
    for osm_id, (_members, tags) in relations.items():
        if tags.get("amenity") in wanted:
            yield f"relation/{osm_id}", tags, _area_geometry("relation", osm_id, nodes, ways, relations)


def _schools(
    nodes: Mapping[int, RawNode], ways: Mapping[int, RawWay], relations: Mapping[int, RawRelation]
) -> tuple[list[OsmSchool], list[OsmExcluded], int]:
    excluded: list[OsmExcluded] = []
    areas: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for ref, tags, geom in _school_features(nodes, ways, relations):
        name = tags.get("name") or tags.get("name:zh") or None
        klass = classify_school(name, tags)
        if klass.excluded is not None:
            excluded.append(OsmExcluded(ref=ref, name=name, reason=klass.excluded))
            continue
        if geom is None:
            logger.warning("school %s (%s) has no usable geometry; skipped", ref, name)
            continue
        record: dict[str, Any] = {
            "ref": ref,
            "name": name,
            "levels": set(klass.levels),
            "flags": list(klass.flags),
        }
        record.update({"geometry": geom, "tags": dict(tags), "merged": []})
        (points if isinstance(geom, Point) else areas).append(record)

    merged = 0
    point_only: list[dict[str, Any]] = []
    for pt in points:
        target = _matching_area(pt, areas)
        if target is None:
            pt["flags"].append("point_only")
            point_only.append(pt)
            continue
        merged += 1
        target["merged"].append(pt["ref"])
        target["levels"] |= pt["levels"]
        if target["name"] is None:
            target["name"] = pt["name"]
        for key, value in pt["tags"].items():
            target["tags"].setdefault(key, value)
    schools = []
    for rec in areas + point_only:
        flags = [f for f in rec["flags"] if f != "level_unknown" or not rec["levels"]]
        schools.append(
            OsmSchool(
                ref=rec["ref"],
                name=rec["name"],
                levels=frozenset(rec["levels"]),
                flags=tuple(dict.fromkeys(flags)),
                geometry=rec["geometry"],
                merged_refs=tuple(rec["merged"]),
                tags=rec["tags"],
            )
        )
    return schools, excluded, merged


def _same_school(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    key_a, key_b = normalise_school_name(a), normalise_school_name(b)
    return bool(key_a and key_b) and (key_a in key_b or key_b in key_a)


def _matching_area(pt: dict[str, Any], areas: list[dict[str, Any]]) -> dict[str, Any] | None:
    point: Point = pt["geometry"]
    margin = 0.002  # degrees, > 60 m at any latitude below 80°
    best: tuple[float, dict[str, Any]] | None = None
    for area in areas:
        minx, miny, maxx, maxy = area["geometry"].bounds
        if not (minx - margin <= point.x <= maxx + margin and miny - margin <= point.y <= maxy + margin):
            continue
        dist = geodesic_distance_m(point, area["geometry"])
        if dist > MERGE_DISTANCE_M:
            continue
        unnamed_inside = dist == 0.0 and (not pt["name"] or not area["name"])
        if (unnamed_inside or _same_school(pt["name"], area["name"])) and (best is None or dist < best[0]):
            best = (dist, area)
    return best[1] if best else None


# --- gates -------------------------------------------------------------------------------------------


def _gates(nodes: Mapping[int, RawNode], schools: list[OsmSchool]) -> list[OsmGate]:
    campuses = [(s, s.geometry.boundary) for s in schools if not isinstance(s.geometry, Point)]
    margin = 0.0005  # degrees, > 15 m
    gates = []
    for osm_id, (lon, lat, tags) in nodes.items():
        if not ("entrance" in tags or tags.get("barrier") == "gate" or "door" in tags):
            continue
        point = Point(lon, lat)
        best: tuple[float, OsmSchool] | None = None
        for school, outline in campuses:
            minx, miny, maxx, maxy = outline.bounds
            if not (minx - margin <= lon <= maxx + margin and miny - margin <= lat <= maxy + margin):
                continue
            dist = geodesic_distance_m(point, outline)
            if dist <= GATE_DISTANCE_M and (best is None or dist < best[0]):
                best = (dist, school)
        if best is None:
            continue
        name = tags.get("name") or tags.get("name:zh") or None
        gates.append(
            OsmGate(
                ref=f"node/{osm_id}",
                name=name,
                kind=gate_kind(name, tags),
                point=point,
                school_ref=best[1].ref,
                distance_m=best[0],
            )
        )
    return gates


# --- premises and assets -----------------------------------------------------------------------------


def _premises(nodes: Mapping[int, RawNode], ways: Mapping[int, RawWay], mapping: CategoryMapping) -> list[OsmPremises]:
    out = []
    for osm_id, (lon, lat, tags) in nodes.items():
        if not tags:
            continue
        name = tags.get("name") or tags.get("name:zh") or None
        categories = mapping.classify(tags, name)
        if categories:
            out.append(OsmPremises(f"node/{osm_id}", name, categories, Point(lon, lat), None, dict(tags)))
    for osm_id, (refs, tags) in ways.items():
        if not tags or not _is_closed(refs):
            continue
        name = tags.get("name") or tags.get("name:zh") or None
        categories = mapping.classify(tags, name)
        if not categories:
            continue
        area = _way_polygon(refs, nodes)
        if area is None:
            continue
        footprint = area if isinstance(area, Polygon) else max(area.geoms, key=lambda p: p.area)
        out.append(OsmPremises(f"way/{osm_id}", name, categories, _inner_point(area), footprint, dict(tags)))
    return out


def _category_counts(premises: list[OsmPremises]) -> Counter[str]:
    return Counter(cat for p in premises for cat in p.categories)


def _assets(
    nodes: Mapping[int, RawNode], ways: Mapping[int, RawWay], relations: Mapping[int, RawRelation]
) -> list[OsmAsset]:
    out = []
    for osm_id, (lon, lat, tags) in nodes.items():
        if tags.get("amenity") == "police":
            out.append(OsmAsset(f"node/{osm_id}", "police", _name(tags), Point(lon, lat)))
    for osm_id, (refs, tags) in ways.items():
        if not tags:
            continue
        ref = f"way/{osm_id}"
        if tags.get("natural") == "water" or tags.get("waterway") == "riverbank":
            area = _way_polygon(refs, nodes)
            if area is not None:
                out.append(OsmAsset(ref, "water", _name(tags), area))
        elif tags.get("waterway") in WATERWAY_LINES:
            coords = _way_coords(refs, nodes)
            if coords and len(coords) >= 2:
                out.append(OsmAsset(ref, "waterway", _name(tags), LineString(coords)))
        if tags.get("amenity") == "police":
            area = _way_polygon(refs, nodes)
            if area is not None:
                out.append(OsmAsset(ref, "police", _name(tags), _inner_point(area)))
    for osm_id, (members, tags) in relations.items():
        is_water = tags.get("natural") == "water" or tags.get("waterway") == "riverbank"
        if not (is_water or tags.get("amenity") == "police") or tags.get("type") != "multipolygon":
            continue
        area = _relation_polygon(members, ways, nodes)
        if area is None:
            continue
        ref = f"relation/{osm_id}"
        if is_water:
            out.append(OsmAsset(ref, "water", _name(tags), area))
        else:
            out.append(OsmAsset(ref, "police", _name(tags), _inner_point(area)))
    return out


def _name(tags: Mapping[str, str]) -> str | None:
    return tags.get("name") or tags.get("name:zh") or None


# --- street network ----------------------------------------------------------------------------------


def is_walkable(tags: Mapping[str, str]) -> bool:
    """Whether a way with these tags belongs to the pedestrian network.

    Walkable ``highway=*`` values only; never ``foot=no``, ``access=private|no`` unless
    ``foot=yes|designated|permissive``, ``area=yes`` squares, or proposed/construction ways.
    """
    highway = tags.get("highway")
    if highway not in WALKABLE_HIGHWAYS:
        return False
    foot = tags.get("foot")
    if foot == "no":
        return False
    if tags.get("access") in _NO_ACCESS and foot not in _FOOT_ALLOWED:
        return False
    if tags.get("area") == "yes":
        return False
    return not any(k in tags for k in ("construction", "proposed", "disused:highway", "abandoned:highway"))


def _edges(nodes: Mapping[int, RawNode], ways: Mapping[int, RawWay]) -> list[OsmEdge]:
    walkable: list[tuple[int, list[int], Mapping[str, str]]] = []
    use: Counter[int] = Counter()
    for osm_id, (refs, tags) in ways.items():
        if not is_walkable(tags):
            continue
        clean = [r for i, r in enumerate(refs) if i == 0 or r != refs[i - 1]]
        if len(clean) < 2:
            continue
        walkable.append((osm_id, clean, tags))
        use.update(clean)
    pieces: list[tuple[int, list[int], Mapping[str, str]]] = []
    for osm_id, refs, tags in walkable:
        current: list[int] = []
        for index, ref in enumerate(refs):
            if ref not in nodes:  # a node cut off by the extract's edge: the way breaks there
                if len(current) >= 2:
                    pieces.append((osm_id, current, tags))
                current = []
                continue
            current.append(ref)
            last = index == len(refs) - 1
            if len(current) >= 2 and (use[ref] > 1 or last):
                pieces.append((osm_id, current, tags))
                current = [ref]
        if len(current) >= 2:
            pieces.append((osm_id, current, tags))
    if not pieces:
        return []
    xy = [np.array([(nodes[r][0], nodes[r][1]) for r in refs]) for _, refs, _ in pieces]
    starts = np.concatenate([a[:-1] for a in xy])
    ends = np.concatenate([a[1:] for a in xy])
    seg = np.asarray(GEOD.inv(starts[:, 0], starts[:, 1], ends[:, 0], ends[:, 1])[2])
    offsets = np.cumsum([0] + [len(a) - 1 for a in xy[:-1]])
    lengths = np.add.reduceat(seg, offsets)
    return [
        OsmEdge(
            u=refs[0],
            v=refs[-1],
            geometry=LineString(coords),
            length_m=float(length),
            highway=tags["highway"],
            name=_name(tags),
            way_ref=f"way/{osm_id}",
        )
        for (osm_id, refs, tags), coords, length in zip(pieces, xy, lengths, strict=True)
    ]
