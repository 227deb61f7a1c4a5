"""Map pages (folium, served offline) and what their tiles and routes need.

* :func:`page_access` — the dependency pages and tiles declare: a token from ``Authorization: Bearer``
  **or** the ``?token=`` query parameter (a browser address bar cannot send headers); the page passes
  the same token on to its tile and API requests.
* :func:`zone_specs` — which zones to draw around each campus: one per distinct distance of the rules
  in force in its district that protect its levels.
* :func:`city_page`, :func:`school_page` — the HTML, built with :mod:`geo.maps` (every asset vendored,
  the default basemap drawn from our own ``streets`` tiles) plus ``/static/app/map.js`` and ``map.css``
  (legend, search box, district filter, print stylesheet).

Tianditu (天地图 ``vec_w``/``cva_w``) is an option only when ``SAFEZONE_TIANDITU_KEY`` is set and the page
asks ``?basemap=tianditu``. Tianditu is CGCS2000 (≈ WGS84 to about a metre): our WGS84 overlays need
no shift. A GCJ-02 basemap (Amap, Tencent) is never offered: WGS84 overlays would sit 500 m off.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote, urlencode

import folium
import numpy as np
import shapely
from branca.element import CssLink, Element, JavascriptLink
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from folium.utilities import JsCode
from shapely.geometry import LineString, Point, shape

from geo.errors import InvalidInput
from geo.maps import OSM_ATTRIBUTION, offline_map, vector_tile_layer
from geo.measure import LocalMetricFrame, distance_to_gates, distance_to_outline
from geo.rules import Rule, RuleRegistry
from service.auth import POLICY
from storage.access import TokenInfo, lookup_token
from storage.tiles import CampusInTile, ZoneSpec

Lang = Literal["zh", "en"]
STATIC_URL: Final = "/static"
ZONE_MARGIN_M: Final = 50.0
"""The school page lists premises within the largest zone distance plus this margin."""
TIANDITU_LAYERS: Final = ("vec", "cva")

_bearer = HTTPBearer(auto_error=False, description="API token; map pages also accept ?token=")


def page_access(permission: str) -> Callable[..., TokenInfo]:
    """A dependency letting through tokens whose role holds ``permission``, from header or ``?token=``."""
    allowed = POLICY[permission]

    def _check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        token: Annotated[
            str | None,
            Query(description="the API token, for browsers (an address bar cannot send a header)", max_length=200),
        ] = None,
    ) -> TokenInfo:
        clear = credentials.credentials if credentials is not None and credentials.credentials else token
        if not clear:
            raise HTTPException(401, "a bearer token or ?token= is required", headers={"WWW-Authenticate": "Bearer"})
        with request.app.state.sessionmaker() as session:
            info = lookup_token(session, clear)
        if info is None:
            raise HTTPException(
                401, "the token is not valid or has been revoked", headers={"WWW-Authenticate": "Bearer"}
            )
        if info.role not in allowed:
            raise HTTPException(403, f"role {info.role!r} may not {permission}")
        request.state.token = info
        request.state.clear_token = clear
        return info

    _check.permission = permission  # type: ignore[attr-defined]
    return _check


def may_read_names(token: TokenInfo) -> bool:
    """Trader names are personal data: only roles with ``read:premises`` see them."""
    return token.role in POLICY["read:premises"]


# --- zones ---------------------------------------------------------------------------------------


def applies_to_levels(rule: Rule, levels: Iterable[str]) -> bool:
    """A rule protects a campus of these levels (no known level: protected by every rule)."""
    levels = set(levels)
    return not levels or bool(levels & set(rule.levels))


def zone_rules(registry: RuleRegistry, district: str | None, levels: Iterable[str]) -> list[Rule]:
    """The rules in force in ``district`` protecting ``levels`` that have a fixed distance."""
    levels = tuple(levels)
    return [r for r in registry.in_force(district).rules if r.distance_m is not None and applies_to_levels(r, levels)]


def zone_specs(registry: RuleRegistry, campuses: Sequence[CampusInTile]) -> list[ZoneSpec]:
    """One zone per campus and distinct (distance, measured from) pair, naming the rules it stands for."""
    cache: dict[tuple[str | None, tuple[str, ...]], list[Rule]] = {}
    specs: list[ZoneSpec] = []
    for campus in campuses:
        key = (campus.district, campus.levels)
        if key not in cache:
            cache[key] = zone_rules(registry, campus.district, campus.levels)
        groups: dict[tuple[float, str], list[str]] = {}
        for rule in cache[key]:
            source = rule.measure_from if campus.has_gates else "boundary"
            groups.setdefault((float(rule.distance_m or 0.0), source), []).append(rule.id)
        specs.extend(
            ZoneSpec(campus.campus_id, d, source, ",".join(sorted(ids))) for (d, source), ids in sorted(groups.items())
        )
    return specs


# --- page text -------------------------------------------------------------------------------------

_TEXT: Final[dict[str, dict[str, str]]] = {
    "zh": {
        "city_title": "学生安全区域 · 城市总览",
        "school_title": "学生安全区域 · {name}",
        "streets": "街道（底图）",
        "districts": "行政区",
        "zones": "安全区域",
        "schools": "学校",
        "gates": "校门",
        "premises": "经营场所",
        "assets": "警务室 · 即停即走 · 水域",
        "findings": "排查发现（最近一次扫描）",
        "search": "搜索学校或场所名称…",
        "all_districts": "全部行政区",
        "legend": "图例",
        "no_results": "无结果",
        "campus": "校区",
        "zone": "{rule}：{distance:g} 米（自{from_}）",
        "from_boundary": "校园边界",
        "from_gates": "校门",
        "measured": "测量线",
        "distance_boundary": "距校园边界 {d:.1f} 米",
        "distance_gate": "距最近校门 {d:.1f} 米",
        "inside": "在区域内：{rules}",
        "outside": "不在任何区域内",
        "warnings": "提示",
        "premises_count": "{n} 处经营场所（{radius:g} 米范围内）",
        "aggregated": "缩放级别 < 14：按网格计数",
        "tianditu": "天地图",
    },
    "en": {
        "city_title": "Student safety zones · city overview",
        "school_title": "Student safety zones · {name}",
        "streets": "Streets (basemap)",
        "districts": "Districts",
        "zones": "Safety zones",
        "schools": "Schools",
        "gates": "Gates",
        "premises": "Premises",
        "assets": "Police posts · drop-off lanes · water",
        "findings": "Findings (latest scan)",
        "search": "Search a school or premises name…",
        "all_districts": "All districts",
        "legend": "Legend",
        "no_results": "No results",
        "campus": "Campus",
        "zone": "{rule}: {distance:g} m (from the {from_})",
        "from_boundary": "campus boundary",
        "from_gates": "gates",
        "measured": "Measured lines",
        "distance_boundary": "{d:.1f} m from the campus boundary",
        "distance_gate": "{d:.1f} m from the nearest gate",
        "inside": "Inside the zone of: {rules}",
        "outside": "In no zone",
        "warnings": "Warnings",
        "premises_count": "{n} premises within {radius:g} m",
        "aggregated": "zoom < 14: counts per grid cell",
        "tianditu": "Tianditu",
    },
}
LEVEL_NAMES: Final = {
    "kindergarten": ("幼儿园", "Kindergarten"),
    "primary": ("小学", "Primary"),
    "junior": ("初中", "Junior secondary"),
    "senior": ("高中", "Senior secondary"),
    "vocational": ("中职", "Vocational"),
    "special": ("特教", "Special education"),
    "unknown": ("学段未知", "Level unknown"),
}
LEVEL_COLOURS: Final = {
    "kindergarten": "#e377c2",
    "primary": "#1f77b4",
    "junior": "#2ca02c",
    "senior": "#9467bd",
    "vocational": "#8c564b",
    "special": "#17becf",
    "unknown": "#7f7f7f",
}
CATEGORY_NAMES: Final = {
    "internet_cafe": ("网吧", "Internet café"),
    "entertainment": ("娱乐场所", "Entertainment"),
    "bar": ("酒吧", "Bar"),
    "lottery": ("彩票", "Lottery"),
    "tobacco": ("烟草", "Tobacco"),
    "alcohol": ("酒类", "Alcohol"),
    "food_stall": ("食品摊贩", "Food stalls"),
    "polluter": ("污染企业", "Polluter"),
    "hazardous": ("危险品", "Hazardous"),
    "other": ("其他", "Other"),
}
CATEGORY_COLOURS: Final = {
    "internet_cafe": "#d62728",
    "entertainment": "#ff7f0e",
    "bar": "#bcbd22",
    "lottery": "#e6550d",
    "tobacco": "#8c564b",
    "alcohol": "#9467bd",
    "food_stall": "#fdae6b",
    "polluter": "#636363",
    "hazardous": "#000000",
    "other": "#969696",
}
FINDING_COLOURS: Final = {
    "violation": "#a50f15",
    "unlicensed": "#54278f",
    "nonconforming": "#e6550d",
    "review": "#3182bd",
}
FINDING_NAMES: Final = {
    "violation": ("违规", "Violation"),
    "unlicensed": ("无证经营", "Unlicensed"),
    "nonconforming": ("既有不符（到期不续）", "Nonconforming"),
    "review": ("待复核", "Review"),
}
ASSET_COLOURS: Final = {"police_post": "#08519c", "dropoff_lane": "#ff9900", "water": "#6baed6", "waterway": "#6baed6"}
ASSET_NAMES: Final = {
    "police_post": ("警务室", "Police post"),
    "dropoff_lane": ("即停即走", "Drop-off lane"),
    "water": ("水域", "Water"),
    "waterway": ("河道", "Waterway"),
}


def _name(table: dict[str, tuple[str, str]], key: str, lang: Lang) -> str:
    zh, en = table.get(key, (key, key))
    return zh if lang == "zh" else en


# --- shared page parts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PageContext:
    """What every page needs from the request: language, token, optional basemap, OSM credit."""

    lang: Lang
    token: str
    names: bool
    osm: bool
    basemap: str = "streets"
    tianditu_key: str | None = None

    def query(self, **extra: str | None) -> str:
        """The query string that keeps the token and language (and ``extra``) on links and tiles."""
        params = {"token": self.token, "lang": self.lang, **{k: v for k, v in extra.items() if v}}
        return urlencode(params, quote_via=quote)


def _check_basemap(ctx: PageContext) -> None:
    if ctx.basemap not in ("streets", "tianditu"):
        msg = f"basemap must be 'streets' or 'tianditu', got {ctx.basemap!r}"
        raise InvalidInput(
            msg, field="basemap", value=ctx.basemap, message_zh=f"底图须为 streets 或 tianditu：{ctx.basemap!r}"
        )
    if ctx.basemap == "tianditu" and not ctx.tianditu_key:
        msg = "basemap=tianditu needs SAFEZONE_TIANDITU_KEY to be set; the default basemap is drawn from our streets"
        raise InvalidInput(
            msg, field="basemap", value=ctx.basemap, message_zh="使用天地图底图需配置 SAFEZONE_TIANDITU_KEY"
        )


def _new_map(ctx: PageContext, title: str, *, location: tuple[float, float] | None, zoom: int) -> folium.Map:
    _check_basemap(ctx)
    fmap = offline_map(
        static_url=STATIC_URL,
        location=location,
        zoom_start=zoom,
        min_zoom=3,
        max_zoom=19,
        attribution=OSM_ATTRIBUTION if ctx.osm else None,
        prefer_canvas=False,
    )
    root = fmap.get_root()
    root.header.add_child(Element(f"<title>{_esc(title)}</title>"), name="safezone_title")
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="safezone_icon")
    root.header.add_child(CssLink(f"{STATIC_URL}/app/map.css"), name="safezone_css")
    root.header.add_child(JavascriptLink(f"{STATIC_URL}/app/map.js"), name="safezone_js")
    if ctx.basemap == "tianditu":
        # CGCS2000 ≈ WGS84: our overlays need no shift (never a GCJ-02 basemap under WGS84 data)
        for layer in TIANDITU_LAYERS:
            url = (
                f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                f"&TILECOL={{x}}&tk={quote(ctx.tianditu_key or '')}"
            )
            folium.TileLayer(
                url,
                attr=_TEXT[ctx.lang]["tianditu"],
                name=f"{_TEXT[ctx.lang]['tianditu']} {layer}",
                subdomains="01234567",
                overlay=layer == "cva",
                max_zoom=18,
            ).add_to(fmap)
    return fmap


def _esc(value: str) -> str:
    return html.escape(value, quote=True)


def _config(fmap: folium.Map, ctx: PageContext, config: dict[str, Any]) -> None:
    """Hand the page's settings to ``/static/app/map.js`` as JSON (``<`` escaped: no HTML injection)."""
    body = json.dumps({"map": fmap.get_name(), "token": ctx.token, "lang": ctx.lang, **config}, ensure_ascii=False)
    body = body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    fmap.get_root().header.add_child(
        Element(f'<script id="safezone-config" type="application/json">{body}</script>'), name="safezone_config"
    )


