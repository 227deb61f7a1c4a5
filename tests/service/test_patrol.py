"""Guard posts, patrols and camera coverage through the API, on the demo city and hand-built schools."""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree as ET

import pytest
from geoalchemy2.shape import from_shape
from pyproj import Geod
from shapely.geometry import LineString, Point
from sqlalchemy import select

from geo.rules import RuleRegistry
from service.demo import load_demo
from service.scanning import run_scan
from service.settings import Settings
from storage.models import Camera, Campus, Finding, Gate, School, StreetEdge
from tests.factories import add_school, offset, square

GEOD = Geod(ellps="WGS84")
MONDAY = "2025-03-03"
DISTRICT = "450303"  # 叠彩区 of the demo city: 7 schools, 13 in-use gates
GPX = "{http://www.topografix.com/GPX/1/1}"


@pytest.fixture
def demo(session_factory, session, tmp_path):  # noqa: ANN001, ANN201
    load_demo(session_factory, workdir=tmp_path, schools=40, premises=300, seed=9)
    settings = Settings()
    run_scan(session_factory, RuleRegistry.load(settings.resolved_rules_dir, default_adcode=settings.default_adcode))
    gates = session.execute(
        select(Gate.id, School.name, Gate.geom.ST_X(), Gate.geom.ST_Y())
        .join(Campus, Gate.campus_id == Campus.id)
        .join(School, Campus.school_id == School.id)
        .where(Campus.district_adcode == DISTRICT, Gate.in_use)
        .order_by(Gate.id)
    ).all()
    return gates


def _edges(session) -> set[tuple[int, int]]:  # noqa: ANN001
    return {(min(u, v), max(u, v)) for u, v in session.execute(select(StreetEdge.u, StreetEdge.v))}


def test_guard_posts_man_every_gate_in_time_or_list_it_for_volunteers(client, auth, demo) -> None:  # noqa: ANN001
    g0, g5 = demo[0], demo[5]
    units = [
        {"id": "P1", "name": "叠彩派出所一组", "lon": g0[2], "lat": g0[3]},
        {"id": "P2", "name": "叠彩派出所二组", "lon": g5[2], "lat": g5[3], "available_from": "07:00"},
        {"id": "P3", "name": "城管中队", "lon": g5[2], "lat": g5[3]},
    ]
    body = {"district": DISTRICT, "day": MONDAY, "units": units, "crs": "wgs84", "speed_kmh": 5}
    r = client.post("/v1/guard-posts/plan", json=body, headers=auth("public_security"))
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["school_day"] is True and plan["method"].startswith("greedy")
    # 13 gates x (arrival + dismissal): each post is manned or handed to volunteers, never both, never lost
    posts = [(d["gate_id"], d["session"]) for d in plan["duties"] + plan["volunteers"]]
    assert sorted(posts) == sorted((g[0], s) for g in demo for s in ("arrival", "dismissal"))
    assert plan["summary"] == {"posts": 26, "manned": len(plan["duties"]), "volunteer": len(plan["volunteers"])}
    assert plan["duties"], "three units near the gates man some posts"
    by_unit: dict[str, list[dict]] = {}
    for d in plan["duties"]:
        assert d["on_post_by"] <= d["window_start"] and d["leave_at"] <= d["on_post_by"]
        # the street route is never shorter than the straight line
        (lon, lat), start = d["location"]["coordinates"], next(u for u in units if u["id"] == d["unit_id"])
        if d["from_gate"] is None:
            straight = GEOD.inv(start["lon"], start["lat"], lon, lat)[2]
            assert d["travel_m"] >= straight - 0.5
        by_unit.setdefault(d["unit_id"], []).append(d)
    for duties in by_unit.values():  # a unit is at one post at a time
        duties.sort(key=lambda d: d["window_start"])
        for a, b in zip(duties[:-1], duties[1:], strict=True):
            assert a["window_end"] <= b["leave_at"]
    # a unit standing at a gate at 06:30 takes that gate's arrival post with no walk at all
    first = next(d for d in plan["duties"] if d["gate_id"] == g0[0] and d["session"] == "arrival")
    assert first["unit_id"] == "P1" and first["travel_m"] < 0.01

    roster = client.get(f"{plan['roster_url']}&token={_token(auth, 'urban_management')}")
    assert roster.status_code == 200 and roster.headers["content-type"].startswith("text/html")
    assert "护学岗值守排班表" in roster.text and "size: A4" in roster.text
    assert first["school_name"] in roster.text and "叠彩派出所一组" in roster.text


