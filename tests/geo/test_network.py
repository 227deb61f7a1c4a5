"""Tests for geo/network.py: walking distances along a pedestrian network.

Expected walking distances are worked out by hand from street lengths built with ``Geod.fwd`` plus the
straight snap offsets; the real Nanjing network is cross-checked against networkx and the geodesic
straight line.
"""

from __future__ import annotations

import gzip
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, Point

from geo.errors import CoordinateError, GeometryError, InvalidInput
from geo.network import WalkingNetwork

GEOD = Geod(ellps="WGS84")
MM = 1e-3
A = (118.7800, 32.0400)  # Nanjing


def _fwd(p: tuple[float, float], az: float, dist: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(p[0], p[1], az, dist)
    return (float(lon), float(lat))


def _inv(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def _off_street(p: tuple[float, float], q: tuple[float, float], along: float, side: float, offset: float):
    """The point ``offset`` metres to the side (+90 or −90) of the geodesic p→q, ``along`` metres from p.

    Returns the point and its foot on the street.
    """
    az = GEOD.inv(p[0], p[1], q[0], q[1])[0]
    lon, lat, baz = GEOD.fwd(p[0], p[1], az, along)
    foot = (float(lon), float(lat))
    return _fwd(foot, baz + 180 + side, offset), foot


# The hand-built town (all lengths by Geod.fwd):
#
#        D ---100--- E
#        |           |          X ---- Y   (a separate component 2 km east)
#       100         100
#        |           |
#        C --~100--- F
#        |
#       200
#        |
#  A ---150---+---150--- B      (A–B has a middle vertex; a 2nd, longer A–B edge detours 80 m south)
B = _fwd(A, 90, 300)
MID_AB = _fwd(A, 90, 150)
C = _fwd(B, 0, 200)
D = _fwd(C, 0, 100)
E = _fwd(D, 90, 100)
F = _fwd(E, 180, 100)
S1 = _fwd(A, 180, 80)
S2 = _fwd(S1, 90, 300)
X = _fwd(B, 90, 2_000)
Y = _fwd(X, 90, 120)
LEN_CF = _inv(C, F)
LEN_DETOUR = 80 + _inv(S1, S2) + _inv(S2, B)


@pytest.fixture(scope="module")
def town() -> WalkingNetwork:
    return WalkingNetwork.from_edges(
        [
            (1, 2, LineString([A, MID_AB, B])),
            (2, 3, LineString([B, C])),
            (3, 4, LineString([C, D])),
            (4, 5, LineString([D, E])),
            (5, 6, LineString([E, F])),
            (6, 3, LineString([F, C])),
            (1, 2, LineString([A, S1, S2, B])),  # parallel, longer
            (10, 11, LineString([X, Y])),
        ]
    )


def test_counts_and_geodesic_lengths(town: WalkingNetwork) -> None:
    assert town.edge_count == 8
    assert town.node_count == 8
    expected = 300 + 200 + 100 + 100 + 100 + LEN_CF + LEN_DETOUR + 120
    assert town.total_length_m == pytest.approx(expected, abs=MM)


def test_snap_goes_to_the_nearest_edge_not_node(town: WalkingNetwork) -> None:
    p, foot = _off_street(A, B, 120, -90, 10)  # 10 m north of A–B, 120 m from A: nodes are 120+ m away
    snap = town.snap(Point(p))
    assert snap.edge == (1, 2, 0)
    assert snap.along_m == pytest.approx(120, abs=MM)
    assert snap.offset_m == pytest.approx(10, abs=MM)
    assert _inv((snap.point.x, snap.point.y), foot) < MM


def test_snap_onto_the_parallel_detour(town: WalkingNetwork) -> None:
    p, _ = _off_street(S1, S2, 100, 90, 6)  # 6 m south of the detour's long leg
    snap = town.snap(Point(p))
    assert snap.edge == (1, 2, 1)
    assert snap.along_m == pytest.approx(80 + 100, abs=MM)
    assert snap.offset_m == pytest.approx(6, abs=MM)


def test_walk_from_the_detour_continues_along_it(town: WalkingNetwork) -> None:
    p, _ = _off_street(S1, S2, 100, 90, 6)  # on the detour, 180 m from A along it
    shop, _ = _off_street(B, C, 50, 90, 15)
    m = town.distance(Point(p), Point(shop))
    assert m is not None
    # on to B along the detour (LEN_DETOUR − 180 ≈ 280 m) beats back to A and along A–B (180 + 300)
    assert m.distance_m == pytest.approx(6 + (LEN_DETOUR - 180) + 50 + 15, abs=MM)
    assert min(_inv(S2, c) for c in m.path.coords) < MM


def test_l_shaped_walk_by_hand(town: WalkingNetwork) -> None:
    gate, _ = _off_street(A, B, 100, -90, 20)  # 20 m north of A–B, 100 m from A
    shop, _ = _off_street(B, C, 50, 90, 15)  # 15 m east of B–C, 50 m from B
    m = town.distance(Point(gate), Point(shop))
    assert m is not None
    assert m.method == "walking"
    assert m.distance_m == pytest.approx(20 + 200 + 50 + 15, abs=MM)
    assert m.from_point.equals(Point(gate)) and m.to_point.equals(Point(shop))
    # the path starts at the gate, turns the corner at B and ends at the shop; it is as long as the walk
    assert m.path is not None
    assert m.path.coords[0] == pytest.approx(gate) and m.path.coords[-1] == pytest.approx(shop)
    assert min(_inv(B, c) for c in m.path.coords) < MM
    assert min(_inv(MID_AB, c) for c in m.path.coords) < MM  # the middle vertex of A–B is walked past
    assert GEOD.geometry_length(m.path) == pytest.approx(m.distance_m, abs=MM)


def test_loop_takes_the_shorter_way_round(town: WalkingNetwork) -> None:
    gate, _ = _off_street(A, B, 100, -90, 20)
    near_d, _ = _off_street(D, E, 30, -90, 5)  # on D–E, 30 m from D: via C–D
    near_f, _ = _off_street(E, F, 90, 90, 4)  # on E–F, 10 m from F: via C–F
    m1 = town.distance(Point(gate), Point(near_d))
    m2 = town.distance(Point(gate), Point(near_f))
    assert m1 is not None and m2 is not None
    assert m1.distance_m == pytest.approx(20 + 200 + 200 + 100 + 30 + 5, abs=MM)  # A–B, B–C, C–D, D–E
    assert m2.distance_m == pytest.approx(20 + 200 + 200 + LEN_CF + 10 + 4, abs=MM)  # A–B, B–C, C–F, F–E
    assert min(_inv(D, c) for c in m1.path.coords) < MM
    assert min(_inv(F, c) for c in m2.path.coords) < MM


def test_site_and_gate_on_the_same_edge(town: WalkingNetwork) -> None:
    gate, _ = _off_street(A, B, 100, -90, 20)
    shop, _ = _off_street(A, B, 180, 90, 7)  # other side of the street, 80 m further, past the vertex
    m = town.distance(Point(gate), Point(shop))
    assert m is not None
    assert m.distance_m == pytest.approx(20 + 80 + 7, abs=MM)
    assert min(_inv(MID_AB, c) for c in m.path.coords) < MM
    assert GEOD.geometry_length(m.path) == pytest.approx(m.distance_m, abs=MM)
    dist, src = town.distances_from_sources([Point(gate)], [Point(shop)], cutoff_m=500)
    assert dist[0] == pytest.approx(m.distance_m, abs=1e-9) and src[0] == 0


def test_same_edge_on_a_loop_edge() -> None:
    """A closed footway (u == v): two points on it walk the shorter way round."""
    ring = [A, _fwd(A, 90, 100), _fwd(_fwd(A, 90, 100), 0, 100), _fwd(A, 0, 100), A]
    net = WalkingNetwork.from_edges([(7, 7, LineString(ring))])
    p, _ = _off_street(ring[0], ring[1], 10, 90, 3)  # 10 m along from the start
    q, _ = _off_street(ring[3], ring[4], 90, -90, 2)  # 10 m before the end, i.e. 10 m the other way
    m = net.distance(Point(p), Point(q))
    assert m is not None
    assert m.distance_m == pytest.approx(3 + 10 + 10 + 2, abs=MM)


def test_unreachable_components(town: WalkingNetwork) -> None:
    gate, _ = _off_street(A, B, 100, -90, 20)
    far_shop, _ = _off_street(X, Y, 60, 90, 3)
    assert town.distance(Point(gate), Point(far_shop)) is None
    dist, src = town.distances_from_sources([Point(gate)], [Point(far_shop)], cutoff_m=np.inf)
    assert dist[0] == np.inf and src[0] == -1
    on_xy, _ = _off_street(X, Y, 10, -90, 1)
    dist, src = town.distances_from_sources([Point(gate), Point(on_xy)], [Point(far_shop)], cutoff_m=np.inf)
    assert dist[0] == pytest.approx(1 + 50 + 3, abs=MM) and src[0] == 1


def test_one_search_from_the_site_walks_every_origin_as_a_search_per_origin(town: WalkingNetwork) -> None:
    shop, _ = _off_street(C, D, 40, 90, 4)  # 4 m off C–D, 40 m north of C
    origins = [
        _off_street(A, B, 120, -90, 10)[0],  # along A–B, then up B–C
        _off_street(D, E, 30, 90, 2)[0],  # round the D–E–F block or back through D
        _off_street(S1, S2, 100, 90, 6)[0],  # on the detour
        _off_street(X, Y, 60, 90, 3)[0],  # the separate component: no walk
        shop,  # at the shop itself
    ]
    batch = town.distances_to([Point(p) for p in origins], Point(shop))
    assert len(batch) == len(origins)
    for p, got in zip(origins, batch, strict=True):
        one = town.distance(Point(p), Point(shop))
        if one is None:
            assert got is None
            continue
        assert got is not None and got.distance_m == pytest.approx(one.distance_m, abs=1e-6)
        assert (got.from_point.x, got.from_point.y) == p and (got.to_point.x, got.to_point.y) == shop
        # the path runs from the origin to the shop and is as long as the walk
        assert got.path.coords[0] == p and got.path.coords[-1] == shop
        assert GEOD.geometry_length(got.path) == pytest.approx(got.distance_m, abs=MM)
    assert batch[3] is None
    # hand-computed: 10 m up to A–B, 300 − 120 along it, B–C, 40 m up C–D, 4 m across
    assert batch[0].distance_m == pytest.approx(10 + 180 + 200 + 40 + 4, abs=MM)
    assert town.distances_to([], Point(shop)) == []


def test_set_wise_picks_the_nearest_source_and_respects_the_cutoff(town: WalkingNetwork) -> None:
    gate_1, _ = _off_street(A, B, 100, -90, 20)
    gate_2, _ = _off_street(D, E, 50, -90, 5)
    shops = [_off_street(B, C, 50, 90, 15)[0], _off_street(C, D, 90, 90, 1)[0], A]
    dist, src = town.distances_from_sources([Point(gate_1), Point(gate_2)], [Point(s) for s in shops], cutoff_m=200)
    # shop 0: gate_1 20 + 200 + 50 + 15 = 285 m, gate_2 5 + 50 + 100 + 150 + 15 = 320 m → both beyond 200
    # shop 1: gate_2 5 + 50 + 10 + 1 = 66 m; shop 2 (node A): gate_1 20 + 100 = 120 m
    assert dist[0] == np.inf and src[0] == -1
    assert dist[1] == pytest.approx(66, abs=MM) and src[1] == 1
    assert dist[2] == pytest.approx(120, abs=MM) and src[2] == 0
    dist, src = town.distances_from_sources([Point(gate_1), Point(gate_2)], [Point(shops[0])], cutoff_m=1e4)
    assert dist[0] == pytest.approx(285, abs=MM) and src[0] == 0


def test_empty_inputs(town: WalkingNetwork) -> None:
    dist, src = town.distances_from_sources([], [Point(A)], cutoff_m=100)
    assert dist.tolist() == [np.inf] and src.tolist() == [-1]
    dist, src = town.distances_from_sources([Point(A)], [], cutoff_m=100)
    assert dist.shape == (0,) and src.shape == (0,)


# ---------------------------------------------------------------------------------------------------
# errors


def test_bad_networks_are_rejected() -> None:
    with pytest.raises(GeometryError, match="at least one edge"):
        WalkingNetwork.from_edges([])
    with pytest.raises(GeometryError, match="node 2") as info:
        WalkingNetwork.from_edges([(1, 2, LineString([A, B])), (2, 3, LineString([C, D]))])
    assert "节点 2" in info.value.message_zh
    with pytest.raises(CoordinateError, match="118.78"):
        WalkingNetwork.from_edges([(1, 2, LineString([(A[1], A[0]), B]))])
    with pytest.raises(InvalidInput, match="'a'"):
        WalkingNetwork.from_edges([("a", 2, LineString([A, B]))])  # type: ignore[list-item]


def test_bad_queries_are_rejected(town: WalkingNetwork) -> None:
    with pytest.raises(InvalidInput, match="-5"):
        town.distances_from_sources([Point(A)], [Point(B)], cutoff_m=-5)
    with pytest.raises(CoordinateError, match="nan"):
        town.distances_from_sources([Point(A)], [Point(float("nan"), 1.0)], cutoff_m=5)
    with pytest.raises(GeometryError):
        town.snap(Point())


# ---------------------------------------------------------------------------------------------------
# set-wise == pairwise on a grid


def _grid(n: int, *, lon0: float, lat0: float, step: float = 0.001, drop: float = 0.0, seed: int = 0):
    """An n×n street grid (lon/lat steps of ``step`` degrees), some streets dropped, some bent."""
    rng = np.random.default_rng(seed)
    edges = []
    for i in range(n):
        for j in range(n):
            x, y = lon0 + i * step, lat0 + j * step * 0.9
            if i + 1 < n and rng.random() >= drop:
                bend = (x + step / 2, y + rng.uniform(-1, 1) * step * 0.1)
                edges.append((i * n + j, (i + 1) * n + j, LineString([(x, y), bend, (x + step, y)])))
            if j + 1 < n and rng.random() >= drop:
                edges.append((i * n + j, i * n + j + 1, LineString([(x, y), (x, y + step * 0.9)])))
    return edges


def test_set_wise_equals_pairwise_on_a_grid() -> None:
    lon0, lat0 = 106.55, 29.56  # Chongqing
    n = 12
    net = WalkingNetwork.from_edges(_grid(n, lon0=lon0, lat0=lat0, drop=0.15, seed=3))
    rng = np.random.default_rng(11)
    span = (n - 1) * 0.001
    srcs = [Point(lon0 + rng.uniform(0, span), lat0 + rng.uniform(0, span * 0.9)) for _ in range(15)]
    tgts = [Point(lon0 + rng.uniform(0, span), lat0 + rng.uniform(0, span * 0.9)) for _ in range(40)]
    tgts.append(srcs[3])  # a target exactly at a source
    cutoff = 250.0
    dist, src = net.distances_from_sources(srcs, tgts, cutoff_m=cutoff)
    pair = np.array([[(m.distance_m if (m := net.distance(s, t)) is not None else np.inf) for s in srcs] for t in tgts])
    best = pair.min(axis=1)
    expected = np.where(best <= cutoff, best, np.inf)
    assert np.isfinite(expected).sum() > 15 and np.isinf(expected).sum() > 3  # both cases exercised
    np.testing.assert_allclose(dist, expected, rtol=0, atol=1e-6)
    found = np.isfinite(dist)
    assert (src[~found] == -1).all()
    np.testing.assert_allclose(pair[np.flatnonzero(found), src[found]], dist[found], rtol=0, atol=1e-6)
    # by definition (offsets + network) a point walks to its street and back to reach itself
    assert dist[-1] == pytest.approx(2 * net.snap(srcs[3]).offset_m, abs=1e-9) and src[-1] == 3


@settings(max_examples=25, deadline=None)
@given(
    fx=st.lists(st.floats(0, 1), min_size=4, max_size=4),
    fy=st.lists(st.floats(0, 1), min_size=4, max_size=4),
)
def test_walking_obeys_the_triangle_inequality(fx: list[float], fy: list[float]) -> None:
    """walk(a, c) ≤ walk(a, b) + snap offsets back and forth via b; walk ≥ straight line."""
    net = _GRID_NET
    span = 7 * 0.001
    a, b, c, _ = (Point(106.55 + x * span, 29.56 + y * span * 0.9) for x, y in zip(fx, fy, strict=True))
    ab, bc, ac = net.distance(a, b), net.distance(b, c), net.distance(a, c)
    assert ab is not None and bc is not None and ac is not None
    offset_b = net.snap(b).offset_m
    assert ac.distance_m <= ab.distance_m + bc.distance_m - 2 * offset_b + 1e-6
    assert ac.distance_m >= _inv((a.x, a.y), (c.x, c.y)) - 1e-6


_GRID_NET = WalkingNetwork.from_edges(_grid(8, lon0=106.55, lat0=29.56, seed=5))


def test_fifty_thousand_edges_two_thousand_sources_twenty_thousand_targets() -> None:
    n = 159  # 2 × 159 × 158 = 50,244 edges
    lon0, lat0, step = 106.55, 29.56, 0.001
    edges = []
    for i in range(n):
        for j in range(n):
            x, y = lon0 + i * step, lat0 + j * step * 0.9
            if i + 1 < n:
                edges.append((i * n + j, (i + 1) * n + j, LineString([(x, y), (x + step, y)])))
            if j + 1 < n:
                edges.append((i * n + j, i * n + j + 1, LineString([(x, y), (x, y + step * 0.9)])))
    rng = np.random.default_rng(1)
    span = (n - 1) * step
    sources = np.column_stack([lon0 + rng.uniform(0, span, 2_000), lat0 + rng.uniform(0, span * 0.9, 2_000)])
    targets = np.column_stack([lon0 + rng.uniform(0, span, 20_000), lat0 + rng.uniform(0, span * 0.9, 20_000)])
    t0 = time.perf_counter()
    net = WalkingNetwork.from_edges(edges)
    src_pts = [Point(p) for p in sources]
    tgt_pts = [Point(p) for p in targets]
    dist, src = net.distances_from_sources(src_pts, tgt_pts, cutoff_m=500)
    elapsed = time.perf_counter() - t0
    assert net.edge_count == 50_244
    # measured ≈ 1.5 s for build + snapping + one Dijkstra on the 2-core box; generous bound for load
    assert elapsed < 15, f"took {elapsed:.1f} s"
    # spot-check a few against pairwise searches
    for k in rng.choice(len(targets), 5, replace=False):
        if src[k] >= 0:
            m = net.distance(src_pts[src[k]], tgt_pts[k])
            assert m is not None and m.distance_m == pytest.approx(dist[k], abs=1e-6)
        assert dist[k] >= _inv(tuple(sources[max(src[k], 0)]), tuple(targets[k])) - 1e-6 or src[k] < 0


# ---------------------------------------------------------------------------------------------------
# the real Nanjing network

_WALKABLE = {
    "trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link", "tertiary",
    "tertiary_link", "unclassified", "residential", "living_street", "service", "pedestrian",
    "footway", "path", "steps", "track", "cycleway",
}  # fmt: skip


def _parse_walkable(path: Path) -> list[tuple[int, int, LineString]]:
    """Minimal OSM XML → walkable edges, split at nodes shared by two or more ways (test-only)."""
    with gzip.open(path, "rb") as fh:
        root = ET.parse(fh).getroot()
    coords = {int(n.get("id")): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    ways = []
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if tags.get("highway") not in _WALKABLE or tags.get("foot") == "no" or tags.get("access") == "private":
            continue
        refs = [int(nd.get("ref")) for nd in way.iter("nd") if int(nd.get("ref")) in coords]
        if len(refs) >= 2:
            ways.append(refs)
    uses = Counter(r for refs in ways for r in set(refs))
    edges = []
    for refs in ways:
        start = 0
        for k in range(1, len(refs)):
            if k == len(refs) - 1 or uses[refs[k]] >= 2:
                piece = refs[start : k + 1]
                edges.append((piece[0], piece[-1], LineString([coords[r] for r in piece])))
                start = k
    return edges


@pytest.fixture(scope="module")
def nanjing(nanjing_osm: Path) -> tuple[WalkingNetwork, list[tuple[int, int, LineString]]]:
    edges = _parse_walkable(nanjing_osm)
    return WalkingNetwork.from_edges(edges), edges


def test_nanjing_network_loads(nanjing) -> None:
    net, edges = nanjing
    assert net.edge_count == len(edges)
    assert 300 < net.node_count < 2_000 and 50_000 < net.total_length_m < 150_000
    independent = sum(GEOD.geometry_length(line) for _, _, line in edges)
    assert net.total_length_m == pytest.approx(independent, abs=1e-3)


def test_nanjing_node_to_node_matches_networkx(nanjing) -> None:
    """Between two street nodes (no offsets) the walk equals networkx's shortest path."""
    net, edges = nanjing
    g = nx.Graph()
    for u, v, line in edges:
        w = GEOD.geometry_length(line)
        if u != v and (not g.has_edge(u, v) or g[u][v]["weight"] > w):
            g.add_edge(u, v, weight=w)
    where = {u: line.coords[0] for u, _, line in edges} | {v: line.coords[-1] for _, v, line in edges}
    giant = sorted(max(nx.connected_components(g), key=len))
    rng = np.random.default_rng(2021)
    for _ in range(12):
        u, v = (int(x) for x in rng.choice(giant, 2, replace=False))
        m = net.distance(Point(where[u]), Point(where[v]))
        assert m is not None
        assert m.distance_m == pytest.approx(nx.dijkstra_path_length(g, u, v), abs=MM)


def test_nanjing_walking_is_never_shorter_than_straight(nanjing) -> None:
    net, edges = nanjing
    rng = np.random.default_rng(612)
    every = np.concatenate([np.asarray(line.coords) for _, _, line in edges])
    lo, hi = every.min(axis=0), every.max(axis=0)
    pts = [Point(rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1])) for _ in range(120)]
    sources, targets = pts[:20], pts[20:]
    dist, src = net.distances_from_sources(sources, targets, cutoff_m=np.inf)
    reached = np.flatnonzero(src >= 0)
    assert len(reached) > 60
    for k in reached:
        s, t = sources[src[k]], targets[k]
        straight = _inv((s.x, s.y), (t.x, t.y))
        assert dist[k] >= straight - 1e-6
        # and set-wise equals pairwise for the chosen source
        m = net.distance(s, t)
        assert m is not None and m.distance_m == pytest.approx(dist[k], abs=1e-6)
        assert m.distance_m >= straight - 1e-6
