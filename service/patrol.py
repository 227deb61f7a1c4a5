"""Guard posts (护学岗), patrols and camera coverage: requests, planning, and what is handed out.

Plans are **stateless**: a plan's key (``plan``) is the request itself, canonical JSON compressed and
base64url-encoded (for a patrol with the scan it was planned on), so the roster, the map pages and the
GPX files recompute exactly the same plan from it; nothing is stored. Trader names appear only for roles
that may read premises (every role holding ``plan:patrols`` does).

Travel runs over the stored ``street_edges`` (never osmnx at request time): see :mod:`geo.patrol`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import json
import zlib
from typing import Annotated, Any, Literal, TypeVar
from xml.etree import ElementTree as ET

import folium
import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from geo import cameras as cams
from geo import patrol as geo
from geo.coords import point_to_wgs84
from geo.errors import InvalidInput
from geo.maps import OSM_ATTRIBUTION, offline_map, vector_tile_layer
from geo.rules import RuleRegistry
from geo.vocabulary import Crs
from service.maps import zone_rules
from storage import patrol as store

Lang = Literal["zh", "en"]
STREET_MARGIN_M = 1500.0
"""Streets are loaded around the gates, stops and units with this margin (detours leave the box)."""
CAMERA_MARGIN_M = 1000.0
_TZ = "+08:00"
M = TypeVar("M", bound=BaseModel)


# --- requests ------------------------------------------------------------------------------------


class UnitIn(BaseModel):
    """A unit and where it starts, in the request's ``crs``."""

    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str | None, Field(max_length=100)] = None
    lon: float = Field(allow_inf_nan=False)
    lat: float = Field(allow_inf_nan=False)
    available_from: dt.time | None = Field(default=None, description="HH:MM; default: the plan's shift start")


District = Annotated[str, Field(pattern=r"^\d{6}$", description="adcode; a city XXXX00 includes its counties")]


class GuardPostPlanRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "district": "450302",
                    "day": "2025-03-03",
                    "crs": "gcj02",
                    "speed_kmh": 5,
                    "units": [{"id": "P1", "name": "秀峰派出所一组", "lon": 110.2906, "lat": 25.2736}],
                }
            ]
        },
    )
    district: District
    day: dt.date
    units: Annotated[list[UnitIn], Field(min_length=1, max_length=500)]
    crs: Crs = Field(description="coordinate system of the units' start points: required")
    speed_kmh: Annotated[float, Field(ge=0.5, le=120, description="walking about 5, driving in town about 25")]
    shift_start: dt.time = Field(default=dt.time(6, 30), description="when units without available_from start")


class PatrolPlanRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "district": "450302",
                    "crs": "wgs84",
                    "speed_kmh": 5,
                    "dwell_min": 10,
                    "start": "09:00",
                    "units": [{"id": "C1", "name": "城管一中队", "lon": 110.2906, "lat": 25.2736}],
                }
            ]
        },
    )
    district: District
    units: Annotated[list[UnitIn], Field(min_length=1, max_length=100)]
    crs: Crs = Field(description="coordinate system of the units' start points: required")
    speed_kmh: Annotated[float, Field(ge=0.5, le=120)]
    dwell_min: Annotated[float, Field(ge=0, le=240)] = 10.0
    date: dt.date | None = Field(default=None, description="the patrol day (default: today, Asia/Shanghai)")
    start: dt.time = Field(default=dt.time(9, 0), description="when units without available_from set off")
    scan_id: int | None = Field(default=None, description="plan on this scan (default: the latest covering it)")


def plan_key(req: BaseModel) -> str:
    """The plan's key: the request as compact JSON, deflated, base64url without padding."""
    raw = json.dumps(req.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(zlib.compress(raw.encode(), 9)).decode().rstrip("=")


def parse_key(key: str, model: type[M]) -> M:
    """The request a plan key stands for; 422 naming ``plan`` when it is not one."""
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)), bufsize=1 << 16)
        return model.model_validate_json(raw)
    except (binascii.Error, zlib.error, ValueError, ValidationError):
        msg = "plan is not a plan key returned by the planning endpoint"
        raise InvalidInput(msg, field="plan", value=key[:40], message_zh="plan 不是规划接口返回的方案编号") from None


