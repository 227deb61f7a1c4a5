"""The decision notice (告知书) page and "where may a new ⟨category⟩ open" (answer and page).

* :func:`compute_open_areas` — reads the district and the campuses reaching into it, and lets
  :func:`geo.open_areas.open_areas` draw the allowed area, the zones and the review band with the same
  rules, uncertainty and fallbacks as the pre-check.
* :func:`open_areas_answer` — that result as GeoJSON (no school or business names: public-safe).
* :func:`decision_page` — the printable notice of a stored decision: site, school(s), measured lines or
  walking path, rules with their legal basis and ``confirmed`` status, outcome, versions, id, date. One A4
  page (``@page { size: A4 }``); the map and the text fit it.
* :func:`open_page` — the map of the allowed area, the zones and the review band.

Pages are offline (:func:`geo.maps.offline_map`: every asset served by the app); the basemap is our own
``streets`` vector tiles when the caller's role may read them (``read:maps``), else none.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from typing import Any, Final, Literal

import folium
import shapely
from branca.element import Element
from shapely.geometry import mapping, shape
from sqlalchemy.orm import Session

from geo.decide import CampusInfo, DecisionSettings, GateInfo
from geo.errors import InvalidInput
from geo.maps import OSM_ATTRIBUTION, offline_map, vector_tile_layer
from geo.open_areas import OpenAreas, open_areas, rules_for, search_radius_m
from geo.rules import RuleRegistry
from service.auth import POLICY
from service.maps import CATEGORY_NAMES, PageContext
from storage import open_areas as store
from storage.access import TokenInfo

Lang = Literal["zh", "en"]
STATIC_URL: Final = "/static"
OUTCOME_COLOURS: Final = {"prohibited": "#a50f15", "review": "#d97b00", "allowed": "#1a7f37"}

_T: Final[dict[str, dict[str, str]]] = {
    "zh": {
        "notice_title": "学生安全区域许可前置核查告知书",
        "decision_id": "决定编号",
        "date": "核查日期",
        "checked_at": "生成时间",
        "outcome": "核查结论",
        "prohibited": "禁止",
        "review": "需复核",
        "allowed": "允许",
        "site": "拟设场所",
        "name": "场所名称",
        "permit_id": "许可证号",
        "category": "经营类别",
        "application": "申请类型",
        "location": "位置（WGS84 经度, 纬度）",
        "crs": "申请坐标系",
        "accuracy": "定位精度",
        "district": "所在行政区",
        "rule": "规则",
        "limit": "距离要求",
        "method": "测量方式",
        "school": "学校（校区）",
        "distance": "实测距离",
        "margin": "余量",
        "result": "结论",
        "confirmed": "确认状态",
        "confirmed_yes": "已确认",
        "confirmed_no": "距离取值待主管部门确认",
        "basis": "法律依据",
        "lead": "牵头单位",
        "no_school": "范围内无受保护学校",
        "no_rule": "该类别、申请类型无适用规则",
        "flags": "提示",
        "versions": "规则包版本 {version}（{packs}）· 数据批次 {batches}",
        "footer": "本告知书依据存档的核查决定生成，可凭决定编号调取原始记录并按现行数据与规则复核"
        "（/v1/decisions/{id}/replay）。",
        "map_site": "拟设场所",
        "map_line": "测量线",
        "map_path": "步行路径",
        "boundary": "自校园边界至场所",
        "gates": "自校门至场所",
        "walking": "步行路径（门到门）",
        "m": "{d:.1f} 米",
        "open_title": "可新设{category}的区域 · {district}",
        "open_allowed": "可设区域（所有安全区域之外）",
        "open_zone": "安全区域：{rule}，{distance:g} 米",
        "open_band": "需复核带（D − u 至 D + u）",
        "open_note": "本图仅示安全区域范围，不含学校及经营者名称；具体选址以许可前置核查（POST /v1/checks）结论为准。",
        "open_walking": "步行距离规则按直线区域示意（实际步行区域更小），需逐址核查。",
        "open_rules": "适用规则",
        "new": "新设",
        "relocation": "迁址",
        "expansion": "扩建",
        "renewal": "延续",
    },
    "en": {
        "notice_title": "Student safety zone pre-check notice",
        "decision_id": "Decision id",
        "date": "Date checked for",
        "checked_at": "Issued at",
        "outcome": "Outcome",
        "prohibited": "Prohibited",
        "review": "Review required",
        "allowed": "Allowed",
        "site": "Proposed site",
        "name": "Name",
        "permit_id": "Permit id",
        "category": "Category",
        "application": "Application",
        "location": "Location (WGS84 lon, lat)",
        "crs": "Coordinate system given",
        "accuracy": "Stated accuracy",
        "district": "District",
        "rule": "Rule",
        "limit": "Distance",
        "method": "Measured",
        "school": "School (campus)",
        "distance": "Measured distance",
        "margin": "Margin",
        "result": "Outcome",
        "confirmed": "Confirmed",
        "confirmed_yes": "confirmed",
        "confirmed_no": "value not yet confirmed by the authority",
        "basis": "Legal basis",
        "lead": "Lead department",
        "no_school": "no protected school in range",
        "no_rule": "no rule applies to this category and application",
        "flags": "Notes",
        "versions": "Rule packs {version} ({packs}) · data batches {batches}",
        "footer": "Generated from the stored decision; the original record and a replay with today's data and "
        "rules are available by its id (/v1/decisions/{id}/replay).",
        "map_site": "Proposed site",
        "map_line": "Measured line",
        "map_path": "Walking path",
        "boundary": "campus boundary to site",
        "gates": "gate to site",
        "walking": "walking path, door to door",
        "m": "{d:.1f} m",
        "open_title": "Where a new {category} may open · {district}",
        "open_allowed": "May open (outside every zone)",
        "open_zone": "Zone: {rule}, {distance:g} m",
        "open_band": "Review band (D − u to D + u)",
        "open_note": "Zones only: no school or business names. A site's answer is the pre-check's (POST /v1/checks).",
        "open_walking": "Walking-distance rules are drawn as their straight-line zone (the walking zone is smaller): "
        "check each site.",
        "open_rules": "Rules",
        "new": "new",
        "relocation": "relocation",
        "expansion": "expansion",
        "renewal": "renewal",
    },
}
FLAG_TEXT: Final[dict[str, tuple[str, str]]] = {
    "gate_unknown": ("校门位置未知，按校园边界测量（只能确认“允许”）", "gate unknown: measured to the boundary"),
    "network_unavailable": ("无步行路网，按直线测量（只能确认“允许”）", "no walking network: measured straight"),
    "school_point_only": ("学校仅有点位，无边界（计入校园半径）", "school known as a point only"),
    "level_unknown": ("学段未知，按所有规则保护", "school level unknown: protected by every rule"),
    "jurisdiction_unknown": ("位置不在已知行政区内，仅适用国家规则", "outside every known district: national rules"),
    "no_applicable_rule": ("无适用规则", "no applicable rule"),
    "walking_as_straight_line": ("步行规则按直线区域示意", "walking rules drawn as straight-line zones"),
}


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _flag(flag: str, lang: Lang) -> str:
    zh, en = FLAG_TEXT.get(flag, (flag, flag))
    return zh if lang == "zh" else en


def _cat(category: str, lang: Lang) -> str:
    zh, en = CATEGORY_NAMES.get(category, (category, category))
    return zh if lang == "zh" else en


# --- where may it open -----------------------------------------------------------------------------


def _campus(row: dict[str, Any]) -> CampusInfo:
    return CampusInfo(
        school_id=row["school_id"], school_name="", campus_id=row["campus_id"], levels=frozenset(row["levels"]),
        outline=row["outline"], point_only=row["point_only"], accuracy_m=row["accuracy_m"],
        gates=tuple(GateInfo(g["id"], g["point"], g["in_use"]) for g in row["gates"]),
    )  # fmt: skip


def compute_open_areas(
    session: Session,
    registry: RuleRegistry,
    *,
    category: str,
    adcode: str,
    application: str,
    on: dt.date,
    school_accuracy_m: float,
    accuracy_m: float = 0.0,
    crs: str = "wgs84",
    protection_distance_m: float | None = None,
) -> tuple[OpenAreas, dict[str, Any], list[str], tuple[str, ...]]:
    """The open areas of one district; also the district row, the rule ids applied and the packs."""
    district = store.district(session, adcode)
    in_force = registry.in_force(adcode, on=on)
    applied = rules_for(in_force.rules, category=category, application=application, on=on)
    key = sorted((r.id, r.distance_m, r.measure_from, r.metric) for r in applied)
    differing = [
        c
        for c in district["children"]
        if sorted(
            (r.id, r.distance_m, r.measure_from, r.metric)
            for r in rules_for(registry.in_force(c, on=on).rules, category=category, application=application, on=on)
        )
        != key
    ]
    if differing:
        msg = f"the sub-districts {differing} of {adcode} have rules of their own for {category}: ask for each of them"
        raise InvalidInput(
            msg,
            field="district",
            value=adcode,
            message_zh=f"{adcode} 的下级行政区 {differing} 有各自的规则，请分别查询",
        )
    settings = DecisionSettings(default_school_accuracy_m=school_accuracy_m)
    radius = search_radius_m(applied, settings, site_accuracy_m=accuracy_m)
    if protection_distance_m:
        radius += protection_distance_m
    rows = store.campuses_reaching(session, district["geometry"], radius) if applied else []
    areas = open_areas(
        district["geometry"], in_force.rules, [_campus(r) for r in rows], category=category, application=application,
        on=on, settings=settings, site_accuracy_m=accuracy_m, crs=crs, protection_distance_m=protection_distance_m,
    )  # fmt: skip
    return areas, district, [r.id for r in applied], in_force.packs


def open_areas_answer(
    areas: OpenAreas, district: dict[str, Any], *, pack_version: str, packs: Sequence[str], accuracy_m: float
) -> dict[str, Any]:
    """The GeoJSON answer: allowed area, one zone per rule, review band, and what they were made from."""
    body = areas.feature_collection()
    body.update(
        {
            "district": {"adcode": district["adcode"], "name": district["name"]},
            "category": areas.category,
            "application": areas.application,
            "date": areas.on.isoformat(),
            "accuracy_m": accuracy_m,
            "pack_version": pack_version,
            "packs": list(packs),
            "flags": list(areas.flags),
            "method": "zones buffered geodesically (local transverse Mercator frame, scale-corrected); review band "
            "between D - u and D + u (+ campus radius for point-only schools); fallbacks that underestimate the "
            "distance (gate_unknown, walking rules drawn straight) are review, never prohibited",
        }
    )
    return body


# --- pages -----------------------------------------------------------------------------------------

_PAGE_CSS: Final = """
html, body { height: auto !important; width: auto !important; margin: 0; padding: 0; }
body { font: 13px/1.45 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; color: #111; }
.notice { width: 190mm; margin: 0 auto; display: flex; flex-direction: column; }
.notice-head { order: 0; } .notice-map { order: 1; } .notice-body { order: 2; }
.notice h1 { font-size: 19px; text-align: center; margin: 8px 0 4px; letter-spacing: 2px; }
.notice .meta { text-align: center; color: #444; font-size: 11px; }
.notice .outcome { margin: 6px 0; padding: 5px 10px; border: 2px solid; font-size: 17px; font-weight: bold; }
.notice table { border-collapse: collapse; width: 100%; margin: 4px 0; font-size: 11px; }
.notice th, .notice td { border: 1px solid #999; padding: 2px 4px; text-align: left; vertical-align: top; }
.notice th { background: #f0f0f0; white-space: nowrap; }
.notice .basis { font-size: 11px; margin: 2px 0 2px 0; }
.notice .small { font-size: 10px; color: #444; }
.notice-map .folium-map { position: relative !important; width: 190mm !important; height: 92mm !important;
  border: 1px solid #999; box-sizing: border-box; }
.leaflet-tooltip.notice-label { font-size: 11px; padding: 1px 3px; }
@media print {
  @page { size: A4; margin: 10mm; }
  body { font-size: 10px; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .notice { margin: 0; }
  .leaflet-control-zoom { display: none !important; }
}
"""

_OPEN_CSS: Final = """
.open-panel { position: absolute; z-index: 1000; top: 10px; right: 10px; max-width: 330px; background: #fff;
  padding: 8px 10px; font: 12px/1.45 "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; border-radius: 4px;
  box-shadow: 0 1px 5px rgba(0,0,0,.4); }
.open-panel h1 { font-size: 15px; margin: 0 0 6px; }
.open-legend-row { display: flex; align-items: center; gap: 6px; }
.open-swatch { display: inline-block; width: 14px; height: 12px; border: 2px solid; box-sizing: border-box; }
.open-note { color: #444; margin-top: 6px; }
@media print { @page { size: A4 landscape; margin: 10mm; } .leaflet-control-zoom { display: none !important; } }
"""


def may_see_basemap(token: TokenInfo) -> bool:
    """The streets tiles need ``read:maps``; a role without it gets the page without a basemap."""
    return token.role in POLICY["read:maps"]


def _base_map(ctx: PageContext, title: str, *, basemap: bool, page_css: str) -> folium.Map:
    fmap = offline_map(
        static_url=STATIC_URL, location=None, zoom_start=16, min_zoom=3, max_zoom=19,
        attribution=OSM_ATTRIBUTION if ctx.osm else None, prefer_canvas=False,
    )  # fmt: skip
    root = fmap.get_root()
    root.header.add_child(Element(f"<title>{_esc(title)}</title>"), name="notice_title")
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="notice_icon")
    root.header.add_child(Element(f"<style>{page_css}</style>"), name="notice_css")
    if basemap:
        layer = vector_tile_layer(
            f"/tiles/streets/{{z}}/{{x}}/{{y}}.pbf?{ctx.query()}",
            name="streets",
            attribution=OSM_ATTRIBUTION if ctx.osm else None,
        )
        layer.options["vectorTileLayerStyles"] = {
            "streets": {"color": "#b5b5b5", "weight": 1.5, "opacity": 1},
        }
        layer.options["interactive"] = False
        layer.add_to(fmap)
    return fmap


def _fit(fmap: folium.Map, geoms: Sequence[Any]) -> None:
    x0, y0, x1, y1 = shapely.GeometryCollection(list(geoms)).bounds
    pad = 0.0004
    fmap.fit_bounds([[y0 - pad, x0 - pad], [y1 + pad, x1 + pad]])


def _rule_rows(answer: dict[str, Any], lang: Lang) -> tuple[str, list[Any]]:
    """The rules table (HTML) and the geometries to draw: (kind, geometry, label, outcome)."""
    t = _T[lang]
    rows, basis, drawn = [], [], []
    for rule in answer["rules"]:
        campuses = rule["within"] or ([rule["nearest"]] if rule["nearest"] else [])
        confirmed = t["confirmed_yes"] if rule["confirmed"] else t["confirmed_no"]
        limit = t["m"].format(d=rule["limit_m"])
        if not campuses:
            rows.append(
                f"<tr><td>{_esc(rule['rule_id'])}</td><td>{limit}</td><td colspan=4>{t['no_school']}</td>"
                f"<td>{_esc(t[rule['outcome']])}</td><td>{_esc(confirmed)}</td></tr>"
            )
        for c in campuses:
            school = f"{c['school_name']}" + (f"（{c['campus_name']}）" if c.get("campus_name") else "")
            rows.append(
                "<tr>"
                f"<td>{_esc(rule['rule_id'])}</td><td>{limit}</td><td>{_esc(t.get(c['method'], c['method']))}</td>"
                f"<td>{_esc(school)}</td><td><b>{t['m'].format(d=c['distance_m'])}</b></td>"
                f"<td>{c['margin_m']:+.1f}</td>"
                f'<td style="color:{OUTCOME_COLOURS[c["outcome"]]}"><b>{_esc(t[c["outcome"]])}</b></td>'
                f"<td>{_esc(confirmed)}</td></tr>"
            )
            if c.get("path"):
                drawn.append(("path", shape(c["path"]), t["m"].format(d=c["distance_m"]), c["outcome"]))
            elif c.get("from") and c.get("to"):
                line = shapely.LineString([c["from"]["coordinates"], c["to"]["coordinates"]])
                drawn.append(("line", line, t["m"].format(d=c["distance_m"]), c["outcome"]))
        basis.append(
            f'<div class="basis"><b>{_esc(rule["rule_id"])}</b> {t["basis"]}：“{_esc(rule["legal_basis"]["text"])}”'
            f"——{_esc(rule['legal_basis']['citation'])}</div>"
        )
    head = "".join(f"<th>{t[k]}</th>" for k in ("rule", "limit", "method", "school", "distance", "margin", "result",
                                                 "confirmed"))  # fmt: skip
    table = f"<table><tr>{head}</tr>{''.join(rows)}</table>" if rows else f"<p>{t['no_rule']}</p>"
    return table + "".join(basis), drawn


def decision_page(
    ctx: PageContext,
    decision_id: str,
    stored: dict[str, Any],
    campuses: Sequence[dict[str, Any]],
    *,
    basemap: bool,
    district_name: str | None,
    departments: dict[str, str],
) -> str:
    """The printable notice (告知书) of a stored pre-check decision, with its map."""
    lang, t = ctx.lang, _T[ctx.lang]
    answer, inputs = stored["result"], stored["inputs"]
    fmap = _base_map(ctx, t["notice_title"], basemap=basemap, page_css=_PAGE_CSS)
    site = shape(answer["location"])
    table, drawn = _rule_rows(answer, lang)
    geoms: list[Any] = [site]
    for c in campuses:
        geoms.append(c["outline"])
        folium.GeoJson(
            mapping(c["outline"]),
            style_function=lambda _f: {"color": "#1f77b4", "weight": 2, "fillOpacity": 0.25},
            tooltip=_esc(c["school_name"]),
        ).add_to(fmap)
        for g in c["gates"]:
            folium.CircleMarker(
                (g["point"].y, g["point"].x), radius=5, color="#000", weight=1, fill=True, fill_opacity=1,
                fill_color="#ffd700" if g["in_use"] else "#bbbbbb",
            ).add_to(fmap)  # fmt: skip
    for kind, geom, label, outcome in drawn:
        geoms.append(geom)
        folium.PolyLine(
            [(y, x) for x, y in geom.coords], color=OUTCOME_COLOURS[outcome], weight=3,
            dash_array=None if kind == "path" else "6 4",
            tooltip=folium.Tooltip(label, permanent=True, class_name="notice-label"),
        ).add_to(fmap)  # fmt: skip
    if site.geom_type == "Point":
        folium.CircleMarker(
            (site.y, site.x), radius=8, color="#000", weight=2, fill=True, fill_color="#e6550d", fill_opacity=1,
            tooltip=t["map_site"],
        ).add_to(fmap)  # fmt: skip
    else:
        folium.GeoJson(
            mapping(site), style_function=lambda _f: {"color": "#e6550d", "weight": 2, "fillOpacity": 0.5}
        ).add_to(fmap)
    _fit(fmap, geoms)

    outcome = answer["outcome"]
    site_rows = [
        (t["name"], inputs.get("name")),
        (t["permit_id"], inputs.get("permit_id")),
        (t["category"], f"{_cat(answer['category'], lang)}（{answer['category']}）"),
        (t["application"], t.get(answer["application"], answer["application"])),
        (t["location"], f"{site.representative_point().x:.6f}, {site.representative_point().y:.6f}"),
        (t["crs"], inputs.get("crs")),
        (t["accuracy"], t["m"].format(d=float(inputs.get("accuracy_m") or 0.0))),
        (t["district"], " ".join(v for v in (district_name, answer.get("district")) if v) or "—"),
    ]
    site_table = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in site_rows if v is not None)
    leads = sorted({departments.get(r["lead_department"], r["lead_department"]) for r in answer["rules"]})
    flags = "".join(f"<li>{_esc(_flag(f, lang))}</li>" for f in answer.get("flags", []))
    versions = t["versions"].format(
        version=answer.get("pack_version"),
        packs=", ".join(answer.get("packs", [])),
        batches=", ".join(str(b) for b in answer.get("data_batches", [])) or "—",
    )
    head = (
        f'<div class="notice-head"><h1>{t["notice_title"]}</h1>'
        f'<div class="meta">{t["decision_id"]} {_esc(decision_id)} · {t["date"]} {_esc(answer["date"])}'
        f" · {t['checked_at']} {_esc(answer.get('checked_at', ''))}</div>"
        f'<div class="outcome" style="color:{OUTCOME_COLOURS[outcome]}">{t["outcome"]}：'
        f'<span class="notice-outcome">{_esc(t[outcome])}</span></div>'
        f"<table>{site_table}</table></div>"
    )
    body = (
        f'<div class="notice-body">{table}'
        + (f'<div class="small">{t["lead"]}：{_esc("、".join(leads))}</div>' if leads else "")
        + (f'<div class="small">{t["flags"]}：<ul>{flags}</ul></div>' if flags else "")
        + f'<div class="small">{_esc(versions)}</div>'
        + f'<div class="small">{_esc(t["footer"].format(id=decision_id))}</div></div>'
    )
    page = fmap.get_root()
    page.html.add_child(Element(f'<div class="notice">{head}<div class="notice-map" id="notice-map"></div>{body}'
                                "</div>"), name="notice_text")  # fmt: skip
    # the map's own <div> is rendered by folium at the end of <body>: move it into its slot
    page.script.add_child(
        Element("document.getElementById('notice-map').appendChild(document.querySelector('.folium-map'));"),
        name="notice_move_map",
    )
    return page.render()


def open_page(ctx: PageContext, areas: OpenAreas, district: dict[str, Any], *, basemap: bool) -> str:
    """The map of where a new ⟨category⟩ may open: allowed area, zones, review band. No names."""
    lang, t = ctx.lang, _T[ctx.lang]
    title = t["open_title"].format(category=_cat(areas.category, lang), district=district["name"])
    fmap = _base_map(ctx, title, basemap=basemap, page_css=_OPEN_CSS)
    folium.GeoJson(
        mapping(areas.district), style_function=lambda _f: {"color": "#555", "weight": 2, "dashArray": "6 4",
                                                            "fill": False},
    ).add_to(fmap)  # fmt: skip
    legend = []
    if not areas.allowed.is_empty:
        folium.GeoJson(
            mapping(areas.allowed),
            style_function=lambda _f: {"color": "#1a7f37", "weight": 1, "fillColor": "#2ca02c", "fillOpacity": 0.25},
            tooltip=_esc(t["open_allowed"]),
        ).add_to(fmap)
    legend.append(("#2ca02c", t["open_allowed"]))
    for zone in sorted(areas.zones, key=lambda z: -z.distance_m):
        label = t["open_zone"].format(rule=zone.rule.id, distance=zone.distance_m)
        colour = "#d62728" if zone.approximation is None else "#9467bd"
        if not zone.geometry.is_empty:
            folium.GeoJson(
                mapping(zone.geometry),
                style_function=lambda _f, c=colour: {"color": c, "weight": 1.5, "dashArray": "5 4",
                                                     "fillColor": c, "fillOpacity": 0.2},
                tooltip=_esc(label),
            ).add_to(fmap)  # fmt: skip
        legend.append((colour, label))
    if not areas.review_band.is_empty:
        folium.GeoJson(
            mapping(areas.review_band),
            style_function=lambda _f: {"color": "#d97b00", "weight": 0.5, "fillColor": "#ffbb00", "fillOpacity": 0.5},
            tooltip=_esc(t["open_band"]),
        ).add_to(fmap)
    legend.append(("#ffbb00", t["open_band"]))
    _fit(fmap, [areas.district])
    rows = "".join(
        f'<div class="open-legend-row"><span class="open-swatch" style="background:{c}55;border-color:{c}"></span>'
        f"<span>{_esc(label)}</span></div>"
        for c, label in legend
    )
    notes = [t["open_note"]] + ([t["open_walking"]] if "walking_as_straight_line" in areas.flags else [])
    notes += [_flag(f, lang) for f in areas.flags if f not in ("walking_as_straight_line",)]
    panel = (
        f'<div class="open-panel"><h1>{_esc(title)}</h1>{rows}'
        + "".join(f'<div class="open-note">{_esc(n)}</div>' for n in notes)
        + "</div>"
    )
    page = fmap.get_root()
    page.html.add_child(Element(panel), name="open_panel")
    return page.render()
