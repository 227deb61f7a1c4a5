"""Mixed traffic for a bounded time from a second process on loopback: checks, lists, tiles, map pages.

Usage:  ./run bench load [--seconds 60] [--db safezone_load] [--concurrency 48] [--workers 2] [--tokens 8]

Prepares the database named by --db (migrated; the demo city loaded when it has no campus), starts
``safezone serve`` on a free loopback port and loads it with an asyncio httpx client: 45 % pre-checks at random
sites over the city, 25 % vector tiles, 20 % lists (schools, premises, districts), 5 % rules, 5 % map pages,
spread over several tokens (the per-token rate limit stays at its default). Prints requests/s, p50/p99 per
endpoint, errors, and the server's RSS (all its processes) at minute 1 (or a fifth of the run) and at the end.
Targets (issue 7): ≥ 300 requests/s, zero errors, end RSS within 10 % of minute 1. Exit status 1 if missed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import psutil
from sqlalchemy import text

from service.cli import prepare_database
from storage.access import create_token
from storage.database import make_engine, make_sessionmaker, session_scope
from storage.localdb import free_port

CATEGORIES = ("internet_cafe", "tobacco", "lottery", "bar", "entertainment", "alcohol")


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def prepare(db: str, tokens: int) -> tuple[str, list[str], tuple[float, float, float, float]]:
    url = prepare_database(db_name=db)
    engine = make_engine(url, pool_size=2)
    factory = make_sessionmaker(engine)
    with engine.connect() as conn:
        empty = not conn.execute(text("SELECT count(*) FROM campuses")).scalar()
    if empty:
        from service.demo import load_demo

        print("loading the demo city …", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            load_demo(factory, schools=120, premises=3000, seed=7, workdir=Path(tmp))
    with session_scope(factory) as session:
        clear = [
            create_token(session, role="market_supervision", name=f"load-{i}", replace=True)[0] for i in range(tokens)
        ]
    with engine.connect() as conn:
        extent = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM campuses) s"
            )
        ).one()
    engine.dispose()
    return url, clear, tuple(extent)


def _requests(extent: tuple[float, float, float, float]):  # noqa: ANN202
    x0, y0, x1, y1 = extent
    tiles = [("schools", 14), ("premises", 14), ("zones", 15), ("premises", 12), ("streets", 15)]

    def site() -> tuple[float, float]:
        return random.uniform(x0, x1), random.uniform(y0, y1)

    def check() -> tuple[str, str, str, dict]:
        lon, lat = site()
        body = {"category": random.choice(CATEGORIES), "location": {"lon": lon, "lat": lat}, "crs": "wgs84"}
        return "check", "POST", "/v1/checks", {"json": body}

    def tile() -> tuple[str, str, str, dict]:
        layer, z = random.choice(tiles)
        x, y = _tile(*site(), z)
        return f"tile {layer}", "GET", f"/tiles/{layer}/{z}/{x}/{y}.pbf", {}

    def lists() -> tuple[str, str, str, dict]:
        lon, lat = site()
        bbox = f"{lon - 0.01:.5f},{lat - 0.01:.5f},{lon + 0.01:.5f},{lat + 0.01:.5f}"
        name, path = random.choice([("list schools", "/v1/schools"), ("list premises", "/v1/premises")])
        if random.random() < 0.2:
            return "list districts", "GET", "/v1/districts", {"params": {"limit": 50}}
        return name, "GET", path, {"params": {"bbox": bbox, "limit": 100}}

    def rules() -> tuple[str, str, str, dict]:
        lon, lat = site()
        return "rules", "GET", "/v1/rules", {"params": {"lon": lon, "lat": lat, "crs": "wgs84"}}

    def page() -> tuple[str, str, str, dict]:
        return "map page", "GET", "/maps/city", {}

    mix = [(check, 45), (tile, 25), (lists, 20), (rules, 5), (page, 5)]
    makers, weights = zip(*mix, strict=True)
    return lambda: random.choices(makers, weights)[0]()


async def _worker(client: httpx.AsyncClient, tokens: list[str], make, stop_at: float, stats) -> None:  # noqa: ANN001
    while time.monotonic() < stop_at:
        name, method, path, kw = make()
        headers = {"Authorization": f"Bearer {random.choice(tokens)}"}
        t0 = time.perf_counter()
        try:
            r = await client.request(method, path, headers=headers, **kw)
            await r.aread()
            status = r.status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        stats[name].append((time.perf_counter() - t0, status))


def _rss(proc: psutil.Process) -> int:
    try:
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running())
    except psutil.Error:
        return 0


async def run(port: int, tokens: list[str], extent, seconds: int, concurrency: int, server: psutil.Process):  # noqa: ANN001, ANN201
    make = _requests(extent)
    stats: dict[str, list] = defaultdict(list)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits) as client:
        warm_until = time.monotonic() + 5
        await asyncio.gather(*(_worker(client, tokens, make, warm_until, defaultdict(list)) for _ in range(8)))
        start = time.monotonic()
        stop_at = start + seconds
        ref_at = start + min(60.0, seconds / 5)
        rss: dict[str, int] = {}

        async def sample() -> None:
            while time.monotonic() < stop_at:
                await asyncio.sleep(1)
                if "minute_1" not in rss and time.monotonic() >= ref_at:
                    rss["minute_1"] = _rss(server)
            rss["end"] = _rss(server)

        await asyncio.gather(sample(), *(_worker(client, tokens, make, stop_at, stats) for _ in range(concurrency)))
        elapsed = time.monotonic() - start
    return stats, elapsed, rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--db", default="safezone_load")
    ap.add_argument("--concurrency", type=int, default=48)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=8)
    args = ap.parse_args()

    url, tokens, extent = prepare(args.db, args.tokens)
    port = free_port(18000, 18999)
    env = {**os.environ, "DATABASE_URL": url, "SAFEZONE_LOG_LEVEL": "WARNING", "SAFEZONE_POOL_SIZE": "8"}
    cmd = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", str(args.workers)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        stats, elapsed, rss = asyncio.run(
            run(port, tokens, extent, args.seconds, args.concurrency, psutil.Process(server.pid))
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    total = sum(len(v) for v in stats.values())
    errors = {name: [s for _, s in v if not (isinstance(s, int) and s < 400)] for name, v in stats.items()}
    n_errors = sum(len(e) for e in errors.values())
    rate = total / elapsed
    print(f"\n{total} requests in {elapsed:.1f} s: {rate:.0f} req/s, {n_errors} errors")
    print(f"{'endpoint':<16}{'count':>8}{'p50 ms':>9}{'p99 ms':>9}  errors")
    for name in sorted(stats):
        lat = sorted(t for t, _ in stats[name])
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        bad = sorted({str(s) for s in errors[name]})
        print(f"{name:<16}{len(lat):>8}{p50:>9.1f}{p99:>9.1f}  {len(errors[name])} {' '.join(bad)}")
    m1, end = rss.get("minute_1", 0), rss.get("end", 0)
    growth = (end - m1) / m1 * 100 if m1 else float("nan")
    print(f"server RSS: {m1 / 2**20:.0f} MiB at minute 1 → {end / 2**20:.0f} MiB at the end ({growth:+.1f} %)")
    ok = rate >= 300 and n_errors == 0 and abs(growth) <= 10
    print("targets met" if ok else "TARGETS MISSED (≥ 300 req/s, 0 errors, RSS within 10 %)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
