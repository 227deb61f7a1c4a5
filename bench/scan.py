"""Bench: the set-based city-wide scan against (a) shapely STRtree and (b) a plain PostGIS geography join.

    ./run bench scan                                   # 500 schools, 50,000 premises (< 2 min)
    ./run bench scan --schools 10000 --premises 1000000
    ./run bench scan --db safezone_bench                # an existing database (e.g. the 1M demo city)
    ./run bench scan --db safezone_bench --rounds 5     # scan, (a), (b) five times in turn; medians

Builds the demo city (``service.demo.load_demo``) in a database of its own (``safezone_bench_<size>``, kept
between runs: the load is idempotent), then, side by side in one run:

* the scan (``service.scanning.run_scan``): candidates + exact geodesic distances + truth table + stored
  findings + school warnings;
* (a) an in-memory ``shapely.STRtree.query(..., predicate="dwithin")`` of the premises points against the
  campus geometries, projected into a local transverse Mercator (``geo.measure.LocalMetricFrame``) —
  candidate pairs only, no exact distance, no rules;
* (b) a plain ``ST_DWithin(p.geom::geography, c.geom::geography, D)`` join using the GiST indexes on the
  geography expressions (``ix_premises_geom_geog``, ``ix_campuses_geom_geog``), with its EXPLAIN.

D for (a) and (b) is the scan's own pass-1 search bound (largest rule distance + accuracies + the
point-only campus radius), so all three look at the same neighbourhoods. With ``--rounds N`` the three run N
times in turn and the medians are printed: on a shared machine the speed of all three drifts from minute to
minute, and each round's ratio is measured within the same minute. Each scan is kept, as scans are.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.engine import make_url

from geo.measure import LocalMetricFrame
from geo.rules import RuleRegistry
from service.cli import prepare_database
from service.demo import load_demo
from service.scanning import run_scan
from service.settings import Settings
from storage.database import make_engine, make_sessionmaker, session_scope

log = logging.getLogger("bench.scan")


def _load(factory, schools: int, premises: int, seed: int) -> None:  # noqa: ANN001
    with session_scope(factory) as s:
        have = s.execute(text("SELECT count(*) FROM schools")).scalar_one()
    if have:
        print(f"demo city already loaded ({have} schools)")
        return
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        load_demo(factory, schools=schools, premises=premises, seed=seed, workdir=Path(tmp), progress=print)
    print(f"demo city loaded in {time.perf_counter() - t0:.1f} s")


def _strtree(factory, bound: float) -> tuple[float, float, int]:  # noqa: ANN001
    with session_scope(factory) as s:
        prem = s.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM premises")).all()
        camp = s.execute(text("SELECT ST_AsBinary(geom) FROM campuses")).scalars().all()
    pts = np.array(prem, dtype=float)
    frame = LocalMetricFrame(float(pts[:, 0].mean()), float(pts[:, 1].mean()))
    t0 = time.perf_counter()
    xy = shapely.points(frame.project(pts))
    campuses = np.array([frame.project_geometry(g) for g in shapely.from_wkb(np.array(camp, dtype=object))])
    t_proj = time.perf_counter() - t0
    t1 = time.perf_counter()
    tree = shapely.STRtree(xy)
    pairs = tree.query(campuses, predicate="dwithin", distance=bound)
    t_query = time.perf_counter() - t1
    return t_proj, t_query, pairs.shape[1]


_PLAIN = """
SELECT count(*) FROM campuses c
JOIN premises p ON ST_DWithin(p.geom::geography, c.geom::geography, :d)
"""


def _plain(factory, bound: float) -> tuple[float, int, str]:  # noqa: ANN001
    with session_scope(factory) as s:
        plan = s.execute(text("EXPLAIN " + _PLAIN), {"d": bound}).scalars().all()
        t0 = time.perf_counter()
        n = s.execute(text(_PLAIN), {"d": bound}).scalar_one()
        return time.perf_counter() - t0, n, "\n".join(plan)


def _round(factory, registry: RuleRegistry, *, explain: bool) -> tuple[float, float, float]:  # noqa: ANN001
    """One scan, then (a) and (b) over its search bound; returns the scan's seconds and its two ratios."""
    t0 = time.perf_counter()
    result = run_scan(factory, registry, settings=Settings(), actor="bench")
    t_scan = time.perf_counter() - t0
    bound = result["bound_m"]
    print(
        f"scan {result['scan_id']}: {t_scan:.2f} s  ({result['candidates']} candidates within {bound} m, "
        f"{result['total']} findings {result['by_status']}, steps {result['timings']})"
    )

    t_proj, t_query, n_tree = _strtree(factory, bound)
    print(f"(a) shapely STRtree dwithin {bound} m: query {t_query:.2f} s (+ projection {t_proj:.2f} s), {n_tree} pairs")  # noqa: E501

    t_plain, n_plain, plan = _plain(factory, bound)
    print(f"(b) plain ST_DWithin(geography) join: {t_plain:.2f} s, {n_plain} pairs")
    if explain:
        print("    EXPLAIN:\n" + "\n".join("      " + line for line in plan.splitlines()))

    print(
        f"ratios: scan / (a) STRtree query = {t_scan / t_query:.2f}  "
        f"(with projection {t_scan / (t_query + t_proj):.2f});  scan / (b) plain join = {t_scan / t_plain:.2f}"
    )
    return t_scan, t_scan / t_query, t_scan / t_plain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schools", type=int, default=500)
    ap.add_argument("--premises", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--db", help="use this existing database (its city as loaded) instead of building one")
    ap.add_argument("--rounds", type=int, default=1, help="run scan, (a), (b) this many times in turn; medians")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    url = prepare_database(db_name=args.db or f"safezone_bench_{args.schools}_{args.premises}")
    url = make_url(url).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=2, statement_timeout_ms=3_600_000)
    factory = make_sessionmaker(engine)
    _load(factory, args.schools, args.premises, args.seed)
    with session_scope(factory) as s:
        s.execute(text("ANALYZE"))
        sizes = text("SELECT (SELECT count(*) FROM premises), (SELECT count(*) FROM campuses)")
        n_prem, n_camp = s.execute(sizes).one()
    print(f"city: {n_camp} campuses, {n_prem} premises")

    registry = RuleRegistry.load()
    rounds: list[tuple[float, float, float]] = []
    for n in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {n} of {args.rounds}")
        rounds.append(_round(factory, registry, explain=n == 1))
    if args.rounds > 1:
        print("rounds (scan / (a) query, scan / (b)): " + ", ".join(f"{a:.2f} / {b:.2f}" for _, a, b in rounds))
        print(
            f"median over {args.rounds} rounds: scan {statistics.median(r[0] for r in rounds):.2f} s, "
            f"scan / (a) = {statistics.median(r[1] for r in rounds):.2f}, "
            f"scan / (b) = {statistics.median(r[2] for r in rounds):.2f}"
        )
    engine.dispose()


if __name__ == "__main__":
    main()
