"""Guard posts (护学岗) and patrols over the stored street network.

* :class:`StreetGraph` — the street network as a graph of the stored edges (``u``, ``v``, line),
  undirected, with geodesic (WGS84 ellipsoid) edge lengths; points meet it at the nearest **node** of
  its largest connected component, the straight offset being walked at the same speed. Every route it
  returns is a chain of node ids joined by stored edges.
* :func:`plan_guard_posts` — fixed posts (定点值守) at every in-use gate at arrival and at dismissal:
  window = [time − 15 min, time + 15 min]; each post must be manned from the window's start. The
  assignment is **greedy**: posts in order of window start, each taken by the free unit that reaches it
  in time with the shortest travel (ties: the unit listed first). A unit stays at its post to the
  window's end and may then move on to a later post (e.g. another gate for dismissal). Posts no unit
  reaches in time are listed for volunteer cover (群防群治). Weekends and public holidays (the State
  Council calendar, with its working weekends 调休) have no posts.
* :func:`plan_patrols` — routes through every stop (premises with open findings), balanced between
  units: the unit with the least work so far takes its nearest remaining stop (network distance), then
  each route is improved with 2-opt on network distances; dwell and arrival times per stop.

Pure: shapely, numpy and scipy in, dataclasses out; no database, no HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import chinese_calendar
import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from shapely import STRtree
from shapely.geometry import LineString

from geo.errors import GeometryError, InvalidInput
from geo.measure import GEOD, LocalMetricFrame

__all__ = [
    "WINDOW_MIN",
    "Duty",
    "GatePost",
    "GuardPlan",
    "PatrolPlan",
    "PatrolStop",
    "Route",
    "RouteStop",
    "StreetGraph",
    "Uncovered",
    "Unit",
    "is_school_day",
    "plan_guard_posts",
    "plan_patrols",
]

WINDOW_MIN = 15
"""A post's window runs from this many minutes before the arrival (dismissal) time to as many after."""

_CHUNK = 64  # Dijkstra sources per call (keeps the K x N distance block small)


# --------------------------------------------------------------------------------------------------
# the street graph


