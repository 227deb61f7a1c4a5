"""Walking distances for every premises within 300 m of any in-use gate, computed set-wise.

Usage:  ./run bench walking [--db safezone_bench] [--within 300]

One multi-source shortest-path search over the stored street network (sources: the gates' snap points;
targets: the premises' snap points) instead of one search per pair. Prints the sizes and the time of each
step, and — as the baseline in the same run — the time of per-pair searches on a sample, extrapolated.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import psycopg
import shapely
from sqlalchemy.engine import make_url

from geo.network import WalkingNetwork
from storage.database import resolve_url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="safezone_bench")
    ap.add_argument("--within", type=float, default=300.0)
    ap.add_argument("--sample", type=int, default=200)
    args = ap.parse_args()
    dsn = make_url(resolve_url()).set(database=args.db, drivername="postgresql").render_as_string(hide_password=False)
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        edges = conn.execute("SELECT u, v, ST_AsBinary(geom) FROM street_edges").fetchall()
        gates = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM gates WHERE in_use").fetchall()
        premises = conn.execute(
            """SELECT ST_X(p.geom), ST_Y(p.geom) FROM premises p
               WHERE EXISTS (SELECT 1 FROM gates g WHERE g.in_use
                             AND ST_DWithin(g.geom::geography, p.geom::geography, %s))""",
            (args.within,),
        ).fetchall()
    t_load = time.perf_counter() - t0
    print(f"{len(edges)} street edges, {len(gates)} in-use gates, {len(premises)} premises within {args.within:.0f} m")
    t0 = time.perf_counter()
    net = WalkingNetwork.from_edges((u, v, shapely.from_wkb(bytes(g))) for u, v, g in edges)
    t_build = time.perf_counter() - t0
    src = np.array(gates, dtype=float)
    dst = np.array(premises, dtype=float)
    t0 = time.perf_counter()
    dist, which = net.distances_from_sources(src, dst, cutoff_m=args.within * 3)
    t_multi = time.perf_counter() - t0
    reached = np.isfinite(dist)
    print(f"load {t_load:.1f} s, build network {t_build:.1f} s, set-wise walking distances {t_multi:.1f} s "
          f"({reached.sum()} reached; median {np.median(dist[reached]):.0f} m)")  # fmt: skip
    rng = np.random.default_rng(1)
    sample = rng.choice(len(dst), size=min(args.sample, len(dst)), replace=False)
    t0 = time.perf_counter()
    for i in sample:
        j = which[i] if which[i] >= 0 else 0
        net.distance(shapely.Point(src[j]), shapely.Point(dst[i]))
    per_pair = (time.perf_counter() - t0) / len(sample)
    print(
        f"baseline: one search per (premises, nearest gate) pair {per_pair * 1000:.1f} ms each → "
        f"{per_pair * len(dst):.0f} s for all premises (and that is only the nearest gate, not all gates)"
    )
    print(f"set-wise is {per_pair * len(dst) / t_multi:.0f}× faster")


if __name__ == "__main__":
    main()