def _style_fn(body: str) -> JsCode:
    return JsCode(f"function (p, zoom) {{ {body} }}")


def _tile_layers(fmap: folium.Map, ctx: PageContext, *, district: str | None, show_streets: bool = True) -> None:
    """The vector tile overlays, drawn from PostGIS; the streets layer is the default basemap."""
    t = _TEXT[ctx.lang]
    q = ctx.query(district=district)
    levels = json.dumps(LEVEL_COLOURS)
    cats = json.dumps(CATEGORY_COLOURS)
    assets = json.dumps(ASSET_COLOURS)
    findings = json.dumps(FINDING_COLOURS)
    styles = {
        "streets": _style_fn(
            "var major = ['motorway','trunk','primary','secondary','tertiary'].indexOf(p.highway) >= 0;"
            " return {color: major ? '#9e9e9e' : '#c8c8c8', weight: major ? 3 : 1.2, opacity: 1};"
        ),
        "districts": {"color": "#555", "weight": 2, "dashArray": "6 4", "fill": False},
        "zones": _style_fn(
            "var c = p.distance_m >= 200 ? '#d62728' : (p.distance_m >= 100 ? '#ff7f0e' : '#ffbb00');"
            " return {color: c, weight: 1, fill: true, fillColor: c, fillOpacity: 0.08, dashArray: '4 3'};"
        ),
        "schools": _style_fn(
            f"var c = ({levels})[p.level] || '#7f7f7f';"
            " return {color: c, weight: 2, fill: true, fillColor: c, fillOpacity: 0.35, radius: 6};"
        ),
        "gates": {"color": "#000", "weight": 1, "fill": True, "fillColor": "#ffd700", "fillOpacity": 1, "radius": 4},
        "premises": _style_fn(
            "if (p.count !== undefined) { var r = Math.min(4 + Math.log(p.count) * 2.2, 18);"
            " return {radius: r, color: '#444', weight: 1, fill: true, fillColor: '#e6550d', fillOpacity: 0.6}; }"
            f" var c = ({cats})[p.category] || '#969696';"
            " return {radius: 4, color: '#333', weight: 0.5, fill: true, fillColor: c, fillOpacity: 0.9};"
        ),
        "findings": _style_fn(
            f"var c = ({findings})[p.status] || '#a50f15';"
            " return {radius: 6, color: '#fff', weight: 2, fill: true, fillColor: c, fillOpacity: 1};"
        ),
        "assets": _style_fn(
            f"var c = ({assets})[p.kind] || '#08519c';"
            " return {color: c, weight: 2, fill: true, fillColor: c, fillOpacity: 0.4, radius: 6};"
        ),
    }
    popups = {
        "streets": (),
        "districts": ("name", "adcode"),
        "zones": ("school", "rules", "distance_m", "measure_from"),
        "schools": ("name", "levels", "school_id"),
        "gates": ("name", "kind", "in_use"),
        # a point: its name, category and id; a grid cell (below zoom 14): its counts, per category too
        "premises": ("name", "category", "count", "unlicensed", *CATEGORY_NAMES, "premises_id"),
        "assets": ("kind", "name"),
        "findings": ("status", "category", "rule_id", "school_name", "distance_m", "name"),
    }
    order = ("streets", "districts", "zones", "schools", "gates", "premises", "assets", "findings")
    for layer in order:
        fields = popups[layer]
        if layer in ("premises", "findings") and not ctx.names:
            fields = tuple(f for f in fields if f != "name")
        vt = vector_tile_layer(
            f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf?{q}",
            name=t[layer],
            popup_fields=fields,
            attribution=OSM_ATTRIBUTION if (ctx.osm and layer in ("streets", "schools")) else None,
        )
        vt.options["vectorTileLayerStyles"] = {layer: styles[layer]}
        vt.options["pane"] = "overlayPane"
        if layer == "streets":
            vt.options["interactive"] = False
            vt.show = show_streets and ctx.basemap != "tianditu"
        vt.add_to(fmap)


