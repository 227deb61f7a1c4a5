"""Walking distances along a pedestrian street network.

The network is undirected (both directions walkable). Every edge is re-measured geodesically on the
WGS84 ellipsoid (osmnx's ``length`` is haversine on a sphere, 0.4 % off). A walking distance runs from
a point, straight to where it snaps onto the nearest **edge** (not node), along the network, and
straight from the other snap point to the other point (DESIGN.md, "Measurement").

Shortest paths run on :mod:`scipy.sparse.csgraph` with the snap points inserted as virtual nodes that
split their edges, so two points on the same edge, or on a loop, are handled like any other pair, and
many sources are searched in one multi-source Dijkstra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely import STRtree
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from geo.errors import GeometryError, InvalidInput
from geo.measure import GEOD, LocalMetricFrame, Measurement, _check_geometry, _check_lonlat

__all__ = ["Snap", "WalkingNetwork"]

# candidates whose projected distance is within this factor (+ _SNAP_ABS_M) of the nearest are
# re-measured geodesically before the nearest edge is chosen
_SNAP_REL = 1e-3
_SNAP_ABS_M = 0.05
# two line ends closer than this (degrees, about 1 cm) are the same node
_NODE_TOL_DEG = 1e-7


@dataclass(frozen=True)
class Snap:
    """Where a point meets the network.

    Parameters
    ----------
    edge
        ``(u, v, key)`` of the nearest edge; ``key`` numbers parallel edges between ``u`` and ``v`` in
        the order they were given (0 for the first).
    along_m
        Geodesic distance along the edge from ``u`` to the snapped point, metres.
    point
        The snapped point on the edge, WGS84.
    offset_m
        Geodesic distance from the original point to the snapped point, metres.
    """

    edge: tuple[int, int, int]
    along_m: float
    point: Point
    offset_m: float


class WalkingNetwork:
    """An undirected pedestrian network with geodesic edge lengths.

    Build it with :meth:`from_edges`.
    """

    def __init__(
        self,
        *,
        node_ids: np.ndarray,
        node_xy: np.ndarray,
        edge_u: np.ndarray,
        edge_v: np.ndarray,
        edge_key: np.ndarray,
        coords: np.ndarray,
        coord_start: np.ndarray,
        cum_m: np.ndarray,
    ) -> None:
        self._node_ids = node_ids  # (N,) the caller's ids; internal node i is node_ids[i]
        self._node_xy = node_xy  # (N, 2) lon/lat
        self._u = edge_u  # (E,) internal node index
        self._v = edge_v
        self._key = edge_key
        self._coords = coords  # (C, 2) lon/lat of all edge vertices, edge after edge
        self._start = coord_start  # (E + 1,) first vertex of edge e is coords[start[e]]
        self._cum = cum_m  # (C,) geodesic length from the edge's first vertex
        self._length = cum_m[coord_start[1:] - 1]  # (E,)

        lo, hi = coords.min(axis=0), coords.max(axis=0)
        self._frame = LocalMetricFrame.around((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2)
        xy = self._frame.project(coords)
        edge_of = np.repeat(np.arange(len(edge_u)), np.diff(coord_start))
        self._lines_p = shapely.linestrings(xy, indices=edge_of)
        self._tree = STRtree(self._lines_p)
        seg = np.hypot(*np.diff(xy, axis=0).T)
        seg[coord_start[1:-1] - 1] = 0.0  # no length between the last vertex of e and the first of e+1
        # one increasing array over all edges (1 m gap between edges) so one searchsorted finds a segment
        self._planar_global = np.concatenate([[0.0], np.cumsum(seg)]) + edge_of

        # the base graph: both directions, the shortest of parallel edges, no self-loops
        keep = edge_u != edge_v
        e_idx = np.flatnonzero(keep)
        rows = np.concatenate([edge_u[keep], edge_v[keep]])
        cols = np.concatenate([edge_v[keep], edge_u[keep]])
        lens = np.concatenate([self._length[keep], self._length[keep]])
        arc_edge = np.concatenate([e_idx, e_idx])
        s0 = np.concatenate([np.zeros(len(e_idx)), self._length[keep]])
        s1 = np.concatenate([self._length[keep], np.zeros(len(e_idx))])
        self._base_arcs = (rows, cols, lens, arc_edge, s0, s1)

    # -----------------------------------------------------------------------------------------------
    # construction

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[int, int, LineString]]) -> WalkingNetwork:
        """Build a network from ``(u, v, line)`` edges.

        Parameters
        ----------
        edges
            Node ids ``u`` and ``v`` (ints) and the edge's geometry in longitude/latitude, running from
            ``u`` to ``v``. Every edge is walkable both ways; parallel edges and loops are allowed.

        Returns
        -------
        WalkingNetwork

        Raises
        ------
        GeometryError
            For an edge that is not a valid ``LineString`` in WGS84, or a node id whose edges place it
            in two different positions; also for a network with no edges.
        """
        us, vs, lines = [], [], []
        for i, edge in enumerate(edges):
            try:
                u, v, line = edge
            except (TypeError, ValueError):
                msg = f"edge {i} must be a (u, v, LineString) tuple; got {edge!r}"
                raise InvalidInput(
                    msg,
                    message_zh=f"第 {i} 条边须为 (u, v, LineString) 三元组，实际为 {edge!r}",
                    row=i + 1,
                    value=repr(edge),
                ) from None
            if (
                isinstance(u, bool)
                or isinstance(v, bool)
                or not isinstance(u, (int, np.integer))
                or not isinstance(v, (int, np.integer))
            ):
                msg = f"edge {i}: node ids must be integers; got u={u!r}, v={v!r}"
                raise InvalidInput(
                    msg,
                    message_zh=f"第 {i} 条边：节点编号须为整数，实际为 u={u!r}, v={v!r}",
                    field="u/v",
                    row=i + 1,
                    value=f"{u!r}, {v!r}",
                )
            if not isinstance(line, BaseGeometry):
                _check_geometry(line, field=f"edges[{i}]", types=("LineString",))  # raises
            us.append(int(u))
            vs.append(int(v))
            lines.append(line)
        if not lines:
            msg = "a walking network needs at least one edge; got none"
            raise GeometryError(msg, message_zh="步行路网至少需要一条边，实际为空", field="edges")

        geoms = np.array(lines, dtype=object)
        coords, edge_of = shapely.get_coordinates(geoms, return_index=True)
        # every line checked at once; the first bad one raises its own error (as _check_geometry words it)
        bad = (shapely.get_type_id(geoms) != 1) | shapely.is_empty(geoms) | ~shapely.is_valid(geoms)
        bad_xy = ~np.isfinite(coords).all(axis=1) | (np.abs(coords[:, 0]) > 180) | (np.abs(coords[:, 1]) > 90)
        bad[edge_of[bad_xy]] = True
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _check_geometry(lines[i], field=f"edges[{i}]", types=("LineString",))
        n_edges = len(lines)
        counts = np.bincount(edge_of, minlength=n_edges)
        start = np.concatenate([[0], np.cumsum(counts)])

        # geodesic length of every segment, cumulated per edge
        _, _, seg = GEOD.inv(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])
        seg = np.concatenate([[0.0], seg])
        seg[start[1:-1]] = 0.0  # the first vertex of each edge starts again at 0
        cum = np.cumsum(seg)
        cum -= np.repeat(cum[start[:-1]], counts)

        node_ids, inv = np.unique(np.array(us + vs, dtype=np.int64), return_inverse=True)
        ends = np.concatenate([coords[start[:-1]], coords[start[1:] - 1]])
        node_xy = np.full((len(node_ids), 2), np.nan)
        node_xy[inv[::-1]] = ends[::-1]  # the first occurrence wins
        off = np.abs(node_xy[inv] - ends).max(axis=1) > _NODE_TOL_DEG
        if off.any():
            j = int(np.flatnonzero(off)[0])
            node = int(node_ids[inv[j]])
            here, there = tuple(ends[j]), tuple(node_xy[inv[j]])
            msg = (
                f"node {node} is at {there} in one edge and at {here} in edge {j % n_edges}: "
                "each line must run from its u node to its v node"
            )
            raise GeometryError(
                msg,
                message_zh=(
                    f"节点 {node} 在一条边中位于 {there}，在第 {j % n_edges} 条边中位于 {here}："
                    "每条线须从 u 节点画到 v 节点"
                ),
                field="edges",
                row=j % n_edges + 1,
                value=node,
            )

        u_idx, v_idx = inv[:n_edges], inv[n_edges:]
        pair = np.minimum(u_idx, v_idx) * len(node_ids) + np.maximum(u_idx, v_idx)
        key = np.zeros(n_edges, dtype=np.int64)
        order = np.argsort(pair, kind="stable")
        sorted_pair = pair[order]
        first = np.concatenate([[True], sorted_pair[1:] != sorted_pair[:-1]])
        group_start = np.maximum.accumulate(np.where(first, np.arange(n_edges), 0))
        key[order] = np.arange(n_edges) - group_start
        return cls(
            node_ids=node_ids,
            node_xy=node_xy,
            edge_u=u_idx,
            edge_v=v_idx,
            edge_key=key,
            coords=coords,
            coord_start=start,
            cum_m=cum,
        )

    # -----------------------------------------------------------------------------------------------
    # properties

    @property
    def edge_count(self) -> int:
        """Number of edges, parallel edges included."""
        return len(self._u)

    @property
    def node_count(self) -> int:
        """Number of distinct nodes."""
        return len(self._node_ids)

    @property
    def total_length_m(self) -> float:
        """Sum of the geodesic lengths of all edges, metres."""
        return float(self._length.sum())

    def __repr__(self) -> str:
        return f"WalkingNetwork(nodes={self.node_count}, edges={self.edge_count}, length={self.total_length_m:.0f} m)"

    # -----------------------------------------------------------------------------------------------
    # snapping

    def snap(self, point: Point) -> Snap:
        """Snap a point to the nearest point of the nearest edge.

        Parameters
        ----------
        point
            WGS84 point.

        Returns
        -------
        Snap
        """
        _check_geometry(point, field="point", types=("Point",))
        edge, along, snapped, offset = self._snap_many(np.array([[point.x, point.y]]))
        e = int(edge[0])
        key = (int(self._node_ids[self._u[e]]), int(self._node_ids[self._v[e]]), int(self._key[e]))
        return Snap(key, float(along[0]), Point(snapped[0]), float(offset[0]))

    def _snap_many(self, lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Edge index, geodesic along-distance, snapped lon/lat and geodesic offset for each point."""
        n = len(lonlat)
        pts = shapely.points(self._frame.project(lonlat))
        (near_in, _), near_d = self._tree.query_nearest(pts, return_distance=True, all_matches=False)
        d0 = np.empty(n)
        d0[near_in] = near_d
        cand_in, cand_e = self._tree.query(pts, predicate="dwithin", distance=d0 * (1 + _SNAP_REL) + _SNAP_ABS_M)

        lines = self._lines_p[cand_e]
        s_p = shapely.line_locate_point(lines, pts[cand_in])
        q_p = shapely.get_coordinates(shapely.line_interpolate_point(lines, s_p))
        q = self._frame.unproject(q_p)
        _, _, offset = GEOD.inv(lonlat[cand_in, 0], lonlat[cand_in, 1], q[:, 0], q[:, 1])

        # per point: the smallest geodesic offset, the lowest edge index on a tie
        order = np.lexsort((cand_e, offset, cand_in))
        first = np.concatenate([[True], cand_in[order][1:] != cand_in[order][:-1]])
        pick = order[first]
        edge, q, offset, s_p = cand_e[pick], q[pick], offset[pick], s_p[pick]

        # the segment holding the snapped point, then geodesic along-distance from its first vertex
        glob = self._planar_global[self._start[edge]] + s_p
        k = np.searchsorted(self._planar_global, glob, side="right") - 1
        k = np.clip(k, self._start[edge], self._start[edge + 1] - 2)
        vx = self._coords[k]
        _, _, part = GEOD.inv(vx[:, 0], vx[:, 1], q[:, 0], q[:, 1])
        along = np.clip(self._cum[k] + part, 0.0, self._length[edge])
        return edge, along, q, offset

    # -----------------------------------------------------------------------------------------------
    # distances

    def distance(self, a: Point, b: Point) -> Measurement | None:
        """Walking distance from ``a`` (the school side, e.g. a gate) to ``b`` (the premises).

        Parameters
        ----------
        a, b
            WGS84 points.

        Returns
        -------
        Measurement or None
            ``method="walking"``: the straight offset from ``a`` to its snap point, the shortest path
            along the network, and the straight offset from ``b``'s snap point to ``b``; ``path`` runs
            ``a → snap → … → snap → b``. ``None`` when the two snap points are in different components.
        """
        _check_geometry(a, field="a", types=("Point",))
        _check_geometry(b, field="b", types=("Point",))
        lonlat = np.array([[a.x, a.y], [b.x, b.y]])
        edge, along, snapped, offset = self._snap_many(lonlat)
        dist, src, pred, nodes, aug = self._solve(
            edge[:1], along[:1], offset[:1], edge[1:], along[1:], offset[1:], cutoff=np.inf, predecessors=True
        )
        if not np.isfinite(dist[0]) or pred is None:
            return None
        path = self._path_coords(pred, int(nodes[1]), aug, snapped, lonlat)
        return Measurement(
            float(dist[0]), from_point=Point(a.x, a.y), to_point=Point(b.x, b.y), method="walking", path=path
        )

    def distances_to(self, origins: Sequence[Point], b: Point) -> list[Measurement | None]:
        """:meth:`distance` from each of ``origins`` to ``b``, found in one search from ``b``.

        Streets are walkable both ways, so the walk from an origin to ``b`` is the walk from ``b`` to it,
        reversed: one shortest-path tree from ``b`` serves every gate of every campus near a site.

        Parameters
        ----------
        origins
            WGS84 points (the school side: gates, or the outline points nearest the site).
        b
            WGS84 point (the premises).

        Returns
        -------
        list of Measurement or None
            One per origin, as :meth:`distance` returns it (``path`` runs origin → … → ``b``).
        """
        _check_geometry(b, field="b", types=("Point",))
        pts = self._points_array(origins, field="origins")
        if len(pts) == 0:
            return []
        lonlat = np.concatenate([[[b.x, b.y]], pts])
        edge, along, snapped, offset = self._snap_many(lonlat)
        dist, _, pred, nodes, aug = self._solve(
            edge[:1], along[:1], offset[:1], edge[1:], along[1:], offset[1:], cutoff=np.inf, predecessors=True
        )
        out: list[Measurement | None] = []
        for i, (x, y) in enumerate(pts.tolist()):
            if not np.isfinite(dist[i]) or pred is None:
                out.append(None)
                continue
            back = self._path_coords(pred, int(nodes[1 + i]), aug, snapped, lonlat, target=1 + i)
            out.append(
                Measurement(
                    float(dist[i]),
                    from_point=Point(x, y),
                    to_point=Point(b.x, b.y),
                    method="walking",
                    path=LineString(back.coords[::-1]),
                )  # fmt: skip
            )
        return out

    def distances_from_sources(
        self, sources: Sequence[Point], targets: Sequence[Point], *, cutoff_m: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per target, the walking distance to the nearest source (one multi-source Dijkstra).

        Parameters
        ----------
        sources
            WGS84 points, e.g. every in-use gate of every campus.
        targets
            WGS84 points, e.g. premises.
        cutoff_m
            Walking distances above this are not searched for (the largest rule distance + margin).

        Returns
        -------
        distances : numpy.ndarray
            ``(len(targets),)`` the smallest walking distance to any source, metres; ``inf`` when none
            is within ``cutoff_m``.
        source_index : numpy.ndarray
            ``(len(targets),)`` the index in ``sources`` of that source; -1 when none.
        """
        if not (isinstance(cutoff_m, (int, float)) and cutoff_m >= 0):
            msg = f"cutoff_m must be a number >= 0 (inf allowed); got {cutoff_m!r}"
            raise InvalidInput(
                msg,
                message_zh=f"cutoff_m 须为不小于 0 的数（可为 inf），实际为 {cutoff_m!r}",
                field="cutoff_m",
                value=repr(cutoff_m),
            )
        src = self._points_array(sources, field="sources")
        tgt = self._points_array(targets, field="targets")
        if len(tgt) == 0 or len(src) == 0:
            return np.full(len(tgt), np.inf), np.full(len(tgt), -1, dtype=np.int64)
        edge, along, _, offset = self._snap_many(np.concatenate([src, tgt]))
        ns = len(src)
        dist, source_idx, _, _, _ = self._solve(
            edge[:ns], along[:ns], offset[:ns], edge[ns:], along[ns:], offset[ns:], cutoff=float(cutoff_m)
        )
        return dist, source_idx

    # -----------------------------------------------------------------------------------------------
    # internals

    @staticmethod
    def _points_array(points: Sequence[Point], *, field: str) -> np.ndarray:
        if isinstance(points, np.ndarray) and points.dtype != object:
            arr = np.asarray(points, dtype=float).reshape(-1, 2)
            _check_lonlat(arr, field=field)
            return arr
        out = np.empty((len(points), 2))
        for i, p in enumerate(points):
            _check_geometry(p, field=f"{field}[{i}]", types=("Point",))
            out[i] = p.x, p.y
        return out

    def _solve(
        self,
        s_edge: np.ndarray,
        s_along: np.ndarray,
        s_offset: np.ndarray,
        t_edge: np.ndarray,
        t_along: np.ndarray,
        t_offset: np.ndarray,
        *,
        cutoff: float,
        predecessors: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, dict]:
        """Multi-source Dijkstra from the sources' snap points (+ offsets) to the targets' snap points.

        Snap points become virtual nodes splitting their edge; every source gets a pendant node joined
        to its snap node by an arc as long as its offset, and the search starts from all pendants at 0.
        """
        n_nodes = len(self._node_ids)
        ns = len(s_edge)
        edge = np.concatenate([s_edge, t_edge])
        along = np.concatenate([s_along, t_along])
        length = self._length[edge]

        # a snap point at an end of its edge is that end node; others become virtual nodes, one per
        # distinct (edge, along)
        node = np.where(along <= 0.0, self._u[edge], np.where(along >= length, self._v[edge], -1))
        inner = np.flatnonzero(node < 0)
        pos, pos_first, pos_inv = np.unique(
            np.column_stack([edge[inner], along[inner]]), axis=0, return_index=True, return_inverse=True
        )
        pos_inv = pos_inv.reshape(-1)
        node[inner] = n_nodes + pos_inv
        n_virtual = len(pos)
        p_edge = pos[:, 0].astype(np.int64)
        p_along = pos[:, 1]
        p_node = n_nodes + np.arange(n_virtual)

        # chain arcs along every split edge: u → p1 → … → pk → v (pos is sorted by edge, then along)
        same_prev = np.concatenate([[False], p_edge[1:] == p_edge[:-1]])
        prev_node = np.where(same_prev, np.roll(p_node, 1), self._u[p_edge])
        prev_along = np.where(same_prev, np.roll(p_along, 1), 0.0)
        last = np.concatenate([p_edge[1:] != p_edge[:-1], [True]]) if n_virtual else np.zeros(0, bool)
        c_from = np.concatenate([prev_node, p_node[last]])
        c_to = np.concatenate([p_node, self._v[p_edge[last]]])
        c_s0 = np.concatenate([prev_along, p_along[last]])
        c_s1 = np.concatenate([p_along, self._length[p_edge[last]]])
        c_edge = np.concatenate([p_edge, p_edge[last]])

        pend = n_nodes + n_virtual + np.arange(ns)
        b_rows, b_cols, b_w, b_edge, b_s0, b_s1 = self._base_arcs
        rows = np.concatenate([b_rows, c_from, c_to, pend])
        cols = np.concatenate([b_cols, c_to, c_from, node[:ns]])
        w = np.concatenate([b_w, c_s1 - c_s0, c_s1 - c_s0, s_offset])
        arc_edge = np.concatenate([b_edge, c_edge, c_edge, np.full(ns, -1)])
        arc_s0 = np.concatenate([b_s0, c_s0, c_s1, np.zeros(ns)])
        arc_s1 = np.concatenate([b_s1, c_s1, c_s0, np.zeros(ns)])

        # keep the shortest of duplicate arcs (parallel edges, both halves of a split loop)
        n_all = n_nodes + n_virtual + ns
        arc_key = rows.astype(np.int64) * n_all + cols
        order = np.lexsort((w, arc_key))
        keep = order[np.concatenate([[True], arc_key[order][1:] != arc_key[order][:-1]])]
        rows, cols, w, arc_key = rows[keep], cols[keep], w[keep], arc_key[keep]
        graph = csr_matrix((w, (rows, cols)), shape=(n_all, n_all))

        limit = cutoff if np.isfinite(cutoff) else np.inf
        result = dijkstra(graph, directed=True, indices=pend, min_only=True, limit=limit, return_predecessors=True)
        dist_all, pred, origin = result
        t_node = node[ns:]
        dist = dist_all[t_node] + t_offset
        source_idx = np.where(np.isfinite(dist_all[t_node]), origin[t_node] - (n_nodes + n_virtual), -1)
        too_far = ~(dist <= cutoff)
        dist[too_far] = np.inf
        source_idx[too_far] = -1
        aug = {
            "arc_key": arc_key,
            "arc_edge": arc_edge[keep],
            "arc_s0": arc_s0[keep],
            "arc_s1": arc_s1[keep],
            "n_all": n_all,
            "n_real": n_nodes,
            "virtual_snap": inner[pos_first],  # for each virtual node, a snap that sits on it
        }
        return dist, source_idx.astype(np.int64), (pred if predecessors else None), node, aug

    def _path_coords(
        self, pred: np.ndarray, target_node: int, aug: dict, snapped: np.ndarray, lonlat: np.ndarray, *, target: int = 1
    ) -> LineString:
        """The walking path a → snap(a) → … → snap(b) → b from Dijkstra predecessors (a: snap 0, b: ``target``)."""
        hops = [target_node]
        while pred[hops[-1]] >= 0:
            hops.append(int(pred[hops[-1]]))
        hops.reverse()  # pendant of a, snap node of a, …, snap node of b
        coords = [lonlat[0], snapped[0]]
        for frm, to in zip(hops[1:-1], hops[2:], strict=True):
            j = int(np.searchsorted(aug["arc_key"], frm * aug["n_all"] + to))
            e, s0, s1 = int(aug["arc_edge"][j]), float(aug["arc_s0"][j]), float(aug["arc_s1"][j])
            cum = self._cum[self._start[e] : self._start[e + 1]]
            verts = self._coords[self._start[e] : self._start[e + 1]]
            lo, hi = min(s0, s1), max(s0, s1)
            mid = verts[(cum > lo) & (cum < hi)]
            coords.extend(mid if s0 <= s1 else mid[::-1])
            coords.append(self._node_coord(to, aug, snapped))
        coords.extend([snapped[target], lonlat[target]])
        pts = [tuple(c) for c in coords]
        dedup = [pts[0]] + [p for p, q in zip(pts[1:], pts[:-1], strict=True) if p != q]
        if len(dedup) < 2:
            dedup = [pts[0], pts[-1]]
        return LineString(dedup)

    def _node_coord(self, node: int, aug: dict, snapped: np.ndarray) -> np.ndarray:
        if node < aug["n_real"]:
            return self._node_xy[node]
        return snapped[aug["virtual_snap"][node - aug["n_real"]]]