def _units(units: list[UnitIn], crs: str) -> list[geo.Unit]:
    out = []
    for i, u in enumerate(units):
        try:
            lon, lat = point_to_wgs84(u.lon, u.lat, crs)
        except InvalidInput as exc:
            exc.field = f"units[{i}]"
            raise
        out.append(geo.Unit(u.id, u.name or u.id, lon, lat, u.available_from))
    return out


def _graph(session: Session, points: list[tuple[float, float]]) -> geo.StreetGraph:
    xy = np.asarray(points, dtype=float)
    bbox = (*xy.min(axis=0), *xy.max(axis=0))
    edges = store.street_edges(session, bbox=bbox, margin_m=STREET_MARGIN_M)
    return geo.StreetGraph.from_edges((u, v, line) for _, u, v, line, _ in edges)


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(lon, 8), round(lat, 8)]}


# --- guard posts ---------------------------------------------------------------------------------


def plan_guard_posts(session: Session, req: GuardPostPlanRequest) -> tuple[geo.GuardPlan, dict[str, Any]]:
    """The plan and its JSON answer."""
    units = _units(req.units, req.crs)
    gates = [
        geo.GatePost(
            g["gate_id"],
            g["gate_name"],
            g["school_id"],
            g["school_name"],
            g["lon"],
            g["lat"],
            g["arrival"],
            g["dismissal"],
        )
        for g in store.guard_gates(session, district=req.district, on=req.day)
    ]
    school_day, _ = geo.is_school_day(req.day)
    graph = None
    if school_day and gates:
        graph = _graph(session, [(u.lon, u.lat) for u in units] + [(g.lon, g.lat) for g in gates])
    plan = geo.plan_guard_posts(graph, units, gates, day=req.day, speed_kmh=req.speed_kmh, shift_start=req.shift_start)
    return plan, _guard_json(plan, req, units)


def _guard_json(plan: geo.GuardPlan, req: GuardPostPlanRequest, units: list[geo.Unit]) -> dict[str, Any]:
    key = plan_key(req)
    per_min = req.speed_kmh * 1000 / 60

    def post(p: geo.Post) -> dict[str, Any]:
        g = p.gate
        return {
            "session": p.session,
            "school_id": g.school_id,
            "school_name": g.school_name,
            "gate_id": g.gate_id,
            "gate_name": g.gate_name,
            "location": _point(g.lon, g.lat),
            "window_start": p.window[0],
            "window_end": p.window[1],
        }

    duties = [
        {
            "unit_id": d.unit.id,
            "unit_name": d.unit.name,
            **post(d.post),
            "from_gate": d.from_gate,
            "leave_at": geo.clock(d.leave_min),
            "on_post_by": geo.clock(d.arrive_min),
            "travel_m": round(d.travel_m, 1),
            "travel_min": round(d.travel_m / per_min, 1),
        }
        for d in plan.duties
    ]
    volunteers = [
        {
            **post(u.post),
            "reason": u.reason,
            "nearest_unit": u.best_unit.id if u.best_unit else None,
            "earliest_arrival": geo.clock(u.best_arrive_min) if u.best_arrive_min is not None else None,
        }
        for u in plan.uncovered
    ]
    count = {u.id: 0 for u in units}
    for d in plan.duties:
        count[d.unit.id] += 1
    return {
        "plan": key,
        "district": req.district,
        "day": req.day.isoformat(),
        "school_day": plan.school_day,
        "calendar": plan.calendar,
        "method": "greedy: posts by window start, each to the free unit arriving in time with the shortest travel",
        "window_min": geo.WINDOW_MIN,
        "speed_kmh": req.speed_kmh,
        "units": [{"id": u.id, "name": u.name, "location": _point(u.lon, u.lat), "posts": count[u.id]} for u in units],
        "duties": duties,
        "volunteers": volunteers,
        "summary": {"posts": len(duties) + len(volunteers), "manned": len(duties), "volunteer": len(volunteers)},
        "roster_url": f"/maps/guard-posts?plan={key}&view=roster",
        "map_url": f"/maps/guard-posts?plan={key}",
    }