class StreetGraph:
    """The stored street network as an undirected graph with geodesic edge lengths.

    Build it with :meth:`from_edges`.
    """

    def __init__(self, node_ids: np.ndarray, node_xy: np.ndarray, u: np.ndarray, v: np.ndarray, lines: list) -> None:
        self.node_ids = node_ids
        self.node_xy = node_xy
        self._u, self._v, self._lines = u, v, lines
        coords, idx = shapely.get_coordinates(np.array(lines, dtype=object), return_index=True)
        same = idx[1:] == idx[:-1]
        _, _, seg = GEOD.inv(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])
        self.lengths = np.bincount(idx[1:][same], weights=np.asarray(seg)[same], minlength=len(lines))
        n = len(node_ids)
        keep = u != v
        # the shortest of parallel edges, both directions
        best: dict[tuple[int, int], int] = {}
        for e in np.flatnonzero(keep):
            key = (min(u[e], v[e]), max(u[e], v[e]))
            if key not in best or self.lengths[e] < self.lengths[best[key]]:
                best[key] = int(e)
        self._edge_of = best
        es = np.array(sorted(best.values()), dtype=np.int64)
        rows = np.concatenate([u[es], v[es]])
        cols = np.concatenate([v[es], u[es]])
        w = np.maximum(np.concatenate([self.lengths[es], self.lengths[es]]), 1e-6)  # 0 would mean "no arc"
        self.matrix = csr_matrix((w, (rows, cols)), shape=(n, n))
        _, labels = connected_components(self.matrix, directed=False)
        main = np.bincount(labels).argmax()
        self._main = np.flatnonzero(labels == main)
        lo, hi = node_xy.min(axis=0), node_xy.max(axis=0)
        self._frame = LocalMetricFrame((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2)
        self._tree = STRtree(shapely.points(self._frame.project(node_xy[self._main])))
        self._index = {int(nid): i for i, nid in enumerate(node_ids)}

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[int, int, LineString]]) -> StreetGraph:
        """Build the graph from ``(u, v, line)`` edges (lines in WGS84 running from ``u`` to ``v``).

        Raises
        ------
        GeometryError
            When there is no edge, or an edge is not a LineString.
        """
        us, vs, lines = [], [], []
        for i, (u, v, line) in enumerate(edges):
            if not isinstance(line, LineString) or line.is_empty:
                msg = f"street edge {i} ({u}→{v}) must be a non-empty LineString; got {line!r}"
                raise GeometryError(msg, message_zh=f"第 {i} 条街道边须为非空 LineString", row=i + 1, value=repr(line))
            us.append(int(u))
            vs.append(int(v))
            lines.append(line)
        if not lines:
            msg = "there are no street edges here: import streets (OSM extract or demo) first"
            raise GeometryError(msg, message_zh="此处没有街道数据：请先导入街道（OSM 或演示城市）", field="streets")
        node_ids, inv = np.unique(np.array(us + vs, dtype=np.int64), return_inverse=True)
        starts = np.array([line.coords[0] for line in lines])
        ends = np.array([line.coords[-1] for line in lines])
        node_xy = np.full((len(node_ids), 2), np.nan)
        ne = len(lines)
        node_xy[inv[ne:][::-1]] = ends[::-1]
        node_xy[inv[:ne][::-1]] = starts[::-1]
        return cls(node_ids, node_xy, inv[:ne].astype(np.int64), inv[ne:].astype(np.int64), lines)

    @property
    def node_count(self) -> int:
        return len(self.node_ids)

    def snap(self, lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node of the main component for each ``(lon, lat)``: (node index, geodesic offset m)."""
        lonlat = np.asarray(lonlat, dtype=float).reshape(-1, 2)
        if len(lonlat) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        pts = shapely.points(self._frame.project(lonlat))
        (src, hit), _ = self._tree.query_nearest(pts, return_distance=True, all_matches=False)
        node = np.empty(len(lonlat), dtype=np.int64)
        node[src] = self._main[hit]
        xy = self.node_xy[node]
        _, _, off = GEOD.inv(lonlat[:, 0], lonlat[:, 1], xy[:, 0], xy[:, 1])
        return node, np.asarray(off, dtype=float)

    def distances(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Network distances (m) from each source node index to each target node index; ``inf`` if none."""
        sources = np.asarray(sources, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        out = np.full((len(sources), len(targets)), np.inf)
        uniq, inv = np.unique(sources, return_inverse=True)
        for k in range(0, len(uniq), _CHUNK):
            block = dijkstra(self.matrix, directed=False, indices=uniq[k : k + _CHUNK])
            block = np.atleast_2d(block)[:, targets]
            for j, row in enumerate(block):
                out[inv == k + j] = row
        return out

    def path(self, source: int, target: int) -> list[int]:
        """Node indices of a shortest path from ``source`` to ``target`` (both included)."""
        if source == target:
            return [int(source)]
        _, pred = dijkstra(self.matrix, directed=False, indices=int(source), return_predecessors=True)
        if pred[target] < 0:
            msg = f"node {self.node_ids[target]} cannot be reached from node {self.node_ids[source]}"
            raise InvalidInput(msg, message_zh="两节点之间没有路径")
        hops = [int(target)]
        while hops[-1] != source:
            hops.append(int(pred[hops[-1]]))
        return hops[::-1]

    def has_edge(self, a_id: int, b_id: int) -> bool:
        """A stored edge joins the nodes with these ids."""
        a, b = self._index.get(int(a_id)), self._index.get(int(b_id))
        return a is not None and b is not None and (min(a, b), max(a, b)) in self._edge_of

    def path_coords(self, nodes: Sequence[int]) -> list[tuple[float, float]]:
        """The lon/lat vertices along the edges of a node path (edge geometry, oriented)."""
        coords: list[tuple[float, float]] = [tuple(self.node_xy[nodes[0]])] if nodes else []
        for a, b in zip(nodes[:-1], nodes[1:], strict=True):
            e = self._edge_of[(min(a, b), max(a, b))]
            pts = list(self._lines[e].coords)
            if self._u[e] != a:
                pts = pts[::-1]
            coords.extend(tuple(p) for p in pts[1:])
        return coords


def _straight(a: np.ndarray, b: np.ndarray, via_node_m: float) -> float:
    """Two points meeting the network at the same node: the shorter of straight and via that node."""
    return min(float(GEOD.inv(a[0], a[1], b[0], b[1])[2]), float(via_node_m))


def _check_speed(speed_kmh: float) -> float:
    if not (isinstance(speed_kmh, (int, float)) and 0.5 <= speed_kmh <= 120):
        msg = f"speed_kmh must be between 0.5 and 120 km/h; got {speed_kmh!r}"
        raise InvalidInput(msg, message_zh=f"速度须在 0.5 至 120 公里/小时之间：{speed_kmh!r}", field="speed_kmh")
    return float(speed_kmh) * 1000.0 / 60.0  # metres per minute


def _minutes(t: dt.time) -> float:
    return t.hour * 60 + t.minute + t.second / 60


def _clock(minutes: float) -> str:
    m = int(np.floor(minutes + 1e-9))
    return f"{m // 60:02d}:{m % 60:02d}"


# --------------------------------------------------------------------------------------------------
# guard posts


@dataclass(frozen=True)
class Unit:
    """A guard or patrol unit and where it starts (WGS84)."""

    id: str
    name: str
    lon: float
    lat: float
    available_from: dt.time | None = None


@dataclass(frozen=True)
class GatePost:
    """An in-use gate and its school's arrival and dismissal times."""

    gate_id: int
    gate_name: str | None
    school_id: int
    school_name: str
    lon: float
    lat: float
    arrival: dt.time | None
    dismissal: dt.time | None


@dataclass(frozen=True)
class Post:
    gate: GatePost
    session: Literal["arrival", "dismissal"]
    start_min: float
    end_min: float

    @property
    def window(self) -> tuple[str, str]:
        return _clock(self.start_min), _clock(self.end_min)


@dataclass(frozen=True)
class Duty:
    """One unit at one post: where it comes from, when it leaves and arrives, how far it travels."""

    post: Post
    unit: Unit
    from_gate: int | None  # None: from the unit's start
    travel_m: float
    leave_min: float
    arrive_min: float

    @property
    def slack_min(self) -> float:
        return self.post.start_min - self.arrive_min


@dataclass(frozen=True)
class Uncovered:
    """A post no unit reaches in time: for volunteer cover (群防群治)."""

    post: Post
    reason: Literal["late", "unreachable"]
    best_unit: Unit | None
    best_arrive_min: float | None


@dataclass(frozen=True)
class GuardPlan:
    day: dt.date
    school_day: bool
    calendar: str  # why (not) a school day
    duties: list[Duty] = field(default_factory=list)
    uncovered: list[Uncovered] = field(default_factory=list)
    method: str = "greedy"


def is_school_day(day: dt.date) -> tuple[bool, str]:
    """Whether schools hold classes on ``day`` by the State Council calendar (weekends, holidays, 调休).

    Outside the years ``chinese_calendar`` knows, weekdays count as school days (said in the reason).
    """
    try:
        workday = chinese_calendar.is_workday(day)
        holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        workday = day.weekday() < 5
        return workday, "weekday (calendar year not known)" if workday else "weekend (calendar year not known)"
    if workday:
        return True, "adjusted working day (调休)" if day.weekday() >= 5 else "working day"
    if holiday and name:
        return False, f"public holiday ({name})"
    return False, "weekend"


def _posts(gates: Sequence[GatePost]) -> list[Post]:
    posts = []
    for g in gates:
        for session, t in (("arrival", g.arrival), ("dismissal", g.dismissal)):
            if t is not None:
                m = _minutes(t)
                posts.append(Post(g, session, m - WINDOW_MIN, m + WINDOW_MIN))  # type: ignore[arg-type]
    return sorted(posts, key=lambda p: (p.start_min, p.gate.school_id, p.gate.gate_id, p.session))


def plan_guard_posts(
    graph: StreetGraph | None,
    units: Sequence[Unit],
    gates: Sequence[GatePost],
    *,
    day: dt.date,
    speed_kmh: float,
    shift_start: dt.time = dt.time(6, 30),
) -> GuardPlan:
    """Assign units to the arrival and dismissal posts of ``gates`` on ``day`` (greedy, see the module).

    Parameters
    ----------
    graph
        The street network (``None`` only when there is no post to plan).
    units
        The units on duty; a unit without ``available_from`` is available from ``shift_start``.
    gates
        The in-use gates with their schools' times; a gate whose school has no arrival (dismissal)
        time has no arrival (dismissal) post.
    day
        The day; weekends and holidays have no posts (an empty plan that says why).
    speed_kmh
        Travel speed (walking about 5, driving in town about 25).
    """
    per_min = _check_speed(speed_kmh)
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        msg = f"unit ids must be unique; got {ids}"
        raise InvalidInput(msg, message_zh=f"单位编号不得重复：{ids}", field="units")
    school_day, why = is_school_day(day)
    if not school_day:
        return GuardPlan(day, False, why)
    posts = _posts(gates)
    if not posts:
        return GuardPlan(day, True, why)
    if graph is None:
        msg = "guard posts need the street network; none was given"
        raise GeometryError(msg, message_zh="规划护学岗需要街道路网", field="streets")
    nu = len(units)
    # places: unit starts 0..nu-1, then gates
    lonlat = np.array([[u.lon, u.lat] for u in units] + [[g.lon, g.lat] for g in gates], dtype=float).reshape(-1, 2)
    node, off = graph.snap(lonlat)
    gate_place = {g.gate_id: nu + i for i, g in enumerate(gates)}
    net = graph.distances(node, node[nu:]) if nu else np.zeros((0, len(gates)))  # place -> gate
    # from a gate to another gate: rows nu.. of net

    def travel(place: int, gate_id: int) -> float:
        j = gate_place[gate_id] - nu
        if node[place] == node[nu + j]:  # both meet the network at the same node: walk straight
            return _straight(lonlat[place], lonlat[nu + j], off[place] + off[nu + j])
        return float(off[place] + net[place, j] + off[nu + j])

    where = list(range(nu))  # current place of each unit
    free = [_minutes(u.available_from or shift_start) for u in units]
    from_gate: list[int | None] = [None] * nu
    plan = GuardPlan(day, True, why)
    for post in posts:
        best: tuple[float, int] | None = None
        late: tuple[float, int] | None = None
        for k in range(nu):
            d = travel(where[k], post.gate.gate_id)
            if not np.isfinite(d):
                continue
            arrive = free[k] + d / per_min
            if arrive <= post.start_min + 1e-9:
                if best is None or d < best[0]:
                    best = (d, k)
            elif late is None or arrive < late[0]:
                late = (arrive, k)
        if best is None:
            reason = "late" if late is not None else "unreachable"
            plan.uncovered.append(
                Uncovered(post, reason, units[late[1]] if late else None, late[0] if late else None)  # type: ignore[arg-type]
            )
            continue
        d, k = best
        leave = post.start_min - d / per_min  # leave as late as still arrives at the window's start
        plan.duties.append(Duty(post, units[k], from_gate[k], d, leave, post.start_min))
        where[k] = gate_place[post.gate.gate_id]
        free[k] = post.end_min
        from_gate[k] = post.gate.gate_id
    return plan


# --------------------------------------------------------------------------------------------------
# patrols


@dataclass(frozen=True)
class PatrolStop:
    """A place a patrol must visit (a premises with open findings)."""

    id: str
    name: str
    lon: float
    lat: float
    note: str = ""


@dataclass(frozen=True)
class RouteStop:
    stop: PatrolStop
    arrive_min: float
    leave_min: float
    leg_m: float  # travel from the previous stop (or the start)


@dataclass(frozen=True)
class Route:
    unit: Unit
    stops: list[RouteStop]
    node_ids: list[int]  # the graph nodes along the route, consecutive ones joined by a stored edge
    coords: list[tuple[float, float]]  # lon/lat: start, then along the edges
    distance_m: float
    start_min: float
    end_min: float

    @property
    def duration_min(self) -> float:
        return self.end_min - self.start_min


@dataclass(frozen=True)
class PatrolPlan:
    routes: list[Route]
    unreached: list[PatrolStop]
    dwell_min: float
    speed_kmh: float
    method: str = "balanced greedy nearest-neighbour + 2-opt (network distances)"

    @property
    def balance(self) -> float:
        """Longest route duration over the shortest (1.0 is perfectly balanced; routes with stops)."""
        d = [r.duration_min for r in self.routes if r.stops]
        return max(d) / min(d) if d and min(d) > 0 else 1.0


def _two_opt(seq: list[int], dist: np.ndarray) -> list[int]:
    """Improve an open path ``seq`` (``seq[0]`` fixed) by segment reversals until none helps."""
    best = list(seq)
    n = len(best)
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b = best[i - 1], best[i]
                c = best[j]
                before = dist[a, b] + (dist[c, best[j + 1]] if j + 1 < n else 0.0)
                after = dist[a, c] + (dist[b, best[j + 1]] if j + 1 < n else 0.0)
                if after + 1e-6 < before:
                    best[i : j + 1] = best[i : j + 1][::-1]
                    improved = True
    return best


def plan_patrols(
    graph: StreetGraph,
    units: Sequence[Unit],
    stops: Sequence[PatrolStop],
    *,
    dwell_min: float,
    speed_kmh: float,
    start: dt.time = dt.time(9, 0),
) -> PatrolPlan:
    """Routes through every stop, balanced between ``units`` (see the module for the method).

    Parameters
    ----------
    dwell_min
        Minutes spent at each stop.
    speed_kmh
        Travel speed.
    start
        When every unit sets off (a unit's ``available_from`` overrides it).
    """
    per_min = _check_speed(speed_kmh)
    if not units:
        msg = "give at least one unit"
        raise InvalidInput(msg, message_zh="至少需要一个巡逻单位", field="units")
    if not (0 <= dwell_min <= 240):
        msg = f"dwell_min must be between 0 and 240; got {dwell_min!r}"
        raise InvalidInput(msg, message_zh=f"停留时间须在 0 至 240 分钟之间：{dwell_min!r}", field="dwell_min")
    nu = len(units)
    lonlat = np.array([[u.lon, u.lat] for u in units] + [[s.lon, s.lat] for s in stops], dtype=float).reshape(-1, 2)
    node, off = graph.snap(lonlat)
    net = graph.distances(node, node)
    dist = off[:, None] + net + off[None, :]
    a, b = np.nonzero(node[:, None] == node[None, :])  # same snap node: walk straight if shorter
    _, _, direct = GEOD.inv(lonlat[a, 0], lonlat[a, 1], lonlat[b, 0], lonlat[b, 1])
    dist[a, b] = np.minimum(dist[a, b], direct)
    np.fill_diagonal(dist, 0.0)
    reachable = [nu + i for i in range(len(stops)) if np.isfinite(dist[:nu, nu + i]).any()]
    unreached = [stops[i - nu] for i in range(nu, nu + len(stops)) if i not in set(reachable)]

    # balanced greedy: the unit with the least work so far takes its nearest remaining stop
    start_min = [_minutes(u.available_from or start) for u in units]
    load = list(start_min)
    seqs = [[k] for k in range(nu)]
    left = set(reachable)
    while left:
        order = sorted(range(nu), key=lambda k: (load[k], k))
        for k in order:
            cand = [s for s in left if np.isfinite(dist[seqs[k][-1], s])]
            if cand:
                s = min(cand, key=lambda s: (dist[seqs[k][-1], s], s))
                load[k] += dist[seqs[k][-1], s] / per_min + dwell_min
                seqs[k].append(s)
                left.discard(s)
                break
    routes = []
    for k, unit in enumerate(units):
        seq = _two_opt(seqs[k], dist)
        t = start_min[k]
        total = 0.0
        rstops: list[RouteStop] = []
        nodes: list[int] = [int(node[seq[0]])]
        for a, b in zip(seq[:-1], seq[1:], strict=True):
            leg = float(dist[a, b])
            total += leg
            t += leg / per_min
            rstops.append(RouteStop(stops[b - nu], t, t + dwell_min, leg))
            t += dwell_min
            nodes.extend(graph.path(int(node[a]), int(node[b]))[1:])
        coords = [(unit.lon, unit.lat), *graph.path_coords(nodes)]
        node_ids = [int(graph.node_ids[n]) for n in nodes]
        routes.append(Route(unit, rstops, node_ids, coords, total, start_min[k], t))
    return PatrolPlan(routes, unreached, float(dwell_min), float(speed_kmh))


def clock(minutes: float) -> str:
    """``HH:MM`` of minutes since midnight (rounded down: a time to be there by)."""
    return _clock(minutes)
