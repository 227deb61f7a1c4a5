"""Bench: vector tile latency (p50/p95) at zooms 12–16 on the demo city, beside a naive baseline.

    ./run bench tiles                      # the demo city: 500 schools, 50,000 premises
    ./run bench tiles --premises 1000000   # the same city topped up to a million premises
    ./run bench tiles --db safezone_bench  # an existing database as it is (not migrated, nothing added)
    ./run bench tiles --db safezone_bench --refresh-cost   # also time the premises grid's refresh

The demo city is loaded with ``service.demo.load_demo`` into ``safezone_bench_<schools>_<premises>``
(shared with ``bench/scan.py``, kept between runs). ``--premises`` above the loaded city's count clones
it into ``safezone_bench_tiles_<schools>_<premises>`` and adds synthetic premises in SQL — each a copy
of a random demo premises moved up to ~300 m — so they keep the city's clustering and categories —
then rebuilds ``premises_grid`` (rows added in SQL bypass the importers that keep it up to date).

For a fixed set of tiles (centred on random campuses, seed 7) at each zoom 12–16, it times:

* **ours** — ``storage.tiles.tile`` as the ``/tiles`` route runs it: index filter on the stored WGS84
  geometry (``geom && ST_Transform(ST_TileEnvelope(...), 4326)``); below zoom 14 the premises tile
  reads its 32 × 32 cells from ``premises_grid`` (counts per cell, category and district, kept up to
  date by the imports), never the premises;
* **http** — the same through the FastAPI app (``GET /tiles/premises/...``, TestClient, token check
  included);
* **baseline** — the same premises layer without those choices: every point at every zoom, selected
  with ``ST_Intersects(ST_Transform(geom, 3857), envelope)`` (no index can serve it).

Warm cache: one untimed pass, then ``--repeat`` timed passes (baseline: one pass).

``--refresh-cost`` times what keeping ``premises_grid`` costs an import, in a transaction rolled back
at the end (the database is left as it was): rebuilding the whole table, and recounting the cells of
1,000 and of 10,000 random premises (an import that changes that many).
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.app import create_app
from service.cli import prepare_database
from service.demo import load_demo
from service.settings import Settings
from storage import premises_grid, tiles
from storage.access import create_token
from storage.database import clone_database, make_engine, make_sessionmaker, resolve_url, session_scope
from storage.settings import DatabaseSettings

ZOOMS = [12, 13, 14, 15, 16]

_BASELINE = text(
    """
    SELECT ST_AsMVT(t, 'premises', 4096, 'geom') FROM (
        SELECT p.id AS premises_id, p.name,
               COALESCE(p.categories[1], (SELECT pm.category FROM permits pm WHERE pm.premises_id = p.id
                                          ORDER BY pm.id LIMIT 1), 'other') AS category,
               ST_AsMVTGeom(ST_Transform(p.geom, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS geom
        FROM premises p
        WHERE ST_Intersects(ST_Transform(p.geom, 3857), ST_TileEnvelope(:z, :x, :y))
    ) AS t WHERE t.geom IS NOT NULL
    """
)

_TOP_UP = text(
    """
    INSERT INTO premises (external_id, name, categories, geom, district_adcode, source)
    SELECT 'bench:' || g, src.name || '·' || g, src.categories,
           ST_SetSRID(ST_MakePoint(ST_X(src.geom) + (random() - 0.5) * 0.006,
                                   ST_Y(src.geom) + (random() - 0.5) * 0.006), 4326),
           src.district_adcode, 'bench'
    FROM (SELECT array_agg(id ORDER BY id) AS ids FROM premises WHERE source <> 'bench') AS demo,
         generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g
    JOIN LATERAL (SELECT p.* FROM premises p
                  WHERE p.id = demo.ids[1 + (g * 7919) % cardinality(demo.ids)]) src ON true
    """
)


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


def _load(factory, schools: int, premises: int) -> int:  # noqa: ANN001
    with session_scope(factory) as s:
        have = s.execute(text("SELECT count(*) FROM premises")).scalar_one()
    if have:
        return have
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        load_demo(factory, schools=schools, premises=premises, workdir=Path(tmp), progress=print)
    print(f"demo city loaded in {time.perf_counter() - t0:.1f} s")
    with session_scope(factory) as s:
        return s.execute(text("SELECT count(*) FROM premises")).scalar_one()


def _top_up(factory, target: int) -> None:  # noqa: ANN001
    with session_scope(factory) as s:
        have = s.execute(text("SELECT count(*) FROM premises")).scalar_one()
        done = s.execute(text("SELECT count(*) FROM premises WHERE source = 'bench'")).scalar_one()
    if have >= target:
        return
    print(f"adding {target - have:,} synthetic premises to {have:,} …")
    t0 = time.perf_counter()
    step = 200_000
    for start in range(done + 1, done + target - have + 1, step):
        stop = min(start + step - 1, done + target - have)
        with session_scope(factory) as s:
            s.execute(_TOP_UP, {"start": start, "stop": stop})
    with session_scope(factory) as s:
        s.execute(text("ANALYZE premises"))
    print(f"  done in {time.perf_counter() - t0:.1f} s")
    with session_scope(factory) as s:
        print(f"  {premises_grid.refresh_all(s).note()}")
        s.execute(text("ANALYZE premises_grid"))


def _refresh_cost(factory) -> None:  # noqa: ANN001
    """Time a rebuild of ``premises_grid`` and two recounts of marked cells; nothing is kept."""
    print()
    for n in (0, 1_000, 10_000):
        with factory() as s:
            if n:
                premises_grid.mark(s, "SELECT geom FROM premises ORDER BY random() LIMIT :n", {"n": n})
                done = premises_grid.refresh(s)
                assert done is not None
                what = f"recount of the cells of {n:,} random premises ({done.cells:,} cells, {done.mode})"
            else:
                done = premises_grid.refresh_all(s)
                what = "rebuild of the whole table"
            rows = s.execute(text("SELECT count(*) FROM premises_grid")).scalar_one()
            print(f"premises grid: {what}: {done.seconds:.2f} s ({rows:,} rows)")
            s.rollback()


def _tiles(factory, per_zoom: int, seed: int) -> list[tuple[int, int, int]]:  # noqa: ANN001
    with session_scope(factory) as s:
        centres = s.execute(text("SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM campuses")).all()
    rng = random.Random(seed)
    out = []
    for z in ZOOMS:
        picked = {_tile_of(*rng.choice(centres), z) for _ in range(per_zoom * 3)}
        out += [(z, x, y) for x, y in sorted(picked)[:per_zoom]]
    return out


def _time(fn, tile_list, repeat: int) -> dict[int, list[float]]:  # noqa: ANN001
    for t in tile_list:  # warm-up
        fn(*t)
    out: dict[int, list[float]] = {z: [] for z in ZOOMS}
    for _ in range(repeat):
        for z, x, y in tile_list:
            t0 = time.perf_counter()
            fn(z, x, y)
            out[z].append((time.perf_counter() - t0) * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _row(label: str, samples: dict[int, list[float]]) -> None:
    cells = " ".join(f"{statistics.median(samples[z]):7.1f}/{_pct(samples[z], 0.95):7.1f}" for z in ZOOMS)
    allv = [v for z in ZOOMS for v in samples[z]]
    print(f"{label:<28} {cells}   {statistics.median(allv):7.1f}/{_pct(allv, 0.95):7.1f}")


def _bench_url(args: argparse.Namespace) -> str:
    """The demo city's database (loaded if empty), cloned and topped up when ``--premises`` asks for more."""
    base_url = prepare_database(db_name=f"safezone_bench_{args.schools}_50000")
    base_url = make_url(base_url).render_as_string(hide_password=False)
    engine = make_engine(base_url, pool_size=2, statement_timeout_ms=3_600_000)
    have = _load(make_sessionmaker(engine), args.schools, 50_000)
    engine.dispose()
    url = base_url
    if args.premises > have:
        url = make_url(base_url).set(database=f"safezone_bench_tiles_{args.schools}_{args.premises}")
        url = url.render_as_string(hide_password=False)
        probe = make_engine(base_url, pool_size=1)
        with probe.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": make_url(url).database})
            exists = exists.first() is not None
        probe.dispose()
        if not exists:
            clone_database(url, base_url)
    engine = make_engine(url, pool_size=4, statement_timeout_ms=3_600_000)
    _top_up(make_sessionmaker(engine), args.premises)
    engine.dispose()
    return url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schools", type=int, default=500)
    ap.add_argument("--premises", type=int, default=50_000, help="premises in the city (topped up in SQL)")
    ap.add_argument("--tiles-per-zoom", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--db", help="time this existing database of the cluster as it is (nothing migrated or added)")
    ap.add_argument("--zooms", default=",".join(map(str, ZOOMS)), help="comma-separated zooms (default 12–16)")
    ap.add_argument("--refresh-cost", action="store_true", help="also time the premises grid's refresh (rolled back)")
    args = ap.parse_args()
    ZOOMS[:] = [int(z) for z in args.zooms.split(",")]

    url = _bench_url(args) if args.db is None else make_url(resolve_url()).set(database=args.db)
    url = make_url(url).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=4, statement_timeout_ms=3_600_000)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        n = s.execute(text("SELECT count(*) FROM premises")).scalar_one()
        token, _ = create_token(s, role="admin", name="bench-tiles", replace=True)
    tile_list = _tiles(factory, args.tiles_per_zoom, seed=7)
    print(f"\n{n:,} premises; {len(tile_list)} tiles ({args.tiles_per_zoom} per zoom); p50/p95 in ms\n")
    print(f"{'':<28} " + " ".join(f"{'z' + str(z):>15}" for z in ZOOMS) + f"   {'all':>15}")

    with factory() as session:
        for layer in ("premises", "schools", "streets"):
            _row(f"ours: {layer}", _time(lambda z, x, y, lay=layer: tiles.tile(session, lay, z, x, y, names=True),
                                          tile_list, args.repeat))  # fmt: skip
        sizes = [len(tiles.tile(session, "premises", *t, names=True)) for t in tile_list]

    app = create_app(Settings(), DatabaseSettings(database_url=url))
    with TestClient(app) as client:
        logging.disable(logging.INFO)  # no access log line per tile
        headers = {"Authorization": f"Bearer {token}"}

        def http(z: int, x: int, y: int, layer: str = "premises") -> None:
            resp = client.get(f"/tiles/{layer}/{z}/{x}/{y}.pbf", headers=headers)
            assert resp.status_code in (200, 204), resp.text

        _row("http: premises", _time(http, tile_list, args.repeat))
        _row("http: zones", _time(lambda z, x, y: http(z, x, y, "zones"), tile_list, args.repeat))

    if not args.no_baseline:
        with factory() as session:
            _row(
                "baseline: premises",
                _time(lambda z, x, y: session.execute(_BASELINE, {"z": z, "x": x, "y": y}).scalar(), tile_list, 1),
            )
    print(f"\npremises tile size: median {statistics.median(sizes) / 1024:.1f} KiB, max {max(sizes) / 1024:.1f} KiB")
    if args.refresh_cost:
        _refresh_cost(factory)
    engine.dispose()


if __name__ == "__main__":
    main()