# --- patrols -------------------------------------------------------------------------------------


def plan_patrols(session: Session, req: PatrolPlanRequest, *, today: dt.date) -> dict[str, Any]:
    """Routes through every premises with findings in the district's latest scan (or ``req.scan_id``)."""
    scan_id = req.scan_id or store.latest_scan_for(session, req.district)
    req = req.model_copy(update={"scan_id": scan_id, "date": req.date or today})
    rows = store.open_findings(session, district=req.district, scan_id=scan_id)
    stops = [geo.PatrolStop(str(r["premises_id"]), r["name"], r["lon"], r["lat"]) for r in rows]
    info = {str(r["premises_id"]): r for r in rows}
    units = _units(req.units, req.crs)
    graph = _graph(session, [(u.lon, u.lat) for u in units] + [(s.lon, s.lat) for s in stops])
    plan = geo.plan_patrols(graph, units, stops, dwell_min=req.dwell_min, speed_kmh=req.speed_kmh, start=req.start)
    key = plan_key(req)
    day = (req.date or today).isoformat()

    def at(minutes: float) -> str:
        return f"{day}T{geo.clock(minutes)}:00{_TZ}"

    def stop(i: int, rs: geo.RouteStop) -> dict[str, Any]:
        r = info[rs.stop.id]
        return {
            "order": i,
            "premises_id": r["premises_id"],
            "name": r["name"],
            "location": _point(rs.stop.lon, rs.stop.lat),
            "arrive": at(rs.arrive_min),
            "leave": at(rs.leave_min),
            "leg_m": round(rs.leg_m, 1),
            "statuses": r["statuses"],
            "rules": r["rules"],
            "schools": r["schools"],
            "findings": r["findings"],
        }

    routes = [
        {
            "unit_id": r.unit.id,
            "unit_name": r.unit.name,
            "start": at(r.start_min),
            "end": at(r.end_min),
            "duration_min": round(r.duration_min, 1),
            "distance_m": round(r.distance_m, 1),
            "stops": [stop(i + 1, s) for i, s in enumerate(r.stops)],
            "nodes": r.node_ids,
            "geometry": {"type": "LineString", "coordinates": [[round(x, 8), round(y, 8)] for x, y in r.coords]},
            "gpx_url": f"/v1/patrols/{key}/units/{r.unit.id}.gpx",
        }
        for r in plan.routes
    ]
    return {
        "plan": key,
        "district": req.district,
        "scan_id": scan_id,
        "date": day,
        "method": plan.method,
        "dwell_min": plan.dwell_min,
        "speed_kmh": plan.speed_kmh,
        "stops": len(stops),
        "balance": round(plan.balance, 3),
        "routes": routes,
        "unreached": [{"premises_id": info[s.id]["premises_id"], "name": s.name} for s in plan.unreached],
        "list_url": f"/maps/patrols/{key}?view=list",
        "map_url": f"/maps/patrols/{key}",
    }


