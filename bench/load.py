"""Mixed traffic for a bounded time from a second process on loopback: checks, lists, tiles, map pages.

Usage:  ./run bench load [--seconds 60] [--db safezone_load] [--workers 4] [--tokens 8] [--client wrk|httpx]

Prepares the database named by --db (migrated; the demo city loaded when it has no campus), starts
``safezone serve`` on a free loopback port and loads it from other processes with pre-checks at random
sites over the city, vector tiles, lists (schools, premises, districts), rules and map pages, spread over
several tokens (the per-token rate limit stays at its default).

``--client wrk`` (the default when Debian's ``wrk`` is installed): one ``wrk`` process per kind of request,
its connections in proportion to the mix (checks 8, tiles 4, lists 3, rules 1, map pages 1), each a Lua
script drawing random requests — a load generator written in C leaves the CPU to the server.
``--client httpx``: one asyncio httpx process, 45 % checks, 25 % tiles, 20 % lists, 5 % rules, 5 % map
pages, ``--concurrency`` requests in flight.

Prints requests/s, p50/p99 per kind, errors, and the server's RSS (all its processes) at minute 1 (or a
fifth of the run) and at the end. Targets (issue 7): ≥ 300 requests/s, zero errors, end RSS within 10 % of
minute 1. Exit status 1 if missed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import shutil
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


_LUA_COMMON = r"""
math.randomseed(os.time() + %(seed)d)
local x0, y0, x1, y1 = %(x0)f, %(y0)f, %(x1)f, %(y1)f
local tokens = {%(tokens)s}
local function site() return x0 + math.random() * (x1 - x0), y0 + math.random() * (y1 - y0) end
local function auth() return {["Authorization"] = "Bearer " .. tokens[math.random(#tokens)],
                              ["Content-Type"] = "application/json"} end
local function tile(lon, lat, z)
  local n = 2 ^ z
  local t = math.tan(math.rad(lat))
  local x = math.floor((lon + 180) / 360 * n)
  local y = math.floor((1 - math.log(t + math.sqrt(t * t + 1)) / math.pi) / 2 * n)
  return x, y
end
"""

_LUA_KINDS = {
    "check": r"""
local cats = {"internet_cafe", "tobacco", "lottery", "bar", "entertainment", "alcohol"}
request = function()
  local lon, lat = site()
  local body = string.format('{"category":"%s","location":{"lon":%.7f,"lat":%.7f},"crs":"wgs84"}',
                             cats[math.random(#cats)], lon, lat)
  return wrk.format("POST", "/v1/checks", auth(), body)
end
""",
    "tile": r"""
local layers = {{"schools", 14}, {"premises", 14}, {"zones", 15}, {"premises", 12}, {"streets", 15}}
request = function()
  local l = layers[math.random(#layers)]
  local lon, lat = site()
  local x, y = tile(lon, lat, l[2])
  return wrk.format("GET", string.format("/tiles/%s/%d/%d/%d.pbf", l[1], l[2], x, y), auth())
end
""",
    "list": r"""
request = function()
  local lon, lat = site()
  local r = math.random()
  if r < 0.2 then return wrk.format("GET", "/v1/districts?limit=50", auth()) end
  local path = r < 0.6 and "/v1/schools" or "/v1/premises"
  return wrk.format("GET", string.format("%s?bbox=%.5f,%.5f,%.5f,%.5f&limit=100", path,
                    lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01), auth())
end
""",
    "rules": r"""
request = function()
  local lon, lat = site()
  return wrk.format("GET", string.format("/v1/rules?lon=%.6f&lat=%.6f&crs=wgs84", lon, lat), auth())
end
""",
    "map page": r"""
request = function() return wrk.format("GET", "/maps/city", auth()) end
""",
}
_WRK_CONNECTIONS = {"check": 8, "tile": 4, "list": 3, "rules": 1, "map page": 1}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(port: int, tokens: list[str], extent, seconds: int, server: psutil.Process):  # noqa: ANN001, ANN201
    """One wrk per kind, side by side; returns per kind (count, p50 ms, p99 ms, errors), seconds, RSS."""
    x0, y0, x1, y1 = extent
    quoted = ", ".join(f'"{t}"' for t in tokens)
    procs = {}
    with tempfile.TemporaryDirectory(prefix="safezone-load-") as tmp:
        for i, script in enumerate(_LUA_KINDS.values()):
            path = Path(tmp) / f"{i}.lua"
            common = _LUA_COMMON % {"seed": i, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "tokens": quoted}
            path.write_text(common + script)
            subprocess.run(["wrk", "-t1", "-c1", "-d2s", "-s", str(path), f"http://127.0.0.1:{port}"],
                           capture_output=True, check=False)  # fmt: skip
        start = time.monotonic()
        for i, kind in enumerate(_LUA_KINDS):
            cmd = ["wrk", "-t1", f"-c{_WRK_CONNECTIONS[kind]}", f"-d{seconds}s", "--timeout", "10s", "--latency",
                   "-s", str(Path(tmp) / f"{i}.lua"), f"http://127.0.0.1:{port}"]  # fmt: skip
            procs[kind] = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        rss: dict[str, int] = {}
        ref_at = start + min(60.0, seconds / 5)
        while any(p.poll() is None for p in procs.values()):
            time.sleep(1)
            if "minute_1" not in rss and time.monotonic() >= ref_at:
                rss["minute_1"] = _rss(server)
            if time.monotonic() < start + seconds:
                rss["end"] = _rss(server)
        elapsed = time.monotonic() - start
    out = {}
    for kind, p in procs.items():
        text_ = p.stdout.read() if p.stdout else ""
        n = int(re.search(r"(\d+) requests in", text_).group(1))
        p50 = re.search(r"50%\s+([\d.]+)(us|ms|s|m)\b", text_)
        p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", text_)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text_)
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text_)
        errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
        out[kind] = (n, _ms(*p50.groups()), _ms(*p99.groups()), errors)
    return out, min(elapsed, float(seconds)), rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--db", default="safezone_load")
    ap.add_argument("--concurrency", type=int, default=48)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--client", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx")
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
        if args.client == "wrk":
            table, elapsed, rss = run_wrk(port, tokens, extent, args.seconds, psutil.Process(server.pid))
        else:
            stats, elapsed, rss = asyncio.run(
                run(port, tokens, extent, args.seconds, args.concurrency, psutil.Process(server.pid))
            )
            table = {}
            for name, v in stats.items():
                lat = sorted(t for t, _ in v)
                bad = [s for _, s in v if not (isinstance(s, int) and s < 400)]
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
                table[name] = (len(lat), statistics.median(lat) * 1000, p99, len(bad))
    finally:
        server.terminate()
        server.wait(timeout=30)

    total = sum(n for n, *_ in table.values())
    n_errors = sum(e for *_, e in table.values())
    rate = total / elapsed
    print(f"\n{total} requests in {elapsed:.1f} s ({args.client}, {args.workers} server processes): "
          f"{rate:.0f} req/s, {n_errors} errors")  # fmt: skip
    print(f"{'endpoint':<16}{'count':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}  errors")
    for name in sorted(table):
        n, p50, p99, bad = table[name]
        print(f"{name:<16}{n:>8}{n / elapsed:>8.0f}{p50:>9.1f}{p99:>9.1f}  {bad}")
    m1, end = rss.get("minute_1", 0), rss.get("end", 0)
    growth = (end - m1) / m1 * 100 if m1 else float("nan")
    print(f"server RSS: {m1 / 2**20:.0f} MiB at minute 1 → {end / 2**20:.0f} MiB at the end ({growth:+.1f} %)")
    ok = rate >= 300 and n_errors == 0 and abs(growth) <= 10
    print("targets met" if ok else "TARGETS MISSED (≥ 300 req/s, 0 errors, RSS within 10 %)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
