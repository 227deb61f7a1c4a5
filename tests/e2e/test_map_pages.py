"""The map pages of the running app in a real Chromium that cannot reach the internet.

uvicorn serves ``create_app`` on a free loopback port against the e2e database, with the real Nanjing
OSM extract imported and committed; Chromium (``tests/e2e/browser.py``) resolves no host but 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import mapbox_vector_tile
import pytest
import uvicorn
from fastapi.responses import HTMLResponse
from sqlalchemy import text

from geo.maps import external_urls
from service.app import create_app
from service.importing import ImportOptions, import_osm
from service.settings import Settings
from storage.access import create_token
from storage.database import make_engine, make_sessionmaker, session_scope
from storage.settings import DatabaseSettings
from tests.e2e.browser import Chromium

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CDN_LEAFLET = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
TILES_DRAWN = "document.querySelectorAll('canvas.leaflet-tile-loaded').length"
DRAWN = (
    "({tiles: document.querySelectorAll('canvas.leaflet-tile-loaded').length,"
    " paths: document.querySelectorAll('.leaflet-interactive').length,"
    " legend: document.querySelectorAll('.safezone-legend-row').length,"
    " search: document.querySelectorAll('.safezone-search-input').length,"
    " attribution: (document.querySelector('.leaflet-control-attribution') || {}).textContent || ''})"
)


@dataclass(frozen=True)
class Running:
    base: str
    token: str
    school_id: int
    school_name: str
    pages: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def running(e2e_url: str, nanjing_osm: Path) -> Iterator[Running]:
    engine = make_engine(e2e_url, pool_size=2)
    factory = make_sessionmaker(engine)
    import_osm(factory, nanjing_osm, ImportOptions(created_by="e2e-maps"))
    with session_scope(factory) as session:
        token, _ = create_token(session, role="urban_management", name="e2e-maps", replace=True)
        # the school with the most premises within 200 m: a page with something to measure
        school_id, school_name = session.execute(
            text(
                """
                SELECT s.id, s.name FROM schools s JOIN campuses c ON c.school_id = s.id
                WHERE NOT c.point_only AND s.name <> ''
                ORDER BY (SELECT count(*) FROM premises p
                          WHERE ST_DWithin(p.geom::geography, c.geom::geography, 200)) DESC, s.id
                LIMIT 1
                """
            )
        ).one()
    engine.dispose()
    port = _free_port()
    app = create_app(Settings(), DatabaseSettings(database_url=e2e_url))
    pages: dict[str, str] = {}

    @app.get("/_test/{name}", include_in_schema=False)
    def test_page(name: str) -> HTMLResponse:  # a doctored page, served from the same origin
        return HTMLResponse(pages[name])

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Running(f"http://127.0.0.1:{port}", token, school_id, school_name, pages)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium(timeout_ms=20_000) as chromium:
        yield chromium


def _tile_statuses(report, layer: str) -> list[int | None]:  # noqa: ANN001
    return [r.status for r in report.requests if urlsplit(r.url).path.startswith(f"/tiles/{layer}/")]


def test_city_page_draws_its_layers_offline(running: Running, browser: Chromium) -> None:
    report = browser.load_page(
        f"{running.base}/maps/city?token={quote(running.token)}",
        screenshot=ARTIFACTS / "map_city.png",
        wait_for_js=f"{TILES_DRAWN} > 0",
        evaluate=DRAWN,
    )
    assert report.ok, report.problems()
    assert all(urlsplit(r.url).hostname == "127.0.0.1" for r in report.requests)
    drawn = report.evaluated
    assert drawn["tiles"] > 0 and drawn["legend"] > 10 and drawn["search"] == 1
    assert "OpenStreetMap contributors" in drawn["attribution"]
    # the basemap and the schools came from our own PostGIS tiles, with features in some of them
    for layer in ("streets", "schools", "premises"):
        assert 200 in _tile_statuses(report, layer), layer
    assert all(s in (200, 204) for layer in ("streets", "schools", "premises") for s in _tile_statuses(report, layer))


def test_city_page_at_a_city_zoom_draws_the_premises_counted_per_cell(
    running: Running, browser: Chromium, e2e_url: str
) -> None:
    def zoom_out(page, report) -> None:  # noqa: ANN001
        page.evaluate(
            "() => { const cfg = JSON.parse(document.getElementById('safezone-config').textContent);"
            " window[cfg.map].setZoom(12, {animate: false}); }"
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until every premises tile of zoom 12 has its answer
            page.wait_for_timeout(100)
            asked = [r for r in report.requests if urlsplit(r.url).path.startswith("/tiles/premises/12/")]
            if asked and all(r.status is not None or r.failure for r in asked):
                break

    report = browser.load_page(
        f"{running.base}/maps/city?token={quote(running.token)}",
        wait_for_js=f"{TILES_DRAWN} > 0",
        interact=zoom_out,
        screenshot=ARTIFACTS / "map_city_z12.png",
        evaluate=DRAWN,
    )
    assert report.ok, report.problems()
    cells = [r.url for r in report.requests if urlsplit(r.url).path.startswith("/tiles/premises/12/")]
    assert cells and all(r.status in (200, 204) for r in report.requests if r.url in cells)
    # what those tiles hold — one point per grid cell — equals a direct count of the premises in each tile
    engine = make_engine(e2e_url, pool_size=1)
    shown_total = 0
    try:
        with engine.connect() as conn:
            for url in cells:
                with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (loopback)
                    body = resp.read()
                feats = mapbox_vector_tile.decode(body)["premises"]["features"] if body else []
                shown: dict[str, int] = {}
                for f in feats:
                    for key, n in f["properties"].items():
                        if key not in ("count", "unlicensed"):
                            shown[key] = shown.get(key, 0) + n
                z, x, y = (int(v) for v in urlsplit(url).path.removesuffix(".pbf").split("/")[-3:])
                counted = conn.execute(
                    text(
                        """
                        SELECT COALESCE(p.categories[1], (SELECT pm.category FROM permits pm
                                        WHERE pm.premises_id = p.id ORDER BY pm.id LIMIT 1), 'other'), count(*)
                        FROM premises p WHERE ST_Intersects(p.geom, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326))
                        GROUP BY 1
                        """
                    ),
                    {"z": z, "x": x, "y": y},
                ).all()
                assert shown == dict(counted), url
                shown_total += sum(f["properties"]["count"] for f in feats)
            from_osm = conn.execute(text("SELECT count(*) FROM premises WHERE source = 'osm'")).scalar_one()
    finally:
        engine.dispose()
    assert shown_total >= from_osm > 0  # the extract's bars, internet cafés … all in the view at zoom 12


def test_city_search_finds_a_school_by_name(running: Running, browser: Chromium) -> None:
    def search(page, report) -> None:  # noqa: ANN001
        page.fill(".safezone-search-input", running.school_name)
        page.keyboard.press("Enter")
        page.wait_for_selector(".safezone-search-result.safezone-school", timeout=10_000)

    report = browser.load_page(
        f"{running.base}/maps/city?token={quote(running.token)}&lang=en",
        wait_for_js=f"{TILES_DRAWN} > 0",
        interact=search,
        evaluate="Array.from(document.querySelectorAll('.safezone-search-result a:first-child'))"
        ".map(a => a.textContent)",
        screenshot=ARTIFACTS / "map_city_search.png",
    )
    assert report.ok, report.problems()
    assert running.school_name in report.evaluated


def test_school_page_draws_zones_premises_and_measured_lines(running: Running, browser: Chromium) -> None:
    report = browser.load_page(
        f"{running.base}/maps/schools/{running.school_id}?token={quote(running.token)}",
        screenshot=ARTIFACTS / "map_school.png",
        wait_for_js=f"{TILES_DRAWN} > 0 && document.querySelectorAll('.leaflet-interactive').length > 0",
        evaluate=DRAWN,
    )
    assert report.ok, report.problems()
    drawn = report.evaluated
    # campus + one zone per rule + premises + their measured lines, as SVG paths
    assert drawn["paths"] > 5
    assert drawn["tiles"] > 0
    assert "OpenStreetMap contributors" in drawn["attribution"]
    assert 200 in _tile_statuses(report, "streets")


def test_harness_reports_a_cdn_link_injected_into_the_school_page(running: Running, browser: Chromium) -> None:
    """The same page with one CDN <script> fails in the harness: the offline check bites."""
    import urllib.request

    url = f"{running.base}/maps/schools/{running.school_id}?token={quote(running.token)}"
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (loopback)
        html = resp.read().decode()
    assert external_urls(html) == []
    injected = html.replace("<head>", f'<head>\n<script src="{CDN_LEAFLET}"></script>', 1)
    assert external_urls(injected) == [CDN_LEAFLET]

    running.pages["cdn"] = injected
    report = browser.load_page(f"{running.base}/_test/cdn", wait_for_js=f"{TILES_DRAWN} > 0")
    assert not report.ok
    assert [r.url for r in report.failed_requests] == [CDN_LEAFLET]
    assert "NAME_NOT_RESOLVED" in (report.failed_requests[0].failure or "")
