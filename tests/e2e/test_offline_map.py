"""Offline maps in a real browser that cannot reach the internet.

A local ``http.server`` on 127.0.0.1 serves ``data/static`` at ``/static`` and rendered map pages;
Chromium (see ``tests/e2e/browser.py``) resolves no other host, like a government intranet.
"""

from __future__ import annotations

import http.server
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import folium
import mapbox_vector_tile
import pytest
from folium.plugins import MarkerCluster
from shapely.geometry import box

from geo.maps import OSM_ATTRIBUTION, STATIC_DIR, offline_map, vector_tile_layer
from tests.e2e.browser import Chromium, PageReport

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
XINJIEKOU = (32.0418, 118.7784)  # 新街口, Nanjing
CDN_LEAFLET = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
VT_ZOOM = 16
PATCHED = "this._fireEvent(r?[r]:!1,t)"
UNPATCHED = "r&&(L.DomEvent.fakeStop(t),this._fireEvent([r],t))"


def _tile_of(lat: float, lon: float, zoom: int) -> tuple[int, int]:
    n = 2**zoom
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _tile_centre(x: int, y: int, zoom: int) -> tuple[float, float]:
    n = 2**zoom
    lon = (x + 0.5) / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
    return lat, lon


VT_TILE = _tile_of(*XINJIEKOU, VT_ZOOM)
VT_CENTRE = _tile_centre(*VT_TILE, VT_ZOOM)
# one internet café covering the middle of the tile (tile coordinates, extent 4096, y down)
VT_BYTES = mapbox_vector_tile.encode(
    [
        {
            "name": "premises",
            "features": [
                {
                    "geometry": box(1024, 1024, 3072, 3072),
                    "properties": {"name": "星海网吧", "category": "internet_cafe"},
                }
            ],
        }
    ],
    default_options={"y_coord_down": True},
)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """/static/* from data/static, pages from the server's dict, /tiles/* vector tiles."""

    pages: dict[str, bytes] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(STATIC_DIR.parent), **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path in self.pages:
            self._send(200, "text/html; charset=utf-8", self.pages[path])
        elif path == "/favicon.ico":
            self._send(204, "image/x-icon", b"")
        elif path.startswith("/tiles/"):
            z, x, y = (int(p) for p in path.removeprefix("/tiles/").removesuffix(".pbf").split("/"))
            body = VT_BYTES if (x, y) == VT_TILE and z == VT_ZOOM else b""  # empty tile elsewhere
            self._send(200, "application/x-protobuf", body)
        elif path == "/unpatched/Leaflet.VectorGrid.bundled.min.js":
            js = (STATIC_DIR / "vendor/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js").read_text()
            self._send(200, "text/javascript", js.replace(PATCHED, UNPATCHED).encode())
        elif path.startswith("/static/"):
            super().do_GET()
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict[str, bytes]]]:
    pages: dict[str, bytes] = {}
    handler = type("Handler", (_Handler,), {"pages": pages})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", pages
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as chromium:
        yield chromium


def _school_map_html() -> str:
    """A school's 200 m zone (GeoJson), a clustered awesome-marker café, OSM attribution."""
    fmap = offline_map(static_url="/static", location=XINJIEKOU, zoom_start=16, attribution=OSM_ATTRIBUTION)
    lat, lon = XINJIEKOU
    dlat, dlon = 200 / 111_320, 200 / (111_320 * math.cos(math.radians(lat)))
    zone = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
    ]
    folium.GeoJson(
        {
            "type": "Feature",
            "properties": {"school": "金陵中学"},
            "geometry": {"type": "Polygon", "coordinates": [zone + [zone[0]]]},
        },
        name="safety zone",
    ).add_to(fmap)
    cluster = MarkerCluster(name="premises").add_to(fmap)
    folium.Marker(
        (lat + 0.0005, lon + 0.0005),
        icon=folium.Icon(prefix="fa", icon="gamepad", color="red"),
        tooltip="星海网吧",
    ).add_to(cluster)
    return fmap.get_root().render()