def gpx(plan: dict[str, Any], unit_id: str) -> str:
    """GPX 1.1 of one unit's route: the stops as timed waypoints and the route as a track (WGS84)."""
    route = next((r for r in plan["routes"] if r["unit_id"] == unit_id), None)
    if route is None:
        msg = f"no unit {unit_id!r} in this plan"
        raise InvalidInput(msg, field="unit", value=unit_id, message_zh=f"方案中没有单位 {unit_id!r}")
    ns = "http://www.topografix.com/GPX/1/1"
    ET.register_namespace("", ns)
    root = ET.Element(f"{{{ns}}}gpx", {"version": "1.1", "creator": "safezone"})
    meta = ET.SubElement(root, f"{{{ns}}}metadata")
    ET.SubElement(meta, f"{{{ns}}}name").text = f"巡逻路线 {route['unit_name']} {plan['date']}"
    for s in route["stops"]:
        lon, lat = s["location"]["coordinates"]
        wpt = ET.SubElement(root, f"{{{ns}}}wpt", {"lat": f"{lat:.8f}", "lon": f"{lon:.8f}"})
        ET.SubElement(wpt, f"{{{ns}}}time").text = s["arrive"]
        ET.SubElement(wpt, f"{{{ns}}}name").text = f"{s['order']}. {s['name']}"
        ET.SubElement(
            wpt, f"{{{ns}}}desc"
        ).text = f"{', '.join(s['statuses'])}; {', '.join(s['rules'])}; {s['arrive'][11:16]}–{s['leave'][11:16]}"
    trk = ET.SubElement(root, f"{{{ns}}}trk")
    ET.SubElement(trk, f"{{{ns}}}name").text = route["unit_name"]
    seg = ET.SubElement(trk, f"{{{ns}}}trkseg")
    for lon, lat in route["geometry"]["coordinates"]:
        ET.SubElement(seg, f"{{{ns}}}trkpt", {"lat": f"{lat:.8f}", "lon": f"{lon:.8f}"})
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


# --- printable pages -----------------------------------------------------------------------------