def _token(auth, role: str) -> str:  # noqa: ANN001
    return auth(role)["Authorization"].removeprefix("Bearer ")


def test_a_unit_too_far_away_leaves_the_arrival_posts_to_volunteers(client, auth, demo) -> None:  # noqa: ANN001
    lon, lat = offset(demo[0][2], demo[0][3], east_m=6000)  # 6 km off the district's gates, on foot
    units = [{"id": "F1", "name": "远处分队", "lon": lon, "lat": lat, "available_from": "07:00"}]
    body = {"district": DISTRICT, "day": MONDAY, "units": units, "crs": "wgs84", "speed_kmh": 5}
    plan = client.post("/v1/guard-posts/plan", json=body, headers=auth("education")).json()
    arrival = [v for v in plan["volunteers"] if v["session"] == "arrival"]
    assert len(arrival) == 13  # 6 km at 5 km/h is 72 minutes: no arrival window opens that late
    assert all(v["reason"] == "late" and v["nearest_unit"] == "F1" for v in arrival)
    assert all(v["earliest_arrival"] > v["window_start"] for v in arrival)
    assert {d["session"] for d in plan["duties"]} == {"dismissal"}


def test_no_guard_posts_on_a_holiday_and_gcj02_starts_are_converted(client, auth, demo) -> None:  # noqa: ANN001
    units = [{"id": "P1", "lon": demo[0][2], "lat": demo[0][3]}]
    body = {"district": DISTRICT, "day": "2025-10-01", "units": units, "crs": "gcj02", "speed_kmh": 5}
    plan = client.post("/v1/guard-posts/plan", json=body, headers=auth("admin")).json()
    assert plan["school_day"] is False and "National Day" in plan["calendar"]
    assert plan["duties"] == [] and plan["volunteers"] == []
    # the GCJ-02 start was shifted to WGS84: hundreds of metres in Guilin
    lon, lat = plan["units"][0]["location"]["coordinates"]
    assert 300 < GEOD.inv(demo[0][2], demo[0][3], lon, lat)[2] < 700
    r = client.post("/v1/guard-posts/plan", json=body, headers=auth("market_supervision"))
    assert r.status_code == 403


def test_patrols_visit_every_open_finding_along_stored_edges(client, auth, session, demo) -> None:  # noqa: ANN001
    units = [
        {"id": "C1", "name": "城管一中队", "lon": demo[0][2], "lat": demo[0][3]},
        {"id": "C2", "name": "城管二中队", "lon": demo[-1][2], "lat": demo[-1][3]},
    ]
    body = {"district": DISTRICT, "units": units, "crs": "wgs84", "speed_kmh": 5, "dwell_min": 10, "date": MONDAY}
    r = client.post("/v1/patrols/plan", json=body, headers=auth("urban_management"))
    assert r.status_code == 200, r.text
    plan = r.json()
    wanted = set(session.scalars(select(Finding.premises_id).where(Finding.district_adcode == DISTRICT)))
    visited = [s["premises_id"] for route in plan["routes"] for s in route["stops"]]
    assert len(wanted) == 11 and sorted(visited) == sorted(wanted)  # every stop, once
    assert plan["unreached"] == []
    edges = _edges(session)
    for route in plan["routes"]:
        nodes = route["nodes"]
        assert all((min(a, b), max(a, b)) in edges for a, b in zip(nodes[:-1], nodes[1:], strict=True))
        times = [(s["arrive"], s["leave"]) for s in route["stops"]]
        for arrive, leave in times:
            a, b = dt.datetime.fromisoformat(arrive), dt.datetime.fromisoformat(leave)
            assert b - a == dt.timedelta(minutes=10) and a.date().isoformat() == MONDAY
        assert [t[0] for t in times] == sorted(t[0] for t in times)
        assert route["stops"], "both units patrol"
    assert plan["balance"] < 2.0

    route = plan["routes"][0]
    gpx = client.get(route["gpx_url"], headers=auth("urban_management"))
    assert gpx.status_code == 200 and gpx.headers["content-type"].startswith("application/gpx+xml")
    doc = ET.fromstring(gpx.content)
    wpts = doc.findall(f"{GPX}wpt")
    assert [w.find(f"{GPX}name").text for w in wpts] == [f"{s['order']}. {s['name']}" for s in route["stops"]]
    assert [w.find(f"{GPX}time").text for w in wpts] == [s["arrive"] for s in route["stops"]]
    trkpts = doc.findall(f".//{GPX}trkpt")
    assert len(trkpts) == len(route["geometry"]["coordinates"])
    assert float(trkpts[0].get("lon")) == pytest.approx(units[0]["lon"], abs=1e-7)

    page = client.get(f"{plan['list_url']}&token={_token(auth, 'public_security')}")
    assert page.status_code == 200 and "巡逻路线清单" in page.text
    assert all(s["name"] in page.text for s in route["stops"])
    assert client.get(route["gpx_url"], headers=auth("tobacco")).status_code == 403
    bad = client.get("/v1/patrols/not-a-plan/units/C1.gpx", headers=auth("admin"))
    assert bad.status_code == 422 and bad.json()["field"] == "plan"