def test_offline_map_loads_everything_from_our_server(server, browser) -> None:
    base, pages = server
    pages["/map.html"] = _school_map_html().encode()
    report = browser.load_page(
        f"{base}/map.html",
        screenshot=ARTIFACTS / "offline_map.png",
        wait_for_js="document.querySelectorAll('.leaflet-marker-pane .awesome-marker').length > 0",
    )
    assert report.ok, report.problems()
    assert all(urlsplit(r.url).hostname == "127.0.0.1" for r in report.requests)
    # the zone was drawn as a path and the café as a marker
    assert report.layers_drawn is not None and report.layers_drawn >= 2
    loaded = {urlsplit(r.url).path for r in report.requests if r.status == 200}
    # the marker's Font Awesome glyph and the awesome-marker sprite were really fetched
    assert "/static/vendor/fontawesome-free-6.2.0/webfonts/fa-solid-900.woff2" in loaded
    assert "/static/vendor/leaflet.awesome-markers-2.0.4/images/markers-soft.png" in loaded
    assert report.screenshot is not None and report.screenshot.stat().st_size > 1000


def test_map_attribution_credits_openstreetmap(server, browser) -> None:
    base, pages = server
    pages["/map.html"] = _school_map_html().encode()
    report = browser.load_page(
        f"{base}/map.html", evaluate="document.querySelector('.leaflet-control-attribution').textContent"
    )
    assert "OpenStreetMap contributors" in report.evaluated


def test_harness_reports_a_cdn_script(server, browser) -> None:
    """The same page with one CDN <script> must fail: proof that the offline test bites."""
    base, pages = server
    html = _school_map_html()
    pages["/cdn.html"] = html.replace("<head>", f'<head>\n<script src="{CDN_LEAFLET}"></script>', 1).encode()
    report = browser.load_page(f"{base}/cdn.html")
    assert not report.ok
    assert [r.url for r in report.failed_requests] == [CDN_LEAFLET]
    assert "NAME_NOT_RESOLVED" in (report.failed_requests[0].failure or "")


def _vector_tile_page(vectorgrid_url: str | None = None) -> str:
    fmap = offline_map(static_url="/static", location=VT_CENTRE, zoom_start=VT_ZOOM, attribution=OSM_ATTRIBUTION)
    vector_tile_layer(
        "/tiles/{z}/{x}/{y}.pbf",
        name="premises",
        layer_styles={"premises": {"color": "#c00", "fill": True, "fillOpacity": 0.4}},
        popup_fields=["name", "category"],
        max_native_zoom=VT_ZOOM,
    ).add_to(fmap)
    html = fmap.get_root().render()
    if vectorgrid_url is not None:
        html = html.replace("/static/vendor/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js", vectorgrid_url)
    return html


def _click_map_centre(page, report: PageReport) -> None:
    box_ = page.locator(".folium-map").bounding_box()
    page.mouse.click(box_["x"] + box_["width"] / 2, box_["y"] + box_["height"] / 2)
    page.wait_for_timeout(300)


def test_clicking_a_vector_tile_feature_opens_its_popup_without_errors(server, browser) -> None:
    base, pages = server
    pages["/vt.html"] = _vector_tile_page().encode()
    report = browser.load_page(
        f"{base}/vt.html",
        wait_for_js="document.querySelectorAll('canvas.leaflet-tile-loaded').length > 0",
        interact=_click_map_centre,
        evaluate="(document.querySelector('.leaflet-popup-content') || {}).textContent || ''",
        screenshot=ARTIFACTS / "vector_tile_click.png",
    )
    assert report.ok, report.problems()
    assert "name: 星海网吧" in report.evaluated
    assert "category: internet_cafe" in report.evaluated
    tiles = [r for r in report.requests if "/tiles/" in r.url]
    assert any(f"/tiles/{VT_ZOOM}/{VT_TILE[0]}/{VT_TILE[1]}.pbf" in r.url and r.status == 200 for r in tiles)


def test_unpatched_vectorgrid_throws_on_click(server, browser) -> None:
    """The stock Leaflet.VectorGrid 1.3.0 calls the removed L.DomEvent.fakeStop: why we patch it."""
    base, pages = server
    pages["/vt-unpatched.html"] = _vector_tile_page("/unpatched/Leaflet.VectorGrid.bundled.min.js").encode()
    report = browser.load_page(
        f"{base}/vt-unpatched.html",
        wait_for_js="document.querySelectorAll('canvas.leaflet-tile-loaded').length > 0",
        interact=_click_map_centre,
        evaluate=None,
    )
    assert any("fakeStop" in err for err in report.page_errors), report.problems()