def _legend(ctx: PageContext) -> list[dict[str, str]]:
    lang = ctx.lang
    items = [{"kind": "line", "colour": "#9e9e9e", "label": _TEXT[lang]["streets"]}]
    items += [{"kind": "area", "colour": c, "label": _name(LEVEL_NAMES, k, lang)} for k, c in LEVEL_COLOURS.items()]
    items += [
        {"kind": "zone", "colour": "#d62728", "label": "≥ 200 m"},
        {"kind": "zone", "colour": "#ff7f0e", "label": "100–199 m"},
        {"kind": "zone", "colour": "#ffbb00", "label": "< 100 m"},
        {"kind": "point", "colour": "#ffd700", "label": _TEXT[lang]["gates"]},
    ]
    items += [
        {"kind": "point", "colour": c, "label": _name(CATEGORY_NAMES, k, lang)} for k, c in CATEGORY_COLOURS.items()
    ]
    items.append({"kind": "cluster", "colour": "#e6550d", "label": _TEXT[lang]["aggregated"]})
    items += [{"kind": "point", "colour": c, "label": _name(ASSET_NAMES, k, lang)} for k, c in ASSET_COLOURS.items()]
    items += [
        {"kind": "point", "colour": c, "label": _name(FINDING_NAMES, k, lang)} for k, c in FINDING_COLOURS.items()
    ]
    return items


