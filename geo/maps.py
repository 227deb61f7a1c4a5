"""Folium maps that work offline: every script, stylesheet, image and font comes from our own server.

folium's default HTML loads Leaflet, jQuery, Bootstrap, Font Awesome and Leaflet.awesome-markers
from public CDNs, so on a government intranet the map is blank. The copies served here live in
``data/static/vendor/`` (see ``data/static/VENDOR.md`` and ``scripts/vendor-assets.sh``); the app mounts
``data/static`` at a URL prefix (``static_url``, e.g. ``"/static"``).

* :func:`offline_map` builds a :class:`folium.Map` without an external basemap whose assets point at
  the vendored copies, and re-checks the whole element tree every time it renders.
* :func:`localise` rewrites the asset links of any folium element tree (map, plugins, icons) and
  refuses any external link it does not know, so a new plugin cannot silently add a CDN.
* :func:`external_urls` lists the non-loopback http(s) URLs an HTML page would load.
* :func:`vector_tile_layer` draws Mapbox vector tiles (e.g. from ``ST_AsMVT``) with the patched
  Leaflet.VectorGrid, on canvas, with popups that show feature properties as text.

Icons must use Font Awesome (``folium.Icon(prefix="fa")``): the Bootstrap 3 glyphicons folium uses by
default are not vendored, and :func:`localise` rejects them.
"""

from __future__ import annotations

import base64
import binascii
import html as html_lib
import ipaddress
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

import folium
from branca.element import Element, Link, MacroElement
from folium.plugins import VectorGridProtobuf
from folium.utilities import JsCode

from geo.errors import CoordinateError, InvalidInput

__all__ = [
    "OSM_ATTRIBUTION",
    "STATIC_DIR",
    "VENDOR_DIR",
    "OfflineMap",
    "external_urls",
    "local_asset_paths",
    "localise",
    "offline_map",
    "vector_tile_layer",
]

STATIC_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "data" / "static"
"""The folder the app serves at ``static_url``."""

VENDOR_DIR: Final[Path] = STATIC_DIR / "vendor"
"""The vendored front-end assets (a sub-folder of :data:`STATIC_DIR`)."""

OSM_ATTRIBUTION: Final[str] = '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
"""The attribution OpenStreetMap's licence requires wherever OSM data shows."""


@dataclass(frozen=True)
class _Asset:
    """One vendored file and the external URLs it replaces."""

    pattern: re.Pattern[str]
    path: str | None  # relative to VENDOR_DIR; None: the link is dropped (glyphicons)


def _asset(pattern: str, path: str | None) -> _Asset:
    return _Asset(re.compile(pattern, re.IGNORECASE), path)


# Known CDN links (folium 0.20 defaults, its plugins, and the same files on other CDNs), matched on
# the path with the major version pinned: a CDN link to another major version is refused, not guessed.
_ASSETS: Final[tuple[_Asset, ...]] = (
    _asset(r"/leaflet[@/]1\.\d+\.\d+/(dist/)?leaflet\.js$", "leaflet-1.9.4/leaflet.js"),
    _asset(r"/leaflet[@/]1\.\d+\.\d+/(dist/)?leaflet\.css$", "leaflet-1.9.4/leaflet.css"),
    _asset(r"/jquery-3\.\d+\.\d+(\.min)?\.js$", "jquery-3.7.1/jquery.min.js"),
    _asset(r"/jquery[@/]3\.\d+\.\d+/(dist/)?jquery(\.min)?\.js$", "jquery-3.7.1/jquery.min.js"),
    _asset(
        r"/bootstrap[@/]5\.\d+\.\d+/(dist/)?(js/)?bootstrap\.bundle(\.min)?\.js$",
        "bootstrap-5.2.2/bootstrap.bundle.min.js",
    ),
    _asset(
        r"/bootstrap[@/]5\.\d+\.\d+/(dist/)?(css/)?bootstrap(\.min)?\.css$",
        "bootstrap-5.2.2/bootstrap.min.css",
    ),
    _asset(r"/bootstrap-glyphicons\.css$", None),
    _asset(
        r"/(fontawesome-free@|font-awesome/)6\.\d+\.\d+/css/all(\.min)?\.css$",
        "fontawesome-free-6.2.0/css/all.min.css",
    ),
    _asset(
        r"/(leaflet\.awesome-markers[@/])2\.0\.\d+/(dist/)?leaflet\.awesome-markers(\.min)?\.js$",
        "leaflet.awesome-markers-2.0.4/leaflet.awesome-markers.min.js",
    ),
    _asset(
        r"/(leaflet\.awesome-markers[@/])2\.0\.\d+/(dist/)?leaflet\.awesome-markers(\.min)?\.css$",
        "leaflet.awesome-markers-2.0.4/leaflet.awesome-markers.css",
    ),
    _asset(
        r"/leaflet\.awesome\.rotate(\.min)?\.css$",
        "leaflet.awesome.rotate/leaflet.awesome.rotate.min.css",
    ),
    _asset(
        r"/leaflet\.markercluster[@/]1\.\d+\.\d+/(dist/)?leaflet\.markercluster(-src)?\.js$",
        "leaflet.markercluster-1.5.3/leaflet.markercluster.js",
    ),
    _asset(
        r"/leaflet\.markercluster[@/]1\.\d+\.\d+/(dist/)?MarkerCluster\.css$",
        "leaflet.markercluster-1.5.3/MarkerCluster.css",
    ),
    _asset(
        r"/leaflet\.markercluster[@/]1\.\d+\.\d+/(dist/)?MarkerCluster\.Default\.css$",
        "leaflet.markercluster-1.5.3/MarkerCluster.Default.css",
    ),
    _asset(
        r"/leaflet\.vectorgrid@(latest|1\.3\.\d+)/dist/Leaflet\.VectorGrid(\.bundled)?(\.min)?\.js$",
        "leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js",
    ),
)

