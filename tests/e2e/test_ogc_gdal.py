"""GDAL's own OGC API – Features client (the ``OAPIF`` driver QGIS uses) against the running app.

uvicorn serves ``create_app`` on a free loopback port against the e2e database, with the real Nanjing
OSM extract imported and a scan run (so there are findings); pyogrio's bundled GDAL reads every
collection sending the token as a header. The OAPIF driver sets its own ``Accept`` header and so ignores
``GDAL_HTTP_HEADERS`` (GDAL 3.12, as ESRIJSON: OSGeo/gdal#11385); ``GDAL_HTTP_HEADER_FILE`` — a file of
``Key: value`` lines — is honoured, and is what a GDAL user configures.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyogrio
import pytest
from shapely.geometry import box
from sqlalchemy import text

from geo.rules import RuleRegistry
from service.importing import ImportOptions, import_osm
from service.scanning import run_scan
from service.settings import Settings
from storage.access import create_token
from storage.database import make_engine, make_sessionmaker, session_scope

pytestmark = pytest.mark.e2e

COLLECTIONS = ("schools", "campuses", "gates", "premises", "zones", "findings")


REPO = Path(__file__).resolve().parents[2]
_ACCESS = re.compile(r'"GET (\S+) HTTP/1\.1" (\d+)')


@dataclass
class Server:
    base: str
    token: str
    counts: dict[str, int]
    names: dict[str, set[str]]
    log: Path
    headers: Path | None = None

    def requests(self, since: int = 0) -> list[tuple[str, int]]:
        """(path with query, status) of every request uvicorn logged after byte ``since`` of its log."""
        text_ = self.log.read_bytes()[since:].decode("utf-8", "replace")
        return [(m.group(1), int(m.group(2))) for m in _ACCESS.finditer(text_)]

    def mark(self) -> int:
        return self.log.stat().st_size


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_counts(e2e_url: str) -> tuple[dict[str, int], dict[str, set[str]]]:
    """What the database holds, counted independently of the OGC code (zones: one per campus × distance)."""
    settings = Settings()
    registry = RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode)
    engine = make_engine(e2e_url, pool_size=1)
    with engine.connect() as conn:
        counts = {
            name: conn.execute(text(sql)).scalar_one()
            for name, sql in {
                "schools": "SELECT count(*) FROM schools",
                "campuses": "SELECT count(*) FROM campuses",
                "gates": "SELECT count(*) FROM gates",
                "premises": "SELECT count(*) FROM premises",
                "findings": "SELECT count(*) FROM findings WHERE scan_id ="
                " (SELECT max(id) FROM scans WHERE status = 'done')",
            }.items()
        }
        zones = 0
        for district, levels, gated in conn.execute(
            text(
                "SELECT c.district_adcode, s.levels, EXISTS (SELECT 1 FROM gates g WHERE g.campus_id = c.id"
                " AND g.in_use) FROM campuses c JOIN schools s ON s.id = c.school_id"
            )
        ):
            rules = [r for r in registry.in_force(district).rules if r.distance_m is not None]
            protecting = [r for r in rules if not levels or set(levels) & set(r.levels)]
            zones += len({(r.distance_m, r.measure_from if gated else "boundary") for r in protecting})
        counts["zones"] = zones
        names = {
            "schools": {r[0] for r in conn.execute(text("SELECT name FROM schools"))},
            "premises": {r[0] for r in conn.execute(text("SELECT name FROM premises"))},
        }
    engine.dispose()
    return counts, names


@pytest.fixture(scope="module")
def server(e2e_url: str, nanjing_osm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    engine = make_engine(e2e_url, pool_size=2)
    factory = make_sessionmaker(engine)
    import_osm(factory, nanjing_osm, ImportOptions(created_by="e2e-ogc"))
    settings = Settings()
    run_scan(factory, RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode))
    with session_scope(factory) as session:
        token, _ = create_token(session, role="admin", name="e2e-ogc", replace=True)
    engine.dispose()
    counts, names = _database_counts(e2e_url)
    # uvicorn in a process of its own: GDAL holds the GIL while it fetches the next page, so a server
    # thread in this process would never answer it.
    folder = tmp_path_factory.mktemp("ogc")
    port = _free_port()
    log = folder / "uvicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env={**os.environ, "DATABASE_URL": e2e_url},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Server(f"http://127.0.0.1:{port}", token, counts, names, log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{running.base}/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
        headers = folder / "headers.txt"
        headers.write_text(f"Authorization: Bearer {token}\n")
        running.headers = headers
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": str(headers), "GDAL_HTTP_TIMEOUT": 30})
        yield running
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None, "GDAL_HTTP_TIMEOUT": None})
        proc.terminate()
        proc.wait(timeout=10)


def test_the_nanjing_data_is_there(server: Server) -> None:
    # a test of the fixture: counts below would be vacuous on an empty database
    assert server.counts["schools"] >= 10 and server.counts["premises"] >= 5
    assert server.counts["zones"] > server.counts["campuses"]  # several distances per campus
    assert server.counts["findings"] >= 1, "the scan found nothing: the findings layer would be empty"


def test_gdal_lists_every_collection(server: Server) -> None:
    layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{server.base}/ogc")}
    assert layers == set(COLLECTIONS)


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_gdal_reads_every_feature(server: Server, collection: str) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{server.base}/ogc", layer=collection)
    assert len(frame) == server.counts[collection]
    assert frame.crs is not None and frame.crs.to_string() == "OGC:CRS84"  # lon, lat (not EPSG:4326 lat, lon)
    assert frame.geometry.notna().all() and frame.geometry.is_valid.all()
    # longitude first: every feature lies in China (73–136 E, 3–54 N); swapped axes would put x near 25–32
    # (other e2e tests may have loaded the demo city near Guilin into the same database)
    x0, y0, x1, y1 = frame.total_bounds
    assert 73 < x0 <= x1 < 136 and 3 < y0 <= y1 < 54
    if collection in server.names:
        assert set(frame["name"]) == server.names[collection]


def test_gdal_follows_next_links_page_by_page(server: Server) -> None:
    mark = server.mark()
    frame = pyogrio.read_dataframe(f"OAPIF:{server.base}/ogc", layer="zones", PAGE_SIZE=7)
    assert len(frame) == server.counts["zones"]
    assert frame["id"].is_unique  # no zone twice, none skipped (the count is equal)
    pages_fetched = [u for u, status in server.requests(mark) if urlsplit(u).path == "/ogc/collections/zones/items"]
    assert all(parse_qs(urlsplit(u).query)["limit"] == ["7"] for u in pages_fetched), pages_fetched
    offsets = sorted(int(parse_qs(urlsplit(u).query).get("offset", ["0"])[0]) for u in pages_fetched)
    pages = -(-server.counts["zones"] // 7)
    assert pages >= 3
    assert set(range(0, pages * 7, 7)) <= set(offsets)


def test_gdal_bbox_filter_reaches_the_server(server: Server) -> None:
    everything = pyogrio.read_dataframe(f"OAPIF:{server.base}/ogc", layer="campuses")
    x0, y0, x1, y1 = everything.total_bounds
    west = (x0 - 0.001, y0 - 0.001, (x0 + x1) / 2, y1 + 0.001)
    mark = server.mark()
    part = pyogrio.read_dataframe(f"OAPIF:{server.base}/ogc", layer="campuses", bbox=west)
    assert any("bbox=" in u for u, _ in server.requests(mark)), server.requests(mark)
    expected = everything[everything.intersects(box(*west))]
    assert 0 < len(part) < len(everything)
    assert set(part["external_id"]) == set(expected["external_id"])


def test_gdal_without_a_token_is_refused(server: Server) -> None:
    pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})
    try:
        with pytest.raises(pyogrio.errors.DataSourceError, match="401"):
            pyogrio.list_layers(f"OAPIF:{server.base}/ogc")
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": str(server.headers)})