_PRINT_CSS = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif; margin: 16px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 18px 0 6px; }
p.meta { color: #444; margin: 0 0 12px; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { border: 1px solid #777; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; } .sign { height: 28px; width: 70px; }
@page { size: A4; margin: 14mm 12mm; }
@media print { body { margin: 0; } a { color: inherit; text-decoration: none; }
  tr, .unit { page-break-inside: avoid; } .noprint { display: none; } }
"""

_T = {
    "zh": {
        "roster": "护学岗值守排班表",
        "patrol": "巡逻路线清单",
        "district": "行政区",
        "day": "日期",
        "unit": "值守单位",
        "session": "时段",
        "arrival": "上学",
        "dismissal": "放学",
        "school": "学校",
        "gate": "校门",
        "window": "值守时间",
        "leave": "出发",
        "on_post": "到岗",
        "travel": "路程（米）",
        "sign": "签到",
        "volunteers": "需群防群治（志愿者）补位的岗位",
        "reason_late": "无单位能在值守开始前到达（最早 {t}，{u}）",
        "reason_unreachable": "路网不可达",
        "no_school": "今日非上学日（{why}），不设护学岗。",
        "none": "无",
        "summary": "共 {posts} 个岗位：{manned} 个由单位值守，{vol} 个需志愿者补位。速度 {speed:g} 公里/小时。",
        "order": "序号",
        "arrive": "到达",
        "depart": "离开",
        "premises": "场所",
        "issue": "问题",
        "leg": "路段（米）",
        "route_total": "{n} 处，{dist:.0f} 米，{dur:.0f} 分钟（{start}–{end}）",
        "patrol_meta": "排查批次 {scan} · 停留 {dwell:g} 分钟/处 · 速度 {speed:g} 公里/小时 · {n} 处场所",
        "map": "地图",
        "print": "打印",
    },
    "en": {
        "roster": "Guard post duty roster",
        "patrol": "Patrol route list",
        "district": "District",
        "day": "Day",
        "unit": "Unit",
        "session": "Session",
        "arrival": "arrival",
        "dismissal": "dismissal",
        "school": "School",
        "gate": "Gate",
        "window": "On duty",
        "leave": "Leave",
        "on_post": "On post by",
        "travel": "Travel (m)",
        "sign": "Sign",
        "volunteers": "Posts for volunteer cover",
        "reason_late": "no unit arrives before the window (earliest {t}, {u})",
        "reason_unreachable": "not reachable on the street network",
        "no_school": "Not a school day ({why}): no guard posts.",
        "none": "none",
        "summary": "{posts} posts: {manned} manned by units, {vol} for volunteers. Speed {speed:g} km/h.",
        "order": "#",
        "arrive": "Arrive",
        "depart": "Leave",
        "premises": "Premises",
        "issue": "Findings",
        "leg": "Leg (m)",
        "route_total": "{n} stops, {dist:.0f} m, {dur:.0f} min ({start}–{end})",
        "patrol_meta": "Scan {scan} · dwell {dwell:g} min per stop · {speed:g} km/h · {n} premises",
        "map": "Map",
        "print": "Print",
    },
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _links(map_href: str, t: dict[str, str]) -> str:
    print_link = f'<a href="#" onclick="print()">{t["print"]}</a>'
    return f'<p class="noprint"><a href="{_e(map_href)}">{t["map"]}</a> · {print_link}</p>'


def _page(title: str, body: str, lang: Lang) -> str:
    return (
        f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        f'<link rel="icon" href="data:,"><title>{_e(title)}</title><style>{_PRINT_CSS}</style></head>'
        f"<body>{body}</body></html>"
    )


def guard_roster_html(answer: dict[str, Any], *, lang: Lang, map_href: str) -> str:
    """The printable duty roster (A4): one table per unit, then the posts left for volunteers."""
    t = _T[lang]
    title = f"{t['roster']} · {answer['district']} · {answer['day']}"
    out = [f"<h1>{_e(title)}</h1>"]
    out.append(_links(map_href, t))
    if not answer["school_day"]:
        out.append(f"<p>{_e(t['no_school'].format(why=answer['calendar']))}</p>")
        return _page(title, "".join(out), lang)
    s = answer["summary"]
    out.append(
        f'<p class="meta">{_e(t["summary"].format(posts=s["posts"], manned=s["manned"], vol=s["volunteer"], speed=answer["speed_kmh"]))}</p>'  # noqa: E501
    )
    head = "".join(
        f"<th>{t[k]}</th>" for k in ("session", "school", "gate", "window", "leave", "on_post", "travel", "sign")
    )
    for unit in answer["units"]:
        rows = [d for d in answer["duties"] if d["unit_id"] == unit["id"]]
        out.append(f'<div class="unit"><h2>{t["unit"]}：{_e(unit["name"])}（{_e(unit["id"])}）</h2>')
        if not rows:
            out.append(f"<p>{t['none']}</p></div>")
            continue
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
        for d in rows:
            out.append(
                f"<tr><td>{t[d['session']]}</td><td>{_e(d['school_name'])}</td><td>{_e(d['gate_name'] or d['gate_id'])}</td>"  # noqa: E501
                f"<td>{d['window_start']}–{d['window_end']}</td><td>{d['leave_at']}</td><td>{d['on_post_by']}</td>"
                f'<td class="num">{d["travel_m"]:.0f}</td><td class="sign"></td></tr>'
            )
        out.append("</tbody></table></div>")
    out.append(f"<h2>{t['volunteers']}</h2>")
    if not answer["volunteers"]:
        out.append(f"<p>{t['none']}</p>")
    else:
        out.append(
            f"<table><thead><tr><th>{t['session']}</th><th>{t['school']}</th><th>{t['gate']}</th>"
            f"<th>{t['window']}</th><th></th></tr></thead><tbody>"
        )
        for v in answer["volunteers"]:
            why = (
                t["reason_late"].format(t=v["earliest_arrival"], u=v["nearest_unit"])
                if v["reason"] == "late"
                else t["reason_unreachable"]
            )
            out.append(
                f"<tr><td>{t[v['session']]}</td><td>{_e(v['school_name'])}</td><td>{_e(v['gate_name'] or v['gate_id'])}</td>"  # noqa: E501
                f"<td>{v['window_start']}–{v['window_end']}</td><td>{_e(why)}</td></tr>"
            )
        out.append("</tbody></table>")
    return _page(title, "".join(out), lang)


def patrol_list_html(answer: dict[str, Any], *, lang: Lang, map_href: str) -> str:
    """The printable patrol list (A4): per unit, its stops in order with arrival and leaving times."""
    t = _T[lang]
    title = f"{t['patrol']} · {answer['district']} · {answer['date']}"
    out = [f"<h1>{_e(title)}</h1>"]
    out.append(_links(map_href, t))
    meta = t["patrol_meta"].format(
        scan=answer["scan_id"], dwell=answer["dwell_min"], speed=answer["speed_kmh"], n=answer["stops"]
    )
    out.append(f'<p class="meta">{_e(meta)}</p>')
    head = "".join(f"<th>{t[k]}</th>" for k in ("order", "arrive", "depart", "premises", "issue", "school", "leg"))
    for r in answer["routes"]:
        total = t["route_total"].format(
            n=len(r["stops"]), dist=r["distance_m"], dur=r["duration_min"], start=r["start"][11:16], end=r["end"][11:16]
        )
        out.append(f'<div class="unit"><h2>{_e(r["unit_name"])}（{_e(r["unit_id"])}）· {_e(total)}</h2>')
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
        for s in r["stops"]:
            out.append(
                f"<tr><td>{s['order']}</td><td>{s['arrive'][11:16]}</td><td>{s['leave'][11:16]}</td>"
                f"<td>{_e(s['name'])}</td><td>{_e(', '.join(s['statuses']))}<br>{_e(', '.join(s['rules']))}</td>"
                f'<td>{_e("、".join(s["schools"]))}</td><td class="num">{s["leg_m"]:.0f}</td></tr>'
            )
        out.append("</tbody></table></div>")
    return _page(title, "".join(out), lang)


# --- map pages -----------------------------------------------------------------------------------

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _map(points: list[tuple[float, float]], *, token_query: str, osm: bool, title: str) -> folium.Map:
    fmap = offline_map(
        static_url="/static", zoom_start=14, min_zoom=3, max_zoom=19, attribution=OSM_ATTRIBUTION if osm else None
    )
    root = fmap.get_root()
    root.header.add_child(folium.Element(f"<title>{_e(title)}</title>"), name="safezone_title")
    root.header.add_child(folium.Element('<link rel="icon" href="data:,">'), name="safezone_icon")
    streets = vector_tile_layer(f"/tiles/streets/{{z}}/{{x}}/{{y}}.pbf?{token_query}", name="街道 streets")
    streets.options["vectorTileLayerStyles"] = {"streets": {"color": "#bdbdbd", "weight": 1.5}}
    streets.options["interactive"] = False
    streets.add_to(fmap)
    if points:
        xy = np.asarray(points)
        fmap.fit_bounds([[xy[:, 1].min(), xy[:, 0].min()], [xy[:, 1].max(), xy[:, 0].max()]], padding=(20, 20))
    else:
        fmap.location = [32.04, 118.78]
    return fmap


def guard_map_html(answer: dict[str, Any], *, token_query: str, osm: bool, lang: Lang) -> str:
    """The guard-post map: unit starts, manned gates (green), volunteer gates (red), who goes where."""
    t = _T[lang]
    title = f"{t['roster']} · {answer['district']} · {answer['day']}"
    pts = [tuple(u["location"]["coordinates"]) for u in answer["units"]]
    pts += [tuple(d["location"]["coordinates"]) for d in answer["duties"] + answer["volunteers"]]
    fmap = _map(pts, token_query=token_query, osm=osm, title=title)
    colour = {u["id"]: _COLOURS[i % len(_COLOURS)] for i, u in enumerate(answer["units"])}
    start = {u["id"]: u["location"]["coordinates"] for u in answer["units"]}
    gate_at = {d["gate_id"]: d["location"]["coordinates"] for d in answer["duties"] + answer["volunteers"]}
    moves = folium.FeatureGroup(name="路线 moves").add_to(fmap)
    for d in answer["duties"]:
        a = gate_at.get(d["from_gate"], start[d["unit_id"]]) if d["from_gate"] else start[d["unit_id"]]
        b = d["location"]["coordinates"]
        folium.PolyLine(
            [(a[1], a[0]), (b[1], b[0])],
            color=colour[d["unit_id"]],
            weight=2,
            dash_array="5 5",
            tooltip=_e(f"{d['unit_name']} {d['leave_at']}→{d['on_post_by']} {d['travel_m']:.0f} m"),
        ).add_to(moves)
    posts = folium.FeatureGroup(name=f"{t['gate']} posts").add_to(fmap)
    for d in answer["duties"]:
        lon, lat = d["location"]["coordinates"]
        folium.CircleMarker(
            (lat, lon),
            radius=7,
            color="#000",
            weight=1,
            fill=True,
            fill_color="#2ca02c",
            fill_opacity=0.9,
            tooltip=_e(
                f"{d['school_name']} {d['gate_name'] or ''} · {t[d['session']]} "
                f"{d['window_start']}–{d['window_end']} · {d['unit_name']}"
            ),
        ).add_to(posts)
    for v in answer["volunteers"]:
        lon, lat = v["location"]["coordinates"]
        folium.CircleMarker(
            (lat, lon),
            radius=8,
            color="#000",
            weight=1,
            fill=True,
            fill_color="#d62728",
            fill_opacity=0.9,
            tooltip=_e(
                f"{t['volunteers']}: {v['school_name']} {v['gate_name'] or ''} {t[v['session']]} {v['window_start']}"
            ),
        ).add_to(posts)
    units = folium.FeatureGroup(name=f"{t['unit']} units").add_to(fmap)
    for u in answer["units"]:
        lon, lat = u["location"]["coordinates"]
        folium.CircleMarker(  # a unit's start: a thick black ring (RegularPolygonMarker needs a CDN plugin)
            (lat, lon),
            radius=9,
            color="#000",
            weight=3,
            fill=True,
            fill_color=colour[u["id"]],
            fill_opacity=1,
            tooltip=_e(f"{u['name']} ({u['posts']})"),
        ).add_to(units)
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap.get_root().render()


def patrol_map_html(answer: dict[str, Any], *, token_query: str, osm: bool, lang: Lang) -> str:
    """The patrol map: each unit's route along the streets and its numbered stops."""
    t = _T[lang]
    title = f"{t['patrol']} · {answer['district']} · {answer['date']}"
    pts = [tuple(c) for r in answer["routes"] for c in r["geometry"]["coordinates"]]
    fmap = _map(pts, token_query=token_query, osm=osm, title=title)
    for i, r in enumerate(answer["routes"]):
        colour = _COLOURS[i % len(_COLOURS)]
        group = folium.FeatureGroup(name=f"{r['unit_name']}").add_to(fmap)
        coords = r["geometry"]["coordinates"]
        if len(coords) > 1:
            folium.PolyLine(
                [(y, x) for x, y in coords],
                color=colour,
                weight=4,
                opacity=0.8,
                tooltip=_e(f"{r['unit_name']} {r['distance_m']:.0f} m"),
            ).add_to(group)
        x0, y0 = coords[0]
        folium.CircleMarker(
            (y0, x0),
            radius=9,
            color="#000",
            weight=3,
            fill=True,
            fill_color=colour,
            fill_opacity=1,
            tooltip=_e(r["unit_name"]),
        ).add_to(group)
        for s in r["stops"]:
            lon, lat = s["location"]["coordinates"]
            folium.CircleMarker(
                (lat, lon),
                radius=6,
                color=colour,
                weight=2,
                fill=True,
                fill_color="#fff",
                fill_opacity=1,
                tooltip=_e(
                    f"{s['order']}. {s['name']} {s['arrive'][11:16]}–{s['leave'][11:16]} {', '.join(s['statuses'])}"
                ),
            ).add_to(group)
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap.get_root().render()


# --- camera coverage -----------------------------------------------------------------------------


def _largest_zone(registry: RuleRegistry, site: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    rules = zone_rules(registry, site["district"], site["levels"])
    if not rules:
        return None
    # the largest: the longest distance; on a tie the outline (its zone holds the gates') zone)
    rule = max(rules, key=lambda r: (r.distance_m or 0.0, r.measure_from == "boundary", r.id))
    gates = [g[2] for g in site["gates"]]
    from_gates = rule.measure_from == "gates" and bool(gates)
    base = shapely.MultiPoint(gates) if from_gates else shapely.unary_union(site["campuses"])
    return base, {
        "rule_id": rule.id,
        "distance_m": rule.distance_m,
        "measure_from": "gates" if from_gates else "boundary",
    }


def _cameras(rows: list[dict[str, Any]]) -> list[cams.Camera]:
    return [
        cams.Camera(r["external_id"], r["lon"], r["lat"], r["direction_deg"], r["fov_deg"], r["range_m"], r["name"])
        for r in rows
    ]


def _school_report(site: dict[str, Any], zone: dict[str, Any], cov: cams.SchoolCoverage) -> dict[str, Any]:
    street_m = cov.street_m
    return {
        "school": {k: site[k] for k in ("id", "name", "levels", "district")},
        "zone": zone,
        "cameras_near": cov.cameras,
        "gates": [
            {
                "gate_id": g.gate_id,
                "name": g.name,
                "location": _point(g.point.x, g.point.y),
                "covered": g.covered,
                "camera_id": g.camera_id,
                "camera_distance_m": round(g.camera_distance_m, 1) if g.camera_distance_m is not None else None,
            }
            for g in cov.gates
        ],
        "streets": [
            {
                "edge_id": s.edge_id,
                "name": s.name,
                "length_m": round(s.length_m, 1),
                "covered_fraction": round(s.covered_fraction, 3),
                "uncovered_m": round(s.uncovered_m, 1),
            }
            for s in sorted(cov.streets, key=lambda s: (-s.uncovered_m, s.edge_id))
        ],
        "summary": {
            "gates": len(cov.gates),
            "gates_uncovered": [g.gate_id for g in cov.gates_uncovered],
            "street_m": round(street_m, 1),
            "street_covered_m": round(cov.street_covered_m, 1),
            "street_covered_fraction": round(cov.street_covered_m / street_m, 3) if street_m else None,
            "streets_with_gaps": sum(1 for s in cov.streets if s.covered_fraction < 1.0),
            "full_coverage": cov.full,
        },
    }


def _coverage(session: Session, registry: RuleRegistry, sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    zones = [(site, _largest_zone(registry, site)) for site in sites]
    zones = [(s, z) for s, z in zones if z is not None]
    if not zones:
        return []
    polys = [cams.zone_polygon(base, z["distance_m"]) for _, (base, z) in zones]
    bbox = shapely.union_all(polys).bounds
    cameras = _cameras(store.cameras(session, bbox=bbox, margin_m=CAMERA_MARGIN_M))
    edges = store.street_edges(session, bbox=bbox, margin_m=0.0)
    index = cams.StreetIndex([(e[0], e[4], e[3]) for e in edges])
    out = []
    for site, (base, zone) in zones:
        cov = cams.school_coverage(
            zone_base=base, zone_distance_m=zone["distance_m"], gates=site["gates"], cameras=cameras, streets=index
        )
        out.append(_school_report(site, zone, cov))
    return out


def school_camera_coverage(session: Session, registry: RuleRegistry, school_id: int) -> dict[str, Any]:
    """Gates and largest-zone streets of one school that no camera covers."""
    sites = store.school_sites(session, school_id=school_id)
    reports = _coverage(session, registry, sites)
    if not reports:
        site = sites[0]
        msg = f"school {school_id} has no zone: no rule in force protects its levels {site['levels']}"
        raise InvalidInput(msg, field="id", value=school_id, message_zh=f"学校 {school_id} 没有适用的安全区域规则")
    return reports[0]


def district_camera_coverage(session: Session, registry: RuleRegistry, district: str) -> dict[str, Any]:
    """Per school of the district: uncovered gates and the seen share of its zone streets."""
    reports = _coverage(session, registry, store.school_sites(session, district=district))
    schools = [{**r["school"], "zone": r["zone"], **r["summary"]} for r in reports]
    return {
        "district": district,
        "schools": schools,
        "summary": {
            "schools": len(schools),
            "full_coverage": sum(1 for s in schools if s["full_coverage"]),
            "gates": sum(s["gates"] for s in schools),
            "gates_uncovered": sum(len(s["gates_uncovered"]) for s in schools),
        },
    }
