"""Tests for geo/patrol.py on hand-built street graphs (lengths from ``Geod.fwd``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import LineString

from geo.errors import GeometryError, InvalidInput
from geo.patrol import (
    GatePost,
    PatrolStop,
    StreetGraph,
    Unit,
    _two_opt,
    is_school_day,
    plan_guard_posts,
    plan_patrols,
)

GEOD = Geod(ellps="WGS84")
ORIGIN = (118.78, 32.04)
MONDAY = dt.date(2025, 3, 3)
WALK = 6.0  # km/h = 100 m per minute


def _fwd(p: tuple[float, float], east: float = 0.0, north: float = 0.0) -> tuple[float, float]:
    lon, lat = p
    if east:
        lon, lat, _ = GEOD.fwd(lon, lat, 90.0 if east > 0 else 270.0, abs(east))
    if north:
        lon, lat, _ = GEOD.fwd(lon, lat, 0.0 if north > 0 else 180.0, abs(north))
    return float(lon), float(lat)


def _line_graph(n: int, step_m: float) -> tuple[StreetGraph, list[tuple[float, float]]]:
    """Nodes 0..n east of O, ``step_m`` apart, joined in a line."""
    pts = [_fwd(ORIGIN, east=i * step_m) for i in range(n + 1)]
    return StreetGraph.from_edges((i, i + 1, LineString([pts[i], pts[i + 1]])) for i in range(n)), pts


def _grid(nx: int, ny: int, step_m: float) -> tuple[StreetGraph, dict[tuple[int, int], tuple[float, float]]]:
    pts = {(i, j): _fwd(ORIGIN, east=i * step_m, north=j * step_m) for i in range(nx + 1) for j in range(ny + 1)}
    nid = {k: 1000 + k[0] * 100 + k[1] for k in pts}
    edges = []
    for (i, j), p in pts.items():
        if i < nx:
            edges.append((nid[(i, j)], nid[(i + 1, j)], LineString([p, pts[(i + 1, j)]])))
        if j < ny:
            edges.append((nid[(i, j)], nid[(i, j + 1)], LineString([p, pts[(i, j + 1)]])))
    return StreetGraph.from_edges(edges), pts


def _gate(gid: int, p: tuple[float, float], arrival: str = "07:45", dismissal: str | None = "16:30") -> GatePost:
    return GatePost(
        gid,
        f"门{gid}",
        gid // 10,
        f"学校{gid // 10}",
        p[0],
        p[1],
        dt.time.fromisoformat(arrival),
        dt.time.fromisoformat(dismissal) if dismissal else None,
    )


def test_network_distance_is_the_sum_of_geodesic_edge_lengths() -> None:
    graph, pts = _line_graph(5, 200.0)
    node, off = graph.snap(np.array([pts[0], pts[5]]))
    assert off.max() < 1e-6
    assert graph.distances(node[:1], node[1:])[0, 0] == pytest.approx(1000.0, abs=1e-3)
    assert [graph.node_ids[i] for i in graph.path(node[0], node[1])] == [0, 1, 2, 3, 4, 5]


def test_a_unit_reaches_the_gate_in_the_travel_time_the_distance_gives() -> None:
    graph, pts = _line_graph(10, 100.0)  # 1 km of street
    unit = Unit("U1", "一组", *pts[0], available_from=dt.time(7, 10))
    gate = _gate(10, pts[10], arrival="07:45")  # window 07:30–08:00: 20 min to cover 1 km at 100 m/min
    plan = plan_guard_posts(graph, [unit], [gate], day=MONDAY, speed_kmh=WALK)
    arrival = next(d for d in plan.duties if d.post.session == "arrival")
    assert arrival.travel_m == pytest.approx(1000.0, abs=0.01)
    assert arrival.arrive_min == 7 * 60 + 30  # on post at the window's start
    assert arrival.leave_min == pytest.approx(7 * 60 + 20, abs=1e-6)  # 10 minutes' walk
    assert arrival.post.window == ("07:30", "08:00")
    assert plan.uncovered == []


def test_a_gate_no_unit_reaches_before_its_window_goes_to_volunteers() -> None:
    graph, pts = _line_graph(30, 100.0)  # 3 km
    unit = Unit("U1", "一组", *pts[0], available_from=dt.time(7, 10))
    near = _gate(10, pts[5], arrival="07:45", dismissal=None)  # 500 m: 5 min
    far = _gate(20, pts[30], arrival="07:40", dismissal=None)  # window 07:25; 3 km takes 30 min → 07:40
    plan = plan_guard_posts(graph, [unit], [near, far], day=MONDAY, speed_kmh=WALK)
    assert [(d.post.gate.gate_id, d.unit.id) for d in plan.duties] == [(10, "U1")]
    [volunteer] = plan.uncovered
    assert volunteer.post.gate.gate_id == 20 and volunteer.reason == "late"
    assert volunteer.best_unit is not None and volunteer.best_unit.id == "U1"
    assert volunteer.best_arrive_min == pytest.approx(7 * 60 + 40, abs=1e-6)


def test_each_post_gets_the_nearest_unit_that_makes_it_and_units_move_on_for_dismissal() -> None:
    graph, pts = _line_graph(20, 100.0)
    west = Unit("W", "西组", *pts[0])
    east = Unit("E", "东组", *pts[20])
    g1 = _gate(10, pts[2], arrival="07:30", dismissal="16:00")
    g2 = _gate(20, pts[18], arrival="07:30", dismissal=None)
    g3 = _gate(30, pts[12], arrival="08:15", dismissal="16:30")
    plan = plan_guard_posts(graph, [west, east], [g1, g2, g3], day=MONDAY, speed_kmh=WALK)
    got = {(d.post.gate.gate_id, d.post.session): d.unit.id for d in plan.duties}
    assert got[(10, "arrival")] == "W" and got[(20, "arrival")] == "E"
    # window 08:00: both are free from 07:45; E is 600 m (6 min) away, W 1000 m: E, the shorter walk
    assert got[(30, "arrival")] == "E"
    # dismissal: W is still at gate 10 (no walk); at 16:15 W is busy to 16:15 and 10 min away, E is there
    assert got[(10, "dismissal")] == "W" and got[(30, "dismissal")] == "E"
    assert (20, "dismissal") not in got  # that school has no dismissal time: no post
    assert plan.uncovered == []
    # every duty starts at or before its window, and a unit is never at two posts at once
    for d in plan.duties:
        assert d.arrive_min <= d.post.start_min
    by_unit: dict[str, list] = {}
    for d in plan.duties:
        by_unit.setdefault(d.unit.id, []).append(d)
    for duties in by_unit.values():
        duties.sort(key=lambda d: d.post.start_min)
        for a, b in zip(duties[:-1], duties[1:], strict=True):
            assert b.leave_min >= a.post.end_min - 1e-6
            assert b.from_gate == a.post.gate.gate_id


def test_a_gate_off_the_network_is_unreachable_only_through_its_offset() -> None:
    graph, pts = _line_graph(4, 100.0)
    offside = _fwd(pts[4], north=300.0)  # 300 m from the nearest node, walked straight
    unit = Unit("U1", "一组", *pts[0], available_from=dt.time(7, 0))
    plan = plan_guard_posts(graph, [unit], [_gate(10, offside, "07:30", None)], day=MONDAY, speed_kmh=WALK)
    assert plan.duties[0].travel_m == pytest.approx(700.0, abs=0.5)


def test_weekends_and_holidays_have_no_posts_but_adjusted_workdays_do() -> None:
    graph, pts = _line_graph(2, 100.0)
    unit = Unit("U1", "一组", *pts[0])
    gate = _gate(10, pts[2])
    saturday = plan_guard_posts(graph, [unit], [gate], day=dt.date(2025, 3, 8), speed_kmh=WALK)
    assert not saturday.school_day and saturday.duties == [] and saturday.uncovered == []
    national_day = plan_guard_posts(graph, [unit], [gate], day=dt.date(2025, 10, 1), speed_kmh=WALK)
    assert not national_day.school_day and "National Day" in national_day.calendar
    assert is_school_day(dt.date(2025, 9, 28)) == (True, "adjusted working day (调休)")  # a working Sunday


def test_bad_inputs_are_named() -> None:
    graph, pts = _line_graph(2, 100.0)
    with pytest.raises(InvalidInput, match="speed_kmh"):
        plan_guard_posts(graph, [], [], day=MONDAY, speed_kmh=0)
    with pytest.raises(InvalidInput, match="unique"):
        plan_guard_posts(graph, [Unit("A", "a", *pts[0])] * 2, [], day=MONDAY, speed_kmh=5)
    with pytest.raises(GeometryError, match="no street edges"):
        StreetGraph.from_edges([])


def _assert_chain(graph: StreetGraph, node_ids: list[int]) -> None:
    for a, b in zip(node_ids[:-1], node_ids[1:], strict=True):
        assert graph.has_edge(a, b), (a, b)


def test_patrol_routes_visit_every_stop_along_stored_edges_balanced() -> None:
    graph, pts = _grid(6, 6, 100.0)
    rng = np.random.default_rng(3)
    cells = rng.choice(49, size=14, replace=False)
    stops = [
        PatrolStop(f"P{k}", f"场所{k}", *_fwd(pts[(int(c) // 7, int(c) % 7)], east=10.0)) for k, c in enumerate(cells)
    ]
    units = [Unit("A", "一组", *pts[(0, 0)]), Unit("B", "二组", *pts[(6, 6)])]
    plan = plan_patrols(graph, units, stops, dwell_min=5, speed_kmh=WALK, start=dt.time(9, 0))
    visited = [s.stop.id for r in plan.routes for s in r.stops]
    assert sorted(visited) == sorted(s.id for s in stops)  # every stop once
    assert plan.unreached == []
    for route in plan.routes:
        _assert_chain(graph, route.node_ids)
        # arrival times: start + travel at 100 m/min + 5 min dwell per earlier stop
        t = 9 * 60.0
        for rs in route.stops:
            t += rs.leg_m / 100.0
            assert rs.arrive_min == pytest.approx(t, abs=1e-6)
            t += 5
        assert route.end_min == pytest.approx(t, abs=1e-6)
        assert route.distance_m == pytest.approx(sum(rs.leg_m for rs in route.stops))
    counts = sorted(len(r.stops) for r in plan.routes)
    assert counts[0] >= 5  # both units work
    assert plan.balance < 1.6


def test_two_opt_undoes_a_zigzag_order() -> None:
    x = np.array([5.0, 6.0, 4.0, 8.0, 2.0])  # start at 5, then 6, 4, 8, 2: 1 + 2 + 4 + 6 = 13
    dist = np.abs(x[:, None] - x[None, :])
    better = _two_opt([0, 1, 2, 3, 4], dist)
    assert better[0] == 0 and sorted(better) == [0, 1, 2, 3, 4]
    assert sum(dist[a, b] for a, b in zip(better[:-1], better[1:], strict=True)) == 9.0


def test_a_route_starts_where_its_unit_is_and_follows_the_street() -> None:
    graph, pts = _line_graph(10, 100.0)
    stops = [PatrolStop(f"S{i}", "", *pts[i]) for i in (4, 6, 2, 8, 0, 10)]
    plan = plan_patrols(graph, [Unit("U", "u", *pts[5])], stops, dwell_min=0, speed_kmh=WALK)
    [route] = plan.routes
    assert route.distance_m == pytest.approx(1500.0, abs=0.1)  # one way to an end, then to the other
    assert route.node_ids[0] == 5
    _assert_chain(graph, route.node_ids)