def _camera(session, cid: str, at: tuple[float, float], direction: float, rng: float = 40.0) -> Camera:  # noqa: ANN001
    cam = Camera(
        external_id=cid,
        name=cid,
        geom=from_shape(Point(*at), srid=4326),
        direction_deg=direction,
        fov_deg=60,
        range_m=rng,
    )
    session.add(cam)
    session.flush()
    return cam


def test_camera_coverage_names_the_gate_a_camera_turned_away_leaves_unseen(client, auth, session) -> None:  # noqa: ANN001
    sw = (118.7800, 32.0400)
    gate = offset(*sw, east_m=50)  # the middle of the south side of a 100 m campus
    school = add_school(session, name="测试小学", outline=square(*sw, 100), gates=[gate])
    # a 200 m street 5 m south of the gate, west to east
    west, east = offset(*gate, east_m=-100, north_m=-5), offset(*gate, east_m=100, north_m=-5)
    session.add(StreetEdge(source_ref="t", u=1, v=2, length_m=200, geom=from_shape(LineString([west, east]), 4326)))
    cam = _camera(session, "CAM-1", offset(*gate, north_m=-20), direction=180.0)  # 20 m south, looking away
    session.commit()

    r = client.get(f"/v1/schools/{school.id}/camera-coverage", headers=auth("public_security"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["zone"]["distance_m"] == 200 and report["zone"]["measure_from"] == "boundary"
    [g] = report["gates"]
    assert g["covered"] is False and report["summary"]["gates_uncovered"] == [g["gate_id"]]
    [street] = report["streets"]
    assert street["covered_fraction"] == 0.0 and street["length_m"] == pytest.approx(200, abs=0.5)
    assert report["summary"]["full_coverage"] is False

    cam.direction_deg = 0.0  # turned round to face the gate
    session.commit()
    report = client.get(f"/v1/schools/{school.id}/camera-coverage", headers=auth("education")).json()
    [g] = report["gates"]
    assert g["covered"] is True and g["camera_id"] == "CAM-1" and g["camera_distance_m"] == pytest.approx(20, abs=0.1)
    # ±30° at 20 m sees the street 15 m south of it for about 2 x 15 x tan 30° = 17 m of 200 m
    assert report["streets"][0]["covered_fraction"] == pytest.approx(17.3 / 200, abs=0.02)
    assert client.get(f"/v1/schools/{school.id}/camera-coverage", headers=auth("urban_management")).status_code == 403


def test_district_camera_coverage_lists_every_school(client, auth, session, demo) -> None:  # noqa: ANN001
    r = client.get(f"/v1/camera-coverage?district={DISTRICT}", headers=auth("admin"))
    assert r.status_code == 200, r.text
    report = r.json()
    names = set(session.scalars(select(School.name).join(Campus).where(Campus.district_adcode == DISTRICT)))
    assert {s["name"] for s in report["schools"]} == names and len(names) == 8  # one without an in-use gate
    assert report["summary"]["schools"] == 8 and report["summary"]["gates"] == 13
    for s in report["schools"]:
        assert 0.0 <= (s["street_covered_fraction"] or 0.0) <= 1.0
        assert len(s["gates_uncovered"]) <= s["gates"]
