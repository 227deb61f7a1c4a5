"""Editing schools, campuses and gates over the API: each answer equals the diff of two full scans.

On the demo city (40 schools, 400 premises, seed 3) with a full scan on record: move a gate, enlarge an
outline, change a school's levels, add a school; the findings each edit reports must be exactly those
that appear and disappear between a full scan before and a full scan after the edit, the latest scan must
then hold what the full scan after holds, and findings of other campuses must not be touched.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from geoalchemy2.shape import to_shape
from pyproj import Geod
from shapely.geometry import Polygon, mapping
from sqlalchemy import func, select, text

from geo.coords import geometry_from_wgs84, point_from_wgs84
from geo.rules import RuleRegistry
from service.demo import load_demo
from service.scanning import run_scan
from storage import scan as scan_store
from storage.models import Campus, Finding, Gate, Premises, School, SchoolWarning

GEOD = Geod(ellps="WGS84")
ON = dt.date(2026, 6, 1)
RULES = RuleRegistry.load()

Key = tuple[int, int | None, str, int]


@pytest.fixture
def city(session_factory, session, tmp_path):  # noqa: ANN001, ANN201
    """The demo city with one full scan on record (the scan an edit patches)."""
    load_demo(session_factory, workdir=tmp_path, schools=40, premises=400, seed=3)
    scan_id = run_scan(session_factory, RULES, on=ON)["scan_id"]
    return session, scan_id, session_factory


def _key(f: Finding) -> Key:
    return (f.premises_id, f.permit_id, f.rule_id, f.campus_id)


def _rows(session, scan_id: int) -> dict[Key, tuple[Any, ...]]:  # noqa: ANN001
    """A scan's findings by key, with what a user reads in them."""
    found = session.scalars(select(Finding).where(Finding.scan_id == scan_id)).all()
    return {_key(f): (f.id, f.status, f.due_date, round(f.distance_m, 3), f.school_name) for f in found}


def _reported(answer: dict[str, Any], name: str) -> set[Key]:
    return {
        (p["premises_id"], p["permit_id"], p["rule_id"], p["campus_id"])
        for p in (f["properties"] for f in answer[name])
    }


def _check_against_full_scans(city, before: dict[Key, tuple], answer: dict[str, Any]) -> int:  # noqa: ANN001
    """The answer equals the diff of the full scans before and after; the patched scan equals the one after."""
    session, scan_id, factory = city
    session.expire_all()
    after_id = run_scan(factory, RULES, on=ON)["scan_id"]
    after = _rows(session, after_id)
    assert _reported(answer, "appeared") == after.keys() - before.keys()
    assert _reported(answer, "disappeared") == before.keys() - after.keys()
    status_changed = {k for k in after.keys() & before.keys() if after[k][1:3] != before[k][1:3]}
    assert _reported(answer, "changed") == status_changed
    patched = _rows(session, scan_id)
    assert patched.keys() == after.keys()
    # what a user reads (status, due date, distance, school) is the same as the full scan's
    assert {k: v[1:] for k, v in patched.items()} == {k: v[1:] for k, v in after.items()}
    # findings that stayed keep their id (cases and warnings point at them)
    assert all(patched[k][0] == before[k][0] for k in patched.keys() & before.keys())
    edited = set(answer["evaluated"]["campuses"])
    untouched_before = {k: v for k, v in before.items() if k[3] not in edited}
    assert {k: v for k, v in patched.items() if k[3] not in edited} == untouched_before
    # a full scan after the patch finds nothing new against the patched scan
    diff = scan_store.scan_diff(session, after_id)
    assert diff["previous_scan"] == scan_id and diff["counts"] == {"appeared": 0, "disappeared": 0}
    return after_id


def _busiest_gate(session) -> tuple[int, int]:  # noqa: ANN001
    """(gate id, campus id) of the in-use gate with the most gate-measured findings near it."""
    row = session.execute(
        text(
            """
            SELECT g.id, g.campus_id FROM gates g JOIN findings f ON f.campus_id = g.campus_id
            WHERE g.in_use AND f.method = 'gates' AND ST_DWithin(g.geom::geography, f.from_geom::geography, 0.5)
            GROUP BY g.id, g.campus_id ORDER BY count(*) DESC, g.id LIMIT 1
            """
        )
    ).one()
    return row[0], row[1]


def _far_corner(session, campus_id: int, gate_id: int) -> tuple[float, float]:  # noqa: ANN001
    """The outline vertex farthest from the gate (a point on the campus edge)."""
    outline = to_shape(session.get(Campus, campus_id).geom)
    gate = to_shape(session.get(Gate, gate_id).geom)
    ring = outline.exterior if outline.geom_type == "Polygon" else max(outline.geoms, key=lambda p: p.area).exterior
    return max(ring.coords, key=lambda xy: GEOD.inv(gate.x, gate.y, xy[0], xy[1])[2])