# What a page loads: <script src>, <link href>, <img|iframe|source|embed src>, CSS url(...).
_RESOURCE_RES: Final = (
    re.compile(r"<script\b[^>]*?\bsrc\s*=\s*([\"'])(?P<url>.*?)\1", re.IGNORECASE | re.DOTALL),
    re.compile(r"<link\b[^>]*?\bhref\s*=\s*([\"'])(?P<url>.*?)\1", re.IGNORECASE | re.DOTALL),
    re.compile(
        r"<(?:img|iframe|source|embed|audio|video)\b[^>]*?\bsrc\s*=\s*([\"'])(?P<url>.*?)\1",
        re.IGNORECASE | re.DOTALL,
    ),
    re.compile(r"url\(\s*([\"']?)(?P<url>[^\"')]*?)\1\s*\)", re.IGNORECASE),
    re.compile(r"@import\s+([\"'])(?P<url>.*?)\1", re.IGNORECASE),
)
_DATA_HTML_RE: Final = re.compile(r"^data:text/html[^,]*?(?P<b64>;base64)?,(?P<body>.*)$", re.DOTALL)


class OfflineMap(folium.Map):
    """A :class:`folium.Map` that calls :func:`localise` on its whole element tree before rendering.

    Build it with :func:`offline_map`. Plugins added after construction (``MarkerCluster``,
    ``VectorGridProtobuf``, ...) are rewritten to the vendored copies when the map renders; an
    unknown external asset makes rendering fail with a ``ValueError`` instead of shipping a CDN link.
    """

    def __init__(self, *, static_url: str, **kwargs: Any) -> None:
        self.static_url = _check_static_url(static_url)
        super().__init__(**kwargs)

    def render(self, **kwargs: Any) -> Any:
        localise(self, static_url=self.static_url)
        return super().render(**kwargs)