# --- pages ---------------------------------------------------------------------------------------------


def city_page(
    ctx: PageContext,
    *,
    extent: tuple[float, float, float, float] | None,
    districts: Sequence[dict[str, Any]],
    district: str | None,
) -> str:
    """The city (or one district's) overview: every layer as vector tiles, legend, search, filter."""
    t = _TEXT[ctx.lang]
    fmap = _new_map(ctx, t["city_title"], location=None if extent else (32.04, 118.78), zoom=12)
    if extent:
        x0, y0, x1, y1 = extent
        fmap.fit_bounds([[y0, x0], [y1, x1]])
    _tile_layers(fmap, ctx, district=district)
    folium.LayerControl(collapsed=False).add_to(fmap)
    _config(
        fmap,
        ctx,
        {
            "page": "city",
            "names": ctx.names,
            "district": district,
            "districts": [{"adcode": d["adcode"], "name": d["name"]} for d in districts],
            "legend": _legend(ctx),
            "text": {k: t[k] for k in ("search", "all_districts", "legend", "no_results")},
        },
    )
    return fmap.get_root().render()


@dataclass(frozen=True)
class PremisesMeasured:
    """One premises around a school, measured to the campus outline and to the nearest gate."""

    id: int
    name: str | None
    categories: tuple[str, ...]
    point: Point
    boundary: Any  # geo.measure.Measurement
    gate: Any | None
    inside: tuple[str, ...]