def test_moving_a_gate_reports_the_diff_of_two_full_scans(city, client, auth) -> None:  # noqa: ANN001
    session, scan_id, _ = city
    gate_id, campus_id = _busiest_gate(session)
    before = _rows(session, scan_id)
    corner = _far_corner(session, campus_id, gate_id)
    lon, lat = point_from_wgs84(*corner, "gcj02")  # as Amap would give it
    t0 = time.perf_counter()
    r = client.put(
        f"/v1/gates/{gate_id}", json={"location": {"lon": lon, "lat": lat}, "crs": "gcj02"}, headers=auth("education")
    )
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    answer = r.json()
    assert answer["scan_id"] == scan_id and answer["evaluated"]["campuses"] == [campus_id]
    assert answer["disappeared"], "moving the busiest gate to the far corner must clear some gate findings"
    assert all(f["properties"]["campus_id"] == campus_id for f in answer["appeared"] + answer["disappeared"])
    _check_against_full_scans(city, before, answer)
    # the gate is stored in WGS84, within centimetres of the corner
    moved = to_shape(session.get(Gate, gate_id).geom)
    assert GEOD.inv(moved.x, moved.y, corner[0], corner[1])[2] < 0.05
    # only premises near the campus were judged: far fewer than the city holds
    total = session.scalar(select(func.count()).select_from(Premises))
    near = session.scalar(
        text(
            "SELECT count(*) FROM premises p, campuses c WHERE c.id = :c "
            "AND ST_DWithin(p.geom::geography, c.geom::geography, 200 + 5 + 50 + 50)"
        ),
        {"c": campus_id},
    )
    assert 0 < answer["evaluated"]["premises"] <= near < total
    print(f"gate move: {elapsed * 1000:.0f} ms, {answer['evaluated']} of {total} premises")  # noqa: T201