def offline_map(
    *,
    static_url: str,
    location: tuple[float, float] | None = None,
    zoom_start: int = 13,
    min_zoom: int = 0,
    max_zoom: int = 19,
    attribution: str | None = None,
    **kwargs: Any,
) -> folium.Map:
    """Create a folium map whose every asset is served by our app, with no external basemap.

    Parameters
    ----------
    static_url
        The URL prefix at which the app serves ``data/static`` (``"/static"``, or an absolute URL on
        the intranet server); the assets are loaded from ``f"{static_url}/vendor/..."``.
    location
        The initial centre as ``(latitude, longitude)`` in WGS84 degrees; ``None`` lets the caller fit
        bounds later.
    zoom_start
        The initial zoom level, 0 to 24.
    min_zoom, max_zoom
        The zoom range of the map itself (without a tile layer Leaflet has none, and
        ``MarkerCluster`` refuses to work without ``max_zoom``).
    attribution
        HTML added to the map's attribution control, e.g. :data:`OSM_ATTRIBUTION` wherever OSM data
        shows. It is trusted HTML: never pass user input.
    **kwargs
        Passed to :class:`folium.Map`, except ``tiles``: the map has no raster basemap (add our own
        vector tiles with :func:`vector_tile_layer`, or a ``folium.TileLayer`` explicitly).

    Returns
    -------
    folium.Map
        An :class:`OfflineMap`.

    Raises
    ------
    CoordinateError
        If ``location`` is not a finite ``(lat, lon)`` pair in range (with a hint when swapped).
    InvalidInput
        If ``static_url`` is empty, ``zoom_start`` is out of range, or ``tiles`` is passed.
    """
    if "tiles" in kwargs:
        msg = (
            f"offline_map() draws no external basemap; got tiles={kwargs['tiles']!r}. "
            "Add a folium.TileLayer explicitly if an approved tile server is reachable."
        )
        raise InvalidInput(
            msg,
            message_zh=(
                f"离线地图不加载外部底图，收到 tiles={kwargs['tiles']!r}；如有经批准的瓦片服务，请显式添加 TileLayer。"
            ),
            field="tiles",
            value=kwargs["tiles"],
        )
    if location is not None:
        location = _check_location(location)
    for field, zoom in (("zoom_start", zoom_start), ("min_zoom", min_zoom), ("max_zoom", max_zoom)):
        if isinstance(zoom, bool) or not isinstance(zoom, int) or not 0 <= zoom <= 24:
            msg = f"{field} must be an integer from 0 to 24, got {zoom!r}"
            raise InvalidInput(
                msg, message_zh=f"{field} 必须是 0 到 24 之间的整数，收到 {zoom!r}", field=field, value=zoom
            )
    if not min_zoom <= zoom_start <= max_zoom:
        msg = f"zoom_start={zoom_start} must lie within min_zoom={min_zoom} and max_zoom={max_zoom}"
        raise InvalidInput(
            msg,
            message_zh=f"zoom_start={zoom_start} 必须介于 min_zoom={min_zoom} 与 max_zoom={max_zoom} 之间",
            field="zoom_start",
            value=zoom_start,
        )
    fmap = OfflineMap(
        static_url=static_url,
        location=list(location) if location is not None else None,
        zoom_start=zoom_start,
        tiles=None,
        **kwargs,
    )
    fmap.options.update(min_zoom=min_zoom, max_zoom=max_zoom)
    if attribution:
        _Attribution(attribution).add_to(fmap)
    localise(fmap, static_url=fmap.static_url)
    return fmap


def localise(fig_or_map: Element, *, static_url: str) -> None:
    """Point every asset link of a folium element tree at the vendored copies, in place.

    Walks the whole tree from the root figure (the map, its plugins such as ``MarkerCluster``,
    ``FeatureGroup`` children, icons, and links already in the figure header). ``default_js`` /
    ``default_css`` are overridden on each instance: folium's class-level lists, shared by the whole
    process, are left untouched. Local links (relative, or already under ``static_url``, or on
    loopback) are kept; the Bootstrap 3 glyphicons stylesheet is dropped.

    Parameters
    ----------
    fig_or_map
        A ``folium.Map``, a ``branca.element.Figure`` or any element attached to one.
    static_url
        The URL prefix at which the app serves ``data/static``.

    Raises
    ------
    ValueError
        Naming every external URL that has no vendored copy, or every icon that uses glyphicons
        (use ``folium.Icon(prefix="fa")``). Nothing is changed when it raises.
    """
    base = f"{_check_static_url(static_url)}/vendor/"
    root = fig_or_map.get_root() if hasattr(fig_or_map, "get_root") else fig_or_map
    changes: list[tuple[Element, str, Any]] = []
    unknown: list[str] = []
    glyph_icons: list[str] = []
    for element in _walk(root):
        if isinstance(element, folium.Icon) and element.options.get("prefix", "glyphicon") == "glyphicon":
            glyph_icons.append(f"{element.get_name()} (icon={element.options.get('icon')!r})")
        for attr in ("default_js", "default_css"):
            links = getattr(element, attr, None)
            if not links:
                continue
            new_links = []
            for name, url in links:
                new_url = _map_url(url, base=base, unknown=unknown)
                if new_url is not None:
                    new_links.append((name, new_url))
            if new_links != list(links):
                changes.append((element, attr, new_links))
        if isinstance(element, Link):
            new_url = _map_url(element.url, base=base, unknown=unknown)
            if new_url != element.url:
                # a dropped link (glyphicons) already in the header becomes an empty element
                changes.append((element, "url", new_url))
    if unknown or glyph_icons:
        parts = []
        if unknown:
            parts.append(
                "external asset URLs with no vendored copy (vendor them in scripts/vendor-assets.sh "
                f"and geo/maps.py): {sorted(set(unknown))}"
            )
        if glyph_icons:
            parts.append(f'glyphicon icons are not available offline, use folium.Icon(prefix="fa"): {glyph_icons}')
        msg = "; ".join(parts)
        raise ValueError(msg)
    for element, attr, value in changes:
        if attr == "url" and value is None:  # a dropped link (glyphicons): render nothing
            element._template = _EMPTY_TEMPLATE
            setattr(element, "url", "")  # noqa: B010
        else:
            setattr(element, attr, value)