def measure_surroundings(data: dict[str, Any], rules: Sequence[Rule]) -> list[PremisesMeasured]:
    """Measure every premises to the school's nearest campus outline and nearest in-use gate.

    ``inside`` lists the rules (of the premises' categories) whose distance it lies within, measured
    as the rule says (outline or gates; to the footprint when the rule measures to it). It is a map
    display, not a decision: the review band and fallbacks live in the pre-check.
    """
    outlines = [shape(c["geometry"]) for c in data["campuses"]]
    gates = [shape(g["geometry"]) for g in data["gates"] if g["in_use"]]
    out = []
    for p in data["premises"]:
        point = shape(p["geometry"])
        footprint = shape(p["footprint"]) if p.get("footprint") else None
        near = min((distance_to_outline(point, o) for o in outlines), key=lambda m: m.distance_m)
        gate = distance_to_gates(point, gates)[1] if gates else None
        inside = []
        for rule in rules:
            if rule.category not in p["categories"] or rule.distance_m is None:
                continue
            site = footprint if rule.measure_to == "footprint" and footprint is not None else point
            if rule.measure_from == "gates" and gates:
                d = distance_to_gates(site, gates)[1].distance_m
            else:
                d = min(distance_to_outline(site, o).distance_m for o in outlines)
            if d <= rule.distance_m:
                inside.append(rule.id)
        out.append(PremisesMeasured(p["id"], p.get("name"), tuple(p["categories"]), point, near, gate, tuple(inside)))
    return out


def _zone_polygon(base: Any, distance_m: float) -> Any:
    """A display zone: ``base`` buffered by ``distance_m`` in a local metric frame centred on it."""
    c = base.centroid
    frame = LocalMetricFrame(c.x, c.y)
    grown = frame.project_geometry(base).buffer(distance_m, quad_segs=16)
    return shapely.transform(grown, lambda xy: frame.unproject(np.asarray(xy)))