def test_closing_a_gate_and_its_audit_row(city, client, auth) -> None:  # noqa: ANN001
    session, scan_id, _ = city
    gate_id, campus_id = _busiest_gate(session)
    before = _rows(session, scan_id)
    r = client.put(f"/v1/gates/{gate_id}", json={"in_use": False}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    a = r.json()
    assert sum(a["counts"].values()) > 0, "closing the busiest gate changes what its findings are measured from"
    _check_against_full_scans(city, before, r.json())
    audit = session.execute(
        text("SELECT method, route, status, object_ids FROM audit_log WHERE path = :p ORDER BY id DESC LIMIT 1"),
        {"p": f"/v1/gates/{gate_id}"},
    ).one()
    assert audit[:3] == ("PUT", "/v1/gates/{gate_id}", 200) and audit[3]["gate_id"] == str(gate_id)


def test_adding_a_gate_reports_the_diff_once(city, client, auth) -> None:  # noqa: ANN001
    session, scan_id, _ = city
    # the outline vertex with the most lottery outlets within 180 m that no gate rule of that campus reaches yet
    campus_id, lon, lat = session.execute(
        text(
            """
            SELECT v.id, ST_X(v.pt), ST_Y(v.pt) FROM (
                SELECT c.id, (ST_DumpPoints(ST_ExteriorRing(c.geom))).geom AS pt
                FROM campuses c WHERE GeometryType(c.geom) = 'POLYGON') v
            JOIN premises p ON ST_DWithin(p.geom::geography, v.pt::geography, 180)
            WHERE (p.categories && ARRAY['lottery']
                   OR EXISTS (SELECT 1 FROM permits pm WHERE pm.premises_id = p.id AND pm.category = 'lottery'))
              AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.scan_id = :scan AND f.campus_id = v.id
                              AND f.premises_id = p.id AND f.method = 'gates')
            GROUP BY v.id, v.pt ORDER BY count(*) DESC, v.id LIMIT 1
            """
        ),
        {"scan": scan_id},
    ).one()
    before = _rows(session, scan_id)
    body = {"location": {"lon": lon, "lat": lat}, "crs": "wgs84", "kind": "back", "name": "后门"}
    headers = auth("education") | {"Idempotency-Key": "add-back-gate-1"}
    r = client.post(f"/v1/campuses/{campus_id}/gates", json=body, headers=headers)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["appeared"], "a second gate at the far corner brings premises near it into the gate rules"
    # a retry with the same key gets the same answer and adds no second gate
    again = client.post(f"/v1/campuses/{campus_id}/gates", json=body, headers=headers)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["gate_id"] == answer["gate_id"]
    assert (
        session.scalar(select(func.count()).select_from(Gate).where(Gate.campus_id == campus_id, Gate.name == "后门"))
        == 1
    )
    _check_against_full_scans(city, before, answer)


def test_enlarging_an_outline_reports_the_diff(city, client, auth) -> None:  # noqa: ANN001
    session, scan_id, _ = city
    # the campus with the most premises 200-500 m from its outline (outside most zones, inside after growing)
    campus_id = session.scalar(
        text(
            """
            SELECT c.id FROM campuses c JOIN premises p
              ON ST_DWithin(p.geom::geography, c.geom::geography, 500)
             AND NOT ST_DWithin(p.geom::geography, c.geom::geography, 200)
            WHERE GeometryType(c.geom) = 'POLYGON'
            GROUP BY c.id ORDER BY count(*) DESC, c.id LIMIT 1
            """
        )
    )
    before = _rows(session, scan_id)
    outline = to_shape(session.get(Campus, campus_id).geom)
    c = outline.centroid
    grown = Polygon(
        [
            (c.x + 3 * (x - c.x), c.y + 3 * (y - c.y))
            for x, y in (outline.exterior if outline.geom_type == "Polygon" else outline.geoms[0].exterior).coords
        ]
    )
    body = {"outline": mapping(geometry_from_wgs84(grown, "bd09")), "crs": "bd09"}
    r = client.put(f"/v1/campuses/{campus_id}", json=body, headers=auth("admin"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["appeared"], "a campus three times as large reaches new premises"
    _check_against_full_scans(city, before, answer)
    stored = to_shape(session.get(Campus, campus_id).geom)
    assert stored.symmetric_difference(grown).area < 1e-6 * grown.area  # BD-09 in, WGS84 stored


def test_changing_levels_reports_the_diff(city, client, auth) -> None:  # noqa: ANN001
    session, scan_id, _ = city
    # a school with a kindergarten-only rule in force at it: making it a primary school changes its rules
    only_kindergarten = (School.levels.any("kindergarten"), func.cardinality(School.levels) == 1)
    school = session.scalars(select(School).where(*only_kindergarten).order_by(School.id)).first()
    before = _rows(session, scan_id)
    r = client.put(f"/v1/schools/{school.id}", json={"levels": ["nine_year"], "name": "改名学校"}, headers=auth())
    assert r.status_code == 200, r.text
    answer = r.json()
    _check_against_full_scans(city, before, answer)
    session.refresh(school)
    assert school.levels == ["junior", "primary"] and school.name == "改名学校"
    edited = answer["evaluated"]["campuses"]
    assert all(v[4] == "改名学校" for k, v in _rows(session, scan_id).items() if k[3] in edited)


def test_adding_a_school_reports_its_findings_and_warns_it(city, client, auth) -> None:  # noqa: ANN001
    session, scan_id, _ = city
    before = _rows(session, scan_id)
    # a 120 m square school placed where premises are densest (centred on a premises with a permit)
    lon, lat = session.execute(
        text(
            """
            SELECT ST_X(p.geom), ST_Y(p.geom) FROM premises p
            ORDER BY (SELECT count(*) FROM premises q
                      WHERE ST_DWithin(q.geom::geography, p.geom::geography, 150)) DESC, p.id LIMIT 1
            """
        )
    ).one()
    ring = []
    for az in (45, 135, 225, 315):
        x, y, _ = GEOD.fwd(lon, lat, az, 60 * 2**0.5 - 30)
        ring.append((x, y))
    square = Polygon(ring)
    gate = square.exterior.interpolate(0.1, normalized=True)
    gate_gcj = point_from_wgs84(gate.x, gate.y, "gcj02")
    body = {
        "name": "新建实验小学",
        "levels": ["primary"],
        "crs": "gcj02",
        "opened": "2010-09-01",
        "accuracy_m": 1,
        "students": 800,
        "campuses": [
            {
                "outline": mapping(geometry_from_wgs84(square, "gcj02")),
                "gates": [{"location": dict(zip(("lon", "lat"), gate_gcj, strict=True)), "kind": "main"}],
            }
        ],
    }  # fmt: skip
    r = client.post("/v1/schools", json=body, headers=auth("education"))
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["appeared"] and not answer["disappeared"]
    assert {f["properties"]["school_name"] for f in answer["appeared"]} == {"新建实验小学"}
    # GET /v1/findings (the latest scan) shows them
    listed = client.get(f"/v1/findings?school={answer['school_id']}&limit=1000", headers=auth()).json()
    assert {f["id"] for f in listed["features"]} == {f["id"] for f in answer["appeared"]}
    _check_against_full_scans(city, before, answer)
    # each new finding warned the school (as a full scan does), visible to the school
    school = client.get(f"/v1/schools/{answer['school_id']}", headers=auth()).json()["properties"]
    assert school["district"] is not None and school["campuses"][0]["district"] == school["district"]
    assert school["opened"] == "2010-09-01" and school["students"] == 800 and school["source"] == "api"
    warnings = client.get(f"/v1/schools/{answer['school_id']}/warnings", headers=auth("education")).json()
    assert {w["finding"]["id"] for w in warnings["warnings"]} == {f["id"] for f in answer["appeared"]}
    stored = session.scalar(select(func.count()).select_from(SchoolWarning).where(SchoolWarning.scan_id == scan_id))
    assert stored >= len(answer["appeared"])


def _problem(r) -> dict[str, Any]:  # noqa: ANN001
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def test_bad_input_names_the_field(city, client, auth) -> None:  # noqa: ANN001
    session, scan_id, _ = city
    gate_id, campus_id = _busiest_gate(session)
    bowtie = {"type": "Polygon", "coordinates": [[[118.0, 32.0], [118.01, 32.01], [118.01, 32.0], [118.0, 32.01],
                                                  [118.0, 32.0]]]}  # fmt: skip
    school = {"name": "坏学校", "crs": "wgs84", "campuses": [{"outline": bowtie}]}
    p = _problem(client.post("/v1/schools", json=school, headers=auth()))
    assert p["field"] == "campuses.0.outline" and "Self-intersection" in p["detail"]
    p = _problem(client.post("/v1/schools", json={k: v for k, v in school.items() if k != "crs"}, headers=auth()))
    assert p["field"] == "crs"
    p = _problem(client.put(f"/v1/campuses/{campus_id}", json={"outline": bowtie}, headers=auth()))
    assert "crs" in p["detail"]
    p = _problem(client.put(f"/v1/gates/{gate_id}", json={"location": {"lon": 118.0, "lat": 32.0}}, headers=auth()))
    assert "crs" in p["detail"]
    # a WGS84 point sent as GCJ-02 lands ~500 m away: not on the campus edge
    g = to_shape(session.get(Gate, gate_id).geom)
    p = _problem(
        client.put(f"/v1/gates/{gate_id}", json={"location": {"lon": g.x, "lat": g.y}, "crs": "gcj02"}, headers=auth())
    )
    assert p["field"] == "location" and p["value"] > 300
    p = _problem(client.post(f"/v1/campuses/{campus_id}/gates", json={"location": {"lon": 218, "lat": 32},
                                                                        "crs": "wgs84"}, headers=auth()))  # fmt: skip
    assert p["field"] == "location"
    assert client.put("/v1/gates/999999999", json={"in_use": False}, headers=auth()).status_code == 404
    assert client.put(f"/v1/gates/{gate_id}", json={"in_use": False}, headers=auth("viewer")).status_code == 403
    # nothing was changed by the refused requests
    assert session.get(Gate, gate_id).in_use and to_shape(session.get(Gate, gate_id).geom).equals(g)


def test_a_school_added_before_any_scan_is_stored_in_wgs84(client, auth) -> None:  # noqa: ANN001
    # 金陵中学's neighbourhood in Nanjing, given in GCJ-02 (≈ 500 m off its WGS84 position)
    wgs = Polygon([(118.7800, 32.0500), (118.7815, 32.0500), (118.7815, 32.0512), (118.7800, 32.0512)])
    gate_wgs = (118.78075, 32.0500)
    gate_gcj = dict(zip(("lon", "lat"), point_from_wgs84(*gate_wgs, "gcj02"), strict=True))
    body = {
        "name": "测试幼儿园", "levels": [], "crs": "gcj02",
        "campuses": [{"outline": mapping(geometry_from_wgs84(wgs, "gcj02")), "name": "本部",
                      "gates": [{"location": gate_gcj, "kind": "main"}]}],
    }  # fmt: skip
    r = client.post("/v1/schools", json=body, headers=auth("education"))
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["scan_id"] is None and answer["appeared"] == [] and answer["disappeared"] == []
    school = client.get(f"/v1/schools/{answer['school_id']}", headers=auth()).json()
    assert school["properties"]["levels"] == [] and school["properties"]["flags"] == ["level_unknown"]
    campus = school["properties"]["campuses"][0]
    corner = campus["geometry"]["coordinates"][0][0]
    assert GEOD.inv(corner[0], corner[1], 118.78, 32.05)[2] < 0.05
    gate = campus["gates"][0]["geometry"]["coordinates"]
    assert GEOD.inv(gate[0], gate[1], *gate_wgs)[2] < 0.05 and campus["gates"][0]["kind"] == "main"
    # a name may not be emptied, an unknown school is 404
    r = client.put(f"/v1/schools/{answer['school_id']}", json={"name": None}, headers=auth())
    assert r.status_code == 422 and r.json()["field"] == "name"
    assert client.put("/v1/schools/999999999", json={"students": 3}, headers=auth()).status_code == 404