def external_urls(html: str) -> list[str]:
    """List the http(s) URLs, other than loopback, that a page would load.

    Looks at ``<script src>``, ``<link href>``, ``<img>``/``<iframe>``/media ``src``, CSS ``url(...)``
    and ``@import``, including inside folium's base64 ``data:text/html`` iframes (popups).
    Protocol-relative URLs (``//cdn...``) count as external. Links the user follows (``<a href>``) are
    not loads and are not listed.

    Parameters
    ----------
    html
        The rendered page.

    Returns
    -------
    list of str
        The URLs in order of first appearance, without duplicates.
    """
    seen: dict[str, None] = {}
    for url in _resource_urls(html, depth=0):
        if _is_external(url):
            seen.setdefault(url, None)
    return list(seen)


def local_asset_paths(html: str, *, static_url: str) -> list[Path]:
    """The files under :data:`STATIC_DIR` that a page loads through ``static_url``.

    Parameters
    ----------
    html
        The rendered page.
    static_url
        The URL prefix at which the app serves ``data/static``.

    Returns
    -------
    list of pathlib.Path
        One path per distinct URL under ``static_url`` (whether or not the file exists).
    """
    prefix = f"{_check_static_url(static_url)}/"
    paths: dict[Path, None] = {}
    for url in _resource_urls(html, depth=0):
        if url.startswith(prefix):
            rel = unquote(urlsplit(url[len(prefix) :]).path)
            paths.setdefault(STATIC_DIR / rel, None)
    return list(paths)


def vector_tile_layer(
    url: str,
    *,
    name: str,
    layer_styles: Mapping[str, Mapping[str, Any]] | None = None,
    popup_fields: Sequence[str] = (),
    renderer: Literal["canvas", "svg"] = "canvas",
    max_native_zoom: int | None = None,
    attribution: str | None = None,
) -> VectorGridProtobuf:
    """A Mapbox vector tile layer (``{z}/{x}/{y}`` protobuf, e.g. from ``ST_AsMVT``).

    Uses the vendored, patched Leaflet.VectorGrid (:func:`localise` maps its CDN link). Clicking a
    feature opens a popup listing ``popup_fields`` of its properties as plain text (never HTML).

    Parameters
    ----------
    url
        The tile URL template, e.g. ``"/tiles/premises/{z}/{x}/{y}.pbf"``.
    name
        The layer's name in a layer control.
    layer_styles
        Leaflet path options per MVT layer name, e.g. ``{"premises": {"color": "#c00", "radius": 4}}``.
    popup_fields
        Feature properties shown on click, in this order; none: no popup.
    renderer
        ``"canvas"`` (fast, for many features) or ``"svg"``.
    max_native_zoom
        The highest zoom the server makes tiles for; Leaflet scales them beyond it.
    attribution
        HTML for the attribution control (e.g. :data:`OSM_ATTRIBUTION`).

    Returns
    -------
    folium.plugins.VectorGridProtobuf
        Add it to an :func:`offline_map`.
    """
    if renderer not in ("canvas", "svg"):
        msg = f"renderer must be 'canvas' or 'svg', got {renderer!r}"
        raise InvalidInput(
            msg,
            message_zh=f"renderer 必须是 'canvas' 或 'svg'，收到 {renderer!r}",
            field="renderer",
            value=renderer,
        )
    options: dict[str, Any] = {
        "rendererFactory": JsCode(f"L.{renderer}.tile"),
        "interactive": True,
        "vectorTileLayerStyles": {key: dict(val) for key, val in (layer_styles or {}).items()},
    }
    if max_native_zoom is not None:
        options["maxNativeZoom"] = max_native_zoom
    if attribution:
        options["attribution"] = attribution
    layer = VectorGridProtobuf(url, name=name, options=options, overlay=True)
    if popup_fields:
        fields = json.dumps(list(popup_fields), ensure_ascii=False)
        layer.on(
            click=JsCode(
                "function (e) {"
                f" var fields = {fields}; var props = (e.layer && e.layer.properties) || {{}};"
                " var box = document.createElement('div'); box.className = 'safezone-feature';"
                " fields.forEach(function (f) { if (props[f] === undefined) { return; }"
                "  var row = document.createElement('div'); row.textContent = f + ': ' + props[f];"
                "  box.appendChild(row); });"
                " L.popup().setLatLng(e.latlng).setContent(box).openOn(this._map); }"
            )
        )
    return layer