def school_page(ctx: PageContext, data: dict[str, Any], rules: Sequence[Rule], *, radius_m: float) -> str:
    """One school: campuses, gates, a zone per applicable rule, premises around with distances and lines."""
    t = _TEXT[ctx.lang]
    school = data["school"]
    outlines = [shape(c["geometry"]) for c in data["campuses"]]
    gates = [shape(g["geometry"]) for g in data["gates"] if g["in_use"]]
    centre = shapely.unary_union(outlines).centroid if outlines else Point(118.78, 32.04)
    fmap = _new_map(ctx, t["school_title"].format(name=school["name"]), location=(centre.y, centre.x), zoom=16)
    _tile_layers(fmap, ctx, district=None, show_streets=True)

    zones = folium.FeatureGroup(name=t["zones"]).add_to(fmap)
    for rule in sorted(rules, key=lambda r: -(r.distance_m or 0)):
        from_ = "gates" if rule.measure_from == "gates" and gates else "boundary"
        base = shapely.MultiPoint(gates) if from_ == "gates" else shapely.unary_union(outlines)
        label = t["zone"].format(rule=rule.id, distance=rule.distance_m, from_=t[f"from_{from_}"])
        folium.GeoJson(
            shapely.geometry.mapping(_zone_polygon(base, float(rule.distance_m or 0))),
            name=label,
            style_function=lambda _f, d=rule.distance_m: {
                "color": "#d62728" if d >= 200 else ("#ff7f0e" if d >= 100 else "#e6a800"),
                "weight": 1.5,
                "dashArray": "5 4",
                "fillOpacity": 0.05,
            },
            tooltip=_esc(label),
        ).add_to(zones)

    campus_group = folium.FeatureGroup(name=t["schools"]).add_to(fmap)
    colour = LEVEL_COLOURS.get((school["levels"] or ["unknown"])[0], "#7f7f7f")
    for campus in data["campuses"]:
        folium.GeoJson(
            campus["geometry"],
            style_function=lambda _f: {"color": colour, "weight": 3, "fillOpacity": 0.3},
            tooltip=_esc(f"{school['name']} · {t['campus']} {campus['name'] or ''}"),
        ).add_to(campus_group)
    gate_group = folium.FeatureGroup(name=t["gates"]).add_to(fmap)
    for g in data["gates"]:
        pt = shape(g["geometry"])
        folium.CircleMarker(
            (pt.y, pt.x),
            radius=6,
            color="#000",
            weight=1,
            fill=True,
            fill_color="#ffd700" if g["in_use"] else "#bbbbbb",
            fill_opacity=1,
            tooltip=_esc(f"{g['name'] or t['gates']} ({g['kind']})"),
        ).add_to(gate_group)

    measured = measure_surroundings(data, rules)
    prem_group = folium.FeatureGroup(name=t["premises"]).add_to(fmap)
    lines = folium.FeatureGroup(name=t["measured"]).add_to(fmap)
    for m in measured:
        cat = next((c for c in m.categories if c != "other"), m.categories[0] if m.categories else "other")
        parts = [m.name if ctx.names and m.name else _name(CATEGORY_NAMES, cat, ctx.lang)]
        parts.append(", ".join(_name(CATEGORY_NAMES, c, ctx.lang) for c in m.categories) or "—")
        parts.append(t["distance_boundary"].format(d=m.boundary.distance_m))
        if m.gate is not None:
            parts.append(t["distance_gate"].format(d=m.gate.distance_m))
        parts.append(t["inside"].format(rules=", ".join(m.inside)) if m.inside else t["outside"])
        folium.CircleMarker(
            (m.point.y, m.point.x),
            radius=5,
            color="#333",
            weight=1,
            fill=True,
            fill_color=CATEGORY_COLOURS.get(cat, "#969696"),
            fill_opacity=0.95 if m.inside else 0.6,
            tooltip=folium.Tooltip(" · ".join(_esc(p) for p in parts)),
        ).add_to(prem_group)
        for meas, dash in ((m.boundary, None), (m.gate, "2 4")):
            if meas is None:
                continue
            line = LineString([meas.from_point, meas.to_point])
            folium.PolyLine(
                [(y, x) for x, y in line.coords],
                color="#d62728" if m.inside else "#555",
                weight=1.5,
                dash_array=dash,
                tooltip=f"{meas.distance_m:.1f} m",
            ).add_to(lines)

    folium.LayerControl(collapsed=False).add_to(fmap)
    warnings = list(school["flags"])
    _config(
        fmap,
        ctx,
        {
            "page": "school",
            "names": ctx.names,
            "school": {"id": school["id"], "name": school["name"], "levels": school["levels"]},
            "warnings": warnings,
            "summary": t["premises_count"].format(n=len(measured), radius=radius_m),
            "legend": _legend(ctx),
            "text": {k: t[k] for k in ("search", "all_districts", "legend", "no_results", "warnings")},
        },
    )
    return fmap.get_root().render()
