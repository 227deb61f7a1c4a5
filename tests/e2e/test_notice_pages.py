"""The decision notice and the "where may it open" page in a real Chromium that cannot reach the internet.

uvicorn serves ``create_app`` on a free loopback port against the e2e database with the demo city loaded
and committed; a pre-check is made through the running API and its ``map_url`` opened; the notice is
printed to PDF on A4 and must be one page.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import shapely
import uvicorn
from pyproj import Geod
from sqlalchemy import text

from service.app import create_app
from service.demo import load_demo
from service.settings import Settings
from storage.access import create_token
from storage.database import make_engine, make_sessionmaker, session_scope
from storage.settings import DatabaseSettings
from tests.e2e.browser import Chromium

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
GEOD = Geod(ellps="WGS84")
DRAWN = "document.querySelectorAll('.leaflet-interactive').length"
PAGE_RE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


@dataclass(frozen=True)
class Running:
    base: str
    market: str  # token of a market regulator
    public: str  # token of a licensing client (no read:maps)
    decision: dict


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def running(e2e_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    engine = make_engine(e2e_url, pool_size=2)
    factory = make_sessionmaker(engine)
    load_demo(factory, workdir=tmp_path_factory.mktemp("demo"), schools=40, premises=200, seed=5)
    with session_scope(factory) as session:
        market, _ = create_token(session, role="market_supervision", name="e2e-notice", replace=True)
        public, _ = create_token(session, role="licensing_client", name="e2e-notice-client", replace=True)
        # a school (not a kindergarten) of 秀峰区 with an outline: the site goes 120 m east of it
        outline = session.execute(
            text(
                "SELECT ST_AsBinary(c.geom) FROM campuses c JOIN schools s ON s.id = c.school_id "
                "WHERE c.district_adcode = '450302' AND NOT c.point_only "
                "AND s.levels && ARRAY['primary', 'junior', 'senior', 'nine_year', 'complete']::text[] "
                "ORDER BY c.id LIMIT 1"
            )
        ).scalar_one()
    engine.dispose()
    geom = shapely.from_wkb(bytes(outline))
    x0, y0, x1, y1 = geom.bounds
    lon, lat, _ = GEOD.fwd(x1, (y0 + y1) / 2, 90, 120)

    port = _free_port()
    app = create_app(Settings(), DatabaseSettings(database_url=e2e_url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    base = f"http://127.0.0.1:{port}"
    try:
        body = {"category": "internet_cafe", "location": {"lon": lon, "lat": lat}, "crs": "wgs84", "name": "星海网吧"}
        req = urllib.request.Request(  # noqa: S310 (loopback)
            f"{base}/v1/checks", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {market}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback)
            decision = json.loads(resp.read())
        yield Running(base, market, public, decision)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium(timeout_ms=20_000) as chromium:
        yield chromium


def test_decision_notice_loads_offline_and_prints_on_one_a4_page(running: Running, browser: Chromium) -> None:
    decision = running.decision
    assert decision["outcome"] == "prohibited"
    pdf: dict[str, bytes] = {}

    def print_it(page, report) -> None:  # noqa: ANN001
        pdf["bytes"] = page.pdf(format="A4", print_background=True)
        page.emulate_media(media="print")

    report = browser.load_page(
        f"{running.base}{decision['map_url']}?token={quote(running.market)}",
        screenshot=ARTIFACTS / "notice_decision.png",
        wait_for_js="document.querySelectorAll('canvas.leaflet-tile-loaded').length > 0",
        interact=print_it,
        evaluate=f"({{paths: {DRAWN}, text: document.querySelector('.notice').innerText,"
        " map: document.querySelector('.notice-map .folium-map') !== null,"
        " bottom: document.querySelector('.notice').getBoundingClientRect().bottom})",
    )
    assert report.ok, report.problems()
    assert all(urlsplit(r.url).hostname == "127.0.0.1" for r in report.requests)
    assert any(urlsplit(r.url).path.startswith("/tiles/streets/") and r.status == 200 for r in report.requests)
    drawn = report.evaluated
    # campus outline, gates, the measured line(s) and the site, as SVG paths, inside the notice
    assert drawn["map"] and drawn["paths"] >= 3
    nearest = next(r for r in decision["rules"] if r["rule_id"] == "internet_cafe.school")["nearest"]
    for needle in ("学生安全区域许可前置核查告知书", "禁止", nearest["school_name"], decision["decision_id"],
                   f"{nearest['distance_m']:.1f} 米", "《互联网上网服务营业场所管理条例》第九条"):  # fmt: skip
        assert needle in drawn["text"], needle
    # under print media the whole notice ends within one A4 page's printable height (277 mm at 96 px/in)
    assert drawn["bottom"] <= 277 / 25.4 * 96, drawn["bottom"]
    data = pdf["bytes"]
    assert data.startswith(b"%PDF")
    assert len(PAGE_RE.findall(data)) == 1, "the notice must print on exactly one A4 page"
    (ARTIFACTS / "notice_decision.pdf").write_bytes(data)


def test_open_page_draws_allowed_area_zones_and_band_offline(running: Running, browser: Chromium) -> None:
    for token, name, basemap in ((running.market, "notice_open.png", True), (running.public, None, False)):
        report = browser.load_page(
            f"{running.base}/maps/open?category=internet_cafe&district=450302&token={quote(token)}",
            screenshot=ARTIFACTS / name if name else None,
            wait_for_js=f"{DRAWN} >= 4",
            evaluate=f"({{paths: {DRAWN}, panel: document.querySelector('.open-panel').innerText}})",
        )
        assert report.ok, report.problems()
        assert all(urlsplit(r.url).hostname == "127.0.0.1" for r in report.requests)
        tiles = [r for r in report.requests if urlsplit(r.url).path.startswith("/tiles/")]
        assert bool(tiles) is basemap  # a licensing client gets no basemap rather than 403 tiles
        # district outline, allowed area, two zones (school 200 m, kindergarten 100 m), review band
        assert report.evaluated["paths"] >= 4
        assert "可新设网吧的区域" in report.evaluated["panel"] and "需复核带" in report.evaluated["panel"]