# --- helpers -------------------------------------------------------------------------------------


class _Attribution(MacroElement):
    """Adds trusted HTML to the parent map's attribution control."""

    _template = folium.template.Template(
        """
        {% macro script(this, kwargs) %}
        if ({{ this._parent.get_name() }}.attributionControl) {
            {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text|tojson }});
        }
        {% endmacro %}
        """
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Attribution"
        self.text = text


_EMPTY_TEMPLATE: Final = folium.template.Template("")


def _check_static_url(static_url: str) -> str:
    if not isinstance(static_url, str) or not static_url.strip("/ ") or static_url != static_url.strip():
        msg = f"static_url must be the URL prefix serving data/static, such as '/static'; got {static_url!r}"
        raise InvalidInput(
            msg,
            message_zh=f"static_url 必须是提供 data/static 的 URL 前缀（如 '/static'），收到 {static_url!r}",
            field="static_url",
            value=static_url,
        )
    return static_url.rstrip("/")


def _check_location(location: Sequence[float]) -> tuple[float, float]:
    try:
        lat, lon = (float(v) for v in location)
    except (TypeError, ValueError):
        msg = f"location must be a (latitude, longitude) pair of numbers, got {location!r}"
        raise CoordinateError(
            msg,
            message_zh=f"location 必须是（纬度, 经度）两个数字，收到 {location!r}",
            field="location",
            value=location,
        ) from None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        msg = f"location must be finite, got {location!r}"
        raise CoordinateError(
            msg, message_zh=f"location 必须是有限数值，收到 {location!r}", field="location", value=location
        )
    if abs(lat) > 90 or abs(lon) > 180:
        hint = " — it looks like (longitude, latitude); pass (latitude, longitude)" if abs(lon) <= 90 else ""
        hint_zh = "，看起来是（经度, 纬度），请按（纬度, 经度）传入" if abs(lon) <= 90 else ""
        msg = f"location {location!r} is out of range: latitude -90..90, longitude -180..180{hint}"
        raise CoordinateError(
            msg,
            message_zh=f"location {location!r} 超出范围：纬度 -90 到 90，经度 -180 到 180{hint_zh}",
            field="location",
            value=location,
        )
    return lat, lon


def _walk(element: Element) -> Iterator[Element]:
    """Every element of a branca tree, once each, including a figure's header, html and script."""
    seen: set[int] = set()
    stack = [element]
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen.add(id(el))
        yield el
        stack.extend(el._children.values())
        for attr in ("header", "html", "script"):
            child = getattr(el, attr, None)
            if isinstance(child, Element):
                stack.append(child)


def _map_url(url: str, *, base: str, unknown: list[str]) -> str | None:
    """The vendored URL for ``url``; ``url`` itself when local; ``None`` when it is dropped."""
    if not _is_external(url):
        return url
    path = urlsplit(url if not url.startswith("//") else f"https:{url}").path
    for asset in _ASSETS:
        if asset.pattern.search(path):
            return None if asset.path is None else base + asset.path
    unknown.append(url)
    return url


def _is_external(url: str) -> bool:
    url = url.strip()
    lowered = url.lower()
    if lowered.startswith("//"):
        lowered = "https:" + lowered
    if not lowered.startswith(("http://", "https://")):
        return False
    host = urlsplit(lowered).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _resource_urls(html: str, *, depth: int) -> Iterator[str]:
    """Every referenced resource URL, in document order (data: HTML iframes expanded in place)."""
    found = sorted(
        (match.start(), html_lib.unescape(match.group("url")).strip().strip("\"'").strip())
        for regex in _RESOURCE_RES
        for match in regex.finditer(html)
    )
    for _, url in found:
        data = _DATA_HTML_RE.match(url)
        if data is None:
            yield url
        elif depth < 3:
            yield from _resource_urls(_decode_data_html(data), depth=depth + 1)


def _decode_data_html(match: re.Match[str]) -> str:
    body = match.group("body")
    if not match.group("b64"):
        return unquote(body)
    try:
        return base64.b64decode(unquote(body), validate=False).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""
