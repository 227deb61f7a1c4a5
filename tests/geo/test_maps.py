"""Offline folium maps: no CDN link survives, every local asset exists, unknown CDNs are refused."""

from __future__ import annotations

import re
from pathlib import Path

import folium
import pytest
from branca.element import JavascriptLink
from folium.elements import JSCSSMixin
from folium.plugins import Fullscreen, MarkerCluster
from hypothesis import given
from hypothesis import strategies as st

from geo.errors import CoordinateError, InvalidInput
from geo.maps import (
    OSM_ATTRIBUTION,
    STATIC_DIR,
    VENDOR_DIR,
    external_urls,
    local_asset_paths,
    localise,
    offline_map,
    vector_tile_layer,
)

XINJIEKOU = (32.0418, 118.7784)
ZONE = {
    "type": "Feature",
    "properties": {"school": "金陵中学"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[118.776, 32.040], [118.780, 32.040], [118.780, 32.044], [118.776, 32.040]]],
    },
}


def _school_map(static_url: str = "/static") -> folium.Map:
    fmap = offline_map(static_url=static_url, location=XINJIEKOU, attribution=OSM_ATTRIBUTION)
    folium.GeoJson(ZONE, name="safety zone").add_to(fmap)
    cluster = MarkerCluster(name="premises").add_to(fmap)
    folium.Marker(XINJIEKOU, icon=folium.Icon(prefix="fa", icon="gamepad", color="red"), tooltip="星海网吧").add_to(
        cluster
    )
    vector_tile_layer("/tiles/premises/{z}/{x}/{y}.pbf", name="premises", popup_fields=["name"]).add_to(fmap)
    return fmap


def _css_refs(css_file: Path) -> list[Path]:
    """Files a stylesheet loads with url(...), resolved next to it (data: URIs skipped)."""
    refs = re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", css_file.read_text(encoding="utf-8"))
    return [(css_file.parent / ref).resolve() for ref in refs if not ref.startswith(("data:", "#"))]


def test_offline_map_has_no_external_url_and_every_asset_exists() -> None:
    html = _school_map().get_root().render()
    assert external_urls(html) == []
    paths = local_asset_paths(html, static_url="/static")
    names = {p.relative_to(VENDOR_DIR).as_posix() for p in paths}
    # the map, the awesome marker, the cluster and the vector tiles each pulled in their assets
    assert {
        "leaflet-1.9.4/leaflet.js",
        "fontawesome-free-6.2.0/css/all.min.css",
        "leaflet.awesome-markers-2.0.4/leaflet.awesome-markers.min.js",
        "leaflet.markercluster-1.5.3/leaflet.markercluster.js",
        "leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js",
    } <= names
    missing = [p for p in paths if not p.is_file()]
    assert missing == []
    # and so does everything the stylesheets load (webfonts, marker sprites, layer icons)
    css_missing = [ref for p in paths if p.suffix == ".css" for ref in _css_refs(p) if not ref.is_file()]
    assert css_missing == []
    assert "bootstrap-glyphicons" not in html


def test_plain_folium_map_is_reported_external() -> None:
    """The check bites: folium's defaults are CDN links."""
    html = folium.Map(location=XINJIEKOU, tiles=None).get_root().render()
    urls = external_urls(html)
    assert "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js" in urls
    assert "https://code.jquery.com/jquery-3.7.1.min.js" in urls


def test_folium_class_defaults_are_not_mutated() -> None:
    map_js, map_css = list(folium.Map.default_js), list(folium.Map.default_css)
    cluster_js = list(MarkerCluster.default_js)
    _school_map().get_root().render()
    assert folium.Map.default_js == map_js
    assert folium.Map.default_css == map_css
    assert MarkerCluster.default_js == cluster_js
    assert external_urls(folium.Map(tiles=None).get_root().render())  # a later plain map still uses CDNs


def test_static_url_prefix_is_used_verbatim_and_trailing_slash_ignored() -> None:
    html = _school_map("http://127.0.0.1:8000/static/").get_root().render()
    assert '<script src="http://127.0.0.1:8000/static/vendor/leaflet-1.9.4/leaflet.js">' in html
    assert "static//vendor" not in html


def test_localise_rewrites_a_plain_folium_map() -> None:
    fmap = folium.Map(location=XINJIEKOU, tiles=None)
    folium.Marker(XINJIEKOU, icon=folium.Icon(prefix="fa", icon="school")).add_to(fmap)
    cluster = MarkerCluster().add_to(folium.FeatureGroup(name="premises").add_to(fmap))
    folium.CircleMarker(XINJIEKOU, radius=5).add_to(cluster)
    localise(fmap, static_url="/static")
    html = fmap.get_root().render()
    assert external_urls(html) == []
    assert "/static/vendor/leaflet.markercluster-1.5.3/MarkerCluster.Default.css" in html


def test_localise_rewrites_links_already_in_the_header() -> None:
    fmap = folium.Map(tiles=None)
    fmap.get_root().header.add_child(
        JavascriptLink("https://unpkg.com/leaflet.markercluster@1.5.3/dist/leaflet.markercluster.js"),
        name="mc",
    )
    localise(fmap.get_root(), static_url="/static")
    assert external_urls(fmap.get_root().render()) == []


class _ChartPlugin(JSCSSMixin):
    default_js = [("chart", "https://cdn.example.com/chart@4.0.0/chart.min.js")]


def test_localise_refuses_an_unknown_cdn_script_and_changes_nothing() -> None:
    fmap = folium.Map(tiles=None)
    _ChartPlugin().add_to(fmap)
    with pytest.raises(ValueError, match=re.escape("https://cdn.example.com/chart@4.0.0/chart.min.js")):
        localise(fmap, static_url="/static")
    assert "default_js" not in vars(fmap)  # the map was not half-rewritten


