"""The patrol and guard-post map pages of the running app in a Chromium that cannot reach the internet."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import uvicorn

from geo.maps import external_urls
from geo.rules import RuleRegistry
from service.app import create_app
from service.demo import load_demo
from service.scanning import run_scan
from service.settings import Settings
from storage.access import create_token
from storage.database import make_engine, make_sessionmaker, session_scope
from storage.settings import DatabaseSettings
from tests.e2e.browser import Chromium

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
DRAWN = (
    "({paths: document.querySelectorAll('path.leaflet-interactive').length,"
    " tiles: document.querySelectorAll('canvas.leaflet-tile-loaded').length})"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(e2e_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    engine = make_engine(e2e_url, pool_size=2)
    factory = make_sessionmaker(engine)
    load_demo(factory, workdir=tmp_path_factory.mktemp("demo"), schools=40, premises=300, seed=9)
    settings = Settings()
    run_scan(factory, RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode))
    with session_scope(factory) as session:
        token, _ = create_token(session, role="urban_management", name="e2e-patrol", replace=True)
    engine.dispose()
    app = create_app(settings, DatabaseSettings(database_url=e2e_url))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{srv.config.port}", token
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


UNITS = [
    {"id": "C1", "name": "城管一中队", "lon": 110.2790, "lat": 25.2700},
    {"id": "C2", "name": "城管二中队", "lon": 110.3000, "lat": 25.2800},
]


def test_patrol_and_guard_post_maps_draw_offline(server: tuple[str, str]) -> None:
    base, token = server
    headers = {"Authorization": f"Bearer {token}"}
    patrol = httpx.post(
        f"{base}/v1/patrols/plan",
        json={"district": "450300", "units": UNITS, "crs": "wgs84", "speed_kmh": 5, "dwell_min": 5},
        headers=headers,
        timeout=60,
    ).json()
    stops = sum(len(r["stops"]) for r in patrol["routes"])
    assert stops == patrol["stops"] > 0
    guard = httpx.post(
        f"{base}/v1/guard-posts/plan",
        json={"district": "450300", "day": "2025-03-03", "units": UNITS, "crs": "wgs84", "speed_kmh": 5},
        headers=headers,
        timeout=60,
    ).json()
    assert guard["duties"]

    with Chromium(timeout_ms=20_000) as browser:
        for name, url, at_least in (
            ("patrol", f"{base}{patrol['map_url']}?token={quote(token)}", len(patrol["routes"]) + stops),
            ("guard_posts", f"{base}{guard['map_url']}&token={quote(token)}", len(guard["duties"])),
        ):
            report = browser.load_page(
                url,
                screenshot=ARTIFACTS / f"map_{name}.png",
                wait_for_js="document.querySelectorAll('path.leaflet-interactive').length > 0",
                evaluate=DRAWN,
            )
            assert report.ok, report.problems()
            assert all(r.url.startswith(base) for r in report.requests)
            # routes + stop markers (patrol), posts + moves (guard posts) drawn as SVG paths; streets as tiles
            assert report.evaluated["paths"] >= at_least, report.evaluated
            assert report.evaluated["tiles"] > 0
            html = httpx.get(url, timeout=60).text
            assert external_urls(html) == []