def test_offline_map_refuses_a_plugin_added_later_when_rendering() -> None:
    fmap = _school_map()
    Fullscreen().add_to(fmap)  # loads leaflet.fullscreen from a CDN we do not vendor
    with pytest.raises(ValueError, match="fullscreen"):
        fmap.get_root().render()


def test_localise_refuses_glyphicon_icons() -> None:
    fmap = offline_map(static_url="/static", location=XINJIEKOU)
    folium.Marker(XINJIEKOU, icon=folium.Icon(icon="info-sign")).add_to(fmap)
    with pytest.raises(ValueError, match=r'prefix="fa".*info-sign'):
        fmap.get_root().render()


def test_localise_refuses_another_major_version() -> None:
    fmap = folium.Map(tiles=None)
    fmap.get_root().header.add_child(JavascriptLink("https://cdn.jsdelivr.net/npm/leaflet@2.0.0/dist/leaflet.js"))
    with pytest.raises(ValueError, match=re.escape("leaflet@2.0.0")):
        localise(fmap, static_url="/static")


def test_attribution_credits_openstreetmap() -> None:
    html = _school_map().get_root().render()
    assert "attributionControl.addAttribution(" in html
    assert "https://www.openstreetmap.org/copyright" in html  # the link text is JSON-escaped
    assert "OpenStreetMap\\u003c/a\\u003e contributors" in html


def test_vector_tile_popup_shows_properties_as_text() -> None:
    layer = vector_tile_layer("/tiles/{z}/{x}/{y}.pbf", name="premises", popup_fields=["name", "类别"])
    fmap = offline_map(static_url="/static", location=XINJIEKOU)
    layer.add_to(fmap)
    html = fmap.get_root().render()
    assert 'var fields = ["name", "类别"]' in html
    assert "textContent" in html and "innerHTML" not in html
    assert "L.canvas.tile" in html


@pytest.mark.parametrize(
    ("location", "fragment"),
    [
        ((118.7784, 32.0418), "looks like (longitude, latitude)"),
        ((float("nan"), 118.0), "finite"),
        ((32.0,), "pair"),
        ((95.0, 200.0), "out of range"),
    ],
)
def test_bad_location_names_the_value(location: tuple[float, ...], fragment: str) -> None:
    with pytest.raises(CoordinateError) as info:
        offline_map(static_url="/static", location=location)
    assert fragment in info.value.message_en
    assert info.value.field == "location"
    assert info.value.value == location
    assert info.value.message_zh != info.value.message_en


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"static_url": ""}, "static_url"),
        ({"static_url": "/"}, "static_url"),
        ({"static_url": "/static", "tiles": "OpenStreetMap"}, "tiles"),
        ({"static_url": "/static", "zoom_start": 25}, "zoom_start"),
        ({"static_url": "/static", "zoom_start": 3, "min_zoom": 5}, "zoom_start"),
    ],
)
def test_bad_options_are_refused(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        offline_map(**kwargs)
    assert info.value.field == field
    assert repr(info.value.value) in info.value.message_en


def test_external_urls_kinds_of_reference() -> None:
    html = """
    <link rel="stylesheet" href="https://cdn.example.com/a.css">
    <script src='//cdn.example.com/b.js'></script>
    <script src="http://127.0.0.1:8000/static/c.js"></script>
    <script src="http://localhost/d.js"></script><script src="http://[::1]:8080/e.js"></script>
    <div style="background: url(&quot;https://tiles.example.com/f.png&quot;)"></div>
    <a href="https://www.openstreetmap.org/copyright">OSM</a>
    <script src="/static/vendor/leaflet-1.9.4/leaflet.js"></script>
    <link rel="stylesheet" href="https://cdn.example.com/a.css">
    """
    assert external_urls(html) == [
        "https://cdn.example.com/a.css",
        "//cdn.example.com/b.js",
        "https://tiles.example.com/f.png",
    ]


def test_external_urls_looks_inside_popup_iframes() -> None:
    fmap = offline_map(static_url="/static", location=XINJIEKOU)
    popup = folium.Popup(folium.IFrame('<img src="https://img.example.com/shop.jpg">', width=200, height=100))
    folium.Marker(XINJIEKOU, icon=folium.Icon(prefix="fa", icon="store"), popup=popup).add_to(fmap)
    assert external_urls(fmap.get_root().render()) == ["https://img.example.com/shop.jpg"]


_hosts = st.sampled_from(["cdn.example.com", "127.0.0.1", "localhost", "10.0.0.5", "127.8.9.1", "gis.gov.cn"])
_paths = st.text(alphabet="abcdefghij/-_.", min_size=1, max_size=12)


@given(st.lists(st.tuples(st.sampled_from(["http", "https"]), _hosts, _paths), max_size=8))
def test_external_urls_reports_exactly_the_non_loopback_scripts(refs: list[tuple[str, str, str]]) -> None:
    urls = [f"{scheme}://{host}/{path}" for scheme, host, path in refs]
    html = "".join(f'<script src="{url}"></script>' for url in urls)
    expected = [url for url, (_, host, _) in zip(urls, refs, strict=True) if not host.startswith(("127.", "localhost"))]
    assert external_urls(html) == list(dict.fromkeys(expected))


def test_vendored_assets_are_small_licensed_and_patched() -> None:
    files = [p for p in VENDOR_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3_000_000
    for package in VENDOR_DIR.iterdir():
        if package.name != "leaflet.awesome.rotate":  # our own few lines of CSS
            assert any("LICEN" in p.name.upper() for p in package.iterdir()), package.name
    vectorgrid = (VENDOR_DIR / "leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js").read_text()
    assert "fakeStop" not in vectorgrid
    assert (STATIC_DIR / "VENDOR.md").is_file()
